@icon("res://addons/world_bridge/icons/world_input.svg")
class_name WorldInput
extends Node
## Maps Input Map actions (keyboard, gamepad) to WorldBridge actions, named or latent.
##
## Realtime sessions get an `input` only when the resolved action changes: the host keeps the
## last input in force, so a held key keeps walking without flooding the socket.
## Step sessions get one `input` per press (each input produces exactly one frame).
## While a LineEdit or TextEdit has the keyboard it sends nothing but the idle action, once: the
## keys typed there are text, not play (a LineEdit focused but no longer editing does not count).

## Emitted whenever an action is sent (name or latent id).
signal action_sent(action: Variant)

## The bindings a new WorldInput has: the sandbox game's named actions on the arrows, WASD,
## Space and the gamepad, and latent actions 0-7 on keys 1-8. One the backend cannot play is
## skipped without a warning (the user did not choose it); `bindings` entries that differ warn.
const DEFAULT_BINDINGS := {
	"wb_right+wb_jump": "right_jump",
	"wb_left+wb_jump": "left_jump",
	"wb_right": "right",
	"wb_left": "left",
	"wb_jump": "jump",
	"wb_down": "down",
	"wb_latent_1": 0,
	"wb_latent_2": 1,
	"wb_latent_3": 2,
	"wb_latent_4": 3,
	"wb_latent_5": 4,
	"wb_latent_6": 5,
	"wb_latent_7": 6,
	"wb_latent_8": 7,
}
## The default idle action: on a backend without it latent 0 is sent, without a warning.
const DEFAULT_IDLE_ACTION := "noop"

## The client to drive.
@export var client: WorldBridgeClient
## Input Map action(s) -> WorldBridge action: a String (a name from session.action_names or the
## client's action_map) or an int (a latent action id). Join Input actions with "+" for chords.
## The first entry whose Input actions are all pressed wins: list chords before single keys.
## Assigning a new Dictionary in game (a key-remapping menu) takes effect at once; after a change
## in place (bindings[key] = ...) call rebuild().
@export var bindings := DEFAULT_BINDINGS.duplicate():
	set = set_bindings
## What to send when nothing is pressed (realtime mode): a name, or a latent id as digits ("0").
## One the backend lacks is warned about once a session (the default "noop" is not), and latent
## id 0 is sent instead.
@export var idle_action := DEFAULT_IDLE_ACTION:
	set = set_idle_action
## False sends nothing but the idle action once (realtime), so a key held when it turned false
## (e.g. a menu opened) does not keep the world moving: the host keeps the last input in force.
@export var enabled := true

## The action in force on the host (realtime), null before the first send.
var current_action: Variant = null
var missing_actions := PackedStringArray()
## Bound world actions the current session's backend lacks (warned once a session, unless
## DEFAULT_BINDINGS bound them; their keys send nothing).
var unknown_actions := PackedStringArray()

var _checked_session := ""
# The last keys note printed (check_bindings).
var _told_keys := ""

# [[PackedStringArray input actions, Variant world action, bool from DEFAULT_BINDINGS], ...]
var _chords: Array = []


func _ready() -> void:
	# Inherit would follow the client's (or any) Always parent and steer through a pause, with no
	# NOTIFICATION_PAUSED; keys pause with the game. Only an Always owner is overridden: Pausable
	# ignores the parent, so a Disabled or When Paused subtree (a cutscene, a menu) must keep ruling.
	# A process_mode set in the inspector is kept.
	if process_mode == Node.PROCESS_MODE_INHERIT and _inherited_mode() == Node.PROCESS_MODE_ALWAYS:
		process_mode = Node.PROCESS_MODE_PAUSABLE
	rebuild()


## The process_mode an Inherit node follows: the first ancestor's that is not Inherit.
func _inherited_mode() -> int:
	var node := get_parent()
	while node != null and node.process_mode == Node.PROCESS_MODE_INHERIT:
		node = node.get_parent()
	return Node.PROCESS_MODE_PAUSABLE if node == null else node.process_mode


func set_bindings(value: Dictionary) -> void:
	bindings = value
	if is_inside_tree():
		rebuild()


func set_idle_action(value: String) -> void:
	idle_action = value
	_checked_session = ""  # the session checks the new idle action again


## Re-reads `bindings`, skipping (and naming once) Input actions missing from the Input Map; the
## session checks them again.
func rebuild() -> void:
	_checked_session = ""
	_chords.clear()
	missing_actions = PackedStringArray()
	for key in bindings:
		var names := String(key).split("+", false)
		var known := true
		for input_name in names:
			if not InputMap.has_action(input_name):
				known = false
				if not input_name in missing_actions:
					missing_actions.append(input_name)
		if known and not names.is_empty():
			_chords.append([names, bindings[key], _is_default(key, bindings[key])])
	if not missing_actions.is_empty():
		push_warning(
			(
				"WorldInput: no Input Map action named %s: add them in Project Settings > Input Map"
				% ", ".join(missing_actions)
			)
		)


## The bound world actions `session` cannot take (names it lacks, latent ids past its count);
## the idle action is checked too. Only the user's own bindings and idle action are warned about:
## a default one the backend lacks is no mistake of theirs. On a world model whose default named
## bindings play nothing, it prints once what the keys play instead (again only if that changes).
func check_bindings(session: Dictionary) -> PackedStringArray:
	var unknown := PackedStringArray()
	var warned := PackedStringArray()
	var names: Variant = session.get("action_names", [])
	var count := int(session.get("num_latent_actions", 0))
	var silent_names := false
	var latent_keys := 0
	for chord in _chords:
		var label := _unknown_label(chord[1], names, count)
		if label == "":
			if chord[2] and typeof(chord[1]) == TYPE_INT:
				latent_keys += 1
			continue
		if not label in unknown:
			unknown.append(label)
		if not chord[2] and not label in warned:
			warned.append(label)
		silent_names = silent_names or (chord[2] and typeof(chord[1]) == TYPE_STRING)
	var why := "WorldInput: %s not among this backend's actions (%s; latent ids 0-%d)"
	if not warned.is_empty():
		push_warning(
			(
				(why % [", ".join(warned), str(names), count - 1])
				+ ": their keys send nothing; edit the bindings"
			)
		)
	var idle := _unknown_label(_idle_value(), names, count)
	if idle != "":
		if idle_action != DEFAULT_IDLE_ACTION:
			push_warning(
				(
					(why % ["idle action " + idle, str(names), count - 1])
					+ ": latent action 0 is sent instead; edit idle_action"
				)
			)
		unknown.append("idle " + idle)
	if silent_names and latent_keys > 0 and str(session.get("backend_kind")) == "world_model":
		var note := _latent_keys_note(latent_keys, count)
		if note != _told_keys:  # once, not every session: again only when what the keys play changes
			_told_keys = note
			print(note)
	return unknown


## What the default keys play on a world model, whose latent actions have no names.
static func _latent_keys_note(keys: int, count: int) -> String:
	var which := "the world model's %d" % count
	if keys < count:
		which = "%d of the world model's %d" % [keys, count]
	return (
		"WorldInput: keys 1–%d play %s latent actions; the arrow keys play none of them"
		% [keys, which]
	)


## Whether `bindings[key] = action` is DEFAULT_BINDINGS' own entry.
static func _is_default(key: Variant, action: Variant) -> bool:
	var default: Variant = DEFAULT_BINDINGS.get(key)
	return typeof(default) == typeof(action) and default == action


func _unknown_label(action: Variant, names: Variant, count: int) -> String:
	if typeof(action) == TYPE_INT:
		return "" if action >= 0 and action < count else "latent %d" % action
	var known: bool = (
		typeof(names) != TYPE_ARRAY
		or String(action) in names
		or (is_instance_valid(client) and client.action_map.has(String(action)))
		or (is_instance_valid(client) and client.action_map_sent.has(String(action)))
	)
	return "" if known else String(action)


func _sendable(action: Variant) -> bool:
	var label := "latent %d" % action if typeof(action) == TYPE_INT else String(action)
	return not label in unknown_actions


## The world action for the keys held now (the idle action when none is held).
func resolve_action() -> Variant:
	for chord in _chords:
		if not _sendable(chord[1]):
			continue
		var all_held := true
		for input_name in chord[0]:
			if not Input.is_action_pressed(input_name):
				all_held = false
				break
		if all_held:
			return chord[1]
	return _idle()


## The idle action; latent id 0 when the backend lacks it (check_bindings warned).
func _idle() -> Variant:
	var idle: Variant = _idle_value()
	var label := "latent %d" % idle if typeof(idle) == TYPE_INT else String(idle)
	return 0 if "idle " + label in unknown_actions else idle


func _idle_value() -> Variant:
	return int(idle_action) if idle_action.is_valid_int() else idle_action


func _process(_delta: float) -> void:
	_send_held(enabled and not _typing())


## Whether a text field (LineEdit, TextEdit) has the keyboard: Input still reports the keys typed
## into it as pressed, and a "d" typed into a chat box must not walk the world. A Godot 4.4+
## LineEdit keeps the focus after Enter but stops editing: the keys are the game's again (call():
## Godot 4.2's LineEdit has no is_editing to name).
func _typing() -> bool:
	var focus: Control = get_viewport().gui_get_focus_owner()
	if focus is LineEdit:
		return not focus.has_method("is_editing") or focus.call("is_editing")
	return focus is TextEdit


## A paused tree or a Disabled process_mode stops _process while the host keeps the last input in
## force: send the idle action now (realtime), as `enabled = false` does; _process sends the keys
## held when processing resumes.
func _notification(what: int) -> void:
	if what == NOTIFICATION_PAUSED or what == NOTIFICATION_DISABLED:
		_send_held(false)


## Sends the resolved action (the idle one when `active` is false) if it changed (realtime),
## or a new press (step, when `active`).
func _send_held(active: bool) -> void:
	if not is_instance_valid(client) or not client.is_in_session():  # a freed client is not null
		current_action = null
		return
	var session_id := str(client.session.get("session_id", ""))
	if session_id != _checked_session:
		_checked_session = session_id
		unknown_actions = check_bindings(client.session)
		current_action = null  # a new session starts idle: send the held keys to it again
	var mode: Variant = client.session.get("mode")
	if typeof(mode) == TYPE_STRING and mode == "step":
		if not active:
			return
		var pressed: Variant = _just_pressed_action()
		if pressed != null and client.send_input(pressed):
			action_sent.emit(pressed)
		return
	var action: Variant = resolve_action() if active else _idle()
	if typeof(action) == typeof(current_action) and action == current_action:
		return
	if client.send_input(action):
		current_action = action
		action_sent.emit(action)


func _just_pressed_action() -> Variant:
	for chord in _chords:
		if not _sendable(chord[1]):
			continue
		var all_held := true
		var any_new := false
		for input_name in chord[0]:
			all_held = all_held and Input.is_action_pressed(input_name)
			any_new = any_new or Input.is_action_just_pressed(input_name)
		if all_held and any_new:
			return chord[1]
	return null
