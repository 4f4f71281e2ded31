"""``share-bridge sandbox``: the Didit sandbox alone, with a ready world, for integrators."""

from __future__ import annotations

import argparse

from bridge.sandbox import server


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run the Didit sandbox with a ready world",
        description=(
            "Runs the Didit emulator (docs/didit.md) with our application, its KYC and KYB "
            "workflows, and three partner applications with finished sessions; prints their ids "
            "and keys and how to mint a share token."
        ),
    )
    server.add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return server.run(args)
