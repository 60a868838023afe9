"""A language-model agent for the tests of what people see of it (statuses, records, the API,
metrics): a worker configuration with an ``llm`` executor talking to the scripted model server,
a ``lookup`` tool, and the two-call script whose usage the tests expect.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

from scripts.scripted_model_server import Answer, Step, ToolCalls
from tests.helpers import REPO_ROOT

KEY = "sk-test-" + uuid.uuid4().hex
KEY_ENV = "LIARA_TEST_ANALYST_KEY"
MODEL = "scripted-analyst"
LOOKUP = REPO_ROOT / "tests/temporal/agents/lookup_tool.py"


def agent_config(base_url: str) -> str:
    """``liara.toml``: ``investigate`` by the ``analyst`` llm executor, which may call ``lookup``;
    every other action simulated.
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
tools = ["lookup"]
max_turns = 4

[executors.lookup]
type = "command"
argv = ["{sys.executable}", "{LOOKUP}"]
description = "Looks a host up in the inventory"
parameters = {{ type = "object", properties = {{ host = {{ type = "string" }} }}, required = ["host"] }}
"""


def agent_env(env: dict[str, str], directory: Path, base_url: str) -> dict[str, str]:
    """``env`` for a worker with the agent: its ``liara.toml`` written in ``directory``, and the key."""
    config = directory / "liara.toml"
    config.write_text(agent_config(base_url))
    return {**env, "LIARA_CONFIG": str(config), KEY_ENV: KEY}


def script() -> list[Step]:
    """The model looks web-1 up, then answers: two calls, the usage of ``USAGE``."""
    return [ToolCalls([("lookup", {"host": "web-1"})], usage=(20, 7)), Answer("web-1 is clean", usage=(40, 9))]


USAGE = {"prompt_tokens": 60, "completion_tokens": 16, "total_tokens": 76, "model_calls": 2}


def triage(target: str = "web-1") -> dict[str, Any]:
    """The agent's phase."""
    return {
        "phase_id": "triage",
        "agent_id": "analyst-001",
        "action": "investigate",
        "target": target,
        "params": {"prompt": "Is web-1 compromised?"},
        "retry": {"maximum_attempts": 3, "initial_interval_seconds": 0.1},
    }


def gate(target: str = "web-1") -> dict[str, Any]:
    """A simulated phase after it that waits for approval: the crisis keeps running there."""
    return {
        "phase_id": "contain",
        "agent_id": "ops-001",
        "action": "reconnaissance",
        "target": target,
        "requires_approval": True,
    }
