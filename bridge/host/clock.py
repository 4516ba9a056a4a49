"""The host's pacing clock, a leaf (standard library only): sessions, the server loop and recordings share it."""

from __future__ import annotations

from time import perf_counter


def clock() -> float:
    """The host's clock in s, which paces ticks, polls and syncs: perf_counter, as time.monotonic ticks every 15.6 ms
    on Windows before Python 3.13 (24 fps became 31/47 ms gaps)."""
    return perf_counter()


def now_ms() -> float:
    """The host clock in ms (monotonic); `host_ts` and recordings use it."""
    return clock() * 1000.0
