"""Files that appear whole or not at all: written beside their destination, then moved onto it in one step."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

Progress = Callable[[int, int], bool]  # (done, total) -> keep going? (False cancels)


class Cancelled(Exception):
    """The user cancelled a long write (an export, a session save); nothing was written."""


def tick(progress: Progress | None, done: int, total: int) -> None:
    """Report progress; a callback answering False cancels the write."""
    if progress is not None and progress(done, total) is False:
        raise Cancelled()


def umask() -> int:
    """The process umask, read without changing it where /proc allows; elsewhere (macOS) read once by setting it."""
    try:
        with open("/proc/self/status", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _umask_by_setting()


@functools.cache
def _umask_by_setting() -> int:
    """os.umask must set a mask to read one, which changes it for every thread until it is set back: so only once."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sync(fd: int, full: bool = False) -> None:
    """Put an open file's bytes on the disk. macOS' fsync leaves them in the drive's cache; `full` flushes that whole
    cache too (F_FULLFSYNC, tens of ms: once per publish, after every file's fsync, not once per file; a file system
    without it, such as some network ones, gets fsync)."""
    if full and getattr(fcntl, "F_FULLFSYNC", None) is not None:
        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
            return
        except OSError:
            pass
    os.fsync(fd)


def fsync(path: str | Path, full: bool = False) -> None:
    """fsync by path: POSIX syncs through any descriptor (a folder's too); Windows' _commit needs one open for writing."""
    fd = os.open(path, os.O_RDONLY if os.name == "posix" else os.O_RDWR)
    try:
        sync(fd, full)
    finally:
        os.close(fd)


def _sync(tmp: Path) -> None:
    """Put a temp file's bytes (a folder's: every file's) on disk, so a power loss after the rename that publishes it
    leaves the whole new file, never an empty or half one in place of the old: each file fsynced, then the drive's
    cache flushed once, last, for all of them."""
    if not tmp.is_dir():
        fsync(tmp, full=True)
        return
    for folder, subfolders, names in os.walk(tmp):
        for name in names:
            fsync(Path(folder) / name)
        if os.name == "posix":  # a folder opens for fsync on POSIX only
            for sub in subfolders:
                fsync(Path(folder) / sub)
    if os.name == "posix":
        fsync(tmp, full=True)


def publish(tmp: str | Path, path: str | Path) -> None:
    """Move a finished temp file or folder onto `path` once it is on disk, with the mode open()/mkdir() would have
    given it: mkstemp and mkdtemp make theirs private to the owner, and a saved session or a checkpoint is meant to be
    shared."""
    tmp = Path(tmp)
    os.chmod(tmp, (0o777 if tmp.is_dir() else 0o666) & ~umask())
    _sync(tmp)
    replace(tmp, path, path)
    sync_names(path, full=True)  # the rename itself, so the new name survives a power loss too
    sweep_leftovers(path, olds=True)  # `path` now holds what the user wrote: a dead writer's copy of it is stale


def sync_names(path: str | Path, made: Sequence[Path] = (), full: bool = False) -> None:
    """Put on disk the name of a file made or renamed in its folder, and of each folder `make_folders` made for it:
    fsync of a file alone may leave a power loss with the file's bytes and no name for them (POSIX; Windows opens no
    folder to sync)."""
    if os.name == "posix":
        for folder in dict.fromkeys([Path(path).parent, *(f.parent for f in made)]):
            fsync(folder, full=full)


def _free_name(path: Path) -> Path:
    """`path`, or `path-1`, `path-2`, ...: the first that names nothing yet."""
    n = 0
    while os.path.lexists(candidate := path.with_name(path.name + (f"-{n}" if n else ""))):
        n += 1
    return candidate


def publish_over(tmp: str | Path, path: str | Path) -> None:
    """`publish` a temp folder onto `path`, which may hold an earlier one (a folder cannot be renamed over another):
    that one is moved aside, put back if the new one did not land, deleted once it did; left anywhere else, it is
    named, so no copy of the user's data hides unsaid."""
    path = Path(path)
    if not os.path.lexists(path):
        publish(tmp, path)
        return
    old = _free_name(path.with_name(leftover_prefix(path, "old")))  # an earlier failed save may have kept one
    replace(path, old, path)
    try:
        publish(tmp, path)
    except BaseException as e:
        why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        if os.path.lexists(path):  # failed after its rename: the new one is in place, its name maybe not yet on disk
            warnings.warn(f"{path} was replaced, but not yet surely on disk ({why}): the earlier one is kept as {old}; "
                          f"delete it once {path} reads as it should", stacklevel=2)
            raise
        try:
            replace(old, path, path)
        except OSError as back:
            raise OSError(f"{path} could not be replaced ({why}), and the earlier one could not be put back "
                          f"({back.strerror or back}): it is kept as {old}; rename it to {path.name}") from e
        raise
    remove_tree(old)


def replace(src: str | Path, dst: str | Path, held: str | Path) -> None:
    """os.replace, waited out for about a second on Windows, which refuses it while another program has either file
    open (a virus scanner or indexer for a moment, a training run until it ends); then an error naming `held`, the
    user's file among the two, and the fix."""
    for wait in (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.25, None):
        try:
            os.replace(src, dst)
            return
        except PermissionError as e:
            if sys.platform != "win32":
                raise
            if wait is None:
                raise PermissionError(f"{held} is open in another program (a training run? Explorer?), so it cannot "
                                      f"be replaced ({e.strerror or e}): close it and retry") from None
            time.sleep(wait)


def remove_tree(path: str | Path) -> None:
    """Delete a folder or file this code set aside; one that cannot be deleted (open in another program on Windows, or
    a file in it) is left with a warning naming it, rather than left unsaid."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass
    if os.path.lexists(path):
        warnings.warn(f"could not delete {path} (it, or a file in it, is open in another program?): delete it yourself "
                      "to free its space", stacklevel=2)


def make_folders(folder: str | Path) -> list[Path]:
    """Make `folder` and its missing parents; returns those this call made, parents first, so that a command that
    fails can take back exactly them (`remove_empty`) and never a folder that was there or that another made."""
    missing, folder = [], Path(folder)
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    made = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:  # made meanwhile by someone else: not ours to remove
            continue
        made.append(folder)
    return made


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders `make_folders` made, deepest first, each only while empty: nothing anyone put there is lost."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            pass


@functools.cache
def _host() -> str:
    """This machine, in a temp's name: a process on another one writing to the same folder (a network drive, a
    container's bind mount) has its own process ids, so whether its temp is a leftover cannot be told from here."""
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def leftover_prefix(path: str | Path, kind: str) -> str:
    """The start of the name of a temp ("tmp") or of an earlier copy set aside ("old") of `path`: hidden, beside it,
    and naming the process and machine that made it, so a later write to `path` on this machine can tell a killed
    writer's leftover from a live one's (another machine's is never judged by this one's process ids)."""
    return f".{Path(path).name}.{kind}-{os.getpid()}-{_host()}"


def make_temp(path: str | Path, suffix: str = ".tmp", folder: bool = False) -> Path:
    """A new temp file (or folder) beside `path` for this process to write, `.NAME.tmp-PID-HOST-XXXX`, after removing
    the temps a killed writer left for `path`: a PNG folder of a long take is large, and nothing else deletes it."""
    sweep_leftovers(path)
    prefix, folder_at = f"{leftover_prefix(path, 'tmp')}-", Path(path).parent
    if folder:
        return Path(tempfile.mkdtemp(dir=folder_at, prefix=prefix, suffix=suffix))
    fd, tmp = tempfile.mkstemp(dir=folder_at, prefix=prefix, suffix=suffix)
    os.close(fd)
    return Path(tmp)


def sweep_leftovers(path: str | Path, olds: bool = False) -> None:
    """Delete the temps (`olds`: and the earlier copies set aside) of `path` that a process of this machine no longer
    running left beside it (killed, a power cut), never a running one's, such as a second export to the same path,
    nor another machine's on a shared folder, nor an old-style `.NAME.old-PID` that names no machine. An earlier copy
    may be the only one until a new `path` lands, so `publish` alone removes those."""
    path = Path(path)
    kinds = "tmp|old" if olds else "tmp"
    name = re.compile(rf"\.{re.escape(path.name)}\.(?:{kinds})-(\d{{1,10}})-{_host()}(?:-[a-z0-9_]+)?(?:\.[a-z0-9]+)?")
    try:
        entries = os.listdir(path.parent)
    except OSError:  # no folder yet, or one this user cannot list: nothing of ours is there
        return
    for entry in entries:
        found = name.fullmatch(entry)
        if found and not pid_alive(int(found[1])):
            remove_tree(path.parent / entry)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this machine is running (or cannot be told: kept alive), before deleting its temps."""
    if pid == os.getpid() or not 0 < pid < 2**31:  # this one; or an id no process has: not a name this code made
        return True
    if sys.platform == "win32":  # os.kill(pid, 0) there would terminate the process
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: running, as another user
        return True
    return True


def _kernel32() -> Any:
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    kernel32.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
    kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
    return kernel32


def _windows_pid_alive(pid: int) -> bool:
    """Windows: a process that cannot be opened is gone only if its id is unknown (another user's is access denied);
    one that can is running while its exit code reads STILL_ACTIVE."""
    import ctypes

    kernel32 = _kernel32()
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() != 87  # ERROR_INVALID_PARAMETER: no process has this id
    try:
        code = ctypes.c_ulong()
        return not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) or code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


@contextmanager
def temp_beside(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temp file beside `path` to write; published onto `path` when the block ends, removed if the block raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp(path, suffix)
    try:
        yield Path(tmp)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write through a temp file beside `path` (synced by `publish`), so a crash leaves the old file or the new one."""
    with temp_beside(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())
