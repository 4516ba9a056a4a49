"""`worldbridge bench`: frames/s and latency of the backend alone and through the real protocol, and the difference.

For a world model it also reports where the model's time goes (bridge/model/speed.py: stage timings, FLOPs per
frame, achieved vs peak matmul GFLOP/s, fps at 2/4/6/8 MaskGIT steps) and, with --rollout-health N, the share of N
generated frames whose token statistics stay within the range of real footage (bridge/model/health.py).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import click
import numpy as np
from tqdm import tqdm

from bridge.options import CHECKPOINT_FOLDER, command_backend
from bridge.values import plural


TARGET = {"fps": 24, "latency_ms_p95": 60}  # real time, end to end (docs/model.md; --help says it too)


def target_misses(end_to_end: dict[str, float]) -> list[str]:
    """Which end-to-end figures miss the real-time target (none: it is met), each with its value."""
    misses = [f"{end_to_end['fps']:.2f} frames/s is below {TARGET['fps']}"] if end_to_end["fps"] < TARGET["fps"] else []
    if end_to_end["latency_ms_p95"] > TARGET["latency_ms_p95"]:
        misses.append(f"p95 {end_to_end['latency_ms_p95']:.2f} ms is above {TARGET['latency_ms_p95']}")
    return misses


def target_line(end_to_end: dict[str, float]) -> str:
    """The summary's line: the target, met or not, and which figure misses it (a bare fps says neither)."""
    misses = target_misses(end_to_end)
    verdict = f"not met ({', '.join(misses)})" if misses else "met"
    return f"target {TARGET['fps']} frames/s end to end, p95 <= {TARGET['latency_ms_p95']} ms: {verdict}"


def _stats(latencies_ms: list[float], wall_s: float) -> dict[str, float]:
    a = np.asarray(latencies_ms, dtype=np.float64)
    return {"fps": len(a) / wall_s if wall_s > 0 else 0.0, "latency_ms_p50": float(np.percentile(a, 50)),
            "latency_ms_p95": float(np.percentile(a, 95))}


def bench_in_process(backend: Any, frames: int, warmup: int = 10, tick: Callable[[], None] = lambda: None) -> dict:
    """backend.step in a loop: the floor any protocol adds to (`tick` after each measured frame, for a progress bar)."""
    from bridge.backend import Prompt

    backend.reset(Prompt(seed=0))
    n_actions = max(1, int(backend.num_latent_actions))
    for i in range(warmup):
        backend.step(i % n_actions)
    lat = []
    t_start = time.perf_counter()
    for i in range(frames):
        t0 = time.perf_counter()
        backend.step((i // 8) % n_actions)
        lat.append((time.perf_counter() - t0) * 1000.0)
        tick()
    return _stats(lat, time.perf_counter() - t_start)


SESSIONS = (1, 2, 4, 8)  # concurrent sessions the scaling measurement runs
FIRST_FRAMES = 5  # frames after frame 0 whose latencies `warmup` reports: PyTorch's first calls can be slow


def timed_start(client: Any, launched: float, **start: Any) -> tuple[dict, dict[str, float]]:
    """hello, then `start` until frame 0 arrives: what a user waits for after launching a host -> (session, figures)."""
    from bridge.host.protocol import ProtocolError

    client.connect()
    ready = time.perf_counter()
    session = client.start(**start)
    if client.next_frame(timeout=120.0) is None:
        raise ProtocolError("timeout", "the host sent no frame 0 within 120 s of start: is it overloaded?")
    return session, {"host_ready_s": ready - launched, "start_to_frame0_ms": (time.perf_counter() - ready) * 1e3}


def _client_run(address: str, frames: int, warmup: int, out: dict, key: Any, codec: str = "raw",
                start_together: threading.Barrier | None = None, launched: float | None = None,
                tick: Callable[[], None] = lambda: None) -> None:
    """One step-mode client: input sent -> frame received, per frame, plus that frame's model time. With
    `start_together`, the measured loop starts when every client has warmed up (no one's warm-up is timed). With
    `launched` (when the host was launched), the host's warm-up goes into out[key]["warmup"]."""
    from bridge.client import WorldClient

    with WorldClient(address, client_name="worldbridge-bench", codecs=[codec], timeout=30.0) as c:
        s, warm = timed_start(c, time.perf_counter() if launched is None else launched, mode="step", seed=0)
        n_actions = max(1, int(s["num_latent_actions"]))
        first = []
        for i in range(warmup):
            f = c.step(i % n_actions)
            first.append(f.received_ts - f.client_ts)
        warm["first_frames_ms"] = first[:FIRST_FRAMES]
        if start_together is not None:
            start_together.wait(timeout=120)
        lat, overhead = [], []
        t_start = time.perf_counter()
        for i in range(frames):
            f = c.step((i // 8) % n_actions)
            lat.append(f.received_ts - f.client_ts)
            overhead.append(f.received_ts - f.client_ts - f.timings.get("model", 0.0))
            tick()
        t_end = time.perf_counter()
        out[key] = {"warmup": warm, "lat": lat, "overhead": overhead, "wall": t_end - t_start, "span": (t_start, t_end),
                    "kind": s["backend_kind"], "name": s["backend_name"], "size": (s["width"], s["height"])}


def _serve_child(spec: Any, queue: Any) -> None:
    """Subprocess host started as `worldbridge serve` starts one: report the bound address, serve until terminated."""
    if spec.kind == "world_model":
        import torch

        torch.set_num_threads(1)
    from bridge.host.backends import preload
    from bridge.host.server import Host

    host = Host(preload(spec), bind="tcp://127.0.0.1:*")
    queue.put(host.address)
    host.run()


class _HostProcess:
    def __init__(self, spec: Any):
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        self.proc = ctx.Process(target=_serve_child, args=(spec, q), daemon=True)
        self.proc.start()
        self.address = q.get(timeout=120)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(10)


def run_bench(spec: Any, frames: int = 500, where: str = "subprocess", scaling: bool = True,
              scaling_frames: int = 200, quick: bool = False, health_frames: int = 0, progress: bool = True) -> dict:
    """All measurements as one JSON-able dict (a bar on stderr shows which phase runs, and its frames' rate and ETA)."""
    from bridge.host.backends import preload
    from bridge.host.server import run_host_in_thread

    measured = 2 * frames + (sum(SESSIONS) * scaling_frames if scaling else 0)
    bar = tqdm(total=measured, desc="bench: in-process", unit="frame", file=sys.stderr, disable=not progress,
               leave=False)
    lock = threading.Lock()  # the scaling clients tick from their threads

    def tick() -> None:
        with lock:
            bar.update(1)

    try:
        backend = spec.create()  # a damaged checkpoint is named before anything else is checked or measured
        reports_model = spec.kind == "world_model" and callable(getattr(backend, "spawn", None))
        if reports_model:
            from bridge.model.speed import report_frames

            bar.total += report_frames(backend, quick)
            bar.refresh()
        if health_frames and spec.kind == "world_model":
            _check_health_range(spec, backend)
        in_proc = bench_in_process(backend, frames, tick=tick)
    except BaseException:  # a checkpoint that does not load: its error gets a clean line, not the bar's
        bar.close()
        raise
    model: dict = {}
    if reports_model:
        from bridge.model.speed import model_report

        bar.set_description("bench: model stages, FLOPs, peak, MaskGIT steps")
        # settings: what every session ran with
        model = {"settings": dict(backend.settings), **model_report(backend, quick=quick, tick=tick)}
        if health_frames:
            from bridge.model.health import check_rollout
            from bridge.model.speed import swept_steps

            model["rollout_health"] = check_rollout(backend.spawn(), health_frames, "random", seed=0, progress=progress)
            by_steps = {}  # which step counts the quality allows, beside the fps of each in steps_sweep
            for steps in swept_steps(backend.cfg):
                world = backend.spawn()
                world.configure(steps=steps)
                by_steps[str(steps)] = check_rollout(world, health_frames, "random", seed=0,
                                                     progress=progress)["within_range"]
            model["rollout_health_by_steps"] = by_steps
    bar.set_description("bench: end to end")
    launched = time.perf_counter()
    host = _HostProcess(spec) if where == "subprocess" else run_host_in_thread(preload(spec))
    try:
        out: dict = {}
        _client_run(host.address, frames, 20, out, "e2e", launched=launched, tick=tick)
        e2e = out["e2e"]
        end_to_end = _stats(e2e["lat"], e2e["wall"])
        report = {
            "backend_kind": e2e["kind"], "backend_name": e2e["name"],
            "width": e2e["size"][0], "height": e2e["size"][1], "codec": "raw", "frames": frames, "mode": "step",
            "host": f"{where} (the host runs in a {'separate process' if where == 'subprocess' else 'thread of this process'}; "
                    "the client sends one input and waits for its frame)",
            "in_process": in_proc,
            "warmup": e2e["warmup"],
            "end_to_end": end_to_end,
            "target": dict(TARGET),
            "target_met": not target_misses(end_to_end),
            "protocol_overhead_ms_p50": float(np.percentile(e2e["overhead"], 50)),
            "protocol_overhead_ms_p95": float(np.percentile(e2e["overhead"], 95)),
            "quick": quick,
            **model,
        }
        if scaling:
            rows = []
            for n in SESSIONS:
                bar.set_description(f"bench: {plural(n, 'session')}")
                res: dict = {}
                together = threading.Barrier(n)  # other clients' connects and warm-ups must not fall in the window
                threads = [threading.Thread(target=_client_run, args=(host.address, scaling_frames, 5, res, i),
                                            kwargs={"start_together": together, "tick": tick}) for i in range(n)]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                wall = time.perf_counter() - t0
                if len(res) == n:  # the measured loops only: connecting and warming up are not frames
                    wall = max(r["span"][1] for r in res.values()) - min(r["span"][0] for r in res.values())
                lat = [x for r in res.values() for x in r["lat"]]
                rows.append({"sessions": n, "fps_total": n * scaling_frames / wall,
                             "latency_ms_p50": float(np.percentile(lat, 50)),
                             "latency_ms_p95": float(np.percentile(lat, 95))})
            report["sessions_scaling"] = rows
    finally:
        host.stop()
        bar.close()
    report["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    return report


@click.command()
@click.option("--checkpoint", type=CHECKPOINT_FOLDER, default=None,
              help="World model to measure [default: the embedded default world].")
@click.option("--backend", type=click.Choice(["sandbox"]), default=None,
              help="Measure the sandbox game (a test backend, not a world model) instead.")
@click.option("--frames", type=click.IntRange(10), default=500, show_default=True,
              help="Frames timed in-process and again end to end (--quick takes at most 60).")
@click.option("--host", "where", type=click.Choice(["subprocess", "thread"]), default="subprocess",
              show_default=True, help="Run the host in a separate process or in a thread of this one.")
@click.option("--no-scaling", is_flag=True, help="Skip the 1/2/4/8 concurrent sessions measurement.")
@click.option("--quick", is_flag=True, help="A short run (~1 min): fewer frames everywhere; figures are rougher.")
@click.option("--rollout-health", "health_frames", type=click.IntRange(0), default=0, metavar="N",
              help="Also roll the world model N frames and report the share within the token-statistics range of "
                   "real footage stored in its model card (docs/model.md, 'Rollout health').")
@click.option("--cfg", type=click.FloatRange(min=0), default=None,
              help="Action guidance for every session (1 = off; default: the checkpoint's). Guidance adds an "
                   "action-free pass to each MaskGIT step, so it costs frames (docs/model.md).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def bench(checkpoint: str | None, backend: str | None, frames: int, where: str, no_scaling: bool, quick: bool,
          health_frames: int, cfg: float | None, as_json: bool) -> None:
    """Measure frames/s and latency in-process and end to end (step mode through a real WorldClient).

    \b
    fps (frames/s, higher is better) and latency_ms_p50/p95 (ms, lower is better) of one session: in_process is the
    backend alone, end_to_end through the protocol; the target: 24 frames/s end to end, p95 60 ms (docs/model.md).
    Every key, the model's stages and FLOPs included: docs/model.md, `worldbridge bench`.
    """
    from bridge.host.backends import announce
    from bridge.model.checkpoint import CheckpointError

    spec = command_backend(backend, checkpoint)
    if cfg is not None:
        if spec.kind != "world_model":
            raise click.ClickException("--cfg is a world model's action guidance; the sandbox game has none")
        spec.settings = {"cfg": cfg}
    if quick:
        frames = min(frames, 60)
    if spec.kind == "world_model":
        import torch

        torch.set_num_threads(1)  # one session on one core: what a host busy with a second session gives each
    if health_frames and (spec.kind != "world_model" or spec.checkpoint is None):
        raise click.ClickException("--rollout-health checks a world model: pass --checkpoint RUN_DIR")
    try:  # the checkpoint is read first (in-process), so a damaged one fails before any host starts
        announce(spec)
        report = run_bench(spec, frames=frames, where=where, scaling=not no_scaling,
                           scaling_frames=20 if quick else 200, quick=quick, health_frames=health_frames)
    except CheckpointError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"backend: {report['backend_name']} [{report['backend_kind']}], {report['width']}x{report['height']}, "
               f"host in a {where}")
    for key in ("in_process", "end_to_end"):
        r = report[key]
        click.echo(f"{key:>11}: {r['fps']:8.1f} fps   p50 {r['latency_ms_p50']:6.2f} ms   p95 {r['latency_ms_p95']:6.2f} ms")
    click.echo(target_line(report["end_to_end"]))
    click.echo(f"protocol overhead p95: {report['protocol_overhead_ms_p95']:.3f} ms")
    w = report["warmup"]
    click.echo(f"warm-up: host answered hello {w['host_ready_s']:.2f} s after launch, frame 0 {w['start_to_frame0_ms']:.1f} ms "
               f"after start, next frames " + ", ".join(f"{x:.1f}" for x in w["first_frames_ms"]) + " ms")
    for row in report.get("sessions_scaling", []):
        click.echo(f"{plural(row['sessions'], 'session'):>11}: {row['fps_total']:8.1f} fps total, "
                   f"p95 {row['latency_ms_p95']:.2f} ms")
    if "stages_ms" in report:
        st = report["stages_ms"]
        click.echo(f"model stages (p50): tokenize {st['tokenize']:.2f} ms, dynamics {st['dynamics']:.2f} ms "
                   f"({plural(st['maskgit_steps'], 'MaskGIT step')} of ~{st['dynamics_step']:.2f} ms + commit "
                   f"{st['commit']:.2f} ms), decode {st['decode']:.2f} ms")
        dtype = report["compute_dtype"]
        click.echo(f"compute: {report['flops_per_frame'] / 1e9:.2f} GFLOP/frame, {report['achieved_gflops']:.1f} "
                   f"GFLOP/s achieved vs {report['matmul_peak_gflops'][dtype]:.1f} peak ({dtype}): "
                   f"utilisation {100 * report['utilisation']:.1f} %")
        click.echo("fps by MaskGIT steps: " + ", ".join(f"{r['steps']}: {r['fps']:.1f}" for r in report["steps_sweep"]))
    if "rollout_health" in report:
        h = report["rollout_health"]
        click.echo(f"rollout health: {100 * h['within_range']:.1f} % of {plural(h['frames'], 'frame')} within range; "
                   f"first failure: {h['first_failure']}")
        click.echo("within range by MaskGIT steps: " + ", ".join(
            f"{k}: {100 * v:.1f} %" for k, v in report["rollout_health_by_steps"].items()))


def _check_health_range(spec: Any, backend: Any) -> None:
    """--rollout-health needs the loaded world's card to hold the range: say so before measuring anything."""
    from bridge.model.checkpoint import CheckpointError
    from bridge.model.health import HOW_TO_CALIBRATE

    if not (getattr(backend, "card", None) or {}).get("health"):
        raise CheckpointError(f"{spec.checkpoint} has no health range in its model card: {HOW_TO_CALIBRATE}")
