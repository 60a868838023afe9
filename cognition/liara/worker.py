"""Dedicated Liara worker: the crisis workflow and its five activities only.

Run it with ``python cognition/liara/worker.py`` (or ``liara worker``); start as many as you
like on the same task queue and Temporal spreads the crises between them.
"""

from __future__ import annotations

import typer

from app.temporal.client import run_and_exit
from app.temporal.worker import worker_command
from app.temporal.workflows import CrisisResponseWorkflow

CRISIS_WORKFLOWS: list[type] = [CrisisResponseWorkflow]

liara_worker_command = worker_command(
    CRISIS_WORKFLOWS, "Run a dedicated Liara worker: the crisis workflow and its activities on the crisis task queue."
)


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(liara_worker_command)
    run_and_exit(app)


if __name__ == "__main__":
    main()
