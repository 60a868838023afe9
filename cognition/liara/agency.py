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
import functools
import gc
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.common import Priority, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from app.temporal.bounded import keep_newest
from app.temporal.client import ConnectionSettings, connect
from app.temporal.errors import InvalidCrisisRequestError, LiaraError
from app.temporal.identity import WORKFLOW_ID_PREFIX, workflow_id_for, workflow_ids_for
from app.temporal.models import ApprovalDecision, CrisisRequest, MissionPhase, strict_input
from app.temporal.validation import InvalidFieldsError, describe_validation_error
from app.temporal.visibility import (
    CRISIS_SEARCH_ATTRIBUTES,
    CrisisFilter,
    crisis_list_query,
    missing_search_attributes,
    register_search_attributes,
    start_attributes,
)
from app.temporal.workflows import CrisisResponseWorkflow
from cognition.liara import crisis_records, reruns
from cognition.liara.crisis_agency import WORKER_WAIT_SECONDS
from cognition.liara.crisis_requests import REQUEST_DIGEST_MEMO, build_phases, build_request, request_digest
from cognition.liara.crisis_workflow import (
    crisis_result,
    described_crisis,
    ending_error,
    read_events,
    running_handle,
    send_update,
    shaped_as_crisis_result,
    started_digest,
)
from cognition.liara.diagnostics import (
    blocked_if_known,
    problem_if_known,
    running_details,
    status_name,
    waiting_problem,
    workflow_pollers,
)
from cognition.liara.errors import (
    CrisisAlreadyExistsError,
    CrisisNotFoundError,
    CrisisNotRunningError,
    CrisisWaitTimeoutError,
    DecisionRefusedError,
    IdempotencyConflictError,
    TemporalSetupError,
)
from cognition.liara.event_feeds import EventFeeds
from cognition.liara.listing import crisis_page
from cognition.liara.playbooks import load, locate
from cognition.liara.recorded_status import recorded_status
from cognition.liara.rpc_errors import translate_rpc_error

__all__ = ["LiaraTemporalAgency"]

_Call = TypeVar("_Call", bound=Callable[..., Awaitable[Any]])

#: How long a wait trusts a crisis's result to come and tell it is a crisis, before asking the server.
CRISIS_CHECK_GRACE_SECONDS = 0.5
#: Workflow ids of the crises an agency started, remembered so that a wait on one asks no check.
STARTED_CRISES_REMEMBERED = 10_000


def _telling_crisis_ids(call: _Call) -> _Call:
    """A method on one crisis (its workflow id first) whose ``CrisisNotFoundError`` says so when
    the id given is a crisis id (as ``liara record list`` shows them) whose workflow exists.
    """

    @functools.wraps(call)
    async def told(self: LiaraTemporalAgency, workflow_id: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await call(self, workflow_id, *args, **kwargs)
        except CrisisNotFoundError as err:
            raise await self._not_found(workflow_id, err) from None

    return cast(_Call, told)


class LiaraTemporalAgency:
    """High-level API of the agency; use it as an async context manager. Its crisis methods are
    those of ``CrisisAgency``, which ``RemoteAgency`` offers too.
    """

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
        #: The Temporal runtime (Rust threads) of the client this agency connects itself, if any.
        self._runtime: Runtime | None = None
        self._feeds = EventFeeds()
        #: Crisis workflows this agency started (their ids are never reused: REJECT_DUPLICATE).
        self._started: OrderedDict[str, None] = OrderedDict()

    async def __aenter__(self) -> LiaraTemporalAgency:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def connect(self) -> Client:
        if self._client is None:
            # A runtime of its own, which close() ends while the interpreter is whole: the SDK's
            # shared one lives until interpreter shutdown, when its threads can crash the process
            # (temporalio/sdk-python#300).
            self._runtime = Runtime(telemetry=TelemetryConfig())
            self._client = await connect(self.settings, runtime=self._runtime)
        return self._client

    async def close(self) -> None:
        """Stop reading events and let go of the connection (``async with`` does it on leaving).
        A client this agency connected itself is closed with its runtime's threads, so the
        program can end safely at any moment after.
        """
        await self._feeds.close()
        self._client = None
        if self._runtime is not None:
            self._runtime = None
            # The SDK's client and its implementation refer to each other: only the collector
            # frees them, and with them the runtime, whose threads stop now.
            gc.collect()

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

        A ``crisis_id`` of the forms the agency keeps for its own ids (beginning ``sched-``, or
        ``crisis-key-`` and 32 hex digits) is refused with ``InvalidCrisisRequestError``.
        With an ``idempotency_key`` (and no ``crisis_id``) the crisis id comes from the key, so the
        same key starts at most one crisis however often, or however concurrently, it is sent: a
        repeat with the same request returns that crisis (``created`` False), one with another
        request raises ``IdempotencyConflictError``. Temporal's workflow id uniqueness does the
        deduplicating; the request's digest is kept in the workflow's memo to compare.
        """
        request = build_request(
            target_member=target_member,
            missions=missions,
            initiated_by=initiated_by,
            crisis_id=crisis_id,
            idempotency_key=idempotency_key,
            **options,
        )
        return await self._start_request(request, idempotency_key=idempotency_key)

    async def _start_request(self, request: CrisisRequest, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Start the crisis of ``request``, built and checked by ``build_request``; answers as ``start_crisis``."""
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
            if await started_digest(client, self.settings, workflow_id) != digest:
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
        keep_newest(self._started, workflow_id, None, STARTED_CRISES_REMEMBERED)
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
        ``start_crisis``'s keywords (``crisis_id``, ``idempotency_key`` and its options, such as
        ``max_parallel``); each given wins over the playbook's own.
        """
        loaded = load(locate(playbook))
        fields = loaded.render(inputs or {})
        # What the caller gives wins over the playbook's own options.
        fields.update({name: value for name, value in start.items() if value is not None})
        try:
            return await self.start_crisis(fields.pop("target_member"), fields.pop("missions"), initiated_by, **fields)
        except InvalidFieldsError as err:  # said where it is in the playbook (phases[0].priority)
            raise err.reworded(loaded.in_its_words, f"Playbook {loaded.name}") from None

    async def trigger_playbook(
        self, playbook: str | Path, inputs: Mapping[str, Any] | None = None, initiated_by: str = "unknown", **start: Any
    ) -> str:
        """``start_playbook``, returning the workflow id as ``trigger_crisis_response`` does."""
        return (await self.start_playbook(playbook, inputs, initiated_by, **start))["workflow_id"]

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

    @_telling_crisis_ids
    async def cancel_crisis(self, workflow_id: str, *, cancelled_by: str | None = None) -> None:
        """Ask a running crisis to stop: its running phase is cancelled, the rest skipped, and
        completed phases with a ``compensate_action`` are compensated. Returns once requested.
        ``cancelled_by`` is recorded with the cancel (in the result's and record's ``cancel_requests``).
        """
        handle, _ = await running_handle(await self.connect(), self.settings, workflow_id, "cancel")
        try:
            await handle.cancel(reason=f"cancelled by {cancelled_by}" if cancelled_by else "")
        except RPCError as err:
            raise self._rpc_error(err, workflow_id) from None

    async def approve_phase(
        self,
        workflow_id: str,
        phase_id: str,
        approved_by: str,
        *,
        arguments: Mapping[str, Any] | None = None,
        extend_tokens: int | None = None,
        extend_cost: float | None = None,
        timeout: float = WORKER_WAIT_SECONDS,
    ) -> dict[str, Any]:
        """Let a phase that awaits approval run; ``approved_by`` is recorded. Returns the decision.
        When the phase's agent waits for approval of a tool call, this approves that call, with
        ``arguments`` (recorded) instead of the model's if given; when it waits at an
        extend-budget gate, this extends the budget by ``extend_tokens`` and ``extend_cost``
        (as much again as the budget if not given).

        Exactly one decision per phase takes effect: if another was taken first, the approval
        timed out or the phase is not awaiting approval, ``DecisionRefusedError`` says so.
        """
        return await self.decide(
            workflow_id,
            phase_id,
            approved=True,
            decided_by=approved_by,
            arguments=arguments,
            extend_tokens=extend_tokens,
            extend_cost=extend_cost,
            timeout=timeout,
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
        return await self.decide(
            workflow_id, phase_id, approved=False, decided_by=rejected_by, reason=reason, timeout=timeout
        )

    @_telling_crisis_ids
    async def decide(
        self,
        workflow_id: str,
        phase_id: str,
        *,
        approved: bool,
        decided_by: str,
        reason: str | None = None,
        role: str | None = None,
        arguments: Mapping[str, Any] | None = None,
        extend_tokens: int | None = None,
        extend_cost: float | None = None,
        timeout: float = WORKER_WAIT_SECONDS,
    ) -> dict[str, Any]:
        """Approve or reject, as ``decided_by`` deciding with ``role`` (the service's token role,
        which an approval policy may name; a decision made on Temporal directly has none).
        """
        fields = {
            "phase_id": phase_id,
            "approved": approved,
            "decided_by": decided_by,
            "reason": reason,
            "role": role,
            "arguments": dict(arguments) if arguments is not None else None,
            "extend_tokens": extend_tokens,
            "extend_cost": extend_cost,
        }
        try:
            decision = strict_input(ApprovalDecision, fields)
        except ValidationError as err:
            raise InvalidCrisisRequestError(f"Invalid decision: {describe_validation_error(err)}.") from None
        phase = await send_update(
            await self.connect(),
            self.settings,
            workflow_id,
            CrisisResponseWorkflow.decide_approval,
            decision,
            action=f"decide on phase {decision.phase_id!r} of",
            timeout=timeout,
            refused=DecisionRefusedError,
        )
        return {
            **phase.decisions[-1].model_dump(mode="json"),
            "approvals": phase.approvals,
            "approvals_required": phase.approvals_required,
        }

    @_telling_crisis_ids
    async def add_phases(
        self,
        workflow_id: str,
        missions: Iterable[MissionPhase | Mapping[str, Any]],
        *,
        timeout: float = WORKER_WAIT_SECONDS,
    ) -> dict[str, Any]:
        """Append phases to a running crisis; return its progress. Refused once phases are over."""
        phases = build_phases(missions)
        progress = await send_update(
            await self.connect(),
            self.settings,
            workflow_id,
            CrisisResponseWorkflow.add_phases,
            phases,
            action="add phases to",
            timeout=timeout,
            refused=CrisisNotRunningError,
        )
        return progress.model_dump(mode="json")

    async def list_crises(
        self, crisis_filter: CrisisFilter | None = None, **fields: str | int | None
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` crises, the newest first, filtered by the ``CrisisTarget``,
        ``CrisisStatus`` and ``CrisisInitiatedBy`` search attributes and by the schedule that
        started them: a ``CrisisFilter``, or its fields as keywords (``target=None, status=None,
        initiated_by=None, schedule=None, limit=20``).
        """
        return (await self.list_crises_page(crisis_filter, **fields))["crises"]

    async def list_crises_page(
        self, crisis_filter: CrisisFilter | None = None, **fields: str | int | None
    ) -> dict[str, Any]:
        """One page of ``list_crises`` (from the filter's ``cursor``, or the first): its ``crises``
        and the ``next_cursor`` to pass for the next page (None after the last one).
        """
        selected = CrisisFilter.of(crisis_filter, **fields)
        query = crisis_list_query(selected)
        return await crisis_page(
            await self.connect(), self.settings, query, limit=selected.limit, cursor=selected.cursor
        )

    async def read_record(self, crisis_id: str) -> dict[str, Any]:
        """The crisis record of ``crisis_id`` from the record store configured on this machine (as its
        workers would write it); ``CrisisRecordNotFoundError`` if it holds none. Needs no Temporal server.
        """
        return await crisis_records.read_record(crisis_id)

    async def list_records(self, *, limit: int = 20) -> list[dict[str, Any]]:
        """Headlines of up to ``limit`` crisis records in that store, the most recently created or finalized first."""
        return await crisis_records.list_records(limit)

    @_telling_crisis_ids
    async def rerun_crisis(
        self,
        workflow_id: str,
        from_phase: str,
        *,
        overrides: Mapping[str, Any] | None = None,
        initiated_by: str = "unknown",
        crisis_id: str | None = None,
    ) -> dict[str, Any]:
        """Start a crisis that has ended again from its phase ``from_phase``, the phases before it
        taken as completed with their recorded outputs (no agent runs again for them), the request
        changed by ``overrides`` (``{"scan.params.depth": 3}``): see cognition.liara.reruns.
        Returns what ``start_crisis`` does, with ``rerun_of``, the ``reused`` phases and whether the
        old record lists the rerun (``linked``). ``CrisisStillRunningError`` while it runs,
        ``RerunRefusedError`` for a phase it lacks or an override that cannot apply.
        """
        rerun = await reruns.plan_rerun(
            await self.connect(),
            self.settings,
            workflow_id,
            from_phase,
            overrides=overrides,
            initiated_by=initiated_by,
            crisis_id=crisis_id,
        )
        started = await self._start_request(rerun.request)
        linked = await reruns.link_rerun(rerun, started)
        return {**started, "rerun_of": rerun.rerun_of, "reused": rerun.reused, "linked": linked}

    async def diff_crises(self, workflow_id: str, other_workflow_id: str) -> dict[str, Any]:
        """How two crises differ, phase by phase, from their records in this machine's record store
        (``cognition.liara.reruns.crisis_diff``). Needs no Temporal server.
        """
        return await reruns.diff_crises(workflow_id, other_workflow_id)

    def crisis_events(self, workflow_id: str, *, after: int | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """The crisis's events from its stream, after offset ``after`` (from the first one if None),
        as ``{"id": offset, "event": kind, "data": {...}}``; waits for new ones while it runs and
        ends after ``finished``, whose ``data`` is the result (or the status and error of a
        workflow that ended without one). However many follow a crisis at once, this agency
        reads its stream once (see ``event_feeds``), so decisions on it still go through.
        """
        return self._feeds.follow(workflow_id, after, lambda: read_events(self.connect, self.settings, workflow_id))

    @_telling_crisis_ids
    async def get_crisis_status(self, workflow_id: str) -> dict[str, Any]:
        """Where a crisis stands, without waiting for it.

        ``status`` is the workflow's state: running, completed, failed, cancelled, terminated
        or timed_out. A running crisis adds its stage, current phase and each phase so far
        (from the workflow's ``progress`` query); a finished one adds its result. One that
        ended without a result (cancelled, say) adds its ``error`` and, from its crisis record,
        its phases, compensations, cancel requests, summary and ``record_path`` (or the
        ``record_error`` that kept them from being read).
        """
        handle, description = await described_crisis(await self.connect(), self.settings, workflow_id)
        status = status_name(description.status)
        report: dict[str, Any] = {
            "workflow_id": workflow_id,
            "status": status,
            "task_queue": description.task_queue,
            "started_at": description.start_time.isoformat() if description.start_time else None,
            "closed_at": description.close_time.isoformat() if description.close_time else None,
        }
        if status == "running":
            try:
                report.update(await running_details(self.client, handle, description.task_queue, self.settings))
                problem = await waiting_problem(self.client, description)
            except RPCError as err:
                raise self._rpc_error(err, workflow_id) from None
            if problem:
                report["problem"] = problem
        elif status == "completed":
            report["result"] = await crisis_result(handle, self.settings)
        else:
            report["error"] = await ending_error(handle, self.settings)
            report.update(await recorded_status(workflow_id, self.settings.namespace))
        return report

    @_telling_crisis_ids
    async def wait_for_crisis_completion(self, workflow_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the crisis result. ``timeout`` in seconds; ``None`` waits as long as it takes.

        Raises ``CrisisWaitTimeoutError`` when the time runs out (the crisis goes on) and
        ``CrisisFailedError`` when the workflow itself ended without a result.
        """
        client = await self.connect()
        handle = client.get_workflow_handle(workflow_id)
        waiting = asyncio.ensure_future(asyncio.wait_for(crisis_result(handle, self.settings), timeout))
        try:
            # A crisis this agency started is one. Otherwise a result that comes soon tells, by its
            # shape, that the workflow is a crisis: most waits then ask the server nothing more.
            # Else it is asked while the wait goes on.
            if workflow_id not in self._started:
                await asyncio.wait({waiting}, timeout=CRISIS_CHECK_GRACE_SECONDS)
                if waiting.done() and not waiting.cancelled() and waiting.exception() is None:
                    if shaped_as_crisis_result(waiting.result()):
                        return waiting.result()
                await described_crisis(client, self.settings, workflow_id)
        except BaseException:
            waiting.cancel()
            waiting.add_done_callback(_retrieved)  # its own error (an unknown workflow, say) is this one's
            raise
        try:
            return await waiting
        except TimeoutError:
            problem = await problem_if_known(self.client, handle) or await blocked_if_known(
                self.client, handle, self.settings
            )
            if problem:
                raise CrisisWaitTimeoutError(
                    f"Crisis workflow {workflow_id} did not finish within {timeout:g} s; "
                    f"it keeps running, but {problem.rstrip('.')}."
                ) from None
            raise CrisisWaitTimeoutError(
                f"Crisis workflow {workflow_id} did not finish within {timeout:g} s; it keeps running: "
                f"check it with `liara status {workflow_id}`."
            ) from None

    async def pollers(self, task_queue: str | None = None) -> int:
        """How many workers poll the crisis task queue (or ``task_queue``) for workflow tasks now."""
        client = await self.connect()
        try:
            return await workflow_pollers(client, task_queue or self.settings.task_queue)
        except RPCError as err:
            raise self._rpc_error(err, "") from None

    async def _not_found(self, given: str, err: CrisisNotFoundError) -> CrisisNotFoundError:
        """``err``, or, when ``given`` is the crisis id of a crisis whose workflow exists, an error
        naming that workflow id (commands take the workflow id, not the crisis id).
        """
        if given.startswith(WORKFLOW_ID_PREFIX):
            return err
        for workflow_id in workflow_ids_for(given):
            try:
                await self.client.get_workflow_handle(workflow_id).describe()
            except RPCError:
                continue
            return CrisisNotFoundError(
                f"No crisis workflow {given!r} in namespace {self.settings.namespace!r}: that is the crisis id of "
                f"crisis workflow {workflow_id}; use that workflow id."
            )
        return err

    def _rpc_error(self, err: RPCError, workflow_id: str) -> LiaraError:
        """What a Temporal error means to the caller (``workflow_id`` is "" for no crisis in particular)."""
        return translate_rpc_error(err, self.settings, workflow_id)


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a task nobody awaits any more (asyncio warns of one left unread)."""
    if not task.cancelled():
        task.exception()
