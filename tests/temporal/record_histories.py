"""Record the histories that ``test_replay.py`` replays: ``python -m tests.temporal.record_histories``.

Run it after a deliberate, versioned change to the crisis workflow, and commit the new files
next to the old ones: old histories must keep replaying, since in-flight crises were started
with them.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory

from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from app.temporal.models import AgentReport, PhaseAssignment
from app.temporal.records import CrisisRecordStore
from app.temporal.workflows import CrisisResponseWorkflow
from tests.temporal.test_liara_workflows import crisis_request, crisis_worker

HISTORIES = Path(__file__).resolve().parent / "histories"


@activity.defn(name="perform_agent_mission")
async def secure_fails_twice_then_always(assignment: PhaseAssignment) -> AgentReport:
    """``secure`` never succeeds; ``extract`` succeeds on its second attempt."""
    phase, attempt = assignment.phase, activity.info().attempt
    if phase.action == "secure" or (phase.action == "extract" and attempt == 1):
        raise ApplicationError(f"{phase.action} failed on attempt {attempt}")
    return AgentReport(phase_id=phase.phase_id, agent_id=phase.agent_id, attempt=attempt)


async def record() -> None:
    test_server = shutil.which("temporal-test-server", path=str(Path(sys.executable).parent))
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=test_server
    )
    scenarios = {
        "crisis_completed": (crisis_request("crisis-replay-completed"), None),
        "crisis_phase_failed": (crisis_request("crisis-replay-phase-failed"), secure_fails_twice_then_always),
    }
    with TemporaryDirectory() as records, ThreadPoolExecutor() as executor:
        for name, (request, mission) in scenarios.items():
            queue = str(uuid.uuid4())
            async with crisis_worker(env.client, queue, CrisisRecordStore(Path(records)), executor, mission):
                handle = await env.client.start_workflow(
                    CrisisResponseWorkflow.run, request, id=f"crisis-workflow-{request.crisis_id}", task_queue=queue
                )
                try:
                    await handle.result()
                except WorkflowFailureError:
                    pass
            history = await handle.fetch_history()
            (HISTORIES / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
