"""Group-commit throughput of ``Store.accept``: SQLite (WAL, synchronous=FULL) or PostgreSQL.

Not a timed test: a quick check, run by hand:
    .venv/bin/python bench/store_accept.py [--callers 64] [--total 20000] [--uvloop]
        [--store sqlite|postgres] [--dsn postgresql://...]
Prints durable accepts per second, latency percentiles and the mean group size. PostgreSQL runs
in a fresh schema of the ``--dsn`` database (default ``$BRIDGE_TEST_PG_DSN``), dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from bridge.store import NewNotification
from bridge.store.postgres import PostgresStore
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


async def run(callers: int, total: int, folder: Path, dsn: str | None) -> None:
    store: SqliteStore | PostgresStore
    if dsn is None:
        store = SqliteStore.open(folder / "bench.db", clock=time.time)
    else:
        store = PostgresStore.open(
            dsn, clock=time.time, token_keys=[os.urandom(32)], schema=f"bench_{os.getpid()}"
        )
        await store.migrate()
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
    if isinstance(store, SqliteStore):
        commits, operations = store._writer.commits, store._writer.operations
    else:
        commits, operations = store._accepts.commits, store._accepts.items
    await store.close()
    if dsn is not None:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA bench_{os.getpid()} CASCADE")
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{'postgres' if dsn else 'sqlite'}: {total} accepts, {callers} callers: "
        f"{total / elapsed:,.0f}/s; p50 {cuts[49] * 1000:.2f} ms, p99 {cuts[98] * 1000:.2f} ms; "
        f"{commits} commits, {operations / max(commits, 1):.1f} per commit"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--total", type=int, default=20_000)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--dsn",
        default=os.environ.get("BRIDGE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    dsn = args.dsn if args.store == "postgres" else None
    with tempfile.TemporaryDirectory() as folder:
        coroutine = run(args.callers, args.total, Path(folder), dsn)
        if args.uvloop:
            import uvloop

            uvloop.run(coroutine)
        else:
            asyncio.run(coroutine)


if __name__ == "__main__":
    main()
