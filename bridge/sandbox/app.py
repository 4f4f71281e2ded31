"""``create_app``: the Didit endpoints behind their gate, the trailing-slash rule, and the
control API, as one Starlette application."""

from __future__ import annotations

import re
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from bridge.sandbox import answers
from bridge.sandbox.control_api import ControlApi
from bridge.sandbox.didit_api import DiditApi
from bridge.sandbox.gate import RAW_SEND_KEY, Gate, send_answer
from bridge.sandbox.quota import QuotaConfig
from bridge.sandbox.state import Clock, SandboxState
from bridge.sandbox.world import World


class SandboxApp(Starlette):
    """Starlette, plus the server's own ``send`` left in the scope: the gate needs it to drop a
    connection for real (Starlette's middleware wraps ``send``)."""

    state_: SandboxState

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[RAW_SEND_KEY] = send
        await super().__call__(scope, receive, send)

    @property
    def sandbox(self) -> SandboxState:
        """The running sandbox's state: world, ledger, quota and faults (for tests)."""
        return self.state_


def create_app(
    world: World,
    *,
    seed: int,
    clock: Clock = time.time,
    quota: QuotaConfig | None = None,
) -> SandboxApp:
    """The sandbox as an ASGI application, serving ``world``. ``seed`` drives the fault
    schedules; ``clock`` (epoch seconds) drives tokens, timestamps and the quota windows."""
    state = SandboxState(world, seed=seed, clock=clock, quota=quota or QuotaConfig())
    didit = DiditApi(state)
    didit_routes: list[BaseRoute] = [
        Route(
            "/v3/session/import-shared/",
            Gate(state, "import", didit.import_shared),
            methods=["POST"],
        ),
        Route(
            "/v3/session/{session_id}/share/", Gate(state, "share", didit.share), methods=["POST"]
        ),
        Route("/v3/sessions/", Gate(state, "list", didit.list_sessions), methods=["GET"]),
        Route(
            "/v3/session/{session_id}/decision/",
            Gate(state, "decision", didit.decision),
            methods=["GET"],
        ),
    ]
    patterns = [route.path_regex for route in didit_routes if isinstance(route, Route)]
    fallback = Route("/v3/{rest:path}", SlashRule(state, patterns))
    app = SandboxApp(routes=[*didit_routes, fallback, *ControlApi(state).routes()])
    app.router.redirect_slashes = False
    app.state_ = state
    return app


class SlashRule:
    """Every other ``/v3/`` request: a path that matches once a slash is added answers 301 to
    the slashed path, as Didit's URL layer does (before authentication: the redirect is where a
    client following it may lose its ``x-api-key``); a known path with the wrong method is a 405;
    the rest is a 404."""

    def __init__(self, state: SandboxState, patterns: list[re.Pattern[str]]) -> None:
        self._state = state
        self._patterns = patterns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = Request(scope, receive)
        path = request.url.path
        state = self._state
        now = state.clock()
        if not path.endswith("/") and self._known(path + "/"):
            query = request.url.query
            answer = answers.Answer(301, b"", answers.JSON)
            answer.headers.append((b"location", f"{path}/{'?' + query if query else ''}".encode()))
            endpoint = "redirect"
        elif self._known(path):
            answer = answers.detail(405, f'Method "{request.method}" not allowed.')
            endpoint = "method_not_allowed"
        else:
            answer = answers.detail(404, answers.NOT_FOUND)
            endpoint = "unknown"
        api_key = request.headers.get("x-api-key")
        application = state.world.application_by_key(api_key) if api_key else None
        window_key = application.api_key if application else (api_key or "anonymous")
        answer.headers.extend(state.quota.scope(request.method).peek(window_key, now).headers())
        await send_answer(send, answer)
        state.ledger.record_call(
            at=now,
            method=request.method,
            path=path,
            endpoint=endpoint,
            application_id=application.id if application else None,
            status=answer.status,
            handler_status=None,
            latency_ms=(time.perf_counter() - started) * 1000,
            fault=None,
        )

    def _known(self, path: str) -> bool:
        return any(pattern.match(path) for pattern in self._patterns)
