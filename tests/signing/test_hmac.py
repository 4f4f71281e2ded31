"""The hmac partner scheme: every algorithm and encoding, with and without a timestamp header."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.errors import VerificationError
from bridge.signing import HmacAlgorithm, HmacEncoding, HmacVerifier, sign_hmac
from tests.signing.strategies import (
    NOW,
    base64_text,
    hex_text,
    hostile_bodies,
    hostile_headers,
    near_now,
    verifies_or_refuses,
)

OLD, CURRENT, NEXT = "old-secret", "current-secret", b"next-secret-as-bytes"
TOLERANCE_S = 120
VARIANTS = [(alg, enc) for alg in get_args(HmacAlgorithm) for enc in get_args(HmacEncoding)]


def verifier(
    algorithm: HmacAlgorithm = "sha256", encoding: HmacEncoding = "hex", *, timestamped: bool = True
) -> HmacVerifier:
    return HmacVerifier(
        [CURRENT, NEXT],
        algorithm=algorithm,
        encoding=encoding,
        signature_header="X-Partner-Signature",
        timestamp_header="X-Partner-Timestamp" if timestamped else None,
        tolerance_s=TOLERANCE_S,
    )


def signed(
    secret: str | bytes,
    body: bytes,
    algorithm: HmacAlgorithm = "sha256",
    encoding: HmacEncoding = "hex",
    *,
    at: float | None = NOW,
) -> dict[str, str]:
    stamp = None if at is None else int(at)
    signature = sign_hmac(secret, body, algorithm=algorithm, encoding=encoding, timestamp=stamp)
    headers = {"X-Partner-Signature": signature}
    if stamp is not None:
        headers["X-Partner-Timestamp"] = str(stamp)
    return headers


def code_of(check: HmacVerifier, body: bytes, headers: Mapping[str, str]) -> str:
    with pytest.raises(VerificationError) as caught:
        check.verify(body, headers, now=NOW)
    return caught.value.code


variants = st.sampled_from(VARIANTS)
timestamped = st.booleans()


class TestProperties:
    @given(
        variant=variants,
        stamped=timestamped,
        headers=hostile_headers(
            ("X-Partner-Signature", "X-Partner-Timestamp"),
            near_now,
            hex_text,
            base64_text,
            hex_text.map(lambda sig: "sha256=" + sig),
        ),
        body=hostile_bodies,
    )
    def test_anything_verifies_or_raises_verification_error(
        self,
        variant: tuple[HmacAlgorithm, HmacEncoding],
        stamped: bool,
        headers: Mapping[str, str],
        body: bytes,
    ) -> None:
        """Whatever arrives, the outcome is a result or the one error type, never a crash."""
        verifies_or_refuses(
            lambda: verifier(*variant, timestamped=stamped).verify(body, headers, now=NOW)
        )

    @given(variant=variants, stamped=timestamped, body=st.binary())
    def test_sign_then_verify(
        self, variant: tuple[HmacAlgorithm, HmacEncoding], stamped: bool, body: bytes
    ) -> None:
        """Any body signed with a configured secret verifies (no message id in this scheme)."""
        headers = signed(CURRENT, body, *variant, at=NOW if stamped else None)
        assert (
            verifier(*variant, timestamped=stamped).verify(body, headers, now=NOW).message_id
            is None
        )

    @given(variant=variants, body=st.binary())
    def test_rotation(self, variant: tuple[HmacAlgorithm, HmacEncoding], body: bytes) -> None:
        """Both configured secrets verify; the rotated-out one is refused."""
        check = verifier(*variant)
        check.verify(body, signed(NEXT, body, *variant), now=NOW)
        check.verify(body, signed(CURRENT, body, *variant), now=NOW)
        assert code_of(check, body, signed(OLD, body, *variant)) == "invalid_signature"

    @given(
        offset=st.integers(min_value=TOLERANCE_S + 1, max_value=10**9),
        sign=st.sampled_from([-1, 1]),
    )
    def test_timestamp_outside_tolerance_both_ways(self, offset: int, sign: int) -> None:
        """With a timestamp header, a stale or future timestamp is refused."""
        headers = signed(CURRENT, b"{}", at=NOW + sign * offset)
        assert code_of(verifier(), b"{}", headers) == "timestamp_out_of_tolerance"

    @given(body=st.binary())
    def test_the_timestamp_is_signed(self, body: bytes) -> None:
        """Moving the timestamp (within tolerance) breaks the signature: it is covered."""
        headers = signed(CURRENT, body)
        headers["X-Partner-Timestamp"] = str(int(NOW) + 1)
        assert code_of(verifier(), body, headers) == "invalid_signature"

    @given(missing=st.sampled_from(["X-Partner-Signature", "X-Partner-Timestamp"]))
    def test_missing_header(self, missing: str) -> None:
        """A missing signature or timestamp header is missing_signature."""
        headers = signed(CURRENT, b"{}")
        del headers[missing]
        assert code_of(verifier(), b"{}", headers) == "missing_signature"


class TestFormats:
    @pytest.mark.parametrize(("algorithm", "encoding"), VARIANTS)
    def test_matches_an_independent_computation(
        self, algorithm: HmacAlgorithm, encoding: HmacEncoding
    ) -> None:
        """The header is the MAC of "{timestamp}.{body}", as a partner would compute it."""
        body = '{"name": "Zoë"}'.encode()
        digest = hmac.new(
            CURRENT.encode(), b"1800000000." + body, getattr(hashlib, algorithm)
        ).digest()
        text = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
        headers = {"x-partner-signature": text, "x-partner-timestamp": "1800000000"}
        verifier(algorithm, encoding).verify(body, headers, now=NOW)

    def test_github_style_prefix_and_upper_case_hex(self) -> None:
        """``sha256=<HEX>`` (any case) is accepted, as GitHub-style senders write it."""
        headers = signed(CURRENT, b"{}")
        headers["X-Partner-Signature"] = "SHA256=" + headers["X-Partner-Signature"].upper()
        verifier().verify(b"{}", headers, now=NOW)

    @pytest.mark.parametrize("value", ["zz", "abc", "é1", "ab cd", "sha512=00"])
    def test_malformed_hex(self, value: str) -> None:
        """Text that is not hex is refused before any comparison."""
        headers = {**signed(CURRENT, b"{}"), "X-Partner-Signature": value}
        assert code_of(verifier(), b"{}", headers) == "invalid_signature"

    def test_wrong_encoding_is_refused(self) -> None:
        """A base64 signature sent to a hex-configured partner does not verify."""
        headers = signed(CURRENT, b"{}", encoding="base64")
        assert code_of(verifier(encoding="hex"), b"{}", headers) == "invalid_signature"


class TestConstruction:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"secrets": []},
            {"secrets": "one-secret-not-a-list"},
            {"secrets": ["ok", ""]},
            {"secrets": ["ok"], "algorithm": "md5"},
            {"secrets": ["ok"], "encoding": "base32"},
        ],
    )
    def test_unusable_configuration(self, kwargs: dict[str, object]) -> None:
        """Configuration that cannot work is refused when building the verifier."""
        with pytest.raises(ValueError, match="hmac"):
            HmacVerifier(**kwargs)  # type: ignore[arg-type]
