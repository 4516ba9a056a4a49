"""What every `worldbridge` command says: help on each option, and the fix in each error about a path."""

import click
import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.model.checkpoint import missing_text
from test_docs import EVERY_COMMAND
from test_model_data import DAMAGE, damaged_checkpoint


def test_every_option_of_every_command_says_what_it_does():
    """`--help` listed serve --max-sessions, bench --frames, eval --seed and record export --mp4 with no word on them."""
    bare = [" ".join(["worldbridge", *path, p.opts[0]]) for path, cmd in EVERY_COMMAND.items()
            for p in cmd.params if isinstance(p, click.Option) and not p.help]
    assert len(EVERY_COMMAND) > 20  # the walk reached the nested groups' commands
    assert bare == []


FOLDER_OPTIONS = [(path, p.opts[0]) for path, cmd in EVERY_COMMAND.items() for p in cmd.params
                  if isinstance(p.type, click.Path) and not p.type.file_okay and p.type.dir_okay]


def test_the_walk_finds_the_folder_options_of_train_eval_and_health():
    found = {(" ".join(path), opt) for path, opt in FOLDER_OPTIONS}
    assert {("train tokenizer", "--data"), ("eval", "--checkpoint"), ("health check", "--checkpoint")} <= found


@pytest.mark.parametrize("path, opt", FOLDER_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_a_file_given_for_a_folder_names_the_fix(tmp_path, path, opt):
    """`health check --checkpoint run/model.safetensors` said only click's "Directory '...' is a file."."""
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    r = CliRunner().invoke(main, [*path, opt, str(file)])
    assert r.exit_code == 2, r.output
    assert f"{file} is a file: give " in r.output and r.output.count("not a file") == 1, r.output


def test_play_names_a_missing_checkpoint_as_serve_does(tmp_path):
    """`play --checkpoint nope` said only click's "Path 'nope' does not exist."."""
    r = CliRunner().invoke(main, ["play", "--checkpoint", str(tmp_path / "nope")])
    assert r.exit_code == 1 and missing_text(tmp_path / "nope") in r.output and "--backend sandbox" in r.output, r.output


@pytest.mark.parametrize("how", DAMAGE)
def test_speed_refuses_a_bad_checkpoint_in_one_line(tmp_path, how):
    """`python -m bridge.model.speed --checkpoint` on a damaged checkpoint ended in a traceback."""
    from bridge.model.speed import main as speed

    r = CliRunner().invoke(speed, ["--checkpoint", str(damaged_checkpoint(tmp_path, how)), "--frames", "1"])
    assert r.exit_code == 1, r.output
    assert r.output.startswith("Error: ") and str(tmp_path / "ck") in r.output, r.output
    if how == "missing":
        assert missing_text(tmp_path / "ck") in r.output, r.output
