// The messages of docs/protocol.md v1.3 as builders (keys in the documented order, so bytes match the golden
// vectors) and as typed views of what the host sends.
using System;
using System.Collections.Generic;
using System.Diagnostics;

namespace WorldBridge.Core
{
    public static class Protocol
    {
        public const int Major = 1, Minor = 3;
        public const string PluginVersion = "0.3.15";

        static readonly Stopwatch clock = Stopwatch.StartNew();

        /// <summary>"1 session", "3 sessions": a count as a person writes it (the Godot addon's plural).</summary>
        public static string Plural(long count, string noun) => $"{count} {noun}{(count == 1 ? "" : "s")}";

        /// <summary>Milliseconds on a monotonic clock: the client_ts the host echoes back in frames.</summary>
        public static double NowMs => clock.Elapsed.TotalMilliseconds;

        /// <summary>`reqId`: an error refusing this hello carries it, so it is told from answers to what was sent before.</summary>
        public static MsgMap Hello(string client, IList<string> codecs, long? reqId = null)
        {
            var m = new MsgMap
            {
                { "type", "hello" }, { "protocol_major", Major }, { "protocol_minor", Minor },
                { "client", client }, { "codecs", new List<object>(codecs) },
            };
            if (reqId != null) m["req_id"] = reqId.Value;
            return m;
        }

        public static MsgMap Start(long reqId, StartOptions o)
        {
            MsgMap actionMap = null;
            if (o.ActionMap != null && o.ActionMap.Count > 0)
            {
                actionMap = new MsgMap();
                foreach (var kv in o.ActionMap) actionMap[kv.Key] = kv.Value;
            }
            return new MsgMap
            {
                { "type", "start" }, { "req_id", reqId }, { "backend", o.Backend }, { "mode", o.Mode }, { "fps", StartFps(o.Fps) },
                { "seed", o.Seed }, { "text", o.Text }, { "image", o.Image }, { "sketch", o.Sketch },
                { "action_map", actionMap }, { "resume", null },
            };
        }

        public static MsgMap Resume(long reqId, string sessionId) => new MsgMap
        {
            { "type", "start" }, { "req_id", reqId }, { "resume", sessionId },
        };

        /// <summary>`action` is an id (int/long) or a name from the session's action_names / action_map.</summary>
        public static MsgMap Input(object action, double clientTs, long seq)
        {
            if (!(action is string) && !(action is int) && !(action is long))
                throw new ArgumentException("an input action is an action id (int) or an action name (string)");
            return new MsgMap { { "type", "input" }, { "action", action }, { "client_ts", clientTs }, { "seq", seq } };
        }

        public static MsgMap Event(long reqId, string eventType, string text)
        {
            if (string.IsNullOrEmpty(eventType) && string.IsNullOrEmpty(text))
                throw new ArgumentException("an event needs an event type (one of the session's event_types) or free text");
            return new MsgMap { { "type", "event" }, { "req_id", reqId }, { "event_type", eventType }, { "text", text } };
        }

        /// <summary>Only the given prompt keys are sent: missing ones keep the session's previous prompt.</summary>
        public static MsgMap Reset(long reqId, long? seed = null, string text = null, byte[] image = null, byte[] sketch = null)
        {
            var m = new MsgMap { { "type", "reset" }, { "req_id", reqId } };
            if (seed.HasValue) m["seed"] = seed.Value;
            if (text != null) m["text"] = text;
            if (image != null) m["image"] = image;
            if (sketch != null) m["sketch"] = sketch;
            return m;
        }

        public static MsgMap Branch(long reqId, long frame)
        {
            if (frame < 0) throw new ArgumentException($"branch frame must be >= 0, got {frame}");
            return new MsgMap { { "type", "branch" }, { "req_id", reqId }, { "frame", frame } };
        }

        /// <summary>Only the given values are sent. `eventCfg` (1.1) is the guidance scale on events: >= 0, 1 = off.
        /// `topP` (1.2) is the nucleus mass in (0, 1], 1 = off; `unmask` (1.2) is "random" or "confidence".</summary>
        public static MsgMap Settings(long reqId, int? steps = null, double? temperature = null, double? cfg = null, double? fps = null, string mode = null,
                                      double? eventCfg = null, double? topP = null, string unmask = null)
        {
            if (eventCfg.HasValue && !(eventCfg.Value >= 0))
                throw new ArgumentException($"event guidance (event_cfg) must be >= 0 (1 = off), got {eventCfg.Value}");
            if (topP.HasValue && !(topP.Value > 0 && topP.Value <= 1))
                throw new ArgumentException($"top_p (nucleus sampling) must be in (0, 1] (1 = off), got {topP.Value}");
            if (unmask != null && unmask != "random" && unmask != "confidence")
                throw new ArgumentException($"unmask must be \"random\" or \"confidence\", got \"{unmask}\"");
            var m = new MsgMap { { "type", "settings" }, { "req_id", reqId } };
            if (steps.HasValue) m["steps"] = steps.Value;
            if (temperature.HasValue) m["temperature"] = temperature.Value;
            if (cfg.HasValue) m["cfg"] = cfg.Value;
            if (eventCfg.HasValue) m["event_cfg"] = eventCfg.Value;
            if (fps.HasValue) m["fps"] = fps.Value;
            if (mode != null) m["mode"] = CheckMode(mode);
            if (topP.HasValue) m["top_p"] = topP.Value;
            if (unmask != null) m["unmask"] = unmask;
            return m;
        }

        /// <summary>(1.1) Paste a PNG layer with its top-left corner at frame pixel (x, y); the world goes on from there.</summary>
        public static MsgMap Edit(long reqId, byte[] layer, int x, int y)
        {
            if (layer == null || layer.Length == 0) throw new ArgumentException("an edit needs a layer: PNG bytes (RGBA or RGB)");
            if (!Png.TryReadSize(layer, out _, out _))
                throw new ArgumentException("the edit layer is not a PNG: encode it with ImageConversion.EncodeToPNG (RGBA keeps transparency)");
            return new MsgMap { { "type", "edit" }, { "req_id", reqId }, { "layer", layer }, { "x", x }, { "y", y } };
        }

        public static MsgMap RecordStart(long reqId, string path = null)
        {
            var m = new MsgMap { { "type", "record_start" }, { "req_id", reqId } };
            if (path != null) m["path"] = path;
            return m;
        }

        public static MsgMap RecordStop(long reqId) => new MsgMap { { "type", "record_stop" }, { "req_id", reqId } };
        public static MsgMap Status(long reqId) => new MsgMap { { "type", "status" }, { "req_id", reqId } };
        public static MsgMap Ping(long reqId, double clientTs) => new MsgMap { { "type", "ping" }, { "req_id", reqId }, { "client_ts", clientTs } };
        public static MsgMap Bye() => new MsgMap { { "type", "bye" } };

        /// <summary>What a start or reset sending `text` beside an `image` says once, in the Python client's words: the image
        /// starts the world and the text is unused (docs/protocol.md); null when the text counts (none, blank, or a sketch).</summary>
        public static string TextUnused(string text, byte[] image, byte[] sketch) =>
            string.IsNullOrWhiteSpace(text) || image == null || sketch != null ? null
            : $"the text prompt '{text}' is not used: the image starts the world as it is drawn (a world that reads a " +
              "flat-colour image as a sketch uses both); send the text alone, or with a sketch, for the text to count";

        /// <summary>Whether a host plays `fps` (docs/protocol.md §4 start: 1–120 frames/s).</summary>
        public static bool PlayableFps(double fps) => fps >= 1 && fps <= 120;

        /// <summary>The `fps` a start sends: none (the world's own rate) for null or 0 or less, as the Godot addon's core
        /// sends it; 1–120 as given. Any other is refused in the inspector's words: the host plays no rate below 1, and
        /// a slider cannot set null.</summary>
        public static double? StartFps(double? fps)
        {
            if (!fps.HasValue || fps <= 0) return null;
            if (PlayableFps(fps.Value)) return fps;
            throw new ArgumentException($"Fps {fps:G7} is no rate a host plays: set Fps to 0 for the world's own rate, or 1–120");
        }

        public static string CheckMode(string mode) =>
            mode == "realtime" || mode == "step" ? mode : throw new ArgumentException($"mode '{mode}' must be \"realtime\" or \"step\"");
    }

    /// <summary>What `start` asks for; null fields let the host choose (docs/protocol.md §4 start).</summary>
    public sealed class StartOptions
    {
        public string Backend;            // "sandbox", "world_model" or null for the host default
        public string Mode = "realtime";  // or "step": one frame per input
        public double? Fps;               // null, or 0 or less: the world's own rate (its footage fps; the sandbox game's 15)
        public long? Seed;
        public string Text;
        public byte[] Image;              // PNG or JPEG bytes
        public byte[] Sketch;             // PNG bytes in the sketch palette
        public Dictionary<string, int> ActionMap;

        /// <summary>A copy without the `kind` prompt ("text", "image" or "sketch"), every other field kept, for a retry
        /// the backend refused that prompt on.</summary>
        public StartOptions Without(string kind)
        {
            var copy = (StartOptions)MemberwiseClone();
            if (kind == "text") copy.Text = null;
            else if (kind == "image") copy.Image = null;
            else if (kind == "sketch") copy.Sketch = null;
            else throw new ArgumentException($"no prompt kind '{kind}': use text, image or sketch");
            return copy;
        }
    }

    /// <summary>The host's `welcome`: its version, what it can do and its limits.</summary>
    public sealed class WelcomeInfo
    {
        public int ProtocolMajor, ProtocolMinor;
        public string Host, Codec, DefaultBackend;
        public string[] Capabilities, Backends;
        public long MaxMessageBytes, MaxSessions;
        public double IdleTimeoutS;

        public static WelcomeInfo From(MsgMap m)
        {
            var limits = m.GetMap("limits") ?? new MsgMap();
            return new WelcomeInfo
            {
                ProtocolMajor = (int)m.GetLong("protocol_major"), ProtocolMinor = (int)m.GetLong("protocol_minor"),
                Host = m.GetString("host", "?"), Codec = m.GetString("codec", "raw"), DefaultBackend = m.GetString("default_backend", ""),
                Capabilities = m.GetStrings("capabilities"), Backends = m.GetStrings("backends"),
                MaxMessageBytes = limits.GetLong("max_message_bytes", 16L << 20), MaxSessions = limits.GetLong("max_sessions"),
                IdleTimeoutS = limits.GetDouble("idle_timeout_s"),
            };
        }

        public bool Can(string capability) => Array.IndexOf(Capabilities, capability) >= 0;
    }

    /// <summary>What one session's backend can do (1.1 `session.capabilities`); greys out what it cannot.</summary>
    public sealed class SessionCapabilities
    {
        public const string TextPrompt = "text_prompt", ImagePrompt = "image_prompt", SketchPrompt = "sketch_prompt",
                            Events = "events", TextEvents = "text_events", Edit = "edit";
        /// <summary>Every session capability of protocol 1.2 (all came with 1.1), in the documented order.</summary>
        public static readonly string[] All = { TextPrompt, ImagePrompt, SketchPrompt, Events, TextEvents, Edit };

        readonly string[] names;

        /// <summary>True when the host listed them; false for a 1.0 host, which says nothing (then all of 1.0 is allowed).</summary>
        public readonly bool Declared;

        SessionCapabilities(string[] names, bool declared) { this.names = names; Declared = declared; }

        /// <summary>The names allowed, in the host's order (unknown future names are kept).</summary>
        public string[] Names => (string[])names.Clone();

        public bool Has(string capability) => Array.IndexOf(names, capability) >= 0;
        public bool CanTextPrompt => Has(TextPrompt);
        public bool CanImagePrompt => Has(ImagePrompt);
        public bool CanSketchPrompt => Has(SketchPrompt);
        public bool CanEvents => Has(Events);
        public bool CanTextEvents => Has(TextEvents);
        public bool CanEdit => Has(Edit);

        /// <summary>`session.capabilities` if present. A 1.0 host sends none: everything is allowed then, except `edit`
        /// unless the host's welcome lists it (a host that does not know `edit` ignores it and never answers).</summary>
        public static SessionCapabilities From(MsgMap session, WelcomeInfo welcome = null)
        {
            if (session.Has("capabilities")) return new SessionCapabilities(session.GetStrings("capabilities"), true);
            var allowed = new List<string>();
            foreach (var c in All)
                if (c != Edit || (welcome != null && welcome.Can(Edit))) allowed.Add(c);
            return new SessionCapabilities(allowed.ToArray(), false);
        }

        public override string ToString() => names.Length == 0 ? "none" : string.Join(", ", names);
    }

    /// <summary>The session's current `settings` map, typed; a value the backend does not have is null.</summary>
    public sealed class WorldSettings
    {
        public int? Steps;
        public double? Temperature, Cfg, EventCfg, Fps, TopP;
        public string Mode, Unmask;

        /// <summary>(1.1) Only backends with event conditioning have a guidance scale on events.</summary>
        public bool HasEventGuidance => EventCfg.HasValue;

        public static WorldSettings From(MsgMap m)
        {
            m = m ?? new MsgMap();
            return new WorldSettings
            {
                Steps = m.Has("steps") ? (int)m.GetLong("steps") : (int?)null,
                Temperature = Optional(m, "temperature"), Cfg = Optional(m, "cfg"), EventCfg = Optional(m, "event_cfg"),
                Fps = Optional(m, "fps"), Mode = m.GetString("mode"),
                TopP = Optional(m, "top_p"), Unmask = m.GetString("unmask"),  // 1.2; nil for backends without them
            };
        }

        static double? Optional(MsgMap m, string key) => m.Has(key) ? m.GetDouble(key) : (double?)null;
    }

    /// <summary>The host's `session`: which backend runs (users must be told), frame size, actions and events.</summary>
    public sealed class SessionInfo
    {
        public string SessionId, BackendKind, BackendName, Mode;
        public double Fps;
        public int Width, Height, NumLatentActions;
        public string[] ActionNames, EventTypes;
        public MsgMap Settings;
        public long FrameIndex, Epoch;
        public bool Resumed;
        /// <summary>(1.1) What this session's backend can do; a 1.0 host's sessions allow everything it knows.</summary>
        public SessionCapabilities Capabilities;
        /// <summary>`Settings` typed, as the session started (later `settings` answers: WorldBridgeConnection.CurrentSettings).</summary>
        public WorldSettings TypedSettings;
        /// <summary>What the `start` this session answers asked for (kept on resume; null when unknown): the host takes
        /// the names of its ActionMap as actions, but does not list them in ActionNames.</summary>
        public StartOptions StartedWith;

        public bool IsSandbox => BackendKind == "sandbox";

        /// <summary>The line to show users wherever the world is visible: a kind this plugin does not know is never
        /// called the world model (the words of Godot's protocol.gd and Python's backend_label).</summary>
        public string BackendLabel => IsSandbox
            ? $"SANDBOX GAME (test backend, not the world model): {BackendName}"
            : BackendKind == "world_model" // its name says "world model tiny (...)": the label says it once
                ? $"WORLD MODEL: {ModelName}"
                : $"unknown backend{(string.IsNullOrEmpty(BackendKind) ? "" : " " + BackendKind)}: {BackendName}";

        string ModelName => BackendName != null && BackendName.StartsWith("world model ", StringComparison.Ordinal)
            ? BackendName.Substring("world model ".Length) : BackendName;

        public int ActionId(string name) => Array.IndexOf(ActionNames, name);

        /// <summary>True for a name the host takes as an action: one of ActionNames, or of the start's ActionMap.</summary>
        public bool HasAction(string name) =>
            ActionId(name) >= 0 || name != null && StartedWith?.ActionMap != null && StartedWith.ActionMap.ContainsKey(name);

        /// <summary>Whether the arrow keys reach this backend's actions: the sandbox game names left/right/jump, a world
        /// model's latent actions (learned from unlabelled video) are none of them until a checkpoint names them so.</summary>
        public bool ArrowKeysPlay => ActionId("left") >= 0 || ActionId("right") >= 0 || ActionId("jump") >= 0;

        /// <summary>`welcome` (the host's) decides what a session without `capabilities` (a 1.0 host) allows.</summary>
        public static SessionInfo From(MsgMap m, WelcomeInfo welcome = null) => new SessionInfo
        {
            SessionId = m.GetString("session_id", ""), BackendKind = m.GetString("backend_kind", "?"),
            BackendName = m.GetString("backend_name", "?"), Mode = m.GetString("mode", "realtime"), Fps = m.GetDouble("fps", 24),
            Width = (int)m.GetLong("width"), Height = (int)m.GetLong("height"), NumLatentActions = (int)m.GetLong("num_latent_actions"),
            ActionNames = m.GetStrings("action_names"), EventTypes = m.GetStrings("event_types"),
            Settings = m.GetMap("settings") ?? new MsgMap(), FrameIndex = m.GetLong("frame_index"), Epoch = m.GetLong("epoch"),
            Resumed = m.GetBool("resumed"), Capabilities = SessionCapabilities.From(m, welcome),
            TypedSettings = WorldSettings.From(m.GetMap("settings")),
        };
    }

    /// <summary>One frame header plus its pixels (raw codec: RGB8, rows top to bottom).</summary>
    public sealed class WorldFrame
    {
        public string SessionId, Codec;
        public long Index, Epoch, Action;
        public double? ClientTs;
        public long? Seq;
        public double HostTs, ModelMs, EncodeMs, TotalMs, ReceivedMs;
        public string[] Events;
        public int Width, Height;
        public byte[] Pixels;

        /// <summary>Round trip from an input to the first frame that echoed it (its `seq`), in ms. The host echoes the input
        /// in force on every frame, so WorldBridgeConnection clears this on later frames with the same seq (a held key
        /// is not a growing latency): null means no new sample, keep showing the last one.</summary>
        public double? LatencyMs;

        public static WorldFrame From(MsgMap h, byte[] payload)
        {
            var timings = h.GetMap("timings") ?? new MsgMap();
            var f = new WorldFrame
            {
                SessionId = h.GetString("session_id", ""), Codec = h.GetString("codec", "raw"),
                Index = h.GetLong("index"), Epoch = h.GetLong("epoch"), Action = h.GetLong("action", -1),
                ClientTs = h.Has("client_ts") ? h.GetDouble("client_ts") : (double?)null,
                Seq = h.Has("seq") ? h.GetLong("seq") : (long?)null,
                HostTs = h.GetDouble("host_ts"), ModelMs = timings.GetDouble("model"), EncodeMs = timings.GetDouble("encode"),
                TotalMs = timings.GetDouble("total"), Events = h.GetStrings("events"),
                Width = (int)h.GetLong("width"), Height = (int)h.GetLong("height"), Pixels = payload,
                ReceivedMs = Protocol.NowMs,
            };
            if (f.ClientTs.HasValue) f.LatencyMs = f.ReceivedMs - f.ClientTs.Value;
            if (payload == null) throw new FormatException($"frame {f.Index} arrived without its pixel part");
            if (f.Codec != "raw") throw new FormatException($"frame codec '{f.Codec}' is not supported by this client (it asked for raw)");
            if (f.Width <= 0 || f.Height <= 0 || payload.Length != (long)f.Width * f.Height * 3)
                throw new FormatException($"raw frame {f.Index}: {payload.Length} bytes do not match {f.Width}x{f.Height}x3");
            return f;
        }
    }
}
