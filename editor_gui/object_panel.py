"""Frame edits ("paste object"): pick a layer (a built-in sprite, a PNG with alpha, the clipboard), then place it."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from editor_gui.keymap import keep_play_focus
from editor_gui.layers import BUILTINS, Layer, builtin_layer, fit_layer, load_layer, qimage_to_rgba, rgba_to_qimage

PNG_FILTER = "PNG with alpha (*.png);;Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp)"
ICON = 32  # px: the built-in sprites' buttons show them this large
HINT = "Pick an object, then click on the viewport to paste it into the live frame (Shift+click pastes more, Esc cancels)."


def _pixmap(layer: Layer, box: int) -> QPixmap:
    """A crisp (nearest-neighbour) preview of a layer, as large as fits `box`."""
    w, h = layer.size
    scale = max(1, box // max(w, h))
    return QPixmap.fromImage(rgba_to_qimage(layer.rgba)).scaled(w * scale, h * scale, Qt.AspectRatioMode.KeepAspectRatio,
                                                                Qt.TransformationMode.FastTransformation)


def _icon(layer: Layer, box: int) -> QIcon:
    """The preview centred on a transparent `box`-square: every sprite button's icon is one size, so the buttons are."""
    square = QPixmap(box, box)
    square.fill(Qt.GlobalColor.transparent)
    pix = _pixmap(layer, box)
    painter = QPainter(square)
    painter.drawPixmap((box - pix.width()) // 2, (box - pix.height()) // 2, pix)
    painter.end()
    return QIcon(square)


class ObjectPanel(QWidget):
    """Holds the current layer; `place` asks the window to start placing it on the viewport."""

    place = Signal(object)  # Layer
    cancel = Signal()  # the user un-pressed "Place on the frame"
    error = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame_size = (64, 64)
        self.layer: Layer | None = None  # what gets placed: `source` fitted to the frame
        self.source: Layer | None = None
        self._available: tuple[bool, str] | None = None  # what set_available last showed
        self.builtin_buttons: dict[str, QToolButton] = {}
        self.group = QButtonGroup(self)
        grid = QGridLayout()
        for i, name in enumerate(BUILTINS):
            b = QToolButton()
            b.setObjectName(f"object_{name}")
            b.setText(name)
            b.setCheckable(True)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setIconSize(QSize(ICON, ICON))
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)  # each fills its grid cell
            b.setToolTip(f"The sandbox's {name} sprite, at this world's tile size")
            b.clicked.connect(lambda _=False, n=name: self.choose_builtin(n))
            self.group.addButton(b)
            grid.addWidget(b, i // 3, i % 3)
            self.builtin_buttons[name] = b
        for column in range(3):
            grid.setColumnStretch(column, 1)  # equal columns: one button size whatever the names' lengths
        self.open_btn, self.paste_btn = QPushButton("Open PNG…"), QPushButton("Paste")
        self.open_btn.setToolTip("An image file; transparent pixels (alpha) leave the frame as it is")
        self.paste_btn.setToolTip("The image on the clipboard")
        self.open_btn.clicked.connect(self._open)
        self.paste_btn.clicked.connect(self.paste_layer)
        row = QHBoxLayout()
        row.addWidget(self.open_btn)
        row.addWidget(self.paste_btn)
        self.preview = QLabel("no object")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumHeight(72)
        self.preview.setStyleSheet("QLabel { border: 1px dashed #5c6370; border-radius: 6px; color: #8b93a1; }")
        self.place_btn = QPushButton("Place on the frame")
        self.place_btn.setObjectName("place_object")
        self.place_btn.setCheckable(True)
        self.place_btn.setToolTip("Click on the viewport to paste the object; Esc cancels")
        self.place_btn.clicked.connect(lambda on: self.start_placing() if on else self.cancel.emit())
        keep_play_focus(self.place_btn, *self.builtin_buttons.values())
        self._tips = {w: w.toolTip() for w in self._tools()}  # restored when a backend can edit again
        self.status = QLabel(HINT)
        self.status.setWordWrap(True)

        box = QGroupBox("Paste an object into the frame")
        bl = QVBoxLayout(box)
        bl.addLayout(grid)
        bl.addLayout(row)
        bl.addWidget(self.preview)
        bl.addWidget(self.place_btn)
        bl.addWidget(self.status)
        self.box = box
        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addStretch(1)
        self.set_frame_size(*self.frame_size)

    # --- layers ---
    def set_frame_size(self, width: int, height: int) -> None:
        """Built-in sprites follow the world's tile size; a chosen file that no longer fits is scaled down."""
        self.frame_size = (int(width), int(height))
        for name, b in self.builtin_buttons.items():
            b.setIcon(_icon(builtin_layer(name, height), ICON))
        if self.layer is not None and self.layer.name in BUILTINS:
            self.set_layer(builtin_layer(self.layer.name, height), start=False)
        elif self.source is not None:
            self.set_layer(self.source, start=False)

    def set_layer(self, layer: Layer, start: bool = True) -> None:
        """Make `layer` current (scaled down to fit the frame when needed) and, with `start`, begin placing it."""
        fitted, scaled = fit_layer(layer, *self.frame_size)
        self.source, self.layer = layer, fitted
        w, h = fitted.size
        self.preview.setPixmap(_pixmap(fitted, 64))
        fw, fh = self.frame_size
        note = f" (scaled down from {layer.size[0]}×{layer.size[1]} to fit the {fw}×{fh} frame)" if scaled else ""
        self.preview.setToolTip(f"{fitted.name}: {w}×{h} px{note}")
        self.status.setText(f"{fitted.name}: {w}×{h} px{note}. " + HINT)
        if fitted.name not in BUILTINS:
            checked = self.group.checkedButton()
            if checked is not None:
                self.group.setExclusive(False)
                checked.setChecked(False)
                self.group.setExclusive(True)
        if start:
            self.place.emit(fitted)

    def choose_builtin(self, name: str) -> None:
        self.builtin_buttons[name].setChecked(True)
        self.set_layer(builtin_layer(name, self.frame_size[1]))

    def load_file(self, path: str) -> None:
        try:
            self.set_layer(load_layer(path))
        except ValueError as e:
            self.error.emit(str(e))
            self.status.setText(str(e))

    def _open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Object layer", "", PNG_FILTER)
        if path:
            self.load_file(path)

    def paste_layer(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            msg = "the clipboard holds no image; copy an image (ideally with transparency) first"
            self.error.emit(msg)
            self.status.setText(msg)
            return
        self.set_layer(Layer(qimage_to_rgba(image), "clipboard image"))

    # --- placing ---
    def start_placing(self) -> None:
        """Place the current object again (the first built-in when none was chosen)."""
        if self.layer is None:
            self.choose_builtin(BUILTINS[0])
        else:
            self.place.emit(self.layer)

    def set_placing(self, on: bool) -> None:
        """Mirror the viewport: the button stays pressed while the layer follows the cursor."""
        self.place_btn.blockSignals(True)
        self.place_btn.setChecked(on)
        self.place_btn.blockSignals(False)

    def _tools(self) -> list[QWidget]:
        return [*self.builtin_buttons.values(), self.open_btn, self.paste_btn, self.place_btn]

    def set_available(self, ok: bool, reason: str = "") -> None:
        """Enable the tool for backends that can edit frames; every control says why not otherwise. Unchanged, it
        leaves the status as it is (an edit's outcome, a layer's size): the window refreshes it on every state change."""
        if (ok, reason) == self._available:
            return
        self._available = (ok, reason)
        for w in self._tools():
            w.setEnabled(ok)
            w.setToolTip(self._tips[w] if ok else reason)
        self.box.setToolTip("" if ok else reason)
        self.status.setText(HINT if ok else reason)

    def on_edited(self, frame_index: int) -> None:
        self.status.setText(f"Pasted into frame {frame_index}: the world continues from the edited frame (a new "
                            f"branch in the timeline).")

    def on_failed(self, message: str) -> None:
        self.status.setText(f"Edit refused: {message}")
