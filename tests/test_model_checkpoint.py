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
    checkpoint at X: ..."; one wording now, the host adding only its own way out (the sandbox)."""
    from bridge.host.backends import resolve_backend

    with pytest.raises(CheckpointError) as loaded:
        load_model(tmp_path / "nope")
    with pytest.raises(FileNotFoundError) as served:
        resolve_backend(checkpoint=tmp_path / "nope")
    assert str(served.value) == f"{loaded.value}, or pass --backend sandbox"
