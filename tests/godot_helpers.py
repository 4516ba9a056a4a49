"""What the Godot addon's gdsim tests share: its nodes, a signal recorder, a scripted pyzmq host's side of the
protocol and the demo's blocked-out level (the fixtures `godot_sim`, `godot_host` and `micro_world` are in
conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import zmq

ROOT = Path(__file__).resolve().parents[1]
GODOT = ROOT / "godot_addon"
sys.path.insert(0, str(GODOT / "tools"))

import gdsim  # noqa: E402
import zmtp_raw  # noqa: E402
from waiting import wait_until  # noqa: E402

CLIENT = "res://addons/world_bridge/nodes/world_bridge_client.gd"
VIEW = "res://addons/world_bridge/nodes/world_view.gd"
IN_SESSION = 4
SCRIPTED_WELCOME = {"type": "welcome", "protocol_major": 1, "protocol_minor": 2, "host": "scripted", "codec": "raw",
                    "capabilities": ["events", "text_prompt"], "backends": ["sandbox"], "default_backend": "sandbox",
                    "limits": {"max_message_bytes": 1 << 24, "max_sessions": 1, "idle_timeout_s": 60.0}}
ROUTERS: list = []  # every scripted host's router, restarts included: the `scripted` fixture closes them


class Recorder:
    """Collects a node's signals as plain Python values."""

    def __init__(self, node, *signals):
        self.seen = {name: [] for name in signals}
        for name in signals:
            node.signals[name].connect(gdsim.GDCallable(
                lambda *a, _n=name: self.seen[_n].append(tuple(_py(x) for x in a)), (name,)))

    def __getitem__(self, name):
        return self.seen[name]


def _py(v):
    if isinstance(v, gdsim.Vector2i):
        return (v.x, v.y)
    return gdsim.to_py(v)


def new_node(sim, script, **members):
    """A node running `script`, with `members` set (not yet in the tree)."""
    node = sim.new(sim.script(script))
    for key, value in members.items():
        node.members[key] = gdsim.to_gd(value)
    return node


def new_client(sim, endpoint, **members):
    """A WorldBridgeClient for `endpoint`, with `members` set (not yet in the tree)."""
    return new_node(sim, CLIENT, endpoint=endpoint, **members)


def run_until(sim, cond, timeout=20.0) -> bool:
    """Processes the sim, as a game's frames would, until `cond` holds; a slow machine takes longer, not fails."""
    def step():
        sim.process()
        return cond()
    return bool(wait_until(step, timeout, every=0.002))


def send_unread(client, router, ident, *messages: list[bytes]) -> None:
    """Sends multipart `messages` and waits until all of them sit unread in the client's socket: one poll reads them."""
    size = 0
    for parts in messages:
        router.send_multipart([ident, *parts])
        size += sum(len(zmtp_raw.encode_frame(part, more=i < len(parts) - 1)) for i, part in enumerate(parts))
    tcp = client.members["_socket"].members["_tcp"]
    assert wait_until(lambda: tcp.get_available_bytes() >= size), "the messages did not reach the client's socket"


def demo_blockout_png() -> bytes:
    """Rasterizes demo.tscn's LevelViewport ColorRects the way Godot draws them (tree order)."""
    import re

    import imageio.v3 as iio
    import numpy as np

    text = (GODOT / "demo" / "demo.tscn").read_text(encoding="utf-8")
    size = re.search(r'\[node name="LevelViewport".*?size = Vector2i\((\d+), (\d+)\)', text, re.S)
    w, h = int(size.group(1)), int(size.group(2))
    img = np.zeros((h, w, 3), np.uint8)
    for block in re.findall(r'\[node name="\w+" type="ColorRect" parent="LevelViewport"\]\n(.*?)\n\n', text, re.S):
        props = dict(line.split(" = ", 1) for line in block.splitlines())
        x0, y0 = round(float(props["offset_left"])), round(float(props["offset_top"]))
        x1, y1 = round(float(props["offset_right"])), round(float(props["offset_bottom"]))
        rgb = [round(float(c) * 255) for c in re.findall(r"[\d.]+", props["color"])[:3]]
        img[y0:y1, x0:x1] = rgb
    return iio.imwrite("<bytes>", img, extension=".png")


def recv(router, timeout_ms=20000):
    """The next message the scripted host got: (peer id, decoded map)."""
    assert router.poll(timeout_ms), "the client sent nothing"
    ident, data = router.recv_multipart()
    return ident, zmtp_raw.unpack(data)


def pump(sim, router):
    """Processes the sim until the scripted host has a message waiting."""
    assert run_until(sim, lambda: router.poll(0)), "the client sent nothing"


def session_msg(req_id, sid="s1", mode="realtime"):
    """The scripted host's `session` answer to start `req_id`."""
    return {"type": "session", "req_id": req_id, "session_id": sid, "backend_kind": "sandbox",
            "backend_name": "scripted", "mode": mode, "fps": 24.0, "width": 2, "height": 2,
            "action_names": ["noop", "right"], "num_latent_actions": 2, "event_types": [], "settings": {},
            "frame_index": 0, "epoch": 0, "resumed": False}


def scripted_router(port=None):
    """A scripted host's ROUTER on a free loopback port (or `port` again, after a restart)."""
    r = zmq.Context.instance().socket(zmq.ROUTER)
    ROUTERS.append(r)
    r.setsockopt(zmq.LINGER, 0)
    if port is None:
        return r, r.bind_to_random_port("tcp://127.0.0.1")
    r.bind(f"tcp://127.0.0.1:{port}")
    return r, port


def greet_and_start(sim, router, welcome=SCRIPTED_WELCOME):
    """Answer the client's hello with `welcome`; returns (its peer id, the start it then sends)."""
    pump(sim, router)
    ident, hello = recv(router)
    assert hello["type"] == "hello"
    router.send_multipart([ident, zmtp_raw.pack(welcome)])
    pump(sim, router)
    ident, start = recv(router)
    assert start["type"] == "start"
    return ident, start


def answer_start(sim, router, c, ident, start, sid="s1", **session):
    """Answers `start` with session `sid` (`session`: fields to change) and waits until client `c` holds it."""
    router.send_multipart([ident, zmtp_raw.pack({**session_msg(start["req_id"], sid), **session})])
    assert run_until(sim, lambda: c.members["link"] == IN_SESSION and c.members["session"].get("session_id") == sid)


def prompt_refusal(start: dict, capability: str) -> bytes:
    """The scripted host's bad_prompt answer to `start` for `capability`, from a backend lacking that prompt kind."""
    return zmtp_raw.pack({
        "type": "error", "req_id": start["req_id"], "code": "bad_prompt", "capability": capability, "fatal": False,
        "message": f"this backend takes no {capability.removesuffix('_prompt')} prompts"})


def refuse_prompt(router, ident, start: dict, capability: str) -> None:
    """The scripted host answers `start` with bad_prompt for `capability`, as a backend lacking that prompt kind."""
    router.send_multipart([ident, prompt_refusal(start, capability)])


def answer_the_retry_without(sim, router, c, ident, start: dict, kind: str) -> dict:
    """The scripted host refuses `start`'s `kind` prompt; client `c` must start again without it, and gets the session.
    Returns the start it sent again."""
    refuse_prompt(router, ident, start, f"{kind}_prompt")
    pump(sim, router)
    _, again = recv(router)
    assert (again["type"], again[kind]) == ("start", None)
    answer_start(sim, router, c, ident, again)
    return again


def refuse_typed_events(router, ident) -> None:
    """The scripted host refuses typed events mid-session, as a backend that takes only free-text ones."""
    router.send_multipart([ident, zmtp_raw.pack({
        "type": "error", "req_id": 99, "code": "unsupported", "capability": "events", "fatal": False,
        "message": "this backend takes no typed events (session.capabilities lack events)"})])
