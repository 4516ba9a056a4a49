extends RefCounted
## Offline tests: the GDScript codec, message builders and ZMTP framing against the golden
## vectors (docs/protocol/vectors). Synchronous, no network; run_tests.gd calls run().

const Client := preload("../nodes/world_bridge_client.gd")
const MsgPack := preload("../core/msgpack.gd")
const Protocol := preload("../core/protocol.gd")
const Zmtp := preload("../core/zmtp.gd")
## 2^63 as a float: JSON numbers at or above it cannot be a GDScript int.
const INT_LIMIT := 9223372036854775808.0
const PNG_1X1 := (
	"89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
	+ "0000000c4944415478da63f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)
## The 2x2 RGBA layer of msg_edit (red, with alpha 255/128/255/0).
const PNG_RGBA_2X2 := (
	"89504e470d0a1a0a0000000d494844520000000200000002080600000072b60d24"
	+ "0000001849444154789c05c10101000008c3201edde41316e144e10134fe057ef0"
	+ "e899360000000049454e44ae426082"
)

var passed := 0
var skipped := 0
## decode_only vectors: forms other encoders may write (float32, array32, map32), ours never do.
var decode_only := 0
var failures: PackedStringArray = PackedStringArray()


## Runs every offline test; returns {"passed", "skipped", "decode_only", "failures"}.
func run(vectors_dir: String) -> Dictionary:
	var msgpack_doc: Variant = _load_json(vectors_dir.path_join("msgpack.json"))
	var zmtp_doc: Variant = _load_json(vectors_dir.path_join("zmtp.json"))
	if typeof(msgpack_doc) == TYPE_DICTIONARY:
		test_msgpack_vectors(msgpack_doc["vectors"])
		test_builders(msgpack_doc["vectors"])
		test_client_reads_1_1_messages(msgpack_doc["vectors"])
	if typeof(zmtp_doc) == TYPE_DICTIONARY:
		test_zmtp_vectors(zmtp_doc["vectors"])
	test_msgpack_errors()
	test_endpoints()
	return {"passed": passed, "skipped": skipped, "decode_only": decode_only, "failures": failures}


## Every vector decodes to its tagged value and re-encodes to the same bytes (a decode_only one
## to other bytes: ours are the smallest form, float64).
func test_msgpack_vectors(vectors: Array) -> void:
	for vec in vectors:
		var data: PackedByteArray = String(vec["hex"]).hex_decode()
		var expected: Variant = untag(vec["value"])
		var decoded := MsgPack.decode(data)
		_check(decoded["error"] == "", "%s: decode failed: %s" % [vec["name"], decoded["error"]])
		_check(same(decoded["value"], expected), "%s: decoded value differs" % vec["name"])
		if vec.get("decode_only", false):
			decode_only += 1
			var ours: Dictionary = MsgPack.encode(expected)
			_check(ours["bytes"] != data, "%s: decode_only, but we encode it so" % vec["name"])
			continue
		if not representable(vec["value"]):
			skipped += 1  # uint64 above 2^63-1: GDScript ints are signed 64-bit
			continue
		var encoded := MsgPack.encode(expected)
		_check(encoded["error"] == "", "%s: encode failed: %s" % [vec["name"], encoded["error"]])
		_check(
			encoded["bytes"] == data,
			(
				"%s: encoded %s, expected %s"
				% [vec["name"], _short_hex(encoded["bytes"]), _short_hex(data)]
			)
		)


## The client->host messages built by WorldBridgeProtocol match the vectors byte for byte.
func test_builders(vectors: Array) -> void:
	var png := PNG_1X1.hex_decode()
	var built := {
		"msg_hello": Protocol.hello("unity/0.1.0", ["raw", "png"]),
		"msg_start":
		(
			Protocol
			. start(
				1,
				{
					"mode": "realtime",
					"fps": 24.0,
					"seed": 7,
					"text": "a cave with lava",
					"image": png,
					"action_map": {"jump": 3},
				}
			)
		),
		"msg_start_resume": Protocol.start(2, {"resume": "s-4f2a9c"}),
		# What a WorldBridgeClient sends by default: its fps export's 0 is the world's own rate.
		"msg_start_own_rate": Protocol.start(1, {"fps": 0.0}),
		"msg_input_id": Protocol.input(2, 1234.5, 17),
		"msg_input_name": Protocol.input("jump", 1301.25, 18),
		"msg_event": Protocol.event(3, "weather_snow", ""),
		"msg_event_text": Protocol.event(4, "", "make it snow"),
		"msg_reset": Protocol.reset(5, {"seed": 8, "text": "a forest"}),
		"msg_branch": Protocol.branch(6, 30),
		"msg_edit": Protocol.edit(13, PNG_RGBA_2X2.hex_decode(), -40, 12),
		"msg_settings":
		Protocol.settings(
			7, {"steps": 8, "temperature": 0.9, "cfg": 1.5, "fps": 30, "mode": "step"}
		),
		"msg_settings_event_cfg": Protocol.settings(14, {"event_cfg": 2.5}),
		"msg_settings_sampling": Protocol.settings(15, {"unmask": "confidence", "top_p": 0.9}),
		"msg_record_start": Protocol.record_start(8, "demo.wbrec"),
		"msg_record_stop": Protocol.record_stop(9),
		"msg_status_request": Protocol.status(10),
		"msg_ping": Protocol.ping(11, 5000.5),
		"msg_bye": Protocol.bye(),
	}
	var found := 0
	for vec in vectors:
		if not built.has(vec["name"]):
			continue
		found += 1
		var encoded := MsgPack.encode(built[vec["name"]])
		var expected: PackedByteArray = String(vec["hex"]).hex_decode()
		_check(
			encoded["bytes"] == expected,
			(
				"%s: builder gives %s, vector is %s"
				% [vec["name"], _short_hex(encoded["bytes"]), _short_hex(expected)]
			)
		)
	_check(found == built.size(), "only %d of %d builder vectors found" % [found, built.size()])


## WorldBridgeClient reads the 1.1 messages of the vectors: session.capabilities (and a 1.0
## session without them), the answer to an edit, and the `unsupported` error.
func test_client_reads_1_1_messages(vectors: Array) -> void:
	var by_name := {}
	for vec in vectors:
		by_name[vec["name"]] = untag(vec["value"])
	for name in ["msg_welcome", "msg_session", "msg_session_caps", "msg_ok_edit"]:
		if not by_name.has(name):
			_check(false, "vector %s is missing" % name)
			return
	var client := Client.new()
	var seen := {"errors": [], "edits": [], "refused_events": []}
	client.error_received.connect(
		func(code: String, _message: String, _fatal: bool) -> void: seen["errors"].append(code)
	)
	client.edit_applied.connect(
		func(epoch: int, frame_index: int) -> void: seen["edits"].append([epoch, frame_index])
	)
	client.event_refused.connect(
		func(req: int, event_type: String, text: String, _message: String) -> void:
			seen["refused_events"].append([req, event_type, text])
	)
	client.welcome = by_name["msg_welcome"]
	var caps: Array = by_name["msg_session_caps"]["capabilities"]
	client.session = by_name["msg_session_caps"]
	for cap in Protocol.SESSION_CAPABILITIES:
		_check(client.has_capability(cap) == (cap in caps), "session_caps: %s" % cap)
	_check(client.has_capability("record"), "host features come from the welcome")
	# The sandbox as a host sends it: no image prompt, no edit.
	client.session = by_name["msg_session"]
	_check(client.has_capability("sketch_prompt"), "the sandbox takes sketches")
	_check(not client.has_capability("image_prompt"), "the sandbox takes no image prompt")
	_check(not client.has_capability("edit"), "the sandbox cannot edit")
	# A 1.0 host: no session.capabilities, a welcome without text_events and edit.
	var old_welcome: Dictionary = by_name["msg_welcome"].duplicate()
	old_welcome["protocol_minor"] = 0
	old_welcome["capabilities"] = ["realtime", "step", "events", "text_prompt", "image_prompt"]
	client.welcome = old_welcome
	var old_session: Dictionary = by_name["msg_session"].duplicate()
	old_session.erase("capabilities")  # a 1.0 host sends no key at all
	client.session = old_session
	_check(client.has_capability("events") and client.has_capability("text_events"), "1.0 events")
	_check(client.has_capability("image_prompt"), "1.0 host: what its welcome offers is allowed")
	_check(not client.has_capability("edit"), "a 1.0 host has no edit")
	_check(not client.has_capability("sketch_prompt"), "1.0 host without sketch_prompt")
	client._dispatch(by_name["msg_ok_edit"])
	_check(same(seen["edits"], [[2, 42]]), "ok edit emits edit_applied(epoch, frame_index)")
	_check(client._epoch == 2, "ok edit adopts the new epoch")
	if by_name.has("msg_error_unsupported"):
		client._dispatch(by_name["msg_error_unsupported"])
		_check(same(seen["errors"], ["unsupported"]), "unsupported reaches error_received")
	else:
		_check(false, "vector msg_error_unsupported is missing")
	if by_name.has("msg_error_event_refused"):
		client._dispatch(by_name["msg_error_event_refused"])
		var refused_event: Array = seen["refused_events"]
		_check(same(refused_event, [[16, "weather_snow", ""]]), "a refused event names itself")
	else:
		_check(false, "vector msg_error_event_refused is missing")
	client.free()


## Greeting, READY, short/long/multipart frames and PING/PONG against zmtp.json.
func test_zmtp_vectors(vectors: Array) -> void:
	var by_name := {}
	for vec in vectors:
		by_name[vec["name"]] = String(vec["hex"]).hex_decode()
	_check(Zmtp.greeting() == by_name["greeting_client"], "greeting differs from greeting_client")
	_check(Zmtp.check_greeting(by_name["greeting_client"]) == "", "own greeting rejected")
	_check(Zmtp.check_greeting(by_name["greeting_libzmq"]) == "", "libzmq 3.1 greeting rejected")
	var ready := Zmtp.encode_command("READY", Zmtp.encode_properties({"Socket-Type": "DEALER"}))
	_check(ready == by_name["ready_dealer"], "READY differs from ready_dealer")
	var props := {"Socket-Type": "DEALER", "Identity": "abc", "X-Client": "unity/0.1.0"}
	var ready_x := Zmtp.encode_command("READY", Zmtp.encode_properties(props))
	_check(
		ready_x == by_name["ready_dealer_identity_x"], "READY differs from ready_dealer_identity_x"
	)
	var router := _frames(by_name["ready_router_libzmq"])
	_check(router.size() == 1 and router[0]["flags"] & Zmtp.FLAG_COMMAND, "router READY frame")
	if router.size() == 1:
		var cmd := Zmtp.split_command(router[0]["body"])
		var parsed := Zmtp.decode_properties(cmd["data"])
		_check(cmd["name"] == "READY" and parsed["error"] == "", "router READY parse")
		var peer: Dictionary = parsed["properties"]
		_check(peer.size() == 2 and peer["Socket-Type"].get_string_from_ascii() == "ROUTER", "type")
		_check(peer.has("Identity") and peer["Identity"].is_empty(), "empty Identity")
	for name in ["frame_empty", "frame_short_255", "frame_long_256", "multipart_more_long"]:
		var frames := _frames(by_name[name])
		var again := PackedByteArray()
		for i in range(frames.size()):
			var more: bool = frames[i]["flags"] & Zmtp.FLAG_MORE != 0
			again.append_array(Zmtp.encode_frame(frames[i]["body"], more, false))
		_check(again == by_name[name], "%s does not re-encode to the same bytes" % name)
	var small := _frames(by_name["frame_long_small"])
	_check(small.size() == 1 and small[0]["body"].get_string_from_ascii() == "abc", "long small")
	var hello := _frames(by_name["frame_short_hello"])
	_check(hello.size() == 1, "frame_short_hello")
	if hello.size() == 1:
		var hello_msg: Variant = MsgPack.decode(hello[0]["body"])["value"]
		_check(same(hello_msg, Protocol.hello("unity/0.1.0", ["raw", "png"])), "hello frame body")
	var pixels := _frames(by_name["multipart_frame_raw_64x64"])
	_check(pixels.size() == 2 and pixels[0]["flags"] == 1 and pixels[1]["flags"] == 2, "multipart")
	if pixels.size() == 2:
		var header: Variant = MsgPack.decode(pixels[0]["body"])["value"]
		_check(typeof(header) == TYPE_DICTIONARY and header["type"] == "frame", "frame header")
		_check(
			pixels[1]["body"].size() == 64 * 64 * 3 and pixels[1]["body"][300] == 300 % 256, "px"
		)
	_check_pong(by_name["ping_libzmq"], by_name["pong_libzmq"], "ping_libzmq")
	_check_pong(by_name["ping_ttl_context"], by_name["pong_ttl_context"], "ping_ttl_context")
	var guard := Zmtp.read_frame(by_name["frame_long_256"], 0, 255)
	_check(guard["status"] == "error", "a 256-byte frame passes a 255-byte size guard")
	var partial := Zmtp.read_frame(by_name["frame_long_256"].slice(0, 100), 0, 1024)
	_check(partial["status"] == "partial", "a cut frame is not reported partial")


## Bad input gets a clear error instead of a crash or a wrong value.
func test_msgpack_errors() -> void:
	var cases := {
		"c1": "ext/timestamp",  # never-used type byte
		"d9": "truncated",  # str8 without its length
		"a5616263": "truncated",  # fixstr of 5 with 3 bytes
		"dc0010": "cannot fit",  # array16 of 16 items with no items
		"c0c0": "trailing",  # two values
		"c70101ff": "ext/timestamp",
	}
	for hex in cases:
		var result := MsgPack.decode(String(hex).hex_decode())
		_check(
			String(result["error"]).contains(cases[hex]), "%s: got '%s'" % [hex, result["error"]]
		)
	var nested: Variant = []
	for i in range(40):
		nested = [nested]
	_check(MsgPack.encode(nested)["error"].contains("deeper"), "deep nesting not refused")
	_check(MsgPack.encode({"v": Vector2(1, 2)})["error"].contains("Vector2"), "Vector2 not refused")
	var float_int := MsgPack.encode(Protocol.start(1, {"fps": 30}))
	var start: Variant = MsgPack.decode(float_int["bytes"])["value"]
	_check(
		typeof(start) == TYPE_DICTIONARY and typeof(start["fps"]) == TYPE_FLOAT,
		"fps given as int must go out as float64"
	)


func test_endpoints() -> void:
	var ok := Zmtp.parse_endpoint("tcp://127.0.0.1:5555")
	_check(ok["error"] == "" and ok["host"] == "127.0.0.1" and ok["port"] == 5555, "tcp endpoint")
	var v6 := Zmtp.parse_endpoint("tcp://[::1]:6000")
	_check(v6["host"] == "::1" and v6["port"] == 6000, "IPv6 endpoint")
	for bad in ["ipc:///tmp/x", "tcp://127.0.0.1", "tcp://127.0.0.1:0", "tcp://*:5555", "nonsense"]:
		_check(Zmtp.parse_endpoint(bad)["error"] != "", "%s should be refused" % bad)
	_check(Zmtp.dial_address("LocalHost") == "127.0.0.1", "localhost dials IPv4")
	_check(Zmtp.dial_address("::1") == "::1", "other hosts dial as given")


# --- Helpers ---


## Tagged JSON -> Variant: {"$f64": x} float, {"$bin": hex} bytes, other numbers int.
## Godot's JSON parses every number as float; integers are restored here.
static func untag(value: Variant) -> Variant:
	match typeof(value):
		TYPE_FLOAT:
			if value >= -INT_LIMIT and value < INT_LIMIT and value == floorf(value):
				return int(value)
			return value
		TYPE_ARRAY:
			var out := []
			for item in value:
				out.append(untag(item))
			return out
		TYPE_DICTIONARY:
			if value.size() == 1 and value.has("$f64"):
				return float(value["$f64"])
			if value.size() == 1 and value.has("$bin"):
				return String(value["$bin"]).hex_decode()
			var map := {}
			for key in value:
				map[key] = untag(value[key])
			return map
	return value


## Equality that also checks types (1 != 1.0) and map key order, like the Python tests.
static func same(a: Variant, b: Variant) -> bool:
	if typeof(a) != typeof(b):
		return false
	match typeof(a):
		TYPE_ARRAY:
			if a.size() != b.size():
				return false
			for i in range(a.size()):
				if not same(a[i], b[i]):
					return false
			return true
		TYPE_DICTIONARY:
			if a.keys() != b.keys():
				return false
			for key in a:
				if not same(a[key], b[key]):
					return false
			return true
	return a == b


## False for tagged values GDScript cannot hold: a plain (integer) JSON number of 2^63 or more,
## i.e. a uint64 above 2^63-1, which decodes as a float because GDScript ints are signed 64-bit.
static func representable(tagged: Variant) -> bool:
	match typeof(tagged):
		TYPE_FLOAT:
			return tagged >= -INT_LIMIT and tagged < INT_LIMIT
		TYPE_ARRAY:
			for item in tagged:
				if not representable(item):
					return false
		TYPE_DICTIONARY:
			if tagged.size() == 1 and (tagged.has("$f64") or tagged.has("$bin")):
				return true
			for key in tagged:
				if not representable(tagged[key]):
					return false
	return true


func _check_pong(ping: PackedByteArray, pong: PackedByteArray, name: String) -> void:
	var socket := Zmtp.new()
	socket.state = Zmtp.State.OPEN
	var frames := _frames(ping)
	_check(frames.size() == 1, "%s: one command frame" % name)
	if frames.size() == 1:
		socket._on_command(frames[0]["body"])
		_check(socket._tx == pong and socket.pings_answered == 1, "%s: wrong PONG" % name)


func _frames(data: PackedByteArray) -> Array:
	var frames := []
	var pos := 0
	while pos < data.size():
		var frame := Zmtp.read_frame(data, pos, 1 << 30)
		if frame["status"] != "ok":
			_check(false, "frame at %d: %s" % [pos, frame.get("error", "cut off")])
			break
		frames.append(frame)
		pos = frame["next"]
	return frames


func _load_json(path: String) -> Variant:
	if not FileAccess.file_exists(path):
		_check(false, "no vector file at %s: pass --vectors=<repo>/docs/protocol/vectors" % path)
		return null
	var parsed: Variant = JSON.parse_string(FileAccess.get_file_as_string(path))
	_check(parsed != null, "%s is not valid JSON" % path)
	return parsed


func _check(condition: bool, message: String) -> void:
	if condition:
		passed += 1
	else:
		failures.append(message)


static func _short_hex(data: PackedByteArray) -> String:
	var text := data.hex_encode()
	return text if text.length() <= 64 else text.substr(0, 64) + "..."
