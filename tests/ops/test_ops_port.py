"""``server.ops_port``: what a stranger on the partner-facing port can learn, against a real
``share-bridge serve``. Metrics, the OpenAPI document, the admin API and the console answer on
the ops listener only; the public port serves intake, Didit's webhooks and the probes, and
404s the rest."""

from __future__ import annotations

import httpx
import pytest

from bridge.sandbox.control import SandboxControl
from tests.ops.scenario import tokens
from tests.support.bridge_process import ADMIN_TOKEN, PARTNERS, SandboxTarget, free_port
from tests.support.fixtures import MakeBridge

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_ops_routes_answer_on_the_ops_port_only(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
) -> None:
    ops_port = free_port()
    bridge = make_bridge(server={"ops_port": ops_port}, didit_webhooks=True)
    public, ops = bridge.base_url, f"http://127.0.0.1:{ops_port}"
    (token,) = tokens(control, target, 1)
    accepted = bridge.post_share("acme", {"share_token": token, "customer": "c1"})
    assert accepted.status_code == 202
    bridge.wait_for([accepted.json()["id"]])

    with httpx.Client(timeout=10.0) as http:
        for path in (
            "/metrics",
            "/openapi.json",
            "/admin/v1/notifications",
            "/console/sign-in",
            "/console/static/console.css",
        ):
            answer = http.get(public + path, headers=ADMIN)
            assert answer.status_code == 404, path
            assert answer.json()["error"]["code"] == "not_found"
        assert (
            http.post(public + "/console/sign-in", data={"token": ADMIN_TOKEN}).status_code == 404
        )
        assert http.post(public + "/v1/didit/webhooks", content=b"{}").status_code == 401
        for probe in ("/healthz", "/readyz"):
            assert http.get(public + probe).status_code == 200
            assert http.get(ops + probe).status_code == 200

        metrics = http.get(ops + "/metrics")
        assert metrics.status_code == 200
        assert "bridge_queue_depth" in metrics.text
        document = http.get(ops + "/openapi.json")
        assert document.status_code == 200
        assert "/v1/partners/{partner}/shares" in document.json()["paths"]
        assert not [name for name in PARTNERS if name in document.text]
        listed = http.get(ops + "/admin/v1/notifications", headers=ADMIN)
        assert [item["id"] for item in listed.json()["items"]] == [accepted.json()["id"]]
        sign_in = http.get(ops + "/console/sign-in")
        assert (sign_in.status_code, "<form" in sign_in.text) == (200, True)
        signed_in = http.post(ops + "/console/sign-in", data={"token": ADMIN_TOKEN})
        assert signed_in.status_code == 303
        # Partners have no business on the ops listener.
        assert http.post(ops + "/v1/partners/acme/shares", json={}).status_code == 404


def test_without_an_ops_port_one_port_serves_all_and_names_no_partner(
    make_bridge: MakeBridge,
) -> None:
    bridge = make_bridge()
    with httpx.Client(timeout=10.0) as http:
        assert http.get(bridge.base_url + "/metrics").status_code == 200
        assert http.get(bridge.base_url + "/admin/v1/notifications", headers=ADMIN).is_success
        assert http.get(bridge.base_url + "/console/sign-in").status_code == 200
        document = http.get(bridge.base_url + "/openapi.json")
    assert document.status_code == 200
    assert not [name for name in PARTNERS if name in document.text]
