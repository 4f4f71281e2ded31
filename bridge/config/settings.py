"""``Settings``, the root of the configuration, and the sections about the service itself."""

from __future__ import annotations

import re
from typing import Literal
from uuid import UUID

from pydantic import Field, SecretStr, field_validator, model_validator

from bridge.config.checks import reference_problems
from bridge.config.destinations import Destination
from bridge.config.fields import ConfigModel, HttpUrl, Name
from bridge.config.keys import decode_token_key, secret_problems, token_key_problem
from bridge.config.partners import Partner
from bridge.config.problems import raise_problems
from bridge.config.rules import Rule

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class DiditSettings(ConfigModel):
    base_url: HttpUrl = "https://verification.didit.me"
    api_key: SecretStr
    application_id: UUID  # ours: a token for another application is refused at intake
    timeout_s: float = Field(default=15.0, gt=0)
    rate_limit_per_minute: int = Field(default=300, gt=0)  # the key's write quota
    max_in_flight: int = Field(default=8, gt=0)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, url: str) -> str:
        return url.rstrip("/")  # paths are appended to it

    @field_validator("api_key")
    @classmethod
    def _api_key_set(cls, key: SecretStr) -> SecretStr:
        if not key.get_secret_value().strip():
            raise ValueError("must not be empty")
        return key


class StoreSettings(ConfigModel):
    url: str = "sqlite:///data/bridge.db"  # or postgresql://user@host:5432/db
    pool_size: int = Field(default=10, gt=0, le=1000)  # PostgreSQL: connections per process
    # PostgreSQL: how long a call waits for a connection before the store is unavailable (503)
    pool_timeout_s: float = Field(default=2.0, gt=0, le=60)
    schema_: str | None = Field(default=None, alias="schema")  # PostgreSQL: default search_path
    # PostgreSQL: share tokens are sealed with the first key, opened with any (rotation)
    token_keys: tuple[SecretStr, ...] = ()
    # Final notifications older than this are deleted with their history; None keeps everything
    retention_days: float | None = Field(default=None, gt=0, le=36_500, allow_inf_nan=False)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
            return url
        if url.startswith("postgresql://") and len(url) > len("postgresql://"):
            return url
        raise ValueError("must be sqlite:///PATH or postgresql://user@host:5432/db")

    @field_validator("schema_")
    @classmethod
    def _plain_schema(cls, schema: str | None) -> str | None:
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError("must be a lower-case name: letters, digits and _ (not first)")
        return schema

    @field_validator("token_keys")
    @classmethod
    def _token_keys_valid(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if keys:
            raise_problems(secret_problems(keys, token_key_problem))
        return keys

    @model_validator(mode="after")
    def _postgres_seals_tokens(self) -> StoreSettings:
        if self.is_postgres and not self.token_keys:
            raise_problems(
                [(("token_keys",), "a postgresql store needs at least one key to seal tokens")]
            )
        return self

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql://")

    def decoded_token_keys(self) -> tuple[bytes, ...]:
        return tuple(decode_token_key(key.get_secret_value()) for key in self.token_keys)


class ServerSettings(ConfigModel):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=65536, gt=0)
    # The edge's limits (``bridge.app.edge``): a request line and headers larger than this are
    # answered 431; a client gets header_timeout_s to send them and body_timeout_s more for the
    # body (408, then closed); open connections beyond max_connections are answered 503.
    max_header_bytes: int = Field(default=16384, ge=1024)
    header_timeout_s: float = Field(default=5.0, gt=0)
    body_timeout_s: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=512, gt=0)
    # A second listener for /metrics, /openapi.json and the admin API; the port above then
    # serves only intake, Didit's webhooks and the probes.
    ops_port: int | None = Field(default=None, ge=1, le=65535)
    ops_host: str | None = None  # the ops listener's address; default: host

    @field_validator("host", "ops_host")
    @classmethod
    def _host_set(cls, host: str | None) -> str | None:
        if host is not None and not host.strip():
            raise ValueError("must not be empty")
        return host

    @model_validator(mode="after")
    def _ops_port_apart(self) -> ServerSettings:
        if self.ops_port is not None and self.ops_port == self.port:
            raise ValueError("ops_port must differ from port")
        return self


class DiditWebhooks(ConfigModel):
    secrets: tuple[SecretStr, ...]
    tolerance_s: int = Field(default=300, ge=0)

    @field_validator("secrets")
    @classmethod
    def _secrets_set(cls, secrets: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        raise_problems(secret_problems(secrets))
        return secrets


class AdminSettings(ConfigModel):
    token: SecretStr

    @field_validator("token")
    @classmethod
    def _token_set(cls, token: SecretStr) -> SecretStr:
        if not token.get_secret_value().strip():
            raise ValueError("must not be empty")
        return token


class LoggingSettings(ConfigModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class TelemetrySettings(ConfigModel):
    """OpenTelemetry traces (the ``otel`` extra): sent by OTLP/HTTP to ``otlp_endpoint``.

    Without an endpoint here, the standard ``OTEL_EXPORTER_OTLP_*`` variables may give one.
    """

    # The example config leaves this section commented out (a section turns traces on), so its
    # comments cannot describe these keys: the descriptions are written here instead.
    otlp_endpoint: HttpUrl | None = Field(
        default=None,
        description="the collector's OTLP/HTTP address; else OTEL_EXPORTER_OTLP_* gives one",
    )
    service_name: str = Field(
        default="share-bridge", description="the service.name the traces carry"
    )
    sample_ratio: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="the share of notifications traced; a partner's sampled traceparent is "
        "followed",
    )


class Settings(ConfigModel):
    didit: DiditSettings
    store: StoreSettings = StoreSettings()
    server: ServerSettings = ServerSettings()
    partners: dict[Name, Partner]
    rules: tuple[Rule, ...]
    destinations: dict[Name, Destination] = {}
    didit_webhooks: DiditWebhooks | None = None
    admin: AdminSettings | None = None
    logging: LoggingSettings = LoggingSettings()
    telemetry: TelemetrySettings | None = None

    def rule_by_name(self, name: str) -> Rule | None:
        """The rule called ``name``, or None (rule names are unique)."""
        return next((rule for rule in self.rules if rule.name == name), None)

    @field_validator("partners")
    @classmethod
    def _some_partners(cls, partners: dict[str, Partner]) -> dict[str, Partner]:
        if not partners:
            raise ValueError("at least one partner is required")
        return partners

    @field_validator("rules")
    @classmethod
    def _some_rules(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        if not rules:
            raise ValueError(
                "at least one rule is required: a notification no rule matches is refused"
            )
        return rules

    @model_validator(mode="after")
    def _references(self) -> Settings:
        rules = [rule.model_dump() for rule in self.rules]
        raise_problems(reference_problems(rules, self.partners, self.destinations))
        return self
