"""Crisis records in PostgreSQL end to end: ``liara setup`` creates the tables, workers write there,
``liara record`` and the Python API read them back (from files too), and a database that goes away
mid-crisis pauses the crisis until it is back, losing nothing.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.temporal.models import PhaseStatus
from app.temporal.records import FileRecordStore, PostgresRecordStore
from cognition.liara.crisis_records import CrisisRecordNotFoundError
from scripts.local_postgres import LocalPostgres
from tests.helpers import assert_eventually
from tests.helpers.cli import assert_one_sentence_error, cli, commands_agency, run_cli
from tests.helpers.records import create, ended, scratch_database, tables_with_schema_version

pytestmark = pytest.mark.integration


def missions(target: str, *actions: str, duration: float = 0) -> list[dict[str, Any]]:
    return [
        {
            "phase_id": f"{action}-{index}",
            "agent_id": f"{action}-agent-001",
            "action": action,
            "target": target,
            "priority": index,
            "params": {"duration": duration} if duration else {},
        }
        for index, action in enumerate(actions, 1)
    ]


def test_setup_creates_the_record_tables_once(liara_env, tmp_path, postgres: LocalPostgres):
    database, url = scratch_database(postgres)
    env = {**liara_env, "LIARA_RECORD_STORE": url}
    ready = f"Crisis record tables are ready in postgresql://{postgres.host}:{postgres.port}/{database} "

    for _ in range(2):  # the second run finds them there
        done = run_cli(env, tmp_path, "setup")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == ready + "(record schema version 2)."
    tables = postgres.sql(
        "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'", database
    )
    assert set(tables.split(",")) == {"liara_crisis_phases", "liara_crises", "liara_crisis_kept", "liara_record_schema"}
    checks = json.loads(run_cli(env, tmp_path, "doctor", "--json").stdout)
    assert next(check for check in checks if check["name"] == "crisis records")["ok"]


@pytest.mark.parametrize("version", [0, None], ids=["older", "missing"])
async def test_setup_brings_an_older_record_schema_to_this_releases(liara_env, tmp_path, postgres, version):
    database, url = await tables_with_schema_version(postgres, version)
    env = {**liara_env, "LIARA_RECORD_STORE": url}

    done = await cli(env, tmp_path, "setup")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].endswith("(record schema version 2).")
    assert postgres.sql("SELECT string_agg(version::text, ',') FROM liara_record_schema", database) == "2"
    checks = json.loads((await cli(env, tmp_path, "doctor", "--json")).stdout)
    assert next(check for check in checks if check["name"] == "crisis records")["ok"]


async def test_setup_refuses_a_newer_record_schema_with_one_sentence(liara_env, tmp_path, postgres):
    database, url = await tables_with_schema_version(postgres, 3)

    done = await cli({**liara_env, "LIARA_RECORD_STORE": url}, tmp_path, "setup")

    assert done.returncode == 1
    where = f"postgresql://{postgres.host}:{postgres.port}/{database}"
    assert assert_one_sentence_error(done.stderr) == (
        f"Error: the crisis record database {where} has record schema version 3, newer than this release's 2: "
        "upgrade Liara on this machine."
    )
    assert postgres.sql("SELECT string_agg(version::text, ',') FROM liara_record_schema", database) == "3"


async def test_workers_write_records_to_postgresql_and_liara_record_reads_them(
    liara_env, spawn, tmp_path, postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch
):
    env = {**liara_env, "LIARA_RECORD_STORE": postgres.url}
    worker = await asyncio.to_thread(spawn, "cognition/liara/worker.py", env, tmp_path)
    where = f"postgresql://{postgres.host}:{postgres.port}/{postgres.database}"
    assert f"INFO - Crisis records: {where}" in worker.output
    crisis_id = f"pg-{uuid.uuid4().hex[:8]}"
    async with commands_agency(env) as agency:
        workflow_id = await agency.trigger_crisis_response(
            "target-alpha", missions("target-alpha", "recon", "secure", "extract"), crisis_id=crisis_id
        )
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)
        assert result["record_path"] == f"{where}#{crisis_id}"
        monkeypatch.setenv("LIARA_RECORD_STORE", postgres.url)
        record = await agency.read_record(crisis_id)
        listed = await agency.list_records(limit=5)
        with pytest.raises(CrisisRecordNotFoundError, match="No crisis record 'nope' in postgresql://"):
            await agency.read_record("nope")

    assert (record["status"], record["workflow_id"]) == ("completed", workflow_id)
    assert [(p["phase_id"], p["status"]) for p in record["phases"]] == [
        ("recon-1", "completed"),
        ("secure-2", "completed"),
        ("extract-3", "completed"),
    ]
    assert listed[0]["crisis_id"] == crisis_id and listed[0]["location"] == result["record_path"]
    assert not (tmp_path / "data").exists(), "no record file anywhere"

    shown = await cli(env, tmp_path, "record", "show", crisis_id, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == record
    text = await cli(env, tmp_path, "record", "show", crisis_id)
    assert text.stdout.splitlines()[0] == f"Crisis {crisis_id} on target-alpha: completed"
    assert "3 of 3 phases completed, 0 failed" in text.stdout
    table = await cli(env, tmp_path, "record", "list", "--limit", "3")
    assert table.stdout.splitlines()[1].split()[:4] == [crisis_id, "target-alpha", "completed", "3/3"]
    missing = await cli(env, tmp_path, "record", "show", "nope")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: No crisis record 'nope' in postgresql://")


async def test_liara_record_reads_the_file_store_too(liara_env, tmp_path):
    store = FileRecordStore(Path(liara_env["LIARA_CRISIS_DIR"]))
    await create(store, "crisis-files")
    await store.upsert_phase("crisis-files", ended("recon-phase-1", PhaseStatus.COMPLETED, 1))

    shown = await cli(liara_env, tmp_path, "record", "show", "crisis-files", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == await store.read("crisis-files")
    assert json.loads(shown.stdout)["phases"][0]["status"] == "completed", "the journal is applied"
    listed = await cli(liara_env, tmp_path, "record", "list", "--json")
    assert [row["crisis_id"] for row in json.loads(listed.stdout)] == ["crisis-files"]
    assert json.loads(listed.stdout)[0]["location"] == store.location("crisis-files")


async def test_a_database_stopped_mid_crisis_pauses_it_until_it_is_back_and_nothing_is_lost(
    liara_env, spawn, tmp_path, postgres: LocalPostgres
):
    env = {**liara_env, "LIARA_RECORD_STORE": postgres.url}
    await asyncio.to_thread(spawn, "cognition/liara/worker.py", env, tmp_path)
    crisis_id = f"pg-down-{uuid.uuid4().hex[:8]}"
    phases = missions("target-alpha", "recon", "secure", "extract", "cleanup", duration=0.5)
    down = f"cannot reach the crisis record database postgresql://{postgres.host}:{postgres.port}/"
    async with commands_agency(env) as agency:
        workflow_id = await agency.trigger_crisis_response("target-alpha", phases, crisis_id=crisis_id)

        async def first_phase_done() -> bool:
            status = await agency.get_crisis_status(workflow_id)
            return any(p["status"] == "completed" for p in status.get("phases", []))

        await assert_eventually(first_phase_done, timeout=30)
        await asyncio.to_thread(postgres.stop)
        try:

            async def paused() -> bool:
                return down in (await agency.get_crisis_status(workflow_id)).get("problem", "")

            await assert_eventually(paused, timeout=60, interval=0.5)
            # Side by side: the sooner the database is back, the sooner a retry (its backoff
            # doubling from 1 s) finds it.
            shown, doctor = await asyncio.gather(
                cli(env, tmp_path, "status", workflow_id), cli(env, tmp_path, "doctor")
            )
            (problem,) = [line for line in shown.stdout.splitlines() if line.startswith("Problem: ")]
            assert down in problem and problem.endswith(": connection refused."), problem
            (failed,) = [line for line in doctor.stdout.splitlines() if line.startswith("FAIL crisis records: ")]
            assert failed.endswith(": connection refused"), failed
        finally:
            await asyncio.to_thread(postgres.start)
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=120)

    assert result["success"] is True
    async with PostgresRecordStore(postgres.url) as store:
        record = await store.read(crisis_id)
    assert record is not None and record["status"] == "completed"
    assert [(p["phase_id"], p["status"]) for p in record["phases"]] == [(p["phase_id"], "completed") for p in phases], (
        "every phase once, each completed"
    )
    assert record["summary"] == {"completed_phases": 4, "failed_phases": 0, "total_phases": 4}
