"""The shared fine-tuning loop: checkpoints on schedule, at the time budget and on Ctrl-C."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest
from tqdm import tqdm

from bridge.train.loop import fine_tune


def _bar() -> tqdm:
    return tqdm(disable=True)


def test_fine_tune_saves_every_n_steps_and_counts_from_the_resumed_step():
    saved, ran = [], []
    done = fine_tune(7, 100, ran.append, saved.append, ckpt_every=3, max_minutes=None, bar=_bar(), out="run")
    assert done == 107 and ran == list(range(7)) and saved == [103, 106]


def _clock(monkeypatch, step_s: float) -> None:
    """The loop's clock, advancing step_s seconds on each reading."""
    import bridge.train.loop as loop

    now = iter(range(0, 10**6, int(step_s)))
    monkeypatch.setattr(loop, "time", SimpleNamespace(time=lambda: next(now)))


def test_fine_tune_stops_at_the_time_budget(monkeypatch):
    _clock(monkeypatch, 60)
    ran = []
    assert fine_tune(50, 0, ran.append, lambda s: None, ckpt_every=10, max_minutes=1.5, bar=_bar(), out="run") == 2
    assert ran == [0, 1]


def test_a_max_minutes_of_0_is_no_limit_as_everywhere_else(monkeypatch):
    """fine_tune stopped after one step at max_minutes=0 while set_lr and --max-minutes took 0 as no limit."""
    _clock(monkeypatch, 60)
    ran = []
    assert fine_tune(5, 0, ran.append, lambda s: None, ckpt_every=10, max_minutes=0, bar=_bar(), out="run") == 5
    assert ran == [0, 1, 2, 3, 4]


def test_ctrl_c_saves_the_last_finished_step_then_stops_and_says_so(capsys):
    saved = []

    def step(i: int) -> None:
        if i == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fine_tune(10, 20, step, saved.append, ckpt_every=100, max_minutes=None, bar=_bar(), out="run")
    assert saved == [24] and capsys.readouterr().out == "interrupted: saving step 24 to run ...\n"


def test_kill_saves_the_last_finished_step_like_ctrl_c_and_restores_the_handler():
    saved, seen = [], []
    outer = signal.signal(signal.SIGTERM, lambda *_: seen.append("outer"))  # so a miss fails the test, not pytest

    def step(i: int) -> None:
        if i == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    try:
        with pytest.raises(KeyboardInterrupt):
            fine_tune(10, 5, step, saved.append, ckpt_every=100, max_minutes=None, bar=_bar(), out="run")
        assert saved == [7] and seen == []
        os.kill(os.getpid(), signal.SIGTERM)  # the handler from before is back
        assert seen == ["outer"]
    finally:
        signal.signal(signal.SIGTERM, outer)


def test_ctrl_c_before_the_first_save_does_not_claim_a_saved_state(tmp_path, capsys):
    from bridge.train.options import guarded

    def stopped(_):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as e:
        guarded(stopped, None, str(tmp_path / "run"))  # e.g. Ctrl-C while a dataset is being opened
    assert e.value.code == 130 and capsys.readouterr().err.strip() == f"stopped before anything was saved to {tmp_path / 'run'}"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train_state.safetensors").write_bytes(b"x")
    os.utime(tmp_path / "run" / "train_state.safetensors", (1, 1))  # an earlier run's state (or a world's files)
    with pytest.raises(SystemExit):
        guarded(stopped, None, str(tmp_path / "run"))  # e.g. Ctrl-C while `train prompts` tokenizes its data
    assert capsys.readouterr().err.strip() == f"stopped before this run saved anything: {tmp_path / 'run'} keeps what was there before"

    def saved_then_stopped(_):
        (tmp_path / "run" / "train_state.safetensors").write_bytes(b"y")
        raise KeyboardInterrupt

    with pytest.raises(SystemExit):
        guarded(saved_then_stopped, None, str(tmp_path / "run"))
    assert "the last state was saved: run the same command to resume" in capsys.readouterr().err


@pytest.mark.parametrize("name, litter", [(".DS_Store", True), ("._clip.mp4", True), ("desktop.ini", True),
                                          (".ckpt.safetensors.tmp", True), (".git", False), ("notes.txt", False)])
def test_a_new_out_ignores_what_file_managers_leave_and_nothing_else(name, litter):
    """Finder leaves AppleDouble `._NAME` files on exFAT/SMB drives beside .DS_Store; a real file is somebody's work."""
    from bridge.train.loop import is_litter

    assert is_litter(name) == litter


def _timed_bar(steps: int, max_minutes: float | None, spent_s: float = 0.0, done: int = 0, step_s: float = 1.0):
    """A budgeted bar on a fake clock, `done` steps in at one step every step_s seconds."""
    from bridge.train.loop import progress_bar

    bar = progress_bar(steps, "train", True, max_minutes=max_minutes, spent_s=spent_s)
    clock = [0.0]
    bar._time, bar.start_t, bar.last_print_t = (lambda: clock[0]), 0.0, 0.0
    for _ in range(done):
        clock[0] += step_s
        bar.update(1)
    return bar


def test_the_bars_time_left_is_the_budgets_when_the_budget_ends_the_run_first():
    """A 2-minute budget with 60 of 200 steps done in 60 s showed 2:20 left (the steps') when 1:00 remained, and the
    run ended at 56% of the bar: now the time left, the total and the share are the budget's."""
    bar = _timed_bar(200, max_minutes=2, done=60)
    shown = str(bar)
    assert "<01:00" in shown and " 60/120 " in shown and "50%" in shown, shown
    assert "--max-minutes 2" in shown, shown  # why the total is not --steps
    bar.close()


def test_a_resumed_runs_bar_counts_the_budget_its_earlier_runs_spent():
    bar = _timed_bar(200, max_minutes=2, spent_s=90, done=10)  # 100 s of 120 spent: 20 s, 20 steps left
    assert "<00:20" in str(bar) and " 10/30 " in str(bar), str(bar)
    bar.close()


@pytest.mark.parametrize("max_minutes", [None, 0, 60])
def test_the_bar_counts_to_steps_when_no_budget_ends_the_run_first(max_minutes):
    bar = _timed_bar(200, max_minutes=max_minutes, done=60)
    assert "<02:20" in str(bar) and " 60/200 " in str(bar) and "max-minutes" not in str(bar), str(bar)
    bar.close()


def test_a_fine_tuning_run_the_budget_stops_says_so_and_how_to_go_on(monkeypatch):
    from bridge.train.loop import budget_stop
    from bridge.train.options import saved

    _clock(monkeypatch, 60)
    done = fine_tune(50, 100, lambda i: None, lambda s: None, ckpt_every=10, max_minutes=1.5, bar=_bar(), out="run")
    result = {"step": done, "loss": 0.5, **budget_stop(done, 150, 1.5, "rerun to go on")}
    assert saved("", result, "run") == ("step 102 saved to run {'loss': 0.5}; stopped by --max-minutes 1.5 at step "
                                        "102 of 150: rerun to go on")
    whole = {"step": 150, **budget_stop(150, 150, 1.5, "rerun to go on")}
    assert saved("", whole, "run") == "step 150 saved to run {}"


@pytest.mark.parametrize("rank", [0, 1, 3])
def test_a_fresh_run_draws_as_before_on_every_rank_and_a_stage_as_before_at_every_step(rank):
    """seed_run seeded the trainer's numpy from [seed, start, rank]: a fresh DDP run's ranks > 0 drew other clips
    than the same command did before (its [seed, rank, start]). The trainer keeps that stream, the single-process
    stages (decoder, prompts) their [seed, start]; numpy drops trailing zeros, so rank 0 fresh is [seed] in both."""
    import numpy as np
    import torch

    from bridge.train.loop import seed_run

    def draws(rng):
        return rng.integers(2**31, size=4).tolist()

    for start in (0, 2):
        assert draws(seed_run(5, start, rank)) == draws(np.random.default_rng([5, rank, start]))
        assert draws(seed_run(5, start)) == draws(np.random.default_rng([5, start]))
    seed_run(5, 0, rank)
    first = torch.rand(3)
    torch.manual_seed(5 + 1000 * rank)  # the trainer's torch seed before resumes drew on
    assert torch.equal(first, torch.rand(3))


def test_a_resume_onto_footage_without_a_fingerprint_says_it_cannot_be_told_apart(capsys):
    """A run trained on fingerprinted footage, resumed with --data that has none (made before fingerprints), went on
    in silence while its card recorded the old footage as left behind: it now says once that the two cannot be told
    apart, and how to keep them apart."""
    from pathlib import Path

    from bridge.train.loop import footage_history

    section = {"path": "/data/a", "fingerprint": "f1"}
    old = SimpleNamespace(fingerprint=None, root=Path("/data/old"))
    assert footage_history(section, [old], "runs/w", 40, warn=True)["earlier_fingerprints"][0]["fingerprint"] == "f1"
    said = capsys.readouterr().err
    assert said.count("warning:") == 1 and "/data/old has no fingerprint" in said and "new --out" in said
    footage_history(section, [old], "runs/w", 40, warn=False)  # not the main process, or a fresh run
    same = SimpleNamespace(fingerprint="f1", root=Path("/data/a"))
    assert footage_history(section, [same], "runs/w", 40, warn=True) == {}
    assert capsys.readouterr().err == ""
