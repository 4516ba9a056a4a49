"""Export a timeline as MP4, GIF, PNG frames and an action log; atomic writes, progress through a callback."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np

from bridge.files import publish
from editor_gui.session_store import FrameRecord

Progress = Callable[[int, int], bool]  # (done, total) -> keep going? (False cancels)
FORMATS = ("mp4", "gif", "png", "actions")


class ExportCancelled(Exception):
    """The user cancelled an export; nothing was written."""


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling: small world frames stay crisp in players and editors."""
    return image if scale == 1 else image.repeat(scale, axis=0).repeat(scale, axis=1)


def auto_scale(height: int, width: int, target: int = 384) -> int:
    """An integer scale that brings the frame near `target` pixels and keeps MP4 sizes a multiple of 16."""
    scale = max(1, round(target / max(height, width)))
    while (height * scale) % 16 or (width * scale) % 16:
        scale += 1
        if scale > 64:
            return max(1, round(target / max(height, width)))
    return scale


def _tick(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None and progress(done, total) is False:
        raise ExportCancelled()


def _temp_beside(path: Path, suffix: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def export_mp4(frames: Sequence[np.ndarray], path: Path, fps: float, scale: int = 1, progress: Progress | None = None) -> Path:
    """H.264 MP4 through imageio-ffmpeg (yuv420p, plays everywhere)."""
    if not frames:
        raise ValueError("nothing to export: record some frames first (the timeline's Record button)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path, ".mp4")
    try:
        writer = iio2.get_writer(tmp, format="FFMPEG", mode="I", fps=float(fps), codec="libx264", quality=8,
                                 pixelformat="yuv420p", macro_block_size=2, ffmpeg_log_level="error")
        try:
            for i, frame in enumerate(frames):
                writer.append_data(upscale(frame, scale))
                _tick(progress, i + 1, len(frames))
        finally:
            writer.close()
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def export_gif(frames: Sequence[np.ndarray], path: Path, fps: float, scale: int = 1, progress: Progress | None = None) -> Path:
    """Looping GIF (flat-colour worlds quantise well)."""
    if not frames:
        raise ValueError("nothing to export: record some frames first (the timeline's Record button)")
    path.parent.mkdir(parents=True, exist_ok=True)
    scaled = []
    for i, frame in enumerate(frames):
        scaled.append(upscale(frame, scale))
        _tick(progress, i + 1, len(frames) + 1)
    tmp = _temp_beside(path, ".gif")
    try:
        iio.imwrite(tmp, np.stack(scaled), extension=".gif", duration=1000.0 / float(fps), loop=0)
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _tick(progress, len(frames) + 1, len(frames) + 1)
    return path


def export_png_frames(records: Sequence[FrameRecord], folder: Path, scale: int = 1, progress: Progress | None = None) -> Path:
    """One PNG per frame, named by frame index, into a folder that appears complete or not at all."""
    recs = [r for r in records if r.image is not None]
    if not recs:
        raise ValueError("nothing to export: record some frames first (the timeline's Record button)")
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not empty; choose a new folder name")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        for i, r in enumerate(recs):
            iio.imwrite(tmp / f"frame_{r.index:06d}.png", upscale(r.image, scale))
            _tick(progress, i + 1, len(recs))
        if folder.exists():
            folder.rmdir()
        publish(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def action_log(records: Sequence[FrameRecord], action_names: Callable[[int], str], fps: float) -> dict:
    """The replayable log: per frame the action id and name, events fired and their captions."""
    return {
        "fps": fps,
        "frames": [{"index": r.index, "action": r.action, "action_name": action_names(r.action) if r.action >= 0 else None,
                    "events": r.events, "fired": r.fired, "recorded": r.image is not None} for r in records],
    }


def export_actions(log: dict, path: Path) -> Path:
    """Write the action log as JSON, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path, ".json")
    try:
        tmp.write_text(json.dumps(log, indent=1))
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
