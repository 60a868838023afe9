"""Helpers the test modules share, by topic (fixtures live in the conftest.py files):
``processes`` (worker scripts and servers as subprocesses), ``cli`` (the ``liara`` command line),
``servers`` (Temporal servers), ``records`` (crisis records and record databases), ``workflows``
(the crisis workflow with in-process workers), ``service`` (``liara serve`` and its HTTP API),
``metrics``, ``webhooks`` and ``executors`` (agent executors).

Here: the repository's root, and ``assert_eventually``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


async def assert_eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20, interval: float = 0.1) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
