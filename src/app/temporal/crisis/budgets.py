"""``Budgets``: what language-model agents may spend, per phase (its executor's ``token_budget``
and ``cost_budget``) and per crisis (the crisis's options of the same names).

An agent that has reached a budget does not fail: before its next model call it waits at an
extend-budget gate (an approval gate: quorum, four eyes and the phase's approval policy hold)
that says what was spent. Approved, the budget grows by what the approval says (as much again
by default) and the agent goes on; rejected, the phase fails with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.temporal.crisis.approvals import Approvals
from app.temporal.crisis.phases import PhaseBoard
from app.temporal.crisis.state import CrisisState
from app.temporal.models import AgentLoopPlan, CrisisRequest, MissionPhase, ModelUsage, PendingBudget

PHASE, CRISIS = "phase", "crisis"


@dataclass
class PhaseLimits:
    """One agent phase's budget, as its gates have extended it."""

    tokens: int | None
    cost: float | None

    @classmethod
    def of(cls, plan: AgentLoopPlan) -> PhaseLimits:
        return cls(plan.token_budget, plan.cost_budget)


class Budgets:
    def __init__(self, request: CrisisRequest, state: CrisisState, board: PhaseBoard, approvals: Approvals) -> None:
        self._request = request
        self._state = state
        self._board = board
        self._approvals = approvals
        #: What each agent under way has spent so far (its phase carries it once it ends).
        self._live: dict[str, ModelUsage] = {}

    def spending(self, phase_id: str, usage: ModelUsage | None) -> None:
        """What the agent of ``phase_id`` has spent so far; None once its phase ended."""
        if usage is None:
            self._live.pop(phase_id, None)
        else:
            self._live[phase_id] = usage

    async def go_on(self, phase: MissionPhase, spent: ModelUsage, limits: PhaseLimits) -> str | None:
        """Before a model call: None if the agent may make it (after its extend-budget gates, if
        any), else why not.
        """
        while (pending := self._reached(spent, limits)) is not None:
            tokens, cost, refusal = await self._approvals.budget_gate(phase, pending)
            if refusal is not None:
                return (
                    f"Phase {phase.phase_id}'s agent reached its {pending.scope}'s budget "
                    f"({describe(pending)}): the extension was {refusal}"
                )
            if pending.scope == PHASE:
                limits.tokens = limits.tokens + tokens if limits.tokens is not None else None
                limits.cost = limits.cost + cost if limits.cost is not None else None
            else:
                self._state.extra_tokens += tokens
                self._state.extra_cost += cost
        return None

    def _reached(self, spent: ModelUsage, limits: PhaseLimits) -> PendingBudget | None:
        if over(spent, limits.tokens, limits.cost):
            return PendingBudget(scope=PHASE, spent=spent, token_budget=limits.tokens, cost_budget=limits.cost)
        request = self._request
        tokens = request.token_budget + self._state.extra_tokens if request.token_budget is not None else None
        cost = request.cost_budget + self._state.extra_cost if request.cost_budget is not None else None
        if tokens is None and cost is None:
            return None
        by_crisis = self.crisis_spent()
        if over(by_crisis, tokens, cost):
            return PendingBudget(scope=CRISIS, spent=by_crisis, token_budget=tokens, cost_budget=cost)
        return None

    def crisis_spent(self) -> ModelUsage:
        """What the crisis's agents have spent: the phases that ended, and those under way."""
        ended = [p.usage for p in self._board.phases if p.phase_id not in self._live]
        compensations = [c.usage for c in self._state.compensations]
        return ModelUsage.total([*ended, *compensations, *self._live.values()]) or ModelUsage()


def over(spent: ModelUsage, tokens: int | None, cost: float | None) -> bool:
    return (tokens is not None and spent.total_tokens >= tokens) or (
        cost is not None and spent.cost is not None and spent.cost >= cost
    )


def describe(pending: PendingBudget) -> str:
    """E.g. ``1200 of 1000 tokens`` or ``0.52 of 0.50 cost``."""
    parts = []
    if pending.token_budget is not None:
        parts.append(f"{pending.spent.total_tokens} of {pending.token_budget} tokens")
    if pending.cost_budget is not None:
        parts.append(f"{pending.spent.cost or 0:g} of {pending.cost_budget:g} cost")
    return ", ".join(parts)
