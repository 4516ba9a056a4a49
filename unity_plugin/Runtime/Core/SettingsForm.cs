// The editor window's settings fields (event guidance, top-p, unmasking order) and what fills them from the host.
namespace WorldBridge.Core
{
    /// <summary>One settings field of an editor: the value it shows, filled from what the session runs.</summary>
    public sealed class SettingField<T>
    {
        public T Value;

        public SettingField(T value) { Value = value; }

        /// <summary>Shows the session's value, so Apply never sends a default the session does not run.</summary>
        public void Refill(T session) => Value = session;
    }

    /// <summary>The fields the editor window sets the session's sampling with, filled from the session's settings as the
    /// Godot dock fills its own: a field the backend does not have keeps its value (the window hides it).</summary>
    public sealed class SettingsForm
    {
        public readonly SettingField<double> EventGuidance = new SettingField<double>(1), TopP = new SettingField<double>(1);
        public readonly SettingField<string> Unmask = new SettingField<string>(null);

        /// <summary>A `session` message (`newSession`: not a resume) or the `ok` to a `settings` request.</summary>
        public void Refill(WorldSettings settings, bool newSession)
        {
            if (settings.EventCfg.HasValue) EventGuidance.Refill(settings.EventCfg.Value);
            if (settings.TopP.HasValue) TopP.Refill(settings.TopP.Value);
            if (settings.Unmask != null) Unmask.Refill(settings.Unmask);
        }
    }
}
