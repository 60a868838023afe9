"""Agent executors: what actually performs a mission phase on behalf of ``perform_agent_mission``.

An executor takes one :class:`Mission` and returns the phase's output (small JSON) or raises an
``ApplicationError`` of type ``AgentFailure``. Whether that failure is retryable decides between
Temporal's retry policy and failing the phase at once, so every executor sorts its failures into
"might work next attempt" (network trouble, 5xx, non-zero exit, timeouts) and "never will"
(4xx, missing executable, bad parameters).

Executors run inside the activity's asyncio task: cancellation of the activity (workflow cancel,
start-to-close or heartbeat timeout, worker shutdown) arrives as ``asyncio.CancelledError``, and
an executor must stop its agent before letting it propagate.

Built-in executors are ``simulate``, ``http`` and ``command``; third-party ones are factories
published under the entry-point group ``liara.executors``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError
from temporalio.exceptions import ApplicationError

from app.temporal.models import MAX_OUTPUT_BYTES, MissionPhase

logger = logging.getLogger("liara.executors")

#: ``ApplicationError.type`` of every failure an executor reports.
AGENT_FAILURE_ERROR = "AgentFailure"
#: Entry-point group of third-party executor factories: ``factory(**settings) -> AgentExecutor``.
ENTRY_POINT_GROUP = "liara.executors"
#: How long to wait for a killed command to be reaped before giving up on it.
_REAP_TIMEOUT_SECONDS = 10.0
_STDERR_LINE_CHARS = 300


@dataclass(frozen=True)
class Mission:
    """One attempt at one phase, as an executor sees it."""

    crisis_id: str
    workflow_id: str
    phase: MissionPhase
    attempt: int
    #: True when this runs the phase's ``compensate_action`` (the workflow keeps the phase id).
    compensation: bool = False

    @property
    def idempotency_key(self) -> str:
        """The same on every attempt of this phase, so an agent can drop a duplicate delivery.

        A compensation reuses the phase id with another action; it gets its own key so that an
        agent deduplicating by key does not mistake the undo for a retry of the original.
        """
        key = f"{self.workflow_id}/{self.phase.phase_id}"
        return f"{key}/compensation" if self.compensation else key

    def payload(self) -> dict[str, JsonValue]:
        """The JSON document sent to an agent (HTTP body, command stdin)."""
        phase = self.phase
        return {
            "crisis_id": self.crisis_id,
            "workflow_id": self.workflow_id,
            "attempt": self.attempt,
            "phase_id": phase.phase_id,
            "agent_id": phase.agent_id,
            "action": phase.action,
            "target": phase.target,
            "priority": phase.priority,
            "compensation": self.compensation,
            "params": phase.model_dump(mode="json", include={"params"})["params"],
        }


@runtime_checkable
class AgentExecutor(Protocol):
    """Performs one attempt of a mission phase and returns its output (small JSON, or None)."""

    async def run(self, mission: Mission) -> JsonValue: ...


def agent_failure(message: str, *, retryable: bool) -> ApplicationError:
    """The error an executor raises: retryable ones go to Temporal's retry policy, others fail the phase."""
    return ApplicationError(message, type=AGENT_FAILURE_ERROR, non_retryable=not retryable)


def _parse_json(raw: bytes | str) -> tuple[bool, JsonValue]:
    """``(True, value)`` for strict JSON (no NaN or Infinity, which JSON payloads cannot carry)."""

    def reject(constant: str) -> None:
        raise ValueError(constant)

    try:
        return True, json.loads(raw, parse_constant=reject)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return False, None


# --- simulate ---------------------------------------------------------------------------------


class _SimulateParams(BaseModel):
    """``phase.params`` understood by the simulator; other keys are left for real executors."""

    model_config = ConfigDict(extra="ignore", strict=True)

    duration: Annotated[float, Field(ge=0, le=86400)] = 0.0
    fail_attempts: Annotated[int, Field(ge=0)] = 0
    fail: Literal["always", "permanent"] | None = None
    hang: bool = False
    output: JsonValue = Field(default_factory=lambda: {"simulated": True})


class SimulateExecutor:
    """Stands in for a real agent: completes, waits, hangs or fails as the phase's params say.

    It is the default so a crisis runs end to end with no agents deployed, and its params let
    tests and demos drive every path of the workflow (retries, permanent failures, cancellation).
    """

    async def run(self, mission: Mission) -> JsonValue:
        params = self._params(mission)
        if params.duration:
            await asyncio.sleep(params.duration)
        if params.hang:
            await asyncio.get_running_loop().create_future()  # only cancellation ends this
        phase_id = mission.phase.phase_id
        if params.fail == "permanent":
            raise agent_failure(f"Simulated permanent failure of phase {phase_id}.", retryable=False)
        if params.fail == "always":
            raise agent_failure(f"Simulated failure of phase {phase_id} on attempt {mission.attempt}.", retryable=True)
        if mission.attempt <= params.fail_attempts:
            raise agent_failure(
                f"Simulated failure of phase {phase_id} on attempt {mission.attempt} of "
                f"{params.fail_attempts} planned failures.",
                retryable=True,
            )
        return params.output

    @staticmethod
    def _params(mission: Mission) -> _SimulateParams:
        try:
            return _SimulateParams.model_validate(mission.phase.params)
        except ValidationError as err:
            problem = err.errors()[0]
            param = ".".join(str(part) for part in problem["loc"]) or "params"
            raise agent_failure(
                f"Phase {mission.phase.phase_id} has an invalid simulate param {param!r}: {problem['msg']}.",
                retryable=False,
            ) from None


# --- http -------------------------------------------------------------------------------------

#: 4xx answers that mean "not now" rather than "never".
_RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})


class HttpExecutor:
    """POSTs the mission to an agent's HTTP endpoint and returns the JSON it answers.

    The ``Idempotency-Key`` header is the same on every attempt of a phase, so an agent that
    stores it can answer a retried delivery without acting twice.
    """

    def __init__(self, url: str, timeout_seconds: float = 30.0, headers: Mapping[str, str] | None = None) -> None:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as err:
            raise ValueError(f"url {url!r} is not a URL ({err})") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"url must be an absolute http:// or https:// URL, not {url!r}")
        if not timeout_seconds > 0:
            raise ValueError("timeout_seconds must be greater than 0")
        self.url = url
        self.timeout_seconds = float(timeout_seconds)
        self.headers = dict(headers or {})
        # Without credentials or query string: this goes into error messages and records.
        self.display_url = f"{parsed.scheme}://{parsed.netloc.decode('ascii')}{parsed.path}"
        self._client: httpx.AsyncClient | None = None

    def _client_for_run(self) -> httpx.AsyncClient:
        # Created on first use, inside the worker's event loop; pooled connections are reused.
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(timeout=self.timeout_seconds, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        """Close pooled connections (at worker shutdown)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def run(self, mission: Mission) -> JsonValue:
        phase_id = mission.phase.phase_id
        headers = {**self.headers, "Idempotency-Key": mission.idempotency_key}
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange (a trickling agent).
            async with asyncio.timeout(self.timeout_seconds):
                request = self._client_for_run().stream("POST", self.url, json=mission.payload(), headers=headers)
                async with request as response:
                    if not response.is_success:
                        raise self._status_failure(response, phase_id)
                    body = await self._read_capped(response, phase_id)
                    encoding = response.encoding or "utf-8"
        except (TimeoutError, httpx.TimeoutException):
            raise agent_failure(
                f"Agent at {self.display_url} did not answer phase {phase_id} within {self.timeout_seconds:g} seconds.",
                retryable=True,
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
            raise agent_failure(f"Agent URL {self.display_url} is unusable: {err}.", retryable=False) from None
        except httpx.HTTPError as err:
            reason = str(err) or type(err).__name__
            raise agent_failure(
                f"Could not reach agent at {self.display_url} for phase {phase_id} ({reason}).", retryable=True
            ) from None
        if not body.strip():
            return None
        parsed, value = _parse_json(body)
        return value if parsed else {"text": body.decode(encoding, errors="replace")}

    def _status_failure(self, response: httpx.Response, phase_id: str) -> ApplicationError:
        status = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        if response.is_server_error or response.status_code in _RETRYABLE_CLIENT_STATUSES:
            return agent_failure(f"Agent at {self.display_url} failed phase {phase_id} with {status}.", retryable=True)
        return agent_failure(f"Agent at {self.display_url} rejected phase {phase_id} with {status}.", retryable=False)

    async def _read_capped(self, response: httpx.Response, phase_id: str) -> bytes:
        too_large = agent_failure(
            f"Agent at {self.display_url} answered phase {phase_id} with more than {MAX_OUTPUT_BYTES} bytes.",
            retryable=False,
        )
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_OUTPUT_BYTES:
            raise too_large
        body = bytearray()
        async for chunk in response.aiter_bytes():  # decoded, so a compressed bomb is capped too
            body += chunk
            if len(body) > MAX_OUTPUT_BYTES:
                raise too_large
        return bytes(body)


# --- command ----------------------------------------------------------------------------------


#: The only variables of the worker's environment a command agent inherits (besides the ``LC_*``
#: locale ones): what finding programs, files, the locale and the time zone needs. Everything
#: else an agent needs goes in its executor's ``env``.
INHERITED_ENV = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME"})


def inherited_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The part of ``environ`` (default: the worker's) that a command agent gets."""
    environ = os.environ if environ is None else environ
    return {name: value for name, value in environ.items() if name in INHERITED_ENV or name.startswith("LC_")}


class CommandExecutor:
    """Runs a local program (no shell) with the mission JSON on stdin; its stdout is the output.

    The program runs in its own session, so killing it on cancellation or timeout also kills
    whatever it started. Its environment is built, not inherited: the worker's variables named
    by :data:`INHERITED_ENV` (``PATH``, locale, home and the like), then the executor's ``env``,
    then ``LIARA_IDEMPOTENCY_KEY``. The worker's secrets (encryption keys, Temporal API key and
    TLS key, OpenTelemetry headers, anything else) never reach an agent, which could otherwise
    print them into the phase's output, the history and the record.
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
        process = await self._start(mission)
        stdin = json.dumps(mission.payload()).encode()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                stdout, overflowed, stderr, returncode = await _communicate(process, stdin)
        except TimeoutError:
            await _kill(process)
            raise agent_failure(
                f"Command {self.argv[0]} for phase {phase_id} was killed after {self.timeout_seconds:g} seconds.",
                retryable=True,
            ) from None
        except BaseException:  # CancelledError above all: the agent must not outlive its activity
            await _kill(process)
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
        parsed, value = _parse_json(stdout)
        return value if parsed else {"stdout": stdout.decode("utf-8", errors="replace")}

    async def _start(self, mission: Mission) -> asyncio.subprocess.Process:
        env = {**inherited_environment(), **self.env, "LIARA_IDEMPOTENCY_KEY": mission.idempotency_key}
        try:
            return await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
            )
        except FileNotFoundError as err:
            if self.cwd is not None and err.filename is not None and Path(err.filename) == self.cwd:
                message = f"Working directory {self.cwd} of command {self.argv[0]} does not exist."
            else:
                message = f"Command executable {self.argv[0]} was not found."
            raise agent_failure(message, retryable=False) from None
        except PermissionError:
            raise agent_failure(f"Command executable {self.argv[0]} is not executable.", retryable=False) from None
        except OSError as err:
            raise agent_failure(
                f"Command {self.argv[0]} could not be started ({err.strerror or err}).", retryable=True
            ) from None

    def _exit_failure(self, returncode: int, stderr: bytes, phase_id: str) -> ApplicationError:
        if returncode < 0:
            try:
                ended = f"was killed by {signal.Signals(-returncode).name}"
            except ValueError:
                ended = f"was killed by signal {-returncode}"
        else:
            ended = f"exited with code {returncode}"
        lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines() if line.strip()]
        detail = f": {lines[-1][:_STDERR_LINE_CHARS]}" if lines else ""
        return agent_failure(
            f"Command {self.argv[0]} for phase {phase_id} {ended}{detail}",
            retryable=returncode not in self.non_retryable_exit_codes,
        )


async def _communicate(process: asyncio.subprocess.Process, stdin: bytes) -> tuple[bytes, bool, bytes, int]:
    """Feed stdin and drain both pipes concurrently (so neither side blocks on a full pipe).

    Returns the first ``MAX_OUTPUT_BYTES`` of stdout, whether it had more, the last
    ``MAX_OUTPUT_BYTES`` of stderr and the exit code. A flood of output is drained, not kept.
    """
    assert process.stdin and process.stdout and process.stderr

    async def feed() -> None:
        try:
            process.stdin.write(stdin)
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the program does not read its input; that is its business
        finally:
            process.stdin.close()

    async def head(stream: asyncio.StreamReader) -> tuple[bytes, bool]:
        kept, overflowed = bytearray(), False
        while chunk := await stream.read(65536):
            if not overflowed:
                kept += chunk
                if len(kept) > MAX_OUTPUT_BYTES:
                    kept, overflowed = bytearray(), True
        return bytes(kept), overflowed

    async def tail(stream: asyncio.StreamReader) -> bytes:
        kept = bytearray()
        while chunk := await stream.read(65536):
            kept += chunk
            del kept[:-MAX_OUTPUT_BYTES]
        return bytes(kept)

    async with asyncio.TaskGroup() as group:
        group.create_task(feed())
        stdout = group.create_task(head(process.stdout))
        stderr = group.create_task(tail(process.stderr))
    returncode = await process.wait()
    return *stdout.result(), stderr.result(), returncode


async def _kill(process: asyncio.subprocess.Process) -> None:
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
        logger.warning("Command process %d was killed but its pipes are still open", process.pid)


# --- plugins ----------------------------------------------------------------------------------

ExecutorFactory = Callable[..., AgentExecutor]


def builtin_factories() -> dict[str, ExecutorFactory]:
    """The executor types that need no plugin."""
    return {"simulate": SimulateExecutor, "http": HttpExecutor, "command": CommandExecutor}


def plugin_entry_points(
    available: Iterable[EntryPoint] | None = None,
) -> dict[str, EntryPoint]:
    """Installed ``liara.executors`` entry points by name (``available`` replaces discovery, for tests)."""
    found = entry_points(group=ENTRY_POINT_GROUP) if available is None else available
    return {point.name: point for point in found if point.group == ENTRY_POINT_GROUP}


def load_factory(point: EntryPoint) -> ExecutorFactory:
    """Import a plugin's factory; ``ImportError``/``AttributeError``/``TypeError`` say why it is unusable."""
    factory = point.load()
    if not callable(factory):
        raise TypeError(f"entry point {point.name!r} ({point.value}) is not callable")
    return factory


def build_executor(factory: ExecutorFactory, settings: Mapping[str, Any]) -> AgentExecutor:
    """Call a factory and check it produced something with ``async run(mission)``."""
    executor = factory(**settings)
    if not isinstance(executor, AgentExecutor) or not inspect.iscoroutinefunction(executor.run):
        raise TypeError(f"{factory!r} returned {type(executor).__name__}, which has no async run(mission) method")
    return executor
