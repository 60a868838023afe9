"""``CrisisAgency``: the crisis operations the command line runs, on Temporal or through the service.

``LiaraTemporalAgency`` carries them out on Temporal and ``RemoteAgency`` over a ``liara serve``;
both satisfy this protocol, so each crisis command is written once, against it
(``Connection.run_on_crises``). Each method has the same parameters in both, even where one of
them has no use for a value (the service records its caller's token name, not ``initiated_by``).
What the service offers no way to do (read records, register search attributes, count pollers)
stays on ``LiaraTemporalAgency`` alone.

Results are the same JSON-ready dicts from both: a start's ``workflow_id``, ``crisis_id`` and
``created``; a status as ``get_crisis_status`` reports it; a result as ``CrisisResult``; a
decision as ``RecordedDecision`` with the quorum's ``approvals`` and ``approvals_required``; the
progress as ``CrisisProgress``; listed crises as rows (``workflow_id``, ``target``,
``crisis_status``, ``initiated_by``, ``status``, ``started_at``), a page as its ``crises`` and
``next_cursor``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from app.temporal.models import MissionPhase
from app.temporal.visibility import CrisisFilter

#: How long a change to a running crisis (a decision, added phases) waits for a worker to take it.
WORKER_WAIT_SECONDS = 10.0


class CrisisAgency(Protocol):
    """Start, follow, steer and list crises (see ``LiaraTemporalAgency`` for each method)."""

    async def start_crisis(
        self,
        target_member: str,
        missions: Iterable[MissionPhase | Mapping[str, Any]],
        initiated_by: str = "unknown",
        *,
        crisis_id: str | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]: ...

    async def start_playbook(
        self,
        playbook: str | Path,
        inputs: Mapping[str, Any] | None = None,
        initiated_by: str = "unknown",
        **start: Any,
    ) -> dict[str, Any]: ...

    async def get_crisis_status(self, workflow_id: str) -> dict[str, Any]: ...

    async def wait_for_crisis_completion(self, workflow_id: str, timeout: float | None = None) -> dict[str, Any]: ...

    def crisis_events(self, workflow_id: str, *, after: int | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """The crisis's events from its stream (an async generator: ``async for``), ending after ``finished``."""
        ...

    async def cancel_crisis(self, workflow_id: str, *, cancelled_by: str | None = None) -> None: ...

    async def approve_phase(
        self,
        workflow_id: str,
        phase_id: str,
        approved_by: str,
        *,
        arguments: Mapping[str, Any] | None = None,
        extend_tokens: int | None = None,
        extend_cost: float | None = None,
        timeout: float = WORKER_WAIT_SECONDS,
    ) -> dict[str, Any]: ...

    async def reject_phase(
        self,
        workflow_id: str,
        phase_id: str,
        rejected_by: str,
        reason: str | None = None,
        *,
        timeout: float = WORKER_WAIT_SECONDS,
    ) -> dict[str, Any]: ...

    async def add_phases(
        self,
        workflow_id: str,
        missions: Iterable[MissionPhase | Mapping[str, Any]],
        *,
        timeout: float = WORKER_WAIT_SECONDS,
    ) -> dict[str, Any]: ...

    async def list_crises(
        self, crisis_filter: CrisisFilter | None = None, **fields: str | int | None
    ) -> list[dict[str, Any]]: ...

    async def list_crises_page(
        self, crisis_filter: CrisisFilter | None = None, **fields: str | int | None
    ) -> dict[str, Any]: ...
