"""Contact sheets: a dataset at a glance, and the sandbox gallery of every theme, time, weather and event."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bridge.data.dataset import VideoDataset

LABEL_BG = (24, 24, 28)
LABEL_FG = (235, 235, 235)


def _font(px: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _label(width: int, text: str, height: int = 14) -> np.ndarray:
    """A strip of text, (height, width, 3) uint8."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (width, height), LABEL_BG)
    ImageDraw.Draw(im).text((3, 1), text, fill=LABEL_FG, font=_font(height - 3))
    return np.asarray(im)


def _grid(tiles: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Stack equally sized images into rows and columns with a dark gap between them."""
    h, w = tiles[0][0].shape[:2]
    cols = max(len(r) for r in tiles)
    out = np.full((len(tiles) * (h + gap) + gap, cols * (w + gap) + gap, 3), LABEL_BG, np.uint8)
    for i, row in enumerate(tiles):
        for j, img in enumerate(row):
            out[gap + i * (h + gap) : gap + i * (h + gap) + h, gap + j * (w + gap) : gap + j * (w + gap) + w] = img
    return out


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write a PNG that appears whole or not at all (bridge/files.py)."""
    import imageio.v3 as iio

    from bridge.files import temp_beside

    with temp_beside(path, suffix=".png") as tmp:
        iio.imwrite(tmp, image)
    return Path(path)


def contact_sheet(ds: VideoDataset, rows: int = 8, cols: int = 8, scale: int = 2, seed: int = 0) -> np.ndarray:
    """Rows of evenly spaced frames from evenly chosen episodes, each row titled with its id and caption."""
    if not ds.episodes:
        raise ValueError(f"{ds.root} has no episodes to preview")
    rows = min(rows, len(ds.episodes))
    picks = np.linspace(0, len(ds.episodes) - 1, rows).round().astype(int)
    blocks = []
    for k in picks:
        ep = ds.episodes[int(k)]
        frames = ds.frames(ep)
        idx = np.linspace(0, len(frames) - 1, min(cols, len(frames))).round().astype(int)
        strip = _grid([[np.asarray(frames[i]).repeat(scale, 0).repeat(scale, 1) for i in idx]])
        events = ", ".join(f"{e['type']}@{e['frame']}" for e in ep.events)
        title = f"#{ep.id} [{ep.split}] {ep.caption or ep.extra.get('source_file', '')}" + (f"  events: {events}" if events else "")
        blocks += [_label(strip.shape[1], title), strip]
    width = max(b.shape[1] for b in blocks)
    blocks = [np.pad(b, ((0, 0), (0, width - b.shape[1]), (0, 0))) for b in blocks]
    return np.concatenate(blocks, 0)


def sandbox_gallery(size: int = 64, scale: int = 2, seed: int = 3) -> np.ndarray:
    """Every theme at every time of day and weather, then every world event before and after it fires."""
    from bridge.backend import Prompt, WorldEvent
    from bridge.worlds.events import EVENT_TYPES
    from bridge.worlds.levels import THEMES, TIMES, WEATHERS, LevelParams
    from bridge.worlds.sandbox import RIGHT, RIGHT_JUMP, SandboxWorld

    world = SandboxWorld(size=size, seed=seed)

    def shot(theme: str, time: str, weather: str, steps: int = 30, event: str | None = None) -> np.ndarray:
        params = LevelParams(theme=theme, time=time, weather=weather, enemy_density=0.8, coin_density=1.0)
        world.reset(Prompt(seed=seed), params=params)
        frame = None
        for t in range(steps):
            frame = world.step(RIGHT_JUMP if t % 9 == 0 else RIGHT)
        if event is not None:
            for t in range(70 if event == "flood" else 12):
                frame = world.step(RIGHT if t % 2 else 0, WorldEvent(type=event) if t == 0 else None)
        return frame.repeat(scale, 0).repeat(scale, 1)

    tile_w = size * scale
    blocks = []
    header = [_label(tile_w, f"{tm} / {wx}", 14) for tm in TIMES for wx in WEATHERS]
    blocks.append(_grid([header], gap=2))
    for theme in THEMES:
        blocks.append(_label(len(header) * (tile_w + 2) + 2, theme, 16))
        blocks.append(_grid([[shot(theme, tm, wx) for tm in TIMES for wx in WEATHERS]]))
    blocks.append(_label(len(header) * (tile_w + 2) + 2, "world events: before -> after (grassland, day, clear)", 16))
    pairs, labels = [], []
    for etype in EVENT_TYPES:
        start = ("grassland", "night", "clear") if etype in ("day_breaks", "dusk") else ("grassland", "day", "rain" if etype == "weather_clear" else "clear")
        pairs += [shot(*start), shot(*start, event=etype)]
        labels += [_label(tile_w, "before", 14), _label(tile_w, etype, 14)]
    per_row = len(header)
    for i in range(0, len(pairs), per_row):
        blocks.append(_grid([labels[i : i + per_row]]))
        blocks.append(_grid([pairs[i : i + per_row]]))
    width = max(b.shape[1] for b in blocks)
    blocks = [np.pad(b, ((0, 0), (0, width - b.shape[1]), (0, 0)), constant_values=LABEL_BG[0]) for b in blocks]
    return np.concatenate(blocks, 0)
