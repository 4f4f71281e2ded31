"""Trailing slashes, unknown paths and methods, and the headers every answer carries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


class TestTrailingSlash:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v3/sessions"),
            ("POST", "/v3/session/import-shared"),
            ("GET", "/v3/session/abc/decision"),
            ("POST", "/v3/session/abc/share"),
        ],
    )
    def test_a_slashless_path_answers_301_to_the_slashed_one(
        self, didit: httpx.Client, ours: dict[str, Any], method: str, path: str
    ) -> None:
        """Didit redirects permanently; a POST is redirected too (clients may replay it as GET)."""
        response = didit.request(method, path, headers={"x-api-key": ours["api_key"]})

        assert response.status_code == 301
        assert response.headers["location"] == f"{path}/"

    def test_the_redirect_keeps_the_query(self, didit: httpx.Client) -> None:
        """The query string survives the redirect."""
        response = didit.get("/v3/sessions", params={"vendor_data": "a b", "limit": 2})

        assert response.status_code == 301
        assert response.headers["location"] == "/v3/sessions/?vendor_data=a+b&limit=2"

    def test_the_redirect_is_in_the_call_ledger(self, didit: httpx.Client, sandbox: Any) -> None:
        """Redirects are calls too."""
        didit.get("/v3/sessions")

        [call] = sandbox.control.calls()
        assert (call["endpoint"], call["status"]) == ("redirect", 301)


class TestUnknown:
    def test_an_unknown_path_is_404(self, didit: httpx.Client, ours: dict[str, Any]) -> None:
        """Paths Didit does not have, slashed or not."""
        for path in ("/v3/nothing/", "/v3/nothing"):
            response = didit.get(path, headers={"x-api-key": ours["api_key"]})
            assert response.status_code == 404
            assert response.json() == {"detail": "Not found."}

    def test_a_wrong_method_is_405(self, didit: httpx.Client, ours: dict[str, Any]) -> None:
        """A known path with another method."""
        response = didit.post("/v3/sessions/", headers={"x-api-key": ours["api_key"]})

        assert response.status_code == 405
        assert response.json() == {"detail": 'Method "POST" not allowed.'}


class TestRateLimitHeaders:
    @pytest.mark.parametrize(
        ("method", "path", "key"),
        [
            ("GET", "/v3/sessions/", "ours"),
            ("GET", "/v3/sessions/", "wrong"),
            ("POST", "/v3/session/import-shared/", "ours"),
            ("GET", "/v3/sessions", "ours"),
            ("GET", "/v3/session/none/decision/", "ours"),
        ],
    )
    def test_every_answer_carries_them(
        self, didit: httpx.Client, ours: dict[str, Any], method: str, path: str, key: str
    ) -> None:
        """200, 401, 400, 301 and 404 answers all say where the quota stands."""
        api_key = ours["api_key"] if key == "ours" else "sbx_wrong"

        response = didit.request(method, path, headers={"x-api-key": api_key}, json={})

        for header in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
            assert int(response.headers[header]) >= 0
