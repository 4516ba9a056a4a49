"""The editor's exports (MP4, GIF, PNG frames, an action log): thin calls into bridge.export, the one exporter."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bridge.export import auto_scale, export_frames, source_label, upscale  # noqa: F401 - the editor's API
from bridge.files import Progress
from bridge.files import atomic_write_json
from editor_gui.session_store import FrameRecord

FORMATS = ("mp4", "gif", "png", "actions")
NOTHING = "nothing to export: record some frames first (the timeline's Record button)"
UNKNOWN = source_label(())  # frames from a session file that never said which backend made them


def export_mp4(frames: Sequence[np.ndarray], path: Path, fps: float, scale: int = 1, progress: Progress | None = None,
               label: str = UNKNOWN) -> Path:
    """H.264 MP4 (yuv420p, plays everywhere), titled with the backend that made it."""
    if not frames:
        raise ValueError(NOTHING)
    return export_frames(frames, {"mp4": path}, fps, scale, progress, label=label)["mp4"]


def export_gif(frames: Sequence[np.ndarray], path: Path, fps: float, scale: int = 1, progress: Progress | None = None,
               label: str = UNKNOWN) -> Path:
    """Looping GIF (flat-colour worlds quantise well), its comment naming the backend that made it."""
    if not frames:
        raise ValueError(NOTHING)
    return export_frames(frames, {"gif": path}, fps, scale, progress, label=label)["gif"]


def export_png_frames(records: Sequence[FrameRecord], folder: Path, scale: int = 1, progress: Progress | None = None,
                      label: str = UNKNOWN) -> Path:
    """One PNG per frame, named by frame index, into a new folder that appears complete or not at all."""
    recs = [r for r in records if r.image is not None]
    if not recs:
        raise ValueError(NOTHING)
    return export_frames([r.image for r in recs], {"frames": folder}, 1.0, scale, progress,
                         png_names=[f"frame_{r.index:06d}.png" for r in recs], label=label)["frames"]


def action_log(records: Sequence[FrameRecord], action_names: Callable[[int], str], fps: float,
               world: dict | None = None) -> dict:
    """The replayable log: which backend and prompt made the world (a sandbox log must never pass for the world
    model's), then per frame the action id and name, events fired and their captions."""
    return {
        "fps": fps,
        "world": world or {},
        "frames": [{"index": r.index, "action": r.action, "action_name": action_names(r.action) if r.action >= 0 else None,
                    "events": r.events, "fired": r.fired, "recorded": r.image is not None} for r in records],
    }


def export_actions(log: dict, path: Path) -> Path:
    """Write the action log as JSON, atomically."""
    atomic_write_json(path, log)
    return Path(path)
