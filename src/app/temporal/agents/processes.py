"""Agent programs run on the worker's machine (``command`` agents, ``mcp`` stdio servers).

Each runs in its own session, so killing it on cancellation or timeout also kills whatever it
started, and with a built environment, not the worker's: the worker's secrets (encryption keys,
Temporal API key and TLS key, OpenTelemetry headers, anything else) never reach an agent, which
could otherwise print them into the phase's output, the history and the record.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from app.temporal.agents.mission import agent_failure
from app.temporal.models import MAX_OUTPUT_BYTES

logger = logging.getLogger("liara.executors")

#: The only variables of the worker's environment an agent program inherits (besides the ``LC_*``
#: locale ones): what finding programs, files, the locale and the time zone needs. Everything
#: else an agent needs goes in its executor's ``env``.
INHERITED_ENV = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME"})
#: How long to wait for a killed program to be reaped before giving up on it.
_REAP_TIMEOUT_SECONDS = 10.0
_STDERR_LINE_CHARS = 300


def _names_program(argv: list[str]) -> list[str]:
    if not argv[0]:
        raise ValueError("the first element must name the program")
    return argv


#: A program and its arguments, as settings give them (run without a shell).
ProgramArgv = Annotated[list[str], Field(min_length=1), AfterValidator(_names_program)]


def inherited_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The part of ``environ`` (default: the worker's) that an agent program gets."""
    environ = os.environ if environ is None else environ
    return {name: value for name, value in environ.items() if name in INHERITED_ENV or name.startswith("LC_")}


async def start_process(
    argv: Sequence[str], *, cwd: Path | None, env: Mapping[str, str], noun: str, limit: int = 2**16
) -> asyncio.subprocess.Process:
    """Start ``argv`` with piped standard streams in a session of its own.

    ``noun`` names the program in failures ("command", "MCP server"); ``limit`` bounds one line
    read from its stdout.
    """
    title = noun[:1].upper() + noun[1:]
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            limit=limit,
        )
    except FileNotFoundError as err:
        if cwd is not None and err.filename is not None and Path(err.filename) == cwd:
            message = f"Working directory {cwd} of {noun} {argv[0]} does not exist."
        else:
            message = f"{title} executable {argv[0]} was not found."
        raise agent_failure(message, retryable=False) from None
    except PermissionError:
        raise agent_failure(f"{title} executable {argv[0]} is not executable.", retryable=False) from None
    except OSError as err:
        reason = err.strerror or err
        raise agent_failure(f"{title} {argv[0]} could not be started ({reason}).", retryable=True) from None


async def keep_tail(stream: asyncio.StreamReader, kept: bytearray) -> None:
    """Drain ``stream`` to its end, keeping its last ``MAX_OUTPUT_BYTES`` in ``kept``."""
    while chunk := await stream.read(65536):
        kept += chunk
        del kept[:-MAX_OUTPUT_BYTES]


def how_it_ended(returncode: int) -> str:
    """``exited with code 3`` or ``was killed by SIGKILL``, for failure messages."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"was killed by signal {-returncode}"


def last_line(stderr: bytes) -> str:
    """``": <the last non-blank line>"`` of a program's stderr (shortened), or "" when it wrote none."""
    lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines() if line.strip()]
    return f": {lines[-1][:_STDERR_LINE_CHARS]}" if lines else ""


async def kill_process_group(process: asyncio.subprocess.Process) -> None:
    """Kill the program's whole process group and reap it, so nothing it started keeps running."""
    try:
        os.killpg(process.pid, signal.SIGKILL)  # start_new_session: the group id is the pid
    except (ProcessLookupError, PermissionError):
        pass  # already gone
    try:
        # Shielded: a second cancellation must not leave a zombie behind.
        await asyncio.wait_for(asyncio.shield(process.wait()), _REAP_TIMEOUT_SECONDS)
    except TimeoutError:
        # Something that left the group still holds the pipes; the child itself is reaped anyway.
        logger.warning("Agent process %d was killed but its pipes are still open", process.pid)
