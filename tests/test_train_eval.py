"""`worldbridge eval`: one JSON object with every metric, and the metric helpers themselves."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bridge.cli import main
from bridge.train.evaluate import ci95, code_stats, evaluate, mapping_accuracy, psnr, ssim
from test_model_data import trained_micro, write_square_dataset

torch.set_num_threads(1)


def test_eval_reports_every_metric_on_the_val_split():
    run = trained_micro()
    res = evaluate(str(run["world"]), str(run["data"]), device="cpu", clips=4, progress=False)
    for k in ("tokenizer_psnr", "tokenizer_ssim", "codebook_usage", "latent_action_usage", "latent_action_entropy_bits",
              "true_action_accuracy", "rollout_fps"):
        assert isinstance(res[k], float), k
    assert 10 < res["tokenizer_psnr"] < 60 and 0 < res["tokenizer_ssim"] <= 1 and 0 < res["codebook_usage"] <= 1
    assert 0 < res["latent_action_usage"] <= 1 and 0 <= res["latent_action_entropy_bits"] <= 2  # 4 latent actions
    d = res["true_action_accuracy_detail"]
    assert res["true_action_accuracy"] == d["effective"]["many_to_one"]
    assert all(0 <= d[k][m] <= 1 for k in ("raw", "effective") for m in ("many_to_one", "one_to_one", "chance"))
    assert d["raw"]["n"] > 50
    assert set(res["delta_psnr"]) == set(res["delta_psnr_ci95"]) == {"1", "4", "16"}
    assert all(v > 0 for v in res["delta_psnr_ci95"].values())  # 4 clips never agree exactly
    assert res["rollout_minus_copy_last"]["1"] == pytest.approx(res["rollout_psnr"]["1"] - res["copy_last_frame_psnr"]["1"])
    assert res["rollout_psnr_ci95"]["10"] is None and res["rollout_minus_copy_last_ci95"]["3"] > 0
    # val episodes are 40 frames at 10 fps: 1 s and 3 s fit, 10 s does not
    assert res["rollout_psnr"]["10"] is None and res["copy_last_frame_psnr"]["10"] is None
    assert res["rollout_psnr"]["1"] > 5 and res["copy_last_frame_psnr"]["3"] > 5 and res["rollout_fps"] > 0
    assert res["val_episodes"] == 2
    assert "data_generated_by" not in res  # footage of unknown making: nothing invented


def undocumented(keys, heading: str) -> set[str]:
    """The keys that the section of docs/model.md under `heading` (up to the next heading as deep) does not name."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "model.md").read_text(encoding="utf-8")
    level = heading.split(" ")[0]
    start = text.index(heading)
    end = re.compile(rf"^{level} ", re.M).search(text, start + len(heading))
    section = text[start:end.start() if end else len(text)]
    return {k for k in keys if f"`{k}`" not in section}


def test_every_key_eval_prints_is_in_the_docs(tmp_path):
    """settings, rollout_frames, val_episodes and val_frames were printed but not explained anywhere."""
    import shutil

    run = trained_micro()
    data = tmp_path / "ds"
    shutil.copytree(run["data"], data)
    m = json.loads((data / "manifest.json").read_text())
    (data / "manifest.json").write_text(json.dumps({**m, "generated_by": {"episodes": 4}}))  # every key there is
    res = evaluate(str(run["world"]), str(data), device="cpu", clips=2, progress=False)
    assert {"settings", "rollout_frames", "val_episodes", "val_frames", "data_generated_by",
            "data_fingerprint"} <= set(res)
    assert not undocumented(res, "## Evaluation: `worldbridge eval"), undocumented(res, "## Evaluation: `worldbridge eval")


def test_eval_names_how_its_footage_was_generated(tmp_path):
    import shutil

    run = trained_micro()
    data = tmp_path / "ds"
    shutil.copytree(run["data"], data)
    m = json.loads((data / "manifest.json").read_text())
    (data / "manifest.json").write_text(json.dumps({**m, "generated_by": {"episodes": 4, "seed": 9}}))
    res = evaluate(str(run["world"]), str(data), device="cpu", clips=2, progress=False)
    assert res["data_generated_by"] == {"episodes": 4, "seed": 9}


def test_eval_names_its_footages_fingerprint_and_import(tmp_path):
    """The report named the footage by path only: after `data import --overwrite` there a figure could not be matched
    to the footage it was measured on, nor to the fingerprint the model cards record."""
    import shutil

    from bridge.data.dataset import VideoDataset

    run = trained_micro()
    data = tmp_path / "ds"
    shutil.copytree(run["data"], data)
    m = json.loads((data / "manifest.json").read_text())
    imported = {"sources": [{"path": "/footage/a.mp4", "bytes": 10, "modified": "2026-11-25T10:00:00"}], "fps": 10.0,
                "size": 16, "val_fraction": 0.05}
    (data / "manifest.json").write_text(json.dumps({**m, "imported_from": imported}))
    res = evaluate(str(run["tok"]), str(data), device="cpu", clips=2, progress=False)
    assert res["data_fingerprint"] == VideoDataset(data).fingerprint and res["data_fingerprint"]
    assert res["data_imported_from"] == imported and "data_generated_by" not in res
    del m["fingerprint"]  # footage made before fingerprints
    (data / "manifest.json").write_text(json.dumps(m))
    res = evaluate(str(run["tok"]), str(data), device="cpu", clips=2, progress=False)
    assert res["data_fingerprint"] is None and "data_imported_from" not in res


def test_eval_cli_prints_json_alone_on_stdout():
    run = trained_micro()
    r = CliRunner().invoke(main, ["eval", "--checkpoint", str(run["tok"]), "--data", str(run["data"]), "--json",
                                  "--quiet", "--clips", "2", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)  # a tokenizer run: tokenizer metrics only
    assert res["kind"] == "tokenizer" and res["tokenizer_psnr"] > 10 and "delta_psnr" not in res
    r = CliRunner().invoke(main, ["eval", "--checkpoint", str(run["root"] / "none"), "--data", str(run["data"])])
    assert r.exit_code != 0 and "no checkpoint at" in r.output


def test_mapping_accuracy_many_to_one_and_one_to_one():
    # latent 0,1 both mean true 2; latent 2 means true 0
    lat = np.array([0, 1, 2, 0, 1, 2] * 10)
    true = np.array([2, 2, 0, 2, 2, 0] * 10)
    acc = mapping_accuracy(lat, true, lat, true, num_latent=3, num_true=3)
    assert acc["many_to_one"] == 1.0
    assert acc["one_to_one"] == pytest.approx(4 / 6)  # only one of latents 0/1 may take true 2
    assert acc["chance"] == pytest.approx(4 / 6)


def test_ci95_is_the_normal_interval_of_the_mean():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])  # sample sd 1.291
    assert ci95(x) == pytest.approx(1.96 * 1.2910 / 2, rel=1e-3)
    assert ci95(x.repeat(4)) < ci95(x) and ci95(torch.tensor([5.0])) is None


def test_image_metrics_and_code_stats():
    x = torch.rand(3, 32, 32, 3)
    assert torch.allclose(ssim(x, x), torch.ones(3), atol=1e-5)
    assert (ssim(x, torch.rand(3, 32, 32, 3)) < 0.2).all()
    assert torch.allclose(psnr(torch.zeros(1, 4, 4, 3), torch.full((1, 4, 4, 3), 0.1)), torch.tensor([20.0]))
    usage, bits = code_stats(np.array([0, 1, 2, 3] * 5), 8)
    assert usage == 0.5 and bits == pytest.approx(2.0)


def test_true_action_map_is_scored_only_on_episodes_it_was_not_fitted_on(tmp_path):
    from bridge.data.dataset import ClipSampler, VideoDataset
    from bridge.train.evaluate import action_agreement, clips_with_actions

    lat = np.array([[0, 0], [0, 0]])
    true = np.array([[1, 1], [2, 2]])
    fit = np.array([[True, True], [False, False]])  # code 0 means action 1 on the fitted clip, 2 on the scored one
    assert action_agreement(lat, true, 2, 3, fit)["many_to_one"] == 0.0  # a score on unseen steps, not a memory
    ds = VideoDataset(write_square_dataset(tmp_path / "ds", episodes=6, length=20))
    sampler = ClipSampler(ds, 8, "val", seed=0) if ds.split("val") else ClipSampler(ds, 8, "train", seed=0)
    *_, fit = clips_with_actions(ds, sampler, 64, np.random.default_rng(0))
    assert fit.shape == (64, 7) and fit.any() and not fit.all()
    assert (fit.all(1) | ~fit.any(1)).all()  # whole clips, split by episode: no step on both sides


@pytest.mark.parametrize("source, episodes, says", [
    ("import", 3, "worldbridge data import ... --val-fraction"),
    ("sandbox", 3, "worldbridge data generate ... --val-fraction"),
    ("gymnasium:CartPole-v1", 3, "capture it again"),
    ("import", 1, "at least 2 episodes"),
])
def test_no_val_split_says_which_command_to_run_again(tmp_path, source, episodes, says):
    from bridge.data.writer import DatasetWriter

    with DatasetWriter(tmp_path / "ds", height=8, width=8, fps=10, action_names=None, source=source) as w:
        for i in range(episodes):
            w.add_episode({"id": i, "seed": i, "split": "train"}, np.zeros((4, 8, 8, 3), np.uint8))
        w.finish()
    r = CliRunner().invoke(main, ["eval", "--checkpoint", str(tmp_path), "--data", str(tmp_path / "ds")])
    assert r.exit_code == 1 and "has no val episodes" in r.output and says in r.output, r.output


def test_eval_progress_counts_frames_with_rate_and_eta(capsys):
    import io

    from tqdm import tqdm

    from bridge.model.world import load_world
    from bridge.train.evaluate import rollout

    run = trained_micro()
    evaluate(str(run["world"]), str(run["data"]), device="cpu", clips=2, progress=True)
    err = capsys.readouterr().err
    assert "frame/s" in err and "100%" in err and "<" in err, err[-400:]  # a rate and an ETA, in frames, to the end
    world = load_world(run["world"], device="cpu")
    first = torch.zeros(3, 16, 16, 3, dtype=torch.uint8)
    with tqdm(total=15, file=io.StringIO()) as bar:  # a rollout moves the bar frame by frame, not once at its end
        rollout(world, first, torch.zeros(3, 5, dtype=torch.long), torch.Generator(), bar)
        assert bar.n == 15


def test_a_dataset_of_another_frame_size_names_the_footage_to_give(tmp_path):
    run = trained_micro()  # a 16x16 world
    data = write_square_dataset(tmp_path / "ds32", episodes=4, size=32)
    r = CliRunner().invoke(main, ["eval", "--checkpoint", str(run["world"]), "--data", str(data), "--quiet"])
    assert r.exit_code == 1 and "32x32" in r.output and "give --data footage of 16x16 frames" in r.output, r.output
    assert "--size 16" in r.output and "Traceback" not in r.output


def test_more_clips_than_the_val_split_holds_is_refused_before_any_rollout(monkeypatch):
    """2 val episodes of 40 frames hold 20 distinct 31-frame rollout clips: a 21st would score one clip twice and
    narrow every _ci95 on no new evidence."""
    import bridge.train.evaluate as ev

    run = trained_micro()
    monkeypatch.setattr(ev, "rollout", lambda *a, **k: pytest.fail("rolled out before refusing --clips"))
    r = CliRunner().invoke(main, ["eval", "--checkpoint", str(run["world"]), "--data", str(run["data"]), "--clips",
                                  "21", "--quiet"])
    assert r.exit_code == 1 and "--clips 21" in r.output and "20 distinct" in r.output, r.output
    assert "--clips 20 or fewer" in r.output and "val episodes" in r.output
    assert ev.evaluate(str(run["tok"]), str(run["data"]), device="cpu", clips=21, progress=False)["tokenizer_psnr"] > 10


def test_help_says_what_each_figure_measures_which_way_is_better_and_its_target():
    out = CliRunner().invoke(main, ["eval", "--help"]).output
    for says in ("better higher", "tokenizer_psnr (dB, target 28)", "codebook_usage", "true_action_accuracy",
                 "delta_psnr (dB", "target 1.5", "rollout_minus_copy_last", "target +3", "rollout_fps", "_ci95"):
        assert says in out, (says, out)


def test_eval_rolls_out_the_world_as_play_does_bf16_included(monkeypatch):
    """eval rolled out with its own copy of reset/step in fp32 while play ran bf16 (CUDA, AVX-512-BF16 CPUs): its
    figures were not the played world's. Now a rollout is play's, frame for frame, under play's autocast."""
    import bridge.model.world as world
    import bridge.train.evaluate as ev
    from bridge.backend import Prompt

    run = trained_micro()
    monkeypatch.setattr(world, "bf16_by_default", lambda device: True)  # as on a CPU with AVX-512 BF16
    w = world.load_world(run["world"], device="cpu")
    assert w.autocast and w.model.dynamics.act_embed.weight.dtype == torch.float32  # embeddings stay fp32
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    w.reset(Prompt(seed=5, image=image))
    played = np.stack([w.step(a) for a in (2, 0, 3, 1)])
    out = ev.rollout(w, torch.from_numpy(image)[None], torch.tensor([[2, 0, 3, 1]]), torch.Generator().manual_seed(5))
    assert np.array_equal(world.to_uint8(out[0]), played)


@pytest.mark.parametrize("bf16", [True, False])
def test_eval_says_whether_its_rollouts_ran_bf16(monkeypatch, bf16):
    import bridge.model.world as world
    import bridge.train.evaluate as ev

    run = trained_micro()
    monkeypatch.setattr(world, "bf16_by_default", lambda device: bf16)
    assert ev.start_rollout is world.start_rollout  # the one start of a rollout, play's
    seen = []

    def start(model, tokens, *a, **k):
        lin = next(m for m in model.dynamics.modules() if isinstance(m, torch.nn.Linear))
        seen.append((torch.is_autocast_enabled("cpu"), lin.weight.dtype == torch.bfloat16))
        return world.start_rollout(model, tokens, *a, **k)

    monkeypatch.setattr(ev, "start_rollout", start)
    res = ev.evaluate(str(run["world"]), str(run["data"]), device="cpu", clips=2, progress=False)
    assert seen == [(bf16, bf16)] * 2  # the inferred- and the random-action rollout
    assert res["rollout_frames"]["autocast_bf16"] is bf16 and res["rollout_ms"]["autocast_bf16"] is bf16


def test_delta_psnr_is_exactly_zero_for_a_world_whose_actions_do_nothing(tmp_path):
    """The random-action rollout drew its MaskGIT noise after drawing the random actions from the same generator, so
    delta_psnr carried independent sampling noise on top of the actions' effect."""
    import shutil

    from bridge.model.checkpoint import read_tensors, save_tensors

    run = trained_micro()
    deaf = tmp_path / "deaf"
    shutil.copytree(run["world"], deaf)
    t = read_tensors(deaf / "model.safetensors")
    e = t["dynamics.act_embed.weight"]
    t["dynamics.act_embed.weight"] = e[:1].expand_as(e).clone()  # every action, the null one too, is one vector
    save_tensors(deaf / "model.safetensors", t)
    res = evaluate(str(deaf), str(run["data"]), device="cpu", clips=4, progress=False)
    assert res["delta_psnr"] == {"1": 0.0, "4": 0.0, "16": 0.0}
