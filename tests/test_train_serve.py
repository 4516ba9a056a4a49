"""A world just trained on micro, served by `worldbridge serve --checkpoint RUN` as a user runs it, plays to a client."""

from bridge.client import WorldClient
from helpers import cli_env
from test_host_cli import serving
from test_model_data import trained_micro


def test_a_trained_micro_world_serves_frames_under_its_own_name():
    run = trained_micro()["world"]
    with serving(backend=("--checkpoint", str(run)), env=cli_env()) as (proc, port):
        line = proc.stderr.readline()
        assert "serving WORLD MODEL: micro (world, step 120)" in line and str(run) in line, line
        assert "on 1 CPU thread (--threads)" in line, line  # cli_env sets OMP_NUM_THREADS=1
        with WorldClient(f"tcp://127.0.0.1:{port}", timeout=20) as c:
            s = c.start(mode="step", seed=3)
            assert s["backend_kind"] == "world_model" and s["backend_name"] == "world model micro (world, step 120)"
            assert (s["width"], s["height"], s["num_latent_actions"]) == (16, 16, 4)
            frames = [c.step(a % 4) for a in range(3)]
            assert [f.index for f in frames] == [1, 2, 3] and frames[-1].image.shape == (16, 16, 3)
