"""The history sweep ``serve`` runs: every notification past the retention, batch after batch,
counted in ``bridge_history_deletions_total``; sweeps a quarter of the retention apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.observability import Metrics
from bridge.pipeline.retention import DAY_S, delete_old_history, sweep_interval_s
from bridge.store import Store, open_store
from bridge.types import NotificationStatus
from tests.store.helpers import FakeClock
from tests.store.test_contract import finish

pytestmark = pytest.mark.anyio


@pytest.fixture(name="store")
async def _store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    store = open_store(f"sqlite:///{tmp_path}/bridge.db", clock=clock)
    yield store
    await store.close()


async def test_every_old_notification_goes_however_many_batches_it_takes(
    store: Store, clock: FakeClock
) -> None:
    for n in range(5):
        await finish(store, clock, NotificationStatus.REJECTED, key=f"k{n}")
    clock.advance(2 * DAY_S)
    recent = await finish(store, clock, NotificationStatus.REJECTED, key="recent")
    metrics = Metrics()
    assert await delete_old_history(store, retention_days=1, metrics=metrics, batch=2) == 5
    assert [n.id for n in await store.list_notifications()] == [recent]
    assert metrics.registry.get_sample_value("bridge_history_deletions_total") == 5


def test_sweeps_come_a_quarter_of_the_retention_apart_within_a_second_and_a_minute() -> None:
    assert sweep_interval_s(None) == 60.0
    assert sweep_interval_s(1.0) == 60.0
    assert sweep_interval_s(8 / DAY_S) == 2.0
    assert sweep_interval_s(0.00001) == 1.0
