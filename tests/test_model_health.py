"""Rollout health: token statistics, the range from real footage, check_rollout telling footage from collapse."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bridge.data.dataset import VideoDataset
from bridge.model.health import (STATS, calibrate, check_rollout, failing, health, load_tokenizer, save_range,
                                 token_stats)
from bridge.model.world import load_world
from helpers import in_ascii_locale
from test_model_data import save_random_world, trained_micro

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup():
    """The micro world trained on the square footage (shared with the training tests; ~10 s once per session): an
    untrained tokenizer maps most footage to one or two codes, so only a trained one tells a world from collapse."""
    run = trained_micro()  # micro: 16x16 frames, 16 tokens, 64 codes
    tok = load_tokenizer(run["world"])
    return run["world"], run["data"], tok, calibrate(tok, run["data"], clips=64, progress=False)


class FootagePlayer:
    """TEST-ONLY backend: plays real footage (the dataset's val episodes) frame by frame, whatever the action."""

    kind, name = "sandbox", "footage player"
    action_names = ["a", "b"]
    num_latent_actions = 2
    event_types: list = []

    def __init__(self, data):
        self.ds = VideoDataset(data)
        self.height, self.width = self.ds.height, self.ds.width
        self.episodes = self.ds.split("val")

    def reset(self, prompt):
        self.frames = self.ds.frames(self.episodes[int(prompt.seed) % len(self.episodes)])
        self.t = 0
        return np.asarray(self.frames[0])

    def step(self, action, event=None):
        self.t = min(self.t + 1, len(self.frames) - 1)
        return np.asarray(self.frames[self.t])


def test_token_stats_of_handmade_maps():
    tokens = torch.tensor([[0, 0, 0, 0], [0, 1, 2, 3], [0, 1, 2, 2]])  # one sequence of 3 frames, 4 tokens
    s = token_stats(tokens, vocab=8)
    assert s["distinct"].tolist() == [1, 4, 3]
    assert s["max_share"].tolist() == [1.0, 0.25, 0.5]
    assert np.allclose(s["entropy"], [0.0, 2.0, 1.5])
    assert np.isnan(s["change"][0]) and np.allclose(s["change"][1:], [0.75, 0.25])
    assert np.isnan(s["still"][0]) and s["still"][1:].tolist() == [0, 0]
    batched = token_stats(tokens[None].repeat(2, 1, 1), vocab=8)
    assert batched["distinct"].shape == (2, 3)
    held = token_stats(torch.cat([tokens, tokens[-1:].repeat(3, 1), tokens[:1]]), vocab=8)  # frozen 3 frames, then moves
    assert held["still"][1:].tolist() == [0, 0, 1, 2, 3, 0]


def test_failing_names_the_statistics_out_of_range():
    rng = {"stats": {"distinct": [3, 10], "max_share": [0.1, 0.5], "entropy": [1.0, 3.0], "change": [0.0, 0.5]}}
    ok = {"distinct": 5, "max_share": 0.3, "entropy": 2.0, "change": float("nan")}
    assert failing(ok, rng) == []
    assert failing({**ok, "distinct": 1, "max_share": 1.0, "entropy": 0.0}, rng) == ["distinct", "max_share", "entropy"]
    assert failing({**ok, "change": 0.9}, rng) == ["change"]
    assert failing({**ok, "still": 40.0}, rng) == []  # a range from before `still` existed does not judge it
    assert failing({**ok, "still": 40.0}, {"stats": {**rng["stats"], "still": [0, 3]}}) == ["still"]
    assert failing({**ok, "still": 40.0}, {"stats": {**rng["stats"], "still": [0, None]}}) == []  # no known limit


def test_range_is_measured_on_real_footage(setup):
    _, data, tok, rng = setup
    assert set(rng["stats"]) == set(STATS) and rng["quantiles"] == [0.005, 0.995]
    assert rng["vocab"] == 64 and rng["tokens_per_frame"] == 16 and rng["split"] == "val" and rng["frames"] == 64 * 24
    for lo, hi in rng["stats"].values():
        assert hi is None or lo <= hi
    assert 1 <= rng["stats"]["distinct"][0] and rng["stats"]["distinct"][1] <= 16


def test_real_footage_passes(setup):
    _, data, tok, rng = setup
    res = check_rollout(FootagePlayer(data), frames=35, seed=0, stats_range=rng, tokenizer=tok)
    assert res["frames"] == 35 and res["within_range"] >= 0.95, res
    res = check_rollout(FootagePlayer(data), frames=35, seed=1, stats_range=rng, tokenizer=tok)
    assert res["within_range"] >= 0.95, res


def test_footage_that_stops_moving_fails_on_still(setup):
    _, data, tok, rng = setup
    # the square's footage stays on the same tokens for whole clips (calibration: no known limit, null); a range
    # from footage that keeps moving (still runs of at most 3 frames) judges footage held on its last frame
    assert rng["clip_len"] == 24 and rng["stats"]["still"] == [0.0, None]
    held = check_rollout(FootagePlayer(data), frames=79, seed=1, stats_range=rng, tokenizer=tok)
    assert held["failures_by_stat"]["still"] == 0  # no known limit: held frames pass
    assert held["within_range"] >= 0.95, held  # the range is p0.5-p99.5 of real footage: a rare frame may fall
    # outside it (one did here on a CPU without AVX-512 BF16, whose fp32 tokenizer sees a 0.5 `change`)
    moving = {**rng, "stats": {**rng["stats"], "still": [0.0, 3.0]}}
    res = check_rollout(FootagePlayer(data), frames=79, seed=1, stats_range=moving, tokenizer=tok)  # 40 frames, then held
    assert res["failures_by_stat"]["still"] >= 35  # every held frame from the 4th on


def test_a_constant_token_rollout_fails_from_its_first_frame(setup):
    world_dir, _, _, rng = setup
    w = load_world(world_dir, device="cpu")
    head = w.model.dynamics.head  # every position predicts code 7 whatever the context: a collapsed world
    head.weight.data.zero_()
    head.bias.data.fill_(-30.0)
    head.bias.data[7] = 30.0
    res = check_rollout(w, frames=6, seed=0, stats_range=rng)
    assert rng["stats"]["distinct"][0] >= 2  # real footage: at least background and square
    assert res["within_range"] == 0.0 and res["first_failure"] == 1
    assert "distinct" in res["first_failure_stats"]["outside"] and res["first_failure_stats"]["distinct"] == 1
    assert res["stats_p50"]["max_share"] == 1.0 and res["failures_by_stat"]["distinct"] == 6


def test_range_is_stored_in_the_model_card_and_used_from_there(setup, tmp_path):
    world_dir, _, _, rng = setup
    w = load_world(save_random_world(tmp_path / "w"), device="cpu")
    with pytest.raises(ValueError, match="no health range.*health calibrate"):
        check_rollout(w, frames=2)
    path = save_range(tmp_path / "w", rng)
    card = json.loads(path.read_text(encoding="utf-8"))
    assert card["health"]["stats"] == rng["stats"] and card["preset"] == "micro" and card["step"] == 0
    res = check_rollout(load_world(tmp_path / "w", device="cpu"), frames=3, policy="sticky", seed=2)
    assert res["frames"] == 3 and 0.0 <= res["within_range"] <= 1.0 and res["range"] == rng["stats"]
    with pytest.raises(ValueError, match="64-code tokenizer but this world uses 1024"):
        check_rollout(_with_vocab(w, 1024), frames=2, stats_range=rng)


def test_calibrating_keeps_a_model_card_holding_non_ascii_text_where_the_locale_is_not_utf8(tmp_path):
    """Windows reads text as cp1252 unless told: a card noting "Schnee ü 雪" made `health calibrate` fail."""
    card = save_random_world(tmp_path / "w") / "model_card.json"
    card.write_text(json.dumps({**json.loads(card.read_text(encoding="utf-8")), "notes": "Schnee ü 雪"},
                               ensure_ascii=False), encoding="utf-8")
    in_ascii_locale(f"from bridge.model.health import save_range; save_range({str(tmp_path / 'w')!r}, {{'stats': {{}}}})")
    kept = json.loads(card.read_text(encoding="utf-8"))
    assert kept["notes"] == "Schnee ü 雪" and kept["health"] == {"stats": {}}


def _with_vocab(w, vocab):
    """The range says 64 codes; pretend the world's tokenizer had `vocab` (a mismatched calibration)."""
    w.model.tokenizer.quant.num_codes = vocab
    return w


def test_bad_inputs_are_clear_errors(setup, tmp_path):
    world_dir, data, tok, rng = setup
    with pytest.raises(ValueError, match="tokenizer"):
        check_rollout(FootagePlayer(data), frames=2, stats_range=rng)
    with pytest.raises(ValueError, match="unknown policy"):
        check_rollout(FootagePlayer(data), frames=2, policy="wander", stats_range=rng, tokenizer=tok)
    with pytest.raises(ValueError, match="frames must be"):
        check_rollout(FootagePlayer(data), frames=0, stats_range=rng, tokenizer=tok)
    big = load_tokenizer(save_random_world(tmp_path / "tiny_w", preset="tiny", bank=1))
    with pytest.raises(ValueError, match=r"was trained on 64x64 frames but .* has 16x16: give --data footage of 64x64 "
                                         r"frames \(`worldbridge data generate\|import ... --size 64` makes it\)"):
        calibrate(big, data, clips=2, progress=False)


def test_cli_calibrate_writes_the_card_and_check_reads_it(setup, tmp_path):
    _, data, _, _ = setup
    world = save_random_world(tmp_path / "w")
    runner = CliRunner()
    res = runner.invoke(health, ["calibrate", "--checkpoint", str(world), "--data", str(data), "--clips", "16",
                                 "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "health" not in json.loads((world / "model_card.json").read_text(encoding="utf-8"))
    res = runner.invoke(health, ["calibrate", "--checkpoint", str(world), "--data", str(data), "--clips", "16"])
    assert res.exit_code == 0, res.output
    assert json.loads((world / "model_card.json").read_text(encoding="utf-8"))["health"]["clips"] == 16
    res = runner.invoke(health, ["check", "--checkpoint", str(world), "--frames", "4"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    assert out["frames"] == 4 and "within_range" in out and out["settings"]["top_p"] == 1.0
    res = runner.invoke(health, ["check", "--checkpoint", str(world), "--frames", "4", "--temperature", "1.3",
                                 "--top-p", "0.9"])
    out = json.loads(res.output[res.output.index("{"):])
    assert res.exit_code == 0 and (out["settings"]["temperature"], out["settings"]["top_p"]) == (1.3, 0.9)
    res = runner.invoke(health, ["check", "--checkpoint", str(world), "--frames", "4", "--top-p", "2"])
    assert res.exit_code != 0 and "top_p" in res.output
    res = runner.invoke(health, ["check", "--checkpoint", str(world), "--frames", "4", "--seed", "5", "--seeds", "3"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    per = out["per_seed"]
    assert out["seeds"] == [5, 6, 7] and [r["seed"] for r in per] == [5, 6, 7]
    assert out["within_range"] == pytest.approx(np.mean([r["within_range"] for r in per]), abs=1e-4)
    assert out["min_within_range"] == min(r["within_range"] for r in per)


def test_check_without_checkpoint_rolls_the_default_world():
    """As the README shows it: `worldbridge health check` with no --checkpoint checks the embedded default world."""
    res = CliRunner().invoke(health, ["check", "--frames", "2"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    assert report["frames"] == 2 and "world model" in report["backend"]


@pytest.mark.parametrize("cmd", ["check", "calibrate"])
def test_a_negative_seed_is_a_usage_error_naming_seed(cmd, tmp_path):
    """numpy's own "expected non-negative integer" names no option; the command line must name --seed."""
    args = ["--checkpoint", str(tmp_path)] + (["--data", str(tmp_path)] if cmd == "calibrate" else [])
    res = CliRunner().invoke(health, [cmd, *args, "--seed", "-1"])
    assert res.exit_code == 2 and "--seed" in res.output and "-1" in res.output, res.output


@pytest.mark.parametrize("cmd", ["check", "calibrate"])
def test_help_says_what_every_option_takes(cmd):
    """`health check --help` listed --frames and --device (and calibrate's --split, --seed) with no word on them."""
    command = health.commands[cmd]
    assert [p.name for p in command.params if not p.help] == []
    text = CliRunner().invoke(health, [cmd, "--help"]).output
    assert "cpu, cuda or cuda:N" in text and (cmd == "calibrate" or "Frames to roll from each seed." in text)


@pytest.mark.parametrize("cmd, missing, says", [
    ("check", "--checkpoint", "worldbridge train dynamics"),
    ("calibrate", "--checkpoint", "worldbridge train dynamics"),
    ("calibrate", "--data", "worldbridge data generate"),
])
def test_a_missing_checkpoint_or_dataset_names_the_fix(cmd, missing, says, tmp_path):
    """click's bare "Directory 'nope' does not exist." named no fix; demo, serve, bench and eval say how to make one."""
    nope = str(tmp_path / "nope")
    given = {"--checkpoint": str(save_random_world(tmp_path / "w")), "--data": str(tmp_path)}
    given[missing] = nope
    args = [a for k, v in given.items() if cmd == "calibrate" or k == "--checkpoint" for a in (k, v)]
    res = CliRunner().invoke(health, [cmd, *args])
    assert res.exit_code == 1 and nope in res.output and says in res.output, res.output


def test_progress_bars_count_frames_with_rate_and_eta(setup, capsys):
    world_dir, data, tok, rng = setup
    calibrate(tok, data, clips=4, progress=True)
    err = capsys.readouterr().err
    assert "frame/s" in err and "100%" in err and "<" in err, err[-400:]
    check_rollout(load_world(world_dir), frames=3, stats_range=rng, progress=True)
    err = capsys.readouterr().err
    assert "frame/s" in err and "3/3" in err, err[-400:]


def test_calibrating_on_footage_with_no_val_split_names_the_command_to_make_it_again(tmp_path):
    from bridge.data.writer import DatasetWriter

    with DatasetWriter(tmp_path / "ds", height=16, width=16, fps=10, action_names=None, source="sandbox") as w:
        for i in range(3):
            w.add_episode({"id": i, "seed": i, "split": "train"}, np.zeros((4, 16, 16, 3), np.uint8))
        w.finish()
    res = CliRunner().invoke(health, ["calibrate", "--checkpoint", str(trained_micro()["world"]), "--data",
                                      str(tmp_path / "ds"), "--dry-run"])
    assert res.exit_code == 1 and "has no val episodes" in res.output, res.output
    assert "worldbridge data generate ... --val-fraction" in res.output and "--split train" in res.output


def test_check_help_says_what_within_range_means_and_its_target():
    text = " ".join(CliRunner().invoke(health, ["check", "--help"]).output.split())
    for says in ("within_range (0-1, higher is better", "target 1.0", "first_failure"):
        assert says in text, (says, text)
