// The newest start made from a user's fields and the prompt kinds of it a backend refused: a start refused with
// bad_prompt for a prompt kind ("text_prompt") goes again without that prompt, so a backend without text prompts still
// gives a world, as in the Godot addon. The one rule WorldBridgeClient and the editor window share.
using System;
using System.Collections.Generic;

namespace WorldBridge.Core
{
    public sealed class FieldStart
    {
        StartOptions options;
        long reqId = -1;
        readonly HashSet<string> droppable = new HashSet<string>();
        readonly List<string> dropping = new List<string>();
        List<string> dropped = new List<string>();

        /// <summary>Prompt kinds ("text", "image", "sketch") the running session's start went without: its backend refused them.</summary>
        public IReadOnlyList<string> Dropped => dropped;

        /// <summary>Dropped in words ("started without the text prompt: this backend takes none"); null when none.</summary>
        public string Note => dropped.Count == 0 ? null
            : $"started without the {string.Join(" and ", dropped)} prompt{(dropped.Count == 1 ? ": this backend takes none" : "s: this backend takes neither")}";

        /// <summary>Records `options`, sent as req_id `id` (-1: not sent); its text prompt may be dropped, and its image or
        /// sketch prompt where `imageDroppable` (one a script passed is never dropped: its refusal stays the answer).</summary>
        public void Sent(StartOptions options, long id, bool imageDroppable)
        {
            this.options = options;
            reqId = id;
            droppable.Clear();
            dropping.Clear();
            if (options?.Text != null) droppable.Add("text");
            if (imageDroppable && options?.Image != null) droppable.Add("image");
            if (imageDroppable && options?.Sketch != null) droppable.Add("sketch");
        }

        /// <summary>Answers `error` when it refuses this start's prompt kind that may be dropped: sends the start again
        /// through `send` without it and returns the line saying so; null (nothing sent) for any other error, and when `send`
        /// returns -1 (the kind stays droppable: a later refusal of this start is retried). The start
        /// may be `connection`'s own repeat of it after a failed resume (a host restarted on a backend lacking the kind).</summary>
        public string Retry(HostError error, WorldBridgeConnection connection, Func<StartOptions, long> send)
        {
            if (error.Kind != HostErrorCode.BadPrompt || options == null) return null;
            if (error.ReqId != reqId && !ReferenceEquals(connection?.RestartedWith(error.ReqId), options)) return null;
            var kind = PromptKind(error);
            if (kind == null || !droppable.Contains(kind)) return null;
            var without = options.Without(kind);
            var id = send(without);
            if (id < 0) return null; // not sent: the kind stays droppable, so a later refusal of this start is retried
            droppable.Remove(kind);
            dropping.Add(kind);
            options = without;
            reqId = id;
            return $"this backend takes no {kind} prompts: starting without the {kind} prompt";
        }

        /// <summary>The one line for a refusal whose retry without the prompt could not be sent (`why`): what the host
        /// refused and why no start without it went, so the user gets neither half alone.</summary>
        public static string Unsent(HostError refusal, string why) =>
            $"{refusal}, and the start without the {PromptKind(refusal)} prompt could not be sent: {why}";

        /// <summary>The prompt kind ("text") a bad_prompt names by its capability ("text_prompt"); null for other capabilities.</summary>
        static string PromptKind(HostError error)
        {
            var capability = error.Capability;
            return capability != null && capability.EndsWith("_prompt", StringComparison.Ordinal) ? capability.Substring(0, capability.Length - 7) : null;
        }

        /// <summary>A new (not resumed) `session` message `m`: Dropped becomes what its start went without. It answers this
        /// start by its req_id, or when the connection's session `now` (its id in `m`) was started with these options: a
        /// failed resume sent this start again under a new req_id, and its world lacks the dropped prompts too.</summary>
        public void Started(MsgMap m, SessionInfo now)
        {
            bool answers = m.Has("req_id") && m.GetLong("req_id") == reqId ||
                           options != null && now != null && now.SessionId == m.GetString("session_id", "") && ReferenceEquals(now.StartedWith, options);
            dropped = answers ? new List<string>(dropping) : new List<string>();
        }

        /// <summary>A new or closed connection: its req_ids start over, so no answer of it is taken for this start's.</summary>
        public void Forget()
        {
            Sent(null, -1, false);
            dropped = new List<string>();
        }
    }
}
