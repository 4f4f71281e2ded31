"""``share-bridge serve``: the receiver and the workers in one process."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

import structlog
import uvicorn

from bridge.app.edge import EdgeLimits, edge_protocol
from bridge.cli._common import add_config_argument, env_default, load_with_warnings
from bridge.cli.service import Service
from bridge.errors import StoreUnavailable
from bridge.observability import Redactor, configure_logging
from bridge.tracing import start_tracing

log = structlog.get_logger()

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
        ops: uvicorn.Config | None = None,
    ) -> None:
        super().__init__(config)
        self._ops = ops
        self._on_signal = on_signal
        self._on_reload = on_reload
        self._drain_grace_s = drain_grace_s
        self._exit_at: float | None = None

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve; with an ops listener, on two sockets: one server, one app, which tells the
        listeners apart by the local port of each request."""
        if self._ops is not None and sockets is None:
            sockets = [self.config.bind_socket(), self._ops.bind_socket()]
        super().run(sockets=sockets)

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
    loaded = load_with_warnings(args.config, prog="share-bridge serve")
    if loaded is None:
        return 1
    settings = loaded.settings
    try:
        tracing = start_tracing(settings.telemetry, os.environ)
    except RuntimeError as exc:  # configured, but the otel extra is not installed
        sys.stderr.write(f"share-bridge serve: {exc}\n")
        return 1
    redactor = Redactor()
    configure_logging(
        level=settings.logging.level,
        fmt=settings.logging.format,
        production=True,
        redactor=redactor,
        processors=() if tracing is None else (tracing.log_processor(),),
    )
    for warning in loaded.warnings:
        log.warning("config_warning", path=warning.path, issue=str(warning))
    try:
        service = Service(settings, redactor=redactor, config_path=args.config, tracing=tracing)
    except StoreUnavailable as exc:
        sys.stderr.write(f"share-bridge serve: {exc.message}\n")
        return 1
    server_settings = settings.server
    port = int(args.port) if args.port is not None else server_settings.port
    if port == server_settings.ops_port:
        sys.stderr.write(f"share-bridge serve: port {port} is also server.ops_port\n")
        return 1
    limits = EdgeLimits(
        max_header_bytes=server_settings.max_header_bytes,
        header_timeout_s=server_settings.header_timeout_s,
        body_timeout_s=server_settings.body_timeout_s,
        max_connections=server_settings.max_connections,
        uncapped_ports=frozenset(
            () if server_settings.ops_port is None else (server_settings.ops_port,)
        ),
    )
    public = uvicorn.Config(
        service.app,
        host=args.host or server_settings.host,
        port=port,
        loop="uvloop",
        http=edge_protocol(limits),
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    ops = None
    if server_settings.ops_port is not None:
        ops_host = server_settings.ops_host or args.host or server_settings.host
        ops = uvicorn.Config(service.app, host=ops_host, port=server_settings.ops_port)
    server = _Server(
        public, on_signal=service.begin_draining, on_reload=service.request_reload, ops=ops
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
