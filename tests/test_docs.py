"""The docs a user follows literally: every command, flag and folder they name exists, and every command is listed."""

import inspect
import re
import subprocess
from pathlib import Path

import click
import pytest

from bridge.cli import COMMANDS, main
from helpers import long_prose_lines

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "unity_plugin" / "README.md",
        ROOT / "godot_addon" / "README.md"]


def _commands(cmd: click.Command, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    """Every `worldbridge ...` command and group by its words (the lazy group loads each), so the docs and the help
    can be checked against the real CLI."""
    out = {path: cmd}
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            out.update(_commands(cmd.get_command(ctx, name), (*path, name)))
    return out


EVERY_COMMAND = _commands(main)
COMMAND_LINES = {path: cmd for path, cmd in EVERY_COMMAND.items() if not isinstance(cmd, click.Group)}  # runnable


def _doc_text(path: Path) -> str:
    """The doc with shell line continuations joined, so a command split over lines is read whole."""
    return re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))


COMMAND_PREFIXES = {line[:n] for line in COMMAND_LINES for n in range(1, len(line) + 1)}


def _resolve(words: list[str]) -> tuple[tuple[str, ...], click.Command | None]:
    for n in range(len(words), 0, -1):
        if tuple(words[:n]) in COMMAND_LINES:
            return tuple(words[:n]), COMMAND_LINES[tuple(words[:n])]
    return (), None


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_and_flag_a_doc_gives_exists(doc: Path):
    """A renamed or removed (sub)command, or a flag its command lacks, is caught."""
    bad, unknown = [], []
    for m in re.finditer(r"worldbridge ((?:[a-z][a-z-]*\s?)+)([^\n`|]*)", _doc_text(doc)):
        said = m.group(1).split()
        words, cmd = _resolve(said)
        if cmd is None:  # a group named alone is fine; a word no command has under it is not
            unknown += [" ".join(said[:n]) for n in range(1, len(said) + 1)
                        if tuple(said[:n]) not in COMMAND_PREFIXES][:1]
            continue
        known = {o for p in cmd.params for o in [*p.opts, *p.secondary_opts]} | {"--help"}
        rest = " ".join(said[len(words):]) + " " + m.group(2)
        bad += [f"{' '.join(words)} {flag}" for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest)
                if flag not in known]
    assert not unknown, f"{doc.name} names commands the CLI lacks: {sorted(set(unknown))}"
    assert not bad, f"{doc.name} names flags the commands do not have: {bad}"


def _table_commands() -> list[list[set[str]]]:
    """The command words of the README's Commands table, each word a set of alternatives (`health calibrate\\|check`)."""
    table = (ROOT / "README.md").read_text(encoding="utf-8").split("## Commands", 1)[1].split("\n## ", 1)[0]
    cells = [row.split(" | ")[0] for row in table.splitlines() if row.startswith("| `")]
    snippets = [s.removeprefix("worldbridge ") for cell in cells for s in re.findall(r"`([^`]*)`", cell)]
    return [[set(word.split("\\|")) for word in s.split()] for s in snippets]


def test_readme_command_table_lists_every_command():
    rows = _table_commands()
    missing = [" ".join(words) for words in COMMAND_LINES
               if not any(len(row) >= len(words) and all(w in alts for w, alts in zip(words, row)) for row in rows)]
    assert not missing, f"README's Commands table leaves out: {missing}"


def _tracked_files() -> list[str]:
    """The repository's files as git tracks them, so build outputs never count as folders the docs must describe."""
    return subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()


def test_architecture_has_a_paragraph_per_folder():
    files = _tracked_files()
    folders = {f.split("/")[0] for f in files if "/" in f}
    folders |= {"/".join(f.split("/")[:2]) for f in files if f.startswith("bridge/") and f.count("/") >= 2}
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = sorted(f for f in folders if f"**`{f}/`**" not in text)
    assert not missing, f"docs/architecture.md has no paragraph for: {missing}"


def test_top_level_help_names_every_subcommand_of_train_and_record():
    summaries = {name: help_text.lower() for name, (_, help_text) in COMMANDS.items()}
    assert "decoder" in summaries["train"] and "prompts" in summaries["train"], summaries["train"]
    assert "inspect" in summaries["record"], summaries["record"]


def test_protocol_doc_gives_each_client_its_own_handshake_timeout():
    from bridge.client import WorldClient

    text = " ".join((ROOT / "docs" / "protocol.md").read_text(encoding="utf-8").split())
    engines = re.search(r"Unity and Godot clients' handshake/connect timeout, (\d+) s by default", text)
    python = re.search(r"`WorldClient`'s `timeout`, (\d+) s by default", text)
    assert engines and python, "docs/protocol.md §3 must give the engine clients' and WorldClient's hello deadlines"
    unity = (ROOT / "unity_plugin" / "Runtime" / "Core" / "WorldBridgeConnection.cs").read_text(encoding="utf-8")
    godot = (ROOT / "godot_addon" / "addons" / "world_bridge" / "core" / "zmtp.gd").read_text(encoding="utf-8")
    assert f"ConnectTimeoutMs = {int(engines[1]) * 1000};" in unity
    assert f"var handshake_timeout_s := {float(engines[1])}" in godot
    assert inspect.signature(WorldClient).parameters["timeout"].default == float(python[1])


def test_editor_doc_names_every_window_shortcut():
    code = "".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "editor_gui").glob("*.py")))  # the window and its panels
    shortcuts = set(re.findall(r'(?:setShortcut\(|QShortcut\()QKeySequence\("([^"]+)"\)', code))
    for name in re.findall(r'(?:setShortcut\(|QShortcut\()QKeySequence\(([A-Z_]+)\)', code):  # a named constant
        shortcuts.update(re.findall(rf'^{name} = "([^"]+)"', code, re.M))
    doc = (ROOT / "docs" / "editor.md").read_text(encoding="utf-8")
    missing = sorted(s for s in shortcuts if s not in doc)
    assert shortcuts and not missing, f"docs/editor.md leaves out the shortcuts {missing}"
    assert set(re.findall(r"\bCtrl\+[A-Z]\b", doc)) <= shortcuts, "docs/editor.md names a shortcut the window lacks"


def test_data_doc_says_how_a_split_with_no_val_seed_is_fitted():
    """test_data_import.py pins the fitting itself."""
    text = " ".join((ROOT / "docs" / "data.md").read_text(encoding="utf-8").split())
    assert "double the fraction" not in text
    assert "halfway between the two nearest seeds' hashes" in text, "docs/data.md must say how the val fraction is fitted"


def test_architecture_docs_paragraph_names_every_doc():
    text = " ".join((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").split())
    paragraph = text.split("**`docs/`**", 1)[1].split("**`", 1)[0]
    missing = sorted(p.name for p in (ROOT / "docs").glob("*.md")
                     if p.name != "architecture.md" and f"`{p.name}`" not in paragraph)  # itself: "this file"
    assert not missing, f"docs/architecture.md's docs/ paragraph leaves out: {missing}"


def test_architecture_names_only_files_that_exist():
    files = _tracked_files()
    text = " ".join((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").split("## Folders", 1)[1].split())
    gone = []
    for folder, paragraph in re.findall(r"\*\*`([^`]+)/`\*\*(.*?)(?=\*\*`|$)", text):
        top = folder.split("/")[0]
        for name in re.findall(r"`([\w./~-]+\.(?:py|sh|gd|cs|json|md)|[\w~-]+/[\w./~-]*)`", paragraph):
            path = name.rstrip("/")
            if re.fullmatch(r"\w+/[\w-]+-v\d+", path):  # a gymnasium id (`WorldBridge/Sandbox-v0`), not a path
                continue
            if not any(f == path or f.startswith(f"{path}/") or (f.startswith(f"{top}/") and f"/{path}/" in f"/{f}/")
                       for f in files):
                gone.append(f"{folder}/: {name}")
    assert not gone, f"docs/architecture.md names files that do not exist: {gone}"


def test_python_docs_say_a_queued_event_waits_for_the_held_one():
    """Since the host holds each event `hold` frames, one queued behind it fires after them, not on the next frame."""
    from bridge.client import WorldClient

    section = (ROOT / "docs" / "python.md").read_text(encoding="utf-8").split("## World events")[1].split("```")[0]
    for where, text in (("docs/python.md, World events", section), ("WorldClient.event", WorldClient.event.__doc__)):
        flat = " ".join(text.split())
        assert "next frame" in flat and "`hold` frames" in flat, f"{where} must say a queued event waits its turn"


def _protocol_section(number: int) -> str:
    """One numbered section of docs/protocol.md, so a check reads only the part that lists what it checks."""
    return (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8").split(f"\n## {number}. ", 1)[1].split("\n## ", 1)[0]


def _host_sources() -> str:
    """The host's code (bench is a client of it), where every message type it sends and error code it answers lives."""
    return "".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "bridge" / "host").glob("*.py")) if p.name != "bench.py")


def test_protocol_doc_lists_exactly_the_message_types_the_host_speaks():
    from bridge.host.protocol import SCHEMAS

    doc = {name for heading in re.findall(r"^### (.+)$", _protocol_section(4), re.M)
           for name in re.findall(r"(?:^|/ )([a-z_]+)", heading)}
    sent = set(re.findall(r'\{"type": "([a-z_]+)"', _host_sources()))
    assert doc == set(SCHEMAS) | sent, (f"docs/protocol.md §4 lacks {sorted(set(SCHEMAS) | sent - doc)}, "
                                        f"names no such message {sorted(doc - set(SCHEMAS) - sent)}")


def test_protocol_doc_lists_exactly_the_error_codes_the_host_answers():
    doc = set(re.findall(r"^\| `([a-z_]+)` \|", _protocol_section(5), re.M))
    host = set(re.findall(r'(?:ProtocolError\(|_code_for\(\w+, |"code": )"([a-z_]+)"', _host_sources()))
    assert doc == host, f"docs/protocol.md §5 lacks {sorted(host - doc)}, names no such code {sorted(doc - host)}"



def test_protocol_doc_says_branch_and_reset_drop_queued_events():
    """A client that keeps a list of waiting events (the editor's Events tab) must know which requests empty it;
    test_host_server.py pins the dropping itself."""
    for section in ("reset", "branch"):
        text = " ".join(_protocol_section(4).split(f"### {section} (")[1].split("###")[0].split())
        assert "Events accepted and not yet fired are dropped" in text, f"docs/protocol.md `{section}` must say so"


def test_editor_doc_names_every_option_of_play():
    from editor_gui.app import play

    text = (ROOT / "docs" / "editor.md").read_text(encoding="utf-8").split("## Window", 1)[0]
    missing = sorted(o for p in play.params if not getattr(p, "hidden", False) for o in p.opts
                     if o.startswith("--") and not re.search(rf"{o}\b", text))
    assert not missing, f"docs/editor.md's opening leaves out the `worldbridge play` options {missing}"


def test_python_doc_explains_every_error_code_a_client_can_get():
    text = (ROOT / "docs" / "python.md").read_text(encoding="utf-8").split("## Errors", 1)[1].split("\n## ", 1)[0]
    client = set(re.findall(r'ProtocolError\("([a-z_]+)"', (ROOT / "bridge" / "client.py").read_text(encoding="utf-8")))
    host = set(re.findall(r"^\| `([a-z_]+)` \|", _protocol_section(5), re.M))
    missing = sorted(c for c in client | host if f"`{c}`" not in text)
    assert not missing, f"docs/python.md's Errors section does not say what {missing} mean"


def test_model_doc_says_an_event_at_event_cfg_0_is_refused():
    """load_world users read docs/model.md's Using a world; test_prompts_world.py pins the refusal itself."""
    text = " ".join((ROOT / "docs" / "model.md").read_text(encoding="utf-8").split("## Using a world", 1)[1].split("\n### ", 1)[0].split())
    assert "`configure(event_cfg=0)`, which cancels every event, an event raises `ValueError`" in text


def test_python_doc_says_a_closed_remote_env_raises_runtime_error():
    """test_client_api.py pins the error itself."""
    text = " ".join((ROOT / "docs" / "python.md").read_text(encoding="utf-8").split("## A Gymnasium env", 1)[1].split())
    assert ("`RuntimeError` for `step` before `reset`, on a host's env after `close()`, or after a `step` or `reset` "
            "that raised") in text


def test_python_doc_says_how_to_tell_an_event_was_refused_at_its_frame():
    """Its `ok` came already; test_host_server.py pins the error's keys (event_req_id = that ok's req_id)."""
    text = " ".join((ROOT / "docs" / "python.md").read_text(encoding="utf-8").split("## World events", 1)[1].split("\n## ", 1)[0].split())
    assert "arrives in `client.errors`" in text and "`event_req_id` is the `req_id` of the `ok` that `event()` returned" in text


def test_a_typed_command_name_gets_the_nearest_command_suggested():
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["dmeo"])
    assert result.exit_code == 2
    assert "No such command 'dmeo'. Did you mean 'demo'?" in result.output, result.output


CHANGELOGS = [ROOT / "godot_addon" / "CHANGELOG.md", ROOT / "unity_plugin" / "CHANGELOG.md"]


@pytest.mark.parametrize("doc", [d for d in DOCS if d.parent.name != "unity_plugin"]  # test_unity_package.py: its own
                         + CHANGELOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_prose_fits_118_columns(doc: Path):
    long = long_prose_lines(doc)
    assert not long, f"{doc.relative_to(ROOT)} lines {long} are over 118 columns: rewrap them"


def _architecture_paragraph(folder: str) -> str:
    """One folder's paragraph of docs/architecture.md, whitespace joined, so a check reads only what describes it."""
    text = " ".join((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").split())
    return text.split(f"**`{folder}/`**", 1)[1].split(" **`", 1)[0]


def test_architecture_names_where_the_imports_run_against_the_data_flow():
    """The opening says data flows one way; the modules data and prompts import from later layers must be named, and
    the diagram's bridge/train/ box must not claim the prompt stages, which live in bridge/prompts/."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").split("## Folders")[0]
    intro = " ".join(" ".join(doc.split("```")[0::2]).split())
    upstream = {"data": "host|gym|client|train", "prompts": "train|host|client"}
    named = [f"`bridge/{m.replace('.', '/')}.py`" for folder, later in upstream.items()
             for p in (ROOT / "bridge" / folder).glob("*.py")
             for m in re.findall(rf"(?:from|import) bridge\.((?:{later})(?:\.\w+)?)", p.read_text(encoding="utf-8"))]
    missing = sorted(set(n for n in named if n not in intro))
    assert named and not missing, f"docs/architecture.md's opening does not say these imports run upstream: {missing}"
    lines = doc.split("```")[1].splitlines()
    row = next(n for n, line in enumerate(lines) if "bridge/train/" in line)
    col = lines[row].index("bridge/train/")
    box = " ".join(line[col:col + 18] for line in lines[row:row + 5])
    assert "prompt" not in box, f"the diagram's bridge/train/ box names the prompt stages: {box}"


def test_architecture_names_every_shared_test_module():
    paragraph = _architecture_paragraph("tests")
    shared = sorted(p.name for p in (ROOT / "tests").glob("*.py") if not p.name.startswith("test_"))
    missing = [name for name in shared if f"`{name}`" not in paragraph]
    assert not missing, f"docs/architecture.md's tests/ paragraph leaves out {missing}"


def test_architecture_names_every_public_name_of_values_and_the_default_address():
    import bridge.values as values

    bridge_paragraph = _architecture_paragraph("bridge")
    public = [n for n, v in vars(values).items() if not n.startswith("_")
              and (n.isupper() or inspect.isfunction(v) and v.__module__ == values.__name__)]
    missing = [n for n in public if f"`{n}`" not in bridge_paragraph]
    assert not missing, f"docs/architecture.md's bridge/ paragraph leaves out values.py's {missing}"
    assert "`DEFAULT_ADDRESS`" in _architecture_paragraph("bridge/host"), "name protocol.py's DEFAULT_ADDRESS"


def test_architecture_names_the_gymnasium_ids():
    from bridge.gym import ENV_IDS

    paragraph = _architecture_paragraph("bridge")
    missing = [i for i in [*ENV_IDS, "ENV_IDS"] if f"`{i}`" not in paragraph]
    assert not missing, f"docs/architecture.md's bridge/ paragraph leaves out the gymnasium ids {missing}"


def test_architecture_names_every_editor_module_and_unity_core_file():
    editor = _architecture_paragraph("editor_gui")
    missing = [p.name for p in sorted((ROOT / "editor_gui").glob("*.py")) if p.name != "__init__.py"
               and f"`{p.name}`" not in editor]
    unity = _architecture_paragraph("unity_plugin")
    missing += [f"Core/{p.name}" for p in sorted((ROOT / "unity_plugin" / "Runtime" / "Core").glob("*.cs"))
                if f"`{p.name}`" not in unity]
    assert not missing, f"docs/architecture.md leaves out {missing}"


def test_editor_doc_lists_every_editor_test_file():
    section = (ROOT / "docs" / "editor.md").read_text(encoding="utf-8").split("\n## Tests", 1)[1].split("\n## ", 1)[0]
    missing = [p.name for p in sorted((ROOT / "tests").glob("test_editor_*.py")) if f"`{p.name}`" not in section]
    assert not missing, f"docs/editor.md's Tests section leaves out {missing}"


def test_model_doc_file_table_names_every_model_and_training_file():
    table = (ROOT / "docs" / "model.md").read_text(encoding="utf-8").split("\n## ", 1)[0]
    rows = " ".join(re.findall(r"^\| (.*?) \|", table, re.M))  # a row's second train file is `name` alone
    missing = [p.name for p in sorted((ROOT / "bridge" / "model").glob("*.py")) if f"`{p.name}`" not in rows]
    missing += [f"../train/{p.name}" for p in sorted((ROOT / "bridge" / "train").iterdir())
                if p.suffix in (".py", ".sh") and f"`../train/{p.name}`" not in rows and f"`{p.name}`" not in rows]
    missing = [m for m in missing if not m.endswith("__init__.py")]
    assert not missing, f"docs/model.md's file table leaves out {missing}"


def test_protocol_doc_gives_the_editors_own_recordings_folder():
    from editor_gui.session_store import recordings_dir

    text = " ".join(_protocol_section(4).split("### record_start", 1)[1].split("###", 1)[0].split())
    where = f"`~/{recordings_dir().relative_to(Path.home()).as_posix()}`"
    assert f"(`worldbridge play` without `--host`) records inside {where}" in text, f"docs/protocol.md must say {where}"


def test_protocol_doc_says_a_sketch_may_be_jpeg_as_the_host_decodes():
    row = re.search(r"^\| `sketch` \| bin/nil \| (.*) \|$", _protocol_section(4), re.M)[1]
    assert "PNG (or JPEG" in row, row


def test_protocol_doc_too_large_example_is_what_the_host_says():
    from bridge.host import protocol as P

    row = re.search(r"^\| `too_large` \| (.*) \|$", _protocol_section(5), re.M)[1]
    said = re.search(r'\("(its [^"]+)"\)', row)
    assert said, "docs/protocol.md's too_large row must quote an example of the host's words"
    key, size = re.search(r"its (\w+) is (\d+) bytes", said[1]).groups()
    part = "x" * int(size) if key == "text" else b"x" * int(size)
    limit = next(p for p in COMMAND_LINES[("serve",)].params if p.name == "max_message_bytes").type.min  # the smallest
    message = P.too_large(max(int(size) + 100, limit + 1), limit, {"type": "start", key: part}).message
    assert message.endswith(": " + said[1]), f"the host would say: {message}"


def test_engine_readmes_say_a_text_sent_with_an_image_is_not_used():
    for readme in (ROOT / "unity_plugin" / "README.md", ROOT / "godot_addon" / "README.md"):
        text = " ".join(readme.read_text(encoding="utf-8").split())
        assert "with an image the text is not used (a sketch uses both)" in text.lower(), readme


def test_godot_readme_says_which_part_a_too_big_message_names():
    """The engines name the biggest part however small; the host only one that is at least half of the message."""
    text = " ".join((ROOT / "godot_addon" / "README.md").read_text(encoding="utf-8").split())
    assert "stands out" not in text
    assert "however small" in text and "at least half of the message" in text


def test_data_capture_help_and_doc_give_a_worldbridge_env():
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["data", "capture", "--help"])
    assert "WorldBridge/Sandbox-v0" in result.output, result.output
    assert "--env WorldBridge/Sandbox-v0" in (ROOT / "docs" / "data.md").read_text(encoding="utf-8")


def test_readme_installs_what_ci_installs():
    """The README's apt lists (the editor headless, the C# tests) left out libegl1/libgl1/libfontconfig1/libdbus-1-3,
    which Qt's GUI library loads, and libnunit-framework2.6.3-cil, which nunit-console does not pull in: a newcomer
    who followed them got an ImportError from `play`, and C# tests that failed where the README said they skip."""
    ci = re.search(r"apt-get install ([^>\n]+)", (ROOT / ".ci" / "run").read_text(encoding="utf-8"))[1].split()
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    editor = re.search(r"install `([^`]+)` \(as `\.ci/run` does\)", text)
    csharp = re.search(r"The C# tests need (.*?) from Debian", text)
    assert editor and csharp, "README must give the editor's apt packages and the C# tests' ones"
    said = editor[1].split() + re.findall(r"`([^`]+)`", csharp[1])
    assert sorted(said) == sorted(p for p in ci if not p.startswith("-")), (said, ci)
