"""``read_body``: the declared and the streamed size against the limit."""

from __future__ import annotations

import pytest
from starlette.types import Message

from bridge.app.inbound import Refusal, read_body

pytestmark = pytest.mark.anyio
LIMIT = 1_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def body_of(size: int) -> list[Message]:
    return [{"type": "http.request", "body": b"x" * size, "more_body": False}]


async def read(messages: list[Message], content_length: str | None) -> bytes:
    async def receive() -> Message:
        return messages.pop(0)

    headers = {} if content_length is None else {"content-length": content_length}
    return await read_body(receive, headers, LIMIT)


ARABIC_INDIC_100 = "\u0661\u0660\u0660"  # str.isdecimal() says yes; not an HTTP length


@pytest.mark.parametrize(
    "declared", ["100", "0000000000100", "0" * 5_000 + "100", "1e2", ARABIC_INDIC_100]
)
async def test_a_small_body_passes_however_its_length_is_written(declared: str) -> None:
    assert len(await read(body_of(100), declared)) == 100


@pytest.mark.parametrize("declared", ["1001", "00001001", "9" * 5_000])
async def test_a_declared_length_over_the_limit_is_refused_before_reading(declared: str) -> None:
    with pytest.raises(Refusal) as refused:
        await read([], declared)  # nothing is received: receive() would fail on the empty list
    assert (refused.value.status, refused.value.code) == (413, "body_too_large")


async def test_a_streamed_body_over_the_limit_is_refused_whatever_it_declared() -> None:
    chunks: list[Message] = [
        {"type": "http.request", "body": b"x" * 600, "more_body": True},
        {"type": "http.request", "body": b"x" * 600, "more_body": False},
    ]
    with pytest.raises(Refusal) as refused:
        await read(chunks, "10")
    assert refused.value.code == "body_too_large"
