"""The canonical request line of every route but intake (``RequestLog``; intake's own line is
tested in ``tests/intake/test_request_line.py``), and ``/metrics``'s snapshot of the store
(``MetricsEndpoint``, ``PacerCounters``), in process."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator, Mapping

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.app import MetricsEndpoint, RequestLog
from bridge.app.metrics import PacerCounters
from bridge.errors import StoreUnavailable
from bridge.observability import Metrics
from bridge.pacing import Pacer
from tests.ops.scenario import parse_metrics, value
from tests.support.logs import captured_logs, json_lines

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(name="stream")
def _stream() -> Iterator[io.StringIO]:
    with captured_logs("debug") as out:
        yield out


async def broken(request: Request) -> Response:
    raise RuntimeError("a bug")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@pytest.fixture(name="client")
async def _client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(
        routes=[
            Route("/broken", broken),
            Route("/healthz", healthz),
        ],
        middleware=[Middleware(RequestLog)],
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://bridge.test") as client:
        yield client


@pytest.fixture(name="metrics")
def _metrics() -> Metrics:
    return Metrics()


async def test_probes_are_debug_and_failures_are_logged(
    client: httpx.AsyncClient, stream: io.StringIO
) -> None:
    """Health probes log at debug; a crashing endpoint still gets its line (500)."""
    await client.get("/healthz")
    assert (await client.get("/broken")).status_code == 500
    by_path = {line["path"]: line for line in json_lines(stream) if line["event"] == "request"}
    assert by_path["/healthz"]["level"] == "debug"
    assert (by_path["/broken"]["level"], by_path["/broken"]["http_status"]) == ("info", 500)


async def test_a_long_path_is_logged_cut(client: httpx.AsyncClient, stream: io.StringIO) -> None:
    """What a stranger puts in the path reaches the line as a bounded prefix."""
    assert (await client.get("/" + "a" * 10_000)).status_code == 404
    (line,) = [line for line in json_lines(stream) if line["event"] == "request"]
    assert line["path"] == "/" + "a" * 255 + "..."


class FakePacer(Pacer):
    def __init__(self) -> None:
        super().__init__(60)


async def test_scrape_refreshes_the_snapshot_and_keeps_it_on_failure(
    metrics: Metrics, stream: io.StringIO
) -> None:
    """Each scrape reads the store; a store failure keeps the last values (and is logged)."""
    answers: list[Mapping[str, float] | Exception] = [
        {"queue_depth": 3, "oldest_pending_age_seconds": 12.5},
        StoreUnavailable("down"),
        {"queue_depth": 0, "oldest_pending_age_seconds": 0},
    ]

    async def snapshot() -> Mapping[str, float]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    pacer = FakePacer()
    endpoint = MetricsEndpoint(
        metrics, snapshot=snapshot, before_render=[PacerCounters(metrics, pacer)]
    )
    app = Starlette(routes=[Route("/metrics", endpoint.scrape)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bridge.test"
    ) as client:
        first = parse_metrics((await client.get("/metrics")).text)
        pacer.waits_total, pacer.wait_seconds_total = 2, 1.5
        second = parse_metrics((await client.get("/metrics")).text)
        third = parse_metrics((await client.get("/metrics")).text)
    assert (
        value(first, "bridge_queue_depth"),
        value(first, "bridge_oldest_pending_age_seconds"),
    ) == (3, 12.5)
    assert value(second, "bridge_queue_depth") == 3  # kept
    assert (
        value(second, "bridge_pacer_waits_total"),
        value(second, "bridge_pacer_wait_seconds_total"),
    ) == (2, 1.5)
    assert value(third, "bridge_queue_depth") == 0
    assert value(third, "bridge_pacer_waits_total") == 2  # deltas, not re-added
    assert [line["event"] for line in json_lines(stream)].count("metrics_snapshot_failed") == 1
