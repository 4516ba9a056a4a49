@tool
@icon("res://addons/world_bridge/icons/world_bridge_client.svg")
class_name WorldBridgeClient
extends Node
## Connects to a WorldBridge host, runs one session and emits its frames.
##
## Works in exported games without the editor plugin. Poll-driven from _process: connection,
## hello/welcome, start/session, frames, events, frame edits (protocol 1.1), recording and resume
## after a reconnect. Always shows users which backend runs: the sandbox game is a test backend,
## not the world model.

## Human-readable connection/session status, e.g. for a HUD.
signal status_changed(text: String)
## The host accepted `start`; `session` is the host's `session` message (backend_kind, size, ...).
signal session_started(session: Dictionary)
## The session ended (fatal error, disconnect_from_host, or a new start).
signal session_ended(reason: String)
## connect_to_host() or disconnect_from_host() changed the connection: what the old one showed
## (frames, backend) is no longer this host's.
signal connection_changed
## A frame of the current epoch; `pixels` is raw RGB8 (height*width*3), PNG or JPEG
## as header.codec says.
signal frame_received(header: Dictionary, pixels: PackedByteArray)
## An `error` from the host, or a client-side problem (code "client").
signal error_received(code: String, message: String, fatal: bool)
## (1.3) Right after error_received: the host refused a prompt kind, event kind or edit that this
## backend lacks, naming the capability ("image_prompt", "text_events", "edit", ...).
signal capability_refused(capability: String, message: String)
## (1.3) Right after error_received: the backend refused an event fire_event sent, when the frame
## it was to fire on was made (the host accepted it earlier, so the error answers no request).
## `event_req_id` is the req_id its `event` went with (last_event_req_id right after that
## fire_event; the `ok` to it carries the same; -1 if none), `event_type` and `text` what it sent
## ("" for none).
signal event_refused(event_req_id: int, event_type: String, text: String, message: String)
## An event fired on the frame that frame_received brings next; `caption` is its caption (an event
## queued behind one still held fires after that one's hold frames).
signal event_applied(caption: String)
## The host pasted an edit() layer: the edited frame follows with this epoch and frame_index.
signal edit_applied(epoch: int, frame_index: int)
## What has_capability() allows changed (a host greeted, a session started or ended): the
## names of WorldBridgeProtocol.SESSION_CAPABILITIES this session's backend can do now.
signal capabilities_changed(capabilities: PackedStringArray)
signal recording_changed(recording: bool, path: String)
## The host answered request_status(): `last_status` (its status) or `rtt_ms` (the pong) is new.
signal status_received(status: Dictionary)
## Every message from the host, decoded, for tools that need more than the signals above.
signal message_received(header: Dictionary, payload: PackedByteArray)

enum Link { OFFLINE, CONNECTING, HANDSHAKING, READY, IN_SESSION }

const Zmtp := preload("../core/zmtp.gd")
const MsgPack := preload("../core/msgpack.gd")
const Protocol := preload("../core/protocol.gd")
const StartLedger := preload("../core/start_ledger.gd")
const SizeLimit := preload("../core/size_limit.gd")
const Images := preload("../core/images.gd")
## The host's default message limit; kept here as well as in core/size_limit.gd, where it moved.
const DEFAULT_MAX_MESSAGE_BYTES := SizeLimit.DEFAULT_MAX_BYTES
const FPS_WINDOW := 30

@export var endpoint := "tcp://127.0.0.1:5555"
## Connect in _ready (games). The editor dock connects on demand.
@export var auto_connect := true
## Send `start` as soon as the host says welcome (a session resumes after a reconnect either way).
@export var auto_start := true
@export_enum("default", "sandbox", "world_model") var backend: String = "default"
@export_enum("realtime", "step") var mode: String = "realtime"
## Target frames per second in realtime mode, 1-120 (a start below 1 is refused); 0: the world's
## own rate (its footage's, the sandbox game's 15), which the session reply names (session.fps;
## WorldBridgeProtocol.fps_text shows it).
@export_range(0.0, 120.0) var fps := 0.0
## World seed; -1 lets the host pick.
@export var world_seed := -1
@export_multiline var text_prompt := ""
## A level blocked out in Godot: its rendered image becomes the world's starting scene.
@export var prompt_viewport: SubViewport
@export_enum("image", "sketch") var prompt_viewport_as: String = "image"
## Extra named actions, name -> latent action id (extends the backend's own names).
@export var action_map := {}
@export var client_name := Protocol.CLIENT_NAME
## Lets a client run inside the editor (the WorldBridge dock sets this).
@export var editor_preview := false

var link: Link = Link.OFFLINE
var status_text := "offline"
var welcome := {}
var session := {}
var backend_kind := ""
var backend_name := ""
var recording := false
var recording_path := ""
var last_frame_header := {}
var frames_received := 0
var frames_skipped := 0
var fps_measured := 0.0
## Input -> frame latency from the host's echo of client_ts (ms), measured on the first frame
## that echoes each input's seq (every frame echoes the input in force); -1 until measured.
var latency_ms := -1.0
var rtt_ms := -1.0
var last_status := {}
## What this session's backend can do (see has_capability), e.g. ["image_prompt", "edit"].
var capabilities := PackedStringArray()
## The action_map of the `start` this session answers (exported and start_session options merged):
## the host takes these names but does not list them in session.action_names.
var action_map_sent := {}
## Prompt kinds ("text", "image", "sketch") from text_prompt / prompt_viewport that this session's
## backend refused (bad_prompt), so its start went again without them, with those the lost session's
## start had left out when a failed resume started that session again; empty when none.
var dropped_prompts := PackedStringArray()
## Capabilities refused (capability_refused) -> the refusal's message, since the session started or
## the connection opened: session.capabilities cannot say so before a session. A game may clear it,
## e.g. before starting another backend.
var refused_capabilities := {}
## The req_id of the newest event fire_event sent (-1 before one): keep it after
## `if client.fire_event(...)` to tell which event an event_refused(event_req_id, ...) names.
var last_event_req_id := -1

var _socket: Zmtp = null
var _req_id := 0
var _seq := 0
var _epoch := 0
var _resume_id := ""
var _starts := StartLedger.new()
var _resume_req := -1
## The req_id of the newest hello: only an error carrying it refuses the handshake.
var _hello_req := -1
## Starts and resets sent, by req_id -> what their acceptance says once (Protocol.text_unused).
var _text_unused := {}
var _told_text_unused := false
var _frame_times: Array = []
var _last_sent_ms := 0.0
var _latency_seq := 0
var _hello_deadline_ms := 0


func _ready() -> void:
	if Engine.is_editor_hint() and not editor_preview:
		set_process(false)
		return
	# A paused game (get_tree().paused) must still ping and answer heartbeats, or the host drops
	# the session; a process_mode set in the inspector is kept.
	if process_mode == Node.PROCESS_MODE_INHERIT:
		process_mode = Node.PROCESS_MODE_ALWAYS
	if auto_connect:
		connect_to_host()


func _process(_delta: float) -> void:
	poll()


## Says bye only when the node is freed (its level unloaded, the game quits): reparent() and
## remove_child() take it out of the tree and back in, and its session must live through that.
func _notification(what: int) -> void:
	if what == NOTIFICATION_PREDELETE and _socket != null:
		disconnect_from_host()


## Opens the ZeroMQ connection (to `address`, or `endpoint` when empty); reconnects on loss.
## A connection already open is closed first, as disconnect_from_host() does: its session ends,
## and a start sent to it is dropped, but one asked for and not yet sent goes to the new host.
func connect_to_host(address: String = "") -> Error:
	if address != "":
		endpoint = address
	if _socket != null and link != Link.OFFLINE:
		var unsent := _starts.pending and _starts.resend.is_empty()
		_close_connection()  # connection_changed comes once, below
		_starts.pending = unsent
	elif _socket != null:
		_socket.close()
	_forget_status()
	connection_changed.emit()
	_socket = Zmtp.new()
	_socket.properties = {"X-Client": client_name}
	_socket.opened.connect(_on_socket_opened)
	_socket.closed.connect(_on_socket_closed)
	var err := _socket.open(endpoint)
	if err != OK:
		_set_link(Link.OFFLINE, _socket.last_error)
		error_received.emit("client", _socket.last_error, true)
		_socket = null
		return err
	_set_link(Link.CONNECTING, "connecting to %s" % endpoint)
	return OK


## Says bye (ends the session on the host) and closes the connection. A start asked for while
## the host could not be reached is forgotten: the next connect_to_host() only connects.
func disconnect_from_host() -> void:
	if _close_connection():
		connection_changed.emit()


## disconnect_from_host() without connection_changed, which connect_to_host() emits once itself.
## Returns whether there was a connection to close.
func _close_connection() -> bool:
	_starts.forget_queued()
	if _socket == null:
		return false
	if link == Link.IN_SESSION:
		_send(Protocol.bye())
	_socket.close()
	_socket = null
	_resume_id = ""
	_starts.sent.clear()
	welcome = {}
	_forget_status()
	_end_session("disconnected")
	_update_capabilities()
	_set_link(Link.OFFLINE, "offline")
	return true


## Drives the connection and dispatches messages; _process calls it, tests may call it directly.
func poll() -> void:
	if _socket == null:
		return
	_socket.poll()
	var latest_frame: Array = []
	while _socket != null:
		var parts: Array = _socket.receive()
		if parts.is_empty():
			break
		var decoded := MsgPack.decode(parts[0])
		var header: Variant = decoded["value"]
		if decoded["error"] != "" or typeof(header) != TYPE_DICTIONARY:
			_client_error("the host sent a header that is not a msgpack map: %s" % decoded["error"])
			continue
		if not header.get("type") is String:
			_client_error("the host sent a message without a string `type`")
			continue
		var payload: PackedByteArray = parts[1] if parts.size() > 1 else PackedByteArray()
		message_received.emit(header, payload)
		if header["type"] == "frame" and _text(session, "mode") == "realtime":
			# Realtime: show only the newest frame of this poll; older ones are stale, but
			# their event captions are not (each comes once), so those are still said.
			if not latest_frame.is_empty():
				frames_skipped += 1
				_say_captions(latest_frame[0])
			latest_frame = [header, payload]
		elif header["type"] == "frame":
			_on_frame(header, payload)  # step mode: every frame answers one input
		else:
			_dispatch(header)
	if not latest_frame.is_empty():
		_on_frame(latest_frame[0], latest_frame[1])
	if link == Link.HANDSHAKING and _socket != null and Time.get_ticks_msec() > _hello_deadline_ms:
		var why := (
			(
				"the host at %s did not answer hello within %.1f s: is it a WorldBridge host, "
				+ "and not overloaded? reconnecting"
			)
			% [endpoint, _socket.handshake_timeout_s]
		)
		_client_error(why)
		_socket.drop(why)
	_keep_alive()


## Starts a session; `options` overrides the exported settings (any `start` key of the protocol).
## An fps of 0 or less is the world's own rate; one between 0 and 1, or over 120, is refused.
func start_session(options: Dictionary = {}) -> bool:
	if _fps_refused(options):
		return false
	if link != Link.READY and link != Link.IN_SESSION:
		_starts.queue(options)  # in place of one that was sent and never answered
		return false
	var opts := {
		"backend": null if backend == "default" else backend,
		"mode": mode,
		"fps": fps,  # 0 or less goes as nil (Protocol.start): the world's own rate
		"seed": null if world_seed < 0 else world_seed,
		"text": null if text_prompt == "" else text_prompt,
		# Named even when absent, so a session's options started again capture no viewport.
		"image": null,
		"sketch": null,
		"action_map": null if action_map.is_empty() else action_map,
	}
	if prompt_viewport != null and not options.has(prompt_viewport_as):
		var png := capture_viewport_png(prompt_viewport)
		if not _host_has(prompt_viewport_as + "_prompt"):
			var why := "this host takes no %s prompts; starting without one" % prompt_viewport_as
			_client_error(why, prompt_viewport_as + "_prompt")
		elif png.is_empty():
			_client_error("the prompt viewport has not rendered an image yet; starting without it")
		else:
			opts[prompt_viewport_as] = png
	opts.merge(options, true)
	_starts.options = options
	_starts.resend = {}  # a queued start goes as this one, should it not go out either
	var exported := PackedStringArray()
	for key in ["text", "image", "sketch"]:
		if opts[key] != null and not options.has(key):
			exported.append(key)
	if not _send_start(opts):
		return false  # the start sent before, which the host may still refuse, keeps its prompts
	_starts.exported = exported
	_starts.dropped.clear()
	return true


## Sends the current input state: an action id (int) or name (String); it stays in force.
func send_input(action: Variant) -> bool:
	if link != Link.IN_SESSION:
		return false
	if typeof(action) != TYPE_INT and typeof(action) != TYPE_STRING:
		_client_error(
			"an action must be an int id or a String name, not %s" % type_string(typeof(action))
		)
		return false
	_seq += 1
	return _send(Protocol.input(action, _now_ms(), _seq))


## Fires a promptable world event: a typed event (session.event_types) and/or free text.
## True when it went out; its req_id is then last_event_req_id.
func fire_event(event_type: String = "", text: String = "") -> bool:
	if event_type == "" and text == "":
		_client_error('an event needs an event_type or a text, e.g. fire_event("", "make it snow")')
		return false
	if not (_in_session() and _send(Protocol.event(_next_req(), event_type, text))):
		return false
	last_event_req_id = _req_id
	return true


## A new world: `prompt` may hold seed, text, image, sketch; missing keys keep the old prompt.
func reset_world(prompt: Dictionary = {}) -> bool:
	if not (_in_session() and _send(Protocol.reset(_next_req(), prompt))):
		return false
	_text_unused[_req_id] = Protocol.text_unused(prompt)
	return true


## Continues from frame `frame` of the current timeline (a new epoch starts).
func branch_from(frame: int) -> bool:
	return _in_session() and _send(Protocol.branch(_next_req(), frame))


## Changes steps, temperature, cfg, event_cfg (1.1: guidance on events, 1 = off; only backends
## whose session.settings has it), top_p and unmask (1.2: the world model's nucleus mass in (0, 1]
## and unmasking order, "random" or "confidence"; null in session.settings for other backends),
## fps (1-120; a running session has no way back to the world's own rate) or mode on the host.
func change_settings(values: Dictionary) -> bool:
	var bad_fps := Protocol.fps_problem("settings", values.get("fps"))
	if bad_fps != "":
		_client_error(bad_fps, "", true)
		return false
	return _in_session() and _send(Protocol.settings(_next_req(), values))


## Pastes `layer` (an object sprite; alpha is kept; at most the frame's size) into the current
## frame with its top-left corner at frame pixel (x, y), and the world continues from the edited
## frame (protocol 1.1). `edit_applied` confirms, then the edited frame arrives with a new epoch
## and events ["edit"]. A backend that cannot edit (the sandbox game) answers the error
## "unsupported" through error_received and capability_refused, as does the addon itself for a
## host before protocol 1.1; can_use("edit") tells beforehand (has_capability less a refusal).
func edit(layer: Image, x: int, y: int) -> bool:
	if not _in_session():
		return false
	if layer == null or layer.is_empty():
		_client_error("edit needs a non-empty Image, e.g. a sprite with alpha (see object_layer)")
		return false
	if not _host_has("edit"):
		var version := "%d.%d" % [_int(welcome, "protocol_major"), _int(welcome, "protocol_minor")]
		_refuse(
			"edit",
			"unsupported",
			(
				"the host speaks protocol %s, which has no frame edits: update it to 1.1 or later"
				% version
			)
		)
		return false
	var png := layer.save_png_to_buffer()
	if png.is_empty():
		_client_error(
			"could not encode the %dx%d layer as PNG" % [layer.get_width(), layer.get_height()]
		)
		return false
	return _send(Protocol.edit(_next_req(), png, x, y))


## Records this session on the host's disk (path optional, relative to the host's recordings
## folder); recording_changed confirms.
func start_recording(path: String = "") -> bool:
	if path.contains("://"):
		var example := path.get_file() if path.get_file() != "" else "run1.wbrec"
		var why := "cannot record to %s: the host writes recordings on its own disk" % path
		_client_error(why + ', relative to its recordings folder: pass e.g. "%s"' % example)
		return false
	return _in_session() and _send(Protocol.record_start(_next_req(), path))


func stop_recording() -> bool:
	return _in_session() and _send(Protocol.record_stop(_next_req()))


func toggle_recording() -> bool:
	return stop_recording() if recording else start_recording()


## Asks for the host's status (answer in `last_status`) and measures round-trip time; while
## offline or reconnecting it says why it sent nothing (error_received), so a Status button does.
func request_status() -> bool:
	if link != Link.READY and link != Link.IN_SESSION:
		_client_error("no host to ask for its status until its welcome (%s)" % status_text)
		return false
	var sent := _send(Protocol.status(_next_req()))
	return _send(Protocol.ping(_next_req(), _now_ms())) and sent


## Re-prompts the world from a SubViewport (a blocked-out level): image or sketch prompt.
func prompt_from_viewport(viewport: SubViewport, as_sketch: bool = false) -> bool:
	var png := capture_viewport_png(viewport)
	if png.is_empty():
		_client_error("the viewport has no rendered image yet: wait a frame after changing it")
		return false
	var key := "sketch" if as_sketch else "image"
	if link == Link.IN_SESSION:
		return reset_world({key: png})
	return start_session({key: png})


## What this session's start left out (dropped_prompts), in words; empty when nothing was.
func dropped_note() -> String:
	if dropped_prompts.is_empty():
		return ""
	var kinds := " and ".join(dropped_prompts)
	if dropped_prompts.size() == 1:
		return "started without the %s prompt: this backend takes none" % kinds
	return "started without the %s prompts: this backend takes neither" % kinds


## What runs, in words for users; the sandbox is labelled as a test backend.
func backend_label() -> String:
	if backend_kind == "":
		return "no session"
	return Protocol.describe_backend(backend_kind, backend_name)


func is_in_session() -> bool:
	return link == Link.IN_SESSION


## True when `capability` is available here. Session capabilities (SESSION_CAPABILITIES of
## protocol.gd: "edit", "events", "text_events", "text_prompt", "image_prompt", "sketch_prompt")
## come from this session's `session.capabilities` (1.1). Before a session, and from a 1.0 host
## (no such key), everything the host's welcome offers is allowed: a 1.0 host has no "edit",
## and its "events" take free text too. Host features ("record", "branch", "step") always come
## from the welcome.
func has_capability(capability: String) -> bool:
	var listed: Variant = session.get("capabilities")
	if capability in Protocol.SESSION_CAPABILITIES and typeof(listed) == TYPE_ARRAY:
		return capability in listed
	if capability == "text_events" and not _host_has("text_events"):
		return _host_has("events")
	return _host_has(capability)


## True when this session offers `capability` (has_capability) and the host has not refused it
## (capability_refused) since the session started or the connection opened.
func can_use(capability: String) -> bool:
	return has_capability(capability) and not refused_capabilities.has(capability)


## A copy of `image` ready for edit(): RGBA8, scaled down (nearest, aspect kept) so neither side
## exceeds `max_size` pixels (frames are small, 64x64 by default; sprites often are not).
static func object_layer(image: Image, max_size: int) -> Image:
	return Images.object_layer(image, max_size)


## PNG bytes of what `viewport` rendered last; empty when it has not rendered (or headless).
static func capture_viewport_png(viewport: Viewport) -> PackedByteArray:
	return Images.viewport_png(viewport)


## Whether a start asking for `options` (exports not merged) is refused for its rate, which it
## says with the fix; no start then waits for the next welcome, which would refuse it again.
func _fps_refused(options: Dictionary) -> bool:
	var bad_fps := Protocol.fps_problem("start", options.get("fps", fps))
	if bad_fps == "":
		return false
	_client_error(bad_fps, "", true)
	_starts.forget_queued()
	return true


## Sends a start asking for `opts` as they are (exports already merged); true if it went out. A
## start queued for the next welcome stays queued until one goes out.
func _send_start(opts: Dictionary) -> bool:
	var req := _next_req()
	if not _send(Protocol.start(req, opts)):
		return false
	_starts.went_out(req, opts)
	_text_unused[req] = Protocol.text_unused(opts)
	return true


# --- Incoming messages ---


func _dispatch(header: Dictionary) -> void:
	# A start or reset accepted (session, ok) with its text beside an image: said once, as the
	# host only tells its stderr; any answer settles the request.
	var unused: String = _text_unused.get(header.get("req_id"), "")
	_text_unused.erase(header.get("req_id"))
	if unused != "" and header["type"] in ["session", "ok"] and not _told_text_unused:
		_told_text_unused = true
		push_warning("WorldBridge: " + unused)
	match header["type"]:
		"welcome":
			_on_welcome(header)
		"reject":
			_on_reject(header)
		"session":
			_on_session(header)
		"ok":
			_on_ok(header)
		"error":
			_on_error(header)
		"status":
			last_status = header
			status_received.emit(last_status)
		"pong":
			if typeof(header.get("client_ts")) in [TYPE_FLOAT, TYPE_INT]:
				rtt_ms = _now_ms() - float(header["client_ts"])
				status_received.emit(last_status)
		_:
			pass  # unknown message types are ignored (protocol §2)


func _on_welcome(header: Dictionary) -> void:
	var major := _int(header, "protocol_major")
	if major != Protocol.MAJOR:
		# Reconnecting cannot help: the host or this addon has to be updated, as Unity says.
		var version := "%d.%d" % [major, _int(header, "protocol_minor")]
		var message := (
			"host speaks protocol %s, this addon speaks %d.%d: update the addon or the host"
			% [version, Protocol.MAJOR, Protocol.MINOR]
		)
		_give_up("version_mismatch", message, message)
		return
	welcome = header
	var host_text := _text(header, "host")
	_set_link(Link.READY, "connected to %s at %s" % [host_text, endpoint])
	_update_capabilities()
	# A queued start refused for its rate (the fps export changed since) is dropped, said once,
	# and replaces nothing: the lost session resumes.
	var refused := _starts.pending and _starts.resend.is_empty() and _fps_refused(_starts.options)
	if _starts.pending:
		# A start asked for while reconnecting, or sent and unanswered when the connection
		# dropped or refused with not_ready, replaces the lost session: no resume.
		_resume_id = ""
		_end_session("replaced by the start asked for while reconnecting")
		var resend := _starts.resend
		var sent := start_session(_starts.options) if resend.is_empty() else _send_start(resend)
		if not sent:  # still queued: say so, or the world the game asked for seems lost
			_client_error("the start did not go out; it goes again on the next reconnect")
	elif _resume_id != "":
		_resume_req = _next_req()
		_send(Protocol.start(_resume_req, {"resume": _resume_id}))
	elif auto_start and not refused:
		start_session(_starts.options)


func _on_reject(header: Dictionary) -> void:
	var message := _text(header, "message")
	_socket.close()
	_socket = null
	_set_link(Link.OFFLINE, "rejected by the host: %s" % message)
	error_received.emit(_text(header, "code"), message, true)


func _on_session(header: Dictionary) -> void:
	var answers_newest := _starts.answers_newest(header)
	var opts := _starts.answered(header)
	if not _flag(header, "resumed"):  # a new session takes its start's options
		_starts.session_options = opts
		var map: Variant = opts.get("action_map")
		action_map_sent = map if typeof(map) == TYPE_DICTIONARY else {}
	if link == Link.IN_SESSION:
		_end_session("a new session replaced this one")
	session = header
	backend_kind = _text(header, "backend_kind")
	backend_name = _text(header, "backend_name")
	_epoch = _int(header, "epoch")
	_resume_id = ""
	if not _flag(header, "resumed"):
		dropped_prompts = _starts.dropped.duplicate() if answers_newest else PackedStringArray()
		_starts.session_prompts = (
			_starts.exported.duplicate() if answers_newest else PackedStringArray()
		)
	if not _flag(header, "resumed") and recording:
		recording = false  # a new session: the host's recorder ended with the old one
		recording_changed.emit(false, recording_path)
	_frame_times.clear()
	refused_capabilities.clear()  # this session's capabilities say what its backend can do
	var note := dropped_note()
	_set_link(Link.IN_SESSION, backend_label() + ("" if note == "" else "; " + note))
	_update_capabilities()
	session_started.emit(header)


func _on_frame(header: Dictionary, pixels: PackedByteArray) -> void:
	if link != Link.IN_SESSION:
		return
	var epoch := _int(header, "epoch")
	if _text(header, "session_id") != _text(session, "session_id") or epoch < _epoch:
		frames_skipped += 1
		return  # from an older session, or from before a reset/branch
	_epoch = epoch
	var width := _int(header, "width")
	var height := _int(header, "height")
	if _text(header, "codec") == "raw" and pixels.size() != width * height * 3:
		_client_error(
			(
				"frame %d: %d pixel bytes for %dx%d RGB8"
				% [_int(header, "index"), pixels.size(), width, height]
			)
		)
		return
	frames_received += 1
	last_frame_header = header
	var now := _now_ms()
	_frame_times.append(now)
	if _frame_times.size() > FPS_WINDOW:
		_frame_times.pop_front()
	if _frame_times.size() > 1:
		fps_measured = 1000.0 * (_frame_times.size() - 1) / maxf(now - _frame_times[0], 0.001)
	# Frames echo the input in force: only the first with a new seq measures its latency, and
	# frames that echo nothing (start, reset, branch, edit) leave the input in force as it was.
	if typeof(header.get("client_ts")) in [TYPE_FLOAT, TYPE_INT]:
		var seq := _int(header, "seq")
		if seq != _latency_seq:
			latency_ms = now - float(header["client_ts"])
		_latency_seq = seq
	_say_captions(header)
	frame_received.emit(header, pixels)


## Emits the events a frame of this session carries (not one from before a reset/branch).
func _say_captions(header: Dictionary) -> void:
	if (
		_text(header, "session_id") != _text(session, "session_id")
		or _int(header, "epoch") < _epoch
	):
		return
	for caption in header.get("events", []):
		if str(caption) != "edit":  # marks an edited frame (edit_applied), not a world event
			event_applied.emit(str(caption))


## The host closes a session whose client sent nothing for idle_timeout_s (a paused game in
## step mode): past a third of that, a ping keeps it open.
func _keep_alive() -> void:
	if link != Link.IN_SESSION:
		return
	var limits: Variant = welcome.get("limits", {})
	var idle: Variant = limits.get("idle_timeout_s") if typeof(limits) == TYPE_DICTIONARY else null
	if typeof(idle) != TYPE_FLOAT and typeof(idle) != TYPE_INT:
		return
	if _now_ms() - _last_sent_ms > float(idle) * 1000.0 / 3.0:
		_send(Protocol.ping(_next_req(), _now_ms()))


func _on_ok(header: Dictionary) -> void:
	match _text(header, "request"):
		"record_start":
			recording = true
			recording_path = _text(header, "path")
			recording_changed.emit(true, recording_path)
		"record_stop":
			recording = false
			recording_path = _text(header, "path")
			recording_changed.emit(false, recording_path)
		"edit":
			_adopt_epoch(header)
			edit_applied.emit(_int(header, "epoch"), _int(header, "frame_index"))
		"branch", "reset":
			_adopt_epoch(header)
		"settings":
			if typeof(header.get("settings")) == TYPE_DICTIONARY:
				session["settings"] = header["settings"]
				if typeof(header["settings"].get("mode")) == TYPE_STRING:
					session["mode"] = header["settings"]["mode"]
				if typeof(header["settings"].get("fps")) in [TYPE_FLOAT, TYPE_INT]:
					session["fps"] = float(header["settings"]["fps"])


func _on_error(header: Dictionary) -> void:
	var refused := _starts.answered(header)
	var code := _text(header, "code")
	var message := _text(header, "message")
	var fatal := _flag(header, "fatal")
	if link == Link.HANDSHAKING and _int(header, "req_id") == _hello_req:
		# An error answering hello (e.g. bad_message for a client name over 4096 bytes):
		# greeting again cannot help, so it is fatal, like a reject. One answering an older
		# request (after a not_ready) is only that request's answer.
		_give_up(code, message, "the host refused hello: %s" % message)
		return
	if code == "recording_stopped" and recording:
		# (1.3) The host ended the recording by itself (a full disk); the session goes on. Say it
		# stopped first, so the error that says why is what a status line shows last.
		recording = false
		if _text(header, "path") != "":
			recording_path = _text(header, "path")
		recording_changed.emit(false, recording_path)
	var capability := _text(header, "capability")
	if code == "bad_prompt" and _starts.answers_newest(header) and not _starts.pending:
		# A refusal retried without the refused prompt says nothing now: dropped_note() says it
		# once the start succeeds, and an error would outlast that start on a status line. A
		# newer start queued for the next welcome wins: the refused one is not retried.
		if _start_without(refused, capability):
			return
	if capability != "":
		_refuse(capability, code, message, fatal)
	else:
		error_received.emit(code, message, fatal)
	if header.has("event_req_id"):
		var event_req: Variant = header["event_req_id"]
		var req := int(event_req) if typeof(event_req) == TYPE_INT else -1
		event_refused.emit(req, _text(header, "event_type"), _text(header, "text"), message)
	if code == "not_ready":
		# The host forgot this peer (idle before `start`, or restarted): greet it again,
		# and repeat the `start` it refused, as it was sent, once the new welcome arrives.
		if _starts.answers_newest(header) and not refused.is_empty():
			_starts.resend_at_welcome(refused)
		if link != Link.HANDSHAKING:  # every request it forgot answers not_ready: one hello is enough
			_set_link(Link.HANDSHAKING, "the host forgot this client; greeting it again")
			_greet()
	elif code == "unknown_session" and _int(header, "req_id") == _resume_req:
		# The session we tried to resume is gone (timed out, or the host restarted): start a
		# fresh one with its own options, whatever auto_start says (the game had one).
		_resume_id = ""
		var dropped := dropped_prompts.duplicate()  # that session's options go without them again
		_end_session(message)
		# The game asked for a new world since the resume went out, and it went out (that one), or
		# it waits for the next welcome (that one, not the lost session's options in its place).
		if _starts.pending or (_starts.newest > _resume_req and _starts.sent.has(_starts.newest)):
			_set_link(Link.READY, "the previous session expired")
			return
		_set_link(Link.READY, "the previous session expired; starting a new one")
		if start_session(_starts.session_options):
			_starts.exported = _starts.session_prompts.duplicate()  # its start took from the exports
			_starts.dropped = dropped
	elif code == "bad_prompt" and _starts.answers_newest(header):
		return  # a start refusal leaves the session running
	elif fatal and link == Link.IN_SESSION:
		_end_session(message)
		_set_link(Link.READY, "session ended: %s" % message)


## The newest start, refused for a prompt kind taken from the exports (the demo's text_prompt on a
## world without text prompts), goes again without it, as the Python editor does. Returns
## whether it went again (a prompt the game passed in its options is not retried); a start that
## did not go out drops nothing, and the refusal stays the answer, as in Unity's FieldStart.Retry.
func _start_without(refused: Dictionary, capability: String) -> bool:
	var key := capability.trim_suffix("_prompt")
	if not _starts.exported.has(key) or refused.get(key) == null:
		return false
	var opts := refused.duplicate()
	opts[key] = null
	if not _send_start(opts):
		return false
	_starts.dropped.append(key)
	_set_link(link, "this backend takes no %s prompts: starting without the %s prompt" % [key, key])
	return true


# --- Connection ---


func _on_socket_opened(_peer_properties: Dictionary) -> void:
	_set_link(Link.HANDSHAKING, "greeting the host at %s" % endpoint)
	_greet()


## The host refused this client in a way no reconnect can change: close, and say why.
func _give_up(code: String, message: String, status: String) -> void:
	_socket.close()
	_socket = null
	_resume_id = ""
	_end_session(message)
	_set_link(Link.OFFLINE, status)
	error_received.emit(code, message, true)


## hello, answered by welcome within the socket's handshake_timeout_s, else poll() reconnects.
func _greet() -> void:
	_hello_deadline_ms = Time.get_ticks_msec() + int(_socket.handshake_timeout_s * 1000.0)
	_hello_req = _next_req()
	_send(Protocol.hello(client_name, Protocol.CODECS, _hello_req))


func _on_socket_closed(reason: String) -> void:
	if link == Link.IN_SESSION:
		_resume_id = _text(session, "session_id")
	_starts.connection_lost()
	_text_unused.clear()
	if _socket == null or _socket.state == Zmtp.State.IDLE:
		_set_link(Link.OFFLINE, "connection lost: %s" % reason)
	else:
		_set_link(Link.CONNECTING, "connection lost: %s; reconnecting" % reason)


## Sends `msg`; its request id (from _next_req) is taken only once it went out, so ids name sent
## requests only.
func _send(msg: Dictionary) -> bool:
	if not _write(msg):
		return false
	if msg.has("req_id"):
		_req_id += 1
	return true


func _write(msg: Dictionary) -> bool:
	if _socket == null or not _socket.is_open():
		return false
	if link != Link.READY and link != Link.IN_SESSION and msg["type"] != "hello":
		return false  # nothing but hello reaches a connection before the host's welcome
	var encoded := MsgPack.encode(msg)
	if encoded["error"] != "":
		_client_error(encoded["error"])
		return false
	var data: PackedByteArray = encoded["bytes"]
	var too_big := SizeLimit.problem(msg, data.size(), welcome)
	if too_big != "":
		_client_error(too_big)
		return false
	var err := _socket.send([data])
	if err != OK:
		_client_error("could not send %s: %s" % [msg["type"], _socket.last_error])
	else:
		_last_sent_ms = _now_ms()
	return err == OK


func _in_session() -> bool:
	if link != Link.IN_SESSION:
		_client_error("no session yet: wait for session_started (status: %s)" % status_text)
		return false
	return true


func _end_session(reason: String) -> void:
	if session.is_empty():
		return
	session = {}
	backend_kind = ""
	backend_name = ""
	dropped_prompts = PackedStringArray()
	if recording:
		recording = false
		recording_changed.emit(false, recording_path)
	_update_capabilities()
	session_ended.emit(reason)


## An ok for reset/branch/edit: frames of older epochs that are still queued are stale now.
func _adopt_epoch(header: Dictionary) -> void:
	_epoch = maxi(_epoch, _int(header, "epoch"))


func _host_has(capability: String) -> bool:
	var listed: Variant = welcome.get("capabilities")
	return typeof(listed) == TYPE_ARRAY and capability in listed


func _update_capabilities() -> void:
	var now := PackedStringArray()
	for capability in Protocol.SESSION_CAPABILITIES:
		if has_capability(capability):
			now.append(capability)
	if now != capabilities:
		capabilities = now
		capabilities_changed.emit(now)


## A new or closed connection: another host's status and round trip must not show as this one's.
func _forget_status() -> void:
	last_status = {}
	rtt_ms = -1.0


func _set_link(value: Link, text: String) -> void:
	link = value
	if value == Link.OFFLINE:
		refused_capabilities.clear()  # the next host may take what this one refused
	status_text = text
	status_changed.emit(text)


## The addon refuses a capability the host lacks, as a host refusal comes: error_received, then
## capability_refused, so a game handles one signal for both.
func _refuse(capability: String, code: String, message: String, fatal: bool = false) -> void:
	error_received.emit(code, message, fatal)
	refused_capabilities[capability] = message
	capability_refused.emit(capability, message)


## A mistake the addon caught itself: a warning (an error when it `refused` what the game asked
## for), then error_received (code "client"), and capability_refused when it is about a
## `capability` the host lacks.
func _client_error(message: String, capability: String = "", refused: bool = false) -> void:
	if refused:
		push_error("WorldBridge: " + message)
	else:
		push_warning("WorldBridge: " + message)
	if capability != "":
		_refuse(capability, "client", message)
	else:
		error_received.emit("client", message, false)


## The id of the next request; _send takes it when the request goes out.
func _next_req() -> int:
	return _req_id + 1


func _now_ms() -> float:
	return Time.get_ticks_usec() / 1000.0


static func _text(map: Dictionary, key: String) -> String:
	var value: Variant = map.get(key)
	return value if typeof(value) == TYPE_STRING else ""


static func _int(map: Dictionary, key: String) -> int:
	var value: Variant = map.get(key)
	return value if typeof(value) == TYPE_INT else 0


static func _flag(map: Dictionary, key: String) -> bool:
	var value: Variant = map.get(key)
	return typeof(value) == TYPE_BOOL and value
