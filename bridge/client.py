"""`WorldClient`: the Python side of protocol v1.3 (docs/protocol.md; a guide: docs/python.md), used by the editor,
the Gym env, demo and bench.

Not thread-safe: use one client per thread (ZeroMQ sockets must stay on the thread that uses them).
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from bridge.host import protocol as P
from bridge.host.pixels import decode_pixels, encode_layer, encode_prompt_image
from bridge.host.protocol import ProtocolError
from bridge.values import SEED_MAX, is_int, is_whole

__all__ = ["Frame", "ProtocolError", "WorldClient"]


def client_ms() -> float:
    """The client clock in ms; `client_ts` and `received_ts` use it (same clock as the host on one machine)."""
    return time.perf_counter() * 1000.0


START_TIMEOUT_S = 120.0  # a first start may load a checkpoint and the text encoder on a busy CPU
BRANCH_TIMEOUT_S = 60.0  # a branch re-simulates up to a keyframe interval of frames (15 for the tiny world) at once

@dataclass
class Frame:
    """One frame as received, with the header fields that matter to a client."""

    session_id: str
    index: int
    epoch: int
    action: int
    client_ts: float | None
    seq: int | None
    host_ts: float
    timings: dict
    events: list[str]
    image: np.ndarray  # (H, W, 3) uint8
    received_ts: float  # client clock ms, same clock as client_ts
    header: dict = field(default_factory=dict, repr=False)
    answers_input: bool = False  # the first frame received that echoes its input (later ones repeat the echo)

    @property
    def latency_ms(self) -> float | None:
        """Input sent -> first frame received under it; None on later frames, which only repeat the echo."""
        return self.received_ts - self.client_ts if self.answers_input and self.client_ts is not None else None


def _whole(value: Any, what: str, top: int | None = None) -> int:
    """`value` as a plain int >= 0 (<= `top`): numpy integers pack, and a float or a string is refused, not cut."""
    if not is_whole(value) or value < 0 or (top is not None and value > top):
        raise ProtocolError("bad_argument", f"{what} must be an integer >= 0{'' if top is None else f' and <= {top}'},"
                                            f" got {value!r}")
    return int(value)


def text_unused_words(text: str | None, image: Any, sketch: Any) -> str | None:
    """What a start or reset the host took with these prompt parts says of its text, or None: an image wins over a
    text sent with it (docs/protocol.md); the client warns with these words and the editor shows them."""
    if P.prompt_kinds(text, image, sketch) != ["text_prompt", "image_prompt"]:
        return None
    return (f"the text prompt {text!r} is not used: the image starts the world as it is drawn (a world that reads a "
            "flat-colour image as a sketch uses both); send the text alone, or with a sketch, for the text to count")


class WorldClient:
    """One connection to a world host: handshake, one session at a time, frames newest-first."""

    def __init__(self, address: str = P.DEFAULT_ADDRESS, client_name: str = "python", timeout: float = 5.0,
                 codecs: tuple[str, ...] | list[str] = ("raw",), *, curve_server_key: bytes | str | None = None,
                 context: zmq.Context | None = None, max_buffered_frames: int = 64,
                 warn_text_unused: bool = True) -> None:
        self.address = address
        self.client_name = client_name
        self.timeout = timeout
        self.codecs = list(codecs)
        self.welcome: dict | None = None
        self.session: dict | None = None
        self.errors: deque[dict] = deque(maxlen=64)  # asynchronous errors (no req_id), newest last
        self.last_session_id: str | None = None  # the session a host restart or reconnect made this client lose
        self._frames: deque[Frame] = deque(maxlen=max_buffered_frames)
        self._waiting: int | None = None  # the req_id (-1: a hello) whose answer is awaited; other answers are late
        self._reply: dict | None = None  # its answer, once here
        self._req_id = 0
        self._seq = 0
        self._epoch = 0
        self._last_echo: tuple = (None, None)  # (seq, client_ts) of the newest frame: latency counts its first frame
        self._told_text_unused = not warn_text_unused  # warned once that a text sent with an image is not used
        self._closed = False
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 200)
        self._sock.setsockopt(zmq.RCVHWM, 64)
        self._sock.setsockopt(zmq.SNDHWM, 1000)
        self._sock.setsockopt(zmq.RCVBUF, 256 * 1024)
        if curve_server_key is not None:
            self._sock.curve_serverkey = curve_server_key.encode() if isinstance(curve_server_key, str) \
                else curve_server_key
            self._sock.curve_publickey, self._sock.curve_secretkey = zmq.curve_keypair()
        self._sock.connect(address)

    # --- context manager ---

    def __enter__(self) -> "WorldClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def socket(self) -> zmq.Socket:
        """The connection's ZeroMQ socket, to wait on in a zmq.Poller beside others (then `drain_frames()`): read and
        write only through the client, which files every message."""
        if self._closed:
            raise ProtocolError("closed", "this WorldClient is closed: make a new one")
        return self._sock

    # --- plumbing ---

    def _send(self, msg: dict) -> None:
        """Send one message; one over the welcome's `max_message_bytes` is refused here in the host's words (too_large),
        as the host would answer it (or drop the connection, over twice the limit)."""
        sock = self.socket
        data = P.encode(msg)
        limit = (self.welcome or {}).get("limits", {}).get("max_message_bytes")
        if is_int(limit) and len(data) > limit:
            raise P.too_large(len(data), limit, msg)
        sock.send(data)

    def _next_req(self) -> int:
        self._req_id += 1
        return self._await(self._req_id)

    def _await(self, req_id: int | None) -> int | None:
        """Make `req_id` the one answer to keep (None: none): an answer to an earlier request that timed out is late,
        and kept it would pile up over a long run on a slow host (or, a welcome, answer a later connect in the new
        one's place)."""
        self._waiting, self._reply = req_id, None
        return req_id

    def _receive(self, timeout_s: float | None) -> bool:
        """Receive and file one message (frame / reply / async error); False when nothing came in time."""
        timeout_ms = None if timeout_s is None else max(0, int(timeout_s * 1000))
        if not self.socket.poll(timeout_ms, zmq.POLLIN):
            return False
        parts = self._sock.recv_multipart()
        received = client_ms()
        try:
            msg = P.decode(parts[0])
        except ProtocolError:
            return True
        mtype, req_id = msg["type"], msg.get("req_id")
        answers_request = req_id is not None and req_id == self._waiting
        answers_hello = req_id is None and mtype in ("welcome", "reject") and self._waiting == -1
        if mtype == "frame":
            self._file_frame(msg, parts, received)
        elif answers_request or answers_hello:
            self._reply = msg
        elif mtype == "error":  # answers no request, or one whose wait timed out: nobody else will see it
            if msg.get("code") == "not_ready":
                msg = {**msg, "message": self._host_forgot_us()}
            self.errors.append(msg)
            if msg.get("fatal"):
                self.session = None
        return True  # anything else answers a request that timed out (or a hello no connect waits for): dropped

    def _file_frame(self, h: dict, parts: list[bytes], received: float) -> None:
        if self.session is not None and h.get("session_id") != self.session.get("session_id"):
            return  # a late frame of a session this client already replaced
        epoch = h.get("epoch", 0)
        if epoch < self._epoch:
            return  # a frame of a timeline the client already left (reset/branch)
        self._epoch = epoch
        self._stand(epoch, h["index"])
        if len(parts) < 2:
            raise ProtocolError("bad_message", "frame header arrived without its pixel part")
        image = decode_pixels(parts[1], h["codec"], h["width"], h["height"])
        echo = (h.get("seq"), h.get("client_ts"))  # the host repeats the input in force on every realtime frame
        first = echo[1] is not None and echo != self._last_echo
        if echo[1] is not None:  # reset/branch/edit frames echo nothing: the input in force is still the same one
            self._last_echo = echo
        self._frames.append(Frame(h["session_id"], h["index"], epoch, h["action"], h.get("client_ts"), h.get("seq"),
                                  h["host_ts"], h.get("timings", {}), h.get("events", []), image, received, h, first))

    def _wait_reply(self, what: str, timeout: float | None = None) -> dict:
        """Wait for the answer to the request `_await` names, buffering frames meanwhile; errors become
        ProtocolError."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while self._reply is None:
            left = deadline - time.monotonic()
            if left <= 0 or not self._receive(left):
                if self._reply is not None:
                    break
                raise self._give_up(f"no answer to `{what}`", timeout)
        reply = self._reply
        self._await(None)
        if reply["type"] == "error":
            if reply.get("code") == "not_ready":
                raise ProtocolError("not_ready", self._host_forgot_us(), True)
            if reply.get("fatal"):
                self.session = None
            cap = reply.get("capability")
            raise ProtocolError(reply.get("code", "error"), reply.get("message", ""), bool(reply.get("fatal")),
                                cap if isinstance(cap, str) else None)
        return reply

    def _give_up(self, what: str, timeout: float) -> ProtocolError:
        """Stop waiting for the request that timed out, so its late answer is filed as one no request waits for (an
        error in `errors`, a fatal one ending `session`), not kept for a wait that is over; its `timeout` error."""
        self._await(None)
        return self.timed_out(what, timeout)

    def timed_out(self, what: str, timeout: float) -> ProtocolError:
        """The `timeout` error for anything this host left unanswered: it names the two causes and their fixes."""
        return ProtocolError("timeout", f"{what} from {self.address} within {timeout:g} s: is the host still running "
                                        "(`worldbridge serve`), or slower than timeout= allows (raise it)?")

    def _host_forgot_us(self) -> str:
        """`not_ready`: the host no longer knows this client (it restarted, or the connection was made anew). The next
        start() greets it again; the session's id stays in `last_session_id` for start(resume=...). A client that never
        greeted it was not forgotten: it is told to greet first."""
        if self.welcome is None and self.session is None:
            return "this client has not greeted the host yet: call connect() or start() first"
        if self.session is not None:
            self.last_session_id = self.session["session_id"]
        self.welcome, self.session = None, None
        return ("the host no longer knows this client (it restarted, or the connection dropped): call start() for a "
                "new world" + (f", or start(resume={self.last_session_id!r}) to continue the last one (it is kept "
                               "for the host's idle timeout)" if self.last_session_id else ""))

    def _request(self, msg: dict, timeout: float | None = None) -> dict:
        req_id = self._next_req()
        self._send({"type": msg["type"], "req_id": req_id, **{k: v for k, v in msg.items() if k != "type"}})
        return self._wait_reply(msg["type"], timeout)

    def _need_session(self) -> dict:
        if self.session is None:
            raise ProtocolError("no_session", "no session: call start() first")
        return self.session

    # --- handshake and session ---

    def connect(self) -> dict:
        """hello -> welcome; ProtocolError on reject (version) or when no host answers."""
        self._await(-1)
        self._send({"type": "hello", "protocol_major": P.PROTOCOL_MAJOR, "protocol_minor": P.PROTOCOL_MINOR,
                    "client": self.client_name, "codecs": self.codecs})
        try:
            reply = self._wait_reply("hello")
        except ProtocolError as e:
            if e.code != "timeout":
                raise
            raise ProtocolError("no_host", f"no host at {self.address}: start one with `worldbridge serve`") from None
        if reply["type"] == "reject":
            raise ProtocolError(reply.get("code", "version_mismatch"), reply.get("message", "rejected"), True)
        self.welcome = reply
        return reply

    def start(self, backend: str | None = None, checkpoint: str | None = None, mode: str = "realtime",
              fps: float | None = None, seed: int | None = None, text: str | None = None,
              image: np.ndarray | bytes | None = None, sketch: np.ndarray | bytes | None = None,
              action_map: dict[str, int] | None = None, resume: str | None = None,
              timeout: float | None = None) -> dict:
        """Start (or resume) a session; returns the `session` message. Frame 0 follows right away. `self.session`
        is a copy of it kept current: `epoch`, `frame_index` (newest frame received) and `seed` follow the answers
        and frames, `settings`, `mode` and `fps` follow `settings()`. With no `fps` the world plays at its own rate
        (a world's footage fps, the sandbox game's 15): `session["fps"]` says the rate the host chose; 0, the engine
        clients' spelling of that, is refused here with the Python one (None).

        The host may be loading a checkpoint (and the text encoder) first, so this waits up to
        START_TIMEOUT_S (or `timeout`) rather than the client's per-request timeout.
        """
        if checkpoint is not None:
            raise ProtocolError("bad_argument", "the host chooses checkpoints: start it with "
                                                f"`worldbridge serve --checkpoint {checkpoint}` and pass backend="
                                                "'world_model'")
        fps = None if fps is None else float(fps)
        if fps is not None and fps <= 0:  # Unity's and Godot's spelling of "the world's own rate", which here is None
            raise ProtocolError("bad_argument", f"fps {fps:g}: pass fps=None for the world's own rate, or 1-120")
        if self.welcome is None:
            self.connect()
        msg = {"type": "start", "backend": backend, "mode": mode, "fps": fps,
               "seed": None if seed is None else _whole(seed, "seed", SEED_MAX), "text": text,
               "image": None if image is None else encode_prompt_image(image),
               "sketch": None if sketch is None else encode_prompt_image(sketch),
               "action_map": action_map, "resume": resume}
        reply = self._request(msg, timeout if timeout is not None else max(self.timeout, START_TIMEOUT_S))
        self._warn_text_unused(text, image, sketch)
        self.session = dict(reply)  # a copy that frames and answers keep current; the reply stays as the host sent it
        self._epoch = reply["epoch"]
        self._frames = deque((f for f in self._frames if f.session_id == reply["session_id"]),
                             maxlen=self._frames.maxlen)
        return reply

    def _action(self, action: int | str) -> int | str:
        s = self._need_session()
        if isinstance(action, str):
            return action  # names are resolved by the host (the session's action_map may add some)
        if is_whole(action):
            n = max(s["num_latent_actions"], len(s["action_names"]))
            if not 0 <= int(action) < n:
                raise ProtocolError("bad_argument", f"action id {action} is outside 0-{n - 1}")
            return int(action)
        raise ProtocolError("bad_argument", f"action must be an id or a name, got {type(action).__name__}")

    def act(self, action: int | str, seq: int | None = None) -> None:
        """Set the current input (realtime: applies from the next tick; step: makes one frame)."""
        self._send({"type": "input", "action": self._action(action), "client_ts": client_ms(), "seq": seq})

    def step(self, action: int | str, timeout: float | None = None) -> Frame:
        """Step mode: send one input and wait for exactly the frame it produced."""
        s = self._need_session()
        if s["mode"] != "step":
            raise ProtocolError("bad_argument", "step() needs a step-mode session: start(mode='step') or "
                                                "settings(mode='step')")
        self._seq += 1
        seq, req_id = self._seq, self._next_req()
        self._send({"type": "input", "req_id": req_id, "action": self._action(action), "client_ts": client_ms(),
                    "seq": seq})
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            for i, f in enumerate(self._frames):
                if f.seq == seq:
                    for _ in range(i + 1):
                        self._frames.popleft()
                    self._await(None)  # answered by its frame: nothing more comes for it
                    return f
            if self._reply is not None:
                self._wait_reply("input")  # raises the error the host sent for this input
            if self.session is None and self.errors:
                e = self.errors[-1]
                raise ProtocolError(e.get("code", "error"), e.get("message", ""), True)
            left = deadline - time.monotonic()
            if left <= 0 or not self._receive(left):
                if any(f.seq == seq for f in self._frames):
                    continue
                raise self._give_up(f"no frame for input seq {seq}", timeout)

    def event(self, event_type: str | None = None, text: str | None = None) -> dict:
        """Fire a world event on the next frame, or after those queued before it (a world model holds each for `hold`
        frames); the `ok` carries its caption."""
        self._need_session()
        return self._request({"type": "event", "event_type": event_type, "text": text})

    def reset(self, seed: int | None = None, text: str | None = None, image: np.ndarray | bytes | None = None,
              sketch: np.ndarray | bytes | None = None) -> dict:
        """A new world (missing prompt parts are kept); epoch += 1 and frame 0 follows."""
        self._need_session()
        reply = self._request({"type": "reset", "seed": None if seed is None else _whole(seed, "seed", SEED_MAX),
                               "text": text,
                               "image": None if image is None else encode_prompt_image(image),
                               "sketch": None if sketch is None else encode_prompt_image(sketch)})
        self._warn_text_unused(text, image, sketch)
        self._adopt_epoch(reply)
        return reply

    def _warn_text_unused(self, text: str | None, image: Any, sketch: Any) -> None:
        """Say once what only the host's stderr said: an image wins over a text sent with it (docs/protocol.md)."""
        if (words := text_unused_words(text, image, sketch)) and not self._told_text_unused:
            self._told_text_unused = True
            warnings.warn(words, stacklevel=3)

    def branch(self, frame: int, timeout: float | None = None) -> dict:
        """Continue from frame `frame` of the current timeline; epoch += 1 and that frame is re-sent.

        The host may re-simulate several frames to get there, so this waits up to BRANCH_TIMEOUT_S (or `timeout`)
        rather than the per-request timeout that one frame's work fits in.
        """
        self._need_session()
        reply = self._request({"type": "branch", "frame": _whole(frame, "branch frame")},
                              timeout if timeout is not None else max(self.timeout, BRANCH_TIMEOUT_S))
        self._adopt_epoch(reply)
        return reply

    def edit(self, layer: np.ndarray | bytes, x: int, y: int, timeout: float | None = None) -> dict:
        """Paste a layer (PNG bytes, or an (h, w, 4) RGBA / (h, w, 3) RGB uint8 array) into the current frame with
        its top-left at (x, y); the world continues from the edited frame. Returns the `ok` (`epoch`, `frame_index`);
        the edited frame follows with `events == ["edit"]`. ProtocolError `unsupported` when the session's backend
        cannot edit (see `session["capabilities"]`)."""
        self._need_session()
        if not all(is_whole(v) for v in (x, y)):
            raise ProtocolError("bad_argument", f"edit position must be integer pixels, got x={x!r}, y={y!r}")
        reply = self._request({"type": "edit", "layer": encode_layer(layer), "x": int(x), "y": int(y)}, timeout)
        self._adopt_epoch(reply)
        return reply

    def _adopt_epoch(self, reply: dict) -> None:
        epoch = reply.get("epoch")
        if isinstance(epoch, int) and epoch > self._epoch:
            self._epoch = epoch
            self._frames = deque((f for f in self._frames if f.epoch >= epoch), maxlen=self._frames.maxlen)
        if isinstance(epoch, int) and isinstance(reply.get("frame_index"), int):
            self._stand(epoch, reply["frame_index"])
        if reply.get("seed") is not None and self.session is not None:  # a reset's new world: its seed rebuilds it
            self.session["seed"] = reply["seed"]

    def _stand(self, epoch: int, index: int) -> None:
        """Move `session["epoch"]`/`["frame_index"]` to where the newest answer or frame says the session stands."""
        s = self.session
        if s is not None and (epoch, index) >= (s.get("epoch", 0), s.get("frame_index", 0)):
            s["epoch"], s["frame_index"] = epoch, index

    def settings(self, **kw: Any) -> dict:
        """Change steps / temperature / cfg / event_cfg / top_p / unmask / fps / mode; returns the `ok` with the full
        settings map."""
        self._need_session()
        known = (*P.MODEL_KNOBS, "fps", "mode")
        unknown = set(kw) - set(known)
        if unknown:
            raise ProtocolError("bad_argument", f"unknown settings {sorted(unknown)}: use {', '.join(known)}")
        # numpy scalars do not pack: unwrap them; anything else goes as given, for the host to accept or refuse
        msg = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in kw.items()}
        reply = self._request({"type": "settings", **msg})
        st = reply.get("settings", {})
        self.session = {**self.session, "settings": st, "mode": st.get("mode", self.session["mode"]),
                        "fps": st.get("fps", self.session["fps"])}
        return reply

    def record_start(self, path: str | None = None) -> dict:
        """Record this session on the host's disk; the `ok` carries the path."""
        self._need_session()
        return self._request({"type": "record_start", "path": None if path is None else str(path)})

    def record_stop(self) -> dict:
        """Stop this session's recording; the `ok` carries its `path` and `frames`, so the file can be found."""
        self._need_session()
        return self._request({"type": "record_stop"})

    def status(self) -> dict:
        """The host's view of this client (session, frame, measured fps, frames sent and dropped), for diagnosis."""
        return self._request({"type": "status"})

    def ping(self) -> float:
        """Round trip in ms: also a barrier (the host answers after everything sent before it)."""
        t0 = client_ms()
        self._request({"type": "ping", "client_ts": t0})
        return client_ms() - t0

    # --- frames ---

    def next_frame(self, timeout: float | None = None) -> Frame | None:
        """The newest frame (older queued ones are dropped); waits up to `timeout` s (None = self.timeout)."""
        while self._receive(0):
            pass
        if not self._frames:
            timeout = self.timeout if timeout is None else timeout
            deadline = time.monotonic() + timeout
            while not self._frames:
                left = deadline - time.monotonic()
                if left <= 0 or not self._receive(left):
                    if not self._frames:
                        return None
            while self._receive(0):
                pass
        frame = self._frames[-1]
        self._frames.clear()
        return frame

    def drain_frames(self, timeout: float | None = 0.0) -> list[Frame]:
        """Every buffered frame of the current epoch, oldest first: a timeline records each frame, a viewer wants
        only `next_frame`. Waits up to `timeout` s for the first one (None = self.timeout); [] when none came."""
        timeout = self.timeout if timeout is None else timeout
        out: list[Frame] = []

        def take() -> None:  # move frames out after every message, so a burst never overflows the buffer
            out.extend(self._frames)
            self._frames.clear()

        take()
        deadline = time.monotonic() + timeout
        while not out:
            left = deadline - time.monotonic()
            if left <= 0 or not self._receive(left):
                break
            take()
        while self._receive(0):
            take()
        return [f for f in out if f.epoch >= self._epoch]

    def frames(self, timeout: float | None = None) -> Iterator[Frame]:
        """Yield the newest frame each time one arrives; stops after `timeout` s without a frame (None: never)."""
        while True:
            frame = self.next_frame(timeout=1e9 if timeout is None else timeout)
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        """Say bye (ends the session on the host) and close the socket."""
        if self._closed:
            return
        if self.welcome is not None:
            try:
                self._sock.send(P.encode({"type": "bye"}), zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
        self._closed = True
        self._sock.close(linger=200)
        self.session = None
