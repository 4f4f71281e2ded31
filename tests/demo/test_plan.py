from __future__ import annotations

from collections import Counter

import orjson
import pytest

from bridge.demo.plan import (
    ACCEPTED_IMPORTED,
    MIN_COUNT,
    PARTNERS,
    UNKNOWN_PARTNER,
    Scenario,
    mix_for,
)
from bridge.types import NotificationStatus
from tests.demo.helpers import plan_for


@pytest.mark.parametrize("count", [MIN_COUNT, 81, 300, 1000])
def test_the_mix_adds_up_to_the_count(count: int) -> None:
    mix = mix_for(count)
    assert mix.total == count
    assert len(plan_for(count)) == count


def test_too_small_a_count_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        mix_for(MIN_COUNT - 1)


def test_every_partner_sends_kyc_and_kyb() -> None:
    plan = plan_for(300)
    seen = {(m.partner, m.scenario) for m in plan if m.expected == ACCEPTED_IMPORTED}
    for partner in PARTNERS:
        assert (partner, Scenario.KYC) in seen
        assert (partner, Scenario.KYB) in seen


def test_indexes_follow_the_sending_order_and_duplicates_come_last() -> None:
    plan = plan_for(120)
    assert [m.index for m in plan] == list(range(len(plan)))
    phases = [m.phase for m in plan]
    assert phases == sorted(phases)
    assert 2 in phases


def test_each_refusal_expects_its_code() -> None:
    expected = {
        Scenario.EXPIRED: (422, "share_token_expired"),
        Scenario.FOREIGN: (422, "share_token_not_for_this_application"),
        Scenario.MALFORMED: (422, "malformed_share_token"),
        Scenario.UNKNOWN_PARTNER: (404, "unknown_partner"),
        Scenario.BAD_SIGNATURE: (401, "invalid_signature"),
    }
    plan = plan_for(100)
    for message in plan:
        if message.scenario in expected:
            assert (message.expected.http_status, message.expected.answer) == expected[
                message.scenario
            ]
            assert message.expected.outcome is None
    assert {m.scenario for m in plan} >= set(expected)


def test_only_bad_signatures_are_forged_and_only_unknown_partners_use_the_unknown_path() -> None:
    for message in plan_for(100):
        assert message.forged is (message.scenario is Scenario.BAD_SIGNATURE)
        assert (message.partner == UNKNOWN_PARTNER) is (
            message.scenario is Scenario.UNKNOWN_PARTNER
        )
        assert message.signer in PARTNERS


def test_a_deleted_source_session_is_accepted_then_rejected() -> None:
    gone = [m for m in plan_for(100) if m.scenario is Scenario.SOURCE_GONE]
    assert gone
    for message in gone:
        assert message.expected.http_status == 202
        assert message.expected.outcome is NotificationStatus.REJECTED
        assert message.expected.reason == "source_session_not_found"


def test_a_replay_repeats_an_imported_original_byte_for_byte() -> None:
    plan = plan_for(200)
    replays = [m for m in plan if m.scenario is Scenario.REPLAY]
    assert len(replays) == mix_for(200).replays
    for replay in replays:
        original = plan[replay.expected.duplicate_of or 0]
        assert replay.expected.duplicate_of == original.index < replay.index
        assert original.expected == ACCEPTED_IMPORTED
        assert (replay.body, replay.message_id, replay.partner) == (
            original.body,
            original.message_id,
            original.partner,
        )
        assert (replay.expected.http_status, replay.expected.answer) == (200, "duplicate")


def test_a_resent_share_carries_the_same_token_in_a_new_message() -> None:
    plan = plan_for(200)
    resent = [m for m in plan if m.scenario is Scenario.RESENT]
    assert len(resent) == mix_for(200).resent
    for message in resent:
        original = plan[message.expected.duplicate_of or 0]
        assert original.expected == ACCEPTED_IMPORTED
        assert message.message_id != original.message_id
        new, old = orjson.loads(message.body), orjson.loads(original.body)
        assert new["share_token"] == old["share_token"]
        assert new["event_id"] != old["event_id"]


def test_accepted_originals_have_distinct_customers_so_vendor_data_is_unique() -> None:
    plan = plan_for(300)
    customers = Counter(
        orjson.loads(m.body)["customer"]["id"] for m in plan if m.expected.outcome is not None
    )
    assert customers
    assert max(customers.values()) == 1


def test_the_same_seed_gives_the_same_plan() -> None:
    assert plan_for(100, seed=3) == plan_for(100, seed=3)
    assert plan_for(100, seed=3) != plan_for(100, seed=4)


def test_describe_names_the_expected_end_state() -> None:
    plan = plan_for(100)
    gone = next(m for m in plan if m.scenario is Scenario.SOURCE_GONE)
    replay = next(m for m in plan if m.scenario is Scenario.REPLAY)
    expired = next(m for m in plan if m.scenario is Scenario.EXPIRED)
    assert gone.expected.describe() == "202 accepted, then rejected (source_session_not_found)"
    assert replay.expected.describe() == f"200 duplicate of message #{replay.expected.duplicate_of}"
    assert expired.expected.describe() == "422 share_token_expired"
