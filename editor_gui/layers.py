"""Object layers for frame edits: built-in sprites from the sandbox's own art, PNG files and the clipboard, as RGBA."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

BUILTINS = ("enemy", "coin", "player", "block", "platform")  # what the Objects tab offers ready-made
THEME, TIME = "grassland", "day"  # the sandbox's daylight colours


@dataclass
class Layer:
    """An RGBA object layer (h, w, 4) uint8 and where it came from (shown to the user)."""

    rgba: np.ndarray
    name: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in frame pixels."""
        return int(self.rgba.shape[1]), int(self.rgba.shape[0])

    def png(self) -> bytes:
        """The layer as the protocol carries it: PNG bytes, alpha kept."""
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(self.rgba), "RGBA").save(buf, format="PNG")
        return buf.getvalue()


def sprite_tile(frame_height: int) -> int:
    """The sandbox's tile size for this frame height (16 tile rows), at least the art's own 4 px."""
    return max(4, (frame_height // 16) // 4 * 4)


def builtin_layer(name: str, frame_height: int = 64) -> Layer:
    """A sprite or tile drawn with the sandbox's art (bridge/worlds/render.py), sized to the frame's tiles."""
    from bridge.worlds.levels import BLOCK, PLATFORM
    from bridge.worlds.render import make_sprites, render_background

    tile = sprite_tile(frame_height)
    if name in ("block", "platform"):
        tiles = np.array([[BLOCK if name == "block" else PLATFORM]], np.uint8)
        rgb = render_background(tiles, THEME, TIME, tile, seed=0)
        opaque = np.ones(rgb.shape[:2], bool)  # tile art has no holes
    else:
        sprites = make_sprites(THEME, TIME, tile)
        key = {"enemy": "enemy_a", "coin": "coin", "player": "player_stand"}.get(name)
        if key is None:
            raise ValueError(f"unknown built-in object {name!r}; choose one of {', '.join(BUILTINS)}")
        rgb, opaque = sprites[key].rgb, sprites[key].mask
    rgba = np.dstack([rgb, np.where(opaque, 255, 0).astype(np.uint8)])
    ys, xs = np.nonzero(opaque)  # crop transparent margins (the coin's art has one) so the cursor holds the object
    return Layer(np.ascontiguousarray(rgba[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]), name)


def qimage_to_rgba(image: QImage) -> np.ndarray:
    """Any QImage as an (h, w, 4) uint8 RGBA array (opaque images get alpha 255)."""
    if image.isNull():
        raise ValueError("the image is empty or could not be decoded; use a PNG (with alpha for a cut-out object)")
    img = image.convertToFormat(QImage.Format.Format_RGBA8888)
    h, w = img.height(), img.width()
    rows = np.frombuffer(img.constBits(), np.uint8, count=img.sizeInBytes()).reshape(h, img.bytesPerLine())
    return rows[:, : w * 4].reshape(h, w, 4).copy()


def rgba_to_qimage(rgba: np.ndarray) -> QImage:
    """An owned QImage copy of an RGBA array (for previews)."""
    rgba = np.ascontiguousarray(rgba)
    h, w, _ = rgba.shape
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


def fit_layer(layer: Layer, width: int, height: int) -> tuple[Layer, bool]:
    """Scale a layer down (keeping its aspect) so it fits a width x height frame; the protocol refuses bigger ones."""
    w, h = layer.size
    if w <= width and h <= height:
        return layer, False
    img = rgba_to_qimage(layer.rgba).scaled(width, height, Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.SmoothTransformation)
    return Layer(qimage_to_rgba(img), layer.name), True


def load_layer(path: str) -> Layer:
    """A layer from an image file; a clear error when it is not one."""
    image = QImage(str(path))
    if image.isNull():
        raise ValueError(f"could not read an image from {path}; use a PNG (with alpha for a cut-out object)")
    return Layer(qimage_to_rgba(image), Path(path).name)
