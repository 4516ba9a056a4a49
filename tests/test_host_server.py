"""The host over real loopback sockets: handshake, both modes, reset/branch/epochs, resume, limits, failures."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import zmq

from bridge.backend import Prompt, StepRefused
from bridge.client import ProtocolError, WorldClient
from bridge.host import protocol as P
from bridge.host.protocol import Limits
from bridge.host.recording import RecordingReader
from bridge.host.server import Host, is_loopback, run_host_in_thread
from bridge.host.session import Session
from waiting import wait_until

torch.set_num_threads(1)


class CounterWorld:
    """TEST-ONLY backend: frame pixels encode (seed, step count, last action) so tests can read them back."""

    kind = "sandbox"
    name = "test counter world"
    action_names = ["a", "b", "c"]
    num_latent_actions = 3
    event_types = ["boom"]
    height = 8
    width = 8
    batch_calls = 0

    def __init__(self, fail_at: int | None = None):
        self.fail_at = fail_at
        self.seed, self.n, self.last = 0, 0, 0

    def _frame(self):
        img = np.zeros((self.height, self.width, 3), np.uint8)
        img[0, 0] = (self.seed % 256, self.n % 256, self.last)
        return img

    def reset(self, prompt: Prompt):
        self.seed, self.n, self.last = int(prompt.seed or 0), 0, 0
        return self._frame()

    def step(self, action, event=None):
        if self.fail_at is not None and self.n + 1 >= self.fail_at:
            raise RuntimeError("simulated backend crash")
        self.n += 1
        self.last = int(action)
        return self._frame()

    def get_state(self):
        return (self.seed, self.n, self.last)

    def set_state(self, state):
        self.seed, self.n, self.last = state


class BatchWorld(CounterWorld):
    """TEST-ONLY backend with `step_batch`, to prove concurrent sessions share one call."""

    @classmethod
    def step_batch(cls, worlds, actions, events):
        cls.batch_calls += 1
        return [w.step(a, e) for w, a, e in zip(worlds, actions, events)]


class RefusingBatchWorld(CounterWorld):
    """TEST-ONLY batching backend that accepts `boom` when queued but refuses it when the frame is made."""

    @classmethod
    def step_batch(cls, worlds, actions, events):
        if any(e is not None for e in events):
            raise StepRefused("no boom right now")  # refused before any world moves, as WorldModelBackend does
        cls.batch_calls += 1
        return [w.step(a) for w, a in zip(worlds, actions)]

    def step(self, action, event=None):
        if event is not None:
            raise ValueError("no boom right now")
        return super().step(action)


def pixel(frame):
    return tuple(int(x) for x in frame.image[0, 0])


@pytest.fixture
def host():
    h = run_host_in_thread("sandbox", limits=Limits(idle_timeout_s=30), record_anywhere=True)  # tests pick paths
    yield h
    h.stop()


@pytest.fixture
def counter_host():
    h = run_host_in_thread(CounterWorld)
    yield h
    h.stop()


def test_handshake_welcome_lists_capabilities(host):
    with WorldClient(host.address, codecs=["zstd", "png"]) as c:
        w = c.connect()
    assert w["protocol_major"] == 1 and w["codec"] == "png"
    assert {"realtime", "step", "branch", "resume", "record"} <= set(w["capabilities"])
    assert w["default_backend"] == "sandbox" and "sandbox" in w["backends"]
    assert w["limits"]["max_message_bytes"] == 16 * 1024 * 1024


def test_version_mismatch_is_rejected_with_clear_message(host):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.connect(host.address)
    s.send(P.encode({"type": "hello", "protocol_major": 2, "protocol_minor": 3, "client": "x", "codecs": []}))
    assert s.poll(3000)
    msg = P.decode(s.recv())
    s.close(0)
    assert msg["type"] == "reject" and msg["code"] == "version_mismatch"
    assert msg["message"] == "client speaks protocol 2.3, host speaks 1.3: update the plugin or the host"
    assert (msg["protocol_major"], msg["protocol_minor"]) == (1, 3)
    s = ctx.socket(zmq.DEALER)
    s.connect(host.address)
    s.send(P.encode({"type": "hello", "protocol_major": "1"}))  # malformed, not another version
    assert s.poll(3000)
    msg = P.decode(s.recv())
    s.close(0)
    assert msg["type"] == "error" and msg["code"] == "bad_message" and "protocol_major" in msg["message"]


def test_client_without_host_says_how_to_fix():
    with WorldClient("tcp://127.0.0.1:1", timeout=0.3) as c:
        with pytest.raises(ProtocolError) as e:
            c.connect()
    assert "no host at tcp://127.0.0.1:1" in e.value.message and "worldbridge serve" in e.value.message


def test_state_machine_errors(host):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.connect(host.address)
    s.send(P.encode({"type": "status", "req_id": 1}))
    assert s.poll(3000)
    assert P.decode(s.recv())["code"] == "not_ready"
    s.send(P.encode({"type": "hello", "protocol_major": 1}))
    assert s.poll(3000) and P.decode(s.recv())["type"] == "welcome"
    s.send(P.encode({"type": "input", "action": 1, "req_id": 7}))
    assert s.poll(3000)
    err = P.decode(s.recv())
    assert err["code"] == "no_session" and err["req_id"] == 7
    s.send(P.encode({"type": "some_future_message", "req_id": 8}))  # unknown types are ignored
    s.send(P.encode({"type": "ping", "req_id": 9, "client_ts": 1.5}))
    assert s.poll(3000)
    pong = P.decode(s.recv())
    assert pong["type"] == "pong" and pong["req_id"] == 9 and pong["client_ts"] == 1.5
    s.close(0)


def test_step_mode_makes_exactly_one_frame_per_input(counter_host):
    with WorldClient(counter_host.address) as c:
        s = c.start(mode="step", seed=5)
        assert s["backend_name"] == "test counter world" and s["mode"] == "step"
        f0 = c.next_frame()
        assert (f0.index, f0.epoch, f0.action) == (0, 0, -1) and pixel(f0) == (5, 0, 0)
        for i in range(1, 21):
            f = c.step(i % 3)
            assert f.index == i and pixel(f) == (5, i, i % 3) and f.action == i % 3
            assert f.seq is not None and f.client_ts is not None and f.received_ts >= f.client_ts
            assert set(f.timings) >= {"model", "encode", "total"}
        time.sleep(0.1)
        assert c.next_frame(timeout=0.05) is None  # nothing extra was produced
        assert c.step("b").action == 1  # names resolve to ids


def test_realtime_mode_ticks_at_target_fps_with_latest_input(counter_host):
    with WorldClient(counter_host.address) as c:
        t0 = time.monotonic()
        c.start(mode="realtime", fps=50, seed=1)
        c.act("c", seq=42)
        f = wait_until(lambda: (g := c.next_frame(timeout=0.1)) is not None and g.index >= 15 and g)
        assert f and f.index <= 50 * (time.monotonic() - t0) + 2, f.index  # 50 fps at most, however slow the machine
        assert f.action == 2 and f.seq == 42 and pixel(f)[2] == 2
        seen = []  # a descheduled host thread slows the recent ticks for a while: wait for the rate to recover
        st = wait_until(lambda: seen.append(c.status()) or (seen[-1]["fps_measured"] >= 30 and seen[-1]), every=0.05)
        assert st and st["mode"] == "realtime" and all(s["fps_measured"] <= 70 for s in seen), seen[-1]


def test_the_last_step_input_stays_in_force_when_realtime_takes_over(counter_host):
    with WorldClient(counter_host.address) as c:
        c.start(mode="step", seed=1)
        made = c.step("c")
        c.settings(mode="realtime", fps=50)
        f = c.next_frame(timeout=5)
        assert f is not None and f.index > made.index  # a realtime tick, not the step's frame
        assert (f.action, f.seq, pixel(f)[2]) == (2, made.seq, 2)  # the held key keeps walking (§4 input)


def test_reset_and_branch_epochs(counter_host):
    with WorldClient(counter_host.address) as c:
        c.start(mode="step", seed=3)
        c.next_frame()
        for i in range(10):
            c.step(1)
        ok = c.branch(4)
        assert ok["epoch"] == 1 and ok["frame_index"] == 4
        f = c.next_frame()
        assert (f.index, f.epoch) == (4, 1) and pixel(f) == (3, 4, 1)  # frame 4 itself is re-sent
        f = c.step(2)
        assert (f.index, f.epoch) == (5, 1) and pixel(f) == (3, 5, 2)  # continues from the state after frame 4
        ok = c.reset(seed=9)
        assert ok["epoch"] == 2
        f = c.next_frame()
        assert (f.index, f.epoch) == (0, 2) and pixel(f) == (9, 0, 0)
        with pytest.raises(ProtocolError) as e:
            c.branch(50)
        assert e.value.code == "bad_argument" and "branch window" in e.value.message
        c.reset()  # missing prompt keys keep the previous prompt (seed 9)
        assert pixel(c.next_frame()) == (9, 0, 0)


class PromptWorld(CounterWorld):
    """TEST-ONLY: takes text and image prompts and keeps the last prompt it was reset with."""

    capabilities = ["events", "text_prompt", "image_prompt"]

    def reset(self, prompt: Prompt):
        self.prompt = prompt
        return super().reset(prompt)


def test_a_new_text_prompt_replaces_a_kept_image_that_would_win_over_it(tmp_path):
    """An image starts the world as drawn and wins over text, so a reset that sends new text alone dropped it silently
    while the kept image came back: the new text now replaces the image (a reset without text still keeps it)."""
    made = []
    h = run_host_in_thread(lambda: made.append(PromptWorld()) or made[-1], recordings_dir=tmp_path)
    photo = np.full((8, 8, 3), 90, np.uint8)
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step", seed=1, text="a snowy night")
            c.reset(image=photo)
            assert made[0].prompt.image is not None and made[0].prompt.text == "a snowy night"
            c.reset(seed=2)  # nothing new: the image stays
            assert made[0].prompt.image is not None
            c.reset(text="  ")  # blank text is no prompt: it replaces nothing
            assert made[0].prompt.image is not None
            c.reset(text="a desert at dawn")
            assert made[0].prompt.image is None and made[0].prompt.text == "a desert at dawn"
            c.record_start("r.wbrec")
            path = c.record_stop()["path"]
        assert RecordingReader(path).header["prompt"].get("image") is None  # a replay rebuilds the text's world
    finally:
        h.stop()


def test_stale_epoch_frames_are_dropped_by_client(counter_host):
    with WorldClient(counter_host.address) as c:
        c.start(mode="realtime", fps=100, seed=1)
        time.sleep(0.2)
        c.reset(seed=2)
        f = c.next_frame()
        assert f.epoch == 1 and pixel(f)[0] == 2


def test_every_client_message_in_the_spec_has_a_handler():
    from bridge.host.server import Host

    inline = {"hello", "ping", "status"}  # answered in `_handle` itself
    assert all(hasattr(Host, f"_on_{m}") for m in set(P.SCHEMAS) - inline), set(P.SCHEMAS)


def test_bad_action_event_and_settings(host):
    with WorldClient(host.address) as c:
        s = c.start(mode="step", seed=1)
        assert s["backend_kind"] == "sandbox"
        with pytest.raises(ProtocolError) as e:
            c.step("fly")
        assert e.value.code == "bad_argument" and "unknown action name 'fly'" in e.value.message
        assert c.event(event_type="weather_snow")["caption"]
        f = c.step(0)
        assert f.events  # the caption shows on the frame the event fired on
        assert c.event(text="make it snow")["caption"] == "it starts to snow"
        with pytest.raises(ProtocolError) as e:
            c.event(text="qwertyuiop")
        assert e.value.code == "bad_argument"
        with pytest.raises(ProtocolError) as e:
            c.event(event_type="earthquake")
        assert e.value.code == "bad_argument"
        with pytest.raises(ProtocolError) as e:
            c.event(text="   ")
        assert e.value.code == "bad_argument" and "blank text is no event" in e.value.message
        st = c.settings(fps=30.0, steps=4)["settings"]
        assert st["fps"] == 30.0 and st["steps"] is None and st["mode"] == "step"  # the sandbox has no steps
        with pytest.raises(ProtocolError) as e:
            c.settings(fps=500.0)
        assert e.value.code == "bad_argument"


def test_action_map_extends_names(counter_host):
    with WorldClient(counter_host.address) as c:
        c.start(mode="step", action_map={"jump": 2})
        c.next_frame()
        assert c.step("jump").action == 2
        with pytest.raises(ProtocolError, match=r"`action_map` maps 'jump' to 99, but the backend has 3 actions "
                                                r"\(0-2\)$") as e:
            c.start(mode="step", action_map={"jump": 99})
        assert e.value.code == "bad_argument"


def test_resume_after_reconnect(counter_host):
    c1 = WorldClient(counter_host.address)
    c1.start(mode="step", seed=4)
    for _ in range(5):
        c1.step(1)
    sid = c1.session["session_id"]
    c1._sock.close(0)  # vanish without bye (e.g. the engine crashed)
    with WorldClient(counter_host.address) as c2:
        s = c2.start(resume=sid)
        assert s["resumed"] and s["frame_index"] == 5 and s["session_id"] == sid
        assert c2.next_frame().index == 5  # the current frame is re-sent
        assert c2.step(0).index == 6
    with WorldClient(counter_host.address) as c3:  # bye closed it: no longer resumable
        with pytest.raises(ProtocolError) as e:
            c3.start(resume=sid)
        assert e.value.code == "unknown_session"


def test_idle_sessions_time_out():
    h = run_host_in_thread(CounterWorld, limits=Limits(idle_timeout_s=1.0))
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step")
            sid = c.session["session_id"]
            assert wait_until(lambda: sid not in h.host.sessions)  # silent past the timeout: the host closed it
            with pytest.raises(ProtocolError) as e:
                c.step(0)
            assert e.value.code == "no_session"
            with WorldClient(h.address) as c2:
                with pytest.raises(ProtocolError) as e:
                    c2.start(resume=sid)
                assert e.value.code == "unknown_session"
                time.sleep(1.5)  # greeted, then silent for longer than the timeout before its first start
                assert c2.start(mode="step")["type"] == "session"
            assert c.start(mode="step")["session_id"] != sid  # "start a new one", as the notice says: it works
            assert c.step(0).index == 1
    finally:
        h.stop()


def test_any_message_keeps_a_session_alive_and_silence_closes_it():
    h = run_host_in_thread(CounterWorld, limits=Limits(idle_timeout_s=1.5))  # outlasts a descheduled test thread
    try:
        with WorldClient(h.address) as pinger, WorldClient(h.address) as silent:
            pinger.start(mode="step")
            silent.start(mode="step")
            sid = silent.session["session_id"]
            deadline = time.monotonic() + 20
            while sid in h.host.sessions and time.monotonic() < deadline:  # until the silent one is closed
                pinger.ping()  # a paused editor: only pings and status requests, no session message
                assert pinger.status()["session_id"] == pinger.session["session_id"]
                time.sleep(0.15)
            assert pinger.step(0).index == 1
            with pytest.raises(ProtocolError) as e:
                silent.step(0)
            assert e.value.code == "no_session" and "without messages" in e.value.message
    finally:
        h.stop()


def test_status_and_ping_answer_after_queued_step_inputs(counter_host):
    with WorldClient(counter_host.address) as c:
        c.start(mode="step")
        for _ in range(5):
            c.act(1)  # not waiting for the frames
        assert c.status()["frame_index"] == 5  # order is kept: the inputs made their frames first
        for _ in range(3):
            c.act(2)
        c.ping()
        assert [f.index for f in c.drain_frames()] == list(range(6)) + [6, 7, 8]


def test_session_reports_the_seed_its_world_started_from(tmp_path):
    from bridge.host.replay import replay_recording
    from bridge.worlds.sandbox import SandboxWorld

    h = run_host_in_thread("sandbox", recordings_dir=tmp_path)
    try:
        with WorldClient(h.address) as c, WorldClient(h.address) as again:
            assert c.start(mode="step", seed=7)["seed"] == 7
            drawn = c.start(mode="step")["seed"]  # no seed given: the host draws one and says which
            assert isinstance(drawn, int) and 0 <= drawn < 2**31
            first = c.next_frame()
            assert again.start(mode="step", seed=drawn)["seed"] == drawn
            assert np.array_equal(again.next_frame().image, first.image)  # the world can be rebuilt from it
            path = c.record_start(str(tmp_path / "seedless.wbrec"))["path"]
            for a in (2, 2, 3, 0):
                c.step(a)
            reset = c.reset()  # a reset without a seed draws a new one (the old behaviour) and reports it too
            assert isinstance(reset["seed"], int) and c.next_frame().index == 0
            assert c.reset(seed=9)["seed"] == 9
            c.next_frame()
            c.step(1)
            c.record_stop()
        report = replay_recording(path, lambda: SandboxWorld(64, 0), progress=False)
        assert report["reproduced"] and report["frames_compared"] == 7  # a seedless start replays exactly
    finally:
        h.stop()


def test_max_sessions_busy():
    h = run_host_in_thread(CounterWorld, limits=Limits(max_sessions=2))
    clients = [WorldClient(h.address) for _ in range(3)]
    try:
        clients[0].start(mode="step")
        clients[1].start(mode="step")
        with pytest.raises(ProtocolError) as e:
            clients[2].start(mode="step")
        assert e.value.code == "busy"
        clients[0].close()
        assert wait_until(lambda: len(h.host.sessions) == 1)  # the `bye` was handled
        assert clients[2].start(mode="step")["session_id"]
    finally:
        for c in clients:
            c.close()
        h.stop()


def test_backend_crash_closes_only_that_session():
    h = run_host_in_thread(lambda: CounterWorld(fail_at=3))
    try:
        with WorldClient(h.address) as c, WorldClient(h.address) as other:
            c.start(mode="step")
            other.start(mode="step")
            c.step(0)
            c.step(0)
            with pytest.raises(ProtocolError) as e:
                c.step(0)
            assert e.value.code == "backend_error" and "simulated backend crash" in e.value.message
            assert c.session is None
            other.step(1)  # the host is fine
            assert other.ping() > 0
    finally:
        h.stop()


def test_step_batch_is_used_for_concurrent_sessions():
    BatchWorld.batch_calls = 0
    h = run_host_in_thread(BatchWorld)
    try:
        clients = [WorldClient(h.address) for _ in range(4)]
        for c in clients:
            c.start(mode="realtime", fps=100)
        frames = [wait_until(lambda c=c: (f := c.next_frame(timeout=0.1)) is not None and f.index > 10 and f)
                  for c in clients]
        assert all(f and f.index > 10 for f in frames)
        assert BatchWorld.batch_calls > 5
        for c in clients:
            c.close()
    finally:
        h.stop()


def test_sixteen_concurrent_step_clients(host):
    n_frames, results, errors = 30, {}, []

    def run(i):
        try:
            with WorldClient(host.address, timeout=20) as c:
                c.start(mode="step", seed=i)
                c.next_frame()
                got = [c.step(i % 7).index for _ in range(n_frames)]
                results[i] = got
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(results) == 16 and all(r == list(range(1, n_frames + 1)) for r in results.values())


def test_slow_realtime_client_gets_newest_frame_not_backlog():
    h = run_host_in_thread(lambda: CounterWorld(), sndbuf=16 * 1024)
    try:
        with WorldClient(h.address) as c:
            c.start(mode="realtime", fps=120)
            c._sock.setsockopt(zmq.RCVBUF, 8 * 1024)
            session = next(iter(h.host.sessions.values()))
            assert wait_until(lambda: session.index >= 180)  # reads nothing while 180 frames (1.5 s) pile up
            st = c.status()  # still answered (replies queue behind frames, never dropped)
            f = c.next_frame()
            assert f.index >= st["frame_index"]  # newest (every frame made before the answer came first), no backlog
    finally:
        h.stop()


@contextmanager
def _slow_reader() -> Iterator[tuple[zmq.Socket, Session]]:
    """A realtime session at 120 fps of big frames whose client reads nothing yet: its pipe fills at once."""
    big = type("BigWorld", (CounterWorld,), {"height": 256, "width": 256})
    h = run_host_in_thread(big, sndbuf=64 * 1024)
    s = zmq.Context.instance().socket(zmq.DEALER)
    try:
        s.setsockopt(zmq.RCVHWM, 2)
        s.setsockopt(zmq.RCVBUF, 64 * 1024)
        s.connect(h.address)
        s.send(P.encode({"type": "hello", "protocol_major": 1}))
        s.send(P.encode({"type": "start", "mode": "realtime", "fps": 120.0}))
        wait_until(lambda: h.host.sessions)
        yield s, next(iter(h.host.sessions.values()))
    finally:
        s.close(0)
        h.stop()


def test_frames_dropped_when_client_never_reads():
    with _slow_reader() as (s, session):
        wait_until(lambda: session.frames_dropped > 50)
        assert session.frames_dropped > 50 and session.frames_sent < 60


def test_realtime_frames_that_carry_an_event_are_never_dropped():
    with _slow_reader() as (s, session):
        assert wait_until(lambda: session.frames_dropped > 20), "no frame was dropped: the test would prove nothing"
        for n in range(5):
            s.send(P.encode({"type": "event", "event_type": "boom", "req_id": n + 1}))
        assert wait_until(lambda: sum(1 for e in list(session.history) if e[0] == "step" and e[2]) == 5)  # all 5 fired
        s.send(P.encode({"type": "settings", "mode": "step", "req_id": 9}))  # the stream stops: read what came
        wait_until(lambda: session.mode == "step")
        captions = []
        while s.poll(1000):
            msg = P.decode(s.recv_multipart()[0])
            if msg["type"] == "frame":
                captions += msg["events"]
        assert len(captions) == 5  # a recorder or timeline keeps the frame each event fired on (was: most dropped)


CHILD = """
import sys, time
from bridge.client import WorldClient
c = WorldClient(sys.argv[1])
c.start(mode="realtime", fps=100)
print("started", flush=True)
while True:
    c.next_frame(timeout=1)
"""


def test_sigkilled_client_leaves_host_healthy(host):
    proc = subprocess.Popen([sys.executable, "-c", CHILD, host.address], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        assert wait_until(lambda: any(s.frames_sent >= 30 for s in list(host.host.sessions.values())))  # streaming
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(20)
        with WorldClient(host.address) as c:
            c.start(mode="step")
            assert c.step(1).index == 1
            assert c.status()["sessions"] >= 1

        def detached() -> bool:
            return all(s.peer is None for s in list(host.host.sessions.values()) if s.mode == "realtime")

        assert wait_until(detached)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_binding_beyond_loopback_needs_curve():
    assert is_loopback("tcp://127.0.0.1:5555") and is_loopback("tcp://localhost:1") and is_loopback("ipc:///tmp/x")
    assert not is_loopback("tcp://0.0.0.0:5555") and not is_loopback("tcp://192.168.1.2:5555")
    with pytest.raises(ValueError, match="worldbridge keys"):
        Host("sandbox", bind="tcp://0.0.0.0:*")


def test_curve_encrypted_session(tmp_path):
    from zmq.auth import create_certificates, load_certificate

    create_certificates(str(tmp_path), "host")
    public, _ = load_certificate(str(tmp_path / "host.key"))
    h = run_host_in_thread(CounterWorld, bind="tcp://127.0.0.1:*", curve_secret=tmp_path / "host.key_secret")
    try:
        with WorldClient(h.address, curve_server_key=public) as c:
            c.start(mode="step")
            assert c.step(1).index == 1
        with WorldClient(h.address, timeout=0.5) as plain:  # a client without the key gets nowhere
            with pytest.raises(ProtocolError):
                plain.connect()
    finally:
        h.stop()


def test_record_paths_are_checked(host, tmp_path):
    with WorldClient(host.address) as c:
        c.start(mode="step")
        with pytest.raises(ProtocolError, match="must end in .wbrec"):
            c.record_start(str(tmp_path / "x.txt"))
        ok = c.record_start(str(tmp_path / "a.wbrec"))
        assert ok["path"].endswith("a.wbrec") and c.status()["recording"]
        with pytest.raises(ProtocolError, match="already recording"):
            c.record_start(str(tmp_path / "b.wbrec"))
        c.step(0)
        assert c.record_stop()["frames"] == 1
        with pytest.raises(ProtocolError, match="already exists"):
            c.record_start(str(tmp_path / "a.wbrec"))
        with pytest.raises(ProtocolError, match="cannot write .*too long") as e:
            c.record_start(str(tmp_path / ("a" * 300 + ".wbrec")))
        assert e.value.code == "bad_argument"


def test_a_host_confines_recordings_to_its_folder_unless_told_otherwise(tmp_path):
    rec_dir, outside = tmp_path / "rec", tmp_path / "elsewhere"
    h = run_host_in_thread("sandbox", recordings_dir=rec_dir)  # the default, in a program as in `worldbridge serve`
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step")
            for bad in (outside / "a.wbrec", "../a.wbrec", rec_dir / ".." / "a.wbrec"):
                with pytest.raises(ProtocolError) as e:
                    c.record_start(str(bad))
                assert e.value.code == "bad_argument" and str(rec_dir.resolve()) in e.value.message
                assert "--recordings" in e.value.message and "--record-anywhere" in e.value.message
            assert not outside.exists() and not (tmp_path / "a.wbrec").exists()  # no folder made, no file written
            assert c.record_start("deep/a.wbrec")["path"] == str(rec_dir / "deep" / "a.wbrec")  # relative to it
            c.record_stop()
            assert c.record_start(str(rec_dir.resolve() / "b.wbrec"))["path"].endswith("b.wbrec")  # inside: fine
            c.record_stop()
            assert (rec_dir / "deep" / "a.wbrec").is_file() and (rec_dir / "b.wbrec").is_file()
    finally:
        h.stop()
    h = run_host_in_thread("sandbox", recordings_dir=rec_dir, record_anywhere=True)  # the explicit opt-out
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step")
            assert c.record_start(str(outside / "a.wbrec"))["path"] == str(outside / "a.wbrec")
            c.record_stop()
    finally:
        h.stop()
    with pytest.raises(ValueError, match="--record-anywhere is for hosts bound to loopback"):
        Host("sandbox", bind="tcp://0.0.0.0:*", curve_secret=tmp_path / "unused", record_anywhere=True)


def test_default_recording_names_never_collide(tmp_path):
    h = run_host_in_thread("sandbox", recordings_dir=tmp_path)
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step")
            paths = []
            for _ in range(3):  # three recordings inside one second: each gets its own file
                paths.append(c.record_start()["path"])
                c.step(0)
                c.record_stop()
            assert len(set(paths)) == 3 and all(p.endswith(".wbrec") for p in paths)
            with pytest.raises(ProtocolError, match="bad_argument.*NUL"):
                c.record_start(str(tmp_path / "a\0b.wbrec"))
            h.host.loopback = False  # as a host bound beyond loopback checks paths (it resolves them first)
            with pytest.raises(ProtocolError, match="bad_argument.*NUL"):
                c.record_start("a\0b.wbrec")
    finally:
        h.stop()


class _FullDisk:
    """TEST-ONLY stand-in for a recording file on a disk that just filled up."""

    def __init__(self, f):
        self.f, self.closed = f, False

    def write(self, data):
        raise OSError(28, "No space left on device")

    def flush(self):
        pass

    def close(self):
        self.closed = True
        self.f.close()


def test_a_failed_recording_write_stops_that_recording_not_the_host(tmp_path):
    h = run_host_in_thread("sandbox", recordings_dir=tmp_path)
    try:
        with WorldClient(h.address) as a, WorldClient(h.address) as b:
            a.start(mode="step")
            b.start(mode="step")
            path = a.record_start(str(tmp_path / "full.wbrec"))["path"]
            a.step(0)
            rec = next(s for s in h.host.sessions.values() if s.recorder is not None).recorder
            rec._f = _FullDisk(rec._f)  # the disk fills up
            a.step(1)  # this frame cannot be written
            deadline = time.monotonic() + 5
            while not a.errors and time.monotonic() < deadline:
                a.status()
            stopped = a.errors[-1]  # (1.3) a code of its own, so clients can tell they no longer record
            assert (stopped["code"], stopped["fatal"], stopped["path"], stopped["frames"]) == ("recording_stopped", False,
                                                                                             path, 1)
            assert "full.wbrec stopped: No space left" in stopped["message"]
            assert not a.status()["recording"] and a.step(0).index == 3  # the session goes on...
            assert b.step(0).index == 1  # ...and so does everyone else's
            kept = RecordingReader(path)
            assert len(list(kept.frames())) == 1 and not kept.complete  # the frame written before is readable
    finally:
        h.stop()


def test_recording_paths_are_answered_absolute_so_a_client_in_another_folder_finds_the_file(tmp_path, monkeypatch):
    """A host with the default relative `recordings` folder: a client whose working dir differs must still open `path`."""
    from bridge.host.recording import RecordingReader
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path)
    h = run_host_in_thread("sandbox")  # recordings_dir "recordings", relative to the host's working dir
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step")
            started = c.record_start()["path"]
            c.step(0)
            done = c.record_stop()
            assert Path(done["path"]).is_absolute() and done["path"] == started
            assert Path(done["path"]).parent == tmp_path / "recordings"
            c.record_start("run.wbrec")
            rec = next(s for s in h.host.sessions.values() if s.recorder is not None).recorder
            rec._f = _FullDisk(rec._f)
            c.step(0)
            deadline = time.monotonic() + 5
            while not c.errors and time.monotonic() < deadline:
                c.status()
            assert c.errors[-1]["path"] == str(tmp_path / "recordings" / "run.wbrec")
        monkeypatch.chdir(elsewhere)  # the client elsewhere: the answered path still opens
        assert RecordingReader(done["path"]).frame_count == 1
    finally:
        h.stop()
    h = run_host_in_thread("sandbox", record_anywhere=True)  # a relative path is then the host's working dir's
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step")
            assert c.record_start("any.wbrec")["path"] == str(elsewhere / "any.wbrec")
            assert c.record_stop()["path"] == str(elsewhere / "any.wbrec")
    finally:
        h.stop()


def test_a_recording_the_full_disk_refuses_at_its_start_leaves_no_file_and_its_name_free(tmp_path, monkeypatch):
    import builtins

    from bridge.host import recording
    h = run_host_in_thread("sandbox", recordings_dir=tmp_path)
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step")
            monkeypatch.setattr(recording, "open", lambda p, m: _FullDisk(builtins.open(p, m)), raising=False)
            with pytest.raises(ProtocolError, match="cannot write .*run.wbrec: No space left on device"):
                c.record_start("run.wbrec")
            assert not (tmp_path / "run.wbrec").exists()
            monkeypatch.undo()  # space freed: the same name works, not "already exists"
            assert c.record_start("run.wbrec")["path"] == str(tmp_path / "run.wbrec")
    finally:
        h.stop()


def test_a_1_2_client_whose_recording_fails_gets_the_backend_error_it_knows(tmp_path):
    """Engine plugins of 1.2 know no `recording_stopped`: they still get an error naming the file, as before 1.3."""
    h = run_host_in_thread("sandbox", recordings_dir=tmp_path)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(h.address)

    def reply(mtype: str) -> dict:
        while sock.poll(5000):
            parts = sock.recv_multipart()
            msg = P.decode(parts[0])
            if msg["type"] == mtype:
                return msg
        raise AssertionError(f"no {mtype} from the host")

    try:
        sock.send(P.encode({"type": "hello", "protocol_major": 1, "protocol_minor": 2, "client": "unity/0.3.5"}))
        sock.send(P.encode({"type": "start", "mode": "step"}))
        sock.send(P.encode({"type": "record_start", "req_id": 1, "path": "old.wbrec"}))
        assert reply("ok")["request"] == "record_start"
        rec = next(s for s in h.host.sessions.values() if s.recorder is not None).recorder
        rec._f = _FullDisk(rec._f)
        sock.send(P.encode({"type": "input", "action": 0}))
        err = reply("error")
        assert err["code"] == "backend_error" and not err["fatal"] and "path" not in err
        assert "old.wbrec stopped: No space left" in err["message"]
    finally:
        sock.close(0)
        h.stop()


class KnobWorld(CounterWorld):
    """TEST-ONLY backend with model settings, like the world model's `settings` + `configure`."""

    def __init__(self):
        super().__init__()
        self.settings = {"steps": 8, "temperature": 1.0, "cfg": 1.0}

    def configure(self, steps=None, temperature=None, cfg=None):
        if steps is not None and steps > 16:
            raise ValueError(f"steps {steps} is more than the 16 tokens per frame")
        self.settings.update({k: v for k, v in (("steps", steps), ("temperature", temperature), ("cfg", cfg))
                              if v is not None})
        return dict(self.settings)


def test_settings_reach_a_backend_with_knobs():
    h = run_host_in_thread(KnobWorld)
    try:
        with WorldClient(h.address) as c:
            s = c.start(mode="step")
            assert s["settings"] == {"steps": 8, "temperature": 1.0, "cfg": 1.0, "event_cfg": None, "top_p": None,
                                     "unmask": None, "fps": 24.0, "mode": "step"}
            st = c.settings(steps=4, temperature=0.5)["settings"]
            assert st["steps"] == 4 and st["temperature"] == 0.5 and st["cfg"] == 1.0
            session = next(iter(h.host.sessions.values()))
            assert session.backend.settings["steps"] == 4
            with pytest.raises(ProtocolError) as e:
                c.settings(steps=20)
            assert e.value.code == "bad_argument" and "16 tokens" in e.value.message
            assert c.settings()["settings"]["steps"] == 4
            with pytest.raises(ProtocolError) as e:  # (1.2) a backend whose configure has no top_p says so
                c.settings(top_p=0.9)
            assert e.value.code == "bad_argument" and "no top_p" in e.value.message
    finally:
        h.stop()


class HeavyStateWorld(CounterWorld):
    """TEST-ONLY backend whose state is large (like a KV cache): the host must keep keyframes, not every state."""

    def get_state(self):
        return {"small": super().get_state(), "cache": np.zeros(4 * 1024 * 1024, np.uint8)}

    def set_state(self, state):
        super().set_state(state["small"])


def test_branch_with_sparse_keyframes_is_exact():
    h = run_host_in_thread(HeavyStateWorld, limits=Limits(branch_window=64, branch_window_bytes=32 * 1024 * 1024))
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step", seed=7)
            for i in range(1, 41):
                c.step(i % 3)
            session = next(iter(h.host.sessions.values()))
            assert session.keyframe_every >= 8 and len(session.keyframes) <= 64 // 8 + 2  # ~32 MB, not 160
            ok = c.branch(37)  # between keyframes: restored by re-simulating from the one before
            assert ok["frame_index"] == 37
            assert pixel(c.next_frame()) == (7, 37, 37 % 3)
            f = c.step(0)
            assert f.index == 38 and pixel(f) == (7, 38, 0)
            with pytest.raises(ProtocolError, match="branch window"):
                c.branch(39)  # the old future is gone after a branch
    finally:
        h.stop()


class SlowHeavyStateWorld(HeavyStateWorld):
    """TEST-ONLY: once `slow` is set, each frame takes 0.1 s, as the world model's does on a busy 2-core CPU."""

    slow = False

    def step(self, action, event=None):
        if self.slow:
            time.sleep(0.1)
        return super().step(action, event)


def test_branch_waits_for_a_re_simulation_longer_than_the_per_frame_timeout():
    h = run_host_in_thread(SlowHeavyStateWorld, limits=Limits(branch_window=64, branch_window_bytes=32 * 1024 * 1024))
    try:
        with WorldClient(h.address, timeout=0.35) as c:  # one frame (0.1 s) fits in it; a branch's replay does not
            c.start(mode="step", seed=7)
            for i in range(1, 41):
                c.step(i % 3)
            session = next(iter(h.host.sessions.values()))
            k = session.keyframe_every
            target = 40 // k * k - 1  # just before a keyframe: re-simulated from the one before, k - 1 >= 7 frames
            assert k >= 8 and target + 1 - k in session.keyframes
            session.backend.slow = True
            assert c.step(1).index == 41  # a single slow frame is within the client's timeout
            t0 = time.monotonic()
            ok = c.branch(target)  # >= 0.7 s of re-simulation
            assert ok["frame_index"] == target and time.monotonic() - t0 > 0.35
            assert pixel(c.next_frame()) == (7, target, target % 3)
            with pytest.raises(ProtocolError, match="timeout"):
                c.branch(target - 1, timeout=0.2)  # an explicit timeout still holds
    finally:
        h.stop()


def _two_realtime_sessions(h, ready: Callable[[], bool]):
    """Two clients with realtime sessions at 50 fps, ticking together (so a batching backend batches them), once
    `ready` holds."""
    a, b = WorldClient(h.address), WorldClient(h.address)
    for c in (a, b):
        c.start(mode="realtime", fps=50)
    wait_until(ready)
    return a, b


def test_an_event_refused_in_a_batch_is_that_sessions_error_only():
    RefusingBatchWorld.batch_calls = 0
    h = run_host_in_thread(RefusingBatchWorld)
    try:
        a, b = _two_realtime_sessions(h, lambda: RefusingBatchWorld.batch_calls > 0)
        assert RefusingBatchWorld.batch_calls > 0
        queued = a.event(event_type="boom")
        assert queued["caption"] == "boom"  # accepted when queued
        wait_until(lambda: a.drain_frames(timeout=0.1) is not None and a.errors)  # reads what arrived, errors too
        time.sleep(0.2)  # time for a wrong second error, or one of b's, to arrive
        for c in (a, b):
            c.drain_frames()
        assert [e["code"] for e in a.errors] == ["bad_argument"] and "no boom right now" in a.errors[0]["message"]
        assert not a.errors[0]["fatal"] and not b.errors
        assert a.errors[0]["event_req_id"] == queued["req_id"]  # re-queued after the batch with its req_id
        for c in (a, b):
            frames, deadline = [], time.monotonic() + 20
            while len(frames) < 3 and time.monotonic() < deadline:
                frames += c.drain_frames(timeout=0.1)
            assert len(frames) >= 3 and frames[-1].index > frames[0].index  # both sessions go on
            assert not any(f.events for f in frames)  # the refused event never showed
        for c in (a, b):
            c.close()
    finally:
        h.stop()


def test_an_event_refused_at_its_frame_names_the_event_it_refused():
    h = run_host_in_thread(RefusingBatchWorld)  # one session: stepped alone, the backend's step refuses the event
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step", seed=1)
            queued = c.event(event_type="boom", text="kaboom")
            c.step(0)
            wait_until(lambda: c.drain_frames(timeout=0.1) is not None and c.errors)
            assert list(c.errors) == [{"type": "error", "req_id": None, "code": "bad_argument",
                                       "message": "event 'boom' was refused by the backend: no boom right now",
                                       "fatal": False, "event_req_id": queued["req_id"], "event_type": "boom",
                                       "text": "kaboom"}]
    finally:
        h.stop()


def test_an_event_sent_without_req_id_is_refused_with_a_nil_event_req_id():
    s = Session(RefusingBatchWorld(), mode="step")
    s.begin(Prompt(seed=1))
    s.queue_event("boom", None)  # `req_id` is optional on `event`
    s.queue_event("boom", "kaboom", req_id=7)
    first, second = s.step(0).refused, s.step(0).refused
    assert (first["event_req_id"], first["event_type"], first["text"]) == (None, "boom", None)
    assert (second["event_req_id"], second["event_type"], second["text"]) == (7, "boom", "kaboom")


def test_refused_step_inputs_are_not_recorded(monkeypatch, tmp_path):
    from bridge.host import server as S
    from bridge.host.recording import RecordingReader

    monkeypatch.setattr(S, "MAX_STEP_QUEUE", 0)  # every step input is refused as `busy`
    h = run_host_in_thread(CounterWorld, recordings_dir=tmp_path)
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step")
            c.record_start(str(tmp_path / "r.wbrec"))
            with pytest.raises(ProtocolError) as e:
                c.step(1)
            assert e.value.code == "busy"
            c.record_stop()
    finally:
        h.stop()
    assert list(RecordingReader(tmp_path / "r.wbrec").inputs()) == []  # a replay would apply inputs never taken


class BigFrameWorld(CounterWorld):
    """TEST-ONLY: 128x128 frames, so a few hundred queued frames weigh megabytes."""

    height = width = 128


def test_a_peer_that_reads_nothing_is_forgotten_by_the_bytes_it_queues(monkeypatch):
    from bridge.host import server as S

    monkeypatch.setattr(S, "MAX_OUTBOX_BYTES", 2 * 1024 * 1024)  # count stays far under MAX_OUTBOX (4096)
    h = run_host_in_thread(BigFrameWorld, sndhwm=1, sndbuf=4096)
    try:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 1)
        sock.setsockopt(zmq.RCVBUF, 4096)
        sock.connect(h.address)
        sock.send(P.encode({"type": "hello", "protocol_major": 1, "protocol_minor": 2, "client": "mute"}))
        sock.send(P.encode({"type": "start", "mode": "step"}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(p.session for p in list(h.host.peers.values())):
            time.sleep(0.02)
        assert len(h.host.peers) == 1
        for i in range(400):  # 400 frames of 48 KiB: ~19 MiB the client never reads
            sock.send(P.encode({"type": "input", "action": i % 3}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and h.host.peers:
            time.sleep(0.05)
        assert not h.host.peers  # forgotten long before 4096 frames were queued
        sock.close(0)
    finally:
        h.stop()


class SlowStepWorld(CounterWorld):
    """TEST-ONLY: each frame takes 20 ms, as a small world model's would."""

    def step(self, action, event=None):
        time.sleep(0.02)
        return super().step(action, event)


def test_a_burst_of_step_inputs_then_a_ping_keeps_order_without_stalling_others():
    h = run_host_in_thread(SlowStepWorld)
    try:
        with WorldClient(h.address) as a, WorldClient(h.address, max_buffered_frames=1024) as b:
            b.start(mode="realtime", fps=20)
            a.start(mode="step")
            a.next_frame(timeout=2)
            b.drain_frames()
            for i in range(50):  # 50 frames of 20 ms each: a second of work queued at once
                a.act(i % 3, seq=i)
            a.ping()  # answered after the 50 frames (order kept) ...
            got = a.drain_frames()
            assert [f.seq for f in got] == list(range(50))
            frames = b.drain_frames()
            gaps = np.diff([f.host_ts for f in frames])
            assert len(frames) >= 10 and gaps.max() < 400, gaps  # ... while the realtime session kept ticking
    finally:
        h.stop()


def test_a_fatal_error_answering_a_request_ends_the_clients_session():
    class BadResetWorld(CounterWorld):  # TEST-ONLY: a reset to seed 13 returns a frame of the wrong size
        def reset(self, prompt):
            img = super().reset(prompt)
            return img[:4] if prompt.seed == 13 else img

    h = run_host_in_thread(BadResetWorld)
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step", seed=1)
            with pytest.raises(ProtocolError) as e:
                c.reset(seed=13)
            assert e.value.code == "backend_error" and e.value.fatal
            assert c.session is None and c.status()["sessions"] == 0
            with pytest.raises(ProtocolError, match="call start"):  # refused locally: no request to a dead session
                c.step(0)
            assert c.start(mode="step", seed=2)["type"] == "session"
    finally:
        h.stop()


def test_a_second_start_replaces_the_session_even_at_max_sessions():
    h = run_host_in_thread(CounterWorld, limits=Limits(max_sessions=1))
    try:
        with WorldClient(h.address) as c:
            first = c.start(mode="step", seed=1)["session_id"]
            second = c.start(mode="step", seed=2)  # replaces its own session: not a second one
            assert second["session_id"] != first and c.status()["sessions"] == 1
            assert first not in h.host.sessions and pixel(c.step(0)) == (2, 1, 0)
            with pytest.raises(ProtocolError) as e:
                c.start(resume=first)
            assert e.value.code == "unknown_session"
    finally:
        h.stop()


def test_a_resumed_session_tells_its_old_connection():
    h = run_host_in_thread(CounterWorld)
    try:
        with WorldClient(h.address) as c1, WorldClient(h.address) as c2:
            sid = c1.start(mode="step", seed=1)["session_id"]
            c2.start(resume=sid)
            deadline = time.monotonic() + 3
            while c1.session is not None and time.monotonic() < deadline:
                c1.next_frame(timeout=0.1)
            assert c1.session is None  # the host's fatal no_session notice reached it
            assert c1.errors[-1]["code"] == "no_session" and "resumed by another connection" in c1.errors[-1]["message"]
            assert c2.step(0).index == 1
    finally:
        h.stop()


def test_a_resume_from_another_connection_drops_the_old_connections_step_inputs():
    h = run_host_in_thread(SlowStepWorld)  # step inputs are still queued when another connection resumes
    try:
        with WorldClient(h.address) as c1, WorldClient(h.address) as c2:
            sid = c1.start(mode="step", seed=1)["session_id"]
            for _ in range(50):
                c1.act("b", seq=7)  # a second of work, queued
            at = c2.start(resume=sid)["frame_index"]
            frames = c2.drain_frames(timeout=1.0) + c2.drain_frames(timeout=0.3)
            assert [(f.index, f.seq) for f in frames] == [(at, None)]  # the re-sent frame, none made by c1's inputs
            assert c2.step("c").index == at + 1
    finally:
        h.stop()


def test_a_vanished_peer_leaves_no_step_inputs_behind():
    from bridge.host.server import Host, Peer
    from bridge.host.session import Session

    host = Host(CounterWorld, bind="tcp://127.0.0.1:*")
    try:
        s = Session(CounterWorld(), mode="step")
        s.peer = b"gone"
        host.peers[b"gone"], host.sessions[s.id] = Peer(session=s), s
        s.step_inputs.extend([(1, None, 1, 0.0), (2, None, 2, 0.0)])
        host._peer_gone(b"gone")
        assert s.peer is None and not s.step_inputs  # a resume starts clean; the loop does not spin on them
        assert host._timeout_ms(time.monotonic() + 1.0) > 0
    finally:
        host.close()


def test_reset_and_branch_drop_events_queued_for_the_old_timeline():
    from bridge.host.session import Session

    s = Session(CounterWorld(), mode="step")
    s.begin(Prompt(seed=1))
    for _ in range(3):
        s.step(0)
    s.queue_event("boom", None)
    s.begin(Prompt(seed=2), source="reset")  # a new world: the old world's event must not fire in it
    assert s.step(0).event is None and not s.pending_events
    s.queue_event("boom", None)
    s.branch(1)  # back in time: an event queued on the abandoned timeline must not fire either
    assert s.step(0).event is None and not s.pending_events


def test_a_host_drops_events_queued_before_a_branch_or_reset(host):
    with WorldClient(host.address) as client:
        client.start(mode="step", seed=1)
        client.step(0)
        for request in (lambda: client.branch(0), lambda: client.reset()):
            client.event("weather_rain")
            request()
            assert not client.step(0).events, "the queued event fired after the timeline it was sent to ended"


def test_a_branch_forgets_the_frames_after_it():
    from bridge.host.session import Session

    s = Session(CounterWorld(), mode="step")
    s.begin(Prompt(seed=1))
    for _ in range(10):
        s.step(1)
    s.branch(4)
    assert [f[0] for f in s.frames] == [0, 1, 2, 3, 4] and len(s.history) == 4
    with pytest.raises(ProtocolError) as e:
        s.branch(5)  # frame 5 belonged to the abandoned timeline
    assert e.value.code == "bad_argument"


def test_branch_with_sparse_keyframes_after_a_branch_re_simulates_the_new_timeline():
    from bridge.host.session import Session

    s = Session(CounterWorld(), mode="step")
    s.begin(Prompt(seed=1))
    s.keyframe_every = 100  # as for a big (KV cache) state: only frame 0 has a keyframe, the rest is re-simulated
    for _ in range(10):
        s.step(1)
    s.branch(4)
    s.step(2)
    s.step(2)
    s.branch(5)
    assert s.backend.get_state() == (1, 5, 2)  # frame 5 of the new timeline, not of the abandoned one
    assert tuple(s.step(0).image[0, 0]) == (1, 6, 0)


def test_action_ids_and_action_map_are_checked_against_the_action_count():
    from bridge.host.session import Session

    s = Session(CounterWorld(), mode="step")  # 3 actions: ids 0-2
    assert s.resolve_action(2) == 2
    with pytest.raises(ProtocolError) as e:
        s.resolve_action(3)
    assert e.value.code == "bad_argument" and "outside 0-2" in e.value.message
    assert Session(CounterWorld(), action_map={"jump": 2}).resolve_action("jump") == 2
    with pytest.raises(ProtocolError) as e:
        Session(CounterWorld(), action_map={"jump": 3})
    assert e.value.code == "bad_argument"


def test_leaving_step_mode_drops_the_queued_step_inputs():
    from bridge.host.protocol import Limits
    from bridge.host.session import Session

    s = Session(CounterWorld(), mode="step")
    s.begin(Prompt(seed=1))
    s.step_inputs.extend([(1, None, 1, 0.0), (2, None, 2, 0.0)])
    s.apply_settings({"mode": "realtime"}, Limits())
    assert s.mode == "realtime" and not s.step_inputs  # else the host loop spins (timeout 0) on inputs nobody runs


def test_an_event_type_the_backend_does_not_know_is_refused_when_queued():
    from bridge.host.session import Session

    s = Session(CounterWorld(), mode="step")  # event_types ["boom"], no describe_event of its own
    s.begin(Prompt(seed=1))
    with pytest.raises(ProtocolError) as e:
        s.queue_event("earthquake", None)
    assert e.value.code == "bad_argument" and "unknown event type 'earthquake'" in e.value.message
    assert not s.pending_events
    assert s.queue_event("boom", None) == "boom"



class LateFailingBatchWorld(CounterWorld):
    """TEST-ONLY batching backend whose batch fails after its worlds moved (not a refusal)."""

    @classmethod
    def step_batch(cls, worlds, actions, events):
        for w, a in zip(worlds, actions):
            w.step(a)
        raise ValueError("the batch broke after stepping")


def test_only_a_refusal_before_any_world_moved_is_retried_alone():
    h = run_host_in_thread(LateFailingBatchWorld)
    try:
        a, b = _two_realtime_sessions(h, lambda: not h.host.sessions)  # the failed batch closed both
        wait_until(lambda: a.drain_frames(timeout=0.1) is not None and a.errors)
        b.drain_frames()
        # retrying alone would step each world a second time and show frames out of step with their history
        assert all(e["code"] == "backend_error" and e["fatal"] for e in a.errors) and a.errors
        assert not h.host.sessions
        for c in (a, b):
            c.close()
    finally:
        h.stop()


def test_replies_queued_before_hello_count_in_the_outbox_bytes():
    from bridge.host.server import Host

    host = Host(CounterWorld, bind="tcp://127.0.0.1:*")
    try:
        host.orphans[b"early"] = __import__("collections").deque([[b"x" * 100, b"y" * 50]])
        host._on_hello(b"early", {"type": "hello", "protocol_major": 1, "protocol_minor": 2, "client": "t"})
        peer = host.peers[b"early"]
        assert peer.outbox_bytes == sum(len(x) for parts in peer.outbox for x in parts) and peer.outbox_bytes >= 150
    finally:
        host.close()


def test_replies_owed_before_a_bye_survive_a_flood_of_later_requests():
    from bridge.host.server import Peer

    host = Host(CounterWorld, bind="tcp://127.0.0.1:*")
    try:
        rid, peer = b"mute", Peer()
        host.peers[rid] = peer
        owed = [[P.encode({"type": "status", "req_id": i})] for i in range(3)]  # its pipe was full: they wait
        for parts in owed:
            peer.queue(parts)
        for data in [P.encode({"type": "bye"})] + [P.encode({"type": "ping", "req_id": 10 + i, "client_ts": 1.0})
                                                   for i in range(40)]:  # sent on, still reading nothing
            host._handle(rid, data, len(data))
        box = list(host.orphans[rid])
        assert box[:3] == owed and len(box) == 3 + 16  # the cap drops later pongs, never what was owed before
        assert [P.decode(parts[0])["req_id"] for parts in box[3:]] == list(range(10, 26))
    finally:
        host.close()


def test_replies_kept_after_bye_are_kept_for_at_most_max_peers_connections():
    from bridge.host.server import Peer

    host = Host(CounterWorld, bind="tcp://127.0.0.1:*", limits=Limits(max_peers=2))
    try:
        for n in range(4):  # connections that each filled their pipe, then said bye without reading
            rid, peer = b"mute%d" % n, Peer()
            host.peers[rid] = peer
            peer.queue([P.encode({"type": "status", "req_id": n})])
            data = P.encode({"type": "bye"})
            host._handle(rid, data, len(data))
        assert sorted(host.orphans) == [b"mute0", b"mute1"]  # memory for the replies of dead connections is bounded
    finally:
        host.close()


def test_what_waits_behind_step_inputs_is_bounded(monkeypatch):
    from bridge.host import server as S

    monkeypatch.setattr(S, "MAX_HELD", 2)
    h = run_host_in_thread(SlowStepWorld)
    try:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(h.address)
        sock.send(P.encode({"type": "hello", "protocol_major": 1, "protocol_minor": 2, "client": "t"}))
        sock.send(P.encode({"type": "start", "req_id": 1, "mode": "step"}))
        got = []
        while not any(m["type"] == "session" for m in got):  # not held behind a loading start: behind the inputs
            assert sock.poll(5000)
            got.append(P.decode(sock.recv_multipart()[0]))
        for i in range(20):  # 20 frames of 20 ms: the pings below wait behind them
            sock.send(P.encode({"type": "input", "action": i % 3, "seq": i}))
        for rq in (2, 3, 4):
            sock.send(P.encode({"type": "ping", "req_id": rq, "client_ts": 1.0}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len([m for m in got if m["type"] in ("pong", "error")]) < 3:
            if sock.poll(200):
                got.append(P.decode(sock.recv_multipart()[0]))
        answers = [(m["type"], m.get("req_id"), m.get("code")) for m in got if m["type"] in ("pong", "error")]
        assert ("error", 4, "busy") in answers and ("pong", 2, None) in answers and ("pong", 3, None) in answers
        busy = next(m for m in got if m["type"] == "error")
        assert "already wait for your step inputs' frames: read them before sending more" in busy["message"]
        assert [m["index"] for m in got if m["type"] == "frame"] == list(range(21))  # every input still made its frame
        sock.close(0)
    finally:
        h.stop()


@pytest.mark.parametrize("ending", [{"type": "bye"}, {"type": "hello", "protocol_major": 2}])
def test_replies_owed_when_a_client_ends_its_peer_still_go_out_in_order(host, ending):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(host.address)
    try:
        sock.send(P.encode({"type": "hello", "protocol_major": 1, "protocol_minor": 2}))
        sock.send(P.encode({"type": "start", "req_id": 1, "mode": "step"}))
        for i in range(2, 300):  # a burst: most replies wait in the host's outbox for the socket's pipe
            sock.send(P.encode({"type": "status", "req_id": i}))
        sock.send(P.encode(ending))
        sock.send(P.encode({"type": "ping", "req_id": 300, "client_ts": 1.0}))
        got = []
        while not got or got[-1]["type"] != "pong":
            assert sock.poll(5000), f"no pong; got {len(got)} messages"
            got.append(P.decode(sock.recv_multipart()[0]))
        answers = [m["req_id"] for m in got if m["type"] in ("session", "status", "pong")]
        assert answers == list(range(1, 301))
    finally:
        sock.close(0)


class TrackedContext(zmq.Context):
    """A zmq.Context that remembers every instance, so a test can check that a failed host terminated its own."""

    made: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        TrackedContext.made.append(self)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("key_file", ["empty", "public only", "taken port"])
def test_a_host_that_fails_to_start_closes_what_it_opened(tmp_path, monkeypatch, key_file):
    from zmq.auth import create_certificates

    addr = f"tcp://127.0.0.1:{_free_port()}"
    public = Path(create_certificates(str(tmp_path), "host")[0])
    (tmp_path / "empty.key").write_text("")
    curve = {"empty": tmp_path / "empty.key", "public only": public, "taken port": None}[key_file]
    holder = run_host_in_thread("sandbox", bind=addr) if key_file == "taken port" else None
    monkeypatch.setattr(zmq, "Context", TrackedContext)
    TrackedContext.made.clear()
    with pytest.raises((ValueError, OSError)):
        Host("sandbox", bind=addr, curve_secret=curve)
    assert len(TrackedContext.made) == 1 and TrackedContext.made[0].closed  # its sockets closed, its context ended
    if holder is not None:
        holder.stop()
    monkeypatch.undo()
    with run_host_in_thread("sandbox", bind=addr) as h:  # the same address binds again at once, and the host serves
        with WorldClient(h.address) as c:
            assert c.connect()["type"] == "welcome"


def test_the_host_clock_reads_perf_counter_not_windows_coarse_monotonic(monkeypatch):
    """time.monotonic ticks every 15.6 ms on Windows before Python 3.13 (24 fps became 31/47 ms gaps): the clock that
    paces ticks, polls and syncs reads perf_counter."""
    import bridge.host.clock as host_clock

    monkeypatch.setattr(host_clock, "perf_counter", lambda: 5.0)  # this module's name only: no other clock stops
    assert host_clock.clock() == 5.0 and host_clock.now_ms() == 5000.0


def test_realtime_pacing_keeps_its_schedule_on_the_host_clock(monkeypatch):
    import bridge.host.server as server
    import bridge.host.session as session

    now = [100.0]
    for module in (server, session):  # the host clock, injected where the loop and the session read it
        monkeypatch.setattr(module, "clock", lambda: now[0])
    h = Host(CounterWorld)  # not running: its loop's methods are called directly
    try:
        s = Session(CounterWorld(), mode="realtime", fps=50.0, limits=h.limits)
        s.begin(Prompt(seed=1))
        s.peer, h.sessions[s.id] = b"gone", s
        s.step(0)
        now[0] = 100.04
        s.step(0)
        assert s.fps_measured == pytest.approx(25.0)  # two ticks 40 ms apart
        assert h._first_tick(s) == pytest.approx(100.04 + 0.02)
        s.next_tick = 100.03
        h._run_ticks()
        assert s.index == 3 and s.next_tick == pytest.approx(100.03 + 0.02)  # on schedule, one period on
        assert 9 <= h._timeout_ms(next_housekeeping=101.0) <= 10  # the poll sleeps until that tick (10 ms, rounded)
        s.apply_settings({"mode": "step"}, h.limits)
        s.apply_settings({"mode": "realtime"}, h.limits)
        assert s.next_tick == 100.04
    finally:
        h.close()


class _WinMM:
    """TEST-ONLY stand-in for ctypes.windll.winmm: records the timer-resolution calls."""

    def __init__(self):
        self.calls = []

    def timeBeginPeriod(self, ms):
        self.calls.append(("begin", ms))
        return 0

    def timeEndPeriod(self, ms):
        self.calls.append(("end", ms))
        return 0


def test_fine_timers_ask_windows_for_1_ms_timers_and_leave_other_systems_alone():
    from bridge.host.server import fine_timers

    winmm = _WinMM()
    fine_timers(True, windows=True, winmm=winmm)
    fine_timers(False, windows=True, winmm=winmm)
    assert winmm.calls == [("begin", 1), ("end", 1)]  # so zmq's poll timeouts are not rounded up to 15.6 ms
    fine_timers(True, windows=False, winmm=winmm)
    assert winmm.calls == [("begin", 1), ("end", 1)]
    fine_timers(True, windows=True)  # a Windows without winmm (none here) only loses frame-time precision


def test_a_host_holds_fine_timers_while_it_serves_and_gives_them_back(monkeypatch):
    import bridge.host.server as server

    calls = []
    monkeypatch.setattr(server, "fine_timers", calls.append)  # the host's own call, not the process's platform
    with run_host_in_thread(CounterWorld) as h, WorldClient(h.address) as c:
        c.start(mode="step")
        assert calls == [True]
    assert calls == [True, False] and not h.thread.is_alive()
