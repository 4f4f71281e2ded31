"""Leaf value types shared by every layer: stdlib only."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class SessionKind(StrEnum):
    USER = "user"  # KYC; a token without session_kind is a user token
    BUSINESS = "business"  # KYB


class NotificationStatus(StrEnum):
    PENDING = "pending"  # accepted, waiting for (or in) an import attempt
    IMPORTED = "imported"
    REJECTED = "rejected"  # Didit refused the token; retrying cannot help
    EXPIRED = "expired"  # the token's deadline passed before it could be redeemed
    FAILED = "failed"  # gave up, or needs an operator; `share-bridge retry` while the token lives

    @property
    def is_final(self) -> bool:
        return self is not NotificationStatus.PENDING


class EventType(StrEnum):
    IMPORTED = "share.imported"
    REJECTED = "share.rejected"
    EXPIRED = "share.expired"
    FAILED = "share.failed"
    STATUS_UPDATED = "share.status_updated"


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """What a rule decided for one notification; stored with it, so config changes don't move it."""

    rule: str
    workflow_id: str
    vendor_data: str
    trust_review: bool
    destinations: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    """Why a notification ended as it did (``reason`` in docs/events.md); never holds the token."""

    code: str  # stable, e.g. token_invalid_or_expired, insufficient_balance
    message: str
    http_status: int | None = None  # Didit's answer, when there was one


@dataclass(frozen=True, slots=True, kw_only=True)
class DiditSession:
    """The session Didit created for an imported share."""

    session_id: str
    session_number: int | None = None
    status: str | None = None  # Didit's status string, e.g. "In Review"


#: Didit's decided session statuses, as ``didit_status_key`` spells them. Moving between them is a
#: new decision (a reviewer's, or an approval's KYC expiry); moving from one back to a status that
#: is not decided is a stale webhook.
DIDIT_FINAL_STATUSES = frozenset({"APPROVED", "DECLINED", "KYC_EXPIRED", "EXPIRED", "ABANDONED"})


def didit_status_key(status: str) -> str:
    """``"In Review"``, ``"IN_REVIEW"`` and ``" in review"`` are one status: ``"IN_REVIEW"``."""
    return status.strip().upper().replace(" ", "_")


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitInfo:
    """Didit's quota headers on one answer; a field is None when absent or unreadable."""

    limit: int | None  # X-RateLimit-Limit: requests allowed in the 60 s window
    remaining: int | None  # X-RateLimit-Remaining
    reset_epoch: float | None  # X-RateLimit-Reset as sent: epoch seconds
    reset_in_s: float | None  # seconds from the answer until that reset; >= 0, capped
    retry_after_s: float | None  # Retry-After in seconds (an HTTP-date is converted); capped


# -- what a job handler returns to the worker (bridge.worker maps each to the store) ---------


@dataclass(frozen=True, slots=True)
class Done:
    """The handler recorded the job's end itself, in the transaction that completed it."""


@dataclass(frozen=True, slots=True)
class Complete:
    """The job succeeded; the worker completes it."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again later: after ``delay_s`` seconds, or (None) after the worker's backoff.

    ``not_after`` (epoch seconds, e.g. the token's deadline) caps when the next run happens.
    """

    error: str
    delay_s: float | None = None
    not_after: float | None = None


@dataclass(frozen=True, slots=True)
class Bury:
    """Give up: the job is dead until an operator revives it."""

    error: str


@dataclass(frozen=True, slots=True)
class Release:
    """Nothing was done that counts (the bridge is stopping before anything was sent, the
    destination is not configured): the job is queued again, its attempt refunded, due after
    ``delay_s`` seconds (0: at once)."""

    delay_s: float = 0.0


JobResult = Done | Complete | Retry | Bury | Release


@dataclass(frozen=True, slots=True, kw_only=True)
class SendLimits:
    """How many sends one quota allows (imports under an API key, deliveries to a destination):
    at most ``budget`` in any ``window_s``, and at most ``burst`` in any ``burst_window_s`` (so
    a backlog drains at the pace, not in a burst)."""

    budget: int
    window_s: float
    burst: int
    burst_window_s: float

    def lowered_to(self, budget: int) -> SendLimits:
        """These limits for a smaller budget (a limit Didit said): the burst's pace falls with
        it."""
        if budget >= self.budget:
            return self
        per_s = self.burst / self.burst_window_s * budget / self.budget
        burst = max(1, self.burst * budget // self.budget)
        return SendLimits(
            budget=budget, window_s=self.window_s, burst=burst, burst_window_s=burst / per_s
        )


class SharedQuota(Protocol):
    """A quota (an API key's, a destination's) kept where every process using it sees it (a
    store shared by replicas), on that place's clock; ``key`` names the quota, never holds the
    API key."""

    async def take_send(self, key: str, limits: SendLimits) -> float:
        """Count one send now and answer 0.0 if ``limits`` allow it (also under every pause
        held); else count nothing and answer the seconds until one may be allowed."""
        ...

    async def hold_sends(self, key: str, *, pause_s: float | None, limit: int | None) -> None:
        """Pause every process's sends for ``pause_s`` (a 429), and/or lower the budget to
        Didit's ``limit`` (X-RateLimit-Limit) for all of them."""
        ...
