// Records the session on the host's disk (docs/recordings.md) so a playable demo can be replayed and exported later.
using UnityEngine;
using WorldBridge.Core;

namespace WorldBridge
{
    [AddComponentMenu("World Bridge/World Recorder")]
    public sealed class WorldRecorder : MonoBehaviour
    {
        public WorldBridgeClient client;
        [Tooltip("Path on the host's disk; empty = recordings/<session>-<time>.wbrec")]
        public string path = "";
        [Tooltip("Called with a status line whenever recording starts or stops.")]
        public StringEvent onStatus = new StringEvent();

        [Header("Status (read only)")]
        [SerializeField] bool recording;
        [SerializeField] string lastPath = "";
        [SerializeField] long lastFrames;

        public bool IsRecording => recording;
        public string LastPath => lastPath;
        public long LastFrames => lastFrames;

        void OnEnable()
        {
            if (client == null) client = GetComponentInParent<WorldBridgeClient>();
            if (client != null) client.MessageReceived += OnMessage;
        }

        void OnDisable()
        {
            if (client == null) return;
            if (recording) StopRecording();
            client.MessageReceived -= OnMessage;
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

        public void StartRecording() => client.RecordStart(path);
        public void StopRecording() => client.RecordStop();

        void OnMessage(MsgMap m)
        {
            if (m.GetString("type") == "session" && !m.GetBool("resumed") && recording)
            {
                recording = false; // a new session: the host's recorder ended with the old one
                Report("recording ended with the previous session");
                return;
            }
            if (m.GetString("type") == "error" && m.GetBool("fatal") && recording)
            {
                recording = false; // the session ended (idle timeout, backend failure): its recording ended with it
                Report("recording ended with the session: " + m.GetString("message", "fatal error"));
                return;
            }
            if (m.GetString("type") != "ok") return;
            var request = m.GetString("request");
            if (request == "record_start")
            {
                recording = true;
                lastPath = m.GetString("path", "");
                Report($"recording to {lastPath} on the host");
            }
            else if (request == "record_stop")
            {
                recording = false;
                lastFrames = m.GetLong("frames");
                Report($"recorded {lastFrames} frames to {m.GetString("path", lastPath)}");
            }
        }

        void Report(string status)
        {
            Debug.Log("[WorldBridge] " + status);
            onStatus.Invoke(status);
        }
    }
}
