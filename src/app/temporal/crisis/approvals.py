"""``Approvals``: a phase that requires approval waits at its gate for a verdict: the first
rejection, the approvals of its quorum (distinct approvers), or its approval timeout. So does a
gated tool call of a phase's agent (``tool_gate``): while it waits, its phase awaits approval,
and a decision on the phase decides that call (an approval may give the arguments it runs with).

Decisions arrive as the workflow's ``decide_approval`` update; ``check`` is its validator and
lets through exactly the decisions that count: from someone the phase's approval policy allows
(``MissionPhase.approvers``), never from whoever started the crisis unless its policy lets them
(``CrisisRequest.self_approval``), one per approver. This is the one place that counts decisions:
each phase carries its count (``PhaseOutcome.approvals``) for the agency, the service and the
console to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import JsonValue
from temporalio import workflow

from app.temporal.crisis.events import CrisisEvents
from app.temporal.crisis.observability import log_fields, show_status
from app.temporal.crisis.phases import PhaseBoard, failed
from app.temporal.crisis.state import CrisisState
from app.temporal.models import (
    ApprovalDecision,
    CrisisRequest,
    CrisisStatus,
    EventKind,
    MissionPhase,
    PendingBudget,
    PendingToolCall,
    PhaseOutcome,
    PhaseStatus,
    RecordedDecision,
)


def tool_key(phase_id: str, call_id: str) -> str:
    """Where the decisions on a tool call of a phase's agent are kept (phase ids have no ``#``)."""
    return f"{phase_id}#{call_id}"


@dataclass(frozen=True)
class Tally:
    """The decisions on one phase so far: its first rejection, if any, and its approvals."""

    rejection: RecordedDecision | None
    approvals: list[RecordedDecision]

    @classmethod
    def of(cls, decisions: Sequence[RecordedDecision]) -> Tally:
        return cls(
            rejection=next((d for d in decisions if not d.approved), None),
            approvals=[d for d in decisions if d.approved],
        )

    def decided(self, approvals_required: int) -> bool:
        return self.rejection is not None or len(self.approvals) >= approvals_required


class Approvals:
    def __init__(self, request: CrisisRequest, state: CrisisState, board: PhaseBoard, events: CrisisEvents) -> None:
        self._request = request
        self._crisis_id = request.crisis_id
        self._decisions = state.decisions
        self._board = board
        self._events = events
        #: Extend-budget gates each phase's agent has reached in this run.
        self._budget_gates: dict[str, int] = {}

    def tally(self, phase_id: str) -> Tally:
        return Tally.of(self._decisions.get(phase_id, []))

    async def tool_gate(self, phase: MissionPhase, pending: PendingToolCall) -> tuple[dict[str, JsonValue], str | None]:
        """Wait for the verdict on a gated tool call of ``phase``'s agent: the arguments it runs
        with (the model's, or those an approver gave), and why it may not run (None if it may).
        """
        key = tool_key(phase.phase_id, pending.call_id)
        tally = await self._step_gate(phase, key, {"pending_tool_call": pending}, pending.approvals_required)
        refusal = self._refusal(tally, phase, pending.approvals_required)
        if refusal is not None:
            return pending.arguments, refusal
        edited = [d.arguments for d in tally.approvals if d.arguments is not None]
        return (edited[-1] if edited else pending.arguments), None

    async def budget_gate(self, phase: MissionPhase, pending: PendingBudget) -> tuple[int, float, str | None]:
        """Wait at an extend-budget gate of ``phase``'s agent: the tokens and cost the approvals
        add (as much again as the budget, unless an approver said how much), and why the agent
        may not go on (None if it may).
        """
        self._budget_gates[phase.phase_id] = self._budget_gates.get(phase.phase_id, 0) + 1
        key = tool_key(phase.phase_id, f"budget-{self._budget_gates[phase.phase_id]}")  # (_budget_gate_id's)
        tally = await self._step_gate(phase, key, {"pending_budget": pending}, pending.approvals_required)
        refusal = self._refusal(tally, phase, pending.approvals_required)
        if refusal is not None:
            return 0, 0.0, refusal
        tokens = [d.extend_tokens for d in tally.approvals if d.extend_tokens is not None]
        costs = [d.extend_cost for d in tally.approvals if d.extend_cost is not None]
        return (
            tokens[-1] if tokens else (pending.token_budget or 0),
            costs[-1] if costs else (pending.cost_budget or 0.0),
            None,
        )

    async def _step_gate(
        self, phase: MissionPhase, key: str, pending: dict[str, Any], approvals_required: int
    ) -> Tally:
        """Hold a running phase awaiting approval of a step of its agent (``pending``: what waits)
        until the decisions kept under ``key`` decide it, or the phase's approval timeout.
        """
        board = self._board
        index = board.index_of(phase.phase_id)
        running = board.phases[index]
        waiting = {"status": PhaseStatus.AWAITING_APPROVAL, "approvals": 0, "approvals_required": approvals_required}
        board.set(index, running.model_copy(update={**waiting, **pending}))
        tally = await self._verdict(phase, key, approvals_required)
        decided = board.phases[index]  # with the decisions taken meanwhile
        going_on = {
            "status": PhaseStatus.RUNNING,
            "approvals": running.approvals,
            "approvals_required": running.approvals_required,
            **dict.fromkeys(pending),
        }
        board.set(index, decided.model_copy(update=going_on))
        return tally

    async def _verdict(self, phase: MissionPhase, key: str, approvals_required: int) -> Tally:
        """Wait, with the crisis awaiting approval, until the decisions kept under ``key`` decide
        (or ``phase``'s approval timeout passes); the decisions then.
        """
        show_status(CrisisStatus.AWAITING_APPROVAL)
        timeout = timedelta(seconds=phase.approval_timeout) if phase.approval_timeout else None
        try:
            await workflow.wait_condition(lambda: self.tally(key).decided(approvals_required), timeout=timeout)
        except TimeoutError:
            pass  # a decision accepted in the same workflow task as the timeout still counts
        if self._board.with_status(PhaseStatus.AWAITING_APPROVAL) in ([], [phase.phase_id]):
            show_status(CrisisStatus.RUNNING)  # unless another gate still waits (in a graph)
        return self.tally(key)

    @staticmethod
    def _refusal(tally: Tally, phase: MissionPhase, approvals_required: int) -> str | None:
        if tally.rejection is not None:
            reason = f": {tally.rejection.reason}" if tally.rejection.reason else ""
            return f"rejected by {tally.rejection.decided_by}{reason}"
        if not tally.decided(approvals_required):
            return f"approval timed out after {phase.approval_timeout:g} s"
        return None

    async def gate(self, index: int, phase: MissionPhase) -> PhaseOutcome:
        """Wait for the verdict on phase ``index``: the phase approved (``approved_by`` set), or
        failed, rejected or timed out.
        """
        board = self._board
        board.set(index, board.phases[index].model_copy(update={"status": PhaseStatus.AWAITING_APPROVAL}))
        tally = await self._verdict(phase, phase.phase_id, phase.approvals_required)
        outcome = board.phases[index]  # with the decisions taken meanwhile
        refusal = self._refusal(tally, phase, phase.approvals_required)
        if refusal is not None:
            if tally.rejection is None and phase.approvals_required > 1:  # timed out short of its quorum
                refusal += f" with {outcome.approvals} of {phase.approvals_required} approvals"
            return failed(outcome, refusal, attempts=0)
        return outcome.model_copy(update={"approved_by": ", ".join(d.decided_by for d in tally.approvals)})

    def decide(self, decision: ApprovalDecision) -> PhaseOutcome:
        """Take ``decision`` (one ``check`` let through); the phase with every decision so far."""
        index = self._board.index_of(decision.phase_id)
        outcome = self._board.phases[index]
        pending = outcome.pending_tool_call
        recorded = RecordedDecision(
            **decision.model_dump(),
            decided_at=workflow.now(),
            tool=pending.tool if pending else ("extend-budget" if outcome.pending_budget else None),
            tool_call_id=pending.call_id if pending else self._budget_gate_id(outcome),
        )
        key = self._gate_key(outcome) or decision.phase_id
        decisions = self._decisions.setdefault(key, [])
        decisions.append(recorded)
        outcome = outcome.model_copy(
            update={"decisions": [*outcome.decisions, recorded], "approvals": len(Tally.of(decisions).approvals)}
        )
        self._board.set(index, outcome)
        verb = "approved" if decision.approved else "rejected"
        workflow.logger.info(
            "Mission phase %s %s by %s",
            decision.phase_id,
            verb,
            decision.decided_by,
            extra=log_fields(self._crisis_id),
        )
        self._events.publish(
            EventKind.DECISION,
            phase_id=decision.phase_id,
            decided_by=decision.decided_by,
            approved=decision.approved,
            approvals=outcome.approvals,
            approvals_required=outcome.approvals_required,
        )
        return outcome

    def check(self, decision: ApprovalDecision) -> None:
        """Refuse (``ValueError``, in one sentence) a decision that would not count."""
        phase_id = decision.phase_id
        outcome = self._board.find(phase_id)
        key = self._gate_key(outcome) if outcome is not None else None
        if outcome is not None and key is not None:
            self._check_decider(decision)
            budget = decision.extend_tokens is not None or decision.extend_cost is not None
            if (decision.arguments is not None or budget) and not decision.approved:
                raise ValueError("arguments and amounts go with an approval: a rejection runs nothing")
            if decision.arguments is not None and outcome.pending_tool_call is None:
                raise ValueError(f"phase {phase_id!r} waits at an extend-budget gate, not for a tool call's arguments")
            if budget and outcome.pending_budget is None:
                raise ValueError(f"phase {phase_id!r} waits for a tool call, not at an extend-budget gate")
            self._check_tally(self.tally(key), decision, outcome.approvals_required)
            return
        if decision.arguments is not None:
            raise ValueError(f"phase {phase_id!r} has no tool call awaiting approval, whose arguments one could give")
        if decision.extend_tokens is not None or decision.extend_cost is not None:
            raise ValueError(f"phase {phase_id!r} waits at no extend-budget gate, whose budget one could extend")
        if outcome is None or not outcome.requires_approval:
            raise ValueError(f"crisis {self._crisis_id} has no phase {phase_id!r} that requires approval")
        self._check_decider(decision)
        self._check_tally(self.tally(phase_id), decision, outcome.approvals_required)
        if outcome.status == PhaseStatus.PENDING:
            raise ValueError(f"phase {phase_id!r} is not awaiting approval yet; decide once it waits for it")
        if outcome.status != PhaseStatus.AWAITING_APPROVAL:
            why = f" ({outcome.error})" if outcome.error else ""
            raise ValueError(f"phase {phase_id!r} is {outcome.status.value}{why}; it can no longer be decided")

    def _gate_key(self, outcome: PhaseOutcome) -> str | None:
        """Where the decisions on the step of its agent that awaits approval are kept (None: none waits)."""
        if outcome.pending_tool_call is not None:
            return tool_key(outcome.phase_id, outcome.pending_tool_call.call_id)
        budget_gate = self._budget_gate_id(outcome)
        return tool_key(outcome.phase_id, budget_gate) if budget_gate else None

    def _budget_gate_id(self, outcome: PhaseOutcome) -> str | None:
        """``budget-N`` while the phase waits at its agent's N-th extend-budget gate of this run."""
        if outcome.pending_budget is None:
            return None
        return f"budget-{self._budget_gates.get(outcome.phase_id, 0)}"

    @staticmethod
    def _check_tally(tally: Tally, decision: ApprovalDecision, approvals_required: int) -> None:
        """Refuse a decision on a gate already decided, or a second approval by the same approver."""
        phase_id = decision.phase_id
        if tally.decided(approvals_required):
            final = tally.rejection or tally.approvals[-1]
            verb = "rejected" if tally.rejection else "approved"
            several = tally.rejection is None and len(tally.approvals) > 1
            by = ", ".join(d.decided_by for d in tally.approvals) if several else final.decided_by
            raise ValueError(
                f"phase {phase_id!r} was already {verb} by {by} at {final.decided_at.isoformat(timespec='seconds')}"
            )
        if any(d.decided_by == decision.decided_by for d in tally.approvals):
            raise ValueError(
                f"{decision.decided_by} has already approved phase {phase_id!r} "
                f"({len(tally.approvals)} of {approvals_required} approvals); another approver must decide"
            )

    def _check_decider(self, decision: ApprovalDecision) -> None:
        """Refuse a decider the crisis's approval policy does not allow."""
        request, who = self._request, decision.decided_by
        if who == request.initiated_by and not request.self_approval:
            raise ValueError(
                f"{who} started crisis {self._crisis_id} and may not decide its gates (four eyes): "
                "another approver must decide"
            )
        approvers = next(p.approvers for p in self._board.plan if p.phase_id == decision.phase_id)
        if approvers is not None and not approvers.allow(decision):
            role = f" (role {decision.role})" if decision.role else ""
            raise ValueError(
                f"{who}{role} may not decide phase {decision.phase_id!r}: its approval policy lets "
                f"{approvers.describe()} decide"
            )
