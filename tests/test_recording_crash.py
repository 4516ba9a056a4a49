"""Recordings after a crash or a power loss: what was written before it stays on disk and readable."""

import os

from bridge.host.recording import Recorder, RecordingReader
from test_recording_files import HEADER, frame_record, is_file


def _synced_folders(monkeypatch) -> list[int]:
    """Record the inode of every folder fsynced from now on."""
    synced, fsync = [], os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (is_file(fd) or synced.append(os.fstat(fd).st_ino), fsync(fd)))
    return synced


def test_a_new_recordings_name_and_the_folders_made_for_it_are_synced(tmp_path, monkeypatch):
    synced = _synced_folders(monkeypatch)
    path = tmp_path / "recordings" / "day1" / "take.wbrec"  # both folders made by the recorder
    rec = Recorder(path, HEADER)
    rec.write(frame_record(1))
    rec.close()
    # was: only the file was fsynced, so a power loss could drop its name (and its folders'), and with them every frame
    assert sorted(synced) == sorted(p.stat().st_ino for p in (path.parent, path.parent.parent, tmp_path))
    assert RecordingReader(path).complete


def test_a_recordings_name_is_synced_once_with_its_first_records(tmp_path, monkeypatch):
    import bridge.host.recording as recording

    now = [0.0]
    monkeypatch.setattr(recording, "clock", lambda: now[0])
    synced = _synced_folders(monkeypatch)
    rec = Recorder(tmp_path / "take.wbrec", HEADER)
    assert synced == []  # record_start pays no sync: the first one comes with the first second's records
    for i in range(1, 3 * 24):
        now[0] = i / 24
        rec.write(frame_record(i))
    assert synced == [tmp_path.stat().st_ino]  # at the first sync (a power loss costs the last second, not the take)
    rec.close()
    assert synced == [tmp_path.stat().st_ino]
