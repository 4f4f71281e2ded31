"""Which job owners are alive, told by PostgreSQL: each holds a session advisory lock.

A worker registers its owner name before it claims anything: the store takes a session advisory
lock for it on a connection of its own, held while the store is open, and records the owner in
``worker_owners``. The database drops the lock when that session ends, however the process died
(SIGKILL, a lost host), so another process, on any host, that can take the lock knows the owner
is gone and may requeue its jobs at once instead of waiting for their leases to lapse. An owner
that never registered is never judged gone: its leases lapse as before.

A free lock is not enough: a live process whose session was cut (a server restart, a network
blip, an operator ending it) loses its lock until it registers again at its next heartbeat, and
its imports are still in flight meanwhile. So each registration is also a check-in, timed by the
database, and only an owner that has stopped checking in for longer than two of its heartbeat
intervals and a grace is a candidate; its free lock then says it is gone.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import Any

import psycopg

#: Beyond two heartbeats, how long an owner may be late to check in and still be alive: a
#: heartbeat's own calls wait for a connection of a struggling store (its pool's timeout) and
#: for a new session after a cut one.
CHECK_IN_GRACE_S = 5.0


def lock_key(schema: str, owner: str) -> int:
    """The advisory lock (a signed 64-bit key) that says ``owner`` of ``schema`` is alive."""
    digest = hashlib.sha256(f"share-bridge owner {schema} {owner}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class OwnerLocks:
    """The advisory locks of one store's owners, on one dedicated autocommit connection."""

    def __init__(self, conninfo: str, options: Mapping[str, Any], schema: str) -> None:
        self._conninfo = conninfo
        self._options: dict[str, Any] = dict(options)
        self._schema = schema
        self._connection: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._held: dict[str, int] = {}  # owner -> lock key
        # A process's workers register at the same moment: without this, each would open a
        # session of its own, and the lock taken on the one dropped would end with it.
        self._busy = asyncio.Lock()

    @property
    def held(self) -> list[str]:
        return sorted(self._held)

    async def register(
        self, owner: str, queries: Mapping[str, str], now: float, heartbeat_s: float
    ) -> bool:
        """Hold ``owner``'s lock while this object lives (again, if the session was lost), and
        check in: ``owner`` calls again within ``heartbeat_s`` while it lives."""
        async with self._busy:
            try:
                return await self._register(owner, queries, now, heartbeat_s)
            except psycopg.OperationalError:
                if not self._session_lost():
                    raise
                return await self._register(owner, queries, now, heartbeat_s)  # a new session

    async def _register(
        self, owner: str, queries: Mapping[str, str], now: float, heartbeat_s: float
    ) -> bool:
        connection = await self._session()
        key = lock_key(self._schema, owner)
        if owner not in self._held:
            cursor = await connection.execute(queries["try_lock"], {"lock_key": key})
            row = await cursor.fetchone()
            if row is None or not row[0]:
                return False  # another live process uses this owner name
            self._held[owner] = key
        await connection.execute(
            queries["register_owner"],
            {"owner": owner, "lock_key": key, "now": now, "heartbeat_s": float(heartbeat_s)},
        )
        return True

    async def gone(self, key: int, queries: Mapping[str, str]) -> bool:
        """Whether the (silent) owner holding ``key`` has ended: its lock is free (taken and
        given back)."""
        async with self._busy:
            try:
                return await self._gone(key, queries)
            except psycopg.OperationalError:
                if not self._session_lost():
                    raise
                return await self._gone(key, queries)  # on a new session

    async def _gone(self, key: int, queries: Mapping[str, str]) -> bool:
        connection = await self._session()
        cursor = await connection.execute(queries["try_lock"], {"lock_key": key})
        row = await cursor.fetchone()
        if row is None or not row[0]:
            return False
        await connection.execute(queries["unlock"], {"lock_key": key})
        return True

    async def close(self, queries: Mapping[str, str]) -> None:
        """Forget every held owner and end the session, which releases the locks."""
        async with self._busy:
            await self._close(queries)

    async def _close(self, queries: Mapping[str, str]) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if not connection.closed:
                for owner in self._held:
                    await connection.execute(queries["forget_owner"], {"owner": owner})
        except psycopg.Error:
            pass  # the rows stay; a later process finds their locks free and clears them
        finally:
            self._held.clear()
            await connection.close()

    def _session_lost(self) -> bool:
        """Whether the session ended under us (the server was restarted, or ended it): it is
        found out only by using it, and a new one is then worth one more try."""
        connection = self._connection
        return connection is not None and connection.broken

    async def _session(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        connection = self._connection
        if connection is not None and not connection.closed and not connection.broken:
            return connection
        if connection is not None:
            await connection.close()
        self._held.clear()  # a new session holds nothing yet
        self._connection = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, **self._options
        )
        return self._connection
