"""The console in process, over a real SQLite store: every page renders what the store holds,
every action does what it says and answers with its page again, and bad input is a clear 4xx."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import jwt
import pytest
import yaml
from starlette.applications import Starlette

from bridge import auth, config
from bridge.app import Console, LiveConfig
from bridge.app.operations import Operations
from bridge.app.route_preview import evaluate, render_text
from bridge.errors import ConfigIssue
from bridge.store import AttemptReport, FinalOutcome, JobKind, NewEvent, Store, open_store
from bridge.store.ids import new_id
from bridge.types import EventType, NotificationStatus, Reason
from tests.ops.scenario import TARGET
from tests.store.helpers import ROUTE, FakeClock, notification
from tests.support.bridge_process import ADMIN_TOKEN, make_config
from tests.support.recording_sink import SINK_SECRET

pytestmark = pytest.mark.anyio


class Harness:
    def __init__(self, store: Store, clock: FakeClock) -> None:
        self.store = store
        document = make_config(
            TARGET,
            db_path=Path("/nonexistent/unused.db"),
            port=0,
            destinations={"crm": {"url": "http://127.0.0.1:9/crm", "secrets": [SINK_SECRET]}},
            admin_token=ADMIN_TOKEN,
        )
        current = config.load_text(yaml.safe_dump(document))
        self.live = LiveConfig(settings=current, verifiers=auth.verifiers_for(current))
        self.reload_issues: Sequence[ConfigIssue] = ()
        operations = Operations(
            store=store,
            settings=lambda: self.live.settings,
            reload=lambda: self.reload_issues,
            clock=clock,
        )
        console = Console(live=lambda: self.live, operations=operations)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=Starlette(routes=[console.mount()])),
            base_url="http://console.test",
        )
        self.csrf = ""

    async def sign_in(self) -> None:
        answer = await self.client.post("/console/sign-in", data={"token": ADMIN_TOKEN})
        assert answer.status_code == 303
        page = (await self.client.get("/console/overview")).text
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found is not None
        self.csrf = found.group(1)

    async def act(self, path: str, **form: str) -> httpx.Response:
        """POST a console form; follow its 303 to the page it shows."""
        answer = await self.client.post(path, data={"csrf": self.csrf, **form})
        if answer.status_code == 303:
            return await self.client.get(answer.headers["location"])
        return answer

    async def finished(self, key: str, status: NotificationStatus, *, rule: str = "kyc") -> str:
        """A notification of ``rule`` (a retry routes with the configuration's rule by that
        name), imported or failed."""
        accepted = await self.store.accept(
            dataclasses.replace(
                notification(key, deadline=None), route=dataclasses.replace(ROUTE, rule=rule)
            )
        )
        [job] = await self.store.claim(JobKind.IMPORT, owner="t", lease_s=30)
        reason = None if status is NotificationStatus.IMPORTED else Reason(code="x", message="y")
        event = NewEvent(
            id=new_id("evt", 0), type=EventType.IMPORTED, body=b"{}", destinations=("crm",)
        )
        assert await self.store.record_outcome(
            job, FinalOutcome(status=status, reason=reason), [event]
        )
        return accepted.id

    async def dead_delivery(self) -> str:
        [job] = await self.store.claim(JobKind.DELIVER, owner="t", lease_s=30)
        report = AttemptReport(http_status=500, latency_ms=3, response_excerpt=b"down")
        assert await self.store.delivery_failed(job, report, retry_at=None)
        return job.ref


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    clock = FakeClock()
    store = open_store(f"sqlite:///{tmp_path}/bridge.db", clock=clock)
    made = Harness(store, clock)
    await made.sign_in()
    yield made
    await made.client.aclose()
    await store.close()


async def test_pages_show_the_store(harness: Harness) -> None:
    failed = await harness.finished("f", NotificationStatus.FAILED)
    imported = await harness.finished("i", NotificationStatus.IMPORTED)
    dead = await harness.dead_delivery()
    get = harness.client.get
    overview = (await get("/console/overview")).text
    assert 'id="pending">0<' in overview
    panel = await get("/console/overview/panel")
    assert "<html" not in panel.text
    assert "Delivered" in panel.text
    listing = (await get("/console/notifications?status=failed")).text
    assert failed in listing
    assert imported not in listing
    assert imported in (await get("/console/notifications?q=evt-i")).text
    paged = (await get("/console/notifications?partner=acme&rule=kyc")).text
    assert failed in paged
    assert imported in paged
    timeline = (await get(f"/console/notifications/{failed}")).text
    assert 'id="retry"' in timeline
    assert "Retry:" not in timeline
    done = (await get(f"/console/notifications/{imported}")).text
    assert "only a failed notification can be retried" in done
    deliveries = (await get("/console/deliveries?status=dead&destination=crm")).text
    assert dead in deliveries
    assert "redeliver-matching?status=dead" in deliveries
    confirm = (await get("/console/deliveries/redeliver-matching?status=dead")).text
    assert "1 dead deliveries to every destination" in confirm
    destinations = (await get("/console/destinations")).text
    assert 'data-name="crm"' in destinations
    configuration = (await get("/console/configuration")).text
    assert "**********" in configuration
    assert ADMIN_TOKEN not in configuration
    assert (await get("/console/route-preview")).status_code == 200
    assert (await get("/console/")).headers["location"] == "/console/overview"


async def test_actions(harness: Harness) -> None:
    failed = await harness.finished("f", NotificationStatus.FAILED)
    dead = await harness.dead_delivery()
    orphan = await harness.finished("o", NotificationStatus.FAILED, rule="removed-since")
    refused_retry = await harness.act(f"/console/notifications/{orphan}/retry")
    assert "not retried: its rule is no longer in the configuration" in refused_retry.text
    retried = await harness.act(f"/console/notifications/{failed}/retry")
    assert "queued again" in retried.text
    # The configuration's kyc rule has another workflow than the one stored at intake: the
    # retry took it, and the timeline shows the one it replaced.
    assert "Re-routed by a retry" in retried.text
    assert ROUTE.workflow_id in retried.text
    again = await harness.act(f"/console/notifications/{failed}/retry")
    assert "not retried: only a failed notification can be retried" in again.text
    redelivered = await harness.act(f"/console/deliveries/{dead}/redeliver")
    assert f"{dead} queued again" in redelivered.text
    pending = await harness.act(f"/console/deliveries/{dead}/redeliver")
    assert f"{dead} is already on its way" in pending.text
    none_left = await harness.act("/console/deliveries/redeliver-matching", status="dead")
    assert "0 deliveries queued again" in none_left.text
    await harness.store.set_destination_enabled("crm", enabled=False, reason="410")
    enabled = await harness.act("/console/destinations/crm/enable")
    assert "crm enabled" in enabled.text
    [state] = await harness.store.destination_states()
    assert state.enabled
    recovered = await harness.act("/console/destinations/crm/recover", since="2000-01-01T00:00")
    assert "deliveries to crm queued again" in recovered.text
    harness.reload_issues = (ConfigIssue("bridge.yaml", 3, "didit.timeout_s", "must be > 0"),)
    refused = await harness.act("/console/configuration/reload")
    assert "bridge.yaml:3: didit.timeout_s: must be &gt; 0" in refused.text
    harness.reload_issues = ()
    assert "reloaded" in (await harness.act("/console/configuration/reload")).text
    preview = await harness.act("/console/route-preview", partner="acme", body="{}")
    assert 'id="verdict"' in preview.text
    signed_out = await harness.client.post("/console/sign-out", data={"csrf": harness.csrf})
    assert signed_out.headers["location"] == "/console/sign-in"


@pytest.mark.parametrize(
    ("method", "path", "form", "status"),
    [
        ("GET", "/console/notifications?status=lost", {}, 400),
        ("GET", "/console/notifications?from=yesterday", {}, 400),
        ("GET", "/console/notifications?q=" + "x" * 201, {}, 400),
        ("GET", "/console/notifications/ntf_nope", {}, 404),
        ("GET", "/console/deliveries/redeliver-matching?status=pending", {}, 400),
        ("POST", "/console/notifications/ntf_nope/retry", {}, 404),
        ("POST", "/console/deliveries/dlv_nope/redeliver", {}, 404),
        ("POST", "/console/deliveries/redeliver-matching", {"status": "pending"}, 400),
        ("POST", "/console/destinations/nope/enable", {}, 404),
        ("POST", "/console/destinations/nope/recover", {"since": "2026-01-01T00:00"}, 404),
        ("POST", "/console/destinations/crm/recover", {"since": ""}, 400),
        ("POST", "/console/route-preview", {"body": "x" * 70_000}, 413),
    ],
)
async def test_bad_input_is_a_clear_refusal(
    harness: Harness, method: str, path: str, form: dict[str, str], status: int
) -> None:
    if method == "GET":
        answer = await harness.client.get(path)
    else:
        answer = await harness.client.post(path, data={"csrf": harness.csrf, **form})
    assert answer.status_code == status
    assert 'class="error"' in answer.text


async def test_route_preview_explains_each_rule_as_the_cli_does(harness: Harness) -> None:
    """The preview is ``share-bridge route``'s own text: each rule tried and why it missed."""
    share = jwt.encode({"session_id": "s-1"}, secrets.token_bytes(32), algorithm="HS256")
    body = json.dumps({"event_id": "e-1", "customer": "c-1", "share_token": share})
    preview = await harness.act("/console/route-preview", partner="acme", body=body)
    found = re.search(r'<pre id="verdict">(.*?)</pre>', preview.text, re.S)
    assert found is not None
    shown = html.unescape(found.group(1))
    assert "  rule 'kyb': session_kind: 'user' is not business\n" in shown
    assert "  rule 'kyc': matches (no conditions)\n" in shown
    cli = render_text(evaluate(harness.live.settings, partner="acme", body=body.encode(), now=0))
    assert shown == cli
