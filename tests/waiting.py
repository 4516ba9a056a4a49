"""Wait for an event instead of sleeping a fixed time, so a slow or loaded machine takes longer but does not fail."""

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(cond: Callable[[], T], timeout: float = 20.0, every: float = 0.01) -> T:
    """Poll `cond` until it is truthy and return it (its last falsy value after `timeout` s, for the assert to show)."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got or time.monotonic() >= deadline:
            return got
        time.sleep(every)
