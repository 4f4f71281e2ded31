"""The ``api-key`` partner scheme: a static key in one header, compared in constant time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bridge.signing._base import (
    INVALID,
    Verified,
    any_matches,
    fail,
    required_header,
    secret_keys,
)


class ApiKeyVerifier:
    """Accepts a request whose ``header`` holds any one of ``keys``."""

    def __init__(self, header: str, keys: Sequence[str | bytes]) -> None:
        if not header:
            raise ValueError("api-key: name the header that carries the key")
        self._header = header
        self._keys = secret_keys(keys, "api-key")

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float) -> Verified:
        # surrogatepass: a hostile value is compared (and refused), never an encoding crash.
        offered = required_header(headers, self._header).encode("utf-8", "surrogatepass")
        if not any_matches(self._keys, [offered]):
            raise fail(INVALID, f"the {self._header} header holds no configured key")
        return Verified(message_id=None)
