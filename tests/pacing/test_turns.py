"""Whose import goes next among those waiting for the pacer (``bridge.turns``), and the pacer
following it: turns go round the partners, each partner's earliest deadline first, and a
deadline at risk goes ahead without ever buying its partner two turns in a row."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Hashable

import pytest

from bridge.pacing import Pacer
from bridge.turns import Waiting, next_turn
from tests.pacing.test_pacer import AutoTime, info

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000.0
PACE_S = 0.5


def waiting(*specs: tuple[str, float]) -> list[Waiting]:
    return [Waiting(lane, deadline, arrival) for arrival, (lane, deadline) in enumerate(specs)]


def drain(
    queue: list[Waiting], *, served_at: dict[Hashable, float] | None = None, now: float = NOW
) -> list[Waiting]:
    """Send everything in ``queue`` one by one, at PACE_S each, in the order next_turn picks."""
    served: dict[Hashable, float] = dict(served_at or {})
    sent = []
    queue = list(queue)
    while queue:
        chosen = next_turn(queue, served_at=served, now=now, pace_s=PACE_S)
        queue.remove(chosen)
        sent.append(chosen)
        served[chosen.lane] = now
        now += PACE_S
    return sent


class TestNextTurn:
    def test_a_partner_served_lately_waits_for_one_not_served(self) -> None:
        """Eight urgent-looking imports of one partner, then another's: the other goes next."""
        queue = waiting(*[("flooder", NOW + 30 + k) for k in range(7)], ("honest", NOW + 3_600))
        served: dict[Hashable, float] = {"flooder": NOW - 0.5}
        chosen = next_turn(queue, served_at=served, now=NOW, pace_s=PACE_S)
        assert chosen.lane == "honest"

    def test_turns_go_round_each_lane_in_deadline_order(self) -> None:
        """Lanes alternate; each lane's imports leave earliest deadline first."""
        queue = waiting(("a", NOW + 90), ("a", NOW + 30), ("b", NOW + 600), ("a", NOW + 60))
        sent = drain(queue)
        assert [(w.lane, w.deadline - NOW) for w in sent] == [
            ("a", 30), ("b", 600), ("a", 60), ("a", 90),
        ]  # fmt: skip

    def test_no_deadline_comes_last_in_its_lane(self) -> None:
        """An import without a deadline waits for its lane's dated ones."""
        queue = waiting(("a", math.inf), ("a", NOW + 100))
        assert [w.deadline for w in drain(queue)] == [NOW + 100, math.inf]

    def test_a_deadline_at_risk_goes_ahead(self) -> None:
        """Third in the round at 0.5 s a send needs 1.5 s: a deadline 1 s away goes first."""
        served: dict[Hashable, float] = {
            "x": NOW - 3,
            "y": NOW - 2,
            "urgent": NOW - 1.5,
            "last": NOW - 0.5,
        }
        queue = waiting(("x", NOW + 600), ("y", NOW + 600), ("urgent", NOW + 1.0))
        chosen = next_turn(queue, served_at=served, now=NOW, pace_s=PACE_S)
        assert chosen.lane == "urgent"

    def test_a_deadline_that_can_wait_waits(self) -> None:
        """The same import 2 s away keeps its place."""
        served: dict[Hashable, float] = {
            "x": NOW - 3,
            "y": NOW - 2,
            "urgent": NOW - 1.5,
            "last": NOW - 0.5,
        }
        queue = waiting(("x", NOW + 600), ("y", NOW + 600), ("urgent", NOW + 2.0))
        assert next_turn(queue, served_at=served, now=NOW, pace_s=PACE_S).lane == "x"

    def test_urgency_never_buys_two_turns_in_a_row(self) -> None:
        """A lane of imports all at risk gets every other send, no more."""
        queue = waiting(
            *[("flooder", NOW + 0.2 + 0.01 * k) for k in range(4)],
            ("h1", NOW + 3_600), ("h1", NOW + 3_601), ("h2", NOW + 3_700), ("h2", NOW + 3_701),
        )  # fmt: skip
        lanes = [w.lane for w in drain(queue)][:6]
        assert lanes == ["flooder", "h1", "flooder", "h2", "flooder", "h1"]

    def test_a_slowed_lane_never_goes_ahead(self) -> None:
        """A lane in ``no_jumps`` keeps its place in the round, however urgent."""
        served: dict[Hashable, float] = {"x": NOW - 3, "urgent": NOW - 1.5, "last": NOW - 0.5}
        queue = waiting(("x", NOW + 600), ("urgent", NOW + 0.1))
        chosen = next_turn(
            queue, served_at=served, now=NOW, pace_s=PACE_S, no_jumps=frozenset({"urgent"})
        )
        assert chosen.lane == "x"


class TestPacerTurns:
    async def test_the_pacer_sends_in_turns_across_partners(self) -> None:
        """Imports waiting at the pacer leave in turns: another partner's import, arriving
        behind seven of a flooding partner's, is sent second, not eighth."""
        clock = AutoTime()
        pacer = Pacer(120, clock=clock, sleep=clock.sleep, wall_clock=clock)
        await pacer.acquire(clock.now + 60, lane="flooder")
        order: list[str] = []

        async def acquirer(lane: str, deadline: float) -> None:
            await pacer.acquire(deadline, lane=lane)
            order.append(lane)

        tasks = [asyncio.create_task(acquirer("flooder", clock.now + 60 + k)) for k in range(7)]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(acquirer("honest", clock.now + 3_600)))
        await asyncio.gather(*tasks)
        assert order.index("honest") <= 1, order

    async def test_one_partner_keeps_earliest_deadline_first(self) -> None:
        """Within a partner, the most urgent token is sent first whatever the arrival order."""
        clock = AutoTime()
        pacer = Pacer(60, clock=clock, sleep=clock.sleep, wall_clock=clock)
        await pacer.acquire(lane="acme")
        order: list[float] = []

        async def acquirer(deadline: float) -> None:
            await pacer.acquire(deadline, lane="acme")
            order.append(deadline)

        deadlines = [clock.now + d for d in (500.0, 100.0, 300.0, 200.0)]
        tasks = []
        for deadline in deadlines:
            tasks.append(asyncio.create_task(acquirer(deadline)))
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        assert order == sorted(deadlines)

    async def test_at_risk_is_measured_at_the_pace_actually_kept(self) -> None:
        """While Didit's remaining quota is being spread (one send per 2 s instead of 0.2 s), a
        deadline 1 s after the next send, second in the round, is at risk and goes first."""
        clock = AutoTime()
        pacer = Pacer(300, clock=clock, sleep=clock.sleep, wall_clock=clock)
        await pacer.acquire(lane="served")  # "fresh" was never served: first in the round
        clock.now += 0.5
        await pacer.acquire(lane="last")
        assert pacer.pace_s == 0.2
        pacer.observe(info(limit=300, remaining=10, reset_in_s=20.0), 201)
        assert pacer.pace_s == 2.0
        order: list[str] = []

        async def acquirer(lane: str, deadline: float) -> None:
            await pacer.acquire(deadline, lane=lane)
            order.append(lane)

        tasks = [
            asyncio.create_task(acquirer("fresh", clock.now + 600)),
            asyncio.create_task(acquirer("served", clock.now + 3.0 + 2.0)),
        ]
        await asyncio.gather(*tasks)
        assert order == ["served", "fresh"]


class TestPacerTurnMoves:
    async def test_a_turn_that_moves_while_its_waiter_wakes_is_handed_on(self) -> None:
        """Whose turn it is moves with the clock: a waiter woken for a turn that has since gone
        to another (a deadline came at risk meanwhile) hands it on, and every import is sent.
        A soak stalled here for good: every acquirer waited for a wake-up nobody sent."""
        clock = AutoTime()
        wall = [clock.now]

        def wall_clock() -> float:  # each look at the wall clock finds it 0.4 s later
            wall[0] += 0.4
            return wall[0]

        pacer = Pacer(60, clock=clock, sleep=clock.sleep, wall_clock=wall_clock)
        await pacer.acquire(lane="x")
        sent: list[str] = []

        async def acquirer(lane: str, deadline: float) -> None:
            await pacer.acquire(deadline, lane=lane)
            sent.append(lane)

        plan = [("a", 3_600.0), ("b", 12.0), ("a", 3_600.0), ("c", 9.0), ("b", 3_600.0)]
        tasks = [asyncio.create_task(acquirer(lane, clock.now + in_s)) for lane, in_s in plan]
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
        assert sorted(sent) == sorted(lane for lane, _ in plan)
