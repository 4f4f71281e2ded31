"""The composition root: ``bridge <command>``. Each command lives in its own module here.

Exit codes (DESIGN.md section 2): 0 ok, 1 invalid input or config, 2 usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bridge import __version__

# Each module defines ``register(subparsers)``, adding parsers with ``set_defaults(run=...)``;
# ``run(args) -> int`` returns the exit code.
COMMAND_MODULES: tuple[str, ...] = (
    "bridge.cli.config_commands",
    "bridge.cli.sign_command",
    "bridge.cli.route_command",
    "bridge.cli.sandbox_command",
    "bridge.cli.serve_command",
    "bridge.cli.notifications_command",
    "bridge.cli.destinations_command",
    "bridge.cli.healthcheck_command",
    "bridge.cli.migrate_command",
    "bridge.cli.store_command",
    "bridge.cli.demo_command",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bridge",
        description="share-bridge: redeem partners' Didit share tokens and deliver the outcomes.",
    )
    parser.add_argument("--version", action="version", version=f"share-bridge {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))
