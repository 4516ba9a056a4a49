// The game keys' rule, shared by WorldInput (its default rules) and the editor window (its preview's keys), so the same
// keys play the same actions in both: chords first, and a release plays what is still held, or "noop" in realtime.
using System;
using System.Collections.Generic;

namespace WorldBridge.Core
{
    public sealed class GameKeys
    {
        /// <summary>The default rules, first match wins, so chords come first: the action, and the buttons all held.</summary>
        public static readonly (string Action, string[] WhenHeld)[] DefaultRules =
        {
            ("right_jump", new[] { "right", "jump" }), ("left_jump", new[] { "left", "jump" }),
            ("right", new[] { "right" }), ("left", new[] { "left" }), ("jump", new[] { "jump" }), ("down", new[] { "down" }),
        };

        readonly HashSet<string> held = new HashSet<string>();

        /// <summary>The button a game key (a Unity KeyCode name: the arrows, Space) presses, or null: letters typed
        /// elsewhere never move the world.</summary>
        public static string Button(string key) =>
            key == "LeftArrow" ? "left" : key == "RightArrow" ? "right" : key == "Space" || key == "UpArrow" ? "jump"
            : key == "DownArrow" ? "down" : null;

        /// <summary>The first default rule whose buttons are all held and whose action `session` has, or null.</summary>
        public static string Match(Func<string, bool> isHeld, SessionInfo session)
        {
            foreach (var rule in DefaultRules)
                if (session.HasAction(rule.Action) && Array.TrueForAll(rule.WhenHeld, b => isHeld(b))) return rule.Action;
            return null;
        }

        /// <summary>Records a key press or release and returns the action to send now, or null: a release plays what is
        /// still held, else "noop", in a realtime world only (a step world takes any input as one more frame).</summary>
        public string OnKey(SessionInfo session, string key, bool released)
        {
            var button = Button(key);
            if (button == null) return null;
            if (released) held.Remove(button);
            else held.Add(button);
            if (!session.ArrowKeysPlay || released && session.Mode != "realtime") return null;
            var action = Match(held.Contains, session) ?? (released ? "noop" : null);
            return action != null && session.HasAction(action) ? action : null;
        }
    }
}
