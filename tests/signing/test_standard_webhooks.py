"""The standard-webhooks partner scheme and the outbound signer, with an independent library."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.datastructures import Headers

from bridge.errors import VerificationError
from bridge.signing import StandardWebhooksSigner, StandardWebhooksVerifier, decode_whsec
from tests.signing.strategies import (
    NOW,
    base64_text,
    hostile_bodies,
    hostile_headers,
    near_now,
    verifies_or_refuses,
)

OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
CURRENT = "whsec_" + base64.b64encode(b"c" * 32).decode()
NEXT = "whsec_" + base64.b64encode(b"n" * 24).decode()
TOLERANCE_S = 300
VERIFIER = StandardWebhooksVerifier([CURRENT, NEXT], TOLERANCE_S)
NAMES = ("webhook-id", "webhook-timestamp", "webhook-signature")


def signed(secret: str, body: bytes, *, at: float = NOW, msg_id: str = "msg_1") -> dict[str, str]:
    return StandardWebhooksSigner([secret]).headers(msg_id, int(at), body)


def code_of(body: bytes, headers: Mapping[str, str], *, now: float = NOW) -> str:
    with pytest.raises(VerificationError) as caught:
        VERIFIER.verify(body, headers, now=now)
    return caught.value.code


class TestProperties:
    @given(
        headers=hostile_headers(NAMES, near_now, base64_text.map(lambda sig: "v1," + sig)),
        body=hostile_bodies,
    )
    def test_anything_verifies_or_raises_verification_error(
        self, headers: Mapping[str, str], body: bytes
    ) -> None:
        """Whatever arrives, the outcome is a result or the one error type, never a crash."""
        verifies_or_refuses(lambda: VERIFIER.verify(body, headers, now=NOW))

    @given(body=st.binary(), msg_id=st.from_regex(r"msg_[A-Za-z0-9]{1,40}", fullmatch=True))
    def test_sign_then_verify(self, body: bytes, msg_id: str) -> None:
        """Any body signed with a configured secret verifies, and the message id comes back."""
        result = VERIFIER.verify(body, signed(CURRENT, body, msg_id=msg_id), now=NOW)
        assert result.message_id == msg_id

    @given(body=st.binary())
    def test_rotation(self, body: bytes) -> None:
        """Both configured secrets verify; the rotated-out one is refused."""
        assert VERIFIER.verify(body, signed(NEXT, body), now=NOW).message_id == "msg_1"
        assert VERIFIER.verify(body, signed(CURRENT, body), now=NOW).message_id == "msg_1"
        assert code_of(body, signed(OLD, body)) == "invalid_signature"

    @given(
        offset=st.integers(min_value=TOLERANCE_S + 1, max_value=10**9),
        sign=st.sampled_from([-1, 1]),
    )
    def test_timestamp_outside_tolerance_both_ways(self, offset: int, sign: int) -> None:
        """A message signed too long ago, or too far ahead, is refused even though it is valid."""
        headers = signed(CURRENT, b"{}", at=NOW + sign * offset)
        assert code_of(b"{}", headers) == "timestamp_out_of_tolerance"

    @given(offset=st.integers(min_value=-TOLERANCE_S, max_value=TOLERANCE_S))
    def test_timestamp_inside_tolerance(self, offset: int) -> None:
        """Clock skew within the tolerance, either way, is accepted."""
        result = VERIFIER.verify(b"{}", signed(CURRENT, b"{}", at=NOW + offset), now=NOW)
        assert result.message_id == "msg_1"

    @given(body=st.binary(min_size=1), flip=st.integers(min_value=0))
    def test_tampered_body_fails(self, body: bytes, flip: int) -> None:
        """Changing one byte of the body breaks the signature."""
        headers = signed(CURRENT, body)
        index = flip % len(body)
        tampered = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
        assert code_of(tampered, headers) == "invalid_signature"

    @given(missing=st.sampled_from(NAMES), blank=st.sampled_from([None, "", "   "]))
    def test_missing_header(self, missing: str, blank: str | None) -> None:
        """A missing or blank header is missing_signature."""
        headers = signed(CURRENT, b"{}")
        if blank is None:
            del headers[missing]
        else:
            headers[missing] = blank
        assert code_of(b"{}", headers) == "missing_signature"


class TestHeaders:
    def test_header_names_in_any_case(self) -> None:
        """A plain dict with odd capitalisation and starlette's Headers both work."""
        headers = signed(CURRENT, b"{}")
        shouting = {name.upper(): value for name, value in headers.items()}
        assert VERIFIER.verify(b"{}", shouting, now=NOW).message_id == "msg_1"
        raw = [(name.title().encode(), value.encode()) for name, value in headers.items()]
        assert VERIFIER.verify(b"{}", Headers(raw=raw), now=NOW).message_id == "msg_1"

    def test_one_matching_signature_among_several(self) -> None:
        """Unknown versions and foreign signatures in the list are skipped."""
        headers = signed(CURRENT, b"{}")
        foreign = signed(OLD, b"{}")["webhook-signature"]
        headers["webhook-signature"] = (
            f"v1a,xyz {foreign} garbage v1,not-base64! v1,Zé {headers['webhook-signature']}"
        )
        assert VERIFIER.verify(b"{}", headers, now=NOW).message_id == "msg_1"

    def test_only_the_first_few_entries_are_tried(self) -> None:
        """A sender holds a few secrets, not thousands: the matching entry counts among the
        first eight, and a header of a million foreign entries costs no more than eight."""
        headers = signed(CURRENT, b"{}")
        genuine = headers["webhook-signature"]
        foreign = signed(OLD, b"{}")["webhook-signature"]
        headers["webhook-signature"] = " ".join([foreign] * 7 + [genuine])
        assert VERIFIER.verify(b"{}", headers, now=NOW).message_id == "msg_1"
        headers["webhook-signature"] = " ".join([foreign] * 8 + [genuine])
        assert code_of(b"{}", headers) == "invalid_signature"
        headers["webhook-signature"] = " ".join([foreign] * 1_000_000 + [genuine])
        started = time.perf_counter()
        assert code_of(b"{}", headers) == "invalid_signature"
        assert time.perf_counter() - started < 0.1

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("webhook-timestamp", "1.8e9"),
            ("webhook-timestamp", "-1800000000"),
            ("webhook-timestamp", "١٨٠٠٠٠٠٠٠٠"),  # Arabic-Indic digits: int() would accept them
            ("webhook-timestamp", "9" * 5000),
            ("webhook-id", "msg with\nnewline"),
            ("webhook-id", "m" * 300),
            ("webhook-id", "José"),
        ],
    )
    def test_malformed_headers_are_invalid(self, name: str, value: str) -> None:
        """Malformed ids and timestamps are refused as invalid_signature."""
        headers = signed(CURRENT, b"{}")
        headers[name] = value
        assert code_of(b"{}", headers) == "invalid_signature"

    def test_non_text_header_value(self) -> None:
        """A caller passing bytes for a header gets the one error type."""
        headers: dict[str, object] = {**signed(CURRENT, b"{}"), "webhook-id": b"msg_1"}
        assert code_of(b"{}", headers) == "invalid_signature"  # type: ignore[arg-type]


class TestSecrets:
    @pytest.mark.parametrize(
        "secrets",
        [[], ["c2VjcmV0"], ["whsec_"], ["whsec_not base64!"], ["whsec_a"], [CURRENT, "nope"]],
    )
    def test_bad_secrets_fail_at_construction(self, secrets: list[str]) -> None:
        """A secret that cannot work is a ValueError when building, not a 401 per request."""
        with pytest.raises(ValueError, match="secret"):
            StandardWebhooksVerifier(secrets, TOLERANCE_S)
        with pytest.raises(ValueError, match="secret"):
            StandardWebhooksSigner(secrets)

    def test_a_bare_string_is_not_a_list_of_secrets(self) -> None:
        """Passing one secret instead of a list is caught (a str is a sequence of characters)."""
        with pytest.raises(ValueError, match="list"):
            StandardWebhooksVerifier(CURRENT, TOLERANCE_S)

    def test_unpadded_secret_decodes(self) -> None:
        """Secrets are often written without base64 padding."""
        assert (
            decode_whsec("whsec_" + base64.b64encode(b"n" * 25).decode().rstrip("=")) == b"n" * 25
        )

    def test_signer_refuses_an_unsendable_id(self) -> None:
        """A webhook-id that cannot travel in a header is a programming error."""
        with pytest.raises(ValueError, match="webhook-id"):
            StandardWebhooksSigner([CURRENT]).sign("bad\nid", int(NOW), b"{}")


class TestInterop:
    """The PyPI ``standardwebhooks`` package reads the wall clock, so these tests do too."""

    @given(body=st.text().map(str.encode))
    def test_our_signatures_verify_with_the_library(self, body: bytes) -> None:
        """Every signature we send (one per secret) verifies with each secret in the library."""
        now = int(time.time())
        headers = StandardWebhooksSigner([CURRENT, NEXT]).headers("msg_interop", now, body)
        assert len(headers["webhook-signature"].split()) == 2
        for secret in (CURRENT, NEXT):
            Webhook(secret).verify(body, headers, json_parse=False)
        with pytest.raises(WebhookVerificationError):
            Webhook(OLD).verify(body, headers, json_parse=False)

    @given(body=st.text().map(str.encode))
    def test_library_signatures_verify_with_us(self, body: bytes) -> None:
        """Signatures from the library verify with either configured secret, not a retired one."""
        now = int(time.time())
        for secret in (CURRENT, NEXT, OLD):
            library = Webhook(secret)
            signature = library.sign("msg_lib", datetime.fromtimestamp(now, tz=UTC), body.decode())
            headers = {
                "webhook-id": "msg_lib",
                "webhook-timestamp": str(now),
                "webhook-signature": signature,
            }
            if secret == OLD:
                assert code_of(body, headers, now=now) == "invalid_signature"
            else:
                assert VERIFIER.verify(body, headers, now=now).message_id == "msg_lib"
