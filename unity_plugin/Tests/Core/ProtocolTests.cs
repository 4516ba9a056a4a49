using System;
using System.Collections.Generic;
using NUnit.Framework;
using WorldBridge.Core;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class ProtocolTests
    {
        List<Dictionary<string, object>> vectors;

        [SetUp]
        public void LoadVectors() => vectors = GoldenVectors.Load("msgpack.json");

        void AssertBytes(string vector, MsgMap built)
        {
            var v = GoldenVectors.ByName(vectors, vector);
            Assert.AreEqual((string)v["hex"], GoldenVectors.ToHex(MsgPack.Encode(built)), $"{vector}: the builder's bytes differ from the golden vector");
        }

        MsgMap Message(string vector) => (MsgMap)GoldenVectors.Untag(GoldenVectors.ByName(vectors, vector)["value"]);

        /// <summary>`message` without `keys`: what an older host sent, which sent them not at all (not nil).</summary>
        static MsgMap Without(MsgMap message, params string[] keys)
        {
            var older = new MsgMap();
            foreach (var entry in message)
                if (Array.IndexOf(keys, entry.Key) < 0) older.Add(entry.Key, entry.Value);
            return older;
        }

        [Test]
        public void ClientMessagesMatchTheGoldenVectorsByteForByte()
        {
            AssertBytes("msg_hello", Protocol.Hello("unity/0.1.0", new[] { "raw", "png" }));
            var start = Message("msg_start");
            AssertBytes("msg_start", Protocol.Start(1, new StartOptions
            {
                Backend = null, Mode = "realtime", Fps = 24, Seed = 7, Text = "a cave with lava", Image = start.GetBytes("image"),
                ActionMap = new Dictionary<string, int> { { "jump", 3 } },
            }));
            AssertBytes("msg_start_resume", Protocol.Resume(2, "s-4f2a9c"));
            // What WorldBridgeClient sends by default: Fps null (its fps 0), the world's own rate, which the host names.
            AssertBytes("msg_start_own_rate", Protocol.Start(1, new StartOptions()));
            Assert.AreEqual(15.0, SessionInfo.From(Message("msg_session_own_rate")).Fps, "the sandbox game's own rate");
            AssertBytes("msg_input_id", Protocol.Input(2, 1234.5, 17));
            AssertBytes("msg_input_name", Protocol.Input("jump", 1301.25, 18));
            AssertBytes("msg_event", Protocol.Event(3, "weather_snow", null));
            AssertBytes("msg_event_text", Protocol.Event(4, null, "make it snow"));
            AssertBytes("msg_reset", Protocol.Reset(5, seed: 8, text: "a forest"));
            AssertBytes("msg_branch", Protocol.Branch(6, 30));
            AssertBytes("msg_settings", Protocol.Settings(7, steps: 8, temperature: 0.9, cfg: 1.5, fps: 30, mode: "step"));
            AssertBytes("msg_settings_event_cfg", Protocol.Settings(14, eventCfg: 2.5));
            AssertBytes("msg_settings_sampling", Protocol.Settings(15, topP: 0.9, unmask: "confidence"));
            AssertBytes("msg_edit", Protocol.Edit(13, Message("msg_edit").GetBytes("layer"), -40, 12));
            AssertBytes("msg_record_start", Protocol.RecordStart(8, "demo.wbrec"));
            AssertBytes("msg_record_stop", Protocol.RecordStop(9));
            AssertBytes("msg_status_request", Protocol.Status(10));
            AssertBytes("msg_ping", Protocol.Ping(11, 5000.5));
            AssertBytes("msg_bye", Protocol.Bye());
        }

        [Test]
        public void HostMessagesParseIntoTypedViews()
        {
            var w = WelcomeInfo.From(Message("msg_welcome"));
            Assert.AreEqual(1, w.ProtocolMajor);
            Assert.AreEqual(16777216, w.MaxMessageBytes);
            Assert.IsTrue(w.Can("branch"));
            CollectionAssert.AreEqual(new[] { "sandbox", "world_model" }, w.Backends);

            var s = SessionInfo.From(Message("msg_session"));
            Assert.AreEqual("s-4f2a9c", s.SessionId);
            Assert.IsTrue(s.IsSandbox);
            StringAssert.StartsWith("SANDBOX GAME (test backend, not the world model): ", s.BackendLabel); // as in Godot
            s.BackendKind = "replay"; // a kind from a newer host is not the world model
            Assert.AreEqual("unknown backend replay: " + s.BackendName, s.BackendLabel);
            s.BackendKind = "world_model";
            Assert.AreEqual("WORLD MODEL: " + s.BackendName, s.BackendLabel);
            s.BackendName = "world model tiny (default_world, step 4627)"; // says "world model" once, as Python
            Assert.AreEqual("WORLD MODEL: tiny (default_world, step 4627)", s.BackendLabel);
            s.BackendKind = "";
            Assert.AreEqual("unknown backend: world model tiny (default_world, step 4627)", s.BackendLabel);
            Assert.AreEqual(3, s.ActionId("jump"));
            Assert.AreEqual(-1, s.ActionId("fly"));
            Assert.AreEqual(64, s.Width);
            Assert.AreEqual(7, s.ActionNames.Length, "the sandbox game's 7 actions");
            CollectionAssert.Contains(s.EventTypes, "weather_snow");
            CollectionAssert.Contains(s.EventTypes, "spawn_enemy");

            var f0 = Message("msg_frame_0");
            Assert.IsNull(f0["client_ts"]);
            var e = Assert.Throws<FormatException>(() => WorldFrame.From(f0, new byte[64 * 64 * 3]));
            StringAssert.Contains("png", e.Message);
            var frame = WorldFrame.From(Message("msg_frame"), new byte[64 * 64 * 3]);
            Assert.AreEqual(42, frame.Index);
            Assert.AreEqual(2, frame.Action);
            Assert.AreEqual(3.75, frame.TotalMs);
            StringAssert.Contains("64x64x3", Assert.Throws<FormatException>(() => WorldFrame.From(Message("msg_frame"), new byte[10])).Message);
        }

        [Test]
        public void HelloAsksForProtocolOneTwo()
        {
            var hello = (MsgMap)MsgPack.Decode(MsgPack.Encode(Protocol.Hello("x", new[] { "raw" })));
            Assert.AreEqual((1L, 3L), (hello.GetLong("protocol_major"), hello.GetLong("protocol_minor")));
            Assert.AreEqual(3, Message("msg_hello").GetLong("protocol_minor"), "the golden hello is the 1.3 one");
        }

        [Test]
        public void SessionCapabilitiesAreParsedIntoATypedSet()
        {
            var welcome11 = WelcomeInfo.From(Message("msg_welcome"));
            Assert.IsTrue(welcome11.Can("edit") && welcome11.Can("text_events"));
            var welcome10 = WelcomeInfo.From(Message("msg_welcome"));
            welcome10.ProtocolMinor = 0;
            welcome10.Capabilities = Array.FindAll(welcome10.Capabilities, c => c != "edit" && c != "text_events");

            // a 1.1 world model that can do everything
            var caps = SessionInfo.From(Message("msg_session_caps"), welcome11).Capabilities;
            Assert.IsTrue(caps.Declared);
            CollectionAssert.AreEqual(SessionCapabilities.All, caps.Names);
            Assert.IsTrue(caps.CanEdit && caps.CanEvents && caps.CanTextEvents && caps.CanSketchPrompt && caps.Has("edit"));

            // a 1.1 session that lists less: exactly that, and future names are kept
            var sandbox = Message("msg_session");
            sandbox["capabilities"] = new List<object> { "text_prompt", "sketch_prompt", "events", "time_travel" };
            caps = SessionInfo.From(sandbox, welcome11).Capabilities;
            Assert.IsTrue(caps.CanTextPrompt && caps.CanSketchPrompt && caps.CanEvents && caps.Has("time_travel"));
            Assert.IsFalse(caps.CanEdit || caps.CanImagePrompt || caps.CanTextEvents || caps.Has("text_events"));
            sandbox["capabilities"] = new List<object>();
            caps = SessionInfo.From(sandbox).Capabilities;
            Assert.IsTrue(caps.Declared);
            Assert.IsFalse(caps.CanTextPrompt || caps.CanEvents || caps.CanEdit, "an empty list means the backend can do none of them");
            Assert.AreEqual("none", caps.ToString());

            // the sandbox as a 1.1 host sends it: no image prompt, no edit
            caps = SessionInfo.From(Message("msg_session"), welcome11).Capabilities;
            Assert.IsTrue(caps.Declared && caps.CanTextPrompt && caps.CanSketchPrompt && caps.CanEvents && caps.CanTextEvents);
            Assert.IsFalse(caps.CanImagePrompt || caps.CanEdit);

            // a 1.0 host says nothing: everything 1.0 had is allowed; edit only if the host's welcome knows it
            var old = Without(Message("msg_session"), "capabilities");
            Assert.IsFalse(old.ContainsKey("capabilities"));
            caps = SessionInfo.From(old, welcome10).Capabilities;
            Assert.IsFalse(caps.Declared);
            Assert.IsTrue(caps.CanTextPrompt && caps.CanImagePrompt && caps.CanSketchPrompt && caps.CanEvents && caps.CanTextEvents);
            Assert.IsFalse(caps.CanEdit, "a 1.0 host ignores `edit` and never answers it");
            Assert.IsFalse(SessionInfo.From(old).Capabilities.CanEdit);
            Assert.IsTrue(SessionInfo.From(old, welcome11).Capabilities.CanEdit);
        }

        [Test]
        public void SettingsCarryEventGuidanceWhenTheBackendHasIt()
        {
            var with = SessionInfo.From(Message("msg_session_caps")).TypedSettings;
            Assert.IsTrue(with.HasEventGuidance);
            Assert.AreEqual(1.0, with.EventCfg);
            Assert.AreEqual(8, with.Steps);
            Assert.AreEqual("step", with.Mode);
            Assert.AreEqual(1.0, with.TopP);  // 1.2
            Assert.AreEqual("confidence", with.Unmask);
            var without = SessionInfo.From(Message("msg_session")).TypedSettings;
            Assert.IsFalse(without.HasEventGuidance, "the sandbox's settings have a nil event_cfg");
            Assert.IsFalse(without.TopP.HasValue || without.Unmask != null, "nor top_p and unmask");
            var sandbox = WorldSettings.From(new MsgMap { { "steps", null }, { "temperature", null }, { "cfg", null }, { "event_cfg", null },
                                                          { "fps", 24.0 }, { "mode", "realtime" } });
            Assert.IsFalse(sandbox.HasEventGuidance || sandbox.Steps.HasValue || sandbox.Cfg.HasValue);
            Assert.AreEqual(24.0, sandbox.Fps);
            var lenient = WorldSettings.From(new MsgMap { { "event_cfg", 2L } });
            Assert.AreEqual(2.0, lenient.EventCfg, "an integer where a float is documented is accepted");
        }

        [Test]
        public void SamplingSettingsAreCheckedBeforeSending()
        {
            Assert.Throws<ArgumentException>(() => Protocol.Settings(1, topP: 0.0));
            Assert.Throws<ArgumentException>(() => Protocol.Settings(1, topP: 1.5));
            Assert.Throws<ArgumentException>(() => Protocol.Settings(1, unmask: "sideways"));
            Assert.AreEqual("random", Protocol.Settings(1, unmask: "random").GetString("unmask"));
        }

        [Test]
        public void ErrorsAreTyped()
        {
            var e = HostError.From(Message("msg_error_unsupported"));
            Assert.AreEqual(HostErrorCode.Unsupported, e.Kind);
            Assert.AreEqual("unsupported", e.Code);
            Assert.AreEqual(13L, e.ReqId);
            Assert.IsFalse(e.Fatal);
            StringAssert.Contains("world_model", e.Message);
            Assert.AreEqual(HostErrorCode.BadArgument, HostError.From(Message("msg_error")).Kind);
            Assert.AreEqual("edit", e.Capability, "the sandbox cannot edit: the refusal names the capability");
            Assert.IsNull(HostError.From(Message("msg_error")).Capability, "only refusals of a capability carry one");
            var prompt = HostError.From(Message("msg_error_bad_prompt"));
            Assert.AreEqual((HostErrorCode.BadPrompt, "image_prompt"), (prompt.Kind, prompt.Capability), "the refused kind, not its wording");
            var evt = HostError.From(Message("msg_error_unsupported_event"));
            Assert.AreEqual((HostErrorCode.Unsupported, "text_events"), (evt.Kind, evt.Capability), "a refused event kind names its capability too");
            var reject = HostError.From(Message("msg_reject"));
            Assert.AreEqual((HostErrorCode.VersionMismatch, true), (reject.Kind, reject.Fatal));
            Assert.IsNull(reject.ReqId);
            Assert.AreEqual(HostErrorCode.Other, HostError.Parse("melted"), "a code newer than the plugin is kept as text");
            foreach (var code in new[] { "not_ready", "no_session", "unknown_session", "bad_message", "too_large", "bad_prompt", "busy", "backend_error", "recording_stopped" })
                Assert.AreNotEqual(HostErrorCode.Other, HostError.Parse(code), code);
            Assert.AreEqual(HostErrorCode.Unsupported, new WorldBridgeException(e).Kind);

            var ok = Message("msg_ok_edit");
            Assert.AreEqual(("edit", 2L, 42L), (ok.GetString("request"), ok.GetLong("epoch"), ok.GetLong("frame_index")));
        }

        [Test]
        public void AnEventRefusedAtItsFrameNamesTheEvent()
        {
            var e = HostError.From(Message("msg_error_event_refused"));
            Assert.AreEqual((HostErrorCode.BadArgument, (long?)null), (e.Kind, e.ReqId), "it answers no request: its ok went earlier");
            Assert.AreEqual(((long?)16L, "weather_snow", (string)null), (e.EventReqId, e.EventType, e.EventText),
                "the req_id FireEvent returned, and what it sent");
            var other = HostError.From(Message("msg_error"));
            Assert.AreEqual(((long?)null, (string)null, (string)null), (other.EventReqId, other.EventType, other.EventText),
                "only a refused event names one");
        }

        [Test]
        public void OnlyAnErrorWithTheEventReqIdKeyNamesAnEvent()
        {
            // an event sent without a req_id is refused with event_req_id nil: the key, not its value, marks the refusal
            var unnamed = HostError.From(new MsgMap
            {
                { "type", "error" }, { "req_id", null }, { "code", "bad_argument" }, { "message", "no snow here" }, { "fatal", false },
                { "event_req_id", null }, { "event_type", null }, { "text", "make it snow" },
            });
            Assert.AreEqual(((long?)null, (string)null, "make it snow"), (unnamed.EventReqId, unnamed.EventType, unnamed.EventText),
                "a refused event without a req_id still names what it sent");
            var other = HostError.From(new MsgMap
            {
                { "type", "error" }, { "req_id", 3L }, { "code", "bad_argument" }, { "message", "no such event" }, { "fatal", false },
                { "event_type", "weather_snow" }, { "text", "make it snow" },
            });
            Assert.AreEqual(((string)null, (string)null), (other.EventType, other.EventText),
                "an error that names no refused event (no event_req_id key) leaves EventType and EventText null");
        }

        [Test]
        public void OnlyAFatalErrorOrRecordingStoppedEndsTheRecording()
        {
            Assert.IsTrue(HostError.From(Message("msg_reject")).EndsRecording, "a reject ends the session");
            Assert.IsFalse(HostError.From(Message("msg_error_unsupported")).EndsRecording, "a refused request leaves it running");
            var stopped = new MsgMap { { "type", "error" }, { "code", "recording_stopped" }, { "fatal", false } };
            Assert.IsTrue(HostError.From(stopped).EndsRecording, "the host stopped the recording itself");
            var fatal = new MsgMap { { "type", "error" }, { "code", "backend_error" }, { "fatal", true } };
            Assert.IsTrue(HostError.From(fatal).EndsRecording, "the session ended with the backend");
        }

        static SessionInfo Session(string mode, params string[] names) =>
            SessionInfo.From(new MsgMap { { "type", "session" }, { "mode", mode }, { "action_names", new List<object>(names) } });

        static readonly string[] SandboxActions = { "noop", "left", "right", "jump", "left_jump", "right_jump", "down" };

        [Test]
        public void OnlyGameKeysPlayAndTheirReleaseStopsOnlyARealtimeWorld()
        {
            var realtime = Session("realtime", SandboxActions);
            Assert.AreEqual(new object[] { "left", "left_jump", "left", "noop" },
                            new[] { new GameKeys().OnKey(realtime, "realtime", "LeftArrow", false), Keys(realtime, "LeftArrow", "+Space"),
                                    Keys(realtime, "LeftArrow", "+Space", "-Space"), Keys(realtime, "LeftArrow", "-LeftArrow") });
            Assert.IsNull(new GameKeys().OnKey(realtime, "realtime", "A", true), "a letter released (typed into a text field) stopped the player");
            Assert.IsNull(new GameKeys().OnKey(realtime, "realtime", "A", false));
            var step = Session("step", SandboxActions);
            Assert.IsNull(Keys(step, "RightArrow", "-RightArrow"), "a noop steps a step world one more frame");
            Assert.AreEqual("right_jump", Keys(step, "RightArrow", "+UpArrow"));
            var world = Session("realtime", "latent_0", "latent_1", "latent_2");
            Assert.IsNull(new GameKeys().OnKey(world, "realtime", "LeftArrow", false));
            Assert.IsNull(new GameKeys().OnKey(world, "realtime", "LeftArrow", true));
        }

        /// <summary>Presses the first key, then each "+key" / "-key" (press / release); the last event's action.</summary>
        static object Keys(SessionInfo session, string first, params string[] then)
        {
            var keys = new GameKeys();
            var action = keys.OnKey(session, session.Mode, first, false);
            foreach (var k in then) action = keys.OnKey(session, session.Mode, k.Substring(1), k[0] == '-');
            return action;
        }

        [Test]
        public void AReleasePlaysByTheModeGivenNotTheModeTheSessionStartedIn()
        {
            var keys = new GameKeys();
            var startedRealtime = Session("realtime", SandboxActions);
            Assert.AreEqual("left", keys.OnKey(startedRealtime, "step", "LeftArrow", false));
            Assert.IsNull(keys.OnKey(startedRealtime, "step", "LeftArrow", true), "set to step since: a noop would step it");
            var startedStep = Session("step", SandboxActions);
            Assert.AreEqual("left", keys.OnKey(startedStep, "realtime", "LeftArrow", false));
            Assert.AreEqual("noop", keys.OnKey(startedStep, "realtime", "LeftArrow", true), "set to realtime since: it walks on without the noop");
        }

        [Test]
        public void AKeyWhoseReleaseNeverCameIsReleasedOrForgottenAndJoinsNoLaterChord()
        {
            var realtime = Session("realtime", SandboxActions);
            var keys = new GameKeys();
            keys.OnKey(realtime, "realtime", "RightArrow", false);
            Assert.AreEqual("noop", keys.ReleaseAll(realtime, "realtime"), "focus lost with an arrow held: the world walked on");
            Assert.AreEqual("jump", keys.OnKey(realtime, "realtime", "Space", false), "the arrow released unseen still made a chord");
            Assert.IsNull(keys.ReleaseAll(realtime, "step"), "a noop steps a step world");
            Assert.IsNull(keys.ReleaseAll(realtime, "realtime"), "nothing was held");
            keys.OnKey(realtime, "realtime", "RightArrow", false);
            keys.Clear();
            Assert.AreEqual("jump", keys.OnKey(realtime, "realtime", "Space", false), "a cleared key still played");
            var world = Session("realtime", 8, "latent_0", "latent_1");
            keys.Clear();
            keys.OnKey(world, "realtime", "LeftArrow", false);
            Assert.IsNull(keys.ReleaseAll(world, "realtime"), "the arrows play nothing on a world model: nothing to stop");
            keys.OnKey(world, "realtime", "Alpha2", false);
            Assert.AreEqual(0, keys.ReleaseAll(world, "realtime"), "latent action 0 stops a backend without noop");
            Assert.IsNull(new GameKeys().OnKey(realtime, "realtime", "Space", true), "a space typed into a text field sent a noop");
        }

        [Test]
        public void AKeyHeldDownStepsAStepWorldOnceNotAtTheKeyRepeatRate()
        {
            var keys = new GameKeys();
            var sandbox = Session("step", SandboxActions);
            Assert.AreEqual("right", keys.OnKey(sandbox, "step", "RightArrow", false));
            Assert.IsNull(keys.OnKey(sandbox, "step", "RightArrow", false), "a key repeat stepped the world again");
            Assert.AreEqual("right_jump", keys.OnKey(sandbox, "step", "Space", false), "a new key while one is held still plays");
            Assert.IsNull(keys.OnKey(sandbox, "step", "Space", false), "a key repeat of the chord stepped the world again");
            keys.OnKey(sandbox, "step", "Space", true);
            keys.OnKey(sandbox, "step", "RightArrow", true);
            Assert.AreEqual("right", keys.OnKey(sandbox, "step", "RightArrow", false), "a key pressed again after its release plays");
            var world = Session("step", 8, "latent_0", "latent_1");
            Assert.AreEqual(2, keys.OnKey(world, "step", "Alpha3", false));
            Assert.IsNull(keys.OnKey(world, "step", "Alpha3", false), "a key repeat stepped the world model again");
        }

        [Test]
        public void TheGameKeysPlayWorldInputsDefaultRulesAndOnlyTheActionsTheBackendHas()
        {
            Func<string, bool> leftAndJump = b => b == "left" || b == "jump";
            Assert.AreEqual("left_jump", GameKeys.Match(leftAndJump, Session("realtime", SandboxActions)), "chords come first");
            Assert.AreEqual("left", GameKeys.Match(leftAndJump, Session("realtime", "noop", "left", "jump")));
            Assert.IsNull(GameKeys.Match(b => b == "down", Session("realtime", "noop", "left")));
        }

        [Test]
        public void TheArrowKeysPlayOnlyABackendThatNamesTheirActions()
        {
            Assert.IsTrue(Session("realtime", "noop", "left", "right", "jump").ArrowKeysPlay);
            var world = Session("realtime", "noop", "latent_1", "latent_2");
            Assert.IsFalse(world.ArrowKeysPlay, "the arrows reach none of a world model's latent actions");
            Assert.IsNull(Keys(world, "LeftArrow", "-LeftArrow"), "an arrow released sent the noop of a backend the arrows do not play");
        }

        /// <summary>A session with `latents` latent actions (the sandbox's equal its named actions, as the host says).</summary>
        static SessionInfo Session(string mode, int latents, params string[] names) =>
            SessionInfo.From(new MsgMap { { "type", "session" }, { "mode", mode }, { "action_names", new List<object>(names) },
                                          { "num_latent_actions", (long)latents } });

        [Test]
        public void TheDigitKeysPlayTheLatentActionsTheBackendHas()
        {
            var world = Session("realtime", 8, "latent_0", "latent_1", "latent_2", "latent_3", "latent_4", "latent_5", "latent_6", "latent_7");
            Assert.AreEqual(new object[] { 2, 7, 0 }, new[] { Keys(world, "Alpha3"), Keys(world, "Keypad8"), Keys(world, "Alpha1", "-Alpha1") },
                            "keys 1-8 play latent actions 0-7; a release plays latent action 0 on a backend without noop");
            Assert.IsNull(Keys(world, "Alpha4", "+LeftArrow", "-LeftArrow"), "the arrows name none of a world model's actions: latent action 3 plays on");
            Assert.IsNull(Keys(world, "Alpha9"), "only 1-8 are game keys");
            Assert.IsNull(Keys(Session("step", 8, "latent_0"), "Alpha2", "-Alpha2"), "a step world moves on presses only");
            var sandbox = Session("realtime", SandboxActions.Length, SandboxActions);
            Assert.AreEqual(new object[] { 1, "right", "noop" }, new[] { Keys(sandbox, "Alpha2"), Keys(sandbox, "Alpha2", "+RightArrow"),
                                                                        Keys(sandbox, "Alpha2", "-Alpha2") },
                            "on the sandbox game a latent id is its action's id, and the arrows come first");
            Assert.IsNull(Keys(sandbox, "Alpha8"), "the sandbox game has 7 actions: key 8 plays none");
            Assert.IsNull(Keys(Session("realtime", 4, "latent_0", "latent_1", "latent_2", "latent_3"), "Keypad5", "-Keypad5"));
        }

        [Test]
        public void ANotReadyIsExplainedAsTheConnectionHandlesIt()
        {
            var notReady = new MsgMap { { "type", "error" }, { "code", "not_ready" }, { "message", "send hello first" }, { "fatal", false } };
            Assert.AreEqual("the host forgot this client (send hello first): greeting it again", HostError.From(notReady).Explained);
            Assert.AreEqual("unsupported: no edits", HostError.From(new MsgMap { { "type", "error" }, { "code", "unsupported" }, { "message", "no edits" } }).Explained);
        }

        [Test]
        public void EditLayersAreCheckedLikeTheHostChecksThem()
        {
            var layer = Message("msg_edit").GetBytes("layer");
            Assert.IsTrue(Png.TryReadSize(layer, out var w, out var h));
            Assert.AreEqual((2, 2), (w, h));
            Assert.IsFalse(Png.TryReadSize(new byte[] { 0xff, 0xd8, 0xff, 0xe0 }, out _, out _), "JPEG is not a PNG");
            Assert.IsFalse(Png.TryReadSize(null, out _, out _));
            StringAssert.Contains("not a PNG", Assert.Throws<ArgumentException>(() => Protocol.Edit(1, new byte[30], 0, 0)).Message);
            StringAssert.Contains("needs a layer", Assert.Throws<ArgumentException>(() => Protocol.Edit(1, null, 0, 0)).Message);

            FramePixels.CheckEdit(layer, -1, 63, 64, 64); // the corners of the allowed range: one pixel of the 2x2 layer on the frame
            FramePixels.CheckEdit(layer, 63, -1, 64, 64);
            var off = Assert.Throws<ArgumentException>(() => FramePixels.CheckEdit(layer, 64, 0, 64, 64)).Message;
            StringAssert.Contains("the 2x2 edit layer at (64, 0) lies wholly off the 64x64 frame", off);
            StringAssert.Contains("x must be in [-1, 63] and y in [-1, 63]", off);
            Assert.Throws<ArgumentException>(() => FramePixels.CheckEdit(layer, 0, -2, 64, 64));
            Assert.Throws<ArgumentException>(() => FramePixels.CheckEdit(layer, -2, 0, 64, 64));
            Assert.Throws<ArgumentException>(() => FramePixels.CheckEdit(layer, 0, 64, 64, 64));
            var big = Assert.Throws<ArgumentException>(() => FramePixels.CheckEdit(layer, 0, 0, 1, 8));
            StringAssert.Contains("2x2 but the frame is 1x8", big.Message);
            Assert.DoesNotThrow(() => FramePixels.CheckEdit(layer, 0, 0, 2, 2));

            FramePixels.TopLeftForCentre(10, 10, 5, 4, out var x, out var y);
            Assert.AreEqual((8, 8), (x, y));
        }

        [Test]
        public void DisplayPointsMapToFramePixels()
        {
            // WorldView shows the frame with uvRect (0, 1, 1, -1): the top of the picture is the frame's row 0
            Assert.IsTrue(FramePixels.FromDisplayPoint(0, 1, 0, 1, 1, -1, 64, 48, out var x, out var y));
            Assert.AreEqual((0, 0), (x, y), "top-left corner");
            Assert.IsTrue(FramePixels.FromDisplayPoint(1, 0, 0, 1, 1, -1, 64, 48, out x, out y));
            Assert.AreEqual((63, 47), (x, y), "bottom-right corner");
            Assert.IsTrue(FramePixels.FromDisplayPoint(0.5, 0.75, 0, 1, 1, -1, 64, 48, out x, out y));
            Assert.AreEqual((32, 12), (x, y), "a quarter down from the top");
            // an unflipped texture (uvRect 0,0,1,1): the top of the picture is the frame's last row
            Assert.IsTrue(FramePixels.FromDisplayPoint(0.25, 1, 0, 0, 1, 1, 64, 48, out x, out y));
            Assert.AreEqual((16, 47), (x, y));
            Assert.IsFalse(FramePixels.FromDisplayPoint(1.2, 0.5, 0, 1, 1, -1, 64, 48, out x, out y), "outside the picture");
            Assert.AreEqual(63, x, "clamped to the frame");
            Assert.Throws<ArgumentException>(() => FramePixels.FromDisplayPoint(0, 0, 0, 1, 1, -1, 0, 48, out _, out _));
        }

        static WorldSettings Sampling(double eventCfg, double topP, string unmask) => WorldSettings.From(new MsgMap
        {
            { "steps", 2L }, { "event_cfg", eventCfg }, { "top_p", topP }, { "unmask", unmask }, { "mode", "step" },
        });

        [Test]
        public void TheSettingsFieldsStartFromTheSessionsSettings()
        {
            var form = new SettingsForm();
            form.Refill(Sampling(2.5, 0.9, "random"), true);
            Assert.AreEqual(2.5, form.EventGuidance.Value, "event guidance started at 1, not the session's value");
            Assert.AreEqual((0.9, "random"), (form.TopP.Value, form.Unmask.Value));
            form.Refill(WorldSettings.From(Message("msg_ok_settings").GetMap("settings")), false); // a sandbox: none of them
            Assert.AreEqual((2.5, 0.9, "random"), (form.EventGuidance.Value, form.TopP.Value, form.Unmask.Value));
        }

        [Test]
        public void ASettingsAnswerKeepsAFieldEditedButNotApplied()
        {
            var form = new SettingsForm();
            form.Refill(Sampling(1.5, 1, "confidence"), true);
            form.TopP.Value = 0.8;         // typed, not applied
            form.EventGuidance.Value = 3;  // typed, then applied
            form.Refill(Sampling(3, 1, "confidence"), false); // the answer to event guidance's Apply
            Assert.AreEqual(0.8, form.TopP.Value, "the event guidance answer refilled top-p: the edit not yet applied was lost");
            Assert.IsTrue(form.TopP.Edited);
            Assert.AreEqual(3, form.EventGuidance.Value);
            Assert.IsFalse(form.EventGuidance.Edited, "the answer to its own Apply makes the field the session's again");
            form.Refill(Sampling(3, 0.8, "confidence"), false); // top-p's Apply answered
            Assert.IsFalse(form.TopP.Edited);
            form.Refill(Sampling(3, 0.5, "random"), false);     // unedited fields follow the session
            Assert.AreEqual((0.5, "random"), (form.TopP.Value, form.Unmask.Value));
            form.TopP.Value = 0.9;
            form.Refill(Sampling(1, 1, "confidence"), true);   // a new world: its settings, whatever was typed
            Assert.AreEqual((1.0, 1.0), (form.TopP.Value, form.EventGuidance.Value));
        }

        [Test]
        public void BadRequestsAreRefusedBeforeSending()
        {
            Assert.Throws<ArgumentException>(() => Protocol.Event(1, null, ""));
            Assert.Throws<ArgumentException>(() => Protocol.Branch(1, -1));
            StringAssert.Contains("realtime", Assert.Throws<ArgumentException>(() => Protocol.Settings(1, mode: "fast")).Message);
            Assert.Throws<ArgumentException>(() => Protocol.Input(1.5, 0, 1));
            StringAssert.Contains("event_cfg", Assert.Throws<ArgumentException>(() => Protocol.Settings(1, eventCfg: -0.5)).Message);
            Assert.Throws<ArgumentException>(() => Protocol.Settings(1, eventCfg: double.NaN));
        }

        [Test]
        public void StartOptionsWithoutDropsOnlyThatPrompt()
        {
            var map = new Dictionary<string, int> { ["left"] = 1 };
            var o = new StartOptions { Backend = "world_model", Mode = "step", Fps = 12, Seed = 5, Text = "a cave", Image = new byte[] { 1 }, Sketch = new byte[] { 2 }, ActionMap = map };
            var w = o.Without("image");
            Assert.IsNull(w.Image);
            Assert.AreEqual(new object[] { "world_model", "step", 12.0, 5L, "a cave" }, new object[] { w.Backend, w.Mode, w.Fps, w.Seed, w.Text });
            Assert.AreSame(o.Sketch, w.Sketch);
            Assert.AreSame(map, w.ActionMap);
            Assert.IsNotNull(o.Image, "the original keeps its prompt");
            Assert.IsNull(o.Without("text").Text);
            Assert.IsNull(o.Without("sketch").Sketch);
            StringAssert.Contains("no prompt kind 'video'", Assert.Throws<ArgumentException>(() => o.Without("video")).Message);
        }
    }
}
