"""``ShareFacts.of``: the one conversion of a stored notification into what its events report.

Both the import job and Didit's status webhooks render their events from it, so a field it drops
or mixes up would go wrong in every event. Every field below has a value no other field has.
"""

from __future__ import annotations

from dataclasses import fields, replace

from bridge.events import ShareFacts
from bridge.store import Notification
from bridge.types import NotificationStatus, Route, SessionKind

ROUTE = Route(
    rule="share-facts-rule",
    workflow_id="wf-share-facts",
    vendor_data="vendor:share-facts",
    trust_review=True,
    destinations=("crm",),
)


STORED = Notification(
    id="ntf-1",
    partner="acme",
    partner_event_id="partner-evt-1",
    message_id="msg-1",
    business_key="app-1:session-1",
    token=None,
    token_sha256="sha-1",
    session_kind=SessionKind.BUSINESS,
    source_application_id="source-app-1",
    source_session_id="source-session-1",
    deadline=None,
    route=ROUTE,
    status=NotificationStatus.PENDING,
    reason=None,
    session=None,
    received_at=1.0,
    finished_at=None,
    updated_at=2.0,
)


def test_every_fact_comes_from_its_own_field() -> None:
    assert ShareFacts.of(STORED) == ShareFacts(
        notification_id="ntf-1",
        partner="acme",
        partner_event_id="partner-evt-1",
        session_kind=SessionKind.BUSINESS,
        source_application_id="source-app-1",
        source_session_id="source-session-1",
        route=ROUTE,
    )


def test_absent_optional_facts_stay_absent() -> None:
    absent = replace(
        STORED, partner_event_id=None, source_application_id=None, source_session_id=None
    )
    facts = ShareFacts.of(absent)
    assert (facts.partner_event_id, facts.source_application_id, facts.source_session_id) == (
        None,
        None,
        None,
    )


def test_a_fact_is_never_the_token_or_anything_else_not_reported() -> None:
    assert {f.name for f in fields(ShareFacts)} == {
        "notification_id",
        "partner",
        "partner_event_id",
        "session_kind",
        "source_application_id",
        "source_session_id",
        "route",
    }
