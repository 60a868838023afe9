"""``liara --api URL --token T``: the crisis commands through a remote service, with no Temporal
settings at all on the operator's side."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cognition.liara import schedules
from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.errors import IdempotencyConflictError
from cognition.liara.remote import RemoteAgency
from cognition.liara.service.config import MAX_PAGE_SIZE
from tests.helpers import REPO_ROOT, assert_eventually
from tests.helpers.cli import assert_one_sentence_error, run_cli
from tests.helpers.servers import free_port
from tests.helpers.service import ServiceProcess, Tokens, assert_started_with_the_options, started_request

pytestmark = pytest.mark.integration


@pytest.fixture
def operator_env(liara_service: ServiceProcess, service_tokens: Tokens) -> dict[str, str]:
    """An operator's shell: the service's address and a token, nothing of Temporal's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}
    return {**env, "LIARA_API_URL": liara_service.url, "LIARA_API_TOKEN": service_tokens.by_name["admin-1"]}


@pytest.fixture
def approver_env(operator_env: dict[str, str], service_tokens: Tokens) -> dict[str, str]:
    """Another operator's shell, with an approver's token: who started a crisis may not decide its gates."""
    return {**operator_env, "LIARA_API_TOKEN": service_tokens.by_name["approver-1"]}


def liara(env: dict[str, str], cwd: Path, *args: str):
    return run_cli(env, cwd, *args, timeout=120)


def test_a_crisis_runs_to_its_end_through_the_service(operator_env, approver_env, tmp_path):
    missions = tmp_path / "missions.json"
    gated = {"phase_id": "strike-1", "agent_id": "a", "action": "strike", "target": "target-remote"}
    missions.write_text(json.dumps([{**gated, "requires_approval": True}]))
    started = liara(operator_env, tmp_path, "trigger", "target-remote", "--missions-file", str(missions))
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()

    status = liara(operator_env, tmp_path, "status", workflow_id, "--json")
    assert json.loads(status.stdout)["status"] == "running"
    refused = liara(operator_env, tmp_path, "approve", workflow_id, "strike-1")
    assert "admin-1 started crisis" in assert_one_sentence_error(refused.stderr), "four eyes"
    approved = liara(approver_env, tmp_path, "approve", workflow_id, "strike-1")
    assert approved.returncode == 0, approved.stderr
    waited = liara(operator_env, tmp_path, "wait", workflow_id, "--json")
    assert waited.returncode == 0, waited.stderr
    result = json.loads(waited.stdout)
    assert result["success"] and result["phases"][0]["approved_by"] == "approver-1", "the token's name decided"
    listed = json.loads(liara(operator_env, tmp_path, "list", "--target", "target-remote", "--json").stdout)
    assert workflow_id in [row["workflow_id"] for row in listed]


async def test_a_wait_through_the_service_says_what_the_crisis_waits_for(operator_env, tmp_path):
    missions = tmp_path / "missions.json"
    gate = {"phase_id": "gate-1", "agent_id": "a", "action": "strike", "target": "t-r", "requires_approval": True}
    missions.write_text(json.dumps([gate]))
    started = await asyncio.to_thread(liara, operator_env, tmp_path, "trigger", "t-r", "--missions-file", str(missions))
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()

    async def awaiting() -> bool:
        shown = await asyncio.to_thread(liara, operator_env, tmp_path, "status", workflow_id, "--json")
        return any(phase["status"] == "awaiting_approval" for phase in json.loads(shown.stdout).get("phases", []))

    await assert_eventually(awaiting, timeout=60, interval=0.5)
    waited = await asyncio.to_thread(liara, operator_env, tmp_path, "wait", workflow_id, "--timeout", "1")
    assert waited.returncode == 1
    assert assert_one_sentence_error(waited.stderr) == (
        f"Error: Crisis workflow {workflow_id} did not finish within 1 s; it keeps running, but it is awaiting "
        f"approval of gate-1 (0 of 1): decide with `liara approve {workflow_id} gate-1` or "
        f"`liara reject {workflow_id} gate-1`."
    )
    assert (await asyncio.to_thread(liara, operator_env, tmp_path, "cancel", workflow_id)).returncode == 0


def test_the_service_errors_are_the_cli_errors(operator_env, tmp_path, service_tokens):
    unknown = liara(operator_env, tmp_path, "status", "crisis-workflow-does-not-exist")
    assert unknown.returncode == 1
    assert "No crisis workflow 'crisis-workflow-does-not-exist'" in assert_one_sentence_error(unknown.stderr)

    viewer = {**operator_env, "LIARA_API_TOKEN": service_tokens.by_name["viewer-1"]}
    refused = liara(viewer, tmp_path, "trigger", "target-remote", "recon")
    assert refused.returncode == 1
    assert "has role viewer, which may not" in assert_one_sentence_error(refused.stderr)

    no_token = {**operator_env, "LIARA_API_TOKEN": "liara_not-a-real-token-at-all"}
    assert liara(no_token, tmp_path, "status", "crisis-workflow-x").returncode == 1

    down = {**operator_env, "LIARA_API_URL": "http://127.0.0.1:1"}
    unreachable = liara(down, tmp_path, "status", "crisis-workflow-x")
    assert "Cannot reach the Liara service at http://127.0.0.1:1" in assert_one_sentence_error(unreachable.stderr)

    direct = liara(operator_env, tmp_path, "doctor")
    assert "talks to Temporal itself, not through the service: leave out --api." in assert_one_sentence_error(
        direct.stderr
    )


async def test_a_playbook_of_the_service_takes_the_crisis_options(operator_env, service_dir, dev_server, tmp_path):
    shutil.copytree(REPO_ROOT / "playbooks", service_dir / "playbooks", dirs_exist_ok=True)  # the service's own
    options = ("--max-parallel", "1", "--failure-policy", "abort", "--priority", "1", "--max-attempts", "5")
    options += ("--phase-timeout", "30", "--heartbeat-timeout", "5")
    started = await asyncio.to_thread(
        liara, operator_env, tmp_path, "trigger", "--playbook", "health-check", "--input", "site=example.org", *options
    )
    assert started.returncode == 0, started.stderr
    assert_started_with_the_options(await started_request(dev_server.client, started.stdout.strip()))


async def test_the_remote_agency_starts_one_crisis_per_idempotency_key(liara_service, service_tokens):
    """``start_crisis(..., idempotency_key=KEY)`` sends the key as the service's Idempotency-Key."""
    phase = {
        "phase_id": "p-1",
        "agent_id": "a",
        "action": "recon",
        "target": "target-remote",
        "requires_approval": True,
    }
    key = f"key-{uuid.uuid4().hex}"
    async with RemoteAgency(liara_service.url, service_tokens.by_name["admin-1"]) as remote:
        first = await remote.start_crisis("target-remote", [phase], idempotency_key=key)
        again = await remote.start_crisis("target-remote", [phase], idempotency_key=key)
        with pytest.raises(IdempotencyConflictError):
            await remote.start_crisis("target-remote", [{**phase, "action": "secure"}], idempotency_key=key)
    assert first["created"] and not again["created"]
    assert again["workflow_id"] == first["workflow_id"]


def test_decisions_print_who_the_service_recorded(operator_env, approver_env, tmp_path):
    missions = tmp_path / "missions.json"
    gate = {"agent_id": "a", "action": "strike", "target": "target-remote", "requires_approval": True}
    missions.write_text(json.dumps([{"phase_id": "strike-1", **gate}, {"phase_id": "strike-2", **gate}]))
    started = liara(operator_env, tmp_path, "trigger", "target-remote", "--missions-file", str(missions))
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()

    approved = liara(approver_env, tmp_path, "approve", workflow_id, "strike-1", "--by", "someone-else")
    assert approved.returncode == 0, approved.stderr
    assert f"Phase strike-1 of {workflow_id} approved by approver-1" in approved.stdout
    rejected = liara(approver_env, tmp_path, "reject", workflow_id, "strike-2", "--reason", "no")
    assert rejected.returncode == 0, rejected.stderr
    assert f"Phase strike-2 of {workflow_id} rejected by approver-1" in rejected.stdout


async def test_list_finds_the_crises_of_a_schedule_through_the_service(operator_env, service_env, dev_server, tmp_path):
    name = f"remote-{uuid.uuid4().hex[:8]}"
    # The schedule is made, run and waited for through the Python API (the schedule commands are
    # test_schedules.py's); what the operator's `liara list` shows is what this test is about.
    queue = service_env["LIARA_TASK_QUEUE"]
    async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=queue) as agency:
        await schedules.create(
            dev_server.client,
            name,
            schedules.spec_of("0 3 1 1 *", None),
            task_queue=queue,
            target_member="target-remote",
            missions=missions_from_actions("target-remote", ["recon"]),
            initiated_by="tester",
        )
        try:
            await schedules.trigger(dev_server.client, name)

            async def one_run() -> bool:  # visibility is eventually consistent
                return len(await agency.list_crises(schedule=name)) == 1

            await assert_eventually(one_run, timeout=30, interval=0.2)
            listed = await asyncio.to_thread(liara, operator_env, tmp_path, "list", "--schedule", name, "--json")
            assert listed.returncode == 0, listed.stderr
            (run,) = json.loads(listed.stdout)
            assert run["workflow_id"].startswith(f"crisis-workflow-sched-{name}")
        finally:
            await schedules.delete(dev_server.client, name)
    nothing = await asyncio.to_thread(liara, operator_env, tmp_path, "list", "--schedule", "no-such-schedule", "--json")
    assert json.loads(nothing.stdout) == []


async def test_list_pages_through_the_service_past_its_largest_page(operator_env, dev_server, tmp_path):
    target = f"target-{uuid.uuid4().hex[:10]}"
    many = MAX_PAGE_SIZE + 3
    # Nobody polls this task queue: the crises wait, listed as running.
    async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=f"idle-{uuid.uuid4()}") as agency:
        gate = [{"phase_id": "p-1", "agent_id": "a", "action": "recon", "target": target}]
        started = []
        for first in range(0, many, 50):
            started += await asyncio.gather(
                *(agency.trigger_crisis_response(target, gate) for _ in range(first, min(first + 50, many)))
            )

        async def all_listed() -> bool:
            return len(await agency.list_crises(target=target, limit=1000)) == many

        await assert_eventually(all_listed, timeout=60, interval=0.5)
        try:
            listed = await asyncio.to_thread(
                liara, operator_env, tmp_path, "list", "--target", target, "--limit", str(many + 10), "--json"
            )
            assert listed.returncode == 0, listed.stderr
            assert sorted(row["workflow_id"] for row in json.loads(listed.stdout)) == sorted(started)
            fewer = await asyncio.to_thread(
                liara, operator_env, tmp_path, "list", "--target", target, "--limit", str(MAX_PAGE_SIZE + 1), "--json"
            )
            assert len(json.loads(fewer.stdout)) == MAX_PAGE_SIZE + 1
        finally:
            await asyncio.gather(
                *(agency.client.get_workflow_handle(workflow_id).terminate("test over") for workflow_id in started)
            )


#: An HTTP server that answers every GET and POST alike, as no Liara service does: a web page (as
#: the Temporal Web UI does for any path) or JSON of its own.
OTHER_SERVER = """
import http.server, sys
body, media = sys.argv[2].encode(), sys.argv[3]

class Answer(http.server.BaseHTTPRequestHandler):
    def answer(self):
        self.send_response(200)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Answer).serve_forever()
"""
OTHER_SERVERS = {
    "a directory listing": ("-m", "http.server"),
    "a web page for every path": ("-c", OTHER_SERVER, "<!doctype html><title>Temporal</title>", "text/html"),
    "unrelated JSON": ("-c", OTHER_SERVER, '{"hello": "world"}', "application/json"),
}


@pytest.fixture(params=OTHER_SERVERS.values(), ids=OTHER_SERVERS.keys())
def other_server(request, tmp_path: Path):
    """The URL of a real HTTP server that is not a Liara service."""
    program, *args = request.param
    port = free_port()
    argv = [*args[:1], str(port), *args[1:]] if program == "-c" else [*args, str(port), "--bind", "127.0.0.1"]
    server = subprocess.Popen([sys.executable, program, *argv], cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize(
    "command",
    [("status", "crisis-workflow-x"), ("list",), ("trigger", "target-alpha", "recon"), ("approve", "wf", "p-1")],
    ids=lambda command: command[0],
)
def test_an_api_url_that_is_not_a_liara_service_is_one_sentence(other_server, command, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}

    refused = liara({**env, "LIARA_API_URL": other_server}, tmp_path, *command)

    assert refused.returncode == 1
    sentence = assert_one_sentence_error(refused.stderr)
    assert sentence.startswith(f"Error: The server at {other_server} is not a Liara service (it answered "), sentence
    assert sentence.endswith("): check --api."), sentence
    assert refused.stdout == ""
