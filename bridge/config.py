"""YAML -> validated, frozen Settings (DESIGN.md section 3).

The models below are the whole configuration language. Loading (line numbers, ``${VAR}``
interpolation, error formatting) is at the bottom of this module.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bridge.types import EventType, SessionKind


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)  # a YAML typo is an error


class DiditSettings(_Model):
    base_url: str = "https://verification.didit.me"
    api_key: SecretStr
    application_id: UUID  # ours: a token for another application is refused at intake
    timeout_s: float = Field(default=15.0, gt=0)
    rate_limit_per_minute: int = Field(default=300, gt=0)  # the key's write quota
    max_in_flight: int = Field(default=8, gt=0)


class StoreSettings(_Model):
    url: str = "sqlite:///data/bridge.db"  # or postgresql://user@host:5432/db


class ServerSettings(_Model):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=65536, gt=0)


class StandardWebhooksAuth(_Model):
    scheme: Literal["standard-webhooks"]
    secrets: tuple[SecretStr, ...]  # whsec_...; several while rotating
    tolerance_s: int = Field(default=300, ge=0)


class HmacAuth(_Model):
    scheme: Literal["hmac"]
    secrets: tuple[SecretStr, ...]
    algorithm: Literal["sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    signature_header: str = "X-Signature"
    timestamp_header: str | None = None  # when set, the MAC covers "{timestamp}.{raw body}"
    tolerance_s: int = Field(default=300, ge=0)


class JwtAuth(_Model):
    scheme: Literal["jwt"]
    algorithms: tuple[Literal["HS256", "RS256", "ES256"], ...] = ("HS256",)
    key: SecretStr | None = None  # HS256 secret or PEM public key
    keys: tuple[SecretStr, ...] = ()  # several, while rotating
    jwks_file: str | None = None  # a JWKS document on disk
    issuer: str | None = None
    audience: str | None = None
    max_age_s: int = Field(default=300, ge=0)  # iat may be at most this old (and not in the future)
    body_hash_claim: str | None = None  # the claim holding the hex SHA-256 of the raw body
    tolerance_s: int = Field(default=30, ge=0)  # clock skew allowed on exp/iat/nbf


class ApiKeyAuth(_Model):
    scheme: Literal["api-key"]
    header: str = "X-Api-Key"
    keys: tuple[SecretStr, ...]


PartnerAuth = Annotated[
    StandardWebhooksAuth | HmacAuth | JwtAuth | ApiKeyAuth, Field(discriminator="scheme")
]


class PartnerFields(_Model):
    share_token: str = "share_token"  # dot path into the body
    event_id: str = "event_id"


class Partner(_Model):
    auth: PartnerAuth
    fields: PartnerFields = PartnerFields()


class RegexMatcher(_Model):
    regex: str


class ExistsMatcher(_Model):
    exists: bool


Scalar = str | int | float | bool | None
Matcher = RegexMatcher | ExistsMatcher | list[Scalar] | Scalar


class RuleWhen(_Model):
    partner: str | list[str] | None = None
    session_kind: SessionKind | None = None  # from the token; absent means user
    payload: dict[str, Matcher] = {}  # dot path -> matcher
    claims: dict[str, Matcher] = {}


class RuleThen(_Model):
    workflow_id: UUID
    vendor_data: str  # template: {partner} {event_id} {payload.x.y} {claims.x}
    trust_review: bool = False
    destinations: tuple[str, ...] = ()


class Rule(_Model):
    name: str
    when: RuleWhen = RuleWhen()
    then: RuleThen


_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")


class Destination(_Model):
    url: str
    secrets: tuple[SecretStr, ...]  # whsec_...; several = dual-signing during rotation
    events: tuple[EventType, ...] = tuple(EventType)
    timeout_s: float = Field(default=15.0, gt=0)
    retry_schedule: tuple[str, ...] = ("5s", "5m", "30m", "2h", "5h", "10h", "10h")
    rate_limit_per_second: float = Field(default=50.0, gt=0)
    max_in_flight: int = Field(default=4, gt=0)


class DiditWebhooks(_Model):
    secrets: tuple[SecretStr, ...]
    tolerance_s: int = Field(default=300, ge=0)


class AdminSettings(_Model):
    token: SecretStr


class LoggingSettings(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class Settings(_Model):
    didit: DiditSettings
    store: StoreSettings = StoreSettings()
    server: ServerSettings = ServerSettings()
    partners: dict[str, Partner]
    rules: tuple[Rule, ...]
    destinations: dict[str, Destination] = {}
    didit_webhooks: DiditWebhooks | None = None
    admin: AdminSettings | None = None
    logging: LoggingSettings = LoggingSettings()


def parse_duration(text: str) -> float:
    """``"5s"`` -> 5.0 seconds; ``ms``, ``s``, ``m``, ``h`` and ``d`` are understood."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a duration like 5s, 5m or 2h: {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return amount * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}[unit]


