"""Editor widgets on their own (no host): key-binding editor, image prompt drop/paste, sketch painting, viewport."""

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import QKeySequenceEdit, QPushButton, QToolButton

import imageio.v3 as iio
from editor_gui.keymap import KeyMap, KeyMapDialog
from editor_gui.prompt_panel import PromptPanel
from editor_gui.viewport import ShownFrame, Viewport, badge_text


def test_keymap_dialog_edits_and_rejects_duplicates(qtbot):
    dlg = KeyMapDialog(KeyMap(bindings={"Left": "left", "D": "right"}, idle="noop"), ["noop", "left", "right", "jump"])
    qtbot.addWidget(dlg)
    assert dlg.table.rowCount() == 2
    dlg.table.cellWidget(1, 1).setCurrentText("jump")
    dlg.table.cellWidget(1, 0).setKeySequence(QKeySequence("J"))
    assert dlg.keymap().bindings == {"Left": "left", "J": "jump"}
    dlg._add_row("Left", "3")  # same key again
    with pytest.raises(ValueError, match="bound twice"):
        dlg.keymap()
    dlg.accept()
    assert "bound twice" in dlg.error.text() and dlg.result() == 0
    dlg.table.removeRow(2)
    dlg._add_row("K", "3")
    assert dlg.keymap().bindings["K"] == 3  # digits are action ids
    assert isinstance(dlg.table.cellWidget(0, 0), QKeySequenceEdit)


def test_image_prompt_open_drop_paste(qtbot, tmp_path):
    panel = PromptPanel()
    qtbot.addWidget(panel)
    img = np.zeros((20, 30, 3), np.uint8)
    img[:, :15] = (255, 0, 0)
    iio.imwrite(tmp_path / "a.png", img)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "a.png"))])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    panel.drop.dropEvent(event)
    assert np.array_equal(iio.imread(panel.image_png), img)  # dropped file, re-encoded as PNG, pixels intact
    assert not panel.drop.pixmap().isNull()
    panel.clear_image()
    assert panel.image_png is None and panel.prompt().image_png is None
    q = QImage(8, 8, QImage.Format.Format_RGB888)
    q.fill(Qt.GlobalColor.green)
    QGuiApplication.clipboard().setImage(q)
    panel.paste_image()
    assert panel.image_png is not None and tuple(iio.imread(panel.image_png)[0, 0]) == (0, 255, 0)
    errors = []
    panel.error.connect(errors.append)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    panel.load_image_file(tmp_path / "bad.png")
    assert errors and "could not read" in errors[0]


def test_a_transparent_image_prompt_reaches_the_host_as_the_file_does(qtbot, tmp_path):
    """The host reads a transparent pixel as not drawn (white, sky in a sketch): the editor must send the alpha it
    opened, not turn those pixels black, so the world is the one a plugin or Python gets from the same file."""
    from bridge.host.pixels import decode_prompt_image

    panel = PromptPanel()
    qtbot.addWidget(panel)
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, 8:] = (200, 40, 40, 255)  # the right half drawn, the left half transparent
    iio.imwrite(tmp_path / "cut.png", rgba)
    panel.load_image_file(tmp_path / "cut.png")
    sent = decode_prompt_image(panel.prompt().image_png)
    assert np.array_equal(sent, decode_prompt_image((tmp_path / "cut.png").read_bytes()))
    assert tuple(sent[0, 0]) == (255, 255, 255) and tuple(sent[0, 15]) == (200, 40, 40)


def shown_prompt_panel(qtbot) -> PromptPanel:
    """A Prompt panel on screen, tall enough for its sketch canvas to take clicks."""
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.resize(360, 700)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_sketch_canvas_mouse_and_prompt(qtbot):
    panel = shown_prompt_panel(qtbot)
    canvas = panel.canvas
    assert not panel.use_sketch.isChecked()
    panel.findChild(QToolButton, "color_coin").click()
    assert canvas.color_name == "coin"
    s = canvas._cell_size()
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=QPointF(canvas._offset() + 5.5 * s, 3.5 * s).toPoint())
    assert tuple(canvas.cells[3, 5]) == canvas.palette_colors["coin"] and panel.use_sketch.isChecked()
    qtbot.mouseClick(canvas, Qt.MouseButton.RightButton, pos=QPointF(canvas._offset() + 5.5 * s, 3.5 * s).toPoint())
    assert tuple(canvas.cells[3, 5]) == canvas.palette_colors["sky"]
    with pytest.raises(ValueError, match="unknown sketch colour"):
        canvas.paint_cells(0, 0, "purple")
    panel.random_seed.setChecked(True)
    p = panel.prompt()
    assert p.seed is not None and p.seed == panel.seed.value() and p.sketch_png is not None  # drawn, shown, kept
    assert iio.imread(p.sketch_png).shape[0] == 64
    next(b for b in panel.sk_box.findChildren(QPushButton) if b.text() == "Clear").click()
    assert not panel.use_sketch.isChecked() and panel.prompt().sketch_png is None  # cleared: the seed's own level


def test_sketch_undo_brings_back_a_stroke_a_clear_and_a_narrowed_width(qtbot):
    """One slip (Clear, the width box wheeled down to 16) must not cost a level's drawing: Undo (Ctrl+Z) brings it back."""
    panel = shown_prompt_panel(qtbot)
    canvas = panel.canvas
    undo = panel.findChild(QPushButton, "sketch_undo")
    assert not undo.isEnabled()  # nothing drawn: nothing to undo
    panel.cols.setValue(64)
    s = canvas._cell_size()
    at = QPointF(canvas._offset() + 40.5 * s, 3.5 * s).toPoint()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=at)  # one stroke over several cells is one undo step
    for dx in (1, 2, 3):
        qtbot.mouseMove(canvas, QPointF(canvas._offset() + (40.5 + dx) * s, 3.5 * s).toPoint())
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPointF(canvas._offset() + 43.5 * s, 3.5 * s).toPoint())
    ground = canvas.palette_colors["ground"]
    assert all(tuple(canvas.cells[3, c]) == ground for c in range(40, 44))
    canvas.paint_cells(5, 5, "coin")
    drawn = canvas.cells.copy()
    panel.cols.setValue(16)  # the drawing at columns 40-43 is cut off
    next(b for b in panel.sk_box.findChildren(QPushButton) if b.text() == "Clear").click()
    assert not panel.use_sketch.isChecked()
    undo.click()  # the Clear
    assert canvas.cells.shape[1] == 16 and panel.use_sketch.isChecked()
    assert np.array_equal(canvas.cells, drawn[:, :16])
    panel.activateWindow()
    canvas.setFocus()
    qtbot.waitUntil(canvas.hasFocus, timeout=5000)
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the narrowing
    assert np.array_equal(canvas.cells, drawn) and panel.cols.value() == 64
    undo.click()  # the coin
    assert tuple(canvas.cells[5, 5]) == canvas.palette_colors["sky"] and tuple(canvas.cells[3, 40]) == ground
    undo.click()  # the stroke
    assert tuple(canvas.cells[3, 40]) == canvas.palette_colors["sky"]
    undo.click()  # the widening to 64 columns
    assert canvas.cells.shape[1] == 32 and panel.cols.value() == 32 and not undo.isEnabled()


def test_a_saved_sketch_off_the_grid_is_not_shown_and_says_so(qtbot):
    from editor_gui.session_store import PromptSpec

    panel = PromptPanel()
    qtbot.addWidget(panel)
    wide = np.zeros((64, 48 * 4, 3), np.uint8)
    panel.set_prompt(PromptSpec(seed=1, sketch_png=iio.imwrite("<bytes>", wide, extension=".png")))
    assert panel.canvas.cells.shape == (16, 48, 3) and panel.cols.value() == 48 and panel.use_sketch.isChecked()
    drawn = panel.canvas.cells.copy()
    with qtbot.waitSignal(panel.error) as said:
        panel.set_prompt(PromptSpec(seed=1, sketch_png=iio.imwrite("<bytes>", np.zeros((48, 48, 3), np.uint8),
                                                                  extension=".png")))
    assert "sketch (48×48 px) is not on the 16-row sketch grid" in said.args[0] and "Branch from" in said.args[0]
    assert np.array_equal(panel.canvas.cells, drawn) and not panel.use_sketch.isChecked()  # nothing else is sent


def shown_viewport(qtbot, width: int, height: int) -> Viewport:
    """A Viewport on screen at this size."""
    v = Viewport()
    qtbot.addWidget(v)
    v.resize(width, height)
    v.show()
    qtbot.waitExposed(v)
    return v


def test_viewport_badge_scaling_and_focus_keys(qtbot):
    v = shown_viewport(qtbot, 700, 500)
    assert badge_text("sandbox", "sandbox game") == "SANDBOX GAME (test backend, not the world model): sandbox game"
    assert badge_text("world_model", "tiny (step 1200)") == "WORLD MODEL: tiny (step 1200)"
    assert badge_text("", "") == "NO WORLD"
    img = np.zeros((64, 64, 3), np.uint8)
    img[::2, ::2] = 255
    v.set_backend("sandbox", "sandbox game")
    v.show_frame(ShownFrame(img, 0, 0))
    r = v.image_rect()
    assert r.width() == r.height() == 448  # integer scale 7: crisp pixels, centred
    shot = v.grab().toImage()
    x0, y0 = int(r.x()), int(r.y())
    px = [QImage.pixelColor(shot, x0 + 7 * 20 + dx, y0 + 7 * 20 + 3).red() for dx in range(7)]
    assert px == [255] * 7  # nearest neighbour: a whole 7-px block, no smoothing
    got = []
    v.key_pressed.connect(lambda k, t: got.append(k))
    v.setFocus()
    qtbot.keyPress(v, Qt.Key.Key_Right)
    qtbot.keyPress(v, Qt.Key.Key_Tab)  # never claimed: focus navigation keeps working
    assert got == [Qt.Key.Key_Right]


@pytest.mark.parametrize("seed", [0, 7, 2**31, 5_000_000_000, 2**63 - 1])
def test_the_seed_box_round_trips_every_seed_the_host_takes(qtbot, seed):
    """`play --seed 5000000000` started that world while the box showed 2147483647, and New world made another one."""
    from editor_gui.session_store import PromptSpec

    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.set_prompt(PromptSpec(seed=seed))
    assert panel.seed.value() == seed and panel.prompt().seed == seed
    panel.seed.clear()
    qtbot.keyClicks(panel.seed, str(seed))
    assert panel.prompt().seed == seed


def test_the_seed_box_takes_only_seeds_the_host_takes(qtbot):
    from bridge.values import SEED_MAX

    panel = PromptPanel()
    qtbot.addWidget(panel)
    for typed in ("-1", str(SEED_MAX + 1), "1e9", "x"):
        panel.seed.setValue(7)
        panel.seed.clear()
        qtbot.keyClicks(panel.seed, typed)
        assert panel.seed.text() != typed and 0 <= panel.prompt().seed <= SEED_MAX  # the stray keys were not taken
    with pytest.raises(ValueError, match="seed"):
        panel.seed.setValue(SEED_MAX + 1)


def test_widening_the_sketch_extends_the_ground_and_is_no_drawing(qtbot):
    """Wider columns were all sky (the player fell through), and a merely widened canvas was kept as "unsent sketch"."""
    panel = shown_prompt_panel(qtbot)
    canvas = panel.canvas
    panel.cols.setValue(64)
    pal = canvas.palette_colors
    assert all(tuple(canvas.cells[r, c]) == pal["ground"] for r in (14, 15) for c in range(32, 64))
    assert all(tuple(canvas.cells[r, c]) == pal["sky"] for r in range(14) for c in range(32, 64))
    assert not canvas.drawn()
    panel.cols.setValue(16)
    assert not canvas.drawn()  # narrowed: still nothing the user drew
    canvas.paint_cells(3, 5, "coin")
    assert canvas.drawn()
    panel.cols.setValue(48)
    assert canvas.drawn() and tuple(canvas.cells[15, 40]) == pal["ground"]


def test_a_zeromq_failure_is_said_with_what_to_do_not_as_an_exception_name():
    import zmq

    from editor_gui.worker import describe_error

    said = describe_error(zmq.ZMQError(zmq.ENOTSOCK), "tcp://127.0.0.1:5555")
    assert said.startswith("The connection to the host at tcp://127.0.0.1:5555 failed (")
    assert "press Reconnect" in said and "ZMQError" not in said


@pytest.mark.parametrize("width", [320, 520, 1200])
def test_the_backend_badge_is_never_covered_by_the_figures(qtbot, width):
    """The badge says which backend made the frame: at any viewport width the fps/latency pill must not hide it, and
    neither may run off the viewport (a narrow one elides them, the badge keeping its leading words)."""
    v = shown_viewport(qtbot, width, 300)
    v.set_backend("sandbox", "sandbox game")
    v.show_frame(ShownFrame(np.zeros((64, 64, 3), np.uint8), 40, 0))
    from editor_gui.viewport import now_ms

    v.stats.recent.append((now_ms(), 30.0, 6.0))  # an input just now: the latency figure shows too
    v.grab()  # painted: the overlay's figures are made
    (badge, badge_text_shown), (stats, stats_text) = v.top_pills()
    assert not badge.intersects(stats) and ("input→frame" in stats_text or "…" in stats_text)
    for r in (badge, stats):
        assert r.left() >= 0 and r.right() <= width
    assert badge_text_shown.startswith("SANDBOX GAME")
    if width >= 1200:
        assert badge.top() == stats.top()  # room for both: side by side


def test_a_message_over_a_frame_is_on_a_dark_backing(qtbot):
    """'Lost the host: …' painted over the last frame (bright sky) must stay readable: it sits on a dark box."""
    v = shown_viewport(qtbot, 400, 400)
    v.show_frame(ShownFrame(np.full((64, 64, 3), 230, np.uint8), 0, 0))
    v.set_message("Lost the host: no answer")
    box = v.message_rect()
    assert box is not None and v.image_rect().intersects(box)
    shot = v.grab().toImage()
    assert shot.pixelColor(int(box.left()) + 3, int(box.center().y())).lightness() < 80


def test_the_latency_figure_is_of_recent_inputs_so_one_slow_input_does_not_stay(qtbot):
    """One slow input (the first after a branch) and few key presses after it: its 643 ms stayed in the overlay for
    the rest of the session. Inputs older than the window drop out of the figure."""
    from editor_gui.viewport import FrameStats, now_ms

    stats = FrameStats()
    long_ago = now_ms() - 60_000.0  # a minute ago
    stats.press_ts[1] = long_ago - 643.0
    stats.on_painted(ShownFrame(np.zeros((4, 4, 3), np.uint8), 1, 0, seq=1, client_ts=long_ago - 640.0,
                                received_ts=long_ago), long_ago)
    assert "input→frame" not in stats.text(1)  # nothing pressed lately: no figure, and not the old one
    t = now_ms()
    stats.on_painted(ShownFrame(np.zeros((4, 4, 3), np.uint8), 2, 0, seq=2, client_ts=t - 20.0, received_ts=t), t)
    assert "input→frame 20 ms" in stats.text(2)
    assert list(stats.protocol_ms) == [640.0, 20.0]  # the whole run is kept for `measure`


def test_a_frame_left_when_no_world_runs_is_dimmed_under_a_badge_that_says_so(qtbot):
    """After the host went, the last frame stayed as bright as a live one, with no badge at all."""
    v = shown_viewport(qtbot, 400, 400)
    v.set_backend("world_model", "tiny")
    v.show_frame(ShownFrame(np.full((64, 64, 3), 230, np.uint8), 0, 0))
    v.repaint()
    r = v.image_rect()
    bright = v.grab().toImage().pixelColor(int(r.left()) + 3, int(r.bottom()) - 3).lightness()
    v.set_backend("", "", "host gone — no world running")
    v.repaint()
    (_box, text), _stats = v.top_pills()
    assert text == "host gone — no world running"
    assert v.grab().toImage().pixelColor(int(r.left()) + 3, int(r.bottom()) - 3).lightness() < bright / 2


def test_the_built_in_sprite_buttons_are_one_size_in_an_aligned_grid(qtbot):
    from editor_gui.object_panel import ObjectPanel

    panel = ObjectPanel()
    qtbot.addWidget(panel)
    panel.resize(340, 500)
    panel.show()
    qtbot.waitExposed(panel)
    buttons = list(panel.builtin_buttons.values())
    assert len({b.size().toTuple() for b in buttons}) == 1, [b.size() for b in buttons]
    assert len({b.x() for b in buttons[::3]}) == 1 and len({b.x() for b in buttons[1::3]}) == 1
    assert len({b.y() for b in buttons[:3]}) == 1


def test_event_buttons_say_what_they_do_and_fire_has_a_tooltip(qtbot):
    from editor_gui.events_panel import EventsPanel

    panel = EventsPanel()
    qtbot.addWidget(panel)
    panel.set_event_types(["weather_snow", "made_up"])
    panel.set_capabilities(None, None)
    assert "it starts to snow" in panel.buttons["weather_snow"].toolTip().lower()
    assert panel.buttons["made_up"].toolTip() != "made_up" and "made_up" in panel.buttons["made_up"].toolTip()
    assert panel.send.toolTip()
    panel.set_capabilities("no world", "no world")
    assert panel.buttons["weather_snow"].toolTip() == "no world" and panel.send.toolTip() == "no world"
