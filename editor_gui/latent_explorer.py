"""Latent action explorer: a looping preview of every latent action from the current frame, and a name for each."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from bridge.values import plural
from editor_gui.keymap import keep_play_focus
from editor_gui.scroll import VerticalScroll
from editor_gui.viewport import to_qimage

PREVIEW_PX = 128
PREVIEW_TIP = "Play every latent action for N frames from the current frame; the world is back where it was after"
PLAY_TIP = "Send this action once (step) so you can see it on the live world"


def pixmap(image: np.ndarray, size: int = PREVIEW_PX) -> QPixmap:
    """A crisp (nearest-neighbour) square-fitted pixmap of a frame."""
    img = np.ascontiguousarray(image)
    q = to_qimage(img).copy()  # copy: the pixmap must outlive the array
    return QPixmap.fromImage(q).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)


class PreviewCell(QWidget):
    """One latent action: its looping preview, its id, and an editable name."""

    renamed = Signal(int, str)
    play = Signal(int)

    def __init__(self, action: int, name: str, backend_name: str):
        super().__init__()
        self.action = action
        self.frames: list[QPixmap] = []
        self.view = QLabel()
        self.view.setFixedSize(PREVIEW_PX, PREVIEW_PX)
        self.view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view.setStyleSheet("background: #101216; border-radius: 4px;")
        self.name = QLineEdit(name)
        self.name.setObjectName(f"latent_name_{action}")
        self.name.setPlaceholderText(backend_name or f"latent {action}")
        self.name.editingFinished.connect(lambda: self.renamed.emit(self.action, self.name.text().strip()))
        title = QLabel(f"#{action}" + (f" · {backend_name}" if backend_name else ""))
        title.setStyleSheet("color: #8b93a1")
        use = self.play_btn = QPushButton("Play")
        use.setToolTip(PLAY_TIP)
        use.clicked.connect(lambda: self.play.emit(self.action))
        keep_play_focus(use)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.view, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(title)  # on its own row: beside Play a long name ("#5 · right_jump") widened the whole dock
        row = QHBoxLayout()
        row.addWidget(self.name, 1)
        row.addWidget(use)
        layout.addLayout(row)

    def set_frames(self, frames: list[np.ndarray]) -> None:
        self.frames = [pixmap(f) for f in frames]
        self.show_step(0)

    def show_step(self, i: int) -> None:
        if self.frames:
            self.view.setPixmap(self.frames[i % len(self.frames)])


class LatentExplorer(QWidget):
    """Asks the worker to branch-and-preview every latent action; names typed here join the key map's actions."""

    explore = Signal(int)  # steps per preview
    names_changed = Signal(object)  # {action id: name} (int keys: not a QVariantMap)
    play_action = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.cells: list[PreviewCell] = []
        self.names: dict[int, str] = {}
        self.blocked: str | None = None  # why Preview cannot go now (see block_preview)
        self.blocked_play: str | None = None  # why each action's Play cannot
        self.steps = QSpinBox()
        self.steps.setRange(2, 48)
        self.steps.setValue(8)
        self.steps.setSuffix(" frames")
        self.run_btn = QPushButton("Preview from current frame")
        self.run_btn.setObjectName("explore")
        self.run_btn.setToolTip(PREVIEW_TIP)
        self.run_btn.clicked.connect(lambda: self.explore.emit(self.steps.value()))
        keep_play_focus(self.run_btn)
        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.info = QLabel("Each latent action is played from the same frame (the host branches back after each), "
                           "so you can see what it does and name it. Names are saved with the session and usable in "
                           "the key map.")
        self.info.setWordWrap(True)
        self.info.setStyleSheet("color: #8b93a1")
        self.grid = QGridLayout()
        holder = QWidget()
        holder.setLayout(self.grid)
        scroll = VerticalScroll(holder)
        top = QHBoxLayout()
        top.addWidget(self.steps)
        top.addWidget(self.run_btn, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.bar)
        layout.addWidget(self.info)
        layout.addWidget(scroll, 1)
        self._tick = 0
        self.timer = QTimer(self)
        self.timer.setInterval(125)
        self.timer.timeout.connect(self._animate)

    def set_actions(self, count: int, backend_names: list[str], names: dict[int, str]) -> None:
        """Lay out one cell per latent action of the session."""
        for c in self.cells:
            self.grid.removeWidget(c)
            c.deleteLater()
        self.cells = []
        self.names = {int(k): v for k, v in names.items() if v}
        for a in range(count):
            cell = PreviewCell(a, self.names.get(a, ""), backend_names[a] if a < len(backend_names) else "")
            cell.renamed.connect(self._rename)
            cell.play.connect(self.play_action.emit)
            self.grid.addWidget(cell, a // 2, a % 2)
            self.cells.append(cell)
        self.block_preview(self.blocked, self.blocked_play)

    def _rename(self, action: int, name: str) -> None:
        if name:
            self.names[action] = name
        else:
            self.names.pop(action, None)
        self.names_changed.emit(dict(self.names))

    def block_preview(self, why: str | None, why_play: str | None = None) -> None:
        """Grey out Preview (`why`) and each action's Play (`why`, else `why_play`: a Play also needs the world in the
        session's live branch) while the host cannot take them; the tooltip says why (None: enable)."""
        self.blocked, self.blocked_play = why, why or why_play
        self.run_btn.setEnabled(why is None)
        self.run_btn.setToolTip(why or PREVIEW_TIP)
        for cell in self.cells:
            cell.play_btn.setEnabled(self.blocked_play is None)
            cell.play_btn.setToolTip(self.blocked_play or PLAY_TIP)

    def set_busy(self, busy: bool, done: int = 0, total: int = 0) -> None:
        """Show a running preview's progress (the window greys out Preview itself, see block_preview)."""
        self.bar.setVisible(busy)
        if total:
            self.bar.setRange(0, total)
            self.bar.setValue(done)

    def show_result(self, previews: list[list[np.ndarray]], start_index: int) -> None:
        for cell, frames in zip(self.cells, previews):
            cell.set_frames(frames)
        per_action = plural(len(previews[0]) if previews else 0, "frame")
        self.info.setText(f"Previews from frame {start_index}: {per_action} per action.")
        self.set_busy(False)
        self._tick = 0
        self.timer.start()

    def _animate(self) -> None:
        self._tick += 1
        for cell in self.cells:
            cell.show_step(self._tick)
