"""Crisis records: a snapshot and phase outcomes to write to a store, what a completed crisis's
record holds, and scratch databases on the session's PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from app.temporal.models import CrisisSnapshot, PhaseOutcome, PhaseStatus
from app.temporal.records import PostgresRecordStore, RecordStore
from scripts.local_postgres import LocalPostgres


def scratch_database(postgres: LocalPostgres) -> tuple[str, str]:
    """A new, empty database on ``postgres`` owned by its record user: its name and URL."""
    name = f"liara_scratch_{uuid.uuid4().hex[:8]}"
    postgres.sql(f"CREATE DATABASE {name} OWNER {postgres.user}")
    return name, postgres.url.rsplit("/", 1)[0] + f"/{name}"


def assert_completed_record(record: dict[str, Any], phase_ids: list[str]) -> None:
    """A completed crisis's record: each of ``phase_ids`` once, in order, completed, and its summary."""
    assert record["status"] == "completed", record
    assert [p["phase_id"] for p in record["phases"]] == phase_ids, "each phase exactly once"
    assert {p["status"] for p in record["phases"]} == {"completed"}
    assert record["summary"] == {
        "completed_phases": len(phase_ids),
        "failed_phases": 0,
        "total_phases": len(phase_ids),
    }


STARTED = datetime(2026, 1, 16, 10, 30, tzinfo=UTC)


PHASE_IDS = ("recon-phase-1", "secure-phase-2", "extract-phase-3", "cleanup-phase-4")


def pending(phase_id: str) -> PhaseOutcome:
    word = phase_id.split("-")[0]
    return PhaseOutcome(phase_id=phase_id, agent_id=f"{word}-agent-001", action=word)


def ended(phase_id: str, status: PhaseStatus, seconds: float, **extra: Any) -> PhaseOutcome:
    return pending(phase_id).model_copy(
        update={"status": status, "timestamp": STARTED + timedelta(seconds=seconds), **extra}
    )


async def create(
    store: RecordStore, crisis_id: str = "crisis-1", run_id: str = "run-1", first_run_id: str | None = None
) -> dict[str, Any]:
    """Create the record of run ``run_id`` of a crisis whose first run is ``first_run_id`` (None:
    a workflow of an earlier release, which does not say).
    """
    # Unvalidated on purpose: the store must refuse unsafe ids however the input was built.
    return await store.create(
        CrisisSnapshot.model_construct(
            crisis_id=crisis_id,
            workflow_id=f"crisis-workflow-{crisis_id}",
            run_id=run_id,
            target="target-alpha",
            initiated_by="user-123",
            started_at=STARTED,
            phases=[pending(p) for p in PHASE_IDS],
            first_run_id=first_run_id,
        )
    )


async def tables_with_schema_version(postgres: LocalPostgres, version: int | None) -> tuple[str, str]:
    """A scratch database with the record tables, its schema version then changed to ``version``
    (None: no version row left), as another release or a hand edit would leave it.
    """
    database, url = scratch_database(postgres)
    async with PostgresRecordStore(url) as store:
        await store.create_schema()
    if version is None:
        postgres.sql("DELETE FROM liara_record_schema", database)
    else:
        postgres.sql(f"UPDATE liara_record_schema SET version = {version}", database)
    return database, url
