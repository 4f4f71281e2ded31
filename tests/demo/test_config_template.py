"""The generated demo config loads, its partners' independent signers pass the bridge's
verifiers (and the forged ones do not), and its rules route KYC and KYB as the demo expects."""

from __future__ import annotations

import time
import uuid

import jwt
import orjson
import pytest

from bridge import auth, config, rules, tokens
from bridge.demo.config_template import DemoSecrets, OurApplication, render_config
from bridge.demo.plan import PARTNERS
from bridge.errors import ConfigError, VerificationError

OURS = OurApplication(
    application_id=str(uuid.uuid4()),
    api_key="sbx_demo",
    kyc_workflow_id=str(uuid.uuid4()),
    kyb_workflow_id=str(uuid.uuid4()),
)


def load(secrets: DemoSecrets) -> config.Settings:
    text = render_config(
        ours=OURS,
        sandbox_url="http://127.0.0.1:9",
        sink_url="http://127.0.0.1:10",
        store_path="/tmp/demo-test.db",
        port=8080,
    )
    return config.load_text(text, source_name="demo.yaml", environ=secrets.environment())


def share_token(kind: str) -> tokens.ShareToken:
    claims = {
        "session_id": str(uuid.uuid4()),
        "session_kind": kind,
        "from_application_id": str(uuid.uuid4()),
        "for_application_id": OURS.application_id,
        "exp": int(time.time()) + 600,
    }
    return tokens.read_share_token(jwt.encode(claims, "x" * 32, algorithm="HS256"))


def test_the_config_loads_with_secrets_from_the_environment_only() -> None:
    secrets = DemoSecrets.generate()
    settings = load(secrets)
    assert set(settings.partners) == set(PARTNERS)
    assert len(settings.destinations["crm"].secrets) == 2
    assert settings.destinations["crm"].retry_delays_s == (0.2, 0.5, 1.0, 2.0, 5.0)
    text = render_config(
        ours=OURS, sandbox_url="http://127.0.0.1:9", sink_url="http://x", store_path="/t", port=1
    )
    for value in secrets.environment().values():
        assert value not in text


def test_without_the_environment_the_config_names_what_is_missing() -> None:
    with pytest.raises(ConfigError, match="DEMO_ACME_WHSEC"):
        config.load_text(
            render_config(
                ours=OURS,
                sandbox_url="http://127.0.0.1:9",
                sink_url="http://x",
                store_path="/t",
                port=1,
            ),
            environ={},
        )


@pytest.mark.parametrize("partner", PARTNERS)
def test_each_partners_signature_verifies_and_a_forged_one_does_not(partner: str) -> None:
    secrets = DemoSecrets.generate()
    verifier = auth.verifiers_for(load(secrets))[partner]
    body = orjson.dumps({"share_token": "t", "event_id": "e1"})
    now = time.time()
    headers = secrets.partner_signers()[partner].headers(body, message_id="msg_1", now=now)
    verified = verifier.verify(body, headers, now=now)
    if partner != "globex":  # the hmac scheme carries no message id
        assert verified.message_id == "msg_1"
    forged = secrets.forged_signers()[partner].headers(body, message_id="msg_1", now=now)
    with pytest.raises(VerificationError) as refused:
        verifier.verify(body, forged, now=now)
    assert refused.value.code == "invalid_signature"
    with pytest.raises(VerificationError):
        verifier.verify(body + b" ", headers, now=now)


@pytest.mark.parametrize(
    ("partner", "kind", "region", "rule", "workflow", "vendor_data", "trust_review"),
    [
        ("acme", "user", "EU", "kyc-onboarding", OURS.kyc_workflow_id, "acme:c1", False),
        (
            "globex",
            "business",
            "US",
            "kyb-onboarding",
            OURS.kyb_workflow_id,
            "globex:biz:c1",
            False,
        ),
        ("initech", "user", "UK", "initech-kyc-reviewed", OURS.kyc_workflow_id, "initech:c1", True),
        ("initech", "user", "US", "kyc-onboarding", OURS.kyc_workflow_id, "initech:c1", False),
    ],
    ids=["acme-kyc", "globex-kyb", "initech-uk-reviewed", "initech-us"],  # stable across workers
)
def test_the_rules_route_kyc_and_kyb(
    partner: str,
    kind: str,
    region: str,
    rule: str,
    workflow: str,
    vendor_data: str,
    trust_review: bool,
) -> None:
    settings = load(DemoSecrets.generate())
    payload = {"customer": {"id": "c1"}, "region": region}
    route = rules.route(
        partner=partner,
        payload=payload,
        token=share_token(kind),
        event_id="e",
        rules=settings.rules,
    )
    assert (route.rule, route.workflow_id, route.vendor_data, route.trust_review) == (
        rule,
        workflow,
        vendor_data,
        trust_review,
    )
    assert route.destinations == ("crm", "audit")


def test_the_sink_verifies_the_crm_with_the_new_secret_only() -> None:
    secrets = DemoSecrets.generate()
    endpoints = {e.name: e for e in secrets.sink_endpoints(crm_fail_first=5)}
    assert endpoints["crm"].secrets == (secrets.crm_new,)
    assert endpoints["crm"].fail_first == 5
    assert endpoints["audit"].secrets == (secrets.audit,)
    assert endpoints["audit"].fail_first == 0
