"""``/healthz`` (the process answers) and ``/readyz`` (it can do its job); no token needed."""

from __future__ import annotations

from fastapi import APIRouter

from cognition.liara.service.deps import Agency
from cognition.liara.service.problems import problem_responses
from cognition.liara.service.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health()


@router.get("/readyz", response_model=Readiness, responses=problem_responses(429, 503))
async def readyz(agency: Agency) -> Readiness:
    """Ready once Temporal answers, the namespace exists and has the crisis search attributes;
    503 saying what is missing otherwise.
    """
    await agency.check_ready()
    return Readiness(address=agency.settings.address, namespace=agency.settings.namespace)
