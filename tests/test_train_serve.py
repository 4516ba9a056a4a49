"""A world just trained on micro, served by `worldbridge serve --checkpoint RUN` as a user runs it, plays to a client."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from bridge.client import WorldClient
from test_host_cli import free_port
from test_model_data import trained_micro

ROOT = Path(__file__).resolve().parents[1]


def test_a_trained_micro_world_serves_frames_under_its_own_name():
    run = trained_micro()["world"]
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "serve", "--checkpoint", str(run), "--bind",
                             f"tcp://127.0.0.1:{port}"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        assert "serving WORLD MODEL: micro (world, step 120)" in line and str(run) in line, line
        assert "on 1 CPU thread (--threads)" in line, line  # OMP_NUM_THREADS=1 above
        with WorldClient(f"tcp://127.0.0.1:{port}", timeout=20) as c:
            s = c.start(mode="step", seed=3)
            assert s["backend_kind"] == "world_model" and s["backend_name"] == "world model micro (world, step 120)"
            assert (s["width"], s["height"], s["num_latent_actions"]) == (16, 16, 4)
            frames = [c.step(a % 4) for a in range(3)]
            assert [f.index for f in frames] == [1, 2, 3] and frames[-1].image.shape == (16, 16, 3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
