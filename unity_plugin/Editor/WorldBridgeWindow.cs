// Window ▸ World Bridge: prompt, preview and poke a world without entering Play mode. The connection is polled from
// EditorApplication.update and closed before every domain reload, so script edits never leave a socket behind.
using System;
using UnityEditor;
using UnityEngine;
using WorldBridge.Core;

namespace WorldBridge.Editor
{
    public sealed class WorldBridgeWindow : EditorWindow
    {
        [SerializeField] string endpoint = "tcp://127.0.0.1:5555";
        [SerializeField] WorldBackendChoice backend = WorldBackendChoice.HostDefault;
        [SerializeField] WorldMode mode = WorldMode.Step;
        [SerializeField] bool fixedSeed = true;
        [SerializeField] int seed;
        [SerializeField] string textPrompt = "";
        [SerializeField] Texture2D imagePrompt;
        [SerializeField] bool imageIsSketch;
        [SerializeField] string eventText = "";
        [SerializeField] int eventIndex;
        [SerializeField] int branchFrame;
        [SerializeField] Vector2 scroll;

        WorldBridgeConnection connection;
        Texture2D preview;
        WorldFrame lastFrame;
        string status = "not connected";
        bool recording;

        [MenuItem("Window/World Bridge")]
        public static void Open()
        {
            GetWindow<WorldBridgeWindow>("World Bridge").Show();
        }

        void OnEnable()
        {
            EditorApplication.update += Poll;
            AssemblyReloadEvents.beforeAssemblyReload += Disconnect;
        }

        void OnDisable()
        {
            EditorApplication.update -= Poll;
            AssemblyReloadEvents.beforeAssemblyReload -= Disconnect;
            Disconnect();
            if (preview != null) DestroyImmediate(preview);
        }

        void Connect()
        {
            Disconnect();
            try
            {
                connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = endpoint, Client = "unity-editor/" + Protocol.PluginVersion });
                connection.Connect();
                status = "connecting to " + endpoint;
            }
            catch (ArgumentException e)
            {
                status = e.Message;
                connection = null;
            }
        }

        void Disconnect()
        {
            connection?.Close();
            connection = null;
            recording = false;
        }

        /// <summary>Runs every editor tick: drains messages, uploads the newest frame, repaints when something changed.</summary>
        void Poll()
        {
            var c = connection;
            if (c == null) return;
            bool changed = false;
            while (c.TryReceiveMessage(out var m))
            {
                changed = true;
                var type = m.GetString("type");
                if (type == "welcome") status = $"connected to {m.GetString("host")}";
                else if (type == "session") status = $"session {m.GetString("session_id")} started";
                else if (type == "error" || type == "reject") status = $"{m.GetString("code")}: {m.GetString("message")}";
                else if (type == "ok")
                {
                    var request = m.GetString("request");
                    if (request == "event") status = "event: " + m.GetString("caption", "fired");
                    else if (request == "record_start") { recording = true; status = "recording to " + m.GetString("path"); }
                    else if (request == "record_stop") { recording = false; status = $"recorded {m.GetLong("frames")} frames to {m.GetString("path")}"; }
                    else status = request + ": ok";
                }
            }
            if (c.State == ConnectionState.Failed || c.State == ConnectionState.Reconnecting)
            {
                var line = $"{c.State}: {c.LastError}";
                if (line != status) { status = line; changed = true; }
            }
            if (c.TryTakeFrame(out var frame))
            {
                Upload(frame);
                changed = true;
            }
            if (changed) Repaint();
        }

        void Upload(WorldFrame frame)
        {
            lastFrame = frame;
            if (preview == null || preview.width != frame.Width || preview.height != frame.Height)
            {
                if (preview != null) DestroyImmediate(preview);
                preview = new Texture2D(frame.Width, frame.Height, TextureFormat.RGB24, false)
                {
                    name = "WorldBridge preview", filterMode = FilterMode.Point, wrapMode = TextureWrapMode.Clamp, hideFlags = HideFlags.HideAndDontSave,
                };
            }
            preview.LoadRawTextureData(frame.Pixels);
            preview.Apply(false);
        }

        void OnGUI()
        {
            scroll = EditorGUILayout.BeginScrollView(scroll);
            DrawHost();
            var session = connection?.Session;
            DrawPrompt(session);
            if (session != null)
            {
                DrawBackend(session);
                DrawPreview();
                DrawPlay(session);
                DrawEvents(session);
                DrawTimeline();
            }
            EditorGUILayout.EndScrollView();
            HandleKeys(session);
        }

        void DrawHost()
        {
            EditorGUILayout.LabelField("Host", EditorStyles.boldLabel);
            endpoint = EditorGUILayout.TextField("Endpoint", endpoint);
            EditorGUILayout.BeginHorizontal();
            if (GUILayout.Button(connection == null ? "Connect" : "Reconnect")) Connect();
            GUI.enabled = connection != null;
            if (GUILayout.Button("Disconnect")) { Disconnect(); status = "not connected"; }
            GUI.enabled = true;
            EditorGUILayout.EndHorizontal();
            EditorGUILayout.HelpBox(status, MessageType.None);
            if (connection == null) EditorGUILayout.HelpBox("Start a host first: worldbridge serve --backend sandbox", MessageType.Info);
        }

        void DrawPrompt(SessionInfo session)
        {
            EditorGUILayout.Space();
            EditorGUILayout.LabelField("World", EditorStyles.boldLabel);
            backend = (WorldBackendChoice)EditorGUILayout.EnumPopup("Backend", backend);
            mode = (WorldMode)EditorGUILayout.EnumPopup("Mode", mode);
            fixedSeed = EditorGUILayout.Toggle("Fixed seed", fixedSeed);
            if (fixedSeed) seed = EditorGUILayout.IntField("Seed", seed);
            EditorGUILayout.LabelField("Text prompt");
            textPrompt = EditorGUILayout.TextArea(textPrompt, GUILayout.MinHeight(36));
            imagePrompt = (Texture2D)EditorGUILayout.ObjectField("Image prompt", imagePrompt, typeof(Texture2D), false);
            imageIsSketch = EditorGUILayout.Toggle("Image is a sketch", imageIsSketch);
            GUI.enabled = connection != null && connection.IsReady;
            EditorGUILayout.BeginHorizontal();
            if (GUILayout.Button("Start world")) Request(c => c.Start(Options()));
            GUI.enabled = session != null;
            if (GUILayout.Button("Reset world")) Request(c => c.Reset(fixedSeed ? seed : (long?)null, NullIfEmpty(textPrompt), Image(false), Image(true)));
            GUI.enabled = true;
            EditorGUILayout.EndHorizontal();
        }

        void DrawBackend(SessionInfo session)
        {
            EditorGUILayout.HelpBox(session.BackendLabel, session.IsSandbox ? MessageType.Warning : MessageType.Info);
        }

        void DrawPreview()
        {
            if (preview == null) { EditorGUILayout.HelpBox("waiting for the first frame…", MessageType.None); return; }
            var rect = GUILayoutUtility.GetAspectRect((float)preview.width / preview.height, GUILayout.MaxWidth(position.width - 8));
            GUI.DrawTextureWithTexCoords(rect, preview, new Rect(0, 1, 1, -1)); // rows arrive top first
            if (lastFrame != null)
                EditorGUILayout.LabelField($"frame {lastFrame.Index}  epoch {lastFrame.Epoch}  model {lastFrame.ModelMs:F1} ms" +
                                           (lastFrame.LatencyMs.HasValue ? $"  latency {lastFrame.LatencyMs.Value:F0} ms" : "") +
                                           $"  dropped {connection.FramesDropped}", EditorStyles.miniLabel);
        }

        void DrawPlay(SessionInfo session)
        {
            EditorGUILayout.LabelField("Actions (or arrow keys + space while this window has focus)", EditorStyles.boldLabel);
            EditorGUILayout.BeginHorizontal();
            for (int i = 0; i < session.ActionNames.Length; i++)
            {
                var id = i;
                if (GUILayout.Button(session.ActionNames[i], EditorStyles.miniButton)) Request(c => c.Input(id));
            }
            EditorGUILayout.EndHorizontal();
        }

        void DrawEvents(SessionInfo session)
        {
            EditorGUILayout.LabelField("World events", EditorStyles.boldLabel);
            if (session.EventTypes.Length > 0)
            {
                EditorGUILayout.BeginHorizontal();
                eventIndex = EditorGUILayout.Popup(Math.Min(eventIndex, session.EventTypes.Length - 1), session.EventTypes);
                if (GUILayout.Button("Fire", GUILayout.Width(60))) Request(c => c.Event(session.EventTypes[eventIndex]));
                EditorGUILayout.EndHorizontal();
            }
            EditorGUILayout.BeginHorizontal();
            eventText = EditorGUILayout.TextField(eventText);
            GUI.enabled = eventText.Trim().Length > 0;
            if (GUILayout.Button("Fire text", GUILayout.Width(60))) Request(c => c.Event(null, eventText.Trim()));
            GUI.enabled = true;
            EditorGUILayout.EndHorizontal();
        }

        void DrawTimeline()
        {
            EditorGUILayout.LabelField("Timeline", EditorStyles.boldLabel);
            EditorGUILayout.BeginHorizontal();
            branchFrame = EditorGUILayout.IntField("Branch from frame", branchFrame);
            if (GUILayout.Button("Branch", GUILayout.Width(60))) Request(c => c.Branch(Math.Max(0, branchFrame)));
            EditorGUILayout.EndHorizontal();
            if (GUILayout.Button(recording ? "Stop recording" : "Record")) Request(c => recording ? c.RecordStop() : c.RecordStart());
        }

        void HandleKeys(SessionInfo session)
        {
            var e = Event.current;
            if (session == null || (e.type != EventType.KeyDown && e.type != EventType.KeyUp)) return;
            string action = null;
            if (e.type == EventType.KeyUp) action = mode == WorldMode.Realtime ? "noop" : null;
            else if (e.keyCode == KeyCode.LeftArrow) action = "left";
            else if (e.keyCode == KeyCode.RightArrow) action = "right";
            else if (e.keyCode == KeyCode.Space || e.keyCode == KeyCode.UpArrow) action = "jump";
            else if (e.keyCode == KeyCode.DownArrow) action = "down";
            if (action == null || session.ActionId(action) < 0) return;
            Request(c => c.Input(action));
            e.Use();
        }

        StartOptions Options() => new StartOptions
        {
            Backend = backend == WorldBackendChoice.Sandbox ? "sandbox" : backend == WorldBackendChoice.WorldModel ? "world_model" : null,
            Mode = mode == WorldMode.Step ? "step" : "realtime",
            Seed = fixedSeed ? seed : (long?)null,
            Text = NullIfEmpty(textPrompt),
            Image = Image(false),
            Sketch = Image(true),
        };

        byte[] Image(bool sketch) => imagePrompt != null && imageIsSketch == sketch ? WorldBridgeClient.EncodePromptImage(imagePrompt) : null;

        static string NullIfEmpty(string s) => string.IsNullOrEmpty(s) ? null : s;

        void Request(Func<WorldBridgeConnection, long> request)
        {
            if (connection == null) { status = "connect to a host first"; return; }
            try { request(connection); }
            catch (ArgumentException e) { status = e.Message; }
            catch (InvalidOperationException e) { status = e.Message; }
        }
    }
}
