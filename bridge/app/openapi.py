"""``GET /openapi.json``: an OpenAPI 3.1 description of every route the server answers.

Generated from the route table (``bridge.app.api_routes``) and the bodies' pydantic models
(``bridge.app.api_models``), which the admin API also validates and answers with: the
document cannot describe a body the server does not use. The webhooks our own systems receive
are described from ``docs/events.md``'s shapes. It names no partner (the intake's path parameter
is any valid name): whoever can read it learns nothing of who the partners are. With
``server.ops_port`` set it is served on the ops listener only.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import Response

from bridge import __version__
from bridge.app import api_models as m
from bridge.app.api_routes import ERROR_DESCRIPTIONS, OPERATIONS, Operation
from bridge.app.responses import json_response
from bridge.events import PING
from bridge.types import EventType

__all__ = ["OpenApi", "openapi_document"]

JSON: Final = "application/json"
REF: Final = "#/components/schemas/{model}"


def _ref(model: type[m.Model]) -> dict[str, Any]:
    return {"$ref": REF.format(model=model.__name__)}


def _components() -> dict[str, Any]:
    """Every model an operation names, with what they refer to, under one ``$ref`` template."""
    answered: tuple[type[m.Model], ...] = (m.Error, *m.EVENTS)
    used: dict[type[m.Model], JsonSchemaMode] = dict.fromkeys(answered, "serialization")
    for operation in OPERATIONS:
        for answer in operation.answers.values():
            if answer.model is not None:
                used[answer.model] = "serialization"
        for request in (operation.query, operation.body):
            if request is not None:
                used[request] = "validation"
    _, schema = models_json_schema(list(used.items()), ref_template=REF)
    return dict(schema["$defs"])


def _json(schema: dict[str, Any], description: str, **headers: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _error(status: int) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if status == 503:
        headers["Retry-After"] = {"schema": {"type": "string"}, "required": True}
    if status == 401:
        headers["WWW-Authenticate"] = {"schema": {"type": "string"}}
    return _json(_ref(m.Error), ERROR_DESCRIPTIONS[status], **headers)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value: never null."""
    options = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
    if len(options) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**options[0], **rest}


def _parameters(operation: Operation, components: dict[str, Any]) -> list[dict[str, Any]]:
    found = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": dict(parameter.schema),
            "description": parameter.description,
        }
        for name, parameter in operation.path_parameters.items()
    ]
    if operation.query is not None:
        properties = components[operation.query.__name__]["properties"]
        for name, schema in properties.items():
            described = _without_null(schema)
            description = described.pop("description", None)
            described.pop("title", None)
            if described.get("default", 0) is None:
                del described["default"]
            parameter = {"name": name, "in": "query", "required": False, "schema": described}
            if description:
                parameter["description"] = description
            found.append(parameter)
    return found


def _request_body(operation: Operation) -> dict[str, Any] | None:
    if operation.body is not None:
        schema = _ref(operation.body)
    elif operation.free_body is not None:
        schema = {
            "type": "object",
            "description": operation.free_body,
            "additionalProperties": True,
        }
    else:
        return None
    return {"required": True, "content": {JSON: {"schema": schema}}}


def _operation(operation: Operation, components: dict[str, Any]) -> dict[str, Any]:
    described: dict[str, Any] = {
        "operationId": operation.operation_id,
        "tags": [operation.tag],
        "summary": operation.summary,
    }
    if operation.description:
        described["description"] = operation.description
    if operation.admin:
        described["security"] = [{"adminToken": []}]
    parameters = _parameters(operation, components)
    if parameters:
        described["parameters"] = parameters
    body = _request_body(operation)
    if body is not None:
        described["requestBody"] = body
    responses: dict[str, Any] = {}
    for status, answer in operation.answers.items():
        if answer.text:
            responses[str(status)] = {
                "description": answer.description,
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        elif answer.model is not None:
            responses[str(status)] = _json(_ref(answer.model), answer.description)
        if status < 300 and operation.links:
            responses[str(status)]["links"] = {
                name: {"operationId": target, "parameters": {parameter: expression}}
                for name, (target, parameter, expression) in operation.links.items()
            }
    for status in sorted(operation.errors):
        responses[str(status)] = _error(status)
    described["responses"] = responses
    return described


def _paths(components: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(
            operation, components
        )
    return paths


_EVENT_WHEN: Final = {
    EventType.IMPORTED: "Didit imported the share (`session` is our new session).",
    EventType.REJECTED: "Didit refused the token for good (`reason` says why).",
    EventType.EXPIRED: "The token expired before it could be redeemed.",
    EventType.FAILED: "The bridge gave up or needs an operator; retry while the token lives.",
    EventType.STATUS_UPDATED: "Didit changed an imported session's status (`session.status`).",
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

    def hook(name: str, summary: str, model: type[m.Model]) -> dict[str, Any]:
        return {
            "post": {
                "operationId": name,
                "summary": summary,
                "description": "Signed with Standard Webhooks; at least once; dedupe by "
                "webhook-id. A 2xx within the destination's timeout_s is success.",
                "parameters": headers,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref(model)}},
                },
                "responses": {"2XX": {"description": "Received; anything else is retried"}},
            }
        }

    found = {t.value: hook(t.value, _EVENT_WHEN[t], m.Event) for t in EventType}
    found[PING] = hook(PING, "A test from check-config --online: answer 2xx", m.PingEvent)
    return found


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    components = _components()
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
        "paths": _paths(components),
        "webhooks": _webhooks(),
        "components": {
            "schemas": components,
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
