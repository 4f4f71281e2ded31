"""Routing: first match wins, typed matchers, plain-substitution templates."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import config
from bridge.errors import RoutingError
from bridge.rules import explain, lookup, render_value, route, template_placeholders
from bridge.tokens import ShareToken, read_share_token
from bridge.types import SessionKind

WORKFLOW_A = "3c5b9a2e-0000-4000-8000-000000000001"
WORKFLOW_B = "3c5b9a2e-0000-4000-8000-000000000002"
PARTNER_APP = "dbd20e34-aaaa-4bbb-8ccc-ddddeeeeffff"
CATASTROPHIC_EMAIL = r"[a-z0-9]+([._-]?[a-z0-9]+)*@[a-z0-9]+([.-]?[a-z0-9]+)*\.[a-z]{2,}"
CATASTROPHIC_VALUE = "a" * 24 + "!"


def token(**claims: Any) -> ShareToken:
    return read_share_token(jwt.encode(claims, secrets.token_bytes(32), algorithm="HS256"))


USER = token(session_id="s-1", from_application_id=PARTNER_APP)
BUSINESS = token(session_id="s-2", session_kind="business", from_application_id=PARTNER_APP)


def rule(
    name: str,
    when: dict[str, Any] | None = None,
    *,
    vendor_data: str = "v:{partner}",
    workflow_id: str = WORKFLOW_A,
    **then: Any,
) -> config.Rule:
    return config.Rule.model_validate(
        {
            "name": name,
            "when": when or {},
            "then": {"workflow_id": workflow_id, "vendor_data": vendor_data, **then},
        }
    )


def unchecked_rule(
    name: str,
    *,
    payload: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    session_kind: str | None = None,
    vendor_data: str = "v:{partner}",
) -> config.Rule:
    """A rule the loader would refuse (bad regex, malformed template): routing must still cope."""
    when = config.RuleWhen.model_construct(
        partner=None,
        session_kind=None if session_kind is None else SessionKind(session_kind),
        payload={path: _unchecked(m) for path, m in (payload or {}).items()},
        claims={path: _unchecked(m) for path, m in (claims or {}).items()},
    )
    then = config.RuleThen.model_construct(
        workflow_id=uuid.UUID(WORKFLOW_A),
        vendor_data=vendor_data,
        trust_review=False,
        destinations=(),
    )
    return config.Rule.model_construct(name=name, when=when, then=then)


def _unchecked(matcher: Any) -> Any:
    if isinstance(matcher, dict) and "regex" in matcher:
        return config.RegexMatcher.model_construct(regex=matcher["regex"])
    if isinstance(matcher, dict) and "exists" in matcher:
        return config.ExistsMatcher.model_construct(exists=matcher["exists"])
    return matcher


def chosen(
    rules: list[config.Rule],
    payload: dict[str, Any] | None = None,
    *,
    partner: str = "acme",
    share: ShareToken = USER,
    event_id: str | None = "evt-1",
) -> str | None:
    """The name of the rule that routes, or None when none matches."""
    try:
        return route(
            partner=partner, payload=payload or {}, token=share, event_id=event_id, rules=rules
        ).rule
    except RoutingError as exc:
        if exc.code != "no_matching_rule":
            raise
        return None


def vendor_data(template: str, payload: dict[str, Any], share: ShareToken = USER) -> str:
    rules = [unchecked_rule("only", vendor_data=template)]
    return route(
        partner="acme", payload=payload, token=share, event_id="evt-9", rules=rules
    ).vendor_data


class TestMatching:
    def test_first_match_wins(self) -> None:
        rules = [rule("first", {"partner": "acme"}), rule("second"), rule("third")]
        assert chosen(rules) == "first"
        assert chosen(rules, partner="globex") == "second"

    def test_empty_when_matches_everything(self) -> None:
        assert chosen([rule("catch-all")], {"anything": [1, 2]}, partner="x") == "catch-all"

    def test_no_rule_matches(self) -> None:
        with pytest.raises(RoutingError) as caught:
            route(
                partner="hooli",
                payload={},
                token=USER,
                event_id=None,
                rules=[rule("acme-only", {"partner": "acme"})],
            )
        assert caught.value.code == "no_matching_rule"
        assert "hooli" in caught.value.message

    def test_no_rules_at_all(self) -> None:
        assert chosen([]) is None

    @pytest.mark.parametrize(("partner", "expected"), [("acme", "r"), ("globex", "r"), ("x", None)])
    def test_partner_list(self, partner: str, expected: str | None) -> None:
        assert chosen([rule("r", {"partner": ["acme", "globex"]})], partner=partner) == expected

    def test_session_kind(self) -> None:
        rules = [rule("kyb", {"session_kind": "business"}), rule("kyc", {"session_kind": "user"})]
        assert chosen(rules, share=BUSINESS) == "kyb"
        assert chosen(rules, share=USER) == "kyc"
        assert chosen(rules, share=token()) == "kyc"  # no session_kind claim: a user token

    @pytest.mark.parametrize(
        ("payload", "expected"),
        [
            ({"region": "EU"}, "r"),
            ({"region": "US"}, None),
            ({"region": ["EU"]}, None),
            ({}, None),
            ({"region": None}, None),
        ],
    )
    def test_scalar_equality(self, payload: dict[str, Any], expected: str | None) -> None:
        assert chosen([rule("r", {"payload": {"region": "EU"}})], payload) == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [("EU", "r"), ("UK", "r"), ("US", None), (None, None), ({"EU": 1}, None)],
    )
    def test_list_means_any_of(self, value: object, expected: str | None) -> None:
        rules = [rule("r", {"payload": {"region": ["EU", "UK"]}})]
        assert chosen(rules, {"region": value}) == expected

    def test_empty_list_matches_nothing(self) -> None:
        assert chosen([rule("r", {"payload": {"region": []}})], {"region": "EU"}) is None

    @pytest.mark.parametrize(
        ("matcher", "value", "matches"),
        [
            (1, 1, True),
            (1, 1.0, True),
            (1.5, 1.5, True),
            (1, True, False),  # Python says True == 1; JSON does not
            (True, 1, False),
            (False, 0, False),
            (0, False, False),
            (True, True, True),
            (False, False, True),
            (1, "1", False),
            ("1", 1, False),
            ("true", True, False),
            (None, None, True),
            (None, 0, False),
            (None, "", False),
            ([1, "two"], 1, True),
            ([1, "two"], "two", True),
            ([1, "two"], True, False),
            ([True], 1, False),
            ([None], None, True),
        ],
    )
    def test_typed_comparison(self, matcher: object, value: object, matches: bool) -> None:
        """Values compare as JSON values: numbers with numbers, bools only with bools."""
        rules = [rule("r", {"payload": {"x": matcher}})]
        assert (chosen(rules, {"x": value}) == "r") is matches

    def test_yaml_integer_against_json_integer(self) -> None:
        """A YAML `1` from the loaded config matches a JSON `1` from a partner body."""
        loaded = config.Rule.model_validate(
            {
                "name": "r",
                "when": {"payload": {"tier": 1}},
                "then": {"workflow_id": WORKFLOW_A, "vendor_data": "v"},
            }
        )
        assert chosen([loaded], {"tier": 1}) == "r"
        assert chosen([loaded], {"tier": True}) is None

    @pytest.mark.parametrize(
        ("value", "matches"),
        [
            ("GX-123456", True),
            ("gx-123456", False),
            ("GX-123456-extra", False),  # fullmatch, not search
            ("prefix GX-123456", False),
            (123456, False),  # a regex never matches a non-string
            (None, False),
            (["GX-123456"], False),
            (True, False),
        ],
    )
    def test_regex_fullmatch_on_strings_only(self, value: object, matches: bool) -> None:
        rules = [rule("r", {"payload": {"ref": {"regex": "GX-[0-9]{6}"}}})]
        assert (chosen(rules, {"ref": value}) == "r") is matches

    def test_regex_absent_value_does_not_match(self) -> None:
        assert chosen([rule("r", {"payload": {"ref": {"regex": ".*"}}})], {}) is None

    def test_invalid_regex_never_matches(self) -> None:
        """The loader rejects these; if one slips through, routing still never crashes."""
        rules = [unchecked_rule("bad", payload={"ref": {"regex": "("}}), rule("next")]
        assert chosen(rules, {"ref": "("}) == "next"

    def test_a_catastrophic_pattern_matches_in_linear_time(self) -> None:
        """A common email pattern that makes a backtracking engine try 2^n splits: ``re`` takes
        about 10 s on these 25 characters (and 4x more per extra character); RE2 microseconds.
        """
        rules = [rule("email", {"payload": {"email": {"regex": CATASTROPHIC_EMAIL}}}), rule("next")]
        started = time.perf_counter()
        assert chosen(rules, {"email": CATASTROPHIC_VALUE}) == "next"
        assert chosen(rules, {"email": "a.b-c@example.com"}) == "email"
        assert time.perf_counter() - started < 0.5

    def test_a_value_over_the_cap_never_matches_a_regex(self) -> None:
        rules = [rule("any", {"payload": {"ref": {"regex": ".*"}}}), rule("next")]
        at_cap = "x" * config.MAX_REGEX_VALUE_CHARS
        assert chosen(rules, {"ref": at_cap}) == "any"
        assert chosen(rules, {"ref": at_cap + "x"}) == "next"

    @pytest.mark.parametrize("regex", [r"(a)\1", "(?=a)a", "(?<!x)a", "a++", "((a{100}){100})"])
    def test_a_pattern_re2_cannot_run_is_refused_at_load(self, regex: str) -> None:
        with pytest.raises(ValueError, match="RE2 cannot run this regex"):
            rule("r", {"payload": {"ref": {"regex": regex}}})

    @pytest.mark.parametrize(
        ("payload", "exists", "matches"),
        [
            ({"a": {"b": 1}}, True, True),
            ({"a": {"b": ""}}, True, True),
            ({"a": {"b": False}}, True, True),
            ({"a": {"b": None}}, True, False),  # null counts as absent
            ({"a": {}}, True, False),
            ({"a": "b"}, True, False),
            ({}, True, False),
            ({"a": {"b": 1}}, False, False),
            ({"a": {"b": None}}, False, True),
            ({"a": {}}, False, True),
            ({}, False, True),
        ],
    )
    def test_exists(self, payload: dict[str, Any], exists: bool, matches: bool) -> None:
        rules = [rule("r", {"payload": {"a.b": {"exists": exists}}})]
        assert (chosen(rules, payload) == "r") is matches

    def test_dot_paths_reach_nested_values_and_list_items(self) -> None:
        rules = [rule("r", {"payload": {"customer.addresses.1.country": "FR"}})]
        payload = {"customer": {"addresses": [{"country": "DE"}, {"country": "FR"}]}}
        assert chosen(rules, payload) == "r"
        assert chosen(rules, {"customer": {"addresses": [{"country": "FR"}]}}) is None

    def test_claims_matcher(self) -> None:
        rules = [
            rule("trusted", {"claims": {"from_application_id": PARTNER_APP}}),
            rule("other"),
        ]
        assert chosen(rules, share=USER) == "trusted"
        assert chosen(rules, share=token(from_application_id="someone-else")) == "other"

    def test_claims_matcher_uses_raw_claims_and_dot_paths(self) -> None:
        """Claims matchers see the raw claims: an unknown session_kind stays matchable."""
        rules = [
            rule("kind", {"claims": {"session_kind": {"regex": "ent.*"}}}),
            rule("nested", {"claims": {"meta.level": 2}}),
            rule("none"),
        ]
        assert chosen(rules, share=token(session_kind="entity")) == "kind"
        assert chosen(rules, share=token(meta={"level": 2})) == "nested"
        assert chosen(rules, share=token(meta={"level": "2"})) == "none"

    def test_every_matcher_must_hold(self) -> None:
        rules = [
            rule(
                "all",
                {
                    "partner": "acme",
                    "session_kind": "business",
                    "payload": {"region": ["EU", "UK"], "customer.id": {"exists": True}},
                    "claims": {"session_id": {"regex": "s-[0-9]"}},
                },
            ),
            rule("fallback"),
        ]
        good = {"region": "UK", "customer": {"id": "c"}}
        assert chosen(rules, good, share=BUSINESS) == "all"
        assert chosen(rules, good, share=USER) == "fallback"
        assert chosen(rules, good, share=BUSINESS, partner="globex") == "fallback"
        assert chosen(rules, {"region": "UK"}, share=BUSINESS) == "fallback"
        assert chosen(rules, good, share=token(session_kind="business", session_id="x")) == (
            "fallback"
        )


class TestExplain:
    """Why each rule did or did not match, in the config file's own words."""

    def explain(self, rules: list[config.Rule], payload: dict[str, Any], **kw: Any) -> list[str]:
        partner, share = kw.get("partner", "acme"), kw.get("share", USER)
        return [str(t) for t in explain(partner=partner, payload=payload, token=share, rules=rules)]

    def test_a_miss_names_the_rule_and_the_condition_that_failed(self) -> None:
        rules = [rule("eu-kyc", {"partner": "acme", "payload": {"region": ["EU", "UK"]}})]
        assert self.explain(rules, {"region": "FR"}) == [
            "rule 'eu-kyc': payload.region: 'FR' not in [EU, UK] (held: partner)"
        ]

    def test_trials_stop_at_the_match_and_show_what_held(self) -> None:
        rules = [
            rule("kyb", {"session_kind": "business"}),
            rule("kyc", {"partner": ["acme", "globex"], "claims": {"session_id": "s-1"}}),
            rule("never-tried"),
        ]
        assert self.explain(rules, {}) == [
            "rule 'kyb': session_kind: 'user' is not business",
            "rule 'kyc': matches (partner: 'acme' in [acme, globex]; "
            "claims.session_id: 's-1' is s-1)",
        ]
        assert self.explain([rule("all")], {}) == ["rule 'all': matches (no conditions)"]

    @pytest.mark.parametrize(
        ("matcher", "payload", "said"),
        [
            ("gold", {}, "payload.x: absent, expected gold"),
            ("gold", {"x": None}, "payload.x: null is not gold"),
            (1, {"x": True}, "payload.x: true is not 1"),
            ("1", {"x": 1}, "payload.x: 1 is not '1'"),
            ("true", {"x": True}, "payload.x: true is not 'true'"),
            ({"exists": True}, {"x": None}, "payload.x: null, expected present"),
            ({"exists": False}, {"x": "v"}, "payload.x: present, expected absent"),
            ({"regex": "GX-[0-9]+"}, {"x": "GY-1"}, "payload.x: 'GY-1' does not match regex"),
            ({"regex": "GX-[0-9]+"}, {"x": 12}, "payload.x: 12 is not a string: regex"),
            ({"regex": "a+"}, {"x": "a" * 1025}, "payload.x: longer than 1024 characters"),
            ({"regex": "a+"}, {}, "payload.x: absent, expected a match of regex 'a+'"),
        ],
    )
    def test_each_matcher_kind_says_why(
        self, matcher: object, payload: dict[str, Any], said: str
    ) -> None:
        [line] = self.explain([rule("r", {"payload": {"x": matcher}})], payload)
        assert line.startswith(f"rule 'r': {said}")

    def test_a_present_value_is_never_shown_for_exists_and_long_values_are_cut(self) -> None:
        """A rule may look where the share token sits: its value is not printed whole."""
        secret = "eyJ" + "x" * 300
        rules = [
            rule("r", {"payload": {"t": {"exists": False}}}),
            rule("s", {"payload": {"t": "a"}}),
        ]
        shown = " ".join(self.explain(rules, {"t": secret}))
        assert secret not in shown
        assert "(305 characters)" in shown

    def test_route_carries_the_rule_outcome(self) -> None:
        rules = [
            rule(
                "r",
                vendor_data="acme:{payload.customer.id}",
                workflow_id=WORKFLOW_B.upper(),
                trust_review=True,
                destinations=["crm", "audit"],
            )
        ]
        result = route(
            partner="acme",
            payload={"customer": {"id": "C-1"}},
            token=USER,
            event_id=None,
            rules=rules,
        )
        assert result.rule == "r"
        assert result.workflow_id == WORKFLOW_B
        assert result.vendor_data == "acme:C-1"
        assert result.trust_review is True
        assert result.destinations == ("crm", "audit")

    def test_unresolved_template_does_not_fall_through(self) -> None:
        """The first match decides; a later rule is not a silent fallback."""
        rules = [rule("first", vendor_data="{payload.missing}"), rule("second")]
        assert chosen([rules[1]]) == "second"
        with pytest.raises(RoutingError) as caught:
            route(partner="acme", payload={}, token=USER, event_id=None, rules=rules)
        assert caught.value.code == "vendor_data_unresolved"
        assert "first" in caught.value.message


class TestTemplates:
    @pytest.mark.parametrize(
        ("template", "payload", "expected"),
        [
            ("{partner}", {}, "acme"),
            ("{event_id}", {}, "evt-9"),
            ("acme:{payload.customer.id}", {"customer": {"id": "C-7"}}, "acme:C-7"),
            ("{payload.n}", {"n": 42}, "42"),
            ("{payload.n}", {"n": -1.5}, "-1.5"),
            ("{payload.n}", {"n": 1e21}, "1e+21"),
            ("{payload.b}", {"b": True}, "true"),
            ("{payload.b}", {"b": False}, "false"),
            ("{payload.items.0}", {"items": ["first"]}, "first"),
            ("{claims.session_id}/{claims.from_application_id}", {}, f"s-1/{PARTNER_APP}"),
            ("{payload.t}", {"t": "{partner}"}, "{partner}"),  # values are never re-expanded
            ("{payload.t}", {"t": "{0.__class__}"}, "{0.__class__}"),
            ("{payload.a-b.c d}", {"a-b": {"c d": "x"}}, "x"),  # keys may hold spaces
            ("{payload.a-b.c_d}", {"a-b": {"c_d": "x"}}, "x"),
            ("plain", {}, "plain"),
        ],
    )
    def test_renders(self, template: str, payload: dict[str, Any], expected: str | None) -> None:
        if expected is None:
            with pytest.raises(RoutingError) as caught:
                vendor_data(template, payload)
            assert caught.value.code == "vendor_data_unresolved"
        else:
            assert vendor_data(template, payload) == expected

    @pytest.mark.parametrize(
        ("template", "payload", "placeholder"),
        [
            ("x:{payload.customer.id}", {}, "payload.customer.id"),
            ("x:{payload.customer.id}", {"customer": {"id": ""}}, "payload.customer.id"),
            ("x:{payload.customer.id}", {"customer": {"id": "   "}}, "payload.customer.id"),
            ("x:{payload.customer.id}", {"customer": {"id": None}}, "payload.customer.id"),
            ("x:{payload.customer}", {"customer": {"id": "C"}}, "payload.customer"),
            ("x:{payload.list}", {"list": ["a"]}, "payload.list"),
            ("x:{claims.missing}", {}, "claims.missing"),
            ("x:{claims}", {}, "claims"),
            ("x:{payload}", {}, "payload"),
            ("x:{partner.name}", {}, "partner.name"),
            ("x:{unknown.root}", {}, "unknown.root"),
        ],
    )
    def test_unresolved_names_the_placeholder_not_the_value(
        self, template: str, payload: dict[str, Any], placeholder: str
    ) -> None:
        with pytest.raises(RoutingError) as caught:
            vendor_data(template, payload)
        assert caught.value.code == "vendor_data_unresolved"
        assert "{" + placeholder + "}" in caught.value.message
        assert "C" not in caught.value.message.replace(placeholder, "")

    def test_missing_event_id(self) -> None:
        rules = [rule("r", vendor_data="evt:{event_id}")]
        with pytest.raises(RoutingError, match=r"\{event_id\}"):
            route(partner="acme", payload={}, token=USER, event_id=None, rules=rules)

    def test_renders_empty(self) -> None:
        rules = [unchecked_rule("r", vendor_data="  ")]
        with pytest.raises(RoutingError, match="empty") as caught:
            route(partner="acme", payload={}, token=USER, event_id=None, rules=rules)
        assert caught.value.code == "vendor_data_unresolved"

    @pytest.mark.parametrize(
        "template", ["{", "}", "a{b", "a}b", "{}", "{ }", "{a..b}", "{.a}", "{{partner}}", "{a. }"]
    )
    def test_malformed_templates(self, template: str) -> None:
        with pytest.raises(ValueError, match=r"lone|placeholder"):
            template_placeholders(template)
        with pytest.raises(RoutingError) as caught:
            vendor_data(template, {})
        assert caught.value.code == "vendor_data_unresolved"

    @pytest.mark.parametrize(
        ("template", "names"),
        [
            ("acme:{payload.customer.id}", ["payload.customer.id"]),
            ("{partner}:{event_id}:{partner}", ["partner", "event_id"]),
            ("x {claims.x} y", ["claims.x"]),
            ("none", []),
        ],
    )
    def test_template_placeholders(self, template: str, names: list[str]) -> None:
        assert template_placeholders(template) == names


class TestHelpers:
    @pytest.mark.parametrize(
        ("obj", "path", "expected"),
        [
            ({"a": {"b": 1}}, "a.b", (True, 1)),
            ({"a": {"b": None}}, "a.b", (True, None)),
            ({"a": {}}, "a.b", (False, None)),
            ({"a": [10, 20]}, "a.1", (True, 20)),
            ({"a": [10, 20]}, "a.2", (False, None)),
            ({"a": [10, 20]}, "a.-1", (False, None)),
            ({"a": [10]}, "a.\uff10", (False, None)),  # a full-width digit is not an index
            ({"a": [10]}, "a." + "9" * 5000, (False, None)),
            ({"a": "text"}, "a.0", (False, None)),
            ({"a.b": 1}, "a.b", (False, None)),
            ({"": 1}, "", (True, 1)),
            ("not a mapping", "a", (False, None)),
        ],
    )
    def test_lookup(self, obj: object, path: str, expected: tuple[bool, object]) -> None:
        assert lookup(obj, path) == expected

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            ("x", "x"),
            ("", None),
            (0, "0"),
            (True, "true"),
            (2.5, "2.5"),
            (float("nan"), None),
            (float("inf"), None),
            (None, None),
            ({}, None),
            ([], None),
        ],
    )
    def test_render_value(self, value: object, text: str | None) -> None:
        assert render_value(value) == text

    def test_render_value_of_an_unprintable_integer(self) -> None:
        """Python refuses to print integers past 4300 digits; such a value does not render."""
        assert render_value(10**5000) is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "0", "id", "x.y"]), children, max_size=4)
    ),
    max_leaves=12,
)
SCALAR = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4)
)
MATCHER = (
    SCALAR
    | st.lists(SCALAR, max_size=3)
    | st.builds(lambda r: {"regex": r}, st.sampled_from(["a.*", "[0-9]+", "(", "x|y", ""]))
    | st.builds(lambda e: {"exists": e}, st.booleans())
)
PATH = st.sampled_from(["a", "b", "a.b", "a.0", "0", "id", "a.b.c", "x.y"])
TEMPLATE = st.lists(
    st.sampled_from(
        ["x", "{partner}", "{event_id}", "{payload.a}", "{payload.a.b}", "{claims.id}", "{", "}"]
    ),
    min_size=1,
    max_size=4,
).map("".join)
RULE = st.builds(
    lambda when_payload, when_claims, kind, template: unchecked_rule(
        "r", payload=when_payload, claims=when_claims, session_kind=kind, vendor_data=template
    ),
    st.dictionaries(PATH, MATCHER, max_size=2),
    st.dictionaries(PATH, MATCHER, max_size=2),
    st.none() | st.sampled_from(["user", "business"]),
    TEMPLATE,
)


@given(
    payload=st.dictionaries(st.sampled_from(["a", "b", "0", "id"]), JSON, max_size=4),
    claims=st.dictionaries(st.sampled_from(["a", "id", "session_kind"]), JSON, max_size=3),
    rules=st.lists(RULE, max_size=3),
    event_id=st.none() | st.text(max_size=4),
)
def test_arbitrary_input_raises_only_routing_error(
    payload: dict[str, Any], claims: dict[str, Any], rules: list[config.Rule], event_id: str | None
) -> None:
    """Whatever the payload, claims and rules, routing returns a route or a RoutingError."""
    share = (
        read_share_token(jwt.encode(claims, "k" * 32, algorithm="HS256"))
        if _finite(claims)
        else USER
    )
    try:
        result = route(partner="acme", payload=payload, token=share, event_id=event_id, rules=rules)
    except RoutingError as exc:
        code = exc.code
    else:
        code = "routed"
        assert result.rule == "r"
        assert result.vendor_data.strip()
    assert code in ("routed", "no_matching_rule", "vendor_data_unresolved")
    # the explanation is the same evaluation: it ends at the rule that matched, or tried them all
    trials = explain(partner="acme", payload=payload, token=share, rules=rules)
    matched = [trial.matched for trial in trials]
    if code == "no_matching_rule":
        assert matched == [False] * len(rules)
    else:
        assert matched == [False] * (len(trials) - 1) + [True]
    assert all(str(trial).startswith("rule 'r': ") for trial in trials)


def _finite(value: object) -> bool:
    """Claims with NaN are refused by the token reader; route only gets readable tokens."""
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    if isinstance(value, list):
        return all(_finite(item) for item in value)
    return True
