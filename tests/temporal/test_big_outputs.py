"""Whatever its agents report, a crisis stays inside Temporal's payload limits and completes.

Phase outputs and resolved params share a per-crisis budget in the workflow (its state, result,
progress query and ``add_phases`` answer); those past it are kept in the crisis record only, and
the phase says where with an ``output_ref`` or ``params_ref``. Run on the dev server, which
enforces the 2 MiB payload limit.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from pydantic import JsonValue
from temporalio.client import WorkflowHandle

from app.temporal.activities import CrisisActivities
from app.temporal.agents import SIMULATE, ExecutorRegistry, Mission, SimulateExecutor
from app.temporal.models import OUTPUT_BUDGET_BYTES, CrisisProgress, CrisisRequest, CrisisResult, PhaseStatus
from app.temporal.records import FileRecordStore
from app.temporal.workflows import CrisisResponseWorkflow
from tests.helpers.workflows import crisis_workflow_worker, every_run, phase, request

pytestmark = pytest.mark.integration

#: Temporal refuses a payload larger than this.
PAYLOAD_LIMIT = 2 * 1024 * 1024
#: Temporal warns of a workflow run's history past these (and ends the run at 51,200 events or 50 MB).
HISTORY_EVENTS_WARNING = 10_240
HISTORY_BYTES_WARNING = 10 * 1024 * 1024
BLOB = 60 * 1024


class ReportsSixtyKilobytes:
    """An agent whose output is 60 KB: within the per-phase cap, too much for 40 phases inline."""

    async def run(self, mission: Mission) -> JsonValue:
        return {"phase": mission.phase.phase_id, "blob": "x" * (BLOB - 40)}


class FirstReportsSixtyKilobytes:
    """An agent whose first phase reports 60 KB, which every later phase's params refer to."""

    async def run(self, mission: Mission) -> JsonValue:
        return {"blob": "x" * (BLOB - 40)} if mission.phase.phase_id == "p-00" else {"ok": True}


def activities(store: FileRecordStore, executor=None) -> list:
    real = CrisisActivities(store, ExecutorRegistry({SIMULATE: executor or SimulateExecutor()}))
    return [
        real.initialize_crisis_response,
        real.perform_agent_mission,
        real.log_mission_phase,
        real.finalize_crisis_response,
        real.hold_final_write,
    ]


async def run_to_its_end(
    dev_server, task_queue: str, store: FileRecordStore, crisis: CrisisRequest, executor=None
) -> tuple[WorkflowHandle, CrisisResult, CrisisProgress]:
    """Run ``crisis`` on the dev server with ``executor`` as its agent: its handle, result and last progress."""
    async with crisis_workflow_worker(dev_server.client, task_queue, activities(store, executor)):
        handle = await dev_server.client.start_workflow(
            CrisisResponseWorkflow.run, crisis, id=f"crisis-workflow-{crisis.crisis_id}", task_queue=task_queue
        )
        result: CrisisResult = await handle.result()
        return handle, result, await handle.query(CrisisResponseWorkflow.progress)


async def test_forty_phases_of_sixty_kilobytes_complete_with_the_outputs_past_the_budget_in_the_record(
    dev_server, task_queue, tmp_path: Path
):
    store = FileRecordStore(tmp_path / "crises")
    crisis = request(f"crisis-big-{uuid.uuid4().hex[:8]}", *(phase(f"p-{i:02d}", "scan", i) for i in range(40)))
    _, result, progress = await run_to_its_end(dev_server, task_queue, store, crisis, ReportsSixtyKilobytes())

    assert result.success and result.summary.completed_phases == 40
    inline = [p for p in result.phases if p.output_ref is None]
    kept = [p for p in result.phases if p.output_ref is not None]
    assert inline and kept, "some outputs inline, those past the budget in the record"
    assert sum(len(json.dumps(p.output)) for p in inline) <= OUTPUT_BUDGET_BYTES
    assert all(p.output is None and p.output_ref.size_bytes > BLOB - 100 for p in kept)
    assert len(result.model_dump_json()) < PAYLOAD_LIMIT / 2
    assert len(progress.model_dump_json()) < PAYLOAD_LIMIT / 2

    record = json.loads(store.path_for(crisis.crisis_id).read_text())
    assert record["status"] == "completed"
    # Every output is in the record, those kept there only as well as the inline ones.
    assert [p["output"]["phase"] for p in record["phases"]] == [f"p-{i:02d}" for i in range(40)]
    assert all(len(p["output"]["blob"]) == BLOB - 40 for p in record["phases"])


async def test_forty_phases_whose_params_refer_to_sixty_kilobytes_complete_with_params_past_the_budget_in_the_record(
    dev_server, task_queue, tmp_path: Path
):
    store = FileRecordStore(tmp_path / "crises")
    phases = [phase("p-00", "scan", 0)]
    phases += [phase(f"p-{i:02d}", "scan", i, params={"data": "${phases.p-00.output}"}) for i in range(1, 41)]
    crisis = request(f"crisis-big-params-{uuid.uuid4().hex[:8]}", *phases)
    _, result, progress = await run_to_its_end(dev_server, task_queue, store, crisis, FirstReportsSixtyKilobytes())

    assert result.success and result.summary.completed_phases == 41
    referring = result.phases[1:]
    carried = [p for p in referring if p.params_ref is None]
    kept = [p for p in referring if p.params_ref is not None]
    assert carried and kept, "some params carried, those past the budget in the record"
    blob = {"blob": "x" * (BLOB - 40)}
    assert all(p.params == {"data": blob} for p in carried)
    assert all(p.params is None and p.params_ref.size_bytes > BLOB - 100 for p in kept)
    carried_values = [v for p in result.phases for v in (p.output, p.params) if v is not None]
    assert sum(len(json.dumps(v)) for v in carried_values) <= OUTPUT_BUDGET_BYTES
    assert len(result.model_dump_json()) < PAYLOAD_LIMIT / 2
    assert len(progress.model_dump_json()) < PAYLOAD_LIMIT / 2

    record = json.loads(store.path_for(crisis.crisis_id).read_text())
    assert record["status"] == "completed"
    assert all(p["params"] == {"data": blob} for p in record["phases"][1:]), "the record has every phase's params"


async def test_a_thousand_small_phases_complete_with_each_run_well_inside_temporal_s_history_limits(
    dev_server, task_queue, tmp_path: Path
):
    store = FileRecordStore(tmp_path / "crises")
    crisis = request(f"crisis-many-{uuid.uuid4().hex[:8]}", *(phase(f"p-{i:04d}", "scan", 1) for i in range(1000)))
    handle, result, _ = await run_to_its_end(dev_server, task_queue, store, crisis)

    assert result.success and result.summary.completed_phases == 1000
    assert all(p.status == PhaseStatus.COMPLETED and p.output == {"simulated": True} for p in result.phases)
    assert len(result.model_dump_json()) < PAYLOAD_LIMIT / 2
    for history in await every_run(dev_server, handle):
        assert len(history.events) < HISTORY_EVENTS_WARNING
        assert sum(event.ByteSize() for event in history.events) < HISTORY_BYTES_WARNING
    record = json.loads(store.path_for(crisis.crisis_id).read_text())
    assert record["summary"] == {"completed_phases": 1000, "failed_phases": 0, "total_phases": 1000}
