"""Run one crisis end to end through the Python API and print its result.

Needs a Temporal server and a worker:

    python scripts/setup_temporal.py start
    python cognition/liara/worker.py          # in another terminal
    python examples/temporal/liara_crisis_example.py
"""

from __future__ import annotations

import asyncio
import json

from app.temporal.client import run_and_exit
from cognition.liara import LiaraError
from cognition.liara.agency import LiaraTemporalAgency

TARGET = "target-alpha"
MISSIONS = [
    {
        "phase_id": "recon-phase-1",
        "agent_id": "recon-agent-001",
        "action": "reconnaissance",
        "target": TARGET,
        "priority": 1,
    },
    {"phase_id": "secure-phase-2", "agent_id": "secure-agent-001", "action": "secure", "target": TARGET, "priority": 2},
    {
        "phase_id": "extract-phase-3",
        "agent_id": "extract-agent-001",
        "action": "extract",
        "target": TARGET,
        "priority": 3,
    },
    {
        "phase_id": "cleanup-phase-4",
        "agent_id": "cleanup-agent-001",
        "action": "cleanup",
        "target": TARGET,
        "priority": 4,
    },
]


async def run_example() -> int:
    async with LiaraTemporalAgency() as agency:
        if await agency.pollers() == 0:
            print(
                f"No worker polls task queue {agency.settings.task_queue!r}: start one with "
                "`python cognition/liara/worker.py`, then run this example again."
            )
            return 1
        workflow_id = await agency.trigger_crisis_response(
            target_member=TARGET, missions=MISSIONS, initiated_by="liara-crisis-example"
        )
        print(f"Started {workflow_id}")
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=120)
    print(json.dumps(result, indent=2))
    print(f"Success: {result['success']}")
    return 0 if result["success"] else 3


def main() -> None:
    try:
        code = asyncio.run(run_example())
    except LiaraError as err:
        print(f"Error: {err}")
        code = 1
    raise SystemExit(code)


if __name__ == "__main__":
    run_and_exit(main)
