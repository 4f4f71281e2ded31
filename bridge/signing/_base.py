"""What every verifier shares: the result type, the protocol, and defensive header parsing.

Headers arrive from the network, so everything here treats them as hostile: any type, any
length, any characters. The only exception that leaves this package is ``VerificationError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bridge.errors import VerificationError

MISSING = "missing_signature"
INVALID = "invalid_signature"
STALE = "timestamp_out_of_tolerance"

MAX_MESSAGE_ID_LENGTH = 256  # a message id is stored for dedupe; anything longer is not an id

_ABSENT = object()
_UNIX_SECONDS = re.compile(r"[0-9]{1,15}")  # 15 digits reach far past any tolerance window
_HEX = re.compile(r"[0-9a-fA-F]+")

HmacAlgorithm = Literal["sha256", "sha512"]
HmacEncoding = Literal["hex", "base64"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Verified:
    """A message whose signature verified."""

    message_id: str | None  # webhook-id or jti: a retry of an accepted message is a duplicate
    claims: Mapping[str, Any] | None = field(default=None, compare=False)  # jwt only


class Verifier(Protocol):
    """Authenticates one inbound message: the exact body bytes and the request's headers."""

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float) -> Verified:
        """Return what was verified, or raise ``VerificationError`` (never anything else)."""
        ...


def fail(code: str, message: str) -> VerificationError:
    """The one error this package raises; ``code`` is one of the three codes above."""
    return VerificationError(message, code=code)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in any letter case; None when absent.

    A value that is present but not a string (a misbehaving caller) is refused, not crashed on.
    """
    wanted = name.lower()
    value: object = headers.get(wanted, _ABSENT)  # starlette's Headers: case-insensitive already
    if value is _ABSENT:
        items: Iterable[tuple[object, object]] = headers.items()  # a caller's dict: check types
        value = next((v for k, v in items if isinstance(k, str) and k.lower() == wanted), None)
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(INVALID, f"the {name} header is not text")
    return value


def required_header(headers: Mapping[str, str], name: str) -> str:
    value = header(headers, name)
    if value is None or not value.strip():
        raise fail(MISSING, f"the {name} header is missing")
    return value.strip()


def unix_seconds(value: str, name: str) -> int:
    """Parse a header holding whole Unix seconds, ASCII digits only."""
    if not _UNIX_SECONDS.fullmatch(value):
        raise fail(INVALID, f"the {name} header is not a Unix time in seconds")
    return int(value)


def check_fresh(timestamp: float, *, now: float, tolerance_s: float) -> None:
    """Refuse a timestamp further than ``tolerance_s`` from ``now``, in the past or the future."""
    # Comparisons only, no subtraction: a timestamp from a body may be an int beyond float range.
    if not now - tolerance_s <= timestamp <= now + tolerance_s:
        raise fail(STALE, f"the message timestamp is more than {tolerance_s:g} s from now")


def message_id(value: object) -> str | None:
    """A usable message id (printable ASCII, bounded) or None."""
    if isinstance(value, str) and 0 < len(value) <= MAX_MESSAGE_ID_LENGTH and value.isprintable():
        return value if value.isascii() else None
    return None


def to_bytes(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def secret_keys(secrets: Sequence[str | bytes], what: str) -> tuple[bytes, ...]:
    """Validate a rotation list of shared secrets at construction time."""
    if isinstance(secrets, str | bytes) or not secrets:
        raise ValueError(f"{what}: give a non-empty list of secrets")
    keys = tuple(to_bytes(secret) for secret in secrets)
    if not all(keys):
        raise ValueError(f"{what}: a secret is empty")
    return keys


def mac(key: bytes, message: bytes, algorithm: HmacAlgorithm = "sha256") -> bytes:
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()


def encode_digest(digest: bytes, encoding: HmacEncoding) -> str:
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode("ascii")


def decode_digest(text: str, encoding: HmacEncoding) -> bytes | None:
    """The digest bytes a header claims, or None when the text is not valid ``encoding``."""
    text = text.strip()
    if not text.isascii():
        return None
    if encoding == "hex":
        return bytes.fromhex(text) if _HEX.fullmatch(text) and len(text) % 2 == 0 else None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def any_matches(expected: tuple[bytes, ...], offered: list[bytes]) -> bool:
    """True when some offered digest equals some expected one; every pair is compared."""
    matched = False
    for candidate in offered:
        for digest in expected:
            matched |= hmac.compare_digest(digest, candidate)
    return matched
