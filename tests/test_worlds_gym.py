"""The Gymnasium env as recorders see it: frames are played back at the world's own rate."""

import gc
import subprocess
import sys
import warnings
import weakref
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from bridge.backend import DEFAULT_FPS
from bridge.gym import ENV_IDS, WorldEnv
from bridge.worlds.sandbox import SANDBOX_FPS, SandboxWorld


def test_render_fps_is_the_worlds_own_frame_rate():
    env = WorldEnv(backend="sandbox")
    assert env.metadata["render_fps"] == SANDBOX_FPS  # 15: a RecordVideo of the sandbox plays at real speed
    assert WorldEnv.metadata["render_fps"] == DEFAULT_FPS  # the class default is left alone
    env.close()


class RatelessWorld(SandboxWorld):
    fps = None  # a backend that states no rate, as `own_fps` reads it


def test_a_world_that_states_no_rate_renders_at_the_hosts_default():
    """In-process as through a host: a world without a usable `fps` plays at DEFAULT_FPS."""
    env = WorldEnv(backend=RatelessWorld())
    assert env.metadata["render_fps"] == DEFAULT_FPS
    env.close()


class TooFastWorld(SandboxWorld):
    fps = 200.0  # beyond the 1-120 a session plays at


def test_a_world_beyond_the_hosts_rates_renders_at_the_rate_a_host_plays_it():
    """A world stating 200 fps got render_fps 200 in-process while a host plays it at 120: recordings ran too fast."""
    from bridge.host.session import Session

    env = WorldEnv(backend=TooFastWorld())
    assert env.metadata["render_fps"] == Session(TooFastWorld()).fps == 120.0
    env.close()


def test_render_fps_through_a_host_is_the_worlds_own_frame_rate(sandbox_host):
    """Through a host too: the env names no rate, so the host plays the sandbox at its 15 (it was 24, the client's)."""
    env = WorldEnv(address=sandbox_host.address, backend_name="sandbox")
    assert env.metadata["render_fps"] == SANDBOX_FPS
    env.close()


@pytest.mark.parametrize("action", [1.7, "2", 7, -1, np.float32(3.0), True])
def test_an_action_outside_the_space_is_refused_not_rounded(action):
    env = WorldEnv(backend="sandbox")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"is outside Discrete\(7\): give an integer 0-6"):
        env.step(action)
    assert env.step(np.int64(2))[4]["frame_index"] == 1  # numpy integers are actions
    env.close()


def test_render_mode_none_is_accepted_and_renders_nothing():
    env = WorldEnv(backend="sandbox", render_mode=None, max_steps=3)
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    assert env.render() is None
    with pytest.raises(ValueError, match="render_mode 'human' is not supported; use 'rgb_array' or None"):
        WorldEnv(backend="sandbox", render_mode="human")


@pytest.mark.parametrize("options, named", [({"txt": "a cave"}, "may set"), ({"text": 5}, "text must be a string"),
                                            ({"sketch": [[0]]}, "sketch must be an .* uint8 image")])
def test_reset_options_that_would_be_ignored_are_refused(options, named):
    env = WorldEnv(backend="sandbox")
    with pytest.raises(ValueError, match=named):
        env.reset(seed=0, options=options)
    assert env.reset(seed=0, options={"text": "a snowy cave"})[0].shape == (64, 64, 3)
    env.close()


def test_backend_with_address_names_backend_name():
    """`backend=` is in-process only; a user who gives it with `address=` is told which argument picks the host's."""
    with pytest.raises(ValueError, match=r"pass backend_name='sandbox' with address="):
        WorldEnv(backend="sandbox", address="tcp://127.0.0.1:5555")
    with pytest.raises(ValueError, match="exactly one"):
        WorldEnv()
    with pytest.raises(ValueError, match="with gymnasium.make: the id WorldBridge/Host-v0"):  # the in-process id
        gymnasium.make("WorldBridge/Sandbox-v0", address="tcp://127.0.0.1:5555")


class ClosableSandbox(SandboxWorld):
    """The sandbox game counting close() calls, as a backend holding weights or files would free them."""

    def __init__(self):
        super().__init__(64, 0)
        self.closed = 0

    def close(self):
        self.closed += 1


def test_close_lets_go_of_the_world_the_env_made_and_leaves_a_passed_one_to_its_owner():
    """A world model's weights stayed in memory until the env was garbage-collected: close() did nothing in-process."""
    made = []
    env = WorldEnv(lambda: made.append(ClosableSandbox()) or made[-1])  # a factory: the env makes its own world
    env.reset(seed=0)
    world = weakref.ref(env.world)
    env.close()
    env.close()  # twice is fine
    assert made[-1].closed == 1
    del made[:]
    gc.collect()
    assert world() is None  # nothing in the env keeps it
    for call in (lambda: env.step(1), lambda: env.reset(seed=2)):
        with pytest.raises(RuntimeError, match=r"this WorldEnv is closed .*make a new WorldEnv"):
            call()
    mine = ClosableSandbox()
    env = WorldEnv(mine)
    env.reset(seed=0)
    env.close()
    assert mine.closed == 0 and mine.step(2).shape == (64, 64, 3)  # the caller's world is the caller's to close
    with pytest.raises(RuntimeError, match="this WorldEnv is closed"):
        env.step(1)


@pytest.mark.parametrize("backend", ["world_model", "no/such/run"])
def test_a_backend_string_that_names_nothing_says_what_python_accepts(backend):
    """`WorldEnv("world_model")` was read as a checkpoint path and told to pass `--backend sandbox`, a CLI option."""
    with pytest.raises(FileNotFoundError) as e:
        WorldEnv(backend)
    message = str(e.value)
    assert "--backend" not in message
    for accepted in ("'sandbox'", "a checkpoint folder", "bridge.load_world()", "backend_name="):
        assert accepted in message, message


def test_closing_an_in_process_env_needs_no_host():
    """close() imported the host server (and ZeroMQ) for its three-line backend close: an in-process env needs
    neither."""
    code = ("import sys\nfrom bridge.gym import WorldEnv\nenv = WorldEnv('sandbox')\nenv.reset(seed=0)\nenv.close()\n"
            "print(sorted(m for m in ('bridge.host.server', 'zmq') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout  # this tree's bridge
    assert out.split() == ["[]"]


IDS = ["WorldBridge/Sandbox-v0", "WorldBridge/DefaultWorld-v0", "WorldBridge/Host-v0"]  # `import bridge.gym` registers


def checked(env: gymnasium.Env) -> None:
    """gymnasium's checker on a made env, its render modes included: no "not having a spec" warning lets them go."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*not having a spec")
        check_env(env.unwrapped, skip_render_check=False)


@pytest.fixture(scope="module")
def sandbox_host():
    from bridge.host.server import run_host_in_thread

    h = run_host_in_thread("sandbox")
    yield h
    h.stop()


def made_kwargs(env_id: str, request) -> dict:
    """What `gymnasium.make` needs beside the id: a host's address for the env that drives one."""
    return {"address": request.getfixturevalue("sandbox_host").address} if env_id == "WorldBridge/Host-v0" else {}


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_make_gives_each_worldbridge_env_with_its_spec_and_wrappers(env_id, request):
    """An RL user's `gymnasium.make("WorldBridge/...")` found no such id: WorldEnv was registered nowhere."""
    env = gymnasium.make(env_id, **made_kwargs(env_id, request))
    try:
        assert env.spec.id == env_id and isinstance(env.unwrapped, WorldEnv)
        assert {"PassiveEnvChecker", "OrderEnforcing"} <= {type(w).__name__ for w in _wrappers(env)}
        obs, info = env.reset(seed=0)
        assert obs.shape == env.observation_space.shape and obs.dtype == np.uint8
        assert info["backend_kind"] == ("world_model" if env_id.endswith("DefaultWorld-v0") else "sandbox")
        obs, reward, terminated, truncated, info = env.step(1)
        assert info["frame_index"] == 1 and not terminated and not truncated
    finally:
        env.close()


def _wrappers(env):
    """The wrappers around the env `gymnasium.make` made, outermost first."""
    while hasattr(env, "env"):
        yield env
        env = env.env


@pytest.mark.parametrize("env_id", IDS)
def test_the_env_checker_tests_render_modes_on_a_made_env(env_id, request):
    """check_env warned that it could not test the render modes: an env without a spec cannot be made again."""
    env = gymnasium.make(env_id, max_steps=5, **made_kwargs(env_id, request))
    try:
        checked(env)
    finally:
        env.close()


def test_make_with_max_episode_steps_truncates_the_episode():
    env = gymnasium.make("WorldBridge/Sandbox-v0", max_episode_steps=3)
    env.reset(seed=0)
    assert [env.step(2)[3] for _ in range(3)] == [False, False, True]
    assert env.spec.max_episode_steps == 3
    env.close()


def test_the_registry_lists_the_worldbridge_ids_and_registering_loads_no_world():
    """Registration runs on `import bridge.gym` (gymnasium 1.x loads no plugins); it must load no world (torch)."""
    code = ("import sys, gymnasium\nimport bridge.gym\n"
            "print(sorted(m for m in ('torch', 'zmq') if m in sys.modules))\n"
            "print(gymnasium.pprint_registry(disable_print=True))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout
    assert out.splitlines()[0] == "[]", out
    assert "===== WorldBridge =====" in out
    assert all(env_id in out for env_id in IDS) and sorted(ENV_IDS) == sorted(IDS)


def test_make_imports_bridge_gym_itself_given_the_module_prefix():
    """`gymnasium.make("bridge.gym:WorldBridge/Sandbox-v0")` works in a fresh interpreter, bridge.gym not imported."""
    code = ("import gymnasium\nenv = gymnasium.make('bridge.gym:WorldBridge/Sandbox-v0')\n"
            "print(env.spec.id, env.reset(seed=0)[0].shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout
    assert out.split() == ["WorldBridge/Sandbox-v0", "(64,", "64,", "3)"]
