"""JSON answers, and the one shape of every error body: ``{"error": {"code", "message"}}``
(``api_models.Error``)."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from pydantic import BaseModel
from starlette.responses import Response


def json_response(
    status: int, content: object, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(content), status, headers, media_type="application/json")


def model_response(status: int, body: BaseModel) -> Response:
    """A body built from its model: it holds only the fields the model declares."""
    return Response(body.model_dump_json(), status, media_type="application/json")


def error_response(status: int, code: str, message: str, **headers: str) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)
