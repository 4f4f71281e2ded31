"""Intake: durable 202s per second at 64 connections, ``bridge serve`` on one core.

``bridge serve`` runs as a real process pinned to core 0 (``taskset -c 0``), on a fresh SQLite
file (WAL, ``synchronous=FULL``: every 202 is fsync'd). The baseline, measured in the same run
on the same core, is a bare Starlette endpoint on uvicorn (uvloop, httptools) that reads the
body, parses the same JSON with orjson and answers 202. The load comes from a separate process
pinned to core 1: a raw asyncio HTTP/1.1 keep-alive client over 64 connections, each request a
~1 KB partner body with its own share token (so none is a duplicate), authenticated by the
api-key scheme. Rounds alternate bridge, baseline and floor; the figures are medians.

The floor (``bench/_intake_servers.py``) is a durable intake with nothing else: a raw ASGI
endpoint handing each body to the bridge's own SQLite store, with no checks and no request
line. The bridge can only be slower, so the floor's ratio is the most the bridge could reach on
this machine with this store and server.

The import worker must not take CPU from intake during the measurement: the bridge's Didit
``base_url`` is a closed local port and its pace is 1 import a minute (1 in flight), so the
worker holds one job, waiting for the pacer, while the backlog grows.

With ``--telemetry`` a second ``bridge serve`` (same core) traces every notification
(``telemetry: {sample_ratio: 1.0}``) to an OTLP/HTTP endpoint in this process that accepts and
drops each export; its rounds alternate with the others as ``traced``.

With ``--against REV`` a third ``bridge serve`` (same core, same config) runs the repository's
code at git revision ``REV`` (``git archive``, this environment's packages): a before/after of a
change in one run; its rounds alternate with the others as ``before``.

Targets: ratio at least 0.5, bridge p99 under 25 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from bench._bridge_harness import (
    HOST,
    LoadResult,
    bridge_config,
    bridge_serve,
    fmt,
    free_port,
    intake_requests,
    note,
    run_load,
    source_tree,
)
from bench._intake_servers import serve_baseline, serve_floor
from tests.support.read_only import read_rows

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
    parser.add_argument(
        "--warmup", type=int, default=None, help="requests per server before the rounds"
    )
    parser.add_argument(
        "--telemetry", action="store_true", help="also a bridge exporting a trace per request"
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        default=None,
        help="also a bridge running the code of git revision REV (a before/after in one run)",
    )
    args = parser.parse_args(list(argv))

    spawn = multiprocessing.get_context("spawn")
    references = {"baseline": serve_baseline, "floor": serve_floor}
    processes: dict[str, multiprocessing.process.BaseProcess] = {}
    ports: dict[str, int] = {}
    rounds: dict[str, list[LoadResult]] = {"bridge": [], "baseline": [], "floor": []}
    try:
        for name, serve in references.items():
            port_queue: Queue[int] = spawn.Queue()
            processes[name] = spawn.Process(
                target=serve, args=(port_queue, SERVER_CPU), daemon=True
            )
            processes[name].start()
            ports[name] = port_queue.get(timeout=30)
        with tempfile.TemporaryDirectory(prefix="bench-intake-") as folder:
            port = free_port()
            config = bridge_config(
                Path(folder),
                port=port,
                didit_base_url=f"http://{HOST}:{free_port()}",  # nothing listens there
                log_level=args.log_level,
            )
            with contextlib.ExitStack() as stack:
                bridge = stack.enter_context(bridge_serve(config, port, cpu=SERVER_CPU))
                ports["bridge"] = bridge.port
                extras: dict[str, dict[str, Any]] = {}
                if args.telemetry:
                    extras["traced"] = {"otlp_endpoint": stack.enter_context(_otlp_sink())}
                if args.against is not None:
                    extras["before"] = {"source": stack.enter_context(source_tree(args.against))}
                for name, options in extras.items():
                    ports[name] = _another_bridge(stack, Path(folder) / name, args, **options)
                    rounds[name] = []
                warmup = max(args.requests // 5, 1000) if args.warmup is None else args.warmup
                for name in rounds:
                    _round(ports[name], warmup, args.connections)
                for number in range(1, args.rounds + 1):
                    for name, results in rounds.items():
                        results.append(_round(ports[name], args.requests, args.connections))
                    note(
                        f"round {number}: "
                        + "   ".join(
                            f"{name} {fmt(results[-1].per_s)}/s p99 {results[-1].p99_ms:.1f} ms "
                            f"(client cpu {results[-1].client_cpu:.2f})"
                            for name, results in rounds.items()
                        )
                    )
                stored = _count_notifications(bridge.db_path)
    finally:
        for process in processes.values():
            process.terminate()
            process.join(timeout=10)

    bridge_rounds = rounds["bridge"]
    accepted = warmup + sum(r.statuses.get(202, 0) for r in bridge_rounds)
    refused = {s: n for r in bridge_rounds for s, n in r.statuses.items() if s != 202}
    other = {
        name: {s: n for r in rounds[name] for s, n in r.statuses.items() if s != 202}
        for name in references
    }
    rate = {name: statistics.median(r.per_s for r in results) for name, results in rounds.items()}
    p50 = {name: statistics.median(r.p50_ms for r in results) for name, results in rounds.items()}
    p99 = {name: statistics.median(r.p99_ms for r in results) for name, results in rounds.items()}
    ratio = rate["bridge"] / rate["baseline"]
    met = ratio >= TARGET_RATIO and p99["bridge"] < TARGET_P99_MS
    described = {
        "bridge": "bridge serve",
        "baseline": "bare Starlette, 202",
        "floor": "raw ASGI + the store's durable accept, no checks, no log line",
        "traced": "bridge serve, a trace per notification exported by OTLP/HTTP",
        "before": f"bridge serve at {args.against}",
    }
    note(
        f"durable 202s/s, median of {args.rounds} rounds of {args.requests} "
        f"({args.connections} connections; servers on core {SERVER_CPU}, "
        f"load on core {CLIENT_CPU}):\n"
        + "".join(
            f"  {name:<9}{fmt(rate[name]):>8}/s  p50 {p50[name]:.1f} ms  p99 {p99[name]:.1f} ms"
            f"  ratio {rate[name] / rate['baseline']:.2f}  ({described[name]})\n"
            for name in rounds
        )
        + f"  stored   {stored} notifications for {accepted} 202s; other answers {refused}"
        f"{'' if not any(other.values()) else f'; references: {other}'}\n"
        f"  target   ratio >= {TARGET_RATIO}, p99 < {TARGET_P99_MS:.0f} ms: "
        f"{'met' if met else 'MISSED'}"
    )
    return 0 if met and stored == accepted and not refused else 1


@contextlib.contextmanager
def _otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint that answers 200 to every export and keeps nothing; its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((HOST, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _another_bridge(
    stack: contextlib.ExitStack,
    directory: Path,
    args: argparse.Namespace,
    *,
    otlp_endpoint: str | None = None,
    source: Path | None = None,
) -> int:
    """A second ``bridge serve`` on the servers' core, until ``stack`` closes; its port."""
    directory.mkdir()
    port = free_port()
    config = bridge_config(
        directory,
        port=port,
        didit_base_url=f"http://{HOST}:{free_port()}",
        log_level=args.log_level,
        otlp_endpoint=otlp_endpoint,
    )
    stack.enter_context(bridge_serve(config, port, cpu=SERVER_CPU, source=source))
    return port


def _round(port: int, count: int, connections: int) -> LoadResult:
    return run_load(port, intake_requests, count, connections, CLIENT_CPU)


def _count_notifications(db_path: Path) -> int:
    rows = read_rows(db_path, "SELECT count(*) FROM notifications")
    return int(rows[0][0]) if rows else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
