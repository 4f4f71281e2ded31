"""PostgreSQL unreachable under steady intake: never a 500, never a 202 that is lost.

``bridge serve`` reaches its database through a proxy the test cuts twice (open connections
reset, new ones refused) and restores. Meanwhile a partner keeps sending: every answer is 202
(committed), 200 duplicate or 503 ``store_unavailable``; ``/readyz`` answers 503 while the
database is away; afterwards every 202 ends imported, the sandbox's ledger holds no share twice,
and a partner re-sending what got a 503 is accepted once.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from bridge.sandbox.control import SandboxControl
from tests.store.backends import (
    PG_DSN,
    TOKEN_KEY,
    check_pg_server,
    drop_pg_schema,
    new_pg_schema,
)
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

NOTIFICATIONS = 60


@pytest.fixture(name="proxied_store")
def _proxied_store() -> Iterator[tuple[TcpProxy, dict[str, object]]]:
    check_pg_server()
    parts = urlsplit(PG_DSN)
    schema = new_pg_schema()
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}"
    store: dict[str, object] = {
        "url": urlunsplit(parts._replace(netloc=netloc)),
        "schema": schema,
        "token_keys": [base64.urlsafe_b64encode(TOKEN_KEY).decode()],
    }
    try:
        yield proxy, store
    finally:
        proxy.cut()
        drop_pg_schema(schema)


def test_an_unreachable_database_is_503_and_everything_resumes(
    control: SandboxControl,
    target: SandboxTarget,
    make_bridge: Callable[..., BridgeProcess],
    proxied_store: tuple[TcpProxy, dict[str, object]],
) -> None:
    proxy, store = proxied_store
    acme = control.application("acme")
    control.set_quota(write_limit=1_000_000, read_limit=1_000_000)
    tokens = control.bulk_tokens(acme["application_id"], target.application_id, NOTIFICATIONS)
    bridge = make_bridge(store=store, rate_limit_per_minute=6000, max_in_flight=4)

    answers: Counter[int] = Counter()
    accepted: dict[str, int] = {}
    unavailable: list[int] = []
    readiness: list[int] = []
    for index, token in enumerate(tokens):
        if index in (15, 40):
            proxy.cut()
        body = {"share_token": token, "event_id": f"evt-{index}", "customer": f"c{index}"}
        response = bridge.post_share("acme", body, message_id=f"m-{index}")
        answers[response.status_code] += 1
        if response.status_code == 202:
            accepted[response.json()["id"]] = index
        elif response.status_code == 503:
            assert response.json()["error"]["code"] == "store_unavailable", response.text
            if index in (15, 40):
                readiness.append(bridge.http.get(f"{bridge.base_url}/readyz").status_code)
            unavailable.append(index)
        else:
            assert response.status_code == 200, response.text
        if index in (17, 42):
            proxy.restore()
    assert set(answers) <= {200, 202, 503}, answers
    assert unavailable, "the outage was never seen"
    assert set(readiness) == {503}

    for index in unavailable:  # the partner retries what got a 503
        body = {"share_token": tokens[index], "event_id": f"evt-{index}", "customer": f"c{index}"}
        response = _post_until_answered(bridge, body, f"m-{index}")
        assert response.status_code in (200, 202), response.text
        accepted[response.json()["id"]] = index
    assert bridge.http.get(f"{bridge.base_url}/readyz").status_code == 200

    final = bridge.wait_for(accepted, timeout_s=90)
    assert Counter(final.values()) == {"imported": NOTIFICATIONS}
    assert control.double_redemptions() == []
    assert len({r["source_session_id"] for r in control.redemptions()}) == NOTIFICATIONS
    assert "Traceback" not in bridge.output()


def _post_until_answered(
    bridge: BridgeProcess, body: dict[str, str], message_id: str
) -> httpx.Response:
    give_up = time.monotonic() + 30
    while True:
        response = bridge.post_share("acme", body, message_id=message_id)
        if response.status_code != 503 or time.monotonic() > give_up:
            return response
        time.sleep(0.2)
