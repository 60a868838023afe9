"""``PhaseRunner``: one phase from its gate to its record entry: the approval it waits for, its
params, a slot among the agents running at once (``max_parallel``), its agent's activity, and
how it ended.

The agent's activity writes the completed phase to the record before it reports (one server
round trip for both). The last phase's activity, when every other phase has completed, writes its
entry and the record's final state at once (``PhaseAssignment.finalize``); otherwise its entry
goes in with the workflow's final write. The first phase's activity may create the record before
its agent runs (see app.temporal.crisis.bookkeeping).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, RetryState, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

from app.temporal import metrics
from app.temporal.activities import CrisisActivities
from app.temporal.crisis.agent_loop import AgentLoop, AgentSuspended
from app.temporal.crisis.approvals import Approvals
from app.temporal.crisis.bookkeeping import CrisisBookkeeping
from app.temporal.crisis.budgets import Budgets
from app.temporal.crisis.observability import log_fields
from app.temporal.crisis.params import CannotStart, PhaseParams
from app.temporal.crisis.phases import PhaseBoard, as_carried, failed
from app.temporal.crisis.state import CrisisState
from app.temporal.errors import innermost_message
from app.temporal.models import (
    MAX_ERROR_CHARS,
    AgentLoopPlan,
    AgentProgress,
    AgentReport,
    CrisisRequest,
    FailurePolicy,
    MissionPhase,
    PhaseAssignment,
    PhaseOutcome,
    PhaseStatus,
    json_size,
)


class PhaseRunner:
    def __init__(
        self,
        request: CrisisRequest,
        state: CrisisState,
        board: PhaseBoard,
        approvals: Approvals,
        params: PhaseParams,
        records: CrisisBookkeeping,
        over_budget: Callable[[], bool],
    ) -> None:
        self._request = request
        self._state = state
        self._board = board
        self._approvals = approvals
        self._params = params
        self._records = records
        budgets = Budgets(request, state, board, approvals)
        self._agents = AgentLoop(request, state, approvals, budgets, over_budget)
        self._agents_running = 0
        #: Set the moment a phase fails under the abort policy: from then on no phase starts.
        self.aborting = False
        #: The phase whose activity may give the record its final state, while it runs.
        self.finalizing: str | None = None

    async def run_and_record(self, phase: MissionPhase) -> None:
        """Run one phase and record how it ended (a failure under the abort policy aborts the crisis)."""
        if phase.phase_id in self._request.reused:  # a rerun's phase from before the one it reruns from
            await self._reuse(phase)
            return
        request = self._request
        index = self._board.index_of(phase.phase_id)
        try:
            outcome, recorded = await self._run(index, phase)
        except AgentSuspended:
            return  # its agent goes on in the run the crisis continues as
        self._board.set(index, as_carried(outcome))
        # Before anything else runs: a phase waiting for the slot this one freed must not start.
        if outcome.status == PhaseStatus.FAILED and request.failure_policy == FailurePolicy.ABORT:
            self.aborting = True
            workflow.logger.warning(
                "Crisis %s aborted after phase %s failed",
                request.crisis_id,
                phase.phase_id,
                extra=log_fields(request.crisis_id, phase.phase_id),
            )
        if outcome.status == PhaseStatus.COMPLETED:
            self._state.completed_order.append(phase.phase_id)
        metrics.count_phase(outcome.action, outcome.status)
        last_completed = outcome.status == PhaseStatus.COMPLETED and self._board.is_last(phase.phase_id)
        # (An agent's transcript is for its entry only: the final write, from what the crisis carries, lacks it.)
        if not recorded and (not last_completed or outcome.transcript is not None):
            await self._records.log_phase(outcome)
        elif last_completed and not recorded:
            # The final record write includes the last phase (one write fewer per crisis).
            workflow.logger.info(
                "Mission phase %s completed (crisis %s)",
                phase.phase_id,
                request.crisis_id,
                extra=log_fields(request.crisis_id, phase.phase_id),
            )

    async def _reuse(self, phase: MissionPhase) -> None:
        """Complete ``phase`` with the output its agent reported in the crisis this one reruns, no
        activity running for it, and record it (only a rerun's request names phases to reuse, so
        no other crisis comes here). It is never compensated here: its agent ran in that crisis.
        """
        reused = self._request.reused[phase.phase_id]
        index = self._board.index_of(phase.phase_id)
        self._params.carry_output(json_size(reused.output))
        outcome = self._board.phases[index].model_copy(
            update={
                "status": PhaseStatus.COMPLETED,
                "attempts": 0,
                "output": reused.output,
                "reused_from": reused.workflow_id,
                "timestamp": workflow.now(),
            }
        )
        self._board.set(index, outcome)
        workflow.logger.info(
            "Mission phase %s reused from crisis workflow %s",
            phase.phase_id,
            reused.workflow_id,
            extra=log_fields(self._request.crisis_id, phase.phase_id),
        )
        await self._records.log_phase(outcome)

    async def _run(self, index: int, phase: MissionPhase) -> tuple[PhaseOutcome, bool]:
        """How the phase ended (with the params its agent got, even those the crisis does not
        carry: for its record entry), and whether its activity has recorded it.
        """
        outcome = self._board.phases[index]
        # An agent whose loop a previous run of the crisis stopped goes on where it stood.
        progress = self._state.agent_loops.pop(phase.phase_id, None)
        resolved = phase
        if progress is None:  # (a loop that goes on passed its gate and got its params in its first run)
            if phase.requires_approval:
                outcome = await self._approvals.gate(index, phase)
                if outcome.status == PhaseStatus.FAILED:
                    return outcome, False
            try:
                resolved, outcome = self._params.prepare(phase, outcome)
            except CannotStart as err:
                return failed(outcome, str(err), attempts=0), False
        # A gated phase waits for its decision without a slot; its agent needs one to run. Checked
        # again after each wake-up: phases woken together take the free slots one by one. After an
        # abort no slot frees up: the waiting phase is cancelled, never started.
        max_parallel = self._request.max_parallel
        while self.aborting or self._agents_running >= max_parallel:
            await workflow.wait_condition(lambda: not self.aborting and self._agents_running < max_parallel)
        self._agents_running += 1
        self._board.set(index, as_carried(outcome.model_copy(update={"status": PhaseStatus.RUNNING})))
        try:
            if progress is not None:
                return await self._run_agent(phase, outcome, progress.plan, progress.context, progress=progress), False
            # Its activity records it, unless it is the last (then the final record write does,
            # unless its params are for the record only): when every other phase has completed,
            # that activity makes the final write itself.
            record = self._board.graph or index < len(self._board.plan) - 1 or outcome.params_ref is not None
            finalize = not record and self._completes_the_crisis(phase.phase_id)
            # The outputs its references named: ``resolved`` has none left to name them.
            context = self._params.context_of(phase)
            return await self.perform(
                resolved, outcome, context=context, compensation=False, record=record, finalize=finalize
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise asyncio.CancelledError from err
            return self.failure(phase, outcome, err), False
        finally:
            self._agents_running -= 1

    def _completes_the_crisis(self, phase_id: str) -> bool:
        """Whether the crisis completes when ``phase_id`` does: every other phase has completed,
        and no cancel or abort came.
        """
        others = (p for p in self._board.phases if p.phase_id != phase_id)
        return (
            not self.aborting
            and not self._state.cancel_requests
            and all(p.status == PhaseStatus.COMPLETED for p in others)
        )

    async def perform(
        self,
        phase: MissionPhase,
        outcome: PhaseOutcome,
        *,
        context: dict[str, Any],
        compensation: bool,
        record: bool,
        finalize: bool = False,
    ) -> tuple[PhaseOutcome, bool]:
        """Run the phase's agent (``context``: the outputs it reads): the completed outcome, and
        whether the activity recorded it (``finalize``: with the record's final state).
        """
        request = self._request
        # The first phase's activity may create the record too; otherwise it exists by now.
        creation = None if compensation else self._records.creation()
        if creation is None:
            await self._records.ensure_created()
        activity = workflow.execute_activity_method(
            CrisisActivities.perform_agent_mission,
            PhaseAssignment(
                crisis_id=request.crisis_id,
                workflow_id=workflow.info().workflow_id,
                phase=phase,
                compensation=compensation,
                context=context,
                entry=as_carried(outcome),  # params kept in the record only are the phase's
                # The agent's success and its record entry in one activity: one server round trip.
                record=record,
                inline_output_bytes=self._params.inline_output_bytes(),
                crisis=creation,
                finalize=finalize,
            ),
            start_to_close_timeout=timedelta(seconds=phase.timeout or request.phase_timeout_seconds),
            heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout_seconds),
            retry_policy=(phase.retry or request.retry).to_policy(),
            # Wait for the agent to stop before moving on: a cancelled phase must not run on.
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        report: AgentReport = await (self._finalizing(phase.phase_id, activity) if finalize else activity)
        if creation is not None and await self._records.created_by(report):  # its agent did not run
            return await self.perform(
                phase, outcome, context=context, compensation=compensation, record=record, finalize=finalize
            )
        if finalize and not self._records.finished_by(report):
            await self._records.holds_settled()  # phases added meanwhile are on the board
        if report.agent_loop is not None:
            return await self._run_agent(phase, outcome, report.agent_loop, context, compensation=compensation), False
        self._params.carry_output(report.output_bytes)
        completed = outcome.model_copy(
            update={
                "status": PhaseStatus.COMPLETED,
                "attempts": report.attempt,
                "output": report.output,
                "output_ref": report.output_ref,
                "timestamp": report.finished_at or workflow.now(),
            }
        )
        return completed, report.recorded

    async def _finalizing(self, phase_id: str, activity: Awaitable[AgentReport]) -> AgentReport:
        """Await the activity of the phase that may finalize the record (``finalizing`` says which
        meanwhile). A cancel first holds the final write for the workflow, then cancels the
        activity; if that activity has finalized the record already, the crisis has completed:
        its report is awaited, and the cancel comes too late.
        """
        running = asyncio.ensure_future(activity)
        self.finalizing = phase_id
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            if await self._records.hold(phase_id):
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
                raise
            return await running
        finally:
            self.finalizing = None

    async def _run_agent(
        self,
        phase: MissionPhase,
        outcome: PhaseOutcome,
        plan: AgentLoopPlan,
        context: dict[str, Any],
        *,
        compensation: bool = False,
        progress: AgentProgress | None = None,
    ) -> PhaseOutcome:
        """Run a language-model agent's loop (from ``progress``, if a previous run stopped it):
        the phase's outcome, with its usage, the decisions on its gated tool calls and, for its
        record entry, its transcript. A phase's loop (not a compensation's) may stop for a new run
        of the crisis: ``AgentSuspended``.
        """
        run = await self._agents.run(phase, plan, context, suspendable=not compensation, progress=progress)
        spent = outcome.model_copy(update={"usage": run.usage, "transcript": run.transcript})
        if not compensation:  # decisions taken while it ran are on the board
            spent.decisions = self._board.phases[self._board.index_of(phase.phase_id)].decisions
        if run.error is not None:
            workflow.logger.warning(
                "Mission phase %s failed: %s",
                phase.phase_id,
                run.error,
                extra=log_fields(self._request.crisis_id, phase.phase_id),
            )
            return failed(spent, shortened(run.error), attempts=None)
        self._params.carry_output(json_size(run.output))
        return spent.model_copy(
            update={"status": PhaseStatus.COMPLETED, "attempts": 1, "output": run.output, "timestamp": workflow.now()}
        )

    def failure(self, phase: MissionPhase, outcome: PhaseOutcome, err: ActivityError) -> PhaseOutcome:
        """``outcome`` failed with what its agent's activity raised, after its last attempt."""
        error = shortened(innermost_message(err))
        workflow.logger.warning(
            "Mission phase %s failed: %s",
            phase.phase_id,
            error,
            extra=log_fields(self._request.crisis_id, phase.phase_id),
        )
        exhausted = err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
        attempts = (phase.retry or self._request.retry).maximum_attempts if exhausted else None
        return failed(outcome, error, attempts=attempts)


def shortened(error: str) -> str:
    """An error as a phase's entry keeps it: at most ``MAX_ERROR_CHARS``."""
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"
