"""What one call to Didit answered: an import's verdict, answer metadata, the read error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.didit.codes import AnswerCode
from bridge.errors import BridgeError
from bridge.types import DiditSession, RateLimitInfo, Reason


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedSession:
    """The session an import created in our application (only ``session_id`` is guaranteed)."""

    session_id: str
    session_number: int | None = None
    status: str | None = None  # as Didit sent it, e.g. "In Review"
    session_kind: str | None = None
    workflow_id: str | None = None
    vendor_data: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def as_session(self) -> DiditSession:
        """The part the store records and events carry."""
        return DiditSession(
            session_id=self.session_id, session_number=self.session_number, status=self.status
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerVerdict:
    """What an import's answer means; ``message`` comes from Didit's answer, scrubbed."""

    code: AnswerCode
    message: str
    http_status: int | None

    @property
    def reason(self) -> Reason:
        """The event's ``reason`` (docs/events.md) when the share ends on this verdict."""
        return Reason(code=self.code, message=self.message, http_status=self.http_status)


@dataclass(frozen=True, slots=True, kw_only=True)
class Imported(AnswerVerdict):
    """201: the token was redeemed into ``session``."""

    session: ImportedSession


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected(AnswerVerdict):
    """Didit refused the token; retrying cannot help (notification ends ``rejected``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed(AnswerVerdict):
    """Our side or Didit's needs an operator (notification ends ``failed``; retry allowed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryLater(AnswerVerdict):
    """Try again through the durable queue, not before ``retry_after_s`` when given."""

    retry_after_s: float | None = None
    ambiguous: bool = False  # a 5xx: the import may have happened; reconcile first


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedsReconcile(AnswerVerdict):
    """A 403 (or 409): reconcile; if no import is found, record ``fallback``."""

    fallback: Rejected | Failed


@dataclass(frozen=True, slots=True, kw_only=True)
class NoAnswer(AnswerVerdict):
    """No usable answer: the import may have happened, so the attempt is ambiguous."""

    error_type: str  # the exception class name, or "MissingSessionId" for a bare 201


ImportVerdict = Imported | Rejected | Failed | RetryLater | NeedsReconcile | NoAnswer


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportAnswer:
    """One import call: its verdict and what the logs, metrics and pacer need to know."""

    verdict: ImportVerdict
    http_status: int | None  # None when no answer arrived
    latency_s: float
    rate_limit: RateLimitInfo | None
    body_excerpt: str  # error answers only (a 201 body holds personal data), scrubbed, bounded
    tries: int  # connection tries, including in-process retries of unsent requests


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """Metadata of any answer, given to the client's ``observer`` (for metrics and logs)."""

    method: str
    path: str  # the template, e.g. "/v3/session/{session_id}/decision/", never a value
    http_status: int | None
    latency_s: float
    rate_limit: RateLimitInfo | None
    error_type: str | None  # the exception class name when no answer arrived


class DiditError(BridgeError):
    """Didit did not answer a read (list, decision) as expected."""

    code: AnswerCode = AnswerCode.UPSTREAM_UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        code: AnswerCode,
        http_status: int | None = None,
        retry_after_s: float | None = None,
        rate_limit: RateLimitInfo | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.http_status = http_status
        self.retry_after_s = retry_after_s
        self.rate_limit = rate_limit

    @property
    def retryable(self) -> bool:
        """True when asking again later may succeed (no answer, 429, 5xx)."""
        return self.code in {AnswerCode.UPSTREAM_UNAVAILABLE, AnswerCode.RATE_LIMITED}
