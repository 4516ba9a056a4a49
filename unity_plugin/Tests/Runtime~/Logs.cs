// What a script says through Debug, for the Runtime tests: the stub's Debug raises Application.logMessageReceived.
using System;
using System.Collections.Generic;
using UnityEngine;

namespace WorldBridge.Tests
{
    static class Logs
    {
        /// <summary>The messages `act` logs as `type` (LogType.Warning: Debug.LogWarning), in order.</summary>
        public static List<string> Of(LogType type, Action act)
        {
            var lines = new List<string>();
            Application.LogCallback log = (message, stack, logged) =>
            {
                if (logged == type) lines.Add(message);
            };
            Application.logMessageReceived += log;
            try { act(); }
            finally { Application.logMessageReceived -= log; }
            return lines;
        }
    }
}
