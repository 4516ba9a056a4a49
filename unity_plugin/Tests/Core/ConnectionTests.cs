using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Threading;
using NUnit.Framework;
using WorldBridge.Core;

namespace WorldBridge.Tests
{
    /// <summary>A scripted host on loopback that speaks ZMTP like libzmq's ROUTER, driven step by step by a test.</summary>
    public sealed class FakeHost : IDisposable
    {
        readonly TcpListener listener = new TcpListener(IPAddress.Loopback, 0);
        TcpClient tcp;
        ZmtpDealer framer;
        long? startReqId;   // the last start's req_id: `session` echoes it, as the host does

        /// <summary>`receiveBuffer` > 0: a small socket buffer, so a client that sends more than the host reads blocks soon.</summary>
        public FakeHost(int receiveBuffer = 0)
        {
            if (receiveBuffer > 0) listener.Server.ReceiveBufferSize = receiveBuffer;
            listener.Start();
        }
        public string Endpoint => $"tcp://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";

        /// <summary>Accepts the next connection, exchanges greeting + READY and returns the client's hello.</summary>
        public MsgMap Accept()
        {
            var accepting = listener.AcceptTcpClientAsync();
            Assert.IsTrue(accepting.Wait(5000), "the client did not connect");
            tcp = accepting.Result;
            tcp.ReceiveTimeout = 5000;
            var stream = tcp.GetStream();
            var greeting = new byte[64];
            for (int n = 0; n < 64;) n += stream.Read(greeting, n, 64 - n);
            ZmtpDealer.CheckGreeting(greeting);
            var ours = ZmtpDealer.Greeting(); ours[8] = 1; ours[11] = 1; // as libzmq 4.3.5 sends it
            stream.Write(ours, 0, 64);
            var ready = ZmtpDealer.EncodeCommand("READY", ZmtpDealer.EncodeProperties(new[] {
                new KeyValuePair<string, byte[]>("Socket-Type", System.Text.Encoding.ASCII.GetBytes("ROUTER")),
                new KeyValuePair<string, byte[]>("Identity", new byte[0]) }));
            stream.Write(ready, 0, ready.Length);
            framer = new ZmtpDealer(stream); // the client's READY command is skipped by Receive
            return Expect("hello");
        }

        /// <summary>Accepts the next connection and answers its greeting with one asking for `mechanism` (e.g. CURVE).</summary>
        public void AcceptWithMechanism(string mechanism)
        {
            var accepting = listener.AcceptTcpClientAsync();
            Assert.IsTrue(accepting.Wait(5000), "the client did not connect");
            tcp = accepting.Result;
            var stream = tcp.GetStream();
            var ours = ZmtpDealer.Greeting();
            Array.Clear(ours, 12, 20);
            System.Text.Encoding.ASCII.GetBytes(mechanism).CopyTo(ours, 12);
            stream.Write(ours, 0, 64);
        }

        public MsgMap Expect(string type)
        {
            var m = Next();
            Assert.AreEqual(type, m.GetString("type"), "the host expected another message");
            return m;
        }

        MsgMap Next()
        {
            var m = MsgPack.DecodeHeader(framer.Receive()[0]);
            if (m.GetString("type") == "start") startReqId = m.Has("req_id") ? m.GetLong("req_id") : (long?)null;
            return m;
        }

        /// <summary>Every message the client sends until it is quiet for `quietMs`; `answer` may reply to each at once.</summary>
        public List<MsgMap> Drain(int quietMs, Func<MsgMap, MsgMap> answer = null)
        {
            var seen = new List<MsgMap>();
            tcp.ReceiveTimeout = quietMs;
            try
            {
                while (true)
                {
                    var m = Next();
                    seen.Add(m);
                    var reply = answer?.Invoke(m);
                    if (reply != null) Send(reply);
                }
            }
            catch (IOException) { }
            finally { tcp.ReceiveTimeout = 5000; }
            return seen;
        }

        public void Send(MsgMap header, byte[] payload = null)
        {
            if (payload == null) framer.Send(MsgPack.Encode(header));
            else framer.Send(MsgPack.Encode(header), payload);
        }

        public void Welcome(long maxMessageBytes = 16 << 20, int minor = 0, double idleTimeoutS = 60.0) => Send(new MsgMap
        {
            { "type", "welcome" }, { "protocol_major", 1 }, { "protocol_minor", minor }, { "host", "fake/1" }, { "codec", "raw" },
            { "capabilities", minor >= 1 ? new List<object> { "step", "events", "branch", "text_events", "edit" } : new List<object> { "step", "events", "branch" } },
            { "backends", new List<object> { "sandbox" } },
            { "default_backend", "sandbox" }, { "limits", new MsgMap { { "max_message_bytes", maxMessageBytes }, { "max_sessions", 4 }, { "idle_timeout_s", idleTimeoutS } } },
        });

        /// <summary>A 1.0 session, or with `capabilities` (1.1) when given.</summary>
        public void Session(string id, bool resumed = false, params object[] capabilities)
        {
            var m = new MsgMap
            {
                { "type", "session" }, { "req_id", startReqId }, { "session_id", id }, { "backend_kind", "sandbox" }, { "backend_name", "fake sandbox" },
                { "mode", "step" }, { "fps", 24.0 }, { "width", 2 }, { "height", 1 }, { "action_names", new List<object> { "noop", "right" } },
                { "num_latent_actions", 2 }, { "event_types", new List<object> { "weather_snow" } }, { "settings", new MsgMap() },
                { "frame_index", 0 }, { "epoch", 0 }, { "resumed", resumed },
            };
            if (capabilities.Length > 0) m["capabilities"] = new List<object>(capabilities);
            Send(m);
        }

        public void Frame(string session, long index, long epoch, params object[] events) => Send(new MsgMap
        {
            { "type", "frame" }, { "session_id", session }, { "index", index }, { "epoch", epoch }, { "action", -1 },
            { "client_ts", null }, { "seq", null }, { "host_ts", 1.0 }, { "timings", new MsgMap() }, { "events", new List<object>(events) },
            { "codec", "raw" }, { "width", 2 }, { "height", 1 },
        }, new byte[] { (byte)index, 0, 0, (byte)epoch, 0, 0 });

        /// <summary>A frame echoing the input in force (`client_ts`, `seq`), as the host sends every frame.</summary>
        public void FrameEcho(string session, long index, double clientTs, long seq) => Send(new MsgMap
        {
            { "type", "frame" }, { "session_id", session }, { "index", index }, { "epoch", 0 }, { "action", 1 },
            { "client_ts", clientTs }, { "seq", seq }, { "host_ts", 1.0 }, { "timings", new MsgMap() }, { "events", new List<object>() },
            { "codec", "raw" }, { "width", 2 }, { "height", 1 },
        }, new byte[6]);

        /// <summary>A ZMTP PING command, as a --heartbeat host sends them (the client answers PONG).</summary>
        public void Ping()
        {
            var ping = ZmtpDealer.EncodeCommand("PING", new byte[] { 0, 0 });
            tcp.GetStream().Write(ping, 0, ping.Length);
        }

        /// <summary>True when a client connects (again) within `ms`.</summary>
        public bool Pending(int ms)
        {
            var deadline = DateTime.UtcNow.AddMilliseconds(ms);
            while (DateTime.UtcNow < deadline) { if (listener.Pending()) return true; Thread.Sleep(5); }
            return listener.Pending();
        }

        public void Drop() { tcp?.Close(); tcp = null; }

        public void Dispose() { Drop(); listener.Stop(); }
    }

    [TestFixture]
    public class ConnectionTests
    {
        static ConnectionOptions Options(FakeHost host) => new ConnectionOptions
        {
            Endpoint = host.Endpoint, Client = "nunit/1", ConnectTimeoutMs = 2000, ReconnectInitialMs = 20, ReconnectMaxMs = 100,
        };

        static MsgMap NextMessage(WorldBridgeConnection c, string type)
        {
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (DateTime.UtcNow < deadline)
                if (c.TryReceiveMessage(out var m, 100) && m.GetString("type") == type) return m;
            Assert.Fail($"no '{type}' message arrived (last error: {c.LastError})");
            return null;
        }

        static void Until(Func<bool> condition, string what)
        {
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (!condition()) { Assert.Less(DateTime.UtcNow, deadline, "timed out waiting for " + what); Thread.Sleep(2); }
        }

        [Test]
        public void KeepsOnlyTheNewestFrameAndDropsStaleEpochsAndSessions()
        {
            using (var host = new FakeHost())
            using (var c = new WorldBridgeConnection(Options(host)))
            {
                c.Connect();
                var hello = host.Accept();
                Assert.AreEqual(1, hello.GetLong("protocol_major"));
                Assert.AreEqual(3, hello.GetLong("protocol_minor"), "this plugin speaks protocol 1.3");
                Assert.AreEqual("nunit/1", hello.GetString("client"));
                CollectionAssert.AreEqual(new[] { "raw" }, hello.GetStrings("codecs"));
                host.Welcome();
                Assert.IsTrue(c.WaitReady(5000), c.LastError);
                Assert.AreEqual("fake/1", c.Welcome.Host);

                var reqId = c.Start(new StartOptions { Mode = "step", Seed = 3 });
                var start = host.Expect("start");
                Assert.AreEqual(reqId, start.GetLong("req_id"));
                Assert.AreEqual("step", start.GetString("mode"));
                Assert.AreEqual(3, start.GetLong("seed"));
                host.Session("s1");
                host.Frame("s1", 0, 0);
                host.Frame("s1", 1, 0, "it starts to rain");
                host.Frame("s1", 2, 0);
                Until(() => c.FramesReceived == 3, "three frames");
                Assert.IsTrue(c.TryTakeFrame(out var newest));
                Assert.AreEqual(2, newest.Index);
                Assert.AreEqual(2, c.FramesDropped);
                CollectionAssert.AreEqual(new[] { "it starts to rain" }, newest.Events, "captions of replaced frames are kept");
                Assert.IsFalse(c.TryTakeFrame(out _), "a frame is taken once");
                Assert.AreEqual("s1", NextMessage(c, "session").GetString("session_id"));
                Assert.AreEqual("step", c.Mode);

                host.Frame("s1", 0, 1);      // after a reset: epoch 1
                host.Frame("s1", 3, 0);      // late frame of epoch 0: dropped
                host.Frame("other", 9, 7);   // another session's frame: dropped
                host.Send(new MsgMap { { "type", "pong" }, { "req_id", 1 } });
                NextMessage(c, "pong");
                Assert.IsTrue(c.TryTakeFrame(out var current));
                Assert.AreEqual((0L, 1L), (current.Index, current.Epoch));
                CollectionAssert.AreEqual(new byte[] { 0, 0, 0, 1, 0, 0 }, current.Pixels);
                Assert.IsFalse(c.TryTakeFrame(out _));

                c.Input("right");
                var input = host.Expect("input");
                Assert.AreEqual("right", input.GetString("action"));
                Assert.AreEqual(1, input.GetLong("seq"));
                c.Event("weather_snow");
                Assert.AreEqual("weather_snow", host.Expect("event").GetString("event_type"));
                c.Branch(0);
                Assert.AreEqual(0, host.Expect("branch").GetLong("frame"));

                c.Close();
                host.Expect("bye");
                Assert.AreEqual(ConnectionState.Closed, c.State);
                Assert.Throws<InvalidOperationException>(() => c.Input(0));
            }
        }

        /// <summary>A 2x1 RGBA PNG (the fake host's frames are 2x1); only its IHDR matters to the client.</summary>
        static readonly byte[] Layer2x1 =
        {
            0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, (byte)'I', (byte)'H', (byte)'D', (byte)'R',
            0, 0, 0, 2, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0, 0, 0, 0,
        };

        /// <summary>A connection the host has accepted and welcomed (it has not waited for the welcome to arrive).</summary>
        static WorldBridgeConnection Welcomed(FakeHost host, long maxMessageBytes = 16 << 20)
        {
            var c = new WorldBridgeConnection(Options(host));
            c.Connect();
            host.Accept();
            host.Welcome(maxMessageBytes: maxMessageBytes);
            return c;
        }

        /// <summary>A connection holding session s1, started with `options`.</summary>
        static WorldBridgeConnection Started(FakeHost host, StartOptions options, long maxMessageBytes = 16 << 20)
        {
            var c = Welcomed(host, maxMessageBytes);
            c.Start(options);
            host.Expect("start");
            host.Session("s1");
            NextMessage(c, "session");
            return c;
        }

        /// <summary>The host goes away until `c` notices (the host accepts again with its next Accept).</summary>
        static void DropNoticed(FakeHost host, WorldBridgeConnection c)
        {
            host.Drop();
            Until(() => !c.IsReady, "the client to notice the drop");
        }

        /// <summary>The host goes away until `c` notices, then comes back: it accepts `c` again and welcomes it.</summary>
        static void Restart(FakeHost host, WorldBridgeConnection c)
        {
            DropNoticed(host, c);
            host.Accept();
            host.Welcome();
        }

        /// <summary>A connection whose session s1, started with `options`, was live when the host went away, and that has
        /// noticed the drop (the host accepts again with its next Accept).</summary>
        static WorldBridgeConnection Dropped(FakeHost host, StartOptions options, long maxMessageBytes = 16 << 20)
        {
            var c = Started(host, options, maxMessageBytes);
            DropNoticed(host, c);
            return c;
        }

        /// <summary>The start that resumes session `id`, as the reconnected client sends it first.</summary>
        static MsgMap ExpectResume(FakeHost host, string id)
        {
            var resume = host.Expect("start");
            Assert.AreEqual(id, resume.GetString("resume"));
            return resume;
        }

        /// <summary>What a host that no longer has the session answers the start that resumes it.</summary>
        static MsgMap UnknownSession(MsgMap resume, string message = "gone") => new MsgMap
        {
            { "type", "error" }, { "req_id", resume.GetLong("req_id") }, { "code", "unknown_session" }, { "message", message }, { "fatal", false },
        };

        static WorldBridgeConnection InSession(FakeHost host, params object[] capabilities)
        {
            var c = new WorldBridgeConnection(Options(host));
            c.Connect();
            host.Accept();
            host.Welcome(minor: 1);
            Assert.IsTrue(c.WaitReady(5000), c.LastError);
            c.Start(new StartOptions { Mode = "step" });
            host.Expect("start");
            host.Session("s1", false, capabilities);
            host.Frame("s1", 0, 0);
            Assert.AreEqual("s1", NextMessage(c, "session").GetString("session_id"));
            Assert.IsTrue(c.WaitFrame(5000, out _));
            return c;
        }

        [Test]
        public void EditIsAnsweredWithTheNewEpochAndTheEditedFrameFollows()
        {
            using (var host = new FakeHost())
            using (var c = InSession(host, "events", "edit"))
            {
                Assert.IsTrue(c.Session.Capabilities.CanEdit);
                Assert.IsFalse(c.Session.Capabilities.CanTextEvents);
                c.Input(1);
                host.Expect("input");
                host.Frame("s1", 1, 0);
                var id = c.Edit(Layer2x1, -1, 0);
                var edit = host.Expect("edit");
                Assert.AreEqual(id, edit.GetLong("req_id"));
                CollectionAssert.AreEqual(Layer2x1, edit.GetBytes("layer"));
                Assert.AreEqual((-1L, 0L), (edit.GetLong("x"), edit.GetLong("y")));
                host.Send(new MsgMap { { "type", "ok" }, { "req_id", id }, { "request", "edit" }, { "epoch", 1 }, { "frame_index", 1 } });
                host.Frame("s1", 1, 1, "edit");
                host.Frame("s1", 1, 0);                         // a late frame of the old epoch is dropped
                var ok = c.WaitReply(id, 5000);
                Assert.AreEqual(("edit", 1L, 1L), (ok.GetString("request"), ok.GetLong("epoch"), ok.GetLong("frame_index")));
                Until(() => c.FramesReceived == 3, "the edited frame");
                host.Send(new MsgMap { { "type", "pong" }, { "req_id", 99 } }); // everything sent before it has been read
                NextMessage(c, "pong");
                Assert.IsTrue(c.TryTakeFrame(out var edited));
                Assert.AreEqual((1L, 1L), (edited.Index, edited.Epoch));
                CollectionAssert.AreEqual(new[] { "edit" }, edited.Events);
                Assert.IsFalse(c.TryTakeFrame(out _));

                // the host's rules are checked before anything is sent
                StringAssert.Contains("x must be in [-1, 1] and y in [0, 0]", Assert.Throws<ArgumentException>(() => c.Edit(Layer2x1, 2, 0)).Message);
                var tall = (byte[])Layer2x1.Clone();
                tall[23] = 3;
                StringAssert.Contains("2x3 but the frame is 2x1", Assert.Throws<ArgumentException>(() => c.Edit(tall, 0, 0)).Message);
                StringAssert.Contains("not a PNG", Assert.Throws<ArgumentException>(() => c.Edit(new byte[] { 1, 2, 3 }, 0, 0)).Message);

                Assert.AreEqual((24.0, "step"), (c.Fps, c.Mode), "the session's rate and mode");
                var settingsId = c.Settings(eventCfg: 2.5);
                var settings = host.Expect("settings");
                Assert.AreEqual(2.5, settings.GetDouble("event_cfg"));
                Assert.IsFalse(settings.Has("steps"));
                host.Send(new MsgMap { { "type", "ok" }, { "req_id", settingsId }, { "request", "settings" },
                                       { "settings", new MsgMap { { "steps", null }, { "event_cfg", 2.5 }, { "fps", 30.0 }, { "mode", "realtime" } } } });
                c.WaitReply(settingsId, 5000);
                Assert.AreEqual(2.5, c.CurrentSettings.EventCfg);
                Assert.AreEqual((30.0, "realtime"), (c.Fps, c.Mode), "the rate and mode the settings answer says the session plays at");
            }
        }

        [Test]
        public void TheOkForResetBranchOrEditDropsOlderEpochFramesAtOnce()
        {
            using (var host = new FakeHost())
            using (var c = InSession(host, "events", "edit"))
            {
                var requests = new (string, Func<long>)[] { ("branch", () => c.Branch(0)), ("reset", () => c.Reset()), ("edit", () => c.Edit(Layer2x1, 0, 0)) };
                long epoch = 0;
                foreach (var r in requests)
                {
                    var (request, send) = r;
                    host.Frame("s1", 1, epoch);                 // waits in the slot: the game has not taken it
                    Until(() => c.FramesReceived == 2 * epoch + 2, "the frame of epoch " + epoch);
                    var id = send();
                    host.Expect(request);
                    epoch++;
                    host.Send(new MsgMap { { "type", "ok" }, { "req_id", id }, { "request", request }, { "epoch", epoch }, { "frame_index", 0 } });
                    c.WaitReply(id, 5000);
                    Assert.IsFalse(c.TryTakeFrame(out var stale), $"a frame of epoch {stale?.Epoch} is shown after the {request} ok");
                    host.Frame("s1", 2, epoch - 1);             // one of the old epoch, still on the way
                    host.Frame("s1", 0, epoch);
                    Assert.IsTrue(c.WaitFrame(5000, out var f));
                    Assert.AreEqual((0L, epoch), (f.Index, f.Epoch), request);
                }
            }
        }

        [Test]
        public void UnsupportedEditIsATypedErrorAndTheSessionGoesOn()
        {
            using (var host = new FakeHost())
            using (var c = InSession(host, "text_prompt", "sketch_prompt", "events", "text_events"))
            {
                Assert.IsFalse(c.Session.Capabilities.CanEdit);
                var id = c.Edit(Layer2x1, 0, 0);               // the core still asks: the host decides
                host.Expect("edit");
                var statusId = c.Status();
                host.Expect("status");
                host.Frame("s1", 1, 0);
                host.Send(new MsgMap { { "type", "status" }, { "req_id", statusId } }); // an answer that overtakes the error
                host.Send(new MsgMap { { "type", "pong" }, { "req_id", 77 } });
                host.Send(new MsgMap { { "type", "error" }, { "req_id", id }, { "code", "unsupported" },
                                       { "message", "the sandbox game cannot edit frames" }, { "fatal", false } });
                var e = Assert.Throws<WorldBridgeException>(() => c.WaitReply(id, 5000));
                Assert.AreEqual(HostErrorCode.Unsupported, e.Kind);
                Assert.AreEqual(id, e.Error.ReqId);
                StringAssert.Contains("cannot edit", e.Message);
                Assert.IsNotNull(c.Session, "a non-fatal error keeps the session");
                Assert.AreEqual("status", c.WaitReply(statusId, 1000).GetString("type"), "an answer passed over is still found");
                Assert.AreEqual(77, NextMessage(c, "pong").GetLong("req_id"), "messages passed over while waiting are kept");
                Assert.IsFalse(c.TryReceiveMessage(out _), "the answer WaitReply took (here: raised) is not delivered twice");
                Assert.IsTrue(c.TryTakeFrame(out var before));
                Assert.AreEqual((1L, 0L), (before.Index, before.Epoch), "a refused edit leaves the epoch alone");
                c.Input(1);
                host.Expect("input");
                host.Frame("s1", 2, 0);
                Assert.IsTrue(c.WaitFrame(5000, out var f));
                Assert.AreEqual((2L, 0L), (f.Index, f.Epoch));
                var t = Assert.Throws<TimeoutException>(() => c.WaitReply(12345, 100));
                StringAssert.Contains("12345", t.Message);
            }
        }

        [Test]
        public void ASessionFromA10HostAllowsEverythingButEdit()
        {
            using (var host = new FakeHost())
            using (var c = new WorldBridgeConnection(Options(host)))
            {
                c.Connect();
                host.Accept();
                host.Welcome();                                // protocol 1.0, no `edit` capability
                Assert.IsTrue(c.WaitReady(5000));
                c.Start(new StartOptions());
                host.Expect("start");
                host.Session("s1");
                NextMessage(c, "session");
                var caps = c.Session.Capabilities;
                Assert.IsFalse(caps.Declared);
                Assert.IsTrue(caps.CanTextPrompt && caps.CanImagePrompt && caps.CanEvents && caps.CanTextEvents);
                Assert.IsFalse(caps.CanEdit);
                Assert.IsFalse(c.CurrentSettings.HasEventGuidance);
            }
        }

        [Test]
        public void RejectIsFatalAndExplained()
        {
            using (var host = new FakeHost())
            using (var c = new WorldBridgeConnection(Options(host)))
            {
                c.Connect();
                host.Accept();
                host.Send(new MsgMap { { "type", "reject" }, { "code", "version_mismatch" }, { "message", "update the plugin" },
                                       { "protocol_major", 2 }, { "protocol_minor", 0 } });
                Assert.IsFalse(c.WaitReady(5000));
                Assert.AreEqual(ConnectionState.Failed, c.State);
                StringAssert.Contains("update the plugin", c.LastError);
                StringAssert.Contains("update the plugin", Assert.Throws<InvalidOperationException>(() => c.Event(null, "snow")).Message);
            }
        }

        [Test]
        public void ReconnectsAndResumesTheSession()
        {
            using (var host = new FakeHost())
            using (var c = Dropped(host, new StartOptions()))   // the host goes away...
            {
                c.Input(1);                                    // ...input made meanwhile waits in the queue
                host.Accept();                                 // ...and comes back
                host.Welcome();
                ExpectResume(host, "s1");
                Assert.AreEqual(1, host.Expect("input").GetLong("action"), "queued input is sent after the resume");
                host.Session("s1", resumed: true);
                Assert.IsTrue(NextMessage(c, "session").GetBool("resumed"));
                Assert.IsTrue(c.Session.Resumed);
            }
        }

        [Test]
        public void AnUnknownSessionNotAnsweringTheResumeLeavesTheSession()
        {
            using (var host = new FakeHost())
            using (var c = InSession(host))
            {
                var tracker = new SessionTracker();
                tracker.Message(new MsgMap { { "type", "session" } }, c);
                host.Send(new MsgMap { { "type", "error" }, { "req_id", 99L }, { "code", "unknown_session" }, { "message", "gone" }, { "fatal", false } });
                Assert.IsNull(tracker.Message(NextMessage(c, "error"), c), "the main thread took it for the end of the session");
                Assert.IsTrue(tracker.InSession);
                Assert.IsNotNull(c.Session, "an unknown_session answering no resume of ours ended the running session");
                Assert.AreEqual("s1", c.Session.SessionId);
            }
        }

        [Test]
        public void AFailedResumeStartsAFreshSessionWithTheSameOptions()
        {
            using (var host = new FakeHost())
            using (var c = Dropped(host, new StartOptions { Mode = "step", Seed = 5, Text = "a cave" }))
            {
                // the host restarts...
                host.Accept();
                host.Welcome();
                host.Send(UnknownSession(ExpectResume(host, "s1"), "no session s1 (it timed out or the host restarted)"));
                var fresh = host.Expect("start");              // ...and no longer has s1: a new world, as asked before
                Assert.IsNull(fresh["resume"]);
                Assert.AreEqual(("step", 5L, "a cave"), (fresh.GetString("mode"), fresh.GetLong("seed"), fresh.GetString("text")));
                Assert.AreEqual("unknown_session", NextMessage(c, "error").GetString("code"));
                host.Session("s2");
                NextMessage(c, "session");
                Assert.AreEqual("s2", c.Session.SessionId);
            }
        }

        [Test]
        public void AFieldStartTheRestartedHostRefusesAfterAFailedResumeGoesAgainWithoutThePrompt()
        {
            var options = new StartOptions { Mode = "step", Text = "a cave" };
            var field = new FieldStart();
            using (var host = new FakeHost())
            using (var c = Welcomed(host))
            {
                field.Sent(options, c.Start(options), true);
                host.Expect("start");
                host.Session("s1");
                field.Started(NextMessage(c, "session"), c.Session);
                Restart(host, c);
                host.Send(UnknownSession(ExpectResume(host, "s1")));
                var again = host.Expect("start");              // the lost session's start, under a req_id only the connection knows
                host.Send(new MsgMap { { "type", "error" }, { "req_id", again.GetLong("req_id") }, { "code", "bad_prompt" },
                                       { "message", "this backend takes no text prompts" }, { "capability", "text_prompt" }, { "fatal", false } });
                Assert.AreEqual("unknown_session", NextMessage(c, "error").GetString("code"));
                var refusal = HostError.From(NextMessage(c, "error"));
                Assert.AreEqual("this backend takes no text prompts: starting without the text prompt",
                                field.Retry(refusal, c, o => c.Start(o)), "the restarted host refused the prompt: no retry, no world");
                var without = host.Expect("start");
                Assert.AreEqual(("step", (string)null), (without.GetString("mode"), without.GetString("text")));
                host.Session("s2");
                field.Started(NextMessage(c, "session"), c.Session);
                CollectionAssert.AreEqual(new[] { "text" }, field.Dropped);
            }
        }

        [Test]
        public void AFieldStartWhoseRetryCouldNotBeSentIsRetriedOnTheNextRefusal()
        {
            var field = new FieldStart();
            field.Sent(new StartOptions { Mode = "step", Text = "a cave" }, 5, true);
            var refusal = new HostError { ReqId = 5, Code = "bad_prompt", Kind = HostErrorCode.BadPrompt, Capability = "text_prompt" };
            Assert.IsNull(field.Retry(refusal, null, o => -1), "a retry that was not sent says nothing was sent");
            Assert.AreEqual("this backend takes no text prompts: starting without the text prompt", field.Retry(refusal, null, o => 6),
                            "a retry that could not be sent forgot the prompt may be dropped: the next refusal got no world");
        }

        [Test]
        public void NegativeSeedsAreRefusedBeforeSending()
        {
            using (var host = new FakeHost())
            using (var c = new WorldBridgeConnection(Options(host)))
            {
                var start = Assert.Throws<ArgumentException>(() => c.Start(new StartOptions { Seed = -1 }));
                StringAssert.Contains("seed -1 must be within 0-9223372036854775807", start.Message);
                var reset = Assert.Throws<ArgumentException>(() => c.Reset(seed: -5));
                StringAssert.Contains("seed -5 must be within", reset.Message);
                c.Start(new StartOptions { Seed = 0 });   // 0 is a seed
            }
        }

        [Test]
        public void AStartWithoutFpsOrWithFpsZeroOrLessAsksForTheWorldsOwnRateAndOnlyAGivenRateIsChecked()
        {
            using (var host = new FakeHost())
            using (var c = new WorldBridgeConnection(Options(host)))
            {
                Assert.IsNull(new StartOptions().Fps, "a start asked for 24 fps whatever the world's own rate");
                Assert.IsNull(Protocol.Start(1, new StartOptions())["fps"], "start.fps must be nil: the backend's own rate");
                Assert.AreEqual(12.0, Protocol.Start(1, new StartOptions { Fps = 12 })["fps"]);
                c.Start(new StartOptions());  // no rate given: nothing to check
                foreach (var own in new[] { 0, -5 })
                {   // as the Godot addon's core sends it: 0 or less is the world's own rate
                    Assert.IsNull(Protocol.Start(1, new StartOptions { Fps = own })["fps"], $"fps {own} was sent, not nil");
                    Assert.DoesNotThrow(() => c.Start(new StartOptions { Fps = own }), $"fps {own} was refused");
                }
                Assert.AreEqual("Fps 0.37 is no rate a host plays: set Fps to 0 for the world's own rate, or 1–120",
                                Assert.Throws<ArgumentException>(() => c.Start(new StartOptions { Fps = 0.37 })).Message);
                foreach (var bad in new[] { 0.5, 121, double.NaN })
                    StringAssert.Contains("is no rate a host plays", Assert.Throws<ArgumentException>(() => c.Start(new StartOptions { Fps = bad })).Message);
            }
        }

        [Test]
        public void AStartMadeWhileReconnectingReplacesTheResume()
        {
            using (var host = new FakeHost())
            using (var c = Dropped(host, new StartOptions { Mode = "step", Text = "a cave" }))
            {
                c.Start(new StartOptions { Mode = "step", Text = "a desert" });   // the game asks for a new world meanwhile
                host.Accept();
                host.Welcome();
                var first = host.Expect("start");
                Assert.IsNull(first["resume"], "resumed a session the queued start replaces");
                Assert.AreEqual("a desert", first.GetString("text"));
                Assert.IsFalse(host.Pending(0));
            }
        }

        [Test]
        public void AFailedResumeDoesNotRestartWhenTheGameStartedMeanwhile()
        {
            using (var host = new FakeHost())
            using (var c = Dropped(host, new StartOptions { Mode = "step", Text = "a cave" }))
            {
                host.Accept();
                host.Welcome();
                var resume = ExpectResume(host, "s1");
                c.Start(new StartOptions { Mode = "step", Text = "a desert" });   // after the resume went out
                Assert.AreEqual("a desert", host.Expect("start").GetString("text"));
                host.Send(UnknownSession(resume));
                Assert.AreEqual("unknown_session", NextMessage(c, "error").GetString("code"));
                c.Input(1);                                    // the next message the host sees is this input: no second start
                Assert.AreEqual(1L, host.Expect("input").GetLong("action"));
            }
        }

        [Test]
        public void AStartSentButUnansweredAtTheDropIsSentAgainInsteadOfTheResume()
        {
            using (var host = new FakeHost())
            using (var c = InSession(host))
            {
                var id = c.Start(new StartOptions { Mode = "step", Text = "a desert" });
                Assert.AreEqual("a desert", host.Expect("start").GetString("text"));   // it reached the host...
                Restart(host, c);                                                      // ...which went away unanswering
                var again = host.Expect("start");
                Assert.IsNull(again["resume"], "resumed s1, and the world the game asked for is lost");
                Assert.AreEqual(("a desert", id), (again.GetString("text"), again.GetLong("req_id")), "the same start, sent again");
                host.Session("s2");
                Assert.AreEqual(id, NextMessage(c, "session").GetLong("req_id"));
                Restart(host, c);                                                      // answered: a later drop resumes s2
                ExpectResume(host, "s2");
            }
        }

        [Test]
        public void NothingButHelloReachesAReconnectBeforeItsWelcome()
        {
            using (var host = new FakeHost())
            using (var c = Dropped(host, new StartOptions { Mode = "step" }))
            {
                c.Input(1);                                    // waits in the queue for the next connection
                host.Accept();                                 // hello: the host holds its welcome back
                // the send thread writes to `dealer` only: a connection there before its welcome is one it can write the
                // queued input to ahead of hello (answered not_ready, and lost) or ahead of the resume
                var sendable = typeof(WorldBridgeConnection).GetField("dealer", BindingFlags.NonPublic | BindingFlags.Instance).GetValue(c);
                Assert.IsNull(sendable, "the send thread can reach a connection the host has not welcomed");
                Assert.IsEmpty(host.Drain(200), "sent before the welcome");
                host.Welcome();
                Assert.AreEqual("s1", host.Expect("start").GetString("resume"));
                Assert.AreEqual(1, host.Expect("input").GetLong("action"), "the queued input follows the resume");
            }
        }

        [Test]
        public void AFailedResumeRestartsWithTheLostSessionsOptionsNotThoseOfAStartRefusedSince()
        {
            using (var host = new FakeHost())
            using (var c = Started(host, new StartOptions { Mode = "step", Text = "a cave" }))
            {
                var refused = c.Start(new StartOptions { Mode = "step", Text = "a sketch that does not decode" });
                host.Expect("start");
                host.Send(new MsgMap { { "type", "error" }, { "req_id", refused }, { "code", "bad_prompt" },
                                       { "message", "the sketch does not decode" }, { "fatal", false } });
                Assert.AreEqual("bad_prompt", NextMessage(c, "error").GetString("code"));
                Assert.AreEqual("s1", c.Session.SessionId, "a refused start leaves the session running");
                Restart(host, c);
                host.Send(UnknownSession(ExpectResume(host, "s1")));
                var fresh = host.Expect("start");
                Assert.AreEqual(("step", "a cave"), (fresh.GetString("mode"), fresh.GetString("text")),
                                "the restart repeated the refused start instead of the lost session's options");
                host.Session("s2");
                NextMessage(c, "session");
                Assert.AreEqual("a cave", c.Session.StartedWith.Text);
            }
        }

        /// <summary>What a host that forgot this peer (idle before a start, or restarted) answers request `reqId`.</summary>
        static MsgMap NotReady(long reqId) => new MsgMap
        {
            { "type", "error" }, { "req_id", reqId }, { "code", "not_ready" }, { "message", "send hello first" }, { "fatal", false },
        };

        [Test]
        public void NotReadyGreetsAgainAndRepeatsTheRefusedStartAsSent()
        {
            using (var host = new FakeHost())
            using (var c = Welcomed(host))
            {
                Assert.IsTrue(c.WaitReady(5000), c.LastError);
                var id = c.Start(new StartOptions { Mode = "step", Seed = 9, Text = "a cave" });
                host.Expect("start");
                var ping = c.Ping();
                host.Expect("ping");
                host.Send(NotReady(id));                       // the host forgot this client: every request says so
                host.Send(NotReady(ping));
                host.Expect("hello");
                Until(() => !c.IsReady, "the client to wait for the new welcome");
                c.Input(1);                                    // waits for the welcome, behind the repeated start
                Assert.IsEmpty(host.Drain(200), "one hello for two not_ready answers, and nothing before the welcome");
                host.Welcome();
                var sent = host.Drain(300);
                Assert.AreEqual(new[] { "start", "input" }, sent.Select(m => m.GetString("type")).ToArray(), "one start, then the input");
                Assert.AreEqual((id, "step", 9L, "a cave"), (sent[0].GetLong("req_id"), sent[0].GetString("mode"), sent[0].GetLong("seed"),
                                                             sent[0].GetString("text")), "the start was not repeated as it was sent");
                Assert.IsNull(sent[0]["resume"]);
                Assert.AreEqual("not_ready", NextMessage(c, "error").GetString("code"));
                host.Session("s1");
                Assert.AreEqual(id, NextMessage(c, "session").GetLong("req_id"));
                Assert.AreEqual("a cave", c.Session.StartedWith.Text);
                Assert.IsEmpty(host.Drain(200), "a second start would end the session it just got");
            }
        }

        [Test]
        public void NotReadyInASessionGreetsAgainAndResumesIt()
        {
            using (var host = new FakeHost())
            using (var c = Started(host, new StartOptions { Mode = "step", Text = "a cave" }))
            {
                c.Input(1);
                host.Expect("input");
                host.Send(NotReady(0));
                host.Expect("hello");
                host.Welcome();
                ExpectResume(host, "s1");
                Assert.IsTrue(c.WaitReady(5000), c.LastError);
            }
        }

        [Test]
        public void StartsFromTwoThreadsGoOutInTheOrderOfTheirIdsAndAReconnectRepeatsTheLastSent()
        {
            using (var host = new FakeHost())
            using (var c = Welcomed(host, maxMessageBytes: 48 << 20))
            {
                Assert.IsTrue(c.WaitReady(5000), c.LastError);
                var reqId = typeof(WorldBridgeConnection).GetField("reqId", BindingFlags.NonPublic | BindingFlags.Instance);
                // the first start takes its id, then spends a while encoding a large image; the second is quick
                var firstId = (long)reqId.GetValue(c) + 1; // hello took the ids before it
                var first = new Thread(() => c.Start(new StartOptions { Mode = "step", Text = "first", Image = new byte[32 << 20] }));
                first.Start();
                Until(() => (long)reqId.GetValue(c) == firstId, "the first start to take its id");
                var second = c.Start(new StartOptions { Mode = "step", Text = "second" });
                Assert.IsTrue(first.Join(5000));
                var sent = new[] { host.Expect("start"), host.Expect("start") };
                Assert.AreEqual(new[] { "first", "second" }, sent.Select(m => m.GetString("text")).ToArray(), "the older start went out last");
                Assert.AreEqual(new[] { firstId, second }, sent.Select(m => m.GetLong("req_id")).ToArray());
                Restart(host, c);
                var again = host.Expect("start");
                Assert.AreEqual((second, "second"), (again.GetLong("req_id"), again.GetString("text")), "a reconnect repeated another start than the last sent");
            }
        }

        [Test]
        public void AFirstStartUnansweredAtTheDropIsSentAgain()
        {
            using (var host = new FakeHost())
            using (var c = Welcomed(host))
            {
                c.Start(new StartOptions { Mode = "step", Text = "a cave" });
                host.Expect("start");
                Restart(host, c);
                Assert.AreEqual("a cave", host.Expect("start").GetString("text"), "the start was lost with the connection");
            }
        }

        [Test]
        public void AStartQueuedAtTheDropIsSentOnceAndReplacesTheResume()
        {
            using (var host = new FakeHost(receiveBuffer: 4096))
            using (var c = InSession(host))
            {
                // the host stops reading: big events fill the socket, so the start waits in the queue behind them
                var text = new string('x', 1 << 20);
                for (int i = 0; i < 12; i++) c.Event(null, text);
                c.Start(new StartOptions { Mode = "step", Text = "a desert" });
                Thread.Sleep(200);
                Restart(host, c);
                var sent = host.Drain(1000, m => m.Has("resume") ? UnknownSession(m) : null);   // a resume fails: the host restarted
                var starts = sent.Where(m => m.GetString("type") == "start").ToList();
                Assert.AreEqual(1, starts.Count, "one start for the queued one: no resume, no second start after a failed one");
                Assert.AreEqual(("a desert", (string)null), (starts[0].GetString("text"), starts[0].GetString("resume", null)));
            }
        }

        [Test]
        public void ASessionKnowsTheActionMapOfTheStartItAnswersAndKeepsItWhenResumed()
        {
            using (var host = new FakeHost())
            using (var c = Started(host, new StartOptions { ActionMap = new Dictionary<string, int> { { "dash", 1 } } }))
            {
                Assert.IsTrue(c.Session.HasAction("dash") && c.Session.HasAction("right") && !c.Session.HasAction("fly"));
                Restart(host, c);
                ExpectResume(host, "s1");
                host.Session("s1", resumed: true);
                Assert.IsTrue(NextMessage(c, "session").GetBool("resumed"));
                Assert.IsTrue(c.Session.HasAction("dash"), "the resumed session forgot its start's action_map");
            }
        }

        [Test]
        public void StatusAndPongAreKeptWithTheRoundTripFromTheirClientTs()
        {
            using (var host = new FakeHost())
            using (var c = InSession(host))
            {
                Assert.AreEqual(-1, c.RoundTripMs, "no round trip before a pong");
                Assert.IsNull(c.LastStatus);
                var statusId = c.RequestStatus();
                host.Expect("status");
                var ping = host.Expect("ping");
                Thread.Sleep(50);
                host.Send(new MsgMap { { "type", "status" }, { "req_id", statusId }, { "sessions", 1 }, { "fps_measured", 23.5 } });
                host.Send(new MsgMap { { "type", "pong" }, { "req_id", ping.GetLong("req_id") }, { "client_ts", ping.GetDouble("client_ts") }, { "host_ts", 1.0 } });
                NextMessage(c, "pong");
                Assert.That(c.RoundTripMs, Is.InRange(50.0, 5000.0), "the pong's client_ts is when the ping left");
                Assert.AreEqual(23.5, c.LastStatus.GetDouble("fps_measured"));
                host.Send(new MsgMap { { "type", "pong" }, { "req_id", 9 }, { "host_ts", 1.0 } }); // a pong without client_ts
                NextMessage(c, "pong");
                Assert.That(c.RoundTripMs, Is.InRange(50.0, 5000.0), "a pong that names no client_ts measures nothing");
            }
            using (var idle = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" }))
            {
                var e = Assert.Throws<InvalidOperationException>(() => idle.RequestStatus());
                Assert.AreEqual("no host to ask for its status until its welcome (state: Idle)", e.Message);
            }
        }

        [Test]
        public void FpsIsMeasuredFromFrameArrivalsOverTheLast30()
        {
            var meter = new FrameRateMeter();
            Assert.AreEqual(0, meter.Add(1000), "one frame is no rate");
            Assert.AreEqual(10, meter.Add(1100), 1e-9);
            for (int i = 2; i <= 40; i++) meter.Add(1000 + 100 * i);
            for (int i = 0; i < FrameRateMeter.Window; i++) meter.Add(5000 + 50 * i);
            Assert.AreEqual(20, meter.Add(5000 + 50 * FrameRateMeter.Window), 1e-9, "older arrivals leave the window");
            meter.Clear();
            Assert.AreEqual(20, meter.Add(9000), 1e-9, "a new session's first frame keeps the last rate");
            Assert.AreEqual(4, meter.Add(9250), 1e-9, "and its second measures afresh");

            using (var host = new FakeHost())
            using (var c = InSession(host))
            {
                Assert.AreEqual(0, c.MeasuredFps, "one frame is no rate");
                for (int i = 1; i <= 3; i++) { Thread.Sleep(40); host.Frame("s1", i, 0); }
                Until(() => c.FramesReceived == 4, "three more frames");
                Assert.That(c.MeasuredFps, Is.InRange(1.0, 1000.0), "frames 40 ms apart, taken by nobody, still count");
            }
        }

        [Test]
        public void LatencyIsMeasuredOnTheFirstFrameOfEachInputOnly()
        {
            using (var host = new FakeHost())
            using (var c = InSession(host))
            {
                c.Input(1);
                var input = host.Expect("input");
                double ts = input.GetDouble("client_ts");
                long seq = input.GetLong("seq");
                host.FrameEcho("s1", 1, ts, seq);
                Assert.IsTrue(c.WaitFrame(5000, out var first));
                Assert.IsTrue(first.LatencyMs.HasValue, "the first frame of an input measures its latency");
                Thread.Sleep(100);                             // the key stays held: the host echoes the same input
                host.FrameEcho("s1", 2, ts, seq);
                Assert.IsTrue(c.WaitFrame(5000, out var held));
                Assert.IsNull(held.LatencyMs, "a later frame of the same input is no latency sample (it would grow)");
                host.Frame("s1", 3, 0);                        // a branch's frame: it echoes no input
                Assert.IsTrue(c.WaitFrame(5000, out var branched));
                host.FrameEcho("s1", 4, ts, seq);              // the held input again: still not a new one
                Assert.IsTrue(c.WaitFrame(5000, out var after));
                Assert.IsNull(after.LatencyMs, "a frame that echoes nothing does not make the held input new");

                c.Input(0);
                input = host.Expect("input");
                host.FrameEcho("s1", 5, input.GetDouble("client_ts"), input.GetLong("seq"));
                host.FrameEcho("s1", 6, input.GetDouble("client_ts"), input.GetLong("seq"));
                Until(() => c.FramesReceived == 7, "two more frames");
                Assert.IsTrue(c.TryTakeFrame(out var newest));
                Assert.AreEqual(6, newest.Index);
                Assert.IsTrue(newest.LatencyMs.HasValue && newest.LatencyMs < 5000, "a replaced frame's sample is kept");
            }
        }

        [Test]
        public void AStartThatThrowsWhileReconnectingIsNoStart()
        {
            using (var host = new FakeHost())
            using (var c = Dropped(host, new StartOptions { Mode = "step", Text = "a cave" }, maxMessageBytes: 4096))
            {
                Assert.Throws<ArgumentException>(() => c.Start(new StartOptions { Mode = "step", Image = new byte[10000] }));
                host.Accept();
                host.Welcome(maxMessageBytes: 4096);
                c.Input(1);
                Assert.AreEqual("s1", host.Expect("start").GetString("resume"), "the refused Start must not cancel the resume");
            }
        }

        [Test]
        public void AnErrorAnsweringHelloIsFatalAndExplained()
        {
            using (var host = new FakeHost())
            using (var c = new WorldBridgeConnection(Options(host)))
            {
                c.Connect();
                var hello = host.Accept();
                Assert.IsTrue(hello.Has("req_id"), "hello carries no req_id: its refusal cannot be told from another answer");
                host.Send(new MsgMap { { "type", "error" }, { "req_id", hello.GetLong("req_id") }, { "code", "bad_message" },
                                       { "message", "client is 5000 bytes, over the 4096-byte limit for strings" }, { "fatal", false } });
                Until(() => c.State == ConnectionState.Failed, "the connection to give up");
                Assert.AreEqual("client is 5000 bytes, over the 4096-byte limit for strings", c.LastError);
                Assert.AreEqual("bad_message", NextMessage(c, "error").GetString("code"));
                Assert.IsFalse(host.Pending(300), "retrying a hello the host refused cannot help");
            }
        }

        [Test]
        public void AnErrorAnsweringAnOlderRequestWhileGreetingAgainIsNoRefusedHello()
        {
            using (var host = new FakeHost())
            using (var c = Welcomed(host))
            {
                Assert.IsTrue(c.WaitReady(5000), c.LastError);
                var ping = c.Ping();
                var start = c.Start(new StartOptions { Mode = "step", Text = "a cave" });
                host.Expect("ping");
                host.Expect("start");
                host.Send(NotReady(ping));                     // the host forgot this client...
                var hello = host.Expect("hello");
                Assert.AreNotEqual(start, hello.GetLong("req_id", start), "hello needs a req_id of its own");
                // ...after the start reached it: refused before the host looks for a peer (too large), so not not_ready
                host.Send(new MsgMap { { "type", "error" }, { "req_id", start }, { "code", "too_large" },
                                       { "message", "a message of 20000000 bytes is over the host's 16777216-byte limit" }, { "fatal", false } });
                host.Welcome();
                Assert.IsTrue(c.WaitReady(5000), "the start's refusal was taken for a refused hello: " + c.LastError);
                Assert.AreEqual(ConnectionState.Ready, c.State);
                var first = NextMessage(c, "error");
                Assert.AreEqual(("not_ready", ping), (first.GetString("code"), first.GetLong("req_id")));
                var second = NextMessage(c, "error");
                Assert.AreEqual(("too_large", start), (second.GetString("code"), second.GetLong("req_id")), "the start's refusal must reach the game");
                Assert.IsEmpty(host.Drain(300), "the refused start was sent again");
            }
        }

        [Test]
        public void TheHandshakeHasADeadlineThatHeartbeatsDoNotExtend()
        {
            using (var host = new FakeHost())
            using (var c = new WorldBridgeConnection(new ConnectionOptions
                   { Endpoint = host.Endpoint, ConnectTimeoutMs = 600, ReconnectInitialMs = 20, ReconnectMaxMs = 100 }))
            {
                c.Connect();
                host.Accept();                                 // ...and never answers hello, but sends PINGs
                var watch = System.Diagnostics.Stopwatch.StartNew();
                try { while (c.LastError == null && watch.ElapsedMilliseconds < 3000) { host.Ping(); Thread.Sleep(100); } }
                catch (IOException) { }                        // the client hung up: expected
                Until(() => c.LastError != null, "the handshake to time out");
                StringAssert.Contains("did not answer hello within 600 ms", c.LastError);
                Assert.Less(watch.ElapsedMilliseconds, 2000);
                Assert.IsTrue(host.Pending(2000), "a timed-out handshake is retried");
            }
        }

        [Test]
        public void MessagesOverTheHostLimitAreRefused()
        {
            using (var host = new FakeHost())
            using (var c = new WorldBridgeConnection(Options(host)))
            {
                c.Connect();
                host.Accept();
                host.Welcome(maxMessageBytes: 1000);
                Assert.IsTrue(c.WaitReady(5000));
                var layer = new byte[2000];
                Layer2x1.CopyTo(layer, 0);
                var cases = new (Func<long> Send, string Type, string Advice)[]
                {
                    (() => c.Reset(image: new byte[2000]), "reset", "its image is 2000 bytes: use a smaller image"),
                    (() => c.Reset(text: new string('é', 800), image: new byte[100]), "reset", "its text is 1600 bytes: use a shorter text"),
                    (() => c.Reset(sketch: new byte[2000]), "reset", "its sketch is 2000 bytes: use a smaller sketch"),
                    (() => c.Edit(layer, 0, 0), "edit", "its layer is 2000 bytes: use a smaller layer"),
                    // nothing to shrink stands out: the fix is the host's limit, named as the host's own too_large names it
                    (() => c.Start(new StartOptions { ActionMap = Enumerable.Range(0, 300).ToDictionary(i => "a" + i, i => i) }),
                     "start", "start the host with a larger `worldbridge serve --max-message-bytes`"),
                };
                foreach (var one in cases)
                {
                    var (send, type, advice) = one;
                    var e = Assert.Throws<ArgumentException>(() => send());
                    StringAssert.StartsWith(type + " message of ", e.Message);
                    StringAssert.EndsWith(" bytes is over the host's 1000-byte limit: " + advice, e.Message,
                                          "the message names its biggest part and the fix for it, as the Godot addon does");
                }
            }
        }

        [Test]
        public void NoHostMeansRetryingUntilClosed()
        {
            int port;
            using (var probe = new FakeHost()) port = int.Parse(probe.Endpoint.Substring(probe.Endpoint.LastIndexOf(':') + 1));
            var c = new WorldBridgeConnection(new ConnectionOptions { Endpoint = $"tcp://127.0.0.1:{port}", ReconnectInitialMs = 10, ReconnectMaxMs = 20 });
            c.Connect();
            Assert.IsFalse(c.WaitReady(300));
            Assert.AreEqual(ConnectionState.Reconnecting, c.State);
            StringAssert.Contains("127.0.0.1", c.LastError);
            WorldBridgeConnection.CloseAll();
            Assert.AreEqual(ConnectionState.Closed, c.State);
        }

        [Test]
        public void AnIdleSessionIsKeptOpenWithPings()
        {
            using (var host = new FakeHost())
            using (var c = new WorldBridgeConnection(Options(host)))
            {
                c.Connect();
                host.Accept();
                host.Welcome(idleTimeoutS: 3.0);  // the host would close a session silent for 3 s
                Assert.IsTrue(c.WaitReady(5000));
                c.Start(new StartOptions { Mode = "step" });
                host.Expect("start");
                host.Session("s1");
                NextMessage(c, "session");
                var started = DateTime.UtcNow;
                host.Expect("ping");              // nothing sent since the start: a ping well inside the 3 s
                Assert.Less((DateTime.UtcNow - started).TotalSeconds, 2.9);
            }
        }

        [Test]
        public void CloseDuringTheHandshakeReturnsAtOnce()
        {
            using (var host = new FakeHost())   // accepts the TCP connection but never answers the ZMTP greeting
            {
                var c = new WorldBridgeConnection(new ConnectionOptions { Endpoint = host.Endpoint, ConnectTimeoutMs = 3000 });
                c.Connect();
                Thread.Sleep(200);
                var watch = System.Diagnostics.Stopwatch.StartNew();
                c.Close();
                Assert.Less(watch.ElapsedMilliseconds, 500, "Close waited for the handshake's read timeout");
                Assert.AreEqual(ConnectionState.Closed, c.State);
            }
        }

        [Test]
        public void CloseWhileTheHostHoldsItsWelcomeBackReturnsAtOnce()
        {
            using (var host = new FakeHost())
            {
                var c = new WorldBridgeConnection(Options(host));
                c.Connect();
                host.Accept();                                 // hello, never answered
                var watch = System.Diagnostics.Stopwatch.StartNew();
                c.Close();
                Assert.Less(watch.ElapsedMilliseconds, 500, "Close waited for the hello's deadline");
                Assert.AreEqual(ConnectionState.Closed, c.State);
            }
        }

        [Test]
        public void AHostWithASecurityMechanismIsFatalAndExplained()
        {
            using (var host = new FakeHost())
            using (var c = new WorldBridgeConnection(Options(host)))
            {
                c.Connect();
                host.AcceptWithMechanism("CURVE");
                Until(() => c.State == ConnectionState.Failed, "the connection to give up");
                StringAssert.Contains("CURVE", c.LastError);
            }
        }

        [Test]
        public void BackoffDoublesUpToTheCapAndResets()
        {
            var b = new ReconnectBackoff { InitialMs = 250, MaxMs = 5000 };
            CollectionAssert.AreEqual(new[] { 250, 500, 1000, 2000, 4000, 5000, 5000 }, Enumerable.Range(0, 7).Select(_ => b.NextDelayMs()).ToArray());
            b.Reset();
            Assert.AreEqual(250, b.NextDelayMs());
        }

        [Test]
        public void BadEndpointFailsOnTheCallersThread()
        {
            Assert.Throws<ArgumentException>(() => new WorldBridgeConnection(new ConnectionOptions { Endpoint = "localhost:5555" }));
        }
    }
}
