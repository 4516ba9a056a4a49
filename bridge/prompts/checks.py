"""Automatic pixel checks: what a frame shows (theme, time of day, weather) and whether an event happened.

Scene attributes are read from a few interpretable pixel features (mean colours of the sky and the ground,
a coarse colour histogram for the theme's palette, brightness percentiles for the time of day, isolated white
pixels for snow, thin bright vertical streaks for rain, edge energy for fog) by a shrinkage LDA fitted on real
sandbox frames of reference seeds, plain and blurred (a generated frame is a tokenizer reconstruction, so it is
never sharp); snow and rain also need their particles on screen. Enemies, coins and floods are counted directly:
pixels of the theme's enemy colour (and nearer it than any other colour of the scene), of the coin colour, and the
blue cast of the bottom rows. An event is a change: the frame before it fired must not already show it. `validate()`
scores the checks on held-out sandbox seeds; they must get the real game ~100% right before they may score a model.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from tqdm import tqdm

from bridge.worlds.levels import THEMES, TIMES, WEATHERS
from bridge.worlds.render import SPRITE_COLORS, SPRITE_TINT, THEME_COLORS, TIME_TINT

ATTRIBUTES = {"theme": THEMES, "time": TIMES, "weather": WEATHERS}
REFERENCE_SEEDS = tuple(range(1_000_000, 1_000_004))  # levels the checks are fitted on
HELDOUT_SEEDS = tuple(range(2_000_000, 2_000_003))  # levels they are validated on (also the eval's scenes)
COIN_RGB = np.array([(255, 214, 40), (242, 193, 32)], np.float32)  # the coin's yellow by day and tinted
_SIZE = 64


def to_64(frame: np.ndarray) -> np.ndarray:
    """Any (H, W, 3) uint8 frame as 64x64 (block means for multiples of 64, else nearest), so features share a scale."""
    f = np.asarray(frame)
    if f.ndim != 3 or f.shape[2] < 3:
        raise ValueError(f"a frame must be (H, W, 3) uint8, got shape {f.shape}")
    f = f[..., :3]
    H, W = f.shape[:2]
    if (H, W) == (_SIZE, _SIZE):
        return f
    if H % _SIZE == 0 and W % _SIZE == 0:
        return f.reshape(_SIZE, H // _SIZE, _SIZE, W // _SIZE, 3).mean((1, 3)).round().astype(np.uint8)
    ys, xs = (np.arange(_SIZE) * H // _SIZE), (np.arange(_SIZE) * W // _SIZE)
    return f[ys][:, xs]


def _shift(p: np.ndarray, dy: int, dx: int, H: int, W: int) -> np.ndarray:
    return p[1 + dy : 1 + dy + H, 1 + dx : 1 + dx + W]


def texture_features(frame: np.ndarray) -> dict[str, float]:
    """Shares of pixels that are weather particles or edges: what a tokenizer must keep for snow and rain to show."""
    x = to_64(frame).astype(np.float32)
    H, W = x.shape[:2]
    lum = x.mean(-1)
    p = np.pad(lum, 1, mode="edge")
    nbrs = [_shift(p, dy, dx, H, W) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    box = (sum(nbrs) + lum) / 9
    white = x.min(-1) > 225
    wp = np.pad(white, 1)
    white_nbrs = sum(_shift(wp, dy, dx, H, W).astype(np.int32) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
    horiz = (_shift(p, 0, -1, H, W) + _shift(p, 0, 1, H, W)) / 2
    vert = (_shift(p, -1, 0, H, W) + _shift(p, 1, 0, H, W)) / 2
    return {
        "peaks": float(((lum > np.max(nbrs, axis=0)) & (lum - box > 6)).mean()),  # isolated bright dots, after blur
        "streaks": float(((vert - horiz) > 6).mean()),  # thin vertical lines
        "snow_dots": float((white & (white_nbrs <= 2) & (lum - box > 20)).mean()),  # isolated white dots
        "rain_streaks": float(((np.abs(x - np.array([170, 196, 240], np.float32)).sum(-1) < 40) & (lum - horiz > 10)).mean()),
        "edges": float(np.abs(4 * lum - sum(nbrs[i] for i in (1, 3, 4, 6))).mean()),
    }


def frame_features(frame: np.ndarray, texture: dict[str, float] | None = None) -> np.ndarray:
    """(F,) float features of one frame; each is a colour statistic or a particle/edge density (`texture`: its
    texture_features, when the caller has them already)."""
    x = to_64(frame).astype(np.float32)
    H = x.shape[0]
    lum = x.mean(-1)
    t = texture if texture is not None else texture_features(x)
    q = H // 4
    hist = np.histogramdd(x.reshape(-1, 3), bins=(4, 4, 4), range=[(0, 256)] * 3)[0].ravel() / lum.size
    return np.concatenate([
        x.mean((0, 1)) / 255, x[:q].mean((0, 1)) / 255, x[-q:].mean((0, 1)) / 255, [lum.std() / 128],
        x.std((0, 1)) / 128, hist, [t["peaks"] * 10, t["streaks"] * 10, t["snow_dots"] * 50, t["rain_streaks"] * 20,
                                    t["edges"] / 50, (x[..., 0] - x[..., 2]).mean() / 128, (x.max(-1) - x.min(-1)).mean() / 128],
        np.percentile(lum, [10, 50, 90]) / 255,
    ]).astype(np.float32)


def blur(frame: np.ndarray) -> np.ndarray:
    """3x3 box blur: a stand-in for the softness of a tokenizer reconstruction."""
    x = frame.astype(np.float32)
    H, W = x.shape[:2]
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return (sum(p[1 + dy : 1 + dy + H, 1 + dx : 1 + dx + W] for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9).round().astype(np.uint8)


# --- Reference frames from the sandbox ---

@dataclass
class Scene:
    """One labelled sandbox view: the frame and the level's attributes when it was rendered."""

    frame: np.ndarray
    theme: str
    time: str
    weather: str
    seed: int


def sandbox_scenes(seeds: Iterable[int], frame_steps: tuple[int, ...] = (0, 20, 40), progress: bool = False,
                   size: int = 64) -> list:
    """Every theme x time x weather on each seed, viewed at a few points of a rightward run."""
    from bridge.backend import Prompt
    from bridge.worlds.levels import random_params
    from bridge.worlds.sandbox import SandboxWorld

    world = SandboxWorld(size=size, seed=0)
    combos = list(itertools.product(THEMES, TIMES, WEATHERS, seeds))
    out: list[Scene] = []
    for theme, time, weather, seed in tqdm(combos, desc="render reference scenes", disable=not progress, leave=False):
        rng = np.random.default_rng([seed, 3])
        params = random_params(np.random.default_rng(seed), theme=theme, time=time, weather=weather)
        f = world.reset(Prompt(seed=int(seed)), params=params)
        for t in range(max(frame_steps) + 1):
            if t in frame_steps:
                out.append(Scene(f, theme, time, weather, int(seed)))
            f = world.step(int(rng.choice([0, 1, 2, 2, 2, 3, 5])))
    return out


# --- Classifiers ---

class LDA:
    """Linear discriminant analysis with covariance shrinkage: nearest class mean in a whitened feature space."""

    def __init__(self, shrink: float = 0.1):
        self.shrink = shrink

    def fit(self, X: np.ndarray, y: list[str]) -> "LDA":
        X = np.asarray(X, np.float64)
        self.mu, self.sd = X.mean(0), X.std(0) + 1e-6
        Z = (X - self.mu) / self.sd
        self.classes = sorted(set(y))
        idx = np.array([self.classes.index(c) for c in y])
        self.means = np.stack([Z[idx == i].mean(0) for i in range(len(self.classes))])
        S = np.cov((Z - self.means[idx]).T)
        S = (1 - self.shrink) * S + self.shrink * np.eye(len(S)) * np.trace(S) / len(S)
        self.prec = np.linalg.inv(S)
        return self

    def distances(self, X: np.ndarray) -> np.ndarray:
        Z = (np.asarray(X, np.float64) - self.mu) / self.sd
        d = Z[:, None] - self.means[None]  # (n, classes, F)
        return np.einsum("nck,kl,ncl->nc", d, self.prec, d)

    def predict(self, X: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.distances(X).argmin(1)]


# Weather that is drawn as particles counts only where they show: >= 10 of 4,096 pixels (real snowy and rainy frames
# have 36-66, clear ones <= 21, the tiny tokenizers' reconstructions of snowy and rainy frames ~1)
PARTICLE_GATE = {"snow": ("snow_dots", 0.0025), "rain": ("rain_streaks", 0.0025)}


class SceneChecker:
    """Reads theme, time of day and weather from frames; fitted on reference sandbox scenes (plain + blurred).

    With `gate`, snow and rain are read only where their particles show (PARTICLE_GATE): colour alone may guess
    the weather, but a frame without snowflakes does not show snow."""

    def __init__(self, scenes: list[Scene], augment: bool = True, gate: bool = True):
        frames = [s.frame for s in scenes] + ([blur(s.frame) for s in scenes] if augment else [])
        X = np.stack([frame_features(f) for f in frames])
        labels = {a: [getattr(s, a) for s in scenes] * (2 if augment else 1) for a in ATTRIBUTES}
        self.models = {a: LDA().fit(X, labels[a]) for a in ATTRIBUTES}
        self.gate = gate

    def classify(self, frames) -> list[dict[str, str]]:
        """One {theme, time, weather} dict per frame."""
        frames = list(frames)
        if not frames:
            return []
        textures = [texture_features(f) for f in frames]
        X = np.stack([frame_features(f, t) for f, t in zip(frames, textures)])
        preds = {a: m.predict(X) for a, m in self.models.items() if a != "weather"}
        m = self.models["weather"]
        d = m.distances(X)
        if self.gate:
            for i, tex in enumerate(textures):
                for weather, (key, least) in PARTICLE_GATE.items():
                    if weather in m.classes and tex[key] < least:
                        d[i, m.classes.index(weather)] = np.inf
        preds["weather"] = [m.classes[j] for j in d.argmin(1)]
        return [{a: preds[a][i] for a in ATTRIBUTES} for i in range(len(frames))]


@lru_cache(maxsize=4)
def default_checker(seeds: tuple[int, ...] = REFERENCE_SEEDS, progress: bool = False) -> SceneChecker:
    """The checker fitted on the reference seeds (about 10 s of rendering; cached per process)."""
    return SceneChecker(sandbox_scenes(seeds, progress=progress))


# --- Counting detectors for spawn / flood events ---

@lru_cache(maxsize=None)
def _enemy_colours(theme: str, time: str) -> tuple[np.ndarray, np.ndarray]:
    """The enemy's body colour, and every other colour of the scene it must be told from, as tinted for the time."""
    pal, world, sprite = THEME_COLORS[theme], np.asarray(TIME_TINT[time], np.float32), np.asarray(SPRITE_TINT[time], np.float32)
    others = [np.asarray(c, np.float32) * world for k, c in pal.items() if not k.startswith("enemy")]
    others += [np.asarray(c, np.float32) * sprite for c in [*SPRITE_COLORS.values(), pal["enemy_feet"]]]
    return np.asarray(pal["enemy"], np.float32) * sprite, np.stack(others)


def enemy_pixels(frame: np.ndarray, theme: str, time: str) -> int:
    """Pixels within reach of the theme's enemy body colour and nearer it than any other colour of the scene (grassland
    dirt is within reach of its enemy's brown, so a scrolling or redrawn ground would otherwise count as enemies)."""
    enemy, others = _enemy_colours(theme, time)
    x = to_64(frame).astype(np.float32)
    d = np.abs(x - enemy).sum(-1)
    return int(((d < 60) & (d < np.abs(x[..., None, :] - others).sum(-1).min(-1))).sum())


def coin_pixels(frame: np.ndarray) -> int:
    """Pixels of the coins' yellow."""
    x = to_64(frame).astype(np.float32)
    d = np.abs(x[..., None, :] - COIN_RGB).sum(-1).min(-1)
    return int((d < 60).sum())


def water_score(frame: np.ndarray) -> float:
    """Blue cast (B - R) of the bottom 3/8 of the frame: the flood's water rises from there."""
    x = to_64(frame).astype(np.float32)[-24:]
    return float((x[..., 2] - x[..., 0]).mean())


# --- Did an event happen? ---

RUN = 3  # consecutive frames a change must hold to count (one odd frame is noise, not an event)
WINDOW = 24  # frames after firing within which the event must show
THRESHOLDS = {"spawn_enemy": 6, "spawn_coins": 10, "flood": 15.0}
TARGET = {"weather_rain": ("weather", "rain"), "weather_snow": ("weather", "snow"), "weather_fog": ("weather", "fog"),
          "weather_clear": ("weather", "clear"), "night_falls": ("time", "night"), "dusk": ("time", "dusk"),
          "day_breaks": ("time", "day")}


def _held(flags: list[bool], run: int = RUN) -> bool:
    n = 0
    for f in flags:
        n = n + 1 if f else 0
        if n >= run:
            return True
    return False


def event_signal(event_type: str, frames: list[np.ndarray], checker: SceneChecker, theme: str, time: str) -> list[bool]:
    """Per frame of `frames` (frames[0] = the last frame before the event would fire): does it show the event?"""
    if event_type in TARGET:  # a change: a frame that already showed the target before firing leaves none to see
        attr, value = TARGET[event_type]
        read = [c[attr] == value for c in checker.classify(frames)]
        return [False] * (len(frames) - 1) if read[0] else read[1:]
    if event_type == "spawn_enemy":
        counts = [enemy_pixels(f, theme, time) for f in frames]
    elif event_type == "spawn_coins":
        counts = [coin_pixels(f) for f in frames]
    elif event_type == "flood":
        counts = [water_score(f) for f in frames]
    else:
        raise ValueError(f"no pixel check for event type {event_type!r}; known: {sorted(list(TARGET) + list(THRESHOLDS))}")
    return [c - counts[0] >= THRESHOLDS[event_type] for c in counts[1:]]


def event_detected(event_type: str, frames: list[np.ndarray], checker: SceneChecker, theme: str, time: str) -> bool:
    """True when the event's change holds for RUN consecutive frames within WINDOW frames of firing."""
    return _held(event_signal(event_type, frames[: WINDOW + 1], checker, theme, time))


def validate(checker: SceneChecker, seeds: Iterable[int] = HELDOUT_SEEDS, frame_steps: tuple[int, ...] = (5, 33)
             ) -> dict[str, float]:
    """Accuracy of each attribute check on real sandbox frames of held-out seeds (should be ~1.0)."""
    scenes = sandbox_scenes(seeds, frame_steps)
    preds = checker.classify([s.frame for s in scenes])
    return {a: float(np.mean([p[a] == getattr(s, a) for p, s in zip(preds, scenes)])) for a in ATTRIBUTES}
