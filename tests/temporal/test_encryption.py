"""Payload encryption end to end: a crisis run by a worker process and the ``liara`` command line
with encryption keys leaves only ciphertext in the server's history, reads back in clear text
with the keys, and the codec server decodes it for holders of its token, for the Web UI's origin
(and no other) and for requests to the host names it serves (and no other).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from app.temporal.codec import new_key_line
from app.temporal.codec_server import TOKENS_ENV
from app.temporal.server import temporal_binary
from tests.helpers import REPO_ROOT
from tests.helpers.cli import assert_one_sentence_error, cli, run_cli
from tests.helpers.processes import ServerProcess, WorkerProcess
from tests.helpers.servers import START_TIMEOUT, free_port

pytestmark = pytest.mark.integration

UI_ORIGIN = "http://localhost:8233"
SECRET_OUTPUT = "launch-code-4711"
CODEC_TOKEN = "codec-token-for-tests-4f1e2d3c"
AUTHORIZED = {"Authorization": f"Bearer {CODEC_TOKEN}"}


@pytest.fixture(scope="module")
def key_lines() -> tuple[str, str]:
    """An old key and the current one: ``current,old`` is a keyring after a rotation."""
    return new_key_line("old-key"), new_key_line("current-key")


@pytest.fixture
def names() -> dict[str, str]:
    """Names unique per run (the shared server may keep crises of earlier runs)."""
    tag = uuid.uuid4().hex[:8]
    return {
        "target": f"target-zeta-{tag}",
        "ok_phase": f"phase-quiet-{tag}",
        "failing_phase": f"phase-loud-{tag}",
        "crisis_id": f"crisis-enc-{tag}",
    }


@pytest.fixture
def keyed_env(liara_env: dict[str, str], key_lines: tuple[str, str]) -> dict[str, str]:
    old, current = key_lines
    return {**liara_env, "LIARA_ENCRYPTION_KEYS": f"{current},{old}"}


class CodecServer(ServerProcess):
    """``liara codec-server --port 0`` as a subprocess; ``url`` once it listens."""

    ready_line = "Codec server listening on "

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        super().__init__("cognition/liara/cli.py", env, cwd, "codec-server", "--port", "0", *args)


@pytest.fixture
def codec_env(key_lines: tuple[str, str]) -> dict[str, str]:
    """The codec server's environment: the keys and one token (no Temporal server needed)."""
    old, current = key_lines
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}
    return {**env, "LIARA_ENCRYPTION_KEYS": f"{current},{old}", TOKENS_ENV: f"{CODEC_TOKEN},second-token-abcdefgh"}


@pytest.fixture
def codec_server(codec_env: dict[str, str], tmp_path: Path) -> Iterator[CodecServer]:
    server = CodecServer(codec_env, tmp_path)
    yield server
    assert server.stop() == 0, server.output


def plain_client(client: Client) -> Client:
    """The same server without any codec: what anyone reading the database sees."""
    return Client(client.service_client, namespace=client.namespace, data_converter=pydantic_data_converter)


def event_payloads(history: WorkflowHistory) -> dict[str, list[Payload]]:
    """The stored payloads of the crisis: workflow input and result, activity inputs and results,
    and failures' encoded attributes."""
    found: dict[str, list[Payload]] = {"input": [], "result": [], "activity": [], "failure": []}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            found["input"] += event.workflow_execution_started_event_attributes.input.payloads
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            found["result"] += event.workflow_execution_completed_event_attributes.result.payloads
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            found["activity"] += event.activity_task_scheduled_event_attributes.input.payloads
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            found["activity"] += event.activity_task_completed_event_attributes.result.payloads
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            failure = event.activity_task_failed_event_attributes.failure
            assert failure.message == "Encoded failure", failure  # the agent's message is not in clear
            found["failure"].append(failure.encoded_attributes)
    return found


def missions(names: dict[str, str]) -> list[dict[str, Any]]:
    target = names["target"]
    return [
        {
            "phase_id": names["ok_phase"],
            "agent_id": "agent-001",
            "action": "deploy",
            "target": target,
            "priority": 1,
            "params": {"output": {"code": SECRET_OUTPUT}},
        },
        {
            "phase_id": names["failing_phase"],
            "agent_id": "agent-002",
            "action": "secure",
            "target": target,
            "priority": 2,
            "params": {"fail": "permanent"},
        },
    ]


@pytest.fixture
async def encrypted_crisis(dev_server, keyed_env, names, tmp_path) -> tuple[str, WorkflowHistory]:
    """A finished crisis (one phase completed, one failed) run with the keys; its raw history."""
    missions_file = tmp_path / "missions.json"
    missions_file.write_text(json.dumps(missions(names)))
    worker = WorkerProcess("cognition/liara/worker.py", keyed_env, tmp_path)
    try:
        started = await cli(
            keyed_env,
            tmp_path,
            "trigger",
            names["target"],
            "--missions-file",
            str(missions_file),
            "--crisis-id",
            names["crisis_id"],
            "--json",
        )
        assert started.returncode == 0, started.stderr
        workflow_id = json.loads(started.stdout)["workflow_id"]
        handle = plain_client(dev_server.client).get_workflow_handle(workflow_id)
        # The raw result never decodes without the key, so wait on the server's own status.
        waited = await cli(keyed_env, tmp_path, "wait", workflow_id, "--json")
        assert waited.returncode == 3, waited.stderr  # one phase failed: finished, not successful
    finally:
        assert worker.stop() == 0, worker.output
    info_lines = [line for line in worker.lines if line.startswith("INFO")]
    assert info_lines and not [line for line in info_lines if SECRET_OUTPUT in line or "Simulated" in line]
    return workflow_id, await handle.fetch_history()


async def test_the_server_stores_ciphertext_and_the_cli_with_keys_reads_plaintext(
    dev_server, keyed_env, liara_env, names, encrypted_crisis, tmp_path
) -> None:
    workflow_id, history = encrypted_crisis

    stored = event_payloads(history)
    assert len(stored["input"]) == 1 and len(stored["result"]) == 1
    assert stored["activity"] and len(stored["failure"]) >= 1
    secrets = [names["ok_phase"].encode(), names["failing_phase"].encode(), SECRET_OUTPUT.encode()]
    for kind, payloads in stored.items():
        for payload in payloads:
            assert payload.metadata["encoding"] == b"binary/encrypted", (kind, payload.metadata)
            assert payload.metadata["encryption-key-id"] == b"current-key"
            for secret in [names["target"].encode(), *secrets]:
                assert secret not in payload.SerializeToString(), (kind, secret)
    # Phase ids and outputs appear nowhere in the history; the target does, in ids and search
    # attributes, which are not encrypted.
    raw_history = b"".join(event.SerializeToString() for event in history.events)
    for secret in secrets:
        assert secret not in raw_history

    waited = await cli(keyed_env, tmp_path, "wait", workflow_id, "--json")
    assert waited.returncode == 3, waited.stderr
    result = json.loads(waited.stdout)
    assert result["target"] == names["target"]
    ok, failed = result["phases"]
    assert (ok["phase_id"], ok["status"], ok["output"]) == (names["ok_phase"], "completed", {"code": SECRET_OUTPUT})
    assert (failed["phase_id"], failed["status"]) == (names["failing_phase"], "failed")
    assert failed["error"] == f"Simulated permanent failure of phase {names['failing_phase']}."

    # Without the keys the crisis cannot be read: one sentence, no traceback.
    unkeyed = await cli(liara_env, tmp_path, "wait", workflow_id, "--json")
    assert unkeyed.returncode == 1, unkeyed.stderr
    assert "Traceback" not in unkeyed.stderr
    assert SECRET_OUTPUT not in unkeyed.stdout + unkeyed.stderr


async def test_after_a_rotation_old_crises_still_read_and_without_the_old_key_they_fail_clearly(
    keyed_env, key_lines, encrypted_crisis, tmp_path
) -> None:
    workflow_id, _ = encrypted_crisis
    old, current = key_lines
    rotated_env = {**keyed_env, "LIARA_ENCRYPTION_KEYS": f"{new_key_line('next-key')},{current}"}
    dropped_env = {**keyed_env, "LIARA_ENCRYPTION_KEYS": f"{new_key_line('next-key')},{old}"}

    rotated = await cli(rotated_env, tmp_path, "wait", workflow_id, "--json")
    dropped = await cli(dropped_env, tmp_path, "wait", workflow_id, "--json")

    assert rotated.returncode == 3, rotated.stderr
    assert json.loads(rotated.stdout)["crisis_id"]
    assert dropped.returncode == 1, dropped.stderr
    assert "Traceback" not in dropped.stderr
    assert "key id 'current-key', which is not in the keyring (next-key, old-key)" in dropped.stderr


async def test_the_codec_server_decodes_history_payloads_for_the_web_ui(codec_server, names, encrypted_crisis) -> None:
    _, history = encrypted_crisis
    stored = event_payloads(history)
    body = {"payloads": [json_format.MessageToDict(p) for p in (*stored["input"], *stored["failure"])]}

    async with httpx.AsyncClient(base_url=codec_server.url, timeout=30, headers=AUTHORIZED) as http:
        decoded = await http.post("/decode", json=body, headers={"Origin": UI_ORIGIN, "X-Namespace": "any-namespace"})
        assert decoded.status_code == 200, decoded.text
        assert decoded.headers["access-control-allow-origin"] == UI_ORIGIN
        payloads = decoded.json()["payloads"]
        assert len(payloads) == len(body["payloads"])
        for payload in payloads:
            assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
        request = json.loads(base64.b64decode(payloads[0]["data"]))
        assert [m["phase_id"] for m in request["missions"]] == [names["ok_phase"], names["failing_phase"]]
        assert request["target_member"] == names["target"]
        failure = json.loads(base64.b64decode(payloads[1]["data"]))
        assert failure["message"] == f"Simulated permanent failure of phase {names['failing_phase']}."

        # /encode then /decode is the identity, with the current key.
        encoded = await http.post("/encode", json={"payloads": payloads})
        assert encoded.status_code == 200, encoded.text
        [reencoded] = encoded.json()["payloads"][:1]
        assert base64.b64decode(reencoded["metadata"]["encryption-key-id"]) == b"current-key"
        again = await http.post("/decode", json=encoded.json())
        assert again.json()["payloads"] == payloads


#: What a browser asks before the Web UI's POST (it sends the token, JSON and the namespace).
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
}


async def test_the_codec_server_allows_cors_with_the_token_from_the_ui_origin_only(codec_server) -> None:
    payload = json_format.MessageToDict(pydantic_data_converter.payload_converter.to_payloads([SECRET_OUTPUT])[0])
    as_ui = {"Origin": UI_ORIGIN, "X-Namespace": "default", **AUTHORIZED}
    async with httpx.AsyncClient(base_url=codec_server.url, timeout=30) as http:
        allowed = await http.options("/decode", headers={"Origin": UI_ORIGIN, **PREFLIGHT})
        encoded = await http.post("/encode", json={"payloads": [payload]}, headers=as_ui)
        decoded = await http.post("/decode", json=encoded.json(), headers=as_ui)
        refused = await http.options("/decode", headers={"Origin": "http://evil.example", **PREFLIGHT})
        foreign = {"Origin": "http://evil.example", **AUTHORIZED}
        foreign_post = await http.post("/decode", json=encoded.json(), headers=foreign)

    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    allowed_headers = {h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-namespace"} <= allowed_headers
    assert encoded.status_code == 200, encoded.text
    assert encoded.headers["access-control-allow-origin"] == UI_ORIGIN
    [sealed] = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
    assert SECRET_OUTPUT.encode() not in base64.b64decode(sealed["data"])
    assert decoded.status_code == 200, decoded.text
    assert decoded.headers["access-control-allow-origin"] == UI_ORIGIN
    assert decoded.json()["payloads"] == [payload]
    assert "access-control-allow-origin" not in refused.headers
    assert refused.status_code >= 400
    # Answered (the token is right) but without CORS headers: a browser keeps it from the page.
    assert "access-control-allow-origin" not in foreign_post.headers


def assert_json_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    assert set(response.json()) == {"error"}
    assert "\n" not in message and message.endswith(".") and message.count(". ") == 0, message
    return message


async def test_the_codec_server_refuses_requests_without_the_token(codec_server) -> None:
    body = {"payloads": []}
    async with httpx.AsyncClient(base_url=codec_server.url, timeout=30) as http:
        missing = await http.post("/decode", json=body, headers={"Origin": UI_ORIGIN})
        wrong = await http.post(
            "/decode", json=body, headers={"Authorization": "Bearer codec-token-for-tests-4f1e2d3d"}
        )
        not_bearer = await http.post("/encode", json=body, headers={"Authorization": f"Basic {CODEC_TOKEN}"})
        empty = await http.post("/encode", json=body, headers={"Authorization": "Bearer"})
        second = await http.post("/decode", json=body, headers={"Authorization": "Bearer second-token-abcdefgh"})

    assert "Authorization: Bearer <token>" in assert_json_error(missing, 401)
    assert missing.headers["www-authenticate"].startswith("Bearer ")
    assert missing.headers["access-control-allow-origin"] == UI_ORIGIN  # the UI can show why
    assert "not one of this codec server's tokens" in assert_json_error(wrong, 401)
    assert wrong.headers["www-authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    for refused in (not_bearer, empty):
        assert_json_error(refused, 401)
        assert refused.headers["www-authenticate"].startswith("Bearer ")
    assert second.status_code == 200, second.text  # every configured token works
    assert second.json() == {}  # no payloads in, none out (proto-JSON leaves the empty list out)


async def test_the_codec_server_refuses_hosts_it_was_not_told_to_serve(codec_server, codec_env, tmp_path) -> None:
    port = codec_server.url.rsplit(":", 1)[1]
    body = {"payloads": []}
    async with httpx.AsyncClient(base_url=codec_server.url, timeout=30, headers=AUTHORIZED) as http:
        rebound = await http.post("/decode", json=body, headers={"Host": f"evil.example:{port}"})
        rebound_preflight = await http.options(
            "/decode", headers={"Host": "evil.example", "Origin": UI_ORIGIN, **PREFLIGHT}
        )
        by_name = {name: await http.post("/decode", json=body, headers={"Host": name}) for name in (
            f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST",
        )}  # fmt: skip
    assert "'evil.example:" in assert_json_error(rebound, 400)
    assert "--allowed-host" in rebound.json()["error"]
    assert_json_error(rebound_preflight, 400)
    assert "access-control-allow-origin" not in rebound_preflight.headers
    for name, answer in by_name.items():
        assert answer.status_code == 200, (name, answer.text)

    named = CodecServer(codec_env, tmp_path, "--allowed-host", "codec.example.test", "--allowed-host", "ops.example")
    try:
        async with httpx.AsyncClient(base_url=named.url, timeout=30, headers=AUTHORIZED) as http:
            served = await http.post("/decode", json=body, headers={"Host": "codec.example.test:8443"})
            other = await http.post("/decode", json=body, headers={"Host": "evil.example"})
    finally:
        assert named.stop() == 0, named.output
    assert served.status_code == 200, served.text
    assert_json_error(other, 400)


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (
            None,
            "Error: No codec server token is configured: set LIARA_CODEC_SERVER_TOKENS or LIARA_CODEC_SERVER_TOKEN_",
        ),
        ("too-short", "Error: Token 1 of LIARA_CODEC_SERVER_TOKENS is not at least 16"),
    ],
    ids=["none", "short"],
)
def test_the_codec_server_does_not_start_without_a_usable_token(codec_env, tmp_path, tokens, expected) -> None:
    env = {key: value for key, value in codec_env.items() if key != TOKENS_ENV}
    if tokens is not None:
        env[TOKENS_ENV] = tokens
    done = run_cli(env, tmp_path, "codec-server", "--port", "0", timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert assert_one_sentence_error(done.stderr).startswith(expected), done.stderr
    assert CodecServer.ready_line not in done.stdout


async def test_the_temporal_cli_reads_an_encrypted_crisis_through_the_codec_server(
    codec_server, dev_server, encrypted_crisis, tmp_path
) -> None:
    workflow_id, _ = encrypted_crisis
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}
    show = [temporal_binary(), "workflow", "show", "-w", workflow_id, "--address", dev_server.address]
    show += ["--output", "json", "--codec-endpoint", codec_server.url]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*show, *extra], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    with_token = await asyncio.to_thread(run, "--codec-auth", f"Bearer {CODEC_TOKEN}")
    without = await asyncio.to_thread(run)

    assert with_token.returncode == 0, with_token.stderr
    assert SECRET_OUTPUT.encode() in b"".join(payload_data(json.loads(with_token.stdout)))
    # Without the token the codec server answers 401 and the CLI shows nothing.
    assert without.returncode != 0, without.stdout
    assert SECRET_OUTPUT not in without.stdout + without.stderr


def payload_data(value: Any) -> Iterator[bytes]:
    """The decoded ``data`` of every payload in ``temporal workflow show --output json``."""
    if isinstance(value, dict):
        if set(value) >= {"metadata", "data"} and isinstance(value["data"], str):
            yield base64.b64decode(value["data"])
        for item in value.values():
            yield from payload_data(item)
    elif isinstance(value, list):
        for item in value:
            yield from payload_data(item)


def test_setup_temporal_start_points_the_web_ui_at_the_codec_server(tmp_path: Path) -> None:
    data_dir, port, ui_port = tmp_path / "temporal", free_port(), free_port()
    script = [sys.executable, str(REPO_ROOT / "scripts/setup_temporal.py")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LIARA_"))}

    def run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*script, *args, "--data-dir", str(data_dir)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    try:
        started = run(
            "start", "--port", str(port), "--ui-port", str(ui_port), "--ui-codec-endpoint", "http://localhost:8081",
            timeout=START_TIMEOUT,
        )  # fmt: skip
        assert started.returncode == 0, started.stdout + started.stderr
        settings = httpx.get(f"http://localhost:{ui_port}/api/v1/settings", timeout=10).json()
    finally:
        stopped = run("stop", timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert settings["Codec"]["Endpoint"] == "http://localhost:8081"
