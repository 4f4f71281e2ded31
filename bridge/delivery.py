"""POST one signed event to one destination and classify the answer (docs/events.md).

Every attempt sends the event's fixed bytes under its fixed ``webhook-id``; only
``webhook-timestamp`` and the signature (one ``v1,`` entry per configured secret, for rotation)
change. The answer is one of:

- ``DELIVERED``: a 2xx within the destination's timeout;
- ``DISABLE``: 410 Gone; the destination is to be disabled, its deliveries wait;
- ``ABORT``: a ``webhook-delivery: abort-message`` header; retrying this event is pointless;
- ``RETRY_AFTER``: a 429 or 503 with a readable ``Retry-After`` (seconds or an HTTP date,
  capped at two hours);
- ``FAILED``: anything else: 3xx (redirects are never followed), other 4xx, 5xx, a timeout or
  a connection error. The caller retries it on the destination's schedule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Self

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from bridge import __version__
from bridge.config import Destination
from bridge.observability import without_url_credentials
from bridge.signing import StandardWebhooksSigner

__all__ = [
    "EXCERPT_BYTES",
    "RETRY_AFTER_CAP_S",
    "USER_AGENT",
    "DeliveryResult",
    "Sender",
    "Verdict",
    "classify",
    "parse_retry_after",
]

USER_AGENT = f"share-bridge/{__version__}"
EXCERPT_BYTES = 2048
RETRY_AFTER_CAP_S = 7200.0
# Drained past the excerpt so the connection can be reused; a longer body closes it instead.
_DRAIN_LIMIT_BYTES = 65_536
_EXCERPT_READ_S = 1.0  # reading the answer's body, after its status line: only for the excerpt
_ABORT_HEADER = "webhook-delivery"
_ABORT_VALUE = "abort-message"


class Verdict(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"  # retry on the destination's schedule
    RETRY_AFTER = "retry_after"  # retry when the destination asked (429/503 + Retry-After)
    DISABLE = "disable"  # 410: disable the destination; its deliveries wait
    ABORT = "abort"  # webhook-delivery: abort-message: dead at once


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryResult:
    """What one POST to a destination came to."""

    verdict: Verdict
    http_status: int | None  # None: no answer (timeout, connection error)
    latency_ms: int
    response_excerpt: bytes = b""  # the first ``EXCERPT_BYTES`` of the answer's body
    error: str | None = None  # why it failed; None when delivered
    retry_after_s: float | None = None  # set for ``RETRY_AFTER``


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``: delay-seconds or an HTTP date, 0..2 h.

    None when absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            at = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if at.tzinfo is None:  # an HTTP date is GMT by definition
            return None
        seconds = at.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


def classify(
    status: int, headers: Mapping[str, str], *, latency_ms: int, excerpt: bytes, now: float
) -> DeliveryResult:
    """The verdict for an answer with ``status`` and ``headers`` (looked up in any case)."""

    def result(
        verdict: Verdict, error: str | None, retry_after_s: float | None = None
    ) -> DeliveryResult:
        return DeliveryResult(
            verdict=verdict,
            http_status=status,
            latency_ms=latency_ms,
            response_excerpt=excerpt,
            error=error,
            retry_after_s=retry_after_s,
        )

    if 200 <= status < 300:
        return result(Verdict.DELIVERED, None)
    if status == 410:
        return result(Verdict.DISABLE, "HTTP 410 Gone: the destination is disabled")
    if headers.get(_ABORT_HEADER, "").strip().lower() == _ABORT_VALUE:
        return result(Verdict.ABORT, f"HTTP {status} with webhook-delivery: abort-message")
    if status in (429, 503):
        retry_after = parse_retry_after(headers.get("retry-after"), now=now)
        if retry_after is not None:
            return result(
                Verdict.RETRY_AFTER, f"HTTP {status}, Retry-After {retry_after:g}s", retry_after
            )
    if 300 <= status < 400:
        return result(Verdict.FAILED, f"HTTP {status}: redirects are not followed")
    return result(Verdict.FAILED, f"HTTP {status}")


@dataclass(slots=True)
class _Target:
    config: Destination
    client: httpx.AsyncClient
    signer: StandardWebhooksSigner


class Sender:
    """Sends events to destinations: one pooled client per destination, so a slow one only
    ever uses its own connections. Use as ``async with`` or call :meth:`aclose`.

    httpx's API over aiohttp's transport by default: httpx's own transport is CPU-bound at a
    few hundred requests per second on one core, aiohttp's about ten times faster
    (bench/RESULTS.md). ``transport`` builds another one per destination (tests: MockTransport).
    """

    def __init__(
        self,
        *,
        transport: Callable[[], httpx.AsyncBaseTransport] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._transport = transport
        self._clock = clock
        self._targets: dict[str, _Target] = {}
        self._retired: list[httpx.AsyncClient] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every pooled connection."""
        clients = [target.client for target in self._targets.values()] + self._retired
        self._targets.clear()
        self._retired.clear()
        await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)

    async def send(
        self,
        name: str,
        destination: Destination,
        *,
        message_id: str,
        body: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> DeliveryResult:
        """POST ``body`` signed as ``message_id`` to ``destination``, with ``headers`` added (a
        ``traceparent``); never raises for HTTP."""
        target = self._target(name, destination)
        timestamp = int(self._clock())
        sent = target.signer.headers(message_id, timestamp, body)
        if headers is not None:
            sent = {**headers, **sent}  # the signature's headers are never overridden
        started = time.perf_counter()
        try:
            async with asyncio.timeout(destination.timeout_s):
                response = await self._post(target, sent, body)
        except TimeoutError:
            return _no_answer(started, f"no answer within {destination.timeout_s:g}s")
        except Exception as exc:  # noqa: BLE001 - transport errors, and whatever a URL or an
            # answer makes a client raise: a failed attempt on the schedule, never a crash
            return _no_answer(started, _describe(exc))
        latency_ms = _elapsed_ms(started)  # the status line decides, within the timeout
        try:
            excerpt = await _excerpt(response)
        finally:
            await response.aclose()
        return classify(
            response.status_code,
            response.headers,
            latency_ms=latency_ms,
            excerpt=excerpt,
            now=self._clock(),
        )

    async def _post(self, target: _Target, headers: dict[str, str], body: bytes) -> httpx.Response:
        """The answer, as soon as its status line and headers are in (its body is streamed)."""
        request = target.client.build_request("POST", str(target.config.url), content=body)
        request.headers.update(headers)
        return await target.client.send(request, stream=True)

    def _target(self, name: str, destination: Destination) -> _Target:
        target = self._targets.get(name)
        if target is not None and target.config == destination:
            return target
        if target is not None:  # the config changed: requests in flight finish on the old pool
            self._retired.append(target.client)
        pool = destination.max_in_flight
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        client = httpx.AsyncClient(
            headers={"content-type": "application/json", "user-agent": USER_AGENT},
            timeout=httpx.Timeout(destination.timeout_s),
            limits=limits,
            follow_redirects=False,
            transport=AiohttpTransport(limits=limits)
            if self._transport is None
            else self._transport(),
        )
        signer = StandardWebhooksSigner([s.get_secret_value() for s in destination.secrets])
        target = _Target(config=destination, client=client, signer=signer)
        self._targets[name] = target
        return target


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _no_answer(started: float, error: str) -> DeliveryResult:
    return DeliveryResult(
        verdict=Verdict.FAILED, http_status=None, latency_ms=_elapsed_ms(started), error=error
    )


async def _excerpt(response: httpx.Response) -> bytes:
    """The first ``EXCERPT_BYTES`` of the body, read for at most ``_EXCERPT_READ_S``: a body
    that is slow, endless or broken keeps what arrived, and never turns a 2xx into a failure."""
    excerpt = bytearray()
    try:
        async with asyncio.timeout(_EXCERPT_READ_S):
            async for chunk in response.aiter_bytes():
                excerpt += chunk
                if len(excerpt) > _DRAIN_LIMIT_BYTES:
                    break
    except (TimeoutError, httpx.HTTPError, aiohttp.ClientError):
        pass
    return bytes(excerpt[:EXCERPT_BYTES])


def _describe(exc: Exception) -> str:
    # The aiohttp transport wraps its errors in loosely matching httpx ones: name the original.
    if isinstance(exc.__cause__, aiohttp.ClientError):
        exc = exc.__cause__
    detail = without_url_credentials(str(exc).strip())
    return f"{type(exc).__name__}: {detail}"[:300] if detail else type(exc).__name__
