"""Regenerate the golden vectors that C#, GDScript and the Python clients are all held to (`python make_vectors.py`)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import msgpack

HERE = Path(__file__).resolve().parent
MAJOR, MINOR = 1, 3  # the protocol these vectors hold (bridge/host/protocol.py): the header and hello/welcome/reject


# --- Tagged JSON (docs/protocol.md §7) ---

def tag(v):
    """Python value -> tagged JSON value: floats as {"$f64": x}, bytes as {"$bin": hex}."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return {"$f64": v}
    if isinstance(v, (bytes, bytearray)):
        return {"$bin": bytes(v).hex()}
    if isinstance(v, dict):
        assert all(isinstance(k, str) for k in v), "protocol maps have string keys"
        return {k: tag(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [tag(x) for x in v]
    raise TypeError(f"cannot tag {type(v).__name__}")


def untag(v):
    """Tagged JSON value -> Python value (inverse of `tag`)."""
    if isinstance(v, dict):
        if set(v) == {"$f64"}:
            return float(v["$f64"])
        if set(v) == {"$bin"}:
            return bytes.fromhex(v["$bin"])
        return {k: untag(x) for k, x in v.items()}
    if isinstance(v, list):
        return [untag(x) for x in v]
    return v


# --- The pinned encoding rules, asserted on every vector ---

def check_rules(data: bytes) -> None:
    """Walk msgpack bytes and assert: smallest unsigned for n >= 0, smallest signed for n < 0, float64 only."""

    def walk(i: int) -> int:
        b = data[i]
        if b <= 0x7F or b >= 0xE0:
            return i + 1  # fixints
        if 0x80 <= b <= 0x8F:
            i += 1
            for _ in range(2 * (b & 0x0F)):
                i = walk(i)
            return i
        if 0x90 <= b <= 0x9F:
            i += 1
            for _ in range(b & 0x0F):
                i = walk(i)
            return i
        if 0xA0 <= b <= 0xBF:
            return i + 1 + (b & 0x1F)
        if b in (0xC0, 0xC2, 0xC3):
            return i + 1
        if b in (0xC4, 0xC5, 0xC6):  # bin8/16/32
            w = {0xC4: 1, 0xC5: 2, 0xC6: 4}[b]
            n = int.from_bytes(data[i + 1:i + 1 + w], "big")
            assert b == 0xC4 or n > (0xFF if b == 0xC5 else 0xFFFF), "bin not in its smallest form"
            return i + 1 + w + n
        if b == 0xCA:
            raise AssertionError("float32 is not allowed: floats are float64")
        if b == 0xCB:
            return i + 9
        if b in (0xCC, 0xCD, 0xCE, 0xCF):  # uint8..64
            w = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[b]
            n = int.from_bytes(data[i + 1:i + 1 + w], "big")
            lo = {1: 0x80, 2: 0x100, 4: 0x10000, 8: 0x100000000}[w]
            assert n >= lo, f"uint{8 * w} {n} is not the smallest form"
            return i + 1 + w
        if b in (0xD0, 0xD1, 0xD2, 0xD3):  # int8..64
            w = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}[b]
            n = int.from_bytes(data[i + 1:i + 1 + w], "big", signed=True)
            assert n < 0, "non-negative integers must use the unsigned family"
            lo = {1: -32, 2: -128, 4: -32768, 8: -(2**31)}[w]
            assert n < lo, f"int{8 * w} {n} is not the smallest form"
            return i + 1 + w
        if b in (0xD9, 0xDA, 0xDB):  # str8/16/32
            w = {0xD9: 1, 0xDA: 2, 0xDB: 4}[b]
            n = int.from_bytes(data[i + 1:i + 1 + w], "big")
            assert n > {1: 31, 2: 0xFF, 4: 0xFFFF}[w], "str not in its smallest form"
            return i + 1 + w + n
        if b in (0xDC, 0xDD):  # array16/32
            w = 2 if b == 0xDC else 4
            n = int.from_bytes(data[i + 1:i + 1 + w], "big")
            i += 1 + w
            for _ in range(n):
                i = walk(i)
            return i
        if b in (0xDE, 0xDF):  # map16/32
            w = 2 if b == 0xDE else 4
            n = int.from_bytes(data[i + 1:i + 1 + w], "big")
            i += 1 + w
            for _ in range(2 * n):
                i = walk(i)
            return i
        raise AssertionError(f"type byte {b:#04x} (ext/timestamp) is not allowed")

    assert walk(0) == len(data), "trailing bytes"


def pack(v) -> bytes:
    """The reference encoder: python-msgpack with bin types; floats stay float64."""
    data = msgpack.packb(v, use_bin_type=True)
    check_rules(data)
    return data


# --- msgpack.json ---

def value_vectors() -> list[tuple[str, object]]:
    """Scalars and containers at every length/width boundary."""
    v: list[tuple[str, object]] = [("nil", None), ("false", False), ("true", True)]
    ints = [
        ("posfixint_0", 0), ("posfixint_127", 127), ("uint8_128", 128), ("uint8_200", 200), ("uint8_255", 255),
        ("uint16_256", 256), ("uint16_65535", 65535), ("uint32_65536", 65536), ("uint32_4294967295", 2**32 - 1),
        ("uint64_4294967296", 2**32), ("uint64_max", 2**64 - 1),
        ("negfixint_-1", -1), ("negfixint_-32", -32), ("int8_-33", -33), ("int8_-128", -128),
        ("int16_-129", -129), ("int16_-32768", -32768), ("int32_-32769", -32769), ("int32_-2147483648", -(2**31)),
        ("int64_-2147483649", -(2**31) - 1), ("int64_min", -(2**63)),
    ]
    v += ints
    floats = [("float64_0", 0.0), ("float64_1.5", 1.5), ("float64_-2.25", -2.25), ("float64_24", 24.0),
              ("float64_0.1", 0.1), ("float64_1e300", 1e300), ("float64_-1e-300", -1e-300),
              ("float64_ms_timestamp", 123456.789)]
    v += floats
    v += [("fixstr_empty", ""), ("fixstr_1", "a"), ("fixstr_31", "s" * 31), ("str8_32", "s" * 32),
          ("str8_255", "s" * 255), ("str16_256", "s" * 256), ("str32_65536", "s" * 65536),
          ("str_utf8", "héllo ✓ 世界 🌍")]
    v += [("bin8_empty", b""), ("bin8_1", b"\x00"), ("bin8_255", bytes(range(256))[:255]),
          ("bin16_256", bytes(range(256))),
          ("bin32_65536", bytes(i % 251 for i in range(65536)))]
    v += [("fixarray_empty", []), ("fixarray_15", list(range(15))), ("array16_16", list(range(16))),
          ("fixmap_empty", {}), ("fixmap_15", {f"k{i:02d}": i for i in range(15)}),
          ("map16_16", {f"k{i:02d}": i for i in range(16)}),
          ("nested", {"a": [1, -1, 1.5, None, True, "x", b"\x01\x02", {"b": [[], {}]}], "c": {"d": {"e": [300, -300]}}})]
    return v


def decode_only_vectors() -> list[tuple[str, bytes, object]]:
    """Forms our encoders never write (they break the rules) but other msgpack encoders may: every client must read them."""
    float32_0_1 = struct.unpack(">f", bytes.fromhex("3dcccccd"))[0]  # 0.1 as a float32, exactly, as a float64
    return [
        ("decode_array32_3", bytes.fromhex("dd00000003010203"), [1, 2, 3]),
        ("decode_array32_empty", bytes.fromhex("dd00000000"), []),
        ("decode_map32_1", bytes.fromhex("df00000001a16101"), {"a": 1}),
        ("decode_float32_1.5", bytes.fromhex("ca3fc00000"), 1.5),
        ("decode_float32_0.1", bytes.fromhex("ca3dcccccd"), float32_0_1),
        ("decode_nested_32", bytes.fromhex("df00000002a176dd00000001ca40200000a177df00000000"), {"v": [2.5], "w": {}}),
    ]


HOST_RECORDINGS = "/home/me/worldbridge/recordings"  # the host's --recordings folder: record_start paths are in it
HOST_RECORDING = f"{HOST_RECORDINGS}/demo.wbrec"  # the host answers recording paths absolute (1.3)
# What a sandbox host says of its game (bridge/worlds/sandbox.py); tests/test_protocol_vectors.py holds the replies
# below that a sandbox host sends to what it sends.
SANDBOX_ACTIONS = ["noop", "left", "right", "jump", "left_jump", "right_jump", "down"]
SANDBOX_EVENTS = ["weather_rain", "weather_snow", "weather_fog", "weather_clear", "night_falls", "dusk", "day_breaks",
                  "spawn_enemy", "spawn_coins", "flood"]
NO_MODEL_KNOBS = {"steps": None, "temperature": None, "cfg": None, "event_cfg": None, "top_p": None, "unmask": None}


def message_vectors() -> list[tuple[str, dict]]:
    """One example of every message in docs/protocol.md §4, keys in the documented order."""
    png_1x1 = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
                            "0000000c4944415478da63f8cfc0000003010100c9fe92ef0000000049454e44ae426082")
    png_rgba_2x2 = bytes.fromhex("89504e470d0a1a0a0000000d494844520000000200000002080600000072b60d2400000018494441"
                                 "54789c05c10101000008c3201edde41316e144e10134fe057ef0e899360000000049454e44ae426082")
    settings = {"steps": 8, "temperature": 1.0, "cfg": 1.0, "fps": 24.0, "mode": "realtime"}
    settings_12 = {"steps": 8, "temperature": 1.0, "cfg": 1.0, "event_cfg": 1.0, "top_p": 1.0, "unmask": "confidence",
                   "fps": 24.0, "mode": "step"}
    return [
        ("msg_hello", {"type": "hello", "protocol_major": MAJOR, "protocol_minor": MINOR, "client": "unity/0.1.0",
                       "codecs": ["raw", "png"]}),
        ("msg_welcome", {"type": "welcome", "protocol_major": MAJOR, "protocol_minor": MINOR, "host": "worldbridge/0.1.0",
                         "codec": "raw",
                         "capabilities": ["realtime", "step", "events", "text_prompt", "image_prompt", "sketch_prompt",
                                          "branch", "record", "resume", "settings", "text_events", "edit"],
                         "backends": ["sandbox", "world_model"], "default_backend": "world_model",
                         "limits": {"max_message_bytes": 16777216, "max_sessions": 64, "idle_timeout_s": 60.0}}),
        ("msg_reject", {"type": "reject", "code": "version_mismatch",
                        "message": f"client speaks protocol 2.0, host speaks {MAJOR}.{MINOR}: update the plugin or the host",
                        "protocol_major": MAJOR, "protocol_minor": MINOR}),
        ("msg_start", {"type": "start", "req_id": 1, "backend": None, "mode": "realtime", "fps": 24.0, "seed": 7,
                       "text": "a cave with lava", "image": png_1x1, "sketch": None, "action_map": {"jump": 3},
                       "resume": None}),
        ("msg_start_resume", {"type": "start", "req_id": 2, "resume": "s-4f2a9c"}),
        # what every client sends by default: nil fps is the world's own rate, nil seed the host's pick
        ("msg_start_own_rate", {"type": "start", "req_id": 1, "backend": None, "mode": "realtime", "fps": None,
                                "seed": None, "text": None, "image": None, "sketch": None, "action_map": None,
                                "resume": None}),
        # a sandbox host's answer to msg_start without its image (the sandbox game takes no image prompt)
        ("msg_session", {"type": "session", "req_id": 1, "session_id": "s-4f2a9c", "backend_kind": "sandbox",
                         "backend_name": "sandbox game", "mode": "realtime", "fps": 24.0, "width": 64, "height": 64,
                         "action_names": SANDBOX_ACTIONS, "num_latent_actions": len(SANDBOX_ACTIONS),
                         "event_types": SANDBOX_EVENTS, "settings": {**NO_MODEL_KNOBS, "fps": 24.0, "mode": "realtime"},
                         "frame_index": 0, "epoch": 0, "resumed": False, "branch_window": 1024,
                         "capabilities": ["text_prompt", "sketch_prompt", "events", "text_events"], "seed": 7}),
        # a sandbox host's answer to msg_start_own_rate: the sandbox game's own 15 fps, and the seed it picked
        ("msg_session_own_rate", {"type": "session", "req_id": 1, "session_id": "s-9d03b7", "backend_kind": "sandbox",
                                  "backend_name": "sandbox game", "mode": "realtime", "fps": 15.0, "width": 64,
                                  "height": 64, "action_names": SANDBOX_ACTIONS,
                                  "num_latent_actions": len(SANDBOX_ACTIONS), "event_types": SANDBOX_EVENTS,
                                  "settings": {**NO_MODEL_KNOBS, "fps": 15.0, "mode": "realtime"}, "frame_index": 0,
                                  "epoch": 0, "resumed": False, "branch_window": 1024,
                                  "capabilities": ["text_prompt", "sketch_prompt", "events", "text_events"],
                                  "seed": 1804289383}),
        ("msg_session_seed", {"type": "session", "req_id": 1, "session_id": "s-4f2a9c", "backend_kind": "world_model",
                              "backend_name": "world model tiny (step 12000)", "mode": "step", "fps": 24.0,
                              "width": 64, "height": 64, "action_names": [f"a{i}" for i in range(8)],
                              "num_latent_actions": 8, "event_types": [], "settings": settings, "frame_index": 0,
                              "epoch": 0, "resumed": False, "branch_window": 1024, "seed": 1804289383}),
        ("msg_session_caps", {"type": "session", "req_id": 1, "session_id": "s-7b31e0", "backend_kind": "world_model",
                              "backend_name": "world model tiny (step 12000)", "mode": "step", "fps": 24.0,
                              "width": 64, "height": 64, "action_names": [f"a{i}" for i in range(8)],
                              "num_latent_actions": 8, "event_types": ["weather_snow", "spawn_enemy"],
                              "settings": settings_12, "frame_index": 0, "epoch": 0, "resumed": False,
                              "branch_window": 1024,
                              "capabilities": ["text_prompt", "image_prompt", "sketch_prompt", "events", "text_events",
                                               "edit"],
                              "seed": 7}),
        ("msg_input_id", {"type": "input", "action": 2, "client_ts": 1234.5, "seq": 17}),
        ("msg_input_name", {"type": "input", "action": "jump", "client_ts": 1301.25, "seq": 18}),
        ("msg_frame", {"type": "frame", "session_id": "s-4f2a9c", "index": 42, "epoch": 1, "action": 2,
                       "client_ts": 1234.5, "seq": 17, "host_ts": 98765.125,
                       "timings": {"model": 3.5, "encode": 0.0625, "total": 3.75}, "events": [],
                       "codec": "raw", "width": 64, "height": 64}),
        ("msg_frame_0", {"type": "frame", "session_id": "s-4f2a9c", "index": 0, "epoch": 0, "action": -1,
                         "client_ts": None, "seq": None, "host_ts": 98000.0,
                         "timings": {"model": 1.25, "encode": 0.5, "total": 1.75}, "events": ["it starts to snow"],
                         "codec": "png", "width": 64, "height": 64}),
        ("msg_event", {"type": "event", "req_id": 3, "event_type": "weather_snow", "text": None}),
        ("msg_event_text", {"type": "event", "req_id": 4, "event_type": None, "text": "make it snow"}),
        ("msg_reset", {"type": "reset", "req_id": 5, "seed": 8, "text": "a forest"}),
        ("msg_branch", {"type": "branch", "req_id": 6, "frame": 30}),
        ("msg_settings", {"type": "settings", "req_id": 7, "steps": 8, "temperature": 0.9, "cfg": 1.5, "fps": 30.0,
                          "mode": "step"}),
        ("msg_settings_event_cfg", {"type": "settings", "req_id": 14, "event_cfg": 2.5}),
        ("msg_settings_sampling", {"type": "settings", "req_id": 15, "top_p": 0.9, "unmask": "confidence"}),
        ("msg_edit", {"type": "edit", "req_id": 13, "layer": png_rgba_2x2, "x": -40, "y": 12}),
        ("msg_record_start", {"type": "record_start", "req_id": 8, "path": "demo.wbrec"}),
        ("msg_record_stop", {"type": "record_stop", "req_id": 9}),
        ("msg_status_request", {"type": "status", "req_id": 10}),
        ("msg_status", {"type": "status", "req_id": 10, "sessions": 1, "session_id": "s-4f2a9c", "frame_index": 42,
                        "epoch": 1, "mode": "realtime", "fps_target": 24.0, "fps_measured": 23.9, "recording": False,
                        "backend_kind": "sandbox", "backend_name": "sandbox game"}),
        ("msg_status_counts", {"type": "status", "req_id": 16, "sessions": 1, "session_id": "s-4f2a9c",
                               "frame_index": 1, "epoch": 1, "mode": "step", "fps_target": 30.0, "fps_measured": 0.0,
                               "recording": False, "backend_kind": "sandbox", "backend_name": "sandbox game",
                               "frames_sent": 4, "frames_dropped": 0}),
        ("msg_ping", {"type": "ping", "req_id": 11, "client_ts": 5000.5}),
        ("msg_pong", {"type": "pong", "req_id": 11, "client_ts": 5000.5, "host_ts": 99000.25}),
        ("msg_ok", {"type": "ok", "req_id": 3, "request": "event", "caption": "it starts to snow"}),
        ("msg_ok_reset", {"type": "ok", "req_id": 5, "request": "reset", "epoch": 1, "frame_index": 0, "seed": 8}),
        ("msg_ok_edit", {"type": "ok", "req_id": 13, "request": "edit", "epoch": 2, "frame_index": 42}),
        ("msg_ok_record_stop", {"type": "ok", "req_id": 9, "request": "record_stop", "path": HOST_RECORDING,
                                "frames": 120}),
        ("msg_ok_settings", {"type": "ok", "req_id": 4, "request": "settings",
                             "settings": {**NO_MODEL_KNOBS, "fps": 30.0, "mode": "step"}}),
        ("msg_ok_branch", {"type": "ok", "req_id": 6, "request": "branch", "epoch": 1, "frame_index": 30}),
        ("msg_ok_record_start", {"type": "ok", "req_id": 8, "request": "record_start", "path": HOST_RECORDING}),
        ("msg_error", {"type": "error", "req_id": 12, "code": "bad_argument",
                       "message": f"unknown action name 'fly': use one of {', '.join(SANDBOX_ACTIONS)} or an id "
                                  f"0-{len(SANDBOX_ACTIONS) - 1}", "fatal": False}),
        ("msg_error_unsupported", {"type": "error", "req_id": 13, "code": "unsupported",
                                   "message": "sandbox game cannot edit frames (it renders from game state, not "
                                              "pixels): start a world_model session to edit (session.capabilities "
                                              "lists what a backend can do)", "fatal": False,
                                   "capability": "edit"}),
        ("msg_error_recording_stopped", {"type": "error", "req_id": None, "code": "recording_stopped",
                                         "message": f"recording {HOST_RECORDING} stopped: No space left on device; "
                                                    "everything recorded before it is kept and readable (120 frames): "
                                                    "free some space and send record_start again",
                                         "fatal": False, "path": HOST_RECORDING, "frames": 120}),
        ("msg_error_bad_prompt", {"type": "error", "req_id": 14, "code": "bad_prompt",
                                  "message": "sandbox game cannot start from image prompts (session.capabilities lack "
                                             "image_prompt): leave `image` out, or send a flat-colour drawing as "
                                             "`sketch`", "fatal": False, "capability": "image_prompt"}),
        ("msg_error_unsupported_event", {"type": "error", "req_id": 15, "code": "unsupported",
                                         "message": "world model tiny (step 12000) cannot take free-text events "
                                                    "(session.capabilities lack text_events): send an `event_type` "
                                                    "instead, one of ['rain', 'snow']", "fatal": False,
                                         "capability": "text_events"}),
        ("msg_error_event_refused", {"type": "error", "req_id": None, "code": "bad_argument",
                                     "message": "event 'weather_snow' was refused by the backend: no snow in this "
                                                "level", "fatal": False, "event_req_id": 16,
                                     "event_type": "weather_snow", "text": None}),
        ("msg_bye", {"type": "bye"}),
    ]


# --- zmtp.json ---

def zmtp_frame(body: bytes, more: bool = False, command: bool = False, long: bool | None = None) -> bytes:
    """One ZMTP 3.0 frame: flags (bit0 MORE, bit1 LONG, bit2 COMMAND), size (1 or 8 bytes BE), body."""
    long = len(body) > 255 if long is None else long
    flags = (1 if more else 0) | (2 if long else 0) | (4 if command else 0)
    size = struct.pack(">Q", len(body)) if long else bytes([len(body)])
    return bytes([flags]) + size + body


def command(name: bytes, data: bytes) -> bytes:
    return zmtp_frame(bytes([len(name)]) + name + data, command=True)


def props(*pairs: tuple[bytes, bytes]) -> bytes:
    return b"".join(bytes([len(k)]) + k + struct.pack(">I", len(v)) + v for k, v in pairs)


def zmtp_vectors() -> list[dict]:
    """Byte sequences a ZMTP 3.0 DEALER writes and must parse (checked against libzmq 4.3.5)."""
    greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
    libzmq_greeting = (b"\xff" + b"\x00" * 7 + b"\x01" + b"\x7f" + b"\x03\x01" + b"NULL".ljust(20, b"\x00")
                       + b"\x00" + b"\x00" * 31)
    assert len(greeting) == len(libzmq_greeting) == 64
    hello = pack(dict(message_vectors())["msg_hello"])
    frame_hdr = pack(dict(message_vectors())["msg_frame"])
    pixels = bytes(i % 256 for i in range(64 * 64 * 3))
    v = [
        dict(name="greeting_client", direction="send",
             note="What a client sends: signature FF, 8 zero padding bytes, 7F, version 3.0, mechanism NULL "
                  "padded to 20 bytes, as-server 0, 31 zero filler bytes.",
             hex=greeting.hex()),
        dict(name="greeting_libzmq", direction="receive",
             note="What libzmq 4.3.5 sends: padding ends in 01 and minor version is 1 (ZMTP 3.1). Accept any "
                  "greeting with byte 0 = FF, byte 9 bit 0 set, major >= 3, mechanism NULL.",
             hex=libzmq_greeting.hex()),
        dict(name="ready_dealer", direction="send", note="READY command: Socket-Type DEALER (the minimum).",
             hex=command(b"READY", props((b"Socket-Type", b"DEALER"))).hex()),
        dict(name="ready_dealer_identity_x", direction="send",
             note="READY with an Identity and an application property X-Client (the host ignores both).",
             hex=command(b"READY", props((b"Socket-Type", b"DEALER"), (b"Identity", b"abc"),
                                         (b"X-Client", b"unity/0.1.0"))).hex()),
        dict(name="ready_router_libzmq", direction="receive",
             note="libzmq's ROUTER READY: Socket-Type ROUTER and an EMPTY Identity. Parse any property list.",
             hex=command(b"READY", props((b"Socket-Type", b"ROUTER"), (b"Identity", b""))).hex()),
        dict(name="frame_short_hello", direction="send",
             note="A one-part message: the msgpack `hello` header (msg_hello in msgpack.json), short frame.",
             hex=zmtp_frame(hello).hex()),
        dict(name="frame_empty", direction="both", note="A zero-length final frame.", hex=zmtp_frame(b"").hex()),
        dict(name="frame_short_255", direction="both", note="The largest short frame (size byte FF).",
             hex=zmtp_frame(b"\xab" * 255).hex()),
        dict(name="frame_long_256", direction="both", note="The smallest size libzmq sends as a LONG frame "
             "(flags 02, 8-byte big-endian size).", hex=zmtp_frame(b"\xcd" * 256).hex()),
        dict(name="frame_long_small", direction="receive",
             note="A LONG frame carrying only 3 bytes: legal, decoders must accept it.",
             hex=zmtp_frame(b"abc", long=True).hex()),
        dict(name="multipart_frame_raw_64x64", direction="receive",
             note="A `frame` message: header part (MORE, flags 01) then the 64*64*3 raw RGB8 pixels (LONG, flags "
                  "02). Pixel byte i = i mod 256.",
             hex=(zmtp_frame(frame_hdr, more=True) + zmtp_frame(pixels)).hex()),
        dict(name="multipart_more_long", direction="receive", note="MORE and LONG together: flags 03.",
             hex=(zmtp_frame(b"\x01" * 300, more=True) + zmtp_frame(b"\x02")).hex()),
        dict(name="ping_libzmq", direction="receive",
             note="libzmq heartbeat PING: TTL 0 (2 bytes, deciseconds), empty context.",
             hex=command(b"PING", b"\x00\x00").hex()),
        dict(name="pong_libzmq", direction="send", note="The answer to ping_libzmq: PONG with the same (empty) "
             "context.", hex=command(b"PONG", b"").hex()),
        dict(name="ping_ttl_context", direction="receive", note="PING with TTL 30 (3 s) and a 4-byte context.",
             hex=command(b"PING", b"\x00\x1e" + b"ctx1").hex()),
        dict(name="pong_ttl_context", direction="send", note="PONG echoing the context of ping_ttl_context.",
             hex=command(b"PONG", b"ctx1").hex()),
    ]
    return v


def write_json(path: Path, obj: dict) -> None:
    """UTF-8 with LF line ends on every OS (text mode would write CRLF on Windows): the tests compare bytes."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes((json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    os.replace(tmp, path)


def main() -> None:
    vectors = []
    for name, value in value_vectors() + message_vectors():
        data = pack(value)
        assert msgpack.unpackb(data, raw=False) == value
        vectors.append({"name": name, "hex": data.hex(), "value": tag(value)})
    for name, data, value in decode_only_vectors():
        assert msgpack.unpackb(data, raw=False) == value
        assert pack(value) != data, f"{name}: our encoders write this form, so it is no decode-only vector"
        vectors.append({"name": name, "hex": data.hex(), "value": tag(value), "decode_only": True})
    names = [v["name"] for v in vectors]
    assert len(names) == len(set(names))
    write_json(HERE / "msgpack.json", {
        "protocol": f"{MAJOR}.{MINOR}",
        "rules": "non-negative ints: smallest unsigned; negative ints: smallest signed; floats: float64; str/bin "
                 "smallest length class; map keys in the listed order. value: JSON, floats as {\"$f64\": x}, "
                 "bytes as {\"$bin\": hex}. decode_only: true = a form other encoders may write (float32, array32, "
                 "map32): decode hex to value, but encoding value gives other bytes. Generated by make_vectors.py.",
        "vectors": vectors})
    write_json(HERE / "zmtp.json", {
        "protocol": "ZMTP 3.0, NULL mechanism, DEALER side",
        "rules": "direction: send = what a client writes (byte-exact), receive = what a client must parse, "
                 "both = either. Generated by make_vectors.py.",
        "vectors": zmtp_vectors()})
    print(f"wrote {len(vectors)} msgpack vectors and {len(zmtp_vectors())} zmtp vectors to {HERE}")


if __name__ == "__main__":
    main()
