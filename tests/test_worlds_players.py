"""Scripted players: deterministic given their generator, the explorer makes progress, random play varies."""

import numpy as np
import torch

from bridge.backend import Prompt
from bridge.worlds.players import PLAYERS, make_player
from bridge.worlds.sandbox import ACTIONS, SandboxWorld

torch.set_num_threads(1)


def play(name, seed, steps=300):
    w = SandboxWorld(size=64, seed=0)
    w.reset(Prompt(seed=seed))
    p = make_player(name, np.random.default_rng(seed))
    acts = []
    for _ in range(steps):
        acts.append(p.act(w))
        w.step(acts[-1])
    return np.array(acts), w


def test_players_are_deterministic_and_valid():
    for name in PLAYERS:
        a, _ = play(name, 3)
        b, _ = play(name, 3)
        assert np.array_equal(a, b) and a.min() >= 0 and a.max() < len(ACTIONS)


def test_random_player_repeats_actions_for_2_to_6_frames():
    a, _ = play("random", 1, 400)
    runs = np.diff(np.flatnonzero(np.diff(np.r_[-1, a, -1]) != 0))
    assert runs.min() >= 1 and np.median(runs) >= 2
    assert len(set(a.tolist())) == len(ACTIONS)  # every action shows up


def test_explorer_goes_right_further_than_random_play():
    explorer = np.mean([play("explorer", s)[1].s.x for s in range(4)])
    random = np.mean([play("random", s)[1].s.x for s in range(4)])
    assert explorer > 30 and explorer > random + 10
