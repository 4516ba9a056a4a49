"""Sampling and pacing settings (MaskGIT steps, temperature, CFG, top-p, unmasking, event guidance, fps, mode) and the
host connection."""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from bridge.backend import DEFAULT_FPS
from bridge.host.protocol import UNMASK_ORDERS  # the orders `settings.unmask` takes (protocol 1.2)

MODEL_ONLY = ("steps", "temperature", "cfg")  # the sandbox ignores these (docs/protocol.md, settings)
SAMPLER = ("top_p", "unmask")  # protocol 1.2: nil in the session's settings for backends (or hosts) without them
EVENT_CFG_TIP = "Guidance scale on events: higher = events show more strongly (1 = off)"


class SettingsPanel(QWidget):
    """Edits apply to the running session after a short pause (so dragging a spin box sends one message)."""

    changed = Signal(dict)  # only the keys the user changed
    reconnect = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.conn_label = QLabel("Not connected")
        self.conn_label.setWordWrap(True)
        self.conn_label.setObjectName("connection")
        self.address = QLabel("")
        self.reconnect_btn = QPushButton("Reconnect")
        self.reconnect_btn.clicked.connect(self.reconnect.emit)
        conn = QGroupBox("Host")
        cf = QVBoxLayout(conn)
        cf.addWidget(self.conn_label)
        cf.addWidget(self.address)
        cf.addWidget(self.reconnect_btn)

        self.backend = QComboBox()  # backend for the next "New world"
        self.steps = QSpinBox()
        self.steps.setRange(1, 64)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 5.0)
        self.temperature.setSingleStep(0.1)
        self.cfg = QDoubleSpinBox()
        self.cfg.setRange(0.0, 20.0)
        self.cfg.setSingleStep(0.5)
        self.top_p = QDoubleSpinBox()  # protocol 1.2
        self.top_p.setObjectName("top_p")
        self.top_p.setRange(0.05, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(1.0)
        self.top_p.setToolTip("Nucleus sampling: keep the most likely codes that make up this much probability (1 = off)")
        self.unmask = QComboBox()  # protocol 1.2
        self.unmask.setObjectName("unmask")
        self.unmask.addItems(UNMASK_ORDERS)
        self.unmask.setToolTip("The order MaskGIT commits tokens in: most confident first, or at random")
        self.event_cfg = QDoubleSpinBox()  # protocol 1.1; nil in the session's settings when the backend has no events
        self.event_cfg.setObjectName("event_cfg")
        self.event_cfg.setRange(0.0, 20.0)
        self.event_cfg.setSingleStep(0.5)
        self.event_cfg.setValue(1.0)
        self.fps = QDoubleSpinBox()
        self.fps.setRange(1.0, 120.0)
        self.fps.setValue(DEFAULT_FPS)
        self.fps.setSuffix(" fps")
        self.fps_note = QLabel("")  # says when the rate is the world's own: no rate was asked for
        self.fps_note.setStyleSheet("color: #8b93a1")
        fps_row = QWidget()
        fps_box = QHBoxLayout(fps_row)
        fps_box.setContentsMargins(0, 0, 0, 0)
        fps_box.addWidget(self.fps)
        fps_box.addWidget(self.fps_note, 1)
        self.mode = QComboBox()
        self.mode.addItems(["realtime", "step"])
        self.resolution = QLabel("–")
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #8b93a1")
        form_box = QGroupBox("World")
        form = QFormLayout(form_box)
        form.addRow("Backend (new worlds)", self.backend)
        form.addRow("MaskGIT steps", self.steps)
        form.addRow("Temperature", self.temperature)
        form.addRow("CFG scale", self.cfg)
        form.addRow("Top-p", self.top_p)
        form.addRow("Unmasking", self.unmask)
        form.addRow("Event guidance", self.event_cfg)
        form.addRow("Target fps", fps_row)
        form.addRow("Mode", self.mode)
        form.addRow("Resolution", self.resolution)
        form.addRow(self.note)

        layout = QVBoxLayout(self)
        layout.addWidget(conn)
        layout.addWidget(form_box)
        layout.addStretch(1)

        self._pending: dict = {}
        self._loading = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._flush)
        for key, w in (("steps", self.steps), ("temperature", self.temperature), ("cfg", self.cfg),
                       ("top_p", self.top_p), ("event_cfg", self.event_cfg), ("fps", self.fps)):
            w.valueChanged.connect(lambda v, k=key: self._edit(k, v))
        self.unmask.currentTextChanged.connect(lambda v: self._edit("unmask", v))
        self.mode.currentTextChanged.connect(lambda v: self._edit("mode", v))
        self.set_session(None)

    def _edit(self, key: str, value) -> None:
        if self._loading:
            return
        self._pending[key] = value
        self._timer.start()

    def _flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, {}
            self.changed.emit(pending)

    def set_backends(self, backends: list[str], default: str | None) -> None:
        self.backend.clear()
        self.backend.addItems(backends)
        if default in backends:
            self.backend.setCurrentText(default)

    def set_session(self, session: dict | None) -> None:
        """Show a session's settings; model-only knobs are disabled for the sandbox, which ignores them."""
        self._loading = True
        try:
            live = session is not None
            model = live and session.get("backend_kind") == "world_model"
            settings = (session or {}).get("settings", {}) or {}
            for key in MODEL_ONLY:
                getattr(self, key).setEnabled(bool(model and key in settings))
            for key in SAMPLER:
                getattr(self, key).setEnabled(bool(model and settings.get(key) is not None))
            self._show_sampling(settings)
            self._set_event_cfg(session, settings)
            self.fps.setEnabled(live)
            self.mode.setEnabled(live)
            if live:
                self.fps.setValue(float(settings.get("fps", session.get("fps", DEFAULT_FPS))))
                self.mode.setCurrentText(settings.get("mode", session.get("mode", "realtime")))
                self.resolution.setText(f"{session['width']}×{session['height']} (fixed by the backend)")
            if not live:
                self.show_fps_own(False)
                self.note.setText("Start a world to change its settings.")
            elif model:
                self.note.setText("Fewer MaskGIT steps = faster frames; higher CFG = stronger action control.")
            else:
                self.note.setText("The sandbox game ignores steps, temperature, CFG, top-p and unmasking (they are "
                                  "world-model settings).")
        finally:
            self._loading = False

    def _set_event_cfg(self, session: dict | None, settings: dict) -> None:
        """Event guidance exists only where the backend has event conditioning (settings.event_cfg not nil)."""
        value = settings.get("event_cfg")
        self.event_cfg.setEnabled(value is not None)
        if value is not None:
            self.event_cfg.setValue(float(value))
            self.event_cfg.setToolTip(EVENT_CFG_TIP)
        elif session is None:
            self.event_cfg.setToolTip("Start a world to change its settings.")
        elif session.get("backend_kind") == "sandbox":
            self.event_cfg.setToolTip("The sandbox game applies events exactly; it has no event guidance.")
        else:
            self.event_cfg.setToolTip(f"{session.get('backend_name', 'This backend')} has no event conditioning, so "
                                      "there is no event guidance — train it with `worldbridge train prompts events`.")

    def _show_sampling(self, settings: dict) -> None:
        """Show the sampler's values the host reports (a nil one leaves its box as it is); the caller sets _loading."""
        for key in MODEL_ONLY:
            if settings.get(key) is not None:
                getattr(self, key).setValue(settings[key])
        if settings.get("top_p") is not None:
            self.top_p.setValue(float(settings["top_p"]))
        if settings.get("unmask") is not None:
            self.unmask.setCurrentText(str(settings["unmask"]))

    def apply_settings(self, settings: dict) -> None:
        """Reflect the host's current settings map (the answer to a settings request, or those in force after a
        refusal): every box, so none keeps showing a value the world does not run with."""
        self._loading = True
        try:
            self._show_sampling(settings)
            if settings.get("event_cfg") is not None:
                self.event_cfg.setValue(float(settings["event_cfg"]))
            if settings.get("fps") is not None:
                self.fps.setValue(float(settings["fps"]))
            if settings.get("mode"):
                self.mode.setCurrentText(settings["mode"])
        finally:
            self._loading = False

    def show_fps_own(self, own: bool) -> None:
        """Say beside the rate whether it is the world's own (its footage's, the sandbox game's 15) or one asked for."""
        self.fps_note.setText("the world's own rate" if own else "")

    def show_mode(self, mode: str) -> None:
        """Show the mode the window plays in (as the Pause button does), without asking the host for it again."""
        self._loading = True
        try:
            self.mode.setCurrentText(mode)
        finally:
            self._loading = False

    def set_connection(self, ok: bool, text: str, address: str = "") -> None:
        color = "#98c379" if ok else "#e06c75"
        self.conn_label.setText(f"<span style='color:{color}'>●</span> {text}")
        if address:
            self.address.setText(address)
        self.reconnect_btn.setVisible(not ok)
