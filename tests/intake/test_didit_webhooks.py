"""``POST /v1/didit/webhooks`` in-process over a real SQLite store (the sandbox-driven test is in
``tests/e2e/test_outcomes.py``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import auth, config
from bridge.app import DiditWebhooks, Health, Intake, LiveConfig, create_app
from bridge.config import Settings
from bridge.errors import StoreUnavailable
from bridge.signing import sign_didit_webhook
from bridge.store import FinalOutcome, JobKind, NewNotification, Store
from bridge.types import DiditSession, NotificationStatus, Route, SessionKind
from tests.intake.conftest import TARGET, error_code, load_settings
from tests.store.helpers import START, FakeClock
from tests.support.bridge_process import make_config

pytestmark = pytest.mark.anyio

SECRET = "whsk_didit_test_secret"
OUR_SESSION = "2b0e3c43-0000-4000-8000-000000000042"
DESTINATIONS = {
    "crm": {"url": "http://127.0.0.1:9/crm", "secrets": ["whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="]},
    "audit": {
        "url": "http://127.0.0.1:9/audit",
        "secrets": ["whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="],
        "events": ["share.imported"],
    },
}


class Hooks:
    def __init__(self, settings: Settings, store: Store, clock: FakeClock) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self.recorded = 0
        verifier = auth.didit_webhook_verifier(settings)
        live = LiveConfig(settings=settings, verifiers=auth.verifiers_for(settings))
        app = create_app(
            intake=Intake(live=lambda: live, store=store, on_accepted=lambda: None, clock=clock),
            health=Health(store=store, workers_running=lambda: True),
            didit_webhooks=DiditWebhooks(
                verifier=lambda: verifier,
                store=store,
                settings=lambda: settings,
                on_recorded=self._recorded,
                clock=clock,
            ),
        )
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bridge.test"
        )

    def _recorded(self) -> None:
        self.recorded += 1

    async def send(
        self,
        envelope: dict[str, Any] | bytes,
        *,
        at: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
        sent = {"content-type": "application/json"}
        if headers is None:
            sent.update(sign_didit_webhook(SECRET, raw, timestamp=int(at or self.clock.now)))
        else:
            sent.update(headers)
        return await self.client.post("/v1/didit/webhooks", content=raw, headers=sent)


def envelope(status: str, session_id: str | None = OUR_SESSION, **extra: Any) -> dict[str, Any]:
    body = {
        "session_id": session_id,
        "status": status,
        "webhook_type": "status.updated",
        "created_at": int(START),
        "timestamp": int(START),
        "vendor_data": "acme:c-1",
    }
    body.update(extra)
    return body


async def imported_notification(store: Store, *, didit_status: str = "In Review") -> str:
    accepted = await store.accept(
        NewNotification(
            partner="acme",
            partner_event_id="ev-1",
            message_id=None,
            business_key="app:src-1",
            token="h.c.s",
            token_sha256="sha",
            session_kind=SessionKind.USER,
            source_application_id="app",
            source_session_id="src-1",
            deadline=START + 3_600,
            route=Route(
                rule="kyc",
                workflow_id="wf",
                vendor_data="acme:c-1",
                trust_review=False,
                destinations=("crm", "audit", "removed-since"),
            ),
        )
    )
    [job] = await store.claim(JobKind.IMPORT, owner="t", lease_s=30)
    session = DiditSession(session_id=OUR_SESSION, session_number=43001, status=didit_status)
    outcome = FinalOutcome(status=NotificationStatus.IMPORTED, session=session)
    assert await store.record_outcome(job, outcome, [])
    return accepted.id


def _with_webhooks() -> Settings:
    """The intake settings plus destinations and ``didit_webhooks`` with our SECRET."""
    target = dataclasses.replace(TARGET, webhook_secret=SECRET)
    document = make_config(
        target,
        db_path=Path("/nonexistent/unused.db"),
        port=0,
        max_body_bytes=4_096,
        destinations=DESTINATIONS,
        didit_webhooks=True,
    )
    return config.load_text(yaml.safe_dump(document))


@pytest.fixture(name="hooks")
async def _hooks(store: Store, clock: FakeClock) -> AsyncIterator[Hooks]:
    hooks = Hooks(_with_webhooks(), store, clock)
    yield hooks
    await hooks.client.aclose()


async def status_of(store: Store, notification_id: str) -> str | None:
    n = await store.load_notification(notification_id)
    assert n is not None
    assert n.session is not None
    return n.session.status


async def status_events(store: Store, notification_id: str) -> list[dict[str, Any]]:
    timeline = await store.timeline(notification_id)
    assert timeline is not None
    return [orjson.loads(e.body) for e in timeline.events if e.type.value == "share.status_updated"]


class TestRecording:
    async def test_a_status_update_of_our_session_is_recorded_with_its_event(
        self, hooks: Hooks
    ) -> None:
        notification_id = await imported_notification(hooks.store)
        response = await hooks.send(envelope("Approved"))
        assert (response.status_code, response.json()) == (200, {"status": "recorded"})
        assert await status_of(hooks.store, notification_id) == "Approved"
        [event] = await status_events(hooks.store, notification_id)
        assert event["type"] == "share.status_updated"
        assert event["data"]["session"] == {
            "session_id": OUR_SESSION,
            "session_number": 43001,
            "status": "Approved",
        }
        assert event["data"]["notification_id"] == notification_id
        assert event["data"]["reason"] is None
        timeline = await hooks.store.timeline(notification_id)
        assert timeline is not None
        # crm takes every type, audit only share.imported; a destination no longer configured
        # still gets its delivery (it waits rather than being dropped)
        assert sorted(d.destination for d in timeline.deliveries) == ["crm", "removed-since"]
        assert hooks.recorded == 1

    async def test_the_same_status_again_emits_nothing_more(self, hooks: Hooks) -> None:
        notification_id = await imported_notification(hooks.store)
        assert (await hooks.send(envelope("Approved"))).json()["status"] == "recorded"
        again = await hooks.send(envelope("APPROVED"))
        assert again.json() == {"status": "unchanged"}
        assert len(await status_events(hooks.store, notification_id)) == 1

    async def test_a_final_status_is_never_downgraded(self, hooks: Hooks) -> None:
        notification_id = await imported_notification(hooks.store, didit_status="Approved")
        stale = await hooks.send(envelope("In Review"))
        assert (stale.status_code, stale.json()) == (200, {"status": "ignored"})
        assert await status_of(hooks.store, notification_id) == "Approved"
        assert await status_events(hooks.store, notification_id) == []

    async def test_a_new_decision_replaces_a_decision(self, hooks: Hooks) -> None:
        notification_id = await imported_notification(hooks.store, didit_status="Approved")
        assert (await hooks.send(envelope("Kyc Expired"))).json()["status"] == "recorded"
        assert await status_of(hooks.store, notification_id) == "Kyc Expired"

    async def test_the_nested_envelope_is_read_too(self, hooks: Hooks) -> None:
        notification_id = await imported_notification(hooks.store)
        nested = {
            "event": "status.updated",
            "event_id": "evt_1",
            "timestamp": int(START),
            "data": {"session_id": OUR_SESSION, "status": "DECLINED", "session_kind": "user"},
        }
        assert (await hooks.send(nested)).json()["status"] == "recorded"
        assert await status_of(hooks.store, notification_id) == "DECLINED"

    @pytest.mark.parametrize(
        "body",
        [
            envelope("Approved", session_id="not-ours"),
            envelope("Approved", webhook_type="data.updated"),
            envelope("Approved", webhook_type=None),
            envelope("", session_id=OUR_SESSION),
            envelope("Approved", session_id=None),
            {"timestamp": int(START), "webhook_type": "status.updated", "status": 3},
        ],
        ids=["unknown-session", "other-type", "no-type", "no-status", "no-session", "bad-status"],
    )
    async def test_anything_else_is_200_and_ignored(
        self, hooks: Hooks, body: dict[str, Any]
    ) -> None:
        notification_id = await imported_notification(hooks.store)
        response = await hooks.send(body)
        assert (response.status_code, response.json()) == (200, {"status": "ignored"})
        assert await status_of(hooks.store, notification_id) == "In Review"
        assert hooks.recorded == 0

    async def test_a_session_still_pending_has_nothing_to_update(self, hooks: Hooks) -> None:
        response = await hooks.send(envelope("Approved"))
        assert response.json() == {"status": "ignored"}


def simple_only(body: dict[str, Any], *, at: float = START) -> dict[str, str]:
    """Only X-Signature-Simple (and X-Timestamp), as when the stronger signatures fail."""
    signed = sign_didit_webhook(SECRET, json.dumps(body).encode(), timestamp=int(at))
    return {name: signed[name] for name in ("X-Signature-Simple", "X-Timestamp")}


class TestSimpleSignatureOnly:
    """X-Signature-Simple signs the top-level timestamp, session_id, status and webhook_type."""

    async def test_the_flat_envelope_it_signs_is_recorded(self, hooks: Hooks) -> None:
        notification_id = await imported_notification(hooks.store)
        body = envelope("Approved")
        response = await hooks.send(body, headers=simple_only(body))
        assert (response.status_code, response.json()) == (200, {"status": "recorded"})
        assert await status_of(hooks.store, notification_id) == "Approved"

    async def test_a_signed_other_type_is_ignored(self, hooks: Hooks) -> None:
        notification_id = await imported_notification(hooks.store)
        body = envelope("Approved", webhook_type="data.updated")
        response = await hooks.send(body, headers=simple_only(body))
        assert (response.status_code, response.json()) == (200, {"status": "ignored"})
        assert await status_of(hooks.store, notification_id) == "In Review"

    @pytest.mark.parametrize(
        "body",
        [
            {  # the nested envelope: Simple signs "{timestamp}:::", nothing in data
                "event": "status.updated",
                "event_id": "evt_1",
                "timestamp": int(START),
                "data": {"session_id": OUR_SESSION, "status": "DECLINED"},
            },
            envelope("Declined", session_id=None, business_session_id=OUR_SESSION),
            envelope("Declined", session_id=None, data={"session_id": OUR_SESSION}),
            envelope("Declined:x", session_id=OUR_SESSION),
        ],
        ids=["nested", "business-session-id", "data-beside-flat", "separator-in-field"],
    )
    async def test_unsigned_session_or_status_is_refused_and_not_recorded(
        self, hooks: Hooks, body: dict[str, Any]
    ) -> None:
        notification_id = await imported_notification(hooks.store)
        response = await hooks.send(body, headers=simple_only(body))
        assert (response.status_code, error_code(response)) == (401, "invalid_signature")
        assert SECRET not in response.text
        assert await status_of(hooks.store, notification_id) == "In Review"
        assert await status_events(hooks.store, notification_id) == []
        assert hooks.recorded == 0

    async def test_a_nested_body_rewritten_under_a_captured_simple_signature(
        self, hooks: Hooks
    ) -> None:
        """The reviewer's forgery: Simple of any nested webhook signs only its timestamp, so
        data can be swapped for another session and status; it is refused, nothing recorded."""
        notification_id = await imported_notification(hooks.store)
        other = {"event": "user.data.updated", "timestamp": int(START), "data": {"x": 1}}
        forged = {
            "event": "status.updated",
            "timestamp": int(START),
            "data": {"session_id": OUR_SESSION, "status": "Kyc Expired"},
        }
        response = await hooks.send(forged, headers=simple_only(other))
        assert (response.status_code, error_code(response)) == (401, "invalid_signature")
        assert await status_of(hooks.store, notification_id) == "In Review"


class TestRefusals:
    async def test_disabled_without_didit_webhooks_is_404(
        self, store: Store, clock: FakeClock
    ) -> None:
        hooks = Hooks(load_settings(), store, clock)
        try:
            response = await hooks.send(envelope("Approved"))
        finally:
            await hooks.client.aclose()
        assert (response.status_code, error_code(response)) == (404, "didit_webhooks_disabled")

    async def test_no_signature_is_401_missing_signature(self, hooks: Hooks) -> None:
        response = await hooks.send(envelope("Approved"), headers={})
        assert (response.status_code, error_code(response)) == (401, "missing_signature")

    async def test_a_wrong_signature_is_401_invalid_signature(self, hooks: Hooks) -> None:
        raw = json.dumps(envelope("Approved")).encode()
        headers = sign_didit_webhook("whsk_someone_else", raw, timestamp=int(START))
        response = await hooks.send(raw, headers=headers)
        assert (response.status_code, error_code(response)) == (401, "invalid_signature")

    async def test_a_stale_webhook_is_401_timestamp_out_of_tolerance(self, hooks: Hooks) -> None:
        notification_id = await imported_notification(hooks.store)
        response = await hooks.send(envelope("Approved"), at=START - 3_600)
        assert (response.status_code, error_code(response)) == (401, "timestamp_out_of_tolerance")
        assert await status_of(hooks.store, notification_id) == "In Review"

    async def test_a_replayed_decision_with_a_fresh_x_timestamp_is_refused(
        self, hooks: Hooks
    ) -> None:
        """A captured "Approved" sent again a day later with a new X-Timestamp (which no
        signature covers) is stale; the newer "Declined" stands and nothing is emitted."""
        notification_id = await imported_notification(hooks.store)
        approved = json.dumps(envelope("Approved")).encode()
        captured = sign_didit_webhook(SECRET, approved, timestamp=int(START))
        assert (await hooks.send(approved, headers=captured)).json()["status"] == "recorded"
        hooks.clock.now = START + 100
        declined = envelope("Declined", timestamp=int(START) + 100, created_at=int(START) + 100)
        assert (await hooks.send(declined)).json()["status"] == "recorded"
        hooks.clock.now = START + 86_400
        replay = {**captured, "X-Timestamp": str(int(hooks.clock.now))}
        response = await hooks.send(approved, headers=replay)
        assert (response.status_code, error_code(response)) == (401, "timestamp_out_of_tolerance")
        assert await status_of(hooks.store, notification_id) == "Declined"
        assert len(await status_events(hooks.store, notification_id)) == 2
        assert hooks.recorded == 2

    async def test_too_large_is_413(self, hooks: Hooks) -> None:
        response = await hooks.send(envelope("Approved", metadata={"pad": "x" * 5_000}))
        assert (response.status_code, error_code(response)) == (413, "body_too_large")

    async def test_store_unavailable_is_503_with_retry_after(
        self, store: Store, clock: FakeClock
    ) -> None:
        class Broken:
            def __getattr__(self, name: str) -> Any:
                return getattr(store, name)

            async def find_by_session(self, session_id: str) -> None:
                raise StoreUnavailable("gone")

        broken: Any = Broken()
        hooks = Hooks(_with_webhooks(), broken, clock)
        try:
            response = await hooks.send(envelope("Approved"))
        finally:
            await hooks.client.aclose()
        assert (response.status_code, error_code(response)) == (503, "store_unavailable")
        assert response.headers["retry-after"] == "5"


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.binary(max_size=200)
    | st.dictionaries(
        st.sampled_from(["session_id", "status", "webhook_type", "timestamp", "data", "event"]),
        st.none() | st.integers() | st.text(max_size=12) | st.just("status.updated"),
    ).map(lambda d: json.dumps(d).encode()),
    sign=st.booleans(),
)
async def test_no_webhook_input_is_a_500(hooks: Hooks, raw: bytes, sign: bool) -> None:
    headers = None if sign else {"X-Signature": "00", "X-Timestamp": "x"}
    try:
        response = await hooks.send(raw, headers=headers)
    except ValueError:  # sign_didit_webhook refuses a body that is not a JSON object
        response = await hooks.send(raw, headers={"X-Signature-V2": "ab"})
    assert response.status_code in (200, 401, 413)
