"""What the editor does per frame and per refresh stays the same size however long the session: counted, not timed."""

import numpy as np
import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage

from editor_gui.session_store import Branch, FrameRecord, PromptSpec, Session
from editor_gui.timeline import THUMB, TimelinePanel
from editor_gui.viewport import BACKGROUND, FrameStats, ShownFrame, Viewport
from test_editor_gui import focus_viewport, host, live_frames, open_window  # noqa: F401 - host: fixture

pytest.importorskip("pytestqt")


def _img(v: int) -> np.ndarray:
    return np.full((8, 8, 3), v % 256, np.uint8)


def _session(n: int) -> Session:
    s = Session(fps=24.0, width=8, height=8)
    b = s.new_root(PromptSpec(seed=1))
    s.live = b.id
    for i in range(n):
        s.add_frame(FrameRecord(i, 0, image=_img(i)))
    return s


def _panel(qtbot, s: Session) -> TimelinePanel:
    t = TimelinePanel()
    qtbot.addWidget(t)
    t.resize(1000, 170)
    t.show()
    qtbot.waitExposed(t)
    t.set_session(s)
    return t


def test_recorded_frames_follow_appends_rewinds_replacements_and_forks():
    """The branches keep their recorded frames as frames come and go: the same list a walk over every frame gives."""
    s = _session(10)
    s.add_frame(FrameRecord(10, 0))  # no pixels: not recorded
    s.add_frame(FrameRecord(11, 0, image=_img(11)))
    fork = s.fork(s.live, 4)
    s.live = fork.id
    s.add_frame(FrameRecord(5, 1, image=_img(105)))
    s.add_frame(FrameRecord(6, 1))
    s.live = 0
    s.add_frame(FrameRecord(7, 2, image=_img(207)), rewind=True)  # back to 7: 8..11 go, 7 is replaced
    s.branches[0].frames[3] = FrameRecord(3, 0)  # its pixels dropped
    del s.branches[0].frames[1]
    s.branches[0].frames.pop(2)
    s.branches[0].frames.update({1: FrameRecord(1, 0, image=_img(101))})
    for bid in s.branches:
        assert s.recorded(bid) == [r for r in s.path(bid) if r.image is not None]
        frames = s.branches[bid].frames
        assert frames.indices == sorted(frames) and s.branches[bid].last_index() == max(frames)
    assert [r.index for r in s.recorded(fork.id)] == [0, 1, 4, 5]
    assert [r.index for r in s.recorded(0)] == [0, 1, 4, 5, 6, 7] and s.recorded(0)[-1].image[0, 0, 0] == 207
    copy = Branch(0, frames=dict(s.branches[0].frames))  # the autosave's copy of a branch keeps them too
    assert copy.frames.recorded == s.branches[0].frames.recorded


def test_a_timeline_refresh_reads_the_session_again_only_when_its_frames_changed(qtbot, monkeypatch):
    """The 150 ms refresh re-read every frame of the session each time, new frames or not."""
    s = _session(50)
    t = _panel(qtbot, s)
    reads = []
    recorded = Session.recorded
    monkeypatch.setattr(Session, "recorded", lambda self, bid: (reads.append(bid), recorded(self, bid))[1])
    t.refresh()
    t.refresh()
    assert reads == []  # nothing changed
    s.add_frame(FrameRecord(50, 0, image=_img(50)))
    t.refresh()
    assert reads == [0] and [r.index for r in t.records] == list(range(51)) and t.slider.value() == 50
    s.add_frame(FrameRecord(20, 0, image=_img(99)), rewind=True)  # a rewind: frames after 20 go
    t.refresh()
    assert len(reads) == 2 and [r.index for r in t.records] == list(range(21)) and t.records[-1].image[0, 0, 0] == 99
    assert t.tree.topLevelItem(0).text(1) == "21"


def test_the_thumbnail_strip_keeps_and_repaints_only_what_it_shows(qtbot, monkeypatch):
    """Thumbnails of every frame ever shown stayed cached, and the strip repainted after every refresh."""
    s = _session(300)
    t = _panel(qtbot, s)
    strip = t.strip
    strip.grab()  # paints it now
    t._select(0)
    strip.grab()  # paints it now
    first, last = strip._window()
    assert first == 0 and set(strip._cache) == {id(r.image) for r in t.records[first:last]}
    assert all(thumb.format() == QImage.Format.Format_RGB32 and thumb.width() == THUMB
               for thumb in strip._cache.values())
    updates = []
    monkeypatch.setattr(strip, "update", lambda: updates.append(1))
    s.add_frame(FrameRecord(300, 0, image=_img(300)))  # a new frame far outside the visible window
    t.refresh()
    t.refresh()
    assert updates == []
    t._select(1)  # the selection moved: the strip shows it
    assert updates == [1]


def test_the_viewport_converts_a_frame_once_and_keeps_no_borrowed_pixels(qtbot):
    """The RGB888 image borrowed the frame's array and was converted to the screen's format on every paint."""
    v = Viewport()
    qtbot.addWidget(v)
    v.resize(400, 300)
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :, 0] = 200
    v.show_frame(ShownFrame(image, 1, 0))
    assert v._qimage.format() == QImage.Format.Format_RGB32
    image[:] = 0  # the caller reuses its buffer: the frame shown stays
    assert v._qimage.pixelColor(3, 3).red() == 200


def test_the_viewport_makes_its_figures_per_frame_and_paints_the_bars_around_it(qtbot, monkeypatch):
    """Each paint (frames, the overlay timer, focus, placing) made the fps list and two medians again."""
    v = Viewport()
    qtbot.addWidget(v)
    v.resize(400, 300)
    v.show()
    image = np.full((8, 8, 3), 200, np.uint8)
    made = []
    text = FrameStats.text
    monkeypatch.setattr(FrameStats, "text", lambda self, index: (made.append(index), text(self, index))[1])
    v.show_frame(ShownFrame(image, 1, 0))
    for _ in range(3):
        v.grab()
    assert made == [1] and "frame 1" in v._stats_text
    v.show_frame(ShownFrame(image, 2, 0))
    v.grab()
    assert made == [1, 2] and "frame 2" in v._stats_text
    v.resize(401, 300)
    assert v.image_rect() == QRectF(50.5, 0, 300, 300)  # centred on a half pixel: bars left and right
    shot = v.grab().toImage()
    assert all(shot.pixelColor(x, 150) == BACKGROUND for x in (0, 49, 351, 400))
    assert all(shot.pixelColor(x, y).red() == 200 for x, y in ((51, 0), (200, 150), (349, 299)))


def test_frames_that_are_not_recorded_leave_the_timeline_as_it_is(qtbot, host, monkeypatch):  # noqa: F811
    """Every frame marked the timeline for a refresh, recording or not; its frame count still follows the world."""
    w = open_window(qtbot, host.address, mode="realtime")
    refreshes = []
    refresh = TimelinePanel.refresh
    monkeypatch.setattr(TimelinePanel, "refresh", lambda self: (refreshes.append(1), refresh(self))[1])
    start = live_frames(w)[-1].index
    qtbot.waitUntil(lambda: live_frames(w)[-1].index >= start + 10, timeout=10000)
    qtbot.wait(400)  # over two ticks of the 150 ms timeline timer
    assert refreshes == [] and not w._timeline_dirty
    item = w.timeline.tree.topLevelItem(0)
    assert item.text(1) == str(w.session.branches[w.session.live].last_index() + 1)
    w.timeline.record.setChecked(True)
    qtbot.waitUntil(lambda: len(w.timeline.records) >= 3, timeout=10000)
    assert refreshes


def test_the_network_thread_sleeps_until_a_frame_or_a_command_comes(qtbot, host, monkeypatch):  # noqa: F811
    """It woke every 2 ms to look for frames (500 times a second, paused or not)."""
    from bridge.client import WorldClient
    from editor_gui import worker

    monkeypatch.setattr(worker, "PING_AFTER_S", 60.0)  # no ping wakes it either: only the command's wake-up can
    w = open_window(qtbot, host.address, mode="step")
    drains = []
    drain = WorldClient.drain_frames
    monkeypatch.setattr(WorldClient, "drain_frames",
                        lambda self, timeout=0.0: (drains.append(timeout), drain(self, timeout))[1])
    qtbot.wait(500)  # paused: nothing comes
    assert len(drains) <= 3
    last = live_frames(w)[-1].index
    w.step_action.trigger()  # a command wakes it at once
    qtbot.waitUntil(lambda: live_frames(w)[-1].index == last + 1, timeout=1000)


def test_an_error_the_host_sent_while_a_ping_waited_is_said_at_once(qtbot, host, monkeypatch):  # noqa: F811
    """The ping's wait filed it in the client; the thread then slept until the next ping (2 s) before saying it (a
    recording the host stopped, a session it ended), paused or in step mode."""
    from bridge.client import WorldClient
    from editor_gui import worker

    monkeypatch.setattr(worker, "PING_AFTER_S", 0.3)
    w = open_window(qtbot, host.address, mode="step")
    ping = WorldClient.ping

    def ping_that_files_an_error(client):
        rtt = ping(client)
        worker.PING_AFTER_S = 60.0  # no later ping wakes the thread: only handling what the client holds says it
        client.errors.append({"type": "error", "code": "backend_error", "message": "came while the ping waited"})
        return rtt

    monkeypatch.setattr(WorldClient, "ping", ping_that_files_an_error)
    with qtbot.waitSignal(w.worker_thread.worker.failed, timeout=1000,
                          check_params_cb=lambda command, message, cap: "came while the ping waited" in message):
        pass
