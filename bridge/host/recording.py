"""Append-only session recordings (docs/recordings.md): write, read (torn tails dropped), export (replay.py replays)."""

from __future__ import annotations

import json
import math
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import msgpack
import numpy as np

from bridge.backend import DEFAULT_FPS, recorded_backend_label
from bridge.files import make_folders, sync, sync_names
from bridge.host.clock import clock
from bridge.host.pixels import decode_pixels
from bridge.values import is_int, plural

MAGIC = b"WBREC\x00\x01\n"  # 8 bytes: name, NUL, format version 1, newline
FORMAT_VERSION = 1
PREFIX = struct.Struct(">II")  # body length, CRC32 of body
MAX_RECORD_BYTES = 1 << 30
SYNC_EVERY_S = 1.0  # a power loss costs at most this much of a take; one sync costs ~0.5 ms (docs/recordings.md)


def _pack(obj: dict) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


class Recorder:
    """Writes one session's records; every record is length-prefixed, CRC32-checked, flushed, and synced to disk at
    most every SYNC_EVERY_S seconds (a sync per frame would cost the host loop its frame rate)."""

    def __init__(self, path: str | Path, header: dict):
        self.path = Path(path)
        if self.path.suffix.lower() != ".wbrec":
            raise ValueError(f"recording path {self.path} must end in .wbrec")
        self._made = make_folders(self.path.parent)
        self._f = open(self.path, "xb")  # never overwrite another recording
        self._named = False  # whether the file's name (and its new folders') is on disk yet: at its first sync
        self.frames = 0
        self._synced_at = clock()
        self._unsynced = False  # records written since the last sync
        try:
            self._f.write(MAGIC)
            self.write({"kind": "header", "format": FORMAT_VERSION,
                        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **header})
        except BaseException:  # a full disk at the very start: no file left behind, so a retry may use its name
            try:
                self._f.close()
            finally:
                self.path.unlink(missing_ok=True)  # made just now by "xb": ours, and it holds no record
            raise

    def write(self, record: dict) -> None:
        body = _pack(record)
        self._f.write(PREFIX.pack(len(body), zlib.crc32(body)) + body)
        self._f.flush()
        self._unsynced = True
        if record.get("kind") == "frame":
            self.frames += 1
        self.flush_due()

    def sync_due(self) -> float:
        """When (host clock s) the records not yet on disk are due a sync, so the host loop can wake for it; inf if none."""
        return self._synced_at + SYNC_EVERY_S if self._unsynced else math.inf

    def flush_due(self) -> None:
        """Sync once SYNC_EVERY_S has passed since the last sync, if records are waiting: called by every write and by
        the host loop, so a session gone idle in step mode still has its last records on disk a second later."""
        now = clock()
        if self._unsynced and not self._f.closed and now >= self.sync_due():
            self._sync()  # a failure is a failed write: the host ends this recording only
            self._synced_at = now
            self._unsynced = False

    def _sync(self, full: bool = False) -> None:
        """Put the records on disk, and with the first of them the file's name: without it a power loss could drop the
        whole take, however often its bytes were synced (names first, so `full` flushes the drive's cache for both)."""
        if not self._named:
            sync_names(self.path, self._made)
            self._named = True
        sync(self._f.fileno(), full)

    def close(self, t: float | None = None, write_end: bool = True) -> None:
        """End the file (with its `end` record unless a write already failed) and put it on disk, so a power loss after
        `record_stop` keeps the whole recording; the file is closed even if that fails."""
        if self._f.closed:
            return
        try:
            if write_end:
                self.write({"kind": "end", "t": t, "frames": self.frames})
                self._sync(full=True)  # the drive's cache too, once: never each second on the host loop
        finally:
            self._unsynced = False  # nothing more can be synced: a closed recorder is never due (sync_due)
            try:
                self._f.close()
            except OSError:  # the flush of a full disk: every whole record is on disk already
                pass


@dataclass
class RecordedFrame:
    """One recorded frame, decoded."""

    index: int
    epoch: int
    action: int
    image: np.ndarray | None  # (H, W, 3) uint8; None when read with decode=False
    events: list[str]
    t: float  # host ms
    source: str  # start | reset | step | branch | edit | resend
    header: dict = field(repr=False, default_factory=dict)  # the wire header as sent
    mode: str = "realtime"  # the session's mode when it was made: the header's ("unknown" once the header was lost),
    # then each `settings` that switched it


SIGNATURE = b"\xa4kind"  # every record body is a msgpack map whose first key is "kind": resync looks for it
SCAN_CHUNK = 1 << 20
AGAIN = "record the session again"
HEADER_HOLDS = "the prompt, model settings, history and session (backend, frame rate, mode)"  # lost with the header
FOREIGN = {b"\x89PNG": "a PNG image", b"GIF8": "a GIF image", b"\xff\xd8\xff": "a JPEG image",
           b"PK\x03\x04": "a zip file; an editor session (.wbsession) opens with `worldbridge play --session`"}


WIRE_PARTS = {"frame": 2, "input": 1, "event": 1, "control": 1}  # [header, pixels] for a frame, else [message]
NIL = type(None)
MAP = (dict, NIL)  # a nil map reads as an empty one (see map_at)
TEXT = (str, NIL)


def map_at(r: dict, key: str) -> Any:
    """The map at `key`, {} when it is absent or nil: the check and every reader must read a nil field alike."""
    value = r.get(key)
    return {} if value is None else value


def _is_event(ev: Any) -> bool:
    """Whether `ev` is an event map a replay can rebuild (a WorldEvent needs its type and text)."""
    return isinstance(ev, dict) and {"type", "text"} <= ev.keys()


def _fits(value: Any, want: Any) -> bool:
    """Whether `value` is one of `want` (a type, a check, or a tuple of them); `int` refuses a bool, as is_int does."""
    return any(is_int(value) if w is int else isinstance(value, w) if isinstance(w, type) else w(value)
               for w in (want if isinstance(want, tuple) else (want,)))


def _shape_problem(value: dict, spec: dict[str, tuple[Any, str]]) -> str | None:
    """The problem named for the first key of `spec` ({key: (want, problem)}) whose value does not fit, or None."""
    return next((problem for key, (want, problem) in spec.items() if not _fits(value.get(key), want)), None)


HISTORY_PROBLEM = "has a 'history' that is not a list of step, settings and edit entries"
HEADER_SHAPE = {**{k: (MAP, f"has a {k!r} that is not a map") for k in ("session", "prompt", "reset_settings")},
                **{k: (TEXT, f"has a {k!r} that is not a string") for k in ("created", "host", "checkpoint")},
                "history": ((list, NIL), HISTORY_PROBLEM)}
PROMPT_SHAPE = {k: ((want, NIL), f"has a prompt {k!r} that is not {what}")
                for k, want, what in (("seed", int, "a whole number"), ("text", str, "a string"),
                                      ("image", bytes, "bytes"), ("sketch", bytes, "bytes"))}
HISTORY_SHAPES = {"step": (int, (NIL, _is_event)), "settings": (dict,), "edit": (bytes, int, int)}  # after the name
FRAME_KEYS = {"index": int, "epoch": int, "action": int, "events": list, "codec": str, "width": int, "height": int}
FRAME_SHAPE = {"event": ((NIL, _is_event), "has an 'event' without 'type' and 'text'"),
               "source": (TEXT, "has a 'source' that is not a string"),
               "prompt": (MAP, "has a 'prompt' that is not a map")}
EDIT_PROBLEM = "is an edit frame with no 'edit' layer, x and y"
EDIT_SHAPE = {k: (want, EDIT_PROBLEM) for k, want in {"layer": bytes, "x": int, "y": int}.items()}


def _history_problem(history: list | None) -> str | None:
    """Why a header's history cannot be replayed, or None: every entry is a name and the values HISTORY_SHAPES wants."""
    for entry in history or []:
        wants = HISTORY_SHAPES.get(entry[0]) if isinstance(entry, list) and entry and isinstance(entry[0], str) else None
        if wants is None or len(entry) != 1 + len(wants) or not all(map(_fits, entry[1:], wants)):
            return HISTORY_PROBLEM
    return None


def _frame_problem(r: dict, msg: dict) -> str | None:
    """Why a frame record, whose wire header is `msg`, cannot be decoded or replayed, or None."""
    bad = [k for k, want in FRAME_KEYS.items() if not _fits(msg.get(k), want)]
    if bad:
        return f"has a frame header with no valid {', '.join(repr(k) for k in bad)}"
    if msg["codec"] not in ("raw", "png", "jpeg"):
        return f"has an unknown codec {msg['codec']!r}"
    if msg["codec"] == "raw" and len(r["wire"][1]) != msg["width"] * msg["height"] * 3:
        return f"has {len(r['wire'][1])} raw pixel bytes for a {msg['width']}x{msg['height']} frame"
    problem = _shape_problem(r, FRAME_SHAPE) or _shape_problem(map_at(r, "prompt"), PROMPT_SHAPE)
    if problem or r.get("source") != "edit":
        return problem
    return _shape_problem(edit, EDIT_SHAPE) if isinstance(edit := r.get("edit"), dict) else EDIT_PROBLEM


def _malformed(r: dict) -> str | None:
    """Why a record whose CRC checks out still cannot be read (only a faulty writer makes one), or None: the reader
    skips it like a damaged one instead of raising KeyError later. A nil field reads as absent (see map_at)."""
    kind = r["kind"]
    if kind == "header":
        return (_shape_problem(r, HEADER_SHAPE) or _shape_problem(map_at(r, "prompt"), PROMPT_SHAPE)
                or _history_problem(r.get("history")))
    if kind not in WIRE_PARTS:
        return None  # `end`, or a kind from a later writer: nothing reads its keys
    wire = r.get("wire")
    if not _fits(r.get("t"), (int, float)):
        return "has no time 't'"
    if not (isinstance(wire, list) and len(wire) == WIRE_PARTS[kind] and all(isinstance(w, bytes) for w in wire)):
        return "has no 'wire' bytes"
    try:
        msg = msgpack.unpackb(wire[0], raw=False)
    except Exception:  # noqa: BLE001 - msgpack raises many types for bad bytes
        msg = None
    if not isinstance(msg, dict):
        return "has a 'wire' message that is not a msgpack map"
    info = map_at(r, "info")
    if not (isinstance(info, dict) and _fits(info.get("settings_knobs"), MAP)):
        return "has an 'info' that is not a map"
    if kind == "input" and not is_int(r.get("action_id")):
        return "has no 'action_id'"
    return _frame_problem(r, msg) if kind == "frame" else None


class RecordingReader:
    """Reads a .wbrec file record by record (never whole); unreadable bytes are skipped up to the next whole record."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder, not a recording: pass the path of a .wbrec file")
        self.file_bytes = self.path.stat().st_size
        self._index: list[tuple[int, int]] = []  # (offset, body length) of every readable record
        self.skipped: list[tuple[int, int]] = []  # [start, end) byte ranges that were unreadable
        self.malformed: list[dict] = []  # records whose CRC checked out but whose keys did not: {bytes, kind, problem}
        self.counts: dict[str, int] = {}
        self.epochs: set[int] = set()
        self.frame_times: list[float] = []
        self.frame_size: tuple[int | None, int | None] = (None, None)  # the first frame's (width, height)
        self.header: dict = {}
        self.backends: list[tuple[str, str]] = []  # (kind, name) of every header: what made the frames
        self.header_lost: str | None = None  # why the header record could not be read; its frames still are
        last_kind = None
        with open(self.path, "rb") as f:
            self._check_magic(f.read(len(MAGIC)))
            pos = len(MAGIC)
            while pos < self.file_bytes:
                record = self._read_at(f, pos)
                if record is None:
                    nxt = self._resync(f, pos + 1)
                    self.skipped.append((pos, nxt))
                    pos = nxt
                    continue
                n, r = record
                problem = _malformed(r)
                if problem is not None:  # skipped like a damaged record, and named in info()
                    end = pos + PREFIX.size + n
                    self.skipped.append((pos, end))
                    self.malformed.append({"bytes": [pos, end], "kind": r["kind"], "problem": problem})
                    pos = end
                    continue
                kind = last_kind = r["kind"]
                if not self._index and (kind != "header" or pos != len(MAGIC)):  # a later header read first is not
                    self.header_lost = self._header_loss()  # the writer's first; frame records carry their own size
                if kind == "header":
                    self.header = self.header or ({} if self.header_lost else r)  # a later one is not the first's
                    made_by = map_at(r, "session")
                    self.backends.append((made_by.get("backend_kind") or "", made_by.get("backend_name") or ""))
                self.counts[kind] = self.counts.get(kind, 0) + 1
                if kind == "frame":
                    h = msgpack.unpackb(r["wire"][0], raw=False)
                    self.epochs.add(h["epoch"])
                    self.frame_times.append(r["t"])
                    if self.counts["frame"] == 1:  # every frame record carries its size: one lost header cannot lose it
                        self.frame_size = (h["width"], h["height"])
                self._index.append((pos, n))
                pos += PREFIX.size + n
        if not self._index:
            why = self._header_loss() if self.skipped else "has no readable header record"
            raise ValueError(f"{self.path} {why}, and no whole record follows it: nothing can be recovered; {AGAIN}")
        self.complete = last_kind == "end" and not (self.skipped and self.skipped[-1][1] == self.file_bytes)
        self.dropped_bytes = sum(b - a for a, b in self.skipped)
        self.valid_bytes = self.file_bytes - self.dropped_bytes
        self.torn = bool(self.skipped)
        self.frame_count = self.counts.get("frame", 0)

    def _header_loss(self) -> str:
        """Why the first record read is no header: a faulty writer's malformed one, or bytes cut or damaged."""
        bad = next((m for m in self.malformed if m["kind"] == "header"), None)
        if bad:
            return f"has a malformed header record (it {bad['problem']}: a faulty writer made it)"
        if self.skipped and self.skipped[0][0] == len(MAGIC):
            a, b = self.skipped[0]
            return f"has no readable header record (bytes {a}-{b} were cut or damaged)"
        return "has no header record"

    def need_header(self, use: str) -> None:
        """Refuse `use`, which needs what only the header holds, in one line naming why it was lost and what still
        reads the frames."""
        if self.header_lost:
            raise ValueError(f"{self.path} {self.header_lost}: {HEADER_HOLDS} were lost with it, so it cannot be "
                             f"{use}; `worldbridge record info` and `record export` still read its "
                             f"{plural(self.frame_count, 'frame')}")

    def _check_magic(self, magic: bytes) -> None:
        """Refuse, in one line naming the file, the problem and the fix, what is no readable recording of this format."""
        if not magic:
            raise ValueError(f"{self.path} is empty (0 bytes): it was cut before its first byte was written, so it "
                             f"holds no frames; {AGAIN}")
        if len(magic) < len(MAGIC) and MAGIC.startswith(magic):
            raise ValueError(f"{self.path} ends inside its 8-byte header ({plural(len(magic), 'byte')}): it was cut "
                             f"before its first record, so it holds no frames; {AGAIN}")
        if not magic.startswith(MAGIC[:6]):
            what = next((f" (it is {name})" for sig, name in FOREIGN.items() if magic.startswith(sig)), "")
            raise ValueError(f"{self.path} is not a WorldBridge recording{what}: open a .wbrec file written by "
                             "`worldbridge serve`, `worldbridge demo` or the editor's host recording")
        if magic[6] != FORMAT_VERSION:
            fix = ("update WorldBridge (pip install -U worldbridge) to read it" if magic[6] > FORMAT_VERSION
                   else "no WorldBridge ever wrote that format, so the file is damaged")
            raise ValueError(f"{self.path} is recording format {magic[6]}; this version reads format {FORMAT_VERSION}: "
                             f"{fix}")

    def _read_at(self, f: BinaryIO, pos: int) -> tuple[int, dict] | None:
        """The record at `pos` (body length, decoded body) if its length, CRC and msgpack all check out."""
        f.seek(pos)
        prefix = f.read(PREFIX.size)
        if len(prefix) < PREFIX.size:
            return None
        n, crc = PREFIX.unpack(prefix)
        if n > MAX_RECORD_BYTES or pos + PREFIX.size + n > self.file_bytes:
            return None
        body = f.read(n)
        if len(body) != n or zlib.crc32(body) != crc:
            return None
        try:
            r = msgpack.unpackb(body, raw=False, strict_map_key=False)
        except Exception:  # noqa: BLE001 - msgpack raises many types for bad bytes
            return None
        return (n, r) if isinstance(r, dict) and isinstance(r.get("kind"), str) else None

    def _resync(self, f: BinaryIO, start: int) -> int:
        """The next offset at or after `start` holding a whole record (end of file if none): one pass, chunk by chunk."""
        at = start
        while at < self.file_bytes:
            f.seek(at)
            chunk = f.read(SCAN_CHUNK + 16)
            hit = chunk.find(SIGNATURE)
            while hit != -1:
                candidate = at + hit - PREFIX.size - 1  # prefix, then the map's one-byte length, then "kind"
                if candidate >= start and self._read_at(f, candidate) is not None:
                    return candidate
                hit = chunk.find(SIGNATURE, hit + 1)
            at += SCAN_CHUNK
        return self.file_bytes

    def damage(self, header_note: str = f"export uses {DEFAULT_FPS:g} fps unless given --fps; replay is refused"
               ) -> str | None:
        """A one-line warning for a torn or corrupt file, or None when it read whole; `header_note` says what a lost
        header means to the command that reads the file (`record`'s by default: `data import`'s --fps is another)."""
        lost = f"; the file {self.header_lost}, so {HEADER_HOLDS} are lost ({header_note})" if self.header_lost else ""
        if not self.skipped and self.complete and not lost:
            return None
        if not self.skipped:
            end = "" if self.complete else "the file has no end record (its writer stopped, or is still writing); "
            return f"{self.path}: {end}{plural(self.frame_count, 'frame')} read{lost}"
        ranges = ", ".join(f"{a}-{b}" for a, b in self.skipped[:5]) + (", ..." if len(self.skipped) > 5 else "")
        end = "; the file has no end record" if not self.complete else ""
        first = self.malformed[0] if self.malformed else {}
        bad = (f"; among them a faulty writer left {plural(len(self.malformed), 'whole record')} malformed (the "
               f"{first['kind']} record at byte {first['bytes'][0]} {first['problem']})" if first else "")
        were = "was" if self.dropped_bytes == 1 else "were"
        return (f"{self.path}: {plural(self.dropped_bytes, 'byte')} {were} unreadable and dropped (bytes {ranges})"
                f"{bad}{end}; only the readable frames are used ({plural(self.frame_count, 'frame')}){lost}")

    def __iter__(self) -> Iterator[dict]:
        return (r for _, r in self.located())

    def located(self) -> Iterator[tuple[int, dict]]:
        """Every readable record with its byte offset, so a replay can tell where a skipped range fell."""
        with open(self.path, "rb") as f:
            for pos, n in self._index:
                f.seek(pos + PREFIX.size)
                yield pos, msgpack.unpackb(f.read(n), raw=False, strict_map_key=False)

    @property
    def records(self) -> list[dict]:
        """Every readable record in memory at once (small files, tests); iterate the reader to stream big ones."""
        return list(self)

    def frames(self, decode: bool = True) -> Iterator[RecordedFrame]:
        """Every frame the session produced, in order (including frames dropped for a slow client), with the mode it
        was made in (a client may switch mode mid-recording with `settings`): "unknown" while the lost header's is."""
        mode = "unknown" if self.header_lost else map_at(self.header, "session").get("mode") or "realtime"
        for r in self:
            if r["kind"] == "control":
                msg = msgpack.unpackb(r["wire"][0], raw=False)
                if msg.get("type") == "settings" and msg.get("mode") is not None:
                    mode = msg["mode"]  # recorded only once the host applied it
            elif r["kind"] == "frame":
                h = msgpack.unpackb(r["wire"][0], raw=False)
                image = decode_pixels(r["wire"][1], h["codec"], h["width"], h["height"]) if decode else None
                yield RecordedFrame(h["index"], h["epoch"], h["action"], image, list(h["events"]), r["t"],
                                    r.get("source") or "step", h, mode)

    def inputs(self) -> Iterator[dict]:
        """Client `input` messages as received, plus `action_id` (resolved) and `t` (host ms)."""
        for r in self:
            if r["kind"] == "input":
                yield {**msgpack.unpackb(r["wire"][0], raw=False), "action_id": r["action_id"], "t": r["t"]}

    def events(self) -> Iterator[dict]:
        """Client `event` messages as received, plus the `caption` the host answered and `t`."""
        for r in self:
            if r["kind"] == "event":
                yield {**msgpack.unpackb(r["wire"][0], raw=False), "caption": r.get("caption"), "t": r["t"]}

    def controls(self) -> Iterator[dict]:
        """reset / branch / edit / settings messages as received, with the host's resolution."""
        for r in self:
            if r["kind"] == "control":
                yield {**msgpack.unpackb(r["wire"][0], raw=False), **map_at(r, "info"), "t": r["t"]}

    def info(self) -> dict:
        """A JSON-able summary for `worldbridge record info`; `backend` names what made it in the words every screen
        uses, so a sandbox take is never read as the world model's."""
        times = self.frame_times
        s = map_at(self.header, "session")
        width, height = self.frame_size if self.header_lost else (s.get("width"), s.get("height"))
        return {"path": str(self.path), "format": self.header.get("format"), "created": self.header.get("created"),
                "host": self.header.get("host"), "session_id": s.get("session_id"),
                "backend": recorded_backend_label(str(s.get("backend_kind") or ""), str(s.get("backend_name") or ""),
                                                  bool(self.header_lost)),
                "backend_kind": s.get("backend_kind"), "backend_name": s.get("backend_name"),
                "checkpoint": self.header.get("checkpoint"), "width": width, "height": height,
                "mode": "unknown" if self.header_lost else s.get("mode"), "frames": self.frame_count,
                "epochs": len(self.epochs),
                "inputs": self.counts.get("input", 0), "events": self.counts.get("event", 0),
                "duration_s": (times[-1] - times[0]) / 1000.0 if len(times) > 1 else 0.0,
                "complete": self.complete, "torn_tail_dropped": self.torn, "valid_bytes": self.valid_bytes,
                "file_bytes": self.file_bytes, "dropped_bytes": self.dropped_bytes,
                "skipped_ranges": [list(r) for r in self.skipped], "malformed_records": self.malformed,
                "header_damaged": self.header_lost and f"the file {self.header_lost}: {HEADER_HOLDS} were lost"}


def warn_damage(rec: RecordingReader) -> None:
    """Say on stderr that a recording is torn or corrupt, so nobody takes what was read for the whole session."""
    note = rec.damage()
    if note:
        print(f"warning: {note}", file=sys.stderr)


# --- Export ---

def export_recording(path: str | Path, mp4: str | Path | None = None, gif: str | Path | None = None,
                     frames_dir: str | Path | None = None, actions: str | Path | None = None,
                     fps: float | None = None, progress: bool = True, scale: int = 1) -> dict[str, Path]:
    """Stream the recording's frames into MP4/GIF/PNGs and its per-frame actions into NDJSON; all or nothing."""
    from tqdm import tqdm

    from bridge.export import Export, source_label

    rec = RecordingReader(path)
    warn_damage(rec)
    pictures = bool(mp4 or gif or frames_dir)
    if not rec.frame_count and pictures:
        raise ValueError(f"{path} holds no frames to export")
    fps = fps or float(map_at(rec.header, "session").get("fps") or DEFAULT_FPS)
    targets = {"mp4": mp4, "gif": gif, "frames": frames_dir, "actions": actions}
    with Export(targets, fps, scale, source=rec.path, label=source_label(rec.backends, bool(rec.header_lost))) as ex, \
            tqdm(total=rec.frame_count, desc="export", unit="frame", disable=not progress) as bar:
        for n, f in enumerate(rec.frames(decode=pictures)):  # pixels stay undecoded for an action log alone
            ex.add(f.image, f"{n:06d}_e{f.epoch}_i{f.index}.png")
            if actions:
                ex.write_log(json.dumps({"t": f.t, "epoch": f.epoch, "index": f.index, "action": f.action,
                                         "source": f.source, "events": f.events,
                                         "client_ts": f.header.get("client_ts"), "seq": f.header.get("seq")},
                                        default=repr) + "\n")  # a faulty client's ts may be any msgpack type
            bar.update(1)
        return ex.finish()
