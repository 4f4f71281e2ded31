"""The downstream sink of the demo and of ``share-bridge sink``: a webhook consumer that
verifies every delivery it is sent.

It checks signatures with the ``standardwebhooks`` package (an implementation independent of the
bridge's signer), records what it accepted, and answers 401 to anything it cannot verify. It can
play a consumer that is down for a while: its first ``fail_first`` requests get a 503.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: The sink's answers, and why: ``verified`` (2xx), ``unavailable`` (the 503 it was told to give),
#: ``rejected`` (a signature, timestamp or body it would not accept).
VERIFIED, UNAVAILABLE, REJECTED = "verified", "unavailable", "rejected"


@dataclass(frozen=True, slots=True)
class SinkEndpoint:
    """One destination the sink plays, served at ``/hooks/{name}``.

    ``secrets`` are the whsec_ secrets the consumer verifies with: during a rotation it may
    already know only the new one, while the sender still signs with both.
    """

    name: str
    secrets: tuple[str, ...]
    fail_first: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """A delivery the sink verified and accepted."""

    destination: str
    event_id: str
    event_type: str
    notification_id: str | None
    received_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkReport:
    """A consistent copy of what the sink has seen so far."""

    receipts: tuple[Receipt, ...]
    requests: dict[str, int]  # per destination, every request
    unavailable: dict[str, int]  # per destination, the 503s it was told to give
    rejected: dict[str, int]  # per destination, deliveries it could not verify

    def verified_pairs(self) -> set[tuple[str, str]]:
        """Every (event id, destination) verified at least once."""
        return {(receipt.event_id, receipt.destination) for receipt in self.receipts}


class Sink:
    """The sink's state and its Starlette app (``sink.app``). Safe to read from another thread
    while the app serves requests."""

    def __init__(
        self,
        endpoints: Sequence[SinkEndpoint],
        *,
        clock: Callable[[], float] = time.time,
        on_answer: Callable[[str, str, bytes], None] | None = None,
    ) -> None:
        """``on_answer(destination, verdict, body)`` hears each answer as it is given."""
        if not endpoints:
            raise ValueError("the sink needs at least one endpoint")
        self._endpoints = {endpoint.name: endpoint for endpoint in endpoints}
        self._verifiers = {
            endpoint.name: [Webhook(secret) for secret in endpoint.secrets]
            for endpoint in endpoints
        }
        self._clock = clock
        self._lock = threading.Lock()
        self._receipts: list[Receipt] = []
        self._requests: Counter[str] = Counter()
        self._unavailable: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._on_answer = on_answer
        self.app = Starlette(
            routes=[
                Route("/hooks/{name}", self.receive, methods=["POST"]),
                Route("/healthz", _healthy, methods=["GET"]),
            ]
        )

    def report(self) -> SinkReport:
        with self._lock:
            return SinkReport(
                receipts=tuple(self._receipts),
                requests=dict(self._requests),
                unavailable=dict(self._unavailable),
                rejected=dict(self._rejected),
            )

    async def receive(self, request: Request) -> Response:
        name = request.path_params["name"]
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            return JSONResponse({"error": "no such hook"}, status_code=404)
        body = await request.body()
        received_at = self._clock()
        with self._lock:
            self._requests[name] += 1
            if self._requests[name] <= endpoint.fail_first:
                self._unavailable[name] += 1
                return JSONResponse({"error": "down for maintenance"}, status_code=503)
        receipt = self._verify(name, body, dict(request.headers), received_at)
        with self._lock:
            if receipt is None:
                self._rejected[name] += 1
            else:
                self._receipts.append(receipt)
        if self._on_answer is not None:
            self._on_answer(name, REJECTED if receipt is None else VERIFIED, body)
        if receipt is None:
            return JSONResponse({"error": "signature not verified"}, status_code=401)
        return JSONResponse({"status": VERIFIED})

    def _verify(
        self, name: str, body: bytes, headers: dict[str, str], received_at: float
    ) -> Receipt | None:
        for webhook in self._verifiers[name]:
            try:
                webhook.verify(body, headers, json_parse=False)
            except (WebhookVerificationError, ValueError):  # ValueError: undecodable parts
                continue
            return _receipt(name, body, headers, received_at)
        return None


async def _healthy(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _receipt(name: str, body: bytes, headers: dict[str, str], received_at: float) -> Receipt | None:
    """The receipt for a verified body, or None when it is not an event (or contradicts its id)."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or event.get("id") != headers.get("webhook-id"):
        return None
    data = event.get("data")
    notification_id = data.get("notification_id") if isinstance(data, dict) else None
    return Receipt(
        destination=name,
        event_id=str(event["id"]),
        event_type=str(event.get("type")),
        notification_id=notification_id if isinstance(notification_id, str) else None,
        received_at=received_at,
    )
