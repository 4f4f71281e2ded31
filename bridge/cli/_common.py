"""Arguments shared by several commands; every flag has an environment twin."""

from __future__ import annotations

import argparse
import os

from bridge.config import StoreSettings
from bridge.store import Clock, Store, open_store


def env_default(variable: str, fallback: str | None = None) -> str | None:
    return os.environ.get(variable, fallback)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=env_default("BRIDGE_CONFIG", "config/bridge.yaml"),
        help="the YAML configuration (default: $BRIDGE_CONFIG, then config/bridge.yaml)",
    )


def open_configured_store(settings: StoreSettings, *, clock: Clock) -> Store:
    """The store the configuration's ``store`` section describes."""
    return open_store(
        settings.url,
        clock=clock,
        token_keys=settings.decoded_token_keys(),
        schema=settings.schema_,
        pool_size=settings.pool_size,
    )
