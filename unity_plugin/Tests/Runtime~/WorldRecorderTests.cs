// WorldRecorder's status, run under mono against Tests/CompileOnly~ (the host's messages are handed to it directly).
using System.Reflection;
using NUnit.Framework;
using WorldBridge;
using WorldBridge.Core;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class WorldRecorderTests
    {
        static WorldRecorder Recording()
        {
            var recorder = new WorldRecorder();
            Receive(recorder, new MsgMap { { "type", "ok" }, { "req_id", 1 }, { "request", "record_start" }, { "path", "a.wbrec" } });
            Assert.IsTrue(recorder.IsRecording);
            return recorder;
        }

        static void Receive(WorldRecorder recorder, MsgMap m) =>
            typeof(WorldRecorder).GetMethod("OnMessage", BindingFlags.NonPublic | BindingFlags.Instance).Invoke(recorder, new object[] { m });

        static MsgMap Error(bool fatal) => new MsgMap
        {
            { "type", "error" }, { "req_id", null }, { "code", "backend_error" }, { "message", "the backend failed" }, { "fatal", fatal },
        };

        [Test]
        public void AFatalErrorEndsTheRecordingWithTheSession()
        {
            var recorder = Recording();
            Receive(recorder, Error(fatal: false));
            Assert.IsTrue(recorder.IsRecording, "a refused request leaves the session, and its recording, running");
            Receive(recorder, Error(fatal: true));
            Assert.IsFalse(recorder.IsRecording, "the session ended, and the recorder still says it records");
        }

        [Test]
        public void ARecordingTheHostStoppedIsReportedAsStopped()
        {
            var recorder = Recording();
            Receive(recorder, new MsgMap
            {
                { "type", "error" }, { "req_id", null }, { "code", "recording_stopped" },
                { "message", "recording a.wbrec stopped: No space left on device" }, { "fatal", false }, { "path", "a.wbrec" }, { "frames", 41L },
            });
            Assert.IsFalse(recorder.IsRecording, "the host's disk filled up, and the recorder still says it records");
            Assert.AreEqual(("a.wbrec", 41L), (recorder.LastPath, recorder.LastFrames));
            StringAssert.Contains("No space left on device", recorder.Status, "the game is told why");
        }

        [Test]
        public void DisablingTheRecorderStopsTheRecordingAndSaysSo()
        {
            var recorder = Recording();
            recorder.client = new WorldBridgeClient();
            typeof(WorldRecorder).GetMethod("OnDisable", BindingFlags.NonPublic | BindingFlags.Instance).Invoke(recorder, null);
            Assert.IsFalse(recorder.IsRecording, "a re-enabled recorder would say it records, and its Toggle would send record_stop");
            StringAssert.Contains("a.wbrec stopped", recorder.Status);
        }

        [Test]
        public void ARecorderWithoutAClientSaysHowToGiveItOne()
        {
            var recorder = new WorldRecorder();
            recorder.Toggle(); // a record button wired to a recorder on an object with no client
            Assert.IsFalse(recorder.IsRecording);
            StringAssert.Contains("drag one into its Client field", recorder.Status);
        }
    }
}
