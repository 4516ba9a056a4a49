// COMPILE-ONLY STUB of Unity's API (com.unity.ugui: UnityEngine.UI, UnityEngine.EventSystems) — test scaffolding,
// NOT product code. Declarations follow the real package; nothing here does anything beyond the EventSystem keeping its
// selection and an InputField its focus. See UnityEngine.cs.
using UnityEngine.Events;

namespace UnityEngine.EventSystems
{
    public abstract class UIBehaviour : MonoBehaviour { }
    public class EventSystem : UIBehaviour
    {
        public static EventSystem current { get; set; }
        public GameObject currentSelectedGameObject { get; private set; }
        public void SetSelectedGameObject(GameObject selected) => currentSelectedGameObject = selected;
    }
    public abstract class BaseInputModule : UIBehaviour { }
    public class StandaloneInputModule : BaseInputModule { }
    public abstract class BaseMeshEffect : UIBehaviour { }

    public interface IEventSystemHandler { }
    public interface IPointerClickHandler : IEventSystemHandler { void OnPointerClick(PointerEventData eventData); }

    public abstract class AbstractEventData { }
    public class BaseEventData : AbstractEventData { public BaseEventData(EventSystem eventSystem) { } }

    public class PointerEventData : BaseEventData
    {
        public enum InputButton { Left = 0, Right = 1, Middle = 2 }
        public PointerEventData(EventSystem eventSystem) : base(eventSystem) { }
        public Vector2 position { get; set; }
        public Camera pressEventCamera => null;
        public InputButton button { get; set; }
    }
}

namespace UnityEngine.UI
{
    using UnityEngine.EventSystems;

    public abstract class Graphic : UIBehaviour
    {
        public virtual Color color { get; set; }
        public bool raycastTarget { get; set; }
        public RectTransform rectTransform => transform as RectTransform;
    }

    public abstract class MaskableGraphic : Graphic { }

    public class RawImage : MaskableGraphic
    {
        public Texture texture { get; set; }
        public Rect uvRect { get; set; }
    }

    public class Image : MaskableGraphic { }

    public class Text : MaskableGraphic
    {
        public virtual string text { get; set; }
        public Font font { get; set; }
        public int fontSize { get; set; }
        public TextAnchor alignment { get; set; }
    }

    public class Shadow : BaseMeshEffect { }
    public class Outline : Shadow { }
    public class Selectable : UIBehaviour { public Graphic targetGraphic { get; set; } }

    public class InputField : Selectable
    {
        public bool isFocused { get; private set; }
        public void ActivateInputField() => isFocused = true;
        public void DeactivateInputField() => isFocused = false;
    }

    public class Button : Selectable
    {
        public class ButtonClickedEvent : UnityEvent { }
        public ButtonClickedEvent onClick { get; set; }
    }

    public class LayoutElement : UIBehaviour { public virtual float preferredWidth { get; set; } }
    public abstract class LayoutGroup : UIBehaviour { public TextAnchor childAlignment { get; set; } }
    public abstract class HorizontalOrVerticalLayoutGroup : LayoutGroup { public float spacing { get; set; } }
    public class HorizontalLayoutGroup : HorizontalOrVerticalLayoutGroup { }

    public class AspectRatioFitter : UIBehaviour
    {
        public enum AspectMode { None, WidthControlsHeight, HeightControlsWidth, FitInParent, EnvelopeParent }
        public AspectMode aspectMode { get; set; }
        public float aspectRatio { get; set; }
    }

    public class CanvasScaler : UIBehaviour
    {
        public enum ScaleMode { ConstantPixelSize, ScaleWithScreenSize, ConstantPhysicalSize }
        public ScaleMode uiScaleMode { get; set; }
        public Vector2 referenceResolution { get; set; }
    }

    public class GraphicRaycaster : BaseRaycaster { }
}

namespace UnityEngine.EventSystems
{
    public abstract class BaseRaycaster : UIBehaviour { }
}
