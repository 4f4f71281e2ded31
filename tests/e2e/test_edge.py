"""The HTTP edge of a real ``bridge serve`` against strangers on raw sockets: oversized heads,
clients that trickle their head or body, and more connections than ``server.max_connections``,
with ``/healthz`` answering promptly throughout."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest

from tests.e2e.conftest import MakeBridge
from tests.support.bridge_process import BridgeProcess, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

INTAKE = b"POST /v1/partners/acme/shares HTTP/1.1\r\nHost: bridge\r\n"
HEALTHZ_FAST_S = 1.0  # a loaded 2-core machine; unguarded, a probe here waited forever


@dataclass
class Stranger:
    """A raw connection and what the server sent on it until it closed."""

    sock: socket.socket
    received: bytearray = field(default_factory=bytearray)
    closed_at: float | None = None

    @property
    def status(self) -> int | None:
        head = bytes(self.received).split(b"\r\n", 1)[0].split()
        return int(head[1]) if len(head) > 1 else None

    def json(self) -> object:
        return orjson.loads(bytes(self.received).split(b"\r\n\r\n", 1)[1])


def connect(port: int, first: bytes = b"") -> Stranger:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    if first:
        sock.sendall(first)
    return Stranger(sock)


def read_available(strangers: list[Stranger]) -> None:
    """Take what the server sent; mark the connections it closed."""
    open_ = [s for s in strangers if s.closed_at is None]
    if not open_:
        return
    readable, _, _ = select.select([s.sock for s in open_], [], [], 0.05)
    for stranger in open_:
        if stranger.sock not in readable:
            continue
        try:
            chunk = stranger.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if chunk:
            stranger.received += chunk
        else:
            stranger.closed_at = time.monotonic()


@contextlib.contextmanager
def closing(strangers: list[Stranger]) -> Iterator[list[Stranger]]:
    try:
        yield strangers
    finally:
        for stranger in strangers:
            stranger.sock.close()


def exchange(port: int, request: bytes, timeout_s: float = 10.0) -> Stranger:
    """Send a whole request; return once the server has closed the connection."""
    stranger = connect(port)
    with closing([stranger]):
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, BlockingIOError):
            stranger.sock.setblocking(True)
            stranger.sock.sendall(request)
            stranger.sock.setblocking(False)
        deadline = time.monotonic() + timeout_s
        while stranger.closed_at is None and time.monotonic() < deadline:
            read_available([stranger])
    return stranger


def healthz_latency(bridge: BridgeProcess) -> float:
    started = time.monotonic()
    answer = bridge.http.get(f"{bridge.base_url}/healthz", timeout=10.0)
    assert answer.status_code == 200
    return time.monotonic() - started


def test_an_oversized_request_head_is_refused_431(make_bridge: MakeBridge) -> None:
    """1 MB of header (or a million signature entries) is answered 431 and closed, without
    reaching intake; a head under the limit is served as before."""
    bridge = make_bridge(server={"max_header_bytes": 16384})
    huge = b"x" * 1_000_000
    entries = b" ".join([b"v1,AAAA"] * 1_000_000)
    for name, value in ((b"X-Padding", huge), (b"webhook-signature", entries)):
        head = INTAKE + b"content-length: 2\r\n" + name + b": " + value + b"\r\n\r\n{}"
        answer = exchange(bridge.port, head)
        assert answer.closed_at is not None
        assert answer.status == 431, bytes(answer.received[:200])
        assert answer.json() == {
            "error": {
                "code": "headers_too_large",
                "message": "the request line and headers are too large",
            }
        }
    long_path = b"GET /" + b"a" * 50_000 + b" HTTP/1.1\r\nHost: bridge\r\n\r\n"
    assert exchange(bridge.port, long_path).status == 431
    garbage = exchange(bridge.port, b"\x16\x03\x01 not http at all\r\n\r\n")
    assert (garbage.status, garbage.json()) == (
        400,
        {"error": {"code": "invalid_http", "message": "the request is not valid HTTP/1.1"}},
    )
    fine = httpx.get(f"{bridge.base_url}/healthz", headers={"X-Padding": "x" * 8000})
    assert fine.status_code == 200
    assert healthz_latency(bridge) < HEALTHZ_FAST_S
    assert not any(line.get("event") == "request" and "/shares" in line.get("path", "")
                   for line in bridge.log_lines())  # fmt: skip


def test_slow_clients_are_cut_off_and_health_stays_fast(make_bridge: MakeBridge) -> None:
    """60 clients trickle a head or a body a byte at a time (and two send nothing): each is
    answered 408 (or closed, when it sent nothing) within its deadline, while /healthz answers
    at once throughout."""
    header_timeout_s, body_timeout_s = 1.0, 2.0
    bridge = make_bridge(
        server={"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s}
    )
    started = time.monotonic()
    heads = [connect(bridge.port, INTAKE) for _ in range(30)]
    body_head = INTAKE + b"content-type: application/json\r\ncontent-length: 900\r\n\r\n{"
    bodies = [connect(bridge.port, body_head) for _ in range(30)]
    silent = [connect(bridge.port) for _ in range(2)]
    strangers = heads + bodies + silent
    latencies: list[float] = []
    with closing(strangers):
        while time.monotonic() - started < 8 and any(s.closed_at is None for s in strangers):
            for stranger in heads + bodies:
                if stranger.closed_at is None:
                    with contextlib.suppress(OSError):  # a reset races the close
                        stranger.sock.send(b"x" if stranger in bodies else b"X-Slow: 1\r\n")
            latencies.append(healthz_latency(bridge))
            deadline = time.monotonic() + 0.2
            while time.monotonic() < deadline:
                read_available(strangers)
    assert all(s.closed_at is not None for s in strangers), "a slow client was kept"
    slack_s = 2.5  # the loaded machine's scheduling
    for group, limit_s in ((heads, header_timeout_s), (bodies, header_timeout_s + body_timeout_s)):
        assert {s.status for s in group} == {408}
        assert max(s.closed_at - started for s in group if s.closed_at) < limit_s + slack_s
        assert group[0].json() == {
            "error": {"code": "request_timeout", "message": "the request arrived too slowly"}
        }
    assert all(s.received == b"" for s in silent)
    assert max(latencies) < HEALTHZ_FAST_S, latencies
    assert len(latencies) >= 3  # probed again and again while the slow clients were connected
    assert "Traceback" not in bridge.output()


def test_connections_beyond_the_cap_are_answered_503(make_bridge: MakeBridge) -> None:
    """With max_connections open, one more is answered 503 with Retry-After; the probes and
    the ops listener still answer; once the others close, requests are served again."""
    ops_port = free_port()
    bridge = make_bridge(
        server={"max_connections": 4, "header_timeout_s": 30, "ops_port": ops_port}
    )
    holders = [connect(bridge.port, INTAKE) for _ in range(4)]
    with closing(holders):
        time.sleep(0.3)  # accepted by the server
        refused = httpx.post(f"{bridge.base_url}/v1/partners/acme/shares", json={})
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "too_many_connections"
        assert healthz_latency(bridge) < HEALTHZ_FAST_S
        assert httpx.get(f"http://127.0.0.1:{ops_port}/metrics").status_code == 200
    served = wait_until(
        lambda: httpx.post(f"{bridge.base_url}/v1/partners/acme/shares", json={}),
        "the freed connections",
        holds=lambda answer: answer.status_code != 503,
        timeout_s=10,
        poll_s=0.1,
    )
    assert served.status_code == 401  # unsigned: refused by intake itself, not by the edge
