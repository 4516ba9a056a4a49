// WorldView's backend badge, run under mono against Tests/CompileOnly~ (the host's session is handed to the client directly).
using System.Collections.Generic;
using NUnit.Framework;
using UnityEngine;
using RawImage = UnityEngine.UI.RawImage;
using Text = UnityEngine.UI.Text;
using WorldBridge;
using WorldBridge.Core;
using static WorldBridge.Tests.Private;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class WorldViewTests
    {
        /// <summary>A view on a Raw Image whose client is given the host's `session` for `kind` once the view is enabled.</summary>
        static WorldView Session(string kind, string name, bool badge = true, bool onRawImage = true, bool target = true)
        {
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            var client = new WorldBridgeClient { startOnConnect = false };
            Use(client, connection);
            var view = new WorldView { client = client, showBackendBadge = badge };
            if (target && onRawImage) view.rawImage = new GameObject("World", typeof(RectTransform)).AddComponent<RawImage>();
            else if (target) view.targetRenderer = new GameObject("Quad").AddComponent<Renderer>();
            Call(view, "OnEnable");
            var session = new MsgMap { { "type", "session" }, { "session_id", "s1" }, { "backend_kind", kind }, { "backend_name", name } };
            Set(connection, "session", SessionInfo.From(session));
            Call(client, "Handle", session);
            return view;
        }

        [Test]
        public void AClientSetByScriptRightAfterAddComponentGetsItsFramesShown()
        {
            var world = new GameObject("World", typeof(RectTransform));
            WorldView view = null;
            // on an active object Unity runs OnEnable inside AddComponent, before the script's next line
            var logged = Logs.Of(LogType.Error, () => view = world.AddComponent<WorldView>());
            view.rawImage = world.AddComponent<RawImage>();
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            var client = new WorldBridgeClient { startOnConnect = false };
            Use(client, connection);
            view.client = client;
            logged.AddRange(Logs.Of(LogType.Warning, () => Call(view, "LateUpdate")));
            CollectionAssert.IsEmpty(logged, "a client set right after AddComponent was called missing");
            Assert.IsTrue(view.enabled, "the view turned itself off before the script gave it its client");
            Set(connection, "latest", new WorldFrame { Width = 2, Height = 1, Pixels = new byte[6], Events = new string[0] });
            Call(client, "Update");
            Assert.IsNotNull(view.LastFrame, "the client's frames reached no view");
            Assert.AreSame(view.Texture, view.rawImage.texture);
            Assert.AreEqual((2, 1), (view.Texture.width, view.Texture.height), "the texture has the frame's size");
        }

        [Test]
        public void AViewWithNoClientWarnsOnceAtItsFirstFrameAndFindsOneAddedLater()
        {
            var world = new GameObject("World", typeof(RectTransform));
            WorldView view = null;
            var warnings = Logs.Of(LogType.Warning, () =>
            {
                CollectionAssert.IsEmpty(Logs.Of(LogType.Error, () => view = world.AddComponent<WorldView>()), "no client yet is no error on enable");
                Call(view, "LateUpdate");
                Call(view, "LateUpdate");
            });
            Assert.AreEqual(new[] { "[WorldBridge] " + WorldBridgeClient.NeededBy("WorldView") }, warnings);
            Assert.IsTrue(view.enabled, "a view that turns itself off never finds a client added later");
            var client = AddClient(world);
            Call(view, "LateUpdate");
            Assert.AreSame(client, view.client, "the client added to the view's object later was not found");
            view.client = null; // an empty Client means the client on the object or a parent: disabling detaches
            Assert.IsEmpty(Logs.Of(LogType.Warning, () => Call(view, "LateUpdate")));
            Assert.AreSame(client, view.client, "a cleared Client is the default, the client on the view's object");
            Object.Destroy(world); // the client's OnDisable closes the connection its OnEnable opened
        }

        [Test]
        public void AViewWithNoTargetFillsItsTextureForAScriptInSilenceAndMapsNoClick()
        {
            var view = Session("world_model", "default", target: false);
            var logged = Logs.Of(LogType.Warning, () =>
            {
                view.Show(new WorldFrame { Width = 2, Height = 1, Pixels = new byte[6], Events = new string[0] });
                Call(view, "LateUpdate");
            });
            CollectionAssert.IsEmpty(logged, "a script reading view.Texture on purpose was warned at");
            Assert.IsNotNull(view.Texture, "the frame is in Texture, for the script");
            Assert.AreEqual((2, 1), (view.Texture.width, view.Texture.height), "the texture has the frame's size");
            Assert.IsFalse(view.ScreenToFramePixel(Vector2.zero, null, out _), "with no Raw Image no click maps onto the frame");
            var first = view.Texture;
            view.Show(new WorldFrame { Width = 2, Height = 1, Pixels = new byte[6], Events = new string[0] });
            Assert.AreSame(first, view.Texture, "a frame of the same size made a new texture: one is made per frame size");
            view.Show(new WorldFrame { Width = 4, Height = 2, Pixels = new byte[24], Events = new string[0] });
            Assert.AreEqual((4, 2), (view.Texture.width, view.Texture.height), "a frame of a new size gets a texture of its size");
        }

        [Test]
        public void TheSandboxGameGetsAnOrangeBadgeOverTheWorldWithoutWiring()
        {
            var view = Session("sandbox", "platformer");
            Assert.IsNotNull(view.Badge, "no badge: the user would have to wire a Text to see which backend runs");
            Assert.AreSame(view.rawImage.transform, view.Badge.transform.parent, "the badge is drawn over the world image");
            Assert.AreEqual("SANDBOX GAME (test backend, not the world model): platformer", view.Badge.text);
            Assert.AreEqual(WorldView.SandboxColor, view.Badge.color);
            Assert.AreEqual(new Color(1f, 0.65f, 0f), view.Badge.color, "the Godot addon's orange");
            Assert.IsTrue(view.Badge.gameObject.activeSelf);
            Assert.IsFalse(view.Badge.raycastTarget, "the badge must not catch clicks meant for the world");
        }

        [Test]
        public void AWorldOnlyOnARendererGetsTheBadgeOnAScreenSpaceCanvas()
        {
            var view = Session("sandbox", "platformer", onRawImage: false);
            Assert.IsNotNull(view.Badge, "no badge: a world on a quad would not say which backend runs");
            Assert.AreEqual("SANDBOX GAME (test backend, not the world model): platformer", view.Badge.text);
            Assert.AreEqual(WorldView.SandboxColor, view.Badge.color);
            Assert.AreSame(view.Overlay.transform, view.Badge.transform.parent, "a Text draws only under a Canvas");
            Assert.AreEqual(RenderMode.ScreenSpaceOverlay, view.Overlay.renderMode);
            Assert.IsNull(Session("sandbox", "platformer").Overlay, "over a Raw Image the badge needs no canvas of its own");
            Assert.IsNull(Session("sandbox", "platformer", badge: false, onRawImage: false).Overlay);
        }

        [Test]
        public void TheWorldModelGetsAGreenBadgeAndAWiredLabelIsColouredToo()
        {
            var label = new GameObject("Label", typeof(RectTransform)).AddComponent<Text>();
            var view = Session("world_model", "default", badge: true);
            view.backendLabel = label;
            Call(view.client, "Handle", new MsgMap { { "type", "session" }, { "backend_kind", "world_model" }, { "backend_name", "default" } });
            Assert.AreEqual("WORLD MODEL: default", view.Badge.text);
            Assert.AreEqual(Color.green, view.Badge.color);
            Assert.AreEqual(("WORLD MODEL: default", Color.green), (label.text, label.color));
        }

        [Test]
        public void TheBadgeCanBeTurnedOffForAGameThatDrawsItsOwnLabel()
        {
            Assert.IsNull(Session("sandbox", "platformer", badge: false).Badge);
            var view = Session("sandbox", "platformer");
            view.showBackendBadge = false;
            Call(view.client, "Handle", new MsgMap { { "type", "session" }, { "backend_kind", "sandbox" }, { "backend_name", "platformer" } });
            Assert.IsFalse(view.Badge.gameObject.activeSelf, "unticking Show Backend Badge hides the badge at the next session");
        }

        [Test]
        public void ANewWorldOnTheSameConnectionBlanksTheOldWorldsFrameAndAResumeKeepsIt()
        {
            var view = Session("world_model", "default");
            view.Show(new WorldFrame { Width = 2, Height = 2, Pixels = new byte[12], Events = new string[0] });
            foreach (var resumed in new[] { true, false })
            {
                var session = new MsgMap { { "type", "session" }, { "session_id", "s2" }, { "backend_kind", "sandbox" },
                                           { "backend_name", "platformer" }, { "resumed", resumed } };
                Set(view.client.Connection, "session", SessionInfo.From(session));
                Call(view.client, "Handle", session);
                if (resumed) Assert.IsNotNull(view.LastFrame, "a resumed world's frame is still the one shown");
            }
            Assert.IsNull(view.LastFrame, "the old world's last frame stayed, clicks mapped onto it, until the new world's first frame");
        }

        [Test]
        public void AClosedOrReopenedClientNoLongerShowsTheOldBackendOrFrame()
        {
            var label = new GameObject("Label", typeof(RectTransform)).AddComponent<Text>();
            var view = Session("world_model", "default");
            view.backendLabel = label;
            Call(view.client, "Handle", new MsgMap { { "type", "session" }, { "backend_kind", "world_model" }, { "backend_name", "default" } });
            view.Show(new WorldFrame { Width = 2, Height = 2, Pixels = new byte[12], Events = new string[0] });
            view.client.Shutdown(); // OnDisable
            foreach (var shown in new[] { view.Badge, label })
                Assert.AreEqual(("not connected", Color.white), (shown.text, shown.color), "the closed world model is still named");
            Assert.IsNull(view.LastFrame, "the closed connection's frame is still the one clicks map onto");
            view.client.endpoint = "tcp://127.0.0.1:1";
            view.client.Open(); // OnEnable again: maybe onto the sandbox now
            Assert.AreEqual(("connecting to tcp://127.0.0.1:1", Color.white), (view.Badge.text, view.Badge.color));
            view.client.Shutdown();
        }

        [Test]
        public void AnEndedSessionsBackendIsNoLongerNamedInItsColour()
        {
            var fatal = new MsgMap { { "type", "error" }, { "code", "backend_error" }, { "message", "the world crashed" }, { "fatal", true } };
            var unknown = new MsgMap { { "type", "error" }, { "req_id", 7L }, { "code", "unknown_session" }, { "message", "no session s1" }, { "fatal", false } };
            foreach (var ending in new[] { (fatal, "backend_error: the world crashed"), (unknown, "unknown_session: no session s1"),
                                                ((MsgMap)null, "the connection to the host failed") })
            {
                var (end, said) = ending;
                var label = new GameObject("Label", typeof(RectTransform)).AddComponent<Text>();
                var view = Session("world_model", "default");
                view.backendLabel = label;
                var reasons = new List<string>();
                view.client.onSessionEnded.AddListener(reasons.Add);
                var connection = view.client.Connection;
                if (end != null)
                {   // the IO thread forgets the session, then posts the error (unknown_session: the answer to its resume)
                    Set(connection, "resumeReqId", 7L);
                    Set(connection, "session", null);
                    Call(view.client, "Handle", end);
                }
                else
                {   // no reconnect: the connection gave up with the session still recorded
                    Set(connection, "state", ConnectionState.Failed);
                    Call(view.client, "Update");
                    Call(view.client, "Update");
                }
                CollectionAssert.AreEqual(new[] { said }, reasons, "onSessionEnded fires once, with why");
                Assert.IsFalse(view.client.InSession);
                foreach (var shown in new[] { view.Badge, label })
                    Assert.AreEqual(("session ended: " + said, Color.white), (shown.text, shown.color),
                                    "the ended world model is still named as running, in green");
            }
        }

        [Test]
        public void ARawImageAssignedAfterTheFirstFrameShowsTheNextFrame()
        {
            var view = Session("sandbox", "platformer", target: false);
            var frame = new WorldFrame { Width = 2, Height = 1, Pixels = new byte[6], Events = new string[0] };
            view.Show(frame); // the world runs, shown nowhere yet (a UI loaded later)
            view.rawImage = new GameObject("World", typeof(RectTransform)).AddComponent<RawImage>();
            view.Show(frame); // the same size: no new texture
            Assert.AreSame(view.Texture, view.rawImage.texture, "a Raw Image set after the first frame stayed empty");
            Assert.AreEqual((0f, 1f, 1f, -1f), (view.rawImage.uvRect.x, view.rawImage.uvRect.y, view.rawImage.uvRect.width,
                                                view.rawImage.uvRect.height), "the picture is upside down");
        }

        /// <summary>The texture `r` draws as `property`, as Unity draws it: its property block's, else its material's
        /// (whose main texture stands for `property` here).</summary>
        static Texture Drawn(Renderer r, string property = "_MainTex")
        {
            var block = new MaterialPropertyBlock();
            r.GetPropertyBlock(block);
            var over = block.GetTexture(property);
            return !ReferenceEquals(over, null) ? over : r.sharedMaterial != null ? r.sharedMaterial.mainTexture : null;
        }

        /// <summary>Whether `r`'s property block flips `property` upright: row 0 of a frame is the top of the picture.</summary>
        static bool Flipped(Renderer r, string property)
        {
            var block = new MaterialPropertyBlock();
            r.GetPropertyBlock(block);
            var st = block.GetVector(property + "_ST");
            return st.x == 1 && st.y == -1 && st.z == 0 && st.w == 1;
        }

        static WorldFrame Frame(int width, int height) =>
            new WorldFrame { Width = width, Height = height, Pixels = new byte[width * height * 3], Events = new string[0] };

        /// <summary>A view whose Target Renderer, a quad, draws `material`.</summary>
        static WorldView OnQuad(Material material)
        {
            var view = Session("sandbox", "platformer", badge: false, onRawImage: false);
            view.targetRenderer.sharedMaterial = material;
            return view;
        }

        /// <summary>`view` lets its renderer go, as `how` says: a script swaps its Target Renderer, or it is destroyed.</summary>
        static void LetGo(WorldView view, string how)
        {
            if (how == "destroyed")
            {
                Object.Destroy(view);
                return;
            }
            view.targetRenderer = new GameObject("Other quad").AddComponent<Renderer>();
            view.targetRenderer.sharedMaterial = new Material();
            view.Show(Frame(2, 1));
        }

        [Test]
        public void ARendererSwappedAfterTheFirstFrameShowsTheNextFrame()
        {
            var view = OnQuad(new Material());
            var first = view.targetRenderer;
            view.Show(Frame(2, 1));
            LetGo(view, "swapped");
            Assert.AreSame(view.Texture, Drawn(view.targetRenderer), "the renderer set after the first frame stayed blank");
            Assert.IsTrue(Flipped(view.targetRenderer, "_MainTex"), "the picture is upside down");
            Assert.IsNull(Drawn(first), "the swapped-out renderer kept showing the live world");
        }

        [Test]
        public void ARendererWithNoMaterialShowsNothingAndBreaksNothing()
        {
            var view = Session("sandbox", "platformer", badge: false, onRawImage: false); // its quad has no material
            var frame = new WorldFrame { Width = 2, Height = 1, Pixels = new byte[6], Events = new string[0] };
            Assert.DoesNotThrow(() => view.Show(frame), "a frame on a renderer with no material threw in the client's Update");
            Assert.AreSame(frame, view.LastFrame);
        }

        [Test]
        public void ARendererKeepsItsMaterialUntouchedAndDrawsItAgainWhenTheViewLetsGo()
        {
            foreach (var letGo in new[] { "swapped", "destroyed" })
            {
                var paint = new Texture2D(8, 8, TextureFormat.RGB24, false);
                var own = new Material { mainTexture = paint };
                var view = OnQuad(own);
                var quad = view.targetRenderer;
                view.Show(Frame(2, 1));
                Assert.AreSame(view.Texture, Drawn(quad), "the quad does not show the world");
                Assert.AreSame(own, quad.sharedMaterial, "the view replaced the renderer's material");
                Assert.AreSame(paint, own.mainTexture, "the view drew on a material other objects may share");
                LetGo(view, letGo);
                Assert.AreSame(paint, Drawn(quad), $"the {letGo} view left the quad on the world's frame, not its own texture");
                Assert.IsFalse(quad.HasPropertyBlock(), $"the {letGo} view left its overrides on the quad");
                Assert.IsTrue(own != null && paint != null, $"the {letGo} view destroyed the renderer's material or texture");
            }
        }

        [Test]
        public void AMaterialAScriptInstancedBeforeTheFirstFrameSurvivesTheViewLettingGo()
        {
            foreach (var letGo in new[] { "swapped", "destroyed" })
            {
                var view = OnQuad(new Material());
                var quad = view.targetRenderer;
                var mine = quad.material; // the game tinted the quad before the view first drew on it
                view.Show(Frame(2, 1));
                Assert.AreSame(view.Texture, Drawn(quad), "the quad does not show the world");
                Assert.AreSame(mine, quad.sharedMaterial, "the quad no longer draws the game's own material instance");
                LetGo(view, letGo);
                Assert.IsTrue(mine != null, $"the view {letGo} destroyed the material the game's script made and holds");
                Assert.AreSame(mine, quad.sharedMaterial, $"the {letGo} view did not leave the quad on the game's material");
                Assert.IsNull(Drawn(quad), $"the {letGo} view left the quad showing the world");
            }
        }

        [Test]
        public void AMaterialAScriptTakesWhileTheWorldPlaysShowsEveryFrameSizeAndOutlivesTheView()
        {
            var view = OnQuad(new Material());
            var quad = view.targetRenderer;
            view.Show(Frame(2, 1));
            var tinted = quad.material; // renderer.material.color = Color.red, to flash on damage
            Assert.AreSame(view.Texture, Drawn(quad), "the tinted quad no longer shows the world");
            view.Show(Frame(4, 2)); // a new session, backend or host: a new texture, the old one destroyed
            Assert.AreSame(view.Texture, Drawn(quad), "after a new frame size the tinted quad drew the destroyed texture");
            Object.Destroy(view);
            Assert.IsTrue(tinted != null, "the destroyed view destroyed the game's material");
            Assert.AreSame(tinted, quad.sharedMaterial, "the destroyed view took the game's material off the quad");
            Assert.IsTrue(ReferenceEquals(Drawn(quad), null), "the quad draws the destroyed view's texture");
        }

        [Test]
        public void TheFrameGoesInTheShadersMainTextureOrTheNamedProperty()
        {
            var view = OnQuad(new Material { shader = new Shader("_BaseMap") }); // URP Lit: [MainTexture] _BaseMap
            var quad = view.targetRenderer;
            view.Show(Frame(2, 1));
            Assert.AreSame(view.Texture, Drawn(quad, "_BaseMap"), "a URP Lit quad does not show the world");
            Assert.IsTrue(Flipped(quad, "_BaseMap"), "the picture is upside down");
            var other = view.targetRenderer = new GameObject("Other quad").AddComponent<Renderer>();
            other.sharedMaterial = new Material();
            view.textureProperty = "_Overlay";
            view.Show(Frame(2, 1));
            var block = new MaterialPropertyBlock();
            other.GetPropertyBlock(block);
            Assert.AreSame(view.Texture, block.GetTexture("_Overlay"), "the Texture Property named was not set");
            Assert.IsTrue(Flipped(other, "_Overlay"), "the picture is upside down");
        }

        [Test]
        public void ARawImageTheViewLetsGoGetsBackWhatItShowedBefore()
        {
            var view = Session("sandbox", "platformer", target: false);
            var before = new Texture2D(8, 8, TextureFormat.RGB24, false);
            var first = view.rawImage = new GameObject("World", typeof(RectTransform)).AddComponent<RawImage>();
            first.texture = before; // a placeholder picture shown until the world runs
            first.uvRect = new Rect(0, 0, 1, 1);
            view.Show(new WorldFrame { Width = 2, Height = 1, Pixels = new byte[6], Events = new string[0] });
            Assert.AreSame(view.Texture, first.texture);
            var second = view.rawImage = new GameObject("World 2", typeof(RectTransform)).AddComponent<RawImage>();
            view.Show(new WorldFrame { Width = 4, Height = 2, Pixels = new byte[24], Events = new string[0] }); // a new size too
            Assert.AreSame(before, first.texture, "the swapped-out Raw Image still shows the live world");
            Assert.AreEqual((0f, 0f, 1f, 1f), (first.uvRect.x, first.uvRect.y, first.uvRect.width, first.uvRect.height),
                            "the swapped-out Raw Image kept the view's flipped uvRect");
            Assert.AreSame(view.Texture, second.texture, "the Raw Image swapped in shows the world");
            Object.Destroy(view);
            Assert.IsNull(second.texture, "a destroyed view left its Raw Image showing its destroyed texture");
            Assert.AreEqual((0f, 0f, 0f, 0f), (second.uvRect.x, second.uvRect.y, second.uvRect.width, second.uvRect.height));
        }

        [Test]
        public void ATargetAssignedOrTheBadgeTickedAtRuntimeGetsTheBadgeAtTheNextFrame()
        {
            var view = Session("sandbox", "platformer", target: false);
            Assert.IsNull(view.Badge, "no target yet: nothing to draw a badge on");
            view.rawImage = new GameObject("World", typeof(RectTransform)).AddComponent<RawImage>(); // by script, after OnEnable
            Call(view, "LateUpdate");
            Assert.IsNotNull(view.Badge, "a Raw Image assigned after OnEnable got no badge until the view was enabled again");
            Assert.AreSame(view.rawImage.transform, view.Badge.transform.parent);
            Assert.AreEqual(("SANDBOX GAME (test backend, not the world model): platformer", WorldView.SandboxColor),
                            (view.Badge.text, view.Badge.color));

            view = Session("world_model", "default", badge: false, onRawImage: false);
            view.showBackendBadge = true; // ticked at runtime, the world on a quad
            Call(view, "LateUpdate");
            Assert.IsNotNull(view.Badge, "Show Backend Badge ticked at runtime drew no badge");
            Assert.AreSame(view.Overlay.transform, view.Badge.transform.parent);
            Assert.AreEqual(("WORLD MODEL: default", Color.green), (view.Badge.text, view.Badge.color));
            view.rawImage = new GameObject("World", typeof(RectTransform)).AddComponent<RawImage>();
            Call(view, "LateUpdate");
            Assert.AreSame(view.rawImage.transform, view.Badge.transform.parent, "the badge moves onto a Raw Image assigned later");
            Assert.IsNull(view.Overlay, "the canvas made for the badge is gone once the badge left it");
            view.showBackendBadge = false;
            Call(view, "LateUpdate");
            Assert.IsFalse(view.Badge.gameObject.activeSelf, "unticked at runtime, the badge still showed");
        }
    }
}
