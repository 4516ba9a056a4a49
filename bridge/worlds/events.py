"""Promptable world events of the sandbox: their types, captions, and matching free text to a type."""

from __future__ import annotations

import re

EVENT_TYPES = [
    "weather_rain",
    "weather_snow",
    "weather_fog",
    "weather_clear",
    "night_falls",
    "dusk",
    "day_breaks",
    "spawn_enemy",
    "spawn_coins",
    "flood",
]

EVENT_CAPTIONS = {
    "weather_rain": "it starts to rain",
    "weather_snow": "it starts to snow",
    "weather_fog": "fog rolls in",
    "weather_clear": "the sky clears",
    "night_falls": "night falls",
    "dusk": "the sun sets",
    "day_breaks": "day breaks",
    "spawn_enemy": "an enemy appears",
    "spawn_coins": "coins appear",
    "flood": "the water rises",
}

# keyword -> event type; earlier entries win ties, so "stop the rain" clears rather than rains
_KEYWORDS: list[tuple[str, tuple[str, ...]]] = [
    ("weather_clear", ("clear", "clears", "stop", "stops", "end", "ends", "sunny", "sunshine", "calm")),
    ("flood", ("flood", "floods", "flooding", "water", "rises", "rising", "tide", "deluge")),
    ("weather_snow", ("snow", "snows", "snowing", "snowfall", "blizzard", "snowflakes")),
    ("weather_rain", ("rain", "rains", "raining", "rainy", "storm", "downpour", "drizzle", "shower")),
    ("weather_fog", ("fog", "foggy", "mist", "misty", "haze", "hazy")),
    ("night_falls", ("night", "nighttime", "dark", "darkness", "midnight", "moon")),
    ("dusk", ("dusk", "sunset", "evening", "twilight", "sets", "setting")),
    ("day_breaks", ("day", "dawn", "morning", "sunrise", "daybreak", "daylight", "light", "bright", "sun", "rises")),
    ("spawn_enemy", ("enemy", "enemies", "monster", "monsters", "foe", "foes", "creature", "baddie")),
    ("spawn_coins", ("coin", "coins", "gold", "treasure", "money")),
]


def match_event_text(text: str) -> str:
    """The event type free text asks for ("make it snow" -> "weather_snow"); ValueError if none matches."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    scores = {etype: len(words & set(keys)) for etype, keys in _KEYWORDS}
    if scores["weather_clear"] and not any(w in words for w in ("rain", "snow", "fog", "sky", "weather", "clouds", "mist", "storm", "clear", "clears", "sunny", "sunshine")):
        scores["weather_clear"] = 0  # "stop" alone (e.g. "enemies stop") is not about the weather
    best = max(scores.values())
    if best == 0:
        raise ValueError(
            f"no sandbox event matches {text!r}; say e.g. 'make it snow', 'night falls', 'spawn an enemy', "
            f"or pass one of the event types {EVENT_TYPES}"
        )
    return next(etype for etype, _ in _KEYWORDS if scores[etype] == best)
