"""Didit's status webhooks, signed the three ways the reference describes (§3.2, §3.3)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

USER_AGENT = "DiditWebhook/2.0 +https://didit.me"


def shorten_floats(value: Any) -> Any:
    """Every float with an integer value becomes an int (``2.0`` -> ``2``), recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: shorten_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shorten_floats(item) for item in value]
    return value


def canonical_json(value: Any) -> bytes:
    """V2's message: sorted keys, compact separators, Unicode kept, integer floats shortened."""
    return json.dumps(
        shorten_floats(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode()


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_request(envelope: dict[str, Any], *, secret: str) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of one webhook. The raw body keeps Unicode unescaped and uses
    ``json.dumps``' default separators, so it differs from V2's canonical form, as Didit's
    does; ``X-Signature`` covers these exact bytes."""
    raw = json.dumps(envelope, ensure_ascii=False).encode()
    simple = (
        f"{envelope.get('timestamp', '')}:{envelope.get('session_id', '')}:"
        f"{envelope.get('status', '')}:{envelope.get('webhook_type', '')}"
    )
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "x-timestamp": str(envelope.get("timestamp", "")),
        "x-signature-v2": _hex_hmac(secret, canonical_json(envelope)),
        "x-signature": _hex_hmac(secret, raw),
        "x-signature-simple": _hex_hmac(secret, simple.encode()),
    }
    return raw, headers


async def deliver(url: str, body: bytes, headers: dict[str, str], *, timeout_s: float) -> int:
    """POST once (Didit's retry policy is unconfirmed; the sandbox does not retry)."""
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
        response = await client.post(url, content=body, headers=headers)
    return response.status_code
