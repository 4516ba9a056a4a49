"""bridge/files.py: a file appears whole, with an ordinary file's mode, or not at all."""

import os
import stat

import pytest

from bridge.files import atomic_write_bytes, atomic_write_json, temp_beside


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
    assert (tmp_path / "b.json").read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "z": 1\n}\n'


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
