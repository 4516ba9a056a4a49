"""Render the editor in use on a world to a PNG, the picture in the README and docs/editor.md.

    QT_QPA_PLATFORM=offscreen python -m editor_gui.screenshot --out docs/editor.png [--checkpoint DIR]

Starts its own host (the embedded default world unless --checkpoint), prompts a world by text, records while playing
a latent action, fires two events, branches from an earlier frame and plays another there, then saves the window.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from bridge.options import CHECKPOINT_FOLDER, world_seed_option


def _wait(app, cond, timeout: float, what: str, refused: list[str]) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if refused:  # the host said no (e.g. a text prompt to a world without text conditioning): waiting cannot help
            raise click.ClickException(f"the host refused the {refused[0]} (waiting for {what})")
        if time.monotonic() > end:
            raise click.ClickException(f"timed out after {timeout:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.005)


@click.command()
@click.option("--out", type=click.Path(dir_okay=False), default="docs/editor.png", show_default=True,
              help="The PNG to write.")
@click.option("--checkpoint", type=CHECKPOINT_FOLDER, default=None,
              help="World run directory [default: the embedded default world].")
@click.option("--text", default="a snowy castle level at night with many coins", show_default=True,
              help="Text prompt; give --text '' for a world without text conditioning.")
@world_seed_option(5)
def main(out: str, checkpoint: str | None, text: str, seed: int) -> None:
    """Save a screenshot of the editor playing a world model."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from bridge.host.server import run_host_in_thread
    from editor_gui.app import check_qt_runtime
    from editor_gui.main_window import MainWindow, StartOptions, apply_theme
    from editor_gui.session_store import PromptSpec
    from editor_gui.viewport import badge_text

    # keys 1-8 play latent actions 0-7 (a world model's latents have no names: Right and Space, "right" and "jump",
    # would play nothing, and the status bar would say so in the picture); the default world's latent 3 runs on, its
    # latent 0 (what it plays with no key held) walks on slower; the smallest preset, micro, has 4 latent actions
    walk, turn = Qt.Key.Key_4, Qt.Key.Key_1
    check_qt_runtime()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app)
    host = run_host_in_thread(checkpoint)
    w = None
    try:
        w = MainWindow(host.address, StartOptions(backend="world_model", mode="realtime",
                                                  prompt=PromptSpec(seed=seed, text=text)))
        refused: list[str] = []
        w.worker_thread.worker.failed.connect(
            lambda command, message, _cap: refused.append(f"{command}: {message}") if command in ("start", "resimulate")
            else None)
        w.resize(1440, 900)
        w.show()
        frames = lambda: len(w.session.recorded(w.session.live))  # noqa: E731
        _wait(app, lambda: w.session is not None and w.session.live is not None, 180, "the world model's first frame",
              refused)
        w.timeline.record.click()
        w.viewport.setFocus()
        QTest.keyPress(w.viewport, walk)
        _wait(app, lambda: frames() > 30, 60, "30 recorded frames", refused)
        for name in ("night_falls", "weather_snow"):
            if name in w.events_panel.buttons and w.events_panel.buttons[name].isEnabled():
                w.events_panel.buttons[name].click()
        _wait(app, lambda: frames() > 48, 60, "48 recorded frames", refused)
        first = w.session.live
        w.timeline.select_index(w.session.recorded(first)[20].index)
        w.timeline.branch_btn.click()
        _wait(app, lambda: w.session.live != first, 30, "the branch", refused)
        w.viewport.setFocus()
        QTest.keyPress(w.viewport, turn)
        _wait(app, lambda: frames() > 60, 60, "frames on the branch", refused)
        QTest.keyRelease(w.viewport, turn)
        QTest.keyRelease(w.viewport, walk)
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            app.processEvents()
        if not w.grab().save(out):
            raise click.ClickException(f"could not write {out}")
        click.echo(f"wrote {out}: {badge_text(w.viewport.kind, w.viewport.name)}")
    finally:
        if w is not None:  # a failed run too: a window left open covers what the process shows next
            w.discard_unsaved()  # its walk is a picture, not the user's work: no autosave in ~/.worldbridge
            w.close()
        host.stop()


if __name__ == "__main__":
    main()
