"""Every row of the intake table (docs/architecture.md, "Intake"), in-process, on SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bridge.errors import StoreUnavailable
from bridge.store import FinalOutcome, JobKind, Store
from bridge.types import DiditSession, NotificationStatus, Reason
from tests.intake.conftest import (
    KYB_WORKFLOW,
    KYC_WORKFLOW,
    MAX_BODY,
    OTHER_APP,
    PARTNER_APP,
    Harness,
    error_code,
    load_settings,
    share_token,
)
from tests.store.helpers import START, FakeClock

pytestmark = pytest.mark.anyio

PARTNERS = ("acme", "globex", "initech", "hooli")
TIMESTAMPED = ("acme", "globex", "initech")  # api-key has no timestamp


def body(token: str | None = None, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"share_token": token or share_token(), "customer": "c-1"}
    payload.update(extra)
    return payload


async def finish(store: Store, status: NotificationStatus) -> None:
    """Drive the one queued import job to ``status``, as the import handler would."""
    [job] = await store.claim(JobKind.IMPORT, owner="test", lease_s=30)
    session = DiditSession(session_id="s-1") if status is NotificationStatus.IMPORTED else None
    reason = None if session else Reason(code="x", message="x")
    assert await store.record_outcome(
        job, FinalOutcome(status=status, session=session, reason=reason), []
    )


class TestRefusalsBeforeAuthentication:
    async def test_unknown_partner_is_404(self, harness: Harness) -> None:
        response = await harness.post("nobody", body(), signed=False)
        assert response.status_code == 404
        assert error_code(response) == "unknown_partner"

    async def test_unknown_partner_comes_before_the_size_limit(self, harness: Harness) -> None:
        response = await harness.post("nobody", b"x" * (MAX_BODY * 4), signed=False)
        assert (response.status_code, error_code(response)) == (404, "unknown_partner")

    async def test_too_large_with_content_length_is_413(self, harness: Harness) -> None:
        payload = body(padding="x" * MAX_BODY)
        response = await harness.post("acme", payload)
        assert (response.status_code, error_code(response)) == (413, "body_too_large")

    async def test_exactly_the_limit_is_not_too_large(self, harness: Harness) -> None:
        raw = orjson.dumps(body())
        raw = raw[:-1] + b',"pad":"' + b"x" * (MAX_BODY - len(raw) - 9) + b'"}'
        assert len(raw) == MAX_BODY
        response = await harness.post("acme", raw)
        assert response.status_code == 202

    async def test_too_large_streamed_without_content_length_is_413(self, harness: Harness) -> None:
        sent: list[int] = []

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(64):
                sent.append(1)
                yield b"y" * 256

        headers = harness.sign("acme", b"{}")
        response = await harness.client.post(
            "/v1/partners/acme/shares", content=chunks(), headers=headers
        )
        assert response.request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.request.headers
        assert (response.status_code, error_code(response)) == (413, "body_too_large")

    async def test_a_lying_small_content_length_is_still_caught(self, harness: Harness) -> None:
        """The limit counts bytes as they stream, whatever Content-Length claims."""

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(16):
                yield b"z" * 512

        response = await harness.client.post(
            "/v1/partners/acme/shares",
            content=chunks(),
            headers={"content-type": "application/json", "content-length": "10"},
        )
        assert (response.status_code, error_code(response)) == (413, "body_too_large")

    async def test_too_large_and_unauthenticated_is_413(self, harness: Harness) -> None:
        response = await harness.post("acme", b"{" + b" " * MAX_BODY + b"}", signed=False)
        assert (response.status_code, error_code(response)) == (413, "body_too_large")

    @pytest.mark.parametrize(
        "content_type", ["text/plain", "application/x-www-form-urlencoded", ""]
    )
    async def test_not_json_media_type_is_415(self, harness: Harness, content_type: str) -> None:
        response = await harness.post("acme", body(), headers={"content-type": content_type})
        assert (response.status_code, error_code(response)) == (415, "unsupported_media_type")

    async def test_json_with_parameters_is_json(self, harness: Harness) -> None:
        response = await harness.post(
            "acme", body(), headers={"content-type": "Application/JSON; charset=utf-8"}
        )
        assert response.status_code == 202

    async def test_wrong_media_type_and_unauthenticated_is_415(self, harness: Harness) -> None:
        response = await harness.post(
            "acme", body(), signed=False, headers={"content-type": "text/plain"}
        )
        assert (response.status_code, error_code(response)) == (415, "unsupported_media_type")


class TestAuthentication:
    @pytest.mark.parametrize("partner", PARTNERS)
    async def test_no_signature_is_401_missing_signature(
        self, harness: Harness, partner: str
    ) -> None:
        response = await harness.post(partner, body(), signed=False)
        assert (response.status_code, error_code(response)) == (401, "missing_signature")

    @pytest.mark.parametrize("partner", PARTNERS)
    async def test_a_signature_over_other_bytes_is_401_invalid_signature(
        self, harness: Harness, partner: str
    ) -> None:
        headers = harness.sign(partner, b'{"share_token": "something else"}')
        if partner == "hooli":
            headers["X-Api-Key"] = "not-the-key"
        response = await harness.post(partner, body(), headers=headers, signed=False)
        assert (response.status_code, error_code(response)) == (401, "invalid_signature")

    @pytest.mark.parametrize("partner", TIMESTAMPED)
    async def test_a_stale_signature_is_401_timestamp_out_of_tolerance(
        self, harness: Harness, partner: str
    ) -> None:
        response = await harness.post(partner, body(), at=START - 3_600)
        assert (response.status_code, error_code(response)) == (401, "timestamp_out_of_tolerance")

    async def test_a_signature_from_the_future_is_refused_too(self, harness: Harness) -> None:
        response = await harness.post("acme", body(), at=START + 3_600)
        assert (response.status_code, error_code(response)) == (401, "timestamp_out_of_tolerance")

    @pytest.mark.parametrize("partner", PARTNERS)
    async def test_each_scheme_accepts_its_signature(self, harness: Harness, partner: str) -> None:
        response = await harness.post(partner, body())
        assert response.status_code == 202, response.text

    async def test_unauthenticated_invalid_json_is_401_not_400(self, harness: Harness) -> None:
        response = await harness.post("acme", b"{not json", signed=False)
        assert (response.status_code, error_code(response)) == (401, "missing_signature")

    async def test_wrongly_signed_invalid_json_is_401(self, harness: Harness) -> None:
        headers = harness.sign("acme", b"{}")
        response = await harness.post("acme", b"{not json", headers=headers, signed=False)
        assert (response.status_code, error_code(response)) == (401, "invalid_signature")


class TestPayload:
    @pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"text"', b"null", b"\xff\xfe"])
    async def test_not_a_json_object_is_400(self, harness: Harness, raw: bytes) -> None:
        response = await harness.post("acme", raw)
        assert (response.status_code, error_code(response)) == (400, "invalid_json")

    @pytest.mark.parametrize(
        "payload", [{"customer": "c"}, {"share_token": None}, {"share_token": ""}]
    )
    async def test_no_token_is_422_missing_share_token(
        self, harness: Harness, payload: dict[str, Any]
    ) -> None:
        response = await harness.post("acme", payload)
        assert (response.status_code, error_code(response)) == (422, "missing_share_token")

    @pytest.mark.parametrize(
        "token",
        ["not-a-jwt", "a.b.c", 42, ["x"], "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", "e30.e30"],
        ids=["words", "three-bad-parts", "number", "list", "claims-not-json", "two-parts"],
    )
    async def test_not_a_jwt_is_422_malformed_share_token(
        self, harness: Harness, token: object
    ) -> None:
        response = await harness.post("acme", {"share_token": token, "customer": "c"})
        assert (response.status_code, error_code(response)) == (422, "malformed_share_token")

    async def test_expired_past_the_leeway_is_422(self, harness: Harness) -> None:
        response = await harness.post("acme", body(share_token(exp=START - 31)))
        assert (response.status_code, error_code(response)) == (422, "share_token_expired")

    async def test_expired_within_the_30s_leeway_is_accepted(self, harness: Harness) -> None:
        response = await harness.post("acme", body(share_token(exp=START - 29)))
        assert response.status_code == 202

    async def test_a_token_for_another_application_is_422(self, harness: Harness) -> None:
        response = await harness.post("acme", body(share_token(for_application_id=OTHER_APP)))
        assert (response.status_code, error_code(response)) == (
            422,
            "share_token_not_for_this_application",
        )

    async def test_our_id_in_another_spelling_is_ours(self, harness: Harness) -> None:
        ours = str(harness.settings.didit.application_id).upper()
        response = await harness.post("acme", body(share_token(for_application_id=ours)))
        assert response.status_code == 202

    async def test_missing_claims_are_never_by_themselves_a_refusal(self, harness: Harness) -> None:
        token = share_token(
            exp=None, session_kind=None, for_application_id=None, from_application_id=None
        )
        response = await harness.post("acme", body(token))
        assert response.status_code == 202

    async def test_expiry_is_checked_before_the_addressee(self, harness: Harness) -> None:
        token = share_token(exp=START - 100, for_application_id=OTHER_APP)
        response = await harness.post("acme", body(token))
        assert error_code(response) == "share_token_expired"

    async def test_vendor_data_that_does_not_render_is_422(self, harness: Harness) -> None:
        response = await harness.post("acme", {"share_token": share_token()})
        assert (response.status_code, error_code(response)) == (422, "vendor_data_unresolved")

    async def test_no_rule_matching_is_422(self, store: Store, clock: FakeClock) -> None:
        rules = [
            {
                "name": "acme-only",
                "when": {"partner": "acme"},
                "then": {"workflow_id": KYC_WORKFLOW, "vendor_data": "{partner}:{event_id}"},
            }
        ]
        harness = Harness(load_settings(rules=rules), store, clock)
        try:
            response = await harness.post("hooli", body())
            assert (response.status_code, error_code(response)) == (422, "no_matching_rule")
            assert (await harness.post("acme", body(event_id="e1"))).status_code == 202
        finally:
            await harness.client.aclose()

    async def test_the_route_is_stored_with_the_notification(self, harness: Harness) -> None:
        token = share_token(session_kind="business")
        response = await harness.post("globex", body(token, customer="corp-9", event_id="ev-9"))
        assert response.status_code == 202
        stored = await harness.store.load_notification(response.json()["id"])
        assert stored is not None
        assert (stored.route.rule, stored.route.workflow_id) == ("kyb", KYB_WORKFLOW)
        assert stored.route.vendor_data == "globex:corp-9"
        assert stored.partner_event_id == "ev-9"
        assert stored.token == token
        assert stored.source_application_id == PARTNER_APP


class TestDuplicates:
    async def test_same_share_while_pending_is_200_duplicate(self, harness: Harness) -> None:
        session = "sess-dup"
        first = await harness.post("acme", body(share_token(session_id=session)))
        second = await harness.post("acme", body(share_token(session_id=session)))
        assert first.status_code == 202
        assert second.status_code == 200
        assert second.json() == {"id": first.json()["id"], "status": "duplicate"}
        assert harness.accepted_signals == 1

    async def test_another_partners_token_for_the_same_share_is_never_a_duplicate(
        self, harness: Harness
    ) -> None:
        """Claims are unverified: globex's token naming acme's session is globex's own."""
        session = "sess-dup"
        first = await harness.post("acme", body(share_token(session_id=session)))
        second = await harness.post("globex", body(share_token(session_id=session)))
        assert (first.status_code, second.status_code) == (202, 202)
        assert second.json()["id"] != first.json()["id"]

    async def test_same_token_without_claims_is_a_duplicate_by_its_hash(
        self, harness: Harness
    ) -> None:
        token = share_token(session_id=None, from_application_id=None)
        first = await harness.post("acme", body(token))
        second = await harness.post("acme", body(token))
        assert (first.status_code, second.status_code) == (202, 200)
        assert second.json()["id"] == first.json()["id"]

    async def test_same_share_after_import_is_a_duplicate(self, harness: Harness) -> None:
        first = await harness.post("acme", body(share_token(session_id="s-imp")))
        await finish(harness.store, NotificationStatus.IMPORTED)
        again = await harness.post("acme", body(share_token(session_id="s-imp")))
        assert again.status_code == 200
        assert again.json() == {"id": first.json()["id"], "status": "duplicate"}

    @pytest.mark.parametrize(
        "status",
        [NotificationStatus.FAILED, NotificationStatus.REJECTED, NotificationStatus.EXPIRED],
    )
    async def test_a_new_token_after_a_final_failure_is_accepted(
        self, harness: Harness, status: NotificationStatus
    ) -> None:
        first = await harness.post("acme", body(share_token(session_id="s-again")))
        await finish(harness.store, status)
        again = await harness.post("acme", body(share_token(session_id="s-again")))
        assert again.status_code == 202
        assert again.json()["id"] != first.json()["id"]

    async def test_same_message_id_is_a_duplicate_whatever_the_body(self, harness: Harness) -> None:
        first = await harness.post("acme", body(), message_id="msg-same")
        second = await harness.post("acme", body(), message_id="msg-same")
        assert second.status_code == 200
        assert second.json() == {"id": first.json()["id"], "status": "duplicate"}

    async def test_a_message_retried_after_its_token_expired_is_still_a_duplicate(
        self, harness: Harness, clock: FakeClock
    ) -> None:
        payload = body(share_token(exp=START + 60))
        first = await harness.post("initech", payload, message_id="jti-late")
        assert first.status_code == 202
        clock.advance(600)  # the token expired meanwhile; the partner retries the same message
        retried = await harness.post("initech", payload, message_id="jti-late")
        assert retried.status_code == 200
        assert retried.json() == {"id": first.json()["id"], "status": "duplicate"}
        fresh = await harness.post("initech", payload, message_id="jti-new")
        assert (fresh.status_code, error_code(fresh)) == (422, "share_token_expired")

    async def test_a_message_id_is_per_partner(self, harness: Harness) -> None:
        first = await harness.post("acme", body(), message_id="shared-id")
        other = await harness.post("initech", body(), message_id="shared-id")
        assert (first.status_code, other.status_code) == (202, 202)


class FailingStore:
    """A real store whose chosen verbs raise ``StoreUnavailable``."""

    def __init__(self, inner: Store, failing: set[str]) -> None:
        self._inner = inner
        self._failing = failing

    def __getattr__(self, name: str) -> Any:
        if name in self._failing:

            async def unavailable(*args: Any, **kwargs: Any) -> Any:
                raise StoreUnavailable("disk is gone")

            return unavailable
        return getattr(self._inner, name)


class TestStoreAndCommit:
    async def test_store_unavailable_is_503_with_retry_after(
        self, store: Store, clock: FakeClock
    ) -> None:
        failing: Any = FailingStore(store, {"accept"})
        harness = Harness(load_settings(), failing, clock)
        try:
            response = await harness.post("acme", body())
        finally:
            await harness.client.aclose()
        assert (response.status_code, error_code(response)) == (503, "store_unavailable")
        assert int(response.headers["retry-after"]) > 0
        assert harness.accepted_signals == 0
        assert await store.list_notifications() == []

    async def test_store_unavailable_while_looking_up_a_replay_is_503(
        self, store: Store, clock: FakeClock
    ) -> None:
        failing: Any = FailingStore(store, {"find_message"})
        harness = Harness(load_settings(), failing, clock)
        try:
            expired = body(share_token(exp=START - 100))
            response = await harness.post("acme", expired, message_id="m-1")
        finally:
            await harness.client.aclose()
        assert (response.status_code, error_code(response)) == (503, "store_unavailable")
        assert "retry-after" in response.headers

    async def test_202_means_the_row_is_committed(self, harness: Harness, db_path: Path) -> None:
        response = await harness.post("hooli", body(customer="c-commit"))
        assert response.status_code == 202
        assert response.json()["status"] == "accepted"
        # Another connection (another process, in effect) sees the row and its job.
        with sqlite3.connect(db_path) as other:
            row = other.execute(
                "SELECT status, vendor_data FROM notifications WHERE id = ?",
                (response.json()["id"],),
            ).fetchone()
            jobs = other.execute(
                "SELECT count(*) FROM jobs WHERE kind = 'import' AND ref = ?",
                (response.json()["id"],),
            ).fetchone()
        assert row == ("pending", "hooli:c-commit")
        assert jobs == (1,)
        assert harness.accepted_signals == 1

    async def test_draining_answers_503_without_storing(self, harness: Harness) -> None:
        harness.draining = True
        response = await harness.post("acme", body())
        assert (response.status_code, error_code(response)) == (503, "shutting_down")
        assert await harness.store.list_notifications() == []

    async def test_a_refusal_stores_nothing(self, harness: Harness) -> None:
        for payload in ({"share_token": "bad"}, {"share_token": share_token()}):
            assert (await harness.post("acme", payload)).status_code == 422
        assert await harness.store.list_notifications() == []


class TestErrorsNeverQuoteTheToken:
    async def test_no_refusal_body_holds_the_token(self, harness: Harness) -> None:
        expired = share_token(exp=START - 100)
        other = share_token(for_application_id=OTHER_APP)
        answers: list[tuple[str, httpx.Response]] = []
        for token in (expired, other, share_token()):
            payload = {"share_token": token}  # no customer: vendor_data_unresolved for the last
            answers.append((token, await harness.post("acme", payload)))
        malformed = "eyJ" + "A" * 40 + ".eyJ" + "B" * 40 + ".sig"
        answers.append((malformed, await harness.post("acme", {"share_token": malformed})))
        for token, response in answers:
            assert response.status_code == 422
            assert token not in response.text
            assert token.split(".")[1] not in response.text
