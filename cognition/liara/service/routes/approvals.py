"""``/v1/approvals``: every phase that awaits a decision, across crises (the console's inbox).

The crises are those whose ``CrisisStatus`` is ``awaiting_approval``, the newest
``MAX_INBOX_CRISES`` of them, each looked up within the service's bounds. Each phase comes with
its params as planned (``planned_params``): a phase's params are resolved only once it starts,
after its approval, so that is what an approver can be shown of what will run.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import JsonValue, ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError

from app.temporal.bounded import keep_newest
from app.temporal.crisis.state import CrisisState
from app.temporal.errors import LiaraError
from app.temporal.models import CrisisRequest, MissionPhase, PhaseStatus
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.service.config import MAX_INBOX_CRISES
from cognition.liara.service.deps import Agency, Lookups, Viewer
from cognition.liara.service.problems import problem_responses
from cognition.liara.service.schemas import ApprovalInbox

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])

#: The workflow's update that appends phases (its method's name).
_ADD_PHASES_UPDATE = "add_phases"
#: Planned params kept, by (workflow id, phase id): a phase's plan never changes once accepted.
_PLANS_KEPT = 10_000
_plans: OrderedDict[tuple[str, str], dict[str, JsonValue]] = OrderedDict()
#: Histories read at once for planned params, across the service.
_reads = asyncio.Semaphore(4)


async def planned_params(
    agency: LiaraTemporalAgency, workflow_id: str, phase_ids: Iterable[str], timeout: float
) -> dict[str, dict[str, JsonValue]]:
    """The params of phases ``phase_ids`` as the crisis's plan has them (references unresolved),
    by phase id: from its run's start (its request, and the phases added before a new run) and
    the phases added since. A phase not found within ``timeout`` seconds is left out.
    """
    wanted = set(phase_ids)
    found = {phase_id: _plans[(workflow_id, phase_id)] for phase_id in wanted if (workflow_id, phase_id) in _plans}
    if wanted - found.keys():
        try:
            async with asyncio.timeout(timeout), _reads:
                await _read_plan(agency, workflow_id, wanted - found.keys())
        except (LiaraError, RPCError, ValidationError, TimeoutError):
            pass  # shown without them, as a lookup not told in time
        found.update(
            {phase_id: _plans[(workflow_id, phase_id)] for phase_id in wanted if (workflow_id, phase_id) in _plans}
        )
    return found


async def _read_plan(agency: LiaraTemporalAgency, workflow_id: str, wanted: set[str]) -> None:
    """Reads the crisis's current run's history until every phase of ``wanted`` is planned."""
    client = await agency.connect()
    decode = client.data_converter.decode
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events(page_size=100):
        phases: list[MissionPhase] = []
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = list(event.workflow_execution_started_event_attributes.input.payloads)
            (request,) = await decode(payloads[:1], [CrisisRequest])
            phases.extend(request.missions)
            if len(payloads) > 1:  # a new run: the state it carries holds the phases added before
                (state,) = await decode(payloads[1:2], [CrisisState])
                phases.extend(state.added)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted = event.workflow_execution_update_accepted_event_attributes.accepted_request.input
            if accepted.name == _ADD_PHASES_UPDATE:
                (added,) = await decode(list(accepted.args.payloads), [list[MissionPhase]])
                phases.extend(added)
        for phase in phases:
            keep_newest(_plans, (workflow_id, phase.phase_id), phase.params, _PLANS_KEPT)
            wanted.discard(phase.phase_id)
        if not wanted:
            return


async def with_planned_params(
    agency: LiaraTemporalAgency, workflow_id: str, phases: list[dict[str, Any]], timeout: float
) -> list[dict[str, Any]]:
    """``phases`` with ``planned_params`` added to each that awaits approval."""
    awaiting = [phase["phase_id"] for phase in phases if phase["status"] == PhaseStatus.AWAITING_APPROVAL]
    if not awaiting:
        return phases
    planned = await planned_params(agency, workflow_id, awaiting, timeout)
    return [
        {**phase, "planned_params": planned[phase["phase_id"]]}
        if phase["status"] == PhaseStatus.AWAITING_APPROVAL and phase["phase_id"] in planned
        else phase
        for phase in phases
    ]


@router.get("", response_model=ApprovalInbox, responses=problem_responses(401, 403, 503))
async def pending_approvals(_viewer: Viewer, agency: Agency, lookups: Lookups, request: Request) -> dict[str, Any]:
    """Phases awaiting approval, newest crisis first and in plan order within one, each with
    the approvals it has so far and its params as planned; ``more`` says that older crises
    await approval too.
    """
    page = await agency.list_crises_page(status="awaiting_approval", limit=MAX_INBOX_CRISES)
    rows = page["crises"]
    reports = await asyncio.gather(*(lookups.report(row["workflow_id"]) for row in rows))
    timeout = request.app.state.settings.lookup_timeout_seconds
    phases = await asyncio.gather(
        *(
            with_planned_params(agency, row["workflow_id"], (report or {}).get("phases") or [], timeout)
            for row, report in zip(rows, reports, strict=True)
        )
    )
    pending = [
        {
            **{key: row[key] for key in ("workflow_id", "target", "initiated_by", "started_at")},
            "phase": phase,
            "approvals": phase["approvals"],
        }
        for row, told in zip(rows, phases, strict=True)
        for phase in told
        if phase["status"] == PhaseStatus.AWAITING_APPROVAL
    ]
    return {"approvals": pending, "more": page["next_cursor"] is not None}
