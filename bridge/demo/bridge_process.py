"""``share-bridge serve`` as a child process of the demo, on 127.0.0.1, stopped with SIGTERM."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

STOP_TIMEOUT_S = 25.0


class BridgeStartError(RuntimeError):
    """``share-bridge serve`` exited or did not get ready; the message ends with its log."""


@dataclass(frozen=True, slots=True)
class BridgeProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def run_bridge(
    config_path: Path,
    port: int,
    *,
    environment: Mapping[str, str],
    log_path: Path,
    startup_timeout_s: float = 20.0,
) -> Iterator[BridgeProcess]:
    """Start ``share-bridge serve --config config_path``; yield once ``/readyz`` answers 200."""
    command = [sys.executable, "-m", "bridge", "serve", "--config", str(config_path)]
    with log_path.open("wb") as log:
        # Our own interpreter and module, with arguments we built: nothing untrusted runs.
        process = subprocess.Popen(  # noqa: S603
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **environment},
        )
    bridge = BridgeProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(bridge, time.monotonic() + startup_timeout_s)
        yield bridge
    finally:
        _stop(process)


def _wait_ready(bridge: BridgeProcess, deadline: float) -> None:
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline and bridge.alive():
            try:
                if client.get(f"{bridge.url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    state = "exited" if not bridge.alive() else "did not get ready"
    raise BridgeStartError(f"share-bridge serve {state}:\n{bridge.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
