"""What a new world starts from: text, an image (open, paste, drop), a flat-colour sketch, and a seed."""

from __future__ import annotations

import random
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QFocusEvent,
    QGuiApplication,
    QIcon,
    QImage,
    QKeySequence,
    QPixmap,
    QShortcut,
    QValidator,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from bridge.values import SEED_MAX
from editor_gui.keymap import keep_play_focus, shortcut_text
from editor_gui.session_store import PromptSpec
from editor_gui.sketch_canvas import UNDO, SketchCanvas

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp)"
NEW_WORLD_TIP = "Start a new world from this prompt and seed (a new root in the timeline's tree)"
DROP_HEIGHT = 64  # px: low enough that the whole panel, New world included, shows at the window's default 1440x900


def image_to_png(image: QImage) -> bytes:
    """Encode a QImage as PNG bytes (the protocol carries image prompts as PNG or JPEG), its alpha kept: the host reads
    a transparent pixel as not drawn (white), as it does for the same file from any other client."""
    if image.isNull():
        raise ValueError("the image is empty or could not be decoded; use a PNG, JPEG, BMP, GIF or WebP file")
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    rgba = image.hasAlphaChannel()
    image.convertToFormat(QImage.Format.Format_RGBA8888 if rgba else QImage.Format.Format_RGB888).save(buf, "PNG")
    buf.close()
    return bytes(data.data())


class ImageDrop(QLabel):
    """A drop zone that previews the image prompt; accepts image files and raw image data."""

    dropped = Signal(QImage)

    def __init__(self) -> None:
        super().__init__("Drop an image here\n(or Open… / Paste)")
        self.setAcceptDrops(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumHeight(DROP_HEIGHT)
        self.setStyleSheet("QLabel { border: 1px dashed #5c6370; border-radius: 6px; color: #8b93a1; }")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        md = event.mimeData()
        if md.hasImage() or (md.hasUrls() and any(u.isLocalFile() for u in md.urls())):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        md = event.mimeData()
        if md.hasImage():
            self.dropped.emit(QImage(md.imageData()))
        else:
            for url in md.urls():
                if url.isLocalFile():
                    self.dropped.emit(QImage(url.toLocalFile()))
                    break
        event.acceptProposedAction()


class SeedValidator(QValidator):
    """Digits only, at most SEED_MAX; empty is allowed while typing (the box then keeps the last seed)."""

    def validate(self, text: str, pos: int) -> QValidator.State:
        if not text:
            return QValidator.State.Intermediate
        ok = text.isascii() and text.isdigit() and int(text) <= SEED_MAX
        return QValidator.State.Acceptable if ok else QValidator.State.Invalid


class SeedBox(QLineEdit):
    """A world seed, exact over the protocol's whole range 0..SEED_MAX (a QSpinBox stops at 2^31-1, and a double spin
    box rounds large seeds), so a world started from any seed shows that seed and New world makes it again."""

    def __init__(self, seed: int = 7) -> None:
        super().__init__()
        self._seed = seed
        self.setValidator(SeedValidator(self))
        self.setToolTip(f"0 to {SEED_MAX}: the same seed and prompt make the same world")
        self.textChanged.connect(lambda t: setattr(self, "_seed", int(t)) if t else None)
        self.setValue(seed)

    def value(self) -> int:
        return self._seed

    def setValue(self, seed: int) -> None:  # noqa: N802 - the QSpinBox name it replaces
        if not 0 <= seed <= SEED_MAX:
            raise ValueError(f"seed {seed} is outside 0..{SEED_MAX}, the seeds the host takes")
        self.setText(str(seed))

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802
        """A box left empty shows the seed New world will use again."""
        if not self.text():
            self.setText(str(self._seed))
        super().focusOutEvent(event)


class PromptPanel(QWidget):
    """Collects a prompt and asks for a new world; the sketch palette comes from the sandbox."""

    new_world = Signal(object)  # PromptSpec
    error = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.image_png: bytes | None = None
        self.off: set[str] = set()  # inputs the backend for new worlds does not take ("text", "image", "sketch")
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Text prompt, e.g. “a snowy night level with many coins”")
        self.text.setFixedHeight(56)

        # --- image prompt ---
        self.drop = ImageDrop()
        self.drop.dropped.connect(self._set_image)
        open_btn, paste_btn, clear_btn = QPushButton("Open…"), QPushButton("Paste"), QPushButton("Clear")
        open_btn.clicked.connect(self._open_image)
        paste_btn.clicked.connect(self.paste_image)
        clear_btn.clicked.connect(self.clear_image)
        img_box = self.img_box = QGroupBox("Image prompt")
        ib = QVBoxLayout(img_box)
        ib.addWidget(self.drop)
        row = QHBoxLayout()
        for b in (open_btn, paste_btn, clear_btn):
            row.addWidget(b)
        ib.addLayout(row)

        # --- sketch prompt ---
        self.use_sketch = QCheckBox("Send the sketch")
        self.canvas = SketchCanvas()
        self.canvas.changed.connect(lambda: self.use_sketch.setChecked(True))
        self.colors = QButtonGroup(self)
        pal_row = QGridLayout()
        for i, (name, rgb) in enumerate(self.canvas.palette_colors.items()):
            b = QToolButton()
            pix = QPixmap(14, 14)
            pix.fill(QColor(*rgb))
            b.setIcon(QIcon(pix))
            b.setText(name)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            b.setCheckable(True)
            b.setChecked(name == self.canvas.color_name)
            b.setObjectName(f"color_{name}")
            b.clicked.connect(lambda _=False, n=name: setattr(self.canvas, "color_name", n))
            self.colors.addButton(b)
            pal_row.addWidget(b, i // 3, i % 3)
        self.brush = QSpinBox()
        self.brush.setRange(1, 4)
        self.brush.setPrefix("brush ")
        self.brush.setSuffix(" cell")
        self.brush.valueChanged.connect(lambda v: setattr(self.canvas, "brush", v))
        self.cols = QSpinBox()
        self.cols.setRange(16, 256)
        self.cols.setSingleStep(16)
        self.cols.setValue(self.canvas.cells.shape[1])
        self.cols.setPrefix("width ")
        self.cols.setSuffix(" cells")
        self.cols.valueChanged.connect(self.canvas.set_columns)
        clear_sketch = QPushButton("Clear")
        clear_sketch.clicked.connect(self.clear_sketch)
        undo = QPushButton("Undo")
        undo.setObjectName("sketch_undo")
        undo.setToolTip(f"Back to the sketch before the last stroke, rectangle, Clear or width change "
                        f"({shortcut_text(UNDO)})")
        undo.setEnabled(False)
        undo.clicked.connect(self.undo_sketch)
        self.canvas.undo_available.connect(undo.setEnabled)
        sk_box = self.sk_box = QGroupBox("Sketch prompt")
        # Ctrl+Z while the canvas (or a control beside it) has focus; the text prompt keeps its own undo
        QShortcut(QKeySequence(UNDO), sk_box, self.undo_sketch, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        sb = QVBoxLayout(sk_box)
        sb.addLayout(pal_row)
        sb.addWidget(self.canvas, 1)
        for pair in ((self.brush, self.cols), (undo, clear_sketch)):  # two rows: one would widen the whole dock
            row = QHBoxLayout()
            row.addWidget(pair[0])
            row.addWidget(pair[1])
            sb.addLayout(row)
        sb.addWidget(self.use_sketch)
        self.use_sketch.setChecked(False)

        # --- seed + go ---
        self.seed = SeedBox(7)
        self.random_seed = QCheckBox("random")
        self.random_seed.toggled.connect(lambda on: self.seed.setEnabled(not on))
        self.go = QPushButton("New world")
        self.go.setObjectName("new_world")
        self.go.setStyleSheet("QPushButton { font-weight: bold; padding: 6px; }")
        self.go.setToolTip(NEW_WORLD_TIP)
        self.go.clicked.connect(lambda: self.new_world.emit(self.prompt()))
        keep_play_focus(self.go)
        seed_row = QHBoxLayout()
        seed_row.addWidget(QLabel("Seed"))
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.random_seed)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Text prompt"))
        layout.addWidget(self.text)
        layout.addWidget(img_box)
        layout.addWidget(sk_box, 1)
        layout.addLayout(seed_row)
        layout.addWidget(self.go)

    # --- image ---
    def _set_image(self, image: QImage) -> None:
        try:
            self.image_png = image_to_png(image)
        except ValueError as e:
            self.error.emit(str(e))
            return
        self.drop.setPixmap(QPixmap.fromImage(image).scaled(200, DROP_HEIGHT - 4, Qt.AspectRatioMode.KeepAspectRatio,
                                                            Qt.TransformationMode.FastTransformation))

    def load_image_file(self, path: str | Path) -> None:
        image = QImage(str(path))
        if image.isNull():
            self.error.emit(f"could not read an image from {path}; use a PNG, JPEG, BMP, GIF or WebP file")
            return
        self._set_image(image)

    def _open_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Image prompt", "", IMAGE_FILTER)
        if path:
            self.load_image_file(path)

    def paste_image(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.error.emit("the clipboard holds no image; copy an image first")
            return
        self._set_image(image)

    def clear_image(self) -> None:
        self.image_png = None
        self.drop.clear()
        self.drop.setText("Drop an image here\n(or Open… / Paste)")

    # --- sketch ---
    def clear_sketch(self) -> None:
        """Back to the starting layout, unticked: Clear means "no sketch", so New world makes the seed's own level."""
        self.canvas.clear()
        self.use_sketch.setChecked(False)

    def undo_sketch(self) -> None:
        """Undo the canvas's last change; the width box follows a width it brings back."""
        if self.canvas.undo():
            self._show_columns()

    def _show_columns(self) -> None:
        """The width box shows the canvas's width without resizing it again."""
        self.cols.blockSignals(True)
        self.cols.setValue(self.canvas.cells.shape[1])
        self.cols.blockSignals(False)

    # --- what the backend takes ---
    def set_capabilities(self, text: str | None, image: str | None, sketch: str | None) -> None:
        """Enable each input for backends that take it; each argument is None (on) or why it is off (a tooltip).
        A disabled input is left out of the prompt, so what is greyed out is never sent."""
        self.off = {k for k, reason in (("text", text), ("image", image), ("sketch", sketch)) if reason is not None}
        for w, reason in ((self.text, text), (self.img_box, image), (self.sk_box, sketch)):
            w.setEnabled(reason is None)
            w.setToolTip(reason or "")

    def block_new_world(self, why: str | None) -> None:
        """Grey out New world while the host cannot start one (no host, a rebuild or preview running); the tooltip
        says why (None: enable)."""
        self.go.setEnabled(why is None)
        self.go.setToolTip(why or NEW_WORLD_TIP)

    # --- prompt ---
    def prompt(self) -> PromptSpec:
        text = (self.text.toPlainText().strip() or None) if "text" not in self.off else None
        if self.random_seed.isChecked():  # drawn here and shown, so the world can be rebuilt and shared
            self.seed.setValue(random.randrange(2**31 - 1))
        seed = self.seed.value()
        sketch = self.canvas.to_png() if self.use_sketch.isChecked() and "sketch" not in self.off else None
        image = self.image_png if "image" not in self.off else None
        return PromptSpec(seed=seed, text=text, image_png=image, sketch_png=sketch)

    def set_prompt(self, p: PromptSpec) -> None:
        """Show a saved world's prompt (text, seed, image and sketch), so New world makes that world again; a world
        made without a sketch leaves the drawing on the canvas, unsent."""
        self.text.setPlainText(p.text or "")
        self.use_sketch.setChecked(False)
        if p.sketch_png:
            try:
                self.canvas.load_png(p.sketch_png)  # ticks "Send the sketch"
            except ValueError as e:
                self.error.emit(f"the saved world's sketch is not shown: {e}; Branch from one of its frames to "
                                "continue that world")
            self._show_columns()
        self.random_seed.setChecked(p.seed is None)
        if p.seed is not None:
            self.seed.setValue(p.seed)
        if p.image_png:
            self._set_image(QImage.fromData(p.image_png))
        else:
            self.clear_image()
