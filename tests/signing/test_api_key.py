"""The api-key partner scheme."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.errors import VerificationError
from bridge.signing import ApiKeyVerifier
from tests.signing.strategies import NOW, hostile_bodies, hostile_headers, verifies_or_refuses

OLD, CURRENT, NEXT = "key-old", "key-current", "key-next"
VERIFIER = ApiKeyVerifier("X-Api-Key", [CURRENT, NEXT])


def code_of(headers: Mapping[str, str]) -> str:
    with pytest.raises(VerificationError) as caught:
        VERIFIER.verify(b"{}", headers, now=NOW)
    return caught.value.code


class TestApiKey:
    @given(
        headers=hostile_headers(("X-Api-Key",), st.sampled_from([OLD, CURRENT + " x"])),
        body=hostile_bodies,
    )
    def test_anything_verifies_or_raises_verification_error(
        self, headers: Mapping[str, str], body: bytes
    ) -> None:
        """Whatever arrives, the outcome is a result or the one error type, never a crash."""
        verifies_or_refuses(lambda: VERIFIER.verify(body, headers, now=NOW))

    @given(body=st.binary(), name=st.sampled_from(["X-Api-Key", "x-api-key", "X-API-KEY"]))
    def test_any_configured_key_in_any_header_case(self, body: bytes, name: str) -> None:
        """Either configured key verifies, whatever the body; there is no message id."""
        assert VERIFIER.verify(body, {name: CURRENT}, now=NOW).message_id is None
        assert VERIFIER.verify(body, {name: NEXT}, now=NOW).message_id is None

    @pytest.mark.parametrize("value", [OLD, CURRENT[:-1], CURRENT + "x", "ключ", "\ud800"])
    def test_rotated_out_or_wrong_key(self, value: str) -> None:
        """Anything but a configured key is invalid."""
        assert code_of({"X-Api-Key": value}) == "invalid_signature"

    @pytest.mark.parametrize("headers", [{}, {"X-Api-Key": ""}, {"Authorization": CURRENT}])
    def test_missing_key(self, headers: dict[str, str]) -> None:
        """No key header at all is missing_signature."""
        assert code_of(headers) == "missing_signature"

    @pytest.mark.parametrize(
        ("header", "keys"), [("", [CURRENT]), ("X-Api-Key", []), ("X-Api-Key", [""])]
    )
    def test_unusable_configuration(self, header: str, keys: list[str]) -> None:
        """A blank header name or an empty key list is refused when building the verifier."""
        with pytest.raises(ValueError, match="api-key"):
            ApiKeyVerifier(header, keys)
