"""The per-API-key sliding-window quota, over HTTP and as a pure window."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from bridge.sandbox.control import SandboxControl, SandboxControlError
from bridge.sandbox.quota import SlidingWindow

IMPORT = "/v3/session/import-shared/"


class TestOverHttp:
    def test_the_301st_write_in_a_window_is_429(
        self, didit: httpx.Client, control: SandboxControl, ours: dict[str, Any]
    ) -> None:
        """Default quota (300 writes / 60 s): Remaining counts 299..0, then a 429 with
        Retry-After; the refused call does not count."""
        assert control.set_quota()["write_limit"] == 300
        headers = {"x-api-key": ours["api_key"]}
        remaining = []
        for _ in range(300):
            response = didit.post(IMPORT, json={}, headers=headers)
            assert response.status_code == 400
            assert response.headers["x-ratelimit-limit"] == "300"
            remaining.append(int(response.headers["x-ratelimit-remaining"]))

        refused = didit.post(IMPORT, json={}, headers=headers)

        assert remaining == list(range(299, -1, -1))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert int(refused.headers["x-ratelimit-reset"]) >= int(time.time())
        assert "throttled" in refused.json()["detail"]
        calls = control.calls()
        assert [call["status"] for call in calls[-2:]] == [400, 429]
        assert calls[-1]["handler_status"] is None

    def test_reads_and_other_keys_have_their_own_windows(
        self, didit: httpx.Client, control: SandboxControl, ours: dict[str, Any]
    ) -> None:
        """Writes exhausted: GETs still pass (limit 600), and another key's writes too."""
        control.set_quota(write_limit=2, read_limit=5)
        headers = {"x-api-key": ours["api_key"]}
        for _ in range(2):
            didit.post(IMPORT, json={}, headers=headers)

        write = didit.post(IMPORT, json={}, headers=headers)
        read = didit.get("/v3/sessions/", headers=headers)
        other = didit.post(
            IMPORT, json={}, headers={"x-api-key": control.application("acme")["api_key"]}
        )

        assert write.status_code == 429
        assert read.status_code == 200
        assert read.headers["x-ratelimit-limit"] == "5"
        assert read.headers["x-ratelimit-remaining"] == "4"
        assert other.status_code == 400

    def test_a_bad_quota_is_refused(self, control: SandboxControl) -> None:
        """Limits are positive."""
        with pytest.raises(SandboxControlError) as refused:
            control.set_quota(write_limit=0)
        assert refused.value.status == 422

    def test_reset_restores_the_initial_quota(self, control: SandboxControl) -> None:
        """A test's small window does not leak into the next."""
        control.set_quota(write_limit=3)

        control.reset()

        assert control.quota()["write_limit"] == 300


class TestSlidingWindow:
    def test_a_slot_frees_when_its_call_leaves_the_window(self) -> None:
        """Sliding, not fixed: each call's slot returns window_s after it."""
        window = SlidingWindow(limit=2, window_s=60.0)

        assert window.hit("k", 1000.0).remaining == 1
        assert window.hit("k", 1030.0).remaining == 0
        refused = window.hit("k", 1059.0)
        assert not refused.allowed
        assert refused.retry_after == 1  # the first call leaves at 1060
        assert refused.reset == 1060
        assert window.hit("k", 1060.0).allowed
        assert not window.hit("k", 1061.0).allowed
        assert window.hit("k", 1090.5).allowed

    def test_peek_counts_nothing(self) -> None:
        """Peeking shows the state and leaves it."""
        window = SlidingWindow(limit=3, window_s=10.0)
        window.hit("k", 0.0)

        assert window.peek("k", 1.0).remaining == 2
        assert window.peek("k", 1.0).remaining == 2
        assert window.peek("other", 1.0).remaining == 3
        assert window.peek("k", 10.5).remaining == 3

    def test_retry_after_is_whole_seconds_at_least_one(self) -> None:
        """Retry-After rounds up and never says 0."""
        window = SlidingWindow(limit=1, window_s=2.5)
        window.hit("k", 0.0)

        assert window.hit("k", 0.1).retry_after == 3
        assert window.hit("k", 2.45).retry_after == 1
