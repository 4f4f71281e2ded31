"""Memory: resident memory of ``bridge serve`` with 100,000 pending notifications.

A setup step fills a SQLite store through the store API (``Store.accept``, group commit) with
100,000 pending notifications, each with its own ~450-character share token that expires in ten
years. ``bridge serve`` then starts on that file with its Didit ``base_url`` on a closed local
port, so the import worker claims jobs (8 in flight) and keeps failing to reach Didit, retrying
through the durable queue, while the backlog stays whole. Once it holds claimed jobs and has
answered ``/metrics`` (which counts the store), its ``VmRSS`` (and the peak, ``VmHWM``) is read
from ``/proc/PID/status``. The baseline, measured in the same run, is an idle ``bridge serve``
on an empty store. Rounds restart both processes; the figures are medians.

Target: under 200 MB resident with 100,000 pending.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench._bridge_harness import (
    HOST,
    PARTNER,
    bridge_config,
    bridge_serve,
    free_port,
    memory_kb,
    note,
    share_token,
)
from bridge.store import NewNotification, open_store
from bridge.types import Route, SessionKind
from tests.support.read_only import read_rows
from tests.support.waiting import wait_until

TARGET_MB = 200.0
SETTLE_S = 3.0
ROUTE = Route(
    rule="all",
    workflow_id="3c5b9a2e-0000-4000-8000-000000000001",
    vendor_data="hooli:cust",
    trust_review=False,
    destinations=(),
)


def main(argv: Sequence[str] = ()) -> int:
    """Run the benchmark; ``argv`` holds its own options (``python -m bench NAME OPTION ...``)."""
    parser = argparse.ArgumentParser(prog="python -m bench memory", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument(
        "--settle-s", type=float, default=SETTLE_S, help="wait before reading the memory"
    )
    args = parser.parse_args(list(argv))

    loaded: list[dict[str, int]] = []
    idle: list[dict[str, int]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-memory-full-") as full,
        tempfile.TemporaryDirectory(prefix="bench-memory-empty-") as empty,
    ):
        started = time.perf_counter()
        asyncio.run(_fill(Path(full) / "bridge.db", args.pending))
        note(
            f"setup: {args.pending} pending notifications in {time.perf_counter() - started:.1f} s"
        )
        for number in range(1, args.rounds + 1):
            idle.append(_measure(Path(empty), busy=False, settle_s=args.settle_s))
            loaded.append(_measure(Path(full), busy=True, settle_s=args.settle_s))
            note(
                f"round {number}: idle {idle[-1]['VmRSS'] / 1024:.1f} MB, with "
                f"{args.pending} pending {loaded[-1]['VmRSS'] / 1024:.1f} MB "
                f"(peak {loaded[-1]['VmHWM'] / 1024:.1f} MB, {loaded[-1]['running']} jobs "
                f"claimed, {loaded[-1]['pending']} pending)"
            )
    rss = statistics.median(m["VmRSS"] for m in loaded) / 1024
    peak = statistics.median(m["VmHWM"] for m in loaded) / 1024
    baseline = statistics.median(m["VmRSS"] for m in idle) / 1024
    whole = all(m["pending"] == args.pending for m in loaded)
    met = rss < TARGET_MB and peak < TARGET_MB and whole
    note(
        f"resident memory of bridge serve, median of {args.rounds} rounds:\n"
        f"  with {args.pending} pending {rss:7.1f} MB (peak {peak:.1f} MB)\n"
        f"  baseline      {baseline:7.1f} MB (idle, empty store)\n"
        f"  ratio         {rss / baseline:7.2f}\n"
        f"  target        < {TARGET_MB:.0f} MB: {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


async def _fill(db_path: Path, count: int, chunk: int = 2000) -> None:
    store = open_store(f"sqlite:///{db_path}", clock=time.time)
    exp = int(time.time()) + 10 * 365 * 86400
    try:
        for start in range(0, count, chunk):
            await asyncio.gather(
                *(
                    store.accept(_notification(n, exp))
                    for n in range(start, min(start + chunk, count))
                )
            )
    finally:
        await store.close()


def _notification(number: int, exp: int) -> NewNotification:
    token = share_token(exp=exp)
    return NewNotification(
        partner=PARTNER,
        partner_event_id=f"evt-{number}",
        message_id=None,
        business_key=f"bench:{number}",
        token=token,
        token_sha256=f"{number:064x}",
        session_kind=SessionKind.USER,
        source_application_id="bench",
        source_session_id=str(number),
        deadline=exp - 10.0,
        route=ROUTE,
    )


def _measure(directory: Path, *, busy: bool, settle_s: float) -> dict[str, int]:
    port = free_port()
    config = bridge_config(
        directory,
        port=port,
        didit_base_url=f"http://{HOST}:{free_port()}",  # nothing listens: imports keep failing
        rate_limit_per_minute=6000,
        max_in_flight=8,
        timeout_s=1.0,
    )
    with bridge_serve(config, port) as bridge:
        if busy:
            wait_until(
                lambda: _count(bridge.db_path, "jobs WHERE status = 'running'"),
                "bridge serve to claim a job",
                timeout_s=30,
                poll_s=0.1,
            )
        with httpx.Client(timeout=30) as client:
            client.get(f"{bridge.base_url}/metrics").raise_for_status()
        time.sleep(settle_s)
        found = memory_kb(bridge.pid)
        found["running"] = _count(bridge.db_path, "jobs WHERE status = 'running'")
        found["pending"] = _count(bridge.db_path, "notifications WHERE status = 'pending'")
    return found


def _count(db_path: Path, where: str) -> int:
    rows = read_rows(db_path, f"SELECT count(*) FROM {where}")  # noqa: S608
    return int(rows[0][0]) if rows else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
