"""`kill` stops the commands that write datasets and checkpoints the way Ctrl-C does: they save or clean up first."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Within the block SIGTERM raises KeyboardInterrupt, so a `kill` saves or removes temp files instead of
    leaving them; signals only reach the main thread, so elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    prev = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, prev if prev is not None else signal.SIG_DFL)


@contextmanager
def stopped_says(what: str) -> Iterator[None]:
    """Ctrl-C (or `kill` inside sigterm_as_ctrl_c) ends a command with one line saying what was kept, and exit 130
    as the train commands do, instead of click's bare "Aborted!"."""
    try:
        yield
    except KeyboardInterrupt:
        say_stopped(what)


def say_stopped(what: str) -> NoReturn:
    """The one line a stopped command ends with, and exit 130 (for a caller that learns what was kept only after
    cleaning up, as `demo` does)."""
    click.echo(f"stopped: {what}", err=True)
    sys.exit(130)


def nothing_written(out: str | Path) -> str:
    """What an all-or-nothing writer (a dataset, an export) leaves when it is stopped: --out as it was before."""
    before = f"; {out} keeps what was there before" if Path(out).exists() else ""
    return f"nothing was written to {out}{before}"
