"""An activity's work awaited while it heartbeats: a dead worker is noticed within the heartbeat
timeout, and a cancel (which reaches an activity with a heartbeat's answer) stops the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity

#: Longest pause between heartbeats (a quarter of the heartbeat timeout if shorter).
HEARTBEAT_INTERVAL_SECONDS = 1.0

T = TypeVar("T")


async def while_heartbeating(work: Awaitable[T]) -> T:
    """``work``'s result; heartbeats only while it runs, so quick work costs the server none. A
    cancel of the activity cancels ``work`` and waits for it to stop before propagating.
    """
    task = asyncio.ensure_future(work)
    timeout = activity.info().heartbeat_timeout
    interval = HEARTBEAT_INTERVAL_SECONDS
    if timeout:
        interval = min(interval, timeout.total_seconds() / 4)
    try:
        while not (await asyncio.wait({task}, timeout=interval))[0]:
            activity.heartbeat()
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    return task.result()
