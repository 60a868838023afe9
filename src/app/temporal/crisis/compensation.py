"""``Compensation``: once a crisis is aborted or cancelled, its completed phases that declare a
``compensate_action`` are undone, last completed first, each recorded as a compensation.

A compensation gets the params its phase ran with (its references resolve again, to the same
values: the outputs and inputs they read are as they were).
"""

from __future__ import annotations

from temporalio.exceptions import ActivityError

from app.temporal import metrics
from app.temporal.crisis.bookkeeping import CrisisBookkeeping
from app.temporal.crisis.events import CrisisEvents
from app.temporal.crisis.observability import show_status
from app.temporal.crisis.params import PhaseParams
from app.temporal.crisis.phases import PhaseBoard, as_carried, pending
from app.temporal.crisis.running import PhaseRunner
from app.temporal.crisis.state import CrisisState
from app.temporal.models import CrisisStatus, EventKind


class Compensation:
    def __init__(
        self,
        state: CrisisState,
        board: PhaseBoard,
        params: PhaseParams,
        runner: PhaseRunner,
        events: CrisisEvents,
        records: CrisisBookkeeping,
    ) -> None:
        self._state = state
        self._board = board
        self._params = params
        self._runner = runner
        self._events = events
        self._records = records
        #: The phase being compensated now, if any.
        self.current: str | None = None

    async def compensate(self) -> None:
        """Undo completed phases that declare a compensation, last first; record each one."""
        show_status(CrisisStatus.COMPENSATING)
        by_id = {phase.phase_id: phase for phase in self._board.plan}
        for phase in (by_id[phase_id] for phase_id in reversed(self._state.completed_order)):
            if not phase.compensate_action:
                continue
            ran = self._params.resolved(phase)
            undo = ran.model_copy(update={"action": phase.compensate_action, "requires_approval": False})
            self.current = phase.phase_id
            try:
                outcome, recorded = await self._runner.perform(
                    undo, pending(undo), context={}, compensation=True, record=True
                )
            except ActivityError as err:
                outcome, recorded = self._runner.failure(undo, pending(undo), err), False
            self._state.compensations.append(as_carried(outcome))  # an agent's transcript: its entry's only
            self._events.publish(
                EventKind.COMPENSATION, phase_id=outcome.phase_id, status=outcome.status, error=outcome.error
            )
            metrics.count_phase(outcome.action, outcome.status, compensation=True)
            if not recorded:
                await self._records.log_phase(outcome, compensation=True)
        self.current = None
