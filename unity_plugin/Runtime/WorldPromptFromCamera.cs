// Lets a designer prompt a world with what a Unity camera sees (a greybox level, a sketch drawn with flat colours):
// renders the camera into a RenderTexture, reads it back, encodes PNG and sends it as an image or sketch prompt.
using UnityEngine;
using WorldBridge.Core;

namespace WorldBridge
{
    [AddComponentMenu("World Bridge/World Prompt From Camera")]
    public sealed class WorldPromptFromCamera : MonoBehaviour, IClientListener
    {
        public enum PromptKind { Image, Sketch }
        public enum Delivery { StartNewWorld, ResetCurrentWorld }

        [Tooltip("The client to prompt (defaults to one on this object or a parent).")]
        public WorldBridgeClient client;
        [Tooltip("The camera to capture; it is rendered on demand, so it may stay disabled.")]
        public Camera sourceCamera;
        [Min(8)] public int width = 256;
        [Min(8)] public int height = 256;
        public PromptKind kind = PromptKind.Image;
        public Delivery delivery = Delivery.StartNewWorld;
        [Tooltip("Capture and send once the host has welcomed the client (Reset Current World: once its world has started).")]
        public bool sendWhenConnected;

        Texture2D readback;
        WorldBridgeConnection sentOn; // once per connection: a client disabled and enabled again opens a new one
        WorldBridgeClient followed; // the client told that this prompt's start replaces its startOnConnect one
        bool warnedNoClient;
        const string NeedsCamera = "WorldPromptFromCamera needs a Source Camera: drag one into its field";

        /// <summary>True when this prompt starts the world once connected: the client then sends no plain start of its own.</summary>
        public bool StartsWorldWhenConnected => sendWhenConnected && delivery == Delivery.StartNewWorld && sourceCamera != null;

        void OnEnable() => WorldBridgeClient.Use(this, ref client, ref followed);

        void OnDisable() => WorldBridgeClient.Move(this, ref followed, null);

        /// <summary>Tells `c` that this prompt may (or no longer) start its world.</summary>
        void IClientListener.Listen(WorldBridgeClient c, bool on) => c.Follow(this, on);

        void Update()
        {
            WorldBridgeClient.Use(this, ref client, ref followed); // a client set from a script after AddComponent
            // with Send When Connected and no client it would wait for a connection forever: say so once
            if (sendWhenConnected && !WorldBridgeClient.Present(client, WorldBridgeClient.NeededBy("WorldPromptFromCamera"), this, ref warnedNoClient)) return;
            var connection = client != null ? client.Connection : null;
            if (!sendWhenConnected || connection == null || connection == sentOn || !connection.IsReady) return;
            if (delivery == Delivery.ResetCurrentWorld && connection.Session == null) return; // the host refuses a reset without a world
            sentOn = connection;
            SendPrompt();
        }

        void OnDestroy()
        {
            if (readback != null) Destroy(readback);
        }

        /// <summary>Renders the camera now and returns PNG bytes (main thread only).</summary>
        public byte[] Capture()
        {
            if (sourceCamera == null) throw new System.InvalidOperationException(NeedsCamera);
            if (readback == null || readback.width != width || readback.height != height)
            {
                if (readback != null) Destroy(readback);
                readback = new Texture2D(width, height, TextureFormat.RGB24, false) { name = "WorldBridge prompt" };
            }
            var target = RenderTexture.GetTemporary(width, height, 24);
            var previousTarget = sourceCamera.targetTexture;
            var previousActive = RenderTexture.active;
            try
            {
                sourceCamera.targetTexture = target;
                sourceCamera.Render();
                RenderTexture.active = target;
                readback.ReadPixels(new Rect(0, 0, width, height), 0, 0);
                readback.Apply(false);
            }
            finally
            {
                sourceCamera.targetTexture = previousTarget;
                RenderTexture.active = previousActive;
                RenderTexture.ReleaseTemporary(target);
            }
            return ImageConversion.EncodeToPNG(readback);
        }

        /// <summary>Captures the camera and sends it as the chosen prompt; returns the req_id, or -1 after logging why
        /// (no client, no Source Camera) or reporting it through the client's onError.</summary>
        public long SendPrompt()
        {
            if (WorldBridgeClient.Find(this, ref client) == null)
            {
                Debug.LogError("[WorldBridge] " + WorldBridgeClient.NeededBy("WorldPromptFromCamera"), this);
                return -1;
            }
            if (sourceCamera == null)
            {
                Debug.LogError("[WorldBridge] " + NeedsCamera, this);
                return -1;
            }
            var png = Capture();
            bool sketch = kind == PromptKind.Sketch;
            Debug.Log($"[WorldBridge] sending a {png.Length}-byte {(sketch ? "sketch" : "image")} prompt from camera '{sourceCamera.name}'");
            return delivery == Delivery.StartNewWorld ? client.StartWorld(png, sketch, true) : client.ResetWorld(png, sketch);
        }
    }
}
