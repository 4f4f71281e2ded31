"""POST /v3/session/{id}/share/: the partner's side, minting the token."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from bridge.sandbox.control import SandboxControl
from tests.sandbox.helpers import finished_session


def _share(didit: httpx.Client, key: str, session_id: str, body: dict[str, Any]) -> httpx.Response:
    return didit.post(f"/v3/session/{session_id}/share/", json=body, headers={"x-api-key": key})


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


class TestShare:
    def test_mints_an_hs256_token_with_the_documented_claims(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """The token carries session_id, session_kind, both application ids, iat and exp."""
        source = finished_session(control, acme, kind="business", status="In Review")

        response = _share(
            didit,
            acme["api_key"],
            source["session_id"],
            {"for_application_id": ours["application_id"]},
        )

        assert response.status_code == 200
        body = response.json()
        assert body["for_application_id"] == ours["application_id"]
        assert body["session_kind"] == "business"
        assert jwt.get_unverified_header(body["share_token"])["alg"] == "HS256"
        claims = _claims(body["share_token"])
        assert set(claims) == {
            "session_id",
            "session_kind",
            "from_application_id",
            "for_application_id",
            "iat",
            "exp",
        }
        assert claims["session_id"] == source["session_id"]
        assert claims["from_application_id"] == acme["application_id"]
        assert claims["exp"] - claims["iat"] == 3600

    @pytest.mark.parametrize("ttl", [60, 86400])
    def test_the_ttl_bounds_are_accepted(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
        ttl: int,
    ) -> None:
        """60 and 86400 seconds are the documented bounds, both allowed."""
        source = finished_session(control, acme, kind="user", status="Approved")
        body = {"for_application_id": ours["application_id"], "ttl_in_seconds": ttl}

        response = _share(didit, acme["api_key"], source["session_id"], body)

        claims = _claims(response.json()["share_token"])
        assert claims["exp"] - claims["iat"] == ttl

    @pytest.mark.parametrize("ttl", [59, 86401, "60", 1.5, True])
    def test_a_ttl_out_of_bounds_is_400_field_keyed(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
        ttl: object,
    ) -> None:
        """Below 60, above 86400 or not an integer: a ttl_in_seconds field error."""
        source = finished_session(control, acme, kind="user", status="Approved")
        body = {"for_application_id": ours["application_id"], "ttl_in_seconds": ttl}

        response = _share(didit, acme["api_key"], source["session_id"], body)

        assert response.status_code == 400
        assert list(response.json()) == ["ttl_in_seconds"]

    @pytest.mark.parametrize("status", ["In Progress", "Not Started"])
    def test_an_unfinished_session_cannot_be_shared(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
        status: str,
    ) -> None:
        """Only Approved, Declined and In Review can be shared: a 400 as a bare array."""
        source = next(s for s in control.sessions(acme["application_id"]) if s["status"] == status)

        response = _share(
            didit,
            acme["api_key"],
            source["session_id"],
            {"for_application_id": ours["application_id"]},
        )

        assert response.status_code == 400
        assert response.json() == [
            "Only finished sessions (Approved, Declined, In Review) can be shared."
        ]

    def test_another_applications_session_is_404(
        self, didit: httpx.Client, control: SandboxControl, ours: dict[str, Any]
    ) -> None:
        """globex cannot share acme's session."""
        acme = control.application("acme")
        globex = control.application("globex")
        source = finished_session(control, acme, kind="user", status="Approved")

        response = _share(
            didit,
            globex["api_key"],
            source["session_id"],
            {"for_application_id": ours["application_id"]},
        )

        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}

    @pytest.mark.parametrize(
        ("target", "message"),
        [
            (None, "This field is required."),
            ("not-a-uuid", "Must be a valid UUID."),
            ("00000000-0000-4000-8000-000000000000", "Application not found."),
            ("self", "Must differ from the calling application."),
        ],
    )
    def test_a_bad_for_application_id_is_400(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        acme: dict[str, Any],
        target: str | None,
        message: str,
    ) -> None:
        """Missing, malformed, unknown, or the caller itself."""
        source = finished_session(control, acme, kind="user", status="Approved")
        body = {} if target is None else {"for_application_id": target}
        if target == "self":
            body = {"for_application_id": acme["application_id"]}

        response = _share(didit, acme["api_key"], source["session_id"], body)

        assert response.status_code == 400
        assert response.json() == {"for_application_id": [message]}

    def test_a_minted_token_imports(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """What the public share endpoint mints, the import endpoint redeems."""
        source = finished_session(control, acme, kind="user", status="Approved")
        token = _share(
            didit,
            acme["api_key"],
            source["session_id"],
            {"for_application_id": ours["application_id"], "ttl_in_seconds": 120},
        ).json()["share_token"]
        workflow = next(w for w in ours["workflows"] if w["kind"] == "KYC")["workflow_id"]

        response = didit.post(
            "/v3/session/import-shared/",
            json={"share_token": token, "workflow_id": workflow, "trust_review": False},
            headers={"x-api-key": ours["api_key"]},
        )

        assert response.status_code == 201
