"""PromptRuntime: text/sketch prompts -> first tokens, events -> the cond slot, on a micro prompt-trained world."""

import numpy as np
import pytest
import torch

from bridge.backend import Prompt, WorldEvent
from bridge.model.genie import WorldModel
from bridge.model.world import load_world
from bridge.prompts.runtime import PromptRuntime
from bridge.worlds.sketch import SKETCH_PALETTE

torch.set_num_threads(1)


@pytest.fixture()
def prompt_world(prompt_world_root):
    return prompt_world_root


def _runtime(path):
    model, _, _ = WorldModel.load(path)
    return PromptRuntime(path, model, torch.device("cpu")), model


def _sketch() -> np.ndarray:
    sk = np.zeros((64, 64, 3), np.uint8)
    sk[:] = SKETCH_PALETTE["sky"]
    sk[48:] = SKETCH_PALETTE["ground"]
    sk[40:48, 8:12] = SKETCH_PALETTE["player"]
    return sk


def test_text_and_sketch_prompts_give_valid_token_maps(prompt_world):
    rt, model = _runtime(prompt_world / "pw")
    assert rt.text_prompts and rt.sketch_prompts and rt.text_events
    g = torch.Generator().manual_seed(0)
    for prompt in (Prompt(text="a snowy night level"), Prompt(sketch=_sketch()),
                   Prompt(text="a desert level", sketch=_sketch()), Prompt(image=_sketch())):
        tok = rt.first_tokens(prompt, g)
        assert tok.shape == (1, 16) and 0 <= int(tok.min()) and int(tok.max()) < model.tokenizer.vocab
        with torch.no_grad():
            frame = model.tokenizer.decode(tok[:, None])[0, 0]
        assert frame.shape == (64, 64, 3) and 0 <= float(frame.min()) and float(frame.max()) <= 1
    photo = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert rt.first_tokens(Prompt(image=photo), g) is None  # a photo takes the backend's image path
    assert rt.first_tokens(Prompt(seed=3), g) is None
    with pytest.warns(UserWarning, match="text prompt 'a cave level' is not used: an image prompt"):
        assert rt.first_tokens(Prompt(text="a cave level", image=photo), g) is None  # an image wins over text


def test_events_fill_the_slot_for_hold_frames(prompt_world):
    rt, model = _runtime(prompt_world / "pw")
    assert rt.event_cond(None) is None
    c = rt.event_cond(WorldEvent(type="night_falls"))
    want = model.event_embed[model.cfg.event_types.index("night_falls")]
    assert c.shape == (1, 1, 384) and torch.allclose(c[0, 0], want)
    assert rt.event_cond(None) is not None and rt.event_cond(None) is not None  # hold = 3
    assert rt.event_cond(None) is None
    free = rt.event_cond(WorldEvent(text="let it snow"))
    assert free.shape == (1, 1, 384) and abs(float(free.norm()) - 1.0) < 1e-4
    assert not torch.allclose(free, c)
    rt.reset()
    assert rt.event_cond(None) is None
    with pytest.raises(ValueError, match="unknown event type"):
        rt.event_cond(WorldEvent(type="meteor_shower"))


def test_free_text_near_a_trained_wording_is_read_as_it_and_says_so(prompt_world):
    rt, _ = _runtime(prompt_world / "pw")
    wordings = rt.events.wordings
    assert wordings and all(ws[0] == rt.captions[t] for t, ws in wordings.items())  # caption first, then phrasings
    t = sorted(wordings)[0]
    wording = wordings[t][1]
    enc = rt.encoder(rt.events.encoder)
    near, far = f"please {wording} now", "purple elephants dance on xylophones"
    v, read = rt.read_text(near)
    assert read == wording and np.allclose(v, enc.encode([wording])[0])  # the point the dynamics was trained on
    assert rt.describe_event(WorldEvent(text=near)) == f"{near} (read as: {wording})"
    v, read = rt.read_text(far)
    assert read is None and np.allclose(v, enc.encode([far])[0])  # nothing near: its own vector
    assert rt.describe_event(WorldEvent(text=far)) == far
    assert rt.describe_event(WorldEvent(text=wording)) == wording
    shouted = f"{wording.capitalize()}!!"  # a case and punctuation variant is the wording, not a reading of it
    assert rt.read_text(shouted)[1] == wording and rt.describe_event(WorldEvent(text=shouted)) == shouted
    assert rt.describe_event(WorldEvent(type=t)) == rt.captions[t]
    c = rt.event_cond(WorldEvent(text=near))
    assert torch.allclose(c[0, 0], torch.from_numpy(enc.encode([wording])[0]))
    rt.events.read_as = 1.01  # above any cosine: free text always keeps its own vector
    assert rt.read_text(near)[1] is None
    with pytest.raises(ValueError, match="unknown event type"):
        rt.describe_event(WorldEvent(type="meteor_shower"))


def test_an_event_with_a_type_and_text_fires_its_type_as_the_sandbox_does(prompt_world):
    rt, _ = _runtime(prompt_world / "pw")
    t, other = sorted(rt.events.wordings)[:2]
    both = WorldEvent(type=t, text=rt.captions[other])
    assert rt.describe_event(both) == rt.captions[t]
    assert np.allclose(rt.event_vector(both), rt.event_vector(WorldEvent(type=t)))
    with pytest.raises(ValueError, match="unknown event type 'meteor_shower'"):  # a bad type is not hidden by text
        rt.event_vector(WorldEvent(type="meteor_shower", text=rt.captions[t]))


def test_texts_the_encoder_cannot_read_are_refused_with_the_fix(prompt_world):
    rt, _ = _runtime(prompt_world / "pw")
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="text prompt: .*no words.*say it in words"):
        rt.first_tokens(Prompt(text="🌧️🌧️"), g)
    with pytest.raises(ValueError, match="event text: .*no words"):
        rt.describe_event(WorldEvent(text="❄️"))
    with pytest.raises(ValueError, match="event text: .*no words"):
        rt.event_cond(WorldEvent(text="❄️"))
    assert rt.track.next() is None  # nothing fired
    assert rt.first_tokens(Prompt(text="a snowy level ☃"), g).shape == (1, 16)  # one word is enough


def test_a_world_without_prompt_training_says_what_to_train(prompt_world):
    rt, _ = _runtime(prompt_world / "world")
    assert not rt.text_prompts and not rt.text_events
    with pytest.warns(UserWarning, match="no text conditioning.*train prompts first-frame"):
        assert rt.first_tokens(Prompt(text="a cave level"), torch.Generator()) is None
    with pytest.warns(UserWarning, match="sketch is tokenized as a plain image and the text prompt is not used"):
        assert rt.first_tokens(Prompt(text="a cave level", sketch=_sketch()), torch.Generator()) is None
    with pytest.raises(ValueError, match="no text conditioning.*train prompts events"):
        rt.event_cond(WorldEvent(text="make it rain"))
    with pytest.raises(ValueError, match="not trained with events"):
        rt.event_cond(WorldEvent(type="weather_snow"))
    with pytest.raises(ValueError, match="no text conditioning.*train prompts events"):
        rt.describe_event(WorldEvent(text="make it rain"))  # refused when queued, not only when the frame is made


@pytest.mark.gpu
def test_prompts_run_on_cuda(prompt_world):
    model, _, _ = WorldModel.load(prompt_world / "pw")
    rt = PromptRuntime(prompt_world / "pw", model.cuda(), torch.device("cuda"))
    tok = rt.first_tokens(Prompt(text="a snowy level", sketch=_sketch()), torch.Generator(device="cuda").manual_seed(0))
    assert tok.is_cuda and tok.shape == (1, 16)
    assert rt.event_cond(WorldEvent(text="make it rain")).is_cuda


def test_a_level_wide_sketch_starts_from_its_first_screen_as_in_the_sandbox(prompt_world):
    rt, _ = _runtime(prompt_world / "pw")
    level = np.concatenate([_sketch(), np.zeros((64, 192, 3), np.uint8)], 1)  # the level goes on as solid ground
    first, wide = (rt.first_tokens(Prompt(sketch=sk), torch.Generator().manual_seed(1)) for sk in (_sketch(), level))
    assert torch.equal(first, wide)
    assert torch.equal(wide, rt.first_tokens(Prompt(image=level), torch.Generator().manual_seed(1)))


def test_an_image_prompt_the_sketch_probe_cannot_read_takes_the_image_path(prompt_world):
    """A 1x1 image is resized like any other, and a 16-bit one is refused as an image, not as a sketch."""
    w = load_world(prompt_world / "pw", device="cpu")
    assert w.reset(Prompt(image=np.full((1, 1, 3), 200, np.uint8), seed=0)).shape == (w.height, w.width, 3)
    assert w.reset(Prompt(image=np.full((4, 300, 4), 90, np.uint8), seed=0)).shape == (w.height, w.width, 3)
    with pytest.raises(ValueError, match=r"^prompt image must be .* dtype uint16"):
        w.reset(Prompt(image=np.zeros((64, 64, 3), np.uint16), seed=0))


def test_a_negated_text_prompt_is_refused_not_read_as_what_it_rules_out(prompt_world):
    rt, _ = _runtime(prompt_world / "pw")
    g = torch.Generator().manual_seed(0)
    for text in ("a level without snow", "No fog, please", "a night that isn't snowy"):
        with pytest.raises(ValueError, match=r"^text prompt: .*say what the level has instead"):
            rt.first_tokens(Prompt(text=text), g)
    assert rt.first_tokens(Prompt(text="a clear day in a cave"), g).shape == (1, 16)
    # removal words turn an event around, not a description: a level where the player kills enemies is a level
    assert rt.first_tokens(Prompt(text="a lava castle where you kill enemies"), g).shape == (1, 16)


@pytest.mark.parametrize("width, height", [(200, 2), (2, 200)])
def test_a_sketch_too_small_is_named_by_the_size_it_was_sent_at(prompt_world, width, height):
    """A 200x2 sketch was refused as "2x2 pixels": the size of its first screen, height first."""
    rt, model = _runtime(prompt_world / "pw")
    sketch = np.zeros((height, width, 3), np.uint8)
    sketch[:] = SKETCH_PALETTE["sky"]
    gh, gw = rt.first.grid
    with pytest.raises(ValueError) as e:
        rt.first_tokens(Prompt(sketch=sketch), torch.Generator())
    assert str(e.value).startswith(f"the sketch is {width}x{height} pixels, smaller than the "
                                   f"{gw}x{gh} token grid"), e.value
