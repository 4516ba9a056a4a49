// The Basic World sample's HUD, run under mono against Tests/CompileOnly~ (its parts set directly, as Start would).
using System.Collections.Generic;
using NUnit.Framework;
using UnityEngine;
using UnityEngine.UI;
using Text = UnityEngine.UI.Text; // not NUnit.Framework.Text
using WorldBridge;
using WorldBridge.Core;
using WorldBridge.Samples;
using static WorldBridge.Tests.Private;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class WorldBridgeSampleTests
    {
        /// <summary>A sample whose client holds a session of `kind` with `latents` latent actions (no host: nothing is sent).</summary>
        static WorldBridgeSample SampleIn(string kind, long latents, params object[] actionNames)
        {
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            Set(connection, "state", ConnectionState.Ready);
            Set(connection, "session", SessionInfo.From(new MsgMap
            {
                { "type", "session" }, { "session_id", "s1" }, { "backend_kind", kind }, { "backend_name", "fake" },
                { "width", 64L }, { "height", 64L }, { "num_latent_actions", latents }, { "action_names", new List<object>(actionNames) },
            }));
            var client = new WorldBridgeClient { startOnConnect = false, fixedSeed = true, seed = 7 }; // as Start sets it
            Use(client, connection);
            var sample = new WorldBridgeSample();
            Set(sample, "client", client);
            Set(sample, "paste", new WorldPaste { view = new WorldView { client = client, rawImage = new RawImage() } });
            Set(sample, "statusText", new Text());
            Set(sample, "worldFitter", new AspectRatioFitter());
            Call(sample, "OnSession");
            return sample;
        }

        static string Status(WorldBridgeSample sample) => ((Text)Get(sample, "statusText")).text;

        static WorldBridgeClient ClientOf(WorldBridgeSample sample) => (WorldBridgeClient)Get(sample, "client");

        [Test]
        public void EachNewWorldPressStartsAWorldOfAFreshSeed()
        {
            var sample = SampleIn("sandbox", 0, "noop", "left", "right");
            Call(sample, "NewWorld");
            Call(sample, "NewWorld");
            var seeds = new List<long>();
            foreach (var item in (System.Collections.IEnumerable)Get(ClientOf(sample).Connection, "outbox"))
            {
                var header = MsgPack.DecodeHeader((byte[])item.GetType().GetField("Bytes").GetValue(item));
                if (header.GetString("type") == "reset") seeds.Add(header.GetLong("seed"));
            }
            Assert.AreEqual(2, seeds.Count, "each press sends one reset");
            CollectionAssert.AllItemsAreUnique(new List<long>(seeds) { 7 }, "New world restarted a world of a seed already played: " + string.Join(", ", seeds));
            ClientOf(sample).Connection.Close();
        }

        [Test]
        public void AClickOnTheSandboxSaysItCannotEditFramesNotThatTheLayerIsMissing()
        {
            var sample = SampleIn("sandbox", 0, "noop", "left", "right");
            var paste = (WorldPaste)Get(sample, "paste");
            Assert.IsNotNull(paste.layer, "the sample gave World Paste no crate on the sandbox");
            var warnings = Logs.Of(LogType.Warning, () => paste.PasteAt(Vector2.zero, null));
            Assert.AreEqual(1, warnings.Count, string.Join("\n", warnings));
            StringAssert.Contains("cannot edit frames", warnings[0]);
            StringAssert.Contains("(this backend cannot paste objects)", Status(sample));
            ClientOf(sample).Connection.Close();
        }

        [Test]
        public void TheStatusLineNamesTheKeysThatPlayTheWorldModelsLatentActions()
        {
            foreach (var one in new[] { (4L, "keys 1–4 play the latent actions"), (16L, "keys 1–8 play 8 of the 16 latent actions"),
                                        (1L, "key 1 plays the latent action"), (0L, "no key plays this world's actions") })
            {
                var (latents, said) = one;
                var sample = SampleIn("world_model", latents);
                StringAssert.StartsWith(said, Status(sample), $"{latents} latent actions");
                ClientOf(sample).Connection.Close();
            }
            var sandbox = SampleIn("sandbox", 0, "noop", "left", "right");
            StringAssert.StartsWith("arrows/WASD/gamepad to play", Status(sandbox));
            ClientOf(sandbox).Connection.Close();
        }
    }
}
