"""Data models shared by the crisis workflow, its activities and the agency.

They live outside ``workflows.py`` so the workflow sandbox can pass them through instead of
rebuilding every pydantic model on each workflow run; ``workflows.py`` re-exports them.

On the wire every model ignores fields it does not know: during a rolling deploy a worker of
one release reads what a worker or agency of another release wrote. What people type is
checked strictly instead, by one rule whichever way it comes (the Python API, a missions file, a
playbook, the HTTP API): the agency validates requests with ``strict_input`` before anything
starts, and the HTTP service's bodies are these models with ``STRICT_INPUT``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, NotRequired

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    StringConstraints,
    field_validator,
    model_serializer,
    model_validator,
)
from temporalio.common import RetryPolicy
from typing_extensions import TypedDict

from app.temporal import plan

#: Ids that become file names or workflow ids: a letter or digit, then letters, digits, ``.``,
#: ``_`` or ``-``. No ``/``, no whitespace, no NUL, and never ``.`` or ``..`` on their own.
SAFE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MAX_ID_LENGTH = 128
MAX_PHASES = 1000
MAX_PARALLEL = 64
#: Bounds of a crisis's history budget: Temporal warns at 10,240 events and stops at 51,200.
MIN_HISTORY_BUDGET = 50
MAX_HISTORY_BUDGET = 40_000
MAX_PLAN_PROBLEMS = 5
#: Names of a crisis's inputs (``${inputs.<name>}``).
INPUT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
#: Largest quorum a phase may ask for.
MAX_APPROVALS = 100
MAX_WEBHOOKS = 10

#: An action is a word: a letter, then letters, digits, ``_`` or ``-``.
ACTION_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
MAX_ACTION_LENGTH = 64

#: Who starts or decides (a user name, an e-mail address): anything Temporal's visibility queries
#: can match, so ``liara list --initiated-by`` finds every value a crisis can carry. No ``"``, no
#: backslash, no control character (Temporal's SQL visibility stores re-escape them, so no query
#: matches them), and no ``'`` at either end (the server strips those off a query's literal).
PERSON_PATTERN = r"^[^'\"\\\x00-\x1f]([^\"\\\x00-\x1f]*[^'\"\\\x00-\x1f])?$"

SafeId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=SAFE_ID_PATTERN)]
InputName = Annotated[str, Field(min_length=1, max_length=64, pattern=INPUT_NAME_PATTERN)]
Person = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=PERSON_PATTERN)]
ActionName = Annotated[str, Field(min_length=1, max_length=MAX_ACTION_LENGTH, pattern=ACTION_PATTERN)]
#: Why a decision was taken (a rejection's reason becomes the phase's error).
Reason = Annotated[str, Field(max_length=1000)]
#: A duration: at least a millisecond (Temporal rounds timeouts to milliseconds; 0 means none), at most a day.
Seconds = Annotated[float, Field(ge=0.001, le=86400)]

#: The non-retryable failure type of a request that can never succeed.
INVALID_REQUEST_ERROR = "InvalidCrisisRequest"

#: Largest output one phase's agent may report (JSON bytes); executors refuse more.
MAX_OUTPUT_BYTES = 64 * 1024
#: Outputs and resolved params a crisis carries in its workflow state, result and progress, in
#: all (JSON bytes). Past this budget they are kept in the crisis record only, and the phase says
#: so with an ``output_ref`` or ``params_ref``: the result stays far below Temporal's 2 MiB payload
#: limit whatever agents say and references expand to.
OUTPUT_BUDGET_BYTES = 512 * 1024
#: An error message longer than this is cut (agents may raise anything).
MAX_ERROR_CHARS = 500
#: Largest crisis request, with the phases added to it, as JSON: a crisis carries it into each
#: run it continues as, beside its state (``CARRY_LIMIT_BYTES``).
MAX_REQUEST_BYTES = 512 * 1024
#: What a crisis carries into the run it continues as, at most (its request and its state, as
#: JSON): Temporal refuses a payload past 2 MiB. Its oldest events are dropped to stay within it.
CARRY_LIMIT_BYTES = 3 * MAX_REQUEST_BYTES


class WireModel(BaseModel):
    """What workers, activities and the agency pass each other: unknown fields are ignored (a
    rolling deploy mixes releases)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


def json_size(value: JsonValue) -> int:
    """The size of ``value`` as compact JSON (bytes, non-ASCII escaped): what the budgets count."""
    return len(json.dumps(value, separators=(",", ":")))


def wire_size(model: BaseModel) -> int:
    """The size of ``model`` as JSON, as the data converter sends it (bytes)."""
    return len(model.model_dump_json().encode())


#: What people type: a field the model does not know is an error, and every value has its own JSON
#: type (``"yes"`` is not a boolean, ``true`` not a number, ``"2"`` not an integer, ``"30"`` not a
#: number of seconds). A whole number may be written ``2.0``, as JSON Schema has it (``WHOLE``), and
#: a choice is its name (``"abort"``).
STRICT_INPUT = ConfigDict(extra="forbid", strict=True)


def strict_input(model: type[WireModel], data: Any) -> Any:
    """``model`` validated from what a person typed, by the rule of ``STRICT_INPUT``."""
    return model.model_validate(data, extra="forbid", strict=True)


def integral(value: object) -> object:
    """2.0 as the integer 2 (1.5, "2" and true stay what they are, for the check to refuse)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: Reads a whole number written as JSON may write it (2.0): ``Annotated[int, Field(...), WHOLE]``,
#: after the constraints, which the JSON schema then keeps.
WHOLE = BeforeValidator(integral)


def by_value(choices: type[StrEnum]) -> BeforeValidator:
    """A choice given by its value (``"abort"``), as people write it: strict validation would take
    only the enum's member itself.
    """

    def chosen(value: object) -> object:
        if isinstance(value, choices):
            return value
        if isinstance(value, str) and value in choices._value2member_map_:
            return choices(value)
        raise ValueError(f"Input should be {' or '.join(repr(member.value) for member in choices)}")

    return BeforeValidator(chosen)


class RetrySettings(WireModel):
    """Retry policy of each ``perform_agent_mission`` call (the spec's defaults)."""

    maximum_attempts: Annotated[int, Field(ge=1, le=100), WHOLE] = 3
    initial_interval_seconds: Annotated[float, Field(gt=0, le=3600)] = 2.0
    maximum_interval_seconds: Annotated[float, Field(gt=0, le=86400)] = 30.0
    backoff_coefficient: Annotated[float, Field(ge=1, le=10)] = 2.0

    @model_validator(mode="after")
    def _interval_order(self) -> RetrySettings:
        if self.maximum_interval_seconds < self.initial_interval_seconds:
            raise ValueError(
                f"maximum_interval_seconds ({self.maximum_interval_seconds:g}) must not be less than "
                f"initial_interval_seconds ({self.initial_interval_seconds:g})"
            )
        return self

    def to_policy(self) -> RetryPolicy:
        return RetryPolicy(
            maximum_attempts=self.maximum_attempts,
            initial_interval=timedelta(seconds=self.initial_interval_seconds),
            maximum_interval=timedelta(seconds=self.maximum_interval_seconds),
            backoff_coefficient=self.backoff_coefficient,
            non_retryable_error_types=[INVALID_REQUEST_ERROR],
        )


class ApprovalDecision(WireModel):
    """Input of the ``decide_approval`` update: approve or reject a phase that awaits approval."""

    phase_id: SafeId
    approved: bool
    decided_by: Person
    reason: Reason | None = None
    role: Annotated[str, Field(max_length=MAX_ID_LENGTH)] | None = Field(
        default=None, description="The decider's role, for a decision made through the service (its token's)."
    )
    arguments: dict[str, JsonValue] | None = Field(
        default=None,
        description="With the approval of an agent's tool call: the arguments it runs with instead of the model's.",
    )
    extend_tokens: Annotated[int, Field(ge=1, strict=True), WHOLE] | None = Field(
        default=None, description="With the approval of an extend-budget gate: tokens to add (default: as many again)."
    )
    extend_cost: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="With the approval of an extend-budget gate: cost to add (default: as much again)."
    )


class Approvers(WireModel):
    """Who may decide a phase's gate, as the approval policy says: any of these names, or anyone
    deciding with one of these roles.
    """

    names: list[Person] = Field(default_factory=list)
    roles: list[Annotated[str, Field(max_length=MAX_ID_LENGTH)]] = Field(default_factory=list)

    def allow(self, decision: ApprovalDecision) -> bool:
        return decision.decided_by in self.names or (decision.role is not None and decision.role in self.roles)

    def describe(self) -> str:
        named = [*self.names, *(f"anyone with the role {role}" for role in self.roles)]
        return ", ".join(named[:-1]) + (" or " if len(named) > 1 else "") + named[-1]


class MissionPhase(WireModel):
    """One step of a crisis: an agent performing an action against a target."""

    phase_id: SafeId
    agent_id: SafeId
    action: ActionName
    target: SafeId
    priority: Annotated[int, Field(ge=0, strict=True), WHOLE] = Field(
        default=1, description="Lower runs first; equal priorities keep their given order."
    )
    params: dict[str, JsonValue] = Field(default_factory=dict, description="Parameters for the phase's executor.")
    timeout: Seconds | None = Field(default=None, description="Seconds one attempt may take (crisis default if unset).")
    retry: RetrySettings | None = Field(
        default=None, description="Retry policy of this phase (crisis default if unset)."
    )
    compensate_action: ActionName | None = Field(
        default=None, description="Action that undoes this phase when the crisis is aborted or cancelled."
    )
    requires_approval: bool = Field(default=False, description="Wait for an approve or reject decision before running.")
    approvals_required: Annotated[int, Field(ge=1, le=MAX_APPROVALS, strict=True), WHOLE] = Field(
        default=1, description="Distinct approvers the phase needs (a quorum); more than 1 implies requires_approval."
    )
    approval_timeout: Seconds | None = Field(
        default=None, description="Seconds to wait for approval before the phase fails (forever if unset)."
    )
    depends_on: Annotated[list[SafeId], Field(max_length=MAX_PHASES)] | None = Field(
        default=None,
        description="Phases that must complete before this one starts; declaring it makes the crisis a graph.",
    )
    approvers: Approvers | None = Field(
        default=None, description="Who may decide its gate: set by the approval policy, not by a request."
    )

    @model_validator(mode="after")
    def _quorum_needs_approval(self) -> MissionPhase:
        if self.approvals_required > 1:
            self.requires_approval = True
        return self


class FailurePolicy(StrEnum):
    CONTINUE = "continue"
    ABORT = "abort"


class NotificationSettings(WireModel):
    """Which configured webhooks hear of a crisis (see app.temporal.notifications)."""

    webhooks: Annotated[list[SafeId], Field(min_length=1, max_length=MAX_WEBHOOKS)]
    task_queue: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)] = "liara-notifications"

    @field_validator("webhooks")
    @classmethod
    def _distinct(cls, webhooks: list[str]) -> list[str]:
        if len(set(webhooks)) != len(webhooks):
            raise ValueError("name each webhook once")
        return webhooks


class RerunOf(WireModel):
    """What a rerun (``liara rerun``) reruns: a crisis, from one of its phases."""

    workflow_id: str
    crisis_id: str
    from_phase: str
    overrides: dict[str, JsonValue] = Field(
        default_factory=dict, description="What it changed of the request, by path (PHASE_ID.params.KEY: value)."
    )


class ReusedPhase(WireModel):
    """A phase a rerun takes as completed, with the output its agent reported in an earlier crisis."""

    workflow_id: str = Field(description="The crisis workflow whose agent reported the output.")
    output: JsonValue = None


class CrisisRequest(WireModel):
    """The single input of ``CrisisResponseWorkflow``."""

    crisis_id: SafeId
    target_member: SafeId
    missions: list[MissionPhase] = Field(min_length=1, max_length=MAX_PHASES)
    initiated_by: Person = "unknown"
    retry: RetrySettings = Field(default_factory=RetrySettings)
    phase_timeout_seconds: Seconds = 300.0
    heartbeat_timeout_seconds: Seconds = Field(
        default=10.0, description="A phase whose worker is silent this long is retried on another worker."
    )
    failure_policy: Annotated[FailurePolicy, by_value(FailurePolicy)] = Field(
        default=FailurePolicy.CONTINUE, description="continue: run the remaining phases; abort: stop and compensate."
    )
    notifications: NotificationSettings | None = Field(
        default=None, description="Webhooks told of approval_required, phase_failed and finished."
    )
    inputs: dict[InputName, JsonValue] = Field(
        default_factory=dict, description="Values phases' params refer to as ${inputs.<name>}."
    )
    max_parallel: Annotated[int, Field(ge=1, le=MAX_PARALLEL, strict=True), WHOLE] = Field(
        default=4, description="Phases of a graph that run at once, at most."
    )
    token_budget: Annotated[int, Field(ge=1, strict=True), WHOLE] | None = Field(
        default=None,
        description="Tokens its language-model agents may spend in all; reached, they wait at an extend-budget gate.",
    )
    cost_budget: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="What its agents' model calls may cost in all (models with prices); reached, as token_budget.",
    )
    priority: Annotated[int, Field(ge=1, le=5, strict=True), WHOLE] | None = Field(
        default=None,
        description="1 (most urgent) to 5: Temporal's task priority; urgent crises overtake a backlog (3 if unset).",
    )
    history_budget_events: Annotated[int, Field(ge=MIN_HISTORY_BUDGET, le=MAX_HISTORY_BUDGET, strict=True), WHOLE] = (
        Field(
            default=10_000,
            description="Events of history after which the crisis continues as a new run (nothing is lost).",
        )
    )
    playbook: SafeId | None = Field(default=None, description="The playbook the crisis was started from.")
    schedule: SafeId | None = Field(default=None, description="The schedule that started the crisis.")
    self_approval: bool = Field(
        default=False,
        description="Whether whoever started the crisis may decide its gates (as the approval policy says).",
    )
    rerun_of: RerunOf | None = Field(default=None, description="Set by a rerun: the crisis it reruns, and from where.")
    reused: dict[SafeId, ReusedPhase] = Field(
        default_factory=dict,
        description="Set by a rerun: phases completed with these outputs as they come, no agent running for them.",
    )

    @model_validator(mode="after")
    def _reused_phases_planned(self) -> CrisisRequest:
        planned = {phase.phase_id for phase in self.missions}
        unknown = [phase_id for phase_id in self.reused if phase_id not in planned]
        if unknown:
            raise ValueError(f"reused names {unknown[0]!r}, which is not a phase of the crisis")
        return self

    @field_validator("missions")
    @classmethod
    def _unique_phase_ids(cls, missions: list[MissionPhase]) -> list[MissionPhase]:
        seen: set[str] = set()
        for phase in missions:
            if phase.phase_id in seen:
                raise ValueError(f"phase_id {phase.phase_id!r} appears more than once")
            seen.add(phase.phase_id)
        return missions

    @model_validator(mode="after")
    def _sound_plan(self) -> CrisisRequest:
        found = plan.problems(self.missions, self.inputs)
        if found:
            raise ValueError("; ".join(found[:MAX_PLAN_PROBLEMS]))
        return self

    @model_validator(mode="after")
    def _small_enough_to_carry(self) -> CrisisRequest:
        size = wire_size(self)
        if size > MAX_REQUEST_BYTES:
            raise ValueError(
                f"the request is {size} bytes as JSON, more than the {MAX_REQUEST_BYTES} a crisis can carry; "
                "keep large data out of params and inputs, or split it into several crises"
            )
        return self

    @property
    def is_graph(self) -> bool:
        return plan.is_graph(self.missions)

    def ordered_missions(self) -> list[MissionPhase]:
        """Phases in execution order: by priority, ties in the order given."""
        return plan.execution_order(self.missions)


class PhaseStatus(StrEnum):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class Stage(StrEnum):
    """Where a crisis is in its life (``progress().stage``); see ``CrisisResponseWorkflow``."""

    VALIDATING = "validating"
    INITIALIZING = "initializing"
    RUNNING = "running"
    COMPENSATING = "compensating"
    FINALIZING = "finalizing"
    DONE = "done"

    @property
    def winds_down(self) -> bool:
        """No phase starts any more, and a cancel is recorded, not obeyed."""
        return self in (Stage.COMPENSATING, Stage.FINALIZING, Stage.DONE)


class CrisisStatus(StrEnum):
    """A crisis's status: its ``CrisisStatus`` search attribute while it runs, then its result's."""

    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPENSATING = "compensating"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RecordedDecision(ApprovalDecision):
    """A decision the crisis took: what ``decide_approval`` returns."""

    decided_at: datetime
    tool: str | None = Field(default=None, description="The tool whose call it decided (an agent's gated tool).")
    tool_call_id: str | None = None


class PendingToolCall(WireModel):
    """A tool call of a phase's agent that waits for approval before it runs."""

    call_id: str
    tool: str
    arguments: dict[str, JsonValue]
    approvals_required: int = 1


class PendingBudget(WireModel):
    """An agent stopped at a budget (its phase's, or its crisis's): its extend-budget gate asks for more."""

    scope: str = Field(description="phase or crisis: whose budget was reached.")
    spent: ModelUsage
    token_budget: int | None = None
    cost_budget: float | None = None
    approvals_required: int = 1


class OutputRef(WireModel):
    """Where a value past the crisis's output budget is kept: its phase's entry in the record (the
    output its agent reported, or, as a ``params_ref``, the resolved params its agent got).
    """

    store: str = "record"
    crisis_id: str
    phase_id: str
    compensation: bool = False
    size_bytes: int


class UsageDocument(TypedDict):
    """``ModelUsage`` as JSON: ``cost`` only where a model has prices."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    model_calls: int
    cost: NotRequired[float]


class ModelUsage(WireModel):
    """Tokens spent by language-model calls, summed over every call whose answer arrived."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    model_calls: int = 0
    cost: float | None = Field(default=None, description="What the calls cost, where their model has prices.")

    @model_serializer(mode="wrap")
    def _without_unknown_cost(self, handler: SerializerFunctionWrapHandler) -> UsageDocument:
        dumped = handler(self)
        if dumped.get("cost", 0) is None:  # no model of it has prices: there is no cost to tell
            del dumped["cost"]
        return dumped

    def plus(self, other: ModelUsage) -> ModelUsage:
        costs = [cost for cost in (self.cost, other.cost) if cost is not None]
        return ModelUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            model_calls=self.model_calls + other.model_calls,
            cost=round(sum(costs), 6) if costs else None,
        )

    @classmethod
    def total(cls, usages: Iterable[ModelUsage | None]) -> ModelUsage | None:
        """The sum of those given; None if none is."""
        given = [usage for usage in usages if usage is not None]
        if not given:
            return None
        summed = cls()
        for usage in given:
            summed = summed.plus(usage)
        return summed


class StepLimit(WireModel):
    """A limit of ``[limits]`` (liara.toml) on an agent's model calls or on its calls of a tool,
    across every worker of the crisis task queue: a step waits for a permit of the limit's
    limiter workflow (app.temporal.limits) before its activity is scheduled.
    """

    kind: str = Field(description="model or tool: the [limits] table it comes from.")
    name: str = Field(description="Its key in that table: a model, an llm executor, a provider's host, or a tool.")
    concurrent: int | None = Field(default=None, description="Calls at once, at most.")
    per_minute: int | None = Field(default=None, description="Calls a minute, at most (one every 60/N seconds).")


class ToolSpec(WireModel):
    """An executor a model may call, as the model sees it, and whether a call of it waits for approval."""

    name: str
    description: str
    parameters: dict[str, JsonValue] = Field(description="The JSON schema of the tool's arguments.")
    approval: bool = Field(default=False, description="Each call waits for approval, as a gated phase does.")
    approvals_required: int = Field(default=1, description="Distinct approvers a call needs.")
    limit: StepLimit | None = Field(default=None, description="The [limits.tools] entry its calls wait for.")


class AgentLoopPlan(WireModel):
    """What a language-model agent phase runs: fixed in its history when the phase starts, so a
    change of configuration cannot change a loop under way.
    """

    executor: str
    model: str
    system: str | None = None
    tools: list[ToolSpec] = Field(default_factory=list)
    max_turns: int
    output_schema: dict[str, JsonValue] | None = None
    limits: list[StepLimit] = Field(
        default_factory=list, description="The [limits.models] entries its model calls wait for, in the order taken."
    )
    token_budget: int | None = Field(default=None, description="Tokens one phase of it may spend (its executor's).")
    cost_budget: float | None = Field(default=None, description="What one phase of it may cost (its executor's).")


class AgentProgress(WireModel):
    """Where a language-model agent's loop stood when its crisis continued as a new run: the run
    goes on from here, with nothing of the conversation lost and no step made again.
    """

    plan: AgentLoopPlan
    context: dict[str, JsonValue] = Field(default_factory=dict, description="The outputs its phase reads.")
    turns: int = Field(description="Model calls made so far.")
    usage: ModelUsage
    transcript: list[dict[str, JsonValue]]


class PhaseOutcome(WireModel):
    """How one phase ended (or stands, while the crisis runs)."""

    phase_id: str
    agent_id: str
    action: str
    status: PhaseStatus = PhaseStatus.PENDING
    attempts: int | None = Field(default=None, description="Attempts made, where known.")
    error: str | None = None
    timestamp: datetime | None = None
    output: JsonValue = Field(default=None, description="What the agent reported (small JSON).")
    output_ref: OutputRef | None = Field(
        default=None, description="Set when the output is kept in the crisis record only (past the output budget)."
    )
    depends_on: list[str] | None = None
    params: dict[str, JsonValue] | None = Field(
        default=None, description="The params the agent received, when references in them were resolved."
    )
    params_ref: OutputRef | None = Field(
        default=None, description="Set when the resolved params are kept in the crisis record only (past the budget)."
    )
    requires_approval: bool = False
    approvals_required: int = 1
    decisions: list[RecordedDecision] = Field(
        default_factory=list, description="Every decision on the phase, in order."
    )
    approvals: int = Field(default=0, description="Approvals it has so far (each approver counted once).")
    approved_by: str | None = Field(default=None, description="Who approved it (the quorum, comma-separated).")
    usage: ModelUsage | None = Field(default=None, description="What a language-model agent phase spent.")
    pending_tool_call: PendingToolCall | None = Field(
        default=None, description="The tool call of its agent that awaits approval now."
    )
    pending_budget: PendingBudget | None = Field(
        default=None, description="The budget its agent reached, whose extend-budget gate awaits approval now."
    )
    transcript: list[dict[str, JsonValue]] | None = Field(
        default=None,
        description="A language-model agent's conversation (messages, tool calls and results): in the record only.",
    )
    reused_from: str | None = Field(
        default=None,
        description="Set when a rerun took the phase as completed without running it: the crisis workflow whose "
        "agent reported its output.",
    )


class CrisisSummary(WireModel):
    completed_phases: int
    failed_phases: int
    total_phases: int

    @classmethod
    def of(cls, statuses: Iterable[str]) -> CrisisSummary:
        counted = [PhaseStatus(status) for status in statuses]
        return cls(
            completed_phases=counted.count(PhaseStatus.COMPLETED),
            failed_phases=counted.count(PhaseStatus.FAILED),
            total_phases=len(counted),
        )


class CancelNote(WireModel):
    """A cancel request the crisis saw: when, at which stage, and whether it was obeyed (one that
    arrives once the crisis winds down, compensating or finalizing, is recorded, not obeyed).
    """

    requested_at: datetime
    stage: Stage
    obeyed: bool
    reason: str | None = Field(default=None, description="The cancel request's reason: the agency sends who asked.")


class EventKind(StrEnum):
    PHASE = "phase"
    APPROVAL_REQUIRED = "approval_required"
    DECISION = "decision"
    COMPENSATION = "compensation"
    CANCEL_REQUESTED = "cancel_requested"
    FINISHED = "finished"
    AGENT_OUTPUT = "agent_output"


#: Text a model wrote, kept as it came (the wire models strip other strings): streamed pieces
#: join to the answer only with their spaces and line breaks.
ModelText = Annotated[str, StringConstraints(strip_whitespace=False)]


class CrisisEvent(WireModel):
    """One change of a crisis, on its event stream (small: no outputs). An ``agent_output`` event
    carries the text a model call of a phase's agent has streamed since the last one (``delta``):
    the deltas of a model call (its ``turn``) join to its answer's text, unless one says
    ``restart`` (the call was tried again: drop its text so far, then add the delta) or one says
    ``cut`` (the text streamed ends there; the phase's output holds the answer).
    """

    kind: EventKind
    at: datetime
    phase_id: str | None = None
    status: str | None = None
    error: str | None = None
    approvals: int | None = None
    approvals_required: int | None = None
    decided_by: str | None = None
    approved: bool | None = None
    turn: int | None = None
    delta: ModelText | None = None
    restart: bool | None = None
    cut: bool | None = None
    compensation: bool | None = None
    tool: str | None = Field(default=None, description="With approval_required: the tool whose call waits.")


#: The signal by which a model call (activity ``call_model``) hands its crisis the text it has
#: streamed, batched (app.temporal.agent_output); the crisis publishes it as ``agent_output``.
AGENT_OUTPUT_SIGNAL = "agent_output"


class AgentOutputBatch(WireModel):
    """Text a model call streamed since its last batch: the payload of ``AGENT_OUTPUT_SIGNAL``."""

    phase_id: str
    turn: int
    attempt: int = Field(description="The attempt of the model call's activity that streamed it (from 1).")
    delta: ModelText = ""
    cut: bool = Field(default=False, description="The attempt streams no more text (the rest was too long).")


class CrisisProgress(WireModel):
    """Answer of the workflow's ``progress`` query."""

    crisis_id: str
    target: str
    stage: Stage
    current_phase: str | None
    running_phases: list[str] = Field(default_factory=list, description="Every phase running now (graphs run several).")
    phases: list[PhaseOutcome]
    summary: CrisisSummary
    compensations: list[PhaseOutcome] = Field(default_factory=list)
    cancel_requests: list[CancelNote] = Field(default_factory=list)
    usage: ModelUsage | None = Field(
        default=None,
        description="What its language-model agents spent so far, in all: the phases whose agent has finished "
        "(None: none has yet).",
    )


class CrisisResult(WireModel):
    """What ``CrisisResponseWorkflow`` returns."""

    crisis_id: str
    target: str
    initiated_by: str = Field(default="unknown", description="Who started the crisis.")
    success: bool
    status: CrisisStatus
    started_at: datetime
    completed_at: datetime
    phases: list[PhaseOutcome]
    summary: CrisisSummary
    failed_phases: list[str]
    record_path: str | None = Field(
        default=None,
        description="Where the crisis record is: the record file's absolute path, or "
        "postgresql://host:port/database#crisis_id.",
    )
    compensations: list[PhaseOutcome] = Field(default_factory=list)
    cancel_requests: list[CancelNote] = Field(default_factory=list)
    usage: ModelUsage | None = Field(
        default=None, description="What its language-model agents spent in all (None: it ran none)."
    )


# Activity inputs and outputs: one object each.


class PhaseAssignment(WireModel):
    """Input of ``perform_agent_mission``: a phase, or the compensation of one."""

    crisis_id: str
    workflow_id: str
    phase: MissionPhase
    compensation: bool = False
    context: dict[str, JsonValue] = Field(
        default_factory=dict, description="Outputs of the phases this one depends on or refers to, by phase id."
    )
    entry: PhaseOutcome | None = Field(
        default=None, description="The phase's record entry as it stands; the activity completes it when it writes."
    )
    record: bool = Field(default=False, description="Write the completed entry to the crisis record before reporting.")
    inline_output_bytes: int = Field(
        default=MAX_OUTPUT_BYTES,
        description="Largest output to report inline; a larger one is kept in the crisis record only.",
    )
    crisis: CrisisSnapshot | None = Field(
        default=None,
        description="Create the crisis's record from this before the agent runs (the first phase's step does, "
        "when that phase has no approval gate): the agent runs only once the record exists.",
    )
    finalize: bool = Field(
        default=False,
        description="The phase is the crisis's last and every other has completed: once its agent completes, "
        "write its entry and the record's final state at once, unless the workflow holds the final write.",
    )


class FinalWriteHold(WireModel):
    """Input of ``hold_final_write``: keep the crisis's final write for the workflow, not for the
    activity of ``phase_id`` (phases were added, or a cancel came, while it ran)."""

    crisis_id: str
    phase_id: str
    crisis: CrisisSnapshot | None = Field(default=None, description="Creates the record if it is missing.")


class AgentReport(WireModel):
    """Output of ``perform_agent_mission``."""

    phase_id: str
    agent_id: str
    attempt: int
    output: JsonValue = None
    output_ref: OutputRef | None = None
    output_bytes: int = Field(default=0, description="Size of the inline output as JSON.")
    recorded: bool = Field(default=False, description="Whether the completed phase is in the crisis record already.")
    finished_at: datetime | None = Field(
        default=None,
        description="When the agent finished, on the Temporal server's clock (see docs/concepts/record.md).",
    )
    agent_loop: AgentLoopPlan | None = Field(
        default=None, description="Set for a language-model agent: the workflow runs its loop, step by step."
    )
    created: bool | None = Field(
        default=None,
        description="Given ``PhaseAssignment.crisis``: True if the record was created (the agent ran), False if "
        "it could not be (the agent did not run: the workflow creates the record, then runs the phase); None if "
        "the activity did not look at it (the agent ran).",
    )
    record_path: str | None = Field(
        default=None,
        description="Given ``PhaseAssignment.finalize``: where the record is, if this activity gave it its final "
        "state (then ``finished_at`` is the crisis's end); None if the workflow is to write it.",
    )


class CrisisSnapshot(WireModel):
    """The crisis as the workflow sees it now: creates its record, or rebuilds one that is missing."""

    crisis_id: str
    workflow_id: str
    run_id: str
    target: str
    initiated_by: str
    started_at: datetime
    playbook: str | None = None
    schedule: str | None = None
    phases: list[PhaseOutcome] = Field(default_factory=list)
    first_run_id: str | None = Field(
        default=None,
        description="The crisis's first workflow run (the same for a reset run and every run it continues as, "
        "another for a new crisis with the same id); None from a workflow of an earlier release.",
    )
    rerun_of: RerunOf | None = Field(default=None, description="The crisis it reruns, and from where (a rerun's).")


class PhaseLogEntry(WireModel):
    """Input of ``log_mission_phase``."""

    crisis_id: str
    target: str
    outcome: PhaseOutcome
    compensation: bool = False
    crisis: CrisisSnapshot | None = Field(
        default=None, description="The whole crisis as the workflow sees it: rebuilds a record that is missing."
    )


class CrisisCompletion(WireModel):
    """Input of ``finalize_crisis_response``."""

    crisis_id: str
    status: CrisisStatus
    completed_at: datetime
    phases: list[PhaseOutcome]
    compensations: list[PhaseOutcome] = Field(default_factory=list)
    cancel_requests: list[CancelNote] = Field(default_factory=list)
    crisis: CrisisSnapshot | None = Field(
        default=None, description="The crisis's header (its phases are above): rebuilds a record that is missing."
    )
