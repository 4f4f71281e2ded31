"""Erased means gone from the files: after a token is erased, none of its bytes remain in any
file of an SQLite store within seconds, and every file the store makes is its owner's only."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bridge.store import FinalOutcome, JobKind, NewNotification
from bridge.store._sqlite_connection import connect, create_owner_only
from bridge.store.sqlite import SqliteStore
from bridge.types import DiditSession, NotificationStatus, Reason
from tests.store.helpers import FakeClock, notification
from tests.support.waiting import wait_until_async

pytestmark = pytest.mark.anyio

WITHIN_S = 4.0  # "within a few seconds" of the erasure


def token_of(n: int) -> str:
    """A distinctive token as long as a real share token; each segment can be searched for."""
    header = f"eyJhbGciOiJSUzI1NiJ9{n:04d}"
    claims = "".join(f"Q2xhaW1z{n:04d}{part:03d}" for part in range(40))  # ~600 characters
    signature = "".join(f"U2lnbmF0dXJl{n:04d}{part:02d}" for part in range(5))
    return f"{header}.{claims}.{signature}"


def pieces(token: str) -> list[str]:
    """The token, its segments, and every 24-character slice of it: a fragment left in a page's
    free space is a leak too."""
    return [token, *token.split("."), *(token[i : i + 24] for i in range(0, len(token) - 23, 24))]


def leftovers(directory: Path, tokens: list[str]) -> list[tuple[str, str]]:
    """(file, piece) for every piece of a token found in the raw bytes of a file under
    ``directory``."""
    found = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        found += [
            (path.name, piece) for t in tokens for piece in pieces(t) if piece.encode() in data
        ]
    return found


async def gone_within(directory: Path, tokens: list[str], timeout_s: float) -> None:
    await wait_until_async(
        lambda: leftovers(directory, tokens),
        "no token left in any file",
        holds=lambda found: not found,
        timeout_s=timeout_s,
        poll_s=0.1,
    )


def with_token(key: str, token: str) -> NewNotification:
    new = notification(key, token=token)
    return dataclasses.replace(new, token_sha256=hashlib.sha256(token.encode()).hexdigest())


async def accept_all(store: SqliteStore, tokens: list[str]) -> None:
    for n, token in enumerate(tokens):
        await store.accept(with_token(f"k{n}", token))


async def finish_all(store: SqliteStore, status: NotificationStatus) -> None:
    for job in await store.claim(JobKind.IMPORT, owner="w", lease_s=30, limit=100):
        session = DiditSession(session_id=f"s-{job.ref}") if status.value == "imported" else None
        reason = None if session else Reason(code="some_reason", message="why")
        outcome = FinalOutcome(status=status, session=session, reason=reason)
        assert await store.record_outcome(job, outcome, [])


@pytest.fixture(name="umask_022")
def _umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


class TestTokenBytes:
    async def test_a_final_notifications_token_leaves_every_file(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        """Before: the tokens are in the files (so the search can find them), the database
        file included. After the outcomes: none of their segments in the database, its WAL or
        anything else (the pages' free space included)."""
        store = SqliteStore.open(tmp_path / "bridge.db", clock=clock)
        tokens = [token_of(n) for n in range(20)]
        try:
            await accept_all(store, tokens)
            assert {piece for _, piece in leftovers(tmp_path, tokens)} >= set(tokens)
            with contextlib.closing(sqlite3.connect(tmp_path / "bridge.db")) as other:
                other.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # as SQLite's autocheckpoint
            assert {file for file, _ in leftovers(tmp_path, tokens)} == {"bridge.db"}
            await finish_all(store, NotificationStatus.IMPORTED)
            await gone_within(tmp_path, tokens, timeout_s=WITHIN_S)
        finally:
            await store.close()

    async def test_a_stale_failed_token_leaves_every_file_once_erased(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        """A failed notification keeps its token for an operator's retry until its deadline;
        erase_stale_tokens then removes its bytes too."""
        store = SqliteStore.open(tmp_path / "bridge.db", clock=clock)
        tokens = [token_of(n) for n in range(5)]
        imported = token_of(5)  # erased: its scrub is the one the failed tokens must survive
        try:
            await accept_all(store, tokens)
            await finish_all(store, NotificationStatus.FAILED)
            await store.accept(with_token("imported", imported))
            await finish_all(store, NotificationStatus.IMPORTED)
            await gone_within(tmp_path, [imported], timeout_s=WITHIN_S)
            kept = {piece for _, piece in leftovers(tmp_path, tokens)}
            assert kept >= set(tokens)  # a retry may still use them
            clock.advance(3_600)
            assert await store.erase_stale_tokens() == len(tokens)
            await gone_within(tmp_path, tokens, timeout_s=WITHIN_S)
        finally:
            await store.close()

    async def test_a_reader_holding_a_snapshot_delays_the_scrub_without_stalling_writes(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        """Another process's open read transaction keeps the WAL; writes go on meanwhile, and
        the bytes go once it ends."""
        path = tmp_path / "bridge.db"
        store = SqliteStore.open(path, clock=clock)
        tokens = [token_of(n) for n in range(10)]
        reader = sqlite3.connect(path, isolation_level=None)
        try:
            await accept_all(store, tokens)
            await finish_all(store, NotificationStatus.IMPORTED)
            with capture_logs() as logs:
                reader.execute("BEGIN")
                reader.execute("SELECT count(*) FROM notifications").fetchone()  # a snapshot
                await wait_until_async(
                    lambda: [e for e in logs if e["event"] == "store_scrub_deferred"],
                    "a scrub tried and deferred",
                )
            assert leftovers(tmp_path, tokens)  # the WAL could not be truncated
            started = time.monotonic()
            await store.accept(with_token("later", "a.b.c"))
            assert time.monotonic() - started < 1.0
            reader.execute("COMMIT")
            await gone_within(tmp_path, tokens, timeout_s=20)
        finally:
            reader.close()
            await store.close()


def shrink_rows(connection: sqlite3.Connection, tokens: list[str]) -> None:
    """Rows whose token an UPDATE sets to NULL, on pages that keep the other rows."""
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, token TEXT, other TEXT)")
    for token in tokens:
        connection.execute("INSERT INTO t (token, other) VALUES (?, 'x')", (token,))
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.execute("UPDATE t SET token = NULL")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_a_store_connection_leaves_no_overwritten_bytes_in_free_space(tmp_path: Path) -> None:
    """The freed space of a shrunk row is zeroed, whatever SQLite's build defaults to (some
    builds zero it by default, others do not: shown here with it off)."""
    tokens = [token_of(n) for n in range(40)]
    control, ours = tmp_path / "control", tmp_path / "store"
    for directory in (control, ours):
        directory.mkdir()
    with contextlib.closing(sqlite3.connect(control / "plain.db", isolation_level=None)) as plain:
        plain.execute("PRAGMA journal_mode = WAL")
        plain.execute("PRAGMA secure_delete = OFF")
        shrink_rows(plain, tokens)
    assert leftovers(control, tokens)  # the scenario does leave bytes behind
    create_owner_only(ours / "bridge.db")
    with contextlib.closing(connect(ours / "bridge.db")) as connection:
        shrink_rows(connection, tokens)
    assert leftovers(ours, tokens) == []


class TestPermissions:
    async def test_every_file_and_created_directory_is_owner_only_under_umask_022(
        self, tmp_path: Path, clock: FakeClock, umask_022: None
    ) -> None:
        directory = tmp_path / "made" / "by" / "us"
        store = SqliteStore.open(directory / "bridge.db", clock=clock)
        try:
            await store.recover_orphans("worker-1", heartbeat_s=1)  # the owner lock files
            await accept_all(store, [token_of(1)])
            made = [directory, directory.parent, directory.parent.parent]
            made += [path for path in directory.rglob("*")]
            names = {path.name for path in made}
            assert {"bridge.db", "bridge.db-wal", "bridge.db-shm", "bridge.db.owners"} <= names
            assert any(name.endswith(".lock") for name in names)
            for path in made:
                assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
        finally:
            await store.close()

    async def test_an_existing_readable_store_is_tightened(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        path = tmp_path / "bridge.db"
        await SqliteStore.open(path, clock=clock).close()
        path.chmod(0o644)
        store = SqliteStore.open(path, clock=clock)
        try:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        finally:
            await store.close()
