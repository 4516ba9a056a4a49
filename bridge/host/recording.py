"""Append-only session recordings (docs/recordings.md): write, read (torn tails dropped), export, replay."""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import msgpack
import numpy as np

from bridge.host.pixels import decode_pixels

MAGIC = b"WBREC\x00\x01\n"  # 8 bytes: name, NUL, format version 1, newline
FORMAT_VERSION = 1
PREFIX = struct.Struct(">II")  # body length, CRC32 of body
MAX_RECORD_BYTES = 1 << 30


def _pack(obj: dict) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


class Recorder:
    """Writes one session's records; every record is length-prefixed, CRC32-checked and flushed."""

    def __init__(self, path: str | Path, header: dict):
        self.path = Path(path)
        if self.path.suffix != ".wbrec":
            raise ValueError(f"recording path {self.path} must end in .wbrec")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "xb")  # never overwrite another recording
        self.frames = 0
        try:
            self._f.write(MAGIC)
            self.write({"kind": "header", "format": FORMAT_VERSION,
                        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **header})
        except BaseException:  # a full disk at the very start: no half-open file left behind
            self._f.close()
            raise

    def write(self, record: dict) -> None:
        body = _pack(record)
        self._f.write(PREFIX.pack(len(body), zlib.crc32(body)) + body)
        self._f.flush()
        if record.get("kind") == "frame":
            self.frames += 1

    def close(self, t: float | None = None, write_end: bool = True) -> None:
        """End the file (with its `end` record unless a write already failed); the file is closed even if that fails."""
        if self._f.closed:
            return
        try:
            if write_end:
                self.write({"kind": "end", "t": t, "frames": self.frames})
        finally:
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
    image: np.ndarray  # (H, W, 3) uint8
    events: list[str]
    t: float  # host ms
    source: str  # start | reset | step | branch | edit | resend
    header: dict = field(repr=False, default_factory=dict)  # the wire header as sent


class RecordingReader:
    """Reads a .wbrec file; everything up to the last whole record is kept, a torn or corrupt tail is dropped."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        data = self.path.read_bytes()
        if not data.startswith(MAGIC[:6]):
            raise ValueError(f"{self.path} is not a WorldBridge recording (.wbrec): bad magic bytes")
        if len(data) < len(MAGIC):
            raise ValueError(f"{self.path} ends inside its 8-byte header ({len(data)} bytes): it holds no records")
        if data[6] != FORMAT_VERSION:
            raise ValueError(f"{self.path} is recording format {data[6]}; this version reads format {FORMAT_VERSION}")
        self.records: list[dict] = []
        self.torn = False
        pos = len(MAGIC)
        while pos < len(data):
            if pos + PREFIX.size > len(data):
                self.torn = True
                break
            n, crc = PREFIX.unpack_from(data, pos)
            body = data[pos + PREFIX.size:pos + PREFIX.size + n]
            if n > MAX_RECORD_BYTES or len(body) != n or zlib.crc32(body) != crc:
                self.torn = True
                break
            try:
                self.records.append(msgpack.unpackb(body, raw=False, strict_map_key=False))
            except Exception:
                self.torn = True
                break
            pos += PREFIX.size + n
        self.valid_bytes = pos
        if not self.records or self.records[0].get("kind") != "header":
            raise ValueError(f"{self.path} has no readable header record")
        self.header: dict = self.records[0]
        self.complete = self.records[-1].get("kind") == "end"

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records)

    def frames(self) -> Iterator[RecordedFrame]:
        """Every frame the session produced, in order (including frames dropped for a slow client)."""
        for r in self.records:
            if r["kind"] == "frame":
                h = msgpack.unpackb(r["wire"][0], raw=False)
                image = decode_pixels(r["wire"][1], h["codec"], h["width"], h["height"])
                yield RecordedFrame(h["index"], h["epoch"], h["action"], image, list(h["events"]), r["t"],
                                    r.get("source", "step"), h)

    def inputs(self) -> Iterator[dict]:
        """Client `input` messages as received, plus `action_id` (resolved) and `t` (host ms)."""
        for r in self.records:
            if r["kind"] == "input":
                yield {**msgpack.unpackb(r["wire"][0], raw=False), "action_id": r["action_id"], "t": r["t"]}

    def events(self) -> Iterator[dict]:
        """Client `event` messages as received, plus the `caption` the host answered and `t`."""
        for r in self.records:
            if r["kind"] == "event":
                yield {**msgpack.unpackb(r["wire"][0], raw=False), "caption": r.get("caption"), "t": r["t"]}

    def controls(self) -> Iterator[dict]:
        """reset / branch / edit / settings messages as received, with the host's resolution."""
        for r in self.records:
            if r["kind"] == "control":
                yield {**msgpack.unpackb(r["wire"][0], raw=False), **r.get("info", {}), "t": r["t"]}

    def info(self) -> dict:
        """A JSON-able summary for `worldbridge record info`."""
        frames = [r for r in self.records if r["kind"] == "frame"]
        times = [r["t"] for r in frames]
        s = self.header.get("session", {})
        return {"path": str(self.path), "format": self.header.get("format"), "created": self.header.get("created"),
                "host": self.header.get("host"), "session_id": s.get("session_id"),
                "backend_kind": s.get("backend_kind"), "backend_name": s.get("backend_name"),
                "checkpoint": self.header.get("checkpoint"), "width": s.get("width"), "height": s.get("height"),
                "mode": s.get("mode"), "frames": len(frames),
                "epochs": len({msgpack.unpackb(r["wire"][0], raw=False)["epoch"] for r in frames}),
                "inputs": sum(r["kind"] == "input" for r in self.records),
                "events": sum(r["kind"] == "event" for r in self.records),
                "duration_s": (times[-1] - times[0]) / 1000.0 if len(times) > 1 else 0.0,
                "complete": self.complete, "torn_tail_dropped": self.torn, "valid_bytes": self.valid_bytes}


# --- Export ---

def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


def export_recording(path: str | Path, mp4: str | Path | None = None, gif: str | Path | None = None,
                     frames_dir: str | Path | None = None, actions: str | Path | None = None,
                     fps: float | None = None, progress: bool = True) -> dict[str, Path]:
    """Write the recording's frames as MP4/GIF/PNGs and its inputs as NDJSON; returns what was written."""
    import imageio.v2 as imageio
    from tqdm import tqdm

    rec = RecordingReader(path)
    fps = fps or float(rec.header.get("session", {}).get("fps") or 24.0)
    frames = list(rec.frames())
    if not frames and (mp4 or gif or frames_dir):
        raise ValueError(f"{path} holds no frames to export")
    out: dict[str, Path] = {}
    writers: list[tuple[str, Path, Path, Any]] = []
    if mp4:
        mp4 = Path(mp4)
        tmp = _atomic_target(mp4)
        writers.append(("mp4", mp4, tmp, imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264",
                                                            quality=8, macro_block_size=1)))
    if gif:
        gif = Path(gif)
        tmp = _atomic_target(gif)
        writers.append(("gif", gif, tmp, imageio.get_writer(tmp, format="GIF", mode="I", duration=1000.0 / fps,
                                                            loop=0)))
    if frames_dir:
        frames_dir = Path(frames_dir)
        frames_dir.mkdir(parents=True, exist_ok=True)
    for n, f in enumerate(tqdm(frames, desc="export", unit="frame", disable=not progress)):
        for _, _, _, w in writers:
            w.append_data(f.image)
        if frames_dir:
            name = frames_dir / f"{n:06d}_e{f.epoch}_i{f.index}.png"
            tmp = _atomic_target(name)
            imageio.imwrite(tmp, f.image, format="PNG")
            os.replace(tmp, name)
    for kind, final, tmp, w in writers:
        w.close()
        os.replace(tmp, final)
        out[kind] = final
    if frames_dir:
        out["frames"] = frames_dir
    if actions:
        actions = Path(actions)
        tmp = _atomic_target(actions)
        with open(tmp, "w", encoding="utf-8") as fh:
            for f in frames:
                fh.write(json.dumps({"t": f.t, "epoch": f.epoch, "index": f.index, "action": f.action,
                                     "source": f.source, "events": f.events,
                                     "client_ts": f.header.get("client_ts"), "seq": f.header.get("seq")}) + "\n")
        os.replace(tmp, actions)
        out["actions"] = actions
    return out


# --- Replay ---

def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def replay_recording(path: str | Path, make_backend: Callable[[], Any], progress: bool = True) -> dict:
    """Re-run the recorded prompt, actions, events, branches, edits and settings; compare every frame with the recording."""
    from bridge.backend import Prompt, WorldEvent
    from bridge.host.pixels import decode_layer, decode_prompt_image
    from tqdm import tqdm

    rec = RecordingReader(path)
    backend = make_backend()

    def prompt_of(p: dict) -> Prompt:
        return Prompt(seed=p.get("seed"), text=p.get("text"),
                      image=decode_prompt_image(p["image"]) if p.get("image") else None,
                      sketch=decode_prompt_image(p["sketch"]) if p.get("sketch") else None)

    def configure(knobs: dict) -> None:
        knobs = {k: v for k, v in knobs.items() if v is not None}  # nil = a knob this backend does not have
        if knobs and hasattr(backend, "configure"):
            backend.configure(**knobs)

    def edit(png: bytes, x: int, y: int) -> np.ndarray:
        if not callable(getattr(backend, "edit_frame", None)):
            raise ValueError(f"the recording edits frames, which {getattr(backend, 'name', 'this backend')} cannot do")
        return backend.edit_frame(decode_layer(png, int(backend.width), int(backend.height)), int(x), int(y))

    def event_of(ev: dict | None) -> WorldEvent | None:
        return WorldEvent(type=ev["type"], text=ev["text"]) if ev else None

    # --- rebuild the world as it stood when recording started: prompt, then the timeline's history ---
    h = rec.header
    # only the frames some branch returns to need a saved state (world-model states are megabytes)
    targets = {msgpack.unpackb(r["wire"][0], raw=False)["index"] for r in rec.records
               if r["kind"] == "frame" and r.get("source") == "branch"}
    configure(h.get("reset_settings") or {})
    backend.reset(prompt_of(h["prompt"]))
    states: dict[int, Any] = {0: backend.get_state()} if 0 in targets else {}
    index = 0
    for entry in h.get("history", []):
        if entry[0] == "step":
            backend.step(int(entry[1]), event_of(entry[2]))
            index += 1
            if index in targets:
                states[index] = backend.get_state()
        elif entry[0] == "edit":
            edit(entry[1], entry[2], entry[3])
            if index in targets:
                states[index] = backend.get_state()
        else:
            configure(entry[1])
    compared, exact, psnrs, first_mismatch, branches = 0, 0, [], None, 0
    bar = tqdm(total=sum(r["kind"] == "frame" for r in rec.records), desc="replay", unit="frame",
               disable=not progress)
    for r in rec.records:
        if r["kind"] == "control" and r.get("info", {}).get("settings_knobs"):
            configure(r["info"]["settings_knobs"])
        if r["kind"] != "frame":
            continue
        bar.update(1)
        hdr = msgpack.unpackb(r["wire"][0], raw=False)
        source = r.get("source", "step")
        if source == "resend":
            continue  # the same frame sent again (resume): nothing new to reproduce
        if source == "branch":
            if hdr["index"] not in states:
                raise ValueError(f"the recording branches to frame {hdr['index']}, which this replay never reached")
            backend.set_state(states[hdr["index"]])
            states = {i: s for i, s in states.items() if i <= hdr["index"]}
            branches += 1
            continue
        if source in ("start", "reset"):
            states = {}
            image = backend.reset(prompt_of(r["prompt"]))
        elif source == "edit":
            image = edit(r["edit"]["layer"], r["edit"]["x"], r["edit"]["y"])
        else:
            image = backend.step(int(hdr["action"]), event_of(r.get("event")))
        if hdr["index"] in targets:
            states[hdr["index"]] = backend.get_state()
        image = np.asarray(image)
        recorded = decode_pixels(r["wire"][1], hdr["codec"], hdr["width"], hdr["height"])
        compared += 1
        if image.shape == recorded.shape and np.array_equal(image, recorded):
            exact += 1
        else:
            value = psnr(image, recorded) if image.shape == recorded.shape else 0.0
            psnrs.append(value)
            if first_mismatch is None:
                first_mismatch = {"epoch": hdr["epoch"], "index": hdr["index"], "psnr": value}
    bar.close()
    return {"recording": str(rec.path), "backend_kind": getattr(backend, "kind", None),
            "backend_name": getattr(backend, "name", None), "frames_compared": compared, "frames_exact": exact,
            "reproduced": compared > 0 and exact == compared,
            "psnr_min": min(psnrs) if psnrs else None,
            "psnr_mean": float(np.mean(psnrs)) if psnrs else None,
            "first_mismatch": first_mismatch, "branches": branches, "torn_tail_dropped": rec.torn}
