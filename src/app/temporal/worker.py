"""Building and running workers: the main worker runs every workflow and activity of the
project, the dedicated Liara worker (cognition/liara/worker.py) the crisis workflow only. Crises
run on the crisis task queue; webhook deliveries on the notification task queue, as ``liara
notifier`` runs them (see app.temporal.notifier); with ``[limits]`` in the configuration, the
limiters of agents' calls on the limits task queue (see app.temporal.limits).

Run the main worker with ``python src/app/temporal/worker.py``. Ctrl+C or SIGTERM stops polling,
gives running activities a grace period to finish, and exits 0. A worker can serve Prometheus
metrics (see app.temporal.metrics), trace with OpenTelemetry (app.temporal.tracing) and log JSON
lines (app.temporal.logs): the command line that chooses them (cognition.liara.commands.worker)
resolves its options into the ``ConnectionSettings`` and ``WorkerOptions`` that ``run_workers``
takes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from app.temporal.activities import CrisisActivities
from app.temporal.agent_steps import AgentStepActivities
from app.temporal.agents import ExecutorRegistry, load_executor_registry
from app.temporal.client import ConnectionSettings, connect
from app.temporal.errors import LiaraError
from app.temporal.limits import describe_limit, limits_task_queue
from app.temporal.limits.serving import limits_worker
from app.temporal.logs import CrisisLogInterceptor, LogFormat, configure_logging
from app.temporal.metrics import METRICS_HOST, worker_runtime, zero_crisis_counters
from app.temporal.notifications import WebhookDeliveryWorkflow, notification_task_queue
from app.temporal.notifier import configured_webhooks, notifier_worker
from app.temporal.records import configured_record_store
from app.temporal.supervisor import run_worker_processes
from app.temporal.tracing import Tracing, start_tracing
from app.temporal.worker_options import MAX_CACHED_WORKFLOWS, WorkerOptions
from app.temporal.workflows import CrisisResponseWorkflow

logger = logging.getLogger("liara.worker")

#: Every workflow of the project; the dedicated Liara worker runs only the crisis workflow.
#: Webhook deliveries run on their own task queue (see _serve).
ALL_WORKFLOWS: list[type] = [CrisisResponseWorkflow, WebhookDeliveryWorkflow]
#: Activities (agents and record writes, all async) a worker runs at once.
MAX_CONCURRENT_ACTIVITIES = 100
#: The worker runs workflows outside the SDK's sandbox. In the sandbox every payload of every
#: activation looks up its serialization context by running code inside the sandbox, which cost
#: 15% of the worker's CPU per crisis (measured; see BENCHMARKS.md). The sandbox's guard against
#: nondeterministic calls (clock, random, I/O) stays where it catches mistakes: the workflow tests
#: and the replays of recorded histories run the workflow fully sandboxed, with the SDK's
#: default runner. The crisis workflow module keeps no state of its own between crises.
WORKFLOW_RUNNER = UnsandboxedWorkflowRunner()


async def serve(
    settings: ConnectionSettings,
    workflows: Sequence[type],
    *,
    graceful_shutdown: timedelta = timedelta(seconds=10),
    stop: asyncio.Event | None = None,
    metrics_port: int | None = None,
    metrics_host: str = METRICS_HOST,
    tracing: bool = False,
    forward_core_logs: bool = False,
    max_cached_workflows: int = MAX_CACHED_WORKFLOWS,
) -> None:
    """Run a worker until ``stop`` is set or the process gets SIGINT/SIGTERM.

    ``metrics_port`` serves Prometheus metrics on ``metrics_host``, ``tracing`` traces with
    OpenTelemetry, ``forward_core_logs`` sends the SDK core's log lines through Python logging and
    ``max_cached_workflows`` bounds the crises kept in memory.
    """
    logger.info("Starting Liara Temporal Agency Worker")
    client_options: dict[str, Any] = {}
    if metrics_port or forward_core_logs:
        client_options["runtime"] = worker_runtime(metrics_port, host=metrics_host, forward_core_logs=forward_core_logs)
    if metrics_port:
        if CrisisResponseWorkflow in workflows:
            zero_crisis_counters(
                client_options["runtime"],
                namespace=settings.namespace,
                task_queue=settings.task_queue,
                workflow_type=CrisisResponseWorkflow.__name__,
            )
        logger.info("Prometheus metrics: http://%s:%d/metrics", _url_host(metrics_host), metrics_port)
    traced: Tracing | None = None
    if tracing:
        traced = start_tracing()
        client_options["plugins"] = [traced.plugin]
        logger.info("OpenTelemetry tracing: spans go to %s", traced.destination)
    try:
        await _serve(settings, workflows, client_options, graceful_shutdown, stop, max_cached_workflows)
    finally:
        if traced:
            traced.shutdown()


async def _serve(
    settings: ConnectionSettings,
    workflows: Sequence[type],
    client_options: dict[str, Any],
    graceful_shutdown: timedelta,
    stop: asyncio.Event | None,
    max_cached_workflows: int,
) -> None:
    store = configured_record_store()  # a bad setting stops the worker before it connects
    # Deliveries run on the notification task queue, in a worker of their own.
    webhooks = configured_webhooks() if WebhookDeliveryWorkflow in workflows else None  # so does a bad [webhooks]
    crisis_workflows = [w for w in workflows if w is not WebhookDeliveryWorkflow]
    client = await connect(settings, **client_options)
    logger.info("Connected to Temporal server at %s, namespace %s", settings.address, settings.namespace)
    executors = load_executor_registry()
    crisis_activities = CrisisActivities(store, executors)
    activities = crisis_activities.all()  # the five the spec's log line counts
    # Called by the workflow's own steps only: a hold on the final write, a language-model agent's model and tool calls.
    own_steps = [crisis_activities.hold_final_write, *AgentStepActivities(executors, store).all()]
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=crisis_workflows,
        activities=[*activities, *own_steps],
        max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
        max_cached_workflows=max_cached_workflows,
        graceful_shutdown_timeout=graceful_shutdown,
        # Heartbeats carry cancellation back to a running agent: send them promptly.
        max_heartbeat_throttle_interval=timedelta(seconds=1),
        # Activity log records carry the crisis, workflow and phase ids (see app.temporal.logs).
        interceptors=[CrisisLogInterceptor()],
        workflow_runner=WORKFLOW_RUNNER,
    )
    logger.info("Liara worker created with %d workflows and %d activities", len(crisis_workflows), len(activities))
    logger.info("Task queue: %s", settings.task_queue)
    if max_cached_workflows != MAX_CACHED_WORKFLOWS:
        logger.info("Crises kept in memory: at most %d", max_cached_workflows)
    logger.info("Crisis records: %s", store.describe())
    logger.info("Agent executors: %s", _describe_executors(executors))
    try:
        async with AsyncExitStack() as running:
            await running.enter_async_context(store)
            await running.enter_async_context(worker)
            if webhooks is not None:
                await running.enter_async_context(
                    notifier_worker(client, webhooks, graceful_shutdown=graceful_shutdown)
                )
                names = ", ".join(webhooks.names()) or "none configured"
                logger.info("Webhook deliveries: task queue %s (webhooks: %s)", notification_task_queue(), names)
            # The limiters of [limits], fleet-wide, beside the crises whose agents wait for them.
            limits = executors.limits if CrisisResponseWorkflow in crisis_workflows else []
            if limits:
                await running.enter_async_context(
                    limits_worker(client, settings.task_queue, graceful_shutdown=graceful_shutdown)
                )
                described = "; ".join(describe_limit(limit) for limit in limits)
                logger.info(
                    "Limits across the fleet: %s (task queue %s)", described, limits_task_queue(settings.task_queue)
                )
            logger.info("Liara worker is running. Press Ctrl+C to stop.")
            await stop.wait()
            logger.info("Shutting down: running activities get %g s to finish", graceful_shutdown.total_seconds())
    finally:
        await executors.aclose()
    logger.info("Liara worker stopped")


def _url_host(host: str) -> str:
    """``host`` as it goes in a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _describe_executors(executors: ExecutorRegistry) -> str:
    described = executors.describe()
    actions = {**described["actions"], **described["environment_overrides"]}
    mapping = ", ".join(f"{action} -> {name}" for action, name in actions.items())
    source = described["source"] or "built-in defaults"
    return f"default {described['default']}" + (f"; {mapping}" if mapping else "") + f" ({source})"


def run_worker(settings: ConnectionSettings, workflows: Sequence[type], options: WorkerOptions) -> int:
    """One worker in this process; returns the exit code (1 with one sentence for a user error)."""
    configure_logging(options.log_level, options.log_format)
    try:
        asyncio.run(
            serve(
                settings,
                workflows,
                graceful_shutdown=options.graceful_shutdown,
                metrics_port=options.metrics_port,
                metrics_host=options.metrics_host,
                tracing=options.tracing,
                max_cached_workflows=options.max_cached_workflows,
                # JSON logs stay JSON: the core's lines go through the same handler.
                forward_core_logs=options.log_format == LogFormat.JSON,
            )
        )
    except LiaraError as err:
        logger.error("%s", err)
        return 1
    return 0


def run_workers(settings: ConnectionSettings, workflows: Sequence[type], options: WorkerOptions, processes: int) -> int:
    """``processes`` workers on this machine, each a process of its own (see app.temporal.supervisor),
    or one in this process; returns the exit code.
    """
    if processes == 1:
        return run_worker(settings, workflows, options)
    return run_worker_processes(processes, run_worker, settings, workflows, options)


if __name__ == "__main__":
    # A script entry point (the spec's `python src/app/temporal/worker.py`): its command line is the agency's.
    from cognition.liara.commands.worker import run_as_program, worker_command

    description = "Run the main worker: every workflow and activity of the project."
    run_as_program(worker_command(ALL_WORKFLOWS, description, run_workers))
