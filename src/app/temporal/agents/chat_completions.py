"""One call of an OpenAI-compatible Chat Completions endpoint (OpenAI, vLLM, llama.cpp's server,
Ollama, LiteLLM, ...), streamed, with Temporal as the only retry layer.

The answer is streamed (``stream: true`` with usage in the last chunk), so every chunk is a sign
of life: the caller heartbeats on each, and a cancel reaches the request in flight. Failures are
sorted as every executor sorts them: a ``429`` or ``503`` is retried after what ``Retry-After``
says (``next_retry_delay``), timeouts, connection errors and other ``5xx`` per the phase's retry
policy, and any other ``4xx`` fails the phase at once with the provider's message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import JsonValue
from temporalio.exceptions import ApplicationError

from app.temporal.agents.http import is_retryable_status
from app.temporal.agents.mission import AGENT_FAILURE_ERROR, agent_failure
from app.temporal.models import MAX_OUTPUT_BYTES, ModelUsage

#: Statuses whose ``Retry-After`` says when to try again.
_WAIT_STATUSES = frozenset({429, 503})
#: The longest ``Retry-After`` honoured: a longer one is the retry policy's business.
MAX_RETRY_AFTER_SECONDS = 600.0
#: The most of one answer read (as streamed: JSON chunks); its text must fit a phase's output.
MAX_ANSWER_BYTES = 4 * MAX_OUTPUT_BYTES
#: What stands for the key in a provider's message.
REDACTED_KEY = "[the key]"
#: The most of an error answer read for its message.
_MAX_ERROR_BODY = 16 * 1024


@dataclass
class StreamedAnswer:
    """An assistant message put together from streamed chunks."""

    content: str = ""
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: ModelUsage | None = None
    size: int = 0

    def message(self) -> dict[str, JsonValue]:
        """The assistant message as the next request sends it back."""
        message: dict[str, JsonValue] = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[index] for index in sorted(self.tool_calls)]
        return message

    def add(self, chunk: Mapping[str, Any]) -> str:
        """Take one chunk in; the text it adds."""
        if chunk.get("usage"):
            usage = chunk["usage"]
            self.usage = ModelUsage(
                prompt_tokens=usage.get("prompt_tokens") or 0,
                completion_tokens=usage.get("completion_tokens") or 0,
                total_tokens=usage.get("total_tokens") or 0,
                model_calls=1,
            )
        text = ""
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                slot = self.tool_calls.setdefault(
                    call.get("index", 0), {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
                )
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        self.content += text
        return text


def request_body(
    model: str,
    messages: list[dict[str, JsonValue]],
    tools: list[dict[str, JsonValue]],
    output_schema: dict[str, JsonValue] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if tools:
        body["tools"] = tools
    if output_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": output_schema, "strict": True},
        }
    return body


async def stream_completion(
    client: httpx.AsyncClient,
    url: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    on_chunk: Callable[[str], None],
    where: str,
) -> StreamedAnswer:
    """POST ``body`` to ``url`` and put the streamed answer together; ``on_chunk`` gets each
    chunk's text (empty for chunks without any) as it arrives.
    """
    answer = StreamedAnswer()
    try:
        async with client.stream("POST", url, json=body, headers=headers) as response:
            if not response.is_success:
                raise await _status_failure(response, where)
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line.removeprefix("data:").strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise agent_failure(
                        f"{where} sent a chunk that is not JSON: {data[:200]!r}.", retryable=True
                    ) from None
                if isinstance(chunk, dict) and chunk.get("error"):
                    raise agent_failure(f"{where} failed mid-answer: {_error_message(chunk)}.", retryable=True)
                answer.size += len(data)
                if answer.size > MAX_ANSWER_BYTES:
                    raise agent_failure(f"{where} answered with more than {MAX_ANSWER_BYTES} bytes.", retryable=False)
                on_chunk(answer.add(chunk) if isinstance(chunk, dict) else "")
    except httpx.TimeoutException:
        raise agent_failure(f"{where} did not answer in time.", retryable=True) from None
    except httpx.HTTPError as err:
        raise agent_failure(f"Could not reach {where} ({str(err) or type(err).__name__}).", retryable=True) from None
    if answer.usage is None:  # a server that does not report usage: the call still counts
        answer.usage = ModelUsage(model_calls=1)
    return answer


async def _status_failure(response: httpx.Response, where: str) -> ApplicationError:
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > _MAX_ERROR_BODY:
            break
    try:
        said = _error_message(json.loads(body))
    except ValueError:
        said = body.decode(errors="replace").strip()[:300]
    status = f"HTTP {response.status_code}"
    message = f"{where} answered {status}: {said}." if said else f"{where} answered {status}."
    if response.status_code in _WAIT_STATUSES:
        delay = retry_after(response.headers.get("retry-after"))
        return ApplicationError(
            message,
            type=AGENT_FAILURE_ERROR,
            next_retry_delay=timedelta(seconds=delay) if delay is not None else None,
        )
    return agent_failure(message, retryable=is_retryable_status(response.status_code))


def _error_message(document: Any) -> str:
    """The message of an OpenAI-style error document, else the document as text."""
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"]).rstrip(".")
        if isinstance(error, str):
            return error.rstrip(".")
    return json.dumps(document)[:300]


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (seconds or an HTTP date), at most
    ``MAX_RETRY_AFTER_SECONDS``; None if absent or unreadable.
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def without_key(err: ApplicationError, key: str | None) -> ApplicationError:
    """``err`` with the key taken out of its message: the whole key, and the masked forms
    providers quote (``sk-...ab12``, ``sk-****ab12``), which a phase's error would carry into
    the history, the record, the result and the logs.
    """
    if not key or len(key) < 8:
        return err
    message = err.message.replace(key, REDACTED_KEY)
    message = re.sub(rf"\S*(?:\.{{3}}|\*{{3,}}|…)\S*{re.escape(key[-4:])}\b", REDACTED_KEY, message)
    if message == err.message:
        return err
    return ApplicationError(
        message, type=err.type, non_retryable=err.non_retryable, next_retry_delay=err.next_retry_delay
    )
