"""`worldbridge eval`: tokenizer fidelity, latent-action controllability and rollout quality on the val split.

Prints ONE JSON object on stdout (progress on stderr). True actions are read here only, never in training.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from bridge.data.dataset import ClipSampler, VideoDataset, check_frame_size, no_val_episodes, provenance
from bridge.data.interrupt import stopped_says
from bridge.model.checkpoint import CheckpointError, load_into, load_model, read_config
from bridge.model.config import UNMASK_ORDERS
from bridge.model.sampler import sample_frame
from bridge.model.tokenizer import VideoTokenizer, psnr_from_mse
from bridge.model.world import WorldModelBackend, load_world, pick_device, start_rollout
from bridge.options import CHECKPOINT_FOLDER, DATASET_FOLDER, DEVICE_OPTION, seed_option
from bridge.values import plural

DELTA_T = (1, 4, 16)
SECONDS = (1, 3, 10)
SPEED_FRAMES = 40  # frames of the one interactive stream that `rollout_fps` times


# --- Image metrics ---

def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of (..., H, W, C) tensors in [0, 1]."""
    return psnr_from_mse((a.float() - b.float()).pow(2).flatten(-3).mean(-1))


def ssim(a: torch.Tensor, b: torch.Tensor, sigma: float = 1.5, size: int = 11) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004, Gaussian window, per channel, averaged) of (N, H, W, C) in [0, 1]."""
    x, y = a.float().permute(0, 3, 1, 2), b.float().permute(0, 3, 1, 2)
    C = x.shape[1]
    g = torch.exp(-((torch.arange(size, dtype=torch.float32) - size // 2) ** 2) / (2 * sigma**2))
    g = (g / g.sum()).to(x.device)
    win = (g[:, None] * g[None, :]).expand(C, 1, size, size)
    f = lambda t: F.conv2d(t, win, groups=C)  # noqa: E731  valid conv, like the reference implementation
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


def ci95(per_clip: torch.Tensor) -> float | None:
    """Half-width of the 95% normal interval of a mean over clips: how far the figure would move with other clips."""
    x = per_clip.double().cpu()
    return float(1.96 * x.std() / math.sqrt(len(x))) if len(x) > 1 else None


# --- Latent action vs true action agreement ---

def mapping_accuracy(latent_fit: np.ndarray, true_fit: np.ndarray, latent_test: np.ndarray, true_test: np.ndarray,
                     num_latent: int, num_true: int) -> dict[str, float]:
    """Fit latent->true maps on one part, score on the other: best many-to-one, best one-to-one, majority chance."""
    counts = np.zeros((num_latent, num_true), np.int64)
    np.add.at(counts, (latent_fit, true_fit), 1)
    many = counts.argmax(1)
    one = _best_assignment(counts)
    majority = np.bincount(true_fit, minlength=num_true).argmax()
    return {"many_to_one": float((many[latent_test] == true_test).mean()),
            "one_to_one": float((one[latent_test] == true_test).mean()),
            "chance": float((true_test == majority).mean()), "n": int(len(true_test))}


def _best_assignment(counts: np.ndarray) -> np.ndarray:
    """Latent -> distinct true action maximising agreement (exact DP over subsets of true actions); -1 = unmatched."""
    L, A = counts.shape
    if A > 16:  # beyond exact DP: greedy
        out, used = np.full(L, -1), set()
        for flat in np.argsort(-counts, axis=None):
            lat, act = divmod(int(flat), A)
            if out[lat] < 0 and act not in used:
                out[lat], _ = act, used.add(act)
        return out
    best = {0: (0, ())}  # used-actions mask -> (score, assignment so far)
    for lat in range(L):
        nxt: dict[int, tuple[int, tuple]] = {}
        for mask, (score, asg) in best.items():
            options = [(score, mask, -1)] + [(score + counts[lat, a], mask | 1 << a, a) for a in range(A) if not mask >> a & 1]
            for sc, m, a in options:
                if m not in nxt or nxt[m][0] < sc:
                    nxt[m] = (sc, asg + (a,))
        best = nxt
    return np.array(max(best.values())[1])


def code_stats(idx: np.ndarray, k: int) -> tuple[float, float]:
    """(fraction of codes used, entropy in bits of their distribution)."""
    p = np.bincount(idx.ravel(), minlength=k) / max(idx.size, 1)
    nz = p[p > 0]
    return float((p > 0).mean()), float(-(nz * np.log2(nz)).sum())


# --- Rollouts ---

@torch.no_grad()
def rollout(world: WorldModelBackend, first: torch.Tensor, actions: torch.Tensor, generator: torch.Generator,
            bar: tqdm | None = None) -> torch.Tensor:
    """first (B, H, W, 3) uint8, actions (B, L) -> generated frames (B, L, H, W, 3) in [0, 1], one frame at a time,
    as play makes them (its start, settings and autocast); `bar` counts each batch of B frames as it is made."""
    m, s = world.model, world.settings
    with world.autocast_context():
        tokens = m.tokenizer.encode(first[:, None])[0][:, 0]  # (B, N)
        dyn, dec, _, _ = start_rollout(m, tokens)
        out = []
        for t in range(actions.shape[1]):
            tokens = sample_frame(m.dynamics, dyn, actions[:, t], s["steps"], s["temperature"], s["cfg"], s["unmask"],
                                  generator=generator, top_p=s["top_p"])
            out.append(m.tokenizer.decode(tokens[:, None], dec)[:, 0].float())
            if bar is not None:
                bar.update(actions.shape[0])
    return torch.stack(out, 1)


def _check_clips(ds: Any, val: list, clips: int, length: int) -> None:
    """Refuse more rollout clips than the val split has distinct ones: repeats would narrow every _ci95 on no news."""
    have = len(ClipSampler(ds, length, "val"))
    if clips > have:
        raise ValueError(f"--clips {clips} is more than the {have} distinct clips of {length} frames in the val split "
                         f"of {ds.root} ({plural(len(val), 'episode')} of at most {max(e.length for e in val)} frames): "
                         f"give --clips {have} or fewer, or footage with more val episodes (docs/model.md measures on "
                         "`worldbridge data generate --episodes 400 --frames 600 --seed 1 --out data/sandbox64b`)")


def evaluate(checkpoint: str, data: str, device: str | None = None, clips: int = 64, seed: int = 0,
             overrides: dict[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    """All metrics of a checkpoint (a world or a tokenizer run) on the val split of `data`."""
    ds = VideoDataset(data)
    val = ds.split("val")
    if not val:
        raise ValueError(no_val_episodes(ds))
    cfg, _, header = read_config(Path(checkpoint))
    check_frame_size(ds, cfg.height, cfg.width, str(checkpoint))
    if header["kind"] == "world":  # the world as play loads it: its bf16 rule and weights included
        world = load_world(checkpoint, device=device)
        world.configure(**{k: v for k, v in (overrides or {}).items() if v is not None})
        model, dev = world.model, world.device
        tok = model.tokenizer
    else:
        dev = pick_device(device)
        model, tok = None, VideoTokenizer(cfg.tokenizer, cfg.height, cfg.width)
        load_into(tok, load_model(Path(checkpoint))[1], "tokenizer.", where=checkpoint)
        tok.to(dev).eval()
    rng = np.random.default_rng(seed)
    gen = torch.Generator(device=dev)
    longest = max(e.length for e in val)
    H = max(DELTA_T + tuple(round(s * ds.fps) for s in SECONDS if round(s * ds.fps) < longest))
    if header["kind"] == "world":
        _check_clips(ds, val, clips, H + 1)
    tok_clips, T = max(clips, 4) * 4, min(cfg.dynamics.clip_len, longest)
    tok_len = min(cfg.tokenizer.clip_len, longest)
    work = tok_clips * tok_len + (clips * 8 * T + clips * (H + max(DELTA_T)) + SPEED_FRAMES if model is not None else 0)
    bar = tqdm(total=work, desc="eval", unit="frame", unit_scale=True, file=sys.stderr, disable=not progress)
    res: dict[str, Any] = {"checkpoint": str(checkpoint), "kind": header["kind"], "step": header["step"],
                           "data": str(data), "val_episodes": len(val), "val_frames": int(sum(e.length for e in val))}
    # which footage, as the model cards name it (data_fingerprint; data_generated_by / data_imported_from where the
    # manifest says), so a figure can be matched to it and reproduced on the same footage
    res.update({f"data_{k}": v for k, v in provenance(ds).items() if k != "path"})

    # --- Tokenizer: reconstruction and code usage ---
    with torch.no_grad():
        sampler = ClipSampler(ds, tok_len, "val", seed=seed)
        x = torch.from_numpy(sampler.sample(tok_clips, rng)).to(dev)
        idx, q, _ = tok.encode(x)
        rec = tok.decode(idx)
        ref = x.float() / 255
        res["tokenizer_psnr"] = float(psnr(rec, ref).mean())
        res["tokenizer_ssim"] = float(ssim(rec.flatten(0, 1), ref.flatten(0, 1)).mean())
        res["codebook_usage"] = code_stats(idx.cpu().numpy(), tok.vocab)[0]
    bar.update(tok_clips * tok_len)
    if model is None:
        bar.close()
        return res

    # --- Latent actions: usage, entropy, agreement with true actions ---
    res["settings"] = {k: v for k, v in world.settings.items() if k != "event_cfg"}  # eval fires no events
    sampler = ClipSampler(ds, T, "val", seed=seed)
    frames, true, eff, fit = clips_with_actions(ds, sampler, clips * 8, rng)
    with torch.no_grad():
        lat = np.concatenate([model.lam.encode(torch.from_numpy(frames[i:i + 32]).to(dev))[0].cpu().numpy()
                              for i in range(0, len(frames), 32)])
    A = model.lam.num_actions
    res["latent_action_usage"], res["latent_action_entropy_bits"] = code_stats(lat, A)
    res["true_action_accuracy"], res["true_action_accuracy_detail"] = None, None
    if true is not None:
        K = len(ds.action_names or []) or int(true.max()) + 1
        detail = {"raw": action_agreement(lat, true, A, K, fit), "effective": None}
        if eff is not None:
            detail["effective"] = action_agreement(lat, eff, A, K, fit)
        res["true_action_accuracy_detail"] = detail
        # headline: against effective actions where the data has them (an action with no effect is unknowable)
        res["true_action_accuracy"] = (detail["effective"] or detail["raw"])["many_to_one"]
    bar.update(clips * 8 * T)

    # --- Rollouts: inferred vs random actions (delta PSNR), long-horizon PSNR, copy-last-frame baseline ---
    sampler = ClipSampler(ds, H + 1, "val", seed=seed)
    clip = torch.from_numpy(sampler.sample(clips, rng)).to(dev)  # (B, H+1, h, w, 3)
    ref = clip.float() / 255
    with torch.no_grad():
        inferred = model.lam.encode(clip)[0]  # (B, H)
    # common random numbers: both rollouts draw the same sampling noise, so delta_psnr is the actions' doing alone
    rand = torch.randint(0, A, (clips, max(DELTA_T)), generator=torch.Generator().manual_seed(seed + 1)).to(dev)
    t0 = time.perf_counter()
    pred = rollout(world, clip[:, 0], inferred, gen.manual_seed(seed), bar)  # (B, H, ...)
    pred_rand = rollout(world, clip[:, 0], rand, gen.manual_seed(seed), bar)
    p_inf, p_rand = psnr(pred, ref[:, 1:]), psnr(pred_rand, ref[:, 1:max(DELTA_T) + 1])  # (B, L)
    p_copy = psnr(ref[:, :1].expand_as(ref[:, 1:]), ref[:, 1:])
    gain = p_inf[:, :max(DELTA_T)] - p_rand  # per clip and frame: inferred actions vs random ones
    res["delta_psnr"] = {str(t): float(gain[:, t - 1].mean()) for t in DELTA_T}
    res["delta_psnr_ci95"] = {str(t): ci95(gain[:, t - 1]) for t in DELTA_T}
    gap = p_inf - p_copy  # per clip and frame: the rollout against repeating the first frame
    res["rollout_psnr"], res["copy_last_frame_psnr"], res["rollout_minus_copy_last"] = {}, {}, {}
    res["rollout_psnr_ci95"], res["rollout_minus_copy_last_ci95"] = {}, {}
    for s in SECONDS:
        t = round(s * ds.fps)
        ok = t <= H
        res["rollout_psnr"][str(s)] = float(p_inf[:, t - 1].mean()) if ok else None
        res["copy_last_frame_psnr"][str(s)] = float(p_copy[:, t - 1].mean()) if ok else None
        res["rollout_minus_copy_last"][str(s)] = float(gap[:, t - 1].mean()) if ok else None
        res["rollout_psnr_ci95"][str(s)] = ci95(p_inf[:, t - 1]) if ok else None
        res["rollout_minus_copy_last_ci95"][str(s)] = ci95(gap[:, t - 1]) if ok else None
    res["rollout_frames"] = {"clips": clips, "horizon": H, "batch_s": round(time.perf_counter() - t0, 2),
                             "autocast_bf16": world.autocast}

    # --- Interactive speed: one stream, as a client sees it ---
    res.update(_speed(world.spawn()))
    bar.update(SPEED_FRAMES)
    bar.close()
    return res


def action_agreement(lat: np.ndarray, true: np.ndarray, A: int, K: int, fit: np.ndarray | None = None) -> dict[str, float]:
    """Codes mapped to true actions on the steps `fit` marks (default: the first half), scored on the others; unknown
    actions (< 0) dropped. Give `fit` so that no step is in both parts (clips of one episode overlap)."""
    lat, true = lat.reshape(-1), true.reshape(-1).astype(np.int64)
    if fit is None:
        fit = np.arange(len(lat)) < len(lat) // 2
    fit, keep = np.asarray(fit, bool).reshape(-1), true >= 0
    a, b = fit & keep, ~fit & keep
    return mapping_accuracy(lat[a], true[a], lat[b], true[b], A, max(K, int(true[keep].max()) + 1))


def clips_with_actions(ds: VideoDataset, sampler: ClipSampler, n: int, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
    """n val clips (n, T, H, W, 3) with their raw and effective actions (n, T-1) for the SAME clips (None if absent),
    and which of their steps fit the latent -> true map (n, T-1): the steps of every other val episode, so the steps
    scored were never seen by the fit (overlapping clips share steps); with one episode, its first half."""
    T = sampler.clip_len
    frames, raw, eff, where = [], [], [], []
    for k in rng.integers(0, len(sampler), size=n):
        ep, off = sampler.clip(int(k))
        frames.append(np.asarray(ds.frames(ep)[off:off + T]))
        a, e = ds.actions(ep), ds.actions(ep, effective=True)
        raw.append(None if a is None else np.asarray(a[off:off + T - 1]))
        eff.append(None if e is None else np.asarray(e[off:off + T - 1]))
        where.append((ep, off))
    episodes = sorted({ep.id for ep, _ in where})
    if len(episodes) > 1:
        fit = np.array([[ep.id in episodes[::2]] * (T - 1) for ep, _ in where])
    else:
        fit = np.array([np.arange(off, off + T - 1) < ep.length // 2 for ep, off in where])
    stack = lambda xs: None if any(x is None for x in xs) else np.stack(xs)  # noqa: E731
    return np.stack(frames), stack(raw), stack(eff), fit


def _speed(w: WorldModelBackend, frames: int = SPEED_FRAMES) -> dict[str, Any]:
    """Median ms of one session's frames (dynamics + decode) after 5 warm-up frames, and the fps they make."""
    from bridge.backend import Prompt

    w.reset(Prompt(seed=0))
    dyn, dec = [], []
    for i in range(frames):
        w.step(i % w.num_latent_actions)
        if i >= 5:
            dyn.append(w.last_timings["dynamics"])
            dec.append(w.last_timings["decode"])
    ms = statistics.median(dyn) + statistics.median(dec)
    return {"rollout_fps": round(1000 / ms, 1),
            "rollout_ms": {"dynamics": round(statistics.median(dyn), 2), "decode": round(statistics.median(dec), 2),
                           "device": str(w.device), "autocast_bf16": w.autocast}}


@click.command("eval")
@click.option("--checkpoint", required=True, type=CHECKPOINT_FOLDER, help="A run directory (world or tokenizer).")
@click.option("--data", required=True, type=DATASET_FOLDER, help="Dataset folder; its val split is used.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the default output is the same JSON, indented).")
@click.option("--clips", type=click.IntRange(min=1), default=64, show_default=True,
              help="Val clips per rollout metric (x4 for the tokenizer's; fewer is faster but noisier: see the _ci95 figures).")
@seed_option("the val clips drawn and of the sampling: the same seed gives the same figures")
@DEVICE_OPTION
@click.option("--steps", type=int, default=None, help="MaskGIT steps (default: the checkpoint's).")
@click.option("--temperature", type=float, default=None,
              help="Sampling temperature of each MaskGIT step (higher: more varied, noisier frames; default: the "
                   "checkpoint's).")
@click.option("--top-p", "top_p", type=float, default=None, help="Nucleus sampling mass (1 = off; default: the checkpoint's).")
@click.option("--cfg", type=float, default=None, help="Guidance scale on actions (1 = off).")
@click.option("--unmask", type=click.Choice(UNMASK_ORDERS), default=None,
              help="Which tokens a MaskGIT step commits first: random ones or its most confident (default: the "
                   "checkpoint's).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_command(checkpoint, data, as_json, clips, seed, device, steps, temperature, top_p, cfg, unmask, quiet) -> None:
    """Evaluate a checkpoint on a dataset's val split and print JSON (every key: docs/model.md, Evaluation).

    \b
    Each figure is better higher (its *_ci95 interval, lower); the targets the default world is held to:
      tokenizer_psnr (dB, target 28), tokenizer_ssim (0-1), codebook_usage (share of codes used, target 0.8)
      latent_action_entropy_bits (target 2.5; 3 is the most 8 actions can have)
      true_action_accuracy (0-1, target 0.9; its _detail gives chance, the majority action)
      delta_psnr (dB: inferred actions' rollout minus random actions': how much input moves the world; target 1.5
        at 4 frames)
      rollout_minus_copy_last (dB: the rollout's PSNR minus the copy-last-frame baseline's, which repeats the last
        frame the rollout was given, the clip's first; target +3 at 3 s)
      rollout_fps (frames/s of one interactive stream)
      *_ci95: the +- of each mean over the clips; a difference smaller than it is noise
    """
    try:
        with stopped_says("eval ended before printing its results; it writes no files, so nothing on disk changed"):
            res = evaluate(checkpoint, data, device, clips, seed,
                           {"steps": steps, "temperature": temperature, "top_p": top_p, "cfg": cfg, "unmask": unmask},
                           progress=not quiet)
    except (ValueError, FileNotFoundError, CheckpointError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps(res, default=_json_default) if as_json else json.dumps(res, indent=2, default=_json_default))


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and math.isnan(o):
        return None
    raise TypeError(type(o))
