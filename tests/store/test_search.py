"""The console's store queries: the notification search (each filter, each kind of search key,
time ranges, paging), outcomes per time bucket, delivery totals and counts; on SQLite, every
search answers from an index (no table scan, no sort of the whole table)."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from bridge.store import (
    DeliveryStatus,
    FinalOutcome,
    JobKind,
    NewEvent,
    NotificationSearch,
    Store,
    _search,
)
from bridge.store.ids import first_id_at, new_id
from bridge.store.queries import load_queries
from bridge.store.sqlite import SqliteStore
from bridge.types import EventType, NotificationStatus, Reason
from tests.store.backends import StoreTarget
from tests.store.helpers import ROUTE, FakeClock, notification

pytestmark = pytest.mark.anyio


async def finish(store: Store, status: NotificationStatus, *to: str) -> None:
    """Give the oldest pending import its outcome, with one event for ``to``."""
    [job] = await store.claim(JobKind.IMPORT, owner="t", lease_s=30, limit=1)
    reason = None if status is NotificationStatus.IMPORTED else Reason(code="x", message="y")
    event = NewEvent(id=new_id("evt", 0), type=EventType.IMPORTED, body=b"{}", destinations=to)
    assert await store.record_outcome(job, FinalOutcome(status=status, reason=reason), [event])


async def test_each_filter_and_key(store: Store, clock: FakeClock) -> None:
    first = await store.accept(notification("k1"))
    await finish(store, NotificationStatus.FAILED)
    clock.now += 60
    other_route = dataclasses.replace(ROUTE, rule="kyb", vendor_data="hooli:v2")
    second = await store.accept(
        dataclasses.replace(notification("k2", partner="hooli", token="t.w.o"), route=other_route)
    )
    clock.now += 60
    third = await store.accept(notification("k3"))

    async def ids(**filters: object) -> list[str]:
        found = await store.search_notifications(NotificationSearch(**filters))  # type: ignore[arg-type]
        return [n.id for n in found]

    assert await ids() == [third.id, second.id, first.id]
    assert await ids(status=NotificationStatus.FAILED) == [first.id]
    assert await ids(status=NotificationStatus.PENDING, partner="acme") == [third.id]
    assert await ids(partner="hooli") == [second.id]
    assert await ids(rule="kyb") == [second.id]
    assert await ids(partner="acme", rule="kyb") == []
    assert await ids(key=second.id) == [second.id]
    assert await ids(key="evt-k3") == [third.id]
    assert await ids(key="hooli:v2") == [second.id]
    assert await ids(key="sha-of-t.w.o") == [second.id]
    assert await ids(key="sha-of-t.w.o", status=NotificationStatus.FAILED) == []
    assert await ids(key="nothing-like-it") == []
    start = clock.now - 120
    assert await ids(received_from=start + 30) == [third.id, second.id]
    assert await ids(received_until=start + 90) == [second.id, first.id]
    assert await ids(received_from=start + 30, received_until=start + 90) == [second.id]
    page = await store.search_notifications(NotificationSearch(), limit=2)
    rest = await store.search_notifications(NotificationSearch(), limit=2, before=page[-1].id)
    assert [n.id for n in page + rest] == [third.id, second.id, first.id]
    assert all(n.token is None for n in page + rest)


async def test_pending_work_counts_what_waits(store: Store, clock: FakeClock) -> None:
    empty = await store.pending_work()
    assert (empty.pending, empty.import_queue, empty.oldest_pending_age_s) == (0, 0, None)
    await store.accept(notification("a"))
    clock.now += 30
    await store.accept(notification("b"))
    await finish(store, NotificationStatus.IMPORTED)
    clock.now += 10
    waiting = await store.pending_work()
    assert (waiting.pending, waiting.import_queue) == (1, 1)
    assert waiting.oldest_pending_age_s == 10


async def test_outcomes_per_bucket_and_delivery_totals(store: Store, clock: FakeClock) -> None:
    since = clock.now
    await store.accept(notification("a"))
    clock.now += 10
    await finish(store, NotificationStatus.IMPORTED, "crm", "audit")
    await store.accept(notification("b"))
    clock.now += 300
    await finish(store, NotificationStatus.FAILED, "crm")
    buckets = await store.import_outcomes(since=since, bucket_s=300)
    assert sorted((b.bucket, b.status.value, b.count) for b in buckets) == [
        (0, "imported", 1),
        (1, "failed", 1),
    ]
    assert await store.import_outcomes(since=clock.now + 1, bucket_s=300) == []
    totals = {(t.destination, t.status.value): t.count for t in await store.delivery_totals()}
    assert totals == {("audit", "pending"): 1, ("crm", "pending"): 2}
    assert await store.count_deliveries(destination="crm") == 2
    assert await store.count_deliveries(status=None, destination=None) == 3
    assert await store.count_deliveries(status=DeliveryStatus.PENDING, destination="audit") == 1
    assert await store.count_deliveries(status=DeliveryStatus.DEAD) == 0


SEARCHES = [
    "search_notifications_newest",
    "search_notifications_by_status",
    "search_notifications_by_partner",
    "search_notifications_by_rule",
    "search_notifications_by_partner_rule",
    "search_notifications_by_key",
]
#: A value for every parameter any search takes.
EVERY_FILTER = {
    "status": "failed",
    "partner": "acme",
    "rule": "default",
    "key": "x",
    "from_id": first_id_at("ntf", 0),
    "until_id": "ntf_~",
    "limit": 51,
}


def _sqlite_plan(folder: Path, query: str, params: Mapping[str, object]) -> list[str]:
    """The steps of ``query``'s plan on the store in ``folder``, after ANALYZE."""
    connection = sqlite3.connect(folder / "bridge.db")
    try:
        connection.execute("ANALYZE")
        return [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {query}", params)]
    finally:
        connection.close()


def _postgres_plan(target: StoreTarget, query: str, params: Mapping[str, object]) -> list[str]:
    """The lines of ``query``'s plan in the target's schema, with table scans priced out."""
    with psycopg.connect(target.url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("SET search_path TO {}").format(sql.Identifier(str(target.schema)))
        )
        connection.execute("SET enable_seqscan = off")
        return [str(row[0]) for row in connection.execute(f"EXPLAIN {query}".encode(), params)]


@pytest.mark.parametrize("name", SEARCHES)
async def test_sqlite_searches_use_an_index(
    sqlite_store: SqliteStore, tmp_path: Path, name: str
) -> None:
    """The plan walks an index in id order: no table scan, no sort of what it found."""
    await sqlite_store.accept(notification("k"))
    plan = _sqlite_plan(tmp_path, load_queries("sqlite")[name], EVERY_FILTER)
    assert not any(
        step.startswith("SCAN notifications") and "INDEX" not in step for step in plan
    ), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize("name", SEARCHES)
async def test_postgres_searches_have_an_index(
    store: Store, target: StoreTarget, name: str
) -> None:
    """With table scans priced out, each filter still finds an index: no Seq Scan, no Sort."""
    await store.accept(notification("k"))
    plan = _postgres_plan(target, load_queries("postgres")[name], EVERY_FILTER)
    assert not any("Seq Scan on notifications" in step for step in plan), plan
    assert not any(step.lstrip(" ->").startswith("Sort") for step in plan), plan


#: A listing by partner and rule that matches little walked every row of the partner.
PARTNER_AND_RULE = NotificationSearch(partner="acme", rule="kyb")


async def test_sqlite_lists_a_partner_and_a_rule_from_an_index_on_both(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    """The search's plan bounds the index by both filters, not by the partner alone."""
    await sqlite_store.accept(notification("k"))
    query = load_queries("sqlite")[_search.query_name(PARTNER_AND_RULE)]
    plan = _sqlite_plan(tmp_path, query, _search.params(PARTNER_AND_RULE, limit=51, before=None))
    assert any(
        step.startswith("SEARCH notifications USING INDEX") and "partner=? AND rule=?" in step
        for step in plan
    ), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


@pytest.mark.parametrize("backend", ["postgres"])
async def test_postgres_lists_a_partner_and_a_rule_from_an_index_on_both(
    store: Store, target: StoreTarget
) -> None:
    """The index condition holds both filters, not the partner alone."""
    await store.accept(notification("k"))
    query = load_queries("postgres")[_search.query_name(PARTNER_AND_RULE)]
    plan = _postgres_plan(target, query, _search.params(PARTNER_AND_RULE, limit=51, before=None))
    conditions = [step for step in plan if "Index Cond:" in step]
    assert any("partner =" in step and "rule =" in step for step in conditions), plan
    assert not any(step.lstrip(" ->").startswith("Sort") for step in plan), plan
