@tool
class_name WorldBridgeZmtp
extends RefCounted
## A ZMTP 3.0 DEALER (NULL security) on StreamPeerTCP, driven by poll() from _process.
##
## No pure-GDScript ZeroMQ exists and native GDExtensions need per-platform binaries, so this
## speaks the wire protocol itself: 64-byte greeting, READY handshake with any property list,
## short and long frames, multipart messages, PING -> PONG, a frame-size guard, and reconnects
## with exponential backoff. It never blocks and never loops per byte over frame bodies.

## Emitted when the handshake completes; `peer_properties` holds the host's READY properties.
signal opened(peer_properties: Dictionary)
## Emitted when an open or opening connection is lost; a reconnect follows if enabled.
signal closed(reason: String)

enum State { IDLE, WAITING, CONNECTING, GREETING, HANDSHAKE, OPEN }

const Protocol := preload("protocol.gd")  # plural(): "1 byte", "2 bytes"

const FLAG_MORE := 1
const FLAG_LONG := 2
const FLAG_COMMAND := 4
const GREETING_SIZE := 64
const MAX_SHORT := 255
const PEER_TYPES := ["ROUTER", "DEALER", "REP"]

## Extra READY properties (name -> String or PackedByteArray), e.g. {"X-Client": "godot"}.
var properties := {}
## Reconnect after a lost connection, waiting backoff_initial_s, doubling up to backoff_max_s.
var reconnect := true
var backoff_initial_s := 0.25
var backoff_max_s := 8.0
var connect_timeout_s := 3.0
var handshake_timeout_s := 3.0
## Incoming frames larger than this close the connection (a garbage size means a wrong peer).
var max_frame_bytes := 64 * 1024 * 1024
## Outgoing bytes allowed to wait for the socket before send() refuses more.
var max_pending_bytes := 64 * 1024 * 1024
var max_parts := 16

var state: State = State.IDLE
var host := ""
var port := 0
var last_error := ""
var peer_properties := {}
var pings_answered := 0
var connects := 0

var _tcp: StreamPeerTCP = null
var _rx := PackedByteArray()
var _tx := PackedByteArray()
var _parts: Array = []
var _inbox: Array = []
var _wanted := false
var _backoff_s := 0.25
var _deadline_ms := 0
var _retry_at_ms := 0
var _now_ms := 0


## Starts connecting to "tcp://host:port"; returns OK or ERR_INVALID_PARAMETER (see last_error).
func open(endpoint: String, now_ms: int = -1) -> Error:
	var parsed := parse_endpoint(endpoint)
	if parsed["error"] != "":
		last_error = parsed["error"]
		return ERR_INVALID_PARAMETER
	host = parsed["host"]
	port = parsed["port"]
	_wanted = true
	_backoff_s = backoff_initial_s
	_now_ms = _clock(now_ms)
	_start_connect()
	return OK


## Closes the connection for good (no reconnect) and drops queued messages.
func close() -> void:
	_wanted = false
	_drop_socket()
	_inbox.clear()
	state = State.IDLE


## Drops the connection as if it were lost (closed is emitted; a reconnect follows if enabled).
func drop(reason: String) -> void:
	if state != State.IDLE:
		_fail(reason)


func is_open() -> bool:
	return state == State.OPEN


## Drives connect, handshake, reads and writes; call once per frame. `now_ms` is for tests.
func poll(now_ms: int = -1) -> void:
	_now_ms = _clock(now_ms)
	if state == State.IDLE:
		return
	if state == State.WAITING:
		if _now_ms >= _retry_at_ms:
			_start_connect()
		return
	_tcp.poll()
	var status := _tcp.get_status()
	if state == State.CONNECTING:
		if status == StreamPeerTCP.STATUS_CONNECTING:
			if _now_ms > _deadline_ms:
				_fail("no answer from %s:%d within %.1f s" % [host, port, connect_timeout_s])
			return
		if status != StreamPeerTCP.STATUS_CONNECTED:
			_fail("cannot connect to %s:%d: is `worldbridge serve` running there?" % [host, port])
			return
		_tcp.set_no_delay(true)
		_tx = greeting()
		state = State.GREETING
		_deadline_ms = _now_ms + int(handshake_timeout_s * 1000.0)
	if status != StreamPeerTCP.STATUS_CONNECTED:
		_fail("the host at %s:%d closed the connection" % [host, port])
		return
	if state != State.OPEN and _now_ms > _deadline_ms:
		_fail(
			"no ZMTP handshake from %s:%d: is it a WorldBridge host (ZeroMQ ROUTER)?" % [host, port]
		)
		return
	if _read_socket():
		_process_rx()
	if state != State.IDLE and state != State.WAITING:
		_flush()


## Queues one multipart message (Array of PackedByteArray); ERR_UNAVAILABLE until open.
func send(parts: Array) -> Error:
	if state != State.OPEN:
		return ERR_UNAVAILABLE
	if parts.is_empty():
		return ERR_INVALID_PARAMETER
	var out := PackedByteArray()
	for i in range(parts.size()):
		var part: PackedByteArray = parts[i]
		out.append_array(encode_frame(part, i < parts.size() - 1, false))
	if _tx.size() + out.size() > max_pending_bytes:
		last_error = (
			"send queue would exceed %s: the host is not reading"
			% Protocol.plural(max_pending_bytes, "byte")
		)
		return ERR_OUT_OF_MEMORY
	_tx.append_array(out)
	_flush()
	return OK


## The next received multipart message (Array of PackedByteArray), or [] when none is waiting.
func receive() -> Array:
	if _inbox.is_empty():
		return []
	return _inbox.pop_front()


# --- Wire format (pure functions, held to docs/protocol/vectors/zmtp.json) ---


## What a client sends first: FF, 8 zero bytes, 7F, version 3.0, "NULL" padded to 20, as-server 0.
static func greeting() -> PackedByteArray:
	var g := PackedByteArray()
	g.resize(GREETING_SIZE)
	g.fill(0)
	g[0] = 0xff
	g[9] = 0x7f
	g[10] = 3
	var mechanism := "NULL".to_ascii_buffer()
	for i in range(mechanism.size()):  # 4 header bytes
		g[12 + i] = mechanism[i]
	return g


## "" when `g` is a ZMTP >= 3.0 NULL greeting (libzmq sends 3.1), else what is wrong.
static func check_greeting(g: PackedByteArray) -> String:
	if g.size() < GREETING_SIZE or g[0] != 0xff or (g[9] & 1) == 0:
		return "the peer is not speaking ZMTP (bad signature): is this a WorldBridge host?"
	if g[10] < 3:
		return "the peer speaks ZMTP %d.%d; 3.0 or newer is needed" % [g[10], g[11]]
	var mechanism := g.slice(12, 32).get_string_from_ascii()
	if mechanism != "NULL":
		return (
			"the host uses the %s security mechanism; this client speaks NULL (loopback only)"
			% mechanism
		)
	return ""


## One frame: flags (MORE, LONG, COMMAND), 1-byte or 8-byte big-endian size, body.
static func encode_frame(body: PackedByteArray, more: bool, command: bool) -> PackedByteArray:
	var head := StreamPeerBuffer.new()
	head.big_endian = true
	var flags := (FLAG_MORE if more else 0) | (FLAG_COMMAND if command else 0)
	if body.size() > MAX_SHORT:
		head.put_u8(flags | FLAG_LONG)
		head.put_u64(body.size())
	else:
		head.put_u8(flags)
		head.put_u8(body.size())
	var out := head.data_array
	out.append_array(body)
	return out


static func encode_command(name: String, data: PackedByteArray) -> PackedByteArray:
	var body := PackedByteArray([name.length()])
	body.append_array(name.to_ascii_buffer())
	body.append_array(data)
	return encode_frame(body, false, true)


## READY/metadata properties: 1-byte name length, name, 4-byte big-endian value length, value.
static func encode_properties(props: Dictionary) -> PackedByteArray:
	var buf := StreamPeerBuffer.new()
	buf.big_endian = true
	for key in props:
		var name: PackedByteArray = String(key).to_ascii_buffer()
		var value: Variant = props[key]
		var bytes: PackedByteArray = (
			value if typeof(value) == TYPE_PACKED_BYTE_ARRAY else String(value).to_utf8_buffer()
		)
		buf.put_u8(name.size())
		buf.put_data(name)
		buf.put_u32(bytes.size())
		buf.put_data(bytes)
	return buf.data_array


## Parses any property list: {"properties": {name: PackedByteArray}, "error": String}.
static func decode_properties(data: PackedByteArray) -> Dictionary:
	var props := {}
	var buf := StreamPeerBuffer.new()
	buf.big_endian = true
	buf.data_array = data
	while buf.get_available_bytes() > 0:
		var name_size := buf.get_u8()
		if buf.get_available_bytes() < name_size + 4:
			return {"properties": props, "error": "a READY property name is cut off"}
		var name_bytes: PackedByteArray = buf.get_data(name_size)[1]
		var value_size := buf.get_u32()
		if buf.get_available_bytes() < value_size:
			return {"properties": props, "error": "a READY property value is cut off"}
		props[name_bytes.get_string_from_ascii()] = buf.get_data(value_size)[1]
	return {"properties": props, "error": ""}


## Reads one frame at `offset`:
## {"status": "ok"|"partial"|"error", "flags", "body", "next", "error"}.
static func read_frame(data: PackedByteArray, offset: int, max_bytes: int) -> Dictionary:
	var avail := data.size() - offset
	if avail < 2:
		return {"status": "partial"}
	var flags: int = data[offset]
	var head := 2
	var size: int = data[offset + 1]
	if flags & FLAG_LONG:
		head = 9
		if avail < head:
			return {"status": "partial"}
		size = 0
		for i in range(8):  # 8 header bytes, never the body
			size = (size << 8) | data[offset + 1 + i]
	if size < 0 or size > max_bytes:
		return {
			"status": "error",
			"error": "a %s-byte frame exceeds the %d-byte limit" % [str(size), max_bytes],
		}
	if avail < head + size:
		return {"status": "partial"}
	var start := offset + head
	return {
		"status": "ok",
		"flags": flags,
		"body": data.slice(start, start + size),
		"next": start + size,
	}


## Splits a command body into {"name": String, "data": PackedByteArray}.
static func split_command(body: PackedByteArray) -> Dictionary:
	if body.is_empty() or body[0] + 1 > body.size():
		return {"name": "", "data": PackedByteArray()}
	var n: int = body[0]
	return {"name": body.slice(1, 1 + n).get_string_from_ascii(), "data": body.slice(1 + n)}


## "tcp://host:port" (or "host:port") -> {"host", "port", "error"}.
static func parse_endpoint(endpoint: String) -> Dictionary:
	var rest := endpoint.strip_edges()
	var bad := {"host": "", "port": 0}
	if rest.begins_with("tcp://"):
		rest = rest.substr(6)
	elif rest.contains("://"):
		bad["error"] = "endpoint %s: only tcp:// is supported, e.g. tcp://127.0.0.1:5555" % endpoint
		return bad
	var colon := rest.rfind(":")
	var port_text := rest.substr(colon + 1) if colon > 0 else ""
	if not port_text.is_valid_int() or port_text.to_int() < 1 or port_text.to_int() > 65535:
		bad["error"] = "endpoint %s needs a port 1-65535, e.g. tcp://127.0.0.1:5555" % endpoint
		return bad
	var host_text := rest.substr(0, colon).trim_prefix("[").trim_suffix("]")
	if host_text == "" or host_text == "*":
		bad["error"] = "endpoint %s needs a host name or address to connect to" % endpoint
		return bad
	return {"host": host_text, "port": port_text.to_int(), "error": ""}


## The address to dial for `host_name`: "localhost" is 127.0.0.1, where `worldbridge serve`
## listens, since Windows and macOS often resolve the name to ::1 first, which the host refuses.
static func dial_address(host_name: String) -> String:
	return "127.0.0.1" if host_name.to_lower() == "localhost" else host_name


# --- State machine ---


func _start_connect() -> void:
	_drop_socket()
	_tcp = StreamPeerTCP.new()
	var err := _tcp.connect_to_host(dial_address(host), port)
	connects += 1
	if err != OK:
		_fail("cannot start a connection to %s:%d (error %d)" % [host, port, err])
		return
	state = State.CONNECTING
	_deadline_ms = _now_ms + int(connect_timeout_s * 1000.0)


func _read_socket() -> bool:
	var avail := _tcp.get_available_bytes()
	if avail <= 0:
		return true
	var got: Array = _tcp.get_partial_data(avail)
	if got[0] != OK:
		_fail("reading from %s:%d failed (error %d)" % [host, port, got[0]])
		return false
	_rx.append_array(got[1])
	return true


func _process_rx() -> void:
	if state == State.GREETING:
		if _rx.size() < GREETING_SIZE:
			return
		var problem := check_greeting(_rx.slice(0, GREETING_SIZE))
		if problem != "":
			_fail(problem)
			return
		_rx = _rx.slice(GREETING_SIZE)
		var props := {"Socket-Type": "DEALER"}
		props.merge(properties)
		_tx.append_array(encode_command("READY", encode_properties(props)))
		state = State.HANDSHAKE
	var pos := 0
	while state == State.HANDSHAKE or state == State.OPEN:
		var frame := read_frame(_rx, pos, max_frame_bytes)
		if frame["status"] == "partial":
			break
		if frame["status"] == "error":
			_fail(frame["error"])
			return
		pos = frame["next"]
		if frame["flags"] & FLAG_COMMAND:
			_on_command(frame["body"])
		elif state != State.OPEN:
			_fail("the host sent a message before its READY: not a ZMTP 3 peer")
		else:
			_on_message_frame(frame["body"], (frame["flags"] & FLAG_MORE) != 0)
	if pos > 0 and (state == State.HANDSHAKE or state == State.OPEN):
		_rx = _rx.slice(pos)


func _on_command(body: PackedByteArray) -> void:
	var cmd := split_command(body)
	var name: String = cmd["name"]
	var data: PackedByteArray = cmd["data"]
	if name == "READY" and state == State.HANDSHAKE:
		var parsed := decode_properties(data)
		if parsed["error"] != "":
			_fail(parsed["error"])
			return
		peer_properties = parsed["properties"]
		var peer_type := ""
		if peer_properties.has("Socket-Type"):
			var type_bytes: PackedByteArray = peer_properties["Socket-Type"]
			peer_type = type_bytes.get_string_from_ascii()
		if not peer_type in PEER_TYPES:
			_fail("the peer is a ZeroMQ %s socket; a DEALER needs a ROUTER host" % peer_type)
			return
		state = State.OPEN
		_backoff_s = backoff_initial_s
		opened.emit(peer_properties)
	elif name == "PING" and state == State.OPEN:
		# PING = TTL (2 bytes) + context (0-16 bytes); PONG echoes the context.
		_tx.append_array(
			encode_command("PONG", data.slice(2) if data.size() > 2 else PackedByteArray())
		)
		pings_answered += 1
	elif name == "ERROR":
		var reason := data.slice(1).get_string_from_utf8() if data.size() > 0 else ""
		_fail("the host refused the ZMTP handshake: %s" % reason)
	elif state == State.HANDSHAKE:
		_fail("expected READY from the host, got %s" % name)


func _on_message_frame(body: PackedByteArray, more: bool) -> void:
	_parts.append(body)
	if more and _parts.size() >= max_parts:
		_fail("a message with more than %d parts: not a WorldBridge host" % max_parts)
		return
	if not more:
		_inbox.append(_parts)
		_parts = []


func _flush() -> void:
	if _tx.is_empty() or _tcp == null:
		return
	var result: Array = _tcp.put_partial_data(_tx)
	if result[0] != OK:
		_fail("writing to %s:%d failed (error %d)" % [host, port, result[0]])
		return
	var sent: int = result[1]
	_tx = _tx.slice(sent) if sent < _tx.size() else PackedByteArray()


func _fail(reason: String) -> void:
	last_error = reason
	_drop_socket()
	if _wanted and reconnect:
		state = State.WAITING
		_retry_at_ms = _now_ms + int(_backoff_s * 1000.0)
		_backoff_s = minf(_backoff_s * 2.0, backoff_max_s)
	else:
		state = State.IDLE
	closed.emit(reason)


func _drop_socket() -> void:
	if _tcp != null:
		_tcp.disconnect_from_host()
	_tcp = null
	_rx = PackedByteArray()
	_tx = PackedByteArray()
	_parts = []
	peer_properties = {}


func _clock(now_ms: int) -> int:
	return now_ms if now_ms >= 0 else Time.get_ticks_msec()
