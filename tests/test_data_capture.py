"""Capturing Gymnasium environments: a real built-in env (CartPole, rendered by pygame) and a numpy-rendered one."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from bridge.data.capture import CaptureError, capture
from bridge.data.dataset import VideoDataset

torch.set_num_threads(1)


class ColourWalk(gym.Env):
    """A tiny env whose frame colour encodes its state, so recorded actions can be checked against the video."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 12}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.action_space = gym.spaces.Discrete(3)
        self.observation_space = gym.spaces.Discrete(64)
        self.pos = 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.t = 32, 0
        return self.pos, {}

    def step(self, action):
        self.pos = int(np.clip(self.pos + (int(action) - 1), 0, 63))
        self.t += 1
        return self.pos, 0.0, False, self.t >= 25, {}

    def render(self):
        img = np.zeros((30, 40, 3), np.uint8)
        img[:, :, 0] = self.pos * 4
        return img


gym.register("WorldBridgeColourWalk-v0", entry_point=ColourWalk)


def test_capture_records_true_actions_aligned_with_frames(tmp_path):
    summary = capture("WorldBridgeColourWalk-v0", tmp_path / "ds", episodes=3, frames=40, size=16, seed=1, progress=False)
    ds = VideoDataset(tmp_path / "ds")
    assert ds.source == "gymnasium:WorldBridgeColourWalk-v0" and ds.fps == 12
    assert ds.action_names == ["action_0", "action_1", "action_2"] and summary["episodes"] == 3
    for ep in ds.episodes:
        assert ep.length == 26  # truncated after 25 steps, plus the first frame
        pos = ds.frames(ep)[:, 8, 8, 0].astype(int) // 4
        acts = ds.actions(ep)
        assert acts[-1] == -1
        expected = np.clip(pos[:-1] + acts[:-1] - 1, 0, 63)
        assert np.array_equal(pos[1:], expected)  # action i moves frame i to frame i+1
        runs = np.diff(np.flatnonzero(np.diff(np.r_[-9, acts[:-1], -9]) != 0))
        assert np.median(runs) >= 2  # actions repeat


def test_capture_cartpole(tmp_path):
    pytest.importorskip("pygame", reason="CartPole renders with pygame (pip install pygame)")
    capture("CartPole-v1", tmp_path / "cp", episodes=2, frames=30, size=32, progress=False)
    ds = VideoDataset(tmp_path / "cp")
    assert ds.height == 32 and len(ds.episodes) == 2 and ds.action_names == ["action_0", "action_1"]
    f = ds.frames(ds.episodes[0])
    assert f.std() > 5 and 2 <= len(f) <= 30  # a real picture: the cart and pole on white
    assert set(ds.actions(ds.episodes[0])[:-1].tolist()) <= {0, 1}


def test_the_progress_bar_counts_the_frames_captured_when_episodes_end_early(tmp_path, capsys):
    pytest.importorskip("pygame")
    n = capture("CartPole-v1", tmp_path / "cp", episodes=2, frames=200, size=16, seed=0)["frames"]
    assert n < 400  # random play drops the pole long before 200 frames
    last = capsys.readouterr().err.strip().split("\r")[-1]  # the bar as it was left
    assert "100%" in last and f" {n}/{n} [" in last, last


def test_unknown_env_is_a_clear_error_and_writes_nothing(tmp_path):
    with pytest.raises(CaptureError, match="unknown Gymnasium environment 'NoSuchEnv-v0'"):
        capture("NoSuchEnv-v0", tmp_path / "ds", progress=False)
    assert not (tmp_path / "ds").exists()


def test_a_few_episodes_still_get_a_val_episode(tmp_path):
    capture("WorldBridgeColourWalk-v0", tmp_path / "ds", episodes=3, frames=5, size=16, seed=0, progress=False)
    splits = [e.split for e in VideoDataset(tmp_path / "ds").episodes]
    assert splits.count("val") >= 1 and splits.count("train") >= 1, splits


def test_capture_summary_says_when_episodes_ended_before_frames(tmp_path):
    from click.testing import CliRunner

    from bridge.cli import main

    r = CliRunner().invoke(main, ["data", "capture", "--env", "WorldBridgeColourWalk-v0", "--episodes", "3", "--frames",
                                  "40", "--size", "16", "--out", str(tmp_path / "ds")])
    assert r.exit_code == 0, r.output
    assert "captured 78 frames in 3 episodes" in r.output  # 3 x 26: the env ends each episode after 25 steps
    assert "3 ended before 40 frames" in r.output and "shortest has 26" in r.output, r.output
    r = CliRunner().invoke(main, ["data", "capture", "--env", "WorldBridgeColourWalk-v0", "--episodes", "2", "--frames",
                                  "10", "--size", "16", "--out", str(tmp_path / "full")])
    assert r.exit_code == 0 and "captured 20 frames" in r.output and "ended before" not in r.output, r.output


def test_worldbridge_ids_are_known_to_capture_without_importing_bridge_gym_first():
    """`data capture --env WorldBridge/Sandbox-v0`: the ids register when bridge.gym is imported, which the CLI never did."""
    import subprocess
    import sys

    code = ("import sys; from bridge.data.capture import make_env; assert 'bridge.gym' not in sys.modules; "
            "e = make_env('WorldBridge/Sandbox-v0'); e.reset(seed=0); print(e.render().shape); e.close()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().startswith("("), r.stderr


def test_a_captured_worldbridge_env_keeps_its_own_action_names(tmp_path):
    """WorldEnv names its actions (get_action_meanings), so footage of the sandbox says `left`, not `action_1`."""
    capture("WorldBridge/Sandbox-v0", tmp_path / "sb", episodes=2, frames=8, size=16, progress=False)
    names = VideoDataset(tmp_path / "sb").action_names
    assert names[:3] == ["noop", "left", "right"] and not any(n.startswith("action_") for n in names)
