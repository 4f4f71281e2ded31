"""``GET /openapi.json``: an OpenAPI 3.1 description of every route the server answers.

Hand-written, so that it says what the server does rather than what a framework infers: the
partner intake, Didit's webhooks, the admin API, health and metrics. It names no partner (the
intake's path parameter is any valid name): whoever can read it learns nothing of who the
partners are. With ``server.ops_port`` set it is served on the ops listener only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from bridge import __version__
from bridge.app.admin import MAX_PAGE, PREFIX
from bridge.app.responses import json_response
from bridge.config.fields import NAME_PATTERN
from bridge.events import PING
from bridge.store import DeliveryStatus
from bridge.types import EventType, NotificationStatus, SessionKind

__all__ = ["OpenApi", "openapi_document"]

JSON: Final = "application/json"
_ERROR_REF: Final = {"$ref": "#/components/schemas/Error"}
_NULLABLE_STRING: Final = {"type": ["string", "null"]}
_NULLABLE_TIME: Final = {"type": ["string", "null"], "format": "date-time"}


def _json(schema: dict[str, Any], description: str, **headers: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _errors(*statuses: int) -> dict[str, Any]:
    descriptions = {
        400: "Invalid input",
        401: "Missing or invalid credentials",
        404: "Not found",
        409: "The resource is not in a state that allows this",
        413: "The body is too large",
        415: "The body is not application/json",
        422: "The notification was understood but refused",
        503: "Unavailable for now; retry after Retry-After seconds",
    }
    answers: dict[str, Any] = {}
    for status in statuses:
        headers: dict[str, Any] = {}
        if status == 503:
            headers["Retry-After"] = {"schema": {"type": "string"}, "required": True}
        if status == 401:
            headers["WWW-Authenticate"] = {"schema": {"type": "string"}}
        answers[str(status)] = _json(_ERROR_REF, descriptions[status], **headers)
    return answers


def _admin_errors(*statuses: int) -> dict[str, Any]:
    """Every admin route may also answer 401, 404 (admin not configured) and 503."""
    return _errors(*sorted({*statuses, 401, 404, 503}))


def _obj(properties: dict[str, Any], required: Iterable[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else list(required),
    }


def _schemas() -> dict[str, Any]:
    reason = _obj(
        {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "http_status": {"type": ["integer", "null"]},
        }
    )
    reason["type"] = ["object", "null"]
    session = _obj(
        {
            "session_id": {"type": "string"},
            "session_number": {"type": ["integer", "null"]},
            "status": _NULLABLE_STRING,
        }
    )
    session["type"] = ["object", "null"]
    return {
        **_event_schemas(reason, session),
        "Error": _obj(
            {
                "error": _obj(
                    {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "issues": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Issue"},
                        },
                    },
                    required=["code", "message"],
                )
            }
        ),
        "Issue": _obj(
            {
                "file": {"type": "string"},
                "line": {"type": ["integer", "null"]},
                "path": {"type": "string"},
                "message": {"type": "string"},
            }
        ),
        "Accepted": _obj(
            {"id": {"type": "string"}, "status": {"type": "string", "enum": ["accepted"]}}
        ),
        "Duplicate": _obj(
            {"id": {"type": "string"}, "status": {"type": "string", "enum": ["duplicate"]}}
        ),
        "Route": _obj(
            {
                "rule": {"type": "string"},
                "workflow_id": {"type": "string"},
                "vendor_data": {"type": "string"},
                "trust_review": {"type": "boolean"},
                "destinations": {"type": "array", "items": {"type": "string"}},
            }
        ),
        "Notification": _obj(
            {
                "id": {"type": "string"},
                "partner": {"type": "string"},
                "partner_event_id": _NULLABLE_STRING,
                "status": {"type": "string", "enum": [s.value for s in NotificationStatus]},
                "session_kind": {"type": "string", "enum": [k.value for k in SessionKind]},
                "source": _obj(
                    {"application_id": _NULLABLE_STRING, "session_id": _NULLABLE_STRING}
                ),
                "token_sha256": {"type": "string"},
                "route": {"$ref": "#/components/schemas/Route"},
                "reason": reason,
                "session": session,
                "deadline": _NULLABLE_TIME,
                "received_at": {"type": "string", "format": "date-time"},
                "finished_at": _NULLABLE_TIME,
            }
        ),
        "Delivery": _obj(
            {
                "id": {"type": "string"},
                "destination": {"type": "string"},
                "status": {"type": "string", "enum": [s.value for s in DeliveryStatus]},
                "attempts": {"type": "integer", "minimum": 0},
                "last_error": _NULLABLE_STRING,
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "delivered_at": _NULLABLE_TIME,
                "event": _obj(
                    {
                        "id": {"type": "string"},
                        "type": {"type": "string", "enum": [t.value for t in EventType]},
                        "notification_id": {"type": "string"},
                        "created_at": {"type": "string", "format": "date-time"},
                    }
                ),
            }
        ),
        "Timeline": _obj(
            {
                "notification": {"$ref": "#/components/schemas/Notification"},
                "attempts": {
                    "type": "array",
                    "items": _obj(
                        {
                            "attempt": {"type": "integer"},
                            "kind": {"type": "string", "enum": ["import", "reconcile"]},
                            "started_at": {"type": "string", "format": "date-time"},
                            "ended_at": _NULLABLE_TIME,
                            "http_status": {"type": ["integer", "null"]},
                            "result": _NULLABLE_STRING,
                            "latency_ms": {"type": ["integer", "null"]},
                            "error": _NULLABLE_STRING,
                        }
                    ),
                },
                "events": {
                    "type": "array",
                    "items": _obj(
                        {
                            "id": {"type": "string"},
                            "type": {"type": "string", "enum": [t.value for t in EventType]},
                            "created_at": {"type": "string", "format": "date-time"},
                        }
                    ),
                },
                "route_changes": {
                    "type": "array",
                    "description": "Re-routes by retries with the running configuration",
                    "items": _obj(
                        {
                            "at": {"type": "string", "format": "date-time"},
                            "old": {"$ref": "#/components/schemas/Route"},
                            "new": {"$ref": "#/components/schemas/Route"},
                        }
                    ),
                },
                "deliveries": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}},
                "delivery_attempts": {
                    "type": "array",
                    "items": _obj(
                        {
                            "delivery_id": {"type": "string"},
                            "attempt": {"type": "integer"},
                            "at": {"type": "string", "format": "date-time"},
                            "http_status": {"type": ["integer", "null"]},
                            "latency_ms": {"type": "integer"},
                            "error": _NULLABLE_STRING,
                            "response_excerpt": {"type": "string"},
                        }
                    ),
                },
            }
        ),
        "Destination": _obj(
            {
                "name": {"type": "string"},
                "configured": {"type": "boolean"},
                "enabled": {"type": "boolean"},
                "changed_at": _NULLABLE_TIME,
                "reason": _NULLABLE_STRING,
                "pending": {"type": "integer", "minimum": 0},
                "dead": {"type": "integer", "minimum": 0},
                "last_error": _NULLABLE_STRING,
            }
        ),
    }


def _linked(answer: dict[str, Any], links: dict[str, tuple[str, str, str]]) -> dict[str, Any]:
    """Add OpenAPI links: name -> (operationId, parameter, runtime expression)."""
    answer["links"] = {
        name: {"operationId": operation, "parameters": {parameter: expression}}
        for name, (operation, parameter, expression) in links.items()
    }
    return answer


def _page_of(ref: str) -> dict[str, Any]:
    return _obj(
        {
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}},
            "next": {
                "type": ["string", "null"],
                "description": "Pass as `before` for the next page; null on the last page.",
            },
        }
    )


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
        "description": description,
    }


_PAGING: Final = [
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 50},
        "Page size.",
    ),
    _query(
        "before",
        {"type": "string", "minLength": 1, "maxLength": 200},
        "The `next` of the previous page.",
    ),
]


def _intake() -> dict[str, Any]:
    return {
        "post": {
            "operationId": "receiveShare",
            "tags": ["intake"],
            "summary": "Receive a partner's share token",
            "description": (
                "The partner authenticates with its configured scheme: Standard Webhooks "
                "(`webhook-id`, `webhook-timestamp`, `webhook-signature`), an HMAC of the body "
                "(for example `X-Signature` and `X-Timestamp`), a signed JWT in "
                "`Authorization: Bearer`, or a static API key header. Checks run in the order "
                "of the answers below; 202 is sent only after the notification is committed."
            ),
            "parameters": [
                {
                    "name": "partner",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": NAME_PATTERN},
                    "description": "The partner's name, as configured.",
                }
            ],
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {
                        "schema": {
                            "type": "object",
                            "description": "Holds the share token at the partner's "
                            "`fields.share_token` path (default `share_token`).",
                            "additionalProperties": True,
                        }
                    }
                },
            },
            "responses": {
                "202": _json({"$ref": "#/components/schemas/Accepted"}, "Accepted and committed"),
                "200": _json(
                    {"$ref": "#/components/schemas/Duplicate"},
                    "Already accepted: the original notification's id",
                ),
                **_errors(400, 401, 404, 413, 415, 422, 503),
            },
        }
    }


def _didit_webhooks() -> dict[str, Any]:
    return {
        "post": {
            "operationId": "receiveDiditWebhook",
            "tags": ["didit"],
            "summary": "Didit's status webhook for a session this bridge imported",
            "description": (
                "Verified with `X-Signature-V2` (or its fallbacks) and `X-Timestamp`. A "
                "`status.updated` of an imported session is recorded and sent downstream as "
                "`share.status_updated`; anything else is answered 200 and ignored."
            ),
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": {"type": "object", "additionalProperties": True}}},
            },
            "responses": {
                "200": _json(
                    _obj(
                        {
                            "status": {
                                "type": "string",
                                "enum": ["recorded", "unchanged", "ignored"],
                            }
                        }
                    ),
                    "Verified; recorded or ignored",
                ),
                **_errors(400, 401, 404, 413, 503),
            },
        }
    }


def _health() -> dict[str, Any]:
    checks = _obj(
        {
            "config": {"type": "boolean"},
            "workers": {"type": "boolean"},
            "store": {"type": "boolean"},
        }
    )
    ready = _obj({"ready": {"type": "boolean"}, "checks": checks})
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "tags": ["health"],
                "summary": "The process is alive",
                "responses": {
                    "200": _json(_obj({"status": {"type": "string", "enum": ["ok"]}}), "Alive")
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "tags": ["health"],
                "summary": "Store reachable, config loaded, workers running",
                "responses": {"200": _json(ready, "Ready"), "503": _json(ready, "Not ready")},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "tags": ["health"],
                "summary": "Prometheus text exposition",
                "responses": {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def _admin() -> dict[str, Any]:
    security: list[dict[str, list[str]]] = [{"adminToken": []}]
    notification_id = _path("id", "A notification id (`ntf_...`).")
    delivery_id = _path("id", "A delivery id (`dlv_...`).")
    destination = _path("name", "A destination name.")
    requeued = _obj({"id": {"type": "string"}, "result": {"type": "string", "enum": ["requeued"]}})
    count = {"type": "integer", "minimum": 0}
    chart = _obj(
        {
            "since": {"type": "string", "format": "date-time"},
            "bucket_s": {"type": "number"},
            "counts": {"type": "object", "additionalProperties": {"type": "array", "items": count}},
            "totals": {"type": "object", "additionalProperties": count},
        }
    )
    overview = _obj(
        {
            "at": {"type": "string", "format": "date-time"},
            "pending": count,
            "import_queue": count,
            "oldest_pending_age_s": {"type": ["number", "null"]},
            "last_hour": chart,
            "last_day": chart,
            "deliveries": {
                "type": "array",
                "items": _obj(
                    {
                        "destination": {"type": "string"},
                        "delivered": count,
                        "pending": count,
                        "dead": count,
                        "success_rate": {"type": ["number", "null"]},
                    }
                ),
            },
            "quota": {"type": ["object", "null"]},
            "alerts": {"type": "object", "additionalProperties": count},
        }
    )
    return {
        f"{PREFIX}/overview": {
            "get": {
                "operationId": "overview",
                "tags": ["admin"],
                "summary": "Queue, outcomes of the last hour and day, deliveries, quota, alerts",
                "security": security,
                "responses": {"200": _json(overview, "The overview"), **_admin_errors()},
            }
        },
        f"{PREFIX}/notifications": {
            "get": {
                "operationId": "listNotifications",
                "tags": ["admin"],
                "summary": "Notifications, newest first",
                "security": security,
                "parameters": [
                    _query(
                        "status",
                        {"type": "string", "enum": [s.value for s in NotificationStatus]},
                        "Only this status.",
                    ),
                    _query(
                        "partner",
                        {"type": "string", "minLength": 1, "maxLength": 200},
                        "Only this partner.",
                    ),
                    *_PAGING,
                ],
                "responses": {
                    "200": _linked(
                        _json(_page_of("Notification"), "A page"),
                        {
                            "show": ("showNotification", "id", "$response.body#/items/0/id"),
                            "retry": ("retryNotification", "id", "$response.body#/items/0/id"),
                        },
                    ),
                    **_admin_errors(400),
                },
            }
        },
        f"{PREFIX}/notifications/{{id}}": {
            "get": {
                "operationId": "showNotification",
                "tags": ["admin"],
                "summary": "One notification with its timeline",
                "security": security,
                "parameters": [notification_id],
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Timeline"}, "The timeline"),
                    **_admin_errors(),
                },
            }
        },
        f"{PREFIX}/notifications/{{id}}/retry": {
            "post": {
                "operationId": "retryNotification",
                "tags": ["admin"],
                "summary": "Re-run a failed notification while its token lives",
                "description": "The notification's rule as the running configuration has it "
                "gives the new workflow, trust_review and destinations (kept in the timeline's "
                "route_changes); keep_route=true retries with the stored route. 409 codes: "
                "`not_retryable`, `token_gone`, `superseded`, `rule_gone`.",
                "security": security,
                "parameters": [
                    notification_id,
                    _query(
                        "keep_route",
                        {"type": "string", "enum": ["true", "false"]},
                        "true: retry with the route stored at intake (default false)",
                    ),
                ],
                "responses": {"202": _json(requeued, "Queued again"), **_admin_errors(400, 409)},
            }
        },
        f"{PREFIX}/destinations": {
            "get": {
                "operationId": "listDestinations",
                "tags": ["admin"],
                "summary": "Destinations: enabled, pending, dead, last error",
                "security": security,
                "responses": {
                    "200": _linked(
                        _json(
                            _obj(
                                {
                                    "items": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Destination"},
                                    }
                                }
                            ),
                            "Every destination",
                        ),
                        {
                            "enable": ("enableDestination", "name", "$response.body#/items/0/name"),
                            "recover": (
                                "recoverDestination",
                                "name",
                                "$response.body#/items/0/name",
                            ),
                        },
                    ),
                    **_admin_errors(),
                },
            }
        },
        f"{PREFIX}/destinations/{{name}}/enable": {
            "post": {
                "operationId": "enableDestination",
                "tags": ["admin"],
                "summary": "Resume a disabled destination; its waiting deliveries go out",
                "security": security,
                "parameters": [destination],
                "responses": {
                    "200": _json(
                        _obj(
                            {
                                "name": {"type": "string"},
                                "enabled": {"type": "boolean", "enum": [True]},
                            }
                        ),
                        "Enabled",
                    ),
                    **_admin_errors(),
                },
            }
        },
        f"{PREFIX}/destinations/{{name}}/recover": {
            "post": {
                "operationId": "recoverDestination",
                "tags": ["admin"],
                "summary": "Send a destination's delivered or dead deliveries since a time again",
                "security": security,
                "parameters": [destination],
                "requestBody": {
                    "required": True,
                    "content": {
                        JSON: {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "since": {"type": "string", "format": "date-time"},
                                    "status": {
                                        "type": ["string", "null"],
                                        "enum": ["dead", "delivered", None],
                                    },
                                },
                                "required": ["since"],
                                "additionalProperties": False,
                            }
                        }
                    },
                },
                "responses": {
                    "202": _json(
                        _obj(
                            {
                                "destination": {"type": "string"},
                                "requeued": {"type": "integer", "minimum": 0},
                            }
                        ),
                        "Queued again",
                    ),
                    **_admin_errors(400),
                },
            }
        },
        f"{PREFIX}/deliveries": {
            "get": {
                "operationId": "listDeliveries",
                "tags": ["admin"],
                "summary": "Deliveries, newest first (`status=dead` for the dead letters)",
                "security": security,
                "parameters": [
                    _query(
                        "status",
                        {"type": "string", "enum": [s.value for s in DeliveryStatus]},
                        "Only this status.",
                    ),
                    _query(
                        "destination",
                        {"type": "string", "minLength": 1, "maxLength": 200},
                        "Only this destination.",
                    ),
                    *_PAGING,
                ],
                "responses": {
                    "200": _linked(
                        _json(_page_of("Delivery"), "A page"),
                        {"redeliver": ("redeliver", "id", "$response.body#/items/0/id")},
                    ),
                    **_admin_errors(400),
                },
            }
        },
        f"{PREFIX}/deliveries/{{id}}/redeliver": {
            "post": {
                "operationId": "redeliver",
                "tags": ["admin"],
                "summary": "Send a delivered or dead delivery again (same webhook-id and body)",
                "description": "409 `already_pending`: it is on its way already.",
                "security": security,
                "parameters": [delivery_id],
                "responses": {
                    "202": _json(
                        _obj(
                            {
                                "id": {"type": "string"},
                                "status": {"type": "string", "enum": ["pending"]},
                            }
                        ),
                        "Queued again",
                    ),
                    **_admin_errors(409),
                },
            }
        },
        f"{PREFIX}/reload": {
            "post": {
                "operationId": "reload",
                "tags": ["admin"],
                "summary": "Re-read the configuration file (as SIGHUP does)",
                "description": (
                    "An invalid configuration is refused with its issues and the running one "
                    "is kept. Accepted notifications keep the route they were accepted with."
                ),
                "security": security,
                "responses": {
                    "200": _json(
                        _obj({"status": {"type": "string", "enum": ["reloaded"]}}), "Applied"
                    ),
                    **_admin_errors(400),
                },
            }
        },
    }


_EVENT_WHEN: Final = {
    EventType.IMPORTED: "Didit imported the share (`session` is our new session).",
    EventType.REJECTED: "Didit refused the token for good (`reason` says why).",
    EventType.EXPIRED: "The token expired before it could be redeemed.",
    EventType.FAILED: "The bridge gave up or needs an operator; retry while the token lives.",
    EventType.STATUS_UPDATED: "Didit changed an imported session's status (`session.status`).",
}


def _event_schemas(reason: dict[str, Any], session: dict[str, Any]) -> dict[str, Any]:
    """The bodies the bridge POSTs to destinations (docs/events.md)."""
    when = {"type": "string", "format": "date-time"}
    return {
        "Event": _obj(
            {
                "type": {"type": "string", "enum": [t.value for t in EventType]},
                "id": {"type": "string", "description": "Also the webhook-id header"},
                "created_at": when,
                "data": _obj(
                    {
                        "notification_id": {"type": "string"},
                        "partner": {"type": "string"},
                        "partner_event_id": _NULLABLE_STRING,
                        "rule": {"type": "string"},
                        "session_kind": {"type": "string", "enum": [k.value for k in SessionKind]},
                        "source": _obj(
                            {"application_id": _NULLABLE_STRING, "session_id": _NULLABLE_STRING}
                        ),
                        "workflow_id": {"type": "string"},
                        "vendor_data": {"type": "string"},
                        "trust_review": {"type": "boolean"},
                        "session": session,
                        "reason": reason,
                    }
                ),
            }
        ),
        "PingEvent": _obj(
            {
                "type": {"const": PING},
                "id": {"type": "string"},
                "created_at": when,
                "data": _obj({"destination": {"type": "string"}}),
            }
        ),
    }


def _webhooks() -> dict[str, Any]:
    """OpenAPI 3.1 ``webhooks``: what our own systems receive."""
    headers = [
        {"name": name, "in": "header", "required": True, "schema": {"type": "string"},
         "description": description}
        for name, description in (
            ("webhook-id", "The event's id: the same on every retry and redelivery"),
            ("webhook-timestamp", "Unix seconds when this attempt was signed"),
            ("webhook-signature", "v1,<base64 HMAC-SHA256>, one per configured secret"),
        )
    ]  # fmt: skip

    def hook(name: str, summary: str, schema: str) -> dict[str, Any]:
        return {
            "post": {
                "operationId": name,
                "summary": summary,
                "description": "Signed with Standard Webhooks; at least once; dedupe by "
                "webhook-id. A 2xx within the destination's timeout_s is success.",
                "parameters": headers,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
                    },
                },
                "responses": {"2XX": {"description": "Received; anything else is retried"}},
            }
        }

    found = {t.value: hook(t.value, _EVENT_WHEN[t], "Event") for t in EventType}
    found[PING] = hook(PING, "A test from check-config --online: answer 2xx", "PingEvent")
    return found


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "share-bridge",
            "version": __version__,
            "description": (
                "Receives partners' Didit share tokens, redeems each once, and delivers the "
                "outcome downstream as signed events."
            ),
        },
        "paths": {
            "/v1/partners/{partner}/shares": _intake(),
            "/v1/didit/webhooks": _didit_webhooks(),
            **_health(),
            **_admin(),
        },
        "webhooks": _webhooks(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The configuration's `admin.token`.",
                }
            },
        },
    }


class OpenApi:
    """``GET /openapi.json``."""

    def __init__(self) -> None:
        self._document = json_response(200, openapi_document()).body

    async def document(self, request: Request) -> Response:
        return Response(self._document, 200, media_type=JSON)
