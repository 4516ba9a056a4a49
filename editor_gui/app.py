"""`worldbridge play`: open the editor; with no --host it starts a host of its own and stops it on exit."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bridge.options import CHECKPOINT_FOLDER, THREADS_OPTION, command_backend, world_seed_option

if TYPE_CHECKING:  # the host's modules load only when the editor starts one
    from bridge.host.server import HostHandle


def check_qt_runtime() -> None:
    """Refuse a PySide6 whose Signal.emit() over-releases its return value (6.12.0): the editor emits for every frame
    and the interpreter aborts a few minutes in ("bool_dealloc: deallocating True or False")."""
    from PySide6 import __version__ as version
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe, before = _Probe(), sys.getrefcount(True)
    for _ in range(32):
        probe.ping.emit()
    if sys.getrefcount(True) < before - 16:
        raise click.ClickException(f"PySide6 {version} has a reference-counting bug in Signal.emit() that crashes the "
                                   "editor after a few minutes: pip install 'PySide6-Essentials>=6.5,<6.12'")


def check_display(env: dict[str, str] | None = None, platform: str = sys.platform) -> None:
    """Say what to do on a machine with no display, before Qt aborts the process with a plugin error."""
    env = os.environ if env is None else env
    if not platform.startswith("linux") or any(env.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        return
    raise click.ClickException("worldbridge play opens a window, and this machine has no display (DISPLAY and "
                               "WAYLAND_DISPLAY are unset). Headless, run `worldbridge demo` for a scripted session, "
                               "or `xvfb-run -a worldbridge play` to run the editor on a virtual display.")


XCB_RUNTIME = ("libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0")  # Qt's xcb plugin needs them


def _ldd_missing(paths: list[Path]) -> set[str]:
    import subprocess

    out = subprocess.run(["ldd", *map(str, paths)], capture_output=True, text=True, check=False).stdout
    return {line.split("=>")[0].strip() for line in out.splitlines() if "not found" in line}


# libraries ldd lists for Qt's xcb plugin that Debian packages under another name (Debian 13's "t64" packages,
# libglib2.0-0t64 and libpng16-16t64, provide the older names, so apt accepts these there too)
_DEBIAN_PACKAGES = {"libGLdispatch.so.0": "libglvnd0", "libbrotlicommon.so.1": "libbrotli1",
                    "libbrotlidec.so.1": "libbrotli1", "libc.so.6": "libc6", "libm.so.6": "libc6",
                    "libdl.so.2": "libc6", "libpthread.so.0": "libc6", "libgcc_s.so.1": "libgcc-s1",
                    "libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0", "libz.so.1": "zlib1g"}


def _debian_package(soname: str) -> str:
    """The apt package to install for a missing library: Debian's names are lower case, libEGL.so.1 -> libegl1,
    libxkbcommon-x11.so.0 -> libxkbcommon-x11-0."""
    if soname in _DEBIAN_PACKAGES:
        return _DEBIAN_PACKAGES[soname]
    name, _, version = soname.lower().partition(".so.")
    return f"{name}{'-' if name[-1].isdigit() else ''}{version}"


def check_xcb(env: dict[str, str] | None = None, platform: str = sys.platform, missing=None) -> None:
    """Name the apt packages Qt's xcb plugin lacks: Qt itself aborts with a hint that names the wrong one."""
    env = os.environ if env is None else env
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM", "xcb") != "xcb" or not env.get("DISPLAY"):
        return
    if missing is None:
        import ctypes.util
        import shutil

        import PySide6

        qt = Path(PySide6.__file__).parent / "Qt"
        plugins = [p for p in (qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6")
                   if p.is_file()]
        missing = _ldd_missing(plugins) if plugins and shutil.which("ldd") else set()
        missing |= {n for n in XCB_RUNTIME if ctypes.util.find_library(n[3:].split(".so")[0]) is None}
    if missing:
        packages = " ".join(sorted({_debian_package(n) for n in missing}))
        raise click.ClickException(f"Qt cannot open a window: its xcb plugin needs {', '.join(sorted(missing))}. "
                                   f"Install them with `sudo apt-get install -y {packages}` and run again.")


def start_own_host(backend: str | None, checkpoint: str | Path | None, threads: int | None = None) -> HostHandle:
    """A host in this process on a free loopback port (`play` without --host); any program here can reach it, so it
    records only inside the per-user recordings_dir() (the editor sends no path), not the folder it was started from."""
    from bridge.host.backends import set_cpu_threads
    from bridge.host.server import run_host_in_thread
    from editor_gui.session_store import recordings_dir

    if backend != "sandbox":
        set_cpu_threads(threads)

    spec = {"backend": "sandbox" if backend == "sandbox" else None, "checkpoint": str(checkpoint) if checkpoint else None}
    return run_host_in_thread(spec, "tcp://127.0.0.1:*", recordings_dir=recordings_dir())  # its text encoder loads when text is on its way (warm_text)


def text_warmer(host: HostHandle) -> Callable[[], Any]:
    """Loads the own host's text encoder once text is near, not at launch, where its imports cut play to a few fps."""
    from bridge.host.backends import warm_text

    return lambda: warm_text(host.host.spec)


@click.command()
@click.option("--host", "host_address", default=None, metavar="ADDRESS",
              help="Connect to a running host, e.g. tcp://127.0.0.1:5555 (default: start one inside the editor).")
@click.option("--checkpoint", type=CHECKPOINT_FOLDER, default=None,
              help="World-model run dir for the editor's own host (default: the embedded model, else the sandbox).")
@click.option("--backend", type=click.Choice(["sandbox", "world_model"]), default=None,
              help="Which backend to play; 'sandbox' is the scripted test game, not the world model.")
@click.option("--fps", type=click.FloatRange(1, 120), default=None,
              help="Target frame rate (default: the world's own rate, e.g. the sandbox game's 15).")
@click.option("--step", "step_mode", is_flag=True, help="Start paused (one frame per key press).")
@world_seed_option(None, " (default: random)")
@click.option("--text", default=None, help="Text prompt for the first world.")
@click.option("--quit-after", type=float, default=None, hidden=True, help="Close after this many seconds (smoke tests).")
@click.option("--session", "session_path", type=click.Path(path_type=Path), default=None,
              help="Open a saved session (.wbsession file or folder).")
@THREADS_OPTION
def play(host_address: str | None, checkpoint: str | None, backend: str | None, fps: float | None, step_mode: bool,
         seed: int | None, text: str | None, quit_after: float | None, session_path: Path | None,
         threads: int | None) -> None:
    """Open the editor window and play a world."""
    if checkpoint is not None:  # both backends, or a missing one, refused as serve refuses them, before any window
        command_backend(None if backend == "world_model" else backend, checkpoint)  # a world model's is one world
        backend = "world_model"
    if checkpoint is not None and host_address is not None:
        raise click.UsageError("a running host serves its own checkpoint: restart it with "
                               f"`worldbridge serve --checkpoint {checkpoint}`, or drop --host to let the editor start one")
    if session_path is not None and not session_path.exists():  # before any window, with how a session is made
        from editor_gui.session_store import autosave_dir

        raise click.BadParameter(
            f"no saved session at {session_path}: give a .wbsession file or a session folder written by the timeline's "
            f"Save… (docs/editor.md, Sessions and exports); work the editor kept unsaved is in {autosave_dir()}",
            param_hint="'--session'")
    check_display()
    check_xcb()
    from PySide6.QtWidgets import QApplication

    from editor_gui.main_window import MainWindow, StartOptions, apply_theme
    from editor_gui.session_store import PromptSpec
    from editor_gui.worker import wait_for_workers

    check_qt_runtime()
    host = None
    note = ""
    if host_address is None:
        try:
            host = start_own_host(backend, checkpoint, threads)
        except Exception as e:  # noqa: BLE001 - a model that cannot load is a user-facing message
            raise click.ClickException(f"could not start a host: {e}") from e
        host_address, note = host.address, "started by the editor"
        click.echo(f"host: {host_address} ({note})", err=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("WorldBridge editor")
    apply_theme(app)
    options = StartOptions(backend=backend, mode="step" if step_mode else "realtime", fps=fps,
                           prompt=PromptSpec(seed=seed, text=text), autostart=session_path is None)
    warm = text_warmer(host) if host is not None else None  # a host elsewhere loads its own
    window = MainWindow(host_address, options, host_note=note, warm_text=warm)
    if text or step_mode:  # the first world reads the text, or starts paused: no play to stall
        window.warm_text()
    window.show()
    if session_path is not None and (job := window.load_from(session_path)) is not None:
        # said where the command was typed too, not only for 10 s in the status bar; the window stays open with no
        # session, as after a failed Open…, and the exit status stays the editor's own (0 on a normal close)
        job.errored.connect(lambda message: click.echo(f"worldbridge play: {job.title} {message}", err=True))
    if quit_after is not None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(int(quit_after * 1000), window.close)
    try:
        code = app.exec()
    finally:
        if host is not None:
            host.stop()
    shown = window.viewport.frame
    click.echo(f"editor closed: {'no frame shown' if shown is None else f'last frame {shown.index}'} "
               f"({window.viewport.kind or 'no backend'})", err=True)
    jobs_done = all(job.wait(5000) for job in window.jobs)  # the close cancelled them: an autosave stops within a frame
    if not wait_for_workers(timeout_s=5.0) or not jobs_done:  # a worker still waits on the network (a start the host
        # never answered), or a job still runs
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # recordings were kept on close; a running QThread must not be destroyed (Qt would abort)
    sys.exit(code)
