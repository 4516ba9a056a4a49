// One client connection to a WorldBridge host. IO runs on background threads so a game loop never blocks on the
// network; the game thread polls TryTakeFrame (only the newest frame is kept) and TryReceiveMessage.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Text;
using System.Threading;

namespace WorldBridge.Core
{
    public enum ConnectionState { Idle, Connecting, Ready, Reconnecting, Failed, Closed }

    public sealed class ConnectionOptions
    {
        public string Endpoint = "tcp://127.0.0.1:5555";
        public string Client = "worldbridge-csharp/" + Protocol.PluginVersion;
        public int ConnectTimeoutMs = 3000;         // for the TCP connect, and for hello → welcome by the clock
        public bool Reconnect = true;               // with backoff, resuming the session afterwards (or starting a
                                                    // fresh one with its StartOptions if the host lost it)
        public int ReconnectInitialMs = 250, ReconnectMaxMs = 5000;
        public long MaxMessageBytes = 64L << 20;    // refuse larger messages from the host
        public int MaxQueuedMessages = 1024;        // outgoing while disconnected, and incoming not yet read
    }

    public sealed class WorldBridgeConnection : IDisposable
    {
        static readonly HashSet<WorldBridgeConnection> open = new HashSet<WorldBridgeConnection>();

        public readonly ConnectionOptions Options;
        readonly BlockingCollection<Outgoing> outbox;
        readonly BlockingCollection<MsgMap> inbox;
        readonly ConcurrentQueue<MsgMap> deferred = new ConcurrentQueue<MsgMap>(); // passed over by WaitReply, read first
        readonly CancellationTokenSource cancel = new CancellationTokenSource();
        readonly ManualResetEventSlim ready = new ManualResetEventSlim(false);
        readonly ManualResetEventSlim stopping = new ManualResetEventSlim(false);
        readonly object frameLock = new object();
        readonly object dealerLock = new object();
        readonly object sendOrder = new object();   // a send and the withdrawal of its connection: not both at once
        readonly object requestOrder = new object(); // req_ids go out in the order they are taken: the newest start is the last sent
        Thread ioThread, sendThread;
        ZmtpDealer dealer;                          // the connection the send thread writes to: set only once the host
                                                    // welcomed it, so nothing of the queue can overtake hello or Restore
        WorldFrame latest;
        long resumeReqId = -1;
        long helloReqId = -1; // the newest hello's: only an error carrying it refuses the handshake (IO thread)
        volatile StartOptions resumedWith;          // the options of the session the resume asks for: started again if
                                                    // the host lost it (not those of a later start the host refused)
        long starts, startsSent, startsAtResume = -1; // Start calls queued, and sent by the send thread: one still queued
                                                      // at a reconnect replaces the resume
        volatile Tuple<long, StartOptions> restarted; // the req_id and options of the newest start a failed resume sent
        // starts that reached the socket and the host has not answered yet, by req_id: a reconnect sends the newest again
        readonly ConcurrentDictionary<long, StartOptions> unanswered = new ConcurrentDictionary<long, StartOptions>();
        long? lastEchoSeq;                          // IO thread only: the seq of the last frame seen
        readonly FrameRateMeter frameRate = new FrameRateMeter(); // IO thread only: arrival times of this session's frames
        double roundTripMs = -1, measuredFps;
        volatile MsgMap lastStatus;
        double? lastEchoTs;
        long reqId, seq, pendingSends, framesReceived, framesDropped, newestEpoch;
        volatile ConnectionState state = ConnectionState.Idle;
        volatile WelcomeInfo welcome;
        volatile SessionInfo session;
        volatile WorldSettings settings;
        volatile string lastError, mode = "realtime";

        public WorldBridgeConnection(ConnectionOptions options = null)
        {
            Options = options ?? new ConnectionOptions();
            ZmtpDealer.ParseEndpoint(Options.Endpoint); // fail now, on the caller's thread, with a clear message
            outbox = new BlockingCollection<Outgoing>(Options.MaxQueuedMessages);
            inbox = new BlockingCollection<MsgMap>(Options.MaxQueuedMessages);
        }

        public ConnectionState State => state;
        public bool IsReady => state == ConnectionState.Ready;
        public WelcomeInfo Welcome => welcome;
        public SessionInfo Session => session;
        /// <summary>The session's settings: from `session`, then from every `settings` answer (null before a session).</summary>
        public WorldSettings CurrentSettings => settings;
        /// <summary>"realtime" or "step": from the session, updated by `settings`.</summary>
        public string Mode => mode;
        /// <summary>Frames/s the session plays at now: the newest `settings` answer's fps (Settings(fps: …)), else the
        /// session's; 0 before a session.</summary>
        public double Fps
        {
            get
            {
                var s = session;
                return s == null ? 0 : settings?.Fps ?? s.Fps;
            }
        }
        public string LastError => lastError;
        public long FramesReceived => Interlocked.Read(ref framesReceived);
        /// <summary>Frames replaced in the slot before anyone took them (the game ran slower than the host).</summary>
        public long FramesDropped => Interlocked.Read(ref framesDropped);
        /// <summary>Ping → pong round trip in ms, from the newest pong's client_ts (any ping: Ping, or a keep-alive);
        /// -1 until a pong arrived.</summary>
        public double RoundTripMs => Volatile.Read(ref roundTripMs);
        /// <summary>Frames/s as they arrive from the host (the last FrameRateMeter.Window of this session), whether or
        /// not the game took them; 0 until two frames arrived.</summary>
        public double MeasuredFps => Volatile.Read(ref measuredFps);
        /// <summary>The host's newest `status` answer (protocol §status), null until one arrived.</summary>
        public MsgMap LastStatus => lastStatus;
        /// <summary>The options of start `reqId` when this connection sent it by itself: a failed resume starts the lost
        /// session afresh under a req_id no caller was given (FieldStart retries its refusal); null for any other req_id.</summary>
        public StartOptions RestartedWith(long? reqId)
        {
            var r = restarted;
            return r != null && r.Item1 == reqId ? r.Item2 : null;
        }

        // --- Lifecycle ---

        /// <summary>Starts the IO threads; hello is sent on every (re)connect. Returns at once.</summary>
        public void Connect()
        {
            if (ioThread != null) throw new InvalidOperationException("Connect was already called; make a new WorldBridgeConnection to connect again");
            lock (open) open.Add(this);
            state = ConnectionState.Connecting;
            ioThread = new Thread(RunIO) { IsBackground = true, Name = "WorldBridge IO" };
            sendThread = new Thread(RunSend) { IsBackground = true, Name = "WorldBridge send" };
            ioThread.Start();
            sendThread.Start();
        }

        /// <summary>Blocks until the host welcomed us (true) or the connection failed / timed out (false).</summary>
        public bool WaitReady(int timeoutMs)
        {
            var deadline = Protocol.NowMs + timeoutMs;
            while (state != ConnectionState.Failed && state != ConnectionState.Closed)
            {
                var left = deadline - Protocol.NowMs;
                if (left <= 0) return false;
                if (ready.Wait((int)Math.Min(left, 50))) return true;
            }
            return false;
        }

        /// <summary>Sends bye (after flushing queued messages for up to flushMs), closes the socket, joins the threads.</summary>
        public void Close(int flushMs = 200)
        {
            if (state == ConnectionState.Closed) return;
            var deadline = Protocol.NowMs + flushMs;
            while (Interlocked.Read(ref pendingSends) > 0 && state == ConnectionState.Ready && Protocol.NowMs < deadline) Thread.Sleep(2);
            state = ConnectionState.Closed;
            stopping.Set();
            cancel.Cancel();
            lock (dealerLock)
            {
                if (dealer != null && ready.IsSet)
                    try { dealer.Send(MsgPack.Encode(Protocol.Bye())); } catch (Exception) { }
                dealer?.Dispose();
                dealer = null;
            }
            ioThread?.Join(1000);
            sendThread?.Join(1000);
            lock (open) open.Remove(this);
        }

        public void Dispose() => Close();

        /// <summary>Closes every open connection: call it before a Unity domain reload and on quit.</summary>
        public static void CloseAll()
        {
            List<WorldBridgeConnection> all;
            lock (open) all = new List<WorldBridgeConnection>(open);
            foreach (var c in all) c.Close(0);
        }

        // --- Receiving (any thread, typically the game's main thread) ---

        /// <summary>Takes the newest frame, if one arrived since the last call.</summary>
        public bool TryTakeFrame(out WorldFrame frame)
        {
            lock (frameLock) { frame = latest; latest = null; }
            return frame != null;
        }

        /// <summary>Waits up to timeoutMs for a frame (for scripts and tests; a game loop uses TryTakeFrame).</summary>
        public bool WaitFrame(int timeoutMs, out WorldFrame frame)
        {
            var deadline = Protocol.NowMs + timeoutMs;
            lock (frameLock)
            {
                while (latest == null)
                {
                    var left = deadline - Protocol.NowMs;
                    if (left <= 0 || state == ConnectionState.Closed) { frame = null; return false; }
                    Monitor.Wait(frameLock, (int)Math.Ceiling(left));
                }
                frame = latest;
                latest = null;
                return true;
            }
        }

        /// <summary>Every message but frames (welcome, session, ok, error, status, pong, ...) in arrival order.</summary>
        public bool TryReceiveMessage(out MsgMap message, int timeoutMs = 0) =>
            deferred.TryDequeue(out message) || inbox.TryTake(out message, timeoutMs);

        /// <summary>
        /// Waits up to timeoutMs for the answer to request reqId (ok, session, status or pong) and returns it; an `error`
        /// answer throws WorldBridgeException (its Error.Kind says which, e.g. Unsupported). For scripts and tests: call it
        /// from the thread that reads messages; messages passed over meanwhile stay for TryReceiveMessage, in order.
        /// </summary>
        public MsgMap WaitReply(long reqId, int timeoutMs)
        {
            var deadline = Protocol.NowMs + timeoutMs;
            var passed = new List<MsgMap>();
            while (deferred.TryDequeue(out var earlier)) passed.Add(earlier); // an earlier WaitReply may have passed it over
            try
            {
                for (int i = 0; i < passed.Count; i++)
                    if (Answers(passed[i], reqId))
                    {
                        var found = passed[i];
                        passed.RemoveAt(i);
                        return Reply(found);
                    }
                while (true)
                {
                    var left = deadline - Protocol.NowMs;
                    if (left <= 0 || state == ConnectionState.Failed || state == ConnectionState.Closed)
                        throw new TimeoutException($"no answer to request {reqId} within {timeoutMs} ms ({state}" +
                                                   $"{(lastError != null ? ": " + lastError : "")})");
                    if (!inbox.TryTake(out var m, (int)Math.Min(left, 50))) continue;
                    if (Answers(m, reqId)) return Reply(m);
                    passed.Add(m);
                }
            }
            finally
            {
                foreach (var m in passed) deferred.Enqueue(m); // in arrival order, ahead of the inbox
            }
        }

        static bool Answers(MsgMap m, long reqId) => m.Has("req_id") && m.GetLong("req_id") == reqId && m.GetString("type") != "reject";

        static MsgMap Reply(MsgMap m) => m.GetString("type") == "error" ? throw new WorldBridgeException(HostError.From(m)) : m;

        // --- Requests (any thread; queued and sent by the send thread). Return the req_id or seq. ---

        public long Start(StartOptions options)
        {
            if (options == null) throw new ArgumentNullException(nameof(options));
            Protocol.CheckMode(options.Mode);
            Protocol.StartFps(options.Fps); // a rate no host plays is refused before a req_id is taken
            CheckSeed(options.Seed);
            lock (requestOrder)
            {
                var id = NextReqId();
                Enqueue(Protocol.Start(id, options), options); // may throw (too large, closed): then it is no start at all
                Interlocked.Increment(ref starts);
                return id;
            }
        }

        public long Input(int action) => SendInput(action);
        public long Input(string action) => SendInput(action ?? throw new ArgumentNullException(nameof(action)));

        public long Event(string eventType, string text = null) => Request(id => Protocol.Event(id, eventType, text));
        public long Reset(long? seed = null, string text = null, byte[] image = null, byte[] sketch = null)
        {
            CheckSeed(seed);
            return Request(id => Protocol.Reset(id, seed, text, image, sketch));
        }

        static void CheckSeed(long? seed)
        {
            if (seed < 0) throw new ArgumentException($"seed {seed} must be within 0-{long.MaxValue} (the host refuses others): " +
                                                      "use a non-negative seed, or none to let the host pick");
        }
        public long Branch(long frame) => Request(id => Protocol.Branch(id, frame));
        /// <summary>`eventCfg` (1.1): guidance on events, >= 0, 1 = off; only backends with event conditioning have it
        /// (CurrentSettings.HasEventGuidance). `topP` and `unmask` (1.2): the MaskGIT sampler's nucleus mass and unmasking
        /// order; nil in CurrentSettings for backends without them.</summary>
        public long Settings(int? steps = null, double? temperature = null, double? cfg = null, double? fps = null, string mode = null,
                             double? eventCfg = null, double? topP = null, string unmask = null) =>
            Request(id => Protocol.Settings(id, steps, temperature, cfg, fps, mode, eventCfg, topP, unmask));

        /// <summary>
        /// (1.1) Pastes a PNG layer (RGBA: alpha-composited) with its top-left corner at frame pixel (x, y) and lets the world
        /// go on from the edited frame. The host answers `ok` with `epoch` and `frame_index`, then re-sends the current frame
        /// edited, with the new epoch and events ["edit"]; or `error` Unsupported when the session's backend cannot edit
        /// (Session.Capabilities.CanEdit). With a session, the host's size and position rules are checked here first.
        /// </summary>
        public long Edit(byte[] png, int x, int y)
        {
            var s = session;
            if (s != null && s.Width > 0 && s.Height > 0) FramePixels.CheckEdit(png, x, y, s.Width, s.Height);
            return Request(id => Protocol.Edit(id, png, x, y));
        }
        public long RecordStart(string path = null) => Request(id => Protocol.RecordStart(id, path));
        public long RecordStop() => Request(Protocol.RecordStop);
        public long Status() => Request(Protocol.Status);
        public long Ping() => Request(id => Protocol.Ping(id, Protocol.NowMs));

        /// <summary>Asks for the host's status (LastStatus) and pings it (RoundTripMs), as the Godot addon's
        /// request_status does; returns the status req_id. Throws while no host has welcomed this client, so a Status
        /// button says why nothing came back.</summary>
        public long RequestStatus()
        {
            if (state != ConnectionState.Ready)
                throw new InvalidOperationException($"no host to ask for its status until its welcome (state: {state})");
            var id = Status();
            Ping();
            return id;
        }

        long SendInput(object action)
        {
            var s = Interlocked.Increment(ref seq);
            Enqueue(Protocol.Input(action, Protocol.NowMs, s));
            return s;
        }

        long Request(Func<long, MsgMap> build)
        {
            lock (requestOrder)
            {
                var id = NextReqId();
                Enqueue(build(id));
                return id;
            }
        }

        long NextReqId() => Interlocked.Increment(ref reqId);

        /// <summary>A message waiting for the socket; a start keeps its options, to be tracked from when it is sent.</summary>
        sealed class Outgoing
        {
            public byte[] Bytes;
            public long ReqId;
            public StartOptions Start;
        }

        void Enqueue(MsgMap message, StartOptions start = null)
        {
            if (state == ConnectionState.Closed || state == ConnectionState.Failed)
                throw new InvalidOperationException($"cannot send: the connection {(state == ConnectionState.Closed ? "was closed" : "failed")}" +
                                                    $"{(lastError != null ? " (" + lastError + ")" : "")}; make a new WorldBridgeConnection");
            var bytes = MsgPack.Encode(message);
            var limit = welcome?.MaxMessageBytes ?? 0;
            if (limit > 0 && bytes.Length > limit)
                throw new ArgumentException($"{message["type"]} message of {bytes.Length} bytes is over the host's {limit}-byte limit: {TooBigAdvice(message)}");
            Interlocked.Increment(ref pendingSends);
            if (!outbox.TryAdd(new Outgoing { Bytes = bytes, ReqId = message.GetLong("req_id", -1), Start = start }))
            {
                Interlocked.Decrement(ref pendingSends);
                throw new InvalidOperationException($"{Options.MaxQueuedMessages} messages are waiting for the host at {Options.Endpoint}: is it running?");
            }
        }

        /// <summary>What to shrink in a message over the host's limit: its biggest image, sketch, layer or text, so a long
        /// text prompt is not blamed on an image (the Godot addon's words).</summary>
        static string TooBigAdvice(MsgMap message)
        {
            string biggest = null;
            long most = 0;
            foreach (var key in new[] { "image", "sketch", "layer", "text" })
            {
                var value = message[key];
                long size = value is byte[] b ? b.Length : value is string t ? Encoding.UTF8.GetByteCount(t) : 0;
                if (size <= most) continue;
                biggest = key;
                most = size;
            }
            if (biggest == null) return "start the host with a larger `worldbridge serve --max-message-bytes`"; // the host's words
            return $"its {biggest} is {most} bytes: use a {(biggest == "text" ? "shorter" : "smaller")} {biggest}";
        }

        // --- Threads ---

        void RunSend()
        {
            var lastSent = Protocol.NowMs;
            try
            {
                while (true)
                {
                    if (!outbox.TryTake(out var item, 1000, cancel.Token))
                    {
                        if (KeepaliveDue(lastSent)) KeepAlive();
                        continue;
                    }
                    while (true) // keep the message until a live connection took it (a reconnect may be under way)
                    {
                        ready.Wait(cancel.Token);
                        bool sent;
                        lock (sendOrder)
                        {
                            ZmtpDealer d;
                            lock (dealerLock) d = dealer;
                            sent = d != null && TrySend(d, item);
                        }
                        if (sent) break;
                        stopping.Wait(20);
                    }
                    lastSent = Protocol.NowMs;
                    Interlocked.Decrement(ref pendingSends);
                }
            }
            catch (OperationCanceledException) { }
        }

        /// <summary>A start counts as awaiting its answer from before its bytes go out (an answer may come back at once),
        /// and as sent once they did; one that failed to go out stays queued.</summary>
        bool TrySend(ZmtpDealer d, Outgoing item)
        {
            if (item.Start != null) unanswered[item.ReqId] = item.Start;
            try { d.Send(item.Bytes); }
            catch (Exception e)
            {
                if (item.Start != null) unanswered.TryRemove(item.ReqId, out _);
                lastError = "send failed: " + e.Message;
                return false;
            }
            if (item.Start != null) Interlocked.Increment(ref startsSent);
            return true;
        }

        /// <summary>The host closes a session whose client sent nothing for idle_timeout_s (a paused game in step mode,
        /// a user reading the editor's preview): past a third of that, a ping keeps it open (its pong is a message).</summary>
        bool KeepaliveDue(double lastSentMs)
        {
            var w = welcome;
            return session != null && ready.IsSet && w != null && w.IdleTimeoutS > 0 && Protocol.NowMs - lastSentMs > w.IdleTimeoutS * 1000 / 3;
        }

        void KeepAlive()
        {
            try { Ping(); }
            catch (InvalidOperationException) { } // closing, or the outbox is full: nothing to keep alive
        }

        void RunIO()
        {
            var backoff = new ReconnectBackoff { InitialMs = Options.ReconnectInitialMs, MaxMs = Options.ReconnectMaxMs };
            bool fatal = false;
            while (!stopping.IsSet && !fatal)
            {
                ZmtpDealer d = null;
                try
                {
                    var props = new[] { new KeyValuePair<string, string>("X-Client", Options.Client) };
                    d = ZmtpDealer.Connect(Options.Endpoint, Options.ConnectTimeoutMs, props, cancel.Token); // Close() aborts it
                    d.MaxMessageBytes = Options.MaxMessageBytes;
                    while (!stopping.IsSet) // greets again on this connection when the host forgot this peer (not_ready)
                    {
                        fatal = !Handshake(d);
                        if (fatal) break;
                        backoff.Reset();
                        lock (dealerLock)
                        {
                            if (stopping.IsSet) break;
                            dealer = d;
                            state = ConnectionState.Ready;
                            ready.Set();
                        }
                        while (!stopping.IsSet && Dispatch(d, d.Receive())) { }
                        Withdraw(d);
                    }
                }
                catch (Exception e)
                {
                    if (!stopping.IsSet) lastError = e.Message;
                    if (e is ZmtpException z && z.Fatal) fatal = true;
                }
                finally
                {
                    ready.Reset();
                    lock (dealerLock) { if (dealer == d) dealer = null; }
                    d?.Dispose();
                }
                if (stopping.IsSet || fatal || !Options.Reconnect) break;
                state = ConnectionState.Reconnecting;
                stopping.Wait(backoff.NextDelayMs());
            }
            if (state != ConnectionState.Closed) state = fatal || !Options.Reconnect ? ConnectionState.Failed : ConnectionState.Closed;
            lock (frameLock) Monitor.PulseAll(frameLock);
        }

        /// <summary>hello → welcome (or reject, or an error answering this hello: fatal), then Restore what the game asked for
        /// before a reconnect; on the IO thread alone, before the send thread can see the connection. Close (cancel) ends it.</summary>
        bool Handshake(ZmtpDealer d)
        {
            // a --heartbeat host's PINGs reset the read timeout, so the whole exchange gets ConnectTimeoutMs by the clock
            using (var deadline = new CancellationTokenSource(Options.ConnectTimeoutMs))
            using (deadline.Token.Register(d.Dispose))
            using (cancel.Token.Register(d.Dispose))
            {
                try { return Greet(d); }
                catch (Exception) when (deadline.IsCancellationRequested && !stopping.IsSet)
                {
                    throw new TimeoutException($"the host at {Options.Endpoint} did not answer hello within {Options.ConnectTimeoutMs} ms " +
                                               "(ConnectTimeoutMs): is it a WorldBridge host, and not overloaded?");
                }
            }
        }

        /// <summary>The host forgot this peer: the send thread loses the connection until the new welcome, so nothing but
        /// hello reaches the host before it (what it sent already is answered not_ready, before the welcome).</summary>
        void Withdraw(ZmtpDealer d)
        {
            if (stopping.IsSet) return;
            lock (sendOrder)
            {
                lock (dealerLock) { if (dealer == d) dealer = null; }
                ready.Reset();
            }
            state = ConnectionState.Connecting;
            d.SetReceiveTimeout(Options.ConnectTimeoutMs);
        }

        bool Greet(ZmtpDealer d)
        {
            d.Send(MsgPack.Encode(Protocol.Hello(Options.Client, new[] { "raw" }, helloReqId = NextReqId())));
            while (true)
            {
                var parts = d.Receive(); // the handshake read timeout (ConnectTimeoutMs) still applies here
                var m = MsgPack.DecodeHeader(parts[0]);
                var type = m.GetString("type");
                if (type == "error" && m.GetLong("req_id", -2) != helloReqId) // answers what was sent before this hello
                {
                    // not_ready, or a refusal the host makes before it looks for a peer (too_large): a start refused so is
                    // answered, and Restore must not send it again
                    if (m.GetString("code") != "not_ready" && m.Has("req_id")) unanswered.TryRemove(m.GetLong("req_id"), out _);
                    Post(m);
                    continue;
                }
                if (type == "reject" || type == "error") // e.g. bad_message for a client name over 4096 bytes: retrying cannot help
                {
                    lastError = m.GetString("message", type == "reject" ? "the host rejected this client" : "the host refused hello");
                    Post(m);
                    return false;
                }
                if (type != "welcome") continue;
                var w = WelcomeInfo.From(m);
                if (w.ProtocolMajor != Protocol.Major)
                {
                    lastError = $"host speaks protocol {w.ProtocolMajor}.{w.ProtocolMinor}, this plugin speaks {Protocol.Major}.{Protocol.Minor}: update the plugin or the host";
                    return false;
                }
                welcome = w;
                Post(m);
                Restore(d);
                d.SetReceiveTimeout(0);
                return true;
            }
        }

        /// <summary>
        /// After a reconnect, the world the game asked for last: a Start still queued goes out as it is, once (it replaces
        /// the lost session: no resume); else a start that reached the old connection unanswered is sent again, with its
        /// req_id; else the session we had is resumed.
        /// </summary>
        void Restore(ZmtpDealer d)
        {
            bool queued = Interlocked.Read(ref starts) > Interlocked.Read(ref startsSent);
            long newest = -1;
            foreach (var id in unanswered.Keys) newest = Math.Max(newest, id);
            unanswered.TryGetValue(newest, out var again);
            unanswered.Clear(); // the old connection's answers never come: a new connection is a new peer to the host
            var s = session;
            if (queued || again != null) session = s = null;
            if (!queued && again != null) SendStart(d, newest, again);
            else if (s != null)
            {
                Interlocked.Exchange(ref startsAtResume, Interlocked.Read(ref starts));
                resumedWith = s.StartedWith;
                var id = NextReqId();
                Interlocked.Exchange(ref resumeReqId, id);
                d.Send(MsgPack.Encode(Protocol.Resume(id, s.SessionId)));
            }
        }

        /// <summary>A start from the IO thread (a reconnect, a failed resume), awaiting its answer like a queued one.</summary>
        void SendStart(ZmtpDealer d, long id, StartOptions options)
        {
            unanswered[id] = options;
            d.Send(MsgPack.Encode(Protocol.Start(id, options)));
        }

        /// <summary>Handles one message from the host; false when it answered not_ready, i.e. forgot this peer (idle
        /// before a start, or restarted): then the caller greets it again, and Restore repeats a start it refused.</summary>
        bool Dispatch(ZmtpDealer d, List<byte[]> parts)
        {
            MsgMap m;
            try { m = MsgPack.DecodeHeader(parts[0]); }
            catch (FormatException e) { lastError = "ignored a malformed message from the host: " + e.Message; return true; }
            var type = m.GetString("type");
            if (type == "frame") { OnFrame(m, parts.Count > 1 ? parts[1] : null); return true; }
            if (type == "error" && m.GetString("code") == "not_ready") // a start it refused stays unanswered: sent again
            {
                lastError = HostError.From(m).Explained;
                Post(m);
                return false;
            }
            if (type == "pong" && m.Has("client_ts")) Volatile.Write(ref roundTripMs, Protocol.NowMs - m.GetDouble("client_ts"));
            else if (type == "status") lastStatus = m;
            StartOptions answered = null;
            if ((type == "session" || type == "error") && m.Has("req_id")) unanswered.TryRemove(m.GetLong("req_id"), out answered);
            if (type == "session")
            {
                var s = SessionInfo.From(m, welcome);
                s.StartedWith = s.Resumed ? session?.StartedWith : answered;
                Interlocked.Exchange(ref newestEpoch, s.Epoch);
                lock (frameLock) latest = null; // frames of the previous session are stale
                frameRate.Clear();
                mode = s.Mode;
                settings = s.TypedSettings;
                session = s;
            }
            else if (type == "ok" && m.Has("epoch") && (m.GetString("request") == "reset" || m.GetString("request") == "branch" ||
                                                        m.GetString("request") == "edit"))
                AdoptEpoch(m.GetLong("epoch"));
            else if (type == "ok" && m.GetString("request") == "settings")
            {
                var map = m.GetMap("settings");
                if (map != null)
                {
                    settings = WorldSettings.From(map);
                    if (map.Has("mode")) mode = map.GetString("mode");
                }
            }
            else if (type == "error" && m.GetString("code") == "unknown_session" && AnswersResume(m))
            {
                session = null;
                // the session we tried to resume is gone (the host restarted, or it timed out): start a fresh one with its
                // own options, as Godot does, unless the game called Start since the resume (its start is on the way: one
                // world, not two)
                if (resumedWith != null && Interlocked.Read(ref starts) == Interlocked.Read(ref startsAtResume))
                {
                    var id = NextReqId();
                    restarted = Tuple.Create(id, resumedWith); // before it goes: its answer may come at once
                    SendStart(d, id, resumedWith);
                }
            }
            else if (type == "error" && m.GetBool("fatal")) session = null;
            Post(m);
            return true;
        }

        /// <summary>True when `m` answers the newest resume: only that unknown_session says the session is gone (as in
        /// Godot); any other leaves the running session be.</summary>
        public bool AnswersResume(MsgMap m) => m.GetLong("req_id", -2) == Interlocked.Read(ref resumeReqId);

        /// <summary>The `ok` for reset/branch/edit comes before the new epoch's first frame: older frames, in the slot or
        /// still on the way, are stale from now on (as Godot drops them).</summary>
        void AdoptEpoch(long epoch)
        {
            lock (frameLock)
            {
                if (epoch <= Interlocked.Read(ref newestEpoch)) return;
                Interlocked.Exchange(ref newestEpoch, epoch);
                if (latest != null && latest.Epoch < epoch) latest = null;
            }
        }

        void OnFrame(MsgMap header, byte[] payload)
        {
            WorldFrame f;
            try { f = WorldFrame.From(header, payload); }
            catch (FormatException e) { lastError = e.Message; return; }
            var s = session;
            if (s != null && f.SessionId != s.SessionId) return;       // from a session we already left
            if (f.Epoch < Interlocked.Read(ref newestEpoch)) return;    // from before a reset/branch
            Interlocked.Exchange(ref newestEpoch, f.Epoch);
            Volatile.Write(ref measuredFps, frameRate.Add(f.ReceivedMs));
            // frames echo the input in force: only the first one with a new seq measures its latency, and frames
            // that echo nothing (start, reset, branch, edit) leave the input in force as it was
            if (f.ClientTs.HasValue)
            {
                if (f.Seq.HasValue ? f.Seq == lastEchoSeq : f.ClientTs == lastEchoTs) f.LatencyMs = null;
                lastEchoSeq = f.Seq;
                lastEchoTs = f.ClientTs;
            }
            lock (frameLock)
            {
                if (latest != null)
                {
                    Interlocked.Increment(ref framesDropped);
                    if (!f.LatencyMs.HasValue) f.LatencyMs = latest.LatencyMs; // the replaced frame's sample is the input's
                    // a replaced frame's event captions would be lost: carry them into the newer frame
                    if (latest.Events.Length > 0 && latest.Epoch == f.Epoch)
                    {
                        var merged = new string[latest.Events.Length + f.Events.Length];
                        latest.Events.CopyTo(merged, 0);
                        f.Events.CopyTo(merged, latest.Events.Length);
                        f.Events = merged;
                    }
                }
                latest = f;
                Interlocked.Increment(ref framesReceived);
                Monitor.PulseAll(frameLock);
            }
        }

        void Post(MsgMap m)
        {
            while (!inbox.TryAdd(m)) inbox.TryTake(out _); // nobody reads: keep the newest
        }
    }

    /// <summary>Frames/s over the newest Window arrival times, as the Godot addon measures fps_measured.</summary>
    public sealed class FrameRateMeter
    {
        public const int Window = 30;
        readonly Queue<double> times = new Queue<double>(Window + 1);
        double fps;

        /// <summary>Records a frame that arrived at `nowMs` and returns the rate (0 until two frames).</summary>
        public double Add(double nowMs)
        {
            times.Enqueue(nowMs);
            if (times.Count > Window) times.Dequeue();
            if (times.Count > 1) fps = 1000.0 * (times.Count - 1) / Math.Max(nowMs - times.Peek(), 0.001);
            return fps;
        }

        /// <summary>A new session counts afresh; the last rate stands until its second frame.</summary>
        public void Clear() => times.Clear();
    }

    /// <summary>Reconnect delays: doubling from InitialMs up to MaxMs, back to InitialMs after a success.</summary>
    public sealed class ReconnectBackoff
    {
        public int InitialMs = 250, MaxMs = 5000;
        int attempt;

        public int NextDelayMs()
        {
            long delay = (long)InitialMs << Math.Min(attempt, 20);
            attempt++;
            return (int)Math.Min(delay, MaxMs);
        }

        public void Reset() => attempt = 0;
    }
}
