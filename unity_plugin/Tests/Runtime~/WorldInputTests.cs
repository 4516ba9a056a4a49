// WorldInput's rule checks, run under mono against Tests/CompileOnly~, Unity's API declared for the compiler (its
// legacy Input reads the keys a test holds in UnityEngine.TestSupport.Keys; axes and the Input System read nothing).
using System.Collections.Generic;
using NUnit.Framework;
using UnityEngine;
using UnityEngine.EventSystems;
using UnityEngine.TestSupport;
using UnityEngine.UI;
using WorldBridge;
using WorldBridge.Core;
using static WorldBridge.Tests.Private;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class WorldInputTests
    {
        static SessionInfo TwoActionSession() => Session("s1", "step", "noop", "right");

        static SessionInfo Session(string id, string mode, params object[] actionNames) => Session(id, mode, "sandbox", 2, actionNames);

        /// <summary>A session as the host's message reaches SessionInfo.From: through the real encoder and decoder, whose
        /// integers are all long (an int written into a MsgMap by hand is read as 0).</summary>
        static SessionInfo Session(string id, string mode, string kind, int latents, params object[] actionNames) => SessionInfo.From((MsgMap)MsgPack.Decode(MsgPack.Encode(new MsgMap
        {
            { "type", "session" }, { "session_id", id }, { "backend_kind", kind }, { "backend_name", "fake" },
            { "mode", mode }, { "fps", 24.0 }, { "width", 2 }, { "height", 1 }, { "action_names", new List<object>(actionNames) },
            { "num_latent_actions", latents }, { "event_types", new List<object>() }, { "settings", new MsgMap() },
            { "frame_index", 0 }, { "epoch", 0 }, { "resumed", false },
        })), null);

        /// <summary>The embedded default world's session: 8 latent actions, named latent_0..latent_7 (no noop).</summary>
        static SessionInfo WorldModelSession(string mode, int latents)
        {
            var names = new object[latents];
            for (int i = 0; i < latents; i++) names[i] = $"latent_{i}";
            return Session("w1", mode, "world_model", latents, names);
        }

        static readonly object[] SandboxActions = { "noop", "left", "right", "jump", "left_jump", "right_jump", "down" };

        /// <summary>A client whose connection is ready and holds `session`, as its IO thread leaves it (no host: the
        /// connection's state is set directly, and what WorldInput sends waits in its queue).</summary>
        static WorldBridgeClient ClientIn(SessionInfo session)
        {
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            Set(connection, "state", ConnectionState.Ready);
            Set(connection, "session", session);
            var client = new WorldBridgeClient();
            Use(client, connection);
            return client;
        }

        static void RunUpdate(WorldInput input) =>
            Call(input, "Update");

        [Test]
        public void TheTestSessionsAreWhatTheHostsMessageDecodesTo()
        {
            var session = WorldModelSession("realtime", 8);
            Assert.AreEqual((2, 1, 8), (session.Width, session.Height, session.NumLatentActions),
                            "the test session's integers did not reach SessionInfo as the decoder yields them");
        }

        [Test]
        public void NamesOfTheActionMapTheSessionStartedWithAreActions()
        {
            var input = new WorldInput { idleAction = "rest" };
            var dash = new ActionRule("dash", "right");
            input.rules = new List<ActionRule> { dash, new ActionRule("fly", "jump") };
            var session = TwoActionSession();
            session.StartedWith = new StartOptions { ActionMap = new Dictionary<string, int> { { "dash", 1 }, { "rest", 0 } } };
            CollectionAssert.AreEqual(new[] { "fly" }, input.CheckRules(session));
            Assert.IsTrue(input.Usable(dash));
            Assert.AreEqual("rest", input.IdleToSend());
        }

        [Test]
        public void ANewSessionsActionsAreUsedFromItsFirstFrame()
        {
            var s1 = Session("s1", "realtime", "noop", "right");
            var input = new WorldInput { idleAction = "wait", client = ClientIn(s1) };
            input.CheckRules(s1);                                   // what s1's onSessionStarted left: it lacks "wait"
            Assert.AreEqual(0, input.IdleToSend());
            Set(input.client.Connection, "session", Session("s2", "realtime", "noop", "wait")); // the IO thread took s2...
            RunUpdate(input);                                       // ...and this Update comes before the client's
            Assert.AreEqual("wait", input.IdleToSend(), "s2's first frame used s1's actions");
        }

        /// <summary>The keys a legacy Input Manager binding reads: its two key codes, and the keys Unity's default
        /// Horizontal / Vertical axes put on the side its direction reads.</summary>
        static List<string> LegacyKeys(ButtonBinding b)
        {
            var keys = new List<string> { b.key.ToString(), b.altKey.ToString() };
            if (b.axis == "Horizontal") keys.AddRange(b.axisDirection > 0 ? new[] { "RightArrow", "D" } : new[] { "LeftArrow", "A" });
            if (b.axis == "Vertical") keys.AddRange(b.axisDirection > 0 ? new[] { "UpArrow", "W" } : new[] { "DownArrow", "S" });
            return keys;
        }

        [Test]
        public void EveryDefaultKeyOfTheInputSystemAlsoWorksThroughTheInputManager()
        {
            foreach (var b in new WorldInput().buttons)
                foreach (var path in b.inputSystemPaths.Split(';'))
                {
                    if (!path.StartsWith("<Keyboard>/")) continue;
                    var key = path.Substring("<Keyboard>/".Length);
                    var code = char.IsDigit(key[0]) ? "Alpha" + key : key.StartsWith("numpad") ? "Keypad" + key.Substring(6)
                        : key.Length == 1 ? key.ToUpperInvariant() : char.ToUpperInvariant(key[0]) + key.Substring(1);
                    CollectionAssert.Contains(LegacyKeys(b), code, $"'{b.button}' reads {path} through the Input System but not through the Input Manager");
                }
        }

        [Test]
        public void RulesForActionsTheBackendLacksSendNothingAndAnUnknownIdleSendsLatentZero()
        {
            var input = new WorldInput { idleAction = "wait" };
            var right = new ActionRule("right", "right");
            var dash = new ActionRule("dash", "right");
            var latent9 = new ActionRule("x", "jump") { latentAction = 9 };
            input.rules = new List<ActionRule> { dash, latent9, right };
            var unknown = input.CheckRules(TwoActionSession());
            CollectionAssert.AreEqual(new[] { "dash", "latent 9", "idle wait" }, unknown);
            Assert.IsFalse(input.Usable(dash));
            Assert.IsFalse(input.Usable(latent9));
            Assert.IsTrue(input.Usable(right));
            Assert.AreEqual(0, input.IdleToSend());
            input.idleAction = "noop";
            Assert.AreEqual(new[] { "dash", "latent 9" }, input.CheckRules(TwoActionSession()).ToArray());
            Assert.AreEqual("noop", input.IdleToSend());
        }

        [Test]
        public void TheDigitKeysPlayTheLatentActionsOfAWorldModel()
        {
            var input = new WorldInput { client = ClientIn(WorldModelSession("realtime", 8)) };
            try
            {
                Keys.Held.Add(KeyCode.Alpha3);
                RunUpdate(input);
                Keys.Held.Clear();
                Keys.Held.Add(KeyCode.Keypad8);
                RunUpdate(input);
                Keys.Held.Clear();
                RunUpdate(input);
            }
            finally { Keys.Held.Clear(); }
            CollectionAssert.AreEqual(new object[] { 2L, 7L, 0L }, Sent(input.client),
                                      "keys 3 and keypad 8 play latent actions 2 and 7; released, the idle latent action 0");
        }

        /// <summary>The warnings CheckRules logs for `session`, what it returns, and its plain (Debug.Log) lines.</summary>
        static (List<string> Warnings, List<string> Unknown, List<string> Said) Checked(WorldInput input, SessionInfo session)
        {
            List<string> unknown = null;
            var logged = Logs.Of(() => unknown = input.CheckRules(session), LogType.Warning, LogType.Log);
            return (logged[LogType.Warning], unknown, logged[LogType.Log]);
        }

        [Test]
        public void TheDefaultRulesWarnOfNothingOnTheSandboxAndDigitsPastTheBackendsLatentActionsAreSkipped()
        {
            var input = new WorldInput();
            var sandbox = Session("s1", "realtime", "sandbox", SandboxActions.Length, SandboxActions);
            var (warnings, unknown, said) = Checked(input, sandbox);
            CollectionAssert.IsEmpty(warnings, "the default rules warned on the sandbox game");
            CollectionAssert.IsEmpty(said, "the sandbox game's arrows play: nothing to say of the keys");
            CollectionAssert.IsEmpty(unknown);
            var key8 = input.rules.Find(r => r.latentAction == 7);
            Assert.IsFalse(input.Usable(key8), "the sandbox game has 7 actions: key 8 sends nothing");
            Assert.IsTrue(input.Usable(input.rules.Find(r => r.latentAction == 6)));

            var small = Checked(input, WorldModelSession("realtime", 4)).Unknown;
            CollectionAssert.IsEmpty(small.FindAll(label => label.StartsWith("latent")), "default keys 5-8 warned on a world with 4 latent actions");

            input.rules.Add(new ActionRule("x", "jump") { latentAction = 7 }); // the user's own rule still warns
            (warnings, unknown, said) = Checked(input, sandbox);
            CollectionAssert.AreEqual(new[] { "latent 7" }, unknown);
            Assert.AreEqual(1, warnings.Count);
            StringAssert.Contains("latent 7 not among this backend's actions", warnings[0]);
        }

        [Test]
        public void OnAWorldModelTheDefaultsWarnOfNothingAndWhatTheKeysPlayIsSaidOnce()
        {
            var input = new WorldInput();
            var (warnings, unknown, said) = Checked(input, WorldModelSession("realtime", 8));
            CollectionAssert.IsEmpty(warnings, "the default arrow rules and idle 'noop' warned on a world model");
            CollectionAssert.IsEmpty(unknown);
            Assert.IsFalse(input.Usable(input.rules.Find(r => r.action == "right")), "an arrow rule the world model cannot play still sends nothing");
            Assert.AreEqual(0, input.IdleToSend(), "the world model has no noop: latent action 0 is its idle input");
            CollectionAssert.AreEqual(new[] { "[WorldBridge] WorldInput: keys 1–8 play the world model's 8 latent actions; the arrow keys play none of them" },
                                      said);
            CollectionAssert.IsEmpty(Checked(input, WorldModelSession("step", 8)).Said, "said again at the next session");
            StringAssert.Contains("keys 1–4 play the world model's 4 latent actions", Checked(input, WorldModelSession("realtime", 4)).Said[0]);

            input.rules.Add(new ActionRule("dash", "down"));                      // the user's own rule
            input.rules.Find(r => r.action == "right").whenHeld = new[] { "down" }; // a default rule the user changed
            input.idleAction = "wait";
            (warnings, unknown, said) = Checked(input, WorldModelSession("realtime", 4));
            CollectionAssert.AreEqual(new[] { "right", "dash", "idle wait" }, unknown);
            Assert.AreEqual(2, warnings.Count, string.Join("\n", warnings));
            StringAssert.StartsWith("[WorldBridge] WorldInput: right, dash not among this backend's actions", warnings[0]);
            StringAssert.Contains("idle action 'wait' not among this backend's actions", warnings[1]);
        }

        [Test]
        public void AWorldInputSavedBeforeTheDigitKeysIsWarnedThatNoRulePlaysALatentAction()
        {
            var input = new WorldInput();
            // saved before 0.3.13: Unity restores its arrow rules and buttons, no digit rule or binding
            input.rules.RemoveAll(r => r.latentAction >= 0);
            input.buttons.RemoveAll(b => b.button.StartsWith("digit"));
            var (warnings, unknown, said) = Checked(input, WorldModelSession("realtime", 8));
            CollectionAssert.IsEmpty(unknown, "the saved arrow rules are defaults, skipped unnamed");
            CollectionAssert.AreEqual(new[] { "[WorldBridge] WorldInput: no rule plays a latent action: Reset WorldInput (⋮ ▸ Reset) or add latent rules" },
                                      warnings);
            CollectionAssert.IsEmpty(said, "claimed keys that send nothing");
            CollectionAssert.IsEmpty(Checked(input, WorldModelSession("step", 8)).Warnings, "warned again at the next session");

            // digit rules 1-3 kept but only keys 1 and 2 bound: only those are claimed
            input = new WorldInput();
            input.rules.RemoveAll(r => r.latentAction >= 3);
            input.buttons.RemoveAll(b => b.button == GameKeys.DigitButton(2));
            (warnings, unknown, said) = Checked(input, WorldModelSession("realtime", 8));
            CollectionAssert.IsEmpty(warnings);
            CollectionAssert.AreEqual(new[] { "[WorldBridge] WorldInput: keys 1–2 play 2 of the world model's 8 latent actions; the arrow keys play none of them" },
                                      said);
        }

        [Test]
        public void DescribeMakesNoNewStringPerCall()
        {
            var rule = new ActionRule("right", "right");
            Assert.AreSame(rule.Describe(), rule.Describe());
            rule.latentAction = 3;
            Assert.AreEqual("latent action 3", rule.Describe());
        }

        /// <summary>The actions waiting in the client's outbox, oldest first (no host: nothing leaves the queue).</summary>
        static List<object> Sent(WorldBridgeClient client)
        {
            var outbox = (System.Collections.IEnumerable)Get(client.Connection, "outbox");
            var sent = new List<object>();
            foreach (var item in outbox)
                sent.Add(MsgPack.DecodeHeader((byte[])item.GetType().GetField("Bytes").GetValue(item))["action"]);
            return sent;
        }

        [Test]
        public void AStepWorldGetsTheNextInputAtOnceWhenReenabled()
        {
            var session = Session("s1", "step", "noop", "right");
            var input = new WorldInput { client = ClientIn(session) };
            Set(input.client.Connection, "mode", "step");
            RunUpdate(input);                    // the first step input goes; its frame is awaited
            Call(input, "OnDisable");            // ...and comes while the component is off, unheard
            Call(input, "OnEnable");
            RunUpdate(input);
            CollectionAssert.AreEqual(new[] { "noop", "noop" }, Sent(input.client),
                                      "re-enabled, the step world waited 2 s for a frame that had already come");
        }

        [Test]
        public void AClientSetByScriptRightAfterAddComponentGetsTheInputAndHearsItsFrames()
        {
            WorldInput input = null;
            // on an active object Unity runs OnEnable inside AddComponent, before the script's next line
            var logged = Logs.Of(LogType.Error, () => input = new GameObject("World").AddComponent<WorldInput>());
            input.client = ClientIn(Session("s1", "step", "noop", "right"));
            Set(input.client.Connection, "mode", "step");
            logged.AddRange(Logs.Of(LogType.Warning, () => RunUpdate(input))); // the first step input goes; its frame is awaited
            CollectionAssert.IsEmpty(logged, "a client set right after AddComponent was called missing");
            Assert.IsTrue(input.enabled, "the input turned itself off before the script gave it its client");
            Set(input.client.Connection, "latest", new WorldFrame { Width = 2, Height = 1, Pixels = new byte[6], Events = new string[0], Seq = long.MaxValue });
            Call(input.client, "Update");           // the frame answering that input
            RunUpdate(input);
            CollectionAssert.AreEqual(new[] { "noop", "noop" }, Sent(input.client),
                                      "the answering frame went unheard: the step world waited 2 s for every input");
        }

        [Test]
        public void AnInputWithNoClientWarnsOnceWhenItWouldSendAndStaysOn()
        {
            WorldInput input = null;
            var warnings = Logs.Of(LogType.Warning, () =>
            {
                CollectionAssert.IsEmpty(Logs.Of(LogType.Error, () => input = new GameObject("World").AddComponent<WorldInput>()),
                                         "no client yet is no error on enable");
                RunUpdate(input);
                RunUpdate(input);
            });
            Assert.AreEqual(new[] { "[WorldBridge] " + WorldBridgeClient.NeededBy("WorldInput") }, warnings);
            Assert.IsTrue(input.enabled, "an input that turns itself off never finds a client added later");
        }

        [Test]
        public void AClientClearedByScriptIsOneWarningNamingTheFix()
        {
            var input = new WorldInput { client = ClientIn(TwoActionSession()) };
            Call(input, "OnEnable");
            input.client = null;
            var warnings = Logs.Of(LogType.Warning, () =>
            {
                RunUpdate(input);
                RunUpdate(input);
            });
            Assert.AreEqual(1, warnings.Count, string.Join("\n", warnings));
            StringAssert.Contains("needs a WorldBridgeClient: drag one into its Client field", warnings[0]);
        }

        [Test]
        public void KeysTypedIntoAFocusedInputFieldDoNotSteerTheWorld()
        {
            var events = new GameObject("EventSystem").AddComponent<EventSystem>();
            var field = new GameObject("Event text").AddComponent<InputField>();
            EventSystem.current = events;
            Keys.Held.Add(KeyCode.D); // the d of "make it snow dark" is the right key
            try
            {
                var input = new WorldInput { client = ClientIn(Session("s1", "realtime", "noop", "right")) };
                events.SetSelectedGameObject(field.gameObject);
                RunUpdate(input);                   // selected, not focused (a field tabbed past): the keys play
                field.ActivateInputField();
                RunUpdate(input);                   // typing: the rules are skipped
                field.DeactivateInputField();
                RunUpdate(input);                   // done typing, the key still held: it plays again
                CollectionAssert.AreEqual(new[] { "right", "noop", "right" }, Sent(input.client),
                                          "a key typed into the focused input field moved the world");
            }
            finally
            {
                Keys.Held.Clear();
                EventSystem.current = null;
            }
        }

        [Test]
        public void DisabledWhileAKeyIsHeldItSendsTheIdleActionInARealtimeWorld()
        {
            Keys.Held.Add(KeyCode.RightArrow);
            try
            {
                foreach (var mode in new[] { "realtime", "step" })
                {
                    var input = new WorldInput { client = ClientIn(Session("s1", mode, "noop", "right")) };
                    Set(input.client.Connection, "mode", mode);
                    RunUpdate(input);              // 'right' goes while the right arrow is held
                    Call(input, "OnDisable");
                    var sent = Sent(input.client);
                    if (mode == "realtime")
                        CollectionAssert.AreEqual(new[] { "right", "noop" }, sent, "the world kept moving right with the input component off");
                    else
                        CollectionAssert.AreEqual(new[] { "right" }, sent, "a step world moves only on inputs: nothing to stop");
                }
            }
            finally
            {
                Keys.Held.Clear();
            }
        }

        /// <summary>Runs `then(input, steered, other)` with the right arrow held: `input` sent 'right' to the realtime client
        /// `steered`, then a script put `other` in its Client (no Update since).</summary>
        static void SwappedWhileRightIsHeld(System.Action<WorldInput, WorldBridgeClient, WorldBridgeClient> then)
        {
            Keys.Held.Add(KeyCode.RightArrow);
            try
            {
                var steered = ClientIn(Session("s1", "realtime", "noop", "right"));
                Set(steered.Connection, "mode", "realtime");
                var input = new WorldInput { client = steered };
                Call(input, "OnEnable");
                RunUpdate(input);                  // 'right' goes to the first client
                var other = ClientIn(Session("s2", "realtime", "noop", "right"));
                Set(other.Connection, "mode", "realtime");
                input.client = other;
                then(input, steered, other);
            }
            finally
            {
                Keys.Held.Clear();
            }
        }

        [Test]
        public void DisabledAfterItsClientWasSwappedItStopsTheClientThatGotTheInputs() => SwappedWhileRightIsHeld((input, steered, other) =>
        {
            Call(input, "OnDisable");              // the input goes off before its next Update
            CollectionAssert.AreEqual(new[] { "right", "noop" }, Sent(steered), "the world kept moving right with the input component off");
            CollectionAssert.IsEmpty(Sent(other), "a client that got no input was sent the idle action");
        });

        [Test]
        public void AClientSwappedWhileAKeyIsHeldStopsTheWorldThatGotTheInputs() => SwappedWhileRightIsHeld((input, steered, other) =>
        {
            RunUpdate(input);
            CollectionAssert.AreEqual(new[] { "right", "noop" }, Sent(steered), "the first world kept moving right with nobody steering it");
            CollectionAssert.AreEqual(new[] { "right" }, Sent(other), "the new client gets the key held");
            input.client = null;                   // cleared, with no client on the object or a parent: the input steers nothing
            Logs.Of(LogType.Warning, () => RunUpdate(input));
            CollectionAssert.AreEqual(new[] { "right", "noop" }, Sent(other), "the world of a cleared client kept moving right");
            Call(input, "OnDisable");
            CollectionAssert.AreEqual(new[] { "right", "noop" }, Sent(steered), "a stopped world was sent the idle again");
            CollectionAssert.AreEqual(new[] { "right", "noop" }, Sent(other), "a stopped world was sent the idle again");
        });
    }
}
