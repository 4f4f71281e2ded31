"""How many ``import-shared`` calls per second the sandbox answers, with no faults set.

The sandbox runs as a real ``bridge sandbox`` process (uvicorn, uvloop, httptools); the load comes
from another process with a lean asyncio HTTP/1.1 keep-alive client (httpx spends more CPU per
request than the server it would measure). A bare Starlette endpoint answering 201 to the same
POSTs, in the same kind of process, is measured in the same run as the baseline. Every import must
answer 201, and the ledger must then hold exactly one redemption per token.

Target: at least 1,000 imports/s.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from multiprocessing.queues import Queue
from typing import Any

import orjson

from bridge.sandbox.control import SandboxControl
from bridge.sandbox.process import start_sandbox_process

TARGET_PER_S = 1000.0
HOST = "127.0.0.1"
IMPORT_PATH = "/v3/session/import-shared/"


def main(argv: Sequence[str] = ()) -> int:
    """Run the benchmark; ``argv`` holds its own options (``python -m bench NAME OPTION ...``)."""
    parser = argparse.ArgumentParser(prog="python -m bench sandbox_imports", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--imports", type=int, default=4000, help="imports per round")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--clients", type=int, default=1, help="load-generator processes")
    args = parser.parse_args(list(argv))
    if min(args.rounds, args.imports, args.connections, args.clients) < 1:
        parser.error("every count must be at least 1")

    spawn = multiprocessing.get_context("spawn")
    port_queue: Queue[int] = spawn.Queue()
    baseline = spawn.Process(target=_serve_baseline, args=(port_queue,), daemon=True)
    baseline.start()
    try:
        baseline_port = port_queue.get(timeout=30)
        with start_sandbox_process(seed=1, extra_args=["--write-limit", "100000000"]) as (
            base_url,
            _,
        ):
            sandbox_port = int(base_url.rsplit(":", 1)[1])
            with SandboxControl(base_url, timeout_s=120) as control:
                ours = control.application("ours")
                acme = control.application("acme")
                kyc = next(w for w in ours["workflows"] if w["kind"] == "KYC")["workflow_id"]
                warmup = args.imports // 4
                tokens = control.bulk_tokens(
                    acme["application_id"],
                    ours["application_id"],
                    warmup + args.rounds * args.imports,
                )
                requests = [_import_request(token, kyc, ours["api_key"]) for token in tokens]
                _measure(spawn, sandbox_port, requests[:warmup], args)  # warm both servers up
                _measure(spawn, baseline_port, requests[:warmup], args)
                sandbox_rates: list[float] = []
                baseline_rates: list[float] = []
                for round_index in range(args.rounds):
                    start = warmup + round_index * args.imports
                    batch = requests[start : start + args.imports]
                    rate, statuses = _measure(spawn, sandbox_port, batch, args)
                    if statuses != {201: len(batch)}:
                        sys.stdout.write(f"sandbox answered {dict(statuses)}, expected only 201\n")
                        return 1
                    sandbox_rates.append(rate)
                    baseline_rates.append(_measure(spawn, baseline_port, batch, args)[0])
                    sys.stdout.write(
                        f"round {round_index + 1}: sandbox {rate:8.0f}/s"
                        f"   baseline {baseline_rates[-1]:8.0f}/s\n"
                    )
                    sys.stdout.flush()
                redemptions = len(control.redemptions())
                doubles = control.double_redemptions()
    finally:
        baseline.terminate()
        baseline.join(timeout=10)

    sandbox_median = statistics.median(sandbox_rates)
    baseline_median = statistics.median(baseline_rates)
    expected = len(requests)
    met = sandbox_median >= TARGET_PER_S
    sys.stdout.write(
        f"imports/s, median of {args.rounds} rounds of {args.imports} "
        f"({args.connections} connections, {args.clients} client process(es)):\n"
        f"  sandbox  {sandbox_median:8.0f}/s\n"
        f"  baseline {baseline_median:8.0f}/s (bare Starlette, 201)\n"
        f"  ratio    {sandbox_median / baseline_median:8.2f}\n"
        f"  ledger   {redemptions} redemptions for {expected} tokens, "
        f"{len(doubles)} double\n"
        f"  target   {TARGET_PER_S:.0f}/s: {'met' if met else 'MISSED'}\n"
    )
    ok = met and redemptions == expected and not doubles
    return 0 if ok else 1


def _import_request(token: str, workflow_id: str, api_key: str) -> bytes:
    body = orjson.dumps(
        {
            "share_token": token,
            "workflow_id": workflow_id,
            "vendor_data": "bench-user",
            "trust_review": False,
        }
    )
    head = (
        f"POST {IMPORT_PATH} HTTP/1.1\r\nhost: {HOST}\r\nx-api-key: {api_key}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _measure(
    spawn: Any, port: int, requests: list[bytes], args: argparse.Namespace
) -> tuple[float, Counter[int]]:
    """Send ``requests`` from ``args.clients`` processes; the rate is the total over the
    slowest client's wall time."""
    shards = [requests[index :: args.clients] for index in range(args.clients)]
    with spawn.Pool(args.clients) as pool:
        results = pool.starmap(_load, [(port, shard, args.connections) for shard in shards])
    statuses: Counter[int] = Counter()
    for _, counted in results:
        statuses.update(counted)
    return len(requests) / max(elapsed for elapsed, _ in results), statuses


def _load(port: int, requests: list[bytes], connections: int) -> tuple[float, Counter[int]]:
    """In a load-generator process: every request once, over keep-alive connections."""
    import uvloop

    return uvloop.run(_drive(port, requests, connections))


async def _drive(port: int, requests: list[bytes], connections: int) -> tuple[float, Counter[int]]:
    pending = iter(requests)
    statuses: Counter[int] = Counter()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for request in pending:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                statuses[int(head[9:12])] += 1
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(min(connections, len(requests)))))
    return time.perf_counter() - started, statuses


def _serve_baseline(port_queue: Queue[int]) -> None:
    """In the baseline process: a bare Starlette POST endpoint answering 201, on uvicorn."""
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    answer = orjson.dumps({"session_id": "11111111-2222-3333-4444-555555555555"})

    async def created(request: Request) -> Response:
        await request.body()
        return Response(answer, 201, media_type="application/json")

    app = Starlette(routes=[Route(IMPORT_PATH, created, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    port_queue.put(sock.getsockname()[1])
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", lifespan="off", access_log=False, log_level="warning"
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
