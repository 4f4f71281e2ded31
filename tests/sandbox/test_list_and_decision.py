"""GET /v3/sessions/ and GET /v3/session/{id}/decision/: what reconciliation reads."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bridge.sandbox.control import SandboxControl
from tests.sandbox.helpers import finished_session, import_body, workflow_id


def _list(didit: httpx.Client, key: str, **params: Any) -> httpx.Response:
    return didit.get("/v3/sessions/", params=params, headers={"x-api-key": key})


def _import_n(
    didit: httpx.Client,
    control: SandboxControl,
    ours: dict[str, Any],
    acme: dict[str, Any],
    count: int,
    *,
    kind: str = "user",
    vendor_data: str = "user-1",
) -> list[dict[str, Any]]:
    workflow = workflow_id(ours, "KYC" if kind == "user" else "KYB")
    created = []
    for _ in range(count):
        source = control.create_session(acme["application_id"], kind=kind, status="Approved")
        token = control.mint_token(source["session_id"], ours["application_id"])
        response = didit.post(
            "/v3/session/import-shared/",
            json=import_body(token, workflow, vendor_data=vendor_data),
            headers={"x-api-key": ours["api_key"]},
        )
        assert response.status_code == 201
        created.append(response.json())
    return created


class TestListSessions:
    def test_lists_the_callers_sessions_newest_first(
        self, didit: httpx.Client, control: SandboxControl, acme: dict[str, Any]
    ) -> None:
        """Rows are ordered by descending session_number, user sessions by default."""
        response = _list(didit, acme["api_key"])

        assert response.status_code == 200
        body = response.json()
        numbers = [row["session_number"] for row in body["results"]]
        assert numbers == sorted(numbers, reverse=True)
        assert {row["session_kind"] for row in body["results"]} == {"user"}
        assert body["count"] == len(body["results"]) == 5
        assert body["next"] is None
        assert body["previous"] is None
        row = body["results"][0]
        for key in ("session_id", "status", "vendor_data", "created_at", "full_name", "features"):
            assert key in row

    def test_filters_on_vendor_data_and_workflow_id(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """The reconciliation query finds exactly the import it looks for."""
        [wanted] = _import_n(didit, control, ours, acme, 1, vendor_data="cust-7")
        _import_n(didit, control, ours, acme, 2, vendor_data="cust-8")

        response = _list(
            didit, ours["api_key"], vendor_data="cust-7", workflow_id=wanted["workflow_id"]
        )

        assert [row["session_id"] for row in response.json()["results"]] == [wanted["session_id"]]
        other = _list(
            didit, ours["api_key"], vendor_data="cust-7", workflow_id=acme["application_id"]
        )
        assert other.json()["count"] == 0

    def test_filters_on_date_from(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """date_from (ISO 8601) keeps sessions created at or after it."""
        _import_n(didit, control, ours, acme, 1)

        future = _list(didit, ours["api_key"], date_from="2999-01-01T00:00:00Z")
        past = _list(didit, ours["api_key"], date_from="2000-01-01")

        assert future.json()["count"] == 0
        assert past.json()["count"] == 1

    def test_session_kind_business_and_all(self, didit: httpx.Client, acme: dict[str, Any]) -> None:
        """business lists KYB rows (with KYB keys); all concatenates both kinds."""
        business = _list(didit, acme["api_key"], session_kind="business").json()
        everything = _list(didit, acme["api_key"], session_kind="all").json()

        assert {row["session_kind"] for row in business["results"]} == {"business"}
        assert "company_name" in business["results"][0]
        assert business["count"] == 4
        assert everything["count"] == 9
        assert [row["session_kind"] for row in everything["results"]] == ["user"] * 5 + [
            "business"
        ] * 4

    def test_pages_with_limit_and_offset(self, didit: httpx.Client, acme: dict[str, Any]) -> None:
        """limit and offset page through; next and previous link the neighbours."""
        first = _list(didit, acme["api_key"], limit=2).json()
        second = didit.get(first["next"], headers={"x-api-key": acme["api_key"]}).json()
        third = didit.get(second["next"], headers={"x-api-key": acme["api_key"]}).json()
        back = didit.get(third["previous"], headers={"x-api-key": acme["api_key"]}).json()

        assert [len(page["results"]) for page in (first, second, third)] == [2, 2, 1]
        assert first["previous"] is None
        assert third["next"] is None
        assert back["results"] == second["results"]
        seen = [row["session_id"] for page in (first, second, third) for row in page["results"]]
        assert len(set(seen)) == 5

    def test_the_kyb_count_is_capped_at_100(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """The documented quirk: a business count never exceeds 100."""
        control.bulk_tokens(
            acme["application_id"], ours["application_id"], 100, session_kind="business"
        )

        body = _list(didit, acme["api_key"], session_kind="business", limit=1).json()

        assert body["count"] == 100

    @pytest.mark.parametrize(
        ("params", "field"),
        [({"session_kind": "robots"}, "session_kind"), ({"date_from": "yesterday"}, "date_from")],
    )
    def test_bad_filters_are_400_field_keyed(
        self, didit: httpx.Client, acme: dict[str, Any], params: dict[str, str], field: str
    ) -> None:
        """An invalid choice or date is named per field."""
        response = _list(didit, acme["api_key"], **params)

        assert response.status_code == 400
        assert list(response.json()) == [field]

    def test_filters_on_status_in_either_casing(
        self, didit: httpx.Client, acme: dict[str, Any]
    ) -> None:
        """status=Declined and status=DECLINED match the same rows."""
        title = _list(didit, acme["api_key"], status="Declined").json()
        upper = _list(didit, acme["api_key"], status="DECLINED").json()

        assert title["count"] == upper["count"] == 1


class TestDecision:
    def test_returns_the_decision_of_an_own_session(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """The imported session's decision, with its kind and status."""
        [created] = _import_n(didit, control, ours, acme, 1)

        response = didit.get(
            f"/v3/session/{created['session_id']}/decision/",
            headers={"x-api-key": ours["api_key"]},
        )

        assert response.status_code == 200
        body = response.json()
        assert body["session_id"] == created["session_id"]
        assert body["session_kind"] == "user"
        assert body["status"] == "In Review"
        assert body["id_verifications"][0]["full_name"]

    def test_a_kyb_decision_has_registry_checks(
        self, didit: httpx.Client, control: SandboxControl, acme: dict[str, Any]
    ) -> None:
        """The same path serves KYB sessions, told apart by session_kind."""
        source = finished_session(control, acme, kind="business", status="Approved")

        body = didit.get(
            f"/v3/session/{source['session_id']}/decision/",
            headers={"x-api-key": acme["api_key"]},
        ).json()

        assert body["session_kind"] == "business"
        assert body["registry_checks"][0]["company_name"]

    def test_another_applications_session_is_404(
        self, didit: httpx.Client, control: SandboxControl, ours: dict[str, Any]
    ) -> None:
        """We cannot read acme's decisions."""
        acme = control.application("acme")
        source = finished_session(control, acme, kind="user", status="Approved")

        response = didit.get(
            f"/v3/session/{source['session_id']}/decision/",
            headers={"x-api-key": ours["api_key"]},
        )

        assert response.status_code == 404
