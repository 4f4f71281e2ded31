"""Import answers to verdicts (docs/architecture.md, Imports and outcomes), as pure functions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from bridge.didit._fields import int_or_none, str_or_none
from bridge.didit.answers import (
    Failed,
    Imported,
    ImportedSession,
    ImportVerdict,
    NeedsReconcile,
    NoAnswer,
    Rejected,
    RetryLater,
)
from bridge.didit.bodies import error_message, parse_json
from bridge.didit.codes import AnswerCode
from bridge.didit.ratelimit import parse_rate_limit

_SHARE_TOKEN_TEXT = re.compile(r"share[\s_-]*token|\bjwt\b", re.IGNORECASE)
_API_KEY_TEXT = re.compile(
    r"api[\s_-]*key|x-api-key|credentials|authenticat|unauthori[sz]ed client", re.IGNORECASE
)
_ALREADY_TEXT = re.compile(
    r"already|duplicate|previously (?:imported|redeemed)|been (?:imported|redeemed|used)",
    re.IGNORECASE,
)
_CREDITS_TEXT = re.compile(
    r"credit|balance|permission|privilege|scope|quota|plan\b|billing|not allowed|disabled",
    re.IGNORECASE,
)
_OTHER_APP_TEXT = re.compile(
    r"not (?:intended|meant|issued|minted|valid) for|another application|other application"
    r"|different application|for_application_id|your application|this application",
    re.IGNORECASE,
)
_WORKFLOW_TEXT = re.compile(r"workflow", re.IGNORECASE)

ForbiddenReason = Literal[
    AnswerCode.ALREADY_IMPORTED,
    AnswerCode.TOKEN_NOT_FOR_THIS_APPLICATION,
    AnswerCode.UPSTREAM_FORBIDDEN,
]


def classify_forbidden(body_text: str) -> ForbiddenReason:
    """Which 403 this is, from its text, for after reconciliation found no import.

    "Already imported" wins, then credits or permission (``upstream_forbidden``), then "not for
    your application". Unknown text is ``upstream_forbidden``: a failure an operator may retry,
    never a rejection that would drop a token that might still be good.
    """
    if _ALREADY_TEXT.search(body_text):
        return AnswerCode.ALREADY_IMPORTED
    if _CREDITS_TEXT.search(body_text):
        return AnswerCode.UPSTREAM_FORBIDDEN
    if _OTHER_APP_TEXT.search(body_text):
        return AnswerCode.TOKEN_NOT_FOR_THIS_APPLICATION
    return AnswerCode.UPSTREAM_FORBIDDEN


def _session(body: object) -> ImportedSession | None:
    if not isinstance(body, Mapping):
        return None
    session_id = str_or_none(body.get("session_id"))
    if not session_id:
        return None
    return ImportedSession(
        session_id=session_id,
        session_number=int_or_none(body.get("session_number")),
        status=str_or_none(body.get("status")),
        session_kind=str_or_none(body.get("session_kind")),
        workflow_id=str_or_none(body.get("workflow_id")),
        vendor_data=str_or_none(body.get("vendor_data")),
        raw=dict(body),
    )


def classify_import(
    status: int, body: bytes | object, headers: Mapping[str, str], *, now: float | None = None
) -> ImportVerdict:
    """Map one answer of ``POST /v3/session/import-shared/`` to its verdict (pure).

    ``body`` is the raw bytes or an already parsed JSON value; ``now`` (epoch seconds) converts
    an HTTP-date ``Retry-After``. Choices beyond docs/didit.md: a 2xx without ``session_id`` is
    :class:`NoAnswer` (it may have been redeemed); a 404 whose body is not JSON is a wrong path,
    failed ``unexpected_response``; 408 is retried; 409 is reconciled like 403; any other
    status (3xx: a redirect means a wrong path; 405, 410, 413, 415 ...) is failed
    ``unexpected_response``.
    """
    value = parse_json(bytes(body)) if isinstance(body, bytes | bytearray) else body
    message = error_message(value) or f"HTTP {status}"

    def rejected(code: AnswerCode) -> Rejected:
        return Rejected(code=code, message=message, http_status=status)

    def failed(code: AnswerCode) -> Failed:
        return Failed(code=code, message=message, http_status=status)

    def retry(code: AnswerCode, *, ambiguous: bool) -> RetryLater:
        info = parse_rate_limit(headers, now=now)
        return RetryLater(
            code=code,
            message=message,
            http_status=status,
            retry_after_s=info.retry_after_s if info else None,
            ambiguous=ambiguous,
        )

    if 200 <= status < 300:
        session = _session(value)
        if session is None:
            return NoAnswer(
                code=AnswerCode.NO_ANSWER,
                message=f"HTTP {status} without a session_id",
                http_status=status,
                error_type="MissingSessionId",
            )
        return Imported(code=AnswerCode.IMPORTED, message="", http_status=status, session=session)
    if status == 401:
        if not _SHARE_TOKEN_TEXT.search(message) and _API_KEY_TEXT.search(message):
            return failed(AnswerCode.UPSTREAM_AUTH)
        return rejected(AnswerCode.TOKEN_INVALID_OR_EXPIRED)
    if status in {403, 409}:
        reason = classify_forbidden(message) if status == 403 else AnswerCode.UPSTREAM_FORBIDDEN
        fallback: Rejected | Failed
        if reason == AnswerCode.UPSTREAM_FORBIDDEN:
            fallback = failed(
                AnswerCode.UPSTREAM_FORBIDDEN if status == 403 else AnswerCode.UNEXPECTED_RESPONSE
            )
        else:
            fallback = rejected(reason)
        code = AnswerCode.FORBIDDEN if status == 403 else AnswerCode.CONFLICT
        return NeedsReconcile(code=code, message=message, http_status=status, fallback=fallback)
    if status == 404:
        if isinstance(value, str):
            return failed(AnswerCode.UNEXPECTED_RESPONSE)
        if _WORKFLOW_TEXT.search(message):
            return failed(AnswerCode.WORKFLOW_NOT_FOUND)
        return rejected(AnswerCode.SOURCE_SESSION_NOT_FOUND)
    if status in {400, 422}:
        return rejected(AnswerCode.BAD_REQUEST)
    if status == 402:
        return failed(AnswerCode.INSUFFICIENT_BALANCE)
    if status == 429:
        return retry(AnswerCode.RATE_LIMITED, ambiguous=False)
    if status == 408:
        return retry(AnswerCode.UPSTREAM_UNAVAILABLE, ambiguous=False)
    if 500 <= status < 600:
        return retry(AnswerCode.UPSTREAM_UNAVAILABLE, ambiguous=True)
    return Failed(
        code=AnswerCode.UNEXPECTED_RESPONSE,
        message=f"HTTP {status}: {message}" if message != f"HTTP {status}" else message,
        http_status=status,
    )
