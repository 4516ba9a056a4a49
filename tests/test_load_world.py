"""`bridge.load_world` takes what docs/model.md shows it taking: the same arguments as bridge.model.world.load_world."""

import inspect

import pytest
import torch

import bridge
from bridge.model import world


def test_load_world_takes_the_documented_arguments():
    ours, theirs = inspect.signature(bridge.load_world), inspect.signature(world.load_world)
    assert [(p.name, p.default) for p in ours.parameters.values()] == \
        [(p.name, p.default) for p in theirs.parameters.values()]


def test_load_world_forwards_compile_and_autocast():
    with pytest.raises(ValueError, match="unknown torch.compile mode 'fastest'"):
        bridge.load_world(device="cpu", compile="fastest")  # refused, so it reached the real loader
    plain = bridge.load_world(None, "cpu", autocast=False, compile=False)
    assert plain.autocast is False and plain.model.dynamics.head.weight.dtype == torch.float32
    bf16 = bridge.load_world(device="cpu", autocast=True)
    assert bf16.autocast is True and bf16.model.dynamics.head.weight.dtype == torch.bfloat16
