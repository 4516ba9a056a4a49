"""The flat-colour sketch view of the sandbox and its inverse: building a level from a hand-drawn sketch."""

from __future__ import annotations

import numpy as np

from bridge.worlds.levels import BLOCK, EMPTY, GROUND, HAZARD, LADDER, LEVEL_ROWS, PLATFORM, Level, LevelParams, generate_level

MAX_SKETCH_COLS = 512  # 32 screens of cells: wider sketches are refused, not read for seconds into gigabytes

# Colours a designer draws with: white paper is sky, black is ground.
SKETCH_PALETTE: dict[str, tuple[int, int, int]] = {
    "sky": (255, 255, 255),
    "ground": (0, 0, 0),
    "platform": (139, 69, 19),
    "ladder": (0, 170, 0),
    "player": (0, 0, 255),
    "enemy": (255, 0, 0),
    "coin": (255, 220, 0),
    "water": (0, 200, 255),
    "lava": (255, 110, 0),
}
_NAMES = list(SKETCH_PALETTE)
_COLORS = np.array([SKETCH_PALETTE[n] for n in _NAMES], np.int32)
_LABEL = {n: i for i, n in enumerate(_NAMES)}
_TILE_OF = {"sky": EMPTY, "ground": GROUND, "platform": PLATFORM, "ladder": LADDER, "water": HAZARD, "lava": HAZARD,
            "player": EMPTY, "enemy": EMPTY, "coin": EMPTY}


def tile_colors(hazard: str) -> np.ndarray:
    """(6, 3) uint8: the sketch colour of each tile id (stairs draw as ground; hazards as water or lava)."""
    pal = SKETCH_PALETTE
    table = np.zeros((6, 3), np.uint8)
    table[EMPTY], table[GROUND], table[PLATFORM] = pal["sky"], pal["ground"], pal["platform"]
    table[LADDER], table[HAZARD], table[BLOCK] = pal["ladder"], pal[hazard], pal["ground"]
    return table


def render_sketch_background(tiles: np.ndarray, tile: int, hazard: str) -> np.ndarray:
    """The whole level in flat sketch colours, (rows*tile, cols*tile, 3) uint8."""
    return tile_colors(hazard)[tiles].repeat(tile, 0).repeat(tile, 1)


def nearest_labels(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: index of the nearest palette colour and the distance to it."""
    d = ((img[..., None, :].astype(np.int32) - _COLORS) ** 2).sum(-1)
    lab = d.argmin(-1)
    return lab, np.sqrt(np.take_along_axis(d, lab[..., None], -1)[..., 0])


def _check_image(img: np.ndarray, what: str) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 8 or img.shape[1] < 8:
        raise ValueError(f"{what} must be an (H, W, 3) RGB image of at least 8x8 pixels, got shape {img.shape}")
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating) and img.max() <= 1.0:
            img = img * 255.0
        img = np.clip(img, 0, 255).astype(np.uint8)
    return img


def is_palette_like(img: np.ndarray, tolerance: float = 48.0, fraction: float = 0.85) -> bool:
    """True when nearly every pixel is close to a sketch palette colour (a sketch, not a photo)."""
    img = _check_image(img, "image")
    step = max(1, max(img.shape[:2]) // 128)
    _, dist = nearest_labels(img[::step, ::step])
    return float((dist < tolerance).mean()) >= fraction


def reads_as_sketch(image: np.ndarray | None) -> bool:
    """Whether an image prompt is a flat-colour drawing (uint8, a sketch's shape, palette-like); any other image takes
    the image path, which resizes any size and names its own format, instead of failing a sketch's checks."""
    if image is None:
        return False
    img = np.asarray(image)
    try:
        return img.dtype == np.uint8 and is_palette_like(img)
    except ValueError:  # _check_image refuses the shape
        return False


def sketch_to_level(sketch: np.ndarray, params: LevelParams | None = None, seed: int = 0, extend: bool = True) -> Level:
    """A level whose first screens follow a hand-drawn sketch (16 cells high, nearest palette colour per cell).

    The sketch is read as a grid of square cells, 16 rows tall; with `extend` the seed continues the level to the
    right so there is somewhere to go after the sketched part.
    """
    img = _check_image(sketch, "sketch")
    H, W = img.shape[:2]
    cell = H / LEVEL_ROWS
    cols = max(1, int(round(W / cell)))
    if cols > MAX_SKETCH_COLS:
        raise ValueError(f"the sketch is {W}x{H} pixels, {cols} cells wide at 16 cells high: draw at most "
                         f"{MAX_SKETCH_COLS} cells wide ({MAX_SKETCH_COLS // LEVEL_ROWS}x wider than tall); the level "
                         "continues past the sketch by itself")
    step = max(1, int(cell // 8))  # at most 8x8 samples a cell: a 4096-px sketch reads as fast as a 128-px one
    ys, xs = np.arange(0, H, step), np.arange(0, W, step)
    lab, _ = nearest_labels(img[ys][:, xs])
    # majority vote of pixel labels within each cell
    ry = np.minimum((ys / cell).astype(int), LEVEL_ROWS - 1)
    rx = np.minimum((xs * cols / W).astype(int), cols - 1)
    cell_id = ry[:, None] * cols + rx[None, :]
    votes = np.zeros((LEVEL_ROWS * cols, len(_NAMES)), np.int64)
    np.add.at(votes, (cell_id.ravel(), lab.ravel()), 1)
    # small sprites (coins, enemies, the player) win their cell when they cover a good part of it
    frac = votes / np.maximum(votes.sum(1, keepdims=True), 1)
    for name in ("coin", "enemy", "player"):
        strong = frac[:, _LABEL[name]] >= 0.3
        votes[strong, _LABEL[name]] = votes[strong].max(1) + 1
    labels = votes.argmax(1).reshape(LEVEL_ROWS, cols)
    names = np.array(_NAMES)[labels]
    tiles = np.vectorize(_TILE_OF.get, otypes=[np.uint8])(names)
    if not np.isin(tiles, (GROUND, PLATFORM)).any():
        raise ValueError(
            f"the sketch has no ground: draw the ground in black {SKETCH_PALETTE['ground']} "
            f"(palette: {SKETCH_PALETTE})"
        )
    coins = [(int(c), int(r)) for r, c in zip(*np.nonzero(names == "coin"))]
    enemies: list[tuple[int, int]] = []
    for r, c in zip(*np.nonzero(names == "enemy")):
        if all(abs(c - ec) > 1 or abs(r - er) > 1 for ec, er in enemies):
            enemies.append((int(c), int(r)))
    py_, px_ = np.nonzero(lab == _LABEL["player"])
    if len(py_) * step * step >= max(1, int(cell * cell * 0.3)):
        px = (float(np.median(xs[px_])) + 0.5) / W * cols
        py_bottom = float(ys[py_].max() + step) / cell
        start = (max(0.0, px - 0.375), py_bottom - 1.5)
    else:
        col = next((c for c in range(cols) if (tiles[:, c] == GROUND).any()), 0)
        top = int(np.nonzero(np.isin(tiles[:, col], (GROUND, PLATFORM)))[0][0]) if (tiles[:, col] != EMPTY).any() else 12
        start = (col + 0.125, top - 1.5)
    hazard_kind = "lava" if (names == "lava").any() else "water"
    if params is None:
        from bridge.worlds.levels import random_params

        params = random_params(np.random.default_rng(seed), theme="lava_castle" if hazard_kind == "lava" else None,
                               length=max(cols, 200 if extend else cols))
    prefix = Level(tiles, coins, enemies, start, params, sketched_cols=cols)
    if not extend:
        return prefix
    return generate_level(params, seed, prefix=prefix)
