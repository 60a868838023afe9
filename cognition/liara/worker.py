"""Dedicated Liara worker: the crisis workflow and its five activities only.

Run it with ``python cognition/liara/worker.py`` (or ``liara worker``); start as many as you
like on the same task queue and Temporal spreads the crises between them.
"""

from __future__ import annotations

from app.temporal.worker import run_workers
from app.temporal.workflows import CrisisResponseWorkflow
from cognition.liara.commands.worker import run_as_program, worker_command

CRISIS_WORKFLOWS: list[type] = [CrisisResponseWorkflow]

liara_worker_command = worker_command(
    CRISIS_WORKFLOWS,
    "Run a dedicated Liara worker: the crisis workflow and its activities on the crisis task queue.",
    run_workers,
)


def main() -> None:
    run_as_program(liara_worker_command)


if __name__ == "__main__":
    main()
