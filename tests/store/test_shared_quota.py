"""The Didit quota, and each destination's rate, shared by replicas on one PostgreSQL database.

Each replica below is its own ``PostgresStore`` (its own pool, as a process has), so only the
database can keep them under the key's limits together: the sends are counted in the database,
on its clock, one at a time. Times are real: the database's clock is the one that counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psycopg
import pytest
from psycopg import sql

from bridge.pacing import Pacer, quota_key
from bridge.pipeline._timing import SharedRate
from bridge.store import Store
from bridge.types import RateLimitInfo, SendLimits, SharedQuota
from tests.store.backends import StoreTarget
from tests.support.waiting import wait_until_async
from tests.support.windows import most_in_any_window

pytestmark = pytest.mark.anyio

KEY = quota_key("test-api-key")


@pytest.fixture(name="backend")
def _postgres_only() -> str:
    return "postgres"


def shared(store: Store) -> SharedQuota:
    quota = store.shared_quota()
    assert quota is not None
    return quota


async def test_three_replicas_never_exceed_the_budget_in_any_window(
    open_: Callable[[], Store],
) -> None:
    """Six sends per 3 s window (bursts allowed): three replicas taking sends as fast as they
    can, for three windows, never get a seventh in a window, and get nearly all six."""
    limits = SendLimits(budget=6, window_s=3.0, burst=6, burst_window_s=0.1)
    replicas = [shared(open_()) for _ in range(3)]
    granted: list[float] = []
    stop_at = time.monotonic() + 3 * limits.window_s

    async def drain(quota: SharedQuota) -> None:
        while time.monotonic() < stop_at:
            wait_s = await quota.take_send(KEY, limits)
            if wait_s == 0.0:
                granted.append(time.time())
            else:
                await asyncio.sleep(min(wait_s, 0.05))  # look again soon: others may race

    await asyncio.gather(*(drain(quota) for quota in replicas))
    # time.time() is read after the commit: a few ms late, so windows are a little shorter.
    assert most_in_any_window(granted, limits.window_s - 0.2) <= limits.budget
    assert len(granted) >= 3 * limits.budget - 1


async def test_pacers_of_three_replicas_pace_together(open_: Callable[[], Store]) -> None:
    """120 a minute is two sends a second in all: three pacers acquiring for 3 s get the
    quota's share of those seconds together, not each."""
    stores = [open_() for _ in range(3)]
    await asyncio.gather(*(store.ping() for store in stores))  # connected and migrated
    pacers = [Pacer(120, shared=store.shared_quota(), quota_key=KEY) for store in stores]
    sent = await sends_together(pacers, seconds=3.0)
    assert 5 <= sent <= 2 * 3 + 2  # two a second, and the burst the first second allows


async def test_a_429_on_one_replica_pauses_every_replica(
    open_: Callable[[], Store], target: StoreTarget
) -> None:
    """A's answer was a 429 with Retry-After: 2: B, which has sent nothing, waits it out."""
    a, b = (Pacer(600, shared=open_().shared_quota(), quota_key=KEY) for _ in range(2))
    await a.acquire()
    a.observe(RateLimitInfo(limit=None, remaining=None, reset_epoch=None, reset_in_s=None,
                            retry_after_s=2.0), 429)  # fmt: skip
    await _until_quota(target, "paused_until > 0")
    started = time.monotonic()
    await b.acquire()
    assert time.monotonic() - started >= 1.5


async def test_a_limit_didit_says_to_one_replica_holds_for_every_replica(
    open_: Callable[[], Store], target: StoreTarget
) -> None:
    """Configured for 600 a minute, but A's answer says the key allows 60: A and B together
    then send at most one a second (the burst at 60 a minute), not ten; when Didit says 600
    again, both are back at ten a second."""
    stores = [open_(), open_()]
    await asyncio.gather(*(store.ping() for store in stores))  # connected and migrated
    a, b = (Pacer(600, shared=store.shared_quota(), quota_key=KEY) for store in stores)
    a.observe(limit_info(60), 201)
    await _until_quota(target, "learned_limit = 60")
    assert await sends_together([a, b], seconds=2.0) <= 2 + 1
    a.observe(limit_info(600), 201)
    await _until_quota(target, "learned_limit = 600")
    assert await sends_together([a, b], seconds=1.0) >= 8


async def test_a_destinations_rate_holds_for_three_replicas_together(
    open_: Callable[[], Store],
) -> None:
    """A destination at 5 a second: three replicas sending to it as fast as its rate lets each
    one, for 2 s, get 5 sends a second together (spaced 0.2 s apart), not 15."""
    rate, seconds = 5.0, 2.0
    stores = [open_() for _ in range(3)]
    await asyncio.gather(*(store.ping() for store in stores))  # connected and migrated
    rates = [SharedRate(rate, quota=shared(store), key="destination:crm") for store in stores]
    sent: list[float] = []
    stop_at = time.monotonic() + seconds

    async def drain(limiter: SharedRate) -> None:
        while time.monotonic() < stop_at:
            await limiter.acquire()
            sent.append(time.monotonic())

    await asyncio.gather(*(drain(limiter) for limiter in rates))
    # Read after the commit, a few ms late at random: a window 0.1 s short absorbs it.
    assert most_in_any_window(sent, 1.0 - 0.1) <= rate
    assert len(sent) >= rate * seconds - 1


def limit_info(limit: int) -> RateLimitInfo:
    return RateLimitInfo(
        limit=limit, remaining=limit, reset_epoch=None, reset_in_s=None, retry_after_s=None
    )


async def sends_together(pacers: list[Pacer], *, seconds: float) -> int:
    """How many sends ``pacers`` acquiring as fast as they can get in ``seconds``."""
    sent: list[float] = []
    stop_at = time.monotonic() + seconds

    async def drain(pacer: Pacer) -> None:
        while time.monotonic() < stop_at:
            await pacer.acquire()
            sent.append(time.monotonic())

    await asyncio.gather(*(drain(pacer) for pacer in pacers))
    return len([t for t in sent if t < stop_at])


async def _until_quota(target: StoreTarget, condition: str) -> None:
    """Wait until what a pacer handed over (in the background) is in the database."""
    async with await psycopg.AsyncConnection.connect(target.url, autocommit=True) as connection:
        query = sql.SQL("SELECT count(*) FROM {}.quotas WHERE {}").format(
            sql.Identifier(str(target.schema)),
            sql.SQL(condition),
        )

        async def rows() -> int:
            row = await (await connection.execute(query)).fetchone()
            return int(row[0]) if row else 0

        await wait_until_async(rows, f"quotas WHERE {condition}", poll_s=0.02)
