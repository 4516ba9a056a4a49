"""Checkpoint files: a damaged config.json is named for what is wrong in it."""

import json

import pytest

from bridge.model.checkpoint import CheckpointError, load_model, read_config
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
