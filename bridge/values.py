"""Checks of plain values that every layer shares; it imports nothing from bridge, so any layer may import it."""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import Any

import numpy as np

SEED_MAX = 2**63 - 1  # the largest seed C# (long) and GDScript (int) can send and read back
SEED_DEFAULT = 0  # the seed of every data and model command, and of a new training run, when none is given


def is_int(v: Any) -> bool:
    """True for an int that is not a bool: Python counts True as 1, and no id, count or size is ever a flag."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """True for an int or a float that is not a bool: a config or manifest value of True is a hand edit, not 1."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def plural(n: int, noun: str) -> str:
    """"1 episode", "2 episodes", "0 sessions": a count as a person would write it, the same in every message."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def first_line(e: BaseException) -> str:
    """An error's first line, else its kind: a message says why in one line, not ffmpeg's whole log."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def is_whole(v: Any) -> bool:
    """True for an int or a numpy integer, not a bool: what a Python caller may pass as an id, a seed or a position."""
    return is_int(v) or isinstance(v, np.integer)


CMD_SPECIAL = set("&|<>^%()")  # cmd.exe acts on these (&|<> end a command, ^ escapes, () group; % expands, even quoted)


def shell_quote(arg: str) -> str:
    """One word of a command printed for the user, quoted for this machine's shell so it runs where it was made: on
    Windows the C runtime's rules (list2cmdline), and double quotes around a word cmd.exe would split (`a&b`), which
    list2cmdline leaves bare."""
    if os.name != "nt":
        return shlex.quote(arg)
    word = subprocess.list2cmdline([arg])
    if word.startswith('"') or not CMD_SPECIAL & set(arg):
        return word
    trailing = len(word) - len(word.rstrip("\\"))  # doubled before the closing quote, or they would escape it
    return '"' + word + "\\" * trailing + '"'
