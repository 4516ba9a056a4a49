"""Generating sandbox datasets in parallel: each worker plays whole shards of episodes and writes them itself."""

from __future__ import annotations

import multiprocessing as mp
import signal
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from bridge.data.writer import SHARD_FRAMES, DatasetWriter, fitted_val_fraction, save_shard, split_for_seed

if TYPE_CHECKING:
    from bridge.worlds.sandbox import SandboxWorld


@dataclass
class GenerateConfig:
    """What `worldbridge data generate` makes."""

    world: str = "sandbox"
    episodes: int = 100
    frames: int = 500  # frames per episode, including the first
    size: int = 64
    seed: int = 0
    workers: int = 2
    sketch: bool = False
    events_per_episode: float = 1.0  # an episode with events gets max(1, Poisson(this)): mean 1.37 at 1.0
    event_fraction: float = 0.5  # share of episodes with events
    val_fraction: float = 0.05
    players: tuple[str, ...] = ("random", "explorer", "mixed")
    player_weights: tuple[float, ...] = (0.3, 0.35, 0.35)

    def __post_init__(self) -> None:
        if self.world != "sandbox":
            raise ValueError(f"unknown world {self.world!r}: only 'sandbox' can be generated (use `data capture` for Gymnasium)")
        if self.episodes < 1 or self.frames < 2:
            raise ValueError(f"need at least 1 episode of at least 2 frames, got episodes={self.episodes}, frames={self.frames}")
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.events_per_episode < 0:
            raise ValueError(f"--events-per-episode must be >= 0, got {self.events_per_episode}")
        if not 0 <= self.event_fraction <= 1:
            raise ValueError(f"--event-fraction must be in [0, 1], got {self.event_fraction}")


def episode_seed(seed: int, index: int) -> int:
    """The level seed of episode `index` (31 bits, distinct per episode)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] & 0x7FFFFFFF)


def plan_episodes(cfg: GenerateConfig) -> list[dict]:
    """Per episode: id, level seed, scripted player, event frames; grouped into shards by the caller."""
    plans = []
    for i in range(cfg.episodes):
        s = episode_seed(cfg.seed, i)
        rng = np.random.default_rng([s, 7])
        player = str(rng.choice(cfg.players, p=np.asarray(cfg.player_weights) / sum(cfg.player_weights)))
        event_frames: list[int] = []
        if cfg.events_per_episode > 0 and rng.random() < cfg.event_fraction:
            n = max(1, int(rng.poisson(cfg.events_per_episode)))
            lo, hi = max(1, cfg.frames // 10), max(2, cfg.frames - cfg.frames // 10)
            event_frames = sorted(int(f) for f in rng.integers(lo, hi, size=n))
        plans.append({"id": i, "seed": s, "player": player, "event_frames": event_frames})
    return plans


def _useful_event(world, rng: np.random.Generator) -> str:
    """An event type that visibly changes the current scene (no rain when it already rains)."""
    from bridge.worlds.events import EVENT_TYPES

    s = world.s
    useless = {f"weather_{s.weather}", {"night": "night_falls", "dusk": "dusk", "day": "day_breaks"}[s.time]}
    if s.water_target < 16:
        useless.add("flood")
    return str(rng.choice([t for t in EVENT_TYPES if t not in useless]))


def play_episode(world: SandboxWorld, plan: dict, frames: int, sketch: bool, out: tuple | None = None) -> tuple:
    """Play one planned episode; returns (frames, actions, effective actions, sketches or None, manifest entry).

    `out` may give the four arrays to fill (views into a shard), so shards are never copied.
    """
    from bridge.backend import Prompt, WorldEvent
    from bridge.worlds.players import make_player

    rng = np.random.default_rng([plan["seed"], 11])
    player = make_player(plan["player"], rng)
    H, W = world.height, world.width
    if out is None:
        out = (np.empty((frames, H, W, 3), np.uint8), np.empty(frames, np.int16), np.empty(frames, np.int16),
               np.empty((frames, H, W, 3), np.uint8) if sketch else None)
    video, actions, effective, sketches = out
    actions[:] = -1
    effective[:] = -1
    video[0] = world.reset(Prompt(seed=plan["seed"]))
    caption, params = world.caption, world.params.to_dict()
    if sketch:
        sketches[0] = world.sketch()
    pending = list(plan["event_frames"])
    for t in range(1, frames):
        a = player.act(world)
        event = None
        if pending and pending[0] <= t:  # one a frame: two planned on one frame fire on consecutive frames
            pending.pop(0)
            event = WorldEvent(type=_useful_event(world, rng))
        video[t] = world.step(a, event)
        actions[t - 1], effective[t - 1] = a, world.effective_action
        if sketch:
            sketches[t] = world.sketch()
    meta = {"id": plan["id"], "seed": plan["seed"], "caption": caption, "params": params,
            "events": [dict(e) for e in world.events_fired], "policy": plan["player"]}
    return video, actions, effective, sketches, meta


_BUFFERS: dict[str, np.ndarray] = {}


def _buffer(name: str, shape: tuple, dtype) -> np.ndarray:
    """A shard-sized array reused across shards: touching fresh memory costs more than playing the game."""
    buf = _BUFFERS.get(name)
    if buf is None or buf.shape != shape:
        buf = _BUFFERS[name] = np.empty(shape, dtype)
    return buf


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops the pool and deletes the temp folder; the parent's `kill`
    handler is not theirs (the pool ends them with SIGTERM)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _work_shard(job: tuple) -> list[dict]:
    """Worker: play a shard's episodes and save its arrays into the dataset's temp folder."""
    folder, shard, plans, cfg_dict = job
    from bridge.worlds.sandbox import SandboxWorld

    cfg = GenerateConfig(**cfg_dict)
    world = SandboxWorld(size=cfg.size, seed=cfg.seed)
    n, H, W = len(plans) * cfg.frames, world.height, world.width
    video, acts, eff = _buffer("video", (n, H, W, 3), np.uint8), np.empty(n, np.int16), np.empty(n, np.int16)
    sk = _buffer("sketch", (n, H, W, 3), np.uint8) if cfg.sketch else None
    metas = []
    for i, plan in enumerate(plans):
        part = slice(i * cfg.frames, (i + 1) * cfg.frames)
        *_, meta = play_episode(world, plan, cfg.frames, cfg.sketch, (video[part], acts[part], eff[part], sk[part] if cfg.sketch else None))
        metas.append({**meta, "shard": shard, "start": part.start, "length": cfg.frames,
                      "split": split_for_seed(plan["seed"], cfg.val_fraction)})
    save_shard(Path(folder), shard, video, acts, eff, sk)
    return metas


def generate(cfg: GenerateConfig, out: str | Path, overwrite: bool = False, progress: bool = True) -> dict:
    """Make a sandbox dataset at `out`; returns a summary with frames, seconds and frames/s."""
    from bridge.worlds.sandbox import ACTIONS, SANDBOX_FPS, SandboxWorld

    probe = SandboxWorld(size=cfg.size, seed=cfg.seed)  # validates the size before any work starts
    plans = plan_episodes(cfg)
    cfg = replace(cfg, val_fraction=fitted_val_fraction([p["seed"] for p in plans], cfg.val_fraction))
    per_shard = max(1, round(SHARD_FRAMES / cfg.frames))
    total = cfg.episodes * cfg.frames
    t0 = time.perf_counter()
    with DatasetWriter(out, height=probe.height, width=probe.width, fps=SANDBOX_FPS, action_names=ACTIONS,
                       source="sandbox", overwrite=overwrite,
                       generated_by={k: v for k, v in asdict(cfg).items() if k != "workers"}) as writer:
        jobs = []
        for i in range(0, len(plans), per_shard):
            jobs.append((str(writer.tmp), writer.reserve_shard(), plans[i : i + per_shard], asdict(cfg)))
        bar = tqdm(total=total, unit="frame", unit_scale=True, desc="generate", disable=not progress, smoothing=0.1)
        try:
            if cfg.workers == 1 or len(jobs) == 1:
                for job in jobs:
                    metas = _work_shard(job)
                    writer.add_episodes(metas)
                    bar.update(sum(m["length"] for m in metas))
            else:
                # fork is quick and safe on Linux only: macOS' system libraries (and tqdm's monitor thread) break in
                # a forked child, so there (and on Windows) workers start fresh and import what they need
                ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
                with ctx.Pool(min(cfg.workers, len(jobs)), initializer=_ignore_sigint) as pool:
                    try:
                        for metas in pool.imap_unordered(_work_shard, jobs):
                            writer.add_episodes(metas)
                            bar.update(sum(m["length"] for m in metas))
                    except BaseException:
                        pool.terminate()
                        raise
        finally:
            bar.close()
            _BUFFERS.clear()
        seconds = time.perf_counter() - t0
        path = writer.finish()
    size = sum(f.stat().st_size for f in path.iterdir())
    return {"out": str(path), "episodes": cfg.episodes, "frames": total, "seconds": round(seconds, 2),
            "frames_per_s": round(total / seconds, 1), "bytes": size, "shards": len(jobs)}
