"""load_world: the WorldBackend contract, determinism, branching via get/set_state, settings and clear errors."""

import numpy as np
import pytest
import torch

import bridge
from bridge.backend import Prompt, WorldEvent
from bridge.model.checkpoint import CheckpointError
from bridge.model.world import load_world
from test_model_data import roll, save_random_world

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    return save_random_world(tmp_path_factory.mktemp("w") / "world")


def test_backend_contract_and_name(world_dir):
    w = bridge.load_world(world_dir, device="cpu")
    assert w.kind == "world_model" and "world model micro" in w.name and "step 0" in w.name
    assert w.action_names == ["latent_0", "latent_1", "latent_2", "latent_3"] and w.num_latent_actions == 4
    assert w.event_types == [] and (w.height, w.width) == (16, 16)
    f = w.reset(Prompt(seed=1))
    assert f.shape == (16, 16, 3) and f.dtype == np.uint8
    g = w.step(2)
    assert g.shape == (16, 16, 3) and g.dtype == np.uint8
    assert set(w.last_timings) == {"dynamics", "decode"} and all(v > 0 for v in w.last_timings.values())


def test_same_seed_same_world_different_seed_differs(world_dir):
    w = load_world(world_dir, device="cpu")
    a = np.concatenate([w.reset(Prompt(seed=3))[None], roll(w, [0, 1, 2, 3, 1])])
    b = np.concatenate([w.reset(Prompt(seed=3))[None], roll(w, [0, 1, 2, 3, 1])])
    c = np.concatenate([w.reset(Prompt(seed=4))[None], roll(w, [0, 1, 2, 3, 1])])
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_get_set_state_branches_deterministically(world_dir):
    w = load_world(world_dir, device="cpu")
    w.reset(Prompt(seed=0))
    roll(w, [1, 2])
    state = w.get_state()
    first = roll(w, [3, 0, 1])
    w.step(2)  # wander off
    w.set_state(state)
    assert np.array_equal(roll(w, [3, 0, 1]), first)
    w.set_state(state)
    other = roll(w, [0, 0, 0])
    assert not np.array_equal(other, first)  # a different branch from the same point
    with pytest.raises(ValueError, match="get_state"):
        w.set_state({"something": 1})


def test_image_prompt_is_resized_and_tokenized(world_dir):
    w = load_world(world_dir, device="cpu")
    img = np.zeros((50, 70, 3), np.uint8)
    img[:, :35] = 255
    f = w.reset(Prompt(image=img, seed=0))
    assert f.shape == (16, 16, 3)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        w.reset(Prompt(image=np.zeros((8, 8), np.float32)))
    with pytest.warns(UserWarning, match="no text conditioning"):
        w.reset(Prompt(text="a snowy castle", seed=1))


def test_configure_validates_and_changes_sampling(world_dir):
    w = load_world(world_dir, device="cpu")
    s = w.configure()
    assert s == {"steps": 4, "temperature": 1.0, "cfg": 1.0, "unmask": "random", "top_p": 1.0}
    assert w.configure(steps=2, temperature=0.0, cfg=2.0, unmask="confidence")["cfg"] == 2.0
    w.reset(Prompt(seed=0))
    a = roll(w, [1, 1])
    w.reset(Prompt(seed=4))  # same bank frame (4 % 4 == 0), other RNG seed: greedy decoding does not use the RNG
    assert np.array_equal(roll(w, [1, 1]), a)
    w.configure(temperature=1.5, top_p=1e-6)  # a nucleus of one token: the RNG no longer matters, as with greedy
    w.reset(Prompt(seed=0))
    b = roll(w, [1, 1])
    w.reset(Prompt(seed=4))
    assert np.array_equal(roll(w, [1, 1]), b)
    assert w.configure(top_p=0.5)["top_p"] == 0.5
    for bad in ({"steps": 0}, {"steps": 999}, {"temperature": -1}, {"cfg": -0.5}, {"unmask": "best"}, {"top_p": 0},
                {"top_p": 1.5}, {"temperature": float("nan")}, {"cfg": float("inf")}, {"steps": 2.9}, {"steps": True},
                {"temperature": 0.2, "cfg": -1}):  # the last: a refused value changes none of the others
        before = w.configure()
        with pytest.raises(ValueError):
            w.configure(**bad)
        assert w.configure() == before


def test_a_refused_reset_or_batch_leaves_every_world_as_it_was(world_dir):
    w = load_world(world_dir, device="cpu")
    w.reset(Prompt(seed=0))
    w.step(1)
    state = w.get_state()
    with pytest.raises(ValueError, match="image"):
        w.reset(Prompt(seed=99, image=np.zeros((8, 8), np.uint8)))  # grey, no colour channels
    assert w.seed == 0
    went_on = roll(w, [1, 2, 3])
    w.set_state(state)
    assert np.array_equal(roll(w, [1, 2, 3]), went_on)  # the same random stream: the failed reset touched nothing
    a, b = w.spawn(), w.spawn()
    for x in (a, b):
        x.reset(Prompt(seed=1))
    with pytest.raises(ValueError, match="unknown event type"):
        type(w).step_batch([a, b], [0, 0], [None, WorldEvent(type="no_such_event")])
    assert a.get_state()["dyn"].pos == b.get_state()["dyn"].pos  # neither moved: the batch was refused as one


def test_bad_actions_events_and_order_are_clear_errors(world_dir):
    w = load_world(world_dir, device="cpu")
    with pytest.raises(RuntimeError, match="reset"):
        w.step(0)
    w.reset(Prompt(seed=0))
    for bad in (4, -1, 1.5, "left"):
        with pytest.raises(ValueError, match=r"action must be an int in \[0, 4\)"):
            w.step(bad)
    with pytest.raises(ValueError, match="unknown event type 'weather_snow'.*not trained with events"):
        w.step(0, WorldEvent(type="weather_snow"))
    with pytest.raises(ValueError, match="no text conditioning"):
        w.step(0, WorldEvent(text="make it rain"))
    assert w.step(0, WorldEvent()).shape == (16, 16, 3)  # an empty event is no event


def test_trained_event_types_condition_the_next_frame(tmp_path):
    from bridge.model.checkpoint import load_model, save_model
    from bridge.model.genie import WorldModel

    path = save_random_world(tmp_path / "ev", cond_dim=8)
    cfg, tensors, card, _ = load_model(path)
    cfg.event_types = ["weather_snow"]
    model = WorldModel(cfg, bank_size=4)
    model.load_state_dict({**tensors, "event_embed": torch.randn(1, 8) * 5}, strict=True)
    model.dynamics.cond_proj.weight.data.normal_(0, 1.0)
    save_model(path, "world", cfg, model.state_dict(), card, 0)
    w = load_world(path, device="cpu")
    assert w.event_types == ["weather_snow"]
    w.reset(Prompt(seed=0))
    s = w.get_state()
    plain = w.step(1)
    w.set_state(s)
    snowy = w.step(1, WorldEvent(type="weather_snow"))
    assert not np.array_equal(plain, snowy)


def test_missing_default_and_missing_path_name_the_fix(tmp_path, monkeypatch):
    import bridge.model.world as world

    monkeypatch.setattr(world, "DEFAULT_WORLD", tmp_path / "default_world")
    with pytest.raises(CheckpointError, match="no embedded default world.*worldbridge train dynamics"):
        load_world()
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_world(tmp_path / "nope")


@pytest.mark.gpu
def test_cuda_rollout_matches_contract_and_is_deterministic(world_dir):
    w = load_world(world_dir, device="cuda")
    assert w.autocast
    a = np.concatenate([w.reset(Prompt(seed=3))[None], roll(w, [0, 1, 2])])
    b = np.concatenate([w.reset(Prompt(seed=3))[None], roll(w, [0, 1, 2])])
    assert np.array_equal(a, b)
    wc = load_world(world_dir, device="cuda", compile="reduce-overhead")
    assert wc.reset(Prompt(seed=3)).shape == (16, 16, 3) and wc.step(1).shape == (16, 16, 3)


def test_config_json_round_trip_keeps_tuples_so_loaded_equals_saved():
    import json
    import dataclasses
    from bridge.model.config import WorldConfig
    cfg = WorldConfig()
    cfg.lam = dataclasses.replace(cfg.lam, motion_shifts=(2, 4))
    back = WorldConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and back.lam.motion_shifts == (2, 4) and isinstance(back.tokenizer.fsq_levels, tuple)
    back.lam = dataclasses.replace(back.lam, motion_shifts=(2, 3))
    assert back != cfg


@pytest.mark.parametrize("quantizer", ["vq", "fsq"])
def test_vocab_and_latent_actions_count_the_codes_the_built_quantizers_have(quantizer):
    """The dynamics' embedding tables are sized by these counts: an FSQ's are its levels' product, not `codebook`."""
    import dataclasses
    from bridge.model.genie import WorldModel
    from bridge.model.presets import get_preset
    cfg = get_preset("micro")
    cfg.tokenizer = dataclasses.replace(cfg.tokenizer, quantizer=quantizer, fsq_levels=(4, 3, 2))
    cfg.lam = dataclasses.replace(cfg.lam, quantizer=quantizer, fsq_levels=(2, 3))
    model = WorldModel(cfg)
    assert (cfg.vocab, cfg.num_actions) == (model.tokenizer.quant.num_codes, model.lam.quant.num_codes)
    assert (cfg.vocab, cfg.num_actions) == ((24, 6) if quantizer == "fsq" else (64, 4))
    assert len(cfg.latent_action_names()) == cfg.num_actions


@pytest.mark.parametrize("part, key, value", [("dynamics", "dim", "x"), ("tokenizer", "codebook", 1.5),
                                              ("dynamics", "temperature", "hot"), ("lam", "code_norm", 1),
                                              (None, "height", True)])
def test_a_config_value_of_the_wrong_type_names_its_field(part, key, value):
    import json
    from bridge.model.config import WorldConfig
    d = json.loads(json.dumps(WorldConfig().to_dict()))
    (d[part] if part else d)[key] = value
    with pytest.raises(ValueError, match=rf"\.{key} must be \w+, got {value!r}: fix config.json"):
        WorldConfig.from_dict(d)
    (d[part] if part else d)[key] = WorldConfig().to_dict()[part][key] if part else WorldConfig().height
    assert WorldConfig.from_dict(d) == WorldConfig()  # the right type reads back


def test_an_unknown_device_is_named_with_the_choices():
    from bridge.model.world import pick_device
    with pytest.raises(ValueError, match="unknown device 'bogus': use cpu, cuda or cuda:N"):
        pick_device("bogus")
