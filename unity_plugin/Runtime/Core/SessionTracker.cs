// Whether a connection's session still runs, as the main thread sees it: the one rule WorldBridgeClient and the editor
// window share, so neither names a backend whose session ended (a fatal error, a failed resume, a connection that gave up).
namespace WorldBridge.Core
{
    public sealed class SessionTracker
    {
        /// <summary>True from a `session` message until the session ended or Forget.</summary>
        public bool InSession { get; private set; }
        /// <summary>Why the last session ended, or null while one runs or none has.</summary>
        public string EndedReason { get; private set; }
        /// <summary>"session ended: …", what to show where the backend was named.</summary>
        public string EndedLine => "session ended: " + EndedReason;

        /// <summary>Feeds one host message of `c`; returns why it ended the running session (a fatal error, the unknown_session
        /// answering c's resume), else null.</summary>
        public string Message(MsgMap m, WorldBridgeConnection c)
        {
            var type = m.GetString("type");
            if (type == "session")
            {
                InSession = true;
                EndedReason = null;
                return null;
            }
            if (type != "error" && type != "reject") return null;
            var error = HostError.From(m);
            return error.Fatal || (error.Kind == HostErrorCode.UnknownSession && c != null && c.AnswersResume(m)) ? End(error.ToString()) : null;
        }

        /// <summary>Checks the connection after its messages; returns why when it gave up during the session, else null.</summary>
        public string State(WorldBridgeConnection c) =>
            c.State == ConnectionState.Failed ? End(c.LastError ?? "the connection to the host failed") : null;

        /// <summary>A new or closed connection: no session, none ended.</summary>
        public void Forget()
        {
            InSession = false;
            EndedReason = null;
        }

        string End(string reason)
        {
            if (!InSession) return null;
            InSession = false;
            return EndedReason = reason;
        }
    }
}
