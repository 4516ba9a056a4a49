"""What the running session's backend can do (protocol 1.1 `session.capabilities`), and why a tool is greyed out."""

from __future__ import annotations

import re
from dataclasses import replace

from bridge.host.protocol import prompt_kinds
from editor_gui.session_store import PromptSpec

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


def unavailable(cap: str, info: dict | None) -> str | None:
    """None when the session can do `cap`, else why_not's tooltip: what set_capabilities takes to grey a tool out."""
    return None if cap in session_caps(info) else why_not(cap, info)


_REFUSED = re.compile(r"lack (text|image|sketch)_prompt\b.*\(bad_prompt\)$", re.S)


def prompt_parts(prompt: PromptSpec) -> list[str]:
    """The prompt kinds a start sends ("text", "image", "sketch"), by the host's own rule (prompt_kinds)."""
    return [cap.removesuffix("_prompt") for cap in prompt_kinds(prompt.text, prompt.image_png, prompt.sketch_png)]


def fit_prompt(prompt: PromptSpec, info: dict | None, rebuild: bool = False) -> PromptSpec:
    """Drops what the host refuses (bad_prompt); a sandbox `rebuild` keeps its frames by sending an image as sketch."""
    caps = session_caps(info)
    if (rebuild and (info or {}).get("backend_kind") == "sandbox" and prompt.image_png is not None
            and prompt.sketch_png is None and "image_prompt" not in caps and "sketch_prompt" in caps):
        prompt = replace(prompt, sketch_png=prompt.image_png)
    refused = set(prompt_kinds(prompt.text, prompt.image_png, prompt.sketch_png)) - caps
    return replace(prompt, text=None if "text_prompt" in refused else prompt.text,
                   image_png=None if "image_prompt" in refused else prompt.image_png,
                   sketch_png=None if "sketch_prompt" in refused else prompt.sketch_png)


def dropped_note(asked: PromptSpec, sent: PromptSpec, info: dict | None) -> str:
    """What the status bar says when a start left out prompt parts its backend cannot take (empty when none)."""
    dropped = [p for p in prompt_parts(asked) if p not in prompt_parts(sent)]
    if not dropped:
        return ""
    kind, name = (info or {}).get("backend_kind"), (info or {}).get("backend_name") or "this backend"
    who = "the sandbox game" if kind == "sandbox" else f"the world model {name}" if kind == "world_model" else name
    if dropped == ["image"] and "sketch" in prompt_parts(sent) and "sketch" not in prompt_parts(asked):
        return f"{who} takes no image prompts: the image went as the sketch hosts before 1.3 read it as"
    kept = " and ".join(["seed", *prompt_parts(sent)])
    return f"{who} takes no {' or '.join(dropped)} prompts: started from the {kept} only"


def refused_prompt(message: str) -> str | None:
    """The prompt capability a bad_prompt's wording names, for a 1.3 host from before `error.capability`; else None."""
    match = _REFUSED.search(message)
    return f"{match.group(1)}_prompt" if match else None
