"""Differential: SQLite and PostgreSQL answer one seeded sequence of operations alike.

Each run draws accepts (shares and message ids that repeat, two partners), claims, fenced writes
on held and stale leases, outcomes with events, clock steps, operator retries, redeliveries and
token sweeps; both stores get the same sequence and every answer is recorded, with ids replaced
by the order in which they first appeared. Any divergence in semantics shows as a diff.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.store import AttemptReport, FinalOutcome, Job, JobKind, Store
from bridge.types import DiditSession, EventType, NotificationStatus, Reason
from tests.store.backends import PG_DSN, StoreTarget, drop_pg_schema, new_pg_schema
from tests.store.helpers import START, FakeClock, notification
from tests.store.test_contract import event

pytestmark = pytest.mark.anyio

_ID = re.compile(r"\b(ntf|dlv|evt)_[0-9A-Z]{26}\b")
FINAL = [
    NotificationStatus.IMPORTED,
    NotificationStatus.REJECTED,
    NotificationStatus.EXPIRED,
    NotificationStatus.FAILED,
]


class Trace:
    """Answers with ids made stable: the n-th id first seen is ``<prefix>#n``."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._names: dict[str, str] = {}

    def add(self, *parts: object) -> None:
        self.lines.append(_ID.sub(self._name, " ".join(repr(part) for part in parts)))

    def _name(self, match: re.Match[str]) -> str:
        return self._names.setdefault(match.group(0), f"{match.group(1)}#{len(self._names)}")


async def run(store: Store, clock: FakeClock, seed: int) -> list[str]:
    rng = random.Random(seed)
    trace = Trace()
    held: list[Job] = []
    stale: list[Job] = []
    for step in range(120):
        roll = rng.random()
        if roll < 0.3:
            key, partner = f"k{rng.randrange(8)}", rng.choice(["acme", "globex"])
            message = rng.choice([None, f"m{rng.randrange(10)}"])
            deadline = rng.choice([None, START + rng.randrange(60, 900)])
            accepted = await store.accept(
                notification(key, message_id=message, partner=partner, deadline=deadline)
            )
            trace.add(step, "accept", key, partner, message, accepted.id, accepted.duplicate)
        elif roll < 0.5:
            kind = rng.choice([JobKind.IMPORT, JobKind.DELIVER])
            owner = rng.choice(["w1", "w2"])
            jobs = await store.claim(kind, owner=owner, lease_s=30, limit=rng.randint(1, 3))
            held += jobs
            # float(): SQLite's RETURNING hands an integral REAL back as an int
            claimed = [(j.ref, j.attempts, _float(j.deadline)) for j in jobs]
            trace.add(step, "claim", kind, owner, claimed)
        elif roll < 0.75 and (held or stale):
            pool = rng.choice([p for p in (held, stale) if p])
            job = pool.pop(rng.randrange(len(pool)))
            trace.add(step, "write", job.ref, await _write(store, clock, job, rng))
        elif roll < 0.85:
            seconds = rng.choice([1, 10, 31, 400])
            clock.advance(seconds)
            stale += held  # a lease may have lapsed: keep the handles to try them later
            held = []
            trace.add(step, "advance", seconds)
        elif roll < 0.92:
            listed = await store.list_notifications(limit=100)
            if listed:
                target = rng.choice(listed).id
                trace.add(step, "retry", target, await store.retry_notification(target))
        else:
            trace.add(step, "erase", await store.erase_stale_tokens())
    stats = await store.stats()
    trace.add("stats", stats.notifications, stats.jobs, stats.deliveries)
    for stored in await store.list_notifications(limit=500):
        timeline = await store.timeline(stored.id)
        assert timeline is not None
        n = timeline.notification
        trace.add("notification", n.id, n.business_key, n.status, n.reason, n.session)
        loaded = await store.load_notification(n.id)
        assert loaded is not None
        trace.add("token", loaded.token is not None)
        trace.add("attempts", [(a.attempt, a.kind, a.result) for a in timeline.attempts])
        trace.add(
            "deliveries", sorted((d.destination, d.status, d.attempts) for d in timeline.deliveries)
        )
    trace.add("destinations", await store.destination_states())
    return trace.lines


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


async def _write(store: Store, clock: FakeClock, job: Job, rng: random.Random) -> Any:
    if job.kind is JobKind.DELIVER:
        report = AttemptReport(http_status=rng.choice([200, 500]), latency_ms=5)
        choice = rng.randrange(3)
        if choice == 0:
            return await store.mark_delivered(job, report)
        if choice == 1:
            return await store.delivery_failed(job, report, retry_at=clock() + 5)
        return await store.delivery_failed(job, report, retry_at=None)
    choice = rng.randrange(6)
    if choice == 0:
        attempt = await store.begin_import_attempt(job)
        if attempt is not None:
            await store.end_import_attempt(
                job, attempt, http_status=None, result="ambiguous", latency_ms=1
            )
        attempts = await store.list_import_attempts(job.ref)
        return ("attempt", attempt, [(a.attempt, a.kind, a.ended_at, a.result) for a in attempts])
    if choice == 1:
        return await store.retry(job, run_after=clock() + 10, error="HTTP 503")
    if choice == 2:
        return await store.release(job)
    if choice == 3:
        return await store.bury(job, error="gave up")
    status = rng.choice(FINAL)
    session = DiditSession(session_id=f"s{rng.randrange(6)}") if status.is_final else None
    outcome = FinalOutcome(
        status=status,
        session=session if status is NotificationStatus.IMPORTED else None,
        reason=None if status is NotificationStatus.IMPORTED else Reason(code="c", message="m"),
    )
    events = [
        event(clock, *rng.sample(["crm", "audit"], rng.randint(0, 2)), type_=EventType.IMPORTED)
    ]
    return await store.record_outcome(job, outcome, events)


@pytest.fixture(name="pg_target")
def _pg_target(pg_server: None) -> Iterator[StoreTarget]:
    schema = new_pg_schema()
    try:
        yield StoreTarget(url=PG_DSN, schema=schema)
    finally:
        drop_pg_schema(schema)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_sqlite_and_postgres_answer_a_sequence_alike(
    seed: int, tmp_path: Path, pg_target: StoreTarget
) -> None:
    traces = []
    for target in (StoreTarget(url=f"sqlite:///{tmp_path}/bridge.db"), pg_target):
        clock = FakeClock()
        store = target.open(clock)
        try:
            traces.append(await run(store, clock, seed))
        finally:
            await store.close()
    sqlite, postgres = traces
    assert len(sqlite) > 100
    assert postgres == sqlite
