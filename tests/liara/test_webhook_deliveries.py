"""``liara webhook list|cancel``: a crisis's deliveries to a receiver that keeps failing are listed
with their attempts and stopped, one webhook's or all, while the main worker keeps retrying them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from cognition.liara import webhook_deliveries
from cognition.liara.agency import LiaraTemporalAgency
from tests.helpers import assert_eventually
from tests.helpers.cli import assert_one_sentence_error, cli
from tests.helpers.processes import WorkerProcess
from tests.helpers.webhooks import REFUSING, SECRET, SECRET_ENV, Receiver, webhook_config

pytestmark = pytest.mark.integration


async def pending(env: dict[str, str], cwd: Path, workflow_id: str, *args: str) -> list[dict[str, Any]]:
    listed = await cli(env, cwd, "webhook", "list", workflow_id, *args, "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


async def test_a_crisis_s_failing_deliveries_are_listed_and_cancelled(dev_server, liara_env, tmp_path):
    receiver = Receiver(refusals=REFUSING)
    config = webhook_config(tmp_path, receiver.url, "ops", "audit")
    env = {**liara_env, "LIARA_CONFIG": str(config), SECRET_ENV: SECRET}
    worker = await asyncio.to_thread(WorkerProcess, "src/app/temporal/worker.py", env, tmp_path)
    try:
        started = await cli(
            env, tmp_path, "trigger", "target-alpha", "recon", "--webhook", "ops", "--webhook", "audit", "--json"
        )
        assert started.returncode == 0, started.stderr
        workflow_id = json.loads(started.stdout)["workflow_id"]

        # Waited for through the Python API (what `liara webhook list` prints): no CLI process per poll.
        async with LiaraTemporalAgency(
            temporal_host=env["TEMPORAL_ADDRESS"], task_queue=env["LIARA_TASK_QUEUE"]
        ) as api:

            async def both_retried() -> bool:
                rows = await webhook_deliveries.pending(await api.connect(), api.settings, workflow_id)
                return sorted(row["webhook"] for row in rows if row["attempt"] >= 2) == ["audit", "ops"]

            await assert_eventually(both_retried, timeout=60, interval=0.2)
        [ops] = await pending(env, tmp_path, workflow_id, "--webhook", "ops")
        assert ops["delivery_id"] == f"{workflow_id}-webhook-{ops['event_id']}-ops"
        assert ops["last_failure"] == f"Webhook 'ops' answered HTTP 503 to event {ops['event_id']}."
        shown = await cli(env, tmp_path, "webhook", "list", workflow_id)
        assert "answered HTTP 503" in shown.stdout and "audit" in shown.stdout, shown.stdout

        cancelled = await cli(env, tmp_path, "webhook", "cancel", workflow_id, "--webhook", "ops")
        assert cancelled.returncode == 0, cancelled.stderr
        lines = cancelled.stdout.strip().splitlines()
        assert lines[0] == f"Cancelled 1 webhook delivery of {workflow_id}:"
        assert lines[1].startswith(f"  event {ops['event_id']} to ops (attempt "), lines
        assert len(lines) == 2, cancelled.stdout
        ended = await dev_server.client.get_workflow_handle(ops["delivery_id"]).describe()
        assert ended.status == WorkflowExecutionStatus.TERMINATED
        [audit] = await pending(env, tmp_path, workflow_id)
        assert audit["webhook"] == "audit", "the other webhook's delivery goes on"

        everything = await cli(env, tmp_path, "webhook", "cancel", workflow_id, "--json")
        assert everything.returncode == 0, everything.stderr
        assert [row["delivery_id"] for row in json.loads(everything.stdout)] == [audit["delivery_id"]]
        assert await pending(env, tmp_path, workflow_id) == []
        again = await cli(env, tmp_path, "webhook", "cancel", workflow_id)
        assert (again.returncode, again.stdout.strip()) == (
            0,
            f"No webhook deliveries of {workflow_id} are under way: nothing to cancel.",
        )
    finally:
        code = await asyncio.to_thread(worker.stop)
        receiver.close()
    assert code == 0, worker.output


async def test_cancelling_the_deliveries_of_a_crisis_that_does_not_exist_is_one_sentence(liara_env, tmp_path):
    for command in ("cancel", "list"):
        refused = await cli(liara_env, tmp_path, "webhook", command, "crisis-workflow-no-such-crisis")
        assert refused.returncode == 1
        assert assert_one_sentence_error(refused.stderr) == (
            "Error: No crisis workflow 'crisis-workflow-no-such-crisis' in namespace 'default': "
            "check the id printed by `liara trigger`."
        )
