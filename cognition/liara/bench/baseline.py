"""The bare baseline of ``liara bench``: a plain workflow running P no-op activities in turn.

It is what a crisis of P phases would cost with no records, no validation and no agents, on the
same server and the same kind of worker process, so the benchmark can report Liara's overhead as
a ratio. Run its worker with ``python -m cognition.liara.bench.baseline --task-queue Q``: with the
SDK's defaults (the workflow sandbox included), or with ``--unsandboxed`` outside the sandbox, as
Liara's worker runs its workflow.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta
from typing import Annotated

from temporalio import activity, workflow

# The sandbox re-imports this module for every workflow run: pass the worker side through.
with workflow.unsafe.imports_passed_through():
    import typer
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

    from app.temporal.client import ConnectionSettings, connect, run_and_exit
    from cognition.liara.commands.options import AddressOption


@activity.defn(name="baseline_noop")
async def baseline_noop(step: int) -> int:
    return step


@workflow.defn
class BaselineWorkflow:
    @workflow.run
    async def run(self, phases: int) -> int:
        for step in range(phases):
            await workflow.execute_activity(baseline_noop, step, start_to_close_timeout=timedelta(seconds=30))
        return phases


async def serve_baseline(settings: ConnectionSettings, *, unsandboxed: bool = False) -> None:
    client = await connect(settings)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[BaselineWorkflow],
        activities=[baseline_noop],
        workflow_runner=UnsandboxedWorkflowRunner() if unsandboxed else SandboxedWorkflowRunner(),
    ):
        print("Baseline worker is running", flush=True)
        await stop.wait()


def main(
    address: AddressOption = None,
    task_queue: Annotated[str, typer.Option(help="Task queue to poll")] = "liara-baseline",
    unsandboxed: Annotated[
        bool, typer.Option(help="Run the workflow outside the sandbox, as Liara's worker does")
    ] = False,
) -> None:
    """Run a worker for the bare baseline workflow."""
    settings = ConnectionSettings.resolve(address=address, task_queue=task_queue)
    asyncio.run(serve_baseline(settings, unsandboxed=unsandboxed))


if __name__ == "__main__":
    run_and_exit(lambda: typer.run(main))
