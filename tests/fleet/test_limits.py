"""Limits on agents' calls across the fleet (``[limits]``), with two real worker processes on one
task queue and the scripted model server: at most N model calls at once whichever worker makes
them, model calls spaced by a per-minute limit, a tool's calls one at a time, permits given back
by crises cancelled while they wait or hold one and taken back from a crisis terminated while it
holds one, and ``liara doctor`` showing the limits with their permits in use.

Each test has a model (and executor) of its own, so each has its own limiter; the two workers and
the scripted server serve the module.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from app.temporal.limits import LimiterStatus
from app.temporal.limits.serving import limiter_status
from app.temporal.models import StepLimit
from app.temporal.workflows import CrisisResponseWorkflow
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.errors import CrisisFailedError
from scripts.scripted_model_server import Answer, Hang, RecordedRequest, ScriptedModelServer, Step, ToolCalls
from tests.helpers import assert_eventually
from tests.helpers.cli import cli
from tests.helpers.processes import WorkerProcess, subprocess_env
from tests.helpers.servers import DevServer

pytestmark = pytest.mark.integration

WORKER = "cognition/liara/worker.py"
TOOL = Path(__file__).with_name("timed_tool.py")
#: How long the tool takes to answer.
TOOL_SECONDS = 1.0
#: A model call's grant goes from the limiter through its crisis's workflow task to the worker that
#: sends the request: two grants a spacing apart may reach the model this much closer together.
DELIVERY_JITTER_SECONDS = 1.0

# One model per test, each with its limit (see liara_toml).
HELD_MODEL, HELD_AT_ONCE = "held-model", 2
PACED_MODEL, PACED_PER_MINUTE = "paced-model", 12
SOLO_MODEL = "solo-model"  # limited by its executor's name, "soloist"
ORPHAN_MODEL = "orphan-model"
TOOL_MODEL = "tool-model"


def liara_toml(base_url: str, tool_runs: Path) -> str:
    executors = {
        "analyst": HELD_MODEL,
        "pacer": PACED_MODEL,
        "soloist": SOLO_MODEL,
        "orphaned": ORPHAN_MODEL,
        "tooler": TOOL_MODEL,
    }
    tables = "".join(
        f"""
[executors.{name}]
type = "llm"
base_url = "{base_url}"
model = "{model}"
max_turns = 3
{'tools = ["lookup"]' if name == "tooler" else ""}
"""
        for name, model in executors.items()
    )
    return f"""
[agents.actions]
{"".join(f'{name} = "{name}"{chr(10)}' for name in executors)}
{tables}
[executors.lookup]
type = "command"
argv = {json.dumps([sys.executable, str(TOOL)])}
env = {{ TOOL_RUNS_FILE = {json.dumps(str(tool_runs))}, TOOL_SECONDS = "{TOOL_SECONDS}" }}
description = "Looks a host up in the inventory"
parameters = {{ type = "object", properties = {{ host = {{ type = "string" }} }} }}

[limits.models.{HELD_MODEL}]
concurrent = {HELD_AT_ONCE}

[limits.models.{PACED_MODEL}]
per_minute = {PACED_PER_MINUTE}

[limits.models.soloist]
concurrent = 1

[limits.models.{ORPHAN_MODEL}]
concurrent = 1

[limits.tools.lookup]
concurrent = 1
"""


def scripted(body: dict[str, Any]) -> Step:
    """The model's answer: ``hang SECONDS`` in the prompt holds it that long; the tool model calls
    ``lookup`` once first.
    """
    messages = body["messages"]
    if body["model"] == TOOL_MODEL and not any(message["role"] == "tool" for message in messages):
        return ToolCalls([("lookup", {"host": "web-1"})])
    prompt = next(message["content"] for message in messages if message["role"] == "user")
    hang = re.match(r"hang (\d+(?:\.\d+)?)", prompt)
    return Hang(float(hang[1]), then=Answer("done")) if hang else Answer("done")


@dataclass
class Fleet:
    address: str
    task_queue: str
    directory: Path
    env: dict[str, str]
    model: ScriptedModelServer
    workers: list[WorkerProcess]

    def agency(self) -> LiaraTemporalAgency:
        return LiaraTemporalAgency(temporal_host=self.address, task_queue=self.task_queue)

    def requests(self, model: str) -> list[RecordedRequest]:
        return [request for request in self.model.requests if request.body["model"] == model]

    def tool_runs(self) -> list[dict[str, Any]]:
        runs = self.directory / "tool-runs.jsonl"
        return [json.loads(line) for line in runs.read_text().splitlines()] if runs.exists() else []


@pytest.fixture(scope="module")
def fleet(dev_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    directory = tmp_path_factory.mktemp("limits-fleet")
    task_queue = f"liara-test-{uuid.uuid4()}"
    with ScriptedModelServer(scripted) as model:
        env = subprocess_env(dev_server.address, task_queue, directory / "crises")
        config = directory / "liara.toml"
        config.write_text(liara_toml(model.base_url, directory / "tool-runs.jsonl"))
        env["LIARA_CONFIG"] = str(config)
        workers: list[WorkerProcess] = []
        try:
            for _ in range(2):
                workers.append(WorkerProcess(WORKER, env, directory))
            yield Fleet(dev_server.address, task_queue, directory, env, model, workers)
        finally:
            for worker in workers:
                worker.stop()


def phase(action: str, prompt: str) -> dict[str, Any]:
    return {
        "phase_id": "triage",
        "agent_id": "analyst-001",
        "action": action,
        "target": "web-1",
        "params": {"prompt": prompt},
        "retry": {"maximum_attempts": 1},
    }


async def start(agency: LiaraTemporalAgency, action: str, prompt: str, count: int = 1) -> list[str]:
    """``count`` crises of one phase each, started at once."""
    return list(
        await asyncio.gather(
            *(
                agency.trigger_crisis_response("web-1", [phase(action, prompt)], "tester", heartbeat_timeout_seconds=2)
                for _ in range(count)
            )
        )
    )


async def completed(agency: LiaraTemporalAgency, workflow_ids: list[str]) -> None:
    results = await asyncio.gather(*(agency.wait_for_crisis_completion(wid, timeout=60) for wid in workflow_ids))
    for result in results:
        assert result["success"], result
        assert [(p["status"], p["output"]) for p in result["phases"]] == [("completed", {"answer": "done"})], result


async def status(dev_server: DevServer, fleet: Fleet, limit: StepLimit) -> LimiterStatus | None:
    return await limiter_status(dev_server.client, fleet.task_queue, limit)


async def until_status(dev_server: DevServer, fleet: Fleet, limit: StepLimit, in_use: int, waiting: int) -> None:
    async def reached() -> bool:
        found = await status(dev_server, fleet, limit)
        return found is not None and (found.in_use, found.waiting) == (in_use, waiting)

    await assert_eventually(reached, timeout=30, interval=0.2)


async def first_worker(dev_server: DevServer, workflow_id: str) -> str:
    """The identity of the worker that ran the crisis's first workflow task (once it has)."""
    found = ""

    async def ran() -> bool:
        nonlocal found
        events = (await dev_server.client.get_workflow_handle(workflow_id).fetch_history()).events
        completed = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
        found = completed[0].workflow_task_completed_event_attributes.identity if completed else ""
        return bool(found)

    await assert_eventually(ran, timeout=10, interval=0.02)
    return found


async def assert_replay(dev_server: DevServer, workflow_ids: list[str]) -> None:
    """The crises' histories replay against the crisis workflow, sandboxed (as test_replay.py replays)."""
    replayer = Replayer(workflows=[CrisisResponseWorkflow], data_converter=pydantic_data_converter)
    for workflow_id in workflow_ids:
        history = await dev_server.client.get_workflow_handle(workflow_id).fetch_history()
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{workflow_id}: {result.replay_failure}"


async def model_call_starts(dev_server: DevServer, workflow_id: str) -> list[tuple[str, int]]:
    """``(worker identity, attempt)`` of each start of a ``call_model`` activity of the crisis."""
    events = list((await dev_server.client.get_workflow_handle(workflow_id).fetch_history()).events)
    names = {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    return [
        (started.identity, started.attempt)
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and names[(started := event.activity_task_started_event_attributes).scheduled_event_id] == "call_model"
    ]


async def test_at_most_n_model_calls_at_once_across_two_workers(dev_server: DevServer, fleet: Fleet) -> None:
    """Eight crises or more, started within a moment, each with a model call that hangs 1.5 s, on
    two workers, with ``concurrent = 2`` for the model: the model never holds more than two
    requests at once, and every crisis completes, its one model call made once. (Crises are
    started one by one until each worker has taken some: Temporal gives a crisis to either.)
    """
    most = 0
    sampling = True

    async def sample() -> None:
        nonlocal most
        while sampling:
            most = max(most, fleet.model.hanging)
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    began = time.monotonic()
    try:
        async with fleet.agency() as agency:
            workflow_ids: list[str] = []
            taken_by: set[str] = set()
            while len(workflow_ids) < 8 or len(taken_by) < 2:
                assert len(workflow_ids) < 20, "one worker took every crisis"
                (workflow_id,) = await start(agency, "analyst", "hang 1.5: is web-1 compromised?")
                workflow_ids.append(workflow_id)
                taken_by.add(await first_worker(dev_server, workflow_id))
            await completed(agency, workflow_ids)
    finally:
        sampling = False
        await sampler
    elapsed = time.monotonic() - began

    assert most == HELD_AT_ONCE, f"at most {most} model calls were held at once"
    sent = fleet.requests(HELD_MODEL)
    crises = len(workflow_ids)
    assert len(sent) == crises and all(request.answered for request in sent)
    # A round of two 1.5 s calls at least for every two crises: the calls waited for their turn.
    assert elapsed >= crises / HELD_AT_ONCE * 1.5
    starts = [start for wid in workflow_ids for start in await model_call_starts(dev_server, wid)]
    assert [attempt for _, attempt in starts] == [1] * crises, "no model call failed or was tried again"
    assert len({identity for identity, _ in starts}) == 2, "both workers made model calls"
    limit = StepLimit(kind="model", name=HELD_MODEL, concurrent=HELD_AT_ONCE)
    final = await status(dev_server, fleet, limit)
    assert final is not None and (final.in_use, final.waiting, final.granted) == (0, 0, crises)
    await assert_replay(dev_server, workflow_ids)


async def test_a_per_minute_limit_spaces_the_model_calls(fleet: Fleet) -> None:
    """Three crises at once with ``per_minute = 12`` for their model: one call every 5 s at most,
    so the second and third wait for their turn; none fails for it.
    """
    async with fleet.agency() as agency:
        workflow_ids = await start(agency, "pacer", "is web-1 compromised?", count=3)
        await completed(agency, workflow_ids)

    arrivals = sorted(request.received_at for request in fleet.requests(PACED_MODEL))
    assert len(arrivals) == 3
    spacing = 60 / PACED_PER_MINUTE
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    assert all(gap >= spacing - DELIVERY_JITTER_SECONDS for gap in gaps), gaps


async def test_a_tool_limit_runs_the_tools_calls_one_at_a_time(dev_server: DevServer, fleet: Fleet) -> None:
    """Three agents at once call ``lookup``, limited to one call at once across the workers: the
    tool's runs (1 s each) never overlap.
    """
    async with fleet.agency() as agency:
        workflow_ids = await start(agency, "tooler", "look web-1 up", count=3)
        await completed(agency, workflow_ids)

    runs = sorted(fleet.tool_runs(), key=lambda run: run["began"])
    assert len(runs) == 3
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert later["began"] >= earlier["ended"], runs
    await assert_replay(dev_server, workflow_ids)


async def test_cancelled_crises_give_their_permits_back_and_doctor_shows_them(
    dev_server: DevServer, fleet: Fleet
) -> None:
    """With one call at once: A holds the permit (its call hangs), B and C wait. ``liara doctor``
    shows the limit with one permit in use and two steps waiting. B is cancelled while it waits,
    then A while it holds: C gets the permit and completes; B never called the model.
    """
    limit = StepLimit(kind="model", name="soloist", concurrent=1)
    async with fleet.agency() as agency:
        (holder,) = await start(agency, "soloist", "hang 600: hold the permit")
        await until_status(dev_server, fleet, limit, in_use=1, waiting=0)
        (withdrawn,) = await start(agency, "soloist", "hang 600: wait, then be cancelled")
        await until_status(dev_server, fleet, limit, in_use=1, waiting=1)
        (last,) = await start(agency, "soloist", "answer at once")
        await until_status(dev_server, fleet, limit, in_use=1, waiting=2)

        shown = await cli(fleet.env, fleet.directory, "doctor", "--json")
        checks = {check["name"]: check for check in json.loads(shown.stdout)}
        assert checks["limits"]["ok"], checks["limits"]
        assert "model soloist: 1 at once (1 in use, 2 waiting)" in checks["limits"]["detail"]
        assert f"model {PACED_MODEL}: {PACED_PER_MINUTE} a minute" in checks["limits"]["detail"]
        assert "tool lookup: 1 at once" in checks["limits"]["detail"]

        await agency.cancel_crisis(withdrawn, cancelled_by="tester")
        await until_status(dev_server, fleet, limit, in_use=1, waiting=1)
        await agency.cancel_crisis(holder, cancelled_by="tester")
        await completed(agency, [last])
        for cancelled in (withdrawn, holder):
            with pytest.raises(CrisisFailedError):
                await agency.wait_for_crisis_completion(cancelled, timeout=30)
            assert (await agency.get_crisis_status(cancelled))["status"] == "cancelled"

    sent = fleet.requests(SOLO_MODEL)
    assert [request.body["messages"][-1]["content"] for request in sent] == [
        "hang 600: hold the permit",
        "answer at once",
    ]
    await until_status(dev_server, fleet, limit, in_use=0, waiting=0)
    await assert_replay(dev_server, [holder, withdrawn, last])


async def test_a_terminated_holders_permit_comes_back(dev_server: DevServer, fleet: Fleet) -> None:
    """A crisis terminated while its model call holds the only permit never gives it back itself:
    the limiter finds its run closed and hands the permit to the crisis waiting behind it, which
    completes long before the terminated call's 600 s hang would have ended.
    """
    limit = StepLimit(kind="model", name=ORPHAN_MODEL, concurrent=1)
    async with fleet.agency() as agency:
        (holder,) = await start(agency, "orphaned", "hang 600: hold the permit, then die")
        await until_status(dev_server, fleet, limit, in_use=1, waiting=0)
        (waiting,) = await start(agency, "orphaned", "answer once the permit comes back")
        await until_status(dev_server, fleet, limit, in_use=1, waiting=1)
        await dev_server.client.get_workflow_handle(holder).terminate("the test kills it")
        await completed(agency, [waiting])
    assert len(fleet.requests(ORPHAN_MODEL)) == 2
    await assert_replay(dev_server, [waiting])
