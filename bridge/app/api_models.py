"""The HTTP API's bodies as pydantic models: what each route accepts and answers.

One source for three things: the admin API validates its query parameters and bodies with the
request models, builds its answers from the answer models, and ``/openapi.json`` is generated
from both (``bridge.app.api_routes`` says which route takes and answers which). Every model
forbids fields it does not declare, so the document says ``additionalProperties: false`` and
an answer with an undeclared field fails its own model.

Times are RFC 3339 strings in UTC (``null`` when unknown). No model holds a share token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    WithJsonSchema,
)

from bridge.app.operations import REDELIVERABLE
from bridge.config.fields import NAME_PATTERN
from bridge.events import PING
from bridge.store import DeliveryStatus
from bridge.store.model import AttemptKind
from bridge.types import EventType, NotificationStatus, SessionKind

__all__ = [
    "DEFAULT_PAGE",
    "EVENTS",
    "MAX_PAGE",
    "MAX_TEXT",
    "PARTNER_NAME",
    "Accepted",
    "Delivery",
    "DeliveryPage",
    "DeliveryQuery",
    "Destination",
    "DestinationList",
    "DiditWebhookAnswer",
    "Duplicate",
    "Enabled",
    "Error",
    "Event",
    "Health",
    "Issue",
    "Model",
    "Notification",
    "NotificationPage",
    "NotificationQuery",
    "Overview",
    "PingEvent",
    "Readiness",
    "RecoverBody",
    "Recovered",
    "Redelivered",
    "Reloaded",
    "Requeued",
    "RetryQuery",
    "Route",
    "Timeline",
]

MAX_PAGE: Final = 500
DEFAULT_PAGE: Final = 50
MAX_TEXT: Final = 200
_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)

Time = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]


class Model(BaseModel):
    """Every body: frozen, and no field it does not declare."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# -- answers --------------------------------------------------------------------------------


class Issue(Model):
    file: str
    line: int | None
    path: str
    message: str


class ErrorDetail(Model):
    code: str = Field(description="Stable: clients branch on it")
    message: str
    issues: list[Issue] | None = Field(
        default=None, description="A refused configuration's issues (reload only)"
    )


class Error(Model):
    error: ErrorDetail


class Accepted(Model):
    id: str
    status: Literal["accepted"]


class Duplicate(Model):
    id: str
    status: Literal["duplicate"]


class DiditWebhookAnswer(Model):
    status: Literal["recorded", "unchanged", "ignored"]


class Health(Model):
    status: Literal["ok"]


class ReadinessChecks(Model):
    config: bool
    workers: bool
    store: bool


class Readiness(Model):
    ready: bool
    checks: ReadinessChecks


class Route(Model):
    rule: str
    workflow_id: str
    vendor_data: str
    trust_review: bool
    destinations: list[str]


class Reason(Model):
    code: str
    message: str
    http_status: int | None


class Session(Model):
    session_id: str
    session_number: int | None
    status: str | None


class Source(Model):
    application_id: str | None
    session_id: str | None


class Notification(Model):
    id: str
    partner: str
    partner_event_id: str | None
    status: NotificationStatus
    session_kind: SessionKind
    source: Source
    token_sha256: str
    route: Route
    reason: Reason | None
    session: Session | None
    deadline: Time | None
    received_at: Time
    finished_at: Time | None


class EventRef(Model):
    id: str
    type: EventType
    notification_id: str
    created_at: Time


class Delivery(Model):
    id: str
    destination: str
    status: DeliveryStatus
    attempts: NonNegativeInt
    last_error: str | None
    created_at: Time
    updated_at: Time
    delivered_at: Time | None
    event: EventRef


class Attempt(Model):
    attempt: int
    kind: AttemptKind
    started_at: Time
    ended_at: Time | None
    http_status: int | None
    result: str | None
    latency_ms: int | None
    error: str | None


class TimelineEvent(Model):
    id: str
    type: EventType
    created_at: Time


class RouteChange(Model):
    at: Time
    old: Route
    new: Route


class DeliveryAttempt(Model):
    delivery_id: str
    attempt: int
    at: Time
    http_status: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str


class Timeline(Model):
    notification: Notification
    attempts: list[Attempt]
    events: list[TimelineEvent]
    route_changes: list[RouteChange] = Field(
        description="Re-routes by retries with the running configuration"
    )
    deliveries: list[Delivery]
    delivery_attempts: list[DeliveryAttempt]


_NEXT: Final = "Pass as `before` for the next page; null on the last page."


class NotificationPage(Model):
    items: list[Notification]
    next: str | None = Field(description=_NEXT)


class DeliveryPage(Model):
    items: list[Delivery]
    next: str | None = Field(description=_NEXT)


class Destination(Model):
    name: str
    configured: bool
    enabled: bool
    changed_at: Time | None
    reason: str | None
    pending: NonNegativeInt
    dead: NonNegativeInt
    last_error: str | None


class DestinationList(Model):
    items: list[Destination]


class Chart(Model):
    since: Time
    bucket_s: float
    counts: dict[str, list[NonNegativeInt]]
    totals: dict[str, NonNegativeInt]


class DestinationHealth(Model):
    destination: str
    delivered: NonNegativeInt
    pending: NonNegativeInt
    dead: NonNegativeInt
    success_rate: float | None


class Quota(Model):
    limit_per_minute: int
    budget_per_minute: int
    paused_until: Time | None
    waits: NonNegativeInt


class Overview(Model):
    at: Time
    pending: NonNegativeInt
    import_queue: NonNegativeInt
    oldest_pending_age_s: float | None
    last_hour: Chart
    last_day: Chart
    deliveries: list[DestinationHealth]
    quota: Quota | None
    alerts: dict[str, NonNegativeInt]


class Requeued(Model):
    id: str
    result: Literal["requeued"]


class Enabled(Model):
    name: str
    enabled: Literal[True]


class Recovered(Model):
    destination: str
    requeued: NonNegativeInt


class Redelivered(Model):
    id: str
    status: Literal["pending"]


class Reloaded(Model):
    status: Literal["reloaded"]


class EventData(Model):
    notification_id: str
    partner: str
    partner_event_id: str | None
    rule: str
    session_kind: SessionKind
    source: Source
    workflow_id: str
    vendor_data: str
    trust_review: bool
    session: Session | None
    reason: Reason | None


class Event(Model):
    """A ``share.*`` event, as our own systems receive it (docs/events.md)."""

    type: EventType
    id: str = Field(description="Also the webhook-id header")
    created_at: Time
    data: EventData


class PingData(Model):
    destination: str


class PingEvent(Model):
    """``check-config --online``'s test event."""

    type: Annotated[str, Field(json_schema_extra={"const": PING})]
    id: str
    created_at: Time
    data: PingData


#: What destinations receive: each is described in the document's ``webhooks``.
EVENTS: Final[tuple[type[Model], ...]] = (Event, PingEvent)


# -- requests -------------------------------------------------------------------------------


def _digits(raw: object) -> object:
    """A page size is written in ASCII digits: no sign, space, underscore or fraction."""
    if isinstance(raw, str) and not (raw.isascii() and raw.isdigit()):
        raise ValueError("must be an integer written in digits")
    return raw


Limit = Annotated[int, Field(ge=1, le=MAX_PAGE, description="Page size."), BeforeValidator(_digits)]
Before = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
_BEFORE: Final = "The `next` of the previous page."


class NotificationQuery(Model):
    status: NotificationStatus | None = Field(default=None, description="Only this status.")
    partner: Text | None = Field(default=None, description="Only this partner.")
    limit: Limit = DEFAULT_PAGE
    before: Before | None = Field(default=None, description=_BEFORE)


class DeliveryQuery(Model):
    status: DeliveryStatus | None = Field(default=None, description="Only this status.")
    destination: Text | None = Field(default=None, description="Only this destination.")
    limit: Limit = DEFAULT_PAGE
    before: Before | None = Field(default=None, description=_BEFORE)


class RetryQuery(Model):
    keep_route: Literal["true", "false"] = Field(
        default="false", description="true: retry with the route stored at intake"
    )


def _epoch_s(since: str) -> float:
    """An RFC 3339 date-time with an offset, in epoch seconds; ValueError for anything else."""
    if _RFC3339.fullmatch(since) is None:
        raise ValueError("must be an RFC 3339 date-time with an offset")
    try:
        moment = datetime.fromisoformat(since.upper().replace("Z", "+00:00"))
        # In UTC, a time near year 1 or 9999 may leave the calendar ("9999-12-31T23:59:59-01:00").
        return moment.astimezone(UTC).timestamp()
    except (ValueError, OverflowError):
        raise ValueError("is not a valid date-time") from None


def _date_time(since: str) -> str:
    _epoch_s(since)
    return since


def _redeliverable(status: DeliveryStatus) -> DeliveryStatus:
    if status not in REDELIVERABLE:
        raise ValueError(f"must be one of: {', '.join(_REDELIVERABLE)}")
    return status


_REDELIVERABLE: Final = sorted(status.value for status in REDELIVERABLE)
Redeliverable = Annotated[
    DeliveryStatus,
    AfterValidator(_redeliverable),
    WithJsonSchema({"type": "string", "enum": _REDELIVERABLE}),
]


class RecoverBody(Model):
    since: Annotated[
        str, AfterValidator(_date_time), WithJsonSchema({"type": "string", "format": "date-time"})
    ]
    status: Redeliverable | None = None

    @property
    def since_epoch_s(self) -> float:
        return _epoch_s(self.since)


#: The intake's path parameter: any valid partner name (the document names no partner).
PARTNER_NAME: Final[Mapping[str, object]] = {"type": "string", "pattern": NAME_PATTERN}
