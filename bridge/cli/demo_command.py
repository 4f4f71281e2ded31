"""``share-bridge demo``: the whole pipeline on this machine (see ``bridge.demo``)."""

from __future__ import annotations

import argparse
import sys

from bridge.cli._common import env_default
from bridge.demo import DemoOptions, run_demo
from bridge.demo.plan import MIN_COUNT


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = DemoOptions()
    parser = subparsers.add_parser(
        "demo",
        help="run the sandbox, a sink and the bridge, send partner traffic, check every outcome",
    )
    parser.add_argument(
        "--count",
        type=_count,
        default=env_default("BRIDGE_DEMO_COUNT", str(defaults.count)),
        help=f"notifications to send, at least {MIN_COUNT} ($BRIDGE_DEMO_COUNT)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=env_default("BRIDGE_DEMO_SEED", str(defaults.seed)),
        help="the sandbox world's and the traffic's seed ($BRIDGE_DEMO_SEED)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=env_default("BRIDGE_DEMO_TIMEOUT", str(defaults.timeout_s)),
        help="seconds the traffic may take to reach its end state ($BRIDGE_DEMO_TIMEOUT)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (config, store, log)"
    )
    parser.set_defaults(run=run)


def _count(text: str) -> int:
    value = int(text)
    if value < MIN_COUNT:
        raise argparse.ArgumentTypeError(f"send at least {MIN_COUNT} notifications")
    return value


def run(args: argparse.Namespace) -> int:
    options = DemoOptions(
        count=int(args.count), seed=int(args.seed), timeout_s=float(args.timeout), keep=args.keep
    )
    return run_demo(options, sys.stdout)
