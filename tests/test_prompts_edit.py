"""paste_layer: alpha compositing of an object layer into a frame, clipped at the edges."""

import numpy as np
import pytest

from bridge.prompts.edit import paste_layer
from test_prompts_helpers import solid_rgba


def _frame(v: int = 40) -> np.ndarray:
    return np.full((64, 64, 3), v, np.uint8)


def test_opaque_layer_replaces_pixels_and_leaves_the_rest():
    f = _frame()
    out = paste_layer(f, solid_rgba(8, 6, (200, 10, 30)), 10, 20)
    assert (out[20:28, 10:16] == (200, 10, 30)).all()
    mask = np.ones((64, 64), bool)
    mask[20:28, 10:16] = False
    assert (out[mask] == 40).all()
    assert (f == 40).all()  # the input is not modified


def test_alpha_blends_and_transparent_keeps():
    out = paste_layer(_frame(0), solid_rgba(4, 4, (255, 255, 255), alpha=128), 0, 0)
    assert (out[:4, :4] == 128).all()  # 255 * 128 / 255, rounded
    assert (paste_layer(_frame(7), solid_rgba(4, 4, (255, 0, 0), alpha=0), 3, 3) == 7).all()


def test_per_pixel_alpha_draws_only_the_sprite():
    layer = solid_rgba(3, 3, (0, 255, 0))
    layer[0, 0, 3] = 0
    out = paste_layer(_frame(), layer, 5, 5)
    assert (out[5, 5] == 40).all() and (out[6, 6] == (0, 255, 0)).all()


@pytest.mark.parametrize("x,y", [(-3, -2), (60, 61), (-5, 30)])
def test_layers_over_an_edge_are_clipped(x, y):
    out = paste_layer(_frame(), solid_rgba(8, 8), x, y)
    ys, xs = np.nonzero((out != 40).any(-1))
    assert ys.min() == max(y, 0) and xs.min() == max(x, 0)
    assert ys.max() == min(y + 7, 63) and xs.max() == min(x + 7, 63)


def test_layer_outside_the_frame_changes_nothing_and_rgb_counts_as_opaque():
    assert (paste_layer(_frame(), solid_rgba(4, 4), 100, 0) == 40).all()
    rgb = np.full((2, 2, 3), 9, np.uint8)
    assert (paste_layer(_frame(), rgb, 0, 0)[:2, :2] == 9).all()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="RGBA"):
        paste_layer(_frame(), np.zeros((4, 4), np.uint8), 0, 0)
    with pytest.raises(ValueError, match="frame must be"):
        paste_layer(np.zeros((4, 4), np.uint8), solid_rgba(2, 2), 0, 0)
    with pytest.raises(ValueError, match="integer pixel"):
        paste_layer(_frame(), solid_rgba(2, 2), "left", 0)
