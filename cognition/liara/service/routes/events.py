"""``/v1/crises/{workflow_id}/events``: a crisis's changes as Server-Sent Events."""

from __future__ import annotations

from fastapi import APIRouter, Request

from cognition.liara.service.deps import Agency, Viewer
from cognition.liara.service.problems import problem_responses
from cognition.liara.service.schemas import LastEventId, WorkflowId
from cognition.liara.service.streams import EventStreamResponse, EventStreams

router = APIRouter(prefix="/v1/crises", tags=["events"])


@router.get(
    "/{workflow_id}/events",
    status_code=200,
    response_class=EventStreamResponse,
    responses={
        200: {"description": "One event per change, each with an `id:`; ends after `finished`"},
        **problem_responses(401, 403, 404, 422, 429, 503),
    },
)
async def crisis_events(
    workflow_id: WorkflowId, viewer: Viewer, agency: Agency, request: Request, last_event_id: LastEventId = None
) -> EventStreamResponse:
    """Events ``phase`` (a phase's new status), ``approval_required``, ``decision``,
    ``compensation``, ``cancel_requested`` and ``finished`` (the result), each with an ``id:``:
    reconnect with ``Last-Event-ID`` to get exactly the later ones. ``: keep-alive`` comments
    flow while nothing happens; the stream ends after ``finished``.
    """
    streams: EventStreams = request.app.state.streams
    stream = await streams.open(viewer.name, agency.crisis_events(workflow_id, after=last_event_id))
    return EventStreamResponse(stream)
