"""Sandbox looks: themes, time of day, weather and world events change pixels the expected way; captions and prompts."""

import numpy as np
import pytest
import torch

from bridge.backend import Prompt, WorldEvent
from bridge.worlds.events import EVENT_CAPTIONS, EVENT_TYPES, match_event_text
from bridge.worlds.levels import THEMES, TIMES, WEATHERS, LevelParams, caption_for, parse_prompt_text
from bridge.worlds.render import RAIN_COLOR, THEME_COLORS
from bridge.worlds.sandbox import NOOP, PHYS, RIGHT, SandboxWorld
from bridge.worlds.sketch import SKETCH_PALETTE

torch.set_num_threads(1)


def shot(theme="grassland", time="day", weather="clear", steps=12, seed=7, world=None):
    w = world or SandboxWorld(size=64, seed=0)
    w.reset(Prompt(seed=seed), params=LevelParams(theme=theme, time=time, weather=weather, enemy_density=0.5))
    f = None
    for _ in range(steps):
        f = w.step(RIGHT)
    return f.astype(np.float32)


def luminance(f):
    return f @ np.array([0.299, 0.587, 0.114], np.float32)


def test_night_is_darker_and_dusk_is_redder():
    for theme in ("grassland", "desert", "snow", "lava_castle"):
        day, dusk, night = shot(theme, "day"), shot(theme, "dusk"), shot(theme, "night")
        assert luminance(night).mean() < 0.7 * luminance(day).mean(), theme
        red_blue = lambda f: f[..., 0].mean() / (f[..., 2].mean() + 1)  # noqa: E731
        assert red_blue(dusk) > red_blue(day), theme


def test_snow_adds_white_particles():
    clear, snow = shot(weather="clear"), shot(weather="snow")
    white = lambda f: int((f.min(-1) >= 245).sum())  # noqa: E731
    assert white(snow) >= white(clear) + 20


def test_rain_adds_streaks_and_darkens():
    rain, clear = shot(weather="rain"), shot(weather="clear")
    assert int((rain == np.array(RAIN_COLOR, np.float32)).all(-1).sum()) >= 20
    assert luminance(rain).mean() < luminance(clear).mean()


def test_fog_lowers_contrast():
    for theme in THEMES:
        assert luminance(shot(theme, weather="fog")).std() < 0.75 * luminance(shot(theme, weather="clear")).std(), theme


def test_themes_look_different():
    means = {t: shot(t).reshape(-1, 3).mean(0) for t in THEMES}
    for i, a in enumerate(THEMES):
        for b in THEMES[i + 1 :]:
            assert np.abs(means[a] - means[b]).max() > 10, (a, b)


def fire(event, theme="grassland", time="day", weather="clear", after=30):
    w = SandboxWorld(size=64, seed=0)
    w.reset(Prompt(seed=7), params=LevelParams(theme=theme, time=time, weather=weather, enemy_density=0.0, coin_density=0.0))
    for _ in range(10):
        w.step(RIGHT)
    before = w.step(NOOP).astype(np.float32)
    sk_before = w.sketch()
    f = w.step(NOOP, WorldEvent(type=event))
    first = f.astype(np.float32)
    for _ in range(after):
        f = w.step(NOOP)
    return w, before, first, f.astype(np.float32), sk_before


def count_color(img, color):
    return int((img == np.array(color)).all(-1).sum())


def test_events_change_the_scene_the_expected_way():
    w, before, first, after, _ = fire("night_falls")
    assert luminance(first).mean() < 0.7 * luminance(before).mean()  # at once
    w, before, first, after, _ = fire("day_breaks", time="night")
    assert luminance(first).mean() > 1.3 * luminance(before).mean()
    w, before, first, after, _ = fire("weather_snow")
    assert int((first.min(-1) >= 245).sum()) > int((before.min(-1) >= 245).sum()) + 20
    w, before, first, after, _ = fire("weather_fog")
    assert luminance(first).std() < 0.75 * luminance(before).std()
    w, before, first, after, _ = fire("weather_clear", weather="fog")
    assert luminance(first).std() > 1.3 * luminance(before).std()
    w, before, first, after, _ = fire("weather_rain")
    assert count_color(first, RAIN_COLOR) > 20


def test_flood_adds_water_near_the_bottom():
    w, before, first, after, _ = fire("flood", after=70)
    bluish = lambda f: int(((f[..., 2] > f[..., 0] + 40) & (f[..., 2] > f[..., 1])).sum())  # noqa: E731
    bottom = slice(64 * 3 // 4, 64)
    assert bluish(after[bottom]) > bluish(before[bottom]) + 64 * 8
    assert bluish(after[: 64 // 2]) <= bluish(before[: 64 // 2]) + 8  # the top half stays dry
    assert w.s.water_y == pytest.approx(16 - PHYS.flood_depth)
    assert not np.array_equal(first[-1], before[-1])  # the event frame already shows it (the data labels it there)


def test_spawn_enemy_and_coins_add_them_in_view():
    w, before, first, after, sk_before = fire("spawn_enemy", after=2)
    enemy_px = count_color(w.sketch(), SKETCH_PALETTE["enemy"]) - count_color(sk_before, SKETCH_PALETTE["enemy"])
    assert enemy_px >= 16
    body = THEME_COLORS["grassland"]["enemy"]
    assert count_color(after.astype(np.uint8), body) > count_color(before.astype(np.uint8), body)
    w, before, first, after, sk_before = fire("spawn_coins", after=0)
    assert count_color(w.sketch(), SKETCH_PALETTE["coin"]) >= count_color(sk_before, SKETCH_PALETTE["coin"]) + 3 * 16
    assert count_color(first.astype(np.uint8), (255, 214, 40)) > count_color(before.astype(np.uint8), (255, 214, 40))


def test_fired_events_are_recorded_with_frame_and_caption():
    w = SandboxWorld(size=64, seed=0)
    w.reset(Prompt(seed=1))
    w.step(NOOP)
    w.step(NOOP, WorldEvent(text="make it snow"))
    w.step(NOOP, WorldEvent(type="flood"))
    assert w.events_fired == [
        {"type": "weather_snow", "frame": 2, "caption": "it starts to snow"},
        {"type": "flood", "frame": 3, "caption": "the water rises"},
    ]
    assert "in falling snow" in w.caption  # the caption follows the scene
    assert w.describe_event(WorldEvent(text="night falls")) == "night falls"
    with pytest.raises(ValueError, match="no sandbox event matches"):
        w.describe_event(WorldEvent(text="do a barrel roll"))
    assert set(EVENT_CAPTIONS) == set(EVENT_TYPES) and len(EVENT_TYPES) >= 10


@pytest.mark.parametrize("text,etype", [
    ("make it snow", "weather_snow"), ("it starts to rain", "weather_rain"), ("fog rolls in", "weather_fog"),
    ("stop the rain", "weather_clear"), ("clear skies please", "weather_clear"), ("night falls", "night_falls"),
    ("the sun sets", "dusk"), ("dawn breaks", "day_breaks"), ("spawn an enemy", "spawn_enemy"),
    ("add some coins", "spawn_coins"), ("the water rises", "flood"), ("FLOOD the level!", "flood"),
])
def test_event_text_matching(text, etype):
    assert match_event_text(text) == etype


def test_captions_follow_params():
    p = LevelParams(theme="snow", time="night", weather="clear", coin_density=1.0, num_enemies=2)
    assert caption_for(p) == "a snowy night level with many coins and two patrolling enemies"
    p = LevelParams(theme="lava_castle", time="dusk", weather="fog", coin_density=0.1, num_enemies=0)
    assert caption_for(p) == "a lava castle dusk level in thick fog with few coins and no enemies"
    w = SandboxWorld(size=64, seed=0)
    for seed in range(8):
        w.reset(Prompt(seed=seed))
        p = w.params
        assert p.time in w.caption and p.theme.split("_")[0] in w.caption.replace("snowy", "snow").replace("grassy", "grassland")


def test_text_prompts_set_theme_time_weather_and_amounts():
    rng = np.random.default_rng(0)
    p = parse_prompt_text("a snowy night level with many coins", rng)
    assert (p.theme, p.time, p.coin_density) == ("snow", "night", 1.0)
    p = parse_prompt_text("Desert at sunset in the rain with no enemies", rng)
    assert (p.theme, p.time, p.weather, p.enemy_count) == ("desert", "dusk", "rain", 0)
    p = parse_prompt_text("a foggy cave with two enemies and few coins", rng)
    assert (p.theme, p.weather, p.enemy_count, p.coin_density) == ("cave", "fog", 2, 0.15)
    p = parse_prompt_text("lava castle, falling snow", rng)
    assert (p.theme, p.weather) == ("lava_castle", "snow")
    w = SandboxWorld(size=64, seed=0)
    w.reset(Prompt(text="a snowy night level with many coins and two patrolling enemies", seed=5))
    assert w.caption == "a snowy night level" + w.caption.split("level", 1)[1] and "many coins" in w.caption
    assert len(w.level.enemies) == 2
    # the seed picks what the text leaves open
    seen = {SandboxWorld(size=64, seed=0).reset(Prompt(text="a grassy level", seed=s)) is not None and parse_prompt_text("a grassy level", np.random.default_rng(s)).time for s in range(30)}
    assert seen == set(TIMES)


def test_every_theme_time_weather_combination_renders():
    w = SandboxWorld(size=64, seed=0)
    for theme in THEMES:
        for time in TIMES:
            for weather in WEATHERS:
                f = w.reset(Prompt(seed=1), params=LevelParams(theme=theme, time=time, weather=weather))
                assert f.std() > 5, (theme, time, weather)


def test_photo_like_image_prompt_is_refused_clearly():
    photo = (np.random.default_rng(0).random((48, 48, 3)) * 255).astype(np.uint8)
    with pytest.raises(ValueError, match="cannot start from a photo-like image; use a world-model checkpoint or a sketch"):
        SandboxWorld(size=64).reset(Prompt(image=photo))
