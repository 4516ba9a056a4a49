// Click (or tap) the world to paste an object into it: put this on the RawImage a WorldView shows the world in, give it
// a texture (RGBA: transparent pixels leave the world as it was), and the world model goes on from the edited frame.
// Protocol 1.1 `edit`; backends that cannot edit (the sandbox game) are reported once instead of being asked.
using System.Collections.Generic;
using UnityEngine;
using UnityEngine.EventSystems;
using WorldBridge.Core;

namespace WorldBridge
{
    [AddComponentMenu("World Bridge/World Paste (click to paste an object)")]
    public sealed class WorldPaste : MonoBehaviour, IPointerClickHandler
    {
        [Tooltip("The view whose RawImage is clicked (defaults to one on this object or a parent).")]
        public WorldView view;
        [Tooltip("The object to paste: at most the frame's size; RGBA keeps its transparency. Any texture (a PNG asset is sent as its file in the editor).")]
        public Texture2D layer;
        [Tooltip("Centre the object on the clicked pixel (otherwise its top-left corner goes there).")]
        public bool centred = true;
        [Tooltip("Which mouse button pastes.")]
        public PointerEventData.InputButton button = PointerEventData.InputButton.Left;

        readonly HashSet<string> warned = new HashSet<string>(); // the problems warned of, each once: one must not silence the next
        bool warnedNoClient; // Present's rule, as the other components: once until the view has a client again

        public void OnPointerClick(PointerEventData eventData)
        {
            if (eventData.button == button) PasteAt(eventData.position, eventData.pressEventCamera);
        }

        /// <summary>Pastes `layer` at a screen position (for your own input code); returns the req_id or -1.</summary>
        public long PasteAt(Vector2 screenPosition, Camera eventCamera)
        {
            if (view == null) view = GetComponentInParent<WorldView>(true); // looked up late (scripts may set it after AddComponent), as Find looks up the client
            if (view == null)
            {
                Warn("view", "WorldPaste needs a WorldView: drag one into its View field");
                return -1;
            }
            var client = WorldBridgeClient.Find(view, ref view.client); // as the view finds it
            // the client is the view's to find: WorldPaste has no Client field; warned of as the other components do
            if (!WorldBridgeClient.Present(client, "WorldPaste pastes through its View's client, and " + WorldBridgeClient.NeededBy("WorldView"),
                                           this, ref warnedNoClient)) return -1;
            if (layer == null)
            {
                Warn("layer", "WorldPaste has nothing to paste: drag a texture into its Layer field");
                return -1;
            }
            var session = client.Session; // read once: the IO thread may clear it meanwhile
            if (session != null && !session.Capabilities.CanEdit)
            {
                Warn("edit", $"{session.BackendLabel} cannot edit frames, so WorldPaste does nothing here");
                return -1;
            }
            if (view.rawImage == null)
            {   // ScreenToFramePixel maps clicks on the view's Raw Image only: every click would miss
                Warn("raw image", "WorldPaste maps clicks onto the world's Raw Image: set the World View's Raw Image (the one this is on)");
                return -1;
            }
            if (!view.ScreenToFramePixel(screenPosition, eventCamera, out var pixel)) return -1; // off the picture, or no frame yet
            return centred ? client.PasteLayerCentred(layer, pixel) : client.PasteLayer(layer, pixel);
        }

        /// <summary>Says `message` the first time `problem` stops a paste: keyed by the problem, not its words, which may
        /// name a backend that changes.</summary>
        void Warn(string problem, string message)
        {
            if (warned.Add(problem)) Debug.LogWarning("[WorldBridge] " + message, this);
        }
    }
}
