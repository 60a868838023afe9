"""What every executor shares: the mission it performs, the failure rules and the settings base.

An executor takes one :class:`Mission` and returns the phase's output (small JSON) or raises an
``ApplicationError`` of type ``AgentFailure``. Whether that failure is retryable decides between
Temporal's retry policy and failing the phase at once, so every executor sorts its failures into
"might work next attempt" (network trouble, 5xx, non-zero exit, timeouts) and "never will"
(4xx, missing executable, bad parameters).

Executors run inside the activity's asyncio task: cancellation of the activity (workflow cancel,
start-to-close or heartbeat timeout, worker shutdown) arrives as ``asyncio.CancelledError``, and
an executor must stop its agent before letting it propagate.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError
from temporalio.exceptions import ApplicationError

from app.temporal.models import MissionPhase
from app.temporal.validation import meaning

#: ``ApplicationError.type`` of every failure an executor reports.
AGENT_FAILURE_ERROR = "AgentFailure"


@dataclass(frozen=True)
class Mission:
    """One attempt at one phase, as an executor sees it."""

    crisis_id: str
    workflow_id: str
    phase: MissionPhase
    attempt: int
    #: True when this runs the phase's ``compensate_action`` (the workflow keeps the phase id).
    compensation: bool = False
    #: Outputs of the phases this one depends on or refers to, by phase id.
    context: Mapping[str, JsonValue] = field(default_factory=dict)
    #: One step of a language-model agent's phase (a tool call's id), whose own mission this is.
    step: str | None = None

    @property
    def idempotency_key(self) -> str:
        """The same on every attempt of this phase, so an agent can drop a duplicate delivery.

        A compensation reuses the phase id with another action; it gets its own key so that an
        agent deduplicating by key does not mistake the undo for a retry of the original. Each
        tool call of a language-model agent has its own key too (its step).
        """
        key = f"{self.workflow_id}/{self.phase.phase_id}"
        if self.step is not None:
            key = f"{key}/{self.step}"
        return f"{key}/compensation" if self.compensation else key

    def payload(self) -> dict[str, JsonValue]:
        """The JSON document sent to an agent (HTTP body, command stdin, MCP request ``_meta``)."""
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
            "context": dict(self.context),
        }


@runtime_checkable
class AgentExecutor(Protocol):
    """Performs one attempt of a mission phase and returns its output (small JSON, or None)."""

    async def run(self, mission: Mission) -> JsonValue: ...


#: An executor's ``timeout_seconds`` setting: more than 0, at most a day.
TimeoutSeconds = Annotated[float, Field(gt=0, le=86400)]


class ExecutorSettings(BaseModel):
    """What ``[executors.NAME]`` takes besides ``type`` for one built-in type, and the executor it builds.

    Strict: TOML already has types, so "30" for a number is a mistake worth reporting.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    @abstractmethod
    def build(self, config_dir: Path) -> AgentExecutor:
        """The executor; relative paths in the settings are relative to ``config_dir``, the file's folder."""


def agent_failure(message: str, *, retryable: bool) -> ApplicationError:
    """The error an executor raises: retryable ones go to Temporal's retry policy, others fail the phase."""
    return ApplicationError(message, type=AGENT_FAILURE_ERROR, non_retryable=not retryable)


Params = TypeVar("Params", bound=BaseModel)


def phase_params(model: type[Params], mission: Mission, kind: str) -> Params:
    """The phase's ``params`` as ``model`` reads them; a bad one fails the phase at once (retrying cannot fix it)."""
    try:
        return model.model_validate(mission.phase.params)
    except ValidationError as err:
        problem = err.errors()[0]
        param = ".".join(str(part) for part in problem["loc"]) or "params"
        raise agent_failure(
            f"Phase {mission.phase.phase_id} has an invalid {kind} param {param!r}: {meaning(problem)}.",
            retryable=False,
        ) from None


def parse_json(raw: bytes | str) -> tuple[bool, JsonValue]:
    """``(True, value)`` for strict JSON (no NaN or Infinity, which JSON payloads cannot carry)."""

    def reject(constant: str) -> None:
        raise ValueError(constant)

    try:
        return True, json.loads(raw, parse_constant=reject)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return False, None
