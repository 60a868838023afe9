"""``liara watch`` shows the text a crisis's language-model agents write, as they write it, in
``PHASE> text`` lines; ``liara watch --json`` prints every event as a JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.commands.live_text import LiveText
from scripts.scripted_model_server import Answer, ScriptedModelServer
from tests.helpers import REPO_ROOT
from tests.helpers.cli import cli
from tests.helpers.model_agents import KEY, agent_config, agent_worker, triage_missions

FINDINGS = (
    "Findings on web-1:\n- packages match the baseline\n- no unknown listener\nVerdict: clean, keep it in rotation."
)


def output(phase_id: str, turn: int, delta: str, **more: Any) -> dict[str, Any]:
    data = {"kind": "agent_output", "phase_id": phase_id, "turn": turn, "delta": delta, **more}
    return {"id": 0, "event": "agent_output", "data": data}


def test_lines_are_shown_once_complete_and_the_rest_when_the_phase_ends() -> None:
    text = LiveText()
    assert text.lines(output("triage", 1, "Findings on")) == []
    assert text.lines(output("triage", 1, " web-1:\n- clean\n- no")) == [
        "triage> Findings on web-1:",
        "triage> - clean",
    ]
    assert text.lines(output("scan", 1, "scanning\n")) == ["scan> scanning"]  # phases side by side
    assert text.lines({"id": 1, "event": "phase", "data": {"phase_id": "triage", "status": "completed"}}) == [
        "triage> - no"
    ]
    assert text.lines({"id": 2, "event": "finished", "data": {"status": "completed"}}) == []


def test_a_new_model_call_a_restart_and_a_cut_say_so() -> None:
    text = LiveText()
    assert text.lines(output("triage", 1, "Let me look")) == []
    assert text.lines(output("triage", 2, "It is")) == ["triage> Let me look"]
    restarted = text.lines(output("triage", 2, "web-1 is", restart=True))
    assert restarted == ["triage> (model call 2 was tried again: its text starts over)"]
    assert text.lines(output("triage", 2, " clean", cut=True)) == [
        "triage> web-1 is clean",
        "triage> … (the rest of this answer is in the phase's output)",
    ]
    undo = output("triage", 1, "undone\n", compensation=True)
    assert text.lines(undo) == ["triage (compensation)> undone"]


@pytest.fixture
def slow_model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([], api_key=KEY, chunk_delay=0.3) as server:
        yield server


@pytest.mark.integration
async def test_watch_prints_the_agents_text_while_the_phase_runs(
    dev_server, task_queue, liara_env, tmp_path, slow_model, monkeypatch
):
    slow_model.set_script([Answer(FINDINGS)])
    async with (
        agent_worker(dev_server.client, task_queue, tmp_path, agent_config(slow_model.base_url), monkeypatch),
        LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency,
    ):
        workflow_id = await agency.trigger_crisis_response("web-1", triage_missions(), "tester")
        watcher = await asyncio.create_subprocess_exec(
            sys.executable,
            str(REPO_ROOT / "cognition/liara/cli.py"),
            "watch",
            workflow_id,
            env=liara_env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(60):
                assert watcher.stdout is not None
                lines: list[str] = []
                while not (line := (await watcher.stdout.readline()).decode()).startswith("triage> "):
                    assert line, "watch ended without the agent's text"
                    lines.append(line)
                # The first line of the answer, shown while the answer still streams.
                assert line == "triage> Findings on web-1:\n"
                assert (await agency.get_crisis_status(workflow_id))["status"] == "running"
                rest, errors = await watcher.communicate()
        finally:
            if watcher.returncode is None:
                watcher.kill()
                await watcher.wait()

    shown = "".join([*lines, line]) + rest.decode()
    assert watcher.returncode == 0, shown + errors.decode()
    agent_lines = [text for text in shown.splitlines() if text.startswith("triage> ")]
    assert agent_lines == [f"triage> {text}" for text in FINDINGS.splitlines()]
    assert shown.index("triage> Verdict") < shown.index("Success: True")  # the text, then the result
    assert "Traceback" not in errors.decode()


@pytest.mark.integration
async def test_watch_json_prints_each_event_as_a_json_line(
    dev_server, task_queue, liara_env, tmp_path, slow_model, monkeypatch
):
    slow_model.chunk_delay = 0.01
    slow_model.set_script([Answer(FINDINGS)])
    async with (
        agent_worker(dev_server.client, task_queue, tmp_path, agent_config(slow_model.base_url), monkeypatch),
        LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency,
    ):
        workflow_id = await agency.trigger_crisis_response("web-1", triage_missions(), "tester")
        watched = await cli(liara_env, tmp_path, "watch", workflow_id, "--json")

    assert watched.returncode == 0, watched.stdout + watched.stderr
    events = [json.loads(line) for line in watched.stdout.splitlines()]
    assert [event["id"] for event in events] == list(range(len(events)))
    assert "".join(event["data"]["delta"] for event in events if event["event"] == "agent_output") == FINDINGS
    assert events[-1]["event"] == "finished" and events[-1]["data"]["result"]["success"]
