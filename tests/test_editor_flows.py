"""Editor flows a level designer hits after the first world: viewing other worlds, opened sessions, refused events,
keeping recordings, exports (the real window against a real sandbox host, offscreen)."""

import numpy as np
import pytest
from test_editor_gui import focus_viewport, host, live_frames, open_window, step_keys  # noqa: F401 - host: fixture

from editor_gui.session_store import FrameRecord, PromptSpec, Session

pytest.importorskip("pytestqt")


def model_session(path, frames: int = 3) -> Session:
    """A saved session recorded on a world model (synthetic frames), as another editor would have saved it."""
    s = Session(backend_kind="world_model", backend_name="tiny (step 1200)", width=64, height=64)
    root = s.new_root(PromptSpec(seed=1, backend="world_model"))
    for i in range(frames):
        root.frames[i] = FrameRecord(i, 0, image=np.full((64, 64, 3), 40 * i, np.uint8))
    s.save(path)
    return s


def test_the_badge_names_the_backend_of_the_frame_shown(qtbot, host, tmp_path):
    model_session(tmp_path / "model.wbsession")
    w = open_window(qtbot, host.address, mode="step")
    assert w.viewport.kind == "sandbox"
    with qtbot.waitSignal(w.load_from(tmp_path / "model.wbsession").succeeded, timeout=10000):
        pass
    assert w.viewing is not None and w.info["backend_kind"] == "sandbox"  # a model frame shown, the sandbox running
    assert (w.viewport.kind, w.viewport.name) == ("world_model", "tiny (step 1200)")
    w.timeline.go_live()
    assert w.viewing is None and w.viewport.kind == "sandbox"
