"""Answers of the emulated Didit API, in the shapes Didit uses (reference §1.3): ``{"detail"}``
objects, field-keyed objects, bare arrays, and what a gateway in front would say."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

JSON = b"application/json"
HTML = b"text/html; charset=utf-8"


@dataclass(slots=True)
class Answer:
    """A response the gate sends as raw ASGI messages (cheaper than a Starlette Response)."""

    status: int
    body: bytes
    content_type: bytes = JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def json_answer(status: int, payload: Any) -> Answer:
    return Answer(status, orjson.dumps(payload))


def detail(status: int, text: str) -> Answer:
    return json_answer(status, {"detail": text})


def field_errors(errors: dict[str, list[str]]) -> Answer:
    """A DRF serializer's 400: ``{"field": ["message", ...]}``."""
    return json_answer(400, errors)


def bare_errors(*messages: str) -> Answer:
    """A DRF ``ValidationError("...")`` raised in a view: a 400 with a bare array."""
    return json_answer(400, list(messages))


# The texts. Didit documents the import errors' reasons (reference §1.3) but not its bodies;
# these keep the documented wording so a client can tell the two 401s and three 403s apart.
API_KEY_MISSING = "Authentication credentials were not provided."
API_KEY_INVALID = "Invalid API key."
SHARE_INVALID = "Share token invalid or expired."
NOT_FOR_YOU = "Token not intended for your application."
ALREADY_IMPORTED = "This session has already been imported into your application."
NO_CREDITS = "Insufficient credits to import this session."
SOURCE_GONE = "Original session no longer exists."
WORKFLOW_UNKNOWN = "workflow_id not found in your application."
NOT_FOUND = "Not found."
UNFINISHED = "Only finished sessions (Approved, Declined, In Review) can be shared."
REQUIRED = "This field is required."


def throttled(retry_after_s: int) -> Answer:
    return detail(429, f"Request was throttled. Expected available in {retry_after_s} seconds.")


def injected_error(status: int) -> Answer:
    """An injected 5xx, each in a shape of its own, as a real stack of proxies answers; or a
    402 in the shape the reference's MCP server reports (``payment_required``)."""
    if status == 402:
        return json_answer(402, {"code": "payment_required", "message": "Insufficient balance"})
    if status == 500:
        return detail(500, "A server error occurred.")
    if status == 503:
        return json_answer(503, {"message": "Service temporarily unavailable."})
    return Answer(status, _gateway_page(status), HTML)


def gateway_timeout() -> Answer:
    return Answer(504, _gateway_page(504), HTML)


def _gateway_page(status: int) -> bytes:
    title = {502: "502 Bad Gateway", 504: "504 Gateway Time-out"}.get(status, f"{status} Error")
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>".encode()
