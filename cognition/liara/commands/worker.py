"""The workers' command line: ``liara worker``, ``python cognition/liara/worker.py`` and
``python src/app/temporal/worker.py`` take the same options.

A command resolves where to connect and how the worker runs into typed settings
(``ConnectionSettings``, ``WorkerOptions``) and hands them to the runner its entry point gives
it, the engine's ``run_workers``. The main worker's script is app.temporal.worker itself and
builds its command here, so this module imports nothing of that module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, NoReturn

import typer

from app.temporal.client import ConnectionSettings, run_and_exit
from app.temporal.errors import LiaraError
from app.temporal.logs import LogFormat, configure_logging
from app.temporal.metrics import METRICS_HOST, METRICS_HOST_ENV, METRICS_PORT_ENV
from app.temporal.tracing import TRACING_ENV
from app.temporal.worker_options import MAX_CACHED_WORKFLOWS, MAX_CACHED_WORKFLOWS_ENV, WorkerOptions
from cognition.liara.commands.connection import Connection
from cognition.liara.commands.options import AddressOption, NamespaceOption, ProfileOption, TaskQueueOption
from cognition.liara.commands.usage import readable

logger = logging.getLogger("liara.worker")

#: Runs workers for ``workflows`` on this many processes and returns the exit code:
#: ``run_workers(settings, workflows, options, processes)`` of app.temporal.worker.
WorkerRun = Callable[[ConnectionSettings, Sequence[type], WorkerOptions, int], int]


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


def worker_command(workflows: Sequence[type], description: str, run: WorkerRun) -> Callable[..., None]:
    """A Typer command running workers for ``workflows`` with ``run``; shared by every worker entry point."""

    def command(
        ctx: typer.Context,
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
        log_format: Annotated[
            LogFormat,
            typer.Option(
                case_sensitive=False,
                envvar="LIARA_LOG_FORMAT",
                help="text: LEVEL - message lines; json: one JSON object per line, with crisis_id, "
                "workflow_id and phase_id when known",
            ),
        ] = LogFormat.TEXT,
        metrics_port: Annotated[
            int,
            typer.Option(
                min=0,
                max=65535,
                envvar=METRICS_PORT_ENV,
                help="Serve Prometheus metrics on http://HOST:PORT/metrics (0: none); "
                "with --processes N, worker k uses PORT+k-1",
            ),
        ] = 0,
        metrics_host: Annotated[
            str,
            typer.Option(
                envvar=METRICS_HOST_ENV,
                help="Interface the metrics endpoint listens on: 127.0.0.1 is this machine only, "
                "0.0.0.0 every interface (for a Prometheus elsewhere or a container)",
            ),
        ] = METRICS_HOST,
        tracing: Annotated[
            bool,
            typer.Option(
                "--tracing",
                envvar=TRACING_ENV,
                help="Trace workflows and activities with OpenTelemetry (to OTEL_EXPORTER_OTLP_ENDPOINT, "
                "else standard output); needs the tracing extra",
            ),
        ] = False,
        max_cached_workflows: Annotated[
            int,
            typer.Option(
                min=0,
                max=1_000_000,
                envvar=MAX_CACHED_WORKFLOWS_ENV,
                help="Crises kept in memory between their steps (0: none); one out of memory is replayed "
                "from its history when it has work again, so this bounds the worker's memory",
            ),
        ] = MAX_CACHED_WORKFLOWS,
    ) -> None:
        configure_logging(log_level.value, log_format.value)
        if metrics_port and metrics_port + processes - 1 > 65535:
            raise typer.BadParameter(
                f"{processes} worker processes need ports {metrics_port} to {metrics_port + processes - 1}; "
                "choose a lower port.",
                param_hint="'--metrics-port'",
            )
        # ``liara --address A worker`` means what ``liara worker --address A`` does.
        given: Connection | None = ctx.find_object(Connection)
        try:
            if given is not None and given.api:
                raise LiaraError("A worker runs on Temporal itself, not through the service: leave out --api.")
            before = given or Connection(None, None, None, None)
            settings = ConnectionSettings.resolve(
                address=address or before.address,
                namespace=namespace or before.namespace,
                task_queue=task_queue or before.task_queue,
                profile=profile or before.profile,
            )
        except LiaraError as err:
            logger.error("%s", err)
            raise typer.Exit(1) from None
        options = WorkerOptions(
            graceful_shutdown=timedelta(seconds=graceful_shutdown),
            log_level=log_level.value,
            log_format=log_format.value,
            metrics_port=metrics_port or None,
            metrics_host=metrics_host,
            tracing=tracing,
            max_cached_workflows=max_cached_workflows,
        )
        raise typer.Exit(run(settings, workflows, options, processes))

    command.__doc__ = description
    return command


def run_as_program(command: Callable[..., None]) -> NoReturn:
    """Run ``command`` as a program of its own: a worker script's whole command line."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(command)
    run_and_exit(readable(app))
