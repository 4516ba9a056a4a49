"""What every `worldbridge` command says: help on each option, and the fix in each error about a path."""

import click
import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.model.checkpoint import missing_text
from bridge.model.presets import PRESETS
from bridge.model.speed import main as speed
from editor_gui.screenshot import main as screenshot
from test_docs import EVERY_COMMAND
from test_model_data import DAMAGE, damaged_checkpoint

# the `worldbridge` commands, and the tools run as `python -m ...` (a README or docs command line too)
EVERY_TOOL = {**{("worldbridge", *path): cmd for path, cmd in EVERY_COMMAND.items()},
              ("python -m bridge.model.speed",): speed, ("python -m editor_gui.screenshot",): screenshot}


def test_every_option_of_every_command_says_what_it_does():
    """`--help` listed serve --max-sessions, bench --frames, eval --seed, record export --mp4 and the screenshot
    tool's --out and --seed with no word on them."""
    bare = [" ".join([*path, p.opts[0]]) for path, cmd in EVERY_TOOL.items()
            for p in cmd.params if isinstance(p, click.Option) and not p.help]
    assert len(EVERY_COMMAND) > 20  # the walk reached the nested groups' commands
    assert bare == []


FOLDER_OPTIONS = [(path, p.opts[0]) for path, cmd in EVERY_TOOL.items() for p in cmd.params
                  if isinstance(p.type, click.Path) and not p.type.file_okay and p.type.dir_okay]


def test_the_walk_finds_the_folder_options_of_train_eval_health_and_the_screenshot():
    found = {(" ".join(path), opt) for path, opt in FOLDER_OPTIONS}
    assert {("worldbridge train tokenizer", "--data"), ("worldbridge eval", "--checkpoint"),
            ("worldbridge health check", "--checkpoint"), ("python -m editor_gui.screenshot", "--checkpoint")} <= found


@pytest.mark.parametrize("path, opt", FOLDER_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_a_file_given_for_a_folder_names_the_fix(tmp_path, path, opt):
    """`health check --checkpoint run/model.safetensors` said only click's "Directory '...' is a file."."""
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    r = CliRunner().invoke(EVERY_TOOL[path], [*path[1:], opt, str(file)])
    assert r.exit_code == 2, r.output
    assert f"{file} is a file: give " in r.output and r.output.count("not a file") == 1, r.output


def test_play_names_a_missing_checkpoint_as_serve_does(tmp_path):
    """`play --checkpoint nope` said only click's "Path 'nope' does not exist."."""
    r = CliRunner().invoke(main, ["play", "--checkpoint", str(tmp_path / "nope")])
    assert r.exit_code == 1 and missing_text(tmp_path / "nope") in r.output and "--backend sandbox" in r.output, r.output


def test_play_names_a_missing_session_and_how_one_is_made(tmp_path, monkeypatch):
    """`play --session nope.wbsession` said only click's "Path 'nope.wbsession' does not exist."."""
    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))
    r = CliRunner().invoke(main, ["play", "--session", str(tmp_path / "nope.wbsession")])
    assert r.exit_code == 2 and f"no saved session at {tmp_path / 'nope.wbsession'}" in r.output, r.output
    assert "Save…" in r.output and "docs/editor.md" in r.output and str(tmp_path / "autosave") in r.output, r.output


def test_the_seed_options_share_one_definition():
    """health calibrate/check defined their --seed apart from train's and eval's, so the range or default could drift."""
    seeds = {" ".join(path): p for path, cmd in EVERY_COMMAND.items() for p in cmd.params if p.name == "seed"
             and path[0] in ("train", "eval", "health")}
    assert {"health calibrate", "health check", "eval"} <= set(seeds)
    assert {(repr(p.type), p.default, p.help.split(" ")[:2] == ["Seed", "of"]) for p in seeds.values()} == \
        {("<IntRange x>=0>", 0, True)}, {k: (p.type, p.default, p.help) for k, p in seeds.items()}


def test_speed_lists_and_checks_its_presets():
    """`python -m bridge.model.speed --help` did not say which presets there are, and --preset huge got as far as a
    ValueError."""
    assert "[micro|tiny|small|base]" in CliRunner().invoke(speed, ["--help"]).output
    r = CliRunner().invoke(speed, ["--preset", "huge"])
    assert r.exit_code == 2 and "'huge' is not one of " in r.output and all(p in r.output for p in PRESETS), r.output


def test_speed_refuses_zero_frames_by_name():
    """`python -m bridge.model.speed --frames 0` ended in "Error: no median for empty data"."""
    r = CliRunner().invoke(speed, ["--preset", "micro", "--frames", "0"])
    assert r.exit_code == 2 and "'--frames'" in r.output and "x>=1" in r.output, r.output


@pytest.mark.parametrize("how", DAMAGE)
def test_speed_refuses_a_bad_checkpoint_in_one_line(tmp_path, how):
    """`python -m bridge.model.speed --checkpoint` on a damaged checkpoint ended in a traceback."""
    r = CliRunner().invoke(speed, ["--checkpoint", str(damaged_checkpoint(tmp_path, how)), "--frames", "1"])
    if how == "plain_file":  # refused as every file given for a folder is, with the fix
        assert r.exit_code == 2 and f"{tmp_path / 'ck'} is a file: give " in r.output, r.output
        return
    assert r.exit_code == 1, r.output
    assert r.output.startswith("Error: ") and str(tmp_path / "ck") in r.output, r.output
    if how == "missing":
        assert missing_text(tmp_path / "ck") in r.output, r.output
