"""What the intake, drain and memory benchmarks share: ``bridge serve`` as a real process (pinned
to a core when asked), share tokens and partner bodies, a lean load generator, and ``/proc``.

The load generator is a raw asyncio HTTP/1.1 keep-alive client (httpx spends more CPU per request
than the servers it would measure) run in its own process, pinned to its own core, so it does not
compete with the server it measures. It reports how busy it was, to show it was not the limit.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml

from tests.support.bridge_process import wait_healthy

HOST = "127.0.0.1"
INTAKE_PATH = "/v1/partners/{partner}/shares"
#: The api-key scheme: a fixed header, so the load generator signs nothing per request.
PARTNER = "hooli"
PARTNER_KEY = "bench-partner-key-0123456789abcdef"
OUR_APPLICATION_ID = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
PARTNER_APPLICATION_ID = "0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9"
WORKFLOW_ID = "3c5b9a2e-0000-4000-8000-000000000001"
CPU_COUNT = len(os.sched_getaffinity(0))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def pin(cpu: int | None) -> None:
    """Run this process (and the threads it starts from now on) on ``cpu`` only."""
    if cpu is not None and cpu < CPU_COUNT:
        os.sched_setaffinity(0, {cpu})


def pinned(command: Sequence[str], cpu: int | None) -> list[str]:
    """``command`` under ``taskset -c cpu`` when there is one (every thread inherits it)."""
    taskset = shutil.which("taskset")
    if cpu is None or cpu >= CPU_COUNT or taskset is None:
        return list(command)
    return [taskset, "-c", str(cpu), *command]


# -- tokens and bodies --------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_JWT_HEADER = _b64(b'{"alg":"HS256","typ":"JWT"}')


def share_token(*, exp: int, session_id: str | None = None) -> str:
    """A well-formed share token for our application; intake reads it, never verifies it."""
    claims = {
        "session_id": session_id or str(uuid.uuid4()),
        "from_application_id": PARTNER_APPLICATION_ID,
        "for_application_id": OUR_APPLICATION_ID,
        "session_kind": "user",
        "iat": int(time.time()),
        "exp": exp,
        "jti": uuid.uuid4().hex,
    }
    return f"{_JWT_HEADER}.{_b64(orjson.dumps(claims))}.{_b64(os.urandom(32))}"


def partner_body(number: int, token: str) -> bytes:
    """About 1 KB of partner JSON, the size of a typical partner notification."""
    return orjson.dumps(
        {
            "share_token": token,
            "event_id": f"evt-{number}",
            "customer": {"id": f"cust-{number}", "email": f"person{number}@example.com"},
            "region": "EU",
            "note": "x" * 420,
        }
    )


def intake_request(body: bytes, *, partner: str = PARTNER) -> bytes:
    head = (
        f"POST {INTAKE_PATH.format(partner=partner)} HTTP/1.1\r\nhost: {HOST}\r\n"
        f"x-api-key: {PARTNER_KEY}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def intake_requests(count: int, *, ttl_s: int = 10 * 365 * 86400) -> list[bytes]:
    exp = int(time.time()) + ttl_s
    return [intake_request(partner_body(n, share_token(exp=exp))) for n in range(count)]


# -- bridge serve -------------------------------------------------------------------------


def bridge_config(
    directory: Path,
    *,
    port: int,
    didit_base_url: str,
    didit_api_key: str = "bench-didit-key",
    application_id: str = OUR_APPLICATION_ID,
    workflow_id: str = WORKFLOW_ID,
    rate_limit_per_minute: int = 1,
    max_in_flight: int = 1,
    timeout_s: float = 5.0,
    log_level: str = "info",
    otlp_endpoint: str | None = None,
    store: Mapping[str, object] | None = None,
) -> Path:
    """Write a config with one api-key partner and one catch-all rule (and, with an
    ``otlp_endpoint``, traces of every notification sent there); its path. ``store`` replaces
    the store section (default: SQLite at ``directory / 'bridge.db'``)."""
    document = {
        "didit": {
            "base_url": didit_base_url,
            "api_key": didit_api_key,
            "application_id": application_id,
            "timeout_s": timeout_s,
            "rate_limit_per_minute": rate_limit_per_minute,
            "max_in_flight": max_in_flight,
        },
        "store": dict(store)
        if store is not None
        else {"url": f"sqlite:///{directory / 'bridge.db'}"},
        "server": {"host": HOST, "port": port, "max_body_bytes": 65536},
        "partners": {
            PARTNER: {"auth": {"scheme": "api-key", "header": "X-Api-Key", "keys": [PARTNER_KEY]}}
        },
        "rules": [
            {
                "name": "all",
                "then": {
                    "workflow_id": workflow_id,
                    "vendor_data": "{partner}:{payload.customer.id}",
                },
            }
        ],
        "logging": {"level": log_level, "format": "json"},
    }
    if otlp_endpoint is not None:
        document["telemetry"] = {"otlp_endpoint": otlp_endpoint, "sample_ratio": 1.0}
    path = directory / "bridge.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    port: int
    db_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"


@contextlib.contextmanager
def bridge_serve(
    config: Path,
    port: int,
    *,
    cpu: int | None = None,
    log: Path | None = None,
    source: Path | None = None,
) -> Iterator[ServeProcess]:
    """``bridge serve`` with ``config`` until the block ends (SIGTERM, then SIGKILL); with
    ``source``, the ``bridge`` package of that source tree instead of the installed one."""
    command = pinned([sys.executable, "-m", "bridge", "serve", "--config", str(config)], cpu)
    environment = None if source is None else {**os.environ, "PYTHONPATH": str(source)}
    output = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=environment
        )
    finally:
        if log is not None:
            output.close()  # type: ignore[union-attr]
    serve = ServeProcess(process, port, config.parent / "bridge.db")
    try:
        wait_healthy(serve.process, serve.base_url, lambda: _tail(log), timeout_s=60.0)
        yield serve
    finally:
        stop(process)


@contextlib.contextmanager
def source_tree(revision: str) -> Iterator[Path]:
    """The repository's tree at ``revision`` (``git archive``) in a temporary folder, for a
    before/after run of the same benchmark on one machine."""
    root = Path(__file__).parents[1]
    with tempfile.TemporaryDirectory(prefix="bench-source-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", "--format=tar", revision],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        yield Path(folder)


def _tail(log: Path | None) -> str:
    return log.read_text(errors="replace")[-3000:] if log is not None else ""


def stop(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def memory_kb(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak) of a process, in KiB, from ``/proc/PID/status``."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used so far, all its threads together."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the load generator -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    elapsed_s: float
    statuses: dict[int, int]
    p50_ms: float
    p99_ms: float
    client_cpu: float  # CPU seconds the load process used / wall seconds: 1.0 = saturated

    @property
    def per_s(self) -> float:
        return self.requests / self.elapsed_s


def run_load(
    port: int | Sequence[int],
    make_requests: Callable[[int], list[bytes]],
    count: int,
    connections: int,
    cpu: int,
) -> LoadResult:
    """Build ``make_requests(count)`` and send them in a fresh process pinned to ``cpu``. With
    several ports (replicas) the connections are dealt out among them in turn."""
    ports = [port] if isinstance(port, int) else list(port)
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1) as pool:
        result: LoadResult = pool.apply(_load, (ports, make_requests, count, connections, cpu))
    return result


def _load(
    ports: list[int],
    make_requests: Callable[[int], list[bytes]],
    count: int,
    connections: int,
    cpu: int,
) -> LoadResult:
    import uvloop

    pin(cpu)
    requests = make_requests(count)
    return uvloop.run(_drive(ports, requests, connections))


async def _drive(ports: list[int], requests: list[bytes], connections: int) -> LoadResult:
    pending = iter(requests)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    clock = time.perf_counter

    async def connection(port: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for request in pending:
                sent = clock()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(clock() - sent)
                statuses[int(head[9:12])] += 1
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    cpu_before = time.process_time()
    started = clock()
    opened = min(connections, len(requests))
    await asyncio.gather(*(connection(ports[n % len(ports)]) for n in range(opened)))
    elapsed = clock() - started
    busy = (time.process_time() - cpu_before) / elapsed
    cuts = statistics.quantiles(latencies, n=100)
    return LoadResult(
        requests=len(latencies),
        elapsed_s=elapsed,
        statuses=dict(statuses),
        p50_ms=cuts[49] * 1000,
        p99_ms=cuts[98] * 1000,
        client_cpu=busy,
    )


def note(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def fmt(value: float) -> str:
    return f"{value:,.0f}"
