"""A crisis may name only webhooks the configuration where it starts defines: any other name is
refused in one sentence before anything starts (its deliveries would otherwise be retried for a
week), whichever way the crisis is started: ``liara trigger`` with actions or a playbook,
``liara schedule create``, the Python API. (The HTTP API: tests/liara/service.)
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from app.temporal.errors import InvalidCrisisRequestError
from tests.helpers import REPO_ROOT
from tests.helpers.cli import assert_one_sentence_error, cli
from tests.helpers.webhooks import webhook_config

pytestmark = pytest.mark.integration

PLAYBOOK = ("--playbook", str(REPO_ROOT / "playbooks" / "health-check.toml"), "--input", "site=example.org")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A ``liara.toml`` defining the webhooks ``ops`` and ``audit`` (secrets are the notifier's concern)."""
    return webhook_config(tmp_path, "https://hooks.example.org", "ops", "audit")


def unknown(config: Path, name: str) -> str:
    return f"{name!r} is not a webhook of configuration file {config} (it defines audit, ops)"


@pytest.mark.parametrize(
    ("start", "subject"),
    [
        (("trigger", "target-alpha", "recon", "--crisis-id", "{crisis}"), "Invalid crisis request"),
        (("trigger", *PLAYBOOK, "--crisis-id", "{crisis}"), "Playbook health-check"),
        (("schedule", "create", "{crisis}", "target-alpha", "recon", "--cron", "0 3 1 1 *"), "Invalid crisis request"),
    ],
    ids=["trigger", "playbook", "schedule"],
)
async def test_a_webhook_the_configuration_does_not_define_is_refused_before_anything_starts(
    liara_env, tmp_path, config, start, subject
):
    env = {**liara_env, "LIARA_CONFIG": str(config)}
    crisis = f"named-{uuid.uuid4().hex[:12]}"
    args = [arg.format(crisis=crisis) for arg in start]
    refused = await cli(env, tmp_path, *args, "--webhook", "ops", "--webhook", "nope")
    assert refused.returncode == 1
    assert assert_one_sentence_error(refused.stderr) == f"Error: {subject}: --webhook: {unknown(config, 'nope')}."
    if args[0] == "schedule":
        gone = await cli(env, tmp_path, "schedule", "describe", crisis)
        assert "No schedule named" in gone.stderr
    else:
        gone = await cli(env, tmp_path, "status", f"crisis-workflow-{crisis}")
        assert "No crisis workflow" in gone.stderr, "nothing started"


async def test_without_a_configuration_file_no_webhook_can_be_named(liara_env, tmp_path):
    refused = await cli(liara_env, tmp_path, "trigger", "target-alpha", "recon", "--webhook", "ops")
    assert refused.returncode == 1
    assert assert_one_sentence_error(refused.stderr) == (
        "Error: Invalid crisis request: --webhook: 'ops' is not a webhook defined here: no configuration file "
        "defines webhooks (liara.toml in this directory, or the file LIARA_CONFIG names)."
    )


async def test_the_python_api_refuses_an_undefined_webhook(agency, config, monkeypatch):
    monkeypatch.setenv("LIARA_CONFIG", str(config))
    missions = [{"phase_id": "p-1", "agent_id": "a-1", "action": "recon", "target": "target-alpha"}]
    with pytest.raises(InvalidCrisisRequestError) as refused:
        await agency.trigger_crisis_response("target-alpha", missions, webhooks=["nope", "ops", "other"])
    assert str(refused.value) == (
        f"Invalid crisis request: webhooks.0: {unknown(config, 'nope')}; webhooks.2: {unknown(config, 'other')}."
    )
    with pytest.raises(InvalidCrisisRequestError):
        await agency.start_playbook(REPO_ROOT / "playbooks" / "health-check.toml", {"site": "x.org"}, webhooks=["x"])


async def test_a_defined_webhook_is_taken(liara_env, tmp_path, config):
    env = {**liara_env, "LIARA_CONFIG": str(config)}
    started = await cli(env, tmp_path, "trigger", "target-alpha", "recon", "--webhook", "audit", "--json")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["workflow_id"].startswith("crisis-workflow-")
