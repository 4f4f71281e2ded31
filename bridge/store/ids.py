"""Time-sortable identifiers: ``<prefix>_`` + 26 Crockford base32 characters (a ULID).

48 bits of milliseconds then 80 random bits. Within one millisecond the random part is
incremented (monotonic ULIDs), so ids made by one process sort in creation order and listings
can page by id. Ids are names, not secrets: a seeded PRNG is enough, and much cheaper.
"""

from __future__ import annotations

import os
import random
import threading

_RANDOM_BITS = 80
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U; sorts like the values
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]  # 10 bits -> 2 digits
_SHIFTS = range(120, -1, -10)  # 130 bits (the top 2 are zero) as 13 pairs of digits
_random = random.Random()  # noqa: S311 - uniqueness, not secrecy; seeded from os.urandom
_lock = threading.Lock()
_last = 0
os.register_at_fork(after_in_child=_random.seed)  # a forked child must not repeat its parent


def new_id(prefix: str, now: float) -> str:
    """A new id such as ``ntf_01JDX6Z0A4E8S7Q9W3M5T2V1KC``; ``now`` is epoch seconds."""
    global _last
    millis = int(now * 1000) & (2**48 - 1)
    with _lock:
        value = millis << _RANDOM_BITS | _random.getrandbits(_RANDOM_BITS)
        if value >> _RANDOM_BITS == _last >> _RANDOM_BITS and value <= _last:
            value = _last + 1  # same millisecond: keep the order of creation
        _last = value
    return prefix + "_" + "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def first_id_at(prefix: str, at: float) -> str:
    """The smallest id ``new_id(prefix, at)`` can make: ids from ``at`` on sort at or after it,
    so a time range over ids is a range over the primary key."""
    millis = max(0, min(int(at * 1000), 2**48 - 1))
    value = millis << _RANDOM_BITS
    return prefix + "_" + "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])
