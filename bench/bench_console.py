"""Console pages with 100,000 notifications stored: each page's answer time, p50 and p95.

Setup: 100,000 notifications written through ``Store.accept`` (group commit), alternating
partners (acme, hooli) and rules (kyc, kyb); then, to give the listing's filters and the
overview's chart something to find, one in ten is made ``failed`` and the rest ``imported``,
finished over the last day (a direct UPDATE: a read benchmark needs the rows, not the imports).
The console runs in process over that store (Starlette + Jinja2 behind httpx's ASGI
transport, a signed-in session); each page is requested ``--requests`` times, in turns.
Baseline in the same run: the admin API's JSON listing of the same newest page, which reads the
same rows without templates, so the ratio is what rendering HTML costs.

Target: every console page under 50 ms at p50.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import yaml
from starlette.applications import Starlette

from bridge import auth, config
from bridge.app import Admin, Console, LiveConfig
from bridge.app.console import sessions
from bridge.app.operations import Operations
from bridge.store import NewNotification, NotificationSearch
from bridge.store.sqlite import SqliteStore
from bridge.types import Route, SessionKind

ADMIN_TOKEN = "adm-bench-0123456789abcdef0123456789"
TARGET_P50_MS = 50.0


def settings(db: Path) -> config.Settings:
    document = {
        "didit": {
            "base_url": "http://127.0.0.1:9",
            "api_key": "bench-api-key-not-used",
            "application_id": "6a0f7d7e-1f1a-4c55-9a43-0d7e2f1b0001",
        },
        "store": {"url": f"sqlite:///{db}"},
        "partners": {
            name: {
                "auth": {
                    "scheme": "api-key",
                    "header": "X-Api-Key",
                    "keys": [f"{name}-bench-key-7f3a9c2e"],
                }
            }
            for name in ("acme", "hooli")
        },
        "rules": [
            {
                "name": "kyc",
                "then": {
                    "workflow_id": "6a0f7d7e-1f1a-4c55-9a43-0d7e2f1b00c1",
                    "vendor_data": "{partner}:{payload.customer}",
                },
            },
        ],
        "admin": {"token": ADMIN_TOKEN},
    }
    return config.load_text(yaml.safe_dump(document))


def new(i: int) -> NewNotification:
    route = Route(
        rule="kyc" if i % 2 else "kyb",
        workflow_id="wf",
        vendor_data=f"customer-{i}",
        trust_review=False,
        destinations=("crm",),
    )
    return NewNotification(
        partner="acme" if i % 2 else "hooli",
        partner_event_id=f"evt-{i}",
        message_id=f"msg-{i}",
        business_key=f"app:{i}",
        token="x" * 450,
        token_sha256=f"{i:064x}",
        session_kind=SessionKind.USER,
        source_application_id="app",
        source_session_id=str(i),
        deadline=time.time() + 3600,
        route=route,
    )


async def fill(store: SqliteStore, total: int, callers: int = 64) -> None:
    numbers = iter(range(total))

    async def caller() -> None:
        for i in numbers:
            await store.accept(new(i))

    await asyncio.gather(*(caller() for _ in range(callers)))


def finish_rows(db: Path) -> None:
    now = time.time()
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE notifications SET token = NULL, finished_at = :now - (rowid % 86000), "
            "status = CASE WHEN rowid % 10 = 0 THEN 'failed' ELSE 'imported' END",
            {"now": now},
        )
        connection.execute("UPDATE jobs SET status = 'done' WHERE kind = 'import'")


async def measure(
    client: httpx.AsyncClient, paths: Sequence[str], requests: int
) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {path: [] for path in paths}
    for _ in range(requests):
        for path in paths:
            started = time.perf_counter()
            answer = await client.get(path)
            timings[path].append((time.perf_counter() - started) * 1000)
            if answer.status_code != 200:
                raise SystemExit(f"{path}: HTTP {answer.status_code}")
    return timings


async def run(total: int, requests: int, folder: Path) -> int:
    db = folder / "bench.db"
    current = settings(db)
    store = SqliteStore.open(db, clock=time.time)
    began = time.perf_counter()
    await fill(store, total)
    print(f"setup: {total:,} notifications accepted in {time.perf_counter() - began:.1f} s")
    finish_rows(db)
    live = LiveConfig(settings=current, verifiers=auth.verifiers_for(current))
    operations = Operations(store=store, settings=lambda: current)
    console = Console(live=lambda: live, operations=operations)
    admin = Admin(live=lambda: live, operations=operations)
    app = Starlette(routes=[*admin.routes(), console.mount()])
    cookie, _ = sessions.issue(ADMIN_TOKEN, now=time.time())
    middle = new(total // 2)
    [sample] = await store.search_notifications(
        NotificationSearch(key=middle.route.vendor_data), limit=1
    )
    paths = [
        "/console/overview",
        "/console/notifications",
        "/console/notifications?status=failed",
        "/console/notifications?partner=hooli&rule=kyb",
        "/console/notifications?partner=acme&rule=kyb",  # matches nothing: the worst case
        f"/console/notifications?q={middle.route.vendor_data}",
        f"/console/notifications?q={middle.token_sha256}",
        f"/console/notifications/{sample.id}",
        "/console/deliveries",
        "/console/destinations",
    ]
    baseline = "/admin/v1/notifications?limit=50"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://bench",
        cookies={sessions.COOKIE: cookie},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        await measure(client, [*paths, baseline], 3)  # warm the caches and templates
        timings = await measure(client, [*paths, baseline], requests)
    await store.close()
    base_p50 = statistics.median(timings[baseline])
    worst = 0
    print(f"{'page':<60} {'p50 ms':>8} {'p95 ms':>8} {'/base':>6}")
    for path, values in timings.items():
        p50 = statistics.median(values)
        p95 = statistics.quantiles(values, n=20)[18]
        print(f"{path:<60} {p50:8.2f} {p95:8.2f} {p50 / base_p50:6.2f}")
        if path != baseline and p50 >= TARGET_P50_MS:
            worst = 1
    print(
        "target (every console page p50 < 50 ms; /base is the ratio to the admin API's listing):",
        "met" if worst == 0 else "NOT met",
    )
    return worst


def main(argv: Sequence[str] = ()) -> int:
    """Run the benchmark; ``argv`` holds its own options (``python -m bench NAME OPTION ...``)."""
    parser = argparse.ArgumentParser(prog="python -m bench console", description=__doc__)
    parser.add_argument("--notifications", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30, help="per page")
    args = parser.parse_args(list(argv))
    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(run(args.notifications, args.requests, Path(folder)))


if __name__ == "__main__":
    raise SystemExit(main())
