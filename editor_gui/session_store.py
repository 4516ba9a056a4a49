"""The editor's session: a tree of branches of frames + actions + events, and its atomic save/load (folder or file)."""

from __future__ import annotations

import io
import itertools
import json
import os
import zipfile
import zlib
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from bridge.backend import DEFAULT_FPS
from bridge.files import Progress, make_temp, publish_over, remove_tree, replace, temp_beside, tick
from bridge.values import SEED_MAX, is_int, plural

FORMAT = "worldbridge-editor-session"
VERSION = 3  # 2: frames may carry a frame edit (an object layer pasted by `edit`); 3: and the sampling settings they
# were made with; a session saves as the lowest version that holds what it has
FILE_SUFFIX = ".wbsession"  # a single zip file; any other path is saved as a folder
AUTOSAVE_ENV = "WORLDBRIDGE_AUTOSAVE"  # where unsaved recordings go when the window closes or Open… replaces them
RUNNING = "running"  # the autosave a running editor rewrites with its unsaved work (see MainWindow.autosave_now)
ZIP_MAGIC = b"PK\x03\x04"  # how every zip file begins, a cut one too
CUT = "the zip file is cut short or its index is broken"


def user_dir() -> Path:
    """The editor's per-user folder: the same wherever it was started from (Finder and the Dock start it in `/`, a
    Windows shortcut often in C:\\Windows\\System32)."""
    return Path.home() / ".worldbridge"


def autosave_dir() -> Path:
    """Where recordings the user did not save are kept ($WORLDBRIDGE_AUTOSAVE moves it), so closing or Open… loses none."""
    return Path(os.environ.get(AUTOSAVE_ENV) or user_dir() / "autosave")


def recordings_dir() -> Path:
    """Where the editor's own host writes its .wbrec recordings (the Timeline's host recording)."""
    return user_dir() / "recordings"


def _lock_path(running: Path) -> Path:
    return running.with_suffix(".lock")


def hold_running_lock(running: Path) -> IO[bytes] | None:
    """Lock the file beside a running autosave while its editor runs (the OS frees it when the process ends, however
    it ends), so the next start recovers that autosave only once its editor is gone, whatever PIDs were reused.
    The open file holds the lock; None when it is held already or cannot be made (a read-only folder)."""
    path = _lock_path(running)
    while True:
        try:
            running.parent.mkdir(parents=True, exist_ok=True)
            lock = open(path, "a+b")  # noqa: SIM115 - held open for the editor's lifetime
        except OSError:
            return None
        try:
            if os.name == "nt":
                import msvcrt

                lock.seek(0)
                msvcrt.locking(lock.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another editor holds it
            lock.close()
            return None
        try:
            if os.fstat(lock.fileno()).st_ino == os.stat(path).st_ino:
                return lock
        except FileNotFoundError:
            pass
        lock.close()  # another start locked and removed this file between our open and flock: lock the one there now


def release_running_lock(running: Path, lock: IO[bytes]) -> None:
    """Free and remove the lock `hold_running_lock` took (the running autosave is gone or taken over)."""
    lock.close()
    try:
        _lock_path(running).unlink(missing_ok=True)
    except OSError:  # Windows: another editor has it open this moment; whoever locks it next removes it
        pass


def recover_crashed() -> list[Path]:
    """Autosaves a running editor kept (`-running-`) whose lock is free (its editor was killed or crashed): renamed
    `-crashed-`, so the next start names each once and no running editor's file is taken; stale locks go too."""
    folder = autosave_dir()
    if not folder.is_dir():
        return []
    found = []
    running = {*folder.glob(f"*-{RUNNING}-*{FILE_SUFFIX}"), *(p.with_suffix(FILE_SUFFIX)
                                                          for p in folder.glob(f"*-{RUNNING}-*.lock"))}
    for path in sorted(running):
        lock = hold_running_lock(path)
        if lock is None:  # its editor runs (in this process too: a lock is per open file)
            continue
        try:
            crashed = path.with_name(path.name.replace(f"-{RUNNING}-", "-crashed-"))
            replace(path, crashed, path)
            found.append(crashed)
        except OSError:  # a lock left without its autosave, another start took it first, or a read-only folder
            pass
        finally:
            release_running_lock(path, lock)
    return found


def _frames_npz(recs: list[FrameRecord], progress: Progress | None, done: int, total: int) -> bytes:
    """A branch's recorded frames as np.savez_compressed writes them (`index`, `images`), one frame at a time, so a
    cancelled save stops between frames instead of after compressing thousands; `done` of `total` came before."""
    images = [r.image for r in recs]
    shape = images[0].shape
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("index.npy", "w") as f:
            np.save(f, np.array([r.index for r in recs], dtype=np.int64))
        with zf.open("images.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                                                     "fortran_order": False, "shape": (len(recs), *shape)})
            for i, (r, image) in enumerate(zip(recs, images)):
                tick(progress, done + i, total)
                if image.shape != shape:
                    raise ValueError(f"frame {r.index} is {image.shape}, not {shape} like the branch's first frame: "
                                     "a branch's recorded frames must be one size")
                f.write(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
    return buf.getvalue()


def _npz_frames(data: bytes, progress: Progress | None, done: int, total: int) -> dict[int, np.ndarray]:
    """A branch's recorded frames by index from its .npz (`_frames_npz` or np.savez_compressed wrote it), read one
    frame at a time, so a cancelled open stops between frames; `done` of `total` came before."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        with zf.open("index.npy") as f:
            index = np.lib.format.read_array(f).tolist()
        with zf.open("images.npy") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            if fortran or dtype != np.uint8 or not shape or shape[0] != len(index):
                raise ValueError(f"images.npy is {dtype} {shape}, not one uint8 image per frame "
                                 f"({plural(len(index), 'frame')})")
            size, frames = int(np.prod(shape[1:])), {}
            for k, i in enumerate(index):
                tick(progress, done + k, total)
                buf = bytearray(f.read(size))  # a bytearray: the image is writable, as np.load's are
                if len(buf) != size:
                    raise EOFError(f"images.npy ends before frame {i}")
                frames[i] = np.frombuffer(buf, np.uint8).reshape(shape[1:])
    return frames


class SessionFileError(ValueError):
    """A session that cannot be opened; one line naming the file, what is wrong with it and what to do."""


def not_a_session(path: Path, why: str) -> SessionFileError:
    """A file that was never a saved session (not a damaged one): say what to open instead."""
    return SessionFileError(f"{path} is not a saved session ({why}): open a {FILE_SUFFIX} file or a session folder "
                            "saved by the editor")


def damaged(path: Path, what: str) -> SessionFileError:
    """A saved session that cannot be read whole: say where a good copy may be (the autosaves, when there are some)."""
    folder = autosave_dir()
    autosaves = len(list(folder.glob(f"*{FILE_SUFFIX}"))) if folder.is_dir() else 0
    where = f", or an autosave in {folder} ({plural(autosaves, 'file')})" if autosaves else ""
    what = " ".join(what.split())  # one line
    return SessionFileError(f"{path} is a damaged saved session ({what}): open a copy saved earlier{where}")


@dataclass
class PromptSpec:
    """What a world was started from (kept so a branch can be re-simulated and a session re-opened)."""

    seed: int | None = None
    text: str | None = None
    image_png: bytes | None = None
    sketch_png: bytes | None = None
    backend: str | None = None  # "sandbox" / "world_model": which backend made this world


@dataclass
class FrameRecord:
    """One frame of a timeline: the action that made it, events that fired on it, the pixels if recorded."""

    index: int
    action: int
    events: list[str] = field(default_factory=list)  # captions the host reported on this frame
    fired: list[dict] = field(default_factory=list)  # event requests ({"event_type", "text"}) that produced them
    image: np.ndarray | None = None  # (H, W, 3) uint8, None when the frame was not recorded
    edits: list[dict] = field(default_factory=list)  # [{"layer": PNG bytes, "x", "y"}]: the frame `action` made, then
    # these object layers pasted into it in order (the host's `edit`)
    settings: dict = field(default_factory=dict)  # sampling settings changed just before this frame was made (all of
    # them on the first frame of a world, of a branch and after a rewind), so a rebuild makes it with the same ones

    def __setattr__(self, name: str, value) -> None:
        """Once in a branch (`Frames`) a record keeps its index and pixels: the branch's ordered lists hold it by them
        and would not see the change (the one place this is checked)."""
        if name in _ORDERED_BY and "_in_branch" in self.__dict__:
            raise AttributeError(f"frame {self.index}'s {name} cannot change while it is in a branch, whose ordered "
                                 f"lists would not see it: put a new record in its place (frames[{self.index}] = "
                                 f"dataclasses.replace(rec, {name}=...))")
        object.__setattr__(self, name, value)


_ORDERED_BY = ("index", "image")  # what a Frames orders and picks its recorded frames by


def _hold(index: int, rec: FrameRecord) -> FrameRecord:
    """Mark a record as in a branch under `index`, its own, so its index and pixels stay as the branch's lists have
    them (one under another index would sit at the wrong place in them)."""
    if rec.index != index:
        raise ValueError(f"frames[{index}] = a record of frame {rec.index}: a branch keeps each frame under its own "
                         "index (frames[rec.index] = rec)")
    rec.__dict__["_in_branch"] = True
    return rec


_versions = itertools.count(1)  # one counter for every Frames: a version names one state of one Frames


def _index(rec: FrameRecord) -> int:
    return rec.index


def _between(seq: list, after: int, upto: int | None, key=None) -> list:
    """The part of an index-ordered list with indices in (after, upto] (upto None: to the end), found by bisection."""
    return seq[bisect_right(seq, after, key=key):None if upto is None else bisect_right(seq, upto, key=key)]


class Frames(dict):
    """A branch's frames by index that keeps, as frames come and go, their indices in order and the recorded ones
    (pixels held) in index order, so the timeline reads them a few times a second without sorting every frame.
    A frame's pixels are set before it goes in: a record here refuses a new `image` or `index` (FrameRecord)."""

    def __init__(self, frames: dict[int, FrameRecord] | None = None):
        super().__init__({i: _hold(i, r) for i, r in (frames or {}).items()})
        self.indices = sorted(self)
        self.recorded = [self[i] for i in self.indices if self[i].image is not None]
        self.version = next(_versions)  # changes with every change: a reader that saw this version has seen them all

    def __setitem__(self, index: int, rec: FrameRecord) -> None:
        _hold(index, rec)  # refused before anything changes
        if index in self:
            self._unrecord(self[index])
        elif not self.indices or index > self.indices[-1]:
            self.indices.append(index)  # frames arrive in order: append
        else:
            insort(self.indices, index)
        super().__setitem__(index, rec)
        if rec.image is not None:
            if not self.recorded or index > self.recorded[-1].index:
                self.recorded.append(rec)
            else:
                self.recorded.insert(bisect_left(self.recorded, index, key=_index), rec)
        self.version = next(_versions)

    def __delitem__(self, index: int) -> None:
        rec = self[index]
        super().__delitem__(index)
        del self.indices[bisect_left(self.indices, index)]
        self._unrecord(rec)
        self.version = next(_versions)

    def _unrecord(self, rec: FrameRecord) -> None:
        at = bisect_left(self.recorded, rec.index, key=_index)
        if at < len(self.recorded) and self.recorded[at] is rec:
            del self.recorded[at]

    def pop(self, index: int, *default):  # the dict methods that change it go through __setitem__ / __delitem__
        if index not in self:
            return super().pop(index, *default)
        rec = self[index]
        del self[index]
        return rec

    def popitem(self) -> tuple[int, FrameRecord]:
        index = next(reversed(self))
        return index, self.pop(index)

    def setdefault(self, index: int, rec: FrameRecord) -> FrameRecord:  # type: ignore[override]
        if index not in self:
            self[index] = rec
        return self[index]

    def update(self, *args, **kwargs) -> None:
        for index, rec in dict(*args, **kwargs).items():
            self[index] = rec

    def __ior__(self, other):  # type: ignore[override]
        self.update(other)
        return self

    def clear(self) -> None:
        super().clear()
        self.indices.clear()
        self.recorded.clear()
        self.version = next(_versions)

    def copy(self) -> Frames:  # type: ignore[override]
        """Another Frames holding the same records, its ordered lists copied rather than rebuilt by sorting (the
        autosave snapshots every branch while frames arrive)."""
        new = Frames.__new__(Frames)
        dict.update(new, self)
        new.indices, new.recorded, new.version = list(self.indices), list(self.recorded), next(_versions)
        return new

    def __reduce__(self):
        return Frames, (dict(self),)


@dataclass
class Branch:
    """A timeline: frames after `parent_frame` of `parent` (roots start a world from `prompt`)."""

    id: int
    parent: int | None = None
    parent_frame: int | None = None
    name: str = ""
    prompt: PromptSpec | None = None  # roots only
    frames: Frames = field(default_factory=Frames)
    fps: float | None = None  # the rate its world played at (its exports and replay, its rebuild asks for it); None
    # in a file saved when the editor kept one rate for every world: the session's
    size: tuple[int, int] | None = None  # (width, height) of its world's frames (its exports' scale); None in a file
    # saved when the editor kept one size for every world: the session's

    def __post_init__(self) -> None:
        if not isinstance(self.frames, Frames):  # a plain dict (a copy of another branch's frames)
            self.frames = Frames(self.frames)

    def forked_at(self) -> int:
        """The last frame it shares with its parent (-1: a root): only frames after it are its own (Session.owner)."""
        return -1 if self.parent is None or self.parent_frame is None else self.parent_frame

    def last_index(self) -> int:
        if self.frames.indices:
            return self.frames.indices[-1]
        return self.parent_frame if self.parent_frame is not None else -1


@dataclass
class Session:
    """Everything the editor saves: branch tree, latent-action names, key map and what backend made it."""

    branches: dict[int, Branch] = field(default_factory=dict)
    live: int | None = None  # the branch the host is playing now
    latent_names: dict[int, str] = field(default_factory=dict)
    keymap: dict = field(default_factory=dict)
    backend_kind: str = ""
    backend_name: str = ""
    fps: float = DEFAULT_FPS  # the rate of a branch that keeps none (Branch.fps)
    width: int = 0  # the frame size of a branch that keeps none (Branch.size)
    height: int = 0
    action_names: list[str] = field(default_factory=list)

    # --- tree ---
    def root_of(self, branch_id: int) -> Branch:
        b = self.branches[branch_id]
        while b.parent is not None:
            b = self.branches[b.parent]
        return b

    def new_root(self, prompt: PromptSpec, name: str = "", fps: float | None = None,
                 size: tuple[int, int] | None = None) -> Branch:
        bid = max(self.branches, default=-1) + 1
        self.branches[bid] = Branch(bid, name=name or f"world {sum(b.parent is None for b in self.branches.values()) + 1}", prompt=prompt, fps=fps,
                                    size=size)
        return self.branches[bid]

    def fork(self, branch_id: int, index: int, name: str = "") -> Branch:
        """A new branch continuing from frame `index` of `branch_id`'s timeline, at that timeline's rate and size."""
        if index not in {f.index for f in self.path(branch_id)}:
            raise ValueError(f"frame {index} is not on branch {branch_id}'s timeline")
        bid = max(self.branches) + 1
        self.branches[bid] = Branch(bid, parent=self.owner(branch_id, index), parent_frame=index, name=name or f"branch {bid} @ {index}",
                                    fps=self.fps_of(branch_id), size=self.size_of(branch_id))
        return self.branches[bid]

    def fork_edit(self, branch_id: int, index: int, name: str = "") -> Branch:
        """A new branch whose own frame `index` is an edited copy of `branch_id`'s (the host's `edit`: like a branch,
        new epoch, same index), so it shares frames up to index - 1 and keeps the unedited frame in the parent."""
        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        bid = max(self.branches) + 1
        self.branches[bid] = Branch(bid, parent=self.owner(branch_id, index - 1), parent_frame=index - 1,
                                    name=name or f"edit {bid} @ {index}", fps=self.fps_of(branch_id),
                                    size=self.size_of(branch_id))
        return self.branches[bid]

    def owner(self, branch_id: int, index: int) -> int:
        """Which branch in `branch_id`'s ancestry holds frame `index` of its timeline."""
        b = self.branches[branch_id]
        while b.parent is not None and b.parent_frame is not None and index <= b.parent_frame:
            b = self.branches[b.parent]
        return b.id

    def _spans(self, branch_id: int) -> list[tuple[Branch, int, int | None]]:
        """The branches a timeline reads, root first, each with the frames it gives: after its fork point (a frame it
        holds at or before it is its ancestor's, as `owner` says), up to the next one's fork (None: to its end)."""
        spans, b, upto = [], self.branches[branch_id], None
        while True:
            spans.append((b, b.forked_at(), upto))
            if b.parent is None:
                break
            b, upto = self.branches[b.parent], b.parent_frame
        return spans[::-1]

    def path(self, branch_id: int) -> list[FrameRecord]:
        """The whole timeline of a branch, frame 0 first: ancestors' frames up to each fork, then its own."""
        spans = self._spans(branch_id)
        return [b.frames[i] for b, a, u in spans for i in _between(b.frames.indices, a, u)]

    def recorded(self, branch_id: int) -> list[FrameRecord]:
        """Frames of a branch's timeline that have pixels (what the scrubber and exports show): slices of each
        branch's own recorded list, so asking a few times a second while frames arrive never sorts them all."""
        spans = self._spans(branch_id)
        return list(itertools.chain.from_iterable(_between(b.frames.recorded, a, u, _index) for b, a, u in spans))

    def images_held(self) -> int:
        """Frames of every branch that hold pixels (what the editor's memory guard counts)."""
        return sum(r.image is not None for b in self.branches.values() for r in b.frames.values())

    def add_frame(self, rec: FrameRecord, rewind: bool = False) -> bool:
        """Append a frame to the live branch; `rewind`: the host went back to rec.index, drop frames after it.
        False when the frame was already held (a re-sent one), so nothing new needs saving."""
        b = self.branches[self.live]  # type: ignore[index]
        if rec.index <= b.forked_at():
            return False  # a frame the branch shares with its parent (the host re-sends the fork frame)
        if rewind:
            for i in [i for i in b.frames if i > rec.index]:
                del b.frames[i]
            if rec.index in b.frames and rec.action < 0:
                return False  # the host re-sent a frame we have: keep the original (it knows the action that made it)
        b.frames[rec.index] = rec
        return True

    def backend_of(self, branch_id: int) -> tuple[str, str]:
        """(kind, name) of the backend that made a branch's world (the session's name only fits worlds of its kind)."""
        kind = (self.root_of(branch_id).prompt or PromptSpec()).backend or self.backend_kind
        return kind, self.backend_name if kind == self.backend_kind else ""

    def fps_of(self, branch_id: int) -> float:
        """The rate a branch's world played at: worlds play at their own rates (a sandbox at 15, a world model at its
        footage's), so one session-wide rate would export, replay and rebuild some of them too fast or too slow."""
        fps = self.branches[branch_id].fps
        return self.fps if fps is None else fps

    def size_of(self, branch_id: int) -> tuple[int, int]:
        """(width, height) of a branch's world's frames: worlds have their own sizes (a 64 px sandbox, a 16 px micro
        world model), so one session-wide size would scale some of their exports too large or too small."""
        size = self.branches[branch_id].size
        return (self.width, self.height) if size is None else size

    def children(self, branch_id: int) -> list[Branch]:
        return [b for b in self.branches.values() if b.parent == branch_id]

    def action_map(self) -> dict[str, int]:
        """Latent-action names as the protocol's start.action_map ({name: id})."""
        return {name: int(i) for i, name in self.latent_names.items() if name}

    # --- save / load ---
    def _manifest(self) -> dict:
        branches = []
        for b in self.branches.values():
            p = b.prompt
            branches.append({
                "id": b.id, "parent": b.parent, "parent_frame": b.parent_frame, "name": b.name, "fps": b.fps,
                "size": None if b.size is None else list(b.size),
                "prompt": None if p is None else {
                    "seed": p.seed, "text": p.text, "backend": p.backend,
                    "image": f"prompts/{b.id}_image.png" if p.image_png else None,
                    "sketch": f"prompts/{b.id}_sketch.png" if p.sketch_png else None,
                },
                "frames": [{"index": r.index, "action": r.action, "events": r.events, "fired": r.fired,
                            "recorded": r.image is not None,
                            **({"edits": [{"layer": f"edits/{b.id}_{r.index}_{k}.png", "x": e["x"], "y": e["y"]}
                                          for k, e in enumerate(r.edits)]} if r.edits else {}),
                            **({"settings": r.settings} if r.settings else {})}
                           for r in sorted(b.frames.values(), key=lambda r: r.index)],
            })
        frames = [r for b in self.branches.values() for r in b.frames.values()]
        version = 3 if any(r.settings for r in frames) else 2 if any(r.edits for r in frames) else 1
        return {
            "format": FORMAT, "version": version, "backend_kind": self.backend_kind, "backend_name": self.backend_name,
            "fps": self.fps, "width": self.width, "height": self.height, "action_names": self.action_names,
            "latent_names": {str(k): v for k, v in self.latent_names.items()}, "keymap": self.keymap,
            "live": self.live, "branches": branches,
        }

    def _files(self, progress: Progress | None, total: int) -> dict[str, bytes]:
        """Every file of the saved session, by relative path; Cancelled as soon as `progress` says stop."""
        files = {"session.json": json.dumps(self._manifest(), indent=1).encode()}
        done = 0
        for b in self.branches.values():
            if b.prompt and b.prompt.image_png:
                files[f"prompts/{b.id}_image.png"] = b.prompt.image_png
            if b.prompt and b.prompt.sketch_png:
                files[f"prompts/{b.id}_sketch.png"] = b.prompt.sketch_png
            for r in b.frames.values():
                for k, e in enumerate(r.edits):
                    files[f"edits/{b.id}_{r.index}_{k}.png"] = e["layer"]
            recs = [r for r in sorted(b.frames.values(), key=lambda r: r.index) if r.image is not None]
            if recs:
                files[f"frames/branch_{b.id}.npz"] = _frames_npz(recs, progress, done, total)
                done += len(recs)
        return files

    def save(self, path: str | os.PathLike, progress: Progress | None = None) -> Path:
        """Write atomically: a `.wbsession` zip file, or a folder for any other name; never a half-written session.
        `progress` is told before each frame and once more before the old session is replaced, so a cancelled save
        (Cancelled) stops within a frame and leaves the old session as it was, and no temp file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        total = self.images_held()
        files = self._files(progress, total)
        if path.suffix.lower() == FILE_SUFFIX:  # "Take.WBSESSION" too is a file, not a folder
            with temp_beside(path) as tmp:
                with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
                    for name, data in files.items():
                        zf.writestr(name, data)
                tick(progress, total, total)
            return path
        if path.exists() and not (path / "session.json").exists() and any(path.iterdir()):
            raise FileExistsError(f"{path} is a non-empty folder that is not a saved session; choose another name")
        tmp = make_temp(path, folder=True)  # named after this process: a killed save's is removed by the next
        try:
            for name, data in files.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(data)
            tick(progress, total, total)
            publish_over(tmp, path)  # the old session goes back under its own name if the new one did not land
        except BaseException:
            remove_tree(tmp)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, progress: Progress | None = None) -> Session:
        """Open a session saved by `save` (folder or `.wbsession` file); a SessionFileError says what is wrong.
        `progress` is told before each frame and once more when all are read: a cancelled open (Cancelled) stops
        within a frame."""
        path = Path(path)
        if path.is_dir():
            if not (path / "session.json").exists():
                raise not_a_session(path, "the folder has no session.json")
            return cls._read(path, lambda name: (path / name).read_bytes(), progress)
        if not path.exists():
            raise FileNotFoundError(f"no session at {path}")
        with open(path, "rb") as f:
            head = f.read(30 + len("session.json"))
        if not zipfile.is_zipfile(path):
            if head.startswith(ZIP_MAGIC):
                raise damaged(path, CUT)
            raise not_a_session(path, "it is not a zip file")
        try:
            with zipfile.ZipFile(path) as zf:
                if "session.json" not in zf.namelist():
                    if head.startswith(ZIP_MAGIC) and head[30:] == b"session.json":  # `save` writes it first: the
                        raise damaged(path, CUT)  # index found is a frames .npz's inside the cut file
                    raise not_a_session(path, "a zip file with no session.json")
                return cls._read(path, zf.read, progress)
        except zipfile.BadZipFile as e:
            raise damaged(path, str(e)) from e

    @classmethod
    def _read(cls, path: Path, read, progress: Progress | None) -> Session:
        """Build the session from its files; anything unreadable in them becomes one SessionFileError line."""
        def member(name: str) -> bytes:
            try:
                return read(name)
            except (KeyError, FileNotFoundError):  # a zip's missing member / a folder's missing file
                raise damaged(path, f"{name} is missing") from None

        try:
            return cls._from(path, member, progress)
        except SessionFileError:
            raise
        except json.JSONDecodeError as e:
            raise damaged(path, f"session.json is not valid JSON: {e}") from e
        except (KeyError, IndexError, TypeError, AttributeError, ValueError, EOFError, zlib.error,
                zipfile.BadZipFile) as e:
            raise damaged(path, f"{type(e).__name__}: {e}") from e

    @classmethod
    def _from(cls, path: Path, read, progress: Progress | None) -> Session:
        m = json.loads(read("session.json"))
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise not_a_session(path, f"session.json has format {m.get('format') if isinstance(m, dict) else None!r}, "
                                      f"not {FORMAT!r}")
        if m.get("version", 0) > VERSION:
            raise SessionFileError(f"{path} was saved by a newer editor (session version {m['version']}; this one "
                                   f"reads up to {VERSION}): update WorldBridge to open it")
        s = cls(live=m.get("live"), latent_names={int(k): v for k, v in m.get("latent_names", {}).items()},
                keymap=m.get("keymap", {}), backend_kind=m.get("backend_kind", ""), backend_name=m.get("backend_name", ""),
                fps=float(m.get("fps", DEFAULT_FPS)), width=int(m.get("width", 0)), height=int(m.get("height", 0)),
                action_names=list(m.get("action_names", [])))
        done, total = 0, sum(bool(fd.get("recorded")) for bd in m["branches"] for fd in bd["frames"])
        for bd in m["branches"]:
            p = bd.get("prompt")
            if p is not None and p.get("seed") is not None and not (is_int(p["seed"]) and 0 <= p["seed"] <= SEED_MAX):
                raise damaged(path, f"branch {bd['id']}'s prompt has seed {p['seed']!r}, not a whole number from 0 to "
                                    f"{SEED_MAX}")  # the Prompt panel and the host take no other
            prompt = None if p is None else PromptSpec(
                seed=p.get("seed"), text=p.get("text"), backend=p.get("backend"),
                image_png=read(p["image"]) if p.get("image") else None,
                sketch_png=read(p["sketch"]) if p.get("sketch") else None)
            branch, frames = Branch(bd["id"], bd.get("parent"), bd.get("parent_frame"), bd.get("name", ""), prompt,
                                    # an older file's one rate and size are its branches' own: the next world
                                    # the editor starts sets the session's, and must not re-rate these
                                    fps=s.fps if bd.get("fps") is None else float(bd["fps"]),
                                    size=(None if not s.width else (s.width, s.height)) if bd.get("size") is None
                                    else (int(bd["size"][0]), int(bd["size"][1]))), {}
            for fd in bd["frames"]:
                if fd["index"] <= branch.forked_at():  # a copy of a frame its parent gives (only a file has one):
                    continue  # no view shows it, and its pixels would count against the memory guard
                edits = [{"layer": read(e["layer"]), "x": int(e["x"]), "y": int(e["y"])} for e in fd.get("edits", [])]
                frames[fd["index"]] = FrameRecord(fd["index"], fd["action"], list(fd.get("events", [])),
                                                  list(fd.get("fired", [])), edits=edits,
                                                  settings=dict(fd.get("settings", {})))
            if any(fd.get("recorded") for fd in bd["frames"]):
                for i, img in _npz_frames(read(f"frames/branch_{bd['id']}.npz"), progress, done, total).items():
                    if i > branch.forked_at():
                        frames[i].image = img
                    done += 1
            # the pixels are in before the frames go into the branch, which keeps its recorded ones from them
            branch.frames = Frames(frames)
            s.branches[branch.id] = branch
        tick(progress, total, total)
        if s.live is not None and s.live not in s.branches:
            s.live = None
        return s
