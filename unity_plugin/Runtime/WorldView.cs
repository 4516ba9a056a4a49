// Shows the generated world: one Texture2D created per frame size, filled on the main thread each frame
// (LoadRawTextureData + Apply(false): no allocation, no mipmaps), flipped because the host sends rows top first.
using UnityEngine;
using UnityEngine.Rendering;
using UnityEngine.UI;
using WorldBridge.Core;

namespace WorldBridge
{
    [AddComponentMenu("World Bridge/World View")]
    public sealed class WorldView : MonoBehaviour, IClientListener
    {
        [Tooltip("The client whose frames to show (defaults to one on this object or a parent).")]
        public WorldBridgeClient client;

        [Header("Targets (any combination)")]
        [Tooltip("A UI RawImage, e.g. a full-screen background under the HUD.")]
        public RawImage rawImage;
        [Tooltip("A renderer that shows the frame (e.g. a quad in the scene), set through its property block: its " +
                 "materials are never replaced, so a script's Renderer.material (a tint) keeps working.")]
        public Renderer targetRenderer;
        [Tooltip("The shader's texture the frame goes in; empty or _MainTex: its main texture, whatever its shader calls it " +
                 "(the [MainTexture] property: _BaseMap in URP Lit, _MainTex in the built-in shaders).")]
        public string textureProperty = "_MainTex";
        [Tooltip("A RenderTexture the frame is blitted into (flipped upright), for custom shaders or post effects.")]
        public RenderTexture targetTexture;

        [Header("Which backend is running")]
        [Tooltip("Draw a badge naming the backend (sandbox game in orange, world model in green) in the Raw Image's " +
                 "top-left corner (the screen's, on a canvas of its own, when the world is only on a Renderer or RenderTexture). Untick only if you show the backend yourself, e.g. in the Backend Label below.")]
        public bool showBackendBadge = true;
        [Tooltip("Optional UI Text that also shows whether this is the sandbox game or the world model, coloured like the badge.")]
        public Text backendLabel;

        /// <summary>The colour of the sandbox game's label: the Godot addon's orange.</summary>
        public static readonly Color SandboxColor = new Color(1f, 0.65f, 0f);
        /// <summary>The colour of the world model's label.</summary>
        public static readonly Color WorldModelColor = Color.green;

        /// <summary>The texture frames are uploaded into (null before the first frame).</summary>
        public Texture2D Texture { get; private set; }
        public WorldFrame LastFrame { get; private set; }
        /// <summary>The badge this view made on its Raw Image, or on Overlay (null with showBackendBadge off or no target).</summary>
        public Text Badge { get; private set; }
        /// <summary>The screen-space canvas made for the badge when the world has no Raw Image to draw it on, else null.</summary>
        public Canvas Overlay { get; private set; }
        RawImage shownOn; // the Raw Image and Renderer Texture was last attached to: a target set since gets it at the next frame
        Renderer shownBy;
        MaterialPropertyBlock blockBefore; // shownBy's property block before the view's: given back when the view lets it go
        MaterialPropertyBlock block; // the frame's texture and flip over shownBy's own values (made at first use, not in a constructor)
        Texture shownBefore; // what shownOn showed before Texture, with its uvRect: given back when the view lets it go
        Rect uvBefore;
        WorldBridgeConnection frameFrom; // the connection LastFrame came from
        WorldBridgeClient listened; // the client whose frames and session this view hears
        bool warnedNoClient;

        void OnEnable()
        {
            WorldBridgeClient.Use(this, ref client, ref listened); // none yet: LateUpdate looks again
            PlaceBadge();
        }

        /// <summary>A client a script set after AddComponent (or in a parent added later) is heard from the next frame; with
        /// none the view says so once, at its first LateUpdate (Present's rule), and stays on to find one.</summary>
        void LateUpdate()
        {
            WorldBridgeClient.Present(WorldBridgeClient.Use(this, ref client, ref listened), WorldBridgeClient.NeededBy("WorldView"), this, ref warnedNoClient);
            PlaceBadge();
        }

        void OnDisable() => WorldBridgeClient.Move(this, ref listened, null);

        /// <summary>Hears `c` (or no longer), showing its state at once: it may be a client set after the view was enabled.</summary>
        void IClientListener.Listen(WorldBridgeClient c, bool on)
        {
            if (on)
            {
                c.FrameReceived += Show;
                c.onSessionStarted.AddListener(ShowSession);
                c.onSessionEnded.AddListener(ShowEnded);
                c.ConnectionChanged += ShowConnection;
                ShowConnection();
            }
            else
            {
                c.FrameReceived -= Show;
                c.onSessionStarted.RemoveListener(ShowSession);
                c.onSessionEnded.RemoveListener(ShowEnded);
                c.ConnectionChanged -= ShowConnection;
            }
        }

        void OnDestroy()
        {
            ReleaseImage(Texture);
            ReleaseRenderer();
            if (Texture != null) Destroy(Texture);
            if (Badge != null) Destroy(Badge.gameObject); // it lives on the Raw Image, which may outlive this view
            if (Overlay != null) Destroy(Overlay.gameObject);
        }

        /// <summary>Names the backend in the badge and label, white while no session runs.</summary>
        void ShowBackend()
        {
            var session = listened.RunningSession;
            var color = session == null ? Color.white : session.IsSandbox ? SandboxColor : WorldModelColor;
            foreach (var label in new[] { Badge, backendLabel })
            {
                if (label == null) continue;
                label.text = listened.BackendLabel;
                label.color = color;
            }
            if (Badge != null) Badge.gameObject.SetActive(showBackendBadge);
        }

        /// <summary>A new world (not a resumed one) on the same connection must not show the old world's last frame while
        /// it loads, nor map clicks onto it.</summary>
        void ShowSession()
        {
            ShowBackend();
            var session = listened.Session;
            if (session != null && !session.Resumed) Blank();
        }

        /// <summary>An ended session's backend is no longer named: the label says why it ended, in white; its last frame
        /// stays in view.</summary>
        void ShowEnded(string reason) => ShowBackend();

        /// <summary>A client closed or opened again (maybe onto another backend) must not keep showing the old one's label
        /// and last frame: the label says the new state, and the old frame is blanked.</summary>
        void ShowConnection()
        {
            ShowBackend();
            if (listened.Connection != frameFrom) Blank();
        }

        /// <summary>Forgets the shown frame and paints the texture black until the next frame.</summary>
        void Blank()
        {
            frameFrom = null;
            LastFrame = null; // no click maps onto a frame no longer shown
            if (Texture == null) return;
            Texture.LoadRawTextureData(new byte[Texture.width * Texture.height * 3]); // black, RGB24
            Texture.Apply(false);
            if (targetTexture != null) Graphics.Blit(Texture, targetTexture);
        }

        /// <summary>Puts the badge over the Raw Image, else on Overlay when the world is only on a Renderer or RenderTexture, and
        /// shows or hides it by showBackendBadge. Called on enable and every LateUpdate, so a target assigned by script or
        /// the badge ticked on at runtime gets it at once; when nothing changed it only compares.</summary>
        void PlaceBadge()
        {
            if (Badge != null && Badge.gameObject.activeSelf != showBackendBadge) Badge.gameObject.SetActive(showBackendBadge);
            if (!showBackendBadge) return;
            Transform parent = rawImage != null ? rawImage.transform
                : targetRenderer != null || targetTexture != null ? (Overlay != null ? Overlay : MakeOverlay()).transform : null;
            if (parent == null || Badge != null && Badge.transform.parent == parent) return;
            if (Badge == null)
            {
                Badge = MakeBadge(parent);
                if (listened != null) ShowBackend();
            }
            else
            {
                Badge.rectTransform.SetParent(parent, false);
                Badge.rectTransform.SetAsFirstSibling();
            }
            if (Overlay != null && parent != Overlay.transform)
            {   // the badge moved onto a Raw Image assigned later: the canvas made for it is not needed
                Destroy(Overlay.gameObject);
                Overlay = null;
            }
        }

        /// <summary>A Renderer or RenderTexture has no Canvas to draw text on: a screen-space one, child of this view.</summary>
        Canvas MakeOverlay()
        {
            var canvasObject = new GameObject("WorldBridge Badge Canvas", typeof(RectTransform));
            canvasObject.transform.SetParent(transform, false);
            Overlay = canvasObject.AddComponent<Canvas>();
            Overlay.renderMode = RenderMode.ScreenSpaceOverlay;
            return Overlay;
        }

        /// <summary>A child of the Raw Image (or of Overlay), so it draws over the world and UI placed above the view still covers it.</summary>
        static Text MakeBadge(Transform parent)
        {
            var badge = new GameObject("BackendBadge", typeof(RectTransform)).AddComponent<Text>();
            var rect = badge.rectTransform;
            rect.SetParent(parent, false);
            rect.SetAsFirstSibling(); // the game's own children of the Raw Image draw over it
            rect.anchorMin = new Vector2(0, 1);
            rect.anchorMax = new Vector2(1, 1);
            rect.pivot = new Vector2(0, 1);
            rect.anchoredPosition = new Vector2(8, -8);
            rect.sizeDelta = new Vector2(-16, 28);
            badge.font = BuiltinFont();
            badge.fontSize = 18;
            badge.alignment = TextAnchor.UpperLeft;
            badge.raycastTarget = false; // clicks reach the world (WorldPaste)
            badge.gameObject.AddComponent<Outline>();
            return badge;
        }

        /// <summary>The font every Unity version ships (LegacyRuntime.ttf replaced Arial.ttf in 2022.2).</summary>
        public static Font BuiltinFont()
        {
#if UNITY_2022_2_OR_NEWER
            return Resources.GetBuiltinResource<Font>("LegacyRuntime.ttf");
#else
            return Resources.GetBuiltinResource<Font>("Arial.ttf");
#endif
        }

        /// <summary>Uploads one frame; called on the main thread by WorldBridgeClient.Update.</summary>
        public void Show(WorldFrame frame)
        {
            LastFrame = frame;
            frameFrom = listened != null ? listened.Connection : null;
            if (Texture == null || Texture.width != frame.Width || Texture.height != frame.Height)
            {
                var old = Texture;
                Texture = new Texture2D(frame.Width, frame.Height, TextureFormat.RGB24, false)
                {
                    name = "WorldBridge frame", filterMode = FilterMode.Point, wrapMode = TextureWrapMode.Clamp,
                };
                Attach(old);
                if (old != null) Destroy(old);
            }
            else if (rawImage != shownOn || targetRenderer != shownBy) Attach(Texture); // a target a script set after the first frame
            Texture.LoadRawTextureData(frame.Pixels);
            Texture.Apply(false);
            if (targetTexture != null) Graphics.Blit(Texture, targetTexture, new Vector2(1, -1), new Vector2(0, 1));
        }

        /// <summary>
        /// The frame pixel under a screen position (a click, a touch) on the RawImage this view shows the world in: x to the
        /// right, y down from the frame's top row, ready for WorldBridgeClient.PasteLayer. `eventCamera` is the canvas's
        /// camera (null for a Screen Space - Overlay canvas; a PointerEventData has it as pressEventCamera). False when the
        /// view has no Raw Image (a world only on a Renderer or RenderTexture), the point is off the picture, or before the
        /// first frame.
        /// </summary>
        public bool ScreenToFramePixel(Vector2 screenPosition, Camera eventCamera, out Vector2Int framePixel)
        {
            framePixel = default;
            if (rawImage == null || LastFrame == null) return false;
            var rt = rawImage.rectTransform;
            if (!RectTransformUtility.ScreenPointToLocalPointInRectangle(rt, screenPosition, eventCamera, out var local)) return false;
            var r = rt.rect;
            if (r.width <= 0 || r.height <= 0) return false;
            var uv = rawImage.uvRect;
            var inside = FramePixels.FromDisplayPoint((local.x - r.x) / r.width, (local.y - r.y) / r.height, uv.x, uv.y, uv.width, uv.height,
                                                      LastFrame.Width, LastFrame.Height, out var x, out var y);
            framePixel = new Vector2Int(x, y);
            return inside;
        }

        /// <summary>Puts Texture on the targets set now; one let go since gets back what it showed before `shown`, the
        /// texture the view gave it.</summary>
        void Attach(Texture shown)
        {
            if (rawImage != shownOn)
            {
                ReleaseImage(shown);
                shownOn = rawImage;
                shownBefore = rawImage != null ? rawImage.texture : null;
                uvBefore = rawImage != null ? rawImage.uvRect : default;
            }
            if (targetRenderer != shownBy)
            {
                ReleaseRenderer();
                shownBy = targetRenderer;
                if (shownBy != null) shownBy.GetPropertyBlock(blockBefore = new MaterialPropertyBlock());
            }
            if (rawImage != null)
            {
                rawImage.texture = Texture;
                rawImage.uvRect = new Rect(0, 1, 1, -1); // row 0 of the frame is the top of the picture
            }
            if (targetRenderer != null && targetRenderer.sharedMaterial != null) // with no material it has nowhere to show the frame
            {   // a property block, not a material of the view's: the material a script takes with Renderer.material shows it too
                var property = FrameProperty(targetRenderer.sharedMaterial.shader);
                if (block == null) block = new MaterialPropertyBlock();
                targetRenderer.GetPropertyBlock(block); // keeps values a script set through the block
                block.SetTexture(property, Texture);
                block.SetVector(property + "_ST", new Vector4(1, -1, 0, 1)); // row 0 of the frame is the top of the picture
                targetRenderer.SetPropertyBlock(block);
            }
        }

        /// <summary>The texture property the frame goes in: textureProperty, or for _MainTex (or none) the shader's
        /// [MainTexture], as Material.mainTexture finds it: a URP Lit material samples _BaseMap, not _MainTex.</summary>
        string FrameProperty(Shader shader)
        {
            if (!string.IsNullOrEmpty(textureProperty) && textureProperty != "_MainTex") return textureProperty;
            for (var i = 0; i < shader.GetPropertyCount(); i++)
                if ((shader.GetPropertyFlags(i) & ShaderPropertyFlags.MainTexture) != 0) return shader.GetPropertyName(i);
            return "_MainTex"; // Unity's main texture when the shader marks none
        }

        /// <summary>Gives the Raw Image the view showed `shown` on what it showed before (unless a script gave it another
        /// texture since): a swapped-out Raw Image no longer shows the live world, nor a destroyed view's texture.</summary>
        void ReleaseImage(Texture shown)
        {
            if (shownOn != null && !ReferenceEquals(shown, null) && ReferenceEquals(shownOn.texture, shown))
            {
                shownOn.texture = shownBefore;
                shownOn.uvRect = uvBefore;
            }
            shownBefore = null;
        }

        /// <summary>Gives the renderer the view drew on the property block it had before (none: cleared), so a swapped
        /// Target Renderer, or the view's when the view is destroyed, draws its own material again, not the world.</summary>
        void ReleaseRenderer()
        {
            if (shownBy != null) shownBy.SetPropertyBlock(blockBefore.isEmpty ? null : blockBefore);
            blockBefore = null;
        }
    }
}
