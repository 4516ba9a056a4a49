"""Protocol 1.1 over real sockets: `edit` (ok, edited frame, epochs, branch back, step order, batched sessions,
recordings), `session.capabilities`, `settings.event_cfg`, and 1.0 clients on a 1.1 host."""

import io
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import zmq
from PIL import Image

from bridge.backend import Prompt, WorldEvent
from bridge.client import ProtocolError, WorldClient
from bridge.host import protocol as P
from bridge.host.backends import DEFAULT_WORLD
from bridge.host.protocol import Limits, ProtocolError
from bridge.host.recording import RecordingReader
from bridge.host.replay import replay_recording
from bridge.host.server import run_host_in_thread
from bridge.model.world import load_world
from bridge.prompts.edit import paste_layer
from test_prompts_helpers import micro64_config, save_held_event_settings, save_micro_world, solid_rgba

torch.set_num_threads(1)


# --- test-only backends ---

class PlainPaste:
    """TEST-ONLY backend whose frame is a canvas: steps write a counter pixel at (0, 0), edits paint exactly (no
    tokenizer in between), and paint stays for later frames. It says nothing about its capabilities."""

    kind = "sandbox"
    name = "test paste world"
    action_names = ["a", "b"]
    num_latent_actions = 2
    event_types = ["boom"]
    height = width = 16

    def reset(self, prompt: Prompt):
        self.seed, self.n = int(prompt.seed or 0), 0
        self.img = np.full((16, 16, 3), 40, np.uint8)
        return self._frame()

    def _frame(self):
        self.img[0, 0] = (self.seed % 256, self.n % 256, 7)
        return self.img.copy()

    def step(self, action, event=None):
        self.n += 1
        return self._frame()

    def edit_frame(self, rgba, x, y):
        self.img = paste_layer(self.img, rgba, x, y)
        return self.img.copy()

    def get_state(self):
        return (self.seed, self.n, self.img.copy())

    def set_state(self, state):
        self.seed, self.n, img = state
        self.img = img.copy()


class PasteWorld(PlainPaste):
    """TEST-ONLY: the same canvas, saying it can edit (unknown capability names are dropped by the host)."""

    capabilities = ["edit", "events", "teleport"]


class HeavyPasteWorld(PasteWorld):
    """TEST-ONLY: a large state (like a KV cache), so the host keeps sparse keyframes and re-simulates edits."""

    def get_state(self):
        return {"small": super().get_state(), "cache": np.zeros(4 * 1024 * 1024, np.uint8)}

    def set_state(self, state):
        super().set_state(state["small"])


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def frames_until(c: WorldClient, n: int, timeout: float = 20.0) -> list:
    """The next n frames of the client's current epoch, in order."""
    out, deadline = [], time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out += c.drain_frames(timeout=0.5)
    assert len(out) == n, f"got {len(out)} of {n} frames"
    return out


def save_event_world(out: Path) -> Path:
    """An untrained 64x64 micro world with typed events (a conditioning slot), so it has event guidance."""
    from bridge.model.checkpoint import save_model, state_tensors
    from bridge.model.genie import WorldModel

    cfg = micro64_config(cond_dim=16)
    cfg.event_types = ["flood", "snow"]
    cfg.validate()
    torch.manual_seed(0)
    model = WorldModel(cfg, bank_size=4)
    model.bank.copy_(torch.randint(0, model.tokenizer.vocab, model.bank.shape))
    with torch.no_grad():
        model.event_embed.normal_()  # untrained, the event path is zeros: events (and their guidance) would do nothing
        model.dynamics.cond_proj.weight.normal_(std=0.5)
    save_model(out, "world", cfg, state_tensors(model), {"step": 0, "preset": "micro64"}, 0)
    return out


# --- fixtures ---

@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory):
    return save_micro_world(tmp_path_factory.mktemp("edit") / "plain")


def on_cpu(path: Path):
    """A backend factory pinned to the CPU, so frames compare exactly with an in-process CPU reference."""
    return lambda: load_world(path, device="cpu")


@pytest.fixture(scope="module")
def model_host(plain_dir):
    """A host serving the micro world model (default) and the sandbox."""
    h = run_host_in_thread(on_cpu(plain_dir), limits=Limits(idle_timeout_s=60), record_anywhere=True)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def event_dir(tmp_path_factory):
    return save_event_world(tmp_path_factory.mktemp("edit") / "events")


@pytest.fixture(scope="module")
def event_host(event_dir):
    h = run_host_in_thread(on_cpu(event_dir), record_anywhere=True)
    yield h
    h.stop()


@pytest.fixture
def paste_host():
    h = run_host_in_thread(PasteWorld)
    yield h
    h.stop()


# --- edit on the world model ---

def test_edit_sends_the_edited_frame_and_the_world_goes_on_from_it(model_host, plain_dir):
    layer = solid_rgba(24, 24, (255, 0, 0))
    with WorldClient(model_host.address) as c:
        s = c.start(backend="world_model", mode="step", seed=3)
        assert s["backend_kind"] == "world_model" and s["capabilities"] == ["image_prompt", "edit"]
        c.next_frame()
        c.step(1)
        before = c.step(2)
        ok = c.edit(layer, 20, 20)
        assert ok["request"] == "edit" and ok["epoch"] == 1 and ok["frame_index"] == 2
        f = c.next_frame()
        assert (f.index, f.epoch, f.events, f.action) == (2, 1, ["edit"], -1)
        assert not np.array_equal(f.image, before.image)
        after = c.step(0)
        assert (after.index, after.epoch) == (3, 1)
        assert c.status()["epoch"] == 1
    ref = load_world(plain_dir, device="cpu")  # the same world in-process: the host pasted exactly this layer here
    ref.reset(Prompt(seed=3))
    ref.step(1)
    assert np.array_equal(ref.step(2), before.image)
    assert np.array_equal(ref.edit_frame(layer, 20, 20), f.image)
    assert np.array_equal(ref.step(0), after.image)


@pytest.mark.skipif(not (DEFAULT_WORLD / "config.json").is_file(), reason="no embedded default world")
def test_edit_moves_the_pasted_region_toward_the_layer_on_a_trained_world():
    """The micro worlds above have untrained tokenizers; the embedded default world reconstructs what is pasted."""
    h = run_host_in_thread(str(DEFAULT_WORLD))
    try:
        with WorldClient(h.address, timeout=30) as c:
            s = c.start(mode="step", seed=0)
            W, H = s["width"], s["height"]
            c.next_frame()
            before = c.step(1).image
            blue = np.array([0, 0, 255])
            size = min(W, H) // 2
            x, y = W // 4, H // 4
            c.edit(solid_rgba(size, size, tuple(blue)), x, y)
            edited = c.next_frame()
            assert edited.events == ["edit"]

            def dist(img):
                return float(np.abs(img[y:y + size, x:x + size].astype(float) - blue).mean())

            assert dist(edited.image) < dist(before) - 20, (dist(before), dist(edited.image))
    finally:
        h.stop()


def test_branch_back_to_an_edited_frame_restores_it(model_host):
    with WorldClient(model_host.address) as c:
        c.start(mode="step", seed=5)
        c.next_frame()
        for a in (1, 2, 3):
            c.step(a)
        c.edit(solid_rgba(16, 16, (0, 255, 0)), 8, 40)
        edited = c.next_frame()
        later = [c.step(0), c.step(1)]
        ok = c.branch(3)
        assert ok["epoch"] == 2 and ok["frame_index"] == 3
        again = c.next_frame()
        assert (again.index, again.epoch) == (3, 2) and np.array_equal(again.image, edited.image)
        assert np.array_equal(c.step(0).image, later[0].image)  # the world goes on from the edited state, exactly
        c.branch(2)  # before the edit: the unedited past is still there
        assert c.step(3).index == 3


def test_bad_layers_and_positions_are_refused_and_change_nothing(model_host):
    with WorldClient(model_host.address) as c:
        c.start(mode="step", seed=1)
        c.next_frame()
        c.step(0)
        jpeg = io.BytesIO()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(jpeg, format="JPEG")
        cases = [(jpeg.getvalue(), 0, 0, "bad_prompt", "not a PNG"),
                 (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, 0, 0, "bad_prompt", "not a readable PNG"),
                 (png(solid_rgba(8, 8))[:-30], 0, 0, "bad_prompt", "PNG"),
                 (png(solid_rgba(10, 65)), 0, 0, "bad_prompt", "larger than the 64x64 frame"),
                 (png(solid_rgba(65, 10)), 0, 0, "bad_prompt", "larger than the 64x64 frame"),
                 (png(solid_rgba(8, 8)), -65, 0, "bad_argument", "x must be in [-7, 63]"),
                 (png(solid_rgba(8, 8)), 0, 129, "bad_argument", "(0, 129) lies wholly off the 64x64 frame"),
                 # wholly off by one pixel: it would paste nothing, yet start a new epoch marked "edit"
                 (png(solid_rgba(64, 64)), 64, 0, "bad_argument", "x must be in [-63, 63]"),
                 (png(solid_rgba(4, 8)), 0, -4, "bad_argument", "and y in [-3, 63] so that part of it is on")]
        for layer, x, y, code, words in cases:
            with pytest.raises(ProtocolError) as e:
                c.edit(layer, x, y)
            assert e.value.code == code and words in e.value.message and not e.value.fatal, e.value
        st = c.status()
        assert (st["epoch"], st["frame_index"]) == (0, 1)
        assert c.step(1).index == 2
        # a layer with one pixel on the frame is fine
        assert c.edit(png(solid_rgba(64, 64)), 63, -63)["epoch"] == 1
        assert c.edit(png(np.full((4, 4, 3), 9, np.uint8)), -3, 63)["epoch"] == 2  # RGB: opaque


# --- capabilities, unsupported ---

def test_edit_on_the_sandbox_is_unsupported_and_the_session_lives(model_host):
    with WorldClient(model_host.address) as c:
        s = c.start(backend="sandbox", mode="step", seed=2)
        assert s["backend_kind"] == "sandbox"
        assert s["capabilities"] == ["text_prompt", "sketch_prompt", "events", "text_events"]
        c.next_frame()
        with pytest.raises(ProtocolError) as e:
            c.edit(solid_rgba(8, 8), 0, 0)
        assert e.value.code == "unsupported" and not e.value.fatal
        assert "sandbox game cannot edit frames" in e.value.message and "world_model" in e.value.message
        f = c.step(2)
        assert (f.index, f.epoch) == (1, 0)


def test_session_capabilities_come_from_the_backend(event_host):
    with WorldClient(event_host.address) as c:
        assert c.connect()["protocol_minor"] == 3 and {"edit", "text_events"} <= set(c.welcome["capabilities"])
        assert c.start(mode="step")["capabilities"] == ["image_prompt", "events", "edit"]
    h = run_host_in_thread(PlainPaste)  # says nothing: only `events` (it has event types), so no edits
    try:
        with WorldClient(h.address) as c:
            assert c.start(mode="step")["capabilities"] == ["events"]
            with pytest.raises(ProtocolError) as e:
                c.edit(solid_rgba(4, 4), 0, 0)
            assert e.value.code == "unsupported" and "session.capabilities" in e.value.message
    finally:
        h.stop()


# --- settings.event_cfg ---

def test_event_cfg_on_a_world_with_events(event_host):
    with WorldClient(event_host.address) as c:
        s = c.start(mode="step", seed=0)
        assert s["settings"]["event_cfg"] == 1.0
        ok = c.settings(event_cfg=2.5)
        assert ok["settings"]["event_cfg"] == 2.5 and c.session["settings"]["event_cfg"] == 2.5
        session = next(s for s in event_host.host.sessions.values() if s.id == c.session["session_id"])
        assert session.backend.settings["event_cfg"] == 2.5
        with pytest.raises(ProtocolError) as e:
            c.settings(event_cfg=-1)
        assert e.value.code == "bad_argument" and "event_cfg" in e.value.message
        assert c.settings(steps=2)["settings"]["event_cfg"] == 2.5
        c.event("flood")
        assert c.step(0).events == ["flood"]


def test_events_queued_back_to_back_each_hold_the_cond_slot_for_hold_frames(event_dir, tmp_path):
    """The second event fired on the next frame and cut the first to 1 of its 4 frames, both captions shown."""
    import shutil

    from bridge.host.session import Session

    shutil.copytree(event_dir, tmp_path / "w")
    save_held_event_settings(tmp_path / "w", {"flood": "the water rises", "snow": "it snows"})
    s = Session(load_world(tmp_path / "w", device="cpu"), mode="step")
    s.begin(Prompt(seed=3))
    s.queue_event("flood", None)
    s.queue_event("snow", None)
    got = [s.step(0) for _ in range(9)]
    assert [p.events for p in got] == [["the water rises"], [], [], [], ["it snows"], [], [], [], []]
    ref = load_world(tmp_path / "w", device="cpu")  # the world stepped by hand: flood on frame 1, snow on frame 5
    ref.reset(Prompt(seed=3))
    fired = {0: WorldEvent(type="flood"), 4: WorldEvent(type="snow")}
    assert all(np.array_equal(ref.step(0, fired.get(i)), p.image) for i, p in enumerate(got))
    s.queue_event("flood", None)  # nothing held: fires on the next frame, as a single event always did
    assert s.step(0).events == ["the water rises"]


def test_event_cfg_on_backends_without_event_conditioning(model_host):
    with WorldClient(model_host.address) as c:
        for backend in ("world_model", "sandbox"):
            s = c.start(backend=backend, mode="step")
            assert s["settings"]["event_cfg"] is None
            with pytest.raises(ProtocolError) as e:
                c.settings(event_cfg=2.0)
            assert e.value.code == "bad_argument" and "no event conditioning" in e.value.message
            assert c.settings(fps=30)["settings"]["event_cfg"] is None


# --- order and batching ---

def test_edit_in_step_mode_acts_after_the_inputs_sent_before_it(paste_host):
    with WorldClient(paste_host.address) as c:
        s = c.start(mode="step", seed=9)
        assert s["capabilities"] == ["events", "edit"]
        c.next_frame()
        for _ in range(3):
            c.act(0)  # not waited for
        ok = c.edit(solid_rgba(4, 4, (200, 0, 0)), 5, 6)
        assert ok["frame_index"] == 3 and ok["epoch"] == 1
        f = c.next_frame()
        assert (f.index, f.epoch, f.events) == (3, 1, ["edit"])
        assert tuple(f.image[0, 0]) == (9, 3, 7)  # made after the three steps
        assert (f.image[6:10, 5:9] == (200, 0, 0)).all() and (f.image[5, 5] == 40).all()
        nxt = c.step(1)
        assert nxt.index == 4 and (nxt.image[6:10, 5:9] == (200, 0, 0)).all()  # the world goes on from the edit


def test_edit_in_realtime_mode(paste_host):
    with WorldClient(paste_host.address) as c:
        c.start(mode="realtime", fps=60, seed=1)
        assert c.next_frame() is not None
        ok = c.edit(solid_rgba(3, 3, (0, 0, 250), alpha=255), 10, 10)
        frames = frames_until(c, 3)
        assert frames[0].events == ["edit"] and frames[0].index == ok["frame_index"]
        assert all(f.epoch == ok["epoch"] for f in frames)
        assert [f.index for f in frames] == list(range(ok["frame_index"], ok["frame_index"] + 3))
        assert all((f.image[10:13, 10:13] == (0, 0, 250)).all() for f in frames)


def test_branch_across_an_edit_with_sparse_keyframes_re_simulates_it():
    h = run_host_in_thread(HeavyPasteWorld, limits=Limits(branch_window=64, branch_window_bytes=32 * 1024 * 1024))
    try:
        with WorldClient(h.address) as c:
            c.start(mode="step", seed=4)
            session = next(iter(h.host.sessions.values()))
            c.step(0)
            every = session.keyframe_every
            assert every >= 4
            for _ in range(every + 1):  # one past a keyframe: no keyframe at the edited index
                c.step(0)
            e = every + 2
            assert session.index == e and e not in session.keyframes
            c.edit(solid_rgba(5, 5, (1, 2, 3)), 8, 8)
            edited = c.next_frame()
            later = {f.index: f for f in (c.step(1) for _ in range(3))}
            assert max(k for k in session.keyframes if k <= e + 2) < e  # restored from before the edit
            c.branch(e + 2)
            f = c.next_frame()
            assert np.array_equal(f.image, later[e + 2].image) and (f.image[8:13, 8:13] == (1, 2, 3)).all()
            c.branch(e)
            assert np.array_equal(c.next_frame().image, edited.image)
            assert np.array_equal(c.step(1).image, later[e + 1].image)
    finally:
        h.stop()


def test_edit_in_a_step_batch_group(model_host, plain_dir):
    """Two step sessions of one model step in one batch; editing one keeps both exact (and batched)."""
    a, b = WorldClient(model_host.address, timeout=20), WorldClient(model_host.address, timeout=20)
    try:
        a.start(mode="step", seed=1)
        b.start(mode="step", seed=2)
        got = {"a": frames_until(a, 1), "b": frames_until(b, 1)}
        layer = solid_rgba(20, 12, (255, 255, 0))

        def round_(n):
            for _ in range(n):
                b.act(1)
                a.act(2)
            fa, fb = frames_until(a, n), frames_until(b, n)
            got["a"] += fa
            got["b"] += fb
            return fa + fb

        first = round_(4)
        a.edit(layer, 30, 10)
        got["a"] += frames_until(a, 1)
        second = round_(4)
        assert any(f.timings.get("batch") == 2.0 for f in first)
        assert any(f.timings.get("batch") == 2.0 for f in second)  # the edited session still batches
    finally:
        a.close()
        b.close()
    ref = load_world(plain_dir, device="cpu")
    ref.reset(Prompt(seed=1))
    want_a = [ref.frame] + [ref.step(2) for _ in range(4)] + [ref.edit_frame(layer, 30, 10)] + \
        [ref.step(2) for _ in range(4)]
    ref.reset(Prompt(seed=2))
    want_b = [ref.frame] + [ref.step(1) for _ in range(8)]
    assert [f.events for f in got["a"]][5] == ["edit"]
    assert all(np.array_equal(f.image, w) for f, w in zip(got["a"], want_a)) and len(got["a"]) == 10
    assert all(np.array_equal(f.image, w) for f, w in zip(got["b"], want_b)) and len(got["b"]) == 9


# --- recordings ---

def test_recordings_hold_edits_and_replay_them(model_host, plain_dir, tmp_path):
    with WorldClient(model_host.address) as c:
        c.start(mode="step", seed=6)
        c.next_frame()
        c.step(1)
        c.edit(solid_rgba(10, 10, (255, 0, 255)), 3, 3)  # before recording: rebuilt from the header's history
        c.step(2)
        c.record_start(str(tmp_path / "edit.wbrec"))
        c.step(0)
        c.edit(solid_rgba(12, 6, (0, 255, 255), alpha=128), 40, 50)
        c.step(3)
        c.branch(3)  # the edit made while recording
        c.step(2)
        c.branch(1)  # the edit made before recording started
        c.step(1)
        assert c.record_stop()["frames"] == 7
    rec = RecordingReader(tmp_path / "edit.wbrec")
    assert [e[0] for e in rec.header["history"]] == ["step", "edit", "step"]
    frames = list(rec.frames())
    assert [f.source for f in frames] == ["step", "edit", "step", "branch", "step", "branch", "step"]
    assert frames[1].events == ["edit"] and frames[1].index == 3
    assert [c["type"] for c in rec.controls()] == ["edit", "branch", "branch"]
    report = replay_recording(tmp_path / "edit.wbrec", lambda: load_world(plain_dir, device="cpu"), progress=False)
    assert report["reproduced"] and report["frames_compared"] == 5 and report["branches"] == 2, report


def test_recordings_replay_event_guidance(event_host, event_dir, tmp_path):
    with WorldClient(event_host.address) as c:
        c.start(mode="step", seed=4)
        c.record_start(str(tmp_path / "cfg.wbrec"))
        c.settings(event_cfg=4.0)
        c.event("snow")
        c.step(1)
        c.step(2)
        c.edit(solid_rgba(8, 8, (9, 9, 9)), 0, 0)
        c.step(0)
        c.record_stop()
    rec = RecordingReader(tmp_path / "cfg.wbrec")
    assert rec.header["reset_settings"]["event_cfg"] == 1.0
    assert next(x for x in rec.controls() if x["type"] == "settings")["settings_knobs"] == {"event_cfg": 4.0}
    report = replay_recording(tmp_path / "cfg.wbrec", on_cpu(event_dir), progress=False)
    assert report["reproduced"] and report["frames_compared"] == 4, report

    def deaf_to_event_cfg():
        w = load_world(event_dir, device="cpu")
        configure = w.configure
        w.configure = lambda **knobs: configure(**{k: v for k, v in knobs.items() if k != "event_cfg"})
        return w

    deaf = replay_recording(tmp_path / "cfg.wbrec", deaf_to_event_cfg, progress=False)
    assert not deaf["reproduced"] and deaf["first_mismatch"]["index"] == 1  # the guided event frame


# --- a 1.0 client on a 1.1 host ---

def test_a_1_0_client_still_works(model_host):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(model_host.address)

    def recv(types, timeout=10.0):
        deadline = time.monotonic() + timeout
        while sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            parts = sock.recv_multipart()
            msg = P.decode(parts[0])
            if msg["type"] in types:
                return msg, parts
        raise AssertionError(f"no {types}")

    try:
        sock.send(P.encode({"type": "hello", "protocol_major": 1, "protocol_minor": 0, "client": "old/1.0",
                            "codecs": ["raw"]}))
        welcome, _ = recv({"welcome", "reject"})
        assert welcome["type"] == "welcome" and (welcome["protocol_major"], welcome["protocol_minor"]) == (1, 3)
        sock.send(P.encode({"type": "start", "req_id": 1, "mode": "step", "seed": 3}))
        session, _ = recv({"session", "error"})
        assert session["type"] == "session" and session["backend_kind"] == "world_model"
        frame0, parts = recv({"frame"})
        assert frame0["index"] == 0 and len(parts[1]) == 64 * 64 * 3
        sock.send(P.encode({"type": "input", "req_id": 2, "action": 1, "client_ts": 1.0, "seq": 1}))
        f1, _ = recv({"frame", "error"})
        assert f1["type"] == "frame" and f1["index"] == 1 and f1["seq"] == 1
        sock.send(P.encode({"type": "settings", "req_id": 3, "steps": 2, "temperature": 0.5}))
        ok, _ = recv({"ok", "error"})
        assert ok["type"] == "ok" and ok["settings"]["steps"] == 2
        sock.send(P.encode({"type": "branch", "req_id": 4, "frame": 0}))
        ok, _ = recv({"ok", "error"})
        assert ok["type"] == "ok" and ok["epoch"] == 1
        again, _ = recv({"frame"})
        assert (again["index"], again["epoch"]) == (0, 1)
    finally:
        sock.close(0)


def test_sampling_settings_reach_the_world_model_and_are_refused_where_they_do_not_apply(model_host):
    """(1.2) `settings.top_p` and `settings.unmask` change the MaskGIT sampler; the sandbox has none."""
    with WorldClient(model_host.address) as c:
        s = c.start(mode="step", seed=2)["settings"]
        assert s["unmask"] in ("random", "confidence") and 0 < s["top_p"] <= 1
        st = c.settings(unmask="confidence", top_p=0.9)["settings"]
        assert (st["unmask"], st["top_p"]) == ("confidence", 0.9)
        session = model_host.host.sessions[c.session["session_id"]]
        assert (session.backend.settings["unmask"], session.backend.settings["top_p"]) == ("confidence", 0.9)
        for bad in ({"unmask": "sideways"}, {"top_p": 0.0}, {"top_p": 1.5}):
            with pytest.raises(ProtocolError) as e:
                c.settings(**bad)
            assert e.value.code == "bad_argument"
        assert c.settings()["settings"]["unmask"] == "confidence"  # a refused message changed nothing
        c.next_frame()


def test_edit_positions_are_checked_per_axis_on_a_wide_frame():
    from bridge.host.session import Session

    class WidePaste(PasteWorld):  # TEST-ONLY: 32 wide, 16 high
        width = 32

        def reset(self, prompt):
            super().reset(prompt)
            self.img = np.full((16, 32, 3), 40, np.uint8)
            return self._frame()

    s = Session(WidePaste(), mode="step")
    s.begin(Prompt(seed=1))
    layer = png(solid_rgba(4, 4))
    assert s.edit(layer, 31, 15).index == 0 and s.edit(layer, -3, -3).index == 0  # one pixel on the frame
    for x, y in ((32, 0), (0, 16), (0, -4), (-4, 0)):
        with pytest.raises(ProtocolError) as e:
            s.edit(layer, x, y)
        assert e.value.code == "bad_argument" and "x must be in [-3, 31] and y in [-3, 15]" in e.value.message


def test_a_layer_the_backend_refuses_midway_leaves_the_world_as_it_was():
    from bridge.host.session import Session

    class HalfPaste(PasteWorld):  # TEST-ONLY: paints, then refuses (as a model may fail after touching its state)
        def edit_frame(self, rgba, x, y):
            super().edit_frame(rgba, x, y)
            raise ValueError("this layer cannot be pasted here")

    s = Session(HalfPaste(), mode="step")
    s.begin(Prompt(seed=1))
    before = s.step(0).image
    with pytest.raises(ProtocolError) as e:
        s.edit(png(solid_rgba(4, 4, (200, 0, 0))), 2, 2)
    assert e.value.code == "bad_prompt" and s.epoch == 0 and s.index == 1
    assert np.array_equal(s.step(0).image[1:], before[1:])  # no paint leaked into the world (row 0 holds the counter)


def test_one_re_simulation_runs_a_branchs_and_a_replays_history():
    """`resimulate` is the loop both a branch and a replay's rebuild run: steps with their events, edits at their
    place, settings handed back with their position in the history, and the frame count after each step or edit."""
    from bridge.host.session import resimulate

    calls = []

    class Log:
        width = height = 16

        def step(self, action, event=None):
            calls.append(("step", action, event))

        def edit_frame(self, layer, x, y):
            calls.append(("edit", layer.shape, x, y))

    png = io.BytesIO()
    Image.fromarray(solid_rgba(4, 4)).save(png, "PNG")
    history = [("step", 1, {"type": "boom", "text": "b"}), ("settings", {"cfg": 2.0}), ("edit", png.getvalue(), 3, 4),
               ("step", 0, None)]
    frames = []
    resimulate(Log(), history, lambda n, knobs: calls.append(("settings", n, knobs)), frames.append)
    assert frames == [1, 1, 2]
    assert calls == [("step", 1, WorldEvent(type="boom", text="b")), ("settings", 1, {"cfg": 2.0}),
                     ("edit", (4, 4, 4), 3, 4), ("step", 0, None)]
