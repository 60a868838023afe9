"""``liara`` as a user runs it, writing each call it makes to a server in a log file, one line a
call: ``query NAME`` and ``describe`` of a workflow on Temporal, ``METHOD PATH`` of a request to
the service. For the tests of what a command asks while it follows a crisis.

    python tests/helpers/counted_cli.py LOG ARGS...
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from tests.helpers import REPO_ROOT

SCRIPT = Path(__file__)


def calls(log: Path) -> list[str]:
    """The calls the command made, in order."""
    return log.read_text().splitlines() if log.exists() else []


async def start_counted(
    env: dict[str, str], cwd: Path, log: Path, *args: str, **streams: Any
) -> asyncio.subprocess.Process:
    """``liara ARGS`` as a subprocess whose calls go to ``log`` (its output piped)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        str(log),
        *args,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        **streams,
    )


def _count_calls(log: Path) -> None:
    import httpx
    from temporalio.client import WorkflowHandle

    def note(call: str) -> None:
        with log.open("a", encoding="utf-8") as lines:
            lines.write(call + "\n")

    query, describe, send = WorkflowHandle.query, WorkflowHandle.describe, httpx.AsyncClient.send

    async def counted_query(self: WorkflowHandle, name: Any, *args: Any, **kwargs: Any) -> Any:
        note(f"query {getattr(name, '__name__', name)}")
        return await query(self, name, *args, **kwargs)

    async def counted_describe(self: WorkflowHandle, *args: Any, **kwargs: Any) -> Any:
        note("describe")
        return await describe(self, *args, **kwargs)

    async def counted_send(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        note(f"{request.method} {request.url.path}")
        return await send(self, request, **kwargs)

    WorkflowHandle.query = counted_query  # type: ignore[method-assign]
    WorkflowHandle.describe = counted_describe  # type: ignore[method-assign]
    httpx.AsyncClient.send = counted_send  # type: ignore[method-assign]


def _tell_where_it_waits() -> None:
    """On SIGUSR1, write every thread's and every asyncio task's stack to standard error (for a
    test whose command does not end when it should).
    """
    import asyncio
    import faulthandler
    import signal

    def tell(*_: Any) -> None:
        faulthandler.dump_traceback(all_threads=True)
        loop = asyncio._get_running_loop()
        for task in asyncio.all_tasks(loop) if loop else ():
            task.print_stack(file=sys.stderr)

    signal.signal(signal.SIGUSR1, tell)


if __name__ == "__main__":
    import signal

    # Ctrl-C reaches a command run from a terminal; a shell ignores it for its background jobs, and
    # a test suite run as one would hand that on to the command it tests.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _tell_where_it_waits()
    _count_calls(Path(sys.argv[1]))
    sys.argv = [str(REPO_ROOT / "cognition/liara/cli.py"), *sys.argv[2:]]
    from cognition.liara.cli import main

    main()
