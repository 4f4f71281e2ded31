"""``store copy``: a SQLite store moves into an empty PostgreSQL store with nothing lost.

The copy is read back through the PostgreSQL store's own verbs and compared with what the
SQLite store answered: every notification's timeline (attempts, events, deliveries, their
attempts), message ids, destination states and tokens. A job that was running when the source
stopped is claimable at once, with its attempt counted and its unanswered import attempt
still ambiguous (so the next attempt reconciles). Refusals leave the target as it was.
"""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from bridge.pipeline.ambiguity import unresolved_ambiguity
from bridge.store import (
    AttemptEnd,
    AttemptReport,
    DeliveryStatus,
    FinalOutcome,
    JobKind,
    Store,
)
from bridge.store.copy import CopyRefused, CopyTarget, copy_store
from bridge.store.postgres import PostgresStore
from bridge.store.sqlite import SqliteStore
from bridge.types import DiditSession, NotificationStatus, Reason
from tests.store.backends import PG_DSN, TOKEN_KEY, drop_pg_schema, new_pg_schema
from tests.store.helpers import FakeClock, notification
from tests.store.test_contract import event
from tests.support.bridge_process import SandboxTarget, make_config

pytestmark = pytest.mark.anyio

OTHER_KEY = bytes(range(1, 33))  # the target seals under its own key, not the tests' usual one


@pytest.fixture(name="schema")
def _schema(pg_server: None) -> Iterator[str]:
    schema = new_pg_schema()
    try:
        yield schema
    finally:
        drop_pg_schema(schema)


@pytest.fixture(name="target")
def _target(schema: str) -> CopyTarget:
    return CopyTarget(url=PG_DSN, schema=schema, token_keys=[OTHER_KEY, TOKEN_KEY])


@pytest.fixture(name="copy_of")
async def _copy_of(target: CopyTarget, clock: FakeClock) -> AsyncIterator[PostgresStore]:
    store = PostgresStore.open(
        PG_DSN, clock=clock, token_keys=[OTHER_KEY], schema=target.schema, pool_size=2
    )
    yield store
    await store.close()


async def fill(store: Store, clock: FakeClock) -> dict[str, str]:
    """Pending, running (an unanswered attempt), failed, imported with a delivered and a dead
    delivery, and a disabled destination; the notification ids by name."""
    ids = {
        name: (await store.accept(notification(f"k-{name}", message_id=f"m-{name}"))).id
        for name in ("pending", "running", "failed", "imported")
    }
    jobs = {
        job.ref: job for job in await store.claim(JobKind.IMPORT, owner="w1", lease_s=60, limit=4)
    }
    assert await store.release(jobs[ids["pending"]])
    assert await store.begin_import_attempt(jobs[ids["running"]]) == 1  # never answered
    reason = Reason(code="insufficient_balance", message="no credits", http_status=402)
    failed = FinalOutcome(status=NotificationStatus.FAILED, reason=reason)
    assert await store.record_outcome(jobs[ids["failed"]], failed, [])
    job = jobs[ids["imported"]]
    attempt = await store.begin_import_attempt(job)
    assert attempt is not None
    session = DiditSession(session_id="sess-1", session_number=7, status="In Review")
    imported = FinalOutcome(status=NotificationStatus.IMPORTED, session=session)
    ending = AttemptEnd(attempt=attempt, http_status=201, result="imported", latency_ms=12)
    assert await store.record_outcome(job, imported, [event(clock, "crm", "audit")], ending=ending)
    deliveries = await store.claim(JobKind.DELIVER, owner="w1", lease_s=60, limit=2)
    by_lane = {job.lane: job for job in deliveries}
    assert await store.mark_delivered(by_lane["crm"], AttemptReport(http_status=204, latency_ms=3))
    gone = AttemptReport(http_status=410, latency_ms=4, response_excerpt=b"gone", error="410")
    assert await store.delivery_failed(by_lane["audit"], gone, retry_at=None)
    await store.set_destination_enabled("audit", enabled=False, reason="410 Gone")
    clock.advance(5)
    return ids


async def test_everything_moves_and_pending_work_resumes(
    tmp_path: Path, clock: FakeClock, target: CopyTarget, copy_of: PostgresStore
) -> None:
    source = SqliteStore.open(tmp_path / "bridge.db", clock=clock)
    ids = await fill(source, clock)
    timelines = {name: await source.timeline(id_) for name, id_ in ids.items()}
    tokens = {name: (await source.load_notification(id_)) for name, id_ in ids.items()}
    listed = await source.list_notifications()
    deliveries = await source.list_deliveries()
    states = await source.destination_states()
    await source.close()

    counts = await copy_store(tmp_path / "bridge.db", target, now=clock())

    assert counts["notifications"] == 4
    assert (counts["message_ids"], counts["events"], counts["deliveries"]) == (4, 1, 2)
    assert (counts["import_attempts"], counts["delivery_attempts"]) == (2, 2)
    assert list(counts).index("notifications") < list(counts).index("events")
    for name, id_ in ids.items():
        assert await copy_of.timeline(id_) == timelines[name], name
        assert await copy_of.load_notification(id_) == tokens[name], name  # tokens open
        assert await copy_of.find_message("acme", f"m-{name}") == id_
    assert await copy_of.list_notifications() == listed
    assert await copy_of.list_deliveries() == deliveries
    assert await copy_of.destination_states() == states
    assert [d.status for d in deliveries] == [DeliveryStatus.DEAD, DeliveryStatus.DELIVERED]

    # The crashed lease is released at once; its unanswered attempt still forces a reconcile.
    claimed = await copy_of.claim(JobKind.IMPORT, owner="w2", lease_s=60, limit=4)
    assert {job.ref: job.attempts for job in claimed} == {ids["running"]: 2, ids["pending"]: 1}
    assert unresolved_ambiguity(await copy_of.list_import_attempts(ids["running"]))
    # New work gets new job ids after the copied ones.
    fresh = await copy_of.accept(notification("k-new", message_id="m-new"))
    assert not fresh.duplicate
    assert [job.ref for job in await copy_of.claim(JobKind.IMPORT, owner="w2", lease_s=60)] == [
        fresh.id
    ]
    # A retry of a copied message is a duplicate on PostgreSQL too.
    again = await copy_of.accept(notification("k-pending", message_id="m-pending"))
    assert (again.duplicate, again.id) == (True, ids["pending"])

    with psycopg.connect(PG_DSN) as connection:
        raw = connection.execute(
            sql.SQL("SELECT token_sealed FROM {} WHERE token_sealed IS NOT NULL").format(
                sql.Identifier(target.schema, "notifications")
            )
        ).fetchall()
    assert raw
    assert all(b"header.claims.signature" not in bytes(row[0]) for row in raw)


async def test_a_target_holding_rows_is_refused_and_left_as_it_was(
    tmp_path: Path, clock: FakeClock, target: CopyTarget, copy_of: PostgresStore
) -> None:
    source = SqliteStore.open(tmp_path / "bridge.db", clock=clock)
    await source.accept(notification("k-source"))
    await source.close()
    there = await copy_of.accept(notification("k-already-there"))

    with pytest.raises(CopyRefused, match=r"target is not empty \(.*notifications"):
        await copy_store(tmp_path / "bridge.db", target, now=clock())

    assert [n.id for n in await copy_of.list_notifications()] == [there.id]


async def test_a_column_the_target_lacks_stops_the_copy_before_anything_is_written(
    tmp_path: Path, clock: FakeClock, target: CopyTarget, copy_of: PostgresStore
) -> None:
    source = SqliteStore.open(tmp_path / "bridge.db", clock=clock)
    await source.accept(notification("k-source"))
    await source.close()
    with sqlite3.connect(tmp_path / "bridge.db") as connection:
        connection.execute("ALTER TABLE jobs ADD COLUMN priority INTEGER")  # a newer version's

    with pytest.raises(CopyRefused, match=r"the target lacks .*jobs\.priority"):
        await copy_store(tmp_path / "bridge.db", target, now=clock())

    assert await copy_of.list_notifications() == []


async def test_a_store_a_bridge_is_using_is_refused(
    tmp_path: Path, clock: FakeClock, target: CopyTarget, copy_of: PostgresStore
) -> None:
    source = SqliteStore.open(tmp_path / "bridge.db", clock=clock)
    await source.accept(notification("k-source"))
    await source.recover_orphans(
        "serve-1", heartbeat_s=1
    )  # what a running worker does before it claims
    try:
        with pytest.raises(CopyRefused, match="a bridge is running on"):
            await copy_store(tmp_path / "bridge.db", target, now=clock())
    finally:
        await source.close()
    assert await copy_of.list_notifications() == []


async def test_a_missing_source_is_refused_and_not_created(
    tmp_path: Path, clock: FakeClock, target: CopyTarget
) -> None:
    with pytest.raises(CopyRefused, match="no SQLite store at"):
        await copy_store(tmp_path / "typo.db", target, now=clock())
    assert not (tmp_path / "typo.db").exists()


def run_copy(
    tmp_path: Path, *args: str, store: Mapping[str, object]
) -> subprocess.CompletedProcess[str]:
    """``share-bridge store copy *args`` with a configuration whose store section is ``store``."""
    target = SandboxTarget(
        base_url="http://127.0.0.1:9",
        application_id="00000000-0000-4000-8000-000000000000",
        api_key="sbx_copy_test",
        kyc_workflow_id="00000000-0000-4000-8000-0000000000c1",
        kyb_workflow_id="00000000-0000-4000-8000-0000000000b1",
        webhook_secret="copy-test-webhook-secret",
    )
    document = make_config(target, db_path=tmp_path / "unused.db", port=8080, store=store)
    config_path = tmp_path / "bridge.yaml"
    config_path.write_text(yaml.safe_dump(document))
    return subprocess.run(
        [sys.executable, "-m", "bridge", "store", "copy", *args, "--config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_command_says_why_it_refuses_and_exits_1(
    tmp_path: Path, clock: FakeClock, target: CopyTarget, copy_of: PostgresStore
) -> None:
    source = SqliteStore.open(tmp_path / "bridge.db", clock=clock)
    await source.accept(notification("k-source"))
    await source.close()
    await copy_of.accept(notification("k-already-there"))
    key = base64.urlsafe_b64encode(OTHER_KEY).decode()
    pg = {"url": PG_DSN, "schema": target.schema, "token_keys": [key]}
    source_url = f"sqlite:///{tmp_path / 'bridge.db'}"

    refused = run_copy(tmp_path, "--from", source_url, store=pg)
    assert refused.returncode == 1
    assert "target is not empty" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stdout == ""
    without_keys = run_copy(
        tmp_path, "--from", source_url, "--to", PG_DSN, store={"url": source_url}
    )
    assert without_keys.returncode == 1
    assert "store.token_keys" in without_keys.stderr
    assert len(await copy_of.list_notifications()) == 1
