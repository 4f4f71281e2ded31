"""Checks on secrets and keys; each returns a message or None, and never echoes the value."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import SecretStr

from bridge.config.problems import Problem

_MIN_RSA_BITS = 2048
_PUBLIC_KEY_ALGORITHMS: dict[str, RSAAlgorithm | ECAlgorithm] = {
    "RS256": RSAAlgorithm(RSAAlgorithm.SHA256),
    "ES256": ECAlgorithm(ECAlgorithm.SHA256),
}


def whsec_problem(secret: str) -> str | None:
    """What is wrong with a Standard Webhooks secret (``whsec_`` + base64), if anything."""
    if not secret.startswith("whsec_"):
        return "must be a Standard Webhooks secret: whsec_ followed by base64"
    try:
        decoded = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return "the part after whsec_ must be valid base64"
    return None if decoded else "the part after whsec_ must decode to at least 1 byte"


MIN_PARTNER_SECRET_CHARS = 16
MIN_DISTINCT_CHARS = 8
_GENERATE_HINT = "generate one with: openssl rand -hex 32"
_ONE_CLASS = {
    "digit": "only digits",
    "lower": "only lowercase letters",
    "upper": "only uppercase letters",
}


def partner_secret_problem(secret: str) -> str | None:
    """What makes a secret a partner signs or authenticates with guessable, if anything.

    At least ``MIN_PARTNER_SECRET_CHARS`` characters, at least ``MIN_DISTINCT_CHARS`` distinct
    ones (``aaaa...``, ``abcabc...`` and ``1212...`` are refused), and not drawn from one class
    alone (only digits, or only letters of one case): anyone who captures one request can try
    guesses offline against its signature, at billions per second.
    """
    if not secret.strip():
        return "must not be empty"
    if len(secret) < MIN_PARTNER_SECRET_CHARS:
        return f"too weak: shorter than {MIN_PARTNER_SECRET_CHARS} characters ({_GENERATE_HINT})"
    if len(set(secret)) < MIN_DISTINCT_CHARS:
        return f"too weak: fewer than {MIN_DISTINCT_CHARS} distinct characters ({_GENERATE_HINT})"
    classes = {_char_class(char) for char in secret}
    if len(classes) == 1 and (only := classes.pop()) in _ONE_CLASS:
        return f"too weak: {_ONE_CLASS[only]} ({_GENERATE_HINT})"
    return None


def _char_class(char: str) -> str:
    if char.isdigit():
        return "digit"
    return "lower" if char.islower() else "upper" if char.isupper() else "other"


def partner_whsec_problem(secret: str) -> str | None:
    """``whsec_problem``, and the key it holds must be ``MIN_PARTNER_SECRET_CHARS`` bytes or more
    with ``MIN_DISTINCT_CHARS`` distinct byte values."""
    problem = whsec_problem(secret)
    if problem is not None:
        return problem
    key = base64.b64decode(secret.removeprefix("whsec_"))
    if len(key) < MIN_PARTNER_SECRET_CHARS or len(set(key)) < MIN_DISTINCT_CHARS:
        return (
            f"too weak: the key after whsec_ must be at least {MIN_PARTNER_SECRET_CHARS} random "
            "bytes (generate one with: echo whsec_$(openssl rand -base64 32))"
        )
    return None


def empty_problem(secret: str) -> str | None:
    """A secret of only whitespace is no secret."""
    return None if secret.strip() else "must not be empty"


def secret_problems(
    secrets: Sequence[SecretStr], problem: Callable[[str], str | None] = empty_problem
) -> list[Problem]:
    """A list of secrets must be non-empty, and each must pass ``problem``."""
    if not secrets:
        return [((), "at least one is required (several while rotating)")]
    found = ((i, problem(secret.get_secret_value())) for i, secret in enumerate(secrets))
    return [((i,), message) for i, message in found if message]


def public_key_problem(pem: str, algorithms: Collection[str]) -> str | None:
    """What is wrong with a PEM public key for any of ``algorithms`` (RS256, ES256), if anything."""
    if "PRIVATE KEY" in pem:
        return "this is a private key: configure the partner's public key"
    for algorithm in sorted(algorithms):
        try:
            key = _PUBLIC_KEY_ALGORITHMS[algorithm].prepare_key(pem)
        except (jwt.InvalidKeyError, ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if isinstance(key, rsa.RSAPublicKey) and algorithm == "RS256":
            small = key.key_size < _MIN_RSA_BITS
            return f"the RSA key must have at least {_MIN_RSA_BITS} bits" if small else None
        if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
            return None
    hint = " (the variable holds a literal \\n: use real newlines)" if "\\n" in pem else ""
    return f"not a PEM public key for {' or '.join(sorted(algorithms))}{hint}"


def jwks_problem(path: str) -> str | None:
    """What is wrong with the JWKS document at ``path``, if anything (it is read now)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    except ValueError:
        return f"{path} is not JSON"
    try:
        if not isinstance(document, dict):
            raise jwt.PyJWKSetError("the document is not an object with keys")
        jwt.PyJWKSet.from_dict(document)
    except (jwt.PyJWKSetError, jwt.PyJWKError, jwt.InvalidKeyError) as exc:
        return f"{path} is not a usable JWKS: {exc}"
    return None


TOKEN_KEY_BYTES = 32


def decode_token_key(text: str) -> bytes:
    """A key that seals share tokens at rest: 32 random bytes in base64url (padding optional),
    as ``python -c "import secrets; print(secrets.token_urlsafe(32))"`` prints one.
    ``ValueError`` (without the value) when it is not one."""
    text = text.strip()
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64url") from None
    if len(key) != TOKEN_KEY_BYTES:
        raise ValueError(f"must decode to {TOKEN_KEY_BYTES} bytes (base64url of 32 random bytes)")
    return key


def token_key_problem(secret: str) -> str | None:
    """What is wrong with a token key, if anything (see ``decode_token_key``)."""
    try:
        decode_token_key(secret)
    except ValueError as exc:
        return str(exc)
    return None
