"""Record the histories that ``test_replay.py`` replays: ``python -m tests.temporal.record_histories``.

Only histories that have no file yet are recorded, so the ones already committed stay exactly as
they are. A crisis that continues as new is recorded run by run: ``<name>.json`` is its first run,
``<name>-run-<n>.json`` each later one. Until the first release that promises in-flight crises survive an upgrade (see
CHANGELOG.md), the workflow is changed directly and every history is recorded again
(``--force``, with no names for all of them); from that release on, old histories must keep replaying: record
new scenarios next to them and guard changes with ``workflow.patched``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from app.temporal.activities import CrisisActivities
from app.temporal.agent_steps import AgentStepActivities
from app.temporal.agents import load_executor_registry
from app.temporal.client import run_and_exit
from app.temporal.models import (
    AgentReport,
    ApprovalDecision,
    CrisisRequest,
    MissionPhase,
    OutputRef,
    PhaseAssignment,
    PhaseStatus,
)
from app.temporal.records import FileRecordStore
from app.temporal.workflows import CrisisResponseWorkflow
from scripts.scripted_model_server import Answer, ScriptedModelServer, Step, ToolCalls
from tests.helpers import assert_eventually
from tests.helpers.workflows import (
    Agents,
    cancel_seen_by_the_workflow,
    crisis_request,
    crisis_worker,
    crisis_workflow_worker,
    every_run,
    phase,
    phase_status,
    request,
)

HISTORIES = Path(__file__).resolve().parent / "histories"
LOOKUP_TOOL = Path(__file__).resolve().parent / "agents" / "lookup_tool.py"


def analyst_executors(base_url: str) -> str:
    """A liara.toml: ``investigate`` by a language-model agent at ``base_url`` with one tool, ``lookup``."""
    return f"""
[agents.actions]
investigate = "analyst"

[executors.analyst]
type = "llm"
base_url = "{base_url}"
model = "scripted-analyst"
system = "You are a security analyst."
tools = ["lookup"]

[executors.lookup]
type = "command"
argv = ["{sys.executable}", "{LOOKUP_TOOL}"]
description = "Looks a host up in the inventory"
parameters = {{ type = "object", properties = {{ host = {{ type = "string" }} }}, required = ["host"] }}
"""


@activity.defn(name="perform_agent_mission")
async def secure_fails_twice_then_always(assignment: PhaseAssignment) -> AgentReport:
    """``secure`` never succeeds; ``extract`` succeeds on its second attempt."""
    phase, attempt = assignment.phase, activity.info().attempt
    if phase.action == "secure" or (phase.action == "extract" and attempt == 1):
        raise ApplicationError(f"{phase.action} failed on attempt {attempt}")
    return AgentReport(phase_id=phase.phase_id, agent_id=phase.agent_id, attempt=attempt)


@activity.defn(name="perform_agent_mission")
async def reports_past_the_budget(assignment: PhaseAssignment) -> AgentReport:
    """An output too large to carry inline: written to the record, a reference reported."""
    phase = assignment.phase
    reference = OutputRef(crisis_id=assignment.crisis_id, phase_id=phase.phase_id, size_bytes=60_000)
    return AgentReport(phase_id=phase.phase_id, agent_id=phase.agent_id, attempt=1, output_ref=reference, recorded=True)


async def until(handle: WorkflowHandle, phase_id: str, status: PhaseStatus) -> None:
    async def reached() -> bool:
        return await phase_status(handle, phase_id) == status

    await assert_eventually(reached)


async def cancel_mid_phase(handle: WorkflowHandle) -> None:
    """Cancel while ``extract-2`` runs: it is stopped, ``cleanup-3`` skipped, ``secure-1`` compensated."""
    await until(handle, "extract-2", PhaseStatus.RUNNING)
    await handle.cancel()


async def cancel_while_compensating(agents: Agents, handle: WorkflowHandle) -> None:
    """Cancel an aborted crisis while its compensation runs: recorded, not obeyed."""

    async def compensating() -> bool:
        return (await handle.query(CrisisResponseWorkflow.progress)).stage == "compensating"

    await assert_eventually(compensating)
    await handle.cancel()
    await assert_eventually(lambda: cancel_seen_by_the_workflow(handle))
    agents.release.set()


async def cancel_awaiting_approval(handle: WorkflowHandle) -> None:
    await until(handle, "strike-2", PhaseStatus.AWAITING_APPROVAL)
    await handle.cancel()


async def approve_strike_by_two(handle: WorkflowHandle) -> None:
    await until(handle, "strike-2", PhaseStatus.AWAITING_APPROVAL)
    for approver in ("commander", "deputy"):
        await handle.execute_update(
            CrisisResponseWorkflow.decide_approval,
            ApprovalDecision(phase_id="strike-2", approved=True, decided_by=approver),
        )


async def approve_strike(handle: WorkflowHandle) -> None:
    await until(handle, "strike-2", PhaseStatus.AWAITING_APPROVAL)
    await handle.execute_update(
        CrisisResponseWorkflow.decide_approval,
        ApprovalDecision(phase_id="strike-2", approved=True, decided_by="commander"),
    )


async def add_a_phase_to_the_last(agents: Agents, handle: WorkflowHandle) -> None:
    """While ``secure-1``, the only phase, runs, add ``extract-2``; then let ``secure-1`` finish."""
    await until(handle, "secure-1", PhaseStatus.RUNNING)
    added = MissionPhase.model_validate(phase("extract-2", "extract", 2))
    await handle.execute_update(CrisisResponseWorkflow.add_phases, [added])
    agents.release.set()


async def retrying_as_activity(handle: WorkflowHandle) -> None:
    """Until the record write has moved to a regular activity, and that has failed once."""

    async def retrying() -> bool:
        pending = (await handle.describe()).raw_description.pending_activities
        return any(activity.attempt > 1 for activity in pending)

    await assert_eventually(retrying)


async def repair_corrupt_record(handle: WorkflowHandle, record: Path) -> None:
    await retrying_as_activity(handle)
    record.rename(record.with_suffix(".corrupt"))


async def cancel_then_repair(handle: WorkflowHandle, record: Path) -> None:
    """Cancel while the record cannot be created, then repair it: the crisis ends before its phases."""
    await retrying_as_activity(handle)
    await handle.cancel()
    await assert_eventually(lambda: cancel_seen_by_the_workflow(handle))
    record.rename(record.with_suffix(".corrupt"))


@dataclass(frozen=True)
class Scenario:
    request: CrisisRequest
    mission: Any = None  # stands in for perform_agent_mission (None: the real, simulating one)
    steer: Callable[[WorkflowHandle], Awaitable[None]] | None = None  # signals, cancels while it runs
    # The crisis starts with an unreadable record; this repairs it while the crisis runs.
    repair: Callable[[WorkflowHandle, Path], Awaitable[None]] | None = None
    # Language-model agents: the real activities with the executors of this liara.toml (given the
    # scripted model server's base URL), the model answering with ``model_script``.
    executors: Callable[[str], str] | None = None
    model_script: tuple[Step, ...] = ()


@asynccontextmanager
async def scenario_worker(
    client: Client, queue: str, store: FileRecordStore, scenario: Scenario
) -> AsyncIterator[None]:
    """The worker a scenario's crisis runs on: for agents, with the scripted model server answering."""
    if scenario.executors is None:
        async with crisis_worker(client, queue, store, scenario.mission):
            yield
        return
    with ScriptedModelServer(scenario.model_script) as model, TemporaryDirectory() as folder:
        config = Path(folder) / "liara.toml"
        config.write_text(scenario.executors(model.base_url))
        registry = load_executor_registry(config, environ={})
        crisis_activities = CrisisActivities(store, registry)
        own_steps = [crisis_activities.hold_final_write, *AgentStepActivities(registry, store).all()]
        try:
            async with crisis_workflow_worker(client, queue, [*crisis_activities.all(), *own_steps]):
                yield
        finally:
            await registry.aclose()


def scenarios() -> dict[str, Scenario]:
    holding = Agents(holding=("extract",))
    adding = Agents(holding=("secure",))
    failing = Agents(failing=("extract",))
    undo_held = Agents(failing=("extract",), holding=("release-perimeter",))
    return {
        "crisis_completed": Scenario(crisis_request("crisis-replay-completed")),
        # The last phase's activity gives the record its final state: no final write after it.
        "crisis_finalized_by_its_last_phase": Scenario(crisis_request("crisis-replay-finalized-by-last")),
        "crisis_phase_failed": Scenario(crisis_request("crisis-replay-phase-failed"), secure_fails_twice_then_always),
        "crisis_cancelled": Scenario(
            request(
                "crisis-replay-cancelled",
                phase("secure-1", "secure", 1, compensate_action="release-perimeter"),
                phase("extract-2", "extract", 2),
                phase("cleanup-3", "cleanup", 3),
                heartbeat_timeout_seconds=5,
            ),
            holding.perform,
            cancel_mid_phase,
        ),
        "crisis_approved": Scenario(
            request(
                "crisis-replay-approved",
                phase("recon-1", "reconnaissance", 1),
                phase("strike-2", "strike", 2, requires_approval=True),
            ),
            Agents().perform,
            approve_strike,
        ),
        "crisis_graph_diamond": Scenario(
            request(
                "crisis-replay-graph",
                phase("scan-1", "scan", 1, depends_on=[], params={"host": "10.0.0.7"}),
                phase("probe-2", "probe", 1, depends_on=["scan-1"], params={"on": "${phases.scan-1.output.done}"}),
                phase("trace-3", "trace", 1, depends_on=["scan-1"]),
                phase("fix-4", "fix", 1, depends_on=["probe-2", "trace-3"], compensate_action="unfix"),
                max_parallel=2,
            ),
            Agents().perform,
        ),
        "crisis_graph_aborted": Scenario(
            request(
                "crisis-replay-graph-aborted",
                phase("scan-1", "scan", 1, depends_on=[], compensate_action="unscan"),
                phase("extract-2", "extract", 1, depends_on=["scan-1"]),
                phase("trace-3", "trace", 1, depends_on=["scan-1"], compensate_action="untrace"),
                failure_policy="abort",
                heartbeat_timeout_seconds=5,
            ),
            # trace-3 runs until the abort cancels it.
            Agents(failing=("extract",), holding=("trace",)).perform,
        ),
        "crisis_quorum_approved": Scenario(
            request(
                "crisis-replay-quorum",
                phase("recon-1", "reconnaissance", 1),
                phase("strike-2", "strike", 2, approvals_required=2),
            ),
            Agents().perform,
            approve_strike_by_two,
        ),
        "crisis_aborted_compensated": Scenario(
            request(
                "crisis-replay-aborted",
                phase("recon-1", "reconnaissance", 1, compensate_action="withdraw-scouts"),
                phase("secure-2", "secure", 2, compensate_action="release-perimeter"),
                phase("extract-3", "extract", 3),
                phase("cleanup-4", "cleanup", 4, compensate_action="never-run"),
                failure_policy="abort",
            ),
            failing.perform,
        ),
        "crisis_phases_added_to_the_last": Scenario(
            request("crisis-replay-added", phase("secure-1", "secure", 1)),
            adding.perform,
            partial(add_a_phase_to_the_last, adding),
        ),
        "crisis_cancelled_while_compensating": Scenario(
            request(
                "crisis-replay-cancelled-compensating",
                phase("secure-1", "secure", 1, compensate_action="release-perimeter"),
                phase("extract-2", "extract", 2),
                failure_policy="abort",
                heartbeat_timeout_seconds=5,
            ),
            undo_held.perform,
            partial(cancel_while_compensating, undo_held),
        ),
        "crisis_cancelled_awaiting_approval": Scenario(
            request(
                "crisis-replay-cancelled-awaiting",
                phase("recon-1", "reconnaissance", 1, compensate_action="withdraw-scouts"),
                phase("strike-2", "strike", 2, requires_approval=True),
            ),
            Agents().perform,
            cancel_awaiting_approval,
        ),
        "crisis_output_kept_in_record": Scenario(
            crisis_request("crisis-replay-output-in-record", ("recon", "secure")), reports_past_the_budget
        ),
        "crisis_record_repaired": Scenario(
            crisis_request("crisis-replay-record-repaired", ("recon",)), repair=repair_corrupt_record
        ),
        "crisis_cancelled_while_created": Scenario(
            crisis_request("crisis-replay-cancelled-while-created", ("recon",)), repair=cancel_then_repair
        ),
        # Approved in its first run (queried only then), it continues as new twice.
        "crisis_continued_as_new": Scenario(
            request(
                "crisis-replay-continued",
                phase("recon-1", "reconnaissance", 1),
                phase("strike-2", "strike", 2, requires_approval=True, compensate_action="stand-down"),
                *(phase(f"scan-{i}", "scan", 3) for i in range(3, 15)),
                phase("report-15", "report", 4, params={"after": "${phases.strike-2.output.done}"}),
                history_budget_events=50,
            ),
            Agents().perform,
            approve_strike,
        ),
        # An agent looks a host up, answers, and a simulated phase follows.
        "crisis_llm_agent": Scenario(
            request(
                "crisis-replay-llm-agent",
                phase("triage-1", "investigate", 1, params={"prompt": "Is target-alpha compromised?"}),
                phase("report-2", "report", 2),
            ),
            executors=analyst_executors,
            model_script=(
                ToolCalls([("lookup", {"host": "target-alpha"})], usage=(20, 7)),
                Answer("target-alpha is clean", usage=(40, 9)),
            ),
        ),
        # An agent's loop outlasts the history budget: it stops between two model calls and goes on
        # in the crisis's next run.
        "crisis_llm_agent_continued": Scenario(
            request(
                "crisis-replay-llm-agent-continued",
                phase("triage-1", "investigate", 1, params={"prompt": "Which hosts are compromised?"}),
                history_budget_events=50,
            ),
            executors=analyst_executors,
            model_script=(
                *(ToolCalls([("lookup", {"host": f"web-{index}"})], usage=(20, 7)) for index in range(1, 6)),
                Answer("none of them", usage=(40, 9)),
            ),
        ),
    }


async def record(names: list[str], force: bool) -> None:
    available = scenarios()
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(available)}")
    chosen = {name: available[name] for name in names or available}
    if not force:
        chosen = {name: s for name, s in chosen.items() if not (HISTORIES / f"{name}.json").exists()}
    if not chosen:
        print("every history is recorded already (--force NAME records one again)")
        return
    test_server = shutil.which("temporal-test-server", path=str(Path(sys.executable).parent))
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=test_server
    )
    with TemporaryDirectory() as records:
        for name, scenario in chosen.items():
            queue = str(uuid.uuid4())
            crisis = scenario.request
            store = FileRecordStore(Path(records))
            if scenario.repair is not None:
                store.path_for(crisis.crisis_id).write_text('{"crisis_id": "corr')
            async with scenario_worker(env.client, queue, store, scenario):
                handle = await env.client.start_workflow(
                    CrisisResponseWorkflow.run, crisis, id=f"crisis-workflow-{crisis.crisis_id}", task_queue=queue
                )
                if scenario.steer is not None:
                    await scenario.steer(handle)
                if scenario.repair is not None:
                    await scenario.repair(handle, store.path_for(crisis.crisis_id))
                try:
                    await handle.result()
                except WorkflowFailureError:
                    pass
            for stale in HISTORIES.glob(f"{name}-run-*.json"):
                stale.unlink()
            for number, history in enumerate(await every_run(env, handle), start=1):
                path = HISTORIES / (f"{name}.json" if number == 1 else f"{name}-run-{number}.json")
                path.write_text(history.to_json())
            print(f"recorded {name}")
    await env.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="scenarios to record (default: all that have no file yet)")
    parser.add_argument("--force", action="store_true", help="record the scenarios again, replacing their files")
    args = parser.parse_args()
    asyncio.run(record(args.names, args.force))


if __name__ == "__main__":
    run_and_exit(main)  # skips interpreter finalization, where the SDK can crash (sdk-python#300)
