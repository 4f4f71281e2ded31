"""Metrics: what one ``/metrics`` scrape costs the store when it holds a long history.

A SQLite store is filled with ``--rows`` final notifications (default 200,000), each with an
event delivered to two destinations (1 % of the deliveries dead), plus 50 pending notifications
and one disabled destination. Then, alternating, it times the store reads of a scrape:

- baseline: the full counts a scrape used to run (``Store.stats()`` and
  ``Store.destination_states()``);
- gauges: ``Store.queue_gauges()``, what ``/metrics`` reads now.

Both give the same four gauges (checked). Medians of ``--scrapes`` each. Target: the gauges
read at least 20 times faster than the baseline on this store.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bridge.app.metrics import store_snapshot
from bridge.store import Store, open_store

TARGET_SPEEDUP = 20.0
PENDING = 50


def fill(path: Path, rows: int) -> None:
    """Write the history with plain INSERTs into the store's own schema (fast to build)."""
    now = time.time() - 86_400
    connection = sqlite3.connect(path)
    with connection:
        connection.executemany(
            "INSERT INTO notifications (id, partner, business_key, token_sha256, session_kind,"
            " rule, workflow_id, vendor_data, trust_review, destinations, status, received_at,"
            " finished_at, updated_at) VALUES (?, 'acme', ?, 'h', 'user', 'kyc', 'w', 'v', 0,"
            ' \'["a","b"]\', ?, ?, ?, ?)',
            (
                (
                    f"ntf_{i:012d}",
                    f"k{i}",
                    "pending" if i >= rows else "imported",
                    now + i * 0.001,
                    None if i >= rows else now + i * 0.001,
                    now,
                )
                for i in range(rows + PENDING)
            ),
        )
        connection.executemany(
            "INSERT INTO events (id, notification_id, type, body, created_at)"
            " VALUES (?, ?, 'share.imported', x'7b7d', ?)",
            ((f"evt_{i:012d}", f"ntf_{i:012d}", now) for i in range(rows)),
        )
        connection.executemany(
            "INSERT INTO deliveries (id, event_id, destination, status, attempts, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
            (
                (
                    f"dlv_{i:012d}{destination}",
                    f"evt_{i:012d}",
                    destination,
                    "dead" if i % 100 == 0 else "delivered",
                    now,
                    now,
                )
                for i in range(rows)
                for destination in ("a", "b")
            ),
        )
        connection.execute(
            "INSERT INTO destination_states (name, enabled, changed_at, reason)"
            " VALUES ('b', 0, ?, 'bench')",
            (now,),
        )
    connection.close()


async def baseline_snapshot(store: Store) -> dict[str, float]:
    """The four gauges as a scrape computed them before ``queue_gauges``."""
    stats = await store.stats()
    states = await store.destination_states()
    return {
        "queue_depth": float(stats.notifications.get("pending", 0)),
        "oldest_pending_age_seconds": stats.oldest_pending_age_s or 0.0,
        "dead_deliveries": float(stats.deliveries.get("dead", 0)),
        "disabled_destinations": float(sum(not state.enabled for state in states)),
    }


async def timed(read: Callable[[], Awaitable[dict[str, float]]]) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    gauges = await read()
    return time.perf_counter() - started, gauges


async def measure(path: Path, scrapes: int) -> tuple[list[float], list[float]]:
    store = open_store(f"sqlite:///{path}", clock=time.time)
    try:
        before: list[float] = []
        after: list[float] = []
        for _ in range(scrapes):
            seconds, old = await timed(lambda: baseline_snapshot(store))
            before.append(seconds)
            seconds, new = await timed(lambda: store_snapshot(store))
            after.append(seconds)
            ages = old.pop("oldest_pending_age_seconds"), new.pop("oldest_pending_age_seconds")
            assert old == new, (old, new)
            assert abs(ages[0] - ages[1]) < 5, ages
        return before, after
    finally:
        await store.close()


def main(argv: Sequence[str] = ()) -> int:
    """Run the benchmark; ``argv`` holds its own options (``python -m bench NAME OPTION ...``)."""
    parser = argparse.ArgumentParser(prog="python -m bench metrics", description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--scrapes", type=int, default=15)
    args = parser.parse_args(list(argv))
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as directory:
        path = Path(directory) / "bridge.db"
        asyncio.run(open_store(f"sqlite:///{path}", clock=time.time).close())  # the schema
        fill(path, args.rows)
        before, after = asyncio.run(measure(path, args.scrapes))
    old, new = statistics.median(before) * 1000, statistics.median(after) * 1000
    speedup = old / new if new else float("inf")
    print(
        f"metrics: {args.rows} final notifications, {2 * args.rows} deliveries, "
        f"{args.scrapes} scrapes each: full counts median {old:.2f} ms, "
        f"queue_gauges median {new:.3f} ms, ratio {speedup:.0f}x (target >= {TARGET_SPEEDUP:.0f}x)"
    )
    return 0 if speedup >= TARGET_SPEEDUP else 1
