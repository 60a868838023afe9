"""The crisis record store: one JSON file per crisis at ``<directory>/<crisis_id>.json``.

Every write goes to a temporary file in the same directory, is fsynced, then renamed over the
record, so a reader (or a crash) never sees half a record. Phase entries are upserted by phase
id, so a retried activity rewrites its entry instead of adding a second one. A write that is
given the whole crisis (the workflow's view of it) writes the record afresh when it is missing,
say moved aside because it was corrupt: records are derived from the workflow. Records hold mission
data, so they are the owner's only: a directory the store creates is 0700, every record 0600.

A record belongs to one workflow run (its ``namespace``, ``workflow_id`` and ``run_id``), and no
stale writer changes it:

- a phase write that arrives after the record is finalized (an abandoned activity attempt on a
  worker that was paused, say) is dropped;
- a write from another namespace or another workflow is refused with an error (two namespaces
  or workflows sharing one record directory and crisis id is a mistake to fix, not to hide);
- a write from another run of the same workflow is a reset: the newer run takes the record over
  (the run it replaced is listed in ``superseded_run_ids``) and later writes from the replaced run
  are dropped.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.temporal.errors import CrisisRecordError
from app.temporal.models import (
    MAX_ID_LENGTH,
    SAFE_ID_PATTERN,
    CrisisCompletion,
    CrisisSnapshot,
    CrisisSummary,
    PhaseOutcome,
)

logger = logging.getLogger("liara.records")

#: Environment variable naming the record directory; relative paths are taken from the
#: worker's working directory.
RECORD_DIR_ENV = "LIARA_CRISIS_DIR"
DEFAULT_RECORD_DIR = Path("data") / "crises"
#: Modes of a record directory this store creates and of every record file it writes.
RECORD_DIR_MODE = 0o700
RECORD_FILE_MODE = 0o600

_SAFE_ID = re.compile(SAFE_ID_PATTERN)


def format_timestamp(moment: datetime) -> str:
    """``2026-01-16T10:30:00.000Z``: UTC with milliseconds, as in the records."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _phase_entry(outcome: PhaseOutcome) -> dict[str, Any]:
    entry = {
        "phase_id": outcome.phase_id,
        "status": outcome.status.value,
        "timestamp": format_timestamp(outcome.timestamp) if outcome.timestamp else None,
        "agent_id": outcome.agent_id,
        "action": outcome.action,
        "attempts": outcome.attempts,
        "error": outcome.error,
        "output": outcome.output,
        "approved_by": outcome.approved_by,
    }
    if outcome.depends_on is not None:
        entry["depends_on"] = outcome.depends_on
    if outcome.params is not None:
        entry["params"] = outcome.params  # as resolved for the agent
    if outcome.requires_approval:
        entry["approvals_required"] = outcome.approvals_required
        entry["decisions"] = [
            {
                "decided_by": decision.decided_by,
                "approved": decision.approved,
                "reason": decision.reason,
                "decided_at": format_timestamp(decision.decided_at),
            }
            for decision in outcome.decisions
        ]
    return entry


def _summary(phases: list[dict[str, Any]]) -> dict[str, int]:
    return CrisisSummary.of(p["status"] for p in phases).model_dump()


@dataclass(frozen=True)
class CrisisRun:
    """The workflow run a record write comes from (an activity knows it from its own info)."""

    namespace: str | None
    workflow_id: str
    run_id: str


def _merged_entry(outcome: PhaseOutcome, existing: dict[str, Any] | None) -> dict[str, Any]:
    """The entry of ``outcome``; an output kept in the record only (``output_ref``) stays as it is."""
    entry = _phase_entry(outcome)
    if outcome.output_ref is not None and existing is not None:
        entry["output"] = existing.get("output")
    return entry


def _merged_entries(outcomes: list[PhaseOutcome], existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {entry.get("phase_id"): entry for entry in existing}
    return [_merged_entry(outcome, by_id.get(outcome.phase_id)) for outcome in outcomes]


def _new_record(crisis: CrisisSnapshot, run: CrisisRun | None) -> dict[str, Any]:
    """A running crisis's record, its phases as given."""
    entries = [_phase_entry(p) for p in crisis.phases]
    return {
        "crisis_id": crisis.crisis_id,
        "target": crisis.target,
        "status": "running",
        "started_at": format_timestamp(crisis.started_at),
        "completed_at": None,
        "phases": entries,
        "summary": _summary(entries),
        "compensations": [],
        "initiated_by": crisis.initiated_by,
        **{key: value for key, value in (("playbook", crisis.playbook), ("schedule", crisis.schedule)) if value},
        "namespace": run.namespace if run else None,
        "workflow_id": crisis.workflow_id,
        "run_id": run.run_id if run else crisis.run_id,
    }


#: How a write relates to the record it would change.
_OWN, _STALE, _TAKEOVER = "own", "stale", "takeover"


@dataclass(frozen=True)
class CrisisRecordStore:
    directory: Path

    @classmethod
    def from_environment(cls) -> CrisisRecordStore:
        return cls(Path(os.environ.get(RECORD_DIR_ENV) or DEFAULT_RECORD_DIR))

    def path_for(self, crisis_id: str) -> Path:
        if len(crisis_id) > MAX_ID_LENGTH or not _SAFE_ID.fullmatch(crisis_id):
            raise CrisisRecordError(f"crisis id {crisis_id!r} is not a safe file name")
        return self.directory / f"{crisis_id}.json"

    def read(self, crisis_id: str) -> dict[str, Any] | None:
        path = self.path_for(crisis_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as err:
            raise CrisisRecordError(f"cannot read crisis record {path}: {err.strerror}") from err
        except UnicodeDecodeError as err:
            raise CrisisRecordError(f"crisis record {path} is not UTF-8 text; move it aside") from err
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise CrisisRecordError(f"crisis record {path} is not valid JSON ({err}); move it aside") from err
        if not isinstance(record, dict) or not isinstance(record.get("phases"), list):
            raise CrisisRecordError(f"crisis record {path} is not a crisis record; move it aside")
        return record

    def create(self, crisis: CrisisSnapshot, *, run: CrisisRun | None = None) -> dict[str, Any]:
        """Create the record of a crisis run; a repeated call for the same run keeps what is there."""
        existing = self.read(crisis.crisis_id)
        if existing is not None:
            writer = run or CrisisRun(
                namespace=existing.get("namespace"), workflow_id=crisis.workflow_id, run_id=crisis.run_id
            )
            relation = self._relation(existing, writer, crisis.crisis_id)
            if relation != _TAKEOVER:
                return existing
        record = _new_record(crisis, run)
        if existing is not None:
            record["superseded_run_ids"] = self._superseded(existing)
        self._write(crisis.crisis_id, record)
        return record

    def upsert_phase(
        self,
        crisis_id: str,
        outcome: PhaseOutcome,
        *,
        compensation: bool = False,
        crisis: CrisisSnapshot | None = None,
        run: CrisisRun | None = None,
    ) -> dict[str, Any] | None:
        """Replace the entry of ``outcome.phase_id`` (or append it) and refresh the summary.

        Compensations go to their own list, ``compensations``, keyed the same way. ``crisis``
        rebuilds a missing record first. Returns the record written, or None when the write was
        dropped as stale (the record is finalized, or taken over by a newer run).
        """
        record = self._current(crisis_id, crisis, run)
        if record is None or record.get("completed_at") is not None:
            logger.info("Dropped a late write of phase %s: crisis record %s is final", outcome.phase_id, crisis_id)
            return None
        phases = record.setdefault("compensations", []) if compensation else record["phases"]
        for index, existing in enumerate(phases):
            if existing.get("phase_id") == outcome.phase_id:
                phases[index] = _merged_entry(outcome, existing)
                break
        else:
            phases.append(_phase_entry(outcome))
        record["summary"] = _summary(record["phases"])
        self._write(crisis_id, record)
        return record

    def finalize(self, completion: CrisisCompletion, *, run: CrisisRun | None = None) -> dict[str, Any] | None:
        """Write the final state: every phase as the workflow saw it, the status and the end time.

        Returns the record written, or None when the write was dropped as stale.
        """
        record = self._current(completion.crisis_id, completion.crisis, run)
        if record is None:
            logger.info("Dropped a final write of crisis %s: a newer run owns its record", completion.crisis_id)
            return None
        record["phases"] = _merged_entries(completion.phases, record["phases"])
        record["compensations"] = _merged_entries(completion.compensations, record.get("compensations", []))
        record["summary"] = _summary(record["phases"])
        record["status"] = completion.status
        record["completed_at"] = format_timestamp(completion.completed_at)
        record["cancel_requests"] = [
            {
                "requested_at": format_timestamp(note.requested_at),
                "stage": note.stage,
                "obeyed": note.obeyed,
                "reason": note.reason,
            }
            for note in completion.cancel_requests
        ]
        self._write(completion.crisis_id, record)
        return record

    def _current(self, crisis_id: str, crisis: CrisisSnapshot | None, run: CrisisRun | None) -> dict[str, Any] | None:
        """The record to update: as read (taken over by ``run`` if it is a newer run), else
        rebuilt from ``crisis`` if given; None if ``run`` is a stale writer.
        """
        record = self.read(crisis_id)
        if record is None:
            if crisis is None:
                raise CrisisRecordError(f"crisis record {self.path_for(crisis_id)} does not exist")
            return _new_record(crisis, run)
        relation = self._relation(record, run, crisis_id)
        if relation == _STALE:
            return None
        if relation == _TAKEOVER:
            assert run is not None
            record["superseded_run_ids"] = self._superseded(record)
            record.update(run_id=run.run_id, status="running", completed_at=None)
        return record

    def _relation(self, record: dict[str, Any], run: CrisisRun | None, crisis_id: str) -> str:
        """Whether ``run`` owns ``record``, is a stale writer, or a newer run taking it over."""
        if run is None or record.get("run_id") in (None, run.run_id):
            return _OWN
        path = self.path_for(crisis_id)
        for field, mine in (("namespace", run.namespace), ("workflow_id", run.workflow_id)):
            theirs = record.get(field)
            if None not in (theirs, mine) and theirs != mine:
                raise CrisisRecordError(
                    f"crisis record {path} belongs to {field} {theirs!r}, not {mine!r}: "
                    "give each namespace its own record directory and each crisis its own id"
                )
        if run.run_id in record.get("superseded_run_ids", []):
            logger.info("Dropped a write of crisis %s from run %s, which a reset replaced", crisis_id, run.run_id)
            return _STALE
        return _TAKEOVER

    @staticmethod
    def _superseded(record: dict[str, Any]) -> list[str]:
        return [*record.get("superseded_run_ids", []), record["run_id"]]

    def ensure_directory(self) -> None:
        """Create the record directory owner-only (an existing one keeps its mode)."""
        if self.directory.is_dir():
            return
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.directory.mkdir(mode=RECORD_DIR_MODE)
        except FileExistsError:
            return  # another worker created it first
        os.chmod(self.directory, RECORD_DIR_MODE)  # exactly 0700, whatever the umask

    def _write(self, crisis_id: str, record: dict[str, Any]) -> None:
        path = self.path_for(crisis_id)
        try:
            self.ensure_directory()
            fd, tmp_name = tempfile.mkstemp(prefix=f".{crisis_id}.", suffix=".tmp", dir=self.directory)
        except OSError as err:
            raise CrisisRecordError(f"cannot write crisis records to {self.directory}: {err.strerror}") from err
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                # mkstemp made it 0600 already; said explicitly, as os.replace keeps this file's mode.
                os.fchmod(handle.fileno(), RECORD_FILE_MODE)
                json.dump(record, handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as err:
            Path(tmp_name).unlink(missing_ok=True)
            raise CrisisRecordError(f"cannot write crisis record {path}: {err.strerror or err}") from err
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
