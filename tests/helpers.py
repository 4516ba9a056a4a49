"""Test helpers shared by several test files: a test file imports these, never another test file's privates."""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli_env() -> dict[str, str]:
    """The environment a `python -m bridge.cli` subprocess needs: this checkout importable, one CPU thread (2 cores)."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def long_prose_lines(path: Path, width: int = 118) -> list[int]:
    """Line numbers of a Markdown file's prose over `width` columns, so it reads in a terminal and in review diffs;
    table rows and fenced code blocks cannot wrap and may run long."""
    long, fenced = [], False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and len(line) > width and not line.lstrip().startswith("|"):
            long.append(n)
    return long


def in_ascii_locale(code: str) -> str:
    """Run Python `code` where open() without encoding= reads and writes ASCII (as it reads cp1252 on Windows);
    returns its stdout. UTF-8 mode and C-locale coercion are off, or Python would pick UTF-8 anyway."""
    env = {**cli_env(), "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                         encoding="utf-8", check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def replace_held_open(monkeypatch, held, times: int) -> list:
    """os.replace refused (PermissionError) `times` times while `held` is the file moved or replaced, as Windows
    refuses it while another program has that file open; returns the paths each call moved."""
    calls, real = [], os.replace
    refusals = iter(range(times))

    def replace(src, dst):
        calls.append(src)
        if held in (os.fspath(src), os.fspath(dst)) and next(refusals, None) is not None:
            raise PermissionError(13, "Access is denied", os.fspath(src))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    return calls


def macos_syncs(monkeypatch) -> list[str]:
    """Make bridge.files sync as on macOS and log, in order, each "full" (F_FULLFSYNC: the drive's whole cache
    flushed, costly), "fsync" and "rename" (a publish's os.replace)."""
    from types import SimpleNamespace

    import bridge.files as files

    done, real = [], os.replace
    monkeypatch.setattr(files, "fcntl", SimpleNamespace(F_FULLFSYNC=51, fcntl=lambda fd, cmd, *a: done.append("full")),
                        raising=False)
    monkeypatch.setattr(os, "fsync", lambda fd: done.append("fsync"))
    monkeypatch.setattr(os, "replace", lambda src, dst: (done.append("rename"), real(src, dst))[1])
    return done


def dead_pid() -> int:
    """The id of a process that has exited: what a writer killed with -9 leaves in its temps' names."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(gone.stdout)
