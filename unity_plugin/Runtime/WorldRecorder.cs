// Records the session on the host's disk (docs/recordings.md) so a playable demo can be replayed and exported later.
using UnityEngine;
using WorldBridge.Core;

namespace WorldBridge
{
    [AddComponentMenu("World Bridge/World Recorder")]
    public sealed class WorldRecorder : MonoBehaviour, IClientListener
    {
        [Tooltip("The client to record (defaults to one on this object or a parent).")]
        public WorldBridgeClient client;
        [Tooltip("Path on the host's disk, relative to its --recordings folder; empty = <session>-<time>.wbrec there")]
        public string path = "";
        [Tooltip("Called with a status line whenever recording starts or stops.")]
        public StringEvent onStatus = new StringEvent();

        [Header("Status (read only)")]
        [SerializeField] bool recording;
        [SerializeField] string lastPath = "";
        [SerializeField] long lastFrames;
        [SerializeField] string status = "";

        WorldBridgeClient listened; // the client whose messages OnMessage hears
        WorldBridgeClient recorded; // the client whose record_start was answered: the one Stop and OnDisable must stop

        public bool IsRecording => recording;
        public string LastPath => lastPath;
        public long LastFrames => lastFrames;
        /// <summary>The last status line onStatus was called with, e.g. why the host stopped the recording.</summary>
        public string Status => status;

        void OnEnable() => WorldBridgeClient.Use(this, ref client, ref listened);

        void IClientListener.Listen(WorldBridgeClient c, bool on)
        {
            if (on)
            {
                c.MessageReceived += OnMessage;
                c.ConnectionChanged += OnConnectionChanged;
                c.onSessionEnded.AddListener(OnSessionEnded);
            }
            else
            {
                c.MessageReceived -= OnMessage;
                c.ConnectionChanged -= OnConnectionChanged;
                c.onSessionEnded.RemoveListener(OnSessionEnded);
            }
        }

        /// <summary>The client that records closed its connection (disabled, destroyed, Shutdown): IsRecording turns false
        /// now, not at the next Toggle, so a UI bound to it never shows a recording through a client that is gone.</summary>
        void OnConnectionChanged() => Recording();

        /// <summary>A connection that gave up (Failed) closes nothing and gets no answer: its session's end is the moment
        /// the recording ended with it. (A fatal error's end is read from the error itself, in OnMessage.)</summary>
        void OnSessionEnded(string reason) => Recording();

        /// <summary>The record_stop goes to the client that records, not to one a script put in the Client field since
        /// (that client records nothing, and the recording would run on).</summary>
        void OnDisable()
        {
            WorldBridgeClient.Move(this, ref listened, null);
            var stopped = recorded;
            if (!Recording()) return;
            recording = false; // the host's answer comes after this component stopped listening: a re-enabled recorder starts anew
            recorded = null;
            stopped.RecordStop(); // not StopRecording: the recorder is disabled (and no longer listens)
            Report($"recording to {lastPath} stopped: the recorder was disabled");
        }

        /// <summary>Whether a recording runs, the client that records still open: one destroyed or closed since ended the
        /// session and its recording with its bye, and no answer will say so. Such a recording is over: said once (when
        /// the client closes or its connection fails), and the next Toggle records anew instead of stopping it through
        /// another client.</summary>
        bool Recording()
        {
            if (!recording) return false;
            if (recorded != null && recorded.IsConnected) return true;
            recording = false;
            recorded = null;
            Report($"recording to {lastPath} ended with the client's connection");
            return false;
        }

        /// <summary>Starts or stops recording; wire it to a UI Toggle or Button.</summary>
        public void Toggle()
        {
            if (recording) StopRecording();
            else StartRecording();
        }

        public void SetRecording(bool on)
        {
            if (on != recording) Toggle();
        }

        public void StartRecording()
        {
            var c = Target();
            if (c != null) c.RecordStart(path);
        }

        public void StopRecording()
        {
            var c = Target();
            if (c != null) c.RecordStop();
        }

        /// <summary>The client this recorder's requests go to, or null having said why. While it records, the client that
        /// records, still listened to: one a script put in the Client field since records nothing, and stopping it would let
        /// the recording run on; none once that client is destroyed or closed (the recording ended with it: said). Else its
        /// Client, listened to from now on (also one a script set after AddComponent); with none it warns how to give it one,
        /// at each request, where a record button would throw. A disabled one (or on an inactive object) warns so and sends
        /// nothing, as a disabled AudioSource will not play: it hears no answer, and no OnDisable would stop what it
        /// started.</summary>
        WorldBridgeClient Target()
        {
            if (!isActiveAndEnabled)
            {
                Report("WorldRecorder is disabled or its GameObject inactive: enable it to record", true);
                return null;
            }
            if (recording) return Recording() ? recorded : null; // a recording that ended with its client: said, nothing sent
            if (WorldBridgeClient.Use(this, ref client, ref listened) != null) return client;
            Report(WorldBridgeClient.NeededBy("WorldRecorder"), true);
            return null;
        }

        void OnMessage(MsgMap m)
        {
            if (m.GetString("type") == "session" && !m.GetBool("resumed") && recording)
            {
                recording = false; // a new session: the host's recorder ended with the old one
                Report("recording ended with the previous session");
                return;
            }
            var type = m.GetString("type");
            if (type == "error" || type == "reject")
            {
                var error = HostError.From(m);
                if (!recording || !error.EndsRecording) return;
                recording = false;
                if (error.Kind == HostErrorCode.RecordingStopped)
                {
                    // (1.3) the host ended the recording by itself (a full disk); the session goes on
                    lastPath = m.GetString("path", lastPath);
                    lastFrames = m.GetLong("frames");
                    Report("recording stopped by the host: " + m.GetString("message", lastPath));
                }
                else Report("recording ended with the session: " + m.GetString("message", "fatal error")); // idle timeout, backend failure
                return;
            }
            if (type != "ok") return;
            var request = m.GetString("request");
            if (request == "record_start")
            {
                recording = true;
                recorded = listened;
                lastPath = m.GetString("path", "");
                Report($"recording to {lastPath} on the host");
            }
            else if (request == "record_stop")
            {
                recording = false;
                lastFrames = m.GetLong("frames");
                Report($"recorded {Protocol.Plural(lastFrames, "frame")} to {m.GetString("path", lastPath)}");
            }
        }

        /// <summary>Sets Status and tells onStatus; a `problem` (a request refused here) is logged as a warning.</summary>
        void Report(string line, bool problem = false)
        {
            status = line;
            if (problem) Debug.LogWarning("[WorldBridge] " + line, this);
            else Debug.Log("[WorldBridge] " + line);
            onStatus.Invoke(line);
        }
    }
}
