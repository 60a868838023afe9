"""``PhaseBoard``: where each phase of the crisis stands, in plan order, and the events (and
webhooks) a change of status makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import workflow

from app.temporal import metrics, plan
from app.temporal.crisis.events import CrisisEvents
from app.temporal.crisis.state import CrisisState
from app.temporal.models import CrisisSummary, EventKind, MissionPhase, PhaseOutcome, PhaseStatus
from app.temporal.notifications import WebhookEvent

#: ``phase_failed`` notifications a crisis sends at most (the last says so in ``last_told``).
MAX_FAILURES_TOLD = 10
#: A phase's statuses while it is under way: its agent runs, or it awaits a decision.
UNDER_WAY = (PhaseStatus.RUNNING, PhaseStatus.AWAITING_APPROVAL)


class PhaseBoard:
    def __init__(self, phases: list[MissionPhase], state: CrisisState, events: CrisisEvents) -> None:
        #: The plan: the request's phases in execution order, then those added since, in order.
        self.plan = phases
        self.graph = plan.is_graph(phases)
        self._state = state
        self._events = events

    @property
    def phases(self) -> list[PhaseOutcome]:
        return self._state.phases

    def index_of(self, phase_id: str) -> int:
        return next(index for index, p in enumerate(self.phases) if p.phase_id == phase_id)

    def find(self, phase_id: str) -> PhaseOutcome | None:
        return next((p for p in self.phases if p.phase_id == phase_id), None)

    def statuses(self) -> dict[str, str]:
        return {p.phase_id: p.status.value for p in self.phases}

    def ready(self) -> list[MissionPhase]:
        """The phases that may start now (see app.temporal.plan)."""
        return plan.ready(self.plan, self.statuses(), self.graph)

    def suspended(self) -> list[MissionPhase]:
        """Agent phases whose loops stopped for a new run of the crisis: they go on before any other starts."""
        return [phase for phase in self.plan if phase.phase_id in self._state.agent_loops]

    def summary(self) -> CrisisSummary:
        return CrisisSummary.of(p.status for p in self.phases)

    def with_status(self, *statuses: PhaseStatus) -> list[str]:
        return [p.phase_id for p in self.phases if p.status in statuses]

    def is_last(self, phase_id: str) -> bool:
        """Nothing else is left to run (so the final record write can include this phase)."""
        return all(p.status in plan.FINISHED for p in self.phases if p.phase_id != phase_id)

    def add(self, phases: Sequence[MissionPhase]) -> None:
        """Append ``phases`` (in priority order among themselves) to the plan."""
        added = plan.execution_order(phases)
        self.plan.extend(added)
        self._state.added.extend(added)
        self.phases.extend(pending(p) for p in added)

    def set(self, index: int, outcome: PhaseOutcome) -> None:
        """Where phase ``index`` stands now; a new status is an event (and, awaiting approval, a second one)."""
        changed = outcome.status != self.phases[index].status
        self.phases[index] = outcome
        if not changed:
            return
        changed_at = self._events.publish(
            EventKind.PHASE, phase_id=outcome.phase_id, status=outcome.status, error=outcome.error
        )
        if outcome.status == PhaseStatus.FAILED and self._state.failures_told < MAX_FAILURES_TOLD:
            # A crisis of a thousand failing phases tells the first few; ``finished`` gives the count.
            self._state.failures_told += 1
            data = {"phase_id": outcome.phase_id, "error": outcome.error}
            if self._state.failures_told == MAX_FAILURES_TOLD:
                data["last_told"] = True
            self._events.notify(WebhookEvent.PHASE_FAILED, changed_at, data)
        if outcome.status == PhaseStatus.AWAITING_APPROVAL:
            tool_call = outcome.pending_tool_call  # a gated tool call of its agent waits, not the phase
            required = self._events.publish(
                EventKind.APPROVAL_REQUIRED,
                phase_id=outcome.phase_id,
                approvals=outcome.approvals,
                approvals_required=outcome.approvals_required,
                tool=tool_call.tool if tool_call else None,
            )
            data: dict[str, Any] = {"phase_id": outcome.phase_id, "approvals_required": outcome.approvals_required}
            if tool_call is not None:
                data |= {"tool": tool_call.tool, "arguments": tool_call.arguments}
            if outcome.pending_budget is not None:  # an extend-budget gate: what was spent, what was allowed
                data |= {"budget": outcome.pending_budget.model_dump(mode="json")}
            self._events.notify(WebhookEvent.APPROVAL_REQUIRED, required, data)

    def close(self, index: int, status: PhaseStatus) -> None:
        """Phase ``index`` ends, now, with ``status`` without having completed."""
        self.set(index, self.phases[index].model_copy(update={"status": status, "timestamp": workflow.now()}))
        metrics.count_phase(self.phases[index].action, status)

    def close_unfinished(self, status: PhaseStatus) -> None:
        """After an abort or cancel: the phases that were under way end with ``status``, those
        never started are skipped.
        """
        for index, outcome in enumerate(self.phases):
            if outcome.status in UNDER_WAY:
                self.close(index, status)
            elif outcome.status == PhaseStatus.PENDING:
                self.close(index, PhaseStatus.SKIPPED)

    def skip_blocked(self) -> None:
        """In a graph, skip every phase something it depends on did not complete (transitively)."""
        while self.graph and (blocked := plan.blocked(self.plan, self.statuses())):
            for phase_id in blocked:
                self.close(self.index_of(phase_id), PhaseStatus.SKIPPED)


def pending(phase: MissionPhase) -> PhaseOutcome:
    """Phase ``phase`` before it starts."""
    return PhaseOutcome(
        phase_id=phase.phase_id,
        agent_id=phase.agent_id,
        action=phase.action,
        requires_approval=phase.requires_approval,
        approvals_required=phase.approvals_required,
        depends_on=phase.depends_on,
    )


def as_carried(outcome: PhaseOutcome) -> PhaseOutcome:
    """``outcome`` as the crisis carries it: without what it keeps in the record only (params past
    the budget, an agent's transcript).
    """
    if outcome.params_ref is None and outcome.transcript is None:
        return outcome
    dropped: dict[str, None] = {"transcript": None}
    if outcome.params_ref is not None:
        dropped["params"] = None
    return outcome.model_copy(update=dropped)


def failed(outcome: PhaseOutcome, error: str, *, attempts: int | None) -> PhaseOutcome:
    """``outcome`` failed now with ``error``."""
    return outcome.model_copy(
        update={"status": PhaseStatus.FAILED, "attempts": attempts, "error": error, "timestamp": workflow.now()}
    )
