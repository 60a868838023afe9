"""Missions that build on each other: references between phases and phases run as a graph.

Plan checks and resolution are plain functions; the workflow's scheduling runs on the
time-skipping test server with stand-in agents that say when they run.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from app.temporal import plan
from app.temporal.models import (
    AgentReport,
    ApprovalDecision,
    CrisisRequest,
    CrisisResult,
    MissionPhase,
    PhaseAssignment,
    PhaseStatus,
)
from app.temporal.records import FileRecordStore
from app.temporal.references import MAX_PARAMS_BYTES, UnresolvedReference, resolve, resolve_inputs
from app.temporal.workflows import CrisisResponseWorkflow
from cognition.liara import playbooks
from tests.helpers import REPO_ROOT, assert_eventually
from tests.helpers.workflows import crisis_worker, phase, phase_status, request, start


def node(phase_id: str, *depends_on: str, **extra: Any) -> dict[str, Any]:
    return phase(phase_id, phase_id.split("-")[0], 1, depends_on=list(depends_on), **extra)


def problems_of(*phases: dict[str, Any], inputs: dict[str, Any] | None = None) -> list[str]:
    return plan.problems([MissionPhase.model_validate(p) for p in phases], inputs or {})


# --- checked before anything starts -------------------------------------------------------------


def test_a_sound_graph_has_no_problems() -> None:
    refs = {"host": "${phases.scan-1.output.host}", "who": "${inputs.owner}"}
    diamond = [
        node("scan-1"),
        node("probe-2", "scan-1"),
        node("trace-3", "scan-1"),
        node("fix-4", "probe-2", "trace-3"),
    ]
    assert problems_of(*diamond, node("report-5", "fix-4", params=refs), inputs={"owner": "ops"}) == []


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ((node("a-1", "b-2"), node("b-2", "a-1")), "phases depend on each other in a circle: a-1 -> b-2 -> a-1"),
        ((node("a-1", "a-1"),), "phase 'a-1' depends on itself"),
        ((node("a-1", "ghost-9"),), "phase 'a-1' depends on 'ghost-9', which is not a phase of the crisis"),
        (
            (node("a-1"), node("b-2", params={"x": "${phases.ghost-9.output.x}"})),
            "phase 'b-2' refers to ${phases.ghost-9.output.x}, but 'ghost-9' is not a phase of the crisis",
        ),
        (
            (node("a-1"), node("b-2", params={"x": "${phases.a-1.output.x}"})),
            "phase 'b-2' refers to ${phases.a-1.output.x}, but it does not depend on it",
        ),
        (
            (phase("a-1", "a", 2), phase("b-2", "b", 1, params={"x": "${phases.a-1.output.x}"})),
            "phase 'b-2' refers to ${phases.a-1.output.x}, but it does not run before it",
        ),
        (
            (phase("a-1", "a", 1, params={"x": "${inputs.owner}"}),),
            "phase 'a-1' refers to ${inputs.owner}, but the crisis has no input 'owner'",
        ),
        (
            (phase("a-1", "a", 1, params={"x": "${phases.a-1.outputs.x}"}),),
            "phase 'a-1' has a malformed reference: ${phases.a-1.outputs.x} is not ${phases.<phase_id>.output...} "
            "or ${inputs.<name>}",
        ),
    ],
)
def test_an_unsound_plan_is_refused_naming_the_phase_and_the_reference(phases, expected) -> None:
    assert problems_of(*phases) == [expected]
    with pytest.raises(ValidationError, match=expected.replace("$", r"\$").replace("{", r"\{").replace(".", r"\.")):
        CrisisRequest.model_validate({"crisis_id": "c", "target_member": "t", "missions": list(phases)})


def test_a_circle_does_not_hide_the_reference_problems_of_the_plan() -> None:
    phases = (
        node("a-1", "b-2", params={"x": "${inputs.owner}"}),
        node("b-2", "a-1", params={"x": "${phases.a-1.output.x}"}),
        node("c-3", params={"x": "${phases.b-2.output.x}"}),
    )
    assert problems_of(*phases) == [
        "phases depend on each other in a circle: a-1 -> b-2 -> a-1",
        "phase 'a-1' refers to ${inputs.owner}, but the crisis has no input 'owner'",
        "phase 'c-3' refers to ${phases.b-2.output.x}, but it does not depend on it",
    ]


def test_phases_added_to_a_sequential_crisis_may_refer_to_every_phase_already_planned() -> None:
    """Added phases run after the crisis's own, whatever their priority; among themselves by priority."""
    known = [
        MissionPhase.model_validate(phase("scan-1", "scan", 1)),
        MissionPhase.model_validate(phase("probe-2", "probe", 5)),
    ]
    reads_probe = phase("fix-3", "fix", 2, params={"x": "${phases.probe-2.output.x}"})
    assert plan.problems([MissionPhase.model_validate(reads_probe)], {}, known=known) == []
    added = [
        MissionPhase.model_validate(phase("early-4", "early", 1, params={"x": "${phases.late-5.output.x}"})),
        MissionPhase.model_validate(phase("late-5", "late", 3)),
    ]
    assert plan.problems(added, {}, known=known) == [
        "phase 'early-4' refers to ${phases.late-5.output.x}, but it does not run before it"
    ]


def test_references_resolve_to_whole_values_or_text() -> None:
    outputs = {"scan-1": {"hosts": [{"address": "10.0.0.7", "ports": [22, 443]}], "count": 1}}
    params = {
        "host": "${phases.scan-1.output.hosts.0.address}",
        "ports": "${phases.scan-1.output.hosts.0.ports}",
        "note": "found ${phases.scan-1.output.count} host(s) for ${inputs.owner}",
        "nested": ["${inputs.owner}", {"n": 3}],
    }
    assert resolve(params, outputs, {"owner": "ops"}) == {
        "host": "10.0.0.7",
        "ports": [22, 443],
        "note": "found 1 host(s) for ops",
        "nested": ["ops", {"n": 3}],
    }
    with pytest.raises(UnresolvedReference) as missing:
        resolve({"x": "${phases.scan-1.output.hosts.3.address}"}, outputs, {})
    assert (
        str(missing.value) == "${phases.scan-1.output.hosts.3.address}: the output.hosts of phase 'scan-1' has no '3'"
    )


def test_only_phases_and_inputs_are_references_and_a_doubled_dollar_writes_a_literal() -> None:
    params = {
        "cmd": "echo ${HOME} ${1}",
        "literal": "$${phases.scan-1.output.host}",
        "both": "$${inputs.owner} is ${inputs.owner}",
        "pid": "echo $$",
    }
    assert problems_of(phase("a-1", "a", 1, params=params), inputs={"owner": "ops"}) == []
    assert resolve(params, {}, {"owner": "ops"}) == {
        "cmd": "echo ${HOME} ${1}",
        "literal": "${phases.scan-1.output.host}",
        "both": "${inputs.owner} is ops",
        "pid": "echo $$",
    }
    assert resolve("$${inputs.owner}", {}, {}) == "${inputs.owner}", "an escape alone is text, not a reference"


def test_a_playbook_fills_in_its_inputs_and_leaves_the_rest_to_the_workflow() -> None:
    value = {
        "target": "${inputs.host}",
        "note": "on ${inputs.host} from ${phases.scan-1.output.x}, not $${inputs.host} nor ${inputs.other}",
        "ports": "${inputs.ports}",
        "shell": "echo ${HOME}",
    }
    assert resolve_inputs(value, {"host": "web-7", "ports": [22, 443]}) == {
        "target": "web-7",
        "note": "on web-7 from ${phases.scan-1.output.x}, not $${inputs.host} nor ${inputs.other}",
        "ports": [22, 443],
        "shell": "echo ${HOME}",
    }


# --- the workflow ---------------------------------------------------------------------------------


class Agents:
    """Stand-in agents: each reports ``{"by": phase_id, ...params}`` (``as_simulator``: what its
    params' ``output`` says, as the simulate executor does); those named in ``holding`` wait for
    ``release``; those in ``failing`` fail at once. Records what ran at the same time.
    """

    def __init__(
        self, holding: tuple[str, ...] = (), failing: tuple[str, ...] = (), as_simulator: bool = False
    ) -> None:
        self.holding, self.failing, self.as_simulator = holding, failing, as_simulator
        self.release = asyncio.Event()
        self.running: set[str] = set()
        self.most_at_once = 0
        self.started: list[str] = []
        self.missions: dict[str, PhaseAssignment] = {}

    @activity.defn(name="perform_agent_mission")
    async def perform(self, assignment: PhaseAssignment) -> AgentReport:
        phase_id = assignment.phase.phase_id + ("/undo" if assignment.compensation else "")
        self.started.append(phase_id)
        self.missions[phase_id] = assignment
        self.running.add(phase_id)
        self.most_at_once = max(self.most_at_once, len(self.running))
        try:
            if assignment.phase.phase_id in self.holding and not assignment.compensation:
                while not self.release.is_set():
                    activity.heartbeat()
                    await asyncio.sleep(0.05)
            else:
                await asyncio.sleep(0.2)  # long enough for phases that can overlap to overlap
            if assignment.phase.phase_id in self.failing:
                raise ApplicationError(f"{assignment.phase.phase_id} failed", non_retryable=True)
        finally:
            self.running.discard(phase_id)
        params = assignment.phase.params
        output = (
            params.get("output", {"simulated": True})
            if self.as_simulator
            else {"by": assignment.phase.phase_id, **params}
        )
        return AgentReport(phase_id=assignment.phase.phase_id, agent_id="agent", attempt=1, output=output)


@pytest.fixture
def store(tmp_path: Path) -> FileRecordStore:
    return FileRecordStore(tmp_path / "crises")


async def run(env, task_queue: str, store: FileRecordStore, agents: Agents, crisis: CrisisRequest) -> CrisisResult:
    async with crisis_worker(env.client, task_queue, store, agents.perform):
        return await (await start(env, task_queue, crisis)).result()


def statuses(result: CrisisResult) -> dict[str, str]:
    return {p.phase_id: p.status.value for p in result.phases}


def compensations(result: CrisisResult) -> list[tuple[str, str]]:
    return [(c.phase_id, c.status.value) for c in result.compensations]


async def test_a_diamond_runs_its_middle_side_by_side_and_the_last_phase_reads_both(
    time_skipping_env, task_queue, store
):
    agents = Agents()
    crisis = request(
        "crisis-diamond",
        node("scan-1", params={"host": "10.0.0.7"}),
        node("probe-2", "scan-1", params={"target": "${phases.scan-1.output.host}"}),
        node("trace-3", "scan-1"),
        node("fix-4", "probe-2", "trace-3", params={"note": "fix ${phases.probe-2.output.target}"}),
    )
    result = await run(time_skipping_env, task_queue, store, agents, crisis)

    assert result.success and statuses(result) == dict.fromkeys(statuses(result), "completed")
    assert agents.started[0] == "scan-1" and agents.started[-1] == "fix-4"
    assert set(agents.started[1:3]) == {"probe-2", "trace-3"}
    assert agents.most_at_once == 2, "probe-2 and trace-3 ran at the same time"
    fix = agents.missions["fix-4"]
    assert fix.phase.params == {"note": "fix 10.0.0.7"}
    assert set(fix.context) == {"probe-2", "trace-3"}, "the outputs of what it depends on"
    assert fix.context["probe-2"] == {"by": "probe-2", "target": "10.0.0.7"}
    by_id = {p.phase_id: p for p in result.phases}
    assert by_id["fix-4"].params == {"note": "fix 10.0.0.7"} and by_id["fix-4"].depends_on == ["probe-2", "trace-3"]
    assert by_id["trace-3"].params is None, "no references: the params as given"
    record = json.loads(store.path_for("crisis-diamond").read_text())
    assert [p["status"] for p in record["phases"]] == ["completed"] * 4


async def test_max_parallel_bounds_the_agents_running_at_once_and_each_phase_runs_once(
    time_skipping_env, task_queue, store
):
    agents = Agents()
    crisis = request("crisis-bounded", *(node(f"scan-{i}") for i in range(1, 7)), max_parallel=2)
    result = await run(time_skipping_env, task_queue, store, agents, crisis)
    assert result.success
    assert agents.most_at_once == 2
    assert Counter(agents.started) == {f"scan-{i}": 1 for i in range(1, 7)}, "phases queued for a slot start once"


async def test_a_graph_runs_four_agents_at_once_by_default(time_skipping_env, task_queue, store):
    agents = Agents()
    crisis = request("crisis-default-parallel", *(node(f"scan-{i}") for i in range(1, 7)))
    result = await run(time_skipping_env, task_queue, store, agents, crisis)
    assert result.success
    assert agents.most_at_once == 4
    assert Counter(agents.started) == {f"scan-{i}": 1 for i in range(1, 7)}


async def test_after_an_abort_no_queued_phase_starts(time_skipping_env, task_queue, store):
    agents = Agents(failing=("bad-3",))
    undo = {"compensate_action": "undo"}
    crisis = request(
        "crisis-queued-aborted",
        node("one-1", **undo),
        node("two-2", **undo),
        node("bad-3", **undo),
        node("later-4", **undo),
        node("later-5", **undo),
        node("gate-6", requires_approval=True),
        max_parallel=1,
        failure_policy="abort",
    )
    result = await run(time_skipping_env, task_queue, store, agents, crisis)
    assert statuses(result) == {
        "one-1": "completed",
        "two-2": "completed",
        "bad-3": "failed",
        "later-4": "skipped",
        "later-5": "skipped",
        "gate-6": "cancelled",
    }
    assert agents.started == ["one-1", "two-2", "bad-3", "two-2/undo", "one-1/undo"]
    assert compensations(result) == [
        ("two-2", "completed"),
        ("one-1", "completed"),
    ]
    assert agents.most_at_once == 1


async def test_a_failed_phase_skips_what_depends_on_it_and_the_rest_goes_on(time_skipping_env, task_queue, store):
    agents = Agents(failing=("probe-2",))
    crisis = request(
        "crisis-graph-failed",
        node("scan-1"),
        node("probe-2", "scan-1"),
        node("fix-3", "probe-2"),
        node("report-4", "fix-3"),
        node("trace-5", "scan-1"),
    )
    result = await run(time_skipping_env, task_queue, store, agents, crisis)
    assert statuses(result) == {
        "scan-1": "completed",
        "probe-2": "failed",
        "fix-3": "skipped",
        "report-4": "skipped",
        "trace-5": "completed",
    }
    assert not result.success and result.failed_phases == ["probe-2"]


async def test_abort_cancels_the_running_phases_and_compensates_in_reverse_completion_order(
    time_skipping_env, task_queue, store
):
    agents = Agents(holding=("slow-3",), failing=("bad-4",))
    undo = {"compensate_action": "undo"}
    crisis = request(
        "crisis-graph-aborted",
        node("first-1", **undo),
        node("second-2", "first-1", **undo),
        node("slow-3", "first-1", **undo),
        node("bad-4", "second-2"),
        node("never-5", "bad-4"),
        failure_policy="abort",
        heartbeat_timeout_seconds=5,
    )
    result = await run(time_skipping_env, task_queue, store, agents, crisis)
    assert statuses(result) == {
        "first-1": "completed",
        "second-2": "completed",
        "slow-3": "cancelled",
        "bad-4": "failed",
        "never-5": "skipped",
    }
    assert compensations(result) == [
        ("second-2", "completed"),
        ("first-1", "completed"),
    ], "last completed, first undone; the cancelled phase is not compensated"


async def test_a_cancel_stops_every_running_phase_of_a_graph(time_skipping_env, task_queue, store):
    agents = Agents(holding=("left-2", "right-3"))
    crisis = request(
        "crisis-graph-cancelled",
        node("root-1", compensate_action="undo"),
        node("left-2", "root-1"),
        node("right-3", "root-1"),
        node("join-4", "left-2", "right-3"),
        heartbeat_timeout_seconds=5,
    )
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, crisis)

        async def both_running() -> bool:
            progress = await handle.query(CrisisResponseWorkflow.progress)
            return set(progress.running_phases) == {"left-2", "right-3"}

        await assert_eventually(both_running)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        result = await handle.query(CrisisResponseWorkflow.progress)
    assert {p.phase_id: p.status.value for p in result.phases} == {
        "root-1": "completed",
        "left-2": "cancelled",
        "right-3": "cancelled",
        "join-4": "skipped",
    }
    assert compensations(result) == [("root-1", "completed")]


async def test_a_rejected_gate_and_one_that_timed_out_skip_their_dependents_and_the_rest_goes_on(
    time_skipping_env, task_queue, store
):
    agents = Agents()
    crisis = request(
        "crisis-graph-gates",
        node("root-1"),
        node("gate-2", "root-1", requires_approval=True),
        node("after-3", "gate-2"),
        node("side-4", "root-1"),
        node("timed-5", "root-1", requires_approval=True, approval_timeout=60),
        node("after-6", "timed-5"),
    )
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, crisis)
        await decide_once_awaited(handle, "gate-2", approved=False, reason="too risky")
        result: CrisisResult = await handle.result()
    assert statuses(result) == {
        "root-1": "completed",
        "gate-2": "failed",
        "after-3": "skipped",
        "side-4": "completed",
        "timed-5": "failed",
        "after-6": "skipped",
    }
    by_id = {p.phase_id: p for p in result.phases}
    assert by_id["gate-2"].error == "rejected by commander: too risky"
    assert by_id["timed-5"].error == "approval timed out after 60 s"
    assert sorted(agents.started) == ["root-1", "side-4"]


async def test_a_rejected_gate_under_the_abort_policy_cancels_the_other_branch_and_compensates(
    time_skipping_env, task_queue, store
):
    agents = Agents(holding=("side-3",))
    crisis = request(
        "crisis-graph-gate-aborts",
        node("root-1", compensate_action="undo"),
        node("gate-2", "root-1", requires_approval=True),
        node("side-3", "root-1"),
        node("after-4", "side-3"),
        failure_policy="abort",
        heartbeat_timeout_seconds=5,
    )
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, crisis)

        async def side_agent_running() -> bool:
            return "side-3" in agents.running

        await assert_eventually(side_agent_running)
        await decide_once_awaited(handle, "gate-2", approved=False)
        result: CrisisResult = await handle.result()
    assert statuses(result) == {"root-1": "completed", "gate-2": "failed", "side-3": "cancelled", "after-4": "skipped"}
    assert compensations(result) == [("root-1", "completed")]
    assert agents.started == ["root-1", "side-3", "root-1/undo"]


async def test_a_reference_to_a_key_the_output_lacks_fails_the_phase_at_once(time_skipping_env, task_queue, store):
    agents = Agents()
    crisis = request(
        "crisis-missing-key",
        phase("scan-1", "scan", 1, params={"host": "10.0.0.7"}),
        phase("fix-2", "fix", 2, params={"port": "${phases.scan-1.output.port}"}),
    )
    result = await run(time_skipping_env, task_queue, store, agents, crisis)
    fix = result.phases[1]
    assert (fix.status, fix.attempts) == (PhaseStatus.FAILED, 0)
    assert (
        fix.error
        == "phase 'fix-2' cannot start: ${phases.scan-1.output.port}: the output of phase 'scan-1' has no 'port'"
    )
    assert "fix-2" not in agents.started


async def test_a_phase_whose_params_resolve_past_the_cap_fails_at_once(time_skipping_env, task_queue, store):
    agents = Agents()
    crisis = request(
        "crisis-params-past-the-cap",
        phase("scan-1", "scan", 1, params={"blob": "x" * 60_000}),
        phase("fix-2", "fix", 2, params={"copies": ["${phases.scan-1.output}"] * 5}),
    )
    result = await run(time_skipping_env, task_queue, store, agents, crisis)
    fix = result.phases[1]
    assert (fix.status, fix.attempts, fix.params) == (PhaseStatus.FAILED, 0, None)
    size = len(json.dumps({"copies": [{"by": "scan-1", "blob": "x" * 60_000}] * 5}, separators=(",", ":")))
    assert fix.error == (
        f"phase 'fix-2' cannot start: its params come to {size} bytes once their references are resolved, "
        f"more than the {MAX_PARAMS_BYTES} a phase's agent may get"
    )
    assert agents.started == ["scan-1"]


async def test_phases_added_to_a_graph_may_depend_on_its_phases(time_skipping_env, task_queue, store):
    agents = Agents(holding=("scan-1",))
    crisis = request("crisis-graph-grown", node("scan-1", params={"host": "10.0.0.7"}))
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, crisis)
        await assert_eventually(lambda: _running(handle, "scan-1"))
        added = MissionPhase.model_validate(node("fix-2", "scan-1", params={"host": "${phases.scan-1.output.host}"}))
        await handle.execute_update(CrisisResponseWorkflow.add_phases, [added])
        agents.release.set()
        result: CrisisResult = await handle.result()
    assert statuses(result) == {"scan-1": "completed", "fix-2": "completed"}
    assert agents.missions["fix-2"].phase.params == {"host": "10.0.0.7"}


async def test_depends_on_cannot_be_added_to_a_sequential_crisis(time_skipping_env, task_queue, store):
    from temporalio.client import WorkflowUpdateFailedError

    agents = Agents(holding=("scan-1",))
    crisis = request("crisis-sequential-grown", phase("scan-1", "scan", 1))
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, crisis)
        await assert_eventually(lambda: _running(handle, "scan-1"))
        added = MissionPhase.model_validate(node("fix-2", "scan-1"))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(CrisisResponseWorkflow.add_phases, [added])
        agents.release.set()
        await handle.result()
    assert "depends_on is for crises that run as a graph" in str(refused.value.cause)


async def test_a_phase_added_to_a_sequential_crisis_reads_a_phase_of_a_later_priority(
    time_skipping_env, task_queue, store
):
    agents = Agents(holding=("scan-1",))
    crisis = request("crisis-sequential-added", phase("scan-1", "scan", 1), phase("probe-2", "probe", 5))
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, crisis)
        await assert_eventually(lambda: _running(handle, "scan-1"))
        added = MissionPhase.model_validate(phase("fix-3", "fix", 2, params={"after": "${phases.probe-2.output.by}"}))
        await handle.execute_update(CrisisResponseWorkflow.add_phases, [added])
        agents.release.set()
        result: CrisisResult = await handle.result()
    assert [p.phase_id for p in result.phases] == ["scan-1", "probe-2", "fix-3"]
    assert agents.started == ["scan-1", "probe-2", "fix-3"]
    assert agents.missions["fix-3"].phase.params == {"after": "probe-2"}


async def test_an_agent_gets_dollar_braces_that_are_not_references_as_written(time_skipping_env, task_queue, store):
    agents = Agents()
    params = {"cmd": "echo ${HOME}", "literal": "$${inputs.owner}", "owner": "${inputs.owner}"}
    crisis = request(
        "crisis-literal-braces",
        phase("run-1", "run", 1, params=params),
        phase("echo-2", "echo", 2, params={"literal": "$${not-a-reference}"}),
        inputs={"owner": "ops"},
    )
    result = await run(time_skipping_env, task_queue, store, agents, crisis)
    assert result.success
    sent = {"cmd": "echo ${HOME}", "literal": "${inputs.owner}", "owner": "ops"}
    assert agents.missions["run-1"].phase.params == sent
    assert result.phases[0].params == sent
    assert agents.missions["echo-2"].phase.params == {"literal": "${not-a-reference}"}, "escaped, no reference"


async def test_a_compensation_gets_the_params_its_phase_ran_with(time_skipping_env, task_queue, store):
    agents = Agents(failing=("bad-3",))
    crisis = request(
        "crisis-compensation-params",
        phase("scan-1", "scan", 1, params={"host": "10.0.0.7"}),
        phase(
            "fix-2",
            "fix",
            2,
            params={"host": "${phases.scan-1.output.host}", "note": "$${HOME}"},
            compensate_action="unfix",
        ),
        phase("bad-3", "bad", 3),
        failure_policy="abort",
    )
    result = await run(time_skipping_env, task_queue, store, agents, crisis)
    assert [(c.phase_id, c.action, c.status.value) for c in result.compensations] == [("fix-2", "unfix", "completed")]
    undo = agents.missions["fix-2/undo"]
    assert (undo.phase.action, undo.phase.params) == ("unfix", {"host": "10.0.0.7", "note": "${HOME}"})
    assert undo.phase.params == agents.missions["fix-2"].phase.params


async def test_the_shipped_incident_response_playbook_releases_the_host_it_isolated(
    time_skipping_env, task_queue, store
):
    fields = playbooks.load(REPO_ROOT / "playbooks" / "incident-response.yaml").render({"host": "web-7"})
    crisis = CrisisRequest.model_validate({**fields, "crisis_id": "crisis-incident-undone"})
    agents = Agents(failing=("eradicate",), as_simulator=True)
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, crisis)
        await decide_once_awaited(handle, "contain", approved=True)
        result: CrisisResult = await handle.result()
    assert statuses(result)["eradicate"] == "failed"
    assert [(c.phase_id, c.action) for c in result.compensations] == [("contain", "release-isolation")]
    released = agents.missions["contain/undo"].phase
    assert released.params == {"host": "web-7", "evidence": "logs-web-7.tar.gz"}


async def decide_once_awaited(handle, phase_id: str, *, approved: bool, reason: str | None = None) -> None:
    """Once ``phase_id`` awaits approval, the commander approves or rejects it."""

    async def awaiting() -> bool:
        return await phase_status(handle, phase_id) == PhaseStatus.AWAITING_APPROVAL

    await assert_eventually(awaiting)
    decision = ApprovalDecision(phase_id=phase_id, approved=approved, decided_by="commander", reason=reason)
    await handle.execute_update(CrisisResponseWorkflow.decide_approval, decision)


async def _running(handle, phase_id: str) -> bool:
    progress = await handle.query(CrisisResponseWorkflow.progress)
    return phase_id in progress.running_phases
