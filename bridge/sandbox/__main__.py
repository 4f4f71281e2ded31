"""``python -m bridge.sandbox``: the same as ``share-bridge sandbox``."""

from __future__ import annotations

import argparse
import sys

from bridge.sandbox.server import add_arguments, run

parser = argparse.ArgumentParser(prog="python -m bridge.sandbox", description=__doc__)
add_arguments(parser)
sys.exit(run(parser.parse_args()))
