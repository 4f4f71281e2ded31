"""A destination's ``max_in_flight`` held by the claim (``lane_caps``), on every backend, and
across replicas on one PostgreSQL database.

A deliver job of a capped destination is leased only while fewer than its cap of that
destination's jobs hold a live lease, whoever holds them: so the deliveries running at once
stay within the cap however many processes claim.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from bridge.store import AttemptReport, FinalOutcome, Job, JobKind, NewEvent, Store
from bridge.store.ids import new_id
from bridge.types import EventType, NotificationStatus
from tests.store.helpers import FakeClock, notification

pytestmark = pytest.mark.anyio

LEASE_S = 30.0
DELIVERED = AttemptReport(http_status=204, latency_ms=1)


async def pending_deliveries(store: Store, clock: FakeClock, count: int, *lanes: str) -> None:
    """``count`` imported notifications, each with one pending delivery to each of ``lanes``."""
    for index in range(count):
        await store.accept(notification(f"k{index}"))
        [job] = await store.claim(JobKind.IMPORT, owner="importer", lease_s=LEASE_S)
        event_id = new_id("evt", clock())
        new_event = NewEvent(
            id=event_id,
            type=EventType.IMPORTED,
            body=b'{"id": "%s"}' % event_id.encode(),
            destinations=lanes,
        )
        imported = FinalOutcome(status=NotificationStatus.IMPORTED)
        assert await store.record_outcome(job, imported, [new_event])


async def claim(
    store: Store, owner: str, caps: dict[str, int], *, skip: Sequence[Job] = (), limit: int = 10
) -> list[Job]:
    return await store.claim(
        JobKind.DELIVER,
        owner=owner,
        lease_s=LEASE_S,
        limit=limit,
        lane_caps=caps,
        skip_jobs=[job.id for job in skip],
    )


def lanes(jobs: list[Job]) -> list[str]:
    return sorted(str(job.lane) for job in jobs)


async def test_a_capped_destination_is_leased_up_to_its_cap_by_every_owner_together(
    store: Store, clock: FakeClock
) -> None:
    """crm capped at 2, audit uncapped: one claim takes 2 crm jobs and every audit job; another
    owner then gets no crm job until one of the two is finished, and then one."""
    await pending_deliveries(store, clock, 5, "crm", "audit")
    first = await claim(store, "a", {"crm": 2})
    assert lanes(first) == ["audit"] * 5 + ["crm"] * 2
    assert await claim(store, "b", {"crm": 2}) == []
    crm = [job for job in first if job.lane == "crm"]
    assert await store.mark_delivered(crm[0], DELIVERED)
    assert lanes(await claim(store, "b", {"crm": 2})) == ["crm"]
    assert await claim(store, "a", {"crm": 2}, skip=first) == []


async def test_a_lapsed_lease_frees_its_slot_but_the_callers_own_jobs_keep_theirs(
    store: Store, clock: FakeClock
) -> None:
    """A lease that lapsed no longer holds a slot (its job is taken over); the caller's own
    running jobs (``skip_jobs``) hold theirs even when their leases look lapsed."""
    await pending_deliveries(store, clock, 4, "crm")
    held = await claim(store, "a", {"crm": 2})
    assert lanes(held) == ["crm", "crm"]
    clock.advance(LEASE_S + 1)
    assert await claim(store, "a", {"crm": 2}, skip=held) == []
    taken_over = await claim(store, "b", {"crm": 2})
    assert len(taken_over) == 2


async def test_a_lowered_cap_waits_for_the_running_to_finish(
    store: Store, clock: FakeClock
) -> None:
    """Cap 3 then 1 (a reloaded config): nothing more is leased until 1 runs, not 3."""
    await pending_deliveries(store, clock, 5, "crm")
    running = await claim(store, "a", {"crm": 3})
    assert len(running) == 3
    for job in running[:2]:
        assert await store.mark_delivered(job, DELIVERED)
        assert await claim(store, "a", {"crm": 1}, skip=running) == []
    assert await store.mark_delivered(running[2], DELIVERED)
    assert len(await claim(store, "a", {"crm": 1})) == 1


async def test_replicas_claiming_at_once_never_take_more_than_the_cap(
    open_: Callable[[], Store], clock: FakeClock
) -> None:
    """Five stores (a replica each: their own connections) claim crm's backlog all at once,
    round after round; crm is capped at 2: each round leases 2 in all, never more, and the
    backlog drains."""
    replicas = [open_() for _ in range(5)]
    await pending_deliveries(replicas[0], clock, 12, "crm")
    leased_per_round = []
    for _ in range(6):
        claims = await asyncio.gather(
            *(claim(replica, f"r{n}", {"crm": 2}) for n, replica in enumerate(replicas))
        )
        leased = [
            (replica, job) for replica, jobs in zip(replicas, claims, strict=True) for job in jobs
        ]
        leased_per_round.append(len(leased))
        for replica, job in leased:
            assert await replica.mark_delivered(job, DELIVERED)
    assert leased_per_round == [2] * 6
