"""A failed attempt is one log line, never the SDK's traceback: an agent that fails (retried, then
for good) and webhook deliveries to a receiver that refuses them, in the output of the main worker
(crises and deliveries) and of ``liara notifier``, as a user runs them.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.helpers import assert_eventually
from tests.helpers.cli import cli
from tests.helpers.processes import WorkerProcess
from tests.helpers.webhooks import REFUSING, SECRET, SECRET_ENV, Receiver, webhook_config

pytestmark = pytest.mark.integration

#: A phase whose agent fails every attempt, and one whose agent fails for good at once.
FAILING = [
    {
        "phase_id": "flaky-1",
        "agent_id": "recon-agent-001",
        "action": "recon",
        "target": "target-alpha",
        "params": {"fail": "always"},
    },
    {
        "phase_id": "broken-2",
        "agent_id": "recon-agent-001",
        "action": "recon",
        "target": "target-alpha",
        "params": {"fail": "permanent"},
    },
]


class NotifierProcess(WorkerProcess):
    """``liara notifier`` as a subprocess."""

    ready_line = "Liara notifier is running on task queue"

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        super().__init__("cognition/liara/cli.py", env, cwd, "notifier")


def failure_lines(lines: list[str], subject: str) -> list[str]:
    """The lines of failed attempts of what ``subject`` begins to name."""
    return [line for line in lines if line.startswith(f"WARNING - {subject}") and " failed on attempt " in line]


def attempts(lines: list[str]) -> list[int]:
    return [int(re.search(r" failed on attempt (\d+): ", line)[1]) for line in lines]  # type: ignore[index]


def assert_no_traceback(output: str) -> None:
    assert "Traceback" not in output, output
    assert "Completing activity as failed" not in output, output


async def start_failing_crisis(env: dict[str, str], cwd: Path) -> str:
    """A crisis of the two failing phases (3 attempts each at most, 0.1 s apart) telling ``ops``."""
    missions = cwd / "failing.json"
    missions.write_text(json.dumps(FAILING))
    started = await cli(
        env, cwd, "trigger", "target-alpha", "--missions-file", str(missions), "--max-attempts", "3",
        "--retry-initial-interval", "0.1", "--webhook", "ops", "--json",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    return json.loads(started.stdout)["workflow_id"]


async def attempted(receiver: Receiver, times: int) -> bool:
    """Whether the receiver has refused one event this many times."""
    return (
        max(Counter(json.loads(request["body"])["event_id"] for request in receiver.requests).values(), default=0)
        >= times
    )


async def end_deliveries(client: Client, workflow_id: str, receiver: Receiver) -> None:
    """Terminate the crisis's deliveries the receiver has seen (they would be retried for a week)."""
    for event_id in {json.loads(request["body"])["event_id"] for request in receiver.requests}:
        try:
            await client.get_workflow_handle(f"{workflow_id}-webhook-{event_id}-ops").terminate(reason="test over")
        except Exception:  # noqa: BLE001 (ended already)
            pass


async def test_the_main_worker_logs_each_failed_attempt_in_one_line(dev_server, liara_env, tmp_path):
    receiver = Receiver(refusals=REFUSING)
    env = {**liara_env, "LIARA_CONFIG": str(webhook_config(tmp_path, receiver.url)), SECRET_ENV: SECRET}
    worker = await asyncio.to_thread(WorkerProcess, "src/app/temporal/worker.py", env, tmp_path)
    workflow_id = ""
    try:
        workflow_id = await start_failing_crisis(env, tmp_path)
        waited = await cli(env, tmp_path, "wait", workflow_id, "--json")
        assert waited.returncode == 3, waited.stdout + waited.stderr  # both phases failed
        finished = json.loads(waited.stdout)
        assert [phase["status"] for phase in finished["phases"]] == ["failed", "failed"]

        # A fourth attempt at a delivery comes after the third failed (and was logged).
        await assert_eventually(lambda: attempted(receiver, 4), timeout=60, interval=0.2)
    finally:
        code = await asyncio.to_thread(worker.stop)
        if workflow_id:
            await end_deliveries(dev_server.client, workflow_id, receiver)
        receiver.close()
    assert code == 0, worker.output
    assert_no_traceback(worker.output)
    assert not any(line.startswith("INFO - HTTP Request:") for line in worker.lines), "nor httpx's line per request"

    flaky = failure_lines(worker.lines, "Mission phase flaky-1 ")
    assert attempts(flaky) == [1, 2, 3], worker.output
    assert flaky[0] == (
        "WARNING - Mission phase flaky-1 failed on attempt 1: Simulated failure of phase flaky-1 on attempt 1. "
        "Next attempt in 0.1 s."
    )
    assert flaky[-1].endswith("on attempt 3. No attempt is left (3 at most).")
    assert failure_lines(worker.lines, "Mission phase broken-2 ") == [
        "WARNING - Mission phase broken-2 failed on attempt 1: Simulated permanent failure of phase broken-2. "
        "It is not retried."
    ]

    deliveries = failure_lines(worker.lines, f"Webhook delivery {workflow_id}-webhook-")
    per_delivery = Counter(line.split(" failed on attempt ")[0] for line in deliveries)
    assert per_delivery, worker.output
    for delivery in per_delivery:
        mine = [line for line in deliveries if line.startswith(f"{delivery} failed ")]
        assert attempts(mine) == list(range(1, len(mine) + 1)), "one line per attempt, in order"
    assert max(per_delivery.values()) >= 3, worker.output
    event_id = int(re.search(r"-webhook-(\d+)-ops failed", deliveries[0])[1])  # type: ignore[index]
    assert deliveries[0] == (
        f"WARNING - Webhook delivery {workflow_id}-webhook-{event_id}-ops failed on attempt 1: Webhook 'ops' "
        f"answered HTTP 503 to event {event_id}. Next attempt in 1 s. Stop it with "
        f"`liara webhook cancel {workflow_id} --webhook ops`."
    )


async def test_liara_notifier_logs_each_failed_delivery_attempt_in_one_line(
    dev_server, liara_env, liara_worker, tmp_path
):
    receiver = Receiver(refusals=REFUSING)
    env = {**liara_env, "LIARA_CONFIG": str(webhook_config(tmp_path, receiver.url)), SECRET_ENV: SECRET}
    notifier = await asyncio.to_thread(NotifierProcess, env, tmp_path)
    workflow_id = ""
    try:
        started = await cli(env, tmp_path, "trigger", "target-alpha", "recon", "--webhook", "ops", "--json")
        assert started.returncode == 0, started.stderr
        workflow_id = json.loads(started.stdout)["workflow_id"]
        # A third attempt comes after the second failed (and was logged).
        await assert_eventually(lambda: attempted(receiver, 3), timeout=60, interval=0.2)
    finally:
        code = await asyncio.to_thread(notifier.stop)
        if workflow_id:
            await end_deliveries(dev_server.client, workflow_id, receiver)
        receiver.close()
    assert code == 0, notifier.output
    assert_no_traceback(notifier.output)
    lines = failure_lines(notifier.lines, f"Webhook delivery {workflow_id}-webhook-")
    assert attempts(lines)[:2] == [1, 2] and attempts(lines) == list(range(1, len(lines) + 1)), notifier.output
    assert all("answered HTTP 503 to event" in line for line in lines), notifier.output
