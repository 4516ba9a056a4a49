"""Where a world model's per-frame time goes: stage timings, FLOPs per frame, the machine's matmul peak, MaskGIT steps.

`python -m bridge.model.speed --preset tiny` measures a random-init preset (weights do not matter for speed);
`--checkpoint RUN_DIR --report` prints the full model report that `worldbridge bench` embeds.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from bridge.backend import Prompt
from bridge.model.checkpoint import CheckpointError, save_model, state_tensors
from bridge.model.config import WorldConfig
from bridge.model.genie import WorldModel
from bridge.model.presets import PRESETS, get_preset
from bridge.model.st_transformer import PLAIN_ATTENTION_MIN_KEYS
from bridge.model.world import WorldModelBackend, load_world
from bridge.options import CHECKPOINT_FOLDER, DEVICE_OPTION, THREADS

SWEEP_STEPS = (2, 4, 6, 8)


def random_world(preset: str, out: Path, seed: int = 0) -> Path:
    """Save an untrained but complete world checkpoint of a preset (a speed subject; its frames mean nothing)."""
    cfg = get_preset(preset)
    torch.manual_seed(seed)
    model = WorldModel(cfg, bank_size=4)
    model.bank.copy_(torch.randint(0, model.tokenizer.vocab, model.bank.shape))
    save_model(Path(out), "world", cfg, state_tensors(model), {"step": 0, "preset": preset}, 0)
    return Path(out)


# --- FLOPs ---

def _st_flops(tokens: int, dim: int, depth: int, keys: int) -> tuple[int, int]:
    """(projection, attention) FLOPs of one ST-transformer pass over one frame attending `keys` frames in time."""
    linear = depth * 2 * tokens * 16 * dim * dim  # qkv 3D^2 + proj D^2, twice (space, time), FFN 8D^2
    attention = depth * 4 * tokens * dim * (tokens + keys)  # QK^T and AV: spatial over tokens, temporal over keys
    return linear, attention


def frame_flops(cfg: WorldConfig, steps: int, branches: int = 1) -> dict[str, int]:
    """Analytic matmul FLOPs (2 per multiply-add) of one frame at full context: `dynamics` = steps x branches
    forwards and the commit, `decode`, and `tokenize` (one frame, for resets and edits); `*_linear` counts projections
    only; `frame_counted_cpu` is what torch's FlopCounterMode counts on a CPU."""
    d, t, N = cfg.dynamics, cfg.tokenizer, cfg.tokens_per_frame
    n_prefix = int(d.action_mode == "token") + int(d.cond_prefix and d.cond_dim > 0)
    lin, att = _st_flops(N + n_prefix, d.dim, d.depth, d.window)
    head = 2 * N * d.dim * cfg.vocab
    forwards = steps * branches
    # the commit stops at the last layer's keys and values: no temporal attention, t_proj (D^2), FFN (8 D^2) or head
    commit_lin = lin - 2 * (N + n_prefix) * 9 * d.dim * d.dim
    commit_att = att - 4 * (N + n_prefix) * d.dim * d.window
    qdim = len(t.fsq_levels) if t.quantizer == "fsq" else t.code_dim
    patch = 2 * N * t.dim * t.patch * t.patch * 3
    dl, da = _st_flops(N, t.dim, t.dec_depth, t.window)
    el, ea = _st_flops(N, t.dim, t.enc_depth, t.window)
    vq = 2 * N * qdim * cfg.vocab if t.quantizer == "vq" else 0
    out = {"dynamics_linear": forwards * (lin + head) + commit_lin, "dynamics_attention": forwards * att + commit_att,
           "decode_linear": 2 * N * qdim * t.dim + dl + patch, "decode_attention": da,
           "tokenize_linear": patch + el + 2 * N * t.dim * qdim + vq, "tokenize_attention": ea}
    out["dynamics"] = out["dynamics_linear"] + out["dynamics_attention"]
    out["decode"] = out["decode_linear"] + out["decode_attention"]
    out["tokenize"] = out["tokenize_linear"] + out["tokenize_attention"]
    out["frame"] = out["dynamics"] + out["decode"]
    out["frame_linear"] = out["dynamics_linear"] + out["decode_linear"]
    # torch's FlopCounterMode on a CPU sees the projections, and the temporal attention `attend_one` runs as plain
    # matmuls (every layer of the step passes, all but the last of the commit); SDPA's CPU kernel it cannot count
    temporal = 4 * (N + n_prefix) * d.dim * d.window if d.window >= PLAIN_ATTENTION_MIN_KEYS else 0
    out["frame_counted_cpu"] = out["frame_linear"] + (forwards * d.depth + d.depth - 1) * temporal
    return out


def _branches(backend: WorldModelBackend) -> int:
    return 1 + int(backend.settings["cfg"] != 1.0)  # event guidance only runs while an event is held


def _warm(world: WorldModelBackend, seed: int = 0, tick: Callable[[], None] = lambda: None) -> None:
    """Reset and fill the context window, so timings and FLOPs are those of a long rollout (`tick` per frame)."""
    world.reset(Prompt(seed=seed))
    tick()
    for i in range(world.cfg.dynamics.window + 2):
        world.step(i % world.num_latent_actions)
        tick()


def _warm_frames(cfg: WorldConfig) -> int:
    return cfg.dynamics.window + 3  # what _warm plays: the reset frame and window + 2 steps


def measured_frame_flops(backend: WorldModelBackend, tick: Callable[[], None] = lambda: None) -> int:
    """Matmul FLOPs of one step counted by torch.utils.flop_counter on a spawned session (the backend is untouched)."""
    from torch.utils.flop_counter import FlopCounterMode

    world = backend.spawn()
    _warm(world, tick=tick)
    with FlopCounterMode(display=False) as counter:
        world.step(1 % world.num_latent_actions)
    tick()
    return int(counter.get_total_flops())


def matmul_peak_gflops(dtype: torch.dtype, seconds: float = 1.0, n: int = 1024,
                       device: str | torch.device = "cpu") -> float:
    """This machine's n x n matmul throughput at the current thread count (the ceiling for `utilisation`)."""
    dev = torch.device(device)
    a, b = torch.randn(n, n, dtype=dtype, device=dev), torch.randn(n, n, dtype=dtype, device=dev)
    for _ in range(2):
        a @ b
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    sync()
    count, t0 = 0, time.perf_counter()
    while True:
        a @ b
        count += 1
        if count % 4 == 0:
            sync()
            if time.perf_counter() - t0 >= seconds:
                break
    return 2 * n**3 * count / (time.perf_counter() - t0) / 1e9


# --- Stage timings ---

def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _p50(xs: list[float]) -> float:
    return round(float(statistics.median(xs)), 3)


def stage_timings(backend: WorldModelBackend, frames: int = 40, resets: int = 5, seed: int = 0,
                  tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Model-only p50 ms per stage on a spawned session: tokenize (an image prompt, as resets and edits do), each
    MaskGIT step, the commit pass, dynamics in all, decode, and the frame (dynamics + decode); `tick` per frame."""
    world = backend.spawn()
    rng = np.random.default_rng(seed)
    tok = []
    for i in range(resets):
        world.reset(Prompt(seed=i, image=rng.integers(0, 256, (world.height, world.width, 3), dtype=np.uint8)))
        tok.append(world.last_timings["tokenize"])
        tick()
    _warm(world, seed, tick)
    world.detailed_timings = True
    steps, commit, dyn, dec = [], [], [], []
    for i in range(frames):
        world.step(int(rng.integers(world.num_latent_actions)))
        *per_step, last = world.last_step_ms
        steps.append(per_step)
        commit.append(last)
        dyn.append(world.last_timings["dynamics"])
        dec.append(world.last_timings["decode"])
        tick()
    per_step = [_p50([s[k] for s in steps]) for k in range(len(steps[0]))]
    return {"tokenize": _p50(tok), "dynamics_per_step": per_step, "dynamics_step": _p50([x for s in steps for x in s]),
            "commit": _p50(commit), "dynamics": _p50(dyn), "decode": _p50(dec),
            "frame": round(_p50(dyn) + _p50(dec), 3), "maskgit_steps": len(per_step), "frames": frames}


def swept_steps(cfg: WorldConfig, steps: tuple[int, ...] = SWEEP_STEPS) -> list[int]:
    """The step counts a sweep measures: more MaskGIT steps than tokens per frame do nothing more."""
    return [s for s in steps if s <= cfg.tokens_per_frame]


def steps_sweep(backend: WorldModelBackend, steps: tuple[int, ...] = SWEEP_STEPS, frames: int = 30,
                tick: Callable[[], None] = lambda: None) -> list[dict]:
    """fps (model only, one session) at each MaskGIT step count; counts above the tokens per frame are skipped."""
    rows = []
    for s in swept_steps(backend.cfg, steps):
        world = backend.spawn()
        world.configure(steps=s)
        _warm(world, tick=tick)
        dyn, dec = [], []
        for i in range(frames):
            world.step(i % world.num_latent_actions)
            dyn.append(world.last_timings["dynamics"])
            dec.append(world.last_timings["decode"])
            tick()
        ms = _p50(dyn) + _p50(dec)
        rows.append({"steps": s, "dynamics_ms": _p50(dyn), "decode_ms": _p50(dec), "frame_ms": round(ms, 3),
                     "fps": round(1000.0 / ms, 1)})
    return rows


def _report_plan(quick: bool) -> dict[str, int]:
    """How much model_report plays: stage frames and resets, and frames per swept step count (--quick: fewer)."""
    return {"frames": 12, "resets": 3, "sweep": 10} if quick else {"frames": 60, "resets": 7, "sweep": 40}


def report_frames(backend: WorldModelBackend, quick: bool = False) -> int:
    """Frames model_report plays, each one `tick` (a progress bar's total); the matmul peak plays none."""
    plan, warm = _report_plan(quick), _warm_frames(backend.cfg)
    return (plan["resets"] + warm + plan["frames"]) + (warm + 1) + len(swept_steps(backend.cfg)) * (warm + plan["sweep"])


def model_report(backend: WorldModelBackend, quick: bool = False,
                 tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Everything `worldbridge bench` adds for a world model: stages, FLOPs, matmul peak, utilisation, step sweep
    (`tick` after each of its report_frames frames, for a progress bar)."""
    plan = _report_plan(quick)
    stages = stage_timings(backend, frames=plan["frames"], resets=plan["resets"], tick=tick)
    flops = frame_flops(backend.cfg, backend.settings["steps"], _branches(backend))
    dtype = "bf16" if backend.autocast else "fp32"
    peak_s = 0.25 if quick else 1.0
    if backend.device.type == "cpu":
        peak = {"fp32": matmul_peak_gflops(torch.float32, peak_s), "bf16": matmul_peak_gflops(torch.bfloat16, peak_s)}
    else:
        peak = {k: matmul_peak_gflops(dt, peak_s, 4096, backend.device)
                for k, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    achieved = flops["frame"] / (stages["frame"] / 1e3) / 1e9
    return {
        "stages_ms": stages,
        "flops_per_frame": flops["frame"],
        "flops_per_frame_detail": flops,
        "flops_per_frame_measured": measured_frame_flops(backend, tick),
        "achieved_gflops": _sig(achieved),
        "matmul_peak_gflops": {k: round(v, 1) for k, v in peak.items()},
        "compute_dtype": dtype,
        "utilisation": _sig(achieved / peak[dtype]),
        "steps_sweep": steps_sweep(backend, frames=plan["sweep"], tick=tick),
        "threads": torch.get_num_threads(),
        "device": str(backend.device),
    }


# --- The original one-line measurement ---

def measure(preset: str, frames: int = 60, steps: int | None = None, autocast: bool | None = None,
            device: str | None = None, cfg: float | None = None, threads: int | None = None,
            compile: bool | str = False, checkpoint: str | None = None) -> dict[str, Any]:
    """Median ms per generated frame (dynamics incl. all MaskGIT steps + commit, and decode) of a random-init preset
    (or of a checkpoint); `warmup_s` is the time from load to the first 10 frames (torch.compile shows up there)."""
    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = checkpoint or random_world(preset, Path(tmp) / "world")
        t0 = time.perf_counter()
        world = load_world(path, device=device, autocast=autocast, compile=compile)
    world.configure(steps=steps, cfg=cfg)
    world.reset(Prompt(seed=0))
    dyn, dec = [], []
    for i in range(frames + 10):  # 10 warm-up frames also fill the context window
        world.step(i % world.num_latent_actions)
        if i == 9:
            warmup = time.perf_counter() - t0
        if i >= 10:
            dyn.append(world.last_timings["dynamics"])
            dec.append(world.last_timings["decode"])
    d, e = statistics.median(dyn), statistics.median(dec)
    return {"preset": world.cfg.preset, "device": str(world.device), "autocast_bf16": world.autocast,
            "compile": compile or None, **world.settings, "threads": torch.get_num_threads(),
            "dynamics_ms": round(d, 2), "decode_ms": round(e, 2), "frame_ms": round(d + e, 2),
            "fps": round(1000 / (d + e), 1), "warmup_s": round(warmup, 2)}


@click.command()
@click.option("--preset", type=click.Choice(list(PRESETS)), default="tiny", show_default=True,
              help="Size of the random-init world to measure.")
@click.option("--checkpoint", type=CHECKPOINT_FOLDER, default=None,
              help="Measure this world instead of a random-init preset.")
@click.option("--frames", type=click.IntRange(1), default=60, show_default=True,
              help="Frames timed after 10 warm-up frames.")
@click.option("--steps", type=int, default=None, help="MaskGIT steps (default: the preset's)")
@click.option("--cfg", type=float, default=None, help="guidance scale (1 = off, >1 doubles the batch)")
@click.option("--autocast/--no-autocast", default=None, help="bf16 autocast (default: auto)")
@click.option("--compile", "compile_mode", default=None,
              help="torch.compile mode (default, reduce-overhead, ...); measured slower on CPU, see docs/model.md")
@DEVICE_OPTION
@click.option("--threads", type=THREADS, default=None, help="PyTorch CPU threads (default or 0: PyTorch's own).")
@click.option("--report", is_flag=True, help="Print the full model report (stages, FLOPs, peak, step sweep).")
@click.option("--quick", is_flag=True, help="With --report: a short run.")
def main(preset: str, checkpoint: str | None, frames: int, steps: int | None, cfg: float | None,
         autocast: bool | None, compile_mode: str | None, device: str | None, threads: int | None, report: bool,
         quick: bool) -> None:
    """Print one JSON line with the per-frame rollout time of a preset (or the full report with --report)."""
    try:  # a missing or damaged --checkpoint is one line, not a traceback
        if not report:
            print(json.dumps(measure(preset, frames, steps, autocast, device, cfg, threads, compile_mode or False,
                                     checkpoint)))
            return
        if threads:
            torch.set_num_threads(threads)
        with tempfile.TemporaryDirectory() as tmp:
            world = load_world(checkpoint or random_world(preset, Path(tmp) / "world"), device=device,
                               autocast=autocast, compile=compile_mode or False)
        world.configure(steps=steps, cfg=cfg)
    except (ValueError, OSError, CheckpointError) as e:
        raise click.ClickException(str(e)) from None
    print(json.dumps(model_report(world, quick=quick)))


if __name__ == "__main__":
    main()
