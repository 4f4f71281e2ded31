from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bridge.didit import (
    CONNECT_ATTEMPTS,
    AnswerVerdict,
    DiditClient,
    DiditError,
    Exchange,
    Failed,
    Imported,
    NeedsReconcile,
    NoAnswer,
    Rejected,
    RetryLater,
)

pytestmark = pytest.mark.anyio

API_KEY = "key-0123456789"
TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzZXNzaW9uX2lkIjoiYWJjIiwiZXhwIjoxNzUzNjM0MjY2fQ"
    ".c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
)
CREATED = {"session_id": "new-1", "session_number": 7, "status": "In Review"}
Handler = Callable[[httpx.Request], httpx.Response]


class FakeDidit:
    """Records requests; answers from a script of responses or exceptions, then 201."""

    def __init__(self, *script: httpx.Response | Exception | Handler) -> None:
        self.requests: list[httpx.Request] = []
        self._script = list(script)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self._script.pop(0) if self._script else httpx.Response(201, json=CREATED)
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)


def client(fake: FakeDidit, base_url: str = "https://didit.test", **kwargs: Any) -> DiditClient:
    options: dict[str, Any] = {"timeout_s": 5.0, "retry_wait_s": 0.0, "user_agent": "bridge-test"}
    return DiditClient(
        base_url, API_KEY, transport=httpx.MockTransport(fake), **{**options, **kwargs}
    )


async def redeem(didit: DiditClient, *, trust_review: bool = False) -> Any:
    return await didit.import_shared(
        share_token=TOKEN, workflow_id="wf-1", vendor_data="acme:1", trust_review=trust_review
    )


class TestImportRequest:
    async def test_the_request_is_exactly_what_didit_expects(self) -> None:
        fake = FakeDidit()
        async with client(fake) as didit:
            answer = await redeem(didit)
        (request,) = fake.requests
        assert request.method == "POST"
        assert str(request.url) == "https://didit.test/v3/session/import-shared/"
        assert request.headers["x-api-key"] == API_KEY
        assert request.headers["user-agent"] == "bridge-test"
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == {
            "share_token": TOKEN,
            "workflow_id": "wf-1",
            "vendor_data": "acme:1",
            "trust_review": False,
        }
        assert isinstance(answer.verdict, Imported)
        assert answer.verdict.session.session_id == "new-1"
        assert (answer.http_status, answer.tries, answer.body_excerpt) == (201, 1, "")
        assert answer.latency_s >= 0.0

    async def test_trust_review_true_is_sent(self) -> None:
        fake = FakeDidit()
        async with client(fake) as didit:
            await redeem(didit, trust_review=True)
        assert json.loads(fake.requests[0].content)["trust_review"] is True

    @pytest.mark.parametrize(
        "base_url", ["https://didit.test/", "https://didit.test/v3", "https://didit.test/v3/"]
    )
    async def test_a_base_url_with_v3_or_a_slash_keeps_the_exact_path(self, base_url: str) -> None:
        fake = FakeDidit()
        async with client(fake, base_url=base_url) as didit:
            await redeem(didit)
        assert fake.requests[0].url.path == "/v3/session/import-shared/"

    async def test_the_rate_limit_headers_are_exposed(self) -> None:
        headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "41"}
        fake = FakeDidit(httpx.Response(201, json=CREATED, headers=headers))
        async with client(fake) as didit:
            answer = await redeem(didit)
        assert answer.rate_limit is not None
        assert (answer.rate_limit.limit, answer.rate_limit.remaining) == (300, 41)

    async def test_a_429_carries_retry_after(self) -> None:
        fake = FakeDidit(
            httpx.Response(429, json={"detail": "Too many"}, headers={"Retry-After": "9"})
        )
        async with client(fake) as didit:
            answer = await redeem(didit)
        assert isinstance(answer.verdict, RetryLater)
        assert answer.verdict.retry_after_s == 9.0
        assert answer.rate_limit is not None
        assert answer.rate_limit.retry_after_s == 9.0
        assert answer.body_excerpt == '{"detail":"Too many"}'

    @pytest.mark.parametrize(
        ("response", "expected", "code"),
        [
            (
                httpx.Response(401, json={"detail": "Share token expired"}),
                Rejected,
                "token_invalid_or_expired",
            ),
            (httpx.Response(401, json={"detail": "Invalid API key"}), Failed, "upstream_auth"),
            (httpx.Response(403, json={"detail": "already imported"}), NeedsReconcile, "forbidden"),
            (
                httpx.Response(404, json={"detail": "Workflow not found"}),
                Failed,
                "workflow_not_found",
            ),
            (
                httpx.Response(402, json={"message": "Insufficient balance"}),
                Failed,
                "insufficient_balance",
            ),
            (httpx.Response(502, text="bad gateway"), RetryLater, "upstream_unavailable"),
        ],
    )
    async def test_answers_are_classified(
        self, response: httpx.Response, expected: type[AnswerVerdict], code: str
    ) -> None:
        async with client(FakeDidit(response)) as didit:
            answer = await redeem(didit)
        assert isinstance(answer.verdict, expected)
        assert answer.verdict.code == code
        assert answer.http_status == response.status_code

    async def test_the_token_never_shows_in_the_answer(self) -> None:
        echo = httpx.Response(401, json={"detail": f"bad token {TOKEN}"})
        async with client(FakeDidit(echo)) as didit:
            answer = await redeem(didit)
        assert TOKEN not in repr(answer)
        assert TOKEN[:30] not in answer.body_excerpt


class TestTransportFailures:
    @pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
    async def test_an_unsent_request_is_retried_in_process(self, error: type[Exception]) -> None:
        fake = FakeDidit(error("refused"), error("refused"))
        async with client(fake) as didit:
            answer = await redeem(didit)
        assert len(fake.requests) == 3
        assert answer.tries == 3
        assert isinstance(answer.verdict, Imported)

    async def test_unsent_after_every_try_is_retried_later_not_ambiguous(self) -> None:
        fake = FakeDidit(*(httpx.ConnectError("refused") for _ in range(5)))
        async with client(fake) as didit:
            answer = await redeem(didit)
        assert len(fake.requests) == CONNECT_ATTEMPTS
        assert isinstance(answer.verdict, RetryLater)
        assert answer.verdict.code == "upstream_unavailable"
        assert not answer.verdict.ambiguous
        assert answer.http_status is None
        assert "ConnectError" in answer.verdict.message

    @pytest.mark.parametrize(
        "error",
        [
            httpx.ReadTimeout,
            httpx.ReadError,
            httpx.WriteError,
            httpx.WriteTimeout,
            httpx.RemoteProtocolError,
        ],
    )
    async def test_a_request_that_may_have_gone_is_not_retried(
        self, error: type[Exception]
    ) -> None:
        """No second call: the import may have happened, so the attempt is ambiguous."""
        fake = FakeDidit(error("lost"))
        async with client(fake) as didit:
            answer = await redeem(didit)
        assert len(fake.requests) == 1
        assert isinstance(answer.verdict, NoAnswer)
        assert answer.verdict.error_type == error.__name__
        assert answer.verdict.code == "no_answer"
        assert answer.http_status is None
        assert TOKEN not in repr(answer)

    async def test_a_redirect_is_reported_not_followed(self) -> None:
        fake = FakeDidit(
            httpx.Response(301, headers={"location": "https://didit.test/v3/session/import-shared"})
        )
        async with client(fake) as didit:
            answer = await redeem(didit)
        assert len(fake.requests) == 1
        assert isinstance(answer.verdict, Failed)
        assert answer.verdict.code == "unexpected_response"
        assert answer.http_status == 301


def page(results: list[dict[str, Any]], *, more: bool) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "count": 999,
            "next": "https://elsewhere.example/v3/sessions/?offset=2" if more else None,
            "previous": None,
            "results": results,
        },
    )


class TestListSessions:
    async def test_query_and_paging(self) -> None:
        fake = FakeDidit(
            page([{"session_id": "a"}, {"session_id": "b"}], more=True),
            page([{"session_id": "c"}, {"nonsense": 1}], more=False),
        )
        async with client(fake) as didit:
            rows = await didit.list_sessions(
                vendor_data="acme:1 ü&x",
                workflow_id="wf-1",
                session_kind="user",
                date_from=datetime(2026, 11, 25, 10, 0, 5, 900, tzinfo=UTC),
                limit=2,
            )
        assert [row.session_id for row in rows] == ["a", "b", "c"]
        first, second = fake.requests
        assert first.method == "GET"
        assert first.url.path == "/v3/sessions/"
        assert first.url.host == "didit.test"
        assert dict(first.url.params) == {
            "vendor_data": "acme:1 ü&x",
            "workflow_id": "wf-1",
            "session_kind": "user",
            "date_from": "2026-11-25T10:00:05Z",
            "limit": "2",
            "offset": "0",
        }
        assert second.url.host == "didit.test"  # `next` is a hint, never a URL to follow
        assert second.url.params["offset"] == "2"
        assert first.headers["x-api-key"] == API_KEY

    async def test_paging_stops_after_max_pages(self) -> None:
        fake = FakeDidit(*(page([{"session_id": f"s{n}"}], more=True) for n in range(10)))
        async with client(fake) as didit:
            rows = await didit.list_sessions(
                vendor_data="v",
                workflow_id="w",
                session_kind="all",
                date_from=datetime(2026, 1, 1, tzinfo=UTC),
                max_pages=3,
            )
        assert len(fake.requests) == 3
        assert len(rows) == 3

    async def test_a_bare_list_or_an_empty_page(self) -> None:
        fake = FakeDidit(
            httpx.Response(200, json=[{"session_id": "a"}]),
            httpx.Response(200, json={"results": []}),
            httpx.Response(200, json={"unexpected": True}),
        )
        async with client(fake) as didit:
            kwargs: dict[str, Any] = {
                "vendor_data": "v",
                "workflow_id": "w",
                "session_kind": "user",
                "date_from": datetime(2026, 1, 1, tzinfo=UTC),
            }
            assert [row.session_id for row in await didit.list_sessions(**kwargs)] == ["a"]
            assert await didit.list_sessions(**kwargs) == []
            assert await didit.list_sessions(**kwargs) == []

    async def test_a_naive_date_is_refused(self) -> None:
        async with client(FakeDidit()) as didit:
            with pytest.raises(ValueError, match="timezone"):
                await didit.list_sessions(
                    vendor_data="v",
                    workflow_id="w",
                    session_kind="user",
                    date_from=datetime(2026, 1, 1),  # noqa: DTZ001 - the point of the test
                )

    @pytest.mark.parametrize(
        ("step", "code", "retryable"),
        [
            (httpx.Response(429, headers={"Retry-After": "3"}), "rate_limited", True),
            (httpx.Response(503), "upstream_unavailable", True),
            (httpx.Response(401, json={"detail": "Invalid API key"}), "upstream_auth", False),
            (httpx.Response(403), "upstream_forbidden", False),
            (httpx.Response(301, headers={"location": "/x"}), "unexpected_response", False),
            (httpx.Response(200, text="<html>"), "unexpected_response", False),
            (httpx.ReadTimeout("slow"), "upstream_unavailable", True),
        ],
    )
    async def test_failures_raise_didit_error(
        self, step: httpx.Response | Exception, code: str, retryable: bool
    ) -> None:
        fake = FakeDidit(step)
        async with client(fake) as didit:
            with pytest.raises(DiditError) as caught:
                await didit.list_sessions(
                    vendor_data="v",
                    workflow_id="w",
                    session_kind="user",
                    date_from=datetime(2026, 1, 1, tzinfo=UTC),
                )
        assert caught.value.code == code
        assert caught.value.retryable is retryable
        assert len(fake.requests) == 1
        if code == "rate_limited":
            assert caught.value.retry_after_s == 3.0


class TestDecision:
    async def test_the_decision_path_and_body(self) -> None:
        fake = FakeDidit(httpx.Response(200, json={"session_id": "a/b", "status": "Approved"}))
        async with client(fake) as didit:
            decision = await didit.get_decision("a/b")
        assert decision["status"] == "Approved"
        assert fake.requests[0].url.raw_path == b"/v3/session/a%2Fb/decision/"

    @pytest.mark.parametrize(
        ("response", "code"),
        [
            (httpx.Response(404, json={"detail": "Not found."}), "not_found"),
            (httpx.Response(200, json=["not", "an", "object"]), "unexpected_response"),
        ],
    )
    async def test_decision_failures(self, response: httpx.Response, code: str) -> None:
        async with client(FakeDidit(response)) as didit:
            with pytest.raises(DiditError) as caught:
                await didit.get_decision("a")
        assert caught.value.code == code

    async def test_a_connect_error_is_retried_for_reads_too(self) -> None:
        fake = FakeDidit(httpx.ConnectError("refused"), httpx.Response(200, json={"x": 1}))
        async with client(fake) as didit:
            assert await didit.get_decision("a") == {"x": 1}
        assert len(fake.requests) == 2


class TestObserver:
    async def test_every_exchange_is_observed_without_values(self) -> None:
        seen: list[Exchange] = []
        fake = FakeDidit(
            httpx.Response(201, json=CREATED, headers={"X-RateLimit-Remaining": "3"}),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json={"status": "Approved"}),
        )
        async with client(fake, observer=seen.append) as didit:
            await redeem(didit)
            await redeem(didit)
            await didit.get_decision("secret-session")
        assert [(e.method, e.path, e.http_status, e.error_type) for e in seen] == [
            ("POST", "/v3/session/import-shared/", 201, None),
            ("POST", "/v3/session/import-shared/", None, "ReadTimeout"),
            ("GET", "/v3/session/{session_id}/decision/", 200, None),
        ]
        assert seen[0].rate_limit is not None
        assert seen[0].rate_limit.remaining == 3


async def test_aclose_closes_the_pool() -> None:
    didit = client(FakeDidit())
    await didit.aclose()
    with pytest.raises(RuntimeError):
        await redeem(didit)
