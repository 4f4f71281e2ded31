"""POST /v3/session/import-shared/: every documented outcome, over real HTTP."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import jwt
import orjson

from bridge.sandbox.control import SandboxControl
from tests.sandbox.helpers import finished_session, import_body, workflow_id

IMPORT = "/v3/session/import-shared/"


def _import(didit: httpx.Client, key: str, body: Any) -> httpx.Response:
    return didit.post(IMPORT, json=body, headers={"x-api-key": key})


def _token(control: SandboxControl, source: dict[str, Any], ours: dict[str, Any], **kw: Any) -> str:
    return control.mint_token(source["session_id"], ours["application_id"], **kw)


class TestCreated:
    def test_answers_201_with_a_fresh_session(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """A valid token gives 201 and the documented body, In Review, with session_kind."""
        source = finished_session(control, acme, kind="user", status="Approved")
        token = _token(control, source, ours)
        kyc = workflow_id(ours, "KYC")

        response = _import(didit, ours["api_key"], import_body(token, kyc, vendor_data="user-1"))

        assert response.status_code == 201
        body = response.json()
        assert set(body) == {
            "session_id",
            "session_number",
            "session_url",
            "status",
            "workflow_id",
            "vendor_data",
            "created_at",
            "expires_at",
            "session_kind",
        }
        assert body["session_id"] != source["session_id"]
        assert body["session_url"] is None
        assert body["status"] == "In Review"
        assert body["workflow_id"] == kyc
        assert body["vendor_data"] == "user-1"
        assert body["session_kind"] == "user"
        assert isinstance(body["session_number"], int)
        assert body["created_at"].endswith("Z")
        assert body["expires_at"] > body["created_at"]

    def test_records_shared_from_session_and_creates_the_entity(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """The clone points at its source, has an entity for vendor_data, and is in the ledger."""
        source = finished_session(control, acme, kind="user", status="Approved")
        token = _token(control, source, ours)
        body = import_body(token, workflow_id(ours, "KYC"), vendor_data="user-42")

        created = _import(didit, ours["api_key"], body).json()

        clone = control.session(created["session_id"])
        assert clone["shared_from_session"] == source["session_id"]
        assert clone["application_id"] == ours["application_id"]
        assert clone["entity_id"] is not None
        assert clone["details"] == source["details"]
        [redemption] = control.redemptions()
        assert redemption["source_session_id"] == source["session_id"]
        assert redemption["receiving_application_id"] == ours["application_id"]
        assert redemption["new_session_id"] == created["session_id"]

    def test_vendor_data_defaults_to_the_source_sessions(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """Without vendor_data the clone keeps the source's (the field is an override)."""
        source = finished_session(control, acme, kind="user", status="Approved")
        body = import_body(_token(control, source, ours), workflow_id(ours, "KYC"))

        assert _import(didit, ours["api_key"], body).json()["vendor_data"] == source["vendor_data"]

    def test_trust_review_true_keeps_the_source_status(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """A Declined source arrives Declined with trust_review true (never assume Approved)."""
        source = finished_session(control, acme, kind="user", status="Declined")
        body = import_body(_token(control, source, ours), workflow_id(ours, "KYC"))
        body["trust_review"] = True

        response = _import(didit, ours["api_key"], body)

        assert response.status_code == 201
        assert response.json()["status"] == "Declined"

    def test_trust_review_false_lands_in_review(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """An Approved source arrives In Review with trust_review false."""
        source = finished_session(control, acme, kind="user", status="Approved")
        body = import_body(_token(control, source, ours), workflow_id(ours, "KYC"))

        assert _import(didit, ours["api_key"], body).json()["status"] == "In Review"

    def test_a_kyb_token_clones_into_a_kyb_workflow(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """A business token and a KYB workflow give a business session."""
        source = finished_session(control, acme, kind="business", status="Approved")
        kyb = workflow_id(ours, "KYB")
        body = import_body(_token(control, source, ours), kyb, trust_review=True)

        response = _import(didit, ours["api_key"], body)

        assert response.status_code == 201
        assert response.json()["session_kind"] == "business"
        assert response.json()["status"] == "Approved"
        assert control.session(response.json()["session_id"])["session_kind"] == "business"

    def test_a_legacy_token_without_session_kind_is_a_user_token(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """A token minted before unified sharing has no session_kind and imports as KYC."""
        source = finished_session(control, acme, kind="user", status="Approved")
        token = _token(control, source, ours, legacy=True)
        assert "session_kind" not in jwt.decode(token, options={"verify_signature": False})

        response = _import(didit, ours["api_key"], import_body(token, workflow_id(ours, "KYC")))

        assert response.status_code == 201
        assert response.json()["session_kind"] == "user"


class TestRefused:
    def test_a_second_redemption_is_403(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """The same token twice: 201, then 403 already imported, and one redemption only."""
        source = finished_session(control, acme, kind="user", status="Approved")
        body = import_body(_token(control, source, ours), workflow_id(ours, "KYC"))

        first = _import(didit, ours["api_key"], body)
        second = _import(didit, ours["api_key"], body)

        assert first.status_code == 201
        assert second.status_code == 403
        assert "session has already been imported" in second.json()["detail"]
        assert len(control.redemptions()) == 1
        assert control.double_redemptions() == []

    def test_a_new_token_for_an_imported_session_is_403_too(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """The check is per (source session, receiver), not per token."""
        source = finished_session(control, acme, kind="user", status="Approved")
        kyc = workflow_id(ours, "KYC")
        first = _import(didit, ours["api_key"], import_body(_token(control, source, ours), kyc))
        assert first.status_code == 201
        fresh = _token(control, source, ours, ttl_in_seconds=7200)

        response = _import(didit, ours["api_key"], import_body(fresh, kyc))

        assert response.status_code == 403
        assert "already been imported" in response.json()["detail"]

    def test_an_expired_token_is_401(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """A token past its exp is refused as invalid or expired."""
        source = finished_session(control, acme, kind="user", status="Approved")
        token = _token(control, source, ours, expires_in_s=-5)

        response = _import(didit, ours["api_key"], import_body(token, workflow_id(ours, "KYC")))

        assert response.status_code == 401
        assert response.json() == {"detail": "Share token invalid or expired."}
        assert control.redemptions() == []

    def test_a_tampered_token_is_401(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """Claims changed after signing (here: a longer exp) break the signature."""
        source = finished_session(control, acme, kind="user", status="Approved")
        header, claims, signature = _token(control, source, ours).split(".")
        payload = orjson.loads(base64.urlsafe_b64decode(claims + "=="))
        payload["exp"] += 86400
        forged = base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()

        body = import_body(f"{header}.{forged}.{signature}", workflow_id(ours, "KYC"))
        response = _import(didit, ours["api_key"], body)

        assert response.status_code == 401
        assert response.json()["detail"] == "Share token invalid or expired."

    def test_a_token_signed_by_someone_else_is_401(
        self, didit: httpx.Client, ours: dict[str, Any], acme: dict[str, Any]
    ) -> None:
        """Well-formed claims with the wrong key are refused."""
        claims = {
            "session_id": "x",
            "from_application_id": acme["application_id"],
            "for_application_id": ours["application_id"],
            "iat": 1,
            "exp": 4102444800,
        }
        token = jwt.encode(claims, "not-the-sandbox-key-not-the-sandbox-key", algorithm="HS256")

        response = _import(didit, ours["api_key"], import_body(token, workflow_id(ours, "KYC")))

        assert response.status_code == 401

    def test_a_bad_api_key_is_401_with_another_detail(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """A wrong key and a missing key are 401s whose detail is not the token's."""
        source = finished_session(control, acme, kind="user", status="Approved")
        body = import_body(_token(control, source, ours), workflow_id(ours, "KYC"))

        wrong = _import(didit, "sbx_not-a-key", body)
        missing = didit.post(IMPORT, json=body)

        assert wrong.status_code == 401
        assert wrong.json() == {"detail": "Invalid API key."}
        assert missing.status_code == 401
        assert missing.json()["detail"] != "Share token invalid or expired."
        assert control.redemptions() == []

    def test_a_token_for_another_application_is_403(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """A token bound to globex, presented by us."""
        globex = control.application("globex")
        source = finished_session(control, acme, kind="user", status="Approved")
        token = control.mint_token(source["session_id"], globex["application_id"])

        response = _import(didit, ours["api_key"], import_body(token, workflow_id(ours, "KYC")))

        assert response.status_code == 403
        assert "not intended for your application" in response.json()["detail"]

    def test_an_application_without_credits_is_403(
        self, didit: httpx.Client, control: SandboxControl, acme: dict[str, Any]
    ) -> None:
        """Credits run out: the import after the last credit is refused."""
        poor = control.create_application("poor", credits=1)
        kyc = workflow_id(poor, "KYC")
        sources = [
            control.create_session(acme["application_id"], status="Approved") for _ in range(2)
        ]
        tokens = [control.mint_token(s["session_id"], poor["application_id"]) for s in sources]

        first = _import(didit, poor["api_key"], import_body(tokens[0], kyc))
        second = _import(didit, poor["api_key"], import_body(tokens[1], kyc))

        assert first.status_code == 201
        assert second.status_code == 403
        assert "insufficient credits" in second.json()["detail"].lower()
        assert control.application("poor")["credits"] == 0

    def test_a_deleted_source_session_is_404(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """The source session is gone by the time the token is redeemed."""
        source = finished_session(control, acme, kind="user", status="Approved")
        token = _token(control, source, ours)
        control.delete_session(source["session_id"])

        response = _import(didit, ours["api_key"], import_body(token, workflow_id(ours, "KYC")))

        assert response.status_code == 404
        assert response.json() == {"detail": "Original session no longer exists."}

    def test_an_unknown_workflow_is_404(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """A workflow of another application is not found in ours."""
        source = finished_session(control, acme, kind="user", status="Approved")
        body = import_body(_token(control, source, ours), workflow_id(acme, "KYC"))

        response = _import(didit, ours["api_key"], body)

        assert response.status_code == 404
        assert response.json() == {"detail": "workflow_id not found in your application."}

    def test_a_kyc_token_into_a_kyb_workflow_is_400_as_a_bare_array(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """Kinds must match (the sandbox's choice; Didit's answer is unconfirmed)."""
        user = finished_session(control, acme, kind="user", status="Approved")
        business = finished_session(control, acme, kind="business", status="Approved")
        kyb, kyc = workflow_id(ours, "KYB"), workflow_id(ours, "KYC")

        into_kyb = _import(didit, ours["api_key"], import_body(_token(control, user, ours), kyb))
        into_kyc = _import(
            didit, ours["api_key"], import_body(_token(control, business, ours), kyc)
        )

        for response in (into_kyb, into_kyc):
            assert response.status_code == 400
            assert isinstance(response.json(), list)
            assert "workflow" in response.json()[0]
        assert control.redemptions() == []


class TestMalformed:
    def test_missing_fields_are_400_field_keyed(
        self, didit: httpx.Client, ours: dict[str, Any]
    ) -> None:
        """Every missing required field is named, DRF-style."""
        response = _import(didit, ours["api_key"], {})

        assert response.status_code == 400
        assert response.json() == {
            "share_token": ["This field is required."],
            "workflow_id": ["This field is required."],
            "trust_review": ["This field is required."],
        }

    def test_invalid_fields_are_400_field_keyed(
        self, didit: httpx.Client, ours: dict[str, Any]
    ) -> None:
        """Wrong types and formats are named per field."""
        body = {"share_token": 7, "workflow_id": "nope", "vendor_data": 3, "trust_review": "maybe"}

        response = _import(didit, ours["api_key"], body)

        assert response.status_code == 400
        assert set(response.json()) == {"share_token", "workflow_id", "vendor_data", "trust_review"}
        assert response.json()["workflow_id"] == ["Must be a valid UUID."]

    def test_a_blank_token_is_400(self, didit: httpx.Client, ours: dict[str, Any]) -> None:
        """An empty share_token is a field error, not a 401."""
        body = import_body("  ", workflow_id(ours, "KYC"))

        response = _import(didit, ours["api_key"], body)

        assert response.json() == {"share_token": ["This field may not be blank."]}

    def test_a_body_that_is_not_an_object_is_400(
        self, didit: httpx.Client, ours: dict[str, Any]
    ) -> None:
        """A JSON array is a non_field_errors 400; broken JSON a detail 400."""
        array = _import(didit, ours["api_key"], ["x"])
        broken = didit.post(
            IMPORT,
            content=b"{not json",
            headers={"x-api-key": ours["api_key"], "content-type": "application/json"},
        )

        assert array.status_code == 400
        assert "non_field_errors" in array.json()
        assert broken.status_code == 400
        assert broken.json()["detail"].startswith("JSON parse error")

    def test_a_body_that_is_not_json_is_415(
        self, didit: httpx.Client, ours: dict[str, Any]
    ) -> None:
        """Another media type is refused, as DRF's parser does."""
        response = didit.post(
            IMPORT, content=b"share_token=x", headers={"x-api-key": ours["api_key"]}
        )

        assert response.status_code == 415
        assert "Unsupported media type" in response.json()["detail"]

    def test_trust_review_accepts_drf_spellings(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """ "true" counts as true, as DRF's BooleanField has it."""
        source = finished_session(control, acme, kind="user", status="Declined")
        body = import_body(_token(control, source, ours), workflow_id(ours, "KYC"))
        body["trust_review"] = "true"

        assert _import(didit, ours["api_key"], body).json()["status"] == "Declined"
