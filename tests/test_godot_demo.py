"""The demo scene (demo/demo.tscn with demo.gd) instanced and played under gdsim against the real host: its buttons
follow what the running backend can do, as godot_addon/README.md says."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GODOT = ROOT / "godot_addon"
sys.path.insert(0, str(GODOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

import gdsim  # noqa: E402
from godot_helpers import (  # noqa: E402
    Recorder, answer_start, demo_blockout_png, greet_and_start, recv, refuse_typed_events, run_until, scripted_router)

from bridge.host import server  # noqa: E402

BUTTONS = ("PromptButton", "LevelButton", "SnowButton", "NightButton", "PasteButton")


def _demo(sim, address: str, backend: str = "default"):
    """demo.tscn as Godot instances it, pointed at `address`, with its LevelViewport rendered; (demo, client)."""
    demo = gdsim.instance_scene(sim, "res://demo/demo.tscn")
    client = demo.native.get_node("Client")
    client.members["endpoint"], client.members["backend"] = address, backend
    png = gdsim.PackedByteArray(demo_blockout_png())
    level = demo.native.get_node("LevelViewport")
    level.rendered = gdsim.ImageModel(sim)
    assert level.rendered.load_png_from_buffer(png) == 0
    sim.add_to_root(demo)
    return demo, client


def _greyed(demo) -> set[str]:
    return {name for name in BUTTONS if demo.native.get_node(f"HUD/Layout/Controls/{name}").disabled}


def test_demo_plays_the_sandbox_with_only_paste_greyed(godot_sim, godot_host):
    demo, client = _demo(godot_sim, godot_host.address, "sandbox")
    assert run_until(godot_sim, lambda: client.members["frames_received"] >= 1)
    assert _greyed(demo) == {"PasteButton"}
    caps = demo.native.get_node("HUD/Layout/CapsLabel").text
    assert caps.startswith("can: text prompts, sketches, events") and caps.endswith("cannot: image prompts, pasting objects")
    godot_sim.call_method(client, "disconnect_from_host", [])


def test_demo_plays_the_sandbox_at_its_own_rate_and_its_hud_says_so(godot_sim, godot_host):
    """demo.tscn leaves fps at 0: the sandbox game plays at its own 15 fps (it played at 24), and the HUD shows the
    rate the session reply names beside the rate measured."""
    demo, client = _demo(godot_sim, godot_host.address, "sandbox")
    assert run_until(godot_sim, lambda: client.members["frames_received"] >= 1)
    assert client.members["session"]["fps"] == 15.0
    godot_sim.process()
    stats = demo.native.get_node("HUD/Layout/StatsLabel").text
    assert " of 15.0 fps " in stats, stats
    godot_sim.call_method(client, "disconnect_from_host", [])


def test_demo_greys_every_button_the_world_model_session_cannot_use(godot_sim, micro_world):
    """The micro world takes image prompts and pastes, but no text, sketches or events: Prompt and Level grey too."""
    with server.run_host_in_thread(str(micro_world)) as h:
        demo = gdsim.instance_scene(godot_sim, "res://demo/demo.tscn")
        client = demo.native.get_node("Client")
        client.members.update(endpoint=h.address, backend="world_model", text_prompt="", prompt_viewport=None)
        godot_sim.add_to_root(demo)
        assert run_until(godot_sim, lambda: client.members["frames_received"] >= 1)
        assert _greyed(demo) == {"PromptButton", "LevelButton", "SnowButton", "NightButton"}
        assert not demo.members["prompt_edit"].editable, "Enter in the prompt box would send a refused text prompt"
        godot_sim.call_method(client, "disconnect_from_host", [])


def test_demo_starts_a_world_without_the_prompts_its_backend_refuses_and_says_so(godot_sim, micro_world):
    """demo.tscn's text prompt and level sketch are refused by the micro world (no text prompts, no sketches): the
    client starts again without them, silently (no capability_refused: the caption and status say what was left out,
    as the editor does), and Prompt greys as the session's capabilities say."""
    with server.run_host_in_thread(str(micro_world)) as h:
        demo, client = _demo(godot_sim, h.address, "world_model")
        rec = Recorder(client, "capability_refused", "session_started")
        assert run_until(godot_sim, lambda: client.members["frames_received"] >= 1), client.members["status_text"]
        assert rec["capability_refused"] == [], "a refusal the client retried was reported as an error"
        assert "PromptButton" in _greyed(demo)
        assert len(rec["session_started"]) == 1 and list(client.members["dropped_prompts"]) == ["text", "sketch"]
        note = "started without the text and sketch prompts: this backend takes neither"
        assert demo.native.get_node("HUD/Layout/CaptionLabel").text == note
        assert demo.native.get_node("HUD/Layout/TopBar/StatusLabel").text.endswith("; " + note)
        godot_sim.call_method(client, "disconnect_from_host", [])


def test_demo_fires_free_text_when_the_host_refused_typed_events(godot_sim):
    """A session offering typed and free-text events whose host refused typed ones: Snow goes as free text."""
    router, port = scripted_router()
    try:
        demo, client = _demo(godot_sim, f"tcp://127.0.0.1:{port}")
        ident, start = greet_and_start(godot_sim, router)
        answer_start(godot_sim, router, client, ident, start, capabilities=["events", "text_events"],
                event_types=["weather_snow"])
        refuse_typed_events(router, ident)
        assert run_until(godot_sim, lambda: "SnowButton" not in _greyed(demo)
                         and client.members["refused_capabilities"])
        while router.poll(100):
            recv(router)  # the demo's WorldInput sends its idle input
        godot_sim.call_method(demo, "_fire", ["snow"])
        assert run_until(godot_sim, lambda: router.poll(0))
        event = recv(router)[1]
        assert (event["type"], event.get("event_type"), event.get("text")) == ("event", None, "it begins to snow")
    finally:
        router.close()


def test_typing_a_prompt_walks_nothing_and_the_demo_leaves_that_to_world_input(godot_sim):
    """WorldInput sends only the idle action while a text field has the keyboard: the demo no longer turns it off and
    on itself around its prompt field (its `enabled` is the game's, e.g. for a menu). A LineEdit that goes on editing
    after Enter (Godot before 4.4) kept the keys from the world until the player clicked elsewhere: the demo's prompt
    field lets go of the focus once the prompt is sent."""
    router, port = scripted_router()
    try:
        demo, client = _demo(godot_sim, f"tcp://127.0.0.1:{port}")
        ident, start = greet_and_start(godot_sim, router)
        answer_start(godot_sim, router, client, ident, start)
        world_input, prompt = demo.members["world_input"], demo.members["prompt_edit"]
        sent = Recorder(world_input, "action_sent")
        gdsim.press(godot_sim, "wb_right")
        godot_sim.process(2)
        prompt.grab_focus()
        godot_sim.process(2)
        assert world_input.members["enabled"], "the demo switched WorldInput off itself"
        prompt.release_focus()
        godot_sim.process(2)
        prompt.grab_focus()
        prompt.keep_editing_on_text_submit = True
        godot_sim.process(2)
        gdsim.submit(prompt)
        godot_sim.process(2)
        gdsim.release(godot_sim, "wb_right")
        assert godot_sim.root.gui_get_focus_owner() is None, "the prompt field kept the keyboard after Enter"
        assert [a[0] for a in sent["action_sent"]] == ["right", "noop", "right", "noop", "right"]
    finally:
        router.close()

