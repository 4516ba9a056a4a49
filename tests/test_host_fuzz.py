"""Hostile input never crashes the host: fuzzed fields, random maps, garbage, truncated and oversized frames,
fuzzed `edit` layers, bursts of well-formed requests in any order, while another session keeps receiving frames."""

import io
import threading
import time

import msgpack
import numpy as np
import pytest
import torch
import zmq
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from bridge.client import WorldClient
from bridge.host import protocol as P
from bridge.host.protocol import Limits
from bridge.host.server import run_host_in_thread
from waiting import wait_until

torch.set_num_threads(1)
MAX_BYTES = 64 * 1024


class Watcher(threading.Thread):
    """A realtime session in its own thread; records when frames arrive so gaps show up."""

    def __init__(self, address: str):
        super().__init__(daemon=True)
        self.address, self.times, self.stop_flag, self.error = address, [], threading.Event(), None

    def run(self):
        try:
            with WorldClient(self.address, timeout=5) as c:
                c.start(mode="realtime", fps=50, seed=1)
                while not self.stop_flag.is_set():
                    f = c.next_frame(timeout=2.0)
                    if f is None:
                        raise AssertionError("watcher session got no frame for 2 s")
                    self.times.append(time.monotonic())
        except Exception as e:  # reported by the test
            self.error = e


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory):
    rec_dir = tmp_path_factory.mktemp("rec")
    h = run_host_in_thread("sandbox", limits=Limits(max_message_bytes=MAX_BYTES), recordings_dir=rec_dir)
    w = Watcher(h.address)
    w.start()
    assert wait_until(lambda: w.times or w.error), "the watcher session got no frame"  # it watches from the start
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(h.address)
    yield h, w, sock
    w.stop_flag.set()
    w.join(5)
    sock.close(0)
    assert w.error is None, w.error
    gaps = [b - a for a, b in zip(w.times, w.times[1:])]
    assert len(w.times) > 20 and max(gaps) < 1.5, f"watcher stalled for {max(gaps):.2f} s"
    assert h.thread.is_alive()
    h.stop()


_req = [1000]


def sync(sock) -> list[dict]:
    """Ping and collect every reply up to the pong: proves the host processed what came before and lives."""
    _req[0] += 1
    sock.send(P.encode({"type": "ping", "req_id": _req[0], "client_ts": 0.0}))
    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not sock.poll(int((deadline - time.monotonic()) * 1000) + 1):
            break
        parts = sock.recv_multipart()
        msg = msgpack.unpackb(parts[0], raw=False)
        if msg.get("type") == "pong" and msg.get("req_id") == _req[0]:
            return seen
        seen.append(msg)
    raise AssertionError("host did not answer ping")


def handshake(sock) -> None:
    sock.send(P.encode({"type": "hello", "protocol_major": 1}))
    sock.send(P.encode({"type": "start", "mode": "step", "seed": 0}))
    sync(sock)


scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=True)
           | st.text(max_size=40) | st.binary(max_size=40))
anything = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                        max_leaves=12)
good = {"uint": st.integers(0, 2**64 - 1), "int": st.integers(-(2**63), 2**64 - 1), "float": st.floats(-1e6, 1e6),
        "str": st.text(max_size=30), "bin": st.binary(max_size=30), "strlist": st.lists(st.text(max_size=5)),
        "action": st.integers(0, 12) | st.sampled_from(["left", "right", "jump", "nope"]),
        "actionmap": st.dictionaries(st.text(max_size=5), st.integers(0, 2**64 - 1), max_size=3)}


@st.composite
def fuzzed_message(draw):
    mtype = draw(st.sampled_from(sorted(P.SCHEMAS)))
    msg = {"type": mtype}
    for key, kind in P.SCHEMAS[mtype].items():
        choice = draw(st.sampled_from(["absent", "good", "wrong"]))
        if key == "path":
            choice = "absent"  # never let the fuzzer write files
        if choice == "good":
            msg[key] = draw(good.get(kind, anything))
        elif choice == "wrong":
            msg[key] = draw(anything)
    if draw(st.booleans()):
        msg["req_id"] = draw(st.integers(0, 2**64 - 1) | anything)
    msg.update(draw(st.dictionaries(st.text(max_size=6), anything, max_size=3)))
    msg["type"] = mtype if draw(st.integers(0, 9)) else draw(anything)
    return msg


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(msg=fuzzed_message())
def test_fuzzed_messages_get_an_answer_or_are_ignored(fuzz_env, msg):
    h, w, sock = fuzz_env
    handshake(sock)
    sock.send(msgpack.packb(msg, use_bin_type=True))
    replies = sync(sock)
    for r in replies:
        assert r["type"] in ("ok", "error", "frame", "session", "status", "welcome", "reject", "pong"), r
        if r["type"] == "error":
            assert r["code"] in ("bad_message", "bad_argument", "bad_prompt", "no_session", "not_ready",
                                 "unknown_session", "busy", "unsupported", "backend_error") and r["message"]
            if msg.get("type") == "edit" and r["code"] not in ("bad_message", "bad_argument", "no_session"):
                assert r["code"] == "unsupported"  # the sandbox cannot edit, whatever the layer


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=200), extra=st.lists(st.binary(max_size=50), max_size=3))
def test_garbage_frames(fuzz_env, data, extra):
    h, w, sock = fuzz_env
    sock.send_multipart([data, *extra])
    for r in sync(sock):
        assert r["type"] in ("error", "ok", "frame", "welcome", "session", "status", "reject")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(cut=st.integers(1, 200), which=st.integers(0, 100))
def test_truncated_messages(fuzz_env, cut, which):
    h, w, sock = fuzz_env
    handshake(sock)
    samples = [{"type": "input", "action": 2, "client_ts": 1.5, "seq": 3},
               {"type": "start", "req_id": 3, "mode": "step", "text": "a snowy level " * 5},
               {"type": "settings", "req_id": 4, "fps": 30.0, "mode": "step"},
               {"type": "hello", "protocol_major": 1, "codecs": ["raw", "png"]}]
    data = P.encode(samples[which % len(samples)])
    sock.send(data[: min(cut, len(data) - 1)])
    errors = [r for r in sync(sock) if r["type"] == "error"]
    assert all(e["code"] == "bad_message" for e in errors) and len(errors) <= 1


def test_oversized_and_deep_messages(fuzz_env):
    h, w, sock = fuzz_env
    handshake(sock)
    sock.send(P.encode({"type": "start", "req_id": 7, "image": b"\0" * (MAX_BYTES + 10)}))
    errs = [r for r in sync(sock) if r["type"] == "error"]
    assert errs and errs[0]["code"] == "too_large" and errs[0]["req_id"] == 7  # it still answers the request
    sock.send(b"\x91" * 100000 + b"\xc0")  # 100k-deep nested arrays
    assert any(r.get("code") in ("bad_message", "too_large") for r in sync(sock))
    sock.send(P.encode({"type": "event", "req_id": 5, "text": "x" * 5000}))
    errs = [r for r in sync(sock) if r["type"] == "error"]
    assert errs[0]["code"] == "bad_message" and "4096" in errs[0]["message"]
    sock.send(P.encode({"type": "reset", "req_id": 6, "image": b"not a png"}))
    errs = [r for r in sync(sock) if r["type"] == "error"]
    assert errs[0]["code"] == "bad_prompt" and errs[0]["req_id"] == 6


def test_over_hard_cap_drops_only_that_connection(fuzz_env):
    h, w, sock = fuzz_env
    rogue = zmq.Context.instance().socket(zmq.DEALER)
    rogue.setsockopt(zmq.LINGER, 0)
    monitor = rogue.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    rogue.connect(h.address)
    rogue.send(b"\0" * (2 * MAX_BYTES + 100))  # over the hard cap: libzmq closes the connection
    assert monitor.poll(5000), "the host kept a connection that sent more than twice max_message_bytes"
    assert not rogue.poll(300)  # dropped unread: no `too_large` answer was ever made
    rogue.disable_monitor()
    monitor.close(0)
    rogue.close(0)
    handshake(sock)  # everyone else is fine


# --- `edit` on a backend that can edit ---

@pytest.fixture(scope="module")
def edit_env():
    from test_host_edit import PasteWorld  # 16x16 canvas that pastes exactly

    h = run_host_in_thread(PasteWorld, limits=Limits(max_message_bytes=MAX_BYTES))
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(h.address)
    yield h, sock
    sock.close(0)
    assert h.thread.is_alive()
    h.stop()


@st.composite
def layers(draw):
    """Edit layers: PNGs of every mode and size around the 16x16 frame, other images, damaged files, garbage."""
    kind = draw(st.sampled_from(["png", "png", "png", "jpeg", "cut", "garbage", "wrong_type"]))
    if kind == "garbage":
        return draw(st.binary(max_size=80))
    if kind == "wrong_type":
        return draw(anything)
    h, w = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    mode = draw(st.sampled_from(["RGBA", "RGB", "L", "LA", "P", "1", "I;16"])) if kind != "jpeg" else "RGB"
    seed = draw(st.integers(0, 2**32 - 1))
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    img = Image.fromarray(arr, "RGBA").convert(mode)
    if mode == "P" and draw(st.booleans()):
        img.info["transparency"] = 0
    buf = io.BytesIO()
    img.save(buf, format="PNG" if kind != "jpeg" else "JPEG")
    data = buf.getvalue()
    return data[: draw(st.integers(8, len(data) - 1))] if kind == "cut" else data


position = {"near": st.integers(-20, 36), "wide": st.integers(-(2**63), 2**64 - 1), "wrong": anything}


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(layer=layers(), x=st.sampled_from(["near"] * 6 + ["wide", "wrong"]).flatmap(lambda k: position[k]),
       y=st.sampled_from(["near"] * 6 + ["wide", "wrong"]).flatmap(lambda k: position[k]))
def test_fuzzed_edits_get_ok_and_a_frame_or_a_clear_error(edit_env, layer, x, y):
    h, sock = edit_env
    handshake(sock)
    sock.send(msgpack.packb({"type": "edit", "req_id": 7, "layer": layer, "x": x, "y": y}, use_bin_type=True))
    replies = [r for r in sync(sock) if r.get("req_id") == 7 or r["type"] == "frame"]
    answer = next(r for r in replies if r["type"] in ("ok", "error"))
    event(answer["type"] if answer["type"] == "ok" else answer["code"])
    if answer["type"] == "error":
        assert answer["code"] in ("bad_message", "bad_prompt", "bad_argument") and not answer["fatal"], answer
        assert answer["message"]
        return
    assert answer["request"] == "edit" and answer["epoch"] >= 1
    frames = [r for r in replies if r["type"] == "frame" and r["epoch"] == answer["epoch"]]
    assert len(frames) == 1 and frames[0]["events"] == ["edit"] and frames[0]["index"] == answer["frame_index"]
    assert isinstance(layer, bytes) and layer.startswith(b"\x89PNG")
    h, w = Image.open(io.BytesIO(layer)).size[::-1]
    assert -w < x < 16 and -h < y < 16  # part of the layer is on the 16x16 frame


# --- well-formed messages in the orders a buggy engine client sends them ---

requests = st.sampled_from([
    {"type": "start", "mode": "step", "seed": 1}, {"type": "start", "mode": "realtime", "fps": 120.0},
    {"type": "start", "resume": "s-0000"}, {"type": "reset", "seed": 2}, {"type": "reset", "text": "night"},
    {"type": "branch", "frame": 0}, {"type": "branch", "frame": 3}, {"type": "input", "action": 1},
    {"type": "input", "action": "right"}, {"type": "input", "action": 99}, {"type": "settings", "mode": "step"},
    {"type": "settings", "mode": "realtime"}, {"type": "settings", "fps": 60.0}, {"type": "record_start"},
    {"type": "record_stop"}, {"type": "event", "event_type": "spawn_enemy"}, {"type": "event", "text": "rain"},
    {"type": "status"}, {"type": "ping", "client_ts": 0.0}, {"type": "bye"},
    {"type": "hello", "protocol_major": 1, "protocol_minor": 2}, {"type": "hello", "protocol_major": 2},
    {"type": "edit", "layer": b"\x89PNG", "x": 0, "y": 0}])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(burst=st.lists(st.tuples(st.integers(0, 1), requests, st.booleans()), min_size=1, max_size=30))
def test_a_burst_of_requests_in_any_order_is_answered_once_each_in_order(fuzz_env, burst):
    h, w, _ = fuzz_env
    socks = [zmq.Context.instance().socket(zmq.DEALER) for _ in range(2)]
    try:
        for s in socks:
            s.setsockopt(zmq.LINGER, 0)
            s.connect(h.address)
            s.send(P.encode({"type": "hello", "protocol_major": 1, "protocol_minor": 2}))
        sent: list[list[dict]] = [[], []]
        for n, (i, msg, with_id) in enumerate(burst, start=1):  # no waiting for answers
            msg = {**msg, "req_id": n} if with_id or msg["type"] != "input" else dict(msg)
            sent[i].append(msg)
            socks[i].send(P.encode(msg))
        for i, s in enumerate(socks):
            s.send(P.encode({"type": "ping", "req_id": 10**6, "client_ts": 0.0}))
            got = []
            while not got or got[-1].get("req_id") != 10**6:
                assert s.poll(10000), f"no pong; got {got}"
                got.append(P.decode(s.recv_multipart()[0]))
            answers = [m["req_id"] for m in got[:-1] if m["type"] != "frame" and m.get("req_id") is not None]
            assert answers == sorted(set(answers)), got  # in the order asked, none twice
            ended = next((k for k, m in enumerate(sent[i]) if m["type"] == "bye" or m.get("protocol_major") == 2),
                         len(sent[i]))
            if len(sent[i]) - ended < 16:  # a client that talks on after `bye` without reading loses the oldest
                owed = [m["req_id"] for m in sent[i][:ended] if "req_id" in m and m["type"] not in ("input", "hello")]
                assert set(owed) <= set(answers), (owed, got)
            epochs: dict[str, int] = {}
            for m in got:
                if m["type"] == "frame":
                    assert m["epoch"] >= epochs.get(m["session_id"], 0), got
                    epochs[m["session_id"]] = m["epoch"]
    finally:
        for s in socks:
            s.send(P.encode({"type": "bye"}))
            s.close(0)
