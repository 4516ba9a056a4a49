"""Replaying a recording on a backend to check that it reproduces (docs/recordings.md, Replay): kept apart from
the .wbrec format in recording.py, which the host, exporter and importer use without ever replaying."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import msgpack
import numpy as np

from bridge.backend import Prompt, takes
from bridge.host.pixels import decode_pixels, decode_prompt_image
from bridge.host.protocol import MODEL_KNOBS, Limits, setting_problem
from bridge.host.recording import RecordingReader, map_at, warn_damage
from bridge.host.session import apply_edit_png, event_from_dict, resimulate
from bridge.values import plural


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two frames in dB (inf when equal): how far a mismatched frame is off."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


# Where a replay found recorded settings, in its check and when it applies them: one wording for both
_AT_RESET = "{path}: the header's reset_settings"
_AT_HISTORY = "{path}: the header's history entry {n}"
_AT_RECORD = "{path}: the settings record at byte {pos}"


def _recorded_settings(rec: RecordingReader, path: str | Path) -> Iterator[tuple[str, dict, tuple[str, ...]]]:
    """Every settings map and prompt seed a replay applies, with where it is in the file and the names it may hold."""
    h = rec.header
    yield _AT_RESET.format(path=path), map_at(h, "reset_settings"), MODEL_KNOBS
    yield f"{path}: the header's prompt", {"seed": map_at(h, "prompt").get("seed")}, ("seed",)
    for n, entry in enumerate(h.get("history") or []):
        if entry[0] == "settings":
            yield _AT_HISTORY.format(path=path, n=n), entry[1], MODEL_KNOBS
    for pos, r in rec.located():
        if r["kind"] == "control":
            yield _AT_RECORD.format(path=path, pos=pos), map_at(map_at(r, "info"), "settings_knobs"), MODEL_KNOBS
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


def _refused(where: str, knobs: Iterable[str], reason: Exception | str) -> ValueError:
    """The one-line error for recorded settings the replaying backend refuses, with the fix."""
    return ValueError(f"{where}: the backend refuses the recorded {', '.join(knobs)}: {reason}; replay with the "
                      "backend that made the recording (`worldbridge record replay` without --checkpoint uses the "
                      "checkpoint the file names)")


def _configure(backend: Any, knobs: dict, where: str) -> None:
    """Apply the recorded model knobs (checked by _check_settings) that are set; like the host, pass no other name.
    Another backend than the recording's may refuse what that one took: said in one line naming `where` in the file.
    Not shared with Session._configure: that one re-applies settings its own backend already took, so checks none."""
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


def _rebuild(backend: Any, header: dict, targets: set[int], path: str | Path) -> dict[int, Any]:
    """Put the backend where the world stood when recording started (prompt, reset settings, then the timeline's
    history), so the first recorded frame follows; returns the states saved at the frames in `targets`."""
    _configure(backend, map_at(header, "reset_settings"), _AT_RESET.format(path=path))
    backend.reset(_prompt(map_at(header, "prompt")))
    states: dict[int, Any] = {0: backend.get_state()} if 0 in targets else {}

    def keep(index: int) -> None:
        if index in targets:
            states[index] = backend.get_state()

    resimulate(backend, header.get("history") or [],
               lambda n, knobs: _configure(backend, knobs, _AT_HISTORY.format(path=path, n=n)), keep)
    return states


def _remake(backend: Any, r: dict, hdr: dict, source: str, path: str | Path) -> np.ndarray:
    """Make a recorded start, reset, edit or step frame again, from what its record says produced it."""
    if source in ("start", "reset"):
        if not r.get("prompt"):
            raise ValueError(f"{path}: the {source} frame {hdr['index']} of epoch {hdr['epoch']} recorded no prompt, "
                             "so it cannot be replayed: a recording made by `worldbridge serve` always has one")
        return backend.reset(_prompt(r["prompt"]))
    if source == "edit":
        return apply_edit_png(backend, r["edit"]["layer"], r["edit"]["x"], r["edit"]["y"])
    return backend.step(int(hdr["action"]), event_from_dict(r.get("event")))


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
        return (f"{plural(len(self.found), 'unreadable range')} lost records mid-recording, the first at bytes "
                f"{g['bytes'][0]}-{g['bytes'][1]} between frame {g['after_frame']} and frame {g['next_frame']}: a lost "
                f"step cannot be replayed, so frames after a gap (until a reset, or a branch to a frame before it) are "
                f"expected to differ; {self.exact} of the {plural(self.frames, 'frame')} after one still matched")


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
    rec.need_header("replayed")  # the world is rebuilt from the header's prompt, settings and history
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
            if r["kind"] == "control" and map_at(map_at(r, "info"), "settings_knobs"):
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
