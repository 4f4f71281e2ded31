"""The one way tests wait for something to happen: poll a condition until it holds or a deadline
passes, then say what was awaited. :func:`wait_until` for a test that may block (a process
serves elsewhere), :func:`wait_until_async` inside an event loop (the code under test runs on
the same loop, so the wait must yield to it)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    what: str,
    *,
    holds: Callable[[T], object] = bool,
    timeout_s: float = 20.0,
    poll_s: float = 0.02,
) -> T:
    """Call ``condition`` until ``holds`` its value (by default: the value is truthy), and return
    that value. ``TimeoutError`` naming ``what`` (and the last value) after ``timeout_s``."""
    give_up = time.monotonic() + timeout_s
    while True:
        value = condition()
        if holds(value):
            return value
        if time.monotonic() > give_up:
            raise TimeoutError(f"waited {timeout_s} s for {what}; last saw {value!r}")
        time.sleep(poll_s)


@overload
async def wait_until_async(
    condition: Callable[[], Awaitable[T]],
    what: str,
    *,
    holds: Callable[[T], object] = ...,
    timeout_s: float = ...,
    poll_s: float = ...,
) -> T: ...


@overload
async def wait_until_async(
    condition: Callable[[], T],
    what: str,
    *,
    holds: Callable[[T], object] = ...,
    timeout_s: float = ...,
    poll_s: float = ...,
) -> T: ...


async def wait_until_async(
    condition: Callable[[], T | Awaitable[T]],
    what: str,
    *,
    holds: Callable[[T], object] = bool,
    timeout_s: float = 20.0,
    poll_s: float = 0.005,
) -> T:
    """:func:`wait_until` on the running loop: ``condition`` may be a coroutine function, and
    between calls the loop runs everything else."""
    give_up = time.monotonic() + timeout_s
    while True:
        found = condition()
        value: T = await found if inspect.isawaitable(found) else found
        if holds(value):
            return value
        if time.monotonic() > give_up:
            raise TimeoutError(f"waited {timeout_s} s for {what}; last saw {value!r}")
        await asyncio.sleep(poll_s)
