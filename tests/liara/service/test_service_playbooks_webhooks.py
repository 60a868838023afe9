"""The service's playbooks, and the webhook notifications it delivers: a real ``liara serve`` with a
``liara.toml`` naming a webhook, a real worker, a real receiver."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from app.temporal.notifications import SIGNATURE_HEADER, verify_signature
from app.temporal.server import temporal_binary, tuned_arguments
from app.temporal.visibility import CRISIS_SEARCH_ATTRIBUTES
from scripts.local_postgres import free_port
from tests.helpers import REPO_ROOT, assert_eventually
from tests.helpers.processes import WorkerProcess, subprocess_env
from tests.helpers.service import (
    ServiceProcess,
    assert_problem,
    assert_started_with_the_options,
    crisis_body,
    phase,
    started_request,
)
from tests.helpers.webhooks import SECRET, Receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver():
    listening = Receiver(refusals=1)
    yield listening
    listening.close()


def webhook_env(address: str, tmp_path: Path, receiver: Receiver) -> dict[str, str]:
    """Commands' environment with a ``liara.toml`` whose webhook ``ops`` is ``receiver``."""
    config = tmp_path / "liara.toml"
    config.write_text(f'[webhooks.ops]\nurl = "{receiver.url}"\nsecret_env = "OPS_WEBHOOK_SECRET"\n')
    env = subprocess_env(address, f"liara-test-{uuid.uuid4()}", tmp_path / "crises")
    return env | {
        "LIARA_CONFIG": str(config),
        "OPS_WEBHOOK_SECRET": SECRET,
        "LIARA_NOTIFICATION_TASK_QUEUE": f"notify-{uuid.uuid4()}",
        "LIARA_PLAYBOOKS": str(REPO_ROOT / "playbooks"),
    }


@pytest.fixture
def served(dev_server, tmp_path: Path, receiver: Receiver):
    """``liara serve`` on loopback (no tokens) delivering to ``receiver``, and a (dedicated) worker."""
    env = webhook_env(dev_server.address, tmp_path, receiver)
    worker = WorkerProcess("cognition/liara/worker.py", env, tmp_path)
    service = ServiceProcess(env, tmp_path)
    yield service
    assert service.stop() == 0, service.output
    worker.stop()


async def test_the_service_starts_playbooks_and_delivers_their_webhooks(served: ServiceProcess, receiver: Receiver):
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
        listed = (await http.get("/v1/playbooks")).json()
        assert {p["name"] for p in listed} == {"incident-response", "credential-rotation", "health-check", "ai-triage"}
        health = (await http.get("/v1/playbooks/health-check")).json()
        assert health["inputs"]["site"] == {
            "type": "string",
            "required": True,
            "default": None,
            "description": "The site to check",
        }

        started = await http.post(
            "/v1/playbooks/health-check/crises", json={"inputs": {"site": "example.org"}, "webhooks": ["ops"]}
        )
        assert started.status_code == 201, started.text
        workflow_id = started.json()["workflow_id"]
        result = (await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60})).json()
        assert result["status"] == "completed" and result["result"]["success"]

        await assert_eventually(lambda: finished_delivered(receiver), timeout=60, interval=0.5)
        missing = await http.get("/v1/playbooks/no-such-playbook")
        assert_problem(missing, 404, "playbook-not-found")
        wrong = await http.post("/v1/playbooks/health-check/crises", json={"inputs": {"colour": "red"}})
        assert_problem(wrong, 422, "invalid-request")
        # An input that does not fit where the playbook puts it is told once, as the input.
        bad_host = await http.post("/v1/playbooks/incident-response/crises", json={"inputs": {"host": "bad/host"}})
        problem = assert_problem(bad_host, 422, "invalid-request")
        rule = "use only letters, digits, '.', '_' and '-', starting with a letter or digit"
        assert problem["detail"] == (
            f"Invalid crisis request: input 'host' of playbook incident-response is not a valid target ('bad/host'): "
            f"{rule}."
        )
        assert problem["errors"] == [
            {
                "field": "body.inputs.host",
                "pointer": "/inputs/host",
                "message": f"is not a valid target ('bad/host'): {rule}",
            }
        ]

    finished = next(r for r in receiver.accepted() if json.loads(r["body"])["event"] == "finished")
    assert verify_signature(SECRET.encode(), finished["headers"][SIGNATURE_HEADER], finished["body"])
    assert json.loads(finished["body"])["data"]["status"] == "completed"


#: Every option of a crisis, as a start names them, each other than the playbooks' own.
CRISIS_OPTIONS = {
    "max_parallel": 1,
    "failure_policy": "abort",
    "priority": 1,
    "retry": {"maximum_attempts": 5},
    "phase_timeout_seconds": 30,
    "heartbeat_timeout_seconds": 5,
}


async def test_a_playbook_takes_the_options_of_any_crisis(served: ServiceProcess, dev_server):
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
        body = {"inputs": {"site": "example.org"}, **CRISIS_OPTIONS}
        started = await http.post("/v1/playbooks/health-check/crises", json=body)
        assert started.status_code == 201, started.text
        assert_started_with_the_options(await started_request(dev_server.client, started.json()["workflow_id"]))

        wrong = await http.post("/v1/playbooks/health-check/crises", json={**body, "max_parallel": 0})
        assert [e["field"] for e in assert_problem(wrong, 422, "invalid-request")["errors"]] == ["body.max_parallel"]


async def finished_delivered(receiver: Receiver) -> bool:
    return "finished" in receiver.accepted_events()


async def test_a_service_started_before_temporal_delivers_once_temporal_answers(tmp_path: Path, receiver: Receiver):
    address = f"127.0.0.1:{free_port()}"
    env = webhook_env(address, tmp_path, receiver)
    service = ServiceProcess(env, tmp_path)
    try:
        assert f"Cannot reach the Temporal server at {address}" in service.output
        temporal = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            port=int(address.rsplit(":", 1)[1]),
            dev_server_existing_path=temporal_binary(),
            dev_server_database_filename=str(tmp_path / "temporal.db"),
            dev_server_extra_args=tuned_arguments(),
            search_attributes=CRISIS_SEARCH_ATTRIBUTES,
        )
        worker = WorkerProcess("cognition/liara/worker.py", env, tmp_path)
        try:
            async with httpx.AsyncClient(base_url=service.url, timeout=60) as http:
                body = crisis_body(phase("recon-1"), webhooks=["ops"])
                started = await http.post("/v1/crises", json=body)
                assert started.status_code == 201, started.text
                ended = await http.get(f"/v1/crises/{started.json()['workflow_id']}/result", params={"wait": 60})
                assert ended.json()["status"] == "completed", ended.text
            # Delivered by the service's notifier: the dedicated worker does not deliver.
            await assert_eventually(lambda: finished_delivered(receiver), timeout=60, interval=0.5)
        finally:
            worker.stop()
            await temporal.shutdown()
    finally:
        assert service.stop() == 0, service.output


async def test_the_service_refuses_a_webhook_its_configuration_does_not_define(served: ServiceProcess, tmp_path: Path):
    config = tmp_path / "liara.toml"
    refused = f"'nope' is not a webhook of configuration file {config} (it defines ops)"
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
        started = await http.post("/v1/crises", json=crisis_body(phase("recon-1"), webhooks=["ops", "nope"]))
        problem = assert_problem(started, 422, "invalid-request")
        assert problem["detail"] == f"Invalid crisis request: /webhooks/1: {refused}."
        assert problem["errors"] == [{"field": "body.webhooks.1", "pointer": "/webhooks/1", "message": refused}]
        from_playbook = await http.post(
            "/v1/playbooks/health-check/crises", json={"inputs": {"site": "example.org"}, "webhooks": ["nope"]}
        )
        problem = assert_problem(from_playbook, 422, "invalid-request")
        assert problem["errors"] == [{"field": "body.webhooks.0", "pointer": "/webhooks/0", "message": refused}]
