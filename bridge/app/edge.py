"""The HTTP edge: the limits uvicorn's httptools protocol does not enforce by itself.

uvicorn with httptools accepts a request head of any size (httptools buffers a header until it
ends), waits forever for a head or a body that trickles in, and has one connection limit
(``limit_concurrency``) shared by every listener, probes included, and answered in plain text.
(uvicorn's h11 protocol bounds a head with ``h11_max_incomplete_event_size``, but answers 400,
and parses slower than httptools, which intake's hot path relies on.) ``edge_protocol``
returns uvicorn's httptools protocol with, per connection:

- a request line and headers larger than ``max_header_bytes`` answered 431 and closed, as soon
  as that many bytes of an unfinished head have arrived;
- ``header_timeout_s`` from the first byte of a request (or the connection's opening) to the
  end of its head, then ``body_timeout_s`` to the end of its body: past either, 408 (or a plain
  close when nothing of a request arrived, or its answer has begun) and the connection closed.
  Idle keep-alive connections are closed by uvicorn's own ``timeout_keep_alive``;
- beyond ``max_connections`` open connections on the capped listeners (all but the ops
  listener), requests answered 503 with ``Retry-After``, except the probes, so that a flood
  does not make an orchestrator restart a working process.

A request that is not HTTP/1.1 is answered 400 ``invalid_http``; every refusal has the error
shape of the rest of the API. Everything else (parsing, pipelining, flow control, the ASGI
cycle) stays uvicorn's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import httptools
import orjson
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from bridge.app.responses import error_response

__all__ = ["PROBE_PATHS", "EdgeLimits", "EdgeProtocol", "edge_protocol"]

PROBE_PATHS: Final = frozenset({"/healthz", "/readyz"})
RETRY_AFTER_S: Final = 1
SWEEP_INTERVAL_S: Final = 0.25  # deadlines are enforced this late at most
_HEADER_OVERHEAD: Final = 4  # ": " and CRLF around each header, as sent


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    max_header_bytes: int
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int
    uncapped_ports: frozenset[int] = frozenset()  # local ports whose connections are not counted


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the protocol answers ``_refusal``."""


async def _over_capacity(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(
        503,
        "too_many_connections",
        "too many open connections; retry shortly",
        **{"Retry-After": str(RETRY_AFTER_S), "Connection": "close"},
    )
    await response(scope, receive, send)


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of ``limits`` (see the module docstring)."""

    limits: ClassVar[EdgeLimits]
    capped: ClassVar[set[EdgeProtocol]]  # open connections on capped listeners, shared
    every: ClassVar[set[EdgeProtocol]]  # every open connection, for the deadline sweep
    sweeping: ClassVar[bool]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: float | None = None  # loop time
        self._in_head = True  # from the end of a request (or the opening) to the next head's end
        self._head_began = False  # some byte of the current head arrived
        self._head_bytes = 0  # bytes of the unfinished head, counted as they arrive
        self._chunk_bytes = 0  # the chunk being parsed
        self._counted = True  # the chunk being parsed started within a head (or an idle wait)
        self._refusal: tuple[int, str, str] | None = None

    # -- the connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.every.add(self)
        if self.server is None or self.server[1] not in self.limits.uncapped_ports:
            self.capped.add(self)
        self._arm(self.limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self.capped.discard(self)
        self.every.discard(self)
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # refused already: nothing more is parsed
        # A chunk that starts with the end of a body is not counted whole as head.
        counted = self._counted = self._in_head
        self._chunk_bytes = len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():  # as uvicorn does
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is None:
                self._refusal = (400, "invalid_http", "the request is not valid HTTP/1.1")
        if self._refusal is None and counted and self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refusal = _HEAD_TOO_LARGE
        if self._refusal is not None:
            self._answer_and_close(*self._refusal)

    # -- parser callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_began = True
        self._head_bytes = 0
        if self._deadline is None:  # a connection's first request runs on the opening's clock
            self._arm(self.limits.header_timeout_s)

    def on_headers_complete(self) -> None:
        # A head that arrived within max_header_bytes of input is small enough: only a larger
        # one is measured (once, not per header: a callback per header was dear).
        limit = self.limits.max_header_bytes
        if (not self._counted or self._head_bytes + self._chunk_bytes > limit) and (
            len(self.url) + sum(len(n) + len(v) + _HEADER_OVERHEAD for n, v in self.headers) > limit
        ):
            self._refusal = _HEAD_TOO_LARGE
            raise _Refused  # the parser stops: the request never reaches the app
        self._in_head = self._head_began = False
        self._arm(self.limits.body_timeout_s)
        app = self.app
        if self in self.capped and len(self.capped) > self.limits.max_connections:
            path = httptools.parse_url(self.url).path.decode("ascii", "replace")
            if path not in PROBE_PATHS:
                self.app = _over_capacity
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True  # what arrives next starts the next head
        super().on_message_complete()

    # -- limits -----------------------------------------------------------------------------

    # A deadline is a number checked by one sweep per server every SWEEP_INTERVAL_S: a timer
    # armed and cancelled twice per request cost more than the rest of the edge together.

    def _arm(self, delay_s: float) -> None:
        self._deadline = self.loop.time() + delay_s
        if not self.sweeping:
            type(self).sweeping = True
            self.loop.call_later(SWEEP_INTERVAL_S, self._sweep)

    def _disarm(self) -> None:
        self._deadline = None

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in [c for c in self.every if c._deadline is not None and c._deadline <= now]:
            connection._too_slow()
        if self.every:
            self.loop.call_later(SWEEP_INTERVAL_S, self._sweep)
        else:
            type(self).sweeping = False

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self._cycle()
        waiting_for_request = (self._in_head and self._head_began) or (
            not self._in_head and cycle is not None and not cycle.response_started
        )
        if waiting_for_request:
            self._answer_and_close(408, "request_timeout", "the request arrived too slowly")
        else:
            self.transport.close()

    def _cycle(self) -> RequestResponseCycle | None:
        """The current request's cycle; None before the first head is complete (uvicorn's
        annotation says otherwise)."""
        cycle: RequestResponseCycle | None = self.cycle
        return cycle

    def _answer_and_close(self, status: int, code: str, message: str) -> None:
        """Answer on the transport directly and close: the request never reaches the app (or
        its ASGI cycle is told the client is gone, so whatever it sends later goes nowhere)."""
        self._disarm()
        cycle = self._cycle()
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:
                self.transport.close()
                return
            cycle.disconnected = True
            cycle.message_event.set()
        body = orjson.dumps({"error": {"code": code, "message": message}})
        self.transport.write(
            b"".join(
                (
                    STATUS_LINE[status],
                    b"content-type: application/json\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                )
            )
        )
        self.transport.close()


_HEAD_TOO_LARGE: Final = (431, "headers_too_large", "the request line and headers are too large")


def edge_protocol(limits: EdgeLimits) -> type[EdgeProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` enforcing ``limits``."""

    class Protocol(EdgeProtocol):
        pass

    Protocol.limits = limits
    Protocol.capped = set()
    Protocol.every = set()
    Protocol.sweeping = False
    return Protocol
