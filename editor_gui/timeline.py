"""The timeline: record, scrub recorded frames with thumbnails, branch from any frame, switch branches, replay."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QSlider,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from bridge.backend import DEFAULT_FPS
from editor_gui.export import NOTHING
from editor_gui.keymap import keep_play_focus
from editor_gui.session_store import FrameRecord, Session
from editor_gui.viewport import to_qimage

THUMB = 64
OPEN_TIP = "Open a saved session (a .wbsession file, or session.json in a session folder)"
SAVE_TIP = "Save the whole session (every branch, its frames and actions) as a .wbsession file or a folder"
EXPORT_TIP = "Export the branch being viewed"
NO_WORLD_TO_EXPORT = "Nothing to export yet: start a world (and press Record to keep its frames)"
BRANCH_TIP = "The world continues from the selected frame in a new branch; the old branch is kept"


def _grey(button: QWidget, why: str | None, tip: str) -> None:
    """Grey out `button` with `why` as its tooltip, or (None) enable it with its own `tip`."""
    button.setEnabled(why is None)
    button.setToolTip(why or tip)


class ThumbStrip(QWidget):
    """Thumbnails around the selected frame; yellow marks frames where events fired, blue marks fork points."""

    clicked = Signal(int)  # position in the recorded list

    def __init__(self) -> None:
        super().__init__()
        self.records: list[FrameRecord] = []
        self.current = -1
        self.forks: set[int] = set()
        self._cache: dict[int, QImage] = {}  # id(image) -> thumbnail, for the visible frames (alive in `records`)
        self._drawn: tuple = ()  # what the strip shows (see set_records): it repaints only when that changes
        self.setFixedHeight(THUMB + 18)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_records(self, records: list[FrameRecord], current: int, forks: set[int]) -> None:
        self.records, self.current, self.forks = records, current, forks
        first, last = self._window()
        shown = records[first:last]
        keep = {id(r.image) for r in shown}
        self._cache = {k: v for k, v in self._cache.items() if k in keep}  # thumbnails of the visible frames only
        drawn = (shown, first, current, [r.index in forks for r in shown], [bool(r.events) for r in shown])
        if not self._same(drawn):  # the strip's picture changed
            self._drawn = drawn
            self.update()

    def _same(self, drawn: tuple) -> bool:
        """Whether `drawn` is the picture on screen: the same frames (by identity: records compare their pixels) at
        the same place, selected and marked alike."""
        if not self._drawn:
            return False
        shown, *rest = drawn
        was, *was_rest = self._drawn
        return len(shown) == len(was) and all(a is b for a, b in zip(shown, was)) and rest == was_rest

    def _thumb(self, rec: FrameRecord) -> QImage:
        key = id(rec.image)
        if key not in self._cache:  # RGB32: what the strip's backing store holds, so drawing converts nothing
            thumb = to_qimage(rec.image).convertToFormat(QImage.Format.Format_RGB32)
            self._cache[key] = thumb.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.FastTransformation)
        return self._cache[key]

    def _window(self) -> tuple[int, int]:
        n_fit = max(1, self.width() // (THUMB + 4))
        first = max(0, min(self.current - n_fit // 2, len(self.records) - n_fit))
        return first, min(len(self.records), first + n_fit)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#181a1f"))
        if not self.records:
            p.setPen(QColor("#8b93a1"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No recorded frames: press Record to keep frames for scrubbing, branching and export")
            p.end()
            return
        first, last = self._window()
        for slot, pos in enumerate(range(first, last)):
            rec = self.records[pos]
            x = 2 + slot * (THUMB + 4)
            p.drawImage(QRectF(x, 2, THUMB, THUMB), self._thumb(rec))
            if pos == self.current:
                p.setPen(QPen(QColor("#61afef"), 3))
                p.drawRect(QRectF(x, 2, THUMB, THUMB))
            p.setPen(QColor("#8b93a1"))
            p.drawText(QRectF(x, THUMB + 2, THUMB, 14), Qt.AlignmentFlag.AlignCenter, str(rec.index))
            if rec.events:
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(QColor("#e5c07b"))
                p.drawPolygon(QPolygonF([QRectF(x, 2, 12, 12).topLeft(), QRectF(x, 2, 12, 12).topRight(),
                                         QRectF(x, 2, 12, 12).bottomLeft()]))
            if rec.index in self.forks:
                p.setPen(QPen(QColor("#61afef"), 2))
                p.drawLine(int(x + THUMB - 3), 2, int(x + THUMB - 3), THUMB + 2)
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        first, last = self._window()
        pos = first + int((event.position().x() - 2) // (THUMB + 4))
        if first <= pos < last:
            self.clicked.emit(pos)


class TimelinePanel(QWidget):
    """Shows one branch's recorded frames; the live branch follows the host, others can be viewed and replayed."""

    record_toggled = Signal(bool)
    host_record_toggled = Signal(bool)
    branch_requested = Signal(int, int)  # branch id, frame index
    frame_selected = Signal(object)  # FrameRecord being viewed (None = back to live)
    branch_switched = Signal(int)
    save_requested = Signal()
    load_requested = Signal()
    export_requested = Signal(str)  # "mp4" | "gif" | "png" | "actions"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.session: Session | None = None
        self.branch_id: int | None = None
        self.records: list[FrameRecord] = []
        self._seen: tuple = ()  # the viewed timeline's state `records` was read at (see _versions)
        self.follow_live = True  # the scrubber sticks to the newest frame until the user grabs it

        self.record = QPushButton("● Record")
        self.record.setObjectName("record")
        self.record.setCheckable(True)
        self.record.toggled.connect(self._on_record)
        self.host_record = QCheckBox("also record on host (.wbrec)")
        self.host_record.toggled.connect(self.host_record_toggled.emit)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("scrubber")
        self.slider.setRange(0, 0)
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.sliderPressed.connect(lambda: setattr(self, "follow_live", False))
        self.pos_label = QLabel("–")
        self.pos_label.setMinimumWidth(150)
        self.strip = ThumbStrip()
        self.strip.clicked.connect(self._select)
        self.branch_btn = QPushButton("Branch from this frame")
        self.branch_btn.setObjectName("branch")
        self._branch_blocked: str | None = None  # why the host cannot branch now (see block_branch)
        self.branch_btn.clicked.connect(self._branch)
        self.replay_btn = QPushButton("▶ Replay")
        self.replay_btn.setCheckable(True)
        self.replay_btn.toggled.connect(self._on_replay)
        self.live_btn = QPushButton("Live")
        self.live_btn.setToolTip("Back to the live world")
        self.live_btn.clicked.connect(self.go_live)
        save, load = QPushButton("Save…"), QPushButton("Open…")
        save.clicked.connect(self.save_requested.emit)
        load.clicked.connect(self.load_requested.emit)
        load.setToolTip(OPEN_TIP)
        save.setToolTip(SAVE_TIP)
        self.load_btn, self.save_btn = load, save
        export = QToolButton()
        export.setText("Export ▾")
        export.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(export)
        menu.setToolTipsVisible(True)
        self.export_actions: dict[str, QAction] = {}
        for fmt, label in (("mp4", "MP4 video…"), ("gif", "GIF…"), ("png", "PNG frames…"), ("actions", "Action log (JSON)…")):
            act = QAction(label, menu)
            act.triggered.connect(lambda _=False, f=fmt: self.export_requested.emit(f))
            menu.addAction(act)
            self.export_actions[fmt] = act
        export.setMenu(menu)
        self.export_btn = export
        self._export_blocked: str | None = None  # why no export may start now (see block_export)
        keep_play_focus(self.record, self.host_record, self.branch_btn, self.replay_btn, self.live_btn, save, load, export)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Branch", "Frames"])
        self.tree.setColumnWidth(0, 190)
        self.tree.setMaximumWidth(290)
        self._tree_sig: tuple | None = None  # the tree's shape as built (see _fill_tree)
        self._items: dict[int, QTreeWidgetItem] = {}  # its item per branch id
        self.tree.itemClicked.connect(lambda item, _col: self.show_branch(item.data(0, Qt.ItemDataRole.UserRole)))

        controls = QHBoxLayout()
        for w in (self.record, self.host_record):
            controls.addWidget(w)
        controls.addSpacing(12)
        for w in (self.branch_btn, self.replay_btn, self.live_btn):
            controls.addWidget(w)
        controls.addStretch(1)
        for w in (save, load, export):
            controls.addWidget(w)
        scrub = QHBoxLayout()
        scrub.addWidget(self.slider, 1)
        scrub.addWidget(self.pos_label)
        right = QVBoxLayout()
        right.addLayout(controls)
        right.addLayout(scrub)
        right.addWidget(self.strip)
        right.setSpacing(4)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 4)
        layout.addWidget(self.tree)
        layout.addLayout(right, 1)
        self.tree.setMaximumHeight(THUMB + 80)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)

        self.replay_timer = QTimer(self)
        self.replay_timer.timeout.connect(self._replay_tick)
        self._update_buttons()

    # --- model ---
    def set_session(self, session: Session | None) -> None:
        self.session = session
        self.branch_id = session.live if session else None
        self.follow_live = True
        self.refresh()

    def show_branch(self, branch_id: int) -> None:
        """View another branch (the live world keeps running; Branch from a frame of it to continue there)."""
        self.stop_replay()
        self.branch_id = branch_id
        self.follow_live = branch_id == (self.session.live if self.session else None)
        self.refresh()
        if not self.follow_live and self.records:
            self._select(len(self.records) - 1)
        self.branch_switched.emit(branch_id)

    def refresh(self) -> None:
        """Re-read the session (called a few times a second while frames arrive)."""
        s = self.session
        if s is None or self.branch_id is None or self.branch_id not in s.branches:
            self.records, self._seen = [], ()
            self.strip.set_records([], -1, set())
            self.slider.setRange(0, 0)
            self.pos_label.setText("–")
            self.tree.clear()
            self._tree_sig, self._items = None, {}  # the items are gone: the next session's tree is built afresh
            self._update_buttons()
            return
        seen = self._versions()
        if seen != self._seen:  # frames of the viewed timeline came or went since the last read
            self._seen, self.records = seen, s.recorded(self.branch_id)
        forks = {b.parent_frame for b in s.branches.values() if b.parent_frame is not None}
        pos = self.slider.value()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(self.records) - 1))
        if self.follow_live or pos >= len(self.records):
            pos = max(0, len(self.records) - 1)
        self.slider.setValue(pos)
        self.slider.blockSignals(False)
        self.strip.set_records(self.records, pos if self.records else -1, forks)
        self._label(pos)
        self._fill_tree()
        self._update_buttons()

    def _versions(self) -> tuple:
        """The state of the viewed timeline's frames: each branch it runs through, where it forks and its frames'
        version (unique to one state of one branch's frames, so a new session never matches an old one)."""
        s, out = self.session, []
        b = s.branches[self.branch_id]
        while True:
            out.append((b.id, b.parent_frame, b.frames.version))
            if b.parent is None:
                return tuple(out)
            b = s.branches[b.parent]

    def show_length(self, branch_id: int) -> None:
        """A frame without pixels arrived: only the branch's frame count (and what can be exported) changes, so this
        is all that is updated; the recorded frames stay as they were."""
        item = self._items.get(branch_id)
        if item is not None and self.session is not None and branch_id in self.session.branches:
            self._show_count(item, branch_id)
        if branch_id == self.branch_id:
            self._update_export(bool(self.records))

    def _fill_tree(self) -> None:
        """Rebuild the branch tree when its shape changes; otherwise only update the frame counts."""
        s = self.session
        sig = (tuple((b.id, b.parent, b.name) for b in s.branches.values()), s.live, self.branch_id)
        if self._tree_sig != sig:
            self._tree_sig = sig
            self.tree.clear()
            self._items = {}
            for b in sorted(s.branches.values(), key=lambda b: b.id):
                item = QTreeWidgetItem([b.name + ("  ● live" if b.id == s.live else ""), ""])
                item.setData(0, Qt.ItemDataRole.UserRole, b.id)
                parent = self._items.get(b.parent) if b.parent is not None else None
                (parent.addChild(item) if parent else self.tree.addTopLevelItem(item))
                self._items[b.id] = item
                item.setSelected(b.id == self.branch_id)
            self.tree.expandAll()
        for bid, item in self._items.items():
            self._show_count(item, bid)

    def _show_count(self, item: QTreeWidgetItem, branch_id: int) -> None:
        item.setText(1, str(self.session.branches[branch_id].last_index() + 1))  # timeline length, frame 0 included

    def _label(self, pos: int) -> None:
        if not self.records:
            self.pos_label.setText("no recorded frames")
            return
        rec = self.records[pos]
        ev = f" · {', '.join(rec.events)}" if rec.events else ""
        self.pos_label.setText(f"frame {rec.index}  ({pos + 1}/{len(self.records)}){ev}")

    def block_open(self, why: str | None) -> None:
        """Grey out Open… while the host's frames must land in this session; the tooltip says why (None: enable)."""
        _grey(self.load_btn, why, OPEN_TIP)

    def block_save(self, why: str | None) -> None:
        """Grey out Save… while an Open… or a close's keep holds the session it would write; the tooltip says why
        (None: enable)."""
        _grey(self.save_btn, why, SAVE_TIP)

    def block_branch(self, why: str | None) -> None:
        """Grey out Branch while the host cannot take one (no host, a rebuild or preview running); the tooltip says
        why (None: enable when frames are recorded)."""
        self._branch_blocked = why
        self._update_buttons()

    def block_export(self, why: str | None) -> None:
        """Grey out Export while an Open… or a close's keep holds the session it would read; the tooltip says why
        (None: enable when the branch has something to export)."""
        self._export_blocked = why
        self._update_export(bool(self.records))

    def _update_buttons(self) -> None:
        has = bool(self.records)
        self.branch_btn.setEnabled(has and self._branch_blocked is None)
        self.branch_btn.setToolTip(self._branch_blocked or BRANCH_TIP)
        self.replay_btn.setEnabled(has)
        self._update_export(has)

    def _update_export(self, pictures: bool) -> None:
        """Export only what the viewed branch has (so no file is asked for in vain); the tooltips say what is missing."""
        s, bid = self.session, self.branch_id
        log = s is not None and bid in s.branches and s.branches[bid].last_index() >= 0  # frames, recorded or not
        for fmt, act in self.export_actions.items():
            can = log if fmt == "actions" else pictures
            act.setEnabled(can)
            act.setToolTip("" if can else NOTHING)
        self.export_btn.setEnabled(log and self._export_blocked is None)
        self.export_btn.setToolTip(self._export_blocked or (EXPORT_TIP if log else NO_WORLD_TO_EXPORT))

    # --- interaction ---
    def _on_record(self, on: bool) -> None:
        self.record.setText("■ Stop" if on else "● Record")
        self.record.setStyleSheet("QPushButton { color: #e06c75; font-weight: bold; }" if on else "")
        self.record_toggled.emit(on)

    def _on_slider(self, pos: int) -> None:
        self._select(pos, from_slider=True)

    def _select(self, pos: int, from_slider: bool = False) -> None:
        if not self.records:
            return
        pos = max(0, min(pos, len(self.records) - 1))
        self.follow_live = False
        if not from_slider:
            self.slider.blockSignals(True)
            self.slider.setValue(pos)
            self.slider.blockSignals(False)
        self.strip.set_records(self.records, pos, self.strip.forks)
        self._label(pos)
        self.frame_selected.emit(self.records[pos])

    def select_index(self, frame_index: int) -> None:
        """Select the recorded frame with this host frame index."""
        self.refresh()
        for pos, r in enumerate(self.records):
            if r.index == frame_index:
                self._select(pos)
                return
        raise ValueError(f"frame {frame_index} is not recorded on this branch")

    def selected(self) -> FrameRecord | None:
        return self.records[self.slider.value()] if self.records else None

    def _branch(self) -> None:
        rec = self.selected()
        if rec is not None and self.branch_id is not None:
            self.stop_replay()
            self.branch_requested.emit(self.branch_id, rec.index)

    def go_live(self) -> None:
        self.stop_replay()
        if self.session is not None and self.session.live is not None:
            self.branch_id = self.session.live
        self.follow_live = True
        self.refresh()
        self.frame_selected.emit(None)

    def _on_replay(self, on: bool) -> None:
        if on and self.records:
            fps = self.session.fps_of(self.branch_id) if self.session and self.branch_id is not None else DEFAULT_FPS
            if self.slider.value() >= len(self.records) - 1:
                self._select(0)
            self.replay_btn.setText("■ Stop replay")
            self.replay_timer.start(int(1000 / max(1.0, fps)))
        else:
            self.replay_timer.stop()
            self.replay_btn.setText("▶ Replay")

    def _replay_tick(self) -> None:
        pos = self.slider.value() + 1
        if pos >= len(self.records):
            self.stop_replay()
            return
        self._select(pos)

    def stop_replay(self) -> None:
        if self.replay_btn.isChecked():
            self.replay_btn.setChecked(False)

    def replaying(self) -> bool:
        return self.replay_timer.isActive()
