// Turns keys and gamepads into the world's actions. Buttons are read through the Input System when the project
// uses it, else through the legacy Input Manager; rules then map held buttons (chords too) to named or latent actions.
using System;
using System.Collections.Generic;
using UnityEngine;
using UnityEngine.EventSystems;
using UnityEngine.UI;
using WorldBridge.Core;
#if ENABLE_INPUT_SYSTEM && WORLDBRIDGE_INPUT_SYSTEM
using UnityEngine.InputSystem;
#endif

namespace WorldBridge
{
    [Serializable]
    public class ButtonBinding
    {
        public string button = "right";
        [Header("Input System")]
        [Tooltip("Control paths separated by ';', e.g. <Keyboard>/rightArrow;<Gamepad>/dpad/right;<Gamepad>/leftStick/right")]
        public string inputSystemPaths = "";
        [Header("Legacy Input Manager")]
        public KeyCode key = KeyCode.None;
        public KeyCode altKey = KeyCode.None;
        [Tooltip("An axis from the Input Manager (e.g. Horizontal, which includes the gamepad stick); empty for none.")]
        public string axis = "";
        [Tooltip("+1 or -1: which direction of the axis presses this button.")]
        public float axisDirection = 1;

        public ButtonBinding() { }

        public ButtonBinding(string button, string paths, KeyCode key, KeyCode altKey, string axis, float direction)
        {
            this.button = button; inputSystemPaths = paths; this.key = key; this.altKey = altKey; this.axis = axis; axisDirection = direction;
        }
    }

    [Serializable]
    public class ActionRule
    {
        [Tooltip("The action to send: a name from the session's action_names or its start's ActionMap.")]
        public string action = "right";
        [Tooltip(">= 0: send this latent action id instead of the name (world model backends).")]
        public int latentAction = -1;
        [Tooltip("All of these buttons must be held.")]
        public string[] whenHeld = { "right" };

        public ActionRule() { }

        public ActionRule(string action, params string[] whenHeld) { this.action = action; this.whenHeld = whenHeld; }

        string described, describedAction;
        int describedLatent = int.MinValue;

        /// <summary>"'right'" or "latent action 3"; cached, so Update makes no string while a key is held.</summary>
        public string Describe()
        {
            if (described == null || describedAction != action || describedLatent != latentAction)
            {
                describedAction = action;
                describedLatent = latentAction;
                described = latentAction >= 0 ? $"latent action {latentAction}" : $"'{action}'";
            }
            return described;
        }
    }

    [AddComponentMenu("World Bridge/World Input")]
    public sealed class WorldInput : MonoBehaviour, IClientListener
    {
        public WorldBridgeClient client;

        public List<ButtonBinding> buttons = DefaultButtons();

        [Tooltip("First rule whose buttons are all held wins, so put chords first.")]
        public List<ActionRule> rules = DefaultRules();

        [Tooltip("Sent while no rule matches; latent action 0 is sent instead when the backend lacks it.")]
        public string idleAction = GameKeys.Idle;
        [Range(0.1f, 0.9f)] public float axisThreshold = 0.5f;
        [Tooltip("Step mode: keep stepping with the idle action while nothing is held (else the world waits for input).")]
        public bool stepWhenIdle = true;

        [Header("Status (read only)")]
        [SerializeField] string currentAction = "";

        string lastSent;
        WorldBridgeClient steered; // the client lastSent went to: the one the idle action on disable must stop
        SessionInfo followed; // the session the rules were last checked against
        readonly HashSet<ActionRule> unusable = new HashSet<ActionRule>(); // rules for actions this backend lacks
        bool idleUnknown;
        string toldKeys; // the last "keys 1-8 play ..." line logged, so it is said once, not every session
        long awaitedSeq = -1;
        WorldBridgeClient listened; // the client whose frames end a step input's wait
        bool warnedNoClient;
        float sentAt;
#if ENABLE_INPUT_SYSTEM && WORLDBRIDGE_INPUT_SYSTEM
        readonly Dictionary<string, InputAction> actions = new Dictionary<string, InputAction>();
#else
        readonly HashSet<string> brokenAxes = new HashSet<string>();
#endif

        void OnEnable()
        {
            awaitedSeq = -1; // the frame answering the last step input may have come while this was off, unheard
            WorldBridgeClient.Use(this, ref client, ref listened); // none yet: Update looks again
#if ENABLE_INPUT_SYSTEM && WORLDBRIDGE_INPUT_SYSTEM
            foreach (var b in buttons)
            {
                var action = new InputAction(b.button, InputActionType.Button);
                foreach (var path in b.inputSystemPaths.Split(';'))
                    if (path.Trim().Length > 0) action.AddBinding(path.Trim());
                action.Enable();
                actions[b.button] = action;
            }
#endif
        }

        void OnDisable()
        {
#if ENABLE_INPUT_SYSTEM && WORLDBRIDGE_INPUT_SYSTEM
            // first: the client may already be destroyed, and these actions would stay enabled
            foreach (var action in actions.Values) { action.Disable(); action.Dispose(); }
            actions.Clear();
#endif
            WorldBridgeClient.Move(this, ref listened, null);
            Release(); // re-enabled, the keys' state goes again
        }

        /// <summary>Realtime: the host plays the last input until another comes, so a key held as the component went off
        /// (or its client was swapped or cleared) would steer the world on with nobody at the keys; the idle goes where the
        /// inputs went, not to a client a script put in the Client field since (a client already closed: its bye ended the
        /// session). Nothing is then held anywhere: the next input state goes again.</summary>
        void Release()
        {
            if (steered != null && lastSent != null && lastSent != IdleDescribed() && steered.IsConnected &&
                steered.Session != null && steered.Connection.Mode != "step")
                Send(steered, null);
            lastSent = null;
            steered = null;
        }

        /// <summary>The arrows / WASD / Space / gamepad, and the digit keys 1-8 (keypad too) that play latent actions 0-7.</summary>
        static List<ButtonBinding> DefaultButtons()
        {
            var defaults = new List<ButtonBinding>
            {
                new ButtonBinding("left", "<Keyboard>/leftArrow;<Keyboard>/a;<Gamepad>/dpad/left;<Gamepad>/leftStick/left", KeyCode.LeftArrow, KeyCode.A, "Horizontal", -1),
                new ButtonBinding("right", "<Keyboard>/rightArrow;<Keyboard>/d;<Gamepad>/dpad/right;<Gamepad>/leftStick/right", KeyCode.RightArrow, KeyCode.D, "Horizontal", 1),
                new ButtonBinding("jump", "<Keyboard>/space;<Keyboard>/upArrow;<Keyboard>/w;<Gamepad>/buttonSouth", KeyCode.Space, KeyCode.JoystickButton0, "Vertical", 1), // Input Manager: Up/W through Vertical
                new ButtonBinding("down", "<Keyboard>/downArrow;<Keyboard>/s;<Gamepad>/dpad/down;<Gamepad>/leftStick/down", KeyCode.DownArrow, KeyCode.S, "Vertical", -1),
            };
            for (int latent = 0; latent < GameKeys.DigitKeys; latent++)
                defaults.Add(new ButtonBinding(GameKeys.DigitButton(latent), $"<Keyboard>/{latent + 1};<Keyboard>/numpad{latent + 1}",
                                               KeyCode.Alpha1 + latent, KeyCode.Keypad1 + latent, "", 1));
            return defaults;
        }

        /// <summary>The editor window's game keys play the same rules (GameKeys), so a key does the same in both.</summary>
        static List<ActionRule> DefaultRules()
        {
            var defaults = new List<ActionRule>();
            foreach (var rule in GameKeys.DefaultRules)
                defaults.Add(new ActionRule(rule.Action, (string[])rule.WhenHeld.Clone()) { latentAction = rule.Latent });
            return defaults;
        }

        /// <summary>How currentAction names the idle input.</summary>
        string IdleDescribed() => idleUnknown ? "latent action 0" : idleAction;

        /// <summary>A new session (a new connection's Session, seen before onSessionStarted runs): resend the input state,
        /// and warn about actions this backend does not have, before its first input.</summary>
        void Follow(SessionInfo session)
        {
            followed = session;
            lastSent = null;
            awaitedSeq = -1;
            CheckRules(session);
        }

        /// <summary>
        /// Names the rules' actions `session` lacks (names it does not have, latent ids past its num_latent_actions) and the
        /// idle action if it lacks that; as in the Godot addon, those rules then send nothing (the host would answer
        /// bad_argument) and latent action 0 is sent instead of an unknown idle action. A default rule or the default idle
        /// action the backend cannot play (the arrows on a world model, key 8 on the sandbox game's 7 actions) is skipped
        /// unnamed: it is no mistake of the user's, so a world model instead logs once which keys play it.
        /// </summary>
        public List<string> CheckRules(SessionInfo session)
        {
            unusable.Clear();
            var unknown = new List<string>();
            foreach (var rule in rules)
            {
                var label = rule.latentAction >= 0 ? (rule.latentAction < session.NumLatentActions ? null : $"latent {rule.latentAction}")
                                                   : (session.HasAction(rule.action) ? null : rule.action);
                if (label == null) continue;
                unusable.Add(rule);
                if (!unknown.Contains(label) && !GameKeys.IsDefaultRule(rule.action, rule.latentAction, rule.whenHeld)) unknown.Add(label);
            }
            if (unknown.Count > 0)
                Debug.LogWarning($"[WorldBridge] WorldInput: {string.Join(", ", unknown)} not among this backend's actions " +
                                 $"({string.Join(", ", session.ActionNames)}; latent ids 0-{session.NumLatentActions - 1}): " +
                                 $"their buttons send nothing; edit the rules on {name}", this);
            idleUnknown = !session.HasAction(idleAction);
            if (idleUnknown && idleAction != GameKeys.Idle)
            {
                Debug.LogWarning($"[WorldBridge] WorldInput: idle action '{idleAction}' not among this backend's actions " +
                                 $"({string.Join(", ", session.ActionNames)}): latent action 0 is sent instead; edit idleAction on {name}", this);
                unknown.Add("idle " + idleAction);
            }
            if (session.BackendKind == "world_model") TellKeys(session);
            return unknown;
        }

        /// <summary>Logs once (not a warning: nothing to fix) what the keys play on a world model, whose latent actions were
        /// learned from unlabelled video: the default arrow rules it cannot play are skipped in silence. Only latent rules
        /// that can play (buttons bound) are claimed; with none (a WorldInput saved before keys 1–8) it warns once.</summary>
        void TellKeys(SessionInfo session)
        {
            if (session.NumLatentActions == 0) return; // no latent action for a key to play
            var keys = new List<string>();
            var latents = new HashSet<int>();
            var arrows = new List<string>();
            foreach (var rule in rules)
            {
                if (unusable.Contains(rule) || !Bound(rule)) continue;
                if (rule.latentAction < 0)
                {
                    if (GameKeys.IsDefaultRule(rule.action, rule.latentAction, rule.whenHeld)) arrows.Add(rule.action);
                    continue;
                }
                latents.Add(rule.latentAction);
                int digit = rule.whenHeld.Length == 1 ? GameKeys.LatentOf(rule.whenHeld[0]) : -1;
                keys.Add(digit >= 0 ? (digit + 1).ToString() : string.Join("+", rule.whenHeld));
            }
            if (latents.Count == 0)
            {
                const string none = "[WorldBridge] WorldInput: no rule plays a latent action: Reset WorldInput (⋮ ▸ Reset) or add latent rules";
                if (toldKeys != none) Debug.LogWarning(none, this);
                toldKeys = none;
                return;
            }
            var of = latents.Count < session.NumLatentActions ? $"{latents.Count} of " : "";
            var told = $"[WorldBridge] WorldInput: {KeysNamed(keys)} {of}the world model's {session.NumLatentActions} latent actions; " +
                       "the arrow keys play " + (arrows.Count == 0 ? "none of them" : $"only {string.Join(", ", arrows)}");
            if (told == toldKeys) return;
            toldKeys = told;
            Debug.Log(told, this);
        }

        /// <summary>True when every button `rule` needs is bound in `buttons`: a rule naming an unbound button never matches.</summary>
        bool Bound(ActionRule rule) =>
            rule.whenHeld.Length > 0 && Array.TrueForAll(rule.whenHeld, held => buttons.Exists(b => b.button == held));

        /// <summary>"keys 1–4 play", "key 3 plays", "keys 1, 3, fire play": the keys TellKeys claims, as short as they read.</summary>
        static string KeysNamed(List<string> keys)
        {
            if (keys.Count == 1) return $"key {keys[0]} plays";
            bool run = true;
            for (int i = 0; i < keys.Count; i++) run &= keys[i] == (i + 1).ToString();
            return $"keys {(run ? $"1–{keys.Count}" : string.Join(", ", keys))} play";
        }

        /// <summary>False for a rule whose action this session's backend lacks (CheckRules): its buttons send nothing.</summary>
        public bool Usable(ActionRule rule) => !unusable.Contains(rule);

        /// <summary>What an idle moment sends: idleAction, or latent action 0 (an int) when the backend lacks it.</summary>
        public object IdleToSend() => idleUnknown ? (object)0 : idleAction;

        void IClientListener.Listen(WorldBridgeClient c, bool on)
        {
            if (on) c.FrameReceived += OnFrame;
            else c.FrameReceived -= OnFrame;
        }

        void OnFrame(WorldFrame frame)
        {
            if (frame.Seq.HasValue && frame.Seq.Value >= awaitedSeq) awaitedSeq = -1;
        }

        void Update()
        {
            // a client a script set after AddComponent is used from here; with none (or one cleared), one warning
            var now = WorldBridgeClient.Use(this, ref client, ref listened);
            if (steered != null && steered != now) Release(); // swapped or cleared: the old world must not play the held key on
            if (!WorldBridgeClient.Present(now, WorldBridgeClient.NeededBy("WorldInput"), this, ref warnedNoClient)) return;
            var c = client.Connection;
            var session = c?.Session;
            if (c == null || !c.IsReady || session == null) return;
            if (session != followed) Follow(session);
            var rule = Typing() ? null : Current();
            currentAction = rule != null ? rule.Describe() : IdleDescribed();
            if (c.Mode == "step")
            {
                // one frame per input: send the next once the frame answering the previous one arrived
                // (or after 2 s, in case the host refused that input)
                if ((awaitedSeq >= 0 && Time.unscaledTime - sentAt < 2f) || (rule == null && !stepWhenIdle)) return;
                awaitedSeq = Send(client, rule);
                sentAt = Time.unscaledTime;
            }
            else if (currentAction != lastSent)
            {
                Send(client, rule);
                lastSent = currentAction;
                steered = client;
            }
        }

        long Send(WorldBridgeClient to, ActionRule rule)
        {
            if (rule == null) return idleUnknown ? to.SendAction(0) : to.SendAction(idleAction);
            return rule.latentAction >= 0 ? to.SendAction(rule.latentAction) : to.SendAction(rule.action);
        }

        /// <summary>True while a UI InputField has keyboard focus: what is typed there ("make it snow") is text, not moves.</summary>
        static bool Typing()
        {
            var selected = EventSystem.current != null ? EventSystem.current.currentSelectedGameObject : null;
            if (selected == null) return false;
            var field = selected.GetComponent<InputField>();
            return field != null && field.isFocused;
        }

        /// <summary>The first rule whose buttons are all held, or null.</summary>
        public ActionRule Current()
        {
            foreach (var rule in rules)
            {
                if (unusable.Contains(rule)) continue;
                bool all = rule.whenHeld.Length > 0;
                foreach (var b in rule.whenHeld) all &= IsHeld(b);
                if (all) return rule;
            }
            return null;
        }

        public bool IsHeld(string button)
        {
#if ENABLE_INPUT_SYSTEM && WORLDBRIDGE_INPUT_SYSTEM
            return actions.TryGetValue(button, out var action) && action.IsPressed();
#else
            foreach (var b in buttons)
            {
                if (b.button != button) continue;
                if (Input.GetKey(b.key) || Input.GetKey(b.altKey)) return true;
                if (!string.IsNullOrEmpty(b.axis) && !brokenAxes.Contains(b.axis))
                {
                    try { if (Input.GetAxisRaw(b.axis) * b.axisDirection > axisThreshold) return true; }
                    catch (ArgumentException)
                    {
                        brokenAxes.Add(b.axis);
                        Debug.LogWarning($"[WorldBridge] WorldInput: axis '{b.axis}' is not set up in Project Settings > Input Manager; clear it on {name}", this);
                    }
                }
            }
            return false;
#endif
        }
    }
}
