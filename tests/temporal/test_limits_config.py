"""``[limits]`` of liara.toml: which limits an agent's model calls and tool calls wait for (in
its plan, fixed in history), and one sentence naming the file and the key for each mistake.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.temporal.agents import ConfigError, load_executor_registry
from app.temporal.models import StepLimit

EXECUTORS = """
[agents.actions]
investigate = "analyst"
summarize = "writer"
scan = "lookup"

[executors.analyst]
type = "llm"
base_url = "https://api.example.org/v1"
model = "gpt-4.1-mini"
tools = ["lookup"]

[executors.writer]
type = "llm"
base_url = "https://other.example.net/v1"
model = "gpt-4.1"

[executors.lookup]
type = "command"
argv = ["true"]
description = "Looks a host up"

[executors.notes]
type = "command"
argv = ["true"]
"""


def registry(tmp_path: Path, limits: str):
    config = tmp_path / "liara.toml"
    config.write_text(EXECUTORS + limits)
    return load_executor_registry(config, environ={})


def config_error(tmp_path: Path, limits: str) -> str:
    with pytest.raises(ConfigError) as raised:
        registry(tmp_path, limits)
    return str(raised.value)


def test_without_limits_plans_wait_for_nothing(tmp_path: Path) -> None:
    found = registry(tmp_path, "")
    plan = found.agent_plan("investigate")
    assert plan is not None and plan.limits == [] and [tool.limit for tool in plan.tools] == [None]
    assert found.limits == []


def test_a_model_limit_applies_by_model_executor_or_provider_host_and_a_tool_limit_to_its_tool(
    tmp_path: Path,
) -> None:
    found = registry(
        tmp_path,
        """
[limits.models."gpt-4.1-mini"]
concurrent = 2
per_minute = 60
[limits.models."api.example.org"]
per_minute = 600
[limits.models.writer]
concurrent = 1
[limits.tools.lookup]
concurrent = 3
""",
    )
    analyst, writer = found.agent_plan("investigate"), found.agent_plan("summarize")
    assert analyst is not None and writer is not None
    by_model = StepLimit(kind="model", name="gpt-4.1-mini", concurrent=2, per_minute=60)
    by_host = StepLimit(kind="model", name="api.example.org", per_minute=600)
    by_executor = StepLimit(kind="model", name="writer", concurrent=1)
    by_tool = StepLimit(kind="tool", name="lookup", concurrent=3)
    assert analyst.limits == [by_host, by_model]  # in the order a call takes them: by name
    assert writer.limits == [by_executor]
    (tool,) = analyst.tools
    assert tool.limit == by_tool
    assert found.limits == [by_host, by_model, by_executor, by_tool]
    assert found.agent_plan("scan") is None  # a tool's own phases are not agents' tool calls


@pytest.mark.parametrize(
    ("limits", "says"),
    [
        (
            "[limits.models.gpt-4]\n",
            "has an invalid limits.models.gpt-4: give concurrent (calls at once), per_minute (calls a minute) or both.",
        ),
        (
            "[limits.tools.lookup]\nconcurrent = 0\n",
            "has an invalid limits.tools.lookup.concurrent: Input should be greater than or equal to 1.",
        ),
        (
            '[limits.tools.lookup]\nper_minute = "60"\n',
            "has an invalid limits.tools.lookup.per_minute: Input should be a valid integer.",
        ),
        ("[limits.tools.lookup]\nburst = 2\n", "has an unknown key limits.tools.lookup.burst."),
        ("[limits.providers.openai]\nconcurrent = 2\n", "has an unknown key limits.providers."),
        ('[limits.models."gpt 4"]\nconcurrent = 2\n', "has an invalid name 'gpt 4' under limits.models."),
        (
            "[limits.models.claude]\nconcurrent = 2\n",
            "sets limits.models.claude, but no llm executor under "
            "[executors] is called 'claude', uses model 'claude' or calls host 'claude'.",
        ),
        (
            "[limits.tools.isolate]\nconcurrent = 2\n",
            "sets limits.tools.isolate, but executors.isolate is not defined.",
        ),
        (
            "[limits.tools.analyst]\nconcurrent = 2\n",
            "sets limits.tools.analyst, but executors.analyst is an llm "
            "executor: limit its model calls under [limits.models] instead.",
        ),
        (
            "[limits.tools.notes]\nconcurrent = 2\n",
            "sets limits.tools.notes, but executors.notes has no description, so no agent may call it as a tool.",
        ),
    ],
    ids=[
        "empty",
        "zero",
        "text",
        "unknown key",
        "unknown table",
        "bad name",
        "no such model",
        "no such tool",
        "llm as tool",
        "not a tool",
    ],
)
def test_each_mistake_is_one_sentence_naming_the_file_and_key(tmp_path: Path, limits: str, says: str) -> None:
    message = config_error(tmp_path, limits)
    assert message == f"Configuration file {tmp_path / 'liara.toml'} {says}"
    assert "\n" not in message
