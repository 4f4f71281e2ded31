"""Standard Webhooks (https://www.standardwebhooks.com): the partner scheme and our outbound signer.

The signed content is ``"{webhook-id}.{webhook-timestamp}." + raw body`` under HMAC-SHA256 with the
key base64-decoded from a ``whsec_`` secret; the ``webhook-signature`` header is a space-separated
list of ``v1,<base64>`` entries, one per secret while a secret is being rotated.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import secrets
from collections.abc import Mapping, Sequence

from bridge.signing._base import (
    INVALID,
    Verified,
    any_matches,
    check_fresh,
    fail,
    mac,
    message_id,
    required_header,
    unix_seconds,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the scheme's prefix, not a secret
# A sender lists one entry per secret it holds (two while rotating). Entries past these are
# ignored: a header of a million entries would otherwise cost each unauthenticated request a
# million decodes and comparisons.
MAX_SIGNATURE_ENTRIES = 8
_ENTRY = re.compile(r"\S+")  # found one at a time: the rest of the header is never copied


def new_whsec(size: int = 32) -> str:
    """A fresh random Standard Webhooks secret: ``whsec_`` and ``size`` random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(size)).decode()


def decode_whsec(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_<base64>`` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a Standard Webhooks secret looks like whsec_<base64>")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the part of the secret after whsec_ is not base64") from None
    if not key:
        raise ValueError("the secret after whsec_ is empty")
    return key


def _decode_all(secrets: Sequence[str]) -> tuple[bytes, ...]:
    if isinstance(secrets, str) or not secrets:
        raise ValueError("give a non-empty list of whsec_ secrets")
    return tuple(decode_whsec(secret) for secret in secrets)


def _signed_content(msg_id: str, timestamp: str, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode("ascii") + body


def _offered_signatures(header_value: str) -> list[bytes]:
    offered = []
    for match in itertools.islice(_ENTRY.finditer(header_value), MAX_SIGNATURE_ENTRIES):
        entry = match.group()
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded.isascii():
            continue  # other versions (v1a: asymmetric) are not ours to check
        try:
            offered.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return offered


class StandardWebhooksVerifier:
    """Verifies ``webhook-id``/``webhook-timestamp``/``webhook-signature`` against any secret."""

    def __init__(self, secrets: Sequence[str], tolerance_s: int) -> None:
        self._keys = _decode_all(secrets)
        self._tolerance_s = tolerance_s

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float) -> Verified:
        msg_id = required_header(headers, "webhook-id")
        timestamp = required_header(headers, "webhook-timestamp")
        signatures = required_header(headers, "webhook-signature")
        if message_id(msg_id) is None:
            raise fail(INVALID, "the webhook-id header is not a printable ASCII id")
        sent_at = unix_seconds(timestamp, "webhook-timestamp")
        check_fresh(sent_at, now=now, tolerance_s=self._tolerance_s)
        content = _signed_content(msg_id, timestamp, body)
        expected = tuple(mac(key, content) for key in self._keys)
        if not any_matches(expected, _offered_signatures(signatures)):
            raise fail(INVALID, "no webhook-signature entry matches a configured secret")
        return Verified(message_id=msg_id)


class StandardWebhooksSigner:
    """Signs outbound messages with every secret, so a receiver holding any one of them verifies."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._keys = _decode_all(secrets)

    def sign(self, message_id: str, timestamp: int, body: bytes) -> str:
        """``"v1,<sig> v1,<sig>"``: one signature per configured secret."""
        if not (message_id.isascii() and message_id.isprintable() and message_id):
            raise ValueError("a webhook-id is a non-empty printable ASCII string")
        content = _signed_content(message_id, str(int(timestamp)), body)
        return " ".join(
            "v1," + base64.b64encode(mac(key, content)).decode("ascii") for key in self._keys
        )

    def headers(self, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """The three Standard Webhooks headers for one message."""
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(timestamp)),
            "webhook-signature": self.sign(message_id, timestamp, body),
        }
