"""History retention (``Store.delete_history``), on every backend: old final notifications go
with every row of theirs, in bounded batches; pending, recent, retryable and undelivered ones
stay, and a share or message id of a deleted one is new again."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import replace

import psycopg
import pytest
from psycopg import sql

from bridge.store import (
    AttemptEnd,
    AttemptReport,
    FinalOutcome,
    JobKind,
    RetryResult,
    StatusChange,
    Store,
    sqlite_path,
)
from bridge.types import DiditSession, NotificationStatus, Reason
from tests.store.backends import StoreTarget
from tests.store.helpers import ROUTE, FakeClock, notification
from tests.store.test_contract import claim_one, event

pytestmark = pytest.mark.anyio

DAY = 86_400.0
#: Every table holding a notification's history.
HISTORY_TABLES = (
    "notifications",
    "message_ids",
    "jobs",
    "import_attempts",
    "events",
    "deliveries",
    "delivery_attempts",
    "route_changes",
)


def table_counts(target: StoreTarget) -> Counter[str]:
    """How many rows each history table holds, read beside the store."""
    path = sqlite_path(target.url)
    if path is None:
        return _pg_counts(target)
    connection = sqlite3.connect(path)
    try:
        return Counter(
            {
                table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
                for table in HISTORY_TABLES
            }
        )
    finally:
        connection.close()


def _pg_counts(target: StoreTarget) -> Counter[str]:
    counts: Counter[str] = Counter()
    with psycopg.connect(target.url, autocommit=True) as connection:
        schema = sql.Identifier(str(target.schema))
        connection.execute(sql.SQL("SET search_path = {}").format(schema))
        for table in HISTORY_TABLES:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            row = connection.execute(query).fetchone()
            counts[table] = row[0] if row else 0
    return counts


async def imported(
    store: Store,
    key: str,
    *,
    message_id: str,
    delivery: str | None,
    clock: FakeClock,
    didit_status: str | None = "Approved",
) -> str:
    """An imported notification with an import attempt and one delivery to crm, then
    ``delivery``: "delivered", "dead", or None (left pending); its Didit session's status is
    ``didit_status``."""
    accepted = await store.accept(notification(key, message_id=message_id))
    job = await claim_one(store)
    assert job.ref == accepted.id
    attempt = await store.begin_import_attempt(job)
    assert attempt is not None
    ending = AttemptEnd(attempt=attempt, http_status=201, result="imported", latency_ms=5)
    outcome = FinalOutcome(
        status=NotificationStatus.IMPORTED,
        session=DiditSession(session_id=f"s-{key}", status=didit_status),
    )
    assert await store.record_outcome(job, outcome, [event(clock, "crm")], ending=ending)
    if delivery is not None:
        sending = await claim_one(store, kind=JobKind.DELIVER)
        report = AttemptReport(http_status=200 if delivery == "delivered" else 500, latency_ms=3)
        if delivery == "delivered":
            assert await store.mark_delivered(sending, report)
        else:
            assert await store.delivery_failed(sending, report, retry_at=None)
    return accepted.id


async def failed(store: Store, key: str, *, deadline: float | None) -> str:
    """A failed notification, its token kept for a retry."""
    accepted = await store.accept(notification(key, deadline=deadline))
    job = await claim_one(store)
    assert job.ref == accepted.id
    reason = Reason(code="insufficient_balance", message="pay", http_status=402)
    assert await store.record_outcome(
        job, FinalOutcome(status=NotificationStatus.FAILED, reason=reason), []
    )
    return accepted.id


async def rerouted_then_rejected(store: Store, key: str, clock: FakeClock) -> str:
    """Failed, retried on another route (a route change), then rejected."""
    notification_id = await failed(store, key, deadline=clock() + 3_600)
    other = replace(ROUTE, workflow_id="another-workflow")
    assert await store.retry_notification(notification_id, route=other) is RetryResult.REQUEUED
    job = await claim_one(store)
    reason = Reason(code="already_imported", message="no", http_status=403)
    outcome = FinalOutcome(status=NotificationStatus.REJECTED, reason=reason)
    assert await store.record_outcome(job, outcome, [])
    return notification_id


async def delete_all(store: Store, *, limit: int) -> list[int]:
    """Batches of ``delete_history`` until one comes back short, as ``serve`` runs them."""
    batches = [await store.delete_history(older_than_s=DAY, limit=limit)]
    while batches[-1] == limit:
        batches.append(await store.delete_history(older_than_s=DAY, limit=limit))
    return batches


async def test_old_final_history_goes_with_all_its_rows_and_the_rest_stays(
    store: Store, clock: FakeClock, target: StoreTarget
) -> None:
    """Old final notifications whose deliveries are finished are deleted, every row of theirs
    in every table, a bounded batch at a time; a pending one, a failed one whose token a retry
    may still use, one with a delivery pending and recent ones stay, whole."""
    await store.ping()
    old_gone = [
        await imported(store, "delivered", message_id="m-d", delivery="delivered", clock=clock),
        await imported(store, "dead", message_id="m-x", delivery="dead", clock=clock),
        await rerouted_then_rejected(store, "rerouted", clock),
    ]
    duplicate = await store.accept(notification("delivered", message_id="m-d2"))
    assert duplicate.duplicate
    assert duplicate.id == old_gone[0]
    gone = table_counts(target)
    old_kept = [
        await failed(store, "failed-kept", deadline=None),
        await imported(store, "undelivered", message_id="m-u", delivery=None, clock=clock),
        (await store.accept(notification("pending", deadline=None))).id,
    ]
    clock.advance(2 * DAY)
    recent = [
        await imported(store, "recent", message_id="m-r", delivery=None, clock=clock),
        await rerouted_then_rejected(store, "recent-rejected", clock),
    ]
    before = table_counts(target)

    assert await delete_all(store, limit=2) == [2, 1]

    assert set(gone) == set(HISTORY_TABLES), "every table holds some of the deleted history"
    assert table_counts(target) == before - gone
    for notification_id in old_gone:
        assert await store.load_notification(notification_id) is None
        assert await store.timeline(notification_id) is None
    listed = {n.id for n in await store.list_notifications(limit=100)}
    assert listed == {*old_kept, *recent}


async def test_a_failed_notification_goes_once_no_retry_can_use_its_token(
    store: Store, clock: FakeClock
) -> None:
    """A failed notification stays while an operator may retry it (its token kept), and goes
    at the first sweep after ``erase_stale_tokens`` erased the token."""
    failed_id = await failed(store, "failed", deadline=None)
    clock.advance(2 * DAY)
    assert await store.delete_history(older_than_s=DAY, limit=10) == 0
    assert await store.erase_stale_tokens() == 1
    assert await store.delete_history(older_than_s=DAY, limit=10) == 1
    assert await store.load_notification(failed_id) is None


async def test_a_deleted_share_and_message_id_are_accepted_again(
    store: Store, clock: FakeClock
) -> None:
    """Dedupe lasts as long as the history: once an imported notification is deleted, the same
    share, even under the same message id, is a new notification (Didit answers
    already_imported when it is imported again)."""
    original = await imported(store, "k", message_id="m-1", delivery="delivered", clock=clock)
    assert (await store.accept(notification("k", message_id="m-1"))).duplicate
    clock.advance(2 * DAY)
    assert await store.delete_history(older_than_s=DAY, limit=10) == 1
    again = await store.accept(notification("k", message_id="m-1"))
    assert not again.duplicate
    assert again.id != original
    stored = await store.load_notification(again.id)
    assert stored is not None
    assert stored.status is NotificationStatus.PENDING


async def test_nothing_is_deleted_before_its_time(store: Store, clock: FakeClock) -> None:
    """A final notification younger than the retention stays."""
    kept = await imported(store, "k", message_id="m-1", delivery="delivered", clock=clock)
    clock.advance(DAY - 1)
    assert await store.delete_history(older_than_s=DAY, limit=10) == 0
    assert await store.load_notification(kept) is not None


@pytest.mark.parametrize("undecided", ["In Review", None])
async def test_an_undecided_session_is_kept_until_didit_decides(
    store: Store, clock: FakeClock, undecided: str | None
) -> None:
    """An imported notification whose Didit session is not decided yet (In Review, or no
    status known) stays past the retention, so Didit's decision webhook still finds it; once
    the decision is recorded it goes at the next sweep. A decided status is recognised however
    Didit spells it."""
    waiting = await imported(
        store, "k", message_id="m-1", delivery="delivered", clock=clock, didit_status=undecided
    )
    spelled = await imported(
        store, "s", message_id="m-2", delivery="delivered", clock=clock, didit_status=" declined"
    )
    clock.advance(2 * DAY)
    assert await store.delete_history(older_than_s=DAY, limit=10) == 1
    assert await store.load_notification(spelled) is None
    found = await store.find_by_session("s-k")
    assert found is not None
    assert found.id == waiting

    decision = await store.record_status_update(
        waiting, didit_status="Approved", signed_at=clock(), event=event(clock, "crm")
    )
    assert decision is StatusChange.RECORDED
    assert await store.delete_history(older_than_s=DAY, limit=10) == 0, "its delivery is pending"
    sending = await claim_one(store, kind=JobKind.DELIVER)
    assert await store.mark_delivered(sending, AttemptReport(http_status=200, latency_ms=3))
    assert await store.delete_history(older_than_s=DAY, limit=10) == 1
    assert await store.find_by_session("s-k") is None
