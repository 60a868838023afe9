"""A language-model agent for the tests of what people see of it (statuses, records, the API,
metrics): a worker configuration with an ``llm`` executor talking to the scripted model server,
a ``lookup`` tool, and the two-call script whose usage the tests expect.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from app.temporal.activities import CrisisActivities
from app.temporal.agent_steps import AgentStepActivities
from app.temporal.agents import load_executor_registry
from app.temporal.records import FileRecordStore
from app.temporal.workflows import CrisisResponseWorkflow
from scripts.scripted_model_server import Answer, Step, ToolCalls
from tests.helpers import REPO_ROOT
from tests.helpers.processes import WorkerProcess

KEY = "sk-test-" + uuid.uuid4().hex
KEY_ENV = "LIARA_TEST_ANALYST_KEY"
MODEL = "scripted-analyst"
LOOKUP = REPO_ROOT / "tests/temporal/agents/lookup_tool.py"


def agent_config(base_url: str, *, tools: str = '["lookup"]', extra: str = "") -> str:
    """``liara.toml``: ``investigate`` by the ``analyst`` llm executor, which may call ``tools``
    (``lookup`` by default) and has the settings of ``extra`` too; every other action simulated.
    """
    return f"""
[agents.actions]
investigate = "analyst"

[executors.analyst]
type = "llm"
base_url = "{base_url}"
model = "{MODEL}"
api_key_env = "{KEY_ENV}"
system = "You are a security analyst."
tools = {tools}
max_turns = 4
{extra}

[executors.lookup]
type = "command"
argv = ["{sys.executable}", "{LOOKUP}"]
description = "Looks a host up in the inventory"
parameters = {{ type = "object", properties = {{ host = {{ type = "string" }} }}, required = ["host"] }}
"""


def gated_tool(name: str, description: str, approvals: int = 1) -> str:
    """``[executors.NAME]``: the ``lookup`` program as a tool each call of which waits for
    ``approvals`` approvals (add NAME to the analyst's ``tools``).
    """
    return f"""
[executors.{name}]
type = "command"
argv = ["{sys.executable}", "{LOOKUP}"]
description = "{description}"
parameters = {{ type = "object", properties = {{ host = {{ type = "string" }} }}, required = ["host"] }}
approval = "always"
approvals = {approvals}
"""


@asynccontextmanager
async def agent_worker(
    client: Client, task_queue: str, tmp_path: Path, toml: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FileRecordStore]:
    """An in-process worker of the crisis workflow with the executors of ``toml`` and the key in
    its environment; its record store.
    """
    path = tmp_path / "liara.toml"
    path.write_text(toml)
    monkeypatch.setenv(KEY_ENV, KEY)
    registry = load_executor_registry(path, environ={})
    store = FileRecordStore(tmp_path / "crises")
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[CrisisResponseWorkflow],
        activities=[*CrisisActivities(store, registry).all(), *AgentStepActivities(registry, store).all()],
    ):
        yield store
    await registry.aclose()


def agent_env(env: dict[str, str], directory: Path, base_url: str) -> dict[str, str]:
    """``env`` for a worker with the agent: its ``liara.toml`` written in ``directory``, and the key."""
    config = directory / "liara.toml"
    config.write_text(agent_config(base_url))
    return {**env, "LIARA_CONFIG": str(config), KEY_ENV: KEY}


@contextmanager
def agent_worker_process(
    env: dict[str, str], directory: Path, base_url: str, config: str | None = None
) -> Iterator[WorkerProcess]:
    """A worker process (``cognition/liara/worker.py``) in ``directory`` with the key and ``config``
    (``agent_config`` by default) as its ``liara.toml``; stopped on exit.
    """
    worker_env = agent_env(env, directory, base_url)
    if config is not None:
        Path(worker_env["LIARA_CONFIG"]).write_text(config)
    worker = WorkerProcess("cognition/liara/worker.py", worker_env, directory)
    try:
        yield worker
    finally:
        worker.stop()


def script() -> list[Step]:
    """The model looks web-1 up, then answers: two calls, the usage of ``USAGE``."""
    return [ToolCalls([("lookup", {"host": "web-1"})], usage=(20, 7)), Answer("web-1 is clean", usage=(40, 9))]


USAGE = {"prompt_tokens": 60, "completion_tokens": 16, "total_tokens": 76, "model_calls": 2}


def triage(target: str = "web-1", **params: Any) -> dict[str, Any]:
    """The agent's phase (``params`` beside its prompt)."""
    return {
        "phase_id": "triage",
        "agent_id": "analyst-001",
        "action": "investigate",
        "target": target,
        "params": {"prompt": "Is web-1 compromised?", **params},
        "retry": {"maximum_attempts": 3, "initial_interval_seconds": 0.1},
    }


def triage_missions(**params: Any) -> list[dict[str, Any]]:
    """A crisis of the agent's phase alone."""
    return [triage(**params)]


def gate(target: str = "web-1") -> dict[str, Any]:
    """A simulated phase after it that waits for approval: the crisis keeps running there."""
    return {
        "phase_id": "contain",
        "agent_id": "ops-001",
        "action": "reconnaissance",
        "target": target,
        "requires_approval": True,
    }
