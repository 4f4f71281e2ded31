"""JSON answers, and the one shape of every error body: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.responses import Response


def json_response(
    status: int, content: object, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(content), status, headers, media_type="application/json")


def error_response(status: int, code: str, message: str, **headers: str) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)
