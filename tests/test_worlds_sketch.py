"""Sketch view and sketch prompts: the palette, round trips from a level's sketch, hand-drawn layouts, clear errors."""

import numpy as np
import pytest
import torch

from bridge.backend import Prompt
from bridge.worlds.levels import BLOCK, GROUND, HAZARD, LADDER, PLATFORM
from bridge.worlds.sandbox import SandboxWorld, sketch_to_level
from bridge.worlds.sketch import SKETCH_PALETTE, is_palette_like
from test_worlds_helpers import ascii_sketch, flat_level

torch.set_num_threads(1)


def test_palette_names_every_layer_with_distinct_colours():
    for key in ("sky", "ground", "platform", "ladder", "player", "enemy", "coin", "water", "lava"):
        assert key in SKETCH_PALETTE
    cols = np.array(list(SKETCH_PALETTE.values()), np.int32)
    d = np.sqrt(((cols[:, None] - cols[None]) ** 2).sum(-1)) + np.eye(len(cols)) * 999
    assert d.min() > 90  # far enough apart to survive anti-aliased hand drawing


def test_sketch_view_is_flat_palette_colours():
    w = SandboxWorld(size=64, seed=0)
    w.reset(Prompt(seed=3))
    sk = w.sketch()
    colours = {tuple(c) for c in sk.reshape(-1, 3)}
    assert colours <= {tuple(v) for v in SKETCH_PALETTE.values()}
    assert tuple(SKETCH_PALETTE["player"]) in colours and tuple(SKETCH_PALETTE["ground"]) in colours


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_round_trip_of_a_levels_sketch(seed):
    w = SandboxWorld(size=64, seed=0)
    w.reset(Prompt(seed=seed))
    assert w.camera_x == 0
    level = sketch_to_level(w.sketch(), extend=False)
    original = w.level.tiles[:, :16].copy()
    original[original == BLOCK] = GROUND  # stairs draw as ground: same layout, one colour
    agree = (level.tiles == original).mean()
    assert agree >= 0.97, f"only {agree:.2%} of cells survived the round trip"
    coins = {(c, r) for c, r in w.level.coins if c < 16}
    assert coins == set(level.coins)
    assert level.start[0] == pytest.approx(w.s.x, abs=0.3) and level.start[1] == pytest.approx(w.s.y, abs=0.3)


def test_a_hand_drawn_sketch_sets_the_layout():
    rows = flat_level(width=32, extra={(8, c): "=" for c in range(10, 15)} | {(r, 12): "H" for r in range(8, 12)}
                      | {(7, 11): "o", (7, 13): "o", (11, 20): "E"} | {(r, c): "~" for r in range(12, 16) for c in range(24, 27)})
    img = ascii_sketch(rows, cell=10)
    noisy = np.clip(img.astype(int) + np.random.default_rng(0).integers(-25, 26, img.shape), 0, 255).astype(np.uint8)
    w = SandboxWorld(size=64, seed=0)
    w.reset(Prompt(seed=1, sketch=noisy))
    t = w.level.tiles
    assert (t[12:, :24] == GROUND).all()
    assert (t[8, [10, 11, 13, 14]] == PLATFORM).all() and (t[8:12, 12] == LADDER).all()
    assert (t[12:, 24:27] == HAZARD).all() and (t[12:, 27:32] == GROUND).all()
    assert {(11, 7), (13, 7)} <= set(w.level.coins)
    assert (20, 11) in w.level.enemies
    assert w.s.x == pytest.approx(2.125) and w.s.on_ground
    assert w.level.cols > 32 and w.level.sketched_cols == 32  # the seed continues the level
    # an image prompt that is palette-like is read as a sketch too
    w.reset(Prompt(seed=1, image=img))
    assert (w.level.tiles[8, [10, 11, 13, 14]] == PLATFORM).all()


def test_big_sketches_read_like_small_ones_and_overlong_ones_are_refused():
    rows = flat_level(width=32, extra={(8, c): "=" for c in range(10, 15)} | {(7, 11): "o", (11, 20): "E"})
    small, big = (sketch_to_level(ascii_sketch(rows, cell=c), seed=1, extend=False) for c in (4, 128))  # 2048 px tall
    assert np.array_equal(small.tiles, big.tiles) and small.coins == big.coins and small.enemies == big.enemies
    assert small.start == pytest.approx(big.start, abs=0.1)
    strip = np.full((8, 20000, 3), SKETCH_PALETTE["ground"], np.uint8)  # 562 bytes as a PNG; took 2 s and 626 MB
    with pytest.raises(ValueError, match="40000 cells wide.*at most 512 cells wide"):
        sketch_to_level(strip)


def test_palette_detection_and_errors():
    assert is_palette_like(ascii_sketch(flat_level()))
    assert not is_palette_like((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    empty = np.full((64, 64, 3), 255, np.uint8)
    with pytest.raises(ValueError, match="no ground"):
        sketch_to_level(empty)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        sketch_to_level(np.zeros((64, 64), np.uint8))


def test_editor_style_sketch_png_round_trip():
    """The editor sends sketches as 4-px cells with the player 1x2 cells (editor_gui/sketch_canvas.py)."""
    rows = ["." * 48] * 12 + ["#" * 48] * 2 + ["#" * 48] * 2
    rows[10] = "..P" + "." * 45
    rows[11] = "..P" + "." * 45
    w = SandboxWorld(size=64, seed=0)
    w.reset(Prompt(seed=0, sketch=ascii_sketch(rows)))
    assert w.s.x == pytest.approx(2.125) and w.s.y == pytest.approx(10.5) and w.s.on_ground


def test_a_sketch_drawn_on_a_transparent_canvas_reads_its_blank_as_sky():
    """An engine camera or canvas sends RGBA: transparent is what was not drawn, whatever RGB it holds (often black,
    which is ground): the host, the sandbox and the world model all read it as white paper."""
    import io

    from PIL import Image

    from bridge.host.pixels import decode_prompt_image
    from bridge.model.world import resize_image

    rows = ["." * 48] * 12 + ["#" * 48] * 4
    rows[10] = rows[11] = "..P" + "." * 45
    rgb = ascii_sketch(rows)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    blank = (rgb == SKETCH_PALETTE["sky"]).all(-1)
    rgba[blank] = 0  # transparent black
    png = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(png, format="PNG")
    assert np.array_equal(decode_prompt_image(png.getvalue(), "sketch"), rgb)
    assert np.array_equal(resize_image(rgba, *rgb.shape[:2]).numpy(), resize_image(rgb, *rgb.shape[:2]).numpy())
    a, b = SandboxWorld(size=64, seed=0), SandboxWorld(size=64, seed=0)
    a.reset(Prompt(seed=0, sketch=rgba))
    b.reset(Prompt(seed=0, sketch=rgb))
    assert np.array_equal(a.s.level.tiles, b.s.level.tiles) and (a.s.x, a.s.y) == (b.s.x, b.s.y)
