"""A tiny controllable dataset for the model/training tests (a square moved by 5 actions), and checks on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bridge.data.dataset import ClipSampler, VideoDataset
from bridge.data.writer import DatasetWriter

SQUARE_ACTIONS = ["noop", "left", "right", "up", "down"]
MOVES = {0: (0, 0), 1: (-2, 0), 2: (2, 0), 3: (0, -2), 4: (0, 2)}


def square_episode(rng: np.random.Generator, length: int, size: int = 16):
    """Frames (L, size, size, 3) of a 4x4 square on a per-episode background; actions and effective actions (L,)."""
    bg = rng.integers(0, 120, 3)
    frames = np.empty((length, size, size, 3), np.uint8)
    actions = np.full(length, -1, np.int16)
    effective = np.full(length, -1, np.int16)
    x, y = rng.integers(0, size - 4, 2)
    a = 0
    for t in range(length):
        frames[t] = bg
        frames[t, y:y + 4, x:x + 4] = (255, 230, 40)
        if t == length - 1:
            break
        if rng.random() < 0.3:
            a = int(rng.integers(0, 5))
        dx, dy = MOVES[a]
        nx, ny = int(np.clip(x + dx, 0, size - 4)), int(np.clip(y + dy, 0, size - 4))
        actions[t], effective[t] = a, (a if (nx, ny) != (x, y) else 0)
        x, y = nx, ny
    return frames, actions, effective


def write_square_dataset(out: Path, episodes: int = 12, length: int = 40, size: int = 16, seed: int = 0) -> Path:
    """A real on-disk worldbridge-video dataset; the last two episodes form the val split."""
    rng = np.random.default_rng(seed)
    with DatasetWriter(out, height=size, width=size, fps=10.0, action_names=SQUARE_ACTIONS, source="test-square") as w:
        for i in range(episodes):
            f, a, e = square_episode(rng, length, size)
            w.add_episode({"id": i, "seed": i, "split": "val" if i >= episodes - 2 else "train"}, f, a, e)
        w.finish()
    return Path(out)


def test_square_dataset_reads_back_with_aligned_actions(tmp_path):
    ds = VideoDataset(write_square_dataset(tmp_path / "sq"))
    assert (ds.height, ds.width, len(ds.split("val")), len(ds.split("train"))) == (16, 16, 2, 10)
    frames, acts = ClipSampler(ds, 8, "train", seed=1).sample_with_actions(4)
    assert frames.shape == (4, 8, 16, 16, 3) and acts.shape == (4, 7)
    # action t moves the square between frame t and t+1 (right = +2 px in x)
    ep = next(e for e in ds.split("train") if (ds.actions(e, effective=True) == 2).any())
    f, a = ds.frames(ep), ds.actions(ep, effective=True)
    t = int(np.flatnonzero(a == 2)[0])
    xs = [np.flatnonzero((f[i] == (255, 230, 40)).all(-1).any(0))[0] for i in (t, t + 1)]
    assert xs[1] - xs[0] == 2


def save_random_world(out: Path, preset: str = "micro", bank: int = 4, seed: int = 0, **dynamics) -> Path:
    """An untrained but complete world checkpoint (fast; for tests of plumbing, not of quality)."""
    import torch

    from bridge.model.checkpoint import save_model, state_tensors
    from bridge.model.genie import WorldModel
    from bridge.model.presets import get_preset

    cfg = get_preset(preset)
    for k, v in dynamics.items():
        setattr(cfg.dynamics, k, v)
    torch.manual_seed(seed)
    model = WorldModel(cfg, bank_size=bank)
    model.bank.copy_(torch.randint(0, model.tokenizer.vocab, model.bank.shape))
    save_model(out, "world", cfg, state_tensors(model), {"step": 0, "preset": preset}, 0)
    return Path(out)


def roll(world, actions) -> np.ndarray:
    """The frames a world draws for a list of actions, stacked (for comparing two rollouts)."""
    return np.stack([world.step(a) for a in actions])


_TRAINED: dict[str, Path] = {}


def trained_micro(steps: int = 120) -> dict[str, Path]:
    """Train the micro tokenizer and world once per test session on the square dataset (about 10 s)."""
    if not _TRAINED:
        import atexit
        import shutil
        import tempfile

        import torch

        from bridge.train.trainer import TrainOptions, train

        torch.set_num_threads(1)
        root = Path(tempfile.mkdtemp(prefix="wb-micro-"))
        atexit.register(shutil.rmtree, root, True)
        ds = write_square_dataset(root / "ds")
        common = dict(data=str(ds), preset="micro", steps=steps, progress=False, log_every=10)
        train(TrainOptions(stage="tokenizer", out=str(root / "tok"), **common))
        train(TrainOptions(stage="dynamics", out=str(root / "world"), tokenizer=str(root / "tok"), **common))
        _TRAINED.update(root=root, data=ds, tok=root / "tok", world=root / "world")
    return _TRAINED


DAMAGE = ["missing", "empty_dir", "plain_file", "truncated", "pickle", "no_config", "wrong_shapes", "bad_events",
          "tokenizer_only"]
# what a command line refuses before any load (exit 2): a --checkpoint not there (options.backend_refused), or a file
# given for its folder (options.Folder)
USAGE_DAMAGE = ("missing", "plain_file")


def damaged_checkpoint(tmp_path: Path, how: str) -> Path:
    """A checkpoint broken in one way a user meets: gone, empty, a file, cut short, pickled, other shapes,
    bad events, or a tokenizer's where a world belongs."""
    ck = tmp_path / "ck"
    if how == "missing":
        return ck
    if how == "empty_dir":
        ck.mkdir()
        return ck
    if how == "plain_file":
        ck.write_bytes(b"not a checkpoint")
        return ck
    save_random_world(ck)
    model = ck / "model.safetensors"
    if how == "truncated":
        model.write_bytes(model.read_bytes()[:-1000])
    elif how == "pickle":
        import pickle

        model.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    elif how == "no_config":
        (ck / "config.json").unlink()
    elif how == "wrong_shapes":
        other = save_random_world(tmp_path / "other", preset="tiny")
        model.write_bytes((other / "model.safetensors").read_bytes())
    elif how == "bad_events":
        (ck / "events.json").write_text("{\n")
    elif how == "tokenizer_only":
        import json

        config = json.loads((ck / "config.json").read_text())
        (ck / "config.json").write_text(json.dumps({**config, "kind": "tokenizer"}))
    return ck
