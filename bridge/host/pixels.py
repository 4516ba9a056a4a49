"""Frame pixel codecs (raw RGB8, PNG, JPEG) and prompt-image decoding, shared by host, client and recordings."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bridge.backend import opaque
from bridge.host.protocol import ProtocolError
from bridge.values import plural


def encode_pixels(image: np.ndarray, codec: str) -> bytes:
    """(H, W, 3) uint8 -> payload bytes for `codec`."""
    if codec == "raw":
        return np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    buf = io.BytesIO()
    if codec == "png":
        Image.fromarray(image, "RGB").save(buf, format="PNG", compress_level=1)
    elif codec == "jpeg":
        Image.fromarray(image, "RGB").save(buf, format="JPEG", quality=90)
    else:
        raise ValueError(f"unknown codec {codec!r}; use raw, png or jpeg")
    return buf.getvalue()


def decode_pixels(payload: bytes, codec: str, width: int, height: int) -> np.ndarray:
    """Payload bytes -> (H, W, 3) uint8; ValueError when the payload does not match the header."""
    if codec == "raw":
        if len(payload) != width * height * 3:
            raise ValueError(f"raw frame has {plural(len(payload), 'byte')}, expected {height}*{width}*3 = {width * height * 3}")
        return np.frombuffer(payload, dtype=np.uint8).reshape(height, width, 3)
    if codec not in ("png", "jpeg"):
        raise ValueError(f"unknown codec {codec!r}")
    img = np.asarray(Image.open(io.BytesIO(payload)).convert("RGB"))
    if img.shape != (height, width, 3):
        raise ValueError(f"{codec} frame is {img.shape[1]}x{img.shape[0]}, header says {width}x{height}")
    return img


def _eight_bit(im: Image.Image) -> Image.Image:
    """16-bit grey (I;16, I) -> 8-bit L, or LA keyed by its tRNS grey: PIL's convert("RGB") clips it to white."""
    if not im.mode.startswith("I"):
        return im
    grey = np.clip(np.asarray(im).astype(np.int64), 0, 65535)
    lum = Image.fromarray((grey >> 8).astype(np.uint8))
    if "transparency" not in im.info:
        return lum
    alpha = np.where(grey == im.info["transparency"], 0, 255).astype(np.uint8)
    return Image.merge("LA", (lum, Image.fromarray(alpha)))


PROMPT_DECODE_PX = 512  # prompts end up 64-256 px: a 4096-px JPEG need not be decoded whole (1 s on the loop)


def decode_prompt_image(data: bytes, what: str = "image") -> np.ndarray:
    """PNG/JPEG prompt bytes -> (H, W, 3) uint8 (transparency over white), or ProtocolError(bad_prompt) naming it."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > 4096 * 4096:
                raise ProtocolError("bad_prompt", f"{what} is {im.width}x{im.height}: send at most 4096x4096")
            im.draft("RGB", (PROMPT_DECODE_PX, PROMPT_DECODE_PX))  # a JPEG decodes at 1/2-1/8 scale, still >= that
            im = _eight_bit(im)
            if "A" in im.getbands() or "transparency" in im.info:  # an engine canvas: transparent = not drawn
                return opaque(np.asarray(im.convert("RGBA")))
            return np.asarray(im.convert("RGB"))
    except ProtocolError:
        raise
    except Exception as e:
        raise ProtocolError("bad_prompt", f"{what} prompt is not a PNG or JPEG file ({type(e).__name__}): "
                                          "send the encoded file bytes") from None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode_layer(data: bytes, width: int, height: int) -> np.ndarray:
    """An `edit` layer: PNG bytes -> (h, w, 4) RGBA or (h, w, 3) RGB uint8, at most width x height; else bad_prompt."""
    if not bytes(data[:8]) == PNG_SIGNATURE:
        raise ProtocolError("bad_prompt", "the edit layer is not a PNG file: send PNG bytes (RGBA for a cut-out "
                                          "object, RGB for an opaque patch)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width > width or im.height > height:  # checked on the header, before decoding any pixels
                raise ProtocolError("bad_prompt", f"the edit layer is {im.width}x{im.height}, larger than the "
                                                  f"{width}x{height} frame: crop or scale it to fit")
            im = _eight_bit(im)
            alpha = "A" in im.getbands() or "transparency" in im.info
            return np.asarray(im.convert("RGBA" if alpha else "RGB"))
    except ProtocolError:
        raise
    except Exception as e:
        raise ProtocolError("bad_prompt", f"the edit layer is not a readable PNG ({type(e).__name__}: {e}): send "
                                          "the encoded file bytes") from None


def _png_of_array(image: np.ndarray, what: str, files: str) -> bytes:
    """An (h, w, 3) RGB or (h, w, 4) RGBA uint8 array as PNG bytes; else a ValueError that names the fix."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8 or 0 in arr.shape:
        raise ValueError(f"{what} must be an (H, W, 3) RGB or (H, W, 4) RGBA uint8 array, got {arr.shape} {arr.dtype}:"
                         f" convert it (e.g. np.asarray(pil_image.convert('RGBA'))) or send the encoded {files} bytes")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr), "RGBA" if arr.shape[2] == 4 else "RGB").save(buf, format="PNG",
                                                                                             compress_level=1)
    return buf.getvalue()


def encode_layer(layer: np.ndarray | bytes) -> bytes:
    """What clients send as an `edit` layer: bytes pass through, (h, w, 4|3) uint8 arrays become PNG."""
    return bytes(layer) if isinstance(layer, (bytes, bytearray)) else _png_of_array(layer, "an edit layer", "PNG")


def encode_prompt_image(image: np.ndarray | bytes) -> bytes:
    """What clients send as an image or sketch prompt: bytes pass through, RGB or RGBA arrays become PNG (the host
    reads a transparent pixel as white paper: not drawn)."""
    return bytes(image) if isinstance(image, (bytes, bytearray)) else _png_of_array(image, "a prompt image",
                                                                                   "PNG or JPEG")
