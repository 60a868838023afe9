"""How a worker process runs, beyond where it connects: the typed settings a command line
resolves its options into (cognition.liara.commands.worker) and app.temporal.worker runs
workers with. A module of its own so that the command line needs nothing else of the engine's
worker, which hands its own entry point to that command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from app.temporal.logs import LogFormat
from app.temporal.metrics import METRICS_HOST

#: Crises a worker keeps in memory between their workflow tasks (the SDK's sticky cache). A crisis
#: out of the cache costs nothing until it has work again, when it is replayed from its history:
#: the setting bounds a worker's memory however many crises wait, e.g. at an approval gate.
MAX_CACHED_WORKFLOWS = 1000
MAX_CACHED_WORKFLOWS_ENV = "LIARA_MAX_CACHED_WORKFLOWS"


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker process runs, beyond where it connects."""

    graceful_shutdown: timedelta = timedelta(seconds=10)
    log_level: str = "INFO"
    log_format: str = LogFormat.TEXT.value
    #: Serve Prometheus metrics on this port; None for no metrics endpoint.
    metrics_port: int | None = None
    #: Interface of the metrics endpoint: this machine only by default, 0.0.0.0 for every one.
    metrics_host: str = METRICS_HOST
    #: Trace workflows and activities with OpenTelemetry (see app.temporal.tracing).
    tracing: bool = False
    #: Crises kept in memory between workflow tasks (see MAX_CACHED_WORKFLOWS).
    max_cached_workflows: int = MAX_CACHED_WORKFLOWS
