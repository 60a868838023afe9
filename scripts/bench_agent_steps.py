"""Benchmark Liara's orchestration of a language-model agent against the same steps in a bare workflow.

    python scripts/bench_agent_steps.py                      # an embedded Temporal server of its own
    python scripts/bench_agent_steps.py --address localhost:7233 --runs 40 --tool-calls 5

Both sides run the same agent: ``--tool-calls`` k model answers asking for one tool call each,
then a final answer (k + 1 model calls and k tool calls). The model is the scripted
OpenAI-compatible server (scripts/scripted_model_server.py, in a process of its own, streaming
with no delay between chunks); the tool is a ``command`` executor running ``cat`` on the
mission.

- **liara**: crises of one ``llm`` phase, started and awaited through the agency, on a Liara
  worker process (``cognition/liara/worker.py``) whose liara.toml maps the phase to the agent;
  the workflow runs the loop, one ``call_model`` or ``call_tool`` activity per step.
- **bare**: a minimal workflow (``BareAgentWorkflow``, below) running the same loop with the
  same steps as activities, on its own worker process (this script with ``--bare-worker``):
  the model calls go through the same ``LlmExecutor.complete`` and the tool calls through the
  same ``command`` executor, with nothing else (no validation, records, heartbeats, params,
  gates, usage or transcript). Both workers run workflows outside the sandbox.

Each round, the sides take turns (the one that goes first alternates): ``--runs`` crises one at
a time (latency, start to result), then ``--runs`` crises with ``--concurrency`` in flight
(crises and steps per second). From the histories of the one-at-a-time crises, each step's
latency is the time from the completion of the step before it to its own completion (the
workflow task between them, the dispatch and the step's own work), and its work the time from
its start to its completion; the first model call, which follows different things on the two
sides, is left out. The figures printed are the medians over ``--rounds`` rounds (5 by
default) and the ratios liara / bare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from temporalio import activity, workflow  # noqa: E402
from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.exceptions import ApplicationError  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

from app.temporal.agents import ExecutorRegistry, Mission, load_executor_registry  # noqa: E402
from app.temporal.agents.llm import LlmExecutor  # noqa: E402
from app.temporal.client import ConnectionSettings, connect  # noqa: E402
from app.temporal.models import MissionPhase, ToolSpec  # noqa: E402
from app.temporal.server import EmbeddedServer  # noqa: E402
from cognition.liara.agency import LiaraTemporalAgency  # noqa: E402
from scripts.bench_records import save_and_exit  # noqa: E402
from scripts.local_postgres import free_port  # noqa: E402
from scripts.scripted_model_server import READY_LINE, Answer, ScriptedModelServer, Step, ToolCalls  # noqa: E402

TARGET = "target-alpha"
SYSTEM = "You are a benchmark agent."
PROMPT = "Call the tool as often as the script says, then answer."
WORKER_READY = "Liara worker is running"
BARE_READY = "Bare agent worker is running"
WARM_UP_RUNS = 3
TOOL_DESCRIPTION = "Echoes its mission"
#: As liara.toml writes them below: both sides send the model the same tool.
TOOL_PARAMETERS = {"type": "object", "properties": {"n": {"type": "integer"}}}
#: Activity types of a model call and a tool call, on each side.
STEP_TYPES = {"liara": ("call_model", "call_tool"), "bare": ("bare_call_model", "bare_call_tool")}


# --- the bare side: a minimal workflow running the same steps --------------------------------------

_registry: ExecutorRegistry | None = None


def registry() -> ExecutorRegistry:
    assert _registry is not None, "the bare worker loads its executors before it starts"
    return _registry


@activity.defn(name="bare_call_model")
async def bare_call_model(call: dict[str, Any]) -> dict[str, Any]:
    """One model call, through the same executor as Liara's ``call_model``."""
    executor = registry().executor_named("agent")
    assert isinstance(executor, LlmExecutor)
    tools = [ToolSpec.model_validate(tool) for tool in call["tools"]]
    answer = await executor.complete(call["messages"], tools, None, on_chunk=lambda _text: None)
    calls = [answer.tool_calls[index] for index in sorted(answer.tool_calls)]
    return {
        "message": answer.message(),
        "content": answer.content,
        "tool_calls": [
            {"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in calls
        ],
    }


@activity.defn(name="bare_call_tool")
async def bare_call_tool(call: dict[str, Any]) -> str:
    """One tool call, through the same executor as Liara's ``call_tool``."""
    info = activity.info()
    phase = MissionPhase(
        phase_id="agent",
        agent_id="bench-agent",
        action=call["name"],
        target=TARGET,
        params=json.loads(call["arguments"]),
    )
    workflow_id = info.workflow_id or "bare-agent"
    mission = Mission(
        crisis_id=workflow_id, workflow_id=workflow_id, phase=phase, attempt=info.attempt, step=call["id"]
    )
    executor = registry().executor_named(call["name"])
    assert executor is not None
    output = await executor.run(mission)
    return output if isinstance(output, str) else json.dumps(output)


@workflow.defn(name="BareAgentWorkflow")
class BareAgentWorkflow:
    @workflow.run
    async def run(self, plan: dict[str, Any]) -> str:
        options: dict[str, Any] = {"start_to_close_timeout": timedelta(seconds=60)}
        messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
        for _ in range(plan["max_turns"]):
            answer = await workflow.execute_activity(
                bare_call_model, {"messages": messages, "tools": plan["tools"]}, **options
            )
            messages.append(answer["message"])
            if not answer["tool_calls"]:
                return answer["content"]
            results = await asyncio.gather(
                *(workflow.execute_activity(bare_call_tool, call, **options) for call in answer["tool_calls"])
            )
            for call, result in zip(answer["tool_calls"], results, strict=True):
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
        raise ApplicationError("no answer within max_turns", non_retryable=True)


async def serve_bare(address: str, task_queue: str, config: Path) -> None:
    global _registry
    _registry = load_executor_registry(config, environ={})
    client = await connect(ConnectionSettings.resolve(address=address, task_queue=task_queue))
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[BareAgentWorkflow],
        activities=[bare_call_model, bare_call_tool],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        print(BARE_READY, flush=True)
        await stop.wait()
    await _registry.aclose()


# --- the model: the scripted server answering k tool calls, then an answer ---------------------------


def serve_model(port: int, tool_calls: int) -> None:
    def step(body: dict[str, Any]) -> Step:
        done = sum(1 for message in body["messages"] if message.get("role") == "tool")
        return ToolCalls([("tool", {"n": done})]) if done < tool_calls else Answer("done")

    stop = asyncio.Event()
    with ScriptedModelServer(step, port=port, chunk_delay=0) as server:
        print(READY_LINE.format(base_url=server.base_url), flush=True)
        loop = asyncio.new_event_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        loop.run_until_complete(stop.wait())


# --- the driver -------------------------------------------------------------------------------------


@asynccontextmanager
async def process(name: str, command: list[str], env: dict[str, str], workdir: Path, ready: str) -> AsyncIterator[int]:
    """``command`` as a process whose output goes to ``workdir/name.log``, once it prints ``ready``."""
    log = workdir / f"{name}.log"
    with log.open("w") as out:
        started = subprocess.Popen(command, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while ready not in log.read_text():
            if started.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}")
            await asyncio.sleep(0.1)
        yield started.pid
    finally:
        started.terminate()
        started.wait(timeout=60)


def write_config(workdir: Path, base_url: str, tool_calls: int) -> Path:
    config = workdir / "liara.toml"
    config.write_text(
        "[agents.actions]\n"
        'investigate = "agent"\n\n'
        "[executors.agent]\n"
        'type = "llm"\n'
        f"base_url = {json.dumps(base_url)}\n"
        'model = "scripted-bench"\n'
        f"system = {json.dumps(SYSTEM)}\n"
        'tools = ["tool"]\n'
        f"max_turns = {tool_calls + 1}\n\n"
        "[executors.tool]\n"
        'type = "command"\n'
        f"argv = [{json.dumps(shutil.which('cat') or '/bin/cat')}]\n"
        f"description = {json.dumps(TOOL_DESCRIPTION)}\n"
        'parameters = { type = "object", properties = { n = { type = "integer" } } }\n'
    )
    return config


class Sides:
    """How each side runs one crisis (start to result), and where its histories are."""

    def __init__(self, agency: LiaraTemporalAgency, client: Client, bare_queue: str, tool_calls: int) -> None:
        self.agency, self.client, self.bare_queue = agency, client, bare_queue
        self.mission = {
            "phase_id": "agent",
            "agent_id": "bench-agent",
            "action": "investigate",
            "target": TARGET,
            "params": {"prompt": PROMPT},
        }
        self.plan = {
            "max_turns": tool_calls + 1,
            "tools": [{"name": "tool", "description": TOOL_DESCRIPTION, "parameters": TOOL_PARAMETERS}],
        }
        self.run: dict[str, Callable[[], Awaitable[str]]] = {"liara": self.liara, "bare": self.bare}

    async def liara(self) -> str:
        workflow_id = await self.agency.trigger_crisis_response(TARGET, [self.mission], "bench")
        result = await self.agency.wait_for_crisis_completion(workflow_id, timeout=120)
        assert result["success"] and result["phases"][0]["output"] == {"answer": "done"}, result
        return workflow_id

    async def bare(self) -> str:
        workflow_id = f"bare-agent-{uuid.uuid4().hex}"
        handle = await self.client.start_workflow(
            "BareAgentWorkflow", self.plan, id=workflow_id, task_queue=self.bare_queue
        )
        assert await handle.result() == "done"
        return workflow_id


async def one_at_a_time(run: Callable[[], Awaitable[str]], runs: int) -> tuple[list[float], list[str]]:
    seconds, workflow_ids = [], []
    for _ in range(runs):
        began = time.perf_counter()
        workflow_ids.append(await run())
        seconds.append(time.perf_counter() - began)
    return seconds, workflow_ids


async def under_load(run: Callable[[], Awaitable[str]], runs: int, concurrency: int) -> float:
    """Crises per second: ``runs`` crises, ``concurrency`` in flight."""
    slots = asyncio.Semaphore(concurrency)

    async def limited() -> None:
        async with slots:
            await run()

    began = time.perf_counter()
    await asyncio.gather(*(limited() for _ in range(runs)))
    return runs / (time.perf_counter() - began)


async def step_times(client: Client, workflow_id: str, kinds: tuple[str, str]) -> dict[str, list[float]]:
    """Each step's latency (since the step before completed) and work (start to completion), in
    seconds, by kind; the first model call is left out.
    """
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled: dict[int, str] = {}
    started: dict[int, float] = {}
    steps: list[tuple[str, float, float]] = []  # kind, started, completed
    for event in history.events:
        moment = event.event_time.ToNanoseconds() / 1e9
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[event.activity_task_started_event_attributes.scheduled_event_id] = moment
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled_id = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled[scheduled_id] in kinds:
                steps.append((scheduled[scheduled_id], started[scheduled_id], moment))
    times: dict[str, list[float]] = {"model_latency": [], "tool_latency": [], "model_work": [], "tool_work": []}
    for (_, _, before), (kind, began, completed) in zip(steps, steps[1:], strict=False):
        name = "model" if kind == kinds[0] else "tool"
        times[f"{name}_latency"].append(completed - before)
        times[f"{name}_work"].append(completed - began)
    return times


async def round_of(sides: Sides, args: argparse.Namespace, number: int) -> dict[str, dict[str, float]]:
    order = ["liara", "bare"] if number % 2 == 0 else ["bare", "liara"]
    figures: dict[str, dict[str, float]] = {}
    steps_per_crisis = 2 * args.tool_calls + 1
    for side in order:
        seconds, workflow_ids = await one_at_a_time(sides.run[side], args.runs)
        merged: dict[str, list[float]] = {}
        for workflow_id in workflow_ids:
            for name, values in (await step_times(sides.client, workflow_id, STEP_TYPES[side])).items():
                merged.setdefault(name, []).extend(values)
        figures[side] = {"crisis_p50_ms": statistics.median(seconds) * 1000}
        for name, values in merged.items():
            if values:
                figures[side][f"{name}_p50_ms"] = statistics.median(values) * 1000
    for side in order:
        rate = await under_load(sides.run[side], args.runs, args.concurrency)
        figures[side]["crises_per_second"] = rate
        figures[side]["steps_per_second"] = rate * steps_per_crisis
    figures["ratio"] = {
        name: figures["liara"][name] / figures["bare"][name]
        for name in figures["liara"]
        if name in figures["bare"] and figures["bare"][name]
    }
    return figures


ROWS = [
    ("crisis_p50_ms", "crisis, one at a time: p50", "ms"),
    ("model_latency_p50_ms", "model call: latency p50", "ms"),
    ("model_work_p50_ms", "  of which its own work", "ms"),
    ("tool_latency_p50_ms", "tool call: latency p50", "ms"),
    ("tool_work_p50_ms", "  of which its own work", "ms"),
    ("crises_per_second", "crises/s under load", "/s"),
    ("steps_per_second", "steps/s under load", "/s"),
]


def summary(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """The median of the rounds, figure by figure (ratios: the median of the rounds' ratios)."""
    return {
        side: {name: statistics.median(r[side][name] for r in rounds) for name in rounds[0][side]}
        for side in ("bare", "liara", "ratio")
    }


def print_summary(found: dict[str, dict[str, float]], rounds: list[dict[str, dict[str, float]]]) -> None:
    print(f"{'median of ' + str(len(rounds)) + ' rounds':38} {'bare':>10} {'liara':>10} {'liara/bare':>11}  rounds")
    for name, label, unit in ROWS:
        if name not in found["liara"]:
            continue
        ratios = [r["ratio"][name] for r in rounds]
        print(
            f"{label:38} {found['bare'][name]:>8.1f}{unit:<2} {found['liara'][name]:>8.1f}{unit:<2} "
            f"{found['ratio'][name]:>11.2f}  {min(ratios):.2f}-{max(ratios):.2f}"
        )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="liara-bench-agent-steps-"))
    server = (
        None if args.address else EmbeddedServer(data_dir=scratch / "temporal", port=free_port(), ui_port=free_port())
    )
    address = args.address or (server.address if server else "")
    figures: dict[str, Any] = {"rounds": []}
    try:
        if server is not None:
            await asyncio.to_thread(server.start)
        liara_queue, bare_queue = (f"bench-agent-{side}-{uuid.uuid4().hex[:8]}" for side in ("liara", "bare"))
        env = {key: value for key, value in os.environ.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}
        env |= {
            "TEMPORAL_ADDRESS": address,
            "LIARA_TASK_QUEUE": liara_queue,
            "LIARA_CRISIS_DIR": str(scratch / "crises"),
        }
        port = free_port()
        this = [sys.executable, str(Path(__file__).resolve())]
        model_command = [*this, "--model-server", str(port), "--tool-calls", str(args.tool_calls)]
        async with process("model", model_command, env, scratch, "listening on"):
            config = write_config(scratch, f"http://127.0.0.1:{port}/v1", args.tool_calls)
            env["LIARA_CONFIG"] = str(config)
            bare_command = [*this, "--bare-worker", "--address", address, "--task-queue", bare_queue]
            bare_command += ["--config", str(config)]
            async with (
                process(
                    "liara-worker",
                    [sys.executable, str(REPO_ROOT / "cognition/liara/worker.py")],
                    env,
                    scratch,
                    WORKER_READY,
                ),
                process("bare-worker", bare_command, env, scratch, BARE_READY),
                LiaraTemporalAgency(temporal_host=address, task_queue=liara_queue) as agency,
            ):
                sides = Sides(agency, agency.client, bare_queue, args.tool_calls)
                for side in ("liara", "bare"):
                    await one_at_a_time(sides.run[side], WARM_UP_RUNS)
                for number in range(args.rounds):
                    found = await round_of(sides, args, number)
                    figures["rounds"].append(found)
                    print(
                        f"round {number + 1}: crisis p50 bare {found['bare']['crisis_p50_ms']:.1f} ms, "
                        f"liara {found['liara']['crisis_p50_ms']:.1f} ms; under load bare "
                        f"{found['bare']['crises_per_second']:.1f}/s, "
                        f"liara {found['liara']['crises_per_second']:.1f}/s",
                        flush=True,
                    )
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)
        shutil.rmtree(scratch, ignore_errors=True)
    figures["median"] = found = summary(figures["rounds"])
    steps = f"{args.tool_calls + 1} model calls and {args.tool_calls} tool call{'s' if args.tool_calls > 1 else ''}"
    print(
        f"\nOne llm phase of {steps} per crisis; {args.runs} crises per side and round, "
        f"{args.concurrency} in flight under load"
    )
    print_summary(found, figures["rounds"])
    figures["settings"] = {
        name: value for name, value in vars(args).items() if name in ("runs", "rounds", "concurrency", "tool_calls")
    }
    figures["settings"]["address"] = args.address or "embedded server"
    return figures


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--address", help="a running Temporal server (default: an embedded server of its own)")
    parser.add_argument("--runs", type=int, default=20, help="crises per side and round, one at a time and under load")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the figures are their medians")
    parser.add_argument("--concurrency", type=int, default=10, help="crises in flight under load")
    parser.add_argument("--tool-calls", type=int, default=3, help="tool calls per crisis (k), each in its own answer")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    # The script's own processes: the scripted model and the bare side's worker.
    parser.add_argument("--model-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--bare-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--task-queue", help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("runs", "rounds", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.tool_calls < 1:
        parser.error("--tool-calls must be at least 1")
    return args


if __name__ == "__main__":
    arguments = parse()
    if arguments.model_server:
        serve_model(arguments.model_server, arguments.tool_calls)
    elif arguments.bare_worker:
        asyncio.run(serve_bare(arguments.address, arguments.task_queue, arguments.config))
        save_and_exit({}, None)
    else:
        save_and_exit(asyncio.run(main(arguments)), arguments.json)
