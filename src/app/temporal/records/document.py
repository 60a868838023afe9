"""The crisis record document, the same in every store, and the rules that keep stale writers out.

A record is a JSON object: the crisis's header fields (``crisis_id``, ``target``, ``status``,
``started_at``, ``completed_at``, ``initiated_by``, ``namespace``, ``workflow_id``, ``run_id``,
``first_run_id``, ...), its ``phases`` and ``compensations`` (entries keyed by ``phase_id``) and
their ``summary``. Stores differ in how they keep it; these functions decide what it holds, so
every store writes the same document and refuses the same writers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from app.temporal.errors import CrisisRecordError
from app.temporal.models import (
    CancelNote,
    CrisisCompletion,
    CrisisSnapshot,
    CrisisStatus,
    CrisisSummary,
    ModelUsage,
    PhaseOutcome,
    PhaseStatus,
)
from app.temporal.plan import FINISHED

logger = logging.getLogger("liara.records")

#: The two lists of entries a record keeps, and the kinds of entry a phase write names.
PHASES, COMPENSATIONS = "phases", "compensations"
#: While a crisis runs: the phase whose activity must leave the final write to the workflow
#: (phases were added, or a cancel came, while it ran). The final write removes it.
FINAL_WRITE_HELD = "final_write_held"


def format_timestamp(moment: datetime) -> str:
    """``2026-01-16T10:30:00.000Z``: UTC with milliseconds, as in the records."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class CrisisRun:
    """The workflow run a record write comes from (an activity knows it from its own info)."""

    namespace: str | None
    workflow_id: str
    run_id: str


def phase_entry(outcome: PhaseOutcome) -> dict[str, Any]:
    entry = {
        "phase_id": outcome.phase_id,
        "status": outcome.status.value,
        "timestamp": format_timestamp(outcome.timestamp) if outcome.timestamp else None,
        "agent_id": outcome.agent_id,
        "action": outcome.action,
        "attempts": outcome.attempts,
        "error": outcome.error,
        "output": outcome.output,
        "approved_by": outcome.approved_by,
    }
    if outcome.depends_on is not None:
        entry["depends_on"] = outcome.depends_on
    if outcome.params is not None:
        entry["params"] = outcome.params  # as resolved for the agent
    if outcome.requires_approval or outcome.decisions:  # (the decisions on an agent's gated tool calls too)
        entry["approvals_required"] = outcome.approvals_required
        entry["approvals"] = outcome.approvals
        entry["decisions"] = [
            {
                "decided_by": decision.decided_by,
                "approved": decision.approved,
                "reason": decision.reason,
                "decided_at": format_timestamp(decision.decided_at),
                **({"role": decision.role} if decision.role is not None else {}),
                **({"tool": decision.tool, "tool_call_id": decision.tool_call_id} if decision.tool else {}),
                **{
                    name: value
                    for name, value in (
                        ("arguments", decision.arguments),
                        ("extend_tokens", decision.extend_tokens),
                        ("extend_cost", decision.extend_cost),
                    )
                    if value is not None
                },
            }
            for decision in outcome.decisions
        ]
    if outcome.usage is not None:
        entry["usage"] = outcome.usage.model_dump()
    if outcome.transcript is not None:
        entry["transcript"] = outcome.transcript
    if outcome.reused_from is not None:  # a rerun took it as completed: no agent ran for it here
        entry["reused_from"] = outcome.reused_from
    return entry


def merged_entry(outcome: PhaseOutcome, existing: dict[str, Any] | None) -> dict[str, Any]:
    """The entry of ``outcome``; an output or params kept in the record only (``output_ref``,
    ``params_ref``) and an agent's transcript stay as they are.
    """
    entry = phase_entry(outcome)
    if outcome.output_ref is not None and existing is not None:
        entry["output"] = existing.get("output")
    if outcome.params_ref is not None and existing is not None and "params" in existing:
        entry["params"] = existing["params"]
    if outcome.transcript is None and existing is not None and existing.get("transcript") is not None:
        entry["transcript"] = existing["transcript"]  # the crisis does not carry it; the record keeps it
    return entry


def merged_entries(outcomes: list[PhaseOutcome], existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {entry.get("phase_id"): entry for entry in existing}
    return [merged_entry(outcome, by_id.get(outcome.phase_id)) for outcome in outcomes]


def put_entry(entries: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    """Replace the entry with ``entry``'s phase id, or append it."""
    for index, existing in enumerate(entries):
        if existing.get("phase_id") == entry["phase_id"]:
            entries[index] = entry
            return
    entries.append(entry)


def upsert_outcome(record: dict[str, Any], kind: str, outcome: PhaseOutcome) -> dict[str, Any]:
    """Put ``outcome`` into the record's ``kind`` list and refresh the summary; the entry written."""
    entries = record.setdefault(kind, [])
    existing = next((e for e in entries if e.get("phase_id") == outcome.phase_id), None)
    entry = merged_entry(outcome, existing)
    put_entry(entries, entry)
    refresh_summary(record)
    return entry


@dataclass(frozen=True)
class PhaseEnd:
    """How a phase's entry says the phase ended: what a late completion is checked against."""

    status: str
    attempts: int | None
    timestamp: str  # as the record has it


def phase_end(entry: dict[str, Any] | None) -> PhaseEnd | None:
    """How ``entry`` says its phase ended; None while it has not (or without an entry)."""
    if entry is None or entry.get("status") not in FINISHED or not entry.get("timestamp"):
        return None
    return PhaseEnd(entry["status"], entry.get("attempts"), entry["timestamp"])


def overtaken(end: PhaseEnd | None, outcome: PhaseOutcome, attempt_started: datetime) -> bool:
    """Whether ``outcome``, the completion an agent's attempt reports, comes after its phase ended
    without it. The attempt started at ``attempt_started`` (Temporal's clock); ``end`` is how the
    phase's entry says it ended. The phase ended without this attempt if it ended after the attempt
    started, by the completion of a later attempt or as the workflow decided (failed, skipped,
    cancelled): Temporal had given up on this attempt (its worker was cut off or paused past the
    heartbeat timeout) and retried the phase, or ended it. An end from before the attempt started
    is not this run's: a reset replaced the run that wrote it, and runs the phase again.
    """
    if end is None or outcome.status != PhaseStatus.COMPLETED:
        return False
    try:
        ended_at = datetime.fromisoformat(end.timestamp)
    except ValueError:
        return False  # a record edited by hand: the write goes ahead, as it always did
    if ended_at <= attempt_started:
        return False
    return end.status != PhaseStatus.COMPLETED or (end.attempts or 0) > (outcome.attempts or 0)


def summary(phases: Iterable[dict[str, Any]]) -> dict[str, int]:
    return CrisisSummary.of(p["status"] for p in phases).model_dump()


def refresh_summary(record: dict[str, Any]) -> None:
    """The record's ``summary``, and its ``usage``: what its language-model agents spent in all."""
    record["summary"] = summary(record[PHASES])
    entries = [*record[PHASES], *record.get(COMPENSATIONS, [])]
    usage = ModelUsage.total(ModelUsage.model_validate(entry["usage"]) for entry in entries if entry.get("usage"))
    if usage is not None:
        record["usage"] = usage.model_dump()


def header_of(record: dict[str, Any]) -> dict[str, Any]:
    """The record without its entry lists and their summary: what the run guards look at."""
    return {key: value for key, value in record.items() if key not in (PHASES, COMPENSATIONS, "summary")}


def is_record(value: object) -> bool:
    """Whether ``value`` has the shape of a record (what a store refuses to overwrite otherwise)."""
    return isinstance(value, dict) and isinstance(value.get(PHASES), list)


def new_record(crisis: CrisisSnapshot, run: CrisisRun | None) -> dict[str, Any]:
    """A running crisis's record, its phases as given."""
    entries = [phase_entry(p) for p in crisis.phases]
    return {
        "crisis_id": crisis.crisis_id,
        "target": crisis.target,
        "status": "running",
        "started_at": format_timestamp(crisis.started_at),
        "completed_at": None,
        PHASES: entries,
        "summary": summary(entries),
        COMPENSATIONS: [],
        "initiated_by": crisis.initiated_by,
        **{key: value for key, value in (("playbook", crisis.playbook), ("schedule", crisis.schedule)) if value},
        "namespace": run.namespace if run else None,
        "workflow_id": crisis.workflow_id,
        "run_id": run.run_id if run else crisis.run_id,
        "first_run_id": crisis.first_run_id,
        **({"rerun_of": crisis.rerun_of.model_dump()} if crisis.rerun_of else {}),
    }


def finish(record: dict[str, Any], completion: CrisisCompletion) -> None:
    """Give ``record`` its final state: every phase as the workflow saw it, the status, the end time."""
    record[PHASES] = merged_entries(completion.phases, record[PHASES])
    record[COMPENSATIONS] = merged_entries(completion.compensations, record.get(COMPENSATIONS, []))
    close(record, completion.status, completion.completed_at, completion.cancel_requests)


def finish_with_last(record: dict[str, Any], outcome: PhaseOutcome) -> None:
    """Give ``record`` the final state of a crisis whose phases have all completed, ``outcome``
    the last (the crisis ends when it did): its entries are the activities' own, with that phase's put in.
    """
    assert outcome.timestamp is not None, "a completed phase has its time"
    upsert_outcome(record, PHASES, outcome)
    close(record, CrisisStatus.COMPLETED, outcome.timestamp, [])


def close(record: dict[str, Any], status: CrisisStatus, completed_at: datetime, cancels: list[CancelNote]) -> None:
    refresh_summary(record)
    record.pop(FINAL_WRITE_HELD, None)
    record["status"] = status
    record["completed_at"] = format_timestamp(completed_at)
    record["cancel_requests"] = [
        {
            "requested_at": format_timestamp(note.requested_at),
            "stage": note.stage,
            "obeyed": note.obeyed,
            "reason": note.reason,
        }
        for note in cancels
    ]


class Relation(StrEnum):
    """How a write relates to the record it would change."""

    OWN = "own"
    STALE = "stale"
    TAKEOVER = "takeover"


def relation(header: dict[str, Any], run: CrisisRun | None, where: str) -> Relation:
    """Whether ``run`` owns the record (``header`` holds at least its run fields), is a stale
    writer, or is a newer run of the same workflow taking it over (a reset). A writer from another
    namespace or workflow is refused: two of them sharing a record is a mistake to fix, not to hide.
    """
    if run is None or header.get("run_id") in (None, run.run_id):
        return Relation.OWN
    for field, mine in (("namespace", run.namespace), ("workflow_id", run.workflow_id)):
        theirs = header.get(field)
        if None not in (theirs, mine) and theirs != mine:
            raise CrisisRecordError(
                f"crisis record {where} belongs to {field} {theirs!r}, not {mine!r}: "
                "give each namespace its own record store and each crisis its own id"
            )
    if run.run_id in header.get("superseded_run_ids", []):
        logger.info("Dropped a write of crisis %s from run %s, which a reset replaced", where, run.run_id)
        return Relation.STALE
    return Relation.TAKEOVER


def another_crisis(record: dict[str, Any], crisis: CrisisSnapshot) -> bool:
    """Whether ``record`` is that of another crisis than ``crisis``, a new crisis given the same
    crisis id once Temporal no longer had the earlier one's workflow (its retention ended, or it
    was deleted). A reset run and every run a crisis continues as share the crisis's first run
    (Temporal's ``first_execution_run_id``); a new crisis has its own. A record written before
    records named their first run is the crisis's whose runs it lists (its run and the runs it
    superseded); a snapshot that does not name its first run (a workflow of an earlier release)
    is taken for the same crisis, as it always was.
    """
    first = crisis.first_run_id
    if first is None:
        return False
    known = record.get("first_run_id")
    if known is not None:
        return known != first
    return first not in (record.get("run_id"), *record.get("superseded_run_ids", []))


def take_over(record: dict[str, Any], run: CrisisRun) -> None:
    """Make ``record`` the newer run's: running again, the replaced run listed as superseded (and its
    hold on the final write dropped)."""
    record["superseded_run_ids"] = superseded(record)
    record.update(run_id=run.run_id, status="running", completed_at=None)
    record.pop(FINAL_WRITE_HELD, None)  # the replaced run's hold is not the newer run's


def superseded(record: dict[str, Any]) -> list[str]:
    return [*record.get("superseded_run_ids", []), record["run_id"]]


def add_rerun(record: dict[str, Any], rerun: dict[str, Any]) -> None:
    """List ``rerun`` (``workflow_id``, ``crisis_id``, ``from_phase``, ``started_at``,
    ``initiated_by``) among the record's ``reruns``: the crises started again from one of its
    phases, each of whose records says so in its ``rerun_of``.
    """
    reruns = [known for known in record.get("reruns", []) if known.get("workflow_id") != rerun["workflow_id"]]
    record["reruns"] = [*reruns, rerun]


def headline(record: dict[str, Any], location: str) -> dict[str, Any]:
    """What a list of records shows of one: its header fields, summary and where it is kept."""
    fields = ("crisis_id", "target", "status", "started_at", "completed_at", "initiated_by", "workflow_id")
    return {**{key: record.get(key) for key in fields}, "summary": record.get("summary"), "location": location}
