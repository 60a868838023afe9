"""The HTTP contract: request bodies, query and path parameters, and responses.

An optional header or query parameter is absent, never ``null`` (``NeverNull`` keeps ``null``
out of the document, since a header or query string cannot carry one).

Bodies are strict, by the rule the agency applies to whatever people type (the engine's
``STRICT_INPUT``): a field the contract does not name is a 422 at any depth, and every value has
the JSON type the document says (``true`` is not a number, ``"2"`` not an integer; ``2.0`` is the
integer 2, as JSON Schema has it). They are built from the engine's own field types and models,
so the service checks each field as the agency does and names every bad one; rules across
fields (unique phase ids, retry intervals in order) stay with the agency.
Responses reuse the engine's models (phases, summaries, results), so the document follows them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import Header, Path
from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, JsonValue, field_validator
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import CoreSchema

from app.temporal.identity import WORKFLOW_ID_PREFIX
from app.temporal.models import (
    MAX_ID_LENGTH,
    MAX_PARALLEL,
    MAX_PHASES,
    MAX_WEBHOOKS,
    SAFE_ID_PATTERN,
    STRICT_INPUT,
    WHOLE,
    ActionName,
    CancelNote,
    CrisisResult,
    CrisisSummary,
    FailurePolicy,
    InputName,
    MissionPhase,
    ModelUsage,
    Person,
    PhaseOutcome,
    Reason,
    RecordedDecision,
    RerunOf,
    RetrySettings,
    SafeId,
    Seconds,
    by_value,
)
from app.temporal.visibility import CRISIS_STATUSES, DEFAULT_LIST_LIMIT, CrisisFilter
from cognition.liara.approval_policy import POLICY_ONLY
from cognition.liara.service.config import MAX_PAGE_SIZE
from cognition.liara.service.deps import PermissionName
from cognition.liara.service.tokens import Role

#: Request bodies: no unknown field, no value of another JSON type (what the agency applies too).
_STRICT = STRICT_INPUT


class _NeverNull:
    """Marks an optional parameter (``X | None``): validated as such, absent meaning None, and
    documented as ``X`` alone. (pydantic's ``SkipJsonSchema[None]`` would do the document, but
    turns the type into a union whose errors name its branches.)
    """

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return handler(schema["schema"] if schema["type"] == "nullable" else schema)  # type: ignore[typeddict-item]


NeverNull = _NeverNull()
#: A rejection's reason as the engine's decision takes it (at most 1000 characters).
if TYPE_CHECKING:
    CrisisStatusName = str
else:  # one of CRISIS_STATUSES, which the API document lists
    CrisisStatusName = Literal[CRISIS_STATUSES]

WorkflowId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=len(WORKFLOW_ID_PREFIX) + MAX_ID_LENGTH,
        pattern=SAFE_ID_PATTERN,
        description="The workflow id `POST /v1/crises` returned",
    ),
]
PhaseId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=SAFE_ID_PATTERN)]
PlaybookName = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=SAFE_ID_PATTERN, description="A playbook's file name")
]
IdempotencyKey = Annotated[
    Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[!-~]+$")] | None,
    NeverNull,
    Header(
        alias="Idempotency-Key",
        description="Sent again with the same body, returns the first crisis instead of starting another",
    ),
]
LastEventId = Annotated[
    Annotated[int, Field(ge=0)] | None,
    NeverNull,
    Header(alias="Last-Event-ID", description="Resume after this event id (what the last event's `id:` said)"),
]


#: A crisis's or playbook's inputs by name; the document says names must match (pydantic's
#: ``patternProperties`` alone would let any other name through).
Inputs = Annotated[dict[InputName, JsonValue], Field(json_schema_extra={"additionalProperties": False})]


#: Webhooks to tell, each named once (the document says so: JSON Schema's ``uniqueItems``).
WebhookNames = Annotated[
    list[SafeId], Field(min_length=1, max_length=MAX_WEBHOOKS, json_schema_extra={"uniqueItems": True})
]


class RetryBody(RetrySettings):
    model_config = _STRICT


class PhaseBody(MissionPhase):
    """A mission phase, as in the Python API."""

    model_config = _STRICT

    retry: RetryBody | None = Field(default=None, description="Retry policy of this phase (crisis default if unset).")
    # The approval policy sets who may decide a gate: not part of the contract, refused if sent.
    approvers: SkipJsonSchema[None] = None

    @field_validator("approvers", mode="before")
    @classmethod
    def _set_by_the_policy(cls, value: object) -> None:
        if value is not None:
            raise ValueError(POLICY_ONLY)


class CrisisOptions(BaseModel):
    """What a start may choose of a crisis besides its phases, the same from phases or a playbook."""

    model_config = _STRICT

    crisis_id: SafeId | None = Field(default=None, description="Your own crisis id (never reused); generated if unset.")
    retry: RetryBody | None = None
    phase_timeout_seconds: Seconds | None = None
    heartbeat_timeout_seconds: Seconds | None = None
    failure_policy: Annotated[FailurePolicy, by_value(FailurePolicy)] | None = None
    max_parallel: Annotated[int, Field(ge=1, le=MAX_PARALLEL), WHOLE] | None = Field(
        default=None, description="Phases of a graph that run at once, at most (default 4)."
    )
    webhooks: WebhookNames | None = Field(
        default=None, description="Webhooks (configured where notifications are delivered) told of this crisis."
    )
    priority: Annotated[int, Field(ge=1, le=5), WHOLE] | None = Field(
        default=None, description="1 (most urgent) to 5: urgent crises overtake a backlog (3 if unset)."
    )
    token_budget: Annotated[int, Field(ge=1), WHOLE] | None = Field(
        default=None,
        description="Tokens its language-model agents may spend in all; reached, they wait at an extend-budget gate.",
    )
    cost_budget: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="What its agents' model calls may cost in all (models with prices)."
    )


class StartCrisis(CrisisOptions):
    """A crisis to start; who starts it is the token's name."""

    target_member: SafeId
    missions: list[PhaseBody] = Field(min_length=1, max_length=MAX_PHASES)
    inputs: Inputs | None = Field(default=None, description="Values of ${inputs.<name>}.")


class StartPlaybook(CrisisOptions):
    """A playbook to start: its inputs and any option of a crisis, which wins over the playbook's own."""

    inputs: Inputs = Field(default_factory=dict, description="Its inputs by name (each converted to its type).")


class PlaybookInputInfo(BaseModel):
    type: str
    required: bool
    default: JsonValue = None
    description: str


class PlaybookInfo(BaseModel):
    name: str
    description: str
    inputs: dict[str, PlaybookInputInfo]
    phases: int
    target_member: str = Field(
        description="The crisis's target as the playbook writes it: `${inputs.NAME}` names the input it comes from."
    )


class AddPhases(BaseModel):
    model_config = _STRICT

    missions: list[PhaseBody] = Field(min_length=1, max_length=MAX_PHASES)


class Rejection(BaseModel):
    model_config = _STRICT

    reason: Reason | None = Field(default=None, description="Why (recorded as the phase's error).")


class Approval(BaseModel):
    model_config = _STRICT

    arguments: dict[str, JsonValue] | None = Field(
        default=None,
        description="When the phase's agent waits for approval of a tool call: the arguments it runs with "
        "instead of the model's (recorded with the decision).",
    )
    extend_tokens: Annotated[int, Field(ge=1), WHOLE] | None = Field(
        default=None, description="At an extend-budget gate: tokens to add (default: as many again)."
    )
    extend_cost: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="At an extend-budget gate: cost to add (default: as much again)."
    )


class CrisisListParams(CrisisFilter):
    """``GET /v1/crises``: crises newest first, filtered, one page at a time. The agency's
    ``CrisisFilter``, each field typed as the contract says, and ``progress``.
    """

    model_config = ConfigDict(extra="forbid")  # query strings are text: numbers are parsed from it

    target: Annotated[SafeId | None, NeverNull] = None
    status: Annotated[CrisisStatusName | None, NeverNull] = Field(
        default=None, description="The crisis status (search attribute)."
    )
    initiated_by: Annotated[Person | None, NeverNull] = None
    schedule: Annotated[SafeId | None, NeverNull] = Field(default=None, description="The schedule that started them.")
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_LIST_LIMIT
    cursor: Annotated[Annotated[str, Field(max_length=4096)] | None, NeverNull] = Field(
        default=None, description="The `next_cursor` of the page before."
    )
    progress: bool = Field(default=False, description="Add each crisis's `summary` (phases done of total).")


class StartedCrisis(BaseModel):
    workflow_id: str
    crisis_id: str
    created: bool = Field(description="False when an earlier start with the same Idempotency-Key is returned.")


class CrisisRow(BaseModel):
    workflow_id: str
    target: str | None
    crisis_status: str | None
    initiated_by: str | None
    status: str
    started_at: datetime
    summary: CrisisSummary | None = Field(
        default=None, description="With `progress`: its phases so far; null where it cannot be told in time."
    )


class CrisisPage(BaseModel):
    crises: list[CrisisRow]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null after the last one.")


class PhaseReport(PhaseOutcome):
    """A phase as a crisis's status and the approvals inbox tell it."""

    planned_params: dict[str, JsonValue] | None = Field(
        default=None,
        description="While it awaits approval: its params as the crisis's plan has them, references unresolved "
        "(its agent gets them resolved, as `params`, once it starts); absent where they cannot be read in time.",
    )


class CrisisReport(BaseModel):
    """Where a crisis stands (``get_crisis_status``): ``status`` and, by state, the fields below."""

    # Every field the agency tells is one this document declares.
    model_config = ConfigDict(extra="forbid")

    workflow_id: str
    status: str = Field(description="running, completed, failed, cancelled, terminated or timed_out")
    crisis_status: str | None = Field(
        default=None,
        description="Its `CrisisStatus` search attribute, as a listing's `crisis_status` reads it (running, "
        "awaiting_approval, compensating, then its result's status); absent for a crisis started without it.",
    )
    task_queue: str | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None
    crisis_id: str | None = Field(default=None, description="While it runs, or from the record of one that ended.")
    target: str | None = Field(default=None, description="Its target member, where `crisis_id` is told.")
    stage: str | None = None
    current_phase: str | None = None
    running_phases: list[str] | None = Field(default=None, description="Every phase running now (graphs run several).")
    phases: list[PhaseReport] | None = None
    summary: CrisisSummary | None = None
    compensations: list[PhaseOutcome] | None = None
    cancel_requests: list[CancelNote] | None = None
    usage: ModelUsage | None = Field(
        default=None,
        description="What its language-model agents spent in all: so far while it runs, or as the record of one "
        "that ended without a result tells; null if none has (a completed crisis's is its result's `usage`).",
    )
    note: str | None = Field(default=None, description="Why no progress is shown (no worker polling).")
    workers_polling: int | None = Field(default=None, description="With `note`: the workers polling its task queue.")
    problem: str | None = Field(default=None, description="Why a running crisis waits (an activity keeps failing).")
    result: CrisisResult | None = None
    error: str | None = Field(default=None, description="How a workflow that ended without a result ended.")
    record_path: str | None = Field(
        default=None, description="Where the crisis record of a crisis that ended without a result is."
    )
    record_error: str | None = Field(
        default=None, description="Why that record could not be read (then its phases are not told)."
    )


class CrisisOutcome(BaseModel):
    """The answer of the result endpoint: a result, how the crisis ended without one, or (202)
    that it still runs.
    """

    workflow_id: str
    status: str
    result: CrisisResult | None = None
    error: str | None = None


class CancelRequested(BaseModel):
    workflow_id: str
    cancelled_by: str


#: A path a rerun's override sets: ``PHASE_ID.params.KEY``, ``PHASE_ID.FIELD`` or ``inputs.NAME``.
OverridePath = Annotated[str, Field(min_length=1, max_length=512)]


class RerunCrisis(BaseModel):
    """A crisis that has ended, started again from one of its phases (``liara rerun``); who starts
    it is the token's name.
    """

    model_config = _STRICT

    from_phase: SafeId = Field(
        description="The phase to rerun from: those before it (in a graph, those that do not depend on it) keep "
        "their recorded outputs, and no agent runs again for them."
    )
    overrides: Annotated[dict[OverridePath, JsonValue], Field(max_length=100)] = Field(
        default_factory=dict,
        description="Changes to the request, by path: `PHASE_ID.params.KEY` (deeper keys with more dots), "
        "`PHASE_ID.FIELD` (such as `action`, for another executor), `inputs.NAME`.",
    )
    crisis_id: SafeId | None = Field(
        default=None, description="The rerun's own crisis id (never reused); generated if unset."
    )


class RerunStarted(StartedCrisis):
    rerun_of: RerunOf
    reused: list[str] = Field(description="The phases taken as completed with their recorded outputs, in plan order.")
    linked: bool = Field(description="Whether the record of the crisis it reruns lists it (false: there is none here).")


class DecisionTaken(RecordedDecision):
    approvals: int | None = Field(default=None, description="Approvals the phase has so far.")
    approvals_required: int | None = Field(default=None, description="Approvals it needs (its quorum).")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    address: str
    namespace: str


class Me(BaseModel):
    """Who the token stands for, and what its role allows."""

    name: str
    role: Role
    permissions: list[PermissionName] = Field(description="What the role allows: read, operate, decide.")


class PendingApproval(BaseModel):
    """A phase that awaits decisions, and the crisis it belongs to."""

    workflow_id: str
    target: str | None
    initiated_by: str | None
    started_at: datetime
    phase: PhaseReport
    approvals: int = Field(description="Approvals it has so far.")


class ApprovalInbox(BaseModel):
    approvals: list[PendingApproval]
    more: bool = Field(description="More crises await approval than one answer looks into.")


class ActionWords(BaseModel):
    """Phases as `liara trigger TARGET ACTION...` makes them."""

    model_config = _STRICT

    target_member: SafeId
    actions: list[ActionName] = Field(min_length=1, max_length=MAX_PHASES)


class Missions(BaseModel):
    missions: list[MissionPhase]


class ConsoleSettings(BaseModel):
    """What the console needs to know besides the API."""

    namespace: str
    web_ui_url: str = Field(description="The Temporal Web UI, for links to a crisis's workflow.")
    statuses: list[CrisisStatusName] = Field(description="The crisis statuses a listing filters by.")
    max_parallel: int = Field(description="The most a start's `max_parallel` may be.")
