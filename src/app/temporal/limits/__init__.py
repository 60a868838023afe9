"""Limits on language-model agents' calls across the fleet: per model (or llm executor, or
provider host) and per tool, at most ``concurrent`` calls at once and ``per_minute`` calls a
minute, whichever worker makes them. A call over a limit waits for its turn; it never fails for it.

    [limits.models."gpt-4.1-mini"]   # a model, an llm executor's name, or a provider's host
    concurrent = 4
    per_minute = 120                 # one call every 0.5 s at most
    [limits.tools.lookup]            # an executor agents call as a tool
    concurrent = 2

Each limit is a limiter workflow (``limiter``) per crisis task queue, which hands out permits in
the order asked; an agent's step in its crisis workflow holds one around its activity
(``permits``). The limiters and their activities run on the limits task queue
(``<task queue>-limits``), which every crisis worker with ``[limits]`` polls (``serving``):
a deployment needs nothing more. Which limits a phase's steps wait for is in its plan
(``AgentLoopPlan.limits``, ``ToolSpec.limit``), fixed in its history when the phase starts.

A permit covers a step's activity with its retries: ``per_minute`` spaces the calls of the
agents, not the attempts of one call.
"""

from app.temporal.limits.limiter import (
    LimiterStatus,
    LimiterWorkflow,
    describe_limit,
    limiter_id,
    limits_task_queue,
)
from app.temporal.limits.permits import step_permits

__all__ = [
    "LimiterStatus",
    "LimiterWorkflow",
    "describe_limit",
    "limiter_id",
    "limits_task_queue",
    "step_permits",
]
