from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.didit import (
    MAX_RETRY_AFTER_S,
    MESSAGE_MAX_CHARS,
    AmbiguousMatch,
    Failed,
    Imported,
    NeedsReconcile,
    NoAnswer,
    Rejected,
    RetryLater,
    SessionRow,
    classify_forbidden,
    classify_import,
    error_message,
    find_imported,
    parse_rate_limit,
)
from bridge.observability import REDACTED_JWT
from bridge.types import DiditSession, Reason

TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzZXNzaW9uX2lkIjoiYWJjIiwiZXhwIjoxNzUzNjM0MjY2fQ"
    ".c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
)
NOW = 1_800_000_000.0


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


# ---------------------------------------------------------------------------------------------


class TestErrorMessage:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            (
                body({"detail": "Share token invalid or expired."}),
                "Share token invalid or expired.",
            ),
            (body({"detail": ["first", "second"]}), "first; second"),
            (body({"detail": {"share_token": ["bad"]}}), "share_token: bad"),
            (body({"message": "Insufficient balance"}), "Insufficient balance"),
            (body({"error": "nope"}), "nope"),
            (body({"error": {"code": "x", "message": "the message"}}), "the message"),
            (
                body({"list_type": ["a"], "entry_type": ['"x" is not a valid choice.']}),
                'list_type: a; entry_type: "x" is not a valid choice.',
            ),
            (
                body({"features": [["Each workflow feature must be an object."]]}),
                "features: Each workflow feature must be an object.",
            ),
            (
                body(["Provide vendor_data_list or set delete_all=true."]),
                "Provide vendor_data_list or set delete_all=true.",
            ),
            (body({"workflow_id": {"inner": ["deep"]}}), "workflow_id: inner: deep"),
            (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
            (b"", ""),
            (b"\xff\xfe broken \x80", "\ufffd\ufffd broken \ufffd"),
            (body({"detail": None, "message": "fallback"}), "fallback"),
            (body(42), "42"),
            (b"line one\nline\ttwo\r\n", "line one line two"),
        ],
    )
    def test_every_body_shape(self, raw: bytes, expected: str) -> None:
        assert error_message(raw) == expected

    def test_a_parsed_value_is_accepted(self) -> None:
        assert error_message({"detail": "already parsed"}) == "already parsed"

    def test_long_bodies_are_bounded(self) -> None:
        message = error_message(body({"detail": "x" * 10_000}))
        assert len(message) == MESSAGE_MAX_CHARS
        assert message.endswith("…")

    def test_a_share_token_is_scrubbed(self) -> None:
        message = error_message(body({"detail": f"token {TOKEN} is expired", "x": [TOKEN]}))
        assert TOKEN not in message
        assert "eyJ" not in message
        assert REDACTED_JWT in message

    def test_a_token_cut_in_its_signature_is_scrubbed_too(self) -> None:
        message = error_message(f"echo: {TOKEN[:-5]}".encode())
        assert TOKEN.split(".")[1] not in message

    @given(st.binary(max_size=2048))
    def test_any_bytes_give_a_bounded_message(self, raw: bytes) -> None:
        message = error_message(raw)
        assert isinstance(message, str)
        assert len(message) <= MESSAGE_MAX_CHARS
        assert "\n" not in message

    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(st.text(max_size=8), children, max_size=4)
            ),
            max_leaves=30,
        ),
        st.integers(min_value=0, max_value=3),
    )
    def test_any_json_gives_a_message_without_the_token(self, value: Any, depth: int) -> None:
        for _ in range(depth):
            value = {"detail": [value, f"share token {TOKEN} refused"]}
        message = error_message(json.dumps([value, TOKEN]).encode())
        assert len(message) <= MESSAGE_MAX_CHARS
        assert TOKEN not in message
        assert TOKEN[:30] not in message


# ---------------------------------------------------------------------------------------------


class TestRateLimitHeaders:
    def test_all_headers(self) -> None:
        info = parse_rate_limit(
            {
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": "12",
                "X-RateLimit-Reset": str(int(NOW) + 40),
                "Retry-After": "7",
            },
            now=NOW,
        )
        assert info is not None
        assert (info.limit, info.remaining, info.reset_epoch) == (300, 12, NOW + 40)
        assert info.reset_in_s == pytest.approx(40.0)
        assert info.retry_after_s == 7.0

    def test_retry_after_as_an_http_date(self) -> None:
        when = datetime.fromtimestamp(NOW + 30, tz=UTC)
        info = parse_rate_limit({"retry-after": format_datetime(when, usegmt=True)}, now=NOW)
        assert info is not None
        assert info.retry_after_s == pytest.approx(30.0)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("-5", 0.0),
            ("99999", MAX_RETRY_AFTER_S),
            ("1.5", 1.5),
            ("soon", None),
            ("", None),
            ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
            ("nan", None),
        ],
    )
    def test_retry_after_is_tolerant_and_capped(self, value: str, expected: float | None) -> None:
        info = parse_rate_limit({"Retry-After": value}, now=NOW)
        assert info is not None
        assert info.retry_after_s == expected

    def test_a_small_reset_is_read_as_seconds_from_now(self) -> None:
        info = parse_rate_limit({"X-RateLimit-Reset": "25"}, now=NOW)
        assert info is not None
        assert (info.reset_epoch, info.reset_in_s) == (None, 25.0)

    def test_garbage_values_are_none(self) -> None:
        info = parse_rate_limit(
            {"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "-3"}, now=NOW
        )
        assert info is not None
        assert (info.limit, info.remaining, info.reset_in_s, info.retry_after_s) == (
            None,
            0,
            None,
            None,
        )

    def test_no_headers_no_info(self) -> None:
        assert parse_rate_limit({"content-type": "application/json"}, now=NOW) is None


# ---------------------------------------------------------------------------------------------

CREATED = {
    "session_id": "11111111-2222-3333-4444-555555555555",
    "session_number": 43762,
    "session_url": None,
    "status": "In Review",
    "workflow_id": "wf-1",
    "vendor_data": "user-1",
    "session_kind": "user",
}


class TestClassifyImport:
    def test_201_is_imported_with_the_session(self) -> None:
        verdict = classify_import(201, body(CREATED), {})
        assert isinstance(verdict, Imported)
        session = verdict.session
        assert (session.session_id, session.session_number, session.status) == (
            CREATED["session_id"],
            43762,
            "In Review",
        )
        assert (session.session_kind, session.workflow_id, session.vendor_data) == (
            "user",
            "wf-1",
            "user-1",
        )
        assert session.raw["session_url"] is None
        assert verdict.http_status == 201
        assert session.as_session() == DiditSession(
            session_id="11111111-2222-3333-4444-555555555555",
            session_number=43762,
            status="In Review",
        )

    def test_201_needs_only_a_session_id(self) -> None:
        verdict = classify_import(201, body({"session_id": "s-1", "session_number": "7"}), {})
        assert isinstance(verdict, Imported)
        assert (verdict.session.session_id, verdict.session.session_number) == ("s-1", 7)
        assert verdict.session.status is None

    @pytest.mark.parametrize(
        "raw",
        [body({"status": "In Review"}), b"", b"not json", body(["x"]), body({"session_id": ""})],
    )
    def test_201_without_a_session_id_is_ambiguous_never_a_failure(self, raw: bytes) -> None:
        verdict = classify_import(201, raw, {})
        assert isinstance(verdict, NoAnswer)
        assert verdict.http_status == 201

    @pytest.mark.parametrize(
        "raw",
        [
            body({"detail": "Share token invalid or expired."}),
            body({"detail": "Invalid share_token: signature verification failed"}),
            body({"message": "Token has expired"}),
            body(["Share token invalid or expired."]),
            b"",
        ],
    )
    def test_401_for_the_token_is_rejected(self, raw: bytes) -> None:
        verdict = classify_import(401, raw, {})
        assert isinstance(verdict, Rejected)
        assert verdict.code == "token_invalid_or_expired"
        assert verdict.http_status == 401

    @pytest.mark.parametrize(
        "raw",
        [
            body({"detail": "Invalid API key."}),
            body({"detail": "Authentication credentials were not provided."}),
            body({"error": {"code": "unauthorized", "message": "x-api-key header is invalid"}}),
            body(["Invalid api_key"]),
        ],
    )
    def test_401_for_our_api_key_is_failed(self, raw: bytes) -> None:
        verdict = classify_import(401, raw, {})
        assert isinstance(verdict, Failed)
        assert verdict.code == "upstream_auth"

    @pytest.mark.parametrize(
        ("raw", "fallback_type", "code"),
        [
            (body({"detail": "Session has already been imported."}), Rejected, "already_imported"),
            (
                body({"detail": "This share token was already redeemed"}),
                Rejected,
                "already_imported",
            ),
            (
                body({"detail": "Token not intended for your application."}),
                Rejected,
                "token_not_for_this_application",
            ),
            (
                body({"message": "Share token was issued for another application"}),
                Rejected,
                "token_not_for_this_application",
            ),
            (body({"detail": "Insufficient credits."}), Failed, "upstream_forbidden"),
            (
                body({"detail": "You do not have permission to perform this action."}),
                Failed,
                "upstream_forbidden",
            ),
            (b"", Failed, "upstream_forbidden"),
            (b"<html>Forbidden</html>", Failed, "upstream_forbidden"),
        ],
    )
    def test_403_is_reconciled_first(self, raw: bytes, fallback_type: type, code: str) -> None:
        verdict = classify_import(403, raw, {})
        assert isinstance(verdict, NeedsReconcile)
        assert verdict.http_status == 403
        assert isinstance(verdict.fallback, fallback_type)
        assert verdict.fallback.code == code

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            (
                "Token not intended for your application, or session has already been imported.",
                "already_imported",
            ),
            ("Insufficient credits for this application", "upstream_forbidden"),
            ("share token is not valid for this application", "token_not_for_this_application"),
            ("something else entirely", "upstream_forbidden"),
        ],
    )
    def test_classify_forbidden(self, text: str, reason: str) -> None:
        assert classify_forbidden(text) == reason

    @pytest.mark.parametrize(
        ("raw", "expected_type", "code"),
        [
            (
                body({"detail": "Original session no longer exists."}),
                Rejected,
                "source_session_not_found",
            ),
            (body({"detail": "Not found."}), Rejected, "source_session_not_found"),
            (
                body({"detail": "workflow_id not found in your application."}),
                Failed,
                "workflow_not_found",
            ),
            (body({"workflow_id": ["Workflow does not exist."]}), Failed, "workflow_not_found"),
            (b"<html><h1>Not Found</h1></html>", Failed, "unexpected_response"),
            (b"", Failed, "unexpected_response"),
        ],
    )
    def test_404(self, raw: bytes, expected_type: type, code: str) -> None:
        verdict = classify_import(404, raw, {})
        assert isinstance(verdict, expected_type)
        assert verdict.code == code

    @pytest.mark.parametrize("status", [400, 422])
    @pytest.mark.parametrize(
        "raw", [body({"share_token": ["This field is required."]}), body(["bad"]), b"oops"]
    )
    def test_400_and_422_are_bad_requests(self, status: int, raw: bytes) -> None:
        verdict = classify_import(status, raw, {})
        assert isinstance(verdict, Rejected)
        assert verdict.code == "bad_request"
        assert verdict.message

    def test_field_keyed_400_message(self) -> None:
        verdict = classify_import(400, body({"share_token": ["This field is required."]}), {})
        assert verdict.message == "share_token: This field is required."

    def test_402_is_insufficient_balance(self) -> None:
        verdict = classify_import(402, body({"message": "Insufficient balance"}), {})
        assert isinstance(verdict, Failed)
        assert verdict.reason == Reason(
            code="insufficient_balance", message="Insufficient balance", http_status=402
        )

    def test_429_with_retry_after_seconds(self) -> None:
        verdict = classify_import(429, body({"detail": "Slow down"}), {"Retry-After": "12"})
        assert isinstance(verdict, RetryLater)
        assert (verdict.code, verdict.retry_after_s, verdict.ambiguous) == (
            "rate_limited",
            12.0,
            False,
        )

    def test_429_with_retry_after_date(self) -> None:
        when = format_datetime(datetime.fromtimestamp(NOW + 9, tz=UTC), usegmt=True)
        verdict = classify_import(429, b"", {"Retry-After": when}, now=NOW)
        assert isinstance(verdict, RetryLater)
        assert verdict.retry_after_s == pytest.approx(9.0)

    @pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
    def test_5xx_retries_later_and_is_ambiguous(self, status: int) -> None:
        verdict = classify_import(status, b"<html>oops</html>", {})
        assert isinstance(verdict, RetryLater)
        assert (verdict.code, verdict.retry_after_s, verdict.ambiguous) == (
            "upstream_unavailable",
            None,
            True,
        )

    def test_503_honours_retry_after(self) -> None:
        verdict = classify_import(503, b"", {"Retry-After": "30"})
        assert isinstance(verdict, RetryLater)
        assert verdict.retry_after_s == 30.0

    def test_408_retries_later(self) -> None:
        verdict = classify_import(408, b"", {})
        assert isinstance(verdict, RetryLater)
        assert not verdict.ambiguous

    def test_409_is_reconciled(self) -> None:
        verdict = classify_import(409, body({"detail": "Conflict"}), {})
        assert isinstance(verdict, NeedsReconcile)
        assert verdict.fallback.code == "unexpected_response"

    @pytest.mark.parametrize("status", [301, 302, 307, 308, 405, 410, 415, 100])
    def test_anything_else_is_an_unexpected_response(self, status: int) -> None:
        verdict = classify_import(status, body({"detail": "Moved"}), {"location": "/elsewhere"})
        assert isinstance(verdict, Failed)
        assert verdict.code == "unexpected_response"
        assert str(status) in verdict.message

    def test_messages_never_hold_the_token(self) -> None:
        for status in (400, 401, 403, 404, 500):
            verdict = classify_import(status, body({"detail": f"bad token {TOKEN}"}), {})
            assert TOKEN not in verdict.message
            assert TOKEN not in repr(verdict)

    @given(st.integers(min_value=100, max_value=599), st.binary(max_size=512))
    def test_any_answer_is_classified_and_a_2xx_is_never_final_failure(
        self, status: int, raw: bytes
    ) -> None:
        """Whatever comes back, a verdict results; a 2xx is never rejected or failed."""
        verdict = classify_import(status, raw, {"Retry-After": "x"})
        assert verdict.http_status == status
        if 200 <= status < 300:
            assert isinstance(verdict, Imported | NoAnswer)
        if status == 403:
            assert isinstance(verdict, NeedsReconcile)


# ---------------------------------------------------------------------------------------------

SINCE = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def row(session_id: str, *, minutes: float = 1, **overrides: Any) -> SessionRow:
    raw: dict[str, Any] = {
        "session_id": session_id,
        "vendor_data": "acme:1",
        "workflow_id": "wf-1",
        "created_at": (SINCE + timedelta(minutes=minutes)).isoformat(),
        **overrides,
    }
    parsed = SessionRow.from_json(raw)
    assert parsed is not None
    return parsed


def find(rows: list[SessionRow], **kwargs: Any) -> SessionRow | AmbiguousMatch | None:
    return find_imported(rows, vendor_data="acme:1", workflow_id="wf-1", since=SINCE, **kwargs)


class TestFindImported:
    def test_exactly_one_new_row_is_the_import(self) -> None:
        found = find([row("a")])
        assert isinstance(found, SessionRow)
        assert found.session_id == "a"

    def test_no_row_means_not_imported(self) -> None:
        assert find([]) is None

    def test_older_rows_and_other_entities_do_not_count(self) -> None:
        rows = [
            row("old", minutes=-5),
            row("other-vendor", vendor_data="acme:2"),
            row("other-workflow", workflow_id="wf-2"),
        ]
        assert find(rows) is None

    def test_a_row_slightly_before_since_counts_within_the_skew(self) -> None:
        found = find([row("a", minutes=-0.25)])
        assert isinstance(found, SessionRow)
        assert find([row("a", minutes=-0.25)], skew=timedelta(0)) is None

    def test_a_missing_workflow_or_time_does_not_exclude_a_row(self) -> None:
        bare = SessionRow.from_json({"session_id": "a", "vendor_data": "acme:1"})
        assert bare is not None
        assert find([bare]) == bare

    @pytest.mark.parametrize("vendor_data", [None, "", "globex:1", "ACME:1"])
    def test_a_row_without_our_vendor_data_is_never_adopted(self, vendor_data: str | None) -> None:
        """Listed without vendor_data (or with another): it may be another partner's session."""
        listed = SessionRow.from_json(
            {"session_id": "a", "workflow_id": "wf-1", "vendor_data": vendor_data}
        )
        assert listed is not None
        assert find([listed]) is None
        assert find([listed, row("b")]) == row("b")

    def test_several_rows_are_ambiguous(self) -> None:
        found = find([row("a"), row("b")])
        assert isinstance(found, AmbiguousMatch)
        assert {candidate.session_id for candidate in found.candidates} == {"a", "b"}

    def test_the_same_row_twice_is_one(self) -> None:
        found = find([row("a"), row("a")])
        assert isinstance(found, SessionRow)

    def test_shared_from_session_settles_several(self) -> None:
        rows = [
            row("a", shared_from_session="src-1"),
            row("b", shared_from_session={"session_id": "src-2"}),
        ]
        found = find(rows, source_session_id="src-2")
        assert isinstance(found, SessionRow)
        assert found.session_id == "b"

    def test_a_row_from_another_source_session_is_never_ours(self) -> None:
        """Two shares of one customer share vendor_data: the other share's session is not
        this one's import, alone or among others."""
        rows = [row("a", shared_from_session="src-1"), row("b")]
        assert find(rows[:1], source_session_id="src-2") is None
        found = find(rows, source_session_id="src-2")
        assert isinstance(found, SessionRow)
        assert found.session_id == "b"
        assert isinstance(find(rows), AmbiguousMatch)  # without our source, both could be ours

    def test_a_session_taken_by_another_notification_is_never_ours(self) -> None:
        rows = [row("a"), row("b")]
        found = find(rows, taken={"a"})
        assert isinstance(found, SessionRow)
        assert found.session_id == "b"
        assert find(rows, taken={"a", "b"}) is None

    @pytest.mark.parametrize(
        "raw", [None, "x", [], {"session_id": None}, {"session_id": ""}, {"status": "Approved"}]
    )
    def test_rows_without_a_session_id_are_unusable(self, raw: object) -> None:
        assert SessionRow.from_json(raw) is None

    def test_rows_are_read_tolerantly(self) -> None:
        parsed = SessionRow.from_json(
            {"session_id": 5, "session_number": True, "created_at": "yesterday", "status": 3}
        )
        assert parsed is not None
        assert (parsed.session_id, parsed.session_number, parsed.created_at, parsed.status) == (
            "5",
            None,
            None,
            "3",
        )
        naive = SessionRow.from_json({"session_id": "a", "created_at": "2026-11-25T10:00:00"})
        assert naive is not None
        assert naive.created_at == SINCE
        epoch = SessionRow.from_json({"session_id": "a", "created_at": SINCE.timestamp()})
        assert epoch is not None
        assert epoch.created_at == SINCE

    def test_a_naive_since_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone"):
            find_imported([], vendor_data="v", workflow_id="w", since=datetime(2026, 1, 1))  # noqa: DTZ001
