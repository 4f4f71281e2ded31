"""``bridge.delivery``: classification, Retry-After parsing, and the Sender over MockTransport."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.utils import formatdate

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from bridge.config import Destination
from bridge.delivery import (
    EXCERPT_BYTES,
    RETRY_AFTER_CAP_S,
    USER_AGENT,
    Sender,
    Verdict,
    classify,
    parse_retry_after,
)
from tests.delivery.helpers import NEW_SECRET, SECRET, destination, make_settings

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000.0
BODY = b'{"type":"share.imported","id":"evt_1"}'


def config(url: str = "https://crm.example/hooks", **overrides: object) -> Destination:
    return make_settings({"crm": destination(url, **overrides)}).destinations["crm"]


def answer(status: int, **headers: str) -> Verdict:
    return classify(status, httpx.Headers(headers), latency_ms=1, excerpt=b"", now=NOW).verdict


class TestClassify:
    @pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
    def test_2xx_is_delivered(self, status: int) -> None:
        """Any 2xx is success."""
        assert answer(status) is Verdict.DELIVERED

    @pytest.mark.parametrize("status", [301, 302, 307, 308, 400, 401, 404, 409, 500, 502, 504])
    def test_everything_else_fails(self, status: int) -> None:
        """3xx (never followed), other 4xx and 5xx are failures on the schedule."""
        assert answer(status) is Verdict.FAILED

    def test_410_disables(self) -> None:
        """410 Gone disables the destination, even when it also asks to abort."""
        assert answer(410) is Verdict.DISABLE
        assert answer(410, **{"webhook-delivery": "abort-message"}) is Verdict.DISABLE

    @pytest.mark.parametrize("status", [400, 422, 500, 503, 429])
    def test_abort_message_header(self, status: int) -> None:
        """``webhook-delivery: abort-message`` (any letter case) ends retries."""
        assert answer(status, **{"Webhook-Delivery": "Abort-Message"}) is Verdict.ABORT

    def test_abort_header_on_a_2xx_is_still_delivered(self) -> None:
        assert answer(200, **{"webhook-delivery": "abort-message"}) is Verdict.DELIVERED

    @pytest.mark.parametrize("status", [429, 503])
    def test_retry_after_on_429_and_503(self, status: int) -> None:
        """429 and 503 with a readable Retry-After wait as asked."""
        result = classify(
            status, httpx.Headers({"Retry-After": "42"}), latency_ms=1, excerpt=b"", now=NOW
        )
        assert result.verdict is Verdict.RETRY_AFTER
        assert result.retry_after_s == 42.0
        assert result.error == f"HTTP {status}, Retry-After 42s"

    def test_retry_after_on_a_500_is_ignored(self) -> None:
        assert answer(500, **{"retry-after": "42"}) is Verdict.FAILED

    def test_unreadable_retry_after_falls_back_to_the_schedule(self) -> None:
        assert answer(429, **{"retry-after": "soon"}) is Verdict.FAILED


class TestRetryAfter:
    def test_seconds(self) -> None:
        assert parse_retry_after("120", now=NOW) == 120.0
        assert parse_retry_after(" 0 ", now=NOW) == 0.0

    def test_http_date(self) -> None:
        assert parse_retry_after(formatdate(NOW + 90, usegmt=True), now=NOW) == 90.0

    def test_a_past_date_means_now(self) -> None:
        assert parse_retry_after(formatdate(NOW - 90, usegmt=True), now=NOW) == 0.0

    def test_capped_at_two_hours(self) -> None:
        assert parse_retry_after("999999", now=NOW) == RETRY_AFTER_CAP_S
        far = formatdate(NOW + 86_400, usegmt=True)
        assert parse_retry_after(far, now=NOW) == RETRY_AFTER_CAP_S

    @pytest.mark.parametrize("value", [None, "", "soon", "-", "nan", "Tue, 99 Foo 2026"])
    def test_unreadable(self, value: str | None) -> None:
        assert parse_retry_after(value, now=NOW) is None

    @given(st.text())
    def test_any_text_gives_none_or_a_bounded_delay(self, value: str) -> None:
        """Whatever a destination sends, the answer is None or within 0..2 h; never a crash."""
        seconds = parse_retry_after(value, now=NOW)
        assert seconds is None or 0.0 <= seconds <= RETRY_AFTER_CAP_S


class Recorder:
    """A MockTransport handler that records requests and answers with ``respond``."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._respond(request)

    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(self)


class TestSender:
    async def test_signed_post(self) -> None:
        """The POST carries the fixed body and id, a signature per secret and our user-agent."""
        recorder = Recorder(lambda _r: httpx.Response(204))
        async with Sender(transport=recorder.transport, clock=lambda: NOW) as sender:
            result = await sender.send(
                "crm", config(secrets=[SECRET, NEW_SECRET]), message_id="evt_1", body=BODY
            )
        assert result.verdict is Verdict.DELIVERED
        assert result.http_status == 204
        [request] = recorder.requests
        assert request.method == "POST"
        assert str(request.url) == "https://crm.example/hooks"
        assert request.content == BODY
        assert request.headers["webhook-id"] == "evt_1"
        assert request.headers["webhook-timestamp"] == str(int(NOW))
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == USER_AGENT
        signatures = request.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2
        assert all(s.startswith("v1,") for s in signatures)
        for secret in (SECRET, NEW_SECRET):
            signed = Webhook(secret).sign("evt_1", _utc(NOW), BODY.decode())
            assert signed in signatures

    async def test_redirects_are_not_followed(self) -> None:
        """A 301 is a failure; the Location is never requested."""
        recorder = Recorder(
            lambda _r: httpx.Response(301, headers={"location": "https://elsewhere.example/"})
        )
        async with Sender(transport=recorder.transport) as sender:
            result = await sender.send("crm", config(), message_id="evt_1", body=BODY)
        assert result.verdict is Verdict.FAILED
        assert result.http_status == 301
        assert "redirect" in (result.error or "")
        assert len(recorder.requests) == 1

    async def test_the_excerpt_is_the_first_2_kb(self) -> None:
        recorder = Recorder(lambda _r: httpx.Response(500, content=b"e" * 10_000))
        async with Sender(transport=recorder.transport) as sender:
            result = await sender.send("crm", config(), message_id="evt_1", body=BODY)
        assert result.response_excerpt == b"e" * EXCERPT_BYTES
        assert result.error == "HTTP 500"

    async def test_a_connection_error_is_a_failure_without_status(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        async with Sender(transport=Recorder(refuse).transport) as sender:
            result = await sender.send("crm", config(), message_id="evt_1", body=BODY)
        assert result.verdict is Verdict.FAILED
        assert result.http_status is None
        assert result.error == "ConnectError: connection refused"

    async def test_a_refused_real_connection(self) -> None:
        """The default (aiohttp) transport reports a closed port as a failure, not a crash."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        async with Sender() as sender:
            result = await sender.send(
                "crm",
                config(url=f"http://127.0.0.1:{port}/hooks"),
                message_id="evt_1",
                body=BODY,
            )
        assert result.verdict is Verdict.FAILED
        assert result.http_status is None
        assert result.error

    async def test_anything_a_client_raises_is_a_failed_attempt_without_credentials(
        self,
    ) -> None:
        """An error a transport was not expected to raise (aiohttp refusing a URL, say) is a
        failed attempt on the schedule, never a crash; URLs in its text lose their query."""

        def refuse(request: httpx.Request) -> httpx.Response:
            raise ValueError(f"cannot send to {request.url}")

        url = "https://crm.example/hooks?token=SECRET-QUERY"
        async with Sender(transport=Recorder(refuse).transport) as sender:
            result = await sender.send("crm", config(url=url), message_id="evt_1", body=BODY)
        assert result.verdict is Verdict.FAILED
        assert result.http_status is None
        assert result.error == "ValueError: cannot send to https://crm.example/hooks?[REDACTED]"

    async def test_a_2xx_whose_body_never_ends_is_delivered(self) -> None:
        """The status line decides, within the timeout; a slow body only shortens the excerpt."""

        async def endless() -> AsyncIterator[bytes]:
            yield b"ok, "
            await asyncio.Event().wait()  # the rest never comes
            yield b"never"

        recorder = Recorder(lambda _r: httpx.Response(200, content=endless()))
        async with Sender(transport=recorder.transport) as sender:
            result = await sender.send("crm", config(timeout_s=0.5), message_id="evt_1", body=BODY)
        assert (result.verdict, result.http_status) == (Verdict.DELIVERED, 200)
        assert result.response_excerpt == b"ok, "

    async def test_one_pool_per_destination_rebuilt_when_its_config_changes(self) -> None:
        built: list[httpx.AsyncBaseTransport] = []
        recorder = Recorder(lambda _r: httpx.Response(200))

        def transport() -> httpx.AsyncBaseTransport:
            built.append(recorder.transport())
            return built[-1]

        async with Sender(transport=transport) as sender:
            for _ in range(3):
                await sender.send("crm", config(), message_id="evt_1", body=BODY)
            await sender.send("audit", config(), message_id="evt_1", body=BODY)
            await sender.send("crm", config(timeout_s=5), message_id="evt_1", body=BODY)
        assert len(built) == 3
        assert len(recorder.requests) == 5


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
