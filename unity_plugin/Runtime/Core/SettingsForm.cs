// The editor window's settings fields (event guidance, top-p, unmasking order) and what fills them from the host.
namespace WorldBridge.Core
{
    /// <summary>One settings field of an editor: the value it shows, filled from what the session runs.</summary>
    public sealed class SettingField<T>
    {
        public T Value;
        T filled; // the session's value the field was last filled with

        public SettingField(T value) { Value = filled = value; }

        /// <summary>True when the user changed the field since it was last filled: an edit not yet applied.</summary>
        public bool Edited => !Equals(Value, filled);

        /// <summary>Shows the session's value, so Apply never sends a default the session does not run; a settings answer
        /// (not `newSession`) keeps an edit not yet applied, unless the field already shows the answer (its own Apply's).</summary>
        public void Refill(T session, bool newSession)
        {
            if (newSession || !Edited || Equals(Value, session)) Value = filled = session;
        }
    }

    /// <summary>The fields the editor window sets the session's sampling with, filled from the session's settings as the
    /// Godot dock fills its own: a field the backend does not have keeps its value (the window hides it), and any
    /// settings answer (event guidance's Apply) leaves the fields the user is editing alone.</summary>
    public sealed class SettingsForm
    {
        public readonly SettingField<double> EventGuidance = new SettingField<double>(1), TopP = new SettingField<double>(1);
        public readonly SettingField<string> Unmask = new SettingField<string>(null);

        /// <summary>A `session` message (`newSession`: not a resume) or the `ok` to a `settings` request.</summary>
        public void Refill(WorldSettings settings, bool newSession)
        {
            if (settings.EventCfg.HasValue) EventGuidance.Refill(settings.EventCfg.Value, newSession);
            if (settings.TopP.HasValue) TopP.Refill(settings.TopP.Value, newSession);
            if (settings.Unmask != null) Unmask.Refill(settings.Unmask, newSession);
        }
    }
}
