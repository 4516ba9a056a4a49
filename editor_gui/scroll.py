"""A scroll area for the editor's side panels: up and down only, as wide as what it holds."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget


class VerticalScroll(QScrollArea):
    """Scrolls `widget` up and down and is as wide as it needs: a panel taller than a small screen scrolls instead of
    holding the window taller than the screen, and nothing in it is cut off at the right behind a sideways scroll bar."""

    def __init__(self, widget: QWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        # a click on a button that keeps the keys on the viewport (keep_play_focus) gives focus to the nearest parent
        # that takes clicks: not this one, or Space would scroll the panel instead of jumping
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setWidget(widget)  # QScrollArea filters its widget's events: eventFilter below sees its layout change

    def _width(self, inner: int) -> int:
        return inner + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(self._width(self.widget().minimumSizeHint().width()), super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802
        """As narrow as the widget can be: the width a dock does not need goes to the frame in the middle."""
        return QSize(self._width(self.widget().minimumSizeHint().width()), self.widget().sizeHint().height())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # its contents changed (cells added): the dock takes the new width
        return super().eventFilter(watched, event)
