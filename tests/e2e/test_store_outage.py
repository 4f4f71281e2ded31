"""PostgreSQL away under steady intake: never a 500, never a 202 that is lost.

Two outages. In the first, ``bridge serve`` reaches its database through a proxy the test cuts
twice (open connections reset, new ones refused) and restores; ``/readyz`` answers 503 while the
database is away. In the second, every connection the bridge holds (its pool, its LISTEN
connection, its liveness lock) is terminated by the server, again and again, while partners send
and the workers import. Either way every answer is 202 (committed), 200 duplicate or 503
``store_unavailable``; afterwards every 202 ends imported, the sandbox's ledger holds no share
twice, and a partner re-sending what got a 503 is accepted once.

The bridge waits ``pool_timeout_s`` (0.5 s here) for a connection before it answers 503, so an
outage costs the test little time.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
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

NOTIFICATIONS = 40
POOL_TIMEOUT_S = 0.5


@pytest.fixture(name="proxied_store")
def _proxied_store() -> Iterator[tuple[TcpProxy, dict[str, object]]]:
    check_pg_server()
    parts = urlsplit(PG_DSN)
    schema = new_pg_schema()
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}"
    try:
        yield proxy, _store_section(urlunsplit(parts._replace(netloc=netloc)), schema)
    finally:
        proxy.cut()
        drop_pg_schema(schema)


@pytest.fixture(name="direct_store")
def _direct_store() -> Iterator[dict[str, object]]:
    check_pg_server()
    schema = new_pg_schema()
    try:
        yield _store_section(PG_DSN, schema)
    finally:
        drop_pg_schema(schema)


def _store_section(url: str, schema: str) -> dict[str, object]:
    return {
        "url": url,
        "schema": schema,
        "token_keys": [base64.urlsafe_b64encode(TOKEN_KEY).decode()],
        "pool_timeout_s": POOL_TIMEOUT_S,
    }


def test_an_unreachable_database_is_503_and_everything_resumes(
    control: SandboxControl,
    target: SandboxTarget,
    proxied_store: tuple[TcpProxy, dict[str, object]],
    make_bridge: Callable[..., BridgeProcess],
) -> None:
    proxy, store = proxied_store
    tokens = _tokens(control, target)
    bridge = make_bridge(store=store, rate_limit_per_minute=6000, max_in_flight=4)

    answers: dict[int, httpx.Response] = {}
    readiness: list[int] = []
    for index, token in enumerate(tokens):
        if index in (10, 25):
            proxy.cut()
        answers[index] = bridge.post_share("acme", _body(token, index), message_id=f"m-{index}")
        if index in (10, 25):
            readiness.append(bridge.http.get(f"{bridge.base_url}/readyz").status_code)
        if index in (12, 27):
            proxy.restore()
    assert set(readiness) == {503}
    assert {answers[index].status_code for index in (10, 11, 12, 25, 26, 27)} == {503}

    _every_share_imported_once(control, bridge, tokens, answers)
    assert bridge.http.get(f"{bridge.base_url}/readyz").status_code == 200


def test_connections_terminated_by_the_server_are_503_and_everything_resumes(
    control: SandboxControl,
    target: SandboxTarget,
    direct_store: dict[str, object],
    make_bridge: Callable[..., BridgeProcess],
) -> None:
    tokens = _tokens(control, target)
    control.set_faults("import", latency_ms=20)  # imports in flight when the connections go
    bridge = make_bridge(store=direct_store, rate_limit_per_minute=6000, max_in_flight=4)
    sending = threading.Event()
    terminated: list[int] = []

    def terminate_repeatedly() -> None:
        sending.wait()
        for _ in range(6):
            terminated.append(_terminate_connections(str(direct_store["schema"])))
            time.sleep(0.15)

    killer = threading.Thread(target=terminate_repeatedly)
    killer.start()
    with ThreadPoolExecutor(4) as partners:
        sending.set()
        sent = partners.map(partial(_send, bridge, tokens), range(len(tokens)))
        answers = dict(enumerate(sent))
    killer.join()
    assert sum(terminated) > 0, "no connection was terminated"

    _every_share_imported_once(control, bridge, tokens, answers)


def _terminate_connections(schema: str) -> int:
    """End every connection the bridge holds, as ``pg_terminate_backend`` from an operator (or
    a failover) does. Only the bridge's: other tests may share the database, so its
    application_name (which names the schema) picks them out."""
    with psycopg.connect(PG_DSN, autocommit=True) as connection:
        cursor = connection.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND application_name = %s",
            [f"share-bridge {schema}"],
        )
        row = cursor.fetchone()
    return 0 if row is None else int(row[0])


def _tokens(control: SandboxControl, target: SandboxTarget) -> list[str]:
    acme = control.application("acme")
    control.set_quota(write_limit=1_000_000, read_limit=1_000_000)
    return control.bulk_tokens(acme["application_id"], target.application_id, NOTIFICATIONS)


def _body(token: str, index: int) -> dict[str, str]:
    return {"share_token": token, "event_id": f"evt-{index}", "customer": f"c{index}"}


def _send(bridge: BridgeProcess, tokens: list[str], index: int) -> httpx.Response:
    return bridge.post_share("acme", _body(tokens[index], index), message_id=f"m-{index}")


def _every_share_imported_once(
    control: SandboxControl,
    bridge: BridgeProcess,
    tokens: list[str],
    answers: dict[int, httpx.Response],
) -> None:
    """Every answer was 202, 200 duplicate or 503 ``store_unavailable`` (a 503 was seen); what
    got a 503 is sent again until answered; then every share ends imported, each once."""
    statuses = Counter(response.status_code for response in answers.values())
    assert set(statuses) <= {200, 202, 503}, statuses
    assert statuses[503] > 0, "the outage was never seen"
    accepted: dict[str, int] = {}
    for index, response in sorted(answers.items()):
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "store_unavailable", response.text
            response = _post_until_answered(bridge, _body(tokens[index], index), f"m-{index}")
        assert response.status_code in (200, 202), response.text
        accepted[response.json()["id"]] = index
    assert sorted(accepted.values()) == list(range(len(tokens)))

    # Well within the 60 s lease of an import: a job left to its lease to lapse is a bug here
    # (a result or a claim lost with the connection), not slowness.
    final = bridge.wait_for(accepted, timeout_s=30)
    assert Counter(final.values()) == {"imported": len(tokens)}
    assert control.double_redemptions() == []
    assert len({r["source_session_id"] for r in control.redemptions()}) == len(tokens)
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
