"""Seeded level generation, level parameters, captions and text-prompt parsing for the sandbox game."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

# --- Tiles (one byte per cell; rows grow downward, row 0 is the top of the screen) ---
EMPTY, GROUND, PLATFORM, LADDER, HAZARD, BLOCK = 0, 1, 2, 3, 4, 5
SOLID_TILES = (GROUND, PLATFORM, BLOCK)
LEVEL_ROWS = 16  # the view is always 16 tiles high; tile size in pixels = frame height // 16

THEMES = ["grassland", "desert", "snow", "cave", "lava_castle"]
TIMES = ["day", "dusk", "night"]
WEATHERS = ["clear", "rain", "snow", "fog"]


@dataclass
class LevelParams:
    """Everything that decides how a level looks and plays; the seed fills in what a prompt leaves open."""

    theme: str = "grassland"
    time: str = "day"
    weather: str = "clear"
    enemy_density: float = 0.3  # 0..1, scales the number of patrolling enemies (0..12)
    coin_density: float = 0.5  # 0..1, scales how many coin groups are placed
    gap_rate: float = 0.35  # chance of a gap after a ground segment
    platform_rate: float = 0.5  # chance of a floating platform above a ground segment
    length: int = 200  # level width in tiles
    num_enemies: int | None = None  # exact count; None = derived from enemy_density

    def __post_init__(self) -> None:
        if self.theme not in THEMES:
            raise ValueError(f"unknown theme {self.theme!r}; choose one of {THEMES}")
        if self.time not in TIMES:
            raise ValueError(f"unknown time of day {self.time!r}; choose one of {TIMES}")
        if self.weather not in WEATHERS:
            raise ValueError(f"unknown weather {self.weather!r}; choose one of {WEATHERS}")
        if self.length < 16:
            raise ValueError(f"level length {self.length} is shorter than one screen (16 tiles)")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def enemy_count(self) -> int:
        return self.num_enemies if self.num_enemies is not None else int(round(self.enemy_density * 12))


@dataclass
class Level:
    """A built level: static tiles plus where coins, enemies and the player start."""

    tiles: np.ndarray  # (16, L) uint8 tile ids
    coins: list[tuple[int, int]]  # (col, row) cells
    enemies: list[tuple[int, int]]  # (col, row) cells the enemy stands in
    start: tuple[float, float]  # player top-left (x, y) in tiles
    params: LevelParams
    sketched_cols: int = 0  # leading columns that came from a sketch
    ladder_top: np.ndarray = field(init=False, repr=False)  # (16, L) top row of the ladder at each ladder cell

    def __post_init__(self) -> None:
        self.ladder_top = ladder_tops(self.tiles)

    @property
    def cols(self) -> int:
        return int(self.tiles.shape[1])


def ladder_tops(tiles: np.ndarray) -> np.ndarray:
    """For each ladder cell, the row of the topmost cell of its ladder (-1 elsewhere)."""
    top = np.full(tiles.shape, -1, dtype=np.int16)
    for c in np.nonzero((tiles == LADDER).any(axis=0))[0]:
        run_top = -1
        for r in range(tiles.shape[0]):
            if tiles[r, c] == LADDER:
                run_top = r if run_top < 0 else run_top
                top[r, c] = run_top
            else:
                run_top = -1
    return top


def floor_row(tiles: np.ndarray, col: int) -> int:
    """Top row of the first solid cell in a column (LEVEL_ROWS if there is none: a gap)."""
    solid = np.isin(tiles[:, col], SOLID_TILES)
    rows = np.nonzero(solid)[0]
    return int(rows[0]) if len(rows) else tiles.shape[0]


def random_params(rng: np.random.Generator, **fixed) -> LevelParams:
    """Level parameters drawn so that every theme, time and weather appears in a dataset."""
    p = dict(
        theme=str(rng.choice(THEMES)),
        time=str(rng.choice(TIMES, p=[0.5, 0.25, 0.25])),
        weather=str(rng.choice(WEATHERS, p=[0.4, 0.2, 0.2, 0.2])),
        enemy_density=float(rng.choice([0.0, 0.15, 0.3, 0.5, 0.8])),
        coin_density=float(rng.choice([0.1, 0.4, 0.7, 1.0])),
        gap_rate=float(rng.uniform(0.2, 0.5)),
        platform_rate=float(rng.uniform(0.3, 0.7)),
    )
    p.update({k: v for k, v in fixed.items() if v is not None})
    return LevelParams(**p)


# --- Generation ---
def generate_level(params: LevelParams, seed: int, prefix: Level | None = None) -> Level:
    """Build a level from a seed; a sketched prefix (if given) is kept and the seed continues it."""
    rng = np.random.default_rng(seed)
    R, L = LEVEL_ROWS, params.length
    start_col = 0
    if prefix is not None:
        start_col = prefix.cols
        L = max(L, start_col + 24)
    tiles = np.zeros((R, L), np.uint8)
    coins: list[tuple[int, int]] = []
    enemy_slots: list[tuple[int, int, int]] = []  # (row, first col, last col) of flat ground runs

    if prefix is not None:
        tiles[:, :start_col] = prefix.tiles
        coins += list(prefix.coins)
        h = floor_row(prefix.tiles, start_col - 1)
        h = h if h < R else 12
        col = start_col
    else:
        h = 12
        tiles[h:, 0:10] = GROUND  # a safe, flat start
        col = 10

    while col < L - 8:
        seg = int(rng.integers(5, 16))
        seg = min(seg, L - 8 - col)
        tiles[h:, col : col + seg] = GROUND
        flat_from = col
        if seg >= 9 and rng.random() < 0.3:  # a staircase up and down
            s = col + int(rng.integers(1, seg - 7))
            for i, dh in enumerate([1, 2, 3, 3, 2, 1]):
                tiles[h - dh : h, s + i] = BLOCK
            if s - flat_from >= 3:
                enemy_slots.append((h - 1, flat_from, s - 1))
            flat_from = s + 6
        if col + seg - flat_from >= 4:
            enemy_slots.append((h - 1, flat_from, col + seg - 1))
        if seg >= 5 and rng.random() < params.platform_rate:  # a floating platform, jumpable or with a ladder
            pl = int(rng.integers(3, 7))
            pc = col + int(rng.integers(0, max(1, seg - pl)))
            high = rng.random() < 0.4
            pr = h - (5 if high else 3)
            if pr >= 3 and not (tiles[pr : h, pc : pc + pl] != EMPTY).any():
                tiles[pr, pc : pc + pl] = PLATFORM
                if high:
                    lc = pc + int(rng.integers(0, pl))
                    tiles[pr:h, lc] = LADDER
                if rng.random() < params.coin_density:
                    coins += [(c, pr - 1) for c in range(pc, pc + pl) if tiles[pr - 1, c] == EMPTY]
        if rng.random() < params.coin_density * 0.8:  # a row of coins above the ground
            cr = h - int(rng.choice([1, 3]))
            c0 = col + int(rng.integers(0, max(1, seg - 3)))
            coins += [(c, cr) for c in range(c0, min(c0 + int(rng.integers(2, 5)), col + seg)) if tiles[cr, c] == EMPTY]
        col += seg
        if col < L - 12 and rng.random() < params.gap_rate:
            gw = int(rng.integers(2, 4))
            tiles[R - 2 :, col : col + gw] = HAZARD
            if rng.random() < params.coin_density:  # an arc of coins over the gap
                coins += [(col + i, h - 3 - (1 if 0 < i < gw - 1 else 0)) for i in range(gw)]
            col += gw
            h = int(np.clip(h + rng.choice([-1, 0, 0, 1]), 10, 13))
        else:
            h = int(np.clip(h + rng.choice([-2, -1, 0, 0, 0, 1, 2]), 10, 13))
    tiles[h:, col:L] = GROUND  # a flat run to the end
    if L - col >= 4:
        enemy_slots.append((h - 1, col, L - 1))

    coins = sorted({(c, r) for c, r in coins if 0 <= r < R and 0 <= c < L and tiles[r, c] == EMPTY})
    if prefix is not None:
        enemies = list(prefix.enemies)
        start = prefix.start
        slots = [s for s in enemy_slots if s[1] >= start_col + 2]
    else:
        enemies = []
        start = (2.0, 12 - 1.5)
        slots = [s for s in enemy_slots if s[1] >= 16]
    wanted, tries = len(enemies) + params.enemy_count, 0
    while slots and len(enemies) < wanted and tries < 20 * wanted:
        tries += 1
        r, c0, c1 = slots[int(rng.integers(len(slots)))]
        c = int(rng.integers(c0, c1 + 1))
        if all(abs(c - ec) > 2 or r != er for ec, er in enemies):
            enemies.append((c, r))
    if params.theme == "cave":  # a rock ceiling (not over a sketched prefix)
        tiles[0, start_col:][tiles[0, start_col:] == EMPTY] = BLOCK
    return Level(tiles, coins, enemies, start, params, sketched_cols=start_col)


# --- Captions ---
_NUMBER = ["no", "one", "two", "three", "four", "five", "six"]
_THEME_ADJ = {"grassland": "grassy", "desert": "desert", "snow": "snowy", "cave": "cave", "lava_castle": "lava castle"}
_WEATHER_PHRASE = {"clear": "", "rain": " in the rain", "snow": " in falling snow", "fog": " in thick fog"}


def coin_words(density: float) -> str:
    return "few coins" if density < 0.3 else "some coins" if density < 0.6 else "many coins"


def enemy_words(count: int) -> str:
    if count == 0:
        return "no enemies"
    if count == 1:
        return "one patrolling enemy"
    return f"{_NUMBER[count] if count < len(_NUMBER) else 'many'} patrolling enemies"


def caption_for(params: LevelParams, enemies: int | None = None) -> str:
    """A short English description of a level, the text a text-conditioned model learns from."""
    n = params.enemy_count if enemies is None else enemies
    return (
        f"a {_THEME_ADJ[params.theme]} {params.time} level{_WEATHER_PHRASE[params.weather]}"
        f" with {coin_words(params.coin_density)} and {enemy_words(n)}"
    )


# --- Text prompts ---
_THEME_WORDS = {
    "grassland": ["grass", "grassy", "grassland", "meadow", "forest", "green", "hills", "field"],
    "desert": ["desert", "sand", "sandy", "dune", "dunes", "cactus", "arid"],
    "snow": ["snowy", "ice", "icy", "winter", "frozen", "arctic", "tundra"],
    "cave": ["cave", "cavern", "underground", "mine", "grotto"],
    "lava_castle": ["lava", "castle", "volcano", "volcanic", "fire", "fiery", "dungeon", "fortress"],
}
_TIME_WORDS = {
    "day": ["day", "daytime", "noon", "morning", "bright", "daylight"],
    "dusk": ["dusk", "sunset", "evening", "twilight", "dawn"],
    "night": ["night", "nighttime", "midnight", "dark", "moonlit", "moonlight"],
}
_WEATHER_WORDS = {
    "rain": ["rain", "rainy", "raining", "storm", "stormy", "downpour", "drizzle"],
    "snow": ["snowing", "snowfall", "blizzard", "snowflakes", "snowstorm"],
    "fog": ["fog", "foggy", "mist", "misty", "haze", "hazy"],
    "clear": ["clear", "sunny", "cloudless"],
}
_MANY = {"many", "lots", "lot", "plenty", "full", "tons", "loads", "crowded", "dangerous", "much"}
_FEW = {"few", "little", "rare", "sparse", "some", "couple"}
_NONE = {"no", "without", "zero", "empty", "peaceful", "safe"}
_COUNTS = {w: i for i, w in enumerate(_NUMBER)} | {str(i): i for i in range(13)}


def _quantity(words: list[str], nouns: set[str]) -> tuple[str, int | None] | None:
    """The quantifier in the few words before a noun: ('many'|'few'|'none'|'count', n)."""
    for i, w in enumerate(words):
        if w not in nouns:
            continue
        for q in reversed(words[max(0, i - 3) : i]):
            if q in _COUNTS and q not in ("no",):
                return "count", _COUNTS[q]
            if q in _NONE:
                return "none", 0
            if q in _MANY:
                return "many", None
            if q in _FEW:
                return "few", None
        return "some", None
    return None


def parse_prompt_text(text: str, rng: np.random.Generator, **fixed) -> LevelParams:
    """Level parameters from simple English: theme, time of day, weather and enemy/coin amounts; the seed picks the rest."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    phrase = " ".join(words)
    found: dict = {}
    for key, table in (("theme", _THEME_WORDS), ("time", _TIME_WORDS), ("weather", _WEATHER_WORDS)):
        for value, vocab in table.items():
            if any(w in vocab for w in words):
                found[key] = value
                break
    if "falling snow" in phrase or "snow falls" in phrase:
        found["weather"] = "snow"
    if "theme" not in found and "snow" in words and found.get("weather") != "snow":
        found["theme"] = "snow"
    coins = _quantity(words, {"coin", "coins", "gold", "treasure"})
    if coins:
        found["coin_density"] = {"many": 1.0, "few": 0.15, "none": 0.0, "some": 0.5}.get(coins[0], 0.5)
    enemies = _quantity(words, {"enemy", "enemies", "monster", "monsters", "baddies", "foes", "creatures"})
    if enemies:
        kind, n = enemies
        if kind == "count":
            found["num_enemies"] = n
            found["enemy_density"] = n / 12
        else:
            found["enemy_density"] = {"many": 0.8, "few": 0.15, "none": 0.0, "some": 0.3}[kind]
            if kind == "none":
                found["num_enemies"] = 0
    found.update({k: v for k, v in fixed.items() if v is not None})
    return random_params(rng, **found)
