"""The activities of a crisis (and, from app.temporal.agent_steps, a language-model agent's
steps). Each one is safe to retry: records are upserted by id.

Record writes go to the worker's record store (app.temporal.records), awaited on the worker's
event loop. The file store writes synchronously inside its async methods, not on a thread: a
phase write is one fsynced journal line (0.2-0.7 ms), and handing each write to a thread and back
cost the worker more CPU than the write itself (see BENCHMARKS.md); the PostgreSQL store awaits
its connection pool. A store that fails raises CrisisRecordError, and the activity is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from pydantic import JsonValue
from temporalio import activity
from temporalio.exceptions import ApplicationError

from app.temporal import metrics
from app.temporal.agents import AGENT_FAILURE_ERROR, SIMULATE, ExecutorRegistry, Mission, SimulateExecutor
from app.temporal.errors import CrisisIdTakenError, CrisisRecordError
from app.temporal.heartbeats import while_heartbeating
from app.temporal.logs import log_failed_attempt
from app.temporal.models import (
    MAX_OUTPUT_BYTES,
    AgentReport,
    CrisisCompletion,
    CrisisSnapshot,
    FinalWriteHold,
    MissionPhase,
    OutputRef,
    PhaseAssignment,
    PhaseLogEntry,
    PhaseOutcome,
    PhaseStatus,
    json_size,
)
from app.temporal.records import CrisisRun, RecordStore
from app.temporal.uninterrupted import uninterrupted
from app.temporal.validation import CrisisInput, check_crisis_request

__all__ = ["CrisisActivities"]

logger = logging.getLogger("liara.activities")

#: The error type of a new crisis whose crisis id an earlier crisis's record holds.
CRISIS_ID_TAKEN_ERROR = "CrisisIdTaken"


class CrisisActivities:
    """Activities bound to the record store they write to and the agents they dispatch to."""

    def __init__(self, store: RecordStore, executors: ExecutorRegistry | None = None) -> None:
        self.store = store
        self.executors = executors or ExecutorRegistry({SIMULATE: SimulateExecutor()})

    @activity.defn(name="validate_crisis_request")
    async def validate_crisis_request(self, request: CrisisInput) -> list[MissionPhase]:
        """The request checked and its phases in execution order. The crisis workflow runs the
        same check itself (it is deterministic); this activity offers it to other workflows.
        Typed like the workflow's input, so a request that breaks a rule reaches the check (and
        fails at once with its one-line message) instead of failing the converter, retried.
        """
        return check_crisis_request(request).ordered_missions()

    @activity.defn(name="initialize_crisis_response")
    async def initialize_crisis_response(self, crisis: CrisisSnapshot) -> None:
        """Create the crisis's record. A new crisis reusing the crisis id of an earlier one whose
        record is kept (its workflow gone from Temporal) fails at once, not retried: the earlier
        record stays, and the new crisis must start under another id.
        """
        try:
            await self._create(crisis)
        except CrisisIdTakenError as err:
            raise ApplicationError(
                f"Crisis {crisis.crisis_id} cannot start: {err}.", type=CRISIS_ID_TAKEN_ERROR, non_retryable=True
            ) from None

    async def _create(self, crisis: CrisisSnapshot) -> None:
        await self.store.create(crisis, run=_current_run())
        logger.info("Crisis %s initialized: %d phases against %s", crisis.crisis_id, len(crisis.phases), crisis.target)

    @activity.defn(name="perform_agent_mission")
    async def perform_agent_mission(self, assignment: PhaseAssignment) -> AgentReport:
        """Run the phase's agent through the executor configured for its action.

        The agent runs as a task while this heartbeats, so a dead worker is noticed within the
        heartbeat timeout and a cancelled phase stops its agent before the cancel completes.
        Each attempt is measured (``liara_phase_duration`` by action and outcome) and each retry
        counted (``liara_phase_retries`` by action); see app.temporal.metrics. A failed attempt is
        one log line, with when the next one comes (app.temporal.logs.log_failed_attempt).
        """
        action = assignment.phase.action
        if assignment.crisis is not None and not await uninterrupted(self._create_first(assignment.crisis)):
            phase = assignment.phase
            return AgentReport(phase_id=phase.phase_id, agent_id=phase.agent_id, attempt=1, created=False)
        if activity.info().attempt > 1:
            metrics.count_phase_retry(action)
        started = time.monotonic()
        outcome = "failed"
        try:
            report = await self._perform(assignment)
            report.created = True if assignment.crisis is not None else None
            outcome = "completed"
            return report
        except ApplicationError as err:
            kind = "Compensation of mission phase" if assignment.compensation else "Mission phase"
            log_failed_attempt(logger, f"{kind} {assignment.phase.phase_id}", err)
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            metrics.record_phase_attempt(action, outcome, timedelta(seconds=time.monotonic() - started))

    async def _create_first(self, crisis: CrisisSnapshot) -> bool:
        """Create the crisis's record before its first phase's agent runs (one server round trip for
        both); False if the store cannot, or the crisis id is an earlier crisis's: then the agent
        does not run, and the workflow creates the record itself (retried, or failing the crisis,
        as ``initialize_crisis_response`` does) before it runs the phase again.
        """
        try:
            await self._create(crisis)
        except CrisisRecordError as err:
            logger.warning("Crisis %s: its record is not created yet (%s)", crisis.crisis_id, err)
            return False
        return True

    async def _perform(self, assignment: PhaseAssignment) -> AgentReport:
        phase = assignment.phase
        info = activity.info()
        if info.attempt > 1:
            logger.warning("Retrying mission phase %s (attempt %d)", phase.phase_id, info.attempt)
        logger.info(
            "AGENT DEPLOYMENT - Phase: %s | Agent: %s | Action: %s | Target: %s",
            phase.phase_id,
            phase.agent_id,
            phase.action,
            phase.target,
        )
        mission = Mission(
            crisis_id=assignment.crisis_id,
            workflow_id=assignment.workflow_id,
            phase=phase,
            attempt=info.attempt,
            compensation=assignment.compensation,
            context=assignment.context,
        )
        plan = self.executors.agent_plan(phase.action)
        if plan is not None:  # a language-model agent: its workflow runs the loop, step by step
            plan = await self.executors.with_server_schemas(plan)
            return AgentReport(phase_id=phase.phase_id, agent_id=phase.agent_id, attempt=info.attempt, agent_loop=plan)
        began = time.monotonic()
        try:
            output = await while_heartbeating(self.executors.executor_for(phase.action).run(mission))
        except asyncio.CancelledError:
            logger.warning("Mission phase %s cancelled; agent %s stopped", phase.phase_id, phase.agent_id)
            raise
        # The server's clock: when the attempt started there, plus how long the agent ran here.
        finished_at = info.started_time + timedelta(seconds=time.monotonic() - began)
        logger.info("Agent %s deployed successfully for mission phase %s", phase.agent_id, phase.phase_id)
        report = AgentReport(
            phase_id=phase.phase_id, agent_id=phase.agent_id, attempt=info.attempt, finished_at=finished_at
        )
        size = 0 if output is None else json_size(output)
        if size > MAX_OUTPUT_BYTES:
            raise ApplicationError(
                f"Agent {phase.agent_id} reported {size} bytes of output for phase {phase.phase_id}, "
                f"more than the {MAX_OUTPUT_BYTES} a phase may report.",
                type=AGENT_FAILURE_ERROR,
                non_retryable=True,
            )
        if size <= assignment.inline_output_bytes:
            report.output, report.output_bytes = output, size
        else:
            report.output_ref = OutputRef(
                crisis_id=assignment.crisis_id,
                phase_id=phase.phase_id,
                compensation=assignment.compensation,
                size_bytes=size,
            )
        if assignment.finalize and report.output_ref is None:
            report.record_path = await uninterrupted(self._finish_crisis(assignment, report, output))
            report.recorded = report.record_path is not None
        elif assignment.record or report.output_ref is not None:
            report.recorded = await uninterrupted(self._record_success(assignment, report, output))
        return report

    async def _finish_crisis(self, assignment: PhaseAssignment, report: AgentReport, output: JsonValue) -> str | None:
        """The last phase's completed entry and the record's final state, in one write: where the
        record is, or None if this write did not happen (the workflow holds the final write, or the
        store failed): then the workflow writes both, as after any last phase.
        """
        completed = _completed_entry(assignment, report, output)
        try:
            record = await self.store.finalize_with_last(
                assignment.crisis_id, completed, run=_current_run(), attempt_started=activity.info().started_time
            )
        except CrisisRecordError as err:
            logger.warning("Crisis %s: its final state is left to the workflow (%s)", assignment.crisis_id, err)
            return None
        if record is None:
            return None
        logger.info("Mission phase %s completed (crisis %s)", completed.phase_id, assignment.crisis_id)
        _log_final(assignment.crisis_id, record)
        return self.store.location(assignment.crisis_id)

    async def _record_success(self, assignment: PhaseAssignment, report: AgentReport, output: JsonValue) -> bool:
        """Write the completed phase to the crisis record: True if written, False if the store failed.

        The caller runs it uninterrupted, so a cancel cannot cut it short. A store that fails here does not
        fail the phase (the agent did its work): the workflow then writes the entry itself. Only
        an output too large to carry back inline has nowhere else to go: then the attempt fails
        (retryable), so that nothing the agent said is lost.
        """
        completed = _completed_entry(assignment, report, output)
        log_entry = PhaseLogEntry(
            crisis_id=assignment.crisis_id,
            target=assignment.phase.target,
            outcome=completed,
            compensation=assignment.compensation,
        )
        try:
            # The attempt's start tells a late report (Temporal gave up on this attempt meanwhile) from a timely one.
            await self._record_phase(log_entry, attempt_started=activity.info().started_time)
        except CrisisRecordError as err:
            if report.output_ref is not None:
                raise ApplicationError(
                    f"Mission phase {completed.phase_id} returned {report.output_ref.size_bytes} bytes of output, "
                    f"more than the crisis can carry inline, and the record that would keep them failed: {err}",
                    type="OutputNotRecorded",
                ) from None
            logger.warning("Mission phase %s completed but is not recorded yet: %s", completed.phase_id, err)
            return False
        return True

    @activity.defn(name="log_mission_phase")
    async def log_mission_phase(self, entry: PhaseLogEntry) -> None:
        await self._record_phase(entry)

    async def _record_phase(self, entry: PhaseLogEntry, *, attempt_started: datetime | None = None) -> None:
        outcome = entry.outcome
        written = await self.store.upsert_phase(
            entry.crisis_id,
            outcome,
            compensation=entry.compensation,
            crisis=entry.crisis,
            run=_current_run(),
            attempt_started=attempt_started,
        )
        if written is None:
            return
        kind = "Compensation of mission phase" if entry.compensation else "Mission phase"
        if outcome.status == PhaseStatus.COMPLETED:
            logger.info("%s %s completed (crisis %s)", kind, outcome.phase_id, entry.crisis_id)
        else:
            logger.warning(
                "%s %s %s (crisis %s): %s", kind, outcome.phase_id, outcome.status, entry.crisis_id, outcome.error
            )

    @activity.defn(name="finalize_crisis_response")
    async def finalize_crisis_response(self, completion: CrisisCompletion) -> str:
        """Write the final record; return where it is (``CrisisResult.record_path``): the record file's
        absolute path, or ``postgresql://host:port/database#crisis_id``.
        """
        record = await self.store.finalize(completion, run=_current_run())
        if record is not None:
            _log_final(completion.crisis_id, record)
        return self.store.location(completion.crisis_id)

    @activity.defn(name="hold_final_write")
    async def hold_final_write(self, hold: FinalWriteHold) -> bool:
        """Keep the crisis's final write for the workflow, not for the activity of ``hold.phase_id``
        (phases were added, or a cancel came, while it ran): False if that activity has finalized
        the record already.
        """
        return await self.store.hold_final_write(hold.crisis_id, hold.phase_id, crisis=hold.crisis, run=_current_run())

    def all(self) -> list:
        """The five activities of the spec, for registering on a worker (beside ``hold_final_write``
        and app.temporal.agent_steps', which only the crisis workflow's own steps call).
        """
        return [
            self.validate_crisis_request,
            self.initialize_crisis_response,
            self.perform_agent_mission,
            self.log_mission_phase,
            self.finalize_crisis_response,
        ]


def _completed_entry(assignment: PhaseAssignment, report: AgentReport, output: JsonValue) -> PhaseOutcome:
    """The phase's record entry once its agent has completed."""
    entry = assignment.entry or PhaseOutcome(
        phase_id=assignment.phase.phase_id, agent_id=assignment.phase.agent_id, action=assignment.phase.action
    )
    return entry.model_copy(
        update={
            "status": PhaseStatus.COMPLETED,
            "attempts": report.attempt,
            "output": output,
            "timestamp": report.finished_at,
            # Params past the crisis's budget reach the record here only: they are the phase's.
            "params": assignment.phase.params if entry.params_ref is not None else entry.params,
        }
    )


def _log_final(crisis_id: str, record: dict) -> None:
    summary = record["summary"]
    logger.info(
        "Crisis %s %s: %d of %d phases completed, %d failed",
        crisis_id,
        record["status"],
        summary["completed_phases"],
        summary["total_phases"],
        summary["failed_phases"],
    )


def _current_run() -> CrisisRun:
    """The workflow run this activity works for, as Temporal says."""
    info = activity.info()
    assert info.workflow_id and info.workflow_run_id, "the crisis's activities run for its workflow"
    return CrisisRun(namespace=info.workflow_namespace, workflow_id=info.workflow_id, run_id=info.workflow_run_id)
