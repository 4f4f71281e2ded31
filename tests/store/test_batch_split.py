"""A run of batched writes with one bad item: only that item fails, the others commit."""

from __future__ import annotations

import sqlite3

import pytest

from bridge.store.sqlite import SqliteStore
from tests.store.helpers import in_one_group, notification

pytestmark = pytest.mark.anyio


async def test_one_unencodable_accept_fails_alone(sqlite_store: SqliteStore) -> None:
    """30 good accepts and one SQLite cannot encode (a lone surrogate): 30 answers, 1 error."""
    news = [notification(f"k{i}", message_id=f"m{i}") for i in range(30)]
    news.insert(15, notification("\ud800", message_id="bad"))
    results = await in_one_group(sqlite_store._writer, [sqlite_store.accept(new) for new in news])
    assert isinstance(results.pop(15), UnicodeEncodeError)
    assert not any(isinstance(result, BaseException) for result in results)
    assert not any(result.duplicate for result in results)
    assert len({result.id for result in results}) == 30
    stats = await sqlite_store.stats()
    assert stats.notifications["pending"] == 30
    assert stats.jobs["import"]["queued"] == 30
    assert await sqlite_store.find_message("acme", "m29") == results[-1].id
    assert await sqlite_store.find_message("acme", "bad") is None


async def test_split_runs_still_dedupe_in_order(sqlite_store: SqliteStore) -> None:
    """Gone one by one, a repeat of an earlier item of the run is still its duplicate."""
    news = [notification(f"k{i}") for i in range(5)]
    news += [notification("\ud800"), notification("k2", message_id="again")]
    results = await in_one_group(sqlite_store._writer, [sqlite_store.accept(new) for new in news])
    assert isinstance(results[5], UnicodeEncodeError)
    assert results[6].duplicate
    assert results[6].id == results[2].id
    assert await sqlite_store.find_message("acme", "again") == results[2].id
    assert (await sqlite_store.stats()).notifications["pending"] == 5


async def test_a_batch_function_failing_on_one_item(sqlite_store: SqliteStore) -> None:
    """Any batch function: the bad item's error reaches its caller, the rest is committed."""
    writer = sqlite_store._writer
    await writer.run(lambda c: c.execute("CREATE TABLE scratch (n INTEGER NOT NULL)"))

    def insert_all(connection: sqlite3.Connection, items: list[int]) -> list[int]:
        for item in items:
            connection.execute("INSERT INTO scratch (n) VALUES (?)", (item,))
            if item == 13:
                raise ValueError("thirteen")
        return [item * 2 for item in items]

    results = await in_one_group(writer, [writer.run_batched(insert_all, n) for n in range(31)])
    assert isinstance(results[13], ValueError)
    assert results[:13] + results[14:] == [n * 2 for n in range(31) if n != 13]
    stored = await writer.run(lambda c: [n for (n,) in c.execute("SELECT n FROM scratch")])
    assert sorted(stored) == [n for n in range(31) if n != 13]
