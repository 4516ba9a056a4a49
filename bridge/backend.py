"""The contract every world backend meets, so the host serves the sandbox and a trained model alike."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from bridge.values import is_number


@dataclass
class Prompt:
    """What a world starts from; any combination may be given, all may be empty."""

    seed: int | None = None
    text: str | None = None
    image: np.ndarray | None = None  # (H, W, 3) uint8 RGB (RGBA: over white, `opaque`), any size: resized
    sketch: np.ndarray | None = None  # (H, W, 3) uint8 flat-colour layout (bridge.worlds.sketch); RGBA as image


def over(rgba: np.ndarray, below: np.ndarray | int) -> np.ndarray:
    """Integer "over" compositing, rounded: alpha 255 keeps the layer, 0 what lies below (an image or a grey level)."""
    a = rgba[..., 3:].astype(np.uint32)
    return ((rgba[..., :3].astype(np.uint32) * a + np.asarray(below, np.uint32) * (255 - a) + 127) // 255).astype(np.uint8)


def opaque(image: np.ndarray) -> np.ndarray:
    """(H, W, 4) RGBA uint8 -> (H, W, 3) over white: a transparent pixel was not drawn (sky, in a sketch); else as is."""
    img = np.asarray(image)
    return over(img, 255) if img.ndim == 3 and img.shape[2] == 4 and img.dtype == np.uint8 else img


@dataclass
class WorldEvent:
    """A promptable world event: a typed event, free text, or both."""

    type: str | None = None  # one of the backend's `event_types`, e.g. "weather_snow"
    text: str | None = None  # free text, e.g. "it begins to snow"
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def has_text(self) -> bool:
        """Free text that says something: blank text is no text."""
        return bool(self.text and self.text.strip())

    @property
    def fires(self) -> bool:
        """Whether this is an event at all (a type, or text that says something); an empty one is no event."""
        return self.type is not None or self.has_text


SANDBOX_LABEL = "SANDBOX GAME (test backend, not the world model): {name}"
WORLD_MODEL_LABEL = "WORLD MODEL: {name}"


def backend_label(kind: str, name: str) -> str:
    """The one wording badges, exports and CLI lines name the running backend with, so the sandbox never passes for
    the model (Unity's Protocol.cs and Godot's protocol.gd keep copies, pinned by tests/test_backend_label.py)."""
    if kind == "sandbox":
        return SANDBOX_LABEL.format(name=name)
    if kind == "world_model":  # its name says "world model tiny (...)": the label says it once
        return WORLD_MODEL_LABEL.format(name=name.removeprefix("world model "))
    return "unknown backend" + (f" {kind}" if kind else "") + f": {name}"


def recorded_backend_label(kind: str, name: str, header_lost: bool = False) -> str:
    """What made a recording's frames, from its header's backend (kind, name), in the one wording `record info` and
    exports share: `backend_label`, or why it is unknown (the header was lost, or named no backend), never a label
    with nothing after its colon."""
    if header_lost:
        return "backend unknown (the recording's header was damaged)"
    return backend_label(kind, name) if kind or name else "backend unknown (not recorded with these frames)"


DEFAULT_FPS = 24.0  # what a realtime session ticks at when neither its client nor its backend names a rate


def own_fps(backend: Any, low: float, high: float) -> float:
    """The rate a session whose client names none plays the backend at, in-process as through a host: the one its
    frames were made at (a world's footage, the sandbox game's), held to low..high (the host's `Limits`), or
    DEFAULT_FPS when it states none."""
    fps = getattr(backend, "fps", None)
    return min(max(float(fps), low), high) if is_number(fps) and math.isfinite(fps) and fps > 0 else DEFAULT_FPS


def takes(fn: Any, name: str) -> bool:
    """True when `fn` accepts the keyword `name` (or any keyword): which knobs a backend's `configure` can be given."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def close_backend(backend: Any) -> None:
    """Free a backend now (a world model's weights), not when it is garbage-collected: `close()` is optional."""
    close = getattr(backend, "close", None)
    if callable(close):
        close()


class StepRefused(ValueError):
    """`step_batch` refused an action or event before any world moved: the host steps each session alone instead,
    so only the session that sent it hears about it. Any other error may come after some worlds moved."""


class WorldBackend(Protocol):
    """A world the host can roll forward one frame at a time."""

    kind: str  # "sandbox" (the scripted game, a test backend) or "world_model" (a trained checkpoint)
    name: str  # human-readable, shown to users, e.g. "sandbox game" or "world model tiny (step 12000)"
    action_names: list[str]  # index = action id; named actions clients may send
    num_latent_actions: int  # for the sandbox this equals len(action_names)
    event_types: list[str]  # typed events this backend understands
    height: int
    width: int
    # optional: `fps` (float), the rate its frames were made at (a world's footage fps, the sandbox game's): a session
    # whose client names no rate ticks at it (`own_fps`)
    # optional: `event_frames_left` (int), frames the last event still conditions; the host fires a queued event
    # after them (the world model holds an event `hold` frames, the sandbox applies it at once)

    def reset(self, prompt: Prompt) -> np.ndarray:
        """Start a new world; returns the first frame (H, W, 3) uint8."""
        ...

    def step(self, action: int, event: WorldEvent | None = None) -> np.ndarray:
        """Advance one frame under `action` (and an event, if one fires now); returns (H, W, 3) uint8."""
        ...

    def get_state(self) -> Any:
        """An opaque snapshot of everything that determines future frames (for branching), but the sampling settings:
        those stay as the session has them now, so a branch plays on with the user's current settings."""
        ...

    def set_state(self, state: Any) -> None:
        """Restore a snapshot taken by get_state; the world continues from it deterministically."""
        ...
