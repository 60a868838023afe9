"""Executor types: the built-in ones, and third-party ones published as ``liara.executors`` entry points.

A built-in type is one module holding its executor and its settings model (an
:class:`~app.temporal.agents.mission.ExecutorSettings` that validates ``[executors.NAME]`` and
builds the executor) plus one line in :data:`BUILTIN_TYPES`. A plugin is a factory called with
the table's other keys, returning an object with ``async def run(mission)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, cast

from app.temporal.agents.command import CommandSettings
from app.temporal.agents.http import HttpSettings
from app.temporal.agents.llm import LLM, LlmSettings
from app.temporal.agents.mcp import McpSettings
from app.temporal.agents.mission import AgentExecutor, ExecutorSettings
from app.temporal.agents.simulate import SimulateSettings

#: Entry-point group of third-party executor factories: ``factory(**settings) -> AgentExecutor``.
ENTRY_POINT_GROUP = "liara.executors"

#: The executor types that need no plugin, by ``type`` name, each as the settings model that builds it.
BUILTIN_TYPES: dict[str, type[ExecutorSettings]] = {
    "simulate": SimulateSettings,
    "http": HttpSettings,
    "command": CommandSettings,
    "mcp": McpSettings,
    LLM: LlmSettings,
}

ExecutorFactory = Callable[..., AgentExecutor]


def plugin_entry_points(
    available: Iterable[EntryPoint] | None = None,
) -> dict[str, EntryPoint]:
    """Installed ``liara.executors`` entry points by name (``available`` replaces discovery, for tests)."""
    found = entry_points(group=ENTRY_POINT_GROUP) if available is None else available
    return {point.name: point for point in found if point.group == ENTRY_POINT_GROUP}


def load_factory(point: EntryPoint) -> ExecutorFactory:
    """Import a plugin's factory; ``ImportError``/``AttributeError``/``TypeError`` say why it is unusable."""
    factory = point.load()
    if not callable(factory):
        raise TypeError(f"entry point {point.name!r} ({point.value}) is not callable")
    return cast(ExecutorFactory, factory)  # what it builds is checked by build_executor


def build_executor(factory: ExecutorFactory, settings: Mapping[str, Any]) -> AgentExecutor:
    """Call a plugin's factory and check it produced something with ``async run(mission)``."""
    executor = factory(**settings)
    if not isinstance(executor, AgentExecutor) or not inspect.iscoroutinefunction(executor.run):
        raise TypeError(f"{factory!r} returned {type(executor).__name__}, which has no async run(mission) method")
    return executor
