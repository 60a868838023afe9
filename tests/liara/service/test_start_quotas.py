"""The starts-per-minute quota as a sliding window, on a clock the test moves: when a start frees
up, what ``Retry-After`` says, and that a start which starts nothing takes nothing of it.
"""

from __future__ import annotations

from typing import cast

import pytest

from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.service.problem_types import TOO_MANY_STARTS
from cognition.liara.service.problems import ProblemError
from cognition.liara.service.start_quotas import StartQuotas, running_crises_query

NO_AGENCY = cast(LiaraTemporalAgency, None)  # the running quota is off: nothing asks Temporal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def start(quotas: StartQuotas, owner: str = "op", *, created: bool = True) -> None:
    async with quotas.admit(owner, NO_AGENCY) as admission:
        admission.started({"workflow_id": f"crisis-workflow-{owner}", "created": created})


async def refused(quotas: StartQuotas, owner: str = "op") -> ProblemError:
    with pytest.raises(ProblemError) as raised:
        await start(quotas, owner)
    return raised.value


async def test_a_start_frees_up_a_minute_after_the_oldest_of_the_window():
    clock = Clock()
    quotas = StartQuotas(running=0, per_minute=3, running_retry=30, clock=clock)
    for offset in (0.0, 10.0, 20.5):
        clock.now = 1000.0 + offset
        await start(quotas)
    clock.now = 1030.0
    problem = await refused(quotas)
    assert problem.kind is TOO_MANY_STARTS
    assert problem.headers == {"Retry-After": "30"}  # the first start leaves the window at 1060
    assert problem.detail == "Token 'op' has started 3 crises within the last minute, its quota: try again in 30 s."
    clock.now = 1059.5
    assert (await refused(quotas)).headers == {"Retry-After": "1"}  # never 0
    clock.now = 1060.0
    await start(quotas)  # the first has left the window
    assert (await refused(quotas)).headers == {"Retry-After": "10"}  # the second leaves it at 1070
    await start(quotas, "another-token")  # each token has a window of its own


async def test_a_start_that_starts_nothing_takes_nothing_of_the_quota():
    clock = Clock()
    quotas = StartQuotas(running=0, per_minute=2, running_retry=30, clock=clock)
    with pytest.raises(RuntimeError):
        async with quotas.admit("op", NO_AGENCY):
            raise RuntimeError("Temporal refused")
    await start(quotas, created=False)  # the crisis an Idempotency-Key started before
    await start(quotas)
    await start(quotas)
    assert (await refused(quotas)).headers == {"Retry-After": "60"}


async def test_zero_turns_the_quota_off():
    quotas = StartQuotas(running=0, per_minute=0, running_retry=30, clock=Clock())
    for _ in range(1000):
        await start(quotas)


def test_running_crises_are_counted_by_name_status_and_task_queue():
    assert running_crises_query("op-1", "liara-crises") == (
        "WorkflowType = 'CrisisResponseWorkflow' AND CrisisInitiatedBy = 'op-1' "
        "AND ExecutionStatus = 'Running' AND TaskQueue = 'liara-crises'"
    )
