"""LiaraTemporalAgency, the Python API: start crises, see where they stand, steer them, wait for
their results.

    async with LiaraTemporalAgency() as agency:
        workflow_id = await agency.trigger_crisis_response(target_member="target-alpha", missions=[...])
        result = await agency.wait_for_crisis_completion(workflow_id)

Results and statuses are plain JSON-ready dicts. Every failure a caller can fix is a
``LiaraError`` subclass with a one-sentence message.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncGenerator, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import Priority, WorkflowIDReusePolicy
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.exceptions import CancelledError, TerminatedError, WorkflowAlreadyStartedError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from app.temporal.client import START_SERVER_HINT, ConnectionSettings, connect
from app.temporal.errors import (
    CrisisAlreadyExistsError,
    CrisisFailedError,
    CrisisNotFoundError,
    CrisisNotRunningError,
    CrisisWaitTimeoutError,
    DecisionRefusedError,
    IdempotencyConflictError,
    InvalidCrisisRequestError,
    LiaraError,
    TemporalBusyError,
    TemporalSetupError,
    TemporalUnavailableError,
    innermost_message,
)
from app.temporal.models import (
    OUTPUT_BUDGET_BYTES,
    ApprovalDecision,
    CrisisEvent,
    CrisisProgress,
    CrisisSummary,
    EventKind,
    MissionPhase,
    OutputRef,
    PhaseOutcome,
    json_size,
    scheduled_crisis_id,
    strict_input,
)
from app.temporal.records import configured_record_store
from app.temporal.records.document import COMPENSATIONS, PHASES
from app.temporal.validation import describe_validation_error
from app.temporal.visibility import (
    CRISIS_INITIATED_BY,
    CRISIS_SEARCH_ATTRIBUTES,
    CRISIS_STATUS,
    CRISIS_TARGET,
    crisis_list_query,
    missing_search_attributes,
    register_search_attributes,
    start_attributes,
)
from app.temporal.workflows import EVENT_TOPIC, CrisisResponseWorkflow
from cognition.liara import crisis_records
from cognition.liara.crisis_requests import (
    REQUEST_DIGEST_MEMO,
    build_phases,
    build_request,
    crisis_id_for_key,
    request_digest,
    workflow_id_for,
)
from cognition.liara.diagnostics import live_pollers, waiting_problem
from cognition.liara.event_feeds import EventFeeds
from cognition.liara.playbooks import SUFFIXES, find, load

#: How long a status call waits for a worker to answer the progress query.
PROGRESS_QUERY_TIMEOUT = timedelta(seconds=3)
#: How long a change to a running crisis (a decision, added phases) waits for a worker to take it.
WORKER_WAIT_SECONDS = 10.0

_STATUS_NAMES = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued_as_new",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
}
#: How a workflow ended without a result, by the cause of its failure.
_END_STATES: dict[type[BaseException], str] = {
    CancelledError: "cancelled",
    TerminatedError: "terminated",
    TemporalTimeoutError: "timed_out",
}


def _listed(execution: WorkflowExecution) -> dict[str, Any]:
    attributes = execution.typed_search_attributes
    return {
        "workflow_id": execution.id,
        "target": attributes.get(CRISIS_TARGET),
        "crisis_status": attributes.get(CRISIS_STATUS),
        "initiated_by": attributes.get(CRISIS_INITIATED_BY),
        "status": _STATUS_NAMES.get(execution.status, "unknown") if execution.status else "unknown",
        "started_at": execution.start_time.isoformat(),
    }


_BAD_CURSOR = "The cursor is not one this listing gave out: start again without it."


def _cursor(page_token: bytes) -> str:
    """A page token as a cursor: URL-safe base64, with a checksum that tells a mangled one."""
    return base64.urlsafe_b64encode(hashlib.sha256(page_token).digest()[:4] + page_token).decode()


def _page_token(cursor: str | None) -> bytes | None:
    """The server's page token a cursor carries."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise InvalidCrisisRequestError(_BAD_CURSOR) from None
    checksum, token = raw[:4], raw[4:]
    if not token or hashlib.sha256(token).digest()[:4] != checksum:
        raise InvalidCrisisRequestError(_BAD_CURSOR)
    return token


def _recorded_outcomes(record: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A record's phases and compensations as a crisis tells them: their resolved params and
    outputs within the crisis's budget, in plan order, and each past it named by a reference to
    the record (``params_ref``, ``output_ref``), as the crisis itself names them.
    """
    budget = OUTPUT_BUDGET_BYTES
    told: dict[str, list[dict[str, Any]]] = {PHASES: [], COMPENSATIONS: []}
    for kind, entries in told.items():
        for entry in record.get(kind, []):
            outcome = PhaseOutcome.model_validate({**entry, "requires_approval": "approvals_required" in entry})
            kept: dict[str, Any] = {}
            for field, reference in (("params", "params_ref"), ("output", "output_ref")):
                size = 0 if getattr(outcome, field) is None else json_size(getattr(outcome, field))
                if size > budget:
                    kept[field] = None
                    kept[reference] = OutputRef(
                        crisis_id=record["crisis_id"],
                        phase_id=outcome.phase_id,
                        compensation=kind == COMPENSATIONS,
                        size_bytes=size,
                    )
                else:
                    budget -= size
            entries.append(outcome.model_copy(update=kept).model_dump(mode="json"))
    return told[PHASES], told[COMPENSATIONS]


class LiaraTemporalAgency:
    """High-level API of the agency; use it as an async context manager."""

    def __init__(
        self,
        temporal_host: str | None = None,
        namespace: str | None = None,
        task_queue: str | None = None,
        *,
        api_key: str | None = None,
        tls: bool | TLSConfig | None = None,
        profile: str | None = None,
        client: Client | None = None,
    ) -> None:
        self.settings = ConnectionSettings.resolve(
            address=temporal_host, namespace=namespace, task_queue=task_queue, api_key=api_key, tls=tls, profile=profile
        )
        self._client = client
        self._feeds = EventFeeds()

    async def __aenter__(self) -> LiaraTemporalAgency:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._feeds.close()
        self._client = None

    async def connect(self) -> Client:
        if self._client is None:
            self._client = await connect(self.settings)
        return self._client

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("LiaraTemporalAgency is not connected: use `async with LiaraTemporalAgency() as agency`")
        return self._client

    async def trigger_crisis_response(
        self,
        target_member: str,
        missions: Iterable[MissionPhase | Mapping[str, Any]],
        initiated_by: str = "unknown",
        *,
        crisis_id: str | None = None,
        **options: Any,
    ) -> str:
        """Validate and start a crisis; return its workflow id (``crisis-workflow-<crisis_id>``).

        ``options``: ``retry`` (e.g. ``{"maximum_attempts": 5}``), ``phase_timeout_seconds``,
        ``heartbeat_timeout_seconds``, ``failure_policy`` (``"continue"`` or ``"abort"``).
        Nothing is started if the request is invalid. A crisis id is never reused: starting
        one that exists (running or finished) raises ``CrisisAlreadyExistsError``.
        """
        started = await self.start_crisis(target_member, missions, initiated_by, crisis_id=crisis_id, **options)
        return started["workflow_id"]

    async def start_crisis(
        self,
        target_member: str,
        missions: Iterable[MissionPhase | Mapping[str, Any]],
        initiated_by: str = "unknown",
        *,
        crisis_id: str | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Start a crisis as ``trigger_crisis_response`` does; return its ``workflow_id``,
        ``crisis_id`` and whether this call ``created`` it.

        With an ``idempotency_key`` (and no ``crisis_id``) the crisis id comes from the key, so the
        same key starts at most one crisis however often, or however concurrently, it is sent: a
        repeat with the same request returns that crisis (``created`` False), one with another
        request raises ``IdempotencyConflictError``. Temporal's workflow id uniqueness does the
        deduplicating; the request's digest is kept in the workflow's memo to compare.
        """
        if crisis_id is None and idempotency_key is not None:
            crisis_id = crisis_id_for_key(idempotency_key)
        request = build_request(
            target_member=target_member, missions=missions, initiated_by=initiated_by, crisis_id=crisis_id, **options
        )
        client = await self.connect()
        workflow_id = workflow_id_for(request.crisis_id)
        digest = request_digest(request)
        started = {"workflow_id": workflow_id, "crisis_id": request.crisis_id, "created": True}
        try:
            await client.start_workflow(
                CrisisResponseWorkflow.run,
                request,
                id=workflow_id,
                task_queue=self.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=start_attributes(request.target_member, request.initiated_by),
                memo={REQUEST_DIGEST_MEMO: digest},
                priority=Priority(priority_key=request.priority),
            )
        except WorkflowAlreadyStartedError:
            if idempotency_key is None:
                raise CrisisAlreadyExistsError(
                    f"Crisis {request.crisis_id!r} already exists (workflow {workflow_id}): choose another crisis id."
                ) from None
            if await self._started_digest(workflow_id) != digest:
                raise IdempotencyConflictError(
                    f"This idempotency key was already used for another request (crisis workflow {workflow_id}): "
                    "use a new key for a new crisis."
                ) from None
            return {**started, "created": False}
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT and "search attribute" in err.message.lower():
                raise TemporalSetupError(
                    f"Namespace {self.settings.namespace!r} lacks the crisis search attributes "
                    f"({', '.join(k.name for k in CRISIS_SEARCH_ATTRIBUTES)}): register them with `liara setup`."
                ) from None
            raise self._rpc_error(err, workflow_id) from None
        return started

    async def start_playbook(
        self,
        playbook: str | Path,
        inputs: Mapping[str, Any] | None = None,
        initiated_by: str = "unknown",
        **start: Any,
    ) -> dict[str, Any]:
        """Start a crisis from a playbook, given by path or by name (in the playbooks directory,
        ``LIARA_PLAYBOOKS``), with ``inputs``; returns what ``start_crisis`` does. ``start`` takes
        ``start_crisis``'s keywords (``crisis_id``, ``idempotency_key``, ``webhooks``).
        """
        path = Path(playbook) if isinstance(playbook, Path) or Path(playbook).suffix in SUFFIXES else find(playbook)
        fields = load(path).render(inputs or {})
        # What the caller gives wins over the playbook's own options.
        fields.update({name: value for name, value in start.items() if value is not None})
        return await self.start_crisis(fields.pop("target_member"), fields.pop("missions"), initiated_by, **fields)

    async def trigger_playbook(
        self, playbook: str | Path, inputs: Mapping[str, Any] | None = None, initiated_by: str = "unknown", **start: Any
    ) -> str:
        """``start_playbook``, returning the workflow id as ``trigger_crisis_response`` does."""
        return (await self.start_playbook(playbook, inputs, initiated_by, **start))["workflow_id"]

    async def _started_digest(self, workflow_id: str) -> str | None:
        handle = await self._handle(workflow_id)
        try:
            memo = await (await handle.describe()).memo()
        except RPCError as err:
            raise self._rpc_error(err, workflow_id) from None
        return memo.get(REQUEST_DIGEST_MEMO)

    async def check_ready(self) -> None:
        """Raise ``TemporalUnavailableError`` or ``TemporalSetupError`` (one sentence) unless the
        server answers, the namespace exists and it has the crisis search attributes.
        """
        client = await self.connect()
        try:
            missing = await missing_search_attributes(client, self.settings.namespace)
        except RPCError as err:
            raise self._rpc_error(err, "") from None
        if missing:
            raise TemporalSetupError(
                f"Namespace {self.settings.namespace!r} lacks the crisis search attributes {', '.join(missing)}: "
                "register them with `liara setup`."
            )

    async def register_search_attributes(self) -> list[str]:
        """Register the crisis search attributes the namespace lacks; return the names added."""
        client = await self.connect()
        try:
            return await register_search_attributes(client, self.settings.namespace)
        except RPCError as err:
            names = ", ".join(key.name for key in CRISIS_SEARCH_ATTRIBUTES)
            raise TemporalSetupError(
                f"Cannot register the crisis search attributes on namespace {self.settings.namespace!r} "
                f"({err.message}): ask its operator to add {names} as Keyword attributes."
            ) from None

    async def cancel_crisis(self, workflow_id: str, *, cancelled_by: str | None = None) -> None:
        """Ask a running crisis to stop: its running phase is cancelled, the rest skipped, and
        completed phases with a ``compensate_action`` are compensated. Returns once requested.
        ``cancelled_by`` is recorded with the cancel (in the result's and record's ``cancel_requests``).
        """
        handle, _ = await self._running_handle(workflow_id, "cancel")
        try:
            await handle.cancel(reason=f"cancelled by {cancelled_by}" if cancelled_by else "")
        except RPCError as err:
            raise self._rpc_error(err, workflow_id) from None

    async def approve_phase(
        self, workflow_id: str, phase_id: str, approved_by: str, *, timeout: float = WORKER_WAIT_SECONDS
    ) -> dict[str, Any]:
        """Let a phase that awaits approval run; ``approved_by`` is recorded. Returns the decision.

        Exactly one decision per phase takes effect: if another was taken first, the approval
        timed out or the phase is not awaiting approval, ``DecisionRefusedError`` says so.
        """
        return await self._decide(
            workflow_id, {"phase_id": phase_id, "approved": True, "decided_by": approved_by}, timeout
        )

    async def reject_phase(
        self,
        workflow_id: str,
        phase_id: str,
        rejected_by: str,
        reason: str | None = None,
        *,
        timeout: float = WORKER_WAIT_SECONDS,
    ) -> dict[str, Any]:
        """Fail a phase that awaits approval without running it (then the failure policy applies)."""
        return await self._decide(
            workflow_id, {"phase_id": phase_id, "approved": False, "decided_by": rejected_by, "reason": reason}, timeout
        )

    async def _decide(self, workflow_id: str, fields: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            decision = strict_input(ApprovalDecision, fields)
        except ValidationError as err:
            raise InvalidCrisisRequestError(f"Invalid decision: {describe_validation_error(err)}.") from None
        phase = await self._update(
            workflow_id,
            CrisisResponseWorkflow.decide_approval,
            decision,
            action=f"decide on phase {decision.phase_id!r} of",
            timeout=timeout,
            refused=DecisionRefusedError,
        )
        return {
            **phase.decisions[-1].model_dump(mode="json"),
            "approvals": sum(1 for taken in phase.decisions if taken.approved),
            "approvals_required": phase.approvals_required,
        }

    async def add_phases(
        self,
        workflow_id: str,
        missions: Iterable[MissionPhase | Mapping[str, Any]],
        *,
        timeout: float = WORKER_WAIT_SECONDS,
    ) -> dict[str, Any]:
        """Append phases to a running crisis; return its progress. Refused once phases are over."""
        phases = build_phases(missions)
        progress = await self._update(
            workflow_id,
            CrisisResponseWorkflow.add_phases,
            phases,
            action="add phases to",
            timeout=timeout,
            refused=CrisisNotRunningError,
        )
        return progress.model_dump(mode="json")

    async def list_crises(
        self,
        *,
        target: str | None = None,
        status: str | None = None,
        initiated_by: str | None = None,
        schedule: str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """The newest crises first, filtered by the ``CrisisTarget``, ``CrisisStatus`` and
        ``CrisisInitiatedBy`` search attributes and by the schedule that started them.
        """
        page = await self.list_crises_page(
            target=target, status=status, initiated_by=initiated_by, schedule=schedule, limit=limit
        )
        return page["crises"]

    async def list_crises_page(
        self,
        *,
        target: str | None = None,
        status: str | None = None,
        initiated_by: str | None = None,
        schedule: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of ``list_crises``: its ``crises`` and the ``next_cursor`` to pass for the next
        page (None after the last one).
        """
        query = crisis_list_query(target=target, status=status, initiated_by=initiated_by, schedule=schedule)
        token = _page_token(cursor)
        client = await self.connect()
        pages = client.list_workflows(query, page_size=limit, next_page_token=token)
        try:
            await pages.fetch_next_page()
        except RPCError as err:
            unavailable = err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
            if cursor is not None and not unavailable:
                raise InvalidCrisisRequestError(_BAD_CURSOR) from None
            raise self._rpc_error(err, "") from None
        rows = [_listed(execution) for execution in pages.current_page or []]
        following = pages.next_page_token
        return {"crises": rows, "next_cursor": _cursor(following) if following else None}

    async def read_record(self, crisis_id: str) -> dict[str, Any]:
        """The crisis record of ``crisis_id`` from the record store configured on this machine (as its
        workers would write it); ``CrisisRecordNotFoundError`` if it holds none. Needs no Temporal server.
        """
        return await crisis_records.read_record(crisis_id)

    async def list_records(self, *, limit: int = 20) -> list[dict[str, Any]]:
        """Headlines of up to ``limit`` crisis records in that store, the most recently created or finalized first."""
        return await crisis_records.list_records(limit)

    def crisis_events(self, workflow_id: str, *, after: int | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """The crisis's events from its stream, after offset ``after`` (from the first one if None),
        as ``{"id": offset, "event": kind, "data": {...}}``; waits for new ones while it runs and
        ends after ``finished``, whose ``data`` is the result (or the status and error of a
        workflow that ended without one). However many follow a crisis at once, this agency
        reads its stream once (see ``event_feeds``), so decisions on it still go through.
        """
        return self._feeds.follow(workflow_id, after, lambda: self._read_events(workflow_id))

    async def _read_events(self, workflow_id: str) -> AsyncGenerator[dict[str, Any], None]:
        """Every event of the crisis's stream, from the first, as ``crisis_events`` gives them."""
        handle = await self._handle(workflow_id)
        try:
            await handle.describe()
        except RPCError as err:
            raise self._rpc_error(err, workflow_id) from None
        stream = WorkflowStreamClient.create(self.client, workflow_id)
        events = stream.subscribe(EVENT_TOPIC, result_type=CrisisEvent)
        while True:
            try:
                item = await anext(events)
            except StopAsyncIteration:
                return
            except RPCError as err:
                raise self._rpc_error(err, workflow_id) from None
            event: CrisisEvent = item.data
            data = event.model_dump(mode="json", exclude_none=True)
            if event.kind == EventKind.FINISHED:
                try:
                    data = {**data, "result": await self._result(handle)}
                except CrisisFailedError as err:
                    data = {**data, "status": err.status, "error": str(err)}
            yield {"id": item.offset, "event": event.kind.value, "data": data}
            if event.kind == EventKind.FINISHED:
                return

    async def get_crisis_status(self, workflow_id: str) -> dict[str, Any]:
        """Where a crisis stands, without waiting for it.

        ``status`` is the workflow's state: running, completed, failed, cancelled, terminated
        or timed_out. A running crisis adds its stage, current phase and each phase so far
        (from the workflow's ``progress`` query); a finished one adds its result. One that
        ended without a result (cancelled, say) adds its ``error`` and, from its crisis record,
        its phases, compensations, cancel requests, summary and ``record_path`` (or the
        ``record_error`` that kept them from being read).
        """
        handle = await self._handle(workflow_id)
        try:
            description = await handle.describe()
        except RPCError as err:
            raise self._rpc_error(err, workflow_id) from None
        status = _STATUS_NAMES.get(description.status, "unknown") if description.status else "unknown"
        report: dict[str, Any] = {
            "workflow_id": workflow_id,
            "status": status,
            "task_queue": description.task_queue,
            "started_at": description.start_time.isoformat() if description.start_time else None,
            "closed_at": description.close_time.isoformat() if description.close_time else None,
        }
        if status == "running":
            report.update(await self._running_details(handle, description.task_queue))
            problem = await waiting_problem(self.client, description)
            if problem:
                report["problem"] = problem
        elif status == "completed":
            report["result"] = await self._result(handle)
        else:
            report["error"] = await self._failure(handle)
            report.update(await self._recorded_state(workflow_id))
        return report

    async def wait_for_crisis_completion(self, workflow_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the crisis result. ``timeout`` in seconds; ``None`` waits as long as it takes.

        Raises ``CrisisWaitTimeoutError`` when the time runs out (the crisis goes on) and
        ``CrisisFailedError`` when the workflow itself ended without a result.
        """
        handle = await self._handle(workflow_id)
        try:
            return await asyncio.wait_for(self._result(handle), timeout)
        except TimeoutError:
            problem = await self._problem(handle)
            if problem:
                raise CrisisWaitTimeoutError(
                    f"Crisis workflow {workflow_id} did not finish within {timeout:g} s; "
                    f"it keeps running, but {problem}"
                ) from None
            raise CrisisWaitTimeoutError(
                f"Crisis workflow {workflow_id} did not finish within {timeout:g} s; it keeps running: "
                f"check it with `liara status {workflow_id}`."
            ) from None

    async def _problem(self, handle: WorkflowHandle[Any, Any]) -> str | None:
        """Why a running crisis is stuck, if an activity or workflow task keeps failing (best effort)."""
        try:
            return await waiting_problem(self.client, await handle.describe())
        except RPCError:
            return None

    async def pollers(self, task_queue: str | None = None) -> int:
        """How many workers poll the crisis task queue (or ``task_queue``) for workflow tasks now."""
        client = await self.connect()
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=self.settings.namespace,
                task_queue=TaskQueue(name=task_queue or self.settings.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        return live_pollers(response.pollers)

    async def _handle(self, workflow_id: str) -> WorkflowHandle[Any, Any]:
        client = await self.connect()
        return client.get_workflow_handle(workflow_id)

    async def _running_handle(
        self, workflow_id: str, action: str
    ) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
        """The handle of a running crisis and its description; a clear error if it is unknown or has ended."""
        handle = await self._handle(workflow_id)
        try:
            description = await handle.describe()
        except RPCError as err:
            raise self._rpc_error(err, workflow_id) from None
        if description.status != WorkflowExecutionStatus.RUNNING:
            state = _STATUS_NAMES.get(description.status, "unknown") if description.status else "unknown"
            raise CrisisNotRunningError(
                f"Cannot {action} crisis workflow {workflow_id}: it has already ended ({state})."
            )
        return handle, description

    async def _update(
        self,
        workflow_id: str,
        update: Any,
        argument: Any,
        *,
        action: str,
        timeout: float,
        refused: type[LiaraError],
    ) -> Any:
        """Send an update to a running crisis and return its result: a worker must take it within
        ``timeout`` seconds; a refusal by the workflow's validator raises ``refused``.
        """
        handle, description = await self._running_handle(workflow_id, action)
        task_queue = description.task_queue or self.settings.task_queue
        if not await self.pollers(task_queue):
            # Sent now, the update would wait for a worker and might take effect long after.
            raise TemporalUnavailableError(
                f"Cannot {action} {workflow_id}: no worker polls task queue {task_queue!r}; "
                "start one with `python cognition/liara/worker.py`."
            )
        try:
            return await handle.execute_update(update, argument, rpc_timeout=timedelta(seconds=timeout))
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise CrisisWaitTimeoutError(
                f"Cannot {action} {workflow_id}: no worker answered within {timeout:g} s; "
                f"check the workers with `liara doctor`, then the crisis with `liara status {workflow_id}`."
            ) from None
        except WorkflowUpdateFailedError as err:
            raise refused(f"Cannot {action} {workflow_id}: {innermost_message(err)}.") from None
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:  # it was running a moment ago: it has ended since
                raise CrisisNotRunningError(f"Cannot {action} crisis workflow {workflow_id}: it has ended.") from None
            raise self._rpc_error(err, workflow_id) from None

    async def _progress(self, handle: WorkflowHandle[Any, Any]) -> CrisisProgress:
        try:
            progress = await handle.query(CrisisResponseWorkflow.progress, rpc_timeout=PROGRESS_QUERY_TIMEOUT)
        except (WorkflowQueryFailedError, RPCError) as err:
            raise TemporalUnavailableError(
                f"No worker answered for {handle.id}: start one with `python cognition/liara/worker.py`."
            ) from err
        return progress

    async def _result(self, handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
        try:
            result = await handle.result()
        except WorkflowFailureError as err:
            status = _END_STATES.get(type(err.cause), "failed")
            raise CrisisFailedError(
                f"Crisis workflow {handle.id} ended as {status}: {innermost_message(err)}", status
            ) from None
        except RPCError as err:
            raise self._rpc_error(err, handle.id) from None
        return result.model_dump(mode="json") if hasattr(result, "model_dump") else result

    async def _failure(self, handle: WorkflowHandle[Any, Any]) -> str:
        try:
            await self._result(handle)
        except CrisisFailedError as err:
            return str(err)
        return ""

    async def _recorded_state(self, workflow_id: str) -> dict[str, Any]:
        """What the record of a crisis that ended without a result tells, from the record store
        configured on this machine: nothing if it holds no record of this crisis, a
        ``record_error`` if the record cannot be read.
        """
        # A crisis's id is its workflow id without the prefix (made safe, for a schedule's runs).
        crisis_id = scheduled_crisis_id(workflow_id)
        try:
            record = await crisis_records.read_record(crisis_id)
            record_path = configured_record_store().location(crisis_id)
        except crisis_records.CrisisRecordNotFoundError:
            return {}
        except LiaraError as err:
            return {"record_error": str(err)}
        if record.get("workflow_id") != workflow_id or record.get("namespace") not in (None, self.settings.namespace):
            return {}  # another crisis's record under the same id
        try:
            phases, compensations = _recorded_outcomes(record)
        except ValidationError:
            return {"record_error": f"crisis record {record_path} holds phases no crisis wrote; move it aside"}
        return {
            "crisis_id": crisis_id,
            "target": record.get("target"),
            "phases": phases,
            "summary": CrisisSummary.of(phase["status"] for phase in phases).model_dump(),
            "compensations": compensations,
            "cancel_requests": record.get("cancel_requests", []),
            "record_path": record_path,
        }

    async def _running_details(self, handle: WorkflowHandle[Any, Any], task_queue: str) -> dict[str, Any]:
        # With nobody polling the crisis's task queue, a query would only wait out its timeout:
        # say so at once.
        workers = await self.pollers(task_queue)
        if workers:
            try:
                return (await self._progress(handle)).model_dump(mode="json")
            except TemporalUnavailableError:
                note = "no worker answered the progress query in time"
        else:
            note = (
                f"queued: no worker polls task queue {task_queue!r}; start one with `python cognition/liara/worker.py`"
            )
        return {"stage": "unknown", "note": note, "workers_polling": workers}

    def _rpc_error(self, err: RPCError, workflow_id: str) -> LiaraError:
        """What a Temporal error means to the caller, in one sentence (``workflow_id`` is "" for a
        request about no crisis in particular).
        """
        message = err.message.lower()
        # Just after a namespace is deleted, the server also says so as UNAVAILABLE.
        namespace_gone = "namespace" in message and "not found" in message
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.UNAVAILABLE) and namespace_gone:
            return TemporalUnavailableError(
                f"Namespace {self.settings.namespace!r} no longer exists on the Temporal server at "
                f"{self.settings.address}: create it again or set TEMPORAL_NAMESPACE."
            )
        if err.status == RPCStatusCode.NOT_FOUND and "completed" in message:
            return CrisisNotRunningError(f"Crisis workflow {workflow_id} has already ended.")
        if err.status == RPCStatusCode.NOT_FOUND:
            return CrisisNotFoundError(
                f"No crisis workflow {workflow_id!r} in namespace {self.settings.namespace!r}: "
                "check the id printed by `liara trigger`."
            )
        if err.status == RPCStatusCode.FAILED_PRECONDITION and "poller" in message:
            return TemporalUnavailableError(
                f"No worker answered for {workflow_id}: start one with `python cognition/liara/worker.py`."
            )
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return TemporalUnavailableError(
                f"Lost the Temporal server at {self.settings.address}: {START_SERVER_HINT}."
            )
        subject = f"crisis workflow {workflow_id}" if workflow_id else f"namespace {self.settings.namespace!r}"
        if err.status == RPCStatusCode.RESOURCE_EXHAUSTED:
            return TemporalBusyError(
                f"Temporal cannot take this request for {subject} now ({err.message}): try again in a moment."
            )
        return TemporalUnavailableError(
            f"The Temporal server at {self.settings.address} refused the request for {subject} ({err.message})."
        )
