"""What only the PostgreSQL backend promises: migrations once across replicas, unavailability
as ``StoreUnavailable``, the ``migrate`` command, and no share token in the clear at rest."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from bridge.errors import StoreUnavailable
from bridge.store import FairShare, FinalOutcome, JobKind, NewNotification, Store, open_store
from bridge.store.postgres import PostgresStore
from bridge.store.queries import load_migrations, load_queries
from bridge.types import DiditSession, NotificationStatus, Reason
from tests.config.conftest import MINIMAL
from tests.store.backends import PG_DSN, TOKEN_KEY, StoreTarget
from tests.store.helpers import FakeClock, notification
from tests.store.test_contract import event as contract_event
from tests.store.test_retention import DAY as RETENTION_DAY
from tests.store.test_retention import imported as retention_imported
from tests.support.waiting import wait_until_async

pytestmark = pytest.mark.anyio


@pytest.fixture(name="backend")
def _postgres_only() -> str:
    return "postgres"


async def _query(
    target: StoreTarget, query: str, params: Sequence[object] = ()
) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(target.url) as connection:
        await connection.execute(
            sql.SQL("SET search_path = {}").format(sql.Identifier(str(target.schema)))
        )
        cursor = await connection.execute(query.encode(), params or None)
        return await cursor.fetchall()


async def test_replicas_starting_together_migrate_once(
    open_: Callable[[], Store], target: StoreTarget
) -> None:
    stores = [open_() for _ in range(5)]
    await asyncio.gather(*(store.ping() for store in stores))
    rows = await _query(target, "SELECT version, name FROM schema_version ORDER BY version")
    assert rows == [(m.version, m.name) for m in load_migrations("postgres")]
    more = open_()
    assert isinstance(more, PostgresStore)
    assert await more.migrate() == rows[-1][0]
    assert len(await _query(target, "SELECT * FROM schema_version")) == len(rows)


async def test_an_unreachable_server_is_store_unavailable(clock: FakeClock) -> None:
    """Every verb answers StoreUnavailable, never a driver error, and the store recovers
    nothing it did not have (nothing was written)."""
    store = open_store(
        "postgresql://postgres@127.0.0.1:9/nowhere", clock=clock, token_keys=[TOKEN_KEY]
    )
    try:
        with pytest.raises(StoreUnavailable):
            await store.accept(notification())
        with pytest.raises(StoreUnavailable):
            await store.claim(JobKind.IMPORT, owner="w", lease_s=30)
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.close()


def test_a_postgres_store_needs_a_token_key(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="key"):
        open_store(PG_DSN, clock=clock)


async def test_tokens_are_sealed_and_a_copied_seal_does_not_open(
    store: Store, target: StoreTarget
) -> None:
    first = await store.accept(notification("a", token="first.secret.token"))
    second = await store.accept(notification("b", token="second.secret.token"))
    rows = await _query(target, "SELECT id, token_sealed FROM notifications ORDER BY id")
    assert all(b"secret" not in sealed for _, sealed in rows if isinstance(sealed, bytes))
    assert [type(sealed) for _, sealed in rows] == [bytes, bytes]
    loaded = await store.load_notification(first.id)
    assert loaded is not None
    assert loaded.token == "first.secret.token"
    await _query(
        target,
        "UPDATE notifications SET token_sealed = (SELECT token_sealed FROM notifications"
        " WHERE id = %s) WHERE id = %s RETURNING id",
        [first.id, second.id],
    )
    with pytest.raises(StoreUnavailable, match="opens with none"):
        await store.load_notification(second.id)


async def test_the_migrate_command_applies_the_schema_and_exits(
    tmp_path: Path, target: StoreTarget
) -> None:
    key = base64.urlsafe_b64encode(TOKEN_KEY).decode()
    config = tmp_path / "bridge.yaml"
    config.write_text(
        MINIMAL
        + f"store:\n  url: {target.url}\n  schema: {target.schema}\n"
        + "  token_keys: ['${BRIDGE_TOKEN_KEY}']\n"
    )
    environ = {**os.environ, "BRIDGE_TOKEN_KEY": key}
    command = [sys.executable, "-m", "bridge", "migrate", "--config", str(config)]
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=environ, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout
    assert key not in done.stdout + done.stderr
    rows = await _query(target, "SELECT version FROM schema_version")
    assert len(rows) == len(load_migrations("postgres"))


class TestTokenAtRest:
    """After the notifications are final, neither the database's files nor a dump of it hold
    any token in the clear (nor, sealed, while they are pending)."""

    async def test_no_token_in_the_data_files_the_wal_or_a_dump(
        self, store: Store, target: StoreTarget, clock: FakeClock
    ) -> None:
        tokens = [f"eyJhbGciOiJFUzI1NiJ9.{uuid.uuid4().hex}.sig{i}" for i in range(12)]
        for i, token in enumerate(tokens):
            new = notification(f"k{i}", token=token, message_id=f"m{i}")
            digest = hashlib.sha256(token.encode()).hexdigest()  # the helper's is not a hash
            await store.accept(dataclasses.replace(new, token_sha256=digest))
        statuses = [NotificationStatus.IMPORTED, NotificationStatus.REJECTED]
        statuses += [NotificationStatus.EXPIRED, NotificationStatus.FAILED]
        for i, job in enumerate(await store.claim(JobKind.IMPORT, owner="w", lease_s=30, limit=12)):
            status = statuses[i % 4]
            session = DiditSession(session_id=f"s{i}") if status.is_final else None
            reason = Reason(code="r", message="m", http_status=403)
            outcome = FinalOutcome(status=status, session=session, reason=reason)
            assert await store.record_outcome(job, outcome, [])
        clock.advance(3_600)  # past the deadline: failed ones are erased too
        assert await store.erase_stale_tokens() == 3
        needles = [token.encode() for token in tokens]

        files = await _relation_files(target)
        assert files, "no data file found for the test's schema"
        found = [path for path in files if _holds_any(path, needles)]
        assert found == []
        assert not any(_holds_any(path, needles) for path in _wal_files())
        dump = await asyncio.to_thread(
            subprocess.run,
            ["pg_dump", "--schema", str(target.schema), target.url],
            capture_output=True,
            check=True,
        )
        assert b"CREATE TABLE" in dump.stdout
        assert not any(needle in dump.stdout for needle in needles)


async def _relation_files(target: StoreTarget) -> list[Path]:
    """Every file of the schema's tables, indexes and TOAST, after a checkpoint."""
    async with await psycopg.AsyncConnection.connect(target.url, autocommit=True) as connection:
        await connection.execute("CHECKPOINT")
        cursor = await connection.execute("SHOW data_directory")
        row = await cursor.fetchone()
        assert row is not None
        data = Path(str(row[0]))
        cursor = await connection.execute(
            "SELECT pg_relation_filepath(c.oid) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE (n.nspname = %s OR c.oid IN (SELECT reltoastrelid FROM pg_class k"
            "   JOIN pg_namespace kn ON kn.oid = k.relnamespace WHERE kn.nspname = %s))"
            " AND pg_relation_filepath(c.oid) IS NOT NULL",
            [target.schema, target.schema],
        )
        relations = [str(r[0]) for r in await cursor.fetchall()]
    files: list[Path] = []
    for relation in relations:
        base = data / relation
        files += [path for path in base.parent.glob(base.name + "*") if path.is_file()]
    return files


def _wal_files() -> list[Path]:
    with psycopg.connect(PG_DSN) as connection:
        row = connection.execute("SHOW data_directory").fetchone()
    assert row is not None
    return sorted(path for path in (Path(str(row[0])) / "pg_wal").iterdir() if path.is_file())


def _holds_any(path: Path, needles: list[bytes]) -> bool:
    content = path.read_bytes()
    return any(needle in content for needle in needles)


async def test_rotating_the_token_key_as_the_readme_says(
    target: StoreTarget, clock: FakeClock
) -> None:
    """README "Rotate the token key": the new key first, the old kept until the tokens sealed
    under it are erased, then dropped. Nothing is re-sealed, no token is lost."""
    old, new = TOKEN_KEY, bytes(range(100, 132))

    def open_with(*keys: bytes) -> Store:
        return open_store(target.url, clock=clock, schema=target.schema, token_keys=keys)

    before = open_with(old)
    sealed_old = await before.accept(notification("a", token="sealed.under.old"))
    await before.close()

    during = open_with(new, old)
    sealed_new = await during.accept(notification("b", token="sealed.under.new"))
    for notification_id, token in [
        (sealed_old.id, "sealed.under.old"),
        (sealed_new.id, "sealed.under.new"),
    ]:
        loaded = await during.load_notification(notification_id)
        assert loaded is not None
        assert loaded.token == token
    # the old token reaches its final state and is erased, as every token does
    for job in await during.claim(JobKind.IMPORT, owner="w", lease_s=30, limit=2):
        if job.ref == sealed_old.id:
            outcome = FinalOutcome(
                status=NotificationStatus.IMPORTED, session=DiditSession(session_id="s")
            )
            assert await during.record_outcome(job, outcome, [])
    await during.close()

    after = open_with(new)
    try:
        loaded = await after.load_notification(sealed_new.id)
        assert loaded is not None
        assert loaded.token == "sealed.under.new"
        erased = await after.load_notification(sealed_old.id)
        assert erased is not None
        assert erased.token is None
    finally:
        await after.close()


async def test_dropping_a_key_too_early_is_a_clear_error_not_a_lost_token(
    target: StoreTarget, clock: FakeClock
) -> None:
    first = open_store(target.url, clock=clock, schema=target.schema, token_keys=[TOKEN_KEY])
    accepted = await first.accept(notification("a"))
    await first.close()
    other = open_store(
        target.url, clock=clock, schema=target.schema, token_keys=[bytes(range(1, 33))]
    )
    try:
        with pytest.raises(StoreUnavailable, match="token_keys"):
            await other.load_notification(accepted.id)
    finally:
        await other.close()
    again = open_store(target.url, clock=clock, schema=target.schema, token_keys=[TOKEN_KEY])
    try:
        loaded = await again.load_notification(accepted.id)
        assert loaded is not None
        assert loaded.token == notification().token
    finally:
        await again.close()


async def test_one_item_postgres_cannot_store_fails_alone_in_its_group(store: Store) -> None:
    """30 accepts and one holding a NUL character (PostgreSQL text cannot): 30 answers and one
    ValueError, never the whole group; repeats inside the group still dedupe."""
    news = [notification(f"k{i}", message_id=f"m{i}") for i in range(30)]
    news.insert(15, notification("bad\x00key", message_id="bad"))
    news.append(notification("k3", message_id="again"))
    results = await _accept_together(store, news)
    assert isinstance(results.pop(15), ValueError)
    assert not any(isinstance(result, BaseException) for result in results)
    assert results[-1].duplicate
    assert results[-1].id == results[3].id
    assert len({result.id for result in results}) == 30
    stats = await store.stats()
    assert stats.notifications["pending"] == 30
    assert await store.find_message("acme", "again") == results[3].id
    assert await store.find_message("acme", "bad") is None


def _unindexable() -> str:
    """Text too long for a PostgreSQL index row (about 2.7 kB), even compressed."""
    return base64.b64encode(os.urandom(6_000)).decode()


OVERSIZED = {
    "business key": lambda new: dataclasses.replace(new, business_key=_unindexable()),
    "partner event id": lambda new: dataclasses.replace(new, partner_event_id=_unindexable()),
    "vendor_data": lambda new: dataclasses.replace(
        new, route=dataclasses.replace(new.route, vendor_data=_unindexable())
    ),
}


@pytest.mark.parametrize("field", sorted(OVERSIZED))
async def test_one_value_too_large_to_index_fails_alone_in_its_group(
    store: Store, field: str
) -> None:
    """An accept whose indexed value overflows an index row (SQLSTATE 54000) among 20 others:
    it fails with ValueError, the 20 are accepted, and the store stays available."""
    news = [notification(f"k{i}", message_id=f"m{i}") for i in range(20)]
    news.insert(10, OVERSIZED[field](notification("big", message_id="big")))
    results = await _accept_together(store, news)
    assert isinstance(results.pop(10), ValueError)
    assert not any(isinstance(result, BaseException) for result in results)
    assert len({result.id for result in results}) == 20
    stats = await store.stats()
    assert stats.notifications["pending"] == 20
    assert await store.find_message("acme", "big") is None


async def _accept_together(store: Store, news: list[NewNotification]) -> list[Any]:
    assert isinstance(store, PostgresStore)
    await store.migrate()
    return list(await asyncio.gather(*(store.accept(new) for new in news), return_exceptions=True))


async def test_work_committed_by_one_store_wakes_the_workers_of_another(
    open_: Callable[[], Store], clock: FakeClock
) -> None:
    """LISTEN/NOTIFY: an accept on replica A wakes B's import workers; an outcome with
    deliveries wakes its delivery workers; a rolled-back outcome wakes nobody."""
    a, b = open_(), open_()
    woken: dict[JobKind, asyncio.Event] = {kind: asyncio.Event() for kind in JobKind}
    for kind, flag in woken.items():
        b.on_work(kind, flag.set)
    await b.ping()  # connected: B listens from now on
    await wait_until_async(  # the first listen
        lambda: all(flag.is_set() for flag in woken.values()), "every kind woken"
    )
    for flag in woken.values():
        flag.clear()

    await a.accept(notification("k"))
    await asyncio.wait_for(woken[JobKind.IMPORT].wait(), 5)
    assert not woken[JobKind.DELIVER].is_set()

    [job] = await a.claim(JobKind.IMPORT, owner="w", lease_s=30)
    clock.advance(31)
    [thief] = await a.claim(JobKind.IMPORT, owner="x", lease_s=30)
    outcome = FinalOutcome(status=NotificationStatus.IMPORTED)
    assert not await a.record_outcome(job, outcome, [contract_event(clock, "crm")])  # fenced
    woken[JobKind.IMPORT].clear()
    await a.accept(notification("later"))  # NOTIFYs arrive in commit order: a fenced one first
    await asyncio.wait_for(woken[JobKind.IMPORT].wait(), 5)
    assert not woken[JobKind.DELIVER].is_set()
    assert await a.record_outcome(thief, outcome, [contract_event(clock, "crm")])
    await asyncio.wait_for(woken[JobKind.DELIVER].wait(), 5)


async def test_a_lanes_cap_holds_for_replicas_claiming_together(
    open_: Callable[[], Store], clock: FakeClock
) -> None:
    """Three replicas claim at once, round after round: a capped partner never gets more
    claims in a minute than its cap, counted over all of them, and the others' work goes on."""
    replicas = [open_() for _ in range(3)]
    await asyncio.gather(*(replica.ping() for replica in replicas))
    for k in range(30):
        await replicas[0].accept(notification(f"capped-{k}", partner="capped"))
    for k in range(100):
        await replicas[0].accept(notification(f"free-{k}", partner="free"))
    share = FairShare(caps={"capped": 5})
    for _ in range(4):  # 6 claims of 4 a round: 5 capped, 19 free
        claims = await asyncio.gather(
            *(
                replica.claim(JobKind.IMPORT, owner=f"w{n}", lease_s=600, limit=4, fair_share=share)
                for n, replica in enumerate(replicas)
                for _ in range(2)
            )
        )
        lanes = [job.lane for jobs in claims for job in jobs]
        assert lanes.count("capped") == 5
        assert lanes.count("free") > 0
        clock.advance(60.01)


async def test_stores_sharing_a_database_delete_each_notification_once(
    open_: Callable[[], Store], clock: FakeClock
) -> None:
    """Sweeps of several stores at once (PostgreSQL replicas) each take their own batch: every
    notification is deleted once and none of them fails."""
    first, second = open_(), open_()
    for n in range(6):
        await retention_imported(
            first, f"k{n}", message_id=f"m{n}", delivery="delivered", clock=clock
        )
    clock.advance(2 * RETENTION_DAY)
    counts = await asyncio.gather(
        first.delete_history(older_than_s=RETENTION_DAY, limit=2),
        second.delete_history(older_than_s=RETENTION_DAY, limit=2),
        second.delete_history(older_than_s=RETENTION_DAY, limit=2),
    )
    leftover = await first.delete_history(older_than_s=RETENTION_DAY, limit=10)
    assert sum(counts) + leftover == 6
    assert await first.list_notifications() == []


async def test_a_sweep_keeps_a_notification_an_accept_is_answering_a_duplicate_of(
    store: Store, clock: FakeClock, target: StoreTarget
) -> None:
    """An accept whose message id was accepted as an old notification holds that message id's
    lock while it answers "duplicate of it": a sweep meanwhile keeps the notification (the
    answer must name one that exists), and the next sweep deletes it."""
    kept = await retention_imported(store, "k", message_id="m-1", delivery="delivered", clock=clock)
    clock.advance(2 * RETENTION_DAY)
    lock = "\x1f".join([str(target.schema), "msg", "acme", "m-1"])  # as PostgresStore names it
    async with await psycopg.AsyncConnection.connect(target.url) as accepting:
        await accepting.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [lock])
        assert await store.delete_history(older_than_s=RETENTION_DAY, limit=10) == 0
        assert await store.load_notification(kept) is not None
        await accepting.commit()
    assert await store.delete_history(older_than_s=RETENTION_DAY, limit=10) == 1


@pytest.mark.parametrize(
    ("name", "index", "arrays"),
    [
        ("live_by_business_keys", "notifications_live_business_key", ("partners", "keys")),
        ("message_id_owners", "message_ids_pkey", ("partners", "message_ids")),
    ],
)
async def test_a_duplicate_look_up_probes_each_key_whatever_the_table_holds(
    store: Store, target: StoreTarget, name: str, index: str, arrays: tuple[str, str]
) -> None:
    """Intake's look-ups read one index entry per key, also in the generic plan a prepared
    statement settles on: a join that reads every live key of the partner slows every accept
    as the table grows (seen in `bench pg_intake`: 8,000 entries read a look-up)."""
    await asyncio.gather(
        *(store.accept(notification(f"k{i}", message_id=f"m{i}")) for i in range(2_000))
    )
    text = load_queries("postgres")[name]
    for number, array in enumerate(arrays, 1):
        text = text.replace(f"%({array})b", f"${number}")
    async with await psycopg.AsyncConnection.connect(target.url) as connection:
        await connection.execute(
            sql.SQL("SET search_path = {}").format(sql.Identifier(str(target.schema)))
        )
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        await connection.execute(f"PREPARE look_up (text[], text[]) AS {text}".encode())
        keys = [f"absent-{i}" for i in range(5)]
        arguments = [sql.Literal(["acme"] * len(keys)), sql.Literal(keys)]
        await connection.execute(sql.SQL("EXECUTE look_up ({}, {})").format(*arguments))
        cursor = await connection.execute(
            "SELECT pg_stat_get_xact_tuples_returned(%s::regclass)",
            [index],  # this transaction
        )
        row = await cursor.fetchone()
    assert row is not None
    assert row[0] <= len(keys)
