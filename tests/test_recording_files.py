"""Recordings: records survive torn tails and SIGKILL, replays reproduce, exports write real media, CLI works."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import imageio.v2 as imageio
import msgpack
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bridge import DEFAULT_WORLD
from bridge.client import WorldClient
from bridge.host.cli import record
from bridge.host.recording import FORMAT_VERSION, MAGIC, SYNC_EVERY_S, Recorder, RecordingReader, export_recording
from bridge.host.replay import replay_recording
from bridge.host.server import run_host_in_thread
from bridge.worlds.sandbox import SandboxWorld
from test_model_data import save_random_world

torch.set_num_threads(1)


def frame_record(i: int) -> dict:
    img = np.full((4, 4, 3), i % 256, np.uint8)
    hdr = msgpack.packb({"type": "frame", "session_id": "s", "index": i, "epoch": 0, "action": 1, "client_ts": None,
                         "seq": None, "host_ts": float(i), "timings": {}, "events": [], "codec": "raw", "width": 4,
                         "height": 4}, use_bin_type=True)
    return {"kind": "frame", "t": float(i), "wire": [hdr, img.tobytes()], "source": "step"}


def is_file(fd: int) -> bool:
    """Whether `fd` is a file's, not the folder a recording's name is synced in (tests/test_recording_crash.py)."""
    return stat.S_ISREG(os.fstat(fd).st_mode)


HEADER = {"session": {"session_id": "s", "backend_kind": "sandbox", "width": 4, "height": 4, "fps": 24.0,
                      "frame_index": 0}, "prompt": {"seed": 1}}


def _frames_recording(path, n: int, header: dict = HEADER):
    """A closed recording of `n` frame records."""
    rec = Recorder(path, header)
    for i in range(n):
        rec.write(frame_record(i))
    rec.close()
    return path


def test_torn_tail_keeps_every_whole_record(tmp_path):
    path = tmp_path / "a.wbrec"
    _frames_recording(path, 10)
    data = path.read_bytes()
    full = RecordingReader(path)
    assert full.complete and not full.torn and len(list(full.frames())) == 10
    ends = []  # byte offset where each record ends
    pos = len(MAGIC)
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        pos += 8 + n
        ends.append(pos)
    p = tmp_path / "in_header.wbrec"
    p.write_bytes(data[: ends[0] - 1])
    with pytest.raises(ValueError, match="no readable header"):
        RecordingReader(p)
    for cut in range(ends[0], len(data), 37):
        p = tmp_path / f"cut{cut}.wbrec"
        p.write_bytes(data[:cut])
        r = RecordingReader(p)
        whole = sum(e <= cut for e in ends)
        assert len(r.records) == whole and r.records == full.records[:whole]
        assert r.torn == (cut not in ends)
    flipped = bytearray(data)
    flipped[ends[5] - 3] ^= 0xFF  # corrupt record 6: CRC catches it, and reading resumes at record 7
    p = tmp_path / "flip.wbrec"
    p.write_bytes(bytes(flipped))
    r = RecordingReader(p)
    assert r.records == full.records[:5] + full.records[6:] and r.torn and r.complete
    assert r.skipped == [(ends[4], ends[5])] and r.info()["dropped_bytes"] == ends[5] - ends[4]
    assert r.info()["file_bytes"] == len(data) and "bytes were unreadable and dropped" in r.damage()
    p.write_bytes(data[:ends[5]] + b"x" + data[ends[5]:])  # one stray byte: "1 bytes were" was written
    assert "1 byte was unreadable and dropped" in RecordingReader(p).damage()
    flipped[ends[8] + 2] ^= 0xFF  # a length gone huge, and a torn tail: three holes, every whole record kept
    p.write_bytes(bytes(flipped[:-5]))
    r = RecordingReader(p)
    assert r.records == full.records[:5] + full.records[6:9] + full.records[10:-1] and not r.complete
    assert r.skipped == [(ends[4], ends[5]), (ends[8], ends[9]), (ends[-2], len(data) - 5)]
    assert "the file has no end record" in r.damage()


def test_reader_rejects_other_files(tmp_path):
    p = tmp_path / "x.wbrec"
    p.write_bytes(b"GIF89a....")
    with pytest.raises(ValueError, match="not a WorldBridge recording"):
        RecordingReader(p)
    with pytest.raises(ValueError, match="must end in .wbrec"):
        Recorder(tmp_path / "x.mp4", HEADER)
    Recorder(tmp_path / "y.wbrec", HEADER).close()
    with pytest.raises(FileExistsError):
        Recorder(tmp_path / "y.wbrec", HEADER)


WRITER = """
import sys, msgpack
from bridge.host.recording import Recorder
rec = Recorder(sys.argv[1], {"session": {}, "prompt": {}})
i = 0
while True:
    hdr = msgpack.packb({"type": "frame", "index": i, "epoch": 0, "action": 0, "events": [], "codec": "raw",
                         "width": 400, "height": 160}, use_bin_type=True)
    rec.write({"kind": "frame", "t": float(i), "wire": [hdr, bytes([i % 256]) * 192000]})  # kill lands mid-write
    i += 1
    if i == 5:
        print("going", flush=True)
"""


def test_sigkilled_writer_leaves_a_readable_recording(tmp_path):
    path = tmp_path / "killed.wbrec"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "going"
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)
    r = RecordingReader(path)
    assert not r.complete
    frames = [rr for rr in r.records if rr["kind"] == "frame"]
    assert len(frames) >= 5
    assert [msgpack.unpackb(f["wire"][0])["index"] for f in frames] == list(range(len(frames)))
    assert r.valid_bytes <= path.stat().st_size


@pytest.fixture(scope="module")
def session_recording(tmp_path_factory):
    """A real sandbox session: steps, an event, a branch, a settings change, a reset, a realtime stretch."""
    out = tmp_path_factory.mktemp("rec")
    h = run_host_in_thread("sandbox", record_anywhere=True)  # the tests pick their paths
    try:
        with WorldClient(h.address, codecs=["png"]) as c:
            c.start(mode="step", seed=11, text="a snowy level")
            for i in range(12):
                c.step(2)  # history before record_start: the replay must re-create it
            path = c.record_start(str(out / "s.wbrec"))["path"]
            for i in range(20):
                c.step(i % 7)
            c.event(event_type="spawn_enemy")
            c.event(text="night falls")
            for i in range(6):
                c.step(5)
            c.branch(8)
            for i in range(6):
                c.step(3)
            c.reset(seed=12)
            for i in range(5):
                c.step(1)
            c.settings(mode="realtime", fps=100)
            c.act("right")
            time.sleep(0.15)
            stop = c.record_stop()
    finally:
        h.stop()
    return out, path, stop


def test_reader_sees_what_crossed_the_wire(session_recording):
    out, path, stop = session_recording
    r = RecordingReader(path)
    frames = list(r.frames())
    assert r.complete and len(frames) == stop["frames"]
    assert r.header["session"]["backend_kind"] == "sandbox" and r.header["prompt"]["seed"] == 11
    assert len(r.header["history"]) == 12
    assert frames[0].index == 13 and frames[0].image.shape == (64, 64, 3)
    assert any(f.events for f in frames)
    assert {f.epoch for f in frames} == {0, 1, 2}
    branch = next(f for f in frames if f.source == "branch")
    assert (branch.index, branch.epoch) == (8, 1)
    inputs = list(r.inputs())
    assert len(inputs) == 20 + 6 + 6 + 5 + 1 and inputs[-1]["action"] == "right" and inputs[-1]["action_id"] == 2
    assert [e["caption"] for e in r.events()] == ["an enemy appears", "night falls"]
    info = r.info()
    assert info["frames"] == len(frames) and info["epochs"] == 3 and info["complete"]
    switch = next(i for i, f in enumerate(frames) if f.mode == "realtime")  # `settings(mode="realtime")`
    assert r.header["session"]["mode"] == "step" and {f.mode for f in frames[:switch]} == {"step"}
    assert (frames[switch - 1].epoch, frames[switch - 1].index) == (2, 5) and len(frames) - switch >= 3
    assert {f.mode for f in frames[switch:]} == {"realtime"}


def test_replay_reproduces_exactly(session_recording):
    out, path, stop = session_recording
    report = replay_recording(path, lambda: SandboxWorld(64, 0), progress=False)
    assert report["reproduced"] and report["frames_exact"] == report["frames_compared"] > 40
    assert report["branches"] == 1


def test_replay_reports_psnr_on_mismatch(session_recording, tmp_path):
    out, path, stop = session_recording
    r = RecordingReader(path)

    class Tweaked(SandboxWorld):  # a backend that differs slightly: replay must notice
        def step(self, action, event=None):
            img = super().step(action, event).copy()
            img[0, 0] ^= 1
            return img

    report = replay_recording(path, lambda: Tweaked(64, 0), progress=False)
    assert not report["reproduced"] and report["psnr_min"] > 30 and report["first_mismatch"]["index"] == 13
    assert r.records  # the file is untouched


def test_export_writes_video_gif_frames_actions(session_recording, tmp_path):
    out, path, stop = session_recording
    files = export_recording(path, mp4=tmp_path / "a.mp4", gif=tmp_path / "a.gif", frames_dir=tmp_path / "f",
                             actions=tmp_path / "a.ndjson", progress=False)
    n = stop["frames"]
    assert set(files) == {"mp4", "gif", "frames", "actions"}
    assert len(list((tmp_path / "f").glob("*.png"))) == n
    reader = imageio.get_reader(tmp_path / "a.mp4")
    first = reader.get_data(0)
    assert first.shape == (64, 64, 3) and reader.count_frames() == n
    assert 0.5 * n < len(imageio.mimread(tmp_path / "a.gif")) <= n  # pillow merges identical neighbours
    lines = [json.loads(x) for x in (tmp_path / "a.ndjson").read_text().splitlines()]
    assert len(lines) == n and lines[0]["index"] == 13 and "action" in lines[0]
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes left no temp files


def test_record_cli(session_recording, tmp_path):
    out, path, stop = session_recording
    runner = CliRunner()
    res = runner.invoke(record, ["info", path])
    assert res.exit_code == 0 and json.loads(res.output)["frames"] == stop["frames"]
    assert json.loads(res.output)["backend"].startswith("SANDBOX GAME (test backend, not the world model)")
    res = runner.invoke(record, ["replay", path])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output[res.output.index("{"):])["reproduced"] is True
    res = runner.invoke(record, ["export", path, "--gif", str(tmp_path / "x.gif")])
    assert res.exit_code == 0 and (tmp_path / "x.gif").stat().st_size > 1000
    res = runner.invoke(record, ["export", path])
    assert res.exit_code != 0 and "nothing to export" in res.output
    res = runner.invoke(record, ["replay", path, "--checkpoint", str(tmp_path / "no_world")])  # refused before loading
    assert res.exit_code == 1 and "was recorded on the SANDBOX GAME" in res.output
    assert res.exception.__class__ is SystemExit
    torn = tmp_path / "torn.wbrec"
    torn.write_bytes(Path(path).read_bytes()[:6])  # killed before its header was whole
    res = runner.invoke(record, ["info", str(torn)])
    assert res.exit_code != 0 and "ends inside its 8-byte header" in res.output


ROOT = Path(__file__).resolve().parents[1]


def small_recording(path: Path, n: int = 6, size: int = 4, end: bool = True, mode: str | None = None) -> Path:
    """A recording of `n` flat-colour frames of size x size (raw codec)."""
    rec = Recorder(path, {**HEADER, "session": {**HEADER["session"], "width": size, "height": size, "mode": mode}})
    for i in range(n):
        hdr = msgpack.packb({"type": "frame", "index": i, "epoch": 0, "action": 1, "events": [], "codec": "raw",
                             "width": size, "height": size}, use_bin_type=True)
        rec.write({"kind": "frame", "t": float(i), "wire": [hdr, bytes([i * 40 % 256]) * (size * size * 3)],
                   "source": "step"})
    rec.close(write_end=end)
    return path


def test_export_never_replaces_the_recording_or_another_one(tmp_path):
    path = small_recording(tmp_path / "victim.wbrec")
    other = small_recording(tmp_path / "other.wbrec")
    before, runner = path.read_bytes(), CliRunner()
    os.link(path, tmp_path / "hard.nd")
    for flag, target in [("--actions", path), ("--actions", tmp_path / "sub" / ".." / "victim.wbrec"),
                         ("--gif", tmp_path / "hard.nd"), ("--actions", other)]:
        res = runner.invoke(record, ["export", str(path), flag, str(target)])
        assert res.exit_code == 1 and type(res.exception) is SystemExit, res.output
        assert "choose another" in res.output and "nothing was written" in res.output
    assert path.read_bytes() == before and other.read_bytes() == before


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc, a folder nobody can write to")
def test_export_checks_every_output_before_encoding_any(tmp_path):
    path, runner = small_recording(tmp_path / "r.wbrec"), CliRunner()
    (tmp_path / "some.mp4").write_bytes(b"x")
    (tmp_path / "stale").mkdir()
    (tmp_path / "stale" / "000099_e0_i99.png").write_bytes(b"old")
    for args in (["--mp4", "/proc/out.mp4"], ["--gif", "/proc/x.gif"], ["--actions", "/proc/a.nd"],
                 ["--frames", "/proc/fr"], ["--actions", str(tmp_path / "some.mp4" / "a.nd")],
                 ["--mp4", str(tmp_path / "ok.mp4"), "--actions", "/proc/a.nd"],
                 ["--frames", str(tmp_path / "stale")], ["--actions", str(tmp_path / "stale")],
                 ["--mp4", str(tmp_path / "same"), "--gif", str(tmp_path / "same")]):
        res = runner.invoke(record, ["export", str(path), *args])
        assert res.exit_code in (1, 2) and type(res.exception) is SystemExit and "Error" in res.output, (args, res.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.wbrec", "some.mp4", "stale"]  # nothing half-written
    assert os.listdir(tmp_path / "stale") == ["000099_e0_i99.png"]
    (tmp_path / "empty").mkdir()
    res = runner.invoke(record, ["export", str(path), "--mp4", str(tmp_path / "video"), "--frames", str(tmp_path / "empty")])
    assert res.exit_code == 0, res.output  # no extension: still an MP4 (the encoder is told, not guessed)
    assert (tmp_path / "video").read_bytes()[4:8] == b"ftyp" and len(os.listdir(tmp_path / "empty")) == 6


def test_export_refuses_a_folder_with_other_files(tmp_path):
    path = small_recording(tmp_path / "r.wbrec")
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "old.png").write_bytes(b"old")
    res = CliRunner().invoke(record, ["export", str(path), "--frames", str(tmp_path / "f")])
    assert res.exit_code == 1 and "not empty: choose a new folder name or remove it" in res.output
    assert os.listdir(tmp_path / "f") == ["old.png"]


def test_ctrl_c_during_export_leaves_nothing(tmp_path):
    rec = Recorder(tmp_path / "big.wbrec", {**HEADER, "session": {**HEADER["session"], "width": 64, "height": 64}})
    rng = np.random.default_rng(0)
    for i in range(600):
        hdr = msgpack.packb({"type": "frame", "index": i, "epoch": 0, "action": 0, "events": [], "codec": "raw",
                             "width": 64, "height": 64}, use_bin_type=True)
        rec.write({"kind": "frame", "t": float(i), "wire": [hdr, rng.integers(0, 255, 64 * 64 * 3, np.uint8).tobytes()]})
    rec.close()
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "record", "export", str(tmp_path / "big.wbrec"),
                             "--mp4", str(out / "b.mp4"), "--gif", str(out / "b.gif"), "--frames", str(out / "fr"),
                             "--actions", str(out / "a.nd")], cwd=ROOT, stderr=subprocess.PIPE)
    seen = b""
    while b"export:" not in seen:  # the progress bar is up: every temp output exists
        chunk = proc.stderr.read1(256)
        assert chunk, seen
        seen += chunk
    proc.send_signal(signal.SIGINT)
    err = (seen + proc.stderr.read()).decode()
    assert proc.wait(60) == 130 and "export interrupted: nothing was written" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [tmp_path / "big.wbrec"]  # not even the folder `out` the export made


def test_torn_recordings_say_so(tmp_path):
    path = small_recording(tmp_path / "t.wbrec", end=False)
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # the last frame is torn
    runner = CliRunner()
    res = runner.invoke(record, ["export", str(path), "--actions", str(tmp_path / "a.nd")])
    assert res.exit_code == 0 and "bytes were unreadable and dropped" in res.stderr
    assert "the file has no end record" in res.stderr and len((tmp_path / "a.nd").read_text().splitlines()) == 5
    res = runner.invoke(record, ["info", str(path)])
    info = json.loads(res.stdout)
    assert info["file_bytes"] == len(data) - 7 and info["dropped_bytes"] > 0 and "unreadable" in res.stderr
    empty = tmp_path / "empty.wbrec"
    Recorder(empty, HEADER).close()
    res = runner.invoke(record, ["replay", str(empty)])
    assert res.exit_code == 1 and "holds no frames to replay" in res.output


@pytest.mark.parametrize("session, args, says", [
    ({}, ["--checkpoint", str(ROOT / "bridge/assets/default_world")],
     "was recorded on the SANDBOX GAME (test backend, not the world model): sandbox game; --checkpoint replays on a "
     "world model, whose frames can never match it: replay with --backend sandbox (or no option)"),
    ({"backend_kind": "world_model", "backend_name": "world model tiny"}, ["--backend", "sandbox"],
     "was recorded on the WORLD MODEL: tiny; --backend sandbox replays on the sandbox game, whose frames can never "
     "match it: replay with --checkpoint PATH, the world that made it (runs/w1)"),
])
def test_replay_on_another_kind_of_backend_is_refused_before_it_loads(tmp_path, monkeypatch, session, args, says):
    path = _frames_recording(tmp_path / "r.wbrec", 2, {**HEADER, "session": {**HEADER["session"], "backend_name":
                                                                           "sandbox game", **session},
                                                      "checkpoint": "runs/w1" if session else None})
    monkeypatch.setattr("bridge.host.backends.BackendSpec.create", lambda _: pytest.fail("the backend loaded"))
    # was: the default world loaded and replayed at ~2 s a frame towards a certain `reproduced: false`
    res = CliRunner().invoke(record, ["replay", str(path), *args])
    assert res.exit_code == 1 and f"Error: {path} {says}\n" in res.output, res.output


def test_replay_rejects_checkpoint_with_sandbox(tmp_path):
    path = small_recording(tmp_path / "r.wbrec")
    res = CliRunner().invoke(record, ["replay", str(path), "--backend", "sandbox", "--checkpoint", str(tmp_path)])
    assert res.exit_code == 2 and "not both" in res.output


def test_reader_streams_and_actions_skip_pixels(tmp_path, monkeypatch):
    import tracemalloc

    import bridge.host.recording as recording

    path = small_recording(tmp_path / "big.wbrec", n=60, size=256)  # 60 x 196 KB
    assert path.stat().st_size > 10_000_000
    monkeypatch.setattr(recording, "decode_pixels", lambda *a: pytest.fail("an action log needs no pixels"))
    tracemalloc.start()
    try:
        export_recording(path, actions=tmp_path / "a.nd", progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3_000_000 and len((tmp_path / "a.nd").read_text().splitlines()) == 60


def test_mp4_plays_everywhere_even_from_odd_sizes(tmp_path):
    import editor_gui.export as editor_export

    path = small_recording(tmp_path / "odd.wbrec", n=4, size=5)
    export_recording(path, mp4=tmp_path / "cli.mp4", progress=False)
    frames = [np.full((64, 64, 3), i * 40, np.uint8) for i in range(4)]
    editor_export.export_mp4(frames, tmp_path / "editor.mp4", 24.0, editor_export.auto_scale(64, 64))
    for name, size in (("cli.mp4", (6, 6)), ("editor.mp4", (384, 384))):
        meta = imageio.get_reader(tmp_path / name).get_meta_data()
        assert meta["pix_fmt"].startswith("yuv420p") and meta["size"] == size and meta["codec"] == "h264"


def test_a_recording_whose_header_record_is_damaged_still_gives_its_frames(short_session, tmp_path):
    """A flipped byte in the header threw away the whole file; each frame record carries its own codec and size, so
    info and export read every frame, and only replay (which needs the prompt, settings and history) refuses."""
    full = RecordingReader(short_session)
    assert full.header_lost is None and full.info()["header_damaged"] is None  # an intact file reads as before
    n = full.frame_count
    path = tmp_path / "h.wbrec"
    data = bytearray(short_session.read_bytes())
    data[len(MAGIC) + 12] ^= 0xFF  # inside the header record's body: its CRC fails, the frames after it are whole
    path.write_bytes(bytes(data))
    r = RecordingReader(path)  # was: "nothing can be recovered"
    assert r.records == full.records[1:] and r.header == {} and r.frame_count == n and r.complete
    assert "has no readable header record" in r.header_lost and r.skipped[0][0] == len(MAGIC)
    runner = CliRunner()
    res = runner.invoke(record, ["info", str(path)])
    info = json.loads(res.stdout)
    assert res.exit_code == 0 and info["frames"] == n and "has no readable header record" in info["header_damaged"]
    assert "prompt" in info["header_damaged"] and "header record" in res.stderr
    res = runner.invoke(record, ["export", str(path), "--frames", str(tmp_path / "f"), "--actions",
                                 str(tmp_path / "a.nd")])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "f").iterdir())) == n
    export_recording(short_session, actions=tmp_path / "full.nd", progress=False)
    assert (tmp_path / "a.nd").read_text() == (tmp_path / "full.nd").read_text()  # every frame, as recorded
    res = runner.invoke(record, ["replay", str(path), "--backend", "sandbox"])
    line = _one_clear_line(res, path)
    assert "has no readable header record" in line and "cannot be replayed" in line and "record export" in line
    with pytest.raises(ValueError, match="has no readable header record.*cannot be replayed"):
        replay_recording(path, lambda: SandboxWorld(64, 0), progress=False)


def test_bytes_after_the_end_record_make_a_recording_incomplete(tmp_path):
    path = tmp_path / "a.wbrec"
    rec = Recorder(path, HEADER)
    rec.write(frame_record(0))
    rec.close()
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x00" * 10)  # e.g. a second writer that died at once
    r = RecordingReader(path)
    assert r.torn and r.skipped == [(size, size + 10)] and not r.complete
    assert r.frame_count == 1 and "no end record" in r.damage()


def test_export_uses_the_recorded_fps(tmp_path):
    from PIL import Image

    path = tmp_path / "a.wbrec"
    _frames_recording(path, 3, {**HEADER, "session": {**HEADER["session"], "fps": 10.0}})
    export_recording(path, gif=tmp_path / "a.gif", progress=False)
    assert Image.open(tmp_path / "a.gif").info["duration"] == 100  # 10 fps: 100 ms a frame, not 24 fps
    export_recording(path, gif=tmp_path / "b.gif", fps=20.0, progress=False)
    assert Image.open(tmp_path / "b.gif").info["duration"] == 50  # an explicit fps still wins


def test_replay_of_two_branches_to_the_same_frame(tmp_path):
    from bridge.client import WorldClient
    from bridge.host.server import run_host_in_thread
    from test_host_server import CounterWorld

    path = tmp_path / "twice.wbrec"
    h = run_host_in_thread(CounterWorld, record_anywhere=True)
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step", seed=3)
            c.record_start(str(path))
            for _ in range(6):
                c.step(1)
            c.branch(4)
            c.step(2)
            c.branch(4)  # the same frame again, from the new timeline
            c.step(0)
            c.record_stop()
    finally:
        h.stop()
    report = replay_recording(path, CounterWorld, progress=False)
    assert report["reproduced"] and report["branches"] == 2


def test_a_recording_of_a_newer_format_is_refused_by_name(tmp_path):
    path = tmp_path / "new.wbrec"
    rec = Recorder(path, HEADER)
    rec.write(frame_record(0))
    rec.close()
    data = bytearray(path.read_bytes())
    data[6] = 2  # format version byte of the magic
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="is recording format 2; this version reads format 1"):
        RecordingReader(path)


def _one_clear_line(res, path) -> str:
    """The CLI refused with exit 1 and one line naming the file: no traceback, no usage text."""
    assert res.exit_code == 1 and type(res.exception) is SystemExit, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(path) in lines[0], res.output
    return lines[0]


def _newer_format(path):
    data = bytearray(small_recording(path).read_bytes())
    data[6] = FORMAT_VERSION + 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("make, says", [
    (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    (lambda p: p.write_bytes(MAGIC[:3]), "ends inside its 8-byte header (3 bytes)"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100)), "not a WorldBridge recording (it is a PNG image)"),
    (lambda p: p.write_bytes(b"PK\x03\x04" + bytes(100)), "worldbridge play --session"),
    (lambda p: p.write_bytes(b"just some text"), "not a WorldBridge recording: open a .wbrec file"),
    (_newer_format, "update WorldBridge"),
    (lambda p: p.write_bytes(small_recording(p).read_bytes()[:20]), "nothing can be recovered"),
])
def test_unreadable_files_get_one_line_naming_file_problem_and_fix(tmp_path, make, says):
    path = tmp_path / "x.wbrec"
    make(path)
    before = path.read_bytes()
    for args in (["info"], ["replay"], ["export", "--actions", str(tmp_path / "a.nd")]):
        res = CliRunner().invoke(record, [args[0], str(path), *args[1:]])
        assert says in _one_clear_line(res, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["x.wbrec"]
    with pytest.raises(ValueError, match="is a folder, not a recording"):
        RecordingReader(tmp_path)


@pytest.fixture(scope="module")
def short_session(tmp_path_factory):
    """A short real sandbox session with an event, a branch and a reset: the records a crash can cut."""
    path = tmp_path_factory.mktemp("short") / "s.wbrec"
    h = run_host_in_thread("sandbox", record_anywhere=True)
    try:
        with WorldClient(h.address, codecs=["png"]) as c:
            c.start(mode="step", seed=11, text="a snowy level")
            c.step(2)
            c.record_start(str(path))
            for i in range(5):
                c.step(i)
            c.event(event_type="spawn_enemy")
            c.step(5)
            c.branch(3)
            c.step(3)
            c.reset(seed=12)
            c.step(1)
            c.record_stop()
    finally:
        h.stop()
    return path


def test_a_recording_cut_at_any_byte_keeps_every_frame_before_the_cut(short_session, tmp_path):
    data = short_session.read_bytes()
    full = RecordingReader(short_session)
    frames = [(f.epoch, f.index, f.image.tobytes()) for f in full.frames()]
    ends, kinds, pos = [], [], len(MAGIC)  # where each record ends, and its kind
    for r in full.records:
        pos += 8 + len(msgpack.packb(r, use_bin_type=True))
        ends.append(pos)
        kinds.append(r["kind"])
    assert ends[-1] == len(data) and kinds.count("frame") == len(frames) == 10
    rng = np.random.default_rng(0)
    cuts = sorted({*range(0, ends[0] + 2, 13), *(e + d for e in ends for d in (-1, 0, 1)), *rng.integers(0, len(data), 40)})
    cut_path = tmp_path / "cut.wbrec"
    for cut in (c for c in cuts if c <= len(data)):
        cut_path.write_bytes(data[:cut])
        whole = sum(1 for e, k in zip(ends, kinds) if e <= cut and k == "frame")
        if cut < ends[0]:  # inside the header: refused in one line, never a traceback
            assert "record the session again" in _one_clear_line(CliRunner().invoke(record, ["info", str(cut_path)]),
                                                                 cut_path)
            continue
        r = RecordingReader(cut_path)
        assert [(f.epoch, f.index, f.image.tobytes()) for f in r.frames()] == frames[:whole], cut
        assert r.complete == (cut == len(data)) and (r.damage() is None) == (cut == len(data))
        export_recording(cut_path, actions=tmp_path / f"a{cut}.nd", progress=False)
        assert len((tmp_path / f"a{cut}.nd").read_text().splitlines()) == whole
        if whole:
            report = replay_recording(cut_path, lambda: SandboxWorld(64, 0), progress=False)
            assert report["reproduced"] and report["torn_tail_dropped"] == (cut not in ends), (cut, report)


@pytest.mark.skipif(not (DEFAULT_WORLD / "config.json").is_file(), reason="the embedded default world is not installed")
def test_the_default_world_replays_its_recording_exactly(tmp_path):
    path = tmp_path / "world.wbrec"
    h = run_host_in_thread(str(DEFAULT_WORLD), record_anywhere=True)
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step", seed=5, text="a snowy level")
            c.step(1)  # before recording: rebuilt from the header's history
            c.record_start(str(path))
            for a in (2, 3, 4):
                c.step(a)
            c.event(event_type="weather_rain")
            c.step(1)
            c.branch(2)
            c.step(5)
            assert c.record_stop()["frames"] == 6
    finally:
        h.stop()
    res = CliRunner().invoke(record, ["replay", str(path)])  # the checkpoint named in the header, on this CPU
    report = json.loads(res.stdout)
    assert res.exit_code == 0 and report["backend_kind"] == "world_model" and report["reproduced"], res.output
    assert report["frames_compared"] == report["frames_exact"] == 5 and report["branches"] == 1


def test_a_stopped_recording_is_on_disk(tmp_path, monkeypatch):
    synced = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), fsync(fd)))
    path = small_recording(tmp_path / "r.wbrec", n=2)  # a power loss after record_stop must keep every frame
    assert synced == [tmp_path.stat().st_ino, path.stat().st_ino] and RecordingReader(path).complete  # its name too


def test_a_long_recording_is_synced_once_a_second_not_per_frame(tmp_path, monkeypatch):
    import bridge.host.recording as recording

    now, synced = [0.0], []
    fsync = os.fsync
    monkeypatch.setattr(recording, "clock", lambda: now[0])
    monkeypatch.setattr(os, "fsync", lambda fd: (is_file(fd) and synced.append((now[0], os.fstat(fd).st_size)), fsync(fd)))
    path = tmp_path / "long.wbrec"
    rec = Recorder(path, HEADER)
    for i in range(1, 10 * 24 + 1):  # 10 s at 24 frames/s
        now[0] = i / 24
        rec.write(frame_record(i))
        if i % 24 == 0:  # each sync holds every record written before it: a power loss costs at most 1 s
            assert synced[-1] == (i / 24, os.stat(path).st_size)
    assert [t for t, _ in synced] == [float(s) for s in range(1, 11)]
    rec.close(now[0])
    assert len(synced) == 11 and RecordingReader(path).complete


def test_a_whole_but_malformed_record_is_skipped_counted_and_named(tmp_path):
    path = tmp_path / "faulty.wbrec"
    rec = Recorder(path, HEADER)
    no_epoch = frame_record(1)
    hdr = msgpack.unpackb(no_epoch["wire"][0])
    del hdr["epoch"]
    no_epoch["wire"][0] = msgpack.packb(hdr, use_bin_type=True)
    no_t = frame_record(2)
    del no_t["t"]
    for r in (frame_record(0), no_epoch, no_t, {"kind": "input", "t": 2.5, "wire": [b"\x80"]}, frame_record(3)):
        rec.write(r)  # each passes its CRC: only a faulty writer makes such records
    rec.close(4.0)
    r = RecordingReader(path)  # was KeyError('epoch')
    assert [f.index for f in r.frames()] == [0, 3] and r.frame_count == 2 and list(r.inputs()) == []
    assert [(m["kind"], m["problem"]) for m in r.info()["malformed_records"]] == [
        ("frame", "has a frame header with no valid 'epoch'"), ("frame", "has no time 't'"),
        ("input", "has no 'action_id'")]
    assert r.complete and r.torn and [m["bytes"] for m in r.malformed] == [list(s) for s in r.skipped]
    res = CliRunner().invoke(record, ["info", str(path)])
    assert res.exit_code == 0 and json.loads(res.stdout)["malformed_records"][0]["bytes"] == list(r.skipped[0])
    assert "among them a faulty writer left 3 whole records malformed" in res.stderr
    assert "frame record at byte" in res.stderr
    export_recording(path, actions=tmp_path / "a.nd", progress=False)
    assert len((tmp_path / "a.nd").read_text().splitlines()) == 2
    no_prompt = tmp_path / "no_prompt.wbrec"
    rec = Recorder(no_prompt, HEADER)
    rec.write({**frame_record(0), "source": "reset"})  # readable (an importer needs no prompt), not replayable
    rec.close()
    with pytest.raises(ValueError, match="reset frame 0 of epoch 0 recorded no prompt"):  # not KeyError('prompt')
        replay_recording(no_prompt, lambda: SandboxWorld(64, 0), progress=False)


def _lose_step(session: Path, index: int, path: Path) -> tuple[int, int]:
    """Copy `session` to `path` with a byte flipped inside its first step frame `index`; returns that record's bytes."""
    data = bytearray(session.read_bytes())
    pos = len(MAGIC)
    for r in RecordingReader(session).records:
        size = 8 + len(msgpack.packb(r, use_bin_type=True))
        if r["kind"] == "frame" and msgpack.unpackb(r["wire"][0])["index"] == index:
            break
        pos += size
    data[pos + size - 3] ^= 0xFF
    path.write_bytes(bytes(data))
    return pos, size


def test_replay_says_where_a_lost_record_is_and_resyncs_at_the_reset(short_session, tmp_path):
    path = tmp_path / "gap.wbrec"
    pos, size = _lose_step(short_session, 3, path)  # the second step frame (index 3) is lost
    report = replay_recording(path, lambda: SandboxWorld(64, 0), progress=False)
    gap = report["gaps"][0]
    assert gap["bytes"] == [pos, pos + size] and len(report["gaps"]) == 1
    assert gap["after_frame"] == {"epoch": 0, "index": 2} and gap["next_frame"] == {"epoch": 0, "index": 4}
    assert gap["resynced_at"]["index"] == 0  # the reset puts the replay back in step (was: every frame differs)
    assert report["first_mismatch"]["after_gap"] and not report["reproduced"]
    assert report["frames_exact"] == report["frames_compared"] - report["frames_after_gap"] + report["frames_after_gap_exact"]
    assert f"bytes {pos}-{pos + size}" in report["gap_note"] and "expected to differ" in report["gap_note"]


@pytest.mark.parametrize("session, says, on_sandbox", [
    (None, "names no backend; pass --checkpoint PATH (or --backend sandbox) to replay it", "gives no frame size"),
    ({"backend_kind": "world_model", "backend_name": "w"}, "was made with 'w'; pass --checkpoint PATH to replay it",
     "was recorded on the WORLD MODEL: w; --backend sandbox replays on the sandbox game"),
])
def test_replay_of_a_header_without_its_session_names_what_to_pass(tmp_path, session, says, on_sandbox):
    path = _frames_recording(tmp_path / "h.wbrec", 2, {"prompt": {"seed": 1}, **({"session": session} if session else {})})
    res = CliRunner().invoke(record, ["replay", str(path)])  # was KeyError('session') / KeyError('backend_kind')
    assert res.exit_code == 1 and says in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(record, ["replay", str(path), "--backend", "sandbox"])  # no frame size to build one at
    assert res.exit_code == 1 and on_sandbox in res.output


def test_replay_names_the_recorded_checkpoint_that_is_gone(tmp_path):
    header = {"prompt": {"seed": 1}, "checkpoint": str(tmp_path / "gone" / "world"),
              "session": {"backend_kind": "world_model", "backend_name": "w"}}
    res = CliRunner().invoke(record, ["replay", str(_frames_recording(tmp_path / "h.wbrec", 2, header))])
    assert res.exit_code == 1 and (f"was made with 'w', whose checkpoint {tmp_path / 'gone' / 'world'} is not there; "
                                   "pass --checkpoint PATH to replay it") in res.output


def _wire(msg: dict) -> list[bytes]:
    return [msgpack.packb(msg, use_bin_type=True)]


def _every_kind() -> dict[str, dict]:
    """One well-formed record of every kind, each with every optional field set."""
    step = frame_record(1)
    return {"frame": {**step, "info": {}, "event": {"type": "weather_rain", "text": "it rains"}, "prompt": {"seed": 2}},
            "input": {"kind": "input", "t": 0.5, "wire": _wire({"type": "input", "action": "left"}), "action_id": 1,
                      "info": {}},
            "event": {"kind": "event", "t": 0.6, "wire": _wire({"type": "event", "text": "rain"}), "caption": "c",
                      "info": {}},
            "control": {"kind": "control", "t": 0.7, "wire": _wire({"type": "settings", "mode": "turn"}),
                        "info": {"settings_knobs": {}}}}


NIL_OR_WRONG = [(kind, key, value) for kind, keys in {
    "header": ("session", "prompt", "reset_settings", "history", "checkpoint", "created", "host"),
    "frame": ("t", "wire", "info", "event", "prompt", "source", "edit"),
    "input": ("t", "wire", "info", "action_id"), "event": ("t", "wire", "info", "caption"),
    "control": ("t", "wire", "info"),
}.items() for key in keys for value in (None, "x", 5, [1], {"seed": "x", "settings_knobs": 3})]


def _faulty_recording(path: Path, kind: str, key: str, value) -> Path:
    """A recording of a start frame and one record of every kind, with `key` of the `kind` record set to `value`."""
    header = {**HEADER, "session": {**HEADER["session"], "width": 64, "height": 64}}  # a size the sandbox replays at
    rec = Recorder(path, {**header, key: value} if kind == "header" else header)
    records = _every_kind()
    if kind != "header":
        records[kind][key] = value
    rec.write(frame_record(0) | {"source": "start", "prompt": {"seed": 1}})
    for r in records.values():
        rec.write(r)
    rec.close(2.0)
    return path


@pytest.mark.parametrize("kind, key, value", NIL_OR_WRONG)
def test_nil_or_wrong_typed_fields_never_raise_a_traceback(tmp_path, kind, key, value):
    path = _faulty_recording(tmp_path / "f.wbrec", kind, key, value)
    runner = CliRunner()
    for args in (["info"], ["export", "--actions", str(tmp_path / "a.nd")], ["replay", "--backend", "sandbox"]):
        res = runner.invoke(record, [args[0], str(path), *args[1:]])
        assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.output)
        assert args[0] != "replay" or "frames_compared" in res.stdout or "Error: " in res.output
    r = RecordingReader(path)  # a malformed header loses what it holds, never the frames after it
    for it in (r.frames(), r.inputs(), r.events(), r.controls()):
        list(it)
    flagged = [m["kind"] for m in r.malformed]
    assert flagged in ([], [kind]) and (flagged == ["header"]) == (r.header_lost is not None)
    if value is None:  # nil reads as absent: only a field every record needs is missing then
        assert flagged == ([kind] if key in ("t", "wire", "action_id") else [])


@pytest.mark.parametrize("kind, key", [("header", "session"), ("header", "prompt"), ("header", "reset_settings"),
                                       ("header", "history"), ("header", "checkpoint"), ("frame", "info"),
                                       ("frame", "event"), ("frame", "prompt"), ("frame", "source"),
                                       ("input", "info"), ("event", "caption"), ("control", "info")])
def test_a_nil_field_reads_as_absent(tmp_path, kind, key):
    r = RecordingReader(_faulty_recording(tmp_path / "nil.wbrec", kind, key, None))  # was AttributeError / TypeError
    assert r.malformed == [] and r.info()["frames"] == 2
    assert len(list(r.frames())) == 2 and len(list(r.inputs())) == len(list(r.events())) == len(list(r.controls())) == 1
    res = CliRunner().invoke(record, ["info", str(r.path)])
    assert res.exit_code == 0 and json.loads(res.stdout)["malformed_records"] == []


def test_the_reported_repro_of_a_nil_session(tmp_path):
    path = tmp_path / "x.wbrec"
    Recorder(path, {"session": None, "prompt": {"seed": 1}}).close(1.0)
    res = CliRunner().invoke(record, ["info", str(path)])  # was AttributeError: 'NoneType' object has no attribute 'get'
    assert res.exit_code == 0 and json.loads(res.stdout)["session_id"] is None


def test_a_malformed_header_is_named_not_called_cut(tmp_path):
    path = _frames_recording(tmp_path / "m.wbrec", 2, {**HEADER, "session": "s"})
    res = CliRunner().invoke(record, ["info", str(path)])  # its frames are read; what the header held is said lost
    said = "has a malformed header record (it has a 'session' that is not a map"
    assert res.exit_code == 0 and json.loads(res.stdout)["frames"] == 2 and said in res.stderr
    assert said in json.loads(res.stdout)["header_damaged"] and "cut or damaged" not in res.output
    res = CliRunner().invoke(record, ["replay", str(path), "--backend", "sandbox"])
    assert said in _one_clear_line(res, path)


def test_true_is_refused_where_an_int_belongs(tmp_path):
    """msgpack's true is a Python bool, which isinstance counts as the int 1: no index, id or seed is ever a flag."""
    hdr = msgpack.unpackb(frame_record(1)["wire"][0])
    bool_index = frame_record(1) | {"wire": [msgpack.packb({**hdr, "index": True}), frame_record(1)["wire"][1]]}
    path = tmp_path / "b.wbrec"
    rec = Recorder(path, HEADER)
    for r in (frame_record(0), bool_index, frame_record(2) | {"prompt": {"seed": True}}, frame_record(3) | {"t": True},
              {"kind": "input", "t": 2.5, "wire": [msgpack.packb({"type": "input"})], "action_id": True}):
        rec.write(r)
    rec.close(4.0)
    r = RecordingReader(path)
    assert [f.index for f in r.frames()] == [0] and list(r.inputs()) == []
    assert [m["problem"] for m in r.malformed] == [
        "has a frame header with no valid 'index'", "has a prompt 'seed' that is not a whole number", "has no time 't'",
        "has no 'action_id'"]
    for header in ({**HEADER, "history": [["step", True, None]]}, {**HEADER, "history": [["edit", b"png", 1, False]]},
                   {**HEADER, "prompt": {"seed": False}}):
        r = RecordingReader(_frames_recording(tmp_path / f"h{len(list(tmp_path.iterdir()))}.wbrec", 1, header))
        assert "has a malformed header record" in r.header_lost and r.header == {} and r.frame_count == 1


@pytest.mark.parametrize("lost, resynced_at", [(4, {"epoch": 1, "index": 3}), (2, {"epoch": 2, "index": 0})])
def test_a_branch_resyncs_only_to_a_state_saved_before_the_gap(short_session, tmp_path, lost, resynced_at):
    """The session branches back to frame 3: a step lost after it is undone by the branch; one lost before it made
    frame 3's saved state astray too, so only the reset puts the replay back in step."""
    path = tmp_path / "gap.wbrec"
    _lose_step(short_session, lost, path)
    report = replay_recording(path, lambda: SandboxWorld(64, 0), progress=False)
    assert [g["resynced_at"] for g in report["gaps"]] == [resynced_at] and report["branches"] == 1
    assert report["frames_exact"] == report["frames_compared"] - report["frames_after_gap"] + report["frames_after_gap_exact"]


@pytest.mark.parametrize("header, knobs, frame_seed, says", [
    ({"reset_settings": {"temperature": -1.0}}, None, 1,
     "the header's reset_settings: temperature -1 is outside its range: >= 0 (0 = greedy)"),
    ({"reset_settings": {"steps": "x"}}, None, 1, "the header's reset_settings: steps 'x' is not a whole number (its "
                                                  "range: 1-64)"),
    ({"history": [["step", 1, None], ["settings", {"cfg": -2.0}]]}, None, 1,
     "the header's history entry 1: cfg -2 is outside its range: >= 0 (1 = off)"),
    ({"prompt": {"seed": -5}}, None, 1, "the header's prompt: seed -5 is outside its range: 0-"),
    ({}, {"top_p": 1.5}, 1, "top_p 1.5 is outside its range: in (0, 1] (1 = off)"),
    ({}, {"unmask": "zigzag"}, 1, "unmask 'zigzag' is not one of"),
    ({}, None, 2**63, "the prompt of start frame 0 of epoch 0: seed 9223372036854775808 is outside its range"),
])
def test_replay_refuses_a_recorded_knob_outside_the_hosts_range(tmp_path, header, knobs, frame_seed, says):
    path = _edited(tmp_path / "edited.wbrec", header, knobs, frame_seed)
    # was: the sandbox ignored the knobs, or the backend refused with its own words and range, naming no file
    res = CliRunner().invoke(record, ["replay", str(path), "--backend", "sandbox"])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert f"Error: {path}: " in res.output and says in res.output and "edited or damaged" in res.output


def test_an_idle_step_session_has_its_last_records_synced_within_a_second(tmp_path, monkeypatch):
    synced = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append((time.monotonic(), os.fstat(fd).st_size)), fsync(fd)))
    path = tmp_path / "idle.wbrec"
    h = run_host_in_thread("sandbox", record_anywhere=True)
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step", seed=3)
            c.record_start(str(path))
            for a in (1, 2, 3):
                c.step(a)
            idle_from, size = time.monotonic(), path.stat().st_size  # nothing more is written: the session idles
            while time.monotonic() - idle_from < 3 and not any(n == size for _, n in synced):
                time.sleep(0.05)
            assert path.stat().st_size == size  # no write came after the steps
            # was: no sync until the next record, however long the session idled
            assert synced and synced[-1][1] == size and synced[-1][0] - idle_from <= SYNC_EVERY_S + 2, synced
            count = len(synced)
            time.sleep(1.2)
            assert len(synced) == count  # nothing new to sync: an idle recording is synced once, not every second
            c.record_stop()
    finally:
        h.stop()


def test_flush_due_keeps_at_most_one_sync_a_second(tmp_path, monkeypatch):
    import bridge.host.recording as recording

    now, synced = [0.0], []
    fsync = os.fsync
    monkeypatch.setattr(recording, "clock", lambda: now[0])
    monkeypatch.setattr(os, "fsync", lambda fd: (is_file(fd) and synced.append(now[0]), fsync(fd)))  # not its folder
    rec = Recorder(tmp_path / "r.wbrec", HEADER)
    rec.write(frame_record(1))
    assert rec.sync_due() == 1.0
    for t in (0.3, 0.6, 0.99):  # the host loop's ticks inside the second sync nothing
        now[0] = t
        rec.flush_due()
    assert synced == []
    now[0] = 1.0
    rec.flush_due()
    now[0] = 1.5
    rec.write(frame_record(2))
    rec.flush_due()
    assert synced == [1.0] and rec.sync_due() == 2.0
    now[0] = 2.0
    rec.flush_due()
    rec.flush_due()
    assert synced == [1.0, 2.0] and rec.sync_due() == float("inf")
    rec.close(now[0])


def _edited(path: Path, header: dict, knobs: dict | None = None, frame_seed: int = 1) -> Path:
    """A two-frame 64×64 sandbox recording with `header` keys and a `settings` record of `knobs` set by hand."""
    rec = Recorder(path, {**HEADER, "session": {**HEADER["session"], "width": 64, "height": 64}, **header})
    rec.write(frame_record(0) | {"source": "start", "prompt": {"seed": frame_seed}})
    if knobs:
        rec.write({"kind": "control", "t": 0.5, "wire": _wire({"type": "settings", **knobs}),
                   "info": {"settings_knobs": knobs}})
    rec.write(frame_record(1))
    rec.close(2.0)
    return path


class _KnobbedSandbox(SandboxWorld):
    """The sandbox with a world model's `configure`, which refuses a name it does not take (a TypeError)."""

    def __init__(self):
        super().__init__(64, 0)
        self.configured: list[dict] = []

    def configure(self, steps=None, temperature=None, cfg=None, unmask=None, event_cfg=None, top_p=None) -> dict:
        self.configured.append({k: v for k, v in locals().items() if k != "self" and v is not None})
        return {}


@pytest.mark.parametrize("header, knobs, where, name", [
    ({"reset_settings": {"temperature": 1.0, "foo": 1}}, None, "the header's reset_settings", "foo"),
    ({"history": [["settings", {"steps": 3, "fps": 30.0}]]}, None, "the header's history entry 0", "fps"),
    ({}, {"cfg": 2.0, "foo": 1}, "the settings record at byte ", "foo"),
])
def test_replay_leaves_out_a_setting_name_it_does_not_know_and_says_so(tmp_path, capsys, header, knobs, where, name):
    path = _edited(tmp_path / "newer.wbrec", header, knobs)
    made: list[_KnobbedSandbox] = []
    # was: a world model's configure got the name and the replay stopped with a TypeError; the sandbox said nothing
    report = replay_recording(path, lambda: made.append(_KnobbedSandbox()) or made[0], progress=False)
    assert made[0].configured and all(name not in c for c in made[0].configured)
    warning = f"warning: {path}: {where}"
    assert warning in capsys.readouterr().err and f"{name!r} is no model setting" in report["settings_left_out"][0]
    assert len(report["settings_left_out"]) == 1 and "newer WorldBridge" in report["settings_left_out"][0]
    assert report["frames_compared"] == 2  # every frame replayed


def test_replay_checks_every_recorded_setting_before_the_backend_loads(tmp_path):
    path = _edited(tmp_path / "late.wbrec", {"reset_settings": {"bar": 2}}, {"top_p": 1.5, "bar": 3})
    with pytest.raises(ValueError, match=r"the settings record at byte \d+: top_p 1.5 is outside its range"):
        replay_recording(path, lambda: pytest.fail("the world loaded before the bad value was found"), progress=False)
    path = _edited(tmp_path / "twice.wbrec", {"reset_settings": {"bar": 2}}, {"bar": 3})
    notes = replay_recording(path, lambda: SandboxWorld(64, 0), progress=False)["settings_left_out"]
    assert notes == [f"{path}: the header's reset_settings (and 1 more): 'bar' is no model setting this "
                     "WorldBridge knows (steps, temperature, cfg, event_cfg, top_p, unmask): left out, as the host "
                     "leaves out a name it does not know, so frames made with it may differ (recorded by a newer "
                     "WorldBridge? replay it with that version)"]


@pytest.mark.parametrize("header, knobs, where", [
    ({"reset_settings": {"event_cfg": 2.0}}, None, "the header's reset_settings"),
    ({"history": [["step", 1, None], ["settings", {"event_cfg": 2.0}]]}, None, "the header's history entry 1"),
    ({}, {"event_cfg": 2.0}, "the settings record at byte "),
])
def test_replay_names_the_file_and_place_of_a_setting_the_checkpoint_refuses(tmp_path, header, knobs, where):
    world = {"session": {**HEADER["session"], "width": 64, "height": 64, "backend_kind": "world_model"}}
    path = _edited(tmp_path / "events.wbrec", {**world, **header}, knobs)  # recorded by a world that takes event_cfg
    plain = save_random_world(tmp_path / "plain")  # a world without event conditioning
    # was: the world model's own line ("... has no event conditioning ..."), naming no file or place
    res = CliRunner().invoke(record, ["replay", str(path), "--checkpoint", str(plain)])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert f"\nError: {path}: {where}" in "\n" + res.output, res.output  # on its own line: the replay bar was closed
    assert (f"Error: {path}: {where}" in res.output and "the backend refuses the recorded event_cfg: " in res.output
            and "has no event conditioning" in res.output and "without --checkpoint" in res.output), res.output


def test_replay_names_the_file_and_place_of_a_knob_the_backend_lacks(tmp_path):
    class Stepless(SandboxWorld):
        def configure(self, temperature=None) -> dict:
            return {}

    class Faulty(SandboxWorld):
        def configure(self, temperature=None, steps=None) -> dict:
            raise TypeError("a fault inside configure")

    path = _edited(tmp_path / "steps.wbrec", {"reset_settings": {"temperature": 0.5, "steps": 3}})
    # was: TypeError: configure() got an unexpected keyword argument 'steps', naming no file or place
    with pytest.raises(ValueError, match=rf"^{path}: the header's reset_settings: the backend refuses the recorded "
                                         r"steps: it has no such setting; replay with"):  # only the one it lacks
        replay_recording(path, lambda: Stepless(64, 0), progress=False)
    with pytest.raises(TypeError, match="^a fault inside configure$"):  # a fault, not a refusal: not reworded
        replay_recording(path, lambda: Faulty(64, 0), progress=False)


def test_a_one_frame_recording_counts_one_frame(tmp_path):
    """A one-frame file's warnings said "its 1 frames were read", "still read its 1 frames", "only the 1 readable
    frames are used", "1 of those were whole records", and a file cut inside its magic "(1 bytes)": every count goes
    through plural()."""
    lost = RecordingReader(_frames_recording(tmp_path / "h.wbrec", 1, {**HEADER, "session": "s"}))
    with pytest.raises(ValueError) as refused:
        lost.need_header("replayed")
    torn = _frames_recording(tmp_path / "t.wbrec", 1)
    torn.write_bytes(torn.read_bytes() + bytes(10))
    cut = tmp_path / "c.wbrec"
    cut.write_bytes(MAGIC[:1])
    with pytest.raises(ValueError) as short:
        RecordingReader(cut)
    open_ = RecordingReader(small_recording(tmp_path / "o.wbrec", n=1, end=False))  # no end record, nothing dropped
    said = [lost.damage(), str(refused.value), RecordingReader(torn).damage(), open_.damage(), str(short.value)]
    assert [s for s in said if "1 frames" in s or "1 bytes" in s] == [], said
    assert all("1 frame" in s for s in said[:4]) and "(1 byte)" in said[4], said
    assert "a faulty writer left 1 whole record malformed (the header record" in said[0], said


def test_a_lost_header_is_worded_as_export_words_it_and_its_frames_give_the_size(tmp_path):
    """`record info` said "unknown backend: lost with the header" where export said "backend unknown (the
    recording's header was damaged)", and width/height null though every frame record carries its size."""
    from bridge.export import source_label

    path = _frames_recording(tmp_path / "m.wbrec", 2, {**HEADER, "session": "s"})
    info = json.loads(CliRunner().invoke(record, ["info", str(path)]).stdout)
    assert "WorldBridge — " + info["backend"] == source_label([], header_lost=True)
    assert info["backend"] == "backend unknown (the recording's header was damaged)"
    assert (info["width"], info["height"], info["mode"]) == (4, 4, "unknown")


def test_a_header_that_names_no_backend_says_so_after_its_colon(tmp_path):
    """A header with a session but no backend kind or name was labelled "WorldBridge — unknown backend: "."""
    from bridge.export import source_label

    r = RecordingReader(_frames_recording(tmp_path / "n.wbrec", 1, {**HEADER, "session": {"width": 4, "height": 4}}))
    assert r.info()["backend"] == "backend unknown (not recorded with these frames)"
    assert source_label(r.backends) == source_label([]) == \
        "WorldBridge — backend unknown (not recorded with these frames)"
    assert source_label([*r.backends, ("sandbox", "sandbox game")]) == (
        "WorldBridge — SEVERAL BACKENDS: backend unknown (not recorded with these frames) + "
        "SANDBOX GAME (test backend, not the world model): sandbox game")


def test_replay_refuses_a_recorded_checkpoint_that_is_a_file(tmp_path):
    """A header naming a file for its checkpoint got the loader's error: it is refused as --checkpoint refuses one."""
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x")
    header = {"prompt": {"seed": 1}, "checkpoint": str(weights), "session": {"backend_kind": "world_model",
                                                                              "backend_name": "w"}}
    res = CliRunner().invoke(record, ["replay", str(_frames_recording(tmp_path / "h.wbrec", 2, header))])
    line = _one_clear_line(res, weights)
    assert f"checkpoint {weights} is a file: pass --checkpoint PATH, the checkpoint's folder" in line


def test_the_recording_format_loads_without_the_host_session_module():
    """`record info/export` and data import read recordings with no host running: recording.py took its clock from
    session.py, which pulled sessions, prompts and the protocol in with it."""
    code = "import sys\nimport bridge.host.recording\nprint('bridge.host.session' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout  # this tree's bridge
    assert out.split() == ["False"]
