"""The editor window: wires the viewport, panels and timeline to the network worker; never blocks on the network."""

from __future__ import annotations

import functools
import itertools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QColor, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressDialog,
    QStyle,
    QStyleFactory,
    QTabWidget,
    QToolBar,
)

from bridge.backend import DEFAULT_FPS
from bridge.files import tick
from bridge.host.protocol import MODEL_KNOBS
from bridge.values import plural
from editor_gui import export as exporting
from editor_gui.capabilities import ALL, dropped_note, fit_prompt, host_can_edit, refused_prompt, unavailable
from editor_gui.events_panel import EventsPanel
from editor_gui.jobs import Job, onward
from editor_gui.keymap import ActionResolver, HeldKeys, KeyMap, KeyMapDialog, key_name
from editor_gui.latent_explorer import LatentExplorer
from editor_gui.layers import Layer, rgba_to_qimage
from editor_gui.object_panel import ObjectPanel
from editor_gui.prompt_panel import NEW_WORLD_TIP, PromptPanel
from editor_gui.session_store import (
    AUTOSAVE_ENV,
    FILE_SUFFIX,
    RUNNING,
    Branch,
    FrameRecord,
    PromptSpec,
    Session,
    autosave_dir,
    hold_running_lock,
    recover_crashed,
    release_running_lock,
)
from editor_gui.scroll import VerticalScroll
from editor_gui.settings_panel import SettingsPanel
from editor_gui.timeline import TimelinePanel
from editor_gui.viewport import ShownFrame, Viewport, badge_text
from editor_gui.worker import STOP_WAIT_S, ExploreResult, ResimResult, WorkerThread, wait_for_workers

PASTE_TIP = "Paste an object layer into the live frame (Objects tab: choose the object)"
NO_WORLD = "No world is running: press New world."
NO_WORLD_RUNNING = "no world running"  # the viewport's badge over the frame left, and the status bar
NOT_CONNECTED = "Not connected to a host: check Settings → Host."
NOT_IN_SESSION = ("The host's world is not part of the opened session, so nothing done to it would be recorded: pick a "
                  "frame and press 'Branch from this frame' to continue the session, or press New world.")

SESSION_FILES = f"Session file (*{FILE_SUFFIX} *{FILE_SUFFIX.upper()})"  # some platforms' dialogs match case
AUTOSAVE_EVERY_MS = 30_000  # unsaved work is rewritten this often (when it changed), so a crash loses at most this much
AUTOSAVE_SHARE = 0.1  # at most this share of a core goes to periodic autosaves: the next waits 10x the last one's time
AUTOSAVING = "Autosaving the unsaved work"
KEEPING = "Keeping the unsaved recording"  # the job a close (or Open…) keeps unsaved work with
PREVIEWING = "the latent-action preview"  # what `busy` names while it runs
AUTOSAVE_NAMES = itertools.count(1)  # numbers every autosave name this process makes: windows share its PID and second
MAX_RECORDED = 20000  # frames with pixels kept in memory; recording stops beyond this (save and start a new session)
# what an action needs before it may go to the host or start a job on it, each more than the one before (_not_ready)
UNHELD = 0  # no Open… or close's keep holding the world: Pause, Settings, Save…, host recording
IDLE = 1  # nor a rebuild, a preview or a start on its way: Open…
HOST = 2  # and a host connected: New world, Branch
WORLD = 3  # and a world running: a latent-action preview
LIVE = 4  # and that world in the session's live branch: keys, Step, a latent action's Play, events, edits


USER_FOCUS = (Qt.FocusReason.MouseFocusReason, Qt.FocusReason.TabFocusReason, Qt.FocusReason.BacktabFocusReason,
              Qt.FocusReason.ShortcutFocusReason)  # the user moved there (not the window's first focus)


def in_sentence(text: str) -> str:
    """`text` (a title, a message) read inside a sentence: its first letter lower-case."""
    return text[:1].lower() + text[1:]


@dataclass
class StartOptions:
    """How the first world starts once the host answers."""

    backend: str | None = None
    mode: str = "realtime"
    fps: float | None = None  # None: each world plays at its own rate (a world's footage fps, the sandbox game's 15)
    prompt: PromptSpec | None = None
    autostart: bool = True
    timeout: float = 5.0  # seconds to wait for a host answer before calling it gone


def apply_theme(app: QApplication) -> None:
    """A dark Fusion theme: the frames are the brightest thing on screen."""
    app.setStyle(QStyleFactory.create("Fusion"))
    pal = QPalette()
    base, alt, text = QColor("#1e2127"), QColor("#282c34"), QColor("#d7dae0")
    for role, color in (
        (QPalette.ColorRole.Window, alt), (QPalette.ColorRole.WindowText, text), (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, alt), (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, QColor("#353b45")),
        (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.Highlight, QColor("#3e6fb0")),
        (QPalette.ColorRole.HighlightedText, QColor("#ffffff")), (QPalette.ColorRole.ToolTipBase, base),
        (QPalette.ColorRole.ToolTipText, text), (QPalette.ColorRole.PlaceholderText, QColor("#7f848e")),
    ):
        pal.setColor(role, color)
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#6b717c"))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#6b717c"))
    app.setPalette(pal)


class Gate:
    """A window attribute the greyed-out controls follow: assigning it another value (not the same object) refreshes
    them at once (MainWindow._refresh_controls, which also cancels placing an object when edits become unavailable),
    so no state change can leave a control enabled that its rule refuses, or the reverse. In `a, b = x, y` the refresh
    after `a` sees the old `b`: the later assignment refreshes again."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_gate{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(obj, self.slot)

    def __set__(self, obj: Any, value: Any) -> None:
        if getattr(obj, self.slot, self) is value:  # the same object (a Session compared by value walks every frame)
            return
        setattr(obj, self.slot, value)
        obj._refresh_controls()


class MainWindow(QMainWindow):
    """One host connection, one editor session (a tree of branches) at a time."""

    # what the greyed-out controls follow (_not_ready); the session's live branch moves through _go_live
    welcome, info, session, busy, starting, _held = Gate(), Gate(), Gate(), Gate(), Gate(), Gate()
    _built = False  # the controls exist: _refresh_controls has something to refresh
    _events_for: Any = ()  # the session message the Events tab was last set for (none yet: not even None)

    def __init__(self, address: str, options: StartOptions | None = None, host_note: str = "",
                 warm_text: Callable[[], Any] | None = None):
        super().__init__()
        self.address, self.options, self.host_note = address, options or StartOptions(), host_note
        self._warm_text = warm_text  # loads the own host's text encoder: called once, when text is on its way
        self.setWindowTitle("WorldBridge editor")
        self.resize(1440, 900)
        self._init_state()
        self._build_widgets()
        self._wire()
        self._start_timers()
        self._built = True
        if crashed := recover_crashed():  # each named, in one message: a status bar shows one at a time
            self._kept(crashed, f"{plural(len(crashed), 'editor')} that ended without closing (a crash or kill) left "
                                "unsaved work in")
        if self.options.prompt is not None:
            self.prompt_panel.set_prompt(self.options.prompt)
        self.connect_host()

    def _init_state(self) -> None:
        """What the window knows of the host, its world and the session, before anything is connected."""
        self.welcome: dict | None = None
        self.info: dict | None = None  # the host's session message
        self.session: Session | None = None
        self.mode = self.options.mode
        self.epoch = -1
        self.recording = False
        self.pending_fork: Branch | None = None
        # (request, caption, req_id) of events the host accepted, their captions not yet seen in a frame; they fire in
        # this order (the req_id their request carried names one in the host's refusal, error.event_req_id)
        self.pending_events: list[tuple[dict, str, int | None]] = []
        self._unshown: list[tuple[dict, str, int | None]] = []  # a later event's frame passed them over: error to come
        self.asked_events: list[dict] = []  # event requests sent, not answered yet (the host answers them in order)
        self.pending_edits: list[dict] = []  # [{"layer": PNG, "x", "y"}] sent, their edited frames not yet received
        self.placing_layer: Layer | None = None
        self.caps_by_backend: dict[str, dict] = {}  # backend kind -> the last session of it (what new worlds can take)
        self.refused_caps: dict[str, set[str]] = {}  # backend kind -> prompt capabilities its host refused (bad_prompt)
        self._start_kind: dict[str, str] = {}  # "start"/"resimulate" on its way -> the backend kind it asked for
        self._resim_args: tuple[int, int] = (-1, -1)  # the branch and frame of the last rebuild asked for
        self._resim_prompt = PromptSpec()  # the root prompt of that rebuild, as the session stores it
        self._prompt_note = ""  # what the running rebuild left out of its prompt (said when it is done)
        self.pending_prompt: PromptSpec | None = None
        self._opened_kind = ""  # the backend of a session opened before the host answered: on_connected checks it
        self.busy: str | None = None  # what the host is busy with for the editor (a rebuild, a preview): its frames
        # need the session
        self._error_shown = ""  # the last error shown: progress leaves it in the status bar until it times out
        self._client_warned = False  # the client's warning (a text beside an image is not used) was said: said once
        self.viewing: FrameRecord | None = None
        self._no_world = NO_WORLD_RUNNING  # why no world runs, as the viewport's badge and the status bar say it
        self.keymap = KeyMap()
        self.held = HeldKeys()
        self.resolver = ActionResolver([], 0)
        self.current_action = 0
        self.seq = 1_000_000  # our input seqs; the client numbers its own step() inputs from 1
        self.resim_mismatches = 0
        self._recorded = 0  # frames with pixels held (memory guard): counted up per frame, recounted at the limit
        self._unsaved = 0  # frames recorded since the session was last saved or opened (a sketched world counts one)
        self._changes = 0  # counts every unsaved frame or sketch added: the periodic autosave writes only when it moved
        self._autosaved = 0  # the _changes the last periodic autosave wrote
        self._running = self._autosave_path(RUNNING)  # that autosave: rewritten while unsaved work exists, gone on close
        self._running_lock: IO[bytes] | None = None  # held from its first write to close: it marks this editor alive
        self._sketch_kept: bytes | None = None  # the unsent sketch last kept in an autosave (kept once)
        self._held: Job | None = None  # an Open… or a close's keep writing the session: the world waits for it
        self._pause_asked: dict | None = None  # the settings request whose answer confirms the hold's pause
        self._copy_then: Callable[[], None] | None = None  # takes the hold's copy and starts its job (_pause_confirmed)
        self._pause_refused = False  # the host refused the hold's pause: its world plays on, making frames after the copy
        self._last_keep = False  # a close's keep ended after a refused pause, or with nothing come since its copy: the
        # close closes, keeping no more (unless it waits first, for an export begun during the keep)
        self._resume = False  # the hold paused a world that played: it plays again when the hold ends
        self._sent = True  # something went to the host since it last confirmed a hold's pause (_frames_may_come)
        self._keeps_failed = 0  # a close's keeps that failed: after the second the close discards the work
        self._discarded = False  # discard_unsaved: the frames are nobody's work, the close keeps none (nor waits for one)
        self._close_when_done = False  # a close waits for an export, a save, an Open… or its keep: their end closes
        self._close_cancels = False  # the status bar said closing again cancels the export or save the close waits for
        self._close_path: Path | None = None  # where a close keeps this session's unsaved work (again, if more came)
        self._resim_expect: dict[int, np.ndarray] = {}  # recorded frames a rebuild should reproduce
        self._resim_edited: set[int] = set()  # frame indices a rebuild edits after making them
        self._resim_undo: tuple[int | None, int] = (None, -1)  # (the live branch before a rebuild, the rebuild's branch)
        self._resim_from: str | None = None  # while a rebuild starts: the session it replaces
        self._edit_action, self._edits_before = -1, []
        self.jobs: list[Job] = []
        self.kept_settings: dict[str, Any] = {}  # sampling settings the user chose and the host took: new worlds get them
        self.fps_asked = self.options.fps  # the rate the user chose (--fps, Settings) for new worlds; None: their own
        self._fps_own = False  # the live world plays at its own rate: no rate was asked for since it started
        self.asked_settings: list[dict] = []  # settings requests sent, not answered yet (answered in order)
        self.starting = False  # a New world or a rebuild was sent and its session has not started: a second waits
        self._host_mode = self.mode  # the mode the host's world runs in (or, during a rebuild, resumes in)
        self._in_force: dict[str, Any] = {}  # the sampling settings the live world runs with
        self._settings_due: dict[str, Any] = {}  # those the next recorded frame notes as changed (see FrameRecord)
        self.worker_thread: WorkerThread | None = None
        self._timeline_dirty = False
        self._autosave_due = 0.0  # time.monotonic() before which a tick writes nothing (AUTOSAVE_SHARE)

    def _build_widgets(self) -> None:
        """The viewport in the middle, the Prompt dock left, the World tabs right, the timeline below, the toolbar."""
        self.viewport = Viewport()
        self.setCentralWidget(self.viewport)
        self.prompt_panel = PromptPanel()
        self.events_panel = EventsPanel()
        for box in (self.prompt_panel.text, self.events_panel.text):
            box.installEventFilter(self)
        self.explorer = LatentExplorer()
        self.settings_panel = SettingsPanel()
        self.object_panel = ObjectPanel()
        self.timeline = TimelinePanel()
        self._dock("Prompt", VerticalScroll(self.prompt_panel), Qt.DockWidgetArea.LeftDockWidgetArea)
        tabs = QTabWidget()
        tabs.setUsesScrollButtons(False)  # every tab's name shows: the dock is as wide as they need
        tabs.addTab(self.events_panel, "Events")
        tabs.addTab(self.object_panel, "Objects")
        tabs.addTab(self.explorer, "Latent actions")
        tabs.addTab(self.settings_panel, "Settings")
        self.tabs = tabs
        self._dock("World", VerticalScroll(tabs), Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Timeline", self.timeline, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._toolbar()
        self._set_pause_checked(self.mode == "step")  # --step: Pause shows it before the first world
        self.status_backend = QLabel("no world")
        self.statusBar().addPermanentWidget(self.status_backend)

    def _wire(self) -> None:
        """Each panel's signals to what the window does with them."""
        self.viewport.key_pressed.connect(self.on_key_pressed)
        self.viewport.key_released.connect(self.on_key_released)
        self.viewport.focus_changed.connect(self._on_focus)
        self.viewport.placed.connect(self.edit_at)
        self.viewport.placing_changed.connect(self._on_placing)
        self.object_panel.place.connect(self.begin_placing)
        self.object_panel.error.connect(self.show_error)
        self.object_panel.cancel.connect(self.viewport.cancel_placing)
        self.settings_panel.backend.currentTextChanged.connect(lambda _t: self._apply_prompt_caps())
        self.prompt_panel.new_world.connect(self.new_world)
        self.prompt_panel.error.connect(self.show_error)
        self.events_panel.fire.connect(self.fire_event)
        self.explorer.explore.connect(self.explore)
        self.explorer.names_changed.connect(self.set_latent_names)
        self.explorer.play_action.connect(self.play_once)
        self.settings_panel.changed.connect(self.change_settings)
        self.settings_panel.reconnect.connect(self.connect_host)
        self.timeline.record_toggled.connect(self.set_recording)
        self.timeline.host_record_toggled.connect(self.set_host_recording)
        self.timeline.branch_requested.connect(self.branch_from)
        self.timeline.frame_selected.connect(self.view_frame)
        self.timeline.live_btn.clicked.connect(self._play_focus)
        self.timeline.save_requested.connect(self._save_dialog)
        self.timeline.load_requested.connect(self._load_dialog)
        self.timeline.export_requested.connect(self._export_dialog)

    def _start_timers(self) -> None:
        """The timeline's repaint, the fps overlay, the periodic autosave, and the hold's wait for its pause."""
        self._timeline_timer = QTimer(self)
        self._timeline_timer.setInterval(150)
        self._timeline_timer.timeout.connect(self._refresh_timeline)
        self._timeline_timer.start()
        self._overlay_timer = QTimer(self)  # fps text stays current when frames stop
        self._overlay_timer.setInterval(500)
        self._overlay_timer.timeout.connect(self.viewport.update)
        self._overlay_timer.start()
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(AUTOSAVE_EVERY_MS)
        self._autosave_timer.timeout.connect(self._autosave_tick)
        self._autosave_timer.start()
        self._pause_timer = QTimer(self)  # a hold whose pause the host does not confirm copies what there is
        self._pause_timer.setSingleShot(True)
        self._pause_timer.timeout.connect(lambda: self._pause_confirmed(
            f"the host did not confirm the pause within {self.options.timeout:g} s"))

    # ------------------------------------------------------------------ layout
    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _toolbar(self) -> None:
        tb = QToolBar("Play")
        tb.setObjectName("play_toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(tb)
        icon = self.style().standardIcon
        self.pause_action = QAction(icon(QStyle.StandardPixmap.SP_MediaPause), "Pause", self)
        self.pause_action.setCheckable(True)
        self.pause_action.setShortcut(QKeySequence("Ctrl+P"))
        self.pause_action.toggled.connect(self.set_paused)
        self.step_action = QAction(icon(QStyle.StandardPixmap.SP_MediaSkipForward), "Step", self)
        self.step_action.setShortcut(QKeySequence("Ctrl+N"))
        self.step_action.triggered.connect(self.step_once)
        keys = QAction("Keys…", self)
        keys.triggered.connect(self.edit_keys)
        new = self.new_action = QAction(icon(QStyle.StandardPixmap.SP_FileIcon), "New world", self)
        new.triggered.connect(lambda: self.new_world(self.prompt_panel.prompt()))
        self.paste_action = QAction("Paste object", self)
        self.paste_action.setObjectName("paste_object")
        self.paste_action.setCheckable(True)
        self.paste_action.setShortcut(QKeySequence("Ctrl+E"))
        self.paste_action.setToolTip(PASTE_TIP)
        self.paste_action.triggered.connect(self._toggle_placing)
        self.cancel_action = QAction("Cancel placing", self)
        self.cancel_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_action.setEnabled(False)  # only while placing, so Esc keeps its other uses
        self.cancel_action.triggered.connect(self.viewport.cancel_placing)
        self.addAction(self.cancel_action)
        for a in (new, self.pause_action, self.step_action, self.paste_action, keys):
            tb.addAction(a)

    def _not_ready(self, needs: int) -> str | None:
        """Why an action that sends to the host or starts a job on it cannot go now, or None: the one rule every such
        action asks, with what it `needs` (UNHELD … LIVE), so none slips past a hold, a rebuild or a start."""
        if needs >= HOST and self.welcome is None:
            return NOT_CONNECTED
        if needs >= WORLD and self.info is None:
            return NO_WORLD
        held = in_sentence(self._held.title) if self._held is not None else None
        if what := (self.busy if needs >= IDLE else None) or held:
            return f"Wait for {what} to finish"
        if needs >= IDLE and self.starting:
            return "Wait for the new world to start"
        if needs >= LIVE and self.session is not None and self.session.live is None:
            return NOT_IN_SESSION
        return None

    def _go_live(self, branch_id: int | None) -> None:
        """The host's world now plays `branch_id` of the session (None: no branch of it): keys, Step and edits follow."""
        self.session.live = branch_id
        self._refresh_controls()

    def _refresh_controls(self) -> None:
        """Grey out New world, Branch, Open…, Export, Preview, Play, Paste object and the events the world cannot take
        (no host, no world, a start, rebuild, preview, Open… or keep on its way), the tooltip saying why. The one
        place: a Gate attribute's setter and _go_live call it whenever what it reads changes."""
        if not self._built:
            return
        if self.info is not self._events_for:  # a new world or none: its events (the panel's status is said once)
            self._events_for = self.info
            self.events_panel.set_capabilities(unavailable("events", self.info) if self.info else NO_WORLD,
                                               unavailable("text_events", self.info) if self.info else NO_WORLD)
        why = self._not_ready(IDLE)
        self.timeline.block_open(why and why + (": its frames would belong to neither session" if self.busy else ""))
        self.timeline.block_export(self._not_ready(UNHELD))
        self.timeline.block_save(self._not_ready(UNHELD))  # what save_to refuses
        why = self._not_ready(HOST)
        self.prompt_panel.block_new_world(why)
        self.new_action.setEnabled(why is None)
        self.new_action.setToolTip(why or NEW_WORLD_TIP)
        self.timeline.block_branch(why)
        self.explorer.block_preview(self._not_ready(WORLD), self._not_ready(LIVE))
        reason = self._edit_unavailable()
        self.object_panel.set_available(reason is None, reason or "")
        self.paste_action.setEnabled(reason is None)
        self.paste_action.setToolTip(reason or PASTE_TIP)
        if reason is not None:
            self.viewport.cancel_placing()

    # ------------------------------------------------------------------ connection
    def connect_host(self) -> None:
        """(Re)connect: a fresh worker thread owns a fresh client; whatever the old one knew is gone."""
        if self.worker_thread is not None:
            self.worker_thread.stop()  # it may still be connecting: the window does not wait for it
            self.worker_thread = None
        self.welcome = None
        self._forget_requests()
        self.caps_by_backend, self.refused_caps = {}, {}  # the host may have restarted with other backends
        self._forget_session()
        self.settings_panel.set_connection(False, "Connecting…", self.address)
        self.viewport.set_message(f"Connecting to the host at {self.address}…")
        wt = WorkerThread(self.address, timeout=self.options.timeout)
        w = wt.signals
        w.connected.connect(self.on_connected)
        w.connection_failed.connect(self.on_connection_failed)
        w.connection_lost.connect(self.on_connection_lost)
        w.session_started.connect(self.on_session_started)
        w.frame_received.connect(self.on_frame)
        w.done.connect(self.on_done)
        w.failed.connect(self.on_failed)
        w.progress.connect(self.on_progress)
        w.session_ended.connect(self.on_session_ended)
        w.host_recording_stopped.connect(self.on_host_recording_stopped)
        w.event_not_fired.connect(self.on_event_not_fired)
        w.client_warned.connect(self.on_client_warned)
        self.worker_thread = wt
        wt.start()

    def submit(self, command: str, **kw: Any) -> bool:
        """Send a command to the worker; False (and the status bar says why) when no host is connected."""
        if self.worker_thread is None or self.welcome is None:
            self.show_error(NOT_CONNECTED)
            return False
        self.worker_thread.worker.submit(command, **kw)
        self._sent = True
        return True

    def _forget_requests(self) -> None:
        """The worker that sent them is gone (lost, or replaced by a reconnect): no start or settings request still on
        its way will be answered, so none may grey out Open… or decide what Pause shows."""
        self.asked_settings, self.starting = [], False

    def on_connected(self, welcome: dict) -> None:
        self.welcome = welcome
        version = f"{welcome.get('protocol_major')}.{welcome.get('protocol_minor')}"
        self.settings_panel.set_connection(True, f"Connected to {welcome.get('host', 'host')} (protocol {version})" + (f" — {self.host_note}" if self.host_note else ""), self.address)
        self.settings_panel.set_backends(list(welcome.get("backends", [])), self.options.backend or welcome.get("default_backend"))
        opened, self._opened_kind = self._opened_kind, ""
        if missing := self._select_backend(opened):  # a session opened before the host answered (play --session)
            self.show_error(missing)
        elif (asked := self.options.backend) and self.settings_panel.backend.findText(asked) < 0:  # play --backend
            message = f"--backend asked for {self._not_served(asked)} (drop --backend, or run a host that serves {asked})"
            self.show_error(message)
            print(f"worldbridge play: {message}", file=sys.stderr)
        self.viewport.set_message("Connected. Press New world to start.")
        if self.options.autostart:
            self.options.autostart = False
            self.new_world(self.options.prompt or self.prompt_panel.prompt())

    def on_connection_failed(self, message: str) -> None:
        self.welcome = None
        self.settings_panel.set_connection(False, message, self.address)
        self.viewport.set_message(message)
        self.statusBar().showMessage(message)

    def on_connection_lost(self, message: str) -> None:
        self._forget_requests()
        self._forget_session(f"host gone — {NO_WORLD_RUNNING}")
        self.on_connection_failed(f"Lost the host: {message}")

    def on_session_ended(self, message: str) -> None:
        """The host closed our session (idle timeout, fatal error): keep the editor's data, say what to do."""
        self._forget_session(f"the host ended the session — {NO_WORLD_RUNNING}")
        self.viewport.set_message(message)
        self.show_error(message)

    def _forget_session(self, why: str = NO_WORLD_RUNNING) -> None:
        """No host session any more (ended, connection lost, reconnecting): the recorded branches stay; nothing may act
        as if the old world still ran (badges, enabled controls, pending forks, events and edits); `why` is said on the
        frame left and in the status bar."""
        self.info, self._no_world = None, why
        self.viewport.cancel_placing()
        if self.session is not None:
            self._go_live(None)
            self._timeline_dirty = True  # the tree stops marking a branch "live"
        self.busy = None
        self.explorer.set_busy(False)
        self.pending_fork, self.asked_events, self.pending_edits = None, [], []
        self._clear_pending()
        self.status_backend.setText(why)
        self._show_backend()
        self.settings_panel.set_session(None)
        self._show_fps()
        self._apply_prompt_caps()
        self._pause_confirmed("the host's world went away before it confirmed the pause")

    # ------------------------------------------------------------------ sessions and frames
    def new_world(self, prompt: PromptSpec, backend: str | None = None) -> None:
        """Start a new world on the host (a new root in the branch tree); `backend` for a retry of a refused start,
        which must not follow the Backend box the user may have changed meanwhile."""
        if reason := self._not_ready(HOST):
            self.show_error(reason)
            return
        backend = backend or self.settings_panel.backend.currentText() or self.options.backend
        self.pending_prompt = prompt
        self._autosave_due = 0.0  # a new world's first frames get the 30 s protection whatever the last autosave took
        self._start_kind["start"] = backend or (self.welcome or {}).get("default_backend", "")
        sent = fit_prompt(prompt, self._caps_for(self._start_kind["start"]))
        settings = self._with_asked(self.kept_settings)
        self.starting = self.submit("start", purpose="new", backend=backend or None, mode=self.mode,
                    fps=self.fps_asked, seed=prompt.seed,
                    text=sent.text, image=sent.image_png, sketch=sent.sketch_png,
                    action_map=(self.session.action_map() or None) if self.session else None,
                    settings=settings)

    def on_session_started(self, info: dict, purpose: str) -> None:
        self.info, self._resim_from = info, None
        self.starting = False  # New world, Branch and Preview can go again
        self._settings_now(info.get("settings", {}), whole=True)
        self.epoch = int(info.get("epoch", 0))
        self.pending_fork = None
        self.asked_events = []
        self._clear_pending()
        if self.session is None:
            self.session = Session(keymap=self.keymap.to_dict())
        s = self.session
        s.backend_kind, s.backend_name = info["backend_kind"], info["backend_name"]
        size, fps = (int(info["width"]), int(info["height"])), float(info.get("fps", DEFAULT_FPS))
        s.width, s.height = size  # what an older editor, which keeps one size, opens the saved session at
        s.fps = fps  # and the one rate it opens it at
        s.action_names = list(info.get("action_names", []))
        asked = (self.pending_prompt or PromptSpec()) if purpose == "new" else self._resim_prompt
        sent = fit_prompt(asked, info, rebuild=purpose != "new")
        self._prompt_note = dropped_note(asked, sent, info)
        if purpose == "new":
            seed = sent.seed if sent.seed is not None else info.get("seed")  # the host reports the seed it drew
            if sent.seed is None and isinstance(seed, int):
                self.prompt_panel.seed.setValue(seed)  # shown, so this world can be made again
            root = s.new_root(PromptSpec(seed, sent.text, sent.image_png, sent.sketch_png, info["backend_kind"]), fps=fps,
                              size=size)
            self._go_live(root.id)
            self.timeline.set_session(s)
            self.events_panel.clear_fired()
            self._add_unsaved(sent.sketch_png is not None)  # a drawn sketch is work too: closing keeps it
        elif s.live is not None:
            s.branches[s.live].fps, s.branches[s.live].size = fps, size  # the rate and size the host rebuilt it at
        self._rebuild_resolver()
        self.viewport.stats.reset()
        self.status_backend.setText(f"{badge_text(info['backend_kind'], info['backend_name'])}   session {info['session_id'][:8]}")
        self.events_panel.set_event_types(list(info.get("event_types", [])))
        self.object_panel.set_frame_size(*size)  # objects are pasted into the host's world
        self.pending_edits = []
        self.caps_by_backend[info["backend_kind"]] = info
        self._apply_prompt_caps()
        self.explorer.set_actions(int(info.get("num_latent_actions", len(s.action_names))), s.action_names, s.latent_names)
        self._fps_own = purpose == "new" and self.fps_asked is None  # a rebuild asks for the rate its session kept
        self.settings_panel.set_session(info)
        # a rebuild steps through its frames, then resumes in the mode shown (asked when it began, or since): keep showing it
        self._follow_mode(self.mode if purpose == "resim" else info.get("mode", self.mode))
        self.current_action = self.resolver.resolve(self.keymap.idle) or 0
        self.view_frame(None)  # show the new world, not a frame of the old one still under review
        if purpose == "new":  # a rebuild's world plays once its replay is done
            self._play_held()
        if self.timeline.host_record.isChecked():  # the host's recording ended with its old session: keep recording
            self.submit("record_start")
        if purpose == "new" and self._prompt_note:
            self.show_error(self._prompt_note)

    def on_frame(self, frame) -> None:
        if self.worker_thread is None:
            return  # the window shut down: a frame the host made after the pause it did not confirm in time
        if self.info is None or frame.session_id != self.info["session_id"] or frame.epoch < self.epoch:
            return  # a late frame of an old session or timeline
        if frame.session_id == self._resim_from:
            return  # the world a rebuild is replacing: its frames are not the rebuilt branch's
        rewind, edited = self._new_epoch(frame) if frame.epoch > self.epoch else (False, False)
        replayed = False
        fired = [] if edited else self._take_fired(frame.events)
        s = self.session
        if s is not None and s.live is not None:
            live = s.branches[s.live]
            if live.parent_frame is not None and frame.index <= live.parent_frame:
                replayed = True  # a rebuild replaying recorded frames: their events were fired long ago
                self._check_resim(frame)
            else:
                keep = self.recording and self._recorded_count() < MAX_RECORDED
                if self.recording and not keep:
                    self.timeline.record.setChecked(False)
                    self.show_error(f"recording stopped at {MAX_RECORDED} frames: save the session to keep them")
                image = np.ascontiguousarray(frame.image) if keep else None
                rec = FrameRecord(frame.index, int(frame.action), list(frame.events), fired, image,
                                  settings=self._settings_due)
                if edited:
                    rec.action, rec.edits = self._edit_action, [*self._edits_before, self.pending_edits[0]]
                added = s.add_frame(rec, rewind=rewind)
                if added:
                    self._settings_due = {}
                    if image is not None:
                        self._recorded += 1
                        self._add_unsaved(1)
                if rewind or (added and image is not None):
                    self._timeline_dirty = True  # the recorded frames changed: the scrubber and thumbnails follow
                elif added:
                    self.timeline.show_length(s.live)  # only the branch got longer: its frame count, no re-read
        if self.viewing is None:
            self.viewport.show_frame(ShownFrame(frame.image, frame.index, frame.epoch, frame.seq, frame.client_ts, frame.received_ts))
        if edited:
            self.pending_edits.pop(0)
        for caption in ([] if edited or replayed else frame.events):
            self.events_panel.on_fired(caption, frame.index)
            self.statusBar().showMessage(f"Event fired on frame {frame.index}: {caption}", 3000)

    def _take_fired(self, captions: list[str]) -> list[dict]:
        """The pending requests whose captions this frame shows: the host fires them in turn (on a world model each
        after the held one's `hold` frames), so a rebuild must replay each before the frame it really fired on."""
        fired: list[dict] = []
        for caption in captions:
            at = next((i for i, (_, c, _) in enumerate(self.pending_events) if c == caption), None)
            if at is not None:  # requests before it never showed: the backend refused them (their errors come
                fired.append(self.pending_events[at][0])  # after this frame), so on_event_not_fired takes them first
                self._unshown.extend(self.pending_events[:at])
                self._set_pending(self.pending_events[at + 1:])
        return fired

    def _set_pending(self, pending: list[tuple[dict, str, int | None]]) -> None:
        """The events accepted and not yet fired; the Events tab lists them as waiting their turn."""
        self.pending_events = pending
        self.events_panel.show_waiting([caption for _, caption, _ in pending])

    def _clear_pending(self) -> None:
        """A new world, branch or rewind: nothing queued fires, and no error still to come is for a passed-over one."""
        self._unshown = []
        self._set_pending([])

    def _new_epoch(self, frame) -> tuple[bool, bool]:
        """The first frame of a new epoch (a branch, an edit or a rewind) moves the live branch; (rewind, edited)."""
        self.epoch = frame.epoch
        self._settings_due = dict(self._in_force)  # a branch, edit or rewind: its next frame notes them all
        if self.pending_edits and "edit" in frame.events and self.session is not None and self.session.live is not None:
            self._fork_edit(frame.index)  # the host re-sent the current frame, edited: it starts a branch of its own
            return False, True
        if self.pending_events:  # a branch or rewind empties the host's queue: events still waiting their turn never fire
            self.events_panel.on_dropped([caption for _, caption, _ in self.pending_events],
                                         "previewing the latent actions emptied the host's event queue"
                                         if self.busy == PREVIEWING else "the world branched before their turn")
        self._clear_pending()
        if self.pending_fork is not None and self.session is not None:
            self._go_live(self.pending_fork.id)
            self.timeline.set_session(self.session)
            self.pending_fork = None
            return False, False
        return True, False  # the host went back on the same branch (the explorer branches back to where it began)

    def _fork_edit(self, index: int) -> None:
        """The live branch forks before `index`: the edited frame `index` is the new branch's first own frame, and
        it keeps the action that made the unedited frame, so a rebuild can step there and edit again."""
        s = self.session
        before = {r.index: r for r in s.path(s.live)}.get(index)
        self._edit_action = before.action if before is not None and index > 0 else -1
        self._edits_before = list(before.edits) if before is not None else []  # a frame edited again keeps them all
        self._go_live(s.fork_edit(s.live, index).id)
        self.timeline.set_session(s)

    def _recorded_count(self) -> int:
        """Frames with pixels in memory. Rewinds, Open… and new sessions drop frames without counting down, so at the
        limit the real number is counted once (otherwise recording would stay off for the rest of the run)."""
        if self._recorded >= MAX_RECORDED:
            self._recorded = self.session.images_held() if self.session is not None else 0
        return self._recorded

    def _check_resim(self, frame) -> None:
        """While a branch is rebuilt, compare the host's frames with the recorded ones (is the backend deterministic?)."""
        if frame.index in self._resim_edited and "edit" not in frame.events:
            return  # the frame before its edit: the recording holds the edited one
        expected = self._resim_expect.get(frame.index)
        if expected is not None and expected.shape == frame.image.shape and not np.array_equal(expected, frame.image):
            self.resim_mismatches += 1

    def _refresh_timeline(self) -> None:
        if self._timeline_dirty and not self.timeline.replaying():
            self._timeline_dirty = False
            self.timeline.refresh()

    # ------------------------------------------------------------------ input
    def _rebuild_resolver(self) -> None:
        if self.info is None:
            return
        n = int(self.info.get("num_latent_actions", len(self.info.get("action_names", []))))
        self.resolver = ActionResolver(list(self.info.get("action_names", [])), n, self.session.latent_names if self.session else {})

    def send_action(self, action: int, pressed_ts: float | None = None) -> None:
        self.seq += 1
        if pressed_ts is not None:
            self.viewport.stats.press_ts[self.seq] = pressed_ts
        self.current_action = action
        self.submit("act", action=int(action), seq=self.seq)

    def on_key_pressed(self, key: int, ts: float) -> None:
        if self.viewing is not None:
            return
        if reason := self._not_ready(LIVE):  # only the opened session's case is news: the viewport already says
            if reason == NOT_IN_SESSION:  # "press New world", and a busy job shows its progress
                self.statusBar().showMessage(reason, 8000)
            return
        name = key_name(key)
        ref = self.keymap.action_for(name)
        if ref is None:
            return
        if self.resolver.resolve(ref) is None:
            self.statusBar().showMessage(f"Key {name} plays '{ref}', which this backend has no action for: edit the keys (Keys…) or name a latent action '{ref}'", 5000)
            return
        self.held.press(name)
        action = self.held.current(self.keymap, self.resolver)
        if self.mode == "step" or action != self.current_action:
            self.send_action(action, ts)  # step mode: every press is one frame

    def on_key_released(self, key: int, ts: float) -> None:
        if not self.held.release(key_name(key)) or self._not_ready(LIVE):
            return
        action = self.held.current(self.keymap, self.resolver)
        if self.mode == "step":
            self.current_action = action
        elif action != self.current_action:
            self.send_action(action, ts)

    def _play_held(self) -> None:
        """A world that starts playing (New world, a rebuild) moves with the keys still held, as the old one did."""
        if self.mode != "step" and self.held:
            action = self.held.current(self.keymap, self.resolver)
            if action != self.current_action:
                self.send_action(action)

    def _on_focus(self, focused: bool) -> None:
        if not focused and self.held:
            self.held.clear()
            if not self._not_ready(LIVE) and self.mode != "step":
                self.send_action(self.held.current(self.keymap, self.resolver))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Clicking, tabbing or typing into the text prompt or free-text event box starts the text encoder's load."""
        if event.type() == QEvent.Type.KeyPress or (event.type() == QEvent.Type.FocusIn and event.reason() in USER_FOCUS):
            self.warm_text()
        return super().eventFilter(watched, event)

    def warm_text(self) -> None:
        """Load the text encoder now (once), not at launch, where its imports stall the first seconds of play."""
        warm, self._warm_text = self._warm_text, None
        if warm is not None:
            warm()

    def _play_focus(self) -> None:
        """Back to playing (Live, Branch): the keys go to the viewport again, not to the scrubber or tree used to
        pick a frame (whose arrow keys would scrub instead of moving the player)."""
        self.viewport.setFocus(Qt.FocusReason.OtherFocusReason)

    def edit_keys(self) -> None:
        dlg = KeyMapDialog(self.keymap, self.resolver.names(), self)
        if dlg.exec():
            self.set_keymap(dlg.keymap())

    def set_keymap(self, keymap: KeyMap) -> None:
        self.keymap = keymap
        self.held.clear()
        if self.session is not None:
            self.session.keymap = keymap.to_dict()

    def set_latent_names(self, names: dict[int, str]) -> None:
        if self.session is not None:
            self.session.latent_names = dict(names)
        self._rebuild_resolver()
        self.statusBar().showMessage("Latent action names saved with the session; bind them in Keys…", 4000)

    # ------------------------------------------------------------------ play controls
    def _set_pause_checked(self, paused: bool) -> None:
        self.pause_action.blockSignals(True)
        self.pause_action.setChecked(paused)
        self.pause_action.setText("Resume" if paused else "Pause")
        self.pause_action.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay if paused else QStyle.StandardPixmap.SP_MediaPause))
        self.pause_action.blockSignals(False)
        self.settings_panel.show_mode("step" if paused else "realtime")  # the panel's mode box agrees with Pause
        self.viewport.set_mode_label("PAUSED (step mode)" if paused and self.viewing is None else self.viewport.mode_label if self.viewing else "")

    def set_paused(self, paused: bool) -> None:
        """Pause = the host's step mode (one frame per input); resume = realtime again with the held action."""
        if reason := self._not_ready(UNHELD):  # the hold paused it: playing now would outrun the work being kept
            self._set_pause_checked(self.mode == "step")
            self.show_error(reason)
            return
        self.mode = "step" if paused else "realtime"
        self._set_pause_checked(paused)
        if paused:  # no frames to stall while paused
            self.warm_text()
        if self.info is None:  # nothing runs yet: the next world starts this way
            self.statusBar().showMessage(f"The next world starts {'paused' if paused else 'in realtime'}", 4000)
            if self.starting:  # the one on its way (a New world, a rebuild) was asked for in the other mode: switch
                # it once it runs
                self._ask_settings({"mode": self.mode})
            return
        self._ask_settings({"mode": self.mode})
        if not paused:
            self.send_action(self.held.current(self.keymap, self.resolver))

    def step_once(self) -> None:
        if reason := self._not_ready(LIVE):
            self.show_error(reason)
            return
        if self.mode != "step":
            self.set_paused(True)
        self.send_action(self.held.current(self.keymap, self.resolver))

    def play_once(self, action: int) -> None:
        """Show one latent action on the live world: one frame when paused, half a second otherwise."""
        if reason := self._not_ready(LIVE):
            self.show_error(reason)
            return
        if self.mode == "step":
            self.send_action(action)
            return
        self.send_action(action)
        QTimer.singleShot(500, lambda: self.send_action(self.held.current(self.keymap, self.resolver)))

    def change_settings(self, changes: dict) -> None:
        """The Settings panel's changes (its mode box too); refused, the panel and Pause show what is in force."""
        if reason := self._not_ready(UNHELD):
            self.settings_panel.apply_settings(self._in_force)
            self.show_error(reason)
        else:
            self._ask_settings(changes)
        if "mode" in changes:
            self._follow_mode()

    def _ask_settings(self, changes: dict) -> None:
        """Send a settings request; its answer says which of them to keep for new worlds (see on_done)."""
        if self.submit("settings", **changes):
            self.asked_settings.append(dict(changes))

    def _follow_mode(self, mode: str | None = None) -> None:
        """The host's world runs in `mode` (a start or settings answer; None: as before), unless a mode change still on
        its way there says otherwise: Pause shows the mode the world is about to run in, not one it is leaving."""
        self._host_mode = mode or self._host_mode
        asked = [a["mode"] for a in self.asked_settings if a.get("mode")]
        self.mode = asked[-1] if asked else self._host_mode
        self._set_pause_checked(self.mode == "step")
        self._show_fps()

    def _show_fps(self) -> None:
        """Settings and the viewport's figures show the rate the world plays at, and say when it is the world's own;
        step mode has no rate to keep to."""
        self.settings_panel.show_fps_own(self._fps_own and self.info is not None)
        live = self.info is not None and self.mode == "realtime"
        self.viewport.stats.target = (self.settings_panel.fps.value(), self._fps_own) if live else None

    def _settings_now(self, settings: dict, whole: bool = False) -> None:
        """The live world's sampling settings changed (a new world, a rebuild, a `settings` answer): the next recorded
        frame notes what changed, or, with `whole`, all of them (it starts a world or a branch)."""
        now = {k: settings[k] for k in MODEL_KNOBS if settings.get(k) is not None}
        changed = dict(now) if whole else {k: v for k, v in now.items() if self._in_force.get(k) != v}
        self._settings_due = changed if whole else {**self._settings_due, **changed}
        self._in_force = now

    def fire_event(self, event_type: str | None, text: str | None) -> None:
        if reason := self._not_ready(LIVE):
            self.events_panel.on_failed(reason, text)
            return
        self.asked_events.append({"event_type": event_type, "text": text})
        self.submit("event", event_type=event_type, text=text)
        if self.mode == "step":  # the event fires on the next frame (behind a held one, when its turn comes): make one
            self.send_action(self.held.current(self.keymap, self.resolver))

    # ------------------------------------------------------------------ frame edits and capabilities
    def _apply_prompt_caps(self) -> None:
        """Prompts are for the next New world: follow the backend chosen for it (one not played yet: all inputs on)."""
        kind = self.settings_panel.backend.currentText() or (self.info or {}).get("backend_kind", "")
        info = self._caps_for(kind)
        self.prompt_panel.set_capabilities(
            unavailable("text_prompt", info), unavailable("image_prompt", info), unavailable("sketch_prompt", info))

    def _caps_for(self, kind: str) -> dict | None:
        """What `kind` takes (the welcome omits it): its last session, else its refusals so far, else None: send all."""
        if kind in self.caps_by_backend or not self.refused_caps.get(kind):
            return self.caps_by_backend.get(kind)
        return {"backend_kind": kind, "backend_name": kind,
                "capabilities": [cap for cap in ALL if cap not in self.refused_caps[kind]]}

    def _edit_unavailable(self) -> str | None:
        """Why frame edits are off right now, or None."""
        if self.welcome is not None and not host_can_edit(self.welcome):
            return ("This host speaks protocol 1.0, which has no frame edits: update WorldBridge where the host runs "
                    "(`worldbridge serve`).")
        return self._not_ready(LIVE) or unavailable("edit", self.info)

    def _toggle_placing(self, on: bool) -> None:
        if on:
            self.object_panel.start_placing()
        else:
            self.viewport.cancel_placing()

    def _on_placing(self, on: bool) -> None:
        self.paste_action.blockSignals(True)
        self.paste_action.setChecked(on)
        self.paste_action.blockSignals(False)
        self.object_panel.set_placing(on)
        self.cancel_action.setEnabled(on)

    def begin_placing(self, layer: Layer) -> None:
        """Carry the object under the cursor over the live frame (a recorded frame being viewed goes back to live)."""
        if reason := self._edit_unavailable():
            self.show_error(reason)
            self._on_placing(False)
            return
        if self.viewing is not None:
            self.timeline.go_live()
        self.placing_layer = layer
        self.viewport.begin_placing(rgba_to_qimage(layer.rgba))

    def edit_at(self, x: int, y: int) -> None:
        """Paste the object with its top-left at frame pixel (x, y) of the live world's current frame."""
        if reason := self._not_ready(LIVE) or (None if self.placing_layer else "choose an object first (Objects tab)"):
            self.show_error(reason)
            return
        png = self.placing_layer.png()
        self.pending_edits.append({"layer": png, "x": int(x), "y": int(y)})
        self.submit("edit", layer=png, x=int(x), y=int(y))

    def explore(self, steps: int) -> None:
        if reason := self._not_ready(WORLD):
            self.show_error(reason)
            return
        self.busy = PREVIEWING
        self.held.clear()
        self.explorer.set_busy(True, 0, int(self.info.get("num_latent_actions", 1)))
        self.submit("explore", steps=int(steps), actions=int(self.info.get("num_latent_actions", len(self.info["action_names"]))), resume_mode=self.mode)

    # ------------------------------------------------------------------ recording and branching
    def set_recording(self, on: bool) -> None:
        self.recording = on
        self.statusBar().showMessage("Recording frames into the timeline" if on else "Recording stopped", 3000)

    def set_host_recording(self, on: bool) -> None:
        if self.info is None:
            return
        if reason := self._not_ready(UNHELD):
            self._show_host_record(not on, reason)
            return
        self.submit("record_start" if on else "record_stop")

    def on_host_recording_stopped(self, why: str) -> None:
        """The host ended its recording by itself (a full disk): show it off, and why, without asking it to stop."""
        self._show_host_record(False, f"Host recording stopped by the host: {why}")

    def _show_host_record(self, on: bool, message: str) -> None:
        """The host records (`on`) or not (it stopped, refused, or was not asked): the box shows that, without asking
        the host anything, and the status bar says why."""
        self.timeline.host_record.blockSignals(True)
        self.timeline.host_record.setChecked(on)
        self.timeline.host_record.blockSignals(False)
        self.show_error(message)

    def branch_from(self, branch_id: int, index: int) -> None:
        """Continue the world from frame `index` of a branch: a host branch when the frame is on the live timeline,
        otherwise the branch is rebuilt on the host by replaying its actions from frame 0."""
        s = self.session
        if s is None:
            self.show_error("no session to branch: record frames, or Open… a saved session")
            return
        if reason := self._not_ready(HOST):
            self.show_error(reason)
            return
        self.view_frame(None)
        self._play_focus()
        if s.live is not None and s.owner(branch_id, index) == s.owner(s.live, index) and index <= s.branches[s.live].last_index():
            self.pending_fork = s.fork(branch_id, index)
            self.pending_fork.fps = s.fps_of(s.live)  # the host's world branches on at the rate it plays at
            self.submit("branch", frame=int(index))
        else:
            self.resimulate(branch_id, index)

    def resimulate(self, branch_id: int, index: int) -> None:
        s = self.session
        path = [r for r in s.path(branch_id) if r.index <= index]
        missing = sorted((set(range(index + 1)) - {r.index for r in path})
                         | {r.index for r in path if r.edits and r.index > 0 and r.action < 0})
        if missing:
            self.show_error(f"cannot rebuild frame {index}: frames {missing[0]}…{missing[-1]} were never received "
                            f"(dropped in realtime), so their actions are unknown. Branch from a frame of the live "
                            f"timeline, or record in step mode.")
            return
        root = s.root_of(branch_id)
        self._resim_args, self._resim_prompt = (branch_id, index), root.prompt or PromptSpec()
        self._start_kind["resimulate"] = self._resim_prompt.backend or s.backend_kind or ""
        # a session saved before hosts refused prompt kinds a backend lacks stores them as sent: leave them out
        p = fit_prompt(self._resim_prompt, self._caps_for(self._start_kind["resimulate"]), rebuild=True)
        fork = s.fork(branch_id, index)
        # if the host refuses the rebuild, its old world goes on where it was; until then that world's frames belong to
        # no branch (the rebuild's branch starts with the rebuild's own frames)
        self._resim_undo, self._resim_from = (s.live, fork.id), (self.info or {}).get("session_id")
        self._go_live(fork.id)
        self.pending_fork = None
        self.timeline.set_session(s)
        self.busy = "rebuilding the branch"
        self.resim_mismatches = 0
        self._resim_expect = {r.index: r.image for r in path if r.image is not None}
        self._resim_edited = {r.index for r in path if r.edits}
        start = dict(backend=p.backend or s.backend_kind or None, fps=s.fps_of(branch_id), seed=p.seed, text=p.text,
                     image=p.image_png, sketch=p.sketch_png, action_map=s.action_map() or None)
        steps = [(r.action, r.fired, r.edits, r.settings) for r in path if r.index >= 1]
        first = path[0] if path and path[0].index == 0 else FrameRecord(0, -1)
        self.statusBar().showMessage(f"Rebuilding {plural(len(steps), 'frame')} on the host…")
        self.starting = self.submit("resimulate", start=start, steps=steps, resume_mode=self.mode, edits0=first.edits,
                                    settings0=first.settings,
                                    resume_settings=self._with_asked(self._in_force if self.info
                                                                     else self.kept_settings))

    def _with_asked(self, settings: dict) -> dict:
        """These settings and the ones chosen before this click whose answer is still on its way: a start or a rebuild
        sent now must not bring back what the user just changed."""
        out = dict(settings)
        for asked in self.asked_settings:
            out.update({k: v for k, v in asked.items() if k in MODEL_KNOBS})
        return out

    def view_frame(self, rec: FrameRecord | None) -> None:
        """Show a recorded frame (scrubbing, replay) instead of the live one; None returns to live."""
        self.viewing = rec
        if rec is None:
            self.viewport.set_mode_label("PAUSED (step mode)" if self.mode == "step" else "")
            self._show_backend()
            return
        self.held.clear()
        self._show_backend()
        label = "REPLAY" if self.timeline.replaying() else "VIEWING"
        self.viewport.set_mode_label(f"{label} frame {rec.index} — press Live to return")
        self.viewport.show_frame(ShownFrame(rec.image, rec.index, -1), live=False)

    def _show_backend(self) -> None:
        """The viewport's badge names the backend that made the frame shown: a recorded frame's world while viewing
        one (never the live world's, or the sandbox could pass for the world model), else the host's running world."""
        s, bid = self.session, self.timeline.branch_id
        if self.viewing is not None and s is not None and bid in s.branches:
            self.viewport.set_backend(*s.backend_of(bid))
        elif self.info is not None:
            self.viewport.set_backend(self.info["backend_kind"], self.info["backend_name"])
        else:
            self.viewport.set_backend("", "", self._no_world)

    # ------------------------------------------------------------------ worker answers
    def on_done(self, command: str, result: Any) -> None:
        """The host answered a command: the window takes in what it did and the status bar says so."""
        if command == "event":
            caption = str(result.get("caption", ""))
            if self.asked_events:
                self._set_pending([*self.pending_events, (self.asked_events.pop(0), caption, result.get("req_id"))])
            self.statusBar().showMessage(f"Event queued: {caption} (it fires when its turn comes)", 3000)
        elif command == "settings":
            self._settings_taken(result.get("settings", {}) if isinstance(result, dict) else {})
        elif command == "explore":
            assert isinstance(result, ExploreResult)
            self.busy = None
            self.explorer.show_result(result.previews, result.start_index)
        elif command == "resimulate":
            assert isinstance(result, ResimResult)
            self._rebuilt(result)
        elif command in ("record_start", "record_stop"):
            self.statusBar().showMessage(f"Host recording {'started' if command == 'record_start' else 'stopped'}: {result.get('path', '')}", 8000)
        elif command == "branch":
            self.statusBar().showMessage("Branched: the world continues from the selected frame", 4000)
        elif command == "edit":
            self.object_panel.on_edited(int(result.get("frame_index", -1)))
            self.statusBar().showMessage(f"Object pasted into frame {result.get('frame_index')}: the world continues "
                                         "from the edited frame (a new branch)", 5000)

    def _settings_taken(self, settings: dict) -> None:
        """The host took a settings change: every new world gets it too, and the panel and Pause show it."""
        asked = self.asked_settings.pop(0) if self.asked_settings else {}
        if asked.get("fps") is not None:  # the user's rate: new worlds get it, and this one no longer plays its own
            self.fps_asked, self._fps_own = float(settings.get("fps", asked["fps"])), False
            if self.session is not None and self.session.live is not None:  # its branch's exports and replay too
                self.session.branches[self.session.live].fps = self.fps_asked
        self.kept_settings.update({k: v if settings.get(k) is None else settings[k] for k, v in asked.items()
                                   if k in MODEL_KNOBS})
        self._run_with(settings, settings.get("mode") or self.mode)
        if asked is self._pause_asked:
            self._pause_confirmed()

    def _run_with(self, settings: dict, mode: str, whole: bool = False) -> None:
        """The live world runs with these settings and mode (see _settings_now): the panel and Pause show them."""
        self._settings_now(settings, whole)
        self.settings_panel.apply_settings(settings)
        self._follow_mode(mode)

    def _rebuilt(self, result: ResimResult) -> None:
        """A rebuild replayed its frames: the world goes on live with the settings and mode the host reports."""
        self.busy = None
        self._run_with(result.session.get("settings", {}), result.session.get("mode", self.mode), whole=True)
        self._play_held()
        n = self.resim_mismatches
        note = (f" ({plural(n, 'frame')} {'differs' if n == 1 else 'differ'} from the recording: this backend samples "
                "differently on replay)" if n else "")
        prompt_note = f" — {self._prompt_note}" if self._prompt_note else ""
        self.statusBar().showMessage(f"Branch rebuilt up to frame {result.last_index}; the world continues from "
                                     f"there{note}{prompt_note}", 8000)

    def on_failed(self, command: str, message: str, capability: str = "") -> None:
        """The host refused a command, or it failed: its handler undoes what the window began for it and says why."""
        if command in ("start", "resimulate"):
            self.starting = False  # refused: the next New world starts in the mode Pause shows
        prompt_cap = capability if capability.endswith("_prompt") else None  # an edit or event refusal: no retry
        retry = self._learn_refusal(command, prompt_cap or refused_prompt(message))
        handler = {"event": self._event_refused, "edit": self._edit_refused, "record_start": self._host_record_refused,
                   "settings": self._settings_refused, "mode": self._mode_refused, "branch": self._branch_refused,
                   "explore": self._job_failed, "resimulate": self._job_failed}.get(command, self._refused)
        handler(command, message)
        if retry and command == "start":
            self.new_world(self.pending_prompt or PromptSpec(), self._start_kind["start"])
        elif retry:
            self.resimulate(*self._resim_args)

    def _learn_refusal(self, command: str, cap: str | None) -> bool:
        """Learns a prompt kind a start or rebuild was newly refused (its input greys out); True: resend without it."""
        kind = self._start_kind.get(command)
        if command not in ("start", "resimulate") or cap is None or kind is None or kind in self.caps_by_backend:
            return False
        refused = self.refused_caps.setdefault(kind, set())
        if cap in refused:
            return False
        refused.add(cap)
        self._apply_prompt_caps()
        return True

    def _refused(self, command: str, message: str) -> None:
        self.show_error(f"{command}: {message}")

    def _event_refused(self, _command: str, message: str) -> None:
        refused = self.asked_events.pop(0) if self.asked_events else {}  # the oldest unanswered request is the refused one
        self.events_panel.on_failed(message, refused.get("text"))

    def on_event_not_fired(self, message: str, event_req_id: int | None = None) -> None:
        """The backend refused an accepted event when its frame was made: the one its request's req_id names, or, from
        a host that names none, the oldest waiting one, as they fire in turn."""
        named = (lambda entry: entry[2] == event_req_id) if event_req_id is not None else (lambda entry: True)
        at = next((i for i, entry in enumerate(self._unshown) if named(entry)), None)
        if at is not None:  # passed over by a later event's frame, delivered before this error
            self.events_panel.on_not_fired(self._unshown.pop(at)[1], message)
        elif (at := next((i for i, entry in enumerate(self.pending_events) if named(entry)), None)) is not None:
            self.events_panel.on_not_fired(self.pending_events[at][1], message)
            self._set_pending(self.pending_events[:at] + self.pending_events[at + 1:])
        self.show_error(f"Event not fired: {message}")

    def _edit_refused(self, _command: str, message: str) -> None:
        if self.pending_edits:
            self.pending_edits.pop(0)
        self.object_panel.on_failed(message)
        self.show_error(f"Edit refused: {message}")

    def _host_record_refused(self, _command: str, message: str) -> None:
        self._show_host_record(False, f"Host recording refused: {message} — nothing is recorded on the host")

    def _settings_refused(self, command: str, message: str) -> None:
        refused = self.asked_settings.pop(0) if self.asked_settings else {}  # none of it is kept, and the panel
        self.settings_panel.apply_settings(self._in_force)  # and Pause show what is in force
        if "mode" not in refused:
            self._refused(command, message)
        elif self.info is None:  # queued for a start the host refused (that refusal is shown):
            self._follow_mode(refused["mode"])  # it reached no world and stays the choice for the next one
        else:
            self._mode_refused(command, message)
        if refused is self._pause_asked:  # answered all the same: every frame made before it has come, and the world
            self._pause_refused = True  # plays on
            self._pause_confirmed(f"the host refused the pause ({message})")

    def _mode_refused(self, command: str, message: str) -> None:
        """A refused switch ("mode": ours, out of step mode; "settings": the user's): Pause shows the mode in force."""
        self._follow_mode("step" if command == "mode" else None)
        now = "stays paused (step mode)" if self.mode == "step" else "runs in realtime"
        self.show_error(f"Mode change refused: {message} — the world {now}")

    def _branch_refused(self, command: str, message: str) -> None:
        if self.pending_fork is None or self.session is None:
            self._refused(command, message)
            return
        fork, self.pending_fork = self.pending_fork, None  # outside the host's window: rebuild it instead
        del self.session.branches[fork.id]
        self.resimulate(fork.parent, fork.parent_frame)

    def _job_failed(self, command: str, message: str) -> None:
        """A preview or rebuild that failed: the host is free again (a rebuild's empty branch goes)."""
        self.busy = None
        self.explorer.set_busy(False)
        if command == "resimulate":
            self._undo_resim()
        self._refused(command, message)

    def _undo_resim(self) -> None:
        """A rebuild the host refused before its first frame: drop its empty branch and go back to the live one (the
        host's old session is still running); one that failed part way keeps the frames it made."""
        s, (previous, fork_id) = self.session, self._resim_undo
        self._resim_expect, self._resim_edited, self._resim_from = {}, set(), None
        if s is None or fork_id not in s.branches or s.branches[fork_id].frames or s.children(fork_id):
            return
        del s.branches[fork_id]
        self._go_live(previous if previous in s.branches else None)
        self.timeline.set_session(s)

    def on_progress(self, command: str, done: int, total: int) -> None:
        if command == "explore":
            self.explorer.set_busy(True, done, total)
        elif self.statusBar().currentMessage() != self._error_shown:  # an error stays readable for its 10 s
            self.statusBar().showMessage(f"Rebuilding the branch on the host: {done}/{total} frames")

    def on_client_warned(self, message: str) -> None:
        """The client's warning that a text sent beside an image is not used (the image wins, docs/prompts.md): said
        once a window, in its words, in the status bar and on stderr, whichever client (a reconnect makes a new one)."""
        if not self._client_warned:
            self._client_warned = True
            self.show_error(message)
            print(f"worldbridge play: {message}", file=sys.stderr)

    def show_error(self, message: str) -> None:
        """Errors stay in the status bar for 10 s, and a rebuild's progress does not write over them."""
        self._error_shown = message
        self.statusBar().showMessage(message, 10000)

    # ------------------------------------------------------------------ save, load, export
    def run_job(self, title: str, fn: Callable, on_done: Callable[[Any], None] | None = None, dialog: bool = True,
                keeps_window: bool = False, kept: str | Callable[[], str] = "nothing was written",
                start: bool = True) -> Job:
        """Run fn(progress) on a thread with a progress dialog whose Cancel stops it; `kept` says what a cancel
        leaves. The window stays live. `start` False: the caller starts it (a hold, once the world is paused)."""
        job = Job(fn, self, title, keeps_window, kept)
        progress = None
        if dialog:
            progress = QProgressDialog(title, "Cancel", 0, 0, self)
            progress.setWindowTitle("WorldBridge")
            progress.setMinimumDuration(300)
            progress.setWindowModality(Qt.WindowModality.WindowModal)
            progress.canceled.connect(lambda: self._cancel(job))
            progress.setValue(0)  # shown after its minimum duration even before the job reports (a hold's pause wait)
            job.progressed.connect(lambda d, t: (progress.setMaximum(t), progress.setValue(d)))

        def finish(outcome: str) -> None:
            if progress is not None:
                progress.canceled.disconnect()  # closing the dialog emits it too: only the user's Cancel cancels
                progress.close()
                progress.deleteLater()
            if job in self.jobs:
                self.jobs.remove(job)
            if self._close_when_done and (job.keeps_window or job is self._held and title != KEEPING):  # waited for
                print(f"worldbridge play: {title} {outcome}", file=sys.stderr)
            self._close_if_pending()

        job.succeeded.connect(lambda r: (finish("done"), on_done(r) if on_done else None))
        job.errored.connect(lambda m: (finish(m), self.show_error(f"{title} {m}")))
        self.jobs.append(job)
        if start:  # on the next loop turn, so callers can connect to the returned job first; not again when a close
            # ran it meanwhile (_shut_down), as start() would run a finished job a second time
            QTimer.singleShot(0, job, lambda: job.isRunning() or job.isFinished() or job.start())
        return job

    def _cancel(self, job: Job) -> None:
        """A job's Cancel: it stops; a hold still waiting for its pause ends at once, nothing copied or written."""
        job.cancelled = True
        if job is self._held and self._copy_then is not None:
            self._copy_then = self._pause_asked = None
            self._pause_timer.stop()
            job.end_cancelled()

    def _snapshot(self) -> Session:
        """A copy safe to read from another thread while frames keep arriving."""
        s = self.session
        copy = Session(live=s.live, latent_names=dict(s.latent_names), keymap=self.keymap.to_dict(),
                       backend_kind=s.backend_kind, backend_name=s.backend_name, fps=s.fps, width=s.width,
                       height=s.height, action_names=list(s.action_names))
        for b in s.branches.values():
            copy.branches[b.id] = replace(b, frames=b.frames.copy())
        return copy

    def save_to(self, path: str | Path) -> Job | None:
        """Save the session on a job thread, with a progress dialog whose Cancel keeps the file saved before as it
        was; closing the window waits for it, as for an export. None (refused) while an Open… or a close's keep holds
        the window's session."""
        if self.session is None:
            raise ValueError("nothing to save yet: start a world first")
        if reason := self._not_ready(UNHELD):
            self.show_error(f"{Path(path).name} was not saved: {in_sentence(reason)}, then Save… again")
            return None
        snap, unsaved, path = self._snapshot(), self._unsaved, Path(path)

        def saved(p: Path) -> None:
            self._unsaved = max(0, self._unsaved - unsaved)  # frames recorded while it saved are still unsaved
            self._keeps_failed = 0  # a later close's failed keep warns again before it discards anything
            self._autosave_due = 0.0  # what comes next is new work: a long autosave before it must not hold it back
            self._forget_running()
            self.statusBar().showMessage(f"Saved {p}", 5000)

        return self.run_job(f"Saving {path.name}", lambda p: snap.save(path, p), saved, keeps_window=True,
                            kept=lambda: f"the old {path} is kept as it was" if path.exists() else "nothing was written")

    def load_from(self, path: str | Path) -> Job | None:
        """Open a session on a job thread, which also keeps the unsaved work in autosave_dir() (a big recording takes
        seconds to write; if it cannot be kept nothing is opened), the world held meanwhile and the work copied once
        its pause is confirmed (_hold_world); a session that cannot be read, or an open cancelled from its dialog,
        leaves the window's session as it was. None (refused) while a rebuild, a preview, another Open… or a close's
        keep runs: its frames or its keep belong to the window's session."""
        if reason := self._not_ready(IDLE):
            self.show_error(f"{Path(path).name} was not opened: {in_sentence(reason)}, then Open… it again "
                            "(the session in the window is unchanged)")
            return None

        def copy() -> tuple[Session | None, int, bytes, Path | None]:
            snap = self._unsaved_work()
            return (snap, self._unsaved, self.prompt_panel.canvas.to_png(),
                    self._autosave_path("replaced") if snap is not None else None)

        def work(taken: tuple, progress: Callable[[int, int], bool]) -> tuple[Session, tuple]:
            snap, keep = taken[0], taken[3]
            session = Session.load(path, onward(progress, 0, snap.images_held() if snap is not None else 0))
            if snap is not None:  # the bar goes on from the frames read
                self._keep(snap, keep, onward(progress, session.images_held()), ", so nothing was opened")
            return session, taken

        def opened(result: tuple[Session, tuple]) -> None:
            session, (_snap, unsaved, sketch, keep) = result
            if keep is not None:
                self._kept_work(keep, unsaved, sketch)
            self._resume = False  # _loaded shows the opened session, its world paused
            self._release_world()
            self._loaded(session)
            self._forget_running()

        job = self.run_job(f"Opening {Path(path).name}", work, opened, kept="the session in the window is as it was",
                           start=False)
        job.errored.connect(lambda _m: self._release_world())
        self._hold_world(job, copy)
        return job

    def _hold_world(self, job: Job, copy: Callable[[], tuple]) -> None:
        """`job` writes the window's unsaved work (Open…, a close): until it ends the world is paused and nothing is
        sent to it (_not_ready). It starts with copy()'s copy of the work, taken once the host confirms the pause: the
        frames it made before the pause landed come before its answer, so the copy holds them all, and no branch gets
        a hole (_pause_confirmed)."""
        asked = len(self.asked_settings)
        if self.info is not None:
            self._resume = self._resume or self.mode != "step"
            # as the mode box does (no text encoder load, no action sent); sent paused too: its answer follows any frame
            # a step input still makes
            self.change_settings({"mode": "step"})
        # answered after all before it; none sent (no world, the host known gone): nothing to wait for, not even a
        # request the lost host never answered
        self._pause_asked = self.asked_settings[-1] if len(self.asked_settings) > asked else None
        self._pause_refused = False
        self._held = job

        def start() -> None:
            job.fn = functools.partial(job.fn, copy())
            job.start()

        self._copy_then = start
        if self._pause_asked is None:  # no world: nothing to wait for (next loop turn: the caller connects to `job`)
            QTimer.singleShot(0, self, self._pause_confirmed)
        else:
            self._pause_timer.start(int(self.options.timeout * 1000))

    def _pause_confirmed(self, why_not: str = "") -> None:
        """The host answered the hold's pause, every frame it made before then received: the held job takes its copy
        and starts. With `why_not` it did not pause (the host refused, the world went away, or no answer came in
        time): it copies what there is, and says so in the status bar and on stderr."""
        start, self._copy_then, self._pause_asked = self._copy_then, None, None
        if start is None:
            return
        self._pause_timer.stop()
        if not why_not:  # every frame made before the answer has come (unanswered, the pause itself is on its way)
            self._sent = False
        else:
            message = (f"{self._held.title}: {why_not}, so it keeps the frames received until then, not any made "
                       "after")
            self.show_error(message)
            print(f"worldbridge play: {message}", file=sys.stderr)
        start()

    def _release_world(self, resume: bool = True) -> None:
        """The held job ended: the window acts again and, with `resume`, a world the hold paused plays again (without,
        a close's next keep still knows it played); a close waiting for the hold goes ahead."""
        self._held = None
        if resume:
            if self._resume and self.mode == "step":
                self.set_paused(False)
            self._resume = False
        self._close_if_pending()

    @staticmethod
    def _autosave_path(why: str) -> Path:
        """A name no window of this process had and no file has, so one window's keep never overwrites another's."""
        while True:
            path = autosave_dir() / (f"{time.strftime('%Y%m%d-%H%M%S')}-{why}-{os.getpid()}-{next(AUTOSAVE_NAMES)}"
                                     f"{FILE_SUFFIX}")
            if not path.exists():
                return path

    def _kept(self, paths: list[Path], lead: str = "The unsaved recording was kept in") -> None:
        message = f"{lead} {', '.join(map(str, paths))} (File ▸ Open… {'it' if len(paths) == 1 else 'them'})"
        self.statusBar().showMessage(message, 10000)
        print(f"worldbridge play: {message}", file=sys.stderr)

    def discard_unsaved(self) -> None:
        """For a caller whose frames are nobody's work (the screenshot tool): closing then keeps no autosave, and does
        not hold the world for frames still on their way (a caller that runs no event loop after it would never see the
        window close, and its network thread would outlive the process: Qt aborts)."""
        self._unsaved, self._sketch_kept, self._discarded = 0, self.prompt_panel.canvas.to_png(), True
        self._running.unlink(missing_ok=True)

    def _add_unsaved(self, n: int) -> None:
        self._unsaved += n
        self._changes += n

    def _autosave_tick(self) -> Job | None:
        """The timer's autosave, held back after a long one so it never takes more than AUTOSAVE_SHARE of a core
        (at 20,000 frames one takes seconds, on the cores the world runs on)."""
        return None if time.monotonic() < self._autosave_due else self.autosave_now()

    def autosave_now(self) -> Job | None:
        """Rewrite the running autosave on a job thread when unsaved work changed since the last one (the timer calls
        it), so a crashed editor leaves it for the next start; with nothing unsaved (saved, or kept on Open…) it goes."""
        if self.session is None or not self._unsaved:
            self._running.unlink(missing_ok=True)
            return None
        if self._changes == self._autosaved or any(j.title == AUTOSAVING for j in self.jobs):
            return None
        snap, path, self._autosaved = self._snapshot(), self._running, self._changes  # a failure is said once
        self._running_lock = self._running_lock or hold_running_lock(path)  # before the file exists

        def write(progress: Callable[[int, int], bool]) -> float:
            """Cancelled by a close (which kept the work in its own autosave): nothing written, or nothing left.
            Returns how long it took."""
            began = time.monotonic()
            snap.save(path, progress)  # a cancelled one stops between frames and leaves nothing
            if not progress(1, 1):  # the close removed the file before this one was published
                path.unlink(missing_ok=True)
            return time.monotonic() - began

        def written(took: float) -> None:
            self._autosave_due = time.monotonic() + took * (1 / AUTOSAVE_SHARE - 1)
            self._forget_running()

        return self.run_job(AUTOSAVING, write, written, dialog=False)

    def _forget_running(self) -> None:
        """Nothing unsaved (saved, or kept elsewhere): a crash must not offer the running autosave as lost work."""
        if not self._unsaved:
            self._running.unlink(missing_ok=True)

    def _kept_work(self, path: Path, unsaved: int, sketch: bytes) -> None:
        """The work counted in `unsaved`, and the canvas's `sketch`, are in `path` now (said in the status bar and on
        stderr); frames recorded since stay unsaved."""
        self._unsaved, self._sketch_kept = max(0, self._unsaved - unsaved), sketch
        self._keeps_failed = 0  # a later close's failed keep warns again before it discards anything
        self._kept([path])

    @staticmethod
    def _keep(snap: Session, path: Path, progress: Callable[[int, int], bool], then: str = "") -> Path:
        """Save unsaved work to its autosave; an OSError says where, why, what did not happen `then`, and the fix."""
        try:
            return snap.save(path, progress)
        except OSError as e:
            raise OSError(f"could not keep the unsaved recording in {path} ({e}){then}: Save… it first, or set "
                          f"${AUTOSAVE_ENV} to a writable folder") from e

    def _unsaved_work(self) -> Session | None:
        """What closing or Open… must keep (None: nothing): the unsaved frames, and a sketch drawn but never sent, as
        a world with no frames named "unsent sketch", whose prompt Open… puts back on the canvas."""
        canvas = self.prompt_panel.canvas
        sketch = canvas.to_png() if canvas.drawn() else None
        s = self.session
        if s is not None and sketch in {b.prompt.sketch_png for b in s.branches.values() if b.prompt}:
            sketch = None  # a world was made from it: the session holds it
        if sketch == self._sketch_kept:
            sketch = None
        if sketch is None and (s is None or not self._unsaved):
            return None
        snap = self._snapshot() if s is not None else Session(keymap=self.keymap.to_dict())
        if sketch is not None:
            kind = self.settings_panel.backend.currentText() or None
            snap.new_root(PromptSpec(sketch_png=sketch, backend=kind), name="unsent sketch")
        return snap

    def _loaded(self, session: Session) -> None:
        """Show an opened session; the host keeps its world paused until a branch continues the session."""
        session.live = None
        self.session = session
        self._close_path = None  # a close keeps this session's work in a file of its own
        self._unsaved, self._autosave_due = 0, 0.0  # the opened session's autosaves are not held back by the last one's
        if session.keymap:
            try:
                self.set_keymap(KeyMap.from_dict(session.keymap))
            except ValueError as e:
                self.show_error(f"the saved key map was ignored: {e}")
        self.pending_fork = None
        if self.info is not None and self.mode != "step":
            self.set_paused(True)
        self._apply_prompt_caps()
        self._rebuild_resolver()
        if self.info is not None:
            self.explorer.set_actions(int(self.info.get("num_latent_actions", 0)), list(self.info.get("action_names", [])), session.latent_names)
        self.timeline.set_session(session)
        last = max(session.branches, default=None)
        if last is not None:
            self.timeline.show_branch(last)
            root = session.root_of(last)
            if root.prompt:
                self.prompt_panel.set_prompt(root.prompt)
        missing = self._select_backend(session.backend_of(last)[0]) if last is not None else None
        if missing:
            self.show_error(missing)
            return
        self.statusBar().showMessage("Session opened: pick a branch and frame, then 'Branch from this frame' to continue it live", 8000)

    def _select_backend(self, kind: str) -> str | None:
        """New world makes the opened world's kind (with the prompt it was made from); the reason when it cannot."""
        box = self.settings_panel.backend
        if not kind or box.findText(kind) >= 0:
            box.setCurrentText(kind or box.currentText())
            return None
        if box.count() == 0:  # not connected yet: the host's answer selects it, or says it cannot (on_connected)
            self.options.backend = self._opened_kind = kind
            return None
        return (f"Session opened, but its world was made by {self._not_served(kind)} (run a host that serves {kind} to "
                "make it again)")

    def _not_served(self, kind: str) -> str:
        """`kind`, which this host does not serve, said with the backends it serves and the one New world starts."""
        box = self.settings_panel.backend
        served = ", ".join(box.itemText(i) for i in range(box.count()))
        return (f"the {kind} backend, which this host does not serve (it serves {served}): New world starts a "
                f"{box.currentText()} world")

    def export_to(self, fmt: str, path: str | Path, scale: int | None = None) -> Job | None:
        """Export the viewed branch's recorded frames (or its action log) as mp4, gif, png or actions. None (refused)
        while an Open… or a close's keep holds the window's session, as for Save…: the keep's close would otherwise
        wait for it or cancel it."""
        if fmt not in exporting.FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; use one of {exporting.FORMATS}")
        if self.session is None or self.timeline.branch_id is None:
            raise ValueError("nothing to export yet: start a world and record some frames")
        if reason := self._not_ready(UNHELD):
            self.show_error(f"{Path(path).name} was not exported: {in_sentence(reason)}, then Export it again")
            return None
        path, s, bid = Path(path), self.session, self.timeline.branch_id
        records = list(s.path(bid))
        frames = [r.image for r in records if r.image is not None]
        width, height = s.size_of(bid)
        scale = scale or exporting.auto_scale(height or 64, width or 64)
        fps, names = s.fps_of(bid), self.resolver.name_of
        prompt, (kind, name) = s.root_of(bid).prompt or PromptSpec(), s.backend_of(bid)
        world = {"backend_kind": kind, "backend_name": name, "seed": prompt.seed, "text": prompt.text}
        label = exporting.source_label([(kind, name)] if kind else [])
        jobs = {
            "mp4": lambda p: exporting.export_mp4(frames, path, fps, scale, p, label),
            "gif": lambda p: exporting.export_gif(frames, path, fps, scale, p, label),
            "png": lambda p: exporting.export_png_frames(records, path, scale, p, label),
            # one atomic write: a cancel (a close's included) counts only before it
            "actions": lambda p: (tick(p, 0, 1), exporting.export_actions(
                exporting.action_log(records, names, fps, world), path))[1],
        }
        return self.run_job(f"Exporting {path.name}", jobs[fmt], lambda p: self.statusBar().showMessage(f"Exported {p}", 6000),
                            keeps_window=True)

    def _save_dialog(self) -> None:
        if self.session is None:
            self.show_error("nothing to save yet: start a world first")
            return
        path, filt = QFileDialog.getSaveFileName(self, "Save session", f"session{FILE_SUFFIX}",
                                                 f"{SESSION_FILES};;Session folder (*)")
        if path:
            if "folder" not in filt and not path.lower().endswith(FILE_SUFFIX):  # "Take.WBSESSION" is one already
                path += FILE_SUFFIX
            self.save_to(path)

    def _load_dialog(self) -> None:
        """Pick a session to open; Open… is greyed out while busy, and load_from refuses a job begun meanwhile."""
        path, _ = QFileDialog.getOpenFileName(self, "Open session", "",
                                              f"{SESSION_FILES};;session.json in a folder (session.json)")
        if path:
            self.load_from(Path(path).parent if Path(path).name == "session.json" else path)

    def _export_dialog(self, fmt: str) -> None:
        suffix = {"mp4": ".mp4", "gif": ".gif", "png": "", "actions": ".json"}[fmt]
        if fmt == "png":
            parent = QFileDialog.getExistingDirectory(self, "Export PNG frames into…")
            path = str(Path(parent) / f"frames-{time.strftime('%Y%m%d-%H%M%S')}") if parent else ""
        else:
            path, _ = QFileDialog.getSaveFileName(self, f"Export {fmt.upper()}", f"world{suffix}", f"*{suffix}")
            if path and not path.lower().endswith(suffix):  # a name typed without it: players go by the suffix
                path += suffix
        if path:
            try:
                self.export_to(fmt, path)
            except ValueError as e:
                self.show_error(str(e))

    # ------------------------------------------------------------------ shutdown
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Closing waits for what must not be cut short, then keeps the unsaved work, then shuts down. A wait ignores
        this close, leaves the window live and makes the close pending (_close_when_done): the end of the export, save,
        Open… or keep it waits for closes the window again (_close_if_pending)."""
        if self._close_waits():
            event.ignore()
            return
        self._shut_down()
        super().closeEvent(event)

    def _close_waits(self) -> bool:
        """True when the close must wait (saying for what in the status bar): for an Open… or a keep to end, for an
        export or save (closing again cancels it), or for the unsaved work to be kept."""
        waits = self._close_waits_for()
        # nothing to wait for, or an export or save the status bar said closing again cancels (a close that waited
        # for a hold has not said so): keep the work (its dialog says what happens; its end closes the window)
        if waits is None or (waits is not self._held and self._close_cancels):
            return self._keeps_failed < 2 and not (self._last_keep or self._discarded) and self._keep_then_close()
        if waits is not self._held:
            self._close_cancels = True
        self._close_when_done = True
        self._last_keep = False  # the window stays live while it waits: what is recorded meanwhile is kept too
        self._say_close_waits(waits)
        return True

    def _close_waits_for(self) -> Job | None:
        """What a close waits for: the hold (an Open… or a keep), else the first export or save; None: nothing."""
        return self._held if self._held is not None else next((j for j in self.jobs if j.keeps_window), None)

    def _say_close_waits(self, job: Job) -> None:
        """The status bar says what the close waits for now (and, once said, that closing again cancels it)."""
        cancel = " — close again to cancel it" if self._close_cancels and job is not self._held else ""
        self.statusBar().showMessage(f"{job.title}: the window closes when it is done{cancel}")

    def _close_if_pending(self) -> None:
        """A job or hold ended: a close that waited closes the window once nothing it waits for is left, else says
        what it waits for now (on the next loop turn, after the ending job's own answer)."""
        if self._close_when_done:
            QTimer.singleShot(0, self, self._close_or_wait)

    def _close_or_wait(self) -> None:
        if not (self._close_when_done and self.isVisible()):
            return
        if (waits := self._close_waits_for()) is None:
            self.close()
        else:
            self._say_close_waits(waits)

    def _keep_then_close(self) -> bool:
        """Start keeping the unsaved work in the `closed` autosave, with the progress dialog, the world held and the
        work copied once its pause is confirmed (True; False: nothing to keep, and no recorded frame still on its way).
        Kept, the window closes, unless frames came after the copy (a pause the host did not confirm in time): the
        close then keeps them too, in the same file. Cancelled, or failed (said in the status bar and on stderr), it
        stays open with the work, and after a second failure the close discards it."""
        first = self._unsaved_work()
        if first is None and not self._frames_may_come():
            return False
        path = self._close_path = self._close_path or self._autosave_path("closed")

        def keep(taken: tuple[Session | None, int, bytes],
                 progress: Callable[[int, int], bool]) -> tuple[int, bytes] | None:
            snap, unsaved, sketch = taken
            if snap is None:  # no frame came before the pause: nothing to keep
                return None
            self._keep(snap, path, progress)
            return unsaved, sketch

        job = self.run_job(KEEPING, keep, lambda kept: self._kept_on_close(path, kept),
                           kept="the recording is still in the window (Save… it, or close again)", start=False)
        job.errored.connect(lambda m: self._not_kept_on_close(job, m))  # after run_job's, which says it
        # a save ending meanwhile may leave nothing unsaved: the work found now is written then
        self._hold_world(job, lambda: (self._unsaved_work() or first, self._unsaved, self.prompt_panel.canvas.to_png()))
        return True

    def _frames_may_come(self) -> bool:
        """A frame the recording wants may still be on its way: the world plays in realtime, or something went to it
        since the host last confirmed a hold's pause (a key pressed in step mode makes a frame)."""
        return self.recording and self.info is not None and (self.mode != "step" or self._sent)

    def _kept_on_close(self, path: Path, kept: tuple[int, bytes] | None) -> None:
        """The close's keep is written (`kept`: its unsaved count and sketch; None: nothing came to keep): the window
        closes, keeping in the same file any frame that came since, unless the host refused the pause: its world plays
        on, so each keep would find more frames and hold it again, for ever (the refusal said what is not kept). With
        nothing come since, it closes without waiting again for frames a pause the host did not confirm may still
        bring: it would wait, and time out, once more each time (the time-out said what is not kept)."""
        if kept is not None:
            self._kept_work(path, *kept)
        self._last_keep = self._pause_refused or self._unsaved_work() is None
        self._release_world(resume=False)
        self.close()

    def _not_kept_on_close(self, job: Job, message: str) -> None:
        """The close's keep was cancelled or failed: the window stays with the work, and the world plays on."""
        print(f"worldbridge play: {job.title} {message}", file=sys.stderr)
        self._close_when_done = self._close_cancels = False  # the window stays: an export or save ending now must
        # not close it, and a close then waits for it again before it cancels it
        self._release_world()
        if job.cancelled:
            return
        self._keeps_failed += 1
        if self._keeps_failed == 1:
            self.statusBar().showMessage(self.statusBar().currentMessage() + " — or close again to discard it")
        else:
            self.close()

    def _shut_down(self) -> None:
        """The window closes: every job is cancelled and joined, the running autosave goes, the worker stops."""
        for job in list(self.jobs):
            job.cancelled = True
            if not job.isRunning() and not job.isFinished():
                job.start()  # queued on a next loop turn that may not come: run it now, cancelled (the queued start
                # then skips it), so it ends as a cancel does and is said below (a save or export gets here only when
                # the user closed again while the close waited for it, which the status bar said cancels it; an
                # autosave leaves nothing)
            job.wait(10000)
            if job.keeps_window and (job.error or not job.isFinished()):  # stopped short, or still going as it exits
                print(f"worldbridge play: {job.title} was cancelled as the window closed: {job.left()}", file=sys.stderr)
        self._running.unlink(missing_ok=True)  # its work was kept in the closed autosave, or discarded
        if self._running_lock is not None:
            release_running_lock(self._running, self._running_lock)
            self._running_lock = None
        if self.worker_thread is not None:
            self.worker_thread.stop()
            self.worker_thread = None
        wait_for_workers(STOP_WAIT_S)  # this one and any a Reconnect left ending, all within one bounded wait
