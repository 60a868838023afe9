"""The crisis record stores: spec fields, idempotent writes, the run guards, in both stores; and
the file store's own promises: atomic replacement, its journal, safe names, its settings.

Tests taking ``any_store`` run once on files and once on PostgreSQL: both keep the same document.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from app.temporal.errors import CrisisIdTakenError, CrisisRecordError
from app.temporal.models import CrisisCompletion, CrisisSnapshot, OutputRef, PhaseOutcome, PhaseStatus
from app.temporal.records import (
    DEFAULT_RECORD_DIR,
    RECORD_DIR_ENV,
    CrisisRun,
    FileRecordStore,
    RecordStore,
    format_timestamp,
)
from app.temporal.records import files as file_store
from app.temporal.records.document import FINAL_WRITE_HELD
from app.temporal.records.store import kept_key
from tests.helpers.records import PHASE_IDS, STARTED, create, ended, pending


@pytest.fixture
def store(tmp_path: Path) -> FileRecordStore:
    return FileRecordStore(tmp_path / "crises")


async def current(store: RecordStore, crisis_id: str = "crisis-1") -> dict[str, Any]:
    record = await store.read(crisis_id)
    assert record is not None
    return record


def on_disk(store: FileRecordStore, crisis_id: str = "crisis-1") -> dict[str, Any]:
    return json.loads((store.directory / f"{crisis_id}.json").read_text(encoding="utf-8"))


def test_format_timestamp_is_utc_with_milliseconds() -> None:
    assert format_timestamp(STARTED) == "2026-01-16T10:30:00.000Z"
    assert format_timestamp(datetime(2026, 1, 16, 11, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1)))) == (
        "2026-01-16T10:30:00.123Z"
    )


async def test_create_writes_the_spec_fields(any_store: RecordStore) -> None:
    returned = await create(any_store)
    record = await current(any_store)
    assert record == returned
    assert list(record) == list(returned), "every store keeps the document's keys in one order"
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


async def test_the_file_store_writes_the_created_record_whole(store: FileRecordStore) -> None:
    returned = await create(store)
    assert on_disk(store) == returned


async def test_create_again_for_the_same_run_keeps_the_record(any_store: RecordStore) -> None:
    await create(any_store)
    await any_store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1, attempts=1))
    before = await current(any_store)

    again = await create(any_store, run_id="run-1")

    assert again == before
    assert await current(any_store) == before
    assert before["phases"][0]["status"] == "completed"


@pytest.mark.parametrize("first_run_id", ["run-1", None], ids=["a reset run", "a run of an earlier release"])
async def test_create_for_another_run_starts_a_fresh_record(any_store: RecordStore, first_run_id: str | None) -> None:
    await create(any_store, first_run_id=first_run_id)
    await any_store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1, attempts=1))

    await create(any_store, run_id="run-2", first_run_id=first_run_id)

    record = await current(any_store)
    assert (record["run_id"], record["first_run_id"], record["superseded_run_ids"]) == (
        "run-2",
        first_run_id,
        ["run-1"],
    )
    assert [p["status"] for p in record["phases"]] == ["pending"] * 4
    assert record["summary"] == {"completed_phases": 0, "failed_phases": 0, "total_phases": 4}


async def test_a_new_crisis_reusing_the_crisis_id_of_a_recorded_one_is_refused_and_the_record_kept(
    any_store: RecordStore,
) -> None:
    """Temporal no longer has the earlier crisis's workflow (its retention ended), so its workflow
    id could be started again: the new crisis has a first run of its own."""
    await create(any_store, first_run_id="run-1")
    await finalize(any_store)
    earlier = await current(any_store)

    with pytest.raises(CrisisIdTakenError) as refused:
        await create(any_store, run_id="run-9", first_run_id="run-9")

    assert str(refused.value) == (
        f"crisis record {any_store.where('crisis-1')} is that of an earlier crisis with this id (started "
        "2026-01-16T10:30:00.000Z, workflow run run-1), which a new crisis never replaces: start it under another "
        "crisis id"
    )
    assert await current(any_store) == earlier


async def test_a_record_from_before_records_named_their_first_run_knows_its_crisis_by_its_runs(
    any_store: RecordStore,
) -> None:
    """A crisis of an earlier release continued as run-2, which took the record over: a reset run
    of the crisis (first run run-1) starts the record afresh, a new crisis with the id does not."""
    await create(any_store)  # its workflow did not name its first run
    continued = CrisisRun(namespace=None, workflow_id="crisis-workflow-crisis-1", run_id="run-2")
    await any_store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1), run=continued)
    await any_store.finalize(
        CrisisCompletion(crisis_id="crisis-1", status="failed", completed_at=STARTED, phases=[]), run=continued
    )
    earlier = await current(any_store)
    assert (earlier["first_run_id"], earlier["run_id"], earlier["superseded_run_ids"]) == (None, "run-2", ["run-1"])

    with pytest.raises(CrisisIdTakenError):
        await create(any_store, run_id="run-9", first_run_id="run-9")
    assert await current(any_store) == earlier

    await create(any_store, run_id="run-3", first_run_id="run-1")
    reset = await current(any_store)
    assert (reset["status"], reset["run_id"], reset["first_run_id"]) == ("running", "run-3", "run-1")
    assert reset["superseded_run_ids"] == ["run-1", "run-2"]


async def test_upserting_a_phase_twice_leaves_one_entry_and_a_correct_summary(any_store: RecordStore) -> None:
    await create(any_store)
    await any_store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1, attempts=1))
    failed = ended("secure-phase-2", PhaseStatus.FAILED, 2, attempts=3, error="perimeter breached")
    await any_store.upsert_phase("crisis-1", failed)
    await any_store.upsert_phase("crisis-1", failed)

    record = await current(any_store)
    assert [p["phase_id"] for p in record["phases"]] == list(PHASE_IDS)
    secure = record["phases"][1]
    assert {k: secure[k] for k in ("status", "timestamp", "attempts", "error")} == {
        "status": "failed",
        "timestamp": "2026-01-16T10:30:02.000Z",
        "attempts": 3,
        "error": "perimeter breached",
    }
    assert record["summary"] == {"completed_phases": 1, "failed_phases": 1, "total_phases": 4}


async def test_upserting_an_unknown_phase_appends_it(any_store: RecordStore) -> None:
    await create(any_store)
    await any_store.upsert_phase("crisis-1", ended("extra-phase-5", PhaseStatus.COMPLETED, 5))
    record = await current(any_store)
    assert [p["phase_id"] for p in record["phases"]] == [*PHASE_IDS, "extra-phase-5"]
    assert record["summary"]["total_phases"] == 5


async def test_compensations_are_upserted_into_their_own_list(any_store: RecordStore) -> None:
    await create(any_store)
    undo = ended("recon-phase-1", PhaseStatus.COMPLETED, 9)
    await any_store.upsert_phase("crisis-1", undo, compensation=True)
    await any_store.upsert_phase("crisis-1", undo, compensation=True)
    record = await current(any_store)
    assert [p["phase_id"] for p in record["compensations"]] == ["recon-phase-1"]
    assert [p["status"] for p in record["phases"]] == ["pending"] * 4


async def test_finalize_sets_the_status_the_end_time_and_every_phase(any_store: RecordStore) -> None:
    await create(any_store)
    phases = [ended(p, PhaseStatus.COMPLETED, i + 1, attempts=1) for i, p in enumerate(PHASE_IDS)]

    returned = await any_store.finalize(
        CrisisCompletion(
            crisis_id="crisis-1", status="completed", completed_at=STARTED + timedelta(seconds=5), phases=phases
        )
    )

    record = await current(any_store)
    assert record == returned
    assert list(record) == list(returned or {})
    assert (record["status"], record["started_at"], record["completed_at"]) == (
        "completed",
        "2026-01-16T10:30:00.000Z",
        "2026-01-16T10:30:05.000Z",
    )
    assert [(p["phase_id"], p["status"], p["timestamp"]) for p in record["phases"]] == [
        (phase_id, "completed", f"2026-01-16T10:30:0{i + 1}.000Z") for i, phase_id in enumerate(PHASE_IDS)
    ]
    assert record["summary"] == {"completed_phases": 4, "failed_phases": 0, "total_phases": 4}


async def finished_but_the_last(store: RecordStore) -> PhaseOutcome:
    """A crisis whose phases but the last have completed (each by its activity): the last one's completion."""
    await create(store)
    for i, phase_id in enumerate(PHASE_IDS[:-1]):
        await store.upsert_phase("crisis-1", ended(phase_id, PhaseStatus.COMPLETED, i + 1, attempts=1))
    return ended(PHASE_IDS[-1], PhaseStatus.COMPLETED, 9, attempts=1)


async def test_the_last_phases_write_gives_the_record_its_final_state(any_store: RecordStore) -> None:
    last = await finished_but_the_last(any_store)

    written = await any_store.finalize_with_last("crisis-1", last, run=RUN_1, attempt_started=STARTED)

    record = await current(any_store)
    assert written == record
    assert (record["status"], record["completed_at"], record["cancel_requests"]) == (
        "completed",
        "2026-01-16T10:30:09.000Z",
        [],
    )
    assert [(p["phase_id"], p["status"]) for p in record["phases"]] == [(p, "completed") for p in PHASE_IDS]
    assert record["summary"] == {"completed_phases": 4, "failed_phases": 0, "total_phases": 4}


async def test_a_held_final_write_is_left_to_the_workflow(any_store: RecordStore) -> None:
    last = await finished_but_the_last(any_store)

    assert await any_store.hold_final_write("crisis-1", last.phase_id, run=RUN_1) is True
    assert await any_store.hold_final_write("crisis-1", last.phase_id, run=RUN_1) is True  # idempotent

    assert await any_store.finalize_with_last("crisis-1", last, run=RUN_1, attempt_started=STARTED) is None
    record = await current(any_store)
    assert (record["status"], record["completed_at"], record[FINAL_WRITE_HELD]) == ("running", None, last.phase_id)
    # The workflow's own final write ends the hold.
    await any_store.finalize(
        CrisisCompletion(crisis_id="crisis-1", status="completed", completed_at=STARTED, phases=[last])
    )
    assert FINAL_WRITE_HELD not in await current(any_store)


async def test_a_hold_for_an_earlier_phase_leaves_a_later_last_phase_to_finalize(any_store: RecordStore) -> None:
    last = await finished_but_the_last(any_store)
    assert await any_store.hold_final_write("crisis-1", PHASE_IDS[-2], run=RUN_1)

    assert await any_store.finalize_with_last("crisis-1", last, run=RUN_1, attempt_started=STARTED) is not None
    record = await current(any_store)
    assert record["status"] == "completed" and FINAL_WRITE_HELD not in record


async def test_a_hold_once_the_record_is_final_is_too_late(any_store: RecordStore) -> None:
    last = await finished_but_the_last(any_store)
    await any_store.finalize_with_last("crisis-1", last, run=RUN_1, attempt_started=STARTED)
    before = await current(any_store)

    assert await any_store.hold_final_write("crisis-1", last.phase_id, run=RUN_1) is False
    assert await current(any_store) == before


async def test_the_last_phases_write_changes_nothing_once_the_record_is_final_or_another_runs(
    any_store: RecordStore,
) -> None:
    last = await finished_but_the_last(any_store)
    await any_store.finalize_with_last("crisis-1", last, run=RUN_1, attempt_started=STARTED)
    final = await current(any_store)
    again = last.model_copy(update={"attempts": 2, "timestamp": STARTED + timedelta(seconds=20)})

    # A second attempt (the first one's report was lost): the workflow writes what it saw.
    assert await any_store.finalize_with_last("crisis-1", again, run=RUN_1, attempt_started=STARTED) is None
    newer = CrisisRun(namespace=None, workflow_id="crisis-workflow-crisis-1", run_id="run-2")
    assert await any_store.finalize_with_last("crisis-1", again, run=newer, attempt_started=STARTED) is None
    assert await current(any_store) == final


async def test_a_newer_run_taking_the_record_over_does_not_inherit_the_replaced_runs_hold(
    any_store: RecordStore,
) -> None:
    last = await finished_but_the_last(any_store)
    assert await any_store.hold_final_write("crisis-1", last.phase_id, run=RUN_1)
    reset = CrisisRun(namespace="default", workflow_id=RUN_1.workflow_id, run_id="run-2")

    await any_store.upsert_phase("crisis-1", ended(PHASE_IDS[0], PhaseStatus.COMPLETED, 1), run=reset)

    record = await current(any_store)
    assert (record["run_id"], record["superseded_run_ids"]) == ("run-2", ["run-1"])
    assert FINAL_WRITE_HELD not in record
    assert await any_store.finalize_with_last("crisis-1", last, run=reset, attempt_started=STARTED) is not None


async def test_a_hold_creates_a_missing_record_from_the_crisis_it_carries(any_store: RecordStore) -> None:
    crisis = crisis_now(pending(PHASE_IDS[0]))

    assert await any_store.hold_final_write("crisis-1", PHASE_IDS[0], crisis=crisis, run=RUN_1)

    record = await current(any_store)
    assert (record["status"], record[FINAL_WRITE_HELD]) == ("running", PHASE_IDS[0])
    with pytest.raises(CrisisRecordError, match="does not exist"):
        await any_store.hold_final_write("crisis-2", PHASE_IDS[0], run=RUN_1)


async def test_list_records_shows_the_newest_first_with_where_each_is(any_store: RecordStore) -> None:
    for crisis_id in ("crisis-1", "crisis-2", "crisis-3"):
        await create(any_store, crisis_id)
    await any_store.finalize(CrisisCompletion(crisis_id="crisis-1", status="failed", completed_at=STARTED, phases=[]))

    rows = await any_store.list_records(2)

    assert [(row["crisis_id"], row["status"]) for row in rows] == [("crisis-1", "failed"), ("crisis-3", "running")]
    assert rows[1]["summary"] == {"completed_phases": 0, "failed_phases": 0, "total_phases": 4}
    assert rows[1]["location"] == any_store.location("crisis-3")


async def test_a_kept_text_is_read_back_by_its_key_and_keeping_it_again_writes_the_same(any_store: RecordStore) -> None:
    key = kept_key("triage", "run-1", "tool-call_1/../x", 1)
    assert key == "triage.run-1.tool-call_1____x.1"  # a file name as well as a row key
    text = "é" + "x" * 100_000

    where = await any_store.keep("crisis-1", key, text)
    again = await any_store.keep("crisis-1", key, text)

    assert where == again and key in where
    assert await any_store.kept("crisis-1", key) == text
    assert await any_store.kept("crisis-1", kept_key("triage", "run-1", "tool-other", 1)) is None
    assert await any_store.kept("crisis-2", key) is None
    assert await any_store.list_records(10) == []  # kept texts are no records


async def test_the_file_store_keeps_texts_beside_the_record_and_refuses_a_key_that_is_no_file_name(
    store: FileRecordStore,
) -> None:
    where = await store.keep("crisis-1", "triage.run-1.answer1.1", "text")
    assert Path(where) == (store.directory / "crisis-1.kept" / "triage.run-1.answer1.1.txt").resolve()
    with pytest.raises(CrisisRecordError, match="is not a key of a kept text"):
        await store.keep("crisis-1", "../elsewhere", "text")


# --- the file store: whole files, a journal while the crisis runs ---------------------------------


async def test_phase_writes_go_to_a_journal_that_the_final_write_folds_in(store: FileRecordStore) -> None:
    await create(store)
    created = on_disk(store)
    await store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1, attempts=1))

    assert on_disk(store) == created, "a phase write leaves the record file as it was"
    journal = store.journal_for("crisis-1")
    (line,) = journal.read_text().splitlines()
    assert json.loads(line)["entry"]["phase_id"] == "recon-phase-1"
    assert (await current(store))["phases"][0]["status"] == "completed"

    final = await store.finalize(
        CrisisCompletion(
            crisis_id="crisis-1",
            status="completed",
            completed_at=STARTED,
            phases=[ended(p, PhaseStatus.COMPLETED, 1) for p in PHASE_IDS],
        )
    )
    assert on_disk(store) == final
    assert not journal.exists()


def count_directory_syncs(store: FileRecordStore, monkeypatch: pytest.MonkeyPatch) -> list[None]:
    synced: list[None] = []
    sync = store._sync_directory
    monkeypatch.setattr(store, "_sync_directory", lambda: (synced.append(None), sync())[1])
    return synced


async def test_the_journal_made_with_the_record_takes_its_first_line_without_another_directory_sync(
    store: FileRecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = count_directory_syncs(store, monkeypatch)
    await create(store)
    assert len(synced) == 1 and store.journal_for("crisis-1").read_bytes() == b""
    await store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))
    await store.upsert_phase("crisis-1", ended("secure-phase-2", PhaseStatus.COMPLETED, 2))
    assert len(synced) == 1, "the record's directory sync made the journal's name durable"


async def test_a_journal_whose_name_this_store_did_not_make_durable_gets_a_directory_sync(
    store: FileRecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(store)
    await create(store, "crisis-2")
    another_worker = FileRecordStore(store.directory)
    synced = count_directory_syncs(another_worker, monkeypatch)
    await another_worker.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))
    assert len(synced) == 1

    synced = count_directory_syncs(store, monkeypatch)
    journal = store.journal_for("crisis-2")
    journal.unlink()
    journal.touch()  # made again since the record's directory sync
    await store.upsert_phase("crisis-2", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))
    assert len(synced) == 1


async def test_a_journal_line_cut_short_by_a_crash_is_ignored_and_trimmed(store: FileRecordStore) -> None:
    await create(store)
    await store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))
    journal = store.journal_for("crisis-1")
    with journal.open("a") as handle:
        handle.write('{"run_id": "run-1", "kind": "phases", "entry": {"phase_id": "secu')  # the crash

    assert [p["status"] for p in (await current(store))["phases"]] == ["completed", "pending", "pending", "pending"]
    await store.upsert_phase("crisis-1", ended("secure-phase-2", PhaseStatus.FAILED, 2, error="x"))

    assert len(journal.read_text().splitlines()) == 2
    assert journal.read_text().endswith("\n")
    assert [p["status"] for p in (await current(store))["phases"]] == ["completed", "failed", "pending", "pending"]


async def test_a_corrupt_journal_is_reported_with_its_path(store: FileRecordStore) -> None:
    await create(store)
    journal = store.journal_for("crisis-1")
    journal.write_text("not json\n")
    with pytest.raises(CrisisRecordError, match=f"crisis journal {journal} is not valid JSON at line 1"):
        await store.read("crisis-1")


async def test_writes_leave_no_temporary_files(store: FileRecordStore) -> None:
    await create(store)
    await create(store, "crisis-2")
    await store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))
    await store.finalize(
        CrisisCompletion(
            crisis_id="crisis-1", status="failed", completed_at=STARTED, phases=[pending(p) for p in PHASE_IDS]
        )
    )
    # crisis-2 runs: its journal, empty, stays from its creation on.
    assert sorted(p.name for p in store.directory.iterdir()) == ["crisis-1.json", "crisis-2.journal", "crisis-2.json"]


async def test_a_temporary_file_left_by_a_writer_that_died_goes_with_the_next_write(store: FileRecordStore) -> None:
    await create(store)
    await create(store, "crisis-1.b")
    # What a worker killed between writing a record's temporary file and renaming it leaves.
    died, others = store.directory / ".crisis-1.tmp", store.directory / ".crisis-1.b.tmp"
    died.write_text('{"half": ')
    others.write_text('{"half": ')
    await store.finalize(CrisisCompletion(crisis_id="crisis-1", status="completed", completed_at=STARTED, phases=[]))
    assert not died.exists()
    assert (await current(store))["status"] == "completed"
    assert others.exists(), "another crisis's temporary file is its writer's, under its lock"


async def test_a_failed_whole_write_keeps_the_previous_record_and_no_temporary_file(
    store: FileRecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(store)
    before = (store.directory / "crisis-1.json").read_bytes()

    def replace_fails(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(file_store.os, "replace", replace_fails)
    with pytest.raises(OSError, match="No space left on device"):
        await store.finalize(
            CrisisCompletion(crisis_id="crisis-1", status="completed", completed_at=STARTED, phases=[])
        )
    monkeypatch.undo()

    assert (store.directory / "crisis-1.json").read_bytes() == before
    assert [p.name for p in store.directory.iterdir()] == ["crisis-1.json"]


async def test_a_failed_phase_write_leaves_no_half_line(
    store: FileRecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(store)
    await store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))
    journal = store.journal_for("crisis-1").read_bytes()
    write = file_store.os.write

    def half_then_full_disk(fd: int, data: bytes) -> int:
        if len(data) > 10:
            return write(fd, bytes(data[:10]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(file_store.os, "write", half_then_full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        await store.upsert_phase("crisis-1", ended("secure-phase-2", PhaseStatus.COMPLETED, 2))
    monkeypatch.undo()

    assert store.journal_for("crisis-1").read_bytes() == journal
    assert [p["status"] for p in (await current(store))["phases"]] == ["completed", "pending", "pending", "pending"]


async def test_a_write_failing_before_the_rename_keeps_the_previous_record(
    store: FileRecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(store)
    before = (store.directory / "crisis-1.json").read_bytes()

    def fsync_fails(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(file_store.os, "fsync", fsync_fails)
    with pytest.raises(OSError, match="Input/output error"):
        await store.finalize(
            CrisisCompletion(crisis_id="crisis-1", status="completed", completed_at=STARTED, phases=[])
        )
    monkeypatch.undo()

    assert (store.directory / "crisis-1.json").read_bytes() == before
    assert [p.name for p in store.directory.iterdir()] == ["crisis-1.json"]


@pytest.mark.parametrize("crisis_id", ["../x", "a/b", "", ".", "..", "a\x00b", "a b", "abc\n", "x" * 129])
async def test_unsafe_crisis_ids_are_refused(store: FileRecordStore, crisis_id: str) -> None:
    with pytest.raises(CrisisRecordError, match="is not a safe file name"):
        store.path_for(crisis_id)
    with pytest.raises(CrisisRecordError):
        await create(store, crisis_id)
    with pytest.raises(CrisisRecordError):
        await store.read(crisis_id)
    assert not store.directory.exists() or list(store.directory.iterdir()) == []


async def test_a_corrupt_record_is_reported_with_its_path(store: FileRecordStore) -> None:
    store.directory.mkdir(parents=True)
    path = store.directory / "crisis-1.json"
    path.write_text('{"crisis_id": "crisis-1", "phases": [', encoding="utf-8")

    with pytest.raises(CrisisRecordError) as caught:
        await store.read("crisis-1")
    assert str(path) in str(caught.value)
    assert "not valid JSON" in str(caught.value)
    with pytest.raises(CrisisRecordError, match="not valid JSON"):
        await store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))


async def test_a_record_corrupted_after_it_was_read_is_noticed(store: FileRecordStore) -> None:
    await create(store)
    await store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))
    (store.directory / "crisis-1.json").write_text("{this is not json")
    with pytest.raises(CrisisRecordError, match="not valid JSON"):
        await store.upsert_phase("crisis-1", ended("secure-phase-2", PhaseStatus.COMPLETED, 2))


@pytest.mark.parametrize("content", ["[]", '{"crisis_id": "crisis-1"}', '{"phases": {}}'])
async def test_json_that_is_not_a_record_is_reported_with_its_path(store: FileRecordStore, content: str) -> None:
    store.directory.mkdir(parents=True)
    path = store.directory / "crisis-1.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CrisisRecordError) as caught:
        await store.read("crisis-1")
    assert f"crisis record {path} is not a crisis record" in str(caught.value)


async def test_a_missing_record_reads_as_none_and_cannot_be_updated(any_store: RecordStore) -> None:
    assert await any_store.read("crisis-1") is None
    with pytest.raises(CrisisRecordError, match="does not exist") as caught:
        await any_store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))
    assert any_store.where("crisis-1") in str(caught.value)


def test_the_file_store_names_records_by_path(store: FileRecordStore) -> None:
    assert store.where("crisis-1") == str(store.directory / "crisis-1.json")
    assert store.location("crisis-1") == str((store.directory / "crisis-1.json").resolve())


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


async def test_a_missing_record_is_rebuilt_from_the_crisis_a_phase_write_carries(store: FileRecordStore) -> None:
    await create(store)
    (store.directory / "crisis-1.json").rename(store.directory / "crisis-1.json.corrupt")  # moved aside
    recon = ended("recon-phase-1", PhaseStatus.COMPLETED, 10)
    secure = ended("secure-phase-2", PhaseStatus.FAILED, 20, error="perimeter breached")
    rest = [pending(p) for p in PHASE_IDS[2:]]

    await store.upsert_phase("crisis-1", secure, crisis=crisis_now(recon, pending("secure-phase-2"), *rest))

    record = on_disk(store)
    assert (record["status"], record["target"], record["run_id"]) == ("running", "target-alpha", "run-1")
    assert [p["status"] for p in record["phases"]] == ["completed", "failed", "pending", "pending"]
    assert record["summary"] == {"completed_phases": 1, "failed_phases": 1, "total_phases": 4}


async def test_a_missing_record_is_rebuilt_by_the_final_write(any_store: RecordStore) -> None:
    phases = [ended(p, PhaseStatus.COMPLETED, 10 * i) for i, p in enumerate(PHASE_IDS, 1)]
    await any_store.finalize(
        CrisisCompletion(
            crisis_id="crisis-1",
            status="completed",
            completed_at=STARTED + timedelta(minutes=5),
            phases=phases,
            crisis=crisis_now(*phases),
        )
    )

    record = await current(any_store)
    assert (record["status"], record["completed_at"]) == ("completed", "2026-01-16T10:35:00.000Z")
    assert (record["started_at"], record["initiated_by"]) == ("2026-01-16T10:30:00.000Z", "user-123")
    assert [p["phase_id"] for p in record["phases"]] == list(PHASE_IDS)


async def test_from_environment_honours_liara_crisis_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(RECORD_DIR_ENV, str(tmp_path / "elsewhere"))
    store = FileRecordStore.from_environment()
    assert store.directory == tmp_path / "elsewhere"
    await create(store)
    assert (tmp_path / "elsewhere" / "crisis-1.json").is_file()


@pytest.mark.parametrize("value", [None, ""])
def test_from_environment_defaults_to_data_crises(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    assert RECORD_DIR_ENV == "LIARA_CRISIS_DIR"
    if value is None:
        monkeypatch.delenv(RECORD_DIR_ENV, raising=False)
    else:
        monkeypatch.setenv(RECORD_DIR_ENV, value)
    assert FileRecordStore.from_environment().directory == DEFAULT_RECORD_DIR == Path("data/crises")


# --- no stale writer changes a record ------------------------------------------------------------

RUN_1 = CrisisRun(namespace="default", workflow_id="crisis-workflow-crisis-1", run_id="run-1")


async def finalize(store: RecordStore, run: CrisisRun = RUN_1, status: str = "completed") -> dict[str, Any] | None:
    phases = [ended(p, PhaseStatus.COMPLETED, 10 * i) for i, p in enumerate(PHASE_IDS, 1)]
    completion = CrisisCompletion(
        crisis_id="crisis-1", status=status, completed_at=STARTED + timedelta(minutes=5), phases=phases
    )
    return await store.finalize(completion, run=run)


async def test_a_record_names_its_namespace_and_run(any_store: RecordStore) -> None:
    await any_store.create(crisis_now(*[pending(p) for p in PHASE_IDS]), run=RUN_1)
    await any_store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1), run=RUN_1)
    record = await current(any_store)
    assert (record["namespace"], record["workflow_id"], record["run_id"]) == (
        "default",
        "crisis-workflow-crisis-1",
        "run-1",
    )
    assert record["phases"][0]["status"] == "completed"


async def test_a_late_phase_write_after_the_record_is_final_is_dropped(any_store: RecordStore) -> None:
    await create(any_store)
    await finalize(any_store)
    final = await current(any_store)

    late = ended("recon-phase-1", PhaseStatus.FAILED, 400, error="worker resumed after a pause")
    assert await any_store.upsert_phase("crisis-1", late, run=RUN_1) is None
    assert await any_store.upsert_phase("crisis-1", late, compensation=True, run=RUN_1) is None

    assert await current(any_store) == final


async def test_a_write_from_another_namespace_or_workflow_is_refused(any_store: RecordStore) -> None:
    await any_store.create(crisis_now(*[pending(p) for p in PHASE_IDS]), run=RUN_1)
    before = await current(any_store)
    other_namespace = CrisisRun(namespace="staging", workflow_id=RUN_1.workflow_id, run_id="run-9")
    other_workflow = CrisisRun(namespace="default", workflow_id="someone-elses-workflow", run_id="run-9")
    for run, field in ((other_namespace, "namespace 'default'"), (other_workflow, "workflow_id")):
        with pytest.raises(CrisisRecordError, match=f"belongs to {field}"):
            await any_store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1), run=run)
        with pytest.raises(CrisisRecordError, match="belongs to"):
            await finalize(any_store, run=run)
    assert await current(any_store) == before


async def test_a_reset_run_takes_the_record_over_and_the_replaced_run_can_no_longer_write(
    any_store: RecordStore,
) -> None:
    await any_store.create(crisis_now(*[pending(p) for p in PHASE_IDS]), run=RUN_1)
    await finalize(any_store, status="failed")
    reset = CrisisRun(namespace="default", workflow_id=RUN_1.workflow_id, run_id="run-2")

    await any_store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 500), run=reset)
    taken_over = await current(any_store)
    assert (taken_over["run_id"], taken_over["superseded_run_ids"]) == ("run-2", ["run-1"])
    assert (taken_over["status"], taken_over["completed_at"]) == ("running", None)

    stale = ended("secure-phase-2", PhaseStatus.FAILED, 600, error="from the replaced run")
    assert await any_store.upsert_phase("crisis-1", stale, run=RUN_1) is None
    assert await finalize(any_store, run=RUN_1, status="failed") is None
    assert await current(any_store) == taken_over

    await finalize(any_store, run=reset)
    final = await current(any_store)
    assert (final["status"], final["run_id"]) == ("completed", "run-2")


async def test_an_output_kept_in_the_record_only_survives_the_final_write(any_store: RecordStore) -> None:
    await create(any_store)
    blob = {"report": "x" * 1000}
    await any_store.upsert_phase("crisis-1", ended("recon-phase-1", PhaseStatus.COMPLETED, 1, output=blob), run=RUN_1)
    reference = OutputRef(crisis_id="crisis-1", phase_id="recon-phase-1", size_bytes=1015)
    phases = [ended(p, PhaseStatus.COMPLETED, 10 * i) for i, p in enumerate(PHASE_IDS, 1)]
    phases[0] = phases[0].model_copy(update={"output_ref": reference})
    # A later write of the phase that carries only the reference keeps the output too.
    assert await any_store.upsert_phase("crisis-1", phases[0], run=RUN_1) is not None
    assert (await current(any_store))["phases"][0]["output"] == blob

    await any_store.finalize(
        CrisisCompletion(crisis_id="crisis-1", status="completed", completed_at=STARTED, phases=phases), run=RUN_1
    )

    assert (await current(any_store))["phases"][0]["output"] == blob
