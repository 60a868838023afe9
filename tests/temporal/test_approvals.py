"""Approval decisions are workflow updates with a validator: exactly one decision per phase takes
effect and every other caller hears why not. Also: changes sent before any worker has run the
crisis see its whole plan. On the dev server, with an in-process worker and the agency.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage

from app.temporal.errors import TemporalUnavailableError
from app.temporal.models import MissionPhase, PhaseStatus
from app.temporal.workflows import CrisisResponseWorkflow
from cognition.liara.errors import CrisisWaitTimeoutError, DecisionRefusedError
from tests.helpers.cli import cli
from tests.helpers.workflows import gated_crisis, phase, until, worker

pytestmark = pytest.mark.integration


async def test_an_approve_and_a_reject_at_once_one_takes_effect_and_the_other_is_told_who_decided(
    dev_server, task_queue, tmp_path, agency
):
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await gated_crisis(
            agency,
            phase("strike-1", "strike", 1, requires_approval=True),
            phase("hold-2", "hold", 2, params={"duration": 2}),
        )
        await until(agency, workflow_id, "strike-1", PhaseStatus.AWAITING_APPROVAL)
        outcomes = await asyncio.gather(
            agency.approve_phase(workflow_id, "strike-1", approved_by="alice"),
            agency.reject_phase(workflow_id, "strike-1", rejected_by="bob", reason="too risky"),
            return_exceptions=True,
        )
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)

    decided = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, DecisionRefusedError)]
    assert len(decided) == 1 and len(refused) == 1, outcomes
    winner = decided[0]
    verb = "approved" if winner["approved"] else "rejected"
    assert f"phase 'strike-1' was already {verb} by {winner['decided_by']} at " in str(refused[0])
    strike = result["phases"][0]
    if winner["approved"]:
        assert (strike["status"], strike["approved_by"]) == ("completed", "alice")
    else:
        assert (strike["status"], strike["error"]) == ("failed", "rejected by bob: too risky")


async def test_a_decision_after_the_approval_timed_out_is_refused(dev_server, task_queue, tmp_path, agency):
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await gated_crisis(
            agency,
            phase("strike-1", "strike", 1, requires_approval=True, approval_timeout=1),
            phase("hold-2", "hold", 2, requires_approval=True),
        )
        await until(agency, workflow_id, "strike-1", PhaseStatus.FAILED)
        with pytest.raises(DecisionRefusedError) as refused:
            await agency.approve_phase(workflow_id, "strike-1", approved_by="late-alice")
        assert str(refused.value) == (
            f"Cannot decide on phase 'strike-1' of {workflow_id}: phase 'strike-1' is failed "
            "(approval timed out after 1 s); it can no longer be decided."
        )
        await agency.cancel_crisis(workflow_id)


async def test_a_decision_for_a_phase_that_does_not_await_approval_is_refused(dev_server, task_queue, tmp_path, agency):
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await gated_crisis(
            agency,
            phase("recon-1", "recon", 1),
            phase("strike-2", "strike", 2, requires_approval=True),
            phase("strike-3", "strike", 3, requires_approval=True),
        )
        await until(agency, workflow_id, "strike-2", PhaseStatus.AWAITING_APPROVAL)
        with pytest.raises(DecisionRefusedError, match="has no phase 'recon-1' that requires approval"):
            await agency.approve_phase(workflow_id, "recon-1", approved_by="alice")
        with pytest.raises(DecisionRefusedError, match="phase 'strike-3' is not awaiting approval yet"):
            await agency.approve_phase(workflow_id, "strike-3", approved_by="alice")
        with pytest.raises(DecisionRefusedError, match="has no phase 'strike-9' that requires approval"):
            await agency.reject_phase(workflow_id, "strike-9", rejected_by="alice")
        await agency.cancel_crisis(workflow_id)


async def test_the_cli_says_who_decided_first_and_exits_1(dev_server, task_queue, tmp_path, agency, liara_env):
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await gated_crisis(
            agency,
            phase("strike-1", "strike", 1, requires_approval=True),
            phase("hold-2", "hold", 2, requires_approval=True),
        )
        await until(agency, workflow_id, "strike-1", PhaseStatus.AWAITING_APPROVAL)
        first = await cli(liara_env, tmp_path, "reject", workflow_id, "strike-1", "--by", "bob", "--reason", "no")
        second = await cli(liara_env, tmp_path, "approve", workflow_id, "strike-1", "--by", "alice")
        await agency.cancel_crisis(workflow_id)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 1
    assert "Traceback" not in second.stderr
    assert second.stderr.startswith(
        f"Error: Cannot decide on phase 'strike-1' of {workflow_id}: phase 'strike-1' was already rejected by bob at "
    ), second.stderr


async def test_a_change_with_no_worker_running_is_refused_at_once(agency):
    workflow_id = await gated_crisis(agency, phase("strike-1", "strike", 1, requires_approval=True))
    with pytest.raises(TemporalUnavailableError, match="no worker polls task queue"):
        await agency.approve_phase(workflow_id, "strike-1", approved_by="alice")
    with pytest.raises(TemporalUnavailableError, match="no worker polls task queue"):
        await agency.add_phases(workflow_id, [phase("extra-2", "extract", 2)])
    await agency.cancel_crisis(workflow_id)


async def test_a_change_no_worker_takes_in_time_gives_up_with_one_sentence(dev_server, task_queue, tmp_path, agency):
    """A worker polls the queue but never gets to the update: say so instead of hanging."""
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await gated_crisis(agency, phase("strike-1", "strike", 1, requires_approval=True))
        await until(agency, workflow_id, "strike-1", PhaseStatus.AWAITING_APPROVAL)
        with pytest.raises(CrisisWaitTimeoutError, match="no worker answered within 0.001 s"):
            await agency.add_phases(workflow_id, [phase("extra-2", "extract", 2)], timeout=0.001)
        await agency.cancel_crisis(workflow_id)


# --- before the first workflow task -------------------------------------------------------------


def send_without_a_worker(handle, phases: list[MissionPhase]) -> asyncio.Future:
    """Send ``add_phases`` now; its outcome once a worker takes it (with the crisis's first task)."""

    async def outcome():
        update = await handle.start_update(
            CrisisResponseWorkflow.add_phases, phases, wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        return await update.result()

    return asyncio.ensure_future(outcome())


async def test_phases_added_before_any_worker_ran_the_crisis_are_checked_against_its_plan(
    dev_server, task_queue, tmp_path, agency
):
    workflow_id = await gated_crisis(agency, phase("recon-1", "recon", 1), phase("strike-2", "strike", 2))
    handle = dev_server.client.get_workflow_handle(workflow_id)
    duplicate = MissionPhase.model_validate(phase("recon-1", "recon", 3))
    fresh = MissionPhase.model_validate(phase("extract-3", "extract", 3))
    refused = send_without_a_worker(handle, [duplicate])
    accepted = send_without_a_worker(handle, [fresh])
    await asyncio.sleep(1)
    async with worker(dev_server, task_queue, tmp_path):
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await asyncio.wait_for(refused, 60)
        assert "phase_id 'recon-1' is already part of the crisis" in str(failure.value.cause)
        await asyncio.wait_for(accepted, 60)
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)
    assert [p["phase_id"] for p in result["phases"]] == ["recon-1", "strike-2", "extract-3"]


async def test_the_phase_cap_holds_for_phases_added_before_the_first_workflow_task(
    dev_server, task_queue, tmp_path, agency
):
    workflow_id = await gated_crisis(agency, *(phase(f"p-{i}", "scan", 1) for i in range(1000)))
    handle = dev_server.client.get_workflow_handle(workflow_id)
    one_more = MissionPhase.model_validate(phase("p-1000", "scan", 1))
    refused = send_without_a_worker(handle, [one_more])
    await asyncio.sleep(1)
    async with worker(dev_server, task_queue, tmp_path):
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await asyncio.wait_for(refused, 60)
        await handle.terminate("test over")
    assert "a crisis has at most 1000 phases" in str(failure.value.cause)


# --- quorum ----------------------------------------------------------------------------------


async def test_a_quorum_phase_runs_once_enough_distinct_approvers_approved(dev_server, task_queue, tmp_path, agency):
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await gated_crisis(agency, phase("strike-1", "strike", 1, approvals_required=2))
        await until(agency, workflow_id, "strike-1", PhaseStatus.AWAITING_APPROVAL)
        first = await agency.approve_phase(workflow_id, "strike-1", approved_by="alice")
        with pytest.raises(DecisionRefusedError, match="alice has already approved phase 'strike-1' \\(1 of 2"):
            await agency.approve_phase(workflow_id, "strike-1", approved_by="alice")
        status = await agency.get_crisis_status(workflow_id)
        second = await agency.approve_phase(workflow_id, "strike-1", approved_by="bob")
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)

    assert (first["approvals"], first["approvals_required"], second["approvals"]) == (1, 2, 2)
    assert status["phases"][0]["status"] == "awaiting_approval", "one approval of two does not run it"
    strike = result["phases"][0]
    assert (strike["status"], strike["approved_by"]) == ("completed", "alice, bob")
    assert [(d["decided_by"], d["approved"]) for d in strike["decisions"]] == [("alice", True), ("bob", True)]
    record = json.loads((tmp_path / "crises" / f"{result['crisis_id']}.json").read_text())
    entry = record["phases"][0]
    assert entry["approvals_required"] == 2
    assert [(d["decided_by"], d["approved"]) for d in entry["decisions"]] == [("alice", True), ("bob", True)]
    assert all(d["decided_at"].endswith("Z") for d in entry["decisions"])


async def test_a_quorum_phase_fails_at_the_first_rejection(dev_server, task_queue, tmp_path, agency):
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await gated_crisis(agency, phase("strike-1", "strike", 1, approvals_required=3))
        await until(agency, workflow_id, "strike-1", PhaseStatus.AWAITING_APPROVAL)
        await agency.approve_phase(workflow_id, "strike-1", approved_by="alice")
        await agency.reject_phase(workflow_id, "strike-1", rejected_by="carol", reason="not yet")
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)
    strike = result["phases"][0]
    assert (strike["status"], strike["error"]) == ("failed", "rejected by carol: not yet")
    assert [(d["decided_by"], d["approved"]) for d in strike["decisions"]] == [("alice", True), ("carol", False)]
