"""Training end to end on a tiny dataset: losses fall, checkpoints round-trip, runs resume, CLI errors are clear."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner

from bridge.cli import main
from bridge.model.checkpoint import CheckpointError, load_model, load_train_state, save_train_state
from bridge.model.genie import WorldModel
from bridge.train.loop import lr_at
from bridge.train.trainer import TrainOptions, make_optimizer, train
from test_model_data import save_random_world, trained_micro, write_square_dataset

torch.set_num_threads(1)


def _rows(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]


def test_micro_tokenizer_and_dynamics_overfit():
    run = trained_micro()
    tok, world = _rows(run["tok"] / "metrics.csv"), _rows(run["world"] / "metrics.csv")
    assert tok[-1]["step"] == 120 and world[-1]["step"] == 120
    assert tok[-1]["mse"] < 0.25 * tok[0]["mse"], (tok[0], tok[-1])  # reconstruction falls well below start
    assert world[-1]["ce"] < 0.5 * world[0]["ce"], (world[0], world[-1])  # next-frame token loss too
    assert world[-1]["lam_rel_mse"] < 1.0  # latent actions explain part of each change
    assert world[-1]["lam_usage"] > 0.25  # more than one latent action in use
    card = json.loads((run["world"] / "model_card.json").read_text())
    assert card["step"] == 120 and card["tokenizer_from"]["step"] == 120 and card["data"]["frames"] == 480
    assert "metrics" in card and card["preset"] == "micro"


def test_world_run_dir_is_self_contained_and_loads():
    run = trained_micro()
    model, card, header = WorldModel.load(run["world"])
    tok_cfg, tok_tensors, _, _ = load_model(run["tok"], kind="tokenizer")
    assert header["kind"] == "world" and model.bank.shape[0] == 64
    for k, v in tok_tensors.items():  # the frozen tokenizer was copied in unchanged
        assert torch.equal(model.state_dict()[k], v)


@pytest.mark.parametrize("device, says", [
    ("bogus", "unknown device 'bogus': use cpu, cuda or cuda:N"),  # the words every command uses (pick_device)
    ("meta", "--device 'meta': training runs on cpu, cuda or cuda:N"),
])
def test_training_reads_device_as_every_command_does(device, says):
    from bridge.train.trainer import Dist

    with pytest.raises(ValueError, match=f"^{re.escape(says)}$"):
        Dist(device)
    assert Dist("cpu").device == torch.device("cpu") and Dist(None).device == torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("command", [["tokenizer"], ["dynamics"], ["decoder", "--world", "W"],
                                     ["prompts", "events", "--world", "W"], ["prompts", "first-frame", "--world", "W"]])
def test_every_training_command_refuses_a_device_training_never_ran_on(tmp_path, command):
    """`train decoder` and the prompt stages took `--device mps` (and went on to fail somewhere in the run) where
    `train tokenizer|dynamics` refused it: every training command now refuses it alike, before anything is written."""
    args = [a if a != "W" else str(tmp_path / "world") for a in command]
    r = CliRunner().invoke(main, ["train", *args, "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
                                  "--device", "mps", "--quiet"])
    assert r.exit_code == 1 and "--device 'mps': training runs on cpu, cuda or cuda:N" in r.output, r.output
    assert not (tmp_path / "out").exists()


def _train_commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    return [item for name, cmd in group.commands.items() for item in (
        _train_commands(cmd, (*path, name)) if isinstance(cmd, click.Group) else [((*path, name), cmd)])]


def test_every_training_commands_help_words_one_idea_one_way():
    """`train decoder --help` said "a rerun keeps its own" beside its --seed's "a resumed run keeps its own" (the
    other stages' words), and "the lr decays" where the others say "the learning rate"; `train prompts` listed --out
    last: one idea, one wording, one place."""
    from bridge.train.cli import train as train_group

    commands = _train_commands(train_group)
    assert {p for p, _ in commands} >= {("tokenizer",), ("dynamics",), ("decoder",), ("prompts", "events"),
                                        ("prompts", "first-frame")}
    for path, cmd in commands:
        names = [p.name for p in cmd.params]
        assert names.index("out") < names.index("steps"), (path, names)  # --out near the top ("prompts" had it last)
        for p in cmd.params:
            words = getattr(p, "help", None) or ""
            assert "a rerun keeps" not in words and "the lr " not in words, (path, p.name, words)
            if "keeps its own" in words:  # ("a resumed run keeps its own unless given", the --guidance of events)
                assert any(w in words for w in ("a resumed run keeps its own]", "a resumed run, or --init-from, keeps "
                                                                                 "its own]")), (path, p.name, words)


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    path = save_random_world(tmp_path / "w")
    a, _, _ = WorldModel.load(path)
    a.train()
    opt = make_optimizer(a, 1e-3, 0.5)
    a.dynamics.training_loss(torch.randint(0, 64, (2, 3, 16)), torch.randint(0, 4, (2, 2)))["loss"].backward()
    opt.step()
    save_train_state(tmp_path / "w", a, opt, {"step": 7})
    b, _, _ = WorldModel.load(path)
    opt_b = make_optimizer(b, 1e-3, 0.5)
    meta, _ = load_train_state(tmp_path / "w", b, opt_b)
    assert meta["step"] == 7
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), k
    sa, sb = opt.state_dict()["state"], opt_b.state_dict()["state"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*worldbridge train dynamics"):
        WorldModel.load(tmp_path / "nothing")
    run = trained_micro()
    with pytest.raises(CheckpointError, match="holds a tokenizer checkpoint"):
        WorldModel.load(run["tok"])
    bad = save_random_world(tmp_path / "bad")
    cfg = json.loads((bad / "config.json").read_text())
    cfg["world"]["dynamics"]["dim"] = 48
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not match the model"):
        WorldModel.load(bad)


def test_resume_continues_from_the_saved_step(tmp_path):
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    opts = dict(stage="tokenizer", data=str(ds), out=str(tmp_path / "run"), preset="micro", progress=False, log_every=2)
    train(TrainOptions(steps=4, **opts))
    first = load_model(tmp_path / "run")[1]
    train(TrainOptions(steps=6, **opts))  # resumes at 4, runs 2 more
    rows = _rows(tmp_path / "run" / "metrics.csv")
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["step"] == 6
    assert any(not torch.equal(first[k], v) for k, v in load_model(tmp_path / "run")[1].items())
    # a time budget already spent by the run stops it before another step (a fresh run's: after one, with a checkpoint)
    assert train(TrainOptions(steps=50, max_minutes=1e-9, **opts)) == {"step": 6, "unchanged": True}
    with pytest.raises(ValueError, match="--preset micro run"):
        train(TrainOptions(**{**opts, "preset": "tiny"}, steps=8))


def test_a_resume_draws_on_instead_of_replaying_its_first_steps_random_numbers(tmp_path, monkeypatch):
    """Every resume re-seeded torch as at step 0: a run resumed at step 2 drew step 0's masks, noise and code resets
    again (on other clips). Its streams now follow from (--seed, step, rank), so one resumed at the same step draws
    the same numbers."""
    import bridge.train.trainer as T

    states, set_lr = [], T.set_lr
    monkeypatch.setattr(T, "set_lr", lambda opt, step, *a: (states.append((step, torch.random.get_rng_state())),
                                                           set_lr(opt, step, *a))[1])
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    for out in ("a", "b"):
        opts = dict(stage="tokenizer", data=str(ds), out=str(tmp_path / out), preset="micro", progress=False)
        train(TrainOptions(steps=2, **opts))
        train(TrainOptions(steps=3, **opts))  # resumes at 2
    assert [step for step, _ in states] == [0, 1, 2] * 2
    assert not torch.equal(states[0][1], states[2][1]) and torch.equal(states[2][1], states[5][1])


def test_a_bare_rerun_resumes_with_the_runs_own_steps_batch_lr_and_budget(tmp_path):
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    bare = dict(stage="tokenizer", data=str(ds), out=str(tmp_path / "run"), progress=False, log_every=10)
    assert train(TrainOptions(preset="micro", steps=6, batch=2, lr=1e-4, max_minutes=1e-9, command="first", **bare))["step"] == 1
    assert _rows(tmp_path / "run" / "metrics.csv")[-1]["step"] == 1  # the step the budget stopped it at is logged
    assert train(TrainOptions(command="again", **bare)) == {"step": 1, "unchanged": True}  # the budget is spent
    assert train(TrainOptions(max_minutes=60.0, command="more", **bare))["step"] == 6  # a given option counts
    card = json.loads((tmp_path / "run" / "model_card.json").read_text())
    assert card["train"]["steps_total"] == 6  # not the preset's 200
    assert card["train"]["batch_per_rank"] == 2 and card["train"]["lr"] == 1e-4 and card["train"]["max_minutes"] == 60.0
    assert card["command"] == "first" and card["resumed_with"] == ["more"]
    assert max(r["lr"] for r in _rows(tmp_path / "run" / "metrics.csv")) <= 1e-4


def test_a_bare_cli_rerun_keeps_the_runs_own_checkpointing_seed_and_amp(tmp_path, monkeypatch):
    """A resume without --ckpt-every fell back to 500 (and --seed to 0, --amp to the device's): every option a run
    records is now the run's own on a resume unless given again, and a given one wins and is recorded."""
    import bridge.train.trainer as trainer
    from bridge.model.world import bf16_by_default

    saves, save_state = [], trainer.save_train_state
    monkeypatch.setattr(trainer, "save_train_state", lambda out, m, o, meta: (saves.append(meta["step"]),
                                                                               save_state(out, m, o, meta)))
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    amp = "--amp" if not bf16_by_default(torch.device("cpu")) else "--no-amp"  # not what the device picks by itself
    base = ["train", "tokenizer", "--data", str(ds), "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet"]
    r = CliRunner().invoke(main, [*base, "--preset", "micro", "--steps", "2", "--ckpt-every", "2",
                                  "--ckpt-minutes", "30", "--seed", "5", amp])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, [*base, "--steps", "6"])
    assert r.exit_code == 0, r.output
    assert saves == [2, 4, 6]  # its own --ckpt-every 2, not 500
    card = json.loads((tmp_path / "run" / "model_card.json").read_text())
    assert card["seed"] == 5 and card["amp_bf16"] == (amp == "--amp")
    assert card["train"]["device"] == "cpu"  # where it ran, as the decoder's card says too
    assert {k: card["train"][k] for k in ("ckpt_every", "ckpt_minutes", "log_every", "warmup")} == \
        {"ckpt_every": 2, "ckpt_minutes": 30.0, "log_every": 10, "warmup": 200}
    assert "--ckpt-every" not in card["resumed_with"][0] and "--seed" not in card["resumed_with"][0]  # not given
    r = CliRunner().invoke(main, [*base, "--steps", "8", "--ckpt-every", "1"])  # a given option wins
    assert r.exit_code == 0, r.output
    assert saves == [2, 4, 6, 7, 8]
    assert json.loads((tmp_path / "run" / "model_card.json").read_text())["train"]["ckpt_every"] == 1


def test_a_resume_keeps_the_runs_lam_lr_scale_and_a_given_one_wins(tmp_path):
    """lam_lr_scale was not in the card, and a resume's optimizer state brought the old scale back: a given one was
    silently ignored. It is kept like the other run options now, and a given one is applied and recorded."""
    from bridge.model.checkpoint import read_train_meta

    run = trained_micro()
    opts = dict(stage="dynamics", data=str(run["data"]), out=str(tmp_path / "w"), progress=False)
    train(TrainOptions(tokenizer=str(run["tok"]), preset="micro", steps=1, lam_lr_scale=0.1, **opts))

    def scales() -> tuple[set[float], float]:
        card = json.loads((tmp_path / "w" / "model_card.json").read_text())
        return {g["scale"] for g in read_train_meta(tmp_path / "w")["param_groups"]}, card["train"]["lam_lr_scale"]

    assert scales() == ({0.1, 1.0}, 0.1)
    train(TrainOptions(steps=2, **opts))  # a bare resume keeps the run's own
    assert scales() == ({0.1, 1.0}, 0.1)
    train(TrainOptions(steps=3, lam_lr_scale=0.3, **opts))  # a given one wins
    assert scales() == ({0.3, 1.0}, 0.3)


def test_a_run_whose_optimizer_groups_changed_since_it_was_saved_names_the_way_to_keep_its_weights(tmp_path,
                                                                                                  monkeypatch):
    """A dynamics run saved before its optimizer's groups changed (a parameter became a buffer, the conditioning slot
    left weight decay) cannot resume: the error says how to carry its weights into a new run, not only "new --out"."""
    import bridge.train.trainer as T

    run = trained_micro()
    opts = dict(stage="dynamics", data=str(run["data"]), out=str(tmp_path / "w"), preset="micro", progress=False)
    train(TrainOptions(tokenizer=str(run["tok"]), steps=1, **opts))
    monkeypatch.setattr(T, "make_optimizer", lambda model, lr, lam_scale: torch.optim.AdamW(
        [{"params": [p for p in model.parameters() if p.requires_grad], "scale": 1.0}], lr=lr))
    with pytest.raises(CheckpointError, match=rf"does not fit this model .*--init-from {tmp_path / 'w'} --out NEW"):
        train(TrainOptions(steps=2, **opts))


def test_a_resume_refuses_another_tokenizer_instead_of_ignoring_it(tmp_path):
    run = trained_micro()
    opts = dict(stage="dynamics", data=str(run["data"]), out=str(tmp_path / "w"), preset="micro", progress=False)
    train(TrainOptions(tokenizer=str(run["tok"]), steps=1, **opts))
    other = tmp_path / "tok2"
    shutil.copytree(run["tok"], other)
    with pytest.raises(ValueError, match=r"started on the tokenizer .*, not --tokenizer .*tok2: resume without --tokenizer"):
        train(TrainOptions(tokenizer=str(other), steps=2, **opts))
    assert train(TrainOptions(tokenizer=str(run["tok"]), steps=2, **opts))["step"] == 2  # the same command resumes
    assert train(TrainOptions(steps=3, **opts))["step"] == 3


def test_a_new_run_never_writes_into_a_dataset_or_a_folder_of_other_files(tmp_path):
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    before = sorted(p.name for p in ds.iterdir())
    opts = dict(stage="tokenizer", data=str(ds), preset="micro", steps=1, progress=False)
    with pytest.raises(ValueError, match=r"--out .*ds holds files that are not a training run's \(actions_00000.npy, effective_actions_00000.npy, frames_00000.npy"):
        train(TrainOptions(out=str(ds), **opts))  # --out given the --data folder
    assert sorted(p.name for p in ds.iterdir()) == before
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "plans.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"\(plans.txt\): give `train tokenizer` a new --out directory"):
        train(TrainOptions(out=str(tmp_path / "notes"), **opts))
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["plans.txt"]
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "metrics.csv").write_text("step,loss\n")  # a run killed before its first save
    assert train(TrainOptions(out=str(tmp_path / "cut"), **opts))["step"] == 1


def test_a_new_out_holding_only_a_file_managers_litter_counts_as_new(tmp_path):
    """Windows Explorer's desktop.ini or Thumbs.db in a new --out was "files that are not a training run's"."""
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    (tmp_path / "run").mkdir()
    for name in (".DS_Store", "desktop.ini", "Thumbs.db"):
        (tmp_path / "run" / name).write_text("x")
    opts = TrainOptions(stage="tokenizer", data=str(ds), out=str(tmp_path / "run"), preset="micro", steps=1,
                        progress=False)
    assert train(opts)["step"] == 1


def test_a_save_cut_short_still_resumes_and_finished_checkpoints_are_never_overwritten(tmp_path):
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    opts = dict(stage="tokenizer", data=str(ds), out=str(tmp_path / "run"), preset="micro", progress=False, log_every=2)
    train(TrainOptions(steps=3, **opts))
    header = json.loads((tmp_path / "run" / "config.json").read_text())
    train(TrainOptions(steps=4, **opts))
    (tmp_path / "run" / "config.json").write_text(json.dumps(header))  # weights at step 4, config.json still at 3
    assert train(TrainOptions(steps=5, **opts))["step"] == 5  # resumes from the training state
    for name in ("config.json", "model.safetensors", "model_card.json"):  # the first save cut off after its state
        (tmp_path / "run" / name).unlink()
    assert train(TrainOptions(steps=6, **opts))["step"] == 6
    assert load_model(tmp_path / "run")[3]["step"] == 6
    world = save_random_world(tmp_path / "world")  # a finished world (no training state): never trained over
    before = (world / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match="holds a finished checkpoint"):
        train(TrainOptions(**{**opts, "out": str(world)}, steps=3))
    assert (world / "model.safetensors").read_bytes() == before
    (world / "config.json").write_text('{"format": "worldbridge-che')  # torn
    with pytest.raises(CheckpointError, match="config.json is damaged"):
        load_model(world)


def test_a_finished_runs_last_save_cut_short_is_completed_by_the_rerun(tmp_path, monkeypatch):
    """Killed in its last save (weights written, config.json not), a finished run could not be loaded ("run training
    again to resume") and the rerun only said it was already at its last step: the rerun now completes the save."""
    import bridge.model.checkpoint as checkpoint

    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    opts = dict(stage="tokenizer", data=str(ds), out=str(tmp_path / "run"), preset="micro", progress=False, log_every=2)
    train(TrainOptions(steps=2, **opts))
    write_json = checkpoint.atomic_write_json

    def killed_at_config(path, obj):
        if Path(path).name == "config.json":
            raise KeyboardInterrupt  # the process dies here, in every save it tries
        write_json(path, obj)

    monkeypatch.setattr(checkpoint, "atomic_write_json", killed_at_config)
    with pytest.raises(KeyboardInterrupt):
        train(TrainOptions(steps=4, **opts))
    monkeypatch.setattr(checkpoint, "atomic_write_json", write_json)
    with pytest.raises(CheckpointError, match="interrupted mid-save"):
        load_model(tmp_path / "run")
    assert train(TrainOptions(steps=4, **opts)) == {"step": 4, "unchanged": True}  # nothing left to train...
    _, _, card, header = load_model(tmp_path / "run")  # ...but the checkpoint is whole again, at step 4
    assert header["step"] == card["step"] == 4
    assert card["metrics"]["loss"] == pytest.approx(_rows(tmp_path / "run" / "metrics.csv")[-1]["loss"], rel=1e-5)


def test_a_resume_checks_its_checkpoint_without_reading_its_weights(tmp_path, monkeypatch):
    """Each resume read every tensor of model.safetensors only to compare step numbers: it now reads config.json, the
    card and the weights' header, and a torn save is still found (its weights' header names another step)."""
    import bridge.model.checkpoint as checkpoint

    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    opts = dict(stage="tokenizer", data=str(ds), out=str(tmp_path / "run"), preset="micro", progress=False)
    train(TrainOptions(steps=2, **opts))
    read_tensors = checkpoint._read_tensors

    def state_only(path):
        assert Path(path).name == "train_state.safetensors", f"read the tensors of {path}"
        return read_tensors(path)

    monkeypatch.setattr(checkpoint, "_read_tensors", state_only)
    assert train(TrainOptions(steps=2, **opts)) == {"step": 2, "unchanged": True}
    assert checkpoint.whole_step(tmp_path / "run") == 2
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    (tmp_path / "run" / "config.json").write_text(json.dumps({**config, "step": 1}))  # torn: the weights say 2
    assert checkpoint.whole_step(tmp_path / "run") is None
    assert train(TrainOptions(steps=2, **opts)) == {"step": 2, "unchanged": True}  # the rerun rewrote it
    assert checkpoint.whole_step(tmp_path / "run") == 2


def test_a_resume_on_footage_of_another_size_names_the_way_out(tmp_path):
    small = write_square_dataset(tmp_path / "ds16", episodes=4, length=12)
    large = write_square_dataset(tmp_path / "ds32", episodes=4, length=12, size=32)
    opts = dict(stage="tokenizer", out=str(tmp_path / "run"), preset="micro", progress=False)
    train(TrainOptions(data=str(small), steps=1, **opts))
    with pytest.raises(ValueError, match=r"run was trained on 16x16 frames but .*ds32 has 32x32: give --data footage "
                                         r"of 16x16 frames .*, or give a new --out to train on this one \(it was "
                                         r"started on .*ds16\)"):
        train(TrainOptions(data=str(large), steps=2, **opts))


def _event_copy(world: Path, out: Path) -> Path:
    """The micro world with an event slot whose weights are not zero (as after `train prompts events`)."""
    from bridge.model.checkpoint import save_model, state_tensors
    from bridge.prompts.train import _event_world

    src, card, _ = WorldModel.load(world)
    model = _event_world(src, src.state_dict(), ["flood", "snow"], 16)
    model.cfg.dynamics.temperature = 1.3
    with torch.no_grad():
        model.event_embed.normal_()
        model.dynamics.cond_proj.weight.normal_(std=0.5)
    save_model(out, "world", model.cfg, state_tensors(model), card, card.get("step", 0))
    return out


def _warm(run: dict, out: Path, **kw) -> tuple[dict, dict]:
    """Warm-start a 1-step run at a vanishing lr from kw's world; -> (old, new) state dicts."""
    train(TrainOptions(stage="dynamics", data=str(run["data"]), out=str(out), preset="micro", steps=1, progress=False,
                       lr=1e-12, warmup=1, **kw))
    return WorldModel.load(kw["init_from"])[0].state_dict(), WorldModel.load(out)[0].state_dict()


def _same(old: dict, new: dict, keys: list[str]) -> bool:
    keys = [k for k in keys if not k.endswith(".unused")]  # a dead-code counter, which the step itself moves
    return bool(keys) and all(torch.allclose(old[k].float(), new[k].float(), atol=1e-6) for k in keys)


def test_warm_start_carries_dynamics_events_and_latent_actions_over(tmp_path):
    run = trained_micro()
    src = _event_copy(run["world"], tmp_path / "events")
    old, new = _warm(run, tmp_path / "warm", init_from=str(src))
    assert _same(old, new, [k for k in old if k.startswith(("dynamics.", "lam.")) or k == "event_embed"])
    assert "dynamics.cond_proj.weight" in new and new["event_embed"].abs().sum() > 0
    assert all(torch.equal(old[k], new[k]) for k in old if k.startswith("tokenizer."))  # the world's own tokenizer
    cfg = load_model(tmp_path / "warm")[0]
    assert cfg.event_types == ["flood", "snow"] and cfg.dynamics.cond_dim == 16 and cfg.dynamics.temperature == 1.3
    assert json.loads((tmp_path / "warm" / "model_card.json").read_text())["tokenizer_from"]["step"] == 120


def test_a_world_with_event_types_trains_under_ddp(tmp_path):
    """`event_embed` was a trainable parameter no loss reads: under torchrun an event world (the shipped one, or any
    --init-from it) failed at step 2 with DDP's "Expected to have finished reduction in the prior iteration"."""
    import socket

    import torch.distributed as dist
    from bridge.model.presets import get_preset

    cfg = get_preset("micro")
    cfg.dynamics.cond_dim, cfg.event_types = 8, ["rain"]
    model = WorldModel(cfg, bank_size=2)
    model.tokenizer.requires_grad_(False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(model.train())
        for _ in range(2):
            ddp(torch.randint(0, 255, (2, cfg.dynamics.clip_len, cfg.height, cfg.width, 3), dtype=torch.uint8)
                )["loss"].backward()
    finally:
        ddp = None
        dist.destroy_process_group()


def test_the_shipped_worlds_event_rows_load_and_stay_out_of_the_optimizer():
    """The event rows are set from the text encoder, never trained: a buffer under the same checkpoint key; and the
    conditioning slot, which a continuation without events only ever gives zero gradients, is not weight-decayed."""
    from bridge import DEFAULT_WORLD

    model = WorldModel.load(DEFAULT_WORLD)[0]
    assert model.event_embed.abs().sum() > 0 and "event_embed" in model.state_dict()
    opt = make_optimizer(model, 1e-3, 0.5)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert id(model.event_embed) not in {id(p) for g in opt.param_groups for p in g["params"]}
    assert id(model.dynamics.cond_proj.weight) not in decayed and id(model.dynamics.st.blocks[0].ffn[0].weight) in decayed


def test_warm_start_on_a_new_tokenizer_keeps_the_world_and_takes_the_tokens(tmp_path):
    run = trained_micro()
    tok = tmp_path / "tok2"  # a tokenizer trained further, as when the encoder improves
    shutil.copytree(run["tok"], tok)
    train(TrainOptions(stage="tokenizer", data=str(run["data"]), out=str(tok), preset="micro", steps=125, progress=False))
    old, new = _warm(run, tmp_path / "warm", init_from=str(run["world"]), tokenizer=str(tok))
    assert _same(old, new, [k for k in old if k.startswith(("dynamics.", "lam."))])
    tok_new = load_model(tok)[1]
    assert all(torch.equal(tok_new[k], new[k]) for k in new if k.startswith("tokenizer."))
    assert any(not torch.equal(old[k], new[k]) for k in old if k.startswith("tokenizer."))
    assert not torch.equal(old["bank"], new["bank"])  # first frames re-tokenized by the new encoder


def test_warm_start_with_fresh_lam_learns_latent_actions_afresh(tmp_path):
    run = trained_micro()
    old, new = _warm(run, tmp_path / "warm", init_from=str(run["world"]), fresh_lam=True)
    assert _same(old, new, [k for k in old if k.startswith("dynamics.") and "action" not in k])
    lam = [k for k in old if k.startswith("lam.") and old[k].dtype.is_floating_point and old[k].dim() >= 2]
    assert any(not torch.allclose(old[k], new[k]) for k in lam)
    with pytest.raises(ValueError, match="--init-from"):
        train(TrainOptions(stage="dynamics", data=str(run["data"]), out=str(tmp_path / "bad"), init_from=str(run["world"]),
                           preset="tiny", steps=1, progress=False))
    res = CliRunner().invoke(main, ["train", "dynamics", "--data", str(run["data"]), "--out", str(tmp_path / "x"),
                                    "--tokenizer", str(run["tok"]), "--fresh-lam"])
    assert res.exit_code != 0 and "--fresh-lam goes with --init-from" in res.output


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(s, 1000, 1.0, 100) for s in range(1000)]
    assert lrs[0] == pytest.approx(0.01) and lrs[99] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3) and all(a >= b for a, b in zip(lrs[100:], lrs[101:]))
    # with a time budget the decay follows whichever is further along: steps or time
    assert lr_at(200, 1000, 1.0, 100, time_frac=1.0) == pytest.approx(0.1)
    assert lr_at(200, 1000, 1.0, 100, time_frac=0.0) > 0.9


def test_cli_trains_and_reports_clear_errors(tmp_path):
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    r = CliRunner().invoke(main, ["train", "tokenizer", "--data", str(ds), "--preset", "micro", "--steps", "3",
                                  "--out", str(tmp_path / "tok"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "step 3 saved" in r.output
    card = json.loads((tmp_path / "tok" / "model_card.json").read_text())
    assert "train tokenizer" in card["command"] and card["train"]["batch_per_rank"] == 8
    r = CliRunner().invoke(main, ["train", "tokenizer", "--data", str(ds), "--preset", "micro", "--steps", "3",
                                  "--out", str(tmp_path / "tok"), "--quiet"])  # a finished run: says so, saves nothing
    assert r.exit_code == 0 and "already at step 3 of 3" in r.output and "saved" not in r.output, r.output
    r = CliRunner().invoke(main, ["train", "dynamics", "--data", str(ds), "--out", str(tmp_path / "w"), "--quiet"])
    assert r.exit_code != 0 and "needs --tokenizer" in r.output
    r = CliRunner().invoke(main, ["train", "dynamics", "--data", str(ds), "--tokenizer", str(tmp_path / "nope"),
                                  "--out", str(tmp_path / "w"), "--quiet"])
    assert r.exit_code != 0 and "no checkpoint at" in r.output and "worldbridge train tokenizer" in r.output
    r = CliRunner().invoke(main, ["train", "tokenizer", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x")])
    assert r.exit_code != 0 and "worldbridge data generate" in r.output


def test_torchrun_two_processes_on_cpu_with_gloo(tmp_path):
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "bridge.cli",
           "train", "tokenizer", "--data", str(ds), "--preset", "micro", "--steps", "6", "--out", str(tmp_path / "run"),
           "--device", "cpu", "--quiet"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    card = json.loads((tmp_path / "run" / "model_card.json").read_text())
    assert card["step"] == 6 and card["train"]["world_size"] == 2 and card["command"].startswith("torchrun")


def test_cli_start_failures_are_one_clear_error_and_make_no_out_folder(tmp_path):
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    r = CliRunner().invoke(main, ["train", "tokenizer", "--data", str(ds), "--out", "/sys/worldbridge-run", "--quiet"])
    assert r.exit_code == 1 and r.output.startswith("Error: /sys/worldbridge-run: ") and "choose an --out" in r.output
    shard = ds / "frames_00000.npy"
    shard.write_bytes(shard.read_bytes()[:-100])  # a dataset cut short: it fails before the run folder is made
    r = CliRunner().invoke(main, ["train", "tokenizer", "--data", str(ds), "--out", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 1 and "frames_00000.npy is damaged" in r.output and not (tmp_path / "run").exists()


def test_a_tokenizer_run_cut_short_before_its_first_checkpoint_is_named_with_its_resume(tmp_path):
    """--tokenizer at a run whose first save was cut short (training state only) said "no checkpoint at ...: train
    one": it now says the run was interrupted before its first checkpoint and to resume it with its command."""
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    train(TrainOptions(stage="tokenizer", data=str(ds), out=str(tmp_path / "tok"), preset="micro", steps=1,
                       progress=False))
    weights = (tmp_path / "tok" / "model.safetensors").read_bytes()
    for name in ("config.json", "model.safetensors", "model_card.json"):  # the first save cut off after its state
        (tmp_path / "tok" / name).unlink()
    r = CliRunner().invoke(main, ["train", "dynamics", "--data", str(ds), "--tokenizer", str(tmp_path / "tok"),
                                  "--out", str(tmp_path / "w"), "--quiet"])
    assert r.exit_code == 1 and "no checkpoint at" not in r.output, r.output
    assert f"{tmp_path / 'tok'} is a training run interrupted before its first checkpoint" in r.output, r.output
    assert f"resume it with the same `worldbridge train tokenizer ... --out {tmp_path / 'tok'}`" in r.output, r.output
    assert not (tmp_path / "w").exists()
    (tmp_path / "tok" / "model.safetensors").write_bytes(weights)  # cut off between the weights and config.json
    with pytest.raises(CheckpointError, match="interrupted before its first checkpoint.*train tokenizer"):
        load_model(tmp_path / "tok")  # (not "copy the whole folder again": the run itself rewrites it)


def test_dynamics_without_preset_takes_its_tokenizers_preset(tmp_path):
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    opts = dict(data=str(ds), progress=False, steps=1)
    train(TrainOptions(stage="tokenizer", out=str(tmp_path / "tok"), preset="micro", **opts))
    train(TrainOptions(stage="dynamics", out=str(tmp_path / "w"), tokenizer=str(tmp_path / "tok"), **opts))
    assert json.loads((tmp_path / "w" / "model_card.json").read_text())["preset"] == "micro"  # not tiny's 30x cost
    train(TrainOptions(stage="dynamics", out=str(tmp_path / "w2"), init_from=str(tmp_path / "w"), **opts))
    assert json.loads((tmp_path / "w2" / "model_card.json").read_text())["preset"] == "micro"


def test_max_minutes_0_removes_a_runs_kept_budget(tmp_path):
    """A run's --max-minutes was kept on every rerun and could only be raised, never removed (0 was refused):
    --max-minutes 0 is no limit now, recorded as none, so a later bare rerun keeps none either."""
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    bare = dict(stage="tokenizer", data=str(ds), out=str(tmp_path / "run"), progress=False)
    assert train(TrainOptions(preset="micro", steps=3, batch=2, max_minutes=1e-9, **bare))["step"] == 1  # spent
    base = ["train", "tokenizer", "--data", str(ds), "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet"]
    r = CliRunner().invoke(main, base)
    assert r.exit_code == 0 and "pass a larger --max-minutes (0: no limit) to continue" in r.output, r.output
    r = CliRunner().invoke(main, [*base, "--max-minutes", "0"])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "run" / "model_card.json").read_text())
    assert card["step"] == 3 and card["train"]["max_minutes"] is None
    assert train(TrainOptions(steps=4, **bare))["step"] == 4  # no budget kept


def test_the_defaults_train_help_shows_are_the_ones_a_run_uses():
    """trainer.RUN_DEFAULTS and decoder.DEFAULTS repeated train/cli.py's click defaults (--ckpt-every 500, the decoder's
    --steps 2000, ...): a defaulted option reaches a run as None, so the dict decided while --help showed click's
    value. The options default to None and their help shows the dict's value: one source (the prompt stages alike)."""
    from bridge.train.cli import train as train_group
    from bridge.train.options import DECODER_DEFAULTS, PROMPT_DEFAULTS, RUN_DEFAULTS

    commands = {**train_group.commands, **train_group.commands["prompts"].commands}
    for name, defaults in (("tokenizer", RUN_DEFAULTS), ("dynamics", RUN_DEFAULTS), ("decoder", DECODER_DEFAULTS),
                           *PROMPT_DEFAULTS.items()):
        command = commands[name]
        ctx = click.Context(command)
        shown = {p.name: p for p in command.params if p.name in defaults}
        assert shown, name
        for key, p in shown.items():
            if key != "seed":  # (bridge/options.py's --seed of every command shows values.SEED_DEFAULT)
                assert p.default is None, (name, key, p.default)
            if defaults[key] is not None:
                assert f"[default: {defaults[key]:g}" in p.get_help_record(ctx)[1], (name, key, p.get_help_record(ctx))


def test_the_seed_every_command_and_run_defaults_to_is_one_value():
    """The default seed 0 was written four times (options.seed_option, RUN_DEFAULTS, DECODER_DEFAULTS and the prompt
    stages' defaults): one constant, values.SEED_DEFAULT, which --seed's help shows and every run falls back on."""
    from bridge.train.cli import train as train_group
    from bridge.train.options import DECODER_DEFAULTS, PROMPT_DEFAULTS, RUN_DEFAULTS
    from bridge.values import SEED_DEFAULT

    assert RUN_DEFAULTS["seed"] == DECODER_DEFAULTS["seed"] == SEED_DEFAULT
    assert all(d["seed"] == SEED_DEFAULT for d in PROMPT_DEFAULTS.values())
    commands = {**train_group.commands, **train_group.commands["prompts"].commands}
    commands.pop("prompts")
    for name, command in commands.items():
        seed = next(p for p in command.params if p.name == "seed")
        assert seed.default == SEED_DEFAULT and seed.show_default, name
    assert len(commands) >= 5, sorted(commands)  # (tokenizer, dynamics, decoder, the prompt stages)


def test_the_training_doc_leaves_the_defaults_to_help_instead_of_repeating_them():
    """docs/model.md typed `--ckpt-every` steps (500) and `--ckpt-minutes` (10): numbers that live in train/options.py
    and go stale when it changes. The doc says --help shows them; no flag of a run is followed by its default."""
    import re

    from bridge.train.options import DECODER_DEFAULTS, RUN_DEFAULTS

    text = (Path(__file__).resolve().parents[1] / "docs" / "model.md").read_text()
    for key, value in [*RUN_DEFAULTS.items(), *DECODER_DEFAULTS.items()]:  # (each stage's own --ckpt-every)
        if value is not None:
            flag = "--" + key.replace("_", "-")
            assert not re.search(rf"`{flag}`[^`.;]{{0,30}}\({value:g}\)", text), (flag, value)
    assert "--help` shows" in text


def test_metrics_csv_is_read_and_written_as_utf8_whatever_the_locale(tmp_path):
    """metrics.csv was opened in the locale's encoding (cp1252 on Windows): every open now names UTF-8, which Python's
    EncodingWarning (-X warn_default_encoding) checks for on any platform."""
    code = ("import sys, warnings; from pathlib import Path; from tqdm import tqdm; import bridge.train.trainer as t\n"
            "warnings.filterwarnings('error', category=EncodingWarning, module=r'bridge\\.train\\.')\n"
            "p = Path(sys.argv[1]) / 'metrics.csv'\n"
            "for s in (1, 2): t._log(p, tqdm(disable=True), s, 0.5, {'loss': 1.0 / s})\n"
            "t._truncate_csv(p, 1)\n"
            "print(t._logged(p, 1))\n")
    r = subprocess.run([sys.executable, "-X", "warn_default_encoding", "-c", code, str(tmp_path)], capture_output=True,
                       text=True, encoding="utf-8", env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "{'loss': 1.0}"


def test_several_gpu_processes_use_gloo_where_pytorch_has_no_nccl(monkeypatch):
    """Every multi-process CUDA run asked for NCCL, which Windows builds of PyTorch lack: they get gloo now."""
    import torch.distributed as dist

    from bridge.train.trainer import Dist

    asked = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: None)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", asked.append)
    for nccl in (True, False):
        monkeypatch.setattr(dist, "is_nccl_available", lambda: nccl)
        Dist("cuda")
    Dist("cpu")
    assert asked == ["nccl", "gloo", "gloo"]


def test_a_torchrun_command_in_the_card_names_the_program_not_a_posix_shell_substitution(tmp_path, monkeypatch):
    """The card said `torchrun ... $(which worldbridge) train ...`, which only a POSIX shell runs: it names the
    program's path now, so the command runs where it was made."""
    import shutil

    import bridge.train.trainer as T

    got = []
    monkeypatch.setattr(T, "train", lambda opts: (got.append(opts.command), {"step": 1, "unchanged": True})[1])
    monkeypatch.setattr(shutil, "which", lambda name: "/opt/my env/bin/worldbridge" if name == "worldbridge" else None)
    monkeypatch.setenv("WORLD_SIZE", "2")
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    r = CliRunner().invoke(main, ["train", "tokenizer", "--data", str(ds), "--out", str(tmp_path / "run"), "--steps", "5"])
    assert r.exit_code == 0, r.output
    assert got == [f"torchrun --nproc_per_node 2 '/opt/my env/bin/worldbridge' train tokenizer --data {ds} "
                   f"--out {tmp_path / 'run'} --steps 5"]


def test_a_cards_command_is_quoted_for_the_shell_of_the_machine_it_was_made_on(monkeypatch):
    """A Windows path in single quotes (POSIX quoting) is no path to cmd.exe: on Windows a word is quoted its way."""
    from bridge.values import shell_quote

    assert shell_quote("/opt/my env/bin/worldbridge") == "'/opt/my env/bin/worldbridge'"
    with monkeypatch.context() as m:
        m.setattr(os, "name", "nt")
        quoted = shell_quote(r"C:\Program Files\wb\worldbridge.exe"), shell_quote(r"C:\wb\worldbridge.exe")
    assert quoted == (r'"C:\Program Files\wb\worldbridge.exe"', r"C:\wb\worldbridge.exe")


def test_a_run_its_budget_stops_says_so_in_its_last_line(tmp_path):
    """`train tokenizer --max-minutes 2` that stopped at step 113 of 200 ended on `step 113 saved to RUN` as if its
    --steps were done: the line now says the budget stopped it, where, and how to go on."""
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    base = ["train", "tokenizer", "--data", str(ds), "--out", str(tmp_path / "run"), "--preset", "micro", "--batch",
            "2", "--device", "cpu", "--quiet"]
    r = CliRunner().invoke(main, [*base, "--steps", "6", "--max-minutes", "1e-9"])
    assert r.exit_code == 0, r.output
    assert ("; stopped by --max-minutes 1e-09 at step 1 of 6: rerun with a larger --max-minutes (0: no limit) to go "
            "on") in r.output, r.output
    r = CliRunner().invoke(main, [*base, "--max-minutes", "0"])  # reaches its --steps: nothing more said
    assert r.exit_code == 0 and "step 6 saved" in r.output and "stopped by" not in r.output, r.output


def test_a_decoder_run_its_budget_stops_says_so_and_that_a_rerun_goes_on(tmp_path):
    from test_prompts_helpers import sandbox_dataset, save_micro_world

    world, out = save_micro_world(tmp_path / "world"), tmp_path / "sharp"
    r = CliRunner().invoke(main, ["train", "decoder", "--world", str(world), "--data", str(sandbox_dataset()), "--out",
                                  str(out), "--steps", "5", "--batch", "2", "--max-minutes", "1e-9", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "; stopped by --max-minutes 1e-09 at step 1 of 5: rerun to go on" in r.output, r.output


def _other_footage(ds: Path) -> None:
    """Other footage at the same path, as `data import --overwrite` leaves it."""
    other = write_square_dataset(ds.parent / "other", episodes=4, length=12, seed=1)
    shutil.rmtree(ds)
    other.rename(ds)


def _provenance(ds: Path) -> dict:
    from bridge.data.dataset import VideoDataset, provenance

    return provenance(VideoDataset(ds))


def test_a_runs_card_says_which_footage_it_trained_on_and_a_resume_on_other_footage_says_so(tmp_path, capsys):
    """The card recorded only the dataset's path: after `data import --overwrite` there a checkpoint could not say which
    footage it came from, and a resume mixed the two without a word."""
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    m = json.loads((ds / "manifest.json").read_text(encoding="utf-8"))
    (ds / "manifest.json").write_text(json.dumps({**m, "generated_by": {"episodes": 4}}), encoding="utf-8")
    opts = dict(stage="tokenizer", data=str(ds), out=str(tmp_path / "run"), preset="micro", batch=2, progress=False)
    train(TrainOptions(steps=2, **opts))
    first = _provenance(ds)
    card = json.loads((tmp_path / "run" / "model_card.json").read_text())["data"]
    assert first["fingerprint"] and {k: card[k] for k in first} == first  # the fingerprint and generated_by
    _other_footage(ds)  # as `data import --overwrite` leaves it
    capsys.readouterr()
    train(TrainOptions(steps=3, **opts))
    err = capsys.readouterr().err
    now = _provenance(ds)["fingerprint"]
    assert err.count("warning:") == 1 and first["fingerprint"] in err and now in err and str(ds) in err, err
    assert json.loads((tmp_path / "run" / "model_card.json").read_text())["data"]["fingerprint"] == now
    train(TrainOptions(steps=4, **opts))  # the same footage as the last run: nothing to say
    assert "warning:" not in capsys.readouterr().err


def test_a_run_on_a_dataset_made_before_fingerprints_trains_and_its_card_says_none(tmp_path, capsys):
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    m = json.loads((ds / "manifest.json").read_text(encoding="utf-8"))
    del m["fingerprint"]
    (ds / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    opts = dict(stage="tokenizer", data=str(ds), out=str(tmp_path / "run"), preset="micro", batch=2, progress=False)
    train(TrainOptions(steps=1, **opts))
    assert json.loads((tmp_path / "run" / "model_card.json").read_text())["data"]["fingerprint"] is None
    _other_footage(ds)
    train(TrainOptions(steps=2, **opts))  # nothing known to compare with: nothing said
    assert "warning:" not in capsys.readouterr().err


def test_the_fine_tuning_stages_cards_say_which_footage_and_a_rerun_on_other_footage_says_so(tmp_path, capsys):
    from bridge.prompts.train import PromptTrainOptions, train_events, train_first_frame
    from bridge.train.decoder import DecoderTrainOptions, train_decoder
    from test_prompts_helpers import sandbox_dataset, save_micro_world

    world, data = save_micro_world(tmp_path / "world"), sandbox_dataset()
    shared = dict(steps=1, batch=2, progress=False)
    train_decoder(DecoderTrainOptions(world=str(world), data=[str(data)], out=str(tmp_path / "dec"), **shared))
    prompt = dict(world=str(world), data=str(data), encoder="hashing", max_frames=48, **shared)
    train_events(PromptTrainOptions(out=str(tmp_path / "ev"), clip_len=4, **prompt))
    train_first_frame(PromptTrainOptions(out=str(tmp_path / "ff"), **prompt))
    made = _provenance(data)
    assert made["fingerprint"] and made["generated_by"]
    assert json.loads((tmp_path / "dec" / "model_card.json").read_text())["decoder"]["data_provenance"] == [made]
    assert json.loads((tmp_path / "ev" / "model_card.json").read_text())["events"]["data_provenance"] == [made]
    assert json.loads((tmp_path / "ff" / "first_frame.json").read_text())["data_provenance"] == [made]
    card = json.loads((tmp_path / "dec" / "model_card.json").read_text())
    card["decoder"]["data_provenance"][0]["fingerprint"] = "0123456789abcdef"  # as if trained on other footage
    (tmp_path / "dec" / "model_card.json").write_text(json.dumps(card))
    capsys.readouterr()
    train_decoder(DecoderTrainOptions(world=str(world), data=[str(data)], out=str(tmp_path / "dec"), **shared))
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "0123456789abcdef" in err and made["fingerprint"] in err, err


def test_a_resumed_runs_card_keeps_the_footage_it_trained_on_before(tmp_path):
    """After a resume on other footage the card held only the new fingerprint: nothing said the run mixed two sets."""
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=12)
    opts = dict(stage="tokenizer", data=str(ds), out=str(tmp_path / "run"), preset="micro", batch=2, progress=False)
    train(TrainOptions(steps=2, **opts))
    first = _provenance(ds)
    _other_footage(ds)
    train(TrainOptions(steps=3, **opts))
    earlier = [{"fingerprint": first["fingerprint"], "path": first["path"], "until_step": 2}]
    data = json.loads((tmp_path / "run" / "model_card.json").read_text())["data"]
    assert data["earlier_fingerprints"] == earlier and data["fingerprint"] == _provenance(ds)["fingerprint"], data
    train(TrainOptions(steps=4, **opts))  # the same footage as the last run: the list is kept, nothing added
    assert json.loads((tmp_path / "run" / "model_card.json").read_text())["data"]["earlier_fingerprints"] == earlier
    fresh = dict(opts, out=str(tmp_path / "fresh"))
    train(TrainOptions(steps=1, **fresh))
    assert "earlier_fingerprints" not in json.loads((tmp_path / "fresh" / "model_card.json").read_text())["data"]


def test_the_fine_tuning_stages_cards_keep_the_footage_they_trained_on_before(tmp_path, capsys):
    """A decoder, events or first-frame rerun on other footage warned, but its card kept only the new fingerprint.
    The events and first-frame cards kept one record (a dict) where the decoder's kept a list: all keep a list now,
    and a rerun still reads the one record of an older card."""
    from bridge.prompts.train import PromptTrainOptions, train_events, train_first_frame
    from bridge.train.decoder import DecoderTrainOptions, train_decoder
    from test_prompts_helpers import sandbox_dataset, save_micro_world

    world, data = save_micro_world(tmp_path / "world"), sandbox_dataset()
    shared = dict(steps=1, batch=2, progress=False)
    prompt = dict(world=str(world), data=str(data), encoder="hashing", max_frames=48, **shared)
    decoder = DecoderTrainOptions(world=str(world), data=[str(data)], out=str(tmp_path / "dec"), **shared)
    runs = {"decoder": (lambda: train_decoder(decoder), tmp_path / "dec" / "model_card.json", lambda c: c["decoder"]),
            "events": (lambda: train_events(PromptTrainOptions(out=str(tmp_path / "ev"), clip_len=4, **prompt)),
                       tmp_path / "ev" / "model_card.json", lambda c: c["events"]),
            "first-frame": (lambda: train_first_frame(PromptTrainOptions(out=str(tmp_path / "ff"), **prompt)),
                            tmp_path / "ff" / "first_frame.json", lambda c: c)}
    for name, (run, path, section) in runs.items():
        for old_card in (False, True):  # a list of records, or the one record events and first-frame cards kept
            run()
            card = json.loads(path.read_text())
            assert "earlier_fingerprints" not in section(card) or old_card, name
            section(card).pop("earlier_fingerprints", None)
            other = {**_provenance(data), "fingerprint": "0123456789abcdef"}  # as if trained on other footage
            section(card)["data_provenance"] = other if old_card else [other]
            path.write_text(json.dumps(card))
            capsys.readouterr()
            run()
            assert "0123456789abcdef" in capsys.readouterr().err, name
            s = section(json.loads(path.read_text()))
            assert s["earlier_fingerprints"] == [{"fingerprint": "0123456789abcdef", "path": str(data.resolve()),
                                                  "until_step": s["steps" if "steps" in s else "step"] - 1}], (name, s)
            assert s["data_provenance"] == [_provenance(data)], name
