"""One client's world: backend, timeline (index/epoch), branch snapshots, input state, events and recording."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bridge.backend import Prompt, WorldBackend, WorldEvent, own_fps, takes
from bridge.host.clock import clock
from bridge.host.pixels import decode_layer, decode_prompt_image
from bridge.host.protocol import MODEL_KNOBS, SESSION_CAPABILITIES, Limits, ProtocolError, event_refused, prompt_kinds
from bridge.values import plural

MAX_PENDING_EVENTS = 1024  # accepted events waiting to fire (in turn, one a frame at most), per session


@dataclass
class Produced:
    """A frame the session just made, before it is encoded for the wire."""

    image: np.ndarray
    index: int
    epoch: int
    action: int
    events: list[str]
    model_ms: float
    source: str  # "start" | "reset" | "step" | "branch" | "edit" | "resend"
    event: WorldEvent | None = None
    backend_timings: dict[str, float] = field(default_factory=dict)
    refused: dict | None = None  # the `error` to send when the backend refused the event meant for this frame
    edit: dict | None = None  # {"layer": PNG bytes, "x", "y"} of an `edit` (recordings replay it)


def _event_dict(ev: WorldEvent | None) -> dict | None:
    return None if ev is None else {"type": ev.type, "text": ev.text}


def event_from_dict(ev: dict | None) -> WorldEvent | None:
    """The WorldEvent a history step or a recorded frame carried (the inverse of `_event_dict`)."""
    return WorldEvent(type=ev["type"], text=ev["text"]) if ev else None


def apply_edit_png(backend: WorldBackend, png: bytes, x: int, y: int) -> np.ndarray:
    """Paste a history or recorded edit's PNG layer onto the backend's frame, as the `edit` that made it did; only a
    replay can meet a backend without `edit_frame` (a session records edits only where it has one)."""
    if not callable(getattr(backend, "edit_frame", None)):
        raise ValueError(f"the recording edits frames, which {getattr(backend, 'name', 'this backend')} cannot do")
    return backend.edit_frame(decode_layer(png, int(backend.width), int(backend.height)), int(x), int(y))


def resimulate(backend: WorldBackend, history: Iterable[Sequence], configure: Callable[[int, dict], None],
               on_frame: Callable[[int], None] | None = None) -> None:
    """Re-run history entries (steps, edits, settings) exactly as they first ran, for a branch and a replay alike;
    `on_frame` hears the frames stepped so far after each step or edit, so a replay can save the states it needs."""
    index = 0
    for n, entry in enumerate(history):
        if entry[0] == "settings":
            configure(n, entry[1])
            continue
        if entry[0] == "step":
            backend.step(int(entry[1]), event_from_dict(entry[2]))
            index += 1
        else:
            apply_edit_png(backend, entry[1], entry[2], entry[3])
        if on_frame is not None:
            on_frame(index)


def backend_capabilities(backend: WorldBackend) -> list[str]:
    """`session.capabilities`: what the backend says it can do; a backend that says nothing gets only `events`
    (when it has event types), and `edit` also needs an `edit_frame` method."""
    caps = getattr(backend, "capabilities", None)
    if caps is None:
        caps = ["events"] if list(getattr(backend, "event_types", [])) else []
    caps = set(caps)
    if not callable(getattr(backend, "edit_frame", None)):
        caps.discard("edit")
    return [c for c in SESSION_CAPABILITIES if c in caps]


class Session:
    """Isolated per-session state; the host owns the socket, the session owns the world."""

    def __init__(self, backend: WorldBackend, mode: str = "realtime", fps: float | None = None,
                 limits: Limits | None = None, action_map: dict[str, int] | None = None,
                 backend_label: str | None = None):
        self.id = "s-" + secrets.token_hex(8)
        self.backend = backend
        self.backend_label = backend_label  # the name the client used in `start.backend` (for replay)
        self.limits = limits or Limits()
        self.mode = mode
        # no rate asked for: the world plays at its footage's speed, within what `settings` takes
        self.fps = float(fps if fps is not None else own_fps(backend, self.limits.fps_min, self.limits.fps_max))
        self.epoch = 0
        self.index = 0
        self.action = 0  # the input state in force (realtime keeps applying it)
        self.client_ts: float | None = None
        self.seq: int | None = None
        self.input_ts: float | None = None  # host time the newest input arrived, until a frame applies it
        self.pending_events: deque[tuple[WorldEvent, str, int | None]] = deque()  # (event, caption, its req_id)
        self.step_inputs: deque[tuple[int, float | None, int | None, float]] = deque()  # step mode queue
        self.prompt = Prompt()  # as the client sent it: a reset without a seed draws a new one
        self.seed: int | None = None  # the seed the current world actually started from (reported in `session`)
        self.prompt_wire: dict[str, Any] = {}  # the prompt as the client sent it (bytes), for recordings
        self.reset_settings: dict[str, Any] = {}  # model settings in force at the last reset, for replay
        self.history: list[tuple] = []  # ("step", action, event) / ("settings", dict) / ("edit", png, x, y) since reset
        # --- branch window: every frame's image, plus a full backend state every `keyframe_every` frames ---
        self.frame_bytes = max(1, backend.height * backend.width * 3)
        budget = self.limits.branch_window_bytes
        self.branch_window = max(2, min(self.limits.branch_window, budget // 2 // self.frame_bytes))
        self.frames: deque[tuple[int, np.ndarray, int]] = deque(maxlen=self.branch_window)  # (index, image, history len)
        self.keyframes: dict[int, tuple[Any, dict, int]] = {}  # index -> (backend state, settings then, history len)
        self.keyframe_every = 1
        self.state_bytes = 0
        self.last_image: np.ndarray | None = None
        self.capabilities = backend_capabilities(backend)
        self.settings: dict[str, Any] = {k: None for k in MODEL_KNOBS}
        backend_settings = getattr(backend, "settings", None)
        if isinstance(backend_settings, dict):
            self.settings.update({k: backend_settings.get(k) for k in MODEL_KNOBS})
        if (self.settings["event_cfg"] is None and {"events", "text_events"} & set(self.capabilities)
                and takes(getattr(backend, "configure", None), "event_cfg")):
            self.settings["event_cfg"] = 1.0  # event conditioning, guidance not set yet: 1 = off
        self.action_names: list[str] = list(backend.action_names)
        self.num_actions = max(int(backend.num_latent_actions), len(self.action_names))
        self.action_map: dict[str, int] = {n: i for i, n in enumerate(self.action_names)}
        for name, aid in (action_map or {}).items():
            if aid >= self.num_actions:
                raise ProtocolError("bad_argument", f"`action_map` maps {name!r} to {aid}, but the backend has "
                                                    f"{plural(self.num_actions, 'action')} (0-{self.num_actions - 1})")
            self.action_map[name] = int(aid)
        self.peer: bytes | None = None
        self.last_seen = clock()
        self.next_tick = clock()
        self.frames_sent = 0
        self.frames_dropped = 0
        self._tick_times: deque[float] = deque(maxlen=48)
        self.recorder = None  # bridge.host.recording.Recorder while recording
        self.loading: Any = None  # the host's LoadJob while a loader thread resets the world: the loop waits

    # --- descriptions ---

    @property
    def kind(self) -> str:
        return getattr(self.backend, "kind", "sandbox")

    @property
    def name(self) -> str:
        return getattr(self.backend, "name", type(self.backend).__name__)

    def settings_map(self) -> dict:
        return {**self.settings, "fps": self.fps, "mode": self.mode}

    def describe(self, req_id: int | None, resumed: bool = False) -> dict:
        """The `session` message."""
        return {"type": "session", "req_id": req_id, "session_id": self.id, "backend_kind": self.kind,
                "backend_name": self.name, "mode": self.mode, "fps": self.fps, "width": int(self.backend.width),
                "height": int(self.backend.height), "action_names": self.action_names,
                "num_latent_actions": int(self.backend.num_latent_actions),
                "event_types": list(self.backend.event_types), "settings": self.settings_map(),
                "frame_index": self.index, "epoch": self.epoch, "resumed": resumed,
                "branch_window": self.branch_window, "capabilities": list(self.capabilities), "seed": self.seed}

    @property
    def fps_measured(self) -> float:
        t = self._tick_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    # --- inputs ---

    def resolve_action(self, action: int | str) -> int:
        """Action id or name -> id; bad_argument when it is neither a known name nor in range."""
        if isinstance(action, str):
            if action not in self.action_map:
                names = ", ".join(list(self.action_map)[:16])
                raise ProtocolError("bad_argument", f"unknown action name {action!r}: use one of {names} "
                                                    f"or an id 0-{self.num_actions - 1}")
            return self.action_map[action]
        if not 0 <= action < self.num_actions:
            raise ProtocolError("bad_argument", f"action id {action} is outside 0-{self.num_actions - 1}")
        return int(action)

    def queue_event(self, event_type: str | None, text: str | None, req_id: int | None = None) -> str:
        """Check an event against the backend and queue it for the next frame; returns its caption (`req_id`, the
        request's, names the event should the backend refuse it at its frame)."""
        event = WorldEvent(type=event_type, text=text)
        if not event.fires:
            raise ProtocolError("bad_argument", "event needs `event_type` or some `text` (blank text is no event)")
        self.check_event_capability(event)
        if event_type is not None and event_type not in self.backend.event_types:
            raise ProtocolError("bad_argument", f"unknown event type {event_type!r}: this backend knows "
                                                f"{list(self.backend.event_types)}")
        if len(self.pending_events) >= MAX_PENDING_EVENTS:  # they fire in turn: a flood must not fill the memory
            raise ProtocolError("busy", f"{MAX_PENDING_EVENTS} events already wait to fire, in turn: wait for "
                                        "their frames before sending more")
        try:
            caption = describe_event(self.backend, event)
        except ValueError as e:
            raise ProtocolError("bad_argument", str(e)) from None
        self.pending_events.append((event, caption, req_id))
        return caption

    def check_event_capability(self, event: WorldEvent) -> None:
        """`unsupported` for an event kind outside session.capabilities (docs/protocol.md), before any backend reads
        it: a typed event needs `events`, free text alone needs `text_events`."""
        typed = event.type is not None
        cap = "events" if typed else "text_events"
        if cap in self.capabilities:
            return
        other = "text_events" if typed else "events"
        if other not in self.capabilities:
            fix = "this backend takes no events (session.capabilities lists what it can do)"
        elif typed:
            fix = "send free `text` instead"
        else:
            fix = f"send an `event_type` instead, one of {list(self.backend.event_types)}"
        what = "typed events" if typed else "free-text events"
        raise ProtocolError("unsupported", f"{self.name} cannot take {what} (session.capabilities lack {cap}): {fix}",
                            capability=cap)

    # --- making frames ---

    def _check_image(self, image: Any) -> np.ndarray:
        image = np.asarray(image)
        if image.shape != (self.backend.height, self.backend.width, 3) or image.dtype != np.uint8:
            raise ProtocolError("backend_error", f"backend returned a {image.shape} {image.dtype} frame; expected "
                                                 f"({self.backend.height}, {self.backend.width}, 3) uint8", True)
        return image

    def _timed(self, fn, *args) -> tuple[np.ndarray, float, dict]:
        t0 = time.perf_counter()
        image = fn(*args)
        model_ms = (time.perf_counter() - t0) * 1000.0
        timings = getattr(self.backend, "last_timings", None)
        return self._check_image(image), model_ms, dict(timings) if isinstance(timings, dict) else {}

    def _snapshot(self, image: np.ndarray, force_key: bool = False) -> None:
        """Remember this frame for `branch`: its image always, the backend state on keyframes."""
        self.frames.append((self.index, image, len(self.history)))
        self.last_image = image
        if force_key or self.index % self.keyframe_every == 0:
            state = self.backend.get_state()
            self.keyframes[self.index] = (state, dict(self.settings), len(self.history))
            size = nbytes(state)
            if size > self.state_bytes:  # big states (KV caches): keep fewer, re-simulate the frames between
                self.state_bytes = size
                state_budget = max(1, self.limits.branch_window_bytes - self.branch_window * self.frame_bytes)
                self.keyframe_every = max(1, -(-self.branch_window * size // state_budget))
        low = self.frames[0][0]
        for k in [k for k in self.keyframes if k < low - self.keyframe_every]:
            del self.keyframes[k]

    def _fired(self) -> list | None:
        """The backend's cumulative list of fired events, if it keeps one (the sandbox does)."""
        fired = getattr(self.backend, "events_fired", None)
        return fired if isinstance(fired, list) else None

    def _run_step(self, action: int, event: WorldEvent | None,
                  req_id: int | None) -> tuple[np.ndarray, float, dict, list[str] | None, dict | None]:
        """backend.step with event captions; an event the backend refuses is dropped (reported) and the step retried."""
        before = len(self._fired() or [])
        state = self.backend.get_state() if event is not None else None
        try:
            image, model_ms, bt = self._timed(self.backend.step, action, event)
            refused = None
        except ValueError as e:
            if event is None:
                raise
            self.backend.set_state(state)
            image, model_ms, bt = self._timed(self.backend.step, action, None)
            refused = event_refused(event.type, event.text, req_id, str(e))
        fired = self._fired()
        captions = None if fired is None else [f.get("caption", str(f)) if isinstance(f, dict) else str(f)
                                                for f in fired[before:]]
        return image, model_ms, bt, captions, refused

    def begin(self, prompt: Prompt, source: str = "start") -> Produced:
        """Reset the world to `prompt` (frame 0 of a new timeline; a `reset` bumps the epoch).

        Without a seed the host draws one, so every world can be rebuilt from what `session`/`ok` report."""
        self.check_prompt(prompt)
        seeded = prompt if prompt.seed is not None else dataclasses.replace(prompt, seed=secrets.randbelow(2**31))
        image, model_ms, bt = self._timed(self.backend.reset, seeded)
        if source == "reset":
            self.epoch += 1
        self.prompt = prompt
        self.seed = int(seeded.seed)
        self.index = 0
        self.history = []
        self.pending_events.clear()
        self.frames.clear()
        self.keyframes.clear()
        self.reset_settings = dict(self.settings)
        self._snapshot(image, force_key=True)
        return Produced(image, 0, self.epoch, -1, [], model_ms, source, backend_timings=bt)

    def check_prompt(self, prompt: Prompt) -> None:
        """bad_prompt for a prompt kind outside session.capabilities (docs/protocol.md): a backend must not quietly
        ignore or reinterpret what the client asked for."""
        for cap in prompt_kinds(prompt.text, prompt.image, prompt.sketch):
            if cap not in self.capabilities:
                key = cap.removesuffix("_prompt")
                if self.kind == "sandbox" and key == "image":
                    hint = ", or send a flat-colour drawing as `sketch`"
                elif self.kind == "world_model" and key != "image":
                    hint = ", or train a first-frame model with `worldbridge train prompts first-frame`"
                else:
                    hint = ""
                raise ProtocolError("bad_prompt", f"{self.name} cannot start from {key} prompts (session.capabilities "
                                                  f"lack {cap}): leave `{key}` out{hint}", capability=cap)

    def prepare_step(self) -> tuple[WorldEvent | None, str | None, int | None]:
        """Pop the event that fires on the next frame (split from `finish_step` so steps can be batched); none while
        the last one is still held, so back-to-back events each condition all their `hold` frames."""
        if not self.pending_events or getattr(self.backend, "event_frames_left", 0) > 0:
            return None, None, None
        return self.pending_events.popleft()

    def finish_step(self, action: int, event: WorldEvent | None, caption: str | None, image: np.ndarray,
                    model_ms: float, backend_timings: dict, captions: list[str] | None = None) -> Produced:
        image = self._check_image(image)
        self.index += 1
        self.history.append(("step", action, _event_dict(event)))
        self._snapshot(image)
        self._tick_times.append(clock())
        if captions is None:
            captions = [caption] if caption else []
        return Produced(image, self.index, self.epoch, action, captions, model_ms, "step", event, backend_timings)

    def step(self, action: int) -> Produced:
        """Advance one frame under `action` and the oldest pending event (`refused` says if the backend refused it)."""
        event, caption, req_id = self.prepare_step()
        image, model_ms, bt, captions, refused = self._run_step(action, event, req_id)
        produced = self.finish_step(action, None if refused else event, None if refused else caption, image,
                                    model_ms, bt, captions)
        produced.refused = refused
        return produced

    def branch(self, frame: int) -> Produced:
        """Restore the state right after `frame` (nearest keyframe + re-simulation), bump the epoch, re-send it."""
        entry = next((e for e in self.frames if e[0] == frame), None)
        keys = [k for k in self.keyframes if k <= frame]
        if entry is None or not keys:
            lo = self.frames[0][0] if self.frames else 0
            raise ProtocolError("bad_argument", f"frame {frame} is outside the branch window {lo}-{self.index} "
                                                f"(the host keeps the last {self.branch_window} frames)")
        _, image, hist_len = entry
        key = max(keys)
        t0 = time.perf_counter()
        state, key_settings, key_hist = self.keyframes[key]
        self.backend.set_state(state)
        if key != frame:
            self._configure(key_settings)
            resimulate(self.backend, self.history[key_hist:hist_len], lambda n, knobs: self._configure(knobs))
            self._configure(self.settings)  # the user's current settings stay in force
        model_ms = (time.perf_counter() - t0) * 1000.0
        while self.frames and self.frames[-1][0] > frame:
            self.frames.pop()
        for k in [k for k in self.keyframes if k > frame]:
            del self.keyframes[k]
        self.history = self.history[:hist_len]
        self.epoch += 1
        self.index = frame
        self.pending_events.clear()
        self.last_image = image
        if frame not in self.keyframes:
            self.keyframes[frame] = (self.backend.get_state(), dict(self.settings), hist_len)
        return Produced(image, frame, self.epoch, -1, [], model_ms, "branch")

    def edit(self, png: bytes, x: int, y: int) -> Produced:
        """Paste a PNG layer at (x, y) into the current frame; like a branch to it (epoch += 1), the world goes on
        from the edited frame, and a later branch to this index restores the edited world."""
        edit_frame = getattr(self.backend, "edit_frame", None)
        if "edit" not in self.capabilities or not callable(edit_frame):
            why = " (it renders from game state, not pixels)" if self.kind == "sandbox" else ""
            raise ProtocolError("unsupported", f"{self.name} cannot edit frames{why}: start a world_model session to "
                                               "edit (session.capabilities lists what a backend can do)",
                                capability="edit")
        W, H = int(self.backend.width), int(self.backend.height)
        layer = decode_layer(png, W, H)
        h, w = layer.shape[:2]
        if not (-w < x < W and -h < y < H):  # a layer wholly off the frame pastes nothing
            raise ProtocolError("bad_argument", f"the {w}x{h} edit layer at ({x}, {y}) lies wholly off the {W}x{H} "
                                                f"frame: x must be in [{1 - w}, {W - 1}] and y in [{1 - h}, {H - 1}] "
                                                "so that part of it is on the frame")
        state = self.backend.get_state()
        t0 = time.perf_counter()
        try:
            image = self._check_image(edit_frame(layer, int(x), int(y)))
        except ValueError as e:  # the backend refused the layer; the world is as it was
            self.backend.set_state(state)
            raise ProtocolError("bad_prompt", str(e)) from None
        except BaseException:
            self.backend.set_state(state)
            raise
        model_ms = (time.perf_counter() - t0) * 1000.0
        self.epoch += 1
        self.history.append(("edit", bytes(png), int(x), int(y)))
        if self.frames and self.frames[-1][0] == self.index:  # begin/step/branch leave the current frame last
            self.frames.pop()
        self.frames.append((self.index, image, len(self.history)))
        if self.index in self.keyframes:  # else a branch re-simulates from the keyframe before, edit included
            self.keyframes[self.index] = (self.backend.get_state(), dict(self.settings), len(self.history))
        self.last_image = image
        return Produced(image, self.index, self.epoch, -1, ["edit"], model_ms, "edit",
                        edit={"layer": bytes(png), "x": int(x), "y": int(y)})

    def _configure(self, settings: dict) -> None:
        """Re-apply settings this backend already took (replay's _configure checks another backend's, naming where)."""
        knobs = {k: v for k, v in settings.items() if k in MODEL_KNOBS and v is not None}
        backend_settings = getattr(self.backend, "settings", None)
        if knobs.get("event_cfg") == 1.0 and isinstance(backend_settings, dict) and "event_cfg" not in backend_settings:
            del knobs["event_cfg"]  # the backend's default already (1 = off): keep its settings as they were
        configure = getattr(self.backend, "configure", None)
        if knobs and configure is not None:
            configure(**knobs)

    def apply_settings(self, msg: dict, limits: Limits) -> None:
        """Apply a validated `settings` message; the backend's `configure` gets the model knobs."""
        knobs = {k: msg[k] for k in MODEL_KNOBS if msg.get(k) is not None}
        if "event_cfg" in knobs and self.settings["event_cfg"] is None:
            raise ProtocolError("bad_argument", f"{self.name} has no event conditioning, so event_cfg does not "
                                                "apply: leave it out (session.settings.event_cfg is nil)")
        configure = getattr(self.backend, "configure", None)
        for k in knobs:  # e.g. (1.2) top_p / unmask, which only a MaskGIT backend has
            if configure is not None and not takes(configure, k):
                raise ProtocolError("bad_argument", f"{self.name} has no {k} setting: leave it out "
                                                    f"(session.settings.{k} is nil)")
        if knobs and configure is not None:  # backends without knobs (the sandbox) ignore them
            try:
                current = configure(**knobs)
            except ValueError as e:
                raise ProtocolError("bad_argument", str(e)) from None
            self.settings.update(knobs)
            if isinstance(current, dict):
                self.settings.update({k: current[k] for k in MODEL_KNOBS if k in current})
            self.history.append(("settings", knobs))
        if msg.get("fps") is not None:
            self.fps = float(msg["fps"])
            self._tick_times.clear()
        if msg.get("mode") is not None and msg["mode"] != self.mode:
            self.mode = msg["mode"]
            self.next_tick = clock()
            self._tick_times.clear()
            self.step_inputs.clear()


def nbytes(obj: Any, depth: int = 0, seen: set | None = None) -> int:
    """Rough memory held by an opaque backend state (tensors, arrays, bytes inside containers/objects)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 6:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, (bytes, bytearray)):
        return len(obj)
    if hasattr(obj, "element_size") and hasattr(obj, "numel"):  # torch.Tensor without importing torch
        return int(obj.element_size() * obj.numel())
    if isinstance(obj, dict):
        return sum(nbytes(v, depth + 1, seen) for v in obj.values())
    if isinstance(obj, (list, tuple, set)):
        return sum(nbytes(v, depth + 1, seen) for v in obj)
    if hasattr(obj, "__dict__"):
        return nbytes(vars(obj), depth + 1, seen)
    return 0


def describe_event(backend: WorldBackend, event: WorldEvent) -> str:
    """The caption an event will show, or ValueError when the backend cannot match it (checked before queueing)."""
    describe = getattr(backend, "describe_event", None)
    if describe is not None:
        return describe(event)
    if getattr(backend, "kind", None) == "sandbox" and hasattr(backend, "events_fired"):
        from bridge.worlds.events import EVENT_CAPTIONS, match_event_text

        return EVENT_CAPTIONS[event.type or match_event_text(event.text or "")]
    return event.type.replace("_", " ") if event.type is not None else event.text  # the type wins, as it fires


def prompt_keys(msg: dict, previous: dict) -> dict:
    """The prompt a `start`/`reset` stands on: its keys, then the `previous` ones it leaves out (reset semantics); a new
    text (not blank) sent without an image drops a kept image, which would win over the text and start the old world."""
    keys = {k: msg[k] if msg.get(k) is not None else previous.get(k) for k in ("seed", "text", "image", "sketch")}
    if msg.get("image") is None and isinstance(msg.get("text"), str) and msg["text"].strip():
        keys["image"] = None
    return keys


def build_prompt(msg: dict, previous: Prompt | None = None) -> Prompt:
    """A Prompt from `start`/`reset` keys; missing keys keep `previous` (`prompt_keys`)."""
    prev = previous or Prompt()
    keys = prompt_keys(msg, {"seed": prev.seed, "text": prev.text, "image": prev.image, "sketch": prev.sketch})
    sent = {k: decode_prompt_image(msg[k], k) if msg.get(k) is not None else keys[k] for k in ("image", "sketch")}
    return Prompt(seed=keys["seed"], text=keys["text"], **sent)
