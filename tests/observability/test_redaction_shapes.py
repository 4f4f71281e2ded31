"""Share tokens in every shape intake accepts are redacted whole."""

from __future__ import annotations

import base64

import pytest

from bridge.observability import REDACTED_JWT, Redactor
from bridge.tokens import read_share_token


def padded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def bare(raw: bytes) -> str:
    return padded(raw).rstrip("=")


HEADER = b'{"alg": "HS256"}'  # 16 bytes: its base64url ends in ==
CLAIMS = b'{"session_id":"SECRET-SESSION-0001","exp":4102444800}'
SIGNATURE = b"signature-bytes-of-the-share-token"
SHAPES = {
    "padded header": ".".join([padded(HEADER), bare(CLAIMS), bare(SIGNATURE)]),
    "every segment padded": ".".join([padded(HEADER), padded(CLAIMS), padded(SIGNATURE)]),
    "header without eyJ": ".".join([bare(b" " + HEADER), bare(CLAIMS), bare(SIGNATURE)]),
    "padded header without eyJ": ".".join([padded(b"\n" + HEADER), bare(CLAIMS), bare(SIGNATURE)]),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_a_token_intake_accepts_is_redacted_whole(name: str) -> None:
    """Padding after the header, or a header that is not '{"'-first, leaves nothing behind."""
    token = SHAPES[name]
    assert read_share_token(token).session_id == "SECRET-SESSION-0001"  # intake takes it
    assert "=" in token or "eyJ" not in token.split(".")[0]
    for text in (token, f"share={token}&page=2", f"[{token}]", f"got {token}\n"):
        redacted = Redactor().redact_text(text)
        assert REDACTED_JWT in redacted
        for part in token.split("."):
            assert part.rstrip("=") not in redacted
