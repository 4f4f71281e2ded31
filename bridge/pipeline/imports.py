"""The import job: redeem one accepted share exactly once, then record its outcome
(docs/architecture.md, Imports and outcomes).

One run of :class:`ImportHandler` for a pending notification:

1. If an earlier attempt is ambiguous (it may have redeemed the token: it ended without an
   answer, or with a 5xx), *reconcile* first: list our sessions for the notification's
   vendor_data and workflow since that attempt. Found: the share is imported, without calling
   import again. A session already recorded on another notification, listed as shared from
   another source session, or listed without our vendor_data, is never this one's (two shares
   of one customer often share vendor_data; vendor_data starts with the partner, so it is never
   another partner's).
2. Past the token's deadline: ``expired``, without a call.
3. Wait for the pacer, record the attempt as started (committed), call import.
4. Map Didit's answer: 201 imported; 401/400/404 rejected or failed; a 403 reconciles before it
   may say ``already_imported``, ``token_not_for_this_application`` or ``upstream_forbidden``;
   429, 5xx and lost answers go back to the durable queue.

A final answer's attempt end, the outcome, its event and one delivery per subscribed destination
are written in one transaction (:meth:`Store.record_outcome`), which also erases the token: a 201
is never on record without its outcome, so no later run can take it for an answered attempt
and send a second import. "Already imported" after an ambiguous attempt of ours means
the share is ours: no import is sent again, and a list that does not show the session yet is
asked again. A reconcile that cannot decide is asked again until an hour past the deadline; then
the share ends ``imported`` without a session (Didit said it was imported) or ``failed``
``reconcile_unresolved``, with an alert.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import structlog

from bridge import didit
from bridge.config import Settings
from bridge.events import EVENT_FOR_STATUS, ShareFacts, render_event
from bridge.observability import Metrics
from bridge.pacing import Pacer, PacerClosed
from bridge.pipeline.ambiguity import (
    AttemptResult,
    is_ambiguous,
    refused_after_ambiguous,
    unresolved_ambiguity,
)
from bridge.pipeline.fair_share import RejectionWatch
from bridge.store import (
    AttemptEnd,
    AttemptKind,
    FinalOutcome,
    ImportAttempt,
    Job,
    NewEvent,
    Notification,
    Store,
)
from bridge.store.ids import new_id
from bridge.tracing import NO_TRACING, Tracing
from bridge.types import (
    Complete,
    DiditSession,
    Done,
    JobResult,
    NotificationStatus,
    Reason,
    Release,
    Retry,
)

log = structlog.get_logger()


class OwnReason(StrEnum):
    """The reason codes of outcomes the import job decides without a verdict of Didit's."""

    TOKEN_ERASED = "token_erased"  # noqa: S105 - a code
    SHARE_TOKEN_EXPIRED = "share_token_expired"  # noqa: S105 - a code
    RECONCILE_UNRESOLVED = "reconcile_unresolved"
    SESSION_NOT_LISTED = "session_not_listed"


RECONCILE_GIVE_UP_S = 3600.0  # an undecided reconcile is asked again until this long past the
MAX_TOKEN_TTL_S = 86_400.0  # deadline (a token without exp: received + Didit's longest TTL)


@dataclass(frozen=True, slots=True)
class _Undecided:
    """Reconciliation could not tell (a failed list call, several candidate sessions, a 403
    after an ambiguous attempt with no session listed yet)."""

    why: str
    delay_s: float | None  # None: the worker's backoff (growing, capped), not a fixed poll


class ImportHandler:
    """The worker's handler for ``import`` jobs."""

    def __init__(
        self,
        *,
        store: Store,
        client: didit.DiditClient,
        pacer: Pacer,
        settings: Callable[[], Settings],
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        rejections: RejectionWatch | None = None,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self._store = store
        self._client = client
        self._pacer = pacer
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._rejections = rejections
        self._tracing = tracing

    async def __call__(self, job: Job) -> JobResult:
        notification = await self._store.load_notification(job.ref)
        if notification is None or notification.status is not NotificationStatus.PENDING:
            return Complete()
        identity = {
            "notification_id": notification.id,
            "partner": notification.partner,
            "rule": notification.route.rule,
        }
        structlog.contextvars.bind_contextvars(**identity)
        with self._tracing.job(
            "import", notification.trace_context, job_attempt=job.attempts, **identity
        ) as span:
            result = await self._run(job, notification)
            # What _retry and _finish bound for the attempt's log line, the span says too.
            bound = structlog.contextvars.get_contextvars()
            span.set(outcome=bound.get("outcome"), reason=bound.get("reason"))
            return result

    async def _run(self, job: Job, notification: Notification) -> JobResult:
        attempts = await self._store.list_import_attempts(notification.id)
        if unresolved_ambiguity(attempts):
            since = min(attempt.started_at for attempt in attempts if is_ambiguous(attempt))
            settled = await self._reconciled(job, notification, since, attempts)
            if settled is not None:
                return settled  # imported, or asked again later: never import blindly
        if notification.deadline is not None and self._clock() >= notification.deadline:
            return await self._expire(job, notification)
        if notification.token is None:
            return await self._finish(
                job, notification, _failed(OwnReason.TOKEN_ERASED, "no token kept")
            )
        return await self._import(job, notification, notification.token)

    async def _import(self, job: Job, notification: Notification, token: str) -> JobResult:
        try:
            # Its partner's turn, the most urgent of its tokens first (bridge.turns).
            await self._pacer.acquire(notification.deadline, lane=notification.partner)
        except PacerClosed:
            return Release()  # stopping, and nothing sent yet: the next start sends it
        if notification.deadline is not None and self._clock() >= notification.deadline:
            return await self._expire(job, notification)
        attempt = await self._store.begin_import_attempt(job)
        if attempt is None:
            return Done()  # lease lost: the new owner runs it
        route = notification.route
        with self._tracing.step("didit.import_shared", attempt=attempt) as span:
            answer = await self._client.import_shared(
                share_token=token,
                workflow_id=route.workflow_id,
                vendor_data=route.vendor_data,
                trust_review=route.trust_review,
            )
            span.set(http_status=answer.http_status, result=answer.verdict.code)
        self._pacer.observe(answer.rate_limit, answer.http_status)
        verdict = answer.verdict
        if self._rejections is not None and isinstance(verdict, didit.Imported | didit.Rejected):
            self._rejections.observe(
                notification.partner, rejected=isinstance(verdict, didit.Rejected)
            )
        ambiguous = isinstance(verdict, didit.NoAnswer) or (
            isinstance(verdict, didit.RetryLater) and verdict.ambiguous
        )
        ending = AttemptEnd(
            attempt=attempt,
            http_status=answer.http_status,
            result=_attempt_result(verdict, ambiguous=ambiguous),
            latency_ms=round(answer.latency_s * 1000),
            error=None if isinstance(verdict, didit.Imported) else verdict.message[:500],
        )
        final = isinstance(verdict, didit.Imported | didit.Rejected | didit.Failed)
        # A final answer is recorded with its outcome, in one transaction: a 201 whose outcome
        # was lost (a crash, a failed commit) must not read as an answered attempt, which the
        # next run would follow with a second import; unended, it reads as ambiguous instead.
        if not final and not await self._store.end_import_attempt(
            job,
            attempt,
            http_status=ending.http_status,
            result=ending.result,
            latency_ms=ending.latency_ms,
            error=ending.error,
        ):
            return Done()
        log.info(
            "import_answered",
            http_status=answer.http_status,
            result=verdict.code,
            latency_ms=round(answer.latency_s * 1000),
        )
        match verdict:
            case didit.Imported(session=session):
                return await self._finish(
                    job,
                    notification,
                    FinalOutcome(status=NotificationStatus.IMPORTED, session=session.as_session()),
                    ending=ending,
                )
            case didit.Rejected():
                return await self._finish(
                    job,
                    notification,
                    FinalOutcome(status=NotificationStatus.REJECTED, reason=verdict.reason),
                    ending=ending,
                )
            case didit.Failed():
                return await self._finish(
                    job,
                    notification,
                    FinalOutcome(status=NotificationStatus.FAILED, reason=verdict.reason),
                    ending=ending,
                )
            case didit.NeedsReconcile(fallback=fallback):
                return await self._after_forbidden(job, notification, fallback)
            case didit.RetryLater(retry_after_s=retry_after):
                return self._retry(notification, verdict.code, retry_after)
            case didit.NoAnswer():
                return self._retry(notification, verdict.code, None)

    async def _after_forbidden(
        self, job: Job, notification: Notification, fallback: didit.Rejected | didit.Failed
    ) -> JobResult:
        """A 403 may mean our own earlier attempt redeemed the token: look before judging."""
        attempts = await self._store.list_import_attempts(notification.id)
        imports = [a for a in attempts if a.kind is AttemptKind.IMPORT]
        since = min((a.started_at for a in imports), default=notification.received_at)
        settled = await self._reconciled(job, notification, since, attempts)
        if settled is not None:
            return settled
        status = (
            NotificationStatus.REJECTED
            if isinstance(fallback, didit.Rejected)
            else NotificationStatus.FAILED
        )
        return await self._finish(
            job, notification, FinalOutcome(status=status, reason=fallback.reason)
        )

    async def _reconciled(
        self,
        job: Job,
        notification: Notification,
        since: float,
        attempts: Sequence[ImportAttempt],
    ) -> JobResult | None:
        """Reconcile, and what settles this run: imported, asked again later, or None (the
        list shows no import: the caller may import, or judge a 403 on its words).

        After an ambiguous attempt of ours, a 403 most likely refuses our own redeemed share,
        whatever its words (Didit's are not documented): an empty list does not let it be
        judged on them, nor imported again, while its session may still appear.
        """
        found = await self._reconcile(job, notification, since)
        if isinstance(found, DiditSession):
            return await self._finish(
                job, notification, FinalOutcome(status=NotificationStatus.IMPORTED, session=found)
            )
        if isinstance(found, Done):
            return found
        refused = refused_after_ambiguous(attempts)
        if found is None and refused is None:
            return None
        undecided = _NOT_LISTED if found is None else found
        redeemed = refused is didit.AnswerCode.ALREADY_IMPORTED
        return await self._undecided(job, notification, undecided, redeemed=redeemed)

    async def _reconcile(
        self, job: Job, notification: Notification, since: float
    ) -> DiditSession | _Undecided | Done | None:
        """Did an earlier attempt import the share? The session; None (no); undecided; or
        Done (the lease was lost)."""
        attempt = await self._store.begin_import_attempt(job, kind=AttemptKind.RECONCILE)
        if attempt is None:
            return Done()
        with self._tracing.step("didit.reconcile", attempt=attempt) as span:
            found = await self._find_session(job, notification, since, attempt)
            span.set(
                result=AttemptResult.RECONCILED_IMPORTED
                if isinstance(found, DiditSession)
                else AttemptResult.RECONCILED_NOT_IMPORTED
                if found is None
                else found.why
            )
        return found

    async def _find_session(
        self, job: Job, notification: Notification, since: float, attempt: int
    ) -> DiditSession | _Undecided | None:
        """The reconcile call (attempt ``attempt``, begun): the session, None, or undecided."""
        route = notification.route
        started = time.perf_counter()
        try:
            rows = await self._client.list_sessions(
                vendor_data=route.vendor_data,
                workflow_id=route.workflow_id,
                session_kind=notification.session_kind.value,
                date_from=datetime.fromtimestamp(since, UTC) - didit.RECONCILE_SKEW,
            )
        except didit.DiditError as exc:
            await self._store.end_import_attempt(
                job,
                attempt,
                http_status=exc.http_status,
                result=exc.code,
                latency_ms=_ms_since(started),
                error=exc.message[:500],
            )
            log.warning("reconcile_failed", code=exc.code, http_status=exc.http_status)
            self._count_reconcile(exc.code)
            return _Undecided(f"reconcile: {exc.code}", exc.retry_after_s)
        taken = await self._store.sessions_recorded(
            [row.session_id for row in rows], other_than=notification.id
        )
        found = didit.find_imported(
            rows,
            vendor_data=route.vendor_data,
            workflow_id=route.workflow_id,
            since=datetime.fromtimestamp(since, UTC),
            source_session_id=notification.source_session_id,
            taken=taken,
        )
        result = (
            AttemptResult.AMBIGUOUS_MATCH
            if isinstance(found, didit.AmbiguousMatch)
            else AttemptResult.RECONCILED_NOT_IMPORTED
            if found is None
            else AttemptResult.RECONCILED_IMPORTED
        )
        await self._store.end_import_attempt(
            job, attempt, http_status=200, result=result, latency_ms=_ms_since(started)
        )
        log.info("reconciled", result=result, candidates=len(rows))
        self._count_reconcile(result)
        if isinstance(found, didit.AmbiguousMatch):
            # Several sessions could be ours: importing again or failing could both be wrong.
            return _Undecided("reconcile: several candidate sessions", None)
        if found is None:
            return None
        return DiditSession(
            session_id=found.session_id, session_number=found.session_number, status=found.status
        )

    async def _undecided(
        self, job: Job, notification: Notification, undecided: _Undecided, *, redeemed: bool
    ) -> JobResult:
        """Ask again later, until the give-up time; then an outcome an operator can act on:
        ``imported`` without a session when Didit said the share was imported (``redeemed``:
        a redeemed token is never reported as failed), else ``failed`` ``reconcile_unresolved``.
        """
        give_up_at = _give_up_at(notification)
        if self._clock() < give_up_at:
            return Retry(undecided.why, delay_s=undecided.delay_s, not_after=give_up_at)
        if redeemed:
            outcome = FinalOutcome(
                status=NotificationStatus.IMPORTED,
                reason=Reason(
                    code=OwnReason.SESSION_NOT_LISTED,
                    message="Didit said the share is already imported after an unanswered "
                    "import of ours, but its session never appeared in the session list",
                ),
            )
        else:
            outcome = _failed(
                OwnReason.RECONCILE_UNRESOLVED,
                f"could not tell whether an unanswered import applied ({undecided.why})",
            )
        return await self._finish(job, notification, outcome)

    def _retry(
        self, notification: Notification, code: didit.AnswerCode, retry_after: float | None
    ) -> Retry:
        # Never sleep past the deadline: the next run records `expired` (after reconciling).
        structlog.contextvars.bind_contextvars(outcome="retry", reason=code)
        if self._metrics is not None:
            self._metrics.imports.labels(outcome="retry", reason=code).inc()
        return Retry(code, delay_s=retry_after, not_after=notification.deadline)

    async def _expire(self, job: Job, notification: Notification) -> JobResult:
        reason = Reason(
            code=OwnReason.SHARE_TOKEN_EXPIRED,
            message="the share token expired before it could be redeemed",
        )
        return await self._finish(
            job, notification, FinalOutcome(status=NotificationStatus.EXPIRED, reason=reason)
        )

    async def _finish(
        self,
        job: Job,
        notification: Notification,
        outcome: FinalOutcome,
        *,
        ending: AttemptEnd | None = None,
    ) -> JobResult:
        """Record the outcome, its event and its deliveries (and the end of the attempt that
        decided it) in one transaction."""
        now = self._clock()
        event_type = EVENT_FOR_STATUS[outcome.status]
        event_id = new_id("evt", now)
        body = render_event(
            event_id=event_id,
            event_type=event_type,
            created_at=now,
            share=ShareFacts.of(notification),
            session=outcome.session,
            reason=outcome.reason,
        )
        destinations = self._subscribers(notification, event_type.value)
        event = NewEvent(id=event_id, type=event_type, body=body, destinations=destinations)
        if not await self._store.record_outcome(job, outcome, [event], ending=ending):
            # The lease was lost (the retry below is fenced out: the new owner decides), or the
            # session is already another notification's (a race of two reconciles): run again
            # now, and the next reconcile leaves that session out.
            log.warning("outcome_not_recorded", job_id=job.id)
            return Retry("the outcome was not recorded", delay_s=0.0)
        reason = outcome.reason.code if outcome.reason else None
        structlog.contextvars.bind_contextvars(outcome=outcome.status.value, reason=reason)
        log.info(
            "share_finished",
            outcome=outcome.status.value,
            reason=reason,
            didit_session_id=outcome.session.session_id if outcome.session else None,
        )
        self._count_outcome(outcome.status, reason)
        return Done()

    def _count_outcome(self, status: NotificationStatus, reason: str | None) -> None:
        # A failed share needs an operator (our key, our balance, our workflow), and so does an
        # imported one with a reason (its session is unknown): alert.
        alert = status is NotificationStatus.FAILED or (
            status is NotificationStatus.IMPORTED and reason is not None
        )
        if alert:
            log.error("alert", kind=reason or "failed")
        if self._metrics is None:
            return
        self._metrics.imports.labels(outcome=status.value, reason=reason or "").inc()
        if alert:
            self._metrics.alerts.labels(kind=reason or "failed").inc()
        if status is not NotificationStatus.FAILED:
            self._metrics.token_erasures.inc()  # record_outcome erased it (a failed one waits)

    def _count_reconcile(self, result: AttemptResult | didit.AnswerCode) -> None:
        if self._metrics is not None:
            self._metrics.reconciliations.labels(result=result).inc()

    def _subscribers(self, notification: Notification, event_type: str) -> tuple[str, ...]:
        """The rule's destinations that take this event type.

        A destination removed from the config since intake still gets its delivery: it waits,
        visible in ``bridge destinations list``, rather than being dropped.
        """
        configured = self._settings().destinations
        return tuple(
            name
            for name in notification.route.destinations
            if name not in configured or event_type in configured[name].events
        )


def _failed(code: OwnReason, message: str) -> FinalOutcome:
    return FinalOutcome(status=NotificationStatus.FAILED, reason=Reason(code=code, message=message))


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


_NOT_LISTED = _Undecided("reconcile: refused after an unanswered import, session not listed", None)


def _attempt_result(
    verdict: didit.ImportVerdict, *, ambiguous: bool
) -> AttemptResult | didit.AnswerCode:
    """What an import attempt's answer was: ``AMBIGUOUS`` when it may have applied unseen; for a
    403 what it said (``already_imported``, ...), which steers later runs
    (``refused_after_ambiguous``)."""
    if ambiguous:
        return AttemptResult.AMBIGUOUS
    if isinstance(verdict, didit.NeedsReconcile):
        return verdict.fallback.code
    return verdict.code


def _give_up_at(notification: Notification) -> float:
    """An hour past the deadline, and never less than an hour after the notification was
    received or last reopened by an operator's retry (a pending one's ``updated_at``)."""
    deadline = notification.deadline
    if deadline is None:
        deadline = notification.received_at + MAX_TOKEN_TTL_S
    return max(deadline, notification.updated_at) + RECONCILE_GIVE_UP_S
