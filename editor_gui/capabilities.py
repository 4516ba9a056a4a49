"""What the running session's backend can do (protocol 1.1 `session.capabilities`), and why a tool is greyed out."""

from __future__ import annotations

ALL = ("text_prompt", "image_prompt", "sketch_prompt", "events", "text_events", "edit")

TRAIN_FIRST_FRAME = "`worldbridge train prompts first-frame`"
TRAIN_EVENTS = "`worldbridge train prompts events`"


def session_caps(info: dict | None) -> set[str]:
    """The session's capabilities; no session, or a 1.0 host that sends no list, leaves every tool enabled."""
    caps = (info or {}).get("capabilities")
    return set(ALL) if caps is None else set(caps)


def host_can_edit(welcome: dict | None) -> bool:
    """`edit` is a 1.1 message: a 1.0 host would ignore it (and the editor would wait for an answer in vain)."""
    return welcome is not None and "edit" in (welcome.get("capabilities") or [])


def why_not(cap: str, info: dict | None) -> str:
    """A tooltip for a greyed-out tool: what the backend lacks and what to do about it."""
    kind = (info or {}).get("backend_kind", "")
    name = (info or {}).get("backend_name") or "this backend"
    if kind == "sandbox":
        return {
            "text_prompt": "The sandbox game takes no text prompt.",
            "image_prompt": "The sandbox game builds its level from game state: it starts from text, a sketch or a "
                            "seed, not from an image (a world model can start from one).",
            "sketch_prompt": "The sandbox game takes no sketch.",
            "events": "The sandbox game has no typed events.",
            "text_events": "The sandbox game has no free-text events.",
            "edit": "The sandbox game renders from game state; frame edits need the world model "
                    "(choose world_model in Settings → Backend, then New world).",
        }[cap]
    if kind == "world_model":
        return {
            "text_prompt": f"This world model has no text conditioning — train one with {TRAIN_FIRST_FRAME}.",
            "image_prompt": "This world model cannot start from an image.",
            "sketch_prompt": f"This world model has no sketch-trained first-frame model — train one with "
                             f"{TRAIN_FIRST_FRAME} on a dataset made with --sketch.",
            "events": f"This world model has no typed events — train event conditioning with {TRAIN_EVENTS}.",
            "text_events": f"This world model has no free-text events — train event conditioning with {TRAIN_EVENTS}.",
            "edit": "This world model cannot edit frames.",
        }[cap]
    what = {"text_prompt": "text prompts", "image_prompt": "image prompts", "sketch_prompt": "sketch prompts",
            "events": "typed events", "text_events": "free-text events", "edit": "frame edits"}[cap]
    return f"{name} has no {what} (see its session capabilities)."
