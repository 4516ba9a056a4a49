"""`worldbridge eval-prompts`: does a world do what its prompts and events say? Measured by pixel checks.

On held-out sandbox levels: text prompt -> first frame, checked per attribute (theme, time, weather); sketch ->
first frame, compared with the real view of the same sketch; events fired mid-rollout, checked within 24 frames
(typed, and by paraphrases never seen in training), against a paired rollout without the event (false events).
Rollouts branch from one snapshot (get_state/set_state), so with and without the event share everything else.
Run it on the sandbox itself (`--backend sandbox`) to validate the checks: the real game must score ~100%.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from bridge.backend import Prompt, WorldEvent
from bridge.prompts.checks import (ATTRIBUTES, HELDOUT_SEEDS, REFERENCE_SEEDS, WINDOW, SceneChecker, event_detected,
                                   sandbox_scenes, texture_features, to_64, validate)
from bridge.prompts.events import EVAL_PARAPHRASES
from bridge.worlds.events import EVENT_TYPES
from bridge.worlds.levels import THEMES, TIMES, WEATHERS, LevelParams, caption_for, random_params

# Scene prompts never used in training (training captions follow caption_for's template), with what they ask for.
SCENE_PARAPHRASES: list[tuple[str, dict[str, str]]] = [
    ("a frozen tundra world at midnight", {"theme": "snow", "time": "night"}),
    ("sand dunes under the blazing midday sun", {"theme": "desert", "time": "day"}),
    ("a dark underground cavern", {"theme": "cave"}),
    ("a volcanic fortress full of fire", {"theme": "lava_castle"}),
    ("green rolling hills on a misty morning", {"theme": "grassland", "weather": "fog"}),
    ("a stormy evening in the desert with pouring rain", {"theme": "desert", "time": "dusk", "weather": "rain"}),
    ("meadows at sunset", {"theme": "grassland", "time": "dusk"}),
    ("an icy landscape while a blizzard rages", {"theme": "snow", "weather": "snow"}),
    ("a grassy field at night in heavy rain", {"theme": "grassland", "time": "night", "weather": "rain"}),
    ("a castle of lava shrouded in haze", {"theme": "lava_castle", "weather": "fog"}),
]


@dataclass
class EvalOptions:
    """How much to measure; the defaults take a few minutes for the tiny model on 2 CPU cores."""

    seeds: tuple[int, ...] = HELDOUT_SEEDS
    reference_seeds: tuple[int, ...] = REFERENCE_SEEDS  # levels the tokenizer-calibrated checks are fitted on
    prompts: int = 60  # text prompts (theme x time x weather combinations, cycled)
    sketches: int = 12
    trials: int = 6  # rollouts per event type
    warmup: int = 4  # frames rolled before the event fires
    window: int = WINDOW
    event_guidance: float | None = None  # None: the backend's default
    event_types: list[str] = field(default_factory=lambda: list(EVENT_TYPES))


def _params(seed: int, **fixed) -> LevelParams:
    return random_params(np.random.default_rng(seed), **fixed)


def start(backend, seed: int, params: LevelParams, frame: np.ndarray | None = None) -> np.ndarray:
    """Put any backend at the first frame of a held-out level: the sandbox builds it, a model is shown it."""
    if backend.kind == "sandbox":
        return backend.reset(Prompt(seed=seed), params=params)
    if frame is None:
        from bridge.worlds.sandbox import SandboxWorld

        frame = SandboxWorld(size=backend.height).reset(Prompt(seed=seed), params=params)
    return backend.reset(Prompt(seed=seed, image=frame))


def still_action(backend, seeds: tuple[int, ...], frames: int = 6) -> int:
    """The action that changes the picture least (the sandbox's noop; for a model, measured per latent action)."""
    if backend.kind == "sandbox":
        return 0
    motion = np.zeros(backend.num_latent_actions)
    for seed in seeds[:2]:
        p = _params(seed, time="day", weather="clear")
        for a in range(backend.num_latent_actions):
            prev = start(backend, seed, p).astype(np.float32)
            for _ in range(frames):
                f = backend.step(a).astype(np.float32)
                motion[a] += np.abs(f - prev).mean()
                prev = f
    return int(motion.argmin())


def supports(backend, what: str) -> bool:
    """Whether a backend was trained for a kind of prompt: "text_prompts", "sketch_prompts", "events"."""
    if backend.kind == "sandbox":
        return True
    if what == "events":
        return bool(getattr(backend, "event_types", []))
    return bool(getattr(getattr(backend, "prompts", None), what, False))


PROMPT_SECTIONS = {  # section -> (what supports() asks for, what a user calls it, how a world gets it)
    "text": ("text_prompts", "text prompts", "it has no first-frame model: `worldbridge train prompts first-frame "
             "--world {world} --data DATA` adds one"),
    "sketch": ("sketch_prompts", "sketch prompts", "its first-frame model (if any) was not trained on sketches: "
               "`worldbridge train prompts first-frame --world {world} --data DATA` on footage made with "
               "`worldbridge data generate ... --sketch`"),
    "events": ("events", "world events", "it was not taught events: `worldbridge train prompts events --world {world} "
               "--data DATA --out NEW_WORLD` makes a world that has them"),
}


def untrained(backend, sections: tuple[str, ...], world: str) -> dict[str, str]:
    """Each prompt section asked for that this world was not trained for -> why, and the command that trains it."""
    return {k: f"{name}: {fix.format(world=world)}" for k, (what, name, fix) in PROMPT_SECTIONS.items()
            if k in sections and not supports(backend, what)}


def _accuracy(pairs: list[tuple[str, str]]) -> float | None:
    return float(np.mean([a == b for a, b in pairs])) if pairs else None


# --- Text prompts ---

def _prompt_scores(got: dict[str, list], para: dict[str, list]) -> dict[str, Any]:
    per = {a: {"accuracy": _accuracy(p), "n": len(p),
               "by_value": {v: _accuracy([x for x in p if x[1] == v]) for v in ATTRIBUTES[a] if any(x[1] == v for x in p)}}
           for a, p in got.items()}
    return {"prompt_attribute_accuracy": float(np.mean([per[a]["accuracy"] for a in ATTRIBUTES])),
            "prompt_attribute": per,
            "prompt_attribute_accuracy_paraphrase": _accuracy([x for p in para.values() for x in p]),
            "prompt_attribute_paraphrase": {a: _accuracy(p) for a, p in para.items()}}


def eval_text_prompts(backend, checkers: dict[str, SceneChecker], opts: EvalOptions, bar) -> dict[str, dict[str, Any]]:
    """Per checker: attribute accuracy of first frames made from caption-style and from paraphrased prompts."""
    combos = list(itertools.product(THEMES, TIMES, WEATHERS))
    order = np.random.default_rng(0).permutation(len(combos))
    got = {c: {a: [] for a in ATTRIBUTES} for c in checkers}
    para = {c: {a: [] for a in ATTRIBUTES} for c in checkers}
    for k in range(opts.prompts):
        theme, tod, weather = combos[order[k % len(combos)]]
        seed = opts.seeds[k % len(opts.seeds)]
        text = caption_for(_params(seed, theme=theme, time=tod, weather=weather))
        if weather == "clear":  # the training captions leave clear weather unsaid; a prompt must say what it scores
            text += " under a clear sky"
        frame = backend.reset(Prompt(seed=seed + k, text=text))
        for c, checker in checkers.items():
            pred = checker.classify([frame])[0]
            for a, want in (("theme", theme), ("time", tod), ("weather", weather)):
                got[c][a].append((pred[a], want))
        bar.update(1)
    for k, (text, want) in enumerate(SCENE_PARAPHRASES):
        try:
            frame = backend.reset(Prompt(seed=opts.seeds[0] + k, text=text))
        except ValueError:
            frame = None
        for c, checker in checkers.items():
            pred = checker.classify([frame])[0] if frame is not None else {a: None for a in ATTRIBUTES}
            for a, v in want.items():
                para[c][a].append((pred[a], v))
        bar.update(1)
    return {c: _prompt_scores(got[c], para[c]) for c in checkers}


# --- Sketch prompts ---

def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((to_64(a).astype(np.float32) - to_64(b).astype(np.float32)) ** 2).mean()) / 255.0**2
    return float(-10 * np.log10(max(mse, 1e-10)))


def eval_sketches(backend, opts: EvalOptions, bar) -> dict[str, Any]:
    """Generated frame vs the real view of the same sketch, against vs the real view of another sketch."""
    from bridge.worlds.sandbox import SandboxWorld

    world = SandboxWorld(size=backend.height)
    pairs = []
    for k in range(opts.sketches):
        seed = opts.seeds[k % len(opts.seeds)] + 1000 * k
        p = _params(seed, time="day", weather="clear")
        real = world.reset(Prompt(seed=seed), params=p)
        for _ in range(int(np.random.default_rng(seed).integers(0, 40))):
            real = world.step(2)
        pairs.append((world.sketch(), real, caption_for(p)))
    own, other = [], []
    for k, (sk, real, text) in enumerate(pairs):
        try:
            frame = backend.reset(Prompt(seed=k, sketch=sk, text=text))
        except ValueError as e:
            bar.update(opts.sketches - k)
            return {"sketch_supported": False, "sketch_error": str(e)}
        own.append(_psnr(frame, real))
        other.append(_psnr(frame, pairs[(k + 1) % len(pairs)][1]))
        bar.update(1)
    return {"sketch_supported": True, "sketch_psnr": float(np.mean(own)), "sketch_psnr_other_layout": float(np.mean(other)),
            "sketch_layout_wins": float(np.mean(np.array(own) > np.array(other)))}


# --- Events ---

def event_scene(event_type: str, k: int) -> dict[str, str]:
    """A scene where the event is a visible change (no snow event while it already snows), cycling themes."""
    theme = THEMES[k % len(THEMES)]
    tod, weather = "day", "clear"
    if event_type == "day_breaks":
        tod = ("night", "dusk")[k % 2]
    elif event_type in ("night_falls", "dusk"):
        tod = "day"
    elif event_type == "weather_clear":
        weather = ("rain", "snow", "fog")[k % 3]
    return {"theme": theme, "time": tod, "weather": weather}


def _rollout(backend, action: int, n: int, event: WorldEvent | None) -> list[np.ndarray]:
    frames = []
    for t in range(n):
        frames.append(backend.step(action, event if t == 0 else None))
    return frames


def event_trials(backend, opts: EvalOptions, action: int):
    """Every event trial's start: a scene where the event is a visible change, warmed up with `action`; yields
    (event type, trial number, scene, warm-up frames, the snapshot each run branches from)."""
    for etype in opts.event_types:
        for k in range(opts.trials):
            scene = event_scene(etype, k)
            seed = opts.seeds[k % len(opts.seeds)] + 7919 * k
            start(backend, seed, _params(seed, **scene))
            pre = [backend.step(action) for _ in range(opts.warmup)]
            yield etype, k, scene, pre, backend.get_state()


def _rates(hits: dict[str, list[bool]], key: str) -> dict[str, Any]:
    """The share of hits over every trial under `key`, and per event type under `key`_by_type."""
    return {key: float(np.mean([x for v in hits.values() for x in v])),
            f"{key}_by_type": {t: float(np.mean(v)) for t, v in hits.items()}}


def eval_events(backend, checkers: dict[str, SceneChecker], opts: EvalOptions, action: int, bar) -> dict[str, dict[str, Any]]:
    """Per checker: typed / paraphrased event success and the false-event rate of paired no-event rollouts."""
    hits = {c: {run: {t: [] for t in opts.event_types} for run in ("none", "typed", "paraphrase")} for c in checkers}
    errors: list[str] = []
    for etype, k, scene, pre, snap in event_trials(backend, opts, action):
        runs = {"none": None, "typed": WorldEvent(type=etype),
                "paraphrase": WorldEvent(text=EVAL_PARAPHRASES[etype][k % len(EVAL_PARAPHRASES[etype])])}
        for run, event in runs.items():
            backend.set_state(snap)
            try:
                frames = [pre[-1]] + _rollout(backend, action, opts.window, event)
            except ValueError as e:  # e.g. the sandbox's keyword matcher does not know a paraphrase
                errors.append(f"{etype}/{run}: {e}")
                frames = None
            for c, checker in checkers.items():
                hit = frames is not None and event_detected(etype, frames, checker, scene["theme"], scene["time"])
                hits[c][run][etype].append(bool(hit))
        bar.update(1)
    return {c: {**_rates(h["typed"], "event_success"), **_rates(h["paraphrase"], "event_success_paraphrase"),
                **_rates(h["none"], "false_event_rate"), "event_errors": errors[:10]} for c, h in hits.items()}


def paraphrase_reading(backend, opts: EvalOptions) -> dict[str, Any] | None:
    """How the world reads each held-out paraphrase: as which trained wording (and so event), or as its own vector."""
    prompts = getattr(backend, "prompts", None)
    if prompts is None or prompts.events is None or not prompts.events.wordings:
        return None
    owner = {w: t for t, ws in prompts.events.wordings.items() for w in ws}
    read = {t: [prompts.read_text(p)[1] for p in EVAL_PARAPHRASES[t]] for t in opts.event_types}
    flat = [(t, w) for t, ws in read.items() for w in ws]
    return {"read_as": prompts.events.read_as, "n": len(flat),
            "read_as_right_event": float(np.mean([w is not None and owner[w] == t for t, w in flat])),
            "read_as_other_event": float(np.mean([w is not None and owner[w] != t for t, w in flat])),
            "kept_own_vector": float(np.mean([w is None for _, w in flat])),
            "by_type": read}


def reconstruction_ceiling(backend, checker: SceneChecker, opts: EvalOptions) -> dict[str, float] | None:
    """The checks on real held-out frames after the model's own tokenizer (what a perfect generator could score)."""
    if backend.kind == "sandbox":
        return None
    got: dict[str, list[tuple[str, str]]] = {a: [] for a in ATTRIBUTES}
    for k, (theme, tod, weather) in enumerate(itertools.product(THEMES, TIMES, WEATHERS)):
        seed = opts.seeds[k % len(opts.seeds)]
        frame = start(backend, seed, _params(seed, theme=theme, time=tod, weather=weather))
        pred = checker.classify([frame])[0]
        for a, want in (("theme", theme), ("time", tod), ("weather", weather)):
            got[a].append((pred[a], want))
    return {a: _accuracy(p) for a, p in got.items()}


def particles_on_reconstructions(backend, opts: EvalOptions) -> dict[str, Any] | None:
    """Snowflake and raindrop pixels (shares of the frame) in real first frames of clear, snowy and rainy levels and after
    the model's tokenizer: where it erases them, no dynamics on it can show snow or rain, and no check can read them."""
    if backend.kind == "sandbox":
        return None
    from bridge.worlds.sandbox import SandboxWorld

    game = SandboxWorld(size=backend.height)
    out: dict[str, Any] = {}
    for weather in ("clear", "snow", "rain"):
        real, rec = [], []
        for theme, seed in itertools.product(THEMES, opts.seeds):
            real.append(start(game, seed, _params(seed, theme=theme, time="day", weather=weather)))
            rec.append(backend.reset(Prompt(seed=seed, image=real[-1])))
        out[weather] = {side: {key: float(np.mean([texture_features(f)[key] for f in frames]))
                               for key in ("snow_dots", "rain_streaks")} for side, frames in (("real", real), ("reconstructed", rec))}
    return out


def player_on_reconstructions(backend, opts: EvalOptions, walk: int = 12) -> dict[str, Any] | None:
    """The player sprite through the model's tokenizer: each held-out level (every theme) after `walk` steps right,
    drawn with the player and without (the blink phase that hides it). `contrast_kept` is the share of the sprite's
    difference that the reconstructions keep: a player the world cannot draw is one no input can visibly move."""
    if backend.kind == "sandbox" or not hasattr(backend, "reconstruct"):
        return None
    from bridge.worlds.sandbox import ACTIONS, SandboxWorld

    game = SandboxWorld(size=backend.height)
    shown, hidden = [], []
    for theme, seed in itertools.product(THEMES, opts.seeds):
        start(game, seed, _params(seed, theme=theme, time="day", weather="clear"))
        for _ in range(walk):
            game.step(ACTIONS.index("right"))
        state = game.get_state()
        for invulnerable, frames in ((0, shown), (2, hidden)):
            state.invulnerable = invulnerable
            game.set_state(state)
            frames.append(game.render())
    real = np.abs(np.stack(shown).astype(np.float32) - np.stack(hidden)).sum(-1)
    back = [np.stack([backend.reconstruct([f])[0] for f in frames]).astype(np.float32) for frames in (shown, hidden)]
    rec = np.abs(back[0] - back[1]).sum(-1)  # each frame alone: the tokenizer is causal in time
    mask = real > 0
    return {"frames": len(shown), "player_pixels": round(float(mask.sum() / len(shown)), 1),
            "contrast_kept": round(float(rec[mask].sum() / real[mask].sum()), 4)}


def events_on_reconstructions(backend, checker: SceneChecker, opts: EvalOptions, bar=None) -> dict[str, Any] | None:
    """Event checks on the real game's event rollouts after the model's tokenizer: the most a perfect dynamics
    could score, so a low figure here is the tokenizer's and not the dynamics' fault."""
    if backend.kind == "sandbox" or not hasattr(backend, "reconstruct"):
        return None
    from bridge.worlds.sandbox import SandboxWorld

    game = SandboxWorld(size=backend.height)
    hits = {run: {t: [] for t in opts.event_types} for run in ("none", "typed")}
    for etype, _, scene, pre, snap in event_trials(game, opts, 0):  # 0: the game's noop
        for run, event in (("none", None), ("typed", WorldEvent(type=etype))):
            game.set_state(snap)
            frames = backend.reconstruct(pre + _rollout(game, 0, opts.window, event))[opts.warmup - 1:]
            hits[run][etype].append(bool(event_detected(etype, frames, checker, scene["theme"], scene["time"])))
        if bar is not None:
            bar.update(1)
    return {**_rates(hits["typed"], "event_success"), **_rates(hits["none"], "false_event_rate")}


def tokenizer_checker(backend, seeds: tuple[int, ...] = REFERENCE_SEEDS, progress: bool = False) -> SceneChecker:
    """Checks fitted on the reference scenes as this model's tokenizer reconstructs them (its own idea of snow)."""
    scenes = sandbox_scenes(seeds, progress=progress)
    for s in tqdm(scenes, desc="reconstruct reference scenes", disable=not progress, leave=False):
        s.frame = backend.reset(Prompt(seed=0, image=s.frame))
    return SceneChecker(scenes, augment=False, gate=False)  # its own idea of snow, particles or not


def evaluate(backend, checker: SceneChecker, opts: EvalOptions | None = None, progress: bool = True,
             sections: tuple[str, ...] = ("checks", "text", "sketch", "events"), calibrate: bool = False) -> dict[str, Any]:
    """Every prompt metric for one backend, as one JSON-ready dict.

    With `calibrate` (world models only) the text and event metrics are also scored by checks fitted on the model's
    own tokenizer reconstructions, under "tokenizer_calibrated"; the top-level figures always use the sandbox checks.
    """
    opts = opts or EvalOptions()
    t0 = time.time()
    out: dict[str, Any] = {"backend": {"kind": backend.kind, "name": backend.name}}
    if opts.event_guidance is not None and hasattr(backend, "configure"):
        backend.configure(event_cfg=opts.event_guidance)
    if hasattr(backend, "settings"):
        out["settings"] = dict(backend.settings)
    checkers = {"sandbox": checker}
    total = (opts.prompts + len(SCENE_PARAPHRASES) if "text" in sections else 0) + \
            (opts.sketches if "sketch" in sections else 0) + \
            (len(opts.event_types) * opts.trials * (1 + hasattr(backend, "reconstruct")) if "events" in sections else 0)
    if calibrate and backend.kind != "sandbox":
        checkers["tokenizer"] = tokenizer_checker(backend, opts.reference_seeds, progress)
        out["tokenizer_calibrated"] = {"checks_on_reconstructions": reconstruction_ceiling(backend, checkers["tokenizer"], opts)}
    with tqdm(total=total, desc="eval-prompts", unit="trial", disable=not progress, dynamic_ncols=True) as bar:
        if "checks" in sections:
            out["checks_validation"] = validate(checker, opts.seeds)
            out["checks_on_reconstructions"] = reconstruction_ceiling(backend, checker, opts)
            out["particles_on_reconstructions"] = particles_on_reconstructions(backend, opts)
            out["player_on_reconstructions"] = player_on_reconstructions(backend, opts)
        if "text" in sections and not supports(backend, "text_prompts"):
            out["prompt_attribute_accuracy"] = None
            out["text_prompts_supported"] = False
            bar.update(opts.prompts + len(SCENE_PARAPHRASES))
        elif "text" in sections:
            res = eval_text_prompts(backend, checkers, opts, bar)
            out.update(res["sandbox"])
            if "tokenizer" in res:
                out["tokenizer_calibrated"].update({k: v for k, v in res["tokenizer"].items()})
        if "sketch" in sections and not supports(backend, "sketch_prompts"):
            out["sketch"] = {"sketch_supported": False}
            bar.update(opts.sketches)
        elif "sketch" in sections:
            out["sketch"] = eval_sketches(backend, opts, bar)
        if "events" in sections and not supports(backend, "events"):
            out["event_success"] = out["event_success_paraphrase"] = out["false_event_rate"] = None
            out["events_supported"] = False
        elif "events" in sections:
            out["events_on_reconstructions"] = events_on_reconstructions(backend, checker, opts, bar)
            action = still_action(backend, opts.seeds)
            out["still_action"] = action
            res = eval_events(backend, checkers, opts, action, bar)
            out.update(res["sandbox"])
            out["paraphrase_reading"] = paraphrase_reading(backend, opts)
            if "tokenizer" in res:
                out["tokenizer_calibrated"].update({k: v for k, v in res["tokenizer"].items() if k != "event_errors"})
    out["seconds"] = round(time.time() - t0, 1)
    return out
