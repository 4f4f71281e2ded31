"""Retrying a failed notification, for the admin API and ``share-bridge retry`` alike.

A retry runs with the running configuration: the notification's rule, as it reads now, gives
its workflow, ``trust_review`` and destinations (fix the rule, reload, retry). The change is kept
in the timeline. ``keep_route`` retries with the route stored at intake instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from bridge import config, rules
from bridge.store import RetryResult, Store
from bridge.types import NotificationStatus

# failed, or pending with a dead job (the store tells): the others are final
_MAY_RETRY = frozenset({NotificationStatus.FAILED, NotificationStatus.PENDING})

RETRY_REFUSALS: Final[Mapping[RetryResult, str]] = {
    RetryResult.NOT_FOUND: "no notification with that id",
    RetryResult.NOT_RETRYABLE: "only a failed notification can be retried",
    RetryResult.TOKEN_GONE: "its token expired or was erased; the partner must send a new one",
    RetryResult.SUPERSEDED: "a newer notification for the same share is pending or imported",
    RetryResult.RULE_GONE: "its rule is no longer in the configuration: add it back, or retry "
    "with the route it was accepted with (--keep-route, ?keep_route=true)",
}
"""Why a retry was refused, in words an operator can act on (admin API, console and CLI)."""


async def retry(
    store: Store, notification_id: str, running_rules: Sequence[config.Rule], *, keep_route: bool
) -> RetryResult:
    """Requeue the notification, re-routed by ``running_rules`` unless ``keep_route``."""
    if keep_route:
        return await store.retry_notification(notification_id)
    notification = await store.load_notification(notification_id)
    if notification is None:
        return RetryResult.NOT_FOUND
    if notification.status not in _MAY_RETRY:  # the store says why; no rule to look up
        return await store.retry_notification(notification_id)
    route = rules.rerouted(notification.route, running_rules)
    if route is None:
        return RetryResult.RULE_GONE
    return await store.retry_notification(notification_id, route=route)
