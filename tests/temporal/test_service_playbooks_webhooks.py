"""The service's playbooks, and the webhook notifications it delivers: a real ``liara serve`` with a
``liara.toml`` naming a webhook, a real worker, a real receiver."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from app.temporal.notifications import SIGNATURE_HEADER, verify_signature
from tests.conftest import REPO_ROOT, WorkerProcess, assert_eventually, subprocess_env
from tests.temporal.conftest import ServiceProcess, assert_problem
from tests.temporal.test_webhooks import SECRET, Receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver():
    listening = Receiver(refusals=1)
    yield listening
    listening.close()


@pytest.fixture
def served(dev_server, tmp_path: Path, receiver: Receiver):
    """``liara serve`` on loopback (no tokens) delivering to ``receiver``, and a worker."""
    config = tmp_path / "liara.toml"
    config.write_text(f'[webhooks.ops]\nurl = "{receiver.url}"\nsecret_env = "OPS_WEBHOOK_SECRET"\n')
    env = subprocess_env(dev_server.address, f"liara-test-{uuid.uuid4()}", tmp_path / "crises")
    env |= {
        "LIARA_CONFIG": str(config),
        "OPS_WEBHOOK_SECRET": SECRET,
        "LIARA_NOTIFICATION_TASK_QUEUE": f"notify-{uuid.uuid4()}",
        "LIARA_PLAYBOOKS": str(REPO_ROOT / "playbooks"),
    }
    worker = WorkerProcess("cognition/liara/worker.py", env, tmp_path)
    service = ServiceProcess(env, tmp_path)
    yield service
    assert service.stop() == 0, service.output
    worker.stop()


async def test_the_service_starts_playbooks_and_delivers_their_webhooks(served: ServiceProcess, receiver: Receiver):
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
        listed = (await http.get("/v1/playbooks")).json()
        assert {p["name"] for p in listed} == {"incident-response", "credential-rotation", "health-check"}
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

        async def finished_delivered() -> bool:
            return any(json.loads(r["body"])["event"] == "finished" for r in receiver.delivered().values())

        await assert_eventually(finished_delivered, timeout=60, interval=0.5)
        missing = await http.get("/v1/playbooks/no-such-playbook")
        assert_problem(missing, 404, "playbook-not-found")
        wrong = await http.post("/v1/playbooks/health-check/crises", json={"inputs": {"colour": "red"}})
        assert_problem(wrong, 422, "invalid-request")

    finished = next(r for r in receiver.delivered().values() if json.loads(r["body"])["event"] == "finished")
    assert verify_signature(SECRET.encode(), finished["headers"][SIGNATURE_HEADER], finished["body"])
    assert json.loads(finished["body"])["data"]["status"] == "completed"
