"""The downstream events of docs/events.md: their exact bytes are fixed when created.

Every retry and replay of a delivery sends these same bytes with the same ``webhook-id`` (the
event id), so an event is rendered once, stored in the outbox, and never rendered again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from bridge.times import iso_utc
from bridge.types import DiditSession, EventType, NotificationStatus, Reason, Route, SessionKind

EVENT_FOR_STATUS: Mapping[NotificationStatus, EventType] = {
    NotificationStatus.IMPORTED: EventType.IMPORTED,
    NotificationStatus.REJECTED: EventType.REJECTED,
    NotificationStatus.EXPIRED: EventType.EXPIRED,
    NotificationStatus.FAILED: EventType.FAILED,
}


class SharedNotification(Protocol):
    """The fields of a stored notification that its events report (``bridge.store.Notification``).

    A protocol, not an import: ``bridge.events`` and ``bridge.store`` are independent siblings in
    the layers of ``pyproject.toml``, so neither may import the other.
    """

    @property
    def id(self) -> str: ...
    @property
    def partner(self) -> str: ...
    @property
    def partner_event_id(self) -> str | None: ...
    @property
    def session_kind(self) -> SessionKind: ...
    @property
    def source_application_id(self) -> str | None: ...
    @property
    def source_session_id(self) -> str | None: ...
    @property
    def route(self) -> Route: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ShareFacts:
    """What an event says about the share it reports on (never the token)."""

    notification_id: str
    partner: str
    partner_event_id: str | None
    session_kind: SessionKind
    source_application_id: str | None
    source_session_id: str | None
    route: Route

    @classmethod
    def of(cls, notification: SharedNotification) -> ShareFacts:
        """The facts of a stored notification: every event about it is rendered from these."""
        return cls(
            notification_id=notification.id,
            partner=notification.partner,
            partner_event_id=notification.partner_event_id,
            session_kind=notification.session_kind,
            source_application_id=notification.source_application_id,
            source_session_id=notification.source_session_id,
            route=notification.route,
        )


def render_event(
    *,
    event_id: str,
    event_type: EventType,
    created_at: float,
    share: ShareFacts,
    session: DiditSession | None,
    reason: Reason | None,
) -> bytes:
    """The event's body, as every delivery of it will send it."""
    data: dict[str, Any] = {
        "notification_id": share.notification_id,
        "partner": share.partner,
        "partner_event_id": share.partner_event_id,
        "rule": share.route.rule,
        "session_kind": share.session_kind.value,
        "source": {
            "application_id": share.source_application_id,
            "session_id": share.source_session_id,
        },
        "workflow_id": share.route.workflow_id,
        "vendor_data": share.route.vendor_data,
        "trust_review": share.route.trust_review,
        "session": None
        if session is None
        else {
            "session_id": session.session_id,
            "session_number": session.session_number,
            "status": session.status,
        },
        "reason": None
        if reason is None
        else {"code": reason.code, "message": reason.message, "http_status": reason.http_status},
    }
    event = {"type": event_type.value, "id": event_id, "created_at": iso_utc(created_at)}
    return orjson.dumps({**event, "data": data})


PING = "share.ping"


def render_ping(*, event_id: str, created_at: float, destination: str) -> bytes:
    """The body of ``share.ping``: a test event ``check-config --online`` sends each destination.
    It stands for no notification; a consumer answers 2xx and does nothing else."""
    event = {"type": PING, "id": event_id, "created_at": iso_utc(created_at)}
    return orjson.dumps({**event, "data": {"destination": destination}})
