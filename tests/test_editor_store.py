"""Editor pieces that need no host: the branch tree, session save/load, exports, key maps."""

import dataclasses
import json
import os
import re
import stat
import zipfile

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import pytest

from bridge.files import Cancelled
from editor_gui import export as exporting
from editor_gui.keymap import ActionResolver, HeldKeys, KeyMap
from editor_gui.session_store import FrameRecord, Frames, PromptSpec, Session, SessionFileError


def _img(i: int) -> np.ndarray:
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 0] = i
    img[i % 16, :, 1] = 255
    return img


def _session() -> Session:
    """Root 0..9 recorded; branch from frame 4 with frames 5..7; a branch of that branch from 6 with 7..8."""
    s = Session(backend_kind="sandbox", backend_name="sandbox game", fps=12.0, width=16, height=16,
                action_names=["noop", "left", "right"], latent_names={2: "go right"}, keymap=KeyMap().to_dict())
    root = s.new_root(PromptSpec(seed=3, text="snow", image_png=b"\x89PNGfake", sketch_png=None))
    s.live = root.id
    for i in range(10):
        s.add_frame(FrameRecord(i, -1 if i == 0 else i % 3, ["it snows"] if i == 3 else [], [{"event_type": "weather_snow", "text": None}] if i == 3 else [], _img(i)))
    b1 = s.fork(root.id, 4)
    s.live = b1.id
    for i in range(4, 8):  # frame 4 is the parent's (the host re-sends it): not stored twice
        s.add_frame(FrameRecord(i, 1, [], [], _img(100 + i)))
    b2 = s.fork(b1.id, 6)
    s.live = b2.id
    for i in range(7, 9):
        s.add_frame(FrameRecord(i, 2, [], [], _img(200 + i)))
    return s


def test_branch_tree_paths():
    s = _session()
    assert [r.index for r in s.path(0)] == list(range(10))
    p1 = s.path(1)
    assert [r.index for r in p1] == list(range(8))
    assert p1[4].image[0, 0, 0] == 4 and p1[5].image[0, 0, 0] == 105  # fork frame from the root, then its own
    assert sorted(s.branches[1].frames) == [5, 6, 7]
    p2 = s.path(2)
    assert [r.image[0, 0, 0] for r in p2] == [0, 1, 2, 3, 4, 105, 106, 207, 208]
    assert s.owner(2, 3) == 0 and s.owner(2, 6) == 1 and s.owner(2, 8) == 2
    # forking at a frame of an ancestor makes the ancestor the parent
    b3 = s.fork(2, 2)
    assert b3.parent == 0 and b3.parent_frame == 2
    with pytest.raises(ValueError, match="not on branch"):
        s.fork(1, 9)


@pytest.mark.parametrize("saved", [False, True])
def test_a_branchs_own_frame_at_or_before_its_fork_is_left_out_of_path_and_recorded_alike(tmp_path, saved):
    s = _session()  # branch 1 forks the root at 4, branch 2 forks branch 1 at 6
    del s.branches[0].frames[2]  # a hole in the root: only branch 1's own frame 2 is there
    s.branches[1].frames.update({2: FrameRecord(2, 1, image=_img(102)), 3: FrameRecord(3, 1, image=_img(103))})
    s.branches[2].frames[6] = FrameRecord(6, 2, image=_img(206))  # add_frame refuses these; a session file may not
    if saved:
        s = Session.load(s.save(tmp_path / "old.wbsession"))
    for bid, pixels in [(1, [0, 1, 3, 4, 105, 106, 107]), (2, [0, 1, 3, 4, 105, 106, 207, 208])]:
        assert [r.image[0, 0, 0] for r in s.path(bid)] == pixels  # the fork's ancestors' frames, never the copies
        assert s.recorded(bid) == s.path(bid)


def test_an_opened_session_holds_no_branch_frame_at_or_before_its_fork_and_shows_the_same(tmp_path):
    """No view shows a branch's own frames at or before its fork (only a session file has them), yet Open… kept them:
    the memory guard counted their pixels, and the tree gave such a branch a timeline shorter than its fork."""
    s = _session()  # branch 1 forks the root at 4 (own 5..7), branch 2 forks branch 1 at 6 (own 7..8)
    shown = {bid: [(r.index, r.image[0, 0, 0]) for r in s.path(bid)] for bid in s.branches}
    shown[3] = shown[0]
    s.branches[1].frames.update({2: FrameRecord(2, 1, image=_img(102)), 4: FrameRecord(4, 1, image=_img(104))})
    s.branches[2].frames[6] = FrameRecord(6, 2, image=_img(206))  # add_frame refuses these; a session file may not
    s.fork(0, 9).frames[3] = FrameRecord(3, 1)  # branch 3 holds only such a frame
    opened = Session.load(s.save(tmp_path / "old.wbsession"))
    assert sorted(opened.branches[1].frames) == [5, 6, 7] and sorted(opened.branches[2].frames) == [7, 8]
    assert not opened.branches[3].frames and opened.branches[3].last_index() == 9  # its timeline ends at its fork
    assert opened.images_held() == 10 + 3 + 2  # the frames the views show, no more
    for bid, frames in shown.items():
        assert [(r.index, r.image[0, 0, 0]) for r in opened.path(bid)] == frames
        assert opened.recorded(bid) == opened.path(bid)


def test_rewind_drops_later_frames():
    s = _session()
    s.live = 0
    s.add_frame(FrameRecord(6, -1, [], [], _img(50)), rewind=True)  # a re-sent frame (action -1)
    assert sorted(s.branches[0].frames) == [0, 1, 2, 3, 4, 5, 6]
    assert s.branches[0].frames[6].action == 0 and s.branches[0].frames[6].image[0, 0, 0] == 6
    s.add_frame(FrameRecord(7, 2, [], [], _img(51)))
    assert s.branches[0].frames[7].image[0, 0, 0] == 51


def test_a_frames_copy_keeps_the_order_and_recorded_lists_and_later_changes_leave_it_alone():
    frames = _session().branches[0].frames
    frames[12] = FrameRecord(12, 1)  # not recorded
    copy = frames.copy()
    assert isinstance(copy, Frames) and copy == frames and copy.version != frames.version
    assert copy.indices == frames.indices == [*range(10), 12]
    assert copy.recorded == frames.recorded and [r.index for r in copy.recorded] == list(range(10))
    frames[13] = FrameRecord(13, 1, image=_img(13))
    del frames[3]
    assert copy.indices == [*range(10), 12] and [r.index for r in copy.recorded] == list(range(10))
    copy[11] = FrameRecord(11, 1, image=_img(11))
    assert 11 not in frames and [r.index for r in copy.recorded] == [*range(10), 11]


def test_a_frame_in_a_branch_cannot_have_its_pixels_or_index_changed_behind_the_recorded_list():
    s = _session()
    frames = s.branches[0].frames
    for name, value in [("image", None), ("image", _img(77)), ("index", 40)]:
        with pytest.raises(AttributeError, match=rf"frame 9's {name} cannot change .*frames\[9\] = "
                                                 rf"dataclasses.replace\(rec, {name}=...\)"):
            setattr(frames[9], name, value)
    assert frames[9].image[0, 0, 0] == 9 and frames[9].index == 9
    frames[9] = dataclasses.replace(frames[9], image=None)  # the way: a new record in its place
    assert [r.index for r in s.recorded(0)] == list(range(9)) and frames[9].action == 0
    rec = FrameRecord(10, 1)
    rec.image = _img(10)  # not in a branch yet: its pixels may still be set
    frames[10] = rec
    assert [r.index for r in s.recorded(0)] == [*range(9), 10]


def test_a_frame_put_under_another_index_is_refused_and_the_branch_stays_as_it_was():
    """frames[5] = a record of frame 7 went in: the ordered lists held 7 at 5's place and the scrubber mixed them up."""
    frames = _session().branches[0].frames
    with pytest.raises(ValueError, match=r"frames\[5\] = a record of frame 7: .*frames\[rec.index\] = rec"):
        frames[5] = FrameRecord(7, 1, image=_img(7))
    with pytest.raises(ValueError, match=r"frames\[12\] = a record of frame 3"):
        frames.update({12: FrameRecord(3, 1)})
    with pytest.raises(ValueError, match=r"frames\[1\] = a record of frame 2"):
        Frames({0: FrameRecord(0, 1), 1: FrameRecord(2, 1)})
    assert frames.indices == sorted(frames) == list(range(10)) and frames[5].index == 5
    assert [r.index for r in frames.recorded] == list(range(10))


def test_a_folder_save_killed_midway_leaves_a_temp_the_next_save_removes(tmp_path, monkeypatch):
    """An editor killed while saving a folder session left its hidden temp folder (the frames so far) beside the
    session forever; the next save to that name removes it once its process is gone."""
    import editor_gui.session_store as store
    from helpers import dead_pid

    with monkeypatch.context() as m:  # the save of a process that is then killed: nothing of it cleans up
        m.setattr(os, "getpid", lambda gone=dead_pid(): gone)
        m.setattr(store, "publish_over", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
        m.setattr(store, "remove_tree", lambda *a: None)
        with pytest.raises(KeyboardInterrupt):
            _session().save(tmp_path / "take")
    assert len(os.listdir(tmp_path)) == 1
    _session().save(tmp_path / "take")
    assert os.listdir(tmp_path) == ["take"]


@pytest.mark.parametrize("name", ["one.wbsession", "folder_session"])
def test_save_load_roundtrip(tmp_path, name):
    s = _session()
    frames = s.branches[0].frames
    frames[9] = dataclasses.replace(frames[9], image=None)  # an unrecorded frame keeps its action but no pixels
    path = s.save(tmp_path / name)
    assert path.is_file() == name.endswith(".wbsession")
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")], "temp files left behind"
    t = Session.load(path)
    assert t.backend_kind == "sandbox" and t.fps == 12.0 and t.latent_names == {2: "go right"} and t.live == 2
    assert t.keymap == KeyMap().to_dict()
    assert t.branches[0].prompt.seed == 3 and t.branches[0].prompt.image_png == b"\x89PNGfake"
    assert t.branches[0].prompt.sketch_png is None
    for bid in s.branches:
        a, b = s.path(bid), t.path(bid)
        assert [(r.index, r.action, r.events, r.fired) for r in a] == [(r.index, r.action, r.events, r.fired) for r in b]
        for ra, rb in zip(a, b):
            assert (ra.image is None and rb.image is None) or np.array_equal(ra.image, rb.image)
    assert t.branches[0].frames[9].image is None and t.branches[0].frames[9].action == 0
    # saving again over the same path replaces it atomically
    s.branches[1].name = "renamed"
    s.save(path)
    assert Session.load(path).branches[1].name == "renamed"


def test_saves_and_exports_get_an_ordinary_files_mode(tmp_path):
    """Temp files are private to their owner (mkstemp, mkdtemp); what lands is meant to be shared."""
    old = os.umask(0o022)
    try:
        s = _session()
        made = [s.save(tmp_path / "a.wbsession"), s.save(tmp_path / "folder"),
                exporting.export_gif([r.image for r in s.path(2)], tmp_path / "a.gif", 12.0, 1),
                exporting.export_png_frames(s.path(2), tmp_path / "pngs", 1)]
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in made}
        assert modes == {"a.wbsession": 0o644, "folder": 0o755, "a.gif": 0o644, "pngs": 0o755}
        os.umask(0o077)  # a user who wants them private gets that too
        assert stat.S_IMODE(s.save(tmp_path / "b.wbsession").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_load_rejects_other_files(tmp_path):
    (tmp_path / "x.wbsession").write_text("hello")
    with pytest.raises(ValueError, match="not a saved session"):
        Session.load(tmp_path / "x.wbsession")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no session.json"):
        Session.load(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a saved session"):
        _session().save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"



def _rezip(path, change) -> None:
    """Rewrite a saved session's zip with `change(files)` applied to its {name: bytes}."""
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    change(files)
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in files.items():
            zf.writestr(n, data)


def _flip_a_byte_of(path, member: str) -> None:
    """A bit error inside one member's data (the zip's index stays whole): its CRC no longer matches."""
    with zipfile.ZipFile(path) as zf:
        data = zf.read(member)
    raw = bytearray(path.read_bytes())
    at = raw.find(data[200:264]) + 10
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))


DAMAGE = {
    "cut": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "cut in its index": lambda p: p.write_bytes(p.read_bytes()[:-100]),  # a frames .npz's index is then found
    "bad crc": lambda p: _flip_a_byte_of(p, "frames/branch_0.npz"),
    "missing member": lambda p: _rezip(p, lambda f: f.pop("frames/branch_1.npz")),
    "bad json": lambda p: _rezip(p, lambda f: f.update({"session.json": b'{"format": "worldbridge-ed'})),
    "bad npz": lambda p: _rezip(p, lambda f: f.update({"frames/branch_0.npz": b"PK\x03\x04 cut npz"})),
    "bad manifest": lambda p: _rezip(p, lambda f: f.update({"session.json": json.dumps(
        {**json.loads(f["session.json"]), "branches": [{"id": 0}]}).encode()})),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("autosaves", [0, 2])
def test_a_damaged_session_file_is_one_clear_line_naming_it_and_what_to_do(tmp_path, monkeypatch, damage, autosaves):
    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path / "autosave"))
    for k in range(autosaves):
        (tmp_path / "autosave").mkdir(exist_ok=True)
        (tmp_path / "autosave" / f"{k}-closed-1.wbsession").write_bytes(b"")
    path = _session().save(tmp_path / "mine.wbsession")
    DAMAGE[damage](path)
    with pytest.raises(SessionFileError) as e:
        Session.load(path)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{path} is a damaged saved session (")
    assert "open a copy saved earlier" in message
    assert (f"an autosave in {tmp_path / 'autosave'} (2 files)" in message) == bool(autosaves)


def test_a_session_from_a_newer_editor_or_another_program_says_so(tmp_path):
    path = _session().save(tmp_path / "new.wbsession")
    _rezip(path, lambda f: f.update({"session.json": json.dumps({**json.loads(f["session.json"]), "version": 99}).encode()}))
    with pytest.raises(SessionFileError, match=r"new.wbsession was saved by a newer editor .*update WorldBridge"):
        Session.load(path)
    _rezip(path, lambda f: f.update({"session.json": b'{"format": "other"}'}))
    with pytest.raises(SessionFileError, match=r"new.wbsession is not a saved session .*format 'other'"):
        Session.load(path)
    folder = _session().save(tmp_path / "folder")
    (folder / "frames" / "branch_0.npz").unlink()
    with pytest.raises(SessionFileError, match=r"folder is a damaged saved session \(frames/branch_0.npz is missing\)"):
        Session.load(folder)

def test_exports_read_back(tmp_path):
    s = _session()
    recs = s.path(2)
    frames = [r.image for r in recs]
    scale = exporting.auto_scale(16, 16)
    assert (16 * scale) % 16 == 0
    seen = []
    mp4 = exporting.export_mp4(frames, tmp_path / "a.mp4", 12.0, scale, lambda d, t: seen.append((d, t)) or True)
    assert seen[-1] == (len(frames), len(frames))
    reader = iio2.get_reader(mp4)
    assert reader.count_frames() == len(frames)
    assert reader.get_meta_data()["size"] == (16 * scale, 16 * scale)
    reader.close()
    gif = exporting.export_gif(frames, tmp_path / "a.gif", 12.0, 2)
    assert iio.imread(gif, index=None).shape[:3] == (len(frames), 32, 32)
    folder = exporting.export_png_frames(recs, tmp_path / "pngs", 1)
    assert sorted(os.listdir(folder))[0] == "frame_000000.png" and len(os.listdir(folder)) == len(recs)
    assert np.array_equal(iio.imread(folder / "frame_000008.png"), recs[-1].image)
    log = exporting.action_log(recs, lambda a: ["noop", "left", "right"][a], 12.0)
    path = exporting.export_actions(log, tmp_path / "log.json")
    data = json.loads(path.read_text())
    assert [f["action_name"] for f in data["frames"]][:3] == [None, "left", "right"]
    assert data["frames"][3]["events"] == ["it snows"]


def test_export_cancel_and_empty(tmp_path):
    with pytest.raises(ValueError, match="record some frames"):
        exporting.export_mp4([], tmp_path / "x.mp4", 24.0)
    with pytest.raises(Cancelled):
        exporting.export_mp4([_img(i) for i in range(5)], tmp_path / "x.mp4", 24.0, 1, lambda d, t: d < 2)
    assert not any(tmp_path.iterdir()), "a cancelled export must leave nothing behind"


def test_keymap_resolution_and_combos():
    km = KeyMap()
    r = ActionResolver(["noop", "left", "right", "jump", "right_jump", "left_jump"], 6, {0: "wait"})
    held = HeldKeys()
    assert held.current(km, r) == 0  # idle = noop
    held.press("Right")
    assert held.current(km, r) == 2
    held.press("Space")
    assert held.current(km, r) == 4  # right + jump -> right_jump
    held.release("Right")
    assert held.current(km, r) == 3
    held.press("A")
    assert held.current(km, r) == 5  # jump + left -> left_jump (either order)
    held.clear()
    held.press("3")
    assert held.current(km, r) == 2  # digits play action ids directly
    assert r.resolve("wait") == 0 and r.resolve("up") is None and r.resolve(9) is None
    # latent names never shadow the backend's own names
    assert ActionResolver(["noop", "left"], 2, {0: "left"}).resolve("left") == 1
    assert KeyMap.from_dict(km.to_dict()) == km
    with pytest.raises(ValueError, match="bad key binding"):
        KeyMap.from_dict({"bindings": {"Left": [1]}})


def saved_with(path, manifest: dict, folder):
    """The `.wbsession` at `path` as a session folder whose session.json is `manifest` (an older editor's file)."""
    folder.mkdir()
    (folder / "session.json").write_text(json.dumps(manifest))
    for name in zipfile.ZipFile(path).namelist():
        if name != "session.json":
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(zipfile.ZipFile(path).read(name))
    return folder


def test_frame_settings_save_and_reload_and_older_sessions_have_none(tmp_path):
    s = _session()
    s.branches[0].frames[0].settings = {"steps": 8, "temperature": 1.0}  # what the world started with
    s.branches[0].frames[3].settings = {"temperature": 0.5}  # changed just before frame 3
    path = s.save(tmp_path / "tuned.wbsession")
    t = Session.load(path)
    assert [r.settings for r in t.path(0)][:4] == [{"steps": 8, "temperature": 1.0}, {}, {}, {"temperature": 0.5}]
    manifest = json.loads(zipfile.ZipFile(path).read("session.json"))
    assert manifest["version"] == 3  # older editors refuse it rather than rebuild with other settings
    for f in manifest["branches"][0]["frames"]:  # a session saved before settings were recorded
        f.pop("settings", None)
    manifest["version"] = 2
    old = saved_with(path, manifest, tmp_path / "old")
    assert all(r.settings == {} for r in Session.load(old).path(0))  # it opens; its rebuilds use the host's defaults
    assert json.loads((_session().save(tmp_path / "plain") / "session.json").read_text())["version"] == 1


def test_a_running_autosave_is_recovered_when_its_lock_is_free_whatever_its_pid(tmp_path, monkeypatch):
    """The PID decided it: a crashed editor's file named with a PID now live (this editor's own: containers reuse
    PIDs) was never recovered, and os.kill(pid, 0) terminates the process on Windows."""
    from editor_gui.session_store import hold_running_lock, recover_crashed, release_running_lock

    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path))
    own = tmp_path / f"20260101-000000-running-{os.getpid()}.wbsession"  # an earlier editor with this PID crashed
    live = tmp_path / "20260101-000001-running-1.wbsession"  # PID 1 is alive, and so is this file's editor
    stale = tmp_path / "20260101-000002-running-7.lock"  # an editor that crashed before its first autosave
    for path in (own, live):
        path.write_bytes(b"PK\x03\x04")
    stale.write_bytes(b"")
    lock = hold_running_lock(live)
    assert lock is not None and hold_running_lock(live) is None  # a second open file cannot take it, here either
    assert recover_crashed() == [tmp_path / own.name.replace("-running-", "-crashed-")]
    assert live.exists() and not own.exists() and not stale.exists()
    release_running_lock(live, lock)  # its editor ended
    assert recover_crashed() == [tmp_path / live.name.replace("-running-", "-crashed-")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [own.name.replace("-running-", "-crashed-"),
                                                        live.name.replace("-running-", "-crashed-")]


@pytest.mark.skipif(os.name == "nt", reason="flock is POSIX")
def test_a_lock_removed_between_open_and_flock_is_retaken_so_a_live_autosave_is_never_recovered(tmp_path,
                                                                                                monkeypatch):
    """A starting editor's recover_crashed locked and removed a live editor's lock file between that editor's open and
    flock, which then held a lock on a removed file: the next start took its running autosave as a crash."""
    import fcntl

    from editor_gui import session_store as store

    monkeypatch.setenv("WORLDBRIDGE_AUTOSAVE", str(tmp_path))
    running = tmp_path / "20260101-000000-running-4242-1.wbsession"
    real, first = fcntl.flock, [True]

    def flock(fd, op):
        if first[0] and op & fcntl.LOCK_EX:
            first[0] = False
            assert store.recover_crashed() == []  # another editor starts between this open and flock
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    lock = store.hold_running_lock(running)
    assert lock is not None and store._lock_path(running).exists()
    running.write_bytes(b"PK\x03\x04")
    assert store.recover_crashed() == [] and running.exists()  # a third start leaves the live editor's file
    store.release_running_lock(running, lock)


def test_a_cancelled_save_stops_between_frames_and_leaves_nothing(tmp_path):
    """A save could not stop once begun, so a close could only wait for an autosave of thousands of frames."""
    s = _session()
    asked = []
    with pytest.raises(Cancelled):
        s.save(tmp_path / "a.wbsession", lambda done, total: asked.append((done, total)) or len(asked) < 2)
    assert asked == [(0, s.images_held()), (1, s.images_held())] and not list(tmp_path.iterdir())
    loaded = Session.load(s.save(tmp_path / "a.wbsession"))  # saved frame by frame, it opens as before
    assert all(np.array_equal(a.image, b.image) for a, b in zip(loaded.path(0), s.path(0)))


@pytest.mark.parametrize("name", ["a.wbsession", "a_folder"])
def test_a_save_cancelled_after_its_last_frame_keeps_the_old_session_as_it_was(tmp_path, name):
    """A Cancel pressed while the encoded frames were being written out was ignored: the save replaced the old file."""
    s = _session()
    path = s.save(tmp_path / name)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    s.branches[0].frames[3].events = ["it rains"]  # new work the cancelled save would have written
    total = s.images_held()
    with pytest.raises(Cancelled):
        s.save(path, lambda done, _total: done < total)  # every frame goes through; the last word is stop
    assert {p.relative_to(tmp_path): p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()} == before
    assert Session.load(path).branches[0].frames[3].events == ["it snows"]


def test_a_folder_save_that_fails_to_publish_puts_the_old_folder_back(tmp_path, monkeypatch):
    """The old folder was moved aside before the new one was published: a failure left it under a hidden name."""
    import bridge.files

    s = _session()
    path = s.save(tmp_path / "a_folder")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    def failing(tmp, dest):
        raise OSError("disk full")

    monkeypatch.setattr(bridge.files, "publish", failing)  # publish_over's own publish
    with pytest.raises(OSError, match="disk full"):
        s.save(path)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert len(Session.load(path).recorded(0)) == 10


@pytest.mark.parametrize("name", ["a.wbsession", "a_folder"])
def test_a_cancelled_open_stops_between_frames_and_an_open_reads_every_frame_as_before(tmp_path, name):
    """Opening could not stop: Open…'s dialog had a Cancel that did nothing while thousands of frames were read."""
    s = _session()
    path = s.save(tmp_path / name)
    total, asked = s.images_held(), []
    with pytest.raises(Cancelled):
        Session.load(path, lambda done, t: asked.append((done, t)) or len(asked) < 2)
    assert asked == [(0, total), (1, total)]
    asked.clear()
    loaded = Session.load(path, lambda done, t: asked.append((done, t)) or True)
    assert asked == [(i, total) for i in range(total + 1)]  # each frame, then once more when all are read
    for b in s.branches:
        assert [r.index for r in loaded.recorded(b)] == [r.index for r in s.recorded(b)]
        assert all(np.array_equal(a.image, c.image) for a, c in zip(loaded.recorded(b), s.recorded(b)))
    assert loaded.recorded(0)[0].image.flags.writeable
    with pytest.raises(Cancelled):  # a cancel after the last frame is honoured too
        Session.load(path, lambda done, t: done < t)


def test_an_open_reads_frames_saved_by_numpy_itself(tmp_path):
    """Sessions whose frames np.savez_compressed wrote (before frames were written one at a time) still open."""
    s = _session()
    path = s.save(tmp_path / "a_folder")
    for b in s.branches.values():
        recs = [r for r in sorted(b.frames.values(), key=lambda r: r.index) if r.image is not None]  # its own
        np.savez_compressed(path / "frames" / f"branch_{b.id}.npz", index=np.array([r.index for r in recs], np.int64),
                            images=np.stack([r.image for r in recs]))
    loaded = Session.load(path)
    assert all(np.array_equal(a.image, c.image) for a, c in zip(loaded.recorded(2), s.recorded(2)))


@pytest.mark.parametrize("seed", [-1, 2**63, "7", 1.5, True])
def test_a_prompt_seed_the_prompt_panel_cannot_show_is_a_session_file_error_naming_its_branch(tmp_path, seed):
    """An out-of-range seed loaded, then raised in the Prompt panel inside the open's slot: a half-loaded window."""
    s = Session(backend_kind="sandbox", width=64, height=64)
    s.new_root(PromptSpec(seed=3, backend="sandbox"))
    s.new_root(PromptSpec(seed=seed, backend="sandbox"))
    s.save(tmp_path / "bad.wbsession")
    shown = re.escape(repr(seed))
    with pytest.raises(SessionFileError, match=rf"damaged saved session \(branch 1's prompt has seed {shown}"):
        Session.load(tmp_path / "bad.wbsession")


def test_each_branch_keeps_its_worlds_rate_through_save_and_older_files_use_the_sessions_one(tmp_path):
    from bridge.backend import DEFAULT_FPS

    s = _session()  # the session's one rate: 12
    assert [s.fps_of(b) for b in s.branches] == [12.0, 12.0, 12.0]  # a fork plays on at its timeline's rate
    s.branches[0].fps = 15.0
    s.branches[1].fps = 20.0  # Settings on branch 1, after branch 2 forked from it: branch 2 keeps its rate
    other = s.new_root(PromptSpec(seed=1, backend="world_model"), fps=10.0)
    forked = s.fork(1, 6)
    rates = [15.0, 20.0, 12.0, 10.0, 20.0]
    assert [s.fps_of(b) for b in (0, 1, 2, other.id, forked.id)] == rates
    path = s.save(tmp_path / "rates.wbsession")
    t = Session.load(path)
    assert [t.fps_of(b) for b in (0, 1, 2, other.id, forked.id)] == rates
    manifest = json.loads(zipfile.ZipFile(path).read("session.json"))
    for b in manifest["branches"]:  # a session saved when the editor kept one rate for all its worlds
        b.pop("fps")
    old = saved_with(path, manifest, tmp_path / "old")
    assert {Session.load(old).fps_of(b) for b in t.branches} == {12.0}
    opened = Session.load(old)
    opened.fps = 15.0  # the next world the editor starts sets the session's rate: an opened branch keeps its own
    assert {opened.fps_of(b) for b in t.branches} == {12.0}
    del manifest["fps"]
    (old / "session.json").write_text(json.dumps(manifest))
    assert Session.load(old).fps_of(0) == Session().fps == DEFAULT_FPS


def test_each_branch_keeps_its_worlds_frame_size_through_save_and_older_files_use_the_sessions_one(tmp_path):
    s = _session()  # the session's one size: 16x16, its root kept none (a session opened from an older file)
    big = s.new_root(PromptSpec(seed=1, backend="world_model"), size=(128, 64))
    s.live = big.id
    s.add_frame(FrameRecord(0, -1, [], [], np.zeros((64, 128, 3), np.uint8)))
    forked, edited = s.fork(big.id, 0), s.fork_edit(big.id, 0)  # a branch plays on in its world, at its size
    sizes = [(16, 16), (16, 16), (128, 64), (128, 64), (128, 64)]
    assert [s.size_of(b) for b in (0, 2, big.id, forked.id, edited.id)] == sizes
    path = s.save(tmp_path / "sizes.wbsession")
    t = Session.load(path)
    assert [t.size_of(b) for b in (0, 2, big.id, forked.id, edited.id)] == sizes
    manifest = json.loads(zipfile.ZipFile(path).read("session.json"))
    for b in manifest["branches"]:  # a session saved when the editor kept one size for all its worlds
        b.pop("size", None)
    old = saved_with(path, manifest, tmp_path / "old")
    assert {Session.load(old).size_of(b) for b in t.branches} == {(16, 16)}
