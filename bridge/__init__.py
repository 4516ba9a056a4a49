"""WorldBridge: a Genie-style world model host and its protocol."""

from __future__ import annotations

__version__ = "0.1.0"


def load_world(path=None, device: str | None = None):
    """Load a trained world-model checkpoint (the embedded default when path is None)."""
    from bridge.model.world import load_world as _load

    return _load(path, device=device)
