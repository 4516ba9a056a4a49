"""The dataset reader and clip sampler: memmapped frames, clips that never cross episodes, splits, clear errors."""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.data.dataset import ClipSampler, VideoDataset
import bridge.files as files
from bridge.data.writer import DatasetWriter
from helpers import in_ascii_locale, replace_held_open

torch.set_num_threads(1)


def synthetic(root, lengths, with_actions=True, val=()):
    """A dataset whose every frame is filled with its episode id (and actions with their frame index)."""
    with DatasetWriter(root, height=8, width=8, fps=10, action_names=["a", "b"] if with_actions else None, source="import") as w:
        for i, n in enumerate(lengths):
            frames = np.full((n, 8, 8, 3), i, np.uint8)
            frames[:, 0, 0, 0] = np.arange(n)  # frame index in one pixel
            acts = np.r_[np.arange(n - 1), -1].astype(np.int16) if with_actions else None
            w.add_episode({"id": i, "seed": 1000 + i, "caption": f"ep {i}", "params": None, "events": [],
                           "split": "val" if i in val else "train"}, frames, acts, acts)
        w.finish()
    return VideoDataset(root)


def test_reader_returns_memmapped_episodes(tmp_path):
    ds = synthetic(tmp_path / "d", [5, 7, 3], val=(1,))
    assert (ds.height, ds.width, ds.fps, ds.num_frames, len(ds.episodes)) == (8, 8, 10.0, 15, 3)
    f = ds.frames(ds.episodes[1])
    assert isinstance(f, np.memmap) or isinstance(f.base, np.memmap)
    assert f.shape == (7, 8, 8, 3) and (f[:, 1:, 1:] == 1).all()
    assert ds.actions(ds.episodes[1]).tolist() == [0, 1, 2, 3, 4, 5, -1]
    assert [e.id for e in ds.split("train")] == [0, 2] and [e.id for e in ds.split("val")] == [1]
    with pytest.raises(ValueError, match="'train' or 'val'"):
        ds.split("test")


def test_clips_never_cross_episode_boundaries(tmp_path):
    ds = synthetic(tmp_path / "d", [5, 9, 4, 12, 2])
    s = ClipSampler(ds, clip_len=4, split="all")
    assert len(s) == (5 - 3) + (9 - 3) + (4 - 3) + (12 - 3)  # the 2-frame episode has no clip
    clips, acts = s.sample_with_actions(300, rng=np.random.default_rng(0))
    assert clips.shape == (300, 4, 8, 8, 3) and acts.shape == (300, 3)
    for clip, act in zip(clips, acts):
        assert len(np.unique(clip[:, 1:, 1:])) == 1  # one episode per clip
        idx = clip[:, 0, 0, 0].astype(int)
        assert np.array_equal(np.diff(idx), [1, 1, 1])  # consecutive frames
        assert np.array_equal(act, idx[:-1])  # action t moves frame t to t+1
        assert (act >= 0).all()  # never the end-of-episode marker
    strided = ClipSampler(ds, clip_len=4, split="all", stride=3)
    assert len(strided) == 1 + 2 + 1 + 3
    with pytest.raises(ValueError, match="no clips of 20 frames"):
        ClipSampler(ds, clip_len=20, split="all")


def test_sampler_is_seeded(tmp_path):
    ds = synthetic(tmp_path / "d", [30, 30])
    a = ClipSampler(ds, 5, seed=1).sample(8)
    b = ClipSampler(ds, 5, seed=1).sample(8)
    c = ClipSampler(ds, 5, seed=2).sample(8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_video_only_dataset_has_no_actions(tmp_path):
    ds = synthetic(tmp_path / "d", [6], with_actions=False)
    assert ds.actions(ds.episodes[0]) is None and ds.action_names is None
    clips, acts = ClipSampler(ds, 3).sample_with_actions(2)
    assert clips.shape == (2, 3, 8, 8, 3) and acts is None


def test_missing_or_corrupt_manifest_is_a_clear_error(tmp_path):
    ds_dir = tmp_path / "d"
    synthetic(ds_dir, [4])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VideoDataset(tmp_path / "nope")
    (ds_dir / "manifest.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(ValueError, match="corrupt"):
        VideoDataset(ds_dir)
    (ds_dir / "manifest.json").write_text(json.dumps({"format": "something-else"}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a worldbridge-video manifest"):
        VideoDataset(ds_dir)
    (ds_dir / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        VideoDataset(ds_dir)


@pytest.mark.parametrize("edit, says", [
    (lambda m: m["episodes"][0].update(length="12"), r"episodes\[0\]\.length='12' \(a whole number >= 1\)"),
    (lambda m: m["episodes"][1].pop("shard"), r"episodes\[1\]\.shard=None"),
    (lambda m: m["episodes"][0].update(split="test"), r"episodes\[0\]\.split='test' \('train' or 'val'\)"),
    (lambda m: m.update(height=None), r"height=None"),
    (lambda m: m.update(fps="15"), r"fps='15' \(a number > 0\)"),
    (lambda m: m.update(episodes={}), r"episodes \(a list\)"),
])
def test_a_hand_edited_manifest_with_a_bad_value_names_it(tmp_path, edit, says):
    synthetic(tmp_path / "d", [4, 5])
    m = json.loads((tmp_path / "d" / "manifest.json").read_text(encoding="utf-8"))
    edit(m)
    (tmp_path / "d" / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(ValueError, match=f"manifest.json has bad values: {says}.*fix them or make the dataset again"):
        VideoDataset(tmp_path / "d")


def test_damaged_shards_are_named_not_aborted(tmp_path):
    ds = synthetic(tmp_path / "d", [5, 7])
    shard = next(p for p in (tmp_path / "d").iterdir() if p.name.startswith("frames_"))
    shard.write_bytes(b"")  # an empty file: numpy raises EOFError, which click turned into a bare "Aborted!"
    with pytest.raises(ValueError, match=f"{shard.name} is damaged .*regenerate"):
        VideoDataset(tmp_path / "d").frames(ds.episodes[0])
    synthetic(tmp_path / "e", [5, 7])
    actions = next(p for p in (tmp_path / "e").iterdir() if p.name.startswith("actions_"))
    np.save(actions, np.zeros(3, np.int16))  # readable, but shorter than the episodes it must cover
    with pytest.raises(ValueError, match="holds 3 frames but the manifest needs 12"):
        VideoDataset(tmp_path / "e")
    np.save(actions, np.zeros(1, np.int16))  # "holds 1 frames"
    with pytest.raises(ValueError, match="holds 1 frame but the manifest needs 12"):
        VideoDataset(tmp_path / "e")


@pytest.mark.parametrize("damage, says", [
    (lambda d, f, a: np.save(f, np.load(f).astype(np.float32)), r"holds float32 images .* says uint8"),
    (lambda d, f, a: np.save(f, np.load(f)[:, :4]), r"holds uint8 images of shape \(4, 8, 3\)"),
    (lambda d, f, a: np.save(a, np.zeros(20, np.int16)), "holds 20 actions but frames_00000.npy holds 12 frames"),
    (lambda d, f, a: np.save(a, np.zeros((12, 2), np.int16)), "not one integer action per frame"),
    (lambda d, f, a: f.write_bytes(os.urandom(500)), "frames_00000.npy is damaged"),
])
def test_shards_that_do_not_fit_the_manifest_are_refused_on_opening(tmp_path, damage, says):
    synthetic(tmp_path / "d", [5, 7])
    damage(tmp_path / "d", tmp_path / "d" / "frames_00000.npy", tmp_path / "d" / "actions_00000.npy")
    with pytest.raises(ValueError, match=says) as e:
        VideoDataset(tmp_path / "d")
    assert "regenerate" in str(e.value)


def test_overwrite_replaces_datasets_only(tmp_path):
    (tmp_path / "proj" / "src").mkdir(parents=True)
    (tmp_path / "proj" / "src" / "code.py").write_text("important", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not a WorldBridge dataset.*will not delete it"):
        DatasetWriter(tmp_path / "proj", height=8, width=8, fps=10, action_names=None, source="import", overwrite=True)
    assert (tmp_path / "proj" / "src" / "code.py").read_text(encoding="utf-8") == "important"
    synthetic(tmp_path / "d", [4])
    with DatasetWriter(tmp_path / "d", height=8, width=8, fps=10, action_names=None, source="import",
                       overwrite=True) as w:  # a dataset: replaced
        w.add_episode({"id": 0, "seed": 1, "caption": "", "params": None, "events": [], "split": "train"},
                      np.zeros((2, 8, 8, 3), np.uint8), None, None)
        w.finish()
    assert VideoDataset(tmp_path / "d").num_frames == 2


def _overwrite(root, frames: int):
    """Replace the dataset at `root` by one episode of `frames` frames."""
    with DatasetWriter(root, height=8, width=8, fps=10, action_names=None, source="import", overwrite=True) as w:
        w.add_episode({"id": 0, "seed": 1, "caption": "", "params": None, "events": [], "split": "train"},
                      np.zeros((frames, 8, 8, 3), np.uint8), None, None)
        w.finish()


def test_overwriting_a_dataset_a_training_run_holds_open_on_windows_names_it(tmp_path, monkeypatch):
    synthetic(tmp_path / "d", [4])
    replace_held_open(monkeypatch, str(tmp_path / "d"), times=1000)
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(PermissionError, match=f"{tmp_path / 'd'} is open in another program.*close it and retry"):
        _overwrite(tmp_path / "d", 2)
    assert VideoDataset(tmp_path / "d").num_frames == 4 and [p.name for p in tmp_path.iterdir()] == ["d"]


def test_a_dataset_that_cannot_be_published_leaves_the_old_one_in_place(tmp_path, monkeypatch):
    synthetic(tmp_path / "d", [4])
    monkeypatch.setattr(files, "publish", lambda tmp, path: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError, match="No space left"):
        _overwrite(tmp_path / "d", 2)
    assert VideoDataset(tmp_path / "d").num_frames == 4 and [p.name for p in tmp_path.iterdir()] == ["d"]


def test_a_dataset_published_but_not_synced_keeps_the_old_one_and_says_where(tmp_path, monkeypatch):
    """The new dataset is in place when the sync of its folder's entry fails: the old one is not put back over it,
    and not deleted either (the rename may not be on disk yet), so a warning names where it is."""
    synthetic(tmp_path / "d", [4])
    real = files.fsync
    monkeypatch.setattr(files, "fsync", lambda path, **kw: (_ for _ in ()).throw(OSError(5, "Input/output error"))
                        if Path(path) == tmp_path else real(path, **kw))
    old = tmp_path / files.leftover_prefix(tmp_path / "d", "old")
    with pytest.warns(UserWarning, match=rf"{tmp_path / 'd'} was replaced.*earlier one is kept as {old}"):
        with pytest.raises(OSError, match="Input/output error"):
            _overwrite(tmp_path / "d", 2)
    assert VideoDataset(tmp_path / "d").num_frames == 2 and VideoDataset(old).num_frames == 4


def test_an_old_dataset_that_cannot_be_put_back_is_named(tmp_path, monkeypatch):
    synthetic(tmp_path / "d", [4])
    sync, real = files._sync, os.replace
    monkeypatch.setattr(files, "_sync", lambda tmp: (_ for _ in ()).throw(OSError(28, "No space left on device"))
                        if tmp.is_dir() else sync(tmp))  # the dataset's folder, not its manifest
    old = tmp_path / files.leftover_prefix(tmp_path / "d", "old")
    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError(13, "Permission denied"))
                        if Path(src) == old else real(src, dst))
    with pytest.raises(OSError, match=rf"No space left on device.*could not be put back .*Permission denied.*kept as "
                                      rf"{old}"):
        _overwrite(tmp_path / "d", 2)
    assert VideoDataset(old).num_frames == 4 and not (tmp_path / "d").exists()


def test_folders_that_cannot_be_deleted_are_named_in_a_warning(tmp_path, monkeypatch):
    """Windows will not delete a file a program has open: the old dataset (or an interrupted write's temp folder)
    stays, hidden, and the user must know."""
    synthetic(tmp_path / "d", [4])
    monkeypatch.setattr(shutil, "rmtree", lambda path, ignore_errors=False: None)
    old = rf"{tmp_path / '.d.old-'}\d+-{files._host()}"
    with pytest.warns(UserWarning, match=rf"could not delete {old} .*delete it yourself"):
        _overwrite(tmp_path / "d", 2)
    assert VideoDataset(tmp_path / "d").num_frames == 2
    with pytest.warns(UserWarning, match=rf"could not delete {tmp_path / '.e.tmp-'}\S+ .*delete it yourself"):
        with pytest.raises(KeyboardInterrupt):
            with DatasetWriter(tmp_path / "e", height=8, width=8, fps=10, action_names=None, source="import"):
                raise KeyboardInterrupt  # an interrupted write's temp folder


def test_a_manifest_holding_non_ascii_text_opens_where_the_locale_is_not_utf8(tmp_path):
    """Windows opens text as cp1252 unless told: a caption edited to "Schnee ü 雪" made the dataset 'corrupt'."""
    synthetic(tmp_path / "d", [4])
    m = json.loads((tmp_path / "d" / "manifest.json").read_text(encoding="utf-8"))
    m["episodes"][0]["caption"] = "Schnee ü 雪"
    (tmp_path / "d" / "manifest.json").write_text(json.dumps(m, ensure_ascii=False), encoding="utf-8")
    out = in_ascii_locale(f"""
import json
from bridge.data.dataset import VideoDataset
from bridge.data.writer import DatasetWriter
caption = VideoDataset({str(tmp_path / 'd')!r}).episodes[0].caption
with DatasetWriter({str(tmp_path / 'd')!r}, height=8, width=8, fps=10, action_names=None, source="import",
                   overwrite=True):  # --overwrite knows it for a dataset
    print(json.dumps(caption))
""")
    assert json.loads(out) == "Schnee ü 雪"


def test_writer_rejects_bad_frames_and_cleans_up(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        with DatasetWriter(tmp_path / "d", height=8, width=8, fps=10, action_names=None, source="import") as w:
            w.add_episode({"id": 0}, np.zeros((3, 8, 8, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_a_killed_writers_temp_folder_is_removed_by_the_next_write_to_the_same_dataset(tmp_path):
    """`data generate` or `import` killed with -9 leaves its hidden temp folder (the frames written so far): the next
    write to that --out removes it, once its process is gone."""
    import subprocess

    code = ("import sys, os; from bridge.data.writer import DatasetWriter; "
            "w = DatasetWriter(sys.argv[1], height=8, width=8, fps=10, action_names=None, source='import'); "
            "w.__enter__(); print(w.tmp, flush=True); os._exit(0)")  # exits as a kill would: no clean-up runs
    left = Path(subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], capture_output=True, text=True,
                               check=True).stdout.strip())
    assert left.is_dir() and left.name.startswith(".d.tmp-")
    synthetic(tmp_path / "d", [12])
    assert not left.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_torch_iterable_yields_clip_tensors(tmp_path):
    from bridge.data.torch_dataset import ClipIterable

    ds = synthetic(tmp_path / "d", [10, 10])
    it = iter(torch.utils.data.DataLoader(ClipIterable(tmp_path / "d", clip_len=4, seed=0, with_actions=True), batch_size=3))
    frames, actions = next(it)
    assert frames.shape == (3, 4, 8, 8, 3) and frames.dtype == torch.uint8
    assert actions.shape == (3, 3) and actions.dtype == torch.int64
    assert ds.num_frames == 20


def test_a_frame_size_mismatch_names_both_sizes_and_the_footage_to_give(tmp_path):
    from bridge.data.dataset import check_frame_size

    ds = synthetic(tmp_path / "d", [4])  # 8x8 frames
    check_frame_size(ds, 8, 8, "the world w")  # the same size: nothing to say
    with pytest.raises(ValueError) as e:
        check_frame_size(ds, 16, 16, "the world w")
    said = str(e.value)
    assert f"the world w was trained on 16x16 frames but {tmp_path / 'd'} has 8x8" in said, said
    assert "give --data footage of 16x16 frames" in said and "worldbridge data generate|import ... --size 16" in said
    with pytest.raises(ValueError) as e:  # --size makes square frames only: not named for a 16x32 world
        check_frame_size(ds, 16, 32, "the world w", also="give a new --out")
    assert "give --data footage of 16x32 frames, or give a new --out" in str(e.value) and "--size" not in str(e.value)


def test_no_val_episodes_is_the_dataset_s_and_names_the_command_by_how_it_was_made(tmp_path):
    from bridge.data.dataset import no_val_episodes

    ds = synthetic(tmp_path / "d", [4, 4])  # source "import", both episodes in train
    assert "has no val episodes (2 episodes, all in train)" in no_val_episodes(ds)
    assert "worldbridge data import ... --val-fraction 0.2 --overwrite" in no_val_episodes(ds)


def test_no_clips_in_imported_footage_names_the_import_fix_not_generate(tmp_path):
    """Imported game footage too short for a clip was told to run `worldbridge data generate --frames 8`, which makes
    sandbox footage, not more of the developer's own."""
    ds = synthetic(tmp_path / "d", [5, 7], with_actions=False)  # source "import", 10 fps
    with pytest.raises(ValueError) as e:
        ClipSampler(ds, clip_len=8, split="all")
    said = str(e.value)
    assert "no clips of 8 frames" in said and "generate" not in said, said
    assert "worldbridge data import ... --fps" in said and "longer" in said and "10 fps" in said, said


def test_a_manifest_fingerprints_its_footage_so_a_rewrite_at_the_same_path_is_told_apart(tmp_path):
    """After `data import --overwrite` at the same path nothing told the new footage from the old: the manifest now
    carries a fingerprint of its shards and episodes, the same for the same footage and new for other footage."""
    first = synthetic(tmp_path / "d", [5, 7], val=(1,))
    twin = synthetic(tmp_path / "twin", [5, 7], val=(1,))
    assert first.fingerprint and first.fingerprint == twin.fingerprint  # the same footage elsewhere
    _overwrite(tmp_path / "d", 12)
    assert VideoDataset(tmp_path / "d").fingerprint not in (None, first.fingerprint)


def test_a_dataset_made_before_fingerprints_still_opens_and_says_it_has_none(tmp_path):
    from bridge.data.dataset import provenance

    synthetic(tmp_path / "d", [4])
    m = json.loads((tmp_path / "d" / "manifest.json").read_text(encoding="utf-8"))
    del m["fingerprint"]
    (tmp_path / "d" / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    ds = VideoDataset(tmp_path / "d")
    assert ds.fingerprint is None and provenance(ds) == {"path": str((tmp_path / "d").resolve()), "fingerprint": None}
