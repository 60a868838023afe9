"""A scripted OpenAI-compatible Chat Completions server, for the ``llm`` executor's tests and for
trying agents without a model provider.

No provider is reachable from the tests, so this server stands in for one: it speaks the Chat
Completions wire format as OpenAI does (``POST /v1/chat/completions``, plain and streamed, and
``GET /v1/models``) and answers each request with the next step of a script: an answer, tool calls,
an error, or no answer at all. It runs uvicorn in a background thread with an event loop of its
own, so a test's own loop (or a synchronous test) can call it.

    with ScriptedModelServer([ToolCalls([("lookup", {"host": "web-1"})]), Answer("web-1 is up")]) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")

From a shell, with a JSON list of steps (see ``Step.from_json``)::

    python scripts/scripted_model_server.py --port 8600 --script steps.json [--api-key KEY]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

#: The model ``GET /v1/models`` lists before any request named one.
DEFAULT_MODEL = "scripted-model"
#: A streamed text or tool-call argument string is cut into at most this many deltas.
MOST_DELTAS = 16
READY_LINE = "Scripted model server listening on {base_url}"

#: OpenAI's error ``type`` and ``code`` for each status a script may fail with.
ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("not_found_error", None),
    409: ("conflict_error", None),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}
DEFAULT_MESSAGES: dict[int, str] = {
    400: "The request is invalid.",
    401: "Incorrect API key provided.",
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The engine is currently overloaded, please try again later.",
}


class ScriptError(ValueError):
    """A script file or step that cannot be read; the message is one sentence."""


class Step:
    """One scripted answer to one model call: ``Answer``, ``ToolCalls``, ``Failure`` or ``Hang``."""

    @staticmethod
    def from_json(obj: object) -> Step:
        """The step a script file writes as one JSON object:

        ``{"answer": "text"}``, ``{"json": {...}}``, ``{"tool_calls": [["name", {...}], ...], "text": "..."}``,
        ``{"failure": 429, "message": "...", "retry_after": 1}``, ``{"hang": 10, "then": {...}}``;
        answers and tool calls take ``"usage": [prompt_tokens, completion_tokens]``.
        """
        if not isinstance(obj, dict):
            raise ScriptError(f"a step must be a JSON object, not {json.dumps(obj)}")
        kinds = [kind for kind in _STEP_KEYS if kind in obj]
        if len(kinds) != 1:
            raise ScriptError(f"a step needs exactly one of {', '.join(_STEP_KEYS)}: {json.dumps(obj)}")
        kind = kinds[0]
        unknown = set(obj) - _STEP_KEYS[kind]
        if unknown:
            raise ScriptError(f"a {kind} step has unknown keys {', '.join(sorted(unknown))}: {json.dumps(obj)}")
        try:
            return _STEP_READERS[kind](obj)
        except (TypeError, ValueError) as err:
            raise ScriptError(f"a {kind} step is malformed ({err}): {json.dumps(obj)}") from None


Usage = tuple[int, int]


@dataclass
class Answer(Step):
    """A final assistant message: ``text``, or ``json`` serialised as the content (for requests with a
    ``json_schema`` ``response_format``).
    """

    text: str | None = None
    json: dict[str, Any] | None = None
    usage: Usage = (10, 5)

    def __post_init__(self) -> None:
        if self.text is not None and self.json is not None:
            raise ValueError("an Answer has text or json, not both")

    @property
    def content(self) -> str:
        return json.dumps(self.json) if self.json is not None else (self.text or "")


@dataclass
class ToolCalls(Step):
    """An assistant message calling one tool, or several at once, as ``(name, arguments)`` pairs."""

    calls: list[tuple[str, dict[str, Any]]]
    text: str | None = None
    usage: Usage = (10, 5)

    def __post_init__(self) -> None:
        if not self.calls:
            raise ValueError("ToolCalls needs at least one call")


@dataclass
class Failure(Step):
    """An error answer with OpenAI's error body; ``message`` defaults to one for the status."""

    status: int
    message: str | None = None
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError(f"a failure's status is 4xx or 5xx, not {self.status}")


@dataclass
class Hang(Step):
    """No answer for ``seconds``, nor ever if the client goes away first; then ``then`` if given,
    else a 504 error.
    """

    seconds: float = 3600
    then: Answer | ToolCalls | Failure | None = None


def _usage(obj: dict[str, Any]) -> Usage:
    prompt, completion = obj.get("usage", (10, 5))
    return int(prompt), int(completion)


def _read_answer(obj: dict[str, Any]) -> Step:
    if not isinstance(obj["answer"], str):
        raise TypeError("the answer is a string")
    return Answer(text=obj["answer"], usage=_usage(obj))


def _read_json(obj: dict[str, Any]) -> Step:
    if not isinstance(obj["json"], dict):
        raise TypeError("the json answer is an object")
    return Answer(json=obj["json"], usage=_usage(obj))


def _read_tool_calls(obj: dict[str, Any]) -> Step:
    calls: list[tuple[str, dict[str, Any]]] = []
    for call in obj["tool_calls"]:
        name, arguments = call
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise TypeError('each call is ["name", {arguments}]')
        calls.append((name, arguments))
    text = obj.get("text")
    if text is not None and not isinstance(text, str):
        raise TypeError("the text is a string")
    return ToolCalls(calls, text=text, usage=_usage(obj))


def _read_failure(obj: dict[str, Any]) -> Step:
    status, message, retry_after = obj["failure"], obj.get("message"), obj.get("retry_after")
    if not isinstance(status, int) or (message is not None and not isinstance(message, str)):
        raise TypeError("the failure is an HTTP status and the message a string")
    return Failure(status, message, None if retry_after is None else float(retry_after))


def _read_hang(obj: dict[str, Any]) -> Step:
    then = Step.from_json(obj["then"]) if "then" in obj else None
    if not isinstance(then, Answer | ToolCalls | Failure | None):
        raise TypeError("a hang is not followed by another hang")
    return Hang(float(obj["hang"]), then)


_STEP_KEYS: dict[str, set[str]] = {
    "answer": {"answer", "usage"},
    "json": {"json", "usage"},
    "tool_calls": {"tool_calls", "text", "usage"},
    "failure": {"failure", "message", "retry_after"},
    "hang": {"hang", "then"},
}
_STEP_READERS: dict[str, Callable[[dict[str, Any]], Step]] = {
    "answer": _read_answer,
    "json": _read_json,
    "tool_calls": _read_tool_calls,
    "failure": _read_failure,
    "hang": _read_hang,
}


def load_script(path: str | Path) -> list[Step]:
    """The steps of a script file, a JSON list of ``Step.from_json`` objects; ``ScriptError`` if unreadable."""
    try:
        document = json.loads(Path(path).read_text())
    except OSError as err:
        raise ScriptError(f"cannot read the script {path}: {err.strerror or err}") from None
    except ValueError as err:
        raise ScriptError(f"the script {path} is not JSON ({err})") from None
    if not isinstance(document, list):
        raise ScriptError(f"the script {path} must be a JSON list of steps")
    steps: list[Step] = []
    for number, obj in enumerate(document, start=1):
        try:
            steps.append(Step.from_json(obj))
        except ScriptError as err:
            raise ScriptError(f"step {number} of the script {path}: {err}") from None
    return steps


#: A list of steps, taken in turn, or a function choosing the step for each request's body.
Script = Sequence[Step] | Callable[[dict[str, Any]], Step | None]


@dataclass
class RecordedRequest:
    """One request to ``/v1/chat/completions`` as it arrived; ``answered`` once it got a 200 answer."""

    body: dict[str, Any]
    #: Header names in lower case.
    headers: dict[str, str]
    answered: bool = False
    #: ``time.monotonic()`` when it arrived: how far apart a client's attempts were.
    received_at: float = field(default_factory=time.monotonic)


class _Rejected(Exception):
    """A request the server refuses before any step runs (no step is used up)."""

    def __init__(self, response: Response) -> None:
        self.response = response


def error_response(
    status: int, message: str, *, param: str | None = None, code: str | None = None, retry_after: float | None = None
) -> JSONResponse:
    """An error as OpenAI answers one: ``{"error": {"message", "type", "param", "code"}}``."""
    kind, default_code = ERROR_KINDS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
    body = {"error": {"message": message, "type": kind, "param": param, "code": code or default_code}}
    return JSONResponse(body, status_code=status, headers=headers)


def split_deltas(text: str, most: int = MOST_DELTAS) -> list[str]:
    """``text`` cut into word- and punctuation-sized pieces, as a model's tokens come, joined into at
    most ``most`` deltas so that a long text does not stream for long.
    """
    tokens = re.findall(r"\s*\w+|\s*[^\w\s]|\s+", text)
    size = max(1, math.ceil(len(tokens) / most))
    return ["".join(tokens[start : start + size]) for start in range(0, len(tokens), size)]


class ScriptedModelServer:
    """An OpenAI-compatible Chat Completions server answering from ``script``, on ``host`` and ``port``
    (a free one by default) in a background thread.

    Requests without ``Authorization: Bearer <api_key>`` (when ``api_key`` is set) get a 401 and
    requests without ``model`` or ``messages`` a 400, both without using a step. Streamed answers
    wait ``chunk_delay`` seconds between chunks.
    """

    def __init__(
        self,
        script: Script = (),
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        chunk_delay: float = 0.01,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.chunk_delay = chunk_delay
        self._lock = threading.Lock()
        self._script: Script = ()
        self._position = 0
        self._requests: list[RecordedRequest] = []
        self._calls = 0
        self._hanging = 0
        self._models: list[str] = []
        self._call_ids = itertools.count(1)
        self._completion_ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self.set_script(script)
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._list_models, methods=["GET"]),
                Route("/{path:path}", self._not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            ]
        )

    # --- what tests read and change ---

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url``: ``http://HOST:PORT/v1``."""
        if self._server is None:
            raise RuntimeError("the scripted model server is not started")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """The chat completion requests so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def calls(self) -> int:
        """How many requests got a 200 answer (counted as the answer starts)."""
        with self._lock:
            return self._calls

    @property
    def hanging(self) -> int:
        """How many requests a ``Hang`` holds now (a client that goes away ends its hang)."""
        with self._lock:
            return self._hanging

    @property
    def remaining(self) -> int | None:
        """How many steps of a list script are left (None for a function script)."""
        with self._lock:
            return None if callable(self._script) else len(self._script) - self._position

    def set_script(self, script: Script) -> None:
        """Answer from ``script`` from now on, from its first step."""
        with self._lock:
            self._script = script if callable(script) else list(script)
            self._position = 0

    # --- running ---

    def start(self) -> ScriptedModelServer:
        """Listen, and return once the server accepts connections."""
        if self._server is not None:
            raise RuntimeError("the scripted model server is already started")
        # Bind here, not in uvicorn, so that port 0 gives a port known before the thread starts.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
        except OSError:
            listener.close()
            raise
        self.port = listener.getsockname()[1]
        config = uvicorn.Config(
            self.app, http="h11", lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=2
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(listener),), daemon=True)
        self._thread.name = f"scripted-model-server-{self.port}"
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server = None
                raise RuntimeError(f"the scripted model server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    async def _serve(self, listener: socket.socket) -> None:
        assert self._server is not None
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        await self._server.serve(sockets=[listener])

    def stop(self) -> None:
        """Stop serving; hung requests end at once (with a 503)."""
        server, thread, loop, stopping = self._server, self._thread, self._loop, self._stopping
        if server is None or thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stopping.set)
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        self._server = self._thread = self._loop = self._stopping = None

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # --- the endpoints ---

    async def _chat_completions(self, request: Request) -> Response:
        raw = await request.body()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        recorded = RecordedRequest(parsed if isinstance(parsed, dict) else {}, dict(request.headers))
        with self._lock:
            self._requests.append(recorded)
        try:
            self._check_key(request)
            body = self._check_body(parsed)
        except _Rejected as rejected:
            return rejected.response
        step = self._next_step(body)
        if isinstance(step, Response):
            return step
        if isinstance(step, Hang):
            return await self._hang(request, step, recorded, body)
        return self._answer(step, recorded, body)

    def _check_key(self, request: Request) -> None:
        if self.api_key is None:
            return
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            message = "You didn't provide an API key. You need to provide your API key in an Authorization header."
            raise _Rejected(error_response(401, message))
        if key != self.api_key:
            raise _Rejected(error_response(401, f"Incorrect API key provided: {key[:3]}...{key[-4:]}."))

    def _check_body(self, parsed: object) -> dict[str, Any]:
        if not isinstance(parsed, dict):
            raise _Rejected(error_response(400, "We could not parse the JSON body of your request."))
        for name, kind in (("model", str), ("messages", list)):
            if name not in parsed:
                raise _Rejected(
                    error_response(
                        400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
                    )
                )
            if not isinstance(parsed[name], kind) or not parsed[name]:
                message = f"Invalid value for '{name}': expected a non-empty {'string' if kind is str else 'array'}."
                raise _Rejected(error_response(400, message, param=name, code="invalid_value"))
        with self._lock:
            if parsed["model"] not in self._models:
                self._models.append(parsed["model"])
        return parsed

    def _next_step(self, body: dict[str, Any]) -> Step | Response:
        """The script's step for this request, used up; or the 500 saying there is none."""
        with self._lock:
            script, position = self._script, self._position
            if not callable(script):
                if position >= len(script):
                    message = f"The scripted model server has no step left: its script had {len(script)} step(s)."
                    return error_response(500, message)
                self._position += 1
                return script[position]
        try:
            step = script(body)  # outside the lock: the function may read the server
        except Exception as err:
            return error_response(500, f"The scripted model server's script failed: {type(err).__name__}: {err}")
        if step is None:
            return error_response(500, "The scripted model server has no step left: its script returned None.")
        return step

    async def _hang(self, request: Request, hang: Hang, recorded: RecordedRequest, body: dict[str, Any]) -> Response:
        assert self._stopping is not None
        waits = {
            "time": asyncio.ensure_future(asyncio.sleep(hang.seconds)),
            "gone": asyncio.ensure_future(_disconnected(request)),
            "stop": asyncio.ensure_future(self._stopping.wait()),
        }
        with self._lock:
            self._hanging += 1
        try:
            done, _ = await asyncio.wait(waits.values(), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits.values():
                wait.cancel()
            with self._lock:
                self._hanging -= 1
        if waits["stop"] in done:
            return error_response(503, "The scripted model server is stopping.")
        if waits["gone"] in done:
            # Nobody reads this answer: the client went away.
            return Response(status_code=499)
        if hang.then is not None:
            return self._answer(hang.then, recorded, body)
        return error_response(504, f"The scripted model did not answer within {hang.seconds:g} s.")

    def _answer(self, step: Step, recorded: RecordedRequest, body: dict[str, Any]) -> Response:
        if isinstance(step, Failure):
            message = step.message or DEFAULT_MESSAGES.get(step.status, f"The scripted failure {step.status}.")
            return error_response(step.status, message, retry_after=step.retry_after)
        if not isinstance(step, Answer | ToolCalls):
            return error_response(500, f"The scripted model server's script gave {step!r}, which is no step.")
        with self._lock:
            self._calls += 1
            recorded.answered = True
            number = next(self._completion_ids)
            call_ids = [f"call_{next(self._call_ids)}" for _ in step.calls] if isinstance(step, ToolCalls) else []
        completion = _Completion(
            id=f"chatcmpl-scripted{number}",
            model=body["model"],
            step=step,
            call_ids=call_ids,
            headers={"x-request-id": f"req_scripted{number}"},
        )
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            chunks = completion.chunks(include_usage)
            return StreamingResponse(self._sse(chunks), media_type="text/event-stream", headers=completion.headers)
        return JSONResponse(completion.message(), headers=completion.headers)

    async def _sse(self, chunks: list[dict[str, Any]]) -> AsyncIterator[str]:
        for number, chunk in enumerate(chunks):
            if number:
                await asyncio.sleep(self.chunk_delay)
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    async def _list_models(self, request: Request) -> Response:
        try:
            self._check_key(request)
        except _Rejected as rejected:
            return rejected.response
        with self._lock:
            models = list(self._models) or [DEFAULT_MODEL]
        listed = [{"id": model, "object": "model", "created": 0, "owned_by": "scripted"} for model in models]
        return JSONResponse({"object": "list", "data": listed})

    async def _not_found(self, request: Request) -> Response:
        return error_response(404, f"Invalid URL ({request.method} {request.url.path})")


async def _disconnected(request: Request) -> None:
    """Return once the client has gone away (the request's body is already read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@dataclass
class _Completion:
    """One answer in the wire format: a ``chat.completion``, or its ``chat.completion.chunk`` s."""

    id: str
    model: str
    step: Answer | ToolCalls
    call_ids: list[str]
    headers: dict[str, str]
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if isinstance(self.step, ToolCalls) else "stop"

    @property
    def content(self) -> str | None:
        return self.step.content if isinstance(self.step, Answer) else self.step.text

    def usage(self) -> dict[str, int]:
        prompt, completion = self.step.usage
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def tool_calls(self) -> list[tuple[str, str, str]]:
        """``(id, name, arguments)`` of each call, arguments as the JSON string OpenAI sends."""
        if not isinstance(self.step, ToolCalls):
            return []
        return [(id_, name, json.dumps(args)) for id_, (name, args) in zip(self.call_ids, self.step.calls, strict=True)]

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None, "annotations": []}
        if calls := self.tool_calls():
            message["tool_calls"] = [
                {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}
                for id_, name, arguments in calls
            ]
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": self.usage(),
            "system_fingerprint": None,
        }

    def chunks(self, include_usage: bool) -> list[dict[str, Any]]:
        """The chunks OpenAI streams for this answer: the role first, the content in several deltas,
        each tool call's name then its arguments in several deltas, the finish reason, and the usage
        in a last chunk without choices if asked for.
        """
        content, calls = self.content, self.tool_calls()
        deltas: list[dict[str, Any]] = []
        if content is None and calls:
            # As OpenAI does, the first tool call's header comes with the role.
            deltas.append({"role": "assistant", "content": None, "refusal": None})
        else:
            deltas.append({"role": "assistant", "content": "", "refusal": None})
            deltas += [{"content": piece} for piece in split_deltas(content or "")]
        for index, (id_, name, arguments) in enumerate(calls):
            header = {"index": index, "id": id_, "type": "function", "function": {"name": name, "arguments": ""}}
            if index == 0 and content is None:
                deltas[0]["tool_calls"] = [header]
            else:
                deltas.append({"tool_calls": [header]})
            deltas += [
                {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                for piece in split_deltas(arguments)
            ]
        chunks = [self._chunk(delta, None, include_usage) for delta in deltas]
        chunks.append(self._chunk({}, self.finish_reason, include_usage))
        if include_usage:
            chunks.append({**self._chunk({}, None, True), "choices": [], "usage": self.usage()})
        return chunks

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None, include_usage: bool) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            chunk["usage"] = None  # OpenAI sends it null in every chunk but the last
        return chunk


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True, help="the port to listen on (127.0.0.1)")
    parser.add_argument("--script", type=Path, required=True, help="a JSON list of steps")
    parser.add_argument("--api-key", default=None, help="the key clients must send (any key if not given)")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    args = parser.parse_args(argv)
    try:
        steps = load_script(args.script)
    except ScriptError as err:
        raise SystemExit(f"Error: {_sentence(str(err))}") from None
    stop = threading.Event()
    # Ctrl+C and SIGTERM both end the server cleanly; the handlers only wake the main thread.
    for handled in (signal.SIGINT, signal.SIGTERM):
        signal.signal(handled, lambda *_: stop.set())
    server = ScriptedModelServer(steps, api_key=args.api_key, host=args.host, port=args.port)
    try:
        server.start()
    except OSError as err:
        raise SystemExit(
            f"Error: cannot listen on {args.host}:{args.port}: {_sentence(err.strerror or str(err))}"
        ) from None
    print(READY_LINE.format(base_url=server.base_url), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()


def _sentence(text: str) -> str:
    return text if text.endswith(".") else text + "."


if __name__ == "__main__":
    sys.exit(main())
