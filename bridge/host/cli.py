"""`worldbridge serve`, `worldbridge keys` and `worldbridge record {info,export,replay}`."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import click

from bridge.host.protocol import DEFAULT_ADDRESS, Limits  # the serve options' defaults
from bridge.options import CHECKPOINT_FOLDER, OUT_TEXT, THREADS_OPTION, Folder, command_backend, one_backend
from bridge.values import first_line, is_int, plural


ENDPOINT = re.compile(r"tcp://(\[[0-9A-Fa-f:.]+\]|[^:/\s\[\]]+):(\d{1,5}|\*)|(ipc|inproc)://\S+")


def _check_endpoint(bind: str) -> None:
    """Refuse a --bind ZeroMQ cannot bind before judging whether it reaches beyond this machine."""
    m = ENDPOINT.fullmatch(bind)
    if m is None or (m.group(2) not in (None, "*") and not 0 < int(m.group(2)) < 65536):
        raise click.ClickException(f"--bind {bind} is not a valid endpoint: use tcp://HOST:PORT (e.g. "
                                   "tcp://127.0.0.1:5555, tcp://0.0.0.0:5555 with --curve-secret) or ipc://PATH")
    from bridge.host.server import ipc_refused

    if (why := ipc_refused(bind)) is not None:
        raise click.ClickException(why)


def _check_curve_secret(path: Path) -> None:
    """Refuse a --curve-secret that holds no CURVE secret key before the checkpoint loads, naming the file to pass."""
    from zmq.auth import load_certificate

    try:
        secret = load_certificate(str(path))[1]
    except OSError as e:
        raise click.ClickException(f"cannot read --curve-secret {path} ({e.strerror or e}): check that file") from None
    except ValueError:  # not a ZPL certificate at all
        secret = None
    if secret is None:
        raise click.ClickException(f"--curve-secret {path} holds no CURVE secret key: pass the host.key_secret file "
                                   "that `worldbridge keys --out DIR` writes")


@click.command()
@click.option("--checkpoint", type=CHECKPOINT_FOLDER, default=None,
              help="World-model checkpoint (run dir) to serve [default: the embedded default world].")
@click.option("--backend", type=click.Choice(["sandbox"]), default=None,
              help="Serve the sandbox game (a test backend) instead of a world model.")
@click.option("--bind", default=DEFAULT_ADDRESS, show_default=True,
              help="ZeroMQ endpoint. Anything but loopback needs --curve-secret.")
@click.option("--curve-secret", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The host's CURVE secret key file (host.key_secret from `worldbridge keys`).")
@click.option("--heartbeat", is_flag=True, help="Send ZMTP PINGs and drop clients that stop answering.")
@click.option("--recordings", type=Folder(OUT_TEXT, path_type=Path), default=Path("recordings"),
              show_default=True, help="The folder every recording goes in; a record_start path is relative to it.")
@click.option("--record-anywhere", is_flag=True,
              help="Let clients on this machine record to any path the host's user can write (loopback binds only).")
@click.option("--max-sessions", type=click.IntRange(1, 4096), default=Limits.max_sessions, show_default=True,
              help="Most sessions at once; a client's start beyond them is answered busy (try again later).")
@click.option("--idle-timeout", type=click.FloatRange(1.0), default=Limits.idle_timeout_s, show_default=True,
              help="Seconds without messages before a session is closed.")
@click.option("--max-message-bytes", type=click.IntRange(1 << 20, 1 << 30), default=Limits.max_message_bytes,
              show_default=True,
              help="Largest message a client may send (its images, sketches and layers); bigger ones are answered "
                   "too_large. Clients learn it at their handshake.")
@click.option("-v", "--verbose", is_flag=True, help="Log every session start/stop.")
@THREADS_OPTION
def serve(checkpoint: str | None, backend: str | None, bind: str, curve_secret: Path | None, heartbeat: bool,
          recordings: Path, record_anywhere: bool, max_sessions: int, idle_timeout: float, max_message_bytes: int,
          verbose: bool, threads: int | None) -> None:
    """Run the world host until Ctrl+C, Ctrl+Break (Windows) or SIGTERM."""
    from bridge.backend import backend_label
    from bridge.host.backends import announce, preload, set_cpu_threads, warm_text
    from bridge.host.server import Host
    from bridge.model.checkpoint import CheckpointError

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(message)s")
    _check_endpoint(bind)
    if curve_secret is not None:
        _check_curve_secret(curve_secret)
    spec = command_backend(backend, checkpoint)
    try:  # the checkpoint is loaded now: a damaged one is refused here, not at a client's first start
        cpu_threads = set_cpu_threads(threads) if spec.kind == "world_model" else None
        spec = preload(spec)
        limits = Limits(max_sessions=max_sessions, idle_timeout_s=idle_timeout, max_message_bytes=max_message_bytes)
        host = Host(spec, bind=bind, limits=limits, curve_secret=curve_secret, heartbeat=heartbeat,
                    recordings_dir=recordings, record_anywhere=record_anywhere)
    except (ValueError, OSError, CheckpointError) as e:
        raise click.ClickException(str(e)) from None
    warm_text(spec)  # bound: clients are answered while the text encoder loads
    announce(spec)
    what = backend_label(spec.kind, spec.create().name) + (f" from {spec.checkpoint}" if spec.checkpoint else "")
    if cpu_threads is not None:
        what += f" on {plural(cpu_threads, 'CPU thread')} (--threads)"
    security = "CURVE" if curve_secret else "NULL (loopback only)"
    click.echo(f"worldbridge host on {host.address} serving {what}; security {security}. Ctrl+C to stop.", err=True)
    for name in ("SIGTERM", "SIGBREAK"):  # SIGTERM never fires on Windows: Ctrl+Break (SIGBREAK, Windows only) does
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: host.stop())
    try:
        host.run()
    except KeyboardInterrupt:
        pass
    click.echo("host stopped", err=True)


@click.command()
@click.option("--out", type=Folder(OUT_TEXT, path_type=Path), required=True,
              help="Directory for host.key/host.key_secret and client.key/client.key_secret.")
def keys(out: Path) -> None:
    """Generate CURVE key pairs (ZPL certificate files) for binding beyond loopback."""
    from zmq.auth import create_certificates

    existing = [p for p in ("host.key_secret", "client.key_secret") if (out / p).exists()]
    if existing:
        raise click.ClickException(f"{out} already holds {existing}: choose another --out (keys are never "
                                   "overwritten)")
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in ("host", "client"):
            mask = os.umask(0o077)  # the secret is never readable by others, not even between its write and a chmod
            try:
                public, secret = create_certificates(str(out), name)
            finally:
                os.umask(mask)
            Path(public).chmod(0o666 & ~mask)  # the public key is for sharing: the user's usual permissions
    except OSError as e:
        if made:  # no empty or half-filled key folder is left behind
            shutil.rmtree(out, ignore_errors=True)
        raise click.ClickException(f"cannot write keys to --out {out} ({e.strerror or e}): give a folder you can "
                                   "write to") from None
    host_public = (out / "host.key").read_text(encoding="utf-8").split('public-key = "')[1].split('"')[0]
    from bridge.values import shell_quote

    click.echo(f"wrote {out / 'host.key'}(_secret) and {out / 'client.key'}(_secret)\n"
               f"serve:   worldbridge serve --bind tcp://0.0.0.0:5555 --curve-secret "
               f"{shell_quote(str(out / 'host.key_secret'))}\n"  # cmd.exe has no '...'
               f"clients: set the server key to {host_public}")
    if sys.platform == "win32":
        click.echo(f"the secret key is protected only by the permissions of its folder (umask has no effect on "
                   f"Windows): keep {out} under your user profile, which only you can read")


@click.group()
def record() -> None:
    """Inspect, export or replay session recordings (.wbrec)."""


@record.command("info")
@click.argument("rec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def record_info(rec: Path) -> None:
    """Print a recording's summary as JSON (a torn or corrupt file also gets a warning on stderr)."""
    from bridge.host.recording import RecordingReader, warn_damage

    try:
        reader = RecordingReader(rec)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    warn_damage(reader)
    click.echo(json.dumps(reader.info(), indent=2, default=repr))  # a faulty writer's session may hold bytes


@record.command("export")
@click.argument("rec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mp4", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="MP4 file to write the frames to, at --fps.")
@click.option("--gif", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="GIF file to write the frames to, at --fps.")
@click.option("--frames", "frames_dir", type=Folder(OUT_TEXT, path_type=Path), default=None,
              help="Directory for one PNG per frame.")
@click.option("--actions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="NDJSON file: one line per frame with its action, epoch, index and events.")
@click.option("--fps", type=click.FloatRange(1, 120), default=None, help="Video fps (default: the session's).")
def record_export(rec: Path, mp4: Path | None, gif: Path | None, frames_dir: Path | None, actions: Path | None,
                  fps: float | None) -> None:
    """Export a recording as MP4 / GIF / PNG frames / an action log."""
    from bridge.host.recording import export_recording

    if not any((mp4, gif, frames_dir, actions)):
        raise click.UsageError("nothing to export: pass --mp4, --gif, --frames and/or --actions")
    try:
        out = export_recording(rec, mp4=mp4, gif=gif, frames_dir=frames_dir, actions=actions, fps=fps)
    except KeyboardInterrupt:
        click.echo("export interrupted: nothing was written", err=True)
        sys.exit(130)
    except (ValueError, OSError, RuntimeError) as e:  # RuntimeError: ffmpeg refusing the frames
        raise click.ClickException(f"{first_line(e)}; nothing was written") from None
    click.echo(json.dumps({k: str(v) for k, v in out.items()}, indent=2))


def _refuse_another_backend(rec: Path, header: dict, kind: str) -> None:
    """Refuse, before the backend loads, a replay on a kind of backend other than the one the header names: its frames
    can never match the recorded ones, so it would only run slowly towards a certain `reproduced: false`."""
    s = header.get("session") or {}
    made = s.get("backend_kind")
    if not isinstance(made, str) or made not in ("sandbox", "world_model") or made == kind:
        return  # the same kind, or one the header does not say: the replay's comparison decides
    from bridge.backend import backend_label

    name = s.get("backend_name") if isinstance(s.get("backend_name"), str) else made
    given = ("--backend sandbox replays on the sandbox game" if kind == "sandbox"
             else "--checkpoint replays on a world model")
    if made == "sandbox":
        fix = "replay with --backend sandbox (or no option)"
    else:
        ckpt = header.get("checkpoint")
        fix = "replay with --checkpoint PATH, the world that made it" + (f" ({ckpt})" if isinstance(ckpt, str) else "")
    raise click.ClickException(f"{rec} was recorded on the {backend_label(made, name)}; {given}, whose frames can "
                               f"never match it: {fix}")


@record.command("replay")
@click.argument("rec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--checkpoint", type=CHECKPOINT_FOLDER, default=None,
              help="World model to replay against (default: the one recorded in the file); a sandbox recording "
                   "is refused.")
@click.option("--backend", type=click.Choice(["sandbox"]), default=None,
              help="Replay on the sandbox game (a sandbox recording's default); a world model's recording is refused.")
def record_replay(rec: Path, checkpoint: str | None, backend: str | None) -> None:
    """Re-run the recorded inputs against the backend and report (JSON) whether frames reproduce exactly."""
    from bridge.host.backends import BackendSpec
    from bridge.host.recording import RecordingReader
    from bridge.host.replay import replay_recording
    from bridge.model.checkpoint import CheckpointError

    one_backend(backend, checkpoint)
    try:
        reader = RecordingReader(rec)
        reader.need_header("replayed")  # before the header's missing backend is taken for one not named
        header = reader.header
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    s = header.get("session") or {}  # a header from a faulty writer may lack it: then the user names the backend
    if backend is None and checkpoint is None:
        if s.get("backend_kind") == "sandbox":
            backend = "sandbox"
        elif header.get("checkpoint") and Path(header["checkpoint"]).is_file():  # as --checkpoint refuses a file
            raise click.ClickException(f"the recording's checkpoint {header['checkpoint']} is a file: "
                                       f"pass --checkpoint PATH, {CHECKPOINT_FOLDER.what}")
        elif header.get("checkpoint") and Path(header["checkpoint"]).exists():
            checkpoint = header["checkpoint"]
        else:
            made = f"was made with {s['backend_name']!r}" if s.get("backend_name") else "names no backend"
            if header.get("checkpoint"):  # recorded, but gone from where it was
                made += f", whose checkpoint {header['checkpoint']} is not there"
            # a world model's recording refuses the sandbox below, so only a header naming no kind may suggest it
            sandbox = "" if s.get("backend_kind") == "world_model" else " (or --backend sandbox)"
            raise click.ClickException(f"the recording {made}; pass --checkpoint PATH{sandbox} to replay it")
    _refuse_another_backend(rec, header, "sandbox" if backend == "sandbox" else "world_model")
    if backend == "sandbox":
        if not is_int(s.get("height")):
            raise click.ClickException(f"the recording's header gives no frame size ({rec}): it cannot be replayed on "
                                       "the sandbox; `worldbridge record info` shows what it holds")
        size = s["height"]
        spec = BackendSpec("sandbox", sandbox_size=size)
    else:
        spec = BackendSpec("world_model", checkpoint=str(checkpoint))
    try:
        report = replay_recording(rec, spec.create)
    except (ValueError, OSError, CheckpointError) as e:  # a wrong --checkpoint, a recording it cannot replay
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps(report, indent=2))
    if not report["reproduced"]:
        sys.exit(1)
