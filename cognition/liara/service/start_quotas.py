"""How many crises one token may start: at most ``per_minute`` within any 60 seconds, and no
new one while ``running`` crises it started still run. Past either, the start is a 429 problem
with ``Retry-After``, and nothing is started. Both start routes (a crisis, a playbook) count.

Running crises are counted on Temporal's visibility: the crises of the service's task queue
whose ``CrisisInitiatedBy`` is the token's name and that still run. That count holds however
many replicas of the service share the task queue, and whichever of them (or the command line,
under that name) started the crises; the service itself keeps nothing about them. Visibility
lags its workflows a little, so the crises this process started in the last minute count too
until visibility lists them; when they would tip the count over the quota, Temporal is asked
whether each still runs (one that ended at once no longer counts).

Starts per minute are counted in this process's memory, a sliding window per token: a rate is
about bursts at this process, and counting it needs no request to Temporal. Behind ``N``
replicas a token may start up to ``N`` times as many per minute.

A start that starts nothing (refused, failed, or the repeat of an Idempotency-Key's start) is
not counted; a repeat is never refused by a quota either, so a client retrying a start it sent
before gets its crisis.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from app.temporal.visibility import CrisisFilter, crisis_list_query, quote_literal
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.rpc_errors import translate_rpc_error
from cognition.liara.service.problem_types import TOO_MANY_RUNNING_CRISES, TOO_MANY_STARTS
from cognition.liara.service.problems import ProblemError

#: The window of the starts-per-minute quota.
WINDOW_SECONDS = 60.0
#: How long a crisis this process started counts although visibility does not list it (visibility
#: catches up within a second or so; past this it has, and lists it or knows it ended).
VISIBILITY_GRACE_SECONDS = 60.0
#: Most running crises listed to count them (Temporal's largest page).
_PAGE = 1000


def running_crises_query(initiated_by: str, task_queue: str) -> str:
    """The visibility query of the crises ``initiated_by`` started on ``task_queue`` that still run."""
    started_by = crisis_list_query(CrisisFilter(initiated_by=initiated_by))
    return f"{started_by} AND ExecutionStatus = 'Running' AND TaskQueue = {quote_literal(task_queue)}"


class Admission:
    """A start the quotas let through; ``started`` tells them what it did."""

    def __init__(self) -> None:
        self.workflow_id: str | None = None

    def started(self, answer: dict[str, Any]) -> None:
        """The start's answer: a crisis it created counts; the one a repeated key returns does not."""
        if answer.get("created"):
            self.workflow_id = answer["workflow_id"]


class StartQuotas:
    """A token's quotas of running crises (``running``) and of starts per minute (``per_minute``);
    0 turns one off. ``running_retry`` is the ``Retry-After`` of a start refused for running crises.
    """

    def __init__(
        self,
        *,
        running: int,
        per_minute: int,
        running_retry: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.running = running
        self.per_minute = per_minute
        self.running_retry = running_retry
        self._clock = clock
        #: Per token, when each start of the window was let through.
        self._starts: dict[str, deque[float]] = {}
        #: Per token, the crises this process started in the last while, and when.
        self._recent: dict[str, dict[str, float]] = {}
        #: Per token, the starts let through and not answered yet.
        self._in_flight: Counter[str] = Counter()

    @asynccontextmanager
    async def admit(
        self, owner: str, agency: LiaraTemporalAgency, repeat_of: str | None = None
    ) -> AsyncIterator[Admission]:
        """Let ``owner`` start a crisis in the block, or raise the problem of the quota it is past.
        ``repeat_of``: the workflow id an Idempotency-Key's start has; if it exists, this start
        repeats it and no quota refuses it.
        """
        try:
            taken = await self._take(owner, agency)
        except ProblemError:
            if repeat_of is None or not await _exists(agency, repeat_of):
                raise
            taken = None
        admission = Admission()
        try:
            yield admission
        finally:
            if taken is not None:
                self._settle(owner, taken, admission.workflow_id)

    def _retry_after(self, owner: str) -> int | None:
        """Seconds until ``owner`` may start another crisis as far as the per-minute quota goes
        (None: it may now).
        """
        starts = self._starts.get(owner)
        if not self.per_minute or starts is None:
            return None
        now = self._clock()
        while starts and starts[0] <= now - WINDOW_SECONDS:
            starts.popleft()
        if not starts:
            del self._starts[owner]
            return None
        if len(starts) < self.per_minute:
            return None
        return max(1, math.ceil(starts[0] + WINDOW_SECONDS - now))

    async def _take(self, owner: str, agency: LiaraTemporalAgency) -> float:
        """One start of ``owner``'s, taken from its quotas (given back by ``_settle``): when."""
        retry = self._retry_after(owner)
        if retry is not None:
            raise ProblemError(
                TOO_MANY_STARTS,
                f"Token {owner!r} has started {self.per_minute} crises within the last minute, its quota: "
                f"try again in {retry} s.",
                {"Retry-After": str(retry)},
            )
        now = self._clock()
        starts = self._starts.setdefault(owner, deque()) if self.per_minute else None
        if starts is not None:
            starts.append(now)  # held while the running crises are counted, given back if refused
        try:
            if self.running:
                await self._check_running(owner, agency)
        except BaseException:
            self._give_back(owner, now)
            raise
        self._in_flight[owner] += 1
        return now

    def _settle(self, owner: str, taken: float, workflow_id: str | None) -> None:
        """A start let through has been answered: the crisis it created counts as running; a
        start that created none gives its place in the window back.
        """
        self._in_flight[owner] -= 1
        if not self._in_flight[owner]:
            del self._in_flight[owner]
        if workflow_id is not None:
            self._recent.setdefault(owner, {})[workflow_id] = self._clock()
        else:
            self._give_back(owner, taken)

    def _give_back(self, owner: str, taken: float) -> None:
        starts = self._starts.get(owner)
        if starts is not None and taken in starts:
            starts.remove(taken)
            if not starts:
                del self._starts[owner]

    def _recently_started(self, owner: str) -> set[str]:
        """The crises this process started for ``owner`` recently enough that visibility may not list them yet."""
        recent = self._recent.get(owner, {})
        since = self._clock() - VISIBILITY_GRACE_SECONDS
        for workflow_id, started in list(recent.items()):
            if started <= since:
                del recent[workflow_id]
        if not recent:
            self._recent.pop(owner, None)
        return set(recent)

    async def _check_running(self, owner: str, agency: LiaraTemporalAgency) -> None:
        """Raise the problem if ``owner``'s running crises, with its starts in flight, fill its quota.

        What it decides on is counted after the last request to Temporal, with nothing awaited in
        between, so starts sent at once count one another: no more are let through than the quota.
        """
        client = await agency.connect()
        query = running_crises_query(owner, agency.settings.task_queue)
        try:
            listed = client.list_workflows(query, limit=self.running, page_size=min(self.running, _PAGE))
            visible = {execution.id async for execution in listed}
        except RPCError as err:
            raise translate_rpc_error(err, agency.settings) from None
        unlisted = self._recently_started(owner) - visible
        if unlisted and len(visible) + len(unlisted) + self._in_flight[owner] >= self.running:
            # Visibility may not list them because they have ended already: Temporal itself says.
            ordered = sorted(unlisted)
            runs = await asyncio.gather(*(_still_runs(client, workflow_id) for workflow_id in ordered))
            for workflow_id, running in zip(ordered, runs, strict=True):
                if not running:
                    self._recent.get(owner, {}).pop(workflow_id, None)
        counted = len(visible | self._recently_started(owner)) + self._in_flight[owner]
        if counted >= self.running:
            raise ProblemError(
                TOO_MANY_RUNNING_CRISES,
                f"Token {owner!r} has {self.running} crises running, its quota: start another once one ends "
                f"(cancel one, or try again in {self.running_retry} s).",
                {"Retry-After": str(self.running_retry)},
            )


async def _still_runs(client: Client, workflow_id: str) -> bool:
    """Whether the crisis still runs; one Temporal cannot tell about now counts as running."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        return err.status != RPCStatusCode.NOT_FOUND
    return description.status == WorkflowExecutionStatus.RUNNING


async def _exists(agency: LiaraTemporalAgency, workflow_id: str) -> bool:
    """Whether a crisis with this workflow id was started (a failure to tell: no)."""
    client = await agency.connect()
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    return True
