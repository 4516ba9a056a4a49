"""Shared fixtures for the prompt tests: a micro world at the sandbox's 64x64, and a tiny captioned sandbox dataset."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

_CACHE: dict[str, Path] = {}


def micro64_config(**dynamics):
    """The micro preset at 64x64 frames with 16-pixel patches: 16 tokens per frame, trains in seconds."""
    from bridge.model.presets import get_preset

    cfg = get_preset("micro")
    cfg.height = cfg.width = 64
    cfg.tokenizer.patch = 16
    cfg.lam.patch = 16
    for k, v in dynamics.items():
        setattr(cfg.dynamics, k, v)
    cfg.validate()
    return cfg


def save_micro_world(out: Path, seed: int = 0, bank: int = 4, **dynamics) -> Path:
    """An untrained but complete 64x64 micro world checkpoint."""
    from bridge.model.checkpoint import save_model, state_tensors
    from bridge.model.genie import WorldModel

    cfg = micro64_config(**dynamics)
    torch.manual_seed(seed)
    model = WorldModel(cfg, bank_size=bank)
    model.bank.copy_(torch.randint(0, model.tokenizer.vocab, model.bank.shape))
    save_model(out, "world", cfg, state_tensors(model), {"step": 0, "preset": "micro64"}, 0)
    return Path(out)


def save_held_event_settings(world: Path, captions: dict[str, str]) -> None:
    """Each of `world`'s events holds the cond slot 4 frames, so an event sent behind it waits its turn."""
    from bridge.prompts.events import EventSettings, save_event_settings

    save_event_settings(world, EventSettings(encoder="hashing", hold=4, guidance=1.0, captions=captions))


def sandbox_dataset(episodes: int = 6, frames: int = 24) -> Path:
    """A captioned sandbox dataset with sketches and events in every episode (made once per test session)."""
    key = f"ds{episodes}x{frames}"
    if key not in _CACHE:
        import atexit

        from bridge.data.generate import GenerateConfig, generate

        root = Path(tempfile.mkdtemp(prefix="wb-prompts-"))
        atexit.register(shutil.rmtree, root, True)
        cfg = GenerateConfig(episodes=episodes, frames=frames, workers=1, sketch=True, event_fraction=1.0,
                             events_per_episode=2.0, val_fraction=0.2, seed=3)
        generate(cfg, root / "ds", progress=False)
        _CACHE[key] = root / "ds"
    return _CACHE[key]


def solid_rgba(h: int, w: int, rgb=(255, 0, 0), alpha: int = 255) -> np.ndarray:
    layer = np.zeros((h, w, 4), np.uint8)
    layer[..., :3] = rgb
    layer[..., 3] = alpha
    return layer


def trained_prompt_world(root: Path) -> Path:
    """root/world (no prompt training) and root/pw: events (hold 3) and a sketch-trained first-frame model, all with
    the hashing encoder. Trained once a test run (the `prompt_world_root` fixture)."""
    from bridge.prompts.train import PromptTrainOptions, train_events, train_first_frame

    world = save_micro_world(root / "world")
    data = str(sandbox_dataset())
    train_events(PromptTrainOptions(world=str(world), data=data, out=str(root / "pw"), steps=20, batch=8, lr=3e-3,
                                    encoder="hashing", clip_len=6, hold=3, progress=False))
    train_first_frame(PromptTrainOptions(world=str(root / "pw"), data=data, steps=20, batch=8, preset="micro",
                                         encoder="hashing", max_frames=120, progress=False))
    return root
