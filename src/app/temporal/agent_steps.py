"""The steps of a language-model agent, each its own activity: one model call (``call_model``)
and one tool call (``call_tool``). The crisis workflow runs the loop between them
(app.temporal.crisis.agent_loop), so a step that completed is in its history and never made again.

Both carry only what the step needs and return only what the loop needs: the key stays in the
worker's environment (app.temporal.agents.llm), and a tool's result past ``MAX_TOOL_RESULT_CHARS``
(or the model's answer past ``MAX_ANSWER_CHARS``) is kept whole beside the crisis record
(``RecordStore.keep``) while the conversation carries its beginning and where the rest is.
"""

from __future__ import annotations

import json
import logging

from pydantic import Field, JsonValue
from temporalio import activity
from temporalio.exceptions import ApplicationError

from app.temporal import metrics
from app.temporal.agent_output import streamed_to_crisis
from app.temporal.agents import ExecutorRegistry, Mission, agent_failure
from app.temporal.agents.llm import LlmExecutor
from app.temporal.heartbeats import while_heartbeating
from app.temporal.logs import log_failed_attempt
from app.temporal.models import MissionPhase, ModelUsage, ToolSpec, WireModel
from app.temporal.records.store import RecordStore, kept_key

logger = logging.getLogger("liara.activities")

#: The most of one tool's result (as JSON text) that goes back to the model.
MAX_TOOL_RESULT_CHARS = 16_000
#: The most of one answer of the model that its conversation (and its phase's output) carries.
MAX_ANSWER_CHARS = 32_000


class ModelCall(WireModel):
    """Input of ``call_model``: the conversation so far, and what the model may answer with."""

    crisis_id: str
    workflow_id: str
    phase_id: str
    executor: str
    turn: int
    messages: list[dict[str, JsonValue]]
    tools: list[ToolSpec] = Field(default_factory=list)
    output_schema: dict[str, JsonValue] | None = None


class ToolCallRequest(WireModel):
    """A tool call the model asked for; ``arguments`` as the model wrote them (JSON text)."""

    id: str
    name: str
    arguments: str


class ModelAnswer(WireModel):
    """Output of ``call_model``."""

    message: dict[str, JsonValue] = Field(description="The assistant message, as the next call sends it back.")
    content: str | None = None
    tool_calls: list[ToolCallRequest] = Field(default_factory=list)
    usage: ModelUsage
    finish_reason: str | None = None
    kept: str | None = Field(default=None, description="Where the whole of an answer too long to carry is kept.")


class ToolRun(WireModel):
    """Input of ``call_tool``: the agent's phase, the tool and the model's arguments."""

    crisis_id: str
    workflow_id: str
    phase: MissionPhase
    call: ToolCallRequest
    context: dict[str, JsonValue] = Field(default_factory=dict)


class AgentStepActivities:
    """The agent steps, bound to the worker's executors and its record store (for what is too long to carry)."""

    def __init__(self, executors: ExecutorRegistry, store: RecordStore) -> None:
        self.executors = executors
        self.store = store

    @activity.defn(name="call_model")
    async def call_model(self, call: ModelCall) -> ModelAnswer:
        """One model call, streamed while it heartbeats."""
        executor = self.executors.executor_named(call.executor)
        if not isinstance(executor, LlmExecutor):
            raise agent_failure(
                f"This worker has no llm executor {call.executor!r} for phase {call.phase_id}: "
                "give every worker the same [executors].",
                retryable=False,
            )
        try:
            # The answer's text goes to the crisis's event stream as it comes, in batches.
            answer = await while_heartbeating(
                streamed_to_crisis(
                    lambda on_chunk: executor.complete(call.messages, call.tools, call.output_schema, on_chunk),
                    workflow_id=call.workflow_id,
                    phase_id=call.phase_id,
                    turn=call.turn,
                )
            )
        except ApplicationError as err:
            log_failed_attempt(logger, f"Model call {call.turn} of phase {call.phase_id}", err)
            metrics.record_model_call(executor.settings.model, None, completed=False)
            raise
        requested = [
            ToolCallRequest(id=slot["id"], name=slot["function"]["name"], arguments=slot["function"]["arguments"])
            for slot in (answer.tool_calls[index] for index in sorted(answer.tool_calls))
        ]
        metrics.record_model_call(executor.settings.model, answer.usage, completed=True)
        message, kept = answer.message(), None
        if len(answer.content) > MAX_ANSWER_CHARS:
            kept = await self._keep(call.crisis_id, call.phase_id, f"answer{call.turn}", answer.content)
            answer.content = message["content"] = shortened(answer.content, MAX_ANSWER_CHARS, kept)
        return ModelAnswer(
            message=message,
            content=answer.content or None,
            tool_calls=requested,
            usage=priced(answer.usage or ModelUsage(model_calls=1), executor),
            finish_reason=answer.finish_reason,
            kept=kept,
        )

    @activity.defn(name="call_tool")
    async def call_tool(self, run: ToolRun) -> str:
        """Run the tool's executor with the model's arguments as its params; its output as the
        text the model reads. A failure raises (Temporal retries a retryable one); the loop tells
        the model of the last.
        """
        call = run.call
        arguments = arguments_object(call.arguments)
        if arguments is None:
            raise agent_failure(
                f"the arguments of {call.name} are not a JSON object: {call.arguments[:200]}", retryable=False
            )
        executor = self.executors.executor_named(call.name)
        if executor is None or isinstance(executor, LlmExecutor):
            raise agent_failure(f"this worker has no tool {call.name!r}", retryable=False)
        # An executor may read a model's arguments its own way (an MCP server's one tool takes them as its own).
        as_params = getattr(executor, "tool_params", None)
        params = as_params(arguments) if as_params is not None else arguments
        phase = run.phase.model_copy(update={"params": params, "action": call.name})
        mission = Mission(
            crisis_id=run.crisis_id,
            workflow_id=run.workflow_id,
            phase=phase,
            attempt=activity.info().attempt,
            context=run.context,
            step=call.id,
        )
        try:
            output = await while_heartbeating(executor.run(mission))
        except ApplicationError as err:
            log_failed_attempt(logger, f"Tool call {call.name} of phase {run.phase.phase_id}", err)
            raise
        text = output if isinstance(output, str) else json.dumps(output)
        if len(text) <= MAX_TOOL_RESULT_CHARS:
            return text
        kept = await self._keep(run.crisis_id, run.phase.phase_id, f"tool-{call.id}", text)
        return shortened(text, MAX_TOOL_RESULT_CHARS, kept)

    async def _keep(self, crisis_id: str, phase_id: str, step: str, text: str) -> str:
        """Keep the whole of ``text`` beside the crisis record, under a key of this step's attempt."""
        info = activity.info()
        return await self.store.keep(
            crisis_id, kept_key(phase_id, info.workflow_run_id or "", step, info.attempt), text
        )

    def all(self) -> list:
        return [self.call_model, self.call_tool]


def arguments_object(text: str) -> dict[str, JsonValue] | None:
    """A tool call's arguments (JSON text, as the model wrote them) as an object; None if they are not one."""
    try:
        parsed = json.loads(text or "{}")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def priced(usage: ModelUsage, executor: LlmExecutor) -> ModelUsage:
    """``usage`` with its cost at the executor's prices (if it has any)."""
    return usage.model_copy(update={"cost": executor.settings.cost_of(usage)})


def shortened(text: str, limit: int, kept: str) -> str:
    """The first ``limit`` characters of ``text``, and where the whole of it is kept."""
    return f"{text[:limit]}… (cut: {len(text) - limit} more characters; the whole is kept at {kept})"
