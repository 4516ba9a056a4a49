"""WorldBridge: a Genie-style world model host and its protocol."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"
DEFAULT_WORLD = Path(__file__).resolve().parent / "assets" / "default_world"  # the embedded default checkpoint


def load_world(path: str | Path | None = None, device: str | None = None) -> "WorldModelBackend":  # noqa: F821
    """Load a trained world-model checkpoint (the embedded default when path is None)."""
    from bridge.model.world import load_world as _load

    return _load(path, device=device)
