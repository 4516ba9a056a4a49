// COMPILE-ONLY STUB of Unity's API (UnityEditor) — test scaffolding, NOT product code.
// Declarations follow Unity's scripting reference; nothing here does anything beyond listing the help boxes and labels
// drawn in UnityEditor.TestSupport.Drawn, so NUnit tests can check what a window shows. See UnityEngine.cs.
using System;
using UnityEngine;
#pragma warning disable 67 // events are declared for the plugin to subscribe to, never raised here

namespace UnityEditor
{
    public class EditorWindow : ScriptableObject
    {
        public Rect position { get; set; }
        public static T GetWindow<T>(string title) where T : EditorWindow => default;
        public void Show() { }
        public void Repaint() { }
    }

    [AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
    public sealed class MenuItem : Attribute { public MenuItem(string itemName) { } }

    public sealed class EditorApplication
    {
        public delegate void CallbackFunction();
        public static CallbackFunction update;
    }

    public static class AssemblyReloadEvents
    {
        public delegate void AssemblyReloadCallback();
        public static event AssemblyReloadCallback beforeAssemblyReload;
        public static event AssemblyReloadCallback afterAssemblyReload;
    }

    public sealed class AssetDatabase
    {
        public static string GetAssetPath(UnityEngine.Object assetObject) => "";
    }

    public enum MessageType { None, Info, Warning, Error }

    public sealed class EditorStyles
    {
        public static GUIStyle boldLabel => null;
        public static GUIStyle miniLabel => null;
        public static GUIStyle miniButton => null;
    }

    public sealed class EditorGUILayout
    {
        public static void LabelField(string label, params GUILayoutOption[] options) => TestSupport.Drawn.Labels.Add(label);
        public static void LabelField(string label, GUIStyle style, params GUILayoutOption[] options) => TestSupport.Drawn.Labels.Add(label);
        public static string TextField(string text, params GUILayoutOption[] options) => text;
        public static string TextField(string label, string text, params GUILayoutOption[] options) => text;
        public static string TextArea(string text, params GUILayoutOption[] options) => text;
        public static bool Toggle(string label, bool value, params GUILayoutOption[] options) => value;
        public static int IntField(string label, int value, params GUILayoutOption[] options) => value;
        public static float FloatField(string label, float value, params GUILayoutOption[] options) => value;
        public static double DoubleField(string label, double value, params GUILayoutOption[] options) => value;
        public static Enum EnumPopup(string label, Enum selected, params GUILayoutOption[] options) => selected;
        public static int Popup(int selectedIndex, string[] displayedOptions, params GUILayoutOption[] options) => selectedIndex;
        public static UnityEngine.Object ObjectField(string label, UnityEngine.Object obj, Type objType, bool allowSceneObjects, params GUILayoutOption[] options) => obj;
        public static void HelpBox(string message, MessageType type) => TestSupport.Drawn.HelpBoxes.Add(message);
        public static void Space() { }
        public static Rect BeginHorizontal(params GUILayoutOption[] options) => default;
        public static void EndHorizontal() { }
        public static Vector2 BeginScrollView(Vector2 scrollPosition, params GUILayoutOption[] options) => scrollPosition;
        public static void EndScrollView() { }
    }
}

namespace UnityEditor.TestSupport
{
    /// <summary>Not Unity's API: what EditorGUILayout.HelpBox and LabelField drew, for tests to read.</summary>
    public static class Drawn
    {
        public static readonly System.Collections.Generic.List<string> HelpBoxes = new System.Collections.Generic.List<string>();
        public static readonly System.Collections.Generic.List<string> Labels = new System.Collections.Generic.List<string>();
    }
}
