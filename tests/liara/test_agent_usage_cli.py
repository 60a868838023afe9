"""What the command line shows of language-model agents: ``liara status`` (text and ``--json``)
tells each agent phase's usage and the crisis's, so far while it runs and in all once it ended;
``liara record show`` tells them and each agent's conversation, readable (``--json`` keeps the
record as it is). A worker process runs the agent against the scripted model server.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from cognition.liara.commands.output import print_result, print_status
from cognition.liara.commands.records import SHOWN_TOOL_CHARS, transcript_lines
from scripts.scripted_model_server import ScriptedModelServer
from tests.helpers import assert_eventually
from tests.helpers.cli import cli, commands_agency, until_awaiting
from tests.helpers.model_agents import KEY, USAGE, agent_env, gate, script, triage
from tests.helpers.processes import WorkerProcess

#: How the script's usage reads.
SPENT = "76 tokens (60 prompt, 16 completion) in 2 model calls"
#: The conversation ``liara record show`` prints of the scripted agent.
TRANSCRIPT = [
    "Transcript of phase triage (5 messages):",
    "  system: You are a security analyst.",
    "  user: Is web-1 compromised?",
    '  assistant calls lookup [call_1]: {"host": "web-1"}',
    '  tool lookup [call_1]: {"host": "web-1", "owner": "ops"}',
    "  assistant: web-1 is clean",
]


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(script(), api_key=KEY) as server:
        yield server


@pytest.fixture
def agent_worker(liara_env: dict[str, str], tmp_path: Path, model: ScriptedModelServer) -> Iterator[dict[str, str]]:
    """A worker process with the agent; the environment of the commands (the same liara.toml)."""
    env = agent_env(liara_env, tmp_path, model.base_url)
    worker = WorkerProcess("cognition/liara/worker.py", env, tmp_path)
    yield env
    worker.stop()


def missions_file(tmp_path: Path, *phases: dict[str, Any]) -> Path:
    path = tmp_path / "missions.json"
    path.write_text(json.dumps(list(phases)))
    return path


async def start(env: dict[str, str], tmp_path: Path, *phases: dict[str, Any]) -> str:
    started = await cli(env, tmp_path, "trigger", "web-1", "--missions-file", str(missions_file(tmp_path, *phases)))
    assert started.returncode == 0, started.stderr
    return started.stdout.strip()


async def shown(env: dict[str, str], tmp_path: Path, *args: str) -> str:
    done = await cli(env, tmp_path, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.integration
async def test_status_tells_usage_so_far_while_a_crisis_runs_and_in_all_once_it_was_cancelled(agent_worker, tmp_path):
    env = agent_worker
    workflow_id = await start(env, tmp_path, triage(), gate())
    await until_awaiting(env, workflow_id, "contain")

    running = json.loads(await shown(env, tmp_path, "status", workflow_id, "--json"))
    assert running["status"] == "running" and running["usage"] == USAGE
    agent, waiting = running["phases"]
    assert agent["usage"] == USAGE and agent["transcript"] is None  # the crisis never carries it
    assert waiting["usage"] is None
    lines = (await shown(env, tmp_path, "status", workflow_id)).splitlines()
    assert f"Model usage of phase triage: {SPENT}" in lines
    assert lines[lines.index(f"Model usage of phase triage: {SPENT}") + 1] == f"Model usage so far: {SPENT}"

    assert (await cli(env, tmp_path, "cancel", workflow_id)).returncode == 0

    # Waited for through the Python API (what `liara status --json` prints), not a CLI process per poll.
    async with commands_agency(env) as api:

        async def cancelled() -> bool:
            return (await api.get_crisis_status(workflow_id))["status"] == "cancelled"

        await assert_eventually(cancelled, timeout=60, interval=0.2)
    # Ended without a result: told from its record, the transcript left there.
    ended = json.loads(await shown(env, tmp_path, "status", workflow_id, "--json"))
    assert ended["usage"] == USAGE
    assert ended["phases"][0]["usage"] == USAGE and ended["phases"][0]["transcript"] is None
    lines = (await shown(env, tmp_path, "status", workflow_id)).splitlines()
    assert [line for line in lines if line.startswith("Model usage")] == [
        f"Model usage of phase triage: {SPENT}",
        f"Model usage in all: {SPENT}",
    ]

    crisis_id = workflow_id.removeprefix("crisis-workflow-")
    record = json.loads(await shown(env, tmp_path, "record", "show", crisis_id, "--json"))
    assert record["usage"] == USAGE and record["phases"][0]["usage"] == USAGE
    roles = [message["role"] for message in record["phases"][0]["transcript"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    text = (await shown(env, tmp_path, "record", "show", crisis_id)).splitlines()
    assert text[0] == "Crisis " + crisis_id + " on web-1: cancelled"
    assert [line for line in text if line.startswith("Model usage")] == [
        f"Model usage of phase triage: {SPENT}",
        f"Model usage in all: {SPENT}",
    ]
    assert 'Output of triage: {"answer": "web-1 is clean"}' in text
    start_at = text.index(TRANSCRIPT[0])
    assert text[start_at - 1] == ""
    assert text[start_at:] == TRANSCRIPT


@pytest.mark.integration
async def test_a_finished_crisis_tells_its_usage_in_its_result_its_status_and_its_record(agent_worker, tmp_path):
    env = agent_worker
    workflow_id = await start(env, tmp_path, triage())
    waited = await cli(env, tmp_path, "wait", workflow_id)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    lines = waited.stdout.splitlines()
    at = lines.index(f"Model usage of phase triage: {SPENT}")
    assert lines[at + 1 : at + 3] == [
        f"Model usage in all: {SPENT}",
        "Success: True (1 of 1 phases completed, 0 failed)",
    ]

    report = json.loads(await shown(env, tmp_path, "status", workflow_id, "--json"))
    assert report["result"]["usage"] == USAGE and report["result"]["phases"][0]["usage"] == USAGE
    status_lines = (await shown(env, tmp_path, "status", workflow_id)).splitlines()
    assert f"Model usage of phase triage: {SPENT}" in status_lines
    assert f"Model usage in all: {SPENT}" in status_lines

    crisis_id = workflow_id.removeprefix("crisis-workflow-")
    text = (await shown(env, tmp_path, "record", "show", crisis_id)).splitlines()
    assert f"Model usage in all: {SPENT}" in text
    assert text[text.index(TRANSCRIPT[0]) :] == TRANSCRIPT


# --- rendering, without a server ----------------------------------------------------------------


def console() -> Console:
    return Console(file=io.StringIO(), width=500)


def printed(target: Console) -> list[str]:
    assert isinstance(target.file, io.StringIO)
    return target.file.getvalue().splitlines()


def outcome(phase_id: str, usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "phase_id": phase_id,
        "agent_id": "a",
        "action": "investigate",
        "status": "completed",
        "attempts": 1,
        "error": None,
        "usage": usage,
    }


def test_a_crisis_without_agents_prints_no_usage():
    out = console()
    result = {
        "crisis_id": "c",
        "target": "t",
        "status": "completed",
        "success": True,
        "phases": [outcome("recon")],
        "summary": {"completed_phases": 1, "failed_phases": 0, "total_phases": 1},
        "usage": None,
    }
    print_result(result, out)
    assert not [line for line in printed(out) if "usage" in line.lower()]


def test_usage_of_each_agent_phase_and_compensation_and_the_sum_of_a_worker_that_gives_none():
    one = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "model_calls": 1}
    report = {
        "status": "running",
        "stage": "compensating",
        "current_phase": None,
        "phases": [outcome("triage", USAGE), outcome("recon")],
        "compensations": [outcome("undo-triage", one)],
    }  # no "usage": a worker of an earlier release
    out = console()
    print_status("crisis-workflow-c", report, out)
    assert [line for line in printed(out) if line.startswith("Model usage")] == [
        f"Model usage of phase triage: {SPENT}",
        "Model usage of compensation undo-triage: 15 tokens (10 prompt, 5 completion) in 1 model call",
        "Model usage so far: 91 tokens (70 prompt, 21 completion) in 3 model calls",
    ]


def test_a_transcript_cuts_long_tool_results_and_reads_any_message_shape():
    long_result = "r" * (SHOWN_TOOL_CHARS + 20)
    lines = transcript_lines(
        "phase p",
        [
            {"role": "user", "content": [{"type": "text", "text": "first"}, {"type": "text", "text": " part"}]},
            {
                "role": "assistant",
                "content": "Looking both up.\nOne moment.",
                "tool_calls": [
                    {"id": "c1", "function": {"name": "lookup", "arguments": '{"host": "a"}'}},
                    {"id": "c2", "function": {"name": "isolate", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "c2", "content": "error: no such host"},
            {"role": "tool", "tool_call_id": "c1", "content": long_result},
            {"role": "tool", "tool_call_id": "unknown", "content": None},
            "not a message",
        ],
    )
    assert lines == [
        "Transcript of phase p (6 messages):",
        "  user: first part",
        "  assistant: Looking both up.",
        "    One moment.",
        '  assistant calls lookup [c1]: {"host": "a"}',
        "  assistant calls isolate [c2]:",
        "  tool isolate [c2]: error: no such host",
        f"  tool lookup [c1]: {'r' * SHOWN_TOOL_CHARS}… (cut: 20 more characters)",
        "  tool ? [unknown]:",
        '  ?: "not a message"',
    ]
