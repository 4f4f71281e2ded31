"""Intake: durable 202s per second at 64 connections, ``bridge serve`` on one core.

``bridge serve`` runs as a real process pinned to core 0 (``taskset -c 0``), on a fresh SQLite
file (WAL, ``synchronous=FULL``: every 202 is fsync'd). The baseline, measured in the same run
on the same core, is a bare Starlette endpoint on uvicorn (uvloop, httptools) that reads the
body, parses the same JSON with orjson and answers 202. The load comes from a separate process
pinned to core 1: a raw asyncio HTTP/1.1 keep-alive client over 64 connections, each request a
~1 KB partner body with its own share token (so none is a duplicate), authenticated by the
api-key scheme. Rounds alternate bridge and baseline; the figures are medians.

The import worker must not take CPU from intake during the measurement: the bridge's Didit
``base_url`` is a closed local port and its pace is 1 import a minute (1 in flight), so the
worker holds one job, waiting for the pacer, while the backlog grows.

Targets: ratio at least 0.5, bridge p99 under 25 ms.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import Sequence
from multiprocessing.queues import Queue
from pathlib import Path

import orjson

from bench._bridge_harness import (
    HOST,
    INTAKE_PATH,
    LoadResult,
    bridge_config,
    bridge_serve,
    fmt,
    free_port,
    intake_requests,
    note,
    pin,
    run_load,
)

TARGET_RATIO = 0.5
TARGET_P99_MS = 25.0
SERVER_CPU = 0
CLIENT_CPU = 1


def main(argv: Sequence[str] = ()) -> int:
    """Run the benchmark; ``argv`` holds its own options (``python -m bench NAME OPTION ...``)."""
    parser = argparse.ArgumentParser(prog="python -m bench intake", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--log-level", default="info", help="the bridge's logging level")
    args = parser.parse_args(list(argv))

    spawn = multiprocessing.get_context("spawn")
    port_queue: Queue[int] = spawn.Queue()
    baseline = spawn.Process(target=_serve_baseline, args=(port_queue,), daemon=True)
    baseline.start()
    bridge_rounds: list[LoadResult] = []
    baseline_rounds: list[LoadResult] = []
    try:
        baseline_port = port_queue.get(timeout=30)
        with tempfile.TemporaryDirectory(prefix="bench-intake-") as folder:
            port = free_port()
            config = bridge_config(
                Path(folder),
                port=port,
                didit_base_url=f"http://{HOST}:{free_port()}",  # nothing listens there
                log_level=args.log_level,
            )
            with bridge_serve(config, port, cpu=SERVER_CPU) as bridge:
                warmup = max(args.requests // 5, 1000)
                for target in (bridge.port, baseline_port):
                    _round(target, warmup, args.connections)
                for number in range(1, args.rounds + 1):
                    bridge_rounds.append(_round(bridge.port, args.requests, args.connections))
                    baseline_rounds.append(_round(baseline_port, args.requests, args.connections))
                    b, s = bridge_rounds[-1], baseline_rounds[-1]
                    note(
                        f"round {number}: bridge {fmt(b.per_s)}/s p99 {b.p99_ms:.1f} ms "
                        f"(client cpu {b.client_cpu:.2f})   baseline {fmt(s.per_s)}/s "
                        f"p99 {s.p99_ms:.1f} ms (client cpu {s.client_cpu:.2f})"
                    )
            stored = _count_notifications(bridge.db_path)
    finally:
        baseline.terminate()
        baseline.join(timeout=10)

    accepted = warmup + sum(r.statuses.get(202, 0) for r in bridge_rounds)
    refused = {s: n for r in bridge_rounds for s, n in r.statuses.items() if s != 202}
    bridge_rate = statistics.median(r.per_s for r in bridge_rounds)
    baseline_rate = statistics.median(r.per_s for r in baseline_rounds)
    p99 = statistics.median(r.p99_ms for r in bridge_rounds)
    ratio = bridge_rate / baseline_rate
    met = ratio >= TARGET_RATIO and p99 < TARGET_P99_MS
    note(
        f"durable 202s/s, median of {args.rounds} rounds of {args.requests} "
        f"({args.connections} connections; servers on core {SERVER_CPU}, "
        f"load on core {CLIENT_CPU}):\n"
        f"  bridge   {fmt(bridge_rate):>8}/s  p50 "
        f"{statistics.median(r.p50_ms for r in bridge_rounds):.1f} ms  p99 {p99:.1f} ms\n"
        f"  baseline {fmt(baseline_rate):>8}/s  p50 "
        f"{statistics.median(r.p50_ms for r in baseline_rounds):.1f} ms  p99 "
        f"{statistics.median(r.p99_ms for r in baseline_rounds):.1f} ms (bare Starlette, 202)\n"
        f"  ratio    {ratio:8.2f}\n"
        f"  stored   {stored} notifications for {accepted} 202s; other answers {refused}\n"
        f"  target   ratio >= {TARGET_RATIO}, p99 < {TARGET_P99_MS:.0f} ms: "
        f"{'met' if met else 'MISSED'}"
    )
    return 0 if met and stored == accepted and not refused else 1


def _round(port: int, count: int, connections: int) -> LoadResult:
    return run_load(port, intake_requests, count, connections, CLIENT_CPU)


def _count_notifications(db_path: Path) -> int:
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        count: int = connection.execute("SELECT count(*) FROM notifications").fetchone()[0]
    finally:
        connection.close()
    return count


def _serve_baseline(port_queue: Queue[int]) -> None:
    """In the baseline process, on core 0: a bare Starlette endpoint parsing the JSON, 202."""
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    pin(SERVER_CPU)

    async def accept(request: Request) -> Response:
        payload = orjson.loads(await request.body())
        answer = {"id": f"ntf_{len(payload)}", "status": "accepted"}
        return Response(orjson.dumps(answer), 202, media_type="application/json")

    app = Starlette(routes=[Route(INTAKE_PATH, accept, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    port_queue.put(sock.getsockname()[1])
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", lifespan="off", access_log=False, log_level="warning"
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
