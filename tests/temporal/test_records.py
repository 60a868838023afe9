"""The crisis record store: spec fields, idempotent writes, atomic replacement, safe names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from app.temporal import records
from app.temporal.errors import CrisisRecordError
from app.temporal.models import CrisisCompletion, CrisisSnapshot, OutputRef, PhaseOutcome, PhaseStatus
from app.temporal.records import DEFAULT_RECORD_DIR, RECORD_DIR_ENV, CrisisRecordStore, CrisisRun, format_timestamp

STARTED = datetime(2026, 1, 16, 10, 30, tzinfo=UTC)
PHASE_IDS = ("recon-phase-1", "secure-phase-2", "extract-phase-3", "cleanup-phase-4")


@pytest.fixture
def store(tmp_path: Path) -> CrisisRecordStore:
    return CrisisRecordStore(tmp_path / "crises")


def pending(phase_id: str) -> PhaseOutcome:
    word = phase_id.split("-")[0]
    return PhaseOutcome(phase_id=phase_id, agent_id=f"{word}-agent-001", action=word)


def ended(phase_id: str, status: PhaseStatus, seconds: float, **extra: Any) -> PhaseOutcome:
    return pending(phase_id).model_copy(
        update={"status": status, "timestamp": STARTED + timedelta(seconds=seconds), **extra}
    )


def create(store: CrisisRecordStore, crisis_id: str = "crisis-1", run_id: str = "run-1") -> dict[str, Any]:
    # Unvalidated on purpose: the store must refuse unsafe ids however the input was built.
    return store.create(
        CrisisSnapshot.model_construct(
            crisis_id=crisis_id,
            workflow_id=f"crisis-workflow-{crisis_id}",
            run_id=run_id,
            target="target-alpha",
            initiated_by="user-123",
            started_at=STARTED,
            phases=[pending(p) for p in PHASE_IDS],
        )
    )


def on_disk(store: CrisisRecordStore, crisis_id: str = "crisis-1") -> dict[str, Any]:
    return json.loads((store.directory / f"{crisis_id}.json").read_text(encoding="utf-8"))


def test_format_timestamp_is_utc_with_milliseconds() -> None:
    assert format_timestamp(STARTED) == "2026-01-16T10:30:00.000Z"
    assert format_timestamp(datetime(2026, 1, 16, 11, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1)))) == (
        "2026-01-16T10:30:00.123Z"
    )


def test_create_writes_the_spec_fields(store: CrisisRecordStore) -> None:
    returned = create(store)
    record = on_disk(store)
    assert record == returned
    spec = {key: record[key] for key in ("crisis_id", "target", "status", "started_at", "completed_at", "summary")}
    assert spec == {
        "crisis_id": "crisis-1",
        "target": "target-alpha",
        "status": "running",
        "started_at": "2026-01-16T10:30:00.000Z",
        "completed_at": None,
        "summary": {"completed_phases": 0, "failed_phases": 0, "total_phases": 4},
    }
    assert [{k: p[k] for k in ("phase_id", "status", "timestamp")} for p in record["phases"]] == [
        {"phase_id": phase_id, "status": "pending", "timestamp": None} for phase_id in PHASE_IDS
    ]
    assert (record["initiated_by"], record["workflow_id"], record["run_id"]) == (
        "user-123",
        "crisis-workflow-crisis-1",
        "run-1",
    )
    assert store.read("crisis-1") == record


def test_create_again_for_the_same_run_keeps_the_record(store: CrisisRecordStore) -> None:
    create(store)
    store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1, attempts=1))
    before = on_disk(store)

    again = create(store, run_id="run-1")

    assert again == before
    assert on_disk(store) == before
    assert before["phases"][0]["status"] == "completed"


def test_create_for_another_run_starts_a_fresh_record(store: CrisisRecordStore) -> None:
    create(store)
    store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1, attempts=1))

    create(store, run_id="run-2")

    record = on_disk(store)
    assert record["run_id"] == "run-2"
    assert [p["status"] for p in record["phases"]] == ["pending"] * 4
    assert record["summary"] == {"completed_phases": 0, "failed_phases": 0, "total_phases": 4}


def test_upserting_a_phase_twice_leaves_one_entry_and_a_correct_summary(store: CrisisRecordStore) -> None:
    create(store)
    store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1, attempts=1))
    failed = ended("secure-phase-2", PhaseStatus.FAILED, 2, attempts=3, error="perimeter breached")
    store.upsert_phase("crisis-1", failed)
    store.upsert_phase("crisis-1", failed)

    record = on_disk(store)
    assert [p["phase_id"] for p in record["phases"]] == list(PHASE_IDS)
    secure = record["phases"][1]
    assert {k: secure[k] for k in ("status", "timestamp", "attempts", "error")} == {
        "status": "failed",
        "timestamp": "2026-01-16T10:30:02.000Z",
        "attempts": 3,
        "error": "perimeter breached",
    }
    assert record["summary"] == {"completed_phases": 1, "failed_phases": 1, "total_phases": 4}


def test_upserting_an_unknown_phase_appends_it(store: CrisisRecordStore) -> None:
    create(store)
    store.upsert_phase("crisis-1", ended("extra-phase-5", PhaseStatus.COMPLETED, 5))
    record = on_disk(store)
    assert [p["phase_id"] for p in record["phases"]] == [*PHASE_IDS, "extra-phase-5"]
    assert record["summary"]["total_phases"] == 5


def test_compensations_are_upserted_into_their_own_list(store: CrisisRecordStore) -> None:
    create(store)
    undo = ended("recon-phase-1", PhaseStatus.COMPLETED, 9)
    store.upsert_phase("crisis-1", undo, compensation=True)
    store.upsert_phase("crisis-1", undo, compensation=True)
    record = on_disk(store)
    assert [p["phase_id"] for p in record["compensations"]] == ["recon-phase-1"]
    assert [p["status"] for p in record["phases"]] == ["pending"] * 4


def test_finalize_sets_the_status_the_end_time_and_every_phase(store: CrisisRecordStore) -> None:
    create(store)
    phases = [ended(p, PhaseStatus.COMPLETED, i + 1, attempts=1) for i, p in enumerate(PHASE_IDS)]

    returned = store.finalize(
        CrisisCompletion(
            crisis_id="crisis-1", status="completed", completed_at=STARTED + timedelta(seconds=5), phases=phases
        )
    )

    record = on_disk(store)
    assert record == returned
    assert (record["status"], record["started_at"], record["completed_at"]) == (
        "completed",
        "2026-01-16T10:30:00.000Z",
        "2026-01-16T10:30:05.000Z",
    )
    assert [(p["phase_id"], p["status"], p["timestamp"]) for p in record["phases"]] == [
        (phase_id, "completed", f"2026-01-16T10:30:0{i + 1}.000Z") for i, phase_id in enumerate(PHASE_IDS)
    ]
    assert record["summary"] == {"completed_phases": 4, "failed_phases": 0, "total_phases": 4}


def test_writes_leave_no_temporary_files(store: CrisisRecordStore) -> None:
    create(store)
    create(store, "crisis-2")
    store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))
    store.finalize(
        CrisisCompletion(
            crisis_id="crisis-1", status="failed", completed_at=STARTED, phases=[pending(p) for p in PHASE_IDS]
        )
    )
    assert sorted(p.name for p in store.directory.iterdir()) == ["crisis-1.json", "crisis-2.json"]


def test_a_failed_write_keeps_the_previous_record_and_no_temporary_file(
    store: CrisisRecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(store)
    before = (store.directory / "crisis-1.json").read_bytes()

    def replace_fails(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(records.os, "replace", replace_fails)
    with pytest.raises(OSError, match="No space left on device"):
        store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))
    monkeypatch.undo()

    assert (store.directory / "crisis-1.json").read_bytes() == before
    assert [p.name for p in store.directory.iterdir()] == ["crisis-1.json"]


def test_a_write_failing_before_the_rename_keeps_the_previous_record(
    store: CrisisRecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(store)
    before = (store.directory / "crisis-1.json").read_bytes()

    def fsync_fails(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(records.os, "fsync", fsync_fails)
    with pytest.raises(OSError, match="Input/output error"):
        store.finalize(CrisisCompletion(crisis_id="crisis-1", status="completed", completed_at=STARTED, phases=[]))
    monkeypatch.undo()

    assert (store.directory / "crisis-1.json").read_bytes() == before
    assert [p.name for p in store.directory.iterdir()] == ["crisis-1.json"]


@pytest.mark.parametrize("crisis_id", ["../x", "a/b", "", ".", "..", "a\x00b", "a b", "abc\n", "x" * 129])
def test_unsafe_crisis_ids_are_refused(store: CrisisRecordStore, crisis_id: str) -> None:
    with pytest.raises(CrisisRecordError, match="is not a safe file name"):
        store.path_for(crisis_id)
    with pytest.raises(CrisisRecordError):
        create(store, crisis_id)
    with pytest.raises(CrisisRecordError):
        store.read(crisis_id)
    assert not store.directory.exists() or list(store.directory.iterdir()) == []


def test_a_corrupt_record_is_reported_with_its_path(store: CrisisRecordStore) -> None:
    store.directory.mkdir(parents=True)
    path = store.directory / "crisis-1.json"
    path.write_text('{"crisis_id": "crisis-1", "phases": [', encoding="utf-8")

    with pytest.raises(CrisisRecordError) as caught:
        store.read("crisis-1")
    assert str(path) in str(caught.value)
    assert "not valid JSON" in str(caught.value)
    with pytest.raises(CrisisRecordError, match="not valid JSON"):
        store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))


@pytest.mark.parametrize("content", ["[]", '{"crisis_id": "crisis-1"}', '{"phases": {}}'])
def test_json_that_is_not_a_record_is_reported_with_its_path(store: CrisisRecordStore, content: str) -> None:
    store.directory.mkdir(parents=True)
    path = store.directory / "crisis-1.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CrisisRecordError) as caught:
        store.read("crisis-1")
    assert f"crisis record {path} is not a crisis record" in str(caught.value)


def test_a_missing_record_reads_as_none_and_cannot_be_updated(store: CrisisRecordStore) -> None:
    assert store.read("crisis-1") is None
    with pytest.raises(CrisisRecordError, match="does not exist") as caught:
        store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))
    assert str(store.directory / "crisis-1.json") in str(caught.value)


def crisis_now(*phases: PhaseOutcome) -> CrisisSnapshot:
    """The crisis as a workflow sees it, phases as given."""
    return CrisisSnapshot(
        crisis_id="crisis-1",
        workflow_id="crisis-workflow-crisis-1",
        run_id="run-1",
        target="target-alpha",
        initiated_by="user-123",
        started_at=STARTED,
        phases=list(phases),
    )


def test_a_missing_record_is_rebuilt_from_the_crisis_a_phase_write_carries(store: CrisisRecordStore) -> None:
    create(store)
    (store.directory / "crisis-1.json").rename(store.directory / "crisis-1.json.corrupt")  # moved aside
    recon = ended("recon-phase-1", PhaseStatus.COMPLETED, 10)
    secure = ended("secure-phase-2", PhaseStatus.FAILED, 20, error="perimeter breached")
    rest = [pending(p) for p in PHASE_IDS[2:]]

    store.upsert_phase("crisis-1", secure, crisis=crisis_now(recon, pending("secure-phase-2"), *rest))

    record = on_disk(store)
    assert (record["status"], record["target"], record["run_id"]) == ("running", "target-alpha", "run-1")
    assert [p["status"] for p in record["phases"]] == ["completed", "failed", "pending", "pending"]
    assert record["summary"] == {"completed_phases": 1, "failed_phases": 1, "total_phases": 4}


def test_a_missing_record_is_rebuilt_by_the_final_write(store: CrisisRecordStore) -> None:
    phases = [ended(p, PhaseStatus.COMPLETED, 10 * i) for i, p in enumerate(PHASE_IDS, 1)]
    store.finalize(
        CrisisCompletion(
            crisis_id="crisis-1",
            status="completed",
            completed_at=STARTED + timedelta(minutes=5),
            phases=phases,
            crisis=crisis_now(*phases),
        )
    )

    record = on_disk(store)
    assert (record["status"], record["completed_at"]) == ("completed", "2026-01-16T10:35:00.000Z")
    assert (record["started_at"], record["initiated_by"]) == ("2026-01-16T10:30:00.000Z", "user-123")
    assert [p["phase_id"] for p in record["phases"]] == list(PHASE_IDS)


def test_from_environment_honours_liara_crisis_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(RECORD_DIR_ENV, str(tmp_path / "elsewhere"))
    store = CrisisRecordStore.from_environment()
    assert store.directory == tmp_path / "elsewhere"
    create(store)
    assert (tmp_path / "elsewhere" / "crisis-1.json").is_file()


@pytest.mark.parametrize("value", [None, ""])
def test_from_environment_defaults_to_data_crises(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    assert RECORD_DIR_ENV == "LIARA_CRISIS_DIR"
    if value is None:
        monkeypatch.delenv(RECORD_DIR_ENV, raising=False)
    else:
        monkeypatch.setenv(RECORD_DIR_ENV, value)
    assert CrisisRecordStore.from_environment().directory == DEFAULT_RECORD_DIR == Path("data/crises")


# --- no stale writer changes a record ------------------------------------------------------------

RUN_1 = CrisisRun(namespace="default", workflow_id="crisis-workflow-crisis-1", run_id="run-1")


def finalize(store: CrisisRecordStore, run: CrisisRun = RUN_1, status: str = "completed") -> dict[str, Any] | None:
    phases = [ended(p, PhaseStatus.COMPLETED, 10 * i) for i, p in enumerate(PHASE_IDS, 1)]
    completion = CrisisCompletion(
        crisis_id="crisis-1", status=status, completed_at=STARTED + timedelta(minutes=5), phases=phases
    )
    return store.finalize(completion, run=run)


def test_a_record_names_its_namespace_and_run(store: CrisisRecordStore) -> None:
    store.create(crisis_now(*[pending(p) for p in PHASE_IDS]), run=RUN_1)
    store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1), run=RUN_1)
    record = on_disk(store)
    assert (record["namespace"], record["workflow_id"], record["run_id"]) == (
        "default",
        "crisis-workflow-crisis-1",
        "run-1",
    )
    assert record["phases"][0]["status"] == "completed"


def test_a_late_phase_write_after_the_record_is_final_is_dropped(store: CrisisRecordStore) -> None:
    create(store)
    finalize(store)
    final = on_disk(store)

    late = ended("recon-phase-1", PhaseStatus.FAILED, 400, error="worker resumed after a pause")
    assert store.upsert_phase("crisis-1", late, run=RUN_1) is None
    assert store.upsert_phase("crisis-1", late, compensation=True, run=RUN_1) is None

    assert on_disk(store) == final


def test_a_write_from_another_namespace_or_workflow_is_refused(store: CrisisRecordStore) -> None:
    store.create(crisis_now(*[pending(p) for p in PHASE_IDS]), run=RUN_1)
    before = on_disk(store)
    other_namespace = CrisisRun(namespace="staging", workflow_id=RUN_1.workflow_id, run_id="run-9")
    other_workflow = CrisisRun(namespace="default", workflow_id="someone-elses-workflow", run_id="run-9")
    for run, field in ((other_namespace, "namespace 'default'"), (other_workflow, "workflow_id")):
        with pytest.raises(CrisisRecordError, match=f"belongs to {field}"):
            store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1), run=run)
        with pytest.raises(CrisisRecordError, match="belongs to"):
            finalize(store, run=run)
    assert on_disk(store) == before


def test_a_reset_run_takes_the_record_over_and_the_replaced_run_can_no_longer_write(store: CrisisRecordStore) -> None:
    store.create(crisis_now(*[pending(p) for p in PHASE_IDS]), run=RUN_1)
    finalize(store, status="failed")
    reset = CrisisRun(namespace="default", workflow_id=RUN_1.workflow_id, run_id="run-2")

    store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 500), run=reset)
    taken_over = on_disk(store)
    assert (taken_over["run_id"], taken_over["superseded_run_ids"]) == ("run-2", ["run-1"])
    assert (taken_over["status"], taken_over["completed_at"]) == ("running", None)

    stale = ended("secure-phase-2", PhaseStatus.FAILED, 600, error="from the replaced run")
    assert store.upsert_phase("crisis-1", stale, run=RUN_1) is None
    assert finalize(store, run=RUN_1, status="failed") is None
    assert on_disk(store) == taken_over

    finalize(store, run=reset)
    assert (on_disk(store)["status"], on_disk(store)["run_id"]) == ("completed", "run-2")


def test_an_output_kept_in_the_record_only_survives_the_final_write(store: CrisisRecordStore) -> None:
    create(store)
    blob = {"report": "x" * 1000}
    store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1, output=blob), run=RUN_1)
    reference = OutputRef(crisis_id="crisis-1", phase_id="recon-phase-1", size_bytes=1015)
    phases = [ended(p, PhaseStatus.COMPLETED, 10 * i) for i, p in enumerate(PHASE_IDS, 1)]
    phases[0] = phases[0].model_copy(update={"output_ref": reference})

    store.finalize(
        CrisisCompletion(crisis_id="crisis-1", status="completed", completed_at=STARTED, phases=phases), run=RUN_1
    )

    assert on_disk(store)["phases"][0]["output"] == blob
