"""The building blocks of the models: a strict, frozen base and the checked kinds of string.

Messages never echo a value that may be a secret.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict

NAME_PATTERN = r"^[a-z0-9_-]{1,64}$"  # partner, rule and destination names: URL segments
_NAME = re.compile(NAME_PATTERN)
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a valid name: use a-z, 0-9, '-' and '_' (a URL segment)")
    return name


def _check_dot_path(path: str) -> str:
    if not path or any(not segment.strip() for segment in path.split(".")):
        raise ValueError(f"{path!r} is not a dot path like customer.id")
    return path


def dot_path_steps(path: str) -> tuple[str | int, ...]:
    """A dot path as ``bridge.rules.lookup`` follows it: a segment of at most 9 ASCII digits may
    be a list index, so ``items.0`` and ``items.00`` can reach the same value."""
    return tuple(
        int(step) if step.isascii() and step.isdigit() and len(step) <= 9 else step
        for step in path.split(".")
    )


def _check_header(name: str) -> str:
    if not _HEADER.match(name):
        raise ValueError(f"{name!r} is not a valid HTTP header name")
    return name


def _check_http_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname or any(char.isspace() for char in url):
        raise ValueError("must be a URL with a host, like https://crm.internal/webhooks")
    if parts.username is not None or parts.password is not None:
        # The HTTP clients refuse them next to their own headers, and a URL ends up in logs.
        raise ValueError("must not hold a user or password (user:password@)")
    return url


Name = Annotated[str, AfterValidator(_check_name)]
DotPath = Annotated[str, AfterValidator(_check_dot_path)]
HeaderName = Annotated[str, AfterValidator(_check_header)]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


class ConfigModel(BaseModel):
    """The base of every configuration model: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # a YAML typo is an error
