"""``/v1/approvals``: every phase that awaits a decision, across crises (the console's inbox).

The crises are those whose ``CrisisStatus`` is ``awaiting_approval``, the newest
``MAX_INBOX_CRISES`` of them, each looked up within the service's bounds.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from app.temporal.models import PhaseStatus
from cognition.liara.service.config import MAX_INBOX_CRISES
from cognition.liara.service.deps import Agency, Lookups, Viewer
from cognition.liara.service.problems import problem_responses
from cognition.liara.service.schemas import ApprovalInbox

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])


@router.get("", response_model=ApprovalInbox, responses=problem_responses(401, 403, 503))
async def pending_approvals(_viewer: Viewer, agency: Agency, lookups: Lookups) -> dict[str, Any]:
    """Phases awaiting approval, newest crisis first and in plan order within one, each with
    the approvals it has so far; ``more`` says that older crises await approval too.
    """
    page = await agency.list_crises_page(status="awaiting_approval", limit=MAX_INBOX_CRISES)
    rows = page["crises"]
    reports = await asyncio.gather(*(lookups.report(row["workflow_id"]) for row in rows))
    pending = [
        {
            **{key: row[key] for key in ("workflow_id", "target", "initiated_by", "started_at")},
            "phase": phase,
            "approvals": phase["approvals"],
        }
        for row, report in zip(rows, reports, strict=True)
        for phase in (report or {}).get("phases") or []
        if phase["status"] == PhaseStatus.AWAITING_APPROVAL
    ]
    return {"approvals": pending, "more": page["next_cursor"] is not None}
