"""The gate in front of every Didit endpoint: API key, quota, faults, the call ledger, and the
ways an answer gets lost. It speaks raw ASGI, so the hot path stays cheap and a connection can
be dropped for real."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from bridge.sandbox import answers
from bridge.sandbox.answers import Answer
from bridge.sandbox.faults import FaultDecision
from bridge.sandbox.model import Application
from bridge.sandbox.quota import Verdict
from bridge.sandbox.state import SandboxState

Handler = Callable[[Request, Application], Awaitable[Answer]]

#: Where the sandbox's Starlette app leaves the server's own ``send`` (see ``app.py``).
RAW_SEND_KEY = "sandbox.raw_send"
#: How long a dropped connection may take to be noticed as gone.
_DROP_GRACE_S = 2.0


class Gate:
    """An ASGI endpoint wrapping one Didit handler."""

    def __init__(self, state: SandboxState, endpoint: str, handler: Handler) -> None:
        self._state = state
        self._endpoint = endpoint
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state = self._state
        request = Request(scope, receive)
        now = state.clock()
        window = state.quota.scope(request.method)
        api_key = request.headers.get("x-api-key")
        application = state.world.application_by_key(api_key) if api_key else None
        decision: FaultDecision | None = None
        handler_status: int | None = None
        if application is None:
            verdict = window.peek(api_key or _client_host(scope), now)
            answer = answers.detail(
                401, answers.API_KEY_INVALID if api_key else answers.API_KEY_MISSING
            )
        else:
            verdict = window.hit(application.api_key, now)
            if not verdict.allowed:
                answer = answers.throttled(verdict.retry_after)
            else:
                decision = state.faults.next(self._endpoint)
                if decision is not None and decision.latency_s > 0:
                    await asyncio.sleep(decision.latency_s)
                if decision is not None and decision.kind == "error":
                    answer = answers.injected_error(decision.status or 500)
                elif decision is not None and decision.kind == "throttle":
                    retry_after = decision.retry_after_s or 0
                    answer = answers.throttled(retry_after)
                    verdict = Verdict(False, verdict.limit, 0, int(now) + retry_after, retry_after)
                else:
                    answer = await self._handler(request, application)
                    handler_status = answer.status
        fault = decision.label if decision is not None else None
        status: int | None = answer.status
        if decision is not None and decision.kind == "ambiguous":
            if decision.mode == "504":
                answer = answers.gateway_timeout()
                status = answer.status
            elif decision.mode == "drop":
                await _drop_connection(scope, receive, send)
                status = None
            elif await _client_leaves_within(receive, decision.delay_s):
                status = None  # "slow": the client gave up before the answer was ready
        if status is not None:
            answer.headers.extend(verdict.headers())
            await send_answer(send, answer)
        state.ledger.record_call(
            at=now,
            method=request.method,
            path=request.url.path,
            endpoint=self._endpoint,
            application_id=application.id if application else None,
            status=status,
            handler_status=handler_status,
            latency_ms=(time.perf_counter() - started) * 1000,
            fault=fault,
        )


async def send_answer(send: Send, answer: Answer) -> None:
    headers = [
        (b"content-type", answer.content_type),
        (b"content-length", str(len(answer.body)).encode()),
        *answer.headers,
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


class ConnectionDropped(Exception):
    """Raised where the server's transport is out of reach, so the connection fails anyway."""


async def _drop_connection(scope: Scope, receive: Receive, send: Send) -> None:
    """Close the connection without a byte of answer. uvicorn answers 500 to an app that raises
    before starting a response, so the transport is aborted instead; uvicorn's ``send`` is a
    bound method of its request cycle, which holds the transport."""
    raw_send = scope.get(RAW_SEND_KEY, send)
    transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if abort is None:
        raise ConnectionDropped("the sandbox dropped the connection")
    abort()
    # Wait until the server has seen the connection go, so it does not answer 500 for us.
    await _client_leaves_within(receive, _DROP_GRACE_S)


async def _client_leaves_within(receive: Receive, seconds: float) -> bool:
    """True if the client disconnects within ``seconds``; the request body is already read."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(disconnected(), timeout=seconds)
    except TimeoutError:
        return False
    return True


def _client_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
