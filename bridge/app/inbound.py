"""What every inbound POST shares: ``Refusal`` (an answer other than 2xx, with a stable code)
and reading the raw body under a size limit, straight from the ASGI ``receive``."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Receive

STORE_RETRY_AFTER_S = "5"


class Refusal(Exception):
    """An answer other than 2xx, raised inside an endpoint and rendered in one place."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    @property
    def headers(self) -> dict[str, str]:
        """Headers the answer carries: a 503 tells the sender when to try again."""
        return {"Retry-After": STORE_RETRY_AFTER_S} if self.status == 503 else {}


async def read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``limit`` (declared or streamed)."""
    if _declares_more(headers.get("content-length"), limit):
        raise Refusal(413, "body_too_large", f"the body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise Refusal(400, "client_disconnected", "the body did not arrive whole")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refusal(413, "body_too_large", f"the body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _declares_more(declared: str | None, limit: int) -> bool:
    """Whether a ``Content-Length`` declares more than ``limit`` bytes. A value that is not a
    plain decimal number declares nothing here: the size streamed decides."""
    if declared is None or not (declared.isascii() and declared.isdecimal()):
        return False
    digits = declared.lstrip("0")  # compared by length first: int() refuses 4,300+ digits
    return len(digits) > len(str(limit)) or int(digits or "0") > limit
