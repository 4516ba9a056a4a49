"""Golden vectors round-trip through python-msgpack and through the hand-written encoder every client copies."""

import importlib.util
import json
import math
import re
from pathlib import Path

import msgpack
import pytest

import zmtp_raw

VEC = Path(__file__).resolve().parents[1] / "docs" / "protocol" / "vectors"
_spec = importlib.util.spec_from_file_location("make_vectors", VEC / "make_vectors.py")
make_vectors = importlib.util.module_from_spec(_spec)  # the generator is a script, not a package module
_spec.loader.exec_module(make_vectors)
untag = make_vectors.untag  # the generator's inverse of its own tags: one reader of the tagged JSON


def same(a, b) -> bool:
    """Equality that also checks types (1 != 1.0 != True) and map key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


MSGPACK = json.loads((VEC / "msgpack.json").read_text(encoding="utf-8"))["vectors"]
ZMTP = json.loads((VEC / "zmtp.json").read_text(encoding="utf-8"))["vectors"]


@pytest.mark.parametrize("vec", MSGPACK, ids=[v["name"] for v in MSGPACK])
def test_msgpack_vector_roundtrips_python_msgpack(vec):
    """Decodes to its value; re-encodes byte for byte unless it is decode_only (a form our encoders never write)."""
    data, value = bytes.fromhex(vec["hex"]), untag(vec["value"])
    assert same(msgpack.unpackb(data, raw=False, strict_map_key=False), value)
    assert (msgpack.packb(value, use_bin_type=True) == data) != vec.get("decode_only", False)


@pytest.mark.parametrize("vec", MSGPACK, ids=[v["name"] for v in MSGPACK])
def test_msgpack_vector_roundtrips_hand_encoder(vec):
    data, value = bytes.fromhex(vec["hex"]), untag(vec["value"])
    assert (zmtp_raw.pack(value) == data) != vec.get("decode_only", False)
    assert same(zmtp_raw.unpack(data), value)


def test_decode_only_vectors_cover_the_forms_other_encoders_write():
    """float32, array32 and map32 (outermost and nested) are read by every client although none writes them."""
    decode_only = [bytes.fromhex(v["hex"]) for v in MSGPACK if v.get("decode_only")]
    assert {data[0] for data in decode_only} == {0xCA, 0xDD, 0xDF}
    assert any(data[0] == 0xDF and b"\xdd" in data and b"\xca" in data for data in decode_only), "no nested 32-bit forms"
    assert all(set(v) <= {"name", "hex", "value", "decode_only"} for v in MSGPACK), "a vector field no runner knows"


def test_vectors_cover_every_message_and_width():
    from test_docs import _protocol_section  # test_docs holds §4 to the host; this holds the vectors to §4

    names = {v["name"] for v in MSGPACK}
    types = {untag(v["value"])["type"] for v in MSGPACK if v["name"].startswith("msg_")}
    doc = {name for heading in re.findall(r"^### (.+)$", _protocol_section(4), re.M)
           for name in re.findall(r"(?:^|/ )([a-z_]+)", heading)}
    assert types == doc, f"vectors lack {sorted(doc - types)}: add them to make_vectors.py"
    assert {"hello", "start", "frame", "ok", "error", "bye", "edit", "pong"} <= types
    first_bytes = {bytes.fromhex(v["hex"])[0] for v in MSGPACK}
    for tag in (0xCC, 0xCD, 0xCE, 0xCF, 0xD0, 0xD1, 0xD2, 0xD3, 0xCB, 0xD9, 0xDA, 0xDB, 0xC4, 0xC5, 0xC6, 0xDC, 0xDE):
        assert tag in first_bytes, f"no vector starts with {tag:#04x}"
    assert "uint8_200" in names and bytes.fromhex(next(v["hex"] for v in MSGPACK if v["name"] == "int8_-33")) == b"\xd0\xdf"


def test_host_reply_vectors_carry_absolute_recording_paths():
    """Since 1.3 the host answers every recording `path` absolute: the vectors showed `recordings/demo.wbrec`."""
    from pathlib import PurePosixPath

    replies = {v["name"]: untag(v["value"]) for v in MSGPACK
               if v["name"] in ("msg_ok_record_start", "msg_ok_record_stop", "msg_error_recording_stopped")}
    assert len(replies) == 3
    for name, msg in replies.items():
        assert PurePosixPath(msg["path"]).is_absolute(), f"{name}: {msg['path']}"
    assert replies["msg_error_recording_stopped"]["message"].startswith(
        f"recording {replies['msg_error_recording_stopped']['path']} stopped: ")  # as the host words it


CLIENT_TYPES = ("hello", "start", "input", "event", "edit", "reset", "branch", "settings", "record_start", "record_stop",
                "ping", "bye")


def test_every_client_message_vector_is_one_the_host_accepts():
    """A vector a client copies byte for byte must pass the host's own checks, not only msgpack's."""
    from bridge.host import protocol as P
    sent = [v for v in MSGPACK if v["name"].startswith("msg_") and (untag(v["value"])["type"] in CLIENT_TYPES
                                                                      or v["name"] == "msg_status_request")]
    assert {untag(v["value"])["type"] for v in sent} == {*CLIENT_TYPES, "status"}
    for v in sent:
        assert P.validate(untag(v["value"]))["type"] == untag(v["value"])["type"], v["name"]


def test_rule_checker_rejects_wider_forms():
    make_vectors.check_rules(bytes.fromhex("ccc8"))
    for bad in ("d100c8", "d005", "ca3fc00000", "cd00ff", "d1ffe0", "c70101ff"):
        with pytest.raises(AssertionError):
            make_vectors.check_rules(bytes.fromhex(bad))


def test_vector_files_are_up_to_date(tmp_path, monkeypatch):
    monkeypatch.setattr(make_vectors, "HERE", tmp_path)
    make_vectors.main()
    for name in ("msgpack.json", "zmtp.json"):
        assert (tmp_path / name).read_bytes() == (VEC / name).read_bytes(), f"{name} is stale: run make_vectors.py"


def test_vector_files_are_written_with_lf_on_windows(tmp_path, monkeypatch):
    """Text mode writes os.linesep: on Windows the regenerated vectors came out CRLF and never matched the LF ones."""
    import _pyio
    import io
    import os

    monkeypatch.setattr(io, "open", _pyio.open)  # the pure-Python io, which reads os.linesep as Windows' C io has it
    monkeypatch.setattr(os, "linesep", "\r\n")
    monkeypatch.setattr(make_vectors, "HERE", tmp_path)
    make_vectors.main()
    for name in ("msgpack.json", "zmtp.json"):
        assert b"\r" not in (tmp_path / name).read_bytes(), name


def test_msgpack_vectors_say_the_protocol_version_the_host_speaks():
    """Client authors read the header to know which protocol the vectors hold: it said 1.2 over 1.3 vectors."""
    from bridge.host import protocol as P
    header = json.loads((VEC / "msgpack.json").read_text(encoding="utf-8"))["protocol"]
    assert header == f"{P.PROTOCOL_MAJOR}.{P.PROTOCOL_MINOR}"


@pytest.mark.parametrize("vec", ZMTP, ids=[v["name"] for v in ZMTP])
def test_zmtp_vector_parses(vec):
    data = bytes.fromhex(vec["hex"])
    if vec["name"].startswith("greeting"):
        zmtp_raw.check_greeting(data)
        if vec["direction"] == "send":
            assert data == zmtp_raw.GREETING
        return
    frames, used = zmtp_raw.decode_frames(data)
    assert used == len(data) and frames
    # re-encoding with the writer's rules gives the same bytes, except the deliberately long small frame
    if vec["name"] != "frame_long_small":
        again = b"".join(zmtp_raw.encode_frame(body, more=bool(f & 1), command=bool(f & 4)) for f, body in frames)
        assert again == data
    if vec["name"].startswith("ready"):
        flags, body = frames[0]
        assert flags & 4 and body[1:6] == b"READY"
        props = zmtp_raw.decode_properties(body[6:])
        assert "Socket-Type" in props
        if vec["name"] == "ready_router_libzmq":
            assert props == {"Socket-Type": b"ROUTER", "Identity": b""}
    if vec["name"] == "multipart_frame_raw_64x64":
        (f0, hdr), (f1, px) = frames
        assert f0 == 1 and f1 == 2 and len(px) == 64 * 64 * 3
        assert zmtp_raw.unpack(hdr)["type"] == "frame"


def test_1_1_to_1_3_vectors_match_what_the_host_sends():
    import numpy as np

    from bridge.backend import Prompt
    from bridge.host import protocol as P
    from bridge.host.pixels import decode_layer
    from bridge.host.server import _refusal
    from bridge.host.session import Session
    from bridge.worlds.sandbox import SandboxWorld

    v = {x["name"]: untag(x["value"]) for x in MSGPACK}
    assert v["msg_hello"]["protocol_major"] == v["msg_welcome"]["protocol_major"] == P.PROTOCOL_MAJOR == 1
    assert v["msg_hello"]["protocol_minor"] == v["msg_welcome"]["protocol_minor"] == P.PROTOCOL_MINOR == 3
    welcome = P.welcome("raw", ["sandbox"], "sandbox", P.Limits())
    assert welcome["capabilities"] == v["msg_welcome"]["capabilities"] == P.CAPABILITIES
    assert welcome["protocol_minor"] == 3 and {"text_events", "edit"} <= set(P.CAPABILITIES)
    edit = P.validate(v["msg_edit"])
    assert decode_layer(edit["layer"], 64, 64).shape == (2, 2, 4) and (edit["x"], edit["y"]) == (-40, 12)
    assert P.validate(v["msg_settings_event_cfg"])["event_cfg"] == 2.5
    sampling = P.validate(v["msg_settings_sampling"])  # 1.2
    assert (sampling["top_p"], sampling["unmask"], sampling["steps"]) == (0.9, "confidence", None)
    session = Session(SandboxWorld(64, 0))
    caps = v["msg_session_caps"]
    assert list(caps) == list(session.describe(1)) and list(caps["settings"]) == list(session.settings_map())
    assert caps["capabilities"] == list(P.SESSION_CAPABILITIES) == ["text_prompt", "image_prompt", "sketch_prompt",
                                                                     "events", "text_events", "edit"]
    assert list(v["msg_ok_edit"]) == list(P.ok(13, "edit", epoch=2, frame_index=42))
    with pytest.raises(P.ProtocolError) as e:  # 1.3: the refused edit names its capability
        session.edit(b"", 0, 0)
    assert _refusal(None, e.value, 13) == v["msg_error_unsupported"]
    stopped = v["msg_error_recording_stopped"]  # 1.3
    assert list(stopped) == list(P.error("recording_stopped", "x", path="p", frames=1)) and not stopped["fatal"]
    with pytest.raises(P.ProtocolError) as e:  # 1.3: the capability a refused prompt kind needs, as its own key
        session.check_prompt(Prompt(image=np.zeros((64, 64, 3), np.uint8)))
    assert _refusal(None, e.value, 14) == v["msg_error_bad_prompt"]

    class TypedOnly(SandboxWorld):  # as a world model trained without events.json: typed events, no free text
        kind, name = "world_model", "world model tiny (step 12000)"
        event_types, capabilities = ["rain", "snow"], ["events"]

    with pytest.raises(P.ProtocolError) as e:  # 1.3: an event kind the backend lacks names its capability too
        Session(TypedOnly(64, 0)).queue_event(None, "make it snow")
    assert _refusal(None, e.value, 15) == v["msg_error_unsupported_event"]

    class NoSnowHere(SandboxWorld):  # takes the event when queued, refuses it when its frame is made
        def step(self, action, event=None):
            if event is not None:
                raise ValueError("no snow in this level")
            return super().step(action)

    snowless = Session(NoSnowHere(64, 0), mode="step")  # within 1.3: the refused event's req_id, type and text
    snowless.begin(Prompt(seed=1))
    snowless.queue_event("weather_snow", None, 16)
    assert snowless.step(0).refused == v["msg_error_event_refused"]


def _sandbox_exchange(v: dict) -> list[tuple[dict, str, set[str]]]:
    """(request, the reply vector a sandbox host answers it with, the keys whose values vary from run to run: ids,
    clocks, counts, the host's folders, which keep only their type), sent in this order. Not here: msg_status (a host
    before frames_sent/frames_dropped, which clients still read), world model replies, and replies no sandbox request
    makes deterministic (msg_ok_branch, msg_error_recording_stopped)."""
    sandbox_start = {k: x for k, x in v["msg_start"].items() if k != "image"}  # the sandbox takes no image prompt
    return [
        (v["msg_hello"], "msg_welcome", {"backends", "default_backend"}),  # its host serves a world model too
        (v["msg_start_own_rate"], "msg_session_own_rate", {"session_id", "seed"}),  # no seed: the host picks one
        (sandbox_start, "msg_session", {"session_id"}),
        (v["msg_event"], "msg_ok", set()),
        ({"type": "settings", "req_id": 4, "fps": 30.0, "mode": "step"}, "msg_ok_settings", set()),
        (v["msg_record_start"], "msg_ok_record_start", {"path"}),  # the path: checked against the recordings folder
        (v["msg_record_stop"], "msg_ok_record_stop", {"path", "frames"}),
        (v["msg_ping"], "msg_pong", {"host_ts"}),
        ({**v["msg_input_name"], "action": "fly", "req_id": 12}, "msg_error", set()),
        (v["msg_reset"], "msg_ok_reset", set()),
        (v["msg_edit"], "msg_error_unsupported", set()),
        ({"type": "status", "req_id": 16}, "msg_status_counts",
         {"session_id", "fps_measured", "frames_sent", "frames_dropped"}),
    ]


def test_the_python_clients_default_start_is_the_own_rate_vector(monkeypatch):
    """Every client starts at the world's own rate unless asked for another (a nil fps), yet the only start vector
    carried fps 24: the Python client's start with no arguments is msg_start_own_rate byte for byte, as the Unity and
    Godot builders' are (ProtocolTests.cs, vector_tests.gd)."""
    from bridge.client import WorldClient

    v = {x["name"]: x for x in MSGPACK}
    sent = []
    c = WorldClient("tcp://127.0.0.1:1")
    try:
        c.welcome = untag(v["msg_welcome"]["value"])
        monkeypatch.setattr(c, "_send", sent.append)
        monkeypatch.setattr(c, "_wait_reply", lambda what, timeout=None: untag(v["msg_session_own_rate"]["value"]))
        assert c.start()["fps"] == 15.0  # the sandbox game's own rate, which the host names
    finally:
        c.close()
    assert zmtp_raw.pack(sent[0]).hex() == v["msg_start_own_rate"]["hex"]


def drift(vector: dict, real: dict, varies: set[str]) -> list[str]:
    """How a reply vector differs from the host's reply: its keys and their order, each value (only its type where
    it `varies`)."""
    keys = [] if list(vector) == list(real) else [f"keys {list(vector)} != the host's {list(real)}"]
    return keys + [f"{k}: {vector[k]!r} != the host's {real[k]!r}" for k in vector if k in real
                   and not (type(vector[k]) is type(real[k]) if k in varies else same(vector[k], real[k]))]


def test_host_reply_vectors_are_what_a_sandbox_host_sends(tmp_path):
    """Engines parse these vectors as the host's replies, so they must be what a host sends: msg_session described an
    8-action sandbox with model settings, msg_error quoted an older wording, and msg_record_start asked for
    `recordings/demo.wbrec`, which a host writes to <recordings>/recordings/demo.wbrec."""
    from pathlib import PurePosixPath
    from urllib.parse import urlparse

    from bridge.host.server import run_host_in_thread

    v = {x["name"]: untag(x["value"]) for x in MSGPACK}
    recordings = tmp_path / "recordings"
    drifted, frames = {}, []
    with run_host_in_thread("sandbox", recordings_dir=recordings) as h:
        c = zmtp_raw.RawDealer("127.0.0.1", urlparse(h.address).port)
        try:
            for request, name, varies in _sandbox_exchange(v):
                c.send(request)
                reply, _ = c.recv()
                while reply["type"] == "frame":
                    frames.append(reply)
                    reply, _ = c.recv()
                drifted[name] = drift(v[name], reply, varies)
                if name == "msg_ok_reset":
                    c.send({"type": "input", "action": 0})  # one step: the status then stands at frame 1 of epoch 1
                if "path" in varies:  # where in its recordings folder the host wrote it, as the vector says
                    got = Path(reply["path"]).relative_to(recordings.absolute()).as_posix()
                    said = PurePosixPath(v[name]["path"]).relative_to(make_vectors.HOST_RECORDINGS).as_posix()
                    drifted[name] += [] if got == said else [f"path: <recordings>/{said} != the host's {got}"]
        finally:
            c.close()
    bad = [f"{name}: {d}" for name, ds in drifted.items() for d in ds]
    assert not bad, "reply vectors unlike what a sandbox host sends (fix make_vectors.py):\n" + "\n".join(bad)
    assert frames and all(list(f) == list(v["msg_frame"]) for f in frames), "frame headers: keys differ"
