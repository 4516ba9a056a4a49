"""Scripted players that drive the sandbox for datasets: random with action repeat, an explorer, and a mix."""

from __future__ import annotations

import numpy as np

from bridge.worlds.levels import HAZARD, SOLID_TILES
from bridge.worlds.sandbox import DOWN, JUMP, LEFT, LEFT_JUMP, NOOP, PHYS, RIGHT, RIGHT_JUMP, SandboxWorld

# how often the random player picks each action (walking and jumping dominate, as in human play)
RANDOM_WEIGHTS = np.array([0.10, 0.17, 0.22, 0.13, 0.12, 0.16, 0.10])


class RandomPlayer:
    """Random actions held for 2-6 frames each, so motion is smooth enough to learn from."""

    name = "random"

    def __init__(self, rng: np.random.Generator, repeat: tuple[int, int] = (2, 6)):
        self.rng, self.repeat = rng, repeat
        self.action, self.left = NOOP, 0

    def act(self, world: SandboxWorld) -> int:
        if self.left <= 0:
            self.action = int(self.rng.choice(len(RANDOM_WEIGHTS), p=RANDOM_WEIGHTS))
            self.left = int(self.rng.integers(self.repeat[0], self.repeat[1] + 1))
        self.left -= 1
        return self.action


class ExplorerPlayer:
    """Goes right and jumps over gaps, walls and enemies; climbs some ladders; sometimes pauses or turns back."""

    name = "explorer"

    def __init__(self, rng: np.random.Generator, epsilon: float = 0.08):
        self.rng, self.epsilon = rng, epsilon
        self.direction = 1
        self.hold, self.hold_action = 0, NOOP

    def _danger_ahead(self, world: SandboxWorld, d: int) -> bool:
        s, tiles = world.s, world.s.level.tiles
        front = int(np.floor(s.x + (PHYS.player_w if d > 0 else 0) + d * 0.6))
        feet = int(np.floor(s.y + PHYS.player_h - 0.01))
        for c in (front, front + d):
            if not 0 <= c < tiles.shape[1]:
                return True
            if any(tiles[r, c] in SOLID_TILES for r in range(max(feet - 1, 0), feet + 1)):
                return True  # a wall or a step: jump a little ahead of it
        below = tiles[feet + 1 : feet + 3, front] if 0 <= front < tiles.shape[1] else tiles[:0, 0]
        if not any(t in SOLID_TILES for t in below) or (len(below) and below[0] == HAZARD):
            return True  # a gap: jump at its very edge so the flight clears it
        if len(s.enemies):
            ex = s.enemies[:, 0][s.enemy_alive]
            ey = s.enemies[:, 1][s.enemy_alive]
            near = (d * (ex - s.x) > 0) & (d * (ex - s.x) < 2.6) & (np.abs(ey - s.y) < 2.5)
            if near.any():
                return True
        return False

    def act(self, world: SandboxWorld) -> int:
        s = world.s
        if self.hold > 0:
            self.hold -= 1
            return self.hold_action
        if self.rng.random() < self.epsilon:  # a pause, a look back, a random hop (unless it would be fatal)
            action, hold = int(self.rng.choice([NOOP, LEFT, JUMP, DOWN, RIGHT_JUMP])), int(self.rng.integers(1, 6))
            if world.predict([action] * hold + [NOOP] * 16).deaths == s.deaths:
                self.hold_action, self.hold = action, hold - 1
                return action
        if s.x > s.level.cols - 4:
            self.direction = -1  # the end of the level: head back
        elif self.rng.random() < (0.04 if self.direction < 0 else 0.004):
            self.direction = -self.direction
        if s.climbing:
            return JUMP if self.rng.random() < 0.9 else NOOP
        cc = int(np.floor(s.x + PHYS.player_w / 2))
        if s.on_ground and world._tile(cc, int(np.floor(s.y + 0.75))) == 3 and self.rng.random() < 0.3:
            self.hold_action, self.hold = JUMP, 4
            return JUMP  # take the ladder up
        walk, hop = (RIGHT, RIGHT_JUMP) if self.direction > 0 else (LEFT, LEFT_JUMP)
        if s.on_ground and self._danger_ahead(world, self.direction):
            # look ahead with the game's own physics: jump now, a step later, or wait for a better moment
            for first, plan in ((hop, [hop] + [walk] * 18), (walk, [walk, hop] + [walk] * 18), (walk, [walk, walk, hop] + [walk] * 18)):
                after = world.predict(plan)
                if after.deaths == s.deaths and self.direction * (after.x - s.x) > 1.0:
                    return first
            return NOOP if self.rng.random() < 0.7 else hop
        return walk


class MixedPlayer:
    """Switches between exploring and random play every 20-80 frames."""

    name = "mixed"

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.players = [ExplorerPlayer(rng), RandomPlayer(rng)]
        self.current, self.left = 0, 0

    def act(self, world: SandboxWorld) -> int:
        if self.left <= 0:
            self.current = int(self.rng.random() < 0.4)
            self.left = int(self.rng.integers(20, 81))
        self.left -= 1
        return self.players[self.current].act(world)


PLAYERS = {"random": RandomPlayer, "explorer": ExplorerPlayer, "mixed": MixedPlayer}


def make_player(name: str, rng: np.random.Generator) -> RandomPlayer | ExplorerPlayer | MixedPlayer:
    """A scripted player by name ('random', 'explorer', 'mixed')."""
    if name not in PLAYERS:
        raise ValueError(f"unknown player {name!r}; choose one of {sorted(PLAYERS)}")
    return PLAYERS[name](rng)
