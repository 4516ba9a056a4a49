"""Ctrl-C and `kill` partway through `worldbridge train tokenizer|dynamics`, in a real subprocess: the run keeps its
latest state, leaves no temp files, and the same command resumes it."""

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.model.checkpoint import read_train_meta
from helpers import cli_env
from test_model_data import trained_micro, write_square_dataset

def _steps(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as f:
        return [int(float(r["step"])) for r in csv.DictReader(f)]


def _stop_after_progress(cmd: list[str], run: Path, beyond: int, sig: int) -> subprocess.CompletedProcess:
    """Start `cmd`, wait until its metrics pass step `beyond`, send `sig`, and return how it ended."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    deadline = time.time() + 120
    try:
        while time.time() < deadline and p.poll() is None:
            if (run / "metrics.csv").is_file() and any(s > beyond for s in _steps(run)):
                break
            time.sleep(0.2)
        assert p.poll() is None, f"the run ended before it could be stopped: {p.communicate()}"
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


@pytest.mark.parametrize("stage,sig", [("tokenizer", signal.SIGTERM), ("dynamics", signal.SIGINT)])
def test_stopped_training_keeps_its_state_and_the_same_command_resumes(tmp_path, stage, sig):
    data = write_square_dataset(tmp_path / "ds", episodes=4)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "bridge.cli", "train", stage, "--data", str(data), "--preset", "micro", "--steps",
           "100000", "--ckpt-every", "5", "--batch", "2", "--device", "cpu", "--quiet", "--out", str(run)]
    if stage == "dynamics":
        cmd += ["--tokenizer", str(trained_micro()["tok"])]
    first = _stop_after_progress(cmd, run, 10, sig)
    assert first.returncode == 130, first.stderr
    assert "run the same command to resume" in first.stderr, first.stderr
    step = read_train_meta(run)["step"]
    assert step > 10 and _steps(run)[-1] <= step  # the state holds the last finished step, the log no more than it
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no half-written files
    second = _stop_after_progress(cmd, run, step + 5, signal.SIGTERM)
    assert second.returncode == 130, second.stderr
    steps = _steps(run)
    assert read_train_meta(run)["step"] > step and steps == sorted(set(steps))  # went on from `step`, no step twice
