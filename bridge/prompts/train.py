"""Training the prompt models on top of a trained world: the text/sketch first-frame MaskGIT, and event conditioning.

Both stages freeze the world's tokenizer (and latent action model), so frames are tokenized once up front and
each step only runs the model being trained. `train_events` fine-tunes the dynamics with event embeddings in its
conditioning slot and writes a new, complete world checkpoint; `train_first_frame` writes first_frame.* into a
world's directory.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from bridge.data.dataset import check_frame_size
from bridge.model.checkpoint import CheckpointError, load_model, read_json, save_model, state_tensors
from bridge.model.genie import WorldModel
from bridge.prompts.events import (EventSettings, cond_for_clip, default_captions, load_event_settings,
                                   save_event_settings, trained_wordings, training_text)
from bridge.prompts.first_frame import (META, PRESETS, WEIGHTS, FirstFrameModel, has_first_frame, load_first_frame,
                                        save_first_frame, sketch_class_map, tokenizer_fingerprint)
from bridge.prompts.text_encoder import get_encoder
from bridge.train.loop import (FINE_TUNE_RERUN, Averager, budget_stop, card_options, check_new_out, fine_tune,
                               footage_record, kept_options, progress_bar, seed_run, set_lr, train_device)
from bridge.train.options import PROMPT_DEFAULTS
from bridge.values import plural
from bridge.worlds.events import EVENT_TYPES

if TYPE_CHECKING:
    from bridge.data.dataset import Episode, VideoDataset


@dataclass
class PromptTrainOptions:
    """One prompt-training run; None (the options in KEPT) means a resumed run's own, else the stage's default
    (train/options.py's PROMPT_DEFAULTS); other None fields: the stage's default."""

    world: str  # a world checkpoint directory (`worldbridge train dynamics --out`)
    data: str  # a sandbox dataset with captions/events (and sketches for the sketch prompt)
    out: str | None = None  # events: new world dir (required); first-frame: default = the world dir
    steps: int | None = None  # in this run
    batch: int | None = None
    lr: float | None = None
    seed: int | None = None
    device: str | None = None
    encoder: str = "minilm"
    max_frames: int = 12000  # frames tokenized up front (a cap on memory and set-up time)
    preset: str | None = None  # first-frame model size (None: the world's preset, else tiny)
    clip_len: int = 8  # events: clip length (short clips put more of the loss on the event frames)
    hold: int | None = None  # events: frames the embedding stays in the cond slot (None: 4, or a resumed run's own)
    event_share: float = 0.5  # events: share of clips that contain an event
    guidance: float | None = None  # events: default guidance scale written to events.json (None: 3, or the run's own)
    anchor: float = 0.0  # events: weight of KL(source world || this one) on event-free clips (against flicker)
    init_from: str | None = None  # first-frame: start from this world's first-frame model (e.g. before a new tokenizer)
    ckpt_every: int | None = None
    max_minutes: float | None = None  # of this run
    command: str = ""
    progress: bool = True


# The options a stage records in its card (first_frame.json; the world card's "events") and a resumed run keeps unless
# given again (--steps and --max-minutes count per run); their defaults: train/options.py's PROMPT_DEFAULTS
KEPT = {"steps": "steps_per_run", "batch": "batch", "lr": "lr", "seed": "seed", "ckpt_every": "ckpt_every",
        "max_minutes": "max_minutes"}
PROMPT_WARMUP = 20  # steps of linear lr warm-up (the cosine then decays to 10% by the steps or --max-minutes)


def _load_world(path: str, device: torch.device, tokenizer_ok: bool = False) -> tuple[WorldModel, Any, dict]:
    """A world checkpoint as a model in eval mode; with tokenizer_ok a tokenizer run also does (only its tokenizer
    is then real: enough for the first-frame model, which needs nothing else)."""
    cfg, tensors, card, header = load_model(Path(path), kind=None if tokenizer_ok else "world")
    model = WorldModel(cfg, bank_size=tensors["bank"].shape[0] if "bank" in tensors else 0)
    target = model.tokenizer if header["kind"] == "tokenizer" else model
    if header["kind"] == "tokenizer":
        tensors = {k[len("tokenizer."):]: v for k, v in tensors.items() if k.startswith("tokenizer.")}
    missing, unexpected = target.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path} does not match its config.json (missing {missing[:4]}, unexpected {unexpected[:4]})")
    return model.to(device).eval(), tensors, card


@torch.no_grad()
def tokenize_frames(model: WorldModel, frames: np.ndarray, device: torch.device, batch: int = 128,
                    progress: bool = False, desc: str = "tokenize") -> np.ndarray:
    """(n, H, W, 3) uint8 -> (n, N) int16, each frame tokenized on its own (as a prompt frame is)."""
    out = np.zeros((len(frames), model.cfg.tokens_per_frame), np.int16)
    for i in tqdm(range(0, len(frames), batch), desc=desc, disable=not progress, leave=False):
        x = torch.from_numpy(np.array(frames[i : i + batch])).to(device)
        out[i : i + batch] = model.tokenizer.encode(x[:, None])[0][:, 0].cpu().numpy()
    return out


@torch.no_grad()
def tokenize_episode(model: WorldModel, frames: np.ndarray, device: torch.device, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """An episode (L, H, W, 3) -> tokens (L, N) int16 and latent actions (L-1,) int16, as the world's training saw them."""
    toks, acts = [], []
    for s in range(0, len(frames), chunk):
        x = torch.from_numpy(np.array(frames[max(s - 1, 0) : s + chunk])).to(device)[None]
        t = model.tokenizer.encode(x)[0][0]
        a = model.lam.encode(x)[0][0]
        toks.append(t[1:] if s else t)
        acts.append(a)
    return torch.cat(toks).cpu().numpy().astype(np.int16), torch.cat(acts).cpu().numpy().astype(np.int16)


# --- Text/sketch -> first frame ---

_THEME = {"grassland": ["grassy", "grassland", "green"], "desert": ["desert", "sandy"], "snow": ["snowy", "icy"],
          "cave": ["cave", "underground"], "lava_castle": ["lava castle", "volcanic castle"]}
_WEATHER = {"clear": ["under a clear sky", "clear"], "rain": ["in the rain", "rainy"], "snow": ["in falling snow", "snowing"],
            "fog": ["in thick fog", "foggy"]}


def caption_variant(params: dict, rng: np.random.Generator) -> str:
    """A shorter wording naming a random subset of theme / time / weather (so short prompts work too)."""
    keep = [k for k in ("theme", "time", "weather") if rng.random() < 0.6] or ["theme"]
    words = []
    if "theme" in keep:
        words.append(str(rng.choice(_THEME[params["theme"]])))
    if "time" in keep:
        words.append(params["time"])
    phrase = " ".join(["a"] + words + ["level"])
    if "weather" in keep:
        w = _WEATHER[params["weather"]]
        if params["weather"] == "clear":
            phrase = f"{phrase} under a clear sky" if rng.random() < 0.5 else phrase.replace("a ", "a clear ", 1)
        else:
            phrase = f"{phrase} {w[0]}" if rng.random() < 0.5 else phrase.replace("a ", f"a {w[1]} ", 1)
    return phrase


def pre_event_indices(episode: Episode, count: int, rng: np.random.Generator) -> list[int]:
    """Frame 0 and up to count-1 random frames before the episode's first event (the caption still holds there)."""
    last = min([int(ev["frame"]) for ev in episode.events] + [episode.length])
    return sorted(set([0] + [int(t) for t in rng.integers(0, max(last, 1), size=max(count - 1, 0))]))


def first_frame_samples(ds: VideoDataset, max_frames: int, rng: np.random.Generator, with_sketch: bool) -> tuple:
    """(frames, sketches or None, captions) from train episodes, only frames before the first event (the caption
    describes the level as it started)."""
    eps = [e for e in ds.split("train") if e.caption]
    if not eps:
        raise ValueError(f"{ds.root} has no captioned training episodes: generate a sandbox dataset with "
                         "`worldbridge data generate --sketch`")
    per = max(1, max_frames // len(eps))
    frames, sketches, texts = [], [], []
    for e in eps:
        ts = pre_event_indices(e, per, rng)
        fr = ds.frames(e)
        frames.append(np.asarray(fr[ts]))
        if with_sketch:
            sketches.append(np.asarray(ds.sketches(e)[ts]))
        for _ in ts:
            texts.append(e.caption if (e.params is None or rng.random() < 0.5) else caption_variant(e.params, rng))
    return np.concatenate(frames), (np.concatenate(sketches) if with_sketch else None), texts


def _check_setup(source: str, meta: dict, model: FirstFrameModel, cfg, opts: PromptTrainOptions, fix: str) -> None:
    """A first-frame model trained on another text encoder or at another size would be trained on as if it were not."""
    if meta.get("encoder", opts.encoder) != opts.encoder or model.cfg.dim != cfg.dim:
        raise ValueError(f"{source} holds a first-frame model trained with --encoder {meta.get('encoder')} at width "
                         f"{model.cfg.dim}, not --encoder {opts.encoder} --preset {opts.preset} (width {cfg.dim}): {fix}")


def _saved_preset(folder: Path | None) -> str | None:
    """The preset a saved first-frame model was built at: a resumed or warm-started run keeps its own size."""
    if folder is None or not has_first_frame(folder):
        return None
    c = read_json(folder / META).get("config", {})
    return next((name for name, p in PRESETS.items()
                 if (p.dim, p.depth, p.heads) == (c.get("dim"), c.get("depth"), c.get("heads"))), None)


def train_first_frame(opts: PromptTrainOptions) -> dict[str, Any]:
    """Train the first-frame MaskGIT on (caption, frame[, sketch]) pairs; returns final metrics."""
    from bridge.data.dataset import VideoDataset

    device = train_device(opts.device)
    world, _, world_card = _load_world(opts.world, device, tokenizer_ok=True)
    out = Path(opts.out or opts.world)
    resumed = has_first_frame(out)
    if opts.preset is None:  # a new model takes the world's size (a micro world got a tiny one, 30x slower per step)
        own = _saved_preset(out if resumed else Path(opts.init_from) if opts.init_from else None)
        opts = dataclasses.replace(opts, preset=own or (world.cfg.preset if world.cfg.preset in PRESETS else "tiny"))
    if opts.preset not in PRESETS:
        raise ValueError(f"unknown first-frame preset {opts.preset!r}: choose one of {', '.join(PRESETS)}")
    ds = VideoDataset(opts.data)
    check_frame_size(ds, world.cfg.height, world.cfg.width, f"the world {opts.world}")
    encoder = get_encoder(opts.encoder)
    with_sketch = bool(ds.has_sketches)

    cfg = copy.deepcopy(PRESETS[opts.preset])
    cfg.text_dim = encoder.dim
    run = read_json(out / META) if resumed else {}
    opts = kept_options(opts, run, PROMPT_DEFAULTS["first-frame"], KEPT)
    start = int(run.get("step", 0))
    rng = seed_run(opts.seed, start)  # before a new model's weights are drawn
    model, init_from = _first_frame_model(out, resumed, opts, cfg, world)
    tokens, text_vec, sk, captions = _first_frame_pairs(world, ds, encoder, opts, rng, with_sketch, device)
    model.to(device).train()
    lr = opts.lr
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.05)
    n = len(tokens)
    bar = progress_bar(opts.steps, f"train first-frame ({opts.preset})", opts.progress, max_minutes=opts.max_minutes)
    t0, avg, metrics = time.time(), Averager(), {}
    card = {"world": str(Path(opts.world).resolve()), "world_step": world_card.get("step"), "data": str(Path(opts.data).resolve()),
            **footage_record(run, [ds], out, start, warn=resumed),
            "samples": n, "captions": captions, "sketch_trained": with_sketch, "encoder": opts.encoder,
            "tokenizer": tokenizer_fingerprint(world.tokenizer), "command": opts.command,
            **card_options(opts, KEPT), "init_from": init_from}

    def save(step: int) -> None:
        save_first_frame(out, model, {**card, "step": step, "metrics": metrics,
                                      "updated": _dt.datetime.now().isoformat(timespec="seconds")})

    def step(i: int) -> None:
        nonlocal metrics
        set_lr(opt, i, opts.steps, lr, PROMPT_WARMUP, time.time() - t0, opts.max_minutes)
        idx = torch.from_numpy(rng.integers(0, n, opts.batch))
        res = model.training_loss(tokens[idx].to(device), text_vec[idx].to(device),
                                  None if sk is None else sk[idx].to(device))
        opt.zero_grad(set_to_none=True)
        res["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        metrics = avg.add(res, bar) or metrics

    done = fine_tune(opts.steps, start, step, save, opts.ckpt_every, opts.max_minutes, bar, out)
    metrics = avg.flush() or metrics
    save(done)
    return {"step": done, "out": str(out), "seconds": round(time.time() - t0, 1), **metrics,
            **budget_stop(done, start + opts.steps, opts.max_minutes, FINE_TUNE_RERUN)}


def _first_frame_model(out: Path, resumed: bool, opts: PromptTrainOptions, cfg, world: WorldModel) -> tuple[FirstFrameModel, str | None]:
    """The first-frame model to train: out's own (resumed), --init-from's, or a new one; -> (model, the --init-from
    it started from, for its card)."""
    grid = world.cfg.grid
    if resumed:
        model, meta = load_first_frame(out, world.tokenizer)
        _check_setup(str(out), meta, model, cfg, opts, "resume it with the same --encoder and --preset, or delete "
                                                        "first_frame.* to start over")
        return model, meta.get("init_from")
    if opts.init_from:  # its tokens' meanings are relearned here, so no tokenizer check
        model, init_meta = load_first_frame(Path(opts.init_from))
        _check_setup(f"--init-from {opts.init_from}", init_meta, model, cfg, opts,
                     "give the --encoder and --preset it was trained with")
        if (model.vocab, model.grid) != (world.tokenizer.vocab, tuple(grid)):
            raise ValueError(f"--init-from {opts.init_from} has a first-frame model over {model.vocab} codes on a "
                             f"{model.grid} grid but this world's tokenizer has {world.tokenizer.vocab} on {tuple(grid)}")
        return model, str(Path(opts.init_from).resolve())
    return FirstFrameModel(cfg, world.tokenizer.vocab, grid), opts.init_from


def _first_frame_pairs(world: WorldModel, ds: VideoDataset, encoder, opts: PromptTrainOptions, rng: np.random.Generator,
                       with_sketch: bool, device: torch.device) -> tuple:
    """The training pairs, tokenized and encoded once: (frame tokens, caption vectors, sketch class maps or None,
    the number of distinct captions)."""
    frames, sketches, texts = first_frame_samples(ds, opts.max_frames, rng, with_sketch)
    tokens = torch.from_numpy(tokenize_frames(world, frames, device, progress=opts.progress).astype(np.int64))
    unique = sorted(set(texts))
    emb = encoder.encode(unique)
    text_vec = torch.from_numpy(emb[[unique.index(t) for t in texts]])
    sk = torch.from_numpy(np.stack([sketch_class_map(s, world.cfg.grid) for s in sketches])) if with_sketch else None
    return tokens, text_vec, sk, len(unique)


# --- Events in the dynamics' conditioning slot ---

def _event_world(src: WorldModel, src_tensors: dict, event_types: list[str], cond_dim: int) -> WorldModel:
    """The source world rebuilt with a conditioning slot of width cond_dim and the event types (new weights zero)."""
    cfg = copy.deepcopy(src.cfg)
    if cfg.dynamics.cond_dim not in (0, cond_dim):
        raise ValueError(f"the world's conditioning slot is {cfg.dynamics.cond_dim} wide but the text encoder gives "
                         f"{cond_dim}: use the encoder it was trained with")
    cfg.dynamics.cond_dim = cond_dim
    cfg.event_types = list(event_types)
    model = WorldModel(cfg, bank_size=src.bank.shape[0])
    missing, unexpected = model.load_state_dict(src_tensors, strict=False)
    allowed = {"dynamics.cond_proj.weight", "event_embed", "dynamics.cond_token"}
    if unexpected or set(missing) - allowed:
        raise CheckpointError(f"cannot add events to this world (missing {missing[:4]}, unexpected {unexpected[:4]})")
    return model


def event_episodes(ds: VideoDataset, max_frames: int, rng: np.random.Generator) -> list:
    """Train episodes to tokenize: all with events first, then others, up to max_frames frames."""
    eps = list(ds.split("train"))
    rng.shuffle(eps)
    eps.sort(key=lambda e: not e.events)
    chosen, total = [], 0
    for e in eps:
        if total + e.length > max_frames and chosen:
            break
        chosen.append(e)
        total += e.length
    if not any(e.events for e in chosen):
        raise ValueError(f"{ds.root} has no events in its training episodes: generate data with events, e.g. "
                         "`worldbridge data generate --event-fraction 1 --events-per-episode 2`")
    return chosen


def anchor_kl(ref: torch.nn.Module, res: dict[str, torch.Tensor], event_free: torch.Tensor) -> torch.Tensor:
    """KL(reference || model) on the masked tokens of event-free clips: event training may not retune plain play."""
    free = event_free.to(res["mask"].device)
    mask = res["mask"][free]
    if not mask.any():
        return res["logits"].sum() * 0.0
    inputs = res["inputs"][free]  # the reference only runs on the clips it scores
    with torch.no_grad():
        cond = inputs.new_zeros(*inputs.shape[:2], ref.cfg.cond_dim, dtype=torch.float) if ref.cfg.cond_dim > 0 else None
        ref_logp = F.log_softmax(ref(inputs, res["frame_actions"][free], cond)[mask].float(), -1)
    logp = F.log_softmax(res["logits"][free][mask].float(), -1)
    return (ref_logp.exp() * (ref_logp - logp)).sum(-1).mean()


def train_events(opts: PromptTrainOptions) -> dict[str, Any]:
    """Fine-tune the world's dynamics to take event embeddings; writes a complete world checkpoint to opts.out."""
    from bridge.data.dataset import VideoDataset

    out, resume = _event_out(opts)
    device = train_device(opts.device)
    src, tensors, src_card = _load_world(str(out if resume else Path(opts.world)), device)
    run = src_card.get("events", {}) if resume else {}
    opts = kept_options(opts, run, PROMPT_DEFAULTS["events"], KEPT)
    start = int(run.get("steps", 0))
    rng = seed_run(opts.seed, start)
    ds = VideoDataset(opts.data)
    check_frame_size(ds, src.cfg.height, src.cfg.width, f"the world {out if resume else opts.world}")
    footage = footage_record(run, [ds], out, start, warn=resume)
    encoder = get_encoder(opts.encoder)
    data, events = _event_data(src, ds, opts, rng, device)  # tokens and latent actions, once
    types, counts, captions = _event_types(events)
    if resume:
        model, settings, types = src, _resumed_settings(out, opts), list(src.cfg.event_types)
    else:
        model = _event_world(src, tensors, types, encoder.dim).to(device)
        settings = EventSettings(encoder=opts.encoder, hold=4 if opts.hold is None else opts.hold,
                                 guidance=3.0 if opts.guidance is None else opts.guidance, captions=captions)
    # a resumed run keeps the wordings of types its new data lacks: the model learned them all the same
    settings.wordings = {**settings.wordings, **trained_wordings([t for t in types if counts.get(t)], settings.captions)}
    with torch.no_grad():
        model.event_embed.copy_(torch.from_numpy(encoder.encode([settings.captions[t] for t in types])))
    clips = EventClips(data, events, opts.clip_len, opts.event_share, settings.hold, encoder)
    ref = _anchor(opts, model, device)

    # --- Fine-tune the dynamics; the new slot learns 10x faster than the pretrained weights ---
    lr, dyn = opts.lr, model.dynamics
    opt = _event_optimizer(dyn, lr)
    card = {**{k: v for k, v in src_card.items() if k not in ("metrics", "events")},
            "events": {"from_world": str(Path(opts.world).resolve()), "data": str(Path(opts.data).resolve()),
                       **footage,
                       "event_types": types, "event_counts": counts, "episodes": len(data), "events": len(events),
                       "clip_len": opts.clip_len,
                       **card_options(opts, KEPT), "encoder": opts.encoder, "hold": settings.hold,
                       **({"anchor": opts.anchor, "anchor_world": str(Path(opts.world).resolve())} if ref is not None else {}),
                       "command": opts.command}}
    metrics: dict[str, float] = {}
    t0 = time.time()

    def save(step: int) -> None:
        card["events"]["steps"] = step
        card["events"]["updated"] = _dt.datetime.now().isoformat(timespec="seconds")
        save_model(out, "world", model.cfg, state_tensors(model), {**card, "metrics": metrics}, int(src_card.get("step", 0)))
        save_event_settings(out, settings)
        if not resume and has_first_frame(Path(opts.world)) and not has_first_frame(out):
            for name in (WEIGHTS, META):  # the tokenizer is unchanged, so the first-frame model still fits
                shutil.copy2(Path(opts.world) / name, out / name)

    def step(i: int) -> None:
        nonlocal metrics
        set_lr(opt, i, opts.steps, lr, PROMPT_WARMUP, time.time() - t0, opts.max_minutes)
        toks, acts, cond, n_ev = clips.sample(opts.batch, rng)
        full = dyn.training_loss(toks.to(device), acts.to(device), cond.to(device))
        res = {k: full[k] for k in ("loss", "ce", "acc")}
        if ref is not None:
            res["anchor_kl"] = anchor_kl(ref, full, event_free=cond.abs().sum((1, 2)) == 0)
            res["loss"] = res["loss"] + opts.anchor * res["anchor_kl"]
        opt.zero_grad(set_to_none=True)
        res["loss"].backward()
        torch.nn.utils.clip_grad_norm_(dyn.parameters(), 1.0)
        opt.step()
        res["slot_norm"] = dyn.cond_proj.weight.norm()
        res["event_clips"] = torch.tensor(n_ev / opts.batch)
        metrics = avg.add(res, bar) or metrics

    dyn.train()
    bar = progress_bar(opts.steps, "train events", opts.progress, max_minutes=opts.max_minutes)
    avg = Averager()
    done = fine_tune(opts.steps, start, step, save, opts.ckpt_every, opts.max_minutes, bar, out)
    dyn.eval()
    metrics = avg.flush() or metrics
    save(done)
    return {"step": done, "out": str(out), "seconds": round(time.time() - t0, 1), "event_types": types, **metrics,
            **budget_stop(done, start + opts.steps, opts.max_minutes, FINE_TUNE_RERUN)}


def _event_out(opts: PromptTrainOptions) -> tuple[Path, bool]:
    """--out, checked: a new directory or an event run to resume (never written over); -> (out, resume)."""
    if not opts.out:
        raise ValueError("train prompts events needs --out: a new directory for the event-conditioned world")
    if opts.clip_len < 3:
        raise ValueError(f"--clip-len must be at least 3 frames, got {opts.clip_len}")
    out = Path(opts.out)
    resume = (out / "config.json").is_file() and load_event_settings(out) is not None
    if not resume:
        check_new_out(out, "train prompts events", "an event run's")
    return out, resume


def _event_optimizer(dyn: torch.nn.Module, lr: float) -> torch.optim.AdamW:
    """AdamW over the dynamics; the new conditioning slot learns 10x faster (its "scale") and without weight decay."""
    slot = [p for n, p in dyn.named_parameters() if n.startswith("cond_")]
    rest = [p for n, p in dyn.named_parameters() if not n.startswith("cond_")]
    return torch.optim.AdamW([{"params": rest, "scale": 1.0}, {"params": slot, "scale": 10.0, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), weight_decay=0.05)


def _event_data(src: WorldModel, ds: VideoDataset, opts: PromptTrainOptions, rng: np.random.Generator,
                device: torch.device) -> tuple[list, list]:
    """The chosen episodes as (tokens, latent actions, events), each at least --clip-len long, and every event as
    (its episode's index, event)."""
    data = []
    for e in tqdm(event_episodes(ds, opts.max_frames, rng), desc="tokenize episodes", disable=not opts.progress,
                  leave=False):
        if e.length < opts.clip_len:
            continue
        tok, act = tokenize_episode(src, np.asarray(ds.frames(e)), device)
        data.append((tok, act, [dict(ev) for ev in e.events]))
    if not data:
        raise ValueError(f"no training episode of {opts.data} is at least --clip-len {opts.clip_len} frames long")
    return data, [(i, ev) for i, (_, _, evs) in enumerate(data) for ev in evs]


def _event_types(events: list) -> tuple[list[str], dict[str, int], dict[str, str]]:
    """The event types a new run learns, how often each occurs and its caption: every sandbox type keeps its caption
    (an untrained type still means something through the encoder), others take the data's."""
    seen_types = sorted({ev.get("type") for _, ev in events if ev.get("type")})
    sandbox = any(t in EVENT_TYPES for t in seen_types)
    types = (list(EVENT_TYPES) if sandbox else []) + [t for t in seen_types if t not in EVENT_TYPES]
    counts = {t: sum(ev.get("type") == t for _, ev in events) for t in types}
    captions = {**default_captions([t for t in types if t in EVENT_TYPES]),
                **{ev["type"]: ev["caption"] for _, ev in events if ev.get("type") not in EVENT_TYPES and ev.get("caption")}}
    return types, counts, captions


def _resumed_settings(out: Path, opts: PromptTrainOptions) -> EventSettings:
    """A resumed run's own event settings: its encoder and hold stay; a given --guidance (the default for play) wins."""
    settings = load_event_settings(out)
    if settings.encoder != opts.encoder:  # typed events and free text must live in one embedding space
        raise ValueError(f"{out} learned its events with the {settings.encoder} text encoder: resume it with "
                         f"--encoder {settings.encoder}, or give a new --out")
    if opts.hold is not None and opts.hold != settings.hold:
        raise ValueError(f"{out} learned to hold events for {plural(settings.hold, 'frame')}, so --hold "
                         f"{opts.hold} cannot apply to it: resume without --hold, or give a new --out")
    return dataclasses.replace(settings, guidance=opts.guidance) if opts.guidance is not None else settings


class EventClips:
    """Training clips of event episodes: tokens, latent actions and the cond slot; a share of them holds an event."""

    def __init__(self, data: list, events: list, clip_len: int, event_share: float, hold: int, encoder):
        self.data, self.events, self.T, self.share, self.hold, self.encoder = data, events, clip_len, event_share, hold, encoder
        self.phrases: dict[str, np.ndarray] = {}

    def vec(self, text: str) -> np.ndarray:
        if text not in self.phrases:
            self.phrases[text] = self.encoder.encode([text])[0]
        return self.phrases[text]

    def sample(self, b: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """b clips -> (tokens, actions, cond, how many hold an event)."""
        T, data, events = self.T, self.data, self.events
        toks, acts, conds, n_ev = [], [], [], 0
        for _ in range(b):
            if rng.random() < self.share:
                i, ev = events[int(rng.integers(len(events)))]
                L = len(data[i][0])
                pos = int(rng.integers(1, T - 1))
                s = int(np.clip(int(ev["frame"]) - pos, 0, L - T))
            else:
                i = int(rng.integers(len(data)))
                s = int(rng.integers(0, len(data[i][0]) - T + 1))
            tok, act, evs = data[i]
            inside = [ev for ev in evs if s - self.hold < int(ev["frame"]) < s + T]
            n_ev += bool(inside)
            conds.append(cond_for_clip(T, s, inside, [self.vec(training_text(ev, rng)) for ev in inside], self.hold,
                                       self.encoder.dim))
            toks.append(tok[s : s + T])
            acts.append(act[s : s + T - 1])
        return (torch.from_numpy(np.stack(toks).astype(np.int64)), torch.from_numpy(np.stack(acts).astype(np.int64)),
                torch.from_numpy(np.stack(conds)), n_ev)


def _anchor(opts: PromptTrainOptions, model: WorldModel, device: torch.device) -> torch.nn.Module | None:
    """With --anchor, the source world's dynamics, frozen: event-free clips are pulled towards its predictions."""
    if opts.anchor < 0:
        raise ValueError(f"--anchor must be >= 0, got {opts.anchor}")
    ref = _load_world(opts.world, device)[0].dynamics if opts.anchor > 0 else None
    if ref is not None and (ref.vocab, ref.num_actions) != (model.dynamics.vocab, model.dynamics.num_actions):
        raise ValueError(f"--anchor needs --world {opts.world} to share this world's tokens and actions")
    return ref
