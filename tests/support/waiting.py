"""The one way the process tests wait for something to happen: poll a condition until it holds
or a deadline passes, then say what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], what: str, *, timeout_s: float = 20.0, poll_s: float = 0.02
) -> T:
    """Call ``condition`` until it returns something truthy, and return that. ``TimeoutError``
    naming ``what`` (and the last value) after ``timeout_s``."""
    give_up = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > give_up:
            raise TimeoutError(f"waited {timeout_s} s for {what}; last saw {value!r}")
        time.sleep(poll_s)
