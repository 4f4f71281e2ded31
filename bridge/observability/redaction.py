"""Logs without secrets: ``Redactor``, the structlog processor every line goes through, and the
same patterns for texts that leave the process another way (stored errors, upstream messages).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from uuid import UUID

from structlog.typing import EventDict, WrappedLogger

REDACTED: Final = "[REDACTED]"
REDACTED_JWT: Final = "[REDACTED:jwt]"

_B64URL = r"[A-Za-z0-9_-]"
_CREDENTIAL_WORDS = (
    r"token|secret|passw(?:or)?d|api[_-]?key|authorization|credential|cookie|private[_-]?key"
)
# One pass over the text finds every shape of secret. A JWT takes its whole base64url run and any
# further dot-segments, so a token glued to other text is removed whole, never half. Matching only
# where a run starts (and possessively) keeps a long "eyJeyJ..." linear instead of quadratic.
# Intake accepts what pyjwt does: any segment may end in "=" padding, and a header that does not
# start '{"' (so no "eyJ" in it) is found by its claims segment, which still does.
# A `name: value` pair is redacted only when the name ends at a credential word ("api_key=",
# "token:"), so an error code such as "share_token_expired: ..." keeps its message.
_JWT_SOURCE: Final = (
    rf"(?<!{_B64URL})(?={_B64URL}*eyJ|{_B64URL}++={{0,2}}\.{_B64URL}*eyJ)"
    rf"{_B64URL}++={{0,2}}(?:\.[A-Za-z0-9_=-]*+){{2,}}"
)
_JWT: Final = re.compile(_JWT_SOURCE, re.ASCII)
_PATTERN: Final = re.compile(
    rf"(?P<jwt>{_JWT_SOURCE})"
    r"|(?P<whsec>whsec_[A-Za-z0-9+/=_-]+)"
    r"|(?P<bearer>(?i:bearer)[ \t]+)(?!\[REDACTED)[^\s\"',;]+"
    r"|(?P<basic>Basic[ \t]+)[A-Za-z0-9+/=]{8,}"
    rf"|(?P<kv>(?i:{_CREDENTIAL_WORDS})(?i:[_-]?(?:key|value|string))?s?[\"']?[ \t]*[:=][ \t]*)"
    r"(?:(?P<q>[\"'])[^\"'\n]*(?P=q)"
    r"|[\"']?(?!\[REDACTED)(?i:(?:bearer|basic)[ \t]+)?[^\s\"'&,;})\]]+)",
    re.ASCII,
)
# Every match of _PATTERN contains one of these, lowercased.
_TRIGGERS: Final = (
    "eyj", "whsec_", "bearer", "basic", "token", "secret", "passw", "api", "authorization",
    "credential", "cookie", "private",
)  # fmt: skip
# The same words, searched ASCII case-insensitively: _PATTERN folds only ASCII letters, so a text
# without any of them cannot match it.
_TRIGGER_SOURCE: Final = f"(?ai:{'|'.join(map(re.escape, _TRIGGERS))})"
_TRIGGER: Final = re.compile(_TRIGGER_SOURCE)
_SENSITIVE_KEY: Final = re.compile(rf"(?i:{_CREDENTIAL_WORDS})")
# A digest of a token is what we keep on purpose (docs/architecture.md); it is not the credential.
_DIGEST_KEY: Final = re.compile(r"(?i)(?:sha256|hash|digest|fingerprint)$")
_KEPT_TYPES: Final = (bool, int, float, type(None), datetime, date, time, timedelta, UUID)
_MAX_DEPTH: Final = 32
_MAX_CACHED_KEYS: Final = 4096
_MAX_CACHED_TEXT: Final = 256


def _replace(match: re.Match[str]) -> str:
    if match.group("jwt") is not None:
        return REDACTED_JWT
    if match.group("whsec") is not None:
        return REDACTED
    for prefix in ("bearer", "basic", "kv"):
        kept = match.group(prefix)
        if kept is not None:
            quote = match.group("q") or ""
            return f"{kept}{quote}{REDACTED}{quote}"
    raise AssertionError("unreachable: every alternative has a named group")


class Redactor:
    """A structlog processor that removes credentials from every value of an event.

    It removes JWT-shaped strings (share tokens), ``whsec_`` secrets, ``Bearer``/``Basic``
    credentials, ``key=value`` / ``"key": "value"`` pairs whose key names a secret, the values of
    fields and nested keys named like ``token``, ``secret``, ``api_key``, ``password`` or
    ``authorization``, and every literal secret registered with :meth:`add_secrets`. It walks
    nested dicts, lists, tuples and sets, decodes bytes, and turns unknown objects into their
    redacted ``str``. Numbers, booleans, dates and UUIDs are kept.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        # Field names repeat on every line: remember each one's redacted form and sensitivity.
        self._keys: dict[str, tuple[str, bool]] = {}
        # Values repeat too ("POST", the path, the outcome): remember what short texts become.
        self._texts: dict[str, str] = {}
        self.add_secrets(*secrets)

    def add_secrets(self, *secrets: str) -> None:
        """Register literal secret values (API keys, admin token, partner keys); ignore empty ones.

        A ``whsec_`` secret is registered with and without its prefix. Secrets are never removed:
        a rotated-out value must stay out of the logs too.
        """
        fresh = set(self._secrets)
        for secret in secrets:
            if secret:
                fresh.add(secret)
                if secret.startswith("whsec_") and len(secret) > len("whsec_"):
                    fresh.add(secret.removeprefix("whsec_"))
        # Longest first, so a secret that contains another is removed whole.
        self._secrets = tuple(sorted(fresh, key=len, reverse=True))
        # One search tells whether a text holds a registered secret or a trigger word at all:
        # most texts hold neither, and then there is nothing more to do.
        self._suspect = re.compile("|".join([*map(re.escape, self._secrets), _TRIGGER_SOURCE]))
        self._keys = {}
        self._texts = {}

    def redact_text(self, text: str) -> str:
        """Return *text* with each credential replaced by ``[REDACTED]`` (``[REDACTED:jwt]``)."""
        cached = self._texts.get(text)
        if cached is not None:
            return cached
        clean = self._redact_text(text)
        if len(text) <= _MAX_CACHED_TEXT:
            if len(self._texts) >= _MAX_CACHED_KEYS:
                self._texts.clear()  # unique values (ids, times) must not crowd out the rest
            self._texts[text] = clean
        return clean

    def _redact_text(self, text: str) -> str:
        if self._suspect.search(text) is None:
            return text
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        # A text with a secret but no trigger word needs no pattern run.
        if _TRIGGER.search(text) is not None:
            return _PATTERN.sub(_replace, text)
        return text

    def redact(self, value: Any) -> Any:
        """Return a copy of *value* (any nesting of containers) with every credential removed."""
        return self._redact(value, 0)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return self._redact_mapping(event_dict, 0)

    def _redact_mapping(self, mapping: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
        # Every log line comes through here: the common cases (a known field name, a string or
        # a number) are inlined; anything else takes the general path of ``_field``.
        redacted: dict[Any, Any] = {}
        known_keys = self._keys
        for key, value in mapping.items():
            known = known_keys.get(key) if type(key) is str else None
            if known is None:
                name, clean = self._field(key, value, depth)
                redacted[name] = clean
                continue
            name, sensitive = known
            kind = type(value)
            if kind is str:
                redacted[name] = REDACTED if sensitive else self.redact_text(value)
            elif kind is int or kind is float or kind is bool or value is None:
                redacted[name] = value
            else:
                redacted[name] = self._field(key, value, depth)[1]
        return redacted

    def _field(self, key: object, value: Any, depth: int) -> tuple[Any, Any]:
        name, sensitive = self._key(key)
        if sensitive and not isinstance(value, _KEPT_TYPES):
            return name, REDACTED
        return name, self._redact(value, depth + 1)

    def _key(self, key: object) -> tuple[Any, bool]:
        if isinstance(key, _KEPT_TYPES):
            return key, False
        text = key if isinstance(key, str) else _text_of(key)
        known = self._keys.get(text)
        if known is None:
            sensitive = _SENSITIVE_KEY.search(text) is not None and not _DIGEST_KEY.search(text)
            known = (self.redact_text(text), sensitive)
            if len(self._keys) < _MAX_CACHED_KEYS:
                self._keys[text] = known
        return known

    def _redact(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, _KEPT_TYPES):
            return value
        if depth >= _MAX_DEPTH:
            return "[TRUNCATED]"
        if isinstance(value, Mapping):
            return self._redact_mapping(value, depth)
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str | bytes):
            # A (name, value) header pair, as in httpx's ``Headers.raw``.
            return self._field(value[0], value[1], depth)
        if isinstance(value, tuple):
            return tuple(self._redact(item, depth + 1) for item in value)
        if isinstance(value, list | set | frozenset):
            return [self._redact(item, depth + 1) for item in value]
        return self.redact_text(_text_of(value))


def _text_of(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the log call
        return f"<unprintable {type(value).__name__}>"


def without_jwts(text: str) -> str:
    """*text* with every JWT-shaped run (a share token) replaced by ``[REDACTED:jwt]``: the
    redactor's own JWT pattern, for texts that must keep everything else (an upstream error)."""
    return _JWT.sub(REDACTED_JWT, text) if "eyJ" in text else text


# A URL in an error text (aiohttp quotes the whole URL): its user, password and query may be
# credentials.
_URL: Final = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s'\"@]*@)?"
    r"(?P<rest>[^\s'\"?#]*)(?P<query>\?[^\s'\"#]*)?"
)


def without_url_credentials(text: str) -> str:
    """*text* with every URL's user, password and query replaced by ``[REDACTED]``."""

    def scrub(match: re.Match[str]) -> str:
        userinfo = f"{REDACTED}@" if match["userinfo"] else ""
        query = f"?{REDACTED}" if match["query"] else ""
        return f"{match['scheme']}{userinfo}{match['rest']}{query}"

    return _URL.sub(scrub, text)
