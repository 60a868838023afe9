"""``PhaseParams``: a phase's params with their references resolved, the context its agent gets,
and the crisis's output budget.

What the crisis carries stays inside Temporal's payload limits whatever its agents report: its
phases' outputs and resolved params share a budget (``OUTPUT_BUDGET_BYTES``); an output or params
past it are kept in the crisis record only, and the phase carries an ``output_ref`` or
``params_ref`` instead.
"""

from __future__ import annotations

from typing import Any

from app.temporal.crisis.phases import PhaseBoard
from app.temporal.crisis.state import CrisisState
from app.temporal.models import (
    MAX_OUTPUT_BYTES,
    OUTPUT_BUDGET_BYTES,
    CrisisRequest,
    MissionPhase,
    OutputRef,
    PhaseOutcome,
    PhaseStatus,
    json_size,
)
from app.temporal.references import (
    MAX_PARAMS_BYTES,
    ParamsTooLarge,
    UnresolvedReference,
    references_in,
    resolve,
)


class CannotStart(Exception):
    """A phase's params cannot be given to its agent: the phase fails without running."""


class PhaseParams:
    def __init__(self, request: CrisisRequest, state: CrisisState, board: PhaseBoard) -> None:
        self._request = request
        self._state = state
        self._board = board

    def prepare(self, phase: MissionPhase, outcome: PhaseOutcome) -> tuple[MissionPhase, PhaseOutcome]:
        """``phase`` as its agent gets it, and ``outcome`` with the params it got (even those the
        crisis does not carry: for its record entry). Raises ``CannotStart``.
        """
        try:
            resolved = self.resolved(phase, limit=MAX_PARAMS_BYTES)
        except UnresolvedReference as err:
            raise CannotStart(f"phase {phase.phase_id!r} cannot start: {err}") from None
        except ParamsTooLarge as err:
            raise CannotStart(
                f"phase {phase.phase_id!r} cannot start: its params come to {err.size} bytes once their "
                f"references are resolved, more than the {MAX_PARAMS_BYTES} a phase's agent may get"
            ) from None
        if resolved is phase:
            return phase, outcome
        size = json_size(resolved.params)
        kept = self._params_ref(phase, size)
        return resolved, outcome.model_copy(update={"params": resolved.params, "params_ref": kept})

    def resolved(self, phase: MissionPhase, *, limit: int | None = None) -> MissionPhase:
        """``phase`` with the references (and escapes) in its params resolved (itself when that
        changes nothing); ``ParamsTooLarge``, before anything is built, if they would come to more
        than ``limit`` bytes.
        """
        phases = self._board.phases
        outputs = {p.phase_id: p.output for p in phases if p.status == PhaseStatus.COMPLETED and not p.output_ref}
        try:
            params = resolve(phase.params, outputs, self._request.inputs, limit=limit)
        except UnresolvedReference as err:
            kept = [p.phase_id for p in phases if p.output_ref is not None]
            held = next((phase_id for phase_id in kept if f"phases.{phase_id}.output" in str(err)), None)
            if held is not None:
                raise UnresolvedReference(
                    f"the output of phase {held!r} is kept in the crisis record only (past the output budget), "
                    "where references cannot read it"
                ) from None
            raise
        return phase if params == phase.params else phase.model_copy(update={"params": params})

    def context_of(self, phase: MissionPhase) -> dict[str, Any]:
        """The outputs of the phases ``phase`` depends on or its params refer to (the ``context``
        of its agent's mission document).
        """
        wanted = set(phase.depends_on or ()) | {r.phase_id for r in references_in(phase.params) if r.phase_id}
        return {
            p.phase_id: p.output
            for p in self._board.phases
            if p.phase_id in wanted and p.status == PhaseStatus.COMPLETED and p.output_ref is None
        }

    def inline_output_bytes(self) -> int:
        """The largest output an agent may report inline now; a larger one is kept in the record only."""
        return max(0, min(MAX_OUTPUT_BYTES, OUTPUT_BUDGET_BYTES - self._state.carried_bytes))

    def carry_output(self, size: int) -> None:
        """Count an output of ``size`` bytes the crisis carries against its budget."""
        self._state.carried_bytes += size

    def _params_ref(self, phase: MissionPhase, size: int) -> OutputRef | None:
        """Count ``size`` bytes of resolved params against the budget while it has room; past it,
        where the params are kept instead (the crisis record only).
        """
        if self._state.carried_bytes + size <= OUTPUT_BUDGET_BYTES:
            self._state.carried_bytes += size
            return None
        return OutputRef(crisis_id=self._request.crisis_id, phase_id=phase.phase_id, size_bytes=size)
