"""Test helpers: draw sandbox levels as ASCII art and check physics invariants."""

from __future__ import annotations

import numpy as np

from bridge.worlds.levels import SOLID_TILES
from bridge.worlds.sandbox import PHYS
from bridge.worlds.sketch import SKETCH_PALETTE

CHARS = {".": "sky", "#": "ground", "=": "platform", "H": "ladder", "P": "player", "E": "enemy", "o": "coin",
         "~": "water", "^": "lava"}


def ascii_sketch(rows: list[str], cell: int = 4) -> np.ndarray:
    """A sketch image from 16 rows of ASCII art (see CHARS), `cell` pixels per cell."""
    assert len(rows) == 16, "a sketch is 16 cells tall"
    width = max(len(r) for r in rows)
    img = np.zeros((16, width, 3), np.uint8)
    for y, row in enumerate(rows):
        for x, ch in enumerate(row.ljust(width, ".")):
            img[y, x] = SKETCH_PALETTE[CHARS[ch]]
    return img.repeat(cell, 0).repeat(cell, 1)


def flat_level(width: int = 40, ground_row: int = 12, extra: dict | None = None) -> list[str]:
    """ASCII rows: sky above a flat ground from `ground_row` down, player at column 2; `extra` sets (row, col) -> char."""
    rows = [["."] * width for _ in range(16)]
    for r in range(ground_row, 16):
        rows[r] = ["#"] * width
    rows[ground_row - 2][2] = rows[ground_row - 1][2] = "P"
    for (r, c), ch in (extra or {}).items():
        rows[r][c] = ch
    return ["".join(r) for r in rows]


def overlaps_solid(world) -> bool:
    """True if the player's box overlaps a solid tile (which physics must never allow)."""
    s = world.s
    tiles = s.level.tiles
    eps = 1e-6
    for r in range(int(np.floor(s.y + eps)), int(np.floor(s.y + PHYS.player_h - eps)) + 1):
        for c in range(int(np.floor(s.x + eps)), int(np.floor(s.x + PHYS.player_w - eps)) + 1):
            if 0 <= r < tiles.shape[0] and 0 <= c < tiles.shape[1] and tiles[r, c] in SOLID_TILES:
                return True
    return False


def test_ascii_sketch_draws_palette_cells():
    img = ascii_sketch(flat_level(width=20), cell=3)
    assert img.shape == (48, 60, 3)
    assert tuple(img[0, 0]) == SKETCH_PALETTE["sky"] and tuple(img[-1, -1]) == SKETCH_PALETTE["ground"]
    assert tuple(img[10 * 3, 2 * 3]) == SKETCH_PALETTE["player"]


def test_overlaps_solid_detects_a_player_inside_ground():
    from bridge.backend import Prompt
    from bridge.worlds.sandbox import SandboxWorld

    w = SandboxWorld(size=64)
    w.reset(Prompt(seed=0, sketch=ascii_sketch(flat_level())))
    assert not overlaps_solid(w)
    w.s.y += 1.0  # pushed into the ground
    assert overlaps_solid(w)
