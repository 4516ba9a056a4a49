"""What the editor does on Windows and macOS, checked here by taking their part (sys.platform, Qt's modifiers, a file
another program holds): which modifier keys the viewport leaves to shortcuts, shortcut names in tooltips, and the
session files' suffix, replace and cleanup (where the editor's own host records: test_editor_qt_runtime.py)."""

import os
import sys
import zipfile

import numpy as np
import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from test_editor_gui import host, open_window  # noqa: F401 - host: fixture

from editor_gui import keymap
from editor_gui.session_store import FrameRecord, PromptSpec, Session

pytest.importorskip("pytestqt")


def small_session() -> Session:
    s = Session(backend_kind="sandbox", backend_name="sandbox", width=8, height=8)
    root = s.new_root(PromptSpec(seed=1, backend="sandbox"))
    root.frames[0] = FrameRecord(0, -1, image=np.zeros((8, 8, 3), np.uint8))
    return s


@pytest.mark.parametrize("modifier", [Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.MetaModifier,
                                      Qt.KeyboardModifier.AltModifier])
def test_an_arrow_with_ctrl_cmd_or_alt_is_left_to_shortcuts_and_does_not_move_the_player(qtbot, modifier):
    """On macOS Qt's ControlModifier is Cmd and the physical Ctrl is MetaModifier, which the viewport did not leave
    alone: Ctrl+arrow (a macOS Spaces shortcut) moved the player."""
    from editor_gui.viewport import Viewport

    v = Viewport()
    qtbot.addWidget(v)
    pressed = []
    v.key_pressed.connect(lambda key, ts: pressed.append(key))
    v.keyPressEvent(QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Right, modifier))
    assert pressed == []
    v.keyPressEvent(QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Right, Qt.KeyboardModifier.NoModifier))
    assert pressed == [Qt.Key.Key_Right]


class MacKeys(QKeySequence):
    """QKeySequence as on macOS: the shortcut Qt calls Ctrl is Cmd, named ⌘ in native text."""

    def toString(self, fmt=QKeySequence.SequenceFormat.PortableText):  # noqa: N802
        text = super().toString(fmt)
        return text.replace("Ctrl+", "⌘") if fmt == QKeySequence.SequenceFormat.NativeText else text


def test_tooltips_name_the_undo_shortcut_as_the_platform_does(qtbot, monkeypatch):
    """They said Ctrl+Z on macOS too, where the shortcut is ⌘Z (Ctrl+Z does nothing there)."""
    from PySide6.QtWidgets import QPushButton

    from editor_gui.prompt_panel import PromptPanel

    monkeypatch.setattr(keymap, "QKeySequence", MacKeys)
    panel = PromptPanel()
    qtbot.addWidget(panel)
    tips = [panel.canvas.toolTip(), panel.findChild(QPushButton, "sketch_undo").toolTip()]
    assert all("⌘Z" in tip and "Ctrl" not in tip for tip in tips), tips


def test_a_session_named_with_an_upper_case_suffix_is_saved_as_one_file(tmp_path):
    """"Take.WBSESSION" was saved as a folder named so (the suffix was compared case by case)."""
    path = small_session().save(tmp_path / "Take.WBSESSION")
    assert path.is_file() and zipfile.is_zipfile(path)
    assert Session.load(path).recorded(0)[0].index == 0


def test_the_save_dialog_keeps_an_upper_case_suffix_the_user_typed(qtbot, host, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    w = open_window(qtbot, host.address, mode="step")
    typed = str(tmp_path / "Take.WBSESSION")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **kw: (typed, "Session file (*.wbsession)"))
    saved = []
    monkeypatch.setattr(w, "save_to", saved.append)
    w._save_dialog()
    assert saved == [typed]


def test_saving_over_a_session_folder_another_program_holds_for_a_moment_waits_it_out(tmp_path, monkeypatch):
    """Windows refuses a rename while another program (a virus scanner, an indexer) has the file open: the save over
    an older session folder failed at once, where bridge.files.replace waits it out."""
    path = tmp_path / "take"
    small_session().save(path)
    real, refused = os.replace, []

    def held_once(src, dst):
        if not refused:
            refused.append(src)
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        return real(src, dst)

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(os, "replace", held_once)
    small_session().save(path)
    assert refused and (path / "session.json").is_file() and not list(tmp_path.glob(".take.*"))


def test_an_old_session_folder_that_cannot_be_deleted_after_a_save_is_named(tmp_path, monkeypatch):
    """It was left in silence (rmtree ignoring errors): a hidden .take.old-<pid> folder as big as the session."""
    import shutil

    path = tmp_path / "take"
    small_session().save(path)
    monkeypatch.setattr(shutil, "rmtree", lambda folder, ignore_errors=False: None)  # a file in it is held open
    with pytest.warns(UserWarning, match=r"could not delete .*\.take\.old-"):
        small_session().save(path)
    assert (path / "session.json").is_file()
