"""The installed PySide6 must not over-release Signal.emit()'s return value (PySide6 6.12.0 does: the editor, which
emits for every frame, aborts with "bool_dealloc" a few minutes in). Run in a subprocess: the bug kills the interpreter."""

import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from PySide6.QtCore import QCoreApplication, QObject, Signal
app = QCoreApplication([])
class E(QObject):
    frame = Signal(object)
e = E()
e.frame.connect(lambda v: None)
before = sys.getrefcount(True)
for _ in range(20000):
    e.frame.emit(1)
print(sys.getrefcount(True) - before)
"""


def test_signal_emit_keeps_reference_counts_balanced():
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and abs(int(r.stdout.strip())) < 100, (
        f"this PySide6 corrupts reference counts in Signal.emit() (rc {r.returncode}: {r.stderr.strip()[-200:]}): "
        "pip install 'PySide6-Essentials>=6.5,<6.12'")


def test_the_editor_refuses_a_broken_pyside6_with_the_fix(monkeypatch):
    import click
    import pytest

    from editor_gui import app

    app.check_qt_runtime()  # the installed one is fine
    real = sys.getrefcount
    calls = iter(range(2))
    monkeypatch.setattr(sys, "getrefcount", lambda o: real(o) - 100 * next(calls, 1))  # as if 32 emits lost 100 refs
    with pytest.raises(click.ClickException, match="PySide6-Essentials>=6.5,<6.12"):
        app.check_qt_runtime()


def test_play_without_a_display_says_how_to_run_headless():
    import click
    import pytest

    from editor_gui import app

    with pytest.raises(click.ClickException, match="xvfb-run -a worldbridge play") as e:
        app.check_display({}, "linux")
    assert "worldbridge demo" in e.value.message
    for env in ({"DISPLAY": ":0"}, {"WAYLAND_DISPLAY": "wayland-0"}, {"QT_QPA_PLATFORM": "offscreen"}):
        app.check_display(env, "linux")  # a display, or a platform Qt was told to use: go ahead
    app.check_display({}, "darwin")  # macOS and Windows always have a window system
    r = subprocess.run([sys.executable, "-m", "bridge.cli", "play"], capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items()
                            if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")})
    assert r.returncode == 1 and "has no display" in r.stderr and "host:" not in r.stderr  # refused before any host


def test_play_names_the_apt_packages_qts_xcb_plugin_lacks(tmp_path):
    import click
    import pytest

    from editor_gui import app

    with pytest.raises(click.ClickException, match=r"apt-get install -y libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0"):
        app.check_xcb({"DISPLAY": ":99"}, "linux",
                      missing={"libxcb-keysyms.so.1", "libxcb-icccm.so.4", "libxkbcommon-x11.so.0"})
    for env in ({"DISPLAY": ":99", "QT_QPA_PLATFORM": "offscreen"}, {"WAYLAND_DISPLAY": "wayland-0"}):
        app.check_xcb(env, "linux", missing={"libxcb-icccm.so.4"})  # not the xcb platform: nothing to check
    app.check_xcb({"DISPLAY": ":99"}, "linux", missing=set())
    assert app._ldd_missing([Path(sys.executable)]) == set()  # ldd's "not found" lines are what is parsed
    fake = tmp_path / "ldd"
    fake.write_text("#!/bin/sh\necho '\tlibxcb-icccm.so.4 => not found'\necho '\tlibc.so.6 => /lib/libc.so.6'\n")
    fake.chmod(0o755)
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{tmp_path}:{old}"
    try:
        assert app._ldd_missing([Path(sys.executable)]) == {"libxcb-icccm.so.4"}
    finally:
        os.environ["PATH"] = old


def test_the_apt_packages_named_are_debians_for_every_library_qts_xcb_plugin_loads():
    """libEGL.so.1 became "libEGL1" and libGL.so.1 "libGL1": apt knows only lower-case names (libegl1, libgl1), and
    some libraries come in a package not named after them (libz in zlib1g). Each library ldd lists for the plugin."""
    from editor_gui import app

    debian = {"libEGL.so.1": "libegl1", "libGL.so.1": "libgl1", "libGLX.so.0": "libglx0",
              "libGLdispatch.so.0": "libglvnd0",
              "libX11.so.6": "libx11-6", "libX11-xcb.so.1": "libx11-xcb1", "libXau.so.6": "libxau6",
              "libXdmcp.so.6": "libxdmcp6", "libbrotlicommon.so.1": "libbrotli1", "libbrotlidec.so.1": "libbrotli1",
              "libbsd.so.0": "libbsd0", "libc.so.6": "libc6", "libm.so.6": "libc6", "libdl.so.2": "libc6",
              "libpthread.so.0": "libc6", "libcap.so.2": "libcap2", "libdbus-1.so.3": "libdbus-1-3",
              "libexpat.so.1": "libexpat1", "libfontconfig.so.1": "libfontconfig1", "libfreetype.so.6": "libfreetype6",
              "libgcc_s.so.1": "libgcc-s1", "libgcrypt.so.20": "libgcrypt20", "libgpg-error.so.0": "libgpg-error0",
              "libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0", "liblz4.so.1": "liblz4-1",
              "liblzma.so.5": "liblzma5", "libmd.so.0": "libmd0", "libpcre2-8.so.0": "libpcre2-8-0",
              "libpng16.so.16": "libpng16-16", "libstdc++.so.6": "libstdc++6", "libsystemd.so.0": "libsystemd0",
              "libxcb.so.1": "libxcb1", "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
              "libxcb-image.so.0": "libxcb-image0", "libxcb-keysyms.so.1": "libxcb-keysyms1",
              "libxcb-randr.so.0": "libxcb-randr0", "libxcb-render.so.0": "libxcb-render0",
              "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-shape.so.0": "libxcb-shape0",
              "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1", "libxcb-util.so.1": "libxcb-util1",
              "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xkb.so.1": "libxcb-xkb1",
              "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
              "libz.so.1": "zlib1g", "libzstd.so.1": "libzstd1"}
    assert {soname: app._debian_package(soname) for soname in debian} == debian


def test_the_editors_own_host_records_only_inside_its_per_user_recordings_folder(tmp_path, monkeypatch):
    """It recorded into ./recordings: `/` when the editor was started from Finder or the Dock, C:\\Windows\\System32
    from a Windows shortcut."""
    import pytest

    from bridge.client import ProtocolError, WorldClient
    from editor_gui import app

    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # Path.home(): the host's folder is ~/.worldbridge/recordings
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # not where it was started from
    outside = tmp_path / "elsewhere" / "a.wbrec"
    with app.start_own_host("sandbox", None) as h, WorldClient(h.address) as c:
        c.start(mode="step")
        with pytest.raises(ProtocolError) as e:  # another program on this machine cannot make it write anywhere
            c.record_start(str(outside))
        assert e.value.code == "bad_argument" and "--recordings" in e.value.message
        assert not outside.parent.exists()
        path = Path(c.record_start()["path"])  # what the editor sends: no path
        c.record_stop()
    assert path.parent.resolve() == (tmp_path / "home" / ".worldbridge" / "recordings").resolve() and path.is_file()
    assert not (tmp_path / "recordings").exists()


def test_the_editors_own_host_leaves_the_text_encoder_to_the_window(monkeypatch):
    """Loading it at launch (imports that hold the GIL) cut the default world's first seconds to a few frames/s."""
    from bridge.host import backends
    from editor_gui import app

    warmed = []
    monkeypatch.setattr(backends, "warm_text", warmed.append)
    with app.start_own_host("sandbox", None) as h:
        assert warmed == []  # nothing loads at launch
        app.text_warmer(h)()
        assert warmed == [h.host.spec]  # the window calls this when the user heads for text


def test_play_refuses_a_seed_the_host_would_refuse():
    """A negative seed reached the host and was refused there; play takes the protocol's range as demo does."""
    import click
    import pytest

    from bridge.values import SEED_MAX
    from editor_gui.app import play

    for seed in ("-1", str(SEED_MAX + 1)):  # parsed only: no window opens
        with pytest.raises(click.BadParameter, match=f"0<=x<={SEED_MAX}"):
            play.make_context("play", ["--seed", seed])
    assert play.make_context("play", ["--seed", str(SEED_MAX)]).params["seed"] == SEED_MAX
