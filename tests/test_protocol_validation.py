"""Decoding and validation rules of docs/protocol.md §2, §4-§6, without sockets."""

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.host import protocol as P
from bridge.host.protocol import Limits, ProtocolError


def code_of(fn, *a):
    with pytest.raises(ProtocolError) as e:
        fn(*a)
    return e.value.code


def test_decode_rejects_non_maps_ext_and_oversize():
    assert code_of(P.decode, b"\xc1") == "bad_message"  # never-used byte
    assert code_of(P.decode, msgpack.packb([1, 2])) == "bad_message"
    assert code_of(P.decode, msgpack.packb({"no_type": 1})) == "bad_message"
    assert code_of(P.decode, msgpack.packb({"type": 5})) == "bad_message"
    assert code_of(P.decode, msgpack.packb({"type": "x", "e": msgpack.ExtType(5, b"a")})) == "bad_message"
    assert code_of(P.decode, msgpack.packb({"type": "x"}) + b"\x00") == "bad_message"  # trailing bytes
    assert code_of(P.decode, b"\x81" + b"\xa4type\xa1x" + b"", 3) == "too_large"
    assert P.decode(P.encode({"type": "ping", "client_ts": 1}))["client_ts"] == 1


def test_encode_pins_widths():
    assert P.encode({"a": 200}) == bytes.fromhex("81a161ccc8")
    assert P.encode({"a": -33}) == bytes.fromhex("81a161d0df")
    assert P.encode({"a": 1.5})[3] == 0xCB


@pytest.mark.parametrize("msg,code", [
    ({"type": "input"}, "bad_message"),  # missing action
    ({"type": "input", "action": -1}, "bad_argument"),  # an integer out of range, not a wrong type (§5)
    ({"type": "input", "action": True}, "bad_message"),  # bools are not ints
    ({"type": "input", "action": 1.0}, "bad_message"),
    ({"type": "input", "action": 1, "client_ts": "now"}, "bad_message"),
    ({"type": "input", "action": 1, "client_ts": float("nan")}, "bad_message"),
    ({"type": "branch", "frame": "3"}, "bad_message"),
    ({"type": "start", "fps": 0.5}, "bad_argument"),
    ({"type": "start", "mode": "turbo"}, "bad_argument"),
    ({"type": "start", "seed": -1}, "bad_argument"),  # not a numpy error at reset time (was bad_prompt)
    ({"type": "reset", "seed": 2**63}, "bad_argument"),  # C# and GDScript could not read it back
    ({"type": "start", "image": "not bytes"}, "bad_message"),
    ({"type": "start", "action_map": {"a": -1}}, "bad_argument"),  # a value out of range, named (below)
    ({"type": "start", "text": "x" * 4097}, "bad_message"),
    ({"type": "settings", "steps": 0}, "bad_argument"),
    ({"type": "settings", "steps": 65}, "bad_argument"),
    ({"type": "settings", "temperature": -1.0}, "bad_argument"),
    ({"type": "settings", "event_cfg": -0.5}, "bad_argument"),
    ({"type": "settings", "event_cfg": "2"}, "bad_message"),
    ({"type": "settings", "cfg": -1}, "bad_argument"),  # the sandbox ignores cfg: the protocol layer refuses it
    ({"type": "settings", "top_p": 0.0}, "bad_argument"),
    ({"type": "settings", "top_p": 1.5}, "bad_argument"),
    ({"type": "settings", "fps": 121}, "bad_argument"),
    ({"type": "edit", "x": 0, "y": 0}, "bad_message"),  # no layer
    ({"type": "edit", "layer": b"png", "x": 0}, "bad_message"),  # no y
    ({"type": "edit", "layer": "not bytes", "x": 0, "y": 0}, "bad_message"),
    ({"type": "edit", "layer": b"png", "x": 1.5, "y": 0}, "bad_message"),
    ({"type": "edit", "layer": b"png", "x": 0, "y": True}, "bad_message"),
    ({"type": "hello", "codecs": "raw", "protocol_major": 1}, "bad_message"),
    ({"type": "ping", "req_id": -5}, "bad_argument"),
    ({"type": "ping", "req_id": 2**64}, "bad_argument"),
    ({"type": "ping", "req_id": 1.5}, "bad_message"),
    ({"type": "branch", "frame": -1}, "bad_argument"),
    ({"type": "settings", "steps": -1}, "bad_argument"),
])
def test_validate_rejects(msg, code):
    assert code_of(P.validate, msg) == code


@pytest.mark.parametrize("msg, says", [
    ({"type": "branch", "frame": -1}, "`frame` must be a non-negative integer, got -1"),  # out of range: the value
    ({"type": "input", "action": -3}, "`action` must be an action id (uint) or name (str), got -3"),
    ({"type": "ping", "req_id": -5}, "`req_id` must be a non-negative integer, got -5"),
    ({"type": "branch", "frame": "3"}, "`frame` must be a non-negative integer, got str"),  # wrong type: the type
    ({"type": "branch", "frame": True}, "`frame` must be a non-negative integer, got bool"),
    ({"type": "start", "resume": 5}, "`resume` must be a string, got int"),  # an int where a string belongs: its type
    ({"type": "start", "backend": 3}, "`backend` must be a string, got int"),
    ({"type": "reset", "text": -2}, "`text` must be a string, got int"),
    ({"type": "event", "event_type": 5}, "`event_type` must be a string, got int"),
    ({"type": "settings", "mode": 3}, "`mode` must be a string, got int"),
    ({"type": "settings", "unmask": 1}, "`unmask` must be a string, got int"),
    ({"type": "settings", "steps": 2.5}, "`steps` must be an integer, got float"),
    ({"type": "settings", "temperature": "hot"}, "`temperature` must be a finite number, got str"),
    ({"type": "edit", "layer": 7, "x": 0, "y": 0}, "`layer` must be bytes (msgpack bin), got int"),
    ({"type": "edit", "layer": b"png", "x": "0", "y": 0}, "`x` must be an integer, got str"),
    ({"type": "record_start", "path": 5}, "`path` must be a string, got int"),
    ({"type": "hello", "protocol_major": 1, "codecs": [1]}, "`codecs` must be a list of short strings, got list"),
    ({"type": "status", "req_id": "a"}, "`req_id` must be a non-negative integer, got str"),
    ({"type": "ping", "req_id": 1.5}, "`req_id` must be a non-negative integer, got float"),
    ({"type": "ping", "client_ts": "now"}, "`client_ts` must be a finite number, got str"),
])
def test_range_errors_name_the_value_and_type_errors_the_type(msg, says):
    with pytest.raises(ProtocolError) as e:
        P.validate(msg)
    out_of_range = says.endswith(("-1", "-3", "-5"))  # an integer where one belongs: bad_argument (§5)
    assert e.value.code == ("bad_argument" if out_of_range else "bad_message") and e.value.message == says


@pytest.mark.parametrize("action_map, code, says", [
    ({"jump": -1}, "bad_argument", "`action_map` maps 'jump' to -1: action ids run from 0 to "
                                   "session.num_latent_actions - 1"),
    ({"jump": 1.0}, "bad_message", "`action_map` maps 'jump' to a float: send an action id, an integer 0 to "
                                   "session.num_latent_actions - 1"),
    ({"jump": True}, "bad_message", "`action_map` maps 'jump' to a bool: send an action id, an integer 0 to "
                                    "session.num_latent_actions - 1"),
    ({"jump": "2"}, "bad_message", "`action_map` maps 'jump' to a str: send an action id, an integer 0 to "
                                   "session.num_latent_actions - 1"),
    ({7: 1}, "bad_message", "`action_map` key 7 must be an action name (a string of at most 256 characters), got int"),
    ({"j" * 300: 1}, "bad_message", "`action_map` key 'jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj must be an action "
                                    "name (a string of at most 256 characters), got a name of 300 characters"),
    ({f"a{i}": 0 for i in range(1025)}, "bad_message", "`action_map` holds 1025 names; send at most 1024"),
    ([1], "bad_message", "`action_map` must be a map {name: action id}, got list"),
])
def test_action_map_errors_name_the_entry_and_the_range(action_map, code, says):
    with pytest.raises(ProtocolError) as e:
        P.validate({"type": "start", "action_map": action_map})
    assert (e.value.code, e.value.message) == (code, says)


def test_an_overlong_action_name_is_explained():
    with pytest.raises(ProtocolError, match="action name of 300 characters; names are at most 256"):
        P.validate({"type": "input", "action": "x" * 300})


def test_validate_accepts_and_normalises():
    m = P.validate({"type": "input", "action": "jump", "client_ts": 12, "seq": 3, "extra": [1]})
    assert m == {"type": "input", "req_id": None, "action": "jump", "client_ts": 12.0, "seq": 3}
    assert isinstance(m["client_ts"], float)
    m = P.validate({"type": "start", "fps": 24, "seed": 2**63 - 1, "text": None})
    assert m["fps"] == 24.0 and m["seed"] == 2**63 - 1 and m["mode"] is None
    assert P.validate({"type": "future_thing", "x": 1}) == {"type": "future_thing", "x": 1}
    m = P.validate({"type": "edit", "req_id": 4, "layer": b"\x89PNG", "x": -40, "y": 12, "z": 1})
    assert m == {"type": "edit", "req_id": 4, "layer": b"\x89PNG", "x": -40, "y": 12}
    m = P.validate({"type": "settings", "event_cfg": 2})
    assert m["event_cfg"] == 2.0 and isinstance(m["event_cfg"], float) and m["steps"] is None


def test_reject_message_and_codec_choice():
    r = P.reject(2, 0)
    assert r["message"] == "client speaks protocol 2.0, host speaks 1.3: update the plugin or the host"
    assert P.reject("x" * 10**6, None)["message"].startswith("client speaks protocol ?.0")
    assert P.choose_codec(["webp", "jpeg", "png"]) == "jpeg" and P.choose_codec([]) == "raw"


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["type", "req_id", "action", "frame", "fps", "mode", "steps", "text",
                                        "image", "codecs", "protocol_major", "action_map", "seed", "layer", "x", "y",
                                        "event_cfg"]),
                       st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5)
                       | st.binary(max_size=5) | st.lists(st.integers(), max_size=3)),
       st.sampled_from(sorted(P.SCHEMAS)))
def test_validate_only_raises_protocol_errors(msg, mtype):
    msg["type"] = msg.get("type") if isinstance(msg.get("type"), str) else mtype
    try:
        P.validate(msg, Limits())
    except ProtocolError as e:
        assert e.code in ("bad_message", "bad_argument") and e.message


def test_a_small_header_cannot_unpack_into_millions_of_objects():
    import tracemalloc

    bomb = b"\xdd" + (16 * 1024 * 1024).to_bytes(4, "big") + b"\x90" * (16 * 1024 * 1024)  # 16 MiB: 16M empty arrays
    with pytest.raises(ProtocolError, match="max_array_len"):
        P.decode(bomb)
    nested = P.encode({"type": "ping", "x": [[[[] for _ in range(16)] for _ in range(1024)] for _ in range(1024)]})
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="over 65536 array and map items"):
            P.decode(nested)
        assert tracemalloc.get_traced_memory()[1] < 50e6  # stopped early: 16M lists would take ~1 GB
    finally:
        tracemalloc.stop()
    big_map = {"type": "start", "action_map": {f"a{i}": i for i in range(1024)}}
    assert P.validate(P.decode(P.encode(big_map)))["action_map"] == big_map["action_map"]  # real messages still fit


def test_decode_accepts_a_message_of_exactly_the_limit():
    data = P.encode({"type": "ping", "client_ts": 1.0})
    assert P.decode(data, len(data))["type"] == "ping"  # the limit is inclusive (docs/protocol.md §6)
    with pytest.raises(ProtocolError) as e:
        P.decode(data, len(data) - 1)
    assert e.value.code == "too_large"


def test_req_id_zero_is_a_valid_req_id():
    assert P.req_id_of({"type": "ping", "req_id": 0}) == 0
    assert P.req_id_of({"type": "ping", "req_id": P.UINT64_MAX}) == P.UINT64_MAX
    assert P.req_id_of({"type": "ping", "req_id": -1}) is None
    assert P.req_id_of({"type": "ping", "req_id": True}) is None


def test_limits_are_inclusive_at_both_ends():
    assert P.validate({"type": "start", "fps": 120.0})["fps"] == 120.0
    assert P.validate({"type": "start", "fps": 1.0})["fps"] == 1.0
    assert P.validate({"type": "settings", "steps": 64})["steps"] == 64
    assert P.validate({"type": "settings", "top_p": 1.0})["top_p"] == 1.0
    assert P.validate({"type": "start", "text": "x" * 4096})["text"] == "x" * 4096
    assert P.validate({"type": "start", "text": "\u00e9" * 2048})["text"] == "\u00e9" * 2048  # 4096 UTF-8 bytes
    for msg in ({"type": "settings", "top_p": 0.0}, {"type": "settings", "top_p": 1.01},
                {"type": "start", "fps": 120.5}):
        with pytest.raises(ProtocolError) as e:
            P.validate(msg)
        assert e.value.code == "bad_argument", msg


def test_branch_needs_a_frame():
    with pytest.raises(ProtocolError) as e:
        P.validate({"type": "branch", "req_id": 3})
    assert e.value.code == "bad_message" and "`branch` needs `frame`" in e.value.message



def test_an_oversized_container_is_named_as_such():
    with pytest.raises(ProtocolError, match="an array or map in the header holds over 4096 items") as e:
        P.decode(P.encode({"type": "input", "action": 0, "extra": list(range(5000))}))
    assert "not a msgpack message" not in e.value.message


@pytest.mark.parametrize("data, says", [
    (b"\xc1", "not a msgpack message (FormatError at first byte 0xc1): encode the header as one msgpack map"),
    (b"", "not a msgpack message (ValueError: Unpack failed: incomplete input): encode the header as one msgpack map"),
])
def test_bytes_that_are_not_msgpack_are_named_never_with_an_empty_reason(data, says):
    with pytest.raises(ProtocolError) as e:
        P.decode(data)
    assert (e.value.code, e.value.message) == ("bad_message", says)


def test_a_resume_ignores_the_other_start_keys_even_out_of_range_ones():
    msg = P.validate({"type": "start", "req_id": 2, "resume": "s-1", "mode": "turbo", "fps": 0, "seed": -1,
                      "text": 5, "action_map": {"x": 99}})
    assert msg["resume"] == "s-1" and msg["req_id"] == 2
    assert all(msg[k] is None for k in ("mode", "fps", "seed", "text", "action_map"))
    with pytest.raises(ProtocolError, match="`resume` must be a string"):
        P.validate({"type": "start", "resume": 5})


def test_a_big_jpeg_prompt_is_decoded_at_a_reduced_scale_and_a_png_whole():
    import io

    import numpy as np
    from PIL import Image

    from bridge.host.pixels import PROMPT_DECODE_PX, decode_prompt_image

    big = np.zeros((2048, 3072, 3), np.uint8)
    big[:, :1536] = (200, 30, 30)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "JPEG", quality=95)
    img = decode_prompt_image(buf.getvalue())
    assert img.shape == (512, 768, 3)  # 1/4 scale: the smallest JPEG scale still >= PROMPT_DECODE_PX on each side
    assert min(img.shape[:2]) >= PROMPT_DECODE_PX and abs(int(img[100, 100, 0]) - 200) < 8
    small = np.arange(300 * 200 * 3, dtype=np.uint8).reshape(300, 200, 3)
    buf = io.BytesIO()
    Image.fromarray(small).save(buf, "PNG")
    assert np.array_equal(decode_prompt_image(buf.getvalue()), small)  # lossless and small: untouched


@pytest.mark.parametrize("msg, says", [
    ({"type": "settings", "cfg": -1}, "cfg -1 is outside its range: >= 0 (1 = off)"),
    ({"type": "settings", "event_cfg": -0.5}, "event_cfg -0.5 is outside its range: >= 0 (1 = off)"),
    ({"type": "settings", "temperature": -2}, "temperature -2 is outside its range: >= 0 (0 = greedy)"),
    ({"type": "settings", "top_p": 0}, "top_p 0 is outside its range: in (0, 1] (1 = off)"),
    ({"type": "settings", "steps": 65}, "steps 65 is outside its range: 1-64"),
    ({"type": "settings", "steps": -1}, "steps -1 is outside its range: 1-64"),  # one check, one wording
    ({"type": "settings", "steps": 0}, "steps 0 is outside its range: 1-64"),
    ({"type": "start", "seed": -1}, "seed -1 is outside its range: 0-9223372036854775807 (leave it nil for the host "
                                    "to draw one)"),
    ({"type": "reset", "seed": 2**63}, "seed 9223372036854775808 is outside its range: 0-9223372036854775807 (leave "
                                       "it nil for the host to draw one)"),
    ({"type": "start", "fps": 0.5}, "fps 0.5 is outside its range: 1-120"),
])
def test_setting_ranges_name_field_value_and_range(msg, says):
    with pytest.raises(ProtocolError) as e:
        P.validate(msg)
    assert e.value.code == "bad_argument" and e.value.message == says


def test_settings_at_the_edges_of_their_ranges_pass():
    out = P.validate({"type": "settings", "cfg": 0, "event_cfg": 0, "temperature": 0, "top_p": 1, "steps": 64,
                      "fps": 1})
    assert (out["cfg"], out["top_p"], out["steps"], out["fps"]) == (0.0, 1.0, 64, 1.0)


def test_prompt_kinds_names_the_capabilities_a_prompt_needs():
    assert P.prompt_kinds("a snowy cave", b"png", b"png") == ["text_prompt", "image_prompt", "sketch_prompt"]
    assert P.prompt_kinds(" \n\t", None, b"") == ["sketch_prompt"]  # blank text is no prompt; empty bytes are one
    assert P.prompt_kinds(None, None, None) == [] and P.prompt_kinds("", b"", None) == ["image_prompt"]


def test_a_16_bit_grey_png_prompt_or_layer_keeps_its_shades_and_its_transparent_grey():
    """PIL's convert("RGB") clipped 16-bit grey at 255: the prompt came out 99.6% white."""
    import io

    import numpy as np
    from PIL import Image

    from bridge.host.pixels import decode_layer, decode_prompt_image

    grey = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)  # 0..65520: a ramp through every 8-bit shade
    want = np.repeat((grey >> 8).astype(np.uint8)[..., None], 3, axis=2)
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, "PNG")
    assert np.array_equal(decode_prompt_image(buf.getvalue()), want)
    assert np.array_equal(decode_layer(buf.getvalue(), 64, 64), want)
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, "PNG", transparency=16)  # tRNS names one 16-bit grey, not its 8-bit shade
    layer = decode_layer(buf.getvalue(), 64, 64)
    assert np.array_equal(layer[..., :3], want) and np.argwhere(layer[..., 3] == 0).tolist() == [[0, 1]]
    prompt = decode_prompt_image(buf.getvalue())
    assert prompt[0, 1].tolist() == [255, 255, 255] and prompt[0, 0].tolist() == [0, 0, 0]  # transparent over white
