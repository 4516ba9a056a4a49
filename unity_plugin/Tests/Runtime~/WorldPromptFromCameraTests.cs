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
            var client = world.AddComponent<WorldBridgeClient>();
            var same = world.AddComponent<WorldPromptFromCamera>();
            Call(same, "OnEnable");
            Assert.AreSame(client, same.client, "the client on the prompt's own object");
            var child = new GameObject("Camera rig");
            child.transform.SetParent(world.transform, false);
            var below = child.AddComponent<WorldPromptFromCamera>();
            Assert.AreSame(client, below.GetComponentInParent<WorldBridgeClient>(), "the stub finds parents");
            Assert.AreEqual(-1, below.SendPrompt()); // no camera: reported, not thrown
            Assert.AreSame(client, below.client, "the client on a parent, found when the prompt is sent");
        }

        [Test]
        public void SendWhenConnectedWithNoClientWarnsOnce()
        {
            var prompt = new WorldPromptFromCamera { sendWhenConnected = true };
            Call(prompt, "OnEnable");
            var warnings = Logs.Of(LogType.Warning, () =>
            {
                Call(prompt, "Update");
                Call(prompt, "Update");
            });
            Assert.AreEqual(new[] { "[WorldBridge] " + WorldBridgeClient.NeededBy("WorldPromptFromCamera") }, warnings);
        }
    }
}
