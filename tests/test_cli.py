"""What every `worldbridge` command says: help on each option, and the fix in each error about a path."""

import ast
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.model.checkpoint import missing_text
from bridge.model.presets import PRESETS
from bridge.model.speed import main as speed
from bridge.values import SEED_MAX
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


FOLDER_OPTIONS = [(path, p.opts[0] if isinstance(p, click.Option) else p.name) for path, cmd in EVERY_TOOL.items()
                  for p in cmd.params if isinstance(p.type, click.Path) and not p.type.file_okay and p.type.dir_okay]


def test_the_walk_finds_the_folder_options_of_train_eval_health_demo_data_and_the_screenshot():
    found = {(" ".join(path), opt) for path, opt in FOLDER_OPTIONS}
    assert {("worldbridge train tokenizer", "--data"), ("worldbridge eval", "--checkpoint"),
            ("worldbridge health check", "--checkpoint"), ("python -m editor_gui.screenshot", "--checkpoint"),
            ("worldbridge demo", "--out"), ("worldbridge data info", "root"),
            ("worldbridge data preview", "root")} <= found
    # the commands that serve a world: a file given there got the loader's error, not the fix
    assert {(f"worldbridge {command}", "--checkpoint")
            for command in ("serve", "record replay", "bench", "demo", "play")} <= found


def _give(path: tuple, opt: str, value: str):
    """Run the tool at `path` with `value` for its folder option or argument `opt` (and nothing else)."""
    tool, args = (main, list(path[1:])) if path[0] == "worldbridge" else (EVERY_TOOL[path], [])
    return CliRunner().invoke(tool, [*args, *([opt, value] if opt.startswith("-") else [value])])


@pytest.mark.parametrize("path, opt", FOLDER_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_a_file_given_for_a_folder_names_the_fix(tmp_path, path, opt):
    """`health check --checkpoint run/model.safetensors` said only click's "Directory '...' is a file."; `demo --out`
    and `data info`'s folder worded it their own ways."""
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    r = _give(path, opt, str(file))
    assert r.exit_code == 2, r.output
    assert f"{file} is a file: give " in r.output and r.output.count("not a file") == 1, r.output


@pytest.mark.parametrize("path, opt", FOLDER_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_an_empty_folder_is_refused_not_read_as_the_current_one(tmp_path, monkeypatch, path, opt):
    """`demo --out ""` (an unset shell variable) was refused, `train ... --out ""` filled the current folder."""
    monkeypatch.chdir(tmp_path)
    r = _give(path, opt, "")
    assert r.exit_code == 2 and "it is empty: give " in r.output, r.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["serve", "bench", "demo", "play"])
def test_a_missing_checkpoint_is_worded_once_with_the_sandbox_as_the_way_out(tmp_path, command):
    """`play --checkpoint nope` said only click's "Path 'nope' does not exist." and then exited 1 where a missing
    --session exits 2; `bench`/`demo` said "...or give the directory of one, or pass --backend sandbox"."""
    r = CliRunner().invoke(main, [command, "--checkpoint", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "Invalid value for '--checkpoint': " in r.output, r.output
    assert f"{missing_text(tmp_path / 'nope')}; --backend sandbox runs the sandbox game" in r.output, r.output
    assert ", or pass" not in r.output


@pytest.mark.parametrize("command", ["serve", "bench", "demo", "play"])
def test_a_checkpoint_path_the_system_refuses_is_one_line_not_a_traceback(tmp_path, command):
    """`play --checkpoint <a name longer than the file system allows>` ended in an OSError traceback: play caught only
    FileNotFoundError, where serve, bench and demo word every refusal (options.command_backend, shared now)."""
    r = CliRunner().invoke(main, [command, "--checkpoint", str(tmp_path / ("n" * 300))])
    assert r.exit_code == 2 and "File name too long" in r.output and r.exception is not None, r.output
    assert isinstance(r.exception, SystemExit), repr(r.exception)


@pytest.mark.parametrize("command", ["serve", "bench", "demo", "record replay", "eval-prompts"])
def test_both_backends_are_refused_in_the_command_lines_words(tmp_path, command):
    """The Python API words it for Python (backend=, checkpoint=); a command line names its own options (eval-prompts
    worded it a third way, "give --checkpoint RUN_DIR (a world) or --backend sandbox (...), not both")."""
    rec = tmp_path / "a.wbrec"  # replay's REC, refused by neither
    rec.write_bytes(b"x")
    given = [str(rec)] if command == "record replay" else []
    r = CliRunner().invoke(main, [*command.split(), *given, "--checkpoint", str(tmp_path), "--backend", "sandbox"])
    assert r.exit_code == 2 and "give either --backend sandbox or --checkpoint PATH, not both" in r.output, r.output


def test_play_names_a_missing_session_and_how_one_is_made(tmp_path, monkeypatch):
    """`play --session nope.wbsession` said only click's "Path 'nope.wbsession' does not exist."."""
    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))
    r = CliRunner().invoke(main, ["play", "--session", str(tmp_path / "nope.wbsession")])
    assert r.exit_code == 2 and f"no saved session at {tmp_path / 'nope.wbsession'}" in r.output, r.output
    assert "Save…" in r.output and "docs/editor.md" in r.output and str(tmp_path / "autosave") in r.output, r.output


def test_the_seed_options_share_one_definition():
    """health calibrate/check defined their --seed apart from train's and eval's, so the range or default could drift;
    data's, demo's, play's and the screenshot's were five more (the screenshot's took any int)."""
    seeds = {" ".join(path): p for path, cmd in EVERY_TOOL.items() for p in cmd.params if p.name == "seed"}
    world = {k: seeds.pop(k) for k in ("worldbridge demo", "worldbridge play", "python -m editor_gui.screenshot")}
    assert {"worldbridge health calibrate", "worldbridge eval", "worldbridge data generate",
            "worldbridge data capture", "worldbridge train tokenizer", "worldbridge train decoder"} <= set(seeds)
    assert {(repr(p.type), p.default, p.help.split(" ")[:2] == ["Seed", "of"]) for p in seeds.values()} == \
        {("<IntRange x>=0>", 0, True)}, {k: (p.type, p.default, p.help) for k, p in seeds.items()}
    assert {(p.type.min, p.type.max, p.help.startswith("World seed of the session")) for p in world.values()} == \
        {(0, SEED_MAX, True)}, {k: (p.type, p.help) for k, p in world.items()}


def test_a_resumed_runs_seed_is_its_own_and_the_help_says_so():
    seeds = {path[1]: p.help for path, cmd in EVERY_COMMAND.items() for p in cmd.params
             if p.name == "seed" and path[0] == "train"}
    assert all("a resumed run keeps its own" in seeds[stage] for stage in ("tokenizer", "dynamics", "decoder")), seeds


def test_model_and_editor_modules_take_options_from_the_leaf_not_the_command_registry():
    """health, speed, eval and the screenshot tool imported bridge/cli.py (the top-level registry) for its folder
    types, and train/options.py for --device and --seed."""
    root = Path(main.callback.__code__.co_filename).parent.parent
    imports = {}
    for f in [*sorted((root / "bridge").rglob("*.py")), *sorted((root / "editor_gui").rglob("*.py"))]:
        tree = ast.parse(f.read_text())
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imports[f.relative_to(root).as_posix()] = names
    assert [f for f, names in imports.items() if "bridge.cli" in names] == []
    top = ast.parse((root / "bridge/options.py").read_text()).body  # a lazy import in a function loads nothing
    top = {n.module for n in top if isinstance(n, ast.ImportFrom)} | {a.name for n in top if isinstance(n, ast.Import)
                                                                       for a in n.names}
    leaf = {m.split(".")[0] if not m.startswith("bridge") else m for m in top}
    assert leaf - set(sys.stdlib_module_names) <= {"click", "bridge.values", "__future__"}, leaf
    assert all("bridge.train.options" not in imports[f] for f in
               ("bridge/model/health.py", "bridge/model/speed.py", "bridge/train/evaluate.py"))


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


def test_speed_takes_threads_in_the_range_every_command_shares():
    """`python -m bridge.model.speed --threads -1` passed its own `type=int` on to torch.set_num_threads."""
    from bridge.options import THREADS

    assert next(p for p in speed.params if p.name == "threads").type is THREADS
    r = CliRunner().invoke(speed, ["--preset", "micro", "--frames", "1", "--threads", "-1"])
    assert r.exit_code == 2 and "'--threads'" in r.output and "0<=x<=1024" in r.output, r.output


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


def test_play_refuses_both_backends_in_the_words_serve_uses_and_takes_a_world_model_checkpoint(tmp_path):
    """play worded --checkpoint with --backend sandbox its own way; --backend world_model with one is one world."""
    r = CliRunner().invoke(main, ["play", "--checkpoint", str(tmp_path), "--backend", "sandbox"])
    assert r.exit_code == 2 and "give either --backend sandbox or --checkpoint PATH, not both" in r.output, r.output
    r = CliRunner().invoke(main, ["play", "--checkpoint", str(tmp_path / "nope"), "--backend", "world_model"])
    assert r.exit_code == 2 and missing_text(tmp_path / "nope") in r.output and "not both" not in r.output, r.output


def test_top_level_help_says_where_a_newcomer_starts():
    """`worldbridge --help` listed eleven commands alphabetically, `bench` first, and said nothing of which to run
    first: the demo, the editor, or the host the Unity plugin and Godot addon connect to."""
    out = " ".join(CliRunner().invoke(main, ["--help"]).output.split())
    assert "Start with `worldbridge demo`" in out, out
    assert all(f"`worldbridge {c}`" in out for c in ("play", "serve")) and "Unity" in out and "Godot" in out, out
    assert out.index("Start with") > out.index("Commands:"), "the pointer comes after the list, as an epilog"


def test_eval_help_and_the_readme_name_the_copy_last_frame_baseline_alike():
    """`eval --help` called rollout_minus_copy_last the margin "over repeating the first frame" and the README the
    copy-last-frame baseline: one baseline, the last frame the rollout was given, which is the clip's first."""
    help_text = " ".join(CliRunner().invoke(main, ["eval", "--help"]).output.split())
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    for text in (help_text.split("rollout_minus_copy_last", 1)[1], readme.split("rollouts beat", 1)[1]):
        said = text[:200]
        assert "copy-last-frame baseline" in said and "the last frame the rollout was given, the clip's first" in said, said
