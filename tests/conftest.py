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
