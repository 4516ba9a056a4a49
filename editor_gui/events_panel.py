"""Promptable world events: one button per event type the backend advertises, plus free text."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget, QPushButton, QVBoxLayout, QWidget

from bridge.worlds.events import EVENT_CAPTIONS
from editor_gui.keymap import keep_play_focus

FIRE_TIP = "Fire the event the text describes (Enter does too); the backend matches it to one it knows, or refuses it"


def pretty(event_type: str) -> str:
    """'weather_snow' -> 'Weather snow' for a button label."""
    return event_type.replace("_", " ").capitalize()


def event_tip(event_type: str) -> str:
    """What a typed event's button does, in the caption the frame will carry when the backend's events are the
    sandbox's (the world models learn those); another backend's event by its id."""
    caption = EVENT_CAPTIONS.get(event_type)
    what = f"{caption[0].upper()}{caption[1:]} ({event_type})" if caption else f"Fires the backend's {event_type} event"
    return f"{what}: its caption shows in the frame where it fires"


class EventsPanel(QWidget):
    """Fires events at the world; the host's captions come back in frames and are listed here and on the timeline."""

    fire = Signal(object, object)  # event_type or None, text or None

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.buttons: dict[str, QPushButton] = {}
        self.typed_reason: str | None = None  # why typed events are off for this session (None: they are on)
        self.grid = QGridLayout()
        self.text = QLineEdit()
        self.text.setPlaceholderText("Free text, e.g. “make it snow”")
        self.text.returnPressed.connect(self._fire_text)
        self.send = QPushButton("Fire")
        self.send.setToolTip(FIRE_TIP)
        self.send.clicked.connect(self._fire_text)
        row = QHBoxLayout()
        row.addWidget(self.text, 1)
        row.addWidget(self.send)
        self.status = QLabel("Start a world to see its events.")
        self.status.setWordWrap(True)
        self.log = QListWidget()
        self.log.setMaximumHeight(140)
        self.waiting = QListWidget()  # accepted by the host, their captions not yet seen in a frame
        self.waiting.setMaximumHeight(70)
        layout = QVBoxLayout(self)
        layout.addLayout(self.grid)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Queued"))
        layout.addWidget(self.waiting)
        layout.addWidget(QLabel("Fired"))
        layout.addWidget(self.log)
        layout.addStretch(1)

    def set_event_types(self, types: list[str]) -> None:
        for b in self.buttons.values():
            self.grid.removeWidget(b)
            b.deleteLater()
        self.buttons.clear()
        for i, etype in enumerate(types):
            b = QPushButton(pretty(etype))
            b.setObjectName(f"event_{etype}")
            b.setToolTip(event_tip(etype) if self.typed_reason is None else self.typed_reason)
            b.setEnabled(self.typed_reason is None)
            b.clicked.connect(lambda _=False, t=etype: self.fire.emit(t, None))
            keep_play_focus(b)
            self.grid.addWidget(b, i // 2, i % 2)
            self.buttons[etype] = b
        self.status.setText("" if types else "This backend advertises no typed events; try free text.")

    def set_capabilities(self, typed: str | None, text: str | None) -> None:
        """Enable typed events and the free-text box per session; each argument is None (on) or why it is off."""
        self.typed_reason = typed
        for etype, b in self.buttons.items():
            b.setEnabled(typed is None)
            b.setToolTip(event_tip(etype) if typed is None else typed)
        for w, tip in ((self.text, ""), (self.send, FIRE_TIP)):
            w.setEnabled(text is None)
            w.setToolTip(tip if text is None else text)
        self.text.setPlaceholderText("Free text, e.g. “make it snow”" if text is None else "no free-text events")
        notes = list(dict.fromkeys(r for r in (typed, text) if r))  # one reason for both (no world) is said once
        if notes:
            self.status.setText(" ".join(notes))

    def _fire_text(self) -> None:
        text = self.text.text().strip()
        if not text:
            self.status.setText("Type what should happen first, e.g. “night falls”.")
            return
        self.text.clear()  # before the emit: a refusal on the spot (on_failed) puts the words back
        self.fire.emit(None, text)

    def clear_fired(self) -> None:
        """A new world: the events listed were fired in the old one, at its frame indices."""
        self.log.clear()

    def on_fired(self, caption: str, frame_index: int) -> None:
        self.log.insertItem(0, f"frame {frame_index}: {caption}")
        self.status.setText(f"Fired: {caption}")

    def show_waiting(self, captions: list[str]) -> None:
        """Accepted events fire in turn (behind a held one, after its hold frames): say which still wait."""
        self.waiting.clear()
        self.waiting.addItems([f"{caption}: waiting its turn" for caption in captions])

    def on_dropped(self, captions: list[str], why: str) -> None:
        """Events queued behind a held one were still waiting when the world branched (a preview branches it too):
        the host dropped them; `why` says what branched it."""
        self.status.setText(f"Not fired ({why}): {', '.join(captions)}")

    def on_not_fired(self, caption: str, message: str) -> None:
        """The backend refused an accepted event when its turn came: it is off the queue and never fires."""
        self.status.setText(f"Not fired: {caption} ({message})")

    def on_failed(self, message: str, text: str | None = None) -> None:
        """A refused event; the free `text` it carried goes back into an empty box, to be reworded rather than retyped."""
        self.status.setText(f"Event refused: {message}")
        if text and not self.text.text():
            self.text.setText(text)
