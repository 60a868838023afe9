"""Data models shared by the crisis workflow, its activities and the agency.

They live outside ``workflows.py`` so the workflow sandbox can pass them through instead of
rebuilding every pydantic model on each workflow run; ``workflows.py`` re-exports them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator
from temporalio.common import RetryPolicy

#: Ids that become file names or workflow ids: a letter or digit, then letters, digits, ``.``,
#: ``_`` or ``-``. No ``/``, no whitespace, no NUL, and never ``.`` or ``..`` on their own.
SAFE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MAX_ID_LENGTH = 128
MAX_PHASES = 1000

#: An action is a word: a letter, then letters, digits, ``_`` or ``-``.
ACTION_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
MAX_ACTION_LENGTH = 64

SafeId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=SAFE_ID_PATTERN)]
ActionName = Annotated[str, Field(min_length=1, max_length=MAX_ACTION_LENGTH, pattern=ACTION_PATTERN)]
Seconds = Annotated[float, Field(gt=0, le=86400)]

#: The non-retryable failure type of a request that can never succeed.
INVALID_REQUEST_ERROR = "InvalidCrisisRequest"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RetrySettings(_Model):
    """Retry policy of each ``perform_agent_mission`` call (the spec's defaults)."""

    maximum_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    initial_interval_seconds: Annotated[float, Field(gt=0, le=3600)] = 2.0
    maximum_interval_seconds: Annotated[float, Field(gt=0, le=86400)] = 30.0
    backoff_coefficient: Annotated[float, Field(ge=1, le=10)] = 2.0

    @model_validator(mode="after")
    def _interval_order(self) -> RetrySettings:
        if self.maximum_interval_seconds < self.initial_interval_seconds:
            raise ValueError("maximum_interval_seconds must not be less than initial_interval_seconds")
        return self

    def to_policy(self) -> RetryPolicy:
        return RetryPolicy(
            maximum_attempts=self.maximum_attempts,
            initial_interval=timedelta(seconds=self.initial_interval_seconds),
            maximum_interval=timedelta(seconds=self.maximum_interval_seconds),
            backoff_coefficient=self.backoff_coefficient,
            non_retryable_error_types=[INVALID_REQUEST_ERROR],
        )


class MissionPhase(_Model):
    """One step of a crisis: an agent performing an action against a target."""

    phase_id: SafeId
    agent_id: SafeId
    action: ActionName
    target: SafeId
    priority: Annotated[int, Field(ge=0, strict=True)] = Field(
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
    requires_approval: bool = Field(default=False, description="Wait for an approve or reject signal before running.")
    approval_timeout: Seconds | None = Field(
        default=None, description="Seconds to wait for approval before the phase fails (forever if unset)."
    )


class FailurePolicy(StrEnum):
    CONTINUE = "continue"
    ABORT = "abort"


class CrisisRequest(_Model):
    """The single input of ``CrisisResponseWorkflow``."""

    crisis_id: SafeId
    target_member: SafeId
    missions: list[MissionPhase] = Field(min_length=1, max_length=MAX_PHASES)
    initiated_by: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)] = "unknown"
    retry: RetrySettings = Field(default_factory=RetrySettings)
    phase_timeout_seconds: Seconds = 300.0
    heartbeat_timeout_seconds: Seconds = Field(
        default=10.0, description="A phase whose worker is silent this long is retried on another worker."
    )
    failure_policy: FailurePolicy = Field(
        default=FailurePolicy.CONTINUE, description="continue: run the remaining phases; abort: stop and compensate."
    )

    @field_validator("missions")
    @classmethod
    def _unique_phase_ids(cls, missions: list[MissionPhase]) -> list[MissionPhase]:
        seen: set[str] = set()
        for phase in missions:
            if phase.phase_id in seen:
                raise ValueError(f"phase_id {phase.phase_id!r} appears more than once")
            seen.add(phase.phase_id)
        return missions

    def ordered_missions(self) -> list[MissionPhase]:
        """Phases in execution order: by priority, ties in the order given."""
        return sorted(self.missions, key=lambda phase: phase.priority)


class PhaseStatus(StrEnum):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class PhaseOutcome(_Model):
    """How one phase ended (or stands, while the crisis runs)."""

    phase_id: str
    agent_id: str
    action: str
    status: PhaseStatus = PhaseStatus.PENDING
    attempts: int | None = Field(default=None, description="Attempts made, where known.")
    error: str | None = None
    timestamp: datetime | None = None
    output: JsonValue = Field(default=None, description="What the agent reported (small JSON).")
    requires_approval: bool = False
    approved_by: str | None = None


class CrisisSummary(_Model):
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


class CrisisProgress(_Model):
    """Answer of the workflow's ``progress`` query."""

    crisis_id: str
    target: str
    stage: str
    current_phase: str | None
    phases: list[PhaseOutcome]
    summary: CrisisSummary
    compensations: list[PhaseOutcome] = Field(default_factory=list)


class ApprovalDecision(_Model):
    """Signal input: approve or reject a phase that requires approval."""

    phase_id: SafeId
    approved: bool
    decided_by: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
    reason: Annotated[str, Field(max_length=1000)] | None = None


class CrisisResult(_Model):
    """What ``CrisisResponseWorkflow`` returns."""

    crisis_id: str
    target: str
    success: bool
    status: str
    started_at: datetime
    completed_at: datetime
    phases: list[PhaseOutcome]
    summary: CrisisSummary
    failed_phases: list[str]
    record_path: str | None = Field(default=None, description="The crisis record on the worker that finalized it.")
    compensations: list[PhaseOutcome] = Field(default_factory=list)


# Activity inputs and outputs: one object each.


class PhaseAssignment(_Model):
    """Input of ``perform_agent_mission``: a phase, or the compensation of one."""

    crisis_id: str
    workflow_id: str
    phase: MissionPhase
    compensation: bool = False
    record_as: PhaseOutcome | None = Field(
        default=None,
        description="When given, the activity writes this entry, completed, to the record once the agent succeeds.",
    )


class AgentReport(_Model):
    """Output of ``perform_agent_mission``."""

    phase_id: str
    agent_id: str
    attempt: int
    output: JsonValue = None
    recorded: bool | None = Field(
        default=False,
        description="Whether the completed phase is in the crisis record already; None when the workflow did not "
        "ask for it (the last phase, which the final record write includes).",
    )


class CrisisStart(_Model):
    """Input of ``initialize_crisis_response``."""

    crisis_id: str
    workflow_id: str
    run_id: str
    target: str
    initiated_by: str
    started_at: datetime
    phases: list[PhaseOutcome]


class PhaseLogEntry(_Model):
    """Input of ``log_mission_phase``."""

    crisis_id: str
    target: str
    outcome: PhaseOutcome
    compensation: bool = False
    crisis: CrisisStart | None = Field(
        default=None, description="The whole crisis as the workflow sees it: rebuilds a record that is missing."
    )


class CrisisCompletion(_Model):
    """Input of ``finalize_crisis_response``."""

    crisis_id: str
    status: str
    completed_at: datetime
    phases: list[PhaseOutcome]
    compensations: list[PhaseOutcome] = Field(default_factory=list)
    crisis: CrisisStart | None = Field(
        default=None, description="The crisis as it started (header fields used): rebuilds a record that is missing."
    )
