@tool
extends VBoxContainer
## The WorldBridge editor dock: connect to a host, prompt by text or image (or the 2D view),
## preview the world, press actions, fire events, paste objects into the world (protocol 1.1),
## record; all without running the game. Controls the session's backend cannot use are greyed.

const Client := preload("../nodes/world_bridge_client.gd")
const View := preload("../nodes/world_view.gd")
const Protocol := preload("../core/protocol.gd")
const BACKENDS := ["default", "sandbox", "world_model"]
const UNMASK_ORDERS := ["confidence", "random"]
const GREYED := "\n(greyed: "
const UNAVAILABLE := "this session's backend cannot do it"
## The largest seed the seed box holds exactly: SpinBox values are floats, exact up to 2^53.
const SEED_BOX_MAX := 9007199254740991

var client: Client
var view: View

var _endpoint: LineEdit
var _connect_button: Button
var _status: Label
var _host_status: Label
var _backend: OptionButton
var _mode: OptionButton
var _prompt: TextEdit
var _fixed_seed: CheckBox
var _seed: SpinBox
var _frame_info: Label
var _actions: GridContainer
var _image_button: Button
var _sketch_button: Button
var _events: OptionButton
var _event_text: LineEdit
var _fire_button: Button
var _event_cfg: SpinBox
var _object_button: Button
var _object_label: Label
var _object_size: SpinBox
var _paste_x: SpinBox
var _paste_y: SpinBox
var _paste_button: Button
var _sampler: HBoxContainer
var _top_p: SpinBox
var _unmask: OptionButton
var _branch_frame: SpinBox
var _branch_button: Button
var _record_button: Button
var _file_dialog: FileDialog
var _object_dialog: FileDialog
## The picked object (a PNG, alpha = transparent), pasted scaled to _object_size.
var _object: Image = null


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
	client.edit_applied.connect(_on_edit_applied)
	client.capabilities_changed.connect(_on_capabilities_changed)
	client.capability_refused.connect(_on_capability_refused)
	client.status_received.connect(func(_answer: Dictionary) -> void: _show_host_status())
	client.frame_received.connect(_on_frame_received)
	_build()
	_apply_capabilities()


## The dock freed (plugin disabled, editor closing) closes the connection while its controls
## exist: its client, freed after them, would tell them it went offline. Moving the dock to
## another slot takes it out of the tree and back, and keeps the session.
func _notification(what: int) -> void:
	if what == NOTIFICATION_PREDELETE and is_instance_valid(client):
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
	_host_status = Label.new()
	_host_status.tooltip_text = "The host's answer to Status: its sessions, the fps it sends"
	_host_status.visible = false
	add_child(_host_status)

	row = _row()
	_backend = _options(
		row, BACKENDS, "Backend: the sandbox is a test backend, not the world model"
	)
	_backend.item_selected.connect(func(_index: int) -> void: _forget_refusals())
	_mode = _options(row, ["realtime", "step"], "Realtime ticks at the target fps; step waits")
	_prompt = TextEdit.new()
	_prompt.placeholder_text = "Text prompt, e.g. a snowy cave with lava"
	_prompt.custom_minimum_size = Vector2(0, 60)
	add_child(_prompt)
	row = _row()
	_fixed_seed = CheckBox.new()
	_fixed_seed.text = "Fixed seed"
	_fixed_seed.tooltip_text = "Start the same world each time; unticked, the host picks a seed"
	row.add_child(_fixed_seed)
	_seed = _spin(row, 0, SEED_BOX_MAX, 1, "The seed a start with Fixed seed ticked sends")
	row = _row()
	_button(row, "Start", _on_start_pressed)
	_image_button = _button(row, "Image...", _on_image_pressed)
	_image_button.tooltip_text = "Start (or reset) the world from a PNG or JPEG image"
	_sketch_button = _button(row, "Sketch from 2D view", _on_sketch_pressed)
	_sketch_button.tooltip_text = "Start (or reset) the world from the 2D view, as a sketch"

	view = View.new()
	view.custom_minimum_size = Vector2(0, 200)
	view.size_flags_vertical = Control.SIZE_EXPAND_FILL
	view.tooltip_text = "Click to paste the picked object there"
	add_child(view)
	view.client = client
	view.frame_clicked.connect(_on_preview_clicked)
	_frame_info = Label.new()
	_frame_info.tooltip_text = (
		"latency: input to its first frame; dropped: frames not shown; fps: received of the"
		+ " session's rate"
	)
	_frame_info.visible = false
	add_child(_frame_info)

	_actions = GridContainer.new()
	_actions.columns = 4
	add_child(_actions)

	row = _row()
	_events = _options(row, [], "Typed events this backend understands")
	_event_text = LineEdit.new()
	_event_text.placeholder_text = "or free text: make it snow"
	_event_text.size_flags_horizontal = Control.SIZE_EXPAND_FILL
	row.add_child(_event_text)
	_fire_button = _button(row, "Fire", _on_fire_pressed)
	row = _row()
	var cfg_label := Label.new()
	cfg_label.text = "Event guidance"
	row.add_child(cfg_label)
	_event_cfg = _spin(
		row, 0.0, 10.0, 0.1, "Guidance on events (event_cfg): 1 = off, higher = stronger"
	)
	_event_cfg.value = 1.0
	_event_cfg.value_changed.connect(
		func(value: float) -> void: client.change_settings({"event_cfg": value})
	)

	row = _row()
	_object_button = _button(
		row, "Object...", func() -> void: _object_dialog.popup_centered_ratio(0.6)
	)
	_object_button.tooltip_text = "Pick a PNG to paste into the world (alpha = transparent)"
	_object_label = Label.new()
	_object_label.text = "no object picked"
	_object_label.size_flags_horizontal = Control.SIZE_EXPAND_FILL
	_object_label.text_overrun_behavior = TextServer.OVERRUN_TRIM_ELLIPSIS
	row.add_child(_object_label)
	row = _row()
	_object_size = _spin(row, 1, 256, 1, "Object size: its longest side in frame pixels")
	_object_size.value = 16
	_object_size.suffix = "px"
	_paste_x = _spin(row, -512, 1024, 1, "x: the object's left edge in frame pixels")
	_paste_x.prefix = "x"
	_paste_y = _spin(row, -512, 1024, 1, "y: the object's top edge in frame pixels")
	_paste_y.prefix = "y"
	_paste_button = _button(row, "Paste", _on_paste_pressed)
	_paste_button.tooltip_text = "Paste the object at (x, y); or click the preview"

	_sampler = _row()
	_top_p = _spin(_sampler, 0.05, 1.0, 0.05, "Top-p: the world model's nucleus mass, 1 = off")
	_top_p.prefix = "top-p"
	_top_p.value = 1.0
	_unmask = _options(_sampler, UNMASK_ORDERS, "The order the world model unmasks tokens in")
	var apply := _button(_sampler, "Apply", _on_sampler_apply_pressed)
	apply.tooltip_text = "Send top-p and unmasking to the world model"

	row = _row()
	_branch_frame = _spin(row, 0, 1000000, 1, "A frame still in the host's history")
	_branch_frame.prefix = "frame"
	_branch_button = _button(
		row, "Branch", func() -> void: client.branch_from(int(_branch_frame.value))
	)
	_branch_button.tooltip_text = "Branch the world from that frame: it goes on from there"
	row = _row()
	_record_button = _button(row, "Record", func() -> void: client.toggle_recording())
	_button(row, "Reset", func() -> void: client.reset_world(_seed_prompt()))
	_button(row, "Status", func() -> void: client.request_status())

	_file_dialog = FileDialog.new()
	_file_dialog.file_mode = FileDialog.FILE_MODE_OPEN_FILE
	_file_dialog.access = FileDialog.ACCESS_FILESYSTEM
	_file_dialog.filters = PackedStringArray(["*.png, *.jpg, *.jpeg ; PNG or JPEG images"])
	_file_dialog.file_selected.connect(_on_image_selected)
	add_child(_file_dialog)
	_object_dialog = FileDialog.new()
	_object_dialog.file_mode = FileDialog.FILE_MODE_OPEN_FILE
	_object_dialog.access = FileDialog.ACCESS_FILESYSTEM
	_object_dialog.filters = PackedStringArray(["*.png ; PNG images (alpha = transparent)"])
	_object_dialog.file_selected.connect(_on_object_selected)
	add_child(_object_dialog)


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


func _spin(parent: Control, low: float, high: float, step: float, tooltip: String) -> SpinBox:
	var spin := SpinBox.new()
	spin.min_value = low
	spin.max_value = high
	spin.step = step
	spin.tooltip_text = tooltip
	parent.add_child(spin)
	return spin


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


## The start options the dock's controls set: backend, mode, text prompt and seed.
func _take_start_options() -> void:
	client.backend = BACKENDS[_backend.selected]
	client.mode = _mode.get_item_text(_mode.selected)
	client.text_prompt = _prompt.text.strip_edges()
	client.world_seed = int(_seed.value) if _fixed_seed.button_pressed else -1


## Offline, the start waits for the host's welcome: a later Connect only connects.
func _on_start_pressed() -> void:
	_take_start_options()
	client.start_session()
	if client.link == Client.Link.OFFLINE:
		client.connect_to_host(_endpoint.text.strip_edges())


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


## The seed a Reset sends: the fixed one when ticked (as Unity's Reset world),
## else none (the host picks).
func _seed_prompt() -> Dictionary:
	return {"seed": int(_seed.value)} if _fixed_seed.button_pressed else {}


func _prompt_with(prompt: Dictionary) -> void:
	if client.is_in_session():
		client.reset_world(prompt)
	else:
		_take_start_options()
		client.start_session(prompt)
		if client.link == Client.Link.OFFLINE:
			client.connect_to_host(_endpoint.text.strip_edges())


func _on_object_selected(path: String) -> void:
	var image := Image.new()
	if image.load_png_from_buffer(FileAccess.get_file_as_bytes(path)) != OK:
		_status.text = "%s is not a readable PNG" % path
		return
	_object = image
	_object_label.text = "%s (%dx%d)" % [path.get_file(), image.get_width(), image.get_height()]
	_object_label.tooltip_text = path


func _on_paste_pressed() -> void:
	if _object == null:
		_status.text = "pick an object first (Object...)"
		return
	var layer := Client.object_layer(_object, int(_object_size.value))
	client.edit(layer, int(_paste_x.value), int(_paste_y.value))


## A click on the preview pastes the picked object centred there (when the backend can edit).
func _on_preview_clicked(pixel: Vector2i, button_index: int) -> void:
	if button_index != MOUSE_BUTTON_LEFT or _paste_button.disabled:
		return
	if _object == null:
		_status.text = "pick an object first (Object...), then click the preview"
		return
	var layer := Client.object_layer(_object, int(_object_size.value))
	_paste_x.value = pixel.x - (layer.get_width() >> 1)
	_paste_y.value = pixel.y - (layer.get_height() >> 1)
	client.edit(layer, int(_paste_x.value), int(_paste_y.value))


func _on_sampler_apply_pressed() -> void:
	client.change_settings(
		{"top_p": _top_p.value, "unmask": _unmask.get_item_text(_unmask.selected)}
	)


## Free text wins when both are given; a greyed list (typed events refused) keeps its selection,
## which must not go out.
func _on_fire_pressed() -> void:
	var text := _event_text.text.strip_edges() if _event_text.editable else ""
	var event_type := ""
	if text == "" and not _events.disabled and _events.selected >= 0:
		event_type = _events.get_item_text(_events.selected)
	if event_type == "" and text == "":
		_status.text = "type the event in words (e.g. make it snow): this session takes no typed events"
		return
	client.fire_event(event_type, text)


func _on_status_changed(text: String) -> void:
	_status.text = text
	_connect_button.text = "Connect" if client.link == Client.Link.OFFLINE else "Disconnect"
	_show_host_status()
	if client.link == Client.Link.OFFLINE:
		_frame_info.visible = false  # the next host's world must not show under this one's numbers
		_apply_capabilities()  # the client forgot this host's refusals


## The line under the preview, as in Unity's window: where the world is and how fast it comes.
func _on_frame_received(header: Dictionary, _pixels: PackedByteArray) -> void:
	var timings: Variant = header.get("timings", {})
	var model: Variant = timings.get("model") if typeof(timings) == TYPE_DICTIONARY else null
	var text := (
		"frame %d  epoch %d  model %.1f ms"
		% [
			int(header.get("index", 0)),
			int(header.get("epoch", 0)),
			float(model) if _is_number(model) else 0.0
		]
	)
	if client.latency_ms >= 0.0:
		text += "  latency %.0f ms" % client.latency_ms
	var rate := Protocol.fps_text(client.fps_measured, client.session)
	_frame_info.text = text + "  dropped %d  %s" % [client.frames_skipped, rate]
	_frame_info.visible = true


## The Status button's answer under the status line, as in Unity's window; none before an answer
## from this connection's host.
func _show_host_status() -> void:
	var answer := client.last_status
	_host_status.visible = not answer.is_empty()
	if answer.is_empty():
		return
	var sessions: Variant = answer.get("sessions")
	var fps: Variant = answer.get("fps_measured")  # nil while the dock has no session there
	var count := Protocol.plural(int(sessions) if _is_number(sessions) else 0, "session")
	_host_status.text = (
		"host: %s, %.1f fps sent" % [count, float(fps) if _is_number(fps) else 0.0]
	)
	if client.rtt_ms >= 0.0:
		_host_status.text += "  round trip %.0f ms" % client.rtt_ms


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
	var settings: Variant = session.get("settings", {})
	if typeof(settings) == TYPE_DICTIONARY and _is_number(settings.get("event_cfg")):
		_event_cfg.set_value_no_signal(float(settings["event_cfg"]))
	if typeof(settings) == TYPE_DICTIONARY and _is_number(settings.get("top_p")):
		_top_p.set_value_no_signal(float(settings["top_p"]))
	if typeof(settings) == TYPE_DICTIONARY and settings.get("unmask") in UNMASK_ORDERS:
		_unmask.select(UNMASK_ORDERS.find(settings["unmask"]))
	_apply_capabilities()
	_status.text = client.status_text  # the backend, and any prompt its start left out


func _on_capabilities_changed(_capabilities: PackedStringArray) -> void:
	_apply_capabilities()


## The host refused something this backend lacks (e.g. an image prompt before any session told
## what the backend takes): grey its control, saying why, instead of letting the user retry.
func _on_capability_refused(_capability: String, _message: String) -> void:
	_apply_capabilities()


func _forget_refusals() -> void:
	client.refused_capabilities.clear()
	_apply_capabilities()


## Whether the dock offers `capability`: not when the host refused it; before a host has greeted
## the dock nothing is known, so it stays available; else session.capabilities says.
func _can(capability: String) -> bool:
	if client.welcome.is_empty():
		return not client.refused_capabilities.has(capability)
	return client.can_use(capability)


## Greys out what this session's backend cannot do (session.capabilities) or the host refused.
func _apply_capabilities() -> void:
	var live := client.is_in_session()
	_enable(_image_button, _can("image_prompt"), "image_prompt")
	_enable(_sketch_button, _can("sketch_prompt"), "sketch_prompt")
	var typed := live and _can("events") and _events.item_count > 0
	var text := live and _can("text_events")
	_enable(_events, typed, "events")
	_event_text.editable = text
	var fire_why := "text_events" if client.refused_capabilities.has("text_events") else "events"
	_enable(_fire_button, typed or text, fire_why)
	var settings: Variant = client.session.get("settings", {})
	_event_cfg.editable = (
		live and typeof(settings) == TYPE_DICTIONARY and _is_number(settings.get("event_cfg"))
	)
	# (1.2) the world model's sampler; null in session.settings for other backends
	_sampler.visible = (
		live and typeof(settings) == TYPE_DICTIONARY and _is_number(settings.get("top_p"))
	)
	_enable(_branch_button, live)
	_branch_frame.editable = live
	var can_edit := live and _can("edit")
	for control in [_object_size, _paste_x, _paste_y]:
		control.editable = can_edit
	_enable(_paste_button, can_edit, "edit")
	view.tooltip_text = (
		"Click to paste the picked object there"
		if can_edit
		else "This session's backend cannot paste objects (the sandbox renders from game state)"
	)


## Greys `button` out or back, its tooltip saying why: the host's refusal of `capability` if it
## refused it, else that the backend cannot.
func _enable(button: BaseButton, enabled: bool, capability: String = "") -> void:
	button.disabled = not enabled
	button.tooltip_text = button.tooltip_text.split(GREYED)[0]
	if not enabled:
		var why: Variant = client.refused_capabilities.get(capability)
		button.tooltip_text += (
			GREYED + (UNAVAILABLE if why == null else "the host refused it: %s" % why) + ")"
		)


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
	_apply_capabilities()


func _on_recording_changed(recording: bool, path: String) -> void:
	_record_button.text = "Stop recording" if recording else "Record"
	_status.text = ("recording to %s" if recording else "recording saved to %s") % path


func _on_error(code: String, message: String, _fatal: bool) -> void:
	_status.text = "%s: %s" % [code, message]


func _on_event_applied(caption: String) -> void:
	_status.text = "event: %s" % caption


func _on_edit_applied(epoch: int, frame_index: int) -> void:
	_status.text = (
		"pasted into frame %d; the world goes on from it (epoch %d)" % [frame_index, epoch]
	)


## A float field may come as an integer from a lenient encoder (protocol §2): both are numbers.
func _is_number(value: Variant) -> bool:
	return typeof(value) == TYPE_FLOAT or typeof(value) == TYPE_INT
