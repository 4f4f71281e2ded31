"""No input makes intake answer 500 or raise: arbitrary paths, bodies, media types, headers."""

from __future__ import annotations

import json
import string
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.intake.conftest import Harness, share_token

pytestmark = pytest.mark.anyio

_HEADER_NAME = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=20)
_HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(
    str.strip
)
_SIGNATURE_HEADERS = st.sampled_from(
    [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "X-Signature",
        "X-Timestamp",
        "Authorization",
        "X-Api-Key",
        "content-type",
        "content-length",
        "transfer-encoding",
    ]
)
_JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_TOKENS = st.one_of(
    st.just(None),
    _JSON,
    st.builds(lambda: share_token()),
    st.builds(
        lambda exp, kind: share_token(exp=exp, session_kind=kind),
        st.one_of(st.none(), st.floats(min_value=-1e12, max_value=1e12)),
        st.one_of(st.none(), st.sampled_from(["user", "business", "robot"])),
    ),
    st.text(string.ascii_letters + string.digits + "-_.=", max_size=60),
)


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """Raw bytes, arbitrary JSON, or share-like objects with odd tokens and fields."""
    kind = draw(st.sampled_from(["bytes", "json", "share"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(_JSON)).encode()
    share: dict[str, Any] = {"share_token": draw(_TOKENS)}
    share.update(draw(st.dictionaries(st.sampled_from(["customer", "event_id", "x"]), _JSON)))
    return json.dumps(share).encode()


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str], bool]:
    partner = draw(
        st.sampled_from(["acme", "globex", "initech", "hooli"]) | st.text(min_size=1, max_size=12)
    )
    body = draw(payloads())
    headers = draw(st.dictionaries(_HEADER_NAME | _SIGNATURE_HEADERS, _HEADER_VALUE, max_size=5))
    sign = draw(st.booleans())
    return partner, body, headers, sign


def _clean(headers: dict[str, str]) -> dict[str, str]:
    # httpx computes framing itself; a random Content-Length could only make the client hang.
    return {k: v for k, v in headers.items() if k.lower() not in ("content-length", "host")}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests(), content_type=st.sampled_from(["application/json", "text/plain", None]))
async def test_no_input_is_a_500(
    harness: Harness,
    request: tuple[str, bytes, dict[str, str], bool],
    content_type: str | None,
) -> None:
    partner, body, extra, sign = request
    headers: dict[str, str] = {}
    if sign and partner in harness.settings.partners:
        headers.update(harness.sign(partner, body))
    if content_type is not None:
        headers["content-type"] = content_type
    headers.update(_clean(extra))
    path = f"/v1/partners/{quote(partner, safe='')}/shares"
    response = await harness.client.post(path, content=body, headers=headers)
    assert response.status_code < 500 or response.status_code == 503
    if response.status_code == 503:
        assert response.json()["error"]["code"] in ("store_unavailable", "shutting_down")
    if response.status_code in (200, 202):
        assert response.json()["status"] in ("accepted", "duplicate")
    elif response.headers.get("content-type") == "application/json":
        error = response.json()["error"]
        assert isinstance(error["code"], str)
        assert error["code"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=900), max_size=6),
    partner=st.sampled_from(["acme", "hooli"]),
)
async def test_streamed_bodies_of_any_size_are_never_a_500(
    harness: Harness, chunks: list[bytes], partner: str
) -> None:
    async def stream() -> Any:
        for chunk in chunks:
            yield chunk

    headers = harness.sign(partner, b"".join(chunks))
    response = await harness.client.post(
        f"/v1/partners/{partner}/shares", content=stream(), headers=headers
    )
    assert response.status_code < 500
    if sum(map(len, chunks)) > harness.settings.server.max_body_bytes:
        assert response.status_code == 413


async def test_the_app_raises_nothing_for_a_non_utf8_path(harness: Harness) -> None:
    response = await harness.client.post(
        httpx.URL("/v1/partners/%FF%FE/shares"), content=b"{}", headers={"content-type": "x"}
    )
    assert response.status_code == 404
