"""Didit's own webhooks (reference/didit-api.md section 3.2-3.3).

Didit sends three hex HMAC-SHA256 signatures. They are tried strongest first: ``X-Signature-V2``
over canonical JSON (it survives re-encoding by middleware; the documentation disagrees on a
``"{X-Timestamp}:"`` prefix and on ASCII escaping, so every variant is accepted), then
``X-Signature`` over the raw body, then ``X-Signature-Simple`` over four envelope fields only,
which leaves the decision unauthenticated: the result says so with ``envelope_only``.
Freshness is judged by the time the matching signature covers (the body's ``timestamp`` or
``created_at``; Simple's ``timestamp``; the prefixed V2 variant's ``X-Timestamp``), so a captured
webhook replayed with a new ``X-Timestamp`` is stale. ``X-Timestamp`` itself must be fresh too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from bridge.signing._base import (
    INVALID,
    MISSING,
    Verified,
    any_matches,
    check_fresh,
    decode_digest,
    fail,
    header,
    mac,
    message_id,
    secret_keys,
    to_bytes,
    unix_seconds,
)

SignatureKind = Literal["v2", "raw", "simple"]
_SIGNATURE_HEADERS = ("X-Signature-V2", "X-Signature", "X-Signature-Simple")


@dataclass(frozen=True, slots=True, kw_only=True)
class DiditVerified(Verified):
    """A Didit webhook that verified, with its parsed body and the signature that matched."""

    signature: SignatureKind
    #: When Didit says the event happened, as signed (epoch seconds): the body's ``timestamp`` (or
    #: ``created_at``) when the matching signature covers the body, else the signed
    #: ``X-Timestamp``. Orders a session's statuses; a retry re-signed later keeps its time.
    signed_at: float
    payload: Mapping[str, Any] = field(compare=False)

    @property
    def envelope_only(self) -> bool:
        """Only the Simple signature matched: re-fetch the decision before trusting it."""
        return self.signature == "simple"


def _shorten_floats(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and Infinity are not JSON")
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {key: _shorten_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shorten_floats(item) for item in value]
    return value


def canonical_json(value: Any, *, ensure_ascii: bool = False) -> bytes:
    """Didit's V2 form: integer-valued floats as ints, sorted keys, compact separators, UTF-8."""
    text = json.dumps(
        _shorten_floats(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=ensure_ascii,
        allow_nan=False,
    )
    return text.encode("utf-8", "surrogatepass")  # a lone "\ud800" escape must not crash


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_body(body: bytes) -> tuple[dict[str, Any], tuple[bytes, bytes]]:
    """The body as an object, and its canonical forms (Unicode-preserved, ASCII-escaped)."""
    try:
        payload = json.loads(body, parse_constant=_refuse_constant)
        if not isinstance(payload, dict):
            raise fail(INVALID, "the webhook body is not a JSON object")
        return payload, (canonical_json(payload), canonical_json(payload, ensure_ascii=True))
    except (ValueError, RecursionError):
        raise fail(INVALID, "the webhook body is not valid JSON") from None


def _time_of(value: object) -> int | float | None:
    """A body field as Unix seconds (a number, digits, or ISO 8601); None when it is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, str) and value.isascii():
        if value.isdigit():
            return int(value[:15])  # 15 digits already reach far past any tolerance window
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return None


def _body_time(payload: Mapping[str, Any]) -> int | float | None:
    for name in ("timestamp", "created_at"):
        value = _time_of(payload.get(name))
        if value is not None:
            return value
    return None


def _simple_field(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, str | int | float) else ""


def _simple_content(payload: Mapping[str, Any]) -> bytes:
    fields = ("timestamp", "session_id", "status", "webhook_type")
    text = ":".join(_simple_field(payload.get(name)) for name in fields)
    return text.encode("utf-8", "surrogatepass")


class DiditWebhookVerifier:
    """Verifies a Didit webhook with any configured ``secret_shared_key`` and checks freshness."""

    def __init__(self, secrets: Sequence[str | bytes], tolerance_s: int = 300) -> None:
        self._keys = secret_keys(secrets, "didit webhooks")
        self._tolerance_s = tolerance_s

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float) -> DiditVerified:
        offered = {name: header(headers, name) for name in _SIGNATURE_HEADERS}
        if not any(value and value.strip() for value in offered.values()):
            raise fail(MISSING, "none of X-Signature-V2, X-Signature, X-Signature-Simple is set")
        payload, canonical_forms = _parse_body(body)
        stamp = (header(headers, "X-Timestamp") or "").strip() or None
        stamp_at = unix_seconds(stamp, "X-Timestamp") if stamp else None
        body_at = _body_time(payload)
        if stamp_at is None and body_at is None:
            raise fail(MISSING, "no X-Timestamp header and no timestamp in the body")
        if stamp_at is not None:  # the documented check; not enough alone, few forms sign it
            check_fresh(stamp_at, now=now, tolerance_s=self._tolerance_s)

        # Each form with the time it signs: freshness is judged by that time, so a captured
        # webhook replayed with a new X-Timestamp is stale. Simple signs the body's timestamp only.
        attempts: list[tuple[SignatureKind, str, list[bytes], int | float | None]] = [
            ("v2", "X-Signature-V2", list(canonical_forms), body_at),
            ("raw", "X-Signature", [body], body_at),
            (
                "simple",
                "X-Signature-Simple",
                [_simple_content(payload)],
                _time_of(payload.get("timestamp")),
            ),
        ]
        if stamp is not None:
            prefixed = [stamp.encode("ascii") + b":" + form for form in canonical_forms]
            attempts.insert(1, ("v2", "X-Signature-V2", prefixed, stamp_at))
        for kind, name, contents, signed_at in attempts:
            digest = decode_digest(offered[name] or "", "hex")
            if not digest:
                continue
            expected = tuple(mac(key, content) for key in self._keys for content in contents)
            if any_matches(expected, [digest]):
                if signed_at is None:
                    raise fail(MISSING, f"{name} signs no timestamp: freshness cannot be shown")
                check_fresh(signed_at, now=now, tolerance_s=self._tolerance_s)
                happened_at = body_at if kind != "simple" and body_at is not None else signed_at
                return DiditVerified(
                    message_id=message_id(payload.get("event_id")),
                    signature=kind,
                    signed_at=float(happened_at),
                    payload=MappingProxyType(payload),
                )
        raise fail(INVALID, "no Didit signature header matches a configured secret")


def sign_didit_webhook(secret: str | bytes, body: bytes, *, timestamp: int) -> dict[str, str]:
    """The headers Didit would send with ``body`` (for tests and the demo; Didit signs its own)."""
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise ValueError("a Didit webhook body is a JSON object")
    key = to_bytes(secret)
    return {
        "X-Timestamp": str(int(timestamp)),
        "X-Signature-V2": mac(key, canonical_json(payload)).hex(),
        "X-Signature": mac(key, body).hex(),
        "X-Signature-Simple": mac(key, _simple_content(payload)).hex(),
    }
