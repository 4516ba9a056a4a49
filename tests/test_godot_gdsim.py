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


def test_an_untyped_array_where_a_typed_one_is_declared_is_an_error_like_godot(tmp_path):
    """Godot 4 refuses an Array where an Array[T] is declared ('Trying to assign an array of type "Array" to a variable
    of type "Array[int]"'); gdsim converted it. Only a literal takes the declared type, and a typed array keeps its."""
    body = ("static func f() -> Array[int]:\n\tvar a: Array[int] = [1, 2.0]\n\tvar b := a\n\tvar c: Array[int] = b\n"
            "\tc.append(3)\n\tvar d: Array[int] = a.duplicate()\n\td = []\n\treturn a")
    assert _run(tmp_path, body) == [1, 2, 3]  # c is a itself; duplicate() keeps the type
    refused = {
        "var": "static func f() -> void:\n\tvar a := [1]\n\tvar b: Array[int] = a",
        "assignment": "static func f() -> void:\n\tvar a := [1]\n\tvar b: Array[int] = []\n\tb = a",
        "return": "static func f() -> Array[int]:\n\tvar a := [1]\n\treturn a",
        "argument": "static func g(b: Array[int]) -> void:\n\tpass\n\n\nstatic func f() -> void:\n\tg([1] + [])",
        "element type": "static func f() -> void:\n\tvar a: Array[float] = [1.0]\n\tvar b: Array[int] = a",
        "a literal kept": "static func f() -> void:\n\tvar a = [1]\n\tvar b: Array[int] = a",
        "a literal an engine method kept": ("static func f() -> void:\n\tvar d := {}\n"
                                            "\tvar b: Array[int] = d.get(0, [])"),
        "a literal put in a Dictionary": ("static func f() -> void:\n\tvar d := {}\n\td[0] = [1]\n"
                                          "\tvar b: Array[int] = d[0]"),
        "an untyped return": ("static func g():\n\treturn [1]\n\n\n"
                              "static func f() -> void:\n\tvar b: Array[int] = g()"),
    }
    for why, body in refused.items():
        with pytest.raises(gdsim.SimError, match=r'an array of type "Array(\[float\])?" to .* of type "Array\[int\]"'):
            _run(tmp_path, body)
            pytest.fail(f"{why}: no error")
    assert _run(tmp_path, "static func g(b: Array[int]) -> int:\n\treturn b[0]\n\n\n"
                          "static func f() -> int:\n\treturn g([4])") == 4  # a literal argument is typed


def test_null_where_a_typed_array_is_declared_is_an_error_like_godot(tmp_path):
    """Godot refuses null for an Array[T] as for any built-in type; gdsim let it through."""
    for body in ("static func f() -> Array[int]:\n\treturn null",
                 "static func f() -> void:\n\tvar b: Array[int] = null",
                 "static func f() -> void:\n\tvar b: Array[int] = 5"):
        with pytest.raises(gdsim.SimError, match=r"a value of type '(Nil|int)' to .* of type 'Array\[int\]'"):
            _run(tmp_path, body)
            pytest.fail(f"no error: {body}")


def test_static_vars_take_their_declared_type_like_godot(tmp_path):
    """A static var converts and refuses values as any typed variable does, and starts at its type's default."""
    body = ("static var x: float = 1\nstatic var y: int\nstatic var a: Array[int] = [1]\n\n\n"
            "static func f() -> Array:\n\ty = 2.9\n\tvar b: Array[int] = a\n\treturn [x, y, b]")
    assert _run(tmp_path, body) == [1.0, 2, [1]]
    refused = {
        "an initializer": "static var s: PackedByteArray = null\n\n\nstatic func f() -> void:\n\tprint(s)",
        "an assignment": "static var s: Array[int]\n\n\nstatic func f() -> void:\n\tvar a := [1]\n\ts = a",
    }
    for why, body in refused.items():
        with pytest.raises(gdsim.SimError, match="Trying to assign"):
            _run(tmp_path, body)
            pytest.fail(f"{why}: no error")


def test_static_vars_set_through_the_class_or_self_like_godot(tmp_path):
    """Godot 4.1+ sets a static var written `ClassName.x = v` or `self.x = v`; gdsim said "cannot set". Either way
    the value takes the var's type, as a bare `x = v` does."""
    (tmp_path / "counter.gd").write_text(
        "class_name Counter\nextends RefCounted\nstatic var total: float = 0\nstatic var kids: Array[int] = []\n\n\n"
        "func bump() -> void:\n\tself.total = 2\n", encoding="utf-8")
    body = ("static func f() -> Array:\n\tCounter.total = 1\n\tvar a := Counter.total\n"
            "\tCounter.new().bump()\n\treturn [a, Counter.total]")
    assert _run(tmp_path, body) == [1.0, 2.0]
    with pytest.raises(gdsim.SimError, match="Trying to assign"):
        _run(tmp_path, "static func f() -> void:\n\tvar a := [1]\n\tCounter.kids = a")
    with pytest.raises(gdsim.SimError, match="has no constant or static member nope"):
        _run(tmp_path, "static func f() -> void:\n\tCounter.nope = 1")


def test_a_typed_array_checks_every_element_written_like_godot(tmp_path):
    """Godot checks the element type of an Array[T] on every write; gdsim checked it only when a literal was
    stored, so `kids.append(1)` into an Array[Node] ran. An int still converts into an Array[float]."""
    writes = {
        "append": "kids.append(1)", "push_back": "kids.push_back(1)", "push_front": "kids.push_front(1)",
        "insert": "kids.insert(0, 1)", "an index": "kids[0] = 1", "append_array": "kids.append_array([1])",
    }
    for why, write in writes.items():
        with pytest.raises(gdsim.SimError, match=r"to an element of Array\[Node\]"):
            _run(tmp_path, "static func f() -> void:\n\tvar box := VBoxContainer.new()\n\tbox.add_child(Label.new())\n"
                           f"\tvar kids: Array[Node] = box.get_children()\n\t{write}")
            pytest.fail(f"{why}: no error")
    body = ("static func f() -> Array:\n\tvar a: Array[float] = []\n\ta.append(1)\n\ta.insert(0, 2)\n\ta[1] = 3\n"
            "\tvar u := []\n\tu.append(\"x\")\n\tu.insert(0, 1)\n\treturn [a, u]")
    result = _run(tmp_path, body)
    assert result == [[2.0, 3.0], [1, "x"]] and all(type(x) is float for x in result[0])


def test_typed_arrays_godot_accepts_gdsim_accepts(tmp_path):
    """A typed const, a parenthesised literal and get_children() (Array[Node] in Godot 4) fill an Array[T]."""
    accepted = {
        "a typed const": ("const A: Array[int] = [1]\n\n\n"
                          "static func f() -> int:\n\tvar b: Array[int] = A\n\treturn b.size()"),
        "a typed local const": ("static func f() -> int:\n\tconst A: Array[int] = [1]\n"
                                "\tvar b: Array[int] = A\n\treturn b.size()"),
        "a parenthesised literal": "static func f() -> int:\n\tvar b: Array[int] = ([1])\n\treturn b.size()",
        "get_children()": ("static func f() -> int:\n\tvar box := VBoxContainer.new()\n\tbox.add_child(Label.new())\n"
                           "\tvar kids: Array[Node] = box.get_children()\n\treturn kids.size()"),
    }
    for why, body in accepted.items():
        assert _run(tmp_path, body) == 1, why


def test_an_onready_var_takes_the_type_its_initializer_infers_and_checks_later_assignments(tmp_path):
    """`@onready var x := 5` kept no type in gdsim, so `x = "a"` ran; Godot infers int from the initializer and
    refuses it. A float still converts to the inferred int, as for any typed var."""
    (tmp_path / "n.gd").write_text(
        "extends Node\n@onready var count := 5\n@onready var names := PackedStringArray()\n\n\n"
        "func set_count(value: Variant) -> void:\n\tcount = value\n", encoding="utf-8")
    sim = gdsim.Sim(tmp_path)
    node = sim.new(sim.script("res://n.gd"))
    sim.add_to_root(node)
    assert node.members["count"] == 5 and node.member_types["count"] == "int"
    sim.call_method(node, "set_count", [2.7])
    assert node.members["count"] == 2
    with pytest.raises(gdsim.SimError, match="of type 'String' to member count of type 'int'"):
        sim.call_method(node, "set_count", ["a"])
    assert node.member_types["names"] == "PackedStringArray"


def test_json_numbers_are_floats_like_godot(tmp_path):
    assert _run(tmp_path, 'static func f() -> Variant:\n\treturn JSON.parse_string("[1, 2.5, {\\"a\\": 3}]")') == [
        1.0, 2.5, {"a": 3.0}]


def test_format_operator_checks_argument_count(tmp_path):
    assert _run(tmp_path, 'static func f() -> String:\n\treturn "%s=%02x %.1f" % ["a", 10, 1.5]') == "a=0a 1.5"
    with pytest.raises(gdsim.SimError, match="formatting"):
        _run(tmp_path, 'static func f() -> String:\n\treturn "%s %s" % ["a"]')


def _png(array, mode: str | None = None) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    (Image.fromarray(array) if mode is None else Image.fromarray(array, mode)).save(buf, format="PNG")
    return buf.getvalue()


def test_png_loading_picks_godots_formats_and_saving_keeps_them(tmp_path):
    """Grey PNGs load as L8/LA8, palette PNGs with transparency as RGBA8, 16-bit grey as 8-bit L8; a
    PNG saved by save_png_to_buffer loads back to the same format and bytes."""
    import io

    import numpy as np
    from PIL import Image

    body = ("static func f(png: PackedByteArray) -> Array:\n"
            "\tvar image := Image.new()\n\tvar err := image.load_png_from_buffer(png)\n"
            "\tvar again := Image.new()\n\tagain.load_png_from_buffer(image.save_png_to_buffer())\n"
            "\treturn [err, image.get_format(), image.get_width(), image.get_height(), image.get_data(),\n"
            "\t\tagain.get_format(), again.get_data() == image.get_data()]")
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    assert _run(tmp_path, body, _png(grey, "L")) == [0, 0, 4, 3, grey.tobytes(), 0, True]
    la = np.stack([grey, 255 - grey], axis=2)
    assert _run(tmp_path, body, _png(la, "LA"))[:2] == [0, 1]
    palette = Image.fromarray(np.zeros((2, 2, 3), np.uint8)).convert("P")
    palette.info["transparency"] = 0
    buf = io.BytesIO()
    palette.save(buf, format="PNG", transparency=0)
    result = _run(tmp_path, body, buf.getvalue())
    assert result[1] == 5 and result[4] == bytes([0, 0, 0, 0] * 4) and result[6]
    deep = (np.arange(4, dtype=np.uint16).reshape(2, 2) * 0x4000 + 0xFF)
    assert _run(tmp_path, body, _png(deep))[1:5] == [0, 2, 2, bytes([0, 64, 128, 192])]
    assert _run(tmp_path, body, b"\x89PNG not really")[0] == 43  # ERR_PARSE_ERROR
    empty = "static func f() -> Array:\n\treturn [Image.new().save_png_to_buffer().size()]"
    assert _run(tmp_path, empty) == [0]


def test_image_pixels_follow_godots_arithmetic(tmp_path):
    """set_pixel truncates c * 255 of a float32 Color; convert spreads grey and adds opaque alpha;
    resize(NEAREST) picks source x = dst_x * src_w / dst_w (integer division)."""
    import numpy as np

    body = ("static func f() -> Array:\n"
            "\tvar image := Image.create(3, 2, false, Image.FORMAT_RGBA8)\n"
            "\timage.set_pixel(1, 0, Color(0.5, 0.2, 1.0, 0.999))\n"
            "\tvar before := image.get_data()\n"
            "\tvar grey := Image.create_from_data(2, 1, false, Image.FORMAT_LA8, PackedByteArray([10, 20, 30, 40]))\n"
            "\tgrey.convert(Image.FORMAT_RGBA8)\n"
            "\timage.resize(7, 5, Image.INTERPOLATE_NEAREST)\n"
            "\treturn [before, grey.get_data(), image.get_width(), image.get_data()]")
    before, grey, width, resized = _run(tmp_path, body)
    assert before[4:8] == bytes([127, 51, 255, 254]) and before[:4] == bytes(4)
    assert grey == bytes([10, 10, 10, 20, 30, 30, 30, 40])
    src = np.frombuffer(before, np.uint8).reshape(2, 3, 4)
    expected = src[np.arange(5) * 2 // 5][:, np.arange(7) * 3 // 7]
    assert width == 7 and resized == expected.tobytes()
    with pytest.raises(gdsim.SimError, match="only Image.INTERPOLATE_NEAREST"):
        _run(tmp_path, "static func f() -> void:\n\tImage.create(2, 2, false, Image.FORMAT_RGB8).resize(1, 1)")


def test_vectors_are_values_with_godots_operators(tmp_path):
    body = ("static func f() -> Array:\n"
            "\tvar a := Vector2(1, 2) * 2.0 + Vector2(1, 1)\n"
            "\tvar b := Vector2i(7, -7) / 2\n"
            "\tvar r := Rect2(Vector2(), Vector2(4, 2))\n"
            "\treturn [a.x, a.y, b.x, b.y, (Vector2(3, -4) / Vector2(1, 2)).abs().y, Vector2(3, 4).length(),\n"
            "\t\tr.has_point(Vector2(0, 0)), r.has_point(Vector2(4, 1)), Vector2i(2, 3) == Vector2i(2, 3)]")
    assert _run(tmp_path, body) == [3.0, 5.0, 3, -3, 2.0, 5.0, True, False, True]
    with pytest.raises(gdsim.SimError, match="Invalid operands"):
        _run(tmp_path, "static func f() -> Vector2:\n\treturn Vector2(1, 2) + 1")


def test_setting_process_mode_notifies_the_node_and_its_inherit_descendants(tmp_path):
    """Godot 4's set_process_mode sends PAUSED/UNPAUSED and DISABLED/ENABLED down to the Inherit children, parents
    first; a child with its own mode hears nothing."""
    src = tmp_path / "n.gd"
    src.write_text("extends Node\nvar heard := []\n\n\nfunc _notification(what: int) -> void:\n\theard.append(what)\n")
    sim = gdsim.Sim(tmp_path)
    parent, child, own = (sim.new(sim.script("res://n.gd")) for _ in range(3))
    sim.native_of(own).process_mode = gdsim.NodeModel.PROCESS_MODE_ALWAYS
    sim.add_to_root(parent)
    sim.native_of(parent).add_child(child)
    sim.native_of(parent).add_child(own)
    sim.native_of(parent).process_mode = gdsim.NodeModel.PROCESS_MODE_DISABLED
    sim.native_of(parent).process_mode = gdsim.NodeModel.PROCESS_MODE_PAUSABLE
    expected = [14, 28, 15, 29]
    assert list(parent.members["heard"]) == expected and list(child.members["heard"]) == expected
    assert list(own.members["heard"]) == []


def test_a_node_moved_in_the_tree_enters_again_but_is_ready_once_and_a_freed_one_hears_predelete_first(tmp_path):
    """Godot runs _enter_tree on every entry and _ready on the first only; reparent() leaves and enters in one call;
    free() sends NOTIFICATION_PREDELETE while the node is still in the tree, then it and its children leave."""
    (tmp_path / "n.gd").write_text(
        "extends Node\nvar heard := []\n\n\nfunc _enter_tree() -> void:\n\theard.append(\"enter\")\n\n\n"
        "func _ready() -> void:\n\theard.append(\"ready\")\n\n\nfunc _exit_tree() -> void:\n\theard.append(\"exit\")\n\n\n"
        "func _notification(what: int) -> void:\n\tif what == NOTIFICATION_PREDELETE:\n"
        "\t\theard.append(\"predelete %s\" % is_inside_tree())\n")
    sim = gdsim.Sim(tmp_path)
    a, b, node, child = (sim.new(sim.script("res://n.gd")) for _ in range(4))
    sim.add_to_root(a)
    sim.add_to_root(b)
    sim.native_of(node).add_child(child)
    sim.native_of(a).add_child(node)
    sim.native_of(node).reparent(b)
    sim.native_of(b).remove_child(node)
    sim.native_of(a).add_child(node)
    assert list(node.members["heard"]) == ["enter", "ready", "exit", "enter", "exit", "enter"]
    assert list(child.members["heard"]) == ["enter", "ready", "exit", "enter", "exit", "enter"]
    sim.native_of(a).queue_free()
    sim.process()
    assert list(node.members["heard"])[-2:] == ["exit", "predelete false"]  # a freed parent took it out first
    assert list(a.members["heard"])[-2:] == ["predelete true", "exit"]
    assert sim.native_of(node).freed and sim.native_of(child).freed and not sim.native_of(b).freed


def test_a_scene_save_writes_what_godot_writes_and_a_load_sets_it_in_godots_order(tmp_path):
    """Godot's SceneState::_parse_node saves a built-in property only where it differs from the class default,
    before `script`; then exported members that differ from the script's default, and a `_get_property_list` entry
    with PROPERTY_USAGE_STORAGE always (it has no default). A load sets the built-ins, then attaches the script (its
    _init runs), then sets the rest through setters and _set, as Object.set does."""
    (tmp_path / "r.gd").write_text(
        "extends TextureRect\n@export var count := 1:\n\tset = set_count\n@export var label := \"a\"\nvar heard := []\n"
        "var hidden := 0\n\n\nfunc _init() -> void:\n\theard.append(\"init %d\" % stretch_mode)\n"
        "\tstretch_mode = 5\n\n\n"
        "func set_count(value: int) -> void:\n\theard.append(\"count %d\" % value)\n\tcount = value\n\n\n"
        "func _get_property_list() -> Array:\n\treturn [{\"name\": \"kept\", \"type\": TYPE_INT, "
        "\"usage\": PROPERTY_USAGE_STORAGE}]\n\n\nfunc _get(property: StringName) -> Variant:\n"
        "\treturn hidden if property == &\"kept\" else null\n\n\n"
        "func _set(property: StringName, value: Variant) -> bool:\n\tif property != &\"kept\":\n\t\treturn false\n"
        "\theard.append(\"kept %d\" % value)\n\thidden = value\n\treturn true\n")
    sim = gdsim.Sim(tmp_path)
    node = sim.new(sim.script("res://r.gd"))
    sim.native_of(node).name = "R"
    sim.native_of(node).stretch_mode = 1
    sim.native_of(node).flip_h = True
    node.members["count"] = 3
    text = gdsim.pack_scene(sim, node)
    body = text.split('[node name="R" type="TextureRect"]\n', 1)[1].splitlines()
    assert body == ["stretch_mode = 1", "flip_h = true", 'script = ExtResource("1_script")', "count = 3", "kept = 0"]
    loaded = gdsim.instance_scene_text(sim, text)
    assert list(loaded.members["heard"]) == ["init 1", "count 3", "kept 0"]  # built-ins came before _init
    assert loaded.native.stretch_mode == 5 and loaded.native.flip_h and loaded.members["count"] == 3


def test_leaving_the_tree_runs_exit_tree_last_child_first_then_the_parent(tmp_path):
    """Node::_propagate_exit_tree visits the children from the last to the first, then the node itself."""
    (tmp_path / "n.gd").write_text("extends Node\nvar log_to: Array\n\n\nfunc _exit_tree() -> void:\n"
                                   "\tlog_to.append(name)\n")
    sim = gdsim.Sim(tmp_path)
    heard = gdsim.GDArray([])
    parent, first, second = (sim.new(sim.script("res://n.gd")) for _ in range(3))
    for node, name in ((parent, "parent"), (first, "first"), (second, "second")):
        sim.native_of(node).name = name
        node.members["log_to"] = heard
    sim.native_of(parent).add_child(first)
    sim.native_of(parent).add_child(second)
    sim.add_to_root(parent)
    sim.native_of(sim.root).remove_child(parent)
    assert list(heard) == ["second", "first", "parent"]


def test_get_children_leaves_internal_children_out_unless_asked(tmp_path):
    """Node.get_children(include_internal = false): a child added with an internal mode is the node's own, not the
    game's (Godot lists it only with include_internal = true, internal front children first and back ones last)."""
    body = ("static func f() -> Array:\n"
            "\tvar box := VBoxContainer.new()\n"
            "\tvar front := Label.new()\n"
            "\tvar mine := Label.new()\n"
            "\tvar back := Label.new()\n"
            "\tbox.add_child(back, false, Node.INTERNAL_MODE_BACK)\n"
            "\tbox.add_child(mine)\n"
            "\tbox.add_child(front, false, Node.INTERNAL_MODE_FRONT)\n"
            "\treturn [box.get_children() == [mine], box.get_children(true) == [front, mine, back]]")
    assert _run(tmp_path, body) == [True, True]


def test_a_color_rect_is_white_until_given_a_color_and_a_scene_saves_only_another(tmp_path):
    """ColorRect.color defaults to Color(1, 1, 1, 1); a save writes it only where it differs from that."""
    body = ("static func f() -> Array:\n"
            "\tvar rect := ColorRect.new()\n"
            "\treturn [rect.color == Color(1, 1, 1, 1), rect.color == Color(1, 1, 1, 0.5)]")
    assert _run(tmp_path, body) == [True, False]
    sim = gdsim.Sim(tmp_path)
    white, red = sim.make_native("ColorRect", None), sim.make_native("ColorRect", None)
    red.color = gdsim.Color(1, 0, 0)
    for name, rect in (("White", white), ("Red", red)):
        sim.native_of(rect).name = name
    assert gdsim.pack_scene(sim, white).splitlines()[-1] == '[node name="White" type="ColorRect"]'
    assert gdsim.pack_scene(sim, red).splitlines()[-1] == "color = Color(1.0, 0.0, 0.0, 1.0)"


def test_setting_a_component_changes_that_copy_of_a_color_or_vector_only(tmp_path):
    """Color, Vector2 and Vector2i are values in Godot: `c.a = 0.5` changes the variable's copy, `rect.color.a = 0.5`
    sets the rect's color to a changed copy, and neither reaches another holder (a class default shared by every new
    ColorRect included)."""
    body = ("static func f() -> Array:\n"
            "\tvar a := ColorRect.new()\n"
            "\tvar b := ColorRect.new()\n"
            "\tvar c := a.color\n"
            "\tc.a = 0.5\n"
            "\tc.r -= 0.25\n"
            "\tb.color.g = 0.0\n"
            "\tvar v := Vector2(1, 2)\n"
            "\tvar w := v\n"
            "\tw.x = 5.0\n"
            "\tvar held := [v, Vector2i(1, 1)]\n"
            "\theld[0].y += 1.0\n"
            "\theld[1].x = 7\n"
            "\treturn [c.a, c.r, a.color == Color(1, 1, 1, 1), b.color == Color(1, 0, 1, 1),\n"
            "\t\tColorRect.new().color == Color(1, 1, 1, 1), v.x, v.y, w.x, held[0].y, held[1].x]")
    assert _run(tmp_path, body) == [0.5, 0.75, True, True, True, 1.0, 2.0, 5.0, 3.0, 7]
    with pytest.raises(gdsim.SimError, match="Vector2 has no component z"):
        _run(tmp_path, "static func f() -> Vector2:\n\tvar v := Vector2()\n\tv.z = 1.0\n\treturn v")


def test_grab_focus_is_refused_with_a_warning_to_a_control_whose_focus_mode_is_none(tmp_path):
    """Godot's grab_focus() on a FOCUS_NONE control warns and leaves the focus where it was (a demo button with
    focus_mode = 0 never takes the keyboard); buttons and text fields default to FOCUS_ALL, a bare Control to none."""
    sim = gdsim.Sim(tmp_path)
    field, button, box = (sim.make_native(kind, None) for kind in ("LineEdit", "Button", "VBoxContainer"))
    for node in (field, button, box):
        sim.add_to_root(node)
    assert [n.focus_mode for n in (field, button, box)] == [gdsim.ControlModel.FOCUS_ALL] * 2 + [0]
    field.grab_focus()
    button.focus_mode = gdsim.ControlModel.FOCUS_NONE
    for refused in (button, box):
        refused.grab_focus()
        assert (sim.root.gui_get_focus_owner(), field.is_editing(), refused.has_focus()) == (field, True, False)
    assert sim.warnings == ["This control can't grab focus. Use set_focus_mode() to allow a control to get focus."] * 2
    field.release_focus()
    field.focus_mode = gdsim.ControlModel.FOCUS_NONE
    field.edit()
    assert (field.has_focus(), field.is_editing()) == (False, False)
    button.focus_mode = gdsim.ControlModel.FOCUS_CLICK
    button.grab_focus()
    assert sim.root.gui_get_focus_owner() is button


def test_a_control_loses_the_focus_when_it_leaves_the_tree_or_is_hidden_and_takes_none_outside_it(tmp_path):
    """Godot releases a control's focus (focus_exited) when it leaves the tree or it or a parent is hidden, and
    grab_focus() out of the tree is an error: a text field removed or hidden while focused kept the keyboard."""
    sim = gdsim.Sim(tmp_path)
    box, field = sim.make_native("VBoxContainer", None), sim.make_native("LineEdit", None)
    exited = []
    field.native_signals["focus_exited"].connect(gdsim.GDCallable(lambda: exited.append(1), ("exited",)))
    box.add_child(field)
    sim.add_to_root(box)
    field.grab_focus()
    sim.root.remove_child(box)
    assert (field.has_focus(), field.is_editing(), len(exited)) == (False, False, 1)
    sim.add_to_root(box)
    assert sim.root.gui_get_focus_owner() is None, "the focus came back with the removed control"
    for hide in (field, box):
        field.grab_focus()
        hide.hide()
        assert (sim.root.gui_get_focus_owner(), field.has_focus()) == (None, False), "a hidden control kept it"
        hide.show()
    assert len(exited) == 3
    sim.root.remove_child(box)
    with pytest.raises(gdsim.SimError, match="not inside the tree"):
        field.grab_focus()
