"""``liara doctor``: check everything a crisis needs and say what to fix.

Checks, in order: the server answers and the namespace exists; the crisis search attributes are
registered; workers poll the crisis task queue; its backlog is not piling up; and, on this
machine, the executor configuration loads and the record directory is writable.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError

from app.temporal.config import load_executor_registry
from app.temporal.errors import LiaraError
from app.temporal.records import CrisisRecordStore
from app.temporal.visibility import missing_search_attributes
from cognition.liara.agency import LiaraTemporalAgency

#: A task waiting longer than this for a worker means the workers cannot keep up.
BACKLOG_AGE_WARNING = timedelta(seconds=30)
START_WORKER_HINT = "start one with `python cognition/liara/worker.py` (or `liara worker --processes N`)"


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
        return [Check("connection", False, str(err)), *_local_checks()]
    checks = [
        Check("connection", True, f"Temporal server at {settings.address} answers; namespace {settings.namespace!r}")
    ]
    try:
        missing = await missing_search_attributes(client, settings.namespace)
    except RPCError as err:
        checks.append(Check("search attributes", False, f"cannot list them: {err.message}", "run `liara setup`"))
    else:
        checks.append(
            Check("search attributes", False, f"missing: {', '.join(missing)}", "run `liara setup`")
            if missing
            else Check("search attributes", True, "CrisisTarget, CrisisStatus and CrisisInitiatedBy are registered")
        )
    for kind, label in (
        (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, "workflow"),
        (TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, "activity"),
    ):
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.namespace,
                task_queue=TaskQueue(name=settings.task_queue),
                task_queue_type=kind,
                report_stats=True,
            )
        )
        checks.append(_pollers_check(label, settings.task_queue, len(response.pollers)))
        checks.append(
            _backlog_check(
                label,
                response.stats.approximate_backlog_count,
                response.stats.approximate_backlog_age.ToTimedelta(),
                len(response.pollers),
            )
        )
    return [*checks, *_local_checks()]


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


def _local_checks() -> list[Check]:
    """What a worker started from this directory would use."""
    checks = []
    try:
        registry = load_executor_registry()
    except LiaraError as err:
        checks.append(Check("executor configuration", False, str(err), "fix the file or variable it names"))
    else:
        source = registry.describe()["source"] or "built-in defaults (every action simulated)"
        checks.append(Check("executor configuration", True, f"loads from {source}"))
    directory = CrisisRecordStore.from_environment().directory
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        checks.append(
            Check(
                "crisis records",
                False,
                f"{directory} is not writable here: {err.strerror}",
                "make it writable or set LIARA_CRISIS_DIR",
            )
        )
    else:
        checks.append(Check("crisis records", True, f"{os.path.abspath(directory)} is writable here"))
    return checks
