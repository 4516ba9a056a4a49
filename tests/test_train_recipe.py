"""The default world's recipe (bridge/train/default_world.sh) must stay runnable as the CLI changes."""

import shlex
from pathlib import Path

import click

from bridge.cli import main

RECIPE = Path(__file__).resolve().parent.parent / "bridge" / "train" / "default_world.sh"


def recipe_commands(work: Path) -> list[list[str]]:
    """Each `worldbridge ...` line of the script (continuations joined, `&` dropped), $D replaced by `work`."""
    text = RECIPE.read_text().replace("\\\n", " ").replace("$D", str(work))
    return [shlex.split(line.strip().rstrip("&"))[1:] for line in text.splitlines() if line.strip().startswith("worldbridge ")]


def parse(args: list[str]) -> click.Command:
    """Parse args against the CLI down to the leaf command, running nothing; returns the leaf."""
    cmd, ctx, name, rest = main, None, "worldbridge", list(args)
    while isinstance(cmd, click.Group):  # our groups take no options: the first word names the subcommand
        ctx = click.Context(cmd, info_name=name, parent=ctx)
        name, rest = rest[0], rest[1:]
        cmd = cmd.get_command(ctx, name)
        assert cmd is not None, f"no command {name!r} in {args}"
    cmd.make_context(name, rest, parent=ctx)  # raises click.UsageError / BadParameter on an unknown or bad option
    return cmd


def test_every_recipe_command_parses_against_the_cli(tmp_path):
    cmds = recipe_commands(tmp_path)
    for a in (a for c in cmds for a in c if a.startswith(str(tmp_path))):
        Path(a).mkdir(parents=True, exist_ok=True)  # options that want an existing folder get one
    leaves = [parse(c).name for c in cmds]
    assert leaves.count("generate") == 4 and {"tokenizer", "dynamics", "first-frame", "events", "calibrate"} <= set(leaves)


def test_the_parser_refuses_an_option_the_cli_does_not_have(tmp_path):
    import pytest

    with pytest.raises(click.UsageError):
        parse(["train", "tokenizer", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--no-such-option", "1"])
