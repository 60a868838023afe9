"""``/v1/crises``: start, list, inspect, wait for, cancel, extend and decide on crises.

Each route is one agency call; who starts, cancels or decides is the caller's token name.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from temporalio.service import RPCError

from app.temporal.identity import crisis_id_for_key, workflow_id_for
from app.temporal.models import CrisisProgress, CrisisResult
from app.temporal.visibility import CRISIS_STATUS
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.errors import CrisisFailedError, CrisisWaitTimeoutError
from cognition.liara.reruns import CrisisStillRunningError
from cognition.liara.service.config import MAX_WAIT_SECONDS
from cognition.liara.service.deps import Agency, Approver, LongPolls, Lookups, Operator, StartLimits, Viewer
from cognition.liara.service.problem_types import ProblemType
from cognition.liara.service.problems import ProblemError, problem_responses
from cognition.liara.service.routes.approvals import with_planned_params
from cognition.liara.service.schemas import (
    AddPhases,
    Approval,
    CancelRequested,
    CrisisListParams,
    CrisisOutcome,
    CrisisPage,
    CrisisReport,
    DecisionTaken,
    IdempotencyKey,
    PhaseBody,
    PhaseId,
    Rejection,
    RerunCrisis,
    RerunStarted,
    StartCrisis,
    StartedCrisis,
    WorkflowId,
)
from cognition.liara.service.tokens import Identity

router = APIRouter(prefix="/v1/crises", tags=["crises"])

#: What any crisis route may answer: no token, a role that does not allow it, bad parameters,
#: Temporal busy for now, Temporal (or the token file) unusable.
_ANY = (401, 403, 422, 429, 503)


def callers_key(caller: Identity, idempotency_key: str | None) -> str | None:
    """An Idempotency-Key as the caller's own: another token's identical key is another crisis."""
    return f"{caller.name}:{idempotency_key}" if idempotency_key else None


def keyed_workflow(caller: Identity, idempotency_key: str | None, crisis_id: str | None) -> str | None:
    """The workflow id a start with this Idempotency-Key (and no crisis id) has, however often it is sent."""
    key = callers_key(caller, idempotency_key)
    return workflow_id_for(crisis_id_for_key(key)) if key and crisis_id is None else None


#: The answer of a start that started a crisis, as the document declares it.
_LOCATION = {"description": "Where the crisis is: /v1/crises/{workflow_id}", "schema": {"type": "string"}}
CREATED = {201: {"description": "The crisis started", "headers": {"Location": _LOCATION}}}


def started_answer(response: Response, started: dict[str, Any]) -> dict[str, Any]:
    """A start's answer: 201 naming the crisis in ``Location``, or 200 for the one a key started."""
    response.headers["Location"] = f"{router.prefix}/{started['workflow_id']}"
    if not started["created"]:
        response.status_code = status.HTTP_200_OK
    return started


def _phases(missions: list[PhaseBody]) -> list[dict[str, Any]]:
    """The phases as the caller gave them (defaults stay the agency's)."""
    return [phase.model_dump(mode="json", exclude_unset=True) for phase in missions]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=StartedCrisis,
    responses={
        **CREATED,
        200: {"model": StartedCrisis, "description": "The crisis an earlier request with this Idempotency-Key started"},
        **problem_responses(*_ANY, 409, 413),
    },
)
async def start_crisis(
    body: StartCrisis,
    operator: Operator,
    agency: Agency,
    quotas: StartLimits,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Start a crisis; ``Location`` names it. The same Idempotency-Key with the same body returns
    the first crisis (200) instead of starting another; with another body it is a 409. A token
    past its quota of running crises or of starts per minute gets a 429 with ``Retry-After``.
    """
    repeat_of = keyed_workflow(operator, idempotency_key, body.crisis_id)
    async with quotas.admit(operator.name, agency, repeat_of) as admission:
        started = await agency.start_crisis(
            body.target_member,
            _phases(body.missions),
            operator.name,
            crisis_id=body.crisis_id,
            idempotency_key=callers_key(operator, idempotency_key),
            **body.model_dump(mode="json", exclude={"target_member", "missions", "crisis_id"}, exclude_none=True),
        )
        admission.started(started)
    return started_answer(response, started)


@router.get("", response_model=CrisisPage, responses=problem_responses(*_ANY))
async def list_crises(
    filters: Annotated[CrisisListParams, Query()], _viewer: Viewer, agency: Agency, lookups: Lookups
) -> dict[str, Any]:
    """Crises, newest first, one page at a time: pass ``next_cursor`` back as ``cursor``. With
    ``progress=true`` each has its ``summary``, looked up within the service's bounds.
    """
    page = await agency.list_crises_page(filters)
    if filters.progress:
        rows = page["crises"]
        summaries = await asyncio.gather(*(lookups.summary(row["workflow_id"], row["status"]) for row in rows))
        page["crises"] = [{**row, "summary": summary} for row, summary in zip(rows, summaries, strict=True)]
    return page


@router.get(
    "/{workflow_id}",
    response_model=CrisisReport,
    response_model_exclude_unset=True,
    responses=problem_responses(*_ANY, 404),
)
async def crisis_status(workflow_id: WorkflowId, _viewer: Viewer, agency: Agency, request: Request) -> dict[str, Any]:
    """Where a crisis stands, without waiting: its state, its ``CrisisStatus`` (as a listing
    reads it) and, while it runs, its phases so far (each awaiting approval with its params as
    planned).
    """
    report, crisis_status = await asyncio.gather(
        agency.get_crisis_status(workflow_id), _crisis_status(agency, workflow_id)
    )
    timeout = request.app.state.settings.lookup_timeout_seconds
    if crisis_status is not None:
        report["crisis_status"] = crisis_status
    if report.get("phases"):
        report["phases"] = await with_planned_params(agency, workflow_id, report["phases"], timeout)
    return report


async def _crisis_status(agency: LiaraTemporalAgency, workflow_id: str) -> str | None:
    """The crisis's ``CrisisStatus`` search attribute, or None if it has none or Temporal cannot say now."""
    client = await agency.connect()
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return None
    return description.typed_search_attributes.get(CRISIS_STATUS)


@router.get(
    "/{workflow_id}/result",
    response_model=CrisisOutcome,
    responses={
        202: {"model": CrisisOutcome, "description": "The crisis still runs"},
        **problem_responses(*_ANY, 404),
    },
)
async def crisis_result(
    workflow_id: WorkflowId,
    viewer: Viewer,
    agency: Agency,
    long_polls: LongPolls,
    response: Response,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the end")] = 0,
) -> CrisisOutcome:
    """The crisis's result (200), waiting up to ``wait`` seconds for it; 202 while it still runs.
    A token may have 20 such waits at once (429 past that).
    """
    if wait:
        with long_polls.held(viewer.name):
            try:
                result = await agency.wait_for_crisis_completion(workflow_id, timeout=wait)
            except CrisisFailedError as err:
                return CrisisOutcome(workflow_id=workflow_id, status=err.status, error=str(err))
            except CrisisWaitTimeoutError:
                pass  # still running: answer as without waiting
            else:
                return CrisisOutcome(
                    workflow_id=workflow_id, status="completed", result=CrisisResult.model_validate(result)
                )
    report = await agency.get_crisis_status(workflow_id)
    if report["status"] == "running":
        response.status_code = status.HTTP_202_ACCEPTED
    return CrisisOutcome(
        workflow_id=workflow_id, status=report["status"], result=report.get("result"), error=report.get("error")
    )


@router.post(
    "/{workflow_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CancelRequested,
    responses=problem_responses(*_ANY, 404, 409),
)
async def cancel_crisis(workflow_id: WorkflowId, operator: Operator, agency: Agency) -> CancelRequested:
    """Ask a running crisis to stop (its running phase stops, completed ones are compensated)."""
    await agency.cancel_crisis(workflow_id, cancelled_by=operator.name)
    return CancelRequested(workflow_id=workflow_id, cancelled_by=operator.name)


@router.post(
    "/{workflow_id}/phases",
    response_model=CrisisProgress,
    responses=problem_responses(*_ANY, 404, 409, 413, 504),
)
async def add_phases(workflow_id: WorkflowId, body: AddPhases, _operator: Operator, agency: Agency) -> dict[str, Any]:
    """Append phases to a running crisis; answers its progress. Refused once its phases are over."""
    return await agency.add_phases(workflow_id, _phases(body.missions))


@router.post(
    "/{workflow_id}/phases/{phase_id}/approve",
    response_model=DecisionTaken,
    responses=problem_responses(*_ANY, 404, 409, 504),
)
async def approve_phase(
    workflow_id: WorkflowId, phase_id: PhaseId, approver: Approver, agency: Agency, body: Approval | None = None
) -> dict[str, Any]:
    """Approve a phase that awaits approval; a phase with a quorum runs once enough approvers have.
    When its agent waits for approval of a tool call, this approves that call (with ``arguments``,
    if given, instead of the model's).
    """
    given = body or Approval()
    return await agency.decide(
        workflow_id,
        phase_id,
        approved=True,
        decided_by=approver.name,
        role=approver.role,
        arguments=given.arguments,
        extend_tokens=given.extend_tokens,
        extend_cost=given.extend_cost,
    )


@router.post(
    "/{workflow_id}/phases/{phase_id}/reject",
    response_model=DecisionTaken,
    responses=problem_responses(*_ANY, 404, 409, 413, 504),
)
async def reject_phase(
    workflow_id: WorkflowId, phase_id: PhaseId, approver: Approver, agency: Agency, body: Rejection | None = None
) -> dict[str, Any]:
    """Fail a phase that awaits approval without running it."""
    reason = body.reason if body else None
    return await agency.decide(
        workflow_id, phase_id, approved=False, decided_by=approver.name, reason=reason, role=approver.role
    )


#: A rerun asked of a crisis that still runs.
CRISIS_RUNNING = ProblemType("crisis-running", 409, "Crisis still running")


@router.post(
    "/{workflow_id}/rerun",
    status_code=status.HTTP_201_CREATED,
    response_model=RerunStarted,
    responses={
        201: {"description": "The rerun started", "headers": {"Location": _LOCATION}},
        **problem_responses(*_ANY, 404, 409, 413),
    },
)
async def rerun_crisis(
    workflow_id: WorkflowId,
    body: RerunCrisis,
    operator: Operator,
    agency: Agency,
    quotas: StartLimits,
    response: Response,
) -> dict[str, Any]:
    """Start a crisis that has ended again from one of its phases, with its request (changed by
    ``overrides``); ``Location`` names the rerun. The phases before ``from_phase`` keep their
    recorded outputs and run no agent. A 409 while the crisis still runs, a 422 for a phase it
    does not have or an override that cannot apply; it counts against the token's start quotas.
    """
    async with quotas.admit(operator.name, agency) as admission:
        try:
            started = await agency.rerun_crisis(
                workflow_id,
                body.from_phase,
                overrides=body.overrides,
                initiated_by=operator.name,
                crisis_id=body.crisis_id,
            )
        except CrisisStillRunningError as err:
            raise ProblemError(CRISIS_RUNNING, str(err)) from None
        admission.started(started)
    return started_answer(response, started)
