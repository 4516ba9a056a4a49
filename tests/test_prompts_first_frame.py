"""Text/sketch -> first frame: the sketch class map, the MaskGIT model, its files, and a micro training run."""

import json

import numpy as np
import pytest
import torch

from bridge.model.checkpoint import CheckpointError
from bridge.prompts.first_frame import (FirstFrameConfig, FirstFrameModel, load_first_frame, save_first_frame,
                                        sketch_class_map)
from bridge.prompts.train import (PromptTrainOptions, caption_variant, first_frame_samples, pre_event_indices,
                                  train_first_frame)
from bridge.worlds.sketch import SKETCH_PALETTE
from test_prompts_helpers import sandbox_dataset, save_micro_world

torch.set_num_threads(1)
NAMES = list(SKETCH_PALETTE)


def test_sketch_class_map_pools_palette_colours_per_token_cell():
    sk = np.zeros((64, 64, 3), np.uint8)
    sk[:] = SKETCH_PALETTE["sky"]
    sk[48:] = SKETCH_PALETTE["ground"]  # bottom quarter
    sk[40:48, 0:8] = SKETCH_PALETTE["enemy"]
    m = sketch_class_map(sk, (4, 4))
    assert m.shape == (16, len(NAMES)) and np.allclose(m.sum(1), 1)
    assert m[0, NAMES.index("sky")] == 1.0 and m[15, NAMES.index("ground")] == 1.0
    assert m[8, NAMES.index("enemy")] == pytest.approx(64 / 256)  # an 8x8 enemy in a 16x16 cell
    assert np.allclose(sketch_class_map(np.repeat(np.repeat(sk, 2, 0), 2, 1), (4, 4)), m)  # any resolution
    with pytest.raises(ValueError, match="sketch palette"):
        sketch_class_map(np.zeros((64, 64), np.uint8), (4, 4))


def _model(vocab=64, grid=(4, 4)):
    torch.manual_seed(0)
    return FirstFrameModel(FirstFrameConfig(dim=32, depth=2, heads=2, steps=4, text_dim=8), vocab, grid)


def test_model_learns_text_to_tokens_and_generates_valid_maps():
    m = _model()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 64, (2, 16), generator=g)
    text = torch.nn.functional.normalize(torch.randn(2, 8, generator=g), dim=-1)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = m.training_loss(tokens, text, None)["loss"]
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.3 * first
    m.eval()
    out = m.generate(text, temperature=0.0, generator=torch.Generator().manual_seed(1))
    assert out.shape == (2, 16) and out.min() >= 0 and out.max() < 64
    assert (out == tokens).float().mean() > 0.8  # each prompt brings back its own map
    sk = torch.rand(1, 16, len(NAMES))
    assert m.generate(None, sk, cfg=1.0).shape == (1, 16)  # sketch only, and unconditional
    assert m.generate(None, None, batch=3).shape == (3, 16)


def test_null_condition_is_used_when_dropped():
    m = _model().eval()
    tok = torch.full((1, 16), m.mask_id)
    text = torch.randn(1, 8)
    off = torch.zeros(1, dtype=torch.bool)
    assert torch.allclose(m(tok, text, None, off), m(tok, None, None), atol=1e-6)
    assert not torch.allclose(m(tok, text, None), m(tok, None, None), atol=1e-4)


def test_files_round_trip_and_tokenizer_mismatch_is_refused(tmp_path):
    m = _model()
    save_first_frame(tmp_path, m, {"step": 3, "tokenizer": "abc", "encoder": "hashing"})
    meta = json.loads((tmp_path / "first_frame.json").read_text())
    assert meta["step"] == 3 and meta["grid"] == [4, 4]
    b, _ = load_first_frame(tmp_path)
    for k, v in m.state_dict().items():
        assert torch.equal(b.state_dict()[k], v)

    class Tok(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2))

    with pytest.raises(CheckpointError, match="another video tokenizer"):
        load_first_frame(tmp_path, Tok())
    with pytest.raises(CheckpointError, match="no first-frame model"):
        load_first_frame(tmp_path / "nowhere")


def test_caption_variants_name_only_the_scene():
    rng = np.random.default_rng(0)
    params = {"theme": "snow", "time": "night", "weather": "fog"}
    texts = {caption_variant(params, rng) for _ in range(50)}
    assert len(texts) > 5 and all(t.startswith("a ") and "level" in t for t in texts)
    assert any("night" in t for t in texts) and any("fog" in t for t in texts)


def test_training_samples_stop_at_the_first_event():
    from bridge.data.dataset import VideoDataset

    ds = VideoDataset(sandbox_dataset())
    rng = np.random.default_rng(0)
    for e in ds.episodes:
        ts = pre_event_indices(e, 50, rng)
        assert ts[0] == 0 and all(t < min(ev["frame"] for ev in e.events) for t in ts), (ts, e.events)
    frames, sketches, texts = first_frame_samples(ds, 200, rng, with_sketch=True)
    assert len(frames) == len(sketches) == len(texts) and frames.shape[1:] == (64, 64, 3)
    captions = {e.caption for e in ds.split("train")}
    assert captions & set(texts) and set(texts) - captions  # captions and shorter variants


def test_micro_first_frame_training_writes_a_loadable_model(tmp_path):
    world = save_micro_world(tmp_path / "world")
    res = train_first_frame(PromptTrainOptions(world=str(world), data=str(sandbox_dataset()), steps=12, batch=8,
                                               preset="micro", encoder="hashing", max_frames=120, progress=False))
    assert res["step"] == 12 and np.isfinite(res["loss"])
    model, meta = load_first_frame(world)
    assert meta["sketch_trained"] and meta["encoder"] == "hashing" and meta["samples"] > 0
    # a second run continues from the saved model
    res2 = train_first_frame(PromptTrainOptions(world=str(world), data=str(sandbox_dataset()), steps=3, batch=4,
                                                preset="micro", encoder="hashing", max_frames=40, progress=False))
    assert res2["step"] == 15


def test_first_frame_trains_on_a_tokenizer_run_and_fits_worlds_built_on_it(tmp_path):
    from bridge.model.checkpoint import save_model, state_tensors
    from bridge.model.genie import WorldModel
    from test_prompts_helpers import micro64_config

    world_dir = save_micro_world(tmp_path / "world")
    world, _, _ = WorldModel.load(world_dir)
    save_model(tmp_path / "tok", "tokenizer", micro64_config(), state_tensors(world.tokenizer, "tokenizer."), {}, 5)
    train_first_frame(PromptTrainOptions(world=str(tmp_path / "tok"), data=str(sandbox_dataset()), steps=2, batch=4,
                                         preset="micro", encoder="hashing", max_frames=40, progress=False))
    model, meta = load_first_frame(tmp_path / "tok", world.tokenizer)  # same tokenizer weights: accepted
    assert meta["step"] == 2
    other = save_micro_world(tmp_path / "other", seed=1)
    with pytest.raises(CheckpointError, match="another video tokenizer"):
        load_first_frame(tmp_path / "tok", WorldModel.load(other)[0].tokenizer)


def test_first_frame_warm_start_from_a_world_on_another_tokenizer(tmp_path):
    from bridge.model.genie import WorldModel

    old = save_micro_world(tmp_path / "old")
    opts = dict(data=str(sandbox_dataset()), batch=4, preset="micro", encoder="hashing", max_frames=40, progress=False)
    train_first_frame(PromptTrainOptions(world=str(old), steps=3, **opts))
    new = save_micro_world(tmp_path / "new", seed=1)  # another tokenizer: the old model is refused as it is
    with pytest.raises(CheckpointError, match="another video tokenizer"):
        load_first_frame(old, WorldModel.load(new)[0].tokenizer)
    src = load_first_frame(old)[0].state_dict()
    res = train_first_frame(PromptTrainOptions(world=str(new), steps=1, lr=1e-12, init_from=str(old), **opts))
    model, meta = load_first_frame(new, WorldModel.load(new)[0].tokenizer)  # now fitted to the new tokenizer
    assert res["step"] == 1 and meta["init_from"] == str(old.resolve())
    assert all(torch.allclose(src[k], v, atol=1e-6) for k, v in model.state_dict().items())  # started from old's weights
    fresh = train_first_frame(PromptTrainOptions(world=str(save_micro_world(tmp_path / "fresh", seed=1)), steps=1,
                                                 lr=1e-12, **opts))
    assert fresh["step"] == 1 and not all(torch.allclose(src[k], v, atol=1e-6)
                                          for k, v in load_first_frame(tmp_path / "fresh")[0].state_dict().items())
    from bridge.model.checkpoint import save_model, state_tensors
    from test_prompts_helpers import micro64_config

    cfg = micro64_config()
    cfg.tokenizer.codebook //= 2
    small = WorldModel(cfg, bank_size=4)
    save_model(tmp_path / "bad", "world", cfg, state_tensors(small), {"step": 0}, 0)
    with pytest.raises(ValueError, match="codes"):
        train_first_frame(PromptTrainOptions(world=str(tmp_path / "bad"), steps=1, init_from=str(old), **opts))


def test_prompt_stages_decay_their_learning_rate_to_fit_the_time_budget():
    """--max-minutes with a large --steps (how a GPU run is bounded) must still end the cosine at 10%."""
    from bridge.prompts.train import PROMPT_WARMUP
    from bridge.train.loop import set_lr

    opt = torch.optim.AdamW([{"params": [torch.nn.Parameter(torch.zeros(1))], "scale": 10.0},
                             {"params": [torch.nn.Parameter(torch.zeros(1))]}])

    def lr(step: int, spent_s: float, max_minutes: float | None = 1.0) -> float:
        got = set_lr(opt, step, 100_000, 1.0, PROMPT_WARMUP, spent_s, max_minutes)
        assert [g["lr"] for g in opt.param_groups] == [got * 10.0, got]  # each group at its own scale (1 without one)
        return got

    assert lr(50, 0.0) > 0.99  # warm-up done, the budget barely touched
    assert lr(50, 30.0) == pytest.approx(0.55, abs=0.01)  # half the budget: half way down the cosine
    assert lr(50, 60.0) == pytest.approx(0.1)  # budget spent
    assert lr(5, 0.0) == pytest.approx(6 / 20)  # warm-up still by steps
    assert lr(50, 3600.0, None) > 0.99  # no budget: by steps alone


def test_a_transparent_sketch_background_is_sky_not_ground():
    from bridge.prompts.first_frame import sketch_class_map

    opaque = np.full((16, 16, 3), 255, np.uint8)
    opaque[12:] = 0  # white sky, black ground below
    rgba = np.zeros((16, 16, 4), np.uint8)  # what drawing tools export: nothing drawn = transparent black
    rgba[12:] = (0, 0, 0, 255)
    assert np.allclose(sketch_class_map(rgba, (4, 4)), sketch_class_map(opaque, (4, 4)))


def test_a_huge_sketch_is_read_like_a_small_one_without_the_memory():
    from bridge.prompts.first_frame import sketch_class_map

    small = np.full((64, 64, 3), 255, np.uint8)
    small[48:] = 0
    big = np.repeat(np.repeat(small, 32, 0), 32, 1)  # 2048 x 2048, the same drawing
    assert np.allclose(sketch_class_map(big, (8, 8)), sketch_class_map(small, (8, 8)))


def test_a_resumed_run_draws_new_batches_instead_of_replaying_the_first_ones(tmp_path, monkeypatch):
    from bridge.model.dynamics import Dynamics
    from bridge.prompts.train import train_events

    seen = []
    for cls in (FirstFrameModel, Dynamics):
        real = cls.training_loss
        monkeypatch.setattr(cls, "training_loss", lambda self, tokens, *a, _real=real, **k: (
            seen.append(tokens.clone()), _real(self, tokens, *a, **k))[1])
    opts = dict(data=str(sandbox_dataset()), steps=1, batch=8, encoder="hashing", progress=False)
    world = save_micro_world(tmp_path / "world")
    for _ in range(2):  # a run, then the same command again: it resumes
        train_first_frame(PromptTrainOptions(world=str(world), preset="micro", max_frames=120, **opts))
    for _ in range(2):
        train_events(PromptTrainOptions(world=str(world), out=str(tmp_path / "ev"), clip_len=6, **opts))
    assert len(seen) == 4 and not torch.equal(seen[0], seen[1]) and not torch.equal(seen[2], seen[3])


def test_a_resumed_run_keeps_its_own_seed_and_a_given_one_wins(tmp_path, monkeypatch):
    """A resumed prompt-stage run drew with seed 0 whatever --seed it was started with (the other stages keep theirs)."""
    import bridge.prompts.train as T

    seeds = []
    real = T.seed_run
    monkeypatch.setattr(T, "seed_run", lambda seed, start: (seeds.append(seed), real(seed, start))[1])
    opts = dict(data=str(sandbox_dataset()), steps=1, batch=4, max_frames=40, encoder="hashing", progress=False)
    world = save_micro_world(tmp_path / "world")
    for seed in (5, None, 7):  # started with 5, resumed without --seed, resumed with --seed 7
        T.train_first_frame(PromptTrainOptions(world=str(world), preset="micro", seed=seed, **opts))
    for seed in (5, None, 7):
        T.train_events(PromptTrainOptions(world=str(world), out=str(tmp_path / "ev"), clip_len=6, seed=seed, **opts))
    assert seeds == [5, 5, 7] * 2


def test_a_resumed_run_keeps_its_run_options_and_a_given_one_wins(tmp_path):
    """A resumed prompt run kept only its --seed: --steps, --batch, --lr, --ckpt-every and --max-minutes went back to
    the defaults, where `train decoder` (also a fine-tune of a finished world) keeps them all: the prompt stages now
    keep theirs too, recorded in first_frame.json and the card's `events`."""
    import bridge.prompts.train as T

    world = save_micro_world(tmp_path / "world")
    first = dict(steps=2, batch=4, lr=1e-3, ckpt_every=1, max_minutes=30.0)
    bare = dict.fromkeys(first)
    runs = {"first-frame": (T.train_first_frame, dict(world=str(world), preset="micro")),
            "events": (T.train_events, dict(world=str(world), out=str(tmp_path / "ev"), clip_len=6))}
    for stage, (train, where) in runs.items():
        opts = dict(data=str(sandbox_dataset()), max_frames=40, encoder="hashing", progress=False, **where)
        train(PromptTrainOptions(**opts, **first))
        assert train(PromptTrainOptions(**opts, **bare))["step"] == 4, stage  # --steps 2 again
        card = json.loads((world / "first_frame.json").read_text()) if stage == "first-frame" else \
            json.loads((tmp_path / "ev" / "model_card.json").read_text())["events"]
        assert {k: card[k] for k in ("steps_per_run", "batch", "lr", "ckpt_every", "max_minutes")} == \
            {"steps_per_run": 2, "batch": 4, "lr": 1e-3, "ckpt_every": 1, "max_minutes": 30.0}, stage
        assert train(PromptTrainOptions(**opts, **{**bare, "steps": 1, "batch": 2, "max_minutes": 0}))["step"] == 5
        card = json.loads((world / "first_frame.json").read_text()) if stage == "first-frame" else \
            json.loads((tmp_path / "ev" / "model_card.json").read_text())["events"]
        assert (card["steps_per_run"], card["batch"], card["lr"], card["max_minutes"]) == (1, 2, 1e-3, None), stage


def test_warm_start_refuses_a_model_of_another_encoder_or_size(tmp_path):
    old = save_micro_world(tmp_path / "old")
    opts = dict(data=str(sandbox_dataset()), steps=1, batch=4, max_frames=40, progress=False)
    train_first_frame(PromptTrainOptions(world=str(old), preset="micro", encoder="hashing", **opts))
    new = save_micro_world(tmp_path / "new", seed=1)
    with pytest.raises(ValueError, match="--init-from .* trained with --encoder hashing.*give the --encoder and --preset"):
        train_first_frame(PromptTrainOptions(world=str(new), preset="micro", encoder="minilm", init_from=str(old), **opts))
    with pytest.raises(ValueError, match="width 32, not --encoder hashing --preset tiny"):
        train_first_frame(PromptTrainOptions(world=str(new), preset="tiny", encoder="hashing", init_from=str(old), **opts))
    assert not (new / "first_frame.json").exists()


def test_first_frame_preset_defaults_to_the_worlds(tmp_path):
    from click.testing import CliRunner

    from bridge.cli import main

    world = save_micro_world(tmp_path / "world")
    r = CliRunner().invoke(main, ["train", "prompts", "first-frame", "--world", str(world), "--data", str(sandbox_dataset()),
                                  "--steps", "2", "--batch", "4", "--encoder", "hashing", "--max-frames", "40", "--quiet",
                                  "--device", "cpu"])
    assert r.exit_code == 0, r.output
    model, _ = load_first_frame(world)
    assert model.cfg.dim == 32  # micro, as the world is: the tiny default took 8 s a step on a micro world


def test_without_preset_a_resumed_or_warm_started_model_keeps_its_own_size(tmp_path):
    opts = dict(data=str(sandbox_dataset()), steps=1, batch=4, encoder="hashing", max_frames=40, progress=False)
    world = save_micro_world(tmp_path / "world")
    train_first_frame(PromptTrainOptions(world=str(world), preset="tiny", **opts))  # tiny on a micro world
    assert train_first_frame(PromptTrainOptions(world=str(world), **opts))["step"] == 2  # the same run, no --preset
    assert load_first_frame(world)[0].cfg.dim == 192
    new = save_micro_world(tmp_path / "new", seed=1)
    train_first_frame(PromptTrainOptions(world=str(new), init_from=str(world), **opts))
    assert load_first_frame(new)[0].cfg.dim == 192  # started from the tiny model, not a micro one


def test_ctrl_c_says_which_step_it_saves_where_as_the_pretraining_stages_do(tmp_path, monkeypatch):
    """Only `train tokenizer|dynamics` said "interrupted: saving step N to OUT ..."; the prompt stages saved in silence."""
    from click.testing import CliRunner

    from bridge.cli import main

    world, calls, loss = save_micro_world(tmp_path / "world"), [], FirstFrameModel.training_loss

    def stopped_at_the_third_step(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return loss(self, *a, **k)

    monkeypatch.setattr(FirstFrameModel, "training_loss", stopped_at_the_third_step)
    r = CliRunner().invoke(main, ["train", "prompts", "first-frame", "--world", str(world), "--data", str(sandbox_dataset()),
                                  "--steps", "10", "--batch", "4", "--encoder", "hashing", "--max-frames", "20", "--quiet"])
    assert r.exit_code == 130, r.output
    assert f"interrupted: saving step 2 to {world} ..." in r.output, r.output
    assert json.loads((world / "first_frame.json").read_text())["step"] == 2
