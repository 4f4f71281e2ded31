"""Group commit on one SQLite write connection, owned by one thread.

Every write is an *operation*: a function of the connection, run by the writer thread. The
thread takes every operation queued while the previous commit ran, runs each inside its own
SAVEPOINT (so one failing operation rolls back only itself), commits them all in one
transaction (one fsync), and only then resolves each caller's future. There is no wait window
to gather batches: under load, batches form by themselves while a commit is in flight.

The thread runs at a lower CPU priority than the event loop (Linux: the nice value is per
thread). On a busy core the scheduler then lets the event loop finish the requests it has
before the writer takes what they queued, instead of waking the writer for every single
request: on one core that made groups of 2-3 into groups of ~30 and intake 1.3x faster
(``bench/bench_intake.py``). When the loop is idle, or on another core, the writer runs at
once, so no latency is added.

Erasing a token sets it to NULL, but its bytes stay in the WAL (and, without ``secure_delete``,
in the pages' free space) until a checkpoint copies the new pages over the old and the WAL is
truncated. An operation that erased something calls ``scrub_soon``: about ``SCRUB_DELAY_S``
later (one checkpoint for every erasure of that second, not one per request), between two
groups, the writer runs ``wal_checkpoint(TRUNCATE)``. A reader holding an older snapshot makes
it fail fast (it waits ``SCRUB_BUSY_MS`` at most, so intake never stalls behind a slow reader):
it is tried again after a growing pause, until it succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import structlog

from bridge.errors import StoreUnavailable

T = TypeVar("T")
Item = TypeVar("Item")
Operation = Callable[[sqlite3.Connection], T]
BatchOperation = Callable[[sqlite3.Connection, list[Item]], list[T]]

log = structlog.get_logger()

_MAX_BATCH = 1024  # bounds a batch's latency when the queue never empties
WRITER_NICE = 10  # added to the writer thread's nice value (lower priority than the loop)
SCRUB_DELAY_S = 1.0  # from an erasure to the truncating checkpoint that removes its bytes
SCRUB_RETRY_MAX_S = 8.0  # the longest pause between tries while readers keep it busy
SCRUB_BUSY_MS = 100  # how long one try waits for readers of an older snapshot


class Rollback(Exception):
    """Raised by an operation to undo its own writes and still answer ``value``."""

    def __init__(self, value: object) -> None:
        super().__init__()
        self.value = value


def translate(exc: sqlite3.Error) -> StoreUnavailable:
    """sqlite3's errors at the boundary: whatever stopped a read or write means unavailable."""
    return StoreUnavailable(f"the SQLite store failed: {type(exc).__name__}: {exc}")


class _Pending:
    __slots__ = ("batch", "future", "item", "loop", "op", "outcome")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        op: Operation[Any] | None = None,
        batch: BatchOperation[Any, Any] | None = None,
        item: object = None,
    ) -> None:
        self.op = op
        self.batch = batch
        self.item = item
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.outcome: tuple[bool, Any] = (False, None)


class GroupCommitWriter:
    """Runs write operations on ``connection`` in a dedicated thread, committing in groups."""

    def __init__(self, connection: sqlite3.Connection, *, name: str = "bridge-store-writer"):
        self._connection = connection
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()  # None: stop
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        self.commits = 0  # committed groups; operations / commits is the mean group size
        self.operations = 0
        self.scrubs = 0  # truncating checkpoints that succeeded
        self._scrub_at: float | None = None  # monotonic time of the next scrub; None: none due
        self._scrub_tries = 0
        self._thread.start()

    async def run(self, op: Operation[T]) -> T:
        """Run ``op`` in the next group; return its result once that group is committed."""
        result: T = await self._submit(_Pending(asyncio.get_running_loop(), op=op))
        return result

    async def run_batched(self, batch: BatchOperation[Item, T], item: Item) -> T:
        """Run ``item`` together with the other items for ``batch`` queued next to it.

        ``batch(connection, items)`` gets every item of one run of consecutive requests for
        the same ``batch`` function, in one savepoint, and returns one result per item. This
        turns N similar writes (e.g. accepts) into a few set-based statements. When ``batch``
        raises for a reason other than the database failing, the run goes again one item at a
        time (``batch(connection, [item])``, each in its own savepoint): only the item at fault
        fails, its neighbours are committed and answered as usual.
        """
        result: T = await self._submit(_Pending(asyncio.get_running_loop(), batch=batch, item=item))
        return result

    async def _submit(self, pending: _Pending) -> Any:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        self._queue.put(pending)
        return await pending.future

    def scrub_soon(self) -> None:
        """Called by an operation (on the writer thread) that erased data: a truncating
        checkpoint follows its commit within about ``SCRUB_DELAY_S``."""
        if self._scrub_at is None:
            self._scrub_at = time.monotonic() + SCRUB_DELAY_S

    @property
    def alive(self) -> bool:
        """Whether the thread still takes operations."""
        return self._thread.is_alive() and not self._closed

    def close(self) -> None:
        """Finish what is queued, stop the thread and close the connection (blocking)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        _lower_priority(WRITER_NICE)
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=self._until_scrub())
            except queue.Empty:
                self._scrub()
                continue
            batch: list[_Pending] = []
            while item is not None:
                batch.append(item)
                if len(batch) >= _MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stopping = item is None
            if batch:
                self._commit(batch)
            if self._scrub_at is not None and (stopping or time.monotonic() >= self._scrub_at):
                self._scrub()
        self._connection.close()
        self._fail_leftovers()

    def _until_scrub(self) -> float | None:
        return None if self._scrub_at is None else max(0.0, self._scrub_at - time.monotonic())

    def _scrub(self) -> None:
        """One try at ``wal_checkpoint(TRUNCATE)``; scheduled again, later, if it did not finish."""
        connection, error = self._connection, None
        try:
            waited = connection.execute("PRAGMA busy_timeout").fetchone()[0]
            connection.execute(f"PRAGMA busy_timeout = {SCRUB_BUSY_MS}")
            try:
                busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            finally:
                connection.execute(f"PRAGMA busy_timeout = {int(waited)}")
        except sqlite3.Error as exc:
            busy, error = 1, f"{type(exc).__name__}: {exc}"
        if not busy:
            self.scrubs += 1
            self._scrub_at, self._scrub_tries = None, 0
            return
        self._scrub_tries += 1
        pause = min(SCRUB_RETRY_MAX_S, SCRUB_DELAY_S * 2 ** min(self._scrub_tries, 4))
        self._scrub_at = time.monotonic() + pause
        log.info("store_scrub_deferred", tries=self._scrub_tries, retry_in_s=pause, error=error)

    def _fail_leftovers(self) -> None:
        """Answer operations queued after the stop (a race with ``close``): unavailable."""
        leftovers: list[_Pending] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item.outcome = (False, StoreUnavailable("the store is closed"))
                leftovers.append(item)
        self._resolve(leftovers)

    def _commit(self, batch: list[_Pending]) -> None:
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
            for run in _runs(batch):
                self._apply_run(connection, run)
            connection.execute("COMMIT")
            self.commits += 1
            self.operations += len(batch)
        except sqlite3.Error as exc:
            if connection.in_transaction:
                try:
                    connection.execute("ROLLBACK")
                except sqlite3.Error:
                    log.warning("store_rollback_failed")
            log.error("store_commit_failed", error=f"{type(exc).__name__}: {exc}", ops=len(batch))
            failure = translate(exc)
            for pending in batch:
                pending.outcome = (False, failure)
        self._resolve(batch)

    def _apply_run(self, connection: sqlite3.Connection, run: list[_Pending]) -> None:
        first, batch = run[0], run[0].batch
        if batch is None:
            first.outcome = self._apply(connection, cast(Operation[Any], first.op))
            return
        items = [pending.item for pending in run]
        ok, value = self._apply(connection, lambda c: batch(c, items))
        if not ok and len(run) > 1:
            # Not the database failing (that aborts the group in _apply): one item's mistake,
            # such as text SQLite cannot encode. Its savepoint is rolled back; each item goes
            # again alone, in its own savepoint, so only the bad one fails.
            log.warning("store_batch_split", error=type(value).__name__, ops=len(run))
            self._apply_one_by_one(connection, batch, run)
            return
        if ok and len(value) != len(run):
            ok, value = False, RuntimeError("a batch operation lost results")
        for index, pending in enumerate(run):
            pending.outcome = (True, value[index]) if ok else (False, value)

    def _apply_one_by_one(
        self, connection: sqlite3.Connection, batch: BatchOperation[Any, Any], run: list[_Pending]
    ) -> None:
        for pending in run:
            ok, value = self._apply(connection, functools.partial(_alone, batch, pending.item))
            if ok and len(value) != 1:
                ok, value = False, RuntimeError("a batch operation lost results")
            pending.outcome = (True, value[0]) if ok else (False, value)

    @staticmethod
    def _apply(connection: sqlite3.Connection, op: Operation[Any]) -> tuple[bool, Any]:
        """Run one operation in a savepoint. A sqlite3 error from the database aborts the group."""
        connection.execute("SAVEPOINT op")
        try:
            value = op(connection)
        except Rollback as rollback:
            connection.execute("ROLLBACK TO op")
            connection.execute("RELEASE op")
            return True, rollback.value
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError) as exc:
            connection.execute("ROLLBACK TO op")  # one operation's mistake, not the database's
            connection.execute("RELEASE op")
            return False, exc
        except sqlite3.Error:
            raise  # the database failed: the whole group is rolled back and unavailable
        except Exception as exc:  # noqa: BLE001 - the caller gets it; the group goes on
            connection.execute("ROLLBACK TO op")
            connection.execute("RELEASE op")
            return False, exc
        connection.execute("RELEASE op")
        return True, value

    @staticmethod
    def _resolve(batch: list[_Pending]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
        for pending in batch:
            by_loop.setdefault(pending.loop, []).append(pending)
        for loop, group in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
                loop.call_soon_threadsafe(_settle, group)


def _alone(batch: BatchOperation[Any, Any], item: object, connection: sqlite3.Connection) -> Any:
    """``batch`` over one item: how a run that failed goes again, item by item."""
    return batch(connection, [item])


def _lower_priority(increment: int) -> None:
    """Lower this thread's CPU priority, where the platform can (Linux); else nothing."""
    setpriority, getpriority = getattr(os, "setpriority", None), getattr(os, "getpriority", None)
    if setpriority is None or getpriority is None:  # pragma: no cover - not on Linux
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        setpriority(
            os.PRIO_PROCESS, thread, min(getpriority(os.PRIO_PROCESS, thread) + increment, 19)
        )


def _runs(batch: list[_Pending]) -> list[list[_Pending]]:
    """Split a group into runs: each single operation alone, consecutive batch items together."""
    runs: list[list[_Pending]] = []
    for pending in batch:
        previous = runs[-1][0] if runs else None
        if (
            pending.batch is not None
            and previous is not None
            and previous.batch is not None
            and previous.batch == pending.batch
        ):
            runs[-1].append(pending)
        else:
            runs.append([pending])
    return runs


def _settle(group: list[_Pending]) -> None:
    for pending in group:
        if pending.future.done():  # the caller was cancelled; the write stands
            continue
        ok, value = pending.outcome
        if ok:
            pending.future.set_result(value)
        else:
            pending.future.set_exception(value)
