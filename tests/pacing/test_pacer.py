from __future__ import annotations

import asyncio
import bisect
import itertools

import pytest

from bridge.pacing import DEFAULT_BACKOFF_S, MAX_PAUSE_S, Pacer, PacerClosed
from bridge.types import RateLimitInfo

pytestmark = pytest.mark.anyio

START = 1000.0


class AutoTime:
    """A clock whose sleep moves time forward at once (only one acquirer sleeps at a time)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += max(delay, 0.0)
        await asyncio.sleep(0)


class ManualTime:
    """A clock that moves only when the test says so; sleepers wake in deadline order."""

    def __init__(self) -> None:
        self.now = START
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + delay, future))
        await future

    async def advance_to(self, when: float) -> None:
        while True:
            due = [item for item in self._sleepers if item[0] <= when]
            if not due:
                break
            item = min(due, key=lambda pair: pair[0])
            self._sleepers.remove(item)
            self.now = max(self.now, item[0])
            if not item[1].done():
                item[1].set_result(None)
            await settle()
        self.now = when
        await settle()


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


def info(
    *,
    limit: int | None = None,
    remaining: int | None = None,
    reset_in_s: float | None = None,
    retry_after_s: float | None = None,
) -> RateLimitInfo:
    return RateLimitInfo(
        limit=limit,
        remaining=remaining,
        reset_epoch=None,
        reset_in_s=reset_in_s,
        retry_after_s=retry_after_s,
    )


def max_in_window(times: list[float], window: float) -> int:
    """The most sends in any closed interval [t, t + window]."""
    ordered = sorted(times)
    return max(bisect.bisect_right(ordered, t + window) - i for i, t in enumerate(ordered))


async def acquire_many(pacer: Pacer, clock: AutoTime, count: int, workers: int) -> list[float]:
    times: list[float] = []
    queue = list(range(count))

    async def worker() -> None:
        while queue:
            queue.pop()
            await pacer.acquire()
            times.append(clock())

    await asyncio.gather(*(worker() for _ in range(workers)))
    return times


class TestQuota:
    @pytest.mark.parametrize("workers", [1, 8])
    async def test_never_more_than_the_rate_in_any_60_s_window(self, workers: int) -> None:
        """1,000 acquires at 300/min: no 60 s window ever holds more than 300 sends."""
        clock = AutoTime()
        pacer = Pacer(300, clock=clock, sleep=clock.sleep)
        times = await acquire_many(pacer, clock, 1000, workers)
        assert len(times) == 1000
        assert max_in_window(times, 60.0) <= 300

    async def test_a_backlog_drains_at_the_quota(self) -> None:
        """In steady state the drain runs at no less than 95 % of the quota, never above it."""
        clock = AutoTime()
        pacer = Pacer(300, clock=clock, sleep=clock.sleep)
        times = await acquire_many(pacer, clock, 1000, 8)
        steady = times[300:]
        rate_per_s = (len(steady) - 1) / (steady[-1] - steady[0])
        assert 0.95 * 5.0 <= rate_per_s <= 5.0 + 1e-9
        assert (times[-1] - times[0]) <= 1000 / (0.95 * 5.0)

    async def test_no_burst_above_the_quota(self) -> None:
        """A backlog starts at the pace: at most a small bucket more in any one second."""
        clock = AutoTime()
        pacer = Pacer(300, clock=clock, sleep=clock.sleep)
        times = await acquire_many(pacer, clock, 100, 4)
        assert max_in_window(times, 1.0) <= 5 + 5

    async def test_a_lower_limit_from_didit_lowers_the_budget(self) -> None:
        """When X-RateLimit-Limit is below the configured rate, the pacer keeps under it."""
        clock = AutoTime()
        pacer = Pacer(300, clock=clock, sleep=clock.sleep)
        pacer.observe(info(limit=60, remaining=59, reset_in_s=60.0), 201)
        times = await acquire_many(pacer, clock, 200, 2)
        assert pacer.budget == 60
        assert max_in_window(times, 60.0) <= 60

    async def test_waits_are_counted(self) -> None:
        """Acquires beyond the bucket wait, and the wait shows in the metrics."""
        clock = AutoTime()
        pacer = Pacer(60, clock=clock, sleep=clock.sleep)
        await pacer.acquire()
        assert pacer.waits_total == 0
        await pacer.acquire()
        assert pacer.waits_total == 1
        assert pacer.wait_seconds_total == pytest.approx(1.0)

    def test_a_rate_below_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            Pacer(0)


class TestRemaining:
    async def test_slows_when_others_leave_under_15_percent(self) -> None:
        """Remaining 10 of 300 used by someone else: the 10 are spread over the 20 s to reset."""
        clock = AutoTime()
        pacer = Pacer(300, clock=clock, sleep=clock.sleep)
        await pacer.acquire()
        pacer.observe(info(limit=300, remaining=10, reset_in_s=20.0), 201)
        times = [clock()]
        for _ in range(10):
            await pacer.acquire()
            times.append(clock())
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 2.0 - 1e-9
        assert times[-1] <= START + 20.0 + 0.5

    async def test_returns_to_the_pace_after_the_reset(self) -> None:
        """Once the reset time passes, sends come at the quota pace again."""
        clock = AutoTime()
        pacer = Pacer(300, clock=clock, sleep=clock.sleep)
        await pacer.acquire()
        pacer.observe(info(limit=300, remaining=4, reset_in_s=8.0), 201)
        while clock() < START + 8.0:
            await pacer.acquire()
        before = clock()
        for _ in range(10):
            await pacer.acquire()
        assert clock() - before <= 10 * 0.2 + 1e-6

    async def test_own_sends_do_not_slow_it_down(self) -> None:
        """Remaining is low only because of our own pace: the send log suffices, no slow-down."""
        clock = AutoTime()
        pacer = Pacer(300, clock=clock, sleep=clock.sleep)
        times = await acquire_many(pacer, clock, 280, 1)
        pacer.observe(info(limit=300, remaining=300 - 280, reset_in_s=59.0), 201)
        start = clock()
        await acquire_many(pacer, clock, 10, 1)
        assert clock() - start <= 10 * 0.2 + 1e-6
        assert len(times) == 280

    async def test_nothing_left_pauses_until_the_reset(self) -> None:
        """Remaining 0 used up by others: wait for the reset before sending again."""
        clock = AutoTime()
        pacer = Pacer(300, clock=clock, sleep=clock.sleep)
        await pacer.acquire()
        pacer.observe(info(limit=300, remaining=0, reset_in_s=12.0), 201)
        assert pacer.paused_until == pytest.approx(START + 12.0)
        await pacer.acquire()
        assert clock() >= START + 12.0

    async def test_plenty_left_changes_nothing(self) -> None:
        clock = AutoTime()
        pacer = Pacer(300, clock=clock, sleep=clock.sleep)
        pacer.observe(info(limit=300, remaining=200, reset_in_s=30.0), 201)
        pacer.observe(None, 201)
        pacer.observe(None, None)
        await acquire_many(pacer, clock, 5, 1)
        assert clock() == START
        assert pacer.paused_until is None


class TestTooManyRequests:
    async def test_a_429_pauses_every_acquirer_until_retry_after(self) -> None:
        """Waiting acquirers, and one already asleep, all wait for Retry-After, then resume."""
        clock = ManualTime()
        pacer = Pacer(60, clock=clock, sleep=clock.sleep)  # 1/s, bucket of 1
        await pacer.acquire()
        granted: list[tuple[int, float]] = []

        async def acquirer(n: int) -> None:
            await pacer.acquire()
            granted.append((n, clock()))

        tasks = [asyncio.create_task(acquirer(n)) for n in range(3)]
        await settle()
        await clock.advance_to(START + 0.5)
        pacer.observe(info(retry_after_s=7.0), 429)
        assert pacer.paused_until == pytest.approx(START + 7.5)
        await clock.advance_to(START + 7.4)
        assert granted == []
        await clock.advance_to(START + 30.0)
        await asyncio.gather(*tasks)
        assert [n for n, _ in granted] == [0, 1, 2]
        assert all(at >= START + 7.5 for _, at in granted)
        assert pacer.paused_until is None

    async def test_retry_after_is_capped(self) -> None:
        clock = AutoTime()
        pacer = Pacer(300, clock=clock, sleep=clock.sleep)
        pacer.observe(info(retry_after_s=3600.0), 429)
        assert pacer.paused_until == pytest.approx(START + MAX_PAUSE_S)

    async def test_without_retry_after_the_pause_doubles_and_then_resets(self) -> None:
        """5 s, 10 s, 20 s ... at most 60 s; an answer that is not a 429 starts over."""
        clock = AutoTime()
        pacer = Pacer(300, clock=clock, sleep=clock.sleep)
        pauses = []
        for _ in range(6):
            pacer.observe(None, 429)
            paused_until = pacer.paused_until
            assert paused_until is not None
            pauses.append(paused_until - clock())
            await pacer.acquire()
        assert pauses == pytest.approx([5.0, 10.0, 20.0, 40.0, 60.0, 60.0])
        pacer.observe(None, 201)
        pacer.observe(None, 429)
        assert pacer.paused_until == pytest.approx(clock() + DEFAULT_BACKOFF_S)

    async def test_the_first_send_after_a_pause_is_not_a_burst(self) -> None:
        """After the pause the bucket holds one send, not a full second's worth."""
        clock = AutoTime()
        pacer = Pacer(600, clock=clock, sleep=clock.sleep)  # 10/s, bucket of 10
        pacer.observe(info(retry_after_s=5.0), 429)
        times = await acquire_many(pacer, clock, 5, 1)
        assert times[0] >= START + 5.0
        assert max_in_window(times, 0.25) <= 3


class TestFairness:
    async def test_acquirers_are_served_in_arrival_order(self) -> None:
        clock = AutoTime()
        pacer = Pacer(120, clock=clock, sleep=clock.sleep)
        order: list[int] = []

        async def acquirer(n: int) -> None:
            await pacer.acquire()
            order.append(n)

        tasks = []
        for n in range(20):
            tasks.append(asyncio.create_task(acquirer(n)))
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        assert order == list(range(20))

    async def test_a_latecomer_never_overtakes_a_waiting_acquirer(self) -> None:
        """Even when a send becomes free while the first waiter sleeps, it stays first."""
        clock = ManualTime()
        pacer = Pacer(60, clock=clock, sleep=clock.sleep)
        pacer.observe(info(limit=30, remaining=29, reset_in_s=60.0), 201)  # one send per 2 s
        await pacer.acquire()
        order: list[str] = []

        async def acquirer(name: str) -> None:
            await pacer.acquire()
            order.append(name)

        early = asyncio.create_task(acquirer("early"))
        await settle()
        pacer.observe(info(limit=60, remaining=59, reset_in_s=60.0), 201)  # one send per 1 s
        await clock.advance_to(START + 1.0)
        late = asyncio.create_task(acquirer("late"))
        await clock.advance_to(START + 10.0)
        await asyncio.gather(early, late)
        assert order == ["early", "late"]

    async def test_a_cancelled_waiter_neither_blocks_nor_counts(self) -> None:
        """Cancelling a waiting acquirer lets the next one through and sends nothing for it."""
        clock = ManualTime()
        pacer = Pacer(60, clock=clock, sleep=clock.sleep)
        await pacer.acquire()
        first = asyncio.create_task(pacer.acquire())
        second = asyncio.create_task(pacer.acquire())
        await settle()
        first.cancel()
        await settle()
        await clock.advance_to(START + 1.0)
        await second
        assert first.cancelled()
        await clock.advance_to(START + 1.5)
        third = asyncio.create_task(pacer.acquire())
        await settle()
        assert not third.done()  # the bucket refilled only one send since the second
        await clock.advance_to(START + 2.0)
        await third


class TestClose:
    async def test_every_waiting_acquirer_is_sent_away_at_once(self) -> None:
        """The one sleeping until the next send and those queued behind it: none sends."""
        clock = ManualTime()
        pacer = Pacer(1, clock=clock, sleep=clock.sleep)  # one send a minute
        await pacer.acquire()
        waiting = [asyncio.create_task(pacer.acquire(deadline=d)) for d in (3.0, 1.0, 2.0)]
        await settle()
        assert not any(task.done() for task in waiting)
        pacer.close()
        await settle()
        assert clock.now == START  # no time passed: they did not wait for their turn
        for task in waiting:
            with pytest.raises(PacerClosed):
                task.result()

    async def test_an_acquire_after_close_is_refused(self) -> None:
        pacer = Pacer(600)
        pacer.close()
        with pytest.raises(PacerClosed):
            await pacer.acquire()
