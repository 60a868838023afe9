"""``/v1/playbooks``: the playbooks of the service's playbooks directory, and starting one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from app.temporal.errors import InvalidCrisisRequestError
from cognition.liara import playbooks
from cognition.liara.service.deps import Agency, Operator, StartLimits, Viewer
from cognition.liara.service.problems import problem_responses
from cognition.liara.service.routes.crises import CREATED, callers_key, keyed_workflow, started_answer
from cognition.liara.service.schemas import IdempotencyKey, PlaybookInfo, PlaybookName, StartedCrisis, StartPlaybook

router = APIRouter(prefix="/v1/playbooks", tags=["playbooks"])
_ANY = (401, 403, 422, 429, 503)


def _info(playbook: playbooks.Playbook) -> dict[str, Any]:
    return {
        "name": playbook.name,
        "description": playbook.description,
        "inputs": {name: spec.model_dump(mode="json") for name, spec in playbook.inputs.items()},
        "phases": len(playbook.phases),
        "target_member": playbook.target_member,
    }


@router.get("", response_model=list[PlaybookInfo], responses=problem_responses(*_ANY))
async def list_playbooks(_viewer: Viewer) -> list[dict[str, Any]]:
    """The playbooks this service can start (files that do not load are left out)."""
    found = []
    for path in playbooks.listed():
        try:
            found.append(_info(playbooks.load(path)))
        except InvalidCrisisRequestError:
            continue
    return found


@router.get("/{name}", response_model=PlaybookInfo, responses=problem_responses(*_ANY, 404))
async def show_playbook(name: PlaybookName, _viewer: Viewer) -> dict[str, Any]:
    """One playbook: its description, inputs, number of phases and target."""
    return _info(playbooks.load(playbooks.find(name)))


@router.post(
    "/{name}/crises",
    status_code=status.HTTP_201_CREATED,
    response_model=StartedCrisis,
    responses={**CREATED, 200: {"model": StartedCrisis}, **problem_responses(*_ANY, 404, 409, 413)},
)
async def start_playbook(
    name: PlaybookName,
    body: StartPlaybook,
    operator: Operator,
    agency: Agency,
    quotas: StartLimits,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Start a crisis from playbook ``name`` with ``inputs``; as ``POST /v1/crises`` otherwise
    (its quotas too). The options given win over the playbook's own.
    """
    playbook = playbooks.find(name)
    repeat_of = keyed_workflow(operator, idempotency_key, body.crisis_id)
    async with quotas.admit(operator.name, agency, repeat_of) as admission:
        started = await agency.start_playbook(
            playbook,
            body.inputs,
            operator.name,
            idempotency_key=callers_key(operator, idempotency_key),
            **body.model_dump(mode="json", exclude={"inputs"}, exclude_none=True),
        )
        admission.started(started)
    return started_answer(response, started)
