"""The Didit API client: redeem a share token, list our sessions, read a decision.

Classification of an import answer is a pure function (:func:`classify_import`), and so are the
helpers the pipeline needs to reconcile an ambiguous attempt (:func:`find_imported`,
:func:`classify_forbidden`). The share token travels in the request body only; the request body
is never logged, and every message taken from an answer is scrubbed of JWT-shaped text.

How the pipeline reads an :class:`ImportAnswer` (docs/architecture.md, Imports and outcomes):

- :class:`Imported`: record ``verdict.session``.
- :class:`Rejected` / :class:`Failed`: final (``rejected`` / ``failed``), ``verdict.reason``.
- :class:`RetryLater`: back to the durable queue, not before ``retry_after_s``; when
  ``ambiguous`` (a 5xx: the import may have happened) the next attempt reconciles first.
- :class:`NeedsReconcile` (a 403, a 409): reconcile; if nothing was imported, record ``fallback``.
- :class:`NoAnswer`: the import may have happened; mark the attempt ambiguous; reconcile next.

Feed ``answer.rate_limit`` and ``answer.http_status`` to the pacer after every import.
"""

from __future__ import annotations

from bridge.didit.answers import (
    AnswerVerdict,
    DiditError,
    Exchange,
    Failed,
    ImportAnswer,
    Imported,
    ImportedSession,
    ImportVerdict,
    NeedsReconcile,
    NoAnswer,
    Rejected,
    RetryLater,
)
from bridge.didit.bodies import (
    EXCERPT_MAX_CHARS,
    MESSAGE_MAX_CHARS,
    body_excerpt,
    error_message,
    scrub,
)
from bridge.didit.classify import ForbiddenReason, classify_forbidden, classify_import
from bridge.didit.client import (
    CONNECT_ATTEMPTS,
    DECISION_PATH,
    IMPORT_PATH,
    SESSIONS_PATH,
    DiditClient,
)
from bridge.didit.codes import AnswerCode
from bridge.didit.ratelimit import MAX_RESET_IN_S, MAX_RETRY_AFTER_S, parse_rate_limit
from bridge.didit.reconcile import RECONCILE_SKEW, AmbiguousMatch, SessionRow, find_imported

__all__ = [
    "CONNECT_ATTEMPTS",
    "DECISION_PATH",
    "EXCERPT_MAX_CHARS",
    "IMPORT_PATH",
    "MAX_RESET_IN_S",
    "MAX_RETRY_AFTER_S",
    "MESSAGE_MAX_CHARS",
    "RECONCILE_SKEW",
    "SESSIONS_PATH",
    "AmbiguousMatch",
    "AnswerCode",
    "AnswerVerdict",
    "DiditClient",
    "DiditError",
    "Exchange",
    "Failed",
    "ForbiddenReason",
    "ImportAnswer",
    "ImportVerdict",
    "Imported",
    "ImportedSession",
    "NeedsReconcile",
    "NoAnswer",
    "Rejected",
    "RetryLater",
    "SessionRow",
    "body_excerpt",
    "classify_forbidden",
    "classify_import",
    "error_message",
    "find_imported",
    "parse_rate_limit",
    "scrub",
]
