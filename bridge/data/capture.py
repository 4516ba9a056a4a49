"""Capturing a dataset from any Gymnasium environment that renders rgb_array frames, with a random action-repeat policy."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bridge.data.importer import square_resize
from bridge.data.writer import DatasetWriter, fitted_val_fraction, split_for_seed


class CaptureError(ValueError):
    """The environment cannot be captured; the message says why and what to do."""


def make_env(env_id: str):
    """gym.make(env_id, render_mode="rgb_array") with clear errors for unknown ids and missing extras."""
    import gymnasium as gym

    import bridge.gym  # noqa: F401  (registers the WorldBridge/... ids)

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame-rendered envs draw off-screen, no display needed
    try:
        env = gym.make(env_id, render_mode="rgb_array")
    except gym.error.DependencyNotInstalled as e:
        raise CaptureError(f"{env_id} needs an extra package: {e}") from None
    except (gym.error.NameNotFound, gym.error.NamespaceNotFound, gym.error.VersionNotFound, gym.error.UnregisteredEnv) as e:
        raise CaptureError(f"unknown Gymnasium environment {env_id!r}: {e}") from None
    except (ImportError, ModuleNotFoundError) as e:
        raise CaptureError(f"{env_id} cannot be made here ({e}); install the package it needs") from None
    if "rgb_array" not in env.metadata.get("render_modes", []):
        env.close()
        raise CaptureError(f"{env_id} does not render rgb_array frames, so it cannot be captured")
    return env


def action_names_of(env) -> list[str] | None:
    """Names for a Discrete action space (the env's own meanings when it has them), None otherwise."""
    import gymnasium as gym

    space = env.action_space
    if not isinstance(space, gym.spaces.Discrete):
        return None
    meanings = getattr(env.unwrapped, "get_action_meanings", None)
    if callable(meanings):
        names = [str(m).lower() for m in meanings()]
        if len(names) == space.n:
            return names
    return [f"action_{i}" for i in range(int(space.n))]


def capture(env_id: str, out: str | Path, episodes: int = 10, frames: int = 500, size: int = 64, seed: int = 0,
            repeat: tuple[int, int] = (2, 6), val_fraction: float = 0.05, overwrite: bool = False,
            progress: bool = True) -> dict:
    """Play `episodes` episodes (up to `frames` frames each) with random repeated actions and save frames + actions."""
    if episodes < 1 or frames < 2 or size < 8:
        raise CaptureError(f"need episodes >= 1, frames >= 2, size >= 8; got {episodes}, {frames}, {size}")
    env = make_env(env_id)
    try:
        names = action_names_of(env)
        fps = float(env.metadata.get("render_fps") or 30)
        rng = np.random.default_rng(seed)
        env.action_space.seed(seed)
        total, short = 0, []
        ep_seeds = [seed * 100_003 + ep for ep in range(episodes)]
        val_fraction = fitted_val_fraction(ep_seeds, val_fraction)
        with DatasetWriter(out, height=size, width=size, fps=fps, action_names=names,
                           source=f"gymnasium:{env_id}", overwrite=overwrite) as w:
            bar = tqdm(total=episodes * frames, unit="frame", desc=f"capture {env_id}", disable=not progress)
            for ep in range(episodes):
                ep_seed = ep_seeds[ep]
                env.reset(seed=ep_seed)
                video = [square_resize(env.render(), size)]
                bar.update(1)
                acts: list[int] = []
                action, left = None, 0
                while len(video) < frames:
                    if left <= 0:
                        action, left = env.action_space.sample(), int(rng.integers(repeat[0], repeat[1] + 1))
                    left -= 1
                    _, _, terminated, truncated, _ = env.step(action)
                    video.append(square_resize(env.render(), size))
                    acts.append(int(action) if names is not None else -1)
                    bar.update(1)
                    if terminated or truncated:
                        bar.total -= frames - len(video)  # an episode that ends early: rate and ETA stay true
                        break
                actions = np.array(acts + [-1], np.int16) if names is not None else None
                w.add_episode({"id": ep, "seed": ep_seed, "caption": "", "params": None, "events": [],
                               "split": split_for_seed(ep_seed, val_fraction), "env": env_id},
                              np.stack(video), actions)
                total += len(video)
                if len(video) < frames:
                    short.append(len(video))
            bar.close()
            path = w.finish()
    finally:
        env.close()
    return {"out": str(path), "episodes": episodes, "frames": total, "fps": fps, "actions": names,
            "ended_early": len(short), "shortest": min(short, default=frames)}
