"""``share-bridge demo``: the whole pipeline on this machine, checked end to end.

It starts the Didit sandbox (a process), a downstream sink (a thread) and ``share-bridge serve`` (a
process) with a generated config, sends a mixed stream of partner notifications whose expected
end states are decided when they are generated, shows live progress, prints a summary, and
succeeds only if every notification ended as expected, every event reached every destination
with a verified signature, and no token was redeemed twice.
"""

from __future__ import annotations

from bridge.demo.runner import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
