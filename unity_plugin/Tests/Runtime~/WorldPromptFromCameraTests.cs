// WorldPromptFromCamera's misconfiguration errors, run under mono against Tests/CompileOnly~ (nothing is rendered).
using NUnit.Framework;
using UnityEngine;
using WorldBridge;
using static WorldBridge.Tests.Private;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class WorldPromptFromCameraTests
    {
        [Test]
        public void SendPromptWithNoCameraReportsItAndReturnsMinusOne()
        {
            var prompt = new WorldPromptFromCamera { client = new WorldBridgeClient() };
            long id = 0;
            var errors = Logs.Of(LogType.Error, () => id = prompt.SendPrompt());
            Assert.AreEqual(-1, id);
            Assert.AreEqual(1, errors.Count, string.Join("\n", errors));
            StringAssert.Contains("needs a Source Camera: drag one into its field", errors[0]);
        }

        [Test]
        public void SendPromptWithNoClientSaysHowToGiveItOne()
        {
            var prompt = new WorldPromptFromCamera();
            long id = 0;
            var errors = Logs.Of(LogType.Error, () => id = prompt.SendPrompt());
            Assert.AreEqual(-1, id);
            Assert.AreEqual(new[] { "[WorldBridge] " + WorldBridgeClient.NeededBy("WorldPromptFromCamera") }, errors);
        }

        [Test]
        public void TheClientOnItsObjectOrAParentIsFoundAsTheOtherComponentsFindIt()
        {
            var world = new GameObject("World");
            var client = AddClient(world);
            var same = world.AddComponent<WorldPromptFromCamera>();
            Assert.AreSame(client, same.client, "the client on the prompt's own object");
            var child = new GameObject("Camera rig");
            child.transform.SetParent(world.transform, false);
            var below = child.AddComponent<WorldPromptFromCamera>();
            Assert.AreEqual(-1, below.SendPrompt()); // no camera: reported, not thrown
            Assert.AreSame(client, below.client, "the client on a parent, found when the prompt is sent");
            Object.Destroy(world); // the client's OnDisable closes the connection its OnEnable opened
        }

        [Test]
        public void AClientOnARigNotYetActivatedIsFound()
        {
            var rig = new GameObject("Rig"); // activated later, e.g. when a level loads
            var client = AddClient(rig);
            var child = new GameObject("Camera rig");
            child.transform.SetParent(rig.transform, false);
            var prompt = child.AddComponent<WorldPromptFromCamera>();
            rig.SetActive(false);
            var errors = Logs.Of(LogType.Error, () => prompt.SendPrompt());
            Assert.AreSame(client, prompt.client, "the client on the inactive rig was called missing");
            CollectionAssert.AreEqual(new[] { "[WorldBridge] WorldPromptFromCamera needs a Source Camera: drag one into its field" }, errors);
        }

        [Test]
        public void SendWhenConnectedWithNoClientWarnsOnceUntilItHasOne()
        {
            var prompt = new WorldPromptFromCamera { sendWhenConnected = true };
            Call(prompt, "OnEnable");
            var warnings = Logs.Of(LogType.Warning, () =>
            {
                Call(prompt, "Update");
                Call(prompt, "OnDisable"); // as WorldInput is turned off while a text field has focus: no warning each time
                Call(prompt, "OnEnable");
                Call(prompt, "Update");
            });
            Assert.AreEqual(new[] { "[WorldBridge] " + WorldBridgeClient.NeededBy("WorldPromptFromCamera") }, warnings,
                            "re-enabled, it warned again: WorldView and WorldInput warn once until they have a client");
            prompt.client = new WorldBridgeClient();
            Call(prompt, "Update");
            prompt.client = null; // a client it had and lost is news: said again
            Assert.AreEqual(1, Logs.Of(LogType.Warning, () => Call(prompt, "Update")).Count);
        }
    }
}
