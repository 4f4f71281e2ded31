"""``bridge serve``: the receiver and the workers in one process."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn

from bridge import config
from bridge.cli._common import add_config_argument, env_default
from bridge.cli.service import Service
from bridge.errors import ConfigError, StoreUnavailable
from bridge.observability import Redactor, configure_logging
from bridge.tracing import start_tracing

DRAIN_GRACE_S = 0.5  # after SIGTERM, keep answering 503 this long before closing the socket


class _Server(uvicorn.Server):
    """uvicorn, except that SIGTERM ends in exit 0 once shutdown is done (not a re-raised signal),
    intake answers 503 from the moment the signal arrives (for ``drain_grace_s``, while a load
    balancer notices, before the listening socket closes), and SIGHUP reloads the config."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        on_signal: Callable[[], None],
        on_reload: Callable[[], None] = lambda: None,
        drain_grace_s: float = DRAIN_GRACE_S,
    ) -> None:
        super().__init__(config)
        self._on_signal = on_signal
        self._on_reload = on_reload
        self._drain_grace_s = drain_grace_s
        self._exit_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._on_signal()
        if self._exit_at is None and not self.should_exit:
            self._exit_at = time.monotonic() + self._drain_grace_s
        elif sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C stops waiting
        else:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            self.should_exit = True
        return await super().on_tick(counter)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            with super().capture_signals():
                yield
            return
        previous = signal.signal(signal.SIGHUP, self._hangup)
        try:
            with super().capture_signals():
                yield
        finally:
            signal.signal(signal.SIGHUP, previous)

    def _hangup(self, sig: int, frame: FrameType | None) -> None:
        self._on_reload()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the partner receiver and the import and delivery workers"
    )
    add_config_argument(parser)
    parser.add_argument("--host", default=env_default("BRIDGE_HOST"), help="$BRIDGE_HOST")
    parser.add_argument("--port", type=int, default=env_default("BRIDGE_PORT"), help="$BRIDGE_PORT")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = config.load(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"bridge serve: invalid configuration:\n{exc}\n")
        return 1
    try:
        tracing = start_tracing(settings.telemetry, os.environ)
    except RuntimeError as exc:  # configured, but the otel extra is not installed
        sys.stderr.write(f"bridge serve: {exc}\n")
        return 1
    redactor = Redactor()
    configure_logging(
        level=settings.logging.level,
        fmt=settings.logging.format,
        production=True,
        redactor=redactor,
        processors=() if tracing is None else (tracing.log_processor(),),
    )
    try:
        service = Service(settings, redactor=redactor, config_path=args.config, tracing=tracing)
    except StoreUnavailable as exc:
        sys.stderr.write(f"bridge serve: {exc.message}\n")
        return 1
    server = _Server(
        uvicorn.Config(
            service.app,
            host=args.host or settings.server.host,
            port=int(args.port) if args.port is not None else settings.server.port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=30,
        ),
        on_signal=service.begin_draining,
        on_reload=service.request_reload,
    )
    settle_heap()
    server.run()
    return 0


def settle_heap() -> None:
    """Move what start-up built (modules, config, the app) out of the cyclic collector's reach.

    Full collections otherwise walk all of it again and again under load: pauses of up to
    50 ms, which every request in flight waits out (``bench/RESULTS.md``, intake). Objects
    made later are collected as usual.
    """
    gc.collect()
    gc.freeze()
