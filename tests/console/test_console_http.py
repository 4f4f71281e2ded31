"""The console's guards over HTTP against a real ``bridge serve``: no session, no page and no
action; no CSRF token, no action; the cookie's attributes; the security headers; and no page
source holds a share token or a configured secret."""

from __future__ import annotations

import time

import httpx
import pytest

from bridge.sandbox.control import SandboxControl
from tests.console.conftest import (
    ADMIN_TOKEN,
    RecordingSink,
    client,
    configured_secrets,
    csrf_of,
    sign_in,
    wait_for_status,
)
from tests.ops.scenario import tokens
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

PAGES = [
    "/console/",
    "/console/overview",
    "/console/overview/panel",
    "/console/notifications",
    "/console/notifications/ntf_01JDX6Z0A4E8S7Q9W3M5T2V1KC",
    "/console/deliveries",
    "/console/deliveries/redeliver-matching?status=dead",
    "/console/destinations",
    "/console/configuration",
    "/console/route-preview",
]
ACTIONS = [
    "/console/sign-out",
    "/console/notifications/ntf_01JDX6Z0A4E8S7Q9W3M5T2V1KC/retry",
    "/console/deliveries/dlv_01JDX6Z0A4E8S7Q9W3M5T2V1KC/redeliver",
    "/console/deliveries/redeliver-matching",
    "/console/destinations/crm/enable",
    "/console/destinations/crm/recover",
    "/console/configuration/reload",
    "/console/route-preview",
]


def test_without_a_session_pages_redirect_and_actions_are_refused(
    console_bridge: BridgeProcess,
) -> None:
    with client(console_bridge) as http:
        refused_without_a_session(http)


def refused_without_a_session(http: httpx.Client) -> None:
    forged = {"bridge_console": f"{int(time.time()) + 3600}.abc.{'0' * 64}"}
    for cookies in ({}, forged):
        http.cookies.clear()
        http.cookies.update(cookies)
        for path in PAGES:
            answer = http.get(path)
            assert (answer.status_code, answer.headers.get("location")) == (
                303,
                "/console/sign-in",
            ), path
        for path in ACTIONS:
            answer = http.post(path, data={"since": "2026-01-01T00:00", "status": "dead"})
            assert answer.status_code == 403, path
    assert http.post("/console/sign-in", data={"token": "not-the-token"}).status_code == 401
    assert "set-cookie" not in http.post("/console/sign-in", data={"token": ""}).headers


def test_a_post_without_the_csrf_token_is_refused(
    console_bridge: BridgeProcess, control: SandboxControl
) -> None:
    console_bridge.cli("destinations", "disable", "crm")
    with client(console_bridge) as http:
        csrf_refusals(console_bridge, sign_in(http))


def csrf_refusals(console_bridge: BridgeProcess, http: httpx.Client) -> None:
    for path in ACTIONS:
        assert http.post(path, data={"since": "2026-01-01T00:00"}).status_code == 403, path
        wrong = {"csrf": "0" * 64, "since": "2026-01-01T00:00"}
        assert http.post(path, data=wrong).status_code == 403, path
    # Nothing acted: the destination is still disabled.
    [crm] = console_bridge.admin("GET", "/destinations").json()["items"]
    assert crm["enabled"] is False
    csrf = csrf_of(http.get("/console/destinations").text)
    assert http.post("/console/destinations/crm/enable", data={"csrf": csrf}).status_code == 303
    [crm] = console_bridge.admin("GET", "/destinations").json()["items"]
    assert crm["enabled"] is True
    # A session signed with another admin token is no session: a rotated token signs all out.
    assert http.post("/console/sign-out", data={"csrf": csrf}).status_code == 303
    assert http.get("/console/overview").status_code == 303


def test_cookie_attributes_and_security_headers(console_bridge: BridgeProcess) -> None:
    with client(console_bridge) as http:
        cookie_and_headers(http)


def cookie_and_headers(http: httpx.Client) -> None:
    answer = http.post("/console/sign-in", data={"token": ADMIN_TOKEN})
    cookie = answer.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "max-age", "path"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "path=/console" in cookie.lower()
    assert "secure" not in attributes  # plain http on 127.0.0.1
    # Behind a TLS-terminating proxy on the same host, the request is https: Secure.
    behind_tls = http.post(
        "/console/sign-in", data={"token": ADMIN_TOKEN}, headers={"X-Forwarded-Proto": "https"}
    )
    assert "secure" in {p.strip().lower() for p in behind_tls.headers["set-cookie"].split(";")}
    for path in ["/console/sign-in", "/console/overview", "/console/static/console.css"]:
        headers = http.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-frame-options"] == "DENY"


def test_no_page_source_holds_a_share_token_or_a_secret(
    console_bridge: BridgeProcess,
    control: SandboxControl,
    target: SandboxTarget,
    sink: RecordingSink,
) -> None:
    shares = tokens(control, target, 2)
    ids = []
    for i, share in enumerate(shares):
        answer = console_bridge.post_share("acme", {"share_token": share, "customer": f"c{i}"})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    wait_for_status(console_bridge, ids, ["imported"])
    with client(console_bridge) as http:
        sources = page_sources(sign_in(http), ids, shares)
    secrets = {
        **configured_secrets(target),
        **{f"share token {i}": t for i, t in enumerate(shares)},
        **{f"token claims {i}": t.split(".")[1] for i, t in enumerate(shares)},
        **{f"token signature {i}": t.rsplit(".", 1)[1] for i, t in enumerate(shares)},
    }
    text = "\n".join(sources)
    assert [name for name, secret in secrets.items() if secret in text] == []
    assert "**********" in text  # the configuration page shows the secrets, masked


def page_sources(http: httpx.Client, ids: list[str], shares: list[str]) -> list[str]:
    """Every page, the timelines, a route preview of a token and a reload's answer."""
    csrf = csrf_of(http.get("/console/overview").text)
    sources = [http.get(path).text for path in PAGES]
    sources += [http.get(f"/console/notifications/{i}").text for i in ids]
    sources.append(http.get("/console/deliveries?status=delivered").text)
    # A preview of a body holding a token: the verdict, never the token again.
    body = f'{{"share_token": "{shares[0]}", "customer": "z"}}'
    form = {"csrf": csrf, "partner": "acme", "body": body}
    preview = http.post("/console/route-preview", data=form)
    assert preview.status_code == 200
    assert "would accept" in preview.text
    sources.append(preview.text)
    reloaded = http.post("/console/configuration/reload", data={"csrf": csrf})
    assert reloaded.status_code == 200
    sources.append(reloaded.text)
    return sources


def test_without_an_admin_section_there_is_no_console(
    console_bridge: BridgeProcess,
) -> None:
    console_bridge.restart(admin_token=None)
    with client(console_bridge) as http:
        assert http.get("/console/sign-in").status_code == 404
        assert http.post("/console/sign-in", data={"token": ADMIN_TOKEN}).status_code == 404
        assert http.get("/console/overview").status_code == 404


def test_recover_since_sends_a_destinations_deliveries_again(
    console_bridge: BridgeProcess,
    control: SandboxControl,
    target: SandboxTarget,
    sink: RecordingSink,
) -> None:
    [share] = tokens(control, target, 1)
    answer = console_bridge.post_share("acme", {"share_token": share, "customer": "r"})
    wait_for_status(console_bridge, [answer.json()["id"]], ["imported"])
    wait_until(lambda: sink.received, "a delivery at the sink")
    first_id = sink.webhook_ids()[0]
    with client(console_bridge) as http:
        sign_in(http)
        csrf = csrf_of(http.get("/console/destinations").text)
        recovered = http.post(
            "/console/destinations/crm/recover", data={"csrf": csrf, "since": "2000-01-01T00:00"}
        )
        assert recovered.status_code == 303
        page = http.get(recovered.headers["location"]).text
        assert "1 deliveries to crm queued again" in page
        future = {"csrf": csrf, "since": "2999-01-01T00:00"}
        nothing = http.get(
            http.post("/console/destinations/crm/recover", data=future).headers["location"]
        )
        assert "0 deliveries to crm queued again" in nothing.text
        assert (
            http.post(
                "/console/destinations/crm/recover", data={"csrf": csrf, "since": "soon"}
            ).status_code
            == 400
        )
    wait_until(lambda: len(sink.received) >= 2, "the delivery sent again")
    assert sink.webhook_ids() == [first_id, first_id]
