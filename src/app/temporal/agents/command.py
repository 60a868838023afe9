"""The ``command`` executor: runs a local program with the mission JSON on its stdin."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pydantic import Field, JsonValue
from temporalio.exceptions import ApplicationError

from app.temporal.agents.mission import ExecutorSettings, Mission, TimeoutSeconds, agent_failure, parse_json
from app.temporal.agents.processes import (
    ProgramArgv,
    how_it_ended,
    inherited_environment,
    keep_tail,
    kill_process_group,
    last_line,
    start_process,
)
from app.temporal.models import MAX_OUTPUT_BYTES


class CommandExecutor:
    """Runs a local program (no shell) with the mission JSON on stdin; its stdout is the output.

    The program runs in its own session (see app.temporal.agents.processes). Its environment is
    built, not inherited: the worker's variables named by ``INHERITED_ENV`` (``PATH``, locale,
    home and the like), then the executor's ``env``, then ``LIARA_IDEMPOTENCY_KEY``.
    """

    def __init__(
        self,
        argv: Sequence[str],
        timeout_seconds: float | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        non_retryable_exit_codes: Iterable[int] = (),
    ) -> None:
        if not argv or not all(isinstance(arg, str) for arg in argv) or not argv[0]:
            raise ValueError("argv must be a non-empty list of strings")
        if timeout_seconds is not None and not timeout_seconds > 0:
            raise ValueError("timeout_seconds must be greater than 0")
        self.argv = list(argv)
        self.timeout_seconds = timeout_seconds
        self.cwd = Path(cwd) if cwd is not None else None
        #: Added to the few variables taken from the worker's environment (see INHERITED_ENV).
        self.env = dict(env or {})
        self.non_retryable_exit_codes = frozenset(non_retryable_exit_codes)

    async def run(self, mission: Mission) -> JsonValue:
        phase_id = mission.phase.phase_id
        env = {**inherited_environment(), **self.env, "LIARA_IDEMPOTENCY_KEY": mission.idempotency_key}
        process = await start_process(self.argv, cwd=self.cwd, env=env, noun="command")
        stdin = json.dumps(mission.payload()).encode()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                stdout, overflowed, stderr, returncode = await _communicate(process, stdin)
        except TimeoutError:
            await kill_process_group(process)
            raise agent_failure(
                f"Command {self.argv[0]} for phase {phase_id} was killed after {self.timeout_seconds:g} seconds.",
                retryable=True,
            ) from None
        except BaseException:  # CancelledError above all: the agent must not outlive its activity
            await kill_process_group(process)
            raise
        if returncode != 0:
            raise self._exit_failure(returncode, stderr, phase_id)
        if overflowed:
            raise agent_failure(
                f"Command {self.argv[0]} wrote more than {MAX_OUTPUT_BYTES} bytes of output for phase {phase_id}.",
                retryable=False,
            )
        if not stdout.strip():
            return None
        parsed, value = parse_json(stdout)
        return value if parsed else {"stdout": stdout.decode("utf-8", errors="replace")}

    def _exit_failure(self, returncode: int, stderr: bytes, phase_id: str) -> ApplicationError:
        return agent_failure(
            f"Command {self.argv[0]} for phase {phase_id} {how_it_ended(returncode)}{last_line(stderr)}",
            retryable=returncode not in self.non_retryable_exit_codes,
        )


async def _communicate(process: asyncio.subprocess.Process, stdin: bytes) -> tuple[bytes, bool, bytes, int]:
    """Feed stdin and drain both pipes concurrently (so neither side blocks on a full pipe).

    Returns the first ``MAX_OUTPUT_BYTES`` of stdout, whether it had more, the last
    ``MAX_OUTPUT_BYTES`` of stderr and the exit code. A flood of output is drained, not kept.
    """
    pipe_in, pipe_out, pipe_err = process.stdin, process.stdout, process.stderr
    assert pipe_in and pipe_out and pipe_err  # start_process pipes all three

    async def feed() -> None:
        try:
            pipe_in.write(stdin)
            await pipe_in.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the program does not read its input; that is its business
        finally:
            pipe_in.close()

    async def head(stream: asyncio.StreamReader) -> tuple[bytes, bool]:
        kept, overflowed = bytearray(), False
        while chunk := await stream.read(65536):
            if not overflowed:
                kept += chunk
                if len(kept) > MAX_OUTPUT_BYTES:
                    kept, overflowed = bytearray(), True
        return bytes(kept), overflowed

    stderr = bytearray()
    async with asyncio.TaskGroup() as group:
        group.create_task(feed())
        stdout = group.create_task(head(pipe_out))
        group.create_task(keep_tail(pipe_err, stderr))
    returncode = await process.wait()
    return *stdout.result(), bytes(stderr), returncode


class CommandSettings(ExecutorSettings):
    """What ``type = "command"`` takes."""

    argv: ProgramArgv
    timeout_seconds: TimeoutSeconds | None = None
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    non_retryable_exit_codes: list[int] = Field(default_factory=list)

    def build(self, config_dir: Path) -> CommandExecutor:
        # A relative cwd is relative to the configuration file, like every path in it.
        cwd = config_dir / self.cwd if self.cwd is not None else None
        return CommandExecutor(**{**self.model_dump(), "cwd": cwd})
