// Builds the whole sample in code at Start (camera, EventSystem, Canvas, the generated world as a full-screen
// background and a HUD over it) so the sample scene only has to hold this one component.
using System.Collections.Generic;
using UnityEngine;
using UnityEngine.EventSystems;
using UnityEngine.UI;
using WorldBridge.Core;
#if ENABLE_INPUT_SYSTEM && WORLDBRIDGE_INPUT_SYSTEM
using UnityEngine.InputSystem.UI;
#endif

namespace WorldBridge.Samples
{
    public sealed class WorldBridgeSample : MonoBehaviour
    {
        public string endpoint = "tcp://127.0.0.1:5555";
        public WorldBackendChoice backend = WorldBackendChoice.HostDefault;
        [TextArea] public string textPrompt = "a cave with lava";
        public int seed = 7;

        WorldBridgeClient client;
        WorldRecorder recorder;
        Text scoreText, statusText, recordText;
        RectTransform eventBar;
        AspectRatioFitter worldFitter;
        WorldPaste paste;
        Texture2D crate; // made in code, so no asset owns it: this sample destroys it
        Font font;
        int score;
        readonly List<GameObject> eventButtons = new List<GameObject>();

        void Start()
        {
            font = WorldView.BuiltinFont();
            if (Camera.main == null)
            {
                var cam = new GameObject("Main Camera", typeof(Camera)).GetComponent<Camera>();
                cam.tag = "MainCamera";
                cam.clearFlags = CameraClearFlags.SolidColor;
                cam.backgroundColor = Color.black;
            }
            if (EventSystem.current == null)
            {
#if ENABLE_INPUT_SYSTEM && WORLDBRIDGE_INPUT_SYSTEM
                new GameObject("EventSystem", typeof(EventSystem), typeof(InputSystemUIInputModule));
#else
                new GameObject("EventSystem", typeof(EventSystem), typeof(StandaloneInputModule));
#endif
            }

            // The world: client + view + input + recorder on this object.
            gameObject.SetActive(false); // configure before OnEnable connects
            client = gameObject.AddComponent<WorldBridgeClient>();
            client.endpoint = endpoint;
            client.backend = backend;
            client.textPrompt = textPrompt;
            client.fixedSeed = true;
            client.seed = seed;
            var view = gameObject.AddComponent<WorldView>();
            view.client = client;
            view.showBackendBadge = false; // the HUD's own backend label below, coloured by the view, says it instead
            var input = gameObject.AddComponent<WorldInput>();
            input.client = client;
            recorder = gameObject.AddComponent<WorldRecorder>();
            recorder.client = client;

            // The UI: the world as a full-screen background, the HUD on top.
            var canvas = new GameObject("Canvas", typeof(Canvas), typeof(CanvasScaler), typeof(GraphicRaycaster)).GetComponent<Canvas>();
            canvas.renderMode = RenderMode.ScreenSpaceOverlay;
            var scaler = canvas.GetComponent<CanvasScaler>();
            scaler.uiScaleMode = CanvasScaler.ScaleMode.ScaleWithScreenSize;
            scaler.referenceResolution = new Vector2(1280, 720);
            var world = new GameObject("World", typeof(RawImage), typeof(AspectRatioFitter));
            world.transform.SetParent(canvas.transform, false);
            Stretch(world.GetComponent<RectTransform>());
            worldFitter = world.GetComponent<AspectRatioFitter>();
            worldFitter.aspectMode = AspectRatioFitter.AspectMode.FitInParent;
            view.rawImage = world.GetComponent<RawImage>();
            paste = world.AddComponent<WorldPaste>(); // click the world to drop a crate into it (world model only)
            paste.view = view;

            scoreText = Label(canvas.transform, "Score: 0", new Vector2(0, 1), new Vector2(16, -16), 28, TextAnchor.UpperLeft);
            view.backendLabel = Label(canvas.transform, "connecting…", new Vector2(0.5f, 1), new Vector2(0, -16), 20, TextAnchor.UpperCenter);
            statusText = Label(canvas.transform, "arrows/WASD/gamepad to play", new Vector2(0, 0), new Vector2(16, 16), 18, TextAnchor.LowerLeft);
            eventBar = new GameObject("Events", typeof(RectTransform), typeof(HorizontalLayoutGroup)).GetComponent<RectTransform>();
            eventBar.SetParent(canvas.transform, false);
            Anchor(eventBar, new Vector2(1, 1), new Vector2(-16, -64), new Vector2(600, 40)); // below the backend label
            eventBar.GetComponent<HorizontalLayoutGroup>().childAlignment = TextAnchor.UpperRight;
            eventBar.GetComponent<HorizontalLayoutGroup>().spacing = 8;
            var bottom = new GameObject("Controls", typeof(RectTransform), typeof(HorizontalLayoutGroup)).GetComponent<RectTransform>();
            bottom.SetParent(canvas.transform, false);
            Anchor(bottom, new Vector2(1, 0), new Vector2(-16, 16), new Vector2(360, 40));
            bottom.GetComponent<HorizontalLayoutGroup>().spacing = 8;
            Button(bottom, "New world", NewWorld);
            recordText = Button(bottom, "Record", recorder.Toggle);

            client.onSessionStarted.AddListener(OnSession);
            client.onWorldEvent.AddListener(caption => { score += 10; statusText.text = caption; });
            client.onError.AddListener(message => statusText.text = message);
            client.FrameReceived += OnFrame;
            recorder.onStatus.AddListener(status => { statusText.text = status; recordText.text = recorder.IsRecording ? "Stop" : "Record"; });
            gameObject.SetActive(true);
        }

        /// <summary>One button per event type the backend offers, made once the session says which.</summary>
        void OnSession()
        {
            foreach (var b in eventButtons) Destroy(b);
            eventButtons.Clear();
            var session = client.Session;
            if (session == null) return;
            worldFitter.aspectRatio = (float)session.Width / session.Height;
            if (crate != null) Destroy(crate);
            // a crate on every backend: World Paste says itself that one cannot edit frames when clicked there
            paste.layer = crate = Crate(System.Math.Max(2, session.Width / 5));
            statusText.text = Keys(session) + (session.Capabilities.CanEdit ? ", click the world to drop a crate" : " (this backend cannot paste objects)");
            foreach (var type in session.EventTypes)
            {
                var eventType = type;
                Button(eventBar, eventType.Replace('_', ' '), () => client.FireEvent(eventType));
                eventButtons.Add(eventBar.GetChild(eventBar.childCount - 1).gameObject);
            }
        }

        /// <summary>A world of a fresh seed on each press (the next one after the world before): the client's fixed seed
        /// alone would restart the same world each time.</summary>
        void NewWorld()
        {
            score = 0;
            client.seed++;
            client.ResetWorld();
        }

        /// <summary>What plays the world: a world model's latent actions, learned from unlabelled video, are none of the
        /// arrows; keys 1 to as many as it has (at most 8) play them.</summary>
        static string Keys(SessionInfo session)
        {
            if (session.ArrowKeysPlay) return "arrows/WASD/gamepad to play";
            int keys = GameKeys.DigitKeysPlaying(session), all = session.NumLatentActions;
            if (keys == 0) return "no key plays this world's actions";
            if (keys == 1) return "key 1 plays the latent action";
            return $"keys 1–{keys} play {(keys < all ? $"{keys} of the {all}" : "the")} latent actions";
        }

        /// <summary>The crate texture would outlive the sample (a leak per Play in the editor) without this.</summary>
        void OnDestroy()
        {
            if (crate != null) Destroy(crate);
        }

        /// <summary>An engine-side score: one point per frame spent moving right, ten per world event.</summary>
        void OnFrame(WorldFrame frame)
        {
            var session = client.Session;
            if (session != null && frame.Action >= 0 && frame.Action < session.ActionNames.Length && session.ActionNames[frame.Action].StartsWith("right"))
                score++;
            scoreText.text = $"Score: {score}   frame {frame.Index}";
        }

        /// <summary>A small wooden crate with a transparent corner, made in code so the sample needs no texture asset.</summary>
        static Texture2D Crate(int size)
        {
            var texture = new Texture2D(size, size, TextureFormat.RGBA32, false) { name = "Crate", filterMode = FilterMode.Point };
            var pixels = new Color32[size * size];
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                {
                    bool plank = x == 0 || y == 0 || x == size - 1 || y == size - 1 || x == y || x == size - 1 - y;
                    pixels[y * size + x] = x + y == 0 ? new Color32(0, 0, 0, 0) : plank ? new Color32(90, 55, 20, 255) : new Color32(170, 120, 60, 255);
                }
            texture.SetPixels32(pixels);
            texture.Apply(false);
            return texture;
        }

        Text Label(Transform parent, string text, Vector2 corner, Vector2 offset, int size, TextAnchor align)
        {
            var label = new GameObject("Label", typeof(Text)).GetComponent<Text>();
            label.transform.SetParent(parent, false);
            Anchor(label.rectTransform, corner, offset, new Vector2(600, 40));
            label.font = font;
            label.fontSize = size;
            label.alignment = align;
            label.color = Color.white;
            label.text = text;
            label.gameObject.AddComponent<Outline>();
            return label;
        }

        Text Button(Transform parent, string text, UnityEngine.Events.UnityAction onClick)
        {
            var go = new GameObject(text, typeof(Image), typeof(Button), typeof(LayoutElement));
            go.transform.SetParent(parent, false);
            go.GetComponent<Image>().color = new Color(0, 0, 0, 0.6f);
            go.GetComponent<LayoutElement>().preferredWidth = 140;
            var button = go.GetComponent<Button>();
            button.targetGraphic = go.GetComponent<Image>();
            button.onClick.AddListener(onClick);
            var label = Label(go.transform, text, new Vector2(0.5f, 0.5f), Vector2.zero, 18, TextAnchor.MiddleCenter);
            Stretch(label.rectTransform);
            return label;
        }

        static void Anchor(RectTransform rt, Vector2 corner, Vector2 offset, Vector2 size)
        {
            rt.anchorMin = rt.anchorMax = rt.pivot = corner;
            rt.anchoredPosition = offset;
            rt.sizeDelta = size;
        }

        static void Stretch(RectTransform rt)
        {
            rt.anchorMin = Vector2.zero;
            rt.anchorMax = Vector2.one;
            rt.offsetMin = rt.offsetMax = Vector2.zero;
        }
    }
}
