"""The console's sign-in session: a signed, expiring cookie, and the CSRF token tied to it.

The cookie holds ``<expiry>.<session id>.<HMAC-SHA256>``; the HMAC key is derived from the admin
token, so rotating the token (a reload) signs every session out, and every replica with the same
token accepts the same sessions with no shared state. The CSRF token is another HMAC of the
session id: a page gets it from the server, a cross-site form cannot.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

__all__ = ["COOKIE", "SESSION_S", "Session", "issue", "read", "token_matches"]

COOKIE: Final = "bridge_console"
SESSION_S: Final = 8 * 3600.0
_KEY_LABEL: Final = b"share-bridge console session v1"


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    expires_at: int
    csrf: str


def _key(admin_token: str) -> bytes:
    return hmac.new(admin_token.encode(), _KEY_LABEL, hashlib.sha256).digest()


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _session(key: bytes, session_id: str, expires_at: int) -> Session:
    return Session(session_id, expires_at, _mac(key, f"csrf:{session_id}"))


def issue(admin_token: str, *, now: float) -> tuple[str, Session]:
    """A new session: the cookie value and what it stands for."""
    key = _key(admin_token)
    session_id = secrets.token_urlsafe(18)
    expires_at = int(now + SESSION_S)
    payload = f"{expires_at}.{session_id}"
    return f"{payload}.{_mac(key, payload)}", _session(key, session_id, expires_at)


def read(cookie: str | None, admin_token: str, *, now: float) -> Session | None:
    """The session a cookie carries; None when absent, forged, signed with another token, or
    expired."""
    if not cookie:
        return None
    payload, _, mac = cookie.rpartition(".")
    expiry, _, session_id = payload.partition(".")
    key = _key(admin_token)
    if not hmac.compare_digest(_mac(key, payload), mac):
        return None
    if not (expiry.isascii() and expiry.isdigit()) or int(expiry) <= now or not session_id:
        return None
    return _session(key, session_id, int(expiry))


def token_matches(presented: str, admin_token: str) -> bool:
    """Whether the sign-in form's token is the admin token (constant time)."""
    return hmac.compare_digest(presented.encode(), admin_token.encode()) and bool(presented)
