"""A NUL character in partner text the store would keep: 422 ``nul_character`` on either store.

PostgreSQL cannot store a NUL in a text column (it answered 500 before the check); SQLite can,
and accepted it. Intake refuses it alike over both stores, which this module runs on (as the
store contract suite does), and stores nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from bridge.store import Store
from tests.intake.both_stores import _store, _target  # noqa: F401 - fixtures: store, target
from tests.intake.conftest import Harness, error_code, share_token

pytestmark = pytest.mark.anyio


def _body(**changes: Any) -> dict[str, Any]:
    return {"share_token": share_token(), "event_id": "evt-1", "customer": "c-1", **changes}


NUL_BODIES = {
    "event id": _body(event_id="evt\x00-1"),
    "vendor_data": _body(customer="c\x001"),
    "token session_id": _body(share_token=share_token(session_id="s\x00-1")),
    "token from_application_id": _body(share_token=share_token(from_application_id="app\x00")),
}


@pytest.mark.parametrize("where", sorted(NUL_BODIES))
async def test_a_nul_in_the_body_or_token_is_422_and_nothing_is_stored(
    harness: Harness, store: Store, where: str
) -> None:
    response = await harness.post("acme", NUL_BODIES[where])
    assert (response.status_code, error_code(response)) == (422, "nul_character"), response.text
    assert await store.list_notifications() == []
    assert (await harness.post("acme", _body())).status_code == 202  # the same without a NUL
