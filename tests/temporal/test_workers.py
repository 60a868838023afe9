"""Worker processes: the dedicated Liara worker and the main worker as a user runs them."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle

from app.temporal.notifications import NOTIFICATION_TASK_QUEUE_ENV, SIGNATURE_HEADER, verify_signature
from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers import assert_eventually
from tests.helpers.cli import run_cli
from tests.helpers.processes import WorkerProcess, run_script
from tests.helpers.records import assert_completed_record
from tests.helpers.webhooks import SECRET, Receiver

pytestmark = pytest.mark.integration

WORKER_SCRIPTS = ["cognition/liara/worker.py", "src/app/temporal/worker.py"]
SPEC_ACTIONS = ("recon", "secure", "extract", "cleanup")


def spec_lines(task_queue: str, address: str) -> list[str]:
    """The quick reference's expected worker output, with the test's own task queue (the
    connection line also says where: the spec's words, then the address and namespace).
    """
    return [
        "INFO - Starting Liara Temporal Agency Worker",
        f"INFO - Connected to Temporal server at {address}, namespace default",
        "INFO - Liara worker created with 1 workflows and 5 activities",
        f"INFO - Task queue: {task_queue}",
        "INFO - Liara worker is running. Press Ctrl+C to stop.",
    ]


def in_order(expected: list[str], lines: list[str]) -> bool:
    """Whether ``expected`` are whole lines of ``lines``, in this order (other lines may come between)."""
    remaining = iter(lines)
    return all(any(line == wanted for line in remaining) for wanted in expected)


async def stop_worker(worker: WorkerProcess, signum: int = signal.SIGTERM) -> int:
    return await asyncio.to_thread(worker.stop, signum)


def identities(history_events) -> set[str]:
    """Identities of the workers that completed workflow tasks or started activities."""
    found = set()
    for event in history_events:
        if event.HasField("workflow_task_completed_event_attributes"):
            found.add(event.workflow_task_completed_event_attributes.identity)
        if event.HasField("activity_task_started_event_attributes"):
            found.add(event.activity_task_started_event_attributes.identity)
    return found


async def worker_identities(handle: WorkflowHandle) -> set[str]:
    return identities([event async for event in handle.fetch_history_events()])


def identity_of(worker: WorkerProcess) -> str:
    """The SDK's default worker identity is ``<pid>@<host>``; the pid is enough to tell workers apart."""
    return str(worker.process.pid)


def pid_part(identity: str) -> str:
    return identity.split("@", 1)[0]


async def polling_pids(client: Client, task_queue: str) -> set[str]:
    """The pids of the workers polling ``task_queue`` for workflow or activity tasks."""
    found = set()
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(namespace="default", task_queue=TaskQueue(name=task_queue), task_queue_type=kind)
        )
        found |= {pid_part(poller.identity) for poller in response.pollers}
    return found


@pytest.mark.parametrize("script", WORKER_SCRIPTS)
def test_worker_prints_the_spec_lines_in_order(script, spawn, liara_env, task_queue, tmp_path):
    worker = spawn(script, liara_env, tmp_path)
    try:
        assert worker.process.poll() is None, worker.output
        assert worker.lines[0] == "INFO - Starting Liara Temporal Agency Worker", worker.output
        assert in_order(spec_lines(task_queue, liara_env["TEMPORAL_ADDRESS"]), worker.lines), worker.output
    finally:
        assert worker.stop() == 0, worker.output


def test_liara_worker_honours_the_options_given_before_it(spawn, liara_env, task_queue, tmp_path):
    address = liara_env["TEMPORAL_ADDRESS"]
    # Nothing in the environment says where: only the options before `worker` do.
    env = {k: v for k, v in liara_env.items() if k not in ("TEMPORAL_ADDRESS", "LIARA_TASK_QUEUE")}
    options = ("--address", address, "--namespace", "default", "--task-queue", task_queue, "worker")
    worker = spawn("cognition/liara/cli.py", env, tmp_path, *options)
    try:
        assert in_order(spec_lines(task_queue, address), worker.lines), worker.output
    finally:
        assert worker.stop() == 0, worker.output

    elsewhere = run_script("cognition/liara/cli.py", liara_env, tmp_path, "--namespace", "nope", "worker")
    assert elsewhere.returncode == 1, elsewhere.stdout + elsewhere.stderr
    assert f"ERROR - Namespace 'nope' does not exist on the Temporal server at {address}" in elsewhere.stderr


def test_liara_worker_refuses_the_service_options(liara_env, tmp_path):
    done = run_script("cognition/liara/cli.py", liara_env, tmp_path, "--api", "http://127.0.0.1:1", "worker")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "ERROR - A worker runs on Temporal itself, not through the service: leave out --api." in output
    assert "Liara worker is running" not in output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("script", WORKER_SCRIPTS)
def test_idle_worker_exits_0_on_a_stop_signal(script, signum, spawn, liara_env, tmp_path):
    worker = spawn(script, liara_env, tmp_path)

    assert worker.stop(signum) == 0, worker.output
    assert worker.lines[-1] == "INFO - Liara worker stopped", worker.output
    assert "Traceback" not in worker.output


@pytest.mark.parametrize("script", WORKER_SCRIPTS)
def test_worker_against_an_unreachable_server_exits_1_with_one_sentence(script, liara_env, tmp_path):
    env = {**liara_env, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    done = run_script(script, env, tmp_path)

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("ERROR - ")]
    assert len(errors) == 1, output
    assert errors[0].endswith("."), errors[0]
    assert "127.0.0.1:1" in errors[0]
    assert "`python scripts/setup_temporal.py start`" in errors[0]
    assert "Liara worker is running" not in output


async def test_the_main_worker_delivers_webhooks_and_the_liara_worker_leaves_them_alone(
    dev_server, spawn, liara_env, task_queue, tmp_path, monkeypatch
):
    receiver = Receiver()
    config = tmp_path / "liara.toml"
    config.write_text(f'[webhooks.ops]\nurl = "{receiver.url}"\nsecret_env = "OPS_SECRET"\n')
    env = {**liara_env, "LIARA_CONFIG": str(config), "OPS_SECRET": SECRET}
    notifications = env[NOTIFICATION_TASK_QUEUE_ENV]
    monkeypatch.setenv(NOTIFICATION_TASK_QUEUE_ENV, notifications)  # the crisis names the workers' queue
    monkeypatch.setenv("LIARA_CONFIG", str(config))  # and a webhook this configuration defines
    dedicated = await asyncio.to_thread(spawn, "cognition/liara/worker.py", env, tmp_path)
    main = await asyncio.to_thread(spawn, "src/app/temporal/worker.py", env, tmp_path)
    try:
        assert f"INFO - Webhook deliveries: task queue {notifications} (webhooks: ops)" in main.lines, main.output
        assert not any("Webhook deliveries" in line for line in dedicated.lines), dedicated.output

        async def main_worker_polls() -> bool:
            return identity_of(main) in await polling_pids(dev_server.client, notifications)

        await assert_eventually(main_worker_polls, timeout=30)
        assert await polling_pids(dev_server.client, notifications) == {identity_of(main)}
        assert identity_of(dedicated) in await polling_pids(dev_server.client, task_queue)

        async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency:
            workflow_id = await agency.trigger_crisis_response(
                "target-alpha", missions_from_actions("target-alpha", ["recon"]), "tester", webhooks=["ops"]
            )
            result = await agency.wait_for_crisis_completion(workflow_id)

            async def delivered() -> bool:
                return bool(receiver.accepted())

            await assert_eventually(delivered, timeout=120, interval=0.5)
    finally:
        receiver.close()
        codes = [await stop_worker(worker) for worker in (dedicated, main)]
    assert codes == [0, 0], dedicated.output + "\n\n" + main.output
    assert result["success"] is True
    assert receiver.accepted_events() == {"finished"}
    request = receiver.accepted()[0]
    body = json.loads(request["body"])
    assert (body["event"], body["workflow_id"]) == ("finished", workflow_id)
    assert verify_signature(SECRET.encode(), request["headers"][SIGNATURE_HEADER], request["body"])


async def test_two_workers_on_one_queue_share_the_crises(dev_server, spawn, liara_env, task_queue, tmp_path):
    first = await asyncio.to_thread(spawn, "cognition/liara/worker.py", liara_env, tmp_path)
    second = await asyncio.to_thread(spawn, "src/app/temporal/worker.py", liara_env, tmp_path)
    workers = {identity_of(first): first, identity_of(second): second}
    try:
        async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency:

            async def run_crisis() -> tuple[dict, set[str]]:
                workflow_id = await agency.trigger_crisis_response(
                    "target-alpha", missions_from_actions("target-alpha", SPEC_ACTIONS), "tester"
                )
                result = await agency.wait_for_crisis_completion(workflow_id)
                used = await worker_identities(dev_server.client.get_workflow_handle(workflow_id))
                return result, {pid_part(identity) for identity in used}

            batch = await asyncio.gather(*(run_crisis() for _ in range(6)))
            assert all(result["success"] for result, _ in batch)
            work = Counter(pid for _, used in batch for pid in used)
            assert set(work) <= set(workers), work

            # Stop whichever worker did most of the batch; the other one carries on alone.
            busiest = work.most_common(1)[0][0]
            assert await stop_worker(workers[busiest]) == 0, workers[busiest].output
            result, used = await run_crisis()
            assert result["success"] is True
            (other,) = set(workers) - {busiest}
            assert used == {other}
            assert set(work) | used == set(workers)
    finally:
        codes = [await stop_worker(worker) for worker in workers.values()]
        assert codes == [0, 0], "\n\n".join(worker.output for worker in workers.values())


async def test_a_crisis_started_while_no_worker_runs_completes_after_a_restart(
    dev_server, spawn, liara_env, task_queue, tmp_path
):
    before = await asyncio.to_thread(spawn, "cognition/liara/worker.py", liara_env, tmp_path)
    assert await stop_worker(before, signal.SIGTERM) == 0, before.output

    started = await asyncio.to_thread(run_cli, liara_env, tmp_path, "trigger", "target-alpha", *SPEC_ACTIONS)
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()
    crisis_id = workflow_id.removeprefix("crisis-workflow-")
    record_path = Path(liara_env["LIARA_CRISIS_DIR"]) / f"{crisis_id}.json"
    assert not record_path.exists()

    after = await asyncio.to_thread(spawn, "cognition/liara/worker.py", liara_env, tmp_path)
    try:
        async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency:
            result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)
    finally:
        assert await stop_worker(after) == 0, after.output
    assert result["success"] is True
    used = await worker_identities(dev_server.client.get_workflow_handle(workflow_id))
    assert {pid_part(identity) for identity in used} == {identity_of(after)}

    record = json.loads(record_path.read_text())
    assert record["completed_at"]
    assert_completed_record(record, ["recon-phase-1", "secure-phase-2", "extract-phase-3", "cleanup-phase-4"])


async def test_processes_option_runs_several_workers_that_share_the_crises(liara_env, task_queue, tmp_path, spawn):
    worker = spawn("cognition/liara/worker.py", liara_env, tmp_path, "--processes", "2")
    ready = "Liara worker is running. Press Ctrl+C to stop."

    async def both_ready() -> bool:
        return all(f"[worker-{n}] {ready}" in worker.output for n in (1, 2))

    await assert_eventually(both_ready, timeout=60)
    async with LiaraTemporalAgency(temporal_host=liara_env["TEMPORAL_ADDRESS"], task_queue=task_queue) as agency:
        workflow_ids = await asyncio.gather(
            *(
                agency.trigger_crisis_response(
                    target_member="target-alpha", missions=missions_from_actions("target-alpha", ["recon", "secure"])
                )
                for _ in range(12)
            )
        )
        results = await asyncio.gather(*(agency.wait_for_crisis_completion(w, timeout=60) for w in workflow_ids))
        handles = [agency.client.get_workflow_handle(w) for w in workflow_ids]
        seen = set().union(*[await worker_identities(handle) for handle in handles])
    assert all(result["success"] for result in results)
    assert len({pid_part(identity) for identity in seen}) >= 2, seen
    assert await stop_worker(worker) == 0
    assert "[worker-1] Liara worker stopped" in worker.output
    assert "[worker-2] Liara worker stopped" in worker.output
