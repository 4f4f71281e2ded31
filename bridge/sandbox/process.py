"""Start the sandbox as a real subprocess on 127.0.0.1 and wait until it answers."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO

import httpx

_LISTENING = re.compile(r"listening on (http://\S+)")


class SandboxStartError(RuntimeError):
    """The sandbox process exited or did not get ready in time; the message holds its output."""


class _OutputReader(threading.Thread):
    """Drains the child's output (so it never blocks on a full pipe) and spots its URL."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(name="sandbox-output", daemon=True)
        self._stream = stream
        self.lines: list[str] = []
        self.base_url: str | None = None
        self.found = threading.Event()

    def run(self) -> None:
        for raw in self._stream:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            match = _LISTENING.search(line)
            if match and self.base_url is None:
                self.base_url = match.group(1)
                self.found.set()
        self.found.set()  # the process ended


@contextmanager
def start_sandbox_process(
    port: int | None = None,
    *,
    seed: int = 0,
    host: str = "127.0.0.1",
    extra_args: Sequence[str] = (),
    startup_timeout_s: float = 20.0,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``python -m bridge.sandbox`` (what ``share-bridge sandbox`` runs) with the ready world of
    ``seed``; yield ``(base_url, process)`` once ``/_sandbox/health`` answers; stop it (SIGTERM,
    then SIGKILL) on exit. ``port=None`` takes a free port, chosen by the server itself."""
    command = [
        sys.executable,
        "-m",
        "bridge.sandbox",
        "--host",
        host,
        "--port",
        str(port or 0),
        "--seed",
        str(seed),
        *extra_args,
    ]
    # Our own interpreter and module, with arguments we built: nothing untrusted runs.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
    stdout = process.stdout
    if stdout is None:  # pragma: no cover - stdout=PIPE always gives a stream
        raise SandboxStartError("no output stream")
    reader = _OutputReader(stdout)
    reader.start()
    try:
        base_url = _wait_ready(process, reader, time.monotonic() + startup_timeout_s)
        yield base_url, process
    finally:
        _stop(process)
        reader.join(timeout=5)
        stdout.close()


def _wait_ready(process: subprocess.Popen[bytes], reader: _OutputReader, deadline: float) -> str:
    reader.found.wait(timeout=max(deadline - time.monotonic(), 0))
    base_url = reader.base_url
    if base_url is None:
        raise SandboxStartError(_failure("did not report its address", process, reader))
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.get(f"{base_url}/_sandbox/health").status_code == 200:
                    return base_url
            except httpx.TransportError:
                pass
            time.sleep(0.02)
    raise SandboxStartError(_failure("did not get ready", process, reader))


def _failure(what: str, process: subprocess.Popen[bytes], reader: _OutputReader) -> str:
    output = "\n".join(reader.lines[-30:])
    return f"the sandbox {what} (exit code {process.poll()}):\n{output}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
