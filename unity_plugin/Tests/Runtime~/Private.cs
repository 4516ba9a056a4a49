// The private state and Unity messages (Update, OnEnable, ...) the Runtime and Editor tests reach, by one helper for every
// test file (tests/test_unity_csharp.py compiles it into both): a game never touches them, so the scripts keep them private.
using System.Reflection;
using UnityEngine;
using UnityEngine.TestSupport;
using WorldBridge.Core;

namespace WorldBridge.Tests
{
    static class Private
    {
        const BindingFlags Instance = BindingFlags.NonPublic | BindingFlags.Instance;

        /// <summary>The value of `target`'s private field `field`.</summary>
        public static object Get(object target, string field) => target.GetType().GetField(field, Instance).GetValue(target);

        /// <summary>Sets `target`'s private field `field`, as its own thread (the IO thread, Unity) would.</summary>
        public static void Set(object target, string field, object value) => target.GetType().GetField(field, Instance).SetValue(target, value);

        /// <summary>Runs `target`'s private method `method` (a Unity message such as Update) with `args`.</summary>
        public static object Call(object target, string method, params object[] args) => target.GetType().GetMethod(method, Instance).Invoke(target, args);

        /// <summary>An endpoint no host listens on (port 1): where a test's client connects instead of its default
        /// tcp://127.0.0.1:5555, at which a developer's host (or another job's, on a shared machine) may listen.</summary>
        public const string Nowhere = "tcp://127.0.0.1:1";

        /// <summary>AddComponent&lt;WorldBridgeClient&gt;() on `go`, with the client's endpoint Nowhere before its OnEnable
        /// (which connects on an active object, inside AddComponent, as in Unity), so no test greets a real host.</summary>
        public static WorldBridgeClient AddClient(GameObject go)
        {
            Adding.Before = added => { if (added is WorldBridgeClient client) client.endpoint = Nowhere; };
            try { return go.AddComponent<WorldBridgeClient>(); }
            finally { Adding.Before = null; }
        }

        /// <summary>Gives `client` the connection `c` as Open does, without connecting it; the one it opened itself (the
        /// OnEnable of AddComponent on an active object) is closed first, as no test host answers it.</summary>
        public static void Use(WorldBridgeClient client, WorldBridgeConnection c)
        {
            if (client.Connection != c) client.Connection?.Close(0);
            typeof(WorldBridgeClient).GetProperty("Connection").SetValue(client, c);
        }
    }
}
