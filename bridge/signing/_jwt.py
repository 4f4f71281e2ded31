"""The ``jwt`` partner scheme: ``Authorization: Bearer <JWT>`` signed by the partner.

pyjwt checks the signature, ``iss`` and ``aud``; the time claims are checked here against the
injected ``now`` (pyjwt reads the wall clock). ``iat`` is required: with ``max_age_s`` it bounds
how long a captured request can be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bridge.signing._base import (
    INVALID,
    MISSING,
    STALE,
    Verified,
    fail,
    message_id,
    required_header,
    to_bytes,
)

SUPPORTED_ALGORITHMS = (
    *("HS256", "HS384", "HS512"),
    *("RS256", "RS384", "RS512"),
    *("ES256", "ES384", "ES512"),
)
_JWK_TYPE = {"HS": "oct", "RS": "RSA", "ES": "EC"}  # algorithm family -> JWK "kty"


def _public_key_family(pem: bytes) -> tuple[str, Any]:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("a PEM jwt key must be an RSA or EC public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        return "RS", key
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ES", key
    raise ValueError("a PEM jwt key must be an RSA or EC public key")


def _time_claim(claims: Mapping[str, Any], name: str) -> int | float | None:
    value: object = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(INVALID, f"the JWT's {name} claim is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise fail(INVALID, f"the JWT's {name} claim is not a finite number")
    return value


class JwtVerifier:
    """Verifies a bearer JWT with any configured key: HS secrets, PEM public keys, or a JWKS."""

    def __init__(
        self,
        *,
        algorithms: Sequence[str],
        keys: Sequence[str | bytes] = (),
        jwks: Mapping[str, Any] | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        max_age_s: int = 300,
        body_hash_claim: str | None = None,
        require_jti: bool = False,
        leeway_s: int = 30,
    ) -> None:
        if isinstance(algorithms, str) or not algorithms:
            raise ValueError("jwt: give a non-empty list of algorithms")
        unknown = [alg for alg in algorithms if alg not in SUPPORTED_ALGORITHMS]
        if unknown:
            raise ValueError(f"jwt: unsupported algorithms {unknown}; use {SUPPORTED_ALGORITHMS}")
        self._algorithms = tuple(algorithms)
        families = {alg[:2] for alg in self._algorithms}
        self._keys: dict[str, list[Any]] = {family: [] for family in _JWK_TYPE}
        for key in keys:
            raw = to_bytes(key)
            family, prepared = _public_key_family(raw) if b"-----BEGIN" in raw else ("HS", raw)
            if family not in families:
                raise ValueError(f"jwt: a key needs a {family} algorithm, and none is configured")
            if not prepared:
                raise ValueError("jwt: a key is empty")
            self._keys[family].append(prepared)
        self._jwks = self._load_jwks(jwks)
        if not any(self._keys.values()) and not self._jwks:
            raise ValueError("jwt: configure at least one key or a JWKS")
        self._issuer = issuer
        self._audience = audience
        self._max_age_s = max_age_s
        self._body_hash_claim = body_hash_claim
        self._require_jti = require_jti
        self._leeway_s = leeway_s

    @staticmethod
    def _load_jwks(jwks: Mapping[str, Any] | None) -> list[jwt.PyJWK]:
        if jwks is None:
            return []
        try:
            return list(jwt.PyJWKSet.from_dict(dict(jwks)))
        except (jwt.PyJWTError, AttributeError, TypeError) as exc:
            raise ValueError(f"jwt: the JWKS has no usable key ({exc})") from None

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float) -> Verified:
        scheme, _, token = required_header(headers, "Authorization").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise fail(MISSING, "expected an Authorization: Bearer <JWT> header")
        if not token.isascii():
            raise fail(INVALID, "the bearer token is not a JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise fail(INVALID, "the bearer token is not a JWT") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise fail(INVALID, "the JWT's alg is not one of the configured algorithms")
        claims = self._decode(token, algorithm, header.get("kid"))
        self._check_times(claims, now)
        self._check_body_hash(claims, body)
        jti = message_id(claims.get("jti"))
        if jti is None and self._require_jti:
            # The jti is the message id: a token is accepted once, a replay is its duplicate.
            raise fail(INVALID, "the JWT has no usable jti claim (printable ASCII, required)")
        return Verified(message_id=jti, claims=MappingProxyType(claims))

    def _candidate_keys(self, algorithm: str, kid: object) -> list[Any]:
        family = algorithm[:2]
        from_jwks = [
            jwk.key
            for jwk in self._jwks
            if jwk.key_type == _JWK_TYPE[family]
            and (jwk.key_id is None or kid in (None, jwk.key_id))
        ]
        return [*self._keys[family], *from_jwks]

    def _decode(self, token: str, algorithm: str, kid: object) -> dict[str, Any]:
        options: dict[str, Any] = {
            "verify_exp": False,  # the time claims are checked against the injected clock
            "verify_nbf": False,
            "verify_iat": False,
            "verify_aud": self._audience is not None,
        }
        for key in self._candidate_keys(algorithm, kid):
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm],
                    audience=self._audience,
                    issuer=self._issuer,
                    options=options,  # type: ignore[arg-type]
                )
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError):
                continue
            except (jwt.InvalidAudienceError, jwt.InvalidIssuerError) as exc:
                raise fail(INVALID, f"the JWT's claims are not for us: {exc}") from None
            except jwt.MissingRequiredClaimError as exc:
                raise fail(INVALID, f"the JWT lacks the {exc.claim} claim") from None
            except jwt.PyJWTError:
                raise fail(INVALID, "the bearer token is not a valid JWT") from None
            return claims
        raise fail(INVALID, "the JWT's signature matches no configured key")

    def _check_times(self, claims: Mapping[str, Any], now: float) -> None:
        # Comparisons only: a claim may be an int far beyond float range.
        issued_at = _time_claim(claims, "iat")
        expires = _time_claim(claims, "exp")
        not_before = _time_claim(claims, "nbf")
        leeway = self._leeway_s
        if issued_at is None:
            raise fail(STALE, "the JWT has no iat claim, so its age is unknown")
        if issued_at > now + leeway or (not_before is not None and not_before > now + leeway):
            raise fail(STALE, "the JWT is not valid yet (iat or nbf in the future)")
        if issued_at < now - self._max_age_s - leeway:
            raise fail(STALE, f"the JWT was issued more than {self._max_age_s} s ago")
        if expires is not None and expires <= now - leeway:
            raise fail(STALE, "the JWT has expired")

    def _check_body_hash(self, claims: Mapping[str, Any], body: bytes) -> None:
        if self._body_hash_claim is None:
            return
        claimed = claims.get(self._body_hash_claim)
        expected = hashlib.sha256(body).hexdigest()
        if not (
            isinstance(claimed, str)
            and claimed.isascii()
            and hmac.compare_digest(claimed.lower(), expected)
        ):
            raise fail(INVALID, f"the JWT's {self._body_hash_claim} claim does not match the body")


def sign_jwt(
    body: bytes,
    key: str | bytes,
    *,
    now: float,
    algorithm: str = "HS256",
    issuer: str | None = None,
    audience: str | None = None,
    jti: str | None = None,
    body_hash_claim: str | None = None,
    ttl_s: int = 300,
    kid: str | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """A partner's bearer JWT: an HS secret, or a PEM private key for RS/ES (partner side)."""
    issued_at = int(now)
    claims: dict[str, Any] = {"iat": issued_at, "exp": issued_at + ttl_s}
    optional = {"iss": issuer, "aud": audience, "jti": jti}
    claims.update({name: value for name, value in optional.items() if value is not None})
    if body_hash_claim is not None:
        claims[body_hash_claim] = hashlib.sha256(body).hexdigest()
    claims.update(extra_claims or {})
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid} if kid else None)
