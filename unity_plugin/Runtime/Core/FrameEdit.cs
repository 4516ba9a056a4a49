// What an `edit` (protocol 1.1) needs on the client: the size of a PNG layer, the checks the host would make (so a
// game gets a clear error before a round trip), and the mapping from a point on the displayed world to a frame pixel.
using System;

namespace WorldBridge.Core
{
    public static class Png
    {
        static readonly byte[] Signature = { 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a };

        /// <summary>Reads width and height from the PNG's IHDR chunk; false if the bytes are not a PNG.</summary>
        public static bool TryReadSize(byte[] png, out int width, out int height)
        {
            width = height = 0;
            if (png == null || png.Length < 24) return false;
            for (int i = 0; i < Signature.Length; i++) if (png[i] != Signature[i]) return false;
            if (png[12] != 'I' || png[13] != 'H' || png[14] != 'D' || png[15] != 'R') return false;
            long w = BigEndian(png, 16), h = BigEndian(png, 20);
            if (w <= 0 || h <= 0 || w > int.MaxValue || h > int.MaxValue) return false;
            width = (int)w;
            height = (int)h;
            return true;
        }

        static long BigEndian(byte[] b, int at) => ((long)b[at] << 24) | ((long)b[at + 1] << 16) | ((long)b[at + 2] << 8) | b[at + 3];
    }

    public static class FramePixels
    {
        /// <summary>The host's rules for `edit` (docs/protocol.md §4 edit): a PNG no larger than the frame, partly on it (a w x h
        /// layer's top-left corner within [1-w, width-1] x [1-h, height-1]). Throws ArgumentException naming the problem and the fix.</summary>
        public static void CheckEdit(byte[] layer, int x, int y, int frameWidth, int frameHeight)
        {
            if (!Png.TryReadSize(layer, out var w, out var h))
                throw new ArgumentException("the edit layer is not a PNG: encode it with ImageConversion.EncodeToPNG (RGBA keeps transparency)");
            if (w > frameWidth || h > frameHeight)
                throw new ArgumentException($"the edit layer is {w}x{h} but the frame is {frameWidth}x{frameHeight}: scale the layer down to at most the frame size");
            if (x <= -w || x >= frameWidth || y <= -h || y >= frameHeight) // a layer wholly off the frame pastes nothing
                throw new ArgumentException($"the {w}x{h} edit layer at ({x}, {y}) lies wholly off the {frameWidth}x{frameHeight} frame: " +
                                            $"x must be in [{1 - w}, {frameWidth - 1}] and y in [{1 - h}, {frameHeight - 1}] so that part of it is on the frame");
        }

        /// <summary>The top-left corner that centres a layer of the given size on frame pixel (cx, cy).</summary>
        public static void TopLeftForCentre(int cx, int cy, int layerWidth, int layerHeight, out int x, out int y)
        {
            x = cx - layerWidth / 2;
            y = cy - layerHeight / 2;
        }

        /// <summary>
        /// A point on the displayed world → the frame pixel under it (x to the right, y down from the frame's top row).
        /// (u, v) is the point in the displayed rectangle, 0..1, v = 0 at the bottom (Unity's UI space); uvX/uvY/uvW/uvH is
        /// the texture rectangle shown there (a RawImage's uvRect: WorldView uses (0, 1, 1, -1) because the texture holds
        /// the frame's top row first). False when the point is outside the picture.
        /// </summary>
        public static bool FromDisplayPoint(double u, double v, double uvX, double uvY, double uvW, double uvH, int width, int height,
                                            out int x, out int y)
        {
            if (width <= 0 || height <= 0) throw new ArgumentException($"frame size {width}x{height} must be positive");
            double texU = uvX + u * uvW, texV = uvY + v * uvH; // texture v = 0 is the first row the host sent (the top)
            x = Clamp((int)Math.Floor(texU * width), 0, width - 1);
            y = Clamp((int)Math.Floor(texV * height), 0, height - 1);
            return u >= 0 && u <= 1 && v >= 0 && v <= 1 && texU >= 0 && texU <= 1 && texV >= 0 && texV <= 1;
        }

        static int Clamp(int value, int min, int max) => value < min ? min : value > max ? max : value;
    }
}
