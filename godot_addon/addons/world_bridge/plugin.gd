@tool
extends EditorPlugin
## Registers the WorldBridge nodes and adds the WorldBridge dock.
##
## The nodes are class_name scripts with @icon, so Godot lists them in the Create Node dialog by
## itself and they keep working in exported games, where editor plugins do not run. Only when a
## class is missing from the global class list (a stale class cache) does this plugin register it
## as a custom type, so the dialog never shows a node twice.

const Dock := preload("editor/dock.gd")
const ROOT := "res://addons/world_bridge/"
## Node class -> [base class, script, icon].
const NODES := {
	"WorldBridgeClient":
	["Node", ROOT + "nodes/world_bridge_client.gd", ROOT + "icons/world_bridge_client.svg"],
	"WorldView": ["TextureRect", ROOT + "nodes/world_view.gd", ROOT + "icons/world_view.svg"],
	"WorldInput": ["Node", ROOT + "nodes/world_input.gd", ROOT + "icons/world_input.svg"],
}

var _dock: Control = null
var _custom_types := PackedStringArray()


func _enter_tree() -> void:
	_register_nodes()
	_dock = Dock.new()
	_dock.name = "WorldBridge"
	add_control_to_dock(DOCK_SLOT_RIGHT_UL, _dock)


func _exit_tree() -> void:
	if _dock != null:
		remove_control_from_docks(_dock)
		_dock.queue_free()
		_dock = null
	for type_name in _custom_types:
		remove_custom_type(type_name)
	_custom_types.clear()


func _register_nodes() -> void:
	var registered := {}
	for entry in ProjectSettings.get_global_class_list():
		registered[entry["class"]] = entry["path"]
	for type_name in NODES:
		if registered.has(type_name):
			continue
		var spec: Array = NODES[type_name]
		add_custom_type(type_name, spec[0], load(spec[1]), load(spec[2]))
		_custom_types.append(type_name)
