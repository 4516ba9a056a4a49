"""A flat-colour level sketch drawn on the sandbox's 16-row cell grid, sent to the host as a PNG sketch prompt."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from editor_gui.keymap import shortcut_text

ROWS = 16  # the sandbox reads a sketch as 16 cells tall (bridge.worlds.sketch)
CELL_PX = 4  # pixels per cell in the PNG: 64 px tall, one screen of the 64x64 sandbox per 16 columns
UNDO_DEPTH = 100  # sketch changes Undo can go back through
UNDO = "Ctrl+Z"  # the sketch's Undo shortcut, in Qt's portable words: Cmd+Z on macOS (tooltips say it as shortcut_text)


def sketch_palette() -> dict[str, tuple[int, int, int]]:
    """The sketch colours the host understands, from the sandbox (the one source of truth)."""
    from bridge.worlds.sandbox import SKETCH_PALETTE

    return dict(SKETCH_PALETTE)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 image (what the protocol's image and sketch prompts carry)."""
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", image, extension=".png")


class SketchCanvas(QWidget):
    """Paint cells with a palette colour: left button paints, right button erases to sky, shift-drag fills a rectangle;
    every change (a whole stroke at once) can be undone."""

    changed = Signal()
    undo_available = Signal(bool)

    def __init__(self, cols: int = 32, parent: QWidget | None = None):
        super().__init__(parent)
        self.palette_colors = sketch_palette()
        self.color_name = "ground"
        self.brush = 1  # cells
        self.cells = np.zeros((ROWS, cols, 3), np.uint8)
        self._drag_from: tuple[int, int] | None = None
        self._drag_to: tuple[int, int] | None = None
        self._erasing = False
        self._undo: list[np.ndarray] = []  # the cells before each change, oldest first
        self._before: np.ndarray | None = None  # the cells when the change under way began
        self._stroke = False  # a mouse stroke is under way: all it paints is one change
        self.setMinimumSize(240, 130)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # so Ctrl+Z after drawing undoes the sketch
        self.setToolTip(f"Left: paint · Right: erase to sky · Shift+drag: rectangle · {shortcut_text(UNDO)}: undo")
        self.clear()
        self._undo.clear()  # the blank canvas before the starting layout is no step back

    # --- undo ---
    def _begin(self) -> None:
        """Note the cells before a change (a stroke's first cell begins it; its later cells join it)."""
        if self._before is None:
            self._before = self.cells.copy()

    def _end(self) -> None:
        """Finish a change (a stroke when the button is released): the cells before it become an undo step."""
        if self._stroke or self._before is None:
            return
        before, self._before = self._before, None
        if not np.array_equal(before, self.cells):
            self._undo = [*self._undo, before][-UNDO_DEPTH:]
            self.undo_available.emit(True)

    def undo(self) -> bool:
        """Back to the cells before the last change (a stroke, a rectangle, Clear, a width, a loaded sketch)."""
        if not self._undo:
            return False
        self.cells = self._undo.pop()
        self.undo_available.emit(bool(self._undo))
        self.changed.emit()
        self.update()
        return True

    # --- model ---
    def _starting_layout(self) -> np.ndarray:
        """Sky, two rows of ground and the player on the left, as wide as the canvas."""
        pal = self.palette_colors
        cells = np.empty_like(self.cells)
        cells[:] = pal["sky"]
        cells[-2:] = pal["ground"]
        cells[-4:-2, 2] = pal["player"]
        return cells

    def clear(self) -> None:
        """Back to the starting layout."""
        self._begin()
        self.cells[:] = self._starting_layout()
        self._end()
        self.changed.emit()
        self.update()

    def drawn(self) -> bool:
        """Whether the canvas holds a drawing (not the starting layout at any width), so closing the editor keeps it."""
        return not np.array_equal(self.cells, self._starting_layout())

    def set_columns(self, cols: int) -> None:
        """Widen (new columns are sky over the starting ground, so a level stays walkable) or narrow (cuts columns)."""
        cols = int(cols)
        if cols < ROWS:
            raise ValueError(f"a sketch needs at least {ROWS} columns (one screen), got {cols}")
        self._begin()
        old = self.cells
        self.cells = np.empty((ROWS, cols, 3), np.uint8)
        self.cells[:] = self._starting_layout()
        n = min(cols, old.shape[1])
        self.cells[:, :n] = old[:, :n]
        self._end()
        self.changed.emit()
        self.update()

    def paint_cells(self, row: int, col: int, name: str | None = None, size: int | None = None) -> None:
        """Paint a square brush of cells centred at (row, col) with a palette colour."""
        name = name or self.color_name
        if name not in self.palette_colors:
            raise ValueError(f"unknown sketch colour {name!r}; use one of {list(self.palette_colors)}")
        size = size or self.brush
        r0, c0 = row - (size - 1) // 2, col - (size - 1) // 2
        self._begin()
        self.cells[max(0, r0):max(0, r0 + size), max(0, c0):max(0, c0 + size)] = self.palette_colors[name]
        self._end()
        self.changed.emit()
        self.update()

    def fill_rect(self, a: tuple[int, int], b: tuple[int, int], name: str | None = None) -> None:
        (r0, c0), (r1, c1) = a, b
        color = self.palette_colors[name or self.color_name]
        self._begin()
        self.cells[min(r0, r1):max(r0, r1) + 1, min(c0, c1):max(c0, c1) + 1] = color
        self._end()
        self.changed.emit()
        self.update()

    def load_png(self, png: bytes) -> None:
        """Show a sketch sent before (an opened session's prompt), so New world sends it again."""
        import imageio.v3 as iio

        image = np.asarray(iio.imread(png))
        cols = image.shape[1] // CELL_PX if image.ndim == 3 and image.shape[2] >= 3 else 0
        if image.shape[:2] != (ROWS * CELL_PX, cols * CELL_PX) or cols < ROWS:
            raise ValueError(f"its sketch ({image.shape[1]}×{image.shape[0]} px) is not on the {ROWS}-row sketch grid")
        self._begin()
        self.cells = np.ascontiguousarray(image[::CELL_PX, ::CELL_PX, :3]).astype(np.uint8)
        self._end()
        self.changed.emit()
        self.update()

    def image(self) -> np.ndarray:
        """The sketch at CELL_PX pixels per cell, (64, cols*4, 3) uint8."""
        return self.cells.repeat(CELL_PX, 0).repeat(CELL_PX, 1)

    def to_png(self) -> bytes:
        return encode_png(self.image())

    # --- view ---
    def _cell_size(self) -> float:
        return min(self.width() / self.cells.shape[1], self.height() / ROWS)

    def _offset(self) -> float:
        return max(0.0, (self.width() - self._cell_size() * self.cells.shape[1]) / 2)

    def _cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        s = self._cell_size()
        r, c = int(pos.y() // s), int((pos.x() - self._offset()) // s)
        if pos.x() < self._offset():
            return None
        if 0 <= r < ROWS and 0 <= c < self.cells.shape[1]:
            return r, c
        return None

    def heightForWidth(self, w: int) -> int:  # noqa: N802
        return int(w * ROWS / self.cells.shape[1])

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#202329"))
        p.translate(self._offset(), 0)
        s = self._cell_size()
        rows, cols, _ = self.cells.shape
        for r in range(rows):
            for c in range(cols):
                p.fillRect(QRectF(c * s, r * s, s + 0.5, s + 0.5), QColor(*self.cells[r, c].tolist()))
        p.setPen(QPen(QColor(0, 0, 0, 28), 1))
        for c in range(0, cols + 1):
            p.drawLine(QRectF(c * s, 0, 0, rows * s).topLeft(), QRectF(c * s, 0, 0, rows * s).bottomLeft())
        for r in range(0, rows + 1):
            p.drawLine(QRectF(0, r * s, cols * s, 0).topLeft(), QRectF(0, r * s, cols * s, 0).topRight())
        p.setPen(QPen(QColor(97, 175, 239, 160), 1, Qt.PenStyle.DashLine))
        for c in range(ROWS, cols, ROWS):  # screen boundaries of the 64x64 world
            p.drawLine(QRectF(c * s, 0, 0, rows * s).topLeft(), QRectF(c * s, 0, 0, rows * s).bottomLeft())
        if self._drag_from and self._drag_to:
            (r0, c0), (r1, c1) = self._drag_from, self._drag_to
            p.setPen(QPen(QColor("#61afef"), 2))
            p.drawRect(QRectF(min(c0, c1) * s, min(r0, r1) * s, (abs(c1 - c0) + 1) * s, (abs(r1 - r0) + 1) * s))
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        cell = self._cell_at(event.position().toPoint())
        if cell is None:
            return
        self._erasing = event.button() == Qt.MouseButton.RightButton
        self._begin()
        self._stroke = True
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self._drag_from = self._drag_to = cell
            self.update()
        else:
            self.paint_cells(*cell, name="sky" if self._erasing else None)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        cell = self._cell_at(event.position().toPoint())
        if cell is None:
            return
        if self._drag_from is not None:
            self._drag_to = cell
            self.update()
        elif event.buttons() & (Qt.MouseButton.LeftButton | Qt.MouseButton.RightButton):
            self.paint_cells(*cell, name="sky" if self._erasing else None)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._drag_from is not None and self._drag_to is not None:
            self.fill_rect(self._drag_from, self._drag_to, name="sky" if self._erasing else None)
        self._drag_from = self._drag_to = None
        self._stroke = False
        self._end()
        self.update()
