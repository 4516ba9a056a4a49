using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using NUnit.Framework;
using WorldBridge.Core;

namespace WorldBridge.Tests
{
    /// <summary>A stream that replays what a peer sent and records what we write.</summary>
    public sealed class ScriptedStream : Stream
    {
        readonly MemoryStream input;
        public readonly MemoryStream Output = new MemoryStream();

        public ScriptedStream(params byte[][] fromPeer)
        {
            input = new MemoryStream();
            foreach (var b in fromPeer) input.Write(b, 0, b.Length);
            input.Position = 0;
        }

        public string WrittenHex => GoldenVectors.ToHex(Output.ToArray());
        public override int Read(byte[] buffer, int offset, int count) => input.Read(buffer, offset, Math.Min(count, 7)); // short reads on purpose
        public override void Write(byte[] buffer, int offset, int count) => Output.Write(buffer, offset, count);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    [TestFixture]
    public class ZmtpTests
    {
        List<Dictionary<string, object>> vectors;

        [SetUp]
        public void LoadVectors() => vectors = GoldenVectors.Load("zmtp.json");

        byte[] V(string name) => GoldenVectors.Hex((string)GoldenVectors.ByName(vectors, name)["hex"]);
        string VHex(string name) => (string)GoldenVectors.ByName(vectors, name)["hex"];

        static readonly string[] Covered =
        {
            "greeting_client", "greeting_libzmq", "ready_dealer", "ready_dealer_identity_x", "ready_router_libzmq",
            "frame_short_hello", "frame_empty", "frame_short_255", "frame_long_256", "frame_long_small",
            "multipart_frame_raw_64x64", "multipart_more_long", "ping_libzmq", "pong_libzmq", "ping_ttl_context", "pong_ttl_context",
        };

        [Test]
        public void EveryZmtpVectorIsCoveredByATest()
        {
            var unknown = vectors.Select(v => (string)v["name"]).Where(n => !Covered.Contains(n)).ToList();
            Assert.IsEmpty(unknown, "new zmtp.json vectors need a test in ZmtpTests: " + string.Join(", ", unknown));
        }

        [Test]
        public void GreetingMatchesAndLibzmqGreetingIsAccepted()
        {
            Assert.AreEqual(VHex("greeting_client"), GoldenVectors.ToHex(ZmtpDealer.Greeting()));
            ZmtpDealer.CheckGreeting(V("greeting_libzmq"));
            ZmtpDealer.CheckGreeting(V("greeting_client"));
        }

        [Test]
        public void BadGreetingsAreRefusedWithTheReason()
        {
            var notZmq = V("greeting_libzmq"); notZmq[0] = 0x48;
            StringAssert.Contains("ZMTP greeting", Assert.Throws<ZmtpException>(() => ZmtpDealer.CheckGreeting(notZmq)).Message);
            var old = V("greeting_libzmq"); old[10] = 2;
            StringAssert.Contains("ZMTP 2", Assert.Throws<ZmtpException>(() => ZmtpDealer.CheckGreeting(old)).Message);
            var curve = V("greeting_libzmq");
            System.Text.Encoding.ASCII.GetBytes("CURVE", 0, 5, curve, 12);
            StringAssert.Contains("CURVE", Assert.Throws<ZmtpException>(() => ZmtpDealer.CheckGreeting(curve)).Message);
        }

        [Test]
        public void HandshakeWithLibzmqRouterParsesItsEmptyIdentity()
        {
            var peer = new ScriptedStream(V("greeting_libzmq"), V("ready_router_libzmq"));
            var dealer = new ZmtpDealer(peer);
            dealer.Handshake();
            Assert.AreEqual(VHex("greeting_client") + VHex("ready_dealer"), peer.WrittenHex);
            Assert.AreEqual("ROUTER", System.Text.Encoding.ASCII.GetString(dealer.PeerProperties["Socket-Type"]));
            Assert.AreEqual(0, dealer.PeerProperties["Identity"].Length);
        }

        [Test]
        public void ReadyWithIdentityAndApplicationProperty()
        {
            var peer = new ScriptedStream(V("greeting_libzmq"), V("ready_router_libzmq"));
            new ZmtpDealer(peer).Handshake(new Dictionary<string, string> { { "Identity", "abc" }, { "X-Client", "unity/0.1.0" } });
            Assert.AreEqual(VHex("greeting_client") + VHex("ready_dealer_identity_x"), peer.WrittenHex);
        }

        [Test]
        public void HandshakeRefusesAPeerThatIsNotARouter()
        {
            var pub = ZmtpDealer.EncodeCommand("READY", ZmtpDealer.EncodeProperties(new[] {
                new KeyValuePair<string, byte[]>("Socket-Type", System.Text.Encoding.ASCII.GetBytes("PUB")) }));
            var e = Assert.Throws<ZmtpException>(() => new ZmtpDealer(new ScriptedStream(V("greeting_libzmq"), pub)).Handshake());
            StringAssert.Contains("PUB", e.Message);
        }

        [Test]
        public void HelloHeaderIsOneShortFrame()
        {
            var peer = new ScriptedStream();
            new ZmtpDealer(peer).Send(MsgPack.Encode(Protocol.Hello("unity/0.1.0", new[] { "raw", "png" })));
            Assert.AreEqual(VHex("frame_short_hello"), peer.WrittenHex);
        }

        [TestCase("frame_empty", 0, 0x00)]
        [TestCase("frame_short_255", 255, 0xab)]
        [TestCase("frame_long_256", 256, 0xcd)]
        public void FramesAtTheShortLongBoundaryBothWays(string name, int size, int fill)
        {
            var body = Enumerable.Repeat((byte)fill, size).ToArray();
            var peer = new ScriptedStream(V(name));
            var dealer = new ZmtpDealer(peer);
            dealer.Send(body);
            Assert.AreEqual(VHex(name), peer.WrittenHex);
            var parts = dealer.Receive();
            Assert.AreEqual(1, parts.Count);
            CollectionAssert.AreEqual(body, parts[0]);
        }

        [Test]
        public void LongFrameWithASmallBodyIsAccepted()
        {
            var parts = new ZmtpDealer(new ScriptedStream(V("frame_long_small"))).Receive();
            Assert.AreEqual("abc", System.Text.Encoding.ASCII.GetString(parts.Single()));
        }

        [Test]
        public void MultipartFrameMessageBecomesAWorldFrame()
        {
            var parts = new ZmtpDealer(new ScriptedStream(V("multipart_frame_raw_64x64"))).Receive();
            Assert.AreEqual(2, parts.Count);
            var frame = WorldFrame.From(MsgPack.DecodeHeader(parts[0]), parts[1]);
            Assert.AreEqual(42, frame.Index);
            Assert.AreEqual(1, frame.Epoch);
            Assert.AreEqual(64, frame.Width);
            Assert.AreEqual(17L, frame.Seq);
            Assert.AreEqual(1234.5, frame.ClientTs);
            Assert.AreEqual(3.5, frame.ModelMs);
            Assert.AreEqual(64 * 64 * 3, frame.Pixels.Length);
            for (int i = 0; i < frame.Pixels.Length; i++)
                if (frame.Pixels[i] != (byte)(i % 256)) Assert.Fail($"pixel byte {i} is {frame.Pixels[i]}, expected {i % 256}");
        }

        [Test]
        public void MoreAndLongFlagsTogether()
        {
            var parts = new ZmtpDealer(new ScriptedStream(V("multipart_more_long"))).Receive();
            Assert.AreEqual(2, parts.Count);
            Assert.AreEqual(300, parts[0].Length);
            Assert.IsTrue(parts[0].All(b => b == 1));
            CollectionAssert.AreEqual(new byte[] { 2 }, parts[1]);
        }

        [TestCase("ping_libzmq", "pong_libzmq")]
        [TestCase("ping_ttl_context", "pong_ttl_context")]
        public void PingIsAnsweredWithPongCarryingItsContext(string ping, string pong)
        {
            var peer = new ScriptedStream(V(ping), V("frame_short_255"));
            var parts = new ZmtpDealer(peer).Receive();
            Assert.AreEqual(255, parts.Single().Length, "the message after the PING is still delivered");
            Assert.AreEqual(VHex(pong), peer.WrittenHex);
        }

        [Test]
        public void OversizedMessagesAreRefusedBeforeAllocation()
        {
            var one = new ZmtpDealer(new ScriptedStream(V("frame_long_256"))) { MaxMessageBytes = 255 };
            StringAssert.Contains("MaxMessageBytes", Assert.Throws<ZmtpException>(() => one.Receive()).Message);
            var multi = new ZmtpDealer(new ScriptedStream(V("multipart_more_long"))) { MaxMessageBytes = 300 };
            Assert.Throws<ZmtpException>(() => multi.Receive(), "the limit counts all parts of a message");
            var huge = GoldenVectors.Hex("027fffffffffffffff");
            Assert.Throws<ZmtpException>(() => new ZmtpDealer(new ScriptedStream(huge)).Receive());
        }

        [Test]
        public void ClosedOrGarbledStreamsFailClearly()
        {
            var cut = V("frame_long_256").Take(100).ToArray();
            StringAssert.Contains("closed", Assert.Throws<ZmtpException>(() => new ZmtpDealer(new ScriptedStream(cut)).Receive()).Message);
            Assert.Throws<ZmtpException>(() => new ZmtpDealer(new ScriptedStream(new byte[] { 0x80, 0 })).Receive());
            var error = ZmtpDealer.EncodeCommand("ERROR", new byte[] { 4, (byte)'g', (byte)'o', (byte)'n', (byte)'e' });
            StringAssert.Contains("gone", Assert.Throws<ZmtpException>(() => new ZmtpDealer(new ScriptedStream(error)).Receive()).Message);
        }

        [Test]
        public void EndpointsAreParsedOrExplained()
        {
            Assert.AreEqual(("127.0.0.1", 5555), ZmtpDealer.ParseEndpoint("tcp://127.0.0.1:5555"));
            Assert.AreEqual(("::1", 7000), ZmtpDealer.ParseEndpoint("tcp://[::1]:7000"));
            StringAssert.Contains("tcp://", Assert.Throws<ArgumentException>(() => ZmtpDealer.ParseEndpoint("127.0.0.1:5555")).Message);
            Assert.Throws<ArgumentException>(() => ZmtpDealer.ParseEndpoint("tcp://localhost"));
            Assert.Throws<ArgumentException>(() => ZmtpDealer.ParseEndpoint("tcp://localhost:99999"));
        }
    }
}
