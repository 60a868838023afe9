"""Crisis records read back from the record store configured on this machine (the one its workers
would write: ``LIARA_RECORD_STORE``, ``record_store`` in ``liara.toml``, else ``LIARA_CRISIS_DIR``).

``liara record show|list`` and ``LiaraTemporalAgency.read_record`` / ``list_records`` use it; no
Temporal server is needed to read a record.
"""

from __future__ import annotations

from typing import Any

from app.temporal.errors import LiaraError
from app.temporal.records import configured_record_store


class CrisisRecordNotFoundError(LiaraError, LookupError):
    """The configured record store holds no record of this crisis."""


async def read_record(crisis_id: str) -> dict[str, Any]:
    """The record of ``crisis_id`` as it stands (phases written so far, or the final record)."""
    async with configured_record_store() as store:
        record = await store.read(crisis_id)
        if record is None:
            raise CrisisRecordNotFoundError(
                f"No crisis record {crisis_id!r} in {store.describe()}: check the crisis id "
                "(`liara record list` shows the newest) and that this machine uses the workers' record store."
            )
        return record


async def list_records(limit: int = 20) -> list[dict[str, Any]]:
    """Up to ``limit`` records' headlines (``crisis_id``, ``target``, ``status``, ``started_at``,
    ``completed_at``, ``initiated_by``, ``workflow_id``, ``summary``, ``location``), the most recently
    created or finalized first.
    """
    async with configured_record_store() as store:
        return await store.list_records(limit)
