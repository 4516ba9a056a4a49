"""What every training loop shares: the device it may run on, the new --out it writes, the options a resume keeps,
its random streams, bf16 autocast, the learning-rate schedule, the progress bar, the time budget, the save on Ctrl-C
or `kill`, running means of the metrics, and the fine-tuning loop of the stages that start from a finished world
(events, first frame, decoder)."""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Collection, Iterator

import numpy as np
import torch
from tqdm import tqdm

from bridge.data.dataset import provenance
from bridge.data.interrupt import sigterm_as_ctrl_c
from bridge.model.world import pick_device


def train_device(device: str | None) -> torch.device:
    """Every training command's --device, read as every command reads it (pick_device), then held to the devices
    training has run on: cpu and cuda (mps and the rest are refused, not left to fail somewhere in the run)."""
    picked = pick_device(device)
    if picked.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {device!r}: training runs on cpu, cuda or cuda:N")
    return picked


# What a file manager leaves in any folder it shows (macOS Finder, Windows Explorer): no reason to refuse a folder
OS_LITTER = frozenset({".DS_Store", "desktop.ini", "Thumbs.db"})  # and macOS' AppleDouble "._NAME" files


def check_new_out(out: Path, command: str, what: str, ours: Collection[str] = ()) -> None:
    """A new run writes only into a new folder: one that holds nothing but `ours` (a run's own files, cut short), a
    save's temp file (a dot name ending .tmp) and OS_LITTER; else a clear error naming what is there."""
    foreign = sorted(p.name for p in out.iterdir() if p.name not in ours and not is_litter(p.name)) \
        if out.is_dir() else []
    if foreign:
        raise ValueError(f"--out {out} holds files that are not {what} ({', '.join(foreign[:3])}"
                         f"{' ...' if len(foreign) > 3 else ''}): give `{command}` a new --out directory")


def is_litter(name: str) -> bool:
    """Whether a file in a new --out is a file manager's (OS_LITTER) or a save's temp file: nobody's work."""
    return name in OS_LITTER or name.startswith("._") or (name.startswith(".") and name.endswith(".tmp"))


def kept_options(opts: Any, run: dict[str, Any], defaults: dict[str, Any], kept: dict[str, str]) -> Any:
    """Each option in `kept` (option -> its key in the card) as given, else the resumed run's own (`run`: its card's),
    else the default: a bare rerun changes nothing, and a given option wins (a max_minutes of 0 is none: no limit, so
    a kept budget can be lifted)."""
    def given(name: str) -> Any:
        option, resumed = getattr(opts, name), run.get(kept[name])
        value = option if option is not None else resumed if resumed is not None else defaults[name]
        return None if name == "max_minutes" and value == 0 else value
    return dataclasses.replace(opts, **{name: given(name) for name in kept})


def card_options(opts: Any, kept: dict[str, str]) -> dict[str, Any]:
    """The options in `kept` under their card keys, as a run records them for kept_options to read back."""
    return {key: getattr(opts, name) for name, key in kept.items()}


def amp(device: torch.device, on: bool | None) -> tuple[Any, bool]:
    """Every stage's bf16 autocast: as asked, else (None) on for CUDA and AVX-512-BF16 CPUs; -> (context, on)."""
    if on is None:
        from bridge.model.world import bf16_by_default  # looked up when called (tests replace it)

        on = bf16_by_default(device)
    return torch.autocast(device.type, dtype=torch.bfloat16) if on else nullcontext(), bool(on)


def seed_run(seed: int, start: int, rank: int | None = None) -> np.random.Generator:
    """Seed torch and return the sampling RNG of a run (process `rank`; None: a single-process stage) that starts at
    step `start`: a resumed run draws new batches and masks instead of replaying the ones its first run began with,
    and every stage keeps the numpy stream it always drew: the trainer's [seed, rank, start], the others' [seed,
    start] (numpy drops trailing zeros, so a fresh run is [seed, rank], or [seed])."""
    torch.manual_seed(seed + 1000 * (rank or 0) + 1_000_003 * start)
    return np.random.default_rng([seed, start] if rank is None else [seed, rank, start])


def lr_at(step: int, total: int, base: float, warmup: int, time_frac: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to 10% of base, by steps or by the time budget, whichever is further."""
    warmup = min(warmup, max(total // 10, 1))
    if step < warmup:
        return base * (step + 1) / warmup
    r = min(max((step - warmup) / max(total - warmup, 1), time_frac), 1.0)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * r)))


def set_lr(opt: torch.optim.Optimizer, step: int, total: int, base: float, warmup: int, spent_s: float,
           max_minutes: float | None) -> float:
    """Every training loop's schedule: each param group at lr_at times its own "scale" (1 without one), decayed by
    the steps or by the --max-minutes budget spent, whichever is further (None or 0: no budget); -> the unscaled lr."""
    lr = lr_at(step, total, base, warmup, spent_s / (max_minutes * 60) if max_minutes else 0.0)
    for g in opt.param_groups:
        g["lr"] = lr * g.get("scale", 1.0)
    return lr


class BudgetBar(tqdm):
    """A training bar that ends where the run will: at --steps, or sooner where the --max-minutes budget (`budget_s`,
    of which `spent_s` went to earlier runs) is spent first at the current rate; its total, share and time left are
    then the budget's, and its label says so."""

    def __init__(self, *args: Any, budget_s: float | None = None, spent_s: float = 0.0, **kwargs: Any):
        self.budget_s, self.spent_s = budget_s, spent_s
        super().__init__(*args, **kwargs)

    @property
    def format_dict(self) -> dict[str, Any]:
        d = super().format_dict
        n, total, elapsed = d["n"], d["total"], d["elapsed"]
        if not self.budget_s or not total or not elapsed:
            return d
        rate = d["rate"] or (n - d["initial"]) / elapsed  # the rate tqdm's time left divides by
        reach = n + rate * max(self.budget_s - self.spent_s - elapsed, 0.0)
        if rate > 0 and reach < total:
            d.update(total=max(n, int(reach)), prefix=f"{d['prefix']}, --max-minutes {self.budget_s / 60:g}")
        return d


def progress_bar(total: int, desc: str, enabled: bool, initial: int = 0, max_minutes: float | None = None,
                 spent_s: float = 0.0) -> tqdm:
    """The bar every training loop shows: steps done of `total`, with their rate and the time left, both ending
    where the --max-minutes budget (None or 0: none; `spent_s` of it spent by earlier runs) stops the run first."""
    return BudgetBar(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True, disable=not enabled,
                     budget_s=max_minutes * 60 if max_minutes else None, spent_s=spent_s)


def over_budget(spent_s: float, max_minutes: float | None) -> bool:
    """Whether a --max-minutes budget is spent (None or 0: no budget, as set_lr and every --max-minutes read it)."""
    return bool(max_minutes) and spent_s > max_minutes * 60


FINE_TUNE_RERUN = "rerun to go on"  # the fine-tuning stages' --steps and --max-minutes count per run


def budget_stop(step: int, steps: int, max_minutes: float | None, rerun: str) -> dict[str, str]:
    """A run's result note when its --max-minutes budget, not --steps, ended it (at `step` of `steps`), with how to go
    on (`rerun`); {} when it reached its steps. The one-line result (options.saved) ends with it."""
    if not max_minutes or step >= steps:
        return {}
    return {"stopped": f"stopped by --max-minutes {max_minutes:g} at step {step} of {steps}: {rerun}"}


def footage_history(section: dict, datasets: list, out: str | Path, step: int, warn: bool) -> dict:
    """Every stage's record of footage it trained on before, for its card: `earlier_fingerprints` ({} when none),
    those `section` (the card section of the run's last save, {} when fresh) kept and each of its known fingerprints no
    --data set holds now, with its path and the step it was left at, so a card says when a run mixed two sets. With
    `warn` (a resumed run's main process) it first says so once. A card without fingerprints (a run made before them)
    leaves nothing to compare; a --data without one (made before them) is said to be impossible to tell apart."""
    records = section.get("data_provenance", section)  # the pre-training `data` section is its one dataset's record
    records = records if isinstance(records, list) else [records]  # events and first-frame cards of 2026-11-25
    before = {p["fingerprint"]: p.get("path") for p in records if p.get("fingerprint")}
    for ds in datasets:
        if not (warn and before) or ds.fingerprint in before:
            continue
        then = ", ".join(f"{path} (fingerprint {fp})" for fp, path in before.items())
        now = (f"now holds other footage (fingerprint {ds.fingerprint})" if ds.fingerprint else
               "has no fingerprint (made before datasets had one), so it cannot be told apart from that")
        tqdm.write(f"warning: {out} was trained on {then}, but --data {ds.root} {now}: this run goes on with it; if it "
                   "is other footage, the two are mixed: give a new --out to keep them apart", file=sys.stderr)
    now = {ds.fingerprint for ds in datasets}
    left = [{"fingerprint": fp, "path": path, "until_step": step} for fp, path in before.items() if fp not in now]
    earlier = [*section.get("earlier_fingerprints", []), *left]
    return {"earlier_fingerprints": earlier} if earlier else {}


def footage_record(section: dict, datasets: list, out: str | Path, step: int, warn: bool) -> dict:
    """A fine-tuning stage's card record of its footage: each --data set's provenance (`data_provenance`), then
    `footage_history`'s record of what it trained on before (the pre-training stages keep theirs flat in `data`)."""
    return {"data_provenance": [provenance(ds) for ds in datasets],
            **footage_history(section, datasets, out, step, warn)}


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
