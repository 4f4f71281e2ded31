"""The quota pacer: imports never exceed the API key's write quota.

Three limits apply together; an acquirer waits for the latest of them:

- a token bucket refilled at ``budget / 60`` per second holding at most ``max(1, budget / 60)``,
  so a backlog drains at the quota instead of bursting;
- a log of send times: never more than ``budget`` sends in any window of ``60 s + margin``
  (Didit counts a 60 s sliding window; the margin absorbs latency jitter and clock skew), which
  a bucket alone cannot promise (a full bucket plus a minute of refill is more than the quota);
- what Didit's answers say (:meth:`Pacer.observe`): a 429 pauses everyone until ``Retry-After``
  (or 5 s, doubling, at most 60 s, when it is absent); ``X-RateLimit-Remaining`` under 15 % of
  the limit, when our own recent sends do not explain it (someone else uses the key), spreads
  what remains over the time until ``X-RateLimit-Reset``.

``budget`` is ``rate_per_minute``, lowered to Didit's ``X-RateLimit-Limit`` when that is smaller.
Acquirers name their lane (the partner) and deadline; the next send goes to the one
:func:`bridge.turns.next_turn` picks: turns go round the lanes, each lane earliest deadline first,
and a deadline at risk at :attr:`Pacer.pace_s` goes ahead. Several imports wait here at once and
the one claimed last may be the most urgent, or another partner's first. One acquirer at a time
sleeps until the next send is allowed; when it wakes it re-reads the limits (a pause that
arrived meanwhile holds it too) and yields to the acquirer whose turn it is now, if one came
meanwhile.

Several replicas share one API key, so with a ``shared`` quota (a store that several processes
use) the limits hold for all of them together: once this pacer would send, it takes the send
from the shared quota, which counts every replica's sends in one window and burst on one clock
and answers how long to wait when they are spent; a 429's pause and Didit's
``X-RateLimit-Limit`` are handed to it for every replica. (Spreading a low
``X-RateLimit-Remaining`` stays per process: each replica sees the header on its own answers.)

On shutdown :meth:`Pacer.close` sends every acquirer away with :class:`PacerClosed`: an import
still waiting for its turn has sent nothing, so it is given back at once instead of holding the
stop until its turn (at a slow quota, minutes) or the stop deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Hashable

import structlog

from bridge.errors import StoreUnavailable
from bridge.turns import Waiting, next_turn
from bridge.types import RateLimitInfo, SendLimits, SharedQuota

WINDOW_S = 60.0
DEFAULT_BACKOFF_S = 5.0
MAX_PAUSE_S = 60.0
_EPSILON = 1e-9

_log = structlog.get_logger(__name__)


def quota_key(api_key: str) -> str:
    """The name of an API key's shared quota: the same for every replica using the key, and
    not the key (a hash of it)."""
    return "didit:" + hashlib.sha256(api_key.encode()).hexdigest()[:32]


class PacerClosed(Exception):
    """The pacer was closed (the bridge is stopping): send nothing."""


class Pacer:
    """Call ``await pacer.acquire()`` before each import, ``pacer.observe(...)`` after it."""

    def __init__(
        self,
        rate_per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        low_watermark: float = 0.15,
        window_margin_s: float = 1.0,
        wall_clock: Callable[[], float] = time.time,
        no_jumps: Callable[[], Collection[Hashable]] = frozenset,
        shared: SharedQuota | None = None,
        quota_key: str = "didit",
    ) -> None:
        if rate_per_minute < 1:
            raise ValueError("rate_per_minute must be at least 1")
        self._rate = rate_per_minute
        self._clock = clock
        self._sleep = sleep
        self._low_watermark = low_watermark
        self._window_s = WINDOW_S + window_margin_s
        self._budget = rate_per_minute
        self._wall_clock = wall_clock  # the clock deadlines are on
        self._no_jumps = no_jumps  # lanes whose deadlines never go ahead of another lane's
        self._queue: list[_Waiter] = []
        self._served_at: dict[Hashable, float] = {}  # each lane's last send (wall clock)
        self._arrivals = itertools.count()
        self._sleeper: _Waiter | None = None  # the one acquirer waiting for the next send
        self._sends: deque[float] = deque()
        self._last_send: float | None = None
        self._tokens = self._capacity
        self._refilled_at = clock()
        self._paused_until = 0.0
        self._backoff_s = DEFAULT_BACKOFF_S
        self._slow_interval_s = 0.0
        self._slow_until = 0.0
        self.waits_total = 0  # acquires that had to wait
        self.wait_seconds_total = 0.0
        self._closed = asyncio.Event()
        self._shared = shared
        self._quota_key = quota_key  # names the API key's quota in ``shared``
        self._holds: set[asyncio.Task[None]] = set()
        self._shared_limit: int | None = None  # the X-RateLimit-Limit handed to ``shared``

    @property
    def budget(self) -> int:
        """Sends allowed per window now: the configured rate, or Didit's limit if lower."""
        return self._budget

    @property
    def paused_until(self) -> float | None:
        """The clock time a 429 pause ends, or None when not paused."""
        return self._paused_until if self._paused_until > self._clock() else None

    @property
    def pace_s(self) -> float:
        """Seconds between sends at the pace kept now: the budget's, or slower while what Didit
        says remains is being spread."""
        pace_s = WINDOW_S / self._budget
        if self._clock() < self._slow_until:
            pace_s = max(pace_s, self._slow_interval_s)
        return pace_s

    @property
    def _limits(self) -> SendLimits:
        """This pacer's window and bucket, as the shared quota counts them."""
        burst = max(1, self._budget // int(WINDOW_S))
        return SendLimits(
            budget=self._budget,
            window_s=self._window_s,
            burst=burst,
            burst_window_s=burst * WINDOW_S / self._budget,
        )

    @property
    def _capacity(self) -> float:
        return max(1.0, self._budget / WINDOW_S)

    async def acquire(self, deadline: float | None = None, lane: Hashable = None) -> None:
        """Wait until one import may be sent, and count it as sent.

        ``deadline`` (epoch seconds; None: none) and ``lane`` (the partner) decide whose turn
        it is. Raises :class:`PacerClosed` once the pacer is closed, also while waiting.
        """
        self._raise_if_closed()
        waiter = _Waiter(
            Waiting(lane, math.inf if deadline is None else deadline, next(self._arrivals))
        )
        self._queue.append(waiter)
        waited = False
        started = self._clock()
        try:
            while True:
                while not (self._sleeper is None and self._next() is waiter):
                    waited = True
                    waiter.turn = asyncio.get_running_loop().create_future()
                    # Whose turn it is moves with the clock (a deadline comes at risk, a 429
                    # changes the pace): a waiter woken for a turn that has since gone to
                    # another wakes that one, or every waiter would wait for a wake-up.
                    self._wake_next()
                    await waiter.turn
                    self._raise_if_closed()
                now = self._clock()
                self._refill(now)
                ready_at = self._ready_at(now)
                if ready_at <= now + _EPSILON:
                    if self._shared is None:
                        break
                    self._sleeper = waiter  # no other acquirer takes a send meanwhile
                    try:
                        wait_s = await self._shared.take_send(self._quota_key, self._limits)
                    finally:
                        self._sleeper = None
                    if wait_s <= 0.0:
                        break
                    now, ready_at = self._clock(), self._clock() + wait_s
                waited = True
                self._sleeper = waiter
                try:
                    await self._sleep_unless_closed(ready_at - now)
                finally:
                    self._sleeper = None
                    self._wake_next()  # a more urgent acquirer may have come meanwhile
        finally:
            self._queue.remove(waiter)
            self._wake_next()
        self._tokens = max(self._tokens - 1.0, 0.0)
        self._sends.append(now)
        self._last_send = now
        self._served_at[waiter.waiting.lane] = self._wall_clock()
        if waited:
            self.waits_total += 1
            self.wait_seconds_total += now - started

    def close(self) -> None:
        """Refuse every acquirer from now on, those waiting included (:class:`PacerClosed`)."""
        self._closed.set()
        for waiter in self._queue:
            if waiter.turn is not None and not waiter.turn.done():
                waiter.turn.set_result(None)

    def _raise_if_closed(self) -> None:
        if self._closed.is_set():
            raise PacerClosed()

    async def _sleep_unless_closed(self, seconds: float) -> None:
        sleeping = asyncio.ensure_future(self._sleep(seconds))
        closing = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait((sleeping, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()
            closing.cancel()
        self._raise_if_closed()

    def _next(self) -> _Waiter:
        """The waiter whose turn it is (see :func:`bridge.turns.next_turn`)."""
        if len(self._queue) == 1:
            return self._queue[0]
        by_waiting = {waiter.waiting: waiter for waiter in self._queue}
        chosen = next_turn(
            list(by_waiting),
            served_at=self._served_at,
            now=self._wall_clock(),
            pace_s=self.pace_s,
            no_jumps=self._no_jumps(),
        )
        return by_waiting[chosen]

    def _wake_next(self) -> None:
        if self._sleeper is None and self._queue:
            turn = self._next().turn
            if turn is not None and not turn.done():
                turn.set_result(None)

    def observe(self, info: RateLimitInfo | None, status: int | None) -> None:
        """Learn from one import answer (``status`` None: no answer, nothing to learn)."""
        if status is None:
            return
        now = self._clock()
        retry_after = info.retry_after_s if info else None
        pause: float | None = None
        if status == 429:
            if retry_after is not None:
                pause = min(retry_after, MAX_PAUSE_S)
            else:
                pause = self._backoff_s
                self._backoff_s = min(self._backoff_s * 2, MAX_PAUSE_S)
            self._pause(now + pause)
        else:
            self._backoff_s = DEFAULT_BACKOFF_S
        usable = info is not None and info.limit is not None and info.limit >= 1
        limit = info.limit if info is not None and usable else None
        new_limit = limit is not None and limit != self._shared_limit
        if pause is not None or new_limit:
            # Only what changed is written: a pause, or a limit Didit says differently now.
            self._shared_limit = limit if new_limit else self._shared_limit
            self._hold_shared(pause_s=pause, limit=limit if new_limit else None)
        if info is None or info.limit is None or info.limit < 1:
            return
        self._budget = min(self._rate, info.limit)
        self._tokens = min(self._tokens, self._capacity)
        if info.remaining is None or info.remaining >= self._low_watermark * info.limit:
            return
        used_by_others = (info.limit - info.remaining) - self._recent_sends(now)
        if used_by_others <= max(2.0, 0.02 * info.limit):
            return  # our own pace explains it, and the send log already keeps us under
        until_reset = min(info.reset_in_s if info.reset_in_s is not None else WINDOW_S, WINDOW_S)
        if info.remaining == 0:
            self._pause(now + until_reset)
            return
        self._slow_interval_s = until_reset / info.remaining
        self._slow_until = now + until_reset

    def _hold_shared(self, *, pause_s: float | None, limit: int | None) -> None:
        """Hand a pause or a lower limit to the other replicas (in the background: observe is
        called on the answer's path, and this pacer already holds it)."""
        if self._shared is None:
            return
        holding = self._send_hold(self._shared, pause_s, limit)
        task = asyncio.get_running_loop().create_task(holding)
        self._holds.add(task)
        task.add_done_callback(self._holds.discard)

    async def _send_hold(
        self, shared: SharedQuota, pause_s: float | None, limit: int | None
    ) -> None:
        try:
            await shared.hold_sends(self._quota_key, pause_s=pause_s, limit=limit)
        except StoreUnavailable as exc:
            # The other replicas learn it from their own answers; this one holds it already.
            _log.warning("quota_hold_not_shared", error=str(exc))

    def _pause(self, until: float) -> None:
        self._paused_until = max(self._paused_until, until)
        # Resume with one send, then at the pace: the bucket does not fill during a pause.
        self._tokens = min(self._tokens, 1.0)
        self._refilled_at = self._paused_until

    def _recent_sends(self, now: float) -> int:
        return sum(1 for sent in self._sends if sent > now - WINDOW_S)

    def _refill(self, now: float) -> None:
        if now > self._refilled_at:
            elapsed = now - self._refilled_at
            self._tokens = min(self._capacity, self._tokens + elapsed * self._budget / WINDOW_S)
            self._refilled_at = now
        while self._sends and self._sends[0] <= now - self._window_s:
            self._sends.popleft()

    def _ready_at(self, now: float) -> float:
        ready = max(now, self._paused_until)
        if self._tokens < 1.0 - _EPSILON:
            ready = max(ready, now + (1.0 - self._tokens) * WINDOW_S / self._budget)
        if len(self._sends) >= self._budget:
            ready = max(ready, self._sends[-self._budget] + self._window_s)
        if self._last_send is not None and now < self._slow_until:
            ready = max(ready, min(self._last_send + self._slow_interval_s, self._slow_until))
        return ready


class _Waiter:
    """One acquirer: its claim to a turn, and the future that tells it to look again."""

    __slots__ = ("turn", "waiting")

    def __init__(self, waiting: Waiting) -> None:
        self.waiting = waiting
        self.turn: asyncio.Future[None] | None = None  # set when it may look again
