@tool
extends RefCounted
## The host's max_message_bytes, checked before a message goes out, so the error names what to
## shrink instead of the host dropping the connection.

## What a host whose welcome states no limit takes.
const DEFAULT_MAX_BYTES := 16 * 1024 * 1024


## Why `msg`, encoded as `size` bytes, is too big for the host that sent `welcome`; "" if it fits.
static func problem(msg: Dictionary, size: int, welcome: Dictionary) -> String:
	var limits: Variant = welcome.get("limits", {})
	var limit := DEFAULT_MAX_BYTES
	if typeof(limits) == TYPE_DICTIONARY and typeof(limits.get("max_message_bytes")) == TYPE_INT:
		limit = limits["max_message_bytes"]
	if size <= limit:
		return ""
	return (
		"%s message of %d bytes is over the host's %d-byte limit: %s"
		% [msg["type"], size, limit, _advice(msg)]
	)


## What to shrink in a message over the host's limit: its biggest image, sketch, layer or text, so
## a long text prompt is not blamed on an image.
static func _advice(msg: Dictionary) -> String:
	var biggest := ""
	var most := 0
	for key in ["image", "sketch", "layer", "text"]:
		var value: Variant = msg.get(key)
		var size := 0
		if typeof(value) == TYPE_PACKED_BYTE_ARRAY:
			size = value.size()
		elif typeof(value) == TYPE_STRING:
			size = value.to_utf8_buffer().size()
		if size > most:
			biggest = key
			most = size
	if biggest == "":
		return "start the host with a larger `worldbridge serve --max-message-bytes`"
	var advice := (
		"its %s is %d bytes: use a %s %s"
		% [biggest, most, "shorter" if biggest == "text" else "smaller", biggest]
	)
	return advice + (" (object_layer() scales one down)" if biggest == "layer" else "")
