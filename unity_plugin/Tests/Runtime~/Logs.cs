// What a script says through Debug, for the Runtime tests: the stub's Debug raises Application.logMessageReceived.
using System;
using System.Collections.Generic;
using UnityEngine;

namespace WorldBridge.Tests
{
    static class Logs
    {
        /// <summary>The messages `act` logs as `type` (LogType.Warning: Debug.LogWarning), in order.</summary>
        public static List<string> Of(LogType type, Action act) => Of(act, type)[type];

        /// <summary>The messages `act` logs as each of `types`, in order, by type: one run of `act` for what it says
        /// at several levels (a warning and a plain Debug.Log line).</summary>
        public static Dictionary<LogType, List<string>> Of(Action act, params LogType[] types)
        {
            var lines = new Dictionary<LogType, List<string>>();
            foreach (var type in types) lines[type] = new List<string>();
            Application.LogCallback log = (message, stack, logged) =>
            {
                if (lines.TryGetValue(logged, out var those)) those.Add(message);
            };
            Application.logMessageReceived += log;
            try { act(); }
            finally { Application.logMessageReceived -= log; }
            return lines;
        }
    }
}
