extends Control
## The WorldBridge demo: the generated world as the background, a Godot HUD over it,
## keyboard/gamepad play through the Input Map (project.godot), and world-event buttons.
##
## The level in LevelViewport is a blockout in the sketch palette (white sky, black ground,
## brown platforms, blue player, yellow coins): it is sent as the world's starting sketch.

## Demo event -> [typed event for the sandbox, free text for backends without that type].
const EVENTS := {
	"snow": ["weather_snow", "it begins to snow"],
	"night": ["night_falls", "night falls"],
}

@onready var client: WorldBridgeClient = $Client
@onready var world_input: WorldInput = $WorldInput
@onready var level: SubViewport = $LevelViewport
@onready var backend_label: Label = $HUD/Layout/TopBar/BackendLabel
@onready var status_label: Label = $HUD/Layout/TopBar/StatusLabel
@onready var caption_label: Label = $HUD/Layout/CaptionLabel
@onready var stats_label: Label = $HUD/Layout/StatsLabel
@onready var prompt_edit: LineEdit = $HUD/Layout/Controls/PromptEdit
@onready var record_button: Button = $HUD/Layout/Controls/RecordButton


func _ready() -> void:
	client.status_changed.connect(_on_status_changed)
	client.session_started.connect(_on_session_started)
	client.event_applied.connect(_on_event_applied)
	client.recording_changed.connect(_on_recording_changed)
	client.error_received.connect(_on_error)
	$HUD/Layout/Controls/PromptButton.pressed.connect(_on_prompt_pressed)
	$HUD/Layout/Controls/LevelButton.pressed.connect(_on_level_pressed)
	$HUD/Layout/Controls/SnowButton.pressed.connect(_fire.bind("snow"))
	$HUD/Layout/Controls/NightButton.pressed.connect(_fire.bind("night"))
	$HUD/Layout/Controls/ResetButton.pressed.connect(_on_reset_pressed)
	record_button.pressed.connect(_on_record_pressed)
	prompt_edit.text = client.text_prompt
	prompt_edit.text_submitted.connect(_on_prompt_submitted)
	# Typing a prompt must not walk the player around.
	prompt_edit.focus_entered.connect(_set_playing.bind(false))
	prompt_edit.focus_exited.connect(_set_playing.bind(true))
	_on_status_changed(client.status_text)


func _unhandled_input(event: InputEvent) -> void:
	if event.is_action_pressed("wb_event_1"):
		_fire("snow")
	elif event.is_action_pressed("wb_event_2"):
		_fire("night")
	elif event.is_action_pressed("wb_reset"):
		_on_reset_pressed()
	elif event.is_action_pressed("wb_record"):
		_on_record_pressed()


func _process(_delta: float) -> void:
	var frame: Variant = client.last_frame_header.get("index", 0)
	var latency := "-" if client.latency_ms < 0.0 else "%.0f ms" % client.latency_ms
	stats_label.text = (
		"frame %s   %.1f fps   input->frame %s   action %s"
		% [str(frame), client.fps_measured, latency, str(world_input.current_action)]
	)


func _fire(kind: String) -> void:
	var spec: Array = EVENTS[kind]
	var types: Variant = client.session.get("event_types", [])
	if typeof(types) == TYPE_ARRAY and spec[0] in types:
		client.fire_event(spec[0], "")
	else:
		client.fire_event("", spec[1])


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


func _set_playing(playing: bool) -> void:
	world_input.enabled = playing


func _on_status_changed(text: String) -> void:
	status_label.text = text
	backend_label.text = client.backend_label()
	var sandbox := client.backend_kind == "sandbox"
	backend_label.add_theme_color_override("font_color", Color.ORANGE if sandbox else Color.WHITE)


func _on_session_started(_session: Dictionary) -> void:
	caption_label.text = ""
	_on_status_changed(client.status_text)


func _on_event_applied(caption: String) -> void:
	caption_label.text = caption


func _on_recording_changed(recording: bool, path: String) -> void:
	record_button.text = "Stop (F9)" if recording else "Record (F9)"
	caption_label.text = ("recording to %s" if recording else "saved %s") % path


func _on_error(code: String, message: String, _fatal: bool) -> void:
	status_label.text = "%s: %s" % [code, message]
