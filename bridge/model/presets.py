"""Named model sizes: micro (tests), tiny (real time on a 2-core CPU), small and base (GPU)."""

from __future__ import annotations

import copy

from bridge.model.config import DynamicsConfig, LatentActionConfig, TokenizerConfig, WorldConfig

PRESETS: dict[str, WorldConfig] = {
    # trains in seconds; only for tests and smoke runs
    "micro": WorldConfig(
        preset="micro", height=16, width=16,
        tokenizer=TokenizerConfig(patch=4, dim=32, enc_depth=1, dec_depth=1, heads=2, codebook=64, code_dim=8,
                                  window=4, clip_len=4, reset_after=20),
        lam=LatentActionConfig(patch=8, dim=32, depth=1, heads=2, num_actions=4, code_dim=8, window=8, reset_after=20),
        dynamics=DynamicsConfig(dim=32, depth=2, heads=2, window=8, clip_len=8, steps=4),
    ),
    # CPU real time: 64x64 frames, patch 8 -> 64 tokens/frame; 21-38 ms per generated frame on 2 cores, by setting
    # (docs/model.md, Presets and speed)
    "tiny": WorldConfig(
        preset="tiny", height=64, width=64,
        tokenizer=TokenizerConfig(patch=8, dim=128, enc_depth=4, dec_depth=4, heads=4, codebook=1024, code_dim=32,
                                  window=4, clip_len=8),
        lam=LatentActionConfig(patch=16, dim=128, depth=4, heads=4, num_actions=8, code_dim=16, window=16),
        dynamics=DynamicsConfig(dim=192, depth=4, heads=6, window=16, clip_len=16, steps=4),
    ),
    # GPU: patch 4 -> 256 tokens/frame at 64x64
    "small": WorldConfig(
        preset="small", height=64, width=64,
        tokenizer=TokenizerConfig(patch=4, dim=192, enc_depth=6, dec_depth=6, heads=6, codebook=1024, code_dim=32,
                                  window=8, clip_len=8),
        lam=LatentActionConfig(patch=16, dim=192, depth=6, heads=6, num_actions=8, code_dim=32, window=16),
        dynamics=DynamicsConfig(dim=384, depth=8, heads=8, window=16, clip_len=16, steps=12),
    ),
    # GPU, closer to Genie: patch 4, wider and deeper, 25 MaskGIT steps
    "base": WorldConfig(
        preset="base", height=64, width=64,
        tokenizer=TokenizerConfig(patch=4, dim=256, enc_depth=8, dec_depth=8, heads=8, codebook=1024, code_dim=32,
                                  window=16, clip_len=16),
        lam=LatentActionConfig(patch=16, dim=256, depth=8, heads=8, num_actions=8, code_dim=32, window=16),
        dynamics=DynamicsConfig(dim=512, depth=12, heads=8, window=16, clip_len=16, steps=25),
    ),
}

# per-rank batch (clips), learning rate, steps; see docs/model.md for how tiny's numbers fit 2 CPU hours
TRAIN_DEFAULTS: dict[str, dict[str, dict[str, float]]] = {
    "micro": {"tokenizer": {"batch": 8, "lr": 3e-3, "steps": 200}, "dynamics": {"batch": 8, "lr": 3e-3, "steps": 200}},
    "tiny": {"tokenizer": {"batch": 16, "lr": 5e-4, "steps": 4000}, "dynamics": {"batch": 8, "lr": 4e-4, "steps": 4000}},
    "small": {"tokenizer": {"batch": 32, "lr": 3e-4, "steps": 50000}, "dynamics": {"batch": 32, "lr": 3e-4, "steps": 100000}},
    "base": {"tokenizer": {"batch": 48, "lr": 3e-4, "steps": 200000}, "dynamics": {"batch": 36, "lr": 3e-4, "steps": 200000}},
}


def get_preset(name: str) -> WorldConfig:
    """A fresh copy of a named preset (callers may edit it)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])
