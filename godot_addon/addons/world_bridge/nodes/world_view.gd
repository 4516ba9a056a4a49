@tool
@icon("res://addons/world_bridge/icons/world_view.svg")
class_name WorldView
extends TextureRect
## Shows the generated world under the engine's own UI, with a badge naming the backend.
##
## One Image (Image.create_from_data once, then set_data) and one ImageTexture (update() per
## frame) are reused, so a frame costs one copy into the texture and no allocations.
## Clicks map to frame pixels (frame_pixel_at, frame_clicked), so a game can paste an object
## where the player clicks (paste_at, paste_at_pixel; protocol 1.1 `edit`).

## A mouse button went down over the picture: `pixel` is the frame pixel under the pointer.
signal frame_clicked(pixel: Vector2i, button_index: int)

const Protocol := preload("../core/protocol.gd")
## What frame_pixel_at() returns for a position off the picture.
const NO_PIXEL := Vector2i(-1, -1)
## This view's own stretch_mode / expand_mode.
const _DEFAULTS := {
	&"stretch_mode": TextureRect.STRETCH_KEEP_ASPECT_CENTERED,
	&"expand_mode": TextureRect.EXPAND_IGNORE_SIZE,
}
## TextureRect's: a scene saves only a mode that differs from these.
const _CLASS_DEFAULTS := {
	&"stretch_mode": TextureRect.STRETCH_SCALE,
	&"expand_mode": TextureRect.EXPAND_KEEP_SIZE,
}
## Storage-only copies of them, so a scene keeps the user's choice. Godot saves a built-in property
## only where it differs from TextureRect's default, and sets it before the script's _init, so
## _init's defaults replaced every saved mode (STRETCH_SCALE was not even saved). These have no
## default, so every save writes them, and a load sets them after _init (through _set).
const _SAVED_AS := {&"saved_stretch_mode": &"stretch_mode", &"saved_expand_mode": &"expand_mode"}

## The client whose frames to show; set it here or call show_frame() yourself.
@export var client: WorldBridgeClient:
	set = set_client
## Show which backend runs (sandbox test backend vs world model) in the top-left corner.
@export var show_backend_badge := true:
	set = set_show_backend_badge
## Pixel-art look (nearest) by default; smooth filtering when true.
@export var smooth := false:
	set = set_smooth

var frames_shown := 0
var frames_rejected := 0

var _image: Image = null
var _texture: ImageTexture = null
var _badge: Label = null
## The backend of the frame on screen (label and kind), said in its colour while its session is
## kept across a reconnect; forgotten when the session ends.
var _shown_label := ""
var _shown_kind := ""
## Why the session of the frame on screen ended ("" while one runs), said in white.
var _ended := ""
## The client this view follows (null: none) and the [signal, handler] pairs the view connected to
## it itself, so letting go never removes a connection the game made.
var _following: WorldBridgeClient = null
var _connected: Array = []


## A mode other than TextureRect's default was set by the scene being loaded (before _init), e.g.
## one saved before the saved_* copies existed: it is kept.
func _init() -> void:
	for property in _DEFAULTS:
		if get(property) == _CLASS_DEFAULTS[property]:
			set(property, _DEFAULTS[property])


## The saved copies of stretch_mode / expand_mode: storage only (not in the Inspector).
func _get_property_list() -> Array[Dictionary]:
	var properties: Array[Dictionary] = []
	for saved in _SAVED_AS:
		properties.append({"name": saved, "type": TYPE_INT, "usage": PROPERTY_USAGE_STORAGE})
	return properties


func _get(property: StringName) -> Variant:
	return get(_SAVED_AS[property]) if _SAVED_AS.has(property) else null


func _set(property: StringName, value: Variant) -> bool:
	if not _SAVED_AS.has(property):
		return false
	set(_SAVED_AS[property], value)
	return true


## The Inspector's revert arrow goes to this view's defaults, not TextureRect's.
func _property_can_revert(property: StringName) -> bool:
	return _DEFAULTS.has(property)


func _property_get_revert(property: StringName) -> Variant:
	return _DEFAULTS.get(property)


func _ready() -> void:
	set_smooth(smooth)
	_badge = Label.new()
	_badge.name = "BackendBadge"
	_badge.position = Vector2(8, 8)
	_badge.add_theme_color_override("font_outline_color", Color.BLACK)
	_badge.add_theme_constant_override("outline_size", 4)
	add_child(_badge, false, Node.INTERNAL_MODE_FRONT)
	_update_badge()


## The view follows its client while in the tree; _ready runs only once, so a view added back
## (or reparented) follows the client it was given while out of it.
func _enter_tree() -> void:
	_follow(true)


func _exit_tree() -> void:
	_follow(false)


## Another client may run another backend: its status must not sit over the old one's frame.
func set_client(value: WorldBridgeClient) -> void:
	var changed := value != client
	_follow(false)
	client = value
	_follow(is_inside_tree())
	if changed:
		_blank()
	else:
		_update_badge()


## Connects to the client's signals once (on), or undoes only what the view itself connected: a
## game's own connection of one of them (e.g. frame_received to show_frame) is left as it is. A
## freed client (a level unloaded) took its connections with it: there is nothing to undo.
func _follow(on: bool) -> void:
	if is_instance_valid(_following):
		if on and _following == client:
			return
		for pair in _connected:
			if pair[0].is_connected(pair[1]):
				pair[0].disconnect(pair[1])
	_following = null
	_connected = []
	if not on or not is_instance_valid(client):
		return
	_following = client
	for pair in _followed():
		if not pair[0].is_connected(pair[1]):
			pair[0].connect(pair[1])
			_connected.append(pair)


## The client's signals this view follows, each with its handler.
func _followed() -> Array:
	return [
		[client.frame_received, show_frame],
		[client.status_changed, _on_status_changed],
		[client.session_started, _on_session_started],
		[client.session_ended, _on_session_ended],
		[client.connection_changed, _blank],
	]


func set_show_backend_badge(value: bool) -> void:
	show_backend_badge = value
	_update_badge()


func set_smooth(value: bool) -> void:
	smooth = value
	texture_filter = (
		CanvasItem.TEXTURE_FILTER_LINEAR if smooth else CanvasItem.TEXTURE_FILTER_NEAREST
	)


## Displays one frame (header from the `frame` message, pixels from its payload part).
func show_frame(header: Dictionary, pixels: PackedByteArray) -> bool:
	var codec: String = header["codec"] if typeof(header.get("codec")) == TYPE_STRING else ""
	var width: Variant = header.get("width")
	var height: Variant = header.get("height")
	var ok := false
	if codec == "raw" and typeof(width) == TYPE_INT and typeof(height) == TYPE_INT:
		ok = _load_raw(width, height, pixels)
	elif codec == "png" or codec == "jpeg":
		ok = _load_encoded(codec, pixels)
	if not ok:
		frames_rejected += 1
		return false
	if (
		_texture == null
		or _texture.get_width() != _image.get_width()
		or _texture.get_height() != _image.get_height()
	):
		_texture = ImageTexture.create_from_image(_image)
		texture = _texture
	else:
		_texture.update(_image)
	frames_shown += 1
	if is_instance_valid(client) and client.is_in_session():
		_shown_label = client.backend_label()
		_shown_kind = client.backend_kind
	return true


## The last frame as an Image (shared, do not modify), or null before the first frame.
func get_frame_image() -> Image:
	return _image


## The frame pixel shown at `local_position` (this control's coordinates, e.g. a mouse event's
## `position` in _gui_input, or get_local_mouse_position()), for every stretch_mode and flip as
## TextureRect draws them; NO_PIXEL when that is off the picture or no frame has been shown.
func frame_pixel_at(local_position: Vector2) -> Vector2i:
	if _image == null or _image.is_empty():
		return NO_PIXEL
	var frame := Vector2(_image.get_width(), _image.get_height())
	var offset := Vector2()  # top-left corner of the drawn picture
	var drawn := size  # its size on screen
	var region_start := Vector2()  # the part of the frame it shows
	var region_size := frame
	match stretch_mode:
		TextureRect.STRETCH_TILE:
			if not Rect2(Vector2(), size).has_point(local_position):
				return NO_PIXEL
			drawn = frame
			local_position = Vector2(
				fposmod(size.x - local_position.x if flip_h else local_position.x, frame.x),
				fposmod(size.y - local_position.y if flip_v else local_position.y, frame.y)
			)
		TextureRect.STRETCH_KEEP:
			drawn = frame
		TextureRect.STRETCH_KEEP_CENTERED:
			offset = (size - frame) / 2.0
			drawn = frame
		TextureRect.STRETCH_KEEP_ASPECT, TextureRect.STRETCH_KEEP_ASPECT_CENTERED:
			# Whole screen pixels, as TextureRect computes them.
			var width := int(frame.x * size.y / frame.y)
			var height := int(size.y)
			if width > size.x:
				width = int(size.x)
				height = int(frame.y * width / frame.x)
			drawn = Vector2(width, height)
			if stretch_mode == TextureRect.STRETCH_KEEP_ASPECT_CENTERED:
				offset = (size - drawn) / 2.0
		TextureRect.STRETCH_KEEP_ASPECT_COVERED:
			var zoom := maxf(size.x / frame.x, size.y / frame.y)
			region_start = ((frame * zoom - size) / zoom).abs() / 2.0
			region_size = size / zoom
	if drawn.x <= 0.0 or drawn.y <= 0.0:
		return NO_PIXEL
	var uv := (local_position - offset) / drawn
	if uv.x < 0.0 or uv.y < 0.0 or uv.x >= 1.0 or uv.y >= 1.0:
		return NO_PIXEL
	if stretch_mode != TextureRect.STRETCH_TILE:
		uv = Vector2(1.0 - uv.x if flip_h else uv.x, 1.0 - uv.y if flip_v else uv.y)
	var pixel := region_start + uv * region_size
	return Vector2i(
		clampi(floori(pixel.x), 0, _image.get_width() - 1),
		clampi(floori(pixel.y), 0, _image.get_height() - 1)
	)


## Pastes `layer` (see WorldBridgeClient.edit) centred on the frame pixel shown at
## `local_position`, e.g. where the player clicked; false when that is off the picture.
func paste_at(layer: Image, local_position: Vector2) -> bool:
	return paste_at_pixel(layer, frame_pixel_at(local_position))


## Pastes `layer` centred on frame pixel `pixel` through `client`; false when it cannot be sent.
func paste_at_pixel(layer: Image, pixel: Vector2i) -> bool:
	if not is_instance_valid(client) or layer == null or pixel == NO_PIXEL:
		return false
	return client.edit(
		layer, pixel.x - (layer.get_width() >> 1), pixel.y - (layer.get_height() >> 1)
	)


func _gui_input(event: InputEvent) -> void:
	var click := event as InputEventMouseButton
	if click == null or not click.pressed:
		return
	var pixel := frame_pixel_at(click.position)
	if pixel != NO_PIXEL:
		frame_clicked.emit(pixel, click.button_index)


func _load_raw(width: int, height: int, pixels: PackedByteArray) -> bool:
	if width <= 0 or height <= 0 or pixels.size() != width * height * 3:
		push_warning(
			"WorldView: %d bytes is not a %dx%d RGB8 frame" % [pixels.size(), width, height]
		)
		return false
	if (
		_image == null
		or _image.get_width() != width
		or _image.get_height() != height
		or _image.get_format() != Image.FORMAT_RGB8
	):
		_image = Image.create_from_data(width, height, false, Image.FORMAT_RGB8, pixels)
	else:
		_image.set_data(width, height, false, Image.FORMAT_RGB8, pixels)
	return true


func _load_encoded(codec: String, data: PackedByteArray) -> bool:
	var decoded := Image.new()
	var err := (
		decoded.load_png_from_buffer(data) if codec == "png" else decoded.load_jpg_from_buffer(data)
	)
	if err != OK:
		push_warning("WorldView: could not decode a %s frame (error %d)" % [codec, err])
		return false
	if decoded.get_format() != Image.FORMAT_RGB8:
		decoded.convert(Image.FORMAT_RGB8)
	if (
		_image != null
		and _image.get_width() == decoded.get_width()
		and _image.get_height() == decoded.get_height()
	):
		_image.set_data(
			decoded.get_width(), decoded.get_height(), false, Image.FORMAT_RGB8, decoded.get_data()
		)
	else:
		_image = decoded
	return true


func _on_status_changed(_text: String) -> void:
	_update_badge()


## A new world (not a resumed one) must not show the old world's last frame until its own.
func _on_session_started(session: Dictionary) -> void:
	_ended = ""
	var resumed: Variant = session.get("resumed")
	if typeof(resumed) == TYPE_BOOL and resumed:
		_update_badge()
	else:
		_blank()


## An ended session's backend runs no more: the badge says why in white, over its last frame.
func _on_session_ended(reason: String) -> void:
	_shown_label = ""
	_shown_kind = ""
	_ended = reason
	_update_badge()


## Forgets the frame on screen and its backend (a new connection or world shows its own), so no
## click maps onto it.
func _blank() -> void:
	_image = null
	_texture = null
	texture = null
	_shown_label = ""
	_shown_kind = ""
	_ended = ""
	_update_badge()


func _update_badge() -> void:
	if _badge == null:
		return
	_badge.visible = show_backend_badge
	if not is_instance_valid(client):  # none, or freed (a freed object is not null)
		_badge.text = "WorldBridge: no client"
		_badge.add_theme_color_override("font_color", _badge_color(""))
		return
	if client.is_in_session():
		_badge.text = client.backend_label()
	elif _shown_label != "":
		_badge.text = "%s (last frame): %s" % [_shown_label, client.status_text]
	elif _ended != "":
		_badge.text = "session ended: " + _ended
	else:
		_badge.text = client.status_text
	var kind := client.backend_kind if client.is_in_session() else _shown_kind
	_badge.add_theme_color_override("font_color", _badge_color(kind))


## Orange for the sandbox game, green for the world model, white while no session is held, so
## status text such as "offline" or "session ended: ..." never wears a backend's colour (as in
## Unity).
func _badge_color(kind: String) -> Color:
	if kind == Protocol.BACKEND_SANDBOX:
		return Color.ORANGE
	if kind == Protocol.BACKEND_WORLD_MODEL:
		return Color.GREEN
	return Color.WHITE
