"""Where log lines go: into a text stream, those of an event loop's thread together, once per
turn of the loop.

Under load a ``write`` system call per line was the dearest part of intake's canonical line
(``bench/bench_intake.py``): every system call releases the GIL, and each release lets the
store's writer thread take it, so the line cost the event loop far more than its bytes.
Lines logged in a thread that runs an event loop are gathered and written in one call when
the loop next turns (``call_soon``: after the callbacks already due, before the loop waits).
Lines from other threads, or with no loop running, are written at once, after the gathered
ones, so that lines keep their order. What a SIGKILL loses is one turn's lines at most;
``flush`` (also run at exit) writes what is gathered. A stream that cannot be written to
(closed, broken pipe) loses the lines, never the process.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import sys
import threading
from typing import TextIO

__all__ = ["LineWriter"]


class LineWriter:
    """A structlog logger writing rendered lines to ``stream`` (gathered when ``gather``)."""

    def __init__(self, stream: TextIO, *, gather: bool = True) -> None:
        self.stream = stream
        self._gather = gather
        # Re-entrant: a collection inside the lock may finalise a task that logs.
        self._lock = threading.RLock()
        self._gathered: list[str] = []
        self._flush_on: asyncio.AbstractEventLoop | None = None  # where a flush is due
        if gather:
            atexit.register(self.flush)

    def msg(self, message: str) -> None:
        """Write one line (``message`` without its newline)."""
        loop = _running_loop() if self._gather else None
        with self._lock:
            if loop is None:
                lines, self._gathered = self._gathered, []
                lines.append(message)
                self._write(lines)
                return
            self._gathered.append(message)
            # A flush due on a loop that has closed since never runs: schedule on this one.
            schedule = self._flush_on is not loop
            self._flush_on = loop
        if schedule:
            loop.call_soon(self.flush)

    # structlog calls the method named after the level.
    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg

    def flush(self) -> None:
        """Write the gathered lines now."""
        with self._lock:
            lines, self._gathered, self._flush_on = self._gathered, [], None
            if lines:
                self._write(lines)

    def _write(self, lines: list[str]) -> None:
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except (OSError, ValueError) as error:  # closed or broken: say so where we still can
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(f"bridge: {len(lines)} log line(s) lost: {type(error).__name__}\n")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
