"""``liara doctor`` against a real dev server: what it finds and what it tells the user to fix."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.doctor import diagnose
from tests.helpers import assert_eventually
from tests.helpers.cli import run_cli
from tests.helpers.processes import WorkerProcess
from tests.helpers.records import tables_with_schema_version

pytestmark = pytest.mark.integration


def doctor(env: dict[str, str], cwd: Path) -> tuple[int, dict[str, dict]]:
    completed = run_cli(env, cwd, "doctor", "--json")
    return completed.returncode, {check["name"]: check for check in json.loads(completed.stdout)}


async def test_every_check_passes_with_a_worker_on_the_queue(liara_env, liara_worker: WorkerProcess, tmp_path):
    code, checks = await asyncio.to_thread(doctor, liara_env, tmp_path)
    assert code == 0, checks
    assert all(check["ok"] for check in checks.values())
    assert set(checks) >= {
        "connection",
        "search attributes",
        "workflow workers",
        "workflow backlog",
        "activity workers",
        "activity backlog",
        "executor configuration",
        "crisis records",
    }


async def test_a_queued_crisis_without_workers_is_a_backlog_with_a_fix(liara_env, dev_server, task_queue, tmp_path):
    async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency:
        workflow_id = await agency.trigger_crisis_response(
            target_member="target-alpha", missions=missions_from_actions("target-alpha", ["recon"])
        )
    try:
        found: dict[str, dict] = {}

        async def backlog_seen() -> bool:
            code, checks = await asyncio.to_thread(doctor, liara_env, tmp_path)
            found.update(checks)
            return code == 1 and not checks["workflow backlog"]["ok"]

        await assert_eventually(backlog_seen, timeout=30, interval=0.5)
        assert not found["workflow workers"]["ok"]
        assert "liara/worker.py" in found["workflow workers"]["fix"]
        assert "1 task(s) waiting" in found["workflow backlog"]["detail"]
    finally:
        await dev_server.client.get_workflow_handle(workflow_id).terminate("test over")


def test_an_unreachable_server_fails_the_connection_check_with_the_way_to_start_it(liara_env, tmp_path):
    env = {**liara_env, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    completed = run_cli(env, tmp_path, "doctor")
    assert completed.returncode == 1
    assert "FAIL connection: Cannot reach the Temporal server at 127.0.0.1:1" in completed.stdout
    assert "python scripts/setup_temporal.py start" in completed.stdout
    assert "Traceback" not in completed.stdout + completed.stderr


def test_a_broken_executor_configuration_is_reported(liara_env, liara_worker: WorkerProcess, tmp_path):
    config = tmp_path / "liara.toml"
    config.write_text("[agents\ndefault = 'simulate'\n")
    code, checks = doctor({**liara_env, "LIARA_CONFIG": str(config)}, tmp_path)
    assert code == 1
    assert not checks["executor configuration"]["ok"]
    assert str(config) in checks["executor configuration"]["detail"]
    assert checks["connection"]["ok"]


def _failed_checks_have_fixes(checks: dict[str, dict]) -> None:
    failed = [check for check in checks.values() if not check["ok"]]
    assert failed, checks
    assert all(check["fix"] for check in failed), failed


def test_a_namespace_that_does_not_exist_fails_with_its_fix(liara_env, tmp_path):
    shown = run_cli(liara_env, tmp_path, "--namespace", "no-such-ns", "doctor")

    assert shown.returncode == 1
    assert "Traceback" not in shown.stdout + shown.stderr
    lines = shown.stdout.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("FAIL connection: "))
    assert "Namespace 'no-such-ns' does not exist" in lines[failed]
    assert lines[failed + 1].startswith("      fix: ") and "TEMPORAL_NAMESPACE" in lines[failed + 1]
    code, checks = doctor({**liara_env, "TEMPORAL_NAMESPACE": "no-such-ns"}, tmp_path)
    assert code == 1
    _failed_checks_have_fixes(checks)
    assert {"executor configuration", "crisis records"} <= set(checks)  # the local checks still run


def test_a_task_queue_the_server_refuses_fails_its_checks_with_a_fix(liara_env, tmp_path):
    # The server answers describe_task_queue with INVALID_ARGUMENT for a reserved queue name.
    code, checks = doctor({**liara_env, "LIARA_TASK_QUEUE": "/_sys/liara"}, tmp_path)

    assert code == 1
    assert checks["connection"]["ok"] and checks["search attributes"]["ok"]
    for name in ("workflow workers", "workflow backlog", "activity workers", "activity backlog"):
        assert not checks[name]["ok"], checks[name]
        assert checks[name]["detail"].startswith("cannot describe task queue '/_sys/liara': "), checks[name]
        assert "--task-queue" in checks[name]["fix"]
    assert checks["executor configuration"]["ok"] and checks["crisis records"]["ok"]
    shown = run_cli({**liara_env, "LIARA_TASK_QUEUE": "/_sys/liara"}, tmp_path, "doctor")
    assert shown.returncode == 1
    assert "Traceback" not in shown.stdout + shown.stderr
    assert any(line.startswith("FAIL workflow workers: cannot describe") for line in shown.stdout.splitlines())


async def test_diagnose_turns_each_server_error_into_a_failed_check(dev_server, task_queue, tmp_path, monkeypatch):
    # A real client connected to the default namespace, asked about one the server does not have:
    # every server call the checks make fails with NOT_FOUND.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIARA_CRISIS_DIR", str(tmp_path / "crises"))
    agency = LiaraTemporalAgency(
        temporal_host=dev_server.address, namespace="no-such-ns", task_queue=task_queue, client=dev_server.client
    )

    checks = {check.name: check for check in await diagnose(agency)}

    assert checks["connection"].ok
    for name in ("search attributes", "workflow workers", "workflow backlog", "activity workers", "activity backlog"):
        assert not checks[name].ok, checks[name]
        assert "no-such-ns" in checks[name].detail, checks[name]
        assert "temporal operator namespace create --namespace no-such-ns" in (checks[name].fix or ""), checks[name]
    assert checks["executor configuration"].ok and checks["crisis records"].ok


def test_the_record_directory_doctor_creates_is_owner_only(liara_env, tmp_path):
    """Doctor checks the directory by creating it as the worker's store would: 0700, whatever the umask."""
    directory = tmp_path / "fresh" / "crises"
    env = {**liara_env, "LIARA_CRISIS_DIR": str(directory), "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    run_cli(env, tmp_path, "doctor", "--json")
    assert directory.is_dir()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


# --- the PostgreSQL record store ----------------------------------------------------------------


def record_store_check(env: dict[str, str], cwd: Path, url: str) -> dict:
    """Doctor's crisis records check with LIARA_RECORD_STORE=url (no server needed for it)."""
    code, checks = doctor({**env, "LIARA_RECORD_STORE": url, "TEMPORAL_ADDRESS": "127.0.0.1:1"}, cwd)
    assert code == 1  # the connection check fails without a server
    return checks["crisis records"]


def test_a_usable_record_database_passes(liara_env, tmp_path, postgres):
    check = record_store_check(liara_env, tmp_path, postgres.url)
    assert check["ok"], check
    where = f"postgresql://{postgres.host}:{postgres.port}/{postgres.database}"
    assert check["detail"] == f"{where} answers; record schema version 2; user 'liara' may write records"
    assert postgres.password not in check["detail"]


@pytest.mark.parametrize("problem", ["down", "wrong password", "no tables", "no permission", "bad url"])
def test_a_record_database_that_cannot_be_used_fails_with_one_sentence_and_a_fix(
    liara_env, tmp_path, postgres, problem
):
    where = f"postgresql://{postgres.host}:{postgres.port}/{postgres.database}"
    if problem == "down":
        url, says = f"postgresql://liara:x@127.0.0.1:1/{postgres.database}", "connection refused"
    elif problem == "wrong password":
        url, says = postgres.url_as(postgres.user, "wrong"), 'password authentication failed for user "liara"'
    elif problem == "no tables":
        postgres.sql("DROP DATABASE IF EXISTS liara_empty")
        postgres.sql("CREATE DATABASE liara_empty OWNER liara")
        url, says = postgres.url.rsplit("/", 1)[0] + "/liara_empty", "has no crisis record tables"
    elif problem == "no permission":
        postgres.sql("DROP ROLE IF EXISTS liara_reader")
        postgres.sql("CREATE ROLE liara_reader LOGIN PASSWORD 'reader'")
        url, says = postgres.url_as("liara_reader", "reader"), "user 'liara_reader' may not read and write"
    else:
        url, says = "mysql://liara@db/records", "LIARA_RECORD_STORE must be a postgresql:// URL"

    check = record_store_check(liara_env, tmp_path, url)

    assert not check["ok"]
    assert says in check["detail"], check
    assert "\n" not in check["detail"] and check["fix"], check
    if problem == "no tables":
        assert check["fix"] == "run `liara setup`"
    if problem == "no permission":
        assert check["detail"].endswith(f"in {where}") and check["fix"].startswith("GRANT SELECT, INSERT")
    assert "wrong" not in check["detail"] and "reader'" not in check["fix"]


@pytest.mark.parametrize(
    ("version", "says", "fix"),
    [
        (1, "has record schema version 1; this release uses 2", "run `liara setup`"),
        (None, "has no record schema version; this release uses 2", "run `liara setup`"),
        (3, "has record schema version 3; this release uses 2", "upgrade Liara on this machine"),
    ],
    ids=["older", "missing", "newer"],
)
async def test_a_record_schema_of_another_release_fails_with_its_fix(liara_env, tmp_path, postgres, version, says, fix):
    database, url = await tables_with_schema_version(postgres, version)

    check = await asyncio.to_thread(record_store_check, liara_env, tmp_path, url)

    assert not check["ok"]
    assert check["detail"] == f"postgresql://{postgres.host}:{postgres.port}/{database} {says}"
    assert check["fix"] == fix


def test_the_record_database_of_liara_toml_is_used_unless_the_environment_names_another(liara_env, tmp_path, postgres):
    config = tmp_path / "liara.toml"
    config.write_text(f'record_store = "{postgres.url}"\n')
    env = {**liara_env, "LIARA_CONFIG": str(config), "TEMPORAL_ADDRESS": "127.0.0.1:1"}

    _, checks = doctor(env, tmp_path)
    where = f"postgresql://{postgres.host}:{postgres.port}/{postgres.database}"
    assert checks["crisis records"]["ok"], checks["crisis records"]
    assert checks["crisis records"]["detail"].startswith(f"{where} answers;")

    down = f"postgresql://liara:x@127.0.0.1:1/{postgres.database}"
    _, checks = doctor({**env, "LIARA_RECORD_STORE": down}, tmp_path)
    assert not checks["crisis records"]["ok"]
    assert checks["crisis records"]["detail"].startswith(f"cannot reach postgresql://127.0.0.1:1/{postgres.database}:")
