"""The ``hmac`` partner scheme: a hex or base64 HMAC of the raw body in one header.

With a timestamp header configured the MAC covers ``"{timestamp}." + raw body`` and the
timestamp must be fresh; without one, replays are bounded only by the business-key dedupe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bridge.signing._base import (
    INVALID,
    HmacAlgorithm,
    HmacEncoding,
    Verified,
    any_matches,
    check_fresh,
    decode_digest,
    encode_digest,
    fail,
    mac,
    required_header,
    secret_keys,
    to_bytes,
    unix_seconds,
)

_ALGORITHMS = ("sha256", "sha512")
_ENCODINGS = ("hex", "base64")


def _signed_content(body: bytes, timestamp: str | None) -> bytes:
    return body if timestamp is None else timestamp.encode("ascii") + b"." + body


def sign_hmac(
    secret: str | bytes,
    body: bytes,
    *,
    algorithm: HmacAlgorithm = "sha256",
    encoding: HmacEncoding = "hex",
    timestamp: int | None = None,
) -> str:
    """The signature header value a partner sends (partner's side: tests, the demo, ``sign``)."""
    stamp = None if timestamp is None else str(int(timestamp))
    return encode_digest(mac(to_bytes(secret), _signed_content(body, stamp), algorithm), encoding)


class HmacVerifier:
    """Verifies ``signature_header`` (optionally prefixed ``sha256=``, GitHub style)."""

    def __init__(
        self,
        secrets: Sequence[str | bytes],
        *,
        algorithm: HmacAlgorithm = "sha256",
        encoding: HmacEncoding = "hex",
        signature_header: str = "X-Signature",
        timestamp_header: str | None = None,
        tolerance_s: int = 300,
    ) -> None:
        if algorithm not in _ALGORITHMS:
            raise ValueError(f"hmac algorithm must be one of {_ALGORITHMS}")
        if encoding not in _ENCODINGS:
            raise ValueError(f"hmac encoding must be one of {_ENCODINGS}")
        self._keys = secret_keys(secrets, "hmac")
        self._algorithm: HmacAlgorithm = algorithm
        self._encoding: HmacEncoding = encoding
        self._signature_header = signature_header
        self._timestamp_header = timestamp_header
        self._tolerance_s = tolerance_s

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float) -> Verified:
        signature = required_header(headers, self._signature_header)
        timestamp = None
        if self._timestamp_header is not None:
            timestamp = required_header(headers, self._timestamp_header)
            sent_at = unix_seconds(timestamp, self._timestamp_header)
            check_fresh(sent_at, now=now, tolerance_s=self._tolerance_s)
        prefix = self._algorithm + "="
        if signature[: len(prefix)].lower() == prefix:
            signature = signature[len(prefix) :]
        offered = decode_digest(signature, self._encoding)
        if offered is None:
            raise fail(INVALID, f"the {self._signature_header} header is not {self._encoding}")
        content = _signed_content(body, timestamp)
        expected = tuple(mac(key, content, self._algorithm) for key in self._keys)
        if not any_matches(expected, [offered]):
            raise fail(INVALID, f"the {self._signature_header} header matches no configured secret")
        return Verified(message_id=None)
