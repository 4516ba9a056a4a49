"""The eval's pixel checks must score the real sandbox (nearly) perfectly before they may score a model."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from bridge.backend import Prompt, WorldEvent
from bridge.prompts import checks
from bridge.prompts.evaluate import EvalOptions, eval_events, evaluate, event_scene
from bridge.worlds.levels import random_params
from bridge.worlds.sandbox import SandboxWorld


@pytest.fixture(scope="module")
def checker():
    return checks.default_checker()  # the one eval-prompts uses (about 4 s to fit)


def test_attribute_checks_score_heldout_sandbox_frames(checker):
    acc = checks.validate(checker, seeds=checks.HELDOUT_SEEDS[:1], frame_steps=(12,))
    assert acc["theme"] >= 0.95 and acc["time"] >= 0.95 and acc["weather"] >= 0.95, acc


def test_checks_see_the_difference_an_event_makes(checker):
    w = SandboxWorld(64)
    w.reset(Prompt(seed=5), params=random_params(np.random.default_rng(5), theme="grassland", time="day", weather="clear"))
    before = w.step(0)
    assert checker.classify([before])[0] == {"theme": "grassland", "time": "day", "weather": "clear"}
    after = [w.step(0, WorldEvent(type="night_falls"))] + [w.step(0) for _ in range(3)]
    assert all(c["time"] == "night" for c in checker.classify(after))
    assert checks.event_detected("night_falls", [before] + after, checker, "grassland", "day")
    assert not checks.event_detected("weather_snow", [before] + after, checker, "grassland", "day")


def test_snow_and_rain_are_read_only_where_their_particles_show(checker):
    w = SandboxWorld(64)
    for weather, key in (("snow", "snow_dots"), ("rain", "rain_streaks")):
        w.reset(Prompt(seed=3), params=random_params(np.random.default_rng(3), theme="grassland", time="day", weather=weather))
        sharp = w.step(0)
        soft = checks.blur(sharp)  # no particle survives a 3x3 blur, as none survives the tiny tokenizer
        assert checks.texture_features(sharp)[key] >= checks.PARTICLE_GATE[weather][1] > checks.texture_features(soft)[key]
        assert checker.classify([sharp])[0]["weather"] == weather
        assert checker.classify([soft])[0]["weather"] != weather
        checker.gate = False
        try:
            assert checker.classify([soft])[0]["weather"] == weather  # colour alone would have guessed it
        finally:
            checker.gate = True


def test_an_event_is_a_change_from_the_frame_before_it_fired(checker):
    w = SandboxWorld(64)
    w.reset(Prompt(seed=5), params=random_params(np.random.default_rng(5), theme="grassland", time="night", weather="clear"))
    night = [w.step(0) for _ in range(6)]
    assert all(c["time"] == "night" for c in checker.classify(night))
    assert checks.event_signal("night_falls", night, checker, "grassland", "night") == [False] * 5  # it was night already
    assert not checks.event_detected("night_falls", night, checker, "grassland", "night")


def test_counting_detectors():
    w = SandboxWorld(64)
    w.reset(Prompt(seed=9), params=random_params(np.random.default_rng(9), theme="desert", time="day", weather="clear",
                                                  enemy_density=0.0))
    f0 = w.step(0)
    e0, c0, w0 = checks.enemy_pixels(f0, "desert", "day"), checks.coin_pixels(f0), checks.water_score(f0)
    f1 = w.step(0, WorldEvent(type="spawn_enemy"))
    assert checks.enemy_pixels(f1, "desert", "day") - e0 >= checks.THRESHOLDS["spawn_enemy"]
    f2 = w.step(0, WorldEvent(type="spawn_coins"))
    assert checks.coin_pixels(f2) - c0 >= checks.THRESHOLDS["spawn_coins"]
    w.step(0, WorldEvent(type="flood"))
    for _ in range(24):
        f3 = w.step(0)
    assert checks.water_score(f3) - w0 >= checks.THRESHOLDS["flood"]


def test_event_eval_on_the_sandbox_is_perfect_and_never_fires_falsely(checker):
    from tqdm import tqdm

    opts = EvalOptions(trials=1, warmup=2)
    with tqdm(disable=True) as bar:
        res = eval_events(SandboxWorld(64), {"sandbox": checker}, opts, action=0, bar=bar)["sandbox"]
    assert res["event_success"] == 1.0, res["event_success_by_type"]
    assert res["false_event_rate"] == 0.0, res["false_event_rate_by_type"]


def test_event_scenes_make_each_event_visible():
    for k in range(6):
        assert event_scene("day_breaks", k)["time"] != "day"
        assert event_scene("weather_clear", k)["weather"] != "clear"
        assert event_scene("night_falls", k)["time"] == "day"


def test_text_prompt_eval_keys_and_cli_json(checker, monkeypatch):
    res = evaluate(SandboxWorld(64), checker, EvalOptions(prompts=6, sketches=2, trials=1), progress=False,
                   sections=("text", "sketch"))
    assert set(res["prompt_attribute"]) == {"theme", "time", "weather"}
    assert 0.0 <= res["prompt_attribute_accuracy"] <= 1.0 and res["prompt_attribute"]["time"]["accuracy"] == 1.0
    assert res["sketch"]["sketch_supported"] and res["sketch"]["sketch_psnr"] > res["sketch"]["sketch_psnr_other_layout"]
    from bridge.prompts import cli

    monkeypatch.setattr(checks, "default_checker", lambda **kw: checker)
    out = CliRunner().invoke(cli.eval_prompts, ["--backend", "sandbox", "--json", "--only", "events", "--trials", "1",
                                                "--quiet"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    for key in ("event_success", "event_success_paraphrase", "false_event_rate", "event_success_by_type"):
        assert key in data
    assert data["backend"]["kind"] == "sandbox"
    bad = CliRunner().invoke(cli.eval_prompts, ["--json", "--checkpoint", "x", "--backend", "sandbox"])
    assert bad.exit_code != 0 and "not both" in bad.output


def test_eval_prompts_without_options_scores_the_default_world(monkeypatch):
    """As the README shows it: no --checkpoint and no --backend is the embedded default world, as serve and demo."""
    import bridge.model.world as world
    from bridge.prompts import cli

    asked = []

    def load_world(path=None, **kw):
        asked.append(path)
        raise ValueError("stop here: the default world was asked for")

    monkeypatch.setattr(world, "load_world", load_world)
    out = CliRunner().invoke(cli.eval_prompts, ["--json", "--quiet"])
    assert asked == [None] and "stop here" in out.output, out.output


@pytest.mark.parametrize("time", ["day", "dusk"])
def test_enemy_count_is_not_fooled_by_grassland_dirt_scrolling_past(checker, time):
    """Grassland's dirt is within reach of its enemy's brown: walking scrolls hundreds of such pixels through the
    frame, which must not read as an enemy appearing, while a real spawn on the same walk still must."""
    w = SandboxWorld(64)
    w.reset(Prompt(seed=3), params=random_params(np.random.default_rng(3), theme="grassland", time=time, weather="clear",
                                                  enemy_density=0.0))
    for _ in range(4):
        w.step(2)
    snap = w.get_state()
    walk = [w.step(2) for _ in range(checks.WINDOW + 1)]
    w.set_state(snap)
    spawn = walk[:1] + [w.step(2, WorldEvent(type="spawn_enemy") if t == 0 else None) for t in range(checks.WINDOW)]
    assert not checks.event_detected("spawn_enemy", walk, checker, "grassland", time)
    assert checks.event_detected("spawn_enemy", spawn, checker, "grassland", time)
