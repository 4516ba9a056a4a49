"""`worldbridge train decoder`: only the decoder learns, so tokens (and everything built on them) keep their meaning."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from bridge.cli import main
from bridge.data.dataset import VideoDataset
from bridge.model.checkpoint import load_model
from bridge.model.world import load_world
from test_prompts_helpers import sandbox_dataset, save_micro_world

DECODER = ("tokenizer.from_code.", "tokenizer.decoder.", "tokenizer.patch_out.")


def _run(*args: str):
    return CliRunner().invoke(main, ["train", "decoder", *args, "--quiet"])


def test_decoder_training_sharpens_frames_and_keeps_every_token(tmp_path):
    world = save_micro_world(tmp_path / "world")
    (world / "events.json").write_text("{}")  # the world's other files come along
    data = str(sandbox_dataset())
    out = tmp_path / "sharp"
    r = _run("--world", str(world), "--data", data, "--out", str(out), "--steps", "40", "--lr", "3e-3",
             "--batch", "4", "--ckpt-every", "20")
    assert r.exit_code == 0, r.output
    card = json.loads((out / "model_card.json").read_text())["decoder"]
    assert card["steps"] == 40 and card["val_psnr_after"] > card["val_psnr_before"] + 1.0, card
    assert (out / "events.json").read_text() == "{}"

    _, before, _, _ = load_model(world)
    _, after, _, _ = load_model(out)
    assert set(before) == set(after)
    for k in before:
        same = torch.equal(before[k], after[k])
        assert same != k.startswith(DECODER), k  # the decoder changed; the encoder, codebook, dynamics, LAM did not

    ds = VideoDataset(data)
    clip = np.array(ds.frames(ds.episodes[0])[:4])
    tok_a, tok_b = (load_world(p, device="cpu").model.tokenizer for p in (world, out))
    x = torch.from_numpy(clip)[None]
    assert torch.equal(tok_a.encode(x)[0], tok_b.encode(x)[0])  # the same tokens for the same pixels

    r = _run("--world", str(world), "--data", data, "--out", str(out), "--steps", "10", "--batch", "4")
    assert r.exit_code == 0, r.output
    again = json.loads((out / "model_card.json").read_text())["decoder"]
    assert again["steps"] == 50 and again["val_psnr_before"] == card["val_psnr_before"]  # resumed, not restarted


def test_a_world_with_text_prompts_keeps_them_after_decoder_training(tmp_path):
    from bridge.backend import Prompt
    from bridge.prompts.train import PromptTrainOptions, train_first_frame

    world = save_micro_world(tmp_path / "world")
    data = str(sandbox_dataset())
    train_first_frame(PromptTrainOptions(world=str(world), data=data, steps=2, batch=4, preset="micro",
                                         encoder="hashing", max_frames=20, progress=False))
    r = _run("--world", str(world), "--data", data, "--out", str(tmp_path / "sharp"), "--steps", "3", "--batch", "2")
    assert r.exit_code == 0, r.output
    w = load_world(tmp_path / "sharp", device="cpu")  # the first-frame model still fits: the tokens did not change
    assert w.prompts.text_prompts and w.reset(Prompt(seed=1, text="a snowy level at night")).shape == (64, 64, 3)


def test_decoder_training_refuses_bad_input(tmp_path):
    data = str(sandbox_dataset())
    r = _run("--world", str(tmp_path / "nope"), "--data", data, "--out", str(tmp_path / "o"))
    assert r.exit_code != 0 and "nope" in r.output
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    world = save_micro_world(tmp_path / "w")
    r = _run("--world", str(world), "--data", data, "--out", str(busy))
    assert r.exit_code != 0 and "not a decoder run" in r.output and (busy / "notes.txt").read_text() == "mine"
    r = _run("--world", str(world), "--data", str(tmp_path / "no_data"), "--out", str(tmp_path / "o2"))
    assert r.exit_code != 0 and not (tmp_path / "o2").exists()  # nothing half-made that would refuse the rerun
    (world / "train_state.safetensors").write_bytes(b"the world's own training state")
    r = _run("--world", str(world), "--data", data, "--out", str(tmp_path / "o3"), "--steps", "1", "--batch", "2")
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "o3" / "train_state.safetensors").exists()  # `train dynamics` there would undo the decoder


def test_a_new_out_holding_only_a_file_managers_litter_counts_as_new(tmp_path):
    """`train decoder` refused an --out holding only macOS Finder's .DS_Store or Windows' desktop.ini: it is new."""
    out = tmp_path / "sharp"
    out.mkdir()
    (out / ".DS_Store").write_bytes(b"Bud1")
    (out / "desktop.ini").write_text("[.ShellClassInfo]")
    r = _run("--world", str(save_micro_world(tmp_path / "world")), "--data", str(sandbox_dataset()), "--out", str(out),
             "--steps", "1", "--batch", "2")
    assert r.exit_code == 0, r.output
    assert load_model(out, kind="world")[2]["decoder"]["steps"] == 1


def test_footage_of_another_size_is_refused_with_the_size_it_needs(tmp_path):
    from test_model_data import write_square_dataset

    world = save_micro_world(tmp_path / "w")
    small = write_square_dataset(tmp_path / "sq", episodes=4, length=12)
    r = _run("--world", str(world), "--data", str(small), "--out", str(tmp_path / "o"))
    assert r.exit_code == 1 and "was trained on 64x64 frames but" in r.output and "sq has 16x16" in r.output, r.output
    assert "give --data footage of 64x64 frames" in r.output, r.output
    assert not (tmp_path / "o").exists()


def test_adversarial_decoder_training_keeps_every_token_and_resumes_its_critic(tmp_path):
    from bridge.model.checkpoint import read_tensors, save_tensors
    from bridge.train.decoder import DISCRIMINATOR

    world = save_micro_world(tmp_path / "world")
    data = str(sandbox_dataset())
    out = tmp_path / "adv"
    r = _run("--world", str(world), "--data", data, "--out", str(out), "--steps", "6", "--batch", "2",
             "--ckpt-every", "3", "--adv", "0.5", "--adv-start", "2")
    assert r.exit_code == 0, r.output
    assert "weather particles" in r.output
    card = json.loads((out / "model_card.json").read_text())["decoder"]
    assert card["adv"] == 0.5 and card["train_metrics"]["adv_weight"] > 0, card  # the decoder felt the critic
    assert set(card["val_particles_after"]) == {"real", "reconstructed"}
    _, before, _, _ = load_model(world)
    _, after, _, _ = load_model(out)
    assert all(torch.equal(before[k], after[k]) != k.startswith(DECODER) for k in before)
    critic = read_tensors(out / DISCRIMINATOR)

    marked = {k: v * 3 if k.endswith("original") else v for k, v in critic.items()}  # a critic no init would give
    save_tensors(out / DISCRIMINATOR, marked)
    r = _run("--world", str(world), "--data", data, "--out", str(out), "--steps", "1", "--batch", "2", "--adv", "0.5")
    assert r.exit_code == 0, r.output
    moved = read_tensors(out / DISCRIMINATOR)  # one more step of the critic read back from its file
    weights = [k for k in critic if k.endswith("original")]
    dist = lambda a, b: sum(float((a[k] - b[k]).norm()) for k in weights)  # noqa: E731
    assert set(moved) == set(critic) and 0 < dist(marked, moved) < 0.1 * dist(critic, moved)


def test_the_adversarial_weight_balances_the_two_gradients_at_the_last_layer():
    from bridge.train.discriminator import PatchDiscriminator, adaptive_weight, d_hinge_loss, g_hinge_loss

    torch.manual_seed(0)
    last = torch.nn.Linear(4, 64 * 64 * 3)
    x = last(torch.randn(2, 4)).view(2, 64, 64, 3).sigmoid()
    rec = ((x - 0.5) ** 2).mean()
    adv = g_hinge_loss(PatchDiscriminator(code_dim=2, ch=4)(x, torch.randn(2, 64, 2)))
    w = adaptive_weight(rec, adv, last.weight, 0.5)
    g_rec = torch.autograd.grad(rec, last.weight, retain_graph=True)[0].norm()
    g_adv = torch.autograd.grad(adv, last.weight, retain_graph=True)[0].norm()
    assert w.item() == pytest.approx(0.5 * g_rec.item() / (g_adv.item() + 1e-4), rel=1e-5)
    assert (torch.autograd.grad(w * adv, last.weight)[0].norm() - 0.5 * g_rec).abs() < 0.05 * g_rec
    critic, frame = PatchDiscriminator(code_dim=2, ch=4), torch.rand(1, 64, 64, 3)
    a, b = critic(frame, torch.zeros(1, 64, 2)), critic(frame, torch.ones(1, 64, 2))
    assert a.shape == (1, 16, 16) and not torch.allclose(a, b)  # the same frame, judged against other codes
    assert d_hinge_loss(torch.full((3,), 2.0), torch.full((3,), -2.0)).item() == 0.0  # both sides past their margin
    assert d_hinge_loss(torch.zeros(3), torch.zeros(3)).item() == 2.0


def test_detail_weighting_makes_the_decoder_draw_a_likely_snowflake_that_plain_mse_leaves_grey():
    from bridge.train.decoder import detail_weights

    flake = torch.zeros(1, 1, 8, 8, 3)
    flake[0, 0, 4, 4] = 1.0  # the same token: half the time it hides a flake at (4, 4), half the time plain sky
    sky = torch.zeros_like(flake)
    pixel = torch.linspace(0, 1, 101)  # what a decoder could draw at (4, 4)

    def best(detail: float) -> float:
        loss = [sum(((p - t[0, 0, 4, 4, 0]) ** 2 * (detail_weights(t, detail)[0, 0, 4, 4, 0] if detail else 1))
                    for t in (flake, sky)) for p in pixel]
        return float(pixel[int(torch.stack(loss).argmin())])

    assert abs(best(0.0) - 0.5) < 0.02  # plain MSE: a grey smudge, no snowflake by the checks' measure
    assert best(20.0) > 0.85  # weighted: a white flake, since the flake's pixel counts ~10x in the frames it is real
    w = detail_weights(flake, 20.0)
    assert torch.allclose(w.mean((2, 3)), torch.ones(1, 1, 1)) and w[0, 0, 0, 0, 0] < w[0, 0, 4, 4, 0]


def test_decoder_training_with_detail_weighting_records_it_and_keeps_every_token(tmp_path):
    world = save_micro_world(tmp_path / "world")
    out = tmp_path / "detailed"
    r = _run("--world", str(world), "--data", str(sandbox_dataset()), "--out", str(out), "--steps", "6",
             "--batch", "2", "--detail", "20")
    assert r.exit_code == 0, r.output
    card = json.loads((out / "model_card.json").read_text())["decoder"]
    assert card["detail"] == 20 and card["steps"] == 6, card
    _, before, _, _ = load_model(world)
    _, after, _, _ = load_model(out)
    assert all(torch.equal(before[k], after[k]) != k.startswith(DECODER) for k in before)


def test_a_run_stopped_before_its_first_save_resumes_on_a_rerun(tmp_path, monkeypatch):
    import bridge.train.decoder as dec

    world, data, out = save_micro_world(tmp_path / "world"), str(sandbox_dataset()), tmp_path / "sharp"

    def ctrl_c(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(dec, "held_out", ctrl_c)  # Ctrl-C while the copied world is measured, before any step
    r = _run("--world", str(world), "--data", data, "--out", str(out), "--steps", "2", "--batch", "2")
    assert r.exit_code == 130 and (out / "model.safetensors").is_file()
    monkeypatch.undo()
    r = _run("--world", str(world), "--data", data, "--out", str(out), "--steps", "2", "--batch", "2")
    assert r.exit_code == 0, r.output
    assert json.loads((out / "model_card.json").read_text())["decoder"]["steps"] == 2


def test_every_reported_psnr_is_the_one_formula():
    """The training bar, the decoder's loss and held-out check and `worldbridge eval` each wrote -10 log10(mse)
    themselves; they share psnr_from_mse now (MSE of frames in [0, 1], floored at 1e-10: at most 100 dB)."""
    from bridge.model.presets import get_preset
    from bridge.model.tokenizer import VideoTokenizer, psnr_from_mse, to_float
    from bridge.train.decoder import decoder_loss, held_out
    from bridge.train.evaluate import psnr

    assert psnr_from_mse(torch.tensor([0.01, 0.0])).tolist() == pytest.approx([20.0, 100.0])
    a, b = torch.rand(2, 3, 8, 8, 3), torch.rand(2, 3, 8, 8, 3)
    assert torch.allclose(psnr(a, b), psnr_from_mse(((a - b) ** 2).flatten(-3).mean(-1)))
    torch.manual_seed(0)
    tok = VideoTokenizer(get_preset("micro").tokenizer, 16, 16).eval()
    clips = torch.randint(0, 256, (2, 4, 16, 16, 3), dtype=torch.uint8)
    res = tok(clips)
    assert torch.allclose(res["psnr"], psnr_from_mse(res["mse"]))
    assert torch.allclose(decoder_loss(tok, clips)["psnr"], psnr_from_mse(res["mse"]))
    with torch.no_grad():
        per_clip = ((tok.decode(tok.encode(clips)[0]) - to_float(clips)) ** 2).flatten(1).mean(1)
    assert held_out(tok, clips.numpy())[0] == pytest.approx(float(psnr_from_mse(per_clip).mean()), abs=1e-5)


def test_a_rerun_draws_on_instead_of_replaying_the_first_runs_random_numbers(tmp_path, monkeypatch):
    """Every rerun re-seeded torch with --seed alone, so it replayed the torch draws its first run began with."""
    import bridge.train.decoder as dec

    states, set_lr = [], dec.set_lr
    monkeypatch.setattr(dec, "set_lr", lambda opt, i, *a: (states.append(torch.random.get_rng_state()),
                                                          set_lr(opt, i, *a))[1])
    world, data, out = save_micro_world(tmp_path / "world"), str(sandbox_dataset()), tmp_path / "sharp"
    for _ in range(2):
        r = _run("--world", str(world), "--data", data, "--out", str(out), "--steps", "1", "--batch", "2")
        assert r.exit_code == 0, r.output
    assert len(states) == 2 and not torch.equal(states[0], states[1])


def test_a_rerun_keeps_the_runs_own_settings_and_a_given_one_wins(tmp_path, monkeypatch):
    """A rerun without --ckpt-every fell back to 200 (--max-minutes to none, --lr, --batch, --seed, --steps to their
    defaults): a decoder run keeps its own settings now, as tokenizer and dynamics runs do, and a given one wins."""
    import bridge.train.decoder as dec

    saves, save_model = [], dec.save_model
    monkeypatch.setattr(dec, "save_model", lambda out, kind, cfg, t, card, step: (
        saves.append(card["decoder"]["steps"]), save_model(out, kind, cfg, t, card, step)))
    world, data, out = save_micro_world(tmp_path / "world"), str(sandbox_dataset()), tmp_path / "sharp"
    base = ["--world", str(world), "--data", data, "--out", str(out)]
    r = _run(*base, "--steps", "2", "--batch", "2", "--lr", "1e-3", "--seed", "3", "--ckpt-every", "1",
             "--max-minutes", "30")
    assert r.exit_code == 0, r.output
    r = _run(*base, "--steps", "2")
    assert r.exit_code == 0, r.output
    assert saves == [1, 2, 2, 3, 4, 4]  # its own --ckpt-every 1, not 200
    card = json.loads((out / "model_card.json").read_text())["decoder"]
    assert {k: card[k] for k in ("batch", "lr", "seed", "ckpt_every", "max_minutes")} == \
        {"batch": 2, "lr": 1e-3, "seed": 3, "ckpt_every": 1, "max_minutes": 30.0}
    r = _run(*base, "--ckpt-every", "2")  # a given option wins; --steps is the run's own (2 a run)
    assert r.exit_code == 0, r.output
    assert saves[6:] == [6, 6]
    card = json.loads((out / "model_card.json").read_text())["decoder"]
    assert card["steps"] == 6 and card["steps_per_run"] == 2 and card["ckpt_every"] == 2


def test_a_copy_killed_midway_leaves_a_temp_the_next_decoder_run_removes(tmp_path, monkeypatch):
    """`train decoder` killed while copying the world into --out left its hidden temp folder (a 43 MB world) beside
    --out forever; the next run to that --out removes it once its process is gone."""
    import bridge.train.decoder as D
    from helpers import dead_pid
    from test_model_data import save_random_world

    world = save_random_world(tmp_path / "world")
    with monkeypatch.context() as m:  # the copy of a process that is then killed: nothing of it cleans up
        m.setattr(os, "getpid", lambda gone=dead_pid(): gone)
        m.setattr(D.shutil, "copytree", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        m.setattr(D.shutil, "rmtree", lambda *a, **k: None)
        with pytest.raises(KeyboardInterrupt):
            D._copy_world(world, tmp_path / "dec")
    assert len(list(tmp_path.iterdir())) == 2
    D._copy_world(world, tmp_path / "dec")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dec", "world"]


def test_footage_too_short_for_a_clip_is_refused_before_the_world_is_copied(tmp_path):
    from bridge.data.generate import GenerateConfig, generate

    short = generate(GenerateConfig(episodes=4, frames=3, workers=1), tmp_path / "short", progress=False)["out"]
    r = _run("--world", str(save_micro_world(tmp_path / "world")), "--data", short, "--out", str(tmp_path / "o"))
    assert r.exit_code == 1 and "episodes of 4 frames or more" in r.output and "--frames 4" in r.output, r.output
    assert not (tmp_path / "o").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["short", "world"]


def test_max_minutes_0_removes_a_reruns_kept_budget():
    """A decoder run's --max-minutes was kept on every rerun and could not be removed: 0 is no limit, recorded as none."""
    from bridge.train.decoder import KEPT, DecoderTrainOptions
    from bridge.train.loop import kept_options
    from bridge.train.options import DECODER_DEFAULTS

    opts = DecoderTrainOptions(world="w", data=["d"], out="o", max_minutes=0.0)
    assert kept_options(opts, {"max_minutes": 30.0}, DECODER_DEFAULTS, KEPT).max_minutes is None
    assert kept_options(DecoderTrainOptions(world="w", data=["d"], out="o"), {"max_minutes": 30.0}, DECODER_DEFAULTS,
                        KEPT).max_minutes == 30.0  # (a bare rerun keeps it)


def test_ctrl_c_says_which_step_it_saves_where_as_the_pretraining_stages_do(tmp_path, monkeypatch):
    """Only `train tokenizer|dynamics` said "interrupted: saving step N to OUT ..."; the decoder saved in silence."""
    import bridge.train.decoder as dec

    world, data, out = save_micro_world(tmp_path / "world"), str(sandbox_dataset()), tmp_path / "sharp"
    calls, loss = [], dec.decoder_loss

    def stopped_at_the_third_step(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return loss(*a, **k)

    monkeypatch.setattr(dec, "decoder_loss", stopped_at_the_third_step)
    r = _run("--world", str(world), "--data", data, "--out", str(out), "--steps", "10", "--batch", "2")
    assert r.exit_code == 130, r.output
    assert f"interrupted: saving step 2 to {out} ..." in r.output, r.output
    assert json.loads((out / "model_card.json").read_text())["decoder"]["steps"] == 2


def test_device_is_an_option_as_for_the_other_training_stages_and_sets_the_autocast(tmp_path, monkeypatch):
    """`train decoder` had no --device and took its bf16 choice from the CPU even beside a GPU: it now runs where
    --device (or the default, cuda when present) says, with that device's autocast rule, like `train tokenizer`."""
    import bridge.model.world as mw

    world, data = save_micro_world(tmp_path / "world"), str(sandbox_dataset())
    r = _run("--world", str(world), "--data", data, "--out", str(tmp_path / "o"), "--device", "bogus")
    assert r.exit_code == 1 and "unknown device 'bogus': use cpu, cuda or cuda:N" in r.output, r.output
    assert not (tmp_path / "o").exists()  # refused before the world is copied
    if not torch.cuda.is_available():
        r = _run("--world", str(world), "--data", data, "--out", str(tmp_path / "o"), "--device", "cuda")
        assert r.exit_code == 1 and "CUDA is not available: pass --device cpu" in r.output, r.output
    asked, bf16 = [], mw.bf16_by_default
    monkeypatch.setattr(mw, "bf16_by_default", lambda d: asked.append(d) or bf16(d))
    r = _run("--world", str(world), "--data", data, "--out", str(tmp_path / "o"), "--device", "cpu", "--steps", "1",
             "--batch", "2")
    assert r.exit_code == 0, r.output
    assert asked == [torch.device("cpu")]


def test_amp_is_an_option_as_for_the_other_stages_and_the_card_records_it_and_the_device(tmp_path):
    """`train decoder` had no --amp/--no-amp (bf16 by the machine alone) and its card said neither where it ran nor
    whether bf16 was on: the option is the other stages' (kept by a rerun, a given one wins), and the card's
    `decoder` section records `device`, `amp` as given and `amp_bf16` as run."""
    world, data, out = save_micro_world(tmp_path / "world"), str(sandbox_dataset()), tmp_path / "o"

    def card_after(*more: str) -> dict:
        r = _run("--world", str(world), "--data", data, "--out", str(out), "--device", "cpu", "--steps", "1",
                 "--batch", "2", *more)
        assert r.exit_code == 0, r.output
        return json.loads((out / "model_card.json").read_text())["decoder"]

    card = card_after("--no-amp")
    assert (card["device"], card["amp"], card["amp_bf16"]) == ("cpu", False, False), card
    card = card_after()  # a rerun keeps its own
    assert (card["amp"], card["amp_bf16"]) == (False, False), card
    card = card_after("--amp")  # a given one wins
    assert (card["device"], card["amp"], card["amp_bf16"]) == ("cpu", True, True), card
