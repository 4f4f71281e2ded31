from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest

from bridge.observability import reset_logging


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    reset_logging()
    yield
    reset_logging()


@pytest.fixture(name="share_token")
def _share_token() -> str:
    """A share token shaped like Didit's: an HS256 JWT, so its header starts with eyJ."""
    claims = {
        "session_id": "5f1a7c2e-0000-4000-8000-00000000000a",
        "for_application_id": "3c5b9a2e-0000-4000-8000-000000000001",
        "exp": 4_102_444_800,
    }
    return jwt.encode(claims, "didit-signing-key-for-tests-0123456789", algorithm="HS256")
