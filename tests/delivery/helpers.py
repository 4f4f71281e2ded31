"""Building blocks for delivery tests: settings, events in a real store, a running worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bridge import config
from bridge.delivery import Sender
from bridge.events import ShareFacts, render_event
from bridge.pipeline import Alarm, DeliverHandler, delivery_concurrency
from bridge.store import FinalOutcome, JobKind, NewEvent, Store
from bridge.store.ids import new_id
from bridge.types import DiditSession, EventType, NotificationStatus
from bridge.worker import Worker
from tests.store.helpers import ROUTE, notification

SECRET = "whsec_" + "ZGVsaXZlcnktdGVzdC1zZWNyZXQtb25l"
NEW_SECRET = "whsec_" + "ZGVsaXZlcnktdGVzdC1zZWNyZXQtdHdv"
APPLICATION_ID = "11111111-2222-4333-8444-555555555555"


def destination(url: str, **overrides: Any) -> dict[str, Any]:
    """One ``destinations`` entry with fast test defaults."""
    spec: dict[str, Any] = {
        "url": url,
        "secrets": [SECRET],
        "timeout_s": 2,
        "retry_schedule": ["100ms", "200ms", "300ms"],
        "rate_limit_per_second": 1000,
        "max_in_flight": 4,
    }
    spec.update(overrides)
    return spec


def make_settings(destinations: Mapping[str, Mapping[str, Any]]) -> config.Settings:
    """Valid settings around ``destinations`` (the rest is never used by delivery)."""
    return config.load_text(yaml.safe_dump(config_document(destinations)), environ={})


def config_file(
    directory: Path,
    destinations: Mapping[str, Mapping[str, Any]],
    *,
    routed: Sequence[str] | None = None,
) -> Path:
    """:func:`config_document` as ``directory/bridge.yaml``, its store ``directory/bridge.db``
    (for the CLI's commands)."""
    document = config_document(destinations, routed=routed)
    document["store"] = {"url": f"sqlite:///{directory / 'bridge.db'}"}
    path = directory / "bridge.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def config_document(
    destinations: Mapping[str, Mapping[str, Any]], *, routed: Sequence[str] | None = None
) -> dict[str, Any]:
    """A valid config around ``destinations``; its one rule sends to ``routed`` (default:
    every destination)."""
    return {
        "didit": {
            "base_url": "http://127.0.0.1:9",
            "api_key": "test-api-key",
            "application_id": APPLICATION_ID,
        },
        "partners": {
            "acme": {
                "auth": {
                    "scheme": "api-key",
                    "header": "X-Api-Key",
                    "keys": ["acme-api-key-6b1d8f3e"],
                }
            }
        },
        "rules": [
            {
                "name": "all",
                "then": {
                    "workflow_id": ROUTE.workflow_id,
                    "vendor_data": "acme:{event_id}",
                    "destinations": list(destinations if routed is None else routed),
                },
            }
        ],
        "destinations": {name: dict(spec) for name, spec in destinations.items()},
    }


async def seed_events(
    store: Store, count: int, destinations: Sequence[str], *, clock: Callable[[], float] = time.time
) -> list[NewEvent]:
    """``count`` imported notifications, each with one event delivered to ``destinations``."""
    prefix = new_id("seed", clock())
    await asyncio.gather(
        *(store.accept(notification(f"{prefix}-{i}", deadline=None)) for i in range(count))
    )
    events: list[NewEvent] = []
    pending: list[Any] = []
    while len(events) < count:
        jobs = await store.claim(JobKind.IMPORT, owner="seeder", lease_s=60, limit=500)
        assert jobs, "every seeded notification should be claimable"
        for job in jobs:
            event = _imported_event(job.ref, destinations, clock())
            events.append(event)
            outcome = FinalOutcome(
                status=NotificationStatus.IMPORTED,
                session=DiditSession(session_id=f"s-{job.ref}", status="In Review"),
            )
            pending.append(store.record_outcome(job, outcome, [event]))
        assert all(await asyncio.gather(*pending))
        pending.clear()
    return events


def _imported_event(notification_id: str, destinations: Sequence[str], now: float) -> NewEvent:
    event_id = new_id("evt", now)
    share = ShareFacts(
        notification_id=notification_id,
        partner="acme",
        partner_event_id=None,
        session_kind=notification("x").session_kind,
        source_application_id="app-1",
        source_session_id=notification_id,
        route=ROUTE,
    )
    body = render_event(
        event_id=event_id,
        event_type=EventType.IMPORTED,
        created_at=now,
        share=share,
        session=DiditSession(session_id=f"s-{notification_id}", status="In Review"),
        reason=None,
    )
    return NewEvent(
        id=event_id, type=EventType.IMPORTED, body=body, destinations=tuple(destinations)
    )


@dataclass
class Delivering:
    """A running deliver worker and its parts."""

    worker: Worker
    handler: DeliverHandler


@asynccontextmanager
async def delivering(
    store: Store,
    settings: config.Settings | Callable[[], config.Settings],
    *,
    poll_interval_s: float = 0.05,
    concurrency: int | None = None,
    sender: Sender | None = None,
    **handler_options: Any,
) -> AsyncIterator[Delivering]:
    """Run a deliver worker (as ``bridge serve`` wires it) until the block ends.

    ``settings`` may be a function, read at each job, to change the config while it runs.
    """
    current = settings if callable(settings) else (lambda: settings)
    own_sender = sender is None
    sender = sender or Sender()
    workers: list[Worker] = []
    alarm = Alarm(lambda: workers[0].notify())
    handler = DeliverHandler(
        store=store,
        sender=sender,
        settings=current,
        retry_scheduled=alarm.at,
        **handler_options,
    )
    worker = Worker(
        store,
        kind=JobKind.DELIVER,
        handler=handler,
        owner="test-deliverer",
        concurrency=concurrency or delivery_concurrency(current()),
        lease_s=30.0,
        poll_interval_s=poll_interval_s,
        backoff=lambda _attempts: 0.05,
        clock=time.time,
        lane_caps=handler.lane_caps,
    )
    workers.append(worker)
    task = asyncio.create_task(worker.run())
    try:
        yield Delivering(worker=worker, handler=handler)
    finally:
        await worker.stop(5.0)
        await task
        alarm.cancel()
        if own_sender:
            await sender.aclose()
