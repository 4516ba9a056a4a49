"""`worldbridge demo`: the README's first command — a scripted session through the real protocol, no display needed."""

from __future__ import annotations

import json
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
import numpy as np
from tqdm import tqdm

from bridge.backend import backend_label
from bridge.data.interrupt import nothing_written, say_stopped, sigterm_as_ctrl_c
from bridge.files import make_folders, remove_empty
from bridge.options import CHECKPOINT_FOLDER, THREADS_OPTION, Folder, command_backend, world_seed_option

# The script: (frames to play, action name or id, event to fire first or None)
SCRIPT: list[tuple[int, str, str | None]] = [
    (24, "right", None),
    (12, "right_jump", None),
    (24, "right", "weather_snow"),
    (12, "left", None),
    (24, "right_jump", "night_falls"),
    (24, "right", None),
]
BRANCH_AT = 40  # after the script, branch back to this frame and play on differently
AFTER_BRANCH = 48  # frames played after the branch


def _script_action(name: str, action_names: list[str]) -> int:
    """Map a script action to the session's actions (latent ids when the backend has no such name)."""
    if name in action_names:
        return action_names.index(name)
    return zlib.crc32(name.encode()) % len(action_names)  # unnamed latent actions: a fixed, arbitrary pick


def fresh_stem(out: Path, name: str = "demo") -> str:
    """demo, demo-2, demo-3, ...: the first name with no .wbrec/.mp4/.gif in out, so a rerun keeps earlier runs."""
    stem, n = name, 1
    while any((out / f"{stem}{ext}").exists() for ext in (".wbrec", ".mp4", ".gif")):
        n += 1
        stem = f"{name}-{n}"
    return stem


def _percentiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95))}


def _make_out(out: Path) -> list[Path]:
    """Create --out (returns the folders this run made), or say why it cannot be the demo's folder."""
    try:
        made = make_folders(out)
    except OSError as e:
        raise click.ClickException(f"cannot create --out {out} ({e.strerror or e}): give a folder you can write to") from None
    try:  # a read-only folder is named now, not by the host once the session is playing
        tempfile.NamedTemporaryFile(dir=out, prefix=".demo-write-check-").close()
    except OSError as e:
        remove_empty(made)
        raise click.ClickException(f"cannot write into --out {out} ({e.strerror or e}): give a folder you can write to") from None
    return made


def _play(spec: Any, rec: Path, seed: int, text: str | None, launched: float, recording: list[Path]) -> dict[str, Any]:
    """The scripted session on a host in this process, recorded to `rec` (added to `recording` once it is this run's)
    with its MP4 and GIF beside it; -> the report (its warm-up counted from `launched`, when the command started
    loading the world)."""
    from bridge.client import WorldClient
    from bridge.host.bench import FIRST_FRAMES, timed_start
    from bridge.host.recording import export_recording
    from bridge.host.server import run_host_in_thread

    host = run_host_in_thread(spec, "tcp://127.0.0.1:*", record_anywhere=True)  # it records into --out
    try:
        with WorldClient(host.address, client_name="worldbridge-demo") as client:
            session, warmup = timed_start(client, launched, mode="step", seed=seed, text=text)
            kind, name = session["backend_kind"], session["backend_name"]
            click.echo(f"serving: {backend_label(kind, name)}", err=True)
            started_rec = client.record_start(str(rec))
            recording.append(rec)
            latencies: list[float] = []
            frame = None
            started = time.perf_counter()
            with tqdm(total=sum(n for n, _, _ in SCRIPT) + AFTER_BRANCH, desc="demo", unit="frame", file=sys.stderr) as bar:
                caps = session.get("capabilities", ["events", "text_events"])  # a host before 1.1 says nothing
                for count, action, event in SCRIPT:
                    if event and event in session["event_types"]:
                        client.event(event_type=event)
                    elif event and "text_events" in caps:
                        client.event(text=event.replace("_", " "))
                    elif event:
                        bar.write(f"note: {name} takes no {event!r} event (neither typed nor free text): skipped", file=sys.stderr)
                    act = _script_action(action, session["action_names"])
                    for _ in range(count):
                        frame = client.step(act)
                        latencies.append(frame.received_ts - frame.client_ts)
                        bar.update(1)
                client.branch(BRANCH_AT)
                for _ in range(AFTER_BRANCH):
                    frame = client.step(_script_action("left", session["action_names"]))
                    latencies.append(frame.received_ts - frame.client_ts)
                    bar.update(1)
                elapsed = time.perf_counter() - started
                played = bar.n
            stopped = client.record_stop()
        files = export_recording(Path(stopped["path"]), mp4=rec.with_suffix(".mp4"), gif=rec.with_suffix(".gif"))
    finally:
        host.stop()
    lat = _percentiles(latencies)
    return {
        "backend_kind": kind,
        "backend_name": name,
        "frames": played,
        "fps": played / elapsed,
        "latency_ms_p50": lat["p50"],
        "latency_ms_p95": lat["p95"],
        "warmup": {**warmup, "first_frames_ms": latencies[:FIRST_FRAMES]},
        "last_frame": {"index": frame.index, "epoch": frame.epoch} if frame else None,
        "recording": started_rec.get("path", stopped["path"]),
        "outputs": {k: str(v) for k, v in files.items()},
    }


def _left_behind(out: Path, made: list[Path], recording: list[Path]) -> str:
    """What a stopped or failed demo leaves: its recording so far (crash-safe, so whole up to its last frame) is
    kept, as a user's session is; with no recording yet, a folder this run made goes too."""
    if recording:
        return (f"the session so far is kept in {recording[0]} (`worldbridge record export {recording[0]} --mp4 "
                "CLIP.mp4` makes its clip); no MP4 or GIF was written")
    remove_empty(made)  # only while empty: what another run put there meanwhile is not ours
    return nothing_written(out)


def _text_for(spec: Any, text: str, seed: int) -> str | None:
    """The text prompt to start with: the default one only for a world that reads text, as the user asked for none."""
    from bridge.host.session import backend_capabilities

    given = click.get_current_context().get_parameter_source("text") is not ParameterSource.DEFAULT
    if given or "text_prompt" in backend_capabilities(spec.create()):
        return text  # a given text a world cannot read is refused by the host (bad_prompt), not dropped
    click.echo(f"note: this world reads no text prompts (session.capabilities lack text_prompt); the demo starts it "
               f"from seed {seed} without its default text prompt", err=True)
    return None


@click.command()
@click.option("--checkpoint", type=CHECKPOINT_FOLDER, default=None, help="World-model run dir (default: the embedded model).")
@click.option("--backend", type=click.Choice(["sandbox"]), default=None, help="Serve the sandbox game (a test backend) instead of a model.")
@click.option("--out", type=Folder("the folder for the recording, MP4 and GIF (made if missing), not a file", Path),
              default="demo_out", show_default=True, help="Where the recording, MP4 and GIF go.")
@world_seed_option(7)
@click.option("--text", default="a snowy night level with many coins", show_default=True,
              help="Text prompt for the world (the default one is left out for a world without text conditioning).")
@THREADS_OPTION
def demo(checkpoint: str | None, backend: str | None, out: Path, seed: int, text: str, threads: int | None) -> None:
    """Start a host, play a scripted session (prompt, movement, two events, a branch) and report speed."""
    from bridge.host.backends import preload, set_cpu_threads
    from bridge.host.protocol import ProtocolError
    from bridge.model.checkpoint import CheckpointError

    launched = time.perf_counter()
    spec = command_backend(backend, checkpoint)
    try:  # every checkpoint file is read now: a damaged one is named before anything starts or is written
        cpu_threads = set_cpu_threads(threads) if spec.kind == "world_model" else None
        spec = preload(spec)
    except (ValueError, OSError, CheckpointError) as e:
        raise click.ClickException(str(e)) from None
    made = _make_out(out)
    rec, recording = out.absolute() / f"{fresh_stem(out)}.wbrec", []  # reported absolute, as the host does
    try:
        with sigterm_as_ctrl_c():
            report = _play(spec, rec, seed, _text_for(spec, text, seed), launched, recording)
    except BaseException as e:
        left = _left_behind(out, made, recording)
        if isinstance(e, KeyboardInterrupt):  # Ctrl-C or kill: one line on what was kept, exit 130 as `data` does
            say_stopped(left)
        if isinstance(e, (ProtocolError, ValueError, OSError)):
            raise click.ClickException(f"the demo failed: {e}; {left}") from None
        raise
    if cpu_threads is not None:
        report["threads"] = cpu_threads  # PyTorch CPU threads the world ran on (--threads)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
