"""Every route the server answers, as data: path, method, what it takes and what it answers.

``Admin.routes()`` serves the admin operations from this table (each ``operation_id`` names its
handler) and ``/openapi.json`` is generated from it, with the bodies of ``api_models``: a route
the table does not hold is neither served nor described.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from bridge.app import api_models as m

__all__ = [
    "ADMIN",
    "ADMIN_ERRORS",
    "ERROR_DESCRIPTIONS",
    "OPERATIONS",
    "PREFIX",
    "Answer",
    "Operation",
    "PathParameter",
]

PREFIX: Final = "/admin/v1"

ERROR_DESCRIPTIONS: Final[Mapping[int, str]] = {
    400: "Invalid input",
    401: "Missing or invalid credentials",
    404: "Not found",
    409: "The resource is not in a state that allows this",
    413: "The body is too large",
    415: "The body is not application/json",
    422: "The notification was understood but refused",
    503: "Unavailable for now; retry after Retry-After seconds",
}
#: Every admin route may answer these: no token, no admin API configured, the store down.
ADMIN_ERRORS: Final = frozenset({401, 404, 503})


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """One status's body: a model (JSON), or ``text`` for a plain-text body."""

    description: str
    model: type[m.Model] | None = None
    text: bool = False


@dataclass(frozen=True, slots=True)
class PathParameter:
    description: str
    schema: Mapping[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    operation_id: str
    method: str
    path: str
    tag: str
    summary: str
    description: str | None = None
    answers: Mapping[int, Answer]
    errors: frozenset[int] = frozenset()  # answered with ``Error``
    query: type[m.Model] | None = None
    body: type[m.Model] | None = None
    #: A free-form JSON object body (the partner's and Didit's), described by this text.
    free_body: str | None = None
    path_parameters: Mapping[str, PathParameter] = field(default_factory=dict)
    #: OpenAPI links: name -> (operationId, parameter, runtime expression).
    links: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)

    @property
    def admin(self) -> bool:
        return self.path.startswith(PREFIX + "/")


def _admin(
    operation_id: str,
    method: str,
    path: str,
    summary: str,
    answers: Mapping[int, Answer],
    *errors: int,
    description: str | None = None,
    query: type[m.Model] | None = None,
    body: type[m.Model] | None = None,
    path_parameters: Mapping[str, PathParameter] | None = None,
    links: Mapping[str, tuple[str, str, str]] | None = None,
) -> Operation:
    return Operation(
        operation_id=operation_id,
        method=method,
        path=PREFIX + path,
        tag="admin",
        summary=summary,
        description=description,
        answers=answers,
        errors=ADMIN_ERRORS | frozenset(errors),
        query=query,
        body=body,
        path_parameters=path_parameters or {},
        links=links or {},
    )


_ANY_ID: Final[Mapping[str, object]] = {"type": "string", "minLength": 1}
_NOTIFICATION_ID: Final = {"id": PathParameter("A notification id (`ntf_...`).", _ANY_ID)}
_DELIVERY_ID: Final = {"id": PathParameter("A delivery id (`dlv_...`).", _ANY_ID)}
_DESTINATION: Final = {"name": PathParameter("A destination name.", _ANY_ID)}

ADMIN: Final[tuple[Operation, ...]] = (
    _admin(
        "overview",
        "GET",
        "/overview",
        "Queue, outcomes of the last hour and day, deliveries, quota, alerts",
        {200: Answer(description="The overview", model=m.Overview)},
    ),
    _admin(
        "listNotifications",
        "GET",
        "/notifications",
        "Notifications, newest first",
        {200: Answer(description="A page", model=m.NotificationPage)},
        400,
        query=m.NotificationQuery,
        links={
            "show": ("showNotification", "id", "$response.body#/items/0/id"),
            "retry": ("retryNotification", "id", "$response.body#/items/0/id"),
        },
    ),
    _admin(
        "showNotification",
        "GET",
        "/notifications/{id}",
        "One notification with its timeline",
        {200: Answer(description="The timeline", model=m.Timeline)},
        path_parameters=_NOTIFICATION_ID,
    ),
    _admin(
        "retryNotification",
        "POST",
        "/notifications/{id}/retry",
        "Re-run a failed notification while its token lives",
        {202: Answer(description="Queued again", model=m.Requeued)},
        400,
        409,
        description="The notification's rule as the running configuration has it gives the new "
        "workflow, trust_review and destinations (kept in the timeline's route_changes); "
        "keep_route=true retries with the stored route. 409 codes: `not_retryable`, "
        "`token_gone`, `superseded`, `rule_gone`.",
        query=m.RetryQuery,
        path_parameters=_NOTIFICATION_ID,
    ),
    _admin(
        "listDestinations",
        "GET",
        "/destinations",
        "Destinations: enabled, pending, dead, last error",
        {200: Answer(description="Every destination", model=m.DestinationList)},
        links={
            "enable": ("enableDestination", "name", "$response.body#/items/0/name"),
            "recover": ("recoverDestination", "name", "$response.body#/items/0/name"),
        },
    ),
    _admin(
        "enableDestination",
        "POST",
        "/destinations/{name}/enable",
        "Resume a disabled destination; its waiting deliveries go out",
        {200: Answer(description="Enabled", model=m.Enabled)},
        path_parameters=_DESTINATION,
    ),
    _admin(
        "recoverDestination",
        "POST",
        "/destinations/{name}/recover",
        "Send a destination's delivered or dead deliveries since a time again",
        {202: Answer(description="Queued again", model=m.Recovered)},
        400,
        body=m.RecoverBody,
        path_parameters=_DESTINATION,
    ),
    _admin(
        "listDeliveries",
        "GET",
        "/deliveries",
        "Deliveries, newest first (`status=dead` for the dead letters)",
        {200: Answer(description="A page", model=m.DeliveryPage)},
        400,
        query=m.DeliveryQuery,
        links={"redeliver": ("redeliver", "id", "$response.body#/items/0/id")},
    ),
    _admin(
        "redeliver",
        "POST",
        "/deliveries/{id}/redeliver",
        "Send a delivered or dead delivery again (same webhook-id and body)",
        {202: Answer(description="Queued again", model=m.Redelivered)},
        409,
        description="409 `already_pending`: it is on its way already.",
        path_parameters=_DELIVERY_ID,
    ),
    _admin(
        "reload",
        "POST",
        "/reload",
        "Re-read the configuration file (as SIGHUP does)",
        {200: Answer(description="Applied", model=m.Reloaded)},
        400,
        description="An invalid configuration is refused with its issues and the running one "
        "is kept. Accepted notifications keep the route they were accepted with.",
    ),
)

_PUBLIC: Final[tuple[Operation, ...]] = (
    Operation(
        operation_id="receiveShare",
        method="POST",
        path="/v1/partners/{partner}/shares",
        tag="intake",
        summary="Receive a partner's share token",
        description="The partner authenticates with its configured scheme: Standard Webhooks "
        "(`webhook-id`, `webhook-timestamp`, `webhook-signature`), an HMAC of the body (for "
        "example `X-Signature` and `X-Timestamp`), a signed JWT in `Authorization: Bearer`, or a "
        "static API key header. Checks run in the order of the answers below; 202 is sent only "
        "after the notification is committed.",
        answers={
            202: Answer(description="Accepted and committed", model=m.Accepted),
            200: Answer(
                description="Already accepted: the original notification's id", model=m.Duplicate
            ),
        },
        errors=frozenset({400, 401, 404, 413, 415, 422, 503}),
        free_body="Holds the share token at the partner's `fields.share_token` path (default "
        "`share_token`).",
        path_parameters={
            "partner": PathParameter("The partner's name, as configured.", m.PARTNER_NAME)
        },
    ),
    Operation(
        operation_id="receiveDiditWebhook",
        method="POST",
        path="/v1/didit/webhooks",
        tag="didit",
        summary="Didit's status webhook for a session this bridge imported",
        description="Verified with `X-Signature-V2` (or its fallbacks) and `X-Timestamp`. A "
        "`status.updated` of an imported session is recorded and sent downstream as "
        "`share.status_updated`; anything else is answered 200 and ignored.",
        answers={
            200: Answer(description="Verified; recorded or ignored", model=m.DiditWebhookAnswer)
        },
        errors=frozenset({400, 401, 404, 413, 503}),
        free_body="Didit's webhook body.",
    ),
    Operation(
        operation_id="healthz",
        method="GET",
        path="/healthz",
        tag="health",
        summary="The process is alive",
        answers={200: Answer(description="Alive", model=m.Health)},
    ),
    Operation(
        operation_id="readyz",
        method="GET",
        path="/readyz",
        tag="health",
        summary="Store reachable, config loaded, workers running",
        answers={
            200: Answer(description="Ready", model=m.Readiness),
            503: Answer(description="Not ready", model=m.Readiness),
        },
    ),
    Operation(
        operation_id="metrics",
        method="GET",
        path="/metrics",
        tag="health",
        summary="Prometheus text exposition",
        answers={200: Answer(description="Metrics", text=True)},
    ),
)

OPERATIONS: Final[tuple[Operation, ...]] = (*_PUBLIC, *ADMIN)
