"""Writing datasets atomically: everything goes to a hidden temp folder that replaces the output only when complete."""

from __future__ import annotations

import hashlib
import json
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from bridge.data.dataset import FORMAT, VERSION, shard_name
from bridge.data.interrupt import sigterm_as_ctrl_c
from bridge.files import atomic_write_json, make_temp, publish_over, remove_tree

SHARD_FRAMES = 5000  # target frames per shard (episodes are never split across shards)
SAMPLES, SAMPLE_BYTES = 16, 1 << 16  # a fingerprint reads 16 spans of 64 KiB of each shard (1 MiB of a 61 MB one)


def _seed_hash(seed: int) -> float:
    return ((int(seed) * 2654435761 + 0x9E3779B9) % 2**32) / 2**32


def split_for_seed(seed: int, val_fraction: float) -> str:
    """'val' for a fixed pseudo-random fraction of seeds: the split depends on the level seed only."""
    return "val" if _seed_hash(seed) < val_fraction else "train"


def fitted_val_fraction(seeds: list[int], val_fraction: float) -> float:
    """val_fraction, moved just enough that two or more distinct seeds get both a val and a train episode."""
    h = sorted({_seed_hash(s) for s in seeds})
    if len(h) < 2 or val_fraction <= 0:
        return val_fraction
    if val_fraction <= h[0]:  # none would be held out: the first seed is
        return (h[0] + h[1]) / 2
    if val_fraction > h[-1]:  # none would be trained on: the last seed is
        return (h[-2] + h[-1]) / 2
    return val_fraction


def _is_dataset(path: Path) -> bool:
    """A folder this writer made: its manifest.json names the format."""
    try:
        return json.loads((path / "manifest.json").read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


class DatasetWriter:
    """Collects shards and episodes in `OUT/../.OUT.tmp-*`; `finish()` writes the manifest last and moves it into place.

    Use as a context manager: any exception (Ctrl-C and `kill` included) deletes the temp folder, leaving no half
    dataset.
    """

    def __init__(self, out: str | Path, *, height: int, width: int, fps: float, action_names: list[str] | None,
                 source: str, overwrite: bool = False, generated_by: dict | None = None):
        self.out = Path(out).absolute()
        empty = self.out.is_dir() and not any(self.out.iterdir())
        if self.out.exists() and not empty:
            if not overwrite:
                raise FileExistsError(f"{self.out} already exists; choose another --out or pass --overwrite")
            if not _is_dataset(self.out):  # --overwrite replaces a dataset, never a folder of anything else
                raise FileExistsError(f"{self.out} is not a WorldBridge dataset (no {FORMAT} manifest.json), so "
                                      "--overwrite will not delete it: choose another --out")
        self._made_parents = []
        p = self.out.parent
        while not p.exists():
            self._made_parents.append(p)
            p = p.parent
        self.tmp: Path | None = None
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = make_temp(self.out, "", folder=True)  # and a killed writer's leftover for --out goes
        except OSError as e:  # name the folder the user chose, not the hidden temp folder beside --out
            self.abort()
            raise OSError(f"cannot write a dataset into {self.out.parent} ({e.strerror or e}): choose an --out in a "
                          "folder you can write to") from None
        self.header = {"format": FORMAT, "version": VERSION, "height": int(height), "width": int(width), "fps": float(fps),
                       "action_names": action_names, "source": source}
        if generated_by is not None:  # how to make this dataset again (the generator's settings)
            self.header["generated_by"] = generated_by
        self.episodes: list[dict] = []
        self.num_shards = 0
        self._pending: list[tuple[dict, np.ndarray, np.ndarray | None, np.ndarray | None]] = []
        self._pending_frames = 0
        self.done = False

    def __enter__(self) -> "DatasetWriter":
        self._signals = ExitStack()
        self._signals.enter_context(sigterm_as_ctrl_c())
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        with self._signals:
            if exc_type is not None or not self.done:
                self.abort()

    # --- Shards written by someone else (e.g. generation workers) ---
    def reserve_shard(self) -> int:
        self.num_shards += 1
        return self.num_shards - 1

    def add_episodes(self, episodes: list[dict]) -> None:
        self.episodes.extend(episodes)

    # --- Streaming episodes (import, capture): buffered into shards of about SHARD_FRAMES frames ---
    def add_episode(self, meta: dict, frames: np.ndarray, actions: np.ndarray | None = None,
                    effective: np.ndarray | None = None) -> None:
        """Queue one episode; shards are flushed as they fill."""
        H, W = self.header["height"], self.header["width"]
        if frames.ndim != 4 or frames.shape[1:] != (H, W, 3) or frames.dtype != np.uint8:
            raise ValueError(f"episode frames must be (L, {H}, {W}, 3) uint8, got {frames.shape} {frames.dtype}")
        if len(frames) == 0:
            raise ValueError("an episode needs at least one frame")
        self._pending.append((meta, frames, actions, effective))
        self._pending_frames += len(frames)
        if self._pending_frames >= SHARD_FRAMES:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        shard = self.reserve_shard()
        start = 0
        for meta, frames, _, _ in self._pending:
            self.episodes.append({**meta, "shard": shard, "start": start, "length": len(frames)})
            start += len(frames)
        save_shard(self.tmp, shard, np.concatenate([p[1] for p in self._pending]),
                   _cat([p[2] for p in self._pending]), _cat([p[3] for p in self._pending]))
        self._pending, self._pending_frames = [], 0

    def split_by_seed(self, val_fraction: float) -> float:
        """Give every episode its split from its seed, with the fraction fitted to all of them (import learns its
        seeds only while reading its sources); -> the fraction used."""
        self.flush()
        frac = fitted_val_fraction([e["seed"] for e in self.episodes], val_fraction)
        for e in self.episodes:
            e["split"] = split_for_seed(e["seed"], frac)
        return frac

    def finish(self) -> Path:
        """Write the manifest (last) and move the finished dataset to `out`."""
        self.flush()
        if not self.episodes:
            raise ValueError("no episodes were written; nothing to save")
        episodes = sorted(self.episodes, key=lambda e: e["id"])
        atomic_write_json(self.tmp / "manifest.json", {**self.header, "fingerprint": fingerprint(self.tmp, episodes),
                                                       "episodes": episodes})
        publish_over(self.tmp, self.out)  # mkdtemp made it private: the dataset gets an ordinary folder's mode
        self.done = True
        return self.out

    def abort(self) -> None:
        if self.tmp is not None:
            remove_tree(self.tmp)
        for p in self._made_parents:
            try:
                p.rmdir()
            except OSError:
                break


def fingerprint(folder: Path, episodes: list[dict]) -> str:
    """A dataset's content hash, for the model cards of what trains on it: its episode list and each shard's name,
    size and SAMPLES spans of its bytes (first, last and evenly between), so a dataset of gigabytes is read in
    megabytes and footage made again at the same path is told from the old."""
    h = hashlib.sha256(json.dumps(episodes, sort_keys=True).encode())
    for path in sorted(folder.glob("*.npy")):
        size = path.stat().st_size
        h.update(f"{path.name}\n{size}\n".encode())
        with open(path, "rb") as f:
            for at in sorted({max(size - SAMPLE_BYTES, 0) * i // (SAMPLES - 1) for i in range(SAMPLES)}):
                f.seek(at)
                h.update(f.read(SAMPLE_BYTES))
    return h.hexdigest()[:16]


def _cat(parts: list[np.ndarray | None]) -> np.ndarray | None:
    return None if any(p is None for p in parts) else np.concatenate(parts).astype(np.int16)


def save_shard(folder: Path, index: int, frames: np.ndarray, actions: np.ndarray | None = None,
               effective: np.ndarray | None = None, sketches: np.ndarray | None = None) -> None:
    """Write one shard's arrays as .npy files (frames uint8, actions int16)."""
    np.save(folder / shard_name("frames", index), np.ascontiguousarray(frames, np.uint8))
    if actions is not None:
        np.save(folder / shard_name("actions", index), np.asarray(actions, np.int16))
    if effective is not None:
        np.save(folder / shard_name("effective_actions", index), np.asarray(effective, np.int16))
    if sketches is not None:
        np.save(folder / shard_name("sketches", index), np.ascontiguousarray(sketches, np.uint8))
