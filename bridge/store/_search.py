"""The console's notification search as named-query parameters, the same for every backend."""

from __future__ import annotations

from typing import Any

from bridge.store.ids import first_id_at
from bridge.store.model import NotificationSearch

AFTER_EVERY_ID = "ntf_~"


def query_name(search: NotificationSearch) -> str:
    """The query whose index answers the most selective filters present: a partner and a rule
    together before a status, which has few values and so many rows each."""
    if search.key is not None:
        return "search_notifications_by_key"
    if search.partner is not None and search.rule is not None:
        return "search_notifications_by_partner_rule"
    if search.status is not None:
        return "search_notifications_by_status"
    if search.partner is not None:
        return "search_notifications_by_partner"
    if search.rule is not None:
        return "search_notifications_by_rule"
    return "search_notifications_newest"


def params(search: NotificationSearch, *, limit: int, before: str | None) -> dict[str, Any]:
    """The filters, with the time range (and ``before``) as a range of ids: ids sort by time."""
    until_id = AFTER_EVERY_ID
    if search.received_until is not None:
        until_id = first_id_at("ntf", search.received_until)
    if before is not None:
        until_id = min(until_id, before)
    return {
        "status": search.status.value if search.status else None,
        "partner": search.partner,
        "rule": search.rule,
        "key": search.key,
        "from_id": first_id_at("ntf", search.received_from or 0.0),
        "until_id": until_id,
        "limit": limit,
    }
