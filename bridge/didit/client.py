"""The pooled HTTP client for Didit: import, list sessions, read a decision."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Self
from urllib.parse import quote

import httpx
import orjson
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from bridge.didit.answers import (
    DiditError,
    Exchange,
    ImportAnswer,
    ImportVerdict,
    NoAnswer,
    RetryLater,
)
from bridge.didit.bodies import body_excerpt, error_message, parse_json
from bridge.didit.classify import classify_import
from bridge.didit.codes import AnswerCode
from bridge.didit.ratelimit import parse_rate_limit
from bridge.didit.reconcile import SessionRow
from bridge.times import iso_utc
from bridge.types import RateLimitInfo

IMPORT_PATH = "/v3/session/import-shared/"
SESSIONS_PATH = "/v3/sessions/"
DECISION_PATH = "/v3/session/{session_id}/decision/"

# Only these prove the request never left: the connection was not made or no pooled connection
# was free. A ReadTimeout, ReadError or RemoteProtocolError may follow a committed import.
_NOT_SENT: tuple[type[httpx.HTTPError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
CONNECT_ATTEMPTS = 3


class DiditClient:
    """One pooled HTTP client for Didit; use as ``async with`` or call :meth:`aclose`.

    Redirects are never followed (a slash-less path answers 301 and would drop the key or turn
    a POST into a GET). Only a request that surely was not sent is retried in process; every
    other failure is reported, for the durable queue to retry.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = "share-bridge",
        max_in_flight: int = 8,
        retry_wait_s: float = 0.2,
        observer: Callable[[Exchange], None] | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        if base.endswith("/v3"):  # the reference names ".../v3" the base URL; our paths hold it
            base = base[: -len("/v3")]
        pool = max_in_flight + 2  # reconciliation reads beside the imports in flight
        self._http = httpx.AsyncClient(
            base_url=base,
            headers={
                "x-api-key": api_key,
                "user-agent": user_agent,
                "accept": "application/json",
            },
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            follow_redirects=False,
            transport=transport,
        )
        self._retry_wait_s = retry_wait_s
        self._observer = observer

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    async def import_shared(
        self, *, share_token: str, workflow_id: str, vendor_data: str, trust_review: bool
    ) -> ImportAnswer:
        """Redeem ``share_token`` into ``workflow_id``; never raises for a transport failure."""
        content = orjson.dumps(
            {
                "share_token": share_token,
                "workflow_id": workflow_id,
                "vendor_data": vendor_data,
                "trust_review": bool(trust_review),  # optional or required: sources conflict
            }
        )
        started = time.perf_counter()
        tries = 0
        response: httpx.Response | None = None
        try:
            async for attempt in self._not_sent_retries():
                with attempt:
                    tries += 1
                    response = await self._http.post(
                        IMPORT_PATH, content=content, headers={"content-type": "application/json"}
                    )
        except httpx.HTTPError as exc:
            return self._import_failure(exc, time.perf_counter() - started, tries)
        if response is None:
            raise AssertionError("tenacity ended without a response or an error")
        latency = time.perf_counter() - started
        info = parse_rate_limit(response.headers)
        self._observe("POST", IMPORT_PATH, response.status_code, latency, info, None)
        status = response.status_code
        return ImportAnswer(
            verdict=classify_import(status, response.content, response.headers),
            http_status=status,
            latency_s=latency,
            rate_limit=info,
            body_excerpt="" if 200 <= status < 300 else body_excerpt(response.content),
            tries=tries,
        )

    async def list_sessions(
        self,
        *,
        vendor_data: str,
        workflow_id: str,
        session_kind: str,
        date_from: datetime,
        limit: int = 50,
        max_pages: int = 10,
    ) -> list[SessionRow]:
        """Our sessions for ``vendor_data`` in ``workflow_id`` created since ``date_from``.

        ``session_kind`` is ``user``, ``business`` or ``all``. Pages are followed by offset
        while Didit says there is a ``next`` one, up to ``max_pages``. Rows without a
        ``session_id`` are skipped. Raises :class:`DiditError`.
        """
        if date_from.tzinfo is None:
            raise ValueError("date_from must be timezone-aware")
        params: dict[str, str | int] = {
            "vendor_data": vendor_data,
            "workflow_id": workflow_id,
            "session_kind": session_kind,
            "date_from": iso_utc(date_from.timestamp()),
            "limit": limit,
        }
        rows: list[SessionRow] = []
        offset = 0
        for _ in range(max_pages):
            page = await self._get_json(SESSIONS_PATH, SESSIONS_PATH, {**params, "offset": offset})
            results = page.get("results") if isinstance(page, Mapping) else page
            if not isinstance(results, list) or not results:
                break
            rows.extend(row for row in map(SessionRow.from_json, results) if row is not None)
            if not isinstance(page, Mapping) or not page.get("next"):
                break
            offset += len(results)
        return rows

    async def get_decision(self, session_id: str) -> dict[str, Any]:
        """The decision of one of our sessions (KYC or KYB). Raises :class:`DiditError`."""
        path = DECISION_PATH.format(session_id=quote(session_id, safe=""))
        value = await self._get_json(path, DECISION_PATH, None)
        if not isinstance(value, dict):
            raise DiditError(
                "the decision is not a JSON object", code=AnswerCode.UNEXPECTED_RESPONSE
            )
        return value

    # ---------------------------------------------------------------------------------------

    def _not_sent_retries(self) -> AsyncRetrying:
        wait = self._retry_wait_s
        return AsyncRetrying(
            retry=retry_if_exception_type(_NOT_SENT),
            stop=stop_after_attempt(CONNECT_ATTEMPTS),
            wait=wait_exponential(multiplier=wait, max=wait * 10) + wait_random(0, wait),
            reraise=True,
        )

    def _import_failure(self, exc: httpx.HTTPError, latency: float, tries: int) -> ImportAnswer:
        name = type(exc).__name__
        self._observe("POST", IMPORT_PATH, None, latency, None, name)
        verdict: ImportVerdict
        if isinstance(exc, _NOT_SENT):
            verdict = RetryLater(
                code=AnswerCode.UPSTREAM_UNAVAILABLE,
                message=f"{name}: the request was not sent",
                http_status=None,
            )
        else:
            verdict = NoAnswer(
                code=AnswerCode.NO_ANSWER,
                message=f"{name}: no answer; the import may have happened",
                http_status=None,
                error_type=name,
            )
        return ImportAnswer(
            verdict=verdict,
            http_status=None,
            latency_s=latency,
            rate_limit=None,
            body_excerpt="",
            tries=tries,
        )

    async def _get_json(
        self, path: str, template: str, params: Mapping[str, str | int] | None
    ) -> object:
        started = time.perf_counter()
        response: httpx.Response | None = None
        try:
            async for attempt in self._not_sent_retries():
                with attempt:
                    response = await self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            name = type(exc).__name__
            self._observe("GET", template, None, time.perf_counter() - started, None, name)
            raise DiditError(f"{name}: no answer", code=AnswerCode.UPSTREAM_UNAVAILABLE) from None
        if response is None:
            raise AssertionError("tenacity ended without a response or an error")
        info = parse_rate_limit(response.headers)
        status = response.status_code
        self._observe("GET", template, status, time.perf_counter() - started, info, None)
        if status == 200:
            value = parse_json(response.content)
            if not isinstance(value, str):
                return value
            code = AnswerCode.UNEXPECTED_RESPONSE
        elif status == 429:
            code = AnswerCode.RATE_LIMITED
        elif status >= 500:
            code = AnswerCode.UPSTREAM_UNAVAILABLE
        else:
            code = {
                401: AnswerCode.UPSTREAM_AUTH,
                403: AnswerCode.UPSTREAM_FORBIDDEN,
                404: AnswerCode.NOT_FOUND,
            }.get(status, AnswerCode.UNEXPECTED_RESPONSE)
        raise DiditError(
            f"HTTP {status}: {error_message(response.content)}",
            code=code,
            http_status=status,
            retry_after_s=info.retry_after_s if info else None,
            rate_limit=info,
        )

    def _observe(
        self,
        method: str,
        path: str,
        status: int | None,
        latency: float,
        info: RateLimitInfo | None,
        error_type: str | None,
    ) -> None:
        if self._observer is not None:
            self._observer(
                Exchange(
                    method=method,
                    path=path,
                    http_status=status,
                    latency_s=latency,
                    rate_limit=info,
                    error_type=error_type,
                )
            )
