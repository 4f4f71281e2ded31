"""The codes Didit's answers are read as: an import verdict's ``code`` (the event's ``reason.code``
when the share ends on it, and the attempt's recorded result) and a failed read's."""

from __future__ import annotations

from enum import StrEnum


class AnswerCode(StrEnum):
    IMPORTED = "imported"  # a 201 with a session_id
    NO_ANSWER = "no_answer"  # no usable answer (a bare 201, a timeout): the attempt is ambiguous
    FORBIDDEN = "forbidden"  # a 403, until reconciliation lets it be judged on its words
    CONFLICT = "conflict"  # a 409, likewise
    # rejected: retrying cannot help
    ALREADY_IMPORTED = "already_imported"
    TOKEN_NOT_FOR_THIS_APPLICATION = "token_not_for_this_application"  # noqa: S105 - a code
    TOKEN_INVALID_OR_EXPIRED = "token_invalid_or_expired"  # noqa: S105 - a code
    SOURCE_SESSION_NOT_FOUND = "source_session_not_found"
    BAD_REQUEST = "bad_request"
    # failed: our side or Didit's needs an operator
    UPSTREAM_AUTH = "upstream_auth"
    UPSTREAM_FORBIDDEN = "upstream_forbidden"
    WORKFLOW_NOT_FOUND = "workflow_not_found"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    UNEXPECTED_RESPONSE = "unexpected_response"
    # asked again later
    RATE_LIMITED = "rate_limited"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    # a read (list, decision) of something Didit does not have
    NOT_FOUND = "not_found"
