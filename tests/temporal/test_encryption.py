"""Payload encryption end to end: a crisis run by a worker process and the ``liara`` command line
with encryption keys leaves only ciphertext in the server's history, reads back in clear text
with the keys, and the codec server decodes it for the Web UI's origin (and no other).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
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
from tests.conftest import REPO_ROOT, WorkerProcess, cli
from tests.temporal.test_setup_temporal import START_TIMEOUT, free_port

pytestmark = pytest.mark.integration

UI_ORIGIN = "http://localhost:8233"
CODEC_READY = "Codec server listening on "
SECRET_OUTPUT = "launch-code-4711"


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


class CodecServer:
    """``liara codec-server --port 0`` as a subprocess; ``url`` once it listens."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "cognition/liara/cli.py"), "codec-server", "--port", "0", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.url: str | None = None
        ready = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                if line.startswith(CODEC_READY):
                    self.url = line[len(CODEC_READY) :].strip()
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not ready.wait(timeout=60) or self.url is None:
            self.stop(signal.SIGKILL)
            raise AssertionError("codec server did not start:\n" + "\n".join(self.lines))

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


@pytest.fixture
def codec_server(keyed_env: dict[str, str], tmp_path: Path) -> Iterator[CodecServer]:
    server = CodecServer(keyed_env, tmp_path)
    yield server
    assert server.stop() == 0, "\n".join(server.lines)


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

    async with httpx.AsyncClient(base_url=codec_server.url, timeout=30) as http:
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


async def test_the_codec_server_allows_cors_from_the_ui_origin_only(codec_server) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-namespace"}
    async with httpx.AsyncClient(base_url=codec_server.url, timeout=30) as http:
        allowed = await http.options("/decode", headers={"Origin": UI_ORIGIN, **preflight})
        refused = await http.options("/decode", headers={"Origin": "http://evil.example", **preflight})
        foreign_post = await http.post("/decode", json={"payloads": []}, headers={"Origin": "http://evil.example"})

    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    allowed_headers = {h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "x-namespace"} <= allowed_headers
    assert "access-control-allow-origin" not in refused.headers
    assert refused.status_code >= 400
    assert "access-control-allow-origin" not in foreign_post.headers  # a browser would not let the page read it


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
