"""The one exporter of frames (MP4, GIF, a PNG folder) and logs: `worldbridge record export`, the demo and the editor.

Every output is written into a temp file (or folder) beside it and published only when all of them are whole, so an
error, a cancel or Ctrl+C leaves nothing behind: not a temp file, not a folder it made, not one output without the
others. Every picture output says in its own metadata which backend made its frames (`source_label`), so sandbox
footage never passes for the world model's: the MP4's title and comment, the GIF's comment extension, each PNG's
Comment and Source text chunks.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bridge.backend import recorded_backend_label
from bridge.files import (Progress, fsync, leftover_prefix, make_folders, make_temp, publish, remove_empty, remove_tree,
                          replace, tick)
from bridge.values import first_line

KINDS = ("mp4", "gif", "frames", "actions")
FULL_DISK_FIX = "free space on its disk or choose a folder on another one"


def source_label(backends: Sequence[tuple[str, str]], header_lost: bool = False) -> str:
    """What an export says made its frames, from each backend's (kind, name): a sandbox clip must never pass for the
    world model's, and frames from several backends say so; a recording whose header was lost did name its backend,
    so its frames are not said to come from one never recorded."""
    labels = [recorded_backend_label("", "", header_lost=True)] if header_lost else []
    labels += [recorded_backend_label(kind, name) for kind, name in backends]
    parts = list(dict.fromkeys(labels or [recorded_backend_label("", "")]))  # each once, in the order made
    return "WorldBridge — " + (parts[0] if len(parts) == 1 else "SEVERAL BACKENDS: " + " + ".join(parts))


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


def check_targets(targets: dict[str, Path], source: Path | None = None) -> None:
    """Refuse, before anything is encoded, an output that would destroy the input, a recording, or another output."""
    seen: dict[Path, str] = {}
    for kind, path in targets.items():
        where = path.resolve()
        if where in seen:
            raise ValueError(f"--{seen[where]} and --{kind} both name {path}: give each output its own path")
        seen[where] = kind
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise ValueError(f"--{kind} {path}: {folder} is a file, not a folder: choose another path")
        if source is not None and (where == source.resolve() or (path.exists() and os.path.samefile(path, source))):
            raise ValueError(f"--{kind} {path} is the recording being exported: choose another output path")
        if path.suffix.lower() == ".wbrec" and path.exists():
            raise ValueError(f"--{kind} {path} is a recording, which an export never replaces: choose another path")
        if kind == "frames":
            if path.exists() and not path.is_dir():
                raise ValueError(f"--frames {path} is a file: give a new folder name")
            if path.is_dir() and any(path.iterdir()):
                raise FileExistsError(f"{path} exists and is not empty: choose a new folder name or remove it")
        elif path.is_dir():
            raise ValueError(f"--{kind} {path} is a folder: give a file name")


class GifStream:
    """An animated GIF (looping, `comment` in its header) written frame by frame: pillow's own GIF writer keeps every
    frame in memory and encodes them all at close, after the progress bar has reached 100%."""

    def __init__(self, path: Path, duration_ms: float, comment: str):
        self._f = open(path, "wb")
        self._duration, self._comment = duration_ms, comment
        self._pending: np.ndarray | None = None  # the last frame, held until the next one differs (merged if equal)
        self._held = 0.0  # how long the pending frame shows
        self._shown: np.ndarray | None = None  # the frame written last: the next one writes only what differs from it

    def write(self, image: np.ndarray) -> None:
        """Add one frame; a frame equal to the one before lengthens it instead, as pillow's writer does."""
        if self._pending is not None and np.array_equal(image, self._pending):
            self._held += self._duration
            return
        self._flush()
        self._pending, self._held = image.copy(), self._duration

    def _flush(self) -> None:
        from PIL import GifImagePlugin, Image

        if self._pending is None:
            return
        frame, top, left = self._pending, 0, 0
        if self._shown is None:
            header, _ = GifImagePlugin.getheader(Image.fromarray(frame).convert("P", palette=Image.Palette.ADAPTIVE),
                                                 info={"loop": 0, "comment": self._comment})
            self._f.write(b"".join(header))
        else:  # only the box that changed, drawn over the frame before (as pillow's writer does)
            rows, cols = np.nonzero((frame != self._shown).any(axis=2))
            top, left = rows.min(), cols.min()
            frame = frame[top:rows.max() + 1, left:cols.max() + 1]
        im = Image.fromarray(frame).convert("P", palette=Image.Palette.ADAPTIVE)
        self._f.write(b"".join(GifImagePlugin.getdata(im, (int(left), int(top)), duration=self._held,
                                                      include_color_table=True)))
        self._shown, self._pending = self._pending, None

    def close(self) -> None:
        """Write the last frame and the trailer, and close the file."""
        try:
            self._flush()
            if self._f.tell():
                self._f.write(b";")
        finally:
            self._f.close()


class Export:
    """Temp outputs beside their targets, filled frame by frame; `finish` publishes them all, any error removes them."""

    def __init__(self, targets: dict[str, str | Path | None], fps: float, scale: int = 1, source: Path | None = None,
                 *, label: str):
        self.targets = {k: Path(v) for k, v in targets.items() if v}
        check_targets(self.targets, source)
        self.fps, self.scale, self.frames, self.label = float(fps), scale, 0, label
        self.temps: dict[str, Path] = {}
        self.made: list[Path] = []  # folders this export made, parents first: an error removes them again
        self.mp4: Any = None
        self.gif: Any = None
        self.log: Any = None
        try:
            for kind, path in self.targets.items():  # every folder is proven writable before one frame is encoded
                with self._writing(kind, "choose a folder you can write to"):
                    self.made += make_folders(path.parent)
                    # the temp's suffix tells ffmpeg and pillow the format, whatever the target is named
                    self.temps[kind] = make_temp(path, {"mp4": ".mp4", "gif": ".gif"}.get(kind, ".tmp"),
                                                 folder=kind == "frames")
            import imageio.v2 as iio2

            if "mp4" in self.temps:  # H.264 yuv420p plays everywhere; yuv420p needs even sizes (macro_block_size=2)
                self.mp4 = iio2.get_writer(self.temps["mp4"], format="FFMPEG", mode="I", fps=self.fps, codec="libx264",
                                           quality=8, pixelformat="yuv420p", macro_block_size=2, ffmpeg_log_level="error",
                                           output_params=["-metadata", f"title={label}", "-metadata", f"comment={label}"])
            if "gif" in self.temps:
                self.gif = GifStream(self.temps["gif"], 1000.0 / self.fps, label)
            if "actions" in self.temps:
                self.log = open(self.temps["actions"], "w", encoding="utf-8")
        except BaseException:
            self.discard()
            raise

    @contextmanager
    def _writing(self, kind: str, fix: str = FULL_DISK_FIX) -> Iterator[None]:
        """Name the output and the fix in an OSError (a full disk), which on its own says neither."""
        try:
            yield
        except OSError as e:
            why = e.strerror or first_line(e)
            raise OSError(f"cannot write --{kind} {self.targets[kind]} ({why}): {fix}") from e

    def __enter__(self) -> Export:
        return self

    def __exit__(self, kind: type | None, *_: Any) -> None:
        if kind is not None:
            self.discard()

    def add(self, image: np.ndarray | None, png_name: str | None = None) -> None:
        """Append one frame to the MP4 and GIF and write it into the PNG folder as `png_name`."""
        if image is None:
            return
        import imageio.v3 as iio

        image = upscale(np.asarray(image), self.scale)
        if self.mp4 is not None:
            with self._writing("mp4"):
                self.mp4.append_data(image)
        if self.gif is not None:
            with self._writing("gif"):
                self.gif.write(image)
        if "frames" in self.temps:
            png = self.temps["frames"] / (png_name or f"frame_{self.frames:06d}.png")
            with self._writing("frames"):
                iio.imwrite(png, image, extension=".png", pnginfo=self._pnginfo())
                fsync(png)  # now, under the progress bar: syncing thousands of PNGs at publish took seconds after 100%
        self.frames += 1

    def _pnginfo(self) -> Any:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_itxt("Comment", self.label)  # iTXt: the label is UTF-8 (its dash), which tEXt's Latin-1 cannot hold
        info.add_itxt("Source", self.label)
        return info

    def write_log(self, text: str) -> None:
        """Append text to the action log."""
        with self._writing("actions"):
            self.log.write(text)

    def _close(self) -> None:
        """Close every writer, even after one fails (a full disk may show only at the last flush), raising the first
        failure, which names its output; and make sure the MP4 is whole: ffmpeg stopped by a full disk leaves a cut
        file, and imageio never checks its exit."""
        first: Exception | None = None
        for kind, attr in (("mp4", "mp4"), ("gif", "gif"), ("actions", "log")):
            writer = getattr(self, attr)
            if writer is None:
                continue
            setattr(self, attr, None)  # closed once, failing or not
            try:
                with self._writing(kind):
                    writer.close()
                    if kind == "mp4" and not mp4_complete(self.temps["mp4"]):
                        raise OSError(errno.EIO, "the encoder stopped before the video was complete: is its disk full?")
            except Exception as e:  # noqa: BLE001 - raised below once every other writer is closed
                first = first or e
        if first is not None:
            raise first

    def finish(self) -> dict[str, Path]:
        """Close every writer and publish every output, all or none: files cannot be renamed together, so a move that
        fails takes back the outputs moved before it and puts back the files they replaced. Returns {kind: path}."""
        try:
            if self.frames == 0 and set(self.temps) & {"mp4", "gif", "frames"}:
                raise ValueError("there are no frames to export")
            self._close()
        except BaseException:
            self.discard()  # every temp output goes, with or without a `with` block around the export
            raise
        olds: dict[str, Path | None] = {}
        kept_paths: set[Path] = set()
        frames_emptied = "frames" in self.temps and self.targets["frames"].is_dir()
        try:
            for kind, tmp in self.temps.items():
                target = self.targets[kind]
                olds[kind] = _keep_old(target)
                if kind == "frames" and frames_emptied:
                    target.rmdir()  # check_targets made sure it is empty
                publish(tmp, target)
        except BaseException as e:
            note, kept_paths = self._take_back(olds, frames_emptied)
            self.discard()
            if not isinstance(e, OSError):
                raise
            raise OSError(f"cannot export --{kind} to {target} ({e.strerror or e}): no output was exported, and "
                          f"the files it would have replaced are as they were{note}") from e
        finally:
            for old in olds.values():
                if old is not None and old not in kept_paths:
                    remove_tree(old.parent)
        self.temps.clear()
        self.made.clear()  # they hold the outputs now
        return self.targets

    def _take_back(self, olds: dict[str, Path | None], frames_emptied: bool) -> tuple[str, set[Path]]:
        """Undo the outputs `finish` moved into place, restoring what they replaced; returns a note saying where any
        earlier file stays, and those files, which `finish` must not delete."""
        note, kept_paths = "", set()
        for kind, old in olds.items():
            target = self.targets[kind]
            try:
                if not os.path.lexists(self.temps[kind]):  # publish moved it onto the target
                    if old is not None:
                        replace(old, target, held=target)
                    elif target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target)
                    else:
                        target.unlink()
                if kind == "frames" and frames_emptied:
                    target.mkdir(exist_ok=True)
            except OSError as e:
                if old is not None:  # it stays where the error names it, not deleted with the others
                    kept_paths.add(old)
                note += f"; except {target}, which could not be taken back ({e.strerror or e})" + \
                    (f": its earlier file is kept as {old}" if old else "")
        return note, kept_paths

    def discard(self) -> None:
        """Stop every writer and remove every temp output and folder the export made (an error, a cancel, Ctrl+C)."""
        for w in (self.mp4, self.gif, self.log):
            try:
                if w is not None:
                    w.close()
            except Exception:  # noqa: BLE001 - a writer broken by the very error being cleaned up
                pass
        self.mp4 = self.gif = self.log = None
        for tmp in self.temps.values():
            remove_tree(tmp)  # one still open on Windows is named in a warning; the error being cleaned up is raised
        self.temps.clear()
        remove_empty(self.made)
        self.made.clear()


def mp4_complete(path: Path) -> bool:
    """Whether an MP4's top-level boxes run exactly to its end and include `mdat` and `moov` (written last)."""
    size, pos, seen = path.stat().st_size, 0, set()
    with open(path, "rb") as f:
        while pos < size:
            f.seek(pos)
            head = f.read(16)
            n = int.from_bytes(head[:4], "big") if len(head) >= 8 else -1
            if n == 1:  # a 64-bit size follows the type
                n = int.from_bytes(head[8:16], "big") if len(head) == 16 else -1
            elif n == 0:  # the box runs to the end of the file
                n = size - pos
            if n < 8:
                return False
            seen.add(head[4:8])
            pos += n
    return pos == size and {b"mdat", b"moov"} <= seen


def _keep_old(target: Path) -> Path | None:
    """A second name for the file an output will replace (a hard link, else a copy), so a failed export can put it
    back; None when there is none."""
    if not os.path.lexists(target) or target.is_dir():
        return None
    old = Path(tempfile.mkdtemp(prefix=leftover_prefix(target, "old") + "-", dir=target.parent)) / target.name
    try:
        try:
            os.link(target, old, follow_symlinks=False)
        except OSError:  # a file system without hard links
            shutil.copy2(target, old, follow_symlinks=False)
    except BaseException:
        shutil.rmtree(old.parent, ignore_errors=True)
        raise
    return old


def export_frames(frames: Sequence[np.ndarray], targets: dict[str, str | Path | None], fps: float, scale: int = 1,
                  progress: Progress | None = None, png_names: Sequence[str] | None = None, *, label: str) -> dict[str, Path]:
    """Write in-memory frames to the given outputs (all or nothing), reporting progress per frame."""
    with Export(targets, fps, scale, label=label) as ex:
        for i, frame in enumerate(frames):
            ex.add(frame, png_names[i] if png_names else None)
            tick(progress, i + 1, len(frames))
        return ex.finish()
