"""The PostgreSQL store: any number of processes, on any hosts, share one database.

Everything that must hold across processes is held by the database: the dedupe keys by unique
indexes (and, so that a duplicate is answered with its original's id rather than an error, by
transaction-scoped advisory locks on the keys an accept looks up), claims by ``FOR UPDATE SKIP
LOCKED``, leases by fenced updates, an owner's liveness by a session advisory lock. Intake's
accepts of one process share one transaction per group (group commit); every other verb is one
short transaction on a pooled connection. Share tokens are sealed at rest (``TokenSeal``).

The pool opens, and the migrations run, at the first call that needs the database: a process
started while PostgreSQL is down answers ``StoreUnavailable`` until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import (
    AsyncIterator,
    Callable,
    Collection,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from bridge.errors import StoreUnavailable
from bridge.store import _rows, _search, queries
from bridge.store._batcher import Batcher
from bridge.store._history import FORGET_QUERIES
from bridge.store._pg_migrations import migrate
from bridge.store._pg_owners import CHECK_IN_GRACE_S, OwnerLocks
from bridge.store._pg_wakeups import Wakeups
from bridge.store.ids import new_id
from bridge.store.model import (
    FAILED_TOKEN_RETENTION_S,
    Accepted,
    AttemptEnd,
    AttemptKind,
    AttemptReport,
    Delivery,
    DeliveryStatus,
    DeliveryTotal,
    DestinationState,
    FairShare,
    FinalOutcome,
    ImportAttempt,
    Job,
    JobKind,
    JobStatus,
    NewEvent,
    NewNotification,
    Notification,
    NotificationSearch,
    OutcomeCount,
    PendingWork,
    QueueGauges,
    RetryResult,
    StatusChange,
    StoreStats,
    Timeline,
)
from bridge.store.token_seal import TokenSeal
from bridge.types import (
    DIDIT_FINAL_STATUSES,
    NotificationStatus,
    Route,
    SendLimits,
    SharedQuota,
    didit_status_key,
)

Connection = AsyncConnection[Any]
Clock = Any  # Callable[[], float]; see bridge.store.Clock

EXCERPT_BYTES = 2_048
CONNECT_TIMEOUT_S = 5
# A replacement connection is retried with exponential backoff for this long, then a new
# attempt starts afresh when a caller waits: after an outage the pool is back within seconds
# instead of after a backoff that has grown to minutes.
RECONNECT_TIMEOUT_S = 10.0
_QUERIES = queries.load_queries("postgres")
_FINAL_STATUSES = sorted(DIDIT_FINAL_STATUSES)
# The columns insert_accepted takes as arrays, in its order.
_ACCEPTED_COLUMNS = (
    "id", "partner", "partner_event_id", "message_id", "business_key", "token_sealed",
    "token_sha256", "session_kind", "source_application_id", "source_session_id", "deadline",
    "rule", "workflow_id", "vendor_data", "trust_review", "destinations", "trace_context",
    "received_at",
)  # fmt: skip


class _Abort(Exception):
    """Raised inside a transaction to roll it back and answer ``value``."""

    def __init__(self, value: object) -> None:
        super().__init__()
        self.value = value


class PostgresStore:
    """The ``Store`` on a PostgreSQL database. Build it with ``PostgresStore.open``."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        seal: TokenSeal,
        schema: str = "public",
        pool_size: int = 10,
        pool_timeout_s: float = 2.0,
    ) -> None:
        self._url = url
        self._schema = schema
        self._clock = clock
        self._seal = seal
        self._q = _QUERIES
        self._options: dict[str, Any] = {
            "options": f"-c search_path={schema}",
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": f"share-bridge {schema}"[:63],  # which bridge, in pg_stat_activity
        }
        self._pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs=self._options,
            open=False,
            timeout=pool_timeout_s,  # waiting longer for a connection: unavailable (a 503)
            reconnect_timeout=RECONNECT_TIMEOUT_S,
            check=AsyncConnectionPool.check_connection,
            name="share-bridge",
        )
        self._owners = OwnerLocks(url, self._options, schema)
        self._wakeups = Wakeups(url, self._options, schema)
        self._accepts: Batcher[dict[str, Any], Accepted] = Batcher(self._accept_batch)
        self._opening: asyncio.Lock | None = None
        self._ready_done = False
        self._closed = False

    @classmethod
    def open(
        cls,
        url: str,
        *,
        clock: Clock,
        token_keys: Sequence[bytes],
        schema: str | None = None,
        pool_size: int = 10,
        pool_timeout_s: float = 2.0,
    ) -> PostgresStore:
        """A store on ``url``; nothing is connected until the first call (see the module)."""
        return cls(
            url,
            clock=clock,
            seal=TokenSeal(token_keys),
            schema=schema or "public",
            pool_size=pool_size,
            pool_timeout_s=pool_timeout_s,
        )

    # -- plumbing -------------------------------------------------------------------------

    async def migrate(self) -> int:
        """Open the pool and apply the migrations the schema lacks; the schema's version."""
        if self._closed:
            raise StoreUnavailable("the store is closed")
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            return await self._migrate()

    async def _migrate(self) -> int:
        with _translated():
            async with await AsyncConnection.connect(
                self._url, autocommit=True, **self._options
            ) as connection:
                version = await migrate(connection, self._schema)
            if not self._ready_done:
                await self._pool.open(wait=False)
                self._wakeups.start()
                self._ready_done = True
        return version

    async def _ready(self) -> None:
        """Migrated and pooled before the first call that needs the database."""
        if self._ready_done:
            return
        if self._closed:
            raise StoreUnavailable("the store is closed")
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if not self._ready_done:
                await self._migrate()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        """One transaction on a pooled connection: committed when the block ends."""
        await self._ready()
        with _translated():
            async with self._pool.connection() as connection:
                yield connection

    async def _write(self, op: Any) -> Any:
        """Run ``op(connection)`` in a transaction; an ``_Abort`` rolls back and answers."""
        try:
            async with self._transaction() as connection:
                return await op(connection)
        except _Abort as abort:
            return abort.value

    async def _rows(
        self, connection: Connection, name: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        async with connection.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(self._q[name], params)
            return await cursor.fetchall()

    async def _query(
        self, connection: Connection, name: str, params: Mapping[str, Any]
    ) -> AsyncCursor[dict[str, Any]]:
        """A query sent and not yet read: in pipeline mode, its rows come at the next sync."""
        return await connection.cursor(row_factory=dict_row).execute(self._q[name], params)

    async def _row(
        self, connection: Connection, name: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        rows = await self._rows(connection, name, params)
        return rows[0] if rows else None

    async def _count(self, connection: Connection, name: str, params: Mapping[str, Any]) -> int:
        cursor = await connection.execute(self._q[name], params)
        return cursor.rowcount

    @staticmethod
    def _fence(job: Job) -> dict[str, Any]:
        return {"id": job.id, "owner": job.owner, "attempts": job.attempts}

    async def _fenced(self, connection: Connection, name: str, job: Job, **params: Any) -> bool:
        return await self._count(connection, name, {**self._fence(job), **params}) == 1

    async def _held(self, connection: Connection, job: Job) -> bool:
        return await self._row(connection, "job_is_held", self._fence(job)) is not None

    async def _notify(self, connection: Connection, kind: JobKind) -> None:
        """Wake the listening stores (every replica) when this transaction commits."""
        params = {"channel": self._wakeups.channel, "kind": kind.value}
        await connection.execute(self._q["notify_work"], params)

    def on_work(self, kind: JobKind, wake: Callable[[], None]) -> None:
        self._wakeups.add(kind, wake)
        if self._ready_done:
            self._wakeups.start()

    def _lock_text(self, kind: str, *parts: str) -> str:
        return "\x1f".join([self._schema, kind, *parts])

    def _notification(self, row: Mapping[str, Any], *, with_token: bool = True) -> Notification:
        sealed = row["token_sealed"]
        token = self._seal.open(bytes(sealed), row["id"]) if with_token and sealed else None
        return _rows.notification({**row, "token": token}, with_token=with_token)

    # -- intake ---------------------------------------------------------------------------

    async def accept(self, new: NewNotification) -> Accepted:
        await self._ready()
        route = new.route
        row = {
            "partner": new.partner,
            "partner_event_id": new.partner_event_id,
            "message_id": new.message_id,
            "business_key": new.business_key,
            "token": new.token,
            "token_sha256": new.token_sha256,
            "session_kind": new.session_kind.value,
            "source_application_id": new.source_application_id,
            "source_session_id": new.source_session_id,
            "deadline": new.deadline,
            "rule": route.rule,
            "workflow_id": route.workflow_id,
            "vendor_data": route.vendor_data,
            "trust_review": route.trust_review,
            "destinations": json.dumps(list(route.destinations)),
            "trace_context": new.trace_context,
        }
        return await self._accepts.submit(row)

    async def _accept_batch(self, rows: list[dict[str, Any]]) -> list[Accepted]:
        """Accept a group of notifications in one transaction (see SqliteStore._accept_batch).

        The keys it looks up (message ids, business keys) are locked first, so an accept of
        another process for the same share waits for this one and then sees it: a duplicate
        answered with the original's id, never a unique violation. The statements go in
        pipeline mode, two round trips a group whatever its size: the locks and the look-ups
        together, then the writes with the commit.
        """
        now = self._clock()
        lock_texts = {self._lock_text("bk", row["partner"], row["business_key"]) for row in rows}
        lock_texts |= {
            self._lock_text("msg", row["partner"], row["message_id"])
            for row in rows
            if row["message_id"] is not None
        }
        with_message = [row for row in rows if row["message_id"] is not None]
        pairs = sorted({(row["partner"], row["business_key"]) for row in rows})
        async with self._transaction() as connection, connection.pipeline():
            await connection.execute(self._q["lock_keys"], {"keys": sorted(lock_texts)})
            owners_found = None
            if with_message:
                owners_found = await self._query(
                    connection,
                    "message_id_owners",
                    {
                        "partners": [row["partner"] for row in with_message],
                        "message_ids": [row["message_id"] for row in with_message],
                    },
                )
            keys = {
                "partners": [partner for partner, _ in pairs],
                "keys": [key for _, key in pairs],
            }
            live_found = await self._query(connection, "live_by_business_keys", keys)
            owners: dict[tuple[str, str], str] = {}
            if owners_found is not None:
                owners = {
                    (r["partner"], r["message_id"]): r["notification_id"]
                    for r in await owners_found.fetchall()
                }
            live = {(r["partner"], r["business_key"]): r["id"] for r in await live_found.fetchall()}
            answers: list[Accepted] = []
            accepted: list[dict[str, Any]] = []
            messages: list[tuple[str, str, str]] = []
            for row in rows:
                message = (row["partner"], row["message_id"])
                original = owners.get(message)
                if original is not None:
                    answers.append(Accepted(id=original, duplicate=True))
                    continue
                business_key = (row["partner"], row["business_key"])
                original = live.get(business_key)
                duplicate = original is not None
                if original is None:
                    original = new_id("ntf", now)
                    live[business_key] = original
                    sealed = self._seal.seal(row["token"], original)
                    accepted.append(
                        {**row, "id": original, "token_sealed": sealed, "received_at": now}
                    )
                if row["message_id"] is not None:
                    owners[message] = original
                    messages.append((row["partner"], row["message_id"], original))
                answers.append(Accepted(id=original, duplicate=duplicate))
            if accepted:
                columns = {c: [row[c] for row in accepted] for c in _ACCEPTED_COLUMNS}
                await connection.execute(self._q["insert_accepted"], columns)
                jobs = {
                    "refs": columns["id"],
                    "lanes": columns["partner"],
                    "deadlines": columns["deadline"],
                    "now": now,
                }
                await connection.execute(self._q["insert_accepted_jobs"], jobs)
                await self._notify(connection, JobKind.IMPORT)
            if messages:
                await connection.execute(
                    self._q["insert_accepted_message_ids"],
                    {
                        "partners": [partner for partner, _, _ in messages],
                        "message_ids": [message_id for _, message_id, _ in messages],
                        "notification_ids": [original for _, _, original in messages],
                    },
                )
            # In the pipeline: COMMIT goes with the writes and its answer is awaited here.
            await connection.commit()
        return answers

    async def find_message(self, partner: str, message_id: str) -> str | None:
        params = {"partner": partner, "message_id": message_id}
        async with self._transaction() as connection:
            row = await self._row(connection, "message_id_owner", params)
        return None if row is None else str(row["notification_id"])

    # -- jobs -----------------------------------------------------------------------------

    async def claim(
        self,
        kind: JobKind,
        *,
        owner: str,
        lease_s: float,
        limit: int = 1,
        lane_caps: Mapping[str, int] | None = None,
        skip_jobs: Collection[int] = (),
        fair_share: FairShare | None = None,
    ) -> list[Job]:
        if limit < 1:
            return []
        params: dict[str, Any] = {
            "owner": owner,
            "lease_s": float(lease_s),
            "limit": limit,
            "skip_jobs": sorted(skip_jobs),
        }
        if kind is JobKind.IMPORT:
            query, fair_share = "claim_imports", fair_share or FairShare()
            params["pace_s"] = float(fair_share.pace_s)
            params["caps"] = json.dumps(dict(fair_share.caps))
            params["no_jumps"] = sorted(fair_share.no_jumps)
            # One import claim at a time across every process: each counts the claims
            # committed before it, so a lane's cap per minute holds for all replicas.
            locks = [self._lock_text("claim", JobKind.IMPORT.value)]
        else:
            query, caps = "claim_deliveries", dict(lane_caps or {})
            params["caps"] = json.dumps(caps)
            # One claim at a time per capped destination across every process: each counts
            # the leases taken before it, so no two take a destination's last slot.
            locks = [self._lock_text("lane", kind.value, lane) for lane in caps]
        # In pipeline mode: the claim and its commit go in one round trip, so the claim's lock
        # is held for one round trip, not two.
        async with self._transaction() as connection, connection.pipeline():
            if locks:
                lock = {"keys": locks}
                await (await connection.execute(self._q["lock_keys"], lock)).fetchall()
            # The clock is read once the lock is held: a claim's time follows the claims before.
            claimed = await self._query(connection, query, {**params, "now": self._clock()})
            await connection.commit()
            rows = await claimed.fetchall()
        return sorted((_rows.job(row) for row in rows), key=_claim_order)

    async def _fenced_write(self, name: str, job: Job, **params: Any) -> bool:
        async with self._transaction() as connection:
            return await self._fenced(connection, name, job, now=self._clock(), **params)

    async def extend_lease(self, job: Job, *, lease_s: float) -> bool:
        return await self._fenced_write("extend_lease", job, lease_s=float(lease_s))

    async def complete(self, job: Job) -> bool:
        return await self._fenced_write("complete", job)

    async def retry(self, job: Job, *, run_after: float, error: str) -> bool:
        return await self._fenced_write("retry", job, run_after=run_after, error=error)

    async def bury(self, job: Job, *, error: str) -> bool:
        now = self._clock()

        async def op(connection: Connection) -> bool:
            if not await self._fenced(connection, "bury", job, error=error, now=now):
                return False
            if job.kind is JobKind.DELIVER:
                kill = {"id": job.ref, "error": error, "now": now}
                await connection.execute(self._q["kill_delivery"], kill)
            return True

        return bool(await self._write(op))

    async def release(self, job: Job, *, run_after: float | None = None) -> bool:
        now = self._clock()
        due = now if run_after is None else run_after
        async with self._transaction() as connection:
            return await self._fenced(connection, "release", job, now=now, run_after=due)

    async def release_lost_claims(
        self, kind: JobKind, *, owner: str, running: Collection[int]
    ) -> int:
        params = {"kind": kind.value, "owner": owner, "running": sorted(running)}
        async with self._transaction() as connection:
            released = await self._count(
                connection, "release_lost_claims", {**params, "now": self._clock()}
            )
            if released:
                await self._notify(connection, kind)
        return released

    async def recover_orphans(self, owner: str, *, heartbeat_s: float) -> int:
        await self._ready()
        q, now = self._q, self._clock()
        with _translated():
            if not await self._owners.register(owner, q, now, heartbeat_s):
                return 0
        async with self._transaction() as connection:
            silent = {"mine": self._owners.held, "grace_s": CHECK_IN_GRACE_S}
            others = await self._rows(connection, "silent_owners", silent)
        recovered = 0
        for other in others:
            with _translated():
                gone = await self._owners.gone(other["lock_key"], q)
            if not gone:
                continue
            params = {"owner": other["owner"], "error": "its worker died", "now": now}
            async with self._transaction() as connection:
                recovered += await self._count(connection, "requeue_orphans", params)
                await connection.execute(q["forget_owner"], {"owner": other["owner"]})
                for kind in JobKind:
                    await self._notify(connection, kind)
        return recovered

    # -- imports --------------------------------------------------------------------------

    async def load_notification(self, notification_id: str) -> Notification | None:
        async with self._transaction() as connection:
            row = await self._row(connection, "select_notification", {"id": notification_id})
        return None if row is None else self._notification(row)

    async def begin_import_attempt(
        self, job: Job, *, kind: AttemptKind = AttemptKind.IMPORT
    ) -> int | None:
        params = {"notification_id": job.ref, "kind": kind.value, "now": self._clock()}
        async with self._transaction() as connection:
            if not await self._held(connection, job):
                return None
            row = await self._row(connection, "begin_attempt", params)
            assert row is not None  # noqa: S101 - INSERT ... SELECT of an aggregate: one row
            return int(row["attempt"])

    async def end_import_attempt(
        self,
        job: Job,
        attempt: int,
        *,
        http_status: int | None,
        result: str,
        latency_ms: int,
        error: str | None = None,
    ) -> bool:
        ending = AttemptEnd(
            attempt=attempt,
            http_status=http_status,
            result=result,
            latency_ms=latency_ms,
            error=error,
        )
        params = {**_ending_params(ending), "notification_id": job.ref, "now": self._clock()}
        async with self._transaction() as connection:
            if not await self._held(connection, job):
                return False
            return await self._count(connection, "end_attempt", params) == 1

    async def sessions_recorded(
        self, session_ids: Collection[str], *, other_than: str
    ) -> frozenset[str]:
        params = {"session_ids": sorted(session_ids), "id": other_than}
        async with self._transaction() as connection:
            rows = await self._rows(connection, "sessions_recorded", params)
        return frozenset(row["session_id"] for row in rows)

    async def list_import_attempts(self, notification_id: str) -> tuple[ImportAttempt, ...]:
        async with self._transaction() as connection:
            return await self._attempts(connection, notification_id)

    async def _attempts(
        self, connection: Connection, notification_id: str
    ) -> tuple[ImportAttempt, ...]:
        rows = await self._rows(connection, "select_attempts", {"notification_id": notification_id})
        return tuple(_rows.import_attempt(row) for row in rows)

    async def record_outcome(
        self,
        job: Job,
        outcome: FinalOutcome,
        events: Sequence[NewEvent],
        *,
        ending: AttemptEnd | None = None,
    ) -> bool:
        if job.kind is not JobKind.IMPORT:
            raise ValueError("record_outcome needs an import job")
        if not outcome.status.is_final:
            raise ValueError("an outcome is a final status")
        now = self._clock()
        reason, session = outcome.reason, outcome.session
        finish = {
            "id": job.ref,
            "status": outcome.status.value,
            "reason_code": reason.code if reason else None,
            "reason_message": reason.message if reason else None,
            "reason_http_status": reason.http_status if reason else None,
            "session_id": session.session_id if session else None,
            "session_number": session.session_number if session else None,
            "didit_status": session.status if session else None,
            "now": now,
        }
        taken = {"session_ids": [session.session_id], "id": job.ref} if session else None

        async def op(connection: Connection) -> bool:
            if not await self._fenced(connection, "complete", job, now=now):
                return False
            if taken and await self._row(connection, "sessions_recorded", taken):
                raise _Abort(False)  # another notification's session: never a second owner
            if await self._count(connection, "finish_notification", finish) != 1:
                raise _Abort(False)
            if ending is not None:
                end = {**_ending_params(ending), "notification_id": job.ref, "now": now}
                if await self._count(connection, "end_attempt", end) != 1:
                    raise _Abort(False)
            for event in events:
                await self._insert_event(connection, job.ref, event, now)
            return True

        try:
            return bool(await self._write(op))
        except ValueError:
            if session is None:
                raise
            # The unique index on sessions: another process recorded it between our check and
            # our write. Anything else is a conflict the caller must hear about.
            if await self.sessions_recorded([session.session_id], other_than=job.ref):
                return False
            raise

    async def _insert_event(
        self, connection: Connection, notification_id: str, event: NewEvent, now: float
    ) -> None:
        q = self._q
        await connection.execute(
            q["insert_event"],
            {
                "id": event.id,
                "notification_id": notification_id,
                "type": event.type.value,
                "body": event.body,
                "now": now,
            },
        )
        if event.destinations:
            await self._notify(connection, JobKind.DELIVER)
        for destination in event.destinations:
            delivery_id = new_id("dlv", now)
            await connection.execute(
                q["insert_delivery"],
                {"id": delivery_id, "event_id": event.id, "destination": destination, "now": now},
            )
            await connection.execute(
                q["insert_job"],
                {
                    "kind": JobKind.DELIVER.value,
                    "ref": delivery_id,
                    "lane": destination,
                    "deadline": None,
                    "run_after": now,
                    "now": now,
                },
            )

    async def find_by_session(self, session_id: str) -> Notification | None:
        async with self._transaction() as connection:
            row = await self._row(connection, "select_by_session", {"session_id": session_id})
        return None if row is None else self._notification(row)

    async def record_status_update(
        self, notification_id: str, *, didit_status: str, signed_at: float, event: NewEvent
    ) -> StatusChange:
        now, key = self._clock(), didit_status_key(didit_status)
        status = {"id": notification_id, "signed_at": float(signed_at), "key": key}
        update = {
            **status,
            "didit_status": didit_status,
            "final": key in DIDIT_FINAL_STATUSES,
            "final_statuses": _FINAL_STATUSES,
            "now": now,
        }
        async with self._transaction() as connection:
            if await self._count(connection, "record_didit_status", update) == 1:
                await self._insert_event(connection, notification_id, event, now)
                return StatusChange.RECORDED
            if await self._count(connection, "witness_didit_status", status) == 1:
                return StatusChange.UNCHANGED
            return StatusChange.STALE

    # -- deliveries -----------------------------------------------------------------------

    async def load_delivery(self, delivery_id: str) -> Delivery | None:
        async with self._transaction() as connection:
            row = await self._row(connection, "select_delivery", {"id": delivery_id})
        return None if row is None else _rows.delivery(row)

    async def mark_delivered(self, job: Job, report: AttemptReport) -> bool:
        _require_deliver(job)
        return await self._after_attempt(job, report, "complete", {}, DeliveryStatus.DELIVERED)

    async def delivery_failed(
        self, job: Job, report: AttemptReport, *, retry_at: float | None
    ) -> bool:
        _require_deliver(job)
        error = report.error or f"HTTP {report.http_status}"
        if retry_at is None:
            return await self._after_attempt(
                job, report, "bury", {"error": error}, DeliveryStatus.DEAD
            )
        return await self._after_attempt(
            job, report, "retry", {"error": error, "run_after": retry_at}, DeliveryStatus.PENDING
        )

    async def _after_attempt(
        self,
        job: Job,
        report: AttemptReport,
        fence: str,
        fence_params: Mapping[str, Any],
        status: DeliveryStatus,
    ) -> bool:
        now = self._clock()
        failed = status is not DeliveryStatus.DELIVERED
        error = (report.error or f"HTTP {report.http_status}") if failed else None
        attempt = {
            "delivery_id": job.ref,
            "http_status": report.http_status,
            "latency_ms": report.latency_ms,
            "response_excerpt": report.response_excerpt[:EXCERPT_BYTES],
            "error": report.error,
            "now": now,
        }
        update = {"id": job.ref, "status": status.value, "error": error, "now": now}
        async with self._transaction() as connection:
            if not await self._fenced(connection, fence, job, now=now, **fence_params):
                return False
            await connection.execute(self._q["insert_delivery_attempt"], attempt)
            await connection.execute(self._q["update_delivery"], update)
            return True

    async def set_destination_enabled(
        self, name: str, *, enabled: bool, reason: str | None = None
    ) -> None:
        params = {"name": name, "enabled": enabled, "reason": reason, "now": self._clock()}
        async with self._transaction() as connection:
            await connection.execute(self._q["upsert_destination_state"], params)
            if enabled:
                await self._notify(connection, JobKind.DELIVER)

    async def destination_states(self) -> list[DestinationState]:
        async with self._transaction() as connection:
            rows = await self._rows(connection, "destination_states")
        return [
            DestinationState(
                name=row["name"],
                enabled=bool(row["enabled"]),
                changed_at=row["changed_at"],
                reason=row["reason"],
                pending=row["pending"],
                dead=row["dead"],
                last_error=row["last_error"],
            )
            for row in rows
        ]

    async def redeliver(self, delivery_id: str) -> bool:
        now = self._clock()

        async def op(connection: Connection) -> bool:
            if await self._count(connection, "requeue_delivery", {"id": delivery_id, "now": now}):
                await self._requeue_job(connection, JobKind.DELIVER, delivery_id, now)
                return True
            return False

        return bool(await self._write(op))

    async def redeliver_since(
        self, destination: str, *, since: float, status: DeliveryStatus | None = None
    ) -> int:
        now = self._clock()
        params = {
            "destination": destination,
            "since": since,
            "status": status.value if status else None,
            "now": now,
        }
        async with self._transaction() as connection:
            rows = await self._rows(connection, "requeue_deliveries_since", params)
            for row in rows:
                await self._requeue_job(connection, JobKind.DELIVER, row["id"], now)
        return len(rows)

    async def list_deliveries(
        self,
        *,
        status: DeliveryStatus | None = None,
        destination: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Delivery]:
        params = {
            "status": status.value if status else None,
            "destination": destination,
            "limit": limit,
            "before": before,
        }
        async with self._transaction() as connection:
            rows = await self._rows(connection, "list_deliveries", params)
        return [_rows.delivery(row) for row in rows]

    async def _requeue_job(
        self, connection: Connection, kind: JobKind, ref: str, now: float
    ) -> None:
        await connection.execute(
            self._q["requeue_job"], {"kind": kind.value, "ref": ref, "now": now}
        )
        await self._notify(connection, kind)

    # -- operations -----------------------------------------------------------------------

    async def list_notifications(
        self,
        *,
        status: NotificationStatus | None = None,
        partner: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Notification]:
        params = {
            "status": status.value if status else None,
            "partner": partner,
            "limit": limit,
            "before": before,
        }
        async with self._transaction() as connection:
            rows = await self._rows(connection, "list_notifications", params)
        return [self._notification(row, with_token=False) for row in rows]

    async def search_notifications(
        self, search: NotificationSearch, *, limit: int = 50, before: str | None = None
    ) -> list[Notification]:
        params = _search.params(search, limit=limit, before=before)
        async with self._transaction() as connection:
            rows = await self._rows(connection, _search.query_name(search), params)
        return [self._notification(row, with_token=False) for row in rows]

    async def pending_work(self) -> PendingWork:
        now = self._clock()
        async with self._snapshot() as connection:
            row = await self._row(connection, "pending_work")
        assert row is not None  # noqa: S101 - an aggregate always has one row
        oldest = row["oldest"]
        return PendingWork(
            pending=row["pending"],
            import_queue=row["import_queue"],
            oldest_pending_age_s=None if oldest is None else max(0.0, now - oldest),
        )

    async def import_outcomes(self, *, since: float, bucket_s: float) -> list[OutcomeCount]:
        params = {"since": since, "bucket_s": bucket_s}
        async with self._transaction() as connection:
            rows = await self._rows(connection, "import_outcomes_since", params)
        return [
            OutcomeCount(
                bucket=row["bucket"], status=NotificationStatus(row["status"]), count=row["n"]
            )
            for row in rows
        ]

    async def delivery_totals(self) -> list[DeliveryTotal]:
        async with self._transaction() as connection:
            rows = await self._rows(connection, "delivery_totals")
        return [
            DeliveryTotal(
                destination=row["destination"], status=DeliveryStatus(row["status"]), count=row["n"]
            )
            for row in rows
        ]

    async def count_deliveries(
        self, *, status: DeliveryStatus | None = None, destination: str | None = None
    ) -> int:
        params = {"status": status.value if status else None, "destination": destination}
        async with self._transaction() as connection:
            row = await self._row(connection, "count_matching_deliveries", params)
        assert row is not None  # noqa: S101 - an aggregate always has one row
        count: int = row["n"]
        return count

    async def timeline(self, notification_id: str) -> Timeline | None:
        by_notification = {"notification_id": notification_id}
        async with self._snapshot() as connection:
            found = await self._row(connection, "select_notification", {"id": notification_id})
            if found is None:
                return None
            events = await self._rows(connection, "select_events", by_notification)
            deliveries = await self._rows(
                connection, "select_deliveries_of_notification", by_notification
            )
            attempts = await self._rows(
                connection, "select_delivery_attempts_of_notification", by_notification
            )
            changes = await self._rows(connection, "select_route_changes", by_notification)
            vendor_data = found["vendor_data"]
            return Timeline(
                route_changes=tuple(
                    _rows.route_change(row, vendor_data=vendor_data) for row in changes
                ),
                notification=self._notification(found, with_token=False),
                attempts=await self._attempts(connection, notification_id),
                events=tuple(_rows.event(row) for row in events),
                deliveries=tuple(_rows.delivery(row) for row in deliveries),
                delivery_attempts=tuple(_rows.delivery_attempt(row) for row in attempts),
            )

    @contextlib.asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[Connection]:
        """A read-only transaction that sees one snapshot in every statement."""
        async with self._transaction() as connection:
            await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield connection

    async def retry_notification(
        self, notification_id: str, *, route: Route | None = None
    ) -> RetryResult:
        now = self._clock()

        async def op(connection: Connection) -> RetryResult:
            row = await self._row(
                connection, "select_notification_for_update", {"id": notification_id}
            )
            if row is None:
                return RetryResult.NOT_FOUND
            job = await self._row(connection, "import_job_status", {"ref": notification_id})
            failed = row["status"] == NotificationStatus.FAILED
            stuck = row["status"] == NotificationStatus.PENDING and (
                job is not None and job["status"] == JobStatus.DEAD
            )
            if not (failed or stuck):
                return RetryResult.NOT_RETRYABLE
            if row["token_sealed"] is None or (
                row["deadline"] is not None and row["deadline"] <= now
            ):
                return RetryResult.TOKEN_GONE
            if failed:
                key = {"partner": row["partner"], "business_key": row["business_key"]}
                # As an accept of the same share would: whichever comes second sees the first.
                lock = {"keys": [self._lock_text("bk", key["partner"], key["business_key"])]}
                await connection.execute(self._q["lock_keys"], lock)
                if await self._row(connection, "live_by_business_key", key):
                    return RetryResult.SUPERSEDED
                await connection.execute(
                    self._q["reopen_notification"], {"id": notification_id, "now": now}
                )
            old = _rows.notification({**row, "token": None}, with_token=False).route
            if route is not None and _rows.routing_columns(route) != _rows.routing_columns(old):
                change: dict[str, Any] = {"notification_id": notification_id, "at": now}
                change |= {f"old_{k}": v for k, v in _rows.routing_columns(old).items()}
                change |= {f"new_{k}": v for k, v in _rows.routing_columns(route).items()}
                await connection.execute(self._q["insert_route_change"], change)
                await connection.execute(self._q["reroute_notification"], change)
            await self._requeue_job(connection, JobKind.IMPORT, notification_id, now)
            return RetryResult.REQUEUED

        result: RetryResult = await self._write(op)
        return result

    async def erase_stale_tokens(self) -> int:
        params = {"now": self._clock(), "retention_s": FAILED_TOKEN_RETENTION_S}
        async with self._transaction() as connection:
            return await self._count(connection, "erase_stale_tokens", params)

    async def delete_history(self, *, older_than_s: float, limit: int) -> int:
        params = {
            "before": self._clock() - older_than_s,
            "limit": limit,
            "final_statuses": _FINAL_STATUSES,
        }

        async def op(connection: Connection) -> int:
            found = await self._rows(connection, "old_history", params)
            # An accept holding a business key may be adding a message id that refers to its
            # notification, and one holding a message id may be answering that it is a
            # duplicate of the notification accepted with it: either one waits for the next
            # sweep.
            keys_of = {
                row["id"]: {
                    self._lock_text("bk", row["partner"], row["business_key"]),
                    *(self._lock_text("msg", row["partner"], m) for m in row["message_ids"]),
                }
                for row in found
            }
            wanted = sorted(set().union(*keys_of.values()))
            free = {
                row["key"]
                for row in await self._rows(connection, "try_lock_keys", {"keys": wanted})
            }
            ids = {id_ for id_, keys in keys_of.items() if keys <= free}
            if not ids:
                return 0
            locked = await self._rows(connection, "lock_history_deliveries", {"ids": sorted(ids)})
            ids -= {row["notification_id"] for row in locked if row["status"] == "pending"}
            for name in FORGET_QUERIES:
                await connection.execute(self._q[name], {"ids": sorted(ids)})
            return len(ids)

        deleted: int = await self._write(op)
        return deleted

    def shared_quota(self) -> SharedQuota:
        """Every replica on this database counts its Didit sends, and its sends to each
        destination, here (``take_send``)."""
        return self

    async def take_send(self, key: str, limits: SendLimits) -> float:
        window = {"key": key, "window_s": float(limits.window_s)}
        async with self._transaction() as connection:
            await connection.execute(self._q["lock_quota"], {"key": key})
            state_params = {**window, "budget": limits.budget}
            [state] = await self._rows(connection, "quota_state", state_params)
            if state["learned_limit"] is not None:
                limits = limits.lowered_to(max(1, state["learned_limit"]))
            now, recent, budget = state["now"], state["recent"], limits.budget
            ready = max(now, state["paused_until"])
            if len(recent) >= budget:
                ready = max(ready, recent[budget - 1] + limits.window_s)
            if len(recent) >= limits.burst:
                ready = max(ready, recent[limits.burst - 1] + limits.burst_window_s)
            if ready > now:
                return float(ready - now)
            await connection.execute(self._q["record_quota_send"], {**window, "now": now})
            return 0.0

    async def hold_sends(self, key: str, *, pause_s: float | None, limit: int | None) -> None:
        params = {"key": key, "pause_s": pause_s, "limit": limit}
        async with self._transaction() as connection:
            await connection.execute(self._q["hold_quota"], params)

    async def queue_gauges(self) -> QueueGauges:
        async with self._snapshot() as connection:
            # Aggregates without GROUP BY: one row each.
            [pending] = await self._rows(connection, "pending_gauge")
            [dead] = await self._rows(connection, "dead_deliveries_gauge")
            [disabled] = await self._rows(connection, "disabled_destinations_gauge")
        return QueueGauges(
            pending_notifications=pending["n"],
            oldest_pending_received_at=pending["oldest"],
            dead_deliveries=dead["n"],
            disabled_destinations=disabled["n"],
        )

    async def stats(self) -> StoreStats:
        now = self._clock()
        async with self._snapshot() as connection:
            notifications = {status.value: 0 for status in NotificationStatus}
            for row in await self._rows(connection, "count_notifications"):
                notifications[row["status"]] = row["n"]
            jobs: dict[str, dict[str, int]] = {
                kind.value: {status.value: 0 for status in JobStatus} for kind in JobKind
            }
            for row in await self._rows(connection, "count_jobs"):
                jobs[row["kind"]][row["status"]] = row["n"]
            deliveries = {status.value: 0 for status in DeliveryStatus}
            for row in await self._rows(connection, "count_deliveries"):
                deliveries[row["status"]] = row["n"]
            oldest_row = await self._row(connection, "oldest_pending")
        oldest = None if oldest_row is None else oldest_row["received_at"]
        return StoreStats(
            notifications=notifications,
            jobs=jobs,
            deliveries=deliveries,
            oldest_pending_age_s=None if oldest is None else max(0.0, now - oldest),
        )

    async def ping(self) -> None:
        async with self._transaction() as connection:
            await connection.execute("SELECT 1")

    async def close(self) -> None:
        if self._closed:
            return
        await self._accepts.close()  # queued accepts are written first
        self._closed = True
        await self._wakeups.close()
        with contextlib.suppress(psycopg.Error):
            await self._owners.close(self._q)
        await self._pool.close()


#: SQLSTATE classes of a row the database cannot take, whatever its state: 22 (data exception)
#: and 54 (program limit exceeded, e.g. a value too large for an index row, which psycopg
#: raises as an OperationalError).
_ROW_FAULT_CLASSES = frozenset({"22", "54"})


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """psycopg's errors at the boundary: a caller's mistake is ValueError, others unavailable.
    A group commit splits on ValueError, so one row at fault fails alone, never its group."""
    try:
        yield
    except psycopg.IntegrityError as exc:
        raise ValueError(f"the write conflicts with stored data: {exc}") from exc
    except psycopg.Error as exc:
        if (exc.sqlstate or "")[:2] in _ROW_FAULT_CLASSES:
            raise ValueError(f"the database cannot take the row: {exc}") from exc
        raise StoreUnavailable(f"the PostgreSQL store failed: {type(exc).__name__}: {exc}") from exc
    except (PoolTimeout, PoolClosed, OSError) as exc:
        raise StoreUnavailable(f"the PostgreSQL store failed: {type(exc).__name__}: {exc}") from exc


def _ending_params(ending: AttemptEnd) -> dict[str, Any]:
    """``end_attempt``'s parameters but the notification id and the time."""
    return {
        "attempt": ending.attempt,
        "http_status": ending.http_status,
        "result": ending.result,
        "latency_ms": ending.latency_ms,
        "error": ending.error,
    }


def _require_deliver(job: Job) -> None:
    if job.kind is not JobKind.DELIVER:
        raise ValueError("delivery verbs need a deliver job")


def _claim_order(job: Job) -> tuple[float, float, int]:
    return (job.deadline if job.deadline is not None else float("inf"), job.run_after, job.id)
