"""The five activities of a crisis. Each one is safe to retry: records are upserted by id.

Record writes run on the worker's event loop, not on a thread: a record is a few KB on local
disk (0.2-0.7 ms with its fsyncs), and handing each write to a thread and back cost the worker
more CPU than the write itself (see BENCHMARKS.md). Keep the record directory on a local disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from pydantic import JsonValue
from temporalio import activity

from app.temporal import metrics
from app.temporal.config import SIMULATE, ExecutorRegistry
from app.temporal.errors import CrisisRecordError
from app.temporal.executors import Mission, SimulateExecutor
from app.temporal.models import (
    AgentReport,
    CrisisCompletion,
    CrisisRequest,
    CrisisStart,
    MissionPhase,
    PhaseAssignment,
    PhaseLogEntry,
    PhaseStatus,
)
from app.temporal.records import CrisisRecordStore
from app.temporal.validation import check_crisis_request

logger = logging.getLogger("liara.activities")

#: Longest pause between heartbeats of a running agent (a quarter of its heartbeat timeout if shorter).
HEARTBEAT_INTERVAL_SECONDS = 1.0


class CrisisActivities:
    """Activities bound to the record store they write to and the agents they dispatch to."""

    def __init__(self, store: CrisisRecordStore, executors: ExecutorRegistry | None = None) -> None:
        self.store = store
        self.executors = executors or ExecutorRegistry({SIMULATE: SimulateExecutor()})

    @activity.defn(name="validate_crisis_request")
    async def validate_crisis_request(self, request: CrisisRequest) -> list[MissionPhase]:
        """The request checked and its phases in execution order (crises started before the
        workflow ran this check itself still call it).
        """
        return check_crisis_request(request)

    @activity.defn(name="initialize_crisis_response")
    async def initialize_crisis_response(self, start: CrisisStart) -> None:
        self.store.create(start)
        logger.info("Crisis %s initialized: %d phases against %s", start.crisis_id, len(start.phases), start.target)

    @activity.defn(name="perform_agent_mission")
    async def perform_agent_mission(self, assignment: PhaseAssignment) -> AgentReport:
        """Run the phase's agent through the executor configured for its action.

        The agent runs as a task while this heartbeats, so a dead worker is noticed within the
        heartbeat timeout and a cancelled phase stops its agent before the cancel completes.
        Each attempt is measured (``liara_phase_duration`` by action and outcome) and each retry
        counted (``liara_phase_retries`` by action); see app.temporal.metrics.
        """
        action = assignment.phase.action
        if activity.info().attempt > 1:
            metrics.count_phase_retry(action)
        started = time.monotonic()
        outcome = "failed"
        try:
            report = await self._perform(assignment)
            outcome = "completed"
            return report
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            metrics.record_phase_attempt(action, outcome, timedelta(seconds=time.monotonic() - started))

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
        )
        agent = asyncio.ensure_future(self.executors.executor_for(phase.action).run(mission))
        interval = HEARTBEAT_INTERVAL_SECONDS
        if info.heartbeat_timeout:
            interval = min(interval, info.heartbeat_timeout.total_seconds() / 4)
        try:
            # Heartbeat only while the agent runs: a quick agent costs the server no heartbeat.
            while not (await asyncio.wait({agent}, timeout=interval))[0]:
                activity.heartbeat()
        except asyncio.CancelledError:
            agent.cancel()
            await asyncio.gather(agent, return_exceptions=True)
            logger.warning("Mission phase %s cancelled; agent %s stopped", phase.phase_id, phase.agent_id)
            raise
        output = agent.result()
        logger.info("Agent %s deployed successfully for mission phase %s", phase.agent_id, phase.phase_id)
        recorded = self._record_success(assignment, info.attempt, output)
        return AgentReport(
            phase_id=phase.phase_id, agent_id=phase.agent_id, attempt=info.attempt, output=output, recorded=recorded
        )

    def _record_success(self, assignment: PhaseAssignment, attempt: int, output: JsonValue) -> bool | None:
        """Write the completed phase to the crisis record if the workflow asked for it: True if
        written, False if the store failed, None if not asked.

        The write has no await, so a cancel cannot cut it short: no late write can land after the
        record is finalized. A store that fails here does not fail the phase (the agent did its
        work): the workflow then writes the entry itself.
        """
        if assignment.record_as is None:
            return None
        completed = assignment.record_as.model_copy(
            update={
                "status": PhaseStatus.COMPLETED,
                "attempts": attempt,
                "output": output,
                "timestamp": datetime.now(UTC),
            }
        )
        entry = PhaseLogEntry(
            crisis_id=assignment.crisis_id,
            target=assignment.phase.target,
            outcome=completed,
            compensation=assignment.compensation,
        )
        try:
            self._record_phase(entry)
        except CrisisRecordError as err:
            logger.warning("Mission phase %s completed but is not recorded yet: %s", completed.phase_id, err)
            return False
        return True

    @activity.defn(name="log_mission_phase")
    async def log_mission_phase(self, entry: PhaseLogEntry) -> None:
        self._record_phase(entry)

    def _record_phase(self, entry: PhaseLogEntry) -> None:
        outcome = entry.outcome
        self.store.upsert_phase(entry.crisis_id, outcome, compensation=entry.compensation, crisis=entry.crisis)
        kind = "Compensation of mission phase" if entry.compensation else "Mission phase"
        if outcome.status == PhaseStatus.COMPLETED:
            logger.info("%s %s completed (crisis %s)", kind, outcome.phase_id, entry.crisis_id)
        else:
            logger.warning(
                "%s %s %s (crisis %s): %s", kind, outcome.phase_id, outcome.status, entry.crisis_id, outcome.error
            )

    @activity.defn(name="finalize_crisis_response")
    async def finalize_crisis_response(self, completion: CrisisCompletion) -> str:
        """Write the final record; return its absolute path."""
        record = self.store.finalize(completion)
        summary = record["summary"]
        logger.info(
            "Crisis %s %s: %d of %d phases completed, %d failed",
            completion.crisis_id,
            completion.status,
            summary["completed_phases"],
            summary["total_phases"],
            summary["failed_phases"],
        )
        return str(self.store.path_for(completion.crisis_id).resolve())

    def all(self) -> list:
        """The five activities, for registering on a worker."""
        return [
            self.validate_crisis_request,
            self.initialize_crisis_response,
            self.perform_agent_mission,
            self.log_mission_phase,
            self.finalize_crisis_response,
        ]
