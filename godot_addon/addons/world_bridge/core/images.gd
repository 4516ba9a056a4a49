@tool
extends RefCounted
## Images between Godot and a world: a rendered viewport as a prompt, a sprite as an edit layer.


## WorldBridgeClient.object_layer(): a sprite as an RGBA8 layer no bigger than the frame.
static func object_layer(image: Image, max_size: int) -> Image:
	if image == null or image.is_empty():
		return Image.new()
	var layer: Image = image.duplicate()
	if layer.is_compressed():
		layer.decompress()
	if layer.get_format() != Image.FORMAT_RGBA8:
		layer.convert(Image.FORMAT_RGBA8)
	var longest := maxi(layer.get_width(), layer.get_height())
	if max_size > 0 and longest > max_size:
		var factor := float(max_size) / longest
		var width := maxi(1, roundi(layer.get_width() * factor))
		var height := maxi(1, roundi(layer.get_height() * factor))
		layer.resize(width, height, Image.INTERPOLATE_NEAREST)
	return layer


## WorldBridgeClient.capture_viewport_png(): a blocked-out level as an image or sketch prompt.
static func viewport_png(viewport: Viewport) -> PackedByteArray:
	if viewport == null or viewport.get_texture() == null:
		return PackedByteArray()
	var image := viewport.get_texture().get_image()
	if image == null or image.is_empty():
		return PackedByteArray()
	return image.save_png_to_buffer()
