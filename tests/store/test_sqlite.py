"""What only the SQLite backend promises: durability settings, migrations, group commit, crashes."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bridge.errors import StoreUnavailable
from bridge.store import JobKind, _sqlite_connection, open_store
from bridge.store._sqlite_connection import migrate
from bridge.store.ids import new_id
from bridge.store.queries import load_migrations, parse_query_file
from bridge.store.sqlite import SqliteStore
from tests.store.helpers import START, FakeClock, in_one_group, notification

pytestmark = pytest.mark.anyio


@pytest.fixture(name="db_path")
def _db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "bridge.db"


@pytest.fixture(name="sqlite_store")
async def _sqlite_store(db_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    store = SqliteStore.open(db_path, clock=clock)
    yield store
    await store.close()


class TestDurability:
    async def test_wal_and_synchronous_full(self, sqlite_store: SqliteStore, db_path: Path) -> None:
        """The writer runs WAL with synchronous=FULL (2) and foreign keys; WAL persists."""
        settings = await sqlite_store.durability()
        assert settings == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}
        with sqlite3.connect(db_path) as other:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    async def test_tables_are_strict(self, sqlite_store: SqliteStore, db_path: Path) -> None:
        """A value of the wrong type is refused by the schema itself."""
        with sqlite3.connect(db_path) as other, pytest.raises(sqlite3.IntegrityError):
            other.execute(
                "INSERT INTO jobs (kind, ref, status, run_after, created_at, updated_at)"
                " VALUES ('import', 'x', 'queued', 'soon', 0, 0)"
            )

    def test_unopenable_path_is_store_unavailable(self, tmp_path: Path) -> None:
        """A path under a regular file cannot be created: StoreUnavailable, not an OSError."""
        (tmp_path / "file").write_text("not a directory")
        with pytest.raises(StoreUnavailable):
            open_store(f"sqlite:///{tmp_path}/file/bridge.db", clock=FakeClock())

    def test_unknown_scheme_is_refused(self) -> None:
        """Only sqlite URLs are served by this build of the store."""
        with pytest.raises(ValueError, match="mysql"):
            open_store("mysql://db/bridge", clock=FakeClock())


class TestMigrations:
    async def test_applied_once_and_recorded(self, db_path: Path, clock: FakeClock) -> None:
        """Reopening applies nothing again; schema_version lists every migration once."""
        for _ in range(3):
            await SqliteStore.open(db_path, clock=clock).close()
        with sqlite3.connect(db_path) as connection:
            rows = connection.execute("SELECT version, name FROM schema_version").fetchall()
            assert rows == [(m.version, m.name) for m in load_migrations("sqlite")]
            assert migrate(connection, START) == rows[-1][0]
            assert connection.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(
                rows
            )

    async def test_imports_waiting_before_partner_lanes_get_their_partner(
        self, db_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Imports queued by a store without partner lanes (no lane) are given their
        notification's partner by the migration, applied though newer ones were already (as
        when lines of work merge), and are claimed in turns by partner."""
        before_lanes = tuple(m for m in load_migrations("sqlite") if m.name != "partner_lanes")
        assert len(before_lanes) == len(load_migrations("sqlite")) - 1
        monkeypatch.setattr(_sqlite_connection, "_MIGRATIONS", before_lanes)
        old = SqliteStore.open(db_path, clock=clock)
        for k in range(3):
            await old.accept(notification(f"a{k}", partner="acme", deadline=START + 10 + k))
        await old.accept(notification("h", partner="hooli", deadline=START + 900))
        await old.close()
        with sqlite3.connect(db_path) as connection:
            connection.execute("UPDATE jobs SET lane = NULL")  # as that version wrote them
        monkeypatch.undo()
        store = SqliteStore.open(db_path, clock=clock)
        try:
            jobs = await store.claim(JobKind.IMPORT, owner="w", lease_s=30, limit=2)
            assert sorted(job.lane or "" for job in jobs) == ["acme", "hooli"]
        finally:
            await store.close()

    def test_migrations_are_numbered_in_order(self) -> None:
        """Migration files are found and sorted by their four-digit version."""
        versions = [migration.version for migration in load_migrations("sqlite")]
        assert versions == sorted(versions)
        assert versions[0] == 1


class TestQueryFile:
    def test_named_blocks_without_descriptions(self) -> None:
        """Blocks are split by their headers; the description and preamble are dropped."""
        text = textwrap.dedent(
            """\
            -- a preamble comment
            -- first --
            -- Describes the first
            SELECT 1;

            -- second --
            -- Describes the second
            -- on two lines
            SELECT 2
              FROM t;
            """
        )
        assert parse_query_file(text) == {"first": "SELECT 1;", "second": "SELECT 2\n  FROM t;"}

    def test_an_empty_block_is_an_error(self) -> None:
        """A header with no SQL under it is a mistake in the file."""
        with pytest.raises(ValueError, match="empty"):
            parse_query_file("-- first --\n-- nothing here\n")

    def test_a_block_stands_in_another_by_its_name(self) -> None:
        """A column list several queries share is written once, as a block of its own."""
        text = "-- cols --\n-- shared\na, b\n-- q --\n-- uses it\nSELECT {cols} FROM t;\n"
        assert parse_query_file(text)["q"] == "SELECT a, b FROM t;"
        with pytest.raises(ValueError, match="missing"):
            parse_query_file("-- q --\nSELECT {missing} FROM t;\n")

    def test_a_name_used_twice_is_an_error(self) -> None:
        """A second block of the same name would replace the first one's SQL unseen."""
        with pytest.raises(ValueError, match="first"):
            parse_query_file("-- first --\nSELECT 1;\n-- first --\nSELECT 2;\n")


class TestGroupCommit:
    async def test_queued_accepts_share_one_commit_and_dedupe_inside_it(
        self, sqlite_store: SqliteStore
    ) -> None:
        """Accepts queued behind a commit go in one transaction; a repeat in it is a duplicate."""
        news = [notification(f"k{i}") for i in range(20)] + [notification("k3")]
        accepts = [sqlite_store.accept(new) for new in news]
        results = await in_one_group(sqlite_store._writer, accepts)  # asserts the one commit
        assert results[-1].duplicate
        assert results[-1].id == results[3].id
        assert sum(result.duplicate for result in results) == 1

    async def test_an_operation_that_raises_fails_alone(self, sqlite_store: SqliteStore) -> None:
        """A bug in one operation rolls back only its savepoint; its neighbours commit."""
        writer = sqlite_store._writer

        def broken(connection: sqlite3.Connection) -> None:
            connection.execute("DELETE FROM jobs")
            raise RuntimeError("bug")

        accepted, failed = await in_one_group(
            writer, [sqlite_store.accept(notification()), writer.run(broken)]
        )
        assert not accepted.duplicate
        assert isinstance(failed, RuntimeError)
        assert str(failed) == "bug"
        assert (await sqlite_store.stats()).jobs["import"]["queued"] == 1

    async def test_a_database_error_fails_the_group_and_the_writer_goes_on(
        self, sqlite_store: SqliteStore
    ) -> None:
        """An SQLite error aborts its whole group as StoreUnavailable; later writes work."""
        with pytest.raises(StoreUnavailable):
            await sqlite_store._writer.run(lambda c: c.execute("INSERT INTO nowhere VALUES (1)"))
        assert not (await sqlite_store.accept(notification())).duplicate


CRASHER = """
import asyncio, os, signal, sys, time
from bridge.store import open_store
from tests.store.helpers import notification

async def main() -> None:
    store = open_store(sys.argv[1], clock=time.time)
    tasks = [asyncio.ensure_future(store.accept(notification(f"k{i}"))) for i in range(300)]
    acknowledged = 0
    for next_done in asyncio.as_completed(tasks):
        accepted = await next_done
        print(accepted.id, flush=True)
        acknowledged += 1
        if acknowledged == 120:
            os.kill(os.getpid(), signal.SIGKILL)  # right after the "202", no close

asyncio.run(main())
"""


class TestCrash:
    async def test_every_acknowledged_accept_survives_sigkill(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        """A process killed right after acknowledging loses none of the acknowledged rows."""
        url = f"sqlite:///{tmp_path}/crash.db"
        root = Path(__file__).parents[2]
        process = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", CRASHER, url],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=60,
            check=False,
        )
        assert process.returncode == -9, process.stderr
        acknowledged = process.stdout.split()
        assert len(acknowledged) == 120
        store = open_store(url, clock=clock)
        try:
            for notification_id in acknowledged:
                stored = await store.load_notification(notification_id)
                assert stored is not None
                assert stored.token is not None
            jobs = await store.claim(JobKind.IMPORT, owner="after", lease_s=30, limit=1000)
            assert set(acknowledged) <= {job.ref for job in jobs}
        finally:
            await store.close()


class TestIds:
    def test_ids_sort_by_time_and_by_creation_within_a_millisecond(self) -> None:
        """Later ids sort after earlier ones, also when made in the same millisecond."""
        same_ms = [new_id("ntf", START) for _ in range(50)]
        assert same_ms == sorted(same_ms)
        assert len(set(same_ms)) == 50
        assert new_id("ntf", START + 0.002) > same_ms[-1]
        assert all(len(value) == 30 and value.startswith("ntf_") for value in same_ms)
