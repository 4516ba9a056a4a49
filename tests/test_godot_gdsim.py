"""gdsim's own semantics: the GDScript and Godot rules the addon tests rely on (and where gdsim is
stricter than Godot on purpose), checked on small scripts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "godot_addon" / "tools"))

import gdsim  # noqa: E402


def _run(tmp_path: Path, body: str, *args):
    """Runs `static func f(...)` written in GDScript and returns its result (as plain Python)."""
    (tmp_path / "t.gd").write_text("extends RefCounted\n\n\n" + body + "\n", encoding="utf-8")
    sim = gdsim.Sim(tmp_path)
    return gdsim.to_py(sim.call_static(sim.script("res://t.gd"), "f", [gdsim.to_gd(a) for a in args]))


def test_integer_semantics(tmp_path):
    body = ("static func f() -> Array:\n"
            "\treturn [7 / 2, -7 / 2, -7 % 3, 1 << 63, (1 << 63) - 1 + 1, 0x7fffffffffffffff + 1, 5 / 2.0]")
    assert _run(tmp_path, body) == [3, -3, -1, -(2**63), -(2**63), -(2**63), 2.5]


def test_comparing_unrelated_types_is_an_error_like_godot(tmp_path):
    with pytest.raises(gdsim.SimError, match='Invalid operands "String" and "int"'):
        _run(tmp_path, 'static func f() -> bool:\n\treturn "1" == 1')
    assert _run(tmp_path, "static func f() -> Array:\n\treturn [1 == 1.0, null == 0, [1] == [1.0]]") == [
        True, False, False]


def test_strings_and_containers_are_not_conditions(tmp_path):
    with pytest.raises(gdsim.SimError, match="used as a condition"):
        _run(tmp_path, 'static func f() -> int:\n\tif "x":\n\t\treturn 1\n\treturn 0')


def test_packed_byte_array_models(tmp_path):
    body = ("static func f() -> Array:\n"
            "\tvar b := PackedByteArray([78, 85, 76, 76, 0, 65])\n"
            "\tvar c := PackedByteArray()\n"
            "\tc.resize(2)\n"
            "\tvar buf := StreamPeerBuffer.new()\n"
            "\tbuf.big_endian = true\n"
            "\tbuf.put_u16(258)\n"
            "\tbuf.put_u64(-1)\n"
            "\tbuf.seek(2)\n"
            "\treturn [b.get_string_from_ascii(), c[0] == 0, buf.data_array.slice(0, 2), buf.get_u64(), b.slice(-2)]")
    assert _run(tmp_path, body) == ["NULL", False, b"\x01\x02", -1, b"\x00A"]


def test_typed_variables_convert_numbers_and_refuse_the_rest(tmp_path):
    assert _run(tmp_path, "static func f() -> Array:\n\tvar x: float = 1\n\tvar y: int = 2.9\n\treturn [x, y]") == [
        1.0, 2]
    with pytest.raises(gdsim.SimError, match="Trying to assign"):
        _run(tmp_path, 'static func f() -> void:\n\tvar x: PackedByteArray = null')


def test_json_numbers_are_floats_like_godot(tmp_path):
    assert _run(tmp_path, 'static func f() -> Variant:\n\treturn JSON.parse_string("[1, 2.5, {\\"a\\": 3}]")') == [
        1.0, 2.5, {"a": 3.0}]


def test_format_operator_checks_argument_count(tmp_path):
    assert _run(tmp_path, 'static func f() -> String:\n\treturn "%s=%02x %.1f" % ["a", 10, 1.5]') == "a=0a 1.5"
    with pytest.raises(gdsim.SimError, match="formatting"):
        _run(tmp_path, 'static func f() -> String:\n\treturn "%s %s" % ["a"]')
