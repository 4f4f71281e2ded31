"""Leaf value types shared by every layer: stdlib only."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SessionKind(StrEnum):
    USER = "user"  # KYC; a token without session_kind is a user token
    BUSINESS = "business"  # KYB


class NotificationStatus(StrEnum):
    PENDING = "pending"  # accepted, waiting for (or in) an import attempt
    IMPORTED = "imported"
    REJECTED = "rejected"  # Didit refused the token; retrying cannot help
    EXPIRED = "expired"  # the token's deadline passed before it could be redeemed
    FAILED = "failed"  # gave up, or needs an operator; `bridge retry` while the token lives

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
