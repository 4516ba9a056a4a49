"""The GDScript ZMTP 3.0 DEALER (core/zmtp.gd), executed by gdsim over real sockets: against
libzmq 4.3 (pyzmq ROUTER) and against scripted raw TCP peers for the failure paths."""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq

ROOT = Path(__file__).resolve().parents[1]
GODOT = ROOT / "godot_addon"
sys.path.insert(0, str(GODOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

import gdsim  # noqa: E402
import zmtp_raw  # noqa: E402
from godot_helpers import scripted_router  # noqa: E402

ZMTP = "res://addons/world_bridge/core/zmtp.gd"
OPEN, WAITING, IDLE = 5, 1, 0


@pytest.fixture()
def sim(godot_sim):
    """The shared gdsim over the addon (conftest's godot_sim)."""
    return godot_sim


@pytest.fixture()
def router():
    sock, port = scripted_router()
    yield sock, port
    sock.close()


def _dealer(sim, **members):
    z = sim.new(sim.script(ZMTP))
    for key, value in members.items():
        z.members[key] = gdsim.to_gd(value)
    events = []
    z.signals["opened"].connect(gdsim.GDCallable(lambda p: events.append(("opened", gdsim.to_py(p))), ("o",)))
    z.signals["closed"].connect(gdsim.GDCallable(lambda r: events.append(("closed", r)), ("c",)))
    return z, events


def _poll_until(sim, z, cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sim.call_method(z, "poll", [])
        if cond():
            return True
        time.sleep(0.002)
    return False


def _receive(sim, z, timeout=5.0):
    got = []
    _poll_until(sim, z, lambda: got.append(sim.call_method(z, "receive", [])) or got[-1], timeout)
    return gdsim.to_py(got[-1]) if got else []


def test_a_full_send_queue_writes_a_limit_of_one_as_a_person_would(sim):
    """zmtp.gd said "send queue would exceed 1 bytes": the limit goes through Protocol.plural."""
    for limit, words in ((1, "would exceed 1 byte:"), (2, "would exceed 2 bytes:")):
        z, _ = _dealer(sim, state=OPEN, max_pending_bytes=limit)
        assert sim.call_method(z, "send", [gdsim.GDArray([gdsim.PackedByteArray(b"\x80")])]) != 0
        assert words in z.members["last_error"], z.members["last_error"]


def test_handshake_and_multipart_long_frames_with_libzmq(sim, router):
    sock, port = router
    z, events = _dealer(sim, properties={"X-Client": "godot/test"})
    assert sim.call_method(z, "open", [f"tcp://127.0.0.1:{port}"]) == 0
    assert _poll_until(sim, z, lambda: z.members["state"] == OPEN)
    assert events == [("opened", {"Socket-Type": b"ROUTER", "Identity": b""})]
    big = bytes(i % 251 for i in range(300_000))
    parts = gdsim.GDArray([gdsim.PackedByteArray(zmtp_raw.pack({"type": "hello"})), gdsim.PackedByteArray(big)])
    assert sim.call_method(z, "send", [parts]) == 0
    while sock.poll(5000):
        frames = sock.recv_multipart(copy=False)
        break
    ident, header, payload = frames
    assert zmtp_raw.unpack(header.bytes) == {"type": "hello"} and payload.bytes == big
    assert header.get("Socket-Type") == "DEALER" and header.get("X-Client") == "godot/test"
    reply = bytes(range(256)) * 4096  # 1 MiB part back
    sock.send_multipart([ident.bytes, zmtp_raw.pack({"type": "frame"}), reply, b""])
    got = _receive(sim, z)
    assert [len(p) for p in got] == [len(zmtp_raw.pack({"type": "frame"})), len(reply), 0] and got[1] == reply


def test_answers_libzmq_heartbeat_pings_and_stays_connected(sim):
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.HEARTBEAT_IVL, 40)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 200)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    try:
        z, events = _dealer(sim)
        sim.call_method(z, "open", [f"tcp://127.0.0.1:{port}"])
        assert _poll_until(sim, z, lambda: z.members["state"] == OPEN)
        _poll_until(sim, z, lambda: z.members["pings_answered"] >= 5, timeout=3.0)
        assert z.members["pings_answered"] >= 5 and z.members["state"] == OPEN
        assert not any(e[0] == "closed" for e in events)
        sim.call_method(z, "send", [gdsim.GDArray([gdsim.PackedByteArray(b"still here")])])
        assert sock.poll(2000) and sock.recv_multipart()[1] == b"still here"
    finally:
        sock.close()


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_reconnects_with_exponential_backoff_then_resets_it(sim):
    sim.clock_ms = 1000.0  # the test drives Time.get_ticks_msec
    port = _free_port()
    z, events = _dealer(sim)
    sim.call_method(z, "open", [f"tcp://127.0.0.1:{port}"])
    waits = []
    for _ in range(7):
        assert _poll_until(sim, z, lambda: z.members["state"] == WAITING)
        waits.append(z.members["_retry_at_ms"] - sim.clock_ms)
        sim.clock_ms = float(z.members["_retry_at_ms"])
        sim.call_method(z, "poll", [])  # starts the next attempt
    assert waits == [250, 500, 1000, 2000, 4000, 8000, 8000]
    assert "is `worldbridge serve` running" in z.members["last_error"]
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(f"tcp://127.0.0.1:{port}")
    try:
        _poll_until(sim, z, lambda: z.members["state"] in (OPEN, WAITING))
        if z.members["state"] == WAITING:  # the attempt raced the bind: take the next one
            sim.clock_ms = float(z.members["_retry_at_ms"])
            assert _poll_until(sim, z, lambda: z.members["state"] == OPEN)
        assert z.members["state"] == OPEN and z.members["_backoff_s"] == 0.25
        assert z.members["connects"] >= 8
    finally:
        sock.close()
    assert _poll_until(sim, z, lambda: z.members["state"] == WAITING)
    assert "closed the connection" in z.members["last_error"]
    sim.call_method(z, "close", [])
    assert z.members["state"] == IDLE


class RawPeer:
    """A scripted TCP peer: sends `script` bytes after the client's greeting arrives."""

    def __init__(self, script: bytes):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.script = script
        self.received = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        conn.settimeout(3)
        try:
            while len(self.received) < 64:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                self.received += chunk
            conn.sendall(self.script)
            time.sleep(1.0)
        except OSError:
            pass
        finally:
            conn.close()
            self.server.close()


LIBZMQ_GREETING = bytes.fromhex("ff00000000000000017f0301") + b"NULL".ljust(20, b"\0") + b"\0" * 32
ROUTER_READY = zmtp_raw.encode_command(b"READY", zmtp_raw.encode_properties({"Socket-Type": b"ROUTER"}))


@pytest.mark.parametrize("script,needle", [
    (LIBZMQ_GREETING + ROUTER_READY + b"\x02" + (1 << 40).to_bytes(8, "big"), "exceeds the"),
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" + b" " * 8, "not speaking ZMTP"),
    (LIBZMQ_GREETING[:12] + b"CURVE".ljust(20, b"\0") + b"\0" * 32, "CURVE security"),
    (LIBZMQ_GREETING + zmtp_raw.encode_command(b"ERROR", b"\x0binvalid req"), "refused the ZMTP handshake: invalid req"),
    (LIBZMQ_GREETING + zmtp_raw.encode_command(b"READY", zmtp_raw.encode_properties({"Socket-Type": b"PUB"})),
     "ZeroMQ PUB socket"),
    (LIBZMQ_GREETING + zmtp_raw.encode_frame(b"hi"), "before its READY"),
], ids=["size-guard", "http-server", "curve-host", "error-command", "pub-socket", "message-before-ready"])
def test_bad_peers_get_a_clear_error_and_a_retry(sim, script, needle):
    peer = RawPeer(script)
    z, events = _dealer(sim, max_frame_bytes=16 * 1024 * 1024)
    sim.call_method(z, "open", [f"tcp://127.0.0.1:{peer.port}"])
    assert _poll_until(sim, z, lambda: any(e[0] == "closed" for e in events))
    assert needle in z.members["last_error"], z.members["last_error"]
    assert z.members["state"] == WAITING  # it will retry with backoff
    assert peer.received.startswith(zmtp_raw.GREETING)  # what we sent is byte-exact greeting_client


def test_localhost_reaches_an_ipv4_host_where_the_name_resolves_to_ipv6_first(sim, router, monkeypatch):
    """Windows and macOS often resolve "localhost" to ::1 first; the host binds 127.0.0.1 only."""
    real = socket.getaddrinfo

    def ipv6_first(host, port, *args, **kwargs):
        infos = real(host, port, *args, **kwargs)
        if host == "localhost":
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0))] + infos
        return infos

    monkeypatch.setattr(gdsim.socket, "getaddrinfo", ipv6_first)
    _, port = router
    z, events = _dealer(sim)
    assert sim.call_method(z, "open", [f"tcp://localhost:{port}"]) == 0
    assert _poll_until(sim, z, lambda: events), z.members["last_error"]
    assert events[0][0] == "opened", events
    assert z.members["host"] == "localhost"  # errors keep naming the endpoint the user gave


def test_endpoint_errors_are_reported_before_any_connect(sim):
    z, _ = _dealer(sim)
    for bad, needle in [("ipc:///tmp/wb", "only tcp://"), ("tcp://127.0.0.1", "needs a port"),
                        ("tcp://*:5555", "host name")]:
        assert sim.call_method(z, "open", [bad]) == gdsim.ERRORS["ERR_INVALID_PARAMETER"]
        assert needle in z.members["last_error"]
    assert z.members["state"] == IDLE and z.members["connects"] == 0
    assert sim.call_method(z, "send", [gdsim.GDArray([gdsim.PackedByteArray(b"x")])]) == gdsim.ERRORS["ERR_UNAVAILABLE"]
