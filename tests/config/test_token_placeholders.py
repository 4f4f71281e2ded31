"""A rule's vendor_data must not copy a partner's share token (a credential) anywhere."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bridge.config import Settings, load_text
from bridge.errors import ConfigError
from tests.config.conftest import APPLICATION_ID, PARTNER_KEY, WHSEC


def config(vendor_data: str, *, when: str = "{}", acme_fields: str = "{}") -> str:
    return f"""\
didit:
  api_key: test-api-key
  application_id: {APPLICATION_ID}
partners:
  acme:
    auth: {{scheme: standard-webhooks, secrets: [{WHSEC}]}}
    fields: {acme_fields}
  globex:
    auth: {{scheme: standard-webhooks, secrets: [{WHSEC}]}}
    fields: {{share_token: share.token}}
rules:
  - name: r
    when: {when}
    then:
      workflow_id: 3c5b9a2e-0000-4000-8000-000000000002
      vendor_data: {vendor_data!r}
"""


def issues(text: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_text(text, source_name="b.yaml", environ={})
    return [str(issue) for issue in error.value.issues]


LEAK = (
    "b.yaml:16: rules[0].then.vendor_data: "
    "rule 'r': {{{placeholder}}} would copy the share token of "
    "{owner} (fields.share_token) into vendor_data: the token is a credential, and vendor_data "
    "goes to Didit, into events and to the admin API"
)


@pytest.mark.parametrize(
    ("vendor_data", "when", "acme_fields", "placeholder", "owner"),
    [
        ("x:{payload.share_token}", "{}", "{}", "payload.share_token", "partner 'acme'"),
        ("{payload.share.token}", "{partner: globex}", "{}", "payload.share.token",
         "partner 'globex'"),
        ("{payload.share.token}", "{partner: [acme, globex]}", "{}", "payload.share.token",
         "partner 'globex'"),
        ("{payload.t}-{partner}", "{partner: acme}", "{share_token: t}", "payload.t",
         "partner 'acme'"),
        ("{payload.items.00}", "{}", "{share_token: items.0}", "payload.items.00",
         "partner 'acme'"),
        ("{payload.share.token}", "{}", "{share_token: share.token}", "payload.share.token",
         "partners 'acme', 'globex'"),
    ],
)  # fmt: skip
def test_a_placeholder_at_the_token_is_refused(
    vendor_data: str, when: str, acme_fields: str, placeholder: str, owner: str
) -> None:
    """Wherever a partner the rule applies to sends its token, vendor_data may not read it."""
    text = config(vendor_data, when=when, acme_fields=acme_fields)
    assert issues(text) == [LEAK.format(placeholder=placeholder, owner=owner)]


def test_only_the_token_of_a_partner_in_scope_is_refused() -> None:
    """The same path is fine for a rule of a partner that keeps something else there, and a
    placeholder around the token path (a parent object, a child of a string) is not the token."""
    fine = [
        config("{payload.share.token}", when="{partner: acme}"),
        config("{payload.share_token}", when="{partner: globex}"),
        config("{payload.share}-{payload.share_token.x}", when="{partner: globex}"),
        config("{claims.share_token}-{partner}-{event_id}"),
    ]
    for text in fine:
        assert load_text(text, environ={}).rules[0].name == "r"
    assert issues(config("{payload.share_token}", when="{partner: acme}"))


def test_also_refused_when_the_file_has_other_problems() -> None:
    """Reported with the rest when another section fails validation too."""
    text = config("{payload.share_token}").replace("api_key: test-api-key", "api_key: ''")
    found = issues(text)
    assert LEAK.format(placeholder="payload.share_token", owner="partner 'acme'") in found
    assert len(found) == 2


def test_settings_built_directly_refuse_it_too() -> None:
    data = {
        "didit": {"api_key": "k", "application_id": APPLICATION_ID},
        "partners": {"acme": {"auth": {"scheme": "api-key", "keys": [PARTNER_KEY]}}},
        "rules": [
            {"name": "r", "then": {"workflow_id": APPLICATION_ID,
                                   "vendor_data": "{payload.share_token}"}},
        ],
    }  # fmt: skip
    with pytest.raises(ValidationError, match="would copy the share token"):
        Settings.model_validate(data)


def test_event_id_may_not_reach_the_token_either() -> None:
    """{event_id} renders fields.event_id: the same list item as the token is refused."""
    text = config("{event_id}", acme_fields="{share_token: items.0, event_id: items.00}")
    assert issues(text) == ["b.yaml:7: partners.acme.fields.event_id: must differ from share_token"]
