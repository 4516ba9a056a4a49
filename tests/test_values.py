"""bridge/values.py: the one "int but not bool" rule and the one way to write a count, in a leaf every layer may
import."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import bridge.values
from bridge.host import protocol as P
from bridge.values import SEED_MAX, first_line, is_int, is_number, is_whole, plural
from bridge.worlds.sandbox import SandboxWorld


@pytest.mark.parametrize("v", [0, -3, 2**70])
def test_ints_are_ints(v):
    assert is_int(v)


@pytest.mark.parametrize("v", [True, False, 1.0, "1", None, np.int64(1), np.bool_(True)])
def test_bools_floats_strings_and_numpy_scalars_are_not(v):
    assert not is_int(v)


@pytest.mark.parametrize("v, whole", [(3, True), (np.int64(3), True), (np.uint8(0), True), (True, False),
                                      (np.bool_(True), False), (3.0, False), ("3", False), (None, False)])
def test_whole_numbers_take_numpy_integers_but_no_flags_floats_or_strings(v, whole):
    assert is_whole(v) is whole


def test_the_protocol_and_the_demo_share_one_seed_range():
    from bridge.demo import demo

    seed = next(p for p in demo.params if p.name == "seed")
    assert P.SEED_MAX == SEED_MAX == seed.type.max == 2**63 - 1


def test_it_imports_nothing_from_bridge_so_no_layer_imports_upward_through_it():
    tree = ast.parse(Path(bridge.values.__file__).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert names and not any(m == "bridge" or m.startswith("bridge.") for m in names)


def test_protocol_and_sandbox_refuse_true_where_they_take_1():
    assert P.req_id_of({"req_id": 1}) == 1 and P.req_id_of({"req_id": True}) is None
    w = SandboxWorld()
    w.reset()
    w.step(np.int64(1))
    with pytest.raises(ValueError, match="action must be an integer id"):
        w.step(True)


@pytest.mark.parametrize("v, want", [(1, True), (2.5, True), (0.0, True), (True, False), (False, False), ("1", False),
                                     (None, False)])
def test_is_number_takes_ints_and_floats_not_bools(v, want):
    assert is_number(v) is want


@pytest.mark.parametrize("n, want", [(0, "0 sessions"), (1, "1 session"), (2, "2 sessions")])
def test_plural_writes_a_count_as_a_person_would(n, want):
    assert plural(n, "session") == want


@pytest.mark.parametrize("e, want", [(RuntimeError("ffmpeg failed\n  frame=1\n  log..."), "ffmpeg failed"),
                                     (ValueError("  one line  "), "one line"), (OSError(), "OSError")])
def test_first_line_is_an_errors_first_line_or_its_kind(e, want):
    """`record export` and the exporter each cut ffmpeg's whole log to its first line their own way."""
    assert first_line(e) == want


def _named_after(count: ast.expr, text: str) -> bool:
    """`{n_frames} frames`, `{self.frame_count} frames`, `{st["maskgit_steps"]} MaskGIT steps`: a count whose name
    says the plural noun after it ("1 frames"); not a rate (`{frames_per_s} frames/s`) nor a constant set above 1
    (`{MAX_PENDING_EVENTS} events`)."""
    key = count.slice if isinstance(count, ast.Subscript) else None
    name = (count.id if isinstance(count, ast.Name) else count.attr if isinstance(count, ast.Attribute)
            else key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else "")
    noun = re.match(r" (?:[A-Z]\w* )?([a-z]{2,})s\b(?!/)", text)  # not a unit such as ms
    words = name.lower().split("_")
    return bool(noun) and not name.isupper() and (noun[1] in words or noun[1] + "s" in words)


def _hand_plurals(tree: ast.AST) -> list[int]:
    """Lines that spell a plural by hand: `'s' if n != 1`, `'' if n == 1 else 's'`, "range(s)", `f"{noun}s"`, a
    count formatted as an integer (`f"{n:2d} sessions"`, " 1 sessions") or counted with len() (`f"{len(x)} frames"`,
    "1 frames") before a fixed plural noun, and a count named after the plural noun that follows it."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.IfExp) and any(isinstance(b, ast.Constant) and b.value == "s"
                                               for b in (node.body, node.orelse)):
            lines.append(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and re.search(r"\w\(s\)", node.value):
            lines.append(node.lineno)
        elif isinstance(node, ast.JoinedStr):
            for part, after in zip(node.values, node.values[1:]):
                if not (isinstance(part, ast.FormattedValue) and isinstance(after, ast.Constant)):
                    continue
                spec = ast.unparse(part.format_spec) if part.format_spec else ""
                counted = spec.endswith("d'") or (not spec and ast.unparse(part.value).startswith("len("))
                if ((not spec and re.match(r"s\b", after.value)) or (counted and re.match(r" [a-z]+s\b", after.value))
                        or (spec in ("", "'d'") and _named_after(part.value, after.value))):
                    lines.append(node.lineno)
    return lines


HAND_SPELLED = ["f\"{n} frame{'s' if n > 1 else ''}\"", "f\"{n} frame{'' if n == 1 else 's'}\"",
                "f'{n} range(s) lost'", "f'{n} {noun}s'", "f'{n:2d} sessions: '", "f'holds {len(arr)} frames but'",
                "f'{self.frame_count} frames'", "f'{n_frames} frames'", "f'({st[\"maskgit_steps\"]} MaskGIT steps of'",
                "f'one of the {autosaves} autosaves in'"]
WRITTEN_WELL = ["plural(n, 'session')", "f'{plural(n, \"session\")}: {fps:.1f} fps, {t:.1f}s'",
                "f'holds {plural(len(arr), \"frame\")} but'", "f'{plural(n_frames, \"frame\")} kept'",
                "f'{s[\"frames_per_s\"]:.0f} frames/s'", "f'{frame_size} pixels'", "f'{height}x{width} frames'",
                "f'{MAX_PENDING_EVENTS} events wait'", "f'{fps:.1f} fps'", "f'p95 {latency_ms} ms'"]


@pytest.mark.parametrize("code", HAND_SPELLED + WRITTEN_WELL)
def test_a_hand_spelled_plural_is_found(code):
    assert bool(_hand_plurals(ast.parse(code))) == (code in HAND_SPELLED)


def test_no_message_spells_its_own_plural():
    """`serve` and `bench` each wrote `'s' if n > 1` by hand (`0 session`), bench " 1 sessions:", replay
    "range(s)", dataset, importer, protocol and world errors "holds 1 frames", bench "1 MaskGIT steps" and a damaged
    session's "one of the 1 autosaves": every count goes through plural()."""
    root = Path(bridge.values.__file__).parent.parent
    hand = {f"{f.relative_to(root)}:{i}": f.read_text().splitlines()[i - 1]
            for d in ("bridge", "editor_gui") for f in sorted((root / d).rglob("*.py"))
            if f != Path(bridge.values.__file__) for i in _hand_plurals(ast.parse(f.read_text()))}
    assert hand == {}
