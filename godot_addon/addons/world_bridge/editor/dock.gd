@tool
extends VBoxContainer
## The WorldBridge editor dock: connect to a host, prompt by text or image (or the 2D view),
## preview the world, press actions, fire events, record; all without running the game.

const Client := preload("../nodes/world_bridge_client.gd")
const View := preload("../nodes/world_view.gd")
const BACKENDS := ["default", "sandbox", "world_model"]

var client: Client
var view: View

var _endpoint: LineEdit
var _connect_button: Button
var _status: Label
var _backend: OptionButton
var _mode: OptionButton
var _prompt: TextEdit
var _actions: GridContainer
var _events: OptionButton
var _event_text: LineEdit
var _record_button: Button
var _file_dialog: FileDialog


func _ready() -> void:
	name = "WorldBridge"
	custom_minimum_size = Vector2(240, 0)
	client = Client.new()
	client.name = "DockClient"
	client.editor_preview = true
	client.auto_connect = false
	client.auto_start = false
	add_child(client)
	client.status_changed.connect(_on_status_changed)
	client.session_started.connect(_on_session_started)
	client.session_ended.connect(_on_session_ended)
	client.recording_changed.connect(_on_recording_changed)
	client.error_received.connect(_on_error)
	client.event_applied.connect(_on_event_applied)
	_build()


func _exit_tree() -> void:
	if client != null:
		client.disconnect_from_host()


func _build() -> void:
	var row := _row()
	_endpoint = LineEdit.new()
	_endpoint.text = client.endpoint
	_endpoint.size_flags_horizontal = Control.SIZE_EXPAND_FILL
	_endpoint.tooltip_text = "Where `worldbridge serve` listens, e.g. tcp://127.0.0.1:5555"
	row.add_child(_endpoint)
	_connect_button = _button(row, "Connect", _on_connect_pressed)
	_status = Label.new()
	_status.text = "offline"
	_status.autowrap_mode = TextServer.AUTOWRAP_WORD_SMART
	add_child(_status)

	row = _row()
	_backend = _options(
		row, BACKENDS, "Backend: the sandbox is a test backend, not the world model"
	)
	_mode = _options(row, ["realtime", "step"], "Realtime ticks at the target fps; step waits")
	_prompt = TextEdit.new()
	_prompt.placeholder_text = "Text prompt, e.g. a snowy cave with lava"
	_prompt.custom_minimum_size = Vector2(0, 60)
	add_child(_prompt)
	row = _row()
	_button(row, "Start", _on_start_pressed)
	_button(row, "Image...", _on_image_pressed)
	_button(row, "Sketch from 2D view", _on_sketch_pressed)

	view = View.new()
	view.custom_minimum_size = Vector2(0, 200)
	view.size_flags_vertical = Control.SIZE_EXPAND_FILL
	add_child(view)
	view.client = client

	_actions = GridContainer.new()
	_actions.columns = 4
	add_child(_actions)

	row = _row()
	_events = _options(row, [], "Typed events this backend understands")
	_event_text = LineEdit.new()
	_event_text.placeholder_text = "or free text: make it snow"
	_event_text.size_flags_horizontal = Control.SIZE_EXPAND_FILL
	row.add_child(_event_text)
	_button(row, "Fire", _on_fire_pressed)

	row = _row()
	_record_button = _button(row, "Record", func() -> void: client.toggle_recording())
	_button(row, "Reset", func() -> void: client.reset_world())
	_button(row, "Status", func() -> void: client.request_status())

	_file_dialog = FileDialog.new()
	_file_dialog.file_mode = FileDialog.FILE_MODE_OPEN_FILE
	_file_dialog.access = FileDialog.ACCESS_FILESYSTEM
	_file_dialog.filters = PackedStringArray(["*.png, *.jpg, *.jpeg ; PNG or JPEG images"])
	_file_dialog.file_selected.connect(_on_image_selected)
	add_child(_file_dialog)


func _row() -> HBoxContainer:
	var row := HBoxContainer.new()
	add_child(row)
	return row


func _button(parent: Control, text: String, callback: Callable) -> Button:
	var button := Button.new()
	button.text = text
	button.pressed.connect(callback)
	parent.add_child(button)
	return button


func _options(parent: Control, items: Array, tooltip: String) -> OptionButton:
	var options := OptionButton.new()
	for item in items:
		options.add_item(str(item))
	options.tooltip_text = tooltip
	parent.add_child(options)
	return options


func _on_connect_pressed() -> void:
	if client.link == Client.Link.OFFLINE:
		client.connect_to_host(_endpoint.text.strip_edges())
	else:
		client.disconnect_from_host()


func _on_start_pressed() -> void:
	client.backend = BACKENDS[_backend.selected]
	client.mode = _mode.get_item_text(_mode.selected)
	client.text_prompt = _prompt.text.strip_edges()
	if client.link == Client.Link.OFFLINE:
		client.auto_start = true
		client.connect_to_host(_endpoint.text.strip_edges())
	else:
		client.start_session()


func _on_image_pressed() -> void:
	_file_dialog.popup_centered_ratio(0.6)


func _on_image_selected(path: String) -> void:
	var data := FileAccess.get_file_as_bytes(path)
	if data.is_empty():
		_status.text = "could not read %s" % path
		return
	_prompt_with({"image": data})


## The 2D editor view as a sketch: block a level out with ColorRects, then press this.
func _on_sketch_pressed() -> void:
	var png := Client.capture_viewport_png(EditorInterface.get_editor_viewport_2d())
	if png.is_empty():
		_status.text = "the 2D view has not rendered yet: open the 2D workspace first"
		return
	_prompt_with({"sketch": png})


func _prompt_with(prompt: Dictionary) -> void:
	if client.is_in_session():
		client.reset_world(prompt)
	else:
		client.backend = BACKENDS[_backend.selected]
		client.mode = _mode.get_item_text(_mode.selected)
		client.text_prompt = _prompt.text.strip_edges()
		client.start_session(prompt)
		if client.link == Client.Link.OFFLINE:
			client.connect_to_host(_endpoint.text.strip_edges())


func _on_fire_pressed() -> void:
	var event_type := ""
	if _events.item_count > 0 and _events.selected >= 0:
		event_type = _events.get_item_text(_events.selected)
	var text := _event_text.text.strip_edges()
	if text != "":
		event_type = ""  # free text wins when both are given
	client.fire_event(event_type, text)


func _on_status_changed(text: String) -> void:
	_status.text = text
	_connect_button.text = "Connect" if client.link == Client.Link.OFFLINE else "Disconnect"


func _on_session_started(session: Dictionary) -> void:
	for child in _actions.get_children():
		child.queue_free()
	var names: Variant = session.get("action_names", [])
	if typeof(names) == TYPE_ARRAY:
		for action_name in names:
			_action_button(str(action_name), str(action_name))
	var latent: Variant = session.get("num_latent_actions", 0)
	if typeof(latent) == TYPE_INT:
		for i in range(latent):
			_action_button("L%d" % i, i)
	_events.clear()
	var event_types: Variant = session.get("event_types", [])
	if typeof(event_types) == TYPE_ARRAY:
		for event_type in event_types:
			_events.add_item(str(event_type))
	_status.text = client.backend_label()


## Realtime: the action holds while the button is down. Step: one frame per click.
func _action_button(label: String, action: Variant) -> void:
	var button := Button.new()
	button.text = label
	button.tooltip_text = "Send action %s" % label
	button.button_down.connect(func() -> void: client.send_input(action))
	button.button_up.connect(_on_action_released)
	_actions.add_child(button)


func _on_action_released() -> void:
	var mode: Variant = client.session.get("mode")
	if typeof(mode) == TYPE_STRING and mode == "realtime":
		var names: Variant = client.session.get("action_names", [])
		client.send_input("noop" if typeof(names) == TYPE_ARRAY and "noop" in names else 0)


func _on_session_ended(reason: String) -> void:
	_status.text = "session ended: %s" % reason


func _on_recording_changed(recording: bool, path: String) -> void:
	_record_button.text = "Stop recording" if recording else "Record"
	_status.text = ("recording to %s" if recording else "recording saved to %s") % path


func _on_error(code: String, message: String, _fatal: bool) -> void:
	_status.text = "%s: %s" % [code, message]


func _on_event_applied(caption: String) -> void:
	_status.text = "event: %s" % caption
