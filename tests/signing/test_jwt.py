"""The jwt partner scheme: HS256, RS256 and ES256, JWKS, claims, clocks and the body hash."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from bridge.errors import VerificationError
from bridge.signing import JwtVerifier, sign_jwt
from tests.signing.strategies import (
    NOW,
    any_text,
    hostile_bodies,
    hostile_headers,
    json_values,
    verifies_or_refuses,
)

HS_OLD, HS_CURRENT, HS_NEXT = "o" * 32, "c" * 32, "n" * 32
MAX_AGE_S, LEEWAY_S = 300, 30


def _private_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_OTHER = ec.generate_private_key(ec.SECP256R1())
PRIVATE = {
    "HS256": HS_CURRENT.encode(),
    "RS256": _private_pem(RSA_KEY),
    "ES256": _private_pem(EC_KEY),
}


def verifier(**overrides: Any) -> JwtVerifier:
    options: dict[str, Any] = {
        "algorithms": ["HS256", "RS256", "ES256"],
        "keys": [HS_CURRENT, HS_NEXT, _public_pem(RSA_KEY), _public_pem(EC_KEY)],
        "issuer": "initech",
        "audience": "our-app",
        "max_age_s": MAX_AGE_S,
        "body_hash_claim": "body_sha256",
        "leeway_s": LEEWAY_S,
    }
    return JwtVerifier(**{**options, **overrides})


VERIFIER = verifier()


def token(
    body: bytes,
    key: str | bytes = HS_CURRENT,
    algorithm: str = "HS256",
    *,
    at: float = NOW,
    **overrides: Any,
) -> str:
    options: dict[str, Any] = {
        "issuer": "initech",
        "audience": "our-app",
        "jti": "jti-1",
        "body_hash_claim": "body_sha256",
    }
    return sign_jwt(body, key, now=at, algorithm=algorithm, **{**options, **overrides})


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def code_of(body: bytes, headers: Mapping[str, str], check: JwtVerifier = VERIFIER) -> str:
    with pytest.raises(VerificationError) as caught:
        check.verify(body, headers, now=NOW)
    return caught.value.code


def hs_token(claims: object, key: str = HS_CURRENT) -> str:
    """Sign any JSON value as claims; ``jwt.encode`` would refuse some of them up front."""
    return jwt.api_jws.PyJWS().encode(json.dumps(claims).encode(), key, algorithm="HS256")


def b64url(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


algorithms = st.sampled_from(sorted(PRIVATE))


class TestProperties:
    @given(
        headers=hostile_headers(
            ("Authorization",),
            st.just("Bearer ") | st.just("bearer a.b.c"),
            st.builds(lambda h, c, s: f"Bearer {h}.{c}.{s}", any_text, any_text, any_text),
        ),
        body=hostile_bodies,
    )
    def test_anything_verifies_or_raises_verification_error(
        self, headers: Mapping[str, str], body: bytes
    ) -> None:
        """Whatever arrives, the outcome is a result or the one error type, never a crash."""
        verifies_or_refuses(lambda: VERIFIER.verify(body, headers, now=NOW))

    @given(
        header=st.dictionaries(st.text(), json_values, max_size=4),
        claims=json_values,
        signature=st.binary(max_size=80),
        alg=st.sampled_from(["HS256", "RS256", "ES256", "none", "HS512", ""]) | any_text,
    )
    def test_structured_garbage_tokens(
        self, header: dict[str, Any], claims: Any, signature: bytes, alg: str
    ) -> None:
        """Well-formed-looking tokens with any header, claims and signature fail cleanly."""
        value = ".".join([b64url({**header, "alg": alg}), b64url(claims), b64url(signature)])
        verifies_or_refuses(lambda: VERIFIER.verify(b"{}", bearer(value), now=NOW))

    @given(
        claims=st.dictionaries(
            st.sampled_from(["iat", "exp", "nbf", "iss", "aud", "jti", "sub", "body_sha256"]),
            json_values | st.integers() | st.floats() | st.just(int(NOW)),
            max_size=8,
        )
        | json_values
    )
    def test_validly_signed_tokens_with_any_claims(self, claims: object) -> None:
        """A correctly signed token with arbitrary claim values verifies or fails cleanly."""
        value = hs_token(claims)
        verifies_or_refuses(lambda: VERIFIER.verify(b"{}", bearer(value), now=NOW))

    @given(body=st.binary(), algorithm=algorithms)
    def test_sign_then_verify(self, body: bytes, algorithm: str) -> None:
        """Any body signed with a configured key verifies; jti is the message id."""
        result = VERIFIER.verify(body, bearer(token(body, PRIVATE[algorithm], algorithm)), now=NOW)
        assert result.message_id == "jti-1"
        assert result.claims is not None
        assert result.claims["iss"] == "initech"

    @given(body=st.binary())
    def test_rotation(self, body: bytes) -> None:
        """Both configured HS secrets verify; the rotated-out one is refused."""
        VERIFIER.verify(body, bearer(token(body, HS_NEXT)), now=NOW)
        VERIFIER.verify(body, bearer(token(body, HS_CURRENT)), now=NOW)
        assert code_of(body, bearer(token(body, HS_OLD))) == "invalid_signature"

    @given(
        offset=st.integers(min_value=MAX_AGE_S + LEEWAY_S + 1, max_value=10**9),
        sign=st.sampled_from([-1, 1]),
        algorithm=algorithms,
    )
    def test_iat_outside_tolerance_both_ways(self, offset: int, sign: int, algorithm: str) -> None:
        """A token issued too long ago, or in the future, is refused."""
        value = token(b"{}", PRIVATE[algorithm], algorithm, at=NOW + sign * offset, ttl_s=10**10)
        assert code_of(b"{}", bearer(value)) == "timestamp_out_of_tolerance"


class TestClaims:
    def test_future_iat_within_leeway_is_accepted(self) -> None:
        """Clock skew up to the leeway is tolerated."""
        VERIFIER.verify(b"{}", bearer(token(b"{}", at=NOW + LEEWAY_S)), now=NOW)
        assert (
            code_of(b"{}", bearer(token(b"{}", at=NOW + LEEWAY_S + 1)))
            == "timestamp_out_of_tolerance"
        )

    def test_expired(self) -> None:
        """exp in the past (beyond the leeway) is refused even when iat is fresh."""
        value = token(b"{}", at=NOW - 100, ttl_s=50)
        assert code_of(b"{}", bearer(value)) == "timestamp_out_of_tolerance"

    def test_not_before(self) -> None:
        """nbf in the future is refused."""
        value = token(b"{}", extra_claims={"nbf": NOW + 3600})
        assert code_of(b"{}", bearer(value)) == "timestamp_out_of_tolerance"

    def test_missing_iat(self) -> None:
        """Without iat the token's age is unknown: refused."""
        value = jwt.encode({"iss": "initech", "aud": "our-app"}, HS_CURRENT, algorithm="HS256")
        assert (
            code_of(b"{}", bearer(value), verifier(body_hash_claim=None))
            == "timestamp_out_of_tolerance"
        )

    @pytest.mark.parametrize("claim", ["iat", "exp", "nbf"])
    @pytest.mark.parametrize("bad", ["1800000000", True, float("inf"), float("nan"), [1], None])
    def test_non_numeric_times(self, claim: str, bad: object) -> None:
        """Time claims that are not finite numbers are refused, never crash the check."""
        claims = {"iss": "initech", "aud": "our-app", "iat": int(NOW), claim: bad}
        check = verifier(body_hash_claim=None)
        expected = (
            "timestamp_out_of_tolerance" if (claim, bad) == ("iat", None) else "invalid_signature"
        )
        if bad is None and claim != "iat":
            check.verify(b"{}", bearer(hs_token(claims)), now=NOW)  # null means absent
        else:
            assert code_of(b"{}", bearer(hs_token(claims)), check) == expected

    def test_times_beyond_float_range(self) -> None:
        """Integers too large for a float compare correctly instead of overflowing."""
        check = verifier(body_hash_claim=None)
        base = {"iss": "initech", "aud": "our-app", "iat": int(NOW)}
        check.verify(b"{}", bearer(hs_token({**base, "exp": 10**400})), now=NOW)
        for claim in ("iat", "nbf"):
            value = hs_token({**base, claim: 10**400})
            assert code_of(b"{}", bearer(value), check) == "timestamp_out_of_tolerance"
        value = hs_token({**base, "iat": -(10**400)})
        assert code_of(b"{}", bearer(value), check) == "timestamp_out_of_tolerance"

    @pytest.mark.parametrize(
        "overrides",
        [{"audience": "someone-else"}, {"issuer": "globex"}, {"issuer": None}, {"audience": None}],
    )
    def test_wrong_or_missing_issuer_and_audience(self, overrides: dict[str, Any]) -> None:
        """A token for another audience, from another issuer, or without them, is refused."""
        assert code_of(b"{}", bearer(token(b"{}", **overrides))) == "invalid_signature"

    def test_no_audience_configured_accepts_any(self) -> None:
        """With no audience configured, a token's aud is not checked."""
        check = verifier(audience=None)
        check.verify(b"{}", bearer(token(b"{}", audience="anyone")), now=NOW)

    @pytest.mark.parametrize("claimed", ["0" * 64, "José", 12, None])
    def test_body_hash_mismatch(self, claimed: object) -> None:
        """The body hash claim must be the hex SHA-256 of the exact bytes received."""
        value = token(b"{}", extra_claims={"body_sha256": claimed})
        assert code_of(b"{}", bearer(value)) == "invalid_signature"

    def test_body_hash_covers_the_body(self) -> None:
        """A token made for one body does not authenticate another."""
        assert code_of(b'{"a": 2}', bearer(token(b'{"a": 1}'))) == "invalid_signature"

    def test_long_or_non_ascii_jti_is_not_a_message_id(self) -> None:
        """Only a sane jti is used as a message id."""
        for jti in ("j" * 300, "jöti"):
            assert VERIFIER.verify(b"{}", bearer(token(b"{}", jti=jti)), now=NOW).message_id is None


class TestKeys:
    @pytest.mark.parametrize(
        ("algorithm", "key"),
        [("RS256", _private_pem(RSA_OTHER)), ("ES256", _private_pem(EC_OTHER))],
        ids=["RS256", "ES256"],  # the keys are made per process: ids must not show them (xdist)
    )
    def test_unknown_key_is_refused(self, algorithm: str, key: bytes) -> None:
        """A token signed by a key we do not hold is invalid."""
        assert code_of(b"{}", bearer(token(b"{}", key, algorithm))) == "invalid_signature"

    def test_algorithm_not_allowed(self) -> None:
        """A token whose alg is not configured is refused, whatever its signature."""
        check = verifier(algorithms=["RS256"], keys=[_public_pem(RSA_KEY)])
        assert code_of(b"{}", bearer(token(b"{}")), check) == "invalid_signature"

    def test_public_key_is_not_an_hmac_secret(self) -> None:
        """Algorithm confusion: an HS256 token keyed with our RSA public key is refused."""
        check = verifier(keys=[_public_pem(RSA_KEY)], algorithms=["HS256", "RS256"])
        signing_input = b64url({"alg": "HS256"}) + "." + b64url({"iat": int(NOW), "iss": "initech"})
        mac = hmac.new(_public_pem(RSA_KEY).encode(), signing_input.encode(), hashlib.sha256)
        forged = signing_input + "." + b64url(mac.digest())
        assert code_of(b"{}", bearer(forged), check) == "invalid_signature"

    def test_jwks(self) -> None:
        """Keys can come from a JWKS document, matched by kid."""
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key()))
        check = verifier(keys=[], jwks={"keys": [{**jwk, "kid": "k1"}, ec_jwk]})
        rs = token(b"{}", PRIVATE["RS256"], "RS256", kid="k1")
        check.verify(b"{}", bearer(rs), now=NOW)
        check.verify(b"{}", bearer(token(b"{}", PRIVATE["ES256"], "ES256", kid="any")), now=NOW)
        wrong_kid = token(b"{}", PRIVATE["RS256"], "RS256", kid="k2")
        assert code_of(b"{}", bearer(wrong_kid), check) == "invalid_signature"

    def test_non_ascii_token(self) -> None:
        """A bearer value with non-ASCII characters is not a JWT."""
        assert code_of(b"{}", bearer(token(b"{}") + "é")) == "invalid_signature"

    @pytest.mark.parametrize("value", ["", "Basic abc", "Bearer", "Bearer   ", "Token abc"])
    def test_missing_bearer(self, value: str) -> None:
        """No bearer token at all is missing_signature."""
        assert code_of(b"{}", {"Authorization": value}) == "missing_signature"
        assert code_of(b"{}", {}) == "missing_signature"

    @pytest.mark.parametrize(
        "overrides",
        [
            {"algorithms": []},
            {"algorithms": "HS256"},
            {"algorithms": ["none"]},
            {"keys": []},
            {"keys": [""]},
            {"keys": ["secret"], "algorithms": ["RS256"]},
            {"keys": [_public_pem(RSA_KEY)], "algorithms": ["HS256"]},
            {"keys": ["-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"]},
            {"keys": [_private_pem(RSA_KEY).decode()]},
            {
                "keys": [
                    ed25519.Ed25519PrivateKey.generate()
                    .public_key()
                    .public_bytes(
                        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                    )
                ]
            },
            {"keys": [], "jwks": {"keys": []}},
            {"keys": [], "jwks": {"keys": "nope"}},
        ],
    )
    def test_unusable_configuration(self, overrides: dict[str, Any]) -> None:
        """Keys and algorithms that cannot work are refused when building the verifier."""
        with pytest.raises(ValueError, match="jwt"):
            verifier(**overrides)


class TestRequireJti:
    @pytest.mark.parametrize("jti", [None, "", "j" * 300, "jöti", 7])
    def test_a_token_without_a_usable_jti_is_refused(self, jti: object) -> None:
        """Then a captured token cannot come back with another body: its jti is a duplicate."""
        check = verifier(body_hash_claim=None, require_jti=True)
        claims = {} if jti is None else {"jti": jti}
        value = token(b"{}", jti=None, body_hash_claim=None, extra_claims=claims)
        assert code_of(b"{}", bearer(value), check) == "invalid_signature"

    def test_a_token_with_a_jti_is_accepted_and_carries_it(self) -> None:
        check = verifier(body_hash_claim=None, require_jti=True)
        value = token(b"{}", jti="j-42", body_hash_claim=None)
        assert check.verify(b'{"any": 1}', bearer(value), now=NOW).message_id == "j-42"
