"""Worlds that are not the world model: the sandbox game (a data source and a test backend)."""

from bridge.worlds.events import EVENT_TYPES
from bridge.worlds.sandbox import ACTIONS, SKETCH_PALETTE, SandboxWorld, sketch_to_level

__all__ = ["ACTIONS", "EVENT_TYPES", "SKETCH_PALETTE", "SandboxWorld", "sketch_to_level"]
