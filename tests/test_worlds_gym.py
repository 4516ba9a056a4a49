"""The Gymnasium env as recorders see it: frames are played back at the world's own rate."""

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest

from bridge.gym import WorldEnv
from bridge.worlds.sandbox import SANDBOX_FPS, SandboxWorld


def test_render_fps_is_the_worlds_own_frame_rate():
    env = WorldEnv(backend="sandbox")
    assert env.metadata["render_fps"] == SANDBOX_FPS  # 15: a RecordVideo of the sandbox plays at real speed
    assert WorldEnv.metadata["render_fps"] == 24  # the class default is left alone
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
    from gymnasium.utils.env_checker import check_env

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
