"""Values no store, log or date can hold: lone surrogates refuse a token, far times are absent."""

from __future__ import annotations

import base64

import pytest

from bridge import tokens
from bridge.errors import TokenError
from bridge.tokens import read_share_token

HEADER = b'{"alg":"HS256","typ":"JWT"}'
YEAR_1 = -62_135_596_800  # 0001-01-01T00:00:00Z
AFTER_9999 = 253_402_300_800  # 10000-01-01T00:00:00Z


def segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def assemble(header: bytes, claims: bytes) -> str:
    return f"{segment(header)}.{segment(claims)}.{segment(b'signature')}"


@pytest.fixture(params=["plain", "pyjwt"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each case runs on the fast decode and on the pyjwt fallback."""
    if request.param == "pyjwt":
        monkeypatch.setattr(tokens, "_decode_plain", lambda _token: None)
    return str(request.param)


class TestLoneSurrogates:
    @pytest.mark.parametrize(
        "claims",
        [
            rb'{"session_id":"\ud800","from_application_id":"app-1","exp":2000000000}',
            rb'{"session_kind":"\udfff"}',
            rb'{"for_application_id":"x\uDBFFy"}',
            rb'{"nested":[{"deep":"\ud800"}]}',
            rb'{"\ud800":1}',
            rb'{"big":123456789012345678901234567890,"s":"\ud800"}',
            b'{"session_id":"\xed\xa0\x80"}',  # the UTF-8 bytes of U+D800 itself
        ],
    )
    def test_in_the_claims_the_token_is_malformed(self, path: str, claims: bytes) -> None:
        """Decoded text holding a lone surrogate cannot be stored: refused at intake, not later."""
        with pytest.raises(TokenError) as caught:
            read_share_token(assemble(HEADER, claims))
        assert caught.value.code == "malformed_share_token"
        assert "surrogate" in caught.value.message

    def test_in_the_header_the_token_is_malformed(self, path: str) -> None:
        header = rb'{"alg":"HS256","typ":"\ud800"}'
        with pytest.raises(TokenError) as caught:
            read_share_token(assemble(header, b'{"session_id":"s-1"}'))
        assert caught.value.code == "malformed_share_token"

    def test_only_a_lone_surrogate_is_refused(self, path: str) -> None:
        """An escaped pair is one character (an emoji), and integers beyond 64 bits or deep
        nesting (which orjson also refuses) are not text problems: those still read."""
        pair = read_share_token(assemble(HEADER, rb'{"session_id":"\ud83d\ude00"}'))
        assert pair.session_id == "\N{GRINNING FACE}"
        odd = b'"big":123456789012345678901234567890,"deep":' + b"[" * 300 + b"]" * 300
        assert read_share_token(assemble(HEADER, b"{" + odd + b"}")).claims["big"] > 2**64
        with pytest.raises(TokenError):
            read_share_token(assemble(HEADER, b"{" + odd + rb',"s":"\ud800"}'))

    def test_the_message_does_not_quote_the_token(self) -> None:
        text = assemble(HEADER, rb'{"session_id":"SECRET-SESSION\ud800"}')
        with pytest.raises(TokenError) as caught:
            read_share_token(text)
        assert text not in caught.value.message
        assert "SECRET-SESSION" not in caught.value.message


class TestTimesBeyondTheCalendar:
    @pytest.mark.parametrize("value", [2**62, AFTER_9999, YEAR_1 - 1, -(2**62), float(AFTER_9999)])
    def test_are_absent(self, path: str, value: float) -> None:
        """exp or iat no datetime can hold (after 9999, before year 1) count as absent."""
        claims = f'{{"exp": {value!r}, "iat": {value!r}}}'.encode()
        token = read_share_token(assemble(HEADER, claims))
        assert token.exp is None
        assert token.iat is None
        assert token.deadline() is None

    def test_the_calendar_edges_are_kept_and_a_negative_exp_has_passed(self, path: str) -> None:
        """The first and last second a datetime holds are kept, the next ones are not; an exp
        before 1970 is kept, and has passed."""
        for inside, outside in ((AFTER_9999 - 1, AFTER_9999), (YEAR_1, YEAR_1 - 1), (-1, None)):
            claims = f'{{"exp": {inside}, "iat": {outside or inside}}}'.encode()
            token = read_share_token(assemble(HEADER, claims))
            assert token.exp == inside
            assert token.iat == (None if outside else inside)
        assert read_share_token(assemble(HEADER, b'{"exp": -1}')).is_expired(1_800_000_000)
