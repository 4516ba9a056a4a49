"""The live view: the newest frame scaled nearest-neighbour, which backend made it, fps and input-to-frame latency;
also where an object layer is placed for a frame edit (a translucent preview follows the cursor)."""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from bridge.backend import backend_label
from editor_gui.keymap import is_play_key

# a key held with one of these is a shortcut, not play: Ctrl and Alt, and Meta, which is the physical Ctrl on macOS
# (where Qt's ControlModifier is Cmd) and the Windows/Super key elsewhere
SHORTCUT_MODIFIERS = (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.MetaModifier
                      | Qt.KeyboardModifier.AltModifier)

BACKGROUND = QColor("#101216")
DIM = QColor(16, 18, 22, 170)  # over a frame left when no world runs: it must not pass for a live one
MARGIN = 10  # px between the overlay's pills and the viewport's edges
STATS_EVERY_MS = 400.0  # between frames the overlay's fps and latency figures are made again when this old: just
# under the window's 500 ms overlay timer, so each of its ticks (frames stopped) shows new ones
RECENT_MS, RECENT_INPUTS = 10_000.0, 9  # the overlay's input->frame figure: the median of at most this many inputs
# this recent, so one slow input (the first after a branch) leaves it within seconds instead of staying for good


def now_ms() -> float:
    """The client clock (perf_counter ms), the same clock as Frame.received_ts and client_ts."""
    return time.perf_counter() * 1000.0


def to_qimage(image: np.ndarray) -> QImage:
    """Wrap an (H, W, 3) uint8 array as a QImage without copying (the caller keeps the array alive)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 frame, got {image.shape} {image.dtype}")
    if not image.flags.c_contiguous:
        raise ValueError("frame must be C-contiguous (np.ascontiguousarray) so the QImage can borrow it")
    h, w, _ = image.shape
    return QImage(image.data, w, h, 3 * w, QImage.Format.Format_RGB888)


def badge_text(kind: str, name: str) -> str:
    """What the user must always see: is this the trained world model or the scripted test game."""
    return backend_label(kind, name) if kind else "NO WORLD"


@dataclass
class ShownFrame:
    """A frame as the viewport shows it, with what it needs for latency figures."""

    image: np.ndarray
    index: int
    epoch: int
    seq: int | None = None
    client_ts: float | None = None
    received_ts: float | None = None


class FrameStats:
    """Display fps and latency: protocol (received - client_ts) and editor overhead (key press -> send, receive -> paint)."""

    def __init__(self, window: int = 120):
        self.painted: deque[float] = deque(maxlen=window)  # paint times of distinct frames
        self.received: deque[float] = deque(maxlen=window)
        self.protocol_ms: deque[float] = deque(maxlen=window)  # received_ts - client_ts, first frame of each input
        self.editor_ms: deque[float] = deque(maxlen=window)  # (client_ts - key press) + (paint - received)
        self.key_to_paint_ms: deque[float] = deque(maxlen=window)  # key press -> first frame of that input painted
        self.send_ms: deque[float] = deque(maxlen=window)  # key press -> input sent (client_ts): the editor's half
        self.display_ms: deque[float] = deque(maxlen=window)  # frame received -> painted: the other half
        self.press_ts: dict[int, float] = {}  # seq -> key press time
        self.target: tuple[float, bool] | None = None  # (the rate the host plays at, whether it is the world's own)
        self.recent: deque[tuple[float, float, float | None]] = deque(maxlen=RECENT_INPUTS)  # (paint time, protocol
        # ms, editor ms or None) of the last inputs: what the overlay's figure is made of
        self._last_seq: int | None = None

    @staticmethod
    def _rate(times: deque[float], span_ms: float = 1000.0) -> float:
        """Frames per second over the last `span_ms` up to now (drops to 0 when frames stop)."""
        now = now_ms()
        recent = [t for t in times if t >= now - span_ms]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) * 1000.0 / max(recent[-1] - recent[0], 1e-6)

    def fps_shown(self) -> float:
        return self._rate(self.painted)

    def fps_received(self) -> float:
        return self._rate(self.received)

    def on_received(self, f: ShownFrame) -> None:
        self.received.append(f.received_ts if f.received_ts is not None else now_ms())

    def on_painted(self, f: ShownFrame, paint_ts: float) -> None:
        self.painted.append(paint_ts)
        if f.seq is None or f.seq == self._last_seq:
            return
        self._last_seq = f.seq  # first frame that carries this input: its latency is the one that counts
        if f.client_ts is not None and f.received_ts is not None:
            self.protocol_ms.append(f.received_ts - f.client_ts)
            pressed = self.press_ts.pop(f.seq, None)
            editor = None
            if pressed is not None:
                editor = (f.client_ts - pressed) + (paint_ts - f.received_ts)
                self.editor_ms.append(editor)
                self.key_to_paint_ms.append(paint_ts - pressed)
                self.send_ms.append(f.client_ts - pressed)
                self.display_ms.append(paint_ts - f.received_ts)
            self.recent.append((paint_ts, f.received_ts - f.client_ts, editor))
        for s in [s for s in self.press_ts if s < f.seq]:
            del self.press_ts[s]

    def reset(self) -> None:
        self.painted.clear()
        self.received.clear()

    @staticmethod
    def median(values: Sequence[float]) -> float | None:
        return float(statistics.median(values)) if values else None

    def recent_latency(self) -> tuple[float | None, float | None]:
        """(protocol, editor) median ms of the inputs of the last RECENT_MS, or None where there are none."""
        since = now_ms() - RECENT_MS
        recent = [(proto, editor) for t, proto, editor in self.recent if t >= since]
        return (self.median([p for p, _ in recent]),
                self.median([e for _, e in recent if e is not None]))

    def text(self, index: int) -> str:
        """The overlay's figures for frame `index`: shown fps (of the realtime target), frame, input-to-frame latency
        (median of the recent inputs)."""
        rate = "" if self.target is None else f"/{self.target[0]:g}"
        own = " (world's own)" if self.target is not None and self.target[1] else ""
        parts = [f"{self.fps_shown():4.1f}{rate} fps{own}", f"frame {index}"]
        proto, editor = self.recent_latency()
        if proto is not None:
            parts.append(f"input→frame {proto:.0f} ms" + (f" (+{editor:.1f} editor)" if editor is not None else ""))
        return "   ".join(parts)


class Viewport(QWidget):
    """Shows frames crisp and centred; takes keyboard focus on click and reports play keys (never Tab/Escape)."""

    key_pressed = Signal(int, float)  # Qt key, press time (ms, client clock)
    key_released = Signal(int, float)  # Qt key, release time
    focus_changed = Signal(bool)
    placed = Signal(int, int)  # frame pixel (x, y) where the layer's top-left corner goes
    placing_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.stats = FrameStats()
        self.frame: ShownFrame | None = None
        self._qimage: QImage | None = None
        self._painted_key: tuple[int, int] | None = None
        self._stats_text = ""  # the overlay's figures, made when a frame is first painted or they are old
        self._stats_key: tuple[int, int] | None = None  # the frame they were made for, and when
        self._stats_at = 0.0
        self._fonts: tuple[QFont, QFont] | None = None  # (bold, regular) for the overlay; None: make them again
        self.kind, self.name = "", ""
        self.gone = ""  # with no backend: why no world runs, said on a grey badge over the frame left (dimmed)
        self.mode_label = ""  # "PAUSED", "REPLAY 12/50", "" when live
        self.message = "Connecting to the host…"
        self.placing: QImage | None = None  # the layer being placed (its top-left follows the cursor, centred)
        self._hover: tuple[int, int] | None = None  # frame pixel under the cursor while placing

    # --- inputs ---
    def set_backend(self, kind: str, name: str, gone: str = "") -> None:
        """The backend that made the frame shown; none (`kind` empty) with `gone` dims the frame under `gone`."""
        self.kind, self.name, self.gone = kind, name, gone
        self.update()

    def set_mode_label(self, text: str) -> None:
        self.mode_label = text
        self.update()

    def set_message(self, text: str) -> None:
        self.message = text
        self.update()

    def show_frame(self, frame: ShownFrame, live: bool = True) -> None:
        frame.image = np.ascontiguousarray(frame.image)
        self.frame = frame
        # converted once to what the backing store holds (a copy: nothing borrows the array), not on every paint
        self._qimage = to_qimage(frame.image).convertToFormat(QImage.Format.Format_RGB32)
        if live:
            self.stats.on_received(frame)
        self.message = ""
        self.update()

    # --- placing an object layer ---
    def begin_placing(self, layer: QImage) -> None:
        """Carry `layer` under the cursor; a left click places it (Shift keeps placing), Esc or right click cancels."""
        self.placing = layer
        self.setMouseTracking(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocus(Qt.FocusReason.OtherFocusReason)
        self.placing_changed.emit(True)
        self.update()

    def cancel_placing(self) -> None:
        if self.placing is None:
            return
        self.placing, self._hover = None, None
        self.setMouseTracking(False)
        self.unsetCursor()
        self.placing_changed.emit(False)
        self.update()

    def frame_pixel(self, pos: QPointF) -> tuple[int, int] | None:
        """The frame pixel under a widget position (None off the frame); undoes the nearest-neighbour scaling."""
        r = self.image_rect()
        if self._qimage is None or not r.contains(pos):
            return None
        w, h = self._qimage.width(), self._qimage.height()
        x = int((pos.x() - r.x()) * w / r.width())
        y = int((pos.y() - r.y()) * h / r.height())
        return min(max(x, 0), w - 1), min(max(y, 0), h - 1)

    def layer_origin(self, pixel: tuple[int, int]) -> tuple[int, int]:
        """Top-left frame pixel of the layer when the cursor is on `pixel` (the cursor holds the layer's centre)."""
        return pixel[0] - self.placing.width() // 2, pixel[1] - self.placing.height() // 2

    def _paint_placing(self, p: QPainter) -> None:
        if self.placing is None or self._hover is None or self._qimage is None:
            return
        r = self.image_rect()
        sx, sy = r.width() / self._qimage.width(), r.height() / self._qimage.height()
        x, y = self.layer_origin(self._hover)
        target = QRectF(r.x() + x * sx, r.y() + y * sy, self.placing.width() * sx, self.placing.height() * sy)
        p.save()
        p.setClipRect(r)  # what hangs over an edge is clipped, as the host clips it
        p.setOpacity(0.6)
        p.drawImage(target, self.placing)
        p.setOpacity(1.0)
        p.setPen(QPen(QColor("#e5c07b"), 1, Qt.PenStyle.DashLine))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(target)
        p.restore()

    # --- Qt ---
    def sizeHint(self):  # noqa: N802
        from PySide6.QtCore import QSize

        return QSize(640, 480)

    def image_rect(self) -> QRectF:
        """Where the frame lands: the largest integer-or-fitting scale that keeps the aspect, centred."""
        if self._qimage is None:
            return QRectF()
        w, h = self._qimage.width(), self._qimage.height()
        scale = min(self.width() / w, self.height() / h)
        if scale >= 1:
            scale = max(1, int(scale)) if scale < 8 else scale  # integer scaling when small keeps pixels square
        dw, dh = w * scale, h * scale
        return QRectF((self.width() - dw) / 2, (self.height() - dh) / 2, dw, dh)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        if self._qimage is None:
            p.fillRect(self.rect(), BACKGROUND)
        else:
            target = self.image_rect()
            self._fill_bars(p, target)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # nearest neighbour
            p.drawImage(target, self._qimage)
            if self._stopped():
                p.fillRect(target, DIM)
            f = self.frame
            key = (f.epoch, f.index)
            now = now_ms()
            if key != self._painted_key and not self.mode_label.startswith("REPLAY"):
                self._painted_key = key
                self.stats.on_painted(f, now)
            if key != self._stats_key or now - self._stats_at >= STATS_EVERY_MS:  # a new frame, or old figures
                self._stats_text, self._stats_key, self._stats_at = self.stats.text(f.index), key, now
            self._paint_placing(p)
        self._paint_overlay(p)
        p.end()

    def _stopped(self) -> bool:
        """A frame is shown and no world runs (no backend made it): it is dimmed under the `gone` badge."""
        return self.frame is not None and not (self.kind or self.name) and bool(self.gone)

    def _fill_bars(self, p: QPainter, target: QRectF) -> None:
        """Paint the background only around the frame (it covers the rest): the bars left by keeping its aspect."""
        w, h = self.width(), self.height()
        x0, y0 = math.ceil(target.left()), math.ceil(target.top())  # the whole pixels the frame surely covers
        x1, y1 = math.floor(target.right()), math.floor(target.bottom())
        for bar in (QRect(0, 0, w, y0), QRect(0, y1, w, h - y1),  # above, below
                    QRect(0, y0, x0, y1 - y0), QRect(x1, y0, w - x1, y1 - y0)):  # left, right
            if not bar.isEmpty():
                p.fillRect(bar, BACKGROUND)

    @staticmethod
    def _pill_rect(fm: QFontMetrics, x: float, y: float, text: str, right: bool = False) -> QRectF:
        """The box of a pill of `text` whose left (right: right) edge is at `x`."""
        w, h = fm.horizontalAdvance(text) + 16, fm.height() + 8
        return QRectF(x - w if right else x, y, w, h)

    def _pill(self, p: QPainter, rect: QRectF, text: str, bg: str, fg: str = "#ffffff") -> None:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(bg))
        p.drawRoundedRect(rect, 6, 6)
        p.setPen(QColor(fg))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    def _pill_at(self, p: QPainter, x: float, y: float, text: str, bg: str, right: bool = False,
                 avoid: QRectF | None = None) -> QRectF:
        """Paint a pill of `text` at (x, y), elided to the viewport's width, above `avoid` if it would cover it; its
        box."""
        fm = p.fontMetrics()
        text = fm.elidedText(text, Qt.TextElideMode.ElideRight, max(self.width() - 2 * MARGIN - 16, 0))
        rect = self._pill_rect(fm, x, y, text, right)
        if avoid is not None and rect.intersects(avoid):
            rect.moveBottom(avoid.top() - 4)
        self._pill(p, rect, text, bg)
        return rect

    def top_pills(self) -> tuple[tuple[QRectF, str] | None, tuple[QRectF, str] | None]:
        """(box, text) of the backend badge (top left) and of the fps/latency figures (top right), or None when not
        shown: side by side when both fit, else the figures under the badge; each elided to the viewport's width, so
        the badge, which says which backend made the frame, is never covered or cut off at its start."""
        bold, regular = (QFontMetrics(f) for f in self._overlay_fonts())
        room = max(self.width() - 2 * MARGIN - 16, 0)
        badge = stats = None
        if self.kind or self.name or self._stopped():
            said = self.gone if self._stopped() else badge_text(self.kind, self.name)
            text = bold.elidedText(said, Qt.TextElideMode.ElideRight, room)
            badge = self._pill_rect(bold, MARGIN, MARGIN, text), text
        if self.frame is not None:
            text = regular.elidedText(self._stats_text, Qt.TextElideMode.ElideRight, room)
            rect = self._pill_rect(regular, self.width() - MARGIN, MARGIN, text, right=True)
            if badge is not None and rect.left() < badge[0].right() + MARGIN:
                rect.moveTop(badge[0].bottom() + 4)
            stats = rect, text
        return badge, stats

    def message_rect(self) -> QRectF | None:
        """The dark box the message (connecting, host lost) is written on, centred; None with no message. Over the last
        frame (a bright sky) light text alone would not read."""
        if not self.message:
            return None
        fm = QFontMetrics(self.font())
        width = min(self.width() - 2 * MARGIN, fm.horizontalAdvance(self.message) + 24)
        text = fm.boundingRect(0, 0, max(width - 24, 1), 10_000, Qt.TextFlag.TextWordWrap, self.message)
        w, h = width, min(text.height() + 16, self.height() - 2 * MARGIN)
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        if event.type() == QEvent.Type.FontChange:
            self._fonts = None
        super().changeEvent(event)

    def _overlay_fonts(self) -> tuple[QFont, QFont]:
        """(bold, regular): the widget's font, at least 8 pt."""
        if self._fonts is None:
            bold, regular = QFont(self.font()), QFont(self.font())
            for font in (bold, regular):
                font.setPointSizeF(max(8.0, font.pointSizeF()))
            bold.setBold(True)
            regular.setBold(False)
            self._fonts = bold, regular
        return self._fonts

    def _paint_overlay(self, p: QPainter) -> None:
        bold, regular = self._overlay_fonts()
        badge, stats = self.top_pills()
        below = MARGIN + 34  # under the top row of pills
        if badge is not None:
            p.setFont(bold)
            colour = "#5c6370" if self._stopped() else "#c0392b" if self.kind == "sandbox" else "#2e7d32"
            self._pill(p, badge[0], badge[1], colour)
            below = badge[0].bottom() + 4
        if stats is not None:
            p.setFont(regular)
            self._pill(p, stats[0], stats[1], "#b0000000")
            below = max(below, stats[0].bottom() + 4)
        if self.placing is not None:
            p.setFont(bold)
            self._pill_at(p, MARGIN, below, "PLACING: click to paste the object (Shift+click: more) · Esc cancels",
                          "#b58900")
        mode = None
        if self.mode_label:
            p.setFont(bold)
            mode = self._pill_at(p, MARGIN, self.height() - 40, self.mode_label, "#b58900")
        if not self.hasFocus() and self.frame is not None and not self.mode_label.startswith("REPLAY"):
            p.setFont(regular)
            self._pill_at(p, self.width() - MARGIN, self.height() - 40, "click to play with the keyboard", "#a0000000",
                          right=True, avoid=mode)
        if self.hasFocus():
            p.setPen(QPen(QColor("#61afef"), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(self.rect().adjusted(1, 1, -1, -1))
        if (box := self.message_rect()) is not None:
            p.setFont(self.font())
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(16, 18, 22, 220))
            p.drawRoundedRect(box, 6, 6)
            p.setPen(QColor("#d0d0d0"))
            p.drawText(box.adjusted(12, 8, -12, -8), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self.message)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        if self.placing is not None:
            if event.button() == Qt.MouseButton.RightButton:
                self.cancel_placing()
            elif event.button() == Qt.MouseButton.LeftButton:
                pixel = self.frame_pixel(event.position())
                if pixel is not None:
                    x, y = self.layer_origin(pixel)
                    if not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                        self.cancel_placing()
                    self.placed.emit(x, y)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.placing is not None:
            self._hover = self.frame_pixel(event.position())
            self.update()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802
        self._hover = None
        self.update()
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Escape and self.placing is not None:
            self.cancel_placing()
            event.accept()
            return
        if not is_play_key(event.key()) or event.modifiers() & SHORTCUT_MODIFIERS:
            super().keyPressEvent(event)  # shortcuts and focus keys keep working
            return
        if not event.isAutoRepeat():
            self.key_pressed.emit(event.key(), now_ms())
        event.accept()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if not is_play_key(event.key()):
            super().keyReleaseEvent(event)
            return
        if not event.isAutoRepeat():
            self.key_released.emit(event.key(), now_ms())
        event.accept()

    def focusInEvent(self, event) -> None:  # noqa: N802
        super().focusInEvent(event)
        self.focus_changed.emit(True)
        self.update()

    def focusOutEvent(self, event) -> None:  # noqa: N802
        super().focusOutEvent(event)
        self.focus_changed.emit(False)  # keys held when focus leaves are released, or the player walks forever
        self.update()
