"""The editor window driven through Qt against a real host serving the sandbox game (offscreen)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QDockWidget, QMainWindow, QScrollArea

from editor_gui import main_window
from editor_gui.keymap import KeyMap
from editor_gui.main_window import MainWindow, StartOptions, apply_theme
from editor_gui.session_store import FrameRecord, PromptSpec, Session

torch.set_num_threads(1)
pytest.importorskip("pytestqt")

RIGHT, LEFT, NOOP = 2, 1, 0  # sandbox action ids (bridge.worlds.sandbox.ACTIONS)
DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    from bridge.host.server import run_host_in_thread

    h = run_host_in_thread("sandbox", "tcp://127.0.0.1:*", recordings_dir=tmp_path_factory.mktemp("recordings"))
    yield h
    h.stop()


def open_window(qtbot, address: str, **kw) -> MainWindow:
    opts = dict(backend="sandbox", mode="realtime", fps=30.0, prompt=PromptSpec(seed=3))
    opts.update(kw)
    w = MainWindow(address, StartOptions(**opts))
    add_window(qtbot, w)
    w.show()
    qtbot.waitExposed(w)
    if opts.get("autostart", True):
        qtbot.waitUntil(lambda: w.info is not None and w.viewport.frame is not None, timeout=10000)
    else:
        qtbot.waitUntil(lambda: w.welcome is not None, timeout=10000)
    return w


def closed(qtbot, w: MainWindow) -> bool:
    """Close the window as the user does and wait for the unsaved work to be kept: True when the window closed."""
    w.close()  # a close that keeps unsaved work returns at once and closes again when it is kept
    qtbot.waitUntil(lambda: w._held is None, timeout=20000)
    return not w.isVisible()


def add_window(qtbot, w: MainWindow) -> MainWindow:
    """qtbot closes the window after the test as the user does, waiting for its keep: no thread outlives it."""
    qtbot.addWidget(w, before_close_func=lambda w: closed(qtbot, w))
    return w


def live_frames(w: MainWindow):
    return w.session.path(w.session.live)


def focus_viewport(qtbot, w: MainWindow) -> None:
    w.activateWindow()
    qtbot.mouseClick(w.viewport, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(w.viewport.hasFocus, timeout=20000)


def step_keys(qtbot, w: MainWindow, key, n: int) -> None:
    """Step mode: each key press makes exactly one frame; wait for each."""
    for _ in range(n):
        last = live_frames(w)[-1].index
        qtbot.keyClick(w.viewport, key)
        qtbot.waitUntil(lambda: live_frames(w)[-1].index == last + 1, timeout=20000)


def test_play_with_keys_and_focus(qtbot, host):
    w = open_window(qtbot, host.address)
    assert w.viewport.kind == "sandbox" and "SANDBOX GAME (test backend, not the world model): sandbox game" in w.status_backend.text()
    focus_viewport(qtbot, w)
    before = w.viewport.frame.image.copy()
    qtbot.keyPress(w.viewport, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: live_frames(w)[-1].action == RIGHT, timeout=20000)
    qtbot.waitUntil(lambda: not np.array_equal(w.viewport.frame.image, before), timeout=20000)
    qtbot.keyPress(w.viewport, Qt.Key.Key_Space)  # held with right: the sandbox's combined action
    qtbot.waitUntil(lambda: live_frames(w)[-1].action == 5, timeout=20000)  # right_jump
    qtbot.keyRelease(w.viewport, Qt.Key.Key_Space)
    qtbot.keyRelease(w.viewport, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: live_frames(w)[-1].action == NOOP, timeout=20000)
    # the latency figures come from real frames: protocol part and the editor's own part
    qtbot.waitUntil(lambda: len(w.viewport.stats.editor_ms) >= 2, timeout=20000)
    assert all(0 <= v < 100 for v in w.viewport.stats.editor_ms)
    assert w.viewport.stats.fps_shown() > 10
    # a text field keeps its keys: typing "dd" there neither moves the player nor loses letters
    w.events_panel.text.setFocus()
    qtbot.waitUntil(w.events_panel.text.hasFocus, timeout=20000)
    sent = w.seq
    qtbot.keyClicks(w.events_panel.text, "dd")
    assert w.events_panel.text.text() == "dd" and w.seq == sent and not w.held
    # focus leaving the viewport while a key is held releases it (no endless walking)
    focus_viewport(qtbot, w)
    qtbot.keyPress(w.viewport, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: live_frames(w)[-1].action == LEFT, timeout=20000)
    w.events_panel.text.setFocus()
    qtbot.waitUntil(lambda: live_frames(w)[-1].action == NOOP, timeout=20000)


def test_the_window_fits_a_1024x640_screen_showing_every_tab_and_preview_whole(qtbot, host):
    """A small laptop screen: the window must get down to 1024x640 (docks scroll rather than hold it taller), every
    World tab's name must show (not "S" behind scroll arrows), and the latent-action cells must not be cut at the
    right (their Play buttons hidden behind a sideways scroll bar)."""
    w = open_window(qtbot, host.address)
    for size in ((1024, 640), (1280, 800)):
        w.resize(*size)
        qtbot.waitUntil(lambda: (w.width(), w.height()) == size, timeout=5000)
        bar = w.tabs.tabBar()
        for i in range(bar.count()):
            assert bar.rect().contains(bar.tabRect(i)), f"the {bar.tabText(i)} tab is cut at {size}"
        assert w.viewport.width() >= 320 and w.viewport.height() >= 240
        w.tabs.setCurrentWidget(w.explorer)
        qtbot.waitUntil(lambda: bool(w.explorer.cells) and w.explorer.cells[-1].isVisible(), timeout=5000)
        cells = w.explorer.findChild(QScrollArea)
        assert not cells.horizontalScrollBar().isVisible(), f"latent-action cells cut at {size}"
        dock = w.findChild(QDockWidget, "dock_World")  # the cells' width reaches the window a moment later
        qtbot.waitUntil(lambda: dock.minimumSizeHint().width() >= w.explorer.minimumSizeHint().width(), timeout=5000)
        hint = w.minimumSizeHint()  # with the session's cells laid out (a long action name must not widen it)
        assert hint.width() <= 1024 and hint.height() <= 640, hint
        w.tabs.setCurrentWidget(w.events_panel)


def test_the_whole_prompt_panel_shows_at_the_default_window_size(qtbot, host):
    """At 1440x900 the Prompt panel scrolled and its New world button was cut off at the bottom (docs/editor.png)."""
    w = open_window(qtbot, host.address)
    assert (w.width(), w.height()) == (1440, 900)
    scroll = w.findChild(QDockWidget, "dock_Prompt").widget()
    img = np.random.default_rng(0).integers(0, 256, (300, 200, 3), np.uint8)  # an image prompt's preview too
    w.prompt_panel._set_image(QImage(img.data, 200, 300, 600, QImage.Format.Format_RGB888).copy())
    panel = scroll.widget()  # the scroll area has laid the panel out around the preview: as tall as it needs, or taller
    qtbot.waitUntil(lambda: panel.height() >= panel.minimumSizeHint().height(), timeout=5000)
    assert scroll.verticalScrollBar().maximum() == 0, panel.minimumSizeHint()
    go = w.prompt_panel.go
    assert go.mapTo(scroll.viewport(), go.rect().bottomRight()).y() < scroll.viewport().height()


def test_events_fire_and_mark_the_timeline(qtbot, host):
    w = open_window(qtbot, host.address)
    assert set(w.events_panel.buttons) >= {"weather_snow", "night_falls"}
    w.timeline.record.click()
    qtbot.mouseClick(w.events_panel.buttons["weather_snow"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(r.events for r in w.session.recorded(w.session.live)), timeout=20000)
    rec = next(r for r in w.session.recorded(w.session.live) if r.events)
    assert rec.events == ["it starts to snow"] and rec.fired == [{"event_type": "weather_snow", "text": None}]
    w.events_panel.text.setText("night falls")
    qtbot.keyClick(w.events_panel.text, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: any("night falls" in r.events for r in w.session.recorded(w.session.live)), timeout=20000)
    assert w.events_panel.log.count() == 2
    qtbot.waitUntil(lambda: any(r.events for r in w.timeline.strip.records), timeout=20000)  # marked on the strip
    w.events_panel.text.setText("xyzzy plugh")  # nothing the sandbox can match: a clear refusal, no crash
    qtbot.keyClick(w.events_panel.text, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "refused" in w.events_panel.status.text(), timeout=20000)
    assert not w.pending_events


def test_record_branch_export_save_load(qtbot, host, tmp_path):
    w = open_window(qtbot, host.address, mode="step", autostart=False)
    w.timeline.record.click()
    w.new_world(PromptSpec(seed=11, text="a level with coins"))
    qtbot.waitUntil(lambda: w.session is not None and w.session.live is not None and len(live_frames(w)) == 1, timeout=20000)
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_Right, 49)
    w.timeline.record.click()
    root = w.session.live
    recorded = w.session.recorded(root)
    assert [r.index for r in recorded] == list(range(50))
    assert {r.action for r in recorded[1:]} == {RIGHT}

    # branch at frame 20: the host continues from there in a new branch, the old one is kept
    w.timeline.select_index(20)
    assert w.viewing is not None and w.viewing.index == 20
    qtbot.mouseClick(w.timeline.branch_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.session.live != root, timeout=20000)
    child = w.session.branches[w.session.live]
    assert child.parent == root and child.parent_frame == 20 and w.viewing is None
    w.timeline.record.click()
    step_keys(qtbot, w, Qt.Key.Key_Left, 5)
    w.timeline.record.click()
    path = w.session.path(child.id)
    assert [r.index for r in path] == list(range(26))
    assert [r.action for r in path[21:]] == [LEFT] * 5
    assert all(path[i] is recorded[i] for i in range(21))  # shared history, stored once
    assert len(w.session.recorded(root)) == 50  # the old branch is intact
    # the world really continued from frame 20: the same move from there matches the host's own replay
    assert not np.array_equal(path[21].image, recorded[21].image)

    # export the original branch as MP4 (and the others formats) and read them back
    w.timeline.show_branch(root)
    with qtbot.waitSignal(w.export_to("mp4", tmp_path / "root.mp4").succeeded, timeout=30000):
        pass
    reader = iio2.get_reader(tmp_path / "root.mp4")
    assert reader.count_frames() == 50
    reader.close()
    w.timeline.show_branch(child.id)
    with qtbot.waitSignal(w.export_to("gif", tmp_path / "child.gif").succeeded, timeout=30000):
        pass
    assert iio.imread(tmp_path / "child.gif", index=None).shape[0] == 26
    with qtbot.waitSignal(w.export_to("actions", tmp_path / "child.json").succeeded, timeout=10000):
        pass
    assert '"action_name": "left"' in (tmp_path / "child.json").read_text()
    assert json.loads((tmp_path / "child.json").read_text())["world"] == \
        {"backend_kind": "sandbox", "backend_name": w.info["backend_name"], "seed": 11, "text": "a level with coins"}

    # save, then reload into the same window: same tree, frames, actions, names
    w.session.latent_names = {RIGHT: "walk right"}
    with qtbot.waitSignal(w.save_to(tmp_path / "s.wbsession").succeeded, timeout=30000):
        pass
    before = w.session
    with qtbot.waitSignal(w.load_from(tmp_path / "s.wbsession").succeeded, timeout=30000):
        pass
    after = w.session
    assert after is not before and after.live is None and after.latent_names == {RIGHT: "walk right"}
    assert {b.id: (b.parent, b.parent_frame) for b in after.branches.values()} == \
        {b.id: (b.parent, b.parent_frame) for b in before.branches.values()}
    for bid in before.branches:
        a, b = before.path(bid), after.path(bid)
        assert [(r.index, r.action, r.events) for r in a] == [(r.index, r.action, r.events) for r in b]
        assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b) if x.image is not None)
    assert after.branches[root].prompt.seed == 11 and after.branches[root].prompt.text == "a level with coins"
    assert Session.load(tmp_path / "s.wbsession").fps == before.fps

    # continue the re-opened session from frame 30 of the original branch: rebuilt on the host, deterministically
    w.timeline.show_branch(root)
    w.timeline.select_index(30)
    qtbot.mouseClick(w.timeline.branch_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.busy is None and w.session.live is not None, timeout=20000)
    qtbot.waitUntil(lambda: w.busy is None, timeout=20000)
    fork = w.session.branches[w.session.live]
    assert fork.parent == root and fork.parent_frame == 30 and w.resim_mismatches == 0
    assert np.array_equal(w.viewport.frame.image, recorded[30].image)  # the host stands exactly at frame 30 again
    step_keys(qtbot, w, Qt.Key.Key_Right, 1)
    assert np.array_equal(live_frames(w)[-1].image if live_frames(w)[-1].image is not None else w.viewport.frame.image,
                          recorded[31].image)  # same action from the same state: the same frame


def test_latent_explorer_previews_and_names(qtbot, host):
    w = open_window(qtbot, host.address, mode="step")
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_Right, 3)
    start = live_frames(w)[-1].index
    n = w.info["num_latent_actions"]
    assert len(w.explorer.cells) == n
    w.explorer.steps.setValue(6)
    qtbot.mouseClick(w.explorer.run_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.busy is None, timeout=20000)
    assert all(len(c.frames) == 6 for c in w.explorer.cells)
    left = w.explorer.cells[LEFT].frames[-1].toImage()
    right = w.explorer.cells[RIGHT].frames[-1].toImage()
    assert left != right  # different latent actions lead to different places
    assert live_frames(w)[-1].index == start  # back where the user was, timeline untouched
    step_keys(qtbot, w, Qt.Key.Key_Right, 1)
    assert live_frames(w)[-1].index == start + 1
    # name action 1 and bind a key to the name: the key map plays it
    cell = w.explorer.cells[LEFT]
    cell.name.setText("go west")
    cell.name.editingFinished.emit()
    assert w.session.latent_names == {LEFT: "go west"} and w.session.action_map() == {"go west": LEFT}
    w.set_keymap(KeyMap(bindings={"G": "go west"}, idle="noop"))
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_G, 1)
    assert live_frames(w)[-1].action == LEFT
    # a new world carries the names to the host as the session's action_map
    w.new_world(PromptSpec(seed=4))
    qtbot.waitUntil(lambda: len(w.session.branches) == 2 and len(live_frames(w)) == 1, timeout=20000)
    assert w.statusBar().currentMessage() == "" or "failed" not in w.statusBar().currentMessage()


def test_pause_step_resume_and_settings(qtbot, host):
    w = open_window(qtbot, host.address)
    assert not w.settings_panel.steps.isEnabled() and "ignores" in w.settings_panel.note.text()
    w.pause_action.trigger()
    qtbot.waitUntil(lambda: w.settings_panel.mode.currentText() == "step", timeout=20000)
    qtbot.wait(200)
    last = live_frames(w)[-1].index
    qtbot.wait(300)
    assert live_frames(w)[-1].index == last  # paused: no frames
    w.step_action.trigger()
    qtbot.waitUntil(lambda: live_frames(w)[-1].index == last + 1, timeout=20000)
    w.pause_action.trigger()  # resume
    qtbot.waitUntil(lambda: live_frames(w)[-1].index > last + 5, timeout=20000)
    w.settings_panel.fps.setValue(12.0)
    qtbot.waitUntil(lambda: w.settings_panel._pending == {} and w.mode == "realtime", timeout=20000)
    qtbot.waitUntil(lambda: 9 < w.viewport.stats.fps_received() < 15, timeout=8000)


def test_prompts_sketch_and_image_reach_the_host(qtbot, host, tmp_path):
    w = open_window(qtbot, host.address, mode="step", autostart=False)
    w.prompt_panel.seed.setValue(3)
    w.prompt_panel.go.click()  # no sketch yet: the seed's own level
    qtbot.waitUntil(lambda: w.session is not None and w.session.live is not None and len(live_frames(w)) == 1, timeout=20000)
    plain = w.viewport.frame.image.copy()
    canvas = w.prompt_panel.canvas
    canvas.fill_rect((9, 6), (9, 12), "platform")
    canvas.paint_cells(8, 9, "coin")
    png = canvas.to_png()
    img = iio.imread(png)
    assert img.shape == (64, canvas.cells.shape[1] * 4, 3)
    assert tuple(img[9 * 4, 6 * 4]) == canvas.palette_colors["platform"]
    assert w.prompt_panel.use_sketch.isChecked()
    w.prompt_panel.go.click()
    qtbot.waitUntil(lambda: len(w.session.branches) == 2 and len(live_frames(w)) == 1, timeout=20000)
    sketched = w.viewport.frame.image.copy()
    assert not np.array_equal(sketched, plain)  # the sketch shaped the level
    photo = np.zeros((48, 48, 3), np.uint8)
    photo[:24] = (90, 140, 220)
    photo[24:] = (60, 160, 60)
    iio.imwrite(tmp_path / "prompt.png", photo)
    w.prompt_panel.use_sketch.setChecked(False)
    w.prompt_panel.load_image_file(tmp_path / "prompt.png")
    assert w.prompt_panel.image_png is not None
    # the sandbox's session.capabilities have no image_prompt: the box is greyed out, says why, and is not sent
    assert not w.prompt_panel.img_box.isEnabled() and "sandbox" in w.prompt_panel.img_box.toolTip()
    assert w.prompt_panel.prompt().image_png is None and w.prompt_panel.text.isEnabled()
    w.new_world(PromptSpec(seed=3, image_png=w.prompt_panel.image_png))  # asked anyway: the editor leaves it out
    qtbot.waitUntil(lambda: len(w.session.branches) == 3 and len(live_frames(w)) == 1, timeout=20000)
    assert "the sandbox game takes no image prompts: started from the seed only" in w.statusBar().currentMessage()
    assert w.session.branches[w.session.live].prompt.image_png is None and np.array_equal(w.viewport.frame.image, plain)
    w.prompt_panel.load_image_file(tmp_path / "missing.png")  # a clear message, the old image kept
    assert "could not read" in w.statusBar().currentMessage()


def test_first_world_on_a_backend_not_played_yet_leaves_out_the_prompt_it_refuses(qtbot, host, tmp_path):
    """The welcome lists backends, not what they take: an image left in the box reaches the sandbox once, is refused,
    and the world starts from the rest, saying so."""
    w = open_window(qtbot, host.address, mode="step", autostart=False)
    iio.imwrite(tmp_path / "prompt.png", np.full((48, 48, 3), 90, np.uint8))
    w.prompt_panel.load_image_file(tmp_path / "prompt.png")
    assert w.prompt_panel.img_box.isEnabled()  # the sandbox's capabilities are not known yet
    w.prompt_panel.text.setPlainText("coins")
    w.prompt_panel.go.click()
    w.settings_panel.backend.addItem("world_model")  # the user picks another backend while the start is on its way:
    w.settings_panel.backend.setCurrentText("world_model")  # the retry still starts the one New world asked for
    qtbot.waitUntil(lambda: w.session is not None and w.session.live is not None and len(live_frames(w)) == 1,
                    timeout=5000)
    assert w.session.backend_kind == "sandbox"
    w.settings_panel.backend.setCurrentText("sandbox")  # the prompt panel follows the backend of the next world
    assert "the sandbox game takes no image prompts: started from the seed and text only" in \
        w.statusBar().currentMessage()
    root = w.session.branches[w.session.live].prompt
    assert root.image_png is None and root.text == "coins" and not w.prompt_panel.img_box.isEnabled()
    assert w.prompt_panel.image_png is not None  # the user's image stays in the box


def test_the_editor_learns_a_refused_prompt_kind_from_the_errors_capability_not_its_wording(qtbot, host, tmp_path,
                                                                                            monkeypatch):
    """A refusal reworded (or translated) by the host still greys out the kind its `capability` names, and the start
    goes again without it."""
    from bridge.client import ProtocolError, WorldClient

    real = WorldClient.start

    def reworded(self, **kw):
        try:
            return real(self, **kw)
        except ProtocolError as e:
            raise ProtocolError(e.code, "pas d'images ici", e.fatal, e.capability) from None

    monkeypatch.setattr(WorldClient, "start", reworded)
    w = open_window(qtbot, host.address, mode="step", autostart=False)
    iio.imwrite(tmp_path / "prompt.png", np.full((48, 48, 3), 90, np.uint8))
    w.prompt_panel.load_image_file(tmp_path / "prompt.png")
    w.prompt_panel.text.setPlainText("coins")
    w.prompt_panel.go.click()
    qtbot.waitUntil(lambda: w.session is not None and w.session.live is not None and len(live_frames(w)) == 1,
                    timeout=5000)
    assert "takes no image prompts: started from the seed and text only" in w.statusBar().currentMessage()
    assert w.refused_caps == {"sandbox": {"image_prompt"}} and not w.prompt_panel.img_box.isEnabled()


def test_an_old_session_whose_sandbox_world_read_an_image_rebuilds_the_same_frames(qtbot, host, tmp_path):
    """Sessions saved before hosts refused prompt kinds a backend lacks store the image the sandbox then read as a
    sketch: a rebuild, in a window that has not played the sandbox yet, makes the recorded frames again."""
    w = open_window(qtbot, host.address, mode="step", autostart=False)
    w.prompt_panel.canvas.fill_rect((9, 6), (9, 12), "platform")
    w.timeline.record.setChecked(True)
    w.new_world(PromptSpec(seed=3, sketch_png=w.prompt_panel.canvas.to_png()))
    qtbot.waitUntil(lambda: w.session is not None and w.session.live is not None and len(live_frames(w)) == 1,
                    timeout=5000)
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_Right, 6)
    root = w.session.live
    recorded = {r.index: r.image.copy() for r in live_frames(w)}
    drawn = w.session.branches[root].prompt.sketch_png
    w.session.branches[root].prompt = PromptSpec(3, None, drawn, None, "sandbox")  # the old editor's image prompt
    with qtbot.waitSignal(w.save_to(tmp_path / "old.wbsession").succeeded, timeout=30000):
        pass
    w2 = open_window(qtbot, host.address, mode="step", autostart=False)
    with qtbot.waitSignal(w2.load_from(tmp_path / "old.wbsession").succeeded, timeout=30000):
        pass
    w2.branch_from(root, 5)
    qtbot.waitUntil(lambda: "Branch rebuilt" in w2.statusBar().currentMessage(), timeout=20000)
    assert "takes no image prompts: the image went as the sketch hosts before 1.3 read it as" in \
        w2.statusBar().currentMessage()  # not "left out": the frames come out the same
    assert w2.resim_mismatches == 0 and np.array_equal(w2.viewport.frame.image, recorded[5])
    w2.resimulate(root, 4)  # now known to lack image prompts: sent as the sketch at once, no refusal
    assert w2.busy is not None
    qtbot.waitUntil(lambda: "rebuilt up to frame 4" in w2.statusBar().currentMessage(), timeout=20000)
    assert w2.resim_mismatches == 0 and np.array_equal(w2.viewport.frame.image, recorded[4])


def test_no_host_and_lost_host_say_what_to_do(qtbot):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    w = MainWindow(f"tcp://127.0.0.1:{port}", StartOptions(timeout=0.5))
    add_window(qtbot, w)
    qtbot.waitUntil(lambda: "No answer" in w.settings_panel.conn_label.text(), timeout=20000)
    assert "worldbridge serve" in w.settings_panel.conn_label.text() and not w.settings_panel.reconnect_btn.isHidden()

    from bridge.host.server import run_host_in_thread

    h = run_host_in_thread("sandbox", "tcp://127.0.0.1:*")
    w2 = open_window(qtbot, h.address, timeout=1.0)
    h.stop()
    qtbot.waitUntil(lambda: "Lost the host" in w2.settings_panel.conn_label.text(), timeout=10000)
    assert w2.viewport.top_pills()[0][1] == "host gone — no world running"  # on the frame, not only the status bar


def test_a_network_thread_that_cannot_make_its_wake_up_sockets_says_so_and_offers_reconnect(qtbot, host, monkeypatch,
                                                                                           capfd):
    """Made outside the thread's error handling, their failure (too many open files) went to Qt as a traceback: the
    window said Connected, and no command it sent ever ran."""
    import itertools

    import zmq

    from editor_gui import worker

    taken = zmq.Context.instance().socket(zmq.PULL)  # the address the next worker binds is in use
    taken.bind("inproc://worldbridge-wake-taken")
    monkeypatch.setattr(worker, "_wake_ids", itertools.repeat("taken"))
    try:
        w = add_window(qtbot, MainWindow(host.address, StartOptions(backend="sandbox", timeout=1.0)))
        qtbot.waitUntil(lambda: w.worker_thread is not None and w.worker_thread.thread.isFinished(), timeout=10000)
        qtbot.wait(100)  # the worker's last signals reach the window
        text = w.settings_panel.conn_label.text()
        assert "could not start its network thread" in text and "press Reconnect" in text, text
        assert w.welcome is None and not w.settings_panel.reconnect_btn.isHidden()
        assert "Traceback" not in capfd.readouterr().err
        monkeypatch.setattr(worker, "_wake_ids", itertools.count())
        w.settings_panel.reconnect_btn.click()  # the way back, once the cause is gone
        qtbot.waitUntil(lambda: w.info is not None and w.viewport.frame is not None, timeout=10000)
    finally:
        taken.close(linger=0)


def docs_files() -> dict[str, bytes]:
    """Every file under docs/, by path: what a test must leave as it found it."""
    return {str(f.relative_to(DOCS)): f.read_bytes() for f in sorted(DOCS.rglob("*")) if f.is_file()}


def test_screenshot(qtbot, host, tmp_path, monkeypatch):
    """Render the sandbox window in use to the test's tmp dir. It wrote it over docs/editor.png when that was missing
    or WORLDBRIDGE_UPDATE_DOCS was set, though that picture is the world-model screenshot tool's: no test writes docs/."""
    from PySide6.QtWidgets import QApplication

    monkeypatch.setenv("WORLDBRIDGE_UPDATE_DOCS", "1")  # what once made it write there
    docs = docs_files()
    apply_theme(QApplication.instance())  # as `worldbridge play` shows it
    w = open_window(qtbot, host.address, prompt=PromptSpec(seed=5, text="a snowy night level with many coins"))
    w.resize(1440, 900)
    w.timeline.record.click()
    focus_viewport(qtbot, w)
    qtbot.keyPress(w.viewport, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: len(w.session.recorded(w.session.live)) > 30, timeout=10000)
    qtbot.mouseClick(w.events_panel.buttons["weather_snow"], Qt.MouseButton.LeftButton)
    qtbot.mouseClick(w.events_panel.buttons["night_falls"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(w.session.recorded(w.session.live)) > 45, timeout=10000)
    first = w.session.live
    w.timeline.select_index(w.session.recorded(first)[20].index)
    qtbot.mouseClick(w.timeline.branch_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.session.live != first, timeout=20000)
    focus_viewport(qtbot, w)
    qtbot.keyPress(w.viewport, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(w.session.recorded(w.session.live)) > 60, timeout=10000)
    qtbot.keyRelease(w.viewport, Qt.Key.Key_Space)
    qtbot.keyRelease(w.viewport, Qt.Key.Key_Right)
    qtbot.wait(300)
    out = tmp_path / "editor.png"
    assert w.grab().save(str(out))
    shot = iio.imread(out)
    assert shot.shape[0] >= 800 and shot.shape[1] >= 1400 and shot.std() > 20
    assert docs_files() == docs


def test_play_command_starts_and_stops_its_own_host(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, "-m", "bridge.cli", "play", "--backend", "sandbox", "--seed", "3", "--quit-after", "2.5"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "host: tcp://127.0.0.1:" in r.stderr and "started by the editor" in r.stderr
    assert "last frame" in r.stderr and "(sandbox)" in r.stderr
    r = subprocess.run([sys.executable, "-m", "bridge.cli", "play", "--backend", "sandbox", "--checkpoint", str(tmp_path)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "not both" in r.stderr  # one_backend: serve, bench, demo and replay word it so too


def test_play_session_opens_the_file_and_names_a_backend_the_host_lacks_once_it_answers(qapp, tmp_path, monkeypatch):
    """`play --session FILE` was never driven through its command line: a session opened before the host answered
    (a slow host) selected a backend the host turned out not to serve, and nothing said so."""
    import threading

    from click.testing import CliRunner

    from bridge.cli import main
    from bridge.client import WorldClient

    s = Session(backend_kind="world_model", backend_name="tiny (step 1200)", width=64, height=64)
    root = s.new_root(PromptSpec(seed=1, backend="world_model"))
    for i in range(3):
        root.frames[i] = FrameRecord(i, 0, image=np.full((64, 64, 3), 40 * i, np.uint8))
    s.save(tmp_path / "model.wbsession")
    windows, errors, connect, show_error = [], [], WorldClient.connect, main_window.MainWindow.show_error
    load_from, opened = main_window.MainWindow.load_from, threading.Event()

    def opening(w, path):
        job = load_from(w, path)
        job.succeeded.connect(lambda _result: opened.set())  # after the window's own slot: the session is shown
        return job

    monkeypatch.setattr(main_window.MainWindow, "show", lambda w: (windows.append(w), QMainWindow.show(w))[1])
    monkeypatch.setattr(main_window.MainWindow, "show_error", lambda w, m: (errors.append(m), show_error(w, m))[1])
    monkeypatch.setattr(main_window.MainWindow, "load_from", opening)
    monkeypatch.setattr(WorldClient, "connect", lambda c: (opened.wait(20), connect(c))[1])  # the open ends first
    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))
    r = CliRunner().invoke(main, ["play", "--backend", "sandbox", "--session", str(tmp_path / "model.wbsession"),
                                  "--quit-after", "3"])
    assert r.exit_code == 0, r.output
    assert opened.is_set()  # the host answered only after the open: the case this test is for
    assert "editor closed: last frame 2 (world_model)" in r.output  # the opened session's last frame was shown
    (w,) = windows
    assert w.session.backend_kind == "world_model" and len(w.session.recorded(0)) == 3 and w.welcome is not None
    assert any("made by the world_model backend, which this host does not serve" in m for m in errors), errors
    assert w.settings_panel.backend.currentText() == "sandbox" and not (tmp_path / "autosave").exists()


def test_a_job_cancelled_as_it_runs_says_so_and_only_the_ui_thread_sets_cancelled(qtbot):
    """run() set `cancelled` from the job's own thread (through cancel_unstarted, named for jobs that never started),
    racing the UI thread's own writes and reads of it."""
    import threading

    from bridge.files import tick
    from editor_gui.jobs import Job

    writers = []

    class Watched(Job):
        def __setattr__(self, name, value):
            if name == "cancelled":
                writers.append(threading.current_thread() is threading.main_thread())
            super().__setattr__(name, value)

    started = threading.Event()
    job = Watched(lambda progress: (started.set(), [tick(progress, i, 100) or threading.Event().wait(0.01)
                                                    for i in range(100)]))
    job.start()
    assert started.wait(10)
    job.cancelled = True
    with qtbot.waitSignal(job.errored, timeout=10000) as ended:
        pass
    assert ended.args == ["was cancelled: nothing was written"] and job.error == ended.args[0] and job.cancelled
    assert job.wait(10000) and writers == [True, True]  # Job.__init__'s False, then the Cancel: both on the UI thread


def test_the_session_dialogs_list_a_session_file_whatever_the_case_of_its_suffix(qtbot, host, monkeypatch):
    """Open… filtered on `*.wbsession` alone, which hides "Take.WBSESSION" where Qt's filters are case-sensitive."""
    import fnmatch
    import re

    from PySide6.QtWidgets import QFileDialog

    w = open_window(qtbot, host.address, mode="step")
    asked = []
    for name in ("getOpenFileName", "getSaveFileName"):
        monkeypatch.setattr(QFileDialog, name, lambda *a, **k: (asked.append(a[3]), ("", ""))[1])
    w._load_dialog()
    w._save_dialog()
    for filters in asked:
        patterns = re.search(r"Session file \(([^)]*)\)", filters).group(1).split()
        assert all(any(fnmatch.fnmatchcase(n, p) for p in patterns) for n in ("a.wbsession", "Take.WBSESSION")), filters


def test_replay_and_host_recording(qtbot, host, tmp_path):
    w = open_window(qtbot, host.address, mode="step")
    w.timeline.record.click()
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_Right, 12)
    w.timeline.record.click()
    # replay: the viewport plays the recorded frames, says so, and stops at the end
    first = w.session.recorded(w.session.live)[0].index
    w.timeline.select_index(first)
    w.timeline.replay_btn.click()
    qtbot.waitUntil(lambda: w.viewport.mode_label.startswith(f"REPLAY frame {first + 3}"), timeout=20000)
    qtbot.waitUntil(lambda: not w.timeline.replay_btn.isChecked(), timeout=20000)
    assert w.viewing is not None and w.viewing.index == 12
    assert np.array_equal(w.viewport.frame.image, w.session.recorded(w.session.live)[-1].image)
    qtbot.mouseClick(w.timeline.live_btn, Qt.MouseButton.LeftButton)
    assert w.viewing is None and "REPLAY" not in w.viewport.mode_label
    # the host's own recording (.wbrec) next to the editor's timeline
    w.timeline.host_record.setChecked(True)
    qtbot.waitUntil(lambda: "Host recording started" in w.statusBar().currentMessage(), timeout=20000)
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_Left, 3)
    w.timeline.host_record.setChecked(False)
    qtbot.waitUntil(lambda: "Host recording stopped" in w.statusBar().currentMessage(), timeout=20000)
    path = Path(w.statusBar().currentMessage().split(": ", 1)[1])
    assert path.suffix == ".wbrec" and path.exists() and path.stat().st_size > 0


def test_a_host_recording_the_host_stopped_shows_off_and_why(qtbot, host, tmp_path):
    """(1.3) A full disk ends the host's recording, not the session: the box must not keep saying it records."""
    from test_host_server import _FullDisk

    w = open_window(qtbot, host.address, mode="step")
    w.timeline.host_record.setChecked(True)
    qtbot.waitUntil(lambda: "Host recording started" in w.statusBar().currentMessage(), timeout=20000)
    rec = host.host.sessions[w.info["session_id"]].recorder
    rec._f = _FullDisk(rec._f)  # the host's disk fills up
    focus_viewport(qtbot, w)
    qtbot.keyClick(w.viewport, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: not w.timeline.host_record.isChecked(), timeout=20000)
    said = w.statusBar().currentMessage()
    assert "Host recording stopped by the host" in said and "No space left on device" in said and rec.path.name in said
    step_keys(qtbot, w, Qt.Key.Key_Right, 2)  # the session goes on
    assert host.host.sessions[w.info["session_id"]].recorder is None  # nothing asked the host to record again


def test_version_mismatch_is_explained(qtbot, host, monkeypatch):
    from bridge.client import WorldClient
    from bridge.host import protocol as P

    reject = P.reject(2, 0)  # what the host answers a client of another major version

    def connect(self):
        raise P.ProtocolError(reject["code"], reject["message"], True)

    monkeypatch.setattr(WorldClient, "connect", connect)
    w = MainWindow(host.address, StartOptions(timeout=1.0))
    add_window(qtbot, w)
    qtbot.waitUntil(lambda: "another protocol version" in w.settings_panel.conn_label.text(), timeout=20000)
    assert "update the plugin or the host" in w.settings_panel.conn_label.text()
    assert w.welcome is None and "another protocol version" in w.viewport.message


def test_unseeded_world_keeps_the_seed_the_host_drew(qtbot, host):
    w = open_window(qtbot, host.address, prompt=PromptSpec(seed=None))
    seed = w.info["seed"]
    assert isinstance(seed, int) and w.session.root_of(w.session.live).prompt.seed == seed  # so it can be rebuilt
    assert w.prompt_panel.seed.value() == seed  # and shown: unticking "random" makes the same world again


def test_paused_editor_keeps_its_session_by_pinging(qtbot, monkeypatch):
    """A paused editor sends no session messages; its pings alone keep the host from closing the session."""
    from bridge.host.protocol import Limits
    from bridge.host.server import run_host_in_thread
    from editor_gui import worker

    monkeypatch.setattr(worker, "PING_AFTER_S", 0.2)
    h = run_host_in_thread("sandbox", "tcp://127.0.0.1:*", limits=Limits(idle_timeout_s=0.8))
    try:
        w = open_window(qtbot, h.address, mode="step")
        sid = w.info["session_id"]
        qtbot.wait(2000)  # over twice the idle timeout, paused
        assert w.info is not None and list(h.host.sessions) == [sid]
        last = live_frames(w)[-1].index
        w.step_action.trigger()
        qtbot.waitUntil(lambda: live_frames(w)[-1].index == last + 1, timeout=20000)
        w.close()
    finally:
        h.stop()


def test_screenshot_tool_plays_a_world_model_and_saves_the_window(qtbot, tmp_path, monkeypatch):
    """`python -m editor_gui.screenshot` (docs/editor.png) on an untrained micro world: it must run end to end."""
    from click.testing import CliRunner

    from editor_gui import screenshot
    from editor_gui.session_store import AUTOSAVE_ENV

    monkeypatch.setenv(AUTOSAVE_ENV, str(tmp_path / "autosave"))
    from test_model_data import save_random_world

    world = save_random_world(tmp_path / "world")
    out = tmp_path / "shot.png"
    refused = CliRunner().invoke(screenshot.main, ["--out", str(out), "--checkpoint", str(world)])
    assert refused.exit_code == 1 and "refused the start" in refused.output and "text" in refused.output  # at once
    from PySide6.QtWidgets import QApplication

    from editor_gui.main_window import MainWindow
    assert not [t for t in QApplication.topLevelWidgets() if isinstance(t, MainWindow) and t.isVisible()]  # closed:
    # a window left open covered the next tests' widgets, which then got no mouse events
    made = made_workers(monkeypatch)
    from PySide6.QtWidgets import QStatusBar

    said, show = [], QStatusBar.showMessage
    monkeypatch.setattr(QStatusBar, "showMessage", lambda bar, text, *ms: (said.append(text), show(bar, text, *ms)))
    r = CliRunner().invoke(screenshot.main, ["--out", str(out), "--checkpoint", str(world), "--text", ""],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert said and not [s for s in said if "no action for" in s]  # the keys it plays are the world's latent actions
    assert not [s for s in said if "text prompts" in s or "Not connected" in s]  # none of the refused run's window
    assert made and all(wt.thread.isFinished() for wt in made)  # closed: no network thread outlives the tool
    assert "WORLD MODEL: micro (world, step 0)" in r.output  # the badge names the backend
    shot = iio.imread(out)
    assert shot.shape[0] >= 800 and shot.shape[1] >= 1400 and shot.std() > 10
    assert "kept" not in r.output and not (tmp_path / "autosave").exists()  # its walk left no autosave behind


def made_workers(monkeypatch) -> list:
    """Every network thread the windows make from now on, to check each has ended once its window closed."""
    made = []

    class Counted(main_window.WorkerThread):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

    monkeypatch.setattr(main_window, "WorkerThread", Counted)
    return made


def test_a_window_closed_after_discarding_its_recording_closes_at_once_and_ends_its_network_thread(qtbot, host,
                                                                                                  monkeypatch,
                                                                                                  tmp_path):
    """The screenshot tool records in realtime, discards the recording and closes without running the loop again: the
    close held the world to keep frames still on their way, so the window never closed and its network thread ran on
    as the process exited (Qt: "QThread: Destroyed while thread 'worldbridge-network' is still running", an abort)."""
    from editor_gui.session_store import AUTOSAVE_ENV

    monkeypatch.setenv(AUTOSAVE_ENV, str(tmp_path / "autosave"))
    made = made_workers(monkeypatch)
    w = open_window(qtbot, host.address)
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: len(live_frames(w)) >= 5, timeout=10000)
    w.discard_unsaved()
    w.close()
    assert not w.isVisible() and w._held is None
    assert len(made) == 1 and made[0].thread.isFinished()
    assert not list((tmp_path / "autosave").glob("*closed*"))  # nothing kept


def test_closing_ends_a_network_thread_a_reconnect_left_in_a_latent_preview(qtbot, host, monkeypatch):
    """Reconnect leaves the old thread to end on its own; one busy in a long command (a latent preview, a rebuild) ran
    it to its end, past the window's close and the process's exit."""
    made = made_workers(monkeypatch)
    w = open_window(qtbot, host.address)
    old = w.worker_thread.worker
    old.submit("explore", steps=1_000_000, actions=2, resume_mode="realtime")  # minutes of steps
    qtbot.waitUntil(old._inbox.empty, timeout=10000)  # the preview has begun
    w.connect_host()
    qtbot.waitUntil(lambda: w.welcome is not None, timeout=10000)
    w.close()
    assert not w.isVisible() and len(made) == 2 and all(wt.thread.isFinished() for wt in made)


def emitted_elsewhere(signal, *args) -> None:
    """Emit as the network thread does: from another thread, so it waits in the window's event queue."""
    import threading

    emitter = threading.Thread(target=signal.emit, args=args)
    emitter.start()
    emitter.join()


def test_a_closed_or_reconnected_window_gets_no_late_message_of_its_old_worker(qtbot, host):
    """A refusal the worker sent just before the window closed waited in the event queue and reached the closed window
    (the screenshot tool's second run showed its first window's "start: … cannot start from text prompts", and that
    window's retry "Not connected to a host"): disconnecting the worker's signals cannot recall what they already sent.
    A worker the window stopped (a close, a Reconnect) reaches it no more."""
    from PySide6.QtWidgets import QApplication

    w = open_window(qtbot, host.address)
    said = []
    w.statusBar().messageChanged.connect(said.append)
    old = w.worker_thread.worker
    emitted_elsewhere(old.connection_lost, "the old connection's last word")
    w.connect_host()  # Reconnect: the old worker's last word is not the new connection's
    qtbot.waitUntil(lambda: w.welcome is not None, timeout=10000)
    QApplication.processEvents()
    assert w.welcome is not None and not [s for s in said if "old connection" in s]
    worker = w.worker_thread.worker
    emitted_elsewhere(worker.failed, "start", "this world cannot start from text prompts (bad_prompt)", "text_prompt")
    w.discard_unsaved()
    w.close()
    QApplication.processEvents()
    assert not w.isVisible() and not [s for s in said if "text prompts" in s or "Not connected" in s], said


def test_reconnecting_while_connecting_does_not_abort_the_editor(tmp_path):
    """A Reconnect (or closing the window) during a connect attempt once destroyed a running QThread: Qt aborts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = ("import sys\nfrom PySide6.QtCore import QTimer\nfrom PySide6.QtWidgets import QApplication\n"
              "from editor_gui.main_window import MainWindow, StartOptions\n"
              "app = QApplication(sys.argv)\n"
              f"w = MainWindow('tcp://127.0.0.1:{port}', StartOptions(timeout=3.0))\n"
              "w.show()\n"
              "QTimer.singleShot(200, w.settings_panel.reconnect_btn.click)\n"
              "QTimer.singleShot(400, w.settings_panel.reconnect_btn.click)\n"
              "QTimer.singleShot(600, w.close)\n"
              "QTimer.singleShot(700, app.quit)\n"
              "app.exec()\nprint('closed cleanly')\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0 and "closed cleanly" in r.stdout, r.stderr[-2000:]


def test_a_lost_host_leaves_no_stale_world_and_reopening_keeps_the_tree(qtbot, tmp_path):
    from bridge.host.server import run_host_in_thread

    h = run_host_in_thread("sandbox", "tcp://127.0.0.1:*")
    w = open_window(qtbot, h.address, timeout=1.0)
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: len(w.session.recorded(0)) >= 5, timeout=10000)
    w.timeline.record.setChecked(False)
    job = w.save_to(tmp_path / "a.wbsession")
    qtbot.waitUntil(job.isFinished, timeout=10000)
    h.stop()
    qtbot.waitUntil(lambda: "Lost the host" in w.settings_panel.conn_label.text(), timeout=15000)
    assert w.info is None and w.session.live is None and "no world running" in w.status_backend.text()
    assert w.viewport.kind == "" and not w.events_panel.send.isEnabled()  # nothing acts as if the old world ran
    qtbot.waitUntil(lambda: "live" not in w.timeline.tree.topLevelItem(0).text(0), timeout=20000)  # nor the tree
    for _ in range(2):  # the same file twice: the tree is rebuilt, not written into deleted items
        job = w.load_from(tmp_path / "a.wbsession")
        qtbot.waitUntil(job.isFinished, timeout=10000)
        qtbot.wait(300)
        assert w.timeline.tree.topLevelItemCount() == 1


def test_a_refused_rebuild_goes_back_to_the_running_world(qtbot, host):
    w = open_window(qtbot, host.address)
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: len(w.session.recorded(0)) >= 8, timeout=10000)
    w.timeline.record.setChecked(False)
    w.session.branches[0].prompt.backend = "world_model"  # recorded with a backend this host does not serve
    w.resimulate(0, 5)
    qtbot.waitUntil(lambda: w.busy is None, timeout=10000)
    assert "not served here" in w.statusBar().currentMessage()
    assert w.session.live == 0 and list(w.session.branches) == [0]  # no empty branch left, the old world live
    grown = w.session.branches[0].last_index()
    qtbot.waitUntil(lambda: w.session.branches[0].last_index() > grown, timeout=20000)


def test_new_world_returns_to_live_and_keeps_host_recording(qtbot, host):
    w = open_window(qtbot, host.address)
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: len(w.session.recorded(0)) >= 5, timeout=10000)
    w.view_frame(w.session.recorded(0)[2])
    w.timeline.host_record.setChecked(True)
    qtbot.waitUntil(lambda: any(s.recorder is not None for s in host.host.sessions.values()), timeout=20000)
    old = w.info["session_id"]
    w.new_world(PromptSpec(seed=4))
    qtbot.waitUntil(lambda: w.info is not None and w.info["session_id"] != old, timeout=10000)
    assert w.viewing is None  # the new world is shown, not a frame of the old one
    qtbot.waitUntil(lambda: host.host.sessions.get(w.info["session_id"]) is not None
                    and host.host.sessions[w.info["session_id"]].recorder is not None, timeout=20000)


def test_unsaved_recordings_are_kept_when_the_window_closes_or_open_replaces_them(qtbot, host, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))
    w = open_window(qtbot, host.address)
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: len(w.session.recorded(0)) >= 5, timeout=10000)
    w.timeline.record.setChecked(False)
    job = w.save_to(tmp_path / "mine.wbsession")
    qtbot.waitUntil(job.isFinished, timeout=10000)
    assert w._unsaved_work() is None  # saved: nothing to keep
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: len(w.session.recorded(0)) >= 12, timeout=10000)
    w.timeline.record.setChecked(False)
    held = len(w.session.recorded(0))
    job = w.load_from(tmp_path / "mine.wbsession")  # Open… over frames recorded since the save
    qtbot.waitUntil(job.isFinished, timeout=10000)
    kept = list((tmp_path / "autosave").glob("*-replaced-*.wbsession"))
    assert len(kept) == 1 and len(Session.load(kept[0]).recorded(0)) == held
    assert closed(qtbot, w)
    assert len(list((tmp_path / "autosave").iterdir())) == 1  # the opened session was unchanged: nothing new kept


def test_a_refused_free_text_event_stays_in_the_box(qtbot, host):
    """The host refusing a free-text event (nothing matches it) leaves the words in the box to reword, not gone."""
    w = open_window(qtbot, host.address)
    w.events_panel.text.setText("xyzzy plugh")
    qtbot.keyClick(w.events_panel.text, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "refused" in w.events_panel.status.text(), timeout=20000)
    assert w.events_panel.text.text() == "xyzzy plugh"
    w.events_panel.text.setText("night falls")  # one the host takes leaves the box empty for the next
    qtbot.keyClick(w.events_panel.text, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.events_panel.log.count() == 1, timeout=20000)
    assert w.events_panel.text.text() == ""
    w.busy = "rebuilding the branch"  # refused before it is sent: the words stay too
    w.events_panel.text.setText("make it snow")
    qtbot.keyClick(w.events_panel.text, Qt.Key.Key_Return)
    assert "Wait for rebuilding" in w.events_panel.status.text() and w.events_panel.text.text() == "make it snow"
    w.busy = None


def test_new_world_branch_and_preview_are_greyed_out_when_they_cannot_go_and_say_why(qtbot, host):
    """They stayed clickable with no world, no host or a rebuild running, and a click only got "start a world first"."""
    from editor_gui.main_window import NO_WORLD

    w = open_window(qtbot, host.address, mode="step", autostart=False)
    go, preview, branch = w.prompt_panel.go, w.explorer.run_btn, w.timeline.branch_btn
    assert go.isEnabled() and w.new_action.isEnabled()  # how a world starts
    assert not preview.isEnabled() and preview.toolTip() == NO_WORLD
    w.new_world(PromptSpec(seed=3))
    qtbot.waitUntil(lambda: w.info is not None and w.viewport.frame is not None, timeout=20000)
    w.timeline.record.click()
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_Right, 1)
    w.timeline.refresh()
    assert all(b.isEnabled() for b in (go, preview, branch))
    w.busy = "rebuilding the branch"
    for b in (go, preview, branch, w.new_action):
        assert not b.isEnabled() and b.toolTip() == "Wait for rebuilding the branch to finish", b.toolTip()
    w.timeline.refresh()  # new frames keep Branch greyed out
    assert not branch.isEnabled()
    w.busy = None
    assert all(b.isEnabled() for b in (go, preview, branch, w.new_action))
    welcome = w.welcome
    w.on_connection_lost("the host went away")
    for b in (go, preview, branch, w.new_action):
        assert not b.isEnabled() and "Not connected to a host" in b.toolTip()
    w.on_connected(welcome)
    assert go.isEnabled() and branch.isEnabled() and not preview.isEnabled() and preview.toolTip() == NO_WORLD


def test_a_second_new_world_waits_for_the_first_and_play_greys_out_with_preview(qtbot, host, monkeypatch):
    """A second New world click while the first start was on its way sent a second start; each latent action's Play
    stayed clickable with no world or while a rebuild ran."""
    from editor_gui.main_window import NO_WORLD

    w = open_window(qtbot, host.address, mode="step")
    sent: list[str] = []
    submit = w.submit
    monkeypatch.setattr(w, "submit", lambda command, **kw: (sent.append(command), submit(command, **kw))[1])
    old = w.info["session_id"]
    w.new_action.trigger()
    assert not w.new_action.isEnabled() and not w.prompt_panel.go.isEnabled()
    assert w.new_action.toolTip() == "Wait for the new world to start"
    w.new_world(PromptSpec(seed=5))  # a second click that got through: refused, not sent
    assert "Wait for the new world to start" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: w.info is not None and w.info["session_id"] != old, timeout=20000)
    assert sent.count("start") == 1 and w.new_action.isEnabled()
    plays = [cell.play_btn for cell in w.explorer.cells]
    assert plays and all(b.isEnabled() for b in plays)
    w.busy = "rebuilding the branch"
    assert all(not b.isEnabled() and b.toolTip() == "Wait for rebuilding the branch to finish" for b in plays)
    w.busy = None
    w.on_session_ended("the host ended the session")
    assert all(not b.isEnabled() and b.toolTip() == NO_WORLD for b in plays)


def test_a_refused_rebuild_of_an_opened_session_greys_out_play_and_paste_again(qtbot, host, tmp_path):
    """The refusal greyed the controls out for the rebuild's branch, then went back to no live branch without
    refreshing them: Paste object and each Play looked clickable and were refused on click."""
    w = open_window(qtbot, host.address, mode="step")
    w.timeline.record.setChecked(True)
    step_keys(qtbot, w, Qt.Key.Key_D, 3)
    w.timeline.record.setChecked(False)
    w.session.branches[0].prompt.backend = "world_model"  # recorded with a backend this host does not serve
    with qtbot.waitSignal(w.save_to(tmp_path / "a.wbsession").succeeded, timeout=10000):
        pass
    with qtbot.waitSignal(w.load_from(tmp_path / "a.wbsession").succeeded, timeout=10000):
        pass
    assert w.session.live is None and w.explorer.blocked_play == main_window.NOT_IN_SESSION
    w.resimulate(0, 2)
    qtbot.waitUntil(lambda: w.busy is None, timeout=10000)
    assert "not served here" in w.statusBar().currentMessage() and w.session.live is None
    assert w.explorer.blocked_play == main_window.NOT_IN_SESSION  # Play greyed out, saying why
    assert w.paste_action.toolTip() == main_window.NOT_IN_SESSION
