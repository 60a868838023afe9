"""CrisisResponseWorkflow: check the request, create the record, run its mission phases (one
after another by priority, or as the graph their ``depends_on`` make: see app.temporal.plan), wind
down (compensate if needed) and finalize.

A phase that still fails after its retries is recorded as failed; with the ``continue`` failure
policy (the default) the remaining phases go on, with ``abort`` they are skipped and the
completed phases that declare a ``compensate_action`` are compensated in reverse order. Phases
that require approval wait for a ``decide_approval`` update; phases can be added while the
crisis runs (``add_phases`` update). Workflow code stays deterministic: time comes from
``workflow.now()`` and all I/O happens in activities.

Cancel, at every stage, follows one rule: a cancel that arrives before the crisis winds down
(validating, initializing, running, awaiting approval) stops the running phase, skips the rest,
compensates completed phases and finalizes the record as ``cancelled``. Once the crisis winds
down (compensating, finalizing) it runs to its end: a cancel then is recorded in
``cancel_requests``, not obeyed. Record writes are never cut short by a cancel.

This module reads as the crisis's stage machine; each job it hands out is a part of
app.temporal.crisis (the state carried into a new run, where phases stand, scheduling, running
a phase, approvals, params and the output budget, events and webhooks, record bookkeeping,
compensation, continue-as-new), built here in ``@workflow.init``.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from app.temporal import metrics, plan
    from app.temporal.crisis.approvals import Approvals
    from app.temporal.crisis.bookkeeping import CrisisBookkeeping
    from app.temporal.crisis.compensation import Compensation
    from app.temporal.crisis.continuation import Continuation
    from app.temporal.crisis.events import CrisisEvents
    from app.temporal.crisis.observability import log_fields, show_status
    from app.temporal.crisis.params import PhaseParams
    from app.temporal.crisis.phases import UNDER_WAY, PhaseBoard, pending
    from app.temporal.crisis.running import PhaseRunner
    from app.temporal.crisis.scheduling import PhaseScheduler
    from app.temporal.crisis.state import CrisisState
    from app.temporal.identity import scheduled_crisis_id
    from app.temporal.models import (
        AGENT_OUTPUT_SIGNAL,
        MAX_PHASES,
        MAX_REQUEST_BYTES,
        AgentOutputBatch,
        ApprovalDecision,
        CancelNote,
        CrisisProgress,
        CrisisRequest,
        CrisisResult,
        CrisisStatus,
        EventKind,
        MissionPhase,
        ModelUsage,
        PhaseOutcome,
        PhaseStatus,
        Stage,
        wire_size,
    )
    from app.temporal.notifications import WebhookEvent
    from app.temporal.validation import CrisisInput, check_crisis_request

__all__ = ["CrisisResponseWorkflow", "CrisisRequest", "CrisisResult", "MissionPhase"]


@workflow.defn
class CrisisResponseWorkflow:
    @workflow.init
    def __init__(self, request: CrisisInput, continued: CrisisState | None = None) -> None:
        # Built here, not in run: update and query handlers can run before run starts. A crisis
        # starts with its request alone (then the SDK decodes it untyped, and the check below
        # makes it a CrisisRequest); a run it continues as gets its state too.
        self._stage = Stage.VALIDATING
        self._invalid: ApplicationError | None = None
        try:
            self._request = check_crisis_request(request)
            if self._request.schedule:  # every run of a schedule is a crisis of its own
                crisis_id = scheduled_crisis_id(workflow.info().workflow_id)
                self._request = self._request.model_copy(update={"crisis_id": crisis_id})
            phases = self._request.ordered_missions()
        except ApplicationError as err:
            self._invalid = err
            raw = request if isinstance(request, dict) else {}
            self._request = CrisisRequest.model_construct(
                crisis_id=str(raw.get("crisis_id", "")), target_member=str(raw.get("target_member", ""))
            )
            phases = []
        request = self._request
        started_at = workflow.info().workflow_start_time  # not when a worker first ran it
        state = continued or CrisisState(started_at=started_at, phases=[pending(p) for p in phases])
        self._state = state
        self._events = CrisisEvents(request, state)
        self._board = PhaseBoard([*phases, *state.added], state, self._events)
        self._approvals = Approvals(request, state, self._board, self._events)
        self._records = CrisisBookkeeping(request, state, created=continued is not None)
        params = PhaseParams(request, state, self._board)
        continuation = Continuation(request, state, self._events)
        runner = PhaseRunner(
            request, state, self._board, self._approvals, params, self._records, continuation.over_budget
        )
        self._runner = runner
        self._scheduler = PhaseScheduler(self._board, runner, continuation)
        self._compensation = Compensation(state, self._board, params, runner, self._events, self._records)
        # Set here, as the event stream sets its own: a signal only this crisis's model calls send.
        workflow.set_signal_handler(AGENT_OUTPUT_SIGNAL, self._agent_output)

    @workflow.run
    async def run(self, request: CrisisInput, continued: CrisisState | None = None) -> CrisisResult:
        # Metrics record nothing while a history replays and add no commands to it.
        if continued is None:
            metrics.count_crisis_started()
        try:
            result = await self._respond(first_run=continued is None)
        except asyncio.CancelledError:
            metrics.count_crisis_ended(CrisisStatus.CANCELLED)
            raise
        except FailureError:  # fails the workflow (anything else retries its task)
            metrics.count_crisis_ended(CrisisStatus.FAILED)
            raise
        metrics.count_crisis_ended(result.status)
        return result

    async def _respond(self, *, first_run: bool) -> CrisisResult:
        request = self._request
        if self._invalid is not None:
            show_status(CrisisStatus.FAILED)
            raise self._invalid
        workflow.logger.info(
            "Crisis %s started for %s with %d phases",
            request.crisis_id,
            request.target_member,
            len(request.missions),
            extra=log_fields(request.crisis_id),
        )
        cancelled = aborted = False
        try:
            self._stage = Stage.INITIALIZING
            if first_run:  # a continued crisis has its record (and takes it over)
                if self._first_phase_runs_at_once():
                    self._records.defer_creation()  # its activity creates the record before its agent runs
                else:
                    await self._records.create()
            self._stage = Stage.RUNNING
            aborted = await self._scheduler.run_phases()
        except asyncio.CancelledError:
            if self._records.final:  # the last phase's activity had finalized the record: too late
                self._stage = Stage.FINALIZING
                self._note_cancel(obeyed=False)
            else:
                cancelled = True
                self._note_cancel(obeyed=True)
                workflow.logger.warning("Crisis %s cancelled", request.crisis_id, extra=log_fields(request.crisis_id))
        # From here the crisis runs to its end: a cancel is noted, never lets it stop half-way.
        self._stage = Stage.COMPENSATING if cancelled or aborted else Stage.FINALIZING
        winding_down = asyncio.ensure_future(self._wind_down(cancelled=cancelled, aborted=aborted))
        while True:
            try:
                result = await asyncio.shield(winding_down)
                break
            except asyncio.CancelledError:
                self._note_cancel(obeyed=False)
        # Let readers that wait for more collect the last events before the run ends.
        self._events.detach_readers()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if cancelled:
            raise asyncio.CancelledError(f"crisis {request.crisis_id} was cancelled")
        return result

    async def _wind_down(self, *, cancelled: bool, aborted: bool) -> CrisisResult:
        """Close unfinished phases, compensate if the crisis was cancelled or aborted, finalize."""
        request, board = self._request, self._board
        board.close_unfinished(PhaseStatus.CANCELLED if cancelled else PhaseStatus.SKIPPED)
        if cancelled or aborted:
            await self._compensation.compensate()

        self._stage = Stage.FINALIZING
        summary = board.summary()
        success = not cancelled and summary.completed_phases == summary.total_phases
        status = CrisisStatus.CANCELLED if cancelled else CrisisStatus.COMPLETED if success else CrisisStatus.FAILED
        show_status(status)
        completed_at = self._records.completed_at()
        record_path = await self._records.finalize(status, completed_at)
        self._stage = Stage.DONE
        finished = self._events.publish(EventKind.FINISHED, status=status)
        data = {"status": status, "success": success, **summary.model_dump()}
        self._events.notify(WebhookEvent.FINISHED, finished, data)
        # Started, not awaited to their end: a receiver that is down never holds the crisis up.
        await self._events.deliveries_started()
        state = self._state
        return CrisisResult(
            crisis_id=request.crisis_id,
            target=request.target_member,
            initiated_by=request.initiated_by,
            success=success,
            status=status,
            started_at=state.started_at,
            completed_at=completed_at,
            phases=state.phases,
            summary=summary,
            failed_phases=board.with_status(PhaseStatus.FAILED),
            record_path=record_path,
            compensations=state.compensations,
            cancel_requests=state.cancel_requests,
            usage=ModelUsage.total(phase.usage for phase in [*state.phases, *state.compensations]),
        )

    def _first_phase_runs_at_once(self) -> bool:
        """Whether the crisis's first step is its first phase's agent: phases run in order, the first
        neither awaits approval nor is reused from the crisis a rerun reruns, and no cancel came
        with the start (that one ends the crisis before its phases).
        """
        board = self._board
        if board.graph or not board.plan or workflow.cancellation_reason() is not None:
            return False
        first = board.plan[0]
        return not first.requires_approval and first.phase_id not in self._request.reused

    def _note_cancel(self, *, obeyed: bool) -> None:
        note = CancelNote(
            requested_at=workflow.now(), stage=self._stage, obeyed=obeyed, reason=workflow.cancellation_reason() or None
        )
        self._state.cancel_requests.append(note)
        self._events.publish(EventKind.CANCEL_REQUESTED, status=self._stage)
        if not obeyed:
            workflow.logger.warning(
                "Crisis %s: cancel requested while %s; it runs to its end",
                self._request.crisis_id,
                self._stage,
                extra=log_fields(self._request.crisis_id),
            )

    @workflow.query
    def progress(self) -> CrisisProgress:
        """Where the crisis stands: its stage, the phase running now and how each phase ended."""
        board = self._board
        return CrisisProgress(
            crisis_id=self._request.crisis_id,
            target=self._request.target_member,
            stage=self._stage,
            current_phase=self._compensation.current or next(iter(board.with_status(*UNDER_WAY)), None),
            running_phases=board.with_status(PhaseStatus.RUNNING),
            phases=board.phases,
            summary=board.summary(),
            compensations=self._state.compensations,
            cancel_requests=self._state.cancel_requests,
            usage=ModelUsage.total(phase.usage for phase in [*self._state.phases, *self._state.compensations]),
        )

    @workflow.update
    def decide_approval(self, decision: ApprovalDecision) -> PhaseOutcome:
        """Approve or reject a phase that awaits approval; returns the phase with every decision so
        far. The validator lets through exactly the decisions that count: one per approver until
        the quorum approved, none after a rejection or the approval's timeout.
        """
        return self._approvals.decide(decision)

    @decide_approval.validator
    def _check_decision(self, decision: ApprovalDecision) -> None:
        self._refuse_if_invalid()
        self._approvals.check(decision)

    @workflow.update
    async def add_phases(self, phases: list[MissionPhase]) -> CrisisProgress:
        """Append phases (in priority order among themselves) to a crisis that is still running.
        While the activity that may finalize the record runs, the final write is held for the
        workflow first; an addition that finds the record final already is refused.
        """
        finalizing = self._runner.finalizing
        if finalizing is not None:
            if not await self._records.hold(finalizing):
                raise ApplicationError(self._phases_over())
            try:  # checked again: another addition may have come in meanwhile
                self._check_added_phases(phases)
            except ValueError as err:
                raise ApplicationError(str(err)) from None
        self._board.add(phases)
        workflow.logger.info(
            "Crisis %s: %d phases added",
            self._request.crisis_id,
            len(phases),
            extra=log_fields(self._request.crisis_id),
        )
        return self.progress()

    @add_phases.validator
    def _check_added_phases(self, phases: list[MissionPhase]) -> None:
        self._refuse_if_invalid()
        if self._stage.winds_down:
            raise ValueError(self._phases_over())
        if not phases:
            raise ValueError("give at least one phase to add")
        planned = self._board.plan
        known = {p.phase_id for p in planned}
        for phase in phases:
            if phase.phase_id in known:
                raise ValueError(f"phase_id {phase.phase_id!r} is already part of the crisis")
            known.add(phase.phase_id)
        if len(known) > MAX_PHASES:
            raise ValueError(f"a crisis has at most {MAX_PHASES} phases")
        if not self._board.graph and plan.is_graph(phases):
            raise ValueError("depends_on is for crises that run as a graph; this one runs its phases in order")
        found = plan.problems(phases, self._request.inputs, known=planned)
        if found:
            raise ValueError("; ".join(found))
        size = wire_size(self._request) + sum(wire_size(phase) for phase in [*self._state.added, *phases])
        if size > MAX_REQUEST_BYTES:
            raise ValueError(
                f"with these phases the crisis would carry {size} bytes of request and phases, more than the "
                f"{MAX_REQUEST_BYTES} it can carry; start another crisis for them"
            )

    def _phases_over(self) -> str:
        return f"crisis {self._request.crisis_id} has finished running phases; start a new crisis"

    def _agent_output(self, batch: AgentOutputBatch) -> None:
        """Text a model call streamed (app.temporal.agent_output), published while its phase, or
        its compensation, runs; ignored once it has ended.
        """
        compensating = self._compensation.current == batch.phase_id
        phase = self._board.find(batch.phase_id)
        if compensating or (phase is not None and phase.status == PhaseStatus.RUNNING):
            self._events.agent_output(batch, compensation=compensating)

    def _refuse_if_invalid(self) -> None:
        if self._invalid is not None:
            raise ValueError(f"the crisis request is invalid and runs no phases ({self._invalid.message})")
