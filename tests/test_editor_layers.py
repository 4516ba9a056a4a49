"""Frame-edit tools on their own (no host): object layers, placing on the viewport, the Objects tab, edits in saves."""

import io
import json
import zipfile

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication, QImage

from editor_gui.capabilities import (ALL, dropped_note, fit_prompt, host_can_edit, prompt_parts, refused_prompt,
                                     session_caps, unavailable, why_not)
from editor_gui.layers import BUILTINS, Layer, builtin_layer, fit_layer, load_layer, qimage_to_rgba, rgba_to_qimage
from editor_gui.object_panel import ObjectPanel
from editor_gui.session_store import FrameRecord, PromptSpec, Session
from editor_gui.settings_panel import SettingsPanel
from editor_gui.viewport import ShownFrame, Viewport

pytest.importorskip("pytestqt")


def test_refused_prompt_reads_a_real_hosts_bad_prompt_as_the_editor_gets_it():
    """Older 1.3 hosts name the prompt kind a backend lacks only in their wording, which the editor then reads: a
    rewording fails here by name."""
    from bridge.client import ProtocolError, WorldClient
    from bridge.host.server import run_host_in_thread
    from bridge.worlds.sandbox import SandboxWorld
    from editor_gui.worker import describe_error

    class Mute(SandboxWorld):
        capabilities = ["events"]  # no prompt kinds at all: each is refused with bad_prompt

    prompts = {"text": "a snowy cave", "image": np.zeros((64, 64, 3), np.uint8), "sketch": SandboxWorld(64, 0).sketch()}
    h = run_host_in_thread(lambda: Mute(64, 0), "tcp://127.0.0.1:*")
    try:
        with WorldClient(h.address) as c:
            for key, value in prompts.items():
                with pytest.raises(ProtocolError) as e:
                    c.start(mode="step", **{key: value})
                assert refused_prompt(describe_error(e.value, h.address)) == f"{key}_prompt", e.value.message
            c.start(mode="step", seed=1)
            with pytest.raises(ProtocolError) as e:
                c.event(text="boom")  # a refusal that names another capability is no prompt refusal
            assert "lack text_events" in e.value.message and refused_prompt(describe_error(e.value, h.address)) is None
            assert (e.value.code, e.value.capability) == ("unsupported", "text_events")  # the key, as for prompts
    finally:
        h.stop()


def test_the_editor_drops_exactly_the_prompt_parts_the_host_refuses():
    """fit_prompt and the host's check_prompt read a prompt by one rule (prompt_kinds): what the editor sends is
    never refused, and blank text stays as typed."""
    from bridge.backend import Prompt
    from bridge.host.session import Session as HostSession
    from bridge.worlds.sandbox import SandboxWorld

    png = b"\x89PNG"
    asked = PromptSpec(text="  ", image_png=png, sketch_png=png)
    info = {"backend_kind": "sandbox", "capabilities": ["text_prompt", "sketch_prompt", "events", "text_events"]}
    sent = fit_prompt(asked, info)
    assert (sent.text, sent.image_png, sent.sketch_png) == ("  ", None, png) and prompt_parts(sent) == ["sketch"]
    assert dropped_note(asked, sent, info) == "the sandbox game takes no image prompts: started from the seed and " \
                                              "sketch only"
    HostSession(SandboxWorld(64, 0)).check_prompt(Prompt(text=sent.text, sketch=np.zeros((64, 64, 3), np.uint8)))


def test_builtin_objects_are_the_sandbox_art_at_the_frame_tile_size():
    from bridge.worlds.render import make_sprites

    enemy = builtin_layer("enemy", 64)
    spr = make_sprites("grassland", "day", 4)["enemy_a"]
    assert enemy.size == (4, 4) and np.array_equal(enemy.rgba[..., :3][spr.mask], spr.rgb[spr.mask])
    assert np.array_equal(enemy.rgba[..., 3] == 255, spr.mask) and set(np.unique(enemy.rgba[..., 3])) == {0, 255}
    assert builtin_layer("enemy", 128).size == (8, 8) and builtin_layer("player", 64).size == (4, 6)
    assert builtin_layer("coin", 64).size == (4, 3)  # the coin art's empty top row is cropped
    assert (builtin_layer("block", 64).rgba[..., 3] == 255).all()
    assert {builtin_layer(n, 64).name for n in BUILTINS} == set(BUILTINS)
    with pytest.raises(ValueError, match="unknown built-in object 'tree'"):
        builtin_layer("tree")


def test_layers_keep_alpha_and_fit_the_frame(tmp_path):
    rgba = np.zeros((10, 30, 4), np.uint8)
    rgba[2:8, 5:25] = (250, 20, 10, 255)
    rgba[0, 0] = (1, 2, 3, 128)
    layer = Layer(rgba, "x")
    assert np.array_equal(iio.imread(layer.png()), rgba)  # PNG bytes, alpha and all
    assert np.array_equal(qimage_to_rgba(rgba_to_qimage(rgba)), rgba)
    fitted, scaled = fit_layer(layer, 16, 16)
    assert scaled and fitted.size == (16, 5)  # aspect kept, at most the frame
    assert fit_layer(layer, 64, 64) == (layer, False)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "obj.png")
    assert np.array_equal(load_layer(str(tmp_path / "obj.png")).rgba, rgba)
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(ValueError, match="could not read an image"):
        load_layer(str(tmp_path / "bad.png"))


def _viewport(qtbot, w: int, h: int, size=(700, 500)) -> Viewport:
    v = Viewport()
    qtbot.addWidget(v)
    v.resize(*size)
    v.show()
    qtbot.waitExposed(v)
    v.show_frame(ShownFrame(np.full((h, w, 3), 40, np.uint8), 0, 0))
    return v


def _centre_of(v: Viewport, x: int, y: int) -> QPoint:
    """The widget point at the centre of frame pixel (x, y)."""
    r, img = v.image_rect(), v.frame.image
    return QPoint(int(r.x() + (x + 0.5) * r.width() / img.shape[1]), int(r.y() + (y + 0.5) * r.height() / img.shape[0]))


@pytest.mark.parametrize("w,h,size", [(64, 64, (700, 500)), (16, 16, (700, 500)), (96, 64, (333, 241))])
def test_clicks_map_to_frame_pixels_through_the_scaling(qtbot, w, h, size):
    v = _viewport(qtbot, w, h, size)
    r = v.image_rect()
    for x, y in [(0, 0), (w - 1, h - 1), (w // 3, h // 2 + 1)]:
        assert v.frame_pixel(_centre_of(v, x, y).toPointF()) == (x, y)
    assert v.frame_pixel(r.topLeft()) == (0, 0)
    assert v.frame_pixel(r.topLeft() - QPoint(2, 2).toPointF()) is None  # off the frame: nothing to place on


def test_placing_previews_places_and_cancels(qtbot):
    v = _viewport(qtbot, 64, 64)  # integer scale 7
    layer = np.zeros((4, 6, 4), np.uint8)
    layer[..., 0], layer[..., 3] = 255, 255
    placed, states = [], []
    v.placed.connect(lambda x, y: placed.append((x, y)))
    v.placing_changed.connect(states.append)
    v.begin_placing(rgba_to_qimage(layer))
    assert v.placing is not None and v.hasMouseTracking() and states == [True]
    # the translucent preview follows the cursor, centred on it
    qtbot.mouseMove(v, _centre_of(v, 5, 5))  # a move onto the spot the cursor already holds is no move: leave it first
    qtbot.mouseMove(v, _centre_of(v, 20, 30))
    qtbot.waitUntil(lambda: v._hover == (20, 30), timeout=20000)
    shot = v.grab().toImage()
    inside = shot.pixelColor(_centre_of(v, 20, 30))  # layer covers x 17..22, y 28..31
    outside = shot.pixelColor(_centre_of(v, 30, 40))
    assert 40 < inside.red() < 255 and inside.green() < 40 and outside.red() == 40  # blended: the frame shows through
    qtbot.mouseClick(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, _centre_of(v, 20, 30))
    assert placed == [(17, 28)] and v.placing is not None  # Shift+click keeps placing
    qtbot.mouseClick(v, Qt.MouseButton.LeftButton, pos=_centre_of(v, 0, 63))
    assert placed[-1] == (-3, 61) and v.placing is None and states == [True, False]  # hangs over the edge: allowed
    v.begin_placing(rgba_to_qimage(layer))
    qtbot.keyClick(v, Qt.Key.Key_Escape)
    assert v.placing is None and len(placed) == 2
    v.begin_placing(rgba_to_qimage(layer))
    qtbot.mouseClick(v, Qt.MouseButton.RightButton, pos=_centre_of(v, 5, 5))
    assert v.placing is None and len(placed) == 2


def test_object_panel_builtins_file_clipboard_and_unavailable(qtbot, tmp_path):
    panel = ObjectPanel()
    qtbot.addWidget(panel)
    got, errors = [], []
    panel.place.connect(got.append)
    panel.error.connect(errors.append)
    panel.set_frame_size(16, 16)
    panel.builtin_buttons["coin"].click()
    assert got[-1].name == "coin" and np.array_equal(got[-1].rgba, builtin_layer("coin", 16).rgba)
    big = np.zeros((40, 20, 4), np.uint8)
    big[..., 1], big[..., 3] = 200, 255
    Image.fromarray(big, "RGBA").save(tmp_path / "tree.png")
    panel.load_file(str(tmp_path / "tree.png"))
    assert got[-1].name == "tree.png" and got[-1].size == (8, 16) and "scaled down" in panel.status.text()
    assert panel.group.checkedButton() is None
    q = QImage(3, 2, QImage.Format.Format_RGBA8888)
    q.fill(Qt.GlobalColor.transparent)
    q.setPixelColor(1, 1, Qt.GlobalColor.red)
    QGuiApplication.clipboard().setImage(q)
    panel.paste_btn.click()
    assert got[-1].size == (3, 2) and got[-1].rgba[1, 1, 3] == 255 and got[-1].rgba[0, 0, 3] == 0
    QGuiApplication.clipboard().clear()
    panel.paste_layer()
    assert errors and "clipboard holds no image" in errors[-1]
    panel.load_file(str(tmp_path / "missing.png"))
    assert "could not read" in errors[-1]
    reason = why_not("edit", {"backend_kind": "sandbox"})
    panel.set_available(False, reason)
    assert not panel.place_btn.isEnabled() and not panel.builtin_buttons["enemy"].isEnabled()
    assert panel.builtin_buttons["enemy"].toolTip() == reason and panel.status.text() == reason
    panel.set_available(True)
    assert panel.builtin_buttons["enemy"].isEnabled() and "sprite" in panel.builtin_buttons["enemy"].toolTip()


def test_capabilities_and_reasons():
    assert session_caps(None) == set(ALL) and session_caps({"backend_kind": "x"}) == set(ALL)  # 1.0 host: all on
    assert session_caps({"capabilities": ["edit"]}) == {"edit"}
    assert host_can_edit({"capabilities": ["edit"]}) and not host_can_edit({"capabilities": ["events"]})
    assert "frame edits need the world model" in why_not("edit", {"backend_kind": "sandbox"})
    text = why_not("text_prompt", {"backend_kind": "world_model"})
    assert "no text conditioning" in text and "`worldbridge train prompts first-frame`" in text
    assert "worldbridge train prompts events" in why_not("text_events", {"backend_kind": "world_model"})
    assert "unity world" in why_not("edit", {"backend_kind": "other", "backend_name": "unity world"})
    sandbox = {"backend_kind": "sandbox", "capabilities": ["text_prompt"]}
    assert unavailable("text_prompt", sandbox) is None and unavailable("text_prompt", None) is None  # on
    assert unavailable("sketch_prompt", sandbox) == why_not("sketch_prompt", sandbox)  # off, with its tooltip


def test_event_guidance_follows_the_session_settings(qtbot):
    p = SettingsPanel()
    qtbot.addWidget(p)
    sent = []
    p.changed.connect(sent.append)
    base = dict(width=64, height=64, fps=24.0, mode="realtime")
    p.set_session({**base, "backend_kind": "sandbox", "settings": {"event_cfg": None, "fps": 24.0}})
    assert not p.event_cfg.isEnabled() and "sandbox" in p.event_cfg.toolTip()
    p.set_session({**base, "backend_kind": "world_model", "backend_name": "w",
                   "settings": {"steps": 4, "cfg": 1.0, "temperature": 1.0, "event_cfg": None}})
    assert not p.event_cfg.isEnabled() and "no event conditioning" in p.event_cfg.toolTip()
    p.set_session({**base, "backend_kind": "world_model", "backend_name": "w",
                   "settings": {"steps": 4, "cfg": 1.0, "temperature": 1.0, "event_cfg": 3.0}})
    assert p.event_cfg.isEnabled() and p.event_cfg.value() == 3.0 and not sent  # showing a value sends nothing
    p.event_cfg.setValue(1.5)
    qtbot.waitUntil(lambda: sent == [{"event_cfg": 1.5}], timeout=20000)
    p.apply_settings({"event_cfg": 2.0})
    assert p.event_cfg.value() == 2.0


def test_a_refused_sampler_change_shows_top_p_and_unmasking_in_force(qtbot):
    """A settings change the host refuses (say steps past the model's tokens, sent with a top-p change in the same
    pause) is undone on the panel from the settings in force: top-p and unmasking too, not only steps and CFG."""
    p = SettingsPanel()
    qtbot.addWidget(p)
    sent = []
    p.changed.connect(sent.append)
    in_force = {"steps": 2, "cfg": 1.5, "temperature": 1.2, "event_cfg": None, "top_p": 1.0, "unmask": "confidence"}
    p.set_session(dict(width=64, height=64, fps=15.0, mode="step", backend_kind="world_model", backend_name="w",
                       settings={**in_force, "fps": 15.0, "mode": "step"}))
    p.top_p.setValue(0.5)
    p.unmask.setCurrentText("random")
    qtbot.waitUntil(lambda: sent == [{"top_p": 0.5, "unmask": "random"}], timeout=20000)
    p.apply_settings(in_force)  # what the window does with a refusal
    assert (p.top_p.value(), p.unmask.currentText()) == (1.0, "confidence")
    qtbot.wait(400)
    assert len(sent) == 1  # showing what is in force asks for nothing


def test_the_events_tab_says_why_it_is_off_once(qtbot):
    """With no world both kinds of event are off for the same reason: the tab says it once, not twice in a row."""
    from editor_gui.events_panel import EventsPanel

    p = EventsPanel()
    qtbot.addWidget(p)
    p.set_capabilities("No world is running: press New world.", "No world is running: press New world.")
    assert p.status.text() == "No world is running: press New world."
    p.set_capabilities("No typed events here.", "No free text here.")
    assert p.status.text() == "No typed events here. No free text here."


def _png(color) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((2, 2, 4), color, np.uint8), "RGBA").save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("as_file", [True, False])
def test_edit_branches_save_and_reload(tmp_path, as_file):
    s = Session(backend_kind="world_model", width=16, height=16)
    root = s.new_root(PromptSpec(seed=1, backend="world_model"))
    s.live = root.id
    for i in range(4):
        s.add_frame(FrameRecord(i, 2 if i else -1, image=np.full((16, 16, 3), i, np.uint8)))
    path = tmp_path / ("plain.wbsession" if as_file else "plain")
    s.save(path)
    assert Session.load(path) is not None
    read = (lambda n: zipfile.ZipFile(path).read(n)) if as_file else (lambda n: (path / n).read_bytes())
    assert json.loads(read("session.json"))["version"] == 1  # no edits: older editors still open it
    e1, e2 = {"layer": _png((255, 0, 0, 255)), "x": 3, "y": -1}, {"layer": _png((0, 0, 255, 128)), "x": 9, "y": 4}
    edit = s.fork_edit(root.id, 2)  # frame 2 edited: the new branch owns its own frame 2
    assert (edit.parent, edit.parent_frame) == (root.id, 1)
    s.live = edit.id
    s.add_frame(FrameRecord(2, 2, ["edit"], edits=[e1, e2], image=np.full((16, 16, 3), 99, np.uint8)))
    s.add_frame(FrameRecord(3, 1, image=np.full((16, 16, 3), 98, np.uint8)))
    assert [r.image[0, 0, 0] for r in s.path(edit.id)] == [0, 1, 99, 98]
    assert [r.image[0, 0, 0] for r in s.path(root.id)] == [0, 1, 2, 3]  # the unedited frame stays in the parent
    assert s.owner(edit.id, 2) == edit.id and s.owner(edit.id, 1) == root.id
    first = s.fork_edit(root.id, 0)  # frame 0 can be edited too
    assert first.parent_frame == -1 and s.path(first.id) == []
    path = tmp_path / ("e.wbsession" if as_file else "e")
    s.save(path)
    back = Session.load(path)
    rec = back.branches[edit.id].frames[2]
    assert rec.edits == [e1, e2] and rec.action == 2 and back.branches[root.id].frames[2].edits == []
    assert (back.branches[first.id].parent, back.branches[first.id].parent_frame) == (root.id, -1)
