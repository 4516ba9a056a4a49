"""The world host: one ROUTER socket, one thread, a poller timed to the next realtime tick, many sessions."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import zmq

from bridge.backend import StepRefused, close_backend
from bridge.host import protocol as P
from bridge.host.backends import BackendPool, BackendSpec, announce, as_spec
from bridge.host.clock import clock, now_ms
from bridge.host.pixels import encode_pixels
from bridge.host.protocol import Limits, ProtocolError
from bridge.host.recording import Recorder
from bridge.host.session import Produced, Session, build_prompt, prompt_keys
from bridge.values import is_int, plural

log = logging.getLogger("worldbridge.host")

MAX_OUTBOX = 4096  # queued replies/step frames for one peer before the host gives up on it
MAX_OUTBOX_BYTES = 64 * 1024 * 1024  # ... or their bytes: a peer that reads nothing must not fill the host's memory
MAX_STEP_QUEUE = 1024  # step-mode inputs waiting for their frame, per session
BATCH_SLACK_S = 0.002  # realtime ticks this close together run as one batch (sessions start a fraction of a ms apart)
MAX_HELD = 1024  # messages (at most 4 x max_message_bytes) a peer may send while its `start`/`reset` loads; run after it


@dataclass
class Peer:
    """A connected client (a DEALER routing id) that completed `hello`."""

    codec: str = "raw"
    client: str = ""
    minor: int = 0  # the protocol minor version its hello spoke
    session: Session | None = None
    last_seen: float = field(default_factory=clock)
    outbox: deque = field(default_factory=deque)  # [parts] that hit the high-water mark and must not be dropped
    outbox_bytes: int = 0
    pending: LoadJob | None = None  # a `start`/`reset` loading on a loader thread (its own, or a held resume's)
    held: deque = field(default_factory=deque)  # (header bytes, size) received meanwhile, handled after it
    waiting: deque = field(default_factory=deque)  # (header bytes, size) behind its session's queued step inputs

    def queue(self, parts: list) -> None:
        self.outbox.append(parts)
        self.outbox_bytes += sum(len(x) for x in parts)

    def sent_first(self) -> None:
        self.outbox_bytes -= sum(len(x) for x in self.outbox.popleft())


@dataclass
class LoadJob:
    """A `start` or a `reset` whose world a loader thread builds, so the loop thread never waits: a `start`'s backend
    (maybe a checkpoint to load) and either one's frame 0 (a world model re-tokenizes its prompt)."""

    rid: bytes
    peer: Peer
    msg: dict
    prompt: Any  # bridge.backend.Prompt
    received: float  # perf_counter when the message arrived (frame 0's `total` timing counts from here)
    session: Session | None = None  # a `reset`'s session from the outset; a `start`'s once the loader made it
    source: str = "start"  # or "reset"
    wire: bytes = b""  # a `reset` as received, for the session's recording
    produced: Produced | None = None
    error: BaseException | None = None
    done: bool = False  # set under the host's notify lock, last


def is_loopback(endpoint: str) -> bool:
    """True for endpoints only this machine can reach (ipc, inproc, tcp on 127.x / ::1 / localhost)."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    host = urlparse(endpoint.replace("tcp://", "tcp-x://", 1)).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


WINDOWS_RESERVED = frozenset(["CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                              *(f"LPT{i}" for i in range(1, 10))])
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def recording_path(text: str, windows: bool | None = None, anywhere: bool = False) -> str:
    """A client's record_start path with `/` between folders, refused (bad_argument) unless it is a file name every
    OS can hold: a recording made on one host must open on another, and a Windows client writes `\\`. A Windows
    host takes a network share (UNC) only when it records `anywhere`, and refuses it from its text: looking up a share
    that does not answer would stall every session."""
    for ch in text:
        if ch < " " or ch == "\x7f":
            what = "a NUL byte" if ch == "\0" else f"a control character ({ch!r})"
            raise ProtocolError("bad_argument", f"recording path {text!r} holds {what}: remove it")
    if m := SCHEME.match(text):
        raise ProtocolError("bad_argument", f"recording path {text!r} is a {m.group(0)} path, but recordings are "
                                            "written on the host, relative to its recordings folder: send a relative "
                                            "path such as a.wbrec (or leave `path` out for the default name)")
    path = text.replace("\\", "/")
    windows = sys.platform == "win32" if windows is None else windows
    drive = path[:2] if windows and re.match(r"[A-Za-z]:/", path) else ""  # the Windows host's own disk
    if windows and path[:4] in ("//./", "//?/"):
        raise ProtocolError("bad_argument", f"recording path {text!r} is a Windows device path, not a file: send a "
                                            "relative path such as a.wbrec")
    if windows and path.startswith("//") and not anywhere:
        raise ProtocolError("bad_argument", f"recording path {text!r} is a network (UNC) path, but a record_start path "
                                            "is relative to the host's --recordings folder: send a relative path such "
                                            "as a.wbrec (a host started with --record-anywhere, on loopback only, "
                                            "takes any path its user can write, a share included)")
    for ch in ':<>"|?*':
        if ch in path[len(drive):]:
            raise ProtocolError("bad_argument", f"recording path {text!r} holds {ch!r}, which Windows refuses in a "
                                                "file name: remove it (folders are separated by /)")
    for part in path[len(drive):].split("/"):
        if part not in ("", ".", "..") and part[-1] in ". ":
            raise ProtocolError("bad_argument", f"recording path {text!r} has a name ending in a dot or space "
                                                f"({part!r}), which Windows drops: remove it")
        if (stem := part.split(".")[0].rstrip(" ").upper()) in WINDOWS_RESERVED:
            raise ProtocolError("bad_argument", f"recording path {text!r} uses {stem}, a device name on Windows "
                                                "(CON, PRN, AUX, NUL, COM1-9, LPT1-9, with any extension): pick "
                                                "another name")
    return path


def ipc_refused(bind: str) -> str | None:
    """Why an ipc:// `bind` cannot work here (a libzmq built without it, as Windows' often is), else None."""
    if bind.startswith("ipc://") and not zmq.has("ipc"):
        return (f"this ZeroMQ (libzmq {zmq.zmq_version()}) has no ipc:// transport, so --bind {bind} cannot work: "
                "use tcp://127.0.0.1:PORT")
    return None


def fine_timers(on: bool, windows: bool | None = None, winmm: Any = None) -> None:
    """On Windows, ask for 1 ms timers while the host serves (False: give them back), so zmq's poll timeouts are not
    rounded up to the 15.6 ms default; elsewhere nothing. `winmm`: ctypes.windll.winmm unless given."""
    if not (sys.platform == "win32" if windows is None else windows):
        return
    if winmm is None:
        import ctypes

        winmm = getattr(getattr(ctypes, "windll", None), "winmm", None)
    if winmm is not None:  # always there on Windows; its absence only costs frame-time precision
        (winmm.timeBeginPeriod if on else winmm.timeEndPeriod)(1)


class Host:
    """Serves WorldBridge protocol v1 on one ROUTER socket; `run()` blocks until `stop()`."""

    def __init__(self, backend: Any = None, bind: str = P.DEFAULT_ADDRESS, limits: Limits | None = None,
                 curve_secret: str | Path | None = None, heartbeat: bool = False, heartbeat_ivl_ms: int = 1000,
                 sndhwm: int = 4,
                 sndbuf: int = 256 * 1024, recordings_dir: str | Path = "recordings", record_anywhere: bool = False,
                 context: zmq.Context | None = None):
        self.spec: BackendSpec = as_spec(backend)
        self.pool = BackendPool(self.spec)
        self.limits = limits or Limits()
        self.recordings_dir = Path(recordings_dir)
        self.loopback = is_loopback(bind)
        if not self.loopback and curve_secret is None:
            raise ValueError(f"binding {bind} exposes the host beyond this machine: create keys with "
                             "`worldbridge keys --out keys` and pass --curve-secret keys/host.key_secret")
        if record_anywhere and not self.loopback:
            raise ValueError(f"--record-anywhere is for hosts bound to loopback only: clients reaching {bind} from "
                             "other machines always record inside --recordings")
        self.record_anywhere = record_anywhere  # record_start may write any path the host's user can (else: inside)
        self.ctx = context or zmq.Context()
        self._own_ctx = context is None
        self._opened: list[zmq.Socket] = []
        try:
            self._open_sockets(bind, curve_secret, heartbeat, heartbeat_ivl_ms, sndhwm, sndbuf)
        except BaseException:  # a bad key file, a taken port: close what was opened, so a later host in this process
            self._close_sockets()  # binds and terminates cleanly
            raise
        self._loaded_lock = threading.Lock()
        self.pending: list[LoadJob] = []
        self._stopping = threading.Event()
        self.peers: dict[bytes, Peer] = {}
        self.orphans: dict[bytes, deque] = {}  # replies to peers without a Peer record (reject, pong, not_ready)
        self.sessions: dict[str, Session] = {}
        self.stats = {"messages": 0, "bad_messages": 0, "frames_sent": 0, "frames_dropped": 0}
        self.default_kind = self.spec.kind

    def _socket(self, kind: int) -> zmq.Socket:
        """A socket of the host's context, remembered so that a failed construction closes it."""
        sock = self.ctx.socket(kind)
        self._opened.append(sock)
        return sock

    def _open_sockets(self, bind: str, curve_secret: str | Path | None, heartbeat: bool, heartbeat_ivl_ms: int,
                      sndhwm: int, sndbuf: int) -> None:
        """Open and bind the ROUTER socket and the loop's wake and loader pairs."""
        self.sock = self._socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # unknown peer -> EHOSTUNREACH, full pipe -> EAGAIN
        self.sock.setsockopt(zmq.SNDHWM, sndhwm)  # small: a slow client gets the newest frame, not a backlog
        self.sock.setsockopt(zmq.SNDBUF, sndbuf)
        self.sock.setsockopt(zmq.RCVHWM, 1000)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, 2 * self.limits.max_message_bytes)  # hard cap: drop the connection
        if heartbeat:
            self.sock.setsockopt(zmq.HEARTBEAT_IVL, heartbeat_ivl_ms)
            self.sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5 * heartbeat_ivl_ms)
            self.sock.setsockopt(zmq.HEARTBEAT_TTL, 10 * heartbeat_ivl_ms)
        if curve_secret is not None:
            from zmq.auth import load_certificate

            public, secret = load_certificate(str(curve_secret))
            if secret is None:
                raise ValueError(f"{curve_secret} holds no secret key: pass the host.key_secret file")
            self.sock.curve_server = True
            self.sock.curve_publickey, self.sock.curve_secretkey = public, secret
        if (why := ipc_refused(bind)) is not None:
            raise OSError(why)
        try:
            self.sock.bind(bind)
        except zmq.ZMQError as e:
            taken = "; is another host running? pick another port with --bind" if e.errno == zmq.EADDRINUSE else ""
            raise OSError(f"cannot bind {bind}: {e.strerror}{taken}") from None
        self.address: str = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._wake_addr = f"inproc://worldbridge-host-{id(self)}"
        self._wake_rx = self._socket(zmq.PAIR)
        self._wake_rx.bind(self._wake_addr)
        # loader threads say "a start or reset finished" through this pair; the lock keeps its one sending socket safe
        self._loaded_rx = self._socket(zmq.PAIR)
        self._loaded_rx.bind(self._wake_addr + "-loaded")
        self._loaded_tx: zmq.Socket | None = self._socket(zmq.PAIR)
        self._loaded_tx.setsockopt(zmq.LINGER, 0)
        self._loaded_tx.connect(self._wake_addr + "-loaded")

    def _close_sockets(self) -> None:
        """Close every socket the host opened, then its own context (never one it was given)."""
        for sock in self._opened:
            sock.close(0)
        if self._own_ctx:
            self.ctx.term()

    # --- lifecycle ---

    def stop(self) -> None:
        """Ask the loop to end (thread-safe) and wait for nothing; `run()` returns soon after."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        try:
            wake = self.ctx.socket(zmq.PAIR)
        except zmq.ZMQError:  # the loop already ended and terminated the context
            return
        wake.setsockopt(zmq.LINGER, 0)
        wake.connect(self._wake_addr)
        try:
            wake.send(b"", zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        wake.close(0)

    def close(self) -> None:
        with self._loaded_lock:  # loads still running close their own backend when they finish (see _load)
            self._loaded_tx.close(0)
            self._loaded_tx = None
            finished = [job for job in self.pending if job.done and job.error is None and job.source == "start"]
            resetting = [job.session for job in self.pending if not job.done and job.source == "reset"]
        for job in finished:
            close_backend(job.session.backend)
        for s in list(self.sessions.values()):
            self._close_session(s, notify=None, free=all(s is not r for r in resetting))
        self._close_sockets()

    def run(self) -> None:
        """The loop: poll until the next realtime tick or due sync (never busy), then message, step, tick, flush."""
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        poller.register(self._loaded_rx, zmq.POLLIN)
        every = min(1.0, self.limits.idle_timeout_s / 4)
        next_housekeeping = clock() + every
        fine_timers(True)
        try:
            while not self._stopping.is_set():
                events = dict(poller.poll(self._timeout_ms(next_housekeeping)))
                if self._wake_rx in events:
                    break
                if self._loaded_rx in events:
                    while self._loaded_rx.poll(0):
                        self._loaded_rx.recv()
                self._finish_loads()
                if self.sock in events:
                    self._drain()
                self._run_step_inputs()
                self._run_ticks()
                self._flush_outboxes()
                self._sync_recordings()
                if clock() >= next_housekeeping:
                    self._housekeeping()
                    next_housekeeping = clock() + every
        finally:
            fine_timers(False)
            self.close()

    def _timeout_ms(self, next_housekeeping: float) -> int:
        """Sleep until the earliest realtime tick / recording sync / housekeeping; 0 while step inputs wait; short while
        outboxes wait."""
        now = clock()
        if any(s.step_inputs for s in self.sessions.values()):
            return 0
        deadline = next_housekeeping
        for s in self._ticking():
            deadline = min(deadline, s.next_tick)
        for s in self.sessions.values():
            if s.recorder is not None:
                deadline = min(deadline, s.recorder.sync_due())
        wait = max(0.0, deadline - now) * 1000.0
        if self.orphans or any(p.outbox for p in self.peers.values()):
            wait = min(wait, 2.0)
        return int(wait) if wait >= 1.0 or wait == 0.0 else 1

    # --- receiving ---

    def _drain(self, budget: int = 512) -> None:
        """Handle every queued message (bounded, so ticks still run under a flood)."""
        for _ in range(budget):
            try:
                parts = self._recv()
            except zmq.Again:
                return
            if parts is not None:
                self._handle(*parts)

    def _recv(self) -> tuple[bytes, bytes, int] | None:
        """(routing id, header bytes, total size); extra parts are read and discarded."""
        rid = self.sock.recv(zmq.NOBLOCK)
        body, size, n = b"", 0, 0
        while self.sock.getsockopt(zmq.RCVMORE):
            part = self.sock.recv()
            if n == 0:
                body = part
            size += len(part)
            n += 1
        return rid, body, size

    def _handle(self, rid: bytes, data: bytes, size: int, parked: str = "") -> None:
        """One message; `parked`: "held" when it waited for a loading `start`/`reset`, "waiting" when it waited behind
        its session's step inputs (its turn has come). A parked message acts as if it arrived now, so once a parked
        `bye` (or a rejected `hello`) has ended its peer, the rest arrive as from a new connection."""
        if not parked:
            self.stats["messages"] += 1
        peer = self.peers.get(rid)
        if peer is not None:
            peer.last_seen = clock()
            if peer.session is not None:  # any message from the session's client counts, ping and status too
                peer.session.last_seen = peer.last_seen
        req_id, raw, refused = None, None, None
        try:
            try:  # read now, refuse in turn: the answer to a bad message must not overtake earlier answers
                if size > self.limits.max_message_bytes:  # libzmq already refused anything over twice the limit
                    header = None
                    try:  # so the client's wait for this request ends with it, and it learns what to shrink
                        header = P.decode(data)
                        req_id = P.req_id_of(header)
                    except ProtocolError:
                        pass
                    raise P.too_large(size, self.limits.max_message_bytes, header, self.limits.max_string_bytes)
                raw = P.decode(data, self.limits.max_message_bytes)
                req_id = P.req_id_of(raw)
            except ProtocolError as e:
                refused = e
            mtype = raw["type"] if raw is not None else None
            if peer is not None and peer.pending is not None:  # even `ping`: a client may use it as a barrier
                # keep order: they act on the world the `start` or `reset` makes
                return self._park(peer.held, data, size, f"for the `{peer.pending.source}` that is loading: wait "
                                                         "for its answer")
            if parked != "waiting" and peer is not None and (peer.waiting or (
                    mtype != "input" and peer.session is not None and peer.session.step_inputs)):
                # keep order: earlier step inputs make their frames first, one a loop like everyone's, so a burst of
                # inputs and a `ping` cannot stall the other sessions until the burst is done
                return self._park(peer.waiting, data, size, "for your step inputs' frames: read them")
            if refused is not None:
                raise refused
            if mtype == "hello":
                return self._on_hello(rid, raw)
            if mtype == "ping":
                msg = P.validate(raw, self.limits)
                return self._send(rid, [P.encode(P.pong(msg["req_id"], msg["client_ts"], now_ms()))], force=True)
            if mtype not in P.SCHEMAS:
                return  # unknown types are ignored (a newer minor version may add them)
            if peer is None:
                raise ProtocolError("not_ready", "send `hello` first")
            msg = P.validate(raw, self.limits)
            if mtype == "bye":
                return self._on_bye(rid, peer)
            if mtype == "start":
                return self._on_start(rid, peer, msg, data, size)
            if mtype == "status":
                return self._send(rid, [P.encode(self._status(peer, req_id))])
            session = peer.session
            if session is None:
                raise ProtocolError("no_session", f"`{mtype}` needs a session: send `start` first")
            if mtype == "input":
                return self._on_input(rid, session, msg, data)
            getattr(self, f"_on_{mtype}")(rid, session, msg, data)
        except ProtocolError as e:
            self.stats["bad_messages"] += 1
            if e.code == "not_ready" and peer is None and len(self.peers) >= self.limits.max_peers:
                return
            self._send(rid, [P.encode(_refusal(peer, e, req_id))],
                       force=peer is None)
            if e.fatal and peer is not None and peer.session is not None:
                self._close_session(peer.session, notify=None)
        except Exception as e:  # a backend failure must never take the host down
            log.exception("error while handling a message")
            self._send(rid, [P.encode(P.error("backend_error", f"{type(e).__name__}: {e}", req_id))],
                       force=peer is None)

    # --- handlers ---

    def _park(self, queue: deque, data: bytes, size: int, behind: str) -> None:
        """Keep a message to handle later, in order; bounded, so a client cannot pile up the host's memory meanwhile."""
        parked = sum(n for _, n in queue) + size
        if len(queue) >= MAX_HELD or parked > 4 * self.limits.max_message_bytes:
            raise ProtocolError("busy", f"{plural(len(queue), 'message')} ({plural(parked, 'byte')}) already wait {behind} before "
                                        "sending more")
        queue.append((data, size))

    def _on_hello(self, rid: bytes, raw: dict) -> None:
        major, minor = raw.get("protocol_major"), raw.get("protocol_minor")
        if not (is_int(major) and major >= 0):  # a malformed hello, not another version (§5)
            raise ProtocolError("bad_message", f"hello needs `protocol_major` as an unsigned int, got {major!r}")
        if major != P.PROTOCOL_MAJOR:
            peer = self.peers.get(rid)
            self._peer_gone(rid)  # its session stays resumable, as after a lost connection
            self._keep_owed(rid, peer)
            self._send(rid, [P.encode(P.reject(major, minor))], force=True)
            return
        msg = P.validate(raw, self.limits)
        peer = self.peers.get(rid)
        if peer is None:
            self._evict_peers()
            peer = self.peers[rid] = Peer()
            for parts in self.orphans.pop(rid, ()):
                peer.queue(parts)
        peer.codec = P.choose_codec(msg["codecs"])
        peer.client = msg["client"] or ""
        peer.minor = msg["protocol_minor"] or 0
        self._send(rid, [P.encode(P.welcome(peer.codec, self.pool.names, self.default_kind, self.limits))])

    def _on_bye(self, rid: bytes, peer: Peer) -> None:
        if peer.session is not None:
            self._close_session(peer.session, notify=None)
        self.peers.pop(rid, None)
        self._keep_owed(rid, peer)

    def _keep_owed(self, rid: bytes, peer: Peer | None) -> None:
        """A peer ended while its connection stays (`bye`, a rejected `hello`): the replies still waiting in its outbox
        go out first, in order, as replies to a connection without a peer do (a new `hello` takes them back)."""
        if peer is not None and peer.outbox and (rid in self.orphans or len(self.orphans) < self.limits.max_peers):
            self.orphans[rid] = deque(peer.outbox, maxlen=len(peer.outbox) + 16)  # as many boxes as peers, at most

    def _on_start(self, rid: bytes, peer: Peer, msg: dict, data: bytes, size: int) -> None:
        req_id = msg["req_id"]
        if msg["resume"] is not None:
            session = self.sessions.get(msg["resume"])
            if session is None:
                raise ProtocolError("unknown_session", f"session {msg['resume']!r} does not exist or timed out: "
                                                       "start a new one")
            if session.loading:  # a reconnecting client's resume: it (and what follows) acts once the world is built
                peer.held.appendleft((data, size))  # first in line: held is empty, or this came from its front
                peer.pending = session.loading
                return
            if peer.session is not None and peer.session is not session:
                self._close_session(peer.session, notify=None)
            if session.peer is not None and session.peer != rid and session.peer in self.peers:
                old = self.peers[session.peer]
                old.session = None
                session.step_inputs.clear()  # the old connection's inputs: their frames would reach the new one
                self._send(session.peer, [P.encode(P.error("no_session", f"session {session.id} was resumed by "
                                                                         "another connection", None, True))])
            session.peer, peer.session = rid, session
            session.last_seen = clock()
            session.next_tick = self._first_tick(session)
            self._send(rid, [P.encode(session.describe(req_id, resumed=True))])
            if session.last_image is not None:
                self._emit(session, Produced(session.last_image, session.index, session.epoch, -1, [], 0.0,
                                             "resend"), time.perf_counter())
            return
        others = len(self.sessions) + sum(j.source == "start" for j in self.pending) - (peer.session is not None)
        if others >= self.limits.max_sessions:
            raise ProtocolError("busy", f"the host already runs {plural(self.limits.max_sessions, 'session')}: try again later")
        if msg["backend"] is not None and msg["backend"] not in self.pool.specs:
            raise ProtocolError("bad_argument", f"backend {msg['backend']!r} is not served here; this host serves "
                                                f"{self.pool.names}")
        self._load_off_loop(LoadJob(rid, peer, msg, None, time.perf_counter()))

    def _load_off_loop(self, job: LoadJob) -> None:
        """Hand a `start`/`reset` to a loader thread; its peer's next messages wait for it (see `_handle`)."""
        job.peer.pending = job
        if job.session is not None:
            job.session.loading = job  # the loop leaves it alone (no ticks, no idle close) until it is back
        self.pending.append(job)
        threading.Thread(target=self._load, args=(job,), name="worldbridge-load", daemon=True).start()

    def _load(self, job: LoadJob) -> None:
        """Loader thread: make the backend (for a `start`) and frame 0 without stalling the loop (a checkpoint can take
        seconds, a world model re-tokenizes its prompt)."""
        msg = job.msg
        backend = None if job.session is None else job.session.backend
        try:
            # a 4096-px JPEG takes a while to decode: not on the loop thread; a reset keeps the keys it leaves out
            job.prompt = build_prompt(msg, None if job.session is None else job.session.prompt)
            if job.session is None:
                backend = self.pool.create(msg["backend"])
                job.session = Session(backend, mode=msg["mode"] or "realtime", fps=msg["fps"],
                                      limits=self.limits, action_map=msg["action_map"],
                                      backend_label=msg["backend"] or self.default_kind)
            try:
                job.produced = job.session.begin(job.prompt, source=job.source)
            except ValueError as e:
                raise ProtocolError("bad_prompt", str(e)) from None
            s = job.session
            s.prompt_wire = {**prompt_keys(msg, s.prompt_wire), "seed": s.seed}
        except BaseException as e:  # reported to the client by the loop thread
            job.error = e
        with self._loaded_lock:
            job.done = True
            orphaned = self._loaded_tx is None  # the host closed meanwhile: nobody will finish this load
            if not orphaned:
                try:
                    self._loaded_tx.send(b"", zmq.NOBLOCK)
                except zmq.ZMQError:  # a full pipe already holds a wake-up
                    pass
        if orphaned or (job.error is not None and job.source == "start"):  # a failed reset keeps its session
            close_backend(backend)

    def _finish_loads(self) -> None:
        """Loop thread: answer every `start`/`reset` whose loader finished, then run the messages its peer sent
        meanwhile."""
        with self._loaded_lock:
            done = [job for job in self.pending if job.done]
            self.pending = [job for job in self.pending if not job.done]
        for job in done:
            peer, rid = job.peer, job.rid
            peer.pending = None
            connected = self.peers.get(rid) is peer
            if job.session is not None:  # its client waited for the world, it was not idle: the timeout counts from now
                job.session.last_seen = clock()
            if job.source == "reset":
                job.session.loading = None
            if job.error is not None:
                self._load_failed(job, connected)
            elif job.source == "reset":
                self._finish_reset(job, connected)
            elif not connected:  # the client left while its world loaded
                close_backend(job.session.backend)
            elif not self._finish_start(job):
                continue
            if connected:
                self._run_held(rid, peer)
            for other_rid, other in [(r, p) for r, p in self.peers.items() if p.pending is job]:  # held resumes
                other.pending = None
                self._run_held(other_rid, other)

    def _load_failed(self, job: LoadJob, connected: bool) -> None:
        """Loop thread: a `start` or `reset` could not build its world; tell its client (a broken world ends a reset's
        session)."""
        e, req_id = job.error, job.msg["req_id"]
        if isinstance(e, ProtocolError):
            self.stats["bad_messages"] += 1
            reply = _refusal(job.peer, e, req_id)
        else:
            log.error("could not %s a session", job.source, exc_info=e)
            reply = P.error("backend_error", f"{type(e).__name__}: {e}", req_id)
        if connected:
            self._send(job.rid, [P.encode(reply)])
        if reply["fatal"] and job.source == "reset":  # e.g. a frame of the wrong size: the world is broken
            self._close_session(job.session, notify=None)

    def _finish_start(self, job: LoadJob) -> bool:
        """Loop thread: a `start`'s world is made; make it its client's session, answer, send frame 0. False when the
        client left before learning the session id (the session is closed: nobody can resume it)."""
        session, peer, rid = job.session, job.peer, job.rid
        if peer.session is not None:  # a second start replaces the session (only once the new one works)
            self._close_session(peer.session, notify=None)
        session.peer, peer.session = rid, session
        self.sessions[session.id] = session
        log.info("session %s started: %s [%s], %s mode, client %r", session.id, session.name, session.kind,
                 session.mode, peer.client)
        if not self._send(rid, [P.encode(session.describe(job.msg["req_id"]))]) and self.peers.get(rid) is not peer:
            self._close_session(session, notify=None)
            return False
        session.next_tick = self._first_tick(session)
        self._emit(session, job.produced, job.received)
        return True

    def _run_held(self, rid: bytes, peer: Peer) -> None:
        """What a peer sent while a `start`/`reset` loaded, in order; a held `start`/`reset`/resume stops it again."""
        while peer.held and peer.pending is None:
            self._handle(rid, *peer.held.popleft(), parked="held")

    def _on_input(self, rid: bytes, session: Session, msg: dict, wire: bytes) -> None:
        action = session.resolve_action(msg["action"])
        received = time.perf_counter()
        if session.mode == "step" and len(session.step_inputs) >= MAX_STEP_QUEUE:
            raise ProtocolError("busy", f"{MAX_STEP_QUEUE} inputs are already waiting for frames: read your "
                                        "frames before sending more")
        self._record(session, {"kind": "input", "t": now_ms(), "wire": [wire], "action_id": action})  # taken: kept
        if session.mode == "step":
            session.step_inputs.append((action, msg["client_ts"], msg["seq"], received))
        else:
            session.action, session.client_ts, session.seq, session.input_ts = (action, msg["client_ts"], msg["seq"],
                                                                                received)

    def _on_event(self, rid: bytes, session: Session, msg: dict, wire: bytes) -> None:
        caption = session.queue_event(msg["event_type"], msg["text"], msg["req_id"])
        self._record(session, {"kind": "event", "t": now_ms(), "wire": [wire], "caption": caption})
        self._send(rid, [P.encode(P.ok(msg["req_id"], "event", caption=caption))])

    def _on_reset(self, rid: bytes, session: Session, msg: dict, wire: bytes) -> None:
        self._load_off_loop(LoadJob(rid, self.peers[rid], msg, None, time.perf_counter(), session, "reset", wire))

    def _finish_reset(self, job: LoadJob, connected: bool) -> None:
        """Loop thread: a reset's new world is made; record it, answer, send its frame 0 (to whoever holds it now)."""
        session, msg = job.session, job.msg
        self._control(session, job.wire, {"epoch": session.epoch})
        if connected:
            self._send(job.rid, [P.encode(P.ok(msg["req_id"], "reset", epoch=session.epoch, frame_index=0,
                                               seed=session.seed))])
        session.next_tick = self._first_tick(session)  # its old schedule fell due while it loaded
        self._emit(session, job.produced, job.received)

    def _on_branch(self, rid: bytes, session: Session, msg: dict, wire: bytes) -> None:
        t0 = time.perf_counter()
        self._new_epoch(rid, session, msg, wire, session.branch(msg["frame"]), t0)

    def _on_edit(self, rid: bytes, session: Session, msg: dict, wire: bytes) -> None:
        t0 = time.perf_counter()
        self._new_epoch(rid, session, msg, wire, session.edit(msg["layer"], msg["x"], msg["y"]), t0)

    def _new_epoch(self, rid: bytes, session: Session, msg: dict, wire: bytes, produced: Produced, t0: float) -> None:
        """A `branch` or `edit` began a new epoch: record it, answer, then send its first frame."""
        self._control(session, wire, {"epoch": session.epoch, "frame_index": session.index})
        self._send(rid, [P.encode(P.ok(msg["req_id"], msg["type"], epoch=session.epoch, frame_index=session.index))])
        self._emit(session, produced, t0)

    def _on_settings(self, rid: bytes, session: Session, msg: dict, wire: bytes) -> None:
        session.apply_settings(msg, self.limits)
        knobs = {k: msg[k] for k in P.MODEL_KNOBS if msg.get(k) is not None}
        self._control(session, wire, {"settings_knobs": knobs} if knobs else {})
        self._send(rid, [P.encode(P.ok(msg["req_id"], "settings", settings=session.settings_map()))])

    def _on_record_start(self, rid: bytes, session: Session, msg: dict, wire: bytes) -> None:
        if session.recorder is not None:
            raise ProtocolError("bad_argument", f"already recording to {session.recorder.path}: send record_stop first")
        anywhere = self.record_anywhere and self.loopback
        path = (Path(recording_path(msg["path"], anywhere=anywhere)) if msg["path"]
                else self._free_recording_path(session))
        if msg["path"] and not anywhere:
            root = self.recordings_dir.resolve()
            if root not in (self.recordings_dir / path).resolve().parents:
                how = ("or start the host with --record-anywhere to let clients on this machine record elsewhere"
                       if self.loopback else "clients beyond this machine cannot record elsewhere")
                raise ProtocolError("bad_argument", f"recording path {msg['path']} is outside {root}, the host's "
                                                    f"--recordings folder: pass a path relative to it, {how}")
            path = self.recordings_dir / path
        path = path.absolute()  # answered as is: a client in another working dir must still find the file
        if path.suffix.lower() != ".wbrec":  # ".wbrec" alone is a hidden file with no suffix
            raise ProtocolError("bad_argument", f"recording path {path} must end in .wbrec after a file name, e.g. "
                                                "run1.wbrec")
        try:
            taken = path.exists()
        except OSError as e:  # e.g. a name over the file system's 255 bytes
            raise ProtocolError("bad_argument", f"cannot write {path}: {e.strerror or e}") from None
        if taken:
            raise ProtocolError("bad_argument", f"{path} already exists: recordings are never overwritten")
        header = {"t": now_ms(), "host": P.HOST_NAME, "session": session.describe(None),
                  "backend_label": session.backend_label, "checkpoint": self.pool.specs[session.kind].checkpoint
                  if session.kind in self.pool.specs else None,
                  "prompt": session.prompt_wire, "reset_settings": session.reset_settings,
                  "history": [list(h) for h in session.history], "codec": "png" if self._codec(session) == "jpeg"
                  else self._codec(session)}
        try:
            session.recorder = Recorder(path, header)
        except OSError as e:
            raise ProtocolError("bad_argument", f"cannot write {path}: {e.strerror or e}") from None
        self._send(rid, [P.encode(P.ok(msg["req_id"], "record_start", path=str(path)))])

    def _free_recording_path(self, session: Session) -> Path:
        """recordings/<session>-<time>.wbrec, with -2, -3 ... when one was already started within the same second."""
        stem = f"{session.id}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        path, n = self.recordings_dir / f"{stem}.wbrec", 1
        while path.exists():
            n += 1
            path = self.recordings_dir / f"{stem}-{n}.wbrec"
        return path

    def _on_record_stop(self, rid: bytes, session: Session, msg: dict, wire: bytes) -> None:
        rec, session.recorder = session.recorder, None
        if rec is None:
            raise ProtocolError("bad_argument", "not recording: send record_start first")
        try:
            rec.close(now_ms())
        except OSError as e:
            raise ProtocolError("backend_error", f"recording {rec.path} ended without its end record ({e.strerror or e})"
                                                 f"; everything before it is kept and readable ({plural(rec.frames, 'frame')})") from None
        self._send(rid, [P.encode(P.ok(msg["req_id"], "record_stop", path=str(rec.path), frames=rec.frames))])

    def _control(self, session: Session, wire: bytes, info: dict) -> None:
        self._record(session, {"kind": "control", "t": now_ms(), "wire": [wire], "info": info})

    def _record(self, session: Session, record: dict) -> None:
        """Append to the session's recording; a failed write (disk full) ends that recording, never the host."""
        if session.recorder is None:
            return
        try:
            session.recorder.write(record)
        except OSError as e:
            self._recording_failed(session, e)

    def _sync_recordings(self) -> None:
        """Sync each recording whose second is up: a write syncs only when one comes, and a step-mode session may idle."""
        for session in list(self.sessions.values()):
            if session.recorder is not None:
                try:
                    session.recorder.flush_due()
                except OSError as e:
                    self._recording_failed(session, e)

    def _recording_failed(self, session: Session, e: OSError) -> None:
        """End the session's recording after a failed write or sync, keeping its file, and tell its client why."""
        rec, session.recorder = session.recorder, None
        rec.close(None, write_end=False)
        why = (f"recording {rec.path} stopped: {e.strerror or e}; everything recorded before it is kept and "
               f"readable ({plural(rec.frames, 'frame')}): free some space and send record_start again")
        log.error("session %s: %s", session.id, why)
        peer = self.peers.get(session.peer) if session.peer is not None else None
        if peer is not None:  # a client before 1.3 gets the error it always got, without the 1.3 keys
            code = _code_for(peer, "recording_stopped")
            where = {"path": str(rec.path), "frames": rec.frames} if code == "recording_stopped" else {}
            self._send(session.peer, [P.encode(P.error(code, why, **where))])

    def _status(self, peer: Peer, req_id: int | None) -> dict:
        s = peer.session
        return {"type": "status", "req_id": req_id, "sessions": len(self.sessions),
                "session_id": s.id if s else None, "frame_index": s.index if s else None,
                "epoch": s.epoch if s else None, "mode": s.mode if s else None, "fps_target": s.fps if s else None,
                "fps_measured": s.fps_measured if s else None, "recording": bool(s and s.recorder),
                "backend_kind": s.kind if s else self.default_kind, "backend_name": s.name if s else None,
                "frames_sent": s.frames_sent if s else None, "frames_dropped": s.frames_dropped if s else None}

    # --- making frames ---

    def _run_step_inputs(self) -> None:
        """One queued input per step-mode session, all sessions stepped together (batched when the backend can);
        then what each client sent after its inputs, once their frames are made."""
        ready = [s for s in self.sessions.values() if s.step_inputs and s.mode == "step"]
        if ready:
            self._step_sessions(ready)
        for rid, peer in [(r, p) for r, p in self.peers.items() if p.waiting]:
            while peer.waiting and peer.pending is None and not (
                    peer.session is not None and peer.session.step_inputs and peer.session.mode == "step"):
                self._handle(rid, *peer.waiting.popleft(), parked="waiting")

    def _first_tick(self, session: Session) -> float:
        """A (re)started session's first tick: in step with a running realtime session of the same fps, so a
        `step_batch` backend steps them in one call; else one period from now."""
        now, period = clock(), 1.0 / session.fps
        for s in self.sessions.values():
            if s is not session and s.mode == "realtime" and s.peer is not None and s.fps == session.fps:
                return max(s.next_tick, now)
        return now + period

    def _ticking(self) -> list[Session]:
        """Realtime sessions with a client, but not one whose `reset` is building its world on a loader thread."""
        return [s for s in self.sessions.values() if s.mode == "realtime" and s.peer is not None and not s.loading]

    def _run_ticks(self) -> None:
        now = clock()
        live = self._ticking()
        if not any(s.next_tick <= now for s in live):
            return
        # sessions due within a hair of each other tick together, so a `step_batch` backend gets them in one call
        due = [s for s in live if s.next_tick <= now + min(BATCH_SLACK_S, 0.25 / s.fps)]
        base: dict[float, float] = {}
        for s in due:
            base[s.fps] = min(base.get(s.fps, s.next_tick), s.next_tick)
        for s in due:
            period = 1.0 / s.fps
            s.next_tick = base[s.fps] + period  # same fps, ticked together: they stay in step from now on
            if s.next_tick < now:  # we fell behind: skip ahead rather than burst
                s.next_tick = now + period
        if due:
            self._step_sessions(due)

    def _step_sessions(self, sessions: list[Session]) -> None:
        """Step each session once; a backend class with `step_batch` gets its sessions in one call."""
        groups: dict[type, list[Session]] = {}
        for s in sessions:
            groups.setdefault(type(s.backend), []).append(s)
        for cls, group in groups.items():
            work = []
            for s in group:
                if s.mode == "step" and s.step_inputs:
                    action, client_ts, seq, received = s.step_inputs.popleft()
                    s.action, s.client_ts, s.seq = action, client_ts, seq  # in force, should realtime take over
                else:
                    action, client_ts, seq = s.action, s.client_ts, s.seq
                    received = s.input_ts if s.input_ts is not None else time.perf_counter()
                    s.input_ts = None
                work.append((s, action, client_ts, seq, received))
            if hasattr(cls, "step_batch") and len(work) > 1:
                self._step_batched(cls, work)
            else:
                self._step_alone(work)

    def _step_alone(self, work: list) -> None:
        for s, action, client_ts, seq, received in work:
            try:
                produced = s.step(action)
            except Exception as e:
                self._backend_failed(s, e)
                continue
            if produced.refused and s.peer is not None:
                self._send(s.peer, [P.encode(produced.refused)])
            self._emit(s, produced, received, client_ts, seq)

    def _step_batched(self, cls: type, work: list) -> None:
        prepared = [(s, a, *s.prepare_step()) for s, a, *_ in work]
        t0 = time.perf_counter()
        try:
            images = cls.step_batch([s.backend for s, *_ in prepared], [a for _, a, *_ in prepared],
                                    [ev for _, _, ev, _, _ in prepared])
        except StepRefused:  # refused before any world moved (an action or event): one session's, not the batch's
            for s, _, ev, cap, req_id in prepared:
                if ev is not None:
                    s.pending_events.appendleft((ev, cap, req_id))
            self._step_alone(work)  # each alone: a refused event is dropped and reported to its own client only
            return
        except Exception as e:
            for s, *_ in prepared:
                self._backend_failed(s, e)
            return
        model_ms = (time.perf_counter() - t0) * 1000.0
        for (s, a, ev, cap, _), (_, _, client_ts, seq, received), image in zip(prepared, work, images):
            produced = s.finish_step(a, ev, cap, image, model_ms, {"batch": float(len(work))})
            self._emit(s, produced, received, client_ts, seq)

    def _backend_failed(self, session: Session, e: Exception) -> None:
        log.exception("backend failed in session %s", session.id, exc_info=e)
        msg = f"the backend failed ({type(e).__name__}: {e}); the session is closed: start a new one"
        self._close_session(session, notify=P.error("backend_error", msg, None, True))

    def _codec(self, session: Session) -> str:
        peer = self.peers.get(session.peer) if session.peer is not None else None
        return peer.codec if peer is not None else "raw"

    def _emit(self, session: Session, produced: Produced, received: float, client_ts: float | None = None,
              seq: int | None = None) -> None:
        """Encode, record and send one frame; realtime frames are dropped (not queued) for a full pipe."""
        codec = self._codec(session)
        t0 = time.perf_counter()
        payload = encode_pixels(produced.image, codec)
        t1 = time.perf_counter()
        timings = {"model": produced.model_ms, "encode": (t1 - t0) * 1000.0, "total": 0.0}
        timings.update({k: float(v) for k, v in produced.backend_timings.items() if k not in timings
                        and isinstance(v, (int, float))})
        header = {"type": "frame", "session_id": session.id, "index": produced.index, "epoch": produced.epoch,
                  "action": produced.action, "client_ts": client_ts, "seq": seq, "host_ts": now_ms(),
                  "timings": timings, "events": produced.events, "codec": codec,
                  "width": int(session.backend.width), "height": int(session.backend.height)}
        timings["total"] = (time.perf_counter() - received) * 1000.0
        hdr = P.encode(header)
        if session.recorder is not None:
            rec_hdr, rec_payload = hdr, payload
            if codec == "jpeg":  # recordings stay lossless so replays and datasets are exact
                rec_hdr, rec_payload = P.encode({**header, "codec": "png"}), encode_pixels(produced.image, "png")
            record = {"kind": "frame", "t": header["host_ts"], "wire": [rec_hdr, rec_payload],
                      "source": produced.source}
            if produced.event is not None:
                record["event"] = {"type": produced.event.type, "text": produced.event.text}
            if produced.edit is not None:
                record["edit"] = produced.edit
            if produced.source in ("start", "reset"):
                record["prompt"] = session.prompt_wire
            self._record(session, record)
        if session.peer is None:
            return
        # a frame an event fired on is kept: a client's timeline or recorder needs the frame each event fired on
        droppable = session.mode == "realtime" and produced.source == "step" and not produced.events
        if self._send(session.peer, [hdr, payload], droppable=droppable):
            session.frames_sent += 1
            self.stats["frames_sent"] += 1
            if droppable:
                session.last_seen = clock()  # a frame the client's pipe accepted counts as activity
        else:
            session.frames_dropped += 1
            self.stats["frames_dropped"] += 1

    # --- sending ---

    def _send(self, rid: bytes, parts: list[bytes], droppable: bool = False, force: bool = False) -> bool:
        """Send now; a full pipe drops `droppable` frames and queues everything else in the peer's outbox.

        `force` sends to peers that have no Peer record (replies before/without hello) and drops on a full pipe.
        """
        peer = self.peers.get(rid)
        if peer is None and not force:
            return False
        if peer is not None and peer.outbox:
            if droppable:
                return False
            peer.queue(parts)
            return True
        if peer is None and rid in self.orphans:
            box = self.orphans[rid]
            # full: the newest reply goes, so replies owed from before a `bye` (at the front) never do; for a
            # connection that never said hello this keeps its first 16 replies rather than its last
            if len(box) == box.maxlen:
                return False
            box.append(parts)
            return True
        try:
            self.sock.send_multipart([rid, *parts], flags=zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            if droppable:
                return False
            if peer is None:
                if rid not in self.orphans and len(self.orphans) >= self.limits.max_peers:
                    return False
                self.orphans.setdefault(rid, deque(maxlen=16)).append(parts)
            else:
                peer.queue(parts)
            return True
        except zmq.ZMQError as e:
            if e.errno == zmq.EHOSTUNREACH:
                self._peer_gone(rid)
                return False
            raise

    def _flush_outboxes(self) -> None:
        for rid, box in list(self.orphans.items()):
            try:
                while box:
                    self.sock.send_multipart([rid, *box[0]], flags=zmq.NOBLOCK, copy=False)
                    box.popleft()
                del self.orphans[rid]
            except zmq.Again:
                pass
            except zmq.ZMQError:
                del self.orphans[rid]
        for rid, peer in list(self.peers.items()):
            while peer.outbox:
                try:
                    self.sock.send_multipart([rid, *peer.outbox[0]], flags=zmq.NOBLOCK, copy=False)
                    peer.sent_first()
                except zmq.Again:
                    if len(peer.outbox) > MAX_OUTBOX or peer.outbox_bytes > MAX_OUTBOX_BYTES:
                        log.warning("client %r reads nothing; forgetting it", peer.client)
                        self._peer_gone(rid)
                    break
                except zmq.ZMQError as e:
                    if e.errno == zmq.EHOSTUNREACH:
                        self._peer_gone(rid)
                        break
                    raise

    # --- sessions and peers ---

    def _peer_gone(self, rid: bytes) -> None:
        """The connection is gone: forget the peer, keep its session for `resume` until the idle timeout."""
        peer = self.peers.pop(rid, None)
        if peer is not None and peer.session is not None and peer.session.peer == rid:
            peer.session.peer = None
            peer.session.step_inputs.clear()
            log.info("session %s detached (client gone); resumable for %.0f s", peer.session.id,
                     self.limits.idle_timeout_s)

    def _close_session(self, session: Session, notify: dict | None, free: bool = True) -> None:
        """End a session; `free`: close its backend too (False while a loader thread still uses it, which closes it)."""
        if session.recorder is not None:
            rec, session.recorder = session.recorder, None
            try:
                rec.close(now_ms())
            except OSError as e:  # the file keeps every whole record; closing the session must go on
                log.error("session %s: recording %s closed without its end record: %s", session.id, rec.path, e)
        self.sessions.pop(session.id, None)
        if session.peer is not None:
            peer = self.peers.get(session.peer)
            if notify is not None:
                self._send(session.peer, [P.encode(notify)])
            if peer is not None and peer.session is session:
                peer.session = None
        session.peer = None
        if free:
            close_backend(session.backend)
        log.info("session %s closed after %d frames", session.id, session.index)

    def _evict_peers(self) -> None:
        """Keep at most max_peers handshaken peers: forget the longest-silent ones without a session."""
        if len(self.peers) < self.limits.max_peers:
            return
        idle = sorted((p.last_seen, rid) for rid, p in self.peers.items() if p.session is None and p.pending is None)
        for _, rid in idle[: len(self.peers) - self.limits.max_peers + 1]:
            self.peers.pop(rid, None)

    def _housekeeping(self) -> None:
        """Close sessions silent for longer than the idle timeout. Their peers stay greeted (READY until `bye`, §3), so
        the `start a new one` the notice asks for works; peers without a session are bounded by `_evict_peers`."""
        now = clock()
        limit = self.limits.idle_timeout_s
        for s in list(self.sessions.values()):
            if now - s.last_seen > limit and not s.loading:  # a loading reset's client waits for it: not idle
                self._close_session(s, notify=P.error("no_session", f"session {s.id} was closed after {limit:g} s "
                                                      "without messages: start a new one", None, True))


def _code_for(peer: Peer | None, code: str) -> str:
    """The error code this peer's protocol minor knows (§4 hello): a code newer than its client becomes the older one."""
    appeared, older = P.NEWER_CODES.get(code, (0, code))
    return older if peer is not None and peer.minor < appeared else code


def _refusal(peer: Peer | None, e: ProtocolError, req_id: int | None) -> dict:
    """The `error` for a refused request: in a code the peer knows, with the `capability` a refused prompt or event
    kind names."""
    extra = {} if e.capability is None else {"capability": e.capability}
    return P.error(_code_for(peer, e.code), e.message, req_id, e.fatal, **extra)


@dataclass
class HostHandle:
    """A host running in a background thread of this process (editor, demo, tests)."""

    host: Host
    thread: threading.Thread
    address: str

    def stop(self, timeout: float = 5.0) -> None:
        self.host.stop()
        self.thread.join(timeout)

    def __enter__(self) -> "HostHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def run_host_in_thread(backend_spec: Any = None, bind: str = "tcp://127.0.0.1:*", **kw: Any) -> HostHandle:
    """Start a host on `bind` in a daemon thread; `backend_spec`: "sandbox", a checkpoint path, a dict or a factory.

    Recordings stay inside `recordings_dir`, as with `worldbridge serve`: any program on this machine can reach a
    loopback port. A program that picks its own paths (the demo) passes `record_anywhere=True` on loopback."""
    host = Host(backend_spec, bind=bind, **kw)
    announce(host.spec)
    thread = threading.Thread(target=host.run, name="worldbridge-host", daemon=True)
    thread.start()
    return HostHandle(host, thread, host.address)
