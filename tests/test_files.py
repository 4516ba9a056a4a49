"""bridge/files.py: a file appears whole, with an ordinary file's mode, or not at all."""

import os
import stat
import sys
from types import SimpleNamespace

import pytest

import bridge.files as files
from bridge.files import atomic_write_bytes, atomic_write_json, publish, temp_beside
from helpers import macos_syncs, replace_held_open


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_temp_beside_publishes_whole_or_leaves_the_old_file(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with temp_beside(target) as tmp:
        assert tmp.parent == target.parent and tmp != target and not target.exists()
        tmp.write_bytes(b"first")
    assert target.read_bytes() == b"first"
    umask = os.umask(0o022)
    os.umask(umask)
    assert _mode(target) == 0o666 & ~umask  # not mkstemp's private 0600
    with pytest.raises(RuntimeError):
        with temp_beside(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"first"  # the old file, untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]  # no temp left behind


def test_atomic_writers_round_trip(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic_write_json(tmp_path / "b.json", {"z": 1, "a": [1, 2]})
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.json").read_text(encoding="utf-8") == '{\n  "a": [\n    1,\n    2\n  ],\n  "z": 1\n}\n'


def test_fsync_opens_for_writing_where_windows_needs_it(tmp_path, monkeypatch):
    import bridge.files as files

    f = tmp_path / "a.bin"
    f.write_bytes(b"x")
    flags, real_open = [], os.open
    monkeypatch.setattr(os, "open", lambda p, fl, *a: flags.append(fl) or real_open(p, fl, *a))
    files.fsync(f)
    monkeypatch.setattr(os, "name", "nt")  # Windows' fsync (_commit) fails with EBADF on a read-only descriptor
    files.fsync(f)
    assert flags[0] & os.O_ACCMODE == os.O_RDONLY and flags[1] & os.O_ACCMODE == os.O_RDWR


def test_publish_waits_out_a_program_that_briefly_holds_the_file_on_windows(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    calls = replace_held_open(monkeypatch, str(target), times=3)  # an indexer, a virus scanner: a moment
    monkeypatch.setattr(sys, "platform", "win32")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and len(calls) == 4
    calls = replace_held_open(monkeypatch, str(target), times=1000)  # a training run: until it is closed
    with pytest.raises(PermissionError, match=f"{target} is open in another program .*close it and retry"):
        atomic_write_bytes(target, b"newer")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_publish_does_not_retry_a_refusal_on_posix(tmp_path, monkeypatch):
    """POSIX renames over open files: a PermissionError there is the folder's permissions, not worth waiting out."""
    target = tmp_path / "out.bin"
    calls = replace_held_open(monkeypatch, str(target), times=1000)
    with pytest.raises(PermissionError, match="Access is denied"):
        atomic_write_bytes(target, b"new")
    assert len(calls) == 1


def test_without_proc_the_umask_is_set_to_read_it_once_not_on_every_publish(tmp_path, monkeypatch):
    """os.umask changes the mask for every thread until it is set back: a thread making a file meanwhile gets 022."""
    real_open, real_umask, sets = open, os.umask, []

    def no_proc(path, *a, **k):
        if str(path).startswith("/proc"):
            raise FileNotFoundError(2, "No such file or directory", path)  # macOS, Windows
        return real_open(path, *a, **k)

    monkeypatch.setattr(files, "open", no_proc, raising=False)
    monkeypatch.setattr(os, "umask", lambda m: sets.append(m) or real_umask(m))
    atomic_write_bytes(tmp_path / "a.bin", b"a")
    sets.clear()
    for name in "bcd":
        atomic_write_bytes(tmp_path / f"{name}.bin", b"x")
    assert sets == []
    mask = real_umask(0o022)
    real_umask(mask)
    assert _mode(tmp_path / "d.bin") == 0o666 & ~mask


@pytest.mark.parametrize("full_sync_works", [True, False])
def test_fsync_reaches_the_disk_on_macos(tmp_path, monkeypatch, full_sync_works):
    """macOS' fsync leaves the bytes in the drive's cache; F_FULLFSYNC flushes it (a file system without it: fsync)."""
    f = tmp_path / "a.bin"
    f.write_bytes(b"x")
    done = []

    def fcntl(fd, cmd, *a):
        if not full_sync_works:
            raise OSError(45, "Operation not supported")
        done.append(cmd)

    monkeypatch.setattr(files, "fcntl", SimpleNamespace(F_FULLFSYNC=51, fcntl=fcntl), raising=False)
    monkeypatch.setattr(os, "fsync", lambda fd: done.append("fsync"))
    files.fsync(f, full=True)
    assert done == ([51] if full_sync_works else ["fsync"])
    done.clear()
    files.fsync(f)  # one of many files published together: their publish flushes the drive cache once
    assert done == ["fsync"]


def test_a_published_folder_flushes_the_drive_cache_once_not_per_file(tmp_path, monkeypatch):
    """F_FULLFSYNC flushes the whole drive cache (tens of ms): one after every file's fsync and before the rename
    that publishes them keeps a power loss from leaving a half folder, one after it keeps the new name; one per file
    cost 2N of them."""
    done = macos_syncs(monkeypatch)
    tmp = tmp_path / "tmp"
    (tmp / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c"):
        (tmp / name).write_bytes(b"x")
    publish(tmp, tmp_path / "out")
    assert done.count("full") == 2 and done[-3:] == ["full", "rename", "full"]  # then the folder holding the name
    assert done.count("fsync") == 4  # a, b, sub/c, sub
    done.clear()
    atomic_write_bytes(tmp_path / "f.bin", b"x")
    assert done == ["full", "rename", "full"]


def test_a_recording_is_flushed_from_the_drive_cache_when_it_closes_not_every_second(tmp_path, monkeypatch):
    """The once-a-second sync runs on the host loop's thread: a full flush there could stall a frame."""
    import bridge.host.recording as recording

    done, now = macos_syncs(monkeypatch), [0.0]
    monkeypatch.setattr(recording, "clock", lambda: now[0])
    rec = recording.Recorder(tmp_path / "r.wbrec", {})
    for second in range(1, 4):
        now[0] = float(second)
        rec.write({"kind": "input", "t": now[0]})
    assert done == ["fsync"] * 4  # each second's records, and with the first of them the file's name in its folder
    rec.close(now[0])
    assert done == ["fsync"] * 4 + ["full"]


def test_publish_over_a_folder_whose_earlier_copy_was_kept_uses_a_new_name(tmp_path):
    """A publish that failed after its rename keeps `.NAME.old-PID`; the next save onto NAME must not trip over it."""
    from bridge.files import publish_over

    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "a").write_text("old", encoding="utf-8")
    kept = tmp_path / f".ds.old-{os.getpid()}"
    kept.mkdir()
    (kept / "a").write_text("kept earlier", encoding="utf-8")
    new = tmp_path / "new.tmp"
    new.mkdir()
    (new / "a").write_text("new", encoding="utf-8")
    publish_over(new, tmp_path / "ds")
    assert (tmp_path / "ds" / "a").read_text(encoding="utf-8") == "new"
    assert (kept / "a").read_text(encoding="utf-8") == "kept earlier"  # the user's earlier copy is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ds", kept.name])


def _stopped_writer(code: str, *args: str):
    """A writer stopped mid-write: a child process that runs `code`, which prints a line once it holds its temps and
    then waits on stdin; kill it to stand for an export killed with -9 (or a power cut)."""
    import subprocess

    from helpers import ROOT, cli_env

    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=cli_env(), cwd=ROOT)
    line = proc.stdout.readline()
    assert proc.poll() is None, "the child writer failed before holding its temps"
    return proc, line.strip()


def _killed(proc) -> None:
    proc.kill()
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()


HOLD_TEMP = """
import sys
from bridge.files import temp_beside
with temp_beside(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half")
    print(tmp, flush=True)
    sys.stdin.read()
"""


def test_a_killed_writers_temp_is_removed_by_the_next_write_a_running_ones_kept(tmp_path):
    """A write killed midway left its hidden `.NAME....tmp` beside the target forever; one running beside this one
    (another process, or this one) must keep its temp."""
    target = tmp_path / "out.bin"
    killed, killed_tmp = _stopped_writer(HOLD_TEMP, str(target))
    running, running_tmp = _stopped_writer(HOLD_TEMP, str(target))
    _killed(killed)
    try:
        with temp_beside(target) as mine:
            mine.write_bytes(b"mine")
            atomic_write_bytes(target, b"new")
            assert mine.read_bytes() == b"mine"  # this process's own temp, in use
        assert target.read_bytes() == b"mine" and not os.path.lexists(killed_tmp)
        assert open(running_tmp, "rb").read() == b"half"  # a live writer's temp, untouched
    finally:
        _killed(running)
    atomic_write_bytes(target, b"newer")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


HOLD_OLD = """
import sys
import bridge.files as files
files.publish = lambda tmp, path: (print(flush=True), sys.stdin.read())  # stopped between its two moves
files.publish_over(sys.argv[1], sys.argv[2])
"""


def test_a_killed_saves_earlier_copy_is_kept_while_it_is_the_last_one_and_removed_once_a_new_save_lands(tmp_path):
    """publish_over killed between moving the earlier folder aside and moving the new one in left `.NAME.old-...`
    forever; until a new NAME lands it is the only copy of the user's data, so only that landing may remove it."""
    from bridge.files import make_temp, publish_over

    ds, new = tmp_path / "ds", tmp_path / "new"
    for folder in (ds, new):
        folder.mkdir()
        (folder / "a").write_text(folder.name, encoding="utf-8")
    killed, _ = _stopped_writer(HOLD_OLD, str(new), str(ds))
    _killed(killed)
    [old] = [p for p in tmp_path.iterdir() if p.name.startswith(".ds.old-")]
    assert not ds.exists() and (old / "a").read_text(encoding="utf-8") == "ds"
    tmp = make_temp(ds, folder=True)  # the next save starts: the earlier copy stays until it lands
    assert (old / "a").read_text(encoding="utf-8") == "ds"
    (tmp / "a").write_text("newer", encoding="utf-8")
    publish_over(tmp, ds)
    assert (ds / "a").read_text(encoding="utf-8") == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "new"]


def test_only_this_machines_set_aside_copies_are_swept(tmp_path, monkeypatch):
    """On a shared folder another machine's publish_over holds the user's only copy in `.NAME.old-PID...` between its
    two moves: its PID means nothing here, so only names carrying this machine's part are judged, and an old-style
    name without one is never deleted."""
    from bridge.files import _host, publish_over
    from helpers import dead_pid

    dead = dead_pid()
    mine, foreign, unmarked = (tmp_path / f".ds.old-{dead}-{_host()}", tmp_path / f".ds.old-{dead}-0badf00d",
                               tmp_path / f".ds.old-{dead}")
    for folder in (tmp_path / "ds", mine, foreign, unmarked, tmp_path / "new"):
        folder.mkdir()
    moved, real = [], files.replace
    monkeypatch.setattr(files, "replace", lambda src, dst, held: (moved.append(os.path.basename(dst)),
                                                                  real(src, dst, held))[1])
    publish_over(tmp_path / "new", tmp_path / "ds")
    assert moved[0] == f".ds.old-{os.getpid()}-{_host()}"  # its own set-aside copy names this machine
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ds", foreign.name, unmarked.name])


def test_on_windows_a_process_is_asked_whether_it_runs_never_sent_a_signal(monkeypatch):
    """os.kill(pid, 0) terminates the process on Windows: OpenProcess and its exit code tell instead, and a process
    that cannot be opened is gone only when no process has its id (another user's answers access denied)."""
    import ctypes

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(os, "kill", lambda *a: pytest.fail("os.kill terminates a process on Windows"))
    exit_codes, closed, error = {8: 259, 12: 0}, [], [0]  # 259: STILL_ACTIVE

    def open_process(access, inherit, pid):
        if pid in exit_codes:
            return pid
        error[0] = 5 if pid == 4 else 87  # 4: the System process, access denied; 87: no such process
        return None

    def get_exit_code(handle, code):
        code._obj.value = exit_codes[handle]
        return 1

    kernel32 = SimpleNamespace(OpenProcess=open_process, GetExitCodeProcess=get_exit_code, CloseHandle=closed.append)
    monkeypatch.setattr(files, "_kernel32", lambda: kernel32)
    monkeypatch.setattr(ctypes, "get_last_error", lambda: error[0], raising=False)  # Windows-only
    assert [files.pid_alive(pid) for pid in (8, 12, 4, 16)] == [True, False, True, False]
    assert closed == [8, 12]
