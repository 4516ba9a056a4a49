"""The Godot addon and demo without Godot: syntax, lint, format, every path and reference, the
engine API names used, and Asset Library hygiene (no Godot binary can be installed here)."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GODOT = ROOT / "godot_addon"
ADDON = GODOT / "addons" / "world_bridge"
sys.path.insert(0, str(GODOT / "tools"))

import gdcheck  # noqa: E402

GD_FILES = sorted(GODOT.rglob("*.gd"))
TEXT_FILES = GD_FILES + sorted(GODOT.rglob("*.tscn")) + sorted(GODOT.rglob("*.cfg")) + [GODOT / "project.godot"]


def _tool(name: str) -> str:
    exe = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(exe).exists():
        pytest.skip(f"{name} is not installed: pip install gdtoolkit")
    return exe


def _res(path: str) -> Path:
    return GODOT / path[len("res://"):]


@pytest.mark.parametrize("tool,args", [("gdparse", []), ("gdlint", []), ("gdformat", ["--check"])])
def test_gdtoolkit_accepts_every_script(tool, args):
    assert len(GD_FILES) >= 10
    result = subprocess.run([_tool(tool), *args, *map(str, GD_FILES)], capture_output=True, text=True,
                            cwd=GODOT, timeout=120)
    assert result.returncode == 0, f"{tool} failed:\n{result.stdout}\n{result.stderr}"


def test_every_res_path_and_preload_target_exists():
    checked = 0
    for path in TEXT_FILES:
        text = path.read_text(encoding="utf-8")
        for res in re.findall(r'"(res://[^"]+)"', text):
            assert _res(res).exists(), f"{path.relative_to(GODOT)} names {res}, which does not exist"
            checked += 1
        for rel in re.findall(r'\b(?:preload|load)\("([^"]+)"\)', text):
            target = _res(rel) if rel.startswith("res://") else (path.parent / rel)
            assert target.exists(), f"{path.relative_to(GODOT)}: preload/load target {rel} does not exist"
            checked += 1
    assert checked >= 20


def test_class_names_are_unique_and_do_not_shadow_engine_classes():
    names: dict[str, Path] = {}
    for path in GD_FILES:
        for name in re.findall(r"^class_name\s+(\w+)", path.read_text(encoding="utf-8"), re.M):
            assert name not in names, f"class_name {name} in {path} and {names[name]}"
            assert name not in gdcheck.ENGINE_API and name not in gdcheck.BUILTIN_TYPES, f"{name} shadows Godot"
            names[name] = path
    assert {"WorldBridgeClient", "WorldView", "WorldInput", "WorldBridgeMsgPack", "WorldBridgeZmtp"} <= set(names)


def test_plugin_cfg_names_an_editor_plugin_script():
    cfg = configparser.ConfigParser()
    cfg.read(ADDON / "plugin.cfg", encoding="utf-8")
    plugin = cfg["plugin"]
    for key in ("name", "description", "author", "version", "script"):
        assert plugin.get(key, "").strip('"'), f"plugin.cfg has no {key}"
    script = ADDON / plugin["script"].strip('"')
    text = script.read_text(encoding="utf-8")
    assert script.exists() and text.startswith("@tool") and "extends EditorPlugin" in text


def test_gdcheck_finds_no_undeclared_names_or_unknown_api():
    problems = gdcheck.check_project(GODOT)
    assert problems == [], "\n".join(problems)


def test_gdcheck_catches_typical_mistakes(tmp_path):
    """The name check can fail: typos in identifiers, engine methods, our own API and := inference."""
    copy = tmp_path / "godot_addon"
    shutil.copytree(GODOT, copy)
    bad = copy / "addons" / "world_bridge" / "core" / "zmtp.gd"
    bad.write_text(bad.read_text(encoding="utf-8") + (
        "\n\nfunc _mistakes(d: Dictionary) -> void:\n"
        "\tvar a := d[\"x\"]\n\tvar b := undefined_thing\n\tvar c := Time.get_tick_msec()\n"
        "\t_tcp.pol()\n\tvar w := WorldBridgeClient.new()\n\tw.sned_input(1)\n"
        "\tmatch 1:\n\t\tTextureRect.STRETCH_TILT:\n\t\t\tpass\n"), encoding="utf-8")
    problems = "\n".join(gdcheck.check_project(copy))
    for expected in ("cannot infer", '"undefined_thing"', "get_tick_msec", "no member pol", "sned_input",
                     "no member STRETCH_TILT"):
        assert expected in problems


# --- Scenes and project settings -------------------------------------------------------------


def _parse_tscn(path: Path) -> tuple[dict, list[dict]]:
    """ext_resources by id and nodes (name, type, parent, props) of a Godot 4 text scene."""
    resources, nodes, current = {}, [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("[ext_resource"):
            attrs = dict(re.findall(r'(\w+)="([^"]*)"', line))
            resources[attrs["id"]] = attrs
        elif line.startswith("[node"):
            attrs = dict(re.findall(r'(\w+)="([^"]*)"', line))
            current = {"name": attrs["name"], "type": attrs.get("type"), "parent": attrs.get("parent"), "props": {}}
            nodes.append(current)
        elif line.startswith("[gd_scene"):
            header = dict(re.findall(r"(\w+)=(\w+)", line))
            assert header.get("format") == "3", "Godot 4 scenes are format=3"
        elif current is not None and " = " in line:
            key, value = line.split(" = ", 1)
            current["props"][key] = value
    return resources, nodes


def _node_path(node: dict) -> str:
    if node["parent"] is None:
        return "."
    return node["name"] if node["parent"] == "." else f"{node['parent']}/{node['name']}"


def _resolve(base: str, rel: str) -> str:
    parts = [] if base == "." else base.split("/")
    for p in rel.split("/"):
        if p == "..":
            assert parts, f"NodePath {rel} climbs above the scene root"
            parts.pop()
        elif p != ".":
            parts.append(p)
    return "/".join(parts) or "."


def test_demo_scene_references_resolve():
    resources, nodes = _parse_tscn(GODOT / "demo" / "demo.tscn")
    paths = {_node_path(n): n for n in nodes}
    text = (GODOT / "demo" / "demo.tscn").read_text(encoding="utf-8")
    steps = int(re.search(r"load_steps=(\d+)", text).group(1))
    assert steps == len(resources) + text.count("[sub_resource") + 1
    for res in resources.values():
        assert _res(res["path"]).exists()
        assert (res["type"] == "Script") == res["path"].endswith(".gd")
    for node in nodes:
        if node["parent"] is not None:
            parent = node["parent"]
            assert parent == "." or parent in paths, f"node {node['name']}: parent {parent} is not in the scene"
        for key, value in node["props"].items():
            for rid in re.findall(r'ExtResource\("([^"]+)"\)', value):
                assert rid in resources, f"{node['name']}.{key} uses unknown ExtResource {rid}"
            for rel in re.findall(r'NodePath\("([^"]*)"\)', value):
                target = _resolve(_node_path(node), rel)
                assert target in paths, f"{node['name']}.{key} = {rel}: no node at {target}"
        if "script" in node["props"]:
            rid = re.search(r'ExtResource\("([^"]+)"\)', node["props"]["script"]).group(1)
            script = _res(resources[rid]["path"]).read_text(encoding="utf-8")
            base = re.search(r"^extends (\w+)", script, re.M).group(1)
            assert base == node["type"], f"{node['name']} is a {node['type']} but its script extends {base}"
            exported = set(re.findall(r"^@export\w*(?:\([^)]*\))? var (\w+)", script, re.M))
            for key in node["props"]:
                if key not in ("script", "layout_mode", "anchors_preset", "anchor_right", "anchor_bottom",
                               "grow_horizontal", "grow_vertical", "mouse_filter", "tooltip_text", "expand_mode",
                               "stretch_mode"):
                    assert key in exported, f"{node['name']}.{key} is not an @export var of its script"
    demo = (GODOT / "demo" / "demo.gd").read_text(encoding="utf-8")
    for rel in re.findall(r"\$([\w/]+)", demo):
        assert rel in paths, f"demo.gd uses ${rel}, which is not a node of demo.tscn"


def _project_sections() -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in (GODOT / "project.godot").read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[] "), {})
        elif current is not None and re.match(r"^[\w/.]+=", line):
            key, value = line.split("=", 1)
            current[key] = value
    return sections


def test_project_godot_resolves_and_maps_every_action_the_code_uses():
    sections = _project_sections()
    app = sections["application"]
    assert _res(app["run/main_scene"].strip('"')).exists()
    assert _res(app["config/icon"].strip('"')).exists()
    assert '"4.2"' in app["config/features"]
    for cfg in re.findall(r'"(res://[^"]+)"', sections["editor_plugins"]["enabled"]):
        assert _res(cfg).exists()
    actions = set(sections["input"])
    used = set()
    for path in GD_FILES:
        used |= set(re.findall(r'is_action(?:_just)?_pressed\("(\w+)"\)', path.read_text(encoding="utf-8")))
    bindings = re.search(r"const DEFAULT_BINDINGS := \{(.*?)\n\}", (ADDON / "nodes" / "world_input.gd").read_text(), re.S)
    for key in re.findall(r'"([\w+]+)":', bindings.group(1)):
        used |= set(key.split("+"))
    assert used and used <= actions, f"actions used but not in project.godot: {sorted(used - actions)}"
    for name in actions:
        events = sections["input"][name]
        assert "Object(InputEvent" in events or name in used
    # keyboard and gamepad for movement
    text = (GODOT / "project.godot").read_text(encoding="utf-8")
    block = text[text.index("wb_right={"):text.index("wb_jump={")]
    assert "InputEventKey" in block and "InputEventJoypadButton" in block and "InputEventJoypadMotion" in block


# --- Asset Library hygiene --------------------------------------------------------------------


def test_licence_readme_and_export_ignore():
    for lic in (GODOT / "LICENSE", ADDON / "LICENSE"):
        text = lic.read_text(encoding="utf-8")
        assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    readme = (GODOT / "README.md").read_text(encoding="utf-8")
    for needle in ("## Install", "| Godot", "4.2", "gdsim", "not been run in Godot"):
        assert needle in readme, f"README lacks {needle!r}"
    attrs = (GODOT / ".gitattributes").read_text(encoding="utf-8")
    for ignored in ("/demo", "/tools", "/project.godot", "/README.md", "/.gitattributes"):
        assert re.search(rf"^{re.escape(ignored)}\S* export-ignore", attrs, re.M), f"{ignored} is not export-ignore"
    if shutil.which("git"):
        out = subprocess.run(["git", "check-attr", "export-ignore", "--", "demo/demo.tscn", "project.godot",
                              "tools/gdsim.py", "addons/world_bridge/plugin.cfg"],
                             cwd=GODOT, capture_output=True, text=True)
        if out.returncode == 0:
            lines = dict(line.rsplit(": ", 1) for line in out.stdout.strip().splitlines())
            assert lines["demo/demo.tscn: export-ignore"] == "set"
            assert lines["tools/gdsim.py: export-ignore"] == "set"
            assert lines["addons/world_bridge/plugin.cfg: export-ignore"] == "unspecified"


def test_changelog_newest_version_is_plugin_cfg_version():
    """plugin.cfg, the client name sent in hello, and the CHANGELOG's newest release move together (an
    `## Unreleased` entry above it gathers the changes for the next one)."""
    cfg = configparser.ConfigParser()
    cfg.read(ADDON / "plugin.cfg", encoding="utf-8")
    version = cfg["plugin"]["version"].strip('"')
    protocol = (ADDON / "core" / "protocol.gd").read_text(encoding="utf-8")
    assert f'CLIENT_NAME := "godot/{version}"' in protocol, "protocol.gd's CLIENT_NAME must carry plugin.cfg's version"
    changelog = (GODOT / "CHANGELOG.md").read_text(encoding="utf-8")
    top = re.search(r"^## (?!Unreleased$)(\S+)", changelog, re.M)
    assert top and top[1] == version, f"CHANGELOG.md's newest entry is {top and top[1]}, plugin.cfg says {version}"


def _readme_paragraph(script: Path) -> tuple[str, str, str]:
    """`script`'s text, its class_name and the README paragraph that opens with **`ClassName`**."""
    text = script.read_text(encoding="utf-8")
    node = re.search(r"^class_name (\w+)", text, re.M)[1]
    readme = (GODOT / "README.md").read_text(encoding="utf-8")
    paragraph = re.search(rf"^\*\*`{node}`\*\*.*?(?=\n\n)", readme, re.M | re.S)
    assert paragraph, f"README.md has no **`{node}`** paragraph"
    return text, node, paragraph[0]


@pytest.mark.parametrize("script", sorted((ADDON / "nodes").glob("*.gd")), ids=lambda p: p.name)
def test_readme_documents_every_exported_property(script: Path):
    """Each node's paragraph in the README names every property the inspector shows for it."""
    text, node, paragraph = _readme_paragraph(script)
    exports = re.findall(r"^@export\S*\s+var (\w+)", text, re.M)
    assert exports, f"no @export found in {script.name}"
    missing = [name for name in exports if f"`{name}`" not in paragraph]
    assert not missing, f"README.md's {node} paragraph does not list the exports {missing}"


@pytest.mark.parametrize("script", sorted((ADDON / "nodes").glob("*.gd")), ids=lambda p: p.name)
def test_readme_documents_every_signal(script: Path):
    """A game connects to signals by name: WorldInput's action_sent was in no README paragraph."""
    text, node, paragraph = _readme_paragraph(script)
    signals = re.findall(r"^signal (\w+)", text, re.M)
    missing = [name for name in signals if f"`{name}(" not in paragraph]
    assert not missing, f"README.md's {node} paragraph does not name the signals {missing} (as `name(args)`)"


def _doc_comment(source: str, func: str) -> str:
    """The `##` lines right above `func` in `source`: what Godot's help shows for it."""
    lines = source[:re.search(rf"^(static )?func {func}\(", source, re.M).start()].splitlines()
    doc = []
    while lines and lines[-1].startswith("##"):
        doc.insert(0, lines.pop()[2:].strip())
    return " ".join(doc)


def test_the_number_and_plural_helpers_are_each_documented_by_their_own_comment():
    """plural() was inserted between _is_number's doc comment and _is_number: the number note documented plural."""
    dock = (ADDON / "editor" / "dock.gd").read_text(encoding="utf-8")
    protocol = (ADDON / "core" / "protocol.gd").read_text(encoding="utf-8")  # plural() moved there, for the runner
    assert _doc_comment(protocol, "plural") == '"1 session", "3 sessions": a count as a person writes it.'
    assert _doc_comment(dock, "_is_number").startswith("A float field may come as an integer")
