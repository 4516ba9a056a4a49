"""A trained world model behind the WorldBackend contract (bridge/backend.py), one frame per step."""

from __future__ import annotations

import secrets
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bridge.backend import Prompt, WorldEvent
from bridge.model.checkpoint import CheckpointError
from bridge.model.genie import WorldModel
from bridge.model.sampler import mask_schedule, sample_frame

DEFAULT_WORLD = Path(__file__).resolve().parent.parent / "assets" / "default_world"


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Explicit device, else CUDA when present, else CPU."""
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for but CUDA is not available: pass --device cpu")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    return (frames.float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def resize_image(image: np.ndarray, height: int, width: int) -> torch.Tensor:
    """Any (H, W, 3|4) uint8 image -> (height, width, 3) float in [0, 1] (antialiased bilinear)."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
        raise ValueError(f"prompt image must be (H, W, 3) uint8 RGB, got shape {img.shape} dtype {img.dtype}")
    x = torch.from_numpy(np.ascontiguousarray(img[..., :3])).permute(2, 0, 1)[None].float() / 255.0
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).clamp(0, 1)


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
                         "unmask": d.unmask}
        # bf16 autocast: on CUDA always; on CPU only where measured faster (AVX-512 BF16), see docs/model.md
        self.autocast = (device.type == "cuda" or _cpu_has_bf16()) if autocast is None else autocast
        self.last_timings: dict[str, float] = {}
        self.seed: int | None = None
        self._gen = torch.Generator(device=device)
        self._dyn = self._dec = None
        self._frame: np.ndarray | None = None

    # --- settings ---
    def configure(self, steps: int | None = None, temperature: float | None = None, cfg: float | None = None,
                  unmask: str | None = None) -> dict[str, Any]:
        """Change sampling settings (None keeps a value); returns the current settings."""
        if steps is not None:
            mask_schedule(int(steps), self.cfg.tokens_per_frame)  # validates the range
            self.settings["steps"] = int(steps)
        if temperature is not None:
            if temperature < 0:
                raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
            self.settings["temperature"] = float(temperature)
        if cfg is not None:
            if cfg < 0:
                raise ValueError(f"cfg (guidance scale) must be >= 0 (1 = off), got {cfg}")
            self.settings["cfg"] = float(cfg)
        if unmask is not None:
            if unmask not in ("random", "confidence"):
                raise ValueError(f"unmask must be 'random' or 'confidence', got {unmask!r}")
            self.settings["unmask"] = unmask
        return dict(self.settings)

    def _ctx(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast)

    # --- WorldBackend ---
    @torch.no_grad()
    def reset(self, prompt: Prompt | None = None) -> np.ndarray:
        """Start from the prompt image/sketch (resized, tokenized) or from the seed's first frame in the bank."""
        prompt = prompt or Prompt()
        self.seed = prompt.seed if prompt.seed is not None else secrets.randbelow(2**31)
        self._gen.manual_seed(int(self.seed))
        if prompt.text:
            warnings.warn(f"{self.name} has no text conditioning; the text prompt is ignored "
                          "(start from an image, a sketch or a seed)", stacklevel=2)
        m, image = self.model, prompt.image if prompt.image is not None else prompt.sketch
        with self._ctx():
            if image is not None:
                x = resize_image(image, self.height, self.width).to(self.device)
                tokens = m.tokenizer.encode(x[None, None])[0][:, 0]  # (1, N)
            else:
                if len(m.bank) == 0:
                    raise ValueError(f"{self.path} stores no first frames: give the prompt an image")
                tokens = m.bank[int(self.seed) % len(m.bank)][None].to(self.device)  # (1, N)
            self._dyn, self._dec = m.dynamics.new_cache(), m.tokenizer.decoder.new_cache()
            null = torch.full((1, 1), m.dynamics.null_action, device=self.device)
            m.dynamics(tokens[:, None], null, None, self._dyn, append=True)
            self._frame = to_uint8(m.tokenizer.decode(tokens[:, None], self._dec)[0, 0])
        return self._frame.copy()

    @torch.no_grad()
    def step(self, action: int, event: WorldEvent | None = None) -> np.ndarray:
        """Generate the next frame under latent action `action` (and a trained event type, if given)."""
        if self._dyn is None:
            raise RuntimeError("call reset() before step()")
        if not isinstance(action, (int, np.integer)) or not 0 <= int(action) < self.num_latent_actions:
            raise ValueError(f"action must be an int in [0, {self.num_latent_actions}) ({', '.join(self.action_names)}), got {action!r}")
        cond = self._event_cond(event)
        m, s = self.model, self.settings
        a = torch.tensor([int(action)], device=self.device)
        with self._ctx():
            t0 = time.perf_counter()
            tokens = sample_frame(m.dynamics, self._dyn, a, s["steps"], s["temperature"], s["cfg"], s["unmask"],
                                  cond=cond, generator=self._gen)
            self._sync()
            t1 = time.perf_counter()
            frame = m.tokenizer.decode(tokens[:, None], self._dec)[0, 0]
            self._frame = to_uint8(frame)
            t2 = time.perf_counter()
        self.last_timings = {"dynamics": (t1 - t0) * 1e3, "decode": (t2 - t1) * 1e3}
        return self._frame.copy()

    def _event_cond(self, event: WorldEvent | None) -> torch.Tensor | None:
        if event is None or (event.type is None and not event.text):
            return None
        if event.type is None:
            raise ValueError(f"{self.name} has no text conditioning: send a typed event, one of {self.event_types}")
        if event.type not in self.event_types:
            known = ", ".join(self.event_types) or "none (this checkpoint was not trained with events)"
            raise ValueError(f"unknown event type {event.type!r}; {self.name} knows: {known}")
        vec = self.model.event_embed[self.event_types.index(event.type)]
        return vec.to(self.device)[None, None]  # (1, 1, C): conditions the frame generated now

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def get_state(self) -> dict[str, Any]:
        """Caches + RNG + last frame: restoring it continues bit-exactly as the original would have."""
        if self._dyn is None:
            raise RuntimeError("call reset() before get_state()")
        return {"dyn": self._dyn.clone(), "dec": self._dec.clone(), "rng": self._gen.get_state(),
                "frame": self._frame.copy(), "seed": self.seed, "model": str(self.path)}

    def set_state(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("model") != str(self.path):
            raise ValueError("state was not taken by get_state() of this world model")
        self._dyn, self._dec = state["dyn"].clone(), state["dec"].clone()
        self._gen.set_state(state["rng"])
        self._frame, self.seed = state["frame"].copy(), state["seed"]

    @property
    def frame(self) -> np.ndarray | None:
        return None if self._frame is None else self._frame.copy()


def _cpu_has_bf16() -> bool:
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
    model, card, _ = WorldModel.load(Path(path))
    backend = WorldModelBackend(model, card, Path(path), dev, autocast)
    if compile:
        mode = compile if isinstance(compile, str) else "default"
        backend.model.dynamics.st = torch.compile(backend.model.dynamics.st, mode=mode, dynamic=True)
        backend.model.tokenizer.decoder = torch.compile(backend.model.tokenizer.decoder, mode=mode, dynamic=True)
    return backend
