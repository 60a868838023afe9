"""``liara doctor``: check everything a crisis needs and say what to fix.

Checks, in order: the server answers and the namespace exists; the crisis search attributes are
registered; workers poll the crisis task queue; its backlog is not piling up; and, on this
machine, the executor configuration loads and the record store can be written (the record
directory, or the PostgreSQL database: reachable, its schema version, the user's permissions);
and, with ``[limits]`` in the configuration, the limits in force, the permits of each in use and
the steps waiting for one, and whether workers poll the limits task queue.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from app.temporal.agents import ExecutorRegistry, load_executor_registry
from app.temporal.client import START_SERVER_HINT, ConnectionSettings
from app.temporal.errors import LiaraError, TemporalUnavailableError
from app.temporal.limits import describe_limit, limits_task_queue
from app.temporal.limits.serving import limiter_status
from app.temporal.records import configured_record_store
from app.temporal.visibility import missing_search_attributes
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.diagnostics import live_pollers

#: A task waiting longer than this for a worker means the workers cannot keep up.
BACKLOG_AGE_WARNING = timedelta(seconds=30)
START_WORKER_HINT = "start one with `python cognition/liara/worker.py` (or `liara worker --processes N`)"
CONNECTION_FIX = (
    "start the server (`python scripts/setup_temporal.py start`), or point --address / TEMPORAL_ADDRESS and "
    "--namespace / TEMPORAL_NAMESPACE at a running server and an existing namespace"
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


async def diagnose(agency: LiaraTemporalAgency) -> list[Check]:
    """Every check's outcome; stops after the connection check if the server cannot be used."""
    settings = agency.settings
    try:
        client = await agency.connect()
    except LiaraError as err:
        fix = CONNECTION_FIX if isinstance(err, TemporalUnavailableError) else "fix what the message names"
        return [Check("connection", False, str(err), fix), *await _local_checks()]
    checks = [
        Check("connection", True, f"Temporal server at {settings.address} answers; namespace {settings.namespace!r}"),
        await _search_attributes_check(client, settings),
    ]
    for kind, label in (
        (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, "workflow"),
        (TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, "activity"),
    ):
        checks += await _task_queue_checks(client, settings, kind, label)
    return [*checks, *await _local_checks(client, settings)]


def _server_fix(err: RPCError, settings: ConnectionSettings, otherwise: str) -> str:
    """What to do about a server call that failed, by how it failed; ``otherwise`` for the rest."""
    if err.status == RPCStatusCode.NOT_FOUND:
        return (
            f"create namespace {settings.namespace!r} (`temporal operator namespace create --namespace "
            f"{settings.namespace}`) or point --namespace / TEMPORAL_NAMESPACE at an existing one"
        )
    if err.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED):
        return (
            f"connect with credentials (TEMPORAL_API_KEY, a TLS client certificate or --profile) allowed to read "
            f"namespace {settings.namespace!r}"
        )
    if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return f"the server at {settings.address} stopped answering: {START_SERVER_HINT}"
    return otherwise


async def _search_attributes_check(client: Client, settings: ConnectionSettings) -> Check:
    name = "search attributes"
    try:
        missing = await missing_search_attributes(client, settings.namespace)
    except RPCError as err:
        return Check(name, False, f"cannot list them: {err.message}", _server_fix(err, settings, "run `liara setup`"))
    if missing:
        return Check(name, False, f"missing: {', '.join(missing)}", "run `liara setup`")
    return Check(name, True, "CrisisTarget, CrisisStatus and CrisisInitiatedBy are registered")


async def _task_queue_checks(
    client: Client, settings: ConnectionSettings, kind: TaskQueueType.ValueType, label: str
) -> list[Check]:
    """The workers and backlog checks of one kind of task on the crisis task queue."""
    try:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.namespace,
                task_queue=TaskQueue(name=settings.task_queue),
                task_queue_type=kind,
                report_stats=True,
            )
        )
    except RPCError as err:
        detail = f"cannot describe task queue {settings.task_queue!r}: {err.message}"
        fix = _server_fix(
            err,
            settings,
            "point --task-queue / LIARA_TASK_QUEUE at the queue the workers poll"
            if err.status == RPCStatusCode.INVALID_ARGUMENT
            else f"see the Temporal server's log for why it refused ({err.status.name})",
        )
        return [Check(f"{label} workers", False, detail, fix), Check(f"{label} backlog", False, detail, fix)]
    pollers = live_pollers(response.pollers)
    return [
        _pollers_check(label, settings.task_queue, pollers),
        _backlog_check(
            label,
            response.stats.approximate_backlog_count,
            response.stats.approximate_backlog_age.ToTimedelta(),
            pollers,
        ),
    ]


def _pollers_check(label: str, task_queue: str, pollers: int) -> Check:
    name = f"{label} workers"
    if pollers == 0:
        return Check(name, False, f"no worker polls {task_queue!r} for {label} tasks", START_WORKER_HINT)
    return Check(name, True, f"{pollers} poller(s) on {task_queue!r}")


def _backlog_check(label: str, count: int, age: timedelta, pollers: int) -> Check:
    name = f"{label} backlog"
    detail = f"about {count} task(s) waiting, oldest {age.total_seconds():.1f} s"
    if count and not pollers:
        return Check(name, False, detail, START_WORKER_HINT)
    if age > BACKLOG_AGE_WARNING:
        return Check(name, False, detail, "the workers cannot keep up: add workers (`liara worker --processes N`)")
    return Check(name, True, detail)


async def _local_checks(client: Client | None = None, settings: ConnectionSettings | None = None) -> list[Check]:
    """What a worker started from this directory would use (and, connected, how its limits stand)."""
    checks = []
    try:
        registry = load_executor_registry()
    except LiaraError as err:
        checks.append(Check("executor configuration", False, str(err), "fix the file or variable it names"))
    else:
        source = registry.describe()["source"] or "built-in defaults (every action simulated)"
        checks.append(Check("executor configuration", True, f"loads from {source}"))
        if registry.limits:
            checks.append(await _limits_check(registry, client, settings))
    try:
        store = configured_record_store()
    except LiaraError as err:
        checks.append(Check("crisis records", False, str(err), "fix the setting it names"))
        return checks
    health = await store.check()
    checks.append(Check("crisis records", health.ok, health.detail, health.fix))
    return checks


async def _limits_check(
    registry: ExecutorRegistry, client: Client | None, settings: ConnectionSettings | None
) -> Check:
    """The limits of ``[limits]``, each with its permits in use and its steps waiting (as its
    limiter says, if it runs), and whether workers poll the limits task queue.
    """
    name = "limits"
    limits = registry.limits
    listed = "; ".join(describe_limit(limit) for limit in limits)
    if client is None or settings is None:  # the connection check says why
        return Check(name, True, listed)
    queue = limits_task_queue(settings.task_queue)
    try:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.namespace,
                task_queue=TaskQueue(name=queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
    except RPCError as err:
        return Check(
            name,
            False,
            f"{listed}; cannot describe task queue {queue!r}: {err.message}",
            _server_fix(err, settings, f"see the Temporal server's log for why it refused ({err.status.name})"),
        )
    if not live_pollers(response.pollers):
        fix = f"start workers with this configuration: a worker with [limits] polls {queue!r} ({START_WORKER_HINT})"
        return Check(name, False, f"{listed}; no worker polls {queue!r}, so limited calls wait", fix)
    described = []
    for limit in limits:
        try:
            status = await limiter_status(client, settings.task_queue, limit)
        except (RPCError, WorkflowQueryFailedError) as err:
            described.append(f"{describe_limit(limit)} (in use: unknown, {err})")
            continue
        if status is None:
            described.append(f"{describe_limit(limit)} (none in use)")
        else:
            described.append(f"{describe_limit(limit)} ({status.in_use} in use, {status.waiting} waiting)")
    return Check(name, True, "; ".join(described))
