"""WorldBridge: a Genie-style world model host and its protocol."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch and the model load only when a world does
    import torch

    from bridge.model.world import WorldModelBackend

__version__ = "0.1.0"
DEFAULT_WORLD = Path(__file__).resolve().parent / "assets" / "default_world"  # the embedded default checkpoint


def load_world(path: str | Path | None = None, device: str | torch.device | None = None,
               autocast: bool | None = None, compile: bool | str = False) -> WorldModelBackend:
    """Load a trained world-model checkpoint (the embedded default when path is None), as docs/model.md shows it."""
    from bridge.model.world import load_world as _load

    return _load(path, device=device, autocast=autocast, compile=compile)
