"""Event conditioning: which frames carry an event, and the plumbing from text to the dynamics' cond slot."""

import json

import numpy as np
import pytest
import torch

from bridge.backend import WorldEvent
from bridge.model.genie import WorldModel
from bridge.model.world import load_world
from bridge.model.sampler import sample_frame
from bridge.prompts.events import (EVENTS_FILE, EventSettings, EventTrack, cond_for_clip, event_text,
                                   load_event_settings, training_text)
from bridge.prompts.text_encoder import get_encoder
from bridge.prompts.train import PromptTrainOptions, tokenize_episode, train_events
from bridge.worlds.events import EVENT_CAPTIONS
from test_prompts_helpers import sandbox_dataset, save_micro_world

torch.set_num_threads(1)


def test_cond_covers_the_firing_frame_and_hold_minus_one_after():
    v = np.ones(4, np.float32)
    c = cond_for_clip(8, 10, [{"frame": 12}], [v], hold=3, dim=4)
    assert c[:, 0].tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    c = cond_for_clip(8, 10, [{"frame": 9}], [v], hold=3, dim=4)  # fired before the clip, still held
    assert c[:, 0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    c = cond_for_clip(8, 10, [{"frame": 17}, {"frame": 30}], [v, 2 * v], hold=4, dim=4)
    assert c[:, 0].tolist() == [0] * 7 + [1]


def test_event_track_holds_then_clears_and_snapshots():
    tr = EventTrack(hold=3)
    assert tr.next() is None
    tr.fire(np.arange(3.0))
    snap = tr.get_state()
    got = [tr.next() for _ in range(4)]
    assert [g is not None for g in got] == [True, True, True, False]
    tr.set_state(snap)
    assert tr.next() is not None and tr.left == 2


def test_event_text_typed_free_and_errors():
    caps = {"weather_snow": "it starts to snow"}
    assert event_text(WorldEvent(type="weather_snow"), caps) == "it starts to snow"
    assert event_text(WorldEvent(type="weather_snow", text=" let it snow "), caps) == "let it snow"
    with pytest.raises(ValueError, match="unknown event type 'meteor'"):
        event_text(WorldEvent(type="meteor"), caps)
    with pytest.raises(ValueError, match="type or some text"):
        event_text(WorldEvent(), caps)
    with pytest.raises(ValueError, match="hold"):
        EventSettings(hold=0)
    s = EventSettings(guidance=3, read_as=1)  # as a hand-edited events.json may hold them
    assert type(s.guidance) is float and type(s.read_as) is float  # event_cfg goes out as a msgpack float


def test_training_wordings_vary_but_stay_on_the_event():
    rng = np.random.default_rng(0)
    texts = {training_text({"type": "flood", "caption": EVENT_CAPTIONS["flood"]}, rng) for _ in range(40)}
    assert EVENT_CAPTIONS["flood"] in texts and len(texts) > 3
    assert training_text({"type": "custom_boom", "caption": "a boom"}, rng) == "a boom"


@pytest.fixture(scope="module")
def event_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    world = save_micro_world(root / "world")
    res = train_events(PromptTrainOptions(world=str(world), data=str(sandbox_dataset()), out=str(root / "events"),
                                          steps=30, batch=8, lr=3e-3, encoder="hashing", clip_len=6, hold=3,
                                          progress=False))
    return root, res


def test_micro_event_training_writes_a_complete_event_world(event_world):
    root, res = event_world
    assert res["step"] == 30 and res["slot_norm"] > 0  # the zero-initialised slot learned something
    model, card, _ = WorldModel.load(root / "events")
    s = load_event_settings(root / "events")
    assert s.encoder == "hashing" and s.hold == 3 and set(s.captions) == set(model.cfg.event_types)
    assert model.cfg.dynamics.cond_dim == 384 and card["events"]["steps"] == 30
    with pytest.raises(ValueError, match="resume it with --encoder hashing"):  # one embedding space per world
        train_events(PromptTrainOptions(world=str(root / "world"), data=str(sandbox_dataset()), out=str(root / "events"),
                                        steps=1, batch=8, encoder="minilm", clip_len=6, hold=3, progress=False))
    w = load_world(root / "events", device="cpu")
    wording = s.wordings[model.cfg.event_types[0]][0]
    assert w.describe_event(WorldEvent(text=wording.upper())) == wording.upper()  # no "(read as: the same words)"
    for blank in ("", "   "):
        with pytest.raises(ValueError, match="needs a type or some text"):
            w.describe_event(WorldEvent(text=blank))
    negated = f"don't {wording}"
    enc = get_encoder("hashing")
    assert float(enc.encode([negated])[0] @ enc.encode([wording])[0]) >= s.read_as  # near enough to be read as it...
    assert w.prompts.read_text(wording)[1] == wording and w.prompts.read_text(negated)[1] is None  # ...but it is not
    want = get_encoder("hashing").encode([s.captions[t] for t in model.cfg.event_types])
    assert np.allclose(model.event_embed.detach().numpy(), want)
    src, _, _ = WorldModel.load(root / "world")
    for k, v in src.tokenizer.state_dict().items():  # the tokenizer is untouched: prompts and first frames still fit
        assert torch.equal(model.tokenizer.state_dict()[k], v)
    json.loads((root / "events" / EVENTS_FILE).read_text())


def test_event_embedding_changes_the_dynamics_and_zero_equals_none(event_world):
    root, _ = event_world
    model, _, _ = WorldModel.load(root / "events")
    dyn = model.dynamics
    N = model.cfg.tokens_per_frame
    tokens = torch.randint(0, model.tokenizer.vocab, (1, 3, N), generator=torch.Generator().manual_seed(0))
    acts = torch.zeros(1, 3, dtype=torch.long)
    ev = model.event_embed[0].detach()[None, None].expand(1, 3, -1)
    with torch.no_grad():
        base = dyn(tokens, acts)
        assert torch.allclose(dyn(tokens, acts, torch.zeros(1, 3, 384)), base, atol=1e-6)
        assert (dyn(tokens, acts, ev) - base).abs().max() > 1e-3

    def roll(cond):
        cache = dyn.new_cache()
        with torch.no_grad():
            dyn(tokens[:, :1], acts[:, :1], None, cache, append=True)
        return sample_frame(dyn, cache, torch.tensor([1]), steps=4, cond=cond, generator=torch.Generator().manual_seed(5))

    assert torch.equal(roll(None), roll(torch.zeros(1, 1, 384)))


def test_episode_tokenization_is_chunk_invariant(event_world):
    root, _ = event_world
    from bridge.data.dataset import VideoDataset

    model, _, _ = WorldModel.load(root / "world")
    ds = VideoDataset(sandbox_dataset())
    frames = np.asarray(ds.frames(ds.episodes[0]))
    with torch.no_grad():
        tok, act = tokenize_episode(model, frames, torch.device("cpu"), chunk=64)
        tok8, act8 = tokenize_episode(model, frames, torch.device("cpu"), chunk=8)
    assert tok.shape == (len(frames), 16) and act.shape == (len(frames) - 1,)
    assert tok8.shape == tok.shape and act8.shape == act.shape
    assert (tok8 == tok).mean() > 0.5  # chunk edges see a little less context; most tokens agree


def test_event_training_needs_events_and_an_out_dir(tmp_path):
    world = save_micro_world(tmp_path / "w")
    with pytest.raises(ValueError, match="--out"):
        train_events(PromptTrainOptions(world=str(world), data=str(sandbox_dataset()), encoder="hashing", progress=False))


def test_a_new_out_holding_only_a_file_managers_litter_counts_as_new(tmp_path):
    """`train prompts events` refused an --out holding only macOS Finder's .DS_Store or Windows' desktop.ini (where
    `train tokenizer` took a dot file as nothing): every stage reads a new --out by one rule."""
    opts = dict(world=str(save_micro_world(tmp_path / "w")), data=str(sandbox_dataset()), steps=1, batch=4,
                max_frames=40, clip_len=6, encoder="hashing", progress=False)
    for folder, names in (("ev", (".DS_Store", "desktop.ini", "Thumbs.db")), ("notes", ("plans.txt",))):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / name).write_text("x")
    assert train_events(PromptTrainOptions(out=str(tmp_path / "ev"), **opts))["step"] == 1
    with pytest.raises(ValueError, match=r"notes holds files that are not an event run's \(plans.txt\): give `train "
                                         r"prompts events` a new --out directory"):
        train_events(PromptTrainOptions(out=str(tmp_path / "notes"), **opts))
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["plans.txt"]


def test_train_prompts_cli_runs_both_stages_and_explains_errors(tmp_path):
    from click.testing import CliRunner

    from bridge.prompts.cli import train_prompts

    world = save_micro_world(tmp_path / "w")
    data = str(sandbox_dataset())
    r = CliRunner().invoke(train_prompts, ["events", "--world", str(world), "--data", data, "--out", str(tmp_path / "p"),
                                           "--steps", "3", "--batch", "4", "--encoder", "hashing", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "step 3 saved to" in r.output and (tmp_path / "p" / EVENTS_FILE).is_file()
    r = CliRunner().invoke(train_prompts, ["first-frame", "--world", str(tmp_path / "p"), "--data", data, "--steps", "2",
                                           "--batch", "4", "--preset", "micro", "--encoder", "hashing", "--quiet"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "p" / "first_frame.json").is_file()
    r = CliRunner().invoke(train_prompts, ["events", "--world", str(tmp_path / "nowhere"), "--data", data, "--out",
                                           str(tmp_path / "q"), "--encoder", "hashing", "--quiet"])
    assert r.exit_code != 0 and "no checkpoint at" in r.output


def test_anchor_keeps_event_free_play_near_the_source_world(event_world, tmp_path):
    from bridge.data.dataset import VideoDataset
    from bridge.prompts.train import anchor_kl

    root, _ = event_world
    res = train_events(PromptTrainOptions(world=str(root / "world"), data=str(sandbox_dataset()), out=str(tmp_path / "a"),
                                          steps=30, batch=8, lr=3e-3, encoder="hashing", clip_len=6, hold=3, anchor=5.0,
                                          progress=False))
    assert res["anchor_kl"] >= 0
    src, _, _ = WorldModel.load(root / "world")
    free, _, _ = WorldModel.load(root / "events")
    anchored, card, _ = WorldModel.load(tmp_path / "a")
    assert card["events"]["anchor"] == 5.0
    ds = VideoDataset(sandbox_dataset())
    with torch.no_grad():
        tok, act = tokenize_episode(src, np.asarray(ds.frames(ds.episodes[0])), torch.device("cpu"))
        tokens, acts = torch.from_numpy(tok[None, :6].astype(np.int64)), torch.from_numpy(act[None, :5].astype(np.int64))

        def drift(model: WorldModel) -> float:
            out = model.dynamics.training_loss(tokens.expand(8, -1, -1), acts.expand(8, -1),
                                               generator=torch.Generator().manual_seed(1))
            return float(anchor_kl(src.dynamics, out, torch.ones(8, dtype=torch.bool)))

        assert drift(src) == pytest.approx(0.0, abs=1e-5)  # a model is its own anchor
        assert drift(anchored) < 0.5 * drift(free)  # unanchored event training moved plain play; anchored did not


def test_anchor_must_not_be_negative(tmp_path):
    world = save_micro_world(tmp_path / "w")
    with pytest.raises(ValueError, match="--anchor"):
        train_events(PromptTrainOptions(world=str(world), data=str(sandbox_dataset()), out=str(tmp_path / "o"),
                                        encoder="hashing", anchor=-1.0, progress=False))


def test_a_negated_event_is_never_read_as_its_opposite():
    from bridge.prompts.runtime import _negations

    assert _negations("Don’t make it RAIN!") == {"don't"} and _negations("no more snow") == {"no"}
    assert _negations("the rain stops") == set()  # a trained wording ("stops" ends weather, it is not a negation)


def test_a_resumed_event_run_keeps_its_settings_and_wordings(event_world, tmp_path):
    import shutil

    root, _ = event_world
    out = tmp_path / "events"
    shutil.copytree(root / "events", out)
    d = json.loads((out / EVENTS_FILE).read_text())
    d["wordings"]["old_type"] = ["an old wording"]  # learned from the first run's data; this data has none of it
    (out / EVENTS_FILE).write_text(json.dumps(d))
    opts = dict(world=str(root / "world"), data=str(sandbox_dataset()), out=str(out), steps=1, batch=4,
                encoder="hashing", clip_len=6, progress=False)
    with pytest.raises(ValueError, match="hold events for 3 frames, so --hold 5 cannot apply"):
        train_events(PromptTrainOptions(hold=5, **opts))
    d = json.loads((out / EVENTS_FILE).read_text())
    (out / EVENTS_FILE).write_text(json.dumps({**d, "hold": 1}))  # "hold events for 1 frames" was written
    with pytest.raises(ValueError, match="hold events for 1 frame, so --hold 5 cannot apply"):
        train_events(PromptTrainOptions(hold=5, **opts))
    (out / EVENTS_FILE).write_text(json.dumps(d))
    train_events(PromptTrainOptions(guidance=7.0, **opts))  # --guidance is only the stored default: it applies
    s = load_event_settings(out)
    assert (s.hold, s.guidance) == (3, 7.0) and s.wordings["old_type"] == ["an old wording"]
    train_events(PromptTrainOptions(**opts))  # neither given: the run's own
    assert (load_event_settings(out).hold, load_event_settings(out).guidance) == (3, 7.0)
