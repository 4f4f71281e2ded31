"""Which job owners are alive: a process holds a lock file for each owner it runs.

A worker registers its owner name before it claims anything: the store creates
``<directory>/<sha256(owner)>.lock`` and holds an exclusive ``flock`` on it until it closes. The
kernel drops the lock when the process dies, even by SIGKILL, so another process that can take
the lock knows the owner is gone and may requeue its jobs at once, instead of leaving them until
their leases lapse (a restarted ``bridge serve`` resumes its crashed predecessor's work at
once). An owner without a lock file (it never registered, or lives on another host) is never
judged gone: its leases lapse as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


def owners_directory(database: Path) -> Path:
    """Where the lock files of the owners working on the SQLite file ``database`` live."""
    return database.with_name(f"{database.name}.owners")


class OwnerLocks:
    """The lock files of one store; not thread-safe (the store calls it from one place)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._held: dict[str, int] = {}  # owner -> open file descriptor holding its lock

    def register(self, owner: str) -> bool:
        """Hold ``owner``'s lock while this object lives; False if liveness cannot be shown
        (no lock file could be made), in which case only lease expiry frees its jobs."""
        if owner in self._held:
            return True
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(self._path(owner), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            return False
        self._held[owner] = descriptor
        return True

    def gone(self, owners: Iterable[str]) -> list[str]:
        """Those of ``owners`` whose process has ended: their lock file exists and is free.
        Their files are removed (each owner name is used by one process only)."""
        found: list[str] = []
        for owner in owners:
            if owner in self._held:
                continue
            path = self._path(owner)
            try:
                descriptor = os.open(path, os.O_RDWR)
            except OSError:
                continue  # never registered here: unknown, not gone
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # held: the owner is alive
            else:
                found.append(owner)
                with contextlib.suppress(OSError):
                    path.unlink()
            finally:
                os.close(descriptor)
        return found

    def close(self) -> None:
        """Release every held lock and remove its file."""
        for owner, descriptor in self._held.items():
            with contextlib.suppress(OSError):
                self._path(owner).unlink()
            os.close(descriptor)
        self._held.clear()

    def _path(self, owner: str) -> Path:
        return self._directory / f"{hashlib.sha256(owner.encode()).hexdigest()[:32]}.lock"


def live_lock_files(directory: Path) -> int:
    """How many lock files in ``directory`` a living process holds: the owners at work on the
    store now (a tool that needs the store at rest, like ``store copy``, refuses while any is)."""
    held = 0
    for path in directory.glob("*.lock") if directory.is_dir() else ():
        try:
            descriptor = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            held += 1
        finally:
            os.close(descriptor)
    return held
