"""CrisisResponseWorkflow: validate, initialize, run each mission phase in order, finalize.

A phase that still fails after its retries is recorded as failed and the remaining phases go
on; the result says which phases failed and why. Workflow code stays deterministic: time comes
from ``workflow.now()`` and all I/O happens in activities.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, RetryState

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from app.temporal.activities import CrisisActivities
    from app.temporal.errors import innermost_message
    from app.temporal.models import (
        AgentReport,
        CrisisCompletion,
        CrisisProgress,
        CrisisRequest,
        CrisisResult,
        CrisisStart,
        CrisisSummary,
        MissionPhase,
        PhaseAssignment,
        PhaseLogEntry,
        PhaseOutcome,
        PhaseStatus,
    )

__all__ = ["CrisisResponseWorkflow", "CrisisRequest", "CrisisResult", "MissionPhase"]

#: Bookkeeping activities are quick; if the record store is unavailable they retry until it
#: is back, so a full disk pauses a crisis instead of losing it.
BOOKKEEPING_TIMEOUT = timedelta(seconds=30)
BOOKKEEPING_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


@workflow.defn(failure_exception_types=[ValidationError])
class CrisisResponseWorkflow:
    def __init__(self) -> None:
        self._crisis_id = ""
        self._target = ""
        self._stage = "validating"
        self._current_phase: str | None = None
        self._phases: list[PhaseOutcome] = []

    @workflow.run
    async def run(self, request: CrisisRequest) -> CrisisResult:
        info = workflow.info()
        self._crisis_id = request.crisis_id
        self._target = request.target_member
        workflow.logger.info(
            "Crisis %s started for %s with %d phases", request.crisis_id, request.target_member, len(request.missions)
        )

        ordered: list[MissionPhase] = await workflow.execute_activity_method(
            CrisisActivities.validate_crisis_request,
            request,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
        self._phases = [PhaseOutcome(phase_id=p.phase_id, agent_id=p.agent_id, action=p.action) for p in ordered]

        self._stage = "initializing"
        started_at = info.start_time
        await workflow.execute_activity_method(
            CrisisActivities.initialize_crisis_response,
            CrisisStart(
                crisis_id=request.crisis_id,
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                target=request.target_member,
                initiated_by=request.initiated_by,
                started_at=started_at,
                phases=self._phases,
            ),
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )

        self._stage = "running"
        for index, phase in enumerate(ordered):
            self._current_phase = phase.phase_id
            self._phases[index] = self._phases[index].model_copy(update={"status": PhaseStatus.RUNNING})
            self._phases[index] = await self._run_phase(request, phase)
            await workflow.execute_activity_method(
                CrisisActivities.log_mission_phase,
                PhaseLogEntry(crisis_id=request.crisis_id, target=request.target_member, outcome=self._phases[index]),
                start_to_close_timeout=BOOKKEEPING_TIMEOUT,
                retry_policy=BOOKKEEPING_RETRY,
            )
        self._current_phase = None

        self._stage = "finalizing"
        summary = CrisisSummary.of(p.status for p in self._phases)
        success = summary.failed_phases == 0
        status = "completed" if success else "failed"
        completed_at = workflow.now()
        record_path: str = await workflow.execute_activity_method(
            CrisisActivities.finalize_crisis_response,
            CrisisCompletion(
                crisis_id=request.crisis_id, status=status, completed_at=completed_at, phases=self._phases
            ),
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
        self._stage = "done"
        return CrisisResult(
            crisis_id=request.crisis_id,
            target=request.target_member,
            success=success,
            status=status,
            started_at=started_at,
            completed_at=completed_at,
            phases=self._phases,
            summary=summary,
            failed_phases=[p.phase_id for p in self._phases if p.status == PhaseStatus.FAILED],
            record_path=record_path,
        )

    async def _run_phase(self, request: CrisisRequest, phase: MissionPhase) -> PhaseOutcome:
        outcome = PhaseOutcome(phase_id=phase.phase_id, agent_id=phase.agent_id, action=phase.action)
        try:
            report: AgentReport = await workflow.execute_activity_method(
                CrisisActivities.perform_agent_mission,
                PhaseAssignment(crisis_id=request.crisis_id, workflow_id=workflow.info().workflow_id, phase=phase),
                start_to_close_timeout=timedelta(seconds=request.phase_timeout_seconds),
                retry_policy=request.retry.to_policy(),
            )
        except ActivityError as err:
            error = innermost_message(err)
            workflow.logger.warning("Mission phase %s failed: %s", phase.phase_id, error)
            exhausted = err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
            return outcome.model_copy(
                update={
                    "status": PhaseStatus.FAILED,
                    "attempts": request.retry.maximum_attempts if exhausted else None,
                    "error": error,
                    "timestamp": workflow.now(),
                }
            )
        return outcome.model_copy(
            update={"status": PhaseStatus.COMPLETED, "attempts": report.attempt, "timestamp": workflow.now()}
        )

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
        )
