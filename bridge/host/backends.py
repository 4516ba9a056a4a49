"""Which world a host serves: the sandbox game, a checkpoint, or the embedded default model, made per session."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from bridge import DEFAULT_WORLD
from bridge.backend import WorldBackend, backend_label
from bridge.worlds.sandbox import SandboxWorld

SANDBOX_NOTICE = f"no trained world model found; serving {backend_label('sandbox', SandboxWorld.name)}"


@dataclass
class BackendSpec:
    """How to make one backend instance per session; `kind` is "sandbox" or "world_model"."""

    kind: str
    checkpoint: str | None = None
    factory: Callable[[], WorldBackend] | None = None  # overrides the above (tests, embedding)
    notice: str | None = None  # shown loudly at startup (e.g. the sandbox fallback)
    sandbox_size: int = 64
    settings: dict[str, Any] | None = None  # world-model sampling settings every session starts with (bench --cfg)

    def create(self) -> WorldBackend:
        if self.factory is not None:
            return self.factory()
        if self.kind == "sandbox":
            return SandboxWorld(size=self.sandbox_size, seed=0)
        from bridge.model.world import load_world

        world = load_world(self.checkpoint)
        if self.settings:
            world.configure(**self.settings)
        return world


def resolve_backend(backend: str | None = None, checkpoint: str | Path | None = None) -> BackendSpec:
    """backend="sandbox" / checkpoint=PATH / neither (embedded default model, else the sandbox, loudly). A command
    line words its own refusals (bridge.options: one_backend, backend_refused)."""
    if backend is not None and checkpoint is not None:
        raise ValueError("give either backend='sandbox' or checkpoint=PATH, not both")
    if backend is not None:
        if backend != "sandbox":
            raise ValueError(f"unknown backend {backend!r}: use backend='sandbox' or checkpoint=PATH")
        return BackendSpec("sandbox")
    if checkpoint is not None:
        if not Path(checkpoint).exists():
            from bridge.model.checkpoint import missing_text  # lazily: it imports torch

            raise FileNotFoundError(missing_text(checkpoint))  # a command adds its way out: options.backend_refused
        return BackendSpec("world_model", checkpoint=str(checkpoint))
    if (DEFAULT_WORLD / "config.json").is_file():
        return BackendSpec("world_model", checkpoint=str(DEFAULT_WORLD))
    return BackendSpec("sandbox", notice=SANDBOX_NOTICE)


def set_cpu_threads(threads: int | None = None) -> int:
    """Run the world model on one CPU thread unless told otherwise: beside one busy core (a game engine, a build) two
    threads wait on each other (measured: the demo ran 7.8 frames/s on 2 threads, 31.3 on 1; idle, 31.3 and 31.5).
    Call before the world loads: threads that already ran PyTorch keep their count. Returns the count in force."""
    import torch

    if threads is None and not os.environ.get("OMP_NUM_THREADS"):
        threads = 1
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def preload(spec: BackendSpec) -> BackendSpec:
    """Load a world model now, so a damaged or wrong checkpoint is refused at startup rather than at a client's first
    start; sessions then spawn from this one load (in-process hosts only: a loaded world does not pickle)."""
    if spec.kind != "world_model" or spec.factory is not None:
        return spec
    made: dict[str, Any] = {}

    def load() -> None:
        try:
            made["world"] = spec.create()
        except BaseException as e:  # re-raised in the caller's thread
            made["error"] = e

    # On a thread that ends, as the host's loader threads are: torch's OpenMP workers started by a thread live as
    # long as it does, and the main thread's would then compete with the host thread's for the cores (measured: the
    # demo ran at 15 frames/s with the world loaded on the main thread, 30 with it loaded here).
    loader = threading.Thread(target=load, name="worldbridge-preload")
    loader.start()
    loader.join()
    if "error" in made:
        raise made["error"]
    world = made["world"]
    return replace(spec, factory=lambda: world)


def warm_text(spec: BackendSpec) -> threading.Thread | None:
    """Start loading the text encoder a served world model reads prompts and free-text events with (~8 s on a small
    CPU), on a background thread, so the first text prompt does not wait for it; None when the world reads no text."""
    if spec.kind != "world_model" or spec.checkpoint is None:
        return None
    from bridge.prompts.runtime import text_encoders
    from bridge.prompts.text_encoder import warm_up

    names = text_encoders(spec.checkpoint)
    return warm_up(names) if names else None


def _first_made(factory: Callable[[], WorldBackend]) -> BackendSpec:
    """A factory's spec: its kind is known only from a world it makes, so that world serves the first create() (a
    world-model factory would otherwise load its weights twice for one session)."""
    made = [factory()]

    def create() -> WorldBackend:
        try:
            return made.pop()
        except IndexError:  # the probe is taken (pop is atomic: two loader threads never share it)
            return factory()

    return BackendSpec(getattr(made[0], "kind", "sandbox"), factory=create)


def as_spec(spec: Any) -> BackendSpec:
    """Accept a BackendSpec, {"backend", "checkpoint"} dict, "sandbox", a checkpoint path, None or a factory."""
    if isinstance(spec, BackendSpec):
        return spec
    if spec is None:
        return resolve_backend()
    if isinstance(spec, dict):
        return resolve_backend(spec.get("backend"), spec.get("checkpoint"))
    if isinstance(spec, str) and spec == "sandbox":
        return resolve_backend("sandbox")
    if isinstance(spec, (str, Path)):
        return resolve_backend(checkpoint=spec)
    if callable(spec):
        return _first_made(spec)
    raise TypeError(f"cannot make a backend from {spec!r}: pass 'sandbox', a checkpoint path or a BackendSpec")


class BackendPool:
    """The specs a host can serve by name; a checkpoint is read from disk once per path when its backend can `spawn`.

    Thread-safe: the host makes backends on loader threads, so loading one never stalls the sessions it serves.
    """

    def __init__(self, default: BackendSpec):
        self.default = default
        self.specs: dict[str, BackendSpec] = {default.kind: default}
        if "sandbox" not in self.specs:
            self.specs["sandbox"] = BackendSpec("sandbox")
        self._templates: dict[str, WorldBackend] = {}  # checkpoint path (or kind) -> a loaded backend kept to spawn
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.loads = 0  # backends made from their spec (a checkpoint read from disk, a factory called)

    @property
    def names(self) -> list[str]:
        return sorted(self.specs)

    def create(self, name: str | None) -> WorldBackend:
        """A fresh, isolated backend for one session (a model backend's `spawn()` shares weights when it has one)."""
        spec = self.specs.get(name or self.default.kind)
        if spec is None:
            raise KeyError(f"backend {name!r} is not served here; this host serves {self.names}")
        key = spec.checkpoint or spec.kind
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # a second session of the same checkpoint waits for the first load, then spawns from it
            template = self._templates.get(key)
            if template is None:
                backend = spec.create()
                self.loads += 1
                if not callable(getattr(backend, "spawn", None)):
                    return backend  # cannot share weights: every session loads its own
                self._templates[key] = template = backend
        return template.spawn()


def announce(spec: BackendSpec, stream=sys.stderr) -> None:
    """Say loudly which backend is served (the sandbox is a test backend, never the world model)."""
    if spec.notice:
        bar = "!" * len(spec.notice)
        print(f"{bar}\n{spec.notice}\n{bar}", file=stream)

