"""``bridge route``: the dry run gives the right rule or refusal for each sample notification."""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from bridge import cli
from bridge.app.dry_run_token import claims_from
from bridge.cli import route_command
from bridge.rules import lookup
from tests.route.sample_environment import ENVIRON, OURS, SAMPLES

CONFIG = SAMPLES / "bridge.yaml"
NOW = 1_780_000_000  # 2026-05-28T20:26:40Z
TOKEN_PATHS = {"globex": "data.share.token"}


@dataclass(frozen=True)
class Expected:
    sample: str
    partner: str
    code: str | None  # None: would accept
    rule: str | None  # None: no route could be resolved
    vendor_data: str | None = None


CASES = [
    Expected("acme-kyc-eu", "acme", None, "acme-kyc-eu", "acme:C-1001"),
    Expected("acme-kyb-uk", "acme", None, "acme-business", "acme:GB-0987654"),
    Expected("acme-old-token", "acme", None, "acme-kyc-eu", "acme:C-1003"),
    Expected(
        "globex-trusted",
        "globex",
        None,
        "trusted-source",
        "trusted:20bb3c3b-0000-4000-8000-000000000004",
    ),
    Expected("globex-reference", "globex", None, "reference-format", "globex:GX-123456"),
    Expected("initech-reference", "initech", None, "reference-format", "initech:GX-654321"),
    Expected("globex-reference-number", "globex", None, "tier-one", "tier1:C-1007"),
    Expected("initech-tier-true", "initech", "no_matching_rule", None),
    Expected("acme-priority", "acme", None, "priority-review", "acme:evt-acme-9"),
    Expected("hooli-anonymous", "hooli", None, "hooli-anonymous", "hooli:evt-hooli-10"),
    Expected("hooli-customer", "hooli", None, "hooli-customers", "hooli:H-11"),
    Expected("acme-expired", "acme", "share_token_expired", "acme-kyc-eu", "acme:C-1012"),
    Expected(
        "acme-other-application",
        "acme",
        "share_token_not_for_this_application",
        "acme-kyc-eu",
        "acme:C-1013",
    ),
    Expected("acme-malformed", "acme", "malformed_share_token", None),
    Expected("acme-kyb-unresolved", "acme", "vendor_data_unresolved", None),
    Expected("acme-missing-token", "acme", "missing_share_token", None),
    Expected("acme-not-an-object", "acme", "invalid_json", None),
    Expected("acme-nul-character", "acme", "nul_character", "acme-kyc-eu", "acme:C-1018"),
    Expected("acme-kyc-eu", "umbrella", "unknown_partner", None),
    Expected("globex-reference", "acme", "missing_share_token", None),  # acme's path is not there
]


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The samples' secrets, as an operator would export them."""
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.out)
        return parsed


def bridge_route(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    """Run ``bridge route`` in-process, through the command's own parser registration."""
    parser = argparse.ArgumentParser(prog="bridge")
    route_command.register(parser.add_subparsers())
    args = parser.parse_args(["route", *argv])
    code = args.run(args)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def sample_args(case: Expected, *extra: str) -> list[str]:
    body = SAMPLES / f"{case.sample}.json"
    return ["--config", str(CONFIG), "--partner", case.partner, "--body", str(body), *extra]


def sample_token(case: Expected) -> str | None:
    body = json.loads((SAMPLES / f"{case.sample}.json").read_text())
    found, token = lookup(body, TOKEN_PATHS.get(case.partner, "share_token"))
    return token if found and isinstance(token, str) else None


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.partner}-{c.sample}")
def test_json_verdict(case: Expected, capsys: pytest.CaptureFixture[str]) -> None:
    """Each sample gets its rule, or the refusal intake would answer."""
    outcome = bridge_route(capsys, *sample_args(case, "--json", "--now", str(NOW)))
    document = outcome.document
    assert outcome.code == (0 if case.code is None else 1)
    assert document["verdict"] == ("accept" if case.code is None else "refuse")
    assert document["code"] == case.code
    route = document["route"]
    if case.rule is None:
        assert route is None
    else:
        assert route["rule"] == case.rule
        assert route["vendor_data"] == case.vendor_data
    token = sample_token(case)
    if token is not None:
        assert token not in outcome.out + outcome.err


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.partner}-{c.sample}")
def test_text_verdict(case: Expected, capsys: pytest.CaptureFixture[str]) -> None:
    """The human output names the rule and ends with the verdict; never the token."""
    outcome = bridge_route(capsys, *sample_args(case, "--now", str(NOW)))
    last = outcome.out.rstrip().splitlines()[-1]
    if case.code is None:
        assert last == "verdict       would accept (202)"
    else:
        assert last.startswith("verdict       would refuse (")
        assert f" {case.code})" in last
    if case.rule is not None:
        assert f"  rule          {case.rule}\n" in outcome.out
        assert f"  vendor_data   {case.vendor_data}\n" in outcome.out
    token = sample_token(case)
    if token is not None:
        assert token not in outcome.out + outcome.err


def test_every_sample_has_an_expectation() -> None:
    """A sample added without an expected outcome would prove nothing."""
    on_disk = {path.stem for path in SAMPLES.glob("*.json")}
    assert on_disk == {case.sample for case in CASES}


def test_samples_match_their_generator() -> None:
    """The checked-in bodies are exactly what make_samples.py writes."""
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, body in module.SAMPLES.items():
        assert json.loads((SAMPLES / f"{name}.json").read_text()) == body, name


def test_json_shows_the_route_and_token_facts(capsys: pytest.CaptureFixture[str]) -> None:
    case = Expected("acme-kyb-uk", "acme", None, "acme-business")
    document = bridge_route(capsys, *sample_args(case, "--json", "--now", str(NOW))).document
    assert document["http_status"] == 202
    assert document["event_id"] == "evt-acme-2"
    assert document["route"] == {
        "rule": "acme-business",
        "workflow_id": "3c5b9a2e-0000-4000-8000-000000000001",
        "vendor_data": "acme:GB-0987654",
        "trust_review": False,
        "destinations": ["crm", "audit"],
    }
    token = document["token"]
    assert token["session_kind"] == "business"
    assert token["session_kind_claim"] == "business"
    assert token["for_this_application"] is True
    assert token["expires_at"] == "2100-01-01T00:00:00Z"
    assert token["expires_in_s"] == 4_102_444_800 - NOW
    assert token["expired"] is False
    assert token["business_key"] == (
        "dbd20e34-aaaa-4bbb-8ccc-ddddeeeeffff:20bb3c3b-0000-4000-8000-000000000002"
    )
    results = {check["check"]: check["result"] for check in document["checks"]}
    assert results["authentication"] == "skipped"
    assert results["duplicate"] == "skipped"
    assert all(result != "fail" for result in results.values())


def test_refusals_carry_the_intake_status(capsys: pytest.CaptureFixture[str]) -> None:
    statuses = {}
    for case in CASES:
        if case.code is not None:
            document = bridge_route(
                capsys, *sample_args(case, "--json", "--now", str(NOW))
            ).document
            statuses[case.code] = document["http_status"]
    assert statuses["unknown_partner"] == 404
    assert statuses["invalid_json"] == 400
    assert statuses["share_token_expired"] == 422
    assert statuses["vendor_data_unresolved"] == 422


def test_other_application_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[[c.sample for c in CASES].index("acme-other-application")]
    outcome = bridge_route(capsys, *sample_args(case, "--now", str(NOW)))
    assert "application 0b0b0b0b-2222-4333-8444-555566667777 (NOT ours)" in outcome.out
    document = bridge_route(capsys, *sample_args(case, "--json", "--now", str(NOW))).document
    assert document["token"]["for_this_application"] is False


def mint_body(tmp_path: Path, **claims: Any) -> Path:
    token = jwt.encode(claims, secrets.token_bytes(32), algorithm="HS256")
    body = {"event_id": "evt-t", "region": "EU", "customer": {"id": "C-9"}, "share_token": token}
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    return path


@pytest.mark.parametrize(("exp", "code"), [(NOW - 29, None), (NOW - 31, "share_token_expired")])
def test_expiry_leeway(
    exp: int, code: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token expired less than 30 s ago is still accepted."""
    body = mint_body(tmp_path, exp=exp, for_application_id=OURS.upper())
    argv = ["--config", str(CONFIG), "--partner", "acme", "--body", str(body), "--json"]
    document = bridge_route(capsys, *argv, "--now", str(NOW)).document
    assert document["code"] == code


def test_without_now_uses_the_clock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = mint_body(tmp_path, exp=NOW)  # long past by the time anyone runs this
    outcome = bridge_route(
        capsys, "--config", str(CONFIG), "--partner", "acme", "--body", str(body)
    )
    assert "share_token_expired" in outcome.out.splitlines()[-1]


def test_body_too_large(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(CONFIG.read_text() + "\nserver: {max_body_bytes: 64}\n")
    body = str(SAMPLES / "acme-kyc-eu.json")
    outcome = bridge_route(
        capsys, "--config", str(config), "--partner", "acme", "--body", body, "--json"
    )
    assert outcome.code == 1
    assert outcome.document["code"] == "body_too_large"
    assert outcome.document["http_status"] == 413


def test_body_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = (SAMPLES / "hooli-customer.json").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    outcome = bridge_route(
        capsys, "--config", str(CONFIG), "--partner", "hooli", "--body", "-", "--json"
    )
    assert outcome.code == 0
    assert outcome.document["route"]["rule"] == "hooli-customers"


def test_unprintable_text_is_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Partner text cannot drive the operator's terminal."""
    token = jwt.encode({"session_id": "s"}, secrets.token_bytes(32), algorithm="HS256")
    body = tmp_path / "body.json"
    body.write_text(
        json.dumps({"event_id": "e", "customer": {"id": "H\x1b[2J"}, "share_token": token})
    )
    outcome = bridge_route(
        capsys, "--config", str(CONFIG), "--partner", "hooli", "--body", str(body)
    )
    assert outcome.code == 0
    assert "\x1b" not in outcome.out
    assert "hooli:H\\x1b[2J" in outcome.out


def test_unreadable_body(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    outcome = bridge_route(
        capsys, "--config", str(CONFIG), "--partner", "acme", "--body", str(missing)
    )
    assert outcome.code == 1
    assert "cannot read" in outcome.err
    assert outcome.out == ""


def test_invalid_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DIDIT_API_KEY")
    body = str(SAMPLES / "acme-kyc-eu.json")
    outcome = bridge_route(capsys, "--config", str(CONFIG), "--partner", "acme", "--body", body)
    assert outcome.code == 1
    assert "invalid configuration" in outcome.err
    assert "DIDIT_API_KEY" in outcome.err
    assert outcome.out == ""


@pytest.mark.parametrize("now", ["yesterday", "nan", "inf"])
def test_bad_now_is_a_usage_error(now: str, capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[0]
    with pytest.raises(SystemExit) as exited:
        bridge_route(capsys, *sample_args(case, "--now", now))
    assert exited.value.code == 2


def test_registered_with_the_bridge_command(capsys: pytest.CaptureFixture[str]) -> None:
    """``bridge route`` is reachable from the composition root."""
    assert "bridge.cli.route_command" in cli.COMMAND_MODULES
    args = cli.build_parser().parse_args(["route", *sample_args(CASES[0], "--json")])
    assert args.run(args) == 0
    assert json.loads(capsys.readouterr().out)["route"]["rule"] == "acme-kyc-eu"


@pytest.mark.parametrize("raw", [b"not json", b"\xff\xfe{}", b"", b'"a string"', b"{"])
def test_bodies_that_are_not_json_objects(
    raw: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(raw)
    argv = ["--config", str(CONFIG), "--partner", "acme", "--body", str(body), "--json"]
    outcome = bridge_route(capsys, *argv)
    assert outcome.code == 1
    assert outcome.document["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("claims", "shown"),
    [
        ({"exp": NOW + 5}, "(in 5s)"),
        ({"exp": NOW + 90}, "(in 1m 30s)"),
        ({"exp": NOW + 7200}, "(in 2h 0m)"),
        ({"exp": NOW + 3 * 86400 + 3600}, "(in 3d 1h)"),
        ({"exp": NOW - 20}, "(20s ago)"),
        ({"exp": 2**62}, "expires       (an exp claim that is no time: ignored)"),
        ({"exp": "soon"}, "expires       (an exp claim that is no time: ignored)"),
        ({}, "expires       (no exp claim)"),
        ({}, "for           application (absent)\n"),
        ({}, "session kind  user (no session_kind claim)"),
        ({"session_kind": "entity"}, 'session kind  user (claim "entity")'),
    ],
)
def test_token_facts_in_text(
    claims: dict[str, Any], shown: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tokens with few claims are still accepted and described."""
    token = jwt.encode(claims, secrets.token_bytes(32), algorithm="HS256")
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"event_id": "e-1", "share_token": token}))
    argv = ["--config", str(CONFIG), "--partner", "hooli", "--body", str(body), "--now", str(NOW)]
    outcome = bridge_route(capsys, *argv)
    assert outcome.code == 0, outcome.out
    assert shown in outcome.out
    assert "  rule          hooli-anonymous\n" in outcome.out
    assert "business key  sha256:" in outcome.out


def test_a_miss_is_explained_rule_by_rule(capsys: pytest.CaptureFixture[str]) -> None:
    """Each rule tried says which condition failed (and which held), in text and JSON alike."""
    case = Expected("initech-tier-true", "initech", "no_matching_rule", None)
    text = bridge_route(capsys, *sample_args(case, "--now", str(NOW))).out
    section = text.split("\nrules (first match wins)\n", 1)[1].split("\n\n", 1)[0]
    lines = section.splitlines()
    assert [line.split("'")[1] for line in lines] == [
        "trusted-source", "acme-business", "acme-kyc-eu", "priority-review",
        "reference-format", "tier-one", "hooli-anonymous", "hooli-customers",
    ]  # fmt: skip
    assert "  rule 'reference-format': payload.reference: 'X-1' does not match regex " in section
    assert "(held: partner)" in lines[4]
    assert "  rule 'tier-one': payload.tier: true is not 1" in lines
    document = bridge_route(capsys, *sample_args(case, "--json", "--now", str(NOW))).document
    assert [trial["explanation"] for trial in document["rules"]] == [line.strip() for line in lines]
    assert not any(trial["matched"] for trial in document["rules"])


def test_a_match_shows_the_rules_before_it_and_stops(capsys: pytest.CaptureFixture[str]) -> None:
    case = Expected("acme-kyc-eu", "acme", None, "acme-kyc-eu")
    document = bridge_route(capsys, *sample_args(case, "--json", "--now", str(NOW))).document
    trials = document["rules"]
    assert [(t["rule"], t["matched"]) for t in trials] == [
        ("trusted-source", False),
        ("acme-business", False),
        ("acme-kyc-eu", True),
    ]
    assert trials[1]["explanation"] == (
        "rule 'acme-business': session_kind: 'user' is not business (held: partner, payload.region)"
    )


def claims_route(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    partner: str,
    body: object,
    *claims: str,
    as_json: bool = False,
) -> Outcome:
    path = tmp_path / "hand-written.json"
    path.write_text(json.dumps(body))
    argv = ["--config", str(CONFIG), "--partner", partner, "--body", str(path), "--now", str(NOW)]
    argv += [f"--claims={claim}" for claim in claims] + (["--json"] if as_json else [])
    return bridge_route(capsys, *argv)


def test_claims_build_a_test_token_for_a_hand_written_body(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A body without a token reaches the rules, and the output says the token is a test one."""
    body = {"event_id": "e-1", "region": "UK", "company": {"registration_number": "GB-1"}}
    outcome = claims_route(capsys, tmp_path, "acme", body, "session_kind=business")
    assert outcome.code == 0, outcome.out
    assert "  rule          acme-business\n" in outcome.out
    assert "TEST TOKEN    built from --claims, signed with a throwaway key" in outcome.out
    assert outcome.out.rstrip().endswith("with a TEST token from --claims")
    without = claims_route(capsys, tmp_path, "acme", body)  # no --claims: the body as it is
    assert "missing_share_token" in without.out.splitlines()[-1]
    assert "TEST" not in without.out


def test_claims_replace_the_bodys_token_where_the_partner_puts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """globex's token sits at data.share.token; typed values stay typed; dotted names nest."""
    body = {"meta": {"delivery_id": "d-1"}, "data": {"share": {"token": "not-a-jwt"}}}
    outcome = claims_route(
        capsys,
        tmp_path,
        "globex",
        body,
        "from_application_id=5e1f0c3a-7777-4888-9999-aaaabbbbcccc",
        "session_id=s-7",
        f"exp={NOW + 90}",
    )
    assert outcome.code == 0, outcome.out
    assert "  rule          trusted-source\n" in outcome.out
    assert "  vendor_data   trusted:s-7\n" in outcome.out
    assert "(in 1m 30s)" in outcome.out  # exp=NUMBER is a number, not text


def test_claim_values_read_as_json_and_dotted_names_nest() -> None:
    pairs = ["a.b=x", "a.c=1", "t=true", 'quoted="1"', "text=1x", "eq=a=b", "n=null"]
    assert claims_from(pairs) == {
        "a": {"b": "x", "c": 1},
        "t": True,
        "quoted": "1",
        "text": "1x",
        "eq": "a=b",
        "n": None,
    }


@pytest.mark.parametrize("claim", ["session_kind", "=x", "a..b=x"])
def test_a_claim_that_is_not_name_value_is_a_usage_error(
    claim: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = claims_route(capsys, tmp_path, "acme", {"event_id": "e"}, claim)
    assert outcome.code == 2
    assert "--claims" in outcome.err
    assert outcome.out == ""


def test_claims_on_a_body_that_is_not_an_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = claims_route(capsys, tmp_path, "acme", [1, 2], "session_kind=user", as_json=True)
    assert outcome.code == 1
    assert outcome.document["code"] == "invalid_json"
    assert outcome.document["rules"] == []
