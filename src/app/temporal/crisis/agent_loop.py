"""``AgentLoop``: a language-model agent's phase, run in its crisis workflow one step at a time.

The loop is deterministic workflow code; each model call and each tool call is an activity
(app.temporal.agent_steps), so a worker that dies after a tool call resumes with the next model
call: a step that completed is in the history and is never made again. The tool calls of one
answer run side by side. The transcript (messages, tool calls and their results) and the usage
go to the phase's record entry; the crisis carries the usage only.

A loop that outlasts its crisis's history budget stops between two model calls (``AgentSuspended``)
with where it stands in the crisis's state (``CrisisState.agent_loops``); the crisis continues as a
new run, where the loop goes on from there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from pydantic import JsonValue
from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

from app.temporal.agent_steps import (
    MAX_ANSWER_CHARS,
    AgentStepActivities,
    ModelAnswer,
    ModelCall,
    ToolCallRequest,
    ToolRun,
    arguments_object,
)
from app.temporal.crisis.approvals import Approvals
from app.temporal.crisis.budgets import Budgets, PhaseLimits
from app.temporal.crisis.state import CrisisState
from app.temporal.errors import innermost_message
from app.temporal.limits import step_permits
from app.temporal.models import (
    AgentLoopPlan,
    AgentProgress,
    CrisisRequest,
    MissionPhase,
    ModelUsage,
    PendingToolCall,
    ToolSpec,
    json_size,
)

#: Where a phase's params hold its task.
PROMPT_PARAM = "prompt"
#: The largest conversation a model call carries (every call's input holds it all): within
#: Temporal's payload limits, and its history's, over max_turns calls.
MAX_TRANSCRIPT_BYTES = 512 * 1024


@dataclass
class AgentRun:
    """How an agent's loop ended: its output, or the error it ended with."""

    output: JsonValue = None
    error: str | None = None
    usage: ModelUsage = field(default_factory=ModelUsage)
    transcript: list[dict[str, JsonValue]] = field(default_factory=list)


class AgentSuspended(Exception):
    """The loop stopped between two model calls for its crisis to continue as a new run (where it stands is in
    ``CrisisState.agent_loops``).
    """


class AgentLoop:
    def __init__(
        self,
        request: CrisisRequest,
        state: CrisisState,
        approvals: Approvals,
        budgets: Budgets,
        over_budget: Callable[[], bool],
    ) -> None:
        self._request = request
        self._state = state
        self._approvals = approvals
        self._budgets = budgets
        #: Whether the crisis's history has passed its budget (then the loop stops for a new run).
        self._over_budget = over_budget
        #: Gated tool calls wait for their decisions one at a time: a decision on a phase decides
        #: the one call it names (``liara approve WORKFLOW_ID PHASE_ID``).
        self._gate = asyncio.Lock()

    async def run(
        self,
        phase: MissionPhase,
        plan: AgentLoopPlan,
        context: dict[str, JsonValue],
        *,
        suspendable: bool,
        progress: AgentProgress | None = None,
    ) -> AgentRun:
        """Call the model until it answers without tool calls, at most ``plan.max_turns`` times
        (going on from ``progress``, where a previous run of the crisis left the loop). A failed
        model call (after its retries) ends the phase; a failed tool call is told to the model as
        that tool's result, and the agent goes on. Raises ``AgentSuspended`` if ``suspendable`` and
        the crisis's history passes its budget.
        """
        if progress is not None:
            run = AgentRun(usage=progress.usage, transcript=progress.transcript)
            self._budgets.spending(phase.phase_id, run.usage)
        else:
            run = AgentRun()
            prompt = phase.params.get(PROMPT_PARAM)
            if not isinstance(prompt, str) or not prompt.strip():
                run.error = f"Phase {phase.phase_id}'s language-model agent needs its task as params.prompt (a text)."
                return run
            if plan.system:
                run.transcript.append({"role": "system", "content": plan.system})
            run.transcript.append({"role": "user", "content": task(prompt, phase, context)})
        try:
            first_turn = progress.turns + 1 if progress is not None else 1
            await self._converse(phase, plan, context, run, suspendable, first_turn=first_turn)
        finally:
            self._budgets.spending(phase.phase_id, None)  # from now on its phase carries it
        return run

    async def _converse(
        self,
        phase: MissionPhase,
        plan: AgentLoopPlan,
        context: dict[str, JsonValue],
        run: AgentRun,
        suspendable: bool,
        *,
        first_turn: int,
    ) -> None:
        """The loop of ``run``: model calls, each after the budgets let it, and tool calls."""
        limits = PhaseLimits.of(plan)
        for turn in range(first_turn, plan.max_turns + 1):
            # After at least one model call in this run, so that every run moves the loop on.
            if suspendable and turn > first_turn and self._over_budget():
                self._state.agent_loops[phase.phase_id] = AgentProgress(
                    plan=plan, context=context, turns=turn - 1, usage=run.usage, transcript=run.transcript
                )
                raise AgentSuspended(phase.phase_id)
            refusal = await self._budgets.go_on(phase, run.usage, limits)
            if refusal is not None:
                run.error = refusal
                return
            try:
                answer = await self._call_model(phase, plan, turn, run.transcript)
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise asyncio.CancelledError from err
                run.error = innermost_message(err)
                return
            run.usage = run.usage.plus(answer.usage)
            self._budgets.spending(phase.phase_id, run.usage)
            run.transcript.append(answer.message)
            if not answer.tool_calls:
                run.output, run.error = final_output(plan, answer)
                return
            tools = {tool.name: tool for tool in plan.tools}
            results = await asyncio.gather(
                *(self._call_tool(phase, call, tools.get(call.name), context) for call in answer.tool_calls)
            )
            for call, result in zip(answer.tool_calls, results, strict=True):
                run.transcript.append({"role": "tool", "tool_call_id": call.id, "content": result})
            if json_size(cast(JsonValue, run.transcript)) > MAX_TRANSCRIPT_BYTES:
                run.error = (
                    f"Phase {phase.phase_id}'s conversation grew past {MAX_TRANSCRIPT_BYTES // 1024} KiB after "
                    f"{turn} model calls: ask for shorter tool results or fewer turns."
                )
                return
        run.error = f"Phase {phase.phase_id}'s agent gave no answer within {plan.max_turns} model calls (max_turns)."

    async def _call_model(
        self, phase: MissionPhase, plan: AgentLoopPlan, turn: int, messages: list[dict[str, JsonValue]]
    ) -> ModelAnswer:
        call = ModelCall(
            crisis_id=self._request.crisis_id,
            workflow_id=workflow.info().workflow_id,
            phase_id=phase.phase_id,
            executor=plan.executor,
            turn=turn,
            messages=messages,
            tools=plan.tools,
            output_schema=plan.output_schema,
        )
        # With [limits.models] for it, the call waits for its permits (app.temporal.limits).
        async with step_permits(plan.limits, phase.phase_id):
            return await workflow.execute_activity_method(
                AgentStepActivities.call_model,
                call,
                summary=f"{phase.phase_id}: model call {turn}",
                **self._options(phase),
            )

    async def _call_tool(
        self, phase: MissionPhase, call: ToolCallRequest, tool: ToolSpec | None, context: dict[str, JsonValue]
    ) -> str:
        """The tool's result as the model reads it; a gated tool runs once approved (with the
        arguments the approval gives, if any), and a refusal is its result.
        """
        if tool is not None and tool.approval:
            arguments = arguments_object(call.arguments)
            if arguments is not None:  # (arguments that are no object fail in call_tool, running nothing)
                async with self._gate:
                    pending = PendingToolCall(
                        call_id=call.id, tool=call.name, arguments=arguments, approvals_required=tool.approvals_required
                    )
                    allowed, refusal = await self._approvals.tool_gate(phase, pending)
                if refusal is not None:
                    return f"not run: the call was {refusal}"
                call = call.model_copy(update={"arguments": json.dumps(allowed)})
        run = ToolRun(
            crisis_id=self._request.crisis_id,
            workflow_id=workflow.info().workflow_id,
            phase=phase,
            call=call,
            context=context,
        )
        try:
            # With [limits.tools] for it, the call waits for its permit (app.temporal.limits).
            async with step_permits([tool.limit] if tool is not None and tool.limit else [], phase.phase_id):
                return await workflow.execute_activity_method(
                    AgentStepActivities.call_tool, run, summary=f"{phase.phase_id}: {call.name}", **self._options(phase)
                )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            return f"error: {innermost_message(err)}"

    def _options(self, phase: MissionPhase) -> dict[str, Any]:
        """As the phase's own activity: its timeout per attempt, heartbeats, retry policy."""
        request = self._request
        return {
            "start_to_close_timeout": timedelta(seconds=phase.timeout or request.phase_timeout_seconds),
            "heartbeat_timeout": timedelta(seconds=request.heartbeat_timeout_seconds),
            "retry_policy": (phase.retry or request.retry).to_policy(),
            "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        }


def task(prompt: str, phase: MissionPhase, context: dict[str, JsonValue]) -> str:
    """The user message: the task, and beside it as JSON the phase's other params and the outputs it reads."""
    beside: dict[str, Any] = {}
    params = {name: value for name, value in phase.params.items() if name != PROMPT_PARAM}
    if params:
        beside["params"] = params
    if context:
        beside["context"] = context
    if not beside:
        return prompt
    return f"{prompt}\n\n{json.dumps(beside, indent=2, sort_keys=True)}"


def final_output(plan: AgentLoopPlan, answer: ModelAnswer) -> tuple[JsonValue, str | None]:
    """The phase's output from the model's last answer (and an error if it is not what was asked)."""
    text = answer.content or ""
    if plan.output_schema is None:
        return {"answer": text}, None
    if answer.kept is not None:
        return None, (
            f"Model {plan.model!r} answered more than the {MAX_ANSWER_CHARS} characters a phase's output may "
            f"carry (the whole answer is kept at {answer.kept}); ask for a shorter JSON object."
        )
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return None, f"Model {plan.model!r} answered {text[:200]!r}, not the JSON object its output_schema asks for."
    return parsed, None
