"""The fast decode of share tokens agrees with pyjwt's unverified decode on any input."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import tokens
from bridge.errors import TokenError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


GOOD = (
    _b64(b'{"alg":"HS256","typ":"JWT"}')
    + "."
    + _b64(b'{"session_id":"s-1","exp":2000000000,"iat":1.5,"n":[1,{"x":null}]}')
    + "."
    + _b64(b"signature-bytes")
)
ODD_CLAIMS = [
    b'{"a":1e400}',
    b'{"a":NaN}',
    b'{"a":[{"b":-Infinity}]}',
    b'{"a":123456789012345678901234567890}',
    b"[1]",
    b'"text"',
    b"\xff\xfe{}",
]
ODD_HEADERS = [b'{"alg":"HS256","kid":1}', b'{"crit":["b64"],"b64":false}', b"[]"]


def _outcome(token: str, *, plain: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    with monkeypatch.context() as patch:
        if not plain:
            patch.setattr(tokens, "_decode_plain", lambda _token: None)
        try:
            read = tokens.read_share_token(token)
        except TokenError as exc:
            return ("refused", exc.code, exc.message)
    return ("read", dict(read.claims), dict(read.header), read.exp)


def _mutations() -> st.SearchStrategy[str]:
    alphabet = "ABCDEFabcdef0123456789-_=.xyzQ"
    seeds = [GOOD]
    seeds += [GOOD.split(".")[0] + "." + _b64(claims) + ".c2ln" for claims in ODD_CLAIMS]
    seeds += [_b64(header) + "." + GOOD.split(".")[1] + ".c2ln" for header in ODD_HEADERS]
    edits = st.lists(
        st.tuples(st.sampled_from("sid"), st.integers(0, 400), st.sampled_from(alphabet)),
        max_size=3,
    )

    def apply(seed: str, changes: list[tuple[str, int, str]]) -> str:
        text = list(seed)
        for kind, index, char in changes:
            at = index % (len(text) + 1)
            if kind == "s" and at < len(text):
                text[at] = char
            elif kind == "i":
                text.insert(at, char)
            elif text and at < len(text):
                del text[at]
        return "".join(text)

    return st.builds(apply, st.sampled_from(seeds), edits)


@settings(max_examples=400, deadline=None)
@given(token=_mutations())
def test_the_fast_path_decides_as_pyjwt_does(token: str) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast = _outcome(token, plain=True, monkeypatch=monkeypatch)
        reference = _outcome(token, plain=False, monkeypatch=monkeypatch)
    assert fast == reference


@pytest.mark.parametrize("padding", ["", "=", "==", "==="])
def test_padding_is_judged_alike(padding: str, monkeypatch: pytest.MonkeyPatch) -> None:
    header, claims, signature = GOOD.split(".")
    for token in (
        f"{header}{padding}.{claims}.{signature}",
        f"{header}.{claims}{padding}.{signature}",
        f"{header}.{claims}.{signature}{padding}",
    ):
        fast = _outcome(token, plain=True, monkeypatch=monkeypatch)
        assert fast == _outcome(token, plain=False, monkeypatch=monkeypatch)


def test_a_plain_token_takes_the_fast_path() -> None:
    assert tokens._decode_plain(GOOD) is not None


def test_a_header_seen_before_is_decoded_once_and_handed_out_as_a_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tokens, "_decoded_headers", {})
    first = tokens._decode_plain(GOOD)
    assert first is not None
    first[0]["alg"] = "changed by a caller"
    decoded: list[bytes] = []
    real = tokens._strict_json

    def counting(document: bytes) -> Any:
        decoded.append(document)
        return real(document)

    monkeypatch.setattr(tokens, "_strict_json", counting)
    second = tokens._decode_plain(GOOD)
    assert second is not None
    assert second[0] == {"alg": "HS256", "typ": "JWT"}  # the cache was not changed
    assert len(decoded) == 1  # the claims only: the header came from the cache


def test_the_header_cache_keeps_only_short_flat_headers_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tokens, "_decoded_headers", {})
    claims, signature = GOOD.split(".")[1:]
    nested = _b64(b'{"alg":"HS256","jwk":{"kty":"oct"}}')
    assert tokens._decode_plain(f"{nested}.{claims}.{signature}") is not None
    long = _b64(b'{"alg":"HS256","x":"' + b"y" * 600 + b'"}')
    assert tokens._decode_plain(f"{long}.{claims}.{signature}") is not None
    assert tokens._decoded_headers == {}
    for number in range(3 * tokens._HEADERS_KEPT):
        header = _b64(b'{"alg":"HS256","n":%d}' % number)
        assert tokens._decode_plain(f"{header}.{claims}.{signature}") is not None
        assert len(tokens._decoded_headers) <= tokens._HEADERS_KEPT
