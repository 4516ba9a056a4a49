"""`worldbridge data` commands end to end: help texts, generate -> info -> reader, preview PNGs, clear failures."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bridge.data.cli import data
from bridge.data.dataset import ClipSampler, VideoDataset

torch.set_num_threads(1)

COMMANDS = ["generate", "import", "capture", "info", "preview"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd):
    result = CliRunner().invoke(data, [cmd, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output and "--" in result.output


def test_cli_is_wired_into_worldbridge():
    from bridge.cli import main

    result = CliRunner().invoke(main, ["data", "--help"])
    assert result.exit_code == 0 and all(c in result.output for c in COMMANDS)


def test_generate_info_reader_round_trip(tmp_path):
    out = tmp_path / "ds"
    r = CliRunner().invoke(data, ["generate", "--episodes", "6", "--frames", "30", "--out", str(out), "--workers", "1",
                                  "--seed", "4", "--val-fraction", "0.3", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "frames/s" in r.output and "180 frames" in r.output
    r = CliRunner().invoke(data, ["info", str(out), "--json"])
    info = json.loads(r.output)
    assert (info["episodes"], info["frames"], info["height"], info["width"]) == (6, 180, 64, 64)
    assert info["splits"]["train"]["episodes"] + info["splits"]["val"]["episodes"] == 6
    assert info["bytes"] > 180 * 64 * 64 * 3 and info["has_actions"]
    text = CliRunner().invoke(data, ["info", str(out)]).output
    assert "episodes  6" in text and "caption" in text and "MiB" in text
    ds = VideoDataset(out)
    clips, acts = ClipSampler(ds, 8, split="train").sample_with_actions(4)
    assert clips.shape == (4, 8, 64, 64, 3) and acts.shape == (4, 7)


def test_preview_writes_contact_sheets(tmp_path):
    out = tmp_path / "ds"
    CliRunner().invoke(data, ["generate", "--episodes", "3", "--frames", "20", "--out", str(out), "--workers", "1", "--quiet"])
    r = CliRunner().invoke(data, ["preview", str(out), "--out", str(tmp_path / "sheet.png"), "--cols", "5"])
    assert r.exit_code == 0, r.output
    sheet = iio.imread(tmp_path / "sheet.png")
    assert sheet.shape[0] > 3 * 128 and sheet.shape[1] >= 5 * 128 and sheet.std() > 10
    r = CliRunner().invoke(data, ["preview", "--sandbox-gallery", "--out", str(tmp_path / "gallery.png"), "--scale", "1"])
    assert r.exit_code == 0, r.output
    g = iio.imread(tmp_path / "gallery.png")
    assert g.shape[1] >= 12 * 64 and g.shape[0] >= 6 * 64


def test_failures_are_clear(tmp_path):
    r = CliRunner().invoke(data, ["info", str(tmp_path)])
    assert r.exit_code != 0 and "no manifest.json" in r.output
    (tmp_path / "clip.mp4").write_bytes(b"not a dataset")
    r = CliRunner().invoke(data, ["info", str(tmp_path / "clip.mp4")])  # a file, not "does not exist"
    assert r.exit_code == 2 and "clip.mp4 is a file: give the dataset's folder" in r.output, r.output
    assert "does not exist" not in r.output and "worldbridge data import" in r.output
    r = CliRunner().invoke(data, ["generate", "--size", "50", "--out", str(tmp_path / "x"), "--quiet"])
    assert r.exit_code != 0 and "multiple of 64" in r.output and not (tmp_path / "x").exists()
    r = CliRunner().invoke(data, ["preview", "--out", str(tmp_path / "p.png")])
    assert r.exit_code != 0 and "--sandbox-gallery" in r.output


@pytest.mark.parametrize("args, says", [
    (["--out", "/proc/worldbridge-sheet.png"], "cannot write --out /proc/worldbridge-sheet.png"),
    (["--out", "{tmp}/sheet.jpg"], "is not a .png file"),
    (["--out", "{tmp}/sheet.png", "--rows", "0"], "'--rows': 0 is not in the range x>=1"),
    (["--out", "{tmp}/sheet.png", "--cols", "0"], "'--cols': 0 is not in the range x>=1"),
    (["--out", "{tmp}/sheet.png", "--scale", "0"], "'--scale': 0 is not in the range x>=1"),
    (["--out", "{tmp}/sheet.png", "--scale", "-1"], "'--scale': -1 is not in the range x>=1"),
])
def test_preview_refuses_bad_options_with_one_clear_error(tmp_path, args, says):
    from test_model_data import write_square_dataset

    ds = write_square_dataset(tmp_path / "ds", episodes=2, length=4)
    r = CliRunner().invoke(data, ["preview", str(ds)] + [a.format(tmp=tmp_path) for a in args])
    assert r.exit_code in (1, 2) and "Error: " in r.output and says in r.output, r.output
    assert not list(tmp_path.glob("sheet*")) and not list(tmp_path.glob(".sheet*"))


@pytest.mark.parametrize("args, says", [
    (["--event-fraction", "2"], "'--event-fraction': 2.0 is not in the range 0<=x<=1"),
    (["--events-per-episode", "-1"], "'--events-per-episode': -1.0 is not in the range x>=0"),
    (["--val-fraction", "1"], "'--val-fraction': 1.0 is not in the range 0<=x<1"),
])
def test_generate_names_the_option_out_of_range(tmp_path, args, says):
    r = CliRunner().invoke(data, ["generate", "--episodes", "2", "--frames", "4", "--out", str(tmp_path / "ds")] + args)
    assert r.exit_code == 2 and says in r.output, r.output
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("damage", ["truncate", "float32", "random"])
def test_info_reports_a_damaged_shard_and_fails(tmp_path, damage):
    import os

    import numpy as np

    from test_model_data import write_square_dataset

    ds = write_square_dataset(tmp_path / "ds", episodes=2, length=4)
    shard = ds / "frames_00000.npy"
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:-50])
    elif damage == "float32":
        np.save(shard, np.load(shard).astype(np.float32))
    else:
        shard.write_bytes(os.urandom(2000))
    r = CliRunner().invoke(data, ["info", str(ds)])
    assert r.exit_code == 1 and r.output.startswith("Error: ") and "frames_00000.npy" in r.output, r.output


def test_generate_into_an_unwritable_folder_names_that_folder_not_a_temp_path():
    r = CliRunner().invoke(data, ["generate", "--episodes", "2", "--frames", "10", "--out", "/sys/worldbridge-ds",
                                  "--quiet"])
    assert r.exit_code == 1 and r.output.startswith("Error: cannot write a dataset into /sys (") and ".tmp" not in r.output
    assert "choose an --out" in r.output


@pytest.mark.parametrize("argv", [
    ["data", "generate", "--out", "ds"], ["data", "capture", "--env", "CartPole-v1", "--out", "ds"],
    ["train", "tokenizer", "--data", "ds", "--out", "run"], ["train", "dynamics", "--data", "ds", "--out", "run"],
    ["train", "decoder", "--world", "w", "--data", "ds", "--out", "run"], ["eval", "--checkpoint", "w", "--data", "ds"],
])
def test_a_negative_seed_is_named_as_the_option_it_is(argv, tmp_path, monkeypatch):
    from bridge.cli import main

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, [*argv, "--seed", "-1"])
    assert r.exit_code == 2 and "Invalid value for '--seed': -1 is not in the range x>=0" in r.output, r.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, option", [
    (["train", "tokenizer", "--data", "ds", "--out", "run", "--lr", "-1e-3"], "--lr"),
    (["train", "tokenizer", "--data", "ds", "--out", "run", "--lr", "0"], "--lr"),
    (["train", "dynamics", "--data", "ds", "--out", "run", "--max-minutes", "-5"], "--max-minutes"),
    (["train", "decoder", "--world", "w", "--data", "ds", "--out", "run", "--max-minutes", "-1"], "--max-minutes"),
    (["train", "dynamics", "--data", "ds", "--out", "run", "--ckpt-minutes", "0"], "--ckpt-minutes"),
    (["train", "decoder", "--world", "w", "--data", "ds", "--out", "run", "--adv", "-0.1"], "--adv"),
    (["train", "decoder", "--world", "w", "--data", "ds", "--out", "run", "--detail", "-2"], "--detail"),
])
def test_a_training_number_out_of_range_is_named_as_the_option_it_is(argv, option, tmp_path, monkeypatch):
    from bridge.cli import main

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, argv)
    assert r.exit_code == 2 and f"Invalid value for '{option}'" in r.output, r.output
    assert list(tmp_path.iterdir()) == []


def _ctrl_c_at_episode(n: int, monkeypatch) -> None:
    """Ctrl-C arrives while the sandbox plays its n-th episode (workers=1: in this process)."""
    import bridge.data.generate as gen

    calls, real = {"n": 0}, gen.play_episode

    def play(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(gen, "play_episode", play)


def test_ctrl_c_during_generate_says_nothing_was_written_and_exits_130(tmp_path, monkeypatch):
    """Not click's bare "Aborted!" with exit 1: one line saying what was stopped and what was kept."""
    out, argv = tmp_path / "ds", ["generate", "--episodes", "4", "--frames", "5", "--workers", "1", "--quiet"]
    _ctrl_c_at_episode(3, monkeypatch)
    r = CliRunner().invoke(data, [*argv, "--out", str(out)])
    assert r.exit_code == 130 and r.output.strip() == f"stopped: nothing was written to {out}", r.output
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert CliRunner().invoke(data, [*argv, "--out", str(out)]).exit_code == 0
    before = sorted(p.read_bytes() for p in out.iterdir())
    _ctrl_c_at_episode(2, monkeypatch)
    r = CliRunner().invoke(data, [*argv, "--seed", "3", "--out", str(out), "--overwrite"])
    assert r.exit_code == 130 and f"nothing was written to {out}; {out} keeps what was there before" in r.output
    assert sorted(p.read_bytes() for p in out.iterdir()) == before and "Aborted" not in r.output


def test_ctrl_c_during_eval_says_nothing_on_disk_changed_and_exits_130(tmp_path, monkeypatch):
    import bridge.train.evaluate as ev
    from bridge.cli import main

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ev, "VideoDataset", ctrl_c)  # the first thing eval does
    r = CliRunner().invoke(main, ["eval", "--checkpoint", str(tmp_path), "--data", str(tmp_path)])
    assert r.exit_code == 130 and r.output.strip() == ("stopped: eval ended before printing its results; it writes "
                                                       "no files, so nothing on disk changed"), r.output


def test_one_episode_is_counted_in_the_singular(tmp_path):
    """generate, import and info said "1 episodes"."""
    out = tmp_path / "ds"
    r = CliRunner().invoke(data, ["generate", "--episodes", "1", "--frames", "4", "--out", str(out), "--workers", "1",
                                  "--quiet"])
    assert r.exit_code == 0 and " in 1 episode to " in r.output, r.output
    r = CliRunner().invoke(data, ["info", str(out)])
    assert r.exit_code == 0 and ": 1 episode / 4 frames" in r.output and ": 0 episodes / 0 frames" in r.output, r.output
    iio.imwrite(tmp_path / "one.gif", np.zeros((3, 16, 16, 3), np.uint8), duration=100, loop=0)
    r = CliRunner().invoke(data, ["import", str(tmp_path / "one.gif"), "--out", str(tmp_path / "imp"), "--size", "16"])
    assert r.exit_code == 0 and " in 1 episode to " in r.output, r.output
    assert "1 episodes" not in r.output


def test_info_counts_one_frame_and_one_episode_as_such():
    """`data info` printed "(1-1 frames each)" and "1 episodes with events" for one-frame, one-event datasets."""
    from bridge.data.summary import format_info

    info = {"root": "ds", "source": "import", "episodes": 1, "frames": 1, "height": 8, "width": 8, "fps": 10.0,
            "hours": 0.0, "action_names": None, "has_actions": False, "has_sketches": False, "bytes": 100,
            "bytes_per_100k_frames": 100, "splits": {"train": {"episodes": 1, "frames": 1}},
            "episode_length": {"min": 1, "max": 1}, "params": {}, "events": {"weather_snow": 1},
            "episodes_with_events": 1, "example_captions": [], "fingerprint": None}
    text = format_info(info)
    assert "(1 frame each)" in text and "1 episode with events" in text, text
    assert "(2-30 frames each)" in format_info({**info, "episode_length": {"min": 2, "max": 30}})


def test_info_says_which_footage_a_dataset_holds_and_how_it_was_made(tmp_path):
    """`data info` showed neither the fingerprint a model card records nor `generated_by` / `imported_from`, so a
    dataset could not be matched to the checkpoints trained on it, nor its making told, without its manifest."""
    out = tmp_path / "gen"
    CliRunner().invoke(data, ["generate", "--episodes", "2", "--frames", "6", "--out", str(out), "--workers", "1",
                              "--seed", "4", "--quiet"])
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    info = json.loads(CliRunner().invoke(data, ["info", str(out), "--json"]).output)
    assert info["fingerprint"] == m["fingerprint"] and info["generated_by"] == m["generated_by"]
    assert "imported_from" not in info
    text = CliRunner().invoke(data, ["info", str(out)]).output
    assert f"fingerprint {m['fingerprint']}" in text and "generated episodes=2, " in text and "seed=4" in text, text
    for i in range(7):
        iio.imwrite(tmp_path / f"clip{i}.gif", np.full((3, 16, 16, 3), 40 * i, np.uint8), duration=100, loop=0)
    r = CliRunner().invoke(data, ["import", *(str(tmp_path / f"clip{i}.gif") for i in range(7)), "--out",
                                  str(tmp_path / "imp"), "--size", "16", "--fps", "5"])
    assert r.exit_code == 0, r.output
    info = json.loads(CliRunner().invoke(data, ["info", str(tmp_path / "imp"), "--json"]).output)
    assert len(info["imported_from"]["sources"]) == 7 and info["imported_from"]["fps"] == 5.0 and info["fingerprint"]
    text = CliRunner().invoke(data, ["info", str(tmp_path / "imp")]).output
    assert "imported  7 sources at 5 fps, 16 px" in text and str(tmp_path / "clip0.gif") in text, text
    assert str(tmp_path / "clip6.gif") not in text and "and 2 more (--json lists them all)" in text, text
    m = json.loads((tmp_path / "imp" / "manifest.json").read_text(encoding="utf-8"))
    del m["fingerprint"]  # a dataset made before fingerprints
    (tmp_path / "imp" / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    info = json.loads(CliRunner().invoke(data, ["info", str(tmp_path / "imp"), "--json"]).output)
    text = CliRunner().invoke(data, ["info", str(tmp_path / "imp")]).output
    assert info["fingerprint"] is None and "no fingerprint (made before datasets had one)" in text, text
