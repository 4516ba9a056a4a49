"""The Gymnasium env as recorders see it: frames are played back at the world's own rate."""

import numpy as np
import pytest

from bridge.gym import WorldEnv
from bridge.worlds.sandbox import SANDBOX_FPS


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
