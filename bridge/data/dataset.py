"""Reading worldbridge-video datasets: memory-mapped frame shards, aligned actions, and clips that stay in one episode."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bridge.values import is_int, is_number, plural

FORMAT = "worldbridge-video"
VERSION = 1


@dataclass
class Episode:
    """One continuous video: `length` frames at `start` in shard `shard`."""

    id: int
    shard: int
    start: int
    length: int
    seed: int | None = None
    caption: str = ""
    params: dict | None = None
    events: list[dict] = field(default_factory=list)
    split: str = "train"
    extra: dict = field(default_factory=dict)  # any other keys the manifest holds (e.g. policy, source file)

    @classmethod
    def from_dict(cls, d: dict) -> "Episode":
        known = {"id", "shard", "start", "length", "seed", "caption", "params", "events", "split"}
        return cls(**{k: d[k] for k in known if k in d}, extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict:
        d = {"id": self.id, "shard": self.shard, "start": self.start, "length": self.length, "seed": self.seed,
             "caption": self.caption, "params": self.params, "events": self.events, "split": self.split}
        d.update(self.extra)
        return d


SHARD_KINDS = ("frames", "actions", "effective_actions", "sketches")


def shard_name(kind: str, index: int) -> str:
    """File name of a shard: frames_00000.npy, actions_00000.npy, effective_actions_00000.npy, sketches_00000.npy."""
    return f"{kind}_{index:05d}.npy"


def _count(v: object, least: int) -> bool:
    return is_int(v) and v >= least


def _check_manifest(path: Path, m: dict) -> None:
    """Every field a reader relies on, with its type, so a hand edit gone wrong is named instead of a traceback."""
    bad = [f"{k}={m[k]!r} (a whole number >= 1)" for k in ("height", "width") if not _count(m[k], 1)]
    if not (is_number(m["fps"]) and m["fps"] > 0):
        bad.append(f"fps={m['fps']!r} (a number > 0)")
    if not (m.get("action_names") is None or isinstance(m["action_names"], list)):
        bad.append(f"action_names={m['action_names']!r} (a list of names, or null)")
    if not isinstance(m["episodes"], list):
        bad.append("episodes (a list)")
    for i, e in enumerate(m["episodes"] if isinstance(m["episodes"], list) else []):
        if not isinstance(e, dict):
            bad.append(f"episodes[{i}] (an object)")
            continue
        bad += [f"episodes[{i}].{k}={e.get(k)!r} (a whole number >= {least})"
                for k, least in (("id", 0), ("shard", 0), ("start", 0), ("length", 1)) if not _count(e.get(k), least)]
        if e.get("split", "train") not in ("train", "val"):
            bad.append(f"episodes[{i}].split={e['split']!r} ('train' or 'val')")
    if bad:
        raise ValueError(f"{path} has bad values: {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}; fix them or "
                         "make the dataset again")


class VideoDataset:
    """A dataset directory written by `worldbridge data generate|import|capture` (see docs/data.md)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        manifest = self.root / "manifest.json"
        if self.root.is_file():
            raise FileNotFoundError(f"{self.root} is a file, not a dataset: a dataset is a folder holding manifest.json "
                                    "and its episode shards (docs/data.md); give that folder, or make one with "
                                    "`worldbridge data generate` or `worldbridge data import`")
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset directory {self.root} does not exist; create one with `worldbridge data generate`")
        if not manifest.is_file():
            raise FileNotFoundError(
                f"{self.root} has no manifest.json, so it is not a complete dataset (an interrupted run, or the wrong "
                f"folder); regenerate it with `worldbridge data generate` or `worldbridge data import`"
            )
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{manifest} is corrupt ({e}); regenerate the dataset") from None
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise ValueError(f"{manifest} is not a {FORMAT} manifest (format={m.get('format') if isinstance(m, dict) else None!r})")
        if m.get("version") != VERSION:
            raise ValueError(f"{manifest} has version {m.get('version')}; this worldbridge reads version {VERSION}")
        missing = [k for k in ("height", "width", "fps", "episodes") if k not in m]
        if missing:
            raise ValueError(f"{manifest} lacks the keys {missing}; regenerate the dataset")
        _check_manifest(manifest, m)
        self.manifest = m
        self.height, self.width, self.fps = int(m["height"]), int(m["width"]), float(m["fps"])
        self.action_names: list[str] | None = m.get("action_names")
        self.source: str = m.get("source", "unknown")
        self.fingerprint: str | None = m.get("fingerprint")  # None: made before datasets carried one
        self.episodes = [Episode.from_dict(e) for e in m["episodes"]]
        self.num_frames = int(sum(e.length for e in self.episodes))
        self._shards: dict[tuple[str, int], np.ndarray] = {}
        self.has_actions = (self.root / shard_name("actions", 0)).is_file() if self.episodes else False
        self.has_sketches = (self.root / shard_name("sketches", 0)).is_file() if self.episodes else False
        for index in sorted({e.shard for e in self.episodes}):  # every shard's header now: damage is named up front
            for kind in SHARD_KINDS:
                self._shard(kind, index)

    def __repr__(self) -> str:
        return (f"VideoDataset({str(self.root)!r}, {plural(len(self.episodes), 'episode')}, "
                f"{plural(self.num_frames, 'frame')}, {self.height}x{self.width})")

    def __len__(self) -> int:
        return len(self.episodes)

    def _shard(self, kind: str, index: int) -> np.ndarray | None:
        key = (kind, index)
        if key not in self._shards:
            path = self.root / shard_name(kind, index)
            if not path.is_file():
                if kind == "frames":
                    raise FileNotFoundError(f"{path} is missing; the dataset is damaged, regenerate it")
                return None
            try:
                arr = np.load(path, mmap_mode="r")
            except (ValueError, EOFError, OSError) as e:  # empty, truncated or not a .npy file at all
                raise ValueError(f"{path} is damaged ({e or type(e).__name__}); regenerate the dataset") from None
            need = max((e.start + e.length for e in self.episodes if e.shard == index), default=0)
            if len(arr) < need:
                raise ValueError(f"{path} holds {plural(len(arr), 'frame')} but the manifest needs {need}; the dataset is damaged, "
                                 "regenerate it")
            self._check_shard(path, kind, index, arr)
            self._shards[key] = arr
        return self._shards[key]

    def _check_shard(self, path: Path, kind: str, index: int, arr: np.ndarray) -> None:
        """A shard must hold what the manifest promises, or training and previews read garbage without a word."""
        if kind in ("frames", "sketches"):
            want = (self.height, self.width, 3)
            if arr.dtype != np.uint8 or arr.shape[1:] != want:
                raise ValueError(f"{path} holds {arr.dtype} images of shape {arr.shape[1:]}, but manifest.json says uint8 "
                                 f"{want}: the dataset is damaged or was edited by hand; regenerate it")
            return
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{path} holds {arr.dtype} {arr.shape}, not one integer action per frame: the dataset is "
                             "damaged; regenerate it")
        frames = self._shard("frames", index)
        if len(arr) != len(frames):
            raise ValueError(f"{path} holds {plural(len(arr), 'action')} but {shard_name('frames', index)} holds "
                             f"{plural(len(frames), 'frame')}: the dataset is damaged; regenerate it")

    def frames(self, episode: Episode) -> np.ndarray:
        """(L, H, W, 3) uint8 memory-mapped view of an episode's frames."""
        return self._shard("frames", episode.shard)[episode.start : episode.start + episode.length]

    def actions(self, episode: Episode, effective: bool = False) -> np.ndarray | None:
        """(L,) int16: actions[i] moves frame i to frame i+1, -1 on the last frame; None for action-free footage."""
        a = self._shard("effective_actions" if effective else "actions", episode.shard)
        return None if a is None else a[episode.start : episode.start + episode.length]

    def sketches(self, episode: Episode) -> np.ndarray | None:
        """(L, H, W, 3) uint8 sketch views, when generated with --sketch."""
        s = self._shard("sketches", episode.shard)
        return None if s is None else s[episode.start : episode.start + episode.length]

    def split(self, name: str) -> list[Episode]:
        """Episodes of a split ("train" / "val"); splits are by level seed, so no level is in both."""
        if name not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {name!r}")
        return [e for e in self.episodes if e.split == name]


class ClipSampler:
    """Uniform random clips of `clip_len` frames that never cross an episode boundary."""

    def __init__(self, ds: VideoDataset, clip_len: int, split: str = "train", stride: int = 1, seed: int = 0):
        if clip_len < 1 or stride < 1:
            raise ValueError(f"clip_len and stride must be >= 1, got clip_len={clip_len}, stride={stride}")
        self.ds, self.clip_len, self.stride = ds, clip_len, stride
        self.episodes = ds.episodes if split == "all" else ds.split(split)
        ep_idx, offsets = [], []
        for i, e in enumerate(self.episodes):
            n = (e.length - clip_len) // stride + 1 if e.length >= clip_len else 0
            ep_idx.append(np.full(n, i, np.int32))
            offsets.append(np.arange(n, dtype=np.int64) * stride)
        self.ep_idx = np.concatenate(ep_idx) if ep_idx else np.zeros(0, np.int32)
        self.offsets = np.concatenate(offsets) if offsets else np.zeros(0, np.int64)
        if not self.episodes:
            raise ValueError(f"{ds.root} has no {split!r} episodes: make it again from more sources or episodes, or "
                             "with another --val-fraction, so that both splits get some")
        if len(self.ep_idx) == 0:
            longest = max((e.length for e in self.episodes), default=0)
            raise ValueError(
                f"no clips of {plural(clip_len, 'frame')} in split {split!r} of {ds.root} "
                f"({plural(len(self.episodes), 'episode')}, longest {plural(longest, 'frame')}): "
                f"{longer_episodes(ds, clip_len)}"
            )
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.ep_idx)

    def clip(self, index: int) -> tuple[Episode, int]:
        """The episode and frame offset of clip number `index`."""
        return self.episodes[int(self.ep_idx[index])], int(self.offsets[index])

    def _pick(self, batch: int, rng: np.random.Generator | None) -> np.ndarray:
        return (rng or self.rng).integers(0, len(self), size=batch)

    def _frames(self, picks: np.ndarray) -> np.ndarray:
        T = self.clip_len
        out = np.empty((len(picks), T, self.ds.height, self.ds.width, 3), np.uint8)
        for b, k in enumerate(picks):
            ep, off = self.clip(int(k))
            out[b] = self.ds.frames(ep)[off : off + T]
        return out

    def sample(self, batch: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """(B, T, H, W, 3) uint8 clips."""
        return self._frames(self._pick(batch, rng))

    def sample_with_actions(self, batch: int, rng: np.random.Generator | None = None, effective: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Clips and their actions (B, T-1) int16: actions[:, t] takes frame t to frame t+1 (None without actions)."""
        picks = self._pick(batch, rng)
        frames = self._frames(picks)
        if not self.ds.has_actions:
            return frames, None
        acts = np.empty((batch, self.clip_len - 1), np.int16)
        for b, k in enumerate(picks):
            ep, off = self.clip(int(k))
            acts[b] = self.ds.actions(ep, effective=effective)[off : off + self.clip_len - 1]
        return frames, acts


def provenance(ds: VideoDataset) -> dict:
    """What a model card records of the footage it was trained on: the dataset's path, its content fingerprint (None
    for one made before fingerprints) and how it was made (`generated_by` / `imported_from`, where the manifest says)."""
    return {"path": str(ds.root.resolve()), "fingerprint": ds.fingerprint,
            **{k: ds.manifest[k] for k in ("generated_by", "imported_from") if k in ds.manifest}}


def made_by(ds: VideoDataset) -> str | None:
    """The `worldbridge data` command that made a dataset (by its source), so a fix names the command to run again."""
    return {"sandbox": "generate", "import": "import"}.get(ds.source, "capture" if ds.source.startswith("gymnasium:") else None)


def longer_episodes(ds: VideoDataset, frames: int) -> str:
    """How to make a dataset again with episodes of `frames` frames or more, by the command that made it."""
    need = f"make the dataset again with episodes of {plural(frames, 'frame')} or more"
    made = made_by(ds)
    if made == "import":  # the frames of a video are its seconds times --fps
        return (f"{need}: import longer footage, or resample it to more frames a second (`worldbridge data import ... "
                f"--fps`; it was imported at {ds.fps:g} fps)")
    if made == "capture":
        return f"{need} (`worldbridge data capture ... --frames {frames}`; an environment may end episodes sooner)"
    return f"{need} (e.g. `worldbridge data generate --frames {frames}`)"


def no_val_episodes(ds: VideoDataset) -> str:
    """Why a dataset has nothing held out, and the command that makes one that has (by how it was made)."""
    made = made_by(ds)
    if len(ds.episodes) < 2:
        fix = "make it again with at least 2 episodes (one is held out for validation)"
    elif made == "capture":
        fix = "capture it again (with 2 or more episodes, one is held out)"
    elif made is not None:
        fix = f"make it again with `worldbridge data {made} ... --val-fraction 0.2 --overwrite`"
    else:
        fix = "give some episodes \"split\": \"val\" in its manifest.json, or make it again with `worldbridge data ...`"
    return f"{ds.root} has no val episodes ({plural(len(ds.episodes), 'episode')}, all in train): {fix}"


def check_frame_size(ds: VideoDataset, height: int, width: int, what: str, also: str = "") -> None:
    """Refuse footage of another frame size than a model's (`what`, trained on height x width): it reads no other."""
    if (ds.height, ds.width) == (height, width):
        return
    make = f" (`worldbridge data generate|import ... --size {height}` makes it)" if height == width else ""
    raise ValueError(f"{what} was trained on {height}x{width} frames but {ds.root} has {ds.height}x{ds.width}: give "
                     f"--data footage of {height}x{width} frames{make}{f', or {also}' if also else ''}")
