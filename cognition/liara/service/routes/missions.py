"""``/v1/missions/from-actions``: the phases of ``liara trigger TARGET ACTION...``, for a client
to start (or show) them without a copy of the rule that makes them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cognition.liara.actions import missions_from_actions
from cognition.liara.service.deps import Viewer
from cognition.liara.service.problems import problem_responses
from cognition.liara.service.schemas import ActionWords, Missions

router = APIRouter(prefix="/v1/missions", tags=["missions"])


@router.post(
    "/from-actions",
    response_model=Missions,
    response_model_exclude_unset=True,
    responses=problem_responses(401, 403, 413, 422, 503),
)
async def from_actions(body: ActionWords, _viewer: Viewer) -> dict[str, Any]:
    """One phase per action word, in order: ``recon`` becomes phase ``recon-phase-1``, agent
    ``recon-agent-001``, action ``reconnaissance``. Nothing is started.
    """
    return {"missions": missions_from_actions(body.target_member, body.actions)}
