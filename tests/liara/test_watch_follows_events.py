"""``liara watch`` and ``liara wait`` follow a crisis's event stream, as the console does: where it
stands is read once at the start and its events tell every change after, on Temporal and through
the service (its Server-Sent Events), the text of its language-model agents included. Nothing
asks where the crisis stands while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.commands.crises import blocked_by
from cognition.liara.commands.live_text import Standing
from cognition.liara.errors import CrisisNotFoundError
from cognition.liara.remote import RemoteAgency
from scripts.scripted_model_server import Answer, ScriptedModelServer
from tests.helpers import assert_eventually
from tests.helpers.cli import assert_one_sentence_error
from tests.helpers.counted_cli import calls, start_counted
from tests.helpers.model_agents import (
    KEY,
    agent_config,
    agent_worker,
    agent_worker_process,
    gate,
    triage,
    triage_missions,
)
from tests.helpers.processes import WorkerProcess
from tests.helpers.service import crisis_body, phase_status, start

FINDINGS = (
    "Findings on web-1:\n- packages match the baseline\n- no unknown listener\nVerdict: clean, keep it in rotation."
)
UNKNOWN = "crisis-workflow-does-not-exist"


# --- where the crisis stands, from its status and its events --------------------------------------


def status(*phases: tuple[str, str], **more: Any) -> dict[str, Any]:
    listed = [
        {"phase_id": phase_id, "status": state, "approvals": 0, "approvals_required": 1} for phase_id, state in phases
    ]
    return {"workflow_id": "crisis-workflow-x", "status": "running", "stage": "running", "phases": listed, **more}


def event(offset: int, kind: str, **data: Any) -> dict[str, Any]:
    return {"id": offset, "event": kind, "data": {"kind": kind, **data}}


def standing_line(standing: Standing) -> tuple[str | None, int, int]:
    report = standing.report()
    summary = report["summary"]
    return report["current_phase"], summary["completed_phases"] + summary["failed_phases"], summary["total_phases"]


def test_the_story_up_to_the_status_is_not_shown_again_and_every_change_after_it_is() -> None:
    told = status(("recon", "completed"), ("scan", "running"), ("report", "pending"))
    standing = Standing(told)
    assert standing.report() is told  # the status, until an event comes

    # The stream starts at the crisis's first event: its phases start over, unseen.
    assert not standing.apply(event(0, "phase", phase_id="recon", status="running"))
    assert not standing.caught_up
    assert not standing.apply(event(1, "agent_output", phase_id="recon", turn=1, delta="text"))
    assert not standing.apply(event(2, "phase", phase_id="recon", status="completed"))
    assert standing.apply(event(3, "phase", phase_id="scan", status="running"))  # where the status found it
    assert standing.caught_up and standing_line(standing) == ("scan", 1, 3)

    assert standing.apply(event(4, "phase", phase_id="scan", status="failed", error="boom"))
    assert standing_line(standing) == (None, 2, 3)
    assert standing.apply(event(5, "phase", phase_id="report", status="running"))
    assert standing_line(standing) == ("report", 2, 3)
    assert not standing.apply(event(6, "agent_output", phase_id="report", turn=1, delta="text"))


def test_a_stream_without_its_first_events_starts_from_the_status() -> None:
    standing = Standing(status(("recon", "completed"), ("scan", "running")))
    assert standing.apply(event(40, "phase", phase_id="scan", status="completed"))
    assert standing.caught_up and standing_line(standing) == (None, 2, 2)


def test_approvals_and_added_phases_come_from_the_events() -> None:
    standing = Standing(status(("gate", "pending")))  # nothing happened yet: caught up at once
    assert standing.apply(event(0, "phase", phase_id="gate", status="awaiting_approval"))
    assert standing.apply(event(1, "approval_required", phase_id="gate", approvals=0, approvals_required=2))
    assert standing.apply(event(2, "decision", phase_id="gate", approved=True, approvals=1, approvals_required=2))
    assert blocked_by(standing.report(), []) == [
        "awaiting approval of gate (1 of 2): decide with `liara approve crisis-workflow-x gate` or "
        "`liara reject crisis-workflow-x gate`"
    ]
    assert standing.apply(event(3, "phase", phase_id="gate", status="running"))
    assert blocked_by(standing.report(), []) == []
    assert standing.apply(event(4, "phase", phase_id="late-phase-2", status="running"))  # added while it ran
    assert standing_line(standing) == ("gate", 0, 2)


def test_a_crisis_no_worker_told_says_so_until_its_first_event() -> None:
    note = "no worker polls task queue 'q': start one with `liara worker --task-queue q`"
    told = {"workflow_id": "crisis-workflow-x", "status": "running", "stage": "unknown", "note": note}
    standing = Standing({**told, "workers_polling": 0})
    assert not standing.knows_phases
    assert blocked_by(standing.report(), []) == [note]
    assert standing.apply(event(0, "phase", phase_id="recon", status="running"))
    assert blocked_by(standing.report(), []) == []
    assert standing.report()["stage"] == "running"


# --- the service's event stream, as the remote agency reads it ---------------------------------------


def sse(*events: tuple[int, str, dict[str, Any]]) -> bytes:
    said = [f"id: {offset}\nevent: {kind}\ndata: {json.dumps(data)}\n\n" for offset, kind, data in events]
    return (": keep-alive\n\n" + "".join(said)).encode()


async def test_a_stream_that_ends_early_is_resumed_after_the_last_event_read() -> None:
    asked: list[str | None] = []

    def serve(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("Last-Event-ID"))
        if len(asked) == 1:  # the service stops: the stream ends before the crisis does
            body = sse((0, "phase", {"phase_id": "a", "status": "running"}), (1, "agent_output", {"delta": "x"}))
        else:
            body = sse((2, "finished", {"status": "completed", "result": {"success": True}}))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    async with RemoteAgency("http://liara.test") as remote:
        await remote._http.aclose()
        remote._http = httpx.AsyncClient(base_url="http://liara.test", transport=httpx.MockTransport(serve))
        events = [event async for event in remote.crisis_events("crisis-workflow-x")]

    assert [(event["id"], event["event"]) for event in events] == [(0, "phase"), (1, "agent_output"), (2, "finished")]
    assert events[2]["data"]["result"] == {"success": True}
    assert asked == [None, "1"]


async def test_a_problem_on_the_stream_is_the_agencys_error() -> None:
    problem = {
        "type": "https://liara.dev/problems/crisis-not-found",
        "title": "No such crisis",
        "status": 404,
        "detail": f"No crisis workflow '{UNKNOWN}' in namespace 'default'.",
    }

    def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse((0, "problem", problem)))

    async with RemoteAgency("http://liara.test") as remote:
        await remote._http.aclose()
        remote._http = httpx.AsyncClient(base_url="http://liara.test", transport=httpx.MockTransport(serve))
        with pytest.raises(CrisisNotFoundError, match="No crisis workflow"):
            async for _ in remote.crisis_events(UNKNOWN):
                pass


# --- on Temporal ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModelServer]:
    """A model whose answer streams for a few seconds (16 pieces), so the crisis runs a while."""
    with ScriptedModelServer([], api_key=KEY, chunk_delay=0.25) as server:
        yield server


async def read_until(stream: asyncio.StreamReader | None, prefix: str) -> list[str]:
    """The lines ``stream`` gives up to the first that starts with ``prefix`` (the last of them)."""
    assert stream is not None
    lines: list[str] = []
    while not (line := (await stream.readline()).decode()).startswith(prefix):
        assert line, f"the output ended before a line starting with {prefix!r}: {''.join(lines)}"
        lines.append(line)
    return [*lines, line]


async def finish(process: asyncio.subprocess.Process) -> tuple[str, str]:
    """The rest of ``process``'s output once it ends (killed if the test fails first)."""
    try:
        async with asyncio.timeout(90):
            out, err = await process.communicate()
    except TimeoutError:
        process.send_signal(signal.SIGUSR1)  # counted_cli writes where it waits
        await asyncio.sleep(2)
        process.kill()
        out, err = await process.communicate()
        raise AssertionError(f"the command did not end; where it waited:\n{err.decode()[-20000:]}") from None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return out.decode(), err.decode()


@pytest.mark.integration
async def test_watch_follows_the_events_without_asking_where_the_crisis_stands(
    dev_server, task_queue, liara_env, tmp_path, model, monkeypatch
):
    model.set_script([Answer(FINDINGS)])
    log = tmp_path / "calls.log"
    async with (
        agent_worker(dev_server.client, task_queue, tmp_path, agent_config(model.base_url), monkeypatch),
        LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency,
    ):
        workflow_id = await agency.trigger_crisis_response("web-1", triage_missions(), "tester")
        watcher = await start_counted(liara_env, tmp_path, log, "watch", workflow_id)
        try:
            async with asyncio.timeout(60):
                shown = await read_until(watcher.stdout, "triage> ")
            # The answer streams on: the crisis runs, and the watcher has been following it.
            assert (await agency.get_crisis_status(workflow_id))["status"] == "running"
        finally:
            rest, errors = await finish(watcher)

    output = "".join(shown) + rest
    assert watcher.returncode == 0, output + errors
    assert [line for line in output.splitlines() if line.startswith("triage> ")] == [
        f"triage> {line}" for line in FINDINGS.splitlines()
    ]
    assert "running: triage (0/1 phases done)" in output.splitlines()
    assert "Success: True (1 of 1 phases completed, 0 failed)" in output.splitlines()
    # Where the crisis stands was asked once, at the start; then only its event stream was read
    # (a watch that polls asks for the progress every half second while the answer streams).
    # (The stream itself may describe the ended run and query it for its last events.)
    made = calls(log)
    assert [call for call in made if call.startswith("query") and "workflow_stream" not in call] == [
        "query progress"
    ], made
    assert made.count("describe") <= 3, made  # the status, the stream's start, and its end


@pytest.mark.integration
async def test_watch_follows_a_crisis_that_continues_as_new(agency, liara_env, liara_worker, tmp_path):
    gated = {"phase_id": "gate", "agent_id": "a", "action": "deploy", "target": "t-can", "requires_approval": True}
    steps = [{"phase_id": f"step-{n:02d}", "agent_id": "a", "action": "deploy", "target": "t-can"} for n in range(12)]
    started = await agency.start_crisis("t-can", [gated, *steps], "tester", history_budget_events=50)
    workflow_id = started["workflow_id"]
    first_run = (await agency.client.get_workflow_handle(workflow_id).describe()).run_id

    async def at_the_gate() -> bool:
        phases = (await agency.get_crisis_status(workflow_id)).get("phases") or []
        return any(phase["status"] == "awaiting_approval" for phase in phases)

    await assert_eventually(at_the_gate, timeout=60, interval=0.2)
    watcher = await start_counted(liara_env, tmp_path, tmp_path / "calls.log", "watch", workflow_id)
    try:
        async with asyncio.timeout(60):
            shown = await read_until(watcher.stdout, "awaiting approval of gate")
        await agency.approve_phase(workflow_id, "gate", "commander")
    finally:
        rest, errors = await finish(watcher)

    output = "".join(shown) + rest
    assert watcher.returncode == 0, output + errors
    assert shown[0] == "running: gate (0/13 phases done)\n", output
    assert "Success: True (13 of 13 phases completed, 0 failed)" in output.splitlines()
    done = [int(line.rsplit("(", 1)[1].split("/")[0]) for line in output.splitlines() if line.endswith("phases done)")]
    assert done == sorted(done) and done[-1] >= 12, output  # one story, across the runs
    assert (await agency.client.get_workflow_handle(workflow_id).describe()).run_id != first_run
    assert "Traceback" not in errors


# --- through the service --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service_worker(
    service_env: dict[str, str], service_dir: Path, model: ScriptedModelServer
) -> Iterator[WorkerProcess]:
    """The module's worker, with the language-model agent."""
    with agent_worker_process(service_env, service_dir, model.base_url) as worker:
        yield worker


@pytest.fixture
def operator_env(liara_service, service_tokens) -> dict[str, str]:
    """An operator's shell: the service's address and a token, nothing of Temporal's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}
    return {**env, "LIARA_API_URL": liara_service.url, "LIARA_API_TOKEN": service_tokens.by_name["operator-1"]}


@pytest.fixture
async def http(liara_service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=liara_service.url, timeout=90) as client:
        yield client


@pytest.mark.integration
async def test_watch_through_the_service_shows_the_agents_text_from_its_event_stream(
    operator_env, http, service_tokens, model, tmp_path
):
    model.set_script([Answer(FINDINGS)])
    operator = service_tokens.headers("operator-1")
    workflow_id = await start(http, operator, crisis_body(triage("web-1"), target="web-1"))
    log = tmp_path / "calls.log"
    watcher = await start_counted(operator_env, tmp_path, log, "watch", workflow_id)
    try:
        async with asyncio.timeout(60):
            shown = await read_until(watcher.stdout, "triage> ")
        assert shown[-1] == "triage> Findings on web-1:\n"
        assert (await http.get(f"/v1/crises/{workflow_id}", headers=operator)).json()["status"] == "running"
    finally:
        rest, errors = await finish(watcher)

    output = "".join(shown) + rest
    assert watcher.returncode == 0, output + errors
    assert [line for line in output.splitlines() if line.startswith("triage> ")] == [
        f"triage> {line}" for line in FINDINGS.splitlines()
    ]
    assert output.index("triage> Verdict") < output.index("Success: True")
    # Its status once, then its event stream, to the end: no polling while it runs.
    assert calls(log) == [f"GET /v1/crises/{workflow_id}", f"GET /v1/crises/{workflow_id}/events"]

    # Watched again once it has ended: its agent's text, then its result.
    again = await start_counted(operator_env, tmp_path, tmp_path / "again.log", "watch", workflow_id)
    replayed, errors = await finish(again)
    assert again.returncode == 0, replayed + errors
    assert [line for line in replayed.splitlines() if line.startswith("triage> ")][0] == "triage> Findings on web-1:"
    assert "Success: True (1 of 1 phases completed, 0 failed)" in replayed.splitlines()

    as_json = await start_counted(operator_env, tmp_path, tmp_path / "json.log", "watch", workflow_id, "--json")
    lines, errors = await finish(as_json)
    assert as_json.returncode == 0, lines + errors
    events = [json.loads(line) for line in lines.splitlines()]
    assert [event["id"] for event in events] == list(range(len(events)))
    assert "".join(event["data"]["delta"] for event in events if event["event"] == "agent_output") == FINDINGS
    assert events[-1]["event"] == "finished" and events[-1]["data"]["result"]["success"]


@pytest.mark.integration
async def test_watch_through_the_service_gives_up_at_its_timeout_and_stops_at_ctrl_c(
    operator_env, http, service_tokens, tmp_path
):
    operator = service_tokens.headers("operator-1")
    workflow_id = await start(http, operator, crisis_body(gate("web-2"), target="web-2"))

    async def at_the_gate() -> bool:
        return await phase_status(http, operator, workflow_id, "contain") == "awaiting_approval"

    await assert_eventually(at_the_gate, timeout=60, interval=0.2)
    awaiting = (
        f"awaiting approval of contain (0 of 1): decide with `liara approve {workflow_id} contain` or "
        f"`liara reject {workflow_id} contain`"
    )
    timed = await start_counted(operator_env, tmp_path, tmp_path / "timed.log", "watch", workflow_id, "--timeout", "1")
    out, errors = await finish(timed)
    assert timed.returncode == 1, out + errors
    # The commands it prints name the service, as they were given.
    told = awaiting.replace("`liara ", f"`liara --api {operator_env['LIARA_API_URL']} ")
    assert out.splitlines()[:2] == ["running: contain (0/1 phases done)", told]
    assert assert_one_sentence_error(errors) == (
        f"Error: Crisis workflow {workflow_id} did not finish within 1 s; it keeps running, but it is {awaiting}."
    )

    interrupted = await start_counted(operator_env, tmp_path, tmp_path / "ctrl-c.log", "watch", workflow_id)
    try:
        async with asyncio.timeout(60):
            await read_until(interrupted.stdout, "awaiting approval of contain")
        interrupted.send_signal(signal.SIGINT)
    finally:
        out, errors = await finish(interrupted)
    assert interrupted.returncode == 130, out + errors
    assert errors.strip().splitlines() == ["Interrupted; the crisis goes on in Temporal."]
    assert (await http.get(f"/v1/crises/{workflow_id}", headers=operator)).json()["status"] == "running"
    assert (await http.post(f"/v1/crises/{workflow_id}/cancel", headers=operator)).is_success


@pytest.mark.integration
async def test_leaving_the_remote_agency_stops_the_event_streams_it_read(liara_service, service_tokens, http):
    operator = service_tokens.headers("operator-1")
    workflow_id = await start(http, operator, crisis_body(gate("web-3"), target="web-3"))

    def stream_readers() -> list[asyncio.Task[Any]]:
        return [
            t
            for t in asyncio.all_tasks()
            if getattr(t.get_coro(), "__qualname__", "") == "CrisisFeed._read" and not t.done()
        ]

    async with RemoteAgency(liara_service.url, service_tokens.by_name["operator-1"]) as remote:
        async with contextlib.aclosing(remote.crisis_events(workflow_id)) as events:
            first = await anext(events)
        assert first["id"] == 0
        assert len(stream_readers()) == 1, "the crisis waits at its gate: its stream stays open for the next event"
    assert stream_readers() == []
    assert (await http.post(f"/v1/crises/{workflow_id}/cancel", headers=operator)).is_success


async def test_watch_and_wait_through_the_service_of_an_unknown_crisis_say_so_once(operator_env, tmp_path):
    for args in (("watch", UNKNOWN), ("watch", UNKNOWN, "--json"), ("wait", UNKNOWN)):
        refused = await start_counted(operator_env, tmp_path, tmp_path / "unknown.log", *args)
        out, errors = await finish(refused)
        assert refused.returncode == 1, args
        assert f"No crisis workflow '{UNKNOWN}'" in assert_one_sentence_error(errors), args
        assert out == ""
