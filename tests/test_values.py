"""bridge/values.py: the one "int but not bool" rule and the one way to write a count, in a leaf every layer may
import."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import bridge.values
from bridge.host import protocol as P
from bridge.values import SEED_MAX, is_int, is_number, is_whole, plural
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


def test_no_message_spells_its_own_plural():
    """`serve` and `bench` each wrote `'s' if n > 1` by hand (`0 session`): every count goes through plural()."""
    root = Path(bridge.values.__file__).parent.parent
    hand = [f"{f.relative_to(root)}:{i}" for d in ("bridge", "editor_gui") for f in sorted((root / d).rglob("*.py"))
            for i, line in enumerate(f.read_text().splitlines(), 1) if re.search(r"""['"]s['"] if """, line)]
    assert hand == []
