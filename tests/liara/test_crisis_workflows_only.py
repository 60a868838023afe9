"""The agency, the command line and the service see and steer crisis workflows only: any other
workflow id (a webhook delivery's is predictable) is "no such crisis", and is left alone.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from app.temporal.records import FileRecordStore
from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import CRISIS_CHECK_GRACE_SECONDS, LiaraTemporalAgency
from cognition.liara.errors import CrisisNotFoundError
from tests.helpers.cli import assert_one_sentence_error, cli
from tests.helpers.service import assert_problem
from tests.helpers.workflows import crisis_worker

pytestmark = pytest.mark.integration


async def other_workflow(client) -> str:
    """A running workflow that is not a crisis (no worker ever takes it)."""
    workflow_id = f"crisis-workflow-{uuid.uuid4().hex[:12]}-webhook-1-ops"
    await client.start_workflow("WebhookDeliveryWorkflow", {}, id=workflow_id, task_queue=f"nobody-{uuid.uuid4()}")
    return workflow_id


async def test_no_call_of_the_agency_acts_on_another_workflow(dev_server, agency, liara_env, tmp_path):
    workflow_id = await other_workflow(dev_server.client)
    says = f"No crisis workflow {workflow_id!r} in namespace 'default': check the id printed by `liara trigger`."
    calls = {
        "status": agency.get_crisis_status(workflow_id),
        "wait": agency.wait_for_crisis_completion(workflow_id, timeout=1),
        "cancel": agency.cancel_crisis(workflow_id, cancelled_by="mallory"),
        "approve": agency.approve_phase(workflow_id, "deliver", approved_by="mallory"),
        "add": agency.add_phases(workflow_id, [{"phase_id": "x", "agent_id": "a", "action": "b", "target": "t"}]),
    }
    for name, call in calls.items():
        with pytest.raises(CrisisNotFoundError) as refused:
            await call
        assert str(refused.value) == says, name
    with pytest.raises(CrisisNotFoundError):
        await anext(aiter(agency.crisis_events(workflow_id)))
    for command in (("cancel", workflow_id), ("status", workflow_id)):
        refused = await cli(liara_env, tmp_path, *command)
        assert refused.returncode == 1 and assert_one_sentence_error(refused.stderr) == f"Error: {says}"
    description = await dev_server.client.get_workflow_handle(workflow_id).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING, "left alone"
    await dev_server.client.get_workflow_handle(workflow_id).terminate()


async def test_waiting_for_another_workflow_that_has_ended_is_no_such_crisis(dev_server, agency):
    workflow_id = await other_workflow(dev_server.client)
    await dev_server.client.get_workflow_handle(workflow_id).terminate()
    with pytest.raises(CrisisNotFoundError) as refused:
        await agency.wait_for_crisis_completion(workflow_id, timeout=30)
    assert "No crisis workflow" in str(refused.value)


def counted_describes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the workflows described from now on, in order."""
    described: list[str] = []
    describe = WorkflowHandle.describe

    async def counted_describe(self: WorkflowHandle, *args, **kwargs):
        described.append(self.id)
        return await describe(self, *args, **kwargs)

    monkeypatch.setattr(WorkflowHandle, "describe", counted_describe)
    return described


async def test_a_wait_asks_whether_it_is_a_crisis_only_when_its_result_is_slow_to_come(
    dev_server, agency, task_queue, tmp_path, monkeypatch
):
    described = counted_describes(monkeypatch)
    slow = CRISIS_CHECK_GRACE_SECONDS + 1
    async with crisis_worker(dev_server.client, task_queue, FileRecordStore(tmp_path / "crises")):
        quick_id = await agency.trigger_crisis_response(
            "target-alpha", missions_from_actions("target-alpha", ["recon"])
        )
        slow_id = await agency.trigger_crisis_response(
            "target-alpha",
            [{"phase_id": "wait", "agent_id": "a", "action": "wait", "target": "t", "params": {"duration": slow}}],
        )
        async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as another:
            assert (await another.wait_for_crisis_completion(quick_id, timeout=60))["success"] is True
            described.clear()
            # Ended: its result comes at once, and is a crisis's.
            assert (await another.wait_for_crisis_completion(quick_id, timeout=60))["success"] is True
            assert described == []
            # Still running past the grace: asked once, while the wait goes on.
            assert (await another.wait_for_crisis_completion(slow_id, timeout=60))["success"] is True
            assert described == [slow_id]


async def test_a_wait_on_a_crisis_the_agency_started_asks_no_check_however_long_it_lasts(
    dev_server, agency, task_queue, tmp_path, monkeypatch
):
    described = counted_describes(monkeypatch)
    async with crisis_worker(dev_server.client, task_queue, FileRecordStore(tmp_path / "crises")):
        slow_id = await agency.trigger_crisis_response(
            "target-alpha",
            [
                {
                    "phase_id": "wait",
                    "agent_id": "a",
                    "action": "wait",
                    "target": "t",
                    "params": {"duration": CRISIS_CHECK_GRACE_SECONDS + 1},
                }
            ],
        )
        assert (await agency.wait_for_crisis_completion(slow_id, timeout=60))["success"] is True
    assert described == []


async def test_the_service_answers_404_for_another_workflow(dev_server, liara_service, service_tokens):
    workflow_id = await other_workflow(dev_server.client)
    admin = service_tokens.headers("admin-1")
    async with httpx.AsyncClient(base_url=liara_service.url, timeout=60, headers=admin) as http:
        assert_problem(await http.post(f"/v1/crises/{workflow_id}/cancel"), 404, "crisis-not-found")
        assert_problem(await http.get(f"/v1/crises/{workflow_id}"), 404, "crisis-not-found")
        assert_problem(await http.post(f"/v1/crises/{workflow_id}/phases/deliver/approve"), 404, "crisis-not-found")
    description = await dev_server.client.get_workflow_handle(workflow_id).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    await dev_server.client.get_workflow_handle(workflow_id).terminate()
