"""`worldbridge train decoder`: only the decoder learns, so tokens (and everything built on them) keep their meaning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
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
    r = _run("--world", str(save_micro_world(tmp_path / "w")), "--data", data, "--out", str(busy))
    assert r.exit_code != 0 and "not a decoder run" in r.output and (busy / "notes.txt").read_text() == "mine"
