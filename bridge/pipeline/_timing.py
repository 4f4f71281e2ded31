"""Timing for the deliver lane: a destination's rate (a token bucket in one process, or a rate
shared by every process on the store), and an alarm for due retries."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Awaitable, Callable

from bridge.types import SendLimits, SharedQuota

_LATE_S = 0.002


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, bursting to one second's worth.

    Waiters are served in order: each takes a token ahead of time (the balance may go
    negative) and sleeps until it would have been refilled, so no lock is needed.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._refilled_at = clock()

    async def acquire(self) -> None:
        """Wait until one more send keeps the destination under its rate."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._refilled_at) * self.rate)
        self._refilled_at = now
        self._tokens -= 1.0
        if self._tokens < 0:
            await self._sleep(-self._tokens / self.rate)


class SharedRate:
    """At most ``rate`` sends per second to one destination from every process sharing
    ``quota``: each send is taken from the quota under ``key`` at least ``1 / rate`` seconds
    after the one before it, whichever process sent that one, on the store's clock.

    Spaced, not a second's worth at once: a send is counted a moment before it reaches the
    destination, and that moment varies; spaced sends stay spaced on the destination's clock
    too (one more in a second at most, while the variation is under ``1 / rate``), where a
    burst counted at the end of one second could arrive with the next second's burst. And the
    store reads one earlier send to decide, not a second's worth.
    """

    def __init__(
        self,
        rate: float,
        *,
        quota: SharedQuota,
        key: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        interval_s = 1.0 / rate
        self._limits = SendLimits(budget=1, window_s=interval_s, burst=1, burst_window_s=interval_s)
        self._quota = quota
        self._key = key
        self._sleep = sleep

    async def acquire(self) -> None:
        """Wait until one more send keeps the destination under its rate, and count it."""
        while (wait_s := await self._quota.take_send(self._key, self._limits)) > 0.0:
            await self._sleep(wait_s)


class Alarm:
    """Calls ``wake`` at each time it was asked for (epoch seconds), one timer at a time.

    A retry scheduled 100 ms ahead should run then, not at the worker's next poll.
    """

    def __init__(self, wake: Callable[[], None], *, clock: Callable[[], float] = time.time):
        self._wake = wake
        self._clock = clock
        self._due: list[float] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    def at(self, when: float) -> None:
        """Wake the worker at ``when``."""
        heapq.heappush(self._due, when)
        if self._timer_at is None or when < self._timer_at:
            self._arm()

    def cancel(self) -> None:
        """Forget every pending wake-up."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, None
        self._due.clear()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, None
        if not self._due:
            return
        when = self._due[0]
        loop = asyncio.get_running_loop()
        # A little late, so the store's clock has surely reached the job's run_after.
        self._timer = loop.call_later(max(when - self._clock(), 0.0) + _LATE_S, self._fire)
        self._timer_at = when

    def _fire(self) -> None:
        now = self._clock()
        while self._due and self._due[0] <= now:
            heapq.heappop(self._due)
        self._wake()
        self._timer, self._timer_at = None, None
        self._arm()
