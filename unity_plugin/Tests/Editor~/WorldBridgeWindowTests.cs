// The editor window's checks, run under mono against Tests/CompileOnly~ (its EditorGUILayout lists the help boxes drawn).
using System.Collections.Generic;
using System.Collections.Concurrent;
using System.Reflection;
using NUnit.Framework;
using UnityEditor.TestSupport;
using UnityEngine;
using WorldBridge.Core;
using WorldBridge.Editor;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class WorldBridgeWindowTests
    {
        const BindingFlags Private = BindingFlags.NonPublic | BindingFlags.Instance;

        static void Set(object target, string field, object value) => target.GetType().GetField(field, Private).SetValue(target, value);

        static void Call(WorldBridgeWindow window, string method) => typeof(WorldBridgeWindow).GetMethod(method, Private).Invoke(window, null);

        /// <summary>The help boxes one OnGUI pass draws.</summary>
        static List<string> Drawn(WorldBridgeWindow window)
        {
            UnityEditor.TestSupport.Drawn.HelpBoxes.Clear();
            Event.current = new Event { type = EventType.Repaint };
            Call(window, "OnGUI");
            return new List<string>(UnityEditor.TestSupport.Drawn.HelpBoxes);
        }

        [Test]
        public void AConnectionThatGaveUpNoLongerShowsItsBackend()
        {
            var started = new MsgMap
            {
                { "type", "session" }, { "session_id", "s1" }, { "backend_kind", "world_model" }, { "backend_name", "default" },
                { "mode", "step" }, { "fps", 24.0 }, { "width", 2 }, { "height", 1 }, { "action_names", new List<object> { "noop" } },
                { "num_latent_actions", 8 }, { "event_types", new List<object>() }, { "settings", new MsgMap() },
                { "frame_index", 0 }, { "epoch", 0 }, { "resumed", false },
            };
            var session = SessionInfo.From(started, null);
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            Set(connection, "state", ConnectionState.Ready);
            Set(connection, "session", session);
            ((BlockingCollection<MsgMap>)typeof(WorldBridgeConnection).GetField("inbox", Private).GetValue(connection)).Add(started);
            var window = new WorldBridgeWindow();
            Set(window, "connection", connection);
            Call(window, "Poll");
            CollectionAssert.Contains(Drawn(window), session.BackendLabel, "the running session's backend is shown");

            Set(connection, "state", ConnectionState.Failed); // no reconnect: it gave up with the session still recorded
            Set(connection, "lastError", "no answer from the host");
            Call(window, "Poll");
            var shown = Drawn(window);
            CollectionAssert.DoesNotContain(shown, session.BackendLabel, "the window still names the backend of a connection that gave up");
            CollectionAssert.Contains(shown, "session ended: no answer from the host");
        }
    }
}
