// Owns one connection to a WorldBridge host and ties it to the component's life, so sockets never outlive a Play
// session or a domain reload; raises frames and messages on the main thread for the other components.
using System;
using System.Collections.Generic;
using System.IO;
using UnityEngine;
using UnityEngine.Events;
using WorldBridge.Core;
#if UNITY_EDITOR
using UnityEditor;
#endif

namespace WorldBridge
{
    public enum WorldBackendChoice { HostDefault, Sandbox, WorldModel }
    public enum WorldMode { Realtime, Step }

    [Serializable] public class StringEvent : UnityEvent<string> { }

    /// <summary>A component that listens to its client's events; WorldBridgeClient.Use puts its listeners on the client
    /// it uses now.</summary>
    internal interface IClientListener
    {
        /// <summary>Adds (`on`) or removes this component's listeners on `client`.</summary>
        void Listen(WorldBridgeClient client, bool on);
    }

    [AddComponentMenu("World Bridge/World Bridge Client")]
    [DisallowMultipleComponent]
    public sealed class WorldBridgeClient : MonoBehaviour
    {
        [Header("Host")]
        [Tooltip("Where `worldbridge serve` listens, e.g. tcp://127.0.0.1:5555; changed while connected, the client " +
                 "reconnects to it at the next frame (typed here: once entered, not per keystroke).")]
        [Delayed] public string endpoint = "tcp://127.0.0.1:5555";

        [Header("World")]
        [Tooltip("Send `start` with the settings below as soon as the host welcomed us.")]
        public bool startOnConnect = true;
        public WorldBackendChoice backend = WorldBackendChoice.HostDefault;
        public WorldMode mode = WorldMode.Realtime;
        [Tooltip("Frames/s of a realtime world, 1-120; 0: the world's own rate (its footage fps; the sandbox game's 15). " +
                 "A start with Fps between 0 and 1 is refused; a script's below 0 counts as 0.")]
        [Range(0, 120)] public float fps;
        public bool fixedSeed;
        [Min(0)] public int seed;
        [TextArea(2, 4)] public string textPrompt = "";
        [Tooltip("Image prompt: any texture (a PNG/JPEG asset is sent as its file in the editor).")]
        public Texture2D imagePrompt;
        [Tooltip("Send the image as a sketch (flat-colour layout in the sketch palette) instead of a picture.")]
        public bool imageIsSketch;

        [Header("Status (read only)")]
        [SerializeField] string backendInUse = "not connected";
        [SerializeField] string connectionState = "Idle";
        ConnectionState shownState = ConnectionState.Idle;
        string reportedError; // the connection's LastError already sent to onError
        [SerializeField] long frameIndex;
        [SerializeField] float latencyMs;
        [SerializeField] long framesDropped;
        [Tooltip("Frames/s the host ticks the session at (its reply's fps, then a settings change's): Fps, or the " +
                 "world's own rate for 0.")]
        [SerializeField] float fpsTarget;
        [Tooltip("Frames/s as they arrive from the host (the last 30), whether or not the game showed each.")]
        [SerializeField] float fpsMeasured;
        [Tooltip("Ping → pong round trip in ms, measured by RequestStatus (and the keep-alive pings); -1 until measured.")]
        [SerializeField] float roundTripMs = -1;

        [Header("Events")]
        public UnityEvent onSessionStarted = new UnityEvent();
        [Tooltip("The session ended with the connection still open (a fatal error, the host no longer has it, the " +
                 "connection failed): why. A closed client says so through ConnectionChanged instead.")]
        public StringEvent onSessionEnded = new StringEvent();
        [Tooltip("Caption of every world event that fired on a frame.")]
        public StringEvent onWorldEvent = new StringEvent();
        public StringEvent onError = new StringEvent();

        /// <summary>Every frame that reaches the main thread (the newest one each Update).</summary>
        public event Action<WorldFrame> FrameReceived;
        /// <summary>Every other host message: welcome, session, ok, error, status, pong.</summary>
        public event Action<MsgMap> MessageReceived;
        /// <summary>Every `error` from the host, typed: Kind == HostErrorCode.Unsupported means this backend cannot do it. A
        /// bad_prompt the client answers by starting again without that prompt is not raised (DroppedNote says so).</summary>
        public event Action<HostError> HostErrorReceived;
        /// <summary>The client opened a new connection or closed its own (Open, Shutdown): what showed the old one is stale.</summary>
        public event Action ConnectionChanged;

        public WorldBridgeConnection Connection { get; private set; }
        public SessionInfo Session => Connection?.Session;
        /// <summary>(1.1) What the running backend can do (null before a session): grey out the rest.</summary>
        public SessionCapabilities Capabilities => Session?.Capabilities;
        /// <summary>(1.1) True when the running backend can take PasteLayer (the world model can; the sandbox game cannot).</summary>
        public bool CanEdit => Capabilities?.CanEdit == true; // Session read once: the IO thread may clear it meanwhile
        /// <summary>Which backend the user is looking at: show it next to the world.</summary>
        public string BackendLabel => backendInUse;
        public string ConnectionStateText => connectionState;
        public long FrameIndex => frameIndex;
        /// <summary>Input → frame round trip in ms, measured on the first frame that echoed each input (its seq); it keeps
        /// the last sample while an input stays in force (later frames echo the same seq and measure nothing).</summary>
        public float LatencyMs => latencyMs;
        public long FramesDropped => framesDropped;
        /// <summary>Frames/s as they arrive from the host (the Godot addon's fps_measured); 0 until two frames.</summary>
        public float FpsMeasured => fpsMeasured;
        /// <summary>Frames/s the host ticks the session at (Connection.Fps: its `session.fps`, then that of the answer
        /// to a settings change): the Fps asked for, or the world's own rate when it was left at 0; 0 before a
        /// session.</summary>
        public float FpsTarget => fpsTarget;
        /// <summary>Ping → pong round trip in ms (the Godot addon's rtt_ms); -1 until a pong came back.</summary>
        public float RoundTripMs => roundTripMs;
        /// <summary>False once closed or failed: requests then only report "not connected".</summary>
        public bool IsConnected => Connected(Connection);
        /// <summary>True from onSessionStarted until onSessionEnded or the connection closes: whether BackendLabel names a running backend.</summary>
        public bool InSession => tracker.InSession;
        /// <summary>The running session, null when none: Session outlives its end (a connection that gave up still holds it).</summary>
        public SessionInfo RunningSession => InSession ? Session : null;
        /// <summary>Prompt kinds ("text", "image", "sketch") the running session's start went without: its backend refused
        /// them and they came from this component's fields or a camera prompt (as the Godot addon's dropped_prompts).</summary>
        public IReadOnlyList<string> DroppedPrompts => fieldStart.Dropped;
        /// <summary>DroppedPrompts in words ("started without the text prompt: this backend takes none"); null when none.</summary>
        public string DroppedNote => fieldStart.Note;
        /// <summary>The host's newest `status` answer (sessions, fps_target, fps_measured, ...), null until RequestStatus.</summary>
        public MsgMap LastStatus => Connection?.LastStatus;

        bool startSent;
        bool opened; // Open was called and Shutdown not since: a changed `endpoint` reconnects
        string openedAt; // the endpoint Open last tried, whether or not it could connect
        readonly FieldStart fieldStart = new FieldStart(); // a prompt kind of the fields the backend refuses is dropped
        readonly SessionTracker tracker = new SessionTracker();
        readonly HashSet<WorldPromptFromCamera> cameraPrompts = new HashSet<WorldPromptFromCamera>();
        // starts and resets sent with a text beside an image, by req_id: the host's answer says the text went unused
        readonly Dictionary<long, string> textUnused = new Dictionary<long, string>();
        bool toldTextUnused; // once per client, as the Python client

        /// <summary>A camera prompt that starts the world once connected replaces startOnConnect's plain start, so one start goes.</summary>
        internal void Follow(WorldPromptFromCamera prompt, bool follow)
        {
            if (follow) cameraPrompts.Add(prompt);
            else cameraPrompts.Remove(prompt);
        }

        bool CameraPromptStarts()
        {
            foreach (var prompt in cameraPrompts)
                if (prompt.StartsWorldWhenConnected) return true;
            return false;
        }

        void OnEnable()
        {
            Application.quitting += Shutdown;
#if UNITY_EDITOR
            AssemblyReloadEvents.beforeAssemblyReload += Shutdown;
#endif
            Open();
        }

        void OnDisable()
        {
            Application.quitting -= Shutdown;
#if UNITY_EDITOR
            AssemblyReloadEvents.beforeAssemblyReload -= Shutdown;
#endif
            Shutdown();
        }

        /// <summary>Connects (IO runs on background threads); the component does this in OnEnable. A disabled client,
        /// or one on an inactive object, connects at its next OnEnable instead: nothing would close a connection opened
        /// now.</summary>
        public void Open()
        {
            if (Connection != null || !isActiveAndEnabled) return;
            opened = true;
            openedAt = endpoint;
            try
            {
                Connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = endpoint, Client = "unity/" + Protocol.PluginVersion });
            }
            catch (ArgumentException e)
            {
                Fail(e.Message);
                return;
            }
            Connection.Connect();
            reportedError = null;
            startSent = false;
            tracker.Forget();
            fieldStart.Forget();
            textUnused.Clear();
            backendInUse = "connecting to " + endpoint;
            ConnectionChanged?.Invoke();
        }

        /// <summary>Sends bye and closes the socket; safe to call twice, and before a domain reload. The inspector's
        /// readouts start over, so a re-enabled client never shows the closed connection's state or figures.</summary>
        public void Shutdown()
        {
            var c = Connection;
            Connection = null;
            opened = false;
            c?.Close();
            backendInUse = "not connected";
            tracker.Forget();
            fieldStart.Forget(); // the next connection's req_ids start over: none of its answers is this start's
            textUnused.Clear();
            shownState = ConnectionState.Closed;
            connectionState = "Closed";
            frameIndex = framesDropped = 0;
            latencyMs = fpsMeasured = fpsTarget = 0;
            roundTripMs = -1;
            if (c != null) ConnectionChanged?.Invoke();
        }

        /// <summary>Closes the connection and opens one to `endpoint` (where Start On Connect, when ticked, starts a world;
        /// unticked, no session runs until StartWorld); Update does this by itself at the next frame when `endpoint`
        /// changed (a script, the inspector in Play mode): call it to switch at once. A disabled client only closes: it
        /// connects to `endpoint` at its next OnEnable.</summary>
        public void Reconnect()
        {
            Shutdown();
            Open();
        }

        void Update()
        {
            if (opened && openedAt != endpoint) Reconnect();
            var c = Connection;
            if (c == null) return;
            if (c.State != shownState) connectionState = (shownState = c.State).ToString(); // no string per frame
            if (c.IsReady && startOnConnect && !startSent && c.Session == null && !CameraPromptStarts()) StartWorld();
            while (c.TryReceiveMessage(out var m)) Handle(m);
            EndSession(tracker.State(c));
            roundTripMs = (float)c.RoundTripMs;
            fpsMeasured = (float)c.MeasuredFps;
            fpsTarget = (float)c.Fps;
            var error = c.LastError; // no host, a refused handshake, a malformed frame: the IO thread only records them
            if (error != null && error != reportedError)
            {
                reportedError = error;
                Fail(c.State == ConnectionState.Reconnecting ? error + " (retrying)" : error);
            }
            if (c.TryTakeFrame(out var frame))
            {
                frameIndex = frame.Index;
                framesDropped = c.FramesDropped;
                if (frame.LatencyMs.HasValue) latencyMs = (float)frame.LatencyMs.Value; // null: the same input, no new sample
                foreach (var caption in frame.Events)
                    if (caption != "edit") onWorldEvent.Invoke(caption); // "edit" marks a pasted object, not a world event
                FrameReceived?.Invoke(frame);
            }
        }

        void Handle(MsgMap m)
        {
            var type = m.GetString("type");
            var ended = tracker.Message(m, Connection);
            SayTextUnused(m, type);
            if (type == "session")
            {
                var s = SessionInfo.From(m, Connection?.Welcome);
                if (!s.Resumed) fieldStart.Started(m, Connection?.Session);
                backendInUse = s.BackendLabel + (DroppedNote == null ? "" : "; " + DroppedNote);
                Debug.Log($"[WorldBridge] session {s.SessionId}: {s.BackendLabel}, {s.Width}x{s.Height}, {s.Mode}, can: {s.Capabilities}");
                onSessionStarted.Invoke();
            }
            else if (type == "error" || type == "reject")
            {
                var error = HostError.From(m);
                string unsent = null; // why the retry without the prompt could not be sent: said with the refusal, in one error
                var retry = fieldStart.Retry(error, Connection, options => TrySend(c => c.Start(options), out unsent));
                bool retried = retry != null;
                if (retried)
                {
                    backendInUse = retry;
                    Debug.LogWarning("[WorldBridge] " + retry);
                }
                // not_ready: the connection greets the host again and says so once in LastError, whatever it refused;
                // a refusal retried without the prompt is on no error channel: DroppedNote says what was left out
                if (m.GetString("code") != "not_ready" && !retried) Fail(unsent == null ? error.ToString() : FieldStart.Unsent(error, unsent));
                if (!retried) HostErrorReceived?.Invoke(error);
                EndSession(ended);
                // a refused handshake (reject, or an error to hello) is also the connection's LastError: reported once
                var last = Connection?.LastError;
                if (type == "reject" || last != null && last == error.Message) reportedError = last;
            }
            MessageReceived?.Invoke(m);
        }

        /// <summary>Records request `id` that sent `text` beside `image` (and `sketch`): its acceptance says once that the
        /// text is unused, as the host only tells its stderr.</summary>
        void ExpectTextUnused(long id, string text, byte[] image, byte[] sketch)
        {
            var warning = Protocol.TextUnused(text, image, sketch);
            if (id >= 0 && warning != null && !toldTextUnused) textUnused[id] = warning;
        }

        /// <summary>Warns once when `m` accepts (session, ok) a start or reset whose text the image made unused; any answer settles it.</summary>
        void SayTextUnused(MsgMap m, string type)
        {
            if (!m.Has("req_id") || !textUnused.TryGetValue(m.GetLong("req_id"), out var warning)) return;
            textUnused.Remove(m.GetLong("req_id"));
            if (toldTextUnused || type != "session" && type != "ok") return;
            toldTextUnused = true;
            textUnused.Clear();
            Debug.LogWarning("[WorldBridge] " + warning);
        }

        /// <summary>No backend is named as running once its session is gone (`reason`, from the tracker; null: it runs on):
        /// the label says it ended, and onSessionEnded tells the views (a fresh session names its backend again).</summary>
        void EndSession(string reason)
        {
            if (reason == null) return;
            backendInUse = tracker.EndedLine;
            onSessionEnded.Invoke(reason);
        }

        void Fail(string message)
        {
            Debug.LogWarning("[WorldBridge] " + message);
            onError.Invoke(message);
        }

        // --- Requests (return the req_id or seq, or -1 after reporting the problem through onError) ---

        public long StartWorld() => StartWorld(null, imageIsSketch);

        /// <summary>Starts a world from the inspector settings; `png` (if given) replaces the image prompt. A backend that
        /// refuses the text or image prompt of the fields gets the start again without it (DroppedPrompts); one refusing
        /// `png` does not: a prompt a script passes is never dropped.</summary>
        public long StartWorld(byte[] png, bool asSketch) => StartWorld(png, asSketch, false);

        /// <summary>StartWorld, where `cameraPrompt` says `png` is a WorldPromptFromCamera's, which a refusal may drop.</summary>
        internal long StartWorld(byte[] png, bool asSketch, bool cameraPrompt)
        {
            startSent = true;
            StartOptions sent = null;
            var id = Send(c =>
            {
                var image = png ?? (imagePrompt != null ? EncodePromptImage(imagePrompt) : null);
                sent = new StartOptions
                {
                    Backend = backend == WorldBackendChoice.Sandbox ? "sandbox" : backend == WorldBackendChoice.WorldModel ? "world_model" : null,
                    Mode = mode == WorldMode.Step ? "step" : "realtime",
                    Fps = fps, // 0 or less: the world's own rate (Protocol.StartFps refuses one no host plays)
                    Seed = fixedSeed ? seed : (long?)null,
                    Text = string.IsNullOrEmpty(textPrompt) ? null : textPrompt,
                    Image = asSketch ? null : image,
                    Sketch = asSketch ? image : null,
                };
                return c.Start(sent);
            });
            fieldStart.Sent(sent, id, png == null ? imagePrompt != null : cameraPrompt);
            ExpectTextUnused(id, sent?.Text, sent?.Image, sent?.Sketch);
            return id;
        }

        /// <summary>A new world in the same session; prompts left null keep the previous ones.</summary>
        public long ResetWorld(byte[] png = null, bool asSketch = false, string text = null)
        {
            byte[] image = asSketch ? null : png, sketch = asSketch ? png : null;
            var id = Send(c => c.Reset(fixedSeed ? seed : (long?)null, text, image, sketch));
            ExpectTextUnused(id, text, image, sketch);
            return id;
        }

        public long FireEvent(string eventType) => Send(c => c.Event(eventType));
        public long FireEventText(string text) => Send(c => c.Event(null, text));
        public long SendAction(string actionName) => Send(c => c.Input(actionName));
        public long SendAction(int actionId) => Send(c => c.Input(actionId));
        public long Branch(long frame) => Send(c => c.Branch(frame));
        public long RecordStart(string path = null) => Send(c => c.RecordStart(string.IsNullOrEmpty(path) ? null : path));
        public long RecordStop() => Send(c => c.RecordStop());
        /// <summary>Asks for the host's status (LastStatus) and measures the round trip (RoundTripMs), as the Godot
        /// addon's request_status does; before the host's welcome it says why through onError.</summary>
        public long RequestStatus() => Send(c => c.RequestStatus());

        /// <summary>(1.1) Guidance scale on world events (>= 0, 1 = off); only backends with event conditioning have it.</summary>
        public long SetEventGuidance(float eventCfg)
        {
            var settings = Connection?.CurrentSettings;
            if (settings != null && !settings.HasEventGuidance)
            {
                Fail($"{backendInUse} has no event guidance (its settings have no event_cfg)");
                return -1;
            }
            return Send(c => c.Settings(eventCfg: eventCfg));
        }

        /// <summary>(1.2) The world model's sampler: nucleus mass in (0, 1] (1 = off) and/or unmasking order ("random" or
        /// "confidence"); only backends whose settings have them (not the sandbox game).</summary>
        public long SetSampling(float? topP = null, string unmask = null)
        {
            var settings = Connection?.CurrentSettings;
            if (settings != null && (topP.HasValue && !settings.TopP.HasValue || unmask != null && settings.Unmask == null))
            {
                Fail($"{backendInUse} has no sampler settings (its settings have no top_p / unmask)");
                return -1;
            }
            return Send(c => c.Settings(topP: topP, unmask: unmask));
        }

        /// <summary>
        /// (1.1) Pastes an object into the world: `layer` goes into the current frame with its top-left corner at
        /// `framePixel` (x to the right, y down from the frame's top row; it may hang over an edge), and the world goes on
        /// from the edited frame. Transparent pixels of an RGBA layer leave the world as it was. The host answers `ok`
        /// (through MessageReceived) and re-sends the frame edited, with events ["edit"]. Main thread only (the texture is
        /// encoded here). Returns the req_id, or -1 after reporting the problem through onError, e.g. when the backend
        /// cannot edit (see CanEdit: the sandbox game renders from game state, not pixels).
        /// </summary>
        public long PasteLayer(Texture2D layer, Vector2Int framePixel) => Paste(layer, framePixel, false);

        /// <summary>PasteLayer with the layer centred on `framePixel` (e.g. where the player clicked: WorldView.ScreenToFramePixel).</summary>
        public long PasteLayerCentred(Texture2D layer, Vector2Int framePixel) => Paste(layer, framePixel, true);

        long Paste(Texture2D layer, Vector2Int pixel, bool centred)
        {
            if (layer == null) { Fail("PasteLayer needs a layer texture"); return -1; }
            var s = Session;
            if (s == null) { Fail("no world yet: paste once onSessionStarted has fired"); return -1; }
            if (!s.Capabilities.CanEdit)
            {
                Fail($"{s.BackendLabel} cannot edit frames (it can: {s.Capabilities}); serve a world model to paste objects");
                return -1;
            }
            byte[] png;
            try { png = EncodeLayer(layer); }
            catch (ArgumentException e) { Fail(e.Message); return -1; }
            int x = pixel.x, y = pixel.y;
            if (centred && Png.TryReadSize(png, out var w, out var h)) FramePixels.TopLeftForCentre(pixel.x, pixel.y, w, h, out x, out y);
            return Send(c => c.Edit(png, x, y));
        }
        long Send(Func<WorldBridgeConnection, long> request)
        {
            var id = TrySend(request, out var problem);
            if (problem != null) Fail(problem);
            return id;
        }

        /// <summary>Send that hands back why nothing was sent (`problem`) instead of reporting it, for a caller that
        /// reports it together with what it was answering.</summary>
        long TrySend(Func<WorldBridgeConnection, long> request, out string problem)
        {
            problem = null;
            var c = Connection;
            if (!Connected(c))
            {
                problem = $"not connected to a host at {endpoint}{(c?.LastError != null ? ": " + c.LastError : "")}";
                return -1;
            }
            try { return request(c); }
            catch (ArgumentException e) { problem = e.Message; }
            catch (InvalidOperationException e) { problem = e.Message; }
            return -1;
        }

        /// <summary>What a component that finds its client in its parents says when it has none: how to give it one.</summary>
        public static string NeededBy(string component) =>
            $"{component} needs a WorldBridgeClient: drag one into its Client field (or add it to the client's object)";

        /// <summary>The client `user` works through: `client` (its Client field), else one on its object or a parent, kept
        /// in the field. Asked whenever the client is needed, not only on enable, so one a script sets after AddComponent
        /// (which runs OnEnable on an active object) counts; an empty field means that default, so one a script clears is
        /// filled again (disable the component to detach it). A client on an inactive object counts too: the rig it is on
        /// may be activated later, and a request through it says "not connected", not that there is no client.</summary>
        internal static WorldBridgeClient Find(Component user, ref WorldBridgeClient client)
        {
            if (client == null) client = user.GetComponentInParent<WorldBridgeClient>(true);
            return client;
        }

        /// <summary>The client `user` uses now (Find), with its listeners moved onto it from `listened`, the client it heard
        /// until now: the client a component hears is always the one it sends through, also one a script set or swapped late.</summary>
        internal static WorldBridgeClient Use<T>(T user, ref WorldBridgeClient client, ref WorldBridgeClient listened)
            where T : Component, IClientListener
        {
            Move(user, ref listened, Find(user, ref client));
            return client;
        }

        /// <summary>Moves `user`'s listeners from `listened` onto `next` (null: off them, as a component is disabled).</summary>
        internal static void Move(IClientListener user, ref WorldBridgeClient listened, WorldBridgeClient next)
        {
            if (next == listened) return;
            if (listened != null) user.Listen(listened, false);
            listened = next;
            if (next != null) user.Listen(next, true);
        }

        /// <summary>False when `client` is null, warning `missing` (NeededBy's words) once until it has a client again
        /// (`warned`), not again each time it is re-enabled (WorldInput turned off while a text field has focus). A
        /// component missing its client stays on to find one added later.</summary>
        internal static bool Present(WorldBridgeClient client, string missing, MonoBehaviour user, ref bool warned)
        {
            if (client != null)
            {
                warned = false;
                return true;
            }
            if (!warned) Debug.LogWarning("[WorldBridge] " + missing, user);
            warned = true;
            return false;
        }

        static bool Connected(WorldBridgeConnection c) =>
            c != null && c.State != ConnectionState.Failed && c.State != ConnectionState.Closed;

        /// <summary>
        /// PNG bytes of an object layer, alpha kept: a PNG asset's own file in the editor, else ImageConversion.EncodeToPNG
        /// of the texture (read back through the GPU first when it is compressed or not readable). Main thread only.
        /// </summary>
        public static byte[] EncodeLayer(Texture2D texture)
        {
            if (texture == null) throw new ArgumentException("no layer texture given");
            return Encode(texture, ".png");
        }

        /// <summary>
        /// PNG/JPEG bytes of a prompt texture: the asset's own file in the editor, else EncodeToPNG of the texture (read back
        /// through the GPU first when it is compressed or not readable, as imported textures are in a player build).
        /// </summary>
        public static byte[] EncodePromptImage(Texture2D texture)
        {
            if (texture == null) throw new ArgumentException("no prompt texture given");
            return Encode(texture, ".png", ".jpg", ".jpeg");
        }

        /// <summary>The asset file itself when its type is one of `fileTypes` (editor only), else PNG bytes of the pixels.</summary>
        static byte[] Encode(Texture2D texture, params string[] fileTypes)
        {
#if UNITY_EDITOR
            var path = AssetDatabase.GetAssetPath(texture);
            if (Array.IndexOf(fileTypes, Path.GetExtension(path).ToLowerInvariant()) >= 0) return ReadAssetFile(path);
#endif
            if (texture.isReadable) // EncodeToPNG gives nothing for a compressed format, readable or not
            {
                var png = ImageConversion.EncodeToPNG(texture);
                if (png != null && png.Length > 0) return png;
            }
            return ReadBackAsPng(texture);
        }

        /// <summary>The asset's file; a file that cannot be read (gone, locked, no permission) is an InvalidOperationException
        /// naming it, which every request reports instead of it escaping (and breaking the editor window's layout).</summary>
        static byte[] ReadAssetFile(string path)
        {
            try { return File.ReadAllBytes(path); }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw new InvalidOperationException($"cannot read the texture's file {path} ({e.Message}): reimport it or pick another texture", e);
            }
        }

        /// <summary>Copies any texture (compressed, not readable) into an RGBA32 one through a RenderTexture and encodes that.</summary>
        static byte[] ReadBackAsPng(Texture2D texture)
        {
            var target = RenderTexture.GetTemporary(texture.width, texture.height, 0);
            var previous = RenderTexture.active;
            var copy = new Texture2D(texture.width, texture.height, TextureFormat.RGBA32, false) { name = "WorldBridge layer" };
            try
            {
                Graphics.Blit(texture, target);
                RenderTexture.active = target;
                copy.ReadPixels(new Rect(0, 0, texture.width, texture.height), 0, 0);
                copy.Apply(false);
                var png = ImageConversion.EncodeToPNG(copy);
                if (png == null || png.Length == 0) throw new ArgumentException($"texture '{texture.name}' could not be encoded to PNG");
                return png;
            }
            finally
            {
                RenderTexture.active = previous;
                RenderTexture.ReleaseTemporary(target);
                if (Application.isPlaying) Destroy(copy); else DestroyImmediate(copy); // the editor window encodes outside Play mode
            }
        }

    }
}
