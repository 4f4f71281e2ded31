"""The ASGI application: partner notifications go straight to ``Intake``, the rest to Starlette.

Intake is the hot path (every partner notification, at thousands a second); the admin API,
probes, metrics and Didit's webhooks are not. Handing intake its requests before Starlette's
middleware and router halves its cost on one core (``bench/bench_intake.py``), while every
other route keeps Starlette's routing, error pages and ``RequestLog``. A partner URL with
another method than POST still reaches Starlette, which answers 405.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from bridge.app.intake import Intake, partner_in


class BridgeApp:
    """ASGI: ``POST /v1/partners/{partner}/shares`` to ``intake``; everything else to ``rest``."""

    def __init__(self, *, intake: Intake, rest: Starlette) -> None:
        self.intake = intake
        self.rest = rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            partner = partner_in(scope["path"])
            if partner is not None:
                scope["path_params"] = {"partner": partner}  # as Starlette's router sets it
                await self.intake(scope, receive, send)
                return
        await self.rest(scope, receive, send)
