"""The GDScript msgpack codec, builders and ZMTP framing, executed by gdsim (a Python model of
GDScript and the Godot APIs; no Godot binary exists here) against the golden vectors and
against the Python raw-socket client's encoder (tests/zmtp_raw.py)."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Token, Tree

ROOT = Path(__file__).resolve().parents[1]
GODOT = ROOT / "godot_addon"
VECTORS = ROOT / "docs" / "protocol" / "vectors"
sys.path.insert(0, str(GODOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

import gdsim  # noqa: E402
import zmtp_raw  # noqa: E402
from test_protocol_vectors import same  # noqa: E402  (type- and key-order-strict equality)

MSGPACK = "res://addons/world_bridge/core/msgpack.gd"
ZMTP = "res://addons/world_bridge/core/zmtp.gd"


@pytest.fixture(scope="module")
def sim():
    s = gdsim.Sim(GODOT)
    yield s
    s.close()


def _run_vector_suite(project: Path) -> dict:
    sim = gdsim.Sim(project)
    tests = sim.new(sim.script("res://addons/world_bridge/tests/vector_tests.gd"))
    return gdsim.to_py(sim.call_method(tests, "run", [str(VECTORS)]))


def test_vector_suite_passes_in_gdsim():
    """The same vector_tests.gd the headless Godot runner uses, executed by gdsim."""
    result = _run_vector_suite(GODOT)
    assert result["failures"] == []
    assert result["passed"] >= 350  # every vector decoded and re-encoded, builders, framing
    assert result["skipped"] == 1  # uint64_max: GDScript ints are signed 64-bit
    decode_only = [v for v in json.loads((VECTORS / "msgpack.json").read_text(encoding="utf-8"))["vectors"]
                   if v.get("decode_only")]
    assert decode_only and result["decode_only"] == len(decode_only), "decode_only vectors were not all read"


@pytest.mark.parametrize("old,new", [
    ("\t\telif n <= 0xff:\n\t\t\tbuf.put_u8(UINT8)", "\t\telif n <= 0xfe:\n\t\t\tbuf.put_u8(UINT8)"),  # int width
    ("\t\t\tbuf.put_double(value)", "\t\t\tbuf.put_float(value)"),  # float64 rule
    ("utf8.size(), 0xa0, 31,", "utf8.size(), 0xa0, 30,"),  # str class
    ("\telif n <= 0xff and codes[0] != 0:", "\telif n <= 0xfe and codes[0] != 0:"),  # str/bin 8-bit length
    ("\t\tvalue = b - 0x100", "\t\tvalue = b - 0xff"),  # negative fixint decode
    ("n, 0x90, 15, [0, ARRAY16", "n, 0x90, 14, [0, ARRAY16"),  # fixarray holds 15 items
    ("map.size(), 0x80, 15,", "map.size(), 0x80, 14,"),  # fixmap holds 15 pairs
    ("\telif n <= 0xffff:\n\t\tbuf.put_u8(codes[1])", "\telif n <= 0xfffe:\n\t\tbuf.put_u8(codes[1])"),  # 16-bit length
])
def test_vector_suite_fails_when_a_rule_is_broken(tmp_path, old, new):
    """Mutation check: the vectors and the length boundaries are able to fail, and fail for each broken encoding
    rule."""
    copy = tmp_path / "godot_addon"
    shutil.copytree(GODOT, copy, ignore=shutil.ignore_patterns("tools"))
    codec = copy / "addons" / "world_bridge" / "core" / "msgpack.gd"
    text = codec.read_text(encoding="utf-8")
    assert old in text
    codec.write_text(text.replace(old, new), encoding="utf-8")
    assert _run_vector_suite(copy)["failures"] != [] or _length_boundaries_unlike_python(copy) != []


def _length_boundaries_unlike_python(project: Path) -> list[str]:
    """Strings and bins (up to 65536 bytes) and arrays and maps (up to 256 items) at each size where msgpack's
    header changes form, which the codec at `project` encodes unlike the Python raw client."""
    sim = gdsim.Sim(project)
    codec = sim.script(MSGPACK)
    values = [v for n in (31, 32, 255, 256, 65535, 65536) for v in ("s" * n, b"\0" * n)]
    values += [v for n in (15, 16, 255, 256) for v in ([0] * n, {str(i): 0 for i in range(n)})]
    unlike = []
    for value in values:
        encoded = gdsim.to_py(sim.call_static(codec, "encode", [gdsim.to_gd(value)]))
        if encoded["bytes"] != zmtp_raw.pack(value):
            unlike.append(f"{type(value).__name__} of {len(value)}")
    sim.close()
    return unlike


def test_length_boundaries_match_the_python_raw_client():
    assert _length_boundaries_unlike_python(GODOT) == []


def test_encoder_dispatch_table_covers_every_rule():
    """Parse msgpack.gd: every Variant type and every int width of the spec is handled (the length boundaries are
    pinned by what the codec writes: test_length_boundaries_match_the_python_raw_client and the mutations above)."""
    sim = gdsim.Sim(GODOT)
    script = sim.script(MSGPACK)
    write = script.funcs["_write"]
    match = next(st for st in write.body if isinstance(st, Tree) and st.data == "match_stmt")
    patterns = {str(tok) for tok in match.scan_values(lambda v: isinstance(v, Token) and v.type == "NAME")}
    required = {"TYPE_NIL", "TYPE_BOOL", "TYPE_INT", "TYPE_FLOAT", "TYPE_STRING", "TYPE_STRING_NAME",
                "TYPE_PACKED_BYTE_ARRAY", "TYPE_ARRAY", "TYPE_DICTIONARY"}
    assert required <= patterns

    def numbers(fn: str) -> set[int]:
        body = script.funcs[fn].body
        return {int(str(t), 0) for st in body if isinstance(st, Tree)
                for t in st.scan_values(lambda v: isinstance(v, Token) and v.type in ("NUMBER", "HEX"))}

    assert {0x7F, 0xFF, 0xFFFF, 0xFFFFFFFF, -32, -128, -32768, -2147483648} <= numbers("_write_int")
    encoder_text = "\n".join(str(script.funcs[f].body) for f in ("_write", "_write_int"))
    assert "put_double" in encoder_text and "put_float" not in encoder_text


@pytest.mark.parametrize("n", [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1,
                               -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)])
def test_int_boundaries_match_the_python_raw_client(sim, n):
    encoded = gdsim.to_py(sim.call_static(sim.script(MSGPACK), "encode", [n]))
    assert encoded["error"] == "" and encoded["bytes"] == zmtp_raw.pack(n)



# Godot Strings end at a NUL character (String::parse_utf8), so protocol strings never hold one.
TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=300)
SHARED = gdsim.Sim(GODOT)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | TEXT | st.binary(max_size=300),
    lambda inner: st.lists(inner, max_size=20) | st.dictionaries(TEXT, inner, max_size=20),
    max_leaves=30,
)


@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_gdscript_codec_agrees_with_the_python_raw_client(value):
    """Random values: GDScript encode == zmtp_raw.pack, and GDScript decode inverts it."""
    codec = SHARED.script(MSGPACK)
    sim = SHARED
    expected = zmtp_raw.pack(value)
    encoded = gdsim.to_py(sim.call_static(codec, "encode", [gdsim.to_gd(value)]))
    assert encoded["error"] == "" and encoded["bytes"] == expected
    decoded = gdsim.to_py(sim.call_static(codec, "decode", [gdsim.PackedByteArray(expected)]))
    assert decoded["error"] == "" and same(decoded["value"], value)


def test_payloads_are_never_walked_byte_by_byte(sim):
    """A 64 KiB bin/str and a 64x64 RGB frame cost a handful of GDScript statements, not one per byte."""
    codec, zmtp = sim.script(MSGPACK), sim.script(ZMTP)
    for payload in (b"\x07" * 65536, "s" * 65536):
        data = gdsim.PackedByteArray(zmtp_raw.pack(payload))
        sim.statements = 0
        decoded = sim.call_static(codec, "decode", [data])
        assert decoded["error"] == "" and sim.statements < 100, sim.statements
        sim.statements = 0
        sim.call_static(codec, "encode", [gdsim.to_gd(payload if isinstance(payload, str) else bytes(payload))])
        assert sim.statements < 100, sim.statements
    pixels = bytes(i % 256 for i in range(64 * 64 * 3))
    wire = zmtp_raw.encode_frame(zmtp_raw.pack({"type": "frame"}), more=True) + zmtp_raw.encode_frame(pixels)
    sim.statements = 0
    first = sim.call_static(zmtp, "read_frame", [gdsim.PackedByteArray(wire), 0, 1 << 30])
    second = sim.call_static(zmtp, "read_frame", [gdsim.PackedByteArray(wire), first["next"], 1 << 30])
    assert bytes(second["body"]) == pixels and second["flags"] == 2  # LONG, last part
    assert sim.statements < 60, sim.statements


def test_decoder_reports_bad_input_clearly(sim):
    codec = sim.script(MSGPACK)
    cases = {b"\xc1": "ext/timestamp", b"\xdb\xff\xff\xff\xff": "truncated", b"\xdd\xff\xff\xff\xff": "cannot fit",
             b"\x91": "cannot fit", b"\xa3ab": "truncated", b"\xc3\xc3": "trailing"}
    for data, needle in cases.items():
        result = gdsim.to_py(sim.call_static(codec, "decode", [gdsim.PackedByteArray(data)]))
        assert result["value"] is None and needle in result["error"] and result["error"].startswith("msgpack:")
    deep = b"\x91" * 40 + b"\xc0"
    assert "deeper" in sim.call_static(codec, "decode", [gdsim.PackedByteArray(deep)])["error"]


def test_decoder_refuses_strings_and_keys_godot_would_change(sim):
    """Like the C# decoder: a NUL (Godot strings end there), invalid UTF-8 (Godot would put U+FFFD in) and a map key
    that is not a string are errors, not silently changed values."""
    codec = sim.script(MSGPACK)
    cases = {b"\xa3A\x00B": "not valid UTF-8 or holds a NUL", b"\xa2\xc3\x28": "not valid UTF-8",
             b"\x81\x01\xc0": "map key 0 is not a string", b"\x82\xa1a\xc0\xc3\xc0": "map key 1 is not a string"}
    for data, needle in cases.items():
        result = gdsim.to_py(sim.call_static(codec, "decode", [gdsim.PackedByteArray(data)]))
        assert result["value"] is None and needle in result["error"] and result["error"].startswith("msgpack:"), data
    text = "snow \u2744 \u00e9"  # multi-byte UTF-8 still decodes
    ok = gdsim.to_py(sim.call_static(codec, "decode", [gdsim.PackedByteArray(zmtp_raw.pack({text: text}))]))
    assert ok == {"value": {text: text}, "error": ""}


def test_uint64_above_int64_decodes_as_float(sim):
    value = sim.call_static(sim.script(MSGPACK), "decode", [gdsim.PackedByteArray(zmtp_raw.pack(2**64 - 1))])
    assert isinstance(value["value"], float) and math.isclose(value["value"], 2.0**64)


def test_a_string_starting_with_a_byte_order_mark_decodes_whole(sim):
    """Godot's UTF-8 parser skips a leading BOM (gdsim does too): U+FEFF starting a string is still text, not an
    error that drops the whole message."""
    text = "\ufeffmake it snow"
    data = zmtp_raw.pack({"type": "frame", "events": [text]})
    assert gdsim._bytes_method(sim, gdsim.PackedByteArray(b"\xef\xbb\xbfab"), "get_string_from_utf8", []) == "ab"
    result = gdsim.to_py(sim.call_static(sim.script(MSGPACK), "decode", [gdsim.PackedByteArray(data)]))
    assert result == {"value": {"type": "frame", "events": [text]}, "error": ""}


def test_the_headless_runner_writes_its_counts_as_a_person_would(sim):
    """run_tests.gd printed "1 vectors skipped", "1 decode-only vectors read": a count of one took a plural noun."""
    runner = sim.script("res://addons/world_bridge/tests/run_tests.gd")

    def summary(n: int) -> str:
        result = {"passed": n, "skipped": n, "decode_only": n, "failures": ["x"] * n}
        return sim.call_static(runner, "offline_summary", [gdsim.to_gd(result)])

    assert summary(1) == ("offline: 1 check passed, 1 vector skipped (uint64 > 2^63-1), 1 decode-only vector read, "
                          "1 failed")
    assert summary(2) == ("offline: 2 checks passed, 2 vectors skipped (uint64 > 2^63-1), 2 decode-only vectors "
                          "read, 2 failed")
    protocol = sim.script("res://addons/world_bridge/core/protocol.gd")  # the addon's one plural(), the dock's too
    assert [sim.call_static(protocol, "plural", [n, "frame"]) for n in (0, 1, 2)] == ["0 frames", "1 frame", "2 frames"]


@pytest.mark.parametrize("options", [{}, {"fps": None}, {"fps": 0}, {"fps": 0.0}, {"fps": -1.0}])
def test_a_start_without_fps_asks_for_the_worlds_own_rate(sim, options):
    """The builder sent 24 for a nil fps, so the host never played a world at its own rate (its footage fps, the
    sandbox game's 15): nil goes out as nil, and mode still defaults to realtime. `start_session({"fps": 0})` sent 0.0,
    which the host refuses: 0 or less is the world's own rate too, as the fps export's 0 is (and Unity's Fps 0)."""
    protocol = sim.script("res://addons/world_bridge/core/protocol.gd")
    start = gdsim.to_py(sim.call_static(protocol, "start", [1, gdsim.to_gd(options)]))
    assert (start["fps"], start["mode"]) == (None, "realtime")


def test_fps_problem_names_the_fix_for_a_rate_no_host_plays(sim):
    """A host plays 1-120 frames/s: a start at 0.37 (the fps slider's left end) or 121 got the host's bad_argument and
    no world. The client now refuses such a rate itself and says what to set; a settings change cannot ask for the
    world's own rate (its nil keeps the rate), so 0 there is refused too."""
    protocol = sim.script("res://addons/world_bridge/core/protocol.gd")

    def problem(request, fps):
        return sim.call_static(protocol, "fps_problem", [request, gdsim.to_gd(fps)])

    for fps in [None, 0, 0.0, -3.0, 1, 1.0, 12.5, 120.0, "fast"]:  # a non-number is the host's to refuse, by type
        assert problem("start", fps) == "", fps
    for fps in [None, 1, 12.5, 120]:
        assert problem("settings", fps) == "", fps
    assert problem("start", 0.37) == "fps 0.37 is outside 1-120: set fps to 0 for the world's own rate, or 1-120"
    assert problem("start", 121.0) == "fps 121 is outside 1-120: set fps to 0 for the world's own rate, or 1-120"
    for fps, said in [(0, "0"), (-1.0, "-1"), (0.5, "0.5"), (200, "200")]:
        assert problem("settings", fps) == (f"fps {said} is outside 1-120: a settings change takes 1-120 (only a start "
                                            "asks for the world's own rate, with fps 0)")


def test_decoder_errors_write_a_count_of_one_as_a_person_would(sim):
    """msgpack.gd said "1 trailing bytes", "1 bytes announced", "array of 1 items cannot fit in 1 bytes": counts that
    can be 1 go through Protocol.plural."""
    codec = sim.script(MSGPACK)
    cases = {
        b"\xc3\xc3": "1 trailing byte after the msgpack value", b"\xc3\xc3\xc3": "2 trailing bytes after",
        b"\xc4\x01": "truncated: 1 byte announced, 0 left", b"\xc4\x03\x00": "truncated: 3 bytes announced, 1 left",
        b"\x91": "array of 1 item cannot fit in 0 bytes", b"\x92\xc0": "array of 2 items cannot fit in 1 byte",
        b"\x81\xc0": "map of 1 pair cannot fit in 1 byte", b"\x82\xc0\xc0": "map of 2 pairs cannot fit in 2 bytes",
    }
    for data, words in cases.items():
        result = gdsim.to_py(sim.call_static(codec, "decode", [gdsim.PackedByteArray(data)]))
        assert result["error"].startswith("msgpack: ") and words in result["error"], (data, result["error"])
