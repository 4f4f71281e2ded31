"""Deliveries per second from a backlog of 10,000 pending to a local sink that answers at once.

The bridge's real delivery path runs in this process on uvloop, as ``bridge serve`` wires it:
a SQLite store (WAL, group commit), the deliver ``Worker`` claiming in batches, the
``DeliverHandler`` (per-destination slots and rate bucket) and the ``Sender`` (httpx over
aiohttp's transport, Standard Webhooks signing), recording each attempt in the store. The sink
is a raw ASGI app on uvicorn in its own process. Seeding the backlog is not timed.

Baseline, measured in the same run: the same ``Sender`` POSTing the same signed events to the
same sink at the same concurrency, without the store or the worker.

Target: at least 500 deliveries/s.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, cast

import httpx
import uvloop
import yaml

from bench import _sink
from bridge import config
from bridge.delivery import Sender, Verdict
from bridge.events import ShareFacts, render_event
from bridge.observability import configure_logging, reset_logging
from bridge.pipeline import DeliverHandler, delivery_concurrency
from bridge.store import (
    AttemptReport,
    FinalOutcome,
    Job,
    JobKind,
    NewEvent,
    NewNotification,
    Store,
    open_store,
)
from bridge.store.ids import new_id
from bridge.types import DiditSession, EventType, NotificationStatus, Route, SessionKind
from bridge.worker import Worker

TARGET_PER_S = 500.0
SECRET = "whsec_" + "YmVuY2htYXJrLWRlbGl2ZXJ5LXNlY3JldA=="
ROUTE = Route(
    rule="bench",
    workflow_id="3c5b9a2e-0000-4000-8000-000000000001",
    vendor_data="bench:x",
    trust_review=False,
    destinations=("sink",),
)


def main(argv: Sequence[str] = ()) -> int:
    """Run the benchmark; ``argv`` holds its own options (``python -m bench NAME OPTION ...``)."""
    parser = argparse.ArgumentParser(prog="python -m bench deliveries", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pending", type=int, default=10_000, help="backlog per round")
    parser.add_argument("--max-in-flight", type=int, default=64, help="the destination's")
    parser.add_argument(
        "--transport",
        choices=["aiohttp", "httpx"],
        default="aiohttp",
        help="the Sender's default (aiohttp), or httpx's own, for comparison",
    )
    args = parser.parse_args(list(argv))
    if min(args.rounds, args.pending, args.max_in_flight) < 1:
        parser.error("every count must be at least 1")

    # As `bridge serve` logs (JSON, info: a line per attempt and per job), into /dev/null.
    devnull = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run
    configure_logging(level="info", fmt="json", stream=devnull, production=True)
    spawn = multiprocessing.get_context("spawn")
    port_queue: Queue[int] = spawn.Queue()
    sink = spawn.Process(target=_sink.serve, args=(port_queue,), daemon=True)
    sink.start()
    try:
        url = f"http://{_sink.HOST}:{port_queue.get(timeout=30)}/hooks"
        settings = _settings(url, args.max_in_flight)
        sender: Callable[[], Sender] = Sender
        if args.transport == "httpx":
            limits = httpx.Limits(
                max_connections=args.max_in_flight, max_keepalive_connections=args.max_in_flight
            )
            sender = partial(Sender, transport=lambda: httpx.AsyncHTTPTransport(limits=limits))
        bridge_rates: list[float] = []
        baseline_rates: list[float] = []
        with tempfile.TemporaryDirectory(prefix="bench-deliveries-") as directory:
            uvloop.run(_baseline_round(settings, min(500, args.pending), sender))  # warm-up
            for round_number in range(args.rounds):
                db = Path(directory) / f"round{round_number}.db"
                bridge_rate = uvloop.run(_bridge_round(settings, db, args.pending, url, sender))
                baseline_rate = uvloop.run(_baseline_round(settings, args.pending, sender))
                bridge_rates.append(bridge_rate)
                baseline_rates.append(baseline_rate)
                sys.stdout.write(
                    f"round {round_number + 1}: bridge {bridge_rate:,.0f}/s, "
                    f"baseline {baseline_rate:,.0f}/s\n"
                )
                sys.stdout.flush()
    finally:
        sink.kill()
        sink.join()
        reset_logging()
        devnull.close()
    bridge_median = statistics.median(bridge_rates)
    baseline_median = statistics.median(baseline_rates)
    met = bridge_median >= TARGET_PER_S
    sys.stdout.write(
        f"median deliveries/s: bridge {bridge_median:,.0f}, baseline (Sender alone) "
        f"{baseline_median:,.0f}, ratio {bridge_median / baseline_median:.2f}; "
        f"target {TARGET_PER_S:,.0f}/s {'met' if met else 'NOT met'}\n"
    )
    return 0 if met else 1


def _settings(url: str, max_in_flight: int) -> config.Settings:
    document = {
        "didit": {
            "base_url": "http://127.0.0.1:9",
            "api_key": "bench-api-key",
            "application_id": "11111111-2222-4333-8444-555555555555",
        },
        "partners": {
            "p": {
                "auth": {
                    "scheme": "api-key",
                    "header": "X-Api-Key",
                    "keys": ["acme-api-key-6b1d8f3e"],
                }
            }
        },
        "rules": [
            {
                "name": "bench",
                "then": {"workflow_id": ROUTE.workflow_id, "vendor_data": "bench:{event_id}"},
            }
        ],
        "destinations": {
            "sink": {
                "url": url,
                "secrets": [SECRET],
                "timeout_s": 10,
                "rate_limit_per_second": 1_000_000,
                "max_in_flight": max_in_flight,
            }
        },
    }
    return config.load_text(yaml.safe_dump(document), environ={})


class _CountingStore:
    """The real store, counting ``mark_delivered`` so the round ends on the last one."""

    def __init__(self, inner: Store, expected: int) -> None:
        self.inner = inner
        self.delivered = 0
        self.failed = 0
        self._expected = expected
        self.done = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def mark_delivered(self, job: Job, report: AttemptReport) -> bool:
        held = await self.inner.mark_delivered(job, report)
        self.delivered += held
        if self.delivered >= self._expected:
            self.done.set()
        return held

    async def delivery_failed(
        self, job: Job, report: AttemptReport, *, retry_at: float | None
    ) -> bool:
        self.failed += 1
        return await self.inner.delivery_failed(job, report, retry_at=retry_at)


async def _bridge_round(
    settings: config.Settings, db: Path, pending: int, url: str, make_sender: Callable[[], Sender]
) -> float:
    inner = open_store(f"sqlite:///{db}", clock=time.time)
    try:
        await _seed(inner, pending)
        store = _CountingStore(inner, pending)
        async with make_sender() as sender:
            handler = DeliverHandler(
                store=cast(Store, store), sender=sender, settings=lambda: settings
            )
            worker = Worker(
                cast(Store, store),
                kind=JobKind.DELIVER,
                handler=handler,
                owner="bench",
                concurrency=delivery_concurrency(settings),
                lease_s=20.0,
                poll_interval_s=0.5,
                backoff=lambda _attempts: 1.0,
                clock=time.time,
                lane_caps=handler.lane_caps,
            )
            started = time.perf_counter()
            running = asyncio.create_task(worker.run())
            await store.done.wait()
            elapsed = time.perf_counter() - started
            await worker.stop(10.0)
            await running
        stats = await inner.stats()
    finally:
        await inner.close()
    if store.failed or stats.deliveries["delivered"] != pending:
        raise RuntimeError(f"not every delivery succeeded: {stats.deliveries}, {store.failed}")
    async with httpx.AsyncClient() as client:
        received = int((await client.get(url.replace("/hooks", "/count"))).text)
    if received < pending:
        raise RuntimeError(f"the sink received {received} of {pending}")
    return pending / elapsed


async def _baseline_round(
    settings: config.Settings, count: int, make_sender: Callable[[], Sender]
) -> float:
    """The same Sender and concurrency, POSTing signed events, with no store and no worker."""
    destination = settings.destinations["sink"]
    events = [_event(new_id("ntf", time.time()), time.time()) for _ in range(count)]
    slots = asyncio.Semaphore(destination.max_in_flight)
    async with make_sender() as sender:

        async def post(event: NewEvent) -> None:
            async with slots:
                result = await sender.send(
                    "sink", destination, message_id=event.id, body=event.body
                )
            if result.verdict is not Verdict.DELIVERED:
                raise RuntimeError(f"baseline POST failed: {result.error}")

        started = time.perf_counter()
        await asyncio.gather(*(post(event) for event in events))
        return count / (time.perf_counter() - started)


async def _seed(store: Store, count: int) -> None:
    """``count`` imported notifications, each with one pending delivery to the sink."""
    await asyncio.gather(*(store.accept(_notification(i)) for i in range(count)))
    done = 0
    while done < count:
        jobs = await store.claim(JobKind.IMPORT, owner="seed", lease_s=60, limit=1000)
        results = await asyncio.gather(
            *(
                store.record_outcome(job, _imported(job), [_event(job.ref, time.time())])
                for job in jobs
            )
        )
        if not jobs or not all(results):
            raise RuntimeError("seeding the backlog failed")
        done += len(jobs)


def _imported(job: Job) -> FinalOutcome:
    """Imported as a Didit session of its own: the store refuses a session with two owners."""
    session = DiditSession(session_id=f"session-of-{job.ref}", status="In Review")
    return FinalOutcome(status=NotificationStatus.IMPORTED, session=session)


def _notification(number: int) -> NewNotification:
    return NewNotification(
        partner="p",
        partner_event_id=None,
        message_id=None,
        business_key=f"bench-{number}",
        token=f"bench.token.{number}",
        token_sha256=f"sha-{number}",
        session_kind=SessionKind.USER,
        source_application_id="app",
        source_session_id=f"session-{number}",
        deadline=None,
        route=ROUTE,
    )


def _event(notification_id: str, now: float) -> NewEvent:
    event_id = new_id("evt", now)
    share = ShareFacts(
        notification_id=notification_id,
        partner="p",
        partner_event_id=None,
        session_kind=SessionKind.USER,
        source_application_id="app",
        source_session_id=notification_id,
        route=ROUTE,
    )
    body = render_event(
        event_id=event_id,
        event_type=EventType.IMPORTED,
        created_at=now,
        share=share,
        session=DiditSession(session_id="s", session_number=1, status="In Review"),
        reason=None,
    )
    return NewEvent(id=event_id, type=EventType.IMPORTED, body=body, destinations=("sink",))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
