"""The store's value types: what goes in, what comes out. Frozen, keyword-only, backend-neutral.

Times are epoch seconds (floats) taken from the store's injected clock. Fields holding a share
token are left out of ``repr`` so a value logged by mistake does not leak it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bridge.types import DiditSession, EventType, NotificationStatus, Reason, Route, SessionKind


class JobKind(StrEnum):
    IMPORT = "import"  # ref = notification id, lane = partner; claimed in turns by partner
    DELIVER = "deliver"  # ref = delivery id; lane = destination; claimed by run_after


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for run_after
    RUNNING = "running"  # leased by lease_owner until lease_expires_at
    DONE = "done"
    DEAD = "dead"  # buried; an operator revives it (retry / redeliver)


class AttemptKind(StrEnum):
    IMPORT = "import"  # POST /v3/session/import-shared/
    RECONCILE = "reconcile"  # GET /v3/sessions/ after an ambiguous import


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # queued or retrying; waits while its destination is disabled
    DELIVERED = "delivered"
    DEAD = "dead"  # schedule exhausted or aborted; `bridge redeliver` revives it


class RetryResult(StrEnum):
    """What ``Store.retry_notification`` did."""

    REQUEUED = "requeued"
    NOT_FOUND = "not_found"
    NOT_RETRYABLE = "not_retryable"  # not failed (nor pending with a dead job)
    # erased, or past its deadline: only the partner can send it again
    TOKEN_GONE = "token_gone"  # noqa: S105 - a state, not a secret
    SUPERSEDED = "superseded"  # a newer notification for the same share is pending or imported
    # the caller's re-route found no rule of the notification's name in the running config
    RULE_GONE = "rule_gone"


class StatusChange(StrEnum):
    """What ``Store.record_status_update`` did with a Didit status."""

    RECORDED = "recorded"  # a new status: stored, with its event
    UNCHANGED = "unchanged"  # the status on record already (a replay, a re-send): no event
    STALE = "stale"  # signed before the status on record, a downgrade, or not imported


#: How long a failed notification without a deadline keeps its token for an operator retry.
FAILED_TOKEN_RETENTION_S = 86_400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class NewNotification:
    """A verified, routed notification, as intake hands it to ``Store.accept``."""

    partner: str
    partner_event_id: str | None
    message_id: str | None  # webhook-id / jti: a replay of it is a duplicate forever
    business_key: str  # (from_application_id, session_id) or the token's SHA-256; live per partner
    token: str = field(repr=False)
    token_sha256: str
    session_kind: SessionKind
    source_application_id: str | None
    source_session_id: str | None
    deadline: float | None  # token exp minus a margin; None when the token has no exp
    route: Route
    trace_context: str | None = None  # the intake span's W3C traceparent, when traces are on


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    """The answer to ``accept``: the notification's id, the original one for a duplicate."""

    id: str
    duplicate: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """A stored notification. ``token`` is None once erased, and in listings (never loaded)."""

    id: str
    partner: str
    partner_event_id: str | None
    message_id: str | None
    business_key: str
    token: str | None = field(repr=False)
    token_sha256: str
    session_kind: SessionKind
    source_application_id: str | None
    source_session_id: str | None
    deadline: float | None
    route: Route
    status: NotificationStatus
    reason: Reason | None
    session: DiditSession | None
    received_at: float
    finished_at: float | None
    updated_at: float
    trace_context: str | None = None  # W3C traceparent of its intake span; later spans join it


@dataclass(frozen=True, slots=True, kw_only=True)
class FairShare:
    """How an import claim shares the quota between partners (lanes); see ``Store.claim``."""

    pace_s: float = 0.0
    """Seconds per import at the current quota: what a deadline at risk is measured with
    (0: no deadline is ever at risk)."""
    caps: Mapping[str, int] = field(default_factory=dict)
    """Imports per minute a lane may start at most (a configured cap, or a slowed partner's)."""
    no_jumps: frozenset[str] = frozenset()
    """Lanes whose deadlines never go ahead of other lanes (partners slowed for rejections)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A leased job, as ``claim`` returns it. (id, owner, attempts) identify the lease."""

    id: int
    kind: JobKind
    ref: str  # notification id (import) or delivery id (deliver)
    lane: str | None  # the destination of a deliver job, the partner of an import
    attempts: int  # incremented at claim, so a crash still counts
    owner: str
    deadline: float | None
    run_after: float
    lease_expires_at: float
    last_error: str | None
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportAttempt:
    """One call to Didit for a notification, recorded as started before it was sent."""

    notification_id: str
    attempt: int
    kind: AttemptKind
    started_at: float
    ended_at: float | None
    http_status: int | None
    result: str | None
    latency_ms: int | None
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptEnd:
    """How an attempt ended, for ``end_import_attempt`` or, with the outcome it decides, for
    ``record_outcome`` (one transaction: a final answer is never kept without its outcome)."""

    attempt: int
    http_status: int | None
    result: str  # what the caller made of the answer, stored as given
    latency_ms: int
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalOutcome:
    """The final state of a notification, written by ``record_outcome``."""

    status: NotificationStatus  # a final one: imported, rejected, expired or failed
    reason: Reason | None = None
    session: DiditSession | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEvent:
    """An outbox event; ``body`` is the exact bytes every delivery and replay will send."""

    id: str  # "evt_..." from ``bridge.store.ids.new_id("evt", now)``; also inside body
    type: EventType
    body: bytes
    destinations: tuple[str, ...]  # one delivery (and deliver job) per destination


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    id: str
    notification_id: str
    type: EventType
    body: bytes
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One event to one destination, with the event it sends."""

    id: str
    destination: str
    status: DeliveryStatus
    attempts: int  # attempts recorded (not job claims)
    created_at: float
    updated_at: float
    delivered_at: float | None
    last_error: str | None
    event: Event
    trace_context: str | None = None  # its notification's (see Notification.trace_context)
    partner: str | None = None  # its notification's partner and rule, for its trace span
    rule: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptReport:
    """What a delivery handler observed for one POST, as passed to the store."""

    http_status: int | None
    latency_ms: int
    response_excerpt: bytes = b""  # the store keeps the first 2 KB
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryAttempt:
    delivery_id: str
    attempt: int
    at: float
    http_status: int | None
    latency_ms: int
    response_excerpt: bytes
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DestinationState:
    """A destination's health and backlog, for `bridge destinations list`."""

    name: str
    enabled: bool
    changed_at: float | None
    reason: str | None
    pending: int
    dead: int
    last_error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteChange:
    """A retry moved a notification to the running configuration's route for its rule."""

    at: float
    old: Route
    new: Route


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """Everything that happened to one notification, for `bridge notifications show`."""

    notification: Notification
    attempts: tuple[ImportAttempt, ...]
    events: tuple[Event, ...]
    deliveries: tuple[Delivery, ...]
    delivery_attempts: tuple[DeliveryAttempt, ...]
    route_changes: tuple[RouteChange, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreStats:
    """Counts for metrics and readiness."""

    notifications: Mapping[str, int]  # per status (every status present, zero included)
    jobs: Mapping[str, Mapping[str, int]]  # kind -> status -> count
    deliveries: Mapping[str, int]  # per status
    oldest_pending_age_s: float | None  # the oldest pending notification; None when none


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueGauges:
    """What ``/metrics`` shows of the store on every scrape, read through indexes only: the cost
    follows the pending and dead rows and the destinations, not the size of the history."""

    pending_notifications: int
    oldest_pending_received_at: float | None  # None when nothing is pending
    dead_deliveries: int
    disabled_destinations: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationSearch:
    """What the console's listing filters on; None (or an empty range) filters nothing.

    ``key`` is a notification id, a partner's event id, a vendor_data or a token's SHA-256;
    ``received_from`` and ``received_until`` (epoch s) bound when it was received.
    """

    status: NotificationStatus | None = None
    partner: str | None = None
    rule: str | None = None
    key: str | None = None
    received_from: float | None = None
    received_until: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingWork:
    """What waits, counted from the indexes of what waits (cheap with any history)."""

    pending: int  # notifications
    import_queue: int  # import jobs queued or running
    oldest_pending_age_s: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeCount:
    """Notifications that reached ``status`` in one time bucket (0 = the oldest)."""

    bucket: int
    status: NotificationStatus
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryTotal:
    """Deliveries of one destination in one status."""

    destination: str
    status: DeliveryStatus
    count: int
