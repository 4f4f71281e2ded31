"""When an import attempt is ambiguous, and what settles it.

An import attempt is *ambiguous* when it may have redeemed the token without our knowing: it has
no recorded end (we crashed, or the commit of its answer failed), or it ended without an answer
(a timeout, a reset, a 5xx). Before the import job may send another import for that share, it
reads the notification's recorded attempts through these rules; only Didit's session list
(a reconcile attempt) settles the doubt.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import get_args

from bridge import didit
from bridge.store import AttemptKind, ImportAttempt


class AttemptResult(StrEnum):
    """An attempt's recorded result where Didit's answer code does not say it all (an answered
    import records its ``didit.AnswerCode``; a reconcile that failed, the read error's)."""

    AMBIGUOUS = "ambiguous"  # an import that ended without an answer (timeout, reset, 5xx)
    # A reconcile whose session list showed the import happened, or showed it did not: either
    # settles an ambiguous import. Any other result leaves the ambiguity in place.
    RECONCILED_IMPORTED = "imported"
    RECONCILED_NOT_IMPORTED = "not_imported"
    AMBIGUOUS_MATCH = "ambiguous_match"  # a reconcile that listed several candidate sessions


#: Every result of an import attempt Didit refused with a 403: what ``didit.classify_forbidden``
#: reads the refusal as.
REFUSALS: frozenset[didit.AnswerCode] = frozenset(get_args(didit.ForbiddenReason))


def is_ambiguous(attempt: ImportAttempt) -> bool:
    """An import that never ended, or ended without an answer: it may have redeemed."""
    return attempt.kind is AttemptKind.IMPORT and (
        attempt.ended_at is None or attempt.result == AttemptResult.AMBIGUOUS
    )


def unresolved_ambiguity(attempts: Sequence[ImportAttempt]) -> bool:
    """Whether the next attempt must reconcile before it may import.

    True when Didit refused an import (a 403) after an ambiguous attempt of ours
    (``refused_after_ambiguous``): no import is sent again, only the list can settle it. Also
    when the latest *import* attempt is ambiguous (no end recorded, or ended without an answer)
    and no reconcile attempt after it ended ``RECONCILED_IMPORTED`` or ``RECONCILED_NOT_IMPORTED``.
    """
    if refused_after_ambiguous(attempts) is not None:
        return True
    ordered = sorted(attempts, key=lambda attempt: attempt.attempt)
    imports = [attempt for attempt in ordered if attempt.kind is AttemptKind.IMPORT]
    if not imports or not is_ambiguous(imports[-1]):
        return False
    last = imports[-1].attempt
    settled = (AttemptResult.RECONCILED_IMPORTED, AttemptResult.RECONCILED_NOT_IMPORTED)
    return not any(
        attempt.kind is AttemptKind.RECONCILE
        and attempt.attempt > last
        and attempt.result in settled
        for attempt in ordered
    )


def refused_after_ambiguous(attempts: Sequence[ImportAttempt]) -> didit.AnswerCode | None:
    """What Didit said (one of ``REFUSALS``) when it refused an import after an ambiguous import
    attempt of ours; None when it never did. Such a 403 most likely refuses our
    own redeemed share, whatever its words: the share must not be imported again, nor judged on
    those words while its session may still appear in the list. ``already_imported`` wins over
    any other refusal: the share is redeemed (by us, almost surely), only its session is still
    unknown."""
    ambiguous = False
    said: set[didit.AnswerCode] = set()
    for attempt in sorted(attempts, key=lambda attempt: attempt.attempt):
        if attempt.kind is not AttemptKind.IMPORT:
            continue
        if is_ambiguous(attempt):
            ambiguous = True
        elif ambiguous and attempt.result in REFUSALS:
            said.add(didit.AnswerCode(attempt.result))
    if didit.AnswerCode.ALREADY_IMPORTED in said:
        return didit.AnswerCode.ALREADY_IMPORTED
    return min(said) if said else None
