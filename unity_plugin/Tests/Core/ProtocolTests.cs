using System;
using System.Collections.Generic;
using NUnit.Framework;
using WorldBridge.Core;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class ProtocolTests
    {
        List<Dictionary<string, object>> vectors;

        [SetUp]
        public void LoadVectors() => vectors = GoldenVectors.Load("msgpack.json");

        void AssertBytes(string vector, MsgMap built)
        {
            var v = GoldenVectors.ByName(vectors, vector);
            Assert.AreEqual((string)v["hex"], GoldenVectors.ToHex(MsgPack.Encode(built)), $"{vector}: the builder's bytes differ from the golden vector");
        }

        MsgMap Message(string vector) => (MsgMap)GoldenVectors.Untag(GoldenVectors.ByName(vectors, vector)["value"]);

        [Test]
        public void ClientMessagesMatchTheGoldenVectorsByteForByte()
        {
            AssertBytes("msg_hello", Protocol.Hello("unity/0.1.0", new[] { "raw", "png" }));
            var start = Message("msg_start");
            AssertBytes("msg_start", Protocol.Start(1, new StartOptions
            {
                Backend = null, Mode = "realtime", Fps = 24, Seed = 7, Text = "a cave with lava", Image = start.GetBytes("image"),
                ActionMap = new Dictionary<string, int> { { "jump", 3 } },
            }));
            AssertBytes("msg_start_resume", Protocol.Resume(2, "s-4f2a9c"));
            AssertBytes("msg_input_id", Protocol.Input(2, 1234.5, 17));
            AssertBytes("msg_input_name", Protocol.Input("jump", 1301.25, 18));
            AssertBytes("msg_event", Protocol.Event(3, "weather_snow", null));
            AssertBytes("msg_event_text", Protocol.Event(4, null, "make it snow"));
            AssertBytes("msg_reset", Protocol.Reset(5, seed: 8, text: "a forest"));
            AssertBytes("msg_branch", Protocol.Branch(6, 30));
            AssertBytes("msg_settings", Protocol.Settings(7, steps: 8, temperature: 0.9, cfg: 1.5, fps: 30, mode: "step"));
            AssertBytes("msg_record_start", Protocol.RecordStart(8, "recordings/demo.wbrec"));
            AssertBytes("msg_record_stop", Protocol.RecordStop(9));
            AssertBytes("msg_status_request", Protocol.Status(10));
            AssertBytes("msg_ping", Protocol.Ping(11, 5000.5));
            AssertBytes("msg_bye", Protocol.Bye());
        }

        [Test]
        public void HostMessagesParseIntoTypedViews()
        {
            var w = WelcomeInfo.From(Message("msg_welcome"));
            Assert.AreEqual(1, w.ProtocolMajor);
            Assert.AreEqual(16777216, w.MaxMessageBytes);
            Assert.IsTrue(w.Can("branch"));
            CollectionAssert.AreEqual(new[] { "sandbox", "world_model" }, w.Backends);

            var s = SessionInfo.From(Message("msg_session"));
            Assert.AreEqual("s-4f2a9c", s.SessionId);
            Assert.IsTrue(s.IsSandbox);
            StringAssert.Contains("SANDBOX", s.BackendLabel);
            StringAssert.Contains("not the world model", s.BackendLabel);
            Assert.AreEqual(3, s.ActionId("jump"));
            Assert.AreEqual(-1, s.ActionId("fly"));
            Assert.AreEqual(64, s.Width);
            CollectionAssert.AreEqual(new[] { "weather_snow", "spawn_enemy" }, s.EventTypes);

            var f0 = Message("msg_frame_0");
            Assert.IsNull(f0["client_ts"]);
            var e = Assert.Throws<FormatException>(() => WorldFrame.From(f0, new byte[64 * 64 * 3]));
            StringAssert.Contains("png", e.Message);
            var frame = WorldFrame.From(Message("msg_frame"), new byte[64 * 64 * 3]);
            Assert.AreEqual(42, frame.Index);
            Assert.AreEqual(2, frame.Action);
            Assert.AreEqual(3.75, frame.TotalMs);
            StringAssert.Contains("64x64x3", Assert.Throws<FormatException>(() => WorldFrame.From(Message("msg_frame"), new byte[10])).Message);
        }

        [Test]
        public void BadRequestsAreRefusedBeforeSending()
        {
            Assert.Throws<ArgumentException>(() => Protocol.Event(1, null, ""));
            Assert.Throws<ArgumentException>(() => Protocol.Branch(1, -1));
            StringAssert.Contains("realtime", Assert.Throws<ArgumentException>(() => Protocol.Settings(1, mode: "fast")).Message);
            Assert.Throws<ArgumentException>(() => Protocol.Input(1.5, 0, 1));
        }
    }
}
