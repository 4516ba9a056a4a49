"""`WorldEnv`: any world (in-process backend or a remote host) as a Gymnasium env, for agents and scripted tests.

Importing this module registers the ids in `ENV_IDS` for `gymnasium.make` (gymnasium 1.x loads no env plugins, so
`import bridge.gym` first, or name the module in the id: `gymnasium.make("bridge.gym:WorldBridge/Sandbox-v0")`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import gymnasium
import numpy as np
from gymnasium import spaces

from bridge import DEFAULT_WORLD
from bridge.backend import DEFAULT_FPS, Prompt, close_backend, own_fps
from bridge.host.protocol import DEFAULT_ADDRESS, Limits, ProtocolError

RewardFn = Callable[[np.ndarray, int, np.ndarray, dict], float]


class WorldEnv(gymnasium.Env):
    """Step-mode world: observation = the (H, W, 3) uint8 frame, action = Discrete(number of actions).

    Pass `backend` (a loaded world such as `bridge.load_world()`, "sandbox", a checkpoint folder) to run in-process,
    or `address` to drive a host through WorldClient in step mode (`backend_name` picks the host's backend: "sandbox",
    "world_model"). `reward_fn(prev_obs, action, obs, info)` supplies rewards (default 0). `close()` frees the world
    the env made (from a string or a factory); a world passed in stays its owner's.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": DEFAULT_FPS}

    def __init__(self, backend: Any = None, address: str | None = None, *, backend_name: str | None = None,
                 text: str | None = None, image: np.ndarray | None = None, sketch: np.ndarray | None = None,
                 reward_fn: RewardFn | None = None, max_steps: int | None = None, render_mode: str | None = "rgb_array",
                 timeout: float = 10.0) -> None:
        if backend is not None and address is not None:
            raise ValueError(f"backend={backend!r} runs a world in this process, address= drives a host: to pick the "
                             f"host's backend, pass backend_name={backend!r} with address= (with gymnasium.make: "
                             f"the id WorldBridge/Host-v0)")
        if backend is None and address is None:
            raise ValueError("give exactly one of backend= (in-process) or address= (a running host)")
        if render_mode not in (None, "rgb_array"):  # None: no rendering, as gymnasium.make passes by default
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'rgb_array' or None")
        self.render_mode = render_mode
        self.reward_fn = reward_fn
        self.max_steps = max_steps
        self._prompt = {"text": text, "image": image, "sketch": sketch}
        self.client = None
        self.world = None
        self._owns_world = False  # made here (from a string or a factory), so close() frees it
        self.last_timings: dict = {}  # a remote step's per-stage ms (host and backend)
        if address is not None:
            from bridge.client import WorldClient

            self.client, self._backend_arg, self._timeout = (WorldClient(address, client_name="worldbridge-gym",
                                                                         timeout=timeout), backend_name, timeout)
            try:
                s = self._start(self._prompt, seed=None)
            except BaseException:
                self.client.close()  # say bye: the host forgets this client now, not at its idle timeout
                raise
            h, w, n = s["height"], s["width"], max(s["num_latent_actions"], len(s["action_names"]))
            self.action_names = list(s["action_names"])
            self.backend_kind, self.backend_name = s["backend_kind"], s["backend_name"]
            fps = s["fps"]
        else:
            if hasattr(backend, "step") and hasattr(backend, "reset"):
                self.world = backend
            else:
                from bridge.host.backends import as_spec

                if isinstance(backend, (str, Path)) and backend != "sandbox" and not Path(backend).exists():
                    raise FileNotFoundError(
                        f"WorldEnv(backend={str(backend)!r}): no checkpoint folder there; backend= takes 'sandbox', a "
                        "checkpoint folder (a run dir of `worldbridge train`) or a loaded world: "
                        "WorldEnv(bridge.load_world()) for the embedded default world. To drive a host's world model, "
                        "pass address= and backend_name='world_model'")
                self.world, self._owns_world = as_spec(backend).create(), True
            h, w = int(self.world.height), int(self.world.width)
            n = max(int(self.world.num_latent_actions), len(self.world.action_names))
            self.action_names = list(self.world.action_names)
            self.backend_kind = getattr(self.world, "kind", "sandbox")
            self.backend_name = getattr(self.world, "name", type(self.world).__name__)
            fps = own_fps(self.world, Limits.fps_min, Limits.fps_max)  # as a host plays it to a client naming none
        # the rate video recorders (gymnasium's RecordVideo) play the frames back at: the world's own (the sandbox 15),
        # in-process or through a host, which plays it at that rate since `start` names none (`session.fps`)
        self.metadata = {**self.metadata, "render_fps": float(fps)}
        self.observation_space = spaces.Box(0, 255, shape=(h, w, 3), dtype=np.uint8)
        self.action_space = spaces.Discrete(n)
        self._obs: np.ndarray | None = None
        self._steps = 0

    def get_action_meanings(self) -> list[str]:
        """A name for every action id (Atari's convention, which `data capture` and wrappers read): the backend's own,
        then `latent_N` for the latent actions it names none for."""
        n = int(self.action_space.n)
        return [*self.action_names[:n], *(f"latent_{i}" for i in range(len(self.action_names), n))]

    def _start(self, prompt: dict, seed: int | None) -> dict:
        """A step-mode session on the host (greeting it first when needed) and its first frame; returns `session`."""
        s = self.client.start(backend=self._backend_arg, mode="step", seed=seed, **prompt)
        self._sent = prompt
        if seed is None:
            self.client.next_frame(timeout=self._timeout)  # frame 0 of the world __init__ starts; reset takes its own
        return s

    def _check_open(self) -> None:
        """close() ended the host session or let go of the world: say so, rather than fail on a missing one."""
        if self.client is None and self.world is None:
            raise RuntimeError("this WorldEnv is closed (close() ended its host session or let go of its world): make "
                               "a new WorldEnv")

    def _info(self, **extra: Any) -> dict:
        return {"backend_kind": self.backend_kind, "backend_name": self.backend_name, "frame_index": self._steps,
                **extra}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """A new world; `options` may override text/image/sketch of the prompt."""
        self._check_open()
        self._obs = None  # until this reset has its frame: a failed reset leaves the world unknown
        super().reset(seed=seed)
        world_seed = int(seed) if seed is not None else int(self.np_random.integers(2**31 - 1))
        prompt = {**self._prompt, **_prompt_options(options or {}, list(self._prompt))}
        if self.client is not None:
            # a prompt key to clear needs a new session: `reset` keeps what it is not given (nil keeps the old)
            fresh = self.client.session is None or any(self._sent[k] is not None and prompt[k] is None for k in prompt)
            if not fresh:
                try:
                    self.client.reset(seed=world_seed, **prompt)
                    self._sent = prompt
                except ProtocolError as e:  # the host closed the session (idle timeout) or restarted
                    if e.code not in ("no_session", "not_ready"):
                        raise
                    fresh = True
            if fresh:
                self._start(prompt, seed=world_seed)
            frame = self.client.next_frame()
            if frame is None:
                raise self.client.timed_out("no frame after `reset`", self.client.timeout)
            obs = frame.image.copy()  # writable, as in-process observations are
        else:
            obs = np.asarray(self.world.reset(Prompt(seed=world_seed, **prompt)))
        self._obs, self._steps = obs, 0
        return obs, self._info()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        """One frame under `action`; never terminates (a world has no end), truncates at `max_steps`."""
        self._check_open()
        if self._obs is None:
            raise RuntimeError("call reset() before step() (a failed step or reset leaves the world unknown)")
        if isinstance(action, bool) or not self.action_space.contains(action):  # 1.7 or True is no action, not 1
            raise ValueError(f"action {action!r} is outside {self.action_space}: give an integer 0-{self.action_space.n - 1}")
        action = int(action)
        if self.client is not None:
            try:
                frame = self.client.step(action)
            except ProtocolError as e:  # a step the host answers late still moves its world: only a reset is sure
                self._obs = None
                if not e.fatal:
                    raise
                raise ProtocolError(e.code, f"{e.message}; with WorldEnv, reset() starts a new episode", True,
                                    e.capability) from e  # the session is gone: the client's start() is not the env's
            obs, info = frame.image.copy(), self._info(events=frame.events)
            self.last_timings = frame.timings  # per-stage ms; not in `info`, which must repeat for a repeated seed
        else:
            obs, info = np.asarray(self.world.step(action)), self._info(events=[])
        self._steps += 1
        info["frame_index"] = self._steps
        reward = float(self.reward_fn(self._obs, action, obs, info)) if self.reward_fn else 0.0
        self._obs = obs
        truncated = self.max_steps is not None and self._steps >= self.max_steps
        return obs, reward, False, truncated, info

    def render(self) -> np.ndarray | None:
        """The last observation (render_mode "rgb_array"), which is what a video recorder wants; None without one."""
        return self._obs if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        """End the host session now, not at the host's idle timeout; in-process, free the world the env made (a world
        model's weights) now, not when the env is garbage-collected. A world passed in is left to its owner."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.world is not None:
            if self._owns_world:
                close_backend(self.world)
            self.world, self._obs = None, None


def _prompt_options(options: dict, keys: list[str]) -> dict:
    """`reset(options=...)` checked, so a misspelt key or a wrong type is named instead of ignored."""
    if not isinstance(options, dict) or set(options) - set(keys):
        raise ValueError(f"reset options may set {keys}, got {options!r}")
    for k, v in options.items():
        if k == "text" and not (v is None or isinstance(v, str)):
            raise ValueError(f"reset option text must be a string or None, got {v!r}")
        if k != "text" and v is not None and not (isinstance(v, np.ndarray) and v.ndim == 3 and v.shape[2] in (3, 4)
                                                  and v.dtype == np.uint8):
            raise ValueError(f"reset option {k} must be an (H, W, 3|4) uint8 image or None, got {type(v).__name__}")
    return options


# gymnasium.make ids -> WorldEnv kwargs (make's own kwargs override them); a world loads when its env is made
ENV_IDS = {
    "WorldBridge/Sandbox-v0": {"backend": "sandbox"},  # the sandbox game in this process: the test backend
    "WorldBridge/DefaultWorld-v0": {"backend": str(DEFAULT_WORLD)},  # the embedded default world in this process
    "WorldBridge/Host-v0": {"address": DEFAULT_ADDRESS},  # a host's world (`worldbridge serve`'s address)
}
for _id, _kwargs in ENV_IDS.items():
    if _id not in gymnasium.registry:  # a reload must not warn that it overrides them
        gymnasium.register(_id, entry_point="bridge.gym:WorldEnv", kwargs=_kwargs)
