"""Share tokens sealed at rest: AES-256-GCM under keys from the configuration.

PostgreSQL keeps an updated row's old version on disk until vacuum, and in the WAL, so setting
a token to NULL does not take its bytes off the disk. A sealed token is useless there without
the key, which lives only in the configuration (a dump, a backup or a stolen disk hold no usable
token). The first key seals; every key opens, so keys rotate without re-sealing: add the new
key first, and drop the old one once no token sealed under it can still be used (tokens are
erased at their final state, a failed one at its deadline or after a day).

A sealed token is ``0x01 | key id (4 bytes of SHA-256(key)) | nonce (12) | ciphertext+tag``;
the notification id is the associated data, so a sealed token copied to another row does not
open.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bridge.errors import StoreUnavailable

KEY_BYTES = 32
_VERSION = b"\x01"
_NONCE_BYTES = 12
_KEY_ID_BYTES = 4


class TokenSeal:
    """Seals and opens share tokens; the first of ``keys`` seals."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("sealing tokens needs at least one key")
        if any(len(key) != KEY_BYTES for key in keys):
            raise ValueError(f"a token key is {KEY_BYTES} bytes")
        self._keys = [(_key_id(key), AESGCM(key)) for key in keys]

    def seal(self, token: str, notification_id: str) -> bytes:
        key_id, cipher = self._keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = cipher.encrypt(nonce, token.encode(), notification_id.encode())
        return _VERSION + key_id + nonce + sealed

    def open(self, sealed: bytes, notification_id: str) -> str:
        """The token; ``StoreUnavailable`` when no configured key opens it."""
        head = len(_VERSION) + _KEY_ID_BYTES
        version, key_id = sealed[:1], sealed[1:head]
        nonce, body = sealed[head : head + _NONCE_BYTES], sealed[head + _NONCE_BYTES :]
        if version == _VERSION:
            for candidate, cipher in self._keys:
                if candidate != key_id:
                    continue
                try:
                    return cipher.decrypt(nonce, body, notification_id.encode()).decode()
                except InvalidTag:
                    continue
        raise StoreUnavailable(
            f"the token of {notification_id} opens with none of store.token_keys"
            " (was the key that sealed it removed?)"
        )


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:_KEY_ID_BYTES]
