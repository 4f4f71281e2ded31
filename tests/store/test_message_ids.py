"""A message id that was answered ``duplicate`` is remembered like one that was accepted."""

from __future__ import annotations

import pytest

from bridge.store import FinalOutcome, Store
from bridge.types import NotificationStatus
from tests.store.helpers import accepted_in_one_group, notification
from tests.store.test_contract import claim_one

pytestmark = pytest.mark.anyio


async def test_a_business_key_duplicate_records_its_message_id(store: Store) -> None:
    """W2 repeats W1's share: it answers W1's id, now and after W1 failed, for good."""
    first = await store.accept(notification("k", message_id="W1"))
    second = await store.accept(notification("k", message_id="W2"))
    assert second.duplicate
    assert second.id == first.id
    assert await store.find_message("acme", "W2") == first.id
    job = await claim_one(store)
    assert await store.record_outcome(job, FinalOutcome(status=NotificationStatus.FAILED), [])
    replay = await store.accept(notification("k", message_id="W2"))  # a fresh token would do
    assert replay.duplicate
    assert replay.id == first.id
    assert await store.find_message("acme", "W2") == first.id


async def test_a_repeat_within_one_run_records_its_message_id(store: Store) -> None:
    """Two messages for one share committed in one group: both message ids lead to it."""
    news = [notification("k", message_id="W1"), notification("k", message_id="W2")]
    news.append(notification("k", message_id="W2"))  # and the same message twice
    results = await accepted_in_one_group(store, news)
    assert [result.duplicate for result in results] == [False, True, True]
    assert len({result.id for result in results}) == 1
    assert await store.find_message("acme", "W1") == results[0].id
    assert await store.find_message("acme", "W2") == results[0].id
