"""``bridge.config.load``: YAML with lines, ``${VAR}`` interpolation, validation, helpers."""

from __future__ import annotations

import base64
import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import BaseModel, ValidationError

from bridge.config import (
    AUTH_SCHEMES,
    Settings,
    format_path,
    load,
    load_text,
    load_text_with_warnings,
    parse_duration,
)
from bridge.errors import ConfigError
from bridge.types import EventType, SessionKind
from tests.config.conftest import (
    APPLICATION_ID,
    EXAMPLE,
    HS256_KEY,
    HS256_NEXT_KEY,
    MINIMAL,
    PARTNER_KEY,
    WHSEC,
    public_pem,
)


def issues(text: str, environ: dict[str, str] | None = None, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_text(text, source_name="b.yaml", environ=environ or {}, **kwargs)  # type: ignore[arg-type]
    return [str(issue) for issue in error.value.issues]


def _models(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """Every model reachable from ``model`` through its fields."""
    seen: set[type[BaseModel]] = set()
    todo = [model]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        yield current
        for field in current.model_fields.values():
            todo += [
                t
                for t in _types(field.annotation)
                if isinstance(t, type) and issubclass(t, BaseModel)
            ]


def _types(annotation: object) -> Iterator[object]:
    yield annotation
    for argument in getattr(annotation, "__args__", ()) + getattr(annotation, "__metadata__", ()):
        yield from _types(argument)


def with_partner(auth: str) -> str:
    """MINIMAL plus a partner ``p`` with this (flow mapping) auth block, at line 8."""
    return MINIMAL.replace("rules:", f"  p:\n    auth: {auth}\nrules:")


class TestExample:
    def test_loads_with_every_scheme_and_matcher(self, example_environ: dict[str, str]) -> None:
        settings = load(EXAMPLE, example_environ)

        assert [p.auth.scheme for p in settings.partners.values()] == [
            "standard-webhooks", "hmac", "jwt", "api-key",
        ]  # fmt: skip
        assert str(settings.didit.application_id) == APPLICATION_ID
        assert settings.didit.base_url == "https://verification.didit.me"  # the default
        assert settings.didit.api_key.get_secret_value() == "test-didit-api-key"
        assert settings.store.url == "sqlite:///data/bridge.db"
        business, gold, initech, kyc = settings.rules
        assert business.when.session_kind is SessionKind.BUSINESS
        assert business.when.payload == {"region": ["EU", "UK"]}
        assert gold.when.partner == ["globex", "hooli"]
        assert gold.when.payload["tier"] == "gold"
        assert gold.when.payload["customer.email"].matches("x@hooli.com")  # type: ignore[union-attr]
        assert initech.when.claims["from_application_id"].exists is True  # type: ignore[union-attr]
        assert kyc.when.claims == {"session_kind": "user"}
        assert settings.destinations["crm"].retry_delays_s == (
            5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0,
        )  # fmt: skip
        assert EventType.STATUS_UPDATED not in settings.destinations["audit"].events
        assert settings.rule_by_name("initech-kyc") is initech
        assert settings.rule_by_name("nope") is None

    def test_documents_every_key_of_the_schema_with_a_comment(self) -> None:
        text = EXAMPLE.read_text()
        key = re.compile(r"(?:^\s*(?:- )?#?\s*|[{,]\s*)([a-z_]+):", re.MULTILINE)
        used = set(key.findall(text))
        commented = {
            name for line in text.splitlines() if "#" in line for name in key.findall(line)
        }
        fields = {
            field.alias or name
            for model in _models(Settings)
            for name, field in model.model_fields.items()
        }
        assert fields <= used, f"not in the example: {sorted(fields - used)}"
        assert used <= commented, f"never commented: {sorted(used - commented)}"


class TestInterpolation:
    def test_default_when_unset_or_empty_and_value_when_set(self) -> None:
        text = MINIMAL.replace("api_key: test-api-key", "api_key: ${KEY:-fallback}")
        assert load_text(text, environ={}).didit.api_key.get_secret_value() == "fallback"
        assert load_text(text, environ={"KEY": ""}).didit.api_key.get_secret_value() == "fallback"
        assert load_text(text, environ={"KEY": "real"}).didit.api_key.get_secret_value() == "real"

    def test_embedded_in_a_longer_string(self) -> None:
        text = MINIMAL + "destinations:\n  crm:\n    url: https://${HOST}:${PORT:-8443}/h?x=$${y}\n"
        text += f"    secrets: [{WHSEC}]\n"
        settings = load_text(text, environ={"HOST": "crm.internal"})
        assert settings.destinations["crm"].url == "https://crm.internal:8443/h?x=${y}"

    def test_numbers_and_booleans_come_through_strings(self) -> None:
        text = MINIMAL + "server: {port: '${PORT:-9000}', max_body_bytes: '${MAX}'}\n"
        text = text.replace(
            'vendor_data: "acme:{event_id}"', "vendor_data: x\n      trust_review: ${T}"
        )
        settings = load_text(text, environ={"MAX": "1024", "T": "true"})
        assert (settings.server.port, settings.server.max_body_bytes) == (9000, 1024)
        assert settings.rules[0].then.trust_review is True

    def test_a_missing_variable_names_itself_the_key_and_the_line(self) -> None:
        text = MINIMAL.replace(f"secrets: [{WHSEC}]", "secrets: ['$${literal}', '${ACME_WHSEC}']")
        assert issues(text) == [
            "b.yaml:6: partners.acme.auth.secrets[0]: must be a Standard Webhooks secret: whsec_ "
            "followed by base64",
            "b.yaml:6: partners.acme.auth.secrets[1]: environment variable ACME_WHSEC is not set",
        ]

    def test_an_unset_variable_is_reported_once_not_as_what_it_breaks(self) -> None:
        text = MINIMAL.replace("    then:", "    when: {partner: '${PARTNER}'}\n    then:", 1)
        text = text.replace(
            "workflow_id: 3c5b9a2e-0000-4000-8000-000000000002", "workflow_id: ${WF}"
        )
        assert issues(text) == [
            "b.yaml:9: rules[0].when.partner: "
            "rule 'acme-users': environment variable PARTNER is not set",
            "b.yaml:11: rules[0].then.workflow_id: "
            "rule 'acme-users': environment variable WF is not set",
        ]
        assert (
            load_text(text, environ={"PARTNER": "acme", "WF": APPLICATION_ID}).rules[0].when.partner
            == "acme"
        )

    def test_a_value_from_the_environment_is_never_quoted_by_an_error(self) -> None:
        """A secret's variable put in the wrong key is named in the error, its value never."""
        secret = "globex-secret-value-9f3a7c1e"
        text = MINIMAL.replace(
            '      vendor_data: "acme:{event_id}"\n',
            '      vendor_data: "acme:{event_id}"\n      destinations: ["${GLOBEX_SECRET}"]\n',
        )
        with pytest.raises(ConfigError) as caught:
            load_text(text, source_name="b.yaml", environ={"GLOBEX_SECRET": secret})
        message = str(caught.value)
        assert secret not in message
        assert "unknown destination '${GLOBEX_SECRET}'" in message

    def test_malformed_references(self) -> None:
        text = MINIMAL.replace("api_key: test-api-key", "api_key: ${1BAD}").replace(
            "acme:{event_id}", "${UNCLOSED"
        )
        assert issues(text) == [
            "b.yaml:2: didit.api_key: malformed ${...}: write ${NAME} or ${NAME:-default}",
            "b.yaml:11: rules[0].then.vendor_data: "
            "rule 'acme-users': malformed ${...}: write ${NAME} or "
            "${NAME:-default}",
        ]

    def test_keys_are_not_interpolated_and_environ_defaults_to_the_process(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SHARE_BRIDGE_TEST_KEY", "from-the-process")
        text = MINIMAL.replace("api_key: test-api-key", "api_key: ${SHARE_BRIDGE_TEST_KEY}")
        assert load_text(text).didit.api_key.get_secret_value() == "from-the-process"
        assert issues(MINIMAL.replace("  acme:", "  ${X}:"), {"X": "acme"}) == [
            "b.yaml:5: partners[\"${X}\"]: '${X}' is not a valid name: use a-z, 0-9, '-' and '_' "
            "(a URL segment)"
        ]


class TestLines:
    def test_block_and_flow_items_and_missing_keys(self) -> None:
        text = textwrap.dedent(f"""\
            didit:
              application_id: {APPLICATION_ID}
            partners:
              acme:
                auth: {{scheme: hmac, secrets: [{PARTNER_KEY}, '']}}
            rules:
              - name: first
                when: {{partner: acme}}
                then:
                  workflow_id: 3c5b9a2e-0000-4000-8000-000000000002
                  vendor_data: "x"
              -
                name: second
                then: {{vendor_data: "y"}}
            """)
        assert issues(text) == [
            "b.yaml:1: didit.api_key: required key is missing",
            "b.yaml:5: partners.acme.auth.secrets[1]: must not be empty",
            "b.yaml:14: rules[1].then.workflow_id: rule 'second': required key is missing",
        ]

    def test_yaml_syntax_errors_carry_their_line(self) -> None:
        (unclosed,) = issues("didit:\n  a: [1, 2\nrules: []\n")
        assert unclosed.startswith("b.yaml:3: invalid YAML: expected ',' or ']', but got ")
        assert issues("didit:\n\tapi_key: x\n")[0].startswith("b.yaml:2: invalid YAML: found ")
        assert issues("a: 1\n---\nb: 2\n") == [
            "b.yaml:2: invalid YAML: expected a single document in the stream "
            "but found another document"
        ]
        assert issues("a: *nowhere\n") == [
            "b.yaml:1: invalid YAML: found undefined alias 'nowhere'"
        ]
        assert issues("a: 1\nb: \x00\n") == [
            "b.yaml:2: invalid YAML: a control character is not allowed"
        ]

    def test_unsafe_and_unknown_tags_are_refused(self) -> None:
        assert issues("a: !!python/object:os.system {}\n")[0].startswith("b.yaml:1: ")
        assert issues("a:\n  b: !!int twelve\n") == [
            "b.yaml:2: invalid value for the tag tag:yaml.org,2002:int"
        ]
        assert issues(MINIMAL.replace("acme:\n", "acme: !!omap\n", 1))[0] == (
            "b.yaml:5: partners.acme: unsupported YAML tag tag:yaml.org,2002:omap"
        )

    def test_empty_and_non_mapping_documents(self) -> None:
        assert issues("") == ["b.yaml: the file is empty"]
        assert issues("# only a comment\n") == ["b.yaml: the file is empty"]
        assert issues("\n\njust text\n") == [
            "b.yaml:3: the top level must be a mapping of sections: didit, partners, rules, ..."
        ]

    def test_recursive_and_exploding_aliases_are_refused(self) -> None:
        assert issues("a: &x [1, *x]\n") == ["b.yaml:1: an alias refers to its own parent"]
        bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
            for p, n in zip("abcdef", "bcdefg", strict=True)
        )
        assert issues(bomb)[0].endswith("the document is too large (aliases expand to too much)")

    def test_yaml_1_2_scalars_norway_stays_a_string(self) -> None:
        text = MINIMAL.replace(
            "    then:", "    when: {payload: {country: [NO, on, yes, 10:30, 0755]}}\n    then:", 1
        )
        rule = load_text(text, environ={}).rules[0]
        assert rule.when.payload["country"] == ["NO", "on", "yes", "10:30", "0755"]

    def test_duplicate_keys_are_reported_but_merge_keys_are_not_duplicates(self) -> None:
        text = MINIMAL + textwrap.dedent(f"""\
            destinations:
              crm: &defaults
                url: https://crm.internal/a
                secrets: [{WHSEC}]
                timeout_s: 5
              audit:
                <<: *defaults
                url: https://audit.internal/b
            """)
        settings = load_text(text, environ={})
        assert settings.destinations["audit"].url == "https://audit.internal/b"
        assert settings.destinations["audit"].timeout_s == 5
        twice = MINIMAL.replace("  api_key: test-api-key\n", "  api_key: a\n  api_key: b\n")
        assert issues(twice) == ["b.yaml:3: didit.api_key: duplicate key (also at line 2)"]


class TestFiles:
    def test_unreadable_and_undecodable_files(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as error:
            load(tmp_path)
        assert str(error.value) == f"{tmp_path}: cannot read the file: Is a directory"
        binary = tmp_path / "b.yaml"
        binary.write_bytes(b"didit: \xff\xfe\n")
        with pytest.raises(ConfigError) as error:
            load(binary)
        assert str(error.value) == f"{binary}: the file is not UTF-8 text"

    def test_a_byte_order_mark_is_accepted(self, tmp_path: Path) -> None:
        config = tmp_path / "b.yaml"
        config.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
        assert load(config, {}).partners["acme"].auth.scheme == "standard-webhooks"

    def test_a_pem_key_may_be_a_file_relative_to_the_config_file(
        self, tmp_path: Path, rsa_key: rsa.RSAPrivateKey
    ) -> None:
        (tmp_path / "keys").mkdir()
        (tmp_path / "keys" / "initech.pem").write_text(public_pem(rsa_key))
        config = tmp_path / "b.yaml"
        config.write_text(
            with_partner("{scheme: jwt, algorithms: [RS256], keys: [keys/initech.pem]}")
        )
        auth = load(config, {}).partners["p"].auth
        [key] = auth.verification_keys  # type: ignore[union-attr]
        assert key.get_secret_value() == public_pem(rsa_key)

        config.write_text(with_partner("{scheme: jwt, algorithms: [ES256], key: absent.pem}"))
        with pytest.raises(ConfigError) as error:
            load(config, {})
        (issue,) = error.value.issues
        assert (issue.line, issue.path) == (8, "partners.p.auth.key")
        assert "neither a PEM public key nor a readable PEM file" in issue.message
        assert "absent.pem: No such file or directory" in issue.message

    def test_jwks_file_is_relative_to_the_config_file(
        self, tmp_path: Path, rsa_key: rsa.RSAPrivateKey
    ) -> None:
        jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
        (tmp_path / "keys").mkdir()
        (tmp_path / "keys" / "initech.json").write_text(json.dumps({"keys": [jwk]}))
        (tmp_path / "bad.json").write_text('{"keys": []}')
        (tmp_path / "text.json").write_text("not json")
        config = tmp_path / "b.yaml"
        config.write_text(
            with_partner("{scheme: jwt, algorithms: [RS256], jwks_file: keys/initech.json}")
        )
        auth = load(config, {}).partners["p"].auth
        assert auth.jwks_file == str(tmp_path / "keys" / "initech.json")  # type: ignore[union-attr]

        for name, message in [
            ("bad.json", "is not a usable JWKS"),
            ("text.json", "is not JSON"),
            ("absent.json", "cannot read"),
        ]:
            config.write_text(
                with_partner(f"{{scheme: jwt, algorithms: [ES256], jwks_file: {name}}}")
            )
            with pytest.raises(ConfigError) as error:
                load(config, {})
            (issue,) = error.value.issues
            assert (issue.line, issue.path) == (8, "partners.p.auth.jwks_file")
            assert message in issue.message


class TestSchemes:
    def test_public_keys_are_parsed_for_their_algorithm(self, rsa_key: rsa.RSAPrivateKey) -> None:
        ec_pem = public_pem(ec.generate_private_key(ec.SECP256R1()))
        rsa_pem = public_pem(rsa_key)
        ok = load_text(
            with_partner(f"{{scheme: jwt, algorithms: [ES256], key: {json.dumps(ec_pem)}}}")
        )
        assert ok.partners["p"].auth.verification_keys[0].get_secret_value() == ec_pem  # type: ignore[union-attr]

        def jwt_issue(algorithms: str, pem: str) -> list[str]:
            return issues(
                with_partner(f"{{scheme: jwt, algorithms: {algorithms}, key: {json.dumps(pem)}}}")
            )

        assert jwt_issue("[ES256]", rsa_pem) == [
            "b.yaml:8: partners.p.auth.key: not a PEM public key for ES256"
        ]
        small = public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505 - the point
        assert jwt_issue("[RS256]", small) == [
            "b.yaml:8: partners.p.auth.key: the RSA key must have at least 2048 bits"
        ]
        p384 = public_pem(ec.generate_private_key(ec.SECP384R1()))
        assert jwt_issue("[ES256]", p384) == [
            "b.yaml:8: partners.p.auth.key: not a PEM public key for ES256"
        ]
        assert jwt_issue(
            "[RS256]", "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----"
        ) == [
            "b.yaml:8: partners.p.auth.key: this is a private key: "
            "configure the partner's public key"
        ]
        escaped = rsa_pem.replace("\n", "\\n")
        assert jwt_issue("[RS256]", escaped)[0].endswith(
            "(the variable holds a literal \\n: use real newlines)"
        )

    def test_hs256_keys_rotate_and_refuse_a_jwks(self) -> None:
        secret = HS256_KEY
        auth = (
            load_text(
                with_partner(
                    f"{{scheme: jwt, key: {secret}, keys: [{HS256_NEXT_KEY}], max_age_s: 60}}"
                )
            )
            .partners["p"]
            .auth
        )
        assert [k.get_secret_value() for k in auth.verification_keys] == [secret, HS256_NEXT_KEY]  # type: ignore[union-attr]
        assert issues(with_partner(f"{{scheme: jwt, keys: [{secret}], jwks_file: k.json}}")) == [
            "b.yaml:8: partners.p.auth.jwks_file: a JWKS holds public keys: use RS256 or ES256"
        ]
        assert issues(with_partner("{scheme: jwt, algorithms: []}")) == [
            "b.yaml:8: partners.p.auth.algorithms: at least one algorithm is required"
        ]
        assert issues(with_partner("{scheme: jwt}")) == [
            "b.yaml:8: partners.p.auth.key: HS256 needs the shared secret in key or keys"
        ]

    def test_hmac_and_api_key_headers(self) -> None:
        assert issues(
            with_partner(
                f"{{scheme: hmac, secrets: [{PARTNER_KEY}], timestamp_header: x-signature}}"
            )
        ) == ["b.yaml:8: partners.p.auth.timestamp_header: must differ from signature_header"]
        assert issues(
            with_partner(f"{{scheme: api-key, keys: [{PARTNER_KEY}, ' '], header: 'X-Key:'}}")
        ) == [
            "b.yaml:8: partners.p.auth.header: 'X-Key:' is not a valid HTTP header name",
            "b.yaml:8: partners.p.auth.keys[1]: must not be empty",
        ]
        assert issues(
            with_partner(f"{{scheme: api-key, keys: [{PARTNER_KEY}]}}").replace(
                "    auth: {scheme: api-key",
                "    fields: {share_token: a.b, event_id: a.b}\n    auth: {scheme: api-key",
            )
        ) == ["b.yaml:8: partners.p.fields.event_id: must differ from share_token"]
        assert issues(with_partner("{secrets: [s]}")) == [
            "b.yaml:8: partners.p.auth.scheme: required key is missing: one of standard-webhooks, "
            "hmac, jwt, api-key"
        ]


TOKEN_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")


class TestSections:
    def test_store_urls(self) -> None:
        for url in ("sqlite:///:memory:", "sqlite:////var/lib/bridge.db"):
            assert load_text(MINIMAL + f"store: {{url: '{url}'}}\n").store.url == url
        postgres = f"store: {{url: 'postgresql://u@h/db', token_keys: ['{TOKEN_KEY}']}}\n"
        assert load_text(MINIMAL + postgres).store.url == "postgresql://u@h/db"
        assert issues(MINIMAL + "store: {url: 'sqlite:///'}\n") == [
            "b.yaml:12: store.url: must be sqlite:///PATH or postgresql://user@host:5432/db"
        ]

    def test_a_postgresql_store_needs_a_key_to_seal_tokens(self) -> None:
        """Tokens are never stored in the clear in PostgreSQL: no key, no start."""
        assert issues(MINIMAL + "store: {url: 'postgresql://u@h/db'}\n") == [
            "b.yaml:12: store.token_keys: a postgresql store needs at least one key to seal tokens"
        ]

    @pytest.mark.parametrize(
        ("key", "problem"),
        [
            ("not*base64", "must be base64url"),
            ("c2hvcnQ", "must decode to 32 bytes (base64url of 32 random bytes)"),
            ("", "must decode to 32 bytes (base64url of 32 random bytes)"),
        ],
    )
    def test_a_token_key_is_32_bytes_of_base64url_and_never_echoed(
        self, key: str, problem: str
    ) -> None:
        text = MINIMAL + f"store: {{url: 'postgresql://u@h/db', token_keys: ['{key}']}}\n"
        found = issues(text)
        assert found == [f"b.yaml:12: store.token_keys[0]: {problem}"]
        assert all(key not in line for line in found if key)

    def test_store_settings_decode_every_key_in_order(self) -> None:
        other = base64.urlsafe_b64encode(bytes(32)).decode().rstrip("=")
        text = MINIMAL + (
            f"store: {{url: 'postgresql://u@h/db', token_keys: ['{TOKEN_KEY}', '{other}'],"
            " schema: bridge_a, pool_size: 4}\n"
        )
        store = load_text(text).store
        assert store.decoded_token_keys() == (bytes(range(32)), bytes(32))
        assert (store.schema_, store.pool_size) == ("bridge_a", 4)
        assert issues(MINIMAL + "store: {schema: 'Bad-Name'}\n") == [
            "b.yaml:12: store.schema: must be a lower-case name: letters, digits and _ (not first)"
        ]

    def test_base_url_loses_its_trailing_slash(self) -> None:
        text = MINIMAL.replace("didit:\n", "didit:\n  base_url: http://127.0.0.1:8790/\n")
        assert load_text(text).didit.base_url == "http://127.0.0.1:8790"
        bad_port = MINIMAL.replace("didit:\n", "didit:\n  base_url: http://127.0.0.1:99999\n")
        assert issues(bad_port) == ["b.yaml:2: didit.base_url: not a valid URL"]

    def test_destination_events(self) -> None:
        text = MINIMAL + f"destinations:\n  crm:\n    url: http://crm\n    secrets: [{WHSEC}]\n"
        assert load_text(text).destinations["crm"].events == tuple(EventType)
        assert issues(text + "    events: []\n") == [
            "b.yaml:16: destinations.crm.events: subscribe to at least one event type"
        ]
        assert issues(text + "    events: [share.imported, share.imported, share.done]\n") == [
            "b.yaml:16: destinations.crm.events[2]: must be 'share.imported', 'share.rejected', "
            "'share.expired', 'share.failed' or 'share.status_updated'"
        ]
        assert issues(text + "    events: [share.imported, share.imported]\n") == [
            "b.yaml:16: destinations.crm.events[1]: listed twice"
        ]
        assert issues(text.replace("  crm:", "  CRM:")) == [
            "b.yaml:13: destinations.CRM: 'CRM' is not a valid name: use a-z, 0-9, '-' and '_' "
            "(a URL segment)"
        ]

    def test_rule_details(self) -> None:
        text = MINIMAL.replace('"acme:{event_id}"', '"{partner.name}{claims.}{x"')
        assert issues(text) == [
            "b.yaml:11: rules[0].then.vendor_data: "
            "rule 'acme-users': unbalanced brace: a placeholder looks like "
            "{payload.customer.id}"
        ]
        text = MINIMAL.replace('"acme:{event_id}"', '"{partner.name}"')
        assert issues(text) == [
            "b.yaml:11: rules[0].then.vendor_data: "
            "rule 'acme-users': {partner.name}: partner has no fields; write "
            "{partner}"
        ]
        text = MINIMAL.replace(
            "    then:", "    when: {partner: 7, payload: {'a..b': 1}}\n    then:"
        )
        assert issues(text) == [
            "b.yaml:9: rules[0].when.partner: "
            "rule 'acme-users': expected a partner name or a list of names",
            'b.yaml:9: rules[0].when.payload["a..b"]: '
            "rule 'acme-users': 'a..b' is not a dot path like customer.id",
        ]
        text = MINIMAL.replace("    then:", "    when: {session_kind: company}\n    then:")
        assert issues(text) == [
            "b.yaml:9: rules[0].when.session_kind: rule 'acme-users': must be 'user' or 'business'"
        ]
        text = MINIMAL.replace("  - name: acme-users", "  - name: ' '\n    when: {partner: acme}")
        text = text.replace("      vendor_data:", "      destinations: [a, a]\n      vendor_data:")
        assert issues(text) == [
            "b.yaml:8: rules[0].name: must not be empty",
            "b.yaml:12: rules[0].then.destinations[0]: unknown destination 'a' (defined: none)",
            "b.yaml:12: rules[0].then.destinations[1]: listed twice",
            "b.yaml:12: rules[0].then.destinations[1]: unknown destination 'a' (defined: none)",
        ]

    def test_direct_construction_checks_references_too(self) -> None:
        data = {
            "didit": {"api_key": "k", "application_id": APPLICATION_ID},
            "partners": {"acme": {"auth": {"scheme": "api-key", "keys": [PARTNER_KEY]}}},
            "rules": [
                {"name": "r", "when": {"partner": "globex"},
                 "then": {"workflow_id": APPLICATION_ID, "vendor_data": "{event_id}"}},
            ],
        }  # fmt: skip
        with pytest.raises(ValidationError, match="unknown partner 'globex'"):
            Settings.model_validate(data)


class TestHelpers:
    def test_parse_duration(self) -> None:
        assert [parse_duration(t) for t in ("250ms", "5s", "5m", "2h", "1d", " 3s ")] == [
            0.25, 5.0, 300.0, 7200.0, 86400.0, 3.0,
        ]  # fmt: skip
        for bad in ("", "5", "1.5s", "-5s", "5 s", "5w"):
            with pytest.raises(ValueError, match="not a duration"):
                parse_duration(bad)

    def test_format_path(self) -> None:
        assert format_path(("rules", 0, "when", "payload", "customer.id")) == (
            'rules[0].when.payload["customer.id"]'
        )
        assert format_path(()) == ""
        assert format_path(("a b", 1)) == '["a b"][1]'


class TestMessages:
    def test_an_error_at_the_end_of_the_file_is_on_its_last_line(self) -> None:
        assert issues("a: b\nc\n") == [
            "b.yaml:2: invalid YAML: could not find expected ':' (while scanning a simple key)"
        ]
        assert issues("a: b\r\nc") == [
            "b.yaml:2: invalid YAML: could not find expected ':' (while scanning a simple key)"
        ]

    def test_a_scheme_that_is_not_a_string_is_not_echoed(self) -> None:
        assert issues(with_partner("{scheme: [hmac], secrets: [s]}")) == [
            "b.yaml:8: partners.p.auth.scheme: expected one of "
            "standard-webhooks, hmac, jwt, api-key"
        ]

    def test_auth_schemes_lists_every_scheme_model(self) -> None:
        schemes = {
            definition["properties"]["scheme"]["const"]
            for definition in Settings.model_json_schema()["$defs"].values()
            if "scheme" in definition.get("properties", {})
        }
        assert set(AUTH_SCHEMES) == schemes

    def test_an_unknown_key_far_from_any_field_gets_no_suggestion(self) -> None:
        assert issues(MINIMAL + "colour: blue\n") == ["b.yaml:12: colour: unknown key"]

    def test_wrong_shapes_everywhere_are_each_reported(self) -> None:
        text = textwrap.dedent(f"""\
            didit:
              api_key: ''
              application_id: {APPLICATION_ID}
            server: {{host: ''}}
            admin: {{token: ' '}}
            partners: {{}}
            rules:
              - 5
              - {{name: 3, when: 5, then: 5}}
            """)
        assert issues(text) == [
            "b.yaml:2: didit.api_key: must not be empty",
            "b.yaml:4: server.host: must not be empty",
            "b.yaml:5: admin.token: must not be empty",
            "b.yaml:6: partners: at least one partner is required",
            "b.yaml:8: rules[0]: expected a mapping",
            "b.yaml:9: rules[1].name: expected a string",
            "b.yaml:9: rules[1].then: expected a mapping",
            "b.yaml:9: rules[1].when: expected a mapping",
        ]

    def test_odd_yaml_structures(self) -> None:
        assert issues(MINIMAL + "? [a, b]\n: c\n") == ["b.yaml:12: a key must be a string"]
        assert issues("a: " + "[" * 3000 + "]" * 3000 + "\n") == [
            "b.yaml: invalid YAML: nested too deeply"
        ]

    def test_jwks_file_values(self, tmp_path: Path) -> None:
        (tmp_path / "list.json").write_text("[]")
        config = tmp_path / "b.yaml"
        config.write_text(with_partner(f"{{scheme: jwt, key: '{HS256_KEY}', jwks_file: null}}"))
        assert load(config, {}).partners["p"].auth.jwks_file is None  # type: ignore[union-attr]
        config.write_text(with_partner("{scheme: jwt, algorithms: [RS256], jwks_file: ''}"))
        with pytest.raises(
            ConfigError, match=r"b.yaml:8: partners.p.auth.jwks_file: must be a file"
        ):
            load(config, {})
        config.write_text(with_partner("{scheme: jwt, algorithms: [RS256], jwks_file: list.json}"))
        with pytest.raises(
            ConfigError, match="is not a usable JWKS: the document is not an object"
        ):
            load(config, {})


def test_a_variable_set_but_empty_is_named() -> None:
    """``export DIDIT_API_KEY=`` (a forgotten value) is named, not only "must not be empty"."""
    text = MINIMAL.replace("api_key: test-api-key", "api_key: ${DIDIT_API_KEY}")
    assert issues(text, {"DIDIT_API_KEY": ""}) == [
        "b.yaml:2: didit.api_key: must not be empty "
        "(environment variable DIDIT_API_KEY is set but empty)"
    ]
    # a default covers empty, as in the shell: nothing to report
    defaulted = text.replace("${DIDIT_API_KEY}", "${DIDIT_API_KEY:-k}")
    settings = load_text(defaulted, environ={"DIDIT_API_KEY": ""})
    assert settings.didit.api_key.get_secret_value() == "k"


def test_a_rule_refers_to_another_by_its_name_too() -> None:
    text = MINIMAL + (
        "  - name: kyc\n"
        "    then: {workflow_id: 3c5b9a2e-0000-4000-8000-000000000002, vendor_data: x}\n"
        "  - name: kyc\n"
        "    when: {session_kind: business}\n"
        "    then: {workflow_id: 3c5b9a2e-0000-4000-8000-000000000002, vendor_data: x}\n"
    )
    assert issues(text) == [
        "b.yaml:12: rules[1]: "
        "rule 'kyc': unreachable: rules[0] ('acme-users') before it matches everything",
        "b.yaml:14: rules[2]: "
        "rule 'kyc': unreachable: rules[0] ('acme-users') before it matches everything",
        "b.yaml:14: rules[2].name: duplicate rule name 'kyc' (also rules[1])",
    ]


_WORKFLOW = "workflow_id: 3c5b9a2e-0000-4000-8000-000000000002"
_THEN = f"then: {{{_WORKFLOW}, vendor_data: '{{partner}}:x'"
RULE_MISTAKES = {  # the second rule's when/then (YAML flow), and what the problem says
    "bad regex": (f"when: {{payload: {{email: {{regex: '(a'}}}}}}\n    {_THEN}}}", "RE2 cannot"),
    "backreference": (
        f"when: {{payload: {{email: {{regex: '(a)\\1'}}}}}}\n    {_THEN}}}",
        "RE2 cannot",
    ),
    "unknown destination": (f"{_THEN}, destinations: [crm]}}", "unknown destination 'crm'"),
    "destination twice": (f"{_THEN}, destinations: [x, x]}}", "listed twice"),
    "unknown partner": (f"when: {{partner: globex}}\n    {_THEN}}}", "unknown partner 'globex'"),
    "bad matcher": (f"when: {{payload: {{r: {{oneof: [EU]}}}}}}\n    {_THEN}}}", "a matcher is"),
    "bad session kind": (f"when: {{session_kind: company}}\n    {_THEN}}}", "'user' or 'business'"),
    "bad workflow": ("then: {workflow_id: nope, vendor_data: x}", "expected a UUID"),
    "bad template": (f"then: {{{_WORKFLOW}, vendor_data: '{{body.id}}'}}", "unknown placeholder"),
    "unknown key": (
        f"whenn: {{partner: acme}}\n    {_THEN}}}",
        "unknown key (did you mean 'when'?)",
    ),
    "missing then": ("when: {partner: acme}", "required key is missing"),
    "unset variable": ("then: {workflow_id: '${KYB_WORKFLOW}', vendor_data: x}", "is not set"),
    "empty variable": ("then: {workflow_id: '${EMPTY}', vendor_data: x}", "is set but empty"),
    "duplicate yaml key": (
        f"then:\n      {_WORKFLOW}\n      {_WORKFLOW}\n      vendor_data: x",
        "duplicate key",
    ),
    "token placeholder": (f"then: {{{_WORKFLOW}, vendor_data: '{{payload.share_token}}'}}", "copy"),
    "unreachable": (f"{_THEN}}}", "unreachable: rules[0] ('everything')"),
}


@pytest.mark.parametrize("mistake", RULE_MISTAKES, ids=list(RULE_MISTAKES))
def test_every_problem_in_a_rule_names_the_rule(mistake: str) -> None:
    """``rules[1]`` finds the line; the name is what the operator knows the rule by."""
    body, expected = RULE_MISTAKES[mistake]
    first = "everything" if mistake == "unreachable" else "acme-users"
    text = MINIMAL.replace("  - name: acme-users\n", f"  - name: {first}\n")
    if mistake != "unreachable":
        text = text.replace(f"name: {first}\n", f"name: {first}\n    when: {{partner: acme}}\n")
    found = issues(f"{text}  - name: eu-kyb\n    {body}\n", {"EMPTY": ""})
    about = [issue for issue in found if ": rules[1]" in issue]
    assert any(expected in issue for issue in about), found
    assert all("rule 'eu-kyb': " in issue for issue in about), about


def test_a_warning_about_a_rule_names_it_too() -> None:
    text = MINIMAL.replace('vendor_data: "acme:{event_id}"', 'vendor_data: "{event_id}"')
    loaded = load_text_with_warnings(text, source_name="b.yaml", environ={})
    [warning] = [str(w) for w in loaded.warnings]
    assert warning.startswith("b.yaml:11: rules[0].then.vendor_data: warning: rule 'acme-users': ")


def test_a_problem_with_the_rules_name_itself_is_not_labelled_by_it() -> None:
    text = MINIMAL + (
        "  - name: acme-users\n"
        "    then: {workflow_id: 3c5b9a2e-0000-4000-8000-000000000002, vendor_data: x}\n"
    )
    assert "b.yaml:12: rules[1].name: duplicate rule name 'acme-users' (also rules[0])" in issues(
        text
    )


class TestRetention:
    def test_absent_keeps_everything_and_a_fraction_of_a_day_is_allowed(self) -> None:
        assert load_text(MINIMAL, source_name="b.yaml", environ={}).store.retention_days is None
        text = MINIMAL + "store: {retention_days: 0.00001}\n"
        settings = load_text(text, source_name="b.yaml", environ={})
        assert settings.store.retention_days == 0.00001

    @pytest.mark.parametrize("value", ["0", "-1", ".inf", "'a month'", "40000"])
    def test_only_a_positive_number_of_days(self, value: str) -> None:
        found = issues(MINIMAL + f"store: {{retention_days: {value}}}\n")
        assert len(found) == 1
        assert found[0].startswith("b.yaml:12: store.retention_days: ")
