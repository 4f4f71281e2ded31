"""Reconciliation: did an ambiguous import create a session? (didit-api.md §6)"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bridge.didit._fields import datetime_or_none, int_or_none, shared_from, str_or_none

RECONCILE_SKEW = timedelta(seconds=30)  # clock difference tolerated between us and Didit


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRow:
    """One row of ``GET /v3/sessions/``; every field but ``session_id`` may be missing."""

    session_id: str
    session_number: int | None = None
    status: str | None = None
    session_kind: str | None = None
    workflow_id: str | None = None
    vendor_data: str | None = None
    created_at: datetime | None = None
    shared_from_session: str | None = None  # UNCONFIRMED in list rows; used when present
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, row: object) -> SessionRow | None:
        """Read a row tolerantly; None when it has no usable ``session_id``."""
        if not isinstance(row, Mapping):
            return None
        session_id = str_or_none(row.get("session_id"))
        if not session_id:
            return None
        return cls(
            session_id=session_id,
            session_number=int_or_none(row.get("session_number")),
            status=str_or_none(row.get("status")),
            session_kind=str_or_none(row.get("session_kind")),
            workflow_id=str_or_none(row.get("workflow_id")),
            vendor_data=str_or_none(row.get("vendor_data")),
            created_at=datetime_or_none(row.get("created_at")),
            shared_from_session=shared_from(row.get("shared_from_session")),
            raw=dict(row),
        )


@dataclass(frozen=True, slots=True)
class AmbiguousMatch:
    """Several new sessions could be the import: do not guess (see :func:`find_imported`)."""

    candidates: tuple[SessionRow, ...]


def find_imported(
    rows: Sequence[SessionRow],
    *,
    vendor_data: str,
    workflow_id: str,
    since: datetime,
    source_session_id: str | None = None,
    taken: Collection[str] = (),
    skew: timedelta = RECONCILE_SKEW,
) -> SessionRow | AmbiguousMatch | None:
    """Find the session an ambiguous import created, among rows listed after it.

    A row matches when its vendor_data and workflow equal ours and it was created at or after
    ``since - skew`` (``since``: when the first ambiguous attempt started). A row without
    ``vendor_data`` never matches: vendor_data is what ties a session to the partner whose share
    it is, and adopting a session on a guess could hand one partner's session to another. A
    missing workflow or creation time does not exclude a row (the list call filtered on them and
    the vendor_data already ties it to us). Never a
    match: a session in ``taken`` (already recorded as another share's import: two shares of
    one customer often share vendor_data), or a row whose ``shared_from_session`` names another
    source session than ``source_session_id`` (the token's ``session_id`` claim). When several
    rows match, rows whose ``shared_from_session`` names ours win.

    Returns the session when exactly one matches, None when none does (the import did not
    happen: the pipeline may call import again), or :class:`AmbiguousMatch`. On ambiguity the
    pipeline must neither import again nor report a failure: it keeps the attempt ambiguous and
    reconciles again later (an operator decides if it persists until the deadline).
    """
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    floor = since - skew
    matches = [
        row
        for row in rows
        if row.vendor_data == vendor_data
        and (row.workflow_id is None or row.workflow_id == workflow_id)
        and (row.created_at is None or row.created_at >= floor)
        and row.session_id not in taken
        and not _from_another_source(row, source_session_id)
    ]
    unique = list({row.session_id: row for row in matches}.values())
    if len(unique) > 1 and source_session_id is not None:
        linked = [row for row in unique if row.shared_from_session == source_session_id]
        if linked:
            unique = linked
    if not unique:
        return None
    if len(unique) == 1:
        return unique[0]
    return AmbiguousMatch(tuple(unique))


def _from_another_source(row: SessionRow, source_session_id: str | None) -> bool:
    return (
        source_session_id is not None
        and row.shared_from_session is not None
        and row.shared_from_session != source_session_id
    )
