// COMPILE-ONLY STUB of Unity's API (UnityEngine core + IMGUI) — test scaffolding, NOT product code.
// It declares just the members the plugin uses, with Unity's real signatures, so CI can compile Runtime/, Editor/ and
// Samples~/ with mono's mcs where Unity cannot be installed. Nothing here does anything (beyond a GameObject keeping its
// components, GetComponentInParent finding them up the Transform parents, a Transform its parent and children, a
// component starting enabled and isActiveAndEnabled following enabled and SetActive up the parents, a MonoBehaviour
// getting Unity's life cycle (Awake then OnEnable from AddComponent on an active object, Awake at the first activation
// otherwise, OnDisable/OnEnable when `enabled` or SetActive changes isActiveAndEnabled, OnDisable/OnDestroy from
// Destroy, OnDestroy only once awake), a destroyed Object comparing equal to null, a Texture2D keeping its size,
// a Renderer keeping a copy of the property block it is given and its material copied on `material`'s first get,
// a Shader naming its [MainTexture], Debug's logs reaching Application.logMessageReceived, Input reading the keys a test holds in
// UnityEngine.TestSupport.Keys, AddComponent running UnityEngine.TestSupport.Adding.Before, and Range and Tooltip
// keeping their arguments as Unity's do, so NUnit tests can check what a script builds, says, sends and shows in the
// inspector); never ship it.
// Unlike Unity, a component made with `new` (no GameObject) is allowed and counts as on an active object and awake
// (isActiveAndEnabled follows `enabled` alone; it gets no Awake or first OnEnable: a test calls OnEnable itself), so a
// test can build one without a scene; and Destroy acts at once, not at the frame's end.
// Keep every declaration identical to https://docs.unity3d.com/ScriptReference/ when adding one.
using System;
using System.Collections.Generic;
#pragma warning disable 67 // events are declared for the plugin to subscribe to, never raised here

namespace UnityEngine
{
    public class Object
    {
        bool destroyed;
        public string name { get; set; }
        public HideFlags hideFlags { get; set; }
        public static void Destroy(Object obj)
        {
            if (obj) obj.Destroyed();
        }
        public static void DestroyImmediate(Object obj) => Destroy(obj);
        /// <summary>As Unity: a destroyed Object equals null (its C# reference lives on).</summary>
        static bool Gone(Object o) => ReferenceEquals(o, null) || o.destroyed;
        internal virtual void Destroyed() => destroyed = true;
        public static bool operator ==(Object x, Object y) => Gone(x) || Gone(y) ? Gone(x) && Gone(y) : ReferenceEquals(x, y);
        public static bool operator !=(Object x, Object y) => !(x == y);
        public static implicit operator bool(Object exists) => !Gone(exists);
        public override bool Equals(object other) => ReferenceEquals(this, other);
        public override int GetHashCode() => 0;
    }

    [Flags] public enum HideFlags { None = 0, HideInHierarchy = 1, HideInInspector = 2, DontSaveInEditor = 4, NotEditable = 8, DontSaveInBuild = 16, DontUnloadUnusedAsset = 32, DontSave = 52, HideAndDontSave = 61 }

    public class Component : Object
    {
        GameObject owner;
        internal void Attach(GameObject go) => owner = go;
        public GameObject gameObject => owner;
        public Transform transform => owner?.transform;
        public string tag { get; set; }
        public T GetComponent<T>() => default;
        public T GetComponentInParent<T>() => GetComponentInParent<T>(false);
        /// <summary>As Unity 2021.3: up the parents, skipping inactive GameObjects unless `includeInactive`.</summary>
        public T GetComponentInParent<T>(bool includeInactive)
        {
            for (var t = transform; t != null; t = t.parent)
                if ((includeInactive || t.gameObject.activeInHierarchy) && t.gameObject.GetComponent<T>() is T found) return found;
            return default;
        }
        public T GetComponentInChildren<T>() => default;
        internal override void Destroyed()
        {
            owner?.Detach(this);
            base.Destroyed();
        }
    }

    public class Behaviour : Component
    {
        bool on = true;
        bool awake; // Awake ran: Unity sends OnDestroy only to a script that was once on an active object
        public bool enabled
        {
            get => on;
            set
            {
                var was = isActiveAndEnabled;
                on = value;
                Changed(was);
            }
        }
        /// <summary>Unity's; true with no GameObject (a test's `new`: see the header).</summary>
        public bool isActiveAndEnabled => enabled && (gameObject == null || gameObject.activeInHierarchy);

        /// <summary>As Unity: Awake once its GameObject is active (enabled or not), then OnEnable or OnDisable when
        /// isActiveAndEnabled is no longer `was`.</summary>
        internal void Changed(bool was)
        {
            if (!awake && gameObject != null && gameObject.activeInHierarchy)
            {
                awake = true;
                Message("Awake");
            }
            if (isActiveAndEnabled != was) Message(was ? "OnDisable" : "OnEnable");
        }

        internal override void Destroyed()
        {
            if (isActiveAndEnabled) Message("OnDisable");
            if (awake || gameObject == null) Message("OnDestroy");
            base.Destroyed();
        }

        /// <summary>Runs a MonoBehaviour's Unity message `name` (private, as scripts declare them), if it has one.</summary>
        void Message(string name)
        {
            if (this is MonoBehaviour)
                GetType().GetMethod(name, System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public |
                                          System.Reflection.BindingFlags.NonPublic, null, Type.EmptyTypes, null)?.Invoke(this, null);
        }
    }
    public class MonoBehaviour : Behaviour { }
    public class ScriptableObject : Object { }

    public sealed class GameObject : Object
    {
        public GameObject(string name, params Type[] components)
        {
            this.name = name;
            transform = Array.IndexOf(components, typeof(RectTransform)) >= 0 ? new RectTransform() : new Transform();
            transform.Attach(this);
        }
        readonly System.Collections.Generic.List<Component> components = new System.Collections.Generic.List<Component>();
        public Transform transform { get; }
        public bool activeSelf { get; private set; } = true;
        public bool activeInHierarchy => activeSelf && (transform.parent == null || transform.parent.gameObject.activeInHierarchy);
        public T GetComponent<T>()
        {
            foreach (var component in components)
                if (component is T found) return found;
            return default;
        }
        public T AddComponent<T>() where T : Component
        {
            var component = Activator.CreateInstance<T>();
            component.Attach(this);
            components.Add(component);
            TestSupport.Adding.Before?.Invoke(component);
            if (component is Behaviour b) b.Changed(false); // Awake then OnEnable, on an active object
            return component;
        }
        internal void Detach(Component component) => components.Remove(component);
        /// <summary>As Unity: the Behaviours here and below whose isActiveAndEnabled changes get OnEnable/OnDisable.</summary>
        public void SetActive(bool value)
        {
            var was = new System.Collections.Generic.Dictionary<Behaviour, bool>();
            Each(b => was[b] = b.isActiveAndEnabled);
            activeSelf = value;
            foreach (var pair in was) pair.Key.Changed(pair.Value);
        }
        void Each(Action<Behaviour> act)
        {
            foreach (var component in components.ToArray())
                if (component is Behaviour b) act(b);
            for (var i = 0; i < transform.childCount; i++) transform.GetChild(i).gameObject.Each(act);
        }
        internal override void Destroyed()
        {
            foreach (var component in components.ToArray()) component.Destroyed();
            for (var i = transform.childCount - 1; i >= 0; i--) transform.GetChild(i).gameObject.Destroyed();
            base.Destroyed();
        }
    }

    public class Transform : Component
    {
        readonly System.Collections.Generic.List<Transform> children = new System.Collections.Generic.List<Transform>();
        Transform up;
        public int childCount => children.Count;
        public Transform GetChild(int index) => children[index];
        public Transform parent
        {
            get => up;
            set
            {
                up?.children.Remove(this);
                up = value;
                up?.children.Add(this);
            }
        }
        public void SetParent(Transform parent, bool worldPositionStays) => this.parent = parent;
        public void SetAsFirstSibling()
        {
            if (up == null) return;
            up.children.Remove(this);
            up.children.Insert(0, this);
        }
    }

    public sealed class RectTransform : Transform
    {
        public Vector2 anchorMin { get; set; }
        public Vector2 anchorMax { get; set; }
        public Vector2 pivot { get; set; }
        public Vector2 anchoredPosition { get; set; }
        public Vector2 sizeDelta { get; set; }
        public Vector2 offsetMin { get; set; }
        public Vector2 offsetMax { get; set; }
        public Rect rect => default;
    }

    public sealed class RectTransformUtility
    {
        public static bool ScreenPointToLocalPointInRectangle(RectTransform rect, Vector2 screenPoint, Camera cam, out Vector2 localPoint)
        {
            localPoint = default;
            return false;
        }
    }

    public struct Vector2
    {
        public float x, y;
        public Vector2(float x, float y) { this.x = x; this.y = y; }
        public static Vector2 zero => default;
        public static Vector2 one => new Vector2(1, 1);
    }

    public struct Vector4
    {
        public float x, y, z, w;
        public Vector4(float x, float y, float z, float w) { this.x = x; this.y = y; this.z = z; this.w = w; }
    }

    public struct Vector2Int
    {
        public Vector2Int(int x, int y) { this.x = x; this.y = y; }
        public int x { get; set; }
        public int y { get; set; }
    }

    public struct Rect
    {
        public Rect(float x, float y, float width, float height) { this.x = x; this.y = y; this.width = width; this.height = height; }
        public float x { get; set; }
        public float y { get; set; }
        public float width { get; set; }
        public float height { get; set; }
        public bool Contains(Vector2 point) => false;
    }

    public struct Color
    {
        public float r, g, b, a;
        public Color(float r, float g, float b, float a) { this.r = r; this.g = g; this.b = b; this.a = a; }
        public Color(float r, float g, float b) : this(r, g, b, 1) { }
        public static Color green => new Color(0, 1, 0, 1);
        public static Color black => new Color(0, 0, 0, 1);
        public static Color white => new Color(1, 1, 1, 1);
    }

    public struct Color32
    {
        public byte r, g, b, a;
        public Color32(byte r, byte g, byte b, byte a) { this.r = r; this.g = g; this.b = b; this.a = a; }
    }

    public enum TextureFormat { Alpha8 = 1, RGB24 = 3, RGBA32 = 4 }
    public enum FilterMode { Point = 0, Bilinear = 1, Trilinear = 2 }
    public enum TextureWrapMode { Repeat = 0, Clamp = 1, Mirror = 2, MirrorOnce = 3 }

    public class Texture : Object
    {
        public virtual int width { get; set; }
        public virtual int height { get; set; }
        public FilterMode filterMode { get; set; }
        public TextureWrapMode wrapMode { get; set; }
        public virtual bool isReadable => false;
    }

    public sealed class Texture2D : Texture
    {
        public Texture2D(int width, int height, TextureFormat textureFormat, bool mipChain) { this.width = width; this.height = height; }
        public void LoadRawTextureData(byte[] data) { }
        public void Apply(bool updateMipmaps = true, bool makeNoLongerReadable = false) { }
        public void ReadPixels(Rect source, int destX, int destY, bool recalculateMipMaps = true) { }
        public void SetPixels32(Color32[] colors, int miplevel = 0) { }
    }

    public class RenderTexture : Texture
    {
        public static RenderTexture active { get; set; }
        public static RenderTexture GetTemporary(int width, int height, int depthBuffer = 0) => null;
        public static void ReleaseTemporary(RenderTexture temp) { }
    }

    public static class ImageConversion
    {
        public static byte[] EncodeToPNG(this Texture2D tex) => new byte[0];
    }

    public sealed class Graphics
    {
        public static void Blit(Texture source, RenderTexture dest) { }
        public static void Blit(Texture source, RenderTexture dest, Vector2 scale, Vector2 offset) { }
    }

    public class Material : Object
    {
        /// <summary>Stub only (Unity's take a Shader): a test's material with no shader.</summary>
        public Material() { }
        /// <summary>As Unity: a new material with `source`'s shader and properties.</summary>
        public Material(Material source)
        {
            shader = source.shader;
            mainTexture = source.mainTexture;
            mainTextureScale = source.mainTextureScale;
            mainTextureOffset = source.mainTextureOffset;
        }
        public void SetTexture(string name, Texture value) { }
        public void SetTextureScale(string name, Vector2 value) { }
        public void SetTextureOffset(string name, Vector2 value) { }
        public Shader shader { get; set; } = new Shader();
        public Texture mainTexture { get; set; }
        public Vector2 mainTextureScale { get; set; }
        public Vector2 mainTextureOffset { get; set; }
        internal Material Copy() => (Material)MemberwiseClone();
    }

    public sealed class Shader : Object
    {
        readonly string mainTexture;
        /// <summary>Stub only (Unity's come from shader assets): a shader whose texture property `mainTexture` is marked
        /// [MainTexture]; with none, no property is (Unity then takes _MainTex as the main texture).</summary>
        public Shader(string mainTexture = null) { this.mainTexture = mainTexture; }
        public int GetPropertyCount() => mainTexture == null ? 0 : 1;
        public string GetPropertyName(int propertyIndex) => mainTexture;
        public Rendering.ShaderPropertyFlags GetPropertyFlags(int propertyIndex) => Rendering.ShaderPropertyFlags.MainTexture;
    }

    public sealed class MaterialPropertyBlock
    {
        internal readonly Dictionary<string, object> values = new Dictionary<string, object>();
        public bool isEmpty => values.Count == 0;
        public void Clear() => values.Clear();
        public void SetTexture(string name, Texture value) => values[name] = value;
        public void SetVector(string name, Vector4 value) => values[name] = value;
        public Texture GetTexture(string name) => values.TryGetValue(name, out var value) ? value as Texture : null;
        public Vector4 GetVector(string name) => values.TryGetValue(name, out var value) && value is Vector4 v ? v : default;
        internal void CopyFrom(MaterialPropertyBlock source)
        {
            values.Clear();
            if (source != null) foreach (var kv in source.values) values[kv.Key] = kv.Value;
        }
    }

    public class Renderer : Component
    {
        Material own; // the copy `material` made: Unity's instanced material
        readonly MaterialPropertyBlock block = new MaterialPropertyBlock(); // the renderer's overrides of its material's values
        /// <summary>As Unity: the renderer keeps a copy of `properties`' values; null clears them.</summary>
        public void SetPropertyBlock(MaterialPropertyBlock properties) => block.CopyFrom(properties);
        /// <summary>As Unity: `dest` gets a copy of the renderer's overrides (empty when it has none).</summary>
        public void GetPropertyBlock(MaterialPropertyBlock dest) => dest.CopyFrom(block);
        public bool HasPropertyBlock() => !block.isEmpty;
        public Material sharedMaterial { get; set; }
        /// <summary>As Unity: a get copies sharedMaterial into this renderer's own material, drawn from then on (the
        /// getter's caller must destroy it); later gets return that copy.</summary>
        public Material material
        {
            get
            {
                if (sharedMaterial != null && !ReferenceEquals(sharedMaterial, own)) sharedMaterial = own = sharedMaterial.Copy();
                return sharedMaterial;
            }
            set => sharedMaterial = value;
        }
    }

    public enum CameraClearFlags { Skybox = 1, Color = 2, SolidColor = 2, Depth = 3, Nothing = 4 }

    public sealed class Camera : Behaviour
    {
        public static Camera main => null;
        public RenderTexture targetTexture { get; set; }
        public CameraClearFlags clearFlags { get; set; }
        public Color backgroundColor { get; set; }
        public void Render() { }
    }

    public enum RenderMode { ScreenSpaceOverlay = 0, ScreenSpaceCamera = 1, WorldSpace = 2 }
    public sealed class Canvas : Behaviour { public RenderMode renderMode { get; set; } }
    public enum TextAnchor { UpperLeft, UpperCenter, UpperRight, MiddleLeft, MiddleCenter, MiddleRight, LowerLeft, LowerCenter, LowerRight }
    public class Font : Object { }

    public static class Resources
    {
        public static T GetBuiltinResource<T>(string path) where T : Object => default;
    }

    public enum LogType { Error = 0, Assert = 1, Warning = 2, Log = 3, Exception = 4 }

    public static class Debug
    {
        public static void Log(object message) => Application.Logged(message, LogType.Log);
        public static void Log(object message, Object context) => Application.Logged(message, LogType.Log);
        public static void LogWarning(object message) => Application.Logged(message, LogType.Warning);
        public static void LogWarning(object message, Object context) => Application.Logged(message, LogType.Warning);
        public static void LogError(object message) => Application.Logged(message, LogType.Error);
        public static void LogError(object message, Object context) => Application.Logged(message, LogType.Error);
    }

    public static class Application
    {
        public delegate void LogCallback(string condition, string stackTrace, LogType type);
        public static event Action quitting;
        public static event LogCallback logMessageReceived; // raised by Debug's logs, so tests can count what a script says
        public static bool isPlaying => false;
        internal static void Logged(object message, LogType type) => logMessageReceived?.Invoke(message?.ToString(), "", type);
    }

    public static class Time { public static float unscaledTime => 0; }

    public enum KeyCode
    {
        None = 0, Space = 32, Alpha1 = 49, Alpha2, Alpha3, Alpha4, Alpha5, Alpha6, Alpha7, Alpha8, A = 97, D = 100, S = 115, W = 119,
        Keypad1 = 257, Keypad2, Keypad3, Keypad4, Keypad5, Keypad6, Keypad7, Keypad8, UpArrow = 273, DownArrow = 274, RightArrow = 275, LeftArrow = 276, JoystickButton0 = 330,
    }

    public static class Input
    {
        public static bool GetKey(KeyCode key) => TestSupport.Keys.Held.Contains(key);
        public static float GetAxisRaw(string axisName) => 0;
    }

    // --- Attributes ---
    [AttributeUsage(AttributeTargets.Field)] public class PropertyAttribute : Attribute { }
    public sealed class HeaderAttribute : PropertyAttribute { public HeaderAttribute(string header) { } }
    public class TooltipAttribute : PropertyAttribute
    {
        public readonly string tooltip;
        public TooltipAttribute(string tooltip) { this.tooltip = tooltip; }
    }
    public sealed class RangeAttribute : PropertyAttribute
    {
        public readonly float min, max;
        public RangeAttribute(float min, float max) { this.min = min; this.max = max; }
    }
    public sealed class DelayedAttribute : PropertyAttribute { public DelayedAttribute() { } }
    public sealed class MinAttribute : PropertyAttribute { public MinAttribute(float min) { } }
    public sealed class TextAreaAttribute : PropertyAttribute { public TextAreaAttribute() { } public TextAreaAttribute(int minLines, int maxLines) { } }
    [AttributeUsage(AttributeTargets.Field)] public sealed class SerializeField : Attribute { }
    [AttributeUsage(AttributeTargets.Class)] public sealed class AddComponentMenu : Attribute { public AddComponentMenu(string menuName) { } }
    [AttributeUsage(AttributeTargets.Class)] public sealed class DisallowMultipleComponent : Attribute { }

    // --- IMGUI (used by the editor window) ---
    public enum EventType { MouseDown = 0, MouseUp = 1, KeyDown = 4, KeyUp = 5, Repaint = 7 }

    public sealed class Event
    {
        public static Event current { get; set; }
        public EventType type { get; set; }
        public KeyCode keyCode { get; set; }
        public Vector2 mousePosition { get; set; }
        public void Use() { }
    }

    public sealed class GUIStyle { }
    public sealed class GUILayoutOption { }

    public enum FocusType { Keyboard = 1, Passive = 2 }

    public static class GUIUtility
    {
        public static int keyboardControl { get; set; }
        public static int GetControlID(FocusType focus, Rect position) => 0;
    }

    public class GUI
    {
        public static bool enabled { get; set; }
        public static void DrawTextureWithTexCoords(Rect position, Texture image, Rect texCoords) { }
    }

    public class GUILayout
    {
        public static bool Button(string text, params GUILayoutOption[] options) => false;
        public static bool Button(string text, GUIStyle style, params GUILayoutOption[] options) => false;
        public static GUILayoutOption Width(float width) => null;
        public static GUILayoutOption MinHeight(float minHeight) => null;
        public static GUILayoutOption MaxWidth(float maxWidth) => null;
    }

    public class GUILayoutUtility
    {
        public static Rect GetAspectRect(float aspect, params GUILayoutOption[] options) => default;
    }
}

namespace UnityEngine.Rendering
{
    [Flags] public enum ShaderPropertyFlags { None = 0, HideInInspector = 1, PerRendererData = 2, NoScaleOffset = 4, Normal = 8, HDR = 16, Gamma = 32, NonModifiableTextureData = 64, MainTexture = 128, MainColor = 256 }
}

namespace UnityEngine.Events
{
    public delegate void UnityAction();
    public delegate void UnityAction<T0>(T0 arg0);

    public abstract class UnityEventBase { }

    [Serializable]
    public class UnityEvent : UnityEventBase
    {
        readonly System.Collections.Generic.List<UnityAction> calls = new System.Collections.Generic.List<UnityAction>();
        public void AddListener(UnityAction call) => calls.Add(call);
        public void RemoveListener(UnityAction call) => calls.Remove(call);
        public void Invoke() { foreach (var call in calls.ToArray()) call(); } // tests see what a listener does
    }

    [Serializable]
    public class UnityEvent<T0> : UnityEventBase
    {
        readonly System.Collections.Generic.List<UnityAction<T0>> calls = new System.Collections.Generic.List<UnityAction<T0>>();
        public void AddListener(UnityAction<T0> call) => calls.Add(call);
        public void RemoveListener(UnityAction<T0> call) => calls.Remove(call);
        public void Invoke(T0 arg0) { foreach (var call in calls.ToArray()) call(arg0); } // tests count what a game is told
    }
}

namespace UnityEngine.TestSupport
{
    /// <summary>Not Unity's API: the keys the legacy Input reads as held, set by tests (Unity has no way to press a key).</summary>
    public static class Keys
    {
        public static readonly System.Collections.Generic.HashSet<KeyCode> Held = new System.Collections.Generic.HashSet<KeyCode>();
    }

    /// <summary>Not Unity's API: what a test does to each component AddComponent makes, before its Awake and OnEnable
    /// (null: nothing), where a game sets fields with the object inactive; the tests point a client at no host so.</summary>
    public static class Adding
    {
        public static Action<Component> Before;
    }
}
