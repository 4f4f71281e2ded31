from __future__ import annotations

from bridge.cli import main

main()
