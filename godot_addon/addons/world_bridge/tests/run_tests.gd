extends SceneTree
## Headless tests for anyone with Godot 4.2+ (from the repository root):
##
##   godot --headless --path godot_addon -s addons/world_bridge/tests/run_tests.gd -- \
##       --vectors=../docs/protocol/vectors [--host=tcp://127.0.0.1:5555] [--backend=sandbox] \
##       [--record-dir=/tmp]
##
## Offline: codec, builders and ZMTP framing against the golden vectors. With --host (and
## `worldbridge serve` running): a live session in step mode through WorldBridgeClient.
## Exits 0 when everything passed, 1 otherwise. Uses preload only, so no class cache is needed.

const VectorTests := preload("vector_tests.gd")
const Client := preload("../nodes/world_bridge_client.gd")
const Protocol := preload("../core/protocol.gd")

var _failures := PackedStringArray()


func _initialize() -> void:
	_run()


func _run() -> void:
	var args := parse_args(OS.get_cmdline_user_args())
	var default_dir := ProjectSettings.globalize_path("res://").path_join(
		"../docs/protocol/vectors"
	)
	var vectors_dir: String = args.get("vectors", default_dir)
	var tests := VectorTests.new()
	var result: Dictionary = tests.run(vectors_dir)
	print(offline_summary(result))
	_failures.append_array(result["failures"])
	if args.has("host"):
		var record_dir: String = args.get("record-dir", "")
		await _live_session(args["host"], args.get("backend", "sandbox"), record_dir)
	else:
		print("live: skipped (pass --host=tcp://127.0.0.1:5555 with `worldbridge serve` running)")
	for failure in _failures:
		printerr("FAIL: " + failure)
	print("RESULT: %s" % ("FAILED" if _failures.size() > 0 else "OK"))
	quit(1 if _failures.size() > 0 else 0)


## The vector suite's `result` in one line, counts written as a person would ("1 vector skipped").
static func offline_summary(result: Dictionary) -> String:
	return (
		"offline: %s passed, %s skipped (uint64 > 2^63-1), %s read, %d failed"
		% [
			Protocol.plural(result["passed"], "check"),
			Protocol.plural(result["skipped"], "vector"),
			Protocol.plural(result["decode_only"], "decode-only vector"),
			result["failures"].size()
		]
	)


## "--key=value" and "--flag" -> {key: value or "true"}.
static func parse_args(argv: PackedStringArray) -> Dictionary:
	var args := {}
	for arg in argv:
		if not arg.begins_with("--"):
			continue
		var parts: PackedStringArray = arg.substr(2).split("=", true, 1)
		args[parts[0]] = parts[1] if parts.size() > 1 else "true"
	return args


## A step-mode session through the real client node: frames, input, event, branch, edit (1.1),
## record.
func _live_session(endpoint: String, backend: String, record_dir: String) -> void:
	var client := Client.new()
	client.endpoint = endpoint
	client.backend = backend
	client.mode = "step"
	client.world_seed = 3
	client.text_prompt = "a headless test level"
	var seen := {"frames": [], "errors": [], "captions": [], "recording": []}
	client.frame_received.connect(
		func(header: Dictionary, pixels: PackedByteArray) -> void:
			seen["frames"].append([header, pixels.size()])
	)
	client.error_received.connect(
		func(code: String, _message: String, _fatal: bool) -> void: seen["errors"].append(code)
	)
	client.event_applied.connect(func(caption: String) -> void: seen["captions"].append(caption))
	client.recording_changed.connect(
		func(on: bool, _path: String) -> void: seen["recording"].append(on)
	)
	root.add_child(client)
	if not await _wait_for(func() -> bool: return client.is_in_session(), 15.0):
		_fail("live: no session within 15 s (%s)" % client.status_text)
		client.queue_free()
		return
	print("live: %s" % client.backend_label())
	_expect(client.backend_kind in ["sandbox", "world_model"], "live: backend_kind is reported")
	if client.backend_kind == "sandbox":
		_expect(client.backend_label().contains("test backend"), "live: sandbox labelled as test")
	_expect(
		await _wait_for(func() -> bool: return seen["frames"].size() >= 1, 10.0), "live: frame 0"
	)
	var session := client.session
	for i in range(3):
		client.send_input(session["action_names"][i % session["action_names"].size()])
	_expect(
		await _wait_for(func() -> bool: return seen["frames"].size() >= 4, 10.0),
		"live: one frame per input in step mode"
	)
	for frame in seen["frames"]:
		var header: Dictionary = frame[0]
		if header["codec"] == "raw":
			_expect(frame[1] == header["width"] * header["height"] * 3, "live: raw frame size")
	if session["event_types"].size() > 0:
		client.fire_event(session["event_types"][0], "")
		client.send_input(0)
		_expect(
			await _wait_for(func() -> bool: return seen["captions"].size() > 0, 10.0),
			"live: event caption arrives"
		)
	var epoch: int = client.last_frame_header["epoch"]
	client.branch_from(1)
	_expect(
		await _wait_for(func() -> bool: return client.last_frame_header["epoch"] > epoch, 10.0),
		"live: branch starts a new epoch"
	)
	# Protocol 1.1: paste a red square; a backend that cannot edit says "unsupported".
	var layer := Image.create(4, 4, false, Image.FORMAT_RGBA8)
	layer.fill(Color(1, 0, 0))
	epoch = client.last_frame_header["epoch"]
	client.edit(layer, 8, 8)
	if client.has_capability("edit"):
		_expect(
			await _wait_for(func() -> bool: return client.last_frame_header["epoch"] > epoch, 10.0),
			"live: edit starts a new epoch"
		)
		_expect(
			"edit" in client.last_frame_header["events"], "live: edited frame has events [edit]"
		)
	else:
		_expect(
			await _wait_for(func() -> bool: return "unsupported" in seen["errors"], 10.0),
			"live: a backend that cannot edit answers unsupported"
		)
	client.start_recording(record_dir.path_join("godot-runner.wbrec") if record_dir != "" else "")
	await _wait_for(func() -> bool: return client.recording, 10.0)
	client.send_input(0)
	client.stop_recording()
	_expect(
		await _wait_for(func() -> bool: return seen["recording"] == [true, false], 10.0),
		"live: record_start/record_stop acknowledged"
	)
	client.send_input("no_such_action_name")
	_expect(
		await _wait_for(func() -> bool: return "bad_argument" in seen["errors"], 10.0),
		"live: unknown action name gets bad_argument"
	)
	client.request_status()
	_expect(
		await _wait_for(func() -> bool: return not client.last_status.is_empty(), 10.0),
		"live: status answered"
	)
	print(
		(
			"live: %s, latency %.1f ms"
			% [Protocol.plural(seen["frames"].size(), "frame"), client.latency_ms]
		)
	)
	client.disconnect_from_host()
	client.queue_free()


func _wait_for(condition: Callable, timeout_s: float) -> bool:
	var deadline := Time.get_ticks_msec() + int(timeout_s * 1000.0)
	while Time.get_ticks_msec() < deadline:
		if condition.call():
			return true
		await process_frame
	return condition.call()


func _expect(condition: bool, message: String) -> void:
	if condition:
		print("ok: " + message)
	else:
		_fail(message)


func _fail(message: String) -> void:
	_failures.append(message)
