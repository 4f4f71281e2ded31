"""Edge: what the HTTP edge's limits (``bridge.app.edge``) add to each request, in process.

uvicorn's httptools protocol and ``edge_protocol`` each parse ``--requests`` partner-sized
POSTs (headers like a signed intake request, a 1 KB body) on one kept-alive connection with a
stand-in transport, and run a trivial ASGI app that reads the body and answers 202: the network
and the bridge's own work are left out, so the difference is the edge's alone (deadlines set
and cleared, head bytes counted, the connection cap checked). Rounds alternate; medians of CPU
microseconds per request (CPU time, so that other work on the machine counts less).
Target: the edge adds under 25 us per request (a whole intake request costs several hundred,
``bench/RESULTS.md``, intake).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import Any

import uvloop
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from bridge.app.edge import EdgeLimits, edge_protocol

TARGET_ADDED_US = 25.0
BODY = b'{"share_token": "' + b"x" * 1000 + b'", "customer": "c1"}'
REQUEST = (
    b"POST /v1/partners/acme/shares HTTP/1.1\r\nHost: bridge\r\n"
    b"content-type: application/json\r\n"
    b"webhook-id: msg_0123456789\r\nwebhook-timestamp: 1764000000\r\n"
    b"webhook-signature: v1," + b"A" * 44 + b"\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 5000)}.get(name, default)

    def write(self, data: Any) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def one_round(protocol_class: type[HttpToolsProtocol], requests: int) -> float:
    config = Config(app, lifespan="off", log_config=None, access_log=False)
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = _Transport()
    protocol.connection_made(transport)
    started = time.process_time()
    for _ in range(requests):
        protocol.data_received(REQUEST)
        await asyncio.gather(*protocol.tasks)
    elapsed = time.process_time() - started
    assert not transport.closing
    assert transport.written > 0
    protocol.connection_lost(None)
    return elapsed / requests * 1e6


def main(argv: Sequence[str] = ()) -> int:
    """Run the benchmark; ``argv`` holds its own options (``python -m bench NAME OPTION ...``)."""
    parser = argparse.ArgumentParser(prog="python -m bench edge", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args(list(argv))
    edge = edge_protocol(
        EdgeLimits(
            max_header_bytes=16384, header_timeout_s=5, body_timeout_s=10, max_connections=512
        )
    )
    plain: list[float] = []
    limited: list[float] = []
    for _ in range(args.rounds):
        plain.append(uvloop.run(one_round(HttpToolsProtocol, args.requests)))
        limited.append(uvloop.run(one_round(edge, args.requests)))
    base, with_edge = statistics.median(plain), statistics.median(limited)
    added = with_edge - base
    print(
        f"edge: {args.requests} requests x {args.rounds} rounds: httptools {base:.1f} us/request, "
        f"edge {with_edge:.1f} us/request, +{added:.1f} us (ratio {with_edge / base:.2f}; "
        f"target < {TARGET_ADDED_US:.0f} us)"
    )
    return 0 if added < TARGET_ADDED_US else 1
