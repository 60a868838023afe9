"""The service's commands as a user runs them: ``liara token create|list|revoke`` on a real token
file, ``liara serve`` refusing what it must, serving on loopback without tokens, and answering
503 while Temporal cannot be reached or its namespace is gone.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import uuid
from pathlib import Path

import httpx
import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.operatorservice.v1 import DeleteNamespaceRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from app.temporal.visibility import register_search_attributes
from cognition.liara.service.tokens import TokenFile
from tests.helpers import assert_eventually
from tests.helpers.cli import assert_one_sentence_error, run_cli
from tests.helpers.service import ServiceProcess, assert_problem, create_token, crisis_body, phase

pytestmark = pytest.mark.integration


def token(env: dict[str, str], cwd: Path, *args: str):
    return run_cli(env, cwd, "token", *args)


def test_tokens_are_shown_once_and_stored_as_hashes_only(service_env, tmp_path):
    path = tmp_path / "tokens.json"
    created = token(service_env, tmp_path, "create", "alice", "--role", "operator", "--tokens", str(path))
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("liara_") and len(secret) > 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret not in path.read_text()
    create_token(service_env, tmp_path, path, "bob", "viewer")

    listed = token(service_env, tmp_path, "list", "--tokens", str(path), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(row["name"], row["role"]) for row in rows] == [("alice", "operator"), ("bob", "viewer")]
    assert all(set(row) == {"name", "role", "created_at"} for row in rows)
    table = token(service_env, tmp_path, "list", "--tokens", str(path))
    assert "alice" in table.stdout and "operator" in table.stdout and "sha256" not in table.stdout

    revoked = token(service_env, tmp_path, "revoke", "alice", "--tokens", str(path))
    assert revoked.returncode == 0, revoked.stderr
    left = json.loads(token(service_env, tmp_path, "list", "--tokens", str(path), "--json").stdout)
    assert [row["name"] for row in left] == ["bob"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("create", "bob", "--role", "viewer"), "Error: A token named 'bob' already exists in "),
        (("create", "carol", "--role", "root"), "Error: Invalid token role: Input should be 'viewer', 'operator'"),
        (("create", "../x", "--role", "viewer"), "Error: Invalid token name: use only letters, digits"),
        (("revoke", "nobody"), "Error: No token named 'nobody' in "),
    ],
)
def test_token_mistakes_are_one_sentence_and_exit_1(service_env, tmp_path, args, expected):
    path = tmp_path / "tokens.json"
    TokenFile(path).create("bob", "viewer")
    before = path.read_text()
    failed = token(service_env, tmp_path, *args, "--tokens", str(path))
    assert failed.returncode == 1
    assert assert_one_sentence_error(failed.stderr).startswith(expected), failed.stderr
    assert path.read_text() == before


@pytest.mark.parametrize(
    ("contents", "expected"),
    [
        (None, "does not exist: create a token with `liara token create"),
        ("{not json", "is not a Liara token file"),
        ('{"version": 1, "tokens": [{"name": "x"}]}', "is not a Liara token file"),
    ],
)
def test_a_missing_or_malformed_token_file_is_one_sentence(service_env, tmp_path, contents, expected):
    path = tmp_path / "tokens.json"
    if contents is not None:
        path.write_text(contents)
    for args in (("token", "list", "--tokens", str(path)), ("serve", "--port", "0", "--tokens", str(path))):
        failed = run_cli(service_env, tmp_path, *args)
        assert failed.returncode == 1, failed.stdout
        assert expected in assert_one_sentence_error(failed.stderr)


@pytest.mark.parametrize(
    ("mode", "owner", "says"),
    [
        (0o664, None, "can be written by its group (mode 664)"),
        (0o606, None, "can be written by every user (mode 606)"),
        (0o600, 65534, "belongs to another user (uid 65534)"),
    ],
)
def test_serve_refuses_a_token_file_that_others_may_write(service_env, tmp_path, mode, owner, says):
    path = tmp_path / "tokens.json"
    TokenFile(path).create("admin-1", "admin")
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, owner, -1)
    failed = run_cli(service_env, tmp_path, "serve", "--port", "0", "--tokens", str(path))
    assert failed.returncode == 1, failed.stdout
    assert says in assert_one_sentence_error(failed.stderr)
    assert "listening" not in failed.stdout


def test_serve_refuses_a_non_loopback_host_without_tokens(service_env, tmp_path):
    refused = run_cli(service_env, tmp_path, "serve", "--host", "0.0.0.0", "--port", "0")
    assert refused.returncode == 1
    assert assert_one_sentence_error(refused.stderr) == (
        "Error: Without --tokens the service listens on loopback only, not on 0.0.0.0: "
        "create tokens with `liara token create` and pass --tokens FILE."
    )
    assert "listening" not in refused.stdout


async def test_without_tokens_on_loopback_every_request_is_the_local_admin(service_env, service_dir, service_worker):
    server = ServiceProcess(service_env, service_dir)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            started = await http.post("/v1/crises", json=crisis_body(phase("recon-1")))
            assert started.status_code == 201, started.text
            workflow_id = started.json()["workflow_id"]
            outcome = await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60})
            assert outcome.json()["result"]["success"] is True
            rows = (await http.get("/v1/crises", params={"initiated_by": "local", "limit": 200})).json()["crises"]
            assert workflow_id in [row["workflow_id"] for row in rows]
            # The console links to the Web UI of the Temporal server it uses (its port + 1000).
            host, _, port = service_env["TEMPORAL_ADDRESS"].rpartition(":")
            console = (await http.get("/v1/console")).json()
            assert console["web_ui_url"] == f"http://{host}:{int(port) + 1000}", console
            # What keeps it to this machine's programs: no other host name, no other site's page.
            rebound = await http.get("/v1/crises", headers={"Host": "attacker.example"})
            assert "does not name this machine" in assert_problem(rebound, 403, "forbidden")["detail"]
            posted = await http.post(f"/v1/crises/{workflow_id}/cancel", headers={"Origin": "http://attacker.example"})
            assert "are refused" in assert_problem(posted, 403, "forbidden")["detail"]
            own_page = await http.get("/v1/crises", headers={"Origin": server.url})
            assert own_page.status_code == 200
            # Behind a proxy every visitor would come from loopback, and be the local admin.
            for relayed in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}):
                proxied = await http.get("/v1/crises", headers=relayed)
                assert "came through a proxy" in assert_problem(proxied, 403, "forbidden")["detail"]
    finally:
        assert server.stop() == 0, server.output


async def test_without_temporal_the_service_starts_and_answers_503(service_env, tmp_path):
    path = tmp_path / "tokens.json"
    admin = {"Authorization": f"Bearer {TokenFile(path).create('admin-1', 'admin')}"}
    server = ServiceProcess(service_env, tmp_path, "--tokens", str(path), connection=("--address", "127.0.0.1:1"))
    try:
        assert "WARNING - Cannot reach the Temporal server at 127.0.0.1:1" in server.output
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = assert_problem(await http.get("/readyz"), 503, "temporal-unavailable")
            assert ready["detail"].startswith("Cannot reach the Temporal server at 127.0.0.1:1: start it with")
            for method, path_, body in (
                ("GET", "/v1/crises", None),
                ("POST", "/v1/crises", crisis_body(phase("recon-1"))),
                ("GET", "/v1/crises/crisis-workflow-x", None),
                ("GET", "/v1/crises/crisis-workflow-x/events", None),
            ):
                answered = await http.request(method, path_, json=body, headers=admin)
                assert "127.0.0.1:1" in assert_problem(answered, 503, "temporal-unavailable")["detail"]
    finally:
        assert server.stop(signal.SIGTERM) == 0, server.output


async def test_readiness_is_503_once_the_namespace_is_gone(service_env, tmp_path, dev_server, service_worker):
    namespace = f"gone-{uuid.uuid4().hex[:8]}"
    retention = Duration(seconds=86400)
    await dev_server.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=retention)
    )

    async def registered() -> bool:
        try:
            client = await Client.connect(dev_server.address, namespace=namespace)
            await register_search_attributes(client, namespace)
        except RPCError:  # not known to every part of the server yet
            return False
        return True

    await assert_eventually(registered, timeout=30, interval=0.5)
    server = ServiceProcess(service_env, tmp_path, connection=("--namespace", namespace))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await assert_eventually(ready, timeout=30, interval=0.5)
            await dev_server.client.operator_service.delete_namespace(DeleteNamespaceRequest(namespace=namespace))

            async def gone() -> bool:
                answered = await http.get("/readyz")
                if answered.status_code == 200:  # the server has yet to notice
                    return False
                detail = assert_problem(answered, 503, "temporal-unavailable")["detail"]
                assert detail.startswith(f"Namespace {namespace!r} no longer exists on the Temporal server at"), detail
                return True

            await assert_eventually(gone, timeout=30, interval=0.5)
    finally:
        assert server.stop() == 0, server.output
