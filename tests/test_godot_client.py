"""WorldBridgeClient, WorldView and WorldInput (the addon's nodes), executed by gdsim against the
real WorldBridge host (sandbox backend) and a scripted pyzmq host. gdsim models the Godot APIs
the nodes call (Node, Image, ImageTexture, Input, StreamPeerTCP); it is not Godot."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import zmq

ROOT = Path(__file__).resolve().parents[1]
GODOT = ROOT / "godot_addon"
sys.path.insert(0, str(GODOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

import gdsim  # noqa: E402
from bridge.client import text_unused_words  # noqa: E402
import zmtp_raw  # noqa: E402
from godot_helpers import (  # noqa: E402
    IN_SESSION, ROUTERS, SCRIPTED_WELCOME, VIEW, Recorder, answer_start, answer_the_retry_without,
    demo_blockout_png, greet_and_start, new_client, new_node, prompt_refusal, pump, recv, refuse_prompt, run_until,
    scripted_router, send_unread, session_msg)

INPUT = "res://addons/world_bridge/nodes/world_input.gd"


def _world_input(sim, client, **members):
    return new_node(sim, INPUT, client=client, **members)


@pytest.mark.parametrize("generic", ["host", "sim"])
def test_the_shared_godot_fixtures_are_not_handed_to_a_test_that_asks_for_a_generic_name(request, generic):
    """A test asking for `host` or `sim` without defining it must fail to find it, not silently get the Godot ones."""
    with pytest.raises(pytest.FixtureLookupError):
        request.getfixturevalue(generic)


def test_step_session_end_to_end(godot_sim, godot_host, tmp_path):
    c = new_client(godot_sim, godot_host.address, mode="step", backend="sandbox", world_seed=5,
                   text_prompt="a test level")
    rec = Recorder(c, "frame_received", "error_received", "event_applied", "recording_changed", "session_started",
                   "status_changed")
    godot_sim.add_to_root(c)
    assert run_until(godot_sim, lambda: len(rec["frame_received"]) >= 1)
    (session,) = rec["session_started"][0]
    assert session["backend_kind"] == "sandbox" and session["mode"] == "step"
    label = godot_sim.call_method(c, "backend_label", [])
    assert label.startswith("SANDBOX GAME (test backend, not the world model): ")  # as in Unity
    assert rec["status_changed"][-1] == (label,)
    header, size = rec["frame_received"][0][0], len(rec["frame_received"][0][1])
    assert header["index"] == 0 and header["codec"] == "raw" and size == header["width"] * header["height"] * 3
    for action in ("right", "right", 3):  # names and ids
        assert godot_sim.call_method(c, "send_input", [action])
    assert run_until(godot_sim, lambda: len(rec["frame_received"]) >= 4)  # step mode: one frame per input, none dropped
    assert [f[0]["index"] for f in rec["frame_received"]] == [0, 1, 2, 3]
    assert rec["frame_received"][-1][0]["seq"] == 3 and c.members["latency_ms"] > 0
    assert godot_sim.call_method(c, "fire_event", ["weather_snow", ""])
    godot_sim.call_method(c, "send_input", ["noop"])
    assert run_until(godot_sim, lambda: rec["event_applied"])
    epoch = c.members["last_frame_header"]["epoch"]
    assert godot_sim.call_method(c, "branch_from", [1])
    assert run_until(godot_sim, lambda: c.members["last_frame_header"]["epoch"] == epoch + 1)
    assert c.members["last_frame_header"]["index"] == 1
    path = str(tmp_path / "godot.wbrec")
    assert godot_sim.call_method(c, "start_recording", [path])
    assert run_until(godot_sim, lambda: c.members["recording"])
    godot_sim.call_method(c, "send_input", ["right"])
    assert godot_sim.call_method(c, "toggle_recording", [])
    assert run_until(godot_sim, lambda: len(rec["recording_changed"]) == 2)
    assert rec["recording_changed"] == [(True, path), (False, path)] and Path(path).stat().st_size > 0
    godot_sim.call_method(c, "send_input", ["fly"])
    assert run_until(godot_sim, lambda: any(e[0] == "bad_argument" for e in rec["error_received"]))
    assert godot_sim.call_method(c, "change_settings", [gdsim.to_gd({"fps": 30})])  # int goes out as float64
    assert godot_sim.call_method(c, "request_status", [])
    assert run_until(godot_sim, lambda: len(c.members["last_status"]) > 0 and c.members["rtt_ms"] >= 0)
    assert c.members["last_status"]["backend_kind"] == "sandbox"
    assert not any(e[0] == "bad_message" for e in rec["error_received"])
    godot_sim.call_method(c, "queue_free", [])
    godot_sim.process()  # _exit_tree says bye
    assert c.members["link"] == 0 and c.members["_socket"] is None


def test_realtime_view_reuses_one_image_and_texture(godot_sim, godot_host):
    c = new_client(godot_sim, godot_host.address, mode="realtime", fps=30.0, backend="sandbox")
    view = godot_sim.new(godot_sim.script(VIEW))
    view.members["client"] = c
    godot_sim.add_to_root(c)
    godot_sim.add_to_root(view)
    assert run_until(godot_sim, lambda: view.members["frames_shown"] >= 6)
    assert godot_sim.counters["Image.create_from_data"] == 1
    assert godot_sim.counters["ImageTexture.create_from_image"] == 1
    shown = view.members["frames_shown"]
    assert godot_sim.counters["Image.set_data"] == shown - 1 and godot_sim.counters["ImageTexture.update"] == shown - 1
    assert view.native.texture is view.members["_texture"]
    badge = view.members["_badge"]
    assert badge.text.startswith("SANDBOX") and view.members["frames_rejected"] == 0
    assert c.members["fps_measured"] > 0  # measured from arrivals (the shared CPU decides how high)
    rgb = lambda color: (color.r, color.g, color.b)  # noqa: E731
    assert rgb(badge.theme_overrides["font_color"]) == (1, 0.65, 0)  # the sandbox game in orange
    c.members["backend_kind"] = "world_model"  # the world model in green, as in Unity and the editor
    godot_sim.call_method(view, "_update_badge", [])
    assert rgb(badge.theme_overrides["font_color"]) == (0, 1, 0)
    godot_sim.call_method(view, "set_client", [None])
    assert (badge.text, rgb(badge.theme_overrides["font_color"])) == ("WorldBridge: no client", (1, 1, 1))


def test_reconnect_resumes_the_same_session(godot_sim, godot_host):
    c = new_client(godot_sim, godot_host.address, mode="step", backend="sandbox")
    rec = Recorder(c, "session_started", "status_changed")
    godot_sim.add_to_root(c)
    assert run_until(godot_sim, lambda: c.members["link"] == IN_SESSION)
    first = rec["session_started"][0][0]
    godot_sim.call_method(c.members["_socket"], "_fail", ["simulated network drop"])
    assert c.members["link"] == 1 and "reconnecting" in c.members["status_text"]
    assert run_until(godot_sim, lambda: len(rec["session_started"]) == 2)
    second = rec["session_started"][1][0]
    assert second["resumed"] is True and second["session_id"] == first["session_id"]
    godot_sim.call_method(c, "disconnect_from_host", [])


def test_connect_to_host_while_in_session_ends_that_session_first(godot_sim, godot_host):
    c = new_client(godot_sim, godot_host.address, mode="step", backend="sandbox")
    rec = Recorder(c, "session_started", "session_ended", "capabilities_changed")
    godot_sim.add_to_root(c)
    assert run_until(godot_sim, lambda: c.members["link"] == IN_SESSION)
    c.members["auto_start"] = False
    assert godot_sim.call_method(c, "connect_to_host", [godot_host.address]) == 0  # e.g. the game switches hosts
    assert rec["session_ended"] == [("disconnected",)]  # not left as if it still ran
    assert run_until(godot_sim, lambda: c.members["link"] == 3)  # welcomed, no start asked for
    assert c.members["session"] == {} and godot_sim.call_method(c, "backend_label", []) == "no session"
    assert "sketch_prompt" in c.members["capabilities"] and "edit" in c.members["capabilities"]  # the welcome's
    assert len(rec["session_started"]) == 1
    godot_sim.call_method(c, "disconnect_from_host", [])


def _sandbox_input(sim, host, **members):
    """A realtime sandbox session and a WorldInput (`members` set) driving it; returns (client, input, its sends)."""
    c = new_client(sim, host.address, mode="realtime", fps=30.0, backend="sandbox")
    wi = _world_input(sim, c, **members)
    sent = Recorder(wi, "action_sent")
    sim.add_to_root(c)
    sim.add_to_root(wi)
    assert run_until(sim, lambda: c.members["link"] == IN_SESSION)
    sim.process(3)
    return c, wi, sent


def test_world_input_sends_changes_only_and_chords(godot_sim, godot_host):
    c, wi, sent = _sandbox_input(godot_sim, godot_host)
    assert wi.members["missing_actions"] == []  # every default binding is in project.godot's Input Map
    gdsim.press(godot_sim, "wb_right")
    godot_sim.process(5)
    gdsim.press(godot_sim, "wb_jump")
    godot_sim.process(5)
    gdsim.release(godot_sim, "wb_right")
    gdsim.release(godot_sim, "wb_jump")
    godot_sim.process(3)
    gdsim.press(godot_sim, "wb_latent_3")
    godot_sim.process(2)
    assert [a[0] for a in sent["action_sent"]] == ["noop", "right", "right_jump", "noop", 2]
    assert run_until(godot_sim, lambda: c.members["last_frame_header"].get("seq") == 5)
    godot_sim.call_method(c, "disconnect_from_host", [])


def test_world_input_warns_once_about_bindings_the_backend_lacks_and_sends_nothing_for_them(godot_sim, godot_host):
    bindings = {"wb_latent_8": 9, "wb_latent_1": 0, "wb_jump": "fly", "wb_left": "left"}
    c, wi, sent = _sandbox_input(godot_sim, godot_host, bindings=bindings)
    errors = Recorder(c, "error_received")
    assert list(wi.members["unknown_actions"]) == ["latent 9", "fly"]  # the sandbox has 7 actions, none named fly
    warned = [w for w in godot_sim.warnings if "not among this backend's actions" in w]
    assert len(warned) == 1 and "latent 9, fly" in warned[0] and "latent ids 0-6" in warned[0]
    for key in ("wb_latent_8", "wb_jump"):
        gdsim.press(godot_sim, key)
        godot_sim.process(3)
        gdsim.release(godot_sim, key)
    gdsim.press(godot_sim, "wb_latent_1")
    godot_sim.process(3)
    assert [a[0] for a in sent["action_sent"]] == ["noop", 0]  # the unknown keys sent nothing; latent 0 did
    godot_sim.process(5)
    assert errors["error_received"] == []  # nothing reached the host to be refused
    assert len([w for w in godot_sim.warnings if "not among this backend's actions" in w]) == 1  # once a session
    godot_sim.call_method(c, "disconnect_from_host", [])


def test_world_input_default_map_on_the_sandbox_skips_key_8_without_a_warning(godot_sim, godot_host):
    """The sandbox has 7 actions, so the default wb_latent_8 -> latent 7 plays nothing: no mistake of the user's."""
    c, wi, sent = _sandbox_input(godot_sim, godot_host)
    assert list(wi.members["unknown_actions"]) == ["latent 7"]
    assert godot_sim.warnings == [], f"the default map warned on the sandbox: {godot_sim.warnings}"
    assert not [line for line in godot_sim.output if "WorldInput" in line]  # the arrows play here: nothing to say
    gdsim.press(godot_sim, "wb_latent_8")
    godot_sim.process(3)
    gdsim.release(godot_sim, "wb_latent_8")
    gdsim.press(godot_sim, "wb_latent_7")
    godot_sim.process(3)
    assert [a[0] for a in sent["action_sent"]] == ["noop", 6]  # key 8 sent nothing
    godot_sim.call_method(c, "disconnect_from_host", [])


def test_world_input_step_mode_sends_one_input_per_press(godot_sim, godot_host):
    c = new_client(godot_sim, godot_host.address, mode="step", backend="sandbox")
    wi = _world_input(godot_sim, c)
    sent = Recorder(wi, "action_sent")
    godot_sim.add_to_root(c)
    godot_sim.add_to_root(wi)
    assert run_until(godot_sim, lambda: c.members["link"] == IN_SESSION)
    gdsim.press(godot_sim, "wb_left")
    godot_sim.process(4)  # held: still one press
    gdsim.release(godot_sim, "wb_left")
    godot_sim.process(1)
    gdsim.press(godot_sim, "wb_left")
    godot_sim.process(1)
    assert [a[0] for a in sent["action_sent"]] == ["left", "left"]
    godot_sim.call_method(c, "disconnect_from_host", [])


def test_reject_stops_reconnecting_and_says_why(godot_sim, scripted):
    router, port = scripted
    c = new_client(godot_sim, f"tcp://127.0.0.1:{port}")
    rec = Recorder(c, "error_received")
    godot_sim.add_to_root(c)
    assert run_until(godot_sim, lambda: router.poll(0))
    ident, hello = router.recv_multipart()
    assert zmtp_raw.unpack(hello) == {"type": "hello", "protocol_major": 1, "protocol_minor": 3,
                                      "client": "godot/0.1.17", "codecs": ["raw", "png", "jpeg"], "req_id": 1}
    router.send_multipart([ident, b"\xc1"])  # not msgpack: reported, not fatal
    router.send_multipart([ident, zmtp_raw.pack({"type": "surprise"})])  # unknown type: ignored
    router.send_multipart([ident, zmtp_raw.pack({"type": "reject", "code": "version_mismatch",
                                                 "message": "client speaks 1.0, host speaks 2.0: update",
                                                 "protocol_major": 2, "protocol_minor": 0})])
    assert run_until(godot_sim, lambda: any(e[0] == "version_mismatch" for e in rec["error_received"]))
    assert rec["error_received"][0][0] == "client" and "not a msgpack map" in rec["error_received"][0][1]
    assert c.members["link"] == 0 and c.members["_socket"] is None
    assert c.members["status_text"].startswith("rejected by the host: client speaks 1.0")
    godot_sim.process(10)
    assert not router.poll(100)  # no reconnect, no second hello


def test_demo_blockout_level_is_a_valid_sketch_prompt(godot_sim, godot_host):
    """The demo's Godot-blocked-out level, sent as a sketch, starts a sandbox world (no bad_prompt)."""
    c = new_client(godot_sim, godot_host.address, mode="step", backend="sandbox", auto_start=False)
    rec = Recorder(c, "session_started", "error_received")
    godot_sim.add_to_root(c)
    assert run_until(godot_sim, lambda: c.members["link"] == 3)  # READY
    assert godot_sim.call_method(c, "has_capability", ["sketch_prompt"])
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"sketch": demo_blockout_png()})])
    assert run_until(godot_sim, lambda: rec["session_started"] or rec["error_received"])
    assert rec["error_received"] == [] and rec["session_started"][0][0]["backend_kind"] == "sandbox"
    godot_sim.call_method(c, "disconnect_from_host", [])


def test_forgotten_client_greets_again_and_size_limit_is_enforced(godot_sim, scripted):
    router, port = scripted
    welcome = {"type": "welcome", "protocol_major": 1, "protocol_minor": 0, "host": "scripted", "codec": "raw",
               "capabilities": ["image_prompt"], "backends": ["sandbox"], "default_backend": "sandbox",
               "limits": {"max_message_bytes": 1024, "max_sessions": 1, "idle_timeout_s": 60.0}}
    c = _ready(godot_sim, router, port, welcome)
    rec = Recorder(c, "error_received")
    assert not godot_sim.call_method(c, "start_session", [gdsim.to_gd({"image": b"\x89PNG" + b"\0" * 2000})])
    assert "over the host's 1024-byte limit" in rec["error_received"][-1][1]
    assert not router.poll(100)  # refused before sending
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a cave"})])
    pump(godot_sim, router)
    ident, start = recv(router)
    assert start["type"] == "start" and start["text"] == "a cave"
    router.send_multipart([ident, _not_ready(start["req_id"])])
    pump(godot_sim, router)
    assert recv(router)[1]["type"] == "hello"  # greets again
    router.send_multipart([ident, zmtp_raw.pack(welcome)])
    pump(godot_sim, router)
    again = recv(router)[1]
    assert again["type"] == "start" and again["text"] == "a cave" and again["req_id"] > start["req_id"]


def _limited(welcome: dict = SCRIPTED_WELCOME) -> dict:
    """`welcome` from a host that takes no message over 2000 bytes, so a 3000-byte text prompt does not go out."""
    return {**welcome, "limits": {**welcome["limits"], "max_message_bytes": 2000}}


@pytest.mark.parametrize("key,value,advice", [
    ("text", "a" * 3000, "its text is 3000 bytes: use a shorter text"),
    ("image", b"\x89PNG" + b"\0" * 3000, "its image is 3004 bytes: use a smaller image"),
    ("sketch", b"\x89PNG" + b"\0" * 3000, "its sketch is 3004 bytes: use a smaller sketch"),
    # nothing stands out: the fix is the host's limit, named as the host's own too_large names it
    ("action_map", {f"a{i}": i for i in range(300)},
     "start the host with a larger `worldbridge serve --max-message-bytes`")])
def test_a_message_over_the_hosts_limit_names_what_is_too_big(godot_sim, scripted, key, value, advice):
    """A long text prompt over the host's limit was answered with "use a smaller image"."""
    router, port = scripted
    welcome = _limited({**SCRIPTED_WELCOME, "capabilities": ["text_prompt", "image_prompt", "sketch_prompt"]})
    c = _ready(godot_sim, router, port, welcome)
    rec = Recorder(c, "error_received")
    assert not godot_sim.call_method(c, "start_session", [gdsim.to_gd({key: value})])
    message = rec["error_received"][-1][1]
    assert "over the host's 2000-byte limit" in message and message.endswith(advice), message


def _rebind(port):
    """The same port again, once the closed router let go of it."""
    for _ in range(200):
        try:
            return scripted_router(port)
        except zmq.ZMQError:
            time.sleep(0.02)
    raise AssertionError("could not rebind")


def _restart_host(sim, router, port, welcome=SCRIPTED_WELCOME):
    """The scripted host restarts on the same port and welcomes the client again: (router, peer id, what it sent next)."""
    router.close()
    router, _ = _rebind(port)
    ident, sent = greet_and_start(sim, router, welcome)
    return router, ident, sent


@pytest.fixture()
def scripted():
    """(router, port) of a scripted pyzmq host; it and the routers of its restarts are closed after the test."""
    yield scripted_router()
    while ROUTERS:
        ROUTERS.pop().close()


def _ready(sim, router, port, welcome=SCRIPTED_WELCOME, **members):
    """A client (auto_start off, `members` set) whose hello the host at `port` answered with `welcome`: it is READY."""
    c = new_client(sim, f"tcp://127.0.0.1:{port}", auto_start=False, **members)
    sim.add_to_root(c)
    pump(sim, router)
    ident, hello = recv(router)
    assert hello["type"] == "hello"
    router.send_multipart([ident, zmtp_raw.pack(welcome)])
    assert run_until(sim, lambda: c.members["link"] == 3)
    return c


def _session_started(sim, router, c, sid="s1", **session):
    """Answers the next start client `c` sends with session `sid` (see answer_start); returns that start."""
    pump(sim, router)
    ident, start = recv(router)
    assert start["type"] == "start"
    answer_start(sim, router, c, ident, start, sid, **session)
    return start


def _drop(sim, router, port, c):
    """The scripted host goes away until client `c` notices; returns a router bound to the same port again."""
    router.close()
    assert run_until(sim, lambda: c.members["link"] != IN_SESSION)
    return _rebind(port)[0]


def _restart_failing_resume(sim, router, port, sid, welcome=SCRIPTED_WELCOME):
    """The host restarts and answers the client's resume of `sid` with unknown_session: (router, what it sent next)."""
    router, ident, resume = _restart_host(sim, router, port, welcome)
    assert resume["resume"] == sid
    router.send_multipart([ident, _unknown_session(resume["req_id"])])
    pump(sim, router)
    return router, recv(router)[1]


def _realtime_input(sim, scripted):
    """A WorldInput (not yet in the tree) on a client in a realtime scripted session, and the actions it sends."""
    c, _, _ = _scripted_session(sim, scripted, "realtime")
    wi = _world_input(sim, c)
    return wi, Recorder(wi, "action_sent")


def _scripted_session(sim, scripted, mode: str, idle_timeout_s: float = 60.0):
    """A client in session `s1` with a scripted pyzmq host; returns (client, recorder, the host's peer id)."""
    router, port = scripted
    c = new_client(sim, f"tcp://127.0.0.1:{port}", mode=mode)
    rec = Recorder(c, "event_applied", "frame_received")
    sim.add_to_root(c)
    welcome = {**SCRIPTED_WELCOME, "limits": {**SCRIPTED_WELCOME["limits"], "idle_timeout_s": idle_timeout_s}}
    ident, start = greet_and_start(sim, router, welcome)
    answer_start(sim, router, c, ident, start, mode=mode)
    return c, rec, ident


def _frame_msg(index: int, events: list[str], epoch: int = 0, client_ts: float | None = None,
               seq: int | None = None) -> bytes:
    return zmtp_raw.pack({"type": "frame", "session_id": "s1", "index": index, "epoch": epoch, "action": 0,
                          "client_ts": client_ts, "seq": seq, "host_ts": 1.0, "timings": {}, "events": events,
                          "codec": "raw", "width": 2, "height": 2})


def test_realtime_frames_skipped_in_one_poll_still_report_their_events(godot_sim, scripted):
    router, _ = scripted
    c, rec, ident = _scripted_session(godot_sim, scripted, "realtime")
    snow, plain = [_frame_msg(1, ["it begins to snow"]), b"\0" * 12], [_frame_msg(2, []), b"\0" * 12]
    send_unread(c, router, ident, snow, plain)
    godot_sim.call_method(c, "poll", [])
    assert len(rec["frame_received"]) == 1 and c.members["frames_skipped"] == 1  # only the newest is shown...
    assert rec["event_applied"] == [("it begins to snow",)]  # ...but the skipped frame's event is still said


def test_latency_is_measured_on_the_first_frame_of_each_input_only(godot_sim, scripted):
    """The host echoes the input in force on every frame: a held key must not read as a growing latency."""
    router, _ = scripted
    c, rec, ident = _scripted_session(godot_sim, scripted, "realtime")
    assert godot_sim.call_method(c, "send_input", ["noop"])
    pump(godot_sim, router)
    _, sent = recv(router)
    router.send_multipart([ident, _frame_msg(1, [], client_ts=sent["client_ts"], seq=sent["seq"]), b"\0" * 12])
    assert run_until(godot_sim, lambda: len(rec["frame_received"]) == 1)
    first = c.members["latency_ms"]
    assert first >= 0
    time.sleep(0.3)  # the key stays held
    router.send_multipart([ident, _frame_msg(2, [], client_ts=sent["client_ts"], seq=sent["seq"]), b"\0" * 12])
    assert run_until(godot_sim, lambda: len(rec["frame_received"]) == 2)
    assert c.members["latency_ms"] == first  # no new sample: the HUD keeps the last one
    router.send_multipart([ident, _frame_msg(3, []), b"\0" * 12])  # a branch's frame: it echoes no input
    assert run_until(godot_sim, lambda: len(rec["frame_received"]) == 3)
    router.send_multipart([ident, _frame_msg(4, [], client_ts=sent["client_ts"], seq=sent["seq"]), b"\0" * 12])
    assert run_until(godot_sim, lambda: len(rec["frame_received"]) == 4)
    assert c.members["latency_ms"] == first  # the held input is still not a new one


def test_the_edit_marker_is_not_a_world_event_and_settings_update_the_session(godot_sim, scripted):
    router, _ = scripted
    c, rec, ident = _scripted_session(godot_sim, scripted, "realtime")
    router.send_multipart([ident, _frame_msg(1, ["edit", "it begins to snow"], epoch=1), b"\0" * 12])
    assert run_until(godot_sim, lambda: len(rec["frame_received"]) == 1)
    assert rec["event_applied"] == [("it begins to snow",)]  # "edit" marks the pasted frame (edit_applied)
    assert godot_sim.call_method(c, "change_settings", [gdsim.to_gd({"fps": 12.0})])
    pump(godot_sim, router)
    _, settings = recv(router)
    router.send_multipart([ident, zmtp_raw.pack({"type": "ok", "req_id": settings["req_id"], "request": "settings",
                                                 "settings": {"fps": 12.0, "mode": "step"}})])
    assert run_until(godot_sim, lambda: c.members["session"]["mode"] == "step")
    assert c.members["session"]["fps"] == 12.0


@pytest.mark.parametrize("members, options, sent", [
    ({}, {}, None), ({"fps": 30.0}, {}, 30.0), ({"fps": -1.0}, {}, None), ({"fps": 30.0}, {"fps": 0}, None),
    ({"fps": 30.0}, {"fps": -5.0}, None), ({}, {"fps": 1}, 1.0), ({}, {"fps": 120.0}, 120.0)])
def test_fps_0_the_default_asks_for_the_worlds_own_rate(godot_sim, scripted, members, options, sent):
    """The export defaulted to 24, so a world trained on 10 fps footage played 2.4x too fast: 0 (the default) sends
    nil, the world's own rate, as world_seed -1 lets the host pick; 1-120 goes as it is. `start_session({"fps": 0})`
    sent 0.0, which the host refuses: 0 or less is the world's own rate from the export and the options alike."""
    router, port = scripted
    c = _ready(godot_sim, router, port, **members)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd(options)])
    pump(godot_sim, router)
    _, start = recv(router)
    assert start["type"] == "start" and start["fps"] == sent and start["mode"] == "realtime"
    assert godot_sim.errors == []


_START_FIX = "is outside 1-120: set fps to 0 for the world's own rate, or 1-120"


@pytest.mark.parametrize("members, options, said", [  # Godot writes 121.0 as 121
    ({"fps": 0.37}, {}, "0.37"), ({}, {"fps": 0.5}, "0.5"), ({"fps": 30.0}, {"fps": 121.0}, "121")])
def test_a_start_at_a_rate_no_host_plays_is_refused_with_the_fix(godot_sim, scripted, members, options, said):
    """The fps slider lands on 0.37 near its left end: the node sent it, the host answered bad_argument and there was
    no world. The node now sends nothing and says what to set (push_error, error_received), also for a start asked
    for before any host took it, which it no longer keeps for the next welcome."""
    router, port = scripted
    early = new_client(godot_sim, "tcp://127.0.0.1:1", auto_connect=False, **members)
    assert not godot_sim.call_method(early, "start_session", [gdsim.to_gd(options)])
    assert not early.members["_starts"].members["pending"]
    c = _ready(godot_sim, router, port, **members)
    rec = Recorder(c, "error_received")
    godot_sim.errors.clear()
    assert not godot_sim.call_method(c, "start_session", [gdsim.to_gd(options)])
    assert godot_sim.errors == [f"WorldBridge: fps {said} {_START_FIX}"]
    assert rec["error_received"] == [("client", f"fps {said} {_START_FIX}", False)]
    assert godot_sim.call_method(c, "request_status", [])  # the next message the host gets: no start went out
    pump(godot_sim, router)
    assert recv(router)[1]["type"] == "status"


def _welcomed(sim, router, c) -> list[dict]:
    """Answers client `c`'s hello with the scripted welcome; returns every message it sends after that."""
    pump(sim, router)
    ident, hello = recv(router)
    assert hello["type"] == "hello"
    router.send_multipart([ident, zmtp_raw.pack(SCRIPTED_WELCOME)])
    assert run_until(sim, lambda: c.members["link"] == 3)
    sim.process(5)
    return _starts_seen(router, 300)


@pytest.mark.parametrize("auto_start", [False, True])
def test_a_queued_start_whose_rate_turned_unplayable_is_dropped_at_welcome(godot_sim, scripted, auto_start):
    """A start queued while connecting, then the fps export set to 0.5: each welcome refused it, said it "goes again
    on the next reconnect" and kept it, so every reconnect said both again and no world ever started. The refusal
    with its fix is said once, and the start is dropped (auto_start does not ask for it again at that welcome; it
    asks at each welcome, so only without it is the next one silent)."""
    router, port = scripted
    c = new_client(godot_sim, f"tcp://127.0.0.1:{port}", auto_start=auto_start)
    godot_sim.add_to_root(c)
    assert not godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a desert"})])  # no welcome yet
    assert c.members["_starts"].members["pending"]
    c.members["fps"] = 0.5
    rec = Recorder(c, "error_received")
    godot_sim.errors.clear()
    assert _welcomed(godot_sim, router, c) == []
    said = f"fps 0.5 {_START_FIX}"
    assert rec["error_received"] == [("client", said, False)] and godot_sim.errors == [f"WorldBridge: {said}"]
    assert not c.members["_starts"].members["pending"], "the refused start waits for the next welcome"
    if auto_start:
        return
    router.close()
    router, _ = _rebind(port)
    assert run_until(godot_sim, lambda: c.members["link"] != 3)
    assert _welcomed(godot_sim, router, c) == []
    assert rec["error_received"] == [("client", said, False)], "the next reconnect refused the start again"


def test_a_queued_start_refused_for_its_rate_at_welcome_replaces_no_session(godot_sim, scripted):
    """The start the game asked for while reconnecting, refused at welcome for an fps export set to 0.5 since, ended
    the lost session as if it replaced it, and nothing did: that session resumes, as a start refused online leaves
    the session running."""
    router, port = scripted
    c, _, _ = _scripted_session(godot_sim, scripted, "realtime")
    router = _drop(godot_sim, router, port, c)
    rec = Recorder(c, "error_received", "session_ended")
    assert not godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a desert"})])  # queued
    c.members["fps"] = 0.5
    sent = _welcomed(godot_sim, router, c)
    assert [(m["type"], m.get("resume")) for m in sent] == [("start", "s1")], f"no resume of the lost session: {sent}"
    assert rec["error_received"] == [("client", f"fps 0.5 {_START_FIX}", False)] and rec["session_ended"] == []


@pytest.mark.parametrize("fps, said", [(0.5, "0.5"), (0, "0"), (-1.0, "-1"), (121, "121")])
def test_a_settings_change_to_a_rate_no_host_plays_is_refused_with_the_fix(godot_sim, scripted, fps, said):
    """change_settings({"fps": 0.5}) went out and got the host's bad_argument; 0 asked for the world's own rate, which
    a settings change cannot (a nil fps keeps the rate). The node now sends nothing and says what to set."""
    router, _ = scripted
    c, _, _ = _scripted_session(godot_sim, scripted, "realtime")
    rec = Recorder(c, "error_received")
    assert not godot_sim.call_method(c, "change_settings", [gdsim.to_gd({"fps": fps, "steps": 4})])
    why = (f"fps {said} is outside 1-120: a settings change takes 1-120 (only a start asks for the world's own rate, "
           "with fps 0)")
    assert godot_sim.errors == [f"WorldBridge: {why}"] and rec["error_received"] == [("client", why, False)]
    assert godot_sim.call_method(c, "request_status", [])
    pump(godot_sim, router)
    assert recv(router)[1]["type"] == "status"


def test_fps_text_shows_the_rate_the_session_plays_at(godot_sim, scripted):
    """With fps 0 only the host's session reply says the rate: the HUDs show it beside the rate measured, in realtime
    mode (step mode has no rate), and follow a settings change."""
    router, _ = scripted
    c, _, ident = _scripted_session(godot_sim, scripted, "realtime")
    protocol = godot_sim.script("res://addons/world_bridge/core/protocol.gd")

    def fps_text():
        return godot_sim.call_static(protocol, "fps_text", [14.84, c.members["session"]])

    assert fps_text() == "14.8 of 24.0 fps"
    assert godot_sim.call_method(c, "change_settings", [gdsim.to_gd({"fps": 12.5})])
    pump(godot_sim, router)
    _, settings = recv(router)
    router.send_multipart([ident, zmtp_raw.pack({"type": "ok", "req_id": settings["req_id"], "request": "settings",
                                                 "settings": {"fps": 12.5, "mode": "realtime"}})])
    assert run_until(godot_sim, lambda: c.members["session"]["fps"] == 12.5)
    assert fps_text() == "14.8 of 12.5 fps"
    c.members["session"]["mode"] = "step"
    assert fps_text() == "14.8 fps"


def _silent_for(sim, client, ms: float) -> None:
    """Stops the sim's clock `ms` after the client last sent: its pings follow its clock, not how fast this machine is."""
    sim.clock_ms = client.members["_last_sent_ms"] + ms


def test_a_paused_game_keeps_its_session_open(godot_sim, scripted):
    """get_tree().paused stops _process of PAUSABLE nodes: the client runs always, so it still pings."""
    router, _ = scripted
    c, rec, ident = _scripted_session(godot_sim, scripted, "step", idle_timeout_s=1.5)
    assert c.native.process_mode == gdsim.NodeModel.PROCESS_MODE_ALWAYS
    godot_sim.tree.paused = True
    _silent_for(godot_sim, c, 1399.0)
    pump(godot_sim, router)
    _, ping = recv(router)
    assert ping["type"] == "ping"


def test_an_idle_step_session_is_kept_open_with_pings(godot_sim, scripted):
    router, _ = scripted
    c, rec, ident = _scripted_session(godot_sim, scripted, "step", idle_timeout_s=1.5)
    _silent_for(godot_sim, c, 1399.0)
    pump(godot_sim, router)  # the game sends nothing; the client must, well inside the host's 1.5 s
    _, ping = recv(router)
    assert ping["type"] == "ping"


def test_view_keeps_its_scenes_stretch_mode_and_says_what_the_last_frame_was(godot_sim, godot_host):
    c = new_client(godot_sim, godot_host.address, backend="sandbox", mode="step")
    view = godot_sim.new(godot_sim.script(VIEW))
    assert view.native.stretch_mode == 5  # the default, STRETCH_KEEP_ASPECT_CENTERED
    view.native.stretch_mode = 6  # as a game sets it, after _init
    view.members["client"] = c
    rec = Recorder(c, "recording_changed")
    godot_sim.add_to_root(c)
    godot_sim.add_to_root(view)
    assert run_until(godot_sim, lambda: view.members["frames_shown"] >= 1)
    assert view.native.stretch_mode == 6  # _ready no longer overwrites it
    assert godot_sim.call_method(c, "start_recording", [])
    assert run_until(godot_sim, lambda: rec["recording_changed"] and rec["recording_changed"][-1][0] is True)
    godot_sim.call_method(c, "disconnect_from_host", [])
    assert rec["recording_changed"][-1][0] is False  # the Record button must not keep saying "Stop"


@pytest.mark.parametrize("mode", [0, 1, 6])  # STRETCH_SCALE (TextureRect's default), STRETCH_TILE, KEEP_ASPECT_COVERED
def test_view_keeps_the_stretch_and_expand_mode_its_scene_saved(godot_sim, mode):
    """Godot saves a built-in property only where it differs from TextureRect's default, and sets it before the
    script's _init: a view saved with STRETCH_SCALE (or any mode) and EXPAND_KEEP_SIZE came back with the view's own
    defaults. One saved untouched still loads KEEP_ASPECT_CENTERED, where the Inspector's revert arrow goes too."""
    view = godot_sim.new(godot_sim.script(VIEW))
    view.native.name = "View"
    view.native.stretch_mode = mode
    view.native.expand_mode = 0
    loaded = gdsim.instance_scene_text(godot_sim, gdsim.pack_scene(godot_sim, view))
    assert (loaded.native.stretch_mode, loaded.native.expand_mode) == (mode, 0)
    untouched = godot_sim.new(godot_sim.script(VIEW))
    untouched.native.name = "View"
    loaded = gdsim.instance_scene_text(godot_sim, gdsim.pack_scene(godot_sim, untouched))
    assert (loaded.native.stretch_mode, loaded.native.expand_mode) == (5, 1)
    assert godot_sim.call_method(loaded, "_property_can_revert", ["stretch_mode"])
    assert godot_sim.call_method(loaded, "_property_get_revert", ["stretch_mode"]) == 5
    assert not godot_sim.call_method(loaded, "_property_can_revert", ["flip_h"])


def test_view_keeps_the_modes_a_scene_saved_before_it_saved_its_own_copies(godot_sim):
    """A scene saved before the view wrote saved_stretch_mode / saved_expand_mode has only the built-ins that differ
    from TextureRect's defaults, set before _init: _init put Keep Aspect Centered and Ignore Size over them."""
    scene = (f'[gd_scene load_steps=2 format=3]\n\n[ext_resource type="Script" path="{VIEW}" id="1_script"]\n\n'
             '[node name="View" type="TextureRect"]\nstretch_mode = 6\nscript = ExtResource("1_script")\n')
    loaded = gdsim.instance_scene_text(godot_sim, scene)
    assert (loaded.native.stretch_mode, loaded.native.expand_mode) == (6, 1), "the scene's stretch_mode was lost"


def test_a_recording_the_host_stopped_reads_as_stopped_then_says_why(godot_sim, scripted):
    """(1.3) A full disk ends the host's recording, not the session: the Record button must not keep saying "Stop"."""
    router, _ = scripted
    c, _, ident = _scripted_session(godot_sim, scripted, "step")
    rec = Recorder(c, "recording_changed", "error_received", "session_ended")
    assert godot_sim.call_method(c, "start_recording", [])
    pump(godot_sim, router)
    _, sent = recv(router)
    assert sent["type"] == "record_start"
    path = "recordings/s1.wbrec"
    router.send_multipart([ident, zmtp_raw.pack({"type": "ok", "req_id": sent["req_id"], "request": "record_start",
                                                 "path": path})])
    assert run_until(godot_sim, lambda: c.members["recording"])
    why = f"recording {path} stopped: No space left on device; everything recorded before it is kept"
    router.send_multipart([ident, zmtp_raw.pack({"type": "error", "req_id": None, "code": "recording_stopped",
                                                 "message": why, "fatal": False, "path": path, "frames": 41})])
    assert run_until(godot_sim, lambda: rec["error_received"])
    assert not c.members["recording"] and rec["recording_changed"] == [(True, path), (False, path)]
    assert rec["error_received"] == [("recording_stopped", why, False)]  # the game is told why
    assert c.members["link"] == IN_SESSION and not rec["session_ended"]  # and the session goes on


@pytest.mark.parametrize("path", ["user://run1.wbrec", "res://recordings/run1.wbrec"])
def test_a_godot_path_to_record_to_is_refused_at_once_since_the_host_writes_the_file(godot_sim, scripted, path):
    """The recording is on the host's disk, relative to its recordings folder: a user:// path means nothing there."""
    router, _ = scripted
    c, _, _ = _scripted_session(godot_sim, scripted, "step")
    rec = Recorder(c, "error_received", "recording_changed")
    assert godot_sim.call_method(c, "start_recording", [path]) is False
    for _ in range(5):
        godot_sim.process()
    assert _starts_seen(router, 200) == []  # nothing went to the host
    assert len(rec["error_received"]) == 1 and not rec["recording_changed"]
    code, message, fatal = rec["error_received"][0]
    assert (code, fatal) == ("client", False)
    assert path in message and "host" in message and "run1.wbrec" in message.replace(path, ""), message


def test_an_event_refused_at_its_frame_names_the_event_the_game_fired(godot_sim, scripted):
    """(1.3 addition) The host's error for it answers no request: a game saw a bare bad_argument and could not tell
    which of its queued events did not fire."""
    router, _ = scripted
    c, _, ident = _scripted_session(godot_sim, scripted, "step")
    rec = Recorder(c, "error_received", "event_refused")
    assert godot_sim.call_method(c, "fire_event", ["weather_snow", ""])
    pump(godot_sim, router)
    _, sent = recv(router)
    assert sent["type"] == "event"
    why = "event 'weather_snow' was refused by the backend: no snow in this level"
    router.send_multipart([ident, zmtp_raw.pack({"type": "error", "req_id": None, "code": "bad_argument",
                                                 "message": why, "fatal": False, "event_req_id": sent["req_id"],
                                                 "event_type": "weather_snow", "text": None})])
    assert run_until(godot_sim, lambda: rec["event_refused"])
    assert rec["error_received"] == [("bad_argument", why, False)]  # error_received first, as for capability_refused
    assert rec["event_refused"] == [(sent["req_id"], "weather_snow", "", why)]
    assert c.members["link"] == IN_SESSION


def test_a_game_tells_which_of_its_events_was_refused_by_the_request_id_fire_event_sent(godot_sim, scripted):
    """fire_event returns a bool, so a game could match event_refused's event_req_id only by reading every message:
    last_event_req_id is the id of the event it just sent (a keep-alive ping sent since does not change it)."""
    router, _ = scripted
    c, _, ident = _scripted_session(godot_sim, scripted, "step")
    rec = Recorder(c, "event_refused")
    assert c.members["last_event_req_id"] == -1
    mine = {}
    for event_type in ("weather_snow", "night_falls"):
        assert godot_sim.call_method(c, "fire_event", [event_type, ""])
        mine[c.members["last_event_req_id"]] = event_type
    assert godot_sim.call_method(c, "request_status", [])  # other requests take ids too
    assert not godot_sim.call_method(c, "fire_event", ["", ""])  # nothing sent: the last event's id stays
    sent = [recv(router)[1] for _ in range(4)]
    assert {m["req_id"]: m["event_type"] for m in sent if m["type"] == "event"} == mine
    refused = next(m for m in sent if m.get("event_type") == "night_falls")
    assert c.members["last_event_req_id"] == refused["req_id"]
    router.send_multipart([ident, zmtp_raw.pack({"type": "error", "req_id": None, "code": "bad_argument",
                                                 "message": "no night here", "fatal": False,
                                                 "event_req_id": refused["req_id"], "event_type": "night_falls",
                                                 "text": None})])
    assert run_until(godot_sim, lambda: rec["event_refused"])
    assert mine[rec["event_refused"][0][0]] == "night_falls"


# --- hello errors and deadlines, restarts after a failed resume, WorldInput against the start's action_map ---


def _unknown_session(req_id):
    return zmtp_raw.pack({"type": "error", "req_id": req_id, "code": "unknown_session", "message": "gone",
                          "fatal": False})


def _not_ready(req_id):
    return zmtp_raw.pack({"type": "error", "req_id": req_id, "code": "not_ready", "message": "send hello first",
                          "fatal": False})


def _hello_answered_with(sim, router, port, answer: dict, **members):
    """A client (`members` set) whose hello the scripted host answers with `answer`, once it says an error:
    (client, its error_received recorder)."""
    c = new_client(sim, f"tcp://127.0.0.1:{port}", **members)
    rec = Recorder(c, "error_received")
    sim.add_to_root(c)
    pump(sim, router)
    ident, hello = recv(router)
    assert hello["type"] == "hello"
    router.send_multipart([ident, zmtp_raw.pack(answer)])
    assert run_until(sim, lambda: rec["error_received"])
    return c, rec


def test_an_error_answering_hello_is_fatal_and_stops_reconnecting(godot_sim, godot_host):
    """The real host refuses a 5000-byte client name, its error carrying the hello's req_id."""
    c = new_client(godot_sim, godot_host.address, client_name="x" * 5000)
    rec = Recorder(c, "error_received")
    godot_sim.add_to_root(c)
    assert run_until(godot_sim, lambda: rec["error_received"])
    message = "`client` is longer than 4096 bytes"
    assert rec["error_received"] == [("bad_message", message, True)]
    assert c.members["link"] == 0 and message in c.members["status_text"] and c.members["_socket"] is None


def test_an_error_answering_an_older_request_while_greeting_again_does_not_end_the_connection(godot_sim, scripted):
    """After a not_ready the client greets again; the host's answer to an older request arriving then was taken for a
    refused hello: the client went OFFLINE for good. Only the error answering the hello (its req_id) ends it."""
    router, port = scripted
    c = _ready(godot_sim, router, port)
    rec = Recorder(c, "error_received")
    assert godot_sim.call_method(c, "start_session", [])
    pump(godot_sim, router)
    ident, start = recv(router)
    router.send_multipart([ident, _not_ready(start["req_id"])])  # the host forgot this client: greet again
    pump(godot_sim, router)
    ident, hello = recv(router)
    assert hello["type"] == "hello" and hello["req_id"] > start["req_id"]
    router.send_multipart([ident, zmtp_raw.pack({"type": "error", "req_id": start["req_id"] - 1, "code": "busy",
                                                 "message": "an older request", "fatal": False})])
    assert run_until(godot_sim, lambda: rec["error_received"][-1:] == [("busy", "an older request", False)])
    assert c.members["link"] == 2 and c.members["_socket"] is not None, c.members["status_text"]
    router.send_multipart([ident, zmtp_raw.pack(SCRIPTED_WELCOME)])  # the hello's answer comes after it
    pump(godot_sim, router)
    again = recv(router)[1]
    assert again["type"] == "start" and again["req_id"] > hello["req_id"], again
    refusal = {"type": "error", "req_id": hello["req_id"], "code": "bad_message", "message": "no", "fatal": False}
    router.send_multipart([ident, _not_ready(again["req_id"])])  # forgotten again; this time hello is refused
    pump(godot_sim, router)
    ident, hello = recv(router)
    router.send_multipart([ident, zmtp_raw.pack({**refusal, "req_id": hello["req_id"]})])
    assert run_until(godot_sim, lambda: c.members["link"] == 0)
    assert rec["error_received"][-1] == ("bad_message", "no", True) and c.members["_socket"] is None


def test_an_unknown_session_error_answering_another_request_does_not_restart_the_lost_session(godot_sim, scripted):
    """unknown_session answering anything but the resume (an older request) started the lost session again, and the
    resume's own answer then started it a second time: only the resume's answer does."""
    router, port = scripted
    c = _ready(godot_sim, router, port)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a cave"})])
    _session_started(godot_sim, router, c, "s2")
    router, ident, resume = _restart_host(godot_sim, router, port)
    assert resume["resume"] == "s2"
    router.send_multipart([ident, _unknown_session(resume["req_id"] - 1)])  # answers an older request
    for _ in range(50):
        godot_sim.process()
    assert [m for m in _starts_seen(router) if m["type"] == "start"] == [], "the lost session restarted"
    starts = _starts_after_the_resume_fails(godot_sim, router, ident, resume)
    assert [(s.get("resume"), s["text"]) for s in starts] == [(None, "a cave")], starts


def test_a_welcome_of_another_protocol_major_is_fatal_and_stops_reconnecting(godot_sim, scripted):
    router, port = scripted
    c, rec = _hello_answered_with(godot_sim, router, port, {**SCRIPTED_WELCOME, "protocol_major": 2,
                                                            "protocol_minor": 0})
    message = "host speaks protocol 2.0, this addon speaks 1.3: update the addon or the host"
    assert rec["error_received"] == [("version_mismatch", message, True)]
    assert c.members["link"] == 0 and c.members["status_text"] == message and c.members["_socket"] is None
    godot_sim.process(10)
    assert not router.poll(300), "sent a start, or greeted again, after a welcome of another major"


def test_hello_unanswered_within_the_handshake_timeout_reconnects(godot_sim, scripted):
    router, port = scripted
    c = new_client(godot_sim, f"tcp://127.0.0.1:{port}")
    rec = Recorder(c, "error_received")
    godot_sim.add_to_root(c)
    c.members["_socket"].members["handshake_timeout_s"] = 0.3
    pump(godot_sim, router)
    recv(router)  # hello, never answered
    assert run_until(godot_sim, lambda: c.members["link"] != 2), "no deadline on hello -> welcome"
    assert "did not answer hello within 0.3 s" in rec["error_received"][-1][1]
    pump(godot_sim, router)
    assert recv(router)[1]["type"] == "hello"  # greets again on a new connection


def test_a_failed_resume_restarts_with_the_last_starts_options_even_without_auto_start(godot_sim, scripted):
    router, port = scripted
    c = _ready(godot_sim, router, port)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a cave", "seed": 5})])
    _session_started(godot_sim, router, c, "s2")
    router, fresh = _restart_failing_resume(godot_sim, router, port, "s2")
    assert fresh["type"] == "start" and fresh.get("resume") is None
    assert (fresh["text"], fresh["seed"]) == ("a cave", 5), f"lost the last start's options: {fresh}"


def test_a_start_asked_for_while_reconnecting_replaces_the_resume(godot_sim, scripted):
    router, port = scripted
    c, _, ident = _scripted_session(godot_sim, (router, port), "realtime")
    router.close()
    assert run_until(godot_sim, lambda: c.members["link"] != IN_SESSION)
    assert not godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a desert"})])
    router, _ = _rebind(port)
    ident, first = greet_and_start(godot_sim, router)
    assert first.get("resume") is None and first["text"] == "a desert", f"the pending start was dropped: {first}"
    assert not router.poll(300), "a second start"


def test_world_input_takes_names_from_the_starts_action_map_and_checks_the_idle_action(godot_sim, scripted):
    router, port = scripted
    c = new_client(godot_sim, f"tcp://127.0.0.1:{port}", auto_start=False)
    inp = _world_input(godot_sim, c, bindings={"wb_right": "dash"}, idle_action="9")  # the backend has latent ids 0-1
    godot_sim.add_to_root(c)
    godot_sim.add_to_root(inp)
    pump(godot_sim, router)
    ident, _ = recv(router)
    router.send_multipart([ident, zmtp_raw.pack(SCRIPTED_WELCOME)])
    assert run_until(godot_sim, lambda: c.members["link"] == 3)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"action_map": {"dash": 1}})])
    assert _session_started(godot_sim, router, c)["action_map"] == {"dash": 1}
    pump(godot_sim, router)
    idle = recv(router)[1]
    assert idle["action"] == 0, f"an idle latent id past num_latent_actions was sent: {idle}"
    assert gdsim.to_py(inp.members["unknown_actions"]) == ["idle latent 9"]
    godot_sim.pressed.add("wb_right")
    godot_sim.just_pressed.add("wb_right")
    pump(godot_sim, router)
    assert recv(router)[1]["action"] == "dash", "a name of the start's action_map sent nothing"


def _starts_seen(router, ms=400):
    """Every message the client sends until it is quiet for `ms`."""
    out = []
    while router.poll(ms):
        ident, data = router.recv_multipart()
        out.append(zmtp_raw.unpack(data))
    return out


def _starts_after_the_resume_fails(sim, router, ident, resume) -> list[dict]:
    """Answers the resume with unknown_session and returns every `start` the client sends after it."""
    router.send_multipart([ident, _unknown_session(resume["req_id"])])
    for _ in range(50):
        sim.process()
    return [m for m in _starts_seen(router) if m["type"] == "start"]


def test_a_start_made_after_the_resume_went_out_is_the_only_start_when_the_resume_fails(godot_sim, scripted):
    router, port = scripted
    c, _, ident = _scripted_session(godot_sim, (router, port), "realtime")
    router, ident, resume = _restart_host(godot_sim, router, port)
    assert resume["resume"] == "s1"
    # the game asks for a new world after the resume went out (link is READY: sent at once)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a desert"})])
    pump(godot_sim, router)
    ident, game_start = recv(router)
    assert game_start["type"] == "start" and game_start["text"] == "a desert"
    extra = _starts_after_the_resume_fails(godot_sim, router, ident, resume)
    assert not extra, f"a second start after the failed resume (docs/protocol.md §5 says the game's start replaces it): {extra}"


def test_two_not_ready_answers_greet_once_and_start_once(godot_sim, scripted):
    router, port = scripted
    c = new_client(godot_sim, f"tcp://127.0.0.1:{port}", auto_start=True)
    godot_sim.add_to_root(c)
    ident, start = greet_and_start(godot_sim, router)
    # the start fails (e.g. bad_prompt): READY, no session; later the host forgets the peer (max_peers eviction)
    router.send_multipart([ident, zmtp_raw.pack({"type": "error", "req_id": start["req_id"], "code": "bad_prompt",
                                                 "message": "bad", "fatal": False})])
    for _ in range(20):
        godot_sim.process()
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "again"})])
    assert godot_sim.call_method(c, "request_status", [])
    pump(godot_sim, router)
    msgs = []
    while router.poll(300):
        msgs.append(router.recv_multipart())
    kinds = [zmtp_raw.unpack(d)["type"] for _, d in msgs]
    assert kinds == ["start", "status", "ping"], kinds
    s_req = zmtp_raw.unpack(msgs[0][1])["req_id"]
    st_req = zmtp_raw.unpack(msgs[1][1])["req_id"]
    for rq in (s_req, st_req):   # what a host that forgot the peer answers
        router.send_multipart([ident, _not_ready(rq)])
    pump(godot_sim, router)
    hellos = [m for m in _starts_seen(router) if m["type"] == "hello"]
    for _ in hellos:
        router.send_multipart([ident, zmtp_raw.pack(SCRIPTED_WELCOME)])
    for _ in range(50):
        godot_sim.process()
    starts = [m for m in _starts_seen(router) if m["type"] == "start"]
    assert len(hellos) == 1 or len(starts) == 1, f"{len(hellos)} hellos -> {len(starts)} starts: {starts}"


LATENT_NOTE = "WorldInput: keys 1–8 play the world model's 8 latent actions; the arrow keys play none of them"


def _world_model_session(sim, router, c, sid="s1"):
    """Answers client `c`'s next start as the default world does: 8 unnamed latent actions."""
    _session_started(sim, router, c, sid, backend_kind="world_model", action_names=[f"latent_{i}" for i in range(8)],
                     num_latent_actions=8)


def test_world_input_default_map_on_a_world_model_warns_nothing_and_says_once_what_plays(godot_sim, scripted):
    router, port = scripted
    c = _ready(godot_sim, router, port)
    wi = _world_input(godot_sim, c)
    sent = Recorder(wi, "action_sent")
    godot_sim.add_to_root(wi)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({})])
    _world_model_session(godot_sim, router, c)
    pump(godot_sim, router)
    assert recv(router)[1]["action"] == 0  # the default idle "noop" falls back to latent 0
    assert godot_sim.warnings == [], f"the default map warned on a world model: {godot_sim.warnings}"
    assert [line for line in godot_sim.output if "WorldInput" in line] == [LATENT_NOTE]
    gdsim.press(godot_sim, "wb_right")
    godot_sim.process(3)
    gdsim.release(godot_sim, "wb_right")
    gdsim.press(godot_sim, "wb_latent_8")
    pump(godot_sim, router)
    assert recv(router)[1]["action"] == 7
    assert [a[0] for a in sent["action_sent"]] == [0, 7]  # the arrow sent nothing
    godot_sim.process(5)
    assert [line for line in godot_sim.output if "WorldInput" in line] == [LATENT_NOTE]  # once a session


def test_world_input_warns_once_about_the_users_own_bindings_a_world_model_lacks(godot_sim, scripted):
    router, port = scripted
    c = _ready(godot_sim, router, port)
    wi = _world_input(godot_sim, c, idle_action="rest")
    wi.members["bindings"]["wb_down"] = "crouch"  # a changed default
    wi.members["bindings"]["wb_event_1"] = "dash"  # an added binding
    godot_sim.add_to_root(wi)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({})])
    _world_model_session(godot_sim, router, c)
    pump(godot_sim, router)
    assert recv(router)[1]["action"] == 0
    godot_sim.process(5)
    assert len(godot_sim.warnings) == 2, godot_sim.warnings
    assert godot_sim.warnings[0].startswith("WorldInput: crouch, dash not among this backend's actions")
    assert godot_sim.warnings[1].startswith("WorldInput: idle action rest not among this backend's actions")
    assert "idle rest" in wi.members["unknown_actions"] and "right" in wi.members["unknown_actions"]
    assert [line for line in godot_sim.output if "WorldInput" in line] == [LATENT_NOTE]


@pytest.mark.parametrize("count, note", [
    (4, "keys 1–4 play the world model's 4 latent actions"),
    (16, "keys 1–8 play 8 of the world model's 16 latent actions"),
])
def test_world_input_says_what_the_digit_keys_play_on_a_world_model_of_any_size(godot_sim, count, note):
    wi = _world_input(godot_sim, None)
    godot_sim.add_to_root(wi)
    session = {"backend_kind": "world_model", "action_names": [f"latent_{i}" for i in range(count)],
               "num_latent_actions": count}
    godot_sim.call_method(wi, "check_bindings", [gdsim.to_gd(session)])
    assert godot_sim.warnings == [] and godot_sim.output == [f"WorldInput: {note}; the arrow keys play none of them"]


def test_world_input_says_what_the_keys_play_once_and_again_only_when_it_changes(godot_sim):
    """The note was printed every session, while README and CHANGELOG say once (Unity logs it again only on new wording)."""
    wi = _world_input(godot_sim, None)
    godot_sim.add_to_root(wi)
    for count in (8, 8, 16, 16, 8):
        session = {"backend_kind": "world_model", "action_names": [f"latent_{i}" for i in range(count)],
                   "num_latent_actions": count}
        godot_sim.call_method(wi, "check_bindings", [gdsim.to_gd(session)])
    assert godot_sim.output == [LATENT_NOTE, "WorldInput: keys 1–8 play 8 of the world model's 16 latent actions; the"
                                " arrow keys play none of them", LATENT_NOTE]


def test_world_input_sends_the_held_key_to_a_session_that_replaces_the_current_one(godot_sim, scripted):
    router, port = scripted
    c = new_client(godot_sim, f"tcp://127.0.0.1:{port}")
    inp = _world_input(godot_sim, c, bindings={"wb_right": "right"})
    godot_sim.add_to_root(c)
    godot_sim.add_to_root(inp)
    answer_start(godot_sim, router, c, *greet_and_start(godot_sim, router))
    pump(godot_sim, router)
    assert recv(router)[1]["action"] == "noop"
    godot_sim.pressed.add("wb_right")
    pump(godot_sim, router)
    assert recv(router)[1]["action"] == "right"
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "new"})])
    _session_started(godot_sim, router, c, "s2")
    for _ in range(30):
        godot_sim.process()
    inputs = [m for m in _starts_seen(router) if m["type"] == "input"]
    assert inputs, "the new session s2 never got the held 'right': it runs with no input while the key is held"


def test_a_start_sent_but_unanswered_at_the_drop_is_sent_again_instead_of_the_resume(godot_sim, scripted):
    router, port = scripted
    c, _, ident = _scripted_session(godot_sim, (router, port), "realtime")
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a desert"})])
    pump(godot_sim, router)
    assert recv(router)[1]["text"] == "a desert"  # it reached the host, which goes away before answering
    router = _drop(godot_sim, router, port, c)
    ident, first = greet_and_start(godot_sim, router)
    assert first.get("resume") is None and first["text"] == "a desert", f"resumed instead: {first}"
    assert not [m for m in _starts_seen(router) if m["type"] == "start"], "a second start"
    answer_start(godot_sim, router, c, ident, first, "s2")
    router, ident, resume = _restart_host(godot_sim, router, port)  # answered: a later drop resumes s2
    assert resume["resume"] == "s2"


def test_a_first_start_unanswered_at_the_drop_is_sent_again_without_auto_start(godot_sim, scripted):
    router, port = scripted
    c = _ready(godot_sim, router, port)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a cave"})])
    pump(godot_sim, router)
    assert recv(router)[1]["text"] == "a cave"
    router, ident, again = _restart_host(godot_sim, router, port)
    assert again.get("resume") is None and again["text"] == "a cave"


def test_world_input_uses_a_new_sessions_actions_from_its_first_frame_when_it_runs_before_the_client(godot_sim,
                                                                                                     scripted):
    """Godot's WorldInput re-checks its bindings against the session the client holds in the same _process that sends,
    so a session that replaces another never gets an input decided by the previous session's action names."""
    router, port = scripted
    c = new_client(godot_sim, f"tcp://127.0.0.1:{port}")
    inp = _world_input(godot_sim, c, bindings={"wb_right": "wait"})
    godot_sim.add_to_root(inp)  # processed before the client: it sees a new session one frame after the client took it
    godot_sim.add_to_root(c)
    godot_sim.pressed.add("wb_right")
    answer_start(godot_sim, router, c, *greet_and_start(godot_sim, router))  # s1 has no "wait"
    pump(godot_sim, router)
    assert recv(router)[1]["action"] == "noop"
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "new"})])
    _session_started(godot_sim, router, c, "s2", action_names=["noop", "wait"])
    for _ in range(5):
        godot_sim.process()
    inputs = [m["action"] for m in _starts_seen(router) if m["type"] == "input"]
    assert inputs[:1] == ["wait"], f"s2's first input was decided by s1's actions: {inputs}"


def test_nothing_but_hello_reaches_a_reconnect_before_its_welcome(godot_sim, scripted):
    router, port = scripted
    c, _, ident = _scripted_session(godot_sim, (router, port), "realtime")
    router = _drop(godot_sim, router, port, c)
    pump(godot_sim, router)
    ident, hello = recv(router)
    assert hello["type"] == "hello"  # the host holds its welcome back; the game asks for the host's status
    rec = Recorder(c, "error_received")
    assert not godot_sim.call_method(c, "request_status", [])
    assert [e[0] for e in rec["error_received"]] == ["client"], "a refused status request said nothing"
    assert "greeting the host" in rec["error_received"][0][1]
    godot_sim.process(5)
    early = _starts_seen(router, 300)
    assert not early, f"sent to the new connection before its welcome: {early}"
    router.send_multipart([ident, zmtp_raw.pack(SCRIPTED_WELCOME)])
    pump(godot_sim, router)
    assert recv(router)[1]["resume"] == "s1"


def test_a_failed_resume_restarts_with_the_lost_sessions_options_not_those_of_a_start_refused_since(godot_sim,
                                                                                                   scripted):
    router, port = scripted
    c = _ready(godot_sim, router, port)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a cave"})])
    _session_started(godot_sim, router, c)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a sketch that does not decode"})])
    pump(godot_sim, router)
    ident, refused = recv(router)
    router.send_multipart([ident, zmtp_raw.pack({"type": "error", "req_id": refused["req_id"], "code": "bad_prompt",
                                                 "message": "does not decode", "fatal": False})])
    godot_sim.process(5)
    assert c.members["session"]["session_id"] == "s1"  # a refused start leaves the session running
    router, fresh = _restart_failing_resume(godot_sim, router, port, "s1")
    assert fresh["type"] == "start" and fresh["text"] == "a cave", f"restarted with the refused start's options: {fresh}"


def _render(sim, viewport) -> None:
    """Gives gdsim's prompt `viewport` a rendered 4x4 image, as a frame drawn in the game would."""
    viewport.rendered = gdsim.NATIVE_STATICS[("Image", "create")](sim, 4, 4, False, gdsim.ImageModel.FORMAT_RGB8)


def test_a_failed_resume_restarts_without_capturing_the_prompt_viewport_the_lost_session_had_no_image_of(
        godot_sim, scripted):
    router, port = scripted
    welcome = {**SCRIPTED_WELCOME, "capabilities": ["text_prompt", "image_prompt"]}
    viewport = gdsim.SubViewportModel(godot_sim)  # has not rendered yet: the first start goes without an image
    c = _ready(godot_sim, router, port, welcome, text_prompt="a cave", prompt_viewport=viewport)
    assert godot_sim.call_method(c, "start_session", [])
    start = _session_started(godot_sim, router, c)
    assert start["image"] is None and start["text"] == "a cave"
    _render(godot_sim, viewport)
    router, fresh = _restart_failing_resume(godot_sim, router, port, "s1", welcome)
    assert fresh["type"] == "start" and fresh["text"] == "a cave"
    assert fresh["image"] is None, "the restart captured the viewport: not the lost session's options"


def _a_start_that_does_not_go_out(sim, c) -> None:
    """start_session with a 5000-byte text: over a _limited host's limit, it does not go out."""
    assert not sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a" * 5000})])


def _a_cave_then_a_start_that_does_not_go_out(sim, router, port):
    """A client of a _limited host that sent a start for "a cave", then one that did not go out; returns it."""
    c = _ready(sim, router, port, _limited())
    assert sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a cave"})])
    _a_start_that_does_not_go_out(sim, c)
    return c


def _a_session_resumed_on_a_limited_host(sim, scripted):
    """A client in session s1 whose host restarted _limited: (client, router, the host's peer id, the resume sent)."""
    router, port = scripted
    c, _, _ = _scripted_session(sim, scripted, "realtime")
    router, ident, resume = _restart_host(sim, router, port, _limited())
    assert resume["resume"] == "s1"
    return c, router, ident, resume


def test_a_start_answered_after_a_later_start_failed_to_send_is_resumed_after_a_drop(godot_sim, scripted):
    router, port = scripted
    c = _a_cave_then_a_start_that_does_not_go_out(godot_sim, router, port)
    _session_started(godot_sim, router, c)
    router, _, resume = _restart_host(godot_sim, router, port, _limited())
    assert resume.get("resume") == "s1", "s1 was dropped for the start that never went out"


def test_a_start_that_failed_to_send_after_the_resume_does_not_stop_the_restart(godot_sim, scripted):
    c, router, ident, resume = _a_session_resumed_on_a_limited_host(godot_sim, scripted)
    _a_start_that_does_not_go_out(godot_sim, c)
    router.send_multipart([ident, _unknown_session(resume["req_id"])])
    assert run_until(godot_sim, lambda: router.poll(0)), "no restart: a start that never went out stopped it"
    fresh = recv(router)[1]
    assert fresh["type"] == "start" and fresh.get("resume") is None and fresh["text"] is None


def test_a_start_that_failed_to_send_after_the_games_start_does_not_restart_the_lost_session(godot_sim, scripted):
    c, router, ident, resume = _a_session_resumed_on_a_limited_host(godot_sim, scripted)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a desert"})])  # after the resume went out
    pump(godot_sim, router)
    ident, game_start = recv(router)
    assert game_start["text"] == "a desert"
    _a_start_that_does_not_go_out(godot_sim, c)
    extra = _starts_after_the_resume_fails(godot_sim, router, ident, resume)
    assert not extra, f"the lost session restarted over the desert the game asked for: {extra}"


def test_a_start_refused_with_not_ready_is_repeated_though_a_later_start_failed_to_send(godot_sim, scripted):
    router, port = scripted
    _a_cave_then_a_start_that_does_not_go_out(godot_sim, router, port)
    pump(godot_sim, router)
    ident, start = recv(router)
    router.send_multipart([ident, _not_ready(start["req_id"])])
    pump(godot_sim, router)
    assert recv(router)[1]["type"] == "hello"
    router.send_multipart([ident, zmtp_raw.pack(_limited())])
    assert run_until(godot_sim, lambda: router.poll(0)), "the cave the host refused was not asked for again"
    again = recv(router)[1]
    assert again["type"] == "start" and again["text"] == "a cave"


def test_request_ids_name_sent_requests_only(godot_sim, scripted):
    router, port = scripted
    c = _a_cave_then_a_start_that_does_not_go_out(godot_sim, router, port)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a desert"})])
    pump(godot_sim, router)
    ids = [m["req_id"] for m in _starts_seen(router)]
    assert ids == [ids[0], ids[0] + 1], f"a start that never went out took a request id: {ids}"


def test_action_map_sent_is_the_one_of_the_start_the_session_answers(godot_sim, scripted):
    router, port = scripted
    c = _ready(godot_sim, router, port)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"action_map": {"dash": 1}})])
    jump = gdsim.to_gd({"action_map": {"jump": 1}})
    assert godot_sim.call_method(c, "start_session", [jump])  # before the first's session
    pump(godot_sim, router)
    ident, first = recv(router)
    _, second = recv(router)
    router.send_multipart([ident, zmtp_raw.pack(session_msg(first["req_id"], "s1"))])
    assert run_until(godot_sim, lambda: c.members["session"].get("session_id") == "s1")
    assert gdsim.to_py(c.members["action_map_sent"]) == {"dash": 1}, "s1 is checked against the newer start's map"
    router.send_multipart([ident, zmtp_raw.pack(session_msg(second["req_id"], "s2"))])
    assert run_until(godot_sim, lambda: c.members["session"].get("session_id") == "s2")
    assert gdsim.to_py(c.members["action_map_sent"]) == {"jump": 1}


_IMAGE_WELCOME = {**SCRIPTED_WELCOME, "capabilities": ["text_prompt", "image_prompt"]}


def _start_then_change_exports(sim, router, port):
    """A start (text "a cave", seed 5, no image) reaches the host, then text_prompt and prompt_viewport change:
    (the host's peer id, the start as sent)."""
    viewport = gdsim.SubViewportModel(sim)  # has not rendered yet: the start goes without an image
    c = _ready(sim, router, port, _IMAGE_WELCOME, text_prompt="a cave", prompt_viewport=viewport)
    assert sim.call_method(c, "start_session", [gdsim.to_gd({"seed": 5})])
    pump(sim, router)
    ident, sent = recv(router)
    assert (sent["text"], sent["image"], sent["seed"]) == ("a cave", None, 5)
    c.members["text_prompt"] = "a desert"
    _render(sim, viewport)
    return ident, sent


def test_a_start_sent_again_after_a_drop_is_the_start_as_sent_not_the_exports_changed_since(godot_sim, scripted):
    router, port = scripted
    _start_then_change_exports(godot_sim, router, port)  # the host goes away before answering
    router, _, again = _restart_host(godot_sim, router, port, _IMAGE_WELCOME)
    assert again.get("resume") is None
    assert (again["text"], again["image"], again["seed"]) == ("a cave", None, 5), f"not the start as sent: {again}"


def test_a_start_repeated_after_not_ready_is_the_start_as_sent_not_the_exports_changed_since(godot_sim, scripted):
    router, port = scripted
    ident, sent = _start_then_change_exports(godot_sim, router, port)
    router.send_multipart([ident, _not_ready(sent["req_id"])])  # the host forgot this client
    pump(godot_sim, router)
    assert recv(router)[1]["type"] == "hello"
    router.send_multipart([ident, zmtp_raw.pack(_IMAGE_WELCOME)])
    pump(godot_sim, router)
    again = recv(router)[1]
    assert again["type"] == "start" and again["req_id"] > sent["req_id"]
    assert (again["text"], again["image"], again["seed"]) == ("a cave", None, 5), f"not the start as sent: {again}"


def _a_sent_start_queued_for_the_next_reconnect(sim, router, port):
    """A 3000-byte start reaches the host, which goes away before answering and comes back taking no message that
    big: the start did not go out again and waits for the next reconnect. Returns (client, router)."""
    c = _ready(sim, router, port)
    assert sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a cave"})])
    _session_started(sim, router, c)
    assert sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a" * 3000})])
    pump(sim, router)
    assert recv(router)[1]["type"] == "start"  # it reached the host, which goes away before answering
    rec = Recorder(c, "error_received")
    router = _drop(sim, router, port, c)
    pump(sim, router)
    ident, hello = recv(router)
    assert hello["type"] == "hello"
    router.send_multipart([ident, zmtp_raw.pack(_limited())])  # this host takes no 3000-byte start
    assert run_until(sim, lambda: c.members["link"] == 3)
    sim.process(5)
    assert not _starts_seen(router, 300)
    assert "goes again on the next reconnect" in rec["error_received"][-1][1], rec["error_received"]
    return c, router


def test_a_start_sent_again_after_a_drop_that_does_not_go_out_is_kept_for_the_next_reconnect(godot_sim, scripted):
    router, port = scripted
    _, router = _a_sent_start_queued_for_the_next_reconnect(godot_sim, router, port)
    router, _, again = _restart_host(godot_sim, router, port)
    assert again.get("resume") is None and again["text"] == "a" * 3000, f"the start was lost: {again}"


def test_the_games_newer_start_that_does_not_go_out_replaces_the_start_queued_for_the_next_reconnect(godot_sim,
                                                                                                      scripted):
    """The next welcome sent the older queued start, not the world the game asked for last."""
    router, port = scripted
    c, router = _a_sent_start_queued_for_the_next_reconnect(godot_sim, router, port)
    newer = gdsim.to_gd({"text": "b" * 3000, "seed": 9})
    assert not godot_sim.call_method(c, "start_session", [newer])  # over this host's limit too
    router, _, again = _restart_host(godot_sim, router, port)
    assert again.get("resume") is None and (again["text"], again["seed"]) == ("b" * 3000, 9), \
        f"not the newest start: {again.get('text', '')[:5]!r}, seed {again.get('seed')}"


def _nothing_but_hello_after_connect(sim, router, c, address: str) -> list[dict]:
    """Connects client `c` to the scripted host at `address`, welcomes it; returns what it sends after the welcome."""
    assert sim.call_method(c, "connect_to_host", [address]) == 0
    pump(sim, router)
    ident, hello = recv(router)
    assert hello["type"] == "hello"
    router.send_multipart([ident, zmtp_raw.pack(SCRIPTED_WELCOME)])
    assert run_until(sim, lambda: c.members["link"] == 3)
    run_until(sim, lambda: router.poll(0), timeout=0.5)
    return _starts_seen(router, ms=50)


def test_a_start_queued_offline_is_forgotten_at_disconnect(godot_sim, scripted):
    """start_session() while unable to reach the host, then disconnect_from_host(): the next connect only connects."""
    router, port = scripted
    gone, gone_port = scripted_router()
    gone.close()  # nothing listens there: the client keeps reconnecting
    c = new_client(godot_sim, f"tcp://127.0.0.1:{gone_port}", auto_start=False)
    godot_sim.add_to_root(c)
    assert not godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a desert"})])
    godot_sim.call_method(c, "disconnect_from_host", [])
    sent = _nothing_but_hello_after_connect(godot_sim, router, c, f"tcp://127.0.0.1:{port}")
    assert sent == [], f"the start asked for before the disconnect went out: {sent}"
    assert not c.members["_starts"].members["pending"] and not c.members["_starts"].members["resend"]


def test_a_start_retried_without_its_refused_prompt_emits_no_error(godot_sim, scripted):
    """error_received/capability_refused for a refusal the client retries left bad_prompt on a status line bound to
    errors over a start that then succeeded; dropped_note() says what was left out."""
    router, port = scripted
    c = _ready(godot_sim, router, port, text_prompt="an exported prompt")
    rec = Recorder(c, "error_received", "capability_refused")
    assert godot_sim.call_method(c, "start_session", [])
    pump(godot_sim, router)
    ident, start = recv(router)
    assert start["text"] == "an exported prompt"
    answer_the_retry_without(godot_sim, router, c, ident, start, "text")
    assert rec["error_received"] == [] and rec["capability_refused"] == [], rec
    assert "text prompt" in godot_sim.call_method(c, "dropped_note", [])


def test_a_retry_that_did_not_go_out_leaves_the_refusal_as_the_answer(godot_sim, scripted):
    """The host forgot the client, welcomed it again with a smaller message limit, then refused its start's exported
    image: the start without it is over that limit and never went out, yet the client hid the refusal and counted the
    image as dropped, leaving the game waiting for no start."""
    router, port = scripted
    viewport = gdsim.SubViewportModel(godot_sim)
    _render(godot_sim, viewport)
    c = _ready(godot_sim, router, port, _IMAGE_WELCOME, text_prompt="a" * 3000, prompt_viewport=viewport)
    rec = Recorder(c, "capability_refused", "error_received")
    assert godot_sim.call_method(c, "start_session", [])
    pump(godot_sim, router)
    ident, start = recv(router)
    assert start["image"] is not None
    router.send_multipart([ident, _not_ready(99)])  # a ping it forgot: greet again
    pump(godot_sim, router)
    assert recv(router)[1]["type"] == "hello"
    router.send_multipart([ident, zmtp_raw.pack(_limited(_IMAGE_WELCOME))])
    assert run_until(godot_sim, lambda: c.members["link"] == 3)
    refuse_prompt(router, ident, start, "image_prompt")
    assert run_until(godot_sim, lambda: rec["capability_refused"][-1:] == [
        ("image_prompt", "this backend takes no image prompts")], timeout=5), rec.seen
    assert any("over the host's 2000-byte limit" in e[1] for e in rec["error_received"]), rec.seen
    assert list(c.members["_starts"].members["dropped"]) == [], "a prompt counted as dropped by a start that never went out"


@pytest.mark.parametrize("text_prompt,queued", [("a" * 3000, {"seed": 7}), ("a cave", {"seed": 7, "text": "b" * 3000})],
                         ids=["retry_does_not_go_out", "retry_goes_out"])
def test_a_start_queued_for_the_next_welcome_survives_a_refused_older_start(godot_sim, scripted, text_prompt, queued):
    """The game's start, asked for while the client greeted a host that forgot it and over that host's new limit, was
    queued for the next reconnect; the retry of an older start's refused exported prompt then dropped it: the newest
    start wins, so the older start is not retried and its refusal is the answer."""
    router, port = scripted
    viewport = gdsim.SubViewportModel(godot_sim)
    _render(godot_sim, viewport)
    c = _ready(godot_sim, router, port, _IMAGE_WELCOME, text_prompt=text_prompt, prompt_viewport=viewport)
    assert godot_sim.call_method(c, "start_session", [])
    pump(godot_sim, router)
    ident, start = recv(router)
    router.send_multipart([ident, _not_ready(99)])  # a ping it forgot: greet again
    pump(godot_sim, router)
    assert recv(router)[1]["type"] == "hello"
    assert not godot_sim.call_method(c, "start_session", [gdsim.to_gd(queued)])  # queued for the welcome
    router.send_multipart([ident, zmtp_raw.pack(_limited(_IMAGE_WELCOME))])  # the seed-7 start is over this limit: kept
    assert run_until(godot_sim, lambda: c.members["link"] == 3)
    rec = Recorder(c, "capability_refused")
    refuse_prompt(router, ident, start, "image_prompt")
    assert run_until(godot_sim, lambda: rec["capability_refused"], timeout=5), "the older start's refusal was hidden"
    starts = _starts_at_the_next_welcome(godot_sim, router, port, _IMAGE_WELCOME)
    assert [s["seed"] for s in starts] == [7], f"the queued start was lost: {starts}"


def _starts_at_the_next_welcome(sim, router, port, welcome=SCRIPTED_WELCOME) -> list[dict]:
    """The host restarts with its usual limit and welcomes the client again: every start the client then sends."""
    router.close()
    router, _ = _rebind(port)
    pump(sim, router)
    ident, hello = recv(router)
    assert hello["type"] == "hello"
    router.send_multipart([ident, zmtp_raw.pack(welcome)])
    run_until(sim, lambda: router.poll(0), timeout=2)
    return [m for m in _starts_seen(router, ms=50) if m["type"] == "start"]


@pytest.mark.parametrize("lost_text", ["a cave", "a" * 3000], ids=["restart_goes_out", "restart_does_not_go_out"])
def test_a_failed_resume_does_not_restart_the_lost_session_over_the_games_queued_start(godot_sim, scripted, lost_text):
    """The game's start, queued while the client greeted a host that forgot it and over that host's limit, was
    replaced by the restart of the lost session when the resume then failed (unknown_session): the next welcome
    sent the lost session's options, not the world the game asked for."""
    router, port = scripted
    c = _ready(godot_sim, router, port)
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": lost_text})])
    _session_started(godot_sim, router, c)
    router, ident, resume = _restart_host(godot_sim, router, port, _limited())
    assert resume["resume"] == "s1"
    router.send_multipart([ident, _not_ready(99)])  # a ping it forgot: greet again
    pump(godot_sim, router)
    assert recv(router)[1]["type"] == "hello"
    assert not godot_sim.call_method(c, "start_session", [gdsim.to_gd({"seed": 7, "text": "b" * 3000})])
    router.send_multipart([ident, zmtp_raw.pack(_limited())])  # the seed-7 start is over this limit: kept
    assert run_until(godot_sim, lambda: c.members["link"] == 3)
    extra = _starts_after_the_resume_fails(godot_sim, router, ident, resume)
    assert not extra, f"the lost session restarted over the game's queued start: {extra}"
    starts = _starts_at_the_next_welcome(godot_sim, router, port)
    seen = [(s["seed"], s["text"][:8]) for s in starts]
    assert [s["seed"] for s in starts] == [7], f"the queued start was lost: {seen}"


def test_a_restarted_host_refusing_the_lost_sessions_exported_prompt_gets_the_start_again_without_it(godot_sim,
                                                                                                     scripted):
    """A host restarted onto a backend without text prompts refused the lost session's start the failed resume sent
    again, and the client did not retry it: no world (the restart's prompts all read as the game's own)."""
    router, port = scripted
    c = _ready(godot_sim, router, port, text_prompt="a cave")
    assert godot_sim.call_method(c, "start_session", [])
    _session_started(godot_sim, router, c)
    router, ident, resume = _restart_host(godot_sim, router, port)
    router.send_multipart([ident, _unknown_session(resume["req_id"])])
    pump(godot_sim, router)
    _, fresh = recv(router)
    assert (fresh["type"], fresh["text"]) == ("start", "a cave")
    answer_the_retry_without(godot_sim, router, c, ident, fresh, "text")
    assert list(c.members["dropped_prompts"]) == ["text"]


def test_a_text_prompt_passed_to_start_session_and_refused_is_not_sent_again(godot_sim, scripted):
    """Only prompts from the exported properties are dropped and retried; the game's own prompt's refusal is the answer."""
    router, port = scripted
    c = _ready(godot_sim, router, port, text_prompt="an exported prompt")
    rec = Recorder(c, "capability_refused")
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a desert"})])
    pump(godot_sim, router)
    ident, start = recv(router)
    assert (start["type"], start["text"]) == ("start", "a desert")
    refuse_prompt(router, ident, start, "text_prompt")
    assert run_until(godot_sim, lambda: rec["capability_refused"])
    run_until(godot_sim, lambda: router.poll(0), timeout=0.5)
    sent = _starts_seen(router, ms=50)
    assert sent == [], f"the refused start went again: {sent}"
    assert c.members["link"] == 3 and list(c.members["dropped_prompts"]) == []


def test_the_games_own_prompt_refused_is_not_sent_again_after_a_later_start_did_not_go_out(godot_sim, scripted):
    """A start that did not go out (over the host's limit) took the exports it would have used as those of the start
    the host then refused: the game's own image was dropped and its start sent again without it."""
    router, port = scripted
    viewport = gdsim.SubViewportModel(godot_sim)
    _render(godot_sim, viewport)
    c = _ready(godot_sim, router, port, _limited(_IMAGE_WELCOME), prompt_viewport=viewport)
    rec = Recorder(c, "capability_refused")
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"image": b"\x89PNG the game's own"})])
    assert not godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "b" * 3000})])  # takes the viewport's
    pump(godot_sim, router)
    ident, start = recv(router)
    refuse_prompt(router, ident, start, "image_prompt")
    assert run_until(godot_sim, lambda: rec["capability_refused"], timeout=5), "the game's image's refusal was hidden"
    run_until(godot_sim, lambda: router.poll(0), timeout=0.5)
    sent = _starts_seen(router, ms=50)
    assert sent == [], f"the game's own image was dropped and its start sent again: {sent}"


def test_world_input_disabled_with_a_key_held_sends_the_idle_action_once(godot_sim, scripted):
    """The host keeps the last input in force: a menu opened (enabled = false) while walking must stop the walk."""
    wi, sent = _realtime_input(godot_sim, scripted)
    godot_sim.add_to_root(wi)
    gdsim.press(godot_sim, "wb_right")
    godot_sim.process(3)
    wi.members["enabled"] = False
    godot_sim.process(3)
    gdsim.release(godot_sim, "wb_right")
    gdsim.press(godot_sim, "wb_latent_2")
    godot_sim.process(3)
    assert [a[0] for a in sent["action_sent"]] == ["right", "noop"], "the world kept walking under the menu"
    wi.members["enabled"] = True
    godot_sim.process(2)
    assert sent["action_sent"][-1] == (1,)
    gdsim.release(godot_sim, "wb_latent_2")


@pytest.mark.parametrize("layout", ["sibling of the client", "child of the client"])
def test_world_input_in_a_paused_tree_sends_the_idle_action_once_and_the_held_keys_at_unpause(godot_sim, scripted,
                                                                                              layout):
    """A paused tree stops WorldInput's _process while the host keeps the last input in force: pausing mid-walk must stop
    the walk (NOTIFICATION_PAUSED), and unpausing sends the keys held then. Under the client, which runs always, an
    Inherit WorldInput got no NOTIFICATION_PAUSED and kept steering through the pause."""
    c, _, _ = _scripted_session(godot_sim, scripted, "realtime")
    wi = _world_input(godot_sim, c)
    sent = Recorder(wi, "action_sent")
    (godot_sim.native_of(c).add_child if layout == "child of the client" else godot_sim.add_to_root)(wi)
    gdsim.press(godot_sim, "wb_right")
    godot_sim.process(3)
    godot_sim.tree.paused = True
    godot_sim.process(3)
    assert [a[0] for a in sent["action_sent"]] == ["right", "noop"], "the world kept walking under the pause menu"
    gdsim.release(godot_sim, "wb_right")
    gdsim.press(godot_sim, "wb_latent_2")
    godot_sim.process(3)
    assert len(sent["action_sent"]) == 2, "WorldInput sent while the tree was paused"
    godot_sim.tree.paused = False
    godot_sim.process(2)
    assert [a[0] for a in sent["action_sent"]] == ["right", "noop", 1]
    gdsim.release(godot_sim, "wb_latent_2")


def test_world_input_set_to_process_always_keeps_steering_in_a_paused_tree(godot_sim, scripted):
    """A process_mode chosen in the inspector is kept: a game that steers the world under its pause menu sets Always."""
    wi, sent = _realtime_input(godot_sim, scripted)
    godot_sim.native_of(wi).process_mode = gdsim.NodeModel.PROCESS_MODE_ALWAYS
    godot_sim.add_to_root(wi)
    godot_sim.tree.paused = True
    gdsim.press(godot_sim, "wb_right")
    godot_sim.process(3)
    assert [a[0] for a in sent["action_sent"]] == ["right"]
    assert godot_sim.native_of(wi).process_mode == gdsim.NodeModel.PROCESS_MODE_ALWAYS
    gdsim.release(godot_sim, "wb_right")


@pytest.mark.parametrize("parent_mode", ["PROCESS_MODE_DISABLED", "PROCESS_MODE_WHEN_PAUSED"])
def test_world_input_in_a_subtree_the_game_switches_off_sends_nothing(godot_sim, scripted, parent_mode):
    """Pausable ignores the parent: turning every Inherit WorldInput Pausable let one inside a Disabled subtree (a
    cutscene) or under a When Paused menu keep steering the running game. Only an Always owner is overridden."""
    wi, sent = _realtime_input(godot_sim, scripted)
    holder = _world_input(godot_sim, None)
    godot_sim.native_of(holder).process_mode = getattr(gdsim.NodeModel, parent_mode)
    godot_sim.add_to_root(holder)
    godot_sim.native_of(holder).add_child(wi)
    gdsim.press(godot_sim, "wb_right")
    godot_sim.process(3)
    assert sent["action_sent"] == [], f"a WorldInput under a {parent_mode} parent steered the world"
    assert godot_sim.native_of(wi).process_mode == gdsim.NodeModel.PROCESS_MODE_INHERIT
    gdsim.release(godot_sim, "wb_right")


def test_world_input_switched_to_disabled_while_a_key_is_held_sends_the_idle_action(godot_sim, scripted):
    """process_mode = Disabled stops _process (NOTIFICATION_DISABLED) while the host keeps the last input in force."""
    wi, sent = _realtime_input(godot_sim, scripted)
    godot_sim.native_of(wi).process_mode = gdsim.NodeModel.PROCESS_MODE_ALWAYS
    godot_sim.add_to_root(wi)
    godot_sim.tree.paused = True  # Always, then Disabled in a paused tree: it can process before, so PAUSED comes too
    gdsim.press(godot_sim, "wb_right")
    godot_sim.process(3)
    godot_sim.native_of(wi).process_mode = gdsim.NodeModel.PROCESS_MODE_DISABLED
    godot_sim.process(3)
    assert [a[0] for a in sent["action_sent"]] == ["right", "noop"], "the world kept walking with WorldInput disabled"
    godot_sim.tree.paused = False
    gdsim.release(godot_sim, "wb_right")


def test_world_input_sends_nothing_while_a_text_field_has_the_keyboard(godot_sim, scripted):
    """Input still reports a key typed into a LineEdit as pressed: typing "d" in a chat box walked the world. A
    focused Button (clicked in the HUD) is no text field: the keys go on playing."""
    wi, sent = _realtime_input(godot_sim, scripted)
    chat, button = godot_sim.make_native("LineEdit", None), godot_sim.make_native("Button", None)
    for node in (wi, chat, button):
        godot_sim.add_to_root(node)
    gdsim.press(godot_sim, "wb_right")
    godot_sim.process(2)
    button.grab_focus()
    godot_sim.process(2)
    chat.grab_focus()
    godot_sim.process(2)
    gdsim.release(godot_sim, "wb_right")
    gdsim.press(godot_sim, "wb_latent_2")
    godot_sim.process(2)
    assert [a[0] for a in sent["action_sent"]] == ["right", "noop"], "keys typed into the LineEdit steered the world"
    chat.release_focus()
    godot_sim.process(2)
    assert sent["action_sent"][-1] == (1,)  # the keyboard is the game's again: the held key plays
    gdsim.release(godot_sim, "wb_latent_2")


def test_world_input_plays_again_once_enter_ends_editing_in_a_line_edit_that_keeps_the_focus(godot_sim, scripted):
    """Godot 4.4+: after Enter a LineEdit keeps the focus but stops editing (keep_editing_on_text_submit off): the
    world took only the idle action until the player clicked elsewhere. One that keeps editing is still typing."""
    wi, sent = _realtime_input(godot_sim, scripted)
    chat = godot_sim.make_native("LineEdit", None)
    for node in (wi, chat):
        godot_sim.add_to_root(node)
    chat.grab_focus()
    gdsim.press(godot_sim, "wb_right")
    godot_sim.process(2)
    gdsim.submit(chat)
    godot_sim.process(2)
    assert godot_sim.root.gui_get_focus_owner() is chat, "Godot keeps the LineEdit focused after Enter"
    assert [a[0] for a in sent["action_sent"]] == ["noop", "right"], "the held key did not play after Enter"
    gdsim.submit(chat)  # Enter again: editing again
    chat.keep_editing_on_text_submit = True
    godot_sim.process(2)
    gdsim.submit(chat)
    godot_sim.process(2)
    assert [a[0] for a in sent["action_sent"]] == ["noop", "right", "noop"], "keys typed went on steering"
    gdsim.release(godot_sim, "wb_right")


def test_world_input_in_step_mode_sends_no_press_typed_into_a_text_field(godot_sim, scripted):
    c, _, _ = _scripted_session(godot_sim, scripted, "step")
    wi = _world_input(godot_sim, c)
    sent = Recorder(wi, "action_sent")
    prompt = godot_sim.make_native("TextEdit", None)
    godot_sim.add_to_root(wi)
    godot_sim.add_to_root(prompt)
    prompt.grab_focus()
    gdsim.press(godot_sim, "wb_right")
    godot_sim.process(2)
    assert sent["action_sent"] == [], "a key typed into the TextEdit stepped the world"
    gdsim.release(godot_sim, "wb_right")


def _assign(node, name: str, value) -> None:
    """`node.name = value` from another script: through the property's setter, as Godot does."""
    node.sim.set_member(node, name, gdsim.to_gd(value), gdsim.Frame(node.script, None))


def test_world_input_bindings_and_idle_action_assigned_in_game_take_effect(godot_sim, scripted):
    """A key-remapping menu assigns `bindings`: it changed nothing until a rebuild() the README never names, and a
    world action the backend lacks was sent to the host instead of skipped with a warning."""
    wi, sent = _realtime_input(godot_sim, scripted)
    godot_sim.add_to_root(wi)
    godot_sim.process(2)
    _assign(wi, "bindings", {"wb_left": "right", "wb_jump": "fly"})
    for key in ("wb_left", "wb_jump"):
        gdsim.press(godot_sim, key)
        godot_sim.process(2)
        gdsim.release(godot_sim, key)
    assert [a[0] for a in sent["action_sent"]] == ["noop", "right", "noop"], "the new bindings did not play"
    assert list(wi.members["unknown_actions"]) == ["fly"]
    assert [w for w in godot_sim.warnings if "fly not among this backend's actions" in w]
    _assign(wi, "idle_action", "sit")
    godot_sim.process(2)
    assert sent["action_sent"][-1] == (0,), "an idle action the backend lacks went to the host"
    assert [w for w in godot_sim.warnings if "idle action sit not among" in w]


def test_view_badge_with_no_frame_shown_is_white_not_a_backends_colour(godot_sim):
    """No backend is known before a first frame: "offline"/"connecting" in green would claim the world model runs."""
    c = new_client(godot_sim, "tcp://127.0.0.1:1", mode="step")
    view = new_node(godot_sim, VIEW, client=c)
    godot_sim.add_to_root(c)
    godot_sim.add_to_root(view)
    godot_sim.process(3)
    badge = view.members["_badge"]
    color = badge.theme_overrides["font_color"]
    assert badge.text == c.members["status_text"] and "(last frame)" not in badge.text, badge.text
    assert (color.r, color.g, color.b) == (1, 1, 1), f"{badge.text!r} is shown in a backend's colour"


ORANGE, WHITE = (1, 0.65, 0), (1, 1, 1)


def _badge(view) -> tuple[str, tuple[float, float, float]]:
    badge = view.members["_badge"]
    color = badge.theme_overrides["font_color"]
    return badge.text, (color.r, color.g, color.b)


def _view_with_a_frame(sim, scripted):
    """A step session s1 with the scripted (sandbox) host and a WorldView showing its first frame: (client, view, peer)."""
    router, _ = scripted
    c, _, ident = _scripted_session(sim, scripted, "step")
    view = new_node(sim, VIEW, client=c)
    sim.add_to_root(view)
    router.send_multipart([ident, _frame_msg(0, []), b"\0" * 12])
    assert run_until(sim, lambda: view.members["frames_shown"] == 1)
    assert _badge(view)[1] == ORANGE and view.native.texture is not None
    return c, view, ident


def _blank(sim, view) -> bool:
    """Nothing on screen, and no click maps onto a frame."""
    off = sim.call_method(view, "frame_pixel_at", [gdsim.Vector2(1, 1)])
    return view.native.texture is None and sim.call_method(view, "get_frame_image", []) is None and off.x == -1


@pytest.mark.parametrize("change", ["connect_to_host", "disconnect_from_host"])
def test_view_on_a_new_or_closed_connection_blanks_the_frame_and_names_no_backend(godot_sim, scripted, change):
    """Another host may run another backend: the old frame and its orange label stayed after connect_to_host() (Unity
    blanks the frame and goes white on a connection change)."""
    c, view, _ = _view_with_a_frame(godot_sim, scripted)
    _, other_port = scripted_router()
    godot_sim.call_method(c, change, [f"tcp://127.0.0.1:{other_port}"] if change == "connect_to_host" else [])
    godot_sim.process()
    assert _blank(godot_sim, view), "the old host's frame is still shown"
    assert _badge(view) == (c.members["status_text"], WHITE)


def test_connect_to_host_over_a_live_connection_emits_connection_changed_once(godot_sim, scripted):
    """It fired twice (once from the disconnect_from_host() inside connect_to_host(), once itself)."""
    c, _, _ = _scripted_session(godot_sim, scripted, "step")
    rec = Recorder(c, "connection_changed")
    _, other_port = scripted_router()
    godot_sim.call_method(c, "connect_to_host", [f"tcp://127.0.0.1:{other_port}"])
    assert len(rec["connection_changed"]) == 1
    godot_sim.call_method(c, "disconnect_from_host", [])
    godot_sim.call_method(c, "disconnect_from_host", [])  # nothing left to close: no change
    assert len(rec["connection_changed"]) == 2


def test_view_given_another_client_blanks_the_frame_and_forgets_the_old_backend(godot_sim, scripted):
    """The old client's frame stayed, badged "<old backend> (last frame): <new client's status>" in the old colour."""
    c, view, _ = _view_with_a_frame(godot_sim, scripted)
    other = new_client(godot_sim, "tcp://127.0.0.1:1", mode="step")
    godot_sim.add_to_root(other)
    godot_sim.process()
    godot_sim.call_method(view, "set_client", [other])
    assert _blank(godot_sim, view), "the old client's frame is still shown"
    assert _badge(view) == (other.members["status_text"], WHITE)


def test_view_and_input_outlive_a_freed_client(godot_sim, scripted):
    """A level change frees the client while a HUD's WorldView and WorldInput stay. A freed object is not reliably
    == null in Godot 4: WorldInput errored every frame (and check_bindings() on the freed client's action_map), and
    the view errored on its next client, never following it."""
    c, view, _ = _view_with_a_frame(godot_sim, scripted)
    wi = _world_input(godot_sim, c)
    godot_sim.add_to_root(wi)
    godot_sim.process()
    godot_sim.native_of(c).queue_free()
    gdsim.press(godot_sim, "wb_right")
    godot_sim.process(2)
    gdsim.release(godot_sim, "wb_right")
    godot_sim.call_method(view, "set_show_backend_badge", [True])
    assert _badge(view) == ("WorldBridge: no client", WHITE)
    session = gdsim.to_gd({"action_names": ["noop"], "num_latent_actions": 8})
    assert "right" in godot_sim.call_method(wi, "check_bindings", [session])  # no action_map of a freed client
    other = new_client(godot_sim, "tcp://127.0.0.1:1", mode="step")
    godot_sim.add_to_root(other)
    godot_sim.call_method(view, "set_client", [other])
    godot_sim.process()
    assert _blank(godot_sim, view) and _badge(view) == (other.members["status_text"], WHITE)


def test_a_client_moved_in_the_tree_keeps_its_session_and_one_freed_says_bye(godot_sim, scripted):
    """reparent() (a HUD moved under another node) leaves the tree and enters it again in one call: the client closed
    its connection on leaving, dropping the live session. Only a client going away (freed with its level) says bye."""
    router, _ = scripted
    c, _, ident = _scripted_session(godot_sim, scripted, "step")
    socket = c.members["_socket"]
    level, hud = (godot_sim.make_native("Node", None) for _ in range(2))
    godot_sim.add_to_root(level)
    godot_sim.add_to_root(hud)
    godot_sim.native_of(c).reparent(level)
    godot_sim.native_of(c).reparent(hud)
    godot_sim.process(2)
    assert c.members["link"] == IN_SESSION and c.members["_socket"] is socket
    assert not router.poll(100), "the host heard from a client that only moved"
    assert godot_sim.call_method(c, "send_input", ["right"])  # the session goes on
    assert recv(router)[1]["type"] == "input"
    hud.queue_free()
    godot_sim.process()
    assert recv(router)[1]["type"] == "bye" and c.members["_socket"] is None


def test_view_added_back_to_the_tree_follows_the_client_given_it_while_out(godot_sim, scripted):
    """A view connected to a new client only while in the tree, and _ready runs once: a view taken out of the tree,
    given a client, then added back never showed that client's frames."""
    router, _ = scripted
    c, _, ident = _scripted_session(godot_sim, scripted, "step")
    view = new_node(godot_sim, VIEW)
    godot_sim.add_to_root(view)
    godot_sim.native_of(godot_sim.root).remove_child(view)
    godot_sim.call_method(view, "set_client", [c])
    godot_sim.add_to_root(view)
    router.send_multipart([ident, _frame_msg(0, []), b"\0" * 12])
    assert run_until(godot_sim, lambda: view.members["frames_shown"] == 1)
    assert _badge(view)[1] == ORANGE
    godot_sim.native_of(godot_sim.root).remove_child(view)
    godot_sim.add_to_root(view)  # in and out again: one connection each, not two
    router.send_multipart([ident, _frame_msg(1, []), b"\0" * 12])
    assert run_until(godot_sim, lambda: c.members["frames_received"] == 2)
    assert view.members["frames_shown"] == 2


def test_view_follows_every_client_signal_and_leaves_a_games_own_connection_alone(godot_sim, scripted):
    """The view took a game's own frame_received -> show_frame connection for its own: entering the tree it then
    connected none of its other signals (a closed connection kept the old frame), and leaving the tree it removed the
    game's connection (and tried to remove ones it never made)."""
    router, _ = scripted
    c, _, ident = _scripted_session(godot_sim, scripted, "step")
    view = new_node(godot_sim, VIEW, client=c)
    games = godot_sim.bound(view, "show_frame")
    c.signals["frame_received"].connect(games)
    godot_sim.add_to_root(view)
    router.send_multipart([ident, _frame_msg(0, []), b"\0" * 12])
    assert run_until(godot_sim, lambda: c.members["frames_received"] == 1)
    assert view.members["frames_shown"] == 1
    godot_sim.native_of(godot_sim.root).remove_child(view)
    assert c.signals["frame_received"].is_connected(games), "leaving the tree removed the game's connection"
    godot_sim.add_to_root(view)
    godot_sim.call_method(c, "disconnect_from_host", [])
    assert _blank(godot_sim, view), "the view did not follow connection_changed"
    assert _badge(view) == (c.members["status_text"], WHITE)


def test_view_a_new_world_blanks_the_old_frame_and_a_resumed_one_keeps_it(godot_sim, scripted):
    """A resume after a dropped connection goes on with the frame on screen (named in its backend's colour meanwhile);
    a new world must not show the old world's last frame until its own first frame."""
    router, _ = scripted
    c, view, _ = _view_with_a_frame(godot_sim, scripted)
    godot_sim.call_method(c.members["_socket"], "_fail", ["simulated network drop"])
    text, color = _badge(view)
    assert text.endswith("(last frame): " + c.members["status_text"]) and color == ORANGE, text
    ident, resume = greet_and_start(godot_sim, router)
    assert resume["resume"] == "s1"
    answer_start(godot_sim, router, c, ident, resume, resumed=True)
    assert not _blank(godot_sim, view), "a resumed world lost its frame"
    assert godot_sim.call_method(c, "start_session", [])
    _session_started(godot_sim, router, c, sid="s2")
    assert _blank(godot_sim, view), "the old world's frame is shown as the new world's"
    assert _badge(view) == (godot_sim.call_method(c, "backend_label", []), ORANGE)


def test_view_says_an_ended_session_ended_in_white_over_its_last_frame(godot_sim, scripted):
    """An ended session's backend runs no more: its label stayed in orange (Unity says "session ended: ..." in white)."""
    router, _ = scripted
    c, view, ident = _view_with_a_frame(godot_sim, scripted)
    router.send_multipart([ident, zmtp_raw.pack({"type": "error", "req_id": None, "code": "backend_error",
                                                 "message": "the world crashed", "fatal": True})])
    assert run_until(godot_sim, lambda: c.members["link"] != IN_SESSION)
    assert _badge(view) == ("session ended: the world crashed", WHITE)
    assert not _blank(godot_sim, view), "the last frame stays in view"


def test_a_start_queued_while_connecting_goes_to_the_host_connect_to_host_switches_to(godot_sim, scripted):
    """start_session(opts) then connect_to_host(addr) while a first connect is pending: the world goes to the new host."""
    router, port = scripted
    gone, gone_port = scripted_router()
    gone.close()  # nothing listens there: the first connect stays pending
    c = new_client(godot_sim, f"tcp://127.0.0.1:{gone_port}", auto_start=False)
    godot_sim.add_to_root(c)
    godot_sim.process(2)
    assert c.members["link"] != 0, "the first connect is no longer pending"
    assert not godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a desert"})])
    sent = _nothing_but_hello_after_connect(godot_sim, router, c, f"tcp://127.0.0.1:{port}")
    assert [(m["type"], m.get("text")) for m in sent] == [("start", "a desert")], f"the queued start was lost: {sent}"


def test_a_start_sent_to_the_host_left_does_not_go_to_the_next(godot_sim, scripted):
    """A start that went out belongs to the host it went to: connect_to_host() elsewhere only connects."""
    router, port = scripted
    old, old_port = scripted_router()
    c = new_client(godot_sim, f"tcp://127.0.0.1:{old_port}", auto_start=False)
    godot_sim.add_to_root(c)
    assert _nothing_but_hello_after_connect(godot_sim, old, c, f"tcp://127.0.0.1:{old_port}") == []
    assert godot_sim.call_method(c, "start_session", [gdsim.to_gd({"text": "a desert"})])
    sent = _nothing_but_hello_after_connect(godot_sim, router, c, f"tcp://127.0.0.1:{port}")
    assert sent == [], f"the start sent to the host left went to the new one: {sent}"


def test_a_restarted_lost_session_that_had_dropped_a_prompt_still_says_so(godot_sim, scripted):
    """The lost session's backend refused its viewport image, so it started without it; the restart after a failed
    resume goes without it too (that session's options), and its dropped_prompts and dropped_note() must say so."""
    router, port = scripted
    viewport = gdsim.SubViewportModel(godot_sim)
    _render(godot_sim, viewport)
    c = _ready(godot_sim, router, port, _IMAGE_WELCOME, text_prompt="a cave", prompt_viewport=viewport)
    assert godot_sim.call_method(c, "start_session", [])
    pump(godot_sim, router)
    ident, start = recv(router)
    assert start["image"] is not None
    assert answer_the_retry_without(godot_sim, router, c, ident, start, "image")["text"] == "a cave"
    assert list(c.members["dropped_prompts"]) == ["image"]
    router, ident, resume = _restart_host(godot_sim, router, port, _IMAGE_WELCOME)
    router.send_multipart([ident, _unknown_session(resume["req_id"])])
    pump(godot_sim, router)
    _, fresh = recv(router)
    assert (fresh["type"], fresh["text"], fresh["image"]) == ("start", "a cave", None)
    answer_the_retry_without(godot_sim, router, c, ident, fresh, "text")  # the new backend takes no text either
    assert list(c.members["dropped_prompts"]) == ["image", "text"]
    assert "image and text" in godot_sim.call_method(c, "dropped_note", [])


def _unused(text: str) -> str:
    """The Python client's warning (bridge.client.text_unused_words) for `text`, as the addon pushes it."""
    return f"WorldBridge: {text_unused_words(text, b'image', None)}"


def test_a_text_sent_with_an_image_is_said_unused_once_when_the_host_took_it_and_never_with_a_sketch(
        godot_sim, scripted):
    router, port = scripted
    welcome = {**SCRIPTED_WELCOME, "capabilities": ["text_prompt", "image_prompt", "sketch_prompt"]}
    viewport = gdsim.SubViewportModel(godot_sim)
    _render(godot_sim, viewport)
    c = _ready(godot_sim, router, port, welcome, text_prompt="a cave", prompt_viewport=viewport,
               prompt_viewport_as="sketch")
    assert godot_sim.call_method(c, "start_session", [])
    assert _session_started(godot_sim, router, c)["sketch"] is not None
    assert godot_sim.warnings == [], "a sketch and a text both count"
    c.members["prompt_viewport_as"] = "image"
    assert godot_sim.call_method(c, "start_session", [])
    pump(godot_sim, router)
    ident, start = recv(router)
    router.send_multipart([ident, prompt_refusal(start, "image_prompt")])
    assert _session_started(godot_sim, router, c, "s2")["image"] is None  # sent again without the image: text counts
    assert not [w for w in godot_sim.warnings if "is not used" in w], "a refused start, or one without the image"
    assert godot_sim.call_method(c, "start_session", [])
    assert _session_started(godot_sim, router, c, "s3")["image"] is not None
    assert [w for w in godot_sim.warnings if "is not used" in w] == [_unused("a cave")]
    assert godot_sim.call_method(c, "reset_world", [gdsim.to_gd({"text": "a desert", "image": start["image"]})])
    pump(godot_sim, router)
    ident, reset = recv(router)
    # the ok sits unread in the client's socket, then one poll reads it (pumping until the client sent something
    # waited for its keep-alive ping, a third of the 60 s idle timeout: 20 s, the pump's own limit)
    send_unread(c, router, ident, [zmtp_raw.pack({"type": "ok", "req_id": reset["req_id"], "request": "reset",
                                                  "epoch": 1, "frame_index": 0})])
    godot_sim.call_method(c, "poll", [])
    assert [w for w in godot_sim.warnings if "is not used" in w] == [_unused("a cave")], "said more than once"
