"""``CrisisState``: everything a crisis carries from one run into the run it continues as.

It is the only thing carried besides the request: a field added here is carried (and restored)
with nothing else to change. The parts of the workflow read and change it in place.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from temporalio.contrib.workflow_streams import WorkflowStreamState

from app.temporal.models import AgentProgress, CancelNote, MissionPhase, PhaseOutcome, RecordedDecision, WireModel


class CrisisState(WireModel):
    """The crisis's state (beside its request, whose phases and ``added`` make its plan)."""

    started_at: datetime
    added: list[MissionPhase] = Field(default_factory=list, description="Phases added while it ran, in order.")
    phases: list[PhaseOutcome] = Field(description="Where each phase of the plan stands, in plan order.")
    compensations: list[PhaseOutcome] = Field(default_factory=list)
    decisions: dict[str, list[RecordedDecision]] = Field(default_factory=dict)
    cancel_requests: list[CancelNote] = Field(default_factory=list)
    completed_order: list[str] = Field(default_factory=list)
    carried_bytes: int = Field(default=0, description="Outputs and resolved params carried so far (JSON bytes).")
    published_events: int = 0
    failures_told: int = Field(default=0, description="Failed phases told to the crisis's webhooks so far.")
    events: WorkflowStreamState | None = Field(
        default=None, description="The event stream, as handed over at continue-as-new."
    )
    runs: int = Field(default=0, description="Runs the crisis has had before this one.")
    extra_tokens: int = Field(default=0, description="Tokens its extend-budget gates added to its token_budget.")
    extra_cost: float = Field(default=0.0, description="Cost its extend-budget gates added to its cost_budget.")
    agent_loops: dict[str, AgentProgress] = Field(
        default_factory=dict, description="Agent phases whose loops stopped between two model calls for a new run."
    )
