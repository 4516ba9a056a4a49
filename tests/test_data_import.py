"""Importing footage: real mp4 (imageio-ffmpeg), GIF, image folders, host recordings; clear errors and no half output."""

import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bridge.data.cli import data
from bridge.data.dataset import VideoDataset
from bridge.data.importer import (FootageError, FootageWarning, import_footage, resample_indices, source_frames,
                                  square_resize)

torch.set_num_threads(1)


def colour_frames(n, h=48, w=80):
    """Frames whose centre square is a solid colour that encodes the frame index (survives video compression)."""
    f = np.zeros((n, h, w, 3), np.uint8)
    f[:, :, :] = (30, 30, 30)
    for i in range(n):
        f[i, :, (w - h) // 2 : (w + h) // 2] = (i * 8 % 256, 255 - i * 8 % 256, 128)
    return f


def frame_index(img):
    return int(round(img[..., 0].astype(float).mean() / 8))


def test_resampling_and_square_resize():
    assert resample_indices(np.arange(30) / 30, 10, end=1.0).tolist() == list(range(0, 30, 3))
    assert resample_indices(np.array([0.0, 0.5, 1.0]), 4).tolist() == [0, 0, 1, 1, 2]
    img = np.zeros((40, 100, 3), np.uint8)
    img[:, 30:70] = 200  # the centre square
    out = square_resize(img, 16)
    assert out.shape == (16, 16, 3) and (out == 200).all()


def test_import_mp4_gif_and_image_folder(tmp_path):
    frames = colour_frames(30)
    iio.imwrite(tmp_path / "clip.mp4", frames, fps=30, plugin="FFMPEG", codec="libx264", quality=10)
    iio.imwrite(tmp_path / "anim.gif", frames[:8], duration=200, loop=0)  # 5 fps
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(6):
        iio.imwrite(folder / f"frame_{i:03d}.png", frames[i * 4])
    summary = import_footage([tmp_path / "clip.mp4", tmp_path / "anim.gif", folder], tmp_path / "ds", size=32, fps=10,
                             progress=False)
    ds = VideoDataset(tmp_path / "ds")
    assert summary["episodes"] == 3 and ds.source == "import" and ds.action_names is None and ds.fps == 10
    mp4, gif, imgs = ds.episodes
    assert (ds.height, ds.width) == (32, 32)
    assert mp4.length == 10  # 1 s of 30 fps video at 10 fps
    got = [frame_index(f) for f in ds.frames(mp4)]
    assert all(abs(g - e) <= 1 for g, e in zip(got, range(0, 30, 3))), got
    assert gif.length == 16  # 8 frames x 0.2 s = 1.6 s at 10 fps: every GIF frame shown twice
    assert [frame_index(f) for f in ds.frames(gif)] == [i // 2 for i in range(16)]
    assert [frame_index(f) for f in ds.frames(imgs)] == [0, 4, 8, 12, 16, 20]  # folder order = file name order
    assert ds.actions(mp4) is None
    assert all(e.extra["source_file"] for e in ds.episodes)


def test_corrupt_video_gives_clear_error_and_no_output(tmp_path):
    iio.imwrite(tmp_path / "good.mp4", colour_frames(10), fps=10, plugin="FFMPEG")
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 500)
    out = tmp_path / "out" / "ds"
    with pytest.raises(FootageError, match="broken.mp4"):
        import_footage([tmp_path / "good.mp4", tmp_path / "broken.mp4"], out, progress=False)
    assert not out.exists() and not (tmp_path / "out").exists()


def test_a_truncated_video_is_flagged_not_imported_short_in_silence(tmp_path):
    iio.imwrite(tmp_path / "whole.mp4", colour_frames(60), fps=10, plugin="FFMPEG", codec="libx264",
                output_params=["-movflags", "+faststart"])  # the index first: a cut file still says 6 s
    data_bytes = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data_bytes[: len(data_bytes) * 6 // 10])
    with pytest.warns(FootageWarning, match="cut.mp4: the picture stops after .* of the file's 6.0 s"):
        import_footage([tmp_path / "cut.mp4"], tmp_path / "out", progress=False)  # (its audio might run longer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a whole video: no warning
        import_footage([tmp_path / "whole.mp4"], tmp_path / "ok", fps=10, progress=False)
    assert VideoDataset(tmp_path / "ok").num_frames == 60


def test_a_video_without_a_frame_rate_is_read_as_30_fps_with_one_warning_naming_the_fix(tmp_path, monkeypatch):
    """A video whose metadata gives no rate was read as 30 fps in silence: the dataset's motion could be off by any
    factor, and nothing said so."""
    for name in ("a.mp4", "b.mp4"):
        iio.imwrite(tmp_path / name, colour_frames(30), fps=30, plugin="FFMPEG", codec="libx264")
    real = iio.immeta
    monkeypatch.setattr(iio, "immeta", lambda *a, **k: {**real(*a, **k), "fps": None})  # as a stream states none
    assert source_frames(tmp_path / "a.mp4") == 30  # counted at the rate it is read at: the bar has its total
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import_footage([tmp_path / "a.mp4", tmp_path / "b.mp4"], tmp_path / "ds", size=16, fps=10, progress=False)
    said = [str(w.message) for w in caught if issubclass(w.category, FootageWarning)]
    assert len(said) == 2 and all(m.startswith(f"{tmp_path / n}: ") for m, n in zip(said, ("a.mp4", "b.mp4")))
    assert all("states no frame rate, so it is read as 30 fps" in m and "--fps" in m and "ffmpeg -r RATE" in m
               for m in said), said
    assert [e.length for e in VideoDataset(tmp_path / "ds").episodes] == [10, 10]  # 30 frames as 1 s, at 10 fps


def test_unsupported_and_missing_files_are_named(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FootageError, match=r"notes.txt: unsupported file type \.txt"):
        import_footage([tmp_path / "notes.txt"], tmp_path / "ds", progress=False)
    with pytest.raises(FootageError, match="nope.mp4: no such file"):
        import_footage([tmp_path / "nope.mp4"], tmp_path / "ds", progress=False)
    iio.imwrite(tmp_path / "one.png", colour_frames(1)[0])
    with pytest.raises(FootageError, match="import the folder"):
        import_footage([tmp_path / "one.png"], tmp_path / "ds", progress=False)
    assert not (tmp_path / "ds").exists()
    result = CliRunner().invoke(data, ["import", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "ds")])
    assert result.exit_code != 0 and "notes.txt" in result.output and "nothing was written" in result.output


def test_import_host_recording(tmp_path):
    from bridge.host import protocol
    from bridge.host import recording as rec
    from bridge.host.pixels import encode_pixels

    frames = colour_frames(12, 64, 64)
    r = rec.Recorder(tmp_path / "s.wbrec", {"session": {"backend_name": "sandbox game", "width": 64, "height": 64}})
    for i, img in enumerate(frames):
        epoch = 0 if i < 6 else 1  # a reset starts epoch 1
        header = {"type": "frame", "index": i, "epoch": epoch, "action": 2, "events": [], "codec": "png",
                  "width": 64, "height": 64}
        r.write({"kind": "frame", "t": 1000.0 + i * 100.0, "wire": [protocol.encode(header), encode_pixels(img, "png")],
                 "source": "reset" if i == 6 else "step"})
    r.close()
    import_footage([tmp_path / "s.wbrec"], tmp_path / "ds", size=32, fps=10, progress=False)
    ds = VideoDataset(tmp_path / "ds")
    assert [e.length for e in ds.episodes] == [6, 6]
    assert [frame_index(f) for f in ds.frames(ds.episodes[1])] == list(range(6, 12))
    (tmp_path / "bad.wbrec").write_bytes(b"not a recording")
    with pytest.raises(FootageError, match="bad.wbrec"):
        import_footage([tmp_path / "bad.wbrec"], tmp_path / "ds2", progress=False)


def _fast_recording(path, mode, n=30, torn=False):
    """n frames made 1 ms apart by the host clock (a client stepping as fast as it can)."""
    from bridge.host import protocol
    from bridge.host import recording as rec
    from bridge.host.pixels import encode_pixels

    r = rec.Recorder(path, {"session": {"backend_name": "sandbox game", "width": 64, "height": 64, "mode": mode}})
    for i, img in enumerate(colour_frames(n, 64, 64)):
        header = {"type": "frame", "index": i, "epoch": 0, "action": 2, "events": [], "codec": "png",
                  "width": 64, "height": 64}
        r.write({"kind": "frame", "t": 1000.0 + i, "wire": [protocol.encode(header), encode_pixels(img, "png")],
                 "source": "step"})
    r.close(write_end=not torn)
    if torn:
        path.write_bytes(path.read_bytes()[:-10])
    return path


def test_import_step_recording_keeps_every_world_step(tmp_path):
    path = _fast_recording(tmp_path / "step.wbrec", "step")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        import_footage([path], tmp_path / "ds", size=32, fps=10, progress=False)
    ds = VideoDataset(tmp_path / "ds")
    assert [e.length for e in ds.episodes] == [30]
    assert [frame_index(f) for f in ds.frames(ds.episodes[0])] == list(range(30))


def test_import_follows_a_mode_switch_within_a_recording(tmp_path):
    from bridge.host import protocol
    from bridge.host import recording as rec
    from bridge.host.pixels import encode_pixels

    # 10 realtime frames at 20 fps, `settings` to step mode: 10 steps 1 ms apart, back to realtime: 10 more at 20 fps
    r = rec.Recorder(tmp_path / "m.wbrec", {"session": {"backend_name": "sandbox game", "width": 64, "height": 64,
                                                        "mode": "realtime"}})
    t = 1000.0
    for i, img in enumerate(colour_frames(30, 64, 64)):
        if i in (10, 20):
            wire = protocol.encode({"type": "settings", "req_id": i, "mode": "step" if i == 10 else "realtime"})
            r.write({"kind": "control", "t": t, "wire": [wire], "info": {}})
        t += 1.0 if 10 <= i < 20 else 50.0
        header = {"type": "frame", "index": i, "epoch": 0, "action": 2, "events": [], "codec": "png",
                  "width": 64, "height": 64}
        r.write({"kind": "frame", "t": t, "wire": [protocol.encode(header), encode_pixels(img, "png")],
                 "source": "step"})
    r.close()
    assert [f.mode for f in rec.RecordingReader(tmp_path / "m.wbrec").frames(decode=False)] == (
        ["realtime"] * 10 + ["step"] * 10 + ["realtime"] * 10)
    import_footage([tmp_path / "m.wbrec"], tmp_path / "ds", size=32, fps=10, progress=False)
    ds = VideoDataset(tmp_path / "ds")
    assert [frame_index(f) for f in ds.frames(ds.episodes[0])] == [0, 2, 4, 6, 8, *range(10, 20), 20, 22, 24, 26, 28]


def test_import_warns_about_torn_recordings(tmp_path):
    with pytest.warns(FootageWarning, match="unreadable and dropped"):
        import_footage([_fast_recording(tmp_path / "torn.wbrec", "step", torn=True)], tmp_path / "ds2", fps=10,
                       progress=False)
    assert VideoDataset(tmp_path / "ds2").episodes[0].length == 29


def test_a_few_sources_still_get_a_val_episode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative names: the split hashes them, and at 5 % none of these three is held out
    for name in ("src2", "src3", "src4"):
        (tmp_path / name).mkdir()
        for i in range(3):
            iio.imwrite(tmp_path / name / f"frame_{i}.png", colour_frames(1)[0])
    r = CliRunner().invoke(data, ["import", "src2", "src3", "src4", "--out", "ds", "--size", "16"])
    assert r.exit_code == 0, r.output
    splits = [e.split for e in VideoDataset(tmp_path / "ds").episodes]
    assert splits.count("val") >= 1 and splits.count("train") >= 1, splits
    import json

    from bridge.data.writer import split_for_seed

    m = json.loads((tmp_path / "ds" / "manifest.json").read_text(encoding="utf-8"))
    used = m["imported_from"]["val_fraction"]  # docs/data.md: the fraction the split was made with, not the asked 5 %
    assert used != 0.05 and [split_for_seed(e["seed"], used) for e in m["episodes"]] == splits


def test_the_fitted_split_always_leaves_both_a_val_and_a_train_seed():
    from bridge.data.writer import _seed_hash, fitted_val_fraction, split_for_seed

    rng = np.random.default_rng(0)
    for n in (2, 3, 5):
        for _ in range(2000):
            seeds = [int(s) for s in rng.integers(0, 2**31, n)]
            for fraction in (0.05, 0.2, 0.9):
                splits = [split_for_seed(s, fitted_val_fraction(seeds, fraction)) for s in seeds]
                assert "val" in splits and "train" in splits, (seeds, fraction, splits)
    assert fitted_val_fraction([7, 7], 0.05) == 0.05  # one distinct seed: nothing to split
    assert fitted_val_fraction([1, 2, 3], 0.0) == 0.0  # asked for no validation: none
    lowest = sorted(_seed_hash(s) for s in (11, 12, 13))[:2]
    asked = lowest[0] / 2  # puts no seed in val
    assert fitted_val_fraction([11, 12, 13], asked) == sum(lowest) / 2  # moved halfway to the next seed, not doubled


def test_two_similar_sources_are_not_both_held_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for i in range(2):
        iio.imwrite(tmp_path / f"clip7_{i}.gif", np.stack(colour_frames(12, 16, 16)), duration=100, loop=0)
    r = CliRunner().invoke(data, ["import", "clip7_0.gif", "clip7_1.gif", "--out", "ds", "--size", "16"])
    assert r.exit_code == 0, r.output
    assert sorted(e.split for e in VideoDataset(tmp_path / "ds").episodes) == ["train", "val"]


def test_the_help_and_the_docs_name_every_format_the_importer_reads():
    from click.testing import CliRunner

    from bridge.cli import main
    from bridge.data.importer import GIF_EXTS, IMAGE_EXTS, VIDEO_EXTS

    help_text = " ".join(CliRunner().invoke(main, ["data", "import", "--help"]).output.split())
    docs = (Path(__file__).resolve().parent.parent / "docs" / "data.md").read_text(encoding="utf-8")
    for ext in sorted(VIDEO_EXTS | GIF_EXTS):
        assert ext[1:] in help_text.lower() and ext[1:] in docs.lower(), ext
    for ext in {".png", ".jpg", ".bmp", ".webp", ".tif"} & IMAGE_EXTS:
        assert ext[1:] in docs, ext


def test_a_recording_whose_header_was_lost_keeps_every_frame_and_says_why(tmp_path):
    """With the header went the session's mode; its frames were read as realtime and resampled by the host clock, so
    a step-mode session 1 ms a step kept 1 of its 30 frames. Nothing is dropped now, and the warning says so."""
    from bridge.host.recording import MAGIC, RecordingReader

    path = _fast_recording(tmp_path / "step.wbrec", "step")
    data = bytearray(path.read_bytes())
    data[len(MAGIC) + 12] ^= 0xFF  # inside the header record's body: its CRC fails, the frames after it are whole
    path.write_bytes(bytes(data))
    assert {f.mode for f in RecordingReader(path).frames(decode=False)} == {"unknown"}
    with pytest.warns(FootageWarning, match=r"header record.*mode.*every frame is kept"):
        import_footage([path], tmp_path / "ds", size=32, fps=10, progress=False)
    ds = VideoDataset(tmp_path / "ds")
    assert [frame_index(f) for f in ds.frames(ds.episodes[0])] == list(range(30))
    assert "recorded_backend" in ds.episodes[0].extra and ds.episodes[0].extra["recorded_backend"] is None


def test_a_lost_headers_import_warning_leaves_out_what_export_and_replay_do(tmp_path):
    """The warning said "(export uses 24 fps unless given --fps; replay is refused)" in `data import`, whose --fps is
    the rate it resamples to: an import says what the import does with the frames, and only that."""
    from bridge.host.recording import MAGIC, RecordingReader

    path = _fast_recording(tmp_path / "step.wbrec", "step", n=3)
    data = bytearray(path.read_bytes())
    data[len(MAGIC) + 12] ^= 0xFF  # the header record's CRC fails
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import_footage([path], tmp_path / "ds", size=32, fps=10, progress=False)
    said = " ".join(str(w.message) for w in caught if issubclass(w.category, FootageWarning))
    assert "every frame is kept" in said and "export" not in said and "replay" not in said, said
    assert "export uses 24 fps unless given --fps; replay is refused" in RecordingReader(path).damage()


@pytest.mark.parametrize("content, says", [
    (b"", r"empty.mp4: the file is empty \(0 bytes.*export or copy it again"),
    (b"this is a text file, not a video\n" * 20, r"empty.mp4: ffmpeg reads no video in it.*export or copy it again"),
])
def test_an_unreadable_video_is_named_with_what_is_wrong_and_the_fix(tmp_path, content, says):
    """An empty .mp4 and a text file named .mp4 said only `cannot read this video (OSError: Could not load meta
    information)`: nothing a game developer can act on."""
    (tmp_path / "empty.mp4").write_bytes(content)
    with pytest.raises(FootageError, match=says):
        import_footage([tmp_path / "empty.mp4"], tmp_path / "ds", progress=False)
    assert not (tmp_path / "ds").exists()


def test_an_import_warning_is_one_plain_line_not_python_source(tmp_path):
    """A truncated video's warning came out as `.../importer.py:218: FootageWarning: ...` and then the source line
    `for meta, frames in footage_episodes(p, size, fps):`, inside the progress bar."""
    iio.imwrite(tmp_path / "whole.mp4", colour_frames(60), fps=10, plugin="FFMPEG", codec="libx264",
                output_params=["-movflags", "+faststart"])
    data_bytes = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data_bytes[: len(data_bytes) * 6 // 10])
    r = CliRunner().invoke(data, ["import", str(tmp_path / "cut.mp4"), "--out", str(tmp_path / "ds"), "--size", "16"])
    assert r.exit_code == 0, r.output
    assert "warning: " + str(tmp_path / "cut.mp4") + ": the picture stops after" in r.output
    assert "FootageWarning" not in r.output and "footage_episodes(" not in r.output and "importer.py" not in r.output


def test_the_import_bar_counts_frames_so_one_long_video_shows_its_rate_and_time_left(tmp_path, capsys):
    """The bar counted files: one hour-long recording sat at `0/1 [00:00<?, ?file/s]` until it was done."""
    iio.imwrite(tmp_path / "clip.mp4", colour_frames(30), fps=30, plugin="FFMPEG", codec="libx264")
    iio.imwrite(tmp_path / "anim.gif", colour_frames(8), duration=200, loop=0)
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(6):
        iio.imwrite(folder / f"frame_{i:03d}.png", colour_frames(1)[0])
    import_footage([tmp_path / "clip.mp4", tmp_path / "anim.gif", folder], tmp_path / "ds", size=16, progress=True)
    bar = capsys.readouterr().err
    assert "44/44" in bar and "frame/s" in bar and "file" not in bar, bar  # 30 + 8 + 6 source frames


def test_the_import_bar_reads_each_files_header_once_with_the_import(tmp_path, monkeypatch, capsys):
    """Sizing the bar probed every video with ffmpeg and indexed every recording, then the import did both again: a
    folder of many videos paid two probes each."""
    from bridge.host import recording as rec

    iio.imwrite(tmp_path / "clip.mp4", colour_frames(30), fps=30, plugin="FFMPEG", codec="libx264")
    _fast_recording(tmp_path / "step.wbrec", "step", n=5)
    probed, real_meta, real_init = [], iio.immeta, rec.RecordingReader.__init__
    monkeypatch.setattr(iio, "immeta",
                        lambda path, *a, **k: (probed.append(Path(path).name), real_meta(path, *a, **k))[1])
    monkeypatch.setattr(rec.RecordingReader, "__init__",
                        lambda self, path: (probed.append(Path(path).name), real_init(self, path))[1])
    import_footage([tmp_path], tmp_path / "ds", size=16, fps=10, progress=True)
    assert "0/35" in capsys.readouterr().err  # the bar still has its total from the start: 30 + 5 source frames
    assert sorted(probed) == ["clip.mp4", "step.wbrec"]


def test_an_imported_dataset_records_its_sources_and_settings_and_a_reimport_gets_a_new_fingerprint(tmp_path):
    """A checkpoint trained on imported footage could not say which footage: the manifest now names each source file
    (size, last change), the import's --fps and --size, and carries a fingerprint that a re-import of other footage
    at the same --out changes."""
    import json
    import os

    iio.imwrite(tmp_path / "anim.gif", colour_frames(8), duration=200, loop=0)
    os.utime(tmp_path / "anim.gif", (1_700_000_000, 1_700_000_000))
    import_footage([tmp_path / "anim.gif"], tmp_path / "ds", size=16, fps=5, progress=False)
    m = json.loads((tmp_path / "ds" / "manifest.json").read_text(encoding="utf-8"))
    made = m["imported_from"]
    assert made["sources"] == [{"path": str((tmp_path / "anim.gif").resolve()),
                                "bytes": (tmp_path / "anim.gif").stat().st_size,
                                "modified": _iso(1_700_000_000)}]
    assert (made["fps"], made["size"]) == (5.0, 16) and 0 <= made["val_fraction"] <= 1
    iio.imwrite(tmp_path / "anim.gif", colour_frames(8)[::-1], duration=200, loop=0)  # other footage, same name
    import_footage([tmp_path / "anim.gif"], tmp_path / "ds", size=16, fps=5, overwrite=True, progress=False)
    assert VideoDataset(tmp_path / "ds").fingerprint not in (None, m["fingerprint"])


def _iso(t: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(t).isoformat(timespec="seconds")
