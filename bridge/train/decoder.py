"""`worldbridge train decoder`: train a world's tokenizer decoder further with the encoder and codebook frozen.

The tokens keep their meaning, so the dynamics, latent actions, events and first-frame model of the world stay valid
and need no retraining: only what the world draws from its tokens gets sharper (rain streaks, snow dots, coins).
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from bridge.model.checkpoint import load_into, load_model, save_model, state_tensors
from bridge.model.genie import WorldModel
from bridge.model.tokenizer import DECODER_PARTS, VideoTokenizer, to_float
from bridge.train.loop import Averager, fine_tune
from bridge.train.trainer import _amp, lr_at


@dataclass
class DecoderTrainOptions:
    """A decoder run; --out becomes a complete world (a copy of --world with the new decoder)."""

    world: str
    data: list[str]
    out: str
    steps: int = 2000
    batch: int = 16  # clips per step
    lr: float = 2e-4
    warmup: int = 50
    val_clips: int = 64
    seed: int = 0
    ckpt_every: int = 200
    max_minutes: float | None = None
    command: str = ""
    progress: bool = True


def decoder_parameters(tok: VideoTokenizer) -> list[torch.nn.Parameter]:
    """The decoder's weights, in train mode; the encoder and codebook stay frozen and in eval mode (no code resets)
    so that every token keeps its meaning."""
    tok.requires_grad_(False).eval()
    params = []
    for name in DECODER_PARTS:
        part = getattr(tok, name).train()
        params += [p.requires_grad_(True) for p in part.parameters()]
    return params


def decoder_loss(tok: VideoTokenizer, clips: torch.Tensor) -> dict[str, torch.Tensor]:
    """MSE of the decoded frozen codes against the clip (the tokenizer's own reconstruction loss, decoder side)."""
    with torch.no_grad():
        _, q, _ = tok.encode(clips)
    recon = tok.decode_codes(q)
    mse = F.mse_loss(recon.float(), to_float(clips))
    return {"loss": mse, "psnr": -10 * torch.log10(mse.detach().clamp(min=1e-10))}


@torch.no_grad()
def val_psnr(tok: VideoTokenizer, clips: np.ndarray, batch: int = 16) -> float:
    """Mean per-clip PSNR of held-out clips through the tokenizer (as `worldbridge eval` measures it)."""
    modes = [m.training for m in tok.modules()]
    tok.eval()
    out = []
    for i in range(0, len(clips), batch):
        x = torch.from_numpy(clips[i : i + batch])
        rec = tok.decode(tok.encode(x)[0])
        mse = ((rec - to_float(x)) ** 2).flatten(1).mean(1).clamp(min=1e-10)
        out.append(-10 * torch.log10(mse))
    for m, mode in zip(tok.modules(), modes):
        m.training = mode
    return float(torch.cat(out).mean())


def train_decoder(opts: DecoderTrainOptions) -> dict[str, Any]:
    """Train (or resume) the decoder of opts.world into opts.out; returns the step and val PSNR before/after."""
    from bridge.data.dataset import ClipSampler, VideoDataset

    out, src = Path(opts.out), Path(opts.world)
    resume = (out / "model_card.json").is_file() and "decoder" in json.loads((out / "model_card.json").read_text())
    if not resume:
        if out.exists() and any(out.iterdir()):
            raise ValueError(f"--out {out} exists and is not a decoder run: give a new directory")
        load_model(src, kind="world")  # a clear error before anything is copied
        shutil.copytree(src, out, dirs_exist_ok=True)  # the world's other files (events, first-frame model) come along
    cfg, tensors, card, header = load_model(out, kind="world")
    model = WorldModel(cfg, bank_size=tensors["bank"].shape[0] if "bank" in tensors else 0)
    load_into(model, tensors, where=str(out))
    tok = model.tokenizer
    torch.manual_seed(opts.seed)

    datasets = [VideoDataset(d) for d in opts.data]
    for d, ds in zip(opts.data, datasets):
        if (ds.height, ds.width) != (cfg.height, cfg.width):
            raise ValueError(f"{d} has {ds.height}x{ds.width} frames but {src} was trained on {cfg.height}x{cfg.width}")
    T = cfg.tokenizer.clip_len
    samplers = [ClipSampler(ds, T, "train", seed=opts.seed) for ds in datasets]
    val = np.concatenate([ClipSampler(ds, T, "val", seed=opts.seed).sample(max(opts.val_clips // len(datasets), 1),
                                                                              np.random.default_rng(opts.seed))
                          for ds in datasets])

    prev = card.get("decoder", {})
    start = int(prev.get("steps", 0))
    rng = np.random.default_rng([opts.seed, start])  # a resumed run draws other clips than the run before it
    before = float(prev["val_psnr_before"]) if "val_psnr_before" in prev else val_psnr(tok, val)
    params = decoder_parameters(tok)
    opt = torch.optim.AdamW(params, lr=opts.lr, betas=(0.9, 0.95), weight_decay=0.05)
    section = {"from_world": str(prev.get("from_world", src.resolve())), "data": [str(Path(d).resolve()) for d in opts.data],
               "batch": opts.batch, "lr": opts.lr, "clip_len": T, "val_clips": len(val),
               "val_psnr_before": round(before, 3), "command": opts.command}
    metrics: dict[str, float] = {}

    def save(step: int) -> float:
        """Checkpoint the whole world, with the decoder's held-out PSNR in its card."""
        after = val_psnr(tok, val)
        card["decoder"] = {**section, "steps": step, "val_psnr_after": round(after, 3),
                           "updated": _dt.datetime.now().isoformat(timespec="seconds"), "train_metrics": metrics}
        save_model(out, "world", cfg, state_tensors(model), card, header["step"])
        return after

    ctx, _ = _amp(torch.device("cpu"), None)
    t0, avg = time.time(), Averager()
    bar = tqdm(total=opts.steps, desc="train decoder", unit="step", dynamic_ncols=True, disable=not opts.progress)

    def step(i: int) -> None:
        nonlocal metrics
        frac = (time.time() - t0) / (opts.max_minutes * 60) if opts.max_minutes else 0.0
        for g in opt.param_groups:
            g["lr"] = lr_at(i, opts.steps, opts.lr, opts.warmup, frac)
        with ctx:
            res = decoder_loss(tok, torch.from_numpy(samplers[i % len(samplers)].sample(opts.batch, rng)))
        opt.zero_grad(set_to_none=True)
        res["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        res["val_psnr"] = card.get("decoder", {}).get("val_psnr_after", before)  # of the last checkpoint
        metrics = avg.add(res, bar) or metrics

    done = fine_tune(opts.steps, start, step, save, opts.ckpt_every, opts.max_minutes, bar)
    after = save(done)
    return {"step": done, "out": str(out), "val_psnr_before": before, "val_psnr_after": after,
            "seconds": round(time.time() - t0, 1)}
