"""Benchmarks: ``python -m bench [NAME ...]`` runs ``bench/bench_NAME.py``'s ``main()``."""

from __future__ import annotations
