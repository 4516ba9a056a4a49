"""The fine-tuning loop shared by the stages that start from a finished world (events, first frame, decoder)."""

from __future__ import annotations

import time
from typing import Callable

from tqdm import tqdm


def fine_tune(steps: int, start: int, step: Callable[[int], None], save: Callable[[int], None], ckpt_every: int,
              max_minutes: float | None, bar: tqdm) -> int:
    """Run step(i) for i < steps, saving every ckpt_every steps, at the time budget and on Ctrl-C (then re-raised);
    returns the absolute step reached (start + steps done). The caller saves the final state."""
    t0, done = time.time(), start
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
