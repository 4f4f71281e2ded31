"""The pacer serves its waiting acquirers earliest deadline first (issue 4, deadlines)."""

from __future__ import annotations

import asyncio

import pytest

from bridge.pacing import Pacer

pytestmark = pytest.mark.anyio


class AutoTime:
    """A clock whose sleep moves time forward at once."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += max(delay, 0.0)
        await asyncio.sleep(0)


async def test_the_most_urgent_waiter_takes_the_next_send() -> None:
    time = AutoTime()
    pacer = Pacer(60, clock=time, sleep=time.sleep)
    await pacer.acquire()  # the one send the bucket holds
    served: list[float | None] = []

    async def acquire(deadline: float | None) -> None:
        await pacer.acquire(deadline)
        served.append(deadline)

    # 300 arrives first and starts waiting for the next send; more urgent ones overtake it.
    await asyncio.gather(*(acquire(deadline) for deadline in (300.0, None, 100.0, 200.0)))

    assert served == [100.0, 200.0, 300.0, None]
    assert time.now == pytest.approx(1004.0)  # still one a second


async def test_equal_deadlines_are_first_come_first_served() -> None:
    time = AutoTime()
    pacer = Pacer(60, clock=time, sleep=time.sleep)
    served: list[int] = []

    async def acquire(number: int) -> None:
        await pacer.acquire(50.0)
        served.append(number)

    await asyncio.gather(*(acquire(number) for number in range(5)))

    assert served == [0, 1, 2, 3, 4]


async def test_a_cancelled_waiter_hands_its_turn_on() -> None:
    time = AutoTime()
    gate = asyncio.Event()

    async def sleep_when_released(delay: float) -> None:
        await gate.wait()
        await time.sleep(delay)

    pacer = Pacer(60, clock=time, sleep=sleep_when_released)
    await pacer.acquire()
    first = asyncio.create_task(pacer.acquire(10.0))  # sleeps until the gate opens
    await asyncio.sleep(0)
    second = asyncio.create_task(pacer.acquire(20.0))  # waits its turn
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    await asyncio.wait_for(second, timeout=5)
    assert first.cancelled()
