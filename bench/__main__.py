"""``python -m bench [NAME ...]``: run every ``bench/bench_*.py`` module's ``main()``, or the named
ones (``sandbox_imports`` or ``bench_sandbox_imports``). Exit code: the worst of theirs."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import bench


def discover() -> dict[str, str]:
    """Benchmark name -> module name, for every ``bench_*`` module in this package."""
    return {
        info.name.removeprefix("bench_"): f"bench.{info.name}"
        for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda info: info.name)
        if info.name.startswith("bench_")
    }


def main(argv: Sequence[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(available)}")
    args = parser.parse_args(argv)
    names = [name.removeprefix("bench_") for name in args.names] or list(available)
    unknown = [name for name in names if name not in available]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; have {', '.join(available)}")
    worst = 0
    for name in names:
        sys.stdout.write(f"== {name}\n")
        sys.stdout.flush()
        result = importlib.import_module(available[name]).main()
        worst = max(worst, int(result or 0))
    return worst


if __name__ == "__main__":
    sys.exit(main())
