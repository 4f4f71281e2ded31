"""The operator console under ``/console/``: server-rendered pages over ``Operations``.

It exists only when the configuration has an ``admin`` section (404 otherwise). Signing in
exchanges the admin token for a session cookie (``sessions``); every page without a session
redirects to the sign-in page, every POST without a session or without the session's CSRF
token is refused (403). Pages carry a strict Content-Security-Policy: scripts and styles come
only from the console's own static files (htmx, one CSS file), nothing inline, no framing.
"""

from __future__ import annotations

from bridge.app.console.pages import PREFIX, Console

__all__ = ["PREFIX", "Console"]
