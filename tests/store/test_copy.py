"""``bridge store copy``: a SQLite store moves into an empty PostgreSQL database, whole.

The command runs as a process, as an operator runs it. The SQLite store holds every kind of
work: a queued import, an import running under a lease (its worker gone), a failed one still
holding its token, an imported one whose delivery died, and a disabled destination.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.store import (
    AttemptReport,
    DeliveryStatus,
    JobKind,
    Outcome,
    Store,
    StoreStats,
)
from bridge.store.sqlite import SqliteStore
from bridge.types import NotificationStatus, Reason
from tests.store.backends import PG_DSN, TOKEN_KEY, StoreTarget
from tests.store.helpers import FakeClock, notification
from tests.store.test_contract import event

pytestmark = pytest.mark.anyio


@pytest.fixture(name="backend")
def _postgres_only() -> str:
    return "postgres"


def run_copy(source: Path, target: StoreTarget) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BRIDGE_TOKEN_KEY": base64.urlsafe_b64encode(TOKEN_KEY).decode()}
    return subprocess.run(
        [sys.executable, "-m", "bridge", "store", "copy", "--from", f"sqlite:///{source}",
         "--to", PG_DSN, "--schema", str(target.schema)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


async def fill(store: SqliteStore, clock: FakeClock) -> dict[str, str]:
    """Every kind of work; the ids by what they are."""
    ids = {}
    for name in ("queued", "running", "failed", "imported"):
        ids[name] = (await store.accept(notification(name, token=f"tok.{name}.sig"))).id
    jobs = {j.ref: j for j in await store.claim(JobKind.IMPORT, owner="w", lease_s=60, limit=4)}
    assert await store.release(jobs[ids["queued"]])
    assert await store.begin_import_attempt(jobs[ids["running"]]) == 1  # sent, then the crash
    reason = Reason(code="didit_unavailable", message="gave up", http_status=503)
    failed = Outcome(status=NotificationStatus.FAILED, reason=reason)
    assert await store.record_outcome(jobs[ids["failed"]], failed, [])
    imported = Outcome(status=NotificationStatus.IMPORTED)
    assert await store.record_outcome(jobs[ids["imported"]], imported, [event(clock, "crm")])
    [deliver] = await store.claim(JobKind.DELIVER, owner="w", lease_s=60)
    report = AttemptReport(http_status=500, latency_ms=3, response_excerpt=b"no", error=None)
    assert await store.delivery_failed(deliver, report, retry_at=None)
    await store.set_destination_enabled("audit", enabled=False, reason="maintenance")
    return ids


async def test_a_copy_moves_everything_and_releases_the_leases(
    tmp_path: Path, target: StoreTarget, clock: FakeClock, store: Store
) -> None:
    source = tmp_path / "bridge.db"
    sqlite = SqliteStore.open(source, clock=clock)
    try:
        ids = await fill(sqlite, clock)
        before = await sqlite.list_notifications()
        before_stats = await sqlite.stats()
        before_timeline = await sqlite.timeline(ids["imported"])
    finally:
        await sqlite.close()

    done = run_copy(source, target)
    assert done.returncode == 0, done.stderr
    assert "copied 4 notifications" in done.stdout
    assert "1 delivery_attempts" in done.stdout
    assert "tok." not in done.stdout + done.stderr

    assert await store.list_notifications() == before
    stats = await store.stats()
    running = before_stats.jobs["import"]["running"]
    assert running == 1
    assert stats == StoreStats(
        notifications=before_stats.notifications,
        jobs={**before_stats.jobs, "import": {**before_stats.jobs["import"], "running": 0,
              "queued": before_stats.jobs["import"]["queued"] + running}},
        deliveries=before_stats.deliveries,
        oldest_pending_age_s=before_stats.oldest_pending_age_s,
    )  # fmt: skip
    assert await store.timeline(ids["imported"]) == before_timeline
    for name in ("queued", "running", "failed"):  # the tokens were sealed, and open
        found = await store.load_notification(ids[name])
        assert found is not None
        assert found.token == f"tok.{name}.sig"
    [state] = [s for s in await store.destination_states() if s.name == "audit"]
    assert (state.enabled, state.reason) == (False, "maintenance")
    dead = await store.list_deliveries(status=DeliveryStatus.DEAD)
    assert len(dead) == 1

    # The running import's lease is released: claimable now, its attempt still counted, and
    # its unanswered attempt still on record (the next attempt reconciles first).
    jobs = {j.ref: j for j in await store.claim(JobKind.IMPORT, owner="new", lease_s=60, limit=5)}
    assert set(jobs) == {ids["queued"], ids["running"]}
    assert jobs[ids["running"]].attempts == 2
    assert await store.last_attempt_ambiguous(ids["running"])
    # New jobs are numbered after the copied ones.
    await store.accept(notification("after-the-copy"))
    assert await store.claim(JobKind.IMPORT, owner="new", lease_s=60)


async def test_a_copy_refuses_a_target_that_holds_anything(
    tmp_path: Path, target: StoreTarget, clock: FakeClock, store: Store
) -> None:
    source = tmp_path / "bridge.db"
    sqlite = SqliteStore.open(source, clock=clock)
    try:
        await fill(sqlite, clock)
    finally:
        await sqlite.close()
    kept = (await store.accept(notification("already-here"))).id

    done = run_copy(source, target)
    assert done.returncode == 1
    assert "not empty" in done.stderr
    assert [n.id for n in await store.list_notifications()] == [kept]


def test_a_copy_from_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    done = run_copy(tmp_path / "nothing.db", StoreTarget(url=PG_DSN, schema="unused"))
    assert (done.returncode, done.stdout) == (1, "")
    assert "no SQLite store at" in done.stderr
    assert "Traceback" not in done.stderr
