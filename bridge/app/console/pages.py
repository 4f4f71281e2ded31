"""The console's routes: one handler per page or action, each a thin layer over ``Operations``."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, urlencode

import structlog
import yaml
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.app.admin_views import iso
from bridge.app.console import chart, sessions
from bridge.app.console.sign_in_limit import SignInLimit
from bridge.app.intake import LiveConfig
from bridge.app.operations import (
    REDELIVERABLE,
    RETRY_REFUSALS,
    Operations,
    RedeliverResult,
)
from bridge.app.route_preview import evaluate, render_text
from bridge.errors import StoreUnavailable
from bridge.store import DeliveryStatus, NotificationSearch, RetryResult
from bridge.types import NotificationStatus

__all__ = ["PREFIX", "Console"]

log = structlog.get_logger()

PREFIX: Final = "/console"
PAGE: Final = 50
#: The sign-in page's answer to an address past its limit of wrong tokens (429).
SIGN_IN_LIMITED: Final = "sign_in_rate_limited"
MAX_FORM_BYTES: Final = 65_536
_HERE: Final = Path(__file__).parent
_TEXT_MAX: Final = 200
_HEADERS: Final = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]

Handler = Callable[[Request, sessions.Session], Awaitable[Response]]
_E = TypeVar("_E", NotificationStatus, DeliveryStatus)


class _SecurityHeaders:
    """Every console answer, static files included, carries the CSP and no-framing headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Console:
    """The console's pages; ``mount()`` gives one Starlette ``Mount`` for any application."""

    def __init__(
        self,
        *,
        live: Callable[[], LiveConfig],
        operations: Operations,
        sign_in_limit: SignInLimit | None = None,
    ) -> None:
        self._live = live
        self._ops = operations
        self._sign_in_limit = sign_in_limit or SignInLimit()
        self._templates = Jinja2Templates(directory=_HERE / "templates")
        self._templates.env.globals["base"] = PREFIX
        self._templates.env.filters["when"] = _when
        self._templates.env.filters["age"] = _age

    def mount(self) -> Mount:
        return Mount(PREFIX, app=_SecurityHeaders(Router(routes=self.routes())))

    def routes(self) -> list[BaseRoute]:
        pages: list[tuple[str, Handler]] = [
            ("/", self.home),
            ("/overview", self.overview),
            ("/overview/panel", self.overview_panel),
            ("/notifications", self.notifications),
            ("/notifications/{id}", self.timeline),
            ("/deliveries", self.deliveries),
            ("/deliveries/redeliver-matching", self.confirm_redeliver_matching),
            ("/destinations", self.destinations),
            ("/configuration", self.configuration),
            ("/route-preview", self.route_preview_form),
        ]
        actions: list[tuple[str, Handler]] = [
            ("/sign-out", self.sign_out),
            ("/notifications/{id}/retry", self.retry),
            ("/deliveries/{id}/redeliver", self.redeliver),
            ("/deliveries/redeliver-matching", self.redeliver_matching),
            ("/destinations/{name}/enable", self.enable),
            ("/destinations/{name}/recover", self.recover),
            ("/configuration/reload", self.reload),
            ("/route-preview", self.route_preview),
        ]
        return [
            Route("/sign-in", self._configured(self.sign_in_form), methods=["GET"]),
            Route("/sign-in", self._configured(self.sign_in), methods=["POST"]),
            *[Route(path, self._page(h), methods=["GET"]) for path, h in pages],
            *[Route(path, self._action(h), methods=["POST"]) for path, h in actions],
            Mount("/static", app=StaticFiles(directory=_HERE / "static")),
        ]

    # -- guards -----------------------------------------------------------------------------

    def _admin_token(self) -> str | None:
        admin = self._live().settings.admin
        return None if admin is None else admin.token.get_secret_value()

    def _configured(
        self, endpoint: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            if self._admin_token() is None:
                return Response("the console is not configured", 404, media_type="text/plain")
            return await endpoint(request)

        return run

    def _session(self, request: Request) -> sessions.Session | None:
        token = self._admin_token()
        if token is None:
            return None
        return sessions.read(request.cookies.get(sessions.COOKIE), token, now=time.time())

    def _page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                if request.headers.get("hx-request"):
                    return Response(status_code=401, headers={"HX-Redirect": f"{PREFIX}/sign-in"})
                return RedirectResponse(f"{PREFIX}/sign-in", 303)
            return await self._answer(request, session, handler)

        return self._configured(run)

    def _action(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                return self._refusal(request, 403, "sign in first")
            try:
                form = await _form(request)
            except _Refused as refused:
                return self._refusal(request, refused.status, refused.message, session)
            presented = request.headers.get("x-csrf-token") or form.get("csrf", "")
            if not sessions.token_matches(presented, session.csrf):
                return self._refusal(request, 403, "the form is stale: reload the page")
            request.state.form = form
            return await self._answer(request, session, handler)

        return self._configured(run)

    async def _answer(
        self, request: Request, session: sessions.Session, handler: Handler
    ) -> Response:
        try:
            return await handler(request, session)
        except _Refused as refused:
            return self._refusal(request, refused.status, refused.message, session)
        except StoreUnavailable:
            return self._refusal(request, 503, "the store is unavailable; retry", session)

    def _refusal(
        self,
        request: Request,
        status: int,
        message: str,
        session: sessions.Session | None = None,
    ) -> Response:
        return self._render(request, session, "refused.html", {"message": message}, status)

    def _render(
        self,
        request: Request,
        session: sessions.Session | None,
        name: str,
        context: Mapping[str, Any],
        status: int = 200,
    ) -> Response:
        full = {"csrf": session.csrf if session else None, "signed_in": session is not None}
        full.update(context)
        return self._templates.TemplateResponse(request, name, full, status_code=status)

    # -- signing in and out ---------------------------------------------------------------

    async def sign_in_form(self, request: Request) -> Response:
        return self._render(request, None, "sign_in.html", {})

    async def sign_in(self, request: Request) -> Response:
        token = self._admin_token()
        assert token is not None  # noqa: S101 - _configured checked it
        address = request.client.host if request.client else ""
        wait_s = self._sign_in_limit.retry_after_s(address)
        if wait_s is not None:
            log.warning("console_sign_in_limited", retry_after_s=wait_s)
            refused = self._render(
                request,
                None,
                "sign_in.html",
                {
                    "error": f"too many wrong tokens: try again in {wait_s} s",
                    "code": SIGN_IN_LIMITED,
                },
                429,
            )
            refused.headers["Retry-After"] = str(wait_s)
            return refused
        try:
            form = await _form(request)
        except _Refused as refused:
            return self._refusal(request, refused.status, refused.message)
        if not sessions.token_matches(form.get("token", ""), token):
            self._sign_in_limit.failed(address)
            log.warning("console_sign_in_refused")
            return self._render(
                request,
                None,
                "sign_in.html",
                {"error": "that is not the admin token", "code": "wrong_token"},
                401,
            )
        self._sign_in_limit.succeeded(address)
        cookie, _session = sessions.issue(token, now=time.time())
        answer = RedirectResponse(f"{PREFIX}/overview", 303)
        answer.set_cookie(
            sessions.COOKIE,
            cookie,
            max_age=int(sessions.SESSION_S),
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        log.info("console_signed_in")
        return answer

    async def sign_out(self, request: Request, session: sessions.Session) -> Response:
        answer = RedirectResponse(f"{PREFIX}/sign-in", 303)
        answer.delete_cookie(sessions.COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return answer

    # -- overview -------------------------------------------------------------------------

    async def home(self, request: Request, session: sessions.Session) -> Response:
        return RedirectResponse(f"{PREFIX}/overview", 303)

    async def _overview_context(self) -> dict[str, Any]:
        overview = await self._ops.overview()
        return {
            "o": overview,
            "charts": [
                ("Last hour (5-minute bars)", overview.last_hour, chart.bars(overview.last_hour)),
                ("Last day (1-hour bars)", overview.last_day, chart.bars(overview.last_day)),
            ],
            "chart_width": chart.WIDTH,
            "chart_height": chart.HEIGHT,
        }

    async def overview(self, request: Request, session: sessions.Session) -> Response:
        context = await self._overview_context()
        return self._render(request, session, "overview.html", {"page": "overview", **context})

    async def overview_panel(self, request: Request, session: sessions.Session) -> Response:
        return self._render(
            request, session, "_overview_panel.html", await self._overview_context()
        )

    # -- notifications --------------------------------------------------------------------

    async def notifications(self, request: Request, session: sessions.Session) -> Response:
        query = request.query_params
        filters = {k: query.get(k, "").strip() for k in ("status", "partner", "rule", "q")}
        filters.update({k: query.get(k, "").strip() for k in ("from", "until")})
        search = NotificationSearch(
            status=_enum(filters["status"], NotificationStatus),
            partner=_text(filters["partner"]),
            rule=_text(filters["rule"]),
            key=_text(filters["q"]),
            received_from=_moment(filters["from"]),
            received_until=_moment(filters["until"]),
        )
        page = await self._ops.notifications(search, limit=PAGE, before=_text(query.get("before")))
        kept = {k: v for k, v in filters.items() if v}
        following = urlencode({**kept, "before": page.next}) if page.next else None
        settings = self._live().settings
        return self._render(
            request,
            session,
            "notifications.html",
            {
                "page": "notifications",
                "rows": page.items,
                "filters": filters,
                "following": following,
                "statuses": [s.value for s in NotificationStatus],
                "partners": sorted(settings.partners),
                "rules": [rule.name for rule in settings.rules],
            },
        )

    async def timeline(self, request: Request, session: sessions.Session) -> Response:
        notification_id = request.path_params["id"]
        found = await self._ops.timeline(notification_id)
        if found is None:
            raise _Refused(404, "no notification with that id")
        attempts_by_delivery: dict[str, list[Any]] = {}
        for attempt in found.delivery_attempts:
            attempts_by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
        return self._render(
            request,
            session,
            "timeline.html",
            {
                "page": "notifications",
                "t": found,
                "n": found.notification,
                "refusal": self._ops.retry_refusal(found.notification),
                "delivery_attempts": attempts_by_delivery,
                "notice": _notice(request),
                "redeliverable": [s.value for s in REDELIVERABLE],
            },
        )

    async def retry(self, request: Request, session: sessions.Session) -> Response:
        result = await self._ops.retry(request.path_params["id"])
        if result is RetryResult.NOT_FOUND:
            raise _Refused(404, RETRY_REFUSALS[result])
        return _done(f"/notifications/{request.path_params['id']}", f"retry-{result.value}")

    # -- deliveries -----------------------------------------------------------------------

    def _delivery_filter(
        self, source: Mapping[str, str]
    ) -> tuple[DeliveryStatus | None, str | None]:
        return _enum(source.get("status", ""), DeliveryStatus), _text(source.get("destination"))

    async def deliveries(self, request: Request, session: sessions.Session) -> Response:
        query = request.query_params
        status, destination = self._delivery_filter(query)
        page = await self._ops.deliveries(
            status=status, destination=destination, limit=PAGE, before=_text(query.get("before"))
        )
        kept = {"status": status.value if status else "", "destination": destination or ""}
        following = urlencode({**kept, "before": page.next}) if page.next else None
        return self._render(
            request,
            session,
            "deliveries.html",
            {
                "page": "deliveries",
                "rows": page.items,
                "filters": kept,
                "following": following,
                "statuses": [s.value for s in DeliveryStatus],
                "destinations": [v.name for v in await self._ops.destinations()],
                "redeliverable": [s.value for s in REDELIVERABLE],
                "matching": urlencode(kept) if status in REDELIVERABLE else None,
                "notice": _notice(request),
            },
        )

    async def redeliver(self, request: Request, session: sessions.Session) -> Response:
        delivery_id = request.path_params["id"]
        result = await self._ops.redeliver(delivery_id)
        if result is RedeliverResult.NOT_FOUND:
            raise _Refused(404, "no delivery with that id")
        return _done("/deliveries", f"redeliver-{result.value}", subject=delivery_id)

    async def confirm_redeliver_matching(
        self, request: Request, session: sessions.Session
    ) -> Response:
        status, destination = self._delivery_filter(request.query_params)
        if status not in REDELIVERABLE:
            raise _Refused(400, "choose the status dead or delivered first")
        count = await self._ops.count_deliveries(status=status, destination=destination)
        return self._render(
            request,
            session,
            "confirm_redeliver.html",
            {
                "page": "deliveries",
                "status": status.value,
                "destination": destination,
                "count": count,
            },
        )

    async def redeliver_matching(self, request: Request, session: sessions.Session) -> Response:
        status, destination = self._delivery_filter(request.state.form)
        if status is None or status not in REDELIVERABLE:
            raise _Refused(400, "choose the status dead or delivered first")
        count = await self._ops.redeliver_matching(status=status, destination=destination)
        return _done("/deliveries", "requeued", n=count)

    # -- destinations ---------------------------------------------------------------------

    async def destinations(self, request: Request, session: sessions.Session) -> Response:
        return self._render(
            request,
            session,
            "destinations.html",
            {
                "page": "destinations",
                "rows": await self._ops.destinations(),
                "notice": _notice(request),
            },
        )

    async def enable(self, request: Request, session: sessions.Session) -> Response:
        name = request.path_params["name"]
        if not await self._ops.set_enabled(name, enabled=True, reason="enabled in the console"):
            raise _Refused(404, "no destination by that name")
        return _done("/destinations", "enabled", subject=name)

    async def recover(self, request: Request, session: sessions.Session) -> Response:
        name = request.path_params["name"]
        since = _moment(request.state.form.get("since", ""))
        if since is None:
            raise _Refused(400, "give the time to recover from")
        count = await self._ops.recover(name, since=since)
        if count is None:
            raise _Refused(404, "no destination by that name")
        return _done("/destinations", "recovered", subject=name, n=count)

    # -- configuration and route preview ----------------------------------------------------

    async def configuration(
        self,
        request: Request,
        session: sessions.Session,
        issues: list[str] | None = None,
        notice: str | None = None,
    ) -> Response:
        live = self._live()
        # Secrets dump as "**********" (pydantic's SecretStr): the page never holds one.
        shown = yaml.safe_dump(live.settings.model_dump(mode="json"), sort_keys=False)
        return self._render(
            request,
            session,
            "configuration.html",
            {
                "page": "configuration",
                "config_text": shown,
                "loaded_at": live.loaded_at,
                "can_reload": self._ops.can_reload,
                "issues": issues,
                "notice": notice,
            },
        )

    async def reload(self, request: Request, session: sessions.Session) -> Response:
        issues = self._ops.reload()
        if issues is None:
            raise _Refused(404, "this server cannot reload its configuration")
        if issues:
            return await self.configuration(request, session, issues=[str(i) for i in issues])
        return await self.configuration(request, session, notice="reloaded")

    async def route_preview_form(
        self,
        request: Request,
        session: sessions.Session,
        result: str | None = None,
        form: Mapping[str, str] | None = None,
    ) -> Response:
        return self._render(
            request,
            session,
            "route_preview.html",
            {
                "page": "route",
                "partners": sorted(self._live().settings.partners),
                "form": form or {},
                "result": result,
            },
        )

    async def route_preview(self, request: Request, session: sessions.Session) -> Response:
        form: dict[str, str] = request.state.form
        dry_run = evaluate(
            self._live().settings,
            partner=form.get("partner", ""),
            body=form.get("body", "").encode(),
            now=time.time(),
        )
        # The body may hold a share token: the page shows the verdict, not the body again.
        kept = {"partner": form.get("partner", "")}
        return await self.route_preview_form(request, session, render_text(dry_run), kept)


_NOTICES: Final = {
    "retry-requeued": "queued again: the import worker picks it up now",
    **{f"retry-{r.value}": f"not retried: {m}" for r, m in RETRY_REFUSALS.items()},
    "redeliver-requeued": "{subject} queued again",
    "redeliver-already_pending": "{subject} is already on its way",
    "requeued": "{n} deliveries queued again",
    "enabled": "{subject} enabled",
    "recovered": "{n} deliveries to {subject} queued again",
}
_SUBJECT: Final = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def _done(path: str, notice: str, *, subject: str = "", n: int = 0) -> Response:
    """After an action, see its page again by GET (a reload does not repeat the action), with
    a notice chosen from ``_NOTICES``: the query names it, it cannot carry text of its own."""
    query = urlencode({"notice": notice, "subject": subject, "n": n})
    return RedirectResponse(f"{PREFIX}{path}?{query}", 303)


def _notice(request: Request) -> str | None:
    query = request.query_params
    template = _NOTICES.get(query.get("notice", ""))
    if template is None:
        return None
    subject = query.get("subject", "")
    count = query.get("n", "0")
    return template.format(
        subject=subject if _SUBJECT.fullmatch(subject) else "?",
        n=int(count) if count.isascii() and count.isdigit() and len(count) < 10 else 0,
    )


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form (the console's only kind), first value per field."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise _Refused(413, "the form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _text(raw: str | None) -> str | None:
    if not raw:
        return None
    if len(raw) > _TEXT_MAX:
        raise _Refused(400, f"a filter is at most {_TEXT_MAX} characters")
    return raw


def _enum(raw: str, kind: type[_E]) -> _E | None:
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise _Refused(400, f"unknown status {raw[:40]!r}") from None


def _moment(raw: str) -> float | None:
    """A time from a form: ISO 8601 (``datetime-local`` sends no offset: read as UTC)."""
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw[:40])
    except ValueError:
        raise _Refused(400, "a time must look like 2026-12-05T10:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _when(epoch_s: float | None) -> str:
    shown = iso(epoch_s)
    return "-" if shown is None else shown.replace("T", " ").removesuffix("Z") + " UTC"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
