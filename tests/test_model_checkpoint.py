"""Checkpoint files: a damaged config.json is named for what is wrong in it."""

import json
import math

import pytest

from bridge.model.checkpoint import (MODEL, STATE, CheckpointError, load_model, missing_text, read_config,
                                     read_train_meta, save_train_state, whole_step)
from test_model_data import save_random_world


@pytest.mark.parametrize("step", ["x", 1.5, None, True, -3])
def test_a_step_of_the_wrong_type_names_the_key_and_value_not_an_interrupted_save(tmp_path, step):
    world = save_random_world(tmp_path / "w")
    header = json.loads((world / "config.json").read_text())
    (world / "config.json").write_text(json.dumps({**header, "step": step}))
    for read in (read_config, load_model):
        with pytest.raises(CheckpointError, match=rf"step must be a whole number >= 0, got {step!r}: fix config.json") as e:
            read(world)
        assert "interrupted" not in str(e.value)
    (world / "config.json").write_text(json.dumps(header))
    assert load_model(world)[3]["step"] == 0  # the right type reads back


@pytest.mark.parametrize("version", ["x", 1.5, None, True, -1])
def test_a_version_of_the_wrong_type_names_the_key_and_value(tmp_path, version):
    world = save_random_world(tmp_path / "w")
    header = json.loads((world / "config.json").read_text())
    (world / "config.json").write_text(json.dumps({**header, "version": version}))
    with pytest.raises(CheckpointError, match=rf"version must be a whole number >= 0, got {version!r}: fix config.json"):
        read_config(world)


def test_a_missing_checkpoint_is_worded_one_way_to_serve_or_to_load(tmp_path):
    """serve/demo/bench said "checkpoint X does not exist: train one with `worldbridge train`", loading said "no
    checkpoint at X: ..."; one wording now (a command adds its own way out, the sandbox: tests/test_cli.py)."""
    from bridge.host.backends import resolve_backend

    with pytest.raises(CheckpointError) as loaded:
        load_model(tmp_path / "nope")
    with pytest.raises(FileNotFoundError) as served:
        resolve_backend(checkpoint=tmp_path / "nope")
    assert str(served.value) == str(loaded.value)


def _refuse(monkeypatch, name: str, error: OSError) -> None:
    """Opening `name` fails as an unreadable file does (running as root, chmod cannot show it)."""
    from pathlib import Path

    real = Path.open

    def refusing(self, *a, **kw):
        if self.name == name:
            raise error
        return real(self, *a, **kw)

    monkeypatch.setattr(Path, "open", refusing)


@pytest.mark.parametrize("error", [PermissionError(13, "Permission denied"), OSError(5, "Input/output error")])
@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "model_card.json", "train_state.safetensors"])
def test_a_checkpoint_file_the_disk_refuses_is_a_checkpoint_error_naming_it(tmp_path, monkeypatch, error, name):
    """Permission denied or EIO on model.safetensors was a bare OSError (a traceback in bench); every file now names
    itself and the fix."""
    import torch

    from bridge.model.checkpoint import load_train_state, read_tensors, read_train_meta, save_train_state

    world = save_random_world(tmp_path / "w")
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(net.parameters())
    save_train_state(world, net, opt, {"step": 0})
    _refuse(monkeypatch, name, error)
    reads = {"model.safetensors": [load_model, lambda w: read_tensors(w / "model.safetensors")],
             "config.json": [read_config, load_model], "model_card.json": [read_config, load_model],
             "train_state.safetensors": [lambda w: load_train_state(w, net, opt), read_train_meta]}[name]
    for read in reads:
        with pytest.raises(CheckpointError) as e:
            read(world)
        said = str(e.value)
        assert said.startswith(f"{world / name} cannot be read ({error.strerror}): ") and "copy" in said, said


def test_a_checkpoint_missing_one_file_names_that_file(tmp_path):
    """A folder with model.safetensors but no config.json said "no checkpoint at ...: train one"; it names the file."""
    for name, reads in (("config.json", (read_config, load_model)), ("model.safetensors", (load_model,))):
        world = save_random_world(tmp_path / name)
        (world / name).unlink()
        for read in reads:
            with pytest.raises(CheckpointError) as e:
                read(world)
            said = str(e.value)
            assert said.startswith(f"{world} has no {name}: ") and "no checkpoint at" not in said, said


def _train_state(world):
    """A training state beside a checkpoint (a tiny net's: only the file's header matters here)."""
    import torch

    net = torch.nn.Linear(2, 2)
    save_train_state(world, net, torch.optim.Adam(net.parameters()), {"step": 0, "stage": "tokenizer"})


@pytest.mark.parametrize("length", [2**64 - 1, 2**62, 10**6])
def test_a_header_length_past_the_end_of_the_file_is_a_damaged_checkpoint_not_a_crash(tmp_path, length):
    """A garbage 8-byte length at the start of model.safetensors or train_state.safetensors was read as is: a resume
    (whole_step) and missing_text died with OverflowError or MemoryError; the length is checked against the file."""
    world = save_random_world(tmp_path / "w")
    _train_state(world)
    for name in (MODEL, STATE):
        data = (world / name).read_bytes()
        (world / name).write_bytes(length.to_bytes(8, "little") + data[8:])
    assert whole_step(world) is None  # a resume republishes the checkpoint from its state
    with pytest.raises(CheckpointError, match=rf"{STATE} is not a readable safetensors file \(its header claims "
                                              rf"{length} bytes, the file holds {len(data) - 8} after its length\)"):
        read_train_meta(world)
    (world / "config.json").unlink()
    assert missing_text(world, "tokenizer").startswith(f"{world} is a training run interrupted before its first")


def test_a_run_cut_short_is_worded_truly_whether_or_not_its_weights_were_saved(tmp_path):
    """A run holding its training state and model.safetensors but no config.json was told it "holds only
    train_state.safetensors"; the wording is true with or without the weights."""
    world = save_random_world(tmp_path / "w")
    _train_state(world)
    (world / "config.json").unlink()
    with_weights = missing_text(world)
    (world / MODEL).unlink()
    for said in (with_weights, missing_text(world)):
        assert "holds only" not in said and said.startswith(
            f"{world} is a training run interrupted before its first checkpoint was complete: resume it with the same "
            f"`worldbridge train tokenizer ... --out {world}` command"), said


@pytest.mark.parametrize("header", [{"__metadata__": {"meta": 5}}, {"__metadata__": {"meta": None}}, {"__metadata__": [1]},
                                    {"__metadata__": "meta"}, {"__metadata__": {"meta": "[1]"}},
                                    {"__metadata__": {"meta": '"x"'}}, {"__metadata__": {}}, [1], "{"])
def test_a_training_state_whose_meta_is_not_an_object_is_a_damaged_state_not_a_crash(tmp_path, header):
    """A hand-made train_state.safetensors whose meta was a number (json.loads: TypeError) or not a JSON object
    (missing_text: AttributeError) crashed a resume with a traceback; it is named as a damaged training state."""
    world = save_random_world(tmp_path / "w")
    header = (header if isinstance(header, str) else json.dumps(header)).encode()
    (world / STATE).write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(CheckpointError, match=rf"{STATE} is not a readable WorldBridge training state \(.+\); use a new --out"):
        read_train_meta(world)
    (world / "config.json").unlink()
    assert missing_text(world, "tokenizer").startswith(f"{world} is a training run interrupted before its first")


def test_a_training_state_whose_meta_is_not_an_object_is_refused_on_load(tmp_path):
    """load_train_state read a meta that was JSON but not an object, then died on it (AttributeError)."""
    import torch
    from safetensors.torch import save

    from bridge.model.checkpoint import load_train_state

    world = save_random_world(tmp_path / "w")
    net = torch.nn.Linear(2, 2)
    (world / STATE).write_bytes(save({"model." + k: v.clone() for k, v in net.state_dict().items()}, {"meta": "[1]"}))
    with pytest.raises(CheckpointError, match=rf"{STATE} is not a readable WorldBridge training state \(.+\); use a new --out"):
        load_train_state(world, net, torch.optim.Adam(net.parameters()))


def _shifted_fsq(z, levels):
    """FSQ as it quantized before its grid became symmetric (7e66a83): -> (values, indices)."""
    import torch

    lv = torch.tensor(levels, dtype=torch.float32)
    half, offset = (lv - 1) / 2, torch.where(lv % 2 == 0, 0.5, 0.0)
    b = torch.tanh(z + torch.atanh(offset / half)) * half - offset
    hl = lv.long() // 2
    digits = torch.minimum((torch.round(b).long() + hl).clamp(min=0), lv.long() - 1)
    basis = torch.tensor([math.prod(levels[:i]) for i in range(len(levels))])
    return torch.round(b) / hl, (digits * basis).sum(-1)


def test_an_fsq_checkpoint_saved_before_the_grid_field_quantizes_as_it_was_trained(tmp_path):
    """The symmetric FSQ grid silently re-quantized older FSQ checkpoints with an even level (the default 8, 5, 5, 5:
    69% of codes kept); a config.json without fsq_grid now loads the grid it was trained on, a new one the new grid."""
    import torch

    from bridge.model.config import WorldConfig
    from bridge.model.latent_actions import LatentActionModel
    from bridge.model.tokenizer import VideoTokenizer

    world = save_random_world(tmp_path / "w")
    header = json.loads((world / "config.json").read_text())
    for part in ("tokenizer", "lam"):
        header["world"][part].pop("fsq_grid", None)
        header["world"][part]["quantizer"] = "fsq"
    (world / "config.json").write_text(json.dumps(header))
    old = read_config(world)[0]
    torch.manual_seed(0)
    z = torch.randn(5000, 4) * 2
    levels = old.tokenizer.fsq_levels
    want_q, want_idx = _shifted_fsq(z, levels)
    q, idx, _ = VideoTokenizer(old.tokenizer, old.height, old.width).quant(z)
    assert torch.equal(idx, want_idx) and torch.equal(q, want_q)
    lam = LatentActionModel(old.lam, old.height, old.width).quant
    z3 = torch.randn(1000, len(old.lam.fsq_levels))
    assert torch.equal(lam(z3)[1], _shifted_fsq(z3, old.lam.fsq_levels)[1])
    assert WorldConfig.from_dict(old.to_dict()) == old  # saved again, it stays on its grid
    new = WorldConfig.from_dict({**header["world"], "tokenizer": {**header["world"]["tokenizer"], "fsq_grid": "symmetric"}})
    q, idx, _ = VideoTokenizer(new.tokenizer, new.height, new.width).quant(z)
    assert not torch.equal(idx, want_idx)
    assert torch.equal(q, idx_values(idx, levels))


def idx_values(idx, levels):
    """The symmetric grid's values of FSQ indices: digit d of a level L at 2d / (L - 1) - 1."""
    import torch

    digits = [(idx // math.prod(levels[:i])) % L for i, L in enumerate(levels)]
    return torch.stack([2 * d.float() / (L - 1) - 1 for d, L in zip(digits, levels)], -1)


def test_a_vq_config_saved_before_the_fsq_grid_field_equals_a_new_one():
    """The field means nothing to VQ: an old VQ world's LAM must still equal the preset's, or warm starts drop it."""
    from bridge.model.config import WorldConfig

    d = WorldConfig().to_dict()
    for part in ("tokenizer", "lam"):
        d[part].pop("fsq_grid", None)
    assert WorldConfig.from_dict(d) == WorldConfig()
