"""Editor flows a level designer hits after the first world: viewing other worlds, opened sessions, refused events,
keeping recordings, exports (the real window against a real sandbox host, offscreen)."""

import threading
from pathlib import Path

import numpy as np
import pytest
from test_editor_gui import add_window, closed, focus_viewport, host, live_frames, open_window, step_keys  # noqa: F401 - host: fixture

from bridge.worlds.sandbox import SandboxWorld
from editor_gui.session_store import AUTOSAVE_ENV, FrameRecord, PromptSpec, Session

pytest.importorskip("pytestqt")


def model_session(path, frames: int = 3) -> Session:
    """A saved session recorded on a world model (synthetic frames), as another editor would have saved it."""
    s = Session(backend_kind="world_model", backend_name="tiny (step 1200)", width=64, height=64)
    root = s.new_root(PromptSpec(seed=1, backend="world_model"))
    for i in range(frames):
        root.frames[i] = FrameRecord(i, 0, image=np.full((64, 64, 3), 40 * i, np.uint8))
    s.save(path)
    return s


def test_the_badge_names_the_backend_of_the_frame_shown(qtbot, host, tmp_path):
    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address, mode="step")
    assert w.viewport.kind == "sandbox"
    with qtbot.waitSignal(w.load_from(tmp_path / "model.wbsession").succeeded, timeout=10000):
        pass
    assert w.viewing is not None and w.info["backend_kind"] == "sandbox"  # a model frame shown, the sandbox running
    assert (w.viewport.kind, w.viewport.name) == ("world_model", "tiny (step 1200)")
    w.timeline.go_live()
    assert w.viewing is None and w.viewport.kind == "sandbox"


def test_a_refused_event_is_not_recorded_as_the_next_events_request(qtbot, host):
    w = open_window(qtbot, host.address, mode="step")
    w.timeline.record.click()
    w.fire_event(None, "xyzzy plugh")  # refused by the sandbox, its answer still on the way when the next one is fired
    w.fire_event("night_falls", None)
    qtbot.waitUntil(lambda: any(r.events for r in live_frames(w)), timeout=20000)
    qtbot.waitUntil(lambda: "refused" in w.events_panel.status.text() or "Fired" in w.events_panel.status.text(), timeout=20000)
    rec = next(r for r in live_frames(w) if r.events)
    assert rec.events == ["night falls"] and rec.fired == [{"event_type": "night_falls", "text": None}]
    assert not w.pending_events and not w.asked_events


def record_unsaved(qtbot, w, n: int = 5) -> None:
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: w._unsaved >= n, timeout=10000)
    w.timeline.record.setChecked(False)


def test_open_keeps_unsaved_frames_off_the_ui_thread_and_opens_nothing_if_it_cannot(qtbot, host, tmp_path, monkeypatch):
    from PySide6.QtCore import QThread
    from PySide6.QtWidgets import QApplication

    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w)
    saved_on = []
    save = Session.save
    monkeypatch.setattr(Session, "save", lambda self, *a: (saved_on.append(QThread.currentThread()), save(self, *a))[1])
    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))
    with qtbot.waitSignal(w.load_from(tmp_path / "model.wbsession").succeeded, timeout=10000):
        pass
    assert saved_on and QApplication.instance().thread() not in saved_on  # the window never froze on the write
    assert len(list((tmp_path / "autosave").glob("*-replaced-*.wbsession"))) == 1
    assert w.session.backend_kind == "world_model" and w._unsaved == 0

    w.timeline.go_live()
    w.new_world(PromptSpec(seed=2))
    qtbot.waitUntil(lambda: w.session.live is not None, timeout=20000)
    w.set_paused(False)  # Open… paused the host's world
    record_unsaved(qtbot, w)
    mine = w.session
    (tmp_path / "not_a_folder").write_text("")
    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "not_a_folder" / "autosave"))
    with qtbot.waitSignal(w.load_from(tmp_path / "model.wbsession").errored, timeout=10000) as failed:
        pass
    assert "could not keep the unsaved recording" in failed.args[0] and "nothing was opened" in failed.args[0]
    assert w.session is mine and w._unsaved >= 5  # the recording is still there, still unsaved
    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))  # so closing the window keeps it


def test_a_damaged_session_that_fails_to_open_leaves_the_work_in_the_window_untouched(qtbot, host, tmp_path,
                                                                                    monkeypatch):
    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))
    path = tmp_path / "cut.wbsession"
    model_session(path)
    path.write_bytes(path.read_bytes()[:-100])  # cut short, as a copy that did not finish
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w)
    mine, unsaved, live = w.session, w._unsaved, w.session.live
    with qtbot.waitSignal(w.load_from(path).errored, timeout=10000):
        pass
    message = w.statusBar().currentMessage()
    assert "\n" not in message and f"{path} is a damaged saved session" in message  # not "not a saved session"
    assert w.session is mine and w.session.live == live and w._unsaved >= unsaved  # still there, still unsaved
    assert not (tmp_path / "autosave").exists()  # nothing was replaced, so nothing needed keeping

def test_closing_with_a_recording_that_cannot_be_kept_leaves_the_window_open_once(qtbot, host, tmp_path, monkeypatch):
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w)
    (tmp_path / "not_a_folder").write_text("")
    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "not_a_folder" / "autosave"))
    assert not closed(qtbot, w) and w.isVisible()
    assert "could not keep the unsaved recording" in w.statusBar().currentMessage()
    assert "close again to discard it" in w.statusBar().currentMessage()
    with qtbot.waitSignal(w.save_to(tmp_path / "mine.wbsession").succeeded, timeout=10000):
        pass
    assert len(Session.load(tmp_path / "mine.wbsession").recorded(0)) >= 5
    record_unsaved(qtbot, w)  # new work after the save: a failed keep warns again, it does not discard at once
    assert not closed(qtbot, w) and w.isVisible() and "close again to discard it" in w.statusBar().currentMessage()
    (tmp_path / "not_a_folder").unlink()  # the disk can take it now: the close keeps the work and closes
    assert closed(qtbot, w)


def test_after_open_the_hosts_world_refuses_input_that_no_branch_would_record(qtbot, host, tmp_path):
    from PySide6.QtCore import Qt

    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address, mode="step")
    with qtbot.waitSignal(w.load_from(tmp_path / "model.wbsession").succeeded, timeout=10000):
        pass
    w.timeline.go_live()  # the host's world again, but it belongs to no branch of the opened session
    shown = w.viewport.frame.index
    focus_viewport(qtbot, w)
    qtbot.keyClick(w.viewport, Qt.Key.Key_Right)
    w.step_action.trigger()
    w.fire_event("night_falls", None)
    qtbot.wait(400)
    assert w.viewport.frame.index == shown  # no frame was made that nothing records
    assert "Branch from this frame" in w.statusBar().currentMessage()
    assert "Branch from this frame" in w.events_panel.status.text()
    assert not w.paste_action.isEnabled() and "Branch from this frame" in w.paste_action.toolTip()
    w.new_world(PromptSpec(seed=2))  # a new root of the opened session: playable again
    qtbot.waitUntil(lambda: w.session.live is not None, timeout=20000)
    from editor_gui.main_window import LIVE

    assert w._not_ready(LIVE) is None and "Branch from" not in w.paste_action.toolTip()


def test_a_preview_after_saving_leaves_nothing_unsaved(qtbot, host, tmp_path):
    from PySide6.QtCore import Qt

    w = open_window(qtbot, host.address, mode="step")
    w.timeline.record.click()
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_Right, 3)
    with qtbot.waitSignal(w.save_to(tmp_path / "a.wbsession").succeeded, timeout=10000):
        pass
    w.explorer.steps.setValue(2)
    qtbot.mouseClick(w.explorer.run_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.busy is None, timeout=20000)
    assert [r.index for r in live_frames(w)] == [0, 1, 2, 3]
    assert w._unsaved == 0 and w._unsaved_work() is None  # closing writes no autosave of a saved session


def test_pause_before_a_world_starts_the_next_world_paused(qtbot, host):
    w = open_window(qtbot, host.address, autostart=False)
    w.pause_action.trigger()
    qtbot.wait(300)
    assert "next world starts paused" in w.statusBar().currentMessage()  # not a "no session" error
    w.new_world(PromptSpec(seed=3))
    qtbot.waitUntil(lambda: w.info is not None, timeout=20000)
    assert w.info["mode"] == "step" and w.pause_action.isChecked()


def test_clicking_record_new_world_or_an_event_keeps_the_keys_on_the_viewport(qtbot, host):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    w = open_window(qtbot, host.address, mode="step")
    focus_viewport(qtbot, w)
    for button in (w.timeline.record, w.events_panel.buttons["night_falls"], w.explorer.run_btn):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert QApplication.focusWidget() is w.viewport
    qtbot.waitUntil(lambda: w.busy is None, timeout=20000)  # the preview the last click started
    last = live_frames(w)[-1].index
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Space)  # jump: not a second click on Record
    qtbot.waitUntil(lambda: live_frames(w)[-1].index == last + 1, timeout=20000)
    assert w.timeline.record.isChecked() and live_frames(w)[-1].action == 3  # the sandbox's jump
    roots = len(w.session.branches)
    qtbot.mouseClick(w.prompt_panel.go, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(w.session.branches) == roots + 1 and len(live_frames(w)) == 1, timeout=20000)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(live_frames(w)) == 2, timeout=20000)
    assert len(w.session.branches) == roots + 1  # the key jumped in the new world, it did not start another


def test_live_and_branch_after_scrubbing_give_the_keys_back_to_the_viewport(qtbot, host):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    w = open_window(qtbot, host.address, mode="step")
    w.timeline.record.click()
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_Right, 5)
    for button in (w.timeline.live_btn, w.timeline.branch_btn):
        w.timeline.refresh()
        qtbot.mouseClick(w.timeline.slider, Qt.MouseButton.LeftButton, pos=w.timeline.slider.rect().center())
        qtbot.keyClick(w.timeline.slider, Qt.Key.Key_Home)  # scrub to the first frame
        assert w.viewing is not None and QApplication.focusWidget() is w.timeline.slider
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: w.busy is None and w.pending_fork is None, timeout=20000)
        last = live_frames(w)[-1].index
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Left)  # plays: it does not scrub
        qtbot.waitUntil(lambda: live_frames(w)[-1].index == last + 1, timeout=20000)
        assert w.viewing is None and live_frames(w)[-1].action == 1  # the sandbox's left


@pytest.mark.parametrize("fmt, typed, written", [("mp4", "clip", "clip.mp4"), ("gif", "clip.GIF", "clip.GIF"),
                                                 ("actions", "log", "log.json")])
def test_an_export_name_typed_without_its_suffix_gets_it(qtbot, host, tmp_path, monkeypatch, fmt, typed, written):
    from editor_gui import main_window

    w = open_window(qtbot, host.address, mode="step")
    asked = []
    monkeypatch.setattr(main_window.QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / typed), ""))
    monkeypatch.setattr(w, "export_to", lambda f, path: asked.append((f, path)))
    w._export_dialog(fmt)
    assert asked == [(fmt, str(tmp_path / written))]


def test_exports_name_the_backend_of_the_branch_exported(qtbot, host, tmp_path, monkeypatch):
    from test_export import read_labels

    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))  # Open keeps the sandbox frames there
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w, 2)
    for name in ("sandbox.gif", "sandbox.mp4"):
        with qtbot.waitSignal(w.export_to(name[-3:], tmp_path / name).succeeded, timeout=30000):
            pass
        assert read_labels(tmp_path / name) == ["WorldBridge — SANDBOX GAME (test backend, not the world model): sandbox game"]
    model_session(tmp_path / "model.wbsession")
    with qtbot.waitSignal(w.load_from(tmp_path / "model.wbsession").succeeded, timeout=10000):
        pass
    assert w.info["backend_kind"] == "sandbox"  # the model's branch is shown while the sandbox is still running
    with qtbot.waitSignal(w.export_to("png", tmp_path / "model_pngs").succeeded, timeout=30000):
        pass
    assert read_labels(tmp_path / "model_pngs") == ["WorldBridge — WORLD MODEL: tiny (step 1200)"]


def test_a_key_that_plays_nothing_says_why_only_when_the_world_is_in_no_branch(qtbot, host, tmp_path):
    from PySide6.QtCore import Qt

    from editor_gui.main_window import NOT_IN_SESSION

    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address, mode="step", autostart=False)
    focus_viewport(qtbot, w)

    def press() -> str:
        """The status bar after a key press that must send nothing."""
        w.statusBar().showMessage("before")
        sent = w.seq
        qtbot.keyClick(w.viewport, Qt.Key.Key_Right)
        assert w.seq == sent
        return w.statusBar().currentMessage()

    assert press() == "before"  # no world: the viewport already says to press New world
    w.new_world(PromptSpec(seed=3))
    qtbot.waitUntil(lambda: w.info is not None and w.viewport.frame is not None, timeout=20000)
    w.timeline.record.click()
    step_keys(qtbot, w, Qt.Key.Key_Right, 1)
    w.busy = "the latent-action preview"
    assert press() == "before"  # busy: its progress is on screen
    w.busy = None
    w.view_frame(live_frames(w)[-1])
    assert press() == "before"  # viewing a recorded frame: it is labelled "press Live to return"
    w.timeline.go_live()
    with qtbot.waitSignal(w.load_from(tmp_path / "model.wbsession").succeeded, timeout=10000):
        pass
    w.timeline.go_live()
    assert press() == NOT_IN_SESSION  # the host's world runs, but no branch would record what a key did
    plays = [cell.play_btn for cell in w.explorer.cells]  # a Play would be refused so: greyed out, saying why
    assert plays and all(not b.isEnabled() and b.toolTip() == NOT_IN_SESSION for b in plays)
    assert w.explorer.run_btn.isEnabled()  # a preview branches the host's world and records nothing: it may go


def slow_starts(monkeypatch, seconds: float = 0.5) -> None:
    """Keep a rebuild's world start on its way long enough to act during it."""
    import time

    from bridge.client import WorldClient

    start = WorldClient.start
    monkeypatch.setattr(WorldClient, "start", lambda self, **kw: (time.sleep(seconds), start(self, **kw))[1])


def assert_rebuilt_and_kept(qtbot, w, before: Session, root: int) -> None:
    qtbot.waitUntil(lambda: w.busy is None, timeout=10000)
    qtbot.wait(300)  # an open that was let through would land by now
    assert w.session is before and w.session.backend_kind == "sandbox"  # the window's work is still there
    assert len(before.recorded(root)) >= 5 and w.session.live != root
    assert [r.index for r in live_frames(w)][:5] == [0, 1, 2, 3, 4]  # the rebuild went on live in its own branch
    assert "Branch rebuilt up to frame 3" in w.statusBar().currentMessage()


def test_open_during_a_rebuild_is_refused_and_the_rebuild_finishes(qtbot, host, tmp_path, monkeypatch):
    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w)
    before, root = w.session, w.session.live
    slow_starts(monkeypatch)
    w.resimulate(root, 3)
    assert w.busy == "rebuilding the branch"
    assert w.load_from(tmp_path / "model.wbsession") is None
    message = w.statusBar().currentMessage()
    assert "model.wbsession was not opened" in message and "wait for rebuilding the branch to finish" in message
    assert_rebuilt_and_kept(qtbot, w, before, root)


def test_the_refusal_of_an_open_stays_on_screen_over_the_rebuilds_progress(qtbot, host, tmp_path, monkeypatch):
    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w)
    slow_starts(monkeypatch)
    w.resimulate(w.session.live, 3)
    assert w.load_from(tmp_path / "model.wbsession") is None
    refusal = w.statusBar().currentMessage()
    shown = []
    w.statusBar().messageChanged.connect(shown.append)
    qtbot.waitUntil(lambda: w.busy is None, timeout=10000)
    assert shown and shown[0].startswith("Branch rebuilt up to frame 3")  # no progress wrote over the refusal
    w.statusBar().clearMessage()  # once the error is gone, progress shows again
    w.on_progress("resimulate", 2, 3)
    assert w.statusBar().currentMessage() == "Rebuilding the branch on the host: 2/3 frames" != refusal


def test_open_is_greyed_out_during_a_rebuild_and_asks_for_no_file(qtbot, host, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w)
    picked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (picked.append(a), ("", ""))[1])
    slow_starts(monkeypatch)
    assert w.timeline.load_btn.isEnabled()
    w.resimulate(w.session.live, 3)
    assert not w.timeline.load_btn.isEnabled()
    assert "Wait for rebuilding the branch to finish" in w.timeline.load_btn.toolTip()
    qtbot.waitUntil(lambda: w.busy is None, timeout=10000)
    assert picked == [] and w.timeline.load_btn.isEnabled() and "Wait" not in w.timeline.load_btn.toolTip()
    w.timeline.load_btn.click()
    assert len(picked) == 1  # the dialog opens again once the rebuild is done


def test_a_file_picked_while_a_rebuild_began_is_refused_with_the_one_open_message(qtbot, host, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w)
    before, root = w.session, w.session.live
    slow_starts(monkeypatch)

    def pick(*_a, **_k):  # the rebuild begins while the dialog is open
        w.resimulate(root, 3)
        return str(tmp_path / "model.wbsession"), ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", pick)
    w.timeline.load_btn.click()
    message = w.statusBar().currentMessage()
    assert "model.wbsession was not opened" in message and "wait for rebuilding the branch to finish" in message
    assert_rebuilt_and_kept(qtbot, w, before, root)


def test_branch_while_a_session_is_read_is_refused_and_the_open_lands(qtbot, host, tmp_path, monkeypatch):
    """A rebuild begun while Open… read the file had its frames land in neither session, and the open was refused
    only once read: Branch is greyed out (and refused) until the open ends."""
    import time

    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w)
    root = w.session.live
    load = Session.load
    monkeypatch.setattr(Session, "load", lambda *a: (time.sleep(0.5), load(*a))[1])
    job = w.load_from(tmp_path / "model.wbsession")
    assert not w.timeline.branch_btn.isEnabled()
    assert w.timeline.branch_btn.toolTip() == "Wait for opening model.wbsession to finish"
    w.branch_from(root, 3)  # Branch from this frame while the file is still being read
    assert w.busy is None and "Wait for opening model.wbsession to finish" in w.statusBar().currentMessage()
    with qtbot.waitSignal(job.succeeded, timeout=10000):
        pass
    assert w.session.backend_kind == "world_model"


def test_open_during_a_latent_action_preview_is_refused_and_the_preview_finishes(qtbot, host, tmp_path):
    from PySide6.QtCore import Qt

    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address, mode="step")
    w.timeline.record.click()
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_Right, 3)
    before = w.session
    w.explorer.steps.setValue(12)
    qtbot.mouseClick(w.explorer.run_btn, Qt.MouseButton.LeftButton)
    assert w.busy == "the latent-action preview"
    assert w.load_from(tmp_path / "model.wbsession") is None
    assert "wait for the latent-action preview to finish" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: w.busy is None, timeout=20000)
    qtbot.wait(300)
    assert w.session is before and [r.index for r in live_frames(w)] == [0, 1, 2, 3]  # the world is back where it was
    assert w.explorer.info.text().startswith("Previews from frame 3: 12 frames")  # its clips are shown


@pytest.mark.parametrize("how", ["click the text prompt", "type a free-text event", "pause"])
def test_the_text_encoder_loads_once_when_the_user_heads_for_text_not_at_launch(qtbot, host, how):
    from PySide6.QtCore import Qt

    from editor_gui.main_window import MainWindow, StartOptions

    warmed = []
    w = MainWindow(host.address, StartOptions(backend="sandbox", prompt=PromptSpec(seed=3)),
                   warm_text=lambda: warmed.append(how))
    add_window(qtbot, w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.viewport.frame is not None, timeout=10000)
    focus_viewport(qtbot, w)
    qtbot.wait(200)
    assert warmed == []  # playing the first seconds loads nothing
    if how == "click the text prompt":
        qtbot.mouseClick(w.prompt_panel.text.viewport(), Qt.MouseButton.LeftButton)
    elif how == "type a free-text event":
        qtbot.keyClicks(w.events_panel.text, "make it snow")
    else:
        w.pause_action.trigger()
    qtbot.waitUntil(lambda: warmed == [how], timeout=20000)
    qtbot.keyClicks(w.prompt_panel.text, "a snowy level")
    w.set_paused(True)
    assert warmed == [how]  # once


def test_a_new_world_does_not_list_the_old_worlds_fired_events(qtbot, host):
    w = open_window(qtbot, host.address, mode="step")
    w.fire_event("night_falls", None)
    qtbot.waitUntil(lambda: w.events_panel.log.count() == 1, timeout=20000)
    assert "Fired: night falls" in w.events_panel.status.text()
    w.new_world(PromptSpec(seed=4))
    qtbot.waitUntil(lambda: len(w.session.branches) == 2 and w.session.live == 1, timeout=20000)
    assert w.events_panel.log.count() == 0 and "Fired" not in w.events_panel.status.text()



def test_open_shows_the_saved_worlds_sketch_so_new_world_makes_that_world_again(qtbot, host, tmp_path):
    w = open_window(qtbot, host.address, mode="step", autostart=False)
    canvas = w.prompt_panel.canvas
    canvas.fill_rect((9, 6), (9, 12), "platform")
    drawn = canvas.cells.copy()
    w.prompt_panel.go.click()
    qtbot.waitUntil(lambda: w.session is not None and w.session.live is not None, timeout=20000)
    with qtbot.waitSignal(w.save_to(tmp_path / "sketched.wbsession").succeeded, timeout=10000):
        pass
    canvas.clear()
    w.prompt_panel.use_sketch.setChecked(False)
    with qtbot.waitSignal(w.load_from(tmp_path / "sketched.wbsession").succeeded, timeout=10000):
        pass
    assert np.array_equal(canvas.cells, drawn) and w.prompt_panel.use_sketch.isChecked()
    assert w.prompt_panel.prompt().sketch_png == w.session.branches[0].prompt.sketch_png

    model_session(tmp_path / "plain.wbsession")  # a world made without a sketch: the drawing stays, unsent
    with qtbot.waitSignal(w.load_from(tmp_path / "plain.wbsession").succeeded, timeout=10000):
        pass
    assert np.array_equal(canvas.cells, drawn) and not w.prompt_panel.use_sketch.isChecked()


def test_closing_keeps_a_world_drawn_as_a_sketch_even_with_nothing_recorded(qtbot, host, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))
    w = open_window(qtbot, host.address, mode="step", autostart=False)
    w.prompt_panel.canvas.fill_rect((9, 6), (9, 12), "platform")
    w.prompt_panel.go.click()
    qtbot.waitUntil(lambda: w.session is not None and w.session.live is not None, timeout=20000)
    drawn = w.session.branches[0].prompt.sketch_png
    assert drawn is not None and not w.timeline.record.isChecked()
    assert closed(qtbot, w)
    (kept,) = (tmp_path / "autosave").glob("*-closed-*.wbsession")
    assert Session.load(kept).branches[0].prompt.sketch_png == drawn


def test_export_is_greyed_out_with_the_reason_until_the_viewed_branch_has_something_to_export(qtbot, host, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from editor_gui.export import NOTHING

    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (asked.append(a), ("", ""))[1])
    w = open_window(qtbot, host.address, mode="step", autostart=False)
    t = w.timeline
    assert not t.export_btn.isEnabled() and "Nothing to export" in t.export_btn.toolTip()
    t.export_actions["mp4"].trigger()
    assert not asked  # no file dialog for an export that has nothing in it
    w.new_world(PromptSpec(seed=3))
    qtbot.waitUntil(lambda: w.session is not None and w.session.live is not None and bool(live_frames(w)), timeout=20000)
    w.step_once()  # played, not recorded: the action log has frames, the pictures none
    qtbot.waitUntil(lambda: t.export_btn.isEnabled(), timeout=10000)
    assert t.export_actions["actions"].isEnabled()
    assert not t.export_actions["mp4"].isEnabled() and t.export_actions["mp4"].toolTip() == NOTHING
    t.export_actions["gif"].trigger()
    assert not asked
    t.record.setChecked(True)
    w.step_once()
    qtbot.waitUntil(lambda: all(a.isEnabled() for a in t.export_actions.values()), timeout=10000)
    t.record.setChecked(False)
    t.export_actions["mp4"].trigger()
    assert len(asked) == 1
    w.discard_unsaved()


def test_open_selects_the_backend_that_made_the_opened_world_or_says_it_is_not_served(qtbot, host, tmp_path):
    sandbox = Session(backend_kind="sandbox", backend_name="sandbox game", width=64, height=64)
    sandbox.new_root(PromptSpec(seed=2, backend="sandbox")).frames[0] = FrameRecord(0, 0)
    sandbox.save(tmp_path / "sandbox.wbsession")
    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address, mode="step", autostart=False)
    qtbot.waitUntil(lambda: w.welcome is not None, timeout=10000)
    box = w.settings_panel.backend
    box.addItem("world_model")  # as a host serving both would list them
    box.setCurrentText("world_model")
    with qtbot.waitSignal(w.load_from(tmp_path / "sandbox.wbsession").succeeded, timeout=10000):
        pass
    assert box.currentText() == "sandbox"  # New world makes the opened world's kind again
    with qtbot.waitSignal(w.load_from(tmp_path / "model.wbsession").succeeded, timeout=10000):
        pass
    assert box.currentText() == "world_model"
    box.removeItem(box.findText("world_model"))  # this host serves the sandbox only
    with qtbot.waitSignal(w.load_from(tmp_path / "model.wbsession").succeeded, timeout=10000):
        pass
    message = w.statusBar().currentMessage()
    assert "made by the world_model backend, which this host does not serve" in message
    assert "New world starts a sandbox world" in message


@pytest.fixture
def autosave(tmp_path, monkeypatch) -> Path:
    """The editor's autosave folder for one test (not made yet), so what it keeps lands in tmp_path."""
    folder = tmp_path / "autosave"
    monkeypatch.setenv(AUTOSAVE_ENV, str(folder))
    return folder


def test_a_crashed_editor_leaves_its_unsaved_work_for_the_next_start_to_offer(qtbot, host, tmp_path, monkeypatch, capsys, autosave):
    import os
    import subprocess

    from editor_gui.main_window import AUTOSAVE_EVERY_MS

    w = open_window(qtbot, host.address)
    assert w._autosave_timer.isActive() and w._autosave_timer.interval() == AUTOSAVE_EVERY_MS
    record_unsaved(qtbot, w)
    with qtbot.waitSignal(w.autosave_now().succeeded, timeout=10000):  # what the timer does every 30 s
        pass
    assert w.autosave_now() is None  # nothing new recorded since: nothing is written again
    (running,) = autosave.glob("*-running-*.wbsession")
    recorded = {r.index for r in Session.load(running).recorded(0)}
    assert len(recorded) >= 5

    gone = subprocess.Popen(["true"])  # the editor is killed: its process is gone, close() never ran
    gone.wait()
    killed = running.with_name(running.name.replace(f"-{os.getpid()}-", f"-{gone.pid}-"))
    running.rename(killed)
    capsys.readouterr()
    w2 = open_window(qtbot, host.address, autostart=False)  # the next start
    (crashed,) = autosave.glob("*-crashed-*.wbsession")
    assert str(crashed) in w2.statusBar().currentMessage() and "Open…" in w2.statusBar().currentMessage()
    assert str(crashed) in capsys.readouterr().err
    assert {r.index for r in Session.load(crashed).recorded(0)} == recorded  # the work is recoverable
    assert not list(autosave.glob("*-running-*.wbsession"))
    w3 = open_window(qtbot, host.address, autostart=False)
    assert str(crashed) not in w3.statusBar().currentMessage()  # offered once

    before = w._unsaved
    record_unsaved(qtbot, w, before + 2)  # more work: the running editor writes its autosave again
    with qtbot.waitSignal(w.autosave_now().succeeded, timeout=10000):
        pass
    w4 = open_window(qtbot, host.address, autostart=False)
    assert len(list(autosave.glob("*-running-*.wbsession"))) == 1 and "left its" not in w4.statusBar().currentMessage()
    assert closed(qtbot, w)  # a clean close keeps the work as before and leaves no running autosave
    assert not list(autosave.glob("*-running-*.wbsession")) and len(list(autosave.glob("*-closed-*.wbsession"))) == 1


def test_a_sketch_drawn_but_never_sent_is_kept_on_close_and_open_puts_it_back(qtbot, host, tmp_path, monkeypatch, autosave):
    w = open_window(qtbot, host.address, mode="step", autostart=False)
    qtbot.waitUntil(lambda: w.welcome is not None, timeout=10000)
    assert closed(qtbot, w)  # the starting layout is nobody's drawing: nothing kept
    assert not autosave.exists()
    w = open_window(qtbot, host.address, mode="step", autostart=False)
    w.prompt_panel.canvas.fill_rect((9, 6), (9, 12), "platform")
    drawn = w.prompt_panel.canvas.cells.copy()
    assert w.session is None and closed(qtbot, w)
    (kept,) = autosave.glob("*-closed-*.wbsession")
    (root,) = Session.load(kept).branches.values()
    assert root.name == "unsent sketch" and not root.frames

    w2 = open_window(qtbot, host.address, mode="step", autostart=False)
    with qtbot.waitSignal(w2.load_from(kept).succeeded, timeout=10000):
        pass
    assert np.array_equal(w2.prompt_panel.canvas.cells, drawn) and w2.prompt_panel.use_sketch.isChecked()
    assert closed(qtbot, w2) and len(list(autosave.glob("*.wbsession"))) == 1  # the session holds it: not kept again


def test_an_autosave_still_running_as_the_window_closes_leaves_no_running_file(qtbot, host, tmp_path, monkeypatch, autosave):
    """The close started the queued autosave, which wrote the whole session after the close removed the file when it
    outlived the close's wait: the next start reported a clean close as a crash."""
    from PySide6.QtCore import QThread

    from editor_gui.jobs import Job

    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w)
    job = w.autosave_now()  # queued for the next loop turn, which the close does not wait for
    monkeypatch.setattr(Job, "wait", lambda self, ms=0: False)  # the job outlives the close's wait
    assert closed(qtbot, w)
    assert QThread.wait(job, 10000)  # its callbacks never run: the application ends with its last window
    assert not list(autosave.glob("*-running-*.wbsession")) and len(list(autosave.glob("*-closed-*.wbsession"))) == 1


def test_save_and_open_remove_the_running_autosave_so_a_crash_soon_after_offers_no_copy(qtbot, host, tmp_path,
                                                                                          monkeypatch, autosave):
    """It went only on the next 30 s tick: a crash before it left a -crashed- copy of work already saved or kept."""
    w = open_window(qtbot, host.address)
    for finish in (lambda: w.save_to(tmp_path / "saved.wbsession"), lambda: w.load_from(tmp_path / "saved.wbsession")):
        record_unsaved(qtbot, w, w._unsaved + 3)
        with qtbot.waitSignal(w.autosave_now().succeeded, timeout=10000):
            pass
        assert len(list(autosave.glob("*-running-*.wbsession"))) == 1
        with qtbot.waitSignal(finish().succeeded, timeout=10000):
            pass
        qtbot.waitUntil(lambda: not w._unsaved, timeout=10000)
        assert not list(autosave.glob("*-running-*.wbsession"))


def test_every_autosave_crashed_editors_left_is_named_at_the_next_start(qtbot, host, tmp_path, monkeypatch, autosave):
    autosave.mkdir()
    for name in ("20260101-000000-running-11.wbsession", "20260101-000001-running-12.wbsession"):
        model_session(autosave / name)
    w = open_window(qtbot, host.address, autostart=False)
    message = w.statusBar().currentMessage()
    assert message.startswith("2 editors that ended without closing") and message.endswith("(File ▸ Open… them)")
    assert all(str(autosave / f"20260101-00000{i}-crashed-1{i + 1}.wbsession") in message for i in (0, 1))


def test_a_long_periodic_autosave_holds_the_next_back_ten_times_its_duration(qtbot, host, tmp_path, monkeypatch, autosave):
    """Each 30 s tick re-stacked and recompressed every recorded frame: seconds of a core per tick at 20,000 frames."""
    import time

    real = Session.save
    monkeypatch.setattr(Session, "save", lambda self, path, progress=None: (time.sleep(0.3), real(self, path, progress))[1])  # a big session
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w)
    began = time.monotonic()
    with qtbot.waitSignal(w._autosave_tick().succeeded, timeout=10000):
        pass
    assert w._autosave_due >= began + 10 * 0.3
    record_unsaved(qtbot, w, w._unsaved + 2)  # more work, but the tick comes too soon after a long autosave
    assert w._autosave_tick() is None and w.autosave_now() is not None  # an explicit autosave is not held back


def test_two_windows_in_one_second_keep_their_own_autosaves(qtbot, host, tmp_path, monkeypatch, autosave):
    """Names were time to the second + PID: two windows of one process shared one running file and lock, and the
    second close overwrote the first one's kept work."""
    import editor_gui.main_window as mw

    monkeypatch.setattr(mw.time, "strftime", lambda fmt, *a: "20260101-000000")  # everything within one second
    w1, w2 = open_window(qtbot, host.address), open_window(qtbot, host.address)
    record_unsaved(qtbot, w1, 3)
    record_unsaved(qtbot, w2, 8)
    for w in (w1, w2):
        with qtbot.waitSignal(w.autosave_now().succeeded, timeout=10000):
            pass
    assert w1._running != w2._running and w1._running_lock is not None and w2._running_lock is not None
    assert len(list(autosave.glob("*-running-*.wbsession"))) == 2
    assert closed(qtbot, w1)
    assert [p.name for p in autosave.glob("*-running-*.wbsession")] == [w2._running.name]  # w2's crash copy stays
    assert closed(qtbot, w2)  # w2 played on while w1 closed
    frames = [len(w.session.recorded(w.session.live)) for w in (w1, w2)]
    kept = [Session.load(p) for p in autosave.glob("*-closed-*.wbsession")]
    assert len(kept) == 2 and sorted(len(s.recorded(s.live)) for s in kept) == sorted(frames)


def test_save_open_and_new_world_end_the_hold_a_long_autosave_put_on_the_next(qtbot, host, tmp_path, monkeypatch, autosave):
    """_autosave_due was never reset: one long autosave suspended the 30 s protection of a small session after it."""
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w)
    w._autosave_due = float("inf")  # the last autosave took very long
    with qtbot.waitSignal(w.save_to(tmp_path / "saved.wbsession").succeeded, timeout=10000):
        pass
    assert w._autosave_due == 0.0
    w._autosave_due = float("inf")
    with qtbot.waitSignal(w.load_from(tmp_path / "saved.wbsession").succeeded, timeout=10000):
        pass
    qtbot.waitUntil(lambda: w._autosave_due == 0.0, timeout=10000)
    w._autosave_due = float("inf")
    w.new_world(PromptSpec(seed=4))
    assert w._autosave_due == 0.0


def saving_slowly(monkeypatch, seconds: float):
    """Every recorded frame a save writes takes `seconds` (a big session); returns the real encoder to put back."""
    import time

    from editor_gui import session_store

    real = session_store._frames_npz
    monkeypatch.setattr(session_store, "_frames_npz", lambda recs, progress, done, total: real(
        recs, lambda d, t: (time.sleep(seconds), progress is None or progress(d, t))[1], done, total))
    return real


def test_closing_during_a_long_autosave_cancels_it_within_a_frame_and_it_leaves_nothing(qtbot, host, tmp_path,
                                                                                        monkeypatch, autosave):
    """The autosave's save could not stop: one longer than the close's 10 s wait outlived the window and Qt aborted the
    editor at exit (a QThread destroyed while running)."""
    import time

    from editor_gui import session_store

    real = saving_slowly(monkeypatch, 0.5)
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w, 8)
    job = w.autosave_now()
    qtbot.waitUntil(job.isRunning, timeout=5000)
    monkeypatch.setattr(session_store, "_frames_npz", real)  # the close's own keep is fast
    began = time.monotonic()
    assert closed(qtbot, w)
    assert job.isFinished() and time.monotonic() - began < 3  # it stopped within a frame, not after all 8
    assert [p.name for p in autosave.iterdir()] == [p.name for p in autosave.glob("*-closed-*.wbsession")]  # no temp file


def test_cancelling_a_save_keeps_the_file_saved_before_and_says_so(qtbot, host, tmp_path, monkeypatch, autosave):
    """Save's dialog had a Cancel that did nothing: a long session's save could only be waited out."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QProgressDialog, QPushButton

    from editor_gui import session_store

    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w, 3)
    path = tmp_path / "saves" / "mine.wbsession"
    with qtbot.waitSignal(w.save_to(path).succeeded, timeout=10000):
        pass
    before = path.read_bytes()
    record_unsaved(qtbot, w, 8)
    real = saving_slowly(monkeypatch, 0.3)
    job = w.save_to(path)
    qtbot.waitUntil(lambda: any(d.isVisible() for d in w.findChildren(QProgressDialog)), timeout=10000)
    dialog = next(d for d in w.findChildren(QProgressDialog) if d.isVisible())
    with qtbot.waitSignal(job.errored, timeout=10000):
        qtbot.mouseClick(dialog.findChild(QPushButton), Qt.MouseButton.LeftButton)
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == ["mine.wbsession"]  # no temp
    message = w.statusBar().currentMessage()
    assert "Saving mine.wbsession was cancelled" in message and f"the old {path} is kept" in message, message
    assert w._unsaved >= 8  # the work is still unsaved: closing keeps it
    monkeypatch.setattr(session_store, "_frames_npz", real)
    with qtbot.waitSignal(w.save_to(path).succeeded, timeout=10000):
        pass
    assert len(Session.load(path).recorded(0)) == len(w.session.recorded(0)) and w._unsaved == 0
    assert f"Saved {path}" in w.statusBar().currentMessage()


def test_closing_during_a_save_waits_for_it_and_then_closes(qtbot, host, tmp_path, monkeypatch, autosave):
    """Now that a save can be cancelled, the close must not cancel it for the user: it waits, as for an export."""
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w, 5)
    saving_slowly(monkeypatch, 0.2)
    path = tmp_path / "mine.wbsession"
    job = w.save_to(path)
    qtbot.waitUntil(job.isRunning, timeout=10000)
    assert not w.close() and "closes when it is done" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=20000)
    assert len(Session.load(path).recorded(0)) >= 5


def reading_slowly(monkeypatch, seconds: float) -> None:
    """Every recorded frame an open reads takes `seconds` (a big session)."""
    import time

    from editor_gui import session_store

    real = getattr(session_store, "_npz_frames", None)
    monkeypatch.setattr(session_store, "_npz_frames", lambda data, progress, done, total: real(
        data, lambda d, t: (time.sleep(seconds), progress is None or progress(d, t))[1], done, total), raising=False)


def cancel_when_shown(w, then=None):
    """Click Cancel on the window's progress dialog as soon as it shows, also while close() or a slot waits on it;
    `then()` runs right after the click."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QProgressDialog, QPushButton

    timer = QTimer(w)

    def poll() -> None:
        for dialog in w.findChildren(QProgressDialog):
            if dialog.isVisible():
                timer.stop()
                dialog.findChild(QPushButton).click()
                if then is not None:
                    then()

    timer.timeout.connect(poll)
    timer.start(50)
    return timer


def left_in(folder: Path) -> list[str]:
    """What a keep left in the autosave folder, leaving out the running autosave the timer may write."""
    return sorted(p.name for p in folder.iterdir() if "-running-" not in p.name) if folder.exists() else []


def test_closing_with_a_long_recording_to_keep_shows_progress_and_cancel_keeps_the_window_open(qtbot, host, tmp_path,
                                                                                               monkeypatch, autosave):
    """Closing kept the unsaved work on the UI thread with no progress: with a lot of it the window froze, and there
    was no way back to it."""
    from editor_gui import session_store

    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w, 8)
    mine, unsaved = w.session, w._unsaved
    real = saving_slowly(monkeypatch, 0.3)
    cancel_when_shown(w)
    assert not closed(qtbot, w) and w.isVisible()
    assert w.session is mine and w._unsaved >= unsaved and left_in(autosave) == []  # nothing kept, no temp file
    message = w.statusBar().currentMessage()
    assert "Keeping the unsaved recording was cancelled" in message and "still in the window" in message, message
    monkeypatch.setattr(session_store, "_frames_npz", real)
    assert closed(qtbot, w)  # closing again keeps it, as before
    (kept,) = autosave.glob("*-closed-*.wbsession")
    assert len(Session.load(kept).recorded(0)) >= unsaved


def test_cancelling_an_open_that_keeps_unsaved_work_leaves_the_session_in_the_window_as_it_was(qtbot, host, tmp_path,
                                                                                              monkeypatch, autosave):
    """Open…'s Cancel did nothing while it kept the unsaved recording: the open went on and replaced the session."""
    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w, 8)
    mine, live, unsaved = w.session, w.session.live, w._unsaved
    saving_slowly(monkeypatch, 0.3)
    job = w.load_from(tmp_path / "model.wbsession")
    cancel_when_shown(w)
    with qtbot.waitSignal(job.errored, timeout=20000):
        pass
    assert w.session is mine and w.session.live == live and w._unsaved >= unsaved and left_in(autosave) == []
    message = w.statusBar().currentMessage()
    assert "Opening model.wbsession was cancelled: the session in the window is as it was" in message, message


def test_cancelling_an_open_while_it_reads_the_file_leaves_the_session_in_the_window_as_it_was(qtbot, host, tmp_path,
                                                                                              monkeypatch):
    """Open…'s Cancel did nothing while a big session was read: it could only be waited out."""
    model_session(tmp_path / "model.wbsession", frames=6)
    w = open_window(qtbot, host.address, mode="step")
    mine = w.session
    reading_slowly(monkeypatch, 0.3)
    job = w.load_from(tmp_path / "model.wbsession")
    cancel_when_shown(w)
    with qtbot.waitSignal(job.errored, timeout=20000):
        pass
    assert w.session is mine and w.session.backend_kind == "sandbox"
    assert "Opening model.wbsession was cancelled" in w.statusBar().currentMessage()


def test_a_cancelled_save_says_what_it_left_as_it_is_when_it_stops(qtbot, host, tmp_path, monkeypatch):
    """The wording was chosen when the save began: a file saved at that name meanwhile was said not to be there."""
    import shutil

    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w, 8)
    with qtbot.waitSignal(w.save_to(tmp_path / "other.wbsession").succeeded, timeout=10000):
        pass
    saving_slowly(monkeypatch, 0.3)
    path = tmp_path / "mine.wbsession"
    job = w.save_to(path)  # a new name
    qtbot.waitUntil(job.isRunning, timeout=10000)
    shutil.copy(tmp_path / "other.wbsession", path)  # another save lands there first
    job.cancelled = True
    with qtbot.waitSignal(job.errored, timeout=10000):
        pass
    assert path.read_bytes() == (tmp_path / "other.wbsession").read_bytes()
    message = w.statusBar().currentMessage()
    assert f"Saving mine.wbsession was cancelled: the old {path} is kept as it was" in message, message


def test_a_job_that_runs_to_the_end_was_not_cancelled(qtbot, host):
    """Closing the progress dialog of a finished job emitted its Cancel: every job that had a dialog read as cancelled."""
    w = open_window(qtbot, host.address)
    job = w.run_job("Counting", lambda progress: (progress(1, 2), progress(2, 2), 7)[-1])
    with qtbot.waitSignal(job.succeeded, timeout=10000) as got:
        pass
    assert got.args == [7] and not job.cancelled and not job.error


def test_opens_progress_only_moves_forward_from_reading_the_file_to_keeping_the_unsaved_work(qtbot, host, tmp_path,
                                                                                              autosave):
    """Open…'s bar filled while the file was read, then went back to 0 to keep the unsaved recording."""
    model_session(tmp_path / "model.wbsession", frames=6)
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w, 3)
    job = w.load_from(tmp_path / "model.wbsession")
    seen: list[tuple[int, int]] = []
    job.progressed.connect(lambda done, total: seen.append((done, total)))
    with qtbot.waitSignal(job.succeeded, timeout=20000):
        pass
    assert len({total for _, total in seen}) == 1, seen  # one total for reading and keeping
    assert [done for done, _ in seen] == sorted(done for done, _ in seen) and seen[-1][0] == seen[-1][1], seen


def test_closing_holds_the_world_while_it_keeps_the_work_and_cancel_lets_it_play_on(qtbot, host, tmp_path,
                                                                                    monkeypatch, autosave, capsys):
    """The close's keep ran in a nested event loop: frames went on arriving, were added to the session after its copy
    was taken, and were thrown away unsaved with the window; an Open… begun meanwhile still read its file."""
    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address)
    w.timeline.record.setChecked(True)  # recording all along: every frame that arrives is work
    qtbot.waitUntil(lambda: w._unsaved >= 5, timeout=10000)
    from editor_gui import session_store

    real = saving_slowly(monkeypatch, 0.3)
    loads = []
    monkeypatch.setattr(Session, "load", lambda *a, **kw: loads.append(a))
    assert not w.close() and w.isVisible()  # the keep runs, the window live
    frames, unsaved = len(w.session.recorded(0)), w._unsaved
    assert w.mode == "step" and w.pause_action.isChecked()  # the world waits for the keep
    assert w.load_from(tmp_path / "model.wbsession") is None and not loads  # refused up front: nothing read
    assert "model.wbsession was not opened: wait for keeping the unsaved recording to finish" in \
        w.statusBar().currentMessage()
    assert not w.timeline.load_btn.isEnabled() and not w.new_action.isEnabled()
    qtbot.wait(500)
    assert len(w.session.recorded(0)) == frames and w._unsaved == unsaved  # nothing recorded after the copy
    cancel_when_shown(w)
    qtbot.waitUntil(lambda: w._held is None, timeout=20000)
    monkeypatch.setattr(session_store, "_frames_npz", real)
    assert w.isVisible() and w.mode == "realtime" and w.timeline.load_btn.isEnabled()  # it plays on
    qtbot.waitUntil(lambda: len(w.session.recorded(0)) > frames, timeout=10000)  # and records again
    w.timeline.record.setChecked(False)
    assert "Keeping the unsaved recording was cancelled" in capsys.readouterr().err


def test_a_close_during_an_open_closes_the_window_when_it_ends_and_open_writes_the_work_once(qtbot, host, tmp_path,
                                                                                            monkeypatch, autosave):
    """Open… kept the work on its thread, then kept it all again in a second autosave for the frames recorded while
    the file was read; a close during it nested a second event loop, and then was dropped: `play --session X
    --quit-after N` never quit when the open outlasted N."""
    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address)
    w.timeline.record.setChecked(True)  # frames keep arriving while the file is read
    qtbot.waitUntil(lambda: w._unsaved >= 3, timeout=10000)
    mine = w.session
    reading_slowly(monkeypatch, 0.3)
    job = w.load_from(tmp_path / "model.wbsession")
    frames = len(mine.recorded(0))
    assert w.mode == "step"  # the world waits for the open
    assert not w.close() and w.isVisible()
    assert "Opening model.wbsession: the window closes when it is done" in w.statusBar().currentMessage()
    with qtbot.waitSignal(job.succeeded, timeout=20000):
        pass
    (replaced,) = left_in(autosave)  # one keep, holding every frame recorded when Open… began
    assert "-replaced-" in replaced and len(Session.load(autosave / replaced).recorded(0)) == frames
    assert w.session.backend_kind == "world_model" and w._unsaved == 0
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10000)  # the close went ahead once the open ended
    assert left_in(autosave) == [replaced]  # the opened session was unchanged: nothing kept


def test_a_close_waiting_for_an_export_closes_the_window_when_an_open_begun_meanwhile_ends(qtbot, host, tmp_path,
                                                                                         monkeypatch):
    """The export ending during the Open… left the close pending for good: a later job's end closed the window out of
    the blue, and a later close no longer waited for an export."""
    from test_editor_followups import exporting_slowly

    w, gate = exporting_slowly(qtbot, host, tmp_path, monkeypatch)
    assert not w.close() and w.isVisible()
    model_session(tmp_path / "model.wbsession")
    reading_slowly(monkeypatch, 0.3)
    job = w.load_from(tmp_path / "model.wbsession")
    gate.set()  # the export ends while the file is read
    with qtbot.waitSignal(job.succeeded, timeout=20000):
        pass
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10000)
    assert (tmp_path / "a.gif").is_file()


def test_frames_made_before_the_hold_paused_the_world_are_recorded_and_the_close_keeps_them(qtbot, host, tmp_path,
                                                                                          monkeypatch, autosave):
    """A hold dropped the frames realtime made before its pause landed: the live branch got a hole (…5, 7…) that a
    rebuild refuses, their events stayed pending and their settings note was lost."""
    from editor_gui import session_store

    w = open_window(qtbot, host.address)
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: w._unsaved >= 5, timeout=10000)
    real = saving_slowly(monkeypatch, 0.3)
    cancel_when_shown(w)
    assert not closed(qtbot, w)  # cancelled: the window plays on
    monkeypatch.setattr(session_store, "_frames_npz", real)
    n = len(live_frames(w))
    qtbot.waitUntil(lambda: len(live_frames(w)) > n + 3, timeout=10000)
    indices = [r.index for r in live_frames(w)]
    assert indices == list(range(indices[0], indices[0] + len(indices)))  # no hole
    saving_slowly(monkeypatch, 0.05)  # the pause lands while the first copy is written
    assert closed(qtbot, w) and w._unsaved == 0
    (kept,) = autosave.glob("*-closed-*.wbsession")  # frames that came after the copy went into the same file
    saved = Session.load(kept)
    assert len(saved.path(saved.live)) == len(live_frames(w))


def test_every_action_waits_for_the_hold_and_the_hold_pauses_without_loading_the_text_encoder(qtbot, host, tmp_path,
                                                                                             monkeypatch, autosave):
    """Resume, the mode box and Save… were not gated during a hold (a Resume played with every frame dropped), Open…
    went while a New world was on its way, and the hold paused through Pause, loading the text encoder as the window
    closed."""
    from editor_gui.main_window import MainWindow, StartOptions

    model_session(tmp_path / "model.wbsession")
    warmed = []
    w = add_window(qtbot, MainWindow(host.address, StartOptions(backend="sandbox"), warm_text=lambda: warmed.append(1)))
    w.show()
    qtbot.waitUntil(lambda: w.viewport.frame is not None, timeout=10000)
    record_unsaved(qtbot, w, 3)
    saving_slowly(monkeypatch, 0.3)
    assert not w.close() and w._held is not None and w.mode == "step" and warmed == []
    wait = "Wait for keeping the unsaved recording to finish"
    w.set_paused(False)
    assert w.mode == "step" and w.pause_action.isChecked() and wait in w.statusBar().currentMessage()
    w.change_settings({"mode": "realtime"})
    assert w.mode == "step" and w.settings_panel.mode.currentText() == "step"
    assert all(asked.get("mode") != "realtime" for asked in w.asked_settings)
    assert w.save_to(tmp_path / "mine.wbsession") is None and not (tmp_path / "mine.wbsession").exists()
    w.step_once()
    assert wait in w.statusBar().currentMessage()
    cancel_when_shown(w)
    qtbot.waitUntil(lambda: w._held is None, timeout=20000)
    assert w.mode == "realtime" and warmed == []  # the world the hold paused plays on
    w.new_action.trigger()
    assert w.starting and w.load_from(tmp_path / "model.wbsession") is None
    assert "wait for the new world to start" in w.statusBar().currentMessage()


def test_a_session_whose_prompt_seed_is_out_of_range_does_not_open(qtbot, host, tmp_path):
    """Its seed raised in the Prompt panel inside the open's slot: the window was left half-loaded."""
    s = Session(backend_kind="sandbox", width=64, height=64)
    root = s.new_root(PromptSpec(seed=-1, backend="sandbox"))
    root.frames[0] = FrameRecord(0, 0, image=np.zeros((64, 64, 3), np.uint8))
    s.save(tmp_path / "bad.wbsession")
    w = open_window(qtbot, host.address, autostart=False)
    before = w.session
    with qtbot.waitSignal(w.load_from(tmp_path / "bad.wbsession").errored, timeout=20000):
        pass
    assert w.session is before and w._held is None
    assert "branch 0's prompt has seed -1" in w.statusBar().currentMessage()


def test_an_export_still_running_when_the_close_stops_waiting_is_said_to_be_cancelled(qtbot, host, tmp_path,
                                                                                      monkeypatch, capfd):
    """A job the close's wait gave up on had no error yet, so stderr said nothing of the export it cut off."""
    from PySide6.QtCore import QThread
    from test_editor_followups import exporting_slowly

    from editor_gui.jobs import Job

    w, gate = exporting_slowly(qtbot, host, tmp_path, monkeypatch)
    (job,) = [j for j in w.jobs if j.keeps_window]
    assert not w.close()
    monkeypatch.setattr(Job, "wait", lambda self, ms=0: False)  # it outlives the close's wait
    assert closed(qtbot, w)
    assert "Exporting a.gif was cancelled as the window closed: nothing was written" in capfd.readouterr().err
    gate.set()
    assert QThread.wait(job, 10000) and not (tmp_path / "a.gif").exists()


def pausing_late(monkeypatch, late: float | threading.Event) -> list[int]:
    """The hold's pause reaches the host `late` (seconds, or once the Event is set) while its world plays on (a busy
    host or network); returns the index of every frame the worker hands to the window from now on."""
    import time

    from bridge.client import WorldClient
    from editor_gui.worker import WorldWorker

    settings, emit, handed = WorldClient.settings, WorldWorker._emit_frame, []
    delay = (lambda: late.wait(20)) if isinstance(late, threading.Event) else (lambda: time.sleep(late))
    monkeypatch.setattr(WorldClient, "settings", lambda client, **kw: (
        kw.get("mode") == "step" and delay(), settings(client, **kw))[1])
    monkeypatch.setattr(WorldWorker, "_emit_frame", lambda worker, f: (handed.append(f.index), emit(worker, f))[1])
    return handed


def refusing_pauses(monkeypatch) -> list[dict]:
    """The host refuses every `mode: step` (its world plays on); returns each pause asked for."""
    from bridge.client import WorldClient

    settings, asked = WorldClient.settings, []

    def refusing(client, **kw):
        if kw.get("mode") == "step":
            asked.append(kw)
            raise RuntimeError("this host does not pause")
        return settings(client, **kw)

    monkeypatch.setattr(WorldClient, "settings", refusing)
    return asked


def last_kept(path: Path) -> int:
    kept = Session.load(path)
    return kept.recorded(kept.live)[-1].index


def test_open_keeps_the_frames_the_world_made_before_its_pause_landed(qtbot, host, tmp_path, monkeypatch, autosave):
    """Open… took its copy as it began: the frames realtime made before the pause landed went into the old session
    after the copy, and were lost when the opened session replaced it."""
    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address)
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: w._unsaved >= 3, timeout=10000)
    handed = pausing_late(monkeypatch, 0.5)
    with qtbot.waitSignal(w.load_from(tmp_path / "model.wbsession").succeeded, timeout=20000):
        pass
    (replaced,) = left_in(autosave)
    assert handed and last_kept(autosave / replaced) == handed[-1]


def test_a_close_keeps_the_frames_the_world_made_before_its_pause_landed(qtbot, host, tmp_path, monkeypatch, autosave):
    """A close's keep could end before the host confirmed the pause: a frame still on its way came after the window
    shut down and was not kept."""
    w = open_window(qtbot, host.address)
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: w._unsaved >= 3, timeout=10000)
    handed = pausing_late(monkeypatch, 0.5)
    assert closed(qtbot, w)
    (kept,) = autosave.glob("*-closed-*.wbsession")
    assert handed and last_kept(kept) == handed[-1]


def test_a_hold_the_host_does_not_answer_copies_what_there_is_and_says_so(qtbot, host, tmp_path, monkeypatch, autosave,
                                                                         capsys):
    """The host answers no pause (a lost connection, a hung host): Open… still goes, the copy taken after the editor's
    host timeout, and the status bar and stderr say frames made after it may be missing."""
    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address, timeout=0.5)
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: w._unsaved >= 3, timeout=10000)
    pausing_late(monkeypatch, 2.0)
    with qtbot.waitSignal(w.load_from(tmp_path / "model.wbsession").succeeded, timeout=20000):
        pass
    assert "the host did not confirm the pause within 0.5 s" in capsys.readouterr().err
    assert len(left_in(autosave)) == 1 and w.session.backend_kind == "world_model"


def test_a_close_after_a_hold_whose_pause_was_not_confirmed_still_keeps_a_step_frame_on_its_way(qtbot, host, tmp_path,
                                                                                                monkeypatch, autosave):
    """An Open… whose pause the host did not confirm in time cleared the note that something went to the host: a later
    close in step mode, nothing unsaved, shut the window at once, and the frame of a step still on its way was lost."""
    from bridge.client import WorldClient

    bad = Session(backend_kind="sandbox", width=64, height=64)
    bad.new_root(PromptSpec(seed=-1, backend="sandbox"))  # an open that fails once the hold took its copy
    bad.save(tmp_path / "bad.wbsession")
    w = open_window(qtbot, host.address, mode="step", timeout=1.0)
    w.timeline.record.setChecked(True)
    with qtbot.waitSignal(w.save_to(tmp_path / "a.wbsession").succeeded, timeout=10000):
        pass
    gate, act = threading.Event(), WorldClient.act
    monkeypatch.setattr(WorldClient, "act", lambda client, *a, **kw: (gate.wait(20), act(client, *a, **kw))[1])
    try:
        last = live_frames(w)[-1].index
        w.step_action.trigger()  # held up on its way: the host makes its frame once the gate opens
        with qtbot.waitSignal(w.load_from(tmp_path / "bad.wbsession").errored, timeout=20000):  # pause: 1 s, no answer
            pass
        assert w._unsaved == 0 and live_frames(w)[-1].index == last
        assert not w.close() and w._held is not None  # the close waits for the frame still on its way
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=20000)
    (kept,) = autosave.glob("*-closed-*.wbsession")
    assert last_kept(kept) == last + 1


def test_a_close_whose_pause_is_not_confirmed_keeps_the_work_once_and_closes(qtbot, host, tmp_path, monkeypatch,
                                                                            autosave, capsys):
    """Each keep after an unconfirmed pause leaves the pause unanswered: the close must not hold the world and wait for
    another one, and another, for as long as the host stays slow."""
    w = open_window(qtbot, host.address, timeout=0.5)
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: w._unsaved >= 3, timeout=10000)
    pausing_late(monkeypatch, 2.0)
    assert not w.close()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10000)
    assert capsys.readouterr().err.count("did not confirm the pause") == 1
    (kept,) = autosave.glob("*-closed-*.wbsession")
    assert Session.load(kept).recorded(0)


def test_a_close_whose_host_is_lost_before_it_confirms_the_pause_still_keeps_the_work_and_closes(qtbot, host, tmp_path,
                                                                                                  monkeypatch, autosave,
                                                                                                  capsys):
    w = open_window(qtbot, host.address)
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: w._unsaved >= 3, timeout=10000)
    pausing_late(monkeypatch, 1.0)
    assert not w.close() and w._held is not None and not list(autosave.glob("*-closed-*"))  # waiting for the pause
    w.on_connection_lost("the host stopped answering")
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10000)
    assert "went away before it confirmed the pause" in capsys.readouterr().err
    (kept,) = autosave.glob("*-closed-*.wbsession")
    assert Session.load(kept).recorded(0)[-1].index == w.session.recorded(0)[-1].index  # the lost world's branch


def test_a_close_right_after_a_save_while_recording_keeps_the_frames_still_on_their_way(qtbot, host, tmp_path,
                                                                                        monkeypatch, autosave):
    """With nothing unsaved at the instant of the close (just saved), the close did not hold the world: a realtime
    frame still on its way came after the window shut down and was lost, recording on."""
    w = open_window(qtbot, host.address)
    with qtbot.waitSignal(w.save_to(tmp_path / "a.wbsession").succeeded, timeout=10000):
        pass
    handed = pausing_late(monkeypatch, 0.5)  # frames keep coming until the pause lands
    w.timeline.record.setChecked(True)
    assert w._unsaved == 0 and closed(qtbot, w)
    (kept,) = autosave.glob("*-closed-*.wbsession")
    assert handed and last_kept(kept) == handed[-1]


def test_a_close_after_the_host_was_found_gone_keeps_the_work_without_waiting_for_a_pause(qtbot, tmp_path, autosave,
                                                                                        capsys):
    """A settings request the lost host never answered was taken for the close's pause: the close waited the whole
    host timeout for it before keeping the work, with the host known gone."""
    from bridge.host.server import run_host_in_thread

    h = run_host_in_thread("sandbox", "tcp://127.0.0.1:*")
    w = open_window(qtbot, h.address, timeout=1.0)
    record_unsaved(qtbot, w, 3)
    h.stop()
    w.set_paused(True)  # never answered: waiting for it is how the editor finds the host gone
    qtbot.waitUntil(lambda: w.welcome is None, timeout=15000)
    assert closed(qtbot, w)
    assert "did not confirm the pause" not in capsys.readouterr().err  # no pause was waited for
    (kept,) = autosave.glob("*-closed-*.wbsession")
    assert len(Session.load(kept).recorded(0)) == len(w.session.recorded(0))


def test_cancel_while_a_close_waits_for_the_pause_gives_the_window_back_at_once(qtbot, host, tmp_path, monkeypatch,
                                                                               autosave):
    """A host slow to pause (or dead, not yet noticed): Cancel closed the dialog, but the window stayed held, the world
    paused and every action refused, until the answer came or the host timeout ran out."""
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w, 3)
    clicked = threading.Event()
    pausing_late(monkeypatch, clicked)  # the pause lands only after the Cancel
    held_after_cancel = []
    cancel_when_shown(w, lambda: (held_after_cancel.append(w._held), clicked.set()))
    assert not w.close() and w._held is not None
    qtbot.waitUntil(lambda: bool(held_after_cancel), timeout=10000)
    assert held_after_cancel == [None] and w.isVisible() and not left_in(autosave)
    assert w.timeline.load_btn.isEnabled()  # the window acts again


def test_a_close_whose_pause_the_host_refuses_closes_keeping_what_arrived(qtbot, host, tmp_path, monkeypatch, autosave,
                                                                          capsys):
    """Recording in realtime with nothing unsaved, a host that refuses `mode: step`: the refusal put the mode back to
    realtime, the keep found nothing, its close held the world again, and again: the window never closed."""
    w = open_window(qtbot, host.address)
    with qtbot.waitSignal(w.save_to(tmp_path / "a.wbsession").succeeded, timeout=10000):
        pass
    asked = refusing_pauses(monkeypatch)
    w.timeline.record.setChecked(True)
    assert w._unsaved == 0
    w.close()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10000)
    qtbot.wait(300)
    assert len(asked) == 1  # one hold, not one after another
    assert "refused the pause" in capsys.readouterr().err
    kept = list(autosave.glob("*-closed-*.wbsession"))  # what arrived before the refusal, if anything did
    assert len(kept) <= 1


def test_a_world_plays_at_its_own_rate_unless_the_user_picks_one_and_the_editor_says_which(qtbot, host):
    """The editor asked every world for 24 fps, so a world trained on 15 fps footage played 1.6x too fast: with no
    --fps each world plays at its own rate, and Settings and the fps figures say so; a rate the user picks is kept."""
    from click.testing import CliRunner

    from bridge.worlds.sandbox import SANDBOX_FPS
    from editor_gui.app import play
    from editor_gui.main_window import StartOptions

    assert StartOptions().fps is None and "the world's own rate" in " ".join(CliRunner().invoke(play, ["--help"]).output.split())
    w = open_window(qtbot, host.address, fps=None)
    assert w.info["fps"] == SANDBOX_FPS and w.settings_panel.fps.value() == SANDBOX_FPS
    assert w.settings_panel.fps_note.text() == "the world's own rate"
    assert w.viewport.stats.text(0).endswith(f"/{SANDBOX_FPS} fps (world's own)   frame 0")
    w.settings_panel.fps.setValue(20.0)
    qtbot.waitUntil(lambda: w.settings_panel.fps_note.text() == "" and not w.asked_settings, timeout=20000)
    assert w.viewport.stats.text(0).endswith("/20 fps   frame 0")
    old = w.info["session_id"]
    w.new_world(PromptSpec(seed=4))
    qtbot.waitUntil(lambda: w.info is not None and w.info["session_id"] != old, timeout=20000)
    assert w.info["fps"] == 20.0 and w.settings_panel.fps_note.text() == ""  # the user's rate, not the world's
    w.set_paused(True)
    qtbot.waitUntil(lambda: not w.asked_settings and w.mode == "step", timeout=20000)
    assert "/" not in w.viewport.stats.text(0).split("   ")[0]  # step mode has no rate to keep to


class TenFpsWorld(SandboxWorld):
    """TEST-ONLY: a world model whose footage ran at 10 fps in 128 px frames (the sandbox game's frames under that
    name), so one host serves worlds at two rates and two sizes: this one at 10 and 128 px, the sandbox at 15 and 64."""

    kind, name, fps = "world_model", "ten fps test world", 10

    def __init__(self, size: int = 128, seed: int = 0):
        super().__init__(size, seed)


@pytest.fixture(scope="module")
def two_rate_host(tmp_path_factory):
    from bridge.host.server import run_host_in_thread

    h = run_host_in_thread(TenFpsWorld, "tcp://127.0.0.1:*", recordings_dir=tmp_path_factory.mktemp("recordings"))
    yield h
    h.stop()


def record_live(qtbot, w, n: int = 3) -> int:
    """Record `n` frames of the live world; its branch."""
    live = w.session.live
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: len(w.session.recorded(live)) >= n, timeout=20000)
    w.timeline.record.setChecked(False)
    return live


def exported_rates(qtbot, w, branch: int, tmp_path: Path) -> tuple[float, float]:
    """(the action log's fps, the MP4's fps) of a branch exported."""
    import json

    import imageio.v3 as iio

    w.timeline.show_branch(branch)
    for fmt, name in (("actions", f"b{branch}.json"), ("mp4", f"b{branch}.mp4")):
        with qtbot.waitSignal(w.export_to(fmt, tmp_path / name).succeeded, timeout=30000):
            pass
    return json.loads((tmp_path / f"b{branch}.json").read_text())["fps"], iio.immeta(tmp_path / f"b{branch}.mp4")["fps"]


def test_each_world_exports_replays_rebuilds_and_saves_at_its_own_rate(qtbot, two_rate_host, tmp_path):
    """One session-wide rate, overwritten by each new world: after a 10 fps world, a 15 fps sandbox branch exported
    and replayed at 10 (1.5x too slow) and its rebuild asked the host for 10; a Settings rate change reached no
    export. Each world's branches keep the rate they played at, in the saved file too."""
    from bridge.worlds.sandbox import SANDBOX_FPS

    w = open_window(qtbot, two_rate_host.address, fps=None)
    assert w.info["fps"] == SANDBOX_FPS
    sandbox = record_live(qtbot, w)
    w.new_world(PromptSpec(seed=4), backend="world_model")
    qtbot.waitUntil(lambda: w.info is not None and w.info["backend_kind"] == "world_model", timeout=20000)
    assert w.info["fps"] == 10
    model = record_live(qtbot, w)
    assert exported_rates(qtbot, w, sandbox, tmp_path) == (SANDBOX_FPS, SANDBOX_FPS)
    assert exported_rates(qtbot, w, model, tmp_path) == (10, 10)
    w.timeline.show_branch(sandbox)
    w.timeline.replay_btn.click()
    assert w.timeline.replay_timer.interval() == int(1000 / SANDBOX_FPS)
    w.timeline.stop_replay()
    with qtbot.waitSignal(w.save_to(tmp_path / "s.wbsession").succeeded, timeout=30000):
        pass
    saved = Session.load(tmp_path / "s.wbsession")
    assert (saved.fps_of(sandbox), saved.fps_of(model)) == (SANDBOX_FPS, 10)
    assert saved.fps == w.session.fps_of(w.session.live)  # the one rate an older editor opens the file at: the newest
    w.resimulate(sandbox, 2)  # the sandbox world again, at its own rate
    qtbot.waitUntil(lambda: w.busy is None and w.info is not None and w.info["backend_kind"] == "sandbox",
                    timeout=20000)
    assert w.info["fps"] == SANDBOX_FPS
    rebuilt = record_live(qtbot, w, 4)
    w.settings_panel.fps.setValue(20.0)  # the user's rate for this branch: its exports follow, no other's
    qtbot.waitUntil(lambda: w.fps_asked == 20.0 and not w.asked_settings, timeout=20000)
    assert exported_rates(qtbot, w, rebuilt, tmp_path) == (20, 20)
    assert exported_rates(qtbot, w, sandbox, tmp_path) == (SANDBOX_FPS, SANDBOX_FPS)
    assert exported_rates(qtbot, w, model, tmp_path) == (10, 10)
    w.branch_from(sandbox, 1)  # a frame of the sandbox world on the live timeline too: the host branches its world,
    qtbot.waitUntil(lambda: w.session.live not in (rebuilt, None) and w.pending_fork is None, timeout=20000)
    assert w.session.branches[w.session.live].parent == sandbox and w.session.fps_of(w.session.live) == 20  # at 20


def test_each_world_exports_and_saves_at_its_own_frame_size(qtbot, two_rate_host, tmp_path):
    """One session-wide frame size, overwritten by each new world: after a 128 px world, a 64 px sandbox branch
    exported at the 128 px world's scale (192 px, not near 384) and the saved file gave both worlds 128 px."""
    import imageio.v3 as iio

    def exported_size(branch: int) -> tuple[int, int]:
        w.timeline.show_branch(branch)
        with qtbot.waitSignal(w.export_to("png", tmp_path / f"b{branch}").succeeded, timeout=30000):
            pass
        return iio.imread(min((tmp_path / f"b{branch}").glob("*.png"))).shape[:2]

    w = open_window(qtbot, two_rate_host.address, fps=None)
    assert (w.info["width"], w.object_panel.frame_size) == (64, (64, 64))
    sandbox = record_live(qtbot, w)
    w.new_world(PromptSpec(seed=4), backend="world_model")
    qtbot.waitUntil(lambda: w.info is not None and w.info["backend_kind"] == "world_model", timeout=20000)
    assert (w.info["width"], w.object_panel.frame_size) == (128, (128, 128))  # pasted objects fit the live world
    model = record_live(qtbot, w)
    assert (exported_size(sandbox), exported_size(model)) == ((384, 384), (384, 384))  # each scaled from its own size
    with qtbot.waitSignal(w.save_to(tmp_path / "s.wbsession").succeeded, timeout=30000):
        pass
    saved = Session.load(tmp_path / "s.wbsession")
    assert (saved.size_of(sandbox), saved.size_of(model)) == ((64, 64), (128, 128))
