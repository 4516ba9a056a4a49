// WorldPaste's misconfiguration warnings, run under mono against Tests/CompileOnly~ (no click: PasteAt is called directly).
using NUnit.Framework;
using UnityEngine;
using WorldBridge;
using WorldBridge.Core;
using static WorldBridge.Tests.Private;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class WorldPasteTests
    {
        /// <summary>A client whose connection holds a sandbox session, which cannot edit frames.</summary>
        static WorldBridgeClient SandboxClient()
        {
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            Set(connection, "state", ConnectionState.Ready);
            Set(connection, "session", SessionInfo.From(new MsgMap { { "type", "session" }, { "backend_kind", "sandbox" }, { "backend_name", "fake" } }));
            var client = new WorldBridgeClient();
            Use(client, connection);
            return client;
        }

        static long Click(WorldPaste paste) => paste.PasteAt(Vector2.zero, null);

        /// <summary>Two clicks on `paste` paste nothing and log one warning, which names `fix`.</summary>
        static void ClicksWarnOnce(WorldPaste paste, string fix)
        {
            var warnings = Logs.Of(LogType.Warning, () =>
            {
                Assert.AreEqual(-1, Click(paste));
                Assert.AreEqual(-1, Click(paste));
            });
            Assert.AreEqual(1, warnings.Count, string.Join("\n", warnings));
            StringAssert.Contains(fix, warnings[0]);
        }

        [Test]
        public void AClickWithNoLayerWarnsOnceNamingTheField() =>
            ClicksWarnOnce(new WorldPaste { view = new WorldView { client = SandboxClient() } }, "drag a texture into its Layer field");

        [Test]
        public void AViewWithNoRawImageWarnsOnceInsteadOfIgnoringEveryClick() =>
            ClicksWarnOnce(new WorldPaste { view = new WorldView { client = new WorldBridgeClient() }, layer = new Texture2D(4, 4, TextureFormat.RGBA32, false) },
                           "set the World View's Raw Image");

        [Test]
        public void AViewWithNoClientIsNamedAsTheOneToGiveAClient()
        {
            var layer = new Texture2D(4, 4, TextureFormat.RGBA32, false);
            ClicksWarnOnce(new WorldPaste { view = new WorldView(), layer = layer }, WorldBridgeClient.NeededBy("WorldView"));
            var world = new GameObject("World");
            var client = AddClient(world);
            var paste = new WorldPaste { view = world.AddComponent<WorldView>(), layer = layer }; // the view has not looked yet
            ClicksWarnOnce(paste, "set the World View's Raw Image");
            Assert.AreSame(client, paste.view.client, "the view's client is found as the view finds it: on its object or a parent");
            Object.Destroy(world); // the client's OnDisable closes the connection its OnEnable opened
        }

        [Test]
        public void AViewThatLosesItsClientAgainIsWarnedOfAgainAsTheOtherComponentsAre()
        {
            var view = new WorldView();
            var paste = new WorldPaste { view = view, layer = new Texture2D(4, 4, TextureFormat.RGBA32, false) };
            var sandbox = SandboxClient();
            var warnings = Logs.Of(LogType.Warning, () =>
            {
                Click(paste);
                Click(paste);
                view.client = sandbox;
                Click(paste); // the sandbox cannot edit
                view.client = null; // a script cleared it, and no client is on the view's object or a parent
                Click(paste);
                Click(paste);
            });
            var missing = "[WorldBridge] WorldPaste pastes through its View's client, and " + WorldBridgeClient.NeededBy("WorldView");
            Assert.AreEqual(new[] { missing, $"[WorldBridge] {sandbox.Session.BackendLabel} cannot edit frames, so WorldPaste does nothing here", missing },
                            warnings, "Present's rule: once until it has a client again");
        }

        [Test]
        public void ABackendThatCannotEditIsWarnedOfOnceWhateverTheClientsLabelSays()
        {
            var client = SandboxClient();
            var paste = new WorldPaste { view = new WorldView { client = client }, layer = new Texture2D(4, 4, TextureFormat.RGBA32, false) };
            var warnings = Logs.Of(LogType.Warning, () =>
            {
                Click(paste);
                Set(client, "backendInUse", "sandbox game (fake); started without the text prompt: this backend takes none");
                Click(paste);
                Set(client, "backendInUse", "session ended: the backend failed");
                Click(paste);
            });
            Assert.AreEqual(1, warnings.Count, string.Join("\n", warnings));
            StringAssert.Contains("cannot edit frames", warnings[0]);
        }

        [Test]
        public void AViewOnARigNotYetActivatedIsFound()
        {
            var rig = new GameObject("Rig", typeof(RectTransform)); // activated later, e.g. when a menu opens
            var view = rig.AddComponent<WorldView>();
            view.client = new WorldBridgeClient();
            var image = new GameObject("World image", typeof(RectTransform));
            image.transform.SetParent(rig.transform, false);
            var paste = image.AddComponent<WorldPaste>();
            paste.layer = new Texture2D(4, 4, TextureFormat.RGBA32, false);
            rig.SetActive(false);
            ClicksWarnOnce(paste, "set the World View's Raw Image");
            Assert.AreSame(view, paste.view, "the view on the inactive rig was called missing");
        }

        [Test]
        public void EachProblemWarnsOnceAndOneDoesNotSilenceTheNext()
        {
            var paste = new WorldPaste { layer = new Texture2D(4, 4, TextureFormat.RGBA32, false) };
            var warnings = Logs.Of(LogType.Warning, () =>
            {
                Click(paste); // no view
                Click(paste);
                paste.view = new WorldView { client = SandboxClient() };
                Click(paste); // the sandbox cannot edit
                Click(paste);
            });
            Assert.AreEqual(2, warnings.Count, string.Join("\n", warnings));
            StringAssert.Contains("needs a WorldView", warnings[0]);
            StringAssert.Contains("cannot edit frames", warnings[1]);
        }
    }
}
