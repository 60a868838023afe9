"""``liara --api URL --token T``: the crisis commands through a remote service, with no Temporal
settings at all on the operator's side."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import assert_one_sentence_error, run_cli
from tests.temporal.conftest import ServiceProcess, Tokens

pytestmark = pytest.mark.integration


@pytest.fixture
def operator_env(liara_service: ServiceProcess, service_tokens: Tokens) -> dict[str, str]:
    """An operator's shell: the service's address and a token, nothing of Temporal's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}
    return {**env, "LIARA_API_URL": liara_service.url, "LIARA_API_TOKEN": service_tokens.by_name["admin-1"]}


def liara(env: dict[str, str], cwd: Path, *args: str):
    return run_cli(env, cwd, *args, timeout=120)


def test_a_crisis_runs_to_its_end_through_the_service(operator_env, tmp_path):
    missions = tmp_path / "missions.json"
    gated = {"phase_id": "strike-1", "agent_id": "a", "action": "strike", "target": "target-remote"}
    missions.write_text(json.dumps([{**gated, "requires_approval": True}]))
    started = liara(operator_env, tmp_path, "trigger", "target-remote", "--missions-file", str(missions))
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()

    status = liara(operator_env, tmp_path, "status", workflow_id, "--json")
    assert json.loads(status.stdout)["status"] == "running"
    approved = liara(operator_env, tmp_path, "approve", workflow_id, "strike-1")
    assert approved.returncode == 0, approved.stderr
    waited = liara(operator_env, tmp_path, "wait", workflow_id, "--json")
    assert waited.returncode == 0, waited.stderr
    result = json.loads(waited.stdout)
    assert result["success"] and result["phases"][0]["approved_by"] == "admin-1", "the token's name decided"
    listed = json.loads(liara(operator_env, tmp_path, "list", "--target", "target-remote", "--json").stdout)
    assert workflow_id in [row["workflow_id"] for row in listed]


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
