"""Starting a session loads its backend off the host loop: other sessions keep ticking, checkpoints load once."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import zmq

from bridge.backend import Prompt
from bridge.client import ProtocolError, WorldClient
from bridge.host import protocol as P
from bridge.host.backends import BackendSpec
from bridge.host.protocol import Limits
from bridge.host.server import run_host_in_thread
from waiting import wait_until

torch.set_num_threads(1)


class SlowLoadWorld:
    """TEST-ONLY backend: "loading" it sleeps `delay` s (a checkpoint read); `spawn()` shares the loaded weights."""

    kind = "world_model"
    name = "test slow-loading world"
    action_names = ["a", "b", "c"]
    num_latent_actions = 3
    event_types = []
    height = width = 8
    delay = 0.0
    reset_delay = 0.0  # building a world from a prompt (a world model re-tokenizes it)
    fail_load = False
    gate: threading.Event | None = None  # when set, loads and world builds wait for it instead of sleeping
    fail_reset = False
    loads = 0
    closed = 0

    def __init__(self, weights=None):
        if weights is None:  # a real load
            if SlowLoadWorld.fail_load:
                raise OSError("checkpoint file is truncated")
            SlowLoadWorld._wait(SlowLoadWorld.delay)
            SlowLoadWorld.loads += 1
            weights = np.arange(4)
        self.weights, self.seed, self.n = weights, 0, 0

    @classmethod
    def reset_counters(cls, delay=0.0):
        cls.delay, cls.fail_load, cls.fail_reset, cls.loads, cls.closed = delay, False, False, 0, 0
        cls.reset_delay, cls.gate = 0.0, None

    @classmethod
    def _wait(cls, delay: float) -> None:
        """Take `delay` s, or until the test opens the gate: a test that proves work goes on meanwhile holds it."""
        if cls.gate is None:
            time.sleep(delay)
        elif delay:
            assert cls.gate.wait(20), "the test never opened the gate"

    def spawn(self):
        return type(self)(self.weights)

    def _frame(self):
        img = np.zeros((8, 8, 3), np.uint8)
        img[0, 0] = (self.seed % 256, self.n % 256, 0)
        return img

    def reset(self, prompt: Prompt):
        if SlowLoadWorld.fail_reset:
            raise ValueError("this world cannot start from that prompt")
        SlowLoadWorld._wait(SlowLoadWorld.reset_delay)
        self.seed, self.n = int(prompt.seed), 0
        return self._frame()

    def step(self, action, event=None):
        self.n += 1
        return self._frame()

    def get_state(self):
        return (self.seed, self.n)

    def set_state(self, state):
        self.seed, self.n = state

    def close(self):
        SlowLoadWorld.closed += 1


class NoSpawnWorld(SlowLoadWorld):
    """TEST-ONLY: the same, but it cannot share weights, so every session loads its own."""

    spawn = None


@pytest.fixture
def slow_host():
    SlowLoadWorld.reset_counters()
    h = run_host_in_thread(BackendSpec("world_model", checkpoint="runs/slow", factory=SlowLoadWorld))
    yield h
    h.stop()


@pytest.fixture
def nospawn_host():
    SlowLoadWorld.reset_counters()
    h = run_host_in_thread(BackendSpec("world_model", checkpoint="runs/nospawn", factory=NoSpawnWorld))
    yield h
    h.stop()


def test_other_sessions_keep_ticking_while_a_checkpoint_loads(nospawn_host):
    address = nospawn_host.address
    with WorldClient(address, timeout=20) as watcher, WorldClient(address, timeout=20) as late:
        watcher.start(mode="realtime", fps=50, seed=1)  # an instant load
        SlowLoadWorld.delay, SlowLoadWorld.gate = 1.0, threading.Event()  # the next one lasts until the gate opens
        started = {}
        t = threading.Thread(target=lambda: started.update(late.start(mode="step", seed=2, timeout=30)))
        t.start()
        assert wait_until(lambda: nospawn_host.host.pending)  # the load has begun
        first = watcher.next_frame(timeout=20)
        for _ in range(25):  # a loop blocked by the load would send nothing until the gate opens
            f = watcher.next_frame(timeout=20)
            assert f is not None, "the running session stalled while another one loaded"
        assert f.index >= first.index + 25 and t.is_alive()  # frames went on; the start waits for its load
        SlowLoadWorld.gate.set()
        t.join(30)
        assert started["seed"] == 2
        assert late.next_frame().index == 0 and late.step(1).index == 1
        assert SlowLoadWorld.loads == 2


def test_a_checkpoint_is_loaded_once_and_spawned_per_session(slow_host):
    SlowLoadWorld.delay = 0.3
    clients = [WorldClient(slow_host.address, timeout=20) for _ in range(3)]
    try:
        threads = [threading.Thread(target=c.start, kwargs={"mode": "step", "seed": i}) for i, c in enumerate(clients)]
        for t in threads:  # three sessions ask at once: the second and third wait for the first load
            t.start()
        for t in threads:
            t.join()
        assert SlowLoadWorld.loads == 1 and slow_host.host.pool.loads == 1
        sessions = list(slow_host.host.sessions.values())
        assert len(sessions) == 3 and len({id(s.backend) for s in sessions}) == 3  # independent worlds...
        assert all(s.backend.weights is sessions[0].backend.weights for s in sessions)  # ...sharing the weights
        assert [c.step(0).image[0, 0, 0] for c in clients] == [0, 1, 2]
    finally:
        for c in clients:
            c.close()


def test_a_backend_without_spawn_is_loaded_per_session(nospawn_host):
    with WorldClient(nospawn_host.address) as a, WorldClient(nospawn_host.address) as b:
        a.start(mode="step")
        b.start(mode="step")
        assert SlowLoadWorld.loads == 2 and nospawn_host.host.pool.loads == 2
        sessions = list(nospawn_host.host.sessions.values())
        assert sessions[0].backend.weights is not sessions[1].backend.weights
        assert a.step(0).index == b.step(0).index == 1


def recv_all(sock, until, timeout=20.0) -> list[dict]:
    """Every message up to and including the first one for which `until(msg)` holds."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sock.poll(int((deadline - time.monotonic()) * 1000) + 1):
            break
        msg = P.decode(sock.recv_multipart()[0])
        seen.append(msg)
        if until(msg):
            return seen
    raise AssertionError(f"no matching message; got {seen}")


def _greeted(address: str, minor: int):
    """A raw DEALER that has said hello and read its welcome."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    sock.send(P.encode({"type": "hello", "protocol_major": 1, "protocol_minor": minor, "client": "t", "codecs": []}))
    recv_all(sock, lambda m: m["type"] == "welcome")
    return sock


@contextmanager
def _started(address: str, until=lambda m: m["type"] == "frame", **start) -> Iterator:
    """A greeted DEALER whose session (`start` fields) has sent a message `until` holds for; closed on leaving."""
    sock = _greeted(address, minor=2)
    try:
        sock.send(P.encode({"type": "start", "req_id": 1, **start}))
        recv_all(sock, until)
        yield sock
    finally:
        sock.close(0)


def test_messages_sent_while_loading_act_in_order_on_the_new_session(slow_host):
    SlowLoadWorld.delay = 0.5
    sock = _greeted(slow_host.address, minor=0)
    try:
        for msg in ({"type": "start", "req_id": 1, "mode": "step", "seed": 5},  # no waiting for `session`
                    {"type": "input", "action": 2, "client_ts": 1.0, "seq": 1},
                    {"type": "status", "req_id": 2},
                    {"type": "ping", "req_id": 3, "client_ts": 2.0}):
            sock.send(P.encode(msg))
        got = recv_all(sock, lambda m: m["type"] == "pong")
        assert [(m["type"], m.get("index"), m.get("req_id")) for m in got] == [
            ("session", None, 1), ("frame", 0, None), ("frame", 1, None), ("status", None, 2), ("pong", None, 3)]
        assert got[0]["seed"] == 5 and got[2]["seq"] == 1 and got[3]["session_id"] == got[0]["session_id"]
    finally:
        sock.close(0)


def test_a_message_that_does_not_decode_is_answered_in_its_turn(slow_host):
    """Its `bad_message` comes after the answers owed to what was sent before it (§3), not ahead of the `session`."""
    SlowLoadWorld.delay = 0.5
    sock = _greeted(slow_host.address, minor=3)
    try:
        sock.send(P.encode({"type": "start", "req_id": 1, "mode": "step", "seed": 5}))
        sock.send(P.encode({"type": "input", "action": 2, "client_ts": 1.0, "seq": 1}))
        sock.send(b"\xc1")  # behind the loading start, then behind the step input's frame
        sock.send(P.encode({"type": "ping", "req_id": 3, "client_ts": 2.0}))
        got = recv_all(sock, lambda m: m["type"] == "pong")
        assert [(m["type"], m.get("index"), m.get("code")) for m in got] == [
            ("session", None, None), ("frame", 0, None), ("frame", 1, None), ("error", None, "bad_message"),
            ("pong", None, None)]
    finally:
        sock.close(0)


def test_a_failed_load_reports_why_and_keeps_the_current_session(nospawn_host):
    slow_host = nospawn_host
    with WorldClient(slow_host.address) as c:
        c.start(mode="step", seed=3)
        SlowLoadWorld.fail_load = True
        with pytest.raises(ProtocolError) as e:
            c.start(mode="step")
        assert e.value.code == "backend_error" and "checkpoint file is truncated" in e.value.message
        SlowLoadWorld.fail_load, SlowLoadWorld.fail_reset = False, True
        with pytest.raises(ProtocolError) as e:
            c.start(mode="step")
        assert e.value.code == "bad_prompt" and "cannot start from that prompt" in e.value.message
        assert c.step(0).image[0, 0, 0] == 3  # the first session still runs
        assert SlowLoadWorld.closed == 1  # the backend whose reset failed was freed
        assert not slow_host.host.pending and len(slow_host.host.sessions) == 1


def test_a_client_that_leaves_while_loading_leaves_nothing_behind(slow_host):
    SlowLoadWorld.delay = 0.4
    c = WorldClient(slow_host.address, timeout=20)
    c.connect()
    with pytest.raises(ProtocolError):
        c.start(mode="step", timeout=0.1)  # gives up before the load ends
    c.close()  # `bye` waits behind the start, then ends the session it made
    wait_until(lambda: not slow_host.host.pending and not slow_host.host.sessions)
    assert not slow_host.host.pending and not slow_host.host.sessions and SlowLoadWorld.closed == 1


def test_a_client_that_vanishes_without_bye_while_loading_holds_no_session_slot(slow_host):
    SlowLoadWorld.delay = 0.4
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(slow_host.address)
    sock.send(P.encode({"type": "hello", "protocol_major": 1, "protocol_minor": 2}))
    sock.send(P.encode({"type": "start", "mode": "step"}))
    assert wait_until(lambda: slow_host.host.pending), "the start began no load: the test would prove nothing"
    sock.close(0)  # gone before its `session` (and the id to resume it) could arrive
    wait_until(lambda: not slow_host.host.pending and not slow_host.host.sessions)
    assert not slow_host.host.pending and not slow_host.host.sessions  # not kept for a resume nobody can send


def test_what_waits_for_a_loading_start_is_bounded():
    SlowLoadWorld.reset_counters(delay=0.5)
    h = run_host_in_thread(BackendSpec("world_model", checkpoint="runs/slow", factory=SlowLoadWorld),
                           limits=Limits(max_message_bytes=4096))
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(h.address)
    try:
        sock.send(P.encode({"type": "hello", "protocol_major": 1, "protocol_minor": 0, "client": "t", "codecs": []}))
        recv_all(sock, lambda m: m["type"] == "welcome")
        sock.send(P.encode({"type": "start", "req_id": 1, "mode": "step"}))
        for i in range(8):  # ~3 KB each: the host holds up to 4 x max_message_bytes for a loading start
            sock.send(P.encode({"type": "status", "req_id": 10 + i, "pad": "x" * 3000}))
        got = recv_all(sock, lambda m: m.get("req_id") == 14)
        busy = [m["req_id"] for m in got if m["type"] == "error"]
        assert busy == [15, 16, 17] and all(m["code"] == "busy" for m in got if m["type"] == "error")
        assert [m["req_id"] for m in got if m["type"] == "status"] == [10, 11, 12, 13, 14]
    finally:
        sock.close(0)
        h.stop()


def test_a_load_that_outlives_the_host_frees_its_backend():
    SlowLoadWorld.reset_counters(delay=0.4)
    h = run_host_in_thread(BackendSpec("world_model", checkpoint="runs/nospawn", factory=NoSpawnWorld))
    c = WorldClient(h.address, timeout=20)
    c.connect()
    with pytest.raises(ProtocolError):
        c.start(mode="step", timeout=0.1)
    h.stop()  # while the backend is still loading
    wait_until(lambda: SlowLoadWorld.closed)
    c.close()
    assert SlowLoadWorld.loads == 1 and SlowLoadWorld.closed == 1


def test_start_waits_past_the_request_timeout_for_a_slow_load(slow_host):
    SlowLoadWorld.delay = 0.4
    with WorldClient(slow_host.address, timeout=20) as c:
        c.connect()
        c.timeout = 0.1  # requests time out at 0.1 s; start allows for loading
        assert c.start(mode="step")["backend_kind"] == "world_model"
        assert c.step(0, timeout=20).index == 1


def test_a_second_start_sent_while_the_first_loads_holds_the_messages_behind_it(slow_host):
    SlowLoadWorld.delay = 0.3
    sock = _greeted(slow_host.address, minor=2)
    try:
        for msg in ({"type": "start", "req_id": 1, "mode": "step", "seed": 5},
                    {"type": "start", "req_id": 2, "mode": "step", "seed": 6},  # held; loads when the first is done
                    {"type": "input", "action": 1, "client_ts": 1.0, "seq": 1},  # must act on the second world
                    {"type": "ping", "req_id": 3, "client_ts": 2.0}):
            sock.send(P.encode(msg))
        got = recv_all(sock, lambda m: m["type"] == "pong")
        assert [(m["type"], m.get("req_id"), m.get("index")) for m in got] == [
            ("session", 1, None), ("frame", None, 0), ("session", 2, None), ("frame", None, 0), ("frame", None, 1),
            ("pong", 3, None)]
        assert got[4]["session_id"] == got[2]["session_id"] != got[0]["session_id"]
        assert slow_host.thread.is_alive() and len(slow_host.host.sessions) == 1
    finally:
        sock.close(0)


def test_a_slow_reset_stalls_no_other_session_and_its_replies_stay_in_order(slow_host):
    with WorldClient(slow_host.address, timeout=20) as watcher:
        watcher.start(mode="realtime", fps=50, seed=1)
        with _started(slow_host.address, mode="step", seed=5) as sock:
            SlowLoadWorld.reset_delay, SlowLoadWorld.gate = 1.0, threading.Event()  # worlds wait for the gate
            for msg in ({"type": "reset", "req_id": 2, "seed": 7},  # no waiting for its `ok`
                        {"type": "input", "action": 1, "client_ts": 1.0, "seq": 1},  # must act on the new world
                        {"type": "status", "req_id": 3},
                        {"type": "ping", "req_id": 4, "client_ts": 2.0}):
                sock.send(P.encode(msg))
            assert wait_until(lambda: slow_host.host.pending)  # the reset builds its world
            first = watcher.next_frame(timeout=20)
            for _ in range(25):  # a loop blocked by the reset would send nothing until the gate opens
                f = watcher.next_frame(timeout=20)
                assert f is not None, "a session stalled while another one reset"
            assert f.index >= first.index + 25 and not sock.poll(0)  # nothing answered before the world was built
            SlowLoadWorld.gate.set()
            got = recv_all(sock, lambda m: m["type"] == "pong")
            assert [(m["type"], m.get("req_id"), m.get("index"), m.get("epoch")) for m in got] == [
                ("ok", 2, None, 1), ("frame", None, 0, 1), ("frame", None, 1, 1), ("status", 3, None, 1),
                ("pong", 4, None, None)]
            assert got[0]["seed"] == 7 and got[2]["seq"] == 1 and got[3]["frame_index"] == 1


def test_a_realtime_session_does_not_tick_while_its_reset_builds_the_world(slow_host):
    with _started(slow_host.address, until=lambda m: m["type"] == "frame" and m["index"] >= 3,
                  mode="realtime", fps=50, seed=5) as sock:
        SlowLoadWorld.reset_delay = 0.6
        sock.send(P.encode({"type": "reset", "req_id": 2, "seed": 7}))
        got = recv_all(sock, lambda m: m["type"] == "frame" and m["epoch"] == 1 and m["index"] == 2)
        ok = next(i for i, m in enumerate(got) if m["type"] == "ok")
        assert sum(m["type"] == "frame" for m in got[:ok]) <= 3  # only those already made when the reset arrived
        assert [(m["epoch"], m["index"]) for m in got[ok + 1:]] == [(1, 0), (1, 1), (1, 2)]


def test_a_reset_world_ticks_one_period_after_its_first_frame_not_at_once(slow_host):
    with _started(slow_host.address, mode="realtime", fps=4, seed=5) as sock:
        SlowLoadWorld.reset_delay = 0.8  # longer than a period: the old schedule is overdue when the world is made
        sock.send(P.encode({"type": "reset", "req_id": 2, "seed": 7}))
        arrived = {}
        deadline = time.monotonic() + 20
        while (1, 1) not in arrived and sock.poll(int(max(deadline - time.monotonic(), 0) * 1000) + 1):
            m = P.decode(sock.recv_multipart()[0])
            if m["type"] == "frame":
                arrived[(m["epoch"], m["index"])] = time.monotonic()
        assert arrived[(1, 1)] - arrived[(1, 0)] > 0.15  # a period is 0.25 s; frame 1 used to follow frame 0 at once


def test_a_host_stopped_during_a_reset_frees_that_world_once():
    SlowLoadWorld.reset_counters()
    h = run_host_in_thread(BackendSpec("world_model", checkpoint="runs/slow", factory=SlowLoadWorld))
    with _started(h.address, mode="step") as sock:
        SlowLoadWorld.reset_delay = 0.4
        sock.send(P.encode({"type": "reset", "req_id": 2}))
        wait_until(lambda: h.host.pending)
        h.stop()  # while the reset still builds the world: the loader, not the host, closes it
        assert SlowLoadWorld.closed == 0
        wait_until(lambda: SlowLoadWorld.closed)
        time.sleep(0.1)  # time for a wrong second close to happen
        assert SlowLoadWorld.closed == 1


def test_a_resume_of_a_session_whose_reset_builds_its_world_waits_for_the_world(slow_host):
    a, b = _greeted(slow_host.address, minor=2), _greeted(slow_host.address, minor=2)
    try:
        a.send(P.encode({"type": "start", "req_id": 1, "mode": "step"}))
        sid = recv_all(a, lambda m: m["type"] == "frame")[-1]["session_id"]
        SlowLoadWorld.reset_delay = 0.5
        t0 = time.monotonic()
        a.send(P.encode({"type": "reset", "req_id": 2, "seed": 9}))
        a.send(P.encode({"type": "reset", "req_id": 3, "seed": 10}))  # held behind the first: the resume waits for both
        assert wait_until(lambda: slow_host.host.pending), "the reset built no world: the resume would not wait"
        b.send(P.encode({"type": "start", "req_id": 4, "resume": sid}))  # a client reconnecting mid-reset
        b.send(P.encode({"type": "input", "action": 1, "client_ts": 1.0, "seq": 1}))  # acts on the resumed session
        b.send(P.encode({"type": "ping", "req_id": 5, "client_ts": 2.0}))
        got = recv_all(b, lambda m: m["type"] == "pong")
        assert time.monotonic() - t0 >= 1.0  # both worlds (0.5 s each, counted from the first reset) were built first
        assert [(m["type"], m.get("req_id"), m.get("epoch"), m.get("index")) for m in got] == [
            ("session", 4, 2, None), ("frame", None, 2, 0), ("frame", None, 2, 1), ("pong", 5, None, None)]
        assert got[0]["resumed"] and got[0]["frame_index"] == 0 and got[2]["seq"] == 1
        got = recv_all(a, lambda m: m["type"] == "error")
        assert [(m["type"], m.get("req_id"), m.get("epoch")) for m in got] == [
            ("ok", 2, 1), ("frame", None, 1), ("ok", 3, 2), ("frame", None, 2), ("error", None, None)]
        assert got[-1]["code"] == "no_session" and got[-1]["fatal"]
    finally:
        a.close(0)
        b.close(0)


def test_messages_held_behind_a_reset_after_a_rejected_hello_act_as_from_a_new_connection(slow_host):
    a, b = _greeted(slow_host.address, minor=2), _greeted(slow_host.address, minor=2)
    try:
        a.send(P.encode({"type": "start", "req_id": 1, "mode": "step"}))
        sid = recv_all(a, lambda m: m["type"] == "frame")[0]["session_id"]
        SlowLoadWorld.reset_delay = 0.3
        for msg in ({"type": "reset", "req_id": 2, "seed": 4},
                    {"type": "hello", "protocol_major": 2},  # held; rejected: the connection is forgotten ...
                    {"type": "input", "action": 1, "req_id": 3},  # ... so this must not step its old session
                    {"type": "ping", "req_id": 4, "client_ts": 1.0},
                    {"type": "hello", "protocol_major": 1, "protocol_minor": 2},  # greeted again: a new peer
                    {"type": "status", "req_id": 5}):
            a.send(P.encode(msg))
        got = recv_all(a, lambda m: m["type"] == "status")
        assert [(m["type"], m.get("req_id"), m.get("code")) for m in got] == [
            ("ok", 2, None), ("frame", None, None), ("reject", None, "version_mismatch"), ("error", 3, "not_ready"),
            ("pong", 4, None), ("welcome", None, None), ("status", 5, None)]
        assert got[-1]["session_id"] is None
        b.send(P.encode({"type": "start", "req_id": 6, "resume": sid}))
        got = recv_all(b, lambda m: m["type"] == "frame")
        assert (got[0]["epoch"], got[0]["frame_index"]) == (1, 0) and slow_host.thread.is_alive()
    finally:
        a.close(0)
        b.close(0)


def test_messages_waiting_behind_step_inputs_after_a_bye_act_as_from_a_new_connection(slow_host):
    with _started(slow_host.address, mode="step") as sock:
        for msg in ({"type": "input", "action": 1},
                    {"type": "input", "action": 2},
                    {"type": "bye"},  # waits behind the inputs' frames, then ends the peer and its session
                    {"type": "ping", "req_id": 2, "client_ts": 1.0},
                    {"type": "hello", "protocol_major": 1, "protocol_minor": 2},  # a client that greets again
                    {"type": "start", "req_id": 3, "mode": "step", "seed": 8}):
            sock.send(P.encode(msg))
        got = recv_all(sock, lambda m: m["type"] == "frame" and m["index"] == 0)
        assert [(m["type"], m.get("req_id"), m.get("index")) for m in got] == [
            ("frame", None, 1), ("frame", None, 2), ("pong", 2, None), ("welcome", None, None), ("session", 3, None),
            ("frame", None, 0)]
        assert got[-2]["seed"] == 8 and len(slow_host.host.sessions) == 1


def _first_idle_check_after_a_load(host) -> list[int]:
    """Lets the host's idle checks run until the first one after a load finished, then stops them, so how long the
    test takes to step after it is not idleness; returns [sessions that check left open] once it has run."""
    real, seen_load, left_open = host._housekeeping, [], []

    def housekeeping() -> None:
        if left_open:
            return
        if host.pending:
            seen_load.append(True)
        real()
        if seen_load and not host.pending:
            left_open.append(len(host.sessions))

    host._housekeeping = housekeeping
    return left_open


@pytest.mark.parametrize("slow", ["start", "reset"])
def test_a_start_or_reset_slower_than_the_idle_timeout_does_not_count_as_idle(slow):
    SlowLoadWorld.reset_counters()
    h = run_host_in_thread(BackendSpec("world_model", checkpoint="runs/slow", factory=SlowLoadWorld),
                           limits=Limits(idle_timeout_s=0.5))
    try:
        with WorldClient(h.address, timeout=20) as c:
            if slow == "reset":
                c.start(mode="step", seed=1)
            left_open = _first_idle_check_after_a_load(h.host)
            SlowLoadWorld.reset_delay = 1.0  # building the world takes twice the idle timeout
            c.start(mode="step", seed=2) if slow == "start" else c.reset(seed=2)
            SlowLoadWorld.reset_delay = 0.0
            assert wait_until(lambda: left_open) == [1], "the first idle check after the build closed the session"
            assert c.step(1).index == 1 and len(h.host.sessions) == 1
    finally:
        h.stop()


def test_a_backend_factory_is_called_once_for_one_env_or_one_session():
    """as_spec called a factory once to learn its kind and threw that world away: a world-model factory loaded its
    weights twice for one WorldEnv or one host session."""
    from bridge.gym import WorldEnv
    from bridge.worlds.sandbox import SandboxWorld

    made = []

    def factory():
        made.append(SandboxWorld(seed=0))
        return made[-1]

    env = WorldEnv(factory)
    try:
        assert len(made) == 1 and env.world is made[0]
    finally:
        env.close()
    made.clear()
    h = run_host_in_thread(factory)
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step", seed=1)
            c.step(0)
        assert len(made) == 1
    finally:
        h.stop()
