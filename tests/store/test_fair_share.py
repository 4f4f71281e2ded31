"""Import claims share the quota between partners (a contract: every backend claims alike).

A partner that floods the bridge with urgent-looking tokens (their ``exp`` is unverified)
must not push another partner's share behind all of them; a partner's own imports stay
earliest deadline first; a deadline really at risk still goes ahead, but never lets a lane
take two turns in a row; a capped lane is claimed at most its cap per minute.
"""

from __future__ import annotations

import itertools

import pytest

from bridge.store import FairShare, Job, JobKind, Store
from tests.store.helpers import START, FakeClock, notification

pytestmark = pytest.mark.anyio

PACE_S = 0.5  # two imports a second
_keys = itertools.count()


async def accept_many(store: Store, partner: str, deadlines: list[float]) -> dict[str, float]:
    """Accept one notification per deadline for ``partner``; their ids and deadlines."""
    ids = {}
    for deadline in deadlines:
        new = notification(f"{partner}:{next(_keys)}", partner=partner, deadline=deadline)
        ids[(await store.accept(new)).id] = deadline
    return ids


async def claim_in_turns(
    store: Store, clock: FakeClock, turns: int, fair_share: FairShare | None = None
) -> list[Job]:
    """Claim one job at a time, each import done before the next claim (one slot, paced)."""
    claimed: list[Job] = []
    for _ in range(turns):
        jobs = await store.claim(JobKind.IMPORT, owner="w", lease_s=30, fair_share=fair_share)
        if not jobs:
            break
        claimed += jobs
        assert await store.complete(jobs[0])
        clock.advance(PACE_S)
    return claimed


class TestRounds:
    async def test_a_flood_of_near_deadlines_does_not_push_another_partner_back(
        self, store: Store, clock: FakeClock
    ) -> None:
        """60 near deadlines from one partner, then one far deadline from another: the other's
        share is claimed within the next two claims, not after the flood."""
        await accept_many(store, "flooder", [START + 120 + k for k in range(60)])
        first = await claim_in_turns(store, clock, 3)
        assert {job.lane for job in first} == {"flooder"}
        (honest,) = await accept_many(store, "honest", [START + 3_600])
        after = await claim_in_turns(store, clock, 2)
        assert honest in [job.ref for job in after]

    async def test_lanes_take_turns_each_in_deadline_order(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Three lanes with backlogs alternate; within a lane the earliest deadline goes first."""
        deadlines = {
            "a": [START + 900, START + 300, START + 600],
            "b": [START + 2_000, START + 1_000],
            "c": [START + 50],
        }
        for partner, lane_deadlines in deadlines.items():
            await accept_many(store, partner, lane_deadlines)
        claimed = await claim_in_turns(store, clock, 10)
        lanes = [job.lane for job in claimed]
        # Round one in the order the lanes arrived (none served yet: earliest deadline first).
        assert lanes == ["c", "a", "b", "a", "b", "a"]
        for partner, lane_deadlines in deadlines.items():
            got = [job.deadline for job in claimed if job.lane == partner]
            assert got == sorted(lane_deadlines)

    async def test_a_batch_claim_is_one_job_per_lane_per_round(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A claim of several slots takes every lane's first job before any lane's second."""
        await accept_many(store, "a", [START + 10 + k for k in range(5)])
        await accept_many(store, "b", [START + 9_000])
        jobs = await store.claim(JobKind.IMPORT, owner="w", lease_s=30, limit=2)
        assert sorted(job.lane or "" for job in jobs) == ["a", "b"]

    async def test_the_lane_served_longest_ago_goes_first(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Of two lanes waiting, the one whose last claim is older is claimed first, whatever
        the deadlines."""
        await accept_many(store, "a", [START + 100, START + 101])
        await accept_many(store, "b", [START + 5_000, START + 5_001])
        order = [job.lane for job in await claim_in_turns(store, clock, 4)]
        assert order == ["a", "b", "a", "b"]


async def serve_three_lanes(store: Store, clock: FakeClock) -> None:
    """Lanes served once each, in this order: "x", "urgent", "y" (now 1.5 s later)."""
    await accept_many(store, "x", [START + 4_000])
    await accept_many(store, "urgent", [START + 5_000])
    await accept_many(store, "y", [START + 6_000])
    assert [job.lane for job in await claim_in_turns(store, clock, 3)] == ["x", "urgent", "y"]


async def wait_in_x_and_y(store: Store) -> None:
    """One far deadline each for lanes "x" and "y"."""
    await accept_many(store, "x", [START + 7_000])
    await accept_many(store, "y", [START + 7_000])


class TestDeadlinesAtRisk:
    async def test_a_deadline_at_risk_goes_ahead_of_the_round(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A lane's first job that would miss its deadline waiting for its place (second, at
        0.5 s an import: 1 s) is claimed before the lane served longer ago."""
        await serve_three_lanes(store, clock)
        await wait_in_x_and_y(store)
        await accept_many(store, "urgent", [clock() + 0.7])
        share = FairShare(pace_s=PACE_S)
        assert [job.lane for job in await claim_in_turns(store, clock, 1, share)] == ["urgent"]

    async def test_a_deadline_with_time_to_spare_waits_its_turn(
        self, store: Store, clock: FakeClock
    ) -> None:
        """The same lane waits for the round when its deadline can afford the wait."""
        await serve_three_lanes(store, clock)
        await wait_in_x_and_y(store)
        await accept_many(store, "urgent", [clock() + 1.2])
        share = FairShare(pace_s=PACE_S)
        lanes = [job.lane for job in await claim_in_turns(store, clock, 3, share)]
        assert lanes == ["x", "urgent", "y"]

    async def test_imports_already_running_count_against_the_deadline(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Imports claimed and still running go first at the pacer: a deadline that could wait
        for its place alone is at risk behind them."""
        await serve_three_lanes(store, clock)
        await accept_many(store, "z", [START + 8_000, START + 8_001])
        running = await store.claim(JobKind.IMPORT, owner="other", lease_s=30, limit=2)
        assert [job.lane for job in running] == ["z", "z"]
        await wait_in_x_and_y(store)
        await accept_many(store, "urgent", [clock() + 1.2])
        share = FairShare(pace_s=PACE_S)
        jobs = await store.claim(JobKind.IMPORT, owner="w", lease_s=30, fair_share=share)
        assert [job.lane for job in jobs] == ["urgent"]

    async def test_urgency_never_buys_two_turns_in_a_row(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A lane whose every deadline is at risk gets every other claim, not all of them."""
        await accept_many(store, "flooder", [START + 1.0 + k * 0.01 for k in range(8)])
        await accept_many(store, "h1", [START + 3_600, START + 3_601])
        await accept_many(store, "h2", [START + 3_700, START + 3_701])
        share = FairShare(pace_s=PACE_S)
        lanes = [job.lane for job in await claim_in_turns(store, clock, 6, share)]
        assert lanes == ["flooder", "h1", "flooder", "h2", "flooder", "h1"]

    async def test_a_slowed_lane_never_goes_ahead(self, store: Store, clock: FakeClock) -> None:
        """A lane in ``no_jumps`` waits for its round even with its deadline at risk."""
        await serve_three_lanes(store, clock)
        await wait_in_x_and_y(store)
        await accept_many(store, "urgent", [clock() + 0.7])
        share = FairShare(pace_s=PACE_S, no_jumps=frozenset({"urgent"}))
        assert [job.lane for job in await claim_in_turns(store, clock, 1, share)] == ["x"]


class TestCaps:
    async def test_a_capped_lane_is_claimed_at_most_its_cap_per_minute(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Cap 3: three claims, then none until the first is a minute old; others go on."""
        await accept_many(store, "capped", [START + 3_600 + k for k in range(10)])
        await accept_many(store, "free", [START + 3_700 + k for k in range(9)])
        share = FairShare(caps={"capped": 3})
        lanes = [job.lane for job in await claim_in_turns(store, clock, 12, share)]
        assert lanes.count("capped") == 3
        assert lanes.count("free") == 9
        assert await store.claim(JobKind.IMPORT, owner="w", lease_s=30, fair_share=share) == []
        clock.advance(60.0 - 12 * PACE_S + 0.01)  # the first claim is now over a minute old
        jobs = await store.claim(JobKind.IMPORT, owner="w", lease_s=30, limit=5, fair_share=share)
        assert [job.lane for job in jobs] == ["capped"]

    async def test_a_batch_claim_respects_the_cap(self, store: Store, clock: FakeClock) -> None:
        """One claim of many slots takes no more of a capped lane than its cap."""
        await accept_many(store, "capped", [START + 3_600 + k for k in range(10)])
        share = FairShare(caps={"capped": 4})
        jobs = await store.claim(JobKind.IMPORT, owner="w", lease_s=30, limit=8, fair_share=share)
        assert len(jobs) == 4

    async def test_a_lane_not_capped_is_claimed_freely(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Caps name lanes: another lane's backlog is claimed in full."""
        await accept_many(store, "free", [START + 3_600 + k for k in range(10)])
        share = FairShare(caps={"other": 1})
        jobs = await store.claim(JobKind.IMPORT, owner="w", lease_s=30, limit=10, fair_share=share)
        assert len(jobs) == 10
