"""``CrisisEvents``: every change of a crisis, in order, on its event stream (offset-addressed,
durable, replay-safe: ``liara`` reads it for ``GET .../events``), the text its language-model
agents stream (``agent_output``, from the batches their model calls send: app.temporal.agent_output),
and the webhook deliveries of the events its webhooks hear of.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowStreamState
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from app.temporal.crisis.observability import log_fields
from app.temporal.crisis.state import CrisisState
from app.temporal.identity import delivery_workflow_id
from app.temporal.models import AgentOutputBatch, CrisisEvent, CrisisRequest, EventKind, json_size
from app.temporal.notifications import WebhookDelivery, WebhookDeliveryWorkflow, WebhookEvent

#: The topic of the crisis's event stream.
EVENT_TOPIC = "crisis"


@dataclasses.dataclass
class _StreamedCall:
    """What a model call (a phase's, or its compensation's, turn) has streamed so far."""

    attempt: int
    #: Some of the attempt's text is on the stream (a later attempt must say ``restart``).
    streamed: bool = False


class CrisisEvents:
    def __init__(self, request: CrisisRequest, state: CrisisState) -> None:
        self._request = request
        self._state = state
        # The stream as the run this one continues handed it over (then the state needs it no more).
        self._stream = WorkflowStream(prior_state=state.events)
        state.events = None
        self._topic = self._stream.topic(EVENT_TOPIC, type=CrisisEvent)
        self._deliveries: list[asyncio.Task[None]] = []
        # Per model call (phase id, compensation or not, turn); never carried into a new run:
        # a crisis continues as new only while no phase runs.
        self._calls: dict[tuple[str, bool, int], _StreamedCall] = {}

    def publish(self, kind: EventKind, **details: Any) -> int:
        """Append an event to the crisis's stream; return its id (its place in the stream)."""
        self._topic.publish(CrisisEvent(kind=kind, at=workflow.now(), **details))
        self._state.published_events += 1
        return self._state.published_events - 1

    def agent_output(self, batch: AgentOutputBatch, *, compensation: bool) -> None:
        """Publish a batch of a running model call's text as an ``agent_output`` event. A batch of
        a later attempt than the text streamed so far says ``restart``; one of an earlier attempt
        (still streaming after its retry started) is dropped.
        """
        key = (batch.phase_id, compensation, batch.turn)
        call = self._calls.setdefault(key, _StreamedCall(attempt=batch.attempt))
        if batch.attempt < call.attempt:
            return
        restart = batch.attempt > call.attempt and call.streamed
        if batch.attempt > call.attempt:
            call.attempt, call.streamed = batch.attempt, False
        if not (batch.delta or restart or batch.cut):
            return
        call.streamed = call.streamed or bool(batch.delta)
        self.publish(
            EventKind.AGENT_OUTPUT,
            phase_id=batch.phase_id,
            turn=batch.turn,
            delta=batch.delta,
            restart=restart or None,
            cut=batch.cut or None,
            compensation=compensation or None,
        )

    def notify(self, event: WebhookEvent, event_id: int, data: dict[str, Any]) -> None:
        """Start the delivery of ``event`` to each webhook the crisis names."""
        settings = self._request.notifications
        if settings is None:
            return
        for webhook in settings.webhooks:
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

    async def deliveries_started(self) -> None:
        """Wait until every delivery has started (not ended: a receiver that is down never holds
        the crisis up).
        """
        await asyncio.gather(*self._deliveries)

    def detach_readers(self) -> None:
        """Let readers that wait for more collect the last events before the run ends."""
        self._stream.detach_pollers()

    async def continue_as_new(self, arguments: Callable[[WorkflowStreamState], Sequence[Any]]) -> None:
        """Continue as new with ``arguments(the stream's state)`` once no handler runs."""
        await self._stream.continue_as_new(arguments)

    def latest(self, events: WorkflowStreamState, room: int) -> WorkflowStreamState:
        """``events`` without the oldest ones that leave the rest more than ``room`` bytes; a
        reader that asks for a dropped one gets the stream from the first event kept.
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
            extra=log_fields(self._request.crisis_id),
        )
        self._stream.truncate(events.base_offset + dropped)
        return self._stream.get_state()
