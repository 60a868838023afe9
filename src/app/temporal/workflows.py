"""CrisisResponseWorkflow: validate, initialize, run each mission phase in order, finalize.

A phase that still fails after its retries is recorded as failed; with the ``continue`` failure
policy (the default) the remaining phases go on, with ``abort`` they are skipped and the
completed phases that declare a ``compensate_action`` are compensated in reverse order. A
cancelled crisis stops its running phase, skips the rest and compensates the same way. Phases
that require approval wait for an ``approve`` / ``reject`` signal; phases can be added while
the crisis runs (``add_phases`` update). Workflow code stays deterministic: time comes from
``workflow.now()`` and all I/O happens in activities.

Bookkeeping costs the server no round trips of its own: the workflow checks the request itself
(deterministic), the agent's activity writes its completed phase to the record before it
reports (the last phase's entry goes in with the final write instead), and the other record
writes are local activities, run in the worker inside its workflow task. So a phase costs the
server one activity, as a bare workflow's would, and each record write is still atomic,
idempotent and done before the crisis moves on. A write that keeps failing in the worker (a full
disk, a corrupt record) moves to a regular activity, which retries until the store is usable
again and whose failures ``liara status`` shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError, RetryState, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from app.temporal import metrics
    from app.temporal.activities import CrisisActivities
    from app.temporal.errors import innermost_message
    from app.temporal.models import (
        MAX_PHASES,
        AgentReport,
        ApprovalDecision,
        CrisisCompletion,
        CrisisProgress,
        CrisisRequest,
        CrisisResult,
        CrisisStart,
        CrisisSummary,
        FailurePolicy,
        MissionPhase,
        PhaseAssignment,
        PhaseLogEntry,
        PhaseOutcome,
        PhaseStatus,
    )
    from app.temporal.uninterrupted import uninterrupted
    from app.temporal.validation import check_crisis_request
    from app.temporal.visibility import CRISIS_STATUS, CRISIS_TARGET

__all__ = ["CrisisResponseWorkflow", "CrisisRequest", "CrisisResult", "MissionPhase"]

#: Bookkeeping activities are quick; if the record store is unavailable they retry until it
#: is back, so a full disk pauses a crisis instead of losing it.
BOOKKEEPING_TIMEOUT = timedelta(seconds=30)
BOOKKEEPING_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
#: A record write in the worker gets three quick tries before it moves to a regular activity.
LOCAL_BOOKKEEPING_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=3)
#: Patch guarding the upserts of ``CrisisStatus``; histories from before it replay without them.
STATUS_SEARCH_ATTRIBUTE_PATCH = "crisis-status-search-attribute"
#: Patch under which a cancel waits for the phase record being written; histories from before it
#: end at once when cancelled during that write (no compensation, record left running).
CANCEL_AFTER_LOG_PATCH = "cancel-waits-for-phase-record"
#: Patch under which the workflow checks the request itself, the agent's activity records its
#: completed phase and the other record writes are local activities; histories from before it
#: replay with a regular activity for each step. It implies the two patches above.
RECORDS_IN_WORKER_PATCH = "records-in-worker"

_FINISHED_STAGES = ("compensating", "finalizing", "done")


@workflow.defn(failure_exception_types=[ValidationError])
class CrisisResponseWorkflow:
    def __init__(self) -> None:
        self._crisis_id = ""
        self._target = ""
        self._stage = "validating"
        self._current_phase: str | None = None
        self._plan: list[MissionPhase] = []
        self._phases: list[PhaseOutcome] = []
        self._compensations: list[PhaseOutcome] = []
        self._decisions: dict[str, ApprovalDecision] = {}
        self._records_in_worker = False

    @workflow.run
    async def run(self, request: CrisisRequest) -> CrisisResult:
        # Metrics record nothing while a history replays and add no commands to it.
        metrics.count_crisis_started()
        try:
            result = await self._respond(request)
        except asyncio.CancelledError:
            metrics.count_crisis_ended("cancelled")
            raise
        except (FailureError, ValidationError):  # these fail the workflow (others retry its task)
            metrics.count_crisis_ended("failed")
            raise
        metrics.count_crisis_ended(result.status)
        return result

    async def _respond(self, request: CrisisRequest) -> CrisisResult:
        info = workflow.info()
        self._crisis_id = request.crisis_id
        self._target = request.target_member
        workflow.logger.info(
            "Crisis %s started for %s with %d phases",
            request.crisis_id,
            request.target_member,
            len(request.missions),
            extra=self._log_extra(),
        )

        self._records_in_worker = workflow.patched(RECORDS_IN_WORKER_PATCH)
        if self._records_in_worker:
            ordered = check_crisis_request(request)  # deterministic: no activity needed
        else:
            ordered = await self._activity(CrisisActivities.validate_crisis_request, request)
        # Phases added by update while validation ran come after the requested ones.
        self._plan = ordered + self._plan
        self._phases = [_pending(p) for p in ordered] + self._phases

        self._stage = "initializing"
        initializing = self._bookkeeping(CrisisActivities.initialize_crisis_response, self._crisis(request))
        cancelled = aborted = False
        if self._records_in_worker:
            try:  # a cancel meanwhile lets the record be created, then ends the crisis before its phases
                await uninterrupted(initializing)
            except asyncio.CancelledError:
                cancelled = True
        else:
            await initializing

        self._stage = "running"
        if not cancelled:
            try:
                aborted = await self._run_phases(request)
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            workflow.logger.warning("Crisis %s cancelled", request.crisis_id, extra=self._log_extra())
        self._current_phase = None
        self._close_unfinished(PhaseStatus.CANCELLED if cancelled else PhaseStatus.SKIPPED)

        if cancelled or aborted:
            await self._compensate(request)

        self._stage = "finalizing"
        summary = CrisisSummary.of(p.status for p in self._phases)
        success = not cancelled and summary.completed_phases == summary.total_phases
        status = "cancelled" if cancelled else "completed" if success else "failed"
        self._set_status_attribute(status)
        completed_at = workflow.now()
        record_path: str = await self._bookkeeping(
            CrisisActivities.finalize_crisis_response,
            CrisisCompletion(
                crisis_id=request.crisis_id,
                status=status,
                completed_at=completed_at,
                phases=self._phases,
                compensations=self._compensations,
                crisis=self._crisis(request),
            ),
        )
        self._stage = "done"
        if cancelled:
            raise asyncio.CancelledError(f"crisis {request.crisis_id} was cancelled")
        return CrisisResult(
            crisis_id=request.crisis_id,
            target=request.target_member,
            success=success,
            status=status,
            started_at=info.start_time,
            completed_at=completed_at,
            phases=self._phases,
            summary=summary,
            failed_phases=[p.phase_id for p in self._phases if p.status == PhaseStatus.FAILED],
            record_path=record_path,
            compensations=self._compensations,
        )

    async def _run_phases(self, request: CrisisRequest) -> bool:
        """Run the plan (which may grow while it runs); return True if a failure aborted it."""
        index = 0
        while index < len(self._plan):
            phase = self._plan[index]
            self._current_phase = phase.phase_id
            outcome, recorded = await self._run_phase(request, index, phase)
            self._phases[index] = outcome
            metrics.count_phase(outcome.action, outcome.status)
            index += 1
            # Not asked to record (None): the last phase, which the final record write includes,
            # unless phases were added while it ran.
            if recorded is False or (recorded is None and index < len(self._plan)):
                await self._log(request, outcome)
            elif recorded is None:
                workflow.logger.info(
                    "Mission phase %s completed (crisis %s)",
                    phase.phase_id,
                    request.crisis_id,
                    extra=self._log_extra(phase.phase_id),
                )
            if outcome.status == PhaseStatus.FAILED and request.failure_policy == FailurePolicy.ABORT:
                workflow.logger.warning(
                    "Crisis %s aborted after phase %s failed",
                    request.crisis_id,
                    phase.phase_id,
                    extra=self._log_extra(phase.phase_id),
                )
                return True
        return False

    async def _run_phase(
        self, request: CrisisRequest, index: int, phase: MissionPhase
    ) -> tuple[PhaseOutcome, bool | None]:
        """How the phase ended, and whether its activity has recorded it (see ``_perform``)."""
        outcome = _pending(phase)
        if phase.requires_approval:
            self._phases[index] = outcome.model_copy(update={"status": PhaseStatus.AWAITING_APPROVAL})
            self._set_status_attribute("awaiting_approval")
            decision = await self._await_decision(phase)
            self._set_status_attribute("running")
            if decision is None:
                return _failed(outcome, f"approval timed out after {phase.approval_timeout:g} s", attempts=0), False
            if not decision.approved:
                reason = f": {decision.reason}" if decision.reason else ""
                return _failed(outcome, f"rejected by {decision.decided_by}{reason}", attempts=0), False
            outcome = outcome.model_copy(update={"approved_by": decision.decided_by})
        self._phases[index] = outcome.model_copy(update={"status": PhaseStatus.RUNNING})
        try:
            last = index == len(self._plan) - 1
            return await self._perform(request, phase, outcome, compensation=False, record=not last)
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise asyncio.CancelledError from err
            return self._phase_failure(request, phase, outcome, err), False

    async def _await_decision(self, phase: MissionPhase) -> ApprovalDecision | None:
        timeout = timedelta(seconds=phase.approval_timeout) if phase.approval_timeout else None
        try:
            await workflow.wait_condition(lambda: phase.phase_id in self._decisions, timeout=timeout)
        except TimeoutError:
            return None
        return self._decisions[phase.phase_id]

    async def _perform(
        self, request: CrisisRequest, phase: MissionPhase, outcome: PhaseOutcome, *, compensation: bool, record: bool
    ) -> tuple[PhaseOutcome, bool | None]:
        """Run the phase's agent: the completed outcome, and whether the activity recorded it
        (None if ``record`` is false: it was not asked to).
        """
        report: AgentReport = await workflow.execute_activity_method(
            CrisisActivities.perform_agent_mission,
            PhaseAssignment(
                crisis_id=request.crisis_id,
                workflow_id=workflow.info().workflow_id,
                phase=phase,
                compensation=compensation,
                # The agent's success and its record entry in one activity: one server round trip.
                record_as=outcome if self._records_in_worker and record else None,
            ),
            start_to_close_timeout=timedelta(seconds=phase.timeout or request.phase_timeout_seconds),
            heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout_seconds),
            retry_policy=(phase.retry or request.retry).to_policy(),
            # Wait for the agent to stop before moving on: a cancelled phase must not run on.
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        completed = outcome.model_copy(
            update={
                "status": PhaseStatus.COMPLETED,
                "attempts": report.attempt,
                "output": report.output,
                "timestamp": workflow.now(),
            }
        )
        return completed, report.recorded

    def _phase_failure(
        self, request: CrisisRequest, phase: MissionPhase, outcome: PhaseOutcome, err: ActivityError
    ) -> PhaseOutcome:
        error = innermost_message(err)
        workflow.logger.warning(
            "Mission phase %s failed: %s", phase.phase_id, error, extra=self._log_extra(phase.phase_id)
        )
        exhausted = err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
        attempts = (phase.retry or request.retry).maximum_attempts if exhausted else None
        return _failed(outcome, error, attempts=attempts)

    def _close_unfinished(self, status: PhaseStatus) -> None:
        """After an abort or cancel: the phase that was running and those never started."""
        now = workflow.now()
        for index, outcome in enumerate(self._phases):
            if outcome.status in (PhaseStatus.PENDING, PhaseStatus.AWAITING_APPROVAL, PhaseStatus.RUNNING):
                closed = status if outcome.status != PhaseStatus.PENDING else PhaseStatus.SKIPPED
                self._phases[index] = outcome.model_copy(update={"status": closed, "timestamp": now})
                metrics.count_phase(outcome.action, closed)

    async def _compensate(self, request: CrisisRequest) -> None:
        """Undo completed phases that declare a compensation, last first; record each one."""
        self._stage = "compensating"
        self._set_status_attribute("compensating")
        completed = {p.phase_id for p in self._phases if p.status == PhaseStatus.COMPLETED}
        for phase in reversed(self._plan):
            if phase.phase_id not in completed or not phase.compensate_action:
                continue
            undo = phase.model_copy(update={"action": phase.compensate_action, "requires_approval": False})
            self._current_phase = phase.phase_id
            try:
                outcome, recorded = await self._perform(request, undo, _pending(undo), compensation=True, record=True)
            except ActivityError as err:
                outcome, recorded = self._phase_failure(request, undo, _pending(undo), err), False
            self._compensations.append(outcome)
            metrics.count_phase(outcome.action, outcome.status, compensation=True)
            if not recorded:
                await self._log(request, outcome, compensation=True)
        self._current_phase = None

    async def _log(self, request: CrisisRequest, outcome: PhaseOutcome, *, compensation: bool = False) -> None:
        writing = self._bookkeeping(
            CrisisActivities.log_mission_phase,
            PhaseLogEntry(
                crisis_id=request.crisis_id,
                target=request.target_member,
                outcome=outcome,
                compensation=compensation,
                crisis=self._crisis(request),
            ),
        )
        if not self._earlier_patch(CANCEL_AFTER_LOG_PATCH):
            await writing
            return
        # A cancel that arrives while a phase is being recorded must not cut the crisis short:
        # the (quick, idempotent) write finishes, then the cancel takes its usual path
        # (skip the rest, compensate, finalize the record as cancelled).
        await uninterrupted(writing)

    async def _bookkeeping(self, activity: Callable[..., Any], argument: Any) -> Any:
        """Write the record: in the worker (a local activity) if it can, else as a regular
        activity, visible to ``liara status`` and retried until the store is usable again.
        """
        if not self._records_in_worker:
            return await self._activity(activity, argument)
        try:
            return await workflow.execute_local_activity_method(
                activity, argument, start_to_close_timeout=BOOKKEEPING_TIMEOUT, retry_policy=LOCAL_BOOKKEEPING_RETRY
            )
        except FailureError as err:  # a local activity's own failure, not wrapped in an ActivityError
            if is_cancelled_exception(err):
                raise
            workflow.logger.warning(
                "Record write %s keeps failing in the worker (%s); retrying it as an activity",
                activity.__name__,
                innermost_message(err),
                extra=self._log_extra(),
            )
        return await self._activity(activity, argument)

    async def _activity(self, activity: Callable[..., Any], argument: Any) -> Any:
        return await workflow.execute_activity_method(
            activity, argument, start_to_close_timeout=BOOKKEEPING_TIMEOUT, retry_policy=BOOKKEEPING_RETRY
        )

    def _crisis(self, request: CrisisRequest) -> CrisisStart:
        """The crisis as the workflow sees it now: creates its record, or rebuilds a missing one."""
        info = workflow.info()
        return CrisisStart(
            crisis_id=request.crisis_id,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            target=request.target_member,
            initiated_by=request.initiated_by,
            started_at=info.start_time,
            phases=self._phases,
        )

    def _earlier_patch(self, patch_id: str) -> bool:
        """An earlier patch: always on for crises started under ``records-in-worker``, so those
        do not record a marker (and a ``TemporalChangeVersion`` upsert) for it.
        """
        return self._records_in_worker or workflow.patched(patch_id)

    def _log_extra(self, phase_id: str | None = None) -> dict[str, str | None]:
        """Crisis fields of a log record (the SDK adds the workflow id); see app.temporal.logs."""
        return {"crisis_id": self._crisis_id, "phase_id": phase_id}

    def _set_status_attribute(self, status: str) -> None:
        """Keep ``CrisisStatus`` current for crises the agency started with search attributes."""
        if workflow.info().typed_search_attributes.get(CRISIS_TARGET) is None:
            return
        if self._earlier_patch(STATUS_SEARCH_ATTRIBUTE_PATCH):
            workflow.upsert_search_attributes([CRISIS_STATUS.value_set(status)])

    @workflow.query
    def progress(self) -> CrisisProgress:
        """Where the crisis stands: its stage, the phase running now and how each phase ended."""
        return CrisisProgress(
            crisis_id=self._crisis_id,
            target=self._target,
            stage=self._stage,
            current_phase=self._current_phase,
            phases=self._phases,
            summary=CrisisSummary.of(p.status for p in self._phases),
            compensations=self._compensations,
        )

    @workflow.signal
    def decide_approval(self, decision: ApprovalDecision) -> None:
        """Approve or reject a phase that requires approval; the first decision counts."""
        self._decisions.setdefault(decision.phase_id, decision)

    @workflow.update
    def add_phases(self, phases: list[MissionPhase]) -> CrisisProgress:
        """Append phases (in priority order among themselves) to a crisis that is still running."""
        added = sorted(phases, key=lambda phase: phase.priority)
        self._plan.extend(added)
        self._phases.extend(_pending(p) for p in added)
        workflow.logger.info("Crisis %s: %d phases added", self._crisis_id, len(added), extra=self._log_extra())
        return self.progress()

    @add_phases.validator
    def _check_added_phases(self, phases: list[MissionPhase]) -> None:
        if self._stage in _FINISHED_STAGES:
            raise ValueError(f"crisis {self._crisis_id} has finished running phases; start a new crisis")
        if not phases:
            raise ValueError("give at least one phase to add")
        known = {p.phase_id for p in self._plan}
        for phase in phases:
            if phase.phase_id in known:
                raise ValueError(f"phase_id {phase.phase_id!r} is already part of the crisis")
            known.add(phase.phase_id)
        if len(known) > MAX_PHASES:
            raise ValueError(f"a crisis has at most {MAX_PHASES} phases")


def _pending(phase: MissionPhase) -> PhaseOutcome:
    return PhaseOutcome(
        phase_id=phase.phase_id, agent_id=phase.agent_id, action=phase.action, requires_approval=phase.requires_approval
    )


def _failed(outcome: PhaseOutcome, error: str, *, attempts: int | None) -> PhaseOutcome:
    return outcome.model_copy(
        update={"status": PhaseStatus.FAILED, "attempts": attempts, "error": error, "timestamp": workflow.now()}
    )
