// What WorldBridgeClient tells the game, run under mono against Tests/CompileOnly~ (the connection's state is set directly).
using System.Collections.Generic;
using System.Reflection;
using NUnit.Framework;
using WorldBridge;
using WorldBridge.Core;
using static WorldBridge.Tests.Private;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class WorldBridgeClientTests
    {
        [Test]
        public void ANotReadyIsReportedOnceWithTheClearerMessage()
        {
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            var client = new WorldBridgeClient { startOnConnect = false };
            Use(client, connection);
            var told = new List<string>();
            client.onError.AddListener(told.Add);
            // what the IO thread leaves when the host forgot this client: its answers to two requests, and the reason
            var inbox = (System.Collections.Concurrent.BlockingCollection<MsgMap>)Get(connection, "inbox");
            for (int id = 1; id <= 2; id++)
                inbox.Add(new MsgMap { { "type", "error" }, { "req_id", id }, { "code", "not_ready" }, { "message", "send hello first" }, { "fatal", false } });
            Set(connection, "lastError", "the host forgot this client (send hello first): greeting it again");
            Call(client, "Update");
            CollectionAssert.AreEqual(new[] { "the host forgot this client (send hello first): greeting it again" }, told);
        }

        [Test]
        public void AddedByScriptItConnectsInAddComponentSoItsFieldsAreSetWithTheObjectInactive()
        {
            Assert.AreEqual("tcp://127.0.0.1:5555", new WorldBridgeClient().endpoint, "the default the README names");
            var active = AddClient(new UnityEngine.GameObject("World")); // Nowhere stands in for the default
            active.endpoint = "tcp://127.0.0.1:2"; // too late: OnEnable ran inside AddComponent, as in Unity
            Assert.AreEqual(Nowhere, active.Connection.Options.Endpoint);
            active.Shutdown();
            var world = new UnityEngine.GameObject("World");
            world.SetActive(false); // the README's way, and the Basic World sample's
            var configured = AddClient(world);
            Assert.IsNull(configured.Connection, "a client on an inactive object connected");
            configured.endpoint = "tcp://127.0.0.1:2";
            world.SetActive(true);
            Assert.AreEqual("tcp://127.0.0.1:2", configured.Connection.Options.Endpoint);
            UnityEngine.Object.Destroy(world);
            Assert.IsNull(configured.Connection, "destroyed, the client kept its connection open");
        }

        [Test]
        public void AChangedEndpointReconnectsAtTheNextFrame()
        {
            var client = AddClient(new UnityEngine.GameObject("World")); // connects to Nowhere
            var first = client.Connection;
            int changed = 0;
            client.ConnectionChanged += () => changed++;
            client.endpoint = "tcp://127.0.0.1:2"; // a script, or the inspector in Play mode
            Call(client, "Update");
            Assert.AreEqual("tcp://127.0.0.1:2", client.Connection.Options.Endpoint, "the client stayed on the old endpoint");
            Assert.AreEqual(ConnectionState.Closed, first.State, "the old connection was left open");
            Assert.AreEqual(2, changed, "the views were not told: closed, then opened");
            Call(client, "Update");
            Assert.AreEqual(2, changed, "an unchanged endpoint reconnected again");
            client.Shutdown();
            client.endpoint = "tcp://127.0.0.1:3";
            Call(client, "Update");
            Assert.IsNull(client.Connection, "a client a script shut down opened again");
            UnityEngine.Object.Destroy(client.gameObject);
        }

        [Test]
        public void AnEndpointFixedAfterABadOneConnectsAndABadOneIsReportedOnce()
        {
            var client = AddClient(new UnityEngine.GameObject("World"));
            var told = new List<string>();
            client.onError.AddListener(told.Add);
            foreach (var bad in new[] { "127.0.0.1:5555", null }) // typed without its scheme; cleared by a script
            {
                told.Clear();
                client.endpoint = bad;
                Call(client, "Update");
                Call(client, "Update");
                Assert.IsNull(client.Connection);
                Assert.AreEqual(1, told.Count, "a bad endpoint was reported " + told.Count + " times: " + string.Join(" | ", told));
                client.endpoint = "tcp://127.0.0.1:1";
                Call(client, "Update");
                Assert.AreEqual("tcp://127.0.0.1:1", client.Connection?.Options.Endpoint, "the fixed endpoint was not used");
            }
            UnityEngine.Object.Destroy(client.gameObject);
        }

        [Test]
        public void ReconnectOpensANewConnectionToTheEndpointAtOnce()
        {
            var client = AddClient(new UnityEngine.GameObject("World"));
            var first = client.Connection;
            client.endpoint = "tcp://127.0.0.1:2";
            client.Reconnect(); // a script that sends at once to the new host
            Assert.AreEqual("tcp://127.0.0.1:2", client.Connection.Options.Endpoint);
            Assert.AreEqual(ConnectionState.Closed, first.State);
            UnityEngine.Object.Destroy(client.gameObject);
        }

        [Test]
        public void ReconnectOnADisabledOrInactiveClientWaitsForItsOnEnable()
        {
            var world = new UnityEngine.GameObject("World");
            var client = AddClient(world);
            client.enabled = false; // its OnDisable ran: no Update, no second OnDisable, no quit hook closes what opens now
            client.endpoint = "tcp://127.0.0.1:2";
            client.Reconnect();
            var leaked = client.Connection;
            leaked?.Close(0);
            Assert.IsNull(leaked, "Reconnect on a disabled client opened a connection nothing closes");
            client.enabled = true;
            Assert.AreEqual("tcp://127.0.0.1:2", client.Connection?.Options.Endpoint, "enabled, it connects to the endpoint set");
            var rig = new UnityEngine.GameObject("Rig");
            rig.SetActive(false); // never activated: Unity sends its client no OnDestroy either
            var asleep = AddClient(rig);
            asleep.Reconnect();
            leaked = asleep.Connection;
            leaked?.Close(0);
            Assert.IsNull(leaked, "Reconnect on a client on an inactive object opened a connection nothing closes");
            UnityEngine.Object.Destroy(world);
            UnityEngine.Object.Destroy(rig);
        }

        [Test]
        public void TheInspectorShowsRoundTripAndFpsAndRequestStatusSaysWhyItSentNothing()
        {
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            var client = new WorldBridgeClient { startOnConnect = false };
            Use(client, connection);
            var told = new List<string>();
            client.onError.AddListener(told.Add);
            Assert.AreEqual(-1, client.RequestStatus(), "no host has welcomed this client yet");
            CollectionAssert.AreEqual(new[] { "no host to ask for its status until its welcome (state: Idle)" }, told);
            Assert.AreEqual((-1f, 0f), (client.RoundTripMs, client.FpsMeasured), "nothing measured yet");
            Set(connection, "roundTripMs", 12.5);   // what the IO thread leaves after a pong and 30 frames
            Set(connection, "measuredFps", 24.0);
            Call(client, "Update");
            Assert.AreEqual((12.5f, 24f), (client.RoundTripMs, client.FpsMeasured));
            foreach (var field in new[] { "roundTripMs", "fpsMeasured" })
                Assert.IsNotNull(typeof(WorldBridgeClient).GetField(field, BindingFlags.NonPublic | BindingFlags.Instance)
                    .GetCustomAttribute<UnityEngine.SerializeField>(), field + " must be shown in the inspector");
        }

        [Test]
        public void AReenabledClientShowsItsNewConnectionsStateNotTheClosedOnes()
        {
            var client = new WorldBridgeClient { startOnConnect = false };
            var first = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            Set(first, "state", ConnectionState.Ready);
            Set(first, "roundTripMs", 12.5);
            Use(client, first);
            Call(client, "Update");
            Assert.AreEqual(("Ready", 12.5f), (client.ConnectionStateText, client.RoundTripMs));
            client.Shutdown(); // OnDisable
            Assert.AreEqual(("Closed", -1f), (client.ConnectionStateText, client.RoundTripMs), "the closed connection's round trip is not this one's");
            var second = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            Set(second, "state", ConnectionState.Ready); // OnEnable again: the new connection reaches Ready
            Use(client, second);
            Call(client, "Update");
            Assert.AreEqual("Ready", client.ConnectionStateText, "the inspector still says Closed for a ready connection");
            second.Close();
        }

        [Test]
        public void ACameraPromptIsSentAgainOnTheConnectionOfAReenabledClient()
        {
            var client = new WorldBridgeClient { startOnConnect = false };
            var prompt = new WorldPromptFromCamera { client = client, sourceCamera = new UnityEngine.Camera(), sendWhenConnected = true };
            foreach (var time in new[] { "first", "after OnDisable + OnEnable" })
            {
                var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
                Set(connection, "state", ConnectionState.Ready);
                Use(client, connection);
                Call(prompt, "Update");
                Call(prompt, "Update");
                var outbox = (System.Collections.ICollection)Get(connection, "outbox");
                Assert.AreEqual(1, outbox.Count, $"the prompt should go once on the {time} connection");
                connection.Close();
            }
        }

        [Test]
        public void ACameraPromptThatStartsTheWorldReplacesTheClientsPlainStart()
        {
            var client = new WorldBridgeClient { startOnConnect = true };
            var prompt = new WorldPromptFromCamera { client = client, sourceCamera = new UnityEngine.Camera(), sendWhenConnected = true };
            Call(prompt, "OnEnable");
            foreach (var cameraOn in new[] { true, false })
            {
                var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
                Set(connection, "state", ConnectionState.Ready);
                Use(client, connection);
                Set(client, "startSent", false); // Open
                for (int frame = 0; frame < 2; frame++)
                {
                    Call(client, "Update"); // Unity may update the client first
                    if (cameraOn) Call(prompt, "Update");
                }
                var outbox = (System.Collections.ICollection)Get(connection, "outbox");
                Assert.AreEqual(1, outbox.Count, cameraOn ? "the client's plain start went beside the camera prompt's" : "no start without the camera prompt");
                connection.Close();
                Call(prompt, "OnDisable");
            }
        }

        /// <summary>The starts the client has queued for the host, oldest first.</summary>
        static List<MsgMap> Starts(WorldBridgeConnection c)
        {
            var starts = new List<MsgMap>();
            foreach (var item in (System.Collections.IEnumerable)Get(c, "outbox"))
            {
                var header = MsgPack.DecodeHeader((byte[])item.GetType().GetField("Bytes").GetValue(item));
                if (header.GetString("type") == "start") starts.Add(header);
            }
            return starts;
        }

        /// <summary>The options of the starts the client has queued for the host, oldest first.</summary>
        static List<StartOptions> StartOptionsQueued(WorldBridgeConnection c)
        {
            var options = new List<StartOptions>();
            foreach (var item in (System.Collections.IEnumerable)Get(c, "outbox"))
                if (item.GetType().GetField("Start").GetValue(item) is StartOptions start) options.Add(start);
            return options;
        }

        /// <summary>A client whose ready connection gets each host answer in turn; `update` runs its Update.</summary>
        static WorldBridgeConnection Ready(WorldBridgeClient client)
        {
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            Set(connection, "state", ConnectionState.Ready);
            Use(client, connection);
            return connection;
        }

        static void Answer(WorldBridgeClient client, MsgMap answer)
        {
            ((System.Collections.Concurrent.BlockingCollection<MsgMap>)Get(client.Connection, "inbox")).Add(answer);
            Call(client, "Update");
        }

        static MsgMap BadPrompt(MsgMap start, string capability) => new MsgMap
        {
            { "type", "error" }, { "req_id", start.GetLong("req_id") }, { "code", "bad_prompt" }, { "fatal", false },
            { "message", $"this backend takes no {capability.Replace("_", " ")}s" }, { "capability", capability },
        };

        static MsgMap Session(MsgMap start) => new MsgMap
        {
            { "type", "session" }, { "req_id", start.GetLong("req_id") }, { "session_id", "s1" }, { "backend_kind", "sandbox" },
            { "backend_name", "sandbox" }, { "mode", "realtime" }, { "resumed", false },
        };

        [Test]
        public void AFieldPromptTheBackendRefusesIsDroppedAndTheWorldStartsWithoutIt()
        {
            var client = new WorldBridgeClient { startOnConnect = true, textPrompt = "a cave", fixedSeed = true, seed = 4 };
            var told = new List<string>();
            client.onError.AddListener(told.Add);
            client.HostErrorReceived += error => told.Add("HostErrorReceived: " + error);
            var connection = Ready(client);
            Call(client, "Update");
            Assert.AreEqual("a cave", Starts(connection)[0].GetString("text"));
            Answer(client, BadPrompt(Starts(connection)[0], "text_prompt"));
            var starts = Starts(connection);
            Assert.AreEqual(2, starts.Count, "the refused start was not sent again: no world on a backend without text prompts");
            Assert.IsFalse(starts[1].Has("text") && starts[1]["text"] != null, "the second start still had the text prompt");
            Assert.AreEqual(4L, starts[1].GetLong("seed"), "the second start kept the other options");
            Assert.AreEqual("this backend takes no text prompts: starting without the text prompt", client.BackendLabel);
            CollectionAssert.IsEmpty(told, "a refusal the client answers itself is no error (onError nor HostErrorReceived)");
            Answer(client, Session(starts[1]));
            CollectionAssert.AreEqual(new[] { "text" }, client.DroppedPrompts);
            StringAssert.EndsWith("; started without the text prompt: this backend takes none", client.BackendLabel);
            // the resume after a drop failed: the connection sent the same start again under a new req_id
            Set(connection, "session", new SessionInfo { SessionId = "s2", StartedWith = StartOptionsQueued(connection)[1] });
            Answer(client, new MsgMap { { "type", "session" }, { "req_id", 77L }, { "session_id", "s2" }, { "resumed", false } });
            Assert.AreEqual("started without the text prompt: this backend takes none", client.DroppedNote,
                            "the re-sent start's world has no prompt either, yet the note was lost");
            connection.Close();
        }

        /// <summary>A client whose ready connection has queued the start of its fields (text prompt "a cave"); `Told` hears
        /// its onError.</summary>
        static (WorldBridgeClient Client, WorldBridgeConnection Connection, List<string> Told) StartedFromFields()
        {
            var client = new WorldBridgeClient { startOnConnect = false, textPrompt = "a cave" };
            var told = new List<string>();
            client.onError.AddListener(told.Add);
            var connection = Ready(client);
            client.StartWorld();
            return (client, connection, told);
        }

        [Test]
        public void ARetryThatCannotBeSentIsOneErrorSayingWhatWasRefusedAndWhy()
        {
            var (client, connection, told) = StartedFromFields();
            var raised = new List<HostError>();
            client.HostErrorReceived += raised.Add;
            // the host now takes messages of at most 8 bytes: the start without the text prompt cannot be sent
            Set(connection, "welcome", WelcomeInfo.From(new MsgMap { { "type", "welcome" }, { "limits", new MsgMap { { "max_message_bytes", 8L } } } }));
            Answer(client, BadPrompt(Starts(connection)[0], "text_prompt"));
            Assert.AreEqual(1, Starts(connection).Count, "nothing more was queued");
            Assert.AreEqual(1, told.Count, "one refusal, one error: " + string.Join(" | ", told));
            StringAssert.StartsWith("bad_prompt: this backend takes no text prompts, and the start without the text prompt could not be sent: " +
                                    "start message of ", told[0]);
            StringAssert.EndsWith("bytes is over the host's 8-byte limit: start the host with a larger `worldbridge serve --max-message-bytes`", told[0]);
            Assert.AreEqual(1, raised.Count, "the refusal stays the game's HostError");
            connection.Close();
        }

        [Test]
        public void AFieldStartTheRestartedHostRefusesIsDroppedToo()
        {
            var (client, connection, told) = StartedFromFields();
            Answer(client, Session(Starts(connection)[0]));
            // the host restarted: the resume failed and the connection sent the lost session's start under its own req_id
            Set(connection, "restarted", System.Tuple.Create(9L, StartOptionsQueued(connection)[0]));
            Answer(client, BadPrompt(new MsgMap { { "req_id", 9L } }, "text_prompt"));
            Assert.AreEqual(2, Starts(connection).Count, "the restarted host refused the text prompt: no retry, no world");
            Assert.IsNull(Starts(connection)[1]["text"]);
            CollectionAssert.IsEmpty(told, "a refusal the client answers itself is no error");
            Answer(client, Session(Starts(connection)[1]));
            Assert.AreEqual("started without the text prompt: this backend takes none", client.DroppedNote);
            connection.Close();
        }

        [Test]
        public void AClosedClientsStartIsNotTakenForARequestOfItsNextConnection()
        {
            var (client, first, told) = StartedFromFields();
            Answer(client, BadPrompt(Starts(first)[0], "text_prompt"));
            Answer(client, Session(Starts(first)[1]));
            Assert.AreEqual("started without the text prompt: this backend takes none", client.DroppedNote);
            var stale = client.StartWorld(); // still unanswered when the client closes
            client.Shutdown();               // OnDisable
            Assert.IsNull(client.DroppedNote, "a closed client still says what its old world went without");
            var second = Ready(client);      // OnEnable: the new connection's req_ids start over
            client.FireEvent("weather_snow");
            client.FireEvent("weather_rain");
            var reset = client.ResetWorld(text: "a desert");
            Assert.AreEqual(stale, reset, "the test needs the reset to reuse the old start's req_id");
            Answer(client, BadPrompt(new MsgMap { { "req_id", reset } }, "text_prompt"));
            Assert.AreEqual(0, Starts(second).Count, "the old connection's start went again on the new one: a world the game did not ask for");
            Assert.AreEqual(1, told.Count, "the reset's refusal is the game's answer");
            second.Close();
        }

        [Test]
        public void APromptAScriptPassesIsNeverDroppedButACameraPromptIs()
        {
            var client = new WorldBridgeClient { startOnConnect = false };
            var told = new List<string>();
            client.onError.AddListener(told.Add);
            var connection = Ready(client);
            client.StartWorld(new byte[] { 1, 2, 3 }, false);
            Answer(client, BadPrompt(Starts(connection)[0], "image_prompt"));
            Assert.AreEqual(1, Starts(connection).Count, "a script's image prompt was dropped");
            Assert.AreEqual(1, told.Count, "the refusal of a script's prompt is its answer");
            var raised = new List<HostError>();
            client.HostErrorReceived += raised.Add;
            Answer(client, BadPrompt(Starts(connection)[0], "image_prompt"));
            Assert.AreEqual(1, raised.Count, "the refusal of a script's prompt is no longer raised as a HostError");
            connection.Close();

            connection = Ready(client);
            var prompt = new WorldPromptFromCamera { client = client, sourceCamera = new UnityEngine.Camera(), kind = WorldPromptFromCamera.PromptKind.Sketch };
            prompt.SendPrompt();
            Assert.IsTrue(Starts(connection)[0].Has("sketch"));
            Answer(client, BadPrompt(Starts(connection)[0], "sketch_prompt"));
            Assert.AreEqual(2, Starts(connection).Count, "the camera's sketch prompt was not dropped");
            Assert.IsNull(Starts(connection)[1]["sketch"]);
            Answer(client, Session(Starts(connection)[1]));
            Assert.AreEqual("started without the sketch prompt: this backend takes none", client.DroppedNote);
            Answer(client, Session(new MsgMap { { "req_id", 99L } }));
            Assert.IsNull(client.DroppedNote, "a later world a script started names what an earlier start dropped");
            connection.Close();
        }

        /// <summary>The Python client's warning (bridge/client.py _warn_text_unused) for the text prompt `text`.</summary>
        static string Unused(string text) =>
            $"the text prompt '{text}' is not used: the image starts the world as it is drawn (a world that reads a " +
            "flat-colour image as a sketch uses both); send the text alone, or with a sketch, for the text to count";

        [Test]
        public void ATextSentWithAnImageIsSaidUnusedOnceWhenTheHostTookItAndNeverWithASketch()
        {
            var client = new WorldBridgeClient { startOnConnect = false, textPrompt = "a cave" };
            var connection = Ready(client);
            var png = new byte[] { 1, 2, 3 };
            client.StartWorld(png, true); // a sketch and the text both count
            Assert.AreEqual(0, Logs.Of(UnityEngine.LogType.Warning, () => Answer(client, Session(Starts(connection)[0]))).Count);
            client.StartWorld(png, false);
            var refused = Logs.Of(UnityEngine.LogType.Warning, () => Answer(client, BadPrompt(Starts(connection)[1], "image_prompt")));
            Assert.IsFalse(refused.Exists(w => w.Contains("is not used")), "a start the host refused used nothing");
            client.StartWorld(png, false);
            var warned = Logs.Of(UnityEngine.LogType.Warning, () => Answer(client, Session(Starts(connection)[2])));
            Assert.AreEqual(new[] { "[WorldBridge] " + Unused("a cave") }, warned);
            var reset = client.ResetWorld(png, false, "a desert");
            var again = Logs.Of(UnityEngine.LogType.Warning, () => Answer(client, new MsgMap { { "type", "ok" }, { "req_id", reset }, { "request", "reset" } }));
            CollectionAssert.IsEmpty(again, "said more than once per client");
            connection.Close();

            var other = new WorldBridgeClient { startOnConnect = false };
            connection = Ready(other);
            var resetOnce = other.ResetWorld(png, false, "a desert");
            var said = Logs.Of(UnityEngine.LogType.Warning, () => Answer(other, new MsgMap { { "type", "ok" }, { "req_id", resetOnce }, { "request", "reset" } }));
            Assert.AreEqual(new[] { "[WorldBridge] " + Unused("a desert") }, said, "a reset's text beside its image");
            connection.Close();
        }

        [Test]
        public void AnFpsLeftAt0AsksForTheWorldsOwnRateAndTheInspectorShowsTheSessionsRate()
        {
            var fps = typeof(WorldBridgeClient).GetField("fps");
            var range = fps.GetCustomAttribute<UnityEngine.RangeAttribute>();
            Assert.AreEqual((0f, 120f), (range.min, range.max), "the inspector cannot set the world's own rate");
            StringAssert.Contains("0: the world's own rate", fps.GetCustomAttribute<UnityEngine.TooltipAttribute>().tooltip);
            var client = new WorldBridgeClient { startOnConnect = false };
            Assert.AreEqual(0f, client.fps, "a client asked for 24 fps whatever the world's own rate");
            var connection = Ready(client);
            client.StartWorld();
            Assert.IsTrue(Starts(connection)[0].ContainsKey("fps") && !Starts(connection)[0].Has("fps"),
                          "start.fps must be nil: the host ticks the world at its own rate");
            client.fps = 30;
            client.StartWorld();
            Assert.AreEqual(30.0, Starts(connection)[1]["fps"], "a rate given is sent");
            var told = new List<string>();
            client.onError.AddListener(told.Add);
            client.fps = 200; // a script: the range check applies to a given rate
            Assert.AreEqual(-1, client.StartWorld());
            Assert.AreEqual("Fps 200 is no rate a host plays: set Fps to 0 for the world's own rate, or 1–120", told[0]);
            client.fps = 0.37f; // the slider dragged near its left end
            Assert.AreEqual(-1, client.StartWorld());
            Assert.AreEqual("Fps 0.37 is no rate a host plays: set Fps to 0 for the world's own rate, or 1–120", told[1],
                            "the inspector cannot set the null Unity's check asked for");
            client.fps = -5; // a script's: the world's own rate, as in the Godot addon
            client.StartWorld();
            Assert.AreEqual(2, told.Count, "a negative Fps was refused: 0 or less is the world's own rate");
            Assert.IsTrue(Starts(connection)[2].ContainsKey("fps") && !Starts(connection)[2].Has("fps"), "a negative fps was sent");
            client.fps = 0;
            var session = Session(Starts(connection)[0]);
            session["fps"] = 15.0; // the sandbox game's own rate
            Set(connection, "session", SessionInfo.From(session)); // as the connection keeps it
            Answer(client, session);
            Assert.AreEqual(15f, client.FpsTarget, "the client does not say the rate its session ticks at");
            // a script's Connection.Settings(fps: 30): the connection keeps what the host's answer says
            Set(connection, "settings", WorldSettings.From(new MsgMap { { "fps", 30.0 }, { "mode", "realtime" } }));
            Call(client, "Update");
            Assert.AreEqual(30f, client.FpsTarget, "the client still says the rate the session started at");
            Assert.IsNotNull(typeof(WorldBridgeClient).GetField("fpsTarget", BindingFlags.NonPublic | BindingFlags.Instance)
                .GetCustomAttribute<UnityEngine.SerializeField>(), "the session's rate must be shown in the inspector");
            client.Shutdown();
            Assert.AreEqual(0f, client.FpsTarget, "a closed client still shows its old session's rate");
        }

        [Test]
        public void TypingAnEndpointInTheInspectorReconnectsOnceItIsEnteredNotOnEveryKeystroke() =>
            Assert.IsNotNull(typeof(WorldBridgeClient).GetField("endpoint").GetCustomAttribute<UnityEngine.DelayedAttribute>(),
                             "without [Delayed] the inspector sets the endpoint per keystroke and Update reconnects to each");

        [Test]
        public void ATextureFileThatCannotBeReadIsAnErrorRequestsReport()
        {
            var read = typeof(WorldBridgeClient).GetMethod("ReadAssetFile", BindingFlags.NonPublic | BindingFlags.Static);
            var gone = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "worldbridge-no-such-dir", "layer.png");
            var thrown = Assert.Throws<TargetInvocationException>(() => read.Invoke(null, new object[] { gone })).InnerException;
            Assert.IsInstanceOf<System.InvalidOperationException>(thrown, "an IOException escapes the requests' error handling");
            StringAssert.Contains(gone, thrown.Message);
        }

        [Test]
        public void ACameraPromptThatResetsTheWorldWaitsForTheSession()
        {
            var client = new WorldBridgeClient { startOnConnect = false };
            var prompt = new WorldPromptFromCamera
            {
                client = client, sourceCamera = new UnityEngine.Camera(), sendWhenConnected = true,
                delivery = WorldPromptFromCamera.Delivery.ResetCurrentWorld,
            };
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            Set(connection, "state", ConnectionState.Ready);
            Use(client, connection);
            Call(prompt, "Update");
            var outbox = (System.Collections.ICollection)Get(connection, "outbox");
            Assert.AreEqual(0, outbox.Count, "a reset went before any world existed: the host refuses it");
            Set(connection, "session", SessionInfo.From(new MsgMap { { "session_id", "s1" }, { "backend_kind", "sandbox" } }));
            Call(prompt, "Update");
            Call(prompt, "Update");
            Assert.AreEqual(1, outbox.Count, "the reset should go once the world has started");
            connection.Close();
        }
    }
}
