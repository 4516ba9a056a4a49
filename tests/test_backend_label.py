"""One wording names the running backend everywhere: Python's `backend_label`, and the copies Unity and Godot keep."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bridge.backend import SANDBOX_LABEL, WORLD_MODEL_LABEL, backend_label

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "godot_addon" / "tools"))

import gdsim  # noqa: E402

PROTOCOL_CS = ROOT / "unity_plugin" / "Runtime" / "Core" / "Protocol.cs"
PROTOCOL_GD = "res://addons/world_bridge/core/protocol.gd"
CASES = [("sandbox", "sandbox game"), ("world_model", "world model tiny (default_world, step 4627)"),
         ("replay", "x"), ("", "x")]


def test_backend_label_says_which_backend_runs():
    assert backend_label("sandbox", "sandbox game") == \
        "SANDBOX GAME (test backend, not the world model): sandbox game"
    assert backend_label("world_model", "tiny") == "WORLD MODEL: tiny"
    assert backend_label("world_model", "world model tiny (w, step 9)") == "WORLD MODEL: tiny (w, step 9)"  # once
    assert backend_label("replay", "x") == "unknown backend replay: x"
    assert backend_label("", "x") == "unknown backend: x"


@pytest.mark.parametrize("label", [SANDBOX_LABEL, WORLD_MODEL_LABEL])
def test_unity_keeps_the_python_wording(label):
    """Protocol.cs's BackendLabel interpolates BackendName where Python formats {name}."""
    cs = PROTOCOL_CS.read_text(encoding="utf-8")
    assert '$"' + label.replace("{name}", "{") in cs, f"Protocol.cs must say {label!r}"


@pytest.mark.parametrize("label", [SANDBOX_LABEL, WORLD_MODEL_LABEL])
def test_godot_keeps_the_python_wording(label):
    gd = (ROOT / "godot_addon" / PROTOCOL_GD.removeprefix("res://")).read_text(encoding="utf-8")
    assert '"' + label.replace("{name}", "%s") + '" % name' in gd, f"protocol.gd must say {label!r}"


@pytest.mark.parametrize("kind, name", CASES)
def test_godot_describe_backend_matches_python(kind, name):
    sim = gdsim.Sim(ROOT / "godot_addon")
    try:
        assert sim.call_static(sim.script(PROTOCOL_GD), "describe_backend", [kind, name]) == backend_label(kind, name)
    finally:
        sim.close()
