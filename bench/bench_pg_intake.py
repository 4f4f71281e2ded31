"""Intake on PostgreSQL: durable 202s per second at 64 connections, one and two replicas.

Three set-ups of ``bridge serve``, each a real process pinned to core 0 (``taskset -c 0``),
measured in turns in one run:

- ``sqlite``: one bridge on a fresh SQLite file (WAL, ``synchronous=FULL``), the baseline;
- ``pg-1``: one bridge on a fresh PostgreSQL schema (``$BRIDGE_TEST_PG_DSN``'s database);
- ``pg-2``: two bridges on one other fresh schema, the 64 connections dealt out between them.

Every 202 is durable on either store: SQLite fsyncs each group commit, PostgreSQL commits each
group in one transaction (``synchronous_commit`` as the server has it, ``on`` by default). The
load comes from a separate process pinned to core 1 (the client of ``bench intake``); each
request a ~1 KB partner body with its own share token. PostgreSQL's server is not pinned: it
runs where the kernel puts it, as it would on a host of its own. The import workers stay out of
the way as in ``bench intake`` (a closed Didit port, 1 import a minute, 1 in flight). Rounds
alternate the set-ups; the figures are medians; the schemas are dropped at the end.

Targets: one replica on PostgreSQL at least 0.5 of SQLite's 202s/s, its p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import _pg
from bench._bridge_harness import (
    HOST,
    LoadResult,
    bridge_config,
    bridge_serve,
    cpu_seconds,
    fmt,
    free_port,
    intake_requests,
    note,
    run_load,
)
from tests.support.read_only import read_rows

TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
SERVER_CPU = 0
CLIENT_CPU = 1
SETUPS = {"sqlite": 0, "pg-1": 1, "pg-2": 2}  # name -> PostgreSQL replicas (0: SQLite)


def main(argv: Sequence[str] = ()) -> int:
    """Run the benchmark; ``argv`` holds its own options (``python -m bench NAME OPTION ...``)."""
    parser = argparse.ArgumentParser(prog="python -m bench pg_intake", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10_000, help="requests per round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--log-level", default="info", help="the bridges' logging level")
    parser.add_argument(
        "--warmup", type=int, default=None, help="requests per set-up before the rounds"
    )
    args = parser.parse_args(list(argv))

    rounds: dict[str, list[LoadResult]] = {name: [] for name in SETUPS}
    cpu_us: dict[str, list[float]] = {name: [] for name in SETUPS}  # the bridges' CPU a request
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pg-intake-")))
        ports: dict[str, list[int]] = {}
        pids: dict[str, list[int]] = {}
        schemas: dict[str, str] = {}
        for name, replicas in SETUPS.items():
            store = None
            if replicas:
                schemas[name] = stack.enter_context(_pg.fresh_schema("bench_intake"))
                store = _pg.store_section(schemas[name], _pg.token_key())
            ports[name], pids[name] = [], []
            for replica in range(max(replicas, 1)):
                directory = folder / f"{name}-{replica}"
                directory.mkdir()
                port = free_port()
                config = bridge_config(
                    directory,
                    port=port,
                    didit_base_url=f"http://{HOST}:{free_port()}",  # nothing listens there
                    log_level=args.log_level,
                    store=store,
                )
                bridge = stack.enter_context(bridge_serve(config, port, cpu=SERVER_CPU))
                ports[name].append(port)
                pids[name].append(bridge.pid)
        warmup = max(args.requests // 5, 1000) if args.warmup is None else args.warmup
        for name in SETUPS:
            _round(ports[name], warmup, args.connections)
        for number in range(1, args.rounds + 1):
            for name, results in rounds.items():
                before = sum(cpu_seconds(pid) for pid in pids[name])
                results.append(_round(ports[name], args.requests, args.connections))
                used = sum(cpu_seconds(pid) for pid in pids[name]) - before
                cpu_us[name].append(1e6 * used / max(results[-1].requests, 1))
            note(
                f"round {number}: "
                + "   ".join(
                    f"{name} {fmt(results[-1].per_s)}/s p99 {results[-1].p99_ms:.1f} ms "
                    f"cpu {cpu_us[name][-1]:.0f} µs"
                    for name, results in rounds.items()
                )
                + f" (client cpu {max(r[-1].client_cpu for r in rounds.values()):.2f} at most)"
            )
        stored = {name: _pg_count(schema) for name, schema in schemas.items()}
        stored["sqlite"] = _sqlite_count(folder / "sqlite-0" / "bridge.db")

    accepted = {name: warmup + sum(r.statuses.get(202, 0) for r in rounds[name]) for name in SETUPS}
    other = {
        name: {s: n for r in results for s, n in r.statuses.items() if s != 202}
        for name, results in rounds.items()
    }
    rate = {name: statistics.median(r.per_s for r in results) for name, results in rounds.items()}
    p50 = {name: statistics.median(r.p50_ms for r in results) for name, results in rounds.items()}
    p99 = {name: statistics.median(r.p99_ms for r in results) for name, results in rounds.items()}
    ratio = {name: rate[name] / rate["sqlite"] for name in SETUPS}
    met = ratio["pg-1"] >= TARGET_RATIO and p99["pg-1"] < TARGET_P99_MS
    described = {
        "sqlite": "one bridge on SQLite (the baseline)",
        "pg-1": "one bridge on PostgreSQL",
        "pg-2": "two bridges on one PostgreSQL schema",
    }
    note(
        f"durable 202s/s, median of {args.rounds} rounds of {args.requests} "
        f"({args.connections} connections; bridges on core {SERVER_CPU}, "
        f"load on core {CLIENT_CPU}; cpu: the bridges' CPU time a request):\n"
        + "".join(
            f"  {name:<7}{fmt(rate[name]):>8}/s  p50 {p50[name]:.1f} ms  p99 {p99[name]:.1f} ms"
            f"  cpu {statistics.median(cpu_us[name]):.0f} µs  ratio {ratio[name]:.2f}  "
            f"({described[name]}; stored {stored[name]} for {accepted[name]} 202s)\n"
            for name in SETUPS
        )
        + (f"  other answers {other}\n" if any(other.values()) else "")
        + f"  target   pg-1 ratio >= {TARGET_RATIO}, pg-1 p99 < {TARGET_P99_MS:.0f} ms: "
        f"{'met' if met else 'MISSED'}"
    )
    complete = stored == accepted and not any(other.values())
    return 0 if met and complete else 1


def _round(ports: list[int], count: int, connections: int) -> LoadResult:
    return run_load(ports, intake_requests, count, connections, CLIENT_CPU)


def _pg_count(schema: str) -> int:
    return int(_pg.query(schema, "SELECT count(*) FROM notifications")[0][0])


def _sqlite_count(db_path: Path) -> int:
    rows = read_rows(db_path, "SELECT count(*) FROM notifications")
    return int(rows[0][0]) if rows else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
