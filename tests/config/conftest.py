from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

EXAMPLE = Path(__file__).parents[2] / "config" / "bridge.example.yaml"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
APPLICATION_ID = "11111111-2222-4333-8444-555555555555"
# Partner secrets strong enough for the loader (16+ characters, varied); HS256 ones 32+ bytes.
PARTNER_KEY = "partner-key-4f7c2a9e1b"
HS256_KEY = "hs256-shared-secret-5d8e1f3a9c2b7046"
HS256_NEXT_KEY = "hs256-shared-secret-next-0a6c4e2b9d"
# The smallest valid configuration: one partner, one rule.
MINIMAL = f"""\
didit:
  api_key: test-api-key
  application_id: {APPLICATION_ID}
partners:
  acme:
    auth: {{scheme: standard-webhooks, secrets: [{WHSEC}]}}
rules:
  - name: acme-users
    then:
      workflow_id: 3c5b9a2e-0000-4000-8000-000000000002
      vendor_data: "acme:{{event_id}}"
"""


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def example_environ(rsa_key: rsa.RSAPrivateKey) -> dict[str, str]:
    """Every variable the example configuration needs (its defaults are left unset)."""
    return {
        "DIDIT_API_KEY": "test-didit-api-key",
        "DIDIT_APPLICATION_ID": APPLICATION_ID,
        "ACME_WHSEC": WHSEC,
        "GLOBEX_SECRET": "globex-shared-secret",
        "INITECH_PUBLIC_KEY": public_pem(rsa_key),
        "HOOLI_KEY": "hooli-api-key-4f7c2a9e",
        "CRM_WHSEC": WHSEC,
        "AUDIT_WHSEC": "whsec_YXVkaXQ=",
        "DIDIT_WEBHOOK_SECRET": "didit-webhook-secret",
        "BRIDGE_ADMIN_TOKEN": "test-admin-token",
    }
