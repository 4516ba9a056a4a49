// The editor window's checks, run under mono against Tests/CompileOnly~ (its EditorGUILayout lists the help boxes drawn).
using System.Collections.Generic;
using System.Collections.Concurrent;
using NUnit.Framework;
using UnityEditor.TestSupport;
using UnityEngine;
using UnityEngine.TestSupport;
using WorldBridge.Core;
using WorldBridge.Editor;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class WorldBridgeWindowTests
    {
        /// <summary>The help boxes one OnGUI pass draws.</summary>
        static List<string> Drawn(WorldBridgeWindow window)
        {
            UnityEditor.TestSupport.Drawn.HelpBoxes.Clear();
            UnityEditor.TestSupport.Drawn.Labels.Clear();
            Event.current = new Event { type = EventType.Repaint };
            Private.Call(window, "OnGUI");
            return new List<string>(UnityEditor.TestSupport.Drawn.HelpBoxes);
        }

        /// <summary>The host's `session` as the window's connection gets it: through the real encoder and decoder, whose
        /// integers are all long (an int written into a MsgMap by hand is read as 0).</summary>
        static MsgMap Started(string kind, string mode, long latents, params object[] actionNames) => (MsgMap)MsgPack.Decode(MsgPack.Encode(new MsgMap
        {
            { "type", "session" }, { "session_id", "s1" }, { "backend_kind", kind }, { "backend_name", "default" },
            { "mode", mode }, { "fps", 24.0 }, { "width", 2 }, { "height", 1 }, { "action_names", new List<object>(actionNames) },
            { "num_latent_actions", latents }, { "event_types", new List<object>() }, { "settings", new MsgMap() },
            { "frame_index", 0 }, { "epoch", 0 }, { "resumed", false },
        }));

        /// <summary>A window whose connection is ready with no session yet (no host: nothing is sent).</summary>
        static WorldBridgeWindow ReadyWindow()
        {
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            Private.Set(connection, "state", ConnectionState.Ready);
            var window = new WorldBridgeWindow();
            Private.Set(window, "connection", connection);
            return window;
        }

        /// <summary>The host's message `m` reaching the window's connection, as Poll takes it.</summary>
        static void Receive(WorldBridgeWindow window, MsgMap m)
        {
            ((BlockingCollection<MsgMap>)Private.Get(ConnectionOf(window), "inbox")).Add(m);
            Private.Call(window, "Poll");
        }

        /// <summary>A window whose connection is ready and has polled the `started` session (no host: nothing is sent).</summary>
        static WorldBridgeWindow WindowIn(MsgMap started)
        {
            var window = ReadyWindow();
            Private.Set(ConnectionOf(window), "session", SessionInfo.From(started, null));
            Private.Set(ConnectionOf(window), "mode", started.GetString("mode")); // as the connection keeps it from the session
            Receive(window, started);
            return window;
        }

        static WorldBridgeConnection ConnectionOf(WorldBridgeWindow window) =>
            (WorldBridgeConnection)Private.Get(window, "connection");

        [Test]
        public void AConnectionThatGaveUpNoLongerShowsItsBackend()
        {
            var window = WindowIn(Started("world_model", "step", 8, "noop"));
            var connection = ConnectionOf(window);
            var session = connection.Session;
            CollectionAssert.Contains(Drawn(window), session.BackendLabel, "the running session's backend is shown");

            Private.Set(connection, "state", ConnectionState.Failed); // no reconnect: it gave up with the session still recorded
            Private.Set(connection, "lastError", "no answer from the host");
            Private.Call(window, "Poll");
            var shown = Drawn(window);
            CollectionAssert.DoesNotContain(shown, session.BackendLabel, "the window still names the backend of a connection that gave up");
            CollectionAssert.Contains(shown, "session ended: no answer from the host");
        }

        /// <summary>The messages of `type` the window's connection has queued for the host, oldest first.</summary>
        static List<MsgMap> Queued(WorldBridgeWindow window, string type)
        {
            var outbox = (System.Collections.IEnumerable)Private.Get(ConnectionOf(window), "outbox");
            var queued = new List<MsgMap>();
            foreach (var item in outbox)
            {
                var header = MsgPack.DecodeHeader((byte[])item.GetType().GetField("Bytes").GetValue(item));
                if (header.GetString("type") == type) queued.Add(header);
            }
            return queued;
        }

        static List<MsgMap> Starts(WorldBridgeWindow window) => Queued(window, "start");

        static MsgMap BadPrompt(MsgMap start, string capability) => new MsgMap
        {
            { "type", "error" }, { "req_id", start.GetLong("req_id") }, { "code", "bad_prompt" }, { "fatal", false },
            { "message", $"this backend takes no {capability.Replace("_", " ")}s" }, { "capability", capability },
        };

        static string Status(WorldBridgeWindow window) => (string)Private.Get(window, "status");

        [Test]
        public void AStoppedRecordingOfOneFrameSaysFrame()
        {
            var window = WindowIn(Started("sandbox", "realtime", 7, Sandbox));
            Receive(window, new MsgMap { { "type", "ok" }, { "req_id", 2L }, { "request", "record_stop" }, { "path", "a.wbrec" }, { "frames", 1L } });
            Assert.AreEqual("recorded 1 frame to a.wbrec", Status(window));
            ConnectionOf(window).Close();
        }

        [Test]
        public void TheStartButtonStartsAgainWithoutAPromptTheBackendRefuses()
        {
            // (a text prompt: the compile-only Texture2D encodes to no PNG, and an image prompt is dropped by the same rule)
            var window = ReadyWindow();
            Private.Set(window, "textPrompt", "a cave");
            Private.Set(window, "seed", 4);
            Private.Call(window, "StartWorld");
            Assert.AreEqual("a cave", Starts(window)[0].GetString("text"));
            Receive(window, BadPrompt(Starts(window)[0], "text_prompt"));
            var starts = Starts(window);
            Assert.AreEqual(2, starts.Count, "the refused start was not sent again: no world on a backend without text prompts");
            Assert.IsNull(starts[1]["text"], "the second start still had the text prompt");
            Assert.AreEqual(4L, starts[1].GetLong("seed"), "the second start lost the other options");
            Assert.AreEqual("this backend takes no text prompts: starting without the text prompt", Status(window));

            var started = Started("sandbox", "realtime", 7, Sandbox);
            started["req_id"] = starts[1].GetLong("req_id");
            Receive(window, started);
            Assert.AreEqual("session s1 started; started without the text prompt: this backend takes none", Status(window));
            started["resumed"] = true; // the connection came back to the same world, which still lacks the prompt
            Receive(window, started);
            Assert.AreEqual("session s1 resumed; started without the text prompt: this backend takes none", Status(window));

            Private.Set(window, "textPrompt", "");
            Private.Call(window, "StartWorld"); // a refusal of a prompt this start did not have: nothing to drop, the refusal is the answer
            Receive(window, BadPrompt(Starts(window)[2], "text_prompt"));
            Assert.AreEqual(3, Starts(window).Count, "a start without that prompt was sent again");
            Assert.AreEqual("bad_prompt: this backend takes no text prompts", Status(window));
            ConnectionOf(window).Close();
        }

        [Test]
        public void ARetryThatCannotBeSentSaysWhatWasRefusedAndWhyInTheStatusLine()
        {
            var window = ReadyWindow();
            Private.Set(window, "textPrompt", "a cave");
            Private.Call(window, "StartWorld");
            // the host now takes messages of at most 8 bytes: the start without the text prompt cannot be sent
            Private.Set(ConnectionOf(window), "welcome", WelcomeInfo.From(new MsgMap { { "type", "welcome" }, { "limits", new MsgMap { { "max_message_bytes", 8L } } } }));
            Receive(window, BadPrompt(Starts(window)[0], "text_prompt"));
            Assert.AreEqual(1, Starts(window).Count, "nothing more was queued");
            StringAssert.StartsWith("bad_prompt: this backend takes no text prompts, and the start without the text prompt could not be sent: " +
                                    "start message of ", Status(window), "the line says what was refused and why no start without it went");
            StringAssert.EndsWith("bytes is over the host's 8-byte limit: start the host with a larger `worldbridge serve --max-message-bytes`", Status(window));
            ConnectionOf(window).Close();
        }

        [Test]
        public void TheHostsSessionsAreCountedAsAPersonWritesThem()
        {
            var window = ReadyWindow();
            foreach (var one in new[] { (1L, "host: 1 session, "), (3L, "host: 3 sessions, "), (0L, "host: 0 sessions, ") })
            {
                var (sessions, said) = one;
                Private.Set(ConnectionOf(window), "lastStatus", new MsgMap { { "type", "status" }, { "sessions", sessions }, { "fps_measured", 24.0 } });
                Drawn(window);
                var labels = UnityEditor.TestSupport.Drawn.Labels;
                Assert.IsTrue(labels.Exists(label => label.StartsWith(said)), $"no '{said}' among: {string.Join(" | ", labels)}");
            }
            ConnectionOf(window).Close();
        }

        [Test]
        public void TheWindowStartsAtTheWorldsOwnRateAndShowsTheRateTheSessionTicksAt()
        {
            var window = ReadyWindow();
            Private.Call(window, "StartWorld");
            Assert.IsTrue(Starts(window)[0].ContainsKey("fps") && !Starts(window)[0].Has("fps"),
                          "the window's start asked for 24 fps, not the world's own rate");
            ConnectionOf(window).Close();
            var started = Started("sandbox", "realtime", 7, Sandbox);
            started["fps"] = 15.0; // the sandbox game's own rate
            window = WindowIn(started);
            Drawn(window);
            CollectionAssert.Contains(UnityEditor.TestSupport.Drawn.Labels, "Realtime at 15 fps (the session's rate)");
            // the host's answer to a settings change (a script's, through the connection) is the rate and mode now
            Private.Set(ConnectionOf(window), "settings", WorldSettings.From(new MsgMap { { "fps", 30.0 }, { "mode", "realtime" } }));
            Drawn(window);
            CollectionAssert.Contains(UnityEditor.TestSupport.Drawn.Labels, "Realtime at 30 fps (the session's rate)");
            Private.Set(ConnectionOf(window), "mode", "step");
            Drawn(window);
            CollectionAssert.Contains(UnityEditor.TestSupport.Drawn.Labels, "Step: one frame per input");
            ConnectionOf(window).Close();
            window = WindowIn(Started("sandbox", "step", 7, Sandbox));
            Drawn(window);
            CollectionAssert.Contains(UnityEditor.TestSupport.Drawn.Labels, "Step: one frame per input");
            ConnectionOf(window).Close();
        }

        const string StartAHost = "Start a host first: worldbridge serve --backend sandbox";

        [Test]
        public void AnEndpointNoHostAnswersSaysToStartOne()
        {
            var window = ReadyWindow();
            var connection = ConnectionOf(window);
            Private.Set(connection, "state", ConnectionState.Reconnecting); // no host listens: connection refused, tried again
            Private.Set(connection, "lastError", "Connection refused");
            Private.Call(window, "Poll");
            CollectionAssert.Contains(Drawn(window), StartAHost, "only the connection's error says a host is missing");

            Private.Set(connection, "welcome", WelcomeInfo.From(new MsgMap { { "type", "welcome" }, { "host", "worldbridge" } }));
            CollectionAssert.DoesNotContain(Drawn(window), StartAHost, "a host that answered and went away was running");
            connection.Close();
        }

        /// <summary>The action the window's game keys send for `key` pressed alone, or null.</summary>
        static object WindowSends(MsgMap started, KeyCode key)
        {
            var sent = Sent(Keyed(WindowIn(started), "+" + key));
            return sent.Count == 0 ? null : sent[sent.Count - 1];
        }

        /// <summary>Feeds the window's key handling each "+Key" (KeyDown) or "-Key" (KeyUp), with nothing focused: the game keys play.</summary>
        static WorldBridgeWindow Keyed(WorldBridgeWindow window, params string[] keys) => Keyed(window, 0, keys);

        /// <summary>Keyed with keyboard control `focus` (0: nothing focused; another id: a text field of the window).</summary>
        static WorldBridgeWindow Keyed(WorldBridgeWindow window, int focus, params string[] keys)
        {
            GUIUtility.keyboardControl = focus;
            foreach (var k in keys)
            {
                Event.current = new Event { type = k[0] == '+' ? EventType.KeyDown : EventType.KeyUp,
                                            keyCode = (KeyCode)System.Enum.Parse(typeof(KeyCode), k.Substring(1)) };
                Private.Call(window, "HandleKeys", ConnectionOf(window).Session);
            }
            return window;
        }

        /// <summary>The actions of the inputs the window's connection has queued for the host, oldest first.</summary>
        static List<object> Sent(WorldBridgeWindow window) => Queued(window, "input").ConvertAll(input => input["action"]);

        static readonly object[] Sandbox = { "noop", "left", "right", "jump", "left_jump", "right_jump", "down" };

        [Test]
        public void AKeyReleasedAfterTheWindowLostFocusStopsARealtimeWorldAndJoinsNoChord()
        {
            var window = Keyed(WindowIn(Started("sandbox", "realtime", 7, Sandbox)), "+RightArrow");
            Private.Call(window, "OnLostFocus"); // the user clicked the Scene view, then let go of the arrow: no KeyUp comes
            CollectionAssert.AreEqual(new object[] { "right", "noop" }, Sent(window), "the world walked on right");
            CollectionAssert.AreEqual(new object[] { "right", "noop", "jump" }, Sent(Keyed(window, "+Space")), "Space alone played a chord");

            window = Keyed(WindowIn(Started("sandbox", "step", 7, Sandbox)), "+RightArrow");
            Private.Call(window, "OnLostFocus");
            CollectionAssert.AreEqual(new object[] { "right" }, Sent(window), "a noop stepped a step world");
            CollectionAssert.AreEqual(new object[] { "right", "jump" }, Sent(Keyed(window, "+Space")), "Space alone played a chord");
        }

        [Test]
        public void AKeyReleasedInATextFieldOfTheWindowStillStopsTheWorld()
        {
            var window = Keyed(WindowIn(Started("sandbox", "realtime", 7, Sandbox)), "+LeftArrow");
            Keyed(window, 42, "-LeftArrow", "+Space", "-Space"); // focus moved to the prompt field meanwhile
            CollectionAssert.AreEqual(new object[] { "left", "noop" }, Sent(window),
                                      "the release sent nothing (the world walked on), or a space typed in the field moved it");
        }

        [Test]
        public void ANewWorldOrAReconnectForgetsTheHeldKeys()
        {
            var started = Started("sandbox", "realtime", 7, Sandbox);
            var window = Keyed(WindowIn(started), "+RightArrow");
            Receive(window, started);
            CollectionAssert.AreEqual(new object[] { "right", "jump" }, Sent(Keyed(window, "+Space")), "the old world's arrow made a chord");

            var resumed = (MsgMap)MsgPack.Decode(MsgPack.Encode(started));
            resumed["resumed"] = true;
            Keyed(window, "+RightArrow");
            Receive(window, resumed);
            Assert.AreEqual("right_jump", Sent(Keyed(window, "-Space", "+Space"))[4], "a resumed session keeps what is held");

            window = Keyed(WindowIn(started), "+RightArrow");
            Private.Call(window, "Disconnect");
            var keys = (GameKeys)Private.Get(window, "gameKeys");
            Assert.IsNull(keys.ReleaseAll(SessionInfo.From(started, null), "realtime"), "the arrow held at the disconnect is still held");
        }

        [Test]
        public void TheWindowsKeysFollowAModeASettingsAnswerChanged()
        {
            var press = new[] { "+LeftArrow", "-LeftArrow" };
            var window = WindowIn(Started("sandbox", "realtime", 7, "noop", "left", "right"));
            Private.Set(ConnectionOf(window), "mode", "step"); // what the connection keeps from an `ok` to settings {mode: "step"}
            Assert.AreEqual(1, Sent(Keyed(window, press)).Count, "the release sent a noop: a step world stepped one more frame");
            window = WindowIn(Started("sandbox", "step", 7, "noop", "left", "right"));
            Private.Set(ConnectionOf(window), "mode", "realtime");
            Assert.AreEqual(2, Sent(Keyed(window, press)).Count, "the release sent nothing: a realtime world walked on");
        }

        /// <summary>What WorldInput's default rules send for `key` held alone, or null.</summary>
        static object WorldInputSends(SessionInfo session, KeyCode key)
        {
            var input = new WorldInput();
            input.CheckRules(session);
            Keys.Held.Add(key);
            try
            {
                var rule = input.Current();
                return rule == null ? null : rule.latentAction >= 0 ? (object)(long)rule.latentAction : rule.action;
            }
            finally { Keys.Held.Clear(); }
        }

        [Test]
        public void TheWindowsGameKeysPlayWhatWorldInputsDefaultRulesPlay()
        {
            var world = Started("world_model", "realtime", 8, "latent_0", "latent_1", "latent_2", "latent_3", "latent_4", "latent_5", "latent_6", "latent_7");
            var sandbox = Started("sandbox", "realtime", 7, "noop", "left", "right", "jump", "left_jump", "right_jump", "down");
            // (not UpArrow: WorldInput reads it through the Vertical axis, which the test Input reads as 0)
            var keys = new List<KeyCode> { KeyCode.LeftArrow, KeyCode.RightArrow, KeyCode.DownArrow, KeyCode.Space };
            for (int i = 0; i < 8; i++) keys.AddRange(new[] { KeyCode.Alpha1 + i, KeyCode.Keypad1 + i });
            foreach (var started in new[] { world, sandbox })
                foreach (var key in keys)
                    Assert.AreEqual(WorldInputSends(SessionInfo.From(started, null), key), WindowSends(started, key),
                                    $"{key} on the {started.GetString("backend_kind")}");
            Assert.AreEqual(5L, WindowSends(world, KeyCode.Alpha6), "key 6 plays latent action 5 on a world model");
            Assert.IsNull(WindowSends(sandbox, KeyCode.Alpha8), "the sandbox game has 7 actions");
        }

        [Test]
        public void TheActionsHeadingSaysKeys1To8PlayAWorldModelsLatentActions()
        {
            var world = Started("world_model", "realtime", 8, "latent_0", "latent_1", "latent_2", "latent_3", "latent_4", "latent_5", "latent_6", "latent_7");
            Drawn(WindowIn(world));
            var heading = UnityEditor.TestSupport.Drawn.Labels.Find(label => label.StartsWith("Latent actions"));
            StringAssert.Contains("keys 1–8 play its 8 latent actions", heading);
            StringAssert.Contains("the arrow keys do nothing", heading);
            Drawn(WindowIn(Started("sandbox", "realtime", 7, "noop", "left", "right", "jump")));
            CollectionAssert.Contains(UnityEditor.TestSupport.Drawn.Labels, "Actions (or arrow keys + space, keys 1–7 by id, while the preview has focus: click it)");
        }
    }
}
