"""Serve any ASGI app with uvicorn on 127.0.0.1 in a background thread, for tests.

The implementation is the demo's own (``bridge.sandbox.threaded``); tests import it from here.
"""

from __future__ import annotations

from bridge.sandbox.threaded import serve_in_thread

__all__ = ["serve_in_thread"]
