"""Weather particles stay inside the frame for every camera position (float modulo can round up to the size)."""

import numpy as np

from bridge.worlds.render import Particles


def test_particles_never_index_outside_the_frame():
    for seed in range(8):
        p = Particles(64, 64, seed, 4)
        frame = np.zeros((64, 64, 3), np.uint8)
        for t in range(600):
            for cam_x in (t * 3, t * 7 + 1, 4096 - t):
                p.snow(frame, t, cam_x, (255, 255, 255))
                p.rain(frame, t, cam_x, (0, 0, 255))
    assert frame.any()


def test_snow_at_a_camera_position_where_float_modulo_rounds_up():
    p = Particles(64, 64, 2, 4)  # seed 2, frame 915, camera 22: the pre-modulo x is -1e-15 for one flake
    frame = np.zeros((64, 64, 3), np.uint8)
    p.snow(frame, 915, 22, (255, 255, 255))
    assert (frame == 255).any()
