"""Protocol v1.3 codec and message validation (docs/protocol.md), shared by the host and the Python client."""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import msgpack

from bridge.model.config import UNMASK_ORDERS  # (1.2) `settings.unmask`
from bridge.values import SEED_MAX, is_int, is_number, plural

PROTOCOL_MAJOR, PROTOCOL_MINOR = 1, 3
DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"  # where `worldbridge serve` binds and where clients look first
# error code -> (the minor it appeared in, the code older clients get): the host sends no client a code it does not know
NEWER_CODES = {"unsupported": (1, "bad_argument"), "recording_stopped": (3, "backend_error")}
try:
    HOST_NAME = f"worldbridge/{metadata.version('worldbridge')}"
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    HOST_NAME = "worldbridge/0+source"

CODECS = ("raw", "png", "jpeg")  # what the host can encode, in its own preference order
MODES = ("realtime", "step")
CAPABILITIES = ["realtime", "step", "events", "text_prompt", "image_prompt", "sketch_prompt", "branch", "record",
                "resume", "settings", "text_events", "edit"]
# what one session's backend may be able to do (`session.capabilities`, 1.1), in this order
SESSION_CAPABILITIES = ("text_prompt", "image_prompt", "sketch_prompt", "events", "text_events", "edit")
EVENT_REFUSED = "was refused by the backend"  # an event the backend refused at its frame: `error` bad_argument with
# no req_id, "event 'x' was refused by the backend: why" (event_refused); clients before the event's own keys tell it
# from other errors by these words
MODEL_KNOBS = ("steps", "temperature", "cfg", "event_cfg", "top_p", "unmask")  # settings a backend's `configure` takes
UINT64_MAX = 2**64 - 1


@dataclass
class Limits:
    """Host limits from docs/protocol.md §6; `welcome.limits` reports the first three."""

    max_message_bytes: int = 16 * 1024 * 1024
    max_sessions: int = 64
    idle_timeout_s: float = 60.0
    max_string_bytes: int = 4096
    branch_window: int = 1024
    branch_window_bytes: int = 256 * 1024 * 1024  # per session; the window shrinks for very large frames
    max_peers: int = 4096  # handshaken peers without a session are forgotten oldest-first beyond this
    fps_min: float = 1.0
    fps_max: float = 120.0
    steps_min: int = 1
    steps_max: int = 64


class ProtocolError(Exception):
    """A protocol-level failure with its error `code` (docs/protocol.md §5) and a message that says what to do."""

    def __init__(self, code: str, message: str, fatal: bool = False, capability: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fatal = fatal
        self.capability = capability  # the session capability a refused prompt or event kind needs (`error` key)


def prompt_kinds(text: str | None, image: Any, sketch: Any) -> list[str]:
    """The capabilities (`<key>_prompt`) a start or reset with these keys needs, one rule for the host's refusal and
    the editor's: blank text is no text prompt."""
    given = {"text_prompt": bool(text and text.strip()), "image_prompt": image is not None,
             "sketch_prompt": sketch is not None}
    return [cap for cap, asked in given.items() if asked]


# --- Codec ---

def encode(msg: dict) -> bytes:
    """Pack a header with the pinned rules (python-msgpack already writes smallest ints and float64)."""
    return msgpack.packb(msg, use_bin_type=True)


MAX_CONTAINER_LEN = 4096  # items in one array or map (an action_map holds at most 1024)
MAX_HEADER_ITEMS = 65536  # array and map items in one header, all containers together


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack ext type {code} is not allowed")


RAISE_LIMIT = "start the host with a larger `worldbridge serve --max-message-bytes`"


def too_large(size: int, limit: int, header: Any = None, max_string_bytes: int = Limits.max_string_bytes
              ) -> ProtocolError:
    """too_large naming what to shrink, as the Godot addon words it: the header's biggest bin or str when it is most
    of the message (a long text is not blamed on an image), else what usually makes a message big."""
    msg = header if isinstance(header, dict) else {}
    kind = f"`{msg['type']}` message" if isinstance(msg.get("type"), str) else "message"
    sizes = {k: len(v) if isinstance(v, bytes) else len(v.encode("utf-8", "surrogatepass"))
             for k, v in msg.items() if isinstance(k, str) and isinstance(v, (bytes, str))}
    key = max(sizes, key=sizes.get, default=None)
    if key is None or 2 * sizes[key] < size:  # undecoded, or the bulk is in parts beyond the header
        fix = f"images, sketches and layers are what make messages big: send smaller ones, or {RAISE_LIMIT}"
    elif isinstance(msg[key], str):  # a bigger limit would not help: strings hold at most max_string_bytes
        fix = f"its {key} is {plural(sizes[key], 'byte')}: use a shorter {key} (at most {plural(max_string_bytes, 'byte')})"
    else:
        fix = f"its {key} is {plural(sizes[key], 'byte')}: use a smaller {key}, or {RAISE_LIMIT}"
    return ProtocolError("too_large", f"{kind} of {plural(size, 'byte')} is over the host's {limit}-byte limit: {fix}")


def decode(data: bytes, max_bytes: int | None = None) -> dict:
    """Unpack one header; ProtocolError(bad_message/too_large) for anything that is not a map with a str `type`."""
    if max_bytes is not None and len(data) > max_bytes:
        raise too_large(len(data), max_bytes)
    items = 0

    def counted(container: Any) -> Any:
        nonlocal items
        items += len(container) + 1
        if items > MAX_HEADER_ITEMS:  # a few bytes each, a Python object each: bound the memory a header can take
            raise ProtocolError("bad_message", f"the header holds over {MAX_HEADER_ITEMS} array and map items: headers "
                                               "are small maps; send pixels and other bulk data as bin")
        return container

    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_no_ext, timestamp=0,
                              max_array_len=MAX_CONTAINER_LEN, max_map_len=MAX_CONTAINER_LEN,
                              list_hook=counted, object_hook=counted)
    except ProtocolError:
        raise
    except Exception as e:  # msgpack raises several types (ExtraData, FormatError, StackError, ValueError, ...)
        if isinstance(e, ValueError) and "exceeds max_" in str(e):  # msgpack's words for a container too long
            raise ProtocolError("bad_message", f"an array or map in the header holds over {MAX_CONTAINER_LEN} items "
                                               f"({e}): headers are small maps; send bulk data as bin") from None
        why = f"{type(e).__name__}: {e}" if str(e) else f"{type(e).__name__} at first byte 0x{data[:1].hex() or '--'}"
        raise ProtocolError("bad_message", f"not a msgpack message ({why}): encode the header as one msgpack "
                                           "map") from None
    if not isinstance(msg, dict):
        raise ProtocolError("bad_message", f"header is a msgpack {type(msg).__name__}, not a map")
    if not isinstance(msg.get("type"), str):
        raise ProtocolError("bad_message", "header has no string `type` key")
    return msg


def req_id_of(msg: dict) -> int | None:
    """The message's req_id when it is a valid one, so that an error about the message still answers its request."""
    rq = msg.get("req_id")
    return rq if is_int(rq) and 0 <= rq <= UINT64_MAX else None


# --- Validation of client -> host messages ---
# kind per key: uint, int, float, str, bin, bool, strlist, action, actionmap. Every key may be nil (= absent).

SCHEMAS: dict[str, dict[str, str]] = {
    "hello": {"protocol_major": "uint", "protocol_minor": "uint", "client": "str", "codecs": "strlist"},
    "start": {"backend": "str", "mode": "str", "fps": "float", "seed": "int", "text": "str", "image": "bin",
              "sketch": "bin", "action_map": "actionmap", "resume": "str"},
    "input": {"action": "action", "client_ts": "float", "seq": "uint"},
    "event": {"event_type": "str", "text": "str"},
    "reset": {"seed": "int", "text": "str", "image": "bin", "sketch": "bin"},
    "branch": {"frame": "uint"},
    "settings": {"steps": "int", "temperature": "float", "cfg": "float", "event_cfg": "float", "fps": "float",
                 "mode": "str", "top_p": "float", "unmask": "str"},
    "edit": {"layer": "bin", "x": "int", "y": "int"},
    "record_start": {"path": "str"},
    "record_stop": {},
    "status": {},
    "ping": {"client_ts": "float"},
    "bye": {},
}
REQUIRED = {"hello": ("protocol_major",), "input": ("action",), "branch": ("frame",), "edit": ("layer", "x", "y")}


def _check(kind: str, key: str, v: Any, limits: Limits) -> Any:
    """Return v (floats normalised) or raise a ProtocolError naming the key and the expected type: bad_argument for an
    integer out of the kind's range (§5), bad_message for a wrong type."""
    ok = False
    if kind == "uint":
        ok = is_int(v) and 0 <= v <= UINT64_MAX
    elif kind == "int":
        ok = is_int(v) and -(2**63) <= v <= UINT64_MAX
    elif kind == "float":
        ok = (is_int(v) or isinstance(v, float)) and math.isfinite(float(v))
        if ok:
            v = float(v)
    elif kind == "str":
        ok = isinstance(v, str) and len(v.encode("utf-8", "surrogatepass")) <= limits.max_string_bytes
        if isinstance(v, str) and not ok:
            raise ProtocolError("bad_message", f"`{key}` is longer than {plural(limits.max_string_bytes, 'byte')}")
    elif kind == "bin":
        ok = isinstance(v, bytes)
    elif kind == "bool":
        ok = isinstance(v, bool)
    elif kind == "strlist":
        ok = isinstance(v, list) and len(v) <= 64 and all(isinstance(x, str) and len(x) <= 64 for x in v)
    elif kind == "action":
        ok = (is_int(v) and 0 <= v <= UINT64_MAX) or (isinstance(v, str) and len(v) <= 256)
        if isinstance(v, str) and not ok:
            raise ProtocolError("bad_message", f"`{key}` is an action name of {plural(len(v), 'character')}; names are at most 256")
    elif kind == "actionmap":
        ok = isinstance(v, dict)
        if ok:
            _check_action_map(v)
    if not ok:
        expected = {"uint": "a non-negative integer", "int": "an integer", "float": "a finite number",
                    "str": "a string", "bin": "bytes (msgpack bin)", "bool": "a boolean",
                    "strlist": "a list of short strings", "action": "an action id (uint) or name (str)",
                    "actionmap": "a map {name: action id}"}[kind]
        # an integer where one belongs is the right type, out of range (-1): bad_argument, as §5 says
        code = "bad_argument" if kind in NUMERIC_KINDS and is_int(v) else "bad_message"
        raise ProtocolError(code, f"`{key}` must be {expected}, got {_got(v, kind in NUMERIC_KINDS)}")
    return v


def _check_action_map(v: dict) -> None:
    """Name the entry of an `action_map` that is wrong and what it may hold (the backend checks the upper bound)."""
    if len(v) > 1024:
        raise ProtocolError("bad_message", f"`action_map` holds {plural(len(v), 'name')}; send at most 1024")
    for name, aid in v.items():
        if not isinstance(name, str) or len(name) > 256:
            got = f"a name of {plural(len(name), 'character')}" if isinstance(name, str) else type(name).__name__
            raise ProtocolError("bad_message", f"`action_map` key {name!r:.40} must be an action name (a string of at "
                                               f"most 256 characters), got {got}")
        if not is_int(aid):
            raise ProtocolError("bad_message", f"`action_map` maps {name!r} to a {type(aid).__name__}: send an action "
                                               "id, an integer 0 to session.num_latent_actions - 1")
        if aid < 0:
            raise ProtocolError("bad_argument", f"`action_map` maps {name!r} to {aid}: action ids run from 0 to "
                                                "session.num_latent_actions - 1")


NUMERIC_KINDS = ("uint", "int", "float", "action")  # kinds an integer is the right type for


def _got(v: Any, numeric: bool) -> str:
    """What an error says it got: an integer where one belongs, out of range, by its value (-1); a wrong type by its
    type (`resume: 5` is an int, not a bad string)."""
    return str(v) if numeric and is_int(v) else type(v).__name__


def setting_ranges(limits: Limits) -> dict[str, tuple[float, float, bool, str]]:
    """Each number a client sets (`start`, `reset`, `settings`) as (low, high, low excluded, rule), so the sandbox, which
    ignores the model knobs, refuses what a world model would; docs/protocol.md §6 lists them."""
    return {"seed": (0, SEED_MAX, False, f"0-{SEED_MAX} (leave it nil for the host to draw one)"),
            "steps": (limits.steps_min, limits.steps_max, False, f"{limits.steps_min}-{limits.steps_max}"),
            "temperature": (0.0, math.inf, False, ">= 0 (0 = greedy)"),
            "cfg": (0.0, math.inf, False, ">= 0 (1 = off)"),
            "event_cfg": (0.0, math.inf, False, ">= 0 (1 = off)"),
            "top_p": (0.0, 1.0, True, "in (0, 1] (1 = off)"),
            "fps": (limits.fps_min, limits.fps_max, False, f"{limits.fps_min:g}-{limits.fps_max:g}")}


def setting_problem(key: str, v: Any, limits: Limits) -> str | None:
    """Why `v` is no value for the setting `key` (`unmask` or a setting_ranges key), or None: a client's message and
    a replayed recording's knobs are held to the one table."""
    if key == "unmask":
        return None if v in UNMASK_ORDERS else f"unmask {v!r} is not one of {list(UNMASK_ORDERS)}"
    low, high, low_open, rule = setting_ranges(limits)[key]
    whole = {**SCHEMAS["start"], **SCHEMAS["settings"]}[key] == "int"
    if not (is_int(v) if whole else is_number(v) and math.isfinite(v)):
        return f"{key} {v!r} is not {'a whole' if whole else 'a finite'} number (its range: {rule})"
    if (low < v if low_open else low <= v) and v <= high:
        return None
    shown = f"{v:g}" if isinstance(v, float) else v  # a seed by all its digits
    return f"{key} {shown} is outside its range: {rule}"


def validate(msg: dict, limits: Limits | None = None) -> dict:
    """Check a decoded client message against its schema; returns a dict holding every schema key (nil if absent).

    Unknown keys are dropped; unknown types pass through untouched (the host ignores them).
    """
    limits = limits or Limits()
    mtype = msg["type"]
    req_id = msg.get("req_id")
    if req_id is not None:
        _check("uint", "req_id", req_id, limits)
    schema = SCHEMAS.get(mtype)
    if schema is None:
        return msg
    if mtype == "start" and msg.get("resume") is not None:  # a resume ignores the other keys (§4 start)
        msg = {"type": mtype, "req_id": req_id, "resume": msg["resume"]}
    out: dict[str, Any] = {"type": mtype, "req_id": req_id}
    for key, kind in schema.items():
        v = msg.get(key)
        out[key] = None if v is None else _check(kind, key, v, limits)
    for key in REQUIRED.get(mtype, ()):
        if out[key] is None:
            raise ProtocolError("bad_message", f"`{mtype}` needs `{key}`")
    if out.get("mode") is not None and out["mode"] not in MODES:
        raise ProtocolError("bad_argument", f"mode {out['mode']!r} is not one of {list(MODES)}")
    for key in (*setting_ranges(limits), "unmask"):
        v = out.get(key)  # only `settings` has these keys, `start` an fps, `start` and `reset` a seed
        problem = None if v is None else setting_problem(key, v, limits)
        if problem:
            raise ProtocolError("bad_argument", problem)
    if mtype == "record_start" and out["path"] == "":  # no client sends "" on purpose: it is a lost file name
        raise ProtocolError("bad_argument", "recording path is empty: give a file name ending in .wbrec, or leave "
                                            "`path` out for the host to name the file")
    return out


# --- Host -> client messages (keys in the documented order) ---

def welcome(codec: str, backends: list[str], default_backend: str, limits: Limits) -> dict:
    return {"type": "welcome", "protocol_major": PROTOCOL_MAJOR, "protocol_minor": PROTOCOL_MINOR, "host": HOST_NAME,
            "codec": codec, "capabilities": list(CAPABILITIES), "backends": backends,
            "default_backend": default_backend,
            "limits": {"max_message_bytes": limits.max_message_bytes, "max_sessions": limits.max_sessions,
                       "idle_timeout_s": float(limits.idle_timeout_s)}}


def reject(client_major: Any, client_minor: Any) -> dict:
    major = client_major if is_int(client_major) and 0 <= client_major < 10**6 else "?"
    minor = client_minor if is_int(client_minor) and 0 <= client_minor < 10**6 else 0
    theirs = f"{major}.{minor}"
    return {"type": "reject", "code": "version_mismatch",
            "message": f"client speaks protocol {theirs}, host speaks {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}: "
                       "update the plugin or the host",
            "protocol_major": PROTOCOL_MAJOR, "protocol_minor": PROTOCOL_MINOR}


def ok(req_id: int | None, request: str, **extra: Any) -> dict:
    return {"type": "ok", "req_id": req_id, "request": request, **extra}


def error(code: str, message: str, req_id: int | None = None, fatal: bool = False, **extra: Any) -> dict:
    """An `error` in §5's key order; `extra` carries a code's own keys (`recording_stopped`'s path and frames)."""
    return {"type": "error", "req_id": req_id, "code": code, "message": message, "fatal": fatal, **extra}


def event_refused(event_type: str | None, text: str | None, event_req_id: int | None, why: str) -> dict:
    """The `error` for an accepted event the backend refused at its frame: no request is answered (its `ok` went
    earlier), so the event's own req_id, type and text say which one it was (§4 event)."""
    return error("bad_argument", f"event {event_type or text!r} {EVENT_REFUSED}: {why}",
                 event_req_id=event_req_id, event_type=event_type, text=text)


def pong(req_id: int | None, client_ts: float | None, host_ts: float) -> dict:
    return {"type": "pong", "req_id": req_id, "client_ts": client_ts, "host_ts": host_ts}


def choose_codec(client_codecs: list[str] | None) -> str:
    """First codec in the client's list the host supports; raw when none (raw is always supported)."""
    for c in client_codecs or []:
        if c in CODECS:
            return c
    return "raw"
