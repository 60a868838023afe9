"""``/v1/me``: who the token stands for and what its role allows, so a client offers only that."""

from __future__ import annotations

from fastapi import APIRouter

from cognition.liara.service.deps import Caller, permission_names
from cognition.liara.service.problems import problem_responses
from cognition.liara.service.schemas import Me

router = APIRouter(prefix="/v1", tags=["identity"])


@router.get("/me", response_model=Me, responses=problem_responses(401, 503))
async def me(caller: Caller) -> Me:
    """The token's name and role; without a token file, ``local``, an admin."""
    return Me(name=caller.name, role=caller.role, permissions=permission_names(caller.role))
