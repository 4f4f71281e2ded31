"""``partners``: how each partner authenticates, and where its body keeps the token and id."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from bridge.config.fields import ConfigModel, DotPath, HeaderName, dot_path_steps
from bridge.config.keys import (
    jwks_problem,
    partner_secret_problem,
    partner_whsec_problem,
    public_key_problem,
    secret_problems,
)
from bridge.config.problems import Loc, Problem, Problems, raise_problems

AUTH_SCHEMES = ("standard-webhooks", "hmac", "jwt", "api-key")
_MIN_HS256_KEY_BYTES = 32  # RFC 7518 section 3.2; pyjwt warns below it


class StandardWebhooksAuth(ConfigModel):
    scheme: Literal["standard-webhooks"]
    secrets: tuple[SecretStr, ...]  # whsec_...; several while rotating
    tolerance_s: int = Field(default=300, ge=0)

    @field_validator("secrets")
    @classmethod
    def _whsec(cls, secrets: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        raise_problems(secret_problems(secrets, partner_whsec_problem))
        return secrets


class HmacAuth(ConfigModel):
    scheme: Literal["hmac"]
    secrets: tuple[SecretStr, ...]
    algorithm: Literal["sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    signature_header: HeaderName = "X-Signature"
    timestamp_header: HeaderName | None = None  # when set, the MAC covers "{timestamp}.{body}"
    tolerance_s: int = Field(default=300, ge=0)

    @field_validator("secrets")
    @classmethod
    def _secrets_strong(cls, secrets: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        raise_problems(secret_problems(secrets, partner_secret_problem))
        return secrets

    @model_validator(mode="after")
    def _distinct_headers(self) -> HmacAuth:
        if (self.timestamp_header or "").lower() == self.signature_header.lower():
            raise Problems([(("timestamp_header",), "must differ from signature_header")])
        return self


def _hs256_key_problem(key: str) -> str | None:
    if len(key.encode()) < _MIN_HS256_KEY_BYTES:
        return f"an HS256 secret must be at least {_MIN_HS256_KEY_BYTES} bytes"
    return partner_secret_problem(key)


class JwtAuth(ConfigModel):
    scheme: Literal["jwt"]
    algorithms: tuple[Literal["HS256", "RS256", "ES256"], ...] = ("HS256",)
    key: SecretStr | None = None  # HS256 secret or PEM public key
    keys: tuple[SecretStr, ...] = ()  # several, while rotating
    jwks_file: str | None = None  # a JWKS document on disk, relative to the config file
    issuer: str | None = None
    audience: str | None = None
    max_age_s: int = Field(default=300, ge=0)  # iat may be at most this old (and not in the future)
    body_hash_claim: str | None = None  # the claim holding the hex SHA-256 of the raw body
    require_jti: bool = False  # refuse a token without a jti: each jti is then accepted once
    tolerance_s: int = Field(default=30, ge=0)  # clock skew allowed on exp/iat/nbf

    @property
    def verification_keys(self) -> tuple[SecretStr, ...]:
        """``key`` then ``keys``: every secret or PEM a token may be signed with."""
        return ((self.key,) if self.key is not None else ()) + self.keys

    @field_validator("key", "keys")
    @classmethod
    def _read_pem_files(
        cls, value: SecretStr | tuple[SecretStr, ...] | None, info: ValidationInfo
    ) -> SecretStr | tuple[SecretStr, ...] | None:
        """An RS256/ES256 key may be given as the path of a PEM file, relative to the config
        file; HS256 keys are secrets, never paths."""
        algorithms = set(info.data.get("algorithms", ()))
        if value is None or not algorithms or "HS256" in algorithms:
            return value
        base_dir = (info.context or {}).get("base_dir")
        if isinstance(value, tuple):
            return tuple(_pem_or_file(key, base_dir) for key in value)
        return _pem_or_file(value, base_dir)

    @field_validator("jwks_file")
    @classmethod
    def _resolve_jwks_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("must be a file path")
        base_dir = (info.context or {}).get("base_dir")
        return str(Path(base_dir, value)) if base_dir is not None else value

    @model_validator(mode="after")
    def _usable_keys(self) -> JwtAuth:
        raise_problems(self._key_problems())
        return self

    def _key_problems(self) -> list[Problem]:
        algorithms = set(self.algorithms)
        if not algorithms:
            return [(("algorithms",), "at least one algorithm is required")]
        if "HS256" in algorithms and len(algorithms) > 1:
            return [(("algorithms",), "HS256 cannot be combined with RS256 or ES256")]
        keys: list[tuple[Loc, str]] = [
            (("keys", i), key.get_secret_value()) for i, key in enumerate(self.keys)
        ]
        if self.key is not None:
            keys.insert(0, (("key",), self.key.get_secret_value()))
        if algorithms == {"HS256"}:
            problems = [(loc, m) for loc, key in keys if (m := _hs256_key_problem(key))]
            if self.jwks_file is not None:
                problems.append((("jwks_file",), "a JWKS holds public keys: use RS256 or ES256"))
            return (
                problems if keys else [(("key",), "HS256 needs the shared secret in key or keys")]
            )
        if not keys and self.jwks_file is None:
            return [(("key",), "needs the partner's PEM public key in key or keys, or a jwks_file")]
        found = [(loc, public_key_problem(pem, algorithms)) for loc, pem in keys]
        if self.jwks_file is not None:
            found.append((("jwks_file",), jwks_problem(self.jwks_file)))
        return [(loc, message) for loc, message in found if message]


def _pem_or_file(key: SecretStr, base_dir: str | os.PathLike[str] | None) -> SecretStr:
    text = key.get_secret_value()
    if "-----BEGIN" in text or not text.strip():
        return key
    path = Path(base_dir, text) if base_dir is not None else Path(text)
    try:
        return SecretStr(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ValueError(
            f"neither a PEM public key nor a readable PEM file ({path}: {why})"
        ) from None


class ApiKeyAuth(ConfigModel):
    scheme: Literal["api-key"]
    header: HeaderName = "X-Api-Key"
    keys: tuple[SecretStr, ...]

    @field_validator("keys")
    @classmethod
    def _keys_strong(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        raise_problems(secret_problems(keys, partner_secret_problem))
        return keys


PartnerAuth = Annotated[
    StandardWebhooksAuth | HmacAuth | JwtAuth | ApiKeyAuth, Field(discriminator="scheme")
]


class PartnerFields(ConfigModel):
    share_token: DotPath = "share_token"  # noqa: S105 - a dot path into the body, not a secret
    event_id: DotPath = "event_id"

    @model_validator(mode="after")
    def _distinct(self) -> PartnerFields:
        # Not even reaching the same list item: {event_id} would copy the token into events.
        if dot_path_steps(self.share_token) == dot_path_steps(self.event_id):
            raise Problems([(("event_id",), "must differ from share_token")])
        return self


class Partner(ConfigModel):
    auth: PartnerAuth
    fields: PartnerFields = PartnerFields()
    # At most this many of the partner's imports start in any 60 s; None: its fair share.
    max_imports_per_minute: int | None = Field(default=None, gt=0)
