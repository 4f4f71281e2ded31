"""The two reference servers of the intake benchmark, each run in its own process on a core.

- ``serve_baseline``: the target's yardstick, a bare Starlette endpoint that reads the body,
  parses it with orjson and answers 202.
- ``serve_floor``: what any durable intake costs here before it checks anything: a raw ASGI
  endpoint (no Starlette) that parses the body and hands it to the bridge's own SQLite store
  (``SqliteStore.accept``: WAL, ``synchronous=FULL``, group commit) before answering 202. No
  authentication, token decoding, routing, request line or metrics: the bridge can only be
  slower than this, so its ratio bounds the bridge's.
"""

from __future__ import annotations

import hashlib
import socket
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, Literal

import orjson
import uvicorn

from bench._bridge_harness import HOST, INTAKE_PATH, pin

_SERVER_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "access_log": False,
    "log_level": "warning",
}


def _run(app: Any, port_queue: Queue[int], cpu: int, *, lifespan: Literal["on", "off"]) -> None:
    pin(cpu)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    port_queue.put(sock.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, lifespan=lifespan, **_SERVER_OPTIONS)).run(sockets=[sock])


def serve_baseline(port_queue: Queue[int], cpu: int) -> None:
    """A bare Starlette endpoint parsing the JSON and answering 202."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def accept(request: Request) -> Response:
        payload = orjson.loads(await request.body())
        answer = {"id": f"ntf_{len(payload)}", "status": "accepted"}
        return Response(orjson.dumps(answer), 202, media_type="application/json")

    app = Starlette(routes=[Route(INTAKE_PATH, accept, methods=["POST"])])
    _run(app, port_queue, cpu, lifespan="off")


def serve_floor(port_queue: Queue[int], cpu: int) -> None:
    """Raw ASGI: parse, ``SqliteStore.accept`` (durable), 202; no checks, no log line."""
    from bridge.store import NewNotification
    from bridge.store.sqlite import SqliteStore
    from bridge.types import Route, SessionKind

    route = Route(
        rule="all", workflow_id="wf", vendor_data="v", trust_review=False, destinations=()
    )
    folder = tempfile.mkdtemp(prefix="bench-intake-floor-")
    stores: list[SqliteStore] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                stores.append(SqliteStore.open(Path(folder) / "floor.db", clock=time.time))
                await send({"type": "lifespan.startup.complete"})
            await stores[0].close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        token = orjson.loads(b"".join(chunks))["share_token"]
        sha256 = hashlib.sha256(token.encode()).hexdigest()  # random, like a real business key
        accepted = await stores[0].accept(
            NewNotification(
                partner="floor",
                partner_event_id=None,
                message_id=None,
                business_key=f"sha256:{sha256}",
                token=token,
                token_sha256=sha256,
                session_kind=SessionKind.USER,
                source_application_id=None,
                source_session_id=None,
                deadline=time.time() + 3600,
                route=route,
            )
        )
        body = orjson.dumps({"id": accepted.id, "status": "accepted"})
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    _run(app, port_queue, cpu, lifespan="on")
