// WorldRecorder's status, run under mono against Tests/CompileOnly~ (the host's messages are handed to it directly).
using System.Collections.Generic;
using NUnit.Framework;
using WorldBridge;
using WorldBridge.Core;
using static WorldBridge.Tests.Private;

namespace WorldBridge.Tests
{
    [TestFixture]
    public class WorldRecorderTests
    {
        /// <summary>A recorder whose client (connected, sending nowhere) the host answered record_start to.</summary>
        static WorldRecorder Recording()
        {
            var recorder = new WorldRecorder { client = ReadyClient() };
            Call(recorder, "OnEnable");
            recorder.StartRecording();
            Call(recorder.client, "Handle", Started());
            Assert.IsTrue(recorder.IsRecording);
            return recorder;
        }

        static MsgMap Started() => new MsgMap { { "type", "ok" }, { "req_id", 1 }, { "request", "record_start" }, { "path", "a.wbrec" } };

        static WorldBridgeClient ReadyClient()
        {
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            Set(connection, "state", ConnectionState.Ready);
            var client = new WorldBridgeClient { endpoint = Nowhere }; // a test may enable it again: it opens there
            Use(client, connection);
            return client;
        }

        static List<string> Requests(WorldBridgeClient client)
        {
            var sent = new List<string>();
            foreach (var item in (System.Collections.IEnumerable)Get(client.Connection, "outbox"))
                sent.Add(MsgPack.DecodeHeader((byte[])item.GetType().GetField("Bytes").GetValue(item)).GetString("type"));
            return sent;
        }

        /// <summary>A recording recorder whose Client a script then swapped for `other`; `recorded` is the one recording.</summary>
        static (WorldRecorder recorder, WorldBridgeClient recorded, WorldBridgeClient other) Swapped()
        {
            var recorder = Recording();
            var recorded = recorder.client;
            recorder.client = ReadyClient();
            return (recorder, recorded, recorder.client);
        }

        static void OnlyTheRecordingClientWasStopped(WorldBridgeClient recorded, WorldBridgeClient other)
        {
            CollectionAssert.AreEqual(new[] { "record_start", "record_stop" }, Requests(recorded),
                                      "the recording on the first client's host ran on");
            CollectionAssert.IsEmpty(Requests(other), "a client that records nothing was asked to stop recording");
        }

        static void Receive(WorldRecorder recorder, MsgMap m) =>
            Call(recorder, "OnMessage", m);

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
            Call(recorder, "OnDisable");
            Assert.IsFalse(recorder.IsRecording, "a re-enabled recorder would say it records, and its Toggle would send record_stop");
            StringAssert.Contains("a.wbrec stopped", recorder.Status);
            CollectionAssert.AreEqual(new[] { "record_start", "record_stop" }, Requests(recorder.client),
                                      "the host is asked to stop the recording");
            recorder.client.Connection.Close();
        }

        [Test]
        public void DisabledAfterItsClientWasSwappedItStopsTheRecordingOfTheClientThatRecords()
        {
            var (recorder, recorded, other) = Swapped();
            Call(recorder, "OnDisable");
            OnlyTheRecordingClientWasStopped(recorded, other);
            StringAssert.Contains("a.wbrec stopped", recorder.Status);
            recorded.Connection.Close();
            other.Connection.Close();
        }

        [Test]
        public void StoppedAfterItsClientWasSwappedItStopsTheClientThatRecordsAndHearsItsAnswer()
        {
            var (recorder, recorded, other) = Swapped();
            recorder.Toggle(); // the record button: stop
            OnlyTheRecordingClientWasStopped(recorded, other);
            Call(recorded, "Handle", new MsgMap { { "type", "ok" }, { "req_id", 2 }, { "request", "record_stop" },
                                                  { "path", "a.wbrec" }, { "frames", 12L } });
            Assert.IsFalse(recorder.IsRecording, "the stop's answer went unheard: the next Toggle would stop again");
            Assert.AreEqual(12L, recorder.LastFrames);
            recorder.Toggle();       // the next recording is the Client field's
            CollectionAssert.AreEqual(new[] { "record_start" }, Requests(other));
            Call(other, "Handle", Started());
            Assert.IsTrue(recorder.IsRecording, "the new client's answer went unheard");
            recorded.Connection.Close();
            other.Connection.Close();
        }

        [Test]
        public void ARecorderDisabledAfterItsClientSendsNothingAndWarnsOfNothing()
        {
            var recorder = Recording();
            var warnings = new List<string>();
            recorder.client.onError.AddListener(warnings.Add);
            recorder.client.Shutdown(); // the client on the same object was disabled first
            Call(recorder, "OnDisable");
            CollectionAssert.IsEmpty(warnings, "record_stop went through the closed client and warned \"not connected\"");
            Assert.IsFalse(recorder.IsRecording);
            StringAssert.Contains("a.wbrec ended with the client's connection", recorder.Status);
        }

        [Test]
        public void AClientSetByScriptAfterTheRecorderWasEnabledIsHeardToo()
        {
            var recorder = new UnityEngine.GameObject("Recorder").AddComponent<WorldRecorder>(); // OnEnable: no client yet
            recorder.client = new WorldBridgeClient();
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            Set(connection, "state", ConnectionState.Ready);
            Use(recorder.client, connection);
            var started = new MsgMap { { "type", "ok" }, { "req_id", 1 }, { "request", "record_start" }, { "path", "a.wbrec" } };
            recorder.StartRecording();
            Call(recorder.client, "Handle", started);
            Assert.IsTrue(recorder.IsRecording, "the host's answer went unheard: Toggle would start again instead of stopping");
            Call(recorder, "OnDisable"); // stops the recording
            Call(recorder.client, "Handle", started);
            Assert.IsFalse(recorder.IsRecording, "a disabled recorder still hears its client");
            connection.Close();
        }

        [Test]
        public void ADisabledRecorderStartsNothingAndSaysItIsDisabled()
        {
            var unticked = new UnityEngine.GameObject("Recorder").AddComponent<WorldRecorder>();
            unticked.enabled = false;
            var inactive = new UnityEngine.GameObject("Recorder").AddComponent<WorldRecorder>();
            inactive.enabled = true;
            inactive.gameObject.SetActive(false);
            foreach (var recorder in new[] { unticked, inactive })
            {
                recorder.client = new WorldBridgeClient();
                var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
                Set(connection, "state", ConnectionState.Ready);
                Use(recorder.client, connection);
                recorder.Toggle(); // a record button wired to a recorder the user turned off
                Assert.AreEqual(0, ((System.Collections.ICollection)Get(connection, "outbox")).Count,
                                "a disabled recorder asked the host to record: nothing would stop that recording");
                Call(recorder.client, "Handle", new MsgMap { { "type", "ok" }, { "req_id", 1 }, { "request", "record_start" }, { "path", "a.wbrec" } });
                Assert.IsFalse(recorder.IsRecording, "a disabled recorder hears its client");
                Assert.AreEqual("WorldRecorder is disabled or its GameObject inactive: enable it to record", recorder.Status);
                connection.Close();
            }
        }

        /// <summary>A recorder on its own object recording through a client on another, which the game then destroys (Unity
        /// runs the client's OnDisable, which closes its connection); the recorder's Client is `other` by then, if given.</summary>
        static WorldRecorder RecordingThroughADestroyedClient(WorldBridgeClient other = null, List<string> told = null)
        {
            var client = AddClient(new UnityEngine.GameObject("World"));
            var connection = new WorldBridgeConnection(new ConnectionOptions { Endpoint = "tcp://127.0.0.1:1" });
            Set(connection, "state", ConnectionState.Ready);
            Use(client, connection);
            var recorder = new UnityEngine.GameObject("Recorder").AddComponent<WorldRecorder>(); // OnEnable: no client yet
            recorder.client = client;
            if (told != null) recorder.onStatus.AddListener(told.Add);
            recorder.StartRecording();
            Call(client, "Handle", Started());
            Assert.IsTrue(recorder.IsRecording);
            if (other != null) recorder.client = other;
            UnityEngine.Object.Destroy(client.gameObject);
            Assert.IsTrue(client == null, "the stub's Destroy: a destroyed client equals null, as in Unity");
            return recorder;
        }

        [Test]
        public void ARecorderWhoseClientWasDestroyedStopsSayingItRecordsWhenDisabled()
        {
            var recorder = RecordingThroughADestroyedClient();
            recorder.enabled = false; // Unity runs OnDisable
            Assert.IsFalse(recorder.IsRecording, "the recording ended with its client, and the recorder still says it records");
            Assert.AreEqual("recording to a.wbrec ended with the client's connection", recorder.Status);
        }

        [Test]
        public void ARecorderWhoseClientWasDestroyedSaysAtOnceThatItNoLongerRecords()
        {
            var told = new List<string>();
            var recorder = RecordingThroughADestroyedClient(told: told);
            Assert.IsFalse(recorder.IsRecording, "a UI bound to IsRecording shows \"recording\" for a client that is gone");
            Assert.AreEqual("recording to a.wbrec ended with the client's connection", recorder.Status);
            CollectionAssert.AreEqual(new[] { "recording to a.wbrec on the host", recorder.Status }, told, "said once, when it ended");
        }

        [Test]
        public void ARecorderWhoseClientWasDisabledSaysAtOnceThatItNoLongerRecords()
        {
            var recorder = Recording();
            var told = new List<string>();
            recorder.onStatus.AddListener(told.Add);
            recorder.client.enabled = false; // Unity runs the client's OnDisable, which closes its connection
            Assert.IsFalse(recorder.IsRecording, "a UI bound to IsRecording shows \"recording\" for a closed client");
            CollectionAssert.AreEqual(new[] { "recording to a.wbrec ended with the client's connection" }, told);
            recorder.client.enabled = true; // a new connection: the recording that ended with the old one is not said again
            CollectionAssert.AreEqual(new[] { "recording to a.wbrec ended with the client's connection" }, told);
            recorder.client.Shutdown();
        }

        [Test]
        public void PressedAfterItsClientWasDestroyedItRecordsThroughItsClientField()
        {
            var other = ReadyClient();
            var recorder = RecordingThroughADestroyedClient(other);
            recorder.Toggle(); // the record button, which shows "Record" again: the recording ended with its client
            CollectionAssert.AreEqual(new[] { "record_start" }, Requests(other));
            other.Connection.Close();
        }

        [Test]
        public void ToggledAfterItsClientsConnectionFailedItStopsNothingAndSaysTheRecordingEnded()
        {
            var (recorder, recorded, other) = Swapped();
            Set(recorded.Connection, "state", ConnectionState.Failed); // gave up reconnecting: the host dropped the session
            recorder.Toggle(); // the record button: stop
            CollectionAssert.IsEmpty(Requests(other), "a client that records nothing was asked to stop recording");
            Assert.IsFalse(recorder.IsRecording, "the recording ended with its client, and the recorder still says it records");
            Assert.AreEqual("recording to a.wbrec ended with the client's connection", recorder.Status);
            recorder.Toggle(); // the next press records through the Client field's client
            CollectionAssert.AreEqual(new[] { "record_start" }, Requests(other));
            recorded.Connection.Close();
            other.Connection.Close();
        }

        [Test]
        public void ARecorderWhoseClientsConnectionFailedSaysAtOnceThatItNoLongerRecords()
        {
            var recorder = Recording();
            Call(recorder.client, "Handle", new MsgMap { { "type", "session" }, { "session_id", "s1" }, { "resumed", true } });
            var told = new List<string>();
            recorder.onStatus.AddListener(told.Add);
            Set(recorder.client.Connection, "state", ConnectionState.Failed); // gave up reconnecting: no close, no answer
            Call(recorder.client, "Update"); // the client sees it fail: onSessionEnded
            Assert.IsFalse(recorder.IsRecording, "a UI bound to IsRecording shows \"recording\" until the next Toggle");
            CollectionAssert.AreEqual(new[] { "recording to a.wbrec ended with the client's connection" }, told);
            Call(recorder.client, "Update");
            CollectionAssert.AreEqual(new[] { "recording to a.wbrec ended with the client's connection" }, told, "said once");
            recorder.client.Connection.Close();
        }

        [Test]
        public void DeactivatedItStopsTheRecording()
        {
            var on = new UnityEngine.GameObject("Recorder").AddComponent<WorldRecorder>();
            on.client = ReadyClient();
            on.StartRecording();
            Call(on.client, "Handle", Started());
            on.gameObject.SetActive(false); // Unity runs OnDisable
            Assert.IsFalse(on.IsRecording);
            StringAssert.Contains("a.wbrec stopped: the recorder was disabled", on.Status);
            CollectionAssert.AreEqual(new[] { "record_start", "record_stop" }, Requests(on.client));
            on.client.Connection.Close();
        }

        [Test]
        public void AStoppedRecordingOfOneFrameSaysFrame()
        {
            var recorder = Recording();
            recorder.StopRecording();
            Call(recorder.client, "Handle", new MsgMap { { "type", "ok" }, { "req_id", 2 }, { "request", "record_stop" },
                                                         { "path", "a.wbrec" }, { "frames", 1L } });
            Assert.AreEqual("recorded 1 frame to a.wbrec", recorder.Status);
            recorder.client.Connection.Close();
        }

        [Test]
        public void ARefusalToRecordIsAWarning()
        {
            var unticked = new UnityEngine.GameObject("Recorder").AddComponent<WorldRecorder>();
            unticked.enabled = false;
            var logged = Logs.Of(() => unticked.Toggle(), UnityEngine.LogType.Warning, UnityEngine.LogType.Log);
            CollectionAssert.AreEqual(new[] { "[WorldBridge] WorldRecorder is disabled or its GameObject inactive: enable it to record" },
                                      logged[UnityEngine.LogType.Warning]);
            CollectionAssert.IsEmpty(logged[UnityEngine.LogType.Log]);
            var orphan = new WorldRecorder();
            logged = Logs.Of(() => orphan.Toggle(), UnityEngine.LogType.Warning, UnityEngine.LogType.Log);
            CollectionAssert.AreEqual(new[] { "[WorldBridge] " + WorldBridgeClient.NeededBy("WorldRecorder") }, logged[UnityEngine.LogType.Warning]);
            CollectionAssert.IsEmpty(logged[UnityEngine.LogType.Log]);
        }

        [Test]
        public void ARecorderWithoutAClientSaysHowToGiveItOne()
        {
            var recorder = new WorldRecorder();
            recorder.Toggle(); // a record button wired to a recorder on an object with no client (it threw before)
            StringAssert.Contains("WorldRecorder needs a WorldBridgeClient: drag one into its Client field", recorder.Status);
        }
    }
}
