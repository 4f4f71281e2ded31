"""``share-bridge secret``: a fresh ``whsec_`` secret for a partner or a destination."""

from __future__ import annotations

import argparse
import sys

from bridge.signing import new_whsec


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "secret",
        help="print a new random whsec_ secret (Standard Webhooks)",
        description="Print a new whsec_ secret: 32 random bytes in base64, for a "
        "standard-webhooks partner or a destination. Keep it in the environment, not the file.",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(new_whsec() + "\n")
    return 0
