"""The shipped ``ai-triage`` playbook in a fresh checkout: no llm executor configured, so its
analyst is simulated like every other action, and the crisis still runs to its end through its
gate (the example, tests/liara/test_ai_triage_example.py, runs it with a model).
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import REPO_ROOT
from tests.helpers.cli import cli, until_awaiting

pytestmark = pytest.mark.integration


async def test_the_ai_triage_runs_simulated_without_an_llm_executor(liara_env, liara_worker, tmp_path):
    env = {**liara_env, "LIARA_PLAYBOOKS": str(REPO_ROOT / "playbooks")}
    shown = await cli(env, tmp_path, "playbook", "show", "ai-triage", "--input", "host=web-7")
    assert shown.returncode == 0, shown.stderr
    assert "contain [isolate-host by network-agent] approval" in shown.stdout

    started = await cli(
        env, tmp_path, "trigger", "--playbook", "ai-triage", "--input", "host=web-7", "--initiated-by", "alice"
    )
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()
    await until_awaiting(env, workflow_id, "contain")
    refused = await cli(env, tmp_path, "approve", workflow_id, "contain", "--by", "alice")
    assert refused.returncode == 1 and "four eyes" in refused.stderr  # the starter may not decide
    assert (await cli(env, tmp_path, "approve", workflow_id, "contain", "--by", "bob")).returncode == 0
    waited = await cli(env, tmp_path, "wait", workflow_id, "--json", "--timeout", "60")
    assert waited.returncode == 0, waited.stdout + waited.stderr

    result = json.loads(waited.stdout)
    phases = {phase["phase_id"]: phase for phase in result["phases"]}
    assert result["success"] and [p["status"] for p in phases.values()] == ["completed"] * 3
    assert phases["investigate"]["output"] == {"simulated": True}
    assert phases["contain"]["params"] == {"host": "web-7", "proposal": {"simulated": True}}
    assert phases["report"]["output"]["analysis"] == {"simulated": True}
    assert result.get("usage") is None  # no model was called
