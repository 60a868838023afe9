"""``Continuation``: a crisis whose history passes its budget continues as a new run, carrying its
request once, its state (``CrisisState``), and as many of its latest events as fit beside them
(``CARRY_LIMIT_BYTES``): nothing of the crisis is lost.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStreamState

from app.temporal.crisis.events import CrisisEvents
from app.temporal.crisis.observability import log_fields
from app.temporal.crisis.state import CrisisState
from app.temporal.models import CARRY_LIMIT_BYTES, CrisisRequest, wire_size


class Continuation:
    def __init__(self, request: CrisisRequest, state: CrisisState, events: CrisisEvents) -> None:
        self._request = request
        self._state = state
        self._events = events
        # Set when what the crisis would carry into a new run is too large: it goes on in this one.
        self._stays_in_run = False

    def over_budget(self) -> bool:
        """The history has passed the crisis's budget (or Temporal suggests a new run)."""
        if self._stays_in_run:
            return False
        info = workflow.info()
        return info.get_current_history_length() >= self._request.history_budget_events or (
            info.is_continue_as_new_suggested()
        )

    async def continue_as_new(self) -> None:
        """Carry everything into a new run (deliveries started and updates finished first).
        Returns, and the crisis goes on in this run, only when its request and state alone would
        not fit.
        """
        runs = self._state.runs + 1
        crisis_id = self._request.crisis_id
        if self._room_for_events() < 0:
            self._stays_in_run = True
            workflow.logger.warning(
                "Crisis %s goes on in run %d past its history budget: its request and state come to more than "
                "the %d bytes a new run can be given",
                crisis_id,
                runs,
                CARRY_LIMIT_BYTES,
                extra=log_fields(crisis_id),
            )
            return
        await self._events.deliveries_started()
        workflow.logger.info(
            "Crisis %s continues as run %d, its history past %d events",
            crisis_id,
            runs + 1,
            self._request.history_budget_events,
            extra=log_fields(crisis_id),
        )

        def arguments(events: WorkflowStreamState) -> list[Any]:
            # Measured again: updates that finished meanwhile may have added phases.
            latest = self._events.latest(events, self._room_for_events())
            return [self._request, self._state.model_copy(update={"runs": runs, "events": latest})]

        await self._events.continue_as_new(arguments)

    def _room_for_events(self) -> int:
        """Bytes left for events in what the crisis carries into a new run (negative: none at all)."""
        state = self._state.model_copy(update={"runs": 0, "events": None})
        return CARRY_LIMIT_BYTES - wire_size(self._request) - wire_size(state)
