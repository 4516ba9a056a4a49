"""`worldbridge train decoder`: train a world's tokenizer decoder further with the encoder and codebook frozen.

The tokens keep their meaning, so the dynamics, latent actions, events and first-frame model of the world stay valid
and need no retraining: only what the world draws from its tokens gets sharper (rain streaks, snow dots, coins).
"""

from __future__ import annotations

import datetime as _dt
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bridge.files import atomic_write_json, make_temp, publish
from bridge.model.checkpoint import (STATE, load_into, load_model, read_config, read_json, read_tensors, save_model,
                                     save_tensors, state_tensors)
from bridge.model.config import WorldConfig
from bridge.model.genie import WorldModel
from bridge.model.tokenizer import DECODER_PARTS, VideoTokenizer, psnr_from_mse, to_float
from bridge.train.discriminator import PatchDiscriminator, adaptive_weight, d_hinge_loss, g_hinge_loss
from bridge.train.loop import (FINE_TUNE_RERUN, Averager, amp, budget_stop, card_options, check_new_out,
                               fine_tune, footage_record, kept_options, progress_bar, seed_run, set_lr, train_device)
from bridge.train.options import DECODER_DEFAULTS

# The settings a decoder run records in its card's "decoder" section and a rerun keeps unless given again (--steps and
# --max-minutes count per run); their defaults: train/options.py's DECODER_DEFAULTS
KEPT = {"steps": "steps_per_run", "batch": "batch", "lr": "lr", "seed": "seed", "amp": "amp",
        "ckpt_every": "ckpt_every", "max_minutes": "max_minutes", "adv": "adv", "adv_start": "adv_start", "detail": "detail"}


@dataclass
class DecoderTrainOptions:
    """A decoder run; --out becomes a complete world (a copy of --world with the new decoder). None (the options in
    KEPT) means a rerun's own, else DECODER_DEFAULTS."""

    world: str
    data: list[str]
    out: str
    steps: int | None = None  # in this run
    batch: int | None = None  # clips per step
    lr: float | None = None
    warmup: int = 50
    val_clips: int = 64
    seed: int | None = None
    device: str | None = None  # this machine's (not kept): cuda when present, else cpu
    amp: bool | None = None  # bf16 autocast; None (and not kept): on for CUDA and AVX-512-BF16 CPUs
    ckpt_every: int | None = None
    max_minutes: float | None = None  # of this run
    adv: float | None = None  # weight of the patch discriminator's loss (0: MSE only), relative to MSE's gradient
    adv_start: int | None = None  # steps of this run in which the discriminator trains alone, before the decoder feels it
    detail: float | None = None  # MSE weighted up on detail pixels (detail_weights; 0: plain MSE)
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


DISCRIMINATOR = "discriminator.safetensors"  # in --out beside the world: a rerun of an --adv run resumes its critic
CRITIC_LR = 4.0  # the critic learns at 4x the decoder's rate (two time-scale rule): a critic at chance only adds noise


def detail_weights(target: torch.Tensor, detail: float) -> torch.Tensor:
    """Per-pixel loss weights 1 + detail * |pixel - its 3x3 mean| (luminance), normalised to mean 1 per frame: a one-pixel
    snowflake, raindrop or sprite edge counts up to ~10x a pixel of flat sky, so the decoder's (weighted) mean leans to
    drawing the detail its tokens make likely instead of averaging it away."""
    B, T, H, W, _ = target.shape
    lum = target.mean(-1).reshape(B * T, 1, H, W)
    high = (lum - F.avg_pool2d(F.pad(lum, (1, 1, 1, 1), mode="replicate"), 3, stride=1)).abs()
    w = 1 + detail * high
    return (w / w.mean((2, 3), keepdim=True)).reshape(B, T, H, W, 1)


def decoder_loss(tok: VideoTokenizer, clips: torch.Tensor, disc: PatchDiscriminator | None = None,
                 adv: float = 0.0, detail: float = 0.0) -> dict[str, torch.Tensor]:
    """MSE of the decoded frozen codes against the clip (the tokenizer's own reconstruction loss, decoder side; with
    detail > 0 weighted up on detail pixels), plus with `disc` and adv > 0 the critic's hinge loss at its adaptive
    weight; `recon` is returned for the critic's step and `psnr` is always the plain one."""
    with torch.no_grad():
        _, q, _ = tok.encode(clips)
    recon = tok.decode_codes(q)
    target = to_float(clips)
    err = (recon.float() - target) ** 2
    plain = err.mean()
    mse = (err * detail_weights(target, detail)).mean() if detail > 0 else plain
    out = {"loss": mse, "psnr": psnr_from_mse(plain.detach()), "recon": recon.detach(), "codes": q}
    if disc is not None and adv > 0:
        g = g_hinge_loss(disc(critic_frames(recon.float()), critic_frames(q.float())))
        w = adaptive_weight(mse, g, tok.patch_out.weight, adv)
        out.update(loss=mse + w * g, g_loss=g.detach(), adv_weight=w)
    return out


def critic_frames(clips: torch.Tensor) -> torch.Tensor:
    """Every fourth frame of each clip, (B*T/4, H, W, 3): the critic judges single frames, and neighbours add little
    but time."""
    return clips[:, ::4].flatten(0, 1)


def critic_step(disc: PatchDiscriminator, opt: torch.optim.Optimizer, clips: torch.Tensor, recon: torch.Tensor,
                codes: torch.Tensor) -> dict[str, torch.Tensor]:
    """One step of the discriminator: the real clip's frames against the decoder's drawing of the same frames, each
    beside the codes both share."""
    real = critic_frames(to_float(clips))
    fake = critic_frames(recon.float()).clamp(0, 1)
    c = critic_frames(codes.float())
    real_logits, fake_logits = disc(real, c), disc(fake, c)
    loss = d_hinge_loss(real_logits, fake_logits)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"d_loss": loss.detach(), "d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}


def particle_share(frames: np.ndarray) -> float:
    """Share of pixels that are snowflakes or raindrops over uint8 frames (..., H, W, 3): the weather a decoder draws,
    which PSNR barely sees."""
    from bridge.prompts.checks import texture_features

    flat = frames.reshape(-1, *frames.shape[-3:])
    return sum(t["snow_dots"] + t["rain_streaks"] for t in map(texture_features, flat)) / len(flat)


@torch.no_grad()
def held_out(tok: VideoTokenizer, clips: np.ndarray, batch: int = 16) -> tuple[float, float]:
    """Held-out clips through the tokenizer, decoded once: their mean per-clip PSNR (`worldbridge eval` averages per
    frame instead: 0.014 dB apart on the default world) and the particle share of the reconstructions."""
    modes = [m.training for m in tok.modules()]
    tok.eval()
    psnrs, drawn = [], 0.0
    for i in range(0, len(clips), batch):
        x = torch.from_numpy(clips[i : i + batch]).to(tok.patch_out.weight.device)
        rec = tok.decode(tok.encode(x)[0])
        psnrs.append(psnr_from_mse(((rec - to_float(x)) ** 2).flatten(1).mean(1)).cpu())
        drawn += particle_share((rec * 255).round().to(torch.uint8).cpu().numpy()) * len(x)
    for m, mode in zip(tok.modules(), modes):
        m.training = mode
    return float(torch.cat(psnrs).mean()), drawn / len(clips)


def train_decoder(opts: DecoderTrainOptions) -> dict[str, Any]:
    """Train (or resume) the decoder of opts.world into opts.out; returns the step and val PSNR before/after."""
    from bridge.data.dataset import VideoDataset

    out, src = Path(opts.out), Path(opts.world)
    device = train_device(opts.device)  # a bad --device is refused before anything is copied
    resume = (out / "model_card.json").is_file() and "decoder" in read_json(out / "model_card.json")
    opts = kept_options(opts, read_json(out / "model_card.json")["decoder"] if resume else {}, DECODER_DEFAULTS, KEPT)
    datasets = [VideoDataset(d) for d in opts.data]  # clear errors before anything is copied
    wcfg = read_config(out if resume else src, kind="world")[0]
    T = wcfg.tokenizer.clip_len  # clips of every set before anything is copied: too short a set is refused first
    samplers, val = _clip_samplers(opts, datasets, wcfg, out if resume else src)
    if not resume:
        _copy_world(src, out)
    cfg, tensors, card, header = load_model(out, kind="world")
    model = WorldModel(cfg, bank_size=tensors["bank"].shape[0] if "bank" in tensors else 0)
    load_into(model, tensors, where=str(out))
    tok = model.to(device).tokenizer
    prev = card.get("decoder", {})
    start = int(prev.get("steps", 0))
    rng = seed_run(opts.seed, start)  # a resumed run draws other clips and noise than the run before it
    real_particles = round(particle_share(val), 6)  # the val clips never change: measured once
    before, particles_before = _measured_before(prev, tok, val, real_particles)
    params = decoder_parameters(tok)
    opt = torch.optim.AdamW(params, lr=opts.lr, betas=(0.9, 0.95), weight_decay=0.05)
    disc, d_opt = _critic(opts, tok, out, device) if opts.adv > 0 else (None, None)
    ctx, amp_on = amp(device, opts.amp)  # the rule of `train tokenizer|dynamics`
    section = {**_section(opts, prev, src, T, len(val), before, particles_before), "device": str(device),
               "amp_bf16": amp_on, **footage_record(prev, datasets, out, start, warn=resume)}
    metrics: dict[str, float] = {}

    def save(step: int) -> float:
        """Checkpoint the whole world (and the critic), with the decoder's held-out PSNR and particles in its card."""
        after, drawn = held_out(tok, val)
        card["decoder"] = {**section, "steps": step, "val_psnr_after": round(after, 3),
                           "val_particles_after": {"real": real_particles, "reconstructed": round(drawn, 6)},
                           "updated": _dt.datetime.now().isoformat(timespec="seconds"), "train_metrics": metrics}
        if disc is not None:
            save_tensors(out / DISCRIMINATOR, state_tensors(disc))
        save_model(out, "world", cfg, state_tensors(model), card, header["step"])
        return after

    t0, avg = time.time(), Averager()
    bar = progress_bar(opts.steps, "train decoder", opts.progress, max_minutes=opts.max_minutes)

    def step(i: int) -> None:
        nonlocal metrics
        lr = set_lr(opt, i, opts.steps, opts.lr, opts.warmup, time.time() - t0, opts.max_minutes)
        clips = torch.from_numpy(samplers[i % len(samplers)].sample(opts.batch, rng)).to(device)
        critic = disc if disc is not None and i >= opts.adv_start else None
        if disc is not None:
            disc.requires_grad_(False)  # the decoder's step reads the critic, it does not train it
        with ctx:
            res = decoder_loss(tok, clips, critic, opts.adv, opts.detail)
        opt.zero_grad(set_to_none=True)
        res["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        recon, codes = res.pop("recon"), res.pop("codes")
        if disc is not None:
            disc.requires_grad_(True)
            for g in d_opt.param_groups:
                g["lr"] = CRITIC_LR * lr
            res.update(critic_step(disc, d_opt, clips, recon, codes))
        res["val_psnr"] = card.get("decoder", {}).get("val_psnr_after", before)  # of the last checkpoint
        metrics = avg.add(res, bar) or metrics

    done = fine_tune(opts.steps, start, step, save, opts.ckpt_every, opts.max_minutes, bar, out)
    metrics = avg.flush() or metrics  # the last steps' means, however few
    after = save(done)
    return {"step": done, "out": str(out), "val_psnr_before": before, "val_psnr_after": after,
            "val_particles_before": particles_before, "val_particles_after": card["decoder"]["val_particles_after"],
            "seconds": round(time.time() - t0, 1), **budget_stop(done, start + opts.steps, opts.max_minutes, FINE_TUNE_RERUN)}


def _clip_samplers(opts: DecoderTrainOptions, datasets: list, wcfg: WorldConfig, world: Path) -> tuple[list, np.ndarray]:
    """A train clip sampler per --data set (each checked against the world's frame size), and the fixed held-out
    clips (an equal share of each set's val split)."""
    from bridge.data.dataset import ClipSampler, check_frame_size

    for ds in datasets:
        check_frame_size(ds, wcfg.height, wcfg.width, str(world))
    T, seed = wcfg.tokenizer.clip_len, opts.seed
    samplers = [ClipSampler(ds, T, "train", seed=seed) for ds in datasets]
    val = np.concatenate([ClipSampler(ds, T, "val", seed=seed).sample(max(opts.val_clips // len(datasets), 1),
                                                                     np.random.default_rng(seed))
                          for ds in datasets])
    return samplers, val


def _copy_world(src: Path, out: Path) -> None:
    """--out as a copy of the world, marked as a decoder run at step 0: its other files (events, first-frame model)
    come along; not its training state, whose weights would undo the new decoder if anyone resumed `train dynamics`
    there. Copied whole or not at all."""
    check_new_out(out, "train decoder", "a decoder run's")
    card = load_model(src, kind="world")[2]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp(out, folder=True)  # named after this process: a killed copy's is removed by the next run
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(STATE, "metrics.csv"))
        # marked as a decoder run at once: stopped before its first save, the rerun resumes it (at step 0)
        atomic_write_json(tmp / "model_card.json", {**card, "decoder": {"from_world": str(src.resolve()), "steps": 0}})
        if out.exists():
            shutil.rmtree(out)  # empty but for a file manager's litter and temp files (checked above)
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _measured_before(prev: dict, tok: VideoTokenizer, val: np.ndarray, real_particles: float) -> tuple[float, dict]:
    """The held-out PSNR and particle shares before any decoder training, each from the first run that measured it."""
    if "val_psnr_before" in prev and prev.get("val_particles_before"):
        return float(prev["val_psnr_before"]), prev["val_particles_before"]
    psnr0, drawn0 = held_out(tok, val)
    before = float(prev["val_psnr_before"]) if "val_psnr_before" in prev else psnr0
    return before, prev.get("val_particles_before") or {"real": real_particles, "reconstructed": round(drawn0, 6)}


def _section(opts: DecoderTrainOptions, prev: dict, src: Path, clip_len: int, val_clips: int, before: float,
             particles_before: dict) -> dict[str, Any]:
    """The card's "decoder" section a save completes: where the run came from, its kept options and the measures
    before; every --adv weight a run of this --out trained with."""
    section = {"from_world": str(prev.get("from_world", src.resolve())), "data": [str(Path(d).resolve()) for d in opts.data],
               **card_options(opts, KEPT), "clip_len": clip_len, "val_clips": val_clips,
               "val_psnr_before": round(before, 3), "val_particles_before": particles_before, "command": opts.command}
    if prev.get("adv") and prev["adv"] != opts.adv:
        section["earlier_adv"] = sorted({*prev.get("earlier_adv", []), prev["adv"]})
    return section


def _critic(opts: DecoderTrainOptions, tok: VideoTokenizer, out: Path,
            device: torch.device) -> tuple[PatchDiscriminator, torch.optim.Adam]:
    """The --adv patch discriminator (a rerun's own, from --out) on `device`, and its optimizer."""
    disc = PatchDiscriminator(code_dim=tok.quant.dim, patch=tok.cfg.patch)
    if (out / DISCRIMINATOR).is_file():
        load_into(disc, read_tensors(out / DISCRIMINATOR), where=str(out / DISCRIMINATOR))
    disc.to(device)
    return disc, torch.optim.Adam(disc.parameters(), lr=CRITIC_LR * opts.lr, betas=(0.5, 0.9))
