"""Frame edits: paste an object layer (an RGBA sprite) into a frame, so the world can continue from the result."""

from __future__ import annotations

import numpy as np

from bridge.backend import over


def paste_layer(frame: np.ndarray, rgba: np.ndarray, x: int, y: int) -> np.ndarray:
    """A copy of `frame` (H, W, 3) uint8 with `rgba` (h, w, 4) uint8 alpha-composited at top-left (x, y).

    The layer may hang over any edge (it is clipped) or lie wholly outside (the frame is returned unchanged);
    an (h, w, 3) layer counts as fully opaque.
    """
    frame = np.asarray(frame)
    layer = np.asarray(rgba)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8, got shape {frame.shape} dtype {frame.dtype}")
    if layer.ndim != 3 or layer.shape[2] not in (3, 4) or layer.dtype != np.uint8:
        raise ValueError(f"the layer must be an (h, w, 4) uint8 RGBA image (PNG with alpha), got shape {layer.shape} "
                         f"dtype {layer.dtype}")
    if layer.shape[0] == 0 or layer.shape[1] == 0:
        raise ValueError(f"the layer is empty (shape {layer.shape})")
    try:
        x, y = int(x), int(y)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"x and y must be integer pixel positions, got x={x!r}, y={y!r}") from None
    out = frame.copy()
    H, W = frame.shape[:2]
    h, w = layer.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return out
    src = layer[y0 - y : y1 - y, x0 - x : x1 - x]
    if src.shape[2] == 3:
        out[y0:y1, x0:x1] = src
        return out
    out[y0:y1, x0:x1] = over(src, out[y0:y1, x0:x1])
    return out
