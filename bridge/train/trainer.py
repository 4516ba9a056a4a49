"""One training loop for both stages: tokenizer, then latent actions + dynamics on the frozen tokenizer.

Resumes from the run directory, checkpoints every N steps / M minutes and on Ctrl-C (atomically), logs
metrics.csv and a tqdm bar, and runs under `torchrun` (DDP: nccl on GPU where PyTorch has it, else gloo) unchanged.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import datetime as _dt
import gc
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm import tqdm

from bridge.data.dataset import check_frame_size, provenance
from bridge.data.interrupt import sigterm_as_ctrl_c
from bridge.files import atomic_write_bytes
from bridge.model.checkpoint import (CARD, CONFIG, MODEL, STATE, CheckpointError, OptimizerMismatch, load_into, load_model,
                                     load_train_state, read_config, read_train_meta, save_model, save_train_state,
                                     state_tensors, whole_step)
from bridge.model.config import WorldConfig
from bridge.model.genie import WorldModel
from bridge.model.presets import TRAIN_DEFAULTS, get_preset
from bridge.model.quantizer import reset_dead_codes
from bridge.model.tokenizer import VideoTokenizer
from bridge.train.loop import (Averager, amp, budget_stop, card_options, check_new_out, footage_history, kept_options,
                               over_budget, progress_bar, saved_on_stop, seed_run, set_lr, train_device)
from bridge.train.options import RUN_DEFAULTS

if TYPE_CHECKING:
    from bridge.data.dataset import ClipSampler, VideoDataset

BANK_SIZE = 64
RUN_FILES = {MODEL, CONFIG, CARD, STATE, "metrics.csv"}  # all that a run directory holds
STAGES = ("tokenizer", "dynamics")
# The options a run records in its model card (under "train"; --seed at the top) and a resume keeps unless given again
KEPT = {"steps": "steps_total", "batch": "batch_per_rank", "lr": "lr", "max_minutes": "max_minutes", "seed": "seed",
        "amp": "amp", "ckpt_every": "ckpt_every", "ckpt_minutes": "ckpt_minutes", "log_every": "log_every",
        "warmup": "warmup", "lam_lr_scale": "lam_lr_scale"}


@dataclass
class TrainOptions:
    """Everything a run needs; None (the options in KEPT) means the resumed run's own, else the default
    (presets.TRAIN_DEFAULTS, RUN_DEFAULTS)."""

    stage: str
    data: str
    out: str
    preset: str | None = None  # None: the run's own preset when resuming, else its source's (dynamics) or "tiny"
    tokenizer: str | None = None  # dynamics stage: the tokenizer run directory
    init_from: str | None = None  # dynamics stage: warm-start the dynamics (and tokenizer) from this world checkpoint
    fresh_lam: bool = False  # with init_from: learn the latent action model afresh even when its design is unchanged
    steps: int | None = None
    batch: int | None = None  # clips per rank per step
    lr: float | None = None
    seed: int | None = None
    device: str | None = None
    amp: bool | None = None  # bf16 autocast; None (and not kept): on for CUDA and AVX-512-BF16 CPUs
    ckpt_every: int | None = None
    ckpt_minutes: float | None = None
    log_every: int | None = None
    warmup: int | None = None
    lam_lr_scale: float | None = None  # the latent action model learns slower (collapse guard; 0.5)
    max_minutes: float | None = None  # total training-time budget of the run (resumes included); the lr decays to fit it
    command: str = ""
    progress: bool = True


class Dist:
    """Rank/world of this process; initialises torch.distributed when launched by torchrun."""

    def __init__(self, device: str | None):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        picked = train_device(device)
        want_cuda = picked.type == "cuda"
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if want_cuda and dist.is_nccl_available() else "gloo")  # Windows: no NCCL
        if want_cuda:
            self.device = torch.device("cuda", local if self.world > 1 else picked.index or 0)
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        self.main = self.rank == 0

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        if self.world == 1:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist())}

    def any(self, flag: bool) -> bool:
        if self.world == 1:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t)
        return bool(t.item() > 0)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model under DDP when there are several ranks (it syncs the gradients), else itself."""
        if self.world == 1:
            return model
        return nn.parallel.DistributedDataParallel(model, device_ids=[self.device] if self.device.type == "cuda" else None)

    def close(self) -> None:
        """Tear the process group down while the interpreter is whole: gloo's worker threads, left to the final
        garbage collection (DDP sits in a reference cycle), wake during shutdown and abort the process (rc -6)."""
        if self.world > 1 and dist.is_initialized():
            gc.collect()
            dist.destroy_process_group()


def world_config(preset: str, ds: VideoDataset) -> WorldConfig:
    """The preset, fitted to the dataset's frame size and fps."""
    cfg = get_preset(preset)
    cfg.height, cfg.width, cfg.fps = ds.height, ds.width, ds.fps
    cfg.validate()
    return cfg


WARM_SETTINGS = ("steps", "temperature", "top_p", "cfg", "unmask", "cond_dim")  # a world's own, not its architecture


def source_preset(opts: TrainOptions) -> str | None:
    """A dynamics run without --preset takes its tokenizer's (or --init-from world's): a micro tokenizer gets micro dynamics."""
    source = (opts.tokenizer or opts.init_from) if opts.stage == "dynamics" else None
    try:
        return read_config(Path(source))[0].preset if source else None
    except CheckpointError:  # named with its fix when the run loads it
        return None


def warm_config(cfg: WorldConfig, wcfg: WorldConfig, world_dir: str, fresh_lam: bool) -> tuple[WorldConfig, bool]:
    """The run's config for a warm start from world_dir (its config wcfg): its dynamics (sampling settings and event
    slot included) and event types; its latent action model too unless fresh_lam or the preset's LAM design differs.
    -> (cfg, keep_lam)"""
    if dataclasses.replace(wcfg.dynamics, **{k: getattr(cfg.dynamics, k) for k in WARM_SETTINGS}) != cfg.dynamics:
        raise ValueError(f"--init-from {world_dir} has another dynamics size than this run's --preset {cfg.preset}; "
                         "warm starts need the same sizes")
    cfg.dynamics, cfg.event_types = wcfg.dynamics, list(wcfg.event_types)
    return cfg, wcfg.lam == cfg.lam and not fresh_lam


def warm_start(model: WorldModel, wcfg: WorldConfig, tensors: dict[str, torch.Tensor], world_dir: str,
               keep_lam: bool) -> None:
    """Start from another world's weights: its dynamics and event embeddings always (frame prediction carries over
    to a new tokenizer or LAM), its latent action model and action embeddings when keep_lam, else learned afresh."""
    if wcfg.tokenizer != model.cfg.tokenizer:
        raise ValueError(f"--init-from {world_dir} has another tokenizer config than --tokenizer; "
                         "warm starts need the same codebook and grid")
    own = model.state_dict()
    keep = {k: v for k, v in tensors.items() if k in own and k != "bank" and not k.startswith("tokenizer.")
            and (keep_lam or not (k.startswith("lam.") or (k.startswith("dynamics.") and "action" in k)))}
    model.load_state_dict({**own, **keep})


def make_optimizer(model: nn.Module, lr: float, lam_scale: float) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (nanoGPT) but not the conditioning slot (a run without events gives it
    zero gradients, so decay would only shrink it), as in `train prompts events`; the latent action model at
    lam_scale * lr."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            decay = p.dim() >= 2 and "codebook" not in name and ".cond_" not in name
            groups.setdefault((decay, name.startswith("lam.")), []).append(p)
    params = [{"params": ps, "weight_decay": 0.05 if decay else 0.0, "scale": lam_scale if lam else 1.0}
              for (decay, lam), ps in sorted(groups.items())]
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), fused=False)


def clip_per_module(model: nn.Module, max_norm: float) -> dict[str, torch.Tensor]:
    """Clip each trained part on its own, so one part's large gradients never shrink another's updates."""
    parts: dict[str, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad and p.grad is not None:
            parts.setdefault(name.split(".")[0] if isinstance(model, WorldModel) else "model", []).append(p)
    return {f"grad_{k}": torch.nn.utils.clip_grad_norm_(ps, max_norm) for k, ps in parts.items()}


def first_frames(ds: VideoDataset, sampler: ClipSampler, rng: np.random.Generator, k: int = BANK_SIZE) -> np.ndarray:
    """Real first frames to start worlds from: episode starts of the train split, topped up with random clip starts."""
    eps = list(ds.split("train"))
    rng.shuffle(eps)
    frames = [np.asarray(ds.frames(e)[0]) for e in eps[:k]]
    if len(frames) < k:
        frames += list(sampler.sample(k - len(frames), rng)[:, 0])
    return np.stack(frames)


def train(opts: TrainOptions) -> dict[str, Any]:
    """Run (or resume) one stage; returns the final logged metrics. `kill` saves as Ctrl-C does."""
    with sigterm_as_ctrl_c():
        return _train(opts)


def _train(opts: TrainOptions) -> dict[str, Any]:
    from bridge.data.dataset import ClipSampler, VideoDataset

    if opts.stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {opts.stage!r}")
    env = Dist(opts.device)
    out = Path(opts.out)
    ds = VideoDataset(opts.data)
    kind = "tokenizer" if opts.stage == "tokenizer" else "world"
    resuming = (out / STATE).is_file()

    # --- Config: a resumed run keeps its own; a fresh run takes the preset fitted to the data ---
    if resuming:
        (cfg, card, run), keep_lam, warm = _resumed_config(out, kind, opts, ds), False, None
    else:
        (cfg, keep_lam, warm), card, run = _new_config(out, opts, ds), {}, {}
    opts = kept_options(opts, run, {**RUN_DEFAULTS, **TRAIN_DEFAULTS[cfg.preset][opts.stage]}, KEPT)
    steps, batch, lr, max_minutes = int(opts.steps), int(opts.batch), float(opts.lr), opts.max_minutes

    # before a new model's weights are drawn; a resumed run draws on from its step instead of replaying step 0's
    rng = seed_run(opts.seed, int(read_train_meta(out)["step"]) if resuming else 0, env.rank)
    model, clip_len, tokenizer_from = _build_model(opts, cfg, ds, resuming, warm, keep_lam)
    model.to(env.device).train()  # (a WorldModel keeps its frozen tokenizer in eval mode)
    sampler = ClipSampler(ds, clip_len, "train", seed=opts.seed)
    opt = make_optimizer(model, lr, opts.lam_lr_scale)
    ctx, amp_on = amp(env.device, opts.amp)
    csv_path = out / "metrics.csv"

    # --- Resume, or start a world with a bank of real first frames (as tokens) ---
    start, elapsed = _resume(out, kind, cfg, model, opt, card, amp_on, env.main) if resuming else (0, 0.0)
    if not resuming and opts.stage == "dynamics":
        _fill_bank(model, ds, sampler, opts.seed, env.device)
    finished = _finished(out, start, steps, elapsed if resuming else None, max_minutes)
    if finished:
        if env.main:
            print(finished)
        env.close()
        return {"step": start, "unchanged": True}
    card = _run_card(opts, cfg, ds, env, clip_len, card if resuming else None, tokenizer_from, start)

    ddp = env.wrap(model)
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
        _truncate_csv(csv_path, start)

    def save(step: int, metrics: dict[str, float]) -> None:
        if env.main:
            _save(out, kind, cfg, model, opt, card, step, metrics, elapsed + time.time() - t_start, amp_on)

    bar = progress_bar(steps, f"train {opts.stage} ({cfg.preset})", env.main and opts.progress, initial=start,
                       max_minutes=max_minutes, spent_s=elapsed)
    t_start = last_ckpt = last_log = time.time()
    avg, frames_since, metrics, done = Averager(), 0, {}, start
    model.train()
    try:
        with saved_on_stop(lambda step: save(step, metrics), lambda: done, out, bar, env.main):
            for step in range(start, steps):
                step_lr = set_lr(opt, step, steps, lr, opts.warmup, elapsed + time.time() - t_start, max_minutes)
                clips = torch.from_numpy(sampler.sample(batch, rng)).to(env.device, non_blocking=True)
                with ctx:
                    res = ddp(clips)
                opt.zero_grad(set_to_none=True)
                res["loss"].backward()
                res.update(clip_per_module(model, 1.0))
                opt.step()
                done = step + 1
                res.update(_collapse_guard(model))  # from step 1
                avg.push({k: v for k, v in res.items() if torch.is_tensor(v) and v.dim() == 0})
                frames_since += clips.shape[0] * clips.shape[1] * env.world
                bar.update(1)
                timed_out = env.any(over_budget(elapsed + time.time() - t_start, max_minutes))
                if done % opts.log_every == 0 or done == steps or timed_out:  # the last steps' metrics go in the card
                    metrics = env.mean(avg.flush())
                    now = time.time()
                    metrics.update(frames_per_s=frames_since / max(now - last_log, 1e-9), lr=step_lr)
                    frames_since, last_log = 0, now
                    if env.main:
                        _log(csv_path, bar, done, elapsed + now - t_start, metrics)
                if done == steps or timed_out or env.any(done % opts.ckpt_every == 0 or
                                                         time.time() - last_ckpt > opts.ckpt_minutes * 60):
                    save(done, metrics)
                    last_ckpt = time.time()
                if timed_out:
                    break
            if env.world > 1:
                dist.barrier()  # every rank waits for rank 0's save, so none tears gloo down mid-transfer
    finally:
        ddp = None  # DDP's reducer holds the process group: let go of it before env.close() collects it
        env.close()
    rerun = "rerun with a larger --max-minutes (0: no limit) to go on"  # the budget counts resumes
    return {"step": done, **metrics, **budget_stop(done, steps, max_minutes, rerun)}


def _new_config(out: Path, opts: TrainOptions, ds: VideoDataset) -> tuple[WorldConfig, bool, tuple | None]:
    """A new run's config: the preset fitted to the data, with an --init-from world's dynamics; -> (cfg, keep_lam, the
    --init-from world as load_model read it)."""
    _check_new_out(out, opts.stage)
    cfg, keep_lam, warm = world_config(opts.preset or source_preset(opts) or "tiny", ds), False, None
    if opts.stage == "dynamics" and opts.init_from:
        warm = load_model(Path(opts.init_from), kind="world")  # read once: its config, tokenizer and weights
        cfg, keep_lam = warm_config(cfg, warm[0], opts.init_from, opts.fresh_lam)
    return cfg, keep_lam, warm


def _check_new_out(out: Path, stage: str) -> None:
    """A new run writes only into a new folder (or its own, cut short): never into a dataset, nor over a finished
    checkpoint."""
    check_new_out(out, f"train {stage}", "a training run's", ours=RUN_FILES)
    if (out / MODEL).exists() or (out / CONFIG).exists():
        raise ValueError(f"{out} holds a finished checkpoint (no training state to resume): give `train {stage}` a "
                         "new --out directory" + (f" (with --init-from {out} to go on from its weights)"
                                                   if stage == "dynamics" else ""))


def _resumed_config(out: Path, kind: str, opts: TrainOptions, ds: VideoDataset) -> tuple[WorldConfig, dict, dict]:
    """A resumed run's own config and card, checked against this command; -> (cfg, card, the options it was started
    with)."""
    try:  # the weights come from the training state: config.json may lag them by a save cut short
        cfg, card, header = read_config(out)
    except CheckpointError:
        meta = read_train_meta(out)  # the first save was cut off before config.json was written
        if "world" not in meta:
            raise
        cfg, card, header = WorldConfig.from_dict(meta["world"]), meta.get("card", {}), {"kind": meta["kind"]}
    if header["kind"] != kind:
        raise ValueError(f"{out} holds a {header['kind']} run; give `train {opts.stage}` a new --out directory")
    if opts.preset not in (None, cfg.preset):
        raise ValueError(f"{out} is a --preset {cfg.preset} run; resume it with that preset or use a new --out")
    check_frame_size(ds, cfg.height, cfg.width, str(out), also="give a new --out to train on this one (it was started "
                     f"on {card.get('data', {}).get('path', 'another dataset')})")
    tokenizer_from = card.get("tokenizer_from")
    if opts.tokenizer and str(Path(opts.tokenizer).resolve()) != (tokenizer_from or {}).get("path"):
        raise ValueError(f"{out} was started on the tokenizer {(tokenizer_from or {}).get('path')}, not "
                         f"--tokenizer {opts.tokenizer}: resume without --tokenizer, or give a new --out (with "
                         f"--init-from {out} to keep its dynamics)")
    return cfg, card, {**card.get("train", {}), "seed": card.get("seed")}


def _build_model(opts: TrainOptions, cfg: WorldConfig, ds: VideoDataset, resuming: bool, warm: tuple | None,
                 keep_lam: bool) -> tuple[nn.Module, int, dict | None]:
    """The stage's model: a tokenizer, or a world on a frozen tokenizer (--tokenizer's, or the --init-from world's,
    whose weights it starts from); a resumed run's weights come later, from its training state.
    -> (model, clip_len, where a new world's tokenizer came from)"""
    if opts.stage == "tokenizer":
        return VideoTokenizer(cfg.tokenizer, cfg.height, cfg.width), cfg.tokenizer.clip_len, None
    tokenizer_from = None
    if not resuming:
        if not opts.tokenizer and not opts.init_from:
            raise ValueError("train dynamics needs --tokenizer RUN_DIR (the output of `worldbridge train tokenizer`) "
                             "or --init-from WORLD_DIR")
        if opts.tokenizer:
            tcfg, ttensors, tcard, _ = load_model(Path(opts.tokenizer), kind="tokenizer")
        else:  # the world's own tokenizer
            tcfg, ttensors, tcard, _ = warm
            ttensors = {k: v for k, v in ttensors.items() if k.startswith("tokenizer.")}
            tcard = tcard.get("tokenizer_from", {})
        check_frame_size(ds, tcfg.height, tcfg.width, f"the tokenizer {opts.tokenizer}" if opts.tokenizer
                         else f"the tokenizer of {opts.init_from}", also="train a tokenizer on this data")
        cfg.tokenizer = tcfg.tokenizer
        tokenizer_from = {"path": str(Path(opts.tokenizer).resolve()), "step": tcard.get("step"),
                          "metrics": tcard.get("metrics", {})} if opts.tokenizer else tcard
    model = WorldModel(cfg, bank_size=BANK_SIZE)
    if not resuming:
        load_into(model.tokenizer, ttensors, "tokenizer.", where=str(Path(opts.tokenizer or opts.init_from) / MODEL))
        if opts.init_from:
            warm_start(model, warm[0], warm[1], opts.init_from, keep_lam)
    model.tokenizer.requires_grad_(False)
    return model, cfg.dynamics.clip_len, tokenizer_from


def _resume(out: Path, kind: str, cfg: WorldConfig, model: nn.Module, opt: torch.optim.Optimizer, card: dict,
            amp_on: bool, main: bool) -> tuple[int, float]:
    """Load the training state (keeping this run's lam_lr_scale) and finish a save cut short after it (a finished run
    would never save again); -> (step, elapsed_s)."""
    scales = [g["scale"] for g in opt.param_groups]  # this run's lam_lr_scale, not the saved state's
    try:
        meta, _ = load_train_state(out, model, opt)
    except OptimizerMismatch as e:  # saved before a change to how the optimizer groups the parameters
        if kind != "world":
            raise
        raise OptimizerMismatch(f"{e}; to keep its weights, start that run from them: --init-from {out} --out NEW") from e
    for g, scale in zip(opt.param_groups, scales):
        g["scale"] = scale
    start, elapsed = int(meta["step"]), float(meta.get("elapsed_s", 0.0))
    if main and whole_step(out) != start:
        _publish(out, kind, cfg, model, {**meta.get("card", card), "metrics": _logged(out / "metrics.csv", start)},
                 elapsed, amp_on, start)
    return start, elapsed


def _fill_bank(model: WorldModel, ds: VideoDataset, sampler: ClipSampler, seed: int, device: torch.device) -> None:
    """A new world starts with a bank of real first frames (as tokens) to begin its rollouts from."""
    with torch.no_grad():
        bank = torch.from_numpy(first_frames(ds, sampler, np.random.default_rng(seed))).to(device)
        model.bank.copy_(model.tokenizer.encode(bank[:, None])[0][:, 0])


def _finished(out: Path, start: int, steps: int, elapsed: float | None, max_minutes: float | None) -> str | None:
    """Why a resumed run has nothing left to train (its --steps reached or its --max-minutes spent) and how to go on;
    None if it has (elapsed None: a new run)."""
    if elapsed is not None and max_minutes is not None and elapsed >= max_minutes * 60:
        return (f"{out} has spent its --max-minutes {max_minutes:g} at step {start}: pass a larger --max-minutes "
                "(0: no limit) to continue")
    if start >= steps:
        return f"{out} is already at step {start} of {steps}: pass a larger --steps to continue"
    return None


def _save(out: Path, kind: str, cfg: WorldConfig, model: nn.Module, opt: torch.optim.Optimizer, card: dict,
          step: int, metrics: dict[str, float], elapsed_s: float, amp_on: bool) -> None:
    """Checkpoint `step`: the training state first (enough to resume without config.json), then the loadable model."""
    meta = {"step": step, "stage": card["stage"], "preset": cfg.preset, "elapsed_s": elapsed_s, "kind": kind,
            "world": cfg.to_dict(), "card": card}
    save_train_state(out, model, opt, meta)
    _publish(out, kind, cfg, model, {**card, "metrics": metrics}, elapsed_s, amp_on, step)


def _run_card(opts: TrainOptions, cfg: WorldConfig, ds: VideoDataset, env: Dist, clip_len: int,
              resumed: dict | None, tokenizer_from: dict | None, start: int) -> dict[str, Any]:
    """The model card of this run: its data (and the footage a resumed run trained on before), kept options and
    commands (the first, then each resume's)."""
    commands = {"command": opts.command} if resumed is None else {
        "command": resumed.get("command", opts.command), "resumed_with": [*resumed.get("resumed_with", []), opts.command]}
    before = (resumed or {}).get("data", {})
    card = {"preset": cfg.preset, "stage": opts.stage, **commands, "seed": opts.seed,
            "data": {**provenance(ds), "frames": ds.num_frames, "episodes": len(ds.episodes),
                     "height": ds.height, "width": ds.width, "fps": ds.fps, "source": getattr(ds, "source", "unknown"),
                     "action_names": ds.action_names,
                     **footage_history(before, [ds], opts.out, start, warn=resumed is not None and env.main)},
            "train": {**{key: v for key, v in card_options(opts, KEPT).items() if key != "seed"},
                      "world_size": env.world, "device": str(env.device), "clip_len": clip_len}}
    if opts.stage == "dynamics":
        card["tokenizer_from"] = tokenizer_from if resumed is None else resumed.get("tokenizer_from")
    return card


def _collapse_guard(model: nn.Module) -> dict[str, torch.Tensor]:
    """Reset dead codes (the tokenizer's, the latent actions'); -> each quantizer's usage and resets, as metrics."""
    res = {}
    for name, r in reset_dead_codes(model).items():
        short = "lam" if name.startswith("lam") else "code"
        res[f"{short}_usage"] = torch.tensor(r["usage"])
        res[f"{short}_resets"] = torch.tensor(float(r["resets"]))
    return res


def _publish(out: Path, kind: str, cfg: WorldConfig, model: nn.Module, card: dict[str, Any], elapsed_s: float,
             amp_on: bool, step: int) -> None:
    """Write the loadable checkpoint (weights, config.json, model_card.json) of `step`, after its training state."""
    info = {**card, "train_time_s": round(elapsed_s, 1), "updated": _dt.datetime.now().isoformat(timespec="seconds"),
            "amp_bf16": amp_on}
    tensors = state_tensors(model, "tokenizer.") if kind == "tokenizer" else state_tensors(model)
    save_model(out, kind, cfg, tensors, info, step)


def _logged(path: Path, step: int) -> dict[str, float]:
    """The metrics last logged at or before `step` (metrics.csv), for a card whose own save was cut short."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("step") and int(float(r["step"])) <= step]
    return {k: float(v) for k, v in rows[-1].items() if k not in ("step", "time_s") and v} if rows else {}


POSTFIX = {"loss": "loss", "psnr": "psnr", "code_usage": "codes", "ce": "ce", "acc": "acc", "lam_rel_mse": "lam",
           "lam_bits": "lam_bits", "lam_usage": "lam_use", "frames_per_s": "fr/s"}


def _postfix(m: dict[str, float]) -> dict[str, str]:
    return {short: f"{m[k]:.3g}" for k, short in POSTFIX.items() if k in m}


def _log(path: Path, bar: tqdm, step: int, time_s: float, metrics: dict[str, float]) -> None:
    """Log the metrics of `step` to metrics.csv and show the main ones in the bar."""
    _append_csv(path, {"step": step, "time_s": round(time_s, 1), **metrics})
    bar.set_postfix(_postfix(metrics), refresh=False)


def _append_csv(path: Path, row: dict[str, float]) -> None:
    """Append a row; the columns are fixed by the file's header (a key missing from a row is left empty)."""
    new = not path.is_file() or path.stat().st_size == 0
    if new:
        fields = list(row)
    else:
        with open(path, newline="", encoding="utf-8") as f:
            fields = next(csv.reader(f))
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _truncate_csv(path: Path, step: int) -> None:
    """On resume, drop rows logged after the checkpoint we resume from (they will be logged again)."""
    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    keep = [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) <= step]
    if len(keep) != len(rows):
        buf = io.StringIO()
        csv.writer(buf).writerows(keep)
        atomic_write_bytes(path, buf.getvalue().encode())
