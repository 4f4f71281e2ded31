"""The embedded SQLite store: WAL, ``synchronous=FULL``, one writer thread with group commit.

All writes go through one ``GroupCommitWriter`` (one connection, one thread, transactions
opened with ``BEGIN IMMEDIATE``), so claims never race and a 202 is answered only after an
fsync'd commit. Reads use a second connection on its own thread; WAL lets them run while the
writer commits. SQLite means one host: WAL needs a local filesystem.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bridge.errors import StoreUnavailable
from bridge.store import _rows, _search, queries
from bridge.store._history import FORGET_QUERIES
from bridge.store._owners import OwnerLocks, owners_directory
from bridge.store._sqlite_connection import connect, create_owner_only, migrate
from bridge.store._writer import GroupCommitWriter, Rollback, translate
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
from bridge.types import DIDIT_FINAL_STATUSES, NotificationStatus, Route, didit_status_key

T = TypeVar("T")
Item = TypeVar("Item")

EXCERPT_BYTES = 2_048
_QUERIES = queries.load_queries("sqlite")
# The parameters of one insert_accepted_row, in its column order.
_ACCEPTED_COLUMNS = (
    "id", "partner", "partner_event_id", "message_id", "business_key", "token", "token_sha256",
    "session_kind", "source_application_id", "source_session_id", "deadline", "rule",
    "workflow_id", "vendor_data", "trust_review", "destinations", "trace_context", "now", "now",
)  # fmt: skip
_FINAL_STATUSES = json.dumps(sorted(DIDIT_FINAL_STATUSES))
# Rows go in chunks of these sizes only (64s, then the binary digits of the rest), so that the
# connection's statement cache holds a few statements per table instead of one per run length.
_CHUNK_ROWS = 64


def _insert_rows(
    connection: sqlite3.Connection, q: Mapping[str, str], name: str, rows: list[list[Any]]
) -> None:
    """Insert ``rows`` with the multi-row statement ``name`` (head) and ``name_row`` (a row)."""
    head, row_sql = q[name], q[f"{name}_row"]
    start = 0
    while start < len(rows):
        left = len(rows) - start
        size = _CHUNK_ROWS if left >= _CHUNK_ROWS else 1 << (left.bit_length() - 1)
        chunk = rows[start : start + size]
        sql = f"{head} {', '.join([row_sql] * size)}"
        connection.execute(sql, [value for row in chunk for value in row])
        start += size


class SqliteStore:
    """The ``Store`` on one SQLite file. Build it with ``SqliteStore.open``."""

    def __init__(
        self,
        writer: GroupCommitWriter,
        reader: sqlite3.Connection,
        *,
        clock: Callable[[], float],
        owners: OwnerLocks | None = None,
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._owners = owners
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bridge-store-reader")
        self._clock = clock
        self._q = _QUERIES
        self._closed = False

    @classmethod
    def open(cls, path: Path, *, clock: Callable[[], float]) -> SqliteStore:
        """Create the parent directory, connect, migrate, and start the writer thread."""
        try:
            create_owner_only(path)
            write_connection = connect(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the SQLite store at {path}: {exc}") from exc
        try:
            migrate(write_connection, clock())
            reader = connect(path, read_only=True)
        except sqlite3.Error as exc:
            write_connection.close()
            raise translate(exc) from exc
        owners = OwnerLocks(owners_directory(path))
        return cls(GroupCommitWriter(write_connection), reader, clock=clock, owners=owners)

    # -- plumbing -------------------------------------------------------------------------

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        with _translated():
            return await self._writer.run(op)

    async def _write_batched(
        self, batch: Callable[[sqlite3.Connection, list[Item]], list[T]], item: Item
    ) -> T:
        with _translated():
            return await self._writer.run_batched(batch, item)

    async def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        reading = asyncio.get_running_loop().run_in_executor(self._reads, op, self._reader)
        try:
            return await reading
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    @staticmethod
    def _fence(job: Job) -> dict[str, Any]:
        return {"id": job.id, "owner": job.owner, "attempts": job.attempts}

    def _fenced_update(
        self, name: str, job: Job, **params: Any
    ) -> Callable[[sqlite3.Connection], bool]:
        query = self._q[name]

        def op(connection: sqlite3.Connection) -> bool:
            return connection.execute(query, {**self._fence(job), **params}).rowcount == 1

        return op

    # -- intake ---------------------------------------------------------------------------

    async def accept(self, new: NewNotification) -> Accepted:
        now, route = self._clock(), new.route
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
            "trust_review": int(route.trust_review),
            "destinations": json.dumps(list(route.destinations)),
            "trace_context": new.trace_context,
            "now": now,
        }
        return await self._write_batched(self._accept_batch, row)

    def _accept_batch(
        self, connection: sqlite3.Connection, rows: list[dict[str, Any]]
    ) -> list[Accepted]:
        """Accept a run of notifications with set-based statements (group commit's hot path).

        Dedupe looks at what is stored and at the earlier rows of the same run, in order: a
        message id first, then the business key. A message id is recorded for its original
        whether the message was accepted or was a duplicate by business key (of a stored
        notification or of an earlier row of the run), so that the partner retrying that message
        gets the same answer after the token has expired (docs/architecture.md, Intake).
        """
        q = self._q
        pairs = [[row["partner"], row["message_id"]] for row in rows if row["message_id"]]
        owners: dict[tuple[str, str], str] = {}
        if pairs:
            found = connection.execute(q["message_id_owners"], {"pairs": json.dumps(pairs)})
            owners = {(partner, message): owner for partner, message, owner in found}
        keys = json.dumps([[row["partner"], row["business_key"]] for row in rows])
        found = connection.execute(q["live_by_business_keys"], {"pairs": keys})
        live = {(partner, key): owner for partner, key, owner in found}
        answers: list[Accepted] = []
        accepted: list[dict[str, Any]] = []
        messages: list[list[str]] = []  # (partner, message id, notification id) to record
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
                original = new_id("ntf", row["now"])
                live[business_key] = original
                accepted.append({**row, "id": original})
            if row["message_id"] is not None:
                owners[message] = original
                messages.append([row["partner"], row["message_id"], original])
            answers.append(Accepted(id=original, duplicate=duplicate))
        if accepted:
            # A few multi-row statements per table for the whole run: each executemany row
            # would hand the GIL to the event loop and wait to get it back, on the group's
            # critical path.
            _insert_rows(
                connection, q, "insert_accepted",
                [[row[column] for column in _ACCEPTED_COLUMNS] for row in accepted],
            )  # fmt: skip
            jobs = [
                [row["id"], row["partner"], row["deadline"], *[row["now"]] * 3] for row in accepted
            ]
            _insert_rows(connection, q, "insert_accepted_jobs", jobs)
        # After the notifications: a message id refers to one (accepted now or before).
        _insert_rows(connection, q, "insert_accepted_message_ids", messages)
        return answers

    async def find_message(self, partner: str, message_id: str) -> str | None:
        params = {"partner": partner, "message_id": message_id}

        def op(connection: sqlite3.Connection) -> str | None:
            found = connection.execute(self._q["message_id_owner"], params).fetchone()
            return None if found is None else str(found[0])

        return await self._read(op)

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
            "lease_s": lease_s,
            "limit": limit,
            "skip_jobs": json.dumps(sorted(skip_jobs)),
            "now": self._clock(),
        }
        if kind is JobKind.IMPORT:
            query, fair_share = "claim_imports", fair_share or FairShare()
            params["pace_s"] = fair_share.pace_s
            params["caps"] = json.dumps(dict(fair_share.caps))
            params["no_jumps"] = json.dumps(sorted(fair_share.no_jumps))
        else:
            query = "claim_deliveries"
            params["caps"] = json.dumps(dict(lane_caps or {}))

        def op(connection: sqlite3.Connection) -> list[Job]:
            rows = connection.execute(self._q[query], params).fetchall()
            return sorted((_rows.job(row) for row in rows), key=_claim_order)

        return await self._write(op)

    async def extend_lease(self, job: Job, *, lease_s: float) -> bool:
        op = self._fenced_update("extend_lease", job, lease_s=lease_s, now=self._clock())
        return await self._write(op)

    async def complete(self, job: Job) -> bool:
        return await self._write(self._fenced_update("complete", job, now=self._clock()))

    async def retry(self, job: Job, *, run_after: float, error: str) -> bool:
        op = self._fenced_update("retry", job, run_after=run_after, error=error, now=self._clock())
        return await self._write(op)

    async def bury(self, job: Job, *, error: str) -> bool:
        now, q = self._clock(), self._q
        buried = self._fenced_update("bury", job, error=error, now=now)

        def op(connection: sqlite3.Connection) -> bool:
            if not buried(connection):
                return False
            if job.kind is JobKind.DELIVER:
                connection.execute(q["kill_delivery"], {"id": job.ref, "error": error, "now": now})
            return True

        return await self._write(op)

    async def release(self, job: Job, *, run_after: float | None = None) -> bool:
        now = self._clock()
        due = now if run_after is None else run_after
        return await self._write(self._fenced_update("release", job, now=now, run_after=due))

    async def release_lost_claims(
        self, kind: JobKind, *, owner: str, running: Collection[int]
    ) -> int:
        params = {
            "kind": kind.value,
            "owner": owner,
            "running": json.dumps(sorted(running)),
            "now": self._clock(),
        }
        return await self._write(
            lambda connection: connection.execute(self._q["release_lost_claims"], params).rowcount
        )

    async def recover_orphans(self, owner: str, *, heartbeat_s: float) -> int:
        # One host: a lock file's lock goes only with its process, so it alone tells.
        del heartbeat_s
        owners, q = self._owners, self._q
        if owners is None or not owners.register(owner):
            return 0
        running = await self._read(
            lambda connection: [row[0] for row in connection.execute(q["running_owners"])]
        )
        gone = owners.gone(running)
        if not gone:
            return 0
        params = {"owners": json.dumps(gone), "error": "its worker died", "now": self._clock()}
        return await self._write(
            lambda connection: connection.execute(q["requeue_orphans"], params).rowcount
        )

    # -- imports --------------------------------------------------------------------------

    async def load_notification(self, notification_id: str) -> Notification | None:
        def op(connection: sqlite3.Connection) -> Notification | None:
            row = connection.execute(self._q["select_notification"], {"id": notification_id})
            found = row.fetchone()
            return None if found is None else _rows.notification(found)

        return await self._read(op)

    async def begin_import_attempt(
        self, job: Job, *, kind: AttemptKind = AttemptKind.IMPORT
    ) -> int | None:
        q = self._q
        params = {"notification_id": job.ref, "kind": kind.value, "now": self._clock()}

        def op(connection: sqlite3.Connection) -> int | None:
            if connection.execute(q["job_is_held"], self._fence(job)).fetchone() is None:
                return None
            attempt: int = connection.execute(q["begin_attempt"], params).fetchone()[0]
            return attempt

        return await self._write(op)

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
        q = self._q
        ending = AttemptEnd(
            attempt=attempt,
            http_status=http_status,
            result=result,
            latency_ms=latency_ms,
            error=error,
        )
        params = {**_ending_params(ending), "notification_id": job.ref, "now": self._clock()}

        def op(connection: sqlite3.Connection) -> bool:
            if connection.execute(q["job_is_held"], self._fence(job)).fetchone() is None:
                return False
            return connection.execute(q["end_attempt"], params).rowcount == 1

        return await self._write(op)

    async def sessions_recorded(
        self, session_ids: Collection[str], *, other_than: str
    ) -> frozenset[str]:
        params = {"session_ids": json.dumps(sorted(session_ids)), "id": other_than}
        return await self._read(
            lambda connection: frozenset(
                row[0] for row in connection.execute(self._q["sessions_recorded"], params)
            )
        )

    async def list_import_attempts(self, notification_id: str) -> tuple[ImportAttempt, ...]:
        return await self._read(lambda connection: self._attempts(connection, notification_id))

    def _attempts(
        self, connection: sqlite3.Connection, notification_id: str
    ) -> tuple[ImportAttempt, ...]:
        rows = connection.execute(
            self._q["select_attempts"], {"notification_id": notification_id}
        ).fetchall()
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
        now, q = self._clock(), self._q
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
        completed = self._fenced_update("complete", job, now=now)
        taken = {"session_ids": json.dumps([session.session_id]), "id": job.ref} if session else {}

        def op(connection: sqlite3.Connection) -> bool:
            if not completed(connection):
                return False
            if taken and connection.execute(q["sessions_recorded"], taken).fetchone():
                raise Rollback(False)  # another notification's session: never a second owner
            if connection.execute(q["finish_notification"], finish).rowcount != 1:
                raise Rollback(False)
            if outcome.status is not NotificationStatus.FAILED:  # the token was erased
                self._writer.scrub_soon()
            if ending is not None:
                end = {**_ending_params(ending), "notification_id": job.ref, "now": now}
                if connection.execute(q["end_attempt"], end).rowcount != 1:
                    raise Rollback(False)
            for event in events:
                self._insert_event(connection, job.ref, event, now)
            return True

        return await self._write(op)

    def _insert_event(
        self, connection: sqlite3.Connection, notification_id: str, event: NewEvent, now: float
    ) -> None:
        q = self._q
        connection.execute(
            q["insert_event"],
            {
                "id": event.id,
                "notification_id": notification_id,
                "type": event.type.value,
                "body": event.body,
                "now": now,
            },
        )
        for destination in event.destinations:
            delivery_id = new_id("dlv", now)
            connection.execute(
                q["insert_delivery"],
                {"id": delivery_id, "event_id": event.id, "destination": destination, "now": now},
            )
            connection.execute(
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
        def op(connection: sqlite3.Connection) -> Notification | None:
            query = self._q["select_by_session"]
            found = connection.execute(query, {"session_id": session_id}).fetchone()
            return None if found is None else _rows.notification(found)

        return await self._read(op)

    async def record_status_update(
        self, notification_id: str, *, didit_status: str, signed_at: float, event: NewEvent
    ) -> StatusChange:
        q, now, key = self._q, self._clock(), didit_status_key(didit_status)
        status = {"id": notification_id, "signed_at": signed_at, "key": key}
        update = {
            **status,
            "didit_status": didit_status,
            "final": int(key in DIDIT_FINAL_STATUSES),
            "final_statuses": _FINAL_STATUSES,
            "now": now,
        }

        def op(connection: sqlite3.Connection) -> StatusChange:
            if connection.execute(q["record_didit_status"], update).rowcount == 1:
                self._insert_event(connection, notification_id, event, now)
                return StatusChange.RECORDED
            if connection.execute(q["witness_didit_status"], status).rowcount == 1:
                return StatusChange.UNCHANGED
            return StatusChange.STALE

        return await self._write(op)

    # -- deliveries -----------------------------------------------------------------------

    async def load_delivery(self, delivery_id: str) -> Delivery | None:
        def op(connection: sqlite3.Connection) -> Delivery | None:
            row = connection.execute(self._q["select_delivery"], {"id": delivery_id}).fetchone()
            return None if row is None else _rows.delivery(row)

        return await self._read(op)

    async def mark_delivered(self, job: Job, report: AttemptReport) -> bool:
        _require_deliver(job)
        now = self._clock()
        completed = self._fenced_update("complete", job, now=now)
        return await self._write(
            self._after_attempt(job, report, completed, DeliveryStatus.DELIVERED, now)
        )

    async def delivery_failed(
        self, job: Job, report: AttemptReport, *, retry_at: float | None
    ) -> bool:
        _require_deliver(job)
        now = self._clock()
        error = report.error or f"HTTP {report.http_status}"
        if retry_at is None:
            fenced = self._fenced_update("bury", job, error=error, now=now)
            status = DeliveryStatus.DEAD
        else:
            fenced = self._fenced_update("retry", job, run_after=retry_at, error=error, now=now)
            status = DeliveryStatus.PENDING
        return await self._write(self._after_attempt(job, report, fenced, status, now))

    def _after_attempt(
        self,
        job: Job,
        report: AttemptReport,
        fenced: Callable[[sqlite3.Connection], bool],
        status: DeliveryStatus,
        now: float,
    ) -> Callable[[sqlite3.Connection], bool]:
        q = self._q
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

        def op(connection: sqlite3.Connection) -> bool:
            if not fenced(connection):
                return False
            connection.execute(q["insert_delivery_attempt"], attempt)
            connection.execute(q["update_delivery"], update)
            return True

        return op

    async def set_destination_enabled(
        self, name: str, *, enabled: bool, reason: str | None = None
    ) -> None:
        params = {"name": name, "enabled": int(enabled), "reason": reason, "now": self._clock()}
        query = self._q["upsert_destination_state"]
        await self._write(lambda connection: connection.execute(query, params).rowcount)

    async def destination_states(self) -> list[DestinationState]:
        def op(connection: sqlite3.Connection) -> list[DestinationState]:
            rows = connection.execute(self._q["destination_states"]).fetchall()
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

        return await self._read(op)

    async def redeliver(self, delivery_id: str) -> bool:
        q, now = self._q, self._clock()

        def op(connection: sqlite3.Connection) -> bool:
            if connection.execute(q["requeue_delivery"], {"id": delivery_id, "now": now}).rowcount:
                self._requeue_job(connection, JobKind.DELIVER, delivery_id, now)
                return True
            return False

        return await self._write(op)

    async def redeliver_since(
        self, destination: str, *, since: float, status: DeliveryStatus | None = None
    ) -> int:
        q, now = self._q, self._clock()
        params = {
            "destination": destination,
            "since": since,
            "status": status.value if status else None,
            "now": now,
        }

        def op(connection: sqlite3.Connection) -> int:
            ids = [row[0] for row in connection.execute(q["requeue_deliveries_since"], params)]
            for delivery_id in ids:
                self._requeue_job(connection, JobKind.DELIVER, delivery_id, now)
            return len(ids)

        return await self._write(op)

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

        def op(connection: sqlite3.Connection) -> list[Delivery]:
            rows = connection.execute(self._q["list_deliveries"], params).fetchall()
            return [_rows.delivery(row) for row in rows]

        return await self._read(op)

    def _requeue_job(
        self, connection: sqlite3.Connection, kind: JobKind, ref: str, now: float
    ) -> None:
        connection.execute(self._q["requeue_job"], {"kind": kind.value, "ref": ref, "now": now})

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

        def op(connection: sqlite3.Connection) -> list[Notification]:
            rows = connection.execute(self._q["list_notifications"], params).fetchall()
            return [_rows.notification(row) for row in rows]

        return await self._read(op)

    async def search_notifications(
        self, search: NotificationSearch, *, limit: int = 50, before: str | None = None
    ) -> list[Notification]:
        params = _search.params(search, limit=limit, before=before)
        query = self._q[_search.query_name(search)]

        def op(connection: sqlite3.Connection) -> list[Notification]:
            rows = connection.execute(query, params).fetchall()
            return [_rows.notification(row) for row in rows]

        return await self._read(op)

    async def pending_work(self) -> PendingWork:
        query, now = self._q["pending_work"], self._clock()

        def op(connection: sqlite3.Connection) -> PendingWork:
            row = connection.execute(query).fetchone()
            oldest = row["oldest"]
            return PendingWork(
                pending=row["pending"],
                import_queue=row["import_queue"],
                oldest_pending_age_s=None if oldest is None else max(0.0, now - oldest),
            )

        return await self._read(op)

    async def import_outcomes(self, *, since: float, bucket_s: float) -> list[OutcomeCount]:
        params = {"since": since, "bucket_s": bucket_s}
        query = self._q["import_outcomes_since"]

        def op(connection: sqlite3.Connection) -> list[OutcomeCount]:
            rows = connection.execute(query, params).fetchall()
            return [
                OutcomeCount(
                    bucket=row["bucket"], status=NotificationStatus(row["status"]), count=row["n"]
                )
                for row in rows
            ]

        return await self._read(op)

    async def delivery_totals(self) -> list[DeliveryTotal]:
        query = self._q["delivery_totals"]

        def op(connection: sqlite3.Connection) -> list[DeliveryTotal]:
            return [
                DeliveryTotal(
                    destination=row["destination"],
                    status=DeliveryStatus(row["status"]),
                    count=row["n"],
                )
                for row in connection.execute(query).fetchall()
            ]

        return await self._read(op)

    async def count_deliveries(
        self, *, status: DeliveryStatus | None = None, destination: str | None = None
    ) -> int:
        params = {"status": status.value if status else None, "destination": destination}
        query = self._q["count_matching_deliveries"]

        def op(connection: sqlite3.Connection) -> int:
            count: int = connection.execute(query, params).fetchone()["n"]
            return count

        return await self._read(op)

    async def timeline(self, notification_id: str) -> Timeline | None:
        q = self._q
        by_notification = {"notification_id": notification_id}

        def op(connection: sqlite3.Connection) -> Timeline | None:
            connection.execute("BEGIN")  # one snapshot for every part
            try:
                row = connection.execute(q["select_notification"], {"id": notification_id})
                found = row.fetchone()
                if found is None:
                    return None
                events = connection.execute(q["select_events"], by_notification).fetchall()
                deliveries = connection.execute(
                    q["select_deliveries_of_notification"], by_notification
                ).fetchall()
                attempts = connection.execute(
                    q["select_delivery_attempts_of_notification"], by_notification
                ).fetchall()
                changes = connection.execute(q["select_route_changes"], by_notification)
                vendor_data = found["vendor_data"]
                return Timeline(
                    route_changes=tuple(
                        _rows.route_change(row, vendor_data=vendor_data) for row in changes
                    ),
                    notification=_rows.notification(found, with_token=False),
                    attempts=self._attempts(connection, notification_id),
                    events=tuple(_rows.event(row) for row in events),
                    deliveries=tuple(_rows.delivery(row) for row in deliveries),
                    delivery_attempts=tuple(_rows.delivery_attempt(row) for row in attempts),
                )
            finally:
                connection.execute("COMMIT")

        return await self._read(op)

    async def retry_notification(
        self, notification_id: str, *, route: Route | None = None
    ) -> RetryResult:
        q, now = self._q, self._clock()

        def op(connection: sqlite3.Connection) -> RetryResult:
            row = connection.execute(q["select_notification"], {"id": notification_id}).fetchone()
            if row is None:
                return RetryResult.NOT_FOUND
            job = connection.execute(q["import_job_status"], {"ref": notification_id}).fetchone()
            failed = row["status"] == NotificationStatus.FAILED
            stuck = row["status"] == NotificationStatus.PENDING and (
                job is not None and job["status"] == JobStatus.DEAD
            )
            if not (failed or stuck):
                return RetryResult.NOT_RETRYABLE
            if row["token"] is None or (row["deadline"] is not None and row["deadline"] <= now):
                return RetryResult.TOKEN_GONE
            if failed:
                key = {"partner": row["partner"], "business_key": row["business_key"]}
                if connection.execute(q["live_by_business_key"], key).fetchone() is not None:
                    return RetryResult.SUPERSEDED
                connection.execute(q["reopen_notification"], {"id": notification_id, "now": now})
            old = _rows.notification(row).route
            if route is not None and _rows.routing_columns(route) != _rows.routing_columns(old):
                change = {"notification_id": notification_id, "at": now}
                change |= {f"old_{k}": v for k, v in _rows.routing_columns(old).items()}
                change |= {f"new_{k}": v for k, v in _rows.routing_columns(route).items()}
                connection.execute(q["insert_route_change"], change)
                connection.execute(q["reroute_notification"], change)
            self._requeue_job(connection, JobKind.IMPORT, notification_id, now)
            return RetryResult.REQUEUED

        return await self._write(op)

    async def erase_stale_tokens(self) -> int:
        params = {"now": self._clock(), "retention_s": FAILED_TOKEN_RETENTION_S}
        query = self._q["erase_stale_tokens"]

        def op(connection: sqlite3.Connection) -> int:
            erased: int = connection.execute(query, params).rowcount
            if erased:
                self._writer.scrub_soon()
            return erased

        return await self._write(op)

    async def delete_history(self, *, older_than_s: float, limit: int) -> int:
        q, before = self._q, self._clock() - older_than_s

        def op(connection: sqlite3.Connection) -> int:
            params = {"before": before, "limit": limit, "final_statuses": _FINAL_STATUSES}
            found = connection.execute(q["old_history"], params)
            ids = [row["id"] for row in found]
            if ids:
                params = {"ids": json.dumps(ids)}
                for name in FORGET_QUERIES:
                    connection.execute(q[name], params)
            return len(ids)

        return await self._write(op)

    def on_work(self, kind: JobKind, wake: Callable[[], None]) -> None:
        """One process owns an SQLite file: its own callers wake its workers directly."""

    def shared_quota(self) -> None:
        """One process owns an SQLite file (its owner lock), so its pacer's own count of sends
        is the whole quota: nothing to share."""
        return None

    async def queue_gauges(self) -> QueueGauges:
        q = self._q

        def op(connection: sqlite3.Connection) -> QueueGauges:
            connection.execute("BEGIN")
            try:
                pending = connection.execute(q["pending_gauge"]).fetchone()
                dead = connection.execute(q["dead_deliveries_gauge"]).fetchone()["n"]
                disabled = connection.execute(q["disabled_destinations_gauge"]).fetchone()["n"]
            finally:
                connection.execute("COMMIT")
            return QueueGauges(
                pending_notifications=pending["n"],
                oldest_pending_received_at=pending["oldest"],
                dead_deliveries=dead,
                disabled_destinations=disabled,
            )

        return await self._read(op)

    async def stats(self) -> StoreStats:
        q, now = self._q, self._clock()

        def op(connection: sqlite3.Connection) -> StoreStats:
            connection.execute("BEGIN")
            try:
                notifications = {status.value: 0 for status in NotificationStatus}
                for row in connection.execute(q["count_notifications"]):
                    notifications[row["status"]] = row["n"]
                jobs: dict[str, dict[str, int]] = {
                    kind.value: {status.value: 0 for status in JobStatus} for kind in JobKind
                }
                for row in connection.execute(q["count_jobs"]):
                    jobs[row["kind"]][row["status"]] = row["n"]
                deliveries = {status.value: 0 for status in DeliveryStatus}
                for row in connection.execute(q["count_deliveries"]):
                    deliveries[row["status"]] = row["n"]
                oldest = connection.execute(q["oldest_pending"]).fetchone()["received_at"]
            finally:
                connection.execute("COMMIT")
            return StoreStats(
                notifications=notifications,
                jobs=jobs,
                deliveries=deliveries,
                oldest_pending_age_s=None if oldest is None else max(0.0, now - oldest),
            )

        return await self._read(op)

    async def ping(self) -> None:
        if not self._writer.alive:
            raise StoreUnavailable("the store's writer has stopped")
        await self._read(lambda connection: connection.execute("SELECT 1").fetchone())

    async def durability(self) -> Mapping[str, object]:
        """The writer's journal mode and synchronous level, as SQLite reports them."""

        def op(connection: sqlite3.Connection) -> Mapping[str, object]:
            return {
                "journal_mode": connection.execute("PRAGMA journal_mode").fetchone()[0],
                "synchronous": connection.execute("PRAGMA synchronous").fetchone()[0],
                "foreign_keys": connection.execute("PRAGMA foreign_keys").fetchone()[0],
            }

        return await self._write(op)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._writer.close)
        if self._owners is not None:
            self._owners.close()  # after the writer: no write of ours is left in flight
        await asyncio.get_running_loop().run_in_executor(self._reads, self._reader.close)
        self._reads.shutdown(wait=True)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """sqlite3's errors at the boundary: a caller's mistake is ValueError, others unavailable."""
    try:
        yield
    except (sqlite3.IntegrityError, sqlite3.ProgrammingError) as exc:
        raise ValueError(f"the write conflicts with stored data: {exc}") from exc
    except sqlite3.Error as exc:
        raise translate(exc) from exc


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
