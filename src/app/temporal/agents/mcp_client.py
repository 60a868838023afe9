"""One MCP tool call of the ``mcp`` executor, with the ``mcp`` SDK's client session.

Every call has a session of its own. A stdio server is started for the call, with the short
environment of a ``command`` agent, and stopped after it: asked to (its stdin closed) once the
call is done, killed with its process group at once when the call fails, times out or is
cancelled. So no server outlives its phase and phases share no server state. A streamable HTTP
server gets a new session (``initialize``, the call, ``DELETE``).

The request's ``_meta`` carries ``liara/idempotency-key`` (the same on every attempt of the
phase, like the HTTP executor's header) and ``liara/mission`` (the mission document).

The output is the tool's ``structuredContent``; without one, its text content (the text blocks
joined by newlines) parsed as JSON when it is JSON, else ``{"text": ...}``, or None when there is
no text. Other content (images, audio, resources) is not kept.

Failures, sorted:

- the tool's result says ``isError: true`` (the tool refused or failed): not retried, the tool's
  own message quoted;
- a JSON-RPC error saying the request is wrong (parse error, invalid request, method not found,
  invalid params: an unknown tool, bad arguments): not retried; other JSON-RPC errors are;
- an answer that breaks the protocol or the tool's output schema, or past the output cap: not
  retried;
- the server not there, its process dying or its HTTP answer cut off mid-call, an HTTP 5xx, 408,
  425 or 429, the timeout: retried; other HTTP error statuses are not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import ClientSession, McpError, types
from mcp.client.streamable_http import MCP_SESSION_ID, streamable_http_client
from mcp.shared.message import SessionMessage
from pydantic import JsonValue, ValidationError
from temporalio.exceptions import ApplicationError

from app.temporal.agents.http import is_retryable_status
from app.temporal.agents.mcp_server import McpServer
from app.temporal.agents.mission import Mission, agent_failure, parse_json
from app.temporal.agents.processes import (
    how_it_ended,
    inherited_environment,
    keep_tail,
    kill_process_group,
    last_line,
    start_process,
)
from app.temporal.models import MAX_OUTPUT_BYTES, json_size

IDEMPOTENCY_KEY_META = "liara/idempotency-key"
MISSION_META = "liara/mission"
#: Largest message read from a server: it carries the output and, often, the same as text.
MAX_MESSAGE_BYTES = 4 * MAX_OUTPUT_BYTES
#: How long a stdio server may take to exit once its stdin is closed, before it is killed.
_EXIT_GRACE_SECONDS = 2.0
_TOOL_ERROR_CHARS = 300
#: JSON-RPC errors that mean the request itself is wrong, so sending it again cannot help.
_REQUEST_ERRORS = frozenset({types.PARSE_ERROR, types.INVALID_REQUEST, types.METHOD_NOT_FOUND, types.INVALID_PARAMS})

T = TypeVar("T")
ReadStream = MemoryObjectReceiveStream[SessionMessage | Exception]
WriteStream = MemoryObjectSendStream[SessionMessage]


async def call_tool(target: McpServer, tool: str, arguments: dict[str, JsonValue], mission: Mission) -> JsonValue:
    """Call ``tool`` with ``arguments`` on ``target``; the phase's output, or an AgentFailure."""
    call = _Call(target.name, f"tool {tool!r} for phase {mission.phase.phase_id}", target.timeout_seconds)
    meta = {IDEMPOTENCY_KEY_META: mission.idempotency_key, MISSION_META: mission.payload()}
    result = await _in_session(target, call, lambda session: session.call_tool(tool, arguments, meta=meta))
    return call.output(result)


async def input_schema(target: McpServer, tool: str) -> dict[str, JsonValue] | None:
    """The JSON schema of ``tool``'s arguments as ``target`` lists it (None if it lists no such tool)."""
    call = _Call(target.name, f"the list of its tools (for {tool!r})", target.timeout_seconds)
    listed = await _in_session(target, call, lambda session: session.list_tools())
    return next((found.inputSchema for found in listed.tools if found.name == tool), None)


async def _in_session(target: McpServer, call: _Call, request: Callable[[ClientSession], Awaitable[T]]) -> T:
    """``request`` in a session of its own with ``target``; its answer, or an AgentFailure."""
    server = _StdioServer(target, call) if target.command is not None else _HttpServer(target, call)
    answered: list[T] = []
    try:
        async with asyncio.timeout(target.timeout_seconds):
            async with server.streams() as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                answered.append(await request(session))
    except TimeoutError:
        if not answered:  # an answer in hand is not lost to a slow goodbye
            raise call.timed_out() from None
    except Exception as err:  # the SDK's task groups raise ExceptionGroups; their leaves say what went wrong
        raise call.failure(err, server) from None
    return answered[0]


class _Call:
    """One call's messages: each names the server and the call (tool and phase)."""

    def __init__(self, server_name: str, what: str, timeout_seconds: float) -> None:
        self.server_name = server_name
        self.what = what
        self.timeout_seconds = timeout_seconds

    def timed_out(self) -> ApplicationError:
        return agent_failure(
            f"{self.server_name} did not answer {self.what} within {self.timeout_seconds:g} seconds.", retryable=True
        )

    def too_large(self, what: str, limit: int) -> ApplicationError:
        return agent_failure(
            f"{self.server_name} answered {self.what} with {what} of more than {limit} bytes.", retryable=False
        )

    def failure(self, err: Exception, server: _StdioServer | _HttpServer) -> ApplicationError:
        leaves = _leaves(err)
        for leaf in leaves:
            if isinstance(leaf, ApplicationError):  # sorted already (a message past the cap)
                return leaf
        lost = server.lost()
        if lost is not None:
            return lost
        leaf = leaves[0]
        if isinstance(leaf, McpError):
            error = leaf.error
            refused = error.code in _REQUEST_ERRORS
            verb = "refused" if refused else "failed"
            return agent_failure(f"{self.server_name} {verb} {self.what}: {error.message}", retryable=not refused)
        if isinstance(leaf, httpx.TimeoutException):
            return self.timed_out()
        if isinstance(leaf, httpx.TransportError):
            reason = str(leaf) or type(leaf).__name__
            return agent_failure(f"Could not reach {self.server_name} for {self.what} ({reason}).", retryable=True)
        if isinstance(leaf, RuntimeError | ValidationError):  # the SDK's word for an answer it cannot use
            return agent_failure(f"{self.server_name} gave an unusable answer to {self.what}: {leaf}", retryable=False)
        return agent_failure(f"{self.server_name} failed {self.what} ({type(leaf).__name__}: {leaf}).", retryable=True)

    def output(self, result: types.CallToolResult) -> JsonValue:
        text = "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))
        if result.isError:
            said = " ".join(text.split())[:_TOOL_ERROR_CHARS] or "no message"
            raise agent_failure(f"{self.server_name} reported an error from {self.what}: {said}", retryable=False)
        if result.structuredContent is not None:
            output: JsonValue = result.structuredContent
        elif text.strip():
            parsed, value = parse_json(text)
            output = value if parsed else {"text": text}
        else:
            output = None
        if json_size(output) > MAX_OUTPUT_BYTES:
            raise self.too_large("an output", MAX_OUTPUT_BYTES)
        return output


def _leaves(err: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, in order; ``err`` itself if it is none."""
    if isinstance(err, BaseExceptionGroup):
        return [leaf for inner in err.exceptions for leaf in _leaves(inner)]
    return [err]


class _StdioServer:
    """A server process for one call, speaking newline-delimited JSON-RPC on its stdin and stdout.

    Not the SDK's stdio client, which passes more of the worker's environment on (``SHELL``,
    ``TERM``) and sends the server's stderr to the worker's own, where no failure message sees it.
    """

    def __init__(self, target: McpServer, call: _Call) -> None:
        self.target = target
        self.call = call
        self.process: asyncio.subprocess.Process | None = None
        self.stderr = bytearray()
        #: Set when the server closes its end: after a failure, that it went away during the call.
        self.closed = False

    @contextlib.asynccontextmanager
    async def streams(self) -> AsyncIterator[tuple[ReadStream, WriteStream]]:
        target = self.target
        assert target.command is not None
        env = {**inherited_environment(), **target.env}
        process = await start_process(
            target.command, cwd=target.cwd, env=env, noun="MCP server", limit=MAX_MESSAGE_BYTES
        )
        self.process = process
        stderr = process.stderr
        assert stderr is not None  # start_process pipes it
        to_session, read = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write, from_session = anyio.create_memory_object_stream[SessionMessage](0)
        try:
            async with anyio.create_task_group() as pumps:
                pumps.start_soon(self._read_messages, process, to_session)
                pumps.start_soon(self._write_messages, process, from_session)
                pumps.start_soon(keep_tail, stderr, self.stderr)
                yield read, write
                await self._let_exit(process)
                pumps.cancel_scope.cancel()
        finally:
            await kill_process_group(process)  # whatever it started, too
            with contextlib.suppress(TimeoutError):  # what it said last, for the failure message
                await asyncio.wait_for(keep_tail(stderr, self.stderr), _EXIT_GRACE_SECONDS)

    async def _read_messages(
        self, process: asyncio.subprocess.Process, to_session: MemoryObjectSendStream[SessionMessage | Exception]
    ) -> None:
        assert process.stdout is not None
        async with to_session:  # closed at the end of its output: the pending request then fails
            while True:
                try:
                    line = await process.stdout.readline()
                except ValueError:  # a line longer than the reader's limit
                    raise self.call.too_large("a message", MAX_MESSAGE_BYTES) from None
                if not line:
                    self.closed = True
                    return
                try:
                    message = types.JSONRPCMessage.model_validate_json(line)
                except ValidationError:
                    continue  # not a protocol message: a stray print on stdout
                await to_session.send(SessionMessage(message))

    async def _write_messages(
        self, process: asyncio.subprocess.Process, from_session: MemoryObjectReceiveStream[SessionMessage]
    ) -> None:
        assert process.stdin is not None
        async with from_session:
            async for message in from_session:
                process.stdin.write(message.message.model_dump_json(by_alias=True, exclude_none=True).encode() + b"\n")
                try:
                    await process.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    self.closed = True
                    return

    @staticmethod
    async def _let_exit(process: asyncio.subprocess.Process) -> None:
        """The call is done: close the server's stdin, as the protocol's shutdown asks, and give it a moment."""
        assert process.stdin is not None
        process.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), _EXIT_GRACE_SECONDS)

    def lost(self) -> ApplicationError | None:
        """If the server went away during the call: how (its exit and last stderr line). Retried."""
        if not self.closed or self.process is None or self.process.returncode is None:
            return None
        ended = how_it_ended(self.process.returncode)
        return agent_failure(
            f"{self.call.server_name} {ended} during {self.call.what}{last_line(bytes(self.stderr))}",
            retryable=True,
        )


class _HttpServer:
    """A streamable HTTP server: the SDK's transport, on an HTTP client that watches POST answers."""

    def __init__(self, target: McpServer, call: _Call) -> None:
        self.target = target
        self.call = call
        self.watch = _Watch(call)

    @contextlib.asynccontextmanager
    async def streams(self) -> AsyncIterator[tuple[ReadStream, WriteStream]]:
        target = self.target
        assert target.url is not None
        client = httpx.AsyncClient(transport=self.watch, headers=dict(target.headers), timeout=target.timeout_seconds)
        # The session is ended here once the call is done, not by the SDK on every exit: a failed or
        # cancelled call must not wait for a DELETE to a server that may not answer.
        async with (
            client,
            streamable_http_client(target.url, http_client=client, terminate_on_close=False) as (read, write, ids),
        ):
            async with anyio.create_task_group() as watching:
                watching.start_soon(self.watch.raise_noticed)  # ends the call when an answer is cut off
                yield read, write
                watching.cancel_scope.cancel()
            if session_id := ids():
                with contextlib.suppress(httpx.HTTPError):  # the server forgets idle sessions anyway
                    await client.delete(target.url, headers={MCP_SESSION_ID: session_id})

    def lost(self) -> ApplicationError | None:
        """What the HTTP exchanges showed: an error status, or an answer cut off (the server died)."""
        status = self.watch.status
        if status is not None:
            retryable = is_retryable_status(status)
            verb = "failed" if retryable else "rejected"
            phrase = f"HTTP {status} {httpx.codes.get_reason_phrase(status)}".rstrip()
            return agent_failure(f"{self.call.server_name} {verb} {self.call.what} with {phrase}.", retryable=retryable)
        if isinstance(self.watch.problem, httpx.TransportError):
            reason = str(self.watch.problem) or type(self.watch.problem).__name__
            return agent_failure(
                f"{self.call.server_name} broke off its answer to {self.call.what} ({reason}).", retryable=True
            )
        return None


class _Watch(httpx.AsyncBaseTransport):
    """Sends the session's requests and notices, in the answers to its POSTs, what the SDK does not say.

    The SDK turns an HTTP 404 into "Session terminated", logs an answer cut off by a dying server
    and goes on waiting for a reply that cannot come, and reads answers of any size.
    """

    def __init__(self, call: _Call) -> None:
        self._transport = httpx.AsyncHTTPTransport()
        self.too_large = call.too_large("a message", MAX_MESSAGE_BYTES)
        #: The first error status a POST got.
        self.status: int | None = None
        #: The first answer cut off (an ``httpx.TransportError``) or past the cap (an AgentFailure).
        self.problem: BaseException | None = None
        self._noticed = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        if request.method == "POST":
            if response.status_code >= 400 and self.status is None:
                self.status = response.status_code
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = _WatchedBody(response.stream, self)
        return response

    def notice(self, problem: BaseException) -> None:
        if self.problem is None:
            self.problem = problem
            self._noticed.set()

    async def raise_noticed(self) -> None:
        await self._noticed.wait()
        assert self.problem is not None
        raise self.problem

    async def aclose(self) -> None:
        await self._transport.aclose()


class _WatchedBody(httpx.AsyncByteStream):
    """A POST's answer as it arrives, reported to the watch if it is cut off or grows past the cap."""

    def __init__(self, body: httpx.AsyncByteStream, watch: _Watch) -> None:
        self._body = body
        self._watch = watch

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        try:
            async for chunk in self._body:
                size += len(chunk)
                if size > MAX_MESSAGE_BYTES:
                    self._watch.notice(self._watch.too_large)
                    raise httpx.ReadError("answer past the cap")  # stops the SDK's reading
                yield chunk
        except httpx.TransportError as err:
            self._watch.notice(err)  # kept only if nothing was noticed before (the cap, just above)
            raise

    async def aclose(self) -> None:
        await self._body.aclose()
