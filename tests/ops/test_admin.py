"""The admin API in process: ``Admin`` routes over a real SQLite store, driven by httpx."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette

from bridge import auth, config
from bridge.app import Admin, LiveConfig
from bridge.app.operations import Operations
from bridge.cli.notifications_command import render_timeline
from bridge.errors import ConfigIssue, StoreUnavailable
from bridge.store import (
    AttemptReport,
    FinalOutcome,
    JobKind,
    NewEvent,
    Store,
)
from bridge.store.ids import new_id
from bridge.types import EventType, NotificationStatus, Reason
from tests.ops.scenario import TARGET
from tests.store.helpers import FakeClock, notification
from tests.support.bridge_process import ADMIN_TOKEN, make_config
from tests.support.recording_sink import SINK_SECRET

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzZXNzaW9uX2lkIjoiYSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


def settings(*, admin: bool = True) -> config.Settings:
    document = make_config(
        TARGET,
        db_path=Path("/nonexistent/unused.db"),
        port=0,
        destinations={
            "crm": {"url": "http://127.0.0.1:9/crm", "secrets": [SINK_SECRET]},
            "audit": {"url": "http://127.0.0.1:9/audit", "secrets": [SINK_SECRET]},
        },
        admin_token=ADMIN_TOKEN if admin else None,
    )
    return config.load_text(yaml.safe_dump(document))


class Harness:
    def __init__(self, store: Store, clock: FakeClock, *, admin: bool = True) -> None:
        self.store = store
        self.clock = clock
        current = settings(admin=admin)
        self.live = LiveConfig(settings=current, verifiers=auth.verifiers_for(current))
        self.retries = 0
        self.redeliveries = 0
        self.reload_issues: Sequence[ConfigIssue] = ()
        self.operations = Operations(
            store=store,
            settings=lambda: self.live.settings,
            reload=lambda: self.reload_issues,
            on_retry=self._retried,
            on_redeliver=self._redelivered,
            clock=clock,
        )
        self.admin = Admin(live=lambda: self.live, operations=self.operations)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=Starlette(routes=self.admin.routes())),
            base_url="http://admin.test/admin/v1",
        )

    def _retried(self) -> None:
        self.retries += 1

    def _redelivered(self) -> None:
        self.redeliveries += 1

    async def finished(self, key: str, status: NotificationStatus, *to: str) -> str:
        """A notification with ``status`` as its outcome and an event for ``to``."""
        sha = hashlib.sha256(TOKEN.encode()).hexdigest()
        new = dataclasses.replace(notification(key, token=TOKEN), token_sha256=sha)
        accepted = await self.store.accept(new)
        [job] = await self.store.claim(JobKind.IMPORT, owner="t", lease_s=30)
        reason = None if status is NotificationStatus.IMPORTED else Reason(code="x", message="y")
        event_id = new_id("evt", self.clock())
        event = NewEvent(id=event_id, type=EventType.IMPORTED, body=b"{}", destinations=to)
        assert await self.store.record_outcome(
            job, FinalOutcome(status=status, reason=reason), [event]
        )
        return accepted.id

    async def dead_delivery(self) -> str:
        """Deliver the oldest pending delivery unsuccessfully, past its schedule: dead."""
        [job] = await self.store.claim(JobKind.DELIVER, owner="t", lease_s=30)
        report = AttemptReport(http_status=500, latency_ms=3, response_excerpt=b"down")
        assert await self.store.delivery_failed(job, report, retry_at=None)
        return job.ref

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, headers=AUTH, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.post(path, headers=AUTH, **kwargs)


@pytest.fixture(name="harness")
async def _harness(store: Store) -> AsyncIterator[Harness]:
    harness = Harness(store, FakeClock())
    yield harness
    await harness.client.aclose()


class TestAuthentication:
    @pytest.mark.parametrize(
        "header",
        [None, "", "Bearer", "Bearer ", "Bearer wrong", f"Basic {ADMIN_TOKEN}", ADMIN_TOKEN,
         f"Bearer {ADMIN_TOKEN}x", f"Bearer {ADMIN_TOKEN[:-1]}"],
    )  # fmt: skip
    async def test_refused_without_the_token(self, harness: Harness, header: str | None) -> None:
        """Anything but the bearer token is 401, with a WWW-Authenticate challenge."""
        headers = {} if header is None else {"Authorization": header}
        for method, path in [("GET", "/notifications"), ("POST", "/reload")]:
            answer = await harness.client.request(method, path, headers=headers)
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "unauthorized"
            assert answer.headers["www-authenticate"].startswith("Bearer")

    async def test_scheme_is_case_insensitive(self, harness: Harness) -> None:
        """``bearer`` works as well as ``Bearer``."""
        headers = {"Authorization": f"bearer {ADMIN_TOKEN}"}
        assert (await harness.client.get("/notifications", headers=headers)).status_code == 200

    async def test_absent_without_admin_section(self, store: Store) -> None:
        """No ``admin`` in the configuration: the admin API does not exist (404)."""
        harness = Harness(store, FakeClock(), admin=False)
        async with harness.client:
            answer = await harness.get("/notifications")
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "not_found"


class TestNotifications:
    async def test_filters_and_pages(self, harness: Harness) -> None:
        """Newest first; status and partner filters; ``next`` pages to the end."""
        ids = [await harness.finished(f"k{i}", NotificationStatus.IMPORTED) for i in range(5)]
        await harness.store.accept(notification("pending-one", partner="globex"))
        first = await harness.get("/notifications", params={"status": "imported", "limit": 2})
        page = first.json()
        assert [n["id"] for n in page["items"]] == ids[::-1][:2]
        assert page["next"] == ids[3]
        rest = await harness.get(
            "/notifications", params={"status": "imported", "limit": 3, "before": page["next"]}
        )
        assert [n["id"] for n in rest.json()["items"]] == ids[::-1][2:]
        assert rest.json()["next"] is None
        globex = (await harness.get("/notifications", params={"partner": "globex"})).json()
        assert [n["status"] for n in globex["items"]] == ["pending"]

    @pytest.mark.parametrize(
        "params",
        [{"limit": "0"}, {"limit": "501"}, {"limit": "ten"}, {"limit": "-1"},
         {"status": "done"}, {"partner": ""}, {"before": "x" * 201}],
    )  # fmt: skip
    async def test_bad_parameters(self, harness: Harness, params: dict[str, str]) -> None:
        answer = await harness.get("/notifications", params=params)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_parameter"

    async def test_show_has_the_timeline_and_no_token(self, harness: Harness) -> None:
        """One notification with its events and deliveries; the token never leaves the store."""
        notification_id = await harness.finished("k", NotificationStatus.IMPORTED, "crm")
        answer = await harness.get(f"/notifications/{notification_id}")
        assert answer.status_code == 200
        timeline = answer.json()
        assert timeline["notification"]["status"] == "imported"
        assert [e["type"] for e in timeline["events"]] == ["share.imported"]
        assert [d["destination"] for d in timeline["deliveries"]] == ["crm"]
        assert TOKEN not in answer.text
        assert TOKEN.rsplit(".", 1)[1] not in answer.text
        assert (await harness.get("/notifications/ntf_nope")).status_code == 404

    async def test_retry(self, harness: Harness) -> None:
        """A failed one is queued again (and the worker woken); others say why not."""
        failed = await harness.finished("f", NotificationStatus.FAILED)
        imported = await harness.finished("i", NotificationStatus.IMPORTED)
        # its rule is not in the running configuration: a re-routing retry says so
        gone = await harness.post(f"/notifications/{failed}/retry")
        assert (gone.status_code, gone.json()["error"]["code"]) == (409, "rule_gone")
        assert "keep_route=true" in gone.json()["error"]["message"]
        bad = await harness.post(f"/notifications/{failed}/retry", params={"keep_route": "yes"})
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_parameter")
        answer = await harness.post(f"/notifications/{failed}/retry", params={"keep_route": "true"})
        assert (answer.status_code, answer.json()) == (202, {"id": failed, "result": "requeued"})
        assert harness.retries == 1
        shown = await harness.get(f"/notifications/{failed}")
        assert shown.json()["notification"]["status"] == "pending"
        refused = await harness.post(f"/notifications/{imported}/retry")
        assert (refused.status_code, refused.json()["error"]["code"]) == (409, "not_retryable")
        assert (await harness.post("/notifications/ntf_nope/retry")).status_code == 404
        assert harness.retries == 1


class TestDeliveries:
    async def test_destinations_dead_letters_and_redelivery(self, harness: Harness) -> None:
        """Dead deliveries are listed and sent again; destinations show their backlog."""
        await harness.finished("a", NotificationStatus.IMPORTED, "crm")
        dead = await harness.dead_delivery()
        listed = (await harness.get("/deliveries", params={"status": "dead"})).json()
        assert [d["id"] for d in listed["items"]] == [dead]
        assert listed["items"][0]["attempts"] == 1
        destinations = (await harness.get("/destinations")).json()["items"]
        by_name = {d["name"]: d for d in destinations}
        assert set(by_name) == {"crm", "audit"}
        assert (by_name["crm"]["dead"], by_name["crm"]["enabled"]) == (1, True)
        assert (by_name["audit"]["pending"], by_name["audit"]["configured"]) == (0, True)

        again = await harness.post(f"/deliveries/{dead}/redeliver")
        assert (again.status_code, again.json()) == (202, {"id": dead, "status": "pending"})
        assert harness.redeliveries == 1
        twice = await harness.post(f"/deliveries/{dead}/redeliver")
        assert (twice.status_code, twice.json()["error"]["code"]) == (409, "already_pending")
        assert (await harness.post("/deliveries/dlv_nope/redeliver")).status_code == 404
        assert (await harness.get("/deliveries", params={"status": "dead"})).json()["items"] == []

    async def test_recover_since(self, harness: Harness) -> None:
        """Every dead delivery of a destination since a time goes out again."""
        for key in ("a", "b"):
            await harness.finished(key, NotificationStatus.IMPORTED, "crm")
            await harness.dead_delivery()
        body = {"since": "2020-01-01T00:00:00Z", "status": "dead"}
        answer = await harness.post("/destinations/crm/recover", json=body)
        assert (answer.status_code, answer.json()) == (202, {"destination": "crm", "requeued": 2})
        future = {"since": "2100-01-01T00:00:00+02:00"}
        assert (await harness.post("/destinations/crm/recover", json=future)).json()[
            "requeued"
        ] == 0
        assert (await harness.post("/destinations/nope/recover", json=body)).status_code == 404

    @pytest.mark.parametrize(
        "body",
        [b"", b"[]", b"{", b'{"status": "dead"}', b'{"since": "yesterday"}',
         b'{"since": "2026-01-01"}', b'{"since": "2026-01-01T00:00:00"}',
         b'{"since": "2026-13-01T00:00:00Z"}', b'{"since": 5}',
         b'{"since": "2026-01-01T00:00:00Z", "status": "pending"}',
         b'{"since": "2026-01-01T00:00:00Z", "extra": 1}',
         b'{"since": "2026-01-01T00:00:00Z", "status": {}}',
         b'{"since": "2026-01-01T00:00:00Z", "status": ["dead"]}',
         b'{"since": "9999-12-31T23:59:59-23:59"}', b'{"since": "0001-01-01T00:00:00+23:59"}'],
    )  # fmt: skip
    async def test_recover_refuses_bad_bodies(self, harness: Harness, body: bytes) -> None:
        answer = await harness.post("/destinations/crm/recover", content=body)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] in {"invalid_json", "invalid_body"}

    async def test_enable(self, harness: Harness) -> None:
        """A disabled destination is enabled again; an unknown one is 404."""
        await harness.store.set_destination_enabled("crm", enabled=False, reason="HTTP 410")
        before = {d["name"]: d for d in (await harness.get("/destinations")).json()["items"]}
        assert (before["crm"]["enabled"], before["crm"]["reason"]) == (False, "HTTP 410")
        answer = await harness.post("/destinations/crm/enable")
        assert (answer.status_code, answer.json()) == (200, {"name": "crm", "enabled": True})
        assert [s.enabled for s in await harness.store.destination_states()] == [True]
        assert harness.redeliveries == 1
        assert (await harness.post("/destinations/nope/enable")).status_code == 404


class TestTimesNoDateCanShow:
    @pytest.mark.parametrize("deadline", [2.0**62, -(2.0**62), 1e300])
    async def test_a_deadline_beyond_the_calendar_is_null(
        self, harness: Harness, deadline: float
    ) -> None:
        """A stored deadline no date can show (an old row, from a token's far exp) lists and
        shows as null, never a 500; the CLI prints the number instead."""
        accepted = await harness.store.accept(notification("far", deadline=deadline))
        listed = await harness.get("/notifications")
        assert listed.status_code == 200
        assert [n["deadline"] for n in listed.json()["items"]] == [None]
        shown = await harness.get(f"/notifications/{accepted.id}")
        assert shown.status_code == 200
        assert shown.json()["notification"]["deadline"] is None
        timeline = await harness.store.timeline(accepted.id)
        assert timeline is not None
        assert f"deadline {deadline!r} (out of the calendar's range)" in render_timeline(timeline)


class TestReloadAndFailures:
    async def test_reload(self, harness: Harness) -> None:
        """200 when applied; 400 with every issue when refused."""
        assert (await harness.post("/reload")).json() == {"status": "reloaded"}
        harness.reload_issues = (ConfigIssue("bridge.yaml", 3, "rules", "at least one rule"),)
        answer = await harness.post("/reload")
        assert answer.status_code == 400
        assert answer.json()["error"]["issues"] == [
            {"file": "bridge.yaml", "line": 3, "path": "rules", "message": "at least one rule"}
        ]

    async def test_store_unavailable_is_503(self, harness: Harness) -> None:
        """A store that cannot answer gives 503 with Retry-After, never a 500."""

        async def down(*_args: Any, **_kwargs: Any) -> None:
            raise StoreUnavailable("the store is down")

        harness.store.search_notifications = down  # type: ignore[method-assign,assignment]
        answer = await harness.get("/notifications")
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
