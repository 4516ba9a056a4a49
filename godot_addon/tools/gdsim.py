"""gdsim: runs the addon's GDScript in Python, with a model of the Godot 4.2 APIs it uses.

Why: no Godot binary can be installed where this project is developed and tested, and gdparse
only checks syntax. gdsim interprets the addon's real .gd files (parsed by gdtoolkit) so the
msgpack codec, the ZMTP state machine, the nodes and the vector tests execute here, against the
golden vectors, libzmq (pyzmq) and the real WorldBridge host.

It is NOT Godot. Only the engine APIs modelled below exist (their behaviour follows the Godot 4.2
class reference); anything else is a SimError. Where Godot raises a runtime error, gdsim raises
too, and it is deliberately stricter in a few places so mistakes cannot hide: `==` between
unrelated types, String/Array/Dictionary used as a condition, PackedByteArray.resize leaving
garbage in new bytes, reads past the end of a StreamPeerBuffer.
The editor dock's controls (containers, Label, LineEdit, TextEdit, Button, OptionButton, SpinBox,
FileDialog) are modelled as state plus signals, so the dock runs; tests press buttons with click()
and answer file dialogs by emitting `file_selected`; LineEdit has Godot 4.4's editing state (is_editing, and Enter
through submit(): it keeps the focus but stops editing); grab_focus() refuses a FOCUS_NONE control with a warning
(buttons and text fields default to FOCUS_ALL). Nothing is drawn and there is no layout; a
SubViewport shows the Image a test puts in its `rendered`.
Scenes: instance_scene() builds a .tscn's nodes in Godot's order (the engine properties written before
`script`, then the script and its _init, then exported members and _set() through Object.set, NodePaths to
nodes last; layout and theme properties are ignored); pack_scene() writes what Godot's save writes (an engine
property only where it differs from the class default, exported members that differ from the script's default,
_get_property_list() storage entries always). `$Path` / get_node() find children by name, @onready vars are set
just before _ready (an inferred `:=` one takes its initializer's type then, and is null before it, where Godot's
analyzer already gives it that type's default), and _exit_tree runs last child first, as in Godot. Typed arrays
(Array[T]) are typed values, as in Godot: an untyped Array (or another Array[U]), or null, assigned, passed or
returned where an Array[T] is declared is an error; only an array literal written there (parenthesised or not)
takes that type (its elements are checked then, and on every later write: append, push_back, push_front, insert,
append_array, `a[i] = v`), and a typed const keeps its declared type. Static vars are typed variables too (also set
as `ClassName.x = v` or `self.x = v`, as Godot 4.1+ allows), and Node.get_children() returns an Array[Node], as in
Godot 4.
Not modelled: await/coroutines, %Name and ^path, the renderer, and Godot's static analyzer
(gdcheck.py covers undeclared names, unknown engine members and `:=` inference). Vector2, Vector2i and
Color are values, as in Godot: `v.x = 1` changes `v`'s copy only, and `rect.color.a = 0.5` sets the rect's color.
Image pixels are real: PNG/JPEG through PIL, the pixel formats L8, LA8, RGB8 and RGBA8, and
resize/convert/set_pixel with Godot's arithmetic (nearest-neighbour only).
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import math
import re
import select
import socket
import struct
import termios
import time
from pathlib import Path
from typing import Any, Callable

from gdtoolkit.parser import parser as _gd_parser
from lark import Token, Tree

# --- Values ---------------------------------------------------------------------------------


class SimError(Exception):
    """A GDScript runtime error (where Godot would print an error and stop the function)."""


def i64(n: int) -> int:
    """Wraps like GDScript's signed 64-bit int."""
    n &= (1 << 64) - 1
    return n - (1 << 64) if n >= 1 << 63 else n


def _round(x: float) -> float:
    """Godot's Math::round (C round: halves away from zero), exact where floor(x + 0.5) is not (from 2^52 up)."""
    whole = float(math.trunc(x))
    return whole + math.copysign(1.0, x) if abs(x - whole) >= 0.5 else whole


class GDArray(list):
    """Array: shared by reference; `element` is T of an Array[T] (None: untyped, LITERAL: a literal on its way to
    where it is stored, which gives it that place's type)."""

    __hash__ = object.__hash__
    __eq__ = object.__eq__
    element: str | None = None


LITERAL = "<literal>"


class GDDict(dict):
    """Dictionary: shared by reference, keeps insertion order."""

    __hash__ = object.__hash__
    __eq__ = object.__eq__


class PackedByteArray(bytearray):
    """PackedByteArray: shared by reference in GDScript (copied by native properties)."""

    __hash__ = object.__hash__
    __eq__ = object.__eq__


class PackedStringArray(list):
    __hash__ = object.__hash__
    __eq__ = object.__eq__


class StringName(str):
    pass


class Value:
    """A Godot value type (Vector2, Vector2i, Color): never changed in place, since one object may be a class default
    every new node shares; setting a component builds the changed copy (with_component) for its holder."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise SimError(f"gdsim bug: a {type(self).__name__} changed in place; use with_component")

    def with_component(self, name: str, component: Any) -> "Value":
        """`v.x = 1` in GDScript: a copy with that component set, which the holder of `v` takes."""
        kind = type(self).__name__
        if name not in self.__slots__:
            raise SimError(f"{kind} has no component {name} (it has {', '.join(self.__slots__)})")
        if gd_typeof(component) not in (T["int"], T["float"]):
            raise SimError(f"{kind}.{name} takes a number, not a {TYPE_NAMES[gd_typeof(component)]}")
        return type(self)(*(component if n == name else getattr(self, n) for n in self.__slots__))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(str(getattr(self, n)) for n in self.__slots__)})"


class Vector2(Value):
    """Vector2 (a value: arithmetic builds new vectors)."""

    __slots__ = ("x", "y")

    def __init__(self, x: float = 0.0, y: float = 0.0):
        object.__setattr__(self, "x", float(x))
        object.__setattr__(self, "y", float(y))


class Vector2i(Value):
    """Vector2i (a value); float arguments truncate toward zero, as in Godot."""

    __slots__ = ("x", "y")

    def __init__(self, x: Any = 0, y: Any = 0):
        object.__setattr__(self, "x", i64(int(x)))
        object.__setattr__(self, "y", i64(int(y)))


class Rect2:
    """Rect2(position, size) or Rect2(x, y, width, height); only has_point is modelled."""

    def __init__(self, *args: Any):
        if len(args) == 2 and all(isinstance(a, Vector2) for a in args):
            self.position, self.size = args
        elif len(args) == 4:
            self.position, self.size = Vector2(args[0], args[1]), Vector2(args[2], args[3])
        else:
            raise SimError("gdsim: Rect2() takes (position, size) or (x, y, width, height)")

    def has_point(self, p: Vector2) -> bool:
        """Godot: the start edges are inside, the end edges are not."""
        return (self.position.x <= p.x < self.position.x + self.size.x
                and self.position.y <= p.y < self.position.y + self.size.y)


class Color(Value):
    """Color (a value: one may be a class default that every new object shares)."""

    __slots__ = ("r", "g", "b", "a")

    def __init__(self, r: float = 0.0, g: float = 0.0, b: float = 0.0, a: float = 1.0):
        for name, value in zip(self.__slots__, (r, g, b, a)):
            object.__setattr__(self, name, float(value))


TYPE_NAMES = [
    "Nil", "bool", "int", "float", "String", "Vector2", "Vector2i", "Rect2", "Rect2i", "Vector3", "Vector3i",
    "Transform2D", "Vector4", "Vector4i", "Plane", "Quaternion", "AABB", "Basis", "Transform3D", "Projection",
    "Color", "StringName", "NodePath", "RID", "Object", "Callable", "Signal", "Dictionary", "Array",
    "PackedByteArray", "PackedInt32Array", "PackedInt64Array", "PackedFloat32Array", "PackedFloat64Array",
    "PackedStringArray", "PackedVector2Array", "PackedVector3Array", "PackedColorArray",
]
T = {name: i for i, name in enumerate(TYPE_NAMES)}
TYPE_CONSTANTS = {
    "TYPE_" + name: i
    for i, name in enumerate(
        "NIL BOOL INT FLOAT STRING VECTOR2 VECTOR2I RECT2 RECT2I VECTOR3 VECTOR3I TRANSFORM2D VECTOR4 VECTOR4I "
        "PLANE QUATERNION AABB BASIS TRANSFORM3D PROJECTION COLOR STRING_NAME NODE_PATH RID OBJECT CALLABLE "
        "SIGNAL DICTIONARY ARRAY PACKED_BYTE_ARRAY PACKED_INT32_ARRAY PACKED_INT64_ARRAY PACKED_FLOAT32_ARRAY "
        "PACKED_FLOAT64_ARRAY PACKED_STRING_ARRAY PACKED_VECTOR2_ARRAY PACKED_VECTOR3_ARRAY PACKED_COLOR_ARRAY".split()
    )
}
# Engine-wide enums used as types: values are ints.
GLOBAL_ENUM_TYPES = {"Error", "Key", "JoyButton", "JoyAxis", "MouseButton", "Variant.Type"}

ERRORS = {"OK": 0, "FAILED": 1, "ERR_UNAVAILABLE": 2, "ERR_OUT_OF_MEMORY": 6, "ERR_FILE_EOF": 18,
          "ERR_CANT_CONNECT": 25, "ERR_CONNECTION_ERROR": 27, "ERR_INVALID_PARAMETER": 31, "ERR_BUSY": 44,
          "ERR_CANT_RESOLVE": 26, "ERR_INVALID_DATA": 30}


def gd_typeof(v: Any) -> int:
    if v is None:
        return T["Nil"]
    if isinstance(v, bool):
        return T["bool"]
    if isinstance(v, int):
        return T["int"]
    if isinstance(v, float):
        return T["float"]
    if isinstance(v, StringName):
        return T["StringName"]
    if isinstance(v, str):
        return T["String"]
    if isinstance(v, PackedByteArray):
        return T["PackedByteArray"]
    if isinstance(v, PackedStringArray):
        return T["PackedStringArray"]
    if isinstance(v, GDArray):
        return T["Array"]
    if isinstance(v, GDDict):
        return T["Dictionary"]
    if isinstance(v, Vector2):
        return T["Vector2"]
    if isinstance(v, Vector2i):
        return T["Vector2i"]
    if isinstance(v, Rect2):
        return T["Rect2"]
    if isinstance(v, Color):
        return T["Color"]
    if isinstance(v, GDCallable):
        return T["Callable"]
    if isinstance(v, GDSignal):
        return T["Signal"]
    if isinstance(v, (list, dict, bytes, bytearray, tuple)):
        raise SimError(f"gdsim bug: a raw Python {type(v).__name__} leaked into GDScript")
    return T["Object"]


def gd_str(v: Any) -> str:
    """str() as Godot 4 writes values (close enough for messages)."""
    t = gd_typeof(v)
    if t == T["Nil"]:
        return "<null>"
    if t == T["bool"]:
        return "true" if v else "false"
    if t == T["float"]:
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)[:-2] if float(v).is_integer() and abs(v) < 1e16 else repr(v)
    if t in (T["String"], T["StringName"]):
        return str(v)
    if t in (T["Array"], T["PackedStringArray"], T["PackedByteArray"]):
        return "[" + ", ".join(gd_str(x) for x in v) + "]"
    if t == T["Dictionary"]:
        return "{ " + ", ".join(f"{gd_repr(k)}: {gd_repr(x)}" for k, x in v.items()) + " }"
    if t in (T["Vector2"], T["Vector2i"]):
        return f"({gd_str(v.x)}, {gd_str(v.y)})"
    return str(v)


def gd_repr(v: Any) -> str:
    return '"' + v + '"' if isinstance(v, str) else gd_str(v)


def gd_eq(a: Any, b: Any) -> bool:
    """`==` with Godot 4 rules; unrelated types are an error (as in Godot, for non-null operands)."""
    ta, tb = gd_typeof(a), gd_typeof(b)
    if ta == T["Nil"] or tb == T["Nil"]:
        return ta == tb
    numeric = (T["int"], T["float"])
    if ta in numeric and tb in numeric:
        return a == b
    strings = (T["String"], T["StringName"])
    if ta in strings and tb in strings:
        return str(a) == str(b)
    if ta != tb:
        raise SimError(f'Invalid operands "{TYPE_NAMES[ta]}" and "{TYPE_NAMES[tb]}" for "==" operator.')
    return _same_value(a, b)


def _same_value(a: Any, b: Any) -> bool:
    """Container/element equality: element types must match too (Godot: [42] != [42.0])."""
    ta, tb = gd_typeof(a), gd_typeof(b)
    if ta != tb:
        return False
    if ta in (T["Array"], T["PackedStringArray"]):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if ta == T["Dictionary"]:
        return len(a) == len(b) and all(k in b and _same_value(a[k], b[k]) for k in a)
    if ta == T["PackedByteArray"]:
        return bytes(a) == bytes(b)
    if ta == T["Object"] or ta in (T["Callable"], T["Signal"]):
        return a is b or a == b
    if ta in (T["Vector2"], T["Vector2i"]):
        return (a.x, a.y) == (b.x, b.y)
    if ta == T["Color"]:
        return (a.r, a.g, a.b, a.a) == (b.r, b.g, b.b, b.a)
    return a == b


def truthy(v: Any, where: str = "condition") -> bool:
    """Conditions accept bool, numbers, null and objects; gdsim refuses String/containers (be explicit)."""
    t = gd_typeof(v)
    if t in (T["bool"], T["int"], T["float"]):
        return bool(v)
    if t == T["Nil"]:
        return False
    if t == T["Object"]:
        return True
    raise SimError(f"gdsim: a {TYPE_NAMES[t]} used as a {where}: compare explicitly (e.g. != \"\", is_empty())")


def to_gd(v: Any) -> Any:
    """Python value -> GDScript value (lists/dicts/bytes become Array/Dictionary/PackedByteArray)."""
    if isinstance(v, (GDArray, GDDict, PackedByteArray, PackedStringArray)):
        return v
    if isinstance(v, (bytes, bytearray)):
        return PackedByteArray(v)
    if isinstance(v, (list, tuple)):
        return GDArray(to_gd(x) for x in v)
    if isinstance(v, dict):
        return GDDict((to_gd(k), to_gd(x)) for k, x in v.items())
    return v


def to_py(v: Any) -> Any:
    """GDScript value -> plain Python (Array -> list, Dictionary -> dict, PackedByteArray -> bytes)."""
    if isinstance(v, PackedByteArray):
        return bytes(v)
    if isinstance(v, (GDArray, PackedStringArray)):
        return [to_py(x) for x in v]
    if isinstance(v, GDDict):
        return {to_py(k): to_py(x) for k, x in v.items()}
    return v


# --- Callables and signals -----------------------------------------------------------------


class GDCallable:
    def __init__(self, fn: Callable[..., Any], key: tuple, bound: tuple = (), target: Any = None):
        self.fn, self.key, self.bound, self.target = fn, key, bound, target  # target: the object of a method

    def call(self, *args: Any) -> Any:
        return self.fn(*args, *self.bound)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GDCallable) and self.key == other.key and self.bound == other.bound

    __hash__ = object.__hash__


class GDSignal:
    def __init__(self, owner: Any, name: str):
        self.owner, self.name, self.connections = owner, name, []

    def connect(self, callable_: GDCallable, flags: int = 0) -> int:
        if any(c == callable_ for c in self.connections):
            raise SimError(f"Signal '{self.name}' is already connected to this callable")
        self.connections.append(callable_)
        return 0

    def disconnect(self, callable_: GDCallable) -> None:
        for i, c in enumerate(self.connections):
            if c == callable_:
                del self.connections[i]
                return
        raise SimError(f"Attempt to disconnect a nonexistent connection from '{self.name}'")

    def is_connected(self, callable_: GDCallable) -> bool:
        return any(c == callable_ for c in self.connections)

    def emit(self, *args: Any) -> None:
        """A freed object's methods are no longer connected (Godot's ~Object disconnects them)."""
        for c in list(self.connections):
            if not getattr(getattr(c.target, "native", c.target), "freed", False):
                c.call(*args)


# --- Parsed scripts ------------------------------------------------------------------------


class FuncDef:
    def __init__(self, name: str, params: list, ret: str | None, body: list, static: bool, script: "Script"):
        self.name, self.params, self.ret, self.body, self.static, self.script = name, params, ret, body, static, script


class VarDef:
    def __init__(self, name: str, type_: str | None, init: Any, inferred: bool):
        self.name, self.type, self.init, self.inferred = name, type_, init, inferred
        self.setter: str | None = None
        self.getter: str | None = None
        self.annotations: list[str] = []


class Script:
    """A loaded .gd file: constants, enums, signals, member vars and functions."""

    def __init__(self, sim: "Sim", path: Path):
        self.sim, self.path = sim, path
        self.tree = parse_cached(path.read_text(encoding="utf-8"))
        self.class_name: str | None = None
        self.extends: str | None = None
        self.base: Script | None = None
        self.consts: dict[str, Any] = {}
        self.const_trees: dict[str, Any] = {}
        self.enums: dict[str, GDDict] = {}
        self.signals: list[str] = []
        self.vars: list[VarDef] = []
        self.static_vars: dict[str, Any] = {}  # a VarDef until first used, then its value
        self.static_types: dict[str, str | None] = {}
        self.funcs: dict[str, FuncDef] = {}
        self.annotations: list[str] = []
        self._read()

    def __repr__(self) -> str:
        return f"<Script {self.class_name or self.path.name}>"

    def _read(self) -> None:
        pending: list[str] = []
        last_var: VarDef | None = None
        for node in self.tree.children:
            if not isinstance(node, Tree):
                continue
            kind = node.data
            if kind == "annotation":
                pending.append(str(node.children[0]))
                continue
            if kind == "classname_stmt":
                self.class_name = str(node.children[0])
            elif kind == "extends_stmt":
                target = node.children[0]
                self.extends = _string_value(target) if isinstance(target, Tree) else str(target)
            elif kind == "signal_stmt":
                self.signals.append(str(node.children[0]))
            elif kind == "enum_stmt":
                named = node.children[0]
                if named.data != "enum_named":
                    raise SimError("gdsim: unnamed enums are not modelled")
                values, nxt = GDDict(), 0
                for el in named.children[1].children:
                    if isinstance(el, Tree) and el.data == "enum_element":
                        if len(el.children) > 1:
                            nxt = int(str(el.children[1]), 0)
                        values[str(el.children[0])] = nxt
                        nxt += 1
                self.enums[str(named.children[0])] = values
            elif kind == "const_stmt":
                inner = node.children[0]
                self.const_trees[str(inner.children[0])] = inner
            elif kind in ("class_var_stmt", "static_class_var_stmt"):
                inner = node.children[0] if kind == "class_var_stmt" else node.children[0].children[0]
                var = _var_def(inner)
                var.annotations = pending
                if kind == "static_class_var_stmt":
                    self.static_vars[var.name] = var
                else:
                    self.vars.append(var)
                last_var = var
                for ch in inner.children:
                    if isinstance(ch, Tree) and ch.data == "inline_property_body":
                        _read_property(ch, var)
            elif kind == "property_body_def" and last_var is not None:
                _read_property(node, last_var)
            elif kind in ("func_def", "static_func_def"):
                fdef = node if kind == "func_def" else node.children[0]
                header = fdef.children[0]
                name = str(header.children[0])
                params = []
                for arg in header.children[1].children:
                    if isinstance(arg, Tree):
                        params.append(_param(arg))
                ret = str(header.children[2]) if len(header.children) > 2 else None
                self.funcs[name] = FuncDef(name, params, ret, fdef.children[1:], kind == "static_func_def", self)
            if kind != "annotation":
                if kind in ("classname_stmt", "extends_stmt"):
                    self.annotations += pending
                pending = []

    # Resolution across the script chain.
    def find_func(self, name: str) -> FuncDef | None:
        s: Script | None = self
        while s is not None:
            if name in s.funcs:
                return s.funcs[name]
            s = s.base
        return None

    def find_const(self, name: str) -> tuple[bool, Any]:
        s: Script | None = self
        while s is not None:
            if name in s.consts:
                return True, s.consts[name]
            if name in s.const_trees:
                value = self.sim.eval_const(s.const_trees[name], Frame(s, None))
                s.consts[name] = value
                return True, value
            if name in s.enums:
                return True, s.enums[name]  # named enum values are reached as Enum.VALUE only
            s = s.base
        return False, None

    def all_vars(self) -> list[VarDef]:
        chain, s = [], self
        while s is not None:
            chain.append(s)
            s = s.base
        return [v for s in reversed(chain) for v in s.vars]

    def all_signals(self) -> list[str]:
        out, s = [], self
        while s is not None:
            out += s.signals
            s = s.base
        return out

    def native_base(self) -> str:
        s: Script = self
        while s.base is not None:
            s = s.base
        return s.extends or "RefCounted"

    def is_a(self, other: "Script") -> bool:
        s: Script | None = self
        while s is not None:
            if s is other:
                return True
            s = s.base
        return False


_PARSED: dict[str, Tree] = {}


def parse_cached(text: str) -> Tree:
    """gdtoolkit parse trees by source text (parsing is the slow part of loading a script)."""
    if text not in _PARSED:
        _PARSED[text] = _gd_parser.parse(text, gather_metadata=True)
    return _PARSED[text]


def _string_value(node: Tree) -> str:
    tok = node.children[0] if isinstance(node, Tree) else node
    text = str(tok)
    if text.startswith(('"""', "'''")):
        return _unescape(text[3:-3])
    return _unescape(text[1:-1])


def _unescape(text: str) -> str:
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u":
                out.append(chr(int(text[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append(escapes.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _var_def(node: Tree) -> VarDef:
    name = str(node.children[0])
    kind = node.data
    type_ = None
    init = None
    if kind.endswith("_typed") or kind.endswith("_typed_assgnd"):
        type_ = str(node.children[1])
    if kind.endswith("_assigned") or kind.endswith("_typed_assgnd") or kind.endswith("_inf"):
        exprs = [c for c in node.children if isinstance(c, Tree) and c.data == "expr"]
        init = exprs[0] if exprs else None
    return VarDef(name, type_, init, kind.endswith("_inf"))


def _read_property(node: Tree, var: VarDef) -> None:
    for ch in node.children:
        if isinstance(ch, Tree) and ch.data == "property_delegate_set":
            var.setter = str(ch.children[-1])
        elif isinstance(ch, Tree) and ch.data == "property_delegate_get":
            var.getter = str(ch.children[-1])
        elif isinstance(ch, Tree) and ch.data in ("property_custom_setter", "property_custom_getter"):
            raise SimError("gdsim: inline set(value): bodies are not modelled; use set = method")


def _param(arg: Tree) -> tuple[str, str | None, Any]:
    if arg.data == "func_arg_regular":
        return str(arg.children[0]), None, arg.children[1] if len(arg.children) > 1 else None
    if arg.data == "func_arg_inf":
        return str(arg.children[0]), "<inferred>", arg.children[1]
    if arg.data == "func_arg_typed":
        return str(arg.children[0]), str(arg.children[1]), arg.children[2] if len(arg.children) > 2 else None
    raise SimError(f"gdsim: parameter kind {arg.data} is not modelled")


# --- Control flow --------------------------------------------------------------------------


class _Return(Exception):
    def __init__(self, value: Any):
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _not_freed(obj: Any, what: str) -> None:
    """A freed Object's variant still holds it in Godot 4 (`!= null` is true) but any use of it is an error."""
    model = obj.native if isinstance(obj, Instance) else obj
    if getattr(model, "freed", False):
        raise SimError(f"{what} (on base: 'previously freed')")


class Frame:
    def __init__(self, script: Script, self_obj: "Instance | None", locals_: dict | None = None,
                 func: "FuncDef | None" = None):
        self.script, self.self_obj, self.func = script, self_obj, func
        self.locals: dict[str, Any] = locals_ if locals_ is not None else {}
        self.types: dict[str, str | None] = {}

    def in_accessor_of(self, obj: "Instance", var: "VarDef") -> bool:
        """Inside a property's own setter/getter, the property is read and written directly (Godot 4)."""
        return (self.self_obj is obj and self.func is not None
                and self.func.name in (var.setter, var.getter))


# --- Instances -----------------------------------------------------------------------------


class Instance:
    """An object whose script is a .gd file; `native` models the engine class it extends."""

    def __init__(self, sim: "Sim", script: Script):
        self.sim, self.script = sim, script
        self.native = sim.make_native(script.native_base(), self)
        self.members: dict[str, Any] = {}
        self.member_types: dict[str, str | None] = {}
        self.signals = {name: GDSignal(self, name) for name in script.all_signals()}

    def __repr__(self) -> str:
        return f"<{self.script.class_name or self.script.path.name} instance>"

    def get_class(self) -> str:
        return self.script.native_base()


# --- Native models (Godot 4.2 API subset) --------------------------------------------------


class NativeObject:
    """RefCounted/Object: signals declared by the engine class, connect helpers."""

    CLASS = "RefCounted"
    SIGNALS: tuple[str, ...] = ()
    NOTIFICATION_PREDELETE = 1

    def __init__(self, sim: "Sim", owner: Any = None):
        self.sim = sim
        self.owner = owner if owner is not None else self
        self.native_signals = {n: GDSignal(self.owner, n) for n in self.SIGNALS}

    def set(self, name: str, value: Any) -> None:
        """Object.set (Godot ignores a property that does not exist; gdsim says so)."""
        if not self.sim.set_property(self.owner, str(name), value):
            raise SimError(f"set(): {self.CLASS} has no (modelled) property {name}")

    def get(self, name: str) -> Any:
        """Object.get."""
        return self.sim.get_property(self.owner, str(name))

    def has_method(self, name: str) -> bool:
        """Object.has_method: the engine class's (modelled) methods; a script's own are added by Sim.call_on."""
        return not str(name).startswith("_") and callable(getattr(self, str(name), None))

    def call(self, name: str, *args: Any) -> Any:
        """Object.call: a method by name, as a direct call would run it (a script's own first)."""
        return self.sim.call_on(self.owner, str(name), list(args), Frame(None, None))  # type: ignore[arg-type]


class StreamPeerBufferModel(NativeObject):
    CLASS = "StreamPeerBuffer"

    def __init__(self, sim: "Sim", owner: Any = None):
        super().__init__(sim, owner)
        self._data = bytearray()
        self._pos = 0
        self.big_endian = False

    # property data_array: getter returns a copy, setter copies (native property semantics)
    def get_data_array(self) -> PackedByteArray:
        return PackedByteArray(self._data)

    def set_data_array(self, value: PackedByteArray) -> None:
        self._data = bytearray(value)
        self._pos = 0

    def _fmt(self, code: str) -> str:
        return (">" if self.big_endian else "<") + code

    def _put(self, code: str, value: Any) -> None:
        raw = struct.pack(self._fmt(code), value)
        end = self._pos + len(raw)
        if end > len(self._data):
            self._data.extend(b"\0" * (end - len(self._data)))
        self._data[self._pos:end] = raw
        self._pos = end

    def _get(self, code: str) -> Any:
        n = struct.calcsize(code)
        if self._pos + n > len(self._data):
            raise SimError(f"StreamPeerBuffer: reading {n} bytes past the end (position {self._pos})")
        (v,) = struct.unpack_from(self._fmt(code), self._data, self._pos)
        self._pos += n
        return v

    def put_u8(self, v: int) -> None:
        self._put("B", v & 0xFF)

    def put_8(self, v: int) -> None:
        self._put("b", ((v + 0x80) & 0xFF) - 0x80)

    def put_u16(self, v: int) -> None:
        self._put("H", v & 0xFFFF)

    def put_16(self, v: int) -> None:
        self._put("h", ((v + 0x8000) & 0xFFFF) - 0x8000)

    def put_u32(self, v: int) -> None:
        self._put("I", v & 0xFFFFFFFF)

    def put_32(self, v: int) -> None:
        self._put("i", ((v + 0x80000000) & 0xFFFFFFFF) - 0x80000000)

    def put_u64(self, v: int) -> None:
        self._put("Q", v & 0xFFFFFFFFFFFFFFFF)

    def put_64(self, v: int) -> None:
        self._put("q", i64(v))

    def put_float(self, v: float) -> None:
        v = float(v)
        if math.isfinite(v) and abs(v) > 3.4028234663852886e38:
            v = math.copysign(math.inf, v)  # a C float cast, as Godot does
        self._put("f", v)

    def put_double(self, v: float) -> None:
        self._put("d", float(v))

    def put_data(self, data: PackedByteArray) -> int:
        self._put(f"{len(data)}s", bytes(data))
        return 0

    def get_u8(self) -> int:
        return self._get("B")

    def get_8(self) -> int:
        return self._get("b")

    def get_u16(self) -> int:
        return self._get("H")

    def get_16(self) -> int:
        return self._get("h")

    def get_u32(self) -> int:
        return self._get("I")

    def get_32(self) -> int:
        return self._get("i")

    def get_u64(self) -> int:
        return i64(self._get("Q"))  # Godot returns the uint64 bits in a signed int

    def get_64(self) -> int:
        return self._get("q")

    def get_float(self) -> float:
        return self._get("f")

    def get_double(self) -> float:
        return self._get("d")

    def get_data(self, n: int) -> GDArray:
        if n < 0 or self._pos + n > len(self._data):
            got = PackedByteArray(self._data[self._pos:])
            self._pos = len(self._data)
            return GDArray([ERRORS["ERR_INVALID_PARAMETER"], got])
        got = PackedByteArray(self._data[self._pos:self._pos + n])
        self._pos += n
        return GDArray([0, got])

    def get_available_bytes(self) -> int:
        return len(self._data) - self._pos

    def get_position(self) -> int:
        return self._pos

    def get_size(self) -> int:
        return len(self._data)

    def seek(self, pos: int) -> None:
        if pos < 0 or pos > len(self._data):
            raise SimError(f"StreamPeerBuffer.seek({pos}) outside 0..{len(self._data)}")
        self._pos = pos

    def clear(self) -> None:
        self._data, self._pos = bytearray(), 0


class StreamPeerTCPModel(NativeObject):
    """StreamPeerTCP on a non-blocking Python socket; status changes only in poll(), as in Godot."""

    CLASS = "StreamPeerTCP"
    STATUS_NONE, STATUS_CONNECTING, STATUS_CONNECTED, STATUS_ERROR = 0, 1, 2, 3

    def __init__(self, sim: "Sim", owner: Any = None):
        super().__init__(sim, owner)
        self._sock: socket.socket | None = None
        self._status = self.STATUS_NONE
        self.no_delay = False
        self.bytes_sent = 0

    def connect_to_host(self, host: str, port: int) -> int:
        if self._status != self.STATUS_NONE:
            raise SimError("StreamPeerTCP.connect_to_host on a peer that is not disconnected")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return ERRORS["ERR_CANT_RESOLVE"]
        family, _, _, _, addr = infos[0]
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setblocking(False)
        rc = self._sock.connect_ex(addr)
        if rc not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            self._status = self.STATUS_ERROR
            return ERRORS["ERR_CANT_CONNECT"]
        self._status = self.STATUS_CONNECTING
        self.sim.sockets.append(self)
        return 0

    def poll(self) -> int:
        if self._sock is None:
            return 0
        if self._status == self.STATUS_CONNECTING:
            _, writable, _ = select.select([], [self._sock], [], 0)
            if writable:
                err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                self._status = self.STATUS_CONNECTED if err == 0 else self.STATUS_ERROR
        elif self._status == self.STATUS_CONNECTED:
            readable, _, _ = select.select([self._sock], [], [], 0)
            if readable and self._available() == 0:
                try:
                    peek = self._sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    peek = b""
                if peek == b"":
                    self.disconnect_from_host()  # FIN from the peer, as Godot's poll() does
        return 0

    def _available(self) -> int:
        buf = bytearray(4)
        fcntl.ioctl(self._sock.fileno(), termios.FIONREAD, buf)
        return struct.unpack("i", bytes(buf))[0]

    def get_status(self) -> int:
        return self._status

    def set_no_delay(self, enabled: bool) -> None:
        if self._sock is None or self._status != self.STATUS_CONNECTED:
            raise SimError("StreamPeerTCP.set_no_delay needs a connected peer")
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if enabled else 0)
        self.no_delay = enabled

    def get_available_bytes(self) -> int:
        if self._status != self.STATUS_CONNECTED:
            return 0
        return self._available()

    def get_partial_data(self, n: int) -> GDArray:
        if self._status != self.STATUS_CONNECTED:
            return GDArray([ERRORS["FAILED"], PackedByteArray()])
        try:
            data = self._sock.recv(n)
        except BlockingIOError:
            return GDArray([0, PackedByteArray()])
        except OSError:
            self.disconnect_from_host()
            return GDArray([ERRORS["FAILED"], PackedByteArray()])
        if data == b"":
            self.disconnect_from_host()
            return GDArray([ERRORS["ERR_FILE_EOF"], PackedByteArray()])
        return GDArray([0, PackedByteArray(data)])

    def put_partial_data(self, data: PackedByteArray) -> GDArray:
        if self._status != self.STATUS_CONNECTED:
            return GDArray([ERRORS["FAILED"], 0])
        try:
            sent = self._sock.send(bytes(data))
        except BlockingIOError:
            sent = 0
        except OSError:
            self.disconnect_from_host()
            return GDArray([ERRORS["FAILED"], 0])
        self.bytes_sent += sent
        return GDArray([0, sent])

    def disconnect_from_host(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._status = self.STATUS_NONE


class NodeModel(NativeObject):
    """Node: name, children, tree membership, _enter_tree/_ready (once)/_process/_exit_tree, remove_child, reparent,
    free/queue_free (NOTIFICATION_PREDELETE first), process_mode."""

    CLASS = "Node"
    INTERNAL_MODE_DISABLED, INTERNAL_MODE_FRONT, INTERNAL_MODE_BACK = 0, 1, 2
    (PROCESS_MODE_INHERIT, PROCESS_MODE_PAUSABLE, PROCESS_MODE_WHEN_PAUSED, PROCESS_MODE_ALWAYS,
     PROCESS_MODE_DISABLED) = range(5)
    NOTIFICATION_PAUSED, NOTIFICATION_UNPAUSED = 14, 15
    NOTIFICATION_DISABLED, NOTIFICATION_ENABLED = 28, 29

    def __init__(self, sim: "Sim", owner: Any = None):
        super().__init__(sim, owner)
        self.name = ""
        self.children: list[Any] = []
        self.parent: Any = None
        self.inside_tree = False
        self.processing = True
        self.process_mode = self.PROCESS_MODE_INHERIT
        self.freed = False
        self.ready_done = False  # _ready runs the first time the node enters the tree only, as in Godot
        self.internal = 0  # the INTERNAL_MODE it was added with: no scene saves an internal child (it has no owner)

    def get_tree(self) -> "SceneTreeModel":
        return self.sim.tree

    def get_viewport(self) -> Any:
        """The nearest Viewport ancestor (the tree's root stands in for the window); null outside the tree."""
        node: Any = self.owner
        while node is not None and not isinstance(self.sim.native_of(node), ViewportModel):
            node = self.sim.native_of(node).parent
        return node if self.inside_tree else None

    def _mode(self) -> int:
        """The mode in force: INHERIT takes the first ancestor's that is not INHERIT (the root's is PAUSABLE)."""
        node: Any = self
        while node.process_mode == self.PROCESS_MODE_INHERIT and node.parent is not None:
            node = self.sim.native_of(node.parent)
        return node.process_mode if node.process_mode != self.PROCESS_MODE_INHERIT else self.PROCESS_MODE_PAUSABLE

    def can_process(self, paused: bool | None = None) -> bool:
        """Godot's rule: a paused tree runs only ALWAYS and WHEN_PAUSED nodes, an unpaused one all but
        WHEN_PAUSED and DISABLED."""
        mode = self._mode()
        if self.sim.tree.paused if paused is None else paused:
            return mode in (self.PROCESS_MODE_ALWAYS, self.PROCESS_MODE_WHEN_PAUSED)
        return mode not in (self.PROCESS_MODE_WHEN_PAUSED, self.PROCESS_MODE_DISABLED)

    def __setattr__(self, name: str, value: Any) -> None:
        """Node.set_process_mode in the tree: the node and its INHERIT descendants whose processing stops get
        NOTIFICATION_PAUSED (resumes: UNPAUSED), then those switched off get NOTIFICATION_DISABLED (on: ENABLED),
        parents first (Node::_propagate_process_owner)."""
        if name != "process_mode" or not getattr(self, "inside_tree", False):
            super().__setattr__(name, value)
            return
        nodes = [self.owner] + self.sim._walk(self.owner)
        before = self.sim.process_states(nodes)
        super().__setattr__(name, value)
        self.sim.notify_process_changes(nodes, before)

    def _notify(self, what: int) -> None:
        """Object.notification: the script's _notification(what), if it has one."""
        node = self.owner
        if isinstance(node, Instance) and node.script.find_func("_notification"):
            self.sim.call_method(node, "_notification", [what])

    def add_child(self, child: Any, force_readable_name: bool = False, internal: int = 0) -> None:
        """Godot keeps the children in order: internal front ones, the others, then internal back ones."""
        model = self.sim.native_of(child)
        if model.parent is not None:
            raise SimError("add_child: the node already has a parent")
        model.parent = self.owner
        model.internal = internal
        order = (self.INTERNAL_MODE_FRONT, self.INTERNAL_MODE_DISABLED, self.INTERNAL_MODE_BACK).index
        at = sum(order(self.sim.native_of(c).internal) <= order(internal) for c in self.children)
        self.children.insert(at, child)
        if self.inside_tree:
            self.sim.enter_tree(child)

    def remove_child(self, child: Any) -> None:
        """The child leaves the tree (its _exit_tree runs while it still has this parent), then this parent."""
        model = self.sim.native_of(child)
        if model.parent is not self.owner:
            raise SimError("remove_child: the node is not a child of this node")
        if model.inside_tree:
            self.sim.exit_tree(child)
        self.children.remove(child)
        model.parent = None

    def reparent(self, new_parent: Any, keep_global_transform: bool = True) -> None:
        """Node.reparent: remove_child then add_child in one call; the node leaves the tree and enters it again."""
        if self.parent is None:
            raise SimError("reparent: the node needs a parent to be reparented")
        if new_parent is self.parent:
            return
        self.sim.native_of(self.parent).remove_child(self.owner)
        self.sim.native_of(new_parent).add_child(self.owner)

    def get_parent(self) -> Any:
        return self.parent

    def get_children(self, include_internal: bool = False) -> GDArray:
        """Internal children (added with an INTERNAL_MODE: a control's own parts) only when asked for, as in Godot; an
        Array[Node], as Godot 4 returns."""
        children = GDArray([c for c in self.children if include_internal or not self.sim.native_of(c).internal])
        children.element = "Node"
        return children

    def get_node(self, path: str) -> Any:
        """A descendant by relative path of child names ("HUD/Layout/Label"), or `..` for the parent."""
        node: Any = self.owner
        for name in str(path).split("/"):
            model = self.sim.native_of(node)
            if name == "..":
                node = model.parent
            else:
                node = next((c for c in model.children if self.sim.native_of(c).name == name), None)
            if node is None:
                raise SimError(f'Node not found: "{path}" (relative to "{self.name}")')
        return node

    def is_inside_tree(self) -> bool:
        return self.inside_tree

    def set_process(self, enable: bool) -> None:
        self.processing = enable

    def is_processing(self) -> bool:
        return self.processing

    def queue_free(self) -> None:
        self.sim.free_queue.append(self.owner)

    def free(self) -> None:
        """Object.free: immediately. As Node's NOTIFICATION_PREDELETE does: the script hears PREDELETE first (still
        in the tree), then the node leaves its parent (and the tree), then its children are freed, last first."""
        self._notify(self.NOTIFICATION_PREDELETE)
        if self.parent is not None:
            self.sim.native_of(self.parent).remove_child(self.owner)
        while self.children:
            self.sim.native_of(self.children[-1]).free()
        self.freed = True


class SceneTreeModel(NativeObject):
    """SceneTree: `paused` (tests pause the game with sim.tree.paused = True)."""

    CLASS = "SceneTree"

    def __init__(self, sim: "Sim", owner: Any = None):
        super().__init__(sim, owner)
        self.paused = False

    def __setattr__(self, name: str, value: Any) -> None:
        """SceneTree.set_pause: each node whose processing stops gets NOTIFICATION_PAUSED, each whose
        processing resumes NOTIFICATION_UNPAUSED, parents before children (Node::_propagate_pause_notification)."""
        if name != "paused" or not hasattr(self, "paused") or bool(value) == self.paused:
            super().__setattr__(name, value)
            return
        nodes = self.sim._walk(self.sim.root)
        before = self.sim.process_states(nodes)
        super().__setattr__(name, value)
        self.sim.notify_process_changes(nodes, before)


class ControlModel(NodeModel):
    """Control: the properties the addon's UI sets, with Godot 4.2 defaults; PROPS lists what exists."""

    CLASS = "Control"
    SIZE_SHRINK_BEGIN, SIZE_FILL, SIZE_EXPAND, SIZE_EXPAND_FILL = 0, 1, 2, 3
    MOUSE_FILTER_STOP, MOUSE_FILTER_PASS, MOUSE_FILTER_IGNORE = 0, 1, 2
    FOCUS_NONE, FOCUS_CLICK, FOCUS_ALL = 0, 1, 2
    PROPS: dict[str, Any] = {"tooltip_text": "", "custom_minimum_size": None, "size_flags_horizontal": 1,
                             "size_flags_vertical": 1, "mouse_filter": 0, "focus_mode": 0, "visible": True,
                             "size": None, "position": None}

    def __init__(self, sim: "Sim", owner: Any = None):
        super().__init__(sim, owner)
        for key, default in type(self).PROPS.items():
            setattr(self, key, Vector2() if default is None else default)
        self.theme_overrides: dict[str, Any] = {}
        self.mouse_position = Vector2()
        self.focused = False

    def add_theme_color_override(self, name: str, color: Any) -> None:
        self.theme_overrides[name] = color

    def get_local_mouse_position(self) -> Vector2:
        """Where tests put the mouse (`mouse_position`, in this control's coordinates)."""
        return self.mouse_position

    def __setattr__(self, name: str, value: Any) -> None:
        """CanvasItem.set_visible: hiding a control hides its descendants too, and a hidden control loses the focus
        (Viewport::_gui_hide_control)."""
        super().__setattr__(name, value)
        if name == "visible" and not value and hasattr(self, "focused"):
            for node in [self.owner] + self.sim._walk(self.owner):
                model = self.sim.native_of(node)
                if isinstance(model, ControlModel):
                    model.release_focus()

    def show(self) -> None:
        self.visible = True

    def hide(self) -> None:
        self.visible = False

    def grab_focus(self) -> None:
        """Godot keeps one focus owner per viewport: the one that had it loses it. Out of the tree it is an error; a
        FOCUS_NONE control is refused with a warning and the focus stays where it was."""
        if not self.inside_tree:
            raise SimError("grab_focus: the control is not inside the tree (Condition \"!is_inside_tree()\" is true)")
        if self.focus_mode == self.FOCUS_NONE:
            self.sim.warnings.append(
                "This control can't grab focus. Use set_focus_mode() to allow a control to get focus.")
            return
        viewport = self.get_viewport()
        holder = self.sim.native_of(viewport).gui_get_focus_owner()
        if holder is not None and holder is not self.owner:
            self.sim.native_of(holder).release_focus()
        if not self.focused:
            self.focused = True
            if "focus_entered" in self.native_signals:
                self.native_signals["focus_entered"].emit()

    def release_focus(self) -> None:
        if self.focused:
            self.focused = False
            if "focus_exited" in self.native_signals:
                self.native_signals["focus_exited"].emit()

    def has_focus(self) -> bool:
        return self.focused

    def add_theme_constant_override(self, name: str, value: int) -> None:
        self.theme_overrides[name] = value


def _props(base: type, **extra: Any) -> dict[str, Any]:
    return {**base.PROPS, **extra}


class BoxContainerModel(ControlModel):
    CLASS = "BoxContainer"


class MarginContainerModel(ControlModel):
    CLASS = "MarginContainer"


class ColorRectModel(ControlModel):
    CLASS = "ColorRect"
    PROPS = _props(ControlModel, color=Color(1, 1, 1, 1))


class VBoxContainerModel(BoxContainerModel):
    CLASS = "VBoxContainer"


class HBoxContainerModel(BoxContainerModel):
    CLASS = "HBoxContainer"


class GridContainerModel(ControlModel):
    CLASS = "GridContainer"
    PROPS = _props(ControlModel, columns=1)


class TextureRectModel(ControlModel):
    """TextureRect; `size` is what layout gave the control (tests set it)."""

    CLASS = "TextureRect"
    EXPAND_KEEP_SIZE, EXPAND_IGNORE_SIZE = 0, 1
    (STRETCH_SCALE, STRETCH_TILE, STRETCH_KEEP, STRETCH_KEEP_CENTERED, STRETCH_KEEP_ASPECT,
     STRETCH_KEEP_ASPECT_CENTERED, STRETCH_KEEP_ASPECT_COVERED) = range(7)
    PROPS = _props(ControlModel, texture=False, expand_mode=0, stretch_mode=0, texture_filter=0, flip_h=False,
                   flip_v=False, mouse_filter=1)

    def __init__(self, sim: "Sim", owner: Any = None):
        super().__init__(sim, owner)
        self.texture = None


class LabelModel(ControlModel):
    CLASS = "Label"
    PROPS = _props(ControlModel, text="", autowrap_mode=0, horizontal_alignment=0, text_overrun_behavior=0,
                   mouse_filter=2)


class LineEditModel(ControlModel):
    """LineEdit with Godot 4.4's editing state: taking the focus starts editing, losing it stops; Enter (submit())
    emits text_submitted and then, unless keep_editing_on_text_submit, stops editing while the focus stays."""

    CLASS = "LineEdit"
    SIGNALS = ("text_submitted", "text_changed", "focus_entered", "focus_exited", "editing_toggled")
    PROPS = _props(ControlModel, text="", placeholder_text="", editable=True, keep_editing_on_text_submit=False,
                   focus_mode=ControlModel.FOCUS_ALL)

    def __init__(self, sim: "Sim", owner: Any = None):
        super().__init__(sim, owner)
        self.editing = False

    def grab_focus(self) -> None:
        """Taking the focus starts editing; a refused one does not."""
        super().grab_focus()
        if self.focused:
            self.edit()

    def release_focus(self) -> None:
        self.unedit()
        super().release_focus()

    def is_editing(self) -> bool:
        return self.editing

    def edit(self) -> None:
        """LineEdit.edit: a LineEdit without the focus takes it (which starts editing); a read-only one never edits."""
        if not self.inside_tree:
            return
        if not self.focused:
            self.grab_focus()
        elif self.editable and not self.editing:
            self.editing = True
            self.native_signals["editing_toggled"].emit(True)

    def unedit(self) -> None:
        if self.editing:
            self.editing = False
            self.native_signals["editing_toggled"].emit(False)


class TextEditModel(ControlModel):
    CLASS = "TextEdit"
    SIGNALS = ("text_changed",)
    PROPS = _props(ControlModel, text="", placeholder_text="", editable=True, focus_mode=ControlModel.FOCUS_ALL)


class ButtonModel(ControlModel):
    """Button (BaseButton): tests press it by emitting `pressed` (a disabled button ignores the press)."""

    CLASS = "Button"
    SIGNALS = ("pressed", "button_down", "button_up", "toggled")
    PROPS = _props(ControlModel, text="", disabled=False, toggle_mode=False, button_pressed=False,
                   focus_mode=ControlModel.FOCUS_ALL)


class CheckBoxModel(ButtonModel):
    """CheckBox: a Button that toggles; tests set button_pressed."""

    CLASS = "CheckBox"
    PROPS = _props(ButtonModel, toggle_mode=True)


class OptionButtonModel(ButtonModel):
    """OptionButton: the first item added is selected; clear() leaves nothing selected (-1)."""

    CLASS = "OptionButton"
    SIGNALS = ButtonModel.SIGNALS + ("item_selected",)
    PROPS = _props(ButtonModel, selected=-1, item_count=0)
    READ_ONLY = ("selected", "item_count")

    def __init__(self, sim: "Sim", owner: Any = None):
        self.items: list[str] = []
        super().__init__(sim, owner)

    def add_item(self, label: str, id: int = -1) -> None:
        self.items.append(label)
        self.item_count = len(self.items)
        if self.selected == -1:
            self.selected = 0

    def clear(self) -> None:
        self.items, self.item_count, self.selected = [], 0, -1

    def get_item_text(self, index: int) -> str:
        if not 0 <= index < len(self.items):
            raise SimError(f"OptionButton.get_item_text({index}): index out of range ({len(self.items)} items)")
        return self.items[index]

    def select(self, index: int) -> None:
        if not -1 <= index < len(self.items):
            raise SimError(f"OptionButton.select({index}): index out of range")
        self.selected = index


class RangeModel(ControlModel):
    """Range: setting `value` snaps to `step`, clamps to [min_value, max_value] and emits value_changed."""

    CLASS = "Range"
    SIGNALS = ("value_changed",)
    PROPS = _props(ControlModel, min_value=0.0, max_value=100.0, step=1.0, value=0.0, rounded=False,
                   allow_greater=False, allow_lesser=False)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("min_value", "max_value", "step") and "value" in self.__dict__:
            object.__setattr__(self, name, float(value))
            self._set_value(self.__dict__["value"], emit=True)  # Godot re-clamps the value
        elif name == "value" and "value" in self.__dict__:
            self._set_value(value, emit=True)
        else:
            object.__setattr__(self, name, float(value) if name in ("min_value", "max_value", "step") else value)

    def _set_value(self, v: float, emit: bool) -> None:
        v = float(v)
        if self.step > 0:
            v = _round((v - self.min_value) / self.step) * self.step + self.min_value
        if self.rounded:
            v = _round(v)
        if not self.allow_greater and v > self.max_value:
            v = self.max_value
        if not self.allow_lesser and v < self.min_value:
            v = self.min_value
        if v == self.__dict__["value"]:
            return
        self.__dict__["value"] = v
        if emit:
            self.native_signals["value_changed"].emit(v)

    def set_value_no_signal(self, v: float) -> None:
        self._set_value(v, emit=False)


class SpinBoxModel(RangeModel):
    CLASS = "SpinBox"
    PROPS = _props(RangeModel, suffix="", prefix="", editable=True)


class FileDialogModel(NodeModel):
    """FileDialog (a Window): tests answer it by emitting `file_selected`; popups are counted."""

    CLASS = "FileDialog"
    FILE_MODE_OPEN_FILE, ACCESS_RESOURCES, ACCESS_USERDATA, ACCESS_FILESYSTEM = 0, 0, 1, 2
    SIGNALS = ("file_selected",)
    PROPS = {"file_mode": 4, "access": 0, "filters": None, "title": ""}

    def __init__(self, sim: "Sim", owner: Any = None):
        super().__init__(sim, owner)
        self.file_mode, self.access, self.filters, self.title = 4, 0, PackedStringArray(), ""
        self.popups = 0

    def popup_centered_ratio(self, ratio: float = 0.8) -> None:
        self.popups += 1


class InputEventMouseButtonModel(NativeObject):
    """InputEventMouseButton: `position` in the receiving control's coordinates (as _gui_input gets it)."""

    CLASS = "InputEventMouseButton"

    def __init__(self, sim: "Sim", owner: Any = None, position: Vector2 | None = None, button_index: int = 1,
                 pressed: bool = True):
        super().__init__(sim, owner)
        self.position = position if position is not None else Vector2()
        self.button_index, self.pressed = button_index, pressed

    def is_pressed(self) -> bool:
        return self.pressed


class InputEventKeyModel(NativeObject):
    CLASS = "InputEventKey"

    def __init__(self, sim: "Sim", owner: Any = None, pressed: bool = True):
        super().__init__(sim, owner)
        self.pressed = pressed

    def is_pressed(self) -> bool:
        return self.pressed


class ImageModel(NativeObject):
    """Image with real pixels (formats L8, LA8, RGB8, RGBA8); counts calls so tests can prove reuse."""

    CLASS = "Image"
    FORMAT_L8, FORMAT_LA8, FORMAT_R8, FORMAT_RG8, FORMAT_RGB8, FORMAT_RGBA8 = 0, 1, 2, 3, 4, 5
    INTERPOLATE_NEAREST, INTERPOLATE_BILINEAR, INTERPOLATE_CUBIC, INTERPOLATE_TRILINEAR, INTERPOLATE_LANCZOS = range(5)
    CHANNELS = {FORMAT_L8: 1, FORMAT_LA8: 2, FORMAT_RGB8: 3, FORMAT_RGBA8: 4}
    PIL_MODES = {FORMAT_L8: "L", FORMAT_LA8: "LA", FORMAT_RGB8: "RGB", FORMAT_RGBA8: "RGBA"}
    MAX_SIDE = 16384  # Image::MAX_WIDTH / MAX_HEIGHT

    def __init__(self, sim: "Sim", owner: Any = None):
        super().__init__(sim, owner)
        self.width = self.height = 0
        self.format = self.FORMAT_RGB8
        self.data = bytearray()

    def _set(self, w: int, h: int, mipmaps: bool, fmt: int, data: PackedByteArray) -> None:
        if fmt not in self.CHANNELS:
            raise SimError(f"gdsim: Image format {fmt} is not modelled (L8, LA8, RGB8, RGBA8 are)")
        channels = self.CHANNELS[fmt]
        if mipmaps:
            raise SimError("gdsim: mipmapped images are not modelled")
        if len(data) != w * h * channels:
            raise SimError(f"Image: expected {w * h * channels} bytes for {w}x{h}, got {len(data)}")
        self.width, self.height, self.format, self.data = w, h, fmt, bytearray(data)

    def _pixels(self) -> "Any":
        import numpy as np

        ch = self.CHANNELS[self.format]
        return np.frombuffer(bytes(self.data), np.uint8).reshape(self.height, self.width, ch)

    def set_data(self, w: int, h: int, mipmaps: bool, fmt: int, data: PackedByteArray) -> None:
        self.sim.count("Image.set_data")
        self._set(w, h, mipmaps, fmt, data)

    def get_width(self) -> int:
        return self.width

    def get_height(self) -> int:
        return self.height

    def get_format(self) -> int:
        return self.format

    def is_empty(self) -> bool:
        return self.width == 0 or self.height == 0

    def is_compressed(self) -> bool:
        return False  # gdsim models no VRAM-compressed formats

    def get_data(self) -> PackedByteArray:
        return PackedByteArray(self.data)

    def duplicate(self, subresources: bool = False) -> "ImageModel":
        copy = ImageModel(self.sim)
        copy.width, copy.height, copy.format, copy.data = self.width, self.height, self.format, bytearray(self.data)
        return copy

    def convert(self, fmt: int) -> None:
        """Image.convert between L8/LA8/RGB8/RGBA8: grey spreads to RGB, missing alpha becomes 255."""
        import numpy as np

        if fmt == self.format:
            return
        if fmt not in (self.FORMAT_RGB8, self.FORMAT_RGBA8):
            raise SimError("gdsim: only conversions to RGB8 and RGBA8 are modelled")
        if self.is_empty():
            self.format = fmt
            return
        px = self._pixels()
        rgb = px[..., :1].repeat(3, axis=2) if px.shape[2] <= 2 else px[..., :3]
        if fmt == self.FORMAT_RGB8:
            out = rgb
        else:
            alpha = px[..., -1:] if px.shape[2] in (2, 4) else np.full(px.shape[:2] + (1,), 255, np.uint8)
            out = np.concatenate([rgb, alpha], axis=2)
        self.data, self.format = bytearray(np.ascontiguousarray(out).tobytes()), fmt

    def resize(self, w: int, h: int, interpolation: int = 1) -> None:
        """Image.resize; nearest-neighbour as Godot's _scale_nearest (src = dst * src_size / dst_size)."""
        import numpy as np

        if interpolation != self.INTERPOLATE_NEAREST:
            raise SimError("gdsim: only Image.INTERPOLATE_NEAREST resizing is modelled")
        if not (0 < w <= self.MAX_SIDE and 0 < h <= self.MAX_SIDE) or self.is_empty():
            raise SimError(f"Image.resize: invalid size {w}x{h} for a {self.width}x{self.height} image")
        ys = np.arange(h) * self.height // h
        xs = np.arange(w) * self.width // w
        out = self._pixels()[ys][:, xs]
        self.width, self.height, self.data = w, h, bytearray(np.ascontiguousarray(out).tobytes())

    def set_pixel(self, x: int, y: int, color: "Color") -> None:
        """set_pixel: each channel is uint8(clamp(c * 255, 0, 255)) of the float32 Color (Godot truncates)."""
        import numpy as np

        if not (0 <= x < self.width and 0 <= y < self.height):
            raise SimError(f"Image.set_pixel: ({x}, {y}) is outside the {self.width}x{self.height} image")

        def byte(c: float) -> int:
            return int(min(max(float(np.float32(c)) * 255.0, 0.0), 255.0))

        r, g, b, a = (byte(c) for c in (color.r, color.g, color.b, color.a))
        if self.format in (self.FORMAT_L8, self.FORMAT_LA8):
            v = byte(max(float(np.float32(color.r)), float(np.float32(color.g)), float(np.float32(color.b))))
            values = [v] if self.format == self.FORMAT_L8 else [v, a]
        else:
            values = [r, g, b] if self.format == self.FORMAT_RGB8 else [r, g, b, a]
        ch = len(values)
        at = (y * self.width + x) * ch
        self.data[at:at + ch] = bytes(values)

    def fill(self, color: "Color") -> None:
        if self.is_empty():
            return
        self.set_pixel(0, 0, color)
        ch = self.CHANNELS[self.format]
        self.data = bytearray(bytes(self.data[:ch]) * (self.width * self.height))

    def _load(self, data: PackedByteArray, kind: str) -> int:
        """PNG/JPEG through PIL into the format Godot's loaders pick (grey -> L8/LA8, palette -> RGB(A)8)."""
        import numpy as np
        from PIL import Image as PILImage

        try:
            with PILImage.open(io.BytesIO(bytes(data))) as im:
                if im.format != kind.upper().replace("JPG", "JPEG"):
                    return 43  # ERR_PARSE_ERROR: not this file type
                im.load()
                has_alpha = "A" in im.getbands() or "transparency" in im.info
                if im.mode in ("L", "LA"):
                    mode = im.mode
                elif im.mode == "1":
                    mode = "L"
                elif im.mode.startswith("I"):
                    mode = "L"  # 16-bit grey: Godot's loader strips it to 8 bits
                    im = PILImage.fromarray((np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8), "L")
                else:
                    mode = "RGBA" if has_alpha else "RGB"
                arr = im.convert(mode)
        except Exception:  # noqa: BLE001 - any decoder failure is Godot's ERR_PARSE_ERROR
            return 43
        fmt = {v: k for k, v in self.PIL_MODES.items()}[mode]
        self._set(arr.width, arr.height, False, fmt, PackedByteArray(arr.tobytes()))
        return 0

    def load_png_from_buffer(self, data: PackedByteArray) -> int:
        return self._load(data, "png")

    def load_jpg_from_buffer(self, data: PackedByteArray) -> int:
        return self._load(data, "jpg")

    def save_png_to_buffer(self) -> PackedByteArray:
        """A PNG of the same pixel format (L8 grey, LA8 grey+alpha, RGB8, RGBA8); empty for an empty image."""
        from PIL import Image as PILImage

        if self.is_empty():
            self.sim.errors.append("Image.save_png_to_buffer: the image is empty")
            return PackedByteArray()
        im = PILImage.frombytes(self.PIL_MODES[self.format], (self.width, self.height), bytes(self.data))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return PackedByteArray(buf.getvalue())


class ImageTextureModel(NativeObject):
    CLASS = "ImageTexture"

    def __init__(self, sim: "Sim", owner: Any = None):
        super().__init__(sim, owner)
        self.width = self.height = 0
        self.format = -1
        self.uploads = 0

    def update(self, image: ImageModel) -> None:
        self.sim.count("ImageTexture.update")
        if (image.width, image.height, image.format) != (self.width, self.height, self.format):
            raise SimError("ImageTexture.update: the new image dimensions/format must match the texture")
        self.uploads += 1

    def get_width(self) -> int:
        return self.width

    def get_height(self) -> int:
        return self.height


class ViewportTextureModel(NativeObject):
    """ViewportTexture: get_image() is a copy of what its viewport rendered last (empty before that)."""

    CLASS = "ViewportTexture"

    def __init__(self, sim: "Sim", viewport: "SubViewportModel"):
        super().__init__(sim)
        self.viewport = viewport

    def get_image(self) -> ImageModel:
        rendered = self.viewport.rendered
        return rendered.duplicate() if rendered is not None else ImageModel(self.sim)


class ViewportModel(NodeModel):
    """Viewport (the root window too): which control in it has the keyboard."""

    CLASS = "Viewport"

    def gui_get_focus_owner(self) -> Any:
        """The focused control of this viewport (not of one nested in it), or null."""
        for node in self.sim._walk(self.owner):
            model = self.sim.native_of(node)
            if isinstance(model, ControlModel) and model.focused and model.get_viewport() is self.owner:
                return node
        return None


class SubViewportModel(ViewportModel):
    """SubViewport; nothing is drawn: tests set `rendered` (an Image) to what it shows."""

    CLASS = "SubViewport"

    def __init__(self, sim: "Sim", owner: Any = None):
        super().__init__(sim, owner)
        self.rendered: ImageModel | None = None

    def get_texture(self) -> ViewportTextureModel:
        return ViewportTextureModel(self.sim, self)


def _image_create_from_data(sim: "Sim", w: int, h: int, mipmaps: bool, fmt: int, data: PackedByteArray) -> ImageModel:
    sim.count("Image.create_from_data")
    img = ImageModel(sim)
    img._set(w, h, mipmaps, fmt, data)
    return img


def _image_create(sim: "Sim", w: int, h: int, mipmaps: bool, fmt: int) -> ImageModel:
    """Image.create: a new image of zeros (transparent black)."""
    img = ImageModel(sim)
    if not (0 < w <= ImageModel.MAX_SIDE and 0 < h <= ImageModel.MAX_SIDE):
        raise SimError(f"Image.create: invalid size {w}x{h}")
    img._set(w, h, mipmaps, fmt, PackedByteArray(w * h * ImageModel.CHANNELS.get(fmt, 1)))
    return img


def _texture_create_from_image(sim: "Sim", image: ImageModel) -> ImageTextureModel:
    sim.count("ImageTexture.create_from_image")
    tex = ImageTextureModel(sim)
    tex.width, tex.height, tex.format = image.width, image.height, image.format
    tex.uploads = 1
    return tex


NATIVE_MODELS: dict[str, type[NativeObject]] = {
    "RefCounted": NativeObject, "Object": NativeObject, "StreamPeerBuffer": StreamPeerBufferModel,
    "StreamPeerTCP": StreamPeerTCPModel, "Node": NodeModel, "TextureRect": TextureRectModel,
    "Label": LabelModel, "Image": ImageModel, "ImageTexture": ImageTextureModel, "Control": ControlModel,
    "VBoxContainer": VBoxContainerModel, "HBoxContainer": HBoxContainerModel, "GridContainer": GridContainerModel,
    "LineEdit": LineEditModel, "TextEdit": TextEditModel, "Button": ButtonModel, "CheckBox": CheckBoxModel,
    "OptionButton": OptionButtonModel, "Viewport": ViewportModel,
    "SpinBox": SpinBoxModel, "FileDialog": FileDialogModel,
    "InputEventMouseButton": InputEventMouseButtonModel, "InputEventKey": InputEventKeyModel,
    "SubViewport": SubViewportModel, "MarginContainer": MarginContainerModel, "ColorRect": ColorRectModel,
}
NATIVE_PARENTS = {"StreamPeerBuffer": "RefCounted", "StreamPeerTCP": "RefCounted", "Node": "Object",
                  "CanvasItem": "Node", "Control": "CanvasItem", "TextureRect": "Control", "Label": "Control",
                  "Container": "Control", "BoxContainer": "Container", "VBoxContainer": "BoxContainer",
                  "HBoxContainer": "BoxContainer", "GridContainer": "Container", "LineEdit": "Control",
                  "MarginContainer": "Container", "ColorRect": "Control",
                  "TextEdit": "Control", "BaseButton": "Control", "Button": "BaseButton", "OptionButton": "Button",
                  "Range": "Control", "SpinBox": "Range", "Window": "Viewport", "AcceptDialog": "Window",
                  "ConfirmationDialog": "AcceptDialog", "FileDialog": "ConfirmationDialog",
                  "Image": "RefCounted", "ImageTexture": "RefCounted",
                  "RefCounted": "Object", "SubViewport": "Viewport", "Viewport": "Node",
                  "InputEventMouseButton": "InputEventMouse", "InputEventMouse": "InputEventWithModifiers",
                  "InputEventKey": "InputEventWithModifiers", "InputEventWithModifiers": "InputEventFromWindow",
                  "InputEventFromWindow": "InputEvent", "InputEvent": "RefCounted"}
# Properties: name -> (getter, setter) method names, for native properties with copy semantics.
NATIVE_PROPERTIES = {"data_array": ("get_data_array", "set_data_array")}
NATIVE_PUBLIC_ATTRS = {"big_endian", "name", "texture", "expand_mode", "stretch_mode", "texture_filter", "visible",
                       "text", "position", "size", "flip_h", "flip_v", "pressed", "button_index", "process_mode",
                       "paused"}


def _native_attr(obj: Any, name: str) -> bool:
    """A modelled property of an engine object: a listed public attribute, or one of its class's PROPS."""
    return (name in NATIVE_PUBLIC_ATTRS and hasattr(obj, name)) or name in getattr(type(obj), "PROPS", ())


class NativeClass:
    """A Godot class used as a value: ClassName.new(), constants, static methods."""

    def __init__(self, sim: "Sim", name: str):
        self.sim, self.name = sim, name

    def __repr__(self) -> str:
        return f"<native class {self.name}>"


class Singleton:
    def __init__(self, name: str, members: dict[str, Any]):
        self.name, self.members = name, members

    def __repr__(self) -> str:
        return f"<singleton {self.name}>"


# --- Built-in methods of Variant types -------------------------------------------------------

INT_MAX = (1 << 63) - 1


def _norm_range(size: int, begin: int, end: int) -> tuple[int, int]:
    if begin < 0:
        begin = max(0, size + begin)
    if end < 0:
        end = max(0, size + end)
    return min(begin, size), min(end, size)


def _string_method(s: str, name: str, args: list) -> Any:
    m = {
        "begins_with": lambda p: s.startswith(p),
        "ends_with": lambda p: s.endswith(p),
        "contains": lambda p: p in s,
        "length": lambda: len(s),
        "is_empty": lambda: len(s) == 0,
        "substr": lambda a, n=-1: s[a:] if n < 0 else s[a:a + n],
        "find": lambda p, f=0: s.find(p, f),
        "rfind": lambda p, f=-1: s.rfind(p) if f < 0 else s.rfind(p, 0, f + len(p)),
        "strip_edges": lambda left=True, right=True: (s.lstrip() if left else s).rstrip() if right else (
            s.lstrip() if left else s),
        "is_valid_int": lambda: re.fullmatch(r"[+-]?\d+", s) is not None,
        "to_int": lambda: int(re.match(r"[+-]?\d*", s).group() or 0) if re.match(r"[+-]?\d", s) else 0,
        "to_float": lambda: float(s) if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s) else 0.0,
        "trim_prefix": lambda p: s[len(p):] if p and s.startswith(p) else s,
        "trim_suffix": lambda p: s[:-len(p)] if p and s.endswith(p) else s,
        "split": lambda d, allow_empty=True, maxsplit=0: PackedStringArray(
            p for p in (s.split(d, maxsplit) if maxsplit > 0 else s.split(d)) if allow_empty or p != ""),
        "to_utf8_buffer": lambda: PackedByteArray(s.encode("utf-8")),
        "to_ascii_buffer": lambda: PackedByteArray(s.encode("ascii", errors="replace")),
        "hex_decode": lambda: _hex_decode(s),
        "path_join": lambda p: s + p if s.endswith("/") else s + "/" + p,
        "join": lambda parts: s.join(str(p) for p in parts),
        "replace": lambda a, b: s.replace(a, b),
        "to_lower": lambda: s.lower(),
        "to_upper": lambda: s.upper(),
        "get_file": lambda: s[max(s.rfind("/"), s.rfind("\\")) + 1:],
    }
    if name not in m:
        raise SimError(f"gdsim: String has no (modelled) method {name}()")
    return m[name](*args)


def _vector_method(v: Any, name: str, args: list) -> Any:
    m = {
        "abs": lambda: type(v)(abs(v.x), abs(v.y)),
        "length": lambda: math.hypot(v.x, v.y),
        "floor": lambda: Vector2(math.floor(v.x), math.floor(v.y)),
    }
    if name not in m:
        raise SimError(f"gdsim: {type(v).__name__} has no (modelled) method {name}()")
    return m[name](*args)


def _hex_decode(s: str) -> PackedByteArray:
    if len(s) % 2 or re.fullmatch(r"[0-9a-fA-F]*", s) is None:
        raise SimError(f"String.hex_decode: invalid hexadecimal string ({s[:16]}...)")
    return PackedByteArray(bytes.fromhex(s))


def _bytes_method(sim: "Sim", b: PackedByteArray, name: str, args: list) -> Any:
    def resize(n: int) -> int:
        if n < len(b):
            del b[n:]
        else:
            b.extend(b"\xcd" * (n - len(b)))  # Godot does not promise zeros: gdsim writes garbage
        return 0

    def slice_(begin: int, end: int = INT_MAX) -> PackedByteArray:
        lo, hi = _norm_range(len(b), begin, end)
        return PackedByteArray(b[lo:hi])

    def fill(v: int) -> None:
        b[:] = bytes([v & 0xFF]) * len(b)

    def append_array(other: PackedByteArray) -> None:
        if not isinstance(other, PackedByteArray):
            raise SimError(f"PackedByteArray.append_array needs a PackedByteArray, not {TYPE_NAMES[gd_typeof(other)]}")
        b.extend(other)

    def append(v: int) -> bool:
        b.append(v & 0xFF)
        return False

    def get_ascii() -> str:
        raw = bytes(b).split(b"\0", 1)[0]  # Godot reads it as a C string: stops at the first NUL
        return raw.decode("latin-1")

    def get_utf8() -> str:
        raw = bytes(b).split(b"\0", 1)[0]
        if raw.startswith(b"\xef\xbb\xbf"):  # Godot's String::parse_utf8 skips a leading BOM
            raw = raw[3:]
        return raw.decode("utf-8", errors="replace")

    m = {
        "size": lambda: len(b), "is_empty": lambda: len(b) == 0, "slice": slice_, "resize": resize,
        "fill": fill, "append_array": append_array, "append": append, "push_back": append,
        "hex_encode": lambda: bytes(b).hex(), "get_string_from_ascii": get_ascii,
        "get_string_from_utf8": get_utf8, "duplicate": lambda: PackedByteArray(b), "clear": lambda: b.clear(),
        "has": lambda v: v in b, "count": lambda v: b.count(v),
    }
    if name not in m:
        raise SimError(f"gdsim: PackedByteArray has no (modelled) method {name}()")
    return m[name](*args)


def _element(sim: "Sim", a: list, value: Any, script: Script) -> Any:
    """`value` written into `a`: checked (and an int made a float) against an Array[T]'s T, as Godot checks every write."""
    if not isinstance(a, GDArray) or a.element in (None, LITERAL):
        return value
    return coerce(value, a.element, sim, script, f"an element of Array[{a.element}]")


def _array_method(sim: "Sim", a: list, name: str, args: list, script: Script) -> Any:
    def put(i: int | None, v: Any) -> None:
        v = _element(sim, a, v, script)
        if i is None:
            a.append(v)
        else:
            a.insert(i, v)

    def insert(position: int, v: Any) -> int:
        n = len(a)
        if gd_typeof(position) != T["int"] or not -n <= position <= n:
            raise SimError(f"Array.insert: index {position} out of bounds (size {n})")
        put(position + n if position < 0 else position, v)
        return 0

    def pop_front() -> Any:
        return a.pop(0) if a else None

    def pop_back() -> Any:
        return a.pop() if a else None

    def resize(n: int) -> int:
        if n < len(a):
            del a[n:]
        else:
            a.extend([None] * (n - len(a)))
        return 0

    def has(v: Any) -> bool:
        return any(_same_value(x, v) if gd_typeof(x) == gd_typeof(v) else False for x in a)

    def erase(v: Any) -> None:
        for i, x in enumerate(a):
            if gd_typeof(x) == gd_typeof(v) and _same_value(x, v):
                del a[i]
                return

    def append_array(other: list) -> None:
        a.extend([_element(sim, a, v, script) for v in other])

    def duplicate(deep: bool = False) -> list:
        copy = cls(a)
        if isinstance(a, GDArray):
            copy.element = a.element  # an Array[T]'s copy is an Array[T]
        return copy

    cls = type(a)
    m = {
        "size": lambda: len(a), "is_empty": lambda: len(a) == 0, "append": lambda v: put(None, v),
        "push_back": lambda v: put(None, v), "push_front": lambda v: put(0, v), "insert": insert, "pop_front": pop_front,
        "pop_back": pop_back, "front": lambda: a[0] if a else None, "back": lambda: a[-1] if a else None,
        "clear": lambda: a.clear(), "resize": resize, "has": has, "erase": erase,
        "duplicate": duplicate, "append_array": append_array,
        "find": lambda v: next((i for i, x in enumerate(a) if gd_typeof(x) == gd_typeof(v) and _same_value(x, v)), -1),
    }
    if name not in m:
        raise SimError(f"gdsim: Array has no (modelled) method {name}()")
    return m[name](*args)


def _dict_method(d: dict, name: str, args: list) -> Any:
    def merge(other: dict, overwrite: bool = False) -> None:
        for k, v in other.items():
            if overwrite or k not in d:
                d[k] = v

    def erase(k: Any) -> bool:
        return d.pop(k, _MISSING) is not _MISSING

    m = {
        "get": lambda k, default=None: d.get(k, default), "has": lambda k: k in d,
        "keys": lambda: GDArray(d.keys()), "values": lambda: GDArray(d.values()), "size": lambda: len(d),
        "is_empty": lambda: len(d) == 0, "erase": erase, "clear": lambda: d.clear(), "merge": merge,
        "duplicate": lambda deep=False: GDDict(d),
    }
    if name not in m:
        raise SimError(f"gdsim: Dictionary has no (modelled) method {name}()")
    return m[name](*args)


_MISSING = object()


# --- The interpreter -----------------------------------------------------------------------

BINARY = {"+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^", "**"}


class Sim:
    """Loads scripts from a Godot project directory and runs them."""

    def __init__(self, project_dir: Path | str, editor_hint: bool = False):
        self.project = Path(project_dir).resolve()
        self.scripts: dict[Path, Script] = {}
        self.class_names: dict[str, Path] = {}
        self.output: list[str] = []
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self.counters: dict[str, int] = {}
        self.statements = 0  # GDScript statements executed (to prove loops never run per byte)
        self.sockets: list[StreamPeerTCPModel] = []
        self.free_queue: list[Any] = []
        self.clock_ms: float | None = None  # None: real time
        self.editor_hint = editor_hint
        self.input_actions: set[str] = set()
        self.pressed: set[str] = set()
        self.just_pressed: set[str] = set()
        self.tree = SceneTreeModel(self)
        self.root = ViewportModel(self)  # stands in for SceneTree.root, the game's window
        self.root.inside_tree = True
        self.root.name = "root"
        self._scan_class_names()
        self._globals = self._make_globals()

    # -- Loading
    def _scan_class_names(self) -> None:
        for path in sorted(self.project.rglob("*.gd")):
            m = re.search(r"^class_name\s+(\w+)", path.read_text(encoding="utf-8"), re.M)
            if m:
                if m.group(1) in self.class_names:
                    raise SimError(f"class_name {m.group(1)} is declared twice")
                self.class_names[m.group(1)] = path

    def res_path(self, res: str, relative_to: Path | None = None) -> Path:
        if res.startswith("res://"):
            return self.project / res[len("res://"):]
        if relative_to is None:
            raise SimError(f"gdsim: relative path {res} without a script")
        return (relative_to.parent / res).resolve()

    def load(self, res: str, relative_to: Path | None = None) -> Script:
        path = self.res_path(res, relative_to)
        if not path.exists():
            raise SimError(f"preload: no file at {res} ({path})")
        if path.suffix != ".gd":
            return Singleton(f"resource {res}", {})  # icons and other resources: opaque
        if path not in self.scripts:
            script = Script(self, path)
            self.scripts[path] = script
            if script.extends and (script.extends.endswith(".gd") or script.extends in self.class_names):
                base_res = script.extends
                script.base = (self.load(base_res, path) if base_res.endswith(".gd")
                               else self.load("res://" + str(self.class_names[base_res].relative_to(self.project))))
        return self.scripts[path]

    def script(self, res: str) -> Script:
        return self.load(res)

    # -- Time and bookkeeping
    def now_ms(self) -> float:
        return self.clock_ms if self.clock_ms is not None else time.monotonic() * 1000.0

    def count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    def make_native(self, class_name: str, owner: Any) -> NativeObject:
        name = class_name
        while name not in NATIVE_MODELS:
            if name not in NATIVE_PARENTS:
                raise SimError(f"gdsim: engine class {class_name} is not modelled")
            name = NATIVE_PARENTS[name]
        return NATIVE_MODELS[name](self, owner)

    def native_of(self, obj: Any) -> NativeObject:
        if isinstance(obj, Instance):
            return obj.native
        if isinstance(obj, NativeObject):
            return obj
        raise SimError(f"gdsim: {obj!r} is not an Object")

    # -- Scene tree
    def enter_tree(self, node: Any) -> None:
        """Node::_set_tree: _enter_tree parents first, then _ready children first, and only on a node's first entry
        (a node taken out of the tree and added again, or reparented, gets _enter_tree again but not _ready)."""
        self._propagate_enter_tree(node)
        self._propagate_ready(node)

    def _propagate_enter_tree(self, node: Any) -> None:
        model = self.native_of(node)
        model.inside_tree = True
        if isinstance(node, Instance) and node.script.find_func("_enter_tree"):
            self.call_method(node, "_enter_tree", [])
        for child in list(model.children):
            self._propagate_enter_tree(child)

    def _propagate_ready(self, node: Any) -> None:
        model = self.native_of(node)
        for child in list(model.children):
            self._propagate_ready(child)
        if model.ready_done or not model.inside_tree:
            return
        model.ready_done = True
        if isinstance(node, Instance):
            frame = Frame(node.script, node)
            for var in node.script.all_vars():
                if "onready" in var.annotations and var.init is not None:  # `:=` takes its initializer's type
                    value, node.member_types[var.name] = self.first_value(var, frame)
                    self.set_member(node, var.name, value, frame)
        if isinstance(node, Instance) and node.script.find_func("_ready"):
            self.call_method(node, "_ready", [])

    def exit_tree(self, node: Any) -> None:
        """Node::_propagate_exit_tree: the children leave last first, then the node (its _exit_tree)."""
        model = self.native_of(node)
        for child in reversed(list(model.children)):
            self.exit_tree(child)
        if isinstance(node, Instance) and node.script.find_func("_exit_tree"):
            self.call_method(node, "_exit_tree", [])
        if isinstance(model, ControlModel):
            model.release_focus()  # NOTIFICATION_EXIT_TREE, after _exit_tree: Viewport::_gui_remove_control
        model.inside_tree = False

    def process(self, frames: int = 1, delta: float = 1.0 / 60.0, step_ms: float | None = None) -> None:
        """Runs `frames` process frames over the tree (and frees queued nodes, as Godot does)."""
        for _ in range(frames):
            if step_ms is not None and self.clock_ms is not None:
                self.clock_ms += step_ms
            for node in self._walk(self.root):
                model = self.native_of(node)
                if (isinstance(node, Instance) and model.processing and not model.freed
                        and model.can_process() and node.script.find_func("_process")):
                    self.call_method(node, "_process", [delta])
            self.just_pressed.clear()
            for node in self.free_queue:
                if not self.native_of(node).freed:
                    self.native_of(node).free()
            self.free_queue.clear()

    def _walk(self, node: Any) -> list[Any]:
        out = []
        for child in list(self.native_of(node).children):
            out.append(child)
            out += self._walk(child)
        return out

    def process_states(self, nodes: list[Any]) -> list[tuple[bool, bool]]:
        """Each node's (processes, not DISABLED), taken before a pause or mode change to compare after it."""
        models = [self.native_of(n) for n in nodes]
        return [(m.can_process(), m._mode() != NodeModel.PROCESS_MODE_DISABLED) for m in models]

    def notify_process_changes(self, nodes: list[Any], before: list[tuple[bool, bool]]) -> None:
        """The one pause/mode notification loop: PAUSED/UNPAUSED then DISABLED/ENABLED per node, parents first."""
        for node, (could, was_on), (can, is_on) in zip(nodes, before, self.process_states(nodes)):
            model = self.native_of(node)
            if can != could:
                model._notify(NodeModel.NOTIFICATION_UNPAUSED if can else NodeModel.NOTIFICATION_PAUSED)
            if is_on != was_on:
                model._notify(NodeModel.NOTIFICATION_ENABLED if is_on else NodeModel.NOTIFICATION_DISABLED)

    def add_to_root(self, node: Any) -> None:
        self.root.add_child(node)

    def close(self) -> None:
        for s in self.sockets:
            s.disconnect_from_host()

    # -- Object creation and calls
    def new(self, script: Script, *args: Any) -> Instance:
        inst = Instance(self, script)
        self.init_instance(inst, list(args))
        return inst

    def init_instance(self, inst: Instance, args: list) -> None:
        """Object.set_script: the members take their defaults, then _init runs (a scene load sets the engine
        properties it saved on `inst.native` before this)."""
        script = inst.script
        frame = Frame(script, inst)
        for var in script.all_vars():
            onready = "onready" in var.annotations
            inst.members[var.name], inst.member_types[var.name] = self.first_value(var, frame, not onready)
        if script.find_func("_init"):
            self.call_method(inst, "_init", args)

    def set_property(self, obj: Any, name: str, value: Any) -> bool:
        """Object.set: a script member (through its setter), else the script's _set() when it returns true, else a
        modelled engine property; False when none took it. (GDScript's `x = v` on a declared property skips _set.)"""
        if isinstance(obj, Instance):
            if name in obj.members:
                self.set_member(obj, name, value, Frame(obj.script, None))
                return True
            if obj.script.find_func("_set") and self.call_method(obj, "_set", [StringName(name), value]) is True:
                return True
            obj = obj.native
        if name in NATIVE_PROPERTIES:
            getattr(obj, NATIVE_PROPERTIES[name][1])(value)
            return True
        if not _native_attr(obj, name):
            return False
        if name in getattr(type(obj), "READ_ONLY", ()):
            raise SimError(f"{obj.CLASS}.{name} is read-only")
        setattr(obj, name, value)
        return True

    def get_property(self, obj: Any, name: str) -> Any:
        """Object.get: a script member (through its getter), else the script's _get() when it returns non-null, else
        a modelled engine property."""
        if isinstance(obj, Instance):
            if name in obj.members:
                return self.get_attr(obj, name, Frame(obj.script, None))
            if obj.script.find_func("_get"):
                value = self.call_method(obj, "_get", [StringName(name)])
                if value is not None:
                    return value
            obj = obj.native
        return self.get_attr(obj, name, Frame(None, None))  # type: ignore[arg-type]

    def call_method(self, obj: Instance, name: str, args: list) -> Any:
        """obj.name(args): a script method, or else a method of its engine class."""
        fn = obj.script.find_func(name)
        if fn is None:
            return self.call_on(obj, name, args, Frame(obj.script, None))
        return self.call_func(fn, obj, args)

    def call_static(self, script: Script, name: str, args: list) -> Any:
        fn = script.find_func(name)
        if fn is None:
            raise SimError(f"{script!r} has no function {name}()")
        return self.call_func(fn, None, args)

    def call_func(self, fn: FuncDef, self_obj: Instance | None, args: list) -> Any:
        if self_obj is None and not fn.static:
            raise SimError(f"non-static function {fn.name}() called without an instance")
        frame = Frame(fn.script, self_obj, func=fn)
        if len(args) > len(fn.params):
            raise SimError(f"{fn.name}(): too many arguments ({len(args)} for {len(fn.params)})")
        for i, (pname, ptype, default) in enumerate(fn.params):
            if i < len(args):
                value = args[i]
            elif default is not None:
                value = self.eval_stored(default, frame)
            else:
                raise SimError(f"{fn.name}(): missing argument {pname}")
            declared = type_of_value(value) if ptype == "<inferred>" else ptype
            frame.locals[pname] = coerce(value, declared, self, fn.script, f"argument {pname} of {fn.name}()")
            frame.types[pname] = declared
        try:
            self.exec_block(fn.body, frame)
            result = None
        except _Return as r:
            result = r.value
        if fn.ret in (None, "Variant", "void"):
            if fn.ret == "void" and result is not None:
                raise SimError(f"{fn.name}() is void but returned a value")
            return _stored(result)
        return coerce(result, fn.ret, self, fn.script, f"return value of {fn.name}()")

    # -- Statements
    def exec_block(self, stmts: list, frame: Frame) -> None:
        for st in stmts:
            if isinstance(st, Tree):
                self.exec(st, frame)

    def exec(self, st: Tree, frame: Frame) -> None:
        kind = st.data
        self.statements += 1
        try:
            if kind == "expr_stmt":
                self.eval(st.children[0], frame)
            elif kind == "func_var_stmt":
                var = _var_def(st.children[0])
                frame.locals[var.name], frame.types[var.name] = self.first_value(var, frame)
            elif kind == "return_stmt":
                raise _Return(self.eval_stored(st.children[0], frame) if st.children else None)
            elif kind == "if_stmt":
                for branch in st.children:
                    if not isinstance(branch, Tree):
                        continue
                    if branch.data == "else_branch":
                        self.exec_block(branch.children, frame)
                        return
                    if truthy(self.eval(branch.children[0], frame)):
                        self.exec_block(branch.children[1:], frame)
                        return
            elif kind == "while_stmt":
                while truthy(self.eval(st.children[0], frame)):
                    try:
                        self.exec_block(st.children[1:], frame)
                    except _Break:
                        break
                    except _Continue:
                        continue
            elif kind in ("for_stmt", "for_stmt_typed"):
                name = str(st.children[0])
                iterable = self.eval(st.children[2 if kind == "for_stmt_typed" else 1], frame)
                body = st.children[3 if kind == "for_stmt_typed" else 2:]
                for item in list(self.iterate(iterable)):
                    frame.locals[name] = item
                    try:
                        self.exec_block(body, frame)
                    except _Break:
                        break
                    except _Continue:
                        continue
            elif kind == "match_stmt":
                self.exec_match(st, frame)
            elif kind == "pass_stmt":
                pass
            elif kind == "break_stmt":
                raise _Break()
            elif kind == "continue_stmt":
                raise _Continue()
            elif kind == "const_stmt":
                inner = st.children[0]
                frame.locals[str(inner.children[0])] = self.eval_const(inner, frame)
            elif kind == "annotation":
                pass
            else:
                raise SimError(f"gdsim: statement {kind} is not modelled")
        except SimError as e:
            if not getattr(e, "located", False):
                line = getattr(st.meta, "line", "?")
                e.args = (f"{frame.script.path.name}:{line}: {e.args[0]}",)
                e.located = True
            raise

    def exec_match(self, st: Tree, frame: Frame) -> None:
        value = self.eval(st.children[0], frame)
        for branch in st.children[1:]:
            if not isinstance(branch, Tree) or branch.data != "match_branch":
                if isinstance(branch, Tree) and branch.data == "guarded_match_branch":
                    raise SimError("gdsim: match guards (when) are not modelled")
                continue
            pattern = branch.children[0].children[0]
            options = pattern.children if isinstance(pattern, Tree) and pattern.data == "list_pattern" else [pattern]
            for opt in options:
                if isinstance(opt, Tree) and opt.data == "wildcard_pattern":
                    hit = True
                else:
                    expected = self.eval(opt, frame)
                    hit = gd_typeof(expected) == gd_typeof(value) and _same_value(expected, value)
                if hit:
                    self.exec_block(branch.children[1:], frame)
                    return

    def iterate(self, v: Any) -> Any:
        t = gd_typeof(v)
        if t in (T["Array"], T["PackedStringArray"], T["PackedByteArray"]):
            return list(v)
        if t == T["Dictionary"]:
            return list(v.keys())
        if t == T["int"]:
            return range(v)
        if t == T["String"]:
            return list(v)
        raise SimError(f"cannot iterate over a {TYPE_NAMES[t]}")

    # -- Expressions
    def eval_const(self, inner: Tree, frame: Frame) -> Any:
        """A `const` statement's value, of its declared type (a typed array literal stays typed), as in Godot."""
        declared = str(inner.children[1]) if inner.data == "const_typed_assigned" else None
        name = str(inner.children[0])
        return coerce(self.eval_stored(inner.children[-1], frame), declared, self, frame.script, f"const {name}")

    def eval(self, node: Any, frame: Frame) -> Any:
        if isinstance(node, Token):
            return self.eval_token(node, frame)
        kind = node.data
        ch = node.children
        if kind in ("expr", "par_expr"):
            return self.eval(ch[0], frame)
        if kind == "assnmnt_expr":
            return self.assign(ch[0], str(ch[1]), ch[2], frame)
        if kind in ("test_expr", "asless_test_expr"):
            return self.eval(ch[0] if truthy(self.eval(ch[2], frame)) else ch[4], frame)
        if kind in ("or_test", "asless_or_test"):
            for operand in ch[::2]:
                if truthy(self.eval(operand, frame), "operand of or"):
                    return True
            return False
        if kind in ("and_test", "asless_and_test"):
            for operand in ch[::2]:
                if not truthy(self.eval(operand, frame), "operand of and"):
                    return False
            return True
        if kind == "asless_actual_not_test":
            return not truthy(self.eval(ch[1], frame), "operand of not")
        if kind in ("content_test", "asless_content_test"):
            left = self.eval(ch[0], frame)
            for op, right_node in zip(ch[1::2], ch[2::2]):
                negate = isinstance(op, Tree) and op.data == "not_in_op"
                left = self.contains(self.eval(right_node, frame), left) != negate
            return left
        if kind in ("comparison", "asless_comparison"):
            return self.compare(self.eval(ch[0], frame), str(ch[1]), self.eval(ch[2], frame))
        if kind in ("bitw_or", "asless_bitw_or", "bitw_xor", "asless_bitw_xor", "bitw_and", "asless_bitw_and",
                    "shift_expr", "asless_shift_expr", "arith_expr", "asless_arith_expr", "mdr_expr",
                    "asless_mdr_expr", "pow_expr", "asless_pow_expr"):
            value = self.eval(ch[0], frame)
            for op, right_node in zip(ch[1::2], ch[2::2]):
                value = self.binary(value, str(op), self.eval(right_node, frame))
            return value
        if kind == "asless_actual_neg_expr":
            v = self.eval(ch[1], frame)
            if gd_typeof(v) == T["int"]:
                return i64(-v)
            if gd_typeof(v) == T["float"]:
                return -v
            raise SimError(f"Invalid operand of type {TYPE_NAMES[gd_typeof(v)]} for unary -")
        if kind == "asless_actual_bitw_not":
            v = self.eval(ch[1], frame)
            if gd_typeof(v) != T["int"]:
                raise SimError("Invalid operand for ~")
            return ~v
        if kind in ("type_test", "asless_type_test"):
            v = self.eval(ch[0], frame)
            result = self.is_type(v, str(ch[2]), frame)
            return result if str(ch[1]) == "is" else not result
        if kind == "actual_type_cast":
            return coerce(self.eval(ch[0], frame), str(ch[2]), self, frame.script, "as cast", cast=True)
        if kind == "await_expr":
            raise SimError("gdsim: await is not modelled (coroutines run only in Godot)")
        if kind == "standalone_call":
            args = [self.eval_stored(a, frame) for a in ch[1:] if not _is_trailing(a)]
            return _all_stored(self.call_name(str(ch[0]), args, frame), args)
        if kind == "getattr_call":
            target = ch[0]
            base = self.eval_getattr_base(target, frame)
            args = [self.eval_stored(a, frame) for a in ch[1:] if not _is_trailing(a)]
            return _all_stored(self.call_on(base, str(target.children[-1]), args, frame), args)
        if kind == "getattr":
            value = self.eval(ch[0], frame)
            for name in ch[2::2]:
                value = self.get_attr(value, str(name), frame)
            return value
        if kind == "subscr_expr":
            return self.get_item(self.eval(ch[0], frame), self.eval(ch[1], frame))
        if kind == "array":
            return GDArray(self.eval(x, frame) for x in ch if not _is_trailing(x))
        if kind == "dict":
            out = GDDict()
            for el in ch:
                if _is_trailing(el):
                    continue
                if el.data == "c_dict_element":
                    out[self.eval(el.children[0], frame)] = self.eval(el.children[1], frame)
                else:
                    out[str(el.children[0])] = self.eval(el.children[1], frame)
            return out
        if kind == "string":
            return _string_value(node)
        if kind == "rstring":
            return str(ch[0])[2:-1]
        if kind == "string_name":
            return StringName(_string_value(ch[0]))
        if kind == "lambda":
            return self.make_lambda(node, frame)
        if kind == "attr_pattern":  # `Class.CONSTANT` in a match pattern
            value = self.resolve(str(ch[0]), frame)
            for name in ch[2::2]:
                value = self.get_attr(value, str(name), frame)
            return value
        if kind == "get_node":
            if frame.self_obj is None:
                raise SimError("$Path outside a node's method")
            path = "".join(_string_value(t) if isinstance(t, Tree) else str(t).strip('"') for t in ch[0].children)
            return self.native_of(frame.self_obj).get_node(path)
        if kind in ("unique_node_path", "node_path"):
            raise SimError("gdsim: %Name and ^path are not modelled")
        raise SimError(f"gdsim: expression {kind} is not modelled")

    def eval_token(self, tok: Token, frame: Frame) -> Any:
        if tok.type == "NUMBER":
            text = str(tok).replace("_", "")
            return float(text) if re.search(r"[.eE]", text) else i64(int(text))
        if tok.type in ("HEX", "BIN"):
            return i64(int(str(tok).replace("_", ""), 0))
        if tok.type == "NAME":
            return self.resolve(str(tok), frame)
        raise SimError(f"gdsim: token {tok.type} is not modelled")

    def make_lambda(self, node: Tree, frame: Frame) -> GDCallable:
        header, body = node.children[0], node.children[1:]
        params = [_param(a) for a in header.children[0].children if isinstance(a, Tree)]
        ret = str(header.children[1]) if len(header.children) > 1 else None
        captured = dict(frame.locals)  # Godot lambdas capture locals by value
        fn = FuncDef("<lambda>", params, ret, body, frame.self_obj is None, frame.script)

        def run(*args: Any) -> Any:
            inner = Frame(frame.script, frame.self_obj, dict(captured))
            for i, (pname, ptype, default) in enumerate(params):
                inner.locals[pname] = coerce(args[i], ptype, self, frame.script, f"lambda argument {pname}")
            try:
                self.exec_block(body, inner)
            except _Return as r:
                return coerce(r.value, fn.ret, self, frame.script, "lambda")
            return None

        return GDCallable(run, ("lambda", id(node), id(frame)))

    def resolve(self, name: str, frame: Frame) -> Any:
        if name == "null":
            return None
        if name == "true":
            return True
        if name == "false":
            return False
        if name == "self":
            if frame.self_obj is None:
                raise SimError("self in a static function")
            return frame.self_obj
        if name in frame.locals:
            return frame.locals[name]
        obj = frame.self_obj
        if obj is not None:
            if name in obj.members:
                var = _find_var(obj.script, name)
                if var is not None and var.getter and not frame.in_accessor_of(obj, var):
                    return self.call_method(obj, var.getter, [])
                return obj.members[name]
            if name in obj.signals:
                return obj.signals[name]
            fn = obj.script.find_func(name)
            if fn is not None:
                return self.bound(obj, name)
            native = obj.native
            if _native_attr(native, name):
                return getattr(native, name)
            if name.isupper() and hasattr(type(native), name):
                return getattr(type(native), name)  # an engine class's constant, named bare in its subclass
        found, value = frame.script.find_const(name)
        if found:
            return value
        s: Script | None = frame.script
        while s is not None:
            if name in s.static_vars:
                return self.static_var(s, name)
            if name in s.funcs and s.funcs[name].static:
                return GDCallable(lambda *a, _s=s: self.call_static(_s, name, list(a)), ("static", id(s), name))
            s = s.base
        if frame.script.class_name == name:
            return frame.script
        if name in self.class_names:
            return self.load("res://" + str(self.class_names[name].relative_to(self.project)))
        if name in self._globals:
            return self._globals[name]
        raise SimError(f'Identifier "{name}" not declared in the current scope.')

    def bound(self, obj: Instance, name: str) -> GDCallable:
        return GDCallable(lambda *a: self.call_method(obj, name, list(a)), ("method", id(obj), name), target=obj)

    # Attributes
    def eval_getattr_base(self, target: Tree, frame: Frame) -> Any:
        value = self.eval(target.children[0], frame)
        names = target.children[2::2]
        for name in names[:-1]:
            value = self.get_attr(value, str(name), frame)
        return value

    def get_attr(self, obj: Any, name: str, frame: Frame) -> Any:
        _not_freed(obj, f"Invalid get index '{name}'")
        if isinstance(obj, Instance):
            if name in obj.members:
                var = _find_var(obj.script, name)
                if var is not None and var.getter:
                    return self.call_method(obj, var.getter, [])
                return obj.members[name]
            if name in obj.signals:
                return obj.signals[name]
            if obj.script.find_func(name):
                return self.bound(obj, name)
            found, value = obj.script.find_const(name)
            if found:
                return value
            return self.get_attr(obj.native, name, frame)
        if isinstance(obj, Script):
            found, value = obj.find_const(name)
            if found:
                return value
            if name in obj.static_vars:
                return self.resolve(name, Frame(obj, None))
            raise SimError(f"{obj!r} has no constant or static member {name}")
        if isinstance(obj, NativeObject):
            if name in NATIVE_PROPERTIES:
                return getattr(obj, NATIVE_PROPERTIES[name][0])()
            if name in obj.native_signals:
                return obj.native_signals[name]
            if _native_attr(obj, name):
                return getattr(obj, name)
            if name.isupper() and hasattr(type(obj), name):
                return getattr(type(obj), name)
            raise SimError(f"{obj.CLASS} has no (modelled) property {name}")
        if isinstance(obj, NativeClass):
            model = NATIVE_MODELS.get(obj.name)
            if model is not None and name.isupper() and hasattr(model, name):
                return getattr(model, name)
            consts = NATIVE_CONSTANTS.get(obj.name, {})
            if name in consts:
                return consts[name]
            raise SimError(f"{obj.name} has no (modelled) constant {name}")
        if isinstance(obj, Singleton):
            if name in obj.members:
                return obj.members[name]
            raise SimError(f"{obj.name} has no (modelled) member {name}")
        if isinstance(obj, GDDict):
            if name in obj:
                return obj[name]
            raise SimError(f'Invalid access to property or key "{name}" on a Dictionary')
        if isinstance(obj, Value) and name in obj.__slots__:
            return getattr(obj, name)
        if obj is None:
            raise SimError(f'Invalid access to property or key "{name}" on a base object of type "Nil".')
        raise SimError(f"{TYPE_NAMES[gd_typeof(obj)]} has no (modelled) property {name}")

    def set_attr(self, obj: Any, name: str, value: Any, frame: Frame) -> None:
        if isinstance(obj, Instance):
            if name in obj.members:
                self.set_member(obj, name, value, frame)
                return
            if not self.set_static(obj.script, name, value):  # `self.x = v` for a static var: Godot 4.1+
                self.set_attr(obj.native, name, value, frame)
            return
        if isinstance(obj, Script):
            if not self.set_static(obj, name, value):  # `ClassName.x = v`
                raise SimError(f"{obj!r} has no constant or static member {name}")
            return
        if isinstance(obj, NativeObject):
            if not self.set_property(obj, name, value):
                raise SimError(f"{obj.CLASS} has no (modelled) property {name}")
            return
        if isinstance(obj, GDDict):
            obj[name] = value
            return
        raise SimError(f"cannot set {name} on a {TYPE_NAMES[gd_typeof(obj)]}")

    def set_static(self, script: Script, name: str, value: Any) -> bool:
        """Sets the static var `name` of `script` or a base, of its declared (or inferred) type; False if none has one."""
        s: Script | None = script
        while s is not None and name not in s.static_vars:
            s = s.base
        if s is None:
            return False
        self.static_var(s, name)  # its declared (or inferred) type, from its initializer
        s.static_vars[name] = coerce(value, s.static_types[name], self, s, f"static var {name}")
        return True

    def static_var(self, script: Script, name: str) -> Any:
        """`script`'s static var `name`, set from its initializer (or its type's default) when first used."""
        var = script.static_vars[name]
        if isinstance(var, VarDef):
            script.static_vars[name], script.static_types[name] = self.first_value(var, Frame(script, None))
        return script.static_vars[name]

    def first_value(self, var: VarDef, frame: Frame, initialize: bool = True) -> tuple[Any, str | None]:
        """A declared var's first value and its type: its initializer's (else its type's default; an @onready one
        waits for _ready), converted or refused as Godot does."""
        value = (self.eval_stored(var.init, frame) if var.init is not None and initialize
                 else default_for(var.type, self, frame.script))
        declared = type_of_value(value) if var.inferred else var.type
        return coerce(value, declared, self, frame.script, f"var {var.name}"), declared

    def set_member(self, obj: Instance, name: str, value: Any, frame: Frame) -> None:
        var = _find_var(obj.script, name)
        if var is not None and var.setter and not frame.in_accessor_of(obj, var):
            self.call_func(obj.script.find_func(var.setter), obj, [value])
            return
        obj.members[name] = coerce(value, obj.member_types.get(name), self, obj.script, f"member {name}")

    # Items
    def get_item(self, container: Any, key: Any) -> Any:
        t = gd_typeof(container)
        if t in (T["Array"], T["PackedStringArray"], T["PackedByteArray"], T["String"]):
            if gd_typeof(key) != T["int"]:
                raise SimError(f"Invalid index type {TYPE_NAMES[gd_typeof(key)]} for a {TYPE_NAMES[t]}")
            n = len(container)
            if not -n <= key < n:
                raise SimError(f"Out of bounds get index '{key}' (on base: '{TYPE_NAMES[t]}' of size {n})")
            return container[key]
        if t == T["Dictionary"]:
            if key not in container:
                raise SimError(f"Invalid access to key {gd_repr(key)} on a Dictionary")
            return container[key]
        raise SimError(f"Cannot index a {TYPE_NAMES[t]}")

    def set_item(self, container: Any, key: Any, value: Any, script: Script) -> None:
        t = gd_typeof(container)
        if t in (T["Array"], T["PackedStringArray"], T["PackedByteArray"]):
            n = len(container)
            if gd_typeof(key) != T["int"] or not -n <= key < n:
                raise SimError(f"Out of bounds set index '{key}' (size {n})")
            if t == T["PackedByteArray"]:
                if gd_typeof(value) != T["int"]:
                    raise SimError("PackedByteArray elements are ints")
                value &= 0xFF
            container[key] = _element(self, container, value, script)
            return
        if t == T["Dictionary"]:
            container[key] = value
            return
        raise SimError(f"Cannot set an index on a {TYPE_NAMES[t]}")

    # Assignment
    def eval_stored(self, node: Any, frame: Frame) -> Any:
        """eval() of a value to be stored, passed or returned: an array literal there takes the declared type."""
        value = self.eval(node, frame)
        if _is_array_literal(node):
            value.element = LITERAL
        return value

    def assign(self, target: Any, op: str, value_node: Any, frame: Frame) -> None:
        value = self.eval_stored(value_node, frame) if op == "=" else self.eval(value_node, frame)
        if op != "=":
            value = self.binary(self.eval(target, frame), op[:-1], value)
        self.store(target, value, frame)
        _stored(value)  # a literal put in a Dictionary or an engine property is an untyped Array

    def store(self, target: Any, value: Any, frame: Frame) -> None:
        """`target = value`: a component of a value (Vector2, Color) goes to its holder as a changed copy, as in Godot."""
        if isinstance(target, Token) and target.type == "NAME":
            name = str(target)
            if name in frame.locals:
                frame.locals[name] = coerce(value, frame.types.get(name), self, frame.script, f"var {name}")
            elif frame.self_obj is not None and name in frame.self_obj.members:
                self.set_member(frame.self_obj, name, value, frame)
            elif frame.self_obj is not None and _native_attr(frame.self_obj.native, name):
                setattr(frame.self_obj.native, name, value)
            elif not self.set_static(frame.script, name, value):
                raise SimError(f'Identifier "{name}" not declared (assignment)')
            return None
        if target.data == "getattr":
            base = self.eval_getattr_base(target, frame)
            if isinstance(base, Value):
                holder = target.children[0] if len(target.children) == 3 else Tree("getattr", target.children[:-2])
                self.store(holder, base.with_component(str(target.children[-1]), value), frame)
            else:
                self.set_attr(base, str(target.children[-1]), value, frame)
            return None
        if target.data == "subscr_expr":
            self.set_item(self.eval(target.children[0], frame), self.eval(target.children[1], frame), value, frame.script)
            return None
        raise SimError(f"gdsim: cannot assign to {target.data}")

    # Operators
    def compare(self, a: Any, op: str, b: Any) -> bool:
        if op == "==":
            return gd_eq(a, b)
        if op == "!=":
            return not gd_eq(a, b)
        ta, tb = gd_typeof(a), gd_typeof(b)
        numeric = (T["int"], T["float"])
        strings = (T["String"], T["StringName"])
        if not ((ta in numeric and tb in numeric) or (ta in strings and tb in strings)):
            raise SimError(f'Invalid operands "{TYPE_NAMES[ta]}" and "{TYPE_NAMES[tb]}" for "{op}" operator.')
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]

    def contains(self, container: Any, item: Any) -> bool:
        t = gd_typeof(container)
        if t in (T["Array"], T["PackedStringArray"]):
            return any(gd_typeof(x) == gd_typeof(item) and _same_value(x, item) or
                       (gd_typeof(x) in (T["String"], T["StringName"]) and gd_typeof(item) in (T["String"], T["StringName"])
                        and str(x) == str(item)) for x in container)
        if t == T["PackedByteArray"]:
            return gd_typeof(item) == T["int"] and item in container
        if t == T["Dictionary"]:
            return item in container
        if t == T["String"]:
            if gd_typeof(item) not in (T["String"], T["StringName"]):
                raise SimError("'in' on a String needs a String")
            return str(item) in container
        raise SimError(f"Invalid operand for 'in': {TYPE_NAMES[t]}")

    def binary(self, a: Any, op: str, b: Any) -> Any:
        ta, tb = gd_typeof(a), gd_typeof(b)
        ints = ta == T["int"] and tb == T["int"]
        numeric = ta in (T["int"], T["float"]) and tb in (T["int"], T["float"])
        if op == "%" and ta in (T["String"], T["StringName"]):
            return gd_format(str(a), b)
        if op == "+" and ta == tb and ta in (T["String"], T["Array"], T["PackedByteArray"], T["PackedStringArray"]):
            return type(a)(a + b) if ta != T["String"] else a + b
        if op == "+" and ta in (T["String"], T["StringName"]) and tb in (T["String"], T["StringName"]):
            return str(a) + str(b)
        if op in ("&", "|", "^", "<<", ">>"):
            if not ints:
                raise SimError(f'Invalid operands "{TYPE_NAMES[ta]}" and "{TYPE_NAMES[tb]}" for "{op}" operator.')
            if op in ("<<", ">>") and not 0 <= b < 64:
                raise SimError(f"shift by {b} is out of range")
            return i64({"&": a & b, "|": a | b, "^": a ^ b, "<<": a << b, ">>": a >> b}[op])
        if Vector2 in (type(a), type(b)) or Vector2i in (type(a), type(b)):
            return _vector_binary(a, op, b)
        if not numeric:
            raise SimError(f'Invalid operands "{TYPE_NAMES[ta]}" and "{TYPE_NAMES[tb]}" for "{op}" operator.')
        if op == "+":
            return i64(a + b) if ints else float(a) + float(b)
        if op == "-":
            return i64(a - b) if ints else float(a) - float(b)
        if op == "*":
            return i64(a * b) if ints else float(a) * float(b)
        if op == "/":
            if ints:
                if b == 0:
                    raise SimError("Division by zero error in operator '/'.")
                q = abs(a) // abs(b)
                return i64(q if (a >= 0) == (b >= 0) else -q)  # truncates toward zero, like C
            return float(a) / float(b) if b != 0 else (math.copysign(math.inf, a) if a else math.nan)
        if op == "%":
            if ints:
                if b == 0:
                    raise SimError("Modulo by zero error in operator '%'.")
                return i64(int(math.fmod(a, b)))
            return math.fmod(a, b)
        if op == "**":
            return i64(a ** b) if ints and b >= 0 else float(a) ** float(b)
        raise SimError(f"gdsim: operator {op} is not modelled")

    def is_type(self, v: Any, type_name: str, frame: Frame) -> bool:
        if type_name in TYPE_NAMES:
            return gd_typeof(v) == TYPE_NAMES.index(type_name)
        target = self.resolve(type_name, frame)
        if isinstance(target, Script):
            return isinstance(v, Instance) and v.script.is_a(target)
        if isinstance(target, NativeClass):
            return isinstance(v, (Instance, NativeObject)) and _native_is(self.native_of(v), target.name)
        raise SimError(f"gdsim: 'is {type_name}' is not modelled")

    # Calls
    def call_name(self, name: str, args: list, frame: Frame) -> Any:
        if name in ("preload", "load"):
            return self.load(args[0], frame.script.path)
        if name in BUILTIN_FUNCS:
            return BUILTIN_FUNCS[name](self, *args)
        obj = frame.self_obj
        fn = frame.script.find_func(name) if obj is None else obj.script.find_func(name)
        if fn is not None:
            if not fn.static and obj is None:
                raise SimError(f"cannot call non-static {name}() from a static function")
            return self.call_func(fn, obj if not fn.static else None, args)
        if name in frame.locals and isinstance(frame.locals[name], GDCallable):
            raise SimError(f"{name} is a Callable: use {name}.call()")
        if obj is not None:
            native = obj.native
            if hasattr(native, name) and not name.startswith("_") and callable(getattr(native, name)):
                return getattr(native, name)(*args)
        raise SimError(f'Function "{name}()" not found in base self.')

    def call_on(self, base: Any, name: str, args: list, frame: Frame) -> Any:
        _not_freed(base, f"Attempt to call function '{name}'")
        if isinstance(base, Instance):
            fn = base.script.find_func(name)
            if fn is not None:
                return self.call_func(fn, None if fn.static else base, args)
            if name == "get_class":
                return base.get_class()
            if name == "has_method":
                return base.script.find_func(str(args[0])) is not None or base.native.has_method(*args)
            return self.call_on(self.native_of(base), name, args, frame)
        if isinstance(base, Script):
            if name == "new":
                return self.new(base, *args)
            fn = base.find_func(name)
            if fn is None:
                raise SimError(f"{base!r} has no function {name}()")
            if not fn.static:
                raise SimError(f"{name}() is not static: call it on an instance")
            return self.call_func(fn, None, args)
        if isinstance(base, NativeObject):
            if name.startswith("_") or not hasattr(base, name) or not callable(getattr(base, name)):
                raise SimError(f"{base.CLASS} has no (modelled) method {name}()")
            return getattr(base, name)(*args)
        if isinstance(base, NativeClass):
            if name == "new":
                return self.make_native(base.name, None)
            static = NATIVE_STATICS.get((base.name, name))
            if static is None:
                raise SimError(f"{base.name} has no (modelled) static method {name}()")
            return static(self, *args)
        if isinstance(base, Singleton):
            fn = base.members.get(name)
            if not callable(fn):
                raise SimError(f"{base.name} has no (modelled) method {name}()")
            return fn(*args)
        if isinstance(base, GDSignal):
            if name not in ("connect", "disconnect", "is_connected", "emit"):
                raise SimError(f"Signal has no method {name}()")
            return getattr(base, name)(*args)
        if isinstance(base, GDCallable):
            if name == "call":
                return base.call(*args)
            if name == "bind":
                return GDCallable(base.fn, base.key, base.bound + tuple(args), base.target)
            raise SimError(f"Callable has no (modelled) method {name}()")
        t = gd_typeof(base)
        if t in (T["Vector2"], T["Vector2i"]):
            return _vector_method(base, name, args)
        if t == T["Rect2"]:
            if name != "has_point":
                raise SimError(f"gdsim: Rect2 has no (modelled) method {name}()")
            return base.has_point(*args)
        if t in (T["String"], T["StringName"]):
            return _string_method(str(base), name, args)
        if t == T["PackedByteArray"]:
            return _bytes_method(self, base, name, args)
        if t in (T["Array"], T["PackedStringArray"]):
            return _array_method(self, base, name, args, frame.script)
        if t == T["Dictionary"]:
            return _dict_method(base, name, args)
        raise SimError(f"Cannot call method {name}() on a {TYPE_NAMES[t]}")


def _vector_binary(a: Any, op: str, b: Any) -> Any:
    """Vector2 (op) Vector2 / number, componentwise as in Godot; Vector2i only with Vector2i or int."""
    numeric = (int, float)
    kind = type(a) if isinstance(a, (Vector2, Vector2i)) else type(b)
    ax, ay = (a.x, a.y) if isinstance(a, (Vector2, Vector2i)) else (a, a)
    bx, by = (b.x, b.y) if isinstance(b, (Vector2, Vector2i)) else (b, b)
    scalar_ok = isinstance(a, numeric) or isinstance(b, numeric)
    same = type(a) is type(b)
    # Godot defines vector (+ - * /) same vector, vector (* /) number and number * vector; nothing else.
    allowed = same or (scalar_ok and op in ("*", "/") and (isinstance(b, numeric) or op == "*"))
    if op not in ("+", "-", "*", "/") or not allowed or isinstance(a, bool) or isinstance(b, bool):
        raise SimError(f'Invalid operands "{TYPE_NAMES[gd_typeof(a)]}" and "{TYPE_NAMES[gd_typeof(b)]}" for "{op}" '
                       "operator.")
    if kind is Vector2i and any(isinstance(v, float) for v in (ax, ay, bx, by)):
        kind = Vector2  # Vector2i * float gives a Vector2 in Godot
    if op == "/" and (bx == 0 or by == 0) and kind is Vector2i:
        raise SimError("Division by zero error in operator '/'.")

    def one(x: Any, y: Any) -> Any:
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if kind is Vector2i:
            q = abs(x) // abs(y)
            return q if (x >= 0) == (y >= 0) else -q
        return x / y if y != 0 else (math.copysign(math.inf, x) if x else math.nan)

    if kind is Vector2:
        return Vector2(one(float(ax), float(bx)), one(float(ay), float(by)))
    return Vector2i(one(ax, bx), one(ay, by))


def _native_is(model: NativeObject, class_name: str) -> bool:
    name = model.CLASS
    while name:
        if name == class_name:
            return True
        name = NATIVE_PARENTS.get(name, "")
    return False


def _is_trailing(node: Any) -> bool:
    return isinstance(node, Tree) and node.data == "trailing_comma"


def _is_array_literal(node: Any) -> bool:
    while isinstance(node, Tree) and node.data in ("expr", "par_expr") and len(node.children) == 1:
        node = node.children[0]
    return isinstance(node, Tree) and node.data == "array"


def _stored(value: Any) -> Any:
    """`value` now held somewhere: an array literal that reached no Array[T] is an untyped Array from here on."""
    if isinstance(value, GDArray) and value.element == LITERAL:
        value.element = None
    return value


def _all_stored(result: Any, args: list) -> Any:
    """A call's `result`, once its literal arguments are settled: one an engine method kept is an untyped Array."""
    for arg in args:
        _stored(arg)
    return result


def _find_var(script: Script, name: str) -> VarDef | None:
    for var in script.all_vars():
        if var.name == name:
            return var
    return None


# --- Types ---------------------------------------------------------------------------------

BUILTIN_DEFAULTS: dict[str, Callable[[], Any]] = {
    "int": lambda: 0, "float": lambda: 0.0, "bool": lambda: False, "String": lambda: "",
    "StringName": lambda: StringName(""), "Array": GDArray, "Dictionary": GDDict, "PackedByteArray": PackedByteArray,
    "PackedStringArray": PackedStringArray, "Vector2": Vector2, "Vector2i": Vector2i,
}


def type_of_value(value: Any) -> str | None:
    t = gd_typeof(value)
    return None if t in (T["Nil"], T["Object"], T["Callable"], T["Signal"]) else TYPE_NAMES[t]


def default_for(type_name: str | None, sim: Sim, script: Script) -> Any:
    if type_name is not None and type_name.startswith("Array["):
        typed = GDArray()
        typed.element = type_name[len("Array["):-1]
        return typed
    if type_name in BUILTIN_DEFAULTS:
        return BUILTIN_DEFAULTS[type_name]()
    return None


def coerce(value: Any, type_name: str | None, sim: Sim, script: Script, where: str, cast: bool = False) -> Any:
    """Typed assignment: ints/floats convert (Godot warns), other mismatches are errors."""
    literal = isinstance(value, GDArray) and value.element == LITERAL
    _stored(value)
    if type_name in (None, "Variant", "<inferred>"):
        return value
    t = gd_typeof(value)
    if type_name == "float" and t == T["int"]:
        return float(value)
    if type_name == "int" and t == T["float"]:
        return int(value)
    if type_name.startswith("Array[") and t != T["Array"]:
        if cast and value is None:
            return None
        raise SimError(f"Trying to assign a value of type '{TYPE_NAMES[t]}' to {where} of type '{type_name}'.")
    if type_name.startswith("Array["):
        element = type_name[len("Array["):-1]
        if value.element == element:
            return value  # the same array, shared
        if not (literal or cast):
            held = "Array" if value.element is None else f"Array[{value.element}]"
            raise SimError(f'Trying to assign an array of type "{held}" to {where} of type "{type_name}".')
        typed = GDArray(coerce(v, element, sim, script, f"an element of {where}") for v in value)
        typed.element = element
        return typed
    if type_name in GLOBAL_ENUM_TYPES:
        if t != T["int"]:
            raise SimError(f"{where}: expected an int ({type_name}), got {TYPE_NAMES[t]}")
        return value
    if type_name in TYPE_NAMES:
        if t == TYPE_NAMES.index(type_name):
            return value
        if type_name == "String" and t == T["StringName"]:
            return str(value)
        if type_name == "StringName" and t == T["String"]:
            return StringName(value)
        raise SimError(f"Trying to assign a value of type '{TYPE_NAMES[t]}' to {where} of type '{type_name}'.")
    # enums declared in scripts are ints
    found, enum_value = script.find_const(type_name) if "." not in type_name else (False, None)
    if found and isinstance(enum_value, GDDict):
        if t != T["int"]:
            raise SimError(f"{where}: expected an int for enum {type_name}")
        return value
    if "." in type_name:
        head, _, tail = type_name.partition(".")
        found, owner = script.find_const(head)
        if found and isinstance(owner, Script):
            found2, enum_value = owner.find_const(tail)
            if found2 and isinstance(enum_value, GDDict):
                return value
    if value is None:
        return None
    target = _lookup_type(sim, script, type_name)
    if isinstance(target, Script):
        if isinstance(value, Instance) and value.script.is_a(target):
            return value
    elif isinstance(target, NativeClass):
        if isinstance(value, (Instance, NativeObject)) and _native_is(sim.native_of(value), target.name):
            return value
    else:
        raise SimError(f"gdsim: type {type_name} is not modelled")
    if cast:
        return None
    raise SimError(f"Trying to assign a value of type '{value!r}' to {where} of type '{type_name}'.")


def _lookup_type(sim: Sim, script: Script, type_name: str) -> Any:
    found, value = script.find_const(type_name)
    if found:
        return value
    if script.class_name == type_name:
        return script
    if type_name in sim.class_names:
        return sim.load("res://" + str(sim.class_names[type_name].relative_to(sim.project)))
    if type_name in NATIVE_MODELS or type_name in NATIVE_PARENTS:
        return NativeClass(sim, type_name)
    return None


# --- Built-in functions, singletons, constants ---------------------------------------------


def gd_format(fmt: str, args: Any) -> str:
    values = list(args) if gd_typeof(args) == T["Array"] else [args]
    specs = re.findall(r"%[-+ 0#]*\d*(?:\.\d+)?[sdifxXc%]", fmt)
    needed = sum(1 for s in specs if s != "%%")
    if needed != len(values):
        raise SimError(f"String formatting error: {needed} placeholders, {len(values)} values ({fmt!r})")
    out, it = [], iter(values)

    def sub(m: re.Match) -> str:
        spec = m.group(0)
        if spec == "%%":
            return "%"
        v = next(it)
        if spec[-1] == "s":
            return (spec[:-1] + "s") % gd_str(v)
        if spec[-1] in "dixXc" and gd_typeof(v) not in (T["int"], T["float"]):
            raise SimError(f"String formatting error: {spec} needs a number, got {TYPE_NAMES[gd_typeof(v)]}")
        if spec[-1] == "i":
            spec = spec[:-1] + "d"
        return spec % (int(v) if spec[-1] in "dxXc" else v)

    out.append(re.sub(r"%[-+ 0#]*\d*(?:\.\d+)?[sdifxXc%]", sub, fmt))
    return "".join(out)


def _to_int(sim: Sim, v: Any = 0) -> int:
    t = gd_typeof(v)
    if t == T["float"]:
        if math.isnan(v) or math.isinf(v):
            raise SimError("int() of a non-finite float")
        if not -(2.0 ** 63) <= v < 2.0 ** 63:
            raise SimError(f"int() of {v} overflows a 64-bit int")
        return int(v)
    if t in (T["int"], T["bool"]):
        return int(v)
    if t == T["String"]:
        return _string_method(v, "to_int", [])
    raise SimError(f"int() of a {TYPE_NAMES[t]}")


def _to_float(sim: Sim, v: Any = 0.0) -> float:
    t = gd_typeof(v)
    if t in (T["int"], T["float"], T["bool"]):
        return float(v)
    if t == T["String"]:
        return _string_method(v, "to_float", [])
    raise SimError(f"float() of a {TYPE_NAMES[t]}")


def _to_string(sim: Sim, v: Any = "") -> str:
    t = gd_typeof(v)
    if t in (T["String"], T["StringName"]):
        return str(v)
    return gd_str(v)


def _array_ctor(sim: Sim, v: Any = None) -> GDArray:
    if v is None:
        return GDArray()
    if gd_typeof(v) in (T["Array"], T["PackedByteArray"], T["PackedStringArray"]):
        return GDArray(list(v))
    raise SimError(f"Array() from a {TYPE_NAMES[gd_typeof(v)]}")


def _bytes_ctor(sim: Sim, v: Any = None) -> PackedByteArray:
    if v is None:
        return PackedByteArray()
    if gd_typeof(v) in (T["Array"], T["PackedByteArray"]):
        if any(gd_typeof(x) != T["int"] for x in v):
            raise SimError("PackedByteArray() from an Array with non-int items")
        return PackedByteArray(x & 0xFF for x in v)
    raise SimError(f"PackedByteArray() from a {TYPE_NAMES[gd_typeof(v)]}")


def _psa_ctor(sim: Sim, v: Any = None) -> PackedStringArray:
    if v is None:
        return PackedStringArray()
    return PackedStringArray(str(x) for x in v)


def _fposmod(sim: Sim, x: float, y: float) -> float:
    """fposmod: like fmod, but the result has the sign of y (a positive modulo for tiling)."""
    r = math.fmod(float(x), float(y))
    if (r < 0 < y) or (r > 0 > y):
        r += y
    return float(r)


def _range(sim: Sim, *args: int) -> GDArray:
    if any(gd_typeof(a) != T["int"] for a in args):
        raise SimError("range() takes ints")
    return GDArray(range(*args))


def _push(kind: str) -> Callable[..., None]:
    def push(sim: Sim, *args: Any) -> None:
        (sim.errors if kind == "error" else sim.warnings).append("".join(gd_str(a) for a in args))

    return push


def _print(stream: str) -> Callable[..., None]:
    def do(sim: Sim, *args: Any) -> None:
        sim.output.append(("" if stream == "out" else "ERR: ") + "".join(gd_str(a) for a in args))

    return do


BUILTIN_FUNCS: dict[str, Callable[..., Any]] = {
    "typeof": lambda sim, v: gd_typeof(v),
    "type_string": lambda sim, t: TYPE_NAMES[t] if 0 <= t < len(TYPE_NAMES) else "<invalid type>",
    "str": lambda sim, *a: "".join(gd_str(x) for x in a),
    "char": lambda sim, code: chr(code),
    "int": _to_int, "float": _to_float, "String": _to_string, "Array": _array_ctor,
    "PackedByteArray": _bytes_ctor, "PackedStringArray": _psa_ctor,
    "Dictionary": lambda sim, v=None: GDDict(v or {}),
    "StringName": lambda sim, v="": StringName(v),
    "Vector2": lambda sim, x=0.0, y=0.0: Vector2(x.x, x.y) if isinstance(x, (Vector2, Vector2i)) else Vector2(x, y),
    "Rect2": lambda sim, *a: Rect2(*a),
    "Vector2i": lambda sim, x=0, y=0: Vector2i(x.x, x.y) if isinstance(x, (Vector2, Vector2i)) else Vector2i(x, y),
    "Color": lambda sim, *a: Color(*a),
    "range": _range, "print": _print("out"), "printerr": _print("err"),
    "push_error": _push("error"), "push_warning": _push("warning"),
    "minf": lambda sim, a, b: float(min(a, b)), "maxf": lambda sim, a, b: float(max(a, b)),
    "mini": lambda sim, a, b: min(a, b), "maxi": lambda sim, a, b: max(a, b),
    "absf": lambda sim, a: abs(float(a)), "absi": lambda sim, a: abs(a), "abs": lambda sim, a: abs(a),
    "floorf": lambda sim, a: float(math.floor(a)), "floor": lambda sim, a: float(math.floor(a)),
    "floori": lambda sim, a: i64(math.floor(a)), "roundi": lambda sim, a: i64(int(_round(a))),
    "clampi": lambda sim, v, lo, hi: max(lo, min(v, hi)), "clampf": lambda sim, v, lo, hi: float(max(lo, min(v, hi))),
    "fposmod": _fposmod,
    "is_instance_valid": lambda sim, o: o is not None and not getattr(sim.native_of(o), "freed", False),
}

PROPERTY_USAGE = {"PROPERTY_USAGE_NONE": 0, "PROPERTY_USAGE_STORAGE": 2, "PROPERTY_USAGE_EDITOR": 4,
                  "PROPERTY_USAGE_DEFAULT": 6}

NATIVE_CONSTANTS: dict[str, dict[str, Any]] = {
    "CanvasItem": {"TEXTURE_FILTER_NEAREST": 1, "TEXTURE_FILTER_LINEAR": 2},
    "Color": {"BLACK": Color(0, 0, 0), "WHITE": Color(1, 1, 1), "ORANGE": Color(1, 0.65, 0), "GREEN": Color(0, 1, 0)},
    "Node": {"INTERNAL_MODE_DISABLED": 0, "INTERNAL_MODE_FRONT": 1, "INTERNAL_MODE_BACK": 2},
}

NATIVE_STATICS: dict[tuple[str, str], Callable[..., Any]] = {
    ("Image", "create_from_data"): _image_create_from_data,
    ("Image", "create"): _image_create,
    ("ImageTexture", "create_from_image"): _texture_create_from_image,
}


def _json_parse(text: str) -> Any:
    """JSON.parse_string as Godot 4 does it: every number becomes a float; null on error."""
    try:
        value = json.loads(text, parse_int=float, parse_constant=float)
    except ValueError:
        return None
    return to_gd(value)


def _file_access(sim: Sim) -> Singleton:
    def path_of(p: str) -> Path:
        return sim.res_path(p) if p.startswith("res://") else Path(p)

    return Singleton("FileAccess", {
        "file_exists": lambda p: path_of(p).is_file(),
        "get_file_as_string": lambda p: path_of(p).read_text(encoding="utf-8") if path_of(p).is_file() else "",
        "get_file_as_bytes": lambda p: PackedByteArray(path_of(p).read_bytes()) if path_of(p).is_file()
        else PackedByteArray(),
    })


def _globals(sim: Sim) -> dict[str, Any]:
    g: dict[str, Any] = {}
    g.update(TYPE_CONSTANTS)
    g.update(ERRORS)
    g.update({"PI": math.pi, "TAU": math.tau, "INF": math.inf, "NAN": math.nan})
    g.update(PROPERTY_USAGE)
    g.update({"MOUSE_BUTTON_NONE": 0, "MOUSE_BUTTON_LEFT": 1, "MOUSE_BUTTON_RIGHT": 2, "MOUSE_BUTTON_MIDDLE": 3})
    for name in list(NATIVE_MODELS) + ["CanvasItem", "Color"]:
        g[name] = NativeClass(sim, name)
    g["Time"] = Singleton("Time", {
        "get_ticks_msec": lambda: int(sim.now_ms()),
        "get_ticks_usec": lambda: int(sim.now_ms() * 1000.0),
    })
    g["Engine"] = Singleton("Engine", {"is_editor_hint": lambda: sim.editor_hint})
    g["TextServer"] = Singleton("TextServer", {"AUTOWRAP_WORD_SMART": 3, "OVERRUN_TRIM_ELLIPSIS": 3})
    g["JSON"] = Singleton("JSON", {"parse_string": _json_parse})
    g["FileAccess"] = _file_access(sim)
    g["InputMap"] = Singleton("InputMap", {"has_action": lambda a: a in sim.input_actions})

    def pressed(a: str) -> bool:
        if a not in sim.input_actions:
            raise SimError(f'The InputMap action "{a}" doesn\'t exist.')
        return a in sim.pressed

    def just(a: str) -> bool:
        return pressed(a) and a in sim.just_pressed

    g["Input"] = Singleton("Input", {"is_action_pressed": pressed, "is_action_just_pressed": just})
    return g


Sim._make_globals = lambda self: _globals(self)  # type: ignore[attr-defined]


# --- Helpers for tests ---------------------------------------------------------------------


def press(sim: Sim, action: str) -> None:
    """Presses an Input Map action (held until release)."""
    if action not in sim.pressed:
        sim.just_pressed.add(action)
    sim.pressed.add(action)


def click(button: Any) -> bool:
    """A mouse click on a Button (model or node): button_down, pressed, button_up; ignored when disabled."""
    model = button.native if isinstance(button, Instance) else button
    if model.disabled:
        return False
    for signal in ("button_down", "pressed", "button_up"):
        model.native_signals[signal].emit()
    return True


def release(sim: Sim, action: str) -> None:
    sim.pressed.discard(action)


def submit(line_edit: Any) -> None:
    """Enter in a focused LineEdit (model or node), as Godot 4.4's does: editing, it emits text_submitted and then
    stops editing unless keep_editing_on_text_submit, keeping the focus; not editing, it starts editing."""
    model = line_edit.native if isinstance(line_edit, Instance) else line_edit
    if not model.focused:
        raise SimError("gdsim: Enter reaches only the focused LineEdit: grab_focus() first")
    if not model.editing:
        model.edit()
        return
    model.native_signals["text_submitted"].emit(model.text)
    if not model.keep_editing_on_text_submit:
        model.unedit()


_TSCN_VALUE = re.compile(r'^(\w+)\((.*)\)$')


def _tscn_value(sim: Sim, text: str, resources: dict[str, str]) -> Any:
    """A property value as a .tscn writes it; NodePath("x") comes back as ("NodePath", "x")."""
    text = text.strip()
    if text.startswith('"'):
        return json.loads(text)
    if text == "null":
        return None
    if text in ("true", "false"):
        return text == "true"
    m = _TSCN_VALUE.match(text)
    if m is None:
        return float(text) if re.search(r"[.e]", text) else int(text)
    kind, args = m.group(1), [a.strip() for a in m.group(2).split(",")] if m.group(2) else []
    if kind == "NodePath":
        return ("NodePath", json.loads(args[0]))
    if kind == "ExtResource":
        return sim.load(resources[json.loads(args[0])])
    numbers = [float(a) for a in args]
    if kind == "Color":
        return Color(*numbers)
    if kind in ("Vector2", "Vector2i"):
        return Vector2(*numbers) if kind == "Vector2" else Vector2i(*map(int, numbers))
    raise SimError(f"gdsim: .tscn value {text} is not modelled")


def instance_scene(sim: Sim, res: str) -> Any:
    """PackedScene.instantiate() of a .tscn file (see instance_scene_text)."""
    return instance_scene_text(sim, sim.res_path(res).read_text(encoding="utf-8"))


def instance_scene_text(sim: Sim, text: str) -> Any:
    """SceneState::instantiate of a .tscn's text, in Godot's order: per node, the engine properties written before
    `script` are set, then the script is attached (members take their defaults, _init runs), then the rest go through
    Object.set (setters, _set); NodePaths to nodes are set once all nodes exist. Keys gdsim does not model (layout,
    theme) are ignored, as Godot ignores a property that does not exist."""
    resources: dict[str, str] = {}
    sections: list[tuple[str, dict, list]] = []
    for line in text.splitlines():
        head = re.match(r"^\[(\w+) (.*)\]$", line)
        prop = re.match(r"^(\w[\w/]*) = (.*)$", line)
        if head is not None:
            attrs = {k: json.loads(v) if v.startswith('"') else v
                     for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', head.group(2))}
            if head.group(1) == "ext_resource":
                resources[attrs["id"]] = attrs["path"]
            sections.append((head.group(1), attrs, []))
        elif prop is not None and sections:
            sections[-1][2].append((prop.group(1), _tscn_value(sim, prop.group(2), resources)))
    nodes: dict[str, Any] = {}
    pending: list[tuple[Any, str, str]] = []  # (node, property, NodePath) resolved once all nodes exist
    for kind, attrs, props in sections:
        if kind != "node":
            continue
        names = [name for name, _ in props]
        at = names.index("script") if "script" in names else len(props)
        script = props[at][1] if at < len(props) else None
        node = Instance(sim, script) if isinstance(script, Script) else sim.make_native(attrs["type"], None)
        for name, value in props[:at]:
            if not isinstance(value, tuple):
                sim.set_property(sim.native_of(node), name, value)
        if isinstance(node, Instance):
            sim.init_instance(node, [])
        for name, value in props[at + 1:]:
            if isinstance(value, tuple):
                pending.append((node, name, value[1]))
            else:
                sim.set_property(node, name, value)
        sim.native_of(node).name = attrs["name"]
        parent = attrs.get("parent")
        if parent is not None:
            sim.native_of(nodes[parent]).add_child(node)
        nodes["." if parent is None else (attrs["name"] if parent == "." else f"{parent}/{attrs['name']}")] = node
    for owner, name, path in pending:
        sim.set_property(owner, name, sim.native_of(owner).get_node(path))
    return nodes["."]


def pack_scene(sim: Sim, root: Any) -> str:
    """PackedScene.pack() then a .tscn save of `root` and its descendants (internal children are not saved), as
    SceneState::_parse_node writes them: an engine property only where it differs from the class default (a fresh
    object's value), then `script`, then exported members that differ from the script's default and the
    PROPERTY_USAGE_STORAGE entries of _get_property_list(), always (they have no default)."""
    scripts: dict[str, str] = {}  # res path -> ext_resource id
    out: list[str] = []

    def node_path(frm: Any, to: Any) -> str:
        up, node = [], frm
        while not _is_ancestor_or_self(sim, node, to):
            up.append("..")
            node = sim.native_of(node).parent
        down = []
        while to is not node:
            down.append(sim.native_of(to).name)
            to = sim.native_of(to).parent
        return "/".join(up + down[::-1]) or "."

    def write(node: Any, parent_path: str | None) -> None:
        model = sim.native_of(node)
        where = "" if parent_path is None else f' parent="{parent_path}"'
        out.extend(["", f'[node name="{model.name}" type="{model.CLASS}"{where}]'])
        fresh = sim.make_native(model.CLASS, None)
        lines = [(key, getattr(model, key)) for key in type(model).PROPS
                 if key not in ("size", "position") and _differs(getattr(model, key), getattr(fresh, key))]
        if isinstance(node, Instance):
            res = "res://" + node.script.path.relative_to(sim.project).as_posix()
            scripts.setdefault(res, f"{len(scripts) + 1}_script")
            lines.append(("script", ExtResource(scripts[res])))
            for var in node.script.all_vars():
                if any(a.startswith("export") for a in var.annotations):
                    default = (sim.eval(var.init, Frame(node.script, None)) if var.init is not None
                               else default_for(var.type, sim, node.script))
                    if _differs(node.members[var.name], default):
                        lines.append((var.name, node.members[var.name]))
            if node.script.find_func("_get_property_list"):
                for info in sim.call_method(node, "_get_property_list", []):
                    if info.get("usage", PROPERTY_USAGE["PROPERTY_USAGE_DEFAULT"]) & PROPERTY_USAGE[
                            "PROPERTY_USAGE_STORAGE"]:
                        lines.append((str(info["name"]), sim.get_property(node, str(info["name"]))))
        out.extend(f"{key} = {_tscn_text(sim, value, node, node_path)}" for key, value in lines)
        for child in model.children:
            if not sim.native_of(child).internal:
                write(child, node_path(root, node))

    write(root, None)
    head = [f"[gd_scene load_steps={len(scripts) + 1} format=3]", ""]
    head += [f'[ext_resource type="Script" path="{res}" id="{rid}"]' for res, rid in scripts.items()]
    return "\n".join(head + out) + "\n"


def _differs(a: Any, b: Any) -> bool:
    """PropertyUtils::is_property_value_different: values of unrelated types differ."""
    try:
        return not gd_eq(a, b)
    except SimError:
        return True


class ExtResource(str):
    """The id of a resource a .tscn being written refers to."""


def _is_ancestor_or_self(sim: Sim, node: Any, of: Any) -> bool:
    while of is not None and of is not node:
        of = sim.native_of(of).parent
    return of is node


def _tscn_text(sim: Sim, value: Any, node: Any, node_path: Callable[[Any, Any], str]) -> str:
    """A property value as a .tscn writes it (what _tscn_value reads back)."""
    if isinstance(value, ExtResource):
        return f'ExtResource("{value}")'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Color):
        return f"Color({value.r!r}, {value.g!r}, {value.b!r}, {value.a!r})"
    if isinstance(value, (Vector2, Vector2i)):
        return f"{type(value).__name__}({value.x!r}, {value.y!r})"
    if isinstance(value, (Instance, NodeModel)):
        return f'NodePath("{node_path(node, value)}")'
    raise SimError(f"gdsim: writing a {TYPE_NAMES[gd_typeof(value)]} into a .tscn is not modelled")


def input_actions_from_project(project_godot: Path) -> set[str]:
    """Action names of the [input] section of project.godot."""
    actions, in_input = set(), False
    for line in project_godot.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            in_input = line.strip() == "[input]"
        elif in_input and re.match(r"^\w+=\{", line):
            actions.add(line.split("=", 1)[0])
    return actions
