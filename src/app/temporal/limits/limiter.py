"""``LimiterWorkflow``: one limit of ``[limits]`` for a whole fleet, as a workflow that hands out
permits. One runs per limit and crisis task queue (``limiter_id``), on the queue's limits task
queue (``limits_task_queue``), started by the first step that asks for a permit.

A step asks with the ``acquire`` signal (carrying its crisis's workflow run and the limit as its
plan has it: the limiter goes by the numbers of the latest request) and waits; the limiter hands
permits out first come, first served, at most ``concurrent`` held at once and, with
``per_minute``, one every 60/per_minute seconds, each by signalling the waiting crisis
(``GRANT_SIGNAL``). The step gives its permit back with ``release`` when it ends, however it
ends, and so does a crisis that stops waiting (cancelled); a permit granted to a crisis that has
closed meanwhile comes back at once. A crisis run that closes while it holds a permit
(terminated, reset, timed out) never releases it: while others wait, the limiter asks every
``CHECK_INTERVAL`` which holders' runs have closed (``HOLDERS_GONE_ACTIVITY``) and takes their
permits back. The limiter continues as new past ``HISTORY_BUDGET_EVENTS``, and ends after
``IDLE_TIMEOUT`` with nothing held or waiting (the next request starts it again).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pydantic import Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from app.temporal.models import StepLimit, WireModel

#: Signals of the limiter, and the query ``liara doctor`` asks it.
ACQUIRE_SIGNAL = "acquire"
RELEASE_SIGNAL = "release"
STATUS_QUERY = "status"
#: The signal by which a limiter tells a crisis that its step holds a permit.
GRANT_SIGNAL = "liara_limit_permit"
#: The activities of the limits task queue (app.temporal.limits.serving).
REQUEST_PERMIT_ACTIVITY = "request_permit"
HOLDERS_GONE_ACTIVITY = "limit_holders_gone"

#: While steps wait, how often the limiter looks for permits held by crisis runs that have closed.
CHECK_INTERVAL = timedelta(seconds=15)
#: A limiter with nothing held and no one waiting ends after this long.
IDLE_TIMEOUT = timedelta(minutes=5)
#: How often the limiter checks its holders when no one waits (so that it can end when idle).
IDLE_CHECK_INTERVAL = IDLE_TIMEOUT
#: Past this many events of history the limiter continues as new.
HISTORY_BUDGET_EVENTS = 4000
#: Requests released or withdrawn that the limiter remembers, so that a late ``acquire`` of one
#: (an activity's retry) does not queue it again.
SETTLED_KEPT = 1000


def limits_task_queue(task_queue: str) -> str:
    """Where the limiters of the crises of ``task_queue`` run, and their activities."""
    return f"{task_queue}-limits"


def limiter_id(task_queue: str, limit: StepLimit) -> str:
    """The workflow id of ``limit``'s limiter for the crises of ``task_queue``."""
    return f"liara-limit/{limit.kind}/{limit.name}@{task_queue}"


def describe_limit(limit: StepLimit) -> str:
    """``model gpt-4.1-mini: 2 at once, 6 a minute``."""
    parts = []
    if limit.concurrent is not None:
        parts.append(f"{limit.concurrent} at once")
    if limit.per_minute is not None:
        parts.append(f"{limit.per_minute} a minute")
    return f"{limit.kind} {limit.name}: {', '.join(parts)}"


def spacing(limit: StepLimit) -> timedelta | None:
    """The least time between two permits of ``limit`` (None without ``per_minute``)."""
    return timedelta(seconds=60 / limit.per_minute) if limit.per_minute else None


class PermitRequest(WireModel):
    """Payload of ``acquire`` (and input of ``request_permit``): a step that waits for a permit."""

    request_id: str
    limiter_id: str
    workflow_id: str
    run_id: str
    phase_id: str
    limit: StepLimit


class PermitGrant(WireModel):
    """Payload of ``GRANT_SIGNAL``: the request that holds a permit now, and whose."""

    request_id: str
    limiter_id: str


class Holder(WireModel):
    """A request waiting (since it asked) or holding a permit (since it got it)."""

    request_id: str
    workflow_id: str
    run_id: str
    phase_id: str
    since: datetime


class LimiterState(WireModel):
    """The limiter's input: the limit, and what a run carries into the next."""

    limit: StepLimit
    holders: list[Holder] = Field(default_factory=list)
    waiting: list[Holder] = Field(default_factory=list)
    last_grant: datetime | None = None
    granted: int = 0
    settled: list[str] = Field(default_factory=list)


class LimiterStatus(WireModel):
    """Answer of ``status``: the limit in force, the permits in use and the steps waiting."""

    limit: StepLimit
    in_use: int
    waiting: int
    granted: int = Field(description="Permits handed out since the limiter started (across its runs).")
    holders: list[Holder] = Field(default_factory=list)


@workflow.defn(name="LiaraLimiter")
class LimiterWorkflow:
    @workflow.init
    def __init__(self, state: LimiterState) -> None:
        self._limit = state.limit
        self._holders = {holder.request_id: holder for holder in state.holders}
        self._waiting = list(state.waiting)
        self._last_grant = state.last_grant
        self._granted = state.granted
        self._settled = list(state.settled)
        self._changed = False
        #: Grant signals under way.
        self._telling: set[asyncio.Task[None]] = set()
        self._check_at: datetime | None = None

    @workflow.run
    async def run(self, state: LimiterState) -> LimiterStatus:
        idle_since: datetime | None = None
        while True:
            self._grant()
            info = workflow.info()
            if info.get_current_history_length() >= HISTORY_BUDGET_EVENTS or info.is_continue_as_new_suggested():
                await workflow.wait_condition(lambda: not self._telling and workflow.all_handlers_finished())
                workflow.continue_as_new(self._carried())
            now = workflow.now()
            busy = bool(self._holders or self._waiting or self._telling)
            idle_since = None if busy else (idle_since or now)
            if idle_since is not None and now - idle_since >= IDLE_TIMEOUT:
                return self.status()
            self._changed = False
            try:
                await workflow.wait_condition(lambda: self._changed, timeout=self._next_wake(now, idle_since))
            except TimeoutError:
                pass
            if self._check_at is not None and workflow.now() >= self._check_at:
                await self._take_back_from_closed_runs()

    @workflow.signal(name=ACQUIRE_SIGNAL)
    def acquire(self, request: PermitRequest) -> None:
        self._limit = request.limit
        known = request.request_id in self._holders or request.request_id in self._settled
        if known or any(waiter.request_id == request.request_id for waiter in self._waiting):
            return
        self._waiting.append(
            Holder(
                request_id=request.request_id,
                workflow_id=request.workflow_id,
                run_id=request.run_id,
                phase_id=request.phase_id,
                since=workflow.now(),
            )
        )
        self._changed = True

    @workflow.signal(name=RELEASE_SIGNAL)
    def release(self, request_id: str) -> None:
        """A permit given back, or a request withdrawn (before or after it was asked for)."""
        if self._holders.pop(request_id, None) is None:
            self._waiting = [waiter for waiter in self._waiting if waiter.request_id != request_id]
        self._settled = [*self._settled[-(SETTLED_KEPT - 1) :], request_id]
        self._changed = True

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> LimiterStatus:
        return LimiterStatus(
            limit=self._limit,
            in_use=len(self._holders),
            waiting=len(self._waiting),
            granted=self._granted,
            holders=list(self._holders.values()),
        )

    def _grant(self) -> None:
        """Permits to the first waiters, as far as the limit allows now."""
        limit, now = self._limit, workflow.now()
        space = spacing(limit)
        while self._waiting and (limit.concurrent is None or len(self._holders) < limit.concurrent):
            if space is not None and self._last_grant is not None and now < self._last_grant + space:
                return
            holder = self._waiting.pop(0).model_copy(update={"since": now})
            self._holders[holder.request_id] = holder
            self._last_grant = now
            self._granted += 1
            telling = asyncio.create_task(self._tell(holder))
            self._telling.add(telling)
            telling.add_done_callback(self._told)

    async def _tell(self, holder: Holder) -> None:
        info = workflow.info()
        grant = PermitGrant(request_id=holder.request_id, limiter_id=info.workflow_id)
        try:
            await workflow.get_external_workflow_handle(holder.workflow_id, run_id=holder.run_id).signal(
                GRANT_SIGNAL, grant
            )
        except FailureError:
            # Its crisis run has closed: the permit comes back.
            if self._holders.pop(holder.request_id, None) is not None:
                workflow.logger.info(
                    "Permit of %s given back: crisis run %s of %s has closed",
                    self._limit.name,
                    holder.run_id,
                    holder.workflow_id,
                )

    def _told(self, telling: asyncio.Task[None]) -> None:
        self._telling.discard(telling)
        self._changed = True

    def _next_wake(self, now: datetime, idle_since: datetime | None) -> timedelta | None:
        """How long to wait for a signal at most: until the next permit is due, the next check of
        the holders, or the end of an idle spell.
        """
        if self._holders:
            interval = CHECK_INTERVAL if self._waiting else IDLE_CHECK_INTERVAL
            if self._check_at is None or self._check_at > now + interval:
                self._check_at = now + interval
        else:
            self._check_at = None
        wakes = [] if self._check_at is None else [self._check_at]
        space = spacing(self._limit)
        room = self._limit.concurrent is None or len(self._holders) < self._limit.concurrent
        if self._waiting and room and space is not None and self._last_grant is not None:
            wakes.append(self._last_grant + space)
        if idle_since is not None:
            wakes.append(idle_since + IDLE_TIMEOUT)
        if not wakes:
            return None
        return max(min(wakes) - now, timedelta(milliseconds=1))

    async def _take_back_from_closed_runs(self) -> None:
        """The permits of holders whose crisis runs have closed (terminated, reset, timed out)."""
        now = workflow.now()
        self._check_at = None
        held = [holder for holder in self._holders.values() if now - holder.since >= CHECK_INTERVAL]
        if not held:
            return
        try:
            gone = await workflow.execute_activity(
                HOLDERS_GONE_ACTIVITY,
                held,
                result_type=list[str],
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary=f"{len(held)} holder(s) of {self._limit.name}",
            )
        except ActivityError as err:
            workflow.logger.warning("Cannot check the holders of %s: %s", self._limit.name, err)
            return
        for request_id in gone:
            holder = self._holders.pop(request_id, None)
            if holder is not None:
                workflow.logger.warning(
                    "Permit of %s taken back from %s (phase %s): its crisis run has closed",
                    self._limit.name,
                    holder.workflow_id,
                    holder.phase_id,
                )
                self._settled = [*self._settled[-(SETTLED_KEPT - 1) :], request_id]
        self._changed = True

    def _carried(self) -> LimiterState:
        return LimiterState(
            limit=self._limit,
            holders=list(self._holders.values()),
            waiting=self._waiting,
            last_grant=self._last_grant,
            granted=self._granted,
            settled=self._settled,
        )
