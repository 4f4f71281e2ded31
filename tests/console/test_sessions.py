"""The console's session cookie: only an unexpired cookie signed with the current admin token is
a session, and its CSRF token is the session's own."""

from __future__ import annotations

from bridge.app.console import sessions

TOKEN = "adm-0f3b8c2e9d7a41b6a5c4e3f2d1c0b9a8"
NOW = 1_800_000_000.0


def test_a_cookie_reads_back_until_it_expires() -> None:
    cookie, issued = sessions.issue(TOKEN, now=NOW)
    assert sessions.read(cookie, TOKEN, now=NOW + 60) == issued
    assert sessions.read(cookie, TOKEN, now=NOW + sessions.SESSION_S) is None
    assert TOKEN not in cookie


def test_forged_altered_or_foreign_cookies_are_no_session() -> None:
    cookie, _ = sessions.issue(TOKEN, now=NOW)
    expiry, session_id, mac = cookie.split(".")
    later = f"{int(expiry) + 86_400}.{session_id}.{mac}"  # a longer life, same signature
    other_id = f"{expiry}.x{session_id}.{mac}"
    for bad in ["", "garbage", later, other_id, f"{expiry}.{session_id}.{'0' * 64}"]:
        assert sessions.read(bad, TOKEN, now=NOW) is None, bad
    # A rotated admin token signs every session out.
    assert sessions.read(cookie, TOKEN + "-rotated", now=NOW) is None


def test_each_session_has_its_own_csrf_token() -> None:
    _, first = sessions.issue(TOKEN, now=NOW)
    _, second = sessions.issue(TOKEN, now=NOW)
    assert first.csrf != second.csrf
    assert sessions.token_matches(first.csrf, first.csrf)
    assert not sessions.token_matches(second.csrf, first.csrf)
    assert not sessions.token_matches("", "")
