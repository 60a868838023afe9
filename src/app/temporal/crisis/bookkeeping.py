"""``CrisisBookkeeping``: the crisis record's writes that the workflow makes itself (an agent's
activity writes its own completed phase).

They cost the server no round trips of their own: each is a local activity, run in the worker
inside its workflow task. A write that keeps failing in the worker (a full disk, a corrupt
record) moves to a regular activity, which retries until the store is usable again and whose
failures ``liara status`` shows. Each carries what it needs to rebuild a missing record.

The record is created before any agent runs. When the crisis's first phase runs at once (a
sequential crisis whose first phase has no approval gate), its own activity creates the record
before its agent runs (``PhaseAssignment.crisis``), which saves the crisis a local activity;
otherwise, and whenever that activity could not create it, the workflow creates it here.

Likewise the last phase's activity gives the record its final state when every other phase has
completed. While it runs, phases added or a cancel first hold the final write for the workflow
(``hold``): then that activity leaves it to ``finalize``; a hold that comes once the activity has
finalized the record is too late, and the crisis has completed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, FailureError, is_cancelled_exception

from app.temporal.activities import CrisisActivities
from app.temporal.crisis.observability import log_fields
from app.temporal.crisis.state import CrisisState
from app.temporal.errors import innermost_message
from app.temporal.models import (
    AgentReport,
    CrisisCompletion,
    CrisisRequest,
    CrisisSnapshot,
    CrisisStatus,
    FinalWriteHold,
    PhaseLogEntry,
    PhaseOutcome,
)
from app.temporal.uninterrupted import uninterrupted

#: Bookkeeping activities are quick; if the record store is unavailable they retry until it
#: is back, so a full disk pauses a crisis instead of losing it.
BOOKKEEPING_TIMEOUT = timedelta(seconds=30)
BOOKKEEPING_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
#: A record write in the worker gets three quick tries before it moves to a regular activity.
LOCAL_BOOKKEEPING_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=3)


class CrisisBookkeeping:
    def __init__(self, request: CrisisRequest, state: CrisisState, *, created: bool) -> None:
        self._request = request
        self._state = state
        #: Whether the record is known to exist (a continued crisis's does).
        self._created = created
        #: The record as the first phase's activity is to create it, until that activity starts.
        self._deferred: CrisisSnapshot | None = None
        #: Where the record is and when the crisis ended, once the last phase's activity finalized it.
        self._final: tuple[str, datetime] | None = None
        #: Holds of the final write under way (``hold``).
        self._holding = 0

    async def create(self) -> None:
        """Create the crisis's record. A cancel meanwhile lets it be created, then takes its usual path."""
        await uninterrupted(self._write(CrisisActivities.initialize_crisis_response, self.snapshot()))
        self._created = True

    def defer_creation(self) -> None:
        """Leave the record's creation to the first phase's activity (``creation``): the record as
        it is now, every phase pending.
        """
        self._deferred = self.snapshot()

    def creation(self) -> CrisisSnapshot | None:
        """For the activity about to run an agent: the record it must create first, if creating it
        is left to it (once).
        """
        deferred, self._deferred = self._deferred, None
        return deferred

    async def created_by(self, report: AgentReport) -> bool:
        """After the activity that was given ``creation()`` reported: create the record here if it
        did not (say its worker is of an earlier release); True if the activity's agent did not run
        for that (then the phase runs again).
        """
        if report.created:
            self._created = True
            return False
        await self.create()
        return report.created is False

    async def ensure_created(self) -> None:
        """Before a write that needs the record: create it if no activity is known to have (the
        one given ``creation()`` failed or was cancelled, or never ran). Creating it again is
        harmless.
        """
        self._deferred = None
        if not self._created:
            await self.create()

    async def log_phase(self, outcome: PhaseOutcome, *, compensation: bool = False) -> None:
        """Record a phase's entry. A cancel meanwhile lets the (quick, idempotent) write finish,
        then takes its usual path.
        """
        entry = PhaseLogEntry(
            crisis_id=self._request.crisis_id,
            target=self._request.target_member,
            outcome=outcome,
            compensation=compensation,
        )

        async def created_then_written() -> None:
            await self.ensure_created()
            await self._write(
                CrisisActivities.log_mission_phase,
                entry,
                # Only the regular activity gets the whole crisis, to rebuild a record that is missing.
                fallback=lambda: entry.model_copy(update={"crisis": self.snapshot()}),
            )

        await uninterrupted(created_then_written())

    def finished_by(self, report: AgentReport) -> bool:
        """After the activity of a phase given ``PhaseAssignment.finalize``: whether it gave the
        record its final state (then ``finalize`` writes nothing more).
        """
        if report.record_path is None or report.finished_at is None:
            return False
        self._created = True
        self._final = (report.record_path, report.finished_at)
        return True

    @property
    def final(self) -> bool:
        """Whether the last phase's activity has finalized the record."""
        return self._final is not None

    def completed_at(self) -> datetime:
        """When the crisis ended: as its record says if an activity finalized it, else now."""
        return self._final[1] if self._final else workflow.now()

    async def hold(self, phase_id: str) -> bool:
        """Keep the final write for the workflow while the activity of ``phase_id``, which may
        finalize the record, runs (phases are being added, or a cancel came): False if it is too
        late, that activity having finalized the record already.
        """
        hold = FinalWriteHold(crisis_id=self._request.crisis_id, phase_id=phase_id, crisis=self.snapshot())
        self._holding += 1
        try:
            held = await uninterrupted(self._write(CrisisActivities.hold_final_write, hold))
        finally:
            self._holding -= 1
        self._created = True
        return held

    async def holds_settled(self) -> None:
        """Once no hold is under way: what a hold was for (the phases added) is on the board."""
        await workflow.wait_condition(lambda: self._holding == 0)

    async def finalize(self, status: CrisisStatus, completed_at: datetime) -> str:
        """Give the record its final state; return where it is."""
        if self._final is not None and status == CrisisStatus.COMPLETED:
            return self._final[0]  # the last phase's activity wrote it
        await self.ensure_created()
        completion = CrisisCompletion(
            crisis_id=self._request.crisis_id,
            status=status,
            completed_at=completed_at,
            phases=self._state.phases,
            compensations=self._state.compensations,
            cancel_requests=self._state.cancel_requests,
            crisis=self.snapshot(with_phases=False),
        )
        return await self._write(CrisisActivities.finalize_crisis_response, completion)

    def snapshot(self, *, with_phases: bool = True) -> CrisisSnapshot:
        """The crisis as the workflow sees it now: creates its record, or rebuilds a missing one."""
        info = workflow.info()
        return CrisisSnapshot(
            crisis_id=self._request.crisis_id,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            target=self._request.target_member,
            initiated_by=self._request.initiated_by,
            started_at=self._state.started_at,
            playbook=self._request.playbook,
            schedule=self._request.schedule,
            phases=self._state.phases if with_phases else [],
            first_run_id=info.first_execution_run_id,
            rerun_of=self._request.rerun_of,
        )

    async def _write(
        self, activity: Callable[..., Any], argument: Any, fallback: Callable[[], Any] | None = None
    ) -> Any:
        """Write the record: in the worker (a local activity) if it can, else as a regular
        activity (with ``fallback()`` as its argument if given), visible to ``liara status`` and
        retried until the store is usable again.
        """
        try:
            return await workflow.execute_local_activity_method(
                activity, argument, start_to_close_timeout=BOOKKEEPING_TIMEOUT, retry_policy=LOCAL_BOOKKEEPING_RETRY
            )
        except FailureError as err:  # a local activity's own failure, not wrapped in an ActivityError
            if is_cancelled_exception(err) or (isinstance(err, ApplicationError) and err.non_retryable):
                raise  # (non-retryable: no store can accept that write, say a crisis id already taken)
            workflow.logger.warning(
                "Record write %s keeps failing in the worker (%s); retrying it as an activity",
                activity.__name__,
                innermost_message(err),
                extra=log_fields(self._request.crisis_id),
            )
        return await workflow.execute_activity_method(
            activity,
            fallback() if fallback else argument,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
