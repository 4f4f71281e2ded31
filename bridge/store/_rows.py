"""Rows to values, for any backend whose rows are indexable by column name."""

from __future__ import annotations

import json
from typing import Any, Protocol

from bridge.store.model import (
    AttemptKind,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Event,
    ImportAttempt,
    Job,
    JobKind,
    Notification,
    RouteChange,
)
from bridge.types import DiditSession, EventType, NotificationStatus, Reason, Route, SessionKind


class Row(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...


def job(row: Row) -> Job:
    return Job(
        id=row["id"],
        kind=JobKind(row["kind"]),
        ref=row["ref"],
        lane=row["lane"],
        attempts=row["attempts"],
        owner=row["lease_owner"],
        deadline=row["deadline"],
        run_after=row["run_after"],
        lease_expires_at=row["lease_expires_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
    )


def notification(row: Row, *, with_token: bool = True) -> Notification:
    reason = None
    if row["reason_code"] is not None:
        reason = Reason(
            code=row["reason_code"],
            message=row["reason_message"] or "",
            http_status=row["reason_http_status"],
        )
    session = None
    if row["session_id"] is not None:
        session = DiditSession(
            session_id=row["session_id"],
            session_number=row["session_number"],
            status=row["didit_status"],
        )
    return Notification(
        id=row["id"],
        partner=row["partner"],
        partner_event_id=row["partner_event_id"],
        message_id=row["message_id"],
        business_key=row["business_key"],
        token=row["token"] if with_token else None,
        token_sha256=row["token_sha256"],
        session_kind=SessionKind(row["session_kind"]),
        source_application_id=row["source_application_id"],
        source_session_id=row["source_session_id"],
        deadline=row["deadline"],
        route=Route(
            rule=row["rule"],
            workflow_id=row["workflow_id"],
            vendor_data=row["vendor_data"],
            trust_review=bool(row["trust_review"]),
            destinations=tuple(json.loads(row["destinations"])),
        ),
        status=NotificationStatus(row["status"]),
        reason=reason,
        session=session,
        received_at=row["received_at"],
        finished_at=row["finished_at"],
        updated_at=row["updated_at"],
        trace_context=row["trace_context"],
    )


def import_attempt(row: Row) -> ImportAttempt:
    return ImportAttempt(
        notification_id=row["notification_id"],
        attempt=row["attempt"],
        kind=AttemptKind(row["kind"]),
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        http_status=row["http_status"],
        result=row["result"],
        latency_ms=row["latency_ms"],
        error=row["error"],
    )


def event(row: Row) -> Event:
    return Event(
        id=row["id"],
        notification_id=row["notification_id"],
        type=EventType(row["type"]),
        body=bytes(row["body"]),
        created_at=row["created_at"],
    )


def delivery(row: Row) -> Delivery:
    return Delivery(
        id=row["id"],
        destination=row["destination"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        delivered_at=row["delivered_at"],
        last_error=row["last_error"],
        event=Event(
            id=row["event_id"],
            notification_id=row["notification_id"],
            type=EventType(row["type"]),
            body=bytes(row["body"]),
            created_at=row["event_created_at"],
        ),
        trace_context=row["trace_context"],
        partner=row["partner"],
        rule=row["rule"],
    )


def delivery_attempt(row: Row) -> DeliveryAttempt:
    return DeliveryAttempt(
        delivery_id=row["delivery_id"],
        attempt=row["attempt"],
        at=row["at"],
        http_status=row["http_status"],
        latency_ms=row["latency_ms"],
        response_excerpt=bytes(row["response_excerpt"]),
        error=row["error"],
    )


def route_change(row: Row, *, vendor_data: str) -> RouteChange:
    """A re-route; ``vendor_data`` is the notification's (a re-route never changes it)."""

    def route(side: str) -> Route:
        return Route(
            rule=row[f"{side}_rule"],
            workflow_id=row[f"{side}_workflow_id"],
            vendor_data=vendor_data,
            trust_review=bool(row[f"{side}_trust_review"]),
            destinations=tuple(json.loads(row[f"{side}_destinations"])),
        )

    return RouteChange(at=row["at"], old=route("old"), new=route("new"))


def routing_columns(route: Route) -> dict[str, Any]:
    """The columns a re-route may change (vendor_data stays), as both stores bind them."""
    return {
        "rule": route.rule,
        "workflow_id": route.workflow_id,
        "trust_review": route.trust_review,
        "destinations": json.dumps(list(route.destinations)),
    }
