"""A downstream sink for the delivery benchmark: a raw ASGI app answering 200 at once.

It runs in its own process (``spawn``), so the bridge's event loop has its core to itself, and
counts what it received; ``GET /count`` answers that count.
"""

from __future__ import annotations

import socket
from multiprocessing.queues import Queue
from typing import Any

HOST = "127.0.0.1"


def serve(port_queue: Queue[int]) -> None:
    """In the sink process: serve on a free port (put on ``port_queue``) until killed."""
    import uvicorn

    received = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal received
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if scope["method"] == "POST":
            received += 1
            body = b"{}"
        else:
            body = str(received).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    sock.listen(2048)  # connections wait in the backlog until uvicorn runs, never refused
    port_queue.put(sock.getsockname()[1])
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", lifespan="off", access_log=False, log_level="warning"
    )
    uvicorn.Server(config).run(sockets=[sock])
