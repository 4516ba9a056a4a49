// The host's `error` answers (docs/protocol.md §5) as a typed value, so a game can tell "this backend cannot do that"
// (unsupported) from "fix your input" (bad_argument, bad_prompt) without comparing strings.
using System;

namespace WorldBridge.Core
{
    public enum HostErrorCode
    {
        Other, VersionMismatch, NotReady, NoSession, UnknownSession, BadMessage, TooLarge, BadArgument, BadPrompt, Busy,
        /// <summary>(1.1) The session's backend cannot do this, e.g. `edit` on the sandbox game: see SessionInfo.Capabilities.</summary>
        Unsupported,
        BackendError,
        /// <summary>(1.3) The host ended a recording by itself (a full disk); the session goes on. Path and frames say what was kept.</summary>
        RecordingStopped,
    }

    /// <summary>One `error` (or `reject`) from the host.</summary>
    public sealed class HostError
    {
        static readonly string[] Codes =
        {
            null, "version_mismatch", "not_ready", "no_session", "unknown_session", "bad_message", "too_large", "bad_argument",
            "bad_prompt", "busy", "unsupported", "backend_error", "recording_stopped",
        };

        /// <summary>The req_id of the request it answers, or null for errors that answer none (a refused queued event, a timeout).</summary>
        public long? ReqId;
        /// <summary>The code as sent; a code newer than this plugin keeps its text here and Kind == Other.</summary>
        public string Code;
        public HostErrorCode Kind;
        public string Message;
        /// <summary>The session ended.</summary>
        public bool Fatal;
        /// <summary>A refusal of a prompt kind, event kind or edit the backend lacks (bad_prompt, unsupported) names the capability it needs ("image_prompt", "text_events", "edit"); else null.</summary>
        public string Capability;
        /// <summary>An accepted event the backend refused when its frame was made (bad_argument, ReqId null) names it: the
        /// req_id FireEvent/FireEventText returned for it (null if its request had none), and its type and text as sent;
        /// null on every other error and from a host before this addition (the refused event is then the oldest waiting).</summary>
        public long? EventReqId;
        public string EventType, EventText;

        /// <summary>Whether the host's recorder stopped: the session ended, or the host stopped the recording itself (a full disk).</summary>
        public bool EndsRecording => Fatal || Kind == HostErrorCode.RecordingStopped;

        public static HostErrorCode Parse(string code)
        {
            int i = code == null ? -1 : Array.IndexOf(Codes, code);
            return i > 0 ? (HostErrorCode)i : HostErrorCode.Other;
        }

        public static HostError From(MsgMap m)
        {
            var code = m.GetString("code", "error");
            bool namesEvent = m.ContainsKey("event_req_id"); // the key marks a refused event; its value is nil when its request had no req_id
            return new HostError
            {
                ReqId = m.Has("req_id") ? m.GetLong("req_id") : (long?)null, Code = code, Kind = Parse(code),
                Message = m.GetString("message", ""), Fatal = m.GetBool("fatal") || m.GetString("type") == "reject",
                Capability = m.GetString("capability"),
                EventReqId = m.Has("event_req_id") ? m.GetLong("event_req_id") : (long?)null,
                EventType = namesEvent ? m.GetString("event_type") : null, EventText = namesEvent ? m.GetString("text") : null,
            };
        }

        public override string ToString() => $"{Code}: {Message}";

        /// <summary>The line to show users, one wording everywhere: a not_ready says what the connection does about it
        /// (greets the host again), not the host's "send hello first"; anything else as the host sent it.</summary>
        public string Explained => Kind == HostErrorCode.NotReady
            ? $"the host forgot this client ({(Message.Length > 0 ? Message : Code)}): greeting it again"
            : ToString();
    }

    /// <summary>Thrown by the waiting helpers (WorldBridgeConnection.WaitReply) when the host answered with an error.</summary>
    public sealed class WorldBridgeException : Exception
    {
        public readonly HostError Error;

        public WorldBridgeException(HostError error) : base(error.ToString()) { Error = error; }

        public HostErrorCode Kind => Error.Kind;
    }
}
