"""Fuzz targets: any input yields the result or the documented error, never another exception.

Unlike the structured properties next to each module, these start from *valid* input (a share
token of arbitrary claims, the example configuration, a correctly signed message) and mutate it,
so the fuzzer spends its time past the first check: in the claims a token or a bearer JWT
carries, in a configuration's deep fields, in what a verifier reads once a signature matched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.config import Settings, load_text
from bridge.errors import ConfigError, TokenError
from bridge.signing import (
    ApiKeyVerifier,
    DiditWebhookVerifier,
    HmacVerifier,
    JwtVerifier,
    StandardWebhooksSigner,
    StandardWebhooksVerifier,
    Verifier,
    sign_didit_webhook,
    sign_hmac,
    sign_jwt,
)
from bridge.tokens import ShareToken, read_share_token
from tests.signing.strategies import (
    NOW,
    hostile_bodies,
    json_objects,
    json_values,
    verifies_or_refuses,
)

#: Scales every target's example count; ``make test`` runs them about a minute in all.
SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))
EXAMPLE = Path(__file__).parents[2] / "config" / "bridge.example.yaml"
APPLICATION_ID = "11111111-2222-4333-8444-555555555555"
TOLERANCE_S = 300


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- the share-token reader ---------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_time_values = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.sampled_from([2**63, -(2**63) - 1, 253_402_300_800, -62_135_596_801, 1e308, 5e-324]),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
)
_claims = st.fixed_dictionaries(
    {},
    optional={
        "session_id": json_values,
        "session_kind": st.sampled_from(["user", "business", "USER", ""]) | json_values,
        "from_application_id": json_values,
        "for_application_id": st.just(APPLICATION_ID) | json_values,
        "iat": _time_values,
        "exp": _time_values,
    },
).flatmap(lambda fixed: json_objects.map(lambda extra: {**extra, **fixed}))


def _json_segment(value: object) -> bytes:
    # allow_nan: NaN and Infinity are not JSON, but a forger may send them all the same.
    return json.dumps(value, allow_nan=True).encode()


_segments = st.one_of(
    _claims.map(_json_segment),
    json_values.map(_json_segment),
    st.binary(max_size=120),
    st.sampled_from([b"{}", b'{"a":1,"a":2}', b'{"\\ud800":1}', b"\xef\xbb\xbf{}", b"[]"]),
)
_headers = st.one_of(
    st.just(b'{"alg":"HS256","typ":"JWT"}'),
    st.sampled_from([b'{"alg":"none"}', b'{"alg":"HS256","crit":["x"]}', b'{"kid":[1]}']),
    _segments,
)
_token_texts = st.one_of(
    st.tuples(_headers, _segments, st.binary(max_size=40)).map(
        lambda parts: ".".join(_b64(part) for part in parts)
    ),
    st.tuples(
        st.lists(st.binary(max_size=60).map(_b64), min_size=0, max_size=5),
        st.sampled_from(["", "=", "==", "===", " ", "\n"]),
    ).map(lambda parts: (parts[1] + ".").join(parts[0])),
    st.text(max_size=200),
    st.text(alphabet="ABCabc019-_.=", max_size=200),
)


def _use(token: ShareToken) -> None:
    """Everything intake asks a token once read: none of it may raise on any claims."""
    token.deadline()
    token.is_expired(NOW)
    token.is_for(APPLICATION_ID)
    assert token.business_key.startswith("sha256:")
    assert token.session_kind in ("user", "business")
    for value in (token.iat, token.exp):
        assert value is None or isinstance(value, int)


@fuzz_settings(600)
@given(token=_token_texts | st.one_of(st.none(), st.integers(), st.binary(), json_values))
def test_share_token_reader(token: object) -> None:
    read = _read_or_refuse(token)
    if isinstance(read, TokenError):
        assert read.code == "malformed_share_token"
        if isinstance(token, str) and len(token) >= 8:
            assert token not in str(read)  # the credential never shows in an error
    else:
        _use(read)


def _read_or_refuse(token: object) -> ShareToken | TokenError:
    try:
        return read_share_token(token)
    except TokenError as error:
        return error


# -- the configuration loader ---------------------------------------------------------------


def _public_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode("ascii")


_ENVIRON = {
    "DIDIT_API_KEY": "fz-didit-api-key-7Qw2Ly9Xc4",
    "DIDIT_APPLICATION_ID": APPLICATION_ID,
    "ACME_WHSEC": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "GLOBEX_SECRET": "fz-globex-Hm4c-secret-9Zp2Rt7Kq",
    "INITECH_PUBLIC_KEY": _public_pem(),
    "HOOLI_KEY": "fz-hooli-api-key-Xe5r2Tg8Np4",
    "CRM_WHSEC": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "AUDIT_WHSEC": "whsec_YXVkaXQtc2VjcmV0LWZvci1mdXp6aW5n",
    "DIDIT_WEBHOOK_SECRET": "fz-didit-webhook-Lk3s9Fh2Qm7",
    "BRIDGE_ADMIN_TOKEN": "fz-admin-token-Pz6y1Cv4Bn8",
}
_BASE: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every path into ``node``, the root excluded."""
    found: list[tuple[object, ...]] = []
    children: Mapping[object, object] = (
        node if isinstance(node, dict) else dict(enumerate(node)) if isinstance(node, list) else {}
    )
    for key, child in children.items():
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


_PATHS = _paths(_BASE)
_yaml_values = st.one_of(
    json_values,
    _time_values,
    st.sampled_from(["${DIDIT_API_KEY}", "${UNSET_VARIABLE}", "$${x}", "${", "{partner}", "[a-"]),
    st.sampled_from(["http://127.0.0.1:1", "ftp://x", "http://u:p@h/", "sqlite:///", "(a+)+$"]),
    st.sampled_from(["HS256", "RS256", "none", "sha1", "hex", "base64", "user", "business"]),
    st.lists(st.sampled_from(["HS256", "EU", "acme", "share.imported", "*"]), max_size=3),
    st.dictionaries(st.sampled_from(["when", "then", "auth", "url", "secrets"]), json_values),
)
_edits = st.lists(
    st.tuples(st.sampled_from(_PATHS), st.sampled_from(["set", "delete"]), _yaml_values),
    min_size=1,
    max_size=4,
)


def _edited(edits: list[tuple[tuple[object, ...], str, object]]) -> object:
    document: Any = json.loads(json.dumps(_BASE))  # a deep copy
    for path, edit, value in edits:
        parent: Any = document
        for key in path[:-1]:
            try:
                parent = parent[key]
            except (KeyError, IndexError, TypeError):
                break
        else:
            last = path[-1]
            if isinstance(parent, dict):
                present = last in parent
            elif isinstance(parent, list):
                present = last in range(len(parent))
            else:
                continue  # an earlier edit made this a scalar
            if edit == "delete" and present:
                del parent[last]
            elif edit == "set" and (present or isinstance(parent, dict)):
                parent[last] = value
    return document


@fuzz_settings(100)
@given(edits=_edits)
def test_config_loader(edits: list[tuple[tuple[object, ...], str, object]]) -> None:
    text = yaml.safe_dump(_edited(edits), allow_unicode=True)
    loaded = _load_or_refuse(text)
    if isinstance(loaded, ConfigError):
        assert loaded.issues
        lines = text.count("\n") + 1
        assert all(issue.line is None or 1 <= issue.line <= lines for issue in loaded.issues)
        assert all(issue.file == "fuzz.yaml" for issue in loaded.issues)
    else:
        assert isinstance(loaded, Settings)


def _load_or_refuse(text: str) -> Settings | ConfigError:
    try:
        return load_text(text, source_name="fuzz.yaml", environ=_ENVIRON)
    except ConfigError as error:
        return error


def test_the_unedited_example_loads() -> None:
    """Guard: the mutations start from a configuration that loads."""
    assert isinstance(load_text(yaml.safe_dump(_BASE), environ=_ENVIRON), Settings)


# -- the partner verifiers and the Didit webhook verifier -----------------------------------

_WHSEC = "whsec_" + base64.b64encode(b"fuzz-standard-webhooks-secret!!").decode()
_HMAC_SECRET = "fz-hmac-secret-Jq7Wm2Xk9Lp4"
_JWT_KEY = "fz-jwt-hs256-key-Rn5Tb8Yc3Vd6-long"
_API_KEY = "fz-api-key-Gh4Sd9Kw2Mz7"
_DIDIT_SECRET = "fz-didit-secret-Ua3Qe8Po1Ix6"

#: A header edit: drop a header, set it (any case) to a value, or add junk.
_header_values = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="v1,0123456789abcdef= .-_", max_size=120),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(["Bearer ", "Bearer a.b.c", "v1,", "v1a,xx", " ", "\x00", "\ud800"]),
    st.integers(),
    st.none(),
    st.binary(max_size=20),
)
_header_edits = st.lists(
    st.tuples(
        st.sampled_from(["drop", "set", "upper"]),
        st.integers(min_value=0, max_value=7),
        _header_values,
    ),
    max_size=3,
)


def _apply(headers: dict[str, Any], edits: list[tuple[str, int, object]]) -> dict[str, Any]:
    edited = dict(headers)
    for edit, position, value in edits:
        names = sorted(edited) or ["x-junk"]
        name = names[position % len(names)]
        if edit == "drop":
            edited.pop(name, None)
        elif edit == "upper":
            edited[name.upper()] = edited.pop(name, value)
        else:
            edited[name] = value
    return edited


def _check(verifier: Verifier, body: bytes, headers: Mapping[str, Any], now: float) -> None:
    verifies_or_refuses(lambda: verifier.verify(body, headers, now=now))


_offsets = st.integers(min_value=-2 * TOLERANCE_S, max_value=2 * TOLERANCE_S) | st.integers()
_message_ids = st.from_regex(r"[!-~]{1,40}", fullmatch=True) | st.just("msg_1")


@fuzz_settings(400)
@given(
    body=hostile_bodies,
    msg_id=_message_ids,
    offset=_offsets,
    edits=_header_edits,
)
def test_standard_webhooks_verifier(
    body: bytes, msg_id: str, offset: int, edits: list[tuple[str, int, object]]
) -> None:
    sent_at = int(NOW) + offset
    headers = StandardWebhooksSigner([_WHSEC]).headers(msg_id, sent_at, body)
    _check(StandardWebhooksVerifier([_WHSEC], TOLERANCE_S), body, _apply(headers, edits), NOW)


_HMAC_VARIANTS: list[tuple[str, str, bool]] = [
    ("sha256", "hex", True),
    ("sha512", "base64", True),
    ("sha256", "base64", False),
]


@fuzz_settings(500)
@given(
    body=hostile_bodies,
    variant=st.sampled_from(_HMAC_VARIANTS),
    offset=_offsets,
    edits=_header_edits,
)
def test_hmac_verifier(
    body: bytes, variant: tuple[str, str, bool], offset: int, edits: list[tuple[str, int, object]]
) -> None:
    algorithm, encoding, stamped = variant
    sent_at = int(NOW) + offset if stamped else None
    verifier = HmacVerifier(
        [_HMAC_SECRET],
        algorithm=algorithm,  # type: ignore[arg-type]
        encoding=encoding,  # type: ignore[arg-type]
        signature_header="X-Signature",
        timestamp_header="X-Timestamp" if stamped else None,
        tolerance_s=TOLERANCE_S,
    )
    signature = sign_hmac(
        _HMAC_SECRET,
        body,
        algorithm=algorithm,  # type: ignore[arg-type]
        encoding=encoding,  # type: ignore[arg-type]
        timestamp=sent_at,
    )
    headers = {"X-Signature": signature}
    if sent_at is not None:
        headers["X-Timestamp"] = str(sent_at)
    _check(verifier, body, _apply(headers, edits), NOW)


_jwt_claims = st.fixed_dictionaries(
    {},
    optional={
        "iat": _time_values,
        "exp": _time_values,
        "nbf": _time_values,
        "iss": st.just("initech") | json_values,
        "aud": st.just("our-app") | st.just(["our-app", "x"]) | json_values,
        "jti": st.text(max_size=300) | json_values,
        "body_sha256": json_values,
    },
)
_JWT_VERIFIER = JwtVerifier(
    algorithms=["HS256"],
    keys=[_JWT_KEY],
    issuer="initech",
    audience="our-app",
    max_age_s=TOLERANCE_S,
    body_hash_claim="body_sha256",
)


@fuzz_settings(500)
@given(
    body=hostile_bodies,
    claims=_jwt_claims,
    offset=_offsets,
    jti=st.none() | st.text(max_size=40),
    scheme=st.sampled_from(["Bearer ", "bearer ", "Bearer  ", ""]),
    edits=_header_edits,
)
def test_jwt_verifier(
    body: bytes,
    claims: dict[str, Any],
    offset: int,
    jti: str | None,
    scheme: str,
    edits: list[tuple[str, int, object]],
) -> None:
    """Correctly signed bearer tokens whose claims are anything a partner could put there."""
    if claims:  # signed by hand: pyjwt refuses to encode some of what a forger can send
        issued = {"iat": int(NOW) + offset, "exp": int(NOW) + offset + 60}
        token = _hs256({**issued, "iss": "initech", "aud": "our-app", **claims})
    else:
        token = sign_jwt(
            body,
            _JWT_KEY,
            now=NOW + offset,
            issuer="initech",
            audience="our-app",
            jti=jti,
            body_hash_claim="body_sha256",
        )
    headers = {"Authorization": scheme + token}
    _check(_JWT_VERIFIER, body, _apply(headers, edits), NOW)


def _hs256(claims: Mapping[str, Any]) -> str:
    header = _b64(b'{"alg":"HS256","typ":"JWT"}')
    signing_input = f"{header}.{_b64(_json_segment(claims))}"
    signature = hmac.new(_JWT_KEY.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


@fuzz_settings(300)
@given(
    body=hostile_bodies,
    key=st.just(_API_KEY) | st.text(max_size=40),
    edits=_header_edits,
)
def test_api_key_verifier(body: bytes, key: str, edits: list[tuple[str, int, object]]) -> None:
    verifier = ApiKeyVerifier("X-Api-Key", [_API_KEY])
    _check(verifier, body, _apply({"X-Api-Key": key}, edits), NOW)


_webhook_payloads = st.fixed_dictionaries(
    {},
    optional={
        "session_id": json_values,
        "status": st.sampled_from(["Approved", "Declined", "In Progress"]) | json_values,
        "webhook_type": st.just("status.updated") | json_values,
        "created_at": _time_values,
        "timestamp": _time_values,
        "vendor_data": json_values,
        "decision": json_values,
    },
).flatmap(lambda fixed: json_objects.map(lambda extra: {**extra, **fixed}))


def _signed_didit(payload: dict[str, Any], stamp: int | None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload, allow_nan=False).encode()
    headers = sign_didit_webhook(_DIDIT_SECRET, body, timestamp=stamp or int(NOW))
    if stamp is None:
        del headers["X-Timestamp"]
    return body, headers


_didit_payloads = _webhook_payloads.filter(lambda payload: _finite_json(payload) is not None)


def _finite_json(payload: object) -> bytes | None:
    try:
        return json.dumps(payload, allow_nan=False).encode()
    except ValueError:
        return None


@fuzz_settings(200)
@given(
    payload=_didit_payloads,
    stamp=st.none() | _offsets.map(lambda offset: int(NOW) + offset),
    edits=_header_edits,
    signed=st.sampled_from(["all", "v2", "raw", "simple"]),
    body=st.none() | hostile_bodies,
)
def test_didit_webhook_verifier(
    payload: dict[str, Any],
    stamp: int | None,
    edits: list[tuple[str, int, object]],
    signed: str,
    body: bytes | None,
) -> None:
    """Didit's three signatures over payloads of any shape (and a body swapped after signing)."""
    signed_body, headers = _signed_didit(payload, stamp)
    if signed != "all":
        keep = {"v2": "X-Signature-V2", "raw": "X-Signature", "simple": "X-Signature-Simple"}
        headers = {k: v for k, v in headers.items() if k in (keep[signed], "X-Timestamp")}
    verifier = DiditWebhookVerifier([_DIDIT_SECRET], TOLERANCE_S)
    _check(verifier, signed_body if body is None else body, _apply(headers, edits), NOW)


#: What ``python -m tests.fuzz`` runs, by name.
TARGETS: dict[str, Callable[..., None]] = {
    "tokens": test_share_token_reader,
    "config": test_config_loader,
    "standard_webhooks": test_standard_webhooks_verifier,
    "hmac": test_hmac_verifier,
    "jwt": test_jwt_verifier,
    "api_key": test_api_key_verifier,
    "didit": test_didit_webhook_verifier,
}
