"""The store: every durable fact of share-bridge, behind domain verbs (docs/architecture.md).

``open_store(url, clock=...)`` picks the backend from the URL (``sqlite:///path`` for one
process, ``postgresql://`` for any number of processes on one database) and applies its
migrations. The verbs are the same on every backend:

- **Intake.** ``accept`` stores a notification and its import job in one transaction and
  answers only after the commit. A (partner, message id) once accepted is a duplicate of its
  notification while that is kept; a business key is a duplicate while a notification holding
  it is ``pending`` or ``imported`` (after ``rejected``, ``expired`` or ``failed`` a new one is
  accepted). A duplicate answers the *original* id. Both keys are per partner: one partner's
  notification is never a duplicate of another's (business keys come from unverified claims).
- **Jobs and leases.** ``claim`` leases runnable jobs (queued and due, or running with an
  expired lease), counting an attempt at claim. Imports are claimed fairly between partners
  (each import job's lane is its partner): turns go round the partners with runnable imports,
  each partner's earliest deadline first (no deadline last), the partner served longest ago
  first, and a partner's most urgent import goes ahead of the round when its deadline is at
  risk (``FairShare``); deliveries are claimed by ``run_after``, each destination (a deliver
  job's lane) within its cap of leases held at once (``lane_caps``). Every later write about a
  job is fenced by its lease (job id, owner and attempt number, status ``running``): ``False``
  (or ``None``) means the lease was lost and nothing was written.
- **Import attempts.** ``begin_import_attempt`` is committed before the request is sent, so an
  attempt with no end is on record after a crash; ``end_import_attempt`` stores the result the
  caller gives. What the attempts mean (may one have redeemed the token?) is the import
  pipeline's rule, not the store's.
- **Outcomes.** ``record_outcome`` writes the final status, the events (an outbox whose bytes
  are fixed) and a delivery plus deliver job per destination, and completes the import job,
  all in one transaction.
- **Tokens.** A token is erased when its notification becomes final, except ``failed``: an
  operator may ``retry_notification`` a failed one while its token lives, so that token is
  kept until its deadline passes (or, without a deadline, for ``FAILED_TOKEN_RETENTION_S``
  after it failed), and ``erase_stale_tokens`` (run periodically by ``serve``) erases it
  then. The token's SHA-256 stays as long as its notification. Erased means gone from the
  backend's files within seconds (SQLite: ``secure_delete`` and a truncating WAL checkpoint
  after erasures).
- **Retention.** ``delete_history`` deletes old final notifications with all their rows, in
  bounded batches (run periodically by ``serve`` when ``store.retention_days`` is set). Their
  dedupe goes with them: a share or message id sent again afterwards is a new notification.
- **Shutdown.** ``release`` puts a held job back at once and refunds its attempt: it was
  stopped by us, not by its own failure. A crash, by contrast, keeps the attempt counted.
- **Crash recovery.** ``recover_orphans`` lets a worker (restarted, or running beside it)
  take over the jobs of an owner whose process died, instead of waiting for their leases to
  lapse (SQLite: a lock file per owner, held while its process lives; PostgreSQL: a session
  advisory lock, free and the owner silent past its heartbeat, since a cut session frees the
  lock of a live process too).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from bridge.store.model import (
    FAILED_TOKEN_RETENTION_S,
    Accepted,
    AttemptEnd,
    AttemptKind,
    AttemptReport,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    DeliveryTotal,
    DestinationState,
    Event,
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
    RouteChange,
    StatusChange,
    StoreStats,
    Timeline,
)
from bridge.types import NotificationStatus, Route, SharedQuota

__all__ = [
    "FAILED_TOKEN_RETENTION_S",
    "Accepted",
    "AttemptEnd",
    "AttemptKind",
    "AttemptReport",
    "Clock",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryStatus",
    "DeliveryTotal",
    "DestinationState",
    "Event",
    "FairShare",
    "FinalOutcome",
    "ImportAttempt",
    "Job",
    "JobKind",
    "JobStatus",
    "NewEvent",
    "NewNotification",
    "Notification",
    "NotificationSearch",
    "OutcomeCount",
    "PendingWork",
    "QueueGauges",
    "RetryResult",
    "RouteChange",
    "StatusChange",
    "Store",
    "StoreStats",
    "Timeline",
    "migrate_store",
    "open_store",
    "sqlite_path",
]

Clock = Callable[[], float]
"""Epoch seconds; injected so tests control time."""


class Store(Protocol):
    """The durable state of share-bridge. All methods are coroutines safe to call concurrently."""

    # -- intake ---------------------------------------------------------------------------

    async def accept(self, new: NewNotification) -> Accepted:
        """Store a notification and its import job; return after the commit (or a duplicate)."""
        ...

    async def find_message(self, partner: str, message_id: str) -> str | None:
        """The id of the notification a partner's message id was accepted as, if any."""
        ...

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
        """Lease up to ``limit`` runnable jobs of ``kind``, in claim order; attempts += 1.

        Jobs in ``skip_jobs`` (the caller's own, still running) are never leased again, even
        when their leases look expired (a wall clock stepping forward expires every lease at
        once).

        Deliver jobs of a disabled destination are left for later. A destination (lane) with a
        cap in ``lane_caps`` (its ``max_in_flight``; 0 skips it) gets a deliver job only while
        fewer than its cap of its deliver jobs hold a live lease, counting every process's on
        the store and the caller's ``skip_jobs``: claims of several processes at once never
        take the same last slot. ``lane_caps`` does not apply to imports.

        Import jobs are shared between their lanes (partners), from what the store records
        (so every replica claiming from it shares alike), by ``fair_share`` (None: no caps,
        no deadline at risk):

        - rounds: every lane's first runnable job before any lane's second, each lane in
          earliest-deadline-first order; within a round the lane whose last claim is oldest
          (never claimed: first) goes first;
        - a deadline at risk goes ahead: a lane's first job whose deadline is closer than
          ``(position + running imports) * fair_share.pace_s`` (its place in the rounds plus
          every import already running, at the current pace) is claimed before the round's
          others, most urgent first; unless its lane is in ``fair_share.no_jumps`` or was served
          by the last claim (no lane takes two turns in a row by urgency);
        - a lane with a cap in ``fair_share.caps`` is claimed at most that many times in any
          60 s (a job claimed again within the minute counts once).
        """
        ...

    async def extend_lease(self, job: Job, *, lease_s: float) -> bool:
        """Hold the lease ``lease_s`` more seconds from now."""
        ...

    async def complete(self, job: Job) -> bool:
        """The job is done."""
        ...

    async def retry(self, job: Job, *, run_after: float, error: str) -> bool:
        """Back to the queue, due at ``run_after`` (epoch seconds)."""
        ...

    async def bury(self, job: Job, *, error: str) -> bool:
        """The job is dead; a deliver job's delivery becomes ``dead`` with it.

        A buried import job leaves its notification ``pending`` (no outcome, so no event);
        ``retry_notification`` revives it. Handlers should record a ``failed`` outcome instead.
        """
        ...

    async def release(self, job: Job, *, run_after: float | None = None) -> bool:
        """Back to the queue with the attempt refunded (graceful shutdown, a destination not
        configured): due at once, or from ``run_after`` (epoch seconds)."""
        ...

    async def release_lost_claims(
        self, kind: JobKind, *, owner: str, running: Collection[int]
    ) -> int:
        """Back to the queue at once, attempts refunded, the jobs of ``kind`` leased to
        ``owner`` but not in ``running``: a claim that committed while its answer was lost (the
        connection went as it ended), which no one runs. How many."""
        ...

    async def recover_orphans(self, owner: str, *, heartbeat_s: float) -> int:
        """Mark ``owner`` alive while this store is open, and requeue at once the running
        jobs of owners known to be gone (their process died); how many were requeued.

        A crash keeps their attempts counted. Owners whose liveness cannot be told keep
        their jobs until the leases lapse. A worker calls this before its first claim and
        again with each heartbeat, every ``heartbeat_s`` at most: an owner that lost its hold
        on its liveness (a cut database session) but keeps calling is not judged gone.
        """
        ...

    # -- imports --------------------------------------------------------------------------

    async def load_notification(self, notification_id: str) -> Notification | None:
        """One notification, with its token while it still has one."""
        ...

    async def begin_import_attempt(
        self, job: Job, *, kind: AttemptKind = AttemptKind.IMPORT
    ) -> int | None:
        """Record that an attempt for ``job.ref`` starts now; its number, or None (lease lost)."""
        ...

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
        """Record how an attempt ended, with the ``result`` the caller made of the answer.

        False if the lease was lost or that attempt already has an end.
        """
        ...

    async def list_import_attempts(self, notification_id: str) -> tuple[ImportAttempt, ...]:
        """A notification's attempts, oldest first."""
        ...

    async def record_outcome(
        self,
        job: Job,
        outcome: FinalOutcome,
        events: Sequence[NewEvent],
        *,
        ending: AttemptEnd | None = None,
    ) -> bool:
        """Finish ``job``'s notification, write its events and deliveries, complete the job,
        and end the attempt whose answer decided it (``ending``).

        One transaction: all of it, or nothing and False: the lease was lost, the notification
        is no longer pending, or the outcome's Didit session is already another notification's.
        """
        ...

    async def sessions_recorded(
        self, session_ids: Collection[str], *, other_than: str
    ) -> frozenset[str]:
        """Which of these Didit sessions are recorded on notifications other than
        ``other_than``: a session is one share's, never a second's."""
        ...

    async def find_by_session(self, session_id: str) -> Notification | None:
        """The notification whose import created Didit session ``session_id``, if any."""
        ...

    async def record_status_update(
        self, notification_id: str, *, didit_status: str, signed_at: float, event: NewEvent
    ) -> StatusChange:
        """Store Didit's status ``didit_status``, signed at ``signed_at`` (epoch seconds), for an
        imported notification, and its event: one transaction.

        ``RECORDED`` (status, its signed time and the event written) only when the notification
        is ``imported``, the status differs from the one on record (compared by
        ``didit_status_key``), and it ranks at least as high: a decided status
        (``DIDIT_FINAL_STATUSES``) above an undecided one, then the later ``signed_at`` (a status
        from the import's answer has no signed time and ranks lowest in its class). So a decided
        status is never replaced by an undecided one, a replayed older status changes nothing,
        and concurrent updates end on the same status whatever their order: the rules are
        conditions of the write itself. ``UNCHANGED``: the status on record is this one (a
        replay or a re-send); its signed time moves forward to ``signed_at`` if later, no event.
        ``STALE``: nothing written.
        """
        ...

    # -- deliveries -----------------------------------------------------------------------

    async def load_delivery(self, delivery_id: str) -> Delivery | None:
        """One delivery with its event."""
        ...

    async def mark_delivered(self, job: Job, report: AttemptReport) -> bool:
        """Record the successful attempt, mark the delivery delivered, complete the job."""
        ...

    async def delivery_failed(
        self, job: Job, report: AttemptReport, *, retry_at: float | None
    ) -> bool:
        """Record the failed attempt; retry the job at ``retry_at``, or (None) bury it: dead."""
        ...

    async def set_destination_enabled(
        self, name: str, *, enabled: bool, reason: str | None = None
    ) -> None:
        """Disable (its deliveries wait, never dropped) or re-enable a destination."""
        ...

    async def destination_states(self) -> list[DestinationState]:
        """Every destination with a state or deliveries: enabled, pending, dead, last error."""
        ...

    async def redeliver(self, delivery_id: str) -> bool:
        """Send a delivered or dead delivery again, schedule restarted; False if not such."""
        ...

    async def redeliver_since(
        self, destination: str, *, since: float, status: DeliveryStatus | None = None
    ) -> int:
        """Redeliver a destination's delivered or dead deliveries updated since ``since``."""
        ...

    async def list_deliveries(
        self,
        *,
        status: DeliveryStatus | None = None,
        destination: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Delivery]:
        """Deliveries newest first, with their events; page with ``before`` = the last id."""
        ...

    # -- operations -----------------------------------------------------------------------

    async def list_notifications(
        self,
        *,
        status: NotificationStatus | None = None,
        partner: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Notification]:
        """Newest first (tokens not loaded); page with ``before`` = the last id seen."""
        ...

    async def search_notifications(
        self, search: NotificationSearch, *, limit: int = 50, before: str | None = None
    ) -> list[Notification]:
        """Newest first (tokens not loaded), each filter answered from an index; page with
        ``before`` = the last id seen."""
        ...

    async def pending_work(self) -> PendingWork:
        """Pending notifications, the oldest one's age and the import queue, from indexes only
        (``stats`` counts everything, for metrics)."""
        ...

    async def import_outcomes(self, *, since: float, bucket_s: float) -> list[OutcomeCount]:
        """Notifications that became final since ``since``, per ``bucket_s`` and status."""
        ...

    async def delivery_totals(self) -> list[DeliveryTotal]:
        """Deliveries per destination and status (non-zero counts only)."""
        ...

    async def count_deliveries(
        self, *, status: DeliveryStatus | None = None, destination: str | None = None
    ) -> int:
        """How many deliveries ``list_deliveries`` with these filters would walk through."""
        ...

    async def timeline(self, notification_id: str) -> Timeline | None:
        """A notification with its attempts, events, deliveries and delivery attempts."""
        ...

    async def retry_notification(
        self, notification_id: str, *, route: Route | None = None
    ) -> RetryResult:
        """Re-run a failed notification (or a pending one whose job died) while its token lives.

        ``route``: the route to run it with from now on (the running configuration's); when it
        differs from the stored one, the change is kept for the timeline. None keeps the route.
        """
        ...

    async def erase_stale_tokens(self) -> int:
        """Erase tokens no retry can use any more (see the module docstring); how many."""
        ...

    async def delete_history(self, *, older_than_s: float, limit: int) -> int:
        """Delete up to ``limit`` notifications final for more than ``older_than_s`` seconds
        that nothing can act on any more, with every row of theirs (events, deliveries and
        their attempts, import attempts, route changes, message ids, jobs), oldest first, in
        one transaction; how many notifications.

        Kept: pending notifications, a failed one while its token is kept (a retry may still
        use it), an imported one until its Didit status is decided (``DIDIT_FINAL_STATUSES``:
        the decision webhook must find it), and any notification with a delivery pending.
        Replicas sharing a database each delete their own batch at once without waiting for
        one another.
        """
        ...

    def on_work(self, kind: JobKind, wake: Callable[[], None]) -> None:
        """Call ``wake`` (on the event loop) when another process may have made jobs of
        ``kind`` claimable, as soon as the backend can tell (PostgreSQL: LISTEN/NOTIFY). A
        hint only: it can be missed, and SQLite (one process) never calls it; workers poll."""
        ...

    async def stats(self) -> StoreStats:
        """Counts of every row by status (reads whole tables: for tools, not for scrapes)."""
        ...

    def shared_quota(self) -> SharedQuota | None:
        """Where the Didit quota is counted for every process using this store, when several
        can (PostgreSQL: each send is taken in a transaction locked on the quota, by the
        database's clock); None when one process owns the store (SQLite), whose pacer's own
        count is the whole quota."""
        ...

    async def queue_gauges(self) -> QueueGauges:
        """The gauges ``/metrics`` serves, read without counting the whole history."""
        ...

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the store can read and its writer runs."""
        ...

    async def close(self) -> None:
        """Finish queued writes and release the backend."""
        ...


_SQLITE = "sqlite:///"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite store URL, absolute; None for another backend.

    SQLAlchemy's rule: ``sqlite:///relative/path.db`` (three slashes) is relative to the working
    directory, ``sqlite:////absolute/path.db`` (four) is absolute.
    """
    if url.startswith(_SQLITE) and len(url) > len(_SQLITE):
        return Path(url.removeprefix(_SQLITE)).absolute()
    return None


def open_store(
    url: str,
    *,
    clock: Clock,
    token_keys: Sequence[bytes] = (),
    schema: str | None = None,
    pool_size: int = 10,
    pool_timeout_s: float = 2.0,
) -> Store:
    """Open the store at ``url``, creating and migrating it if needed.

    ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (see :func:`sqlite_path`):
    the parent directory is created and the file migrated now.
    ``postgresql://user:password@host:5432/db``: a pool of up to ``pool_size`` connections whose
    search_path is ``schema`` (default ``public``), connected and migrated at the first call; a
    call that waits ``pool_timeout_s`` for a connection raises ``StoreUnavailable``;
    share tokens are sealed with ``token_keys`` (32-byte keys, the first seals, all open; at
    least one). Raises ``StoreUnavailable`` if it cannot be opened, ``ValueError`` for a URL of
    no supported backend or missing keys.
    """
    path = sqlite_path(url)
    if path is not None:
        from bridge.store.sqlite import SqliteStore

        return SqliteStore.open(path, clock=clock)
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        from bridge.store.postgres import PostgresStore

        return PostgresStore.open(
            url,
            clock=clock,
            token_keys=token_keys,
            schema=schema,
            pool_size=pool_size,
            pool_timeout_s=pool_timeout_s,
        )
    raise ValueError(f"unsupported store url scheme: {url.split(':', 1)[0]!r}")


async def migrate_store(store: Store) -> None:
    """Apply the store's migrations now (SQLite applied them at open): a deploy step."""
    from bridge.store.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        await store.migrate()
    else:
        await store.ping()
