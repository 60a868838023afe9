"""What every record store does, once: create, upsert a phase, finalize, with the same guards.

A store supplies a transaction per crisis (exclusive: no other writer of that crisis, in this
process or another, runs meanwhile) that can read the record's header or the whole record, write
the whole record, or put one entry. The write methods here decide, through
``app.temporal.records.document``, which of those a write needs, so both stores refuse the same
writers and keep the same document:

- a phase write that arrives after the record is finalized (an abandoned activity attempt on a
  worker that was paused, say) is dropped;
- so is an agent's completion that arrives after its phase ended without it: the entry says the
  phase ended after that attempt started, by a later attempt's completion or as the workflow
  decided (a worker cut off from Temporal past the heartbeat timeout, whose phase another worker
  ran meanwhile, reports late);
- a write from another namespace or another workflow is refused with an error;
- a write from another run of the same workflow is a reset: the newer run takes the record over
  (the run it replaced is listed in ``superseded_run_ids``) and later writes from the replaced run
  are dropped;
- but the record of a crisis is never replaced by a new crisis that reuses its crisis id once
  Temporal no longer has the earlier workflow (same workflow id, another first run): creating the
  new one's record raises ``CrisisIdTakenError`` and leaves the earlier record as it is;
- a write given the whole crisis (the workflow's view of it) writes the record afresh when it is
  missing, say moved aside because it was corrupt: records are derived from the workflow;
- an output or params kept in the record only (``output_ref``, ``params_ref``) survive every later
  write of its phase;
- the last phase's activity finalizes the record (``finalize_with_last``) only while it is not
  final, is its own run's, and is not held for the workflow's final write (``hold_final_write``).

A phase write touches that phase's entry only (unless it rebuilds or takes over the record), so
its cost does not grow with the number of phases.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from app.temporal.errors import CrisisIdTakenError, CrisisRecordError
from app.temporal.models import CrisisCompletion, CrisisSnapshot, PhaseOutcome
from app.temporal.records.document import (
    COMPENSATIONS,
    FINAL_WRITE_HELD,
    PHASES,
    CrisisRun,
    PhaseEnd,
    Relation,
    another_crisis,
    finish,
    finish_with_last,
    merged_entry,
    new_record,
    overtaken,
    phase_end,
    relation,
    superseded,
    take_over,
    upsert_outcome,
)

logger = logging.getLogger("liara.records")


class RecordTransaction(Protocol):
    """One crisis's record, held exclusively until the transaction ends."""

    async def header(self) -> dict[str, Any] | None:
        """The record without its entry lists (at least its run fields), or None if there is none."""

    async def record(self) -> dict[str, Any] | None:
        """The whole record, or None if there is none."""

    async def entry(self, kind: str, phase_id: str) -> dict[str, Any] | None:
        """The entry of ``phase_id`` in the ``kind`` list, if there is one."""

    async def end(self, kind: str, phase_id: str) -> PhaseEnd | None:
        """How the entry of ``phase_id`` says its phase ended (None while it has not): what
        ``entry`` would say, without the cost of reading the entry whole.
        """

    async def write(self, record: dict[str, Any]) -> None:
        """Replace the whole record."""

    async def put(self, kind: str, entry: dict[str, Any]) -> None:
        """Replace the entry of ``entry``'s phase id in the ``kind`` list (or append it)."""


def kept_key(*parts: str | int) -> str:
    """The key of a kept text: its parts (phase id, run id, step, attempt) joined by dots, each
    made of letters, digits, ``_`` and ``-`` only, so it is a file name as well as a row key.
    """
    return ".".join(re.sub(r"[^A-Za-z0-9_-]", "_", str(part))[:80] for part in parts)


@dataclass(frozen=True)
class StoreHealth:
    """What ``liara doctor`` says about the store: one sentence, and how to fix it if not ok."""

    ok: bool
    detail: str
    fix: str | None = None


class RecordStore(ABC):
    """A crisis record store; use it as an async context manager (a database store opens its pool)."""

    @abstractmethod
    def transaction(self, crisis_id: str) -> AbstractAsyncContextManager[RecordTransaction]:
        """The crisis's record, held exclusively (raises CrisisRecordError for an unsafe id)."""

    @abstractmethod
    def location(self, crisis_id: str) -> str:
        """Where the record is, in terms that make sense off this host (``CrisisResult.record_path``)."""

    def where(self, crisis_id: str) -> str:
        """The record as error messages name it."""
        return self.location(crisis_id)

    @abstractmethod
    def describe(self) -> str:
        """The store, for the worker's start-up log (never with credentials)."""

    @abstractmethod
    async def read(self, crisis_id: str) -> dict[str, Any] | None:
        """The record as it stands, or None if there is none."""

    @abstractmethod
    async def keep(self, crisis_id: str, key: str, text: str) -> str:
        """Keep ``text`` (a message of an agent's conversation too long to carry) beside the crisis's
        record under ``key``; where it is kept, in terms that make sense off this host. A key names
        one attempt of one step (``kept_key``), so keeping it again writes the same text.
        """

    @abstractmethod
    async def kept(self, crisis_id: str, key: str) -> str | None:
        """The text kept under ``key``, or None if there is none."""

    @abstractmethod
    async def list_records(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` records' headlines, the most recently created or finalized first."""

    @abstractmethod
    async def check(self) -> StoreHealth:
        """Whether a worker here could write records (for ``liara doctor``)."""

    async def prepare(self) -> str | None:
        """Create what the store needs before workers use it (``liara setup``); one sentence on what is ready."""
        return None

    async def open(self) -> None:
        """Acquire what the store needs (a connection pool); a store that is down does not fail here."""
        return None

    async def close(self) -> None:
        """Release what ``open`` acquired."""
        return None

    async def __aenter__(self) -> RecordStore:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def create(self, crisis: CrisisSnapshot, *, run: CrisisRun | None = None) -> dict[str, Any]:
        """Create the record of a crisis run; a repeated call for the same run keeps what is there,
        and a reset run of the crisis starts it afresh. A new crisis that reuses the crisis id of
        one whose record is here raises ``CrisisIdTakenError``: that record stays as it is.
        """
        async with self.transaction(crisis.crisis_id) as held:
            existing = await held.record()
            if existing is not None:
                writer = run or CrisisRun(
                    namespace=existing.get("namespace"), workflow_id=crisis.workflow_id, run_id=crisis.run_id
                )
                if relation(existing, writer, self.where(crisis.crisis_id)) != Relation.TAKEOVER:
                    return existing
                if another_crisis(existing, crisis):
                    raise CrisisIdTakenError(
                        f"crisis record {self.where(crisis.crisis_id)} is that of an earlier crisis with this id "
                        f"(started {existing.get('started_at')}, workflow run {existing.get('run_id')}), which a "
                        "new crisis never replaces: start it under another crisis id"
                    )
            record = new_record(crisis, run)
            if existing is not None:
                record["superseded_run_ids"] = superseded(existing)
            await held.write(record)
            return record

    async def upsert_phase(
        self,
        crisis_id: str,
        outcome: PhaseOutcome,
        *,
        compensation: bool = False,
        crisis: CrisisSnapshot | None = None,
        run: CrisisRun | None = None,
        attempt_started: datetime | None = None,
    ) -> dict[str, Any] | None:
        """Replace the entry of ``outcome.phase_id`` (or append it).

        Compensations go to their own list, ``compensations``, keyed the same way. ``crisis``
        rebuilds a missing record first. ``attempt_started``: when the agent's attempt that reports
        this outcome started (Temporal's clock), for the writes of an agent's activity. Returns the
        entry written, or None when the write was dropped as stale (the record is finalized, or
        taken over by a newer run, or the phase ended without this attempt).
        """
        kind = COMPENSATIONS if compensation else PHASES
        async with self.transaction(crisis_id) as held:
            header = await held.header()
            if header is None:
                record = new_record(self._required(crisis, crisis_id), run)
                entry = upsert_outcome(record, kind, outcome)
                await held.write(record)
                return entry
            verdict = relation(header, run, self.where(crisis_id))
            if verdict == Relation.TAKEOVER:
                assert run is not None and (record := await held.record()) is not None
                take_over(record, run)
                entry = upsert_outcome(record, kind, outcome)
                await held.write(record)
                return entry
            if verdict == Relation.STALE or header.get("completed_at") is not None:
                logger.info("Dropped a late write of phase %s: crisis record %s is final", outcome.phase_id, crisis_id)
                return None
            if attempt_started is not None and overtaken(
                await held.end(kind, outcome.phase_id), outcome, attempt_started
            ):
                logger.info(
                    "Dropped a late completion of phase %s by attempt %s: crisis record %s says the phase "
                    "ended without it, after that attempt started",
                    outcome.phase_id,
                    outcome.attempts,
                    crisis_id,
                )
                return None
            kept = outcome.output_ref is not None or outcome.params_ref is not None
            existing = await held.entry(kind, outcome.phase_id) if kept else None
            entry = merged_entry(outcome, existing)
            await held.put(kind, entry)
            return entry

    async def finalize(self, completion: CrisisCompletion, *, run: CrisisRun | None = None) -> dict[str, Any] | None:
        """Write the final state: every phase as the workflow saw it, the status and the end time.

        Returns the record written, or None when the write was dropped as stale.
        """
        crisis_id = completion.crisis_id
        async with self.transaction(crisis_id) as held:
            record = await self._whole(held, crisis_id, completion.crisis, run)
            if record is None:
                logger.info("Dropped a final write of crisis %s: a newer run owns its record", crisis_id)
                return None
            finish(record, completion)
            await held.write(record)
            return record

    async def finalize_with_last(
        self, crisis_id: str, outcome: PhaseOutcome, *, run: CrisisRun, attempt_started: datetime
    ) -> dict[str, Any] | None:
        """The write of the last phase's activity, when every other phase has completed: its
        completed entry and the record's final state (``completed`` at the phase's end) at once.

        Returns the record written, or None when nothing was written and the workflow is to
        write both itself: the record is missing, final already, held for the workflow's final
        write (``hold_final_write``), another run's, or its phase ended without this attempt.
        """
        async with self.transaction(crisis_id) as held:
            record = await held.record()
            if (
                record is None
                or record.get("completed_at") is not None
                or record.get(FINAL_WRITE_HELD) == outcome.phase_id
                or relation(record, run, self.where(crisis_id)) != Relation.OWN
            ):
                return None
            entry = next((e for e in record[PHASES] if e.get("phase_id") == outcome.phase_id), None)
            if overtaken(phase_end(entry), outcome, attempt_started):
                return None
            finish_with_last(record, outcome)
            await held.write(record)
            return record

    async def hold_final_write(
        self, crisis_id: str, phase_id: str, *, crisis: CrisisSnapshot | None = None, run: CrisisRun | None = None
    ) -> bool:
        """Keep the final write for the workflow: the activity of ``phase_id`` will not finalize
        the record (``finalize_with_last``). False if it is too late, the record being final
        already. ``crisis`` creates a missing record first.
        """
        async with self.transaction(crisis_id) as held:
            record = await self._whole(held, crisis_id, crisis, run)
            if record is None:
                return True  # a newer run owns the record: this run finalizes nothing
            if record.get("completed_at") is not None:
                return False
            if record.get(FINAL_WRITE_HELD) == phase_id:
                return True
            record[FINAL_WRITE_HELD] = phase_id
            await held.write(record)
            return True

    async def _whole(
        self, held: RecordTransaction, crisis_id: str, crisis: CrisisSnapshot | None, run: CrisisRun | None
    ) -> dict[str, Any] | None:
        """The record a whole write of ``run`` starts from: as it is, taken over if ``run`` is a newer
        run of its workflow, or built from ``crisis`` if missing; None if a newer run owns it.
        """
        record = await held.record()
        if record is None:
            return new_record(self._required(crisis, crisis_id), run)
        verdict = relation(record, run, self.where(crisis_id))
        if verdict == Relation.STALE:
            return None
        if verdict == Relation.TAKEOVER:
            assert run is not None
            take_over(record, run)
        return record

    def _required(self, crisis: CrisisSnapshot | None, crisis_id: str) -> CrisisSnapshot:
        """The crisis that rebuilds a missing record; without one, the record is simply missing."""
        if crisis is None:
            raise CrisisRecordError(f"crisis record {self.where(crisis_id)} does not exist")
        return crisis
