"""What a world-model backend needs at run time to take prompts: text/sketch -> first tokens, events -> cond.

`WorldModelBackend` (bridge/model/world.py) owns one `PromptRuntime`; everything here reads the optional files a
prompt-trained checkpoint carries (first_frame.*, events.json) and degrades to a clear message without them.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import torch

from bridge.backend import Prompt, WorldEvent
from bridge.prompts.events import EventTrack, event_text, load_event_settings
from bridge.model.checkpoint import read_json
from bridge.prompts.first_frame import META, has_first_frame, load_first_frame, sketch_class_map
from bridge.prompts.text_encoder import TextEncoder, get_encoder
from bridge.worlds.sketch import reads_as_sketch


NOT_WORDS = frozenset({"not", "no", "never", "don't", "dont", "doesn't", "isn't", "without"})  # a text prompt with one
# says what the level lacks, which a sentence encoder barely notices ("without snow" reads as "snowy")
NEGATIONS = NOT_WORDS | {"remove", "kill", "drain", "recede", "recedes"}  # words that turn an event into its opposite


def _words(text: str) -> list[str]:
    """The words of a text, lower case: case and punctuation do not change what an event means."""
    return re.findall(r"[\w']+", text.lower().replace("\u2019", "'"))


def _negations(text: str, words: frozenset[str] = NEGATIONS) -> frozenset[str]:
    return words.intersection(_words(text))


def first_screen(sketch: np.ndarray, height: int, width: int) -> np.ndarray:
    """The part of a level-wide sketch the first frame shows: its left end at the frame's aspect, as in the sandbox
    (the model learned one screen per sketch, so a whole level would be squeezed into one frame)."""
    if sketch.ndim != 3:
        return sketch  # not an image: sketch_class_map names the problem
    return sketch[:, : max(1, round(sketch.shape[0] * width / height))]


def text_encoders(folder: str | Path) -> list[str]:
    """The text encoders a world folder reads text with (text prompts, free-text events), from its files alone: what
    a host loads ahead of the first prompt without loading the world."""
    folder = Path(folder)
    names = [read_json(folder / META).get("encoder", "minilm")] if has_first_frame(folder) else []
    events = load_event_settings(folder)
    return list(dict.fromkeys(names + ([events.encoder] if events is not None else [])))


class PromptRuntime:
    """Per backend: the first-frame model (if trained), the event settings (if trained) and the active event."""

    def __init__(self, folder: str | Path, model, device: torch.device, name: str = "this world"):
        self.folder, self.model, self.device, self.name = Path(folder), model, device, name
        self.first = self.first_meta = None
        if has_first_frame(self.folder):
            self.first, self.first_meta = load_first_frame(self.folder, model.tokenizer)
            self.first.to(device)
        self.events = load_event_settings(self.folder)
        if self.events is None and model.cfg.event_types:  # typed events only, with the stored embeddings
            self.captions: dict[str, str] = {t: t for t in model.cfg.event_types}
        else:
            self.captions = dict(self.events.captions) if self.events else {}
        self.guidance = self.events.guidance if self.events else 1.0
        self.track = EventTrack(self.events.hold if self.events else 1)
        self._encoder: TextEncoder | None = None
        self._wordings: tuple[list[str], np.ndarray] | None = None  # trained wordings and their vectors, on first use

    # --- Capabilities, for clients and error messages ---
    @property
    def text_prompts(self) -> bool:
        return self.first is not None

    @property
    def sketch_prompts(self) -> bool:
        return self.first is not None and bool(self.first_meta.get("sketch_trained"))

    @property
    def text_events(self) -> bool:
        return self.events is not None

    def encoder(self, name: str) -> TextEncoder:
        if self._encoder is None or self._encoder is not get_encoder(name):
            self._encoder = get_encoder(name)
        return self._encoder

    # --- Prompts -> first frame tokens ---
    def first_tokens(self, prompt: Prompt, generator: torch.Generator) -> torch.Tensor | None:
        """(1, N) tokens for a text and/or sketch prompt, or None when the prompt has neither (image/seed path)."""
        sketch = prompt.sketch
        if sketch is None and self.sketch_prompts and reads_as_sketch(prompt.image):
            sketch = prompt.image  # a flat-colour drawing sent as an image is a sketch, as in the sandbox
        text = prompt.text.strip() if prompt.text and prompt.text.strip() else None
        if sketch is None and (text is None or prompt.image is not None):
            if text is not None:
                warnings.warn(f"the text prompt {text!r} is not used: an image prompt starts the world as it is "
                              "drawn; send the text alone, or with a sketch, for the text to count", stacklevel=3)
            return None  # an image (it wins over text) or a seed: the backend's own paths
        if self.first is None or (sketch is not None and not self.sketch_prompts):
            if sketch is not None:
                dropped = " and the text prompt is not used" if text is not None else ""
                warnings.warn(f"{self.name} has no sketch-trained first-frame model, so the sketch is tokenized as a "
                              f"plain image{dropped}: train one with `worldbridge train prompts first-frame --world "
                              f"{self.folder} --data DIR` on a dataset made with --sketch", stacklevel=3)
            else:
                warnings.warn(f"{self.name} has no text conditioning, so the text prompt is ignored (start from an "
                              f"image, a sketch or a seed, or train a first-frame model with `worldbridge train prompts "
                              f"first-frame --world {self.folder} --data DIR`)", stacklevel=3)
            return None
        grid, s = self.first.grid, None
        if sketch is not None:
            drawn = np.asarray(sketch)
            screen = first_screen(drawn, self.model.cfg.height, self.model.cfg.width)
            s = torch.from_numpy(sketch_class_map(screen, grid, sent=drawn.shape[1::-1]))[None].to(self.device)
        t = None
        if text is not None:
            enc = self.encoder(self.first_meta.get("encoder", "minilm"))
            if (problem := enc.unreadable(text)) is not None:
                raise ValueError(f"text prompt: {problem}")
            if negated := _negations(text, NOT_WORDS):  # there is no vector for "not X" to fall back on, as events have
                raise ValueError(f"text prompt: {text!r} says {'/'.join(sorted(negated))}, which the text encoder "
                                 "barely reads ('a level without snow' encodes next to 'a snowy level'), so the world "
                                 "would show what it names: say what the level has instead, e.g. 'a clear day'")
            t = torch.from_numpy(enc.encode([text])).to(self.device)
        return self.first.generate(t, s, batch=1, generator=generator)

    # --- Events -> conditioning ---
    def read_text(self, text: str) -> tuple[np.ndarray, str | None]:
        """Free event text -> (unit vector, the trained wording it is read as, or None).

        The dynamics learned the few points its training wordings encode to, not the space between them, so a text
        within `read_as` of one (cosine) takes that wording's vector; anything further keeps its own."""
        enc = self.encoder(self.events.encoder)
        if (problem := enc.unreadable(text)) is not None:
            raise ValueError(f"event text: {problem}")
        v = enc.encode([text])[0]
        if not self.events.wordings:
            return v, None
        if self._wordings is None:
            texts = [w for ws in self.events.wordings.values() for w in ws]
            self._wordings = (texts, enc.encode(texts))
        texts, vectors = self._wordings
        sims = vectors @ v  # cosines: every vector is a unit row
        i = int(sims.argmax())
        if sims[i] < self.events.read_as or _negations(text) != _negations(texts[i]):
            return v, None  # "don't make it rain" sits next to "make it rain": never read it as its opposite
        return vectors[i], texts[i]

    def describe_event(self, event: WorldEvent) -> str:
        """The caption an event will show, checked as `event_vector` checks it: free text says what it was read as."""
        if event.type is None and event.has_text and self.events is not None:
            text = event_text(event, self.captions)
            _, wording = self.read_text(text)
            same = wording is not None and _words(wording) == _words(text)
            return text if wording is None or same else f"{text} (read as: {wording})"
        self.event_vector(event)  # raises the error the step would
        return self.captions.get(event.type, event.type)

    def event_vector(self, event: WorldEvent) -> np.ndarray:
        """The unit vector an event means: a typed event's embedding (its type wins over any text, as in the sandbox),
        else free text (when trained for it) as `read_text` reads it."""
        types = list(self.model.cfg.event_types)
        if event.type is None and event.has_text and self.events is not None:
            return self.read_text(event_text(event, self.captions))[0]
        if event.type is None and self.events is not None:
            raise ValueError("an event needs a type or some text (this one has neither)")
        if event.type is None:
            raise ValueError(f"{self.name} has no text conditioning: send a typed event, one of {types}, or train "
                             "free-text events with `worldbridge train prompts events --world ... --data ... --out ...`")
        if event.type not in types:
            known = ", ".join(types) or "none (this checkpoint was not trained with events)"
            raise ValueError(f"unknown event type {event.type!r}; {self.name} knows: {known}")
        return self.model.event_embed[types.index(event.type)].detach().float().cpu().numpy()

    def event_cond(self, event: WorldEvent | None) -> torch.Tensor | None:
        """(1, 1, C) conditioning for the frame generated now: fires `event` if given, holds it for `hold` frames."""
        if event is not None and event.fires:
            self.track.fire(self.event_vector(event))
        v = self.track.next()
        return None if v is None else torch.from_numpy(v).to(self.device)[None, None]

    def reset(self) -> None:
        self.track = EventTrack(self.track.hold)
