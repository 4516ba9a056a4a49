@tool
class_name WorldBridgeProtocol
extends RefCounted
## Builders for WorldBridge protocol 1.3 messages, keys in the order docs/protocol.md lists them.
##
## Keeping every client->host message in one place makes the Godot bytes comparable with the
## golden vectors (docs/protocol/vectors/msgpack.json) and with the Unity and Python clients.

const MAJOR := 1
const MINOR := 3
const CLIENT_NAME := "godot/0.1.17"
## Pixel codecs Godot decodes itself (Image.set_data, load_png_from_buffer, load_jpg_from_buffer).
const CODECS := ["raw", "png", "jpeg"]
const BACKEND_SANDBOX := "sandbox"
const BACKEND_WORLD_MODEL := "world_model"
const MODES := ["realtime", "step"]
## What one session's backend may be able to do (`session.capabilities`, 1.1), in documented order.
const SESSION_CAPABILITIES := [
	"text_prompt", "image_prompt", "sketch_prompt", "events", "text_events", "edit"
]
## `start` keys after type/req_id, in documented order.
const START_KEYS := [
	"backend", "mode", "fps", "seed", "text", "image", "sketch", "action_map", "resume"
]
const RESET_KEYS := ["seed", "text", "image", "sketch"]
const SETTINGS_KEYS := [
	"steps", "temperature", "cfg", "event_cfg", "fps", "mode", "top_p", "unmask"
]
const FLOAT_KEYS := ["fps", "temperature", "cfg", "event_cfg", "top_p"]


## With a `req_id` (>= 0) the host's error refusing this hello carries it, telling it from
## answers to older requests that arrive while a forgotten client greets again.
static func hello(
	client_name: String = CLIENT_NAME, codecs: Array = CODECS, req_id: int = -1
) -> Dictionary:
	var msg := {
		"type": "hello",
		"protocol_major": MAJOR,
		"protocol_minor": MINOR,
		"client": client_name,
		"codecs": codecs.duplicate(),
	}
	if req_id >= 0:
		msg["req_id"] = req_id
	return msg


## `options` may hold any START_KEYS; missing ones are sent as nil (host defaults: a nil fps
## is the world's own rate, as is an fps of 0 or less), except mode, which defaults to realtime.
## With `resume`, only resume is sent.
static func start(req_id: int, options: Dictionary) -> Dictionary:
	var msg := {"type": "start", "req_id": req_id}
	if options.get("resume") != null:
		msg["resume"] = options["resume"]
		return msg
	for key in START_KEYS:
		msg[key] = _clean(key, options.get(key))
	if msg["mode"] == null:
		msg["mode"] = "realtime"
	if typeof(msg["fps"]) == TYPE_FLOAT and msg["fps"] <= 0.0:
		msg["fps"] = null
	return msg


## `action` is a latent/named action id (int) or a name from the session's action_names.
static func input(action: Variant, client_ts: float, seq: int) -> Dictionary:
	return {"type": "input", "action": action, "client_ts": client_ts, "seq": seq}


## A typed event (one of the session's event_types) and/or free text; "" counts as absent.
static func event(req_id: int, event_type: String, text: String) -> Dictionary:
	return {
		"type": "event",
		"req_id": req_id,
		"event_type": event_type if event_type != "" else null,
		"text": text if text != "" else null,
	}


## A new world; keys missing from `prompt` keep the session's previous prompt.
static func reset(req_id: int, prompt: Dictionary) -> Dictionary:
	return _with_keys({"type": "reset", "req_id": req_id}, RESET_KEYS, prompt)


static func branch(req_id: int, frame: int) -> Dictionary:
	return {"type": "branch", "req_id": req_id, "frame": frame}


## Pastes `layer` (PNG bytes, RGBA or RGB) with its top-left corner at frame pixel (x, y) (1.1).
static func edit(req_id: int, layer: PackedByteArray, x: int, y: int) -> Dictionary:
	return {"type": "edit", "req_id": req_id, "layer": layer, "x": x, "y": y}


static func settings(req_id: int, values: Dictionary) -> Dictionary:
	return _with_keys({"type": "settings", "req_id": req_id}, SETTINGS_KEYS, values)


static func record_start(req_id: int, path: String = "") -> Dictionary:
	var msg := {"type": "record_start", "req_id": req_id}
	if path != "":
		msg["path"] = path
	return msg


static func record_stop(req_id: int) -> Dictionary:
	return {"type": "record_stop", "req_id": req_id}


static func status(req_id: int) -> Dictionary:
	return {"type": "status", "req_id": req_id}


static func ping(req_id: int, client_ts: float) -> Dictionary:
	return {"type": "ping", "req_id": req_id, "client_ts": client_ts}


static func bye() -> Dictionary:
	return {"type": "bye"}


## Words a user sees for a backend kind: the sandbox is a test backend, never the world model.
static func describe_backend(kind: String, name: String) -> String:
	if kind == BACKEND_SANDBOX:
		return "SANDBOX GAME (test backend, not the world model): %s" % name
	if kind == BACKEND_WORLD_MODEL:  # its name says "world model tiny (...)": the label says it once
		return "WORLD MODEL: %s" % name.trim_prefix("world model ")
	return "unknown backend%s: %s" % [(" " + kind) if kind != "" else "", name]


## What a start or reset sending `prompt` (text, image, sketch) says once, in the Python client's
## words: an image starts the world and a text beside it is unused (docs/protocol.md); "" when
## the text counts (none, blank, or beside a sketch).
static func text_unused(prompt: Dictionary) -> String:
	var text: Variant = prompt.get("text")
	var blank: bool = typeof(text) != TYPE_STRING or text.strip_edges() == ""
	if blank or prompt.get("image") == null or prompt.get("sketch") != null:
		return ""
	return (
		(
			"the text prompt '%s' is not used: the image starts the world as it is drawn (a world that"
			+ " reads a flat-colour image as a sketch uses both); send the text alone, or with a sketch,"
			+ " for the text to count"
		)
		% text
	)


## The rate measured and, in realtime mode, the rate `session` plays at (its fps: with the client's
## fps 0 only the host knows it), e.g. "14.8 of 15.0 fps", for a HUD.
static func fps_text(measured: float, session: Dictionary) -> String:
	var target: Variant = session.get("fps")
	if session.get("mode") != "realtime" or typeof(target) not in [TYPE_FLOAT, TYPE_INT]:
		return "%.1f fps" % measured
	return "%.1f of %.1f fps" % [measured, float(target)]


## Why a `request` ("start" or "settings") cannot ask for `fps`, naming the fix; "" when it can.
## A host plays 1-120 frames/s and refuses other rates; a start's 0 or less is the world's own
## rate, which a settings change cannot ask for (its nil keeps the rate). A non-number is left
## to the host, which names its type.
static func fps_problem(request: String, fps: Variant) -> String:
	if typeof(fps) not in [TYPE_FLOAT, TYPE_INT] or (fps >= 1 and fps <= 120):
		return ""
	if request == "start" and fps <= 0:
		return ""
	var fix := (
		"set fps to 0 for the world's own rate, or 1-120"
		if request == "start"
		else "a settings change takes 1-120 (only a start asks for the world's own rate, with fps 0)"
	)
	return "fps %s is outside 1-120: %s" % [fps, fix]


## "1 session", "3 sessions": a count as a person writes it.
static func plural(count: int, noun: String) -> String:
	return "%d %s%s" % [count, noun, "" if count == 1 else "s"]


static func _with_keys(msg: Dictionary, keys: Array, values: Dictionary) -> Dictionary:
	for key in keys:
		if values.get(key) != null:
			msg[key] = _clean(key, values[key])
	return msg


## Float fields go out as float64 even when a caller passes an int (pinned encoding rule).
static func _clean(key: String, value: Variant) -> Variant:
	if key in FLOAT_KEYS and typeof(value) == TYPE_INT:
		return float(value)
	return value
