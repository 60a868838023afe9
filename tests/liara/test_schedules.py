"""Schedules on the dev server: they fire, each run is a crisis of its own that records its
schedule, ``liara list --schedule`` finds them, and pause, trigger and delete do what they say.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleSpec
from temporalio.service import RPCError

from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.models import PhaseStatus
from cognition.liara import schedules
from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers import REPO_ROOT, assert_eventually
from tests.helpers.cli import assert_one_sentence_error, cli
from tests.helpers.servers import DevServer
from tests.helpers.workflows import until

pytestmark = pytest.mark.integration


@pytest.fixture
async def schedule_name(dev_server: DevServer):
    name = f"sched-{uuid.uuid4().hex[:8]}"
    yield name
    # Never leave a schedule firing after its test (through the client: `schedule delete` is tested below).
    await delete_if_there(dev_server, name)


async def delete_if_there(dev_server: DevServer, name: str) -> None:
    with contextlib.suppress(RPCError):  # none was created, or the test deleted it
        await dev_server.client.get_schedule_handle(name).delete()


async def listed(env: dict[str, str], cwd: Path, name: str) -> list[dict[str, Any]]:
    """``liara list --schedule NAME --json``."""
    return json.loads((await cli(env, cwd, "list", "--schedule", name, "--json")).stdout)


# Waits poll through the Python API (the function each command calls): a command per poll cost
# a process start each time. What a test asserts, it asserts through the command line.


async def statuses(agency: LiaraTemporalAgency, name: str) -> list[str]:
    """The statuses of the schedule's crises, as ``liara list --schedule NAME`` lists them."""
    return [row["status"] for row in await agency.list_crises(schedule=name)]


async def about(dev_server: DevServer, name: str) -> dict[str, Any]:
    """What ``liara schedule describe NAME --json`` tells."""
    return await schedules.described(dev_server.client, name)


#: Once a year: a schedule that runs only when triggered during a test.
YEARLY = ("--cron", "0 3 1 1 *")


async def create(env: dict[str, str], cwd: Path, name: str, *args: str) -> None:
    created = await cli(env, cwd, "schedule", "create", name, *args)
    assert created.returncode == 0, created.stderr


async def described(env: dict[str, str], cwd: Path, name: str) -> dict[str, Any]:
    shown = await cli(env, cwd, "schedule", "describe", name, "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


async def test_a_schedule_fires_and_each_run_is_a_crisis_of_its_own(
    agency, liara_env, liara_worker, tmp_path, schedule_name
):
    created = await cli(
        liara_env, tmp_path, "schedule", "create", schedule_name, "target-alpha", "recon", "--every", "2"
    )
    assert created.returncode == 0, created.stderr
    assert f"liara list --schedule {schedule_name}" in created.stdout

    async def two_runs_done() -> bool:
        return (await statuses(agency, schedule_name)).count("completed") >= 2

    await assert_eventually(two_runs_done, timeout=60, interval=1)
    paused = await cli(liara_env, tmp_path, "schedule", "pause", schedule_name)
    assert paused.returncode == 0, paused.stderr

    rows = [row for row in await listed(liara_env, tmp_path, schedule_name) if row["status"] == "completed"]
    workflow_ids = [row["workflow_id"] for row in rows]
    assert len(set(workflow_ids)) == len(workflow_ids) >= 2
    records = Path(liara_env["LIARA_CRISIS_DIR"])
    for workflow_id in workflow_ids[:2]:
        status = json.loads((await cli(liara_env, tmp_path, "status", workflow_id, "--json")).stdout)
        crisis_id = status["result"]["crisis_id"]
        assert crisis_id.startswith(f"sched-{schedule_name}-"), crisis_id
        record = json.loads((records / f"{crisis_id}.json").read_text())
        assert (record["schedule"], record["status"]) == (schedule_name, "completed")

    about = await described(liara_env, tmp_path, schedule_name)
    assert (about["paused"], about["overlap"], about["every_seconds"]) == (True, "skip", [2.0])

    async def in_the_list() -> bool:
        schedules = json.loads((await cli(liara_env, tmp_path, "schedule", "list", "--json")).stdout)
        return schedule_name in [row["name"] for row in schedules]

    await assert_eventually(in_the_list, timeout=30, interval=1)


async def test_a_paused_schedule_can_still_be_run_now(
    dev_server, agency, liara_env, liara_worker, tmp_path, schedule_name
):
    playbook = str(REPO_ROOT / "playbooks" / "health-check.toml")
    inputs = ("--input", "site=example.org")
    await create(liara_env, tmp_path, schedule_name, *YEARLY, "--playbook", playbook, *inputs, "--priority", "2")
    assert (await cli(liara_env, tmp_path, "schedule", "pause", schedule_name)).returncode == 0
    assert (await described(liara_env, tmp_path, schedule_name))["paused"] is True
    assert (await cli(liara_env, tmp_path, "schedule", "trigger", schedule_name)).returncode == 0

    async def one_run_done() -> bool:
        return await statuses(agency, schedule_name) == ["completed"]

    await assert_eventually(one_run_done, timeout=60, interval=0.5)
    assert (await described(liara_env, tmp_path, schedule_name))["paused"] is True
    [run] = await listed(liara_env, tmp_path, schedule_name)
    workflow = await dev_server.client.get_workflow_handle(run["workflow_id"]).describe()
    assert workflow.raw_description.workflow_execution_info.priority.priority_key == 2
    deleted = await cli(liara_env, tmp_path, "schedule", "delete", schedule_name)
    assert deleted.returncode == 0
    gone = await cli(liara_env, tmp_path, "schedule", "describe", schedule_name)
    assert gone.returncode == 1
    assert (
        assert_one_sentence_error(gone.stderr)
        == f"Error: No schedule named {schedule_name!r}: see `liara schedule list`."
    )


async def test_an_unpaused_schedule_fires_again(dev_server, liara_env, liara_worker, tmp_path, schedule_name):
    await create(liara_env, tmp_path, schedule_name, "target-alpha", "recon", "--every", "1")
    assert (await cli(liara_env, tmp_path, "schedule", "pause", schedule_name)).returncode == 0
    paused = await described(liara_env, tmp_path, schedule_name)
    assert (paused["paused"], paused["note"]) == (True, "paused with liara")

    unpaused = await cli(liara_env, tmp_path, "schedule", "unpause", schedule_name)
    assert (unpaused.returncode, unpaused.stdout.strip()) == (0, f"Schedule {schedule_name} unpaused.")
    unpaused_then = await described(liara_env, tmp_path, schedule_name)
    assert (unpaused_then["paused"], unpaused_then["note"]) == (False, "unpaused with liara")

    async def fired_since() -> bool:
        return (await about(dev_server, schedule_name))["runs"] > unpaused_then["runs"]

    await assert_eventually(fired_since, timeout=60, interval=0.5)
    assert (await described(liara_env, tmp_path, schedule_name))["runs"] > unpaused_then["runs"]


#: One phase that waits for an approval: its crisis runs until someone decides.
GATED = [
    {
        "phase_id": "gate",
        "agent_id": "gate-agent",
        "action": "recon",
        "target": "target-alpha",
        "requires_approval": True,
    }
]


@pytest.mark.parametrize(("overlap", "runs", "skipped"), [(None, 1, 1), ("buffer-one", 2, 0)])
async def test_a_run_due_while_one_runs_is_skipped_unless_the_overlap_says_otherwise(
    dev_server, agency, liara_env, liara_worker, tmp_path, schedule_name, overlap, runs, skipped
):
    missions = tmp_path / "gated.json"
    missions.write_text(json.dumps(GATED))
    policy = ["--overlap", overlap] if overlap else []
    await create(liara_env, tmp_path, schedule_name, "target-alpha", "--missions-file", str(missions), *YEARLY, *policy)

    async def running() -> list[str]:
        return (await about(dev_server, schedule_name))["running"]

    async def one_running() -> bool:
        return len(await running()) == 1

    try:
        assert (await cli(liara_env, tmp_path, "schedule", "trigger", schedule_name)).returncode == 0
        await assert_eventually(one_running, timeout=60, interval=0.2)
        [first] = await running()
        await until(agency, first, "gate", PhaseStatus.AWAITING_APPROVAL)
        assert (await cli(liara_env, tmp_path, "schedule", "trigger", schedule_name)).returncode == 0
        if skipped:

            async def second_run_skipped() -> bool:
                return (await about(dev_server, schedule_name))["skipped_overlapping"] == 1

            await assert_eventually(second_run_skipped, timeout=60, interval=0.2)
        assert (await cli(liara_env, tmp_path, "approve", first, "gate", "--by", "tester")).returncode == 0

        async def settled() -> bool:
            now = await about(dev_server, schedule_name)
            return now["runs"] == runs and first not in now["running"]

        await assert_eventually(settled, timeout=60, interval=0.2)
        shown = await described(liara_env, tmp_path, schedule_name)
        assert (shown["overlap"], shown["runs"], shown["skipped_overlapping"]) == (overlap or "skip", runs, skipped)
        assert first not in shown["running"]
    finally:
        for workflow_id in await running():
            await agency.cancel_crisis(workflow_id)


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (("target-alpha", "recon"), "Give a schedule either --cron EXPR or --every SECONDS, not both or neither."),
        (("target-alpha", "recon", "--every", "0.5"), "--every takes 1 to"),
        (
            ("target-alpha", "recon", "--cron", "not a cron"),
            "Error: --cron takes five fields (minute hour day-of-month month day-of-week) or a name such as "
            "@daily, not 'not a cron': e.g. '0 3 * * *' is every day at 03:00 UTC.",
        ),
        (
            ("target-alpha", "recon", "--cron", "0 0 3 * * *"),
            "Error: --cron takes five fields (minute hour day-of-month month day-of-week) or a name such as "
            "@daily, not six: Temporal would read the sixth field of '0 0 3 * * *' as the year; with the seconds "
            "first, you probably meant --cron '0 3 * * *'.",
        ),
        (
            ("target-alpha", "recon", "--cron", "0 30 9 ? * MON-FRI 2027"),
            "not seven: with the seconds first and the year last, '0 30 9 ? * MON-FRI 2027' probably means "
            "--cron '30 9 * * MON-FRI'.",
        ),
        (("target-alpha", "recon", "--cron", "@reboot"), "or one of @yearly, @annually, @monthly, @weekly, @daily"),
        (("target-alpha", "recon", "--cron", "@every 5m"), "--cron '@every 5m' is an interval: give --every SECONDS"),
        (("target-alpha", "recon", "--cron", "61 3 * * *"), "Temporal refused schedule"),
    ],
)
async def test_a_schedule_the_user_gets_wrong_is_one_sentence(liara_env, tmp_path, schedule_name, args, sentence):
    refused = await cli(liara_env, tmp_path, "schedule", "create", schedule_name, *args)
    assert refused.returncode == 1
    assert sentence in assert_one_sentence_error(refused.stderr)


async def test_a_schedule_name_leaves_room_for_the_time_in_each_crisis_id(
    dev_server, agency, liara_env, liara_worker, tmp_path
):
    longest = f"long-{uuid.uuid4().hex[:8]}-".ljust(101, "x")
    too_long = longest + "y"
    try:
        refused = await cli(liara_env, tmp_path, "schedule", "create", too_long, "target-alpha", "recon", *YEARLY)
        assert refused.returncode == 1
        assert assert_one_sentence_error(refused.stderr) == (
            "Error: A schedule name has at most 101 characters (each run's crisis id adds the time it was due), "
            "not 102."
        )
        await create(liara_env, tmp_path, longest, "target-alpha", "recon", *YEARLY)
        assert (await cli(liara_env, tmp_path, "schedule", "trigger", longest)).returncode == 0

        async def one_run_done() -> bool:
            return await statuses(agency, longest) == ["completed"]

        await assert_eventually(one_run_done, timeout=60, interval=0.5)
        [run] = await listed(liara_env, tmp_path, longest)
        status = json.loads((await cli(liara_env, tmp_path, "status", run["workflow_id"], "--json")).stdout)
        crisis_id = status["result"]["crisis_id"]
        assert re.fullmatch(rf"sched-{longest}-\d{{4}}-\d\d-\d\dT\d\d-\d\d-\d\dZ", crisis_id), crisis_id
    finally:
        for name in (longest, too_long):
            await delete_if_there(dev_server, name)


@pytest.mark.parametrize("cron", ["0 0 3 * * *", "0 0 3 * * * 2027", "1 2 3 4"])
async def test_the_python_api_refuses_a_cron_expression_of_other_than_five_fields(dev_server, schedule_name, cron):
    with pytest.raises(InvalidCrisisRequestError, match="--cron takes five fields"):
        schedules.spec_of(cron, None)
    with pytest.raises(InvalidCrisisRequestError, match="--cron takes five fields"):
        await schedules.create(
            dev_server.client,
            schedule_name,
            ScheduleSpec(cron_expressions=[cron]),
            task_queue="unused",
            target_member="target-alpha",
            missions=missions_from_actions("target-alpha", ["recon"]),
            initiated_by="tester",
        )
    with pytest.raises(RPCError):  # nothing was created
        await dev_server.client.get_schedule_handle(schedule_name).describe()


@pytest.mark.parametrize(
    "cron", ["0 3 * * *", "@daily", "*/15 9-17 * * MON-FRI", "CRON_TZ=Europe/Paris 30 6 1,15 * * # twice a month"]
)
async def test_describe_shows_the_timetable_as_it_was_given(liara_env, tmp_path, schedule_name, cron):
    await create(liara_env, tmp_path, schedule_name, "target-alpha", "recon", "--cron", cron)
    about = await described(liara_env, tmp_path, schedule_name)
    assert (about["cron"], about["every_seconds"]) == ([cron], [])
    shown = await cli(liara_env, tmp_path, "schedule", "describe", schedule_name)
    assert shown.stdout.startswith(f"Schedule {schedule_name}: cron {cron}; overlap skip; active\n"), shown.stdout


async def test_describe_shows_a_schedule_created_elsewhere_as_cron_text(dev_server, liara_env, tmp_path, schedule_name):
    """A schedule without liara's memo (created before it kept one, or by another client): its
    timetable is the calendar Temporal compiled, written as cron text again.
    """
    action = ScheduleActionStartWorkflow(
        "CrisisResponseWorkflow", id=f"crisis-workflow-sched-{schedule_name}", task_queue="x"
    )
    spec = ScheduleSpec(cron_expressions=["*/15 9-17 * * 1-5", "0 0 3 * * *"])
    await dev_server.client.create_schedule(schedule_name, Schedule(action=action, spec=spec))
    about = await described(liara_env, tmp_path, schedule_name)
    assert about["cron"] == ["*/15 9-17 * * 1-5", "0 0 3 * *"], "the second as Temporal runs it: monthly"


async def test_create_says_when_the_schedule_runs_next(liara_env, tmp_path, schedule_name):
    created = await cli(liara_env, tmp_path, "schedule", "create", schedule_name, "target-alpha", "recon", *YEARLY)
    assert created.returncode == 0, created.stderr
    lines = created.stdout.strip().splitlines()
    assert lines[0] == f"Schedule {schedule_name} created; its crises: liara list --schedule {schedule_name}"
    assert lines[1].startswith("Next runs: "), created.stdout
    upcoming = [datetime.fromisoformat(moment) for moment in lines[1].removeprefix("Next runs: ").split(", ")]
    assert len(upcoming) == 3
    assert all((moment.month, moment.day, moment.hour, moment.minute) == (1, 1, 3, 0) for moment in upcoming)
    assert [moment.year for moment in upcoming] == [upcoming[0].year + n for n in range(3)]
    assert (await described(liara_env, tmp_path, schedule_name))["next_runs"][:3] == [m.isoformat() for m in upcoming]


async def test_create_says_when_a_timetable_never_runs(liara_env, tmp_path, schedule_name):
    created = await cli(
        liara_env, tmp_path, "schedule", "create", schedule_name, "target-alpha", "recon", "--cron", "0 0 30 2 *"
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[1] == (
        "No run is due: the timetable matches no time to come "
        f"(start one with `liara schedule trigger {schedule_name}`)."
    )
