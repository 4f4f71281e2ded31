"""Hypothesis strategies for hostile requests, and the property they check, for signing tests."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from hypothesis import strategies as st

from bridge.errors import VerificationError

NOW = 1_800_000_000.0  # the injected clock: nothing in these tests reads the wall clock
CODES = frozenset({"missing_signature", "invalid_signature", "timestamp_out_of_tolerance"})


def verifies_or_refuses(verify: Callable[[], object]) -> None:
    """The property: a result, or ``VerificationError`` with a documented code; nothing else."""
    try:
        verify()
    except VerificationError as exc:
        refused: VerificationError | None = exc
    else:
        refused = None
    assert refused is None or refused.code in CODES


surrogates = st.text(st.characters(categories=["Cs"]), min_size=1)
any_text = st.text() | surrogates | st.text(alphabet="0123456789", max_size=40)
near_now = st.integers(min_value=int(NOW) - 1000, max_value=int(NOW) + 1000).map(str)
base64_text = st.binary(max_size=80).map(lambda raw: base64.b64encode(raw).decode("ascii"))
hex_text = st.binary(max_size=80).map(bytes.hex)


def header_values(*plausible: st.SearchStrategy[str]) -> st.SearchStrategy[object]:
    """Anything a caller might hand over: text, near-valid values, and wrong types."""
    return st.one_of(any_text, *plausible, st.integers(), st.none(), st.binary(max_size=20))


def hostile_headers(
    names: Sequence[str], *plausible: st.SearchStrategy[str]
) -> st.SearchStrategy[Mapping[str, str]]:
    """Dicts mixing the scheme's header names (in any case) with junk keys and junk values."""
    keys = st.one_of(
        st.sampled_from(list(names)),
        st.sampled_from([name.upper() for name in names]),
        any_text,
        st.integers(),
    )
    strategy = st.dictionaries(keys, header_values(*plausible), max_size=8)
    return cast(st.SearchStrategy[Mapping[str, str]], strategy)


def _json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text()
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=12,
    )


json_values = _json_values()
json_objects = st.dictionaries(st.text(), json_values, max_size=6)
hostile_bodies = st.one_of(
    st.binary(),
    json_values.map(lambda value: json.dumps(value).encode()),
    json_objects.map(lambda value: json.dumps(value, ensure_ascii=False).encode()),
    st.sampled_from(
        [b"NaN", b'{"a": NaN}', b'{"a": 1e400}', b"[" * 5000, b'{"a":' * 3000, b"\xef\xbb\xbf{}"]
    ),
    st.integers(min_value=5000, max_value=6000).map(lambda n: b'{"n": ' + b"9" * n + b"}"),
)
