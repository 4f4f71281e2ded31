"""The store's secrets (the database password, the token keys) are redacted like the others."""

from __future__ import annotations

import base64

from bridge.cli.service import secrets_of
from bridge.config import load_text
from tests.config.conftest import MINIMAL

KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()


def test_the_database_password_and_the_token_keys_are_secrets() -> None:
    settings = load_text(
        MINIMAL
        + "store:\n  url: postgresql://bridge:pg-pass-w0rd@db:5432/bridge\n"
        + f"  token_keys: ['{KEY}']\n"
    )
    found = secrets_of(settings)
    assert "pg-pass-w0rd" in found
    assert KEY in found


def test_a_url_without_a_password_adds_nothing_empty() -> None:
    settings = load_text(
        MINIMAL + f"store:\n  url: postgresql://bridge@db:5432/bridge\n  token_keys: ['{KEY}']\n"
    )
    assert "" not in secrets_of(settings)
