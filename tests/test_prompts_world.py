"""The world-model backend end to end with prompts: text/sketch reset, typed and free-text events held for `hold`
frames with guidance, branching with a held event, and frame edits through the KV caches."""

import numpy as np
import pytest
import torch

from bridge.backend import Prompt, WorldEvent
from bridge.model.world import load_world
from bridge.worlds.sketch import SKETCH_PALETTE
from test_prompts_helpers import solid_rgba

torch.set_num_threads(1)


@pytest.fixture()
def world_dir(prompt_world_root):
    return prompt_world_root / "pw"


def _roll(w, n, events=None):
    events = events or {}
    return np.stack([w.step(1, events.get(t)) for t in range(n)])


def test_text_and_sketch_prompts_start_a_world(world_dir):
    w = load_world(world_dir, device="cpu")
    f = w.reset(Prompt(text="a snowy night level", seed=1))
    assert f.shape == (64, 64, 3) and f.dtype == np.uint8
    sk = np.full((64, 64, 3), SKETCH_PALETTE["sky"], np.uint8)
    sk[48:] = SKETCH_PALETTE["ground"]
    assert w.reset(Prompt(sketch=sk, seed=1)).shape == (64, 64, 3)
    assert _roll(w, 2).shape == (2, 64, 64, 3)
    a = w.reset(Prompt(text="a desert day level", seed=3))
    assert np.array_equal(w.reset(Prompt(text="a desert day level", seed=3)), a)  # seeded: reproducible


def test_absent_and_empty_events_equal_the_unconditioned_world(world_dir):
    w = load_world(world_dir, device="cpu")
    w.reset(Prompt(seed=0))
    s = w.get_state()
    plain = _roll(w, 3)
    w.set_state(s)
    assert np.array_equal(_roll(w, 3, {0: WorldEvent()}), plain)


def test_events_condition_hold_frames_and_survive_branching(world_dir):
    w = load_world(world_dir, device="cpu")
    assert w.prompts.track.hold == 3 and w.settings["event_cfg"] == 3.0
    w.reset(Prompt(seed=0))
    s = w.get_state()
    plain = _roll(w, 5)
    for event in (WorldEvent(type="weather_snow"), WorldEvent(text="let it snow")):
        w.set_state(s)
        ev = _roll(w, 5, {0: event})
        assert not np.array_equal(ev, plain)
    # the slot is used on exactly `hold` frames: the same as sending the event three frames running would do
    w.set_state(s)
    w.step(1, WorldEvent(type="night_falls"))
    assert w.prompts.track.left == 2
    mid = w.get_state()
    after = _roll(w, 3)
    assert w.prompts.track.left == 0
    w.set_state(mid)  # branching restores the held event too
    assert w.prompts.track.left == 2 and np.array_equal(_roll(w, 3), after)


def test_event_guidance_is_a_setting(world_dir):
    w = load_world(world_dir, device="cpu")
    w.reset(Prompt(seed=0))
    s = w.get_state()
    a = _roll(w, 2, {0: WorldEvent(type="flood")})
    w.configure(event_cfg=8.0)
    w.set_state(s)
    b = _roll(w, 2, {0: WorldEvent(type="flood")})
    assert not np.array_equal(a, b)
    w.configure(event_cfg=1.0)
    w.set_state(s)
    _roll(w, 1, {0: WorldEvent(type="flood")})  # guidance off: one pass, still conditioned
    with pytest.raises(ValueError, match="event_cfg"):
        w.configure(event_cfg=-1)


def test_an_event_at_event_cfg_0_is_refused_not_captioned_and_cancelled(world_dir):
    """Guidance 0 makes the frame from the "no event" pass alone: the event would be captioned but never shown."""
    w = load_world(world_dir, device="cpu")
    w.configure(event_cfg=0.0, cfg=1.0)
    w.reset(Prompt(seed=0))
    for refuse in (lambda: w.describe_event(WorldEvent(type="flood")), lambda: w.step(0, WorldEvent(type="flood"))):
        with pytest.raises(ValueError, match=r"^event_cfg is 0, which cancels every event: set event_cfg above 0"):
            refuse()
    w.step(0)  # a frame without an event is made as ever
    w.configure(event_cfg=0.5)
    assert w.describe_event(WorldEvent(type="flood")) == "the water rises"


def test_kv_cache_rewind_equals_committing_the_replacement_directly(world_dir):
    from bridge.model.genie import WorldModel

    model, _, _ = WorldModel.load(world_dir)
    dyn = model.dynamics
    g = torch.Generator().manual_seed(0)
    f0, fa, fb, probe = (torch.randint(0, model.tokenizer.vocab, (1, 1, 16), generator=g) for _ in range(4))
    act = torch.zeros(1, 1, dtype=torch.long)
    with torch.no_grad():
        c1, c2 = dyn.new_cache(), dyn.new_cache()
        for c, frames in ((c1, (f0, fa)), (c2, (f0,))):
            for f in frames:
                dyn(f, act, None, c, append=True)
        c1.rewind()
        dyn(fb, act, None, c1, append=True)
        dyn(fb, act, None, c2, append=True)
        assert c1.pos == c2.pos == 2
        assert torch.allclose(dyn(probe, act, None, c1, append=False), dyn(probe, act, None, c2, append=False), atol=1e-5)
    with pytest.raises(RuntimeError, match="nothing to rewind"):
        dyn.new_cache().rewind()


def test_edit_frame_pastes_and_the_world_continues_from_it(world_dir):
    w = load_world(world_dir, device="cpu")
    with pytest.raises(RuntimeError, match="reset"):
        w.edit_frame(solid_rgba(8, 8), 0, 0)
    w.reset(Prompt(seed=0))
    w.step(1)
    s = w.get_state()
    cont = _roll(w, 2)
    w.set_state(s)
    edited = w.edit_frame(solid_rgba(24, 24, (255, 0, 0)), 20, 20)
    assert edited.shape == (64, 64, 3) and np.array_equal(w.frame, edited)
    assert w._dyn.pos == s["dyn"].pos  # the edit replaced the last frame, it did not add one
    after = _roll(w, 2)
    assert not np.array_equal(after, cont)
    with pytest.raises(ValueError, match="RGBA"):
        w.edit_frame(np.zeros((4, 4), np.uint8), 0, 0)


def test_eval_prompts_scores_a_world_model_with_every_section(world_dir):
    from bridge.prompts.checks import HELDOUT_SEEDS, REFERENCE_SEEDS, default_checker
    from bridge.prompts.evaluate import EvalOptions, evaluate

    w = load_world(world_dir, device="cpu")
    opts = EvalOptions(seeds=HELDOUT_SEEDS[:1], reference_seeds=REFERENCE_SEEDS[:1], prompts=4, sketches=2, trials=1,
                       warmup=2, window=6, event_types=["night_falls", "flood"])
    res = evaluate(w, default_checker(), opts, progress=False, calibrate=True)
    assert res["backend"]["kind"] == "world_model" and res["settings"]["event_cfg"] == 3.0
    for key in ("prompt_attribute_accuracy", "event_success", "event_success_paraphrase", "false_event_rate"):
        assert 0.0 <= res[key] <= 1.0, key
        assert 0.0 <= res["tokenizer_calibrated"][key] <= 1.0, key
    assert set(res["event_success_by_type"]) == {"night_falls", "flood"}
    assert res["sketch"]["sketch_supported"] and 0 <= res["still_action"] < w.num_latent_actions
    assert set(res["checks_on_reconstructions"]) == {"theme", "time", "weather"}
    particles = res["particles_on_reconstructions"]
    assert particles["snow"]["real"]["snow_dots"] > 3 * particles["clear"]["real"]["snow_dots"]  # the game's snowfall
    assert particles["rain"]["real"]["rain_streaks"] > 3 * particles["clear"]["real"]["rain_streaks"]
    assert all(0 <= v <= 1 for w in particles.values() for side in w.values() for v in side.values())
    player = res["player_on_reconstructions"]
    assert player["frames"] == 5 * len(opts.seeds) and 4 < player["player_pixels"] < 64 and 0 < player["contrast_kept"] < 2
    ceiling = res["events_on_reconstructions"]
    assert set(ceiling["event_success_by_type"]) == {"night_falls", "flood"} and 0 <= ceiling["false_event_rate"] <= 1
    reading = res["paraphrase_reading"]  # each held-out paraphrase: read as a wording of its event, another's, or as is
    assert reading["n"] == 4 and set(reading["by_type"]) == {"night_falls", "flood"}
    assert abs(reading["read_as_right_event"] + reading["read_as_other_event"] + reading["kept_own_vector"] - 1) < 1e-9
    wordings = {x for ws in w.prompts.events.wordings.values() for x in ws}
    assert all(x is None or x in wordings for xs in reading["by_type"].values() for x in xs)
    from bridge.worlds.sandbox import SandboxWorld

    game = SandboxWorld(size=64)
    clip = [game.reset(Prompt(seed=5))] + [game.step(3) for _ in range(2)]  # real frames (a flat one is a sketch)
    back = w.reconstruct(clip)
    assert len(back) == 3 and back[0].shape == (64, 64, 3) and back[0].dtype == np.uint8
    assert np.array_equal(back[0], w.reset(Prompt(seed=0, image=clip[0])))  # the same round trip as an image prompt
    assert np.array_equal(w.reconstruct(clip[:2])[1], back[1]) and not np.array_equal(back[1], back[2])  # causal
    plain = load_world(world_dir.parent / "world", device="cpu")  # no prompt training: said so, not scored
    res = evaluate(plain, default_checker(), opts, progress=False, sections=("text", "sketch", "events"))
    assert res["text_prompts_supported"] is False and res["sketch"] == {"sketch_supported": False}
    assert res["events_supported"] is False and res["event_success"] is None and "paraphrase_reading" not in res


class _Lens:
    """A stand-in world whose tokenizer round trip is a given function (the ceiling logic, without a model)."""

    kind, height = "world_model", 64

    def __init__(self, fn):
        self.reconstruct = lambda frames: [fn(f) for f in frames]


def test_events_on_reconstructions_is_the_game_through_the_tokenizer():
    from bridge.prompts.checks import HELDOUT_SEEDS, default_checker
    from bridge.prompts.evaluate import EvalOptions, events_on_reconstructions

    opts = EvalOptions(seeds=HELDOUT_SEEDS[:2], trials=2, event_types=["night_falls", "flood", "dusk"])
    perfect = events_on_reconstructions(_Lens(lambda f: f), default_checker(), opts)
    assert perfect["event_success"] == 1.0 and perfect["false_event_rate"] == 0.0  # the real game passes every check
    blind = events_on_reconstructions(_Lens(lambda f: np.full_like(f, 128)), default_checker(), opts)
    assert blind["event_success"] == 0.0  # a tokenizer that loses everything caps every event at 0
    assert events_on_reconstructions(type("S", (), {"kind": "sandbox"})(), default_checker(), opts) is None


def test_player_contrast_is_one_for_a_perfect_tokenizer_and_zero_for_one_that_erases_the_player():
    from bridge.prompts.evaluate import EvalOptions, player_on_reconstructions

    class Tokenizer:
        kind, height = "fake", 64

        def __init__(self, draw):
            self.reconstruct = lambda frames: [draw(f) for f in frames]

    opts = EvalOptions(seeds=(101,))
    perfect = player_on_reconstructions(Tokenizer(lambda f: f), opts)
    assert perfect["frames"] == 5 and perfect["player_pixels"] > 4 and perfect["contrast_kept"] == 1.0
    flat = player_on_reconstructions(Tokenizer(lambda f: np.full_like(f, f.mean(axis=(0, 1)).astype(np.uint8))), opts)
    assert flat["contrast_kept"] < 0.05  # a blur the size of the frame keeps almost nothing of a 17-pixel sprite


def test_an_image_prompt_from_the_wire_is_resized_without_a_pytorch_warning():
    """Every image prompt through the host printed PyTorch's "The given NumPy array is not writable" (the decoded PNG
    is read-only); PyTorch warns once a process, so a fresh one is asked."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import io, warnings; import numpy as np; from PIL import Image\n"
            "from bridge.host.pixels import decode_prompt_image; from bridge.model.world import resize_image\n"
            "buf = io.BytesIO(); Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(buf, 'PNG')\n"
            "img = decode_prompt_image(buf.getvalue()); assert not img.flags.writeable\n"
            "warnings.simplefilter('error')\n"
            "x = resize_image(img, 8, 8); assert x.shape == (8, 8, 3) and abs(float(x[0, 0, 0]) - 90 / 255) < 1e-6\n"
            "print('ok')")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
    assert "not writable" not in res.stderr
