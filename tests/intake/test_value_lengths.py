"""An id or vendor data longer than the store keeps: 422 ``value_too_long`` on either store.

The store indexes the event id, the dedupe key (the token's ``from_application_id`` and
``session_id``) and ``vendor_data``; a PostgreSQL index row holds about 2.7 kB, and a longer
value failed the whole accept group with 503. Intake refuses one alike over both stores and
stores nothing; a value at the limit is accepted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.app.intake_checks import MAX_ID_CHARS, MAX_VENDOR_DATA_CHARS
from bridge.store import Store
from tests.intake.both_stores import _store, _target  # noqa: F401 - fixtures: store, target
from tests.intake.conftest import Harness, error_code, load_settings, share_token
from tests.store.helpers import FakeClock

pytestmark = pytest.mark.anyio

OVERSIZED = 3_000  # past the limits, and past what a PostgreSQL index row holds


@pytest.fixture(name="harness")
async def _harness(store: Store, clock: FakeClock) -> AsyncIterator[Harness]:
    """Intake with the default body limit (64 KB): room for the long values."""
    settings = load_settings()
    server = settings.server.model_copy(update={"max_body_bytes": 65_536})
    settings = settings.model_copy(update={"server": server})
    harness = Harness(settings, store, clock)
    yield harness
    await harness.client.aclose()


def _body(**changes: Any) -> dict[str, Any]:
    return {"share_token": share_token(), "event_id": "evt-1", "customer": "c-1", **changes}


LONG_BODIES = {
    "event id": _body(event_id="e" * OVERSIZED),
    "vendor_data": _body(customer="c" * OVERSIZED),
    "token session_id": _body(share_token=share_token(session_id="s" * OVERSIZED)),
    "token from_application_id": _body(
        share_token=share_token(from_application_id="a" * OVERSIZED)
    ),
}


@pytest.mark.parametrize("where", sorted(LONG_BODIES))
async def test_a_value_too_long_to_keep_is_422_and_nothing_is_stored(
    harness: Harness, store: Store, where: str
) -> None:
    response = await harness.post("acme", LONG_BODIES[where])
    assert (response.status_code, error_code(response)) == (422, "value_too_long"), response.text
    assert await store.list_notifications() == []


async def test_values_at_their_limits_are_accepted(harness: Harness, store: Store) -> None:
    prefix = len("acme:")  # the test rule's vendor_data is {partner}:{payload.customer}
    body = _body(
        event_id="e" * MAX_ID_CHARS,
        customer="c" * (MAX_VENDOR_DATA_CHARS - prefix),
        share_token=share_token(
            session_id="s" * MAX_ID_CHARS, from_application_id="a" * MAX_ID_CHARS
        ),
    )
    response = await harness.post("acme", body)
    assert response.status_code == 202, response.text
    stored = await store.load_notification(response.json()["id"])
    assert stored is not None
    assert stored.route.vendor_data is not None
    assert len(stored.route.vendor_data) == MAX_VENDOR_DATA_CHARS
