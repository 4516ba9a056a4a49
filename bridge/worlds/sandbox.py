"""The sandbox game: a seeded numpy side-scroller that is a data source and a test backend (never the world model)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from bridge.backend import Prompt, WorldEvent, opaque
from bridge.values import is_whole, plural
from bridge.worlds.events import EVENT_CAPTIONS, EVENT_TYPES, match_event_text
from bridge.worlds.levels import (
    GROUND, BLOCK, HAZARD, LADDER, LEVEL_ROWS, SOLID_TILES, Level, LevelParams, caption_for, generate_level,
    parse_prompt_text, random_params,
)
from bridge.worlds.render import (
    FOG_COLOR, HAZARD_KIND, RAIN_COLOR, SNOW_COLOR, WATER_COLOR, Particles, blend, blit, darken,
    make_sprites, render_background,
)
from bridge.worlds.sketch import SKETCH_PALETTE, is_palette_like, render_sketch_background, sketch_to_level

__all__ = ["ACTIONS", "EVENT_TYPES", "SKETCH_PALETTE", "SandboxWorld", "sketch_to_level", "Physics"]

ACTIONS = ["noop", "left", "right", "jump", "left_jump", "right_jump", "down"]
NOOP, LEFT, RIGHT, JUMP, LEFT_JUMP, RIGHT_JUMP, DOWN = range(len(ACTIONS))
SANDBOX_FPS = 15


@dataclass(frozen=True)
class Physics:
    """Movement constants in tiles per frame (a tile is frame height / 16 pixels)."""

    walk: float = 0.25
    jump_speed: float = 0.95  # peak about 3.4 tiles above the take-off, 16 frames in the air
    gravity: float = 0.12
    max_fall: float = 0.9
    climb: float = 0.2
    swim_walk: float = 0.16
    swim_stroke: float = 0.3  # in water every jump press is a stroke upward
    swim_gravity: float = 0.04
    swim_max_fall: float = 0.2
    enemy_speed: float = 0.08
    player_w: float = 0.75
    player_h: float = 1.5
    flood_rate: float = 0.1  # rows per frame the water rises
    flood_depth: float = 6.0  # rows of water once the flood is done (about 2 tiles above typical ground)
    invulnerable_frames: int = 24


PHYS = Physics()
_SOLID = frozenset(SOLID_TILES)
EPS = 1e-6


@dataclass
class SandboxState:
    """Everything that decides future frames; the level itself is immutable and shared between snapshots."""

    level: Level
    seed: int
    time: str
    weather: str
    x: float
    y: float
    vy: float = 0.0
    on_ground: bool = False
    climbing: bool = False
    facing: int = 1
    pose: str = "stand"
    invulnerable: int = 0
    checkpoint: tuple[float, float] = (2.0, 10.5)
    frame: int = 0
    score: int = 0
    deaths: int = 0
    water_y: float = float(LEVEL_ROWS + 1)  # water surface row; below the screen means no flood
    water_target: float = float(LEVEL_ROWS + 1)
    enemies: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float64))  # x, y, dir, lo, hi
    enemy_alive: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    coins: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))  # col, row
    coin_alive: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    events_fired: list[dict] = field(default_factory=list)
    rng_state: dict = field(default_factory=dict)
    effective_action: int = NOOP

    def copy(self) -> "SandboxState":
        s = copy.copy(self)
        s.enemies, s.enemy_alive = self.enemies.copy(), self.enemy_alive.copy()
        s.coins, s.coin_alive = self.coins.copy(), self.coin_alive.copy()
        s.events_fired = [dict(e) for e in self.events_fired]
        s.rng_state = copy.deepcopy(self.rng_state)
        return s


def _px(v: float) -> int:
    """Pixel position, rounding halves up: Python's round() rounds them to even, which made the camera and sprites
    move 2 px every other frame at walking speed (1 px a frame) instead of 1 px every frame."""
    return int(math.floor(v + 0.5))


@lru_cache(maxsize=64)
def _sprites(theme: str, time: str, tile: int) -> dict:
    return make_sprites(theme, time, tile)


def patrol_bounds(tiles: np.ndarray, col: int, row: int) -> tuple[float, float]:
    """The run of walkable cells an enemy standing in (col, row) can patrol without falling or hitting a wall."""
    R, C = tiles.shape

    def walkable(c: int) -> bool:
        return 0 <= c < C and tiles[row, c] not in SOLID_TILES and row + 1 < R and tiles[row + 1, c] in SOLID_TILES

    lo = hi = col
    while walkable(lo - 1):
        lo -= 1
    while walkable(hi + 1):
        hi += 1
    return float(lo), float(hi)


class SandboxWorld:
    """A seeded 2D platformer implementing the WorldBackend contract, rendered in numpy fast enough to make datasets."""

    kind = "sandbox"
    name = "sandbox game"
    action_names = list(ACTIONS)
    num_latent_actions = len(ACTIONS)
    event_types = list(EVENT_TYPES)
    # protocol 1.1 session.capabilities: a game renders from its state, so it cannot take frame edits; image prompts
    # work only for palette-like drawings (sketches), not photos, so `image_prompt` is not claimed
    capabilities = ["text_prompt", "sketch_prompt", "events", "text_events"]
    fps = SANDBOX_FPS

    def __init__(self, size: int = 64, seed: int = 0, height: int | None = None, width: int | None = None):
        self.height = int(height if height is not None else size)
        self.width = int(width if width is not None else size)
        if self.height % 64 or self.height <= 0:
            raise ValueError(f"sandbox height must be a multiple of 64 (64, 128, 256...), got {self.height}")
        self.tile = self.height // LEVEL_ROWS
        if self.width % self.tile or self.width < 8 * self.tile:
            raise ValueError(f"sandbox width must be a multiple of {self.tile} and at least {8 * self.tile} at height {self.height}, got {self.width}")
        self.view_cols = self.width // self.tile
        if self.view_cols > 64:
            raise ValueError(f"the sandbox view is at most 64 tiles wide ({64 * self.tile} px at height {self.height}), got {self.width}")
        self._seed_rng = np.random.default_rng(seed)
        self._bg_cache: dict[str, np.ndarray] = {}
        self.reset(Prompt(seed=int(seed)))

    # --- Public state ---
    @property
    def params(self) -> LevelParams:
        return self.s.level.params

    @property
    def level(self) -> Level:
        return self.s.level

    @property
    def caption(self) -> str:
        """The scene right now: the level's caption with the current time of day and weather."""
        p = self.s.level.params
        now = LevelParams(**{**p.to_dict(), "time": self.s.time, "weather": self.s.weather})
        return caption_for(now, enemies=len(self.s.level.enemies))

    @property
    def effective_action(self) -> int:
        return self.s.effective_action

    @property
    def events_fired(self) -> list[dict]:
        return self.s.events_fired

    @property
    def frame_index(self) -> int:
        return self.s.frame

    @property
    def camera_x(self) -> int:
        """Left edge of the view in pixels (the camera follows the player horizontally)."""
        level_px = self.s.level.cols * self.tile
        cx = _px((self.s.x + PHYS.player_w / 2) * self.tile) - self.width // 2
        return min(max(cx, 0), level_px - self.width)

    # --- WorldBackend ---
    def reset(self, prompt: Prompt | None = None, params: LevelParams | None = None) -> np.ndarray:
        """Start a level from a prompt (seed, text, sketch, or a palette-like image); returns frame 0."""
        prompt = prompt or Prompt()
        seed = int(prompt.seed) if prompt.seed is not None else int(self._seed_rng.integers(2**31 - 1))
        if seed < 0:
            raise ValueError(f"seed must be 0 or more, got {seed}")
        rng = np.random.default_rng(seed)
        sketch = None if prompt.sketch is None else opaque(prompt.sketch)
        if prompt.image is not None and sketch is None:
            sketch = opaque(prompt.image)
            if not is_palette_like(sketch):
                raise ValueError(
                    "the sandbox backend cannot start from a photo-like image; use a world-model checkpoint or a sketch"
                )
        if params is None:
            params = parse_prompt_text(prompt.text, rng) if prompt.text else random_params(rng)
        level = sketch_to_level(sketch, params, seed) if sketch is not None else generate_level(params, seed)
        s = SandboxState(level=level, seed=seed, time=params.time, weather=params.weather, x=level.start[0], y=level.start[1])
        s.checkpoint = level.start
        s.enemies = np.array([(c, r, -1.0, *patrol_bounds(level.tiles, c, r)) for c, r in level.enemies], np.float64).reshape(-1, 5)
        s.enemy_alive = np.ones(len(s.enemies), bool)
        s.coins = np.array(level.coins, np.int32).reshape(-1, 2)
        s.coin_alive = np.ones(len(s.coins), bool)
        s.rng_state = np.random.default_rng([seed, 1]).bit_generator.state
        self._install(s, new_level=True)
        self._settle()
        return self._render()

    def step(self, action: int, event: WorldEvent | None = None) -> np.ndarray:
        """Advance one frame: fire the event (if any), move the player, enemies and water; returns the new frame."""
        if not is_whole(action):  # 3.5, "2" or True is not an action
            raise ValueError(f"action must be an integer id 0..{len(ACTIONS) - 1} ({ACTIONS}), got {action!r}")
        a = int(action)
        if not 0 <= a < len(ACTIONS):
            raise ValueError(f"action {a} is out of range: the sandbox has {plural(len(ACTIONS), 'action')} {ACTIONS}")
        if event is not None:
            self.event_type(event)  # a bad event fails before anything changes
        self.s.frame += 1
        if event is not None:
            self._fire(event)
        self._physics(a)
        return self._render()

    def get_state(self) -> SandboxState:
        """A deep snapshot (small arrays and scalars; the level is shared because it never changes)."""
        return self.s.copy()

    def set_state(self, state: SandboxState) -> None:
        """Restore a snapshot; replaying the same actions from it gives identical frames."""
        if not isinstance(state, SandboxState):
            raise TypeError(f"set_state expects a SandboxState from SandboxWorld.get_state, got {type(state).__name__}")
        self._install(state.copy(), new_level=state.level is not self.s.level or state.seed != self.s.seed)

    def predict(self, actions: list[int]) -> SandboxState:
        """The state after playing `actions` from now, without rendering or changing the world (for lookahead)."""
        saved, saved_bg = self.s, self._bg
        self.s, self._bg = saved.copy(), None
        try:
            for a in actions:
                self.s.frame += 1
                self._physics(int(a))
            return self.s
        finally:
            self.s, self._bg = saved, saved_bg

    def render(self) -> np.ndarray:
        """The current frame again, without advancing."""
        return self._render()

    def sketch(self) -> np.ndarray:
        """The current view in flat SKETCH_PALETTE colours: the layout a designer would draw. What events change on top of
        the layout (weather, time of day, a flood's rising water) is not layout and is not drawn; sketch water is a
        hazard tile."""
        s, t = self.s, self.tile
        cam = self.camera_x
        out = self._sk_bg[:, cam : cam + self.width].copy()
        view = s.coin_alive & (s.coins[:, 0] * t > cam - t) & (s.coins[:, 0] * t < cam + self.width)
        for c, r in s.coins[view]:
            self._box(out, int(c) * t - cam, int(r) * t, t, t, SKETCH_PALETTE["coin"])
        view = s.enemy_alive & (s.enemies[:, 0] * t > cam - t) & (s.enemies[:, 0] * t < cam + self.width)
        for ex, ey, *_ in s.enemies[view]:
            self._box(out, _px(ex * t) - cam, _px(ey * t), t, t, SKETCH_PALETTE["enemy"])
        self._box(out, _px(s.x * t) - cam, _px(s.y * t), int(PHYS.player_w * t), int(PHYS.player_h * t), SKETCH_PALETTE["player"])
        return out

    # --- Internals: state install, rendering caches ---
    def _install(self, s: SandboxState, new_level: bool) -> None:
        if new_level:
            self._grid = s.level.tiles.tolist()  # plain lists: scalar lookups in physics are 10x faster than numpy
            self._ncols = s.level.cols
            self._bg_cache = {}
            kind = HAZARD_KIND[s.level.params.theme]
            self._sk_bg = render_sketch_background(s.level.tiles, self.tile, kind)
            self._particles = Particles(self.height, self.width, s.seed, self.tile)
        self.s = s
        self._rebuild_background()

    def _rebuild_background(self) -> None:
        """Background for the current time of day with the coins still in play baked in."""
        s = self.s
        if s.time not in self._bg_cache:
            self._bg_cache[s.time] = render_background(s.level.tiles, s.level.params.theme, s.time, self.tile, s.seed)
        self._bg_clean = self._bg_cache[s.time]
        self._bg = self._bg_clean.copy()
        self._spr = _sprites(s.level.params.theme, s.time, self.tile)
        coin = self._spr["coin"]
        for (c, r), alive in zip(s.coins, s.coin_alive):
            if alive:
                blit(self._bg, coin, int(c) * self.tile, int(r) * self.tile)
        self._coin_index = {(int(c), int(r)): i for i, (c, r) in enumerate(s.coins)}

    @staticmethod
    def _box(img: np.ndarray, x: int, y: int, w: int, h: int, color: tuple[int, int, int]) -> None:
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, img.shape[1]), min(y + h, img.shape[0])
        if x0 < x1 and y0 < y1:
            img[y0:y1, x0:x1] = color

    def _render(self) -> np.ndarray:
        s, t, W = self.s, self.tile, self.width
        cam = self.camera_x
        frame = self._bg[:, cam : cam + W].copy()
        spr = self._spr
        anim = "a" if (s.frame // 4) % 2 == 0 else "b"
        for (ex, ey, d, _, _), alive in zip(s.enemies, s.enemy_alive):
            px = _px(ex * t) - cam
            if alive and -t < px < W:
                blit(frame, spr["enemy_" + anim], px, _px(ey * t), mirror=d > 0)
        if s.invulnerable == 0 or (s.invulnerable // 2) % 2 == 0:
            px = _px((s.x - (1 - PHYS.player_w) / 2) * t) - cam
            blit(frame, spr["player_" + s.pose], px, _px(s.y * t), mirror=s.facing < 0)
        if s.water_y < LEVEL_ROWS:
            wy = max(0, math.floor(s.water_y * t))  # floor: a flood shows from the frame it fires, even at 4 px tiles
            blend(frame[wy:], WATER_COLOR, 150)
            blend(frame[wy : wy + max(1, t // 4)], (200, 230, 255), 120)
        if s.weather == "rain":
            darken(frame, 220)
            self._particles.rain(frame, s.frame, cam, RAIN_COLOR)
        elif s.weather == "snow":
            self._particles.snow(frame, s.frame, cam, SNOW_COLOR)
        elif s.weather == "fog":
            blend(frame, FOG_COLOR[s.time], 120)
        return frame

    # --- Internals: events ---
    @staticmethod
    def event_type(event: WorldEvent) -> str:
        """The sandbox event type a WorldEvent asks for (by type, else by keywords in its text); ValueError if none."""
        if not isinstance(event, WorldEvent):
            raise TypeError(f"event must be a WorldEvent, got {type(event).__name__}")
        etype = event.type or (match_event_text(event.text) if event.text else None)
        if etype is None:
            raise ValueError("a WorldEvent needs a type or some text")
        if etype not in EVENT_TYPES:
            raise ValueError(f"unknown sandbox event {etype!r}; known types: {EVENT_TYPES}")
        return etype

    def describe_event(self, event: WorldEvent) -> str:
        """The caption an event will get ("it starts to snow"), checked before it is queued."""
        return EVENT_CAPTIONS[self.event_type(event)]

    def _fire(self, event: WorldEvent) -> None:
        etype = self.event_type(event)
        s = self.s
        rng = np.random.default_rng()
        rng.bit_generator.state = s.rng_state
        if etype.startswith("weather_"):
            s.weather = etype.removeprefix("weather_")
        elif etype in ("night_falls", "dusk", "day_breaks"):
            s.time = {"night_falls": "night", "dusk": "dusk", "day_breaks": "day"}[etype]
            self._rebuild_background()
        elif etype == "spawn_enemy":
            for _ in range(int(event.params.get("count", 1))):
                self._spawn_enemy(rng)
        elif etype == "spawn_coins":
            self._spawn_coins(rng, int(event.params.get("count", 5)))
        elif etype == "flood":
            s.water_target = LEVEL_ROWS - float(event.params.get("depth", PHYS.flood_depth))
            s.water_y = min(s.water_y, float(LEVEL_ROWS))
        s.rng_state = rng.bit_generator.state
        s.events_fired.append({"type": etype, "frame": s.frame, "caption": EVENT_CAPTIONS[etype]})

    def _stand_row(self, col: int) -> int | None:
        """Row an entity 1 tile tall would stand in at a column (on the highest solid cell), None over a gap."""
        tiles = self.s.level.tiles
        for r in range(1, LEVEL_ROWS):
            if tiles[r, col] in SOLID_TILES:
                return r - 1 if tiles[r - 1, col] not in SOLID_TILES and tiles[r - 1, col] != HAZARD else None
        return None

    def _view_cols_ahead(self, rng: np.random.Generator) -> list[int]:
        """Columns on screen, preferring those ahead of the player, in a seeded order."""
        s = self.s
        c0 = self.camera_x // self.tile
        pc = int(s.x)
        ahead = [c for c in range(pc + 3, c0 + self.view_cols - 1) if 0 <= c < s.level.cols]
        behind = [c for c in range(max(c0 + 1, 0), pc - 2)]
        return list(rng.permutation(ahead)) + list(rng.permutation(behind))

    def _spawn_enemy(self, rng: np.random.Generator) -> None:
        s = self.s
        for c in self._view_cols_ahead(rng):
            r = self._stand_row(int(c))
            if r is not None:
                lo, hi = patrol_bounds(s.level.tiles, int(c), r)
                s.enemies = np.vstack([s.enemies, [[float(c), float(r), -1.0, lo, hi]]])
                s.enemy_alive = np.append(s.enemy_alive, True)
                return

    def _spawn_coins(self, rng: np.random.Generator, count: int) -> None:
        s = self.s
        tiles = s.level.tiles
        cols = sorted(self._view_cols_ahead(rng)[: max(count, 1) * 2])
        new = []
        for c in cols:
            r = self._stand_row(int(c))
            r = (r if r is not None else 12) - 2
            if 0 <= r < LEVEL_ROWS and tiles[r, c] == 0 and (int(c), r) not in self._coin_index and len(new) < count:
                new.append((int(c), r))
        if new:
            s.coins = np.vstack([s.coins, np.array(new, np.int32)])
            s.coin_alive = np.append(s.coin_alive, np.ones(len(new), bool))
            for c, r in new:
                self._coin_index[(c, r)] = len(s.coins) - len(new) + new.index((c, r))
                blit(self._bg, self._spr["coin"], c * self.tile, r * self.tile)

    # --- Internals: physics ---
    def _solid(self, c: int, r: int) -> bool:
        if c < 0 or c >= self._ncols:
            return True  # the level's ends are walls
        if r < 0 or r >= LEVEL_ROWS:
            return False
        return self._grid[r][c] in _SOLID

    def _tile(self, c: int, r: int) -> int:
        if 0 <= c < self._ncols and 0 <= r < LEVEL_ROWS:
            return self._grid[r][c]
        return 0

    def _rows(self, y: float) -> range:
        return range(math.floor(y), math.floor(y + PHYS.player_h - EPS) + 1)

    def _cols(self, x: float) -> range:
        return range(math.floor(x), math.floor(x + PHYS.player_w - EPS) + 1)

    def _move_x(self, x: float, y: float, dx: float) -> float:
        nx = x + dx
        if dx > 0:
            c = math.floor(nx + PHYS.player_w - EPS)
            if any(self._solid(c, r) for r in self._rows(y)):
                nx = max(x, c - PHYS.player_w)
        elif dx < 0:
            c = math.floor(nx)
            if any(self._solid(c, r) for r in self._rows(y)):
                nx = min(x, c + 1.0)
        return nx

    def _ladder_top_floor(self, c: int, r: int, old_bottom: float, dropping: bool) -> bool:
        """A ladder's top cell holds the player up unless they climb down."""
        lt = self.s.level.ladder_top
        return (not dropping) and 0 <= r < LEVEL_ROWS and 0 <= c < lt.shape[1] and lt[r, c] == r and old_bottom <= r + EPS

    def _move_y(self, x: float, y: float, vy: float, dropping: bool) -> tuple[float, float, bool]:
        """Move vertically with collisions; returns (new y, new vy, landed)."""
        ny = y + vy
        if vy > 0:
            r = math.floor(ny + PHYS.player_h - EPS)
            old_bottom = y + PHYS.player_h
            for c in self._cols(x):
                if self._solid(c, r) or self._ladder_top_floor(c, r, old_bottom, dropping):
                    return r - PHYS.player_h, 0.0, True
        elif vy < 0:
            r = math.floor(ny)
            if any(self._solid(c, r) for c in self._cols(x)):
                return float(r + 1), 0.0, False
        return ny, vy, False

    def _settle(self) -> None:
        """Drop the player onto whatever is below the start so frame 0 shows them standing."""
        s = self.s
        for _ in range(2 * LEVEL_ROWS):
            s.y, s.vy, landed = self._move_y(s.x, s.y, 0.5, False)
            if landed:
                s.on_ground = True
                break
            if s.y > LEVEL_ROWS:
                s.y = s.checkpoint[1]
                break
        s.vy = 0.0
        s.checkpoint = (s.x, s.y)

    def _respawn(self) -> None:
        s = self.s
        s.x, s.y = s.checkpoint
        s.vy, s.climbing, s.on_ground, s.pose = 0.0, False, True, "stand"
        s.invulnerable = PHYS.invulnerable_frames
        s.deaths += 1

    def _physics(self, a: int) -> None:
        s, P = self.s, PHYS
        left, right = a in (LEFT, LEFT_JUMP), a in (RIGHT, RIGHT_JUMP)
        jump, down = a in (JUMP, LEFT_JUMP, RIGHT_JUMP), a == DOWN
        in_water = s.y + P.player_h * 0.5 > s.water_y
        x0, y0 = s.x, s.y
        moved_h = jumped = went_down = False
        if left or right:
            s.facing = -1 if left else 1

        # --- Ladders: pure jump climbs up, down climbs down; walking off lets go ---
        cc = math.floor(s.x + P.player_w / 2)
        body_rows = [r for r in self._rows(s.y) if self._tile(cc, r) == LADDER]
        feet_row = math.floor(s.y + P.player_h + 0.01)
        ladder_below = self._tile(cc, feet_row) == LADDER and s.on_ground
        if s.climbing and (left or right or not (body_rows or ladder_below)):
            s.climbing = False
        if not s.climbing and ((a == JUMP and body_rows) or (down and ladder_below)):
            s.climbing = True
            s.x = cc + 0.5 - P.player_w / 2
        if s.climbing:
            vy = -P.climb if a == JUMP else P.climb if down else 0.0
            ny = s.y + vy
            if vy < 0:
                tops = [int(self.s.level.ladder_top[r, cc]) for r in self._rows(s.y) if self._tile(cc, r) == LADDER]
                top = min(tops) if tops else math.floor(s.y + P.player_h)
                if self._solid(cc, math.floor(ny)):
                    ny = s.y
                elif ny + P.player_h <= top + EPS:  # climbed out on top of the ladder
                    ny, s.climbing = top - P.player_h, False
            elif vy > 0:
                r = math.floor(ny + P.player_h - EPS)
                if self._solid(cc, r):
                    ny, s.climbing = r - P.player_h, False
            jumped, went_down = ny < s.y - EPS, ny > s.y + EPS
            s.y, s.vy, s.on_ground = ny, 0.0, not s.climbing
            s.pose = "climb" if int(s.y * 4) % 2 == 0 else "climb2"
            if not s.climbing:
                s.pose = "stand"
        else:
            # --- Walking and jumping ---
            speed = P.swim_walk if in_water else P.walk
            dx = (right - left) * speed
            s.x = self._move_x(s.x, s.y, dx)
            moved_h = abs(s.x - x0) > EPS
            if jump and (s.on_ground or in_water):
                s.vy = -(P.swim_stroke if in_water else P.jump_speed)
                jumped = True
            g, vmax = (P.swim_gravity, P.swim_max_fall) if in_water else (P.gravity, P.max_fall)
            s.vy = min(s.vy + g, vmax)
            s.y, s.vy, s.on_ground = self._move_y(s.x, s.y, s.vy, dropping=down)
            ducking = down and s.on_ground
            went_down = ducking
            if ducking:
                s.pose = "duck"
            elif not s.on_ground:
                s.pose = "jump"
            elif moved_h:
                s.pose = "walk" if (s.frame // 3) % 2 == 0 else "stand"
            else:
                s.pose = "stand"

        # --- Enemies patrol ---
        if len(s.enemies):
            e = s.enemies
            ex = e[:, 0]
            ex += e[:, 2] * P.enemy_speed
            turn = (ex < e[:, 3]) | (ex > e[:, 4])
            if turn.any():
                np.clip(ex, e[:, 3], e[:, 4], out=ex)
                e[turn, 2] *= -1

        # --- Coins, enemies, hazards ---
        died = False
        for c in self._cols(s.x):
            for r in self._rows(s.y):
                i = self._coin_index.get((c, r))
                if i is not None and s.coin_alive[i]:
                    s.coin_alive[i] = False
                    s.score += 1
                    t = self.tile
                    if self._bg is not None:  # None while predicting
                        self._bg[r * t : (r + 1) * t, c * t : (c + 1) * t] = self._bg_clean[r * t : (r + 1) * t, c * t : (c + 1) * t]
                if self._tile(c, r) == HAZARD:
                    died = True
        if len(s.enemies) and (np.abs(s.enemies[:, 0] - s.x) < 1.5).any():
            e = s.enemies
            hit = s.enemy_alive & (s.x < e[:, 0] + 0.9) & (s.x + P.player_w > e[:, 0] + 0.1) & (s.y < e[:, 1] + 1.0) & (s.y + P.player_h > e[:, 1] + 0.2)
            for i in np.nonzero(hit)[0]:
                if s.vy > 0 and y0 + P.player_h <= e[i, 1] + 0.5:  # stomp
                    s.enemy_alive[i] = False
                    s.vy = -P.jump_speed * 0.6
                    s.score += 1
                elif s.invulnerable == 0:
                    died = True
        if s.y > LEVEL_ROWS:
            died = True
        if s.invulnerable:
            s.invulnerable -= 1
        if died:
            self._respawn()
        elif s.on_ground and not s.climbing:
            below = self._tile(math.floor(s.x + P.player_w / 2), math.floor(s.y + P.player_h + 0.01))
            if below in (GROUND, BLOCK):
                s.checkpoint = (s.x, s.y)

        # --- Water level ---
        if s.water_y > s.water_target:
            s.water_y = max(s.water_target, s.water_y - P.flood_rate)

        # --- The action that really had an effect (for honest latent-action scoring) ---
        if died:  # the frame shows the respawn, not the key: the move toward the checkpoint was nobody's action
            eff = NOOP
        elif jumped and moved_h:
            eff = LEFT_JUMP if s.x < x0 else RIGHT_JUMP
        elif jumped:
            eff = JUMP
        elif moved_h:
            eff = LEFT if s.x < x0 else RIGHT
        elif went_down:
            eff = DOWN
        else:
            eff = NOOP
        s.effective_action = eff
