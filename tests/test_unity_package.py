"""The Unity package's layout: .meta files with unique GUIDs (git installs skip assets without one), manifests that
parse, asmdefs wired the way Unity expects, and a sample scene that points at the sample's script."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from helpers import long_prose_lines

PLUGIN = Path(__file__).resolve().parents[1] / "unity_plugin"
FIX = "run `python unity_plugin/Tools~/add_metas.py` to write the missing ones"


def _add_metas():
    spec = importlib.util.spec_from_file_location("add_metas", PLUGIN / "Tools~" / "add_metas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _asmdefs() -> dict[str, dict]:
    return {p.relative_to(PLUGIN).as_posix(): json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(PLUGIN.rglob("*.asmdef"))}


def test_every_asset_has_a_meta_with_a_unique_guid():
    tool = _add_metas()
    assets = tool.assets(PLUGIN)
    assert len(assets) > 20, "the asset walk found almost nothing: is unity_plugin/ there?"
    missing = [a.as_posix() for a in assets if not (PLUGIN / f"{a.as_posix()}.meta").is_file()]
    assert not missing, f"assets without a .meta: {missing}; {FIX}"
    guids: dict[str, str] = {}
    for meta in sorted(PLUGIN.rglob("*.meta")):
        rel = meta.relative_to(PLUGIN).as_posix()
        asset = meta.with_suffix("")
        assert asset.exists(), f"{rel} has no asset next to it: delete it or restore {asset.name}"
        assert tool.needs_meta(asset.relative_to(PLUGIN)), f"{rel} sits where Unity imports nothing; delete it"
        text = meta.read_text(encoding="utf-8")
        assert text.startswith("fileFormatVersion: 2\n"), f"{rel}: not a Unity .meta file"
        found = re.findall(r"^guid: (\S+)$", text, re.M)
        assert len(found) == 1 and re.fullmatch(r"[0-9a-f]{32}", found[0]), f"{rel}: needs one 32-hex-digit guid"
        assert found[0] not in guids, f"{rel} and {guids.get(found[0])} share GUID {found[0]}"
        guids[found[0]] = rel
        assert ("folderAsset: yes" in text) == asset.is_dir(), f"{rel}: folderAsset must match the asset's kind"


def test_meta_tool_skips_what_unity_ignores():
    tool = _add_metas()
    assert tool.needs_meta(Path("Runtime/WorldBridgeClient.cs"))
    assert tool.needs_meta(Path("Samples~/BasicWorld/WorldBridgeSample.cs"))
    assert not tool.needs_meta(Path("Samples~"))
    assert not tool.needs_meta(Path("Tests/Interop~/InteropClient.cs"))
    assert not tool.needs_meta(Path("Tests/CompileOnly~"))
    assert not tool.needs_meta(Path("Runtime/.hidden.cs"))
    assert tool.guid(Path("a.cs")) == tool.guid(Path("a.cs")) != tool.guid(Path("b.cs"))


def test_package_manifest():
    manifest = json.loads((PLUGIN / "package.json").read_text(encoding="utf-8"))
    assert manifest["name"] == "com.worldbridge.client"
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert re.fullmatch(r"20\d\d\.\d", manifest["unity"]) or re.fullmatch(r"6000\.\d", manifest["unity"])
    assert manifest["samples"], "the Package Manager shows samples only when package.json lists them"
    for sample in manifest["samples"]:
        assert {"displayName", "description", "path"} <= set(sample)
        assert sample["path"].startswith("Samples~/") and (PLUGIN / sample["path"]).is_dir(), sample["path"]


def test_asmdefs_parse_and_are_wired_like_unity_expects():
    asmdefs = _asmdefs()
    by_name = {a["name"]: a for a in asmdefs.values()}
    assert len(by_name) == len(asmdefs), "two asmdefs share a name"
    core = asmdefs["Runtime/Core/WorldBridge.Core.asmdef"]
    assert core["noEngineReferences"] is True and core["references"] == []
    assert "WorldBridge.Core" in asmdefs["Runtime/WorldBridge.Runtime.asmdef"]["references"]
    editor = asmdefs["Editor/WorldBridge.Editor.asmdef"]
    assert editor["includePlatforms"] == ["Editor"]
    tests = asmdefs["Tests/Core/WorldBridge.Core.Tests.asmdef"]
    assert "UNITY_INCLUDE_TESTS" in tests["defineConstraints"] and "nunit.framework.dll" in tests["precompiledReferences"]
    unity_assemblies = {"UnityEngine.UI", "Unity.InputSystem", "UnityEngine.TestRunner", "UnityEditor.TestRunner"}
    for path, a in asmdefs.items():
        for ref in a["references"]:
            assert ref in by_name or ref in unity_assemblies, f"{path} references unknown assembly {ref}"
        for define in a.get("versionDefines", []):
            assert {"name", "expression", "define"} <= set(define), f"{path}: incomplete versionDefine"


def test_core_sources_do_not_touch_the_engine():
    sources = sorted((PLUGIN / "Runtime" / "Core").glob("*.cs"))
    assert len(sources) >= 4, sources  # the codec, ZMTP, protocol and connection at least
    for cs in sources:
        text = cs.read_text(encoding="utf-8")
        assert "UnityEngine" not in text and "UnityEditor" not in text, f"{cs.name}: the core must stay engine-free"


def test_sample_scene_points_at_the_bootstrap_script_and_its_fields():
    sample = PLUGIN / "Samples~" / "BasicWorld"
    scene = (sample / "WorldBridgeSample.unity").read_text(encoding="utf-8")
    assert scene.startswith("%YAML 1.1\n%TAG !u! tag:unity3d.com,2011:\n")
    meta = (sample / "WorldBridgeSample.cs.meta").read_text(encoding="utf-8")
    guid = re.search(r"^guid: (\S+)$", meta, re.M).group(1)
    assert f"m_Script: {{fileID: 11500000, guid: {guid}, type: 3}}" in scene
    script = (sample / "WorldBridgeSample.cs").read_text(encoding="utf-8")
    assert "class WorldBridgeSample : MonoBehaviour" in script
    serialized = re.findall(r"^  (\w+): ", scene.split("m_EditorClassIdentifier:")[1], re.M)
    assert serialized, "the scene sets no fields of the sample component"
    for field in serialized:
        assert re.search(rf"public \S+ {field}\b", script), f"scene sets '{field}', which WorldBridgeSample lacks"
    ids = re.findall(r"^--- !u!\d+ &(\d+)$", scene, re.M)
    assert len(ids) == len(set(ids)) == 3
    for ref in re.findall(r"\{fileID: (\d+)\}", scene):
        assert ref == "0" or ref in ids, f"the scene references missing object {ref}"


def test_readme_has_install_steps_and_compatibility_table():
    readme = (PLUGIN / "README.md").read_text(encoding="utf-8")
    assert ".git?path=/unity_plugin" in readme
    assert "| Unity" in readme and "protocol" in readme.lower()
    assert "CompileOnly~" in readme, "the README documents how CI compile-checks the Unity scripts"


def test_readme_prose_fits_118_columns():
    long = long_prose_lines(PLUGIN / "README.md")
    assert not long, f"unity_plugin/README.md lines {long} are over 118 columns: rewrap them"


@pytest.mark.parametrize("stub", sorted((PLUGIN / "Tests" / "CompileOnly~").glob("*.cs")), ids=lambda p: p.name)
def test_compile_only_stubs_are_labelled(stub: Path):
    head = stub.read_text(encoding="utf-8")[:400]
    assert "COMPILE-ONLY STUB" in head and "NOT product code" in head


def test_versions_agree_and_the_changelog_describes_this_release():
    """package.json, the version the plugin reports in hello, and the CHANGELOG's newest release move together (an
    `## Unreleased` entry above it gathers the changes for the next one)."""
    version = json.loads((PLUGIN / "package.json").read_text(encoding="utf-8"))["version"]
    protocol = (PLUGIN / "Runtime" / "Core" / "Protocol.cs").read_text(encoding="utf-8")
    assert f'PluginVersion = "{version}"' in protocol, "Protocol.PluginVersion must equal package.json's version"
    minor = re.search(r"Major = (\d+), Minor = (\d+)", protocol)
    assert minor and (minor[1], minor[2]) == ("1", "3"), "the plugin speaks protocol 1.3"
    changelog = (PLUGIN / "CHANGELOG.md").read_text(encoding="utf-8")
    top = re.search(r"^## (?!Unreleased$)(\S+)", changelog, re.M)
    assert top and top[1] == version, f"CHANGELOG.md's newest entry is {top and top[1]}, package.json says {version}"


def test_readme_documents_protocol_1_1_and_1_2():
    readme = (PLUGIN / "README.md").read_text(encoding="utf-8")
    for needle in ("PasteLayer", "ScreenToFramePixel", "WorldPaste", "CanEdit", "unsupported", "SetEventGuidance", "1.1",
                   "1.2", "topP", "unmask"):
        assert needle in readme, f"README.md does not mention {needle}"
