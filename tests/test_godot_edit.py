"""Protocol 1.1 in the Godot addon, executed by gdsim: session capabilities, `edit` (paste an object
layer), `event_cfg`, WorldView's click -> frame pixel mapping, and the demo's pasted object; against
scripted hosts (exact bytes), the real host's sandbox (edit -> unsupported) and a micro world model
checkpoint served by the real host (edit -> ok, new epoch, events ["edit"])."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
GODOT = ROOT / "godot_addon"
sys.path.insert(0, str(GODOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

import gdsim  # noqa: E402
import zmtp_raw  # noqa: E402
from godot_helpers import (  # noqa: E402
    CLIENT, IN_SESSION, SCRIPTED_WELCOME, VIEW, Recorder, answer_start, answer_the_retry_without, new_client, pump,
    recv, refuse_typed_events, run_until, scripted_router, send_unread, session_msg)

from bridge.host import server  # noqa: E402

DEMO = "res://demo/demo.gd"
READY = 3
ALL_CAPS = ["text_prompt", "image_prompt", "sketch_prompt", "events", "text_events", "edit"]
STRETCH = dict(SCALE=0, TILE=1, KEEP=2, KEEP_CENTERED=3, KEEP_ASPECT=4, KEEP_ASPECT_CENTERED=5,
               KEEP_ASPECT_COVERED=6)
NO_PIXEL = (-1, -1)


@pytest.fixture()
def sim(godot_sim):
    """The shared gdsim over the addon (conftest's godot_sim)."""
    return godot_sim


@pytest.fixture()
def router():
    sock, port = scripted_router()
    yield sock, f"tcp://127.0.0.1:{port}"
    sock.close()


def _image(sim, rgba: np.ndarray):
    """A gdsim Image (RGBA8 or RGB8) holding these pixels."""
    h, w, ch = rgba.shape
    fmt = gdsim.ImageModel.FORMAT_RGBA8 if ch == 4 else gdsim.ImageModel.FORMAT_RGB8
    return gdsim.NATIVE_STATICS[("Image", "create_from_data")](sim, w, h, False, fmt,
                                                              gdsim.PackedByteArray(rgba.tobytes()))


def _pixels(image) -> np.ndarray:
    ch = gdsim.ImageModel.CHANNELS[image.format]
    return np.frombuffer(bytes(image.data), np.uint8).reshape(image.height, image.width, ch)


def _sprite() -> np.ndarray:
    rgba = np.zeros((6, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = np.arange(24, dtype=np.uint8).reshape(6, 4) * 10  # every alpha differs
    return rgba


# --- Scripted hosts: exact messages ------------------------------------------------------------

WELCOME_1_1 = {"type": "welcome", "protocol_major": 1, "protocol_minor": 1, "host": "scripted", "codec": "raw",
               "capabilities": ["realtime", "step", "events", "text_prompt", "image_prompt", "sketch_prompt",
                                "branch", "record", "resume", "settings", "text_events", "edit"],
               "backends": ["world_model"], "default_backend": "world_model",
               "limits": {"max_message_bytes": 1 << 20, "max_sessions": 4, "idle_timeout_s": 60.0}}


def _session(**extra) -> dict:
    msg = {"type": "session", "req_id": 1, "session_id": "s-1", "backend_kind": "world_model",
           "backend_name": "scripted world", "mode": "step", "fps": 24.0, "width": 4, "height": 4,
           "action_names": ["noop"], "num_latent_actions": 8, "event_types": [],
           "settings": {"steps": 4, "temperature": 1.0, "cfg": 1.0, "event_cfg": None, "fps": 24.0, "mode": "step"},
           "frame_index": 0, "epoch": 0, "resumed": False}
    msg.update(extra)
    return msg


def _frame(index: int, epoch: int, events=(), value: int = 0) -> list[bytes]:
    header = {"type": "frame", "session_id": "s-1", "index": index, "epoch": epoch, "action": -1,
              "client_ts": None, "seq": None, "host_ts": 1.0, "timings": {}, "events": list(events),
              "codec": "raw", "width": 4, "height": 4}
    return [zmtp_raw.pack(header), bytes([value]) * 48]


def recv(sock, timeout_ms=20000):
    assert sock.poll(timeout_ms), "the client sent nothing"
    ident, data = sock.recv_multipart()
    return ident, zmtp_raw.unpack(data)


def _greet(sim, c, sock, welcome, session):
    """hello -> welcome -> start -> session -> frame 0; returns the client's routing id."""
    sim.add_to_root(c)
    assert run_until(sim, lambda: sock.poll(0))
    ident, hello = recv(sock)
    assert hello["type"] == "hello" and hello["protocol_minor"] == 3
    sock.send_multipart([ident, zmtp_raw.pack(welcome)])
    assert run_until(sim, lambda: c.members["link"] == READY)
    assert sim.call_method(c, "start_session", [gdsim.to_gd({})])
    assert run_until(sim, lambda: sock.poll(0))
    assert recv(sock)[1]["type"] == "start"
    sock.send_multipart([ident, zmtp_raw.pack(session)])
    sock.send_multipart([ident, *_frame(0, 0)])
    assert run_until(sim, lambda: c.members["frames_received"] == 1)
    return ident


def test_capabilities_edit_and_event_cfg_against_a_scripted_1_1_host(sim, router):
    sock, endpoint = router
    c = new_client(sim, endpoint, auto_start=False, mode="step")
    rec = Recorder(c, "capabilities_changed", "edit_applied", "frame_received", "event_applied", "error_received")
    ident = _greet(sim, c, sock, WELCOME_1_1, _session(capabilities=["image_prompt", "edit"]))
    # welcome: everything the host offers; session: only what this backend can do
    assert rec["capabilities_changed"] == [(ALL_CAPS,), (["image_prompt", "edit"],)]
    assert [sim.call_method(c, "has_capability", [cap]) for cap in ALL_CAPS] == [False, True, False, False, False,
                                                                                  True]
    assert sim.call_method(c, "has_capability", ["record"])  # host features still come from the welcome

    sprite = _sprite()
    assert sim.call_method(c, "edit", [_image(sim, sprite), -3, 5])
    ident, edit = recv(sock)
    assert list(edit) == ["type", "req_id", "layer", "x", "y"] and (edit["x"], edit["y"]) == (-3, 5)
    layer = Image.open(io.BytesIO(edit["layer"]))
    assert layer.format == "PNG" and layer.mode == "RGBA" and np.array_equal(np.asarray(layer), sprite)

    # ok first, then a stale frame of the old epoch (dropped), then the edited frame
    sock.send_multipart([ident, zmtp_raw.pack({"type": "ok", "req_id": edit["req_id"], "request": "edit",
                                               "epoch": 1, "frame_index": 0})])
    sock.send_multipart([ident, *_frame(0, 0, value=1)])
    sock.send_multipart([ident, *_frame(0, 1, ["edit"], value=2)])
    assert run_until(sim, lambda: len(rec["frame_received"]) == 2)
    assert rec["edit_applied"] == [(1, 0)]
    header, pixels = rec["frame_received"][-1]
    assert header["epoch"] == 1 and header["events"] == ["edit"] and pixels[0] == 2
    assert rec["event_applied"] == [] and c.members["frames_skipped"] == 1  # "edit" is a marker, not a caption

    sock.send_multipart([ident, zmtp_raw.pack({"type": "error", "req_id": 9, "code": "unsupported",
                                               "message": "cannot edit", "fatal": False})])
    assert run_until(sim, lambda: rec["error_received"])
    assert rec["error_received"] == [("unsupported", "cannot edit", False)] and c.members["link"] == IN_SESSION

    assert sim.call_method(c, "change_settings", [gdsim.to_gd({"event_cfg": 2})])
    ident, settings = recv(sock)
    assert settings == {"type": "settings", "req_id": settings["req_id"], "event_cfg": 2.0}
    raw = zmtp_raw.pack(settings)
    assert b"\xa9event_cfg\xcb" in raw  # an int given by the caller still goes out as float64

    sim.call_method(c, "disconnect_from_host", [])
    assert rec["capabilities_changed"][-1] == ([],)  # offline: nothing is known


def test_a_1_0_host_allows_everything_but_edit_and_edit_is_refused_locally(sim, router):
    sock, endpoint = router
    welcome = dict(WELCOME_1_1, protocol_minor=0,
                   capabilities=["realtime", "step", "events", "text_prompt", "image_prompt", "branch"])
    c = new_client(sim, endpoint, auto_start=False, mode="step")
    rec = Recorder(c, "error_received", "capability_refused")
    _greet(sim, c, sock, welcome, _session())  # a 1.0 session has no `capabilities`
    assert gdsim.to_py(c.members["capabilities"]) == ["text_prompt", "image_prompt", "events", "text_events"]
    assert not sim.call_method(c, "edit", [_image(sim, _sprite()), 0, 0])
    code, message, fatal = rec["error_received"][-1]
    assert code == "unsupported" and "protocol 1.0" in message and "update" in message and not fatal
    assert rec["capability_refused"] == [("edit", message)], "the addon's own refusal skips capability_refused"
    assert not sock.poll(100)  # a 1.0 host would ignore `edit`: nothing is sent
    for bad in (None, gdsim.NATIVE_MODELS["Image"](sim)):  # null and an empty Image
        assert not sim.call_method(c, "edit", [bad, 0, 0])
        assert "non-empty Image" in rec["error_received"][-1][1]


def test_a_layer_over_the_hosts_limit_is_named_as_what_is_too_big(sim, router):
    """An edit layer over the host's max_message_bytes was answered with "use a smaller image"."""
    sock, endpoint = router
    welcome = dict(WELCOME_1_1, limits={**WELCOME_1_1["limits"], "max_message_bytes": 2000})
    c = new_client(sim, endpoint, auto_start=False, mode="step")
    rec = Recorder(c, "error_received")
    _greet(sim, c, sock, welcome, _session(capabilities=["edit"]))
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 4), np.uint8)  # PNG cannot make it small
    assert not sim.call_method(c, "edit", [_image(sim, noise), 0, 0])
    message = rec["error_received"][-1][1]
    assert "over the host's 2000-byte limit" in message, message
    assert message.endswith("use a smaller layer (object_layer() scales one down)"), message
    assert not sock.poll(100)


def test_a_prompt_viewport_kind_the_host_lacks_comes_as_capability_refused(sim, router):
    """The addon drops a sketch the host cannot take and says so through capability_refused, as a host refusal."""
    sock, endpoint = router
    welcome = dict(WELCOME_1_1, capabilities=["realtime", "step", "text_prompt", "image_prompt"])
    c = new_client(sim, endpoint, auto_start=False, mode="step")
    viewport = gdsim.SubViewportModel(sim)
    viewport.rendered = _image(sim, _sprite())
    c.members.update(prompt_viewport=viewport, prompt_viewport_as="sketch")
    rec = Recorder(c, "error_received", "capability_refused")
    _greet(sim, c, sock, welcome, _session())
    code, message, fatal = rec["error_received"][-1]
    assert code == "client" and "no sketch prompts" in message and not fatal
    assert rec["capability_refused"] == [("sketch_prompt", message)]


# --- The real host ------------------------------------------------------------------------------


def test_sandbox_answers_edit_with_unsupported_and_frames_keep_coming(sim):
    with server.run_host_in_thread("sandbox") as host:
        c = new_client(sim, host.address, mode="realtime", fps=30.0, backend="sandbox")
        rec = Recorder(c, "error_received", "session_started", "capability_refused")
        sim.add_to_root(c)
        assert run_until(sim, lambda: c.members["frames_received"] >= 2, timeout=20)
        session = rec["session_started"][0][0]
        assert "edit" not in session["capabilities"] and session["settings"]["event_cfg"] is None
        assert gdsim.to_py(c.members["capabilities"]) == session["capabilities"]
        assert not sim.call_method(c, "has_capability", ["edit"])
        assert sim.call_method(c, "edit", [_image(sim, _sprite()), 10, 10])  # sent: the host decides
        assert run_until(sim, lambda: rec["error_received"])
        code, message, fatal = rec["error_received"][0]
        assert code == "unsupported" and "sandbox" in message and not fatal
        assert rec["capability_refused"] == [("edit", message)]  # (1.3) error.capability, not the wording
        seen = c.members["frames_received"]
        assert run_until(sim, lambda: c.members["frames_received"] >= seen + 3, timeout=20)
        assert c.members["link"] == IN_SESSION and c.members["last_frame_header"]["epoch"] == 0
        sim.call_method(c, "disconnect_from_host", [])


def test_world_model_edit_from_a_click_starts_a_new_epoch(sim, micro_world):
    with server.run_host_in_thread(str(micro_world)) as host:
        c = new_client(sim, host.address, mode="step")
        view = sim.new(sim.script(VIEW))
        view.members["client"] = c
        view.native.size = gdsim.Vector2(256, 128)  # 64x64 frames, keep-aspect-centred: 128x128 at x=64
        rec = Recorder(c, "session_started", "edit_applied", "frame_received", "error_received")
        clicks = Recorder(view, "frame_clicked")
        sim.add_to_root(c)
        sim.add_to_root(view)
        assert run_until(sim, lambda: view.members["frames_shown"] >= 1, timeout=30)
        session = rec["session_started"][0][0]
        assert session["backend_kind"] == "world_model" and "edit" in session["capabilities"]
        assert sim.call_method(c, "has_capability", ["edit"])
        sim.call_method(c, "send_input", [1])
        assert run_until(sim, lambda: len(rec["frame_received"]) == 2)

        # the player clicks the middle of the picture; the game pastes a coin centred there
        click = gdsim.InputEventMouseButtonModel(sim, position=gdsim.Vector2(128 + 0.5, 64 + 0.5))
        sim.call_method(view, "_gui_input", [click])
        assert clicks["frame_clicked"] == [((32, 32), 1)]
        coin = sim.call_static(sim.script(DEMO), "coin_sprite", [8])
        assert sim.call_method(view, "paste_at_pixel", [coin, gdsim.Vector2i(32, 32)])
        assert run_until(sim, lambda: len(rec["frame_received"]) == 3)
        assert rec["edit_applied"] == [(1, 1)]
        header = rec["frame_received"][-1][0]
        assert (header["epoch"], header["index"], header["events"]) == (1, 1, ["edit"])
        assert view.members["frames_shown"] == 3 and rec["error_received"] == []

        sim.call_method(c, "send_input", [2])  # the world goes on from the edited frame
        assert run_until(sim, lambda: len(rec["frame_received"]) == 4)
        assert (rec["frame_received"][-1][0]["epoch"], rec["frame_received"][-1][0]["index"]) == (1, 2)
        assert sim.call_method(c, "change_settings", [gdsim.to_gd({"event_cfg": 2.0})])
        assert run_until(sim, lambda: rec["error_received"])  # this micro world has no event conditioning
        assert rec["error_received"][0][0] == "bad_argument" and "event_cfg" in rec["error_received"][0][1]
        sim.call_method(c, "disconnect_from_host", [])


# --- WorldView: view position -> frame pixel ------------------------------------------------------


def _godot_rect(mode: str, size: tuple, frame: tuple):
    """TextureRect::_notification(DRAW): the drawn rect and source region, transcribed independently."""
    (sw, sh), (fw, fh) = size, frame
    offset, drawn, region = (0.0, 0.0), (sw, sh), (0.0, 0.0, fw, fh)
    if mode in ("KEEP", "KEEP_CENTERED"):
        drawn = (fw, fh)
        if mode == "KEEP_CENTERED":
            offset = ((sw - fw) / 2, (sh - fh) / 2)
    elif mode in ("KEEP_ASPECT", "KEEP_ASPECT_CENTERED"):
        tw, th = int(fw * sh / fh), int(sh)
        if tw > sw:
            tw = int(sw)
            th = int(fh * tw / fw)
        if mode == "KEEP_ASPECT_CENTERED":
            offset = ((sw - tw) / 2, (sh - th) / 2)
        drawn = (tw, th)
    elif mode == "KEEP_ASPECT_COVERED":
        scale = max(sw / fw, sh / fh)
        region = (abs(fw * scale - sw) / scale / 2, abs(fh * scale - sh) / scale / 2, sw / scale, sh / scale)
    return offset, drawn, region


def _expected_pixel(mode, size, frame, point, flip_h=False, flip_v=False):
    if mode == "TILE":
        if not (0 <= point[0] < size[0] and 0 <= point[1] < size[1]):
            return NO_PIXEL
        x = size[0] - point[0] if flip_h else point[0]
        y = size[1] - point[1] if flip_v else point[1]
        return int(x % frame[0]), int(y % frame[1])
    (ox, oy), (dw, dh), (rx, ry, rw, rh) = _godot_rect(mode, size, frame)
    u, v = (point[0] - ox) / dw, (point[1] - oy) / dh
    if not (0 <= u < 1 and 0 <= v < 1):
        return NO_PIXEL
    u, v = (1 - u if flip_h else u), (1 - v if flip_v else v)
    return (min(int(np.floor(rx + u * rw)), frame[0] - 1), min(int(np.floor(ry + v * rh)), frame[1] - 1))


def _view_with_frame(sim, width=64, height=48):
    view = sim.new(sim.script(VIEW))
    sim.add_to_root(view)
    header = gdsim.to_gd({"codec": "raw", "width": width, "height": height})
    assert sim.call_method(view, "show_frame", [header, gdsim.PackedByteArray(width * height * 3)])
    return view


@pytest.mark.parametrize("mode", list(STRETCH))
@pytest.mark.parametrize("size", [(300, 120), (100, 260), (64, 48)])
@pytest.mark.parametrize("flip", [(False, False), (True, False), (False, True)])
def test_frame_pixel_at_matches_how_texture_rect_draws(sim, mode, size, flip):
    view = _view_with_frame(sim)
    view.native.stretch_mode = STRETCH[mode]
    view.native.size = gdsim.Vector2(*size)
    view.native.flip_h, view.native.flip_v = flip
    rng = np.random.default_rng(len(mode) * 100 + size[0])
    points = [(0.0, 0.0), (size[0] - 0.01, size[1] - 0.01), (size[0] / 2, size[1] / 2), (-1.0, 5.0)]
    points += [tuple(p) for p in rng.uniform(-10, max(size) + 10, (40, 2))]
    (ox, oy), (dw, dh), _ = _godot_rect(mode, size, (64, 48))
    points += [(ox + u * dw, oy + v * dh) for u, v in rng.uniform(0, 1, (10, 2))]  # on the picture
    inside = 0
    for point in points:
        got = sim.call_method(view, "frame_pixel_at", [gdsim.Vector2(*point)])
        expected = _expected_pixel(mode, size, (64, 48), point, *flip)
        assert (got.x, got.y) == expected, (mode, size, flip, point)
        inside += expected != NO_PIXEL
    assert inside >= 4


def test_frame_pixel_at_corners_and_clicks(sim):
    view = _view_with_frame(sim, 64, 64)
    view.native.stretch_mode = STRETCH["KEEP_ASPECT_CENTERED"]
    view.native.size = gdsim.Vector2(300, 200)  # the picture is 200x200 at x = 50

    def at(x, y):
        p = sim.call_method(view, "frame_pixel_at", [gdsim.Vector2(x, y)])
        return p.x, p.y

    assert at(50, 0) == (0, 0) and at(249.9, 199.9) == (63, 63) and at(150, 100) == (32, 32)
    assert at(49.9, 100) == NO_PIXEL and at(250, 100) == NO_PIXEL
    clicks = Recorder(view, "frame_clicked")
    event = gdsim.InputEventMouseButtonModel
    sim.call_method(view, "_gui_input", [event(sim, position=gdsim.Vector2(53.2, 3.2), button_index=2)])
    sim.call_method(view, "_gui_input", [event(sim, position=gdsim.Vector2(150, 100), pressed=False)])  # release
    sim.call_method(view, "_gui_input", [event(sim, position=gdsim.Vector2(10, 10))])  # off the picture
    sim.call_method(view, "_gui_input", [gdsim.InputEventKeyModel(sim)])
    assert clicks["frame_clicked"] == [((1, 1), 2)]
    empty = sim.new(sim.script(VIEW))
    p = sim.call_method(empty, "frame_pixel_at", [gdsim.Vector2(1, 1)])
    assert (p.x, p.y) == NO_PIXEL  # no frame yet
    assert not sim.call_method(view, "paste_at", [_image(sim, _sprite()), gdsim.Vector2(150, 100)])  # no client


# --- Object layers and the demo's coin ------------------------------------------------------------


def test_object_layer_scales_down_nearest_and_converts_to_rgba(sim):
    client = sim.script(CLIENT)
    rgb = np.random.default_rng(0).integers(0, 256, (50, 100, 3), dtype=np.uint8)
    source = _image(sim, rgb)
    layer = sim.call_static(client, "object_layer", [source, 16])
    assert (layer.width, layer.height, layer.format) == (16, 8, gdsim.ImageModel.FORMAT_RGBA8)
    ys, xs = np.arange(8) * 50 // 8, np.arange(16) * 100 // 16  # Godot's _scale_nearest
    assert np.array_equal(_pixels(layer)[..., :3], rgb[ys][:, xs]) and (_pixels(layer)[..., 3] == 255).all()
    assert source.format == gdsim.ImageModel.FORMAT_RGB8 and source.width == 100  # the source is untouched
    small = sim.call_static(client, "object_layer", [_image(sim, _sprite()), 16])
    assert np.array_equal(_pixels(small), _sprite())
    assert sim.call_static(client, "object_layer", [None, 8]).is_empty()


def test_demo_coin_is_a_round_sprite_with_transparent_corners(sim):
    coin = sim.call_static(sim.script(DEMO), "coin_sprite", [8])
    px = _pixels(coin)
    assert px.shape == (8, 8, 4)
    assert (px[0, 0, 3], px[0, 7, 3], px[7, 0, 3], px[7, 7, 3]) == (0, 0, 0, 0)
    assert tuple(px[4, 4]) == (255, 219, 0, 255)  # Color(1, 0.86, 0): channels truncate like Godot's set_pixel
    assert tuple(px[0, 3]) == (153, 102, 0, 255)  # the rim
    png = Image.open(io.BytesIO(bytes(coin.save_png_to_buffer())))
    assert png.mode == "RGBA" and np.array_equal(np.asarray(png), px)


# --- The editor dock, executed ----------------------------------------------------------------------

DOCK = "res://addons/world_bridge/editor/dock.gd"


def _find_button(node, text):
    model = node.native if isinstance(node, gdsim.Instance) else node
    for child in getattr(model, "children", []):
        child_model = child.native if isinstance(child, gdsim.Instance) else child
        if isinstance(child_model, gdsim.ButtonModel) and child_model.text == text:
            return child_model
        found = _find_button(child, text)
        if found is not None:
            return found
    return None


@pytest.fixture()
def dock_sim():
    """The editor dock in a simulated editor: (sim, dock)."""
    sim = gdsim.Sim(GODOT, editor_hint=True)
    try:
        dock = sim.new(sim.script(DOCK))
        sim.add_to_root(dock)
        yield sim, dock
    finally:
        sim.close()


def test_dock_greys_out_what_the_backend_cannot_do_and_pastes_objects(dock_sim, micro_world, tmp_path):
    sim, dock = dock_sim
    m = dock.members
    client = m["client"]
    # offline: nothing is known, so prompts stay available; pasting needs a session
    assert not m["_image_button"].disabled and not m["_sketch_button"].disabled
    assert m["_paste_button"].disabled and m["_fire_button"].disabled and not m["_paste_x"].editable
    with server.run_host_in_thread(str(micro_world)) as host:
        m["_endpoint"].text = host.address
        m["_backend"].select(1)  # sandbox
        m["_mode"].select(1)  # step
        assert gdsim.click(_find_button(dock, "Start"))
        assert run_until(sim, lambda: client.members["frames_received"] >= 1, timeout=20)
        assert client.members["backend_kind"] == "sandbox"
        # the sandbox: text/sketch prompts and events, no image prompts, no pasting
        assert m["_image_button"].disabled and m["_image_button"].tooltip_text.endswith(
            "(greyed: this session's backend cannot do it)")
        assert not m["_sketch_button"].disabled and not m["_fire_button"].disabled
        assert not m["_events"].disabled and m["_event_text"].editable
        assert m["_paste_button"].disabled and not m["_paste_x"].editable and not m["_event_cfg"].editable
        assert m["view"].native.tooltip_text.startswith("This session's backend cannot paste")
        assert not gdsim.click(m["_paste_button"])

        m["_backend"].select(2)  # world_model: the micro world takes image prompts and edits
        assert gdsim.click(_find_button(dock, "Start"))
        assert run_until(sim, lambda: client.members["backend_kind"] == "world_model"
                          and client.members["last_frame_header"].get("session_id")
                          == client.members["session"]["session_id"], timeout=20)
        assert not m["_image_button"].disabled and not m["_image_button"].tooltip_text.endswith(")")
        assert m["_sketch_button"].disabled and m["_fire_button"].disabled and m["_events"].disabled
        assert not m["_event_text"].editable and not m["_event_cfg"].editable  # no event conditioning
        assert not m["_paste_button"].disabled and m["_paste_x"].editable

        rgba = np.zeros((16, 32, 4), np.uint8)
        rgba[..., 2] = rgba[..., 3] = 255
        Image.fromarray(rgba, "RGBA").save(tmp_path / "blue.png")
        m["_object_dialog"].native_signals["file_selected"].emit(str(tmp_path / "blue.png"))
        assert m["_object_label"].text == "blue.png (32x16)"
        m["_object_size"].value = 8
        m["_paste_x"].value, m["_paste_y"].value = 10, 20
        assert gdsim.click(m["_paste_button"])
        assert run_until(sim, lambda: client.members["last_frame_header"]["epoch"] == 1)
        assert client.members["last_frame_header"]["events"] == ["edit"]
        assert m["_status"].text.startswith("pasted into frame 0")

        view = m["view"]
        view.native.size = gdsim.Vector2(128, 128)  # 64x64 frames at 2x
        click = gdsim.InputEventMouseButtonModel(sim, position=gdsim.Vector2(81.0, 61.0))
        sim.call_method(view, "_gui_input", [click])  # pixel (40, 30); the 8x4 layer is centred there
        assert (m["_paste_x"].value, m["_paste_y"].value) == (36.0, 28.0)
        assert run_until(sim, lambda: client.members["last_frame_header"]["epoch"] == 2)
        sim.call_method(client, "disconnect_from_host", [])
    assert m["_paste_button"].disabled and not m["_image_button"].disabled  # offline again


def test_dock_greys_out_a_prompt_kind_the_host_refused_until_the_backend_changes(dock_sim, tmp_path):
    sim, dock = dock_sim
    m = dock.members
    client = m["client"]
    rec = Recorder(client, "error_received", "capability_refused")
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(tmp_path / "scene.png")
    with server.run_host_in_thread("sandbox") as host:
        m["_endpoint"].text = host.address
        m["_backend"].select(1)  # sandbox, which takes no image prompts (its session would say so)
        assert gdsim.click(_find_button(dock, "Connect"))
        assert run_until(sim, lambda: client.members["link"] == READY)
        assert not m["_image_button"].disabled  # the host takes images; this backend is not known yet
        m["_file_dialog"].native_signals["file_selected"].emit(str(tmp_path / "scene.png"))
        assert run_until(sim, lambda: rec["capability_refused"])
        code, message, fatal = rec["error_received"][-1]
        assert code == "bad_prompt" and not fatal and rec["capability_refused"] == [("image_prompt", message)]
        assert m["_image_button"].disabled and m["_image_button"].tooltip_text.endswith(
            f"(greyed: the host refused it: {message})")
        assert not m["_sketch_button"].disabled  # only what the host refused

        m["_backend"].native_signals["item_selected"].emit(2)  # another backend may take images
        assert not m["_image_button"].disabled and "greyed" not in m["_image_button"].tooltip_text
        m["_backend"].native_signals["item_selected"].emit(1)
        m["_file_dialog"].native_signals["file_selected"].emit(str(tmp_path / "scene.png"))
        assert run_until(sim, lambda: len(rec["capability_refused"]) == 2)
        assert m["_image_button"].disabled
        assert gdsim.click(_find_button(dock, "Disconnect"))
        assert not m["_image_button"].disabled  # offline: nothing is known of the next host


def test_dock_takes_an_integer_event_cfg_as_a_number(dock_sim):
    """Protocol §2: a float field may arrive as an integer from a lenient encoder; the guidance control still works."""
    sim, dock = dock_sim
    m = dock.members
    client = m["client"]
    session = {"session_id": "s1", "backend_kind": "world_model", "backend_name": "w", "action_names": [],
               "num_latent_actions": 0, "event_types": ["flood"], "capabilities": ["events", "text_events"],
               "settings": {"event_cfg": 3}}
    client.members["welcome"] = gdsim.to_gd({"type": "welcome", "host": "scripted"})
    client.members["session"] = gdsim.to_gd(session)
    client.members["link"] = 4  # in session
    sim.call_method(dock, "_on_session_started", [gdsim.to_gd(session)])
    assert m["_event_cfg"].editable and m["_event_cfg"].value == 3.0


def _greet_dock(sim, dock, router) -> bytes:
    """Connects the dock to the scripted host and welcomes it; returns the dock's identity there."""
    sock, address = router
    dock.members["_endpoint"].text = address
    assert gdsim.click(_find_button(dock, "Connect"))
    pump(sim, sock)
    ident, _ = recv(sock)
    sock.send_multipart([ident, zmtp_raw.pack(SCRIPTED_WELCOME)])
    assert run_until(sim, lambda: dock.members["client"].members["link"] == READY)
    return ident


def _asked_to_start(sim, dock, sock) -> dict:
    """Clicks the dock's Start and returns the `start` request the scripted host receives."""
    assert gdsim.click(_find_button(dock, "Start"))
    pump(sim, sock)
    return recv(sock)[1]


def _dock_in_session(sim, dock, router, **session) -> bytes:
    """Connect, welcome, Start and answer it (`session`: fields to change): the dock's client holds session s1."""
    sock, _ = router
    ident = _greet_dock(sim, dock, router)
    answer_start(sim, sock, dock.members["client"], ident, _asked_to_start(sim, dock, sock), **session)
    return ident


def _ms_after(text: str, label: str) -> int:
    """The whole milliseconds the dock's `text` shows after `label`, e.g. 12 for "round trip 12 ms"."""
    return int(text.split(label + " ")[1].split(" ms")[0])


def _hidden_after_disconnect(dock, line: str) -> None:
    """Disconnect hides the dock's `line` of the old host's numbers: none of the next host's are known yet."""
    assert gdsim.click(_find_button(dock, "Disconnect"))
    assert not dock.members[line].visible, f"{line} still shows the old host's numbers after Disconnect"


def test_dock_status_button_says_why_nothing_was_asked_while_reconnecting(dock_sim, router):
    sim, dock = dock_sim
    m = dock.members
    sock, _ = router
    _greet_dock(sim, dock, router)
    sock.close()  # the host goes away: the dock's client reconnects
    assert run_until(sim, lambda: "reconnecting" in m["_status"].text)
    m["_status"].text = ""
    assert gdsim.click(_find_button(dock, "Status"))
    assert "reconnecting" in m["_status"].text, f"the Status button said nothing: {m['_status'].text!r}"


def test_dock_shows_the_hosts_status_answer_as_unity_does(dock_sim, router):
    """The Status button's answer shows under the status line: sessions, the fps the host sends, the round trip."""
    sim, dock = dock_sim
    m = dock.members
    sock, _ = router
    ident = _greet_dock(sim, dock, router)
    assert not m["_host_status"].visible, "a host line before any answer"
    assert gdsim.click(_find_button(dock, "Status"))
    pump(sim, sock)
    (_, status), (_, ping) = recv(sock), recv(sock)
    assert (status["type"], ping["type"]) == ("status", "ping")
    answer = {"type": "status", "req_id": status["req_id"], "sessions": 3, "session_id": None, "frame_index": None,
              "epoch": None, "mode": None, "fps_target": None, "fps_measured": None, "recording": False,
              "backend_kind": "sandbox", "backend_name": None}
    sock.send_multipart([ident, zmtp_raw.pack(answer)])  # no session of this peer's: fps is nil
    assert run_until(sim, lambda: m["_host_status"].visible)
    assert m["_host_status"].text == "host: 3 sessions, 0.0 fps sent"
    sock.send_multipart([ident, zmtp_raw.pack(dict(answer, sessions=1, fps_measured=23.46))])
    time.sleep(0.05)
    sock.send_multipart([ident, zmtp_raw.pack({"type": "pong", "req_id": ping["req_id"],
                                               "client_ts": ping["client_ts"], "host_ts": 1.0})])
    assert run_until(sim, lambda: "round trip" in m["_host_status"].text)
    text = m["_host_status"].text
    assert text.startswith("host: 1 session, 23.5 fps sent  round trip "), text
    assert 40 <= _ms_after(text, "round trip") < 5000, text
    _hidden_after_disconnect(dock, "_host_status")


def test_dock_shows_each_frames_numbers_under_the_preview_as_unity_does(dock_sim, router):
    """Unity's window shows frame, epoch, model time, latency, dropped frames and fps under its preview."""
    sim, dock = dock_sim
    m = dock.members
    client = m["client"]
    sock, _ = router
    ident = _dock_in_session(sim, dock, router)
    assert not m["_frame_info"].visible, "frame numbers before any frame"

    def frame(index, **extra):
        header = {"type": "frame", "session_id": "s1", "index": index, "epoch": 0, "action": 0, "client_ts": None,
                  "seq": None, "host_ts": 1.0, "timings": {"model": 12.5}, "events": [], "codec": "raw",
                  "width": 2, "height": 2}
        return [zmtp_raw.pack({**header, **extra}), b"\0" * 12]

    send_unread(client, sock, ident, frame(0), frame(1))  # one poll shows the newest and drops the other
    sim.process()
    fps = client.members["fps_measured"]
    assert m["_frame_info"].visible
    # the rate measured, then the session's
    assert m["_frame_info"].text == f"frame 1  epoch 0  model 12.5 ms  dropped 1  {fps:.1f} of 24.0 fps"
    assert sim.call_method(client, "send_input", ["right"])
    pump(sim, sock)
    _, sent = recv(sock)
    time.sleep(0.05)
    late = frame(2, client_ts=sent["client_ts"], seq=sent["seq"], timings={"model": 3})  # an integer is a number too
    sock.send_multipart([ident, *late])
    assert run_until(sim, lambda: m["_frame_info"].text.startswith("frame 2"))
    text = m["_frame_info"].text
    assert text.startswith("frame 2  epoch 0  model 3.0 ms  latency ") and "  dropped 1  " in text, text
    assert _ms_after(text, "latency") >= 40, text
    _hidden_after_disconnect(dock, "_frame_info")


def test_dock_starts_with_a_fixed_seed_branches_and_sets_the_sampler_as_unity_does(dock_sim, router):
    """Unity's window has Fixed seed, Branch from frame and a top-p / unmasking Apply; so has the dock."""
    sim, dock = dock_sim
    m = dock.members
    client = m["client"]
    sock, _ = router
    ident = _greet_dock(sim, dock, router)
    assert m["_branch_button"].disabled and not m["_sampler"].visible, "branch or sampler before a session"
    m["_fixed_seed"].button_pressed = True
    m["_seed"].value = 7
    start = _asked_to_start(sim, dock, sock)
    assert start["seed"] == 7
    settings = {"steps": 4, "temperature": 1.0, "cfg": 1.0, "event_cfg": None, "fps": 24.0, "mode": "realtime",
                "top_p": 0.9, "unmask": "random"}
    sock.send_multipart([ident, zmtp_raw.pack(dict(session_msg(start["req_id"]), settings=settings))])
    assert run_until(sim, lambda: client.members["link"] == IN_SESSION)
    assert m["_sampler"].visible and m["_top_p"].value == pytest.approx(0.9) and m["_unmask"].selected == 1
    m["_top_p"].value = 0.5
    m["_unmask"].select(0)
    assert gdsim.click(_find_button(dock, "Apply"))
    pump(sim, sock)
    _, sent = recv(sock)
    assert (sent["type"], sent["top_p"], sent["unmask"]) == ("settings", 0.5, "confidence")
    m["_branch_frame"].value = 3
    assert gdsim.click(m["_branch_button"])
    pump(sim, sock)
    _, sent = recv(sock)
    assert (sent["type"], sent["frame"]) == ("branch", 3)
    assert gdsim.click(_find_button(dock, "Reset"))
    pump(sim, sock)
    _, sent = recv(sock)
    assert (sent["type"], sent.get("seed")) == ("reset", 7), "Reset keeps the fixed seed, as Unity's Reset world"

    m["_fixed_seed"].button_pressed = False
    start = _asked_to_start(sim, dock, sock)
    assert start["seed"] is None, "unticked, the host picks the seed"
    sock.send_multipart([ident, zmtp_raw.pack(dict(session_msg(start["req_id"], sid="s2")))])
    assert run_until(sim, lambda: client.members["session"].get("session_id") == "s2")
    assert not m["_sampler"].visible, "the sampler shows for a backend without one"


def test_dock_seed_box_sends_every_seed_a_float_holds_exactly(dock_sim, router):
    """SpinBox values are floats: the box goes up to 2**53 - 1, and a large odd seed reaches `start` unchanged."""
    sim, dock = dock_sim
    m = dock.members
    sock, _ = router
    _greet_dock(sim, dock, router)
    assert m["_seed"].max_value == 2**53 - 1
    m["_fixed_seed"].button_pressed = True
    for typed, sent in ((2**53 - 3, 2**53 - 3), (2**53 - 1, 2**53 - 1), (2**31, 2**31), (2**60, 2**53 - 1)):
        m["_seed"].value = typed
        start = _asked_to_start(sim, dock, sock)
        assert start["seed"] == sent, f"typed {typed}, sent {start['seed']}"


def test_dock_connect_after_a_start_and_a_disconnect_only_connects(dock_sim):
    """README: Connect, type a prompt, Start. A Start made offline must not leave Connect starting a world later."""
    sim, dock = dock_sim
    client = dock.members["client"]
    with server.run_host_in_thread("sandbox") as host:
        dock.members["_endpoint"].text = host.address
        assert gdsim.click(_find_button(dock, "Start"))
        assert run_until(sim, lambda: client.members["link"] == IN_SESSION)
        assert gdsim.click(_find_button(dock, "Disconnect"))
        assert gdsim.click(_find_button(dock, "Connect"))
        assert run_until(sim, lambda: client.members["link"] == READY)
        assert not run_until(sim, lambda: client.members["link"] == IN_SESSION, timeout=1.0), "Connect started a world"
        sim.call_method(client, "disconnect_from_host", [])


def test_dock_status_names_the_backend_and_the_prompt_its_start_left_out(dock_sim, router):
    """A start refused for the dock's text prompt goes again without it: the status says both what runs and that."""
    sim, dock = dock_sim
    m = dock.members
    sock, _ = router
    ident = _greet_dock(sim, dock, router)
    m["_prompt"].text = "a snowy cave"
    start = _asked_to_start(sim, dock, sock)
    assert start["text"] == "a snowy cave"
    answer_the_retry_without(sim, sock, m["client"], ident, start, "text")
    assert m["_status"].text == ("SANDBOX GAME (test backend, not the world model): scripted; "
                                 "started without the text prompt: this backend takes none")


def test_dock_fire_sends_no_typed_event_the_host_refused(dock_sim, router):
    """The events list greys out when the host refuses typed events but keeps its selection: Fire must not send it."""
    sim, dock = dock_sim
    m = dock.members
    sock, _ = router
    ident = _dock_in_session(sim, dock, router, event_types=["weather_snow"], capabilities=["events", "text_events"])
    refuse_typed_events(sock, ident)
    assert run_until(sim, lambda: m["_events"].disabled)
    assert m["_events"].selected == 0 and not m["_fire_button"].disabled  # free text is still offered
    assert gdsim.click(m["_fire_button"])
    sim.process()
    assert not sock.poll(300), f"Fire sent the refused typed event: {recv(sock)[1]}"
    assert m["_status"].text.startswith("type the event in words"), m["_status"].text
    m["_event_text"].text = "make it snow"
    assert gdsim.click(m["_fire_button"])
    pump(sim, sock)
    _, event = recv(sock)
    assert (event["type"], event.get("event_type"), event.get("text")) == ("event", None, "make it snow")


def test_dock_connect_after_an_offline_image_start_and_a_disconnect_only_connects(dock_sim, router, tmp_path):
    """Image... to a host that cannot be reached queues a start; after Disconnect, Connect must not send it."""
    sim, dock = dock_sim
    m = dock.members
    client = m["client"]
    sock, _ = router
    gone = zmq.Context.instance().socket(zmq.ROUTER)
    gone_port = gone.bind_to_random_port("tcp://127.0.0.1")
    gone.close()  # nothing listens there: the dock's client keeps reconnecting
    m["_endpoint"].text = f"tcp://127.0.0.1:{gone_port}"
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(tmp_path / "scene.png")
    m["_file_dialog"].native_signals["file_selected"].emit(str(tmp_path / "scene.png"))
    assert client.members["link"] != 0 and client.members["_starts"].members["pending"]
    assert gdsim.click(_find_button(dock, "Disconnect"))
    _greet_dock(sim, dock, router)
    run_until(sim, lambda: sock.poll(0), timeout=0.5)
    assert not sock.poll(50), f"Connect sent the start queued before Disconnect: {recv(sock)[1]}"


def test_dock_freed_after_its_client_was_freed_frees_cleanly(dock_sim):
    """The dock closed its client's connection at PREDELETE behind `client != null`, which a freed client passes:
    freeing the dock after something freed its client called disconnect_from_host() on a freed instance."""
    sim, dock = dock_sim
    dock.members["client"].native.queue_free()
    sim.process()
    dock.native.queue_free()
    sim.process()
    assert dock.native.freed and sim.errors == []


def test_dock_moved_to_another_slot_keeps_its_session_and_says_bye_when_freed(dock_sim, router):
    """Dragging the dock to another editor slot takes it out of the tree and back in: it disconnected on leaving,
    dropping the live session (and, Godot running _ready once, built nothing again). Disabling the plugin frees it."""
    sim, dock = dock_sim
    sock, _ = router
    _dock_in_session(sim, dock, router)
    client = dock.members["client"]
    slot = sim.make_native("VBoxContainer", None)
    sim.add_to_root(slot)
    sim.native_of(dock).reparent(slot)
    sim.process(2)
    assert client.members["link"] == IN_SESSION and dock.members["client"] is client
    assert not sock.poll(100), "the host heard from a dock that only moved"
    dock.native.queue_free()
    sim.process()
    assert recv(sock)[1]["type"] == "bye" and client.members["_socket"] is None
