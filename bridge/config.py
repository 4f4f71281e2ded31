"""YAML -> validated, frozen Settings (DESIGN.md section 3).

The models below are the whole configuration language; their validators check everything that
can be checked before the first request arrives. Loading is at the bottom of this module:
``load(path)`` reads YAML keeping line numbers, interpolates ``${VAR}`` and ``${VAR:-default}``,
validates, and either returns a ``Settings`` or raises one ``ConfigError`` listing every problem
as ``file:line: key.path: message``.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

import jwt
import yaml
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from bridge.errors import ConfigError, ConfigIssue
from bridge.types import EventType, SessionKind

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]  # a location below the validated value, and a message


class _Problems(ValueError):
    """Several problems under one value; ``load`` reports each at its own key and line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{format_path(loc)}: {m}" if loc else m for loc, m in problems))


def _raise_problems(problems: Sequence[Problem]) -> None:
    if problems:
        raise _Problems(problems)


# -- small checks shared by the models; messages never echo a value that may be a secret ---------

_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)
_MIN_HS256_KEY_BYTES = 32  # RFC 7518 section 3.2; pyjwt warns below it
_MIN_RSA_BITS = 2048
AUTH_SCHEMES = ("standard-webhooks", "hmac", "jwt", "api-key")
_PUBLIC_KEY_ALGORITHMS: dict[str, RSAAlgorithm | ECAlgorithm] = {
    "RS256": RSAAlgorithm(RSAAlgorithm.SHA256),
    "ES256": ECAlgorithm(ECAlgorithm.SHA256),
}


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a valid name: use a-z, 0-9, '-' and '_' (a URL segment)")
    return name


def _check_dot_path(path: str) -> str:
    if not path or any(not segment.strip() for segment in path.split(".")):
        raise ValueError(f"{path!r} is not a dot path like customer.id")
    return path


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
    return url


def _whsec_problem(secret: str) -> str | None:
    if not secret.startswith("whsec_"):
        return "must be a Standard Webhooks secret: whsec_ followed by base64"
    try:
        decoded = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return "the part after whsec_ must be valid base64"
    return None if decoded else "the part after whsec_ must decode to at least 1 byte"


def _empty_problem(secret: str) -> str | None:
    return None if secret.strip() else "must not be empty"


def _secret_problems(
    secrets: Sequence[SecretStr], problem: Callable[[str], str | None] = _empty_problem
) -> list[Problem]:
    if not secrets:
        return [((), "at least one is required (several while rotating)")]
    found = ((i, problem(secret.get_secret_value())) for i, secret in enumerate(secrets))
    return [((i,), message) for i, message in found if message]


def _public_key_problem(pem: str, algorithms: Collection[str]) -> str | None:
    if "PRIVATE KEY" in pem:
        return "this is a private key: configure the partner's public key"
    for algorithm in sorted(algorithms):
        try:
            key = _PUBLIC_KEY_ALGORITHMS[algorithm].prepare_key(pem)
        except (jwt.InvalidKeyError, ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if isinstance(key, rsa.RSAPublicKey) and algorithm == "RS256":
            small = key.key_size < _MIN_RSA_BITS
            return f"the RSA key must have at least {_MIN_RSA_BITS} bits" if small else None
        if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
            return None
    hint = " (the variable holds a literal \\n: use real newlines)" if "\\n" in pem else ""
    return f"not a PEM public key for {' or '.join(sorted(algorithms))}{hint}"


def _jwks_problem(path: str) -> str | None:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    except ValueError:
        return f"{path} is not JSON"
    try:
        if not isinstance(document, dict):
            raise jwt.PyJWKSetError("the document is not an object with keys")
        jwt.PyJWKSet.from_dict(document)
    except (jwt.PyJWKSetError, jwt.PyJWKError, jwt.InvalidKeyError) as exc:
        return f"{path} is not a usable JWKS: {exc}"
    return None


# -- vendor_data templates --------------------------------------------------------------------

_TEMPLATE_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")  # plain substitution, no escapes
_TEMPLATE_ROOTS = ("partner", "event_id", "payload", "claims")


def _template_placeholders(template: str) -> tuple[str, ...]:  # rendering is bridge.rules' job
    return tuple(match.group(1) for match in _TEMPLATE_PLACEHOLDER.finditer(template))


def _check_template(template: str) -> str:
    if not template.strip():
        raise ValueError("must not be empty: reconciliation finds imported sessions by it")
    if set("{}") & set(_TEMPLATE_PLACEHOLDER.sub("", template)):
        raise ValueError("unbalanced brace: a placeholder looks like {payload.customer.id}")
    for name in _template_placeholders(template):
        root, dot, rest = name.partition(".")
        if root in ("partner", "event_id") and dot:
            raise ValueError(f"{{{name}}}: {root} has no fields; write {{{root}}}")
        if root in ("payload", "claims") and (
            not dot or not all(s.strip() for s in rest.split("."))
        ):
            raise ValueError(f"{{{name}}}: {root} needs a path, like {{{root}.customer.id}}")
        if root not in _TEMPLATE_ROOTS:
            raise ValueError(
                f"unknown placeholder {{{name}}}: it must start with partner, event_id, "
                "payload. or claims."
            )
    return template


# -- the models -------------------------------------------------------------------------------

_Name = Annotated[str, AfterValidator(_check_name)]
_DotPath = Annotated[str, AfterValidator(_check_dot_path)]
_HeaderName = Annotated[str, AfterValidator(_check_header)]
_HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)  # a YAML typo is an error


class DiditSettings(_Model):
    base_url: _HttpUrl = "https://verification.didit.me"
    api_key: SecretStr
    application_id: UUID  # ours: a token for another application is refused at intake
    timeout_s: float = Field(default=15.0, gt=0)
    rate_limit_per_minute: int = Field(default=300, gt=0)  # the key's write quota
    max_in_flight: int = Field(default=8, gt=0)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, url: str) -> str:
        return url.rstrip("/")  # paths are appended to it

    @field_validator("api_key")
    @classmethod
    def _api_key_set(cls, key: SecretStr) -> SecretStr:
        if not key.get_secret_value().strip():
            raise ValueError("must not be empty")
        return key


class StoreSettings(_Model):
    url: str = "sqlite:///data/bridge.db"  # or postgresql://user@host:5432/db

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
            return url
        if url.startswith("postgresql://") and len(url) > len("postgresql://"):
            return url
        raise ValueError("must be sqlite:///PATH or postgresql://user@host:5432/db")


class ServerSettings(_Model):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=65536, gt=0)

    @field_validator("host")
    @classmethod
    def _host_set(cls, host: str) -> str:
        if not host.strip():
            raise ValueError("must not be empty")
        return host


class StandardWebhooksAuth(_Model):
    scheme: Literal["standard-webhooks"]
    secrets: tuple[SecretStr, ...]  # whsec_...; several while rotating
    tolerance_s: int = Field(default=300, ge=0)

    @field_validator("secrets")
    @classmethod
    def _whsec(cls, secrets: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        _raise_problems(_secret_problems(secrets, _whsec_problem))
        return secrets


class HmacAuth(_Model):
    scheme: Literal["hmac"]
    secrets: tuple[SecretStr, ...]
    algorithm: Literal["sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    signature_header: _HeaderName = "X-Signature"
    timestamp_header: _HeaderName | None = None  # when set, the MAC covers "{timestamp}.{body}"
    tolerance_s: int = Field(default=300, ge=0)

    @field_validator("secrets")
    @classmethod
    def _secrets_set(cls, secrets: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        _raise_problems(_secret_problems(secrets))
        return secrets

    @model_validator(mode="after")
    def _distinct_headers(self) -> HmacAuth:
        if (self.timestamp_header or "").lower() == self.signature_header.lower():
            raise _Problems([(("timestamp_header",), "must differ from signature_header")])
        return self


class JwtAuth(_Model):
    scheme: Literal["jwt"]
    algorithms: tuple[Literal["HS256", "RS256", "ES256"], ...] = ("HS256",)
    key: SecretStr | None = None  # HS256 secret or PEM public key
    keys: tuple[SecretStr, ...] = ()  # several, while rotating
    jwks_file: str | None = None  # a JWKS document on disk, relative to the config file
    issuer: str | None = None
    audience: str | None = None
    max_age_s: int = Field(default=300, ge=0)  # iat may be at most this old (and not in the future)
    body_hash_claim: str | None = None  # the claim holding the hex SHA-256 of the raw body
    tolerance_s: int = Field(default=30, ge=0)  # clock skew allowed on exp/iat/nbf

    @property
    def verification_keys(self) -> tuple[SecretStr, ...]:
        """``key`` then ``keys``: every secret or PEM a token may be signed with."""
        return ((self.key,) if self.key is not None else ()) + self.keys

    @field_validator("jwks_file")
    @classmethod
    def _resolve_jwks_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("must be a file path")
        base_dir = (info.context or {}).get("base_dir")
        return str(Path(base_dir, value)) if base_dir is not None else value

    @model_validator(mode="after")
    def _usable_keys(self) -> JwtAuth:
        _raise_problems(self._key_problems())
        return self

    def _key_problems(self) -> list[Problem]:
        algorithms = set(self.algorithms)
        if not algorithms:
            return [(("algorithms",), "at least one algorithm is required")]
        if "HS256" in algorithms and len(algorithms) > 1:
            return [(("algorithms",), "HS256 cannot be combined with RS256 or ES256")]
        keys: list[tuple[Loc, str]] = [
            (("keys", i), key.get_secret_value()) for i, key in enumerate(self.keys)
        ]
        if self.key is not None:
            keys.insert(0, (("key",), self.key.get_secret_value()))
        if algorithms == {"HS256"}:
            short = f"an HS256 secret must be at least {_MIN_HS256_KEY_BYTES} bytes"
            problems = [
                (loc, short) for loc, key in keys if len(key.encode()) < _MIN_HS256_KEY_BYTES
            ]
            if self.jwks_file is not None:
                problems.append((("jwks_file",), "a JWKS holds public keys: use RS256 or ES256"))
            return (
                problems if keys else [(("key",), "HS256 needs the shared secret in key or keys")]
            )
        if not keys and self.jwks_file is None:
            return [(("key",), "needs the partner's PEM public key in key or keys, or a jwks_file")]
        found = [(loc, _public_key_problem(pem, algorithms)) for loc, pem in keys]
        if self.jwks_file is not None:
            found.append((("jwks_file",), _jwks_problem(self.jwks_file)))
        return [(loc, message) for loc, message in found if message]


class ApiKeyAuth(_Model):
    scheme: Literal["api-key"]
    header: _HeaderName = "X-Api-Key"
    keys: tuple[SecretStr, ...]

    @field_validator("keys")
    @classmethod
    def _keys_set(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        _raise_problems(_secret_problems(keys))
        return keys


PartnerAuth = Annotated[
    StandardWebhooksAuth | HmacAuth | JwtAuth | ApiKeyAuth, Field(discriminator="scheme")
]


class PartnerFields(_Model):
    share_token: _DotPath = "share_token"  # noqa: S105 - a dot path into the body, not a secret
    event_id: _DotPath = "event_id"

    @model_validator(mode="after")
    def _distinct(self) -> PartnerFields:
        if self.share_token == self.event_id:
            raise _Problems([(("event_id",), "must differ from share_token")])
        return self


class Partner(_Model):
    auth: PartnerAuth
    fields: PartnerFields = PartnerFields()


class RegexMatcher(_Model):
    regex: str

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str) -> str:
        try:
            re.compile(regex)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from None
        return regex

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.regex)  # the re module caches compiled patterns


class ExistsMatcher(_Model):
    exists: bool


def _matcher_kind(value: object) -> str | None:
    if isinstance(value, dict):
        return "{regex}" if "regex" in value else "{exists}" if "exists" in value else None
    if isinstance(value, RegexMatcher | ExistsMatcher):
        return "{regex}" if isinstance(value, RegexMatcher) else "{exists}"
    return "[values]" if isinstance(value, list | tuple) else "value"


Scalar = str | int | float | bool | None
Matcher = Annotated[
    Annotated[RegexMatcher, Tag("{regex}")]
    | Annotated[ExistsMatcher, Tag("{exists}")]
    | Annotated[list[Scalar], Tag("[values]")]
    | Annotated[Scalar, Tag("value")],
    Discriminator(
        _matcher_kind,
        custom_error_type="invalid_matcher",
        custom_error_message=(
            "a matcher is a value, a list of values, {regex: ...} or {exists: true|false}"
        ),
    ),
]


class RuleWhen(_Model):
    partner: str | list[str] | None = None
    session_kind: SessionKind | None = None  # from the token; absent means user
    payload: dict[_DotPath, Matcher] = {}  # dot path -> matcher
    claims: dict[_DotPath, Matcher] = {}

    @field_validator("partner", mode="before")
    @classmethod
    def _partner_names(cls, value: object) -> object:
        if isinstance(value, list | tuple) and not value:
            raise ValueError("an empty list matches no partner")
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list | tuple) and all(isinstance(name, str) for name in value):
            return list(value)
        raise ValueError("expected a partner name or a list of names")


class RuleThen(_Model):
    workflow_id: UUID
    vendor_data: Annotated[str, AfterValidator(_check_template)]  # {partner} {payload.x.y} ...
    trust_review: bool = False
    destinations: tuple[str, ...] = ()

    @field_validator("destinations")
    @classmethod
    def _no_repeats(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        repeats = [((i,), "listed twice") for i, name in enumerate(names) if name in names[:i]]
        _raise_problems(repeats)
        return names


class Rule(_Model):
    name: str
    when: RuleWhen = RuleWhen()
    then: RuleThen

    @field_validator("name")
    @classmethod
    def _name_set(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("must not be empty")
        return name


_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")


class Destination(_Model):
    url: _HttpUrl
    secrets: tuple[SecretStr, ...]  # whsec_...; several = dual-signing during rotation
    events: tuple[EventType, ...] = tuple(EventType)
    timeout_s: float = Field(default=15.0, gt=0)
    retry_schedule: tuple[str, ...] = ("5s", "5m", "30m", "2h", "5h", "10h", "10h")
    rate_limit_per_second: float = Field(default=50.0, gt=0)
    max_in_flight: int = Field(default=4, gt=0)

    @property
    def retry_delays_s(self) -> tuple[float, ...]:
        """The retry schedule in seconds: ``("5s", "5m")`` -> ``(5.0, 300.0)``."""
        return tuple(parse_duration(step) for step in self.retry_schedule)

    @field_validator("secrets")
    @classmethod
    def _whsec(cls, secrets: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        _raise_problems(_secret_problems(secrets, _whsec_problem))
        return secrets

    @field_validator("events")
    @classmethod
    def _events(cls, events: tuple[EventType, ...]) -> tuple[EventType, ...]:
        if not events:
            raise ValueError("subscribe to at least one event type")
        _raise_problems([((i,), "listed twice") for i, e in enumerate(events) if e in events[:i]])
        return events

    @field_validator("retry_schedule")
    @classmethod
    def _durations(cls, schedule: tuple[str, ...]) -> tuple[str, ...]:
        if not schedule:
            raise ValueError("at least one retry delay is required, like [5s, 5m, 2h]")
        problems: list[Problem] = []
        for i, step in enumerate(schedule):
            try:
                parse_duration(step)
            except ValueError as exc:
                problems.append(((i,), str(exc)))
        _raise_problems(problems)
        return schedule


class DiditWebhooks(_Model):
    secrets: tuple[SecretStr, ...]
    tolerance_s: int = Field(default=300, ge=0)

    @field_validator("secrets")
    @classmethod
    def _secrets_set(cls, secrets: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        _raise_problems(_secret_problems(secrets))
        return secrets


class AdminSettings(_Model):
    token: SecretStr

    @field_validator("token")
    @classmethod
    def _token_set(cls, token: SecretStr) -> SecretStr:
        if not token.get_secret_value().strip():
            raise ValueError("must not be empty")
        return token


class LoggingSettings(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class Settings(_Model):
    didit: DiditSettings
    store: StoreSettings = StoreSettings()
    server: ServerSettings = ServerSettings()
    partners: dict[_Name, Partner]
    rules: tuple[Rule, ...]
    destinations: dict[_Name, Destination] = {}
    didit_webhooks: DiditWebhooks | None = None
    admin: AdminSettings | None = None
    logging: LoggingSettings = LoggingSettings()

    def rule_by_name(self, name: str) -> Rule | None:
        """The rule called ``name``, or None (rule names are unique)."""
        return next((rule for rule in self.rules if rule.name == name), None)

    @field_validator("partners")
    @classmethod
    def _some_partners(cls, partners: dict[str, Partner]) -> dict[str, Partner]:
        if not partners:
            raise ValueError("at least one partner is required")
        return partners

    @field_validator("rules")
    @classmethod
    def _some_rules(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        if not rules:
            raise ValueError(
                "at least one rule is required: a notification no rule matches is refused"
            )
        return rules

    @model_validator(mode="after")
    def _references(self) -> Settings:
        rules = [rule.model_dump() for rule in self.rules]
        _raise_problems(_reference_problems(rules, self.partners, self.destinations))
        return self


def _reference_problems(
    rules: Sequence[object], partners: Collection[str], destinations: Collection[str]
) -> list[Problem]:
    """Checks across sections. Written over plain data, so ``load`` can run them on a file whose
    other parts failed validation, and report everything in one go."""
    problems: list[Problem] = []
    first_use: dict[str, int] = {}
    catch_all: int | None = None
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            continue
        name, when, then = rule.get("name"), rule.get("when") or {}, rule.get("then")
        if isinstance(name, str) and name in first_use:
            problems.append(
                (("rules", i, "name"), f"duplicate rule name (rules[{first_use[name]}])")
            )
        elif isinstance(name, str):
            first_use[name] = i
        if catch_all is not None:
            problems.append((("rules", i), f"unreachable: rules[{catch_all}] matches everything"))
        if isinstance(when, Mapping):
            if catch_all is None and not any(when.values()):
                catch_all = i
            problems += _unknown_names(
                when.get("partner"), partners, ("rules", i, "when", "partner"), "partner"
            )
        if isinstance(then, Mapping):
            where = ("rules", i, "then", "destinations")
            problems += _unknown_names(then.get("destinations"), destinations, where, "destination")
    return problems


def _unknown_names(value: object, known: Collection[str], loc: Loc, kind: str) -> list[Problem]:
    names: list[tuple[Loc, object]] = [(loc, value)] if isinstance(value, str) else []
    if isinstance(value, list | tuple):
        names = [((*loc, k), name) for k, name in enumerate(value)]
    defined = ", ".join(sorted(known)) or "none"
    return [
        (where, f"unknown {kind} {name!r} (defined: {defined})")
        for where, name in names
        if isinstance(name, str) and name not in known
    ]


def parse_duration(text: str) -> float:
    """``"5s"`` -> 5.0 seconds; ``ms``, ``s``, ``m``, ``h`` and ``d`` are understood."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a duration like 5s, 5m or 2h: {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return amount * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}[unit]


def format_path(loc: Sequence[str | int]) -> str:
    """``("rules", 0, "then", "workflow_id")`` -> ``"rules[0].then.workflow_id"``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


# -- loading: YAML with line numbers, ${VAR} interpolation, every problem at once ---------------


class _Loader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 core scalars: ``NO``, ``on`` and ``10:30`` stay strings."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # our own, not SafeLoader's


for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("merge", r"^<<$", "<"),
):
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))

_YAML_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # as YAML counts lines
_MAX_NODES = 100_000  # a document this large is an alias bomb, not a configuration
_MAP_TAG, _SEQ_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _YamlProblem(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        self.line, self.message = node.start_mark.line + 1, message
        super().__init__(message)


class _Document:
    """Plain data built from the YAML node tree, with the line of every key and list item."""

    def __init__(self, loader: _Loader, root: yaml.Node) -> None:
        self.lines: dict[Loc, int] = {(): root.start_mark.line + 1}
        self.issues: list[tuple[Loc, int, str]] = []
        self._loader, self._budget = loader, _MAX_NODES
        self._open: set[int] = set()
        self._seen: set[int] = set()
        self.data = self._build(root, ())

    def line(self, loc: Loc) -> int:
        """The line of the deepest key of ``loc`` present in the file."""
        while loc not in self.lines:
            loc = loc[:-1]
        return self.lines[loc]

    def _build(self, node: yaml.Node, loc: Loc) -> Any:
        self._budget -= 1
        if self._budget < 0:
            raise _YamlProblem(node, "the document is too large (aliases expand to too much)")
        if isinstance(node, yaml.ScalarNode):
            try:
                return self._loader.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, OverflowError):
                raise _YamlProblem(node, f"invalid value for the tag {node.tag}") from None
        if id(node) in self._open:
            raise _YamlProblem(node, "an alias refers to its own parent")
        if node.tag not in (_MAP_TAG, _SEQ_TAG) and id(node) not in self._seen:
            self.issues.append((loc, node.start_mark.line + 1, f"unsupported YAML tag {node.tag}"))
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, loc)
            return [self._item(item, (*loc, i), item) for i, item in enumerate(node.value)]
        finally:
            self._open.discard(id(node))
            self._seen.add(id(node))

    def _item(self, node: yaml.Node, loc: Loc, at: yaml.Node) -> Any:
        """Build ``node`` as the value at ``loc``, whose line is where ``at`` (key or item) is."""
        self.lines[loc] = at.start_mark.line + 1
        return self._build(node, loc)

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, Any]:
        if id(node) not in self._seen:  # an alias visits a node again: report its keys once
            self._check_duplicates(node, loc)
        self._loader.flatten_mapping(node)  # applies "<<" merge keys
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.issues.append((loc, key_node.start_mark.line + 1, "a key must be a string"))
                continue
            result[key_node.value] = self._item(value_node, (*loc, key_node.value), key_node)
        return result

    def _check_duplicates(self, node: yaml.MappingNode, loc: Loc) -> None:
        first: dict[str, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and not key_node.tag.endswith(":merge"):
                line = key_node.start_mark.line + 1
                if key_node.value in first:
                    where = (*loc, key_node.value)
                    self.issues.append(
                        (where, line, f"duplicate key (also at line {first[key_node.value]})")
                    )
                first.setdefault(key_node.value, line)


def _parse(text: str, source: str) -> _Document:
    def fail(line: int | None, message: str) -> ConfigError:
        parts = _YAML_LINE_BREAK.split(text)  # an error at the very end is on the last line
        last = max(1, len(parts) - (parts[-1] == ""))
        return ConfigError([ConfigIssue(source, min(line, last) if line else line, "", message)])

    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        line = len(_YAML_LINE_BREAK.findall(text, 0, exc.position)) + 1
        raise fail(line, "invalid YAML: a control character is not allowed") from None
    try:
        root = loader.get_single_node()
        if root is None:
            raise fail(None, "the file is empty")
        return _Document(loader, root)
    except _YamlProblem as exc:
        raise fail(exc.line, exc.message) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise fail(mark.line + 1 if mark else None, f"invalid YAML: {_yaml_message(exc)}") from None
    except yaml.YAMLError as exc:
        raise fail(None, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise fail(None, "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    problem, context = exc.problem or "", exc.context or ""
    if problem.startswith("but ") and context:  # "expected a single document ... but found ..."
        return f"{context} {problem}"
    return f"{problem} ({context})" if problem and context else problem or context or "syntax error"


_REFERENCE = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_VARIABLE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def _interpolate(value: Any, environ: Mapping[str, str], loc: Loc, problems: list[Problem]) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string; ``$${`` is a literal ``${``."""
    if isinstance(value, dict):
        return {k: _interpolate(v, environ, (*loc, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ, (*loc, i), problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        body = match.group("body")
        if match.group(0) == "$${":
            return "${"
        reference = _VARIABLE.fullmatch(body) if body is not None else None
        if reference is None:
            problems.append((loc, "malformed ${...}: write ${NAME} or ${NAME:-default}"))
            return match.group(0)
        found, default = environ.get(reference["name"]), reference["default"]
        if default is not None and not found:  # as in the shell, ":-" also covers empty
            return default
        if found is None:
            problems.append((loc, f"environment variable {reference['name']} is not set"))
            return match.group(0)
        return found

    return _REFERENCE.sub(substitute, value)


_TYPE_MESSAGES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "none_required": "null",
    "uuid_type": "a UUID like 3c5b9a2e-0000-4000-8000-000000000001",
    "uuid_parsing": "a UUID like 3c5b9a2e-0000-4000-8000-000000000001",
}


def _known_keys() -> frozenset[str]:
    models: list[type[BaseModel]] = [_Model]
    names: set[str] = set()
    while models:
        model = models.pop()
        names.update(model.model_fields)
        models.extend(model.__subclasses__())
    return frozenset(names)


_ABSENT = object()


def _walk(data: Any, loc: Sequence[str | int], *, missing: bool) -> tuple[Loc, Loc]:
    """Split a pydantic error location into the path in the data and the union tags in it."""
    path: list[str | int] = []
    tags: list[str | int] = []
    for i, part in enumerate(loc):
        if part == "[key]":  # the error is about the key just walked, not below it
            continue
        child: Any = _ABSENT
        if isinstance(data, dict):
            child = data.get(part, _ABSENT)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            child = data[part]
        if child is not _ABSENT:
            data = child
        elif not (missing and i == len(loc) - 1):
            tags.append(part)
            continue
        path.append(part)
    return tuple(path), tuple(tags)


def _at(data: Any, path: Loc) -> Any:
    for part in path:
        data = data[part]
    return data


def _message(error: ErrorDetails, path: Loc, data: Any) -> tuple[Loc, str]:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "missing":
        return path, "required key is missing"
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(path[-1]), _known_keys(), n=1, cutoff=0.75)
        return path, "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "union_tag_invalid":  # the only tagged union with a key is PartnerAuth's scheme
        scheme = _at(data, path).get("scheme")
        named = f"unknown scheme {scheme!r}: " if isinstance(scheme, str) else ""
        return (*path, "scheme"), f"{named}expected one of {', '.join(AUTH_SCHEMES)}"
    if kind == "union_tag_not_found":
        return (*path, "scheme"), f"required key is missing: one of {', '.join(AUTH_SCHEMES)}"
    if kind == "value_error":
        return path, str(ctx.get("error", error["msg"]))
    if kind in _TYPE_MESSAGES:
        return path, f"expected {_TYPE_MESSAGES[kind]}"
    message = error["msg"].replace("Input should be", "must be")
    return path, message[:1].lower() + message[1:]


def _validation_problems(exc: ValidationError, data: Any) -> list[Problem]:
    problems: list[Problem] = []
    groups: dict[Loc, list[tuple[Loc, ErrorDetails]]] = {}
    for error in exc.errors(include_url=False):
        path, tags = _walk(data, error["loc"], missing=error["type"] == "missing")
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _Problems):
            problems += [((*path, *sub), message) for sub, message in cause.problems]
        else:
            groups.setdefault(path, []).append((tags, error))
    for path, errors in groups.items():
        if len({tags for tags, _ in errors}) > 1:  # no member of a union accepted the value
            kinds = dict.fromkeys(_TYPE_MESSAGES.get(e["type"], e["msg"]) for _, e in errors)
            problems.append((path, "expected " + " or ".join(kinds)))
        else:
            problems += [_message(error, path, data) for _, error in errors]
    return problems


def _names(data: dict[str, Any], section: str) -> Collection[str]:
    value = data.get(section)
    return value if isinstance(value, dict) else ()


def load_text(
    text: str,
    *,
    source_name: str = "<config>",
    environ: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> Settings:
    """Parse, interpolate and validate YAML text; raise ``ConfigError`` with every problem.

    ``source_name`` prefixes each issue; ``base_dir`` anchors relative paths (``jwks_file``).
    """
    document = _parse(text, source_name)
    unset: list[Problem] = []
    data = _interpolate(document.data, os.environ if environ is None else environ, (), unset)
    if not isinstance(data, dict):
        message = "the top level must be a mapping of sections: didit, partners, rules, ..."
        raise ConfigError([ConfigIssue(source_name, document.line(()), "", message)])
    settings: Settings | None = None
    problems: list[Problem] = []
    try:
        settings = Settings.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems = _validation_problems(exc, data)
        if isinstance(data.get("rules"), list):  # the cross-section checks did not run: run them
            partners, destinations = _names(data, "partners"), _names(data, "destinations")
            problems += _reference_problems(data["rules"], partners, destinations)
    # a value whose variable is unset was reported as such: what else it breaks is noise
    problems = unset + [p for p in problems if not any(p[0][: len(u)] == u for u, _ in unset)]
    issues = [
        ConfigIssue(source_name, line, format_path(loc), m) for loc, line, m in document.issues
    ]
    issues += [
        ConfigIssue(source_name, document.line(loc), format_path(loc), m) for loc, m in problems
    ]
    if issues or settings is None:
        raise ConfigError(sorted(dict.fromkeys(issues), key=lambda i: (i.line or 0, i.path)))
    return settings


def load(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Settings:
    """Load the configuration file at ``path``; ``environ`` defaults to ``os.environ``.

    Raises ``ConfigError`` listing every problem as ``file:line: key.path: message``, including
    an unreadable file and YAML syntax errors; never another exception for bad input.
    """
    source = os.fspath(path)
    try:
        text = Path(source).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            [ConfigIssue(source, None, "", f"cannot read the file: {reason}")]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue(source, None, "", "the file is not UTF-8 text")]) from None
    return load_text(text, source_name=source, environ=environ, base_dir=Path(source).parent)
