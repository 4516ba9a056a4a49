@tool
class_name WorldBridgeMsgPack
extends RefCounted
## msgpack codec pinned to the WorldBridge encoding rules (docs/protocol.md §2).
##
## Godot has no msgpack, and every client must match the golden vectors byte for byte:
## non-negative ints use the smallest unsigned form, negative ints the smallest signed form,
## floats are always float64, str/bin/array/map use their smallest length class.
## Bytes move with StreamPeerBuffer (big_endian) put_data/get_data, never one byte at a time.

const Protocol := preload("protocol.gd")  # plural(): error counts read "1 byte", "2 bytes"

const MAX_DEPTH := 32
const UINT64_WRAP := 18446744073709551616.0

const NIL_BYTE := 0xc0
const FALSE_BYTE := 0xc2
const TRUE_BYTE := 0xc3
const BIN8 := 0xc4
const BIN16 := 0xc5
const BIN32 := 0xc6
const FLOAT32 := 0xca
const FLOAT64 := 0xcb
const UINT8 := 0xcc
const UINT16 := 0xcd
const UINT32 := 0xce
const UINT64 := 0xcf
const INT8 := 0xd0
const INT16 := 0xd1
const INT32 := 0xd2
const INT64 := 0xd3
const STR8 := 0xd9
const STR16 := 0xda
const STR32 := 0xdb
const ARRAY16 := 0xdc
const ARRAY32 := 0xdd
const MAP16 := 0xde
const MAP32 := 0xdf


## Encodes a Variant (null, bool, int, float, String, StringName, PackedByteArray, Array,
## Dictionary, packed numeric/string arrays). Returns {"bytes": PackedByteArray, "error": String}.
static func encode(value: Variant) -> Dictionary:
	var buf := StreamPeerBuffer.new()
	buf.big_endian = true
	var error := _write(buf, value, 0, "value")
	if error != "":
		return {"bytes": PackedByteArray(), "error": error}
	return {"bytes": buf.data_array, "error": ""}


## Decodes exactly one msgpack value filling all of `data`.
## Returns {"value": Variant, "error": String}; uint64 above 2^63-1 decodes as float.
static func decode(data: PackedByteArray) -> Dictionary:
	var buf := StreamPeerBuffer.new()
	buf.big_endian = true
	buf.data_array = data
	var state := {"error": ""}
	var value: Variant = _read(buf, state, 0)
	if state["error"] == "" and buf.get_available_bytes() > 0:
		state["error"] = (
			"%s after the msgpack value: send one value per frame"
			% Protocol.plural(buf.get_available_bytes(), "trailing byte")
		)
	if state["error"] != "":
		return {"value": null, "error": "msgpack: " + state["error"]}
	return {"value": value, "error": ""}


# --- Encode ---


static func _write(buf: StreamPeerBuffer, value: Variant, depth: int, where: String) -> String:
	if depth > MAX_DEPTH:
		return "msgpack: %s nests deeper than %d levels" % [where, MAX_DEPTH]
	var error := ""
	match typeof(value):
		TYPE_NIL:
			buf.put_u8(NIL_BYTE)
		TYPE_BOOL:
			buf.put_u8(TRUE_BYTE if value else FALSE_BYTE)
		TYPE_INT:
			_write_int(buf, value)
		TYPE_FLOAT:
			buf.put_u8(FLOAT64)
			buf.put_double(value)
		TYPE_STRING, TYPE_STRING_NAME:
			_write_str(buf, String(value).to_utf8_buffer())
		TYPE_PACKED_BYTE_ARRAY:
			_write_bin(buf, value)
		TYPE_ARRAY:
			error = _write_array(buf, value, depth, where)
		TYPE_DICTIONARY:
			error = _write_map(buf, value, depth, where)
		TYPE_PACKED_INT32_ARRAY, TYPE_PACKED_INT64_ARRAY, TYPE_PACKED_FLOAT32_ARRAY:
			error = _write_array(buf, Array(value), depth, where)
		TYPE_PACKED_FLOAT64_ARRAY, TYPE_PACKED_STRING_ARRAY:
			error = _write_array(buf, Array(value), depth, where)
		_:
			error = (
				(
					"msgpack: cannot encode %s at %s: convert it to int, float, String, "
					+ "PackedByteArray, Array or Dictionary first"
				)
				% [type_string(typeof(value)), where]
			)
	return error


static func _write_int(buf: StreamPeerBuffer, n: int) -> void:
	if n >= 0:
		if n <= 0x7f:
			buf.put_u8(n)
		elif n <= 0xff:
			buf.put_u8(UINT8)
			buf.put_u8(n)
		elif n <= 0xffff:
			buf.put_u8(UINT16)
			buf.put_u16(n)
		elif n <= 0xffffffff:
			buf.put_u8(UINT32)
			buf.put_u32(n)
		else:
			buf.put_u8(UINT64)
			buf.put_u64(n)
	elif n >= -32:
		buf.put_8(n)
	elif n >= -128:
		buf.put_u8(INT8)
		buf.put_8(n)
	elif n >= -32768:
		buf.put_u8(INT16)
		buf.put_16(n)
	elif n >= -2147483648:
		buf.put_u8(INT32)
		buf.put_32(n)
	else:
		buf.put_u8(INT64)
		buf.put_64(n)


## The smallest header for `n` bytes or items (pinned rule): the fix form `fix | n` up to `fix_max`
## (-1: none), else the 8-, 16- or 32-bit form of `codes` (a 0 code: the type has no such form).
static func _write_length(
	buf: StreamPeerBuffer, n: int, fix: int, fix_max: int, codes: Array
) -> void:
	if n <= fix_max:
		buf.put_u8(fix | n)
	elif n <= 0xff and codes[0] != 0:
		buf.put_u8(codes[0])
		buf.put_u8(n)
	elif n <= 0xffff:
		buf.put_u8(codes[1])
		buf.put_u16(n)
	else:
		buf.put_u8(codes[2])
		buf.put_u32(n)


static func _write_str(buf: StreamPeerBuffer, utf8: PackedByteArray) -> void:
	_write_length(buf, utf8.size(), 0xa0, 31, [STR8, STR16, STR32])
	buf.put_data(utf8)


static func _write_bin(buf: StreamPeerBuffer, data: PackedByteArray) -> void:
	_write_length(buf, data.size(), 0, -1, [BIN8, BIN16, BIN32])
	buf.put_data(data)


static func _write_array(buf: StreamPeerBuffer, items: Array, depth: int, where: String) -> String:
	var n := items.size()
	_write_length(buf, n, 0x90, 15, [0, ARRAY16, ARRAY32])
	for i in range(n):
		var error := _write(buf, items[i], depth + 1, "%s[%d]" % [where, i])
		if error != "":
			return error
	return ""


static func _write_map(buf: StreamPeerBuffer, map: Dictionary, depth: int, where: String) -> String:
	_write_length(buf, map.size(), 0x80, 15, [0, MAP16, MAP32])
	for key in map:
		var error := _write(buf, key, depth + 1, "%s key" % where)
		if error == "":
			error = _write(buf, map[key], depth + 1, "%s.%s" % [where, str(key)])
		if error != "":
			return error
	return ""


# --- Decode ---


static func _read(buf: StreamPeerBuffer, state: Dictionary, depth: int) -> Variant:
	if depth > MAX_DEPTH:
		return _fail(state, "nesting deeper than %d levels" % MAX_DEPTH)
	if buf.get_available_bytes() < 1:
		return _fail(state, "truncated: a value is missing")
	var b := buf.get_u8()
	var value: Variant = null
	if b <= 0x7f:
		value = b
	elif b >= 0xe0:
		value = b - 0x100
	elif b <= 0x8f:
		value = _read_map(buf, state, b & 0x0f, depth)
	elif b <= 0x9f:
		value = _read_array(buf, state, b & 0x0f, depth)
	elif b <= 0xbf:
		value = _read_str(buf, state, b & 0x1f)
	elif b == NIL_BYTE:
		value = null
	elif b == FALSE_BYTE or b == TRUE_BYTE:
		value = b == TRUE_BYTE
	elif b >= BIN8 and b <= BIN32:
		var n := _read_length(buf, state, 1 << (b - BIN8))
		value = _read_bytes(buf, state, n)
	elif b == FLOAT32 or b == FLOAT64:
		value = _read_float(buf, state, b == FLOAT64)
	elif b >= UINT8 and b <= INT64:
		value = _read_int(buf, state, b)
	elif b >= STR8 and b <= STR32:
		value = _read_str(buf, state, _read_length(buf, state, 1 << (b - STR8)))
	elif b == ARRAY16 or b == ARRAY32:
		value = _read_array(buf, state, _read_length(buf, state, 2 if b == ARRAY16 else 4), depth)
	elif b == MAP16 or b == MAP32:
		value = _read_map(buf, state, _read_length(buf, state, 2 if b == MAP16 else 4), depth)
	else:
		value = _fail(state, "type byte 0x%02x (ext/timestamp) is not used by the protocol" % b)
	return value


## Reads a big-endian unsigned length of `width` bytes (1, 2 or 4); -1 when truncated.
static func _read_length(buf: StreamPeerBuffer, state: Dictionary, width: int) -> int:
	if state["error"] != "":
		return -1
	if buf.get_available_bytes() < width:
		_fail(state, "truncated: a %d-byte length is cut off" % width)
		return -1
	var n := 0
	if width == 1:
		n = buf.get_u8()
	elif width == 2:
		n = buf.get_u16()
	else:
		n = buf.get_u32()
	return n


static func _read_bytes(buf: StreamPeerBuffer, state: Dictionary, n: int) -> PackedByteArray:
	if n < 0 or state["error"] != "":
		return PackedByteArray()
	var left := buf.get_available_bytes()
	if left < n:
		_fail(state, "truncated: %s announced, %d left" % [Protocol.plural(n, "byte"), left])
		return PackedByteArray()
	var got: Array = buf.get_data(n)
	return got[1]


static func _read_str(buf: StreamPeerBuffer, state: Dictionary, n: int) -> String:
	var utf8 := _read_bytes(buf, state, n)
	if state["error"] != "":
		return ""
	var text := utf8.get_string_from_utf8()
	# Godot's UTF-8 parser skips a leading byte order mark: U+FEFF is part of the string here.
	if utf8.size() >= 3 and utf8[0] == 0xEF and utf8[1] == 0xBB and utf8[2] == 0xBF:
		text = char(0xFEFF) + text
	# Godot stops at a NUL and replaces invalid UTF-8: a string that does not re-encode to its
	# own bytes would arrive changed, so it is refused (as the C# decoder refuses it).
	if text.to_utf8_buffer() != utf8:
		_fail(
			state, "a %d-byte string is not valid UTF-8 or holds a NUL (Godot strings cannot)" % n
		)
		return ""
	return text


static func _read_float(buf: StreamPeerBuffer, state: Dictionary, is_double: bool) -> float:
	var width := 8 if is_double else 4
	if buf.get_available_bytes() < width:
		_fail(state, "truncated: a float is cut off")
		return 0.0
	return buf.get_double() if is_double else buf.get_float()


static func _read_int(buf: StreamPeerBuffer, state: Dictionary, b: int) -> Variant:
	var width := 1 << ((b - UINT8) % 4)
	if buf.get_available_bytes() < width:
		return _fail(state, "truncated: a %d-byte integer is cut off" % width)
	var value: Variant = 0
	match b:
		UINT8:
			value = buf.get_u8()
		UINT16:
			value = buf.get_u16()
		UINT32:
			value = buf.get_u32()
		UINT64:
			var n := buf.get_u64()
			# GDScript ints are signed 64-bit: above 2^63-1 the best we can return is a float.
			value = n if n >= 0 else float(n) + UINT64_WRAP
		INT8:
			value = buf.get_8()
		INT16:
			value = buf.get_16()
		INT32:
			value = buf.get_32()
		_:
			value = buf.get_64()
	return value


static func _read_array(buf: StreamPeerBuffer, state: Dictionary, n: int, depth: int) -> Array:
	var items := []
	if n < 0 or state["error"] != "":
		return items
	var left := buf.get_available_bytes()
	if n > left:
		var what := [Protocol.plural(n, "item"), Protocol.plural(left, "byte")]
		_fail(state, "array of %s cannot fit in %s" % what)
		return items
	items.resize(n)
	for i in range(n):
		items[i] = _read(buf, state, depth + 1)
		if state["error"] != "":
			break
	return items


static func _read_map(buf: StreamPeerBuffer, state: Dictionary, n: int, depth: int) -> Dictionary:
	var map := {}
	if n < 0 or state["error"] != "":
		return map
	var left := buf.get_available_bytes()
	if 2 * n > left:
		var what := [Protocol.plural(n, "pair"), Protocol.plural(left, "byte")]
		_fail(state, "map of %s cannot fit in %s" % what)
		return map
	for i in range(n):
		var key: Variant = _read(buf, state, depth + 1)
		if state["error"] == "" and typeof(key) != TYPE_STRING:
			_fail(state, "map key %d is not a string (protocol maps have string keys)" % i)
			break
		var value: Variant = _read(buf, state, depth + 1)
		if state["error"] != "":
			break
		map[key] = value
	return map


static func _fail(state: Dictionary, message: String) -> Variant:
	if state["error"] == "":
		state["error"] = message
	return null
