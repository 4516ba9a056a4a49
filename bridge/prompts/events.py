"""Promptable world events: which text an event means, and how its embedding conditions the dynamics.

Design (docs/prompts.md): an event is a sentence. Typed events use their training caption ("weather_snow" ->
"it starts to snow"), free text is used as written; the text encoder turns either into a unit vector that enters
the dynamics' conditioning slot (`cond`, projected and added to every token) on the frame the event fires and
the `hold - 1` frames after it, then the slot returns to zero. Everything after that is carried by the frames
themselves (the snow that is already falling keeps falling). Zero conditioning means "no event", so classifier-free
guidance on events contrasts the event with no event: logits = none + g * (event - none).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bridge.backend import WorldEvent
from bridge.files import atomic_write_json
from bridge.model.checkpoint import read_json
from bridge.worlds.events import EVENT_CAPTIONS, EVENT_TYPES

EVENTS_FILE = "events.json"

# Wordings used in training, besides the caption (listed first). Never reuse EVAL_PARAPHRASES here.
TRAIN_PHRASINGS: dict[str, list[str]] = {
    "weather_rain": ["it starts to rain", "rain begins to fall", "make it rain", "a rain shower starts", "a rainstorm begins",
                     "it is raining now", "wet weather with rain arrives", "rain clouds open up"],
    "weather_snow": ["it starts to snow", "snow begins to fall", "make it snow", "it is snowing now", "a snowstorm begins",
                     "snowflakes fall", "winter snow arrives", "white snow falls from the sky"],
    "weather_fog": ["fog rolls in", "it gets foggy", "make it foggy", "a fog covers everything", "mist appears",
                    "a grey haze rises", "visibility drops in dense fog", "the air becomes misty"],
    "weather_clear": ["the sky clears", "the weather clears", "clear weather", "the sky turns clear", "the rain stops",
                      "the snow stops", "the fog lifts", "sunny weather returns"],
    "night_falls": ["night falls", "it becomes night", "make it night", "night time comes", "it gets dark",
                    "the moon rises in a dark sky", "darkness falls", "the night begins"],
    "dusk": ["the sun sets", "it becomes dusk", "make it dusk", "dusk comes", "evening falls", "sunset colours the sky",
             "the light turns orange as the sun goes down", "late evening arrives"],
    "day_breaks": ["day breaks", "it becomes day", "make it day", "day time comes", "the sun rises", "morning comes",
                   "the night ends and daylight returns", "a bright sunny day begins"],
    "spawn_enemy": ["an enemy appears", "spawn an enemy", "add an enemy", "an enemy shows up", "a monster appears",
                    "a creature spawns", "another enemy arrives", "a hostile critter pops up"],
    "spawn_coins": ["coins appear", "spawn coins", "add some coins", "coins show up", "gold coins appear",
                    "money spawns", "a row of coins pops up", "treasure appears"],
    "flood": ["the water rises", "a flood starts", "make a flood", "the level floods", "water floods the ground",
              "the water level goes up", "flooding begins", "rising water covers the floor"],
}

# Held-out wordings for `eval-prompts`: never seen in training.
EVAL_PARAPHRASES: dict[str, list[str]] = {
    "weather_rain": ["a heavy downpour begins", "raindrops start pouring from the clouds"],
    "weather_snow": ["snowflakes drift down from the sky", "a blizzard sweeps across the land"],
    "weather_fog": ["a thick mist creeps over the world", "everything turns hazy and grey"],
    "weather_clear": ["the storm passes and the air is clear again", "the clouds go away"],
    "night_falls": ["darkness covers the land and the moon comes out", "it is midnight now"],
    "dusk": ["evening arrives with an orange sky", "twilight settles over the level"],
    "day_breaks": ["the sun comes up and it is morning", "dawn arrives and everything is bright"],
    "spawn_enemy": ["a monster shows up nearby", "a new foe joins the level"],
    "spawn_coins": ["gold pieces pop up everywhere", "treasure materialises out of thin air"],
    "flood": ["the level fills up with water", "a deluge floods everything from below"],
}


@dataclass
class EventSettings:
    """How a checkpoint's dynamics were trained to take events (stored as events.json beside the checkpoint)."""

    encoder: str = "minilm"  # bridge.prompts.text_encoder name
    hold: int = 4  # frames the event embedding stays in the cond slot, the firing frame included
    guidance: float = 3.0  # default classifier-free guidance scale on events (1 = off)
    captions: dict[str, str] = field(default_factory=dict)  # event type -> its canonical text
    wordings: dict[str, list[str]] = field(default_factory=dict)  # event type -> every text it was trained on
    read_as: float = 0.5  # free text at least this similar (cosine) to a trained wording is read as that wording

    def __post_init__(self) -> None:
        # events.json may say 3 for 3.0: the protocol sends event_cfg as a float, and strict clients read only floats
        self.hold, self.guidance, self.read_as = int(self.hold), float(self.guidance), float(self.read_as)
        if self.hold < 1:
            raise ValueError(f"event hold must be at least 1 frame, got {self.hold}")
        if self.guidance < 0:
            raise ValueError(f"event guidance must be >= 0 (1 = off), got {self.guidance}")
        if not -1 <= self.read_as <= 1.01:
            raise ValueError(f"event read_as must be a cosine similarity in [-1, 1] (above 1: never), got {self.read_as}")


def save_event_settings(folder: Path, s: EventSettings, extra: dict[str, Any] | None = None) -> None:
    atomic_write_json(Path(folder) / EVENTS_FILE, {**asdict(s), **(extra or {})})


def load_event_settings(folder: Path) -> EventSettings | None:
    """The checkpoint's event settings, None when its dynamics never learned events."""
    path = Path(folder) / EVENTS_FILE
    if not path.is_file():
        return None
    d = read_json(path)
    names = set(EventSettings.__dataclass_fields__)
    return EventSettings(**{k: v for k, v in d.items() if k in names})


def event_text(event: WorldEvent, captions: dict[str, str]) -> str:
    """The sentence an event means: free text as written, else its type's caption; a clear error otherwise."""
    if not isinstance(event, WorldEvent):
        raise TypeError(f"event must be a WorldEvent, got {type(event).__name__}")
    if event.has_text:
        return event.text.strip()
    if event.type is None:
        raise ValueError("a WorldEvent needs a type or some text")
    if event.type not in captions:
        known = ", ".join(sorted(captions)) or "none"
        raise ValueError(f"unknown event type {event.type!r}: this world knows {known} (or send free text)")
    return captions[event.type]


def trained_wordings(types: list[str], captions: dict[str, str]) -> dict[str, list[str]]:
    """Every text `training_text` can give each of `types`: its caption, then its TRAIN_PHRASINGS."""
    return {t: list(dict.fromkeys([captions[t], *TRAIN_PHRASINGS.get(t, [])])) for t in types if t in captions}


def default_captions(types: list[str] | None = None) -> dict[str, str]:
    """The caption each event type shows and is trained on first (its canonical wording)."""
    return {t: EVENT_CAPTIONS[t] for t in (types or EVENT_TYPES)}


def training_text(event: dict, rng: np.random.Generator) -> str:
    """A wording for a recorded event {type, caption, frame}: a random known phrasing, else its caption."""
    options = TRAIN_PHRASINGS.get(event.get("type") or "", [])
    if options and rng.random() < 0.75:
        return str(options[int(rng.integers(len(options)))])
    text = event.get("caption") or EVENT_CAPTIONS.get(event.get("type") or "")
    if not text:
        raise ValueError(f"a recorded event has neither a known type nor a caption: {event}")
    return text


def cond_for_clip(length: int, start: int, events: list[dict], vectors: list[np.ndarray], hold: int,
                  dim: int) -> np.ndarray:
    """(length, dim) conditioning for frames start..start+length-1: each event's vector on its frame and hold-1 after."""
    cond = np.zeros((length, dim), np.float32)
    for e, v in zip(events, vectors):
        lo, hi = int(e["frame"]) - start, int(e["frame"]) - start + hold
        lo, hi = max(lo, 0), min(hi, length)
        if lo < hi:
            cond[lo:hi] = v
    return cond


class EventTrack:
    """The event currently in the cond slot of a rollout and for how many more frames."""

    def __init__(self, hold: int):
        self.hold = hold
        self.vector: np.ndarray | None = None
        self.left = 0

    def fire(self, vector: np.ndarray) -> None:
        self.vector, self.left = np.asarray(vector, np.float32), self.hold

    def next(self) -> np.ndarray | None:
        """The vector for the frame being generated now (None when no event is active); counts the frame."""
        if self.left <= 0:
            return None
        self.left -= 1
        return self.vector

    def get_state(self) -> tuple:
        return (None if self.vector is None else self.vector.copy(), self.left)

    def set_state(self, state: tuple) -> None:
        self.vector, self.left = (None if state[0] is None else np.array(state[0], np.float32)), int(state[1])
