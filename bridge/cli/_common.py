"""Arguments shared by several commands; every flag has an environment twin."""

from __future__ import annotations

import argparse
import os


def env_default(variable: str, fallback: str | None = None) -> str | None:
    return os.environ.get(variable, fallback)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=env_default("BRIDGE_CONFIG", "config/bridge.yaml"),
        help="the YAML configuration (default: $BRIDGE_CONFIG, then config/bridge.yaml)",
    )
