"""bridge/export.py: one exporter of frames for the CLI, the demo and the editor."""

import shutil
from pathlib import Path

import pytest


def test_auto_scale_keeps_both_sides_a_multiple_of_16():
    from bridge.export import auto_scale

    for h, w in ((56, 56), (36, 36), (64, 48), (20, 28), (160, 400)):
        s = auto_scale(h, w)
        assert (h * s) % 16 == 0 and (w * s) % 16 == 0, (h, w, s)
    assert auto_scale(56, 56) == 8  # 7 (392 px) is nearer 384 but not a multiple of 16
    assert auto_scale(64, 64) == 6


def test_export_frames_refuses_an_empty_export_and_leaves_nothing(tmp_path):
    from bridge.export import export_frames

    for targets in ({"gif": tmp_path / "a.gif"}, {"mp4": tmp_path / "a.mp4"}, {"frames": tmp_path / "f"}):
        with pytest.raises(ValueError, match="no frames to export"):
            export_frames([], targets, 24.0, label="WorldBridge — test")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_removes_the_folders_it_made_and_only_those(tmp_path):
    import numpy as np

    from bridge.export import export_frames
    from bridge.files import Cancelled

    (tmp_path / "kept").mkdir()  # there before the export: it stays
    targets = {"gif": tmp_path / "new" / "a" / "b.gif", "frames": tmp_path / "new" / "c" / "f",
               "mp4": tmp_path / "kept" / "sub" / "v.mp4"}
    frames = [np.full((16, 16, 3), i * 60, np.uint8) for i in range(3)]
    with pytest.raises(Cancelled):  # was: new/a, new/c and kept/sub stayed behind, empty
        export_frames(frames, targets, 24.0, progress=lambda done, _: done < 2, label="WorldBridge — test")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["kept"]

    def drop_a_file(done: int, _: int) -> bool:  # someone saves a file into a folder the export made
        (tmp_path / "new" / "a" / "notes.txt").write_text("mine")
        return False

    with pytest.raises(Cancelled):
        export_frames(frames, targets, 24.0, progress=drop_a_file, label="WorldBridge — test")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "kept", "new", "new/a", "new/a/notes.txt"]  # never removed with the file in it
    with pytest.raises(ValueError, match="no frames to export"):
        export_frames([], {"gif": tmp_path / "x" / "y.gif"}, 24.0, label="WorldBridge — test")
    assert not (tmp_path / "x").exists()


SANDBOX = ("sandbox", "sandbox game")
MODEL = ("world_model", "world model tiny (default_world, step 4627)")


def read_labels(path) -> list[str]:
    """Every place an export says what made it, read back the way a user's tools read it (ffmpeg, pillow)."""
    import subprocess
    from pathlib import Path

    import imageio_ffmpeg
    from PIL import Image

    path = Path(path)
    if path.is_dir():
        return sorted({v for png in path.iterdir() for k, v in Image.open(png).text.items() if k in ("Comment", "Source")})
    if path.suffix == ".gif":
        return [Image.open(path).info["comment"].decode()]
    meta = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
                          capture_output=True, text=True, check=True).stdout
    return sorted({line.split("=", 1)[1] for line in meta.splitlines() if line.startswith(("title=", "comment="))})


def test_source_label_names_the_sandbox_the_model_several_or_none():
    from bridge.export import source_label

    assert source_label([SANDBOX]) == "WorldBridge — SANDBOX GAME (test backend, not the world model): sandbox game"
    assert source_label([MODEL, MODEL]) == "WorldBridge — WORLD MODEL: tiny (default_world, step 4627)"
    both = source_label([MODEL, SANDBOX])
    assert both.startswith("WorldBridge — SEVERAL BACKENDS: ") and "WORLD MODEL: " in both and "SANDBOX GAME" in both
    assert "unknown" in source_label([])


def _recording(path, backends, n=3):
    """A recording whose header(s) name `backends` ((kind, name) each), holding n flat frames."""
    import msgpack

    from bridge.host.recording import Recorder

    rec = Recorder(path, {"host": "test", "session": {"backend_kind": backends[0][0], "backend_name": backends[0][1],
                                                      "fps": 12.0, "width": 16, "height": 16}})
    for kind, name in backends[1:]:  # a session that went on in another world
        rec.write({"kind": "header", "t": 0.0, "session": {"backend_kind": kind, "backend_name": name}})
    for i in range(n):
        hdr = msgpack.packb({"type": "frame", "index": i, "epoch": 0, "action": 1, "events": [], "codec": "raw",
                             "width": 16, "height": 16}, use_bin_type=True)
        rec.write({"kind": "frame", "t": float(i), "wire": [hdr, bytes([i * 60]) * (16 * 16 * 3)], "source": "step"})
    rec.close()
    return path


@pytest.mark.parametrize("backends, says", [
    ([SANDBOX], "SANDBOX GAME (test backend, not the world model): sandbox game"),
    ([MODEL], "WORLD MODEL: tiny (default_world, step 4627)"),
    ([MODEL, SANDBOX], "SEVERAL BACKENDS"),
])
def test_record_export_says_in_every_file_which_backend_made_it(tmp_path, backends, says):
    from click.testing import CliRunner

    from bridge.export import source_label
    from bridge.host.cli import record

    rec = _recording(tmp_path / "s.wbrec", backends)
    out = {"mp4": tmp_path / "a.mp4", "gif": tmp_path / "a.gif", "frames": tmp_path / "pngs"}
    r = CliRunner().invoke(record, ["export", str(rec)] + [a for k, p in out.items() for a in (f"--{k}", str(p))])
    assert r.exit_code == 0, r.output
    for path in out.values():
        assert read_labels(path) == [source_label(backends)], path
        assert says in read_labels(path)[0]


def test_editor_exports_carry_the_label_they_are_given(tmp_path):
    import numpy as np

    from bridge.export import source_label
    from editor_gui import export as exporting
    from editor_gui.session_store import FrameRecord

    frames = [np.full((16, 16, 3), i * 50, np.uint8) for i in range(3)]
    recs = [FrameRecord(index=i, action=0, image=f) for i, f in enumerate(frames)]
    label = source_label([SANDBOX])
    outs = [exporting.export_mp4(frames, tmp_path / "a.mp4", 12.0, 1, None, label),
            exporting.export_gif(frames, tmp_path / "a.gif", 12.0, 1, None, label),
            exporting.export_png_frames(recs, tmp_path / "pngs", 1, None, label)]
    assert [read_labels(p) for p in outs] == [[label]] * 3
    unlabeled = exporting.export_gif(frames, tmp_path / "b.gif", 12.0)  # a caller that knows no backend says so
    assert "backend unknown" in read_labels(unlabeled)[0]


def test_every_export_is_on_disk_before_it_replaces_the_old_file(tmp_path, monkeypatch):
    """A power loss right after an export must leave the new file whole or the old one, never an empty file."""
    import os

    import numpy as np

    from bridge.export import export_frames

    synced, unsynced = set(), []
    fsync, replace = os.fsync, os.replace

    def fsync_seen(fd):
        synced.add(os.fstat(fd).st_ino)
        fsync(fd)

    def replace_checked(src, dst):
        files = [os.path.join(d, n) for d, _, names in os.walk(src) for n in names] if os.path.isdir(src) else [src]
        unsynced.extend(f for f in files + [src] if os.stat(f).st_ino not in synced)
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync_seen)
    monkeypatch.setattr(os, "replace", replace_checked)
    (tmp_path / "old.mp4").write_bytes(b"the user's earlier export")
    frames = [np.full((16, 16, 3), i * 60, np.uint8) for i in range(3)]
    out = export_frames(frames, {"mp4": tmp_path / "old.mp4", "gif": tmp_path / "a.gif", "frames": tmp_path / "f"},
                        12.0, label="test")
    assert set(out) == {"mp4", "gif", "frames"} and len(os.listdir(tmp_path / "f")) == 3
    assert (tmp_path / "old.mp4").read_bytes()[4:8] == b"ftyp" and unsynced == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "f", "old.mp4"]  # the old file's copy is gone


@pytest.mark.parametrize("failing", [1, 2, 3])
def test_an_export_whose_later_move_fails_leaves_every_old_file_and_no_new_one(tmp_path, monkeypatch, failing):
    """Files cannot be renamed together: a failed move takes back the outputs already in place, restoring the
    replaced files, so the user sees the export fail whole, never half the outputs new."""
    import os

    import numpy as np

    from bridge.export import export_frames

    replace, calls = os.replace, []

    def replace_failing(src, dst):
        calls.append(dst)
        if len(calls) == failing:
            raise OSError(28, "No space left on device")
        replace(src, dst)

    (tmp_path / "old.mp4").write_bytes(b"the user's earlier export")
    (tmp_path / "f").mkdir()
    monkeypatch.setattr(os, "replace", replace_failing)
    frames = [np.full((16, 16, 3), i * 60, np.uint8) for i in range(3)]
    targets = {"gif": tmp_path / "new.gif", "mp4": tmp_path / "old.mp4", "frames": tmp_path / "f"}
    with pytest.raises(OSError, match=r"cannot export --\w+ to .* \(No space left on device\): no output was exported,"
                                      r" and the files it would have replaced are as they were$"):
        export_frames(frames, targets, 12.0, label="test")
    assert len(calls) >= failing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "old.mp4"]  # no new file, temp or kept copy
    assert (tmp_path / "old.mp4").read_bytes() == b"the user's earlier export" and not any((tmp_path / "f").iterdir())


def test_a_replaced_file_that_cannot_be_put_back_is_kept_and_named(tmp_path, monkeypatch):
    """Never lose user data: when even the restore fails, the error names where the earlier file is kept."""
    import os
    import re
    from pathlib import Path

    import numpy as np

    from bridge.export import export_frames

    replace, calls = os.replace, []

    def replace_once(src, dst):
        calls.append(dst)
        if len(calls) > 1:
            raise OSError(5, "Input/output error")
        replace(src, dst)

    (tmp_path / "old.mp4").write_bytes(b"the user's earlier export")
    monkeypatch.setattr(os, "replace", replace_once)
    frames = [np.full((16, 16, 3), 60, np.uint8)]
    with pytest.raises(OSError, match=r"could not be taken back \(Input/output error\): its earlier file is kept as"
                                      r" (\S+)$") as e:
        export_frames(frames, {"mp4": tmp_path / "old.mp4", "gif": tmp_path / "new.gif"}, 12.0, label="test")
    kept = Path(re.search(r"kept as (\S+)$", str(e.value)).group(1))
    assert kept.read_bytes() == b"the user's earlier export" and not (tmp_path / "new.gif").exists()


def test_a_gif_is_written_frame_by_frame_and_reads_back_every_frame(tmp_path):
    """pillow's GIF writer held every frame in memory and encoded them all at close, after the bar reached 100%."""
    import numpy as np
    from PIL import Image, ImageSequence

    from bridge.export import Export

    rng = np.random.default_rng(0)
    colours = rng.integers(0, 255, (16, 3), np.uint8)  # few enough for a GIF palette: frames read back exactly
    frames = [colours[rng.integers(0, 16, (96, 96))] for _ in range(4)]  # each more than a write buffer
    frames[2] = frames[1].copy()
    frames[2][4:6, 5:9] = colours[0]  # a frame that changes a box only, and a repeat of it
    frames.insert(3, frames[2].copy())
    sizes = []
    with Export({"gif": tmp_path / "a.gif"}, 10.0, label="WorldBridge — test") as ex:
        for frame in frames:
            ex.add(frame)
            sizes.append(ex.temps["gif"].stat().st_size)
        ex.finish()
    assert sizes[1] > 0 and sizes[2] > sizes[1]  # on disk while the frames come, not at the end
    gif = Image.open(tmp_path / "a.gif")
    shown = [(np.asarray(f.convert("RGB")), f.info["duration"]) for f in ImageSequence.Iterator(gif)]
    want = [(f, 100) for f in frames[:2]] + [(frames[2], 200), (frames[4], 100)]  # the repeat shows twice as long
    assert len(shown) == 4 and gif.info["loop"] == 0 and gif.info["comment"].decode() == "WorldBridge — test"
    for (got, ms), (frame, want_ms) in zip(shown, want):
        assert ms == want_ms and np.array_equal(got, frame)


def test_each_png_is_synced_as_it_is_written_not_after_the_progress_bar(tmp_path, monkeypatch):
    """Syncing a folder of thousands of PNGs at publish took seconds after the bar said 100%, with nothing shown."""
    import os

    import numpy as np

    from bridge.export import Export

    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd)))
    with Export({"frames": tmp_path / "f"}, 10.0, label="WorldBridge — test") as ex:
        for i in range(3):
            ex.add(np.full((8, 8, 3), i, np.uint8), f"{i}.png")
        assert [Path(p).name for p in synced] == ["0.png", "1.png", "2.png"]
        ex.finish()
    assert sorted(os.listdir(tmp_path / "f")) == ["0.png", "1.png", "2.png"]


def test_a_png_folder_flushes_the_drive_cache_once_not_twice_per_frame(tmp_path, monkeypatch):
    """macOS' F_FULLFSYNC flushes the whole drive cache: each PNG was flushed as written and again at publish."""
    import numpy as np

    from bridge.export import export_frames
    from helpers import macos_syncs

    done = macos_syncs(monkeypatch)
    export_frames([np.full((8, 8, 3), i, np.uint8) for i in range(5)], {"frames": tmp_path / "f"}, 10.0, label="test")
    assert done.count("full") == 2 and done.index("full") == done.index("rename") - 1  # the frames, then the name


def _fail_after(calls: int, real):
    """`real`, made to raise ENOSPC from its (calls+1)th call on, as a disk that fills mid-export does."""
    import errno

    done = []

    def failing(*a, **kw):
        done.append(1)
        if len(done) > calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **kw)

    return failing


@pytest.mark.parametrize("kind", ["gif", "frames", "actions"])
def test_a_disk_that_fills_mid_export_names_the_output_and_the_fix(tmp_path, monkeypatch, kind):
    """A write error while encoding said only "[Errno 28] No space left on device": not which output, nor what to do."""
    import imageio.v3 as iio
    import numpy as np

    from bridge import export
    from bridge.export import Export

    if kind == "gif":
        monkeypatch.setattr(export.GifStream, "_flush", _fail_after(1, export.GifStream._flush))
    elif kind == "frames":
        monkeypatch.setattr(iio, "imwrite", _fail_after(1, iio.imwrite))
    target = tmp_path / "out" / {"gif": "a.gif", "frames": "f", "actions": "a.ndjson"}[kind]
    with pytest.raises(OSError) as e, Export({kind: target}, 12.0, label="test") as ex:
        if kind == "actions":
            log = ex.log
            ex.log = type("Log", (), {"write": staticmethod(_fail_after(1, log.write)), "close": log.close})()
        for i in range(4):
            ex.add(np.full((16, 16, 3), i * 60, np.uint8), f"{i}.png")
            if kind == "actions":
                ex.write_log(f"{i}\n")
        ex.finish()
    assert str(e.value) == (f"cannot write --{kind} {target} (No space left on device): free space on its disk or "
                            "choose a folder on another one")
    assert list(tmp_path.iterdir()) == []  # no temp file, no folder the export made


def test_an_mp4_the_encoder_left_unfinished_is_refused_not_exported(tmp_path, monkeypatch):
    """ffmpeg that hits a full disk writes a cut MP4 (no `moov`) and exits, and imageio never checks its exit status:
    the export said it wrote an MP4 that no player opens."""
    import imageio.v2 as iio2
    import numpy as np

    from bridge.export import export_frames

    get_writer = iio2.get_writer

    def cut_on_close(path, **kw):
        writer = get_writer(path, **kw)
        close = writer.close

        def close_and_cut():
            close()
            with open(path, "r+b") as f:
                f.truncate(4096 if f.seek(0, 2) > 4096 else 40)  # where a full disk stopped it
        writer.close = close_and_cut
        return writer

    monkeypatch.setattr(iio2, "get_writer", cut_on_close)
    frames = [np.random.default_rng(i).integers(0, 255, (64, 64, 3), np.uint8) for i in range(8)]
    with pytest.raises(OSError, match=r"^cannot write --mp4 .*a\.mp4 \(the encoder stopped before the video was "
                                      r"complete: is its disk full\?\): free space on its disk or choose a folder on "
                                      r"another one$"):
        export_frames(frames, {"mp4": tmp_path / "a.mp4"}, 12.0, label="test")
    assert list(tmp_path.iterdir()) == []


def test_a_close_that_fails_still_closes_every_output_after_it_and_names_the_first(tmp_path, monkeypatch):
    """A GIF whose close failed left the action log open and every temp output on disk until `discard()`, which
    ignores errors; now every writer is closed, every temp removed, and the error names the GIF."""
    import errno

    import numpy as np

    from bridge import export
    from bridge.export import Export

    close = export.GifStream.close

    def full_disk(self):
        close(self)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export.GifStream, "close", full_disk)
    target = tmp_path / "out"
    ex = Export({"gif": target / "a.gif", "actions": target / "a.ndjson"}, 12.0, label="test")
    log, closed = ex.log, []

    def log_close():  # the log fails too: the first failure is the one named
        closed.append(1)
        log.close()
        raise OSError(errno.EIO, "Input/output error")

    ex.log = type("Log", (), {"write": log.write, "close": staticmethod(log_close)})()
    ex.add(np.zeros((16, 16, 3), np.uint8))
    ex.write_log("0\n")
    with pytest.raises(OSError, match=r"^cannot write --gif .*a\.gif \(No space left on device\)"):
        ex.finish()
    assert closed == [1] and log.closed  # was: never closed, its error never seen
    assert list(tmp_path.iterdir()) == []  # no temp output, no folder the export made


@pytest.mark.parametrize("backends, says", [
    ([MODEL], "WorldBridge — backend unknown (the recording's header was damaged)"),
    ([MODEL, SANDBOX], "WorldBridge — SEVERAL BACKENDS: backend unknown (the recording's header was damaged) + "
                       "SANDBOX GAME (test backend, not the world model): sandbox game"),
])
def test_an_export_whose_recording_lost_its_header_says_the_backend_was_lost_not_unrecorded(tmp_path, backends, says):
    """The backend was recorded, in the header a flipped byte made unreadable: the export said it never was; a later
    header that was read names its backend, but not for the frames the lost one made."""
    from bridge.host.recording import MAGIC, RecordingReader, export_recording

    path = _recording(tmp_path / "s.wbrec", backends)
    data = bytearray(path.read_bytes())
    data[len(MAGIC) + 12] ^= 0xFF  # inside the first header record's body: its CRC fails
    path.write_bytes(bytes(data))
    assert RecordingReader(path).header_lost
    export_recording(path, gif=tmp_path / "a.gif", frames_dir=tmp_path / "f", progress=False)
    assert read_labels(tmp_path / "a.gif") == read_labels(tmp_path / "f") == [says]



def test_finish_with_no_frames_removes_its_temp_outputs_outside_a_with_block(tmp_path):
    """'there are no frames to export' was raised before any cleanup: a finish() outside a `with` block left every
    temp output, and the folder it made, on disk, and the action log open."""
    from bridge.export import Export

    ex = Export({"gif": tmp_path / "out" / "a.gif", "actions": tmp_path / "out" / "a.ndjson"}, 12.0, label="test")
    log = ex.log
    ex.write_log("0\n")
    with pytest.raises(ValueError, match="^there are no frames to export$"):
        ex.finish()
    assert log.closed and list(tmp_path.iterdir()) == []


def test_a_temp_file_that_cannot_be_deleted_is_named_in_a_warning_like_a_folder(tmp_path, monkeypatch):
    """A temp file still open on Windows stayed, hidden, without a word, while a temp folder got a warning."""
    import os

    from bridge.export import Export

    ex = Export({"gif": tmp_path / "a.gif", "frames": tmp_path / "f"}, 12.0, label="test")
    gif, real = ex.temps["gif"], os.unlink
    monkeypatch.setattr(os, "unlink", lambda p, *a, **kw: (_ for _ in ()).throw(PermissionError(13, "Access is denied"))
                        if os.fspath(p) == os.fspath(gif) else real(p, *a, **kw))
    with pytest.warns(UserWarning, match=rf"could not delete {gif} .*delete it yourself"):
        ex.discard()
    assert [p.name for p in tmp_path.iterdir()] == [gif.name]


STOPPED_EXPORT = """
import sys
import numpy as np
import bridge.export as export
ex = export.Export(dict(zip(("mp4", "gif", "frames"), sys.argv[2:])), 4.0, label="test")
ex.add(np.zeros((16, 16, 3), np.uint8))
if sys.argv[1] == "finish":  # stopped between keeping the replaced file's second name and moving the new one in
    export.publish = lambda tmp, path: (print(flush=True), sys.stdin.read())
    ex.finish()
print(flush=True)
sys.stdin.read()
"""


def _stopped_export(*args: str):
    """An export stopped midway in a child process, until it is killed (an export killed with -9, a power cut)."""
    import subprocess
    import sys

    from helpers import ROOT, cli_env

    proc = subprocess.Popen([sys.executable, "-c", STOPPED_EXPORT, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=cli_env(), cwd=ROOT)
    proc.stdout.readline()
    assert proc.poll() is None, "the child export failed before it stopped"
    return proc


def test_an_export_removes_what_a_killed_export_left_and_never_a_running_ones(tmp_path):
    """An export killed with -9 left its hidden temp outputs (`.demo.mp4....mp4`, a PNG folder of a whole take) and the
    replaced file's second name (`.NAME....old`) beside the targets forever; a second export running meanwhile must
    keep its own."""
    import numpy as np

    from bridge.export import export_frames

    mp4, gif, frames = tmp_path / "out.mp4", tmp_path / "out.gif", tmp_path / "frames"
    export_frames([np.zeros((16, 16, 3), np.uint8)], {"mp4": mp4}, 4.0, label="test")
    running = _stopped_export("encode", str(mp4), str(gif), str(frames))
    runnings = {p.name for p in tmp_path.iterdir() if p.name.startswith(".")}
    killed = [_stopped_export("encode", str(mp4), str(gif), str(frames)), _stopped_export("finish", str(mp4))]
    for proc in killed:
        proc.kill()
        proc.wait()
    try:
        hidden = {p.name for p in tmp_path.iterdir() if p.name.startswith(".")}
        assert len(runnings) == 3 and len(hidden) == 3 + 3 + 2  # the killed finish: its MP4 and out.mp4's old name
        export_frames([np.full((16, 16, 3), 9, np.uint8)], {"mp4": mp4, "gif": gif, "frames": frames}, 4.0,
                      label="test")
        assert {p.name for p in tmp_path.iterdir() if p.name.startswith(".")} == runnings
    finally:
        running.kill()
        running.wait()
    shutil.rmtree(frames)
    export_frames([np.full((16, 16, 3), 9, np.uint8)], {"mp4": mp4, "gif": gif, "frames": frames}, 4.0, label="test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "out.gif", "out.mp4"]


def test_an_exports_set_aside_file_names_this_machine(tmp_path):
    """The replaced file's second name is swept by a later export only where its PID can be judged: this machine's."""
    import os

    from bridge.export import _keep_old
    from bridge.files import _host

    (tmp_path / "out.mp4").write_bytes(b"earlier")
    old = _keep_old(tmp_path / "out.mp4")
    assert old.parent.name.startswith(f".out.mp4.old-{os.getpid()}-{_host()}-") and old.read_bytes() == b"earlier"
