"""What a crisis shows outside Temporal's own history: the fields of its log records and its
``CrisisStatus`` search attribute. Metrics are counted through app.temporal.metrics.
"""

from __future__ import annotations

from temporalio import workflow

from app.temporal.models import CrisisStatus
from app.temporal.visibility import CRISIS_STATUS, CRISIS_TARGET


def log_fields(crisis_id: str, phase_id: str | None = None) -> dict[str, str | None]:
    """Crisis fields of a log record (the SDK adds the workflow id); see app.temporal.logs."""
    return {"crisis_id": crisis_id, "phase_id": phase_id}


def show_status(status: CrisisStatus) -> None:
    """Keep ``CrisisStatus`` current for crises the agency started with search attributes."""
    if workflow.info().typed_search_attributes.get(CRISIS_TARGET) is not None:
        workflow.upsert_search_attributes([CRISIS_STATUS.value_set(status.value)])
