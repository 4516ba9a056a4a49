"""The Gymnasium env as recorders see it: frames are played back at the world's own rate."""

from bridge.gym import WorldEnv
from bridge.worlds.sandbox import SANDBOX_FPS


def test_render_fps_is_the_worlds_own_frame_rate():
    env = WorldEnv(backend="sandbox")
    assert env.metadata["render_fps"] == SANDBOX_FPS  # 15: a RecordVideo of the sandbox plays at real speed
    assert WorldEnv.metadata["render_fps"] == 24  # the class default is left alone
    env.close()
