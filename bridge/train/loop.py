"""What every training loop shares: the device it may run on, the progress bar, the time budget, the save on Ctrl-C
or `kill`, running means of the metrics, and the fine-tuning loop of the stages that start from a finished world (events, first frame, decoder)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch
from tqdm import tqdm

from bridge.data.interrupt import sigterm_as_ctrl_c
from bridge.model.world import pick_device


def train_device(device: str | None) -> torch.device:
    """Every training command's --device, read as every command reads it (pick_device), then held to the devices
    training has run on: cpu and cuda (mps and the rest are refused, not left to fail somewhere in the run)."""
    picked = pick_device(device)
    if picked.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {device!r}: training runs on cpu, cuda or cuda:N")
    return picked


def progress_bar(total: int, desc: str, enabled: bool, initial: int = 0) -> tqdm:
    """The bar every training loop shows: steps done of `total`, with their rate and the time left."""
    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True, disable=not enabled)


def over_budget(spent_s: float, max_minutes: float | None) -> bool:
    """Whether a --max-minutes budget is spent (None: no budget; 0 stops after the first step)."""
    return max_minutes is not None and spent_s > max_minutes * 60


@contextmanager
def saved_on_stop(save: Callable[[int], None], last: Callable[[], int], out: str | Path, bar: tqdm,
                  main: bool = True) -> Iterator[None]:
    """Ctrl-C or `kill` within the block first saves the last finished step (save(last())), saying so on the main
    process (every stage the same), then goes on up to the command, which says how to resume; the bar is closed
    either way."""
    with sigterm_as_ctrl_c():
        try:
            yield
        except KeyboardInterrupt:
            bar.close()
            step = last()
            if main:
                tqdm.write(f"interrupted: saving step {step} to {out} ...")
            save(step)
            raise
        finally:
            bar.close()


def fine_tune(steps: int, start: int, step: Callable[[int], None], save: Callable[[int], None], ckpt_every: int,
              max_minutes: float | None, bar: tqdm, out: str | Path) -> int:
    """Run step(i) for i < steps, saving to `out` every ckpt_every steps, at the time budget and on Ctrl-C or `kill`
    (then re-raised); returns the absolute step reached (start + steps done). The caller saves the final state."""
    t0, done = time.time(), start
    with saved_on_stop(save, lambda: done, out, bar):
        for i in range(steps):
            step(i)
            done = start + i + 1
            if (i + 1) % ckpt_every == 0:
                save(done)
            if over_budget(time.time() - t0, max_minutes):
                break
    return done


class Averager:
    """Running means of scalar metrics; the fine-tuning stages report them (and show them in the bar) every `every`
    steps, the pre-training stages whenever they log."""

    def __init__(self, every: int = 10):
        self.every, self.sums, self.n = every, {}, 0

    def push(self, res: dict[str, torch.Tensor | float]) -> None:
        """Add one step's metrics."""
        for k, v in res.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
        self.n += 1

    def add(self, res: dict[str, torch.Tensor | float], bar: tqdm) -> dict[str, float] | None:
        """Add one step's metrics and advance the bar; every `every` steps -> their means, shown in the bar."""
        self.push(res)
        bar.update(1)
        if self.n < self.every:
            return None
        out = self.flush()
        bar.set_postfix({k: f"{v:.3g}" for k, v in out.items()}, refresh=False)
        return out

    def flush(self) -> dict[str, float] | None:
        """Means of the steps since the last report (None if there were none)."""
        out = {k: v / self.n for k, v in self.sums.items()} if self.n else None
        self.sums, self.n = {}, 0
        return out
