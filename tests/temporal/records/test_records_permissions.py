"""Crisis records hold mission data: a record directory the store creates is 0700, records and
their journals 0600.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.temporal.models import CrisisCompletion, PhaseStatus
from app.temporal.records import FileRecordStore
from tests.helpers.records import PHASE_IDS, STARTED, create, ended


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


async def test_a_created_record_directory_and_its_records_are_owner_only(tmp_path: Path, umask: int) -> None:
    store = FileRecordStore(tmp_path / "data" / "crises")

    await create(store)

    assert mode(store.directory) == 0o700
    assert mode(store.directory / "crisis-1.json") == 0o600
    assert mode(store.journal_for("crisis-1")) == 0o600
    # No temporary file left; the journal is the running crisis's.
    assert sorted(p.name for p in store.directory.iterdir()) == ["crisis-1.journal", "crisis-1.json"]


async def test_every_rewrite_of_a_record_and_its_journal_are_owner_only(tmp_path: Path, umask: int) -> None:
    store = FileRecordStore(tmp_path / "crises")
    await create(store)
    path = store.directory / "crisis-1.json"
    inode = path.stat().st_ino

    await store.upsert_phase("crisis-1", ended(PHASE_IDS[0], PhaseStatus.COMPLETED, 1))
    assert mode(store.journal_for("crisis-1")) == 0o600
    await store.finalize(
        CrisisCompletion.model_construct(
            crisis_id="crisis-1",
            status="completed",
            completed_at=STARTED,
            phases=[ended(p, PhaseStatus.COMPLETED, 1) for p in PHASE_IDS],
            compensations=[],
        )
    )

    assert path.stat().st_ino != inode  # replaced by a new file, not rewritten in place
    assert mode(path) == 0o600


async def test_a_record_written_by_an_older_version_with_a_wider_mode_becomes_owner_only(
    tmp_path: Path, umask: int
) -> None:
    store = FileRecordStore(tmp_path / "crises")
    await create(store)
    path = store.directory / "crisis-1.json"
    path.chmod(0o644)

    await store.finalize(CrisisCompletion(crisis_id="crisis-1", status="completed", completed_at=STARTED, phases=[]))

    assert mode(path) == 0o600


async def test_an_existing_record_directory_keeps_the_mode_its_owner_chose(tmp_path: Path, umask: int) -> None:
    directory = tmp_path / "shared-crises"
    directory.mkdir()
    directory.chmod(0o750)

    await create(FileRecordStore(directory))

    assert mode(directory) == 0o750
    assert mode(directory / "crisis-1.json") == 0o600
