"""The console in a real Chromium against real ``bridge serve`` and ``bridge sandbox`` processes:
what an operator on call does, click by click, checked against the admin API and the sink."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from bridge.sandbox.control import SandboxControl
from tests.console.conftest import ADMIN_TOKEN, RecordingSink, wait_for_status
from tests.ops.scenario import tokens
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

FINAL = ("imported", "rejected", "expired", "failed")
DOCS = Path(__file__).resolve().parents[2] / "docs"


def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    """Into ``docs/`` when ``BRIDGE_CONSOLE_SCREENSHOTS=docs`` (to refresh the README's), else
    beside the test's files, so that a test run leaves the worktree as it was."""
    folder = DOCS if os.environ.get("BRIDGE_CONSOLE_SCREENSHOTS") == "docs" else tmp_path
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a page, not a blank


def signed_in(page: Page, bridge: BridgeProcess) -> None:
    page.goto(f"{bridge.base_url}/console/")
    expect(page).to_have_url(f"{bridge.base_url}/console/sign-in")
    page.fill("input[name=token]", "wrong-token")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("not the admin token")
    page.fill("input[name=token]", ADMIN_TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{bridge.base_url}/console/overview")


def share(bridge: BridgeProcess, token: str, partner: str = "acme", customer: str = "c") -> str:
    answer = bridge.post_share(partner, {"share_token": token, "customer": customer})
    assert answer.status_code == 202, answer.text
    notification_id: str = answer.json()["id"]
    return notification_id


def dead_deliveries(bridge: BridgeProcess) -> list[dict[str, object]]:
    items: list[dict[str, object]] = bridge.admin("GET", "/deliveries?status=dead").json()["items"]
    return items


def test_overview_matches_the_admin_api_and_notifications_filter(
    tmp_path: Path,
    page: Page,
    console_bridge: BridgeProcess,
    control: SandboxControl,
    target: SandboxTarget,
) -> None:
    shares = tokens(control, target, 3)
    imported = [share(console_bridge, t, partner, f"c{i}") for i, (t, partner) in
                enumerate(zip(shares[:2], ["acme", "hooli"], strict=True))]  # fmt: skip
    wait_for_status(console_bridge, imported, ["imported"])
    control.set_faults("import", error_rate=1.0, error_statuses=[402])
    failed = share(console_bridge, shares[2], "acme", "broke")
    wait_for_status(console_bridge, [failed], ["failed"])

    signed_in(page, console_bridge)
    api = console_bridge.admin("GET", "/overview").json()
    assert api["last_hour"]["totals"]["imported"] == 2
    assert api["last_hour"]["totals"]["failed"] == 1
    expect(page.locator("#pending")).to_have_text(str(api["pending"]))
    expect(page.locator("#import-queue")).to_have_text(str(api["import_queue"]))
    for status, count in api["last_hour"]["totals"].items():
        key = page.locator(f"figure >> nth=0 >> [data-status={status}] b")
        expect(key).to_have_text(str(count))
    [crm] = api["deliveries"]
    row = page.locator("#delivery-totals tr[data-destination=crm]")
    expect(row.locator(".delivered")).to_have_text(str(crm["delivered"]))
    expect(row.locator(".pending")).to_have_text(str(crm["pending"]))
    # The refresh swaps the panel in place: the page itself is not reloaded.
    page.evaluate("window.__kept = 1")
    before = page.locator("#overview-at").inner_text()
    time.sleep(1.1)  # the overview's time shows whole seconds, and the server has no test clock
    page.click("#refresh")
    expect(page.locator("#overview-at")).not_to_have_text(before)
    assert page.evaluate("window.__kept") == 1
    screenshot(page, "console-overview.png", tmp_path)

    page.click("nav >> text=Notifications")
    page.select_option("select[name=status]", "failed")
    page.select_option("select[name=partner]", "acme")
    page.click("form.filters button")
    rows = page.locator("#notifications tbody tr[data-status]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(failed)
    page.select_option("select[name=status]", "imported")
    page.select_option("select[name=partner]", "hooli")
    page.click("form.filters button")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(imported[1])
    # Search by vendor_data: the rule wrote "{partner}:{payload.customer}".
    page.goto(f"{console_bridge.base_url}/console/notifications?q=acme:broke")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(failed)


def test_a_failed_notification_is_retried_from_its_timeline_until_imported(
    tmp_path: Path,
    page: Page,
    console_bridge: BridgeProcess,
    control: SandboxControl,
    target: SandboxTarget,
) -> None:
    control.set_faults("import", error_rate=1.0, error_statuses=[402])
    [token] = tokens(control, target, 1)
    failed = share(console_bridge, token, "acme", "unpaid")
    wait_for_status(console_bridge, [failed], FINAL)
    control.clear_faults("import")

    signed_in(page, console_bridge)
    page.click("nav >> text=Notifications")
    page.click(f"text={failed}")
    expect(page.locator("#status")).to_have_text("failed")
    expect(page.locator("#reason")).to_contain_text("insufficient_balance")
    expect(page.locator(".attempt").first).to_contain_text("Didit 402")
    page.click("#retry")
    expect(page.locator(".notice")).to_contain_text("queued again")
    wait_for_status(console_bridge, [failed], ["imported"])
    page.reload()
    expect(page.locator("#status")).to_have_text("imported")
    expect(page.locator("#retry-refusal")).to_contain_text("only a failed notification")
    expect(page.locator(".attempt")).to_have_count(2)
    screenshot(page, "console-timeline.png", tmp_path)


def test_a_dead_delivery_is_redelivered_with_its_original_webhook_id(
    page: Page,
    console_bridge: BridgeProcess,
    control: SandboxControl,
    target: SandboxTarget,
    sink: RecordingSink,
) -> None:
    sink.status = 500
    [token] = tokens(control, target, 1)
    wait_for_status(console_bridge, [share(console_bridge, token)], FINAL)
    wait_until(lambda: dead_deliveries(console_bridge), "a dead delivery")
    [dead] = console_bridge.admin("GET", "/deliveries?status=dead").json()["items"]
    original = set(sink.webhook_ids())
    assert len(original) == 1
    sink.status = 200

    signed_in(page, console_bridge)
    page.click("nav >> text=Deliveries")
    page.select_option("select[name=status]", "dead")
    page.click("form.filters button")
    row = page.locator(f"#deliveries tr[data-id={dead['id']}]")
    row.locator("button", has_text="Redeliver").click()
    expect(page.locator(".notice")).to_contain_text("queued again")
    wait_until(lambda: len(sink.received) >= 3, "3 deliveries at the sink")
    headers, _body = sink.received[-1]
    assert headers["webhook-id"] in original
    assert console_bridge.admin("GET", "/deliveries?status=delivered").json()["items"] != []


def test_redeliver_all_that_match_asks_first_with_the_count(
    page: Page,
    console_bridge: BridgeProcess,
    control: SandboxControl,
    target: SandboxTarget,
    sink: RecordingSink,
) -> None:
    sink.status = 500
    ids = [share(console_bridge, t, customer=f"m{i}") for i, t in
           enumerate(tokens(control, target, 2))]  # fmt: skip
    wait_for_status(console_bridge, ids, FINAL)
    wait_until(lambda: len(dead_deliveries(console_bridge)) == 2, "2 dead deliveries")
    sent_before = len(sink.received)
    sink.status = 200

    signed_in(page, console_bridge)
    page.goto(f"{console_bridge.base_url}/console/deliveries?status=dead&destination=crm")
    page.click("#redeliver-matching")
    expect(page.locator("#confirm-count")).to_contain_text("2 dead deliveries to crm")
    assert len(sink.received) == sent_before  # asking sent nothing
    page.click("#confirm")
    expect(page.locator(".notice")).to_have_text("2 deliveries queued again")
    page.reload()  # the answer was a GET: a reload does not ask again
    wait_until(lambda: len(sink.received) == sent_before + 2, "2 more deliveries at the sink")


def test_enable_a_disabled_destination(page: Page, console_bridge: BridgeProcess) -> None:
    assert console_bridge.cli("destinations", "disable", "crm").returncode == 0
    signed_in(page, console_bridge)
    page.click("nav >> text=Destinations")
    row = page.locator("#destinations tr[data-name=crm]")
    expect(row.locator(".state")).to_contain_text("disabled")
    row.locator("button", has_text="Enable").click()
    expect(page.locator(".notice")).to_have_text("crm enabled")
    expect(row.locator(".state")).to_have_text("enabled")
    [crm] = console_bridge.admin("GET", "/destinations").json()["items"]
    assert crm["enabled"] is True


def test_reload_a_broken_config_shows_its_issue(page: Page, console_bridge: BridgeProcess) -> None:
    signed_in(page, console_bridge)
    page.click("nav >> text=Configuration")
    expect(page.locator("#config")).to_contain_text("**********")
    good = console_bridge.config_path.read_text()
    console_bridge.config_path.write_text(good.replace("timeout_s: 1.0", "timeout_s: -5", 1))
    page.click("#reload")
    issues = page.locator("#issues li")
    expect(issues).to_have_count(1)
    expect(issues.first).to_contain_text("didit.timeout_s")
    api = console_bridge.admin("POST", "/reload").json()["error"]["issues"]
    expect(issues.first).to_contain_text(api[0]["message"])
    console_bridge.config_path.write_text(good)
    page.click("#reload")
    expect(page.locator(".notice")).to_have_text("reloaded")


def test_preview_a_route_sends_nothing_to_didit(
    page: Page, console_bridge: BridgeProcess, control: SandboxControl, target: SandboxTarget
) -> None:
    [token] = tokens(control, target, 1)
    calls_before = len(control.calls())
    signed_in(page, console_bridge)
    page.click("nav >> text=Route preview")
    page.select_option("select[name=partner]", "acme")
    page.fill("textarea[name=body]", f'{{"share_token": "{token}", "customer": "preview"}}')
    page.click("form.stack button")
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("would accept")
    expect(verdict).to_contain_text(target.kyc_workflow_id)
    expect(verdict).to_contain_text("acme:preview")
    assert token not in page.content()
    assert len(control.calls()) == calls_before
    assert console_bridge.admin("GET", "/notifications").json()["items"] == []
