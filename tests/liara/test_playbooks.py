"""Playbooks: the shipped ones checked and run end to end, and what a user gets wrong.

The runs go through the command line (``liara trigger --playbook NAME --input ...``) against a
real dev server and a real worker process, every action simulated.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from cognition.liara import playbooks
from tests.helpers import REPO_ROOT
from tests.helpers.cli import assert_one_sentence_error, cli, until_awaiting
from tests.helpers.processes import WorkerProcess

pytestmark = pytest.mark.integration

SHIPPED = REPO_ROOT / "playbooks"


@pytest.fixture
def playbook_env(liara_env: dict[str, str]) -> dict[str, str]:
    return {**liara_env, "LIARA_PLAYBOOKS": str(SHIPPED)}


async def started(env: dict[str, str], cwd: Path, *args: str) -> str:
    triggered = await cli(env, cwd, "trigger", *args)
    assert triggered.returncode == 0, triggered.stderr
    return triggered.stdout.strip()


async def result_of(env: dict[str, str], cwd: Path, workflow_id: str) -> dict[str, Any]:
    waited = await cli(env, cwd, "wait", workflow_id, "--json", "--timeout", "60")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    return json.loads(waited.stdout)


def by_phase(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {phase["phase_id"]: phase for phase in result["phases"]}


@pytest.mark.parametrize("path", playbooks.listed(SHIPPED), ids=lambda path: path.name)
def test_every_shipped_playbook_is_sound(path: Path) -> None:
    assert playbooks.problems(path) == []


async def test_the_incident_response_runs_its_investigation_side_by_side_and_waits_for_containment(
    playbook_env, liara_worker, tmp_path
):
    workflow_id = await started(
        playbook_env, tmp_path, "--playbook", "incident-response", "--input", "host=web-7", "--input", "ticket=INC-42"
    )
    await until_awaiting(playbook_env, workflow_id, "contain")
    approved = await cli(playbook_env, tmp_path, "approve", workflow_id, "contain", "--by", "duty-lead")
    assert approved.returncode == 0, approved.stderr
    result = await result_of(playbook_env, tmp_path, workflow_id)

    phases = by_phase(result)
    assert result["success"] and all(p["status"] == "completed" for p in phases.values())
    assert result["target"] == "web-7"
    assert phases["contain"]["params"] == {"host": "web-7", "evidence": "logs-web-7.tar.gz"}
    assert phases["contain"]["approved_by"] == "duty-lead"
    assert phases["report"]["output"] == {"summary": "high incident on web-7 (ticket INC-42): 3 indicators removed"}
    assert phases["collect-logs"]["depends_on"] == ["triage"]
    record = json.loads((Path(playbook_env["LIARA_CRISIS_DIR"]) / f"{result['crisis_id']}.json").read_text())
    assert record["playbook"] == "incident-response"


async def test_the_credential_rotation_waits_for_its_quorum(playbook_env, liara_worker, tmp_path):
    workflow_id = await started(
        playbook_env, tmp_path, "--playbook", "credential-rotation", "--input", "service=billing"
    )
    await until_awaiting(playbook_env, workflow_id, "rotate")
    first = await cli(playbook_env, tmp_path, "approve", workflow_id, "rotate", "--by", "alice")
    assert first.stdout.strip().endswith("approved by alice (1 of 2 approvals)"), first.stdout
    second = await cli(playbook_env, tmp_path, "approve", workflow_id, "rotate", "--by", "bob")
    assert second.returncode == 0, second.stderr
    result = await result_of(playbook_env, tmp_path, workflow_id)
    rotate = by_phase(result)["rotate"]
    assert (rotate["status"], rotate["approved_by"], rotate["params"]) == ("completed", "alice, bob", {"count": 3})
    assert [p["phase_id"] for p in result["phases"]] == ["inventory", "rotate", "verify", "revoke-old"]


async def test_the_health_check_sums_up_three_checks(playbook_env, liara_worker, tmp_path):
    workflow_id = await started(playbook_env, tmp_path, "--playbook", "health-check", "--input", "site=example.org")
    result = await result_of(playbook_env, tmp_path, workflow_id)
    assert by_phase(result)["summary"]["output"] == {"line": "example.org: dns true, tls 42 days, http 200"}


#: A command agent that answers with what it was sent: the params and whether it undoes a phase.
ECHO_AGENT = """
import json, sys
mission = json.load(sys.stdin)
print(json.dumps({"params": mission["params"], "compensation": mission["compensation"]}))
"""


async def test_a_failure_after_the_containment_releases_the_host_it_isolated(playbook_env, tmp_path):
    config = tmp_path / "liara.toml"
    config.write_text(
        "[agents.actions]\n"
        'eradicate = "broken-endpoint"\n'
        'release-isolation = "echo"\n'
        "[executors.broken-endpoint]\n"
        'type = "command"\n'
        f"argv = {json.dumps([sys.executable, '-c', 'import sys; sys.exit(3)'])}\n"
        "non_retryable_exit_codes = [3]\n"
        "[executors.echo]\n"
        'type = "command"\n'
        f"argv = {json.dumps([sys.executable, '-c', ECHO_AGENT])}\n"
    )
    env = {**playbook_env, "LIARA_CONFIG": str(config)}
    worker = await asyncio.to_thread(WorkerProcess, "cognition/liara/worker.py", env, tmp_path)
    try:
        workflow_id = await started(env, tmp_path, "--playbook", "incident-response", "--input", "host=web-7")
        await until_awaiting(env, workflow_id, "contain")
        assert (await cli(env, tmp_path, "approve", workflow_id, "contain", "--by", "duty-lead")).returncode == 0
        waited = await cli(env, tmp_path, "wait", workflow_id, "--json", "--timeout", "60")
    finally:
        assert worker.stop() == 0, worker.output
    assert waited.returncode == 3, waited.stdout + waited.stderr  # a phase failed
    result = json.loads(waited.stdout)

    statuses = {phase_id: phase["status"] for phase_id, phase in by_phase(result).items()}
    assert statuses == {
        "triage": "completed",
        "collect-logs": "completed",
        "scan-host": "completed",
        "contain": "completed",
        "eradicate": "failed",
        "report": "skipped",
    }
    [release] = result["compensations"]
    assert (release["action"], release["status"]) == ("release-isolation", "completed")
    # The compensation gets the params its phase ran with, references resolved.
    assert release["output"] == {"params": {"host": "web-7", "evidence": "logs-web-7.tar.gz"}, "compensation": True}


#: A playbook with a typed input, a default and a reference between phases, written as JSON and TOML.
PORTABLE: dict[str, Any] = {
    "name": "portable",
    "description": "Probe a site, then report.",
    "inputs": {
        "site": {"type": "string", "required": True, "description": "The site"},
        "retries": {"type": "integer", "default": 2},
    },
    "target_member": "${inputs.site}",
    "options": {"max_parallel": 2},
    "phases": [
        {
            "phase_id": "probe",
            "agent_id": "probe-agent",
            "action": "probe",
            "target": "${inputs.site}",
            "depends_on": [],
            "params": {"output": {"code": 200}},
        },
        {
            "phase_id": "report",
            "agent_id": "report-agent",
            "action": "report",
            "target": "${inputs.site}",
            "depends_on": ["probe"],
            "params": {
                "output": {
                    "line": "${inputs.site} answered ${phases.probe.output.code}",
                    "retries": "${inputs.retries}",
                }
            },
        },
    ],
}
PORTABLE_TOML = """
name = "portable"
description = "Probe a site, then report."
target_member = "${inputs.site}"

[inputs.site]
type = "string"
required = true
description = "The site"

[inputs.retries]
type = "integer"
default = 2

[options]
max_parallel = 2

[[phases]]
phase_id = "probe"
agent_id = "probe-agent"
action = "probe"
target = "${inputs.site}"
depends_on = []
params = { output = { code = 200 } }

[[phases]]
phase_id = "report"
agent_id = "report-agent"
action = "report"
target = "${inputs.site}"
depends_on = ["probe"]
params = { output = { line = "${inputs.site} answered ${phases.probe.output.code}", retries = "${inputs.retries}" } }
"""


@pytest.mark.parametrize("suffix", [".json", ".toml"])
async def test_a_playbook_file_is_triggered_by_its_path(playbook_env, liara_worker, tmp_path, suffix):
    assert tomllib.loads(PORTABLE_TOML) == PORTABLE
    playbook = tmp_path / "elsewhere" / f"portable{suffix}"
    playbook.parent.mkdir()
    playbook.write_text(json.dumps(PORTABLE) if suffix == ".json" else PORTABLE_TOML)
    assert playbooks.problems(playbook) == []

    workflow_id = await started(
        playbook_env, tmp_path, "--playbook", str(playbook), "--input", "site=example.org", "--input", "retries=5"
    )
    result = await result_of(playbook_env, tmp_path, workflow_id)
    assert result["success"] and result["target"] == "example.org"
    assert by_phase(result)["report"]["output"] == {"line": "example.org answered 200", "retries": 5}
    record = json.loads((Path(playbook_env["LIARA_CRISIS_DIR"]) / f"{result['crisis_id']}.json").read_text())
    assert record["playbook"] == "portable"


async def test_the_python_api_starts_a_playbook_by_name(agency, monkeypatch, dev_server, task_queue, tmp_path):
    from tests.helpers.workflows import worker

    monkeypatch.setenv("LIARA_PLAYBOOKS", str(SHIPPED))
    async with worker(dev_server, task_queue, tmp_path):
        workflow_id = await agency.trigger_playbook("health-check", {"site": "api.example.org"}, "tester")
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)
    assert result["success"] and result["target"] == "api.example.org"


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (("--playbook", "incident-response"), "Playbook incident-response needs input 'host'"),
        (
            ("--playbook", "incident-response", "--input", "host=web-7", "--input", "colour=red"),
            "Playbook incident-response has no input 'colour' (its inputs: host, severity, ticket).",
        ),
        (
            ("--playbook", "credential-rotation", "--input", "service=billing", "--input", "approvers=two"),
            "Input 'approvers' of playbook credential-rotation is integer, not 'two'.",
        ),
        (("--playbook", "no-such-playbook"), "No playbook 'no-such-playbook' in"),
        (
            # Said once, of the input: not of the target and each of the seven phases it went into.
            ("--playbook", "incident-response", "--input", "host=../etc"),
            "Error: Invalid crisis request: input 'host' of playbook incident-response is not a valid target "
            "('../etc'): use only letters, digits, '.', '_' and '-', starting with a letter or digit.",
        ),
    ],
)
async def test_a_playbook_the_user_gets_wrong_is_one_sentence(playbook_env, tmp_path, args, sentence):
    refused = await cli(playbook_env, tmp_path, "trigger", *args)
    assert refused.returncode == 1
    assert sentence in assert_one_sentence_error(refused.stderr)


async def test_inputs_without_a_playbook_are_a_usage_error(playbook_env, tmp_path):
    refused = await cli(playbook_env, tmp_path, "trigger", "target-alpha", "recon", "--input", "host=x")
    assert refused.returncode == 2
    assert "inputs are for --playbook" in refused.stderr


async def problems_told(env: dict[str, str], cwd: Path, text: str) -> list[str]:
    """What ``liara playbook validate`` says of a YAML playbook with ``text``, which must be wrong."""
    broken = cwd / "broken.yaml"
    broken.write_text(text)
    checked = await cli(env, cwd, "playbook", "validate", str(broken))
    assert checked.returncode == 1
    return checked.stderr.splitlines()


async def test_validate_prints_every_problem_with_its_place(playbook_env, tmp_path):
    told = await problems_told(
        playbook_env,
        tmp_path,
        "name: broken\n"
        "target_member: site\n"
        "phases:\n"
        "  - {phase_id: a, agent_id: a, action: a, target: site, depends_on: [b],\n"
        "     params: {x: '${phases.c.output.k}'}}\n"
        "  - {phase_id: b, agent_id: b, action: b, target: site, depends_on: [a], colour: red}\n"
        "  - {phase_id: c, agent_id: c, action: c, target: site, priority: -1, params: {y: '${inputs.nope}'}}\n",
    )
    assert told == [
        "phases[1].colour: Extra inputs are not permitted",
        "phases[2].priority: Input should be greater than or equal to 0",
        "phases: phases depend on each other in a circle: a -> b -> a",
        # A circle does not hide the references, and a phase with a bad field is still a phase.
        "phases: phase 'a' refers to ${phases.c.output.k}, but it does not depend on it",
        "phases: phase 'c' refers to ${inputs.nope}, but the crisis has no input 'nope'",
    ]
    not_yaml = tmp_path / "not.yaml"
    not_yaml.write_text("name: [unclosed\n")
    unreadable = await cli(playbook_env, tmp_path, "playbook", "validate", str(not_yaml))
    assert unreadable.returncode == 1 and "is not valid YAML" in unreadable.stderr


async def test_validate_goes_on_past_a_problem_of_the_whole_playbook(playbook_env, tmp_path):
    told = await problems_told(
        playbook_env,
        tmp_path,
        "name: broken\n"
        "colour: red\n"
        "inputs:\n"
        "  count: {type: integer, default: abc}\n"
        "  host: {type: string, required: true}\n"
        "target_member: ${inputs.host}\n"
        "options: {max_paralel: 3, failure_policy: explode, crisis_id: always-this-one}\n"
        "phases:\n"
        "  - {phase_id: a, agent_id: a, action: a, target: site, depends_on: [ghost],\n"
        "     params: {x: '${inputs.nope}', n: '${inputs.count}'}}\n"
        "  - {phase_id: b, agent_id: b, action: b, target: site, depends_on: [c],\n"
        "     params: {y: '${phases.d.output.k}'}}\n"
        "  - {phase_id: c, agent_id: c, action: c, target: site, depends_on: [], priority: -1}\n",
    )
    assert told == [
        "inputs.count.default: the input is integer, not 'abc'",
        "options.crisis_id: not an option: the playbook or whoever starts it gives it",
        "colour: Extra inputs are not permitted",
        "phases[2].priority: Input should be greater than or equal to 0",
        "options.failure_policy: Input should be 'continue' or 'abort'",
        "options.max_paralel: Extra inputs are not permitted",
        "phases: phase 'a' depends on 'ghost', which is not a phase of the crisis",
        "phases: phase 'a' refers to ${inputs.nope}, but the crisis has no input 'nope'",
        "phases: phase 'b' refers to ${phases.d.output.k}, but 'd' is not a phase of the crisis",
    ]


async def test_a_default_of_the_wrong_type_is_refused_when_the_playbook_starts(playbook_env, tmp_path):
    playbook = tmp_path / "counted.yaml"
    playbook.write_text(
        "name: counted\n"
        "inputs:\n"
        "  count: {type: integer, default: abc}\n"
        "target_member: site\n"
        "phases:\n"
        "  - {phase_id: a, agent_id: a, action: a, target: site, params: {n: '${inputs.count}'}}\n"
    )
    refused = await cli(playbook_env, tmp_path, "trigger", "--playbook", str(playbook))
    assert refused.returncode == 1
    assert assert_one_sentence_error(refused.stderr) == (
        f"Error: Playbook {playbook}: inputs.count.default: the input is integer, not 'abc'."
    )


async def test_show_prints_the_plan(playbook_env, tmp_path):
    shown = await cli(
        playbook_env, tmp_path, "playbook", "show", str(SHIPPED / "incident-response.yaml"), "--input", "host=web-7"
    )
    assert shown.returncode == 0, shown.stderr
    assert "Target web-7; 6 phases, a graph, 2 at once; failure policy abort" in shown.stdout
    assert "contain [isolate-host by network-agent] approval (also after scan-host)" in shown.stdout


async def test_a_playbook_cannot_make_its_crises_reruns(playbook_env, tmp_path):
    """What a rerun reuses comes from the crisis it reruns, never from a playbook's options."""
    told = await problems_told(
        playbook_env,
        tmp_path,
        "name: sneaky\n"
        "target_member: site\n"
        "options: {reused: {a: {workflow_id: crisis-workflow-x, output: {}}}, rerun_of: {workflow_id: x}}\n"
        "phases:\n"
        "  - {phase_id: a, agent_id: a, action: a, target: site}\n",
    )
    assert told == [
        "options.reused: not an option: the playbook or whoever starts it gives it",
        "options.rerun_of: not an option: the playbook or whoever starts it gives it",
    ]
