"""``liara rerun`` and ``liara diff`` end to end: a real dev server, a worker process whose agents
are commands that note each run in a file, and the command line as a user runs it. A rerun runs
only the phases from the one it reruns from (the others' agents are not called again, and no
``perform_agent_mission`` is scheduled for them), reuses their outputs as recorded, and the two
records name each other; ``diff`` shows what a changed param changed. Bad input is one sentence.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from app.temporal.workflows import CrisisResponseWorkflow
from scripts.scripted_model_server import Answer, ScriptedModelServer, ToolCalls
from tests.helpers.cli import assert_one_sentence_error, cli, until_awaiting
from tests.helpers.model_agents import KEY, USAGE, agent_env, script, triage
from tests.helpers.processes import WorkerProcess

pytestmark = pytest.mark.integration

#: The agent of action ``count``: notes the phase it ran in the file its argument names, and
#: reports its phase, params and context.
COUNTER = """
import json, sys
mission = json.load(sys.stdin)
with open(sys.argv[1], "a") as runs:
    runs.write(mission["phase_id"] + "\\n")
print(json.dumps({"phase": mission["phase_id"], "params": mission["params"], "context": mission["context"]}))
"""


@pytest.fixture
def runs_file(tmp_path: Path) -> Path:
    return tmp_path / "runs.txt"


@pytest.fixture
def counting_env(liara_env: dict[str, str], tmp_path: Path, runs_file: Path) -> Iterator[dict[str, str]]:
    """A worker whose action ``count`` runs the counting agent; the commands' environment."""
    config = tmp_path / "liara.toml"
    argv = [sys.executable, "-c", COUNTER, str(runs_file)]
    config.write_text(
        f'[agents.actions]\ncount = "counter"\n\n[executors.counter]\ntype = "command"\nargv = {json.dumps(argv)}\n'
    )
    env = {**liara_env, "LIARA_CONFIG": str(config)}
    worker = WorkerProcess("cognition/liara/worker.py", env, tmp_path)
    yield env
    worker.stop()


def counted(phase_id: str, **extra: Any) -> dict[str, Any]:
    return {"phase_id": phase_id, "agent_id": f"{phase_id}-agent", "action": "count", "target": "web-1", **extra}


def runs(runs_file: Path) -> list[str]:
    return runs_file.read_text().split() if runs_file.exists() else []


async def ran(env: dict[str, str], tmp_path: Path, *phases: dict[str, Any]) -> str:
    """Start a crisis of ``phases`` and wait for its end: its workflow id."""
    missions = tmp_path / f"missions-{uuid.uuid4().hex[:6]}.json"
    missions.write_text(json.dumps(list(phases)))
    started = await cli(env, tmp_path, "trigger", "web-1", "--missions-file", str(missions))
    assert started.returncode == 0, started.stderr
    workflow_id = started.stdout.strip()
    waited = await cli(env, tmp_path, "wait", workflow_id, "--json")
    assert waited.returncode in (0, 3), waited.stderr
    return workflow_id


async def shown_json(env: dict[str, str], tmp_path: Path, *args: str) -> Any:
    done = await cli(env, tmp_path, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


async def agents_scheduled(client: Client, workflow_id: str) -> int:
    """How many ``perform_agent_mission`` activities the crisis scheduled."""
    count = 0
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            count += event.activity_task_scheduled_event_attributes.activity_type.name == "perform_agent_mission"
    return count


def crisis_id_of(workflow_id: str) -> str:
    return workflow_id.removeprefix("crisis-workflow-")


async def test_a_rerun_runs_only_the_phases_from_its_own_and_the_records_name_each_other(
    counting_env, tmp_path, runs_file, dev_server
):
    env = counting_env
    scan = counted("scan", params={"depth": 1, "seen": "${phases.recon.output.phase}"})
    original = await ran(env, tmp_path, counted("recon"), scan, counted("report"))
    assert runs(runs_file) == ["recon", "scan", "report"]
    first = await shown_json(env, tmp_path, "wait", original)

    started = await shown_json(env, tmp_path, "rerun", original, "--from", "scan", "--with", "scan.params.depth=3")
    rerun = started["workflow_id"]
    assert started["reused"] == ["recon"] and started["linked"] is True
    assert started["rerun_of"] == {
        "workflow_id": original,
        "crisis_id": crisis_id_of(original),
        "from_phase": "scan",
        "overrides": {"scan.params.depth": 3},
    }
    second = await shown_json(env, tmp_path, "wait", rerun)

    # Only scan and report ran again; recon's agent was not called, nor its activity scheduled.
    assert runs(runs_file) == ["recon", "scan", "report", "scan", "report"]
    assert await agents_scheduled(dev_server.client, rerun) == 2
    before, after = ({p["phase_id"]: p for p in result["phases"]} for result in (first, second))
    assert after["recon"]["status"] == "completed" and after["recon"]["output"] == before["recon"]["output"]
    assert after["recon"]["reused_from"] == original and before["recon"]["reused_from"] is None
    # The reused output feeds references as the original did; the override took.
    assert after["scan"]["output"]["params"] == {"depth": 3, "seen": "recon"}
    assert before["scan"]["output"]["params"] == {"depth": 1, "seen": "recon"}
    assert second["success"] is True and second["initiated_by"]
    # The path that reuses is deterministic: the rerun's own history replays.
    replayer = Replayer(workflows=[CrisisResponseWorkflow], data_converter=pydantic_data_converter)
    history = await dev_server.client.get_workflow_handle(rerun).fetch_history()
    assert (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None

    new_record = await shown_json(env, tmp_path, "record", "show", crisis_id_of(rerun))
    old_record = await shown_json(env, tmp_path, "record", "show", crisis_id_of(original))
    assert new_record["rerun_of"] == started["rerun_of"]
    assert new_record["phases"][0]["reused_from"] == original and new_record["phases"][0]["attempts"] == 0
    assert "reused_from" not in new_record["phases"][1]
    (listed,) = old_record["reruns"]
    assert (listed["workflow_id"], listed["crisis_id"], listed["from_phase"]) == (rerun, crisis_id_of(rerun), "scan")
    assert listed["overrides"] == {"scan.params.depth": 3}

    # The diff says what the changed param changed, phase by phase.
    compared = await shown_json(env, tmp_path, "diff", original, rerun)
    by_phase = {phase["phase_id"]: phase for phase in compared["phases"]}
    assert by_phase["recon"]["differs"] == [] and by_phase["recon"]["second"]["reused_from"] == original
    assert by_phase["scan"]["differs"] == ["params", "output"]
    assert by_phase["scan"]["first"]["params"]["depth"] == 1 and by_phase["scan"]["second"]["params"]["depth"] == 3
    assert by_phase["report"]["differs"] == [] and compared["same"] is False
    assert compared["second"]["rerun_of"]["from_phase"] == "scan"
    text = await cli(env, tmp_path, "diff", original, rerun)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[1] == f"Second: {rerun} (completed), a rerun of {original} from phase scan with scan.params.depth=3"
    assert f"Phase recon: same (reused in the second from {original})" in lines
    assert "Phase scan: differs in params, output" in lines
    assert '  params: {"depth": 1, "seen": "recon"} → {"depth": 3, "seen": "recon"}' in lines
    assert lines[-1] == "1 of 3 phases differ."


async def test_a_rerun_of_a_graph_reuses_every_completed_phase_that_does_not_depend_on_its_own(
    counting_env, tmp_path, runs_file, dev_server
):
    env = counting_env
    diamond = [
        counted("a", depends_on=[]),
        counted("b", depends_on=["a"]),
        counted("c", depends_on=["a"]),
        counted("d", depends_on=["b", "c"], params={"from_c": "${phases.c.output.phase}"}),
    ]
    original = await ran(env, tmp_path, *diamond)
    assert sorted(runs(runs_file)) == ["a", "b", "c", "d"]

    started = await shown_json(env, tmp_path, "rerun", original, "--from", "b")
    assert started["reused"] == ["a", "c"]
    result = await shown_json(env, tmp_path, "wait", started["workflow_id"])

    assert sorted(runs(runs_file)[4:]) == ["b", "d"]
    assert await agents_scheduled(dev_server.client, started["workflow_id"]) == 2
    phases = {p["phase_id"]: p for p in result["phases"]}
    assert {phase_id for phase_id, p in phases.items() if p["reused_from"] == original} == {"a", "c"}
    assert phases["d"]["output"]["params"] == {"from_c": "c"} and result["success"] is True


async def test_bad_reruns_and_diffs_are_one_sentence_each(counting_env, tmp_path, runs_file):
    env = counting_env
    original = await ran(env, tmp_path, counted("recon"), counted("scan"))

    async def refused(*args: str, code: int = 1) -> str:
        done = await cli(env, tmp_path, *args)
        assert done.returncode == code, done.stdout + done.stderr
        return done.stderr if code == 2 else assert_one_sentence_error(done.stderr)

    said = await refused("rerun", "crisis-workflow-no-such-crisis", "--from", "recon")
    assert "No crisis workflow 'crisis-workflow-no-such-crisis'" in said
    said = await refused("rerun", original, "--from", "ghost")
    assert said == f"Error: Crisis workflow {original} has no phase 'ghost' (its phases: recon, scan)."
    said = await refused("rerun", original, "--from", "scan", "--with", "recon.params.x=1")
    assert "changes phase 'recon', which the rerun reuses (it comes before 'scan')" in said
    said = await refused("rerun", original, "--from", "scan", "--with", "ghost.params.x=1")
    assert "Override 'ghost.params.x' names no phase of crisis workflow" in said
    said = await refused("rerun", original, "--from", "scan", "--with", "scan.depends_on=[]")
    assert "not 'depends_on'" in said
    assert "is not PATH=VALUE" in await refused("rerun", original, "--from", "scan", "--with", "scan", code=2)
    said = await refused("diff", original, "crisis-workflow-no-such-crisis")
    assert said.startswith("Error: No crisis record 'no-such-crisis'")

    missions = tmp_path / "gated.json"
    missions.write_text(json.dumps([counted("wait-here", requires_approval=True)]))
    started = await cli(env, tmp_path, "trigger", "web-1", "--missions-file", str(missions))
    assert started.returncode == 0, started.stderr
    running = started.stdout.strip()
    await until_awaiting(env, running, "wait-here")
    said = await refused("rerun", running, "--from", "wait-here")
    assert (
        said == f"Error: Crisis workflow {running} is still running: wait for it to end (or cancel it), then rerun it."
    )
    assert (await cli(env, tmp_path, "cancel", running)).returncode == 0
    assert runs(runs_file) == ["recon", "scan"]  # nothing refused ran an agent


async def test_a_rerun_of_a_language_model_agent_with_another_task_differs_in_tool_calls_and_usage(liara_env, tmp_path):
    steps = [
        *script(),
        ToolCalls([("lookup", {"host": "web-2"})], usage=(30, 8)),
        Answer("web-2 is not", usage=(50, 10)),
    ]
    with ScriptedModelServer(steps, api_key=KEY) as model:
        env = agent_env(liara_env, tmp_path, model.base_url)
        worker = WorkerProcess("cognition/liara/worker.py", env, tmp_path)
        try:
            intake = {"phase_id": "intake", "agent_id": "desk", "action": "recon", "target": "web-1"}
            original = await ran(env, tmp_path, intake, triage())
            started = await shown_json(
                env,
                tmp_path,
                "rerun",
                original,
                "--from",
                "triage",
                "--with",
                "triage.params.prompt=Is web-2 compromised?",
            )
            assert started["reused"] == ["intake"]
            await shown_json(env, tmp_path, "wait", started["workflow_id"])
        finally:
            worker.stop()

    compared = await shown_json(env, tmp_path, "diff", original, started["workflow_id"])
    intake_diff, triage_diff = compared["phases"]
    assert intake_diff["differs"] == [] and intake_diff["second"]["reused_from"] == original
    assert triage_diff["differs"] == ["output", "tool_calls", "usage"]
    assert [call["arguments"] for call in triage_diff["first"]["tool_calls"]] == [{"host": "web-1"}]
    assert [call["arguments"] for call in triage_diff["second"]["tool_calls"]] == [{"host": "web-2"}]
    assert triage_diff["first"]["usage"] == USAGE and triage_diff["second"]["usage"]["total_tokens"] == 98
    assert compared["second"]["rerun_of"]["overrides"] == {"triage.params.prompt": "Is web-2 compromised?"}
    lines = (await cli(env, tmp_path, "diff", original, started["workflow_id"])).stdout.splitlines()
    assert "Phase triage: differs in output, tool calls, usage" in lines
    assert '  tool calls: lookup {"host": "web-1"} → lookup {"host": "web-2"}' in lines
