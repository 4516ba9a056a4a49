"""Sandbox physics: solid ground, jump arcs, camera, respawn, ladders, effective actions, determinism and snapshots."""

import numpy as np
import pytest
import torch

from bridge.backend import Prompt, WorldEvent
from bridge.worlds.sandbox import ACTIONS, DOWN, JUMP, LEFT, NOOP, RIGHT, RIGHT_JUMP, SandboxWorld
from test_worlds_helpers import ascii_sketch, flat_level, overlaps_solid

torch.set_num_threads(1)


@pytest.fixture
def world():
    return SandboxWorld(size=64, seed=0)


def test_backend_contract(world):
    assert world.kind == "sandbox" and world.name == "sandbox game"
    assert world.action_names == ACTIONS and world.num_latent_actions == len(ACTIONS) <= 8
    assert ACTIONS[:7] == ["noop", "left", "right", "jump", "left_jump", "right_jump", "down"]
    frame = world.reset(Prompt(seed=3))
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert world.step(RIGHT).shape == (64, 64, 3)
    assert world.sketch().shape == (64, 64, 3)


def test_player_never_passes_through_solid_tiles(world):
    for seed in range(6):
        world.reset(Prompt(seed=seed))
        rng = np.random.default_rng(seed)
        action = NOOP
        for t in range(400):
            if t % 4 == 0:
                action = int(rng.integers(len(ACTIONS)))
            world.step(action)
            assert not overlaps_solid(world), f"seed {seed} step {t}: player inside a solid tile at {world.s.x, world.s.y}"


def test_jump_rises_to_a_peak_then_falls_back(world):
    world.reset(Prompt(seed=0, sketch=ascii_sketch(flat_level())))
    y0 = world.s.y
    ys = [world.s.y]
    world.step(JUMP)
    for _ in range(30):
        ys.append(world.s.y)
        world.step(NOOP)
    ys = np.array(ys)
    peak = int(ys.argmin())
    assert 0 < peak < len(ys) - 1
    assert np.all(np.diff(ys[: peak + 1]) <= 0) and np.all(np.diff(ys[peak:]) >= 0)  # up, then down
    assert 2.5 < y0 - ys.min() < 4.0  # about 3 tiles high
    assert ys[-1] == pytest.approx(y0) and world.s.on_ground


def test_camera_follows_the_player(world):
    world.reset(Prompt(seed=0, sketch=ascii_sketch(flat_level(width=80))))
    cam0 = world.camera_x
    for _ in range(80):
        world.step(RIGHT)
    assert world.camera_x > cam0 + 40
    screen_x = world.s.x * world.tile - world.camera_x
    assert abs(screen_x - world.width / 2) < world.tile  # the player stays near the middle of the view


def test_camera_and_player_move_one_pixel_every_frame_at_walking_speed(world):
    """Halves rounded to even made the view jump 2 px every other frame: half the walking frames showed no motion."""
    world.reset(Prompt(seed=0, sketch=ascii_sketch(flat_level(width=80))))
    cams, xs = [], []
    for _ in range(60):
        world.step(RIGHT)
        cams.append(world.camera_x)
        xs.append(int(np.floor((world.s.x - (1 - 0.75) / 2) * world.tile + 0.5)))
    moving = np.diff(cams)[np.array(cams[:-1]) > 0]
    assert len(moving) > 20 and set(moving.tolist()) == {1}, cams
    assert set(np.diff(xs).tolist()) == {1}, xs


def test_falling_into_a_gap_respawns_and_the_episode_continues(world):
    rows = flat_level(width=40, extra={(r, c): "." for r in range(12, 14) for c in range(8, 11)} | {(r, c): "~" for r in (14, 15) for c in range(8, 11)})
    world.reset(Prompt(seed=0, sketch=ascii_sketch(rows)))
    xs = []
    for _ in range(60):
        world.step(RIGHT)
        xs.append(world.s.x)
        if world.s.deaths:
            break
    assert world.s.deaths == 1, "walking into the water-filled gap must respawn the player"
    assert world.s.x < 8 and world.s.on_ground  # back at the last safe spot before the gap
    assert world.effective_action == NOOP  # the jump back to the checkpoint was no key's doing (it read as LEFT)
    world.step(RIGHT)  # and play goes on


def test_walking_into_an_enemy_respawns_but_stomping_it_removes_it(world):
    world.reset(Prompt(seed=0, sketch=ascii_sketch(flat_level(extra={(11, 9): "E"}))))
    assert tuple(world.s.enemies[0, :2]) == (9, 11)  # the sketched enemy comes first (the seed adds more further on)
    for _ in range(40):
        world.step(RIGHT)
        if world.s.deaths:
            break
    assert world.s.deaths == 1
    # now jump onto it from above: stand still until it walks close, then hop
    world.reset(Prompt(seed=0, sketch=ascii_sketch(flat_level(extra={(11, 9): "E"}))))
    stomped = False
    for t in range(120):
        ex = world.s.enemies[0, 0]
        world.step(JUMP if 0 < ex - world.s.x < 2.5 and world.s.on_ground else NOOP)
        if not world.s.enemy_alive[0]:
            stomped = True
            break
    assert stomped and world.s.deaths == 0


def test_ladders_climb_up_and_down(world):
    extra = {(7, 5): "=", (7, 6): "H", (7, 7): "=", (7, 8): "="} | {(r, 6): "H" for r in range(8, 12)}
    world.reset(Prompt(seed=0, sketch=ascii_sketch(flat_level(extra=extra))))
    while world.s.x < 5.9:
        world.step(RIGHT)
    ground_y = world.s.y
    for _ in range(40):
        world.step(JUMP)
        if world.s.on_ground and not world.s.climbing:
            break
    assert world.s.y == pytest.approx(7 - 1.5), "climbing up ends standing on the platform"
    for _ in range(40):
        world.step(DOWN)
    assert world.s.y == pytest.approx(ground_y)


def test_effective_action_reports_what_really_happened(world):
    world.reset(Prompt(seed=0, sketch=ascii_sketch(flat_level())))
    world.step(RIGHT)
    assert world.effective_action == RIGHT
    world.step(JUMP)
    assert world.effective_action == JUMP
    world.step(JUMP)  # a jump in mid-air does nothing
    assert world.effective_action == NOOP
    for _ in range(30):
        world.step(NOOP)
    for _ in range(20):  # the level's left end is a wall
        world.step(LEFT)
    assert world.effective_action == NOOP and world.s.x == pytest.approx(0.0)
    world.step(DOWN)  # ducking on the ground is a real effect
    assert world.effective_action == DOWN
    world.step(RIGHT_JUMP)
    assert world.effective_action == RIGHT_JUMP


def test_same_seed_and_actions_give_identical_frames():
    actions = np.random.default_rng(1).integers(0, len(ACTIONS), 150)
    runs = []
    for _ in range(2):
        w = SandboxWorld(size=64, seed=5)
        frames = [w.reset(Prompt(seed=11))]
        frames += [w.step(int(a), WorldEvent(type="weather_snow") if t == 50 else None) for t, a in enumerate(actions)]
        runs.append(np.stack(frames))
    assert np.array_equal(runs[0], runs[1])
    other = SandboxWorld(size=64, seed=5).reset(Prompt(seed=12))
    assert not np.array_equal(other, runs[0][0])


def test_get_state_set_state_replays_identically(world):
    world.reset(Prompt(seed=4))
    rng = np.random.default_rng(0)
    for _ in range(30):
        world.step(int(rng.integers(len(ACTIONS))))
    snap = world.get_state()
    actions = rng.integers(0, len(ACTIONS), 80)
    events = {10: WorldEvent(type="night_falls"), 20: WorldEvent(type="spawn_coins"), 30: WorldEvent(type="flood"), 40: WorldEvent(type="spawn_enemy")}
    first = [world.step(int(a), events.get(t)) for t, a in enumerate(actions)]
    world.set_state(snap)
    second = [world.step(int(a), events.get(t)) for t, a in enumerate(actions)]
    assert np.array_equal(np.stack(first), np.stack(second))
    assert len(world.events_fired) == 4
    # a snapshot is independent of later play, and can be restored into another world
    other = SandboxWorld(size=64, seed=99)
    other.set_state(snap)
    assert np.array_equal(other.step(int(actions[0]), events.get(0)), first[0])


def test_bad_actions_and_events_give_clear_errors(world):
    with pytest.raises(ValueError, match="out of range"):
        world.step(9)
    for not_an_id in (3.5, "2", True):  # never rounded or parsed into another action
        with pytest.raises(ValueError, match="action must be an integer id"):
            world.step(not_an_id)
    assert world.step(np.int64(NOOP)) is not None  # numpy integers are ids
    with pytest.raises(ValueError, match="seed must be 0 or more, got -1"):
        SandboxWorld(size=64).reset(Prompt(seed=-1))
    with pytest.raises(ValueError, match="unknown sandbox event"):
        world.step(NOOP, WorldEvent(type="earthquake"))
    before = world.get_state()
    with pytest.raises(ValueError, match="no sandbox event matches"):
        world.step(NOOP, WorldEvent(text="hello there"))
    assert world.s.frame == before.frame and world.s.x == before.x  # a refused event changes nothing
    with pytest.raises(ValueError, match="multiple of 64"):
        SandboxWorld(size=50)


def test_128_pixel_world_scales_everything():
    w = SandboxWorld(size=128, seed=0)
    f = w.reset(Prompt(seed=2))
    assert f.shape == (128, 128, 3) and w.tile == 8
    for _ in range(20):
        f = w.step(RIGHT)
    assert f.shape == (128, 128, 3) and w.sketch().shape == (128, 128, 3)
    small = SandboxWorld(size=64, seed=0)
    small.reset(Prompt(seed=2))
    for _ in range(20):
        small.step(RIGHT)
    assert small.s.x == pytest.approx(w.s.x)  # physics is in tiles, independent of resolution


def test_rectangular_view():
    w = SandboxWorld(height=64, width=128)
    assert w.reset(Prompt(seed=1)).shape == (64, 128, 3)
