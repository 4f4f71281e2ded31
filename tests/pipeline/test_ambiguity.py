"""The rules that read a notification's recorded attempts: must the next run reconcile first?"""

from __future__ import annotations

from bridge.didit import AnswerCode
from bridge.pipeline.ambiguity import (
    AttemptResult,
    refused_after_ambiguous,
    unresolved_ambiguity,
)
from bridge.store import AttemptKind, ImportAttempt


class Attempts:
    """A notification's attempts as the store lists them, grown one at a time."""

    def __init__(self) -> None:
        self.recorded: list[ImportAttempt] = []

    def begin(self, kind: AttemptKind = AttemptKind.IMPORT) -> None:
        number = len(self.recorded) + 1
        self.recorded.append(
            ImportAttempt(
                notification_id="ntf_1",
                attempt=number,
                kind=kind,
                started_at=float(number),
                ended_at=None,
                http_status=None,
                result=None,
                latency_ms=None,
                error=None,
            )
        )

    def end(self, *, http_status: int | None, result: str) -> None:
        last = self.recorded.pop()
        self.recorded.append(
            ImportAttempt(
                notification_id=last.notification_id,
                attempt=last.attempt,
                kind=last.kind,
                started_at=last.started_at,
                ended_at=last.started_at + 0.5,
                http_status=http_status,
                result=result,
                latency_ms=500,
                error=None,
            )
        )

    def record(self, kind: AttemptKind, *, http_status: int | None, result: str) -> None:
        self.begin(kind)
        self.end(http_status=http_status, result=result)

    def unresolved(self) -> bool:
        # The store lists attempts oldest first; the rules must not depend on it.
        return unresolved_ambiguity(list(reversed(self.recorded)))


def test_ambiguity_follows_the_last_import_and_reconciliation() -> None:
    """Unended or ambiguous import: reconcile; a 2xx reconcile or an answered import: not."""
    attempts = Attempts()
    assert not attempts.unresolved()
    attempts.begin()
    assert attempts.unresolved()  # a crash here leaves it unended
    attempts.end(http_status=None, result=AttemptResult.AMBIGUOUS)
    assert attempts.unresolved()
    attempts.record(AttemptKind.RECONCILE, http_status=None, result=AnswerCode.UPSTREAM_UNAVAILABLE)
    assert attempts.unresolved()  # the reconcile got no answer either
    attempts.record(AttemptKind.RECONCILE, http_status=200, result=AttemptResult.AMBIGUOUS_MATCH)
    assert attempts.unresolved()  # answered, but could not tell
    attempts.record(
        AttemptKind.RECONCILE, http_status=200, result=AttemptResult.RECONCILED_NOT_IMPORTED
    )
    assert not attempts.unresolved()
    attempts.record(AttemptKind.IMPORT, http_status=429, result=AnswerCode.RATE_LIMITED)
    assert not attempts.unresolved()
    attempts.record(AttemptKind.IMPORT, http_status=None, result=AttemptResult.AMBIGUOUS)
    attempts.record(
        AttemptKind.RECONCILE, http_status=200, result=AttemptResult.RECONCILED_IMPORTED
    )
    assert not attempts.unresolved()


def test_a_refusal_after_an_ambiguous_import_is_never_settled_by_an_empty_list() -> None:
    """A 403 after an ambiguous attempt: only the session list may settle it, and
    a list that does not show the session yet does not."""
    attempts = Attempts()
    attempts.record(AttemptKind.IMPORT, http_status=None, result=AttemptResult.AMBIGUOUS)
    attempts.record(
        AttemptKind.RECONCILE, http_status=200, result=AttemptResult.RECONCILED_NOT_IMPORTED
    )
    attempts.record(
        AttemptKind.IMPORT, http_status=403, result=AnswerCode.TOKEN_NOT_FOR_THIS_APPLICATION
    )
    attempts.record(
        AttemptKind.RECONCILE, http_status=200, result=AttemptResult.RECONCILED_NOT_IMPORTED
    )
    assert attempts.unresolved()
    assert refused_after_ambiguous(attempts.recorded) == AnswerCode.TOKEN_NOT_FOR_THIS_APPLICATION
    attempts.record(AttemptKind.IMPORT, http_status=403, result=AnswerCode.ALREADY_IMPORTED)
    assert refused_after_ambiguous(attempts.recorded) == AnswerCode.ALREADY_IMPORTED  # it wins


def test_a_refusal_before_any_ambiguous_import_is_judged_on_its_words() -> None:
    attempts = Attempts()
    attempts.record(AttemptKind.IMPORT, http_status=403, result=AnswerCode.ALREADY_IMPORTED)
    assert refused_after_ambiguous(attempts.recorded) is None
    assert not attempts.unresolved()
    attempts.record(AttemptKind.IMPORT, http_status=None, result=AttemptResult.AMBIGUOUS)
    assert refused_after_ambiguous(attempts.recorded) is None  # the refusal came before it
    assert attempts.unresolved()
