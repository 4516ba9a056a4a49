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
