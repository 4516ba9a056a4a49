"""A trained world model behind the WorldBackend contract (bridge/backend.py), one frame per step."""

from __future__ import annotations

import copy
import math
import os
import secrets
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from bridge import DEFAULT_WORLD
from bridge.backend import Prompt, StepRefused, WorldEvent, opaque
from bridge.model.checkpoint import CheckpointError, load_into, load_model
from bridge.model.config import UNMASK_ORDERS
from bridge.model.genie import WorldModel
from bridge.model.sampler import mask_schedule, sample_frame
from bridge.model.st_transformer import KVCache
from bridge.values import plural



def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Explicit device, else CUDA when present, else CPU."""
    if device is not None:
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise ValueError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for but CUDA is not available: pass --device cpu")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    return (frames.float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def resize_image(image: np.ndarray, height: int, width: int) -> torch.Tensor:
    """Any (H, W, 3|4) uint8 image -> (height, width, 3) float in [0, 1] (antialiased bilinear; RGBA over white)."""
    img = opaque(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:  # RGBA uint8 is RGB once `opaque` has run
        raise ValueError(f"prompt image must be (H, W, 3) uint8 RGB or (H, W, 4) RGBA, got shape {img.shape} dtype "
                         f"{img.dtype}")
    x = torch.tensor(img).permute(2, 0, 1)[None].float() / 255.0  # a copy: a decoded PNG's array is read-only
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).clamp(0, 1)


def commit_frame(model: WorldModel, tokens: torch.Tensor, action: torch.Tensor, cond: torch.Tensor | None,
                 dyn: KVCache, dec: KVCache, clock: Callable[[], float] = time.perf_counter) -> tuple[torch.Tensor, float]:
    """Enter a known token map (B, N) as the caches' next frame (keys and values only: nothing to sample) and decode
    it -> (frame (B, H, W, 3) in [0, 1], unclamped; `clock()` read between the two, for timings)."""
    model.dynamics(tokens[:, None], action, cond, dyn, kv_only=True)
    t = clock()
    return model.tokenizer.decode(tokens[:, None], dec)[:, 0], t


def start_rollout(model: WorldModel, tokens: torch.Tensor, clock: Callable[[], float] = time.perf_counter
                  ) -> tuple[KVCache, KVCache, torch.Tensor, float]:
    """New caches holding `tokens` (B, N) as frame 0 under the null action: where play's reset and `worldbridge eval`'s
    rollouts both begin -> (dynamics cache, decoder cache, frame 0 decoded, `clock()` after the commit)."""
    dyn, dec = model.dynamics.new_cache(), model.tokenizer.decoder.new_cache()
    null = torch.full((tokens.shape[0], 1), model.dynamics.null_action, device=tokens.device)
    return dyn, dec, *commit_frame(model, tokens, null, None, dyn, dec, clock)


def _is_number(x: Any) -> bool:
    """A real number, numpy's included, and not a bool (True is not 1 MaskGIT step)."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


class WorldModelBackend:
    """Rolls a trained world model forward one frame per `step`, with KV caches for dynamics and decoder."""

    kind = "world_model"

    def __init__(self, model: WorldModel, card: dict[str, Any], path: Path, device: torch.device,
                 autocast: bool | None = None):
        cfg = model.cfg
        self.model, self.cfg, self.card, self.path, self.device = model.to(device).eval(), cfg, card, Path(path), device
        step = card.get("step", "?")
        self.name = f"world model {cfg.preset} ({self.path.name}, step {step})"
        self.action_names = cfg.latent_action_names()
        self.num_latent_actions = len(self.action_names)
        self.event_types = list(cfg.event_types)
        self.height, self.width, self.fps = cfg.height, cfg.width, cfg.fps
        d = cfg.dynamics
        self.settings = {"steps": min(d.steps, cfg.tokens_per_frame), "temperature": d.temperature, "cfg": d.cfg,
                         "unmask": d.unmask, "top_p": d.top_p}  # play's and `worldbridge eval`'s defaults
        self.autocast = bf16_by_default(device) if autocast is None else autocast
        self.detailed_timings = False  # also time each MaskGIT step into `last_step_ms` (bench; syncs CUDA)
        self._new_session()
        from bridge.prompts.runtime import PromptRuntime  # text/sketch prompts and events (docs/prompts.md)

        self.prompts = PromptRuntime(self.path, self.model, device, self.name)
        if self.prompts.text_events:
            self.settings["event_cfg"] = self.prompts.guidance

    def _new_session(self) -> None:
        """Everything one session owns; the rest (weights, prompt models) is shared by `spawn`."""
        self.last_timings: dict[str, float] = {}
        self.last_step_ms: list[float] = []  # per MaskGIT step, then the commit pass (when detailed_timings)
        self.seed: int | None = None
        self._gen = torch.Generator(device=self.device)
        self._dyn = self._dec = None
        self._frame: np.ndarray | None = None
        self._last: tuple[torch.Tensor, torch.Tensor | None] | None = None  # action and cond of the last frame (edits)
        self._buffers: dict[str, torch.Tensor] = {}  # the sampler's token maps, reused every frame
        self._tokens: torch.Tensor | None = None  # (1, N) token map of the current frame

    def spawn(self) -> "WorldModelBackend":
        """Another session on the same weights (no copy, no disk read): its own caches, RNG, settings and events."""
        other = copy.copy(self)
        other.settings = dict(self.settings)
        other._new_session()
        other.prompts = copy.copy(self.prompts)
        other.prompts.reset()
        return other

    @property
    def capabilities(self) -> list[str]:
        """What this world can do (protocol 1.1 `session.capabilities`): the prompts and events it was trained for,
        image prompts and frame edits always."""
        p = self.prompts
        return ([c for c, ok in (("text_prompt", p.text_prompts), ("image_prompt", True),
                                 ("sketch_prompt", p.sketch_prompts), ("events", bool(self.cfg.event_types)),
                                 ("text_events", p.text_events)) if ok] + ["edit"])

    # --- settings ---
    def configure(self, steps: int | None = None, temperature: float | None = None, cfg: float | None = None,
                  unmask: str | None = None, event_cfg: float | None = None, top_p: float | None = None) -> dict[str, Any]:
        """Change sampling settings (None keeps a value); all or nothing: a refused value changes none of them."""
        new = dict(self.settings)
        for name, value, low, rule in (("event_cfg", event_cfg, 0.0, "(guidance scale on events) must be >= 0 (1 = off)"),
                                       ("temperature", temperature, 0.0, "must be >= 0 (0 = greedy)"),
                                       ("cfg", cfg, 0.0, "(guidance scale) must be >= 0 (1 = off)")):
            if value is not None:
                if not (_is_number(value) and math.isfinite(value) and value >= low):
                    raise ValueError(f"{name} {rule}, got {value!r}")
                new[name] = float(value)
        if event_cfg is not None and self.cfg.dynamics.cond_dim <= 0:
            raise ValueError(f"{self.name} has no event conditioning, so event_cfg does not apply")
        if steps is not None:
            if not (_is_number(steps) and float(steps).is_integer()):
                raise ValueError(f"steps (MaskGIT steps per frame) must be a whole number, got {steps!r}")
            mask_schedule(int(steps), self.cfg.tokens_per_frame)  # validates the range
            new["steps"] = int(steps)
        if top_p is not None:
            if not (_is_number(top_p) and 0 < top_p <= 1):
                raise ValueError(f"top_p (nucleus sampling) must be in (0, 1] (1 = off), got {top_p!r}")
            new["top_p"] = float(top_p)
        if unmask is not None:
            if unmask not in UNMASK_ORDERS:
                raise ValueError(f"unmask must be one of {UNMASK_ORDERS}, got {unmask!r}")
            new["unmask"] = unmask
        self.settings = new
        return dict(new)

    def autocast_context(self):
        """bf16 autocast where this world plays in it (`autocast`): every model call of play and eval runs inside."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast)

    # --- WorldBackend ---
    @torch.no_grad()
    def reset(self, prompt: Prompt | None = None) -> np.ndarray:
        """Start from a text/sketch prompt (the first-frame model, when trained), an image (resized, tokenized), or
        the seed's first frame in the bank."""
        prompt = prompt or Prompt()
        seed = prompt.seed if prompt.seed is not None else secrets.randbelow(2**31)
        gen = torch.Generator(device=self.device).manual_seed(int(seed))  # the running world's stays until this works
        m, image = self.model, prompt.image if prompt.image is not None else prompt.sketch
        with self.autocast_context():
            t0 = time.perf_counter()
            tokens = self.prompts.first_tokens(prompt, gen)  # text and/or sketch -> (1, N), else None
            if tokens is None and image is not None:
                x = resize_image(image, self.height, self.width).to(self.device)
                tokens = m.tokenizer.encode(x[None, None])[0][:, 0]  # (1, N)
            elif tokens is None:
                if len(m.bank) == 0:
                    raise ValueError(f"{self.path} stores no first frames: give the prompt an image")
                tokens = m.bank[int(seed) % len(m.bank)][None].to(self.device)  # (1, N)
            t1 = self._sync()
            self.seed, self._gen = seed, gen  # a refused prompt (bad image, unknown words) left the old world as it was
            self.prompts.reset()
            self._dyn, self._dec, frame, t2 = start_rollout(m, tokens, self._sync)
            self._frame, self._tokens = to_uint8(frame[0]), tokens
            t3 = time.perf_counter()
        self._last = (torch.full((1, 1), m.dynamics.null_action, device=self.device), None)
        self.last_timings = {"tokenize": (t1 - t0) * 1e3, "dynamics": (t2 - t1) * 1e3, "decode": (t3 - t2) * 1e3}
        return self._frame.copy()

    @torch.no_grad()
    def reconstruct(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """A real clip through the tokenizer and back (causal in time, as play decodes it): what the model can show."""
        x = torch.stack([resize_image(f, self.height, self.width) for f in frames])[None].to(self.device)
        with self.autocast_context():
            out = self.model.tokenizer.decode(self.model.tokenizer.encode(x)[0])
        return list(to_uint8(out[0]))

    def describe_event(self, event: WorldEvent) -> str:
        """The caption an event will get (free text: and the trained wording it is read as); ValueError if refused."""
        self._check_event_cfg(event)
        return self.prompts.describe_event(event)

    def _check_event_cfg(self, event: WorldEvent | None) -> None:
        """At event_cfg 0 guidance cancels the event (logits = the "none" pass), so its caption would report a change
        the frame cannot show: refuse it instead."""
        if event is not None and event.fires and self.settings.get("event_cfg") == 0:
            raise ValueError("event_cfg is 0, which cancels every event: set event_cfg above 0 (1 = no guidance, "
                             f"{self.prompts.guidance:g} = this world's default) to fire events")

    @torch.no_grad()
    def step(self, action: int, event: WorldEvent | None = None) -> np.ndarray:
        """Generate the next frame under latent action `action`; an event (typed, or free text when trained for it)
        conditions this frame and the next `hold - 1` (docs/prompts.md)."""
        if self._dyn is None:
            raise RuntimeError("call reset() before step()")
        self._check_action(action)
        self._check_event_cfg(event)
        cond = self.prompts.event_cond(event)  # (1, 1, C) while an event is held, else None
        m, s = self.model, self.settings
        a = torch.tensor([int(action)], device=self.device)
        self._last = (a[:, None], cond)
        with self.autocast_context():
            step_ms = [] if self.detailed_timings else None
            t0 = time.perf_counter()
            tokens = sample_frame(m.dynamics, self._dyn, a, s["steps"], s["temperature"], s["cfg"], s["unmask"],
                                  cond=cond, generator=self._gen, cond_cfg=s.get("event_cfg", 1.0),
                                  buffers=self._buffers, step_ms=step_ms, top_p=s.get("top_p", 1.0))
            t1 = self._sync()
            frame = m.tokenizer.decode(tokens[:, None], self._dec)[0, 0]
            self._frame, self._tokens = to_uint8(frame), tokens
            t2 = time.perf_counter()
        self.last_timings = {"dynamics": (t1 - t0) * 1e3, "decode": (t2 - t1) * 1e3}
        if step_ms is not None:
            self.last_step_ms = step_ms
        return self._frame.copy()

    def _check_action(self, action: Any) -> None:
        if not isinstance(action, (int, np.integer)) or not 0 <= int(action) < self.num_latent_actions:
            raise ValueError(f"action must be an int in [0, {self.num_latent_actions}) ({', '.join(self.action_names)}), got {action!r}")

    # --- Several sessions in one batch (the host calls this for concurrent sessions of one backend class) ---
    @classmethod
    @torch.no_grad()
    def step_batch(cls, worlds: list["WorldModelBackend"], actions: list[int],
                   events: list[WorldEvent | None]) -> list[np.ndarray]:
        """`step` for many sessions at once: sessions of one model at the same point of their rollout, with the same
        settings and no new event, run as one batch; each keeps its own random stream, so a session's frames do not
        depend on who it was batched with. The others (and groups of one) are stepped alone."""
        if not len(worlds) == len(actions) == len(events):
            raise ValueError(f"step_batch got {plural(len(worlds), 'world')}, {plural(len(actions), 'action')} and "
                             f"{plural(len(events), 'event')}")
        fired = [e is not None and e.fires for e in events]
        for w, a, e, f in zip(worlds, actions, events, fired):  # refuse before any session moves
            try:
                w._check_action(a)
                if f:
                    w.describe_event(e)
            except ValueError as err:
                raise StepRefused(str(err)) from err
        out: list[np.ndarray | None] = [None] * len(worlds)
        groups: dict[tuple, list[tuple[int, torch.Tensor | None]]] = {}
        for i, w in enumerate(worlds):
            if w._dyn is None or fired[i]:  # stepped alone: its event changes the conditioning
                out[i] = w.step(actions[i], events[i])
                continue
            cond = w.prompts.event_cond(None)  # an event fired earlier may still be held
            groups.setdefault(w._batch_key(cond), []).append((i, cond))
        for members in groups.values():
            frames = cls._step_group([worlds[i] for i, _ in members], [int(actions[i]) for i, _ in members],
                                     [c for _, c in members])
            for (i, _), f in zip(members, frames):
                out[i] = f
        return out

    def _batch_key(self, cond: torch.Tensor | None) -> tuple:
        """Sessions with equal keys can share one batch: same model, settings, cache positions and cond shape."""
        caches = tuple((c.pos, c.filled, None if c.slot_pos is None else tuple(c.slot_pos.tolist()))
                       for c in (self._dyn, self._dec))
        return (id(self.model), str(self.device), self.autocast, tuple(sorted(self.settings.items())), caches,
                None if cond is None else tuple(cond.shape))

    @classmethod
    def _step_group(cls, ws: list["WorldModelBackend"], actions: list[int],
                    conds: list[torch.Tensor | None]) -> list[np.ndarray]:
        w0, G = ws[0], len(ws)
        m, s = w0.model, w0.settings
        a = torch.tensor(actions, device=w0.device)  # (G,)
        cond = None if conds[0] is None else torch.cat(conds)  # (G, 1, C)
        dyn, dec = _stack_caches([w._dyn for w in ws]), _stack_caches([w._dec for w in ws])
        with w0.autocast_context():
            t0 = time.perf_counter()
            tokens = sample_frame(m.dynamics, dyn, a, s["steps"], s["temperature"], s["cfg"], s["unmask"], cond=cond,
                                  generator=[w._gen for w in ws], cond_cfg=s.get("event_cfg", 1.0),
                                  top_p=s.get("top_p", 1.0))
            t1 = w0._sync()
            frames = to_uint8(m.tokenizer.decode(tokens[:, None], dec)[:, 0])  # (G, H, W, 3)
            t2 = time.perf_counter()
        timings = {"dynamics": (t1 - t0) * 1e3, "decode": (t2 - t1) * 1e3}
        for i, w in enumerate(ws):
            _unstack_cache(dyn, w._dyn, i, G)
            _unstack_cache(dec, w._dec, i, G)
            w._frame, w._last, w.last_timings = frames[i], (a[i:i + 1, None], conds[i]), dict(timings)
            w._tokens = tokens[i:i + 1]
        return [f.copy() for f in frames]

    @torch.no_grad()
    def edit_frame(self, rgba: np.ndarray, x: int, y: int) -> np.ndarray:
        """Paste an RGBA layer at (x, y) into the current frame; the world continues from the edited frame.

        The edited frame is re-tokenized and replaces the last frame in the dynamics' and decoder's caches; the
        returned frame is how the world now sees it (the tokenizer's reconstruction).
        """
        if self._dyn is None:
            raise RuntimeError("call reset() before edit_frame()")
        from bridge.prompts.edit import paste_layer

        edited = paste_layer(self._frame, rgba, x, y)
        m, (action, cond) = self.model, self._last
        with self.autocast_context():
            img = torch.from_numpy(edited).to(self.device).float() / 255.0
            tokens = m.tokenizer.encode(img[None, None])[0][:, 0]  # (1, N)
            self._dyn.rewind()
            self._dec.rewind()
            frame, _ = commit_frame(m, tokens, action, cond, self._dyn, self._dec)
            self._frame, self._tokens = to_uint8(frame[0]), tokens
        return self._frame.copy()

    def _sync(self) -> float:
        """Wait for the GPU (timings must not stop before the work does); returns the time after."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def get_state(self) -> dict[str, Any]:
        """Caches + RNG + last frame: restoring it continues bit-exactly as the original would have."""
        if self._dyn is None:
            raise RuntimeError("call reset() before get_state()")
        return {"dyn": self._dyn.clone(), "dec": self._dec.clone(), "rng": self._gen.get_state(),
                "frame": self._frame.copy(), "seed": self.seed, "model": str(self.path),
                "event": self.prompts.track.get_state(), "last": self._last,
                "tokens": None if self._tokens is None else self._tokens.clone()}

    def set_state(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("model") != str(self.path):
            raise ValueError("state was not taken by get_state() of this world model")
        self._dyn, self._dec = state["dyn"].clone(), state["dec"].clone()
        self._gen.set_state(state["rng"])
        self._frame, self.seed = state["frame"].copy(), state["seed"]
        self.prompts.track.set_state(state.get("event", (None, 0)))
        self._last = state.get("last", self._last)
        self._tokens = None if state.get("tokens") is None else state["tokens"].clone()

    @property
    def frame(self) -> np.ndarray | None:
        return None if self._frame is None else self._frame.copy()

    @property
    def event_frames_left(self) -> int:
        """Frames the last event still conditions: the host fires the next queued event after them."""
        return self.prompts.track.left

    @property
    def last_tokens(self) -> torch.Tensor | None:
        """(N,) token map of the current frame (what the rollout health check reads), or None before reset."""
        return None if self._tokens is None else self._tokens[0].detach().clone()


def _stack_caches(caches: list[KVCache]) -> KVCache:
    """Caches of one-session batches at the same position -> one cache whose batch row b is caches[b]."""
    c0 = caches[0]
    out = KVCache(len(c0.k), c0.window)
    out.k = [None if t is None else torch.cat([c.k[i] for c in caches]) for i, t in enumerate(c0.k)]
    out.v = [None if t is None else torch.cat([c.v[i] for c in caches]) for i, t in enumerate(c0.v)]
    out.slot_pos = None if c0.slot_pos is None else c0.slot_pos.clone()
    out.pos, out.filled = c0.pos, c0.filled
    return out


def _unstack_cache(merged: KVCache, cache: KVCache, row: int, rows: int) -> None:
    """Point `cache` at its batch row of `merged` (views, no copy) after the batch committed a frame."""
    for i, (k, v) in enumerate(zip(merged.k, merged.v)):
        if k is not None:
            n = k.shape[0] // rows
            cache.k[i], cache.v[i] = k[row * n:(row + 1) * n], v[row * n:(row + 1) * n]
    cache.slot_pos = None if merged.slot_pos is None else merged.slot_pos.clone()
    cache.pos, cache.filled = merged.pos, merged.filled


class _SkipInit(TorchFunctionMode):
    """Inside: nn.init and in-place random fills do nothing, since a checkpoint overwrites every weight next
    (random init was ~75 % of building the tiny model). Torch function modes are per thread."""

    FILLS = {torch.Tensor.normal_, torch.Tensor.uniform_}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__module__", None) == "torch.nn.init" or func in self.FILLS:
            return args[0] if args else kwargs["tensor"]
        return func(*args, **(kwargs or {}))


def _load_model(path: Path) -> tuple[WorldModel, dict[str, Any]]:
    """WorldModel.load without the wasted random init; the same checks and clear errors (load_into)."""
    cfg, tensors, card, _ = load_model(path, kind="world")
    with _SkipInit():
        model = WorldModel(cfg, bank_size=tensors["bank"].shape[0] if "bank" in tensors else 0)
    load_into(model, tensors, where=str(path / "model.safetensors"))
    return model.eval(), card


def _bf16_linears(module: torch.nn.Module) -> None:
    """Store Linear weights in bf16: autocast casts them to exactly these values on every call anyway (its cast
    cache lives only as long as one autocast block, i.e. one step), so frames are bit-identical and ~2 ms faster."""
    for m in module.modules():
        if isinstance(m, torch.nn.Linear):
            m.to(torch.bfloat16)


def _compile_mode(compile: bool | str) -> str | None:
    """compile= argument, else WORLDBRIDGE_COMPILE (1/default/reduce-overhead/max-autotune; 0 or unset = off)."""
    if not compile:
        compile = os.environ.get("WORLDBRIDGE_COMPILE", "").strip()
    if compile in (False, "", "0", "off", "false"):
        return None
    if compile is True or compile in ("1", "on", "true"):
        return "default"
    if compile not in ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"):
        raise ValueError(f"unknown torch.compile mode {compile!r} (WORLDBRIDGE_COMPILE): use 1, default, "
                         "reduce-overhead or max-autotune")
    return str(compile)


def bf16_by_default(device: torch.device) -> bool:
    """bf16 autocast on CUDA always, on a CPU only where measured faster (AVX-512 BF16): docs/model.md."""
    if device.type == "cuda":
        return True
    try:
        return bool(torch.backends.cpu.get_cpu_capability() == "AVX512" and torch.cpu._is_avx512_bf16_supported())
    except AttributeError:
        return False


def load_world(path: str | Path | None = None, device: str | torch.device | None = None,
               autocast: bool | None = None, compile: bool | str = False) -> WorldModelBackend:
    """A world checkpoint dir (None -> the embedded default) as a WorldBackend; compile= 'default'/'reduce-overhead' on GPU."""
    if path is None:
        path = DEFAULT_WORLD
        if not (path / "config.json").is_file():
            raise CheckpointError(f"no embedded default world at {path}: train one with `worldbridge train dynamics ...` "
                                  "and pass its run directory (or copy it there)")
    dev = pick_device(device)
    mode = _compile_mode(compile)
    model, card = _load_model(Path(path))
    backend = WorldModelBackend(model, card, Path(path), dev, autocast)
    if backend.autocast:
        _bf16_linears(backend.model.dynamics)  # not the tokenizer: prompt models fingerprint its fp32 weights
    if mode:
        # CUDA graph trees cannot replay these transformers: their KV caches are written in place and read on the
        # next call, after a graph replay has overwritten them (found on an H100), so reduce-overhead compiles
        # without graphs.
        mode = "default" if mode == "reduce-overhead" else mode
        backend.model.dynamics.st = torch.compile(backend.model.dynamics.st, mode=mode, dynamic=True)
        backend.model.tokenizer.decoder = torch.compile(backend.model.tokenizer.decoder, mode=mode, dynamic=True)
    return backend
