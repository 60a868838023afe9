"""What the crisis record of a crisis that ended without a result tells of it (Temporal keeps no
result to tell it from): its phases, compensations, cancel requests, what its language-model
agents spent and where the record is.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.temporal.errors import LiaraError
from app.temporal.identity import scheduled_crisis_id
from app.temporal.models import OUTPUT_BUDGET_BYTES, CrisisSummary, ModelUsage, OutputRef, PhaseOutcome, json_size
from app.temporal.records import configured_record_store
from app.temporal.records.document import COMPENSATIONS, PHASES


async def recorded_status(workflow_id: str, namespace: str) -> dict[str, Any]:
    """The crisis's part of ``get_crisis_status``, from the record store configured on this
    machine: nothing if it holds no record of this crisis, a ``record_error`` if the record
    cannot be read.
    """
    # A crisis's id is its workflow id without the prefix (made safe, for a schedule's runs).
    crisis_id = scheduled_crisis_id(workflow_id)
    try:
        async with configured_record_store() as store:
            record = await store.read(crisis_id)
            record_path = store.location(crisis_id)
    except LiaraError as err:
        return {"record_error": str(err)}
    if record is None:
        return {}
    if record.get("workflow_id") != workflow_id or record.get("namespace") not in (None, namespace):
        return {}  # another crisis's record under the same id
    try:
        phases, compensations = _recorded_outcomes(record)
    except ValidationError:
        return {"record_error": f"crisis record {record_path} holds phases no crisis wrote; move it aside"}
    return {
        "crisis_id": crisis_id,
        "target": record.get("target"),
        "phases": phases,
        "summary": CrisisSummary.of(phase["status"] for phase in phases).model_dump(),
        "compensations": compensations,
        "cancel_requests": record.get("cancel_requests", []),
        "usage": _usage([*phases, *compensations]),
        "record_path": record_path,
    }


def _usage(entries: list[dict[str, Any]]) -> dict[str, int] | None:
    """What the agents of these entries spent in all (None if none is an agent's)."""
    usage = ModelUsage.total(ModelUsage.model_validate(entry["usage"]) for entry in entries if entry.get("usage"))
    return usage.model_dump() if usage else None


def _recorded_outcomes(record: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A record's phases and compensations as a crisis tells them: their resolved params and
    outputs within the crisis's budget, in plan order, and each past it named by a reference to
    the record (``params_ref``, ``output_ref``), as the crisis itself names them; an agent's
    usage, not its transcript (which the record alone keeps, as the crisis does not carry it).
    """
    budget = OUTPUT_BUDGET_BYTES
    told: dict[str, list[dict[str, Any]]] = {PHASES: [], COMPENSATIONS: []}
    for kind, entries in told.items():
        for entry in record.get(kind, []):
            outcome = PhaseOutcome.model_validate({**entry, "requires_approval": "approvals_required" in entry})
            kept: dict[str, Any] = {"transcript": None}
            for field, reference in (("params", "params_ref"), ("output", "output_ref")):
                size = 0 if getattr(outcome, field) is None else json_size(getattr(outcome, field))
                if size > budget:
                    kept[field] = None
                    kept[reference] = OutputRef(
                        crisis_id=record["crisis_id"],
                        phase_id=outcome.phase_id,
                        compensation=kind == COMPENSATIONS,
                        size_bytes=size,
                    )
                else:
                    budget -= size
            entries.append(outcome.model_copy(update=kept).model_dump(mode="json"))
    return told[PHASES], told[COMPENSATIONS]
