"""Where many crises stand, for one answer (a listing's progress, the approvals inbox), within bounds.

Such an answer asks Temporal about every crisis it shows. So lookups run at most ``concurrency``
at a time across the service, each told within ``timeout`` seconds of being asked (a crisis not
told in time is shown without its summary, and the answer still comes); the summary of a crisis
that has ended never changes and is kept (the ``keep`` most recently used), and a running
crisis's is reused for ``fresh`` seconds, so many consoles polling at once cost about what one does.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any

from temporalio.service import RPCError

from app.temporal.bounded import keep_newest
from app.temporal.errors import LiaraError
from cognition.liara.agency import LiaraTemporalAgency

Report = dict[str, Any]


class CrisisLookups:
    def __init__(
        self, agency: LiaraTemporalAgency, *, concurrency: int, timeout: float, fresh: float, keep: int
    ) -> None:
        self._agency = agency
        self._slots = asyncio.Semaphore(concurrency)
        self._timeout = timeout
        self._fresh = fresh
        self._keep = keep
        #: Summaries by workflow id, with when they go stale (None: never, the crisis has ended).
        self._summaries: OrderedDict[str, tuple[float | None, dict[str, Any] | None]] = OrderedDict()

    async def report(self, workflow_id: str) -> Report | None:
        """``get_crisis_status``, or None when it fails or is not told within the timeout, waiting
        for a slot included: an answer looking up many crises at once takes at most about that long.
        """
        try:
            return await asyncio.wait_for(self._report(workflow_id), self._timeout)
        except (LiaraError, RPCError, TimeoutError):  # one crisis not told never fails the answer
            return None

    async def _report(self, workflow_id: str) -> Report:
        async with self._slots:
            return await self._agency.get_crisis_status(workflow_id)

    async def summary(self, workflow_id: str, status: str) -> dict[str, Any] | None:
        """Phases done of total (``CrisisSummary``) of a crisis listed with workflow ``status``."""
        kept = self._summaries.get(workflow_id)
        # A running crisis's summary holds while fresh, and only while it is still listed as running.
        if kept is not None and (kept[0] is None or (status == "running" and kept[0] > time.monotonic())):
            self._summaries.move_to_end(workflow_id)
            return kept[1]
        report = await self.report(workflow_id)
        if report is None:
            return None
        # Running, or ended without a result (told from its record): its own; completed: its result's.
        summary = report.get("summary") or (report.get("result") or {}).get("summary")
        stale_at = time.monotonic() + self._fresh if report["status"] == "running" else None
        keep_newest(self._summaries, workflow_id, (stale_at, summary), self._keep)
        return summary
