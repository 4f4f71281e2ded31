"""Share tokens are read without verification, structure checked, claims advisory."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from typing import Any

import jwt
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.errors import TokenError
from bridge.tokens import MAX_TOKEN_CHARS, ShareToken, read_share_token
from bridge.types import SessionKind

OURS = "a5f3bca2-1111-4222-8333-444455556666"
PARTNER_APP = "dbd20e34-aaaa-4bbb-8ccc-ddddeeeeffff"
SESSION = "20bb3c3b-1234-4567-89ab-cdef01234567"


def mint(claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
    """A token signed with a random key, as only Didit could verify it."""
    return jwt.encode(claims, secrets.token_bytes(32), algorithm="HS256", headers=headers)


def segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def assemble(header: bytes, claims: bytes, signature: bytes = b"sig") -> str:
    return ".".join(segment(part) for part in (header, claims, signature))


def outcome_of(text: object) -> str:
    """``"read"``, or the code of the TokenError; any other exception propagates."""
    try:
        read_share_token(text)
    except TokenError as exc:
        return exc.code
    return "read"


def documented_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "session_id": SESSION,
        "session_kind": "user",
        "from_application_id": PARTNER_APP,
        "for_application_id": OURS,
        "iat": 1_753_630_666,
        "exp": 1_753_634_266,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


class TestReading:
    def test_reads_every_documented_claim(self) -> None:
        """The claims of reference section 2.3 come out typed."""
        token = read_share_token(mint(documented_claims(session_kind="business")))
        assert token.session_id == SESSION
        assert token.session_kind is SessionKind.BUSINESS
        assert token.session_kind_claim == "business"
        assert token.from_application_id == PARTNER_APP
        assert token.for_application_id == OURS
        assert (token.iat, token.exp) == (1_753_630_666, 1_753_634_266)

    @given(
        claims=st.dictionaries(
            st.text(max_size=12),
            st.recursive(
                st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=20),
                lambda children: (
                    st.lists(children, max_size=3)
                    | st.dictionaries(st.text(max_size=5), children, max_size=3)
                ),
                max_leaves=8,
            ),
            max_size=8,
        )
    )
    @example(claims={"iss": None, "iat": "yesterday"})  # shapes pyjwt would not mint
    def test_claims_round_trip(self, claims: dict[str, Any]) -> None:
        """Every claim is readable unchanged, whatever its shape. Assembled by hand: pyjwt refuses
        to mint some shapes a partner can still send (an ``iss`` that is not a string)."""
        header = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
        token = read_share_token(assemble(header, json.dumps(claims).encode()))
        assert dict(token.claims) == claims

    def test_old_token_without_session_kind_is_a_user_token(self) -> None:
        """Tokens minted before the unified sharing rollout carry no session_kind."""
        token = read_share_token(mint(documented_claims(session_kind=None)))
        assert token.session_kind is SessionKind.USER
        assert token.session_kind_claim is None

    @pytest.mark.parametrize(
        ("claim", "kind"),
        [
            ("user", SessionKind.USER),
            ("business", SessionKind.BUSINESS),
            ("Business", SessionKind.BUSINESS),
            ("entity", SessionKind.USER),
            (7, SessionKind.USER),
        ],
    )
    def test_session_kind_claim(self, claim: object, kind: SessionKind) -> None:
        """Unknown kinds default to user; the raw claim is kept for display."""
        token = read_share_token(mint(documented_claims(session_kind=claim)))
        assert token.session_kind is kind
        assert token.session_kind_claim == claim

    def test_empty_claims_are_not_an_error(self) -> None:
        """A missing claim is never by itself a reason to refuse."""
        token = read_share_token(mint({}))
        assert token.session_id is None
        assert token.from_application_id is None
        assert token.for_application_id is None
        assert token.iat is None
        assert token.exp is None

    @pytest.mark.parametrize(
        "bad",
        ["1753634266", True, [1], {"t": 1}, 2**64, ""],
    )
    def test_mistyped_claims_count_as_absent(self, bad: object) -> None:
        """exp as a string, session_id as a number...: absent, not a crash."""
        token = read_share_token(
            mint({"exp": bad, "iat": bad, "session_id": 5, "from_application_id": [bad]})
        )
        assert token.exp is None
        assert token.iat is None
        assert token.session_id is None
        assert token.from_application_id is None

    def test_fractional_times_round_down(self) -> None:
        """RFC 7519 NumericDates may carry fractions."""
        token = read_share_token(mint({"exp": 1_753_634_266.9}))
        assert token.exp == 1_753_634_266

    def test_sha256_is_of_the_token_text(self) -> None:
        text = mint(documented_claims())
        assert read_share_token(text).sha256 == hashlib.sha256(text.encode()).hexdigest()

    def test_padded_segments_are_tolerated(self) -> None:
        """Some issuers pad base64url; pyjwt accepts it and so do we."""
        header = base64.urlsafe_b64encode(b'{"alg":"HS256"}').decode()
        claims = base64.urlsafe_b64encode(b'{"session_id":"s1"}').decode()
        assert "=" in header + claims
        assert read_share_token(f"{header}.{claims}.c2ln").session_id == "s1"


class TestMalformed:
    @pytest.mark.parametrize(
        "text",
        [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "..",
            "eyJhbGciOiJIUzI1NiJ9.eyJ9.",  # no signature: alg none is not a share token
            " " + assemble(b"{}", b"{}"),
            assemble(b"{}", b"{}") + "\n",
            assemble(b"[]", b"{}"),
            assemble(b"{}", b"[]"),
            assemble(b"{}", b'"claims"'),
            assemble(b"{}", b"not json"),
            assemble(b"{}", b"\xff\xfe binary"),
            assemble(b"{}", b'{"exp": NaN}'),
            assemble(b"{}", b'{"exp": Infinity}'),
            assemble(b'{"kid": 5}', b"{}"),
            assemble(b'{"crit": ["nope"], "nope": 1}', b"{}"),
            assemble(b"{}", b"[" * 3000 + b"]" * 3000),
            "é.b.c",
            "\ud800.b.c",  # a lone surrogate cannot even be encoded
            "a!b.c.d",
            "x" * (MAX_TOKEN_CHARS + 1),
        ],
    )
    def test_refused(self, text: str) -> None:
        with pytest.raises(TokenError) as caught:
            read_share_token(text)
        assert caught.value.code == "malformed_share_token"

    @pytest.mark.parametrize("value", [None, 5, b"a.b.c", ["a.b.c"], {"token": "a.b.c"}])
    def test_non_strings_are_refused(self, value: object) -> None:
        with pytest.raises(TokenError):
            read_share_token(value)

    def test_too_long_even_when_well_formed(self) -> None:
        text = mint({"padding": "x" * MAX_TOKEN_CHARS})
        with pytest.raises(TokenError, match="longer than"):
            read_share_token(text)

    @given(st.text(max_size=300))
    def test_arbitrary_text_raises_only_token_error(self, text: str) -> None:
        """Whatever arrives in the payload, only TokenError can come out."""
        assert outcome_of(text) in ("read", "malformed_share_token")

    @given(
        st.lists(
            st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=."),
            min_size=1,
            max_size=5,
        )
    )
    def test_arbitrary_base64url_raises_only_token_error(self, parts: list[str]) -> None:
        """Strings made of the JWT alphabet reach the decoder, and still only TokenError."""
        assert outcome_of(".".join(parts)) in ("read", "malformed_share_token")

    @given(header=st.binary(max_size=60), claims=st.binary(max_size=120))
    def test_arbitrary_segments_raise_only_token_error(self, header: bytes, claims: bytes) -> None:
        """Well-encoded segments holding junk bytes are refused as TokenError."""
        assert outcome_of(assemble(header, claims)) in ("read", "malformed_share_token")

    @given(
        header=st.dictionaries(
            st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3
        ),
        claims=st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=4), children, max_size=3)
            ),
            max_leaves=10,
        ),
    )
    def test_arbitrary_json_raises_only_token_error(self, header: object, claims: object) -> None:
        """Any JSON in the segments either reads (an object) or raises TokenError."""
        claims_json = json.dumps(claims).encode()  # allows NaN/Infinity: they must be refused
        try:
            token = read_share_token(assemble(json.dumps(header).encode(), claims_json))
        except TokenError:
            return
        assert isinstance(claims, dict)
        assert isinstance(token, ShareToken)

    def test_messages_never_quote_the_token(self) -> None:
        """The token is a credential: no error message or chained cause carries it."""
        secret_claims = segment(b'{"session_id": "SECRET-SESSION", "exp": NaN}')
        text = f"{segment(b'{}')}.{secret_claims}.c2lnbmF0dXJl"
        with pytest.raises(TokenError) as caught:
            read_share_token(text)
        for rendered in (str(caught.value), repr(caught.value), caught.value.message):
            assert text not in rendered
            assert secret_claims not in rendered
            assert "SECRET-SESSION" not in rendered
        assert caught.value.__cause__ is None
        assert caught.value.__context__ is None


class TestFacts:
    def test_repr_holds_no_token(self) -> None:
        text = mint(documented_claims())
        token = read_share_token(text)
        assert text not in repr(token)
        assert all(text != getattr(token, name) for name in ShareToken.__slots__)

    def test_business_key_from_claims(self) -> None:
        token = read_share_token(mint(documented_claims()))
        assert token.business_key == f"{PARTNER_APP}:{SESSION}"

    @pytest.mark.parametrize("missing", ["session_id", "from_application_id"])
    def test_business_key_falls_back_to_the_hash(self, missing: str) -> None:
        """Without both claims, the token's SHA-256 identifies the share."""
        text = mint(documented_claims(**{missing: None}))
        token = read_share_token(text)
        assert token.business_key == "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    def test_business_key_is_stable_across_tokens_for_one_session(self) -> None:
        """Two tokens minted for the same session dedupe to one key."""
        first = read_share_token(mint(documented_claims(iat=1)))
        second = read_share_token(mint(documented_claims(iat=2)))
        assert first.sha256 != second.sha256
        assert first.business_key == second.business_key

    def test_deadline(self) -> None:
        token = read_share_token(mint({"exp": 1000}))
        assert token.deadline() == 970
        assert token.deadline(margin_s=5) == 995
        assert read_share_token(mint({})).deadline() is None

    @pytest.mark.parametrize(
        ("now", "expired"),
        [(999, False), (1000, False), (1029.9, False), (1030, True), (5000, True)],
    )
    def test_expiry_has_thirty_seconds_leeway(self, now: float, expired: bool) -> None:
        assert read_share_token(mint({"exp": 1000})).is_expired(now) is expired

    def test_expiry_leeway_is_adjustable(self) -> None:
        token = read_share_token(mint({"exp": 1000}))
        assert token.is_expired(1001, leeway_s=0)
        assert not token.is_expired(1100, leeway_s=120)

    def test_without_exp_never_expired(self) -> None:
        assert not read_share_token(mint({"iat": 1})).is_expired(10**12)

    @pytest.mark.parametrize(
        ("claim", "ours", "allowed"),
        [
            (OURS, OURS, True),
            (OURS.upper(), OURS, True),
            (OURS, OURS.upper(), True),
            (OURS.replace("-", ""), OURS, True),
            (OURS, uuid.UUID(OURS), True),
            (PARTNER_APP, OURS, False),
            ("not-a-uuid", OURS, False),
            ("Not-A-UUID", "not-a-uuid", True),
            (None, OURS, True),
        ],
    )
    def test_is_for(self, claim: str | None, ours: str | uuid.UUID, allowed: bool) -> None:
        """Absent means anyone; UUIDs compare in any spelling."""
        token = read_share_token(mint(documented_claims(for_application_id=claim)))
        assert token.is_for(ours) is allowed
