"""Fixtures for the console tests: a real ``bridge serve`` (with an admin token, a ``crm``
destination and the sandbox as Didit), a sink that records each delivery, and a
Chromium page driven by playwright (Debian's ``/usr/bin/chromium``; no browser is downloaded).

- ``sandbox_url``, ``control``, ``target``: see ``tests/support/fixtures.py``.
- ``sink``: a :class:`RecordingSink` on 127.0.0.1 whose answer a test can change (also
  ``tests/support/fixtures.py``).
- ``console_bridge``: the running bridge, its ``crm`` destination pointed at ``sink``.
- ``browser``: one Chromium per test module; ``page``: a fresh context and page per test.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.ops.scenario import rules_to
from tests.support.bridge_process import ADMIN_TOKEN, PARTNERS, BridgeProcess, SandboxTarget
from tests.support.fixtures import bridge_factory, control, sandbox_url, sink, target
from tests.support.recording_sink import SINK_SECRET, RecordingSink
from tests.support.waiting import wait_until

__all__ = [
    "ADMIN_TOKEN",
    "CHROMIUM",
    "SINK_SECRET",
    "RecordingSink",
    "browser",
    "client",
    "configured_secrets",
    "console_bridge",
    "control",
    "csrf_of",
    "page",
    "sandbox_url",
    "sign_in",
    "sink",
    "target",
    "wait_for_status",
]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def console_bridge(
    tmp_path: Path, target: SandboxTarget, sink: RecordingSink
) -> Iterator[BridgeProcess]:
    for make in bridge_factory(BridgeProcess, tmp_path, target):
        yield make(rules=rules_to(target, "crm"), destinations={"crm": sink.destination()})


def configured_secrets(target: SandboxTarget) -> dict[str, str]:
    """Every secret the bridge's configuration holds, by what it is."""
    found = {
        "didit api key": target.api_key,
        "admin token": ADMIN_TOKEN,
        "destination secret": SINK_SECRET,
    }
    for partner, block in PARTNERS.items():
        values = [*block.get("secrets", ()), *block.get("keys", ())]
        if "key" in block:
            values.append(block["key"])
        for i, value in enumerate(values):
            found[f"{partner} secret {i}"] = value
    return found


def client(bridge: BridgeProcess) -> httpx.Client:
    return httpx.Client(base_url=bridge.base_url, timeout=10.0)


def sign_in(http: httpx.Client) -> httpx.Client:
    """``http``, now holding a console session."""
    answer = http.post("/console/sign-in", data={"token": ADMIN_TOKEN})
    assert answer.status_code == 303, answer.text
    return http


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)


# Module scope: while playwright's sync API runs, its event loop counts as running in this
# thread, so an async test run after it in the same process (another module, or the same
# pytest-xdist worker) could not start its own; pytest stops the browser when the module ends.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda message: errors.append(message.text))
    yield opened
    context.close()
    # A CSP violation (an inline script or style somewhere) shows as a console message.
    assert [text for text in errors if "Content Security Policy" in text] == []


def wait_for_status(
    bridge: BridgeProcess, ids: Collection[str], statuses: Collection[str], timeout_s: float = 20.0
) -> None:
    """Wait until each notification has one of ``statuses``, asking the admin API (playwright's
    loop runs in this thread, so the store helpers' ``asyncio.run`` cannot)."""

    def seen() -> dict[str, str]:
        current = {i: bridge.admin("GET", f"/notifications/{i}").json() for i in ids}
        return {i: body["notification"]["status"] for i, body in current.items()}

    wait_until(
        seen,
        f"{sorted(statuses)}",
        holds=lambda found: all(status in statuses for status in found.values()),
        timeout_s=timeout_s,
        poll_s=0.1,
    )
