"""The fine-tuning loop shared by the stages that start from a finished world (events, first frame, decoder)."""

from __future__ import annotations

import time
from typing import Callable

import torch
from tqdm import tqdm

from bridge.data.interrupt import sigterm_as_ctrl_c


def fine_tune(steps: int, start: int, step: Callable[[int], None], save: Callable[[int], None], ckpt_every: int,
              max_minutes: float | None, bar: tqdm) -> int:
    """Run step(i) for i < steps, saving every ckpt_every steps, at the time budget and on Ctrl-C or `kill` (then
    re-raised); returns the absolute step reached (start + steps done). The caller saves the final state."""
    t0, done = time.time(), start
    with sigterm_as_ctrl_c():
        try:
            for i in range(steps):
                step(i)
                done = start + i + 1
                if (i + 1) % ckpt_every == 0:
                    save(done)
                if max_minutes is not None and time.time() - t0 > max_minutes * 60:
                    break
        except KeyboardInterrupt:
            save(done)
            raise
        finally:
            bar.close()
    return done


class Averager:
    """Running means of scalar metrics, reported (and shown in the bar) every `every` steps."""

    def __init__(self, every: int = 10):
        self.every, self.sums, self.n = every, {}, 0

    def add(self, res: dict[str, torch.Tensor], bar: tqdm) -> dict[str, float] | None:
        for k, v in res.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
        self.n += 1
        bar.update(1)
        if self.n < self.every:
            return None
        out = {k: v / self.n for k, v in self.sums.items()}
        self.sums, self.n = {}, 0
        bar.set_postfix({k: f"{v:.3g}" for k, v in out.items()}, refresh=False)
        return out

    def flush(self) -> dict[str, float] | None:
        """Means of the steps since the last report (None if there were none)."""
        out = {k: v / self.n for k, v in self.sums.items()} if self.n else None
        self.sums, self.n = {}, 0
        return out
