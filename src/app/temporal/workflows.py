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

Bookkeeping costs the server no round trips of its own: the workflow checks the request itself
(deterministic), the agent's activity writes its completed phase to the record before it
reports (the last phase's entry goes in with the final write instead), and the other record
writes are local activities, run in the worker inside its workflow task. A write that keeps
failing in the worker (a full disk, a corrupt record) moves to a regular activity, which retries
until the store is usable again and whose failures ``liara status`` shows.

What the crisis carries stays inside Temporal's payload limits whatever its agents report: its
phases' outputs and resolved params share a budget (``OUTPUT_BUDGET_BYTES``); an output or params
past it are kept in the crisis record only, and the phase carries an ``output_ref`` or
``params_ref`` instead. A compensation gets the params its phase ran with (its references
resolve again, to the same values).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    RetryState,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)
from temporalio.workflow import ActivityCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowStreamState

    from app.temporal import metrics, plan
    from app.temporal.activities import CrisisActivities
    from app.temporal.errors import innermost_message
    from app.temporal.models import (
        CARRY_LIMIT_BYTES,
        MAX_ERROR_CHARS,
        MAX_OUTPUT_BYTES,
        MAX_PARAMS_BYTES,
        MAX_PHASES,
        MAX_REQUEST_BYTES,
        OUTPUT_BUDGET_BYTES,
        AgentReport,
        ApprovalDecision,
        CancelNote,
        ContinuedCrisis,
        CrisisCompletion,
        CrisisEvent,
        CrisisProgress,
        CrisisRequest,
        CrisisResult,
        CrisisSnapshot,
        CrisisSummary,
        EventKind,
        FailurePolicy,
        MissionPhase,
        OutputRef,
        PhaseAssignment,
        PhaseLogEntry,
        PhaseOutcome,
        PhaseStatus,
        RecordedDecision,
        json_size,
        scheduled_crisis_id,
        wire_size,
    )
    from app.temporal.notifications import (
        WebhookDelivery,
        WebhookDeliveryWorkflow,
        WebhookEvent,
        delivery_workflow_id,
    )
    from app.temporal.references import UnresolvedReference, references_in, resolve
    from app.temporal.uninterrupted import uninterrupted
    from app.temporal.validation import CrisisInput, check_crisis_request
    from app.temporal.visibility import CRISIS_STATUS, CRISIS_TARGET

__all__ = ["CrisisResponseWorkflow", "CrisisRequest", "CrisisResult", "MissionPhase"]

#: Bookkeeping activities are quick; if the record store is unavailable they retry until it
#: is back, so a full disk pauses a crisis instead of losing it.
BOOKKEEPING_TIMEOUT = timedelta(seconds=30)
BOOKKEEPING_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
#: A record write in the worker gets three quick tries before it moves to a regular activity.
LOCAL_BOOKKEEPING_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=3)

#: The topic of the crisis's event stream (``liara`` reads it for ``GET .../events``).
EVENT_TOPIC = "crisis"
#: Stages once the crisis winds down: no phase starts, a cancel is recorded and not obeyed.
_WINDING_DOWN = ("compensating", "finalizing", "done")
#: A phase's statuses while it is the crisis's current phase: its agent runs, or it awaits a decision.
_UNDER_WAY = (PhaseStatus.RUNNING, PhaseStatus.AWAITING_APPROVAL)


@workflow.defn
class CrisisResponseWorkflow:
    @workflow.init
    def __init__(self, request: CrisisInput, continued: ContinuedCrisis | None = None) -> None:
        # Built here, not in run: update and query handlers can run before run starts. A crisis
        # starts with its request alone (then the SDK decodes it untyped, and the check below
        # makes it a CrisisRequest); a run it continues as gets what it carries too.
        self._stage = "validating"
        self._current_phase: str | None = None
        self._compensations: list[PhaseOutcome] = []
        self._decisions: dict[str, list[RecordedDecision]] = {}
        # Every change, in order, for outside observers: offset-addressed, durable, replay-safe.
        self._events = WorkflowStream(prior_state=continued.events if continued else None)
        self._event_topic = self._events.topic(EVENT_TOPIC, type=CrisisEvent)
        self._published = 0
        self._deliveries: list[asyncio.Task[None]] = []
        self._cancel_requests: list[CancelNote] = []
        self._carried_bytes = 0
        self._added: list[MissionPhase] = []
        self._completed_order: list[str] = []
        self._started_at = workflow.info().start_time
        self._continued = continued
        self._invalid: ApplicationError | None = None
        try:
            self._request = check_crisis_request(request)
            if self._request.schedule:  # every run of a schedule is a crisis of its own
                crisis_id = scheduled_crisis_id(workflow.info().workflow_id)
                self._request = self._request.model_copy(update={"crisis_id": crisis_id})
        except ApplicationError as err:
            self._invalid = err
            raw = request if isinstance(request, dict) else {}
            self._request = CrisisRequest.model_construct(
                crisis_id=str(raw.get("crisis_id", "")), target_member=str(raw.get("target_member", ""))
            )
            self._plan: list[MissionPhase] = []
        else:
            self._plan = self._request.ordered_missions()
        self._phases = [_pending(p) for p in self._plan]
        if continued is not None:
            self._resume(continued)
        self._graph = plan.is_graph(self._plan)
        self._agents_running = 0
        # Set when what the crisis would carry into a new run is too large: it goes on in this one.
        self._stays_in_run = False
        # Set the moment a phase fails under the abort policy: from then on no phase starts.
        self._aborting = False

    def _resume(self, continued: ContinuedCrisis) -> None:
        """Take over where the run this one continues stopped."""
        self._started_at = continued.started_at
        self._added = continued.added
        self._plan.extend(continued.added)
        self._phases = continued.phases
        self._compensations = continued.compensations
        self._decisions = continued.decisions
        self._cancel_requests = continued.cancel_requests
        self._completed_order = continued.completed_order
        self._carried_bytes = continued.carried_bytes
        self._published = continued.published_events

    @workflow.run
    async def run(self, request: CrisisInput, continued: ContinuedCrisis | None = None) -> CrisisResult:
        # Metrics record nothing while a history replays and add no commands to it.
        if continued is None:
            metrics.count_crisis_started()
        try:
            result = await self._respond()
        except asyncio.CancelledError:
            metrics.count_crisis_ended("cancelled")
            raise
        except FailureError:  # fails the workflow (anything else retries its task)
            metrics.count_crisis_ended("failed")
            raise
        metrics.count_crisis_ended(result.status)
        return result

    async def _respond(self) -> CrisisResult:
        request = self._request
        if self._invalid is not None:
            self._set_status_attribute("failed")
            raise self._invalid
        workflow.logger.info(
            "Crisis %s started for %s with %d phases",
            request.crisis_id,
            request.target_member,
            len(request.missions),
            extra=self._log_extra(),
        )
        cancelled = aborted = False
        try:
            self._stage = "initializing"
            if self._continued is None:  # a continued crisis has its record (and takes it over)
                # A cancel meanwhile lets the record be created, then ends the crisis before its phases.
                await uninterrupted(self._bookkeeping(CrisisActivities.initialize_crisis_response, self._snapshot()))
            self._stage = "running"
            aborted = await self._run_phases()
        except asyncio.CancelledError:
            cancelled = True
            self._note_cancel(obeyed=True)
            workflow.logger.warning("Crisis %s cancelled", request.crisis_id, extra=self._log_extra())
        # From here the crisis runs to its end: a cancel is noted, never lets it stop half-way.
        self._stage = "compensating" if cancelled or aborted else "finalizing"
        winding_down = asyncio.ensure_future(self._wind_down(cancelled=cancelled, aborted=aborted))
        while True:
            try:
                result = await asyncio.shield(winding_down)
                break
            except asyncio.CancelledError:
                self._note_cancel(obeyed=False)
        # Let subscribers that wait for more collect the last events before the run ends.
        self._events.detach_pollers()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if cancelled:
            raise asyncio.CancelledError(f"crisis {request.crisis_id} was cancelled")
        return result

    async def _wind_down(self, *, cancelled: bool, aborted: bool) -> CrisisResult:
        """Close unfinished phases, compensate if the crisis was cancelled or aborted, finalize."""
        request = self._request
        self._current_phase = None
        self._close_unfinished(PhaseStatus.CANCELLED if cancelled else PhaseStatus.SKIPPED)
        if cancelled or aborted:
            await self._compensate()

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
                cancel_requests=self._cancel_requests,
                crisis=self._snapshot(with_phases=False),
            ),
        )
        self._stage = "done"
        finished = self._publish(EventKind.FINISHED, status=status)
        self._notify(WebhookEvent.FINISHED, finished, {"status": status, "success": success, **summary.model_dump()})
        # Started, not awaited to their end: a receiver that is down never holds the crisis up.
        await asyncio.gather(*self._deliveries)
        return CrisisResult(
            crisis_id=request.crisis_id,
            target=request.target_member,
            initiated_by=request.initiated_by,
            success=success,
            status=status,
            started_at=self._started_at,
            completed_at=completed_at,
            phases=self._phases,
            summary=summary,
            failed_phases=[p.phase_id for p in self._phases if p.status == PhaseStatus.FAILED],
            record_path=record_path,
            compensations=self._compensations,
            cancel_requests=self._cancel_requests,
        )

    async def _run_phases(self) -> bool:
        """Run the plan as it grows (see app.temporal.plan); return True if a failure aborted it.

        Each phase runs as a task of its own, started once: one at a time in a sequential crisis,
        every ready one in a graph (at most ``max_parallel`` agents at once; the others wait for a
        slot). A cancel stops them all; so does an abort, after which no phase starts.
        """
        running: dict[str, asyncio.Task[None]] = {}
        try:
            while not self._aborting:
                self._skip_blocked()
                # Past its history budget the crisis starts no phase, and continues as a new run
                # once nothing runs.
                over_budget = self._history_over_budget()
                for phase in [] if over_budget else plan.ready(self._plan, self._statuses(), self._graph):
                    if phase.phase_id not in running:
                        running[phase.phase_id] = asyncio.ensure_future(self._run_and_record(phase))
                if not running:
                    if not (over_budget and plan.ready(self._plan, self._statuses(), self._graph)):
                        return False
                    await self._continue_as_new()  # returns only if the crisis stays in this run
                    continue
                planned = len(self._plan)
                await workflow.wait_condition(
                    lambda planned=planned: (
                        self._aborting or any(task.done() for task in running.values()) or len(self._plan) != planned
                    )
                )
                for phase_id, task in list(running.items()):
                    if task.done():
                        del running[phase_id]
                        task.result()  # raises what the task raised
        except asyncio.CancelledError:
            await self._stop(running)
            raise
        await self._stop(running)
        return True

    def _history_over_budget(self) -> bool:
        if self._stays_in_run:
            return False
        info = workflow.info()
        return info.get_current_history_length() >= self._request.history_budget_events or (
            info.is_continue_as_new_suggested()
        )

    async def _continue_as_new(self) -> None:
        """Carry everything into a new run (deliveries started and updates finished first): the
        request once, the state, and as many of the latest events as fit beside them
        (``CARRY_LIMIT_BYTES``). Returns, and the crisis goes on in this run, only when its request
        and state alone would not fit.
        """
        runs = (self._continued.runs if self._continued else 0) + 1
        if self._room_for_events() < 0:
            self._stays_in_run = True
            workflow.logger.warning(
                "Crisis %s goes on in run %d past its history budget: its request and state come to more than "
                "the %d bytes a new run can be given",
                self._request.crisis_id,
                runs,
                CARRY_LIMIT_BYTES,
                extra=self._log_extra(),
            )
            return
        await asyncio.gather(*self._deliveries)
        workflow.logger.info(
            "Crisis %s continues as run %d, its history past %d events",
            self._request.crisis_id,
            runs + 1,
            self._request.history_budget_events,
            extra=self._log_extra(),
        )

        def arguments(events: WorkflowStreamState) -> list[Any]:
            return [self._request, self._continued_crisis(runs, self._latest_events(events, self._room_for_events()))]

        await self._events.continue_as_new(arguments)

    def _continued_crisis(self, runs: int, events: WorkflowStreamState | None) -> ContinuedCrisis:
        """What the crisis carries into a new run besides its request, after ``runs`` runs."""
        return ContinuedCrisis(
            started_at=self._started_at,
            added=self._added,
            phases=self._phases,
            compensations=self._compensations,
            decisions=self._decisions,
            cancel_requests=self._cancel_requests,
            completed_order=self._completed_order,
            carried_bytes=self._carried_bytes,
            published_events=self._published,
            events=events,
            runs=runs,
        )

    def _room_for_events(self) -> int:
        """Bytes left for events in what the crisis carries into a new run (negative: none at all)."""
        return CARRY_LIMIT_BYTES - wire_size(self._request) - wire_size(self._continued_crisis(0, None))

    def _latest_events(self, events: WorkflowStreamState, room: int) -> WorkflowStreamState:
        """``events`` without the oldest ones that leave the rest more than ``room`` bytes; a
        subscriber that asks for a dropped one gets the stream from the first event kept.
        """
        sizes = [json_size(dataclasses.asdict(item)) + 1 for item in events.log]  # +1: the comma
        kept, dropped = sum(sizes), 0
        while kept > room and dropped < len(sizes):
            kept -= sizes[dropped]
            dropped += 1
        if not dropped:
            return events
        workflow.logger.warning(
            "Crisis %s drops its %d oldest events: the new run can be given %d bytes of them",
            self._request.crisis_id,
            dropped,
            room,
            extra=self._log_extra(),
        )
        self._events.truncate(events.base_offset + dropped)
        return self._events.get_state()

    async def _stop(self, running: dict[str, asyncio.Task[None]]) -> None:
        """Cancel the phases not finished yet and wait until their agents have stopped (a finished
        phase's task only writes its record: it ends on its own). Phases that were running or
        awaiting approval are cancelled; those still waiting for a slot never started, and stay
        pending until the crisis winds down and skips them.
        """
        for phase_id, task in running.items():
            if self._phases[self._index_of(phase_id)].status not in plan.FINISHED:
                task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)
        for phase_id in running:
            index = self._index_of(phase_id)
            if self._phases[index].status in _UNDER_WAY:
                self._close(index, PhaseStatus.CANCELLED)

    def _skip_blocked(self) -> None:
        """In a graph, skip every phase something it depends on did not complete (transitively)."""
        while self._graph and (blocked := plan.blocked(self._plan, self._statuses())):
            now = workflow.now()
            for phase_id in blocked:
                index = self._index_of(phase_id)
                self._set_phase(
                    index, self._phases[index].model_copy(update={"status": PhaseStatus.SKIPPED, "timestamp": now})
                )
                metrics.count_phase(self._phases[index].action, PhaseStatus.SKIPPED)

    async def _run_and_record(self, phase: MissionPhase) -> None:
        """Run one phase and record how it ended (a failure under the abort policy aborts the crisis)."""
        request = self._request
        index = self._index_of(phase.phase_id)
        outcome, recorded = await self._run_phase(index, phase)
        self._set_phase(index, _as_carried(outcome))
        # Before anything else runs: a phase waiting for the slot this one freed must not start.
        if outcome.status == PhaseStatus.FAILED and request.failure_policy == FailurePolicy.ABORT:
            self._aborting = True
            workflow.logger.warning(
                "Crisis %s aborted after phase %s failed",
                request.crisis_id,
                phase.phase_id,
                extra=self._log_extra(phase.phase_id),
            )
        if outcome.status == PhaseStatus.COMPLETED:
            self._completed_order.append(phase.phase_id)
        metrics.count_phase(outcome.action, outcome.status)
        last_completed = outcome.status == PhaseStatus.COMPLETED and self._is_last(phase.phase_id)
        if not recorded and not last_completed:
            await self._log(outcome)
        elif last_completed and not recorded:
            # The final record write includes the last phase (one write fewer per crisis).
            workflow.logger.info(
                "Mission phase %s completed (crisis %s)",
                phase.phase_id,
                request.crisis_id,
                extra=self._log_extra(phase.phase_id),
            )

    def _is_last(self, phase_id: str) -> bool:
        """Nothing else is left to run (so the final record write can include this phase)."""
        return all(p.status in plan.FINISHED for p in self._phases if p.phase_id != phase_id)

    async def _run_phase(self, index: int, phase: MissionPhase) -> tuple[PhaseOutcome, bool]:
        """How the phase ended (with the params its agent got, even those the crisis does not
        carry: for its record entry), and whether its activity has recorded it.
        """
        outcome = self._phases[index]
        if phase.requires_approval:
            self._set_phase(index, outcome.model_copy(update={"status": PhaseStatus.AWAITING_APPROVAL}))
            self._set_status_attribute("awaiting_approval")
            verdict = await self._await_verdict(phase)
            if not any(p.status == PhaseStatus.AWAITING_APPROVAL for p in self._phases if p.phase_id != phase.phase_id):
                self._set_status_attribute("running")  # unless another gate still waits (in a graph)
            outcome = self._phases[index]  # with the decisions taken meanwhile
            if verdict is None:
                quorum = f" with {_approvals(outcome)} of {phase.approvals_required} approvals"
                waited = f"approval timed out after {phase.approval_timeout:g} s"
                error = waited + (quorum if phase.approvals_required > 1 else "")
                return _failed(outcome, error, attempts=0), False
            approved, deciders = verdict
            if not approved:
                rejection = deciders[0]
                reason = f": {rejection.reason}" if rejection.reason else ""
                return _failed(outcome, f"rejected by {rejection.decided_by}{reason}", attempts=0), False
            outcome = outcome.model_copy(update={"approved_by": ", ".join(d.decided_by for d in deciders)})
        try:
            resolved = self._resolved(phase)
        except UnresolvedReference as err:
            return _failed(outcome, f"phase {phase.phase_id!r} cannot start: {err}", attempts=0), False
        if resolved is not phase:
            size = json_size(resolved.params)
            if size > MAX_PARAMS_BYTES:
                error = (
                    f"phase {phase.phase_id!r} cannot start: its params come to {size} bytes once their references "
                    f"are resolved, more than the {MAX_PARAMS_BYTES} a phase's agent may get"
                )
                return _failed(outcome, error, attempts=0), False
            kept = self._params_ref(phase, size)
            outcome = outcome.model_copy(update={"params": resolved.params, "params_ref": kept})
        # A gated phase waits for its decision without a slot; its agent needs one to run. Checked
        # again after each wake-up: phases woken together take the free slots one by one. After an
        # abort no slot frees up: the waiting phase is cancelled, never started.
        while self._aborting or self._agents_running >= self._request.max_parallel:
            await workflow.wait_condition(
                lambda: not self._aborting and self._agents_running < self._request.max_parallel
            )
        self._agents_running += 1
        self._set_phase(index, _as_carried(outcome.model_copy(update={"status": PhaseStatus.RUNNING})))
        try:
            # Its activity records it, unless it is the last (then the final record write does,
            # unless its params are for the record only).
            record = self._graph or index < len(self._plan) - 1 or outcome.params_ref is not None
            # The outputs its references named: ``resolved`` has none left to name them.
            context = self._context_of(phase)
            return await self._perform(resolved, outcome, context=context, compensation=False, record=record)
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise asyncio.CancelledError from err
            return self._phase_failure(phase, outcome, err), False
        finally:
            self._agents_running -= 1

    def _params_ref(self, phase: MissionPhase, size: int) -> OutputRef | None:
        """Count ``size`` bytes of resolved params against the crisis's budget while it has room;
        past it, where the params are kept instead (the crisis record only).
        """
        if self._carried_bytes + size <= OUTPUT_BUDGET_BYTES:
            self._carried_bytes += size
            return None
        return OutputRef(crisis_id=self._request.crisis_id, phase_id=phase.phase_id, size_bytes=size)

    def _resolved(self, phase: MissionPhase) -> MissionPhase:
        """``phase`` with the references (and escapes) in its params resolved (itself when that
        changes nothing).
        """
        outputs = {p.phase_id: p.output for p in self._phases if p.status == PhaseStatus.COMPLETED and not p.output_ref}
        kept = {p.phase_id for p in self._phases if p.output_ref is not None}
        try:
            params = resolve(phase.params, outputs, self._request.inputs)
        except UnresolvedReference as err:
            held = next((phase_id for phase_id in kept if f"phases.{phase_id}.output" in str(err)), None)
            if held is not None:
                raise UnresolvedReference(
                    f"the output of phase {held!r} is kept in the crisis record only (past the output budget), "
                    "where references cannot read it"
                ) from None
            raise
        return phase if params == phase.params else phase.model_copy(update={"params": params})

    def _context_of(self, phase: MissionPhase) -> dict[str, Any]:
        """The outputs of the phases ``phase`` depends on or its params refer to (the ``context``
        of its agent's mission document).
        """
        wanted = set(phase.depends_on or ()) | {r.phase_id for r in references_in(phase.params) if r.phase_id}
        return {
            p.phase_id: p.output
            for p in self._phases
            if p.phase_id in wanted and p.status == PhaseStatus.COMPLETED and p.output_ref is None
        }

    def _statuses(self) -> dict[str, str]:
        return {p.phase_id: p.status.value for p in self._phases}

    def _index_of(self, phase_id: str) -> int:
        return next(index for index, p in enumerate(self._phases) if p.phase_id == phase_id)

    async def _await_verdict(self, phase: MissionPhase) -> tuple[bool, list[RecordedDecision]] | None:
        """The decision on ``phase`` (see ``_verdict``), or None if its approval timed out first."""
        timeout = timedelta(seconds=phase.approval_timeout) if phase.approval_timeout else None
        try:
            await workflow.wait_condition(lambda: self._verdict(phase) is not None, timeout=timeout)
        except TimeoutError:
            pass  # a decision accepted in the same workflow task as the timeout still counts
        return self._verdict(phase)

    def _verdict(self, phase: MissionPhase) -> tuple[bool, list[RecordedDecision]] | None:
        """``(False, [the rejection])`` at the first rejection, ``(True, approvals)`` once the quorum
        approved, None while undecided.
        """
        decisions = self._decisions.get(phase.phase_id, [])
        rejection = next((d for d in decisions if not d.approved), None)
        if rejection is not None:
            return False, [rejection]
        approvals = [d for d in decisions if d.approved]
        return (True, approvals) if len(approvals) >= phase.approvals_required else None

    async def _perform(
        self,
        phase: MissionPhase,
        outcome: PhaseOutcome,
        *,
        context: dict[str, Any],
        compensation: bool,
        record: bool,
    ) -> tuple[PhaseOutcome, bool]:
        """Run the phase's agent (``context``: the outputs it reads): the completed outcome, and
        whether the activity recorded it.
        """
        request = self._request
        report: AgentReport = await workflow.execute_activity_method(
            CrisisActivities.perform_agent_mission,
            PhaseAssignment(
                crisis_id=request.crisis_id,
                workflow_id=workflow.info().workflow_id,
                phase=phase,
                compensation=compensation,
                context=context,
                entry=_as_carried(outcome),  # params kept in the record only are the phase's
                # The agent's success and its record entry in one activity: one server round trip.
                record=record,
                inline_output_bytes=max(0, min(MAX_OUTPUT_BYTES, OUTPUT_BUDGET_BYTES - self._carried_bytes)),
            ),
            start_to_close_timeout=timedelta(seconds=phase.timeout or request.phase_timeout_seconds),
            heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout_seconds),
            retry_policy=(phase.retry or request.retry).to_policy(),
            # Wait for the agent to stop before moving on: a cancelled phase must not run on.
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        self._carried_bytes += report.output_bytes
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

    def _phase_failure(self, phase: MissionPhase, outcome: PhaseOutcome, err: ActivityError) -> PhaseOutcome:
        error = innermost_message(err)
        if len(error) > MAX_ERROR_CHARS:
            error = error[: MAX_ERROR_CHARS - 1] + "…"
        workflow.logger.warning(
            "Mission phase %s failed: %s", phase.phase_id, error, extra=self._log_extra(phase.phase_id)
        )
        exhausted = err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
        attempts = (phase.retry or self._request.retry).maximum_attempts if exhausted else None
        return _failed(outcome, error, attempts=attempts)

    def _close_unfinished(self, status: PhaseStatus) -> None:
        """After an abort or cancel: the phases that were running and those never started."""
        for index, outcome in enumerate(self._phases):
            if outcome.status in (PhaseStatus.AWAITING_APPROVAL, PhaseStatus.RUNNING):
                self._close(index, status)
            elif outcome.status == PhaseStatus.PENDING:
                self._close(index, PhaseStatus.SKIPPED)

    def _close(self, index: int, status: PhaseStatus) -> None:
        """Phase ``index`` ends, now, with ``status`` without having completed."""
        self._set_phase(index, self._phases[index].model_copy(update={"status": status, "timestamp": workflow.now()}))
        metrics.count_phase(self._phases[index].action, status)

    def _set_phase(self, index: int, outcome: PhaseOutcome) -> None:
        """Where phase ``index`` stands now; a new status is an event (and, awaiting approval, a second one)."""
        changed = outcome.status != self._phases[index].status
        self._phases[index] = outcome
        if not changed:
            return
        changed_at = self._publish(
            EventKind.PHASE, phase_id=outcome.phase_id, status=outcome.status, error=outcome.error
        )
        if outcome.status == PhaseStatus.FAILED:
            self._notify(WebhookEvent.PHASE_FAILED, changed_at, {"phase_id": outcome.phase_id, "error": outcome.error})
        if outcome.status == PhaseStatus.AWAITING_APPROVAL:
            required = self._publish(
                EventKind.APPROVAL_REQUIRED,
                phase_id=outcome.phase_id,
                approvals=_approvals(outcome),
                approvals_required=outcome.approvals_required,
            )
            quorum = {"phase_id": outcome.phase_id, "approvals_required": outcome.approvals_required}
            self._notify(WebhookEvent.APPROVAL_REQUIRED, required, quorum)

    def _publish(self, kind: EventKind, **details: Any) -> int:
        """Append an event to the crisis's stream; return its id (its place in the stream)."""
        self._event_topic.publish(CrisisEvent(kind=kind, at=workflow.now(), **details))
        self._published += 1
        return self._published - 1

    def _notify(self, event: WebhookEvent, event_id: int, data: dict[str, Any]) -> None:
        """Start the delivery of ``event`` to each webhook the crisis names."""
        settings = self._request.notifications
        for webhook in settings.webhooks if settings else []:
            delivery = WebhookDelivery(
                webhook=webhook,
                workflow_id=workflow.info().workflow_id,
                crisis_id=self._request.crisis_id,
                event_id=event_id,
                event=event,
                at=workflow.now(),
                data=data,
            )
            self._deliveries.append(asyncio.ensure_future(self._start_delivery(delivery, settings.task_queue)))

    async def _start_delivery(self, delivery: WebhookDelivery, task_queue: str) -> None:
        try:
            await workflow.start_child_workflow(
                WebhookDeliveryWorkflow.run,
                delivery,
                id=delivery_workflow_id(delivery),
                task_queue=task_queue,
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            pass  # a reset run repeats an event whose delivery was started before

    async def _compensate(self) -> None:
        """Undo completed phases that declare a compensation, last first; record each one."""
        self._stage = "compensating"
        self._set_status_attribute("compensating")
        by_id = {phase.phase_id: phase for phase in self._plan}
        for phase in (by_id[phase_id] for phase_id in reversed(self._completed_order)):
            if not phase.compensate_action:
                continue
            # The params its phase ran with: the outputs and inputs its references read are as they were.
            ran = self._resolved(phase)
            undo = ran.model_copy(update={"action": phase.compensate_action, "requires_approval": False})
            self._current_phase = phase.phase_id
            try:
                outcome, recorded = await self._perform(
                    undo, _pending(undo), context={}, compensation=True, record=True
                )
            except ActivityError as err:
                outcome, recorded = self._phase_failure(undo, _pending(undo), err), False
            self._compensations.append(outcome)
            self._publish(EventKind.COMPENSATION, phase_id=outcome.phase_id, status=outcome.status, error=outcome.error)
            metrics.count_phase(outcome.action, outcome.status, compensation=True)
            if not recorded:
                await self._log(outcome, compensation=True)
        self._current_phase = None

    async def _log(self, outcome: PhaseOutcome, *, compensation: bool = False) -> None:
        """Record a phase's entry. A cancel meanwhile lets the (quick, idempotent) write finish,
        then takes its usual path.
        """
        entry = PhaseLogEntry(
            crisis_id=self._request.crisis_id,
            target=self._request.target_member,
            outcome=outcome,
            compensation=compensation,
        )
        await uninterrupted(
            self._bookkeeping(
                CrisisActivities.log_mission_phase,
                entry,
                # Only the regular activity gets the whole crisis, to rebuild a record that is missing.
                fallback=lambda: entry.model_copy(update={"crisis": self._snapshot()}),
            )
        )

    async def _bookkeeping(
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
            if is_cancelled_exception(err):
                raise
            workflow.logger.warning(
                "Record write %s keeps failing in the worker (%s); retrying it as an activity",
                activity.__name__,
                innermost_message(err),
                extra=self._log_extra(),
            )
        return await workflow.execute_activity_method(
            activity,
            fallback() if fallback else argument,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )

    def _snapshot(self, *, with_phases: bool = True) -> CrisisSnapshot:
        """The crisis as the workflow sees it now: creates its record, or rebuilds a missing one."""
        info = workflow.info()
        return CrisisSnapshot(
            crisis_id=self._request.crisis_id,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            target=self._request.target_member,
            initiated_by=self._request.initiated_by,
            started_at=self._started_at,
            playbook=self._request.playbook,
            schedule=self._request.schedule,
            phases=self._phases if with_phases else [],
        )

    def _note_cancel(self, *, obeyed: bool) -> None:
        note = CancelNote(
            requested_at=workflow.now(), stage=self._stage, obeyed=obeyed, reason=workflow.cancellation_reason() or None
        )
        self._cancel_requests.append(note)
        self._publish(EventKind.CANCEL_REQUESTED, status=self._stage)
        if not obeyed:
            workflow.logger.warning(
                "Crisis %s: cancel requested while %s; it runs to its end",
                self._request.crisis_id,
                self._stage,
                extra=self._log_extra(),
            )

    def _log_extra(self, phase_id: str | None = None) -> dict[str, str | None]:
        """Crisis fields of a log record (the SDK adds the workflow id); see app.temporal.logs."""
        return {"crisis_id": self._request.crisis_id, "phase_id": phase_id}

    def _set_status_attribute(self, status: str) -> None:
        """Keep ``CrisisStatus`` current for crises the agency started with search attributes."""
        if workflow.info().typed_search_attributes.get(CRISIS_TARGET) is not None:
            workflow.upsert_search_attributes([CRISIS_STATUS.value_set(status)])

    @workflow.query
    def progress(self) -> CrisisProgress:
        """Where the crisis stands: its stage, the phase running now and how each phase ended."""
        return CrisisProgress(
            crisis_id=self._request.crisis_id,
            target=self._request.target_member,
            stage=self._stage,
            current_phase=self._current_phase
            or next((p.phase_id for p in self._phases if p.status in _UNDER_WAY), None),
            running_phases=[p.phase_id for p in self._phases if p.status == PhaseStatus.RUNNING],
            phases=self._phases,
            summary=CrisisSummary.of(p.status for p in self._phases),
            compensations=self._compensations,
            cancel_requests=self._cancel_requests,
        )

    @workflow.update
    def decide_approval(self, decision: ApprovalDecision) -> PhaseOutcome:
        """Approve or reject a phase that awaits approval; returns the phase with every decision so
        far. The validator lets through exactly the decisions that count: one per approver until
        the quorum approved, none after a rejection or the approval's timeout.
        """
        recorded = RecordedDecision(**decision.model_dump(), decided_at=workflow.now())
        self._decisions.setdefault(decision.phase_id, []).append(recorded)
        index = next(i for i, p in enumerate(self._phases) if p.phase_id == decision.phase_id)
        outcome = self._phases[index]
        outcome = outcome.model_copy(update={"decisions": [*outcome.decisions, recorded]})
        self._set_phase(index, outcome)
        verb = "approved" if decision.approved else "rejected"
        workflow.logger.info(
            "Mission phase %s %s by %s", decision.phase_id, verb, decision.decided_by, extra=self._log_extra()
        )
        self._publish(
            EventKind.DECISION,
            phase_id=decision.phase_id,
            decided_by=decision.decided_by,
            approved=decision.approved,
            approvals=_approvals(outcome),
            approvals_required=outcome.approvals_required,
        )
        return outcome

    @decide_approval.validator
    def _check_decision(self, decision: ApprovalDecision) -> None:
        self._refuse_if_invalid()
        phase_id = decision.phase_id
        outcome = next((p for p in self._phases if p.phase_id == phase_id), None)
        if outcome is None or not outcome.requires_approval:
            raise ValueError(f"crisis {self._request.crisis_id} has no phase {phase_id!r} that requires approval")
        decided = self._decisions.get(phase_id, [])
        rejection = next((d for d in decided if not d.approved), None)
        approvals = [d for d in decided if d.approved]
        if rejection is not None or len(approvals) >= outcome.approvals_required:
            final = rejection or approvals[-1]
            verb = "rejected" if rejection else "approved"
            by = final.decided_by if rejection or len(approvals) == 1 else ", ".join(d.decided_by for d in approvals)
            raise ValueError(
                f"phase {phase_id!r} was already {verb} by {by} at {final.decided_at.isoformat(timespec='seconds')}"
            )
        if any(d.decided_by == decision.decided_by for d in approvals):
            raise ValueError(
                f"{decision.decided_by} has already approved phase {phase_id!r} "
                f"({len(approvals)} of {outcome.approvals_required} approvals); another approver must decide"
            )
        if outcome.status == PhaseStatus.PENDING:
            raise ValueError(f"phase {phase_id!r} is not awaiting approval yet; decide once it waits for it")
        if outcome.status != PhaseStatus.AWAITING_APPROVAL:
            why = f" ({outcome.error})" if outcome.error else ""
            raise ValueError(f"phase {phase_id!r} is {outcome.status.value}{why}; it can no longer be decided")

    @workflow.update
    def add_phases(self, phases: list[MissionPhase]) -> CrisisProgress:
        """Append phases (in priority order among themselves) to a crisis that is still running."""
        added = plan.execution_order(phases)
        self._plan.extend(added)
        self._added.extend(added)
        self._phases.extend(_pending(p) for p in added)
        workflow.logger.info("Crisis %s: %d phases added", self._request.crisis_id, len(added), extra=self._log_extra())
        return self.progress()

    @add_phases.validator
    def _check_added_phases(self, phases: list[MissionPhase]) -> None:
        self._refuse_if_invalid()
        if self._stage in _WINDING_DOWN:
            raise ValueError(f"crisis {self._request.crisis_id} has finished running phases; start a new crisis")
        if not phases:
            raise ValueError("give at least one phase to add")
        known = {p.phase_id for p in self._plan}
        for phase in phases:
            if phase.phase_id in known:
                raise ValueError(f"phase_id {phase.phase_id!r} is already part of the crisis")
            known.add(phase.phase_id)
        if len(known) > MAX_PHASES:
            raise ValueError(f"a crisis has at most {MAX_PHASES} phases")
        if not self._graph and plan.is_graph(phases):
            raise ValueError("depends_on is for crises that run as a graph; this one runs its phases in order")
        found = plan.problems(phases, self._request.inputs, known=self._plan)
        if found:
            raise ValueError("; ".join(found))
        size = wire_size(self._request) + sum(wire_size(phase) for phase in [*self._added, *phases])
        if size > MAX_REQUEST_BYTES:
            raise ValueError(
                f"with these phases the crisis would carry {size} bytes of request and phases, more than the "
                f"{MAX_REQUEST_BYTES} it can carry; start another crisis for them"
            )

    def _refuse_if_invalid(self) -> None:
        if self._invalid is not None:
            raise ValueError(f"the crisis request is invalid and runs no phases ({self._invalid.message})")


def _pending(phase: MissionPhase) -> PhaseOutcome:
    return PhaseOutcome(
        phase_id=phase.phase_id,
        agent_id=phase.agent_id,
        action=phase.action,
        requires_approval=phase.requires_approval,
        approvals_required=phase.approvals_required,
        depends_on=phase.depends_on,
    )


def _as_carried(outcome: PhaseOutcome) -> PhaseOutcome:
    """``outcome`` as the crisis carries it: without the params it keeps in the record only."""
    return outcome if outcome.params_ref is None else outcome.model_copy(update={"params": None})


def _approvals(outcome: PhaseOutcome) -> int:
    return sum(1 for decision in outcome.decisions if decision.approved)


def _failed(outcome: PhaseOutcome, error: str, *, attempts: int | None) -> PhaseOutcome:
    return outcome.model_copy(
        update={"status": PhaseStatus.FAILED, "attempts": attempts, "error": error, "timestamp": workflow.now()}
    )
