"""Is a rollout still a world? A frame degenerates when its token statistics leave the range real footage spans.

Definition. For one frame's token map (N tokens over a codebook of K codes):

* `distinct`  - how many different codes the frame uses;
* `max_share` - the share of the frame's tokens taken by its most common code;
* `entropy`   - entropy (bits) of the frame's code histogram;
* `change`    - the share of positions whose code differs from the previous frame's;
* `still`     - how many frames in a row, up to this one, repeat the previous frame's map exactly (0 if it changed).

`calibrate` tokenizes REAL footage (clips from a dataset's val split, as training saw them) with the world's own
tokenizer and keeps each statistic's [p0.5, p99.5]; `save_range` stores that range in the checkpoint's
model_card.json under "health". A frame **degenerates** when any statistic lies outside its range: a collapsed
world (one flat colour: few codes, one code dominating, low entropy) and a noise world (every code different and
flickering: entropy and change too high) both fail, and so does a frozen world (`still` runs longer than real
footage's: calibration uses clips of at least STILL_CLIP frames so that runs can show), while real footage fails
only at the rates the quantiles allow.
`check_rollout` plays a backend for N frames and reports the share of frames within range and the first that is not.

    worldbridge health calibrate --checkpoint RUN --data DATASET   # writes model_card.json["health"]
    worldbridge health check --checkpoint RUN --frames 300         # or: bench --rollout-health 300
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from tqdm import tqdm

from bridge.backend import Prompt
from bridge.data.dataset import ClipSampler, VideoDataset, check_frame_size, no_val_episodes
from bridge.files import atomic_write_json
from bridge.model.checkpoint import CARD, CheckpointError, load_into, load_model, read_json
from bridge.model.tokenizer import VideoTokenizer
from bridge.options import CHECKPOINT_FOLDER, DATASET_FOLDER, DEVICE_OPTION, seed_option

STATS = ("distinct", "max_share", "entropy", "change", "still")
STILL_CLIP = 24  # frames per calibration clip at least: long enough to see how long real footage stays still
QUANTILES = (0.005, 0.995)
HOW_TO_CALIBRATE = ("compute one with `worldbridge health calibrate --checkpoint RUN_DIR --data DATASET` "
                    "(real footage of the world's kind, with a val split)")


def token_stats(tokens: torch.Tensor, vocab: int) -> dict[str, np.ndarray]:
    """tokens (..., T, N) -> each statistic per frame (..., T); `change` and `still` of a sequence's first frame are NaN."""
    t = tokens.long()
    flat = t.reshape(-1, t.shape[-1])  # (F, N)
    counts = torch.zeros(flat.shape[0], vocab, dtype=torch.float32, device=flat.device)
    counts.scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float32))
    p = counts / flat.shape[-1]
    entropy = -(p * torch.log2(p.clamp(min=1e-12))).sum(-1)
    change = torch.full(t.shape[:-1], float("nan"), device=t.device)
    if t.shape[-2] > 1:
        change[..., 1:] = (t[..., 1:, :] != t[..., :-1, :]).float().mean(-1)
    still = torch.full_like(change, float("nan"))
    if t.shape[-2] > 1:
        run = torch.zeros_like(change[..., 0])
        for i in range(1, t.shape[-2]):
            run = torch.where(change[..., i] == 0, run + 1, torch.zeros_like(run))
            still[..., i] = run
    shape = t.shape[:-1]
    out = {"distinct": (counts > 0).sum(-1).reshape(shape), "max_share": p.max(-1).values.reshape(shape),
           "entropy": entropy.reshape(shape), "change": change, "still": still}
    return {k: v.float().cpu().numpy() for k, v in out.items()}


def failing(stats: dict[str, float], stats_range: dict[str, Any]) -> list[str]:
    """Names of the statistics of one frame that lie outside the range (NaN = not measured = not failing; an upper
    bound of None = no limit)."""
    bounds = stats_range["stats"]
    return [k for k in STATS if k in bounds and not np.isnan(stats[k])
            and not bounds[k][0] <= stats[k] <= (np.inf if bounds[k][1] is None else bounds[k][1])]


# --- The range, from real footage ---

def load_tokenizer(checkpoint: str | Path, device: torch.device | str = "cpu") -> VideoTokenizer:
    """The video tokenizer of a world (or tokenizer) run directory, in eval mode."""
    cfg, tensors, _, _ = load_model(Path(checkpoint))
    tok = VideoTokenizer(cfg.tokenizer, cfg.height, cfg.width)
    load_into(tok, tensors, "tokenizer.", where=str(checkpoint))
    return tok.to(device).eval()


def _autocast(device: torch.device) -> Any:
    from bridge.model.world import bf16_by_default

    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16_by_default(device) else nullcontext()


@torch.no_grad()
def calibrate(tokenizer: VideoTokenizer, data: str | Path, clips: int = 512, split: str = "val", seed: int = 0,
              batch: int = 16, progress: bool = True) -> dict[str, Any]:
    """Each statistic's [p0.5, p99.5] over `clips` random clips of real footage from `data`'s `split`."""
    ds = VideoDataset(data)
    episodes = ds.split(split)
    if not episodes:
        raise ValueError(f"{no_val_episodes(ds)} (or pass --split train)" if split == "val" else
                         f"{data} has no {split} episodes: calibrate on its val split (--split val)")
    check_frame_size(ds, tokenizer.height, tokenizer.width, "this world's tokenizer")
    length = min(max(tokenizer.cfg.clip_len, STILL_CLIP), max(e.length for e in episodes))
    if length < 2:
        raise ValueError(f"{data}'s {split} episodes are single frames; `change` needs clips of at least 2 frames")
    sampler = ClipSampler(ds, length, split, seed=seed)
    rng, dev = np.random.default_rng(seed), next(tokenizer.parameters()).device
    per: dict[str, list[np.ndarray]] = {k: [] for k in STATS}
    bar = tqdm(total=clips * length, desc="health: tokenizing real footage", unit="frame", file=sys.stderr,
               disable=not progress)
    with _autocast(dev), bar:
        for start in range(0, clips, batch):
            x = torch.from_numpy(sampler.sample(min(batch, clips - start), rng)).to(dev)  # (B, T, H, W, 3)
            for k, v in token_stats(tokenizer.encode(x)[0], tokenizer.vocab).items():
                per[k].append(v.reshape(-1))
            bar.update(x.shape[0] * length)
    stats = {}
    for k, parts in per.items():
        v = np.concatenate(parts)
        v = v[~np.isnan(v)]
        stats[k] = [float(np.quantile(v, QUANTILES[0])), float(np.quantile(v, QUANTILES[1]))]
    if stats["still"][1] >= length - 1:  # real footage stays still as long as a whole clip: no known limit (null)
        stats["still"][1] = None
    n = int(sum(len(p) for p in per["distinct"]))
    p = tokenizer.cfg.patch
    return {"stats": stats, "quantiles": list(QUANTILES), "frames": n, "clips": clips, "clip_len": length,
            "data": str(data), "split": split, "seed": seed, "vocab": int(tokenizer.vocab),
            "tokens_per_frame": (tokenizer.height // p) * (tokenizer.width // p)}


def save_range(checkpoint: str | Path, stats_range: dict[str, Any]) -> Path:
    """Store the range in the checkpoint's model_card.json (atomically; every other card entry is kept)."""
    path = Path(checkpoint) / CARD
    if not (Path(checkpoint) / "config.json").is_file():
        raise CheckpointError(f"{checkpoint} is not a checkpoint directory (no config.json)")
    card = read_json(path) if path.is_file() else {}
    card["health"] = stats_range
    atomic_write_json(path, card)
    return path


# --- Checking a rollout ---

def _policy(policy: str | int, num_actions: int, rng: np.random.Generator):
    """-> function(frame index) -> action: 'random' (uniform each frame), 'sticky' (held 4-16 frames), or an id."""
    if isinstance(policy, (int, np.integer)) or (isinstance(policy, str) and policy.isdigit()):
        a = int(policy)
        if not 0 <= a < num_actions:
            raise ValueError(f"policy action {a} is outside 0-{num_actions - 1}")
        return lambda t: a
    if policy == "random":
        return lambda t: int(rng.integers(num_actions))
    if policy == "sticky":
        state = {"a": 0, "left": 0}

        def sticky(t: int) -> int:
            if state["left"] == 0:
                state["a"], state["left"] = int(rng.integers(num_actions)), int(rng.integers(4, 17))
            state["left"] -= 1
            return state["a"]
        return sticky
    raise ValueError(f"unknown policy {policy!r}: use 'random', 'sticky' or an action id")


@torch.no_grad()
def check_rollout(backend: Any, frames: int = 100, policy: str | int = "random", seed: int = 0,
                  stats_range: dict[str, Any] | None = None, tokenizer: VideoTokenizer | None = None,
                  progress: bool = False) -> dict[str, Any]:
    """Play `frames` steps from reset(seed) and test every generated frame against the range.

    A world model is judged on the token maps it generates (`backend.last_tokens`); any other backend (footage, the
    sandbox) on its frames tokenized with `tokenizer`. The range comes from `stats_range`, else from the backend's
    model card. Frame indices count from the reset frame (0), so the first generated frame is 1.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    stats_range = stats_range or (getattr(backend, "card", None) or {}).get("health")
    if not stats_range:
        raise ValueError(f"{getattr(backend, 'name', 'this backend')} has no health range in its model card: "
                         + HOW_TO_CALIBRATE)
    own_tokens = hasattr(backend, "last_tokens")
    if not own_tokens and tokenizer is None:
        raise ValueError("this backend does not expose token maps: pass the tokenizer its footage is judged with")
    vocab = int(backend.model.tokenizer.vocab) if own_tokens else int(tokenizer.vocab)
    if stats_range.get("vocab", vocab) != vocab:
        raise ValueError(f"the health range was measured with a {stats_range['vocab']}-code tokenizer but this world "
                         f"uses {vocab} codes: " + HOW_TO_CALIBRATE)
    rng = np.random.default_rng(seed)
    act = _policy(policy, int(backend.num_latent_actions), rng)
    encode = None
    if not own_tokens:
        dev = next(tokenizer.parameters()).device
        cache = tokenizer.encoder.new_cache()

        def encode(img: np.ndarray) -> torch.Tensor:
            with _autocast(dev):
                return tokenizer.encode(torch.from_numpy(np.array(img, copy=True)).to(dev)[None, None], cache)[0][0, 0]

    first = backend.reset(Prompt(seed=seed))
    maps = [backend.last_tokens if own_tokens else encode(first)]
    for t in tqdm(range(1, frames + 1), desc="health: rollout", unit="frame", file=sys.stderr,
                  disable=not progress):
        img = backend.step(act(t))
        maps.append(backend.last_tokens if own_tokens else encode(img))
    stats = token_stats(torch.stack([m.cpu() for m in maps]), vocab)  # each (frames + 1,)
    rows = [{k: float(stats[k][i]) for k in STATS} for i in range(1, frames + 1)]
    fails = [failing(r, stats_range) for r in rows]
    bad = [i for i, f in enumerate(fails) if f]
    first_bad = bad[0] if bad else None
    return {
        "backend": getattr(backend, "name", type(backend).__name__), "frames": frames, "policy": policy, "seed": seed,
        "within_range": round(1.0 - len(bad) / frames, 4),
        "first_failure": None if first_bad is None else first_bad + 1,
        "first_failure_stats": None if first_bad is None else {**rows[first_bad], "outside": fails[first_bad]},
        "failures_by_stat": {k: sum(k in f for f in fails) for k in STATS},
        "stats_p50": {k: float(np.nanmedian(stats[k][1:])) for k in STATS},
        "range": stats_range["stats"],
    }


def combine_rollouts(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several check_rollout results (one per seed) as one: the mean share within range, and the worst seed's."""
    bad = [r["first_failure"] for r in runs if r["first_failure"] is not None]
    return {
        "backend": runs[0]["backend"], "frames": runs[0]["frames"], "policy": runs[0]["policy"],
        "seeds": [r["seed"] for r in runs],
        "within_range": round(float(np.mean([r["within_range"] for r in runs])), 4),
        "min_within_range": min(r["within_range"] for r in runs),
        "first_failure": min(bad) if bad else None,
        "failures_by_stat": {k: sum(r["failures_by_stat"][k] for r in runs) for k in STATS},
        "per_seed": [{k: r[k] for k in ("seed", "within_range", "first_failure", "stats_p50")} for r in runs],
        "range": runs[0]["range"],
    }


# --- Command line ---

@click.group("health")
def health() -> None:
    """Degeneracy check of world-model rollouts against the token statistics of real footage."""


@health.command("calibrate")
@click.option("--checkpoint", required=True, type=CHECKPOINT_FOLDER, help="World run directory.")
@click.option("--data", required=True, type=DATASET_FOLDER, help="Real footage (a dataset).")
@click.option("--clips", type=click.IntRange(min=1), default=512, show_default=True, help="Clips of real footage to tokenize.")
@click.option("--split", type=click.Choice(["val", "train"]), default="val", show_default=True,
              help="Which split of the dataset the clips come from.")
@seed_option("the clips drawn")
@DEVICE_OPTION
@click.option("--dry-run", is_flag=True, help="Print the range; do not write the model card.")
def calibrate_command(checkpoint, data, clips, split, seed, device, dry_run) -> None:
    """Measure the range on real footage and store it in CHECKPOINT/model_card.json["health"]."""
    from bridge.model.world import pick_device

    try:
        rng = calibrate(load_tokenizer(checkpoint, pick_device(device)), data, clips, split, seed)
        if not dry_run:
            click.echo(f"wrote the health range to {save_range(checkpoint, rng)}", err=True)
    except (ValueError, FileNotFoundError, CheckpointError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps(rng, indent=2))


@health.command("check")
@click.option("--checkpoint", default=None, type=CHECKPOINT_FOLDER,
              help="World run directory [default: the embedded default world].")
@click.option("--frames", default=300, show_default=True, type=click.IntRange(1),
              help="Frames to roll from each seed.")
@click.option("--policy", default="random", show_default=True,
              help="The input: random (a new action each frame), sticky (each action held 4-16 frames) or one action id.")
@seed_option("the (first) rollout's level, input and sampling")
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(1),
              help="Roll from this many seeds (seed, seed + 1, ...): one rollout may pass or fail by luck.")
@DEVICE_OPTION
@click.option("--temperature", type=float, default=None, help="Sampling temperature [default: the checkpoint's].")
@click.option("--top-p", "top_p", type=float, default=None, help="Nucleus sampling mass, 1 = off [default: the checkpoint's].")
def check_command(checkpoint, frames, policy, seed, seeds, device, temperature, top_p) -> None:
    """Roll the world FRAMES steps and print, as JSON, the share of frames within real footage's range (model card).

    \b
    within_range (0-1, higher is better; target 1.0, every frame a world; the default world: 1.0 over 7,200 frames):
    the share of generated frames whose token statistics all lie in the range; first_failure: the first frame that
    does not (null: none), failures_by_stat: which statistics left it (docs/model.md, Rollout health).
    """
    from bridge.model.world import load_world

    try:
        world = load_world(checkpoint, device=device)
        world.configure(temperature=temperature, top_p=top_p)
        runs = [check_rollout(world, frames, policy, seed + k, progress=True) for k in range(seeds)]
        res = runs[0] if seeds == 1 else combine_rollouts(runs)
        res["settings"] = dict(world.settings)
    except (ValueError, FileNotFoundError, CheckpointError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps(res, indent=2))


if __name__ == "__main__":
    health()
