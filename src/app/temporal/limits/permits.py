"""A crisis's side of the limits: ``step_permits`` around an agent's step (workflow code).

For each limit of the step (its plan's, fixed in history when the phase started), in a fixed
order (kind, then name, so that two steps never wait for each other), the step asks the limit's
limiter for a permit (the ``request_permit`` activity on the limits task queue: it starts the
limiter if it is not running) and waits for it (``GRANT_SIGNAL``); it gives every permit back
when it ends, however it ends. A step cancelled while it waits withdraws its request. A step
without limits does nothing here: its crisis's history is what it was before limits existed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from app.temporal.limits.limiter import (
        GRANT_SIGNAL,
        RELEASE_SIGNAL,
        REQUEST_PERMIT_ACTIVITY,
        PermitGrant,
        PermitRequest,
        describe_limit,
        limiter_id,
        limits_task_queue,
    )
    from app.temporal.models import StepLimit

#: How long one attempt of ``request_permit`` may take (it signals the limiter, and returns).
REQUEST_TIMEOUT = timedelta(seconds=30)


@asynccontextmanager
async def step_permits(limits: Sequence[StepLimit], phase_id: str) -> AsyncIterator[None]:
    """Hold a permit of each of ``limits`` while the body runs (nothing at all without limits)."""
    if not limits:
        yield
        return
    held: list[tuple[str, str]] = []  # (limiter id, request id)
    try:
        for limit in sorted(limits, key=lambda limit: (limit.kind, limit.name)):
            held.append(await _acquire(limit, phase_id))
        yield
    finally:
        for limiter, request_id in reversed(held):
            await _release(limiter, request_id)


class _Grants:
    """The crisis's ``GRANT_SIGNAL`` handler: the requests its steps wait on, and those granted."""

    def __init__(self) -> None:
        self.wanted: set[str] = set()
        self.granted: set[str] = set()

    def receive(self, grant: PermitGrant) -> None:
        if grant.request_id in self.wanted:
            self.granted.add(grant.request_id)
        else:
            # A grant no step waits for (it withdrew meanwhile): straight back.
            asyncio.create_task(_release(grant.limiter_id, grant.request_id))


def _grants() -> _Grants:
    """This crisis's handler of ``GRANT_SIGNAL``, set on the first request."""
    handler = workflow.get_signal_handler(GRANT_SIGNAL)
    owner = getattr(handler, "__self__", None)
    if isinstance(owner, _Grants):
        return owner
    grants = _Grants()
    workflow.set_signal_handler(GRANT_SIGNAL, grants.receive)
    return grants


async def _acquire(limit: StepLimit, phase_id: str) -> tuple[str, str]:
    """Ask for a permit of ``limit`` and wait for it; (limiter id, request id)."""
    info = workflow.info()
    grants = _grants()
    limiter = limiter_id(info.task_queue, limit)
    request = PermitRequest(
        request_id=str(workflow.uuid4()),
        limiter_id=limiter,
        workflow_id=info.workflow_id,
        run_id=info.run_id,
        phase_id=phase_id,
        limit=limit,
    )
    grants.wanted.add(request.request_id)
    try:
        await workflow.execute_activity(
            REQUEST_PERMIT_ACTIVITY,
            request,
            task_queue=limits_task_queue(info.task_queue),
            start_to_close_timeout=REQUEST_TIMEOUT,
            # A cancel does not wait for the request: a grant that comes anyway goes straight back.
            cancellation_type=ActivityCancellationType.TRY_CANCEL,
            summary=f"{phase_id}: waits for a permit ({describe_limit(limit)})",
        )
        await workflow.wait_condition(lambda: request.request_id in grants.granted)
    except BaseException:
        await _release(limiter, request.request_id)
        raise
    finally:
        grants.wanted.discard(request.request_id)
        grants.granted.discard(request.request_id)
    return limiter, request.request_id


async def _release(limiter: str, request_id: str) -> None:
    """Give a permit back (or withdraw its request); a limiter that is gone has nothing to give back."""
    try:
        await workflow.get_external_workflow_handle(limiter).signal(RELEASE_SIGNAL, request_id)
    except FailureError:
        pass
