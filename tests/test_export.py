"""bridge/export.py: one exporter of frames for the CLI, the demo and the editor."""

import pytest


def test_auto_scale_keeps_both_sides_a_multiple_of_16():
    from bridge.export import auto_scale

    for h, w in ((56, 56), (36, 36), (64, 48), (20, 28), (160, 400)):
        s = auto_scale(h, w)
        assert (h * s) % 16 == 0 and (w * s) % 16 == 0, (h, w, s)
    assert auto_scale(56, 56) == 8  # 7 (392 px) is nearer 384 but not a multiple of 16
    assert auto_scale(64, 64) == 6


def test_export_frames_refuses_an_empty_export_and_leaves_nothing(tmp_path):
    from bridge.export import export_frames

    for targets in ({"gif": tmp_path / "a.gif"}, {"mp4": tmp_path / "a.mp4"}, {"frames": tmp_path / "f"}):
        with pytest.raises(ValueError, match="no frames to export"):
            export_frames([], targets, 24.0)
    assert list(tmp_path.iterdir()) == []
