"""The ``liara`` command line end to end: ``python cognition/liara/cli.py`` (and the installed
``liara`` script) as subprocesses against the dev server, with a worker process where needed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from temporalio.service import RPCError, RPCStatusCode

from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers import REPO_ROOT, assert_eventually
from tests.helpers.cli import assert_one_sentence_error, cli, run_cli, until_awaiting
from tests.helpers.processes import WorkerProcess

pytestmark = pytest.mark.integration

SPEC_ACTIONS = ("recon", "secure", "extract", "cleanup")
SPEC_PHASES = ["recon-phase-1", "secure-phase-2", "extract-phase-3", "cleanup-phase-4"]


async def assert_not_started(dev_server, workflow_id: str) -> None:
    with pytest.raises(RPCError) as raised:
        await dev_server.client.get_workflow_handle(workflow_id).describe()
    assert raised.value.status == RPCStatusCode.NOT_FOUND


async def test_trigger_wait_json_returns_the_successful_result(liara_env, liara_worker, task_queue, tmp_path):
    done = await cli(liara_env, tmp_path, "trigger", "target-alpha", *SPEC_ACTIONS, "--wait", "--json")

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["success"] is True
    assert result["status"] == "completed"
    assert result["workflow_id"] == f"crisis-workflow-{result['crisis_id']}"
    assert result["crisis_id"].startswith("crisis-target-alpha-")
    assert [p["phase_id"] for p in result["phases"]] == SPEC_PHASES
    assert {p["status"] for p in result["phases"]} == {"completed"}
    assert result["summary"] == {"completed_phases": 4, "failed_phases": 0, "total_phases": 4}
    record = Path(liara_env["LIARA_CRISIS_DIR"]) / f"{result['crisis_id']}.json"
    assert json.loads(record.read_text())["status"] == "completed"


async def test_status_of_a_finished_crisis_shows_completed_and_each_phase(liara_env, liara_worker, tmp_path):
    done = await cli(liara_env, tmp_path, "trigger", "target-alpha", *SPEC_ACTIONS, "--wait", "--json")
    assert done.returncode == 0, done.stderr
    workflow_id = json.loads(done.stdout)["workflow_id"]

    shown = await cli(liara_env, tmp_path, "status", workflow_id)

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"Crisis workflow {workflow_id}: completed"
    agents = ("recon-agent-001", "secure-agent-001", "extract-agent-001", "cleanup-agent-001")
    for phase_id, agent_id in zip(SPEC_PHASES, agents, strict=True):
        row = next((line for line in lines if line.strip().startswith(phase_id)), None)
        assert row is not None, f"no row for {phase_id} in:\n{shown.stdout}"
        assert agent_id in row and "completed" in row, row
    assert "Success: True (4 of 4 phases completed, 0 failed)" in shown.stdout


async def test_status_json_has_the_state_the_queue_and_the_result(liara_env, liara_worker, task_queue, tmp_path):
    done = await cli(liara_env, tmp_path, "trigger", "target-alpha", "recon", "cleanup", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    workflow_id = json.loads(done.stdout)["workflow_id"]

    shown = await cli(liara_env, tmp_path, "status", workflow_id, "--json")

    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["workflow_id"] == workflow_id
    assert report["status"] == "completed"
    assert report["task_queue"] == task_queue
    assert report["started_at"] and report["closed_at"]
    assert report["closed_at"] >= report["started_at"]
    assert report["result"]["success"] is True
    assert [p["phase_id"] for p in report["result"]["phases"]] == ["recon-phase-1", "cleanup-phase-2"]


async def test_a_crisis_id_is_never_reused(liara_env, liara_worker, tmp_path):
    # Unique per run: the shared server may keep crises of earlier runs, and ids are never reused.
    crisis_id = f"my-crisis-1-{uuid.uuid4().hex[:8]}"
    first = await cli(liara_env, tmp_path, "trigger", "--crisis-id", crisis_id, "target-alpha", "recon")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"crisis-workflow-{crisis_id}"

    second = await cli(liara_env, tmp_path, "trigger", "--crisis-id", crisis_id, "target-alpha", "recon")

    assert second.returncode == 1
    assert second.stdout == ""
    message = assert_one_sentence_error(second.stderr)
    assert "already exists" in message and crisis_id in message
    # The first crisis is untouched and completes.
    waited = await cli(liara_env, tmp_path, "wait", f"crisis-workflow-{crisis_id}", "--json")
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["success"] is True


async def test_status_of_an_unknown_crisis_is_a_one_sentence_error(liara_env, tmp_path):
    shown = await cli(liara_env, tmp_path, "status", "crisis-workflow-does-not-exist")

    assert shown.returncode == 1
    message = assert_one_sentence_error(shown.stderr)
    assert "crisis-workflow-does-not-exist" in message


async def test_an_invalid_target_starts_nothing(dev_server, liara_env, task_queue, tmp_path):
    crisis_id = f"bad-target-{uuid.uuid4().hex[:8]}"
    refused = await cli(liara_env, tmp_path, "trigger", "--crisis-id", crisis_id, "bad/target", "recon")

    assert refused.returncode == 1
    assert refused.stdout == ""
    message = assert_one_sentence_error(refused.stderr)
    # The target given as TARGET, once: not as target_member and again as each phase's target.
    assert message == (
        "Error: Invalid crisis request: TARGET: use only letters, digits, '.', '_' and '-', starting with a letter or "
        "digit."
    )
    await assert_not_started(dev_server, f"crisis-workflow-{crisis_id}")
    assert not Path(liara_env["LIARA_CRISIS_DIR"]).exists()

    async def started_on_queue() -> list[str]:
        return [w.id async for w in dev_server.client.list_workflows(f"TaskQueue = '{task_queue}'")]

    assert await started_on_queue() == []
    # The same listing does see a crisis on this queue once one is really started.
    started = await cli(liara_env, tmp_path, "trigger", "target-alpha", "recon")
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()
    try:

        async def listed() -> bool:
            return await started_on_queue() == [workflow_id]

        await assert_eventually(listed)
    finally:
        await dev_server.client.get_workflow_handle(workflow_id).terminate("test cleanup: no worker on this queue")


async def test_an_unreachable_server_says_how_to_start_one(liara_env, tmp_path):
    env = {**liara_env, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    for args in (("trigger", "target-alpha", "recon"), ("status", "crisis-workflow-x"), ("wait", "crisis-workflow-x")):
        failed = await cli(env, tmp_path, *args)

        assert failed.returncode == 1, args
        message = assert_one_sentence_error(failed.stderr)
        assert "127.0.0.1:1" in message
        assert "`python scripts/setup_temporal.py start`" in message


async def test_a_queued_crisis_waits_for_a_worker_then_completes(dev_server, liara_env, task_queue, tmp_path):
    # No liara_worker fixture: nothing polls this test's queue until the worker below starts.
    started = await cli(liara_env, tmp_path, "trigger", "target-alpha", *SPEC_ACTIONS)
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()

    # What it waits for, with the command that would start a worker polling its queue where it is.
    address = liara_env["TEMPORAL_ADDRESS"]
    worker = f"liara worker{'' if address == 'localhost:7233' else f' --address {address}'} --task-queue {task_queue}"
    waiting = f"no worker polls task queue '{task_queue}': start one with `{worker}`"
    crisis_id = workflow_id.removeprefix("crisis-workflow-")
    # Every command below asks about the same queued crisis, none changes it: run side by side
    # (wait and watch each wait out their --timeout).
    changes = (("add-phases", workflow_id, "extract"), ("approve", workflow_id, "recon-phase-1"))
    gave_up, shown, watched, shown_json, by_crisis_id, *refusals = await asyncio.gather(
        cli(liara_env, tmp_path, "wait", workflow_id, "--timeout", "1"),
        cli(liara_env, tmp_path, "status", workflow_id),
        cli(liara_env, tmp_path, "watch", workflow_id, "--timeout", "3"),
        cli(liara_env, tmp_path, "status", workflow_id, "--json"),
        cli(liara_env, tmp_path, "status", crisis_id),
        *(cli(liara_env, tmp_path, *change) for change in changes),
    )
    assert gave_up.returncode == 1
    message = assert_one_sentence_error(gave_up.stderr)
    assert message == (
        f"Error: Crisis workflow {workflow_id} did not finish within 1 s; it keeps running, but {waiting}."
    )

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [f"Crisis workflow {workflow_id}: running", waiting]

    # watch says so within its first poll (it ends with its --timeout: the crisis waits on).
    assert watched.returncode == 1
    assert watched.stdout.splitlines()[0] == waiting
    assert "did not finish within 3 s" in assert_one_sentence_error(watched.stderr)

    assert shown_json.returncode == 0, shown_json.stderr
    report = json.loads(shown_json.stdout)
    assert (report["status"], report["workers_polling"]) == ("running", 0)
    assert report["note"] == waiting

    # The crisis id (as `liara record list` shows crises) is not the workflow id: said so, naming it.
    assert by_crisis_id.returncode == 1
    assert assert_one_sentence_error(by_crisis_id.stderr) == (
        f"Error: No crisis workflow '{crisis_id}' in namespace 'default': that is the crisis id of crisis workflow "
        f"{workflow_id}; use that workflow id."
    )
    # A change that only a worker can take is refused at once rather than left waiting for one.
    for change, refused in zip(changes, refusals, strict=True):
        assert refused.returncode == 1, change
        assert f"no worker polls task queue '{task_queue}'" in assert_one_sentence_error(refused.stderr)

    worker = await asyncio.to_thread(WorkerProcess, "cognition/liara/worker.py", liara_env, tmp_path)
    try:
        waited = await cli(liara_env, tmp_path, "wait", workflow_id, "--json")
    finally:
        assert worker.stop() == 0, worker.output
    assert waited.returncode == 0, waited.stderr
    result = json.loads(waited.stdout)
    assert result["success"] is True
    assert [p["phase_id"] for p in result["phases"]] == SPEC_PHASES


@pytest.mark.parametrize("command", [(), ("trigger",), ("status",), ("wait",), ("worker",)], ids=" ".join)
def test_help_of_liara_and_each_command(command, tmp_path):
    # --help needs no server: run without any Temporal settings.
    shown = run_cli({**_plain_env(), "TEMPORAL_ADDRESS": "127.0.0.1:1"}, tmp_path, *command, "--help")

    assert shown.returncode == 0, shown.stderr
    assert "Usage:" in shown.stdout
    assert "Traceback" not in shown.stderr
    if command:
        assert command[0] in shown.stdout
    else:
        for name in ("trigger", "status", "wait", "worker"):
            assert name in shown.stdout


def _plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LIARA_"))}


async def test_the_installed_liara_script_works_like_cli_py(liara_env, liara_worker, tmp_path):
    liara = Path(sys.executable).parent / "liara"
    assert liara.exists(), "the liara console script is not installed: pip install -e ."
    commands = {"cli.py": [sys.executable, str(REPO_ROOT / "cognition/liara/cli.py")], "liara": [str(liara)]}
    outputs = {}
    for name, command in commands.items():
        done = await asyncio.to_thread(
            subprocess.run,
            [*command, "trigger", "target-alpha", "recon", "secure", "--wait"],
            env=liara_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{name}: {done.stderr}"
        outputs[name] = done.stdout.splitlines()

    for name, lines in outputs.items():
        workflow_id = lines[0]
        assert workflow_id.startswith("crisis-workflow-crisis-target-alpha-"), name
        assert lines[1] == f"Crisis {workflow_id.removeprefix('crisis-workflow-')} on target-alpha: completed", name
        assert "Success: True (2 of 2 phases completed, 0 failed)" in lines, name
    # Same output apart from the generated ids and the record paths.
    assert len(outputs["liara"]) == len(outputs["cli.py"])
    assert outputs["liara"][0] != outputs["cli.py"][0]


# --- user data is printed as it is ------------------------------------------------------------

#: What Rich would parse as markup (``[/docs]`` alone is a MarkupError) or emoji codes.
MARKUP_LIKE = "ops[/docs] [bold]x[/] :thumbs_up:"


def _missions_file(directory: Path, *phases: dict) -> Path:
    path = directory / f"missions-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(list(phases)), encoding="utf-8")
    return path


def _phase(phase_id: str, target: str, **extra) -> dict:
    return {"phase_id": phase_id, "agent_id": f"{phase_id}-agent", "action": "deploy", "target": target, **extra}


async def _at_the_gate(
    dev_server, task_queue: str, workflow_id: str, act: Callable[[LiaraTemporalAgency], Awaitable[object]]
) -> None:
    """Once a phase of the crisis awaits approval, ``act`` on it through the Python API."""
    async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency:

        async def gate_reached() -> bool:
            status = await agency.get_crisis_status(workflow_id)
            return any(p["status"] == "awaiting_approval" for p in status.get("phases", []))

        await assert_eventually(gate_reached)
        await act(agency)


async def test_user_data_in_status_wait_and_list_is_printed_literally(
    dev_server, liara_env, liara_worker, task_queue, tmp_path
):
    target = f"target-markup-{uuid.uuid4().hex[:8]}"
    gate = _missions_file(tmp_path, _phase("gate-1", target, requires_approval=True))
    started = await cli(
        liara_env, tmp_path, "trigger", target, "--missions-file", str(gate), "--initiated-by", MARKUP_LIKE
    )
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()
    await _at_the_gate(
        dev_server,
        task_queue,
        workflow_id,
        lambda agency: agency.reject_phase(workflow_id, "gate-1", "[red]lead[/red]", "see [/docs] and [bold]x[/]"),
    )
    error = "rejected by [red]lead[/red]: see [/docs] and [bold]x[/]"

    waited = await cli(liara_env, tmp_path, "wait", workflow_id)
    assert waited.returncode == 3, waited.stderr
    assert "Traceback" not in waited.stderr
    assert error in waited.stdout

    shown = await cli(liara_env, tmp_path, "status", workflow_id)
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if line.strip().startswith("gate-1"))
    assert row.rstrip().endswith(error), shown.stdout

    # Visibility is eventually consistent: waited for through the Python API (what `liara list`
    # prints), then the list as the command prints it.
    async with LiaraTemporalAgency(temporal_host=liara_env["TEMPORAL_ADDRESS"], task_queue=task_queue) as api:

        async def visible() -> bool:
            return workflow_id in [row["workflow_id"] for row in await api.list_crises(target=target)]

        await assert_eventually(visible, timeout=30, interval=0.2)
    listed = await cli(liara_env, tmp_path, "list", "--target", target)
    assert listed.returncode == 0, listed.stderr
    assert workflow_id in listed.stdout and MARKUP_LIKE in listed.stdout, listed.stdout


async def test_status_of_a_cancelled_crisis_shows_its_recorded_phases_and_who_cancelled(
    dev_server, liara_env, liara_worker, task_queue, tmp_path
):
    missions = _missions_file(
        tmp_path,
        _phase("scan-1", "target-alpha", compensate_action="withdraw"),
        _phase("gate-2", "target-alpha", requires_approval=True),
    )
    started = await cli(liara_env, tmp_path, "trigger", "target-alpha", "--missions-file", str(missions))
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()
    await _at_the_gate(
        dev_server, task_queue, workflow_id, lambda agency: agency.cancel_crisis(workflow_id, cancelled_by="ops-2")
    )
    assert (await cli(liara_env, tmp_path, "wait", workflow_id)).returncode == 3

    shown = await cli(liara_env, tmp_path, "status", workflow_id)

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"Crisis workflow {workflow_id}: cancelled"
    rows = [line.split()[:4] for line in lines if line.split()[:1] in (["scan-1"], ["gate-2"])]
    assert rows == [
        ["scan-1", "scan-1-agent", "deploy", "completed"],
        ["gate-2", "gate-2-agent", "deploy", "cancelled"],
        ["scan-1", "scan-1-agent", "withdraw", "completed"],  # its compensation
    ]
    assert "Compensations:" in lines
    assert any(line.startswith("Cancel requested at ") and line.endswith(": cancelled by ops-2") for line in lines)
    crisis_id = workflow_id.removeprefix("crisis-workflow-")
    record = Path(liara_env["LIARA_CRISIS_DIR"]) / f"{crisis_id}.json"
    assert lines[-1] == f"Record: {record.resolve()}"


async def test_a_crisis_at_an_approval_gate_says_so_with_the_commands_that_decide_it(liara_env, liara_worker, tmp_path):
    gate = _phase("contain", "target-alpha", requires_approval=True)
    missions = _missions_file(tmp_path, _phase("recon", "target-alpha"), gate, _phase("report", "target-alpha"))
    started = await cli(liara_env, tmp_path, "trigger", "target-alpha", "--missions-file", str(missions))
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()
    await until_awaiting(liara_env, workflow_id, "contain")
    awaiting = (
        f"awaiting approval of contain (0 of 1): decide with `liara approve {workflow_id} contain` or "
        f"`liara reject {workflow_id} contain`"
    )

    shown = await cli(liara_env, tmp_path, "status", workflow_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:2] == [f"Crisis workflow {workflow_id}: running", awaiting]

    watched = await cli(liara_env, tmp_path, "watch", workflow_id, "--timeout", "2")
    assert watched.returncode == 1
    assert awaiting in watched.stdout.splitlines()
    assert f"it keeps running, but it is {awaiting}." in assert_one_sentence_error(watched.stderr)

    # Connection options given on the command line are in the commands it prints.
    address = liara_env["TEMPORAL_ADDRESS"]
    elsewhere = await cli(liara_env, tmp_path, "--address", address, "status", workflow_id)
    assert f"`liara --address {address} approve {workflow_id} contain`" in elsewhere.stdout

    approved = await cli(liara_env, tmp_path, "approve", workflow_id, "contain", "--by", "duty-lead")
    assert approved.returncode == 0, approved.stderr
    waited = await cli(liara_env, tmp_path, "wait", workflow_id, "--json")
    assert waited.returncode == 0, waited.stderr


async def test_a_queued_crisis_on_a_bracketed_task_queue_shows_its_note_literally(dev_server, liara_env, tmp_path):
    queue = f"liara-test-[/docs]-{uuid.uuid4().hex[:8]}"
    env = {**liara_env, "LIARA_TASK_QUEUE": queue}
    started = await cli(env, tmp_path, "trigger", "target-alpha", "recon", "--initiated-by", MARKUP_LIKE)
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()
    try:
        shown = await cli(env, tmp_path, "status", workflow_id)
        assert shown.returncode == 0, shown.stderr
        assert "Traceback" not in shown.stderr
        assert f"no worker polls task queue {queue!r}" in shown.stdout
    finally:
        await dev_server.client.get_workflow_handle(workflow_id).terminate("test over: no worker on this queue")


# --- crisis options ---------------------------------------------------------------------------


async def _scheduled_activity(dev_server, workflow_id: str):
    """The first ``perform_agent_mission`` scheduled by the crisis: its retry policy and timeouts."""
    async for event in dev_server.client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == "perform_agent_mission":
                return scheduled
    raise AssertionError(f"{workflow_id} scheduled no perform_agent_mission")


async def test_trigger_options_reach_the_phases(dev_server, liara_env, liara_worker, tmp_path):
    flaky = _missions_file(tmp_path, _phase("flaky-1", "target-alpha", params={"fail_attempts": 2}))
    options = ("--max-attempts", "3", "--retry-initial-interval", "0.1", "--retry-maximum-interval", "0.2")
    options += ("--retry-backoff", "1.5", "--phase-timeout", "7", "--heartbeat-timeout", "4")

    done = await cli(
        liara_env, tmp_path, "trigger", "target-alpha", "--missions-file", str(flaky), *options, "--wait", "--json"
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    (flaky_phase,) = result["phases"]
    assert (flaky_phase["status"], flaky_phase["attempts"]) == ("completed", 3)
    scheduled = await _scheduled_activity(dev_server, result["workflow_id"])
    retry = scheduled.retry_policy
    assert retry.maximum_attempts == 3
    assert retry.initial_interval.ToTimedelta().total_seconds() == 0.1
    assert retry.maximum_interval.ToTimedelta().total_seconds() == 0.2
    assert retry.backoff_coefficient == 1.5
    assert scheduled.start_to_close_timeout.ToTimedelta().total_seconds() == 7
    assert scheduled.heartbeat_timeout.ToTimedelta().total_seconds() == 4


async def test_max_attempts_1_ends_a_failing_phase_after_one_attempt(liara_env, liara_worker, tmp_path):
    failing = _missions_file(tmp_path, _phase("failing-1", "target-alpha", params={"fail": "always"}))
    options = ("--max-attempts", "1", "--retry-initial-interval", "0.1")

    done = await cli(
        liara_env, tmp_path, "trigger", "target-alpha", "--missions-file", str(failing), *options, "--wait", "--json"
    )

    assert done.returncode == 3, done.stderr
    (failed,) = json.loads(done.stdout)["phases"]
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert "on attempt 1" in failed["error"]


async def test_phase_timeout_fails_a_phase_that_takes_longer(liara_env, liara_worker, tmp_path):
    slow = _missions_file(tmp_path, _phase("slow-1", "target-alpha", params={"duration": 5}))
    options = ("--phase-timeout", "1", "--max-attempts", "1")

    done = await cli(
        liara_env, tmp_path, "trigger", "target-alpha", "--missions-file", str(slow), *options, "--wait", "--json"
    )

    assert done.returncode == 3, done.stderr
    result = json.loads(done.stdout)
    (slow_phase,) = result["phases"]
    assert slow_phase["status"] == "failed"
    assert "timeout" in slow_phase["error"].lower(), slow_phase["error"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        # Each named by the flag the user typed, not by the request field it sets.
        (
            ("--retry-maximum-interval", "1", "--retry-initial-interval", "5"),
            "--retry-maximum-interval (1) must not be less than --retry-initial-interval (5).",
        ),
        (("--retry-maximum-interval", "0"), "--retry-maximum-interval: Input should be greater than 0."),
        (("--retry-backoff", "0.5"), "--retry-backoff: Input should be greater than or equal to 1."),
        (("--retry-initial-interval", "0"), "--retry-initial-interval: Input should be greater than 0."),
        (("--phase-timeout", "0"), "--phase-timeout: Input should be greater than or equal to 0.001."),
        (("--heartbeat-timeout", "-1"), "--heartbeat-timeout: Input should be greater than or equal to 0.001."),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else value,
)
async def test_a_bad_crisis_option_is_a_one_sentence_error_and_starts_nothing(
    dev_server, liara_env, task_queue, tmp_path, options, field
):
    refused = await cli(liara_env, tmp_path, "trigger", "target-alpha", "recon", *options)

    assert refused.returncode == 1
    assert refused.stdout == ""
    message = assert_one_sentence_error(refused.stderr)
    assert message == f"Error: Invalid crisis request: {field}", message
    assert "_seconds" not in message and "backoff_coefficient" not in message
    started = [w.id async for w in dev_server.client.list_workflows(f"TaskQueue = '{task_queue}'")]
    assert started == []


def test_timeout_without_wait_is_a_usage_error(tmp_path):
    # Refused before anything connects: the address answers nothing.
    env = {**_plain_env(), "TEMPORAL_ADDRESS": "127.0.0.1:1"}

    refused = run_cli(env, tmp_path, "trigger", "target-alpha", "recon", "--timeout", "5")

    assert refused.returncode == 2
    assert refused.stdout == ""
    assert "Traceback" not in refused.stderr
    assert "'--timeout'" in refused.stderr and "--wait" in refused.stderr
