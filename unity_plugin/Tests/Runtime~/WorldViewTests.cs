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

        [Test]
        public void ARendererSwappedAfterTheFirstFrameShowsTheNextFrame()
        {
            var view = Session("sandbox", "platformer", badge: false, onRawImage: false);
            view.targetRenderer.sharedMaterial = new Material();
            var frame = new WorldFrame { Width = 2, Height = 1, Pixels = new byte[6], Events = new string[0] };
            view.Show(frame);
            view.targetRenderer = new GameObject("Other quad").AddComponent<Renderer>();
            view.targetRenderer.sharedMaterial = new Material();
            view.Show(frame);
            Assert.AreSame(view.Texture, view.targetRenderer.sharedMaterial.mainTexture, "the renderer set after the first frame stayed blank");
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
        public void ARendererTheViewLetsGoGetsItsOwnMaterialBackAndTheViewsCopyIsDestroyed()
        {
            var view = Session("sandbox", "platformer", badge: false, onRawImage: false);
            var quad = view.targetRenderer;
            var own = quad.sharedMaterial = new Material();
            var frame = new WorldFrame { Width = 2, Height = 1, Pixels = new byte[6], Events = new string[0] };
            view.Show(frame);
            var copy = quad.sharedMaterial;
            Assert.AreNotSame(own, copy, "the view draws on a copy of its own, not on a material other objects share");
            var other = view.targetRenderer = new GameObject("Other quad").AddComponent<Renderer>(); // swapped by a script
            var othersOwn = other.sharedMaterial = new Material();
            view.Show(frame);
            Assert.AreSame(own, quad.sharedMaterial, "the old renderer kept the view's copy");
            Assert.IsTrue(copy == null, "the view's copy for the old renderer leaked (one per swap)");
            var otherCopy = other.sharedMaterial;
            Object.Destroy(view);
            Assert.AreSame(othersOwn, other.sharedMaterial, "a destroyed view left its renderer drawing a destroyed material");
            Assert.IsTrue(otherCopy == null, "the view's copy outlived the view");
        }

        [Test]
        public void AMaterialAScriptInstancedBeforeTheFirstFrameSurvivesTheViewLettingGo()
        {
            foreach (var letGo in new[] { "swapped", "destroyed" })
            {
                var view = Session("sandbox", "platformer", badge: false, onRawImage: false);
                var quad = view.targetRenderer;
                quad.sharedMaterial = new Material();
                var mine = quad.material; // the game tinted the quad before the view first drew on it
                var frame = new WorldFrame { Width = 2, Height = 1, Pixels = new byte[6], Events = new string[0] };
                view.Show(frame);
                Assert.AreNotSame(mine, quad.sharedMaterial, "the view draws on the game's own material instance");
                var copy = quad.sharedMaterial;
                if (letGo == "swapped")
                {
                    view.targetRenderer = new GameObject("Other quad").AddComponent<Renderer>();
                    view.targetRenderer.sharedMaterial = new Material();
                    view.Show(frame);
                }
                else Object.Destroy(view);
                Assert.IsTrue(mine != null, $"the view {letGo} destroyed the material the game's script made and holds");
                Assert.AreSame(mine, quad.sharedMaterial, $"the {letGo} view did not give the quad its material back");
                Assert.IsTrue(copy == null, $"the view's own copy outlived it being {letGo}");
            }
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
