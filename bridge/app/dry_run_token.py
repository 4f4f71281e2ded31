"""A TEST share token for a dry run (``bridge route --claims k=v``): built from claims a person
types, signed with a throwaway key made for the one run and dropped after it.

It lets a hand-written body get past "well-formed JWT" to the rules. The bridge never verifies a
share token's signature (Didit does, at import), so the key proves nothing and is not kept; the
token is put in the body where the partner's ``fields.share_token`` says, and is never sent.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import jwt
import orjson

__all__ = ["claims_from", "with_test_token"]


def claims_from(pairs: Iterable[str]) -> dict[str, Any]:
    """``["session_kind=business", "exp=4102444800", "a.b=x"]`` as claims: a value that reads as
    JSON (a number, true, false, null, a quoted string) is taken as such, anything else as text;
    a dotted name nests (``a.b=x`` is ``{"a": {"b": "x"}}``).

    Raises ValueError for a pair without ``=`` or with an empty name or dot segment.
    """
    claims: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        steps = name.split(".")
        if not equals or not all(step.strip() for step in steps):
            raise ValueError(f"{pair!r} is not name=value (like session_kind=business)")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        _put(claims, steps, value)
    return claims


def with_test_token(body: bytes, token_path: str, claims: Mapping[str, Any]) -> bytes:
    """``body`` with a TEST token made of ``claims`` at ``token_path`` (a dot path, created if
    missing). A body that is not a JSON object is returned as it is: the dry run then says so."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(payload, dict):
        return body
    token = jwt.encode(dict(claims), secrets.token_bytes(32), algorithm="HS256")
    _put(payload, token_path.split("."), token)
    return json.dumps(payload, ensure_ascii=False).encode()


def _put(document: dict[str, Any], steps: list[str], value: object) -> None:
    for step in steps[:-1]:
        child = document.get(step)
        if not isinstance(child, dict):
            child = document[step] = {}
        document = child
    document[steps[-1]] = value
