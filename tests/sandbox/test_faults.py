"""Fault injection: reproducible from the seed, honoured in rough proportion, per endpoint."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pytest

from bridge.sandbox.control import SandboxControl, SandboxControlError
from tests.support.sandbox import sandbox_in_thread

IMPORT = "/v3/session/import-shared/"
SPEC: dict[str, Any] = {
    "error_rate": 0.2,
    "throttle_rate": 0.1,
    "ambiguous_rate": 0.05,
    "ambiguous_modes": ["504"],
    "latency_ms": 1,
    "jitter_ms": 2,
}


class TestReproducible:
    def test_the_same_seed_gives_the_same_schedule(self, control: SandboxControl) -> None:
        """Another sandbox with the same seed plans the same faults; another seed does not."""
        control.set_faults("import", **SPEC)
        ours = control.fault_schedule("import", count=200)
        with sandbox_in_thread(11) as twin, sandbox_in_thread(12) as stranger:
            twin.control.set_faults("import", **SPEC)
            stranger.control.set_faults("import", **SPEC)
            same = twin.control.fault_schedule("import", count=200)
            other = stranger.control.fault_schedule("import", count=200)

        assert same == ours
        assert [d["label"] for d in other] != [d["label"] for d in ours]

    def test_calls_get_the_scheduled_faults(
        self, didit: httpx.Client, control: SandboxControl, ours: dict[str, Any]
    ) -> None:
        """The ledger's faults are the preview's, call by call; setting faults restarts it."""
        control.set_faults("import", **SPEC)
        control.fault_schedule("import", count=5)  # previewing uses nothing up
        planned = control.fault_schedule("import", count=60)

        statuses = [
            didit.post(IMPORT, json={}, headers={"x-api-key": ours["api_key"]}).status_code
            for _ in range(60)
        ]

        calls = control.calls()
        assert [call["fault"] for call in calls] == [d["label"] for d in planned]
        expected = [
            {"error": d["status"], "throttle": 429, "ambiguous": 504}.get(d["kind"], 400)
            for d in planned
        ]
        assert statuses == expected
        control.set_faults("import", **SPEC)
        assert control.fault_schedule("import", count=60) == planned


class TestHonoured:
    def test_fractions_are_roughly_the_rates(self, control: SandboxControl) -> None:
        """Over 4000 planned calls each rate lands within a few points, 5xx spread out."""
        control.set_faults("import", **(SPEC | {"ambiguous_modes": ["504", "drop", "slow"]}))

        plan = control.fault_schedule("import", count=4000)

        kinds = Counter(d["kind"] for d in plan)
        assert kinds["error"] / 4000 == pytest.approx(0.2, abs=0.03)
        assert kinds["throttle"] / 4000 == pytest.approx(0.1, abs=0.02)
        assert kinds["ambiguous"] / 4000 == pytest.approx(0.05, abs=0.015)
        assert {d["status"] for d in plan if d["kind"] == "error"} == {500, 502, 503}
        assert {d["label"] for d in plan if d["kind"] == "ambiguous"} == {
            "ambiguous_504",
            "ambiguous_drop",
            "ambiguous_slow",
        }
        latencies = [d["latency_ms"] for d in plan]
        assert min(latencies) >= 1
        assert max(latencies) <= 3

    def test_5xx_and_429_over_http(
        self, didit: httpx.Client, control: SandboxControl, ours: dict[str, Any]
    ) -> None:
        """With half errors and half throttles, every answer is one of them, in its shape."""
        control.set_faults("import", error_rate=0.5, throttle_rate=0.5, retry_after_s=7)
        answers = [
            didit.post(IMPORT, json={}, headers={"x-api-key": ours["api_key"]}) for _ in range(60)
        ]

        by_status = {response.status_code: response for response in answers}
        assert set(by_status) == {429, 500, 502, 503}
        assert by_status[429].headers["retry-after"] == "7"
        assert by_status[429].headers["x-ratelimit-remaining"] == "0"
        assert by_status[500].json() == {"detail": "A server error occurred."}
        assert "502 Bad Gateway" in by_status[502].text
        assert by_status[503].json()["message"]
        assert control.redemptions() == []

    def test_latency_is_added(
        self, didit: httpx.Client, control: SandboxControl, ours: dict[str, Any]
    ) -> None:
        """latency_ms delays every answer at least that long; the ledger says so."""
        control.set_faults("list", latency_ms=40, jitter_ms=10)

        started = time.perf_counter()
        response = didit.get("/v3/sessions/", headers={"x-api-key": ours["api_key"]})
        elapsed_ms = (time.perf_counter() - started) * 1000

        assert response.status_code == 200
        assert elapsed_ms >= 40
        [call] = control.calls()
        assert call["fault"] == "latency"
        assert call["latency_ms"] >= 40

    def test_faults_stay_on_their_endpoint(
        self, didit: httpx.Client, control: SandboxControl, ours: dict[str, Any]
    ) -> None:
        """Faults on decision leave list alone; clearing them ends them."""
        control.set_faults("decision", error_rate=1.0, error_statuses=[503])
        headers = {"x-api-key": ours["api_key"]}

        assert didit.get("/v3/session/x/decision/", headers=headers).status_code == 503
        assert didit.get("/v3/sessions/", headers=headers).status_code == 200
        control.clear_faults("decision")
        assert didit.get("/v3/session/x/decision/", headers=headers).status_code == 404


class TestControl:
    @pytest.mark.parametrize(
        "spec",
        [
            {"error_rate": 0.6, "throttle_rate": 0.5},
            {"error_rate": 1.5},
            {"error_statuses": [404]},
            {"ambiguous_modes": ["lost"]},
            {"surprise": 1},
        ],
    )
    def test_an_impossible_spec_is_refused(
        self, control: SandboxControl, spec: dict[str, Any]
    ) -> None:
        """Rates summing over 1, non-5xx statuses, unknown modes or keys: 422."""
        with pytest.raises(SandboxControlError) as refused:
            control.set_faults("import", **spec)
        assert refused.value.status == 422

    def test_an_unknown_endpoint_is_404(self, control: SandboxControl) -> None:
        """Faults exist for import, share, list and decision."""
        for call in (
            lambda: control.set_faults("webhooks", error_rate=1),
            lambda: control.clear_faults("webhooks"),
            lambda: control.fault_schedule("webhooks"),
        ):
            with pytest.raises(SandboxControlError) as refused:
                call()
            assert refused.value.status == 404

    def test_faults_can_be_read_and_cleared(self, control: SandboxControl) -> None:
        """GET lists what is set; DELETE clears all."""
        control.set_faults("share", error_rate=0.5)

        assert control.faults()["share"]["error_rate"] == 0.5
        control.clear_faults()
        assert control.faults() == {}
        assert control.fault_schedule("share") == []
