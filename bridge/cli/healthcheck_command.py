"""``share-bridge healthcheck``: exit 0 if the local ``/healthz`` answers 200, else 1 (for Docker).

The port is ``--port``, else ``$BRIDGE_PORT``, else the configuration's ``server.port`` (the
default port when the configuration cannot be read: a healthcheck must not need secrets).
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from bridge import config
from bridge.cli._common import add_config_argument, env_default
from bridge.config import ServerSettings
from bridge.errors import ConfigError

TIMEOUT_S = 3.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "healthcheck", help="exit 0 if the local bridge answers /healthz (for containers)"
    )
    add_config_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    parser.add_argument("--port", type=int, default=env_default("BRIDGE_PORT"), help="$BRIDGE_PORT")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds (default 3)")
    parser.set_defaults(run=run)


def _port(args: argparse.Namespace) -> int:
    if args.port is not None:
        return int(args.port)
    try:
        return config.load(args.config).server.port
    except ConfigError:
        return ServerSettings().port


def run(args: argparse.Namespace) -> int:
    try:
        port = _port(args)
    except ValueError:
        sys.stderr.write("share-bridge healthcheck: the port must be a number\n")
        return 2
    url = f"http://{args.host}:{port}/healthz"
    try:
        # A fixed http URL on a local host we compose ourselves, not user-supplied input.
        with urllib.request.urlopen(url, timeout=args.timeout) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"share-bridge healthcheck: {url}: {exc}\n")
        return 1
    if status != 200:
        sys.stderr.write(f"share-bridge healthcheck: {url} answered {status}\n")
        return 1
    return 0
