"""Triage an alert with a language-model analyst: the ``ai-triage`` playbook end to end.

The analyst (an ``llm`` executor) looks the host up with a ``lookup`` tool (lookup_host.py, beside
this file) and proposes a containment; the containment waits for approval, which this example
gives as a second person (whoever starts a crisis may not decide its gates); then a report. It
prints the analyst's answer, what the model spent and where the crisis record (with the
analyst's transcript) is.

Needs a Temporal server (TEMPORAL_ADDRESS, default localhost:7233); the worker runs in this
process, on a task queue of its own, with the executors it writes to a temporary liara.toml:

    python scripts/setup_temporal.py start
    python examples/temporal/liara_ai_triage_example.py          # the scripted model server

    LIARA_MODEL_BASE_URL=https://api.openai.com/v1 LIARA_MODEL=gpt-4.1-mini LIARA_MODEL_API_KEY=sk-... \\
        python examples/temporal/liara_ai_triage_example.py      # any OpenAI-compatible endpoint

Without LIARA_MODEL_BASE_URL the model is scripts/scripted_model_server.py answering from a
canned script, and the example says so. LIARA_MODEL_API_KEY is optional (a local vLLM or
Ollama needs none); the worker reads it from its environment at each call, and it is never
written to the configuration, the history or the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.worker import Worker

from app.temporal.activities import CrisisActivities
from app.temporal.agent_steps import AgentStepActivities
from app.temporal.agents import load_executor_registry
from app.temporal.client import run_and_exit
from app.temporal.records import configured_record_store
from app.temporal.worker import WORKFLOW_RUNNER
from app.temporal.workflows import CrisisResponseWorkflow
from cognition.liara import LiaraError
from cognition.liara.agency import LiaraTemporalAgency

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
PLAYBOOK = REPO_ROOT / "playbooks" / "ai-triage.yaml"
LOOKUP_TOOL = HERE / "lookup_host.py"
SCRIPTED_SERVER = REPO_ROOT / "scripts" / "scripted_model_server.py"

BASE_URL_ENV, MODEL_ENV, KEY_ENV = "LIARA_MODEL_BASE_URL", "LIARA_MODEL", "LIARA_MODEL_API_KEY"
HOST = "web-7"
ALERT = "Unusual outbound traffic at night"
STARTER = "ai-triage-example"
APPROVER = "duty-lead"
SYSTEM = (
    "You are a security analyst on call. Before you judge a host, look it up with the lookup tool. "
    "Answer in plain text, at most three sentences: whether the host looks compromised, why, and one "
    "containment step."
)
#: What the scripted model answers: a lookup of the host, then a proposal that quotes what the
#: lookup tool knows of it. Usage as [prompt_tokens, completion_tokens].
CANNED_SCRIPT: list[dict[str, Any]] = [
    {"tool_calls": [["lookup", {"host": HOST}]], "usage": [212, 17]},
    {
        "answer": (
            f"{HOST} looks compromised: a new SSH key for the deploy user at 03:12 was followed two minutes "
            "later by 1.2 GB sent to 203.0.113.50:4444, a port typical of reverse shells. "
            f"Isolate {HOST} from the network, keeping it running for forensics, and revoke the new key."
        ),
        "usage": [391, 58],
    },
]
#: Longest waits: for the analyst to reach the gate (a real model may take its time), then for the end.
GATE_WAIT_SECONDS = 300.0
END_WAIT_SECONDS = 120.0


class ExampleError(Exception):
    """A problem this example reports in one sentence."""


def model_settings() -> tuple[str, str, str | None] | None:
    """(base URL, model, the key's variable) from the environment; None to use the scripted model."""
    base_url = os.environ.get(BASE_URL_ENV, "").strip()
    if not base_url:
        return None
    if not base_url.startswith(("http://", "https://")):
        raise ExampleError(f"{BASE_URL_ENV} must be an http(s) URL ending in /v1, not {base_url!r}.")
    model = os.environ.get(MODEL_ENV, "").strip()
    if not model:
        raise ExampleError(f"{BASE_URL_ENV} is set but {MODEL_ENV} is not: name the model too (e.g. gpt-4.1-mini).")
    return base_url, model, KEY_ENV if os.environ.get(KEY_ENV) else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def scripted_model(directory: Path) -> Iterator[str]:
    """``scripts/scripted_model_server.py`` answering ``CANNED_SCRIPT``, as a process; its base URL."""
    script = directory / "canned-script.json"
    script.write_text(json.dumps(CANNED_SCRIPT, indent=2))
    log = directory / "scripted-model.log"
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPTED_SERVER), "--port", str(port), "--script", str(script)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                said = log.read_text().strip().splitlines()
                raise ExampleError(
                    f"The scripted model server did not start on port {port}"
                    + (f": {said[-1].removeprefix('Error: ')}" if said else ".")
                )
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a TOML basic string


def write_config(directory: Path, base_url: str, model: str, key_env: str | None) -> Path:
    """The worker's liara.toml: ``investigate`` by the llm executor ``analyst``, its tool ``lookup``."""
    argv = ", ".join(toml_string(part) for part in (sys.executable, str(LOOKUP_TOOL)))
    key_line = f"api_key_env = {toml_string(key_env)}\n" if key_env else ""
    config = directory / "liara.toml"
    config.write_text(
        "[agents.actions]\n"
        'investigate = "analyst"\n\n'
        "[executors.analyst]\n"
        'type = "llm"\n'
        f"base_url = {toml_string(base_url)}\n"
        f"model = {toml_string(model)}\n"
        f"{key_line}"
        f"system = {toml_string(SYSTEM)}\n"
        'tools = ["lookup"]\n'
        "max_turns = 6\n"
        "timeout_seconds = 120\n\n"
        "[executors.lookup]\n"
        'type = "command"\n'
        f"argv = [{argv}]\n"
        "non_retryable_exit_codes = [2]\n"
        "timeout_seconds = 30\n"
        'description = "Looks a host up in the inventory: its role, owner, exposure and recent events."\n'
        'parameters = { type = "object", properties = { host = { type = "string", description = "The host name" } },'
        ' required = ["host"] }\n'
    )
    return config


@contextlib.asynccontextmanager
async def worker(agency: LiaraTemporalAgency, config: Path) -> AsyncIterator[str]:
    """A crisis worker in this process with ``config``'s executors and this machine's record store;
    yields how the record store is described.
    """
    registry = load_executor_registry(config, environ={})  # the example's executors, whatever the environment maps
    store = configured_record_store()
    try:
        async with (
            store,
            Worker(
                agency.client,
                task_queue=agency.settings.task_queue,
                workflows=[CrisisResponseWorkflow],
                activities=[*CrisisActivities(store, registry).all(), *AgentStepActivities(registry, store).all()],
                workflow_runner=WORKFLOW_RUNNER,
                max_heartbeat_throttle_interval=timedelta(seconds=1),
                graceful_shutdown_timeout=timedelta(seconds=5),
            ),
        ):
            yield store.describe()
    finally:
        await registry.aclose()


def phases_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {phase["phase_id"]: phase for phase in report.get("phases", [])}


async def until_gate_or_end(agency: LiaraTemporalAgency, workflow_id: str) -> dict[str, Any]:
    """The crisis's status once ``contain`` awaits approval, or once the crisis has ended."""
    deadline = time.monotonic() + GATE_WAIT_SECONDS
    while True:
        report = await agency.get_crisis_status(workflow_id)
        if report["status"] != "running" or phases_of(report).get("contain", {}).get("status") == "awaiting_approval":
            return report
        if time.monotonic() > deadline:
            await agency.cancel_crisis(workflow_id, cancelled_by=STARTER)
            raise ExampleError(
                f"The analyst of {workflow_id} gave no answer within {GATE_WAIT_SECONDS:g} s, "
                "so the crisis was cancelled."
            )
        await asyncio.sleep(0.3)


def first_error(phases: list[dict[str, Any]]) -> str:
    failed = [phase for phase in phases if phase["status"] == "failed"]
    if not failed:
        return "no phase says why."
    return f"phase {failed[0]['phase_id']} failed: {failed[0].get('error') or 'no error was given.'}"


def tool_calls(transcript: list[dict[str, Any]]) -> list[str]:
    """Each tool call of a transcript, as ``name {arguments}``."""
    return [
        f"{call['function']['name']} {call['function']['arguments']}"
        for message in transcript
        if message.get("role") == "assistant"
        for call in message.get("tool_calls") or []
    ]


def usage_line(usage: dict[str, Any] | None) -> str:
    if not usage:
        return "none told"
    return (
        f"{usage['model_calls']} model call(s), {usage['prompt_tokens']} prompt + "
        f"{usage['completion_tokens']} completion = {usage['total_tokens']} tokens"
    )


async def triage(base_url: str, model: str, key_env: str | None, directory: Path) -> int:
    config = write_config(directory, base_url, model, key_env)
    task_queue = f"liara-ai-triage-example-{uuid.uuid4().hex[:8]}"
    async with LiaraTemporalAgency(task_queue=task_queue) as agency, worker(agency, config) as records:
        print(f"Worker: in this process on task queue {task_queue}; executors in {config}; records in {records}")
        started = await agency.start_playbook(PLAYBOOK, {"host": HOST, "alert": ALERT}, STARTER)
        workflow_id = started["workflow_id"]
        print(f"Started {workflow_id} (playbook ai-triage, host {HOST}, by {STARTER})")

        report = await until_gate_or_end(agency, workflow_id)
        if report["status"] == "running":
            await agency.approve_phase(workflow_id, "contain", approved_by=APPROVER)
            print(
                f"Approved contain, the analyst's proposal, as {APPROVER} "
                f"({STARTER} started the crisis and may not decide its gates)"
            )
            result = await agency.wait_for_crisis_completion(workflow_id, timeout=END_WAIT_SECONDS)
        else:
            result = report.get("result") or {"success": False, "phases": report.get("phases", [])}

        if not result.get("success"):
            print(f"Error: crisis {workflow_id} did not succeed: {first_error(result['phases'])}", file=sys.stderr)
            return 3
        investigate = phases_of(result)["investigate"]
        record = await agency.read_record(result["crisis_id"])
    entry = phases_of(record).get("investigate", {})
    print(f"Tool calls: {', '.join(tool_calls(entry.get('transcript') or [])) or 'none'}")
    answer = investigate["output"].get("answer") if isinstance(investigate["output"], dict) else None
    print(f"Answer: {answer if answer is not None else json.dumps(investigate['output'])}")
    print(f"Usage: {usage_line(result.get('usage'))}")
    print(f"Record: {result.get('record_path')} (the analyst's transcript is in its phase investigate)")
    print(f"Success: {result['success']}")
    return 0


def quiet_worker_logs() -> None:
    """The worker's own warnings stay on stderr; the crisis's phases and their failures are this
    example's to tell, once, in its own words.
    """
    logging.basicConfig(level=logging.WARNING, format="worker: %(levelname)s %(name)s: %(message)s")
    for name in ("liara", "temporalio.workflow", "temporalio.activity"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


async def run_example() -> int:
    settings = model_settings()
    quiet_worker_logs()
    with tempfile.TemporaryDirectory(prefix="liara-ai-triage-") as temporary:
        directory = Path(temporary)
        if settings is not None:
            base_url, model, key_env = settings
            key = f", key from {key_env}" if key_env else f", no key ({KEY_ENV} is not set)"
            print(f"Model: {model} at {base_url}{key}")
            return await triage(base_url, model, key_env, directory)
        with scripted_model(directory) as base_url:
            print(
                f"Model: no {BASE_URL_ENV} is set, so the analyst is the scripted model server at {base_url}, "
                "answering from a canned script (set "
                f"{BASE_URL_ENV}, {MODEL_ENV} and {KEY_ENV} to use a real model)"
            )
            return await triage(base_url, "scripted-analyst", None, directory)


def main() -> None:
    try:
        code = asyncio.run(run_example())
    except (LiaraError, ExampleError) as err:
        print(f"Error: {err}", file=sys.stderr)
        code = 1
    raise SystemExit(code)


if __name__ == "__main__":
    run_and_exit(main)
