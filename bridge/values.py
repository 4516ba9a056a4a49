"""Checks of plain values that every layer shares; it imports nothing from bridge, so any layer may import it."""

from __future__ import annotations

from typing import Any


def is_int(v: Any) -> bool:
    """True for an int that is not a bool: Python counts True as 1, and no id, count or size is ever a flag."""
    return isinstance(v, int) and not isinstance(v, bool)
