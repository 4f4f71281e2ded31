"""The deliver lane's token bucket and retry alarm."""

from __future__ import annotations

import asyncio

import pytest

from bridge.pipeline import Alarm, TokenBucket
from tests.store.helpers import FakeClock
from tests.support.waiting import wait_until_async

pytestmark = pytest.mark.anyio


class TestTokenBucket:
    async def test_bursts_one_second_then_paces(self) -> None:
        """Rate 10: ten at once, then each waits a tenth of a second more than the last."""
        clock = FakeClock(0.0)
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(round(seconds, 6))

        bucket = TokenBucket(10, clock=clock, sleep=sleep)
        for _ in range(13):
            await bucket.acquire()
        assert slept == [0.1, 0.2, 0.3]

    async def test_refills_with_time(self) -> None:
        clock = FakeClock(0.0)
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        bucket = TokenBucket(2, clock=clock, sleep=sleep)
        await bucket.acquire()
        await bucket.acquire()
        clock.advance(1.0)
        await bucket.acquire()
        await bucket.acquire()
        assert slept == []

    def test_rate_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="positive"):
            TokenBucket(0)


class TestAlarm:
    async def test_wakes_at_each_time_in_order(self) -> None:
        loop = asyncio.get_running_loop()
        woken: list[float] = []
        alarm = Alarm(lambda: woken.append(loop.time()), clock=loop.time)
        start = loop.time()
        alarm.at(start + 0.06)
        alarm.at(start + 0.02)
        alarm.at(start + 0.04)
        await wait_until_async(lambda: len(woken) == 3, "len(woken) == 3")
        for wake, due in zip(woken, (0.02, 0.04, 0.06), strict=True):
            assert wake - start >= due
        alarm.cancel()

    async def test_cancel_forgets_everything(self) -> None:
        loop = asyncio.get_running_loop()
        woken: list[float] = []
        alarm = Alarm(lambda: woken.append(loop.time()), clock=loop.time)
        alarm.at(loop.time() + 0.01)
        alarm.cancel()
        await asyncio.sleep(0.05)  # the alarm's timer runs on the loop's clock: only real time
        assert woken == []
