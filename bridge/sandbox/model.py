"""The sandbox's domain records: applications, workflows, sessions and entities.

These are plain mutable records owned by a :class:`~bridge.sandbox.world.World`; the emulator runs
in one event loop, so nothing here needs a lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class SessionKind(StrEnum):
    USER = "user"  # KYC; a share token without session_kind is a user token
    BUSINESS = "business"  # KYB


class WorkflowKind(StrEnum):
    KYC = "KYC"
    KYB = "KYB"

    @property
    def session_kind(self) -> SessionKind:
        return SessionKind.USER if self is WorkflowKind.KYC else SessionKind.BUSINESS


IN_REVIEW = "In Review"
#: Only these statuses can be shared (reference §2.1).
FINISHED_STATUSES: tuple[str, ...] = ("Approved", "Declined", IN_REVIEW)
#: Every status string Didit documents (reference §4.1); the control API accepts any string.
KNOWN_STATUSES: tuple[str, ...] = (
    "Not Started",
    "In Progress",
    "Approved",
    "Declined",
    IN_REVIEW,
    "Awaiting User",
    "Resubmitted",
    "Expired",
    "Abandoned",
    "Kyc Expired",
)
#: A session's link lifetime, as in the reference's 201 example (created + 7 days).
SESSION_LIFETIME_S = 7 * 24 * 3600


@dataclass(slots=True, kw_only=True)
class Workflow:
    id: str
    application_id: str
    kind: WorkflowKind
    label: str


@dataclass(slots=True, kw_only=True)
class Application:
    """A Didit application: its id, its API key, its workflows, and what the sandbox needs."""

    id: str
    name: str
    api_key: str
    workflows: dict[str, Workflow] = field(default_factory=dict)
    credits: int | None = None  # None: unlimited; each import spends one, 0 refuses with 403
    webhook_url: str | None = None  # where status.updated webhooks go
    webhook_secret: str = ""  # the application's secret_shared_key


@dataclass(slots=True, kw_only=True)
class Session:
    id: str
    number: int
    kind: SessionKind
    status: str
    vendor_data: str | None
    workflow_id: str
    application_id: str
    created_at: float  # epoch seconds
    expires_at: float
    shared_from_session: str | None = None  # the source session of an imported clone
    entity_id: str | None = None
    details: dict[str, str] = field(default_factory=dict)  # names, country, company: for payloads


@dataclass(slots=True, kw_only=True)
class Entity:
    """A User (KYC) or Business (KYB) entity, auto-created from ``vendor_data``."""

    id: str
    application_id: str
    kind: SessionKind
    vendor_data: str
    created_at: float
