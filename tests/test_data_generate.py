"""Sandbox dataset generation: format, alignment of actions with frames, determinism, splits, atomic output."""

import json
import sys

import numpy as np
import pytest
import torch

import bridge.data.generate as gen
from bridge.backend import Prompt, WorldEvent
from bridge.data.dataset import VideoDataset
from bridge.data.generate import GenerateConfig, generate
from bridge.worlds.sandbox import ACTIONS, SandboxWorld

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "ds"
    cfg = GenerateConfig(episodes=8, frames=60, seed=3, workers=2, sketch=True, event_fraction=1.0,
                         events_per_episode=2, val_fraction=0.2)
    summary = generate(cfg, out, progress=False)
    return out, summary


def test_manifest_and_shards_follow_the_format(small):
    out, summary = small
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["format"] == "worldbridge-video" and m["version"] == 1
    assert (m["height"], m["width"], m["source"], m["action_names"]) == (64, 64, "sandbox", ACTIONS)
    assert len(m["episodes"]) == 8 and summary["frames"] == 480
    for e in m["episodes"]:
        assert {"id", "shard", "start", "length", "seed", "caption", "params", "events", "split"} <= set(e)
        assert e["split"] in ("train", "val") and e["length"] == 60 and e["caption"].startswith("a ")
        assert all({"type", "frame", "caption"} <= set(ev) for ev in e["events"])
    frames = np.load(out / "frames_00000.npy", mmap_mode="r")
    assert frames.dtype == np.uint8 and frames.shape[1:] == (64, 64, 3)
    for kind in ("actions", "effective_actions"):
        a = np.load(out / f"{kind}_00000.npy")
        assert a.dtype == np.int16 and a.shape == (len(frames),)
    assert np.load(out / "sketches_00000.npy", mmap_mode="r").shape == frames.shape
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_actions_are_aligned_with_frames_by_replaying_them(small):
    """actions[i] takes frame i to frame i+1: replaying them in the game must reproduce every frame exactly."""
    ds = VideoDataset(small[0])
    assert sum(len(e.events) for e in ds.episodes) >= 8
    for ep in ds.episodes[:4]:
        frames, acts, eff = ds.frames(ep), ds.actions(ep), ds.actions(ep, effective=True)
        assert acts[-1] == -1 and eff[-1] == -1 and acts[:-1].min() >= 0
        w = SandboxWorld(size=64, seed=123)
        assert np.array_equal(w.reset(Prompt(seed=ep.seed)), frames[0])
        events = {e["frame"]: e["type"] for e in ep.events}
        for t in range(ep.length - 1):
            ev = WorldEvent(type=events[t + 1]) if t + 1 in events else None
            assert np.array_equal(w.step(int(acts[t]), ev), frames[t + 1]), f"episode {ep.id} frame {t + 1}"
            assert w.effective_action == eff[t]
        np.testing.assert_array_equal(ds.sketches(ep)[-1], w.sketch())


def test_generation_is_deterministic_and_splits_by_seed(small, tmp_path):
    """The manifest's `generated_by` is enough to make the same footage again (one worker instead of two)."""
    out, _ = small
    again = tmp_path / "again"
    made_by = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["generated_by"]
    assert (made_by["episodes"], made_by["frames"], made_by["seed"], made_by["val_fraction"]) == (8, 60, 3, 0.2)
    generate(GenerateConfig(**{**made_by, "players": tuple(made_by["players"]),
                               "player_weights": tuple(made_by["player_weights"]), "workers": 1}), again, progress=False)
    a, b = VideoDataset(out), VideoDataset(again)
    for ea, eb in zip(a.episodes, b.episodes):
        assert np.array_equal(a.frames(ea), b.frames(eb)) and ea.to_dict() == eb.to_dict()
    train, val = {e.seed for e in a.split("train")}, {e.seed for e in a.split("val")}
    assert val and train and not train & val


def test_episodes_cover_themes_times_and_weathers(tmp_path):
    generate(GenerateConfig(episodes=40, frames=2, seed=0, workers=1), tmp_path / "d", progress=False)
    ds = VideoDataset(tmp_path / "d")
    for key, n in (("theme", 5), ("time", 3), ("weather", 4)):
        assert len({e.params[key] for e in ds.episodes}) == n, key


def test_interrupted_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = gen.play_episode

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(gen, "play_episode", flaky)
    out = tmp_path / "nested" / "ds"
    with pytest.raises(KeyboardInterrupt):
        generate(GenerateConfig(episodes=6, frames=20, workers=1), out, progress=False)
    assert not out.exists() and not (tmp_path / "nested").exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "ds"
    generate(GenerateConfig(episodes=2, frames=5, workers=1), out, progress=False)
    with pytest.raises(FileExistsError, match="--overwrite"):
        generate(GenerateConfig(episodes=2, frames=5, workers=1), out, progress=False)
    generate(GenerateConfig(episodes=3, frames=5, workers=1), out, overwrite=True, progress=False)
    assert len(VideoDataset(out).episodes) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


@pytest.mark.parametrize("platform, method", [("linux", "fork"), ("darwin", "spawn")])
def test_workers_fork_only_on_linux(tmp_path, monkeypatch, platform, method):
    """macOS forbids fork once its system libraries (or tqdm's monitor thread) run: workers start fresh there."""
    import multiprocessing as mp

    methods, real = [], mp.get_context
    monkeypatch.setattr(mp, "get_context", lambda m=None: methods.append(m) or real(m))
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(gen, "SHARD_FRAMES", 5)  # a shard an episode: two jobs, so a pool
    generate(GenerateConfig(episodes=2, frames=5, workers=2), tmp_path / "ds", progress=False)
    assert methods == [method] and len(VideoDataset(tmp_path / "ds").episodes) == 2


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="only 'sandbox'"):
        GenerateConfig(world="minecraft")
    with pytest.raises(ValueError, match="workers"):
        GenerateConfig(workers=0)
    with pytest.raises(ValueError, match=r"^--event-fraction must be in \[0, 1\], got 2$"):
        GenerateConfig(event_fraction=2)  # once refused as "--events-per-episode must be >= 0 and ..."
    with pytest.raises(ValueError, match=r"^--events-per-episode must be >= 0, got -1$"):
        GenerateConfig(events_per_episode=-1)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_kill_during_parallel_generation_cleans_up(tmp_path, sig):
    """A real SIGINT or SIGTERM to `worldbridge data generate --workers 2` leaves neither the dataset nor its temp
    folder."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "ds"
    proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "data", "generate", "--episodes", "400", "--frames", "500",
                             "--workers", "2", "--out", str(out), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            # a shell starts `cmd &` with SIGINT ignored, and children inherit that: Ctrl-C as a terminal sends it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 30
    while time.time() < deadline and not any(p.name.startswith(".ds.tmp-") for p in tmp_path.iterdir()):
        time.sleep(0.05)
    time.sleep(0.3)
    sent = time.time()
    proc.send_signal(getattr(signal, sig))
    out_, err = proc.communicate(timeout=30)
    # if this exits 0, say what the process did (it once ran on: pytest had been started with `&`, SIGINT ignored)
    assert proc.returncode != 0, (f"exit 0 {time.time() - sent:.1f} s after {sig}; seen: {[p.name for p in tmp_path.iterdir()]}; "
                                  f"stdout: {out_.decode()[-500:]!r}; stderr: {err.decode()[-1500:]!r}")
    assert list(tmp_path.iterdir()) == []


def test_events_planned_on_one_frame_all_fire():
    from bridge.worlds.sandbox import SandboxWorld

    plan = {"id": 0, "seed": 5, "player": "random", "event_frames": [8, 8, 21]}  # the plan's draws may repeat a frame
    *_, meta = gen.play_episode(SandboxWorld(size=64), plan, frames=30, sketch=False)
    assert [e["frame"] for e in meta["events"]] == [8, 9, 21]  # none dropped: the second fires on the next frame
