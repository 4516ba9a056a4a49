"""Long work off the UI thread (save, open, keep, export): a Job reports progress, can be cancelled, says how it ended."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from bridge.files import Cancelled, Progress


class Job(QThread):
    """Long work (save, load, export) off the UI thread, with progress and cancel."""

    progressed = Signal(int, int)
    succeeded = Signal(object)
    errored = Signal(str)

    def __init__(self, fn: Callable[[Progress], Any], parent: QObject | None = None, title: str = "",
                 keeps_window: bool = False, kept: str | Callable[[], str] = "nothing was written"):
        super().__init__(parent)
        self.fn, self.title = fn, title
        self.setObjectName(title)  # Qt names it if it is ever destroyed while running
        self.keeps_window = keeps_window  # closing the window waits for it (an export or save the user waits for)
        self.kept = kept  # what a cancel leaves, said with it; a callable is asked once it has stopped
        self.cancelled = False  # the user asked it to stop (its Cancel, or a close); one asked too late still finishes.
        # Written on the UI thread only; the job's thread reads it between frames (a bool: a late read costs a frame)
        self.error = ""  # why it did not finish, as `errored` says it ("was cancelled: …", "failed: …"); "" when it did

    def left(self) -> str:
        """What a cancel left, decided when it is known: a save's old file may have come or gone meanwhile."""
        return self.kept() if callable(self.kept) else self.kept

    def _progress(self, done: int, total: int) -> bool:
        self.progressed.emit(done, total)
        return not self.cancelled

    def run(self) -> None:
        try:
            result = self.fn(self._progress)
        except Cancelled:  # only _progress raises it (through tick), once the UI thread set `cancelled`
            self.end_cancelled()
            return
        except Exception as e:  # noqa: BLE001 - shown to the user
            self.error = f"failed: {e}"
        else:
            self.succeeded.emit(result)
            return
        self.errored.emit(self.error)  # set before: a close that waits for the job reads it with no event loop

    def end_cancelled(self) -> None:
        """End as cancelled, saying what the cancel left: run() calls it on the job's thread, and the UI thread for a job
        cancelled before it started, which never will. It writes no `cancelled` (only the UI thread does, before), and
        the `error` it writes is read after `errored` arrives or wait() returns, which both come after the write."""
        self.error = f"was cancelled: {self.left()}"
        self.errored.emit(self.error)


def onward(progress: Progress, before: int, after: int = 0) -> Progress:
    """One part of a job told as the whole job, so its one bar only moves forward: `before` units were done by the
    parts before it, `after` are left to the parts after it."""
    return lambda done, total: progress(before + done, before + total + after)
