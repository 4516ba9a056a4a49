"""Shared test setup: headless Qt, few threads (the machine has 2 cores), fixed seeds."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "WORLDBRIDGE_AUTOSAVE" not in os.environ:  # the editor keeps unsaved recordings on close: not in the user's home
    import atexit
    import shutil
    import tempfile

    os.environ["WORLDBRIDGE_AUTOSAVE"] = tempfile.mkdtemp(prefix="worldbridge-autosave-")
    atexit.register(shutil.rmtree, os.environ["WORLDBRIDGE_AUTOSAVE"], True)


def pytest_collection_modifyitems(config, items):
    """`gpu` tests need a CUDA device: the marker alone skips them where there is none."""
    import pytest
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prompt_world_root(tmp_path_factory):
    """A micro prompt-trained world shared by the prompt tests: root/world (plain) and root/pw (events, first frame)."""
    from test_prompts_helpers import trained_prompt_world

    return trained_prompt_world(tmp_path_factory.mktemp("prompt_world"))


@pytest.fixture(scope="module")
def godot_host(tmp_path_factory):
    """The Godot tests' sandbox host (not `host`: other tests start their own); it records to any path, by default its
    own folder."""
    from bridge.host import server

    h = server.run_host_in_thread("sandbox", recordings_dir=tmp_path_factory.mktemp("recordings"), record_anywhere=True)
    yield h
    h.stop()


@pytest.fixture()
def godot_sim():
    """A gdsim over the Godot addon's project, with its input map."""
    from godot_helpers import GODOT, gdsim

    s = gdsim.Sim(GODOT)
    s.input_actions = gdsim.input_actions_from_project(GODOT / "project.godot")
    yield s
    s.close()


@pytest.fixture(scope="module")
def micro_world(tmp_path_factory):
    """A micro world-model checkpoint the Godot tests serve with the real host (one thread: 2 shared cores)."""
    import torch
    from test_prompts_helpers import save_micro_world

    torch.set_num_threads(1)
    return save_micro_world(tmp_path_factory.mktemp("godot") / "world")
