"""Editor follow-ups: what a rebuild, a New world and closing the window must not lose or misreport (the real window
against real hosts, offscreen)."""

import threading
import time

import pytest
import torch
from PySide6.QtCore import Qt
from test_editor_flows import autosave, last_kept, model_session, record_unsaved  # noqa: F401 - autosave: fixture
from test_editor_gui import RIGHT, closed, focus_viewport, host, live_frames, open_window, step_keys  # noqa: F401 - host: fixture

from editor_gui.session_store import PromptSpec

torch.set_num_threads(1)
pytest.importorskip("pytestqt")


@pytest.fixture(scope="module")
def model_host():
    from bridge.host.backends import resolve_backend
    from bridge.host.server import run_host_in_thread

    h = run_host_in_thread(resolve_backend(None, None), "tcp://127.0.0.1:*")  # the embedded default world
    yield h
    h.stop()


def test_a_rebuild_does_not_list_its_replayed_events_as_fired(qtbot, host):
    w = open_window(qtbot, host.address, mode="step")
    w.timeline.record.click()
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_Right, 2)
    w.fire_event("night_falls", None)  # step mode: the event makes the next frame
    qtbot.waitUntil(lambda: any(r.events for r in live_frames(w)), timeout=20000)
    step_keys(qtbot, w, Qt.Key.Key_Right, 2)
    root, fired = w.session.live, w.events_panel.log.count()
    assert fired == 1
    w.resimulate(root, 4)  # replays the event at frame 3
    qtbot.waitUntil(lambda: w.busy is None, timeout=10000)
    assert "Branch rebuilt" in w.statusBar().currentMessage()
    assert any(r.events for r in live_frames(w))  # the rebuilt branch has the event ...
    assert w.events_panel.log.count() == fired  # ... which the user did not fire again


def test_new_world_keeps_the_users_sampling_settings(qtbot, model_host):
    w = open_window(qtbot, model_host.address, backend=None, mode="step", timeout=30.0)
    assert w.info["backend_kind"] == "world_model"
    defaults = dict(w.info["settings"])
    w.settings_panel.steps.setValue(defaults["steps"] + 3)
    w.settings_panel.temperature.setValue(0.5)
    qtbot.waitUntil(lambda: w.info is not None and w.settings_panel.steps.value() == defaults["steps"] + 3, timeout=20000)
    qtbot.waitUntil(lambda: model_host.host.sessions[w.info["session_id"]].settings["temperature"] == 0.5, timeout=20000)
    old = w.info["session_id"]
    w.new_world(PromptSpec(seed=5))
    qtbot.waitUntil(lambda: w.info is not None and w.info["session_id"] != old, timeout=30000)
    live = model_host.host.sessions[w.info["session_id"]].settings
    assert (live["steps"], live["temperature"]) == (defaults["steps"] + 3, 0.5)  # the new world runs with them
    assert (w.settings_panel.steps.value(), w.settings_panel.temperature.value()) == (defaults["steps"] + 3, 0.5)
    assert live["cfg"] == defaults["cfg"]  # what the user never changed stays the host's


def test_settings_still_on_their_way_when_new_world_is_clicked_reach_the_new_world(qtbot, model_host, monkeypatch):
    from bridge.client import WorldClient

    w = open_window(qtbot, model_host.address, backend=None, mode="step", timeout=30.0)
    send = WorldClient.settings

    def slow(self, **kw):  # the host's answer is still on its way when the user clicks New world
        time.sleep(0.3)
        return send(self, **kw)

    monkeypatch.setattr(WorldClient, "settings", slow)
    w.change_settings({"temperature": 0.5})
    assert w.kept_settings == {} and w.asked_settings  # asked, not answered yet
    old = w.info["session_id"]
    w.new_world(PromptSpec(seed=5))
    qtbot.waitUntil(lambda: w.info is not None and w.info["session_id"] != old, timeout=30000)
    assert model_host.host.sessions[w.info["session_id"]].settings["temperature"] == 0.5


def test_a_key_held_across_new_world_moves_the_new_world(qtbot, host):
    w = open_window(qtbot, host.address)
    focus_viewport(qtbot, w)
    qtbot.keyPress(w.viewport, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: live_frames(w)[-1].action == RIGHT, timeout=20000)
    old = w.info["session_id"]
    w.new_world(PromptSpec(seed=4))
    qtbot.waitUntil(lambda: w.info is not None and w.info["session_id"] != old, timeout=10000)
    qtbot.waitUntil(lambda: len(live_frames(w)) > 5, timeout=20000)
    assert live_frames(w)[-1].action == RIGHT  # still held: the new world moves right without a new press
    qtbot.keyRelease(w.viewport, Qt.Key.Key_Right)


def exporting_slowly(qtbot, host, tmp_path, monkeypatch):
    """A window exporting 3 unsaved frames to a.gif, held by the returned gate (5 s at most): it can close mid-way."""
    from editor_gui import export as exporting

    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w, 3)
    gate = threading.Event()
    real = exporting.export_gif

    def waiting(*a, **kw):
        gate.wait(5)
        return real(*a, **kw)

    monkeypatch.setattr(exporting, "export_gif", waiting)
    job = w.export_to("gif", tmp_path / "a.gif")
    qtbot.waitUntil(job.isRunning, timeout=20000)
    return w, gate


def test_closing_during_an_export_waits_for_it_and_then_closes(qtbot, host, tmp_path, monkeypatch):
    w, gate = exporting_slowly(qtbot, host, tmp_path, monkeypatch)
    assert not w.close() and w.isVisible()  # not silently cancelled: the window waits for it, and says so
    assert "closes when it is done" in w.statusBar().currentMessage()
    assert "close again to cancel" in w.statusBar().currentMessage()
    gate.set()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10000)
    assert (tmp_path / "a.gif").is_file()


def test_closing_twice_during_an_export_cancels_it_and_says_so(qtbot, host, tmp_path, monkeypatch, capfd):
    w, gate = exporting_slowly(qtbot, host, tmp_path, monkeypatch)
    assert not w.close()
    threading.Timer(0.3, gate.set).start()  # the export would go on, but the user closes again before it is done
    assert closed(qtbot, w)
    assert not (tmp_path / "a.gif").exists()
    assert "Exporting a.gif was cancelled as the window closed: nothing was written" in capfd.readouterr().err


def test_no_frame_of_a_new_world_is_made_with_the_defaults_the_user_changed(qtbot, model_host, monkeypatch):
    from bridge.client import WorldClient

    w = open_window(qtbot, model_host.address, backend=None, mode="realtime", timeout=30.0)
    w.settings_panel.temperature.setValue(0.5)
    qtbot.waitUntil(lambda: model_host.host.sessions[w.info["session_id"]].settings["temperature"] == 0.5, timeout=20000)
    send = WorldClient.settings

    def slow(self, **kw):  # settings that take a while to reach the host (a busy network)
        time.sleep(0.3)
        return send(self, **kw)

    monkeypatch.setattr(WorldClient, "settings", slow)
    old = w.info["session_id"]
    w.new_world(PromptSpec(seed=5))
    qtbot.waitUntil(lambda: w.info is not None and w.info["session_id"] != old, timeout=30000)
    qtbot.waitUntil(lambda: len(live_frames(w)) > 3, timeout=10000)
    assert w.mode == "realtime" and not w.pause_action.isChecked()  # it plays on its own, as the user asked
    history = model_host.host.sessions[w.info["session_id"]].history
    first_step = next(i for i, h in enumerate(history) if h[0] == "step")
    assert ("settings", {"temperature": 0.5}) in history[:first_step]  # every frame after frame 0 has the user's


def test_a_rebuild_makes_the_branch_with_the_settings_it_was_made_with(qtbot, model_host):
    w = open_window(qtbot, model_host.address, backend=None, mode="step", timeout=30.0)
    w.timeline.record.click()
    default = w.info["settings"]["temperature"]

    def temperature(t: float) -> None:
        w.settings_panel.temperature.setValue(t)
        qtbot.waitUntil(lambda: model_host.host.sessions[w.info["session_id"]].settings["temperature"] == t, timeout=20000)

    def step(n: int) -> None:
        for _ in range(n):
            last = live_frames(w)[-1].index
            w.step_once()
            qtbot.waitUntil(lambda: live_frames(w)[-1].index == last + 1, timeout=10000)

    temperature(0.5)
    step(3)
    temperature(0.7)  # changed part way: frames 4 and 5 are made with 0.7
    step(2)
    root = w.session.live
    assert [r.settings.get("temperature") for r in live_frames(w)][1:] == [0.5, None, None, 0.7, None]
    temperature(default)  # the live world's settings now differ from the branch's
    w.resimulate(root, 5)
    qtbot.waitUntil(lambda: w.busy is None, timeout=30000)
    assert "Branch rebuilt" in w.statusBar().currentMessage()
    assert w.resim_mismatches == 0  # every replayed frame equals the recorded one: made with the same settings
    live = model_host.host.sessions[w.info["session_id"]]
    made = [h[1]["temperature"] if h[0] == "settings" else h[0] for h in live.history
            if h[0] == "step" or (h[0] == "settings" and "temperature" in h[1])]
    assert made == [default, 0.5, "step", "step", "step", 0.7, "step", "step", default]  # the branch's settings where
    # it changed them, then the user's again (as after a host branch)
    assert live.settings["temperature"] == w.settings_panel.temperature.value() == default
    step(1)  # the rebuilt branch's first own frame notes what it was made with, so it can be rebuilt in turn
    assert live_frames(w)[-1].settings["temperature"] == default


def test_a_settings_change_still_unanswered_when_a_rebuild_starts_is_what_the_rebuilt_branch_runs_with(qtbot,
                                                                                                         model_host):
    """The rebuild resumes with the user's settings: one asked for just before (its answer still on its way) was
    lost, so the host ran the branch's last temperature while the panel showed the new one."""
    w = open_window(qtbot, model_host.address, backend=None, mode="step", timeout=30.0)
    w.timeline.record.click()
    w.change_settings({"temperature": 0.7})
    qtbot.waitUntil(lambda: not w.asked_settings, timeout=20000)
    for _ in range(2):
        last = live_frames(w)[-1].index
        w.step_once()
        qtbot.waitUntil(lambda: live_frames(w)[-1].index == last + 1, timeout=20000)
    w.change_settings({"temperature": 0.9})
    w.resimulate(w.session.live, 2)  # at once: the 0.9 is asked for, not yet answered
    qtbot.waitUntil(lambda: w.busy is None, timeout=30000)
    live = model_host.host.sessions[w.info["session_id"]]
    assert live.settings["temperature"] == 0.9, live.settings
    qtbot.waitUntil(lambda: w.settings_panel.temperature.value() == 0.9, timeout=20000)


def test_a_key_held_across_a_rebuild_moves_the_rebuilt_branch(qtbot, host):
    w = open_window(qtbot, host.address, mode="step")
    w.timeline.record.click()
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_Right, 3)
    w.set_paused(False)
    qtbot.keyPress(w.viewport, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: live_frames(w)[-1].action == RIGHT, timeout=20000)
    w.resimulate(w.session.live, 3)
    qtbot.waitUntil(lambda: w.busy is None, timeout=10000)
    assert w.mode == "realtime" and not w.pause_action.isChecked()  # the rebuilt branch plays on, as before
    qtbot.waitUntil(lambda: live_frames(w)[-1].index > 8, timeout=20000)
    assert live_frames(w)[-1].action == RIGHT  # still held: the rebuilt branch moves right without a new press
    qtbot.keyRelease(w.viewport, Qt.Key.Key_Right)


def test_a_refused_setting_is_not_kept_and_the_accepted_ones_still_reach_every_new_world(qtbot, model_host, monkeypatch):
    import dataclasses

    monkeypatch.setattr(model_host.host, "limits", dataclasses.replace(model_host.host.limits, steps_max=16))
    w = open_window(qtbot, model_host.address, backend=None, mode="step", timeout=30.0)
    live = lambda: model_host.host.sessions[w.info["session_id"]].settings  # noqa: E731
    steps = live()["steps"]
    w.settings_panel.temperature.setValue(0.5)
    qtbot.waitUntil(lambda: live()["temperature"] == 0.5, timeout=20000)
    w.settings_panel.steps.setValue(20)  # over this host's steps_max: refused
    qtbot.waitUntil(lambda: "steps" in w.statusBar().currentMessage(), timeout=20000)
    assert w.kept_settings == {"temperature": 0.5}  # the refused value is not kept ...
    assert w.settings_panel.steps.value() == steps  # ... nor shown as if it were in force
    for seed in (5, 6):  # each New world sends only what the host took, so it takes it again
        old = w.info["session_id"]
        w.new_world(PromptSpec(seed=seed))
        qtbot.waitUntil(lambda: w.info is not None and w.info["session_id"] != old, timeout=30000)
        assert (live()["temperature"], live()["steps"]) == (0.5, steps)
        assert "not kept" not in w.statusBar().currentMessage()


def test_in_realtime_a_settings_change_is_noted_on_the_first_frame_made_after_it(qtbot, model_host, monkeypatch):
    from bridge.client import WorldClient
    from bridge.host.session import Session as HostSession

    w = open_window(qtbot, model_host.address, backend=None, mode="realtime", timeout=30.0)
    qtbot.waitUntil(lambda: len(live_frames(w)) > 3, timeout=10000)
    send, apply = WorldClient.settings, HostSession.apply_settings
    made_before: list[int] = []  # the host's last frame when it applied the change

    def slow(self, **kw):  # frames pile up in the client's buffer while the request is on its way
        time.sleep(0.3)
        return send(self, **kw)

    def applying(self, msg, limits):
        apply(self, msg, limits)
        made_before.append(self.index)

    monkeypatch.setattr(WorldClient, "settings", slow)
    monkeypatch.setattr(HostSession, "apply_settings", applying)
    w.settings_panel.temperature.setValue(0.5)
    qtbot.waitUntil(lambda: any(r.settings.get("temperature") == 0.5 for r in live_frames(w)), timeout=20000)
    noted = [r.index for r in live_frames(w) if r.settings.get("temperature") == 0.5]
    assert noted == [made_before[0] + 1]  # not a frame made with the old temperature (a rebuild would apply it early)


@pytest.mark.parametrize("mode", ["realtime", "step"])
def test_pause_or_resume_while_the_first_world_starts_applies_to_that_world(qtbot, host, mode):
    w = open_window(qtbot, host.address, autostart=False, mode=mode)
    w.new_world(PromptSpec(seed=3))  # asked for in `mode` ...
    w.pause_action.trigger()  # ... then toggled before the host answers
    wanted = "step" if mode == "realtime" else "realtime"
    assert w.statusBar().currentMessage() == f"The next world starts {'paused' if wanted == 'step' else 'in realtime'}"
    qtbot.waitUntil(lambda: w.info is not None, timeout=20000)
    assert w.mode == wanted and w.pause_action.isChecked() == (wanted == "step")  # not undone by the start
    qtbot.waitUntil(lambda: host.host.sessions[w.info["session_id"]].mode == wanted, timeout=20000)  # the world runs so
    qtbot.wait(200)
    assert w.mode == wanted and w.pause_action.isChecked() == (wanted == "step")


def refuse_mode_changes(monkeypatch, to: tuple[str, ...] = ("realtime", "step")) -> None:
    """Make the host refuse every mode change to `to` (a New world's or rebuild's own switch to realtime included: the
    editor starts every world in step mode) as the protocol refuses a bad value."""
    from bridge.host.protocol import ProtocolError
    from bridge.host.session import Session as HostSession

    apply = HostSession.apply_settings

    def refusing(self, msg, limits):
        if msg.get("mode") in to:
            raise ProtocolError("bad_argument", "mode changes are off on this host")
        apply(self, msg, limits)

    monkeypatch.setattr(HostSession, "apply_settings", refusing)


def shown_mode(w) -> tuple[str, str]:
    """The mode the Pause button and the Settings panel's mode box show."""
    return "step" if w.pause_action.isChecked() else "realtime", w.settings_panel.mode.currentText()


@pytest.mark.parametrize("via", ["pause", "panel"])
@pytest.mark.parametrize("mode", ["realtime", "step"])
def test_a_refused_mode_change_shows_the_mode_in_force_and_why(qtbot, host, monkeypatch, via, mode):
    w = open_window(qtbot, host.address, mode=mode)
    refuse_mode_changes(monkeypatch)
    other = "step" if mode == "realtime" else "realtime"
    if via == "pause":
        w.pause_action.trigger()
    else:
        w.settings_panel.mode.setCurrentText(other)
    qtbot.waitUntil(lambda: "Mode change refused" in w.statusBar().currentMessage(), timeout=20000)
    assert host.host.sessions[w.info["session_id"]].mode == mode
    assert w.mode == mode and shown_mode(w) == (mode, mode)  # what is in force, not what was asked
    message = w.statusBar().currentMessage()
    assert "mode changes are off on this host" in message  # why
    assert ("stays paused" if mode == "step" else "runs in realtime") in message


@pytest.mark.parametrize("press_pause", [False, True])
@pytest.mark.parametrize("mode", ["realtime", "step"])
def test_during_a_rebuild_pause_and_the_mode_box_show_the_mode_it_resumes_in(qtbot, host, monkeypatch, mode,
                                                                             press_pause):
    from bridge.host.session import Session

    w = open_window(qtbot, host.address, mode=mode)
    w.timeline.record.setChecked(True)
    if mode == "step":
        focus_viewport(qtbot, w)
        step_keys(qtbot, w, Qt.Key.Key_Right, 8)
    qtbot.waitUntil(lambda: len(w.session.recorded(0)) >= 8, timeout=10000)
    w.timeline.record.setChecked(False)
    step = Session.step
    monkeypatch.setattr(Session, "step", lambda self, action: (time.sleep(0.1), step(self, action))[1])  # a slow rebuild
    old = w.info["session_id"]
    w.resimulate(0, 6)
    qtbot.waitUntil(lambda: w.info["session_id"] != old and w.busy is not None, timeout=20000)  # it steps frames now
    assert shown_mode(w) == (mode, mode)  # the rebuild goes on in the mode the world ran in before
    wanted = mode
    if press_pause:  # Pause, or Resume, while it rebuilds: the world goes on that way once rebuilt
        w.pause_action.trigger()
        wanted = "step" if mode == "realtime" else "realtime"
        assert w.busy is not None and shown_mode(w) == (wanted, wanted)
    qtbot.waitUntil(lambda: w.busy is None, timeout=10000)
    assert "Branch rebuilt" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: host.host.sessions[w.info["session_id"]].mode == wanted, timeout=20000)
    assert w.mode == wanted and shown_mode(w) == (wanted, wanted)


def sandbox_session(path, frames: int = 6) -> None:
    """A saved sandbox session of `frames` frames walking right (no pixels: a rebuild replays the actions)."""
    from editor_gui.session_store import FrameRecord, Session

    s = Session(backend_kind="sandbox", backend_name="sandbox", width=64, height=64)
    root = s.new_root(PromptSpec(seed=3, backend="sandbox"))
    for i in range(frames):
        root.frames[i] = FrameRecord(i, RIGHT if i else -1)
    s.save(path)


@pytest.mark.parametrize("mode", ["realtime", "step"])
def test_pause_toggled_before_a_rebuild_of_an_opened_session_starts_wins(qtbot, host, monkeypatch, tmp_path, mode):
    from bridge.client import WorldClient

    sandbox_session(tmp_path / "s.wbsession")
    w = open_window(qtbot, host.address, mode=mode, autostart=False)  # as `worldbridge play --session`: no world yet
    with qtbot.waitSignal(w.load_from(tmp_path / "s.wbsession").succeeded, timeout=10000):
        pass
    start = WorldClient.start
    monkeypatch.setattr(WorldClient, "start", lambda self, **kw: (time.sleep(0.3), start(self, **kw))[1])
    w.branch_from(0, 4)
    w.pause_action.trigger()  # before the rebuild's world starts
    wanted = "step" if mode == "realtime" else "realtime"
    qtbot.waitUntil(lambda: w.busy is None, timeout=10000)
    assert "Branch rebuilt" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: host.host.sessions[w.info["session_id"]].mode == wanted, timeout=20000)  # the user's choice
    qtbot.wait(200)
    assert host.host.sessions[w.info["session_id"]].mode == wanted
    assert w.mode == wanted and shown_mode(w) == (wanted, wanted)  # screen and host agree


def assert_refused_switch_shown(qtbot, w, host) -> None:
    qtbot.waitUntil(lambda: "Mode change refused" in w.statusBar().currentMessage(), timeout=20000)
    assert host.host.sessions[w.info["session_id"]].mode == "step"
    assert w.mode == "step" and shown_mode(w) == ("step", "step")  # the refused switch is undone on screen ...
    message = w.statusBar().currentMessage()
    assert "Mode change refused" in message and "mode changes are off on this host" in message  # ... and why
    assert "stays paused" in message


def test_a_new_world_whose_switch_to_realtime_is_refused_still_appears_paused_and_says_why(qtbot, host, monkeypatch):
    w = open_window(qtbot, host.address, mode="realtime", autostart=False)
    refuse_mode_changes(monkeypatch)
    w.new_world(PromptSpec(seed=3))
    qtbot.waitUntil(lambda: w.info is not None, timeout=20000)  # the session exists on the host: it is shown
    assert w.info["session_id"] in host.host.sessions and w.session.live is not None
    qtbot.waitUntil(lambda: len(live_frames(w)) == 1, timeout=20000)  # its frame 0 is on the timeline
    assert_refused_switch_shown(qtbot, w, host)


def test_a_rebuild_whose_switch_back_to_realtime_is_refused_keeps_its_branch_and_shows_it_paused(qtbot, host,
                                                                                                monkeypatch):
    w = open_window(qtbot, host.address, mode="realtime")
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: len(w.session.recorded(0)) >= 5, timeout=10000)
    w.timeline.record.setChecked(False)
    refuse_mode_changes(monkeypatch)
    w.resimulate(0, 3)
    qtbot.waitUntil(lambda: w.busy is None, timeout=10000)
    assert [r.index for r in live_frames(w)] == [0, 1, 2, 3]  # the rebuilt branch is live
    assert_refused_switch_shown(qtbot, w, host)


def test_a_preview_whose_switch_back_to_realtime_is_refused_shows_the_world_paused_and_why(qtbot, host, monkeypatch):
    w = open_window(qtbot, host.address, mode="realtime")
    refuse_mode_changes(monkeypatch, to=("realtime",))  # the preview's switch to step mode is taken, not the way back
    w.explore(2)
    qtbot.waitUntil(lambda: w.busy is None, timeout=20000)
    assert_refused_switch_shown(qtbot, w, host)


def test_a_host_recording_the_host_refuses_unticks_its_box_and_says_why(qtbot, tmp_path):
    from bridge.host.server import run_host_in_thread

    (tmp_path / "recordings").write_text("a file where the host's recordings folder should be")
    h = run_host_in_thread("sandbox", "tcp://127.0.0.1:*", recordings_dir=tmp_path / "recordings")
    try:
        w = open_window(qtbot, h.address)
        w.timeline.host_record.click()
        qtbot.waitUntil(lambda: "Host recording refused" in w.statusBar().currentMessage(), timeout=20000)
        assert not w.timeline.host_record.isChecked()  # nothing records, and the box says so
        assert "cannot write" in w.statusBar().currentMessage()  # the host's reason
        assert h.host.sessions[w.info["session_id"]].recorder is None
    finally:
        h.stop()


@pytest.mark.parametrize("what", ["new world", "rebuild"])
def test_a_refused_start_after_pause_with_no_world_shows_only_the_starts_refusal(qtbot, host, monkeypatch, tmp_path,
                                                                                 what):
    from bridge.client import WorldClient, ProtocolError

    sandbox_session(tmp_path / "s.wbsession")
    w = open_window(qtbot, host.address, mode="realtime", autostart=False)
    if what == "rebuild":
        with qtbot.waitSignal(w.load_from(tmp_path / "s.wbsession").succeeded, timeout=10000):
            pass

    def refuse(self, **kw):
        time.sleep(0.3)
        raise ProtocolError("bad_prompt", "this host takes no such prompt")

    monkeypatch.setattr(WorldClient, "start", refuse)
    w.new_world(PromptSpec(seed=3)) if what == "new world" else w.branch_from(0, 4)
    w.pause_action.trigger()  # no world runs: the switch is queued for the start on its way
    qtbot.waitUntil(lambda: "this host takes no such prompt" in w.statusBar().currentMessage(), timeout=20000)
    qtbot.wait(300)  # the queued switch's answer has come back too
    message = w.statusBar().currentMessage()
    assert "this host takes no such prompt" in message and "Mode change refused" not in message
    assert w.info is None and w.busy is None and not w.asked_settings
    assert w.mode == "step" and shown_mode(w) == ("step", "step")  # the user's choice stays for the next world


def test_only_a_refused_event_is_reported_as_not_fired_not_an_inputs_unknown_action(qtbot):
    """Every request-less bad_argument was taken for a refused event; an input with an unknown action is one too."""
    from collections import deque
    from types import SimpleNamespace

    from editor_gui.worker import WorldWorker

    worker = WorldWorker("tcp://127.0.0.1:1")
    refused, failed = [], []
    worker.event_not_fired.connect(lambda message, event_req_id: refused.append((message, event_req_id)))
    worker.failed.connect(lambda *a: failed.append(a[1]))
    event = "event 'weather_snow' was refused by the backend: no snow in this level"
    action = "unknown action 'jumpp': the backend's actions are noop, left, right"
    named = {"code": "bad_argument", "message": event, "event_req_id": 7, "event_type": "weather_snow", "text": None}
    worker._report_host_errors(SimpleNamespace(session={"id": 1}, errors=deque(
        [{"code": "bad_argument", "message": event}, {"code": "bad_argument", "message": action}, named])))
    assert refused == [(event, None), (event, 7)] and failed == [f"{action} (bad_argument)"]  # a 1.3 host names it


def test_a_close_in_step_mode_with_nothing_unsaved_keeps_the_frame_a_key_press_still_has_on_its_way(qtbot, host,
                                                                                                    tmp_path, autosave):
    """Only realtime held the world for a close with nothing unsaved: in step mode the frame of a key just pressed came
    after the window shut down, and was lost from the recording."""
    w = open_window(qtbot, host.address, mode="step")
    w.timeline.record.setChecked(True)
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_Right, 2)
    with qtbot.waitSignal(w.save_to(tmp_path / "a.wbsession").succeeded, timeout=10000):
        pass
    last = live_frames(w)[-1].index
    qtbot.keyClick(w.viewport, Qt.Key.Key_Right)  # its frame is on its way as the window closes
    assert w._unsaved == 0 and closed(qtbot, w)
    (kept,) = autosave.glob("*-closed-*.wbsession")
    assert last_kept(kept) == last + 1


def test_a_host_lost_during_a_start_leaves_no_request_waiting_for_an_answer(qtbot, host, monkeypatch):
    """The lost host's unanswered start and settings requests stayed: Open… stayed greyed out ("Wait for the new world
    to start") and Pause followed a mode switch that would never come, until the next reconnect."""
    from bridge.client import WorldClient

    w = open_window(qtbot, host.address, mode="realtime", autostart=False)

    def lost(self, **kw):
        time.sleep(0.3)
        raise ConnectionError("the host stopped answering")

    monkeypatch.setattr(WorldClient, "start", lost)
    w.new_world(PromptSpec(seed=3))
    w.pause_action.trigger()  # queued for the start on its way
    assert w.starting and w.asked_settings
    qtbot.waitUntil(lambda: w.welcome is None, timeout=10000)
    assert not w.asked_settings and not w.starting
    assert w.timeline.load_btn.isEnabled()  # Open… works without a host
    assert w.mode == "step" and shown_mode(w) == ("step", "step")  # the user's choice stays for the next world


def test_a_rebuild_with_one_frame_unlike_the_recording_says_one_frame_differs(qtbot, host):
    from editor_gui.worker import ResimResult

    w = open_window(qtbot, host.address, mode="step")
    w.resim_mismatches = 1
    w._rebuilt(ResimResult(session=w.info, last_index=4))
    assert "(1 frame differs from the recording" in w.statusBar().currentMessage()


def play_cli(*args: str):
    """Run `worldbridge play ARGS --quit-after 2` in this process (the window offscreen); returns click's result."""
    from click.testing import CliRunner

    from bridge.cli import main

    return CliRunner().invoke(main, ["play", *args, "--quit-after", "2"])


def test_play_session_with_a_file_that_cannot_be_opened_says_so_on_stderr(qapp, host, tmp_path, monkeypatch):
    """Only the status bar said it, for 10 s: a user who typed the command saw an empty window and nothing in the
    terminal."""
    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))
    (tmp_path / "bad.wbsession").write_bytes(b"not a zip")
    r = play_cli("--host", host.address, "--session", str(tmp_path / "bad.wbsession"))
    assert r.exit_code == 0, r.output  # the window opened, as it does, and closed normally
    assert "worldbridge play: Opening bad.wbsession failed:" in r.stderr, r.stderr


def test_play_with_a_backend_the_host_does_not_serve_says_so_and_names_those_it_serves(qapp, host, tmp_path,
                                                                                      monkeypatch):
    """`play --host H --backend world_model` with H serving only the sandbox silently started a sandbox world."""
    from PySide6.QtWidgets import QMainWindow

    from editor_gui import main_window

    windows, errors, show_error = [], [], main_window.MainWindow.show_error
    monkeypatch.setattr(main_window.MainWindow, "show", lambda w: (windows.append(w), QMainWindow.show(w))[1])
    monkeypatch.setattr(main_window.MainWindow, "show_error", lambda w, m: (errors.append(m), show_error(w, m))[1])
    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))
    r = play_cli("--host", host.address, "--backend", "world_model")
    assert r.exit_code == 0, r.output
    said = "the world_model backend, which this host does not serve (it serves sandbox): New world starts a sandbox"
    assert said in r.stderr and any(said in m for m in errors), (r.stderr, errors)


def test_a_gate_assigned_the_value_it_holds_refreshes_nothing(qtbot, host, monkeypatch):
    """Every Gate assignment refreshed the controls, an unchanged one too (and a refresh can cancel placing)."""
    w = open_window(qtbot, host.address)
    refreshed = []
    monkeypatch.setattr(w, "_refresh_controls", lambda: refreshed.append(1))
    w.starting, w.busy, w.info, w.session = w.starting, w.busy, w.info, w.session
    assert refreshed == []
    w.busy = "testing"
    assert refreshed == [1]
    w.busy = None


def test_an_actions_export_still_queued_when_the_window_closes_writes_nothing_and_says_so(qtbot, host, tmp_path,
                                                                                          capsys):
    """The action log's export never asked its progress: closing again (which cancels) wrote it all the same, and
    stderr said nothing of it. The close ran the queued job, and its queued start ran it a second time."""
    w = open_window(qtbot, host.address)
    job, ended = w.export_to("actions", tmp_path / "a.json"), []  # queued for the next loop turn
    job.errored.connect(ended.append)
    assert not w.close() and "close again to cancel it" in w.statusBar().currentMessage()
    assert w.close() and not w.isVisible()
    qtbot.wait(200)  # the loop turn the job was queued for
    assert not (tmp_path / "a.json").exists() and ended == ["was cancelled: nothing was written"]
    assert "Exporting a.json was cancelled as the window closed: nothing was written" in capsys.readouterr().err


def test_the_autosave_snapshot_holds_the_sessions_frames_and_none_that_come_after_it(qtbot, host):
    w = open_window(qtbot, host.address, mode="step")
    w.timeline.record.click()
    focus_viewport(qtbot, w)
    step_keys(qtbot, w, Qt.Key.Key_Right, 3)
    s, snap = w.session, w._snapshot()
    live = s.branches[s.live].frames
    for bid, b in s.branches.items():
        copy = snap.branches[bid].frames
        assert copy is not b.frames and copy == b.frames
        assert copy.indices == b.frames.indices and copy.recorded == b.frames.recorded
    assert snap.recorded(s.live) == s.recorded(s.live) and len(snap.recorded(s.live)) >= 3
    held = list(live.indices)
    step_keys(qtbot, w, Qt.Key.Key_Right, 1)
    assert snap.branches[s.live].frames.indices == held and live.indices == [*held, held[-1] + 1]


def test_a_text_sent_beside_an_image_is_said_unused_once_in_the_python_clients_words(qtbot, model_host, capsys):
    """The image wins over a text sent with it (docs/prompts.md): the Python client and both engines say so once, but
    the editor sent both and said nothing (only its client's warning, which no window shows, and the host's stderr)."""
    import io

    import numpy as np
    from PIL import Image

    from bridge.client import WorldClient

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)).save(buf, "PNG")
    prompt = PromptSpec(seed=1, text="a cave", image_png=buf.getvalue())  # noise: no sketch, the text goes unused
    client = WorldClient(model_host.address, timeout=30.0)
    with pytest.warns(UserWarning) as said:
        client.start(mode="step", text=prompt.text, image=prompt.image_png)
    client.close()
    words = str(said[-1].message)
    assert words.startswith("the text prompt 'a cave' is not used")
    w = open_window(qtbot, model_host.address, backend=None, mode="step", timeout=30.0, prompt=prompt)
    qtbot.waitUntil(lambda: words in w.statusBar().currentMessage(), timeout=20000)
    assert capsys.readouterr().err.count(words) == 1
    w.connect_host()  # a new client, which warns again: the window has said it already
    qtbot.waitUntil(lambda: w.welcome is not None, timeout=30000)
    w.new_world(prompt)
    assert w.starting
    qtbot.waitUntil(lambda: w.info is not None and not w.starting, timeout=30000)
    # the worker hands on the client's words before the session they came with: the window has heard them by now
    assert words not in capsys.readouterr().err


def test_a_text_sent_beside_an_image_is_said_unused_whatever_the_process_does_with_warnings(qtbot, model_host):
    """The editor heard the client's warning by catching warnings process-wide around its start: with warnings
    ignored (`python -W ignore`, or another thread's capture) the window said nothing."""
    import io
    import warnings

    import numpy as np
    from PIL import Image

    from bridge.client import text_unused_words

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)).save(buf, "PNG")
    prompt = PromptSpec(seed=1, text="a cave", image_png=buf.getvalue())  # noise: no sketch, the text goes unused
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = open_window(qtbot, model_host.address, backend=None, mode="step", timeout=30.0, prompt=prompt)
        words = text_unused_words("a cave", prompt.image_png, None)
        qtbot.waitUntil(lambda: words in w.statusBar().currentMessage(), timeout=20000)


def test_a_close_that_waited_for_an_open_waits_for_the_export_still_running_and_says_closing_again_cancels_it(
        qtbot, host, tmp_path, monkeypatch, autosave):
    """A close during an Open… left the close pending; with an export running, the next close took that for "close
    again" and cancelled the export, which the window never said a close would do (so did a keep's own close, for an
    export begun during the keep, before exports waited for holds)."""
    from editor_gui import export as exporting

    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w, 3)
    gate, real = threading.Event(), exporting.export_gif
    monkeypatch.setattr(exporting, "export_gif", lambda *a, **kw: (gate.wait(10), real(*a, **kw))[1])
    w.export_to("gif", tmp_path / "a.gif")
    w.load_from(tmp_path / "model.wbsession")
    assert not w.close()
    assert "Opening model.wbsession: the window closes when it is done" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: w._held is None, timeout=10000)
    # the Open… is done: the status bar says what the close waits for now, not the Open… (nor yet that closing cancels)
    qtbot.waitUntil(lambda: w.statusBar().currentMessage() == "Exporting a.gif: the window closes when it is done",
                    timeout=5000)
    assert not w.close(), "the export is waited for: nothing said that this close cancels it"
    said = w.statusBar().currentMessage()
    assert "Exporting a.gif: the window closes when it is done — close again to cancel it" in said
    gate.set()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=20000)
    assert (tmp_path / "a.gif").is_file()


def test_export_is_greyed_out_and_refused_while_a_close_keeps_the_work(qtbot, host, tmp_path, monkeypatch, autosave):
    """Export was the one job no hold gated: begun during a close's keep (or an Open…) it ran beside it, and the keep's
    close then had to wait for it or cancel it."""
    from editor_gui.main_window import MainWindow

    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w, 3)
    gate, keep = threading.Event(), MainWindow._keep
    monkeypatch.setattr(MainWindow, "_keep", staticmethod(lambda *a, **kw: (gate.wait(10), keep(*a, **kw))[1]))
    assert w.timeline.export_btn.isEnabled()
    assert not w.close() and w._held is not None
    why = "Wait for keeping the unsaved recording to finish"
    assert not w.timeline.export_btn.isEnabled() and w.timeline.export_btn.toolTip() == why
    jobs = list(w.jobs)
    assert w.export_to("gif", tmp_path / "a.gif") is None and w.jobs == jobs
    assert w.statusBar().currentMessage() == ("a.gif was not exported: wait for keeping the unsaved recording to "
                                              "finish, then Export it again")
    gate.set()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=20000)
    assert not (tmp_path / "a.gif").exists()


def test_save_is_greyed_out_with_the_reason_while_a_close_keeps_the_work(qtbot, host, tmp_path, monkeypatch, autosave):
    """Save… was refused during an Open… or a close's keep, yet its button looked as live as ever (Open… and Export
    were greyed out)."""
    from PySide6.QtWidgets import QPushButton

    from editor_gui.main_window import MainWindow

    w = open_window(qtbot, host.address)
    record_unsaved(qtbot, w, 3)
    save = next(b for b in w.timeline.findChildren(QPushButton) if b.text() == "Save…")
    assert save.isEnabled()
    gate, keep = threading.Event(), MainWindow._keep
    monkeypatch.setattr(MainWindow, "_keep", staticmethod(lambda *a, **kw: (gate.wait(10), keep(*a, **kw))[1]))
    assert not w.close() and w._held is not None
    assert not save.isEnabled() and save.toolTip() == "Wait for keeping the unsaved recording to finish"
    gate.set()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=20000)
