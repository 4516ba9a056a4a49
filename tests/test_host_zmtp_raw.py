"""A client on plain Python sockets (tests/zmtp_raw.py: hand-written ZMTP 3.0 + msgpack) completes a session."""

import io
import time
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from bridge.host.server import run_host_in_thread
from waiting import wait_until
from zmtp_raw import RawDealer


def port_of(address: str) -> int:
    return urlparse(address).port


@pytest.fixture
def host():
    h = run_host_in_thread("sandbox")
    yield h
    h.stop()


def test_raw_socket_client_completes_a_session(host):
    c = RawDealer("127.0.0.1", port_of(host.address),
                  properties={"Identity": b"", "X-Client": b"raw-test/1"})
    try:
        assert c.peer_properties["Socket-Type"] == b"ROUTER"  # libzmq also sends an empty Identity: parsed
        c.send({"type": "hello", "protocol_major": 1, "protocol_minor": 0, "client": "raw", "codecs": ["raw"]})
        welcome, _ = c.recv()
        assert welcome["type"] == "welcome" and welcome["codec"] == "raw"
        png = io.BytesIO()
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(png, format="PNG")
        # a long text (> 255 bytes: a LONG frame from the client) and an extra part the host ignores
        c.send({"type": "start", "req_id": 1, "mode": "step", "seed": 3, "text": "snowy night " * 30}, b"ignored")
        session, _ = c.recv_type("session")
        assert session["req_id"] == 1 and session["backend_kind"] == "sandbox"
        w, h = session["width"], session["height"]
        frame0, (pixels,) = c.recv_type("frame")
        assert frame0["index"] == 0 and len(pixels) == w * h * 3  # 12288 bytes: a LONG frame, multipart
        for i in range(1, 6):
            c.send({"type": "input", "action": "right", "client_ts": 1000.0 + i, "seq": i})
            f, (px,) = c.recv_type("frame")
            assert f["index"] == i and f["seq"] == i and f["client_ts"] == 1000.0 + i and len(px) == w * h * 3
        img = np.frombuffer(px, np.uint8).reshape(h, w, 3)
        assert img.std() > 0  # a real picture
        c.send({"type": "branch", "req_id": 2, "frame": 2})
        ok, _ = c.recv_type("ok")
        assert ok["epoch"] == 1
        f, _ = c.recv_type("frame")
        assert (f["index"], f["epoch"]) == (2, 1)
        c.send({"type": "bye"})
    finally:
        c.close()
    assert wait_until(lambda: not host.host.sessions)  # bye ended it


def test_raw_client_answers_heartbeat_pings():
    h = run_host_in_thread("sandbox", heartbeat=True, heartbeat_ivl_ms=100)
    c = RawDealer("127.0.0.1", port_of(h.address))
    try:
        c.send({"type": "hello", "protocol_major": 1})
        c.recv_type("welcome")
        c.send({"type": "start", "mode": "realtime", "fps": 20.0})
        c.recv_type("session")
        t_end = time.monotonic() + 1.0
        frames = 0
        while time.monotonic() < t_end:
            msg, _ = c.recv(timeout=1.0)
            frames += msg["type"] == "frame"
        assert c.pings_answered >= 3  # libzmq PINGs every 100 ms; we answered with PONG
        assert frames >= 10  # and the host kept us (it drops peers that do not answer within 500 ms)
    finally:
        c.close()
        h.stop()
