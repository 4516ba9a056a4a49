"""gdcheck: static checks gdparse/gdlint do not make, over every .gd file of the addon and demo.

Why: without a Godot binary, mistakes Godot reports at load time would only surface for users.
This catches the common ones: identifiers that are not declared anywhere (a typo, an API that
does not exist), members used on engine classes that are not in the Godot 4.2 API list below,
members used on our own classes that they do not declare, and `:=` with a value whose type
Godot cannot infer (a parse error in Godot 4). ENGINE_API lists only what the addon uses; a
name missing from it fails the check until someone verifies it in the Godot 4.2 class
reference and adds it. It is a check of names, not of Godot's full type system.
"""

from __future__ import annotations

import re
from pathlib import Path

from gdtoolkit.parser import parser as _gd_parser
from lark import Token, Tree

# class -> (parent, members used by the addon), from the Godot 4.2 class reference.
ENGINE_API: dict[str, tuple[str | None, str]] = {
    "Object": (None, "connect disconnect is_connected emit_signal get_class is_class has_method call call_deferred "
                     "set get free get_instance_id set_meta get_meta NOTIFICATION_PREDELETE"),
    "RefCounted": ("Object", ""),
    "Resource": ("RefCounted", "resource_path duplicate"),
    "Node": ("Object", "name owner add_child remove_child get_child get_children get_child_count get_parent "
                       "get_node get_node_or_null queue_free set_process is_processing is_inside_tree get_tree "
                       "get_viewport process_mode ready tree_entered tree_exiting INTERNAL_MODE_DISABLED "
                       "INTERNAL_MODE_FRONT INTERNAL_MODE_BACK PROCESS_MODE_INHERIT PROCESS_MODE_PAUSABLE "
                       "PROCESS_MODE_WHEN_PAUSED PROCESS_MODE_ALWAYS PROCESS_MODE_DISABLED NOTIFICATION_PAUSED "
                       "NOTIFICATION_UNPAUSED NOTIFICATION_DISABLED NOTIFICATION_ENABLED"),
    "CanvasItem": ("Node", "visible modulate texture_filter show hide queue_redraw TEXTURE_FILTER_NEAREST "
                           "TEXTURE_FILTER_LINEAR"),
    "Control": ("CanvasItem", "position size custom_minimum_size size_flags_horizontal size_flags_vertical "
                              "tooltip_text focus_mode mouse_filter grab_focus release_focus has_focus "
                              "focus_entered focus_exited add_theme_color_override add_theme_constant_override "
                              "gui_input accept_event get_local_mouse_position "
                              "SIZE_FILL SIZE_EXPAND SIZE_EXPAND_FILL FOCUS_NONE MOUSE_FILTER_STOP MOUSE_FILTER_PASS "
                              "MOUSE_FILTER_IGNORE"),
    "Container": ("Control", ""),
    "BoxContainer": ("Container", "alignment"),
    "HBoxContainer": ("BoxContainer", ""),
    "VBoxContainer": ("BoxContainer", ""),
    "MarginContainer": ("Container", ""),
    "GridContainer": ("Container", "columns"),
    "TextureRect": ("Control", "texture expand_mode stretch_mode flip_h flip_v EXPAND_KEEP_SIZE EXPAND_IGNORE_SIZE "
                               "STRETCH_SCALE STRETCH_TILE STRETCH_KEEP STRETCH_KEEP_CENTERED STRETCH_KEEP_ASPECT "
                               "STRETCH_KEEP_ASPECT_CENTERED STRETCH_KEEP_ASPECT_COVERED"),
    "Label": ("Control", "text autowrap_mode horizontal_alignment text_overrun_behavior"),
    "LineEdit": ("Control", "text placeholder_text editable text_submitted text_changed clear"),
    "TextEdit": ("Control", "text placeholder_text editable text_changed clear"),
    "BaseButton": ("Control", "pressed button_down button_up toggled disabled toggle_mode button_pressed"),
    "Button": ("BaseButton", "text"),
    "CheckBox": ("Button", ""),
    "OptionButton": ("Button", "add_item clear selected get_item_text item_count select item_selected"),
    "Range": ("Control", "min_value max_value step value value_changed rounded allow_greater allow_lesser "
                         "set_value_no_signal"),
    "SpinBox": ("Range", "suffix prefix editable"),
    "Viewport": ("Node", "get_texture transparent_bg gui_get_focus_owner"),
    "SubViewport": ("Viewport", "size render_target_update_mode UPDATE_ONCE UPDATE_ALWAYS"),
    "Window": ("Viewport", "title popup_centered popup_centered_ratio"),
    "AcceptDialog": ("Window", ""),
    "ConfirmationDialog": ("AcceptDialog", ""),
    "FileDialog": ("ConfirmationDialog", "file_mode access filters file_selected FILE_MODE_OPEN_FILE "
                                         "ACCESS_FILESYSTEM"),
    "Texture2D": ("Resource", "get_image get_width get_height get_size"),
    "ViewportTexture": ("Texture2D", ""),
    "ImageTexture": ("Texture2D", "create_from_image update set_image"),
    "Image": ("Resource", "create create_from_data set_data get_width get_height get_size get_format is_empty "
                          "get_data convert resize is_compressed decompress set_pixel fill load_png_from_buffer "
                          "load_jpg_from_buffer save_png_to_buffer FORMAT_L8 FORMAT_LA8 FORMAT_RGB8 FORMAT_RGBA8 "
                          "INTERPOLATE_NEAREST INTERPOLATE_BILINEAR"),
    "StreamPeer": ("RefCounted", "big_endian put_u8 put_8 put_u16 put_16 put_u32 put_32 put_u64 put_64 put_float "
                                 "put_double put_data put_partial_data get_u8 get_8 get_u16 get_16 get_u32 get_32 "
                                 "get_u64 get_64 get_float get_double get_data get_partial_data get_available_bytes"),
    "StreamPeerBuffer": ("StreamPeer", "data_array seek get_position get_size clear resize duplicate"),
    "StreamPeerTCP": ("StreamPeer", "connect_to_host disconnect_from_host poll get_status set_no_delay "
                                    "STATUS_NONE STATUS_CONNECTING STATUS_CONNECTED STATUS_ERROR"),
    "EditorPlugin": ("Node", "add_control_to_dock remove_control_from_docks add_custom_type remove_custom_type "
                             "DOCK_SLOT_RIGHT_UL"),
    "MainLoop": ("Object", ""),
    "SceneTree": ("MainLoop", "root quit process_frame create_timer paused"),
    "InputEvent": ("Resource", "is_action_pressed is_action_released is_pressed is_echo"),
    "InputEventFromWindow": ("InputEvent", "window_id"),
    "InputEventWithModifiers": ("InputEventFromWindow", "shift_pressed ctrl_pressed alt_pressed meta_pressed"),
    "InputEventMouse": ("InputEventWithModifiers", "position global_position button_mask"),
    "InputEventMouseButton": ("InputEventMouse", "button_index pressed double_click factor"),
}
SINGLETONS: dict[str, str] = {
    "Time": "get_ticks_msec get_ticks_usec",
    "Engine": "is_editor_hint",
    "JSON": "parse_string stringify",
    "FileAccess": "file_exists get_file_as_string get_file_as_bytes",
    "OS": "get_cmdline_user_args",
    "ProjectSettings": "globalize_path get_global_class_list",
    "Input": "is_action_pressed is_action_just_pressed",
    "InputMap": "has_action",
    "RenderingServer": "frame_post_draw",
    "EditorInterface": "get_editor_viewport_2d",
    "TextServer": "AUTOWRAP_WORD_SMART OVERRUN_TRIM_ELLIPSIS",
    "Color": "BLACK WHITE ORANGE GREEN",
}
GLOBAL_FUNCS = set(
    "preload load print printerr push_error push_warning str int float bool typeof type_string char range minf maxf "
    "mini maxi absf absi abs floorf floor floori roundi clampi clampf fposmod is_instance_valid len Array "
    "Dictionary String StringName "
    "PackedByteArray PackedStringArray Vector2 Vector2i Rect2 Color Callable".split()
)
BUILTIN_TYPES = set(
    "int float bool String StringName Array Dictionary Variant void PackedByteArray PackedStringArray "
    "PackedInt32Array PackedInt64Array PackedFloat32Array PackedFloat64Array Vector2 Vector2i Rect2 Color Callable "
    "Signal Object Error NodePath".split()
)
GLOBAL_CONSTS = {"OK", "FAILED", "PI", "TAU", "INF", "NAN", "true", "false", "null", "self", "super"}
GLOBAL_CONST_RE = re.compile(r"^(TYPE_[A-Z0-9_]+|ERR_[A-Z_]+|MOUSE_BUTTON_(?:NONE|LEFT|RIGHT|MIDDLE)"
                             r"|PROPERTY_USAGE_(?:NONE|STORAGE|EDITOR|DEFAULT))$")
# Methods of Variant types whose result Godot cannot type statically (Variant).
VARIANT_RESULT_METHODS = {"get", "pop_front", "pop_back", "front", "back", "pick_random", "call", "callv", "min",
                          "max", "get_meta", "parse_string"}


def engine_members(cls: str) -> set[str]:
    out: set[str] = set()
    name: str | None = cls
    while name is not None:
        parent, members = ENGINE_API[name]
        out |= set(members.split())
        name = parent
    return out


class ScriptInfo:
    """What one .gd file declares (for name checks of code that uses it)."""

    def __init__(self, path: Path, tree: Tree):
        self.path, self.tree = path, tree
        self.class_name: str | None = None
        self.extends: str | None = None
        self.members: dict[str, str | None] = {}  # name -> declared type (None: untyped/Variant)
        self.funcs: dict[str, str | None] = {}  # name -> return type
        self.consts: dict[str, object] = {}  # name -> Path of a preloaded script, or None
        self.enums: dict[str, set[str]] = {}
        self.signals: set[str] = set()
        for node in tree.children:
            if not isinstance(node, Tree):
                continue
            if node.data == "classname_stmt":
                self.class_name = str(node.children[0])
            elif node.data == "extends_stmt":
                t = node.children[0]
                self.extends = str(t) if isinstance(t, Token) else str(t.children[0])[1:-1]
            elif node.data == "signal_stmt":
                self.signals.add(str(node.children[0]))
            elif node.data == "enum_stmt":
                named = node.children[0]
                self.enums[str(named.children[0])] = {
                    str(e.children[0]) for e in named.children[1].children if isinstance(e, Tree)}
            elif node.data == "const_stmt":
                inner = node.children[0]
                value = inner.children[-1]
                pre = _preload_target(value)
                self.consts[str(inner.children[0])] = (path.parent / pre).resolve() if pre and not pre.startswith(
                    "res://") else pre
            elif node.data in ("class_var_stmt", "static_class_var_stmt"):
                inner = node.children[0] if node.data == "class_var_stmt" else node.children[0].children[0]
                self.members[str(inner.children[0])] = _declared_type(inner)
            elif node.data in ("func_def", "static_func_def"):
                fdef = node if node.data == "func_def" else node.children[0]
                header = fdef.children[0]
                self.funcs[str(header.children[0])] = str(header.children[2]) if len(header.children) > 2 else None


def _preload_target(expr: Tree) -> str | None:
    node = expr.children[0] if isinstance(expr, Tree) and expr.data == "expr" else expr
    if isinstance(node, Tree) and node.data == "standalone_call" and str(node.children[0]) in ("preload", "load"):
        arg = node.children[1]
        if isinstance(arg, Tree) and arg.data == "string":
            return str(arg.children[0])[1:-1]
    return None


def _declared_type(var: Tree) -> str | None:
    kind = var.data
    if kind.endswith("_typed") or kind.endswith("_typed_assgnd"):
        return str(var.children[1])
    if kind.endswith("_inf"):
        return _literal_type(var.children[-1])
    return None


def _literal_type(expr: Tree) -> str | None:
    """The obvious type of an initializer (X.new(), literals, constructors); None when unknown."""
    node = expr.children[0] if isinstance(expr, Tree) and expr.data == "expr" else expr
    if isinstance(node, Token):
        if node.type == "NUMBER":
            return "float" if re.search(r"[.eE]", str(node)) else "int"
        if node.type in ("HEX", "BIN"):
            return "int"
        return None
    if node.data == "string":
        return "String"
    if node.data == "array":
        return "Array"
    if node.data == "dict":
        return "Dictionary"
    if node.data == "standalone_call" and str(node.children[0]) in BUILTIN_TYPES:
        return str(node.children[0])
    if node.data == "getattr_call":
        attrs = node.children[0].children
        if len(attrs) == 3 and str(attrs[2]) == "new" and isinstance(attrs[0], Token):
            return str(attrs[0])
    return None


class Checker:
    """Runs the checks over a project directory; `problems` lists what is wrong, with file:line."""

    def __init__(self, project: Path):
        self.project = project.resolve()
        self.infos: dict[Path, ScriptInfo] = {}
        self.class_paths: dict[str, Path] = {}
        self.problems: list[str] = []
        for path in sorted(self.project.rglob("*.gd")):
            info = ScriptInfo(path, _gd_parser.parse(path.read_text(encoding="utf-8"), gather_metadata=True))
            self.infos[path.resolve()] = info
            if info.class_name:
                self.class_paths[info.class_name] = path.resolve()

    def run(self) -> list[str]:
        for info in self.infos.values():
            self._check_script(info)
        return self.problems

    # -- symbol lookup
    def _script_of(self, ref: object) -> ScriptInfo | None:
        if isinstance(ref, Path):
            return self.infos.get(ref.resolve())
        if isinstance(ref, str) and ref.startswith("res://"):
            return self.infos.get((self.project / ref[6:]).resolve())
        if isinstance(ref, str) and ref in self.class_paths:
            return self.infos[self.class_paths[ref]]
        return None

    def _chain(self, info: ScriptInfo) -> tuple[list[ScriptInfo], str]:
        """Script chain (self first) and the engine class at its root."""
        chain, cur = [info], info
        while cur.extends is not None:
            base = self._script_of(cur.extends if not cur.extends.endswith(".gd") else
                                   (cur.path.parent / cur.extends).resolve())
            if base is None:
                return chain, cur.extends
            chain.append(base)
            cur = base
        return chain, "RefCounted"

    def _class_members(self, info: ScriptInfo) -> set[str]:
        chain, native = self._chain(info)
        names: set[str] = set()
        for s in chain:
            names |= set(s.members) | set(s.funcs) | set(s.consts) | set(s.enums) | s.signals
        if native not in ENGINE_API:
            self._problem(info.path, 1, f"extends {native}, which is not in the checked engine API list")
            return names
        return names | engine_members(native)

    def _type_members(self, type_name: str | None, info: ScriptInfo) -> set[str] | None:
        """Members of a declared type, or None when the type is not one we can check."""
        if type_name is None:
            return None
        if type_name in ENGINE_API:
            return engine_members(type_name)
        target = self._script_of(info.consts.get(type_name)) or self._script_of(type_name)
        if target is not None:
            return self._class_members(target)
        return None

    def _type_known(self, type_name: str, info: ScriptInfo, local_consts: set[str]) -> bool:
        head = type_name.split("[")[0].split(".")[0]
        return (head in BUILTIN_TYPES or head in ENGINE_API or head in self.class_paths or head in info.consts
                or head in info.enums or head in local_consts or head in SINGLETONS)

    # -- walking
    def _check_script(self, info: ScriptInfo) -> None:
        self.info = info
        self.class_names = self._class_members(info)
        for node in info.tree.children:
            if not isinstance(node, Tree):
                continue
            if node.data in ("func_def", "static_func_def"):
                fdef = node if node.data == "func_def" else node.children[0]
                self._check_function(fdef)
            elif node.data in ("class_var_stmt", "static_class_var_stmt", "const_stmt"):
                inner = node.children[0]
                if node.data == "static_class_var_stmt":
                    inner = inner.children[0]
                scope = {"__types__": {}}
                for ch in inner.children[1:]:
                    if isinstance(ch, Token) and ch.type == "TYPE_HINT":
                        self._check_type(str(ch), ch, scope)
                    elif isinstance(ch, Tree) and ch.data == "expr":
                        self._check_inference(inner, ch, scope)
                        self._visit(ch, scope)

    def _check_function(self, fdef: Tree) -> None:
        header = fdef.children[0]
        scope: dict = {"__types__": {}}
        for arg in header.children[1].children:
            if isinstance(arg, Tree):
                self._declare_param(arg, scope)
        if len(header.children) > 2:
            self._check_type(str(header.children[2]), header.children[2], scope)
        for st in fdef.children[1:]:
            self._visit(st, scope)

    def _declare_param(self, arg: Tree, scope: dict) -> None:
        name = str(arg.children[0])
        scope[name] = True
        if arg.data == "func_arg_typed":
            scope["__types__"][name] = str(arg.children[1])
            self._check_type(str(arg.children[1]), arg.children[1], scope)
        for ch in arg.children[1:]:
            if isinstance(ch, Tree):
                self._visit(ch, scope)

    def _check_type(self, type_name: str, tok: object, scope: dict) -> None:
        local_consts = {k for k, v in scope.items() if v == "const"}
        if not self._type_known(type_name, self.info, local_consts):
            self._problem(self.info.path, _line(tok), f"unknown type {type_name}")

    def _visit(self, node: object, scope: dict) -> None:
        if isinstance(node, Token):
            if node.type == "NAME":
                self._check_name(str(node), node, scope)
            return
        kind = node.data
        ch = node.children
        if kind == "func_var_stmt":
            var = ch[0]
            name = str(var.children[0])
            for sub in var.children[1:]:
                if isinstance(sub, Token) and sub.type == "TYPE_HINT":
                    self._check_type(str(sub), sub, scope)
                elif isinstance(sub, Tree):
                    if var.data == "func_var_inf":
                        self._check_inference(var, sub, scope)
                    self._visit(sub, scope)
            scope[name] = True
            declared = _declared_type(var)
            if declared is None and var.data == "func_var_inf":
                declared = self._infer(var.children[-1], scope)
            scope["__types__"][name] = declared
        elif kind == "const_stmt":
            inner = ch[0]
            self._visit(inner.children[-1], scope)
            scope[str(inner.children[0])] = "const"
        elif kind in ("for_stmt", "for_stmt_typed"):
            name = str(ch[0])
            if kind == "for_stmt_typed":
                self._check_type(str(ch[1]), ch[1], scope)
            self._visit(ch[2 if kind == "for_stmt_typed" else 1], scope)
            scope[name] = True
            scope["__types__"][name] = str(ch[1]) if kind == "for_stmt_typed" else "<loop>"
            for st in ch[3 if kind == "for_stmt_typed" else 2:]:
                self._visit(st, scope)
        elif kind == "lambda":
            inner = dict(scope)
            inner["__types__"] = dict(scope["__types__"])
            header = ch[0]
            for arg in header.children[0].children:
                if isinstance(arg, Tree):
                    self._declare_param(arg, inner)
            for st in ch[1:]:
                self._visit(st, inner)
        elif kind == "standalone_call":
            name = str(ch[0])
            if not (name in scope or name in self.class_names or name in GLOBAL_FUNCS):
                self._problem(self.info.path, _line(ch[0]), f"unknown function {name}()")
            for a in ch[1:]:
                self._visit(a, scope)
        elif kind in ("getattr", "getattr_call"):
            target = ch[0] if kind == "getattr_call" else node
            base = target.children[0]
            self._visit(base, scope)
            first_attr = target.children[2]
            members = self._members_of(base, scope)
            if members is not None and str(first_attr) not in members:
                self._problem(self.info.path, _line(first_attr),
                              f"{_describe(base)} has no member {first_attr} (checked API list)")
            if kind == "getattr_call":
                for a in ch[1:]:
                    self._visit(a, scope)
        elif kind == "eq_dict_element":
            self._visit(ch[1], scope)
        elif kind in ("type_test", "asless_type_test", "actual_type_cast"):
            self._visit(ch[0], scope)
            for sub in ch[1:]:
                if isinstance(sub, Token) and sub.type == "TYPE_HINT":
                    self._check_type(str(sub), sub, scope)
        elif kind in ("string", "rstring", "string_name", "node_path", "get_node", "unique_node_path",
                      "wildcard_pattern", "annotation", "trailing_comma"):
            return
        elif kind == "match_branch":
            self._check_pattern(ch[0], scope)
            for st in ch[1:]:
                self._visit(st, scope)
        else:
            for sub in ch:
                self._visit(sub, scope)

    def _check_pattern(self, node: object, scope: dict) -> None:
        """Names in a match pattern; `Class.CONSTANT` patterns are checked like attribute access."""
        if isinstance(node, Token):
            if node.type == "NAME":
                self._check_name(str(node), node, scope)
            return
        if node.data == "attr_pattern":
            names = [c for c in node.children if isinstance(c, Token) and c.type == "NAME"]
            self._check_name(str(names[0]), names[0], scope)
            members = self._members_of(names[0], scope)
            if members is not None and str(names[1]) not in members:
                self._problem(self.info.path, _line(names[1]), f"{names[0]} has no member {names[1]} (checked API list)")
            return
        if node.data == "var_capture_pattern":
            scope[str(node.children[0])] = True
            return
        for sub in node.children:
            self._check_pattern(sub, scope)

    def _check_name(self, name: str, tok: Token, scope: dict) -> None:
        known = (name in scope or name in self.class_names or name in GLOBAL_CONSTS or GLOBAL_CONST_RE.match(name)
                 or name in GLOBAL_FUNCS or name in ENGINE_API or name in SINGLETONS or name in self.class_paths
                 or name in BUILTIN_TYPES)
        if not known:
            self._problem(self.info.path, _line(tok), f'identifier "{name}" is not declared')

    def _members_of(self, base: object, scope: dict) -> set[str] | None:
        if not (isinstance(base, Token) and base.type == "NAME"):
            return None
        name = str(base)
        if name in SINGLETONS and name not in scope:
            return set(SINGLETONS[name].split())
        if name in ENGINE_API and name not in scope:
            return engine_members(name) | {"new"}
        if name in self.info.enums:
            return self.info.enums[name]
        if name in self.info.consts and name not in scope:
            target = self._script_of(self.info.consts[name])
            if target is not None:
                chain, _ = self._chain(target)
                static = {"new"}
                for s in chain:
                    static |= set(s.funcs) | set(s.consts) | set(s.enums)
                return static
            return None
        declared = scope["__types__"].get(name) if name in scope else self.info.members.get(name)
        if name == "self":
            return self.class_names
        return self._type_members(declared, self.info)

    def _infer(self, expr: Tree, scope: dict) -> str | None:
        return _literal_type(expr)

    def _check_inference(self, var: Tree, expr: Tree, scope: dict) -> None:
        """`:=` needs a value Godot can type: not an index, a Variant-returning call or an untyped name."""
        if not var.data.endswith("_inf"):
            return
        node = expr.children[0] if isinstance(expr, Tree) and expr.data == "expr" else expr
        reason = None
        if isinstance(node, Tree) and node.data == "subscr_expr":
            reason = "an index into an Array/Dictionary is a Variant"
        elif isinstance(node, Tree) and node.data == "getattr_call":
            method = str(node.children[0].children[-1])
            if method in VARIANT_RESULT_METHODS:
                reason = f".{method}() returns a Variant"
        elif isinstance(node, Tree) and node.data == "standalone_call":
            fname = str(node.children[0])
            if fname in self.info.funcs and self.info.funcs[fname] in (None, "Variant"):
                reason = f"{fname}() has no declared return type"
        elif isinstance(node, Token) and node.type == "NAME":
            name = str(node)
            declared = scope["__types__"].get(name, "?") if name in scope else self.info.members.get(name, "?")
            if declared in (None, "Variant", "<loop>"):
                reason = f"{name} has no static type"
        if reason:
            self._problem(self.info.path, _line(var.children[0]),
                          f"`var {var.children[0]} :=` cannot infer a type: {reason}; declare the type")

    def _problem(self, path: Path, line: object, message: str) -> None:
        rel = path.relative_to(self.project) if path.is_relative_to(self.project) else path
        self.problems.append(f"{rel}:{line}: {message}")


def _line(tok: object) -> object:
    return getattr(tok, "line", None) or getattr(getattr(tok, "meta", None), "line", "?")


def _describe(base: object) -> str:
    return str(base) if isinstance(base, Token) else "expression"


def check_project(project: Path | str) -> list[str]:
    return Checker(Path(project)).run()
