"""Key bindings: keys name actions (not ids), so one key map serves the sandbox and named latent actions alike."""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QKeySequenceEdit,
    QLabel,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

ActionRef = str | int  # an action name ("left", or a latent-action name the user gave) or an action id

DEFAULT_BINDINGS: dict[str, ActionRef] = {
    "Left": "left", "A": "left",
    "Right": "right", "D": "right",
    "Up": "jump", "W": "jump",
    "Down": "down", "S": "down",
    "Space": "jump",
    **{str(i + 1): i for i in range(8)},  # 1..8 play latent action 0..7 directly
}


def key_name(qt_key: int) -> str:
    """The portable name of a Qt key ("Left", "A", "Space"), used as the binding key so maps survive saving."""
    return QKeySequence(int(qt_key)).toString(QKeySequence.SequenceFormat.PortableText)


@dataclass
class KeyMap:
    """Which key plays which action, and what plays while no key is held."""

    bindings: dict[str, ActionRef] = field(default_factory=lambda: dict(DEFAULT_BINDINGS))
    idle: ActionRef = "noop"

    def action_for(self, key: str) -> ActionRef | None:
        return self.bindings.get(key)

    def to_dict(self) -> dict:
        return {"bindings": dict(self.bindings), "idle": self.idle}

    @classmethod
    def from_dict(cls, data: dict) -> KeyMap:
        """Read a saved key map; a malformed one is an error that says which entry is wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("bindings", {}), dict):
            raise ValueError("key map must be a mapping with a 'bindings' mapping of key name -> action")
        bindings: dict[str, ActionRef] = {}
        for key, ref in data.get("bindings", {}).items():
            if not isinstance(key, str) or not key or not isinstance(ref, (str, int)) or isinstance(ref, bool):
                raise ValueError(f"bad key binding {key!r} -> {ref!r}: keys are key names like 'Left', actions are names or ids")
            bindings[key] = ref
        idle = data.get("idle", "noop")
        if not isinstance(idle, (str, int)) or isinstance(idle, bool):
            raise ValueError(f"bad idle action {idle!r}: use an action name or id")
        return cls(bindings=bindings, idle=idle)


class ActionResolver:
    """Turns action names and ids into the session's action ids (backend names, then latent-action names)."""

    def __init__(self, action_names: list[str], num_actions: int, latent_names: dict[int, str] | None = None):
        self.num_actions = max(int(num_actions), len(action_names))
        self._by_name: dict[str, int] = {}
        for i, name in (latent_names or {}).items():
            if name:
                self._by_name.setdefault(name, int(i))
        for i, name in enumerate(action_names):
            self._by_name[name] = i  # the backend's own names win over user labels

    def resolve(self, ref: ActionRef | None) -> int | None:
        if ref is None:
            return None
        if isinstance(ref, int):
            return ref if 0 <= ref < self.num_actions else None
        return self._by_name.get(ref)

    def names(self) -> list[str]:
        return sorted(self._by_name, key=lambda n: (self._by_name[n], n))

    def name_of(self, action_id: int) -> str:
        for name, i in self._by_name.items():
            if i == action_id:
                return name
        return f"#{action_id}"


class HeldKeys:
    """The bound keys now down, in press order, and the one action they add up to ("right"+"jump" -> "right_jump")."""

    def __init__(self) -> None:
        self._down: list[str] = []

    def press(self, key: str) -> bool:
        if key in self._down:
            return False
        self._down.append(key)
        return True

    def release(self, key: str) -> bool:
        if key not in self._down:
            return False
        self._down.remove(key)
        return True

    def clear(self) -> None:
        self._down.clear()

    def __bool__(self) -> bool:
        return bool(self._down)

    def current(self, keymap: KeyMap, resolver: ActionResolver) -> int:
        """The action in force: a combined name if the backend has one, else the latest key's, else idle."""
        refs = [keymap.action_for(k) for k in self._down]
        refs = [r for r in refs if r is not None and resolver.resolve(r) is not None]
        names = [r for r in refs if isinstance(r, str)]
        # the two most recent distinct named actions may combine into one the backend knows
        recent = list(dict.fromkeys(reversed(names)))[:2]
        if len(recent) == 2:
            for combo in (f"{recent[1]}_{recent[0]}", f"{recent[0]}_{recent[1]}"):
                combined = resolver.resolve(combo)
                if combined is not None:
                    return combined
        if refs:
            return resolver.resolve(refs[-1])  # type: ignore[return-value]
        idle = resolver.resolve(keymap.idle)
        return 0 if idle is None else idle


class KeyMapDialog(QDialog):
    """Edit key bindings: one row per key, the action picked from the session's names (or typed)."""

    def __init__(self, keymap: KeyMap, action_names: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Key bindings")
        self.resize(460, 520)
        self._names = list(action_names)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Key", "Action"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.idle = self._action_combo(keymap.idle)
        add, remove, defaults = QPushButton("Add"), QPushButton("Remove"), QPushButton("Defaults")
        add.clicked.connect(lambda: self._add_row("", self._names[0] if self._names else 0))
        remove.clicked.connect(lambda: self.table.removeRow(self.table.currentRow()))
        defaults.clicked.connect(lambda: self._load(KeyMap()))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.error = QLabel()
        self.error.setStyleSheet("color: #e06c75")
        row = QHBoxLayout()
        for b in (add, remove, defaults):
            row.addWidget(b)
        row.addStretch(1)
        idle_row = QHBoxLayout()
        idle_row.addWidget(QLabel("When no key is held:"))
        idle_row.addWidget(self.idle, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Click a key cell and press the key. Actions are names (backend or your latent-action "
                                "names) or action ids. Holding two keys plays a combined action if one exists "
                                "(right + jump → right_jump)."))
        layout.itemAt(0).widget().setWordWrap(True)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addLayout(idle_row)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self._load(keymap)

    def _action_combo(self, ref: ActionRef) -> QComboBox:
        combo = QComboBox()
        combo.setEditable(True)
        combo.addItems(self._names)
        combo.setCurrentText(str(ref))
        return combo

    def _add_row(self, key: str, ref: ActionRef) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        edit = QKeySequenceEdit(QKeySequence(key))
        edit.setMaximumSequenceLength(1)
        self.table.setCellWidget(r, 0, edit)
        self.table.setCellWidget(r, 1, self._action_combo(ref))

    def _load(self, keymap: KeyMap) -> None:
        self.table.setRowCount(0)
        for key, ref in keymap.bindings.items():
            self._add_row(key, ref)
        self.idle.setCurrentText(str(keymap.idle))

    @staticmethod
    def _parse_ref(text: str) -> ActionRef:
        text = text.strip()
        return int(text) if text.isdigit() else text

    def keymap(self) -> KeyMap:
        """The edited map; raises ValueError naming the row when a key is bound twice or an action is empty."""
        bindings: dict[str, ActionRef] = {}
        for r in range(self.table.rowCount()):
            key = self.table.cellWidget(r, 0).keySequence().toString(QKeySequence.SequenceFormat.PortableText)
            action = self.table.cellWidget(r, 1).currentText()
            if not key:
                continue
            if not action.strip():
                raise ValueError(f"row {r + 1}: key {key} has no action; pick one or remove the row")
            if key in bindings:
                raise ValueError(f"key {key} is bound twice; remove one of the rows")
            bindings[key] = self._parse_ref(action)
        return KeyMap(bindings=bindings, idle=self._parse_ref(self.idle.currentText() or "0"))

    def accept(self) -> None:
        try:
            self.keymap()
        except ValueError as e:
            self.error.setText(str(e))
            return
        super().accept()


def keep_play_focus(*buttons: QWidget) -> None:
    """Clicking these leaves keyboard focus where it was (the viewport, while playing), so the next Space jumps
    instead of pressing the button again (stopping a recording, starting another world); Tab still reaches them."""
    for b in buttons:
        b.setFocusPolicy(Qt.FocusPolicy.TabFocus)


def shortcut_text(keys: str) -> str:
    """A shortcut as this platform names it ("Ctrl+Z"; "⌘Z" on macOS, where Qt's Ctrl is Cmd), for a tooltip."""
    return QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText)


def is_play_key(event_key: int) -> bool:
    """Keys the viewport never claims (so Tab still moves focus and Escape still leaves)."""
    return event_key not in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab, Qt.Key.Key_Escape)
