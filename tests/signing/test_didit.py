"""Didit's webhook signatures (didit-api.md section 3.3), against an independent implementation."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.errors import VerificationError
from bridge.signing import DiditWebhookVerifier, canonical_json, sign_didit_webhook
from tests.signing.strategies import (
    NOW,
    hex_text,
    hostile_bodies,
    hostile_headers,
    json_objects,
    near_now,
    verifies_or_refuses,
)

OLD, CURRENT, NEXT = "didit-old-secret", "didit-current-secret", "didit-next-secret"
TOLERANCE_S = 300
VERIFIER = DiditWebhookVerifier([CURRENT, NEXT], TOLERANCE_S)
STAMP = str(int(NOW))
NAMES = ("X-Signature-V2", "X-Signature", "X-Signature-Simple", "X-Timestamp")


def _int_if_whole(text: str) -> float | int:
    number = float(text)
    return int(number) if number.is_integer() else number


def reference_v2(
    secret: str, raw: bytes, *, prefix: str | None = None, ensure_ascii: bool = False
) -> str:
    """Written from the reference alone: whole floats become ints while parsing, then dump."""
    value = json.loads(raw.decode("utf-8"), parse_float=_int_if_whole)
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=ensure_ascii)
    message = text if prefix is None else f"{prefix}:{text}"
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def reference_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def event(**fields: Any) -> dict[str, Any]:
    return {
        "session_id": "11111111-2222-4333-8444-555555555555",
        "status": "Approved",
        "webhook_type": "status.updated",
        "created_at": int(NOW),
        "timestamp": int(NOW),
        "vendor_data": "acme:Zoë",
        "decision": {"id_verification": {"first_name": "José", "last_name": "Zoë"}, "score": 97.0},
        **fields,
    }


# How Didit might put it on the wire: ASCII escapes, spaces, and floats written with ".0".
WIRE = json.dumps(event(amounts=[1.0, 2.5, -0.0, 1e16]), ensure_ascii=True, indent=1).encode()


def code_of(body: bytes, headers: Mapping[str, str], *, now: float = NOW) -> str:
    with pytest.raises(VerificationError) as caught:
        VERIFIER.verify(body, headers, now=now)
    return caught.value.code


class TestSignatureV2:
    def test_unicode_and_whole_floats(self) -> None:
        """The V2 signature of a body with "José", "Zoë" and 2.0-style floats verifies."""
        assert b"\\u00e9" in WIRE  # the wire form differs from the canonical one
        assert b"97.0" in WIRE
        headers = {"X-Timestamp": STAMP, "X-Signature-V2": reference_v2(CURRENT, WIRE)}
        result = VERIFIER.verify(WIRE, headers, now=NOW)
        assert (result.signature, result.envelope_only) == ("v2", False)
        assert result.payload["decision"]["id_verification"]["first_name"] == "José"

    @pytest.mark.parametrize(
        ("prefixed", "ensure_ascii"), [(False, True), (True, False), (True, True)]
    )
    def test_documented_variants(self, prefixed: bool, ensure_ascii: bool) -> None:
        """The "{X-Timestamp}:" prefix and ASCII escaping are accepted (CONFLICT 1 and 2)."""
        signature = reference_v2(
            NEXT, WIRE, prefix=STAMP if prefixed else None, ensure_ascii=ensure_ascii
        )
        headers = {"x-timestamp": STAMP, "x-signature-v2": signature}
        assert VERIFIER.verify(WIRE, headers, now=NOW).signature == "v2"

    def test_survives_re_encoding_that_breaks_the_raw_signature(self) -> None:
        """Middleware re-encoding the body breaks X-Signature; V2 still verifies."""
        original = json.dumps(event(), ensure_ascii=False).encode()
        headers = sign_didit_webhook(CURRENT, original, timestamp=int(NOW))
        re_encoded = json.dumps(json.loads(original)).encode()
        assert VERIFIER.verify(re_encoded, headers, now=NOW).signature == "v2"
        del headers["X-Signature-V2"]
        assert VERIFIER.verify(re_encoded, headers, now=NOW).envelope_only  # raw failed
        del headers["X-Signature-Simple"]
        assert code_of(re_encoded, headers) == "invalid_signature"

    @given(payload=json_objects, ensure_ascii=st.booleans(), indent=st.none() | st.integers(0, 2))
    def test_any_object_signed_independently_verifies(
        self, payload: dict[str, Any], ensure_ascii: bool, indent: int | None
    ) -> None:
        """Whatever the JSON and however it is formatted, the independent V2 signature verifies."""
        raw = json.dumps(
            {**payload, "timestamp": int(NOW)}, ensure_ascii=ensure_ascii, indent=indent
        )
        body = raw.encode()
        headers = {"X-Timestamp": STAMP, "X-Signature-V2": reference_v2(CURRENT, body)}
        assert VERIFIER.verify(body, headers, now=NOW).signature == "v2"

    def test_canonical_json(self) -> None:
        """Sorted keys, compact separators, whole floats as ints, Unicode kept."""
        value = {"b": [2.0, 0.5], "a": {"z": "Zoë", "y": True, "x": None}}
        assert canonical_json(value) == '{"a":{"x":null,"y":true,"z":"Zoë"},"b":[2,0.5]}'.encode()
        assert (
            canonical_json(value, ensure_ascii=True)
            == b'{"a":{"x":null,"y":true,"z":"Zo\\u00eb"},"b":[2,0.5]}'
        )


class TestFallbacks:
    def test_raw_signature(self) -> None:
        """X-Signature over the exact bytes is the second choice."""
        headers = {
            "X-Timestamp": STAMP,
            "X-Signature-V2": "0" * 64,
            "X-Signature": reference_hex(CURRENT, WIRE),
        }
        assert VERIFIER.verify(WIRE, headers, now=NOW).signature == "raw"

    def test_simple_signature_is_envelope_only(self) -> None:
        """X-Signature-Simple verifies the envelope only, and the result says so."""
        simple = f"{int(NOW)}:11111111-2222-4333-8444-555555555555:Approved:status.updated"
        headers = {"X-Timestamp": STAMP, "X-Signature-Simple": reference_hex(NEXT, simple.encode())}
        result = VERIFIER.verify(WIRE, headers, now=NOW)
        assert (result.signature, result.envelope_only) == ("simple", True)

    def test_simple_renders_whole_floats_as_ints(self) -> None:
        """A timestamp written 1800000000.0 is "1800000000" in the Simple message, as in JS."""
        body = json.dumps(event(timestamp=NOW)).encode()
        simple = f"{int(NOW)}:11111111-2222-4333-8444-555555555555:Approved:status.updated"
        headers = {"X-Signature-Simple": reference_hex(CURRENT, simple.encode())}
        assert b"1800000000.0" in body
        assert VERIFIER.verify(body, headers, now=NOW).envelope_only

    def test_simple_renders_missing_fields_empty(self) -> None:
        """A field absent from the body is an empty string in the Simple message."""
        body = json.dumps({"timestamp": int(NOW), "session_id": "s1"}).encode()
        headers = {"X-Signature-Simple": reference_hex(CURRENT, f"{int(NOW)}:s1::".encode())}
        assert VERIFIER.verify(body, headers, now=NOW).envelope_only

    @given(
        body=json_objects.map(
            lambda payload: json.dumps({**payload, "timestamp": int(NOW)}).encode()
        )
    )
    def test_sign_then_verify(self, body: bytes) -> None:
        """Our Didit signer's headers verify for any object, by the strongest signature."""
        headers = sign_didit_webhook(NEXT, body, timestamp=int(NOW))
        assert VERIFIER.verify(body, headers, now=NOW).signature == "v2"

    @given(
        body=json_objects.map(
            lambda payload: json.dumps({**payload, "timestamp": int(NOW)}).encode()
        )
    )
    def test_rotation(self, body: bytes) -> None:
        """Both configured secrets verify; the rotated-out one is refused by every signature."""
        for secret in (CURRENT, NEXT):
            VERIFIER.verify(body, sign_didit_webhook(secret, body, timestamp=int(NOW)), now=NOW)
        assert (
            code_of(body, sign_didit_webhook(OLD, body, timestamp=int(NOW))) == "invalid_signature"
        )

    def test_event_id_is_the_message_id(self) -> None:
        """A body event_id is exposed for dedupe."""
        body = json.dumps(event(event_id="evt_1")).encode()
        assert (
            VERIFIER.verify(
                body, sign_didit_webhook(CURRENT, body, timestamp=int(NOW)), now=NOW
            ).message_id
            == "evt_1"
        )

    def test_signer_needs_an_object(self) -> None:
        """The test signer refuses a body Didit would never send."""
        with pytest.raises(ValueError, match="object"):
            sign_didit_webhook(CURRENT, b"[]", timestamp=int(NOW))


class TestFreshness:
    @given(
        offset=st.integers(min_value=TOLERANCE_S + 1, max_value=10**9),
        sign=st.sampled_from([-1, 1]),
    )
    def test_x_timestamp_outside_tolerance_both_ways(self, offset: int, sign: int) -> None:
        """A validly signed webhook with a stale or future X-Timestamp is refused."""
        headers = sign_didit_webhook(CURRENT, WIRE, timestamp=int(NOW + sign * offset))
        assert code_of(WIRE, headers) == "timestamp_out_of_tolerance"

    @pytest.mark.parametrize(
        ("fields", "fresh"),
        [
            ({"timestamp": int(NOW) - 10}, True),
            ({"timestamp": int(NOW) - 1000}, False),
            ({"timestamp": None, "created_at": int(NOW) + 10}, True),
            ({"timestamp": True, "created_at": int(NOW) - 1000}, False),
            ({"timestamp": "2027-01-15T08:00:00Z"}, True),  # NOW in ISO form (the KYB envelope)
            ({"timestamp": "2027-01-15T08:00:00"}, True),
            ({"timestamp": str(int(NOW))}, True),
            ({"timestamp": 10**400}, False),
            ({"timestamp": "soon", "created_at": float(NOW)}, True),
        ],
    )
    def test_body_timestamp_when_no_header(self, fields: dict[str, Any], fresh: bool) -> None:
        """Without X-Timestamp, the body's timestamp, then created_at, is checked."""
        body = json.dumps(event(**fields)).encode()
        headers = sign_didit_webhook(CURRENT, body, timestamp=0)
        del headers["X-Timestamp"]
        if fresh:
            VERIFIER.verify(body, headers, now=NOW)
        else:
            assert code_of(body, headers) == "timestamp_out_of_tolerance"

    def test_no_timestamp_anywhere(self) -> None:
        """With no timestamp at all, freshness cannot be shown: missing_signature."""
        body = json.dumps({"session_id": "s1", "timestamp": "soon"}).encode()
        headers = {"X-Signature": reference_hex(CURRENT, body)}
        assert code_of(body, headers) == "missing_signature"

    @pytest.mark.parametrize(
        "kept",
        [NAMES[:3], ("X-Signature-V2",), ("X-Signature",), ("X-Signature-Simple",)],
        ids=["all", "v2", "raw", "simple"],
    )
    def test_a_replay_with_a_fresh_x_timestamp_is_stale(self, kept: tuple[str, ...]) -> None:
        """X-Timestamp is not signed: a day-old capture sent with a new one is still a day old."""
        signed = sign_didit_webhook(CURRENT, WIRE, timestamp=int(NOW))
        later = NOW + 86_400
        replay = {name: signed[name] for name in kept} | {"X-Timestamp": str(int(later))}
        assert code_of(WIRE, replay, now=later) == "timestamp_out_of_tolerance"
        fresh = VERIFIER.verify(WIRE, {**replay, "X-Timestamp": STAMP}, now=NOW)
        assert fresh.payload["status"] == "Approved"  # the same headers verified when fresh

    def test_a_body_without_a_signed_time_is_not_fresh_by_x_timestamp(self) -> None:
        """A body-only signature over a body with no timestamp cannot show freshness."""
        body = json.dumps({"session_id": "s1", "status": "Approved"}).encode()
        headers = sign_didit_webhook(CURRENT, body, timestamp=int(NOW))
        for name in ("X-Signature-V2", "X-Signature"):
            assert code_of(body, {name: headers[name], "X-Timestamp": STAMP}) == "missing_signature"

    def test_simple_is_fresh_by_its_own_timestamp_only(self) -> None:
        """Simple signs the body's timestamp, not created_at: an added created_at proves nothing."""
        body = json.dumps({"session_id": "s1", "created_at": int(NOW)}).encode()
        headers = {"X-Signature-Simple": reference_hex(CURRENT, b":s1::")}
        assert code_of(body, headers) == "missing_signature"
        assert code_of(body, {**headers, "X-Timestamp": STAMP}) == "missing_signature"
        stale = json.dumps({"timestamp": int(NOW) - 1000, "created_at": int(NOW)}).encode()
        simple = reference_hex(CURRENT, f"{int(NOW) - 1000}:::".encode())
        assert code_of(stale, {"X-Signature-Simple": simple}) == "timestamp_out_of_tolerance"

    def test_the_prefixed_v2_variant_signs_x_timestamp(self) -> None:
        """V2 over "{X-Timestamp}:{canonical}" covers X-Timestamp: a Didit retry re-signed with
        a fresh one verifies though the body's own timestamp is old."""
        body = json.dumps(event(timestamp=int(NOW) - 3_600, created_at=int(NOW) - 3_600)).encode()
        headers = {
            "X-Timestamp": STAMP,
            "X-Signature-V2": reference_v2(CURRENT, body, prefix=STAMP),
        }
        verified = VERIFIER.verify(body, headers, now=NOW)
        assert verified.signature == "v2"
        assert verified.signed_at == NOW - 3_600  # when it happened, not when it was re-sent
        assert code_of(body, {**headers, "X-Signature-V2": reference_v2(CURRENT, body)}) == (
            "timestamp_out_of_tolerance"
        )

    @pytest.mark.parametrize("kept", ["X-Signature-V2", "X-Signature", "X-Signature-Simple"])
    def test_signed_at_is_the_signed_time_of_the_event(self, kept: str) -> None:
        """The body's timestamp, whichever signature matched; X-Timestamp only when the
        body has no time and the prefixed V2 variant signs it."""
        body = json.dumps(event(timestamp=int(NOW) - 40, created_at=int(NOW) - 50)).encode()
        headers = sign_didit_webhook(CURRENT, body, timestamp=int(NOW))
        verified = VERIFIER.verify(body, {kept: headers[kept], "X-Timestamp": STAMP}, now=NOW)
        assert verified.signed_at == NOW - 40
        timeless = json.dumps({"session_id": "s1", "status": "Approved"}).encode()
        prefixed = {
            "X-Timestamp": STAMP,
            "X-Signature-V2": reference_v2(CURRENT, timeless, prefix=STAMP),
        }
        assert VERIFIER.verify(timeless, prefixed, now=NOW).signed_at == int(NOW)

    def test_malformed_x_timestamp(self) -> None:
        """An X-Timestamp that is not Unix seconds is invalid."""
        headers = {**sign_didit_webhook(CURRENT, WIRE, timestamp=int(NOW)), "X-Timestamp": "now"}
        assert code_of(WIRE, headers) == "invalid_signature"


class TestHostileInput:
    @given(
        headers=hostile_headers(NAMES, near_now, hex_text, st.just(reference_hex(CURRENT, WIRE))),
        body=hostile_bodies,
    )
    def test_anything_verifies_or_raises_verification_error(
        self, headers: Mapping[str, str], body: bytes
    ) -> None:
        """Whatever arrives, the outcome is a result or the one error type, never a crash."""
        verifies_or_refuses(lambda: VERIFIER.verify(body, headers, now=NOW))

    @given(body=hostile_bodies)
    def test_signed_garbage_bodies(self, body: bytes) -> None:
        """Even a correct raw signature over an unparseable body fails cleanly."""
        headers = {"X-Timestamp": STAMP, "X-Signature": reference_hex(CURRENT, body)}
        verifies_or_refuses(lambda: VERIFIER.verify(body, headers, now=NOW))

    @pytest.mark.parametrize(
        "body",
        [
            b'{"a": NaN}',
            b'{"a": Infinity}',
            b'{"a": 1e400}',
            b"[]",
            b"not json",
            b"\xff\xfe",
            b"[" * 5000,
        ],
    )
    def test_bodies_that_are_not_json_objects(self, body: bytes) -> None:
        """NaN, infinities, non-objects and invalid JSON are refused even with a raw signature."""
        headers = {"X-Timestamp": STAMP, "X-Signature": reference_hex(CURRENT, body)}
        assert code_of(body, headers) == "invalid_signature"

    @pytest.mark.parametrize("blank", [{}, {"X-Signature": " "}, {"X-Timestamp": STAMP}])
    def test_no_signature_header(self, blank: dict[str, str]) -> None:
        """No signature header at all is missing_signature."""
        assert code_of(WIRE, blank) == "missing_signature"

    def test_unusable_configuration(self) -> None:
        """An empty secret list is refused when building the verifier."""
        with pytest.raises(ValueError, match="didit"):
            DiditWebhookVerifier([], TOLERANCE_S)
