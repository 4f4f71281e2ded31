"""Share tokens: read a Didit share token's claims without verifying it (docs/architecture.md).

Didit signs share tokens with its own secret, so the bridge can only *read* them
(reference/didit-api.md section 2.3). The claims are advisory: a missing or mistyped claim is
treated as absent and is never by itself a reason to refuse. Only a token that is not a
well-formed JWT raises, and always as :class:`bridge.errors.TokenError`.

A :class:`ShareToken` never holds the token itself, only its SHA-256, so neither its repr nor any
error can leak the credential.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final
from uuid import UUID

import jwt
import orjson

from bridge.errors import TokenError
from bridge.types import SessionKind

MAX_TOKEN_CHARS: Final = 8192
"""Longer strings are refused unread: Didit's tokens are a few hundred characters."""

DEFAULT_LEEWAY_S: Final = 30.0
"""Clock skew allowed on ``exp`` at intake (docs/architecture.md, Intake)."""

# Three base64url segments (padding tolerated, as pyjwt does); the signature must be present:
# Didit always signs, and an unsigned ("alg": "none") token is not a share token.
_COMPACT_JWT: Final = re.compile(
    r"[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]+={0,2}"
)

# Every check that pyjwt would make is off: we only want the structure validated and decoded.
_UNVERIFIED: Final[jwt.types.Options] = {
    "verify_signature": False,
    "verify_aud": False,
    "verify_exp": False,
    "verify_iat": False,
    "verify_iss": False,
    "verify_jti": False,
    "verify_nbf": False,
    "verify_sub": False,
    "require": [],
}

# Header parameters pyjwt validates on its own terms: a header holding one goes its way.
_PLAIN_HEADER_KEYS: Final = frozenset({"kid", "crit", "b64"})

# Timestamps must be moments a datetime can hold (years 1 to 9999, UTC): the deadline is stored,
# and the admin API and the CLI show it as a date. Anything else (2**62, say) is treated as
# absent, like any other unusable claim. A negative time within that range is kept: an exp in
# 1969 has passed, and the token is refused as expired.
_DATETIME_SECONDS: Final = range(-62_135_596_800, 253_402_300_800)

# Header segments seen lately and what they decode to: a partner's tokens all carry the same
# header, so it is decoded once. Bounded: cleared when full.
_HEADERS_KEPT: Final = 64
_HEADER_KEPT_CHARS: Final = 512
_decoded_headers: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class ShareToken:
    """The facts the bridge reads from a share token. Holds no secret: not the token itself."""

    session_id: str | None
    """The source session in the partner's application."""
    session_kind: SessionKind
    """``user`` (KYC) or ``business`` (KYB); absent or unknown means ``user``."""
    session_kind_claim: object
    """The raw ``session_kind`` claim as sent (None when absent), for display and diagnosis."""
    from_application_id: str | None
    """The partner's Didit application, which minted the token."""
    for_application_id: str | None
    """The application allowed to redeem the token (ours, if it was minted for us)."""
    iat: int | None
    exp: int | None
    sha256: str
    """Hex SHA-256 of the token: what stays stored after the token itself is erased."""
    claims: Mapping[str, Any] = field(repr=False, compare=False, hash=False)
    """Every claim, as decoded, for rules that match on claims."""
    header: Mapping[str, Any] = field(repr=False, compare=False, hash=False)

    def deadline(self, margin_s: float = 30.0) -> float | None:
        """The last moment (epoch seconds) worth trying to redeem the token: ``exp - margin_s``."""
        return None if self.exp is None else self.exp - margin_s

    def is_expired(self, now: float, leeway_s: float = DEFAULT_LEEWAY_S) -> bool:
        """True when ``exp`` passed more than ``leeway_s`` ago; a token without ``exp`` never is."""
        return self.exp is not None and now >= self.exp + leeway_s

    def is_for(self, application_id: str | UUID) -> bool:
        """Whether the application may redeem the token; True when ``for_application_id`` is absent.

        UUIDs compare case-insensitively and in any of their spellings.
        """
        if self.for_application_id is None:
            return True
        return _normalise_id(self.for_application_id) == _normalise_id(application_id)

    @property
    def business_key(self) -> str:
        """The dedupe key (docs/architecture.md, Intake).

        ``"{from_application_id}:{session_id}"`` when both claims are present, else
        ``"sha256:{sha256}"``.
        """
        if self.from_application_id is not None and self.session_id is not None:
            return f"{self.from_application_id}:{self.session_id}"
        return f"sha256:{self.sha256}"


def read_share_token(token: object) -> ShareToken:
    """Decode a share token WITHOUT verifying its signature.

    The structure is checked: exactly three base64url segments, whose header and claims decode to
    JSON objects whose strings are text (no lone surrogate such as ``\\ud800``). Raises
    :class:`TokenError` (``malformed_share_token``) for anything else, whatever the input; the
    message never quotes the token.
    """
    if not isinstance(token, str):
        raise TokenError(f"the share token is a {type(token).__name__}, not a string")
    header, claims = _decode(token)
    kind_claim = claims.get("session_kind")
    return ShareToken(
        session_id=_text_claim(claims, "session_id"),
        session_kind=_session_kind(kind_claim),
        session_kind_claim=kind_claim,
        from_application_id=_text_claim(claims, "from_application_id"),
        for_application_id=_text_claim(claims, "for_application_id"),
        iat=_time_claim(claims, "iat"),
        exp=_time_claim(claims, "exp"),
        sha256=hashlib.sha256(token.encode("ascii")).hexdigest(),
        claims=MappingProxyType(claims),
        header=MappingProxyType(header),
    )


def _decode(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if not token:
        raise TokenError("the share token is empty")
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError(f"the share token is longer than {MAX_TOKEN_CHARS} characters")
    if _COMPACT_JWT.fullmatch(token) is None:
        raise TokenError("the share token is not three base64url segments separated by dots")
    reason = _decode_reason(token)
    if isinstance(reason, str):
        # Raised outside the except block on purpose: no chained pyjwt error, nothing of the token.
        raise TokenError(f"the share token is not a well-formed JWT: {reason}")
    return reason


def _decode_reason(token: str) -> tuple[dict[str, Any], dict[str, Any]] | str:
    decoded = _decode_plain(token)
    if decoded is not None:
        return decoded
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options=_UNVERIFIED)
    except jwt.PyJWTError as exc:
        return _describe(exc)
    except (ValueError, TypeError, RecursionError):  # defence in depth: pyjwt should wrap these
        return "it does not decode"
    if not (_is_strict_json(header) and _is_strict_json(claims)):
        return "it holds NaN or Infinity, which JSON does not allow"
    if _has_lone_surrogate(header) or _has_lone_surrogate(claims):
        return "it holds a lone UTF-16 surrogate (like \\ud800), which is not text"
    return header, claims


def _decode_plain(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The common case without pyjwt (about 20x faster, on intake's hot path): decode with the
    same strictness as pyjwt's unverified decode; None for anything unusual (a segment pyjwt
    would refuse, a header with ``kid``, ``crit`` or ``b64``, not JSON objects), so that the
    pyjwt path decides it and words the reason."""
    try:
        header_segment, claims_segment, signature_segment = token.split(".")
        header_json = _decoded_headers.get(header_segment)
        if header_json is None:
            header_json = _strict_json(_segment(header_segment))
        claims_json = _strict_json(_segment(claims_segment))
        _segment(signature_segment)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(header_json, dict) and isinstance(claims_json, dict)):
        return None
    if not _PLAIN_HEADER_KEYS.isdisjoint(header_json):
        return None
    if header_segment not in _decoded_headers and _worth_keeping(header_segment, header_json):
        if len(_decoded_headers) >= _HEADERS_KEPT:
            _decoded_headers.clear()
        _decoded_headers[header_segment] = header_json
    return dict(header_json), claims_json


def _worth_keeping(segment: str, header: dict[str, Any]) -> bool:
    """Only short headers of plain values are kept: the copy handed out must share nothing."""
    return len(segment) <= _HEADER_KEPT_CHARS and all(
        isinstance(value, str | int | float | bool) or value is None for value in header.values()
    )


def _strict_json(document: bytes) -> Any:
    """``json.loads`` as pyjwt calls it, refusing NaN, Infinity and overflowing floats while
    parsing (no walk over the values afterwards), and lone surrogates (ValueError: the pyjwt
    path then refuses the token with its reason). Only text with a ``\\u`` escape or beyond
    ASCII can hold a surrogate: the common case costs two scans in C."""
    text = document.decode(json.detect_encoding(document), "surrogatepass")
    value = _STRICT_DECODER.decode(text)
    if not (text.isascii() and "\\u" not in text) and _has_lone_surrogate(value):
        raise ValueError("a lone surrogate")
    return value


def _refuse(constant: str) -> float:
    raise ValueError(constant)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


_STRICT_DECODER: Final = json.JSONDecoder(parse_constant=_refuse, parse_float=_finite)


def _segment(segment: str) -> bytes:
    """One base64url segment, as strictly as pyjwt reads it: at most two ``=``, only where
    padding belongs, and the canonical encoding of what it decodes to. ValueError otherwise."""
    stripped = segment.rstrip("=")
    padding = len(segment) - len(stripped)
    if padding > 2 or (padding and len(segment) % 4) or len(stripped) % 4 == 1:
        raise ValueError("not base64url")
    decoded = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != stripped.encode("ascii"):
        raise ValueError("not the canonical base64url")
    return decoded


def _is_strict_json(document: object) -> bool:
    # Python's json module (which pyjwt uses) accepts NaN and Infinity; JSON does not, and the
    # claims travel on into events. Iterative: the parser already allowed deep nesting.
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return True


def _has_lone_surrogate(document: object) -> bool:
    """Whether a decoded header or claims hold a lone surrogate, from a ``\\ud800`` escape or
    from bytes decoded with ``surrogatepass``: no UTF-8 store, log or event can hold one.

    orjson refuses such a string while it serialises, in C (well under a microsecond for a share
    token's claims). It also refuses integers beyond 64 bits and deep nesting, which are fine
    here, so only a document it refuses is walked (iteratively) to tell which it was.
    """
    try:
        orjson.dumps(document)
    except orjson.JSONEncodeError:
        pass
    else:
        return False
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if not _is_utf8(value):
                return True
        elif isinstance(value, dict):
            pending.extend(value)  # the keys
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _describe(exc: jwt.PyJWTError) -> str:
    # Map pyjwt's messages to fixed phrases: its messages may quote decoded header values.
    text = str(exc).lower()
    for needle, phrase in _REASONS:
        if needle in text:
            return phrase
    return "its header parameters are invalid (kid, crit or b64)"


_REASONS: Final = (
    ("header padding", "its header segment is not base64url"),
    ("payload padding", "its claims segment is not base64url"),
    ("crypto padding", "its signature segment is not base64url"),
    ("header string", "its header is not a JSON object"),
    ("payload string", "its claims are not a JSON object"),
)


def _text_claim(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


def _time_claim(claims: Mapping[str, Any], name: str) -> int | None:
    """A NumericDate as whole epoch seconds; None when absent, mistyped, or outside the years a
    datetime can hold (1 to 9999), so that every time kept can be shown as a date."""
    value = claims.get(name)
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value):
        value = math.floor(value)  # a NumericDate may carry fractions (RFC 7519 section 2)
    return value if isinstance(value, int) and value in _DATETIME_SECONDS else None


def _session_kind(claim: object) -> SessionKind:
    if isinstance(claim, str):
        try:
            return SessionKind(claim.strip().lower())
        except ValueError:
            pass
    return SessionKind.USER


_CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _normalise_id(value: str | UUID) -> str:
    if isinstance(value, str) and _CANONICAL_UUID.fullmatch(value) is not None:
        return value  # what str(UUID(value)) gives back, without building the UUID
    if isinstance(value, UUID):
        return str(value)
    try:
        return str(UUID(value.strip()))
    except ValueError:
        return value.strip().lower()
