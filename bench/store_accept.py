"""Group-commit throughput of ``Store.accept`` on SQLite (WAL, synchronous=FULL).

Not a timed test: a quick check, run by hand:
    .venv/bin/python bench/store_accept.py [--callers 64] [--total 20000] [--uvloop]
Prints durable accepts per second, latency percentiles and the mean group size.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bridge.store import NewNotification
from bridge.store.sqlite import SqliteStore
from bridge.types import Route, SessionKind

ROUTE = Route(
    rule="bench", workflow_id="wf", vendor_data="bench:1", trust_review=False, destinations=("crm",)
)


def new(i: int) -> NewNotification:
    return NewNotification(
        partner="acme",
        partner_event_id=f"evt-{i}",
        message_id=f"msg-{i}",
        business_key=f"app:{i}",
        token="x" * 600,
        token_sha256=f"{i:064x}",
        session_kind=SessionKind.USER,
        source_application_id="app",
        source_session_id=str(i),
        deadline=time.time() + 3600,
        route=ROUTE,
    )


async def run(callers: int, total: int, folder: Path) -> None:
    store = SqliteStore.open(folder / "bench.db", clock=time.time)
    latencies: list[float] = []
    counter = iter(range(total))

    async def caller() -> None:
        for i in counter:
            started = time.perf_counter()
            await store.accept(new(i))
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - began
    writer = store._writer
    await store.close()
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{total} accepts, {callers} callers: {total / elapsed:,.0f}/s; "
        f"p50 {cuts[49] * 1000:.2f} ms, p99 {cuts[98] * 1000:.2f} ms; "
        f"{writer.commits} commits, {writer.operations / max(writer.commits, 1):.1f} per commit"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--total", type=int, default=20_000)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        coroutine = run(args.callers, args.total, Path(folder))
        if args.uvloop:
            import uvloop

            uvloop.run(coroutine)
        else:
            asyncio.run(coroutine)


if __name__ == "__main__":
    main()
