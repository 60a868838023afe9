"""The ``llm`` executor: a language-model agent that reasons, calls tools and answers.

Its loop does not run here: a phase of an ``llm`` executor runs in the crisis workflow, one
activity per model call and per tool call (app.temporal.crisis.agent_loop,
app.temporal.agent_steps), so a worker that dies mid-loop costs no completed step. This module
holds its settings and makes the plan the workflow runs (``plan``), and makes one model call
(``complete``). The key is read from the worker's environment at each call, by name
(``api_key_env``): it never enters a history, a record, a result, a log line or an event.

    [executors.analyst]
    type = "llm"
    base_url = "https://api.openai.com/v1"
    model = "gpt-4.1-mini"
    api_key_env = "ANALYST_API_KEY"
    system = "You are a security analyst."
    tools = ["lookup", "isolate"]       # other executors, each with a description (and parameters)
    max_turns = 8
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import Field, JsonValue, field_validator
from temporalio.exceptions import ApplicationError

from app.temporal.agents.chat_completions import StreamedAnswer, request_body, stream_completion, without_key
from app.temporal.agents.http import display_url, parse_http_url
from app.temporal.agents.mission import ExecutorSettings, Mission, TimeoutSeconds, agent_failure
from app.temporal.models import AgentLoopPlan, ModelUsage, StepLimit, ToolSpec

LLM = "llm"
#: Most model calls one agent phase may make (a long loop continues as a new run of its crisis).
MAX_TURNS = 200
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LlmExecutor:
    """A language-model agent: the plan its phase runs, and one model call at a time."""

    def __init__(self, settings: LlmSettings) -> None:
        self.settings = settings
        self.completions_url = settings.base_url.rstrip("/") + "/chat/completions"
        self.display_url = display_url(parse_http_url(self.completions_url))
        self._client: httpx.AsyncClient | None = None

    async def run(self, mission: Mission) -> JsonValue:
        # Never called: perform_agent_mission hands an llm phase's plan to its workflow.
        raise agent_failure(
            f"Phase {mission.phase.phase_id}'s language-model agent runs step by step in its crisis workflow.",
            retryable=False,
        )

    def plan(self, name: str, tools: list[ToolSpec], limits: list[StepLimit] | None = None) -> AgentLoopPlan:
        """The loop a phase of this executor (called ``name``) runs, with its tools' specs and the
        ``[limits.models]`` its model calls wait for.
        """
        settings = self.settings
        return AgentLoopPlan(
            executor=name,
            model=settings.model,
            system=settings.system,
            tools=tools,
            max_turns=settings.max_turns,
            output_schema=settings.output_schema,
            limits=limits or [],
            token_budget=settings.token_budget,
            cost_budget=settings.cost_budget,
        )

    async def complete(
        self,
        messages: list[dict[str, JsonValue]],
        tools: list[ToolSpec],
        output_schema: dict[str, JsonValue] | None,
        on_chunk: Callable[[str], None],
    ) -> StreamedAnswer:
        """One model call: the answer to ``messages``, streamed (``on_chunk`` gets each chunk's text)."""
        headers, key = {}, None
        if self.settings.api_key_env:
            key = os.environ.get(self.settings.api_key_env)
            if not key:
                raise agent_failure(
                    f"This worker has no {self.settings.api_key_env}, the key of model {self.settings.model!r}: "
                    "set it in the environment of the workers.",
                    retryable=False,
                )
            headers["Authorization"] = f"Bearer {key}"
        body = request_body(
            self.settings.model,
            messages,
            [
                {
                    "type": "function",
                    "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
                }
                for tool in tools
            ],
            output_schema,
        )
        try:
            return await stream_completion(
                self._client_for_call(),
                self.completions_url,
                body,
                headers,
                on_chunk=on_chunk,
                where=f"Model {self.settings.model!r} at {self.display_url}",
            )
        except ApplicationError as err:  # a provider may quote the key it refused, masked
            raise without_key(err, key) from None

    def _client_for_call(self) -> httpx.AsyncClient:
        # Created on first use, inside the worker's event loop; no retries of its own (Temporal retries).
        if self._client is None or self._client.is_closed:
            timeout = httpx.Timeout(self.settings.timeout_seconds, connect=min(10.0, self.settings.timeout_seconds))
            self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class LlmSettings(ExecutorSettings):
    """What ``type = "llm"`` takes."""

    base_url: str = Field(description="An OpenAI-compatible Chat Completions endpoint's base URL (…/v1).")
    model: str = Field(min_length=1)
    api_key_env: str | None = Field(default=None, description="The worker's variable that holds the key.")
    system: str | None = None
    tools: list[str] = Field(default_factory=list, description="Other executors the model may call, by name.")
    max_turns: int = Field(default=8, ge=1, le=MAX_TURNS, description="Most model calls per phase.")
    output_schema: dict[str, JsonValue] | None = Field(
        default=None, description="A JSON schema the answer follows (then the output is that JSON object)."
    )
    timeout_seconds: TimeoutSeconds = Field(default=120.0, description="Longest wait for a chunk of an answer.")
    token_budget: int | None = Field(default=None, ge=1, description="Tokens one phase may spend before its gate.")
    cost_budget: float | None = Field(default=None, gt=0, description="What one phase may cost before its gate.")
    prompt_price: float | None = Field(default=None, ge=0, description="Price of a million prompt tokens.")
    completion_price: float | None = Field(default=None, ge=0, description="Price of a million completion tokens.")

    def cost_of(self, usage: ModelUsage) -> float | None:
        """What ``usage`` costs at this model's prices (None without prices)."""
        if self.prompt_price is None and self.completion_price is None:
            return None
        prompt = usage.prompt_tokens * (self.prompt_price or 0.0)
        completion = usage.completion_tokens * (self.completion_price or 0.0)
        return round((prompt + completion) / 1_000_000, 6)

    @field_validator("base_url")
    @classmethod
    def _absolute_http(cls, url: str) -> str:
        parse_http_url(url)
        return url

    @field_validator("api_key_env")
    @classmethod
    def _variable_name(cls, name: str | None) -> str | None:
        if name is not None and not _ENV_NAME.match(name):
            raise ValueError("must be the name of an environment variable (letters, digits and '_')")
        return name

    def build(self, config_dir: Path) -> LlmExecutor:
        return LlmExecutor(self)
