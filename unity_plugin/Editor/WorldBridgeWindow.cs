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
        [SerializeField] Texture2D pasteLayer;
        [SerializeField] int pasteX, pasteY;
        [SerializeField] bool pasteCentred = true;
        [SerializeField] Vector2 scroll;

        WorldBridgeConnection connection;
        Texture2D preview;
        WorldFrame lastFrame;
        double? latencyMs; // the last sample: only the first frame of each input measures one
        string status = "not connected";
        readonly GameKeys gameKeys = new GameKeys(); // the held game keys, played by WorldInput's default rules
        int previewControl = -1; // the preview's keyboard control: game keys play while it (or nothing) has focus
        bool recording;
        readonly SettingsForm form = new SettingsForm(); // event guidance and the Sampler, filled from the session's settings
        readonly SessionTracker tracker = new SessionTracker(); // as WorldBridgeClient: an ended session's backend is not shown
        readonly FieldStart fieldStart = new FieldStart(); // as WorldBridgeClient: a prompt kind the backend refuses is dropped

        /// <summary>The running session, null when none: a connection that gave up still holds its last one.</summary>
        SessionInfo Running => tracker.InSession ? connection?.Session : null;

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
            tracker.Forget();
            fieldStart.Forget();
            gameKeys.Clear(); // a key held now must not play in the next session's chords
            recording = false;
            BlankPreview(); // the next host's world must not show under this one's frame
        }

        /// <summary>Forgets the shown frame, so an ended world's last frame never stands for the next one.</summary>
        void BlankPreview()
        {
            lastFrame = null;
            latencyMs = null;
            if (preview != null) DestroyImmediate(preview);
            preview = null;
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
                tracker.Message(m, c);
                var type = m.GetString("type");
                if (type == "welcome") status = $"connected to {m.GetString("host")}";
                else if (type == "session")
                {
                    if (!m.GetBool("resumed")) fieldStart.Started(m, c.Session);
                    status = $"session {m.GetString("session_id")} {(m.GetBool("resumed") ? "resumed" : "started")}" +
                             (fieldStart.Note == null ? "" : "; " + fieldStart.Note);
                    form.Refill(WorldSettings.From(m.GetMap("settings")), !m.GetBool("resumed"));
                    if (!m.GetBool("resumed"))
                    {
                        recording = false; // the host's recorder ended with the old session
                        gameKeys.Clear();  // a new world starts with no key held
                        BlankPreview();    // "waiting for the first frame…" until the new world's frame 0
                    }
                }
                else if (type == "error" || type == "reject")
                {
                    var error = HostError.From(m);
                    if (error.EndsRecording) recording = false; // the host's recorder ended
                    long sent = 0; // -1: the retry could not be sent and Request put why on the status line: said with the refusal
                    status = fieldStart.Retry(error, c, options => sent = Request(r => r.Start(options)))
                             ?? (sent < 0 ? FieldStart.Unsent(error, status) : error.Kind == HostErrorCode.Unsupported ? "this backend cannot do that: " + error.Message : error.Explained);
                }
                else if (type == "ok")
                {
                    var request = m.GetString("request");
                    if (request == "event") status = "event: " + m.GetString("caption", "fired");
                    else if (request == "edit") status = $"pasted: frame {m.GetLong("frame_index")} is now epoch {m.GetLong("epoch")}, the world goes on from it";
                    else if (request == "settings" && m.GetMap("settings") != null)
                    {
                        var settings = m.GetMap("settings");
                        form.Refill(WorldSettings.From(settings), false);
                        status = settings.Has("event_cfg") ? $"settings: ok (event guidance {settings.GetDouble("event_cfg"):0.##})" : "settings: ok";
                    }
                    else if (request == "record_start") { recording = true; status = "recording to " + m.GetString("path"); }
                    else if (request == "record_stop") { recording = false; status = $"recorded {Protocol.Plural(m.GetLong("frames"), "frame")} to {m.GetString("path")}"; }
                    else status = request + ": ok";
                }
            }
            if (tracker.State(c) != null) changed = true;
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
            if (frame.LatencyMs.HasValue) latencyMs = frame.LatencyMs;
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
            var session = Running;
            DrawPrompt(session);
            if (session == null && tracker.EndedReason != null) EditorGUILayout.HelpBox(tracker.EndedLine, MessageType.Warning);
            if (session != null)
            {
                DrawBackend(session);
                DrawPreview(session);
                DrawPlay(session);
                DrawEvents(session);
                DrawSampler();
                DrawPaste(session);
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
            if (GUILayout.Button("Status")) Request(c => c.RequestStatus()); // before a welcome it says why in the status line
            EditorGUILayout.EndHorizontal();
            EditorGUILayout.HelpBox(status, MessageType.None);
            var answer = connection?.LastStatus; // the Status button's answer
            if (answer != null)
                EditorGUILayout.LabelField($"host: {Protocol.Plural(answer.GetLong("sessions"), "session")}, {answer.GetDouble("fps_measured"):F1} fps sent" +
                                           $"  round trip {connection.RoundTripMs:F0} ms", EditorStyles.miniLabel);
            // also while no host has ever answered at the endpoint (connection refused, tried again): none may run there
            if (connection == null || connection.Welcome == null && connection.State == ConnectionState.Reconnecting)
                EditorGUILayout.HelpBox("Start a host first: worldbridge serve --backend sandbox", MessageType.Info);
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
            if (GUILayout.Button("Start world")) StartWorld();
            GUI.enabled = session != null;
            if (GUILayout.Button("Reset world")) Request(c => c.Reset(fixedSeed ? seed : (long?)null, NullIfEmpty(textPrompt), Image(false), Image(true)));
            GUI.enabled = true;
            EditorGUILayout.EndHorizontal();
            var unsupported = session == null ? null : UnsupportedPrompt(session.Capabilities);
            if (unsupported != null)
                EditorGUILayout.HelpBox($"This backend takes no {unsupported} prompt: Reset world would be refused (start another backend instead).", MessageType.Warning);
        }

        /// <summary>The kind of prompt filled in above that the session's backend cannot take, or null.</summary>
        string UnsupportedPrompt(SessionCapabilities caps)
        {
            if (textPrompt.Trim().Length > 0 && !caps.CanTextPrompt) return "text";
            if (imagePrompt != null && !imageIsSketch && !caps.CanImagePrompt) return "image";
            if (imagePrompt != null && imageIsSketch && !caps.CanSketchPrompt) return "sketch";
            return null;
        }

        void DrawBackend(SessionInfo session)
        {
            EditorGUILayout.HelpBox(session.BackendLabel, session.IsSandbox ? MessageType.Warning : MessageType.Info);
            var caps = session.Capabilities;
            var cannot = Array.FindAll(SessionCapabilities.All, c => !caps.Has(c));
            EditorGUILayout.LabelField($"Can: {caps}" + (cannot.Length > 0 ? $"   Cannot: {string.Join(", ", cannot)}" : "") +
                                       (caps.Declared ? "" : "   (a protocol 1.0 host: assumed)"), EditorStyles.miniLabel);
            // the host's rate, not one asked for: a start without fps ticks at the world's own (the sandbox game's 15);
            // the connection's, which a settings change's answer updates
            EditorGUILayout.LabelField(connection.Mode == "step" ? "Step: one frame per input"
                                       : $"Realtime at {connection.Fps:0.#} fps (the session's rate)",
                                       EditorStyles.miniLabel);
        }

        void DrawPreview(SessionInfo session)
        {
            if (preview == null) { EditorGUILayout.HelpBox("waiting for the first frame…", MessageType.None); return; }
            var rect = GUILayoutUtility.GetAspectRect((float)preview.width / preview.height, GUILayout.MaxWidth(position.width - 8));
            GUI.DrawTextureWithTexCoords(rect, preview, new Rect(0, 1, 1, -1)); // rows arrive top first
            previewControl = GUIUtility.GetControlID(FocusType.Keyboard, rect);
            var e = Event.current;
            if (e.type == EventType.MouseDown && rect.Contains(e.mousePosition)) GUIUtility.keyboardControl = previewControl; // the game keys play
            if (e.type == EventType.MouseDown && rect.Contains(e.mousePosition) && session.Capabilities.CanEdit)
            {
                // a click places the object to paste: the top of the preview is the frame's row 0
                FramePixels.FromDisplayPoint((e.mousePosition.x - rect.x) / rect.width, 1 - (e.mousePosition.y - rect.y) / rect.height,
                                             0, 1, 1, -1, preview.width, preview.height, out pasteX, out pasteY);
                pasteCentred = true;
                e.Use();
                Repaint();
            }
            if (lastFrame != null)
                EditorGUILayout.LabelField($"frame {lastFrame.Index}  epoch {lastFrame.Epoch}  model {lastFrame.ModelMs:F1} ms" +
                                           (latencyMs.HasValue ? $"  latency {latencyMs.Value:F0} ms" : "") +
                                           $"  dropped {connection.FramesDropped}  {connection.MeasuredFps:F1} fps",
                                           EditorStyles.miniLabel);
        }

        void DrawPlay(SessionInfo session)
        {
            EditorGUILayout.LabelField(ActionsHeading(session), EditorStyles.boldLabel);
            EditorGUILayout.BeginHorizontal();
            for (int i = 0; i < session.ActionNames.Length; i++)
            {
                var id = i;
                if (GUILayout.Button(session.ActionNames[i], EditorStyles.miniButton)) Request(c => c.Input(id));
            }
            EditorGUILayout.EndHorizontal();
        }

        /// <summary>Which game keys play here (WorldInput's default rules), so nobody presses arrows a world model ignores.</summary>
        static string ActionsHeading(SessionInfo session)
        {
            var n = GameKeys.DigitKeysPlaying(session);
            if (session.ArrowKeysPlay)
                return $"Actions (or arrow keys + space{(n > 0 ? $", keys 1–{n} by id," : "")} while the preview has focus: click it)";
            return n == 0 ? "Actions (no game keys play this backend's actions)"
                : $"Latent actions (keys 1–{n} play its {n} latent actions while the preview has focus: click it; the arrow keys " +
                  "do nothing: learned from unlabelled video, none of them reliably means \"left\" or \"right\")";
        }

        void DrawEvents(SessionInfo session)
        {
            var caps = session.Capabilities;
            EditorGUILayout.LabelField("World events", EditorStyles.boldLabel);
            if (session.EventTypes.Length > 0)
            {
                EditorGUILayout.BeginHorizontal();
                GUI.enabled = caps.CanEvents;
                eventIndex = EditorGUILayout.Popup(Math.Min(eventIndex, session.EventTypes.Length - 1), session.EventTypes);
                if (GUILayout.Button("Fire", GUILayout.Width(60))) Request(c => c.Event(session.EventTypes[eventIndex]));
                GUI.enabled = true;
                EditorGUILayout.EndHorizontal();
            }
            if (caps.CanTextEvents)
            {
                EditorGUILayout.BeginHorizontal();
                eventText = EditorGUILayout.TextField(eventText);
                GUI.enabled = eventText.Trim().Length > 0;
                if (GUILayout.Button("Fire text", GUILayout.Width(60))) Request(c => c.Event(null, eventText.Trim()));
                GUI.enabled = true;
                EditorGUILayout.EndHorizontal();
            }
            else EditorGUILayout.LabelField("Free-text events: not available for this backend", EditorStyles.miniLabel);
            var settings = connection.CurrentSettings;
            if (settings != null && settings.HasEventGuidance)
            {
                EditorGUILayout.BeginHorizontal();
                var guidance = form.EventGuidance;
                guidance.Value = Math.Max(0, EditorGUILayout.DoubleField($"Event guidance (now {settings.EventCfg.Value:0.##}, 1 = off)", guidance.Value));
                if (GUILayout.Button("Apply", GUILayout.Width(60))) Request(c => c.Settings(eventCfg: guidance.Value));
                EditorGUILayout.EndHorizontal();
            }
            else if (caps.CanEvents || caps.CanTextEvents)
                EditorGUILayout.LabelField("Event guidance: not available for this backend", EditorStyles.miniLabel);
        }

        static readonly string[] UnmaskOrders = { "confidence", "random" };

        /// <summary>(1.2) The world model's sampler: nucleus mass and unmasking order; absent where the session has none.</summary>
        void DrawSampler()
        {
            var settings = connection.CurrentSettings;
            if (settings == null || !settings.TopP.HasValue || settings.Unmask == null) return;
            EditorGUILayout.LabelField("Sampler", EditorStyles.boldLabel);
            EditorGUILayout.BeginHorizontal();
            var topP = form.TopP;
            topP.Value = Math.Min(1, Math.Max(0.05, EditorGUILayout.DoubleField($"Top-p (now {settings.TopP.Value:0.##}, 1 = off)", topP.Value)));
            var shown = Array.IndexOf(UnmaskOrders, form.Unmask.Value);
            var picked = EditorGUILayout.Popup(shown, UnmaskOrders, GUILayout.Width(90));
            if (picked != shown && picked >= 0) form.Unmask.Value = UnmaskOrders[picked];
            // only an order picked here goes: one this window does not list (the popup shows none) is kept
            var unmask = form.Unmask.Value != settings.Unmask && Array.IndexOf(UnmaskOrders, form.Unmask.Value) >= 0 ? form.Unmask.Value : null;
            if (GUILayout.Button("Apply", GUILayout.Width(60))) Request(c => c.Settings(topP: topP.Value, unmask: unmask));
            EditorGUILayout.EndHorizontal();
            EditorGUILayout.LabelField($"Unmasking now: {settings.Unmask}", EditorStyles.miniLabel);
        }

        void DrawPaste(SessionInfo session)
        {
            EditorGUILayout.LabelField("Paste an object", EditorStyles.boldLabel);
            if (!session.Capabilities.CanEdit)
            {
                EditorGUILayout.HelpBox($"{session.BackendName} cannot edit frames" + (session.IsSandbox ? " (the sandbox game renders from game state, not pixels)" : "") +
                                        ": serve a world model to paste objects into the world.", MessageType.Info);
                return;
            }
            pasteLayer = (Texture2D)EditorGUILayout.ObjectField("Object (PNG, RGBA)", pasteLayer, typeof(Texture2D), false);
            EditorGUILayout.BeginHorizontal();
            pasteX = EditorGUILayout.IntField("x", pasteX);
            pasteY = EditorGUILayout.IntField("y", pasteY);
            EditorGUILayout.EndHorizontal();
            pasteCentred = EditorGUILayout.Toggle("Centre on x, y", pasteCentred);
            EditorGUILayout.LabelField($"Click the preview to place it; the frame is {session.Width}x{session.Height}, (0, 0) is its top-left.", EditorStyles.miniLabel);
            GUI.enabled = pasteLayer != null;
            if (GUILayout.Button("Paste into the current frame")) Request(c => Paste(c, pasteLayer));
            GUI.enabled = true;
        }

        long Paste(WorldBridgeConnection c, Texture2D layer)
        {
            var png = WorldBridgeClient.EncodeLayer(layer);
            int x = pasteX, y = pasteY;
            if (pasteCentred && Png.TryReadSize(png, out var w, out var h)) FramePixels.TopLeftForCentre(pasteX, pasteY, w, h, out x, out y);
            return c.Edit(png, x, y);
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

        /// <summary>Game keys play while the preview has focus (clicked, or no field focused): keys typed into the prompt
        /// or event text fields never move the world.</summary>
        void HandleKeys(SessionInfo session)
        {
            var e = Event.current;
            if (session == null || (e.type != EventType.KeyDown && e.type != EventType.KeyUp)) return;
            bool focused = GUIUtility.keyboardControl == 0 || GUIUtility.keyboardControl == previewControl;
            if (!focused && e.type == EventType.KeyDown) return; // a release still counts: the key is no longer held
            // the connection's mode (a settings answer may change it), not the Mode popup (that is for the next start):
            // a noop steps a step world
            var action = gameKeys.OnKey(session, connection.Mode, e.keyCode.ToString(), e.type == EventType.KeyUp);
            if (action == null) return;
            Play(action); // a release in a text field too: the key pressed on the preview is up, a realtime world must stop
            if (focused) e.Use();
        }

        /// <summary>IMGUI sends no KeyUp for a key released once the window lost focus (a click in the Scene view): every
        /// held key is released now, so a realtime world does not walk on and no stale key joins a later chord.</summary>
        void OnLostFocus()
        {
            var session = Running;
            var action = session == null ? null : gameKeys.ReleaseAll(session, connection.Mode);
            gameKeys.Clear();
            if (action != null) Play(action);
        }

        void Play(object action) => Request(c => action is int latent ? c.Input(latent) : c.Input((string)action));

        /// <summary>The Start button: every prompt of the fields may be dropped, so a backend refusing one still gives a world.</summary>
        void StartWorld()
        {
            StartOptions options = null; // built inside the request: a texture that cannot be read says so in the status line
            var id = Request(c => c.Start(options = Options()));
            fieldStart.Sent(options, id, true);
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

        /// <summary>Sends one request; returns its req_id or seq, or -1 after saying why in the status line.</summary>
        long Request(Func<WorldBridgeConnection, long> request)
        {
            if (connection == null) { status = "connect to a host first"; return -1; }
            try { return request(connection); }
            catch (ArgumentException e) { status = e.Message; }
            catch (InvalidOperationException e) { status = e.Message; }
            return -1;
        }
    }
}
