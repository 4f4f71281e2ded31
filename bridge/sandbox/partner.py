"""The demo's partners: how each one signs the notifications it sends.

Written apart from the bridge's verifiers (Standard Webhooks through the ``standardwebhooks``
package, HMAC with the standard library, JWT with pyjwt), so the demo shows the bridge accepting
what independent partner code produces, not what its own signer produces.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import jwt
from standardwebhooks.webhooks import Webhook

_JSON = {"content-type": "application/json"}


class PartnerSigner(Protocol):
    """Signs one notification body: the headers the partner sends with it."""

    def headers(self, body: bytes, *, message_id: str, now: float) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class StandardWebhooksPartner:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` with a whsec_ secret."""

    secret: str

    def headers(self, body: bytes, *, message_id: str, now: float) -> dict[str, str]:
        stamp = datetime.fromtimestamp(int(now), UTC)
        signature = Webhook(self.secret).sign(message_id, stamp, body.decode())
        return {
            **_JSON,
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now)),
            "webhook-signature": signature,
        }


@dataclass(frozen=True, slots=True)
class HmacPartner:
    """Hex HMAC-SHA256 of ``"{timestamp}.{body}"``; this scheme carries no message id."""

    secret: str
    signature_header: str = "X-Signature"
    timestamp_header: str = "X-Timestamp"

    def headers(self, body: bytes, *, message_id: str, now: float) -> dict[str, str]:
        stamp = str(int(now))
        digest = hmac.new(self.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        return {**_JSON, self.signature_header: digest.hexdigest(), self.timestamp_header: stamp}


@dataclass(frozen=True, slots=True)
class JwtPartner:
    """A bearer HS256 JWT whose ``jti`` is the message id and whose ``body_sha256`` claim pins
    the body."""

    secret: str
    issuer: str
    audience: str
    ttl_s: int = 300

    def headers(self, body: bytes, *, message_id: str, now: float) -> dict[str, str]:
        issued = int(now)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued,
            "exp": issued + self.ttl_s,
            "jti": message_id,
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
        token = jwt.encode(claims, self.secret, algorithm="HS256")
        return {**_JSON, "authorization": f"Bearer {token}"}
