"""Error bodies and log excerpts: parsed tolerantly, scrubbed of share tokens, bounded."""

from __future__ import annotations

import re
from collections.abc import Mapping

import orjson

from bridge.observability import without_jwts

MESSAGE_MAX_CHARS = 500
EXCERPT_MAX_CHARS = 300
_PARSE_MAX_BYTES = 64 * 1024
_RENDER_MAX_DEPTH = 8

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def scrub(text: str) -> str:
    """Replace JWT-shaped substrings (share tokens) and control characters."""
    return _CONTROL.sub(" ", without_jwts(text))


def _bounded(text: str, limit: int) -> str:
    text = " ".join(scrub(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _render(value: object, depth: int = 0) -> str:
    if depth > _RENDER_MAX_DEPTH:
        return "…"
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        parts = (_render(item, depth + 1) for item in value)
        return "; ".join(part for part in parts if part)
    if isinstance(value, Mapping):
        for key in ("detail", "message", "error", "error_message", "errors"):
            text = _render(value[key], depth + 1) if key in value else ""
            if text:
                return text
        rendered = ((str(key), _render(item, depth + 1)) for key, item in value.items())
        return "; ".join(f"{key}: {text}" if text else key for key, text in rendered)
    return str(value)


def parse_json(body: bytes) -> object:
    """The JSON value of ``body``, or ``body`` decoded as text; never raises."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", errors="replace")


def error_message(body: bytes | object) -> str:
    """A one-line, bounded, scrubbed message from any error body; never raises.

    Understands ``{"detail": ...}``, ``{"message": ...}``, ``{"error": ...}`` (also nested, as
    ``{"error": {"code": .., "message": ..}}``), field-keyed objects (``"field: msg; other:
    msg"``), nested and bare arrays, text, an empty body and invalid UTF-8.
    """
    try:
        if isinstance(body, bytes | bytearray | memoryview):
            value = parse_json(bytes(body[:_PARSE_MAX_BYTES]))
        else:
            value = body
        return _bounded(_render(value), MESSAGE_MAX_CHARS)
    except Exception:  # noqa: BLE001 - a message is best effort; classification must go on
        return ""


def body_excerpt(body: bytes) -> str:
    """The start of a raw answer for logs: scrubbed, one line, bounded."""
    return _bounded(
        body[: EXCERPT_MAX_CHARS * 4].decode("utf-8", errors="replace"), EXCERPT_MAX_CHARS
    )
