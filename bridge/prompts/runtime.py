"""What a world-model backend needs at run time to take prompts: text/sketch -> first tokens, events -> cond.

`WorldModelBackend` (bridge/model/world.py) owns one `PromptRuntime`; everything here reads the optional files a
prompt-trained checkpoint carries (first_frame.*, events.json) and degrades to a clear message without them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from bridge.backend import Prompt, WorldEvent
from bridge.prompts.events import EventTrack, event_text, load_event_settings
from bridge.prompts.first_frame import has_first_frame, load_first_frame, sketch_class_map
from bridge.prompts.text_encoder import TextEncoder, get_encoder
from bridge.worlds.sketch import is_palette_like


class PromptRuntime:
    """Per backend: the first-frame model (if trained), the event settings (if trained) and the active event."""

    def __init__(self, folder: str | Path, model, device: torch.device):
        self.folder, self.model, self.device = Path(folder), model, device
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
        if sketch is None and prompt.image is not None and self.sketch_prompts and is_palette_like(prompt.image):
            sketch = prompt.image  # a flat-colour drawing sent as an image is a sketch, as in the sandbox
        text = prompt.text.strip() if prompt.text and prompt.text.strip() else None
        if sketch is None and (text is None or prompt.image is not None):
            return None  # an image (it wins over text) or a seed: the backend's own paths
        if self.first is None or (sketch is not None and not self.sketch_prompts):
            what = "text/sketch-to-frame model" if self.first is None else "sketch-trained first-frame model"
            warnings.warn(f"{self.folder} has no {what}, so the {'sketch' if sketch is not None else 'text'} prompt "
                          f"is used as {'a plain image' if sketch is not None else 'nothing'}: train one with `worldbridge "
                          f"train prompts first-frame --world {self.folder} --data DIR` (a dataset made with --sketch)",
                          stacklevel=3)
            return None
        grid = self.first.grid
        s = None if sketch is None else torch.from_numpy(sketch_class_map(np.asarray(sketch), grid))[None].to(self.device)
        t = None
        if text is not None:
            enc = self.encoder(self.first_meta.get("encoder", "minilm"))
            t = torch.from_numpy(enc.encode([text])).to(self.device)
        return self.first.generate(t, s, batch=1, generator=generator)

    # --- Events -> conditioning ---
    def event_vector(self, event: WorldEvent) -> np.ndarray:
        """The unit vector an event means: the stored embedding of a typed event, else the encoded text."""
        text = event_text(event, self.captions)
        types = list(self.model.cfg.event_types)
        if not (event.text and event.text.strip()) and event.type in types:
            return self.model.event_embed[types.index(event.type)].detach().float().cpu().numpy()
        if self.events is None:
            raise ValueError(f"{self.folder} was not trained on free-text events: send a typed event "
                             f"({', '.join(types) or 'none known'}), or train with `worldbridge train prompts events`")
        return self.encoder(self.events.encoder).encode([text])[0]

    def event_cond(self, event: WorldEvent | None) -> torch.Tensor | None:
        """(1, 1, C) conditioning for the frame generated now: fires `event` if given, holds it for `hold` frames."""
        if event is not None and (event.type is not None or (event.text and event.text.strip())):
            if self.model.cfg.dynamics.cond_dim <= 0:
                raise ValueError(f"{self.folder} has no event conditioning: train it with `worldbridge train prompts "
                                 "events --world ... --data ... --out ...`")
            self.track.fire(self.event_vector(event))
        v = self.track.next()
        return None if v is None else torch.from_numpy(v).to(self.device)[None, None]

    def reset(self) -> None:
        self.track = EventTrack(self.track.hold)
