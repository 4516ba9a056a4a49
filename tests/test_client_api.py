"""WorldClient and WorldEnv against a real host: frames, codecs, prompts, clocks, and the Gymnasium contract."""

import inspect
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium
import numpy as np
import pytest
import torch
import zmq

from bridge.client import Frame, ProtocolError, WorldClient
from bridge.host import protocol as P
from bridge.host.protocol import Limits
from bridge.gym import WorldEnv
from bridge.host.server import HostHandle, run_host_in_thread
from bridge.worlds.sandbox import SANDBOX_FPS, SandboxWorld
from test_worlds_gym import checked
from waiting import wait_until

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def host():
    h = run_host_in_thread("sandbox")
    yield h
    h.stop()


def test_next_frame_returns_newest_and_drops_older(host):
    with WorldClient(host.address) as c:
        c.start(mode="step", seed=2)
        for _ in range(5):
            c.act("right")  # step mode: each input makes one frame; we do not wait for them
        c.ping()  # a barrier: the host answers after the five frames
        f = c.next_frame()
        assert isinstance(f, Frame) and f.index == 5 and f.image.shape == (64, 64, 3) and f.image.dtype == np.uint8
        assert c.next_frame(timeout=0.05) is None  # the older four were dropped, not queued


def test_frames_iterator_and_clock(host):
    with WorldClient(host.address) as c:
        c.start(mode="realtime", fps=60)
        c.act(2)
        seen = []
        for f in c.frames(timeout=1.0):
            seen.append(f.index)
            if len(seen) == 5:
                break
        assert seen == sorted(seen) and len(set(seen)) == 5
        c.settings(mode="step")
        time.sleep(0.05)
        c.next_frame(timeout=0.05)
        assert list(c.frames(timeout=0.2)) == []  # step mode without inputs: nothing comes, iterator ends
        f = c.step(0)
        assert 0 < f.latency_ms < 1000 and f.received_ts >= f.client_ts and f.host_ts > 0
        c.settings(mode="realtime")
        c.act(1, seq=77)
        under, deadline = [], time.monotonic() + 20
        while len(under) < 3 and time.monotonic() < deadline:
            under += [g for g in c.drain_frames(timeout=0.1) if g.seq == 77]
        assert len(under) >= 3 and all(g.client_ts == under[0].client_ts for g in under)  # the echo repeats
        assert under[0].latency_ms is not None and 0 < under[0].latency_ms < 1000
        assert [g.latency_ms for g in under[1:]] == [None] * (len(under) - 1)  # not "time since the key changed"
        c.branch(under[-1].index)  # its frame echoes no input ...
        after = wait_until(lambda: [g for g in c.drain_frames(timeout=0.1) if g.seq == 77])
        assert after and all(g.latency_ms is None for g in after)  # ... and the held input is still not a new one


def test_mode_and_argument_errors(host):
    with WorldClient(host.address) as c:
        with pytest.raises(ProtocolError, match="start"):
            c.act(1)
        c.start(mode="realtime")
        with pytest.raises(ProtocolError, match="step-mode session"):
            c.step(0)
        with pytest.raises(ProtocolError, match="outside 0-6"):
            c.act(99)
        with pytest.raises(ProtocolError, match="unknown settings"):
            c.settings(speed=3)
        with pytest.raises(ProtocolError, match="serve --checkpoint"):
            c.start(checkpoint="x.pt")
        assert c.ping() > 0


def test_a_message_over_the_hosts_limit_is_refused_before_it_is_sent():
    """The host answers too_large, and drops a connection that sends over twice its limit (the client then waited out
    its timeout): the client refuses such a message itself, in the host's words, and its session goes on."""
    limit = 64 * 1024
    noise = np.random.default_rng(0).integers(0, 256, (3, 180, 180, 3), np.uint8)  # PNGs that do not compress
    with run_host_in_thread("sandbox", limits=Limits(max_message_bytes=limit)) as h, \
            WorldClient(h.address) as c, WorldClient(h.address) as unchecked:
        unchecked.connect()
        unchecked.welcome = {**unchecked.welcome, "limits": {}}  # a welcome without limits: sent as before
        with pytest.raises(ProtocolError) as host_says:
            unchecked.start(mode="step", image=noise[0], timeout=5)  # under twice the limit: the host answers
        c.start(mode="step")
        c.ping()  # its answer comes after the first frame, which is then in the client's buffer
        received = h.host.stats["messages"]
        with pytest.raises(ProtocolError) as e:
            c.start(mode="step", image=noise[0], timeout=5)
        assert [f.index for f in c.drain_frames()] == [0]  # the refused start kept the session's buffered first frame
        assert (e.value.code, e.value.message) == ("too_large", host_says.value.message)
        assert e.value.message.startswith("`start` message of ") and f"the host's {limit}-byte limit" in e.value.message
        with pytest.raises(ProtocolError, match="its image is .* bytes: use a smaller image") as e:
            c.start(mode="step", image=np.concatenate(noise, axis=0), timeout=5)  # over twice: the host would drop us
        assert e.value.code == "too_large" and h.host.stats["messages"] == received  # neither went out
        assert c.step(0).index == 1 and not c.errors  # the session goes on


@pytest.mark.parametrize("codec", ["png", "jpeg"])
def test_codecs(host, codec):
    with WorldClient(host.address) as raw, WorldClient(host.address, codecs=[codec]) as enc:
        assert enc.connect()["codec"] == codec
        raw.start(mode="step", seed=4)
        enc.start(mode="step", seed=4)
        a, b = raw.step(2), enc.step(2)
        assert b.header["codec"] == codec
        diff = np.abs(a.image.astype(int) - b.image.astype(int)).mean()
        assert diff == 0 if codec == "png" else diff < 8


def test_prompts_image_and_sketch(host):
    world = SandboxWorld(64, 0)
    sketch = world.sketch()
    with WorldClient(host.address) as c:
        c.start(mode="step", sketch=sketch, seed=1)
        assert c.next_frame().index == 0
        photo = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        assert "image_prompt" not in c.session["capabilities"]
        for send in (lambda: c.reset(image=photo), lambda: c.start(mode="step", image=photo),
                     lambda: c.start(mode="step", image=sketch)):  # a drawing too: images are not its prompts
            with pytest.raises(ProtocolError) as e:
                send()
            assert e.value.code == "bad_prompt" and e.value.message.startswith(
                "sandbox game cannot start from image prompts (session.capabilities lack image_prompt)")
            assert "send a flat-colour drawing as `sketch`" in e.value.message and e.value.capability == "image_prompt"
        c.reset(seed=1)  # the refused prompts left the session's world and prompt as they were
        assert c.next_frame().epoch == 1
        with pytest.raises(ProtocolError) as e:
            c.start(mode="step", image=b"not an image")
        assert e.value.code == "bad_prompt" and e.value.capability is None  # a capability it has: nothing to name


def test_a_start_without_fps_plays_at_the_worlds_own_rate(host):
    """A client that names no rate gets the world's (the sandbox game's 15), not 24: a world trained on 15 fps footage
    played 1.6x too fast; `session.fps` says the rate chosen, and a rate asked for is still kept."""
    with WorldClient(host.address) as c:
        assert c.start(mode="realtime")["fps"] == SANDBOX_FPS and c.session["fps"] == SANDBOX_FPS
        assert c.start(mode="realtime", fps=30)["fps"] == 30.0


@pytest.mark.parametrize("fps", [0, -5, 0.0])
def test_a_start_at_fps_0_names_none_as_the_worlds_own_rate_before_it_is_sent(host, fps):
    """Unity and Godot take 0 for the world's own rate (an inspector cannot say null); Python spells it None, and the
    host's "fps 0 is outside its range" did not say so."""
    with WorldClient(host.address) as c:
        c.connect()
        received = host.host.stats["messages"]
        with pytest.raises(ProtocolError) as e:
            c.start(mode="realtime", fps=fps)
        assert e.value.code == "bad_argument" and host.host.stats["messages"] == received  # refused here, not sent
        assert e.value.message == f"fps {fps:g}: pass fps=None for the world's own rate, or 1-120"


def test_a_text_sent_with_an_image_warns_once_that_the_image_starts_the_world():
    """docs/protocol.md: an image wins over text; the host alone knew, on its stderr, that the text went unused."""
    from test_host_server import CounterWorld

    class EveryPromptWorld(CounterWorld):
        capabilities = ["text_prompt", "image_prompt", "sketch_prompt"]

    picture = np.full((8, 8, 3), 90, np.uint8)
    with run_host_in_thread(EveryPromptWorld) as h, WorldClient(h.address) as c:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            c.start(mode="step", text="a cave", sketch=picture)  # a sketch and a text both count
            c.start(mode="step", text="  ", image=picture)  # blank: no text prompt
            c.reset(text="a cave")
        with pytest.warns(UserWarning, match=r"^the text prompt 'a cave' is not used: the image starts the world"
                                             r".*send the text alone, or with a sketch") as caught:
            c.start(mode="step", text="a cave", image=picture)
        assert caught[0].filename == __file__  # points at the caller's line
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            c.reset(text="a hill", image=picture)  # once per client: a gym env resetting each episode says it once
    with run_host_in_thread(EveryPromptWorld) as h, WorldClient(h.address, warn_text_unused=False) as c:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            c.start(mode="step", text="a cave", image=picture)  # a program that says it itself (the editor) opts out


def test_an_rgba_sketch_array_is_sent_as_drawn_transparent_meaning_sky(host):
    """docs/python.md: a sketch is an RGB or RGBA uint8 array; an engine canvas leaves the sky transparent."""
    sketch = SandboxWorld(64, 0).sketch()
    canvas = np.dstack([sketch, np.full(sketch.shape[:2], 255, np.uint8)])
    sky = (sketch == 255).all(-1)
    canvas[sky] = 0  # not drawn: transparent black, which reads as white paper
    with WorldClient(host.address) as c:
        c.start(mode="step", sketch=sketch, seed=1)
        drawn = c.next_frame().image
        c.reset(sketch=canvas)
        assert (c.next_frame().image == drawn).all()
        with pytest.raises(ValueError, match=r"\(H, W, 3\) RGB or \(H, W, 4\) RGBA uint8 .* got \(64, 64\) uint8"):
            c.reset(sketch=sketch[..., 0])


class _Mute(SandboxWorld):
    """A backend without text or sketch prompts (session.capabilities say so)."""

    capabilities = ["events"]


@pytest.mark.parametrize("key", ["text", "sketch"])
def test_prompts_the_backend_lacks_get_bad_prompt(key):
    h = run_host_in_thread(lambda: _Mute(64, 0))
    value = "a snowy cave" if key == "text" else SandboxWorld(64, 0).sketch()
    try:
        with WorldClient(h.address) as c:
            with pytest.raises(ProtocolError) as e:
                c.start(mode="step", **{key: value})
            assert e.value.code == "bad_prompt" and f"lack {key}_prompt" in e.value.message
            assert e.value.capability == f"{key}_prompt"  # clients read the kind from the key, not the wording
            c.start(mode="step", seed=1, text="  ")  # blank text is no prompt
            with pytest.raises(ProtocolError) as e:
                c.reset(**{key: value})
            assert e.value.code == "bad_prompt" and f"leave `{key}` out" in e.value.message
            assert e.value.capability == f"{key}_prompt"
            assert c.next_frame().epoch == 0  # the world goes on
    finally:
        h.stop()


def test_close_says_bye(host):
    c = WorldClient(host.address)
    c.start(mode="step")
    sid = c.session["session_id"]
    assert sid in host.host.sessions
    c.close()
    assert wait_until(lambda: sid not in host.host.sessions)
    with pytest.raises(ProtocolError, match="closed"):
        c.status()


def test_socket_wakes_a_poller_when_a_frame_comes_and_is_refused_once_closed(host):
    c = WorldClient(host.address)
    c.start(mode="step", seed=2)
    assert [f.index for f in c.drain_frames(timeout=2.0)] == [0]
    poller = zmq.Poller()
    poller.register(c.socket, zmq.POLLIN)  # what the editor's network thread sleeps in
    assert not poller.poll(0)
    c.act("right")
    assert dict(poller.poll(10_000)).get(c.socket) == zmq.POLLIN
    assert [f.index for f in c.drain_frames(timeout=2.0)] == [1]
    c.close()
    with pytest.raises(ProtocolError, match="closed"):
        c.socket


def test_status_before_any_greeting_says_to_greet_not_that_the_host_forgot(host):
    with WorldClient(host.address) as c:
        with pytest.raises(ProtocolError, match=r"^not_ready: this client has not greeted the host yet: call connect\(\) "
                                                r"or start\(\) first$"):
            c.status()
        c.connect()
        assert c.status()["session_id"] is None


def test_gym_env_in_process_passes_checker():
    env = gymnasium.make("WorldBridge/Sandbox-v0", max_steps=5,
                         reward_fn=lambda prev, a, obs, info: float(np.abs(obs.astype(int) - prev).mean())).unwrapped
    checked(env)
    assert isinstance(env.action_space, gymnasium.spaces.Discrete) and env.action_space.n == 7
    o1, info = env.reset(seed=3)
    assert info["backend_kind"] == "sandbox"
    o2, _ = env.reset(seed=3)
    assert np.array_equal(o1, o2)  # same seed, same world
    total, truncated = 0.0, False
    for _ in range(5):
        obs, r, term, truncated, info = env.step(2)
        total += r
    assert truncated and total > 0 and np.array_equal(env.render(), obs)
    with pytest.raises(ValueError):
        env.step(7)


def test_gym_env_over_the_protocol_matches_in_process(host):
    remote = WorldEnv(address=host.address)
    local = WorldEnv(backend=SandboxWorld(64, 0))
    try:
        a, _ = remote.reset(seed=9)
        b, _ = local.reset(seed=9)
        assert np.array_equal(a, b)
        for act in (2, 2, 5, 0, 1):
            ra, lb = remote.step(act), local.step(act)
            assert np.array_equal(ra[0], lb[0]) and ra[4]["frame_index"] == lb[4]["frame_index"]
    finally:
        remote.close()
        local.close()
    with pytest.raises(ValueError, match="exactly one"):
        WorldEnv()


def test_a_closed_remote_gym_env_says_it_is_closed(host):
    env = WorldEnv(address=host.address)
    env.reset(seed=1)
    env.close()
    for call in (lambda: env.step(1), lambda: env.reset(seed=2)):
        with pytest.raises(RuntimeError, match=r"this WorldEnv is closed .*make a new WorldEnv"):
            call()


def test_gym_env_over_the_protocol_passes_the_checker_and_clears_prompts(host):
    env = gymnasium.make("WorldBridge/Host-v0", address=host.address, max_steps=5).unwrapped
    try:
        checked(env)  # same seed and actions, same observations and info
        plain, _ = env.reset(seed=1)
        env.reset(seed=1, options={"text": "a castle at dawn"})
        again, _ = env.reset(seed=1)  # the text given once is not kept, as in-process
        assert np.array_equal(plain, again)
        again[0, 0] = 0  # observations are the env's to hand out: writable
        obs, *_ = env.step(2)
        assert obs.flags.writeable and set(env.last_timings) >= {"model", "total"}
    finally:
        env.close()


def test_a_lost_session_or_host_is_recovered_not_stuck():
    h = run_host_in_thread("sandbox", limits=Limits(idle_timeout_s=0.5))
    env = WorldEnv(address=h.address)
    try:
        env.reset(seed=2)
        assert wait_until(lambda: not h.host.sessions)  # a long update between episodes: the host closed it, idle
        obs, _ = env.reset(seed=2)  # a new session, not "no session: call start() first" forever
        assert obs.shape == (64, 64, 3)
    finally:
        env.close()
        h.stop()
    h1 = run_host_in_thread("sandbox")
    port = h1.address.rsplit(":", 1)[1]
    c = WorldClient(h1.address, timeout=2.0)
    try:
        c.start(mode="step", seed=1)
        sid = c.session["session_id"]
        h1.stop()
        h2 = run_host_in_thread("sandbox", f"tcp://127.0.0.1:{port}")  # the host restarts on the same address
        try:
            with pytest.raises(ProtocolError, match="no longer knows this client") as e:
                c.step(0)
            assert e.value.code == "not_ready" and c.session is None and c.last_session_id == sid
            assert c.start(mode="step", seed=1)["type"] == "session" and c.step(0).index == 1  # greets it again
        finally:
            h2.stop()
    finally:
        c.close()
    with pytest.raises(ProtocolError, match="closed"):
        c.next_frame()


def test_settings_take_numpy_numbers(host):
    with WorldClient(host.address) as c:
        c.start(mode="step")
        assert c.settings(fps=np.float32(12), mode="step")["settings"]["fps"] == 12.0
        assert c.settings(steps=np.int64(4))["type"] == "ok"  # numpy integers were a TypeError in msgpack


def test_drain_frames_returns_every_frame_in_order(host):
    with WorldClient(host.address) as c:
        c.start(mode="step", seed=2)
        assert [f.index for f in c.drain_frames(timeout=2.0)] == [0]  # waits for frame 0
        t0 = time.monotonic()
        assert c.drain_frames() == [] and time.monotonic() - t0 < 0.05  # default: no wait
        for _ in range(100):  # more than the client's 64-frame buffer: draining must still lose none
            c.act("right")
        got, deadline = [], time.monotonic() + 10
        while len(got) < 100 and time.monotonic() < deadline:
            got += c.drain_frames(timeout=0.5)
        assert [f.index for f in got] == list(range(1, 101))
        for _ in range(3):
            c.act("left")
        c.reset()  # frames of the old timeline still in flight are not handed out
        got = c.drain_frames(timeout=2.0)
        assert got and {f.epoch for f in got} == {1} and got[0].index == 0


def test_edit_sends_arrays_and_bytes_as_png_layers():
    from test_host_edit import PasteWorld, png  # a 16x16 canvas that pastes layers exactly

    h = run_host_in_thread(PasteWorld)
    try:
        with WorldClient(h.address) as c:
            with pytest.raises(ProtocolError, match="start"):
                c.edit(b"\x89PNG", 0, 0)
            assert c.connect()["protocol_minor"] == P.PROTOCOL_MINOR == 3
            assert c.start(mode="step", seed=1)["capabilities"] == ["events", "edit"]
            assert c.session["capabilities"] == ["events", "edit"]
            c.next_frame()
            rgba = np.zeros((4, 6, 4), np.uint8)
            rgba[..., :3], rgba[:, :3, 3] = (10, 20, 30), 255  # left half opaque, right half transparent
            ok = c.edit(rgba, 2, 3)
            assert ok["request"] == "edit" and (ok["epoch"], ok["frame_index"]) == (1, 0)
            f = c.next_frame()
            assert f.epoch == 1 and f.events == ["edit"]
            assert (f.image[3:7, 2:5] == (10, 20, 30)).all() and (f.image[3:7, 5:8] == 40).all()
            c.edit(np.full((3, 2, 3), 77, np.uint8), np.int64(12), -1)  # RGB: opaque; numpy ints are fine
            assert (c.next_frame().image[0:2, 12:14] == 77).all()
            c.edit(png(np.full((2, 2, 4), 200, np.uint8)), 0, 14)  # PNG bytes pass through; alpha 200 blends
            g = c.next_frame()
            assert g.epoch == 3 and (g.image[14:16, 0:2] == (200 * 200 + 40 * 55 + 127) // 255).all()
            for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.float32), np.zeros((0, 4, 4), np.uint8)):
                with pytest.raises(ValueError, match="RGBA"):
                    c.edit(bad, 0, 0)
            for x in (1.5, True, "3"):
                with pytest.raises(ProtocolError) as e:
                    c.edit(rgba, x, 0)
                assert e.value.code == "bad_argument"
            assert c.status()["epoch"] == c.session["epoch"] == 3 and c.session["frame_index"] == 0
    finally:
        h.stop()


def test_edit_and_event_cfg_on_the_sandbox_answer_clear_errors(host):
    with WorldClient(host.address) as c:
        s = c.start(mode="step", seed=1)
        assert "edit" not in s["capabilities"] and s["settings"]["event_cfg"] is None
        with pytest.raises(ProtocolError) as e:
            c.edit(np.zeros((2, 2, 4), np.uint8), 0, 0)
        assert e.value.code == "unsupported" and not e.value.fatal
        with pytest.raises(ProtocolError) as e:
            c.settings(event_cfg=2)
        assert e.value.code == "bad_argument" and "event conditioning" in e.value.message
        with pytest.raises(ProtocolError, match="event_cfg"):
            c.settings(guidance=2)  # the error lists what settings() takes
        assert c.step(0).index == 1


def test_act_refuses_the_first_id_past_the_last_action_at_once():
    h = run_host_in_thread("sandbox")
    try:
        with WorldClient(h.address) as c:
            c.start(mode="realtime")
            c.act(6)  # the last of 7 actions
            with pytest.raises(ProtocolError, match="outside 0-6"):
                c.act(7)
    finally:
        h.stop()


@pytest.mark.parametrize("cls", [WorldClient, WorldEnv])
def test_every_public_method_has_a_docstring_and_return_hint(cls):
    """docs/python.md sends users to help(); every public method must say why it exists and what it returns."""
    public = {n: f for n, f in vars(cls).items() if callable(f) and (not n.startswith("_") or n == "__init__")}
    undocumented = [n for n, f in public.items() if n != "__init__" and not (f.__doc__ or "").strip()]
    unhinted = [n for n, f in public.items() if inspect.signature(f).return_annotation is inspect.Signature.empty]
    assert not undocumented and not unhinted, f"{cls.__name__}: no docstring {undocumented}, no return hint {unhinted}"


def test_seeds_and_branch_frames_are_whole_numbers_numpy_included(host):
    """A float is refused, not cut to an int; numpy integers (an rng's seeds) pack; the range is named, not overflowed."""
    with WorldClient(host.address) as c:
        assert c.start(mode="step", seed=np.int64(3))["seed"] == 3
        assert c.reset(seed=np.uint32(4))["seed"] == 4
        c.next_frame()
        for _ in range(3):
            c.step("right")
        for bad in (2**64, 1.5, True, -1):
            with pytest.raises(ProtocolError, match=r"seed must be an integer >= 0 and <= 9223372036854775807"):
                c.reset(seed=bad)
        for bad in (1.7, "1", -1):
            with pytest.raises(ProtocolError, match=rf"branch frame must be an integer >= 0, got {bad!r}"):
                c.branch(bad)
        assert c.branch(np.int64(2))["frame_index"] == 2 and c.next_frame().index == 2


def test_session_says_where_the_session_stands_after_reset_branch_and_frames(host):
    """`client.session["epoch"]`/`["frame_index"]`/`["seed"]` follow the answers and frames, as `status()` does."""
    with WorldClient(host.address) as c:
        started = c.start(mode="step", seed=2)
        c.next_frame()
        for _ in range(3):
            c.step("right")
        assert (c.session["epoch"], c.session["frame_index"]) == (0, 3)
        ok = c.reset(seed=5)
        assert (c.session["epoch"], c.session["frame_index"], c.session["seed"]) == (ok["epoch"], 0, 5) == (1, 0, 5)
        assert (started["epoch"], started["frame_index"], started["seed"]) == (0, 0, 2)  # the reply as the host sent it
        drawn = c.reset()["seed"]  # no seed: the host draws one
        assert c.session["seed"] == drawn and c.session["epoch"] == 2
        c.next_frame()
        c.step("right")
        c.step("jump")
        c.branch(1)
        assert (c.session["epoch"], c.session["frame_index"]) == (3, 1)
        assert c.next_frame().index == 1 and c.step(0).index == 2
        st = c.status()
        assert (c.session["epoch"], c.session["frame_index"]) == (st["epoch"], st["frame_index"]) == (3, 2)
        c.settings(mode="realtime", fps=60)
        newest = wait_until(lambda: [f for f in c.drain_frames(timeout=0.1) if f.index > 2])[-1]
        assert (c.session["epoch"], c.session["frame_index"]) == (3, newest.index) and newest.index > 2


class GatedSandbox(SandboxWorld):
    """The sandbox game whose steps wait for `gate`: a host slower than the client's timeout, then back."""

    def __init__(self, gate: threading.Event):
        self.gate = gate  # before the game's first reset, which a subclass may gate
        super().__init__(64, 0)

    def step(self, action, event=None):
        self.gate.wait(20)
        return super().step(action, event)


class GatedResets(GatedSandbox):
    """GatedSandbox whose resets wait for `gate` too: seed 13 fails (a backend_error), seed 14 makes a frame of the
    wrong size (a fatal one, which ends the session): a host answering a reset late."""

    def reset(self, prompt=None, params=None):
        self.gate.wait(20)
        if prompt is not None and prompt.seed == 13:
            raise RuntimeError("world 13 does not build")
        image = super().reset(prompt, params)
        return image[:32] if prompt is not None and prompt.seed == 14 else image


SHORT_TIMEOUT_S = 0.3  # what a gated call waits: the host answers it only once the test opens the gate


@contextmanager
def gated_host(world: type[GatedSandbox]) -> Iterator[tuple[HostHandle, threading.Event]]:
    """A host of `world` with its gate open; opened again on the way out, so its loop never waits out a failed test."""
    gate = threading.Event()
    gate.set()
    h = run_host_in_thread(lambda: world(gate))
    try:
        yield h, gate
    finally:
        gate.set()
        h.stop()


def too_late(c: WorldClient, gate: threading.Event, call: Callable[[], Any], match: str) -> ProtocolError:
    """`call` on a host stuck behind the closed `gate`, with only SHORT_TIMEOUT_S to wait: it raises `timeout`; then the
    gate opens and the host answers it late. Every other call keeps the client's own timeout (a busy CI machine)."""
    gate.clear()
    timeout, c.timeout = c.timeout, SHORT_TIMEOUT_S
    try:
        with pytest.raises(ProtocolError, match=match) as e:
            call()
    finally:
        c.timeout = timeout
        gate.set()
    assert e.value.code == "timeout"
    return e.value


def test_a_step_timeout_names_the_fix_and_the_env_asks_for_reset_not_a_shifted_frame():
    """A step the host answers late still moved its world: the env must not go on as if it had not."""
    with gated_host(GatedSandbox) as (h, gate):
        env, local = WorldEnv(address=h.address), WorldEnv(backend="sandbox")
        try:
            env.reset(seed=4)
            env.step(2)
            too_late(env.client, gate, lambda: env.step(2), r"no frame for input seq \d+ from tcp://.* within 0.3 s: "
                                                            r"is the host still running .*or slower than timeout=")
            with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
                env.step(2)  # the host made the late frame: a step now would hand out the one after it
            assert np.array_equal(env.reset(seed=4)[0], local.reset(seed=4)[0])
            assert np.array_equal(env.step(5)[0], local.step(5)[0])
        finally:
            env.close()
            local.close()


def test_a_reset_the_host_answers_too_late_is_a_protocol_error_naming_the_fix():
    """No frame after a reset is the same `timeout` ProtocolError as any unanswered request, not a bare TimeoutError."""
    h = run_host_in_thread("sandbox")
    env = WorldEnv(address=h.address)
    try:
        env.reset(seed=1)
        env.client.next_frame = lambda timeout=None: None  # the reset's `ok` came, its frame 0 did not
        env.client.timeout = SHORT_TIMEOUT_S  # named in the message
        with pytest.raises(ProtocolError, match=r"no frame after `reset` from tcp://.* within 0.3 s: is the host still"
                                                r" running") as e:
            env.reset(seed=2)
        assert e.value.code == "timeout"
        with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
            env.step(0)
    finally:
        env.close()
        h.stop()


def test_a_session_lost_mid_episode_tells_the_env_user_to_reset():
    """An agent's update longer than the host's idle timeout ends the session between two steps: the error names the
    env's way on (reset()), not the client's start(), which a WorldEnv user does not call."""
    h = run_host_in_thread("sandbox", limits=Limits(idle_timeout_s=1))
    env = WorldEnv(address=h.address)
    try:
        env.reset(seed=2)
        env.step(1)
        assert wait_until(lambda: not h.host.sessions)  # the agent's long update: the host closes the idle session
        with pytest.raises(ProtocolError, match=r"closed after 1 s without messages.*; with WorldEnv, reset\(\) "
                                                r"starts a new episode") as e:
            env.step(2)
        assert e.value.code == "no_session" and e.value.fatal
        assert env.reset(seed=2)[1]["frame_index"] == 0 and env.step(2)[4]["frame_index"] == 1
    finally:
        env.close()
        h.stop()


def test_answers_that_come_after_their_request_timed_out_are_not_kept():
    """A slow host over a long run: each late answer used to stay in the client for good. A late `ok` is dropped (the
    next request gets its own answer, not the late one); a late error goes to `client.errors`."""
    with gated_host(GatedResets) as (h, gate), WorldClient(h.address) as c:
        c.start(mode="step", seed=1)
        too_late(c, gate, lambda: c.reset(seed=2), "no answer to `reset`")
        assert c.status()["type"] == "status"  # its own answer, not the reset's late `ok` (which comes first)
        too_late(c, gate, lambda: c.reset(seed=3), "no answer to `reset`")
        assert c.settings(fps=12)["settings"]["fps"] == 12  # (the late `ok` carries no settings)
        too_late(c, gate, lambda: c.reset(seed=13), "no answer to `reset`")
        c.ping()  # answered after the reset: its late error has come in
        assert c.errors[-1]["code"] == "backend_error" and "world 13 does not build" in c.errors[-1]["message"]


@pytest.mark.parametrize("late", ["reset", "step"])
def test_a_late_error_that_comes_while_frames_are_drained_lands_in_errors(late):
    """A timed-out request or step kept waiting for its answer: a late error that came during drain_frames() or
    next_frame() was taken as that answer and thrown away by the next request, so it never reached `client.errors`,
    and a fatal one left `client.session` naming a session the host had closed."""
    with gated_host(GatedResets) as (h, gate), WorldClient(h.address) as c:
        c.start(mode="step", seed=1)
        if late == "reset":  # its frame is the wrong size: a fatal error answers it, late
            too_late(c, gate, lambda: c.reset(seed=14), "no answer to `reset`")
        else:  # the host is stuck in the first step when the second comes: it refuses the second's action, late

            def two_steps() -> None:
                with pytest.raises(ProtocolError, match=r"no frame for input seq 1 "):
                    c.step(1)
                c.step("no_such_action")

            too_late(c, gate, two_steps, r"no frame for input seq 2 ")

        def drained_errors() -> list[dict]:
            c.drain_frames(timeout=0.05)  # no request waits: whatever comes in meanwhile is filed as it comes
            return list(c.errors)

        assert wait_until(drained_errors)
        code, fatal = ("backend_error", True) if late == "reset" else ("bad_argument", False)
        assert [(e["code"], e["fatal"]) for e in c.errors] == [(code, fatal)]
        assert (c.session is None) == fatal


def test_a_late_duplicate_welcome_is_not_taken_as_the_answer_to_a_later_connect():
    """Two hellos in flight (a connect that timed out, then one that worked) get two welcomes; the second must not
    answer the connect made after a host restart, which must get the new host's own welcome."""
    h1 = run_host_in_thread("sandbox", limits=Limits(idle_timeout_s=30))
    port = h1.address.rsplit(":", 1)[1]
    c = WorldClient(h1.address, timeout=0)
    try:
        with pytest.raises(ProtocolError, match="no host"):
            c.connect()  # no time to wait: its welcome comes late
        c.timeout = 5.0
        c.connect()
        c.ping()  # the second welcome comes in before the pong
        h1.stop()
        h2 = run_host_in_thread("sandbox", f"tcp://127.0.0.1:{port}", limits=Limits(idle_timeout_s=45))
        try:
            with pytest.raises(ProtocolError, match="no longer knows this client"):
                c.status()
            assert c.connect()["limits"]["idle_timeout_s"] == 45
        finally:
            h2.stop()
    finally:
        c.close()
