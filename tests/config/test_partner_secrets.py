"""What counts as a weak partner secret: each refusal says why, and never echoes the value."""

from __future__ import annotations

import base64
import secrets

import pytest
from pydantic import ValidationError

from bridge.config import Partner
from bridge.demo.config_template import DemoSecrets
from tests.config.conftest import HS256_KEY, PARTNER_KEY, WHSEC

WEAK = [
    ("hunter2hunter2", "shorter than 16 characters"),
    ("abababababababababab", "fewer than 8 distinct characters"),
    ("1212121234343434", "fewer than 8 distinct characters"),
    ("4829105736201934", "only digits"),
    ("correcthorsebattery", "only lowercase letters"),
    ("CORRECTHORSEBATTERY", "only uppercase letters"),
]


def partner(auth: dict[str, object]) -> Partner:
    return Partner.model_validate({"auth": auth})


def refusal(auth: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as caught:
        partner(auth)
    return str(caught.value)


@pytest.mark.parametrize(("secret", "reason"), WEAK)
def test_weak_hmac_secrets_and_api_keys_are_refused_with_the_reason(
    secret: str, reason: str
) -> None:
    auths: list[dict[str, object]] = [
        {"scheme": "hmac", "secrets": [PARTNER_KEY, secret]},
        {"scheme": "api-key", "keys": [secret]},
    ]
    for auth in auths:
        message = refusal(auth)
        assert f"too weak: {reason}" in message
        assert secret not in message.split("input_value")[0]  # pydantic's own echo aside


@pytest.mark.parametrize("secret", [s for s, _ in WEAK])
def test_hs256_secrets_need_32_bytes_and_the_same_variety(secret: str) -> None:
    padded = secret if len(secret) >= 32 else (secret * 3)[:32]
    message = refusal({"scheme": "jwt", "algorithms": ["HS256"], "key": padded})
    assert "too weak" in message or "at least 32 bytes" in message


@pytest.mark.parametrize("key", [b"hunter2", b"\x00" * 32, bytes(range(4)) * 8])
def test_a_whsec_must_hold_16_varied_bytes(key: bytes) -> None:
    whsec = "whsec_" + base64.b64encode(key).decode()
    message = refusal({"scheme": "standard-webhooks", "secrets": [whsec]})
    assert "too weak: the key after whsec_ must be at least 16 random bytes" in message


def test_generated_and_fixture_secrets_pass() -> None:
    """What ``bridge demo`` and the README's commands generate is accepted."""
    for _ in range(50):
        demo = DemoSecrets.generate()
        partner({"scheme": "standard-webhooks", "secrets": [demo.acme]})
        partner({"scheme": "hmac", "secrets": [demo.globex]})
        partner({"scheme": "jwt", "key": demo.initech})
        partner({"scheme": "api-key", "keys": [secrets.token_hex(16), secrets.token_urlsafe(24)]})
    partner({"scheme": "standard-webhooks", "secrets": [WHSEC]})
    partner({"scheme": "api-key", "keys": [PARTNER_KEY]})
    partner({"scheme": "jwt", "key": HS256_KEY})
