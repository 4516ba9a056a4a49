"""Protocol 1.1 in the editor against real hosts: frame edits placed by clicking, per-session capabilities, event
guidance. The world-model sessions serve untrained micro checkpoints (16x16 frames; plumbing, not quality)."""

from collections.abc import Callable

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt

from bridge.prompts.edit import paste_layer
from editor_gui.layers import Layer, builtin_layer
from editor_gui.main_window import MainWindow, StartOptions
from editor_gui.session_store import PromptSpec
from test_model_data import save_random_world
from test_editor_gui import add_window, closed
from test_prompts_helpers import save_held_event_settings

torch.set_num_threads(1)
pytest.importorskip("pytestqt")


def save_event_world(out):
    """An untrained micro world with two typed events (an event conditioning slot, no free-text events)."""
    from bridge.model.checkpoint import save_model, state_tensors
    from bridge.model.genie import WorldModel
    from bridge.model.presets import get_preset

    cfg = get_preset("micro")
    cfg.event_types, cfg.dynamics.cond_dim = ["weather_snow", "night_falls"], 8
    torch.manual_seed(0)
    model = WorldModel(cfg, bank_size=4)
    model.bank.copy_(torch.randint(0, model.tokenizer.vocab, model.bank.shape))
    save_model(out, "world", cfg, state_tensors(model), {"step": 0, "preset": "micro"}, 0)
    return out


def _host(spec):
    from bridge.host.server import run_host_in_thread

    return run_host_in_thread(spec, "tcp://127.0.0.1:*")


@pytest.fixture(scope="module")
def world_host(tmp_path_factory):
    from bridge.host.backends import BackendSpec

    h = _host(BackendSpec("world_model", checkpoint=str(save_random_world(tmp_path_factory.mktemp("edit") / "world"))))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def sandbox_host():
    h = _host("sandbox")
    yield h
    h.stop()


def open_window(qtbot, address: str, backend: str, mode: str = "step") -> MainWindow:
    w = MainWindow(address, StartOptions(backend=backend, mode=mode, fps=30.0, prompt=PromptSpec(seed=3), timeout=20.0))
    add_window(qtbot, w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.info is not None and w.viewport.frame is not None, timeout=20000)
    return w


def pixel_point(w: MainWindow, x: int, y: int) -> QPoint:
    """Where frame pixel (x, y) is drawn in the viewport (the centre of its scaled block)."""
    r, (h, wd) = w.viewport.image_rect(), w.viewport.frame.image.shape[:2]
    return QPoint(int(r.x() + (x + 0.5) * r.width() / wd), int(r.y() + (y + 0.5) * r.height() / h))


def test_place_a_sprite_by_clicking_edits_the_world_and_branches(qtbot, world_host, monkeypatch):
    from bridge.model.world import WorldModelBackend

    calls = []  # what the host's world model was asked to paste, and the frame it pasted into
    real = WorldModelBackend.edit_frame

    def spy(self, rgba, x, y):
        calls.append((rgba.copy(), x, y, self._frame.copy()))
        return real(self, rgba, x, y)

    monkeypatch.setattr(WorldModelBackend, "edit_frame", spy)
    w = open_window(qtbot, world_host.address, "world_model")
    assert w.info["backend_kind"] == "world_model" and "edit" in w.info["capabilities"]
    # capabilities of an untrained checkpoint: images and edits, no text/sketch prompts, no events, no event guidance
    pp, ev = w.prompt_panel, w.events_panel
    assert pp.img_box.isEnabled() and not pp.text.isEnabled() and not pp.sk_box.isEnabled()
    assert "no text conditioning — train one with `worldbridge train prompts first-frame`" in pp.text.toolTip()
    assert not ev.text.isEnabled() and "worldbridge train prompts events" in ev.text.toolTip()
    assert not w.settings_panel.event_cfg.isEnabled() and "no event conditioning" in w.settings_panel.event_cfg.toolTip()
    assert w.paste_action.isEnabled() and w.object_panel.place_btn.isEnabled()

    w.timeline.record.click()
    w.step_action.trigger()
    qtbot.waitUntil(lambda: w.viewport.frame.index == 1, timeout=10000)
    root, epoch, before = w.session.live, w.epoch, w.viewport.frame.image.copy()
    w.tabs.setCurrentWidget(w.object_panel)
    qtbot.mouseClick(w.object_panel.builtin_buttons["enemy"], Qt.MouseButton.LeftButton)
    assert w.viewport.placing is not None and w.paste_action.isChecked() and w.object_panel.place_btn.isChecked()
    qtbot.mouseMove(w.viewport, pixel_point(w, 9, 6))
    qtbot.waitUntil(lambda: w.viewport._hover == (9, 6), timeout=20000)  # the preview follows the cursor
    qtbot.mouseClick(w.viewport, Qt.MouseButton.LeftButton, pos=pixel_point(w, 9, 6))
    assert w.viewport.placing is None and not w.paste_action.isChecked()
    qtbot.waitUntil(lambda: w.session.live != root and w.viewport.frame.epoch > epoch, timeout=10000)

    # the host pasted the enemy sprite centred on the clicked pixel: 4x4 at (7, 4), the frame changed right there
    enemy = builtin_layer("enemy", 16).rgba
    assert len(calls) == 1
    rgba, x, y, shown = calls[0]
    assert (x, y) == (7, 4) and np.array_equal(rgba, enemy) and np.array_equal(shown, before)
    pasted = paste_layer(before, enemy, 7, 4)
    changed = np.argwhere((pasted != before).any(-1))
    assert changed.size and changed[:, 0].min() >= 4 and changed[:, 0].max() <= 7
    assert changed[:, 1].min() >= 7 and changed[:, 1].max() <= 10
    # like a branch: new epoch, same index; the edited frame opens a branch of its own, the old frame 1 is kept
    assert w.epoch == epoch + 1 and w.viewport.frame.index == 1 and w.viewport.frame.epoch == epoch + 1
    edit = w.session.branches[w.session.live]
    assert (edit.parent, edit.parent_frame) == (root, 0) and w.timeline.branch_id == edit.id
    rec = edit.frames[1]
    assert rec.events == ["edit"] and rec.action == w.session.branches[root].frames[1].action
    assert [(e["x"], e["y"]) for e in rec.edits] == [(7, 4)] and np.array_equal(rec.image, w.viewport.frame.image)
    assert np.array_equal(w.session.branches[root].frames[1].image, before)
    assert not w.events_panel.log.count()  # an edit is no world event
    qtbot.waitUntil(lambda: "Pasted into frame 1" in w.object_panel.status.text(), timeout=20000)  # the ok may follow the frame
    w._refresh_timeline()
    assert edit.name in [w.timeline.tree.topLevelItem(0).child(i).text(0).split("  ")[0]
                         for i in range(w.timeline.tree.topLevelItem(0).childCount())]
    w.step_action.trigger()  # the world goes on from the edited frame, on the edit's branch
    qtbot.waitUntil(lambda: 2 in edit.frames, timeout=10000)

    # rebuilding the edited branch from frame 0 (as after reopening a session) replays the edit at frame 1
    w.branch_from(root, 0)
    qtbot.waitUntil(lambda: w.session.live not in (root, edit.id), timeout=10000)
    w.timeline.show_branch(edit.id)
    w.branch_from(edit.id, 2)  # not on the live timeline any more: rebuilt on the host
    qtbot.waitUntil(lambda: w.busy is None and len(calls) == 2, timeout=20000)
    qtbot.waitUntil(lambda: w.busy is None, timeout=20000)
    assert calls[1][1:3] == (7, 4) and np.array_equal(calls[1][0], enemy) and np.array_equal(calls[1][3], before)
    assert w.session.branches[w.session.live].parent == edit.id and w.resim_mismatches == 0

    # a layer the host refuses (larger than the 16x16 frame; the Objects tab would have scaled it down): shown, no branch
    n = len(w.session.branches)
    w.placing_layer = Layer(np.full((20, 20, 4), 255, np.uint8), "too big")
    w.edit_at(0, 0)
    qtbot.waitUntil(lambda: "Edit refused" in w.object_panel.status.text(), timeout=20000)
    assert "(bad_prompt)" in w.object_panel.status.text() and len(w.session.branches) == n and not w.pending_edits


def test_sandbox_greys_out_edits_and_event_guidance_and_shows_refusals(qtbot, sandbox_host):
    w = open_window(qtbot, sandbox_host.address, "sandbox", mode="realtime")
    reason = "The sandbox game renders from game state; frame edits need the world model"
    assert not w.paste_action.isEnabled() and reason in w.paste_action.toolTip()
    assert not w.object_panel.place_btn.isEnabled() and reason in w.object_panel.builtin_buttons["coin"].toolTip()
    assert reason in w.object_panel.status.text()
    assert not w.settings_panel.event_cfg.isEnabled() and "sandbox" in w.settings_panel.event_cfg.toolTip()
    assert w.events_panel.text.isEnabled() and all(b.isEnabled() for b in w.events_panel.buttons.values())
    assert w.prompt_panel.text.isEnabled() and w.prompt_panel.sk_box.isEnabled()
    assert not w.prompt_panel.img_box.isEnabled()
    w.paste_action.trigger()  # the shortcut on a disabled tool does nothing
    assert w.viewport.placing is None
    # an edit sent anyway: the host's refusal is shown where the user looks
    w.placing_layer = builtin_layer("coin", 64)
    w.edit_at(10, 10)
    qtbot.waitUntil(lambda: "Edit refused" in w.object_panel.status.text(), timeout=20000)
    assert "(unsupported)" in w.object_panel.status.text() and "Edit refused" in w.statusBar().currentMessage()
    assert not w.pending_edits and len(w.session.branches) == 1


def test_event_guidance_and_typed_events_on_a_world_with_events(qtbot, tmp_path):
    from bridge.host.backends import BackendSpec

    h = _host(BackendSpec("world_model", checkpoint=str(save_event_world(tmp_path / "world"))))
    try:
        w = open_window(qtbot, h.address, "world_model")
        caps = set(w.info["capabilities"])
        assert {"events", "edit"} <= caps and "text_events" not in caps
        ev, sp = w.events_panel, w.settings_panel
        assert set(ev.buttons) == {"weather_snow", "night_falls"} and all(b.isEnabled() for b in ev.buttons.values())
        assert not ev.text.isEnabled() and not ev.send.isEnabled() and "free-text" in ev.text.toolTip()
        assert sp.event_cfg.isEnabled() and sp.event_cfg.value() == w.info["settings"]["event_cfg"]
        sp.event_cfg.setValue(2.5)
        sid = w.info["session_id"]
        qtbot.waitUntil(lambda: h.host.sessions[sid].settings.get("event_cfg") == 2.5, timeout=20000)
        qtbot.waitUntil(lambda: not sp._pending, timeout=20000)
        assert sp.event_cfg.value() == 2.5
    finally:
        h.stop()


def test_top_p_and_unmasking_reach_the_world_model_and_are_off_for_the_sandbox(qtbot, world_host, sandbox_host):
    """Protocol 1.2's sampler settings in the Settings tab: shown from the session, sent on change, greyed out where nil."""
    w = open_window(qtbot, world_host.address, "world_model")
    sp, sid = w.settings_panel, w.info["session_id"]
    assert sp.top_p.isEnabled() and sp.unmask.isEnabled()
    assert (sp.top_p.value(), sp.unmask.currentText()) == (w.info["settings"]["top_p"], w.info["settings"]["unmask"])
    other = "random" if sp.unmask.currentText() == "confidence" else "confidence"
    sp.top_p.setValue(0.9)
    sp.unmask.setCurrentText(other)
    backend = world_host.host.sessions[sid].backend
    qtbot.waitUntil(lambda: (backend.settings["top_p"], backend.settings["unmask"]) == (0.9, other), timeout=20000)
    assert closed(qtbot, w)
    w = open_window(qtbot, sandbox_host.address, "sandbox")
    assert not w.settings_panel.top_p.isEnabled() and not w.settings_panel.unmask.isEnabled()
    assert "top-p" in w.settings_panel.note.text()


def test_a_1_0_host_leaves_every_tool_on_but_edits(qtbot, sandbox_host, monkeypatch):
    """Without `capabilities` (protocol 1.0) nothing is greyed out, except edits: a 1.0 host has no such message."""
    from bridge.client import WorldClient

    connect, start = WorldClient.connect, WorldClient.start

    def connect_10(self):
        welcome = connect(self)
        caps = [c for c in welcome["capabilities"] if c not in ("edit", "text_events")]
        return {**welcome, "protocol_minor": 0, "capabilities": caps}

    def start_10(self, *a, **kw):
        session = start(self, *a, **kw)
        return {k: v for k, v in session.items() if k != "capabilities"}

    monkeypatch.setattr(WorldClient, "connect", connect_10)
    monkeypatch.setattr(WorldClient, "start", start_10)
    w = open_window(qtbot, sandbox_host.address, "sandbox", mode="realtime")
    assert "capabilities" not in w.info
    assert w.prompt_panel.img_box.isEnabled() and w.prompt_panel.text.isEnabled() and w.prompt_panel.sk_box.isEnabled()
    assert w.events_panel.text.isEnabled() and all(b.isEnabled() for b in w.events_panel.buttons.values())
    assert not w.paste_action.isEnabled() and "protocol 1.0" in w.paste_action.toolTip()



@pytest.fixture
def held_event_host(tmp_path):
    """A micro world whose events each hold the cond slot 4 frames, so a second one waits for the first one's hold."""
    from bridge.host.backends import BackendSpec

    world = save_event_world(tmp_path / "world")
    save_held_event_settings(world, {"weather_snow": "it snows", "night_falls": "night falls"})
    h = _host(BackendSpec("world_model", checkpoint=str(world)))
    yield h
    h.stop()


def step_and_wait(qtbot, w: MainWindow) -> None:
    """Step mode: make one frame and wait for it on the live branch."""
    last = w.session.path(w.session.live)[-1].index
    w.send_action(0)
    qtbot.waitUntil(lambda: w.session.path(w.session.live)[-1].index == last + 1, timeout=20000)


def queue_behind_held(qtbot, w: MainWindow, on_first_fired: Callable[[], object] = lambda: None) -> None:
    """Step mode: snow fires on frame 1, then night falls is queued behind its hold while frame 2 is made without it."""
    w.fire_event("weather_snow", None)
    qtbot.waitUntil(lambda: w.events_panel.log.count() == 1, timeout=20000)
    on_first_fired()
    w.fire_event("night_falls", None)
    qtbot.waitUntil(lambda: len(w.session.path(w.session.live)) == 3 and not w.asked_events, timeout=20000)


def test_events_sent_back_to_back_are_recorded_on_the_frames_that_show_them_and_a_rebuild_replays_them(
        qtbot, held_event_host):
    """The editor marked every pending event fired on the first frame with a caption, so the second, which a world
    model fires after the first one's 4 held frames, was recorded 4 frames early (and listed in the Events panel)."""
    w = open_window(qtbot, held_event_host.address, "world_model")
    w.timeline.record.setChecked(True)
    step_and_wait(qtbot, w)
    for etype in ("weather_snow", "night_falls"):  # both accepted before the next frame, as in realtime play
        w.asked_events.append({"event_type": etype, "text": None})
        w.submit("event", event_type=etype, text=None)
    qtbot.waitUntil(lambda: len(w.pending_events) == 2, timeout=20000)
    for _ in range(6):
        step_and_wait(qtbot, w)
    root = w.session.live
    shown = {r.index: (r.events, r.fired) for r in w.session.path(root) if r.events or r.fired}
    assert shown == {2: (["it snows"], [{"event_type": "weather_snow", "text": None}]),
                     6: (["night falls"], [{"event_type": "night_falls", "text": None}])}
    assert [w.events_panel.log.item(i).text() for i in range(w.events_panel.log.count())] == \
        ["frame 6: night falls", "frame 2: it snows"]
    assert not w.pending_events
    w.resimulate(root, 7)
    qtbot.waitUntil(lambda: w.busy is None, timeout=20000)
    assert "Branch rebuilt" in w.statusBar().currentMessage() and w.resim_mismatches == 0
    assert {r.index: r.events for r in w.session.path(w.session.live) if r.events} == {2: ["it snows"],
                                                                                       6: ["night falls"]}


def test_a_branch_taken_while_an_event_waits_its_turn_says_it_will_not_fire(qtbot, held_event_host):
    """The host empties its event queue on a branch; the editor kept the event pending, so the next event's caption
    recorded it as fired, and the user was never told it was dropped."""
    w = open_window(qtbot, held_event_host.address, "world_model")
    queue_behind_held(qtbot, w)
    assert len(w.pending_events) == 1
    w.branch_from(w.session.live, 2)
    qtbot.waitUntil(lambda: w.pending_fork is None, timeout=20000)
    assert not w.pending_events
    assert w.events_panel.status.text() == "Not fired (the world branched before their turn): night falls"
    for _ in range(5):
        step_and_wait(qtbot, w)
    assert not any(r.events or r.fired for r in w.session.path(w.session.live) if r.index > 1)


def test_the_status_bar_says_an_event_is_queued_until_its_caption_shows_it_fired(qtbot, held_event_host):
    """The host's ok only queues an event (behind a held one it fires 4 frames later), yet the status bar said
    "Event: night falls" as if it had fired."""
    w = open_window(qtbot, held_event_host.address, "world_model")
    fired = []
    queue_behind_held(qtbot, w, lambda: fired.append(w.statusBar().currentMessage()))
    assert fired == ["Event fired on frame 1: it snows"]
    assert w.statusBar().currentMessage() == "Event queued: night falls (it fires when its turn comes)"
    for _ in range(3):
        step_and_wait(qtbot, w)
    assert w.statusBar().currentMessage() == "Event fired on frame 5: night falls"


def test_an_event_behind_a_held_one_is_listed_as_waiting_its_turn_until_it_fires(qtbot, held_event_host):
    """Step mode made one frame without an event queued behind a held one, and nothing said that it waited."""
    w = open_window(qtbot, held_event_host.address, "world_model")
    waiting = w.events_panel.waiting
    listed = []
    queue_behind_held(qtbot, w, lambda: listed.append(waiting.count()))
    assert listed == [0]
    assert [waiting.item(i).text() for i in range(waiting.count())] == ["night falls: waiting its turn"]
    for _ in range(3):
        step_and_wait(qtbot, w)
    assert waiting.count() == 0 and w.events_panel.log.item(0).text() == "frame 5: night falls"


def test_an_event_the_backend_refuses_when_its_frame_is_made_leaves_the_queue_with_a_message(qtbot):
    """The host's error for it has no req_id; the editor showed it as a bare host error and kept the event waiting
    (until the next branch or new world, when it was the last one queued)."""
    from bridge.worlds.sandbox import SandboxWorld

    class LateRefusal(SandboxWorld):
        def step(self, action, event=None):
            if event is not None and event.type == "weather_snow":
                raise ValueError("no snow in this level")
            return super().step(action, event)

    h = _host(lambda: LateRefusal(64, 0))
    try:
        w = open_window(qtbot, h.address, "sandbox")
        w.fire_event("weather_snow", None)  # accepted, then refused on the frame it makes
        qtbot.waitUntil(lambda: w.events_panel.status.text().startswith("Not fired:"), timeout=20000)
        assert "no snow in this level" in w.events_panel.status.text()
        assert not w.pending_events and w.events_panel.waiting.count() == 0
        assert w.statusBar().currentMessage().startswith("Event not fired: event 'weather_snow' was refused")
    finally:
        h.stop()


def test_a_refusal_delivered_after_the_next_events_frame_takes_the_refused_event_off_the_queue(qtbot):
    """The worker hands a drained batch of frames over before the host's errors: the frame of the event behind the
    refused one arrives first, then the refusal; it took the next waiting event off the queue, whose caption then
    matched nothing, so its firing was never recorded (a rebuild did not replay it)."""
    from dataclasses import replace

    h = _host("sandbox")
    try:
        w = open_window(qtbot, h.address, "sandbox")
        w.timeline.record.setChecked(True)
        snow, night, rain = ({"event_type": t, "text": None} for t in ("weather_snow", "night_falls", "weather_rain"))
        w._set_pending([(snow, "snow", 4), (night, "night falls", 5), (rain, "rain", 6)])
        base = w.worker_thread.worker._latest
        for i, captions in ((1, []), (2, ["night falls"])):  # the refused event's frame, then the next one's
            w.on_frame(replace(base, index=base.index + i, events=captions))
        w.on_event_not_fired("event 'weather_snow' was refused by the backend: no snow in this level")
        assert w.events_panel.status.text().startswith("Not fired: snow (")
        assert [c for _, c, _ in w.pending_events] == ["rain"]
        w.on_frame(replace(base, index=base.index + 3, events=["rain"]))
        fired = {r.index - base.index: r.fired for r in w.session.path(w.session.live) if r.index > base.index}
        assert fired == {1: [], 2: [night], 3: [rain]} and not w.pending_events
        assert closed(qtbot, w)  # its keep waits for the host to confirm the pause: before the host stops
    finally:
        h.stop()


def test_a_refusal_naming_its_event_marks_that_event_not_the_oldest_waiting(qtbot):
    """The host's error for an event refused at its frame answers no request, so the editor took the oldest waiting
    event for it; a 1.3 host names the event by the req_id its request carried (event_req_id)."""
    h = _host("sandbox")
    try:
        w = open_window(qtbot, h.address, "sandbox")
        snow, night = ({"event_type": t, "text": None} for t in ("weather_snow", "night_falls"))
        w._set_pending([(snow, "snow", 4), (night, "night falls", 5)])
        w.on_event_not_fired("event 'night_falls' was refused by the backend: it is noon here", 5)
        assert w.events_panel.status.text().startswith("Not fired: night falls (")
        assert w.pending_events == [(snow, "snow", 4)]
        w.on_event_not_fired("event 'weather_rain' was refused by the backend: dry", 9)  # a request no longer waiting
        assert w.pending_events == [(snow, "snow", 4)]  # (a rebuild's replayed event): nothing waiting is taken
        w.on_event_not_fired("event 'weather_snow' was refused by the backend: no snow in this level")  # older host
        assert w.events_panel.status.text().startswith("Not fired: snow (") and not w.pending_events
    finally:
        h.stop()


def test_an_event_the_host_accepts_waits_under_the_req_id_its_request_carried(qtbot):
    """What the editor matches a refusal's event_req_id with: the req_id of the `event` request the worker sent."""
    h = _host("sandbox")
    try:
        w = open_window(qtbot, h.address, "sandbox")  # step mode: no frame fires the event before the test reads it
        asked = []
        w.worker_thread.worker.done.connect(lambda command, result: asked.append(result.get("req_id")))
        w.asked_events.append({"event_type": "weather_snow", "text": None})
        w.submit("event", event_type="weather_snow", text=None)
        qtbot.waitUntil(lambda: bool(w.pending_events), timeout=20000)
        assert asked and w.pending_events == [({"event_type": "weather_snow", "text": None}, "it starts to snow", asked[0])]
        assert isinstance(asked[0], int)
    finally:
        h.stop()


def test_an_event_waiting_its_turn_when_a_latent_preview_runs_says_the_preview_dropped_it(qtbot, held_event_host):
    """A preview branches the host, which empties its event queue: the Events tab said the world branched, though the
    user only previewed."""
    w = open_window(qtbot, held_event_host.address, "world_model")
    queue_behind_held(qtbot, w)
    w.explore(1)
    qtbot.waitUntil(lambda: w.busy is None, timeout=30000)
    assert not w.pending_events
    assert w.events_panel.status.text() == \
        "Not fired (previewing the latent actions emptied the host's event queue): night falls"


def test_an_edit_during_a_hold_is_refused_and_paste_greys_out_so_no_stale_edit_waits(qtbot, world_host, monkeypatch,
                                                                                      tmp_path):
    """edit_at asked only whether a rebuild ran: an edit sent while a close kept the work had its frame dropped, and its
    pending entry stayed for good, so the next real edit was recorded with the old layer."""
    from test_editor_flows import cancel_when_shown, saving_slowly

    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))
    w = open_window(qtbot, world_host.address, "world_model")
    w.timeline.record.setChecked(True)
    step_and_wait(qtbot, w)
    saving_slowly(monkeypatch, 0.3)
    assert not w.close() and w._held is not None
    assert not w.paste_action.isEnabled() and "Wait for keeping the unsaved recording" in w.paste_action.toolTip()
    w.placing_layer = builtin_layer("coin", 16)
    w.edit_at(2, 2)
    assert w.pending_edits == [] and "Wait for keeping the unsaved recording" in w.statusBar().currentMessage()
    cancel_when_shown(w)
    qtbot.waitUntil(lambda: w._held is None, timeout=20000)
    assert w.paste_action.isEnabled()
