"""Pixel art for the sandbox: theme palettes, tile and sprite maps, the pre-rendered level background, weather."""

from __future__ import annotations

import numpy as np

from bridge.worlds.levels import BLOCK, GROUND, HAZARD, LADDER, PLATFORM

# --- Theme palettes (daylight colours; time of day tints them) ---
THEME_COLORS: dict[str, dict[str, tuple[int, int, int]]] = {
    "grassland": dict(
        sky_top=(92, 148, 252), sky_bottom=(176, 214, 255), far=(120, 190, 120), far2=(90, 160, 100), cloud=(250, 250, 255),
        top=(96, 192, 60), top_dark=(56, 140, 40), dirt=(156, 104, 58), dirt_dark=(118, 76, 40),
        plat=(214, 132, 64), plat_light=(244, 184, 112), plat_dark=(150, 84, 40),
        brick=(188, 100, 60), mortar=(110, 56, 30), ladder=(200, 150, 80),
        hazard=(48, 104, 216), hazard_light=(130, 180, 250), enemy=(170, 80, 40), enemy_feet=(70, 40, 20),
    ),
    "desert": dict(
        sky_top=(110, 170, 240), sky_bottom=(250, 226, 176), far=(236, 196, 130), far2=(222, 176, 110), cloud=(255, 246, 220),
        top=(246, 220, 140), top_dark=(220, 190, 110), dirt=(222, 172, 96), dirt_dark=(190, 138, 70),
        plat=(196, 148, 92), plat_light=(232, 194, 136), plat_dark=(150, 104, 60),
        brick=(214, 166, 104), mortar=(160, 112, 62), ladder=(150, 100, 50),
        hazard=(40, 140, 200), hazard_light=(120, 210, 240), enemy=(140, 60, 160), enemy_feet=(60, 20, 70),
    ),
    "snow": dict(
        sky_top=(140, 172, 220), sky_bottom=(222, 232, 246), far=(196, 206, 226), far2=(240, 244, 252), cloud=(246, 248, 255),
        top=(250, 252, 255), top_dark=(210, 224, 244), dirt=(140, 160, 196), dirt_dark=(110, 130, 170),
        plat=(160, 214, 240), plat_light=(220, 244, 255), plat_dark=(100, 160, 200),
        brick=(196, 210, 232), mortar=(130, 148, 180), ladder=(170, 120, 70),
        hazard=(40, 96, 190), hazard_light=(150, 200, 250), enemy=(60, 80, 200), enemy_feet=(20, 30, 90),
    ),
    "cave": dict(
        sky_top=(40, 34, 40), sky_bottom=(62, 52, 56), far=(74, 62, 64), far2=(52, 44, 48), cloud=(120, 200, 220),
        top=(132, 122, 112), top_dark=(100, 92, 84), dirt=(92, 82, 74), dirt_dark=(68, 60, 54),
        plat=(150, 100, 50), plat_light=(190, 140, 80), plat_dark=(100, 64, 30),
        brick=(112, 102, 98), mortar=(64, 58, 56), ladder=(180, 130, 70),
        hazard=(30, 80, 160), hazard_light=(90, 150, 220), enemy=(150, 70, 200), enemy_feet=(60, 20, 90),
    ),
    "lava_castle": dict(
        sky_top=(50, 14, 24), sky_bottom=(150, 46, 24), far=(34, 10, 18), far2=(40, 12, 18), cloud=(120, 60, 50),
        top=(160, 150, 150), top_dark=(120, 110, 112), dirt=(104, 96, 98), dirt_dark=(74, 68, 72),
        plat=(120, 108, 116), plat_light=(170, 160, 166), plat_dark=(72, 64, 70),
        brick=(136, 120, 116), mortar=(72, 60, 60), ladder=(150, 110, 70),
        hazard=(250, 96, 16), hazard_light=(255, 210, 70), enemy=(250, 150, 30), enemy_feet=(110, 40, 10),
    ),
}
HAZARD_KIND = {"grassland": "water", "desert": "water", "snow": "water", "cave": "water", "lava_castle": "lava"}

# per time of day: a multiplier for the world, one for sprites (kept brighter so the player stays readable), sky colours
TIME_TINT = {"day": (1.0, 1.0, 1.0), "dusk": (1.0, 0.78, 0.62), "night": (0.40, 0.44, 0.66)}
SPRITE_TINT = {"day": (1.0, 1.0, 1.0), "dusk": (1.0, 0.88, 0.78), "night": (0.72, 0.76, 0.95)}
DUSK_SKY = ((236, 112, 84), (255, 196, 120))
NIGHT_SKY = ((8, 12, 36), (34, 44, 90))
WATER_COLOR = (40, 100, 210)
FOG_COLOR = {"day": (206, 210, 218), "dusk": (214, 176, 160), "night": (76, 80, 104)}
RAIN_COLOR = (170, 196, 240)
SNOW_COLOR = (250, 250, 255)

# --- Tile maps (4x4 at 64 px; scaled up for bigger frames). Letters name palette entries, '.' is transparent ---
_TILE_ART = {
    "ground_top": ["TTTT", "TtTt", "dDdd", "dddD"],
    "ground": ["dddd", "dDdd", "dddd", "ddDd"],
    "platform": ["LLLL", "PPPP", "PPpP", "pppp"],
    "block": ["BBBm", "mmmm", "BmBB", "mmmm"],
    "ladder": ["l..l", "llll", "l..l", "llll"],
    "hazard_top": ["HhHh", "hhhh", "hhhh", "hhhh"],
    "hazard": ["hhhh", "hhhh", "hhhh", "hhhh"],
}
_TILE_KEYS = {
    "T": "top", "t": "top_dark", "d": "dirt", "D": "dirt_dark", "L": "plat_light", "P": "plat", "p": "plat_dark",
    "B": "brick", "m": "mortar", "l": "ladder", "H": "hazard_light", "h": "hazard",
}

# --- Sprite maps (4 px wide at 64 px). Player is 1 x 1.5 tiles, enemies and coins one tile ---
_PLAYER_ART = {
    "stand": [".RR.", ".RRR", "hSKS", "BBBB", ".OO.", ".F.F"],
    "walk": [".RR.", ".RRR", "hSKS", "BBBB", ".OO.", "F..F"],
    "jump": [".RR.", ".RRR", "hSKS", "BBBS", ".OO.", "F.F."],
    "duck": ["....", "....", ".RRR", "hSKS", "BOOB", "F..F"],
    "climb": [".RR.", ".RR.", ".hh.", "SBBS", ".OO.", "F..F"],
    "climb2": [".RR.", ".RR.", ".hh.", "BBBB", "SOOS", ".FF."],
}
_ENEMY_ART = {"a": [".EE.", "EWWE", "EEEE", "F..F"], "b": [".EE.", "EWWE", "EEEE", ".FF."]}
_COIN_ART = ["....", ".YY.", "YWYY", ".YY."]
SPRITE_COLORS = {
    "R": (226, 44, 40), "S": (252, 204, 160), "K": (16, 16, 24), "h": (96, 56, 24), "B": (236, 72, 56),
    "O": (48, 84, 228), "F": (70, 40, 24), "W": (255, 255, 255), "Y": (255, 214, 40),
}


def _paint(art: list[str], colors: dict[str, tuple[int, int, int]], scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn a character map into (rgb uint8, opaque bool) arrays, each pixel scaled to scale x scale."""
    h, w = len(art), len(art[0])
    rgb = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), bool)
    for y, row in enumerate(art):
        for x, ch in enumerate(row):
            if ch != ".":
                rgb[y, x] = colors[ch]
                mask[y, x] = True
    rgb = rgb.repeat(scale, 0).repeat(scale, 1)
    mask = mask.repeat(scale, 0).repeat(scale, 1)
    return rgb, mask


def _tint(rgb: np.ndarray, tint: tuple[float, float, float]) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * np.asarray(tint, np.float32), 0, 255).astype(np.uint8)


class Sprite:
    """A pre-tinted sprite: rgb and mask, plus their horizontal mirror."""

    def __init__(self, rgb: np.ndarray, mask: np.ndarray):
        self.rgb, self.mask = rgb, mask
        self.rgb_l, self.mask_l = rgb[:, ::-1].copy(), mask[:, ::-1].copy()


def make_sprites(theme: str, time: str, tile: int) -> dict[str, Sprite]:
    """All sprites for a theme at a time of day and tile size (player poses, enemy frames, coin)."""
    scale = tile // 4
    pal = THEME_COLORS[theme]
    tint = SPRITE_TINT[time]
    out = {}
    for name, art in _PLAYER_ART.items():
        rgb, mask = _paint(art, SPRITE_COLORS, scale)
        out["player_" + name] = Sprite(_tint(rgb, tint), mask)
    for name, art in _ENEMY_ART.items():
        rgb, mask = _paint(art, {**SPRITE_COLORS, "E": pal["enemy"], "F": pal["enemy_feet"]}, scale)
        out["enemy_" + name] = Sprite(_tint(rgb, tint), mask)
    rgb, mask = _paint(_COIN_ART, SPRITE_COLORS, scale)
    out["coin"] = Sprite(_tint(rgb, (1.0, 1.0, 1.0) if time == "day" else (0.95, 0.9, 0.8)), mask)
    return out


def blit(frame: np.ndarray, sprite: Sprite, x: int, y: int, mirror: bool = False) -> None:
    """Draw a sprite with its top-left at pixel (x, y), clipped to the frame."""
    rgb, mask = (sprite.rgb_l, sprite.mask_l) if mirror else (sprite.rgb, sprite.mask)
    h, w = mask.shape
    H, W = frame.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return
    np.copyto(frame[y0:y1, x0:x1], rgb[y0 - y : y1 - y, x0 - x : x1 - x], where=mask[y0 - y : y1 - y, x0 - x : x1 - x, None])


# --- The static level background, rendered once per level and time of day ---
def _tile_variants(tiles: np.ndarray) -> np.ndarray:
    """Map tile ids to art variants (ground tops differ from ground bodies, hazard surfaces from depths)."""
    above = np.vstack([np.zeros((1, tiles.shape[1]), tiles.dtype), tiles[:-1]])
    v = np.zeros(tiles.shape, np.uint8)  # 0 = sky
    v[(tiles == GROUND) & (above != GROUND) & (above != BLOCK)] = 1
    v[(tiles == GROUND) & ((above == GROUND) | (above == BLOCK))] = 2
    v[tiles == PLATFORM] = 3
    v[tiles == BLOCK] = 4
    v[tiles == LADDER] = 5
    v[(tiles == HAZARD) & (above != HAZARD)] = 6
    v[(tiles == HAZARD) & (above == HAZARD)] = 7
    return v


def _sky(theme: str, time: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Sky gradient with distant scenery (hills, dunes, mountains, cave rock, castles), float32 (h, w, 3)."""
    pal = THEME_COLORS[theme]
    top, bottom = np.array(pal["sky_top"], np.float32), np.array(pal["sky_bottom"], np.float32)
    if theme != "cave" and time == "dusk":
        top, bottom = (top + 3 * np.array(DUSK_SKY[0])) / 4, (bottom + 3 * np.array(DUSK_SKY[1])) / 4
    if theme != "cave" and time == "night":
        top, bottom = np.array(NIGHT_SKY[0], np.float32), np.array(NIGHT_SKY[1], np.float32)
        if theme == "lava_castle":  # the lava still glows on the clouds at night
            top, bottom = np.array((18, 6, 16), np.float32), np.array((74, 22, 22), np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).copy()
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    phase = rng.uniform(0, 2 * np.pi, 4)
    tint = np.asarray(TIME_TINT[time], np.float32) if theme != "cave" else np.float32(1.0)
    far = np.asarray(pal["far"], np.float32) * tint
    far2 = np.asarray(pal["far2"], np.float32) * tint
    if time == "night" and theme != "cave":  # stars, only where nothing covers the sky
        stars = (rng.random((h, w)) < 0.006) & (ys < h * 0.55)
        sky[stars] = (230, 230, 250)
    if theme == "grassland" or theme == "desert":
        ridge = h * (0.52 if theme == "grassland" else 0.6) + h * 0.08 * np.sin(xs / (w / 9) + phase[0]) + h * 0.05 * np.sin(xs / (w / 23) + phase[1])
        sky[ys > ridge] = far2 if theme == "desert" else far
        ridge2 = h * 0.68 + h * 0.05 * np.sin(xs / (w / 17) + phase[2])
        sky[ys > ridge2] = far if theme == "desert" else far2
    if theme == "snow":
        period = h * 1.6
        tri = np.abs(((xs + phase[0] * period) % period) / period - 0.5) * 2  # 0 at peaks, 1 at valleys
        ridge = h * 0.25 + tri * h * 0.35
        sky[ys > ridge] = far
        sky[(ys > ridge) & (ys < ridge + h * 0.06)] = far2  # snow caps
    if theme == "cave":
        noise = rng.random((h // 4 + 1, w // 4 + 1)).repeat(4, 0).repeat(4, 1)[:h, :w]
        sky[noise > 0.82] = far
        sky[noise < 0.08] = far2
        gems = (rng.random((h, w)) < 0.0015) & (ys > h * 0.2)
        sky[gems] = np.asarray(pal["cloud"], np.float32)
        sky *= np.asarray(TIME_TINT[time], np.float32) ** 0.3  # deep underground, the hour barely shows
    if theme == "lava_castle":
        period = h * 2.5
        u = (xs + phase[0] * period) % period
        tower = (u < h * 0.5) & (ys > h * 0.22) | (u >= h * 0.5) & (ys > h * 0.45)
        merlon = (u < h * 0.5) & (ys > h * 0.16) & ((u // max(h // 16, 1)) % 2 == 0)
        window = (((u > h * 0.12) & (u < h * 0.17)) | ((u > h * 0.32) & (u < h * 0.37))) & (ys > h * 0.3) & (ys < h * 0.37)
        sky[tower | merlon] = far
        sky[window] = np.asarray((255, 160, 60), np.float32) * tint
    if theme in ("grassland", "snow", "desert") and time != "night":  # clouds
        cloud = np.asarray(pal["cloud"], np.float32) * tint
        for _ in range(max(1, w // (h * 2))):
            cx, cy = rng.uniform(0, w), rng.uniform(h * 0.08, h * 0.3)
            rx, ry = rng.uniform(h * 0.12, h * 0.22), rng.uniform(h * 0.04, h * 0.07)
            x0, x1 = max(int(cx - rx) - 1, 0), min(int(cx + 2 * rx) + 2, w)  # only the cloud's box
            y0, y1 = max(int(cy - 2 * ry) - 1, 0), min(int(cy + ry) + 2, h)
            bx, by = xs[:, x0:x1], ys[y0:y1]
            blob = ((bx - cx) / rx) ** 2 + ((by - cy) / ry) ** 2 < 1
            blob |= ((bx - cx - rx * 0.5) / (rx * 0.6)) ** 2 + ((by - cy + ry * 0.6) / ry) ** 2 < 1
            sky[y0:y1, x0:x1][blob] = cloud
    if time == "night" and theme not in ("cave",):  # the moon
        mx, my, mr = rng.uniform(w * 0.05, w * 0.25), h * 0.15, h * 0.06
        sky[((xs - mx) ** 2 + (ys - my) ** 2) < mr**2] = 235
    return sky


def render_background(tiles: np.ndarray, theme: str, time: str, tile: int, seed: int) -> np.ndarray:
    """The whole level as one image (rows*tile, cols*tile, 3) uint8, tinted for the time of day, without coins."""
    rng = np.random.default_rng(seed)
    pal = THEME_COLORS[theme]
    scale = tile // 4
    colors = {k: pal[v] for k, v in _TILE_KEYS.items()}
    order = ["sky", "ground_top", "ground", "platform", "block", "ladder", "hazard_top", "hazard"]
    art_rgb = np.zeros((len(order), tile, tile, 3), np.uint8)
    art_mask = np.zeros((len(order), tile, tile), bool)
    for i, name in enumerate(order[1:], start=1):
        art_rgb[i], art_mask[i] = _paint(_TILE_ART[name], colors, scale)
    var = _tile_variants(tiles)
    R, C = tiles.shape
    H, W = R * tile, C * tile
    rgb = art_rgb[var].transpose(0, 2, 1, 3, 4).reshape(H, W, 3).astype(np.float32)
    mask = art_mask[var].transpose(0, 2, 1, 3).reshape(H, W)
    rgb += rng.normal(0, 5, (H, W, 1)).astype(np.float32)  # texture so repeated tiles do not look stamped
    rgb *= np.asarray(TIME_TINT[time], np.float32)
    if HAZARD_KIND[theme] == "lava":  # lava glows at any hour
        lava = (var == 6) | (var == 7)
        lava_px = lava.repeat(tile, 0).repeat(tile, 1)
        rgb[lava_px] = art_rgb[var].transpose(0, 2, 1, 3, 4).reshape(H, W, 3)[lava_px]
    sky = _sky(theme, time, H, W, rng)
    out = np.where(mask[..., None], rgb, sky)
    return np.clip(out, 0, 255).astype(np.uint8)


# --- Per-frame overlays (vectorised, a few numpy ops each) ---
def blend(region: np.ndarray, color: tuple[int, int, int], alpha256: int) -> None:
    """In place: region = region * (1 - a) + color * a, in integer arithmetic."""
    c = np.asarray(color, np.uint16) * alpha256
    region[...] = ((region.astype(np.uint16) * (256 - alpha256) + c) >> 8).astype(np.uint8)


def darken(region: np.ndarray, factor256: int) -> None:
    """In place: region = region * factor, in integer arithmetic."""
    region[...] = ((region.astype(np.uint16) * factor256) >> 8).astype(np.uint8)


class Particles:
    """Screen-space weather particles whose motion is a pure function of the frame index (so snapshots stay tiny)."""

    def __init__(self, height: int, width: int, seed: int, tile: int):
        rng = np.random.default_rng(seed)
        n = max(8, height * width // 90)
        self.h, self.w, self.scale = height, width, max(1, tile // 4)
        self.x0 = rng.uniform(0, width, n).astype(np.float32)
        self.y0 = rng.uniform(0, height, n).astype(np.float32)
        self.speed = rng.uniform(0.7, 1.3, n).astype(np.float32)
        self.phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)

    def rain(self, frame: np.ndarray, t: int, cam_x: int, color: tuple[int, int, int]) -> None:
        s = self.scale
        n = len(self.x0) * 2 // 3
        y = (np.floor(self.y0[:n] + t * 3.0 * s * self.speed[:n]).astype(np.int32) % self.h)
        x = (np.floor(self.x0[:n] - t * 0.8 * s - cam_x * 0.5 - y * 0.25).astype(np.int32) % self.w)
        for k in range(2 * s):
            frame[(y + k) % self.h, (x - k // 4) % self.w] = color

    def snow(self, frame: np.ndarray, t: int, cam_x: int, color: tuple[int, int, int]) -> None:
        s = self.scale
        y = (np.floor(self.y0 + t * 0.6 * s * self.speed).astype(np.int32) % self.h)
        x = (np.floor(self.x0 + 1.5 * s * np.sin(self.phase + t * 0.15) - cam_x * 0.5).astype(np.int32) % self.w)
        frame[y, x] = color
        if s > 1:
            frame[(y + 1) % self.h, x] = color
            frame[y, (x + 1) % self.w] = color
            frame[(y + 1) % self.h, (x + 1) % self.w] = color
