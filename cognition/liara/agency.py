"""LiaraTemporalAgency: start crises, see where they stand, wait for their results.

    async with LiaraTemporalAgency() as agency:
        workflow_id = await agency.trigger_crisis_response(target_member="target-alpha", missions=[...])
        result = await agency.wait_for_crisis_completion(workflow_id)

Results and statuses are plain JSON-ready dicts. Every failure a caller can fix is a
``LiaraError`` subclass with a one-sentence message.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any

from pydantic import ValidationError
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import CancelledError, TerminatedError, WorkflowAlreadyStartedError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from app.temporal.activities import describe_validation_error
from app.temporal.client import START_SERVER_HINT, ConnectionSettings, connect
from app.temporal.errors import (
    CrisisAlreadyExistsError,
    CrisisFailedError,
    CrisisNotFoundError,
    CrisisWaitTimeoutError,
    InvalidCrisisRequestError,
    TemporalUnavailableError,
    innermost_message,
)
from app.temporal.models import MAX_ID_LENGTH, CrisisProgress, CrisisRequest, MissionPhase, RetrySettings
from app.temporal.workflows import CrisisResponseWorkflow

WORKFLOW_ID_PREFIX = "crisis-workflow-"
#: How long a status call waits for a worker to answer the progress query.
PROGRESS_QUERY_TIMEOUT = timedelta(seconds=3)

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


def workflow_id_for(crisis_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{crisis_id}"


def new_crisis_id(target_member: str) -> str:
    """``crisis-<target>-<unix seconds>-<random>``: unique even for one target within a second."""
    suffix = f"{int(time.time())}-{secrets.token_hex(4)}"
    return f"crisis-{target_member[: MAX_ID_LENGTH - len(suffix) - 8]}-{suffix}"


#: Short action words the CLI accepts, and the action each stands for.
ACTION_ALIASES = {"recon": "reconnaissance"}


def missions_from_actions(target_member: str, actions: Iterable[str]) -> list[dict[str, Any]]:
    """One phase per action word, in order: ``recon`` becomes phase ``recon-phase-1`` run by
    agent ``recon-agent-001`` with action ``reconnaissance``; a repeated word gets the next agent.
    """
    missions = []
    per_word: dict[str, int] = {}
    for position, word in enumerate(actions, start=1):
        per_word[word] = per_word.get(word, 0) + 1
        missions.append(
            {
                "phase_id": f"{word}-phase-{position}",
                "agent_id": f"{word}-agent-{per_word[word]:03d}",
                "action": ACTION_ALIASES.get(word, word),
                "target": target_member,
                "priority": position,
            }
        )
    return missions


def build_request(
    *,
    target_member: str,
    missions: Iterable[MissionPhase | Mapping[str, Any]],
    initiated_by: str = "unknown",
    crisis_id: str | None = None,
    retry: RetrySettings | Mapping[str, Any] | None = None,
    phase_timeout_seconds: float | None = None,
) -> CrisisRequest:
    """Validate everything a crisis needs; raise ``InvalidCrisisRequestError`` naming each bad field."""
    fields: dict[str, Any] = {
        "target_member": target_member,
        "missions": [m.model_dump() if isinstance(m, MissionPhase) else m for m in missions],
        "initiated_by": initiated_by,
    }
    if retry is not None:
        fields["retry"] = retry.model_dump() if isinstance(retry, RetrySettings) else retry
    if phase_timeout_seconds is not None:
        fields["phase_timeout_seconds"] = phase_timeout_seconds
    try:
        # Check the target first so a generated crisis id is built from a valid one.
        CrisisRequest.model_validate({**fields, "crisis_id": "check"})
        return CrisisRequest.model_validate({**fields, "crisis_id": crisis_id or new_crisis_id(target_member.strip())})
    except ValidationError as err:
        raise InvalidCrisisRequestError(f"Invalid crisis request: {describe_validation_error(err)}.") from None


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

    async def __aenter__(self) -> LiaraTemporalAgency:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
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
        retry: RetrySettings | Mapping[str, Any] | None = None,
        phase_timeout_seconds: float | None = None,
    ) -> str:
        """Validate and start a crisis; return its workflow id (``crisis-workflow-<crisis_id>``).

        Nothing is started if the request is invalid. A crisis id is never reused: starting
        one that exists (running or finished) raises ``CrisisAlreadyExistsError``.
        """
        request = build_request(
            target_member=target_member,
            missions=missions,
            initiated_by=initiated_by,
            crisis_id=crisis_id,
            retry=retry,
            phase_timeout_seconds=phase_timeout_seconds,
        )
        client = await self.connect()
        workflow_id = workflow_id_for(request.crisis_id)
        try:
            await client.start_workflow(
                CrisisResponseWorkflow.run,
                request,
                id=workflow_id,
                task_queue=self.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            raise CrisisAlreadyExistsError(
                f"Crisis {request.crisis_id!r} already exists (workflow {workflow_id}): choose another crisis id."
            ) from None
        except RPCError as err:
            raise self._rpc_error(err, workflow_id) from None
        return workflow_id

    async def get_crisis_status(self, workflow_id: str) -> dict[str, Any]:
        """Where a crisis stands, without waiting for it.

        ``status`` is the workflow's state: running, completed, failed, cancelled, terminated
        or timed_out. A running crisis adds its stage, current phase and each phase so far
        (from the workflow's ``progress`` query); a finished one adds its result.
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
            report.update(await self._running_details(handle))
        elif status == "completed":
            report["result"] = await self._result(handle)
        else:
            report["error"] = await self._failure(handle)
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
            raise CrisisWaitTimeoutError(
                f"Crisis workflow {workflow_id} did not finish within {timeout:g} s; it keeps running: "
                f"check it with `liara status {workflow_id}`."
            ) from None

    async def pollers(self) -> int:
        """How many workers poll the crisis task queue for workflow tasks right now."""
        client = await self.connect()
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=self.settings.namespace,
                task_queue=TaskQueue(name=self.settings.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        return len(response.pollers)

    async def _handle(self, workflow_id: str) -> WorkflowHandle[Any, Any]:
        client = await self.connect()
        return client.get_workflow_handle(workflow_id)

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

    async def _running_details(self, handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
        try:
            progress = await handle.query(CrisisResponseWorkflow.progress, rpc_timeout=PROGRESS_QUERY_TIMEOUT)
        except (WorkflowQueryFailedError, RPCError):
            workers = await self.pollers()
            note = (
                f"queued: no worker polls task queue {self.settings.task_queue!r}; start one with "
                "`python cognition/liara/worker.py`"
                if workers == 0
                else "no worker answered the progress query in time"
            )
            return {"stage": "unknown", "note": note, "workers_polling": workers}
        assert isinstance(progress, CrisisProgress)
        return progress.model_dump(mode="json")

    def _rpc_error(self, err: RPCError, workflow_id: str) -> Exception:
        if err.status == RPCStatusCode.NOT_FOUND:
            return CrisisNotFoundError(
                f"No crisis workflow {workflow_id!r} in namespace {self.settings.namespace!r}: "
                "check the id printed by `liara trigger`."
            )
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return TemporalUnavailableError(
                f"Lost the Temporal server at {self.settings.address}: {START_SERVER_HINT}."
            )
        return err
