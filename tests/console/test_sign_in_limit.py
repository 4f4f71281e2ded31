"""Wrong admin tokens at the sign-in page are limited per client address: after five within a
minute the address gets 429 with Retry-After and a stable code, the right token included, until
the oldest failure leaves the window; other addresses are not affected."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import yaml
from starlette.applications import Starlette

from bridge import auth, config
from bridge.app import Console, LiveConfig
from bridge.app.console.sign_in_limit import SignInLimit
from bridge.app.operations import Operations
from bridge.store import open_store
from tests.ops.scenario import TARGET
from tests.store.helpers import FakeClock
from tests.support.bridge_process import ADMIN_TOKEN, make_config

pytestmark = pytest.mark.anyio

Client = Callable[[str], httpx.AsyncClient]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client_from(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Client]:
    """A client of one console for each client address."""
    document = make_config(TARGET, db_path=tmp_path / "unused.db", port=0, admin_token=ADMIN_TOKEN)
    current = config.load_text(yaml.safe_dump(document))
    live = LiveConfig(settings=current, verifiers=auth.verifiers_for(current))
    store = open_store(f"sqlite:///{tmp_path}/bridge.db", clock=clock)
    console = Console(
        live=lambda: live,
        operations=Operations(store=store, settings=lambda: current),
        sign_in_limit=SignInLimit(clock=clock),
    )
    app = Starlette(routes=[console.mount()])
    clients: list[httpx.AsyncClient] = []

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 50_000))
        made = httpx.AsyncClient(transport=transport, base_url="http://console.test")
        clients.append(made)
        return made

    yield client
    for made in clients:
        await made.aclose()
    await store.close()


async def sign_in(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/console/sign-in", data={"token": token})


def code_of(answer: httpx.Response) -> str | None:
    found = re.search(r'data-code="([^"]*)"', answer.text)
    return found.group(1) if found else None


async def test_five_wrong_tokens_in_a_minute_lock_the_address_out(
    client_from: Client, clock: FakeClock
) -> None:
    guesser, operator = client_from("203.0.113.7"), client_from("198.51.100.2")
    for _ in range(5):
        wrong = await sign_in(guesser, "not-the-token")
        assert (wrong.status_code, code_of(wrong)) == (401, "wrong_token")
    limited = await sign_in(guesser, ADMIN_TOKEN)
    assert (limited.status_code, code_of(limited)) == (429, "sign_in_rate_limited")
    assert "set-cookie" not in limited.headers
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another address still signs in.
    assert (await sign_in(operator, ADMIN_TOKEN)).status_code == 303
    # A minute after the first failure, the address may try again.
    clock.now += 60
    assert (await sign_in(guesser, ADMIN_TOKEN)).status_code == 303


async def test_failures_spread_over_more_than_a_minute_are_not_limited(
    client_from: Client, clock: FakeClock
) -> None:
    guesser = client_from("203.0.113.7")
    for _ in range(10):
        assert (await sign_in(guesser, "not-the-token")).status_code == 401
        clock.now += 15


async def test_a_successful_sign_in_forgets_the_failures(client_from: Client) -> None:
    operator = client_from("198.51.100.2")
    for _ in range(4):
        assert (await sign_in(operator, "a-typo")).status_code == 401
    assert (await sign_in(operator, ADMIN_TOKEN)).status_code == 303
    for _ in range(4):
        assert (await sign_in(operator, "a-typo")).status_code == 401
    assert (await sign_in(operator, ADMIN_TOKEN)).status_code == 303


def test_the_memory_is_bounded() -> None:
    clock = FakeClock()
    limit = SignInLimit(max_failures=1, max_addresses=2, clock=clock)
    for address in ("a", "b", "c"):
        limit.failed(address)
    assert limit.retry_after_s("a") is None  # forgotten: the least recent failure
    assert limit.retry_after_s("b") == 60
    assert limit.retry_after_s("c") == 60
