// COMPILE-ONLY STUB of Unity's API (com.unity.inputsystem) — test scaffolding, NOT product code.
// Declarations follow the real package (1.x); nothing here does anything. See UnityEngine.cs.
using System;

namespace UnityEngine.InputSystem
{
    public enum InputActionType { Value, Button, PassThrough }

    public sealed class InputAction : IDisposable
    {
        public InputAction(string name = null, InputActionType type = default, string binding = null, string interactions = null,
                           string processors = null, string expectedControlType = null) { }
        public void Enable() { }
        public void Disable() { }
        public bool IsPressed() => false;
        public void Dispose() { }
    }

    public static class InputActionSetupExtensions
    {
        public struct BindingSyntax { }
        public static BindingSyntax AddBinding(this InputAction action, string path, string interactions = null, string processors = null, string groups = null) => default;
    }
}

namespace UnityEngine.InputSystem.UI
{
    public class InputSystemUIInputModule : UnityEngine.EventSystems.BaseInputModule { }
}
