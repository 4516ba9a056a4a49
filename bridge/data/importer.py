"""Importing footage as a video-only dataset: video files, GIFs, folders of images, and host session recordings."""

from __future__ import annotations

import datetime as _dt
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from bridge.data.writer import DatasetWriter
from bridge.values import plural

if TYPE_CHECKING:
    from bridge.host.recording import RecordingReader

VIDEO_EXTS = {".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v", ".mpg", ".mpeg"}
GIF_EXTS = {".gif"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
RECORDING_EXTS = {".wbrec"}
ASSUMED_VIDEO_FPS = 30.0  # the rate a video is read at when its file states none (with a warning)


class FootageWarning(UserWarning):
    """Footage that imports, but maybe not whole (a video that ends before its file says)."""


class FootageError(ValueError):
    """A file that cannot be imported; the message names it."""


def square_resize(frame: np.ndarray, size: int) -> np.ndarray:
    """Center-crop to a square, then resize to size x size (area filter when shrinking)."""
    from PIL import Image

    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    if frame.shape[2] == 4:
        frame = frame[..., :3]
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    h, w = frame.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = np.ascontiguousarray(frame[y0 : y0 + s, x0 : x0 + s])
    if s == size:
        return crop
    resample = Image.Resampling.BOX if s > size else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(crop).resize((size, size), resample))


def resample_indices(times: np.ndarray, fps: float, end: float | None = None) -> np.ndarray:
    """Indices of source frames (starting at `times` seconds) shown at each tick of a `fps` clock.

    Each tick shows the latest frame that started at or before it; ticks run until `end` (exclusive; the end of
    the last frame) or, without it, up to the last frame's start.
    """
    times = np.asarray(times, np.float64)
    if len(times) == 0:
        return np.zeros(0, np.int64)
    if end is None:
        n = int(np.floor((times[-1] - times[0]) * fps + 1e-9)) + 1
    else:
        n = max(1, int(np.ceil((end - times[0]) * fps - 1e-9)))
    ticks = times[0] + np.arange(n) / fps
    return np.clip(np.searchsorted(times, ticks + 1e-9, side="right") - 1, 0, len(times) - 1)


def _video_header(path: Path) -> tuple[float | None, float]:
    """A video file's frame rate (None if it states none) and its duration in seconds (0 if unknown), from an ffmpeg
    probe of its header (imageio + imageio-ffmpeg)."""
    import imageio.v3 as iio

    try:
        meta = iio.immeta(path, plugin="FFMPEG")
        fps = float(meta.get("fps") or 0)
        duration = float(meta.get("duration") or 0)
        return fps if np.isfinite(fps) and fps > 0 else None, duration if np.isfinite(duration) else 0.0
    except Exception as e:  # imageio raises several types for unreadable files
        detail = str(e).strip().splitlines()[0] if str(e).strip() else "no detail"
        raise FootageError(f"{path}: ffmpeg reads no video in it ({type(e).__name__}: {detail}): it is not a video, or "
                           "damaged or cut short (an MP4 cut off before its index, which is often written last); "
                           "export or copy it again, or leave it out") from None


def _gif_frames(path: Path) -> tuple[list[np.ndarray], list[float], float]:
    """Frames of an animated GIF, each frame's start time and the end time, in seconds."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            frames, times, t = [], [], 0.0
            for f in ImageSequence.Iterator(im):
                frames.append(np.asarray(f.convert("RGB")))
                times.append(t)
                t += (f.info.get("duration") or 100) / 1000.0
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise FootageError(f"{path}: cannot read this GIF ({e})") from None
    return frames, times, t


def _image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise FootageError(f"{path}: cannot read this image ({e})") from None


def _kept_frames(frames: list, fps: float) -> list[np.ndarray]:
    """One epoch's images, stretch by stretch of one mode: in step mode the session made one frame per world step,
    whatever the wall clock did, so every frame is kept, and so is every frame of a mode lost with the recording's
    header (nothing is dropped on a guess); a realtime stretch is resampled to `fps` by the host clock."""
    kept = []
    for mode, run in groupby(frames, key=lambda f: f.mode):
        if mode in ("step", "unknown"):
            kept += [f.image for f in run]
            continue
        times, images = [], []
        for f in run:
            if not times or f.t / 1000.0 > times[-1]:
                times.append(f.t / 1000.0)
                images.append(f.image)
        kept += [images[i] for i in resample_indices(np.array(times), fps)]
    return kept


def _recording(path: Path) -> RecordingReader:
    """A host recording, indexed (one pass over the file), or a FootageError naming it."""
    from bridge.host.recording import RecordingReader

    try:
        return RecordingReader(path)
    except (ValueError, OSError) as e:
        raise FootageError(f"{path}: {e}") from None


def _probed(path: Path, probe: Callable[[Path], Any], probes: dict[Path, Any] | None, take: bool = False) -> Any:
    """`probe(path)` (a video's ffmpeg probe, a recording's index) once per import: the progress bar's count keeps it
    in `probes` and the import `take`s it from there, rather than reading each file's header twice."""
    if probes is None:
        return probe(path)
    if path not in probes:
        probes[path] = probe(path)
    return probes.pop(path) if take else probes[path]


def _recording_episodes(reader: RecordingReader, size: int, fps: float,
                        tick: Callable[[int], object]) -> Iterator[tuple[dict, np.ndarray]]:
    """Episodes of a host recording (.wbrec): one per epoch (a reset or branch starts a new one), each resampled by
    the mode its frames were made in (`_kept_frames`)."""
    path = reader.path
    damage = reader.damage("the mode went with it, so every frame is kept, not resampled to --fps, until a recorded "
                           "mode switch: nothing is dropped, though frames of a realtime session then play at --fps, "
                           "not at the rate they were made")
    if damage is not None:
        warnings.warn(damage, FootageWarning, stacklevel=2)
    by_epoch: dict[int, list] = {}
    for f in reader.frames():
        if f.source != "resend":
            by_epoch.setdefault(int(f.epoch), []).append(f)
    if not by_epoch:
        raise FootageError(f"{path}: the recording holds no frames")
    backend = reader.header.get("session", {}).get("backend_name")
    for epoch, frames in sorted(by_epoch.items()):
        images = np.stack([square_resize(image, size) for image in _kept_frames(frames, fps)])
        tick(len(frames))
        yield {"caption": "", "source_file": str(path), "epoch": epoch, "recorded_backend": backend}, images


def _folder(path: Path) -> tuple[list[Path], list[Path]]:
    """A folder's images (a folder of frames) and, when it holds none, its videos, GIFs and recordings, by name."""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTS]
    return images, [] if images else [p for p in files if p.suffix.lower() in VIDEO_EXTS | GIF_EXTS | RECORDING_EXTS]


def source_frames(path: Path, probes: dict[Path, Any] | None = None) -> int:
    """How many frames a path holds, read from its headers (0 where they cannot tell): the import bar's total; what
    it probed stays in `probes` for the import."""
    path = Path(path)
    try:
        if path.is_dir():
            images, media = _folder(path)
            return len(images) + sum(source_frames(p, probes) for p in media)
        ext = path.suffix.lower()
        if ext in VIDEO_EXTS:
            fps, duration = _probed(path, _video_header, probes)
            return int(round(duration * (fps or ASSUMED_VIDEO_FPS)))  # at the rate the import reads it at
        if ext in GIF_EXTS:
            from PIL import Image

            with Image.open(path) as im:
                return int(getattr(im, "n_frames", 1))
        if ext in RECORDING_EXTS:
            return sum(f.source != "resend" for f in _probed(path, _recording, probes).frames(decode=False))
    except Exception:  # an unreadable file is named when it is imported; here it only counts for nothing
        return 0
    return 0


def footage_episodes(path: Path, size: int, fps: float, tick: Callable[[int], object] = lambda n: None,
                     probes: dict[Path, Any] | None = None) -> Iterator[tuple[dict, np.ndarray]]:
    """(manifest fields, (L, size, size, 3) frames) for every episode a path holds; tick(n) as n source frames are
    read, for the bar; a file `source_frames` probed into `probes` is not probed again."""
    path = Path(path)
    if not path.exists():
        raise FootageError(f"{path}: no such file or folder")
    if path.is_file() and path.stat().st_size == 0:
        raise FootageError(f"{path}: the file is empty (0 bytes; a recording or copy that never finished): export or "
                           "copy it again, or leave it out")
    if path.is_dir():
        images, media = _folder(path)
        if images:  # a folder of frames is one episode, already at the dataset's frame rate
            frames = []
            for p in images:
                frames.append(square_resize(_image(p), size))
                tick(1)
            yield {"caption": "", "source_file": str(path)}, np.stack(frames)
            return
        if not media:
            raise FootageError(f"{path}: the folder holds no images, videos, GIFs or .wbrec recordings")
        for p in media:
            yield from footage_episodes(p, size, fps, tick, probes)
        return
    ext = path.suffix.lower()
    if ext in VIDEO_EXTS:
        import imageio.v3 as iio

        src_fps, duration = _probed(path, _video_header, probes, take=True)
        if src_fps is None:
            src_fps = ASSUMED_VIDEO_FPS
            warnings.warn(f"{path}: the video states no frame rate, so it is read as {ASSUMED_VIDEO_FPS:g} fps: made at "
                          f"another rate, its motion comes out too fast or too slow at --fps {fps:g} (which sets the "
                          f"dataset's rate, not the video's); give the file its rate (ffmpeg -r RATE -i {path.name} "
                          "fixed.mp4) and import that", FootageWarning, stacklevel=2)
        frames = []
        try:
            for f in iio.imiter(path, plugin="FFMPEG"):
                frames.append(square_resize(f, size))
                tick(1)
        except Exception as e:
            raise FootageError(f"{path}: the video is damaged after {plural(len(frames), 'frame')} ({type(e).__name__})") from None
        if not frames:
            raise FootageError(f"{path}: the video has no frames")
        if len(frames) < 0.8 * duration * src_fps - 2:  # ffmpeg stops quietly where a truncated file ends
            warnings.warn(f"{path}: the picture stops after {len(frames) / src_fps:.1f} s of the file's {duration:.1f} s "
                          f"({plural(len(frames), 'frame')} imported): unless its audio runs longer, the file is truncated; export "
                          "or copy it again", FootageWarning, stacklevel=2)
        idx = resample_indices(np.arange(len(frames)) / src_fps, fps, end=len(frames) / src_fps)
        yield {"caption": "", "source_file": str(path), "source_fps": src_fps}, np.stack([frames[i] for i in idx])
    elif ext in GIF_EXTS:
        frames, times, end = _gif_frames(path)
        tick(len(frames))
        idx = resample_indices(np.array(times), fps, end=end)
        yield {"caption": "", "source_file": str(path)}, np.stack([square_resize(frames[i], size) for i in idx])
    elif ext in RECORDING_EXTS:
        yield from _recording_episodes(_probed(path, _recording, probes, take=True), size, fps, tick)
    elif ext in IMAGE_EXTS:
        raise FootageError(f"{path}: a single image is not footage; put the frames in a folder and import the folder")
    else:
        supported = sorted(VIDEO_EXTS | GIF_EXTS | RECORDING_EXTS)
        raise FootageError(f"{path}: unsupported file type {ext or '(none)'}; supported: {supported} and folders of images")


def source_record(path: Path) -> dict:
    """What a manifest's `imported_from` says of one source: its path, bytes and last change (a folder of frames: its
    images' total and the latest of them), enough to tell later which footage it was."""
    files = _folder(path)[0] if path.is_dir() else [path]
    stats = [f.stat() for f in files]
    modified = _dt.datetime.fromtimestamp(max(s.st_mtime for s in stats)).isoformat(timespec="seconds")
    return {"path": str(path.resolve()), "bytes": sum(s.st_size for s in stats), "modified": modified}


def import_footage(paths: Iterable[str | Path], out: str | Path, size: int = 64, fps: float = 10.0,
                   val_fraction: float = 0.05, overwrite: bool = False, progress: bool = True) -> dict:
    """Import footage into a video-only dataset at `out` (no action files); all or nothing."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise FootageError("give at least one file or folder to import")
    if size < 8 or fps <= 0:
        raise FootageError(f"--size must be >= 8 and --fps > 0, got size={size}, fps={fps}")
    known = VIDEO_EXTS | GIF_EXTS | RECORDING_EXTS
    for p in paths:  # fail fast on obvious mistakes before any decoding
        if not p.exists():
            raise FootageError(f"{p}: no such file or folder")
        if p.is_file() and p.suffix.lower() not in known:
            hint = "put single images in a folder and import the folder" if p.suffix.lower() in IMAGE_EXTS else f"supported: {sorted(known)} and folders of images"
            raise FootageError(f"{p}: unsupported file type {p.suffix or '(none)'}; {hint}")
    frames_total = 0
    probes: dict[Path, Any] = {}  # each file's header, read once for the bar and the import
    total = sum(source_frames(p, probes) for p in paths) if progress else 0
    with DatasetWriter(out, height=size, width=size, fps=fps, action_names=None, source="import", overwrite=overwrite) as w, \
            tqdm(total=total or None, desc="import", unit="frame", dynamic_ncols=True, disable=not progress) as bar:
        eid = 0
        for p in paths:
            for meta, frames in footage_episodes(p, size, fps, bar.update, probes):
                seed = zlib.crc32(f"{meta['source_file']}#{meta.get('epoch', 0)}".encode()) & 0x7FFFFFFF  # split by source
                w.add_episode({"id": eid, "seed": seed, "params": None, "events": [], **meta}, frames)
                frames_total += len(frames)
                eid += 1
        bar.total = bar.n  # the headers' count was an estimate (a truncated video holds fewer)
        bar.refresh()
        frac = w.split_by_seed(val_fraction)  # (every episode is in w.episodes from here)
        sources = dict.fromkeys(e["source_file"] for e in w.episodes)
        # which footage, and how it was read: the checkpoints trained on it say so
        w.header["imported_from"] = {"sources": [source_record(Path(s)) for s in sources], "fps": float(fps),
                                     "size": size, "val_fraction": frac}
        path = w.finish()
    return {"out": str(path), "episodes": eid, "frames": frames_total}
