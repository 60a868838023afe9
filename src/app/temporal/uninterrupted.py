"""Awaiting a record write to its end even when the caller is cancelled meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def uninterrupted(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to its end; if the caller is cancelled meanwhile, let the awaitable
    finish first, then let the cancel through (it wins over the awaitable's own outcome).

    Used by the workflow for its record writes (deterministic: only asyncio tasks of its own
    loop), so that a write is never cut short and none lands after a cancel is over.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.gather(task, return_exceptions=True)
        raise
