"""A downstream sink for delivery tests: a real HTTP server on 127.0.0.1 that verifies every
request with the ``standardwebhooks`` package, records it, and answers as the test scripts.

The server runs in a thread (``tests/support/asgi_server.serve_in_thread``); ``received`` is
appended to from that thread, so tests read it through :meth:`Sink.snapshot`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.types import Receive, Scope, Send

from tests.support.asgi_server import serve_in_thread


@dataclass(frozen=True, slots=True)
class Answer:
    """What the sink answers to one request; ``hang_s`` delays it (until :meth:`Sink.release`)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """One request as the sink saw it; ``at`` is ``time.monotonic()`` on arrival."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    verified: tuple[bool, ...]  # one per secret, each checked alone with standardwebhooks

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


Responder = Callable[[Received, int], Answer]
"""Chooses the answer to a request, given it and how many came before it."""


class Sink:
    """An ASGI app; :func:`running_sink` serves it."""

    def __init__(self, secrets: Sequence[str], respond: Responder | None = None) -> None:
        self._webhooks = [Webhook(secret) for secret in secrets]
        self._respond = respond or (lambda _received, _index: Answer())
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._open = 0  # requests arrived and not yet answered
        self._most_open = 0
        self.url = ""

    def script(self, *answers: Answer) -> None:
        """Answer the next requests with ``answers`` in order, then 200."""
        queue = list(answers)
        self._respond = lambda _received, _index: queue.pop(0) if queue else Answer()

    def respond_with(self, respond: Responder) -> None:
        self._respond = respond

    def release(self) -> None:
        """End every hanging answer now (and any later one)."""
        self._released.set()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def count(self) -> int:
        with self._lock:
            return len(self._received)

    def most_open(self) -> int:
        """The most requests it held at once (arrived, not yet answered)."""
        with self._lock:
            return self._most_open

    def _verify(self, headers: dict[str, str], body: bytes) -> tuple[bool, ...]:
        results = []
        for webhook in self._webhooks:
            try:
                webhook.verify(body, headers)
                results.append(True)
            except (WebhookVerificationError, ValueError):
                results.append(False)
        return tuple(results)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        received = Received(
            method=scope["method"],
            path=scope["path"],
            headers=headers,
            body=body,
            at=time.monotonic(),
            verified=self._verify(headers, body),
        )
        with self._lock:
            index = len(self._received)
            self._received.append(received)
            self._open += 1
            self._most_open = max(self._most_open, self._open)
        try:
            answer = self._respond(received, index)
            give_up = time.monotonic() + answer.hang_s
            # release() comes from the test's thread: a threading.Event, polled.
            while time.monotonic() < give_up and not self._released.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        finally:
            with self._lock:
                self._open -= 1
        raw_headers = [(k.encode(), v.encode()) for k, v in answer.headers.items()]
        raw_headers.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": answer.body})


@contextmanager
def running_sink(secrets: Sequence[str], respond: Responder | None = None) -> Iterator[Sink]:
    """A :class:`Sink` served on a free port of 127.0.0.1; ``sink.url`` is its webhook URL."""
    sink = Sink(secrets, respond)
    with serve_in_thread(sink) as base_url:
        sink.url = f"{base_url}/hooks"
        try:
            yield sink
        finally:
            sink.release()
