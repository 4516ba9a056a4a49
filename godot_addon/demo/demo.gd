extends Control
## The WorldBridge demo: the generated world as the background, a Godot HUD over it,
## keyboard/gamepad play through the Input Map (project.godot), world-event buttons, and objects
## pasted where the player clicks (protocol 1.1 `edit`; the HUD lists what the backend can do).
##
## The level in LevelViewport is a blockout in the sketch palette (white sky, black ground,
## brown platforms, blue player, yellow coins): it is sent as the world's starting sketch.

## Demo event -> [typed event for the sandbox, free text for backends without that type].
const EVENTS := {
	"snow": ["weather_snow", "it begins to snow"],
	"night": ["night_falls", "night falls"],
}
## Session capabilities in words, for the HUD.
const CAPABILITY_WORDS := {
	"text_prompt": "text prompts",
	"image_prompt": "image prompts",
	"sketch_prompt": "sketches",
	"events": "events",
	"text_events": "free-text events",
	"edit": "pasting objects",
}
## HUD buttons -> the session capability each one needs (the event buttons take either kind).
const BUTTON_NEEDS := {
	"PromptButton": ["text_prompt"],
	"LevelButton": ["sketch_prompt"],
	"SnowButton": ["events", "text_events"],
	"NightButton": ["events", "text_events"],
	"PasteButton": ["edit"],
}
const COIN := Color(1.0, 0.86, 0.0)
const COIN_RIM := Color(0.6, 0.4, 0.0)

## What a click on the world (or P / gamepad Y) pastes; empty: a coin drawn by coin_sprite().
@export var object_texture: Texture2D
## The pasted object's longest side in frame pixels (frames are 64x64 by default).
@export_range(1, 64) var object_size := 8

var _object: Image = null

@onready var client: WorldBridgeClient = $Client
@onready var world_input: WorldInput = $WorldInput
@onready var level: SubViewport = $LevelViewport
@onready var backend_label: Label = $HUD/Layout/TopBar/BackendLabel
@onready var status_label: Label = $HUD/Layout/TopBar/StatusLabel
@onready var caption_label: Label = $HUD/Layout/CaptionLabel
@onready var stats_label: Label = $HUD/Layout/StatsLabel
@onready var prompt_edit: LineEdit = $HUD/Layout/Controls/PromptEdit
@onready var record_button: Button = $HUD/Layout/Controls/RecordButton
@onready var world_view: WorldView = $WorldView
@onready var caps_label: Label = $HUD/Layout/CapsLabel
@onready var paste_button: Button = $HUD/Layout/Controls/PasteButton


func _ready() -> void:
	client.status_changed.connect(_on_status_changed)
	client.session_started.connect(_on_session_started)
	client.event_applied.connect(_on_event_applied)
	client.recording_changed.connect(_on_recording_changed)
	client.error_received.connect(_on_error)
	client.capabilities_changed.connect(_on_capabilities_changed)
	client.capability_refused.connect(_on_capability_refused)
	client.edit_applied.connect(_on_edit_applied)
	world_view.frame_clicked.connect(_on_frame_clicked)
	paste_button.pressed.connect(_paste_at_pointer)
	if object_texture != null:
		_object = WorldBridgeClient.object_layer(object_texture.get_image(), object_size)
	else:
		_object = coin_sprite(object_size)
	$HUD/Layout/Controls/PromptButton.pressed.connect(_on_prompt_pressed)
	$HUD/Layout/Controls/LevelButton.pressed.connect(_on_level_pressed)
	$HUD/Layout/Controls/SnowButton.pressed.connect(_fire.bind("snow"))
	$HUD/Layout/Controls/NightButton.pressed.connect(_fire.bind("night"))
	$HUD/Layout/Controls/ResetButton.pressed.connect(_on_reset_pressed)
	record_button.pressed.connect(_on_record_pressed)
	prompt_edit.text = client.text_prompt
	# Typing a prompt walks nothing: WorldInput sends only the idle action while a text field has
	# the keyboard.
	prompt_edit.text_submitted.connect(_on_prompt_submitted)
	_on_status_changed(client.status_text)
	_on_capabilities_changed(client.capabilities)


## A round coin with a darker rim on a transparent background: the default object to paste.
static func coin_sprite(side: int) -> Image:
	var image := Image.create(side, side, false, Image.FORMAT_RGBA8)
	var radius := side / 2.0
	for y in range(side):
		for x in range(side):
			var distance := Vector2(x + 0.5 - radius, y + 0.5 - radius).length()
			if distance <= radius:
				image.set_pixel(x, y, COIN if distance < radius - 1.0 else COIN_RIM)
	return image


func _unhandled_input(event: InputEvent) -> void:
	if event.is_action_pressed("wb_event_1"):
		_fire("snow")
	elif event.is_action_pressed("wb_event_2"):
		_fire("night")
	elif event.is_action_pressed("wb_reset"):
		_on_reset_pressed()
	elif event.is_action_pressed("wb_record"):
		_on_record_pressed()
	elif event.is_action_pressed("wb_paste"):
		_paste_at_pointer()


func _process(_delta: float) -> void:
	var frame: Variant = client.last_frame_header.get("index", 0)
	var latency := "-" if client.latency_ms < 0.0 else "%.0f ms" % client.latency_ms
	var rate := WorldBridgeProtocol.fps_text(client.fps_measured, client.session)
	stats_label.text = (
		"frame %s   %s   input->frame %s   action %s"
		% [str(frame), rate, latency, str(world_input.current_action)]
	)


func _fire(kind: String) -> void:
	var spec: Array = EVENTS[kind]
	var types: Variant = client.session.get("event_types", [])
	if client.can_use("events") and typeof(types) == TYPE_ARRAY and spec[0] in types:
		client.fire_event(spec[0], "")
	elif client.can_use("text_events"):
		client.fire_event("", spec[1])
	else:
		caption_label.text = "this backend takes no %s event" % kind


func _on_frame_clicked(pixel: Vector2i, button_index: int) -> void:
	if button_index == MOUSE_BUTTON_LEFT:
		world_view.paste_at_pixel(_object, pixel)


## Pastes under the mouse pointer when it is over the world, else in the middle of the frame.
func _paste_at_pointer() -> void:
	var pixel := world_view.frame_pixel_at(world_view.get_local_mouse_position())
	var frame := world_view.get_frame_image()
	if pixel == WorldView.NO_PIXEL and frame != null:
		pixel = Vector2i(frame.get_width() >> 1, frame.get_height() >> 1)
	world_view.paste_at_pixel(_object, pixel)


func _on_prompt_pressed() -> void:
	client.text_prompt = prompt_edit.text.strip_edges()
	client.reset_world({"text": client.text_prompt})
	prompt_edit.release_focus()


func _on_prompt_submitted(_text: String) -> void:
	_on_prompt_pressed()


## Re-reads the blocked-out level (after a draw, so edits are in the image) as a sketch prompt.
func _on_level_pressed() -> void:
	await RenderingServer.frame_post_draw
	client.prompt_from_viewport(level, true)


func _on_reset_pressed() -> void:
	client.reset_world()


func _on_record_pressed() -> void:
	client.toggle_recording()


func _on_status_changed(text: String) -> void:
	status_label.text = text
	backend_label.text = client.backend_label()
	var sandbox := client.backend_kind == "sandbox"
	backend_label.add_theme_color_override("font_color", Color.ORANGE if sandbox else Color.GREEN)


func _on_session_started(_session: Dictionary) -> void:
	caption_label.text = client.dropped_note()  # e.g. the text prompt this backend refused
	_on_capabilities_changed(client.capabilities)
	_on_status_changed(client.status_text)


func _on_event_applied(caption: String) -> void:
	caption_label.text = caption


func _on_edit_applied(_epoch: int, frame_index: int) -> void:
	caption_label.text = "object pasted into frame %d: the world goes on from it" % frame_index


## The HUD says what this backend can do; controls for the rest are greyed out.
func _on_capabilities_changed(capabilities: PackedStringArray) -> void:
	var can := PackedStringArray()
	var cannot := PackedStringArray()
	for capability in CAPABILITY_WORDS:
		if capability in capabilities:
			can.append(CAPABILITY_WORDS[capability])
		else:
			cannot.append(CAPABILITY_WORDS[capability])
	caps_label.text = ""
	if client.is_in_session():
		caps_label.text = "can: %s" % (", ".join(can) if can.size() > 0 else "nothing more")
		if cannot.size() > 0:
			caps_label.text += "   cannot: %s" % ", ".join(cannot)
	for button_name in BUTTON_NEEDS:
		var usable := false
		for capability in BUTTON_NEEDS[button_name]:
			usable = usable or client.can_use(capability)
		var button: Button = $HUD/Layout/Controls.get_node(button_name)
		button.disabled = not usable
	prompt_edit.editable = not $HUD/Layout/Controls/PromptButton.disabled


## The host (or the addon, for an older host) refused a capability: grey its buttons and say why.
func _on_capability_refused(_capability: String, message: String) -> void:
	caption_label.text = message
	_on_capabilities_changed(client.capabilities)


func _on_recording_changed(recording: bool, path: String) -> void:
	record_button.text = "Stop (F9)" if recording else "Record (F9)"
	caption_label.text = ("recording to %s" if recording else "saved %s") % path


func _on_error(code: String, message: String, _fatal: bool) -> void:
	status_label.text = "%s: %s" % [code, message]
