"""Append-only session recordings (docs/recordings.md): write, read (torn tails dropped), export, replay."""

from __future__ import annotations

import json
import math
import os
import struct
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from time import monotonic
from typing import Any, BinaryIO, Callable

import msgpack
import numpy as np

from bridge.backend import Prompt, WorldEvent, takes
from bridge.host.pixels import decode_layer, decode_pixels, decode_prompt_image
from bridge.host.protocol import MODEL_KNOBS, Limits, setting_problem
from bridge.values import is_int

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
        if self.path.suffix != ".wbrec":
            raise ValueError(f"recording path {self.path} must end in .wbrec")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "xb")  # never overwrite another recording
        self.frames = 0
        self._synced_at = monotonic()
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
        """When (monotonic s) the records not yet on disk are due a sync, so the host loop can wake for it; inf if none."""
        return self._synced_at + SYNC_EVERY_S if self._unsynced else math.inf

    def flush_due(self) -> None:
        """Sync once SYNC_EVERY_S has passed since the last sync, if records are waiting: called by every write and by
        the host loop, so a session gone idle in step mode still has its last records on disk a second later."""
        now = monotonic()
        if self._unsynced and not self._f.closed and now >= self.sync_due():
            os.fsync(self._f.fileno())  # a failure is a failed write: the host ends this recording only
            self._synced_at = now
            self._unsynced = False

    def close(self, t: float | None = None, write_end: bool = True) -> None:
        """End the file (with its `end` record unless a write already failed) and put it on disk, so a power loss after
        `record_stop` keeps the whole recording; the file is closed even if that fails."""
        if self._f.closed:
            return
        try:
            if write_end:
                self.write({"kind": "end", "t": t, "frames": self.frames})
                os.fsync(self._f.fileno())
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
    mode: str = "realtime"  # the session's mode when it was made: the header's, then each `settings` that switched it


SIGNATURE = b"\xa4kind"  # every record body is a msgpack map whose first key is "kind": resync looks for it
SCAN_CHUNK = 1 << 20
AGAIN = "record the session again"
FOREIGN = {b"\x89PNG": "a PNG image", b"GIF8": "a GIF image", b"\xff\xd8\xff": "a JPEG image",
           b"PK\x03\x04": "a zip file; an editor session (.wbsession) opens with `worldbridge play --session`"}


WIRE_PARTS = {"frame": 2, "input": 1, "event": 1, "control": 1}  # [header, pixels] for a frame, else [message]
NIL = type(None)
MAP = (dict, NIL)  # a nil map reads as an empty one (see _map)
TEXT = (str, NIL)


def _map(r: dict, key: str) -> Any:
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
    problem = _shape_problem(r, FRAME_SHAPE) or _shape_problem(_map(r, "prompt"), PROMPT_SHAPE)
    if problem or r.get("source") != "edit":
        return problem
    return _shape_problem(edit, EDIT_SHAPE) if isinstance(edit := r.get("edit"), dict) else EDIT_PROBLEM


def _malformed(r: dict) -> str | None:
    """Why a record whose CRC checks out still cannot be read (only a faulty writer makes one), or None: the reader
    skips it like a damaged one instead of raising KeyError later. A nil field reads as absent (see _map)."""
    kind = r["kind"]
    if kind == "header":
        return (_shape_problem(r, HEADER_SHAPE) or _shape_problem(_map(r, "prompt"), PROMPT_SHAPE)
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
    info = _map(r, "info")
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
        self.header: dict = {}
        self.backends: list[tuple[str, str]] = []  # (kind, name) of every header: what made the frames
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
                if not self._index and r["kind"] != "header":
                    break
                kind = last_kind = r["kind"]
                if kind == "header":
                    self.header = self.header or r
                    made_by = _map(r, "session")
                    self.backends.append((made_by.get("backend_kind") or "", made_by.get("backend_name") or ""))
                self.counts[kind] = self.counts.get(kind, 0) + 1
                if kind == "frame":
                    self.epochs.add(msgpack.unpackb(r["wire"][0], raw=False)["epoch"])
                    self.frame_times.append(r["t"])
                self._index.append((pos, n))
                pos += PREFIX.size + n
        if not self._index:
            bad = next((m for m in self.malformed if m["kind"] == "header"), None)
            why = (f"has a malformed header record (it {bad['problem']}: a faulty writer made it)" if bad else
                   "has no readable header record (the file was cut or damaged inside it)")
            raise ValueError(f"{self.path} {why}, and no frame can be decoded without it: nothing can be recovered; "
                             f"{AGAIN}")
        self.complete = last_kind == "end" and not (self.skipped and self.skipped[-1][1] == self.file_bytes)
        self.dropped_bytes = sum(b - a for a, b in self.skipped)
        self.valid_bytes = self.file_bytes - self.dropped_bytes
        self.torn = bool(self.skipped)
        self.frame_count = self.counts.get("frame", 0)

    def _check_magic(self, magic: bytes) -> None:
        """Refuse, in one line naming the file, the problem and the fix, what is no readable recording of this format."""
        if not magic:
            raise ValueError(f"{self.path} is empty (0 bytes): it was cut before its first byte was written, so it "
                             f"holds no frames; {AGAIN}")
        if len(magic) < len(MAGIC) and MAGIC.startswith(magic):
            raise ValueError(f"{self.path} ends inside its 8-byte header ({len(magic)} bytes): it was cut before its "
                             f"first record, so it holds no frames; {AGAIN}")
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

    def damage(self) -> str | None:
        """A one-line warning for a torn or corrupt file, or None when it read whole."""
        if not self.skipped and self.complete:
            return None
        if not self.skipped:
            return (f"{self.path}: the file has no end record (its writer stopped, or is still writing); "
                    f"its {self.frame_count} frames were read")
        ranges = ", ".join(f"{a}-{b}" for a, b in self.skipped[:5]) + (", ..." if len(self.skipped) > 5 else "")
        end = "; the file has no end record" if not self.complete else ""
        first = self.malformed[0] if self.malformed else {}
        bad = (f"; {len(self.malformed)} of those were whole records that a faulty writer left malformed (the "
               f"{first['kind']} record at byte {first['bytes'][0]} {first['problem']})" if first else "")
        return (f"{self.path}: {self.dropped_bytes} bytes were unreadable and dropped (bytes {ranges}){bad}{end}; "
                f"only the {self.frame_count} readable frames are used")

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
        was made in (a client may switch mode mid-recording with `settings`)."""
        mode = _map(self.header, "session").get("mode") or "realtime"
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
                yield {**msgpack.unpackb(r["wire"][0], raw=False), **_map(r, "info"), "t": r["t"]}

    def info(self) -> dict:
        """A JSON-able summary for `worldbridge record info`."""
        times = self.frame_times
        s = _map(self.header, "session")
        return {"path": str(self.path), "format": self.header.get("format"), "created": self.header.get("created"),
                "host": self.header.get("host"), "session_id": s.get("session_id"),
                "backend_kind": s.get("backend_kind"), "backend_name": s.get("backend_name"),
                "checkpoint": self.header.get("checkpoint"), "width": s.get("width"), "height": s.get("height"),
                "mode": s.get("mode"), "frames": self.frame_count, "epochs": len(self.epochs),
                "inputs": self.counts.get("input", 0), "events": self.counts.get("event", 0),
                "duration_s": (times[-1] - times[0]) / 1000.0 if len(times) > 1 else 0.0,
                "complete": self.complete, "torn_tail_dropped": self.torn, "valid_bytes": self.valid_bytes,
                "file_bytes": self.file_bytes, "dropped_bytes": self.dropped_bytes,
                "skipped_ranges": [list(r) for r in self.skipped], "malformed_records": self.malformed}


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
    fps = fps or float(_map(rec.header, "session").get("fps") or 24.0)
    targets = {"mp4": mp4, "gif": gif, "frames": frames_dir, "actions": actions}
    with Export(targets, fps, scale, source=rec.path, label=source_label(rec.backends)) as ex, \
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


# --- Replay ---

def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


# Where a replay found recorded settings, in its check and when it applies them: one wording for both
_AT_RESET = "{path}: the header's reset_settings"
_AT_HISTORY = "{path}: the header's history entry {n}"
_AT_RECORD = "{path}: the settings record at byte {pos}"


def _recorded_settings(rec: RecordingReader, path: str | Path) -> Iterator[tuple[str, dict, tuple[str, ...]]]:
    """Every settings map and prompt seed a replay applies, with where it is in the file and the names it may hold."""
    h = rec.header
    yield _AT_RESET.format(path=path), _map(h, "reset_settings"), MODEL_KNOBS
    yield f"{path}: the header's prompt", {"seed": _map(h, "prompt").get("seed")}, ("seed",)
    for n, entry in enumerate(h.get("history") or []):
        if entry[0] == "settings":
            yield _AT_HISTORY.format(path=path, n=n), entry[1], MODEL_KNOBS
    for pos, r in rec.located():
        if r["kind"] == "control":
            yield _AT_RECORD.format(path=path, pos=pos), _map(_map(r, "info"), "settings_knobs"), MODEL_KNOBS
        elif r["kind"] == "frame" and r.get("source") in ("start", "reset") and r.get("prompt"):
            hdr = msgpack.unpackb(r["wire"][0], raw=False)
            yield (f"{path}: the prompt of {r['source']} frame {hdr['index']} of epoch {hdr['epoch']}",
                   {"seed": r["prompt"].get("seed")}, ("seed",))


def _check_settings(rec: RecordingReader, path: str | Path) -> list[str]:
    """Hold every recorded setting and prompt seed to the host's own ranges before the backend loads (the host never
    records a value it refused, so one outside them is a hand edit or damage: refused in one line), and warn of each
    name this WorldBridge does not know, which the replay leaves out as the host ignores it; returns those warnings."""
    unknown: dict[str, list[str]] = {}  # name -> every place it is set
    for where, knobs, names in _recorded_settings(rec, path):
        for key, value in knobs.items():
            if value is None:  # nil: a knob the recording backend lacked
                continue
            if key not in names:
                unknown.setdefault(key, []).append(where)
                continue
            problem = setting_problem(key, value, Limits())
            if problem:
                raise ValueError(f"{where}: {problem}; the host never records a value it refused, so the file was "
                                 "edited or damaged, or recorded by a newer WorldBridge with wider ranges: set the "
                                 "value within its range or remove it, or replay it with that version")
    notes = [f"{places[0]}{f' (and {len(places) - 1} more)' if len(places) > 1 else ''}: {key!r} is no "
             f"model setting this WorldBridge knows ({', '.join(MODEL_KNOBS)}): left out, as the host leaves out a "
             "name it does not know, so frames made with it may differ (recorded by a newer WorldBridge? replay it "
             "with that version)" for key, places in unknown.items()]
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    return notes


def _prompt(p: dict) -> Prompt:
    """The backend's Prompt for a recorded prompt map, its images decoded."""
    return Prompt(seed=p.get("seed"), text=p.get("text"),
                  image=decode_prompt_image(p["image"]) if p.get("image") else None,
                  sketch=decode_prompt_image(p["sketch"]) if p.get("sketch") else None)


def _event(ev: dict | None) -> WorldEvent | None:
    """The WorldEvent a recorded step carried, if any."""
    return WorldEvent(type=ev["type"], text=ev["text"]) if ev else None


def _configure(backend: Any, knobs: dict, where: str) -> None:
    """Apply the recorded model knobs (checked by _check_settings) that are set; like the host, pass no other name.
    Another backend than the recording's may refuse what that one took: said in one line naming `where` in the file."""
    knobs = {k: knobs[k] for k in MODEL_KNOBS if knobs.get(k) is not None}
    if not knobs or not hasattr(backend, "configure"):
        return
    lacking = [k for k in knobs if not takes(backend.configure, k)]
    if lacking:  # a TypeError raised inside configure is a fault, not this: it goes up as it is
        raise _refused(where, lacking, "it has no such setting")
    try:
        backend.configure(**knobs)
    except ValueError as e:  # e.g. event_cfg on a world without event conditioning
        raise _refused(where, knobs, e) from e


def _refused(where: str, knobs: Iterable[str], reason: Exception | str) -> ValueError:
    """The one-line error for recorded settings the replaying backend refuses, with the fix."""
    return ValueError(f"{where}: the backend refuses the recorded {', '.join(knobs)}: {reason}; replay with the "
                      "backend that made the recording (`worldbridge record replay` without --checkpoint uses the "
                      "checkpoint the file names)")


def _edit(backend: Any, png: bytes, x: int, y: int) -> np.ndarray:
    """Paste a recorded edit layer, refusing in one line a backend that cannot edit frames."""
    if not callable(getattr(backend, "edit_frame", None)):
        raise ValueError(f"the recording edits frames, which {getattr(backend, 'name', 'this backend')} cannot do")
    return backend.edit_frame(decode_layer(png, int(backend.width), int(backend.height)), int(x), int(y))


def _rebuild(backend: Any, header: dict, targets: set[int], path: str | Path) -> dict[int, Any]:
    """Put the backend where the world stood when recording started (prompt, reset settings, then the timeline's
    history), so the first recorded frame follows; returns the states saved at the frames in `targets`."""
    _configure(backend, _map(header, "reset_settings"), _AT_RESET.format(path=path))
    backend.reset(_prompt(_map(header, "prompt")))
    states: dict[int, Any] = {0: backend.get_state()} if 0 in targets else {}
    index = 0
    for n, entry in enumerate(header.get("history") or []):
        if entry[0] == "step":
            backend.step(int(entry[1]), _event(entry[2]))
            index += 1
            if index in targets:
                states[index] = backend.get_state()
        elif entry[0] == "edit":
            _edit(backend, entry[1], entry[2], entry[3])
            if index in targets:
                states[index] = backend.get_state()
        else:
            _configure(backend, entry[1], _AT_HISTORY.format(path=path, n=n))
    return states


def _remake(backend: Any, r: dict, hdr: dict, source: str, path: str | Path) -> np.ndarray:
    """Make a recorded start, reset, edit or step frame again, from what its record says produced it."""
    if source in ("start", "reset"):
        if not r.get("prompt"):
            raise ValueError(f"{path}: the {source} frame {hdr['index']} of epoch {hdr['epoch']} recorded no prompt, "
                             "so it cannot be replayed: a recording made by `worldbridge serve` always has one")
        return backend.reset(_prompt(r["prompt"]))
    if source == "edit":
        return _edit(backend, r["edit"]["layer"], r["edit"]["x"], r["edit"]["y"])
    return backend.step(int(hdr["action"]), _event(r.get("event")))


@dataclass
class _Tally:
    """How the replayed frames compare with the recorded ones: the report's match figures."""

    compared: int = 0
    exact: int = 0
    psnrs: list[float] = field(default_factory=list)
    first_mismatch: dict | None = None

    def add(self, image: np.ndarray, recorded: np.ndarray, where: dict, gaps: _Gaps) -> None:
        """Compare one replayed frame with the recorded one, noting the first mismatch and whether a gap explains it."""
        self.compared += 1
        same = image.shape == recorded.shape and np.array_equal(image, recorded)
        gaps.count(same)
        if same:
            self.exact += 1
            return
        value = psnr(image, recorded) if image.shape == recorded.shape else 0.0
        self.psnrs.append(value)
        if self.first_mismatch is None:
            self.first_mismatch = {**where, "psnr": value, "after_gap": gaps.astray}

    def report(self) -> dict:
        """The match figures of the replay report, in its key order."""
        return {"frames_compared": self.compared, "frames_exact": self.exact,
                "reproduced": self.compared > 0 and self.exact == self.compared,
                "psnr_min": min(self.psnrs) if self.psnrs else None,
                "psnr_mean": float(np.mean(self.psnrs)) if self.psnrs else None, "first_mismatch": self.first_mismatch}


def replay_recording(path: str | Path, make_backend: Callable[[], Any], progress: bool = True) -> dict:
    """Re-run the recorded prompt, actions, events, branches, edits and settings; compare every frame with the recording."""
    from tqdm import tqdm

    rec = RecordingReader(path)
    warn_damage(rec)
    if not rec.frame_count:
        raise ValueError(f"{path} holds no frames to replay: there is nothing to compare")
    left_out = _check_settings(rec, path)
    backend = make_backend()
    # only the frames some branch returns to need a saved state (world-model states are megabytes)
    targets = {f.index for f in rec.frames(decode=False) if f.source == "branch"}
    states = _rebuild(backend, rec.header, targets, path)
    tally, gaps, branches, last = _Tally(), _Gaps(rec.skipped), 0, None
    with tqdm(total=rec.frame_count, desc="replay", unit="frame", disable=not progress) as bar:  # closed on errors
        for pos, r in rec.located():
            gaps.lost(pos, last)
            if r["kind"] == "control" and _map(_map(r, "info"), "settings_knobs"):
                _configure(backend, r["info"]["settings_knobs"], _AT_RECORD.format(path=path, pos=pos))
            if r["kind"] != "frame":
                continue
            bar.update(1)
            hdr = msgpack.unpackb(r["wire"][0], raw=False)
            source = r.get("source") or "step"
            where = {"epoch": hdr["epoch"], "index": hdr["index"]}
            gaps.reached(where)
            if source == "resend":
                continue  # the same frame sent again (resume): nothing new to reproduce
            if source == "branch":
                if hdr["index"] not in states and not gaps.found:
                    raise ValueError(f"the recording branches to frame {hdr['index']}, which this replay never reached")
                if hdr["index"] in states:
                    backend.set_state(states[hdr["index"]])
                    gaps.resynced(where, clean=hdr["index"] not in gaps.tainted)
                states = {i: s for i, s in states.items() if i <= hdr["index"]}
                branches += 1
                continue
            if source in ("start", "reset"):
                gaps.resynced(where, clean=True)
                states = {}
            image = _remake(backend, r, hdr, source, path)
            if hdr["index"] in targets:
                states[hdr["index"]] = backend.get_state()
                gaps.saved(hdr["index"])
            last = where
            recorded = decode_pixels(r["wire"][1], hdr["codec"], hdr["width"], hdr["height"])
            tally.add(np.asarray(image), recorded, where, gaps)
    return {"recording": str(rec.path), "backend_kind": getattr(backend, "kind", None),
            "backend_name": getattr(backend, "name", None), **tally.report(), "branches": branches,
            "torn_tail_dropped": rec.torn, "gaps": gaps.found, "frames_after_gap": gaps.frames,
            "frames_after_gap_exact": gaps.exact, "gap_note": gaps.note(), "settings_left_out": left_out}


class _Gaps:
    """What the records lost mid-file (skipped ranges) do to a replay: a lost one may have been a step, so every frame
    after it may differ, until a reset, or a branch to a state saved before the gap, puts the replay back in step."""

    def __init__(self, skipped: list[tuple[int, int]]):
        self.ahead = list(skipped)  # ranges the replay has not passed yet
        self.found: list[dict] = []  # ranges it passed: bytes, after_frame, next_frame, resynced_at
        self.astray = False  # whether the frame now replayed may differ for a lost step
        self.tainted: set[int] = set()  # frames whose saved state was made astray
        self.frames = self.exact = 0  # frames compared astray, and how many of them still matched

    def lost(self, pos: int, last: dict | None) -> None:
        """Pass every range skipped before the record at `pos`; `last` is the frame replayed before it."""
        while self.ahead and self.ahead[0][0] < pos:
            self.found.append({"bytes": list(self.ahead.pop(0)), "after_frame": last, "next_frame": None,
                               "resynced_at": None})
            self.astray = True

    def reached(self, where: dict) -> None:
        """Name `where` as the frame after every range passed since the last frame."""
        for g in self.found:
            g["next_frame"] = g["next_frame"] or where

    def resynced(self, where: dict, clean: bool) -> None:
        """A reset (clean) or a branch to a saved state (clean if it was saved in step) at `where`."""
        self.astray = not clean
        for g in self.found:
            if clean and g["resynced_at"] is None:
                g["resynced_at"] = where

    def saved(self, index: int) -> None:
        """A state saved at frame `index` is astray if the replay that made it was: a branch to it does not resync."""
        if self.astray:
            self.tainted.add(index)
        else:
            self.tainted.discard(index)

    def count(self, exact: bool) -> None:
        """Count one compared frame (and whether it matched) among those after a gap."""
        self.frames += self.astray
        self.exact += self.astray and exact

    def note(self) -> str | None:
        """One line on the first gap and the frames it may have put out of step, or None without gaps."""
        if not self.found:
            return None
        g = self.found[0]
        return (f"{len(self.found)} unreadable range(s) lost records mid-recording, the first at bytes {g['bytes'][0]}-"
                f"{g['bytes'][1]} between frame {g['after_frame']} and frame {g['next_frame']}: a lost step cannot "
                f"be replayed, so the {self.frames} frames after a gap (until a reset, or a branch to a "
                f"frame before it) are expected to differ; {self.exact} of them still matched")
