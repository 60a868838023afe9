"""Main worker: every workflow and activity of the project on the crisis task queue.

Run it with ``python src/app/temporal/worker.py``. Ctrl+C or SIGTERM stops polling, gives
running activities a grace period to finish, and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import typer
from temporalio import workflow
from temporalio.worker import Worker

from app.temporal.activities import CrisisActivities
from app.temporal.client import ConnectionSettings, connect, run_and_exit
from app.temporal.config import ExecutorRegistry, load_executor_registry
from app.temporal.errors import LiaraError
from app.temporal.records import CrisisRecordStore
from app.temporal.workflows import CrisisResponseWorkflow

logger = logging.getLogger("liara.worker")

#: Every workflow of the project; the dedicated Liara worker runs only the crisis workflow.
ALL_WORKFLOWS: list[type] = [CrisisResponseWorkflow]
#: Sync activities (record writes) run on this many threads; it also caps concurrent activities.
MAX_CONCURRENT_ACTIVITIES = 100


# Connection options of every command line (workers and `liara`); see app.temporal.client.
AddressOption = Annotated[
    str | None, typer.Option(help="Temporal frontend host:port (env TEMPORAL_ADDRESS; default localhost:7233)")
]
NamespaceOption = Annotated[
    str | None, typer.Option(help="Temporal namespace (env TEMPORAL_NAMESPACE; default default)")
]
TaskQueueOption = Annotated[
    str | None, typer.Option(help="Crisis task queue (env LIARA_TASK_QUEUE; default liara-crisis-tasks)")
]
ProfileOption = Annotated[str | None, typer.Option(help="Profile of temporal.toml to use (env TEMPORAL_PROFILE)")]


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


def configure_logging(level: str = "INFO") -> None:
    """``LEVEL - message`` lines, as the quick reference shows them (prefixed by the worker
    process's name when several run side by side).
    """
    child = multiprocessing.parent_process() is not None
    layout = "%(levelname)s - [%(processName)s] %(message)s" if child else "%(levelname)s - %(message)s"
    logging.basicConfig(level=level.upper(), format=layout, force=True)
    # The ids are in our own messages already; the SDK would append its whole info dict.
    workflow.logger.workflow_info_on_message = False


async def serve(
    settings: ConnectionSettings,
    workflows: Sequence[type],
    *,
    graceful_shutdown: timedelta = timedelta(seconds=10),
    stop: asyncio.Event | None = None,
) -> None:
    """Run a worker until ``stop`` is set or the process gets SIGINT/SIGTERM."""
    logger.info("Starting Liara Temporal Agency Worker")
    client = await connect(settings)
    logger.info("Connected to Temporal server")
    store = CrisisRecordStore.from_environment()
    executors = load_executor_registry()
    activities = CrisisActivities(store, executors).all()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_ACTIVITIES) as executor:
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=list(workflows),
            activities=activities,
            activity_executor=executor,
            max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
            graceful_shutdown_timeout=graceful_shutdown,
            # Heartbeats carry cancellation back to a running agent: send them promptly.
            max_heartbeat_throttle_interval=timedelta(seconds=1),
        )
        logger.info("Liara worker created with %d workflows and %d activities", len(workflows), len(activities))
        logger.info("Task queue: %s", settings.task_queue)
        logger.info("Crisis records: %s", store.directory)
        logger.info("Agent executors: %s", _describe_executors(executors))
        try:
            async with worker:
                logger.info("Liara worker is running. Press Ctrl+C to stop.")
                await stop.wait()
                logger.info("Shutting down: running activities get %g s to finish", graceful_shutdown.total_seconds())
        finally:
            await executors.aclose()
    logger.info("Liara worker stopped")


def _describe_executors(executors: ExecutorRegistry) -> str:
    described = executors.describe()
    actions = {**described["actions"], **described["environment_overrides"]}
    mapping = ", ".join(f"{action} -> {name}" for action, name in actions.items())
    source = described["source"] or "built-in defaults"
    return f"default {described['default']}" + (f"; {mapping}" if mapping else "") + f" ({source})"


def run_worker(
    settings: ConnectionSettings, workflows: Sequence[type], graceful_shutdown: timedelta, log_level: str
) -> int:
    """One worker in this process; returns the exit code (1 with one sentence for a user error)."""
    configure_logging(log_level)
    try:
        asyncio.run(serve(settings, workflows, graceful_shutdown=graceful_shutdown))
    except LiaraError as err:
        logger.error("%s", err)
        return 1
    return 0


def _worker_process(
    settings: ConnectionSettings, workflows: Sequence[type], graceful_shutdown: timedelta, log_level: str
) -> None:
    # Runs in a spawned child: its exit code is the worker's.
    sys.exit(run_worker(settings, workflows, graceful_shutdown, log_level))


def run_worker_processes(
    count: int, settings: ConnectionSettings, workflows: Sequence[type], graceful_shutdown: timedelta, log_level: str
) -> int:
    """``count`` worker processes on the same task queue; SIGINT/SIGTERM stop them all gracefully.

    Each process has its own worker identity (pid@host), so Temporal spreads crises between them.
    """
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(
            target=_worker_process,
            args=(settings, list(workflows), graceful_shutdown, log_level),
            name=f"worker-{index}",
        )
        for index in range(1, count + 1)
    ]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.is_alive() and child.pid:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for child in children:
        child.join()
    return 0 if all(child.exitcode == 0 for child in children) else 1


def worker_command(workflows: Sequence[type], description: str) -> Callable[..., None]:
    """A Typer command running a worker for ``workflows``; shared by every worker entry point."""

    def command(
        address: AddressOption = None,
        namespace: NamespaceOption = None,
        task_queue: TaskQueueOption = None,
        profile: ProfileOption = None,
        processes: Annotated[
            int, typer.Option(min=1, max=64, help="Worker processes to run on this machine (each its own worker)")
        ] = 1,
        graceful_shutdown: Annotated[
            float, typer.Option(min=0, help="Seconds running activities get to finish after Ctrl+C or SIGTERM")
        ] = 10.0,
        log_level: Annotated[
            LogLevel, typer.Option(case_sensitive=False, help="Least severe level to log")
        ] = LogLevel.INFO,
    ) -> None:
        configure_logging(log_level.value)
        try:
            settings = ConnectionSettings.resolve(
                address=address, namespace=namespace, task_queue=task_queue, profile=profile
            )
        except LiaraError as err:
            logger.error("%s", err)
            raise typer.Exit(1) from None
        grace = timedelta(seconds=graceful_shutdown)
        if processes == 1:
            code = run_worker(settings, workflows, grace, log_level.value)
        else:
            code = run_worker_processes(processes, settings, workflows, grace, log_level.value)
        raise typer.Exit(code)

    command.__doc__ = description
    return command


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(worker_command(ALL_WORKFLOWS, "Run the main worker: every workflow and activity of the project."))
    run_and_exit(app)


if __name__ == "__main__":
    main()
