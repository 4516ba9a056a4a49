// The game keys' rule, shared by WorldInput (its default rules) and the editor window (its preview's keys), so the same
// keys play the same actions in both: chords first, and a release plays what is still held, or the idle input in realtime.
using System;
using System.Collections.Generic;

namespace WorldBridge.Core
{
    /// <summary>A default rule: the action (a name, or with Latent >= 0 a latent action id), and the buttons all held.</summary>
    public sealed class GameRule
    {
        public readonly string Action;
        public readonly int Latent;
        public readonly string[] WhenHeld;

        public GameRule(string action, int latent, params string[] whenHeld) { Action = action; Latent = latent; WhenHeld = whenHeld; }
    }

    public sealed class GameKeys
    {
        /// <summary>Keys 1-8 play latent actions 0-7, as in the Python editor and the Godot addon: a world model's actions,
        /// learned from unlabelled video, have no names for the arrows to play.</summary>
        public const int DigitKeys = 8;

        /// <summary>The idle input (WorldInput's default idleAction): a backend without it gets latent action 0 instead.</summary>
        public const string Idle = "noop";

        /// <summary>The default rules, first match wins, so chords come first.</summary>
        public static readonly GameRule[] DefaultRules = Rules();

        static GameRule[] Rules()
        {
            var rules = new List<GameRule>
            {
                new GameRule("right_jump", -1, "right", "jump"), new GameRule("left_jump", -1, "left", "jump"),
                new GameRule("right", -1, "right"), new GameRule("left", -1, "left"), new GameRule("jump", -1, "jump"),
                new GameRule("down", -1, "down"),
            };
            for (int latent = 0; latent < DigitKeys; latent++) rules.Add(new GameRule("", latent, DigitButton(latent)));
            return rules.ToArray();
        }

        readonly HashSet<string> held = new HashSet<string>();

        /// <summary>How many digit keys play `session`'s latent actions (keys 1 to this): fewer than 8 for a world with
        /// fewer actions, so nobody is told to press a key that plays nothing.</summary>
        public static int DigitKeysPlaying(SessionInfo session) => Math.Min(DigitKeys, session.NumLatentActions);

        /// <summary>The button of the digit key that plays latent action `latent` (key 1 plays latent action 0).</summary>
        public static string DigitButton(int latent) => "digit" + (latent + 1);

        /// <summary>The latent action a digit key's button plays (DigitButton undone), or -1 for any other button.</summary>
        public static int LatentOf(string button)
        {
            for (int latent = 0; latent < DigitKeys; latent++)
                if (button == DigitButton(latent)) return latent;
            return -1;
        }

        /// <summary>True for a rule as DefaultRules has it (a latent rule's action name is never sent, so not compared): one
        /// the backend cannot play (the arrows on a world model, key 8 on the sandbox game's 7 actions) is skipped without a
        /// warning, where a rule the user added or changed is warned about.</summary>
        public static bool IsDefaultRule(string action, int latent, string[] whenHeld) =>
            Array.Exists(DefaultRules, rule => rule.Latent == latent && (latent >= 0 || rule.Action == action) &&
                                               rule.WhenHeld.Length == whenHeld.Length &&
                                               Array.TrueForAll(rule.WhenHeld, b => Array.IndexOf(whenHeld, b) >= 0));

        /// <summary>The button a game key (a Unity KeyCode name: the arrows, Space, Alpha1-8, Keypad1-8) presses, or
        /// null: letters typed elsewhere never move the world.</summary>
        public static string Button(string key)
        {
            var digit = key.StartsWith("Alpha", StringComparison.Ordinal) ? key.Substring(5)
                : key.StartsWith("Keypad", StringComparison.Ordinal) ? key.Substring(6) : "";
            if (digit.Length == 1 && digit[0] >= '1' && digit[0] < '1' + DigitKeys) return DigitButton(digit[0] - '1');
            return key == "LeftArrow" ? "left" : key == "RightArrow" ? "right" : key == "Space" || key == "UpArrow" ? "jump"
                : key == "DownArrow" ? "down" : null;
        }

        /// <summary>The action of the first default rule whose buttons are all held and which `session` can play: a
        /// name (string) or a latent action id (int); null when none.</summary>
        public static object Match(Func<string, bool> isHeld, SessionInfo session)
        {
            foreach (var rule in DefaultRules)
                if ((rule.Latent >= 0 ? rule.Latent < session.NumLatentActions : session.HasAction(rule.Action)) &&
                    Array.TrueForAll(rule.WhenHeld, b => isHeld(b)))
                    return rule.Latent >= 0 ? (object)rule.Latent : rule.Action;
            return null;
        }

        /// <summary>Records a key press or release and returns the action to send now (as Match), or null (also for a press
        /// of a key already held: a held key steps a step world once, as in the Python editor and the Godot addon): a release plays
        /// what is still held, else "noop" (latent action 0 where the backend lacks it, as WorldInput's idle), in a
        /// realtime world only (a step world takes any input as one more frame). `mode` is the connection's current mode
        /// (WorldBridgeConnection.Mode), not the session's start-time one: a settings answer may have changed it.</summary>
        public object OnKey(SessionInfo session, string mode, string key, bool released)
        {
            var button = Button(key);
            if (button == null) return null;
            if (released && !held.Remove(button)) return null; // pressed where it played nothing (a text field had focus)
            if (!released && !held.Add(button)) return null; // an OS key repeat (IMGUI sends one KeyDown per repeat)
            if (!Plays(session, button) || released && mode != "realtime") return null;
            return Match(held.Contains, session) ?? (released ? IdleAction(session) : null);
        }

        /// <summary>Forgets every held key (a new session, a closed connection), so a key whose release never came plays
        /// in no later chord.</summary>
        public void Clear() => held.Clear();

        /// <summary>Releases every held key at once, for when their releases will not come (the window lost focus): the
        /// idle action (as IdleAction) when a key that plays was held in a realtime world, else null.</summary>
        public object ReleaseAll(SessionInfo session, string mode)
        {
            bool played = false;
            foreach (var button in held) played |= Plays(session, button);
            held.Clear();
            return played && mode == "realtime" ? IdleAction(session) : null;
        }

        /// <summary>What a realtime world gets when no game key is held: "noop", or latent action 0 where the backend lacks it.</summary>
        public static object IdleAction(SessionInfo session) => session.HasAction(Idle) ? Idle : (object)0;

        /// <summary>Whether `button` plays on `session`: a digit its latent action, the arrows and Space only a backend
        /// that names their actions (the sandbox game).</summary>
        static bool Plays(SessionInfo session, string button)
        {
            int latent = LatentOf(button);
            return latent >= 0 ? latent < session.NumLatentActions : session.ArrowKeysPlay;
        }
    }
}
