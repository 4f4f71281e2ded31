"""The ASGI application: partner notifications go straight to ``Intake``, the rest to Starlette.

Intake is the hot path (every partner notification, at thousands a second); the admin API,
probes, metrics and Didit's webhooks are not. Handing intake its requests before Starlette's
middleware and router halves its cost on one core (``bench/bench_intake.py``), while every
other route keeps Starlette's routing, error pages and ``RequestLog``. A partner URL with
another method than POST still reaches Starlette, which answers 405.

With an ops listener (``server.ops_port``), requests that arrived on that port go to ``ops``
(metrics, OpenAPI, the admin API, probes) and never to intake; the public port's ``rest`` then
has none of the ops routes, so a stranger there gets 404 for them.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from bridge.app.intake import Intake, partner_in


class BridgeApp:
    """ASGI: ``POST /v1/partners/{partner}/shares`` to ``intake``; everything else to ``rest``;
    what arrived on ``ops_port`` to ``ops``."""

    def __init__(
        self,
        *,
        intake: Intake,
        rest: Starlette,
        ops: Starlette | None = None,
        ops_port: int | None = None,
    ) -> None:
        self.intake = intake
        self.rest = rest
        self.ops = ops
        self.ops_port = ops_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.ops is not None and scope["type"] == "http":
            local = scope.get("server")
            if local is not None and local[1] == self.ops_port:
                await self.ops(scope, receive, send)
                return
        if scope["type"] == "http" and scope["method"] == "POST":
            partner = partner_in(scope["path"])
            if partner is not None:
                scope["path_params"] = {"partner": partner}  # as Starlette's router sets it
                await self.intake(scope, receive, send)
                return
        await self.rest(scope, receive, send)
