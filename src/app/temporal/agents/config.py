"""Executor configuration: which agent executor performs each action.

Built once at worker start from the ``[agents]`` and ``[executors]`` sections of the
configuration file (read by app.temporal.config) plus environment overrides, and checked
completely then, so a typo stops the worker with one sentence instead of failing phases later.
Without a file every action is simulated, which keeps a fresh checkout runnable end to end.

    [agents]
    default = "simulate"                 # executor of actions not listed
    [agents.actions]
    reconnaissance = "recon-api"         # action -> executor name
    [executors.recon-api]
    type = "http"                        # simulate | http | command | mcp | llm | <liara.executors entry point>
    url = "http://127.0.0.1:9000/missions"
    description = "Looks a host up"      # with parameters (a JSON schema): a tool llm executors may call
                                         # (an mcp executor with one tool may leave parameters to its server)
    approval = "always"                  # each call waits for approval (approvals = N: a quorum)
    [limits.tools.recon-api]             # its calls by agents across the fleet (app.temporal.limits)
    concurrent = 2

The ``[limits]`` of the file are checked here too: a model limit must name an llm executor, the
model of one or the host of one's ``base_url``; a tool limit an executor that is a tool.

Precedence for an action: ``LIARA_EXECUTOR_<ACTION>``, then ``[agents.actions]``, then
``LIARA_DEFAULT_EXECUTOR``, then ``[agents] default``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from functools import partial
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import JsonValue, ValidationError
from temporalio.exceptions import ApplicationError

from app.temporal.agents.llm import LLM, LlmExecutor
from app.temporal.agents.mcp import McpExecutor
from app.temporal.agents.mission import AgentExecutor, ExecutorSettings
from app.temporal.agents.plugins import (
    BUILTIN_TYPES,
    ExecutorFactory,
    build_executor,
    load_factory,
    plugin_entry_points,
)
from app.temporal.agents.simulate import SimulateExecutor
from app.temporal.config import SIMULATE, ConfigError, LiaraConfig, LimitTable, describe_problem, load_config
from app.temporal.models import MAX_APPROVALS, AgentLoopPlan, StepLimit, ToolSpec

logger = logging.getLogger("liara.worker")

DEFAULT_EXECUTOR_ENV = "LIARA_DEFAULT_EXECUTOR"
ACTION_EXECUTOR_ENV_PREFIX = "LIARA_EXECUTOR_"

_ACTION_ENV_KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")


def action_env_var(action: str) -> str:
    """``LIARA_EXECUTOR_<ACTION>``: upper-cased, ``-`` as ``_`` (environment names allow no dashes)."""
    return ACTION_EXECUTOR_ENV_PREFIX + action.upper().replace("-", "_")


class ExecutorRegistry:
    """Executors by name and the action mapping; ``executor_for(action)`` is all a worker needs."""

    def __init__(
        self,
        executors: Mapping[str, AgentExecutor],
        default: str = SIMULATE,
        actions: Mapping[str, str] | None = None,
        *,
        env_overrides: Mapping[str, str] | None = None,
        source: Path | None = None,
        tools: Mapping[str, ToolSpec] | None = None,
        model_limits: Mapping[str, list[StepLimit]] | None = None,
        schemas_from_servers: Iterable[str] = (),
    ) -> None:
        """``env_overrides`` maps ``LIARA_EXECUTOR_<ACTION>`` variable names to executor names;
        ``tools`` the executors a model may call to how it sees them (with the limit of their
        calls); ``model_limits`` llm executors to the limits their model calls wait for;
        ``schemas_from_servers`` the ``mcp`` tools whose arguments' schema their servers give.
        """
        self._executors = dict(executors)
        self._tools = dict(tools or {})
        self._from_servers = frozenset(schemas_from_servers)
        self._server_schemas: dict[str, dict[str, JsonValue] | None] = {}
        self._model_limits = {name: list(limits) for name, limits in (model_limits or {}).items()}
        self._default = default
        self._actions = dict(actions or {})
        self._env_overrides = dict(env_overrides or {})
        self.source = source
        for name in [default, *self._actions.values(), *self._env_overrides.values()]:
            if name not in self._executors:
                raise ConfigError(f"Executor {name!r} is mapped to an action but not defined.")

    def name_for(self, action: str) -> str:
        """The executor name that performs ``action``."""
        overridden = self._env_overrides.get(action_env_var(action))
        return overridden or self._actions.get(action) or self._default

    def executor_for(self, action: str) -> AgentExecutor:
        return self._executors[self.name_for(action)]

    def executor_named(self, name: str) -> AgentExecutor | None:
        return self._executors.get(name)

    def agent_plan(self, action: str) -> AgentLoopPlan | None:
        """The loop of ``action``'s language-model agent; None if another kind of executor performs it."""
        name = self.name_for(action)
        executor = self._executors[name]
        if not isinstance(executor, LlmExecutor):
            return None
        tools = [self._tools[tool] for tool in executor.settings.tools]
        return executor.plan(name, tools, self._model_limits.get(name))

    async def with_server_schemas(self, plan: AgentLoopPlan) -> AgentLoopPlan:
        """``plan`` with the arguments' schema of each ``mcp`` tool whose server gives it (one ``tool``,
        no ``parameters``): asked once per worker, when a phase first needs it. A server that cannot
        tell leaves the tool's schema empty (and is asked again next time), with a warning.
        """
        if not any(tool.name in self._from_servers for tool in plan.tools):
            return plan
        tools = []
        for tool in plan.tools:
            schema = await self._server_schema(tool.name) if tool.name in self._from_servers else None
            tools.append(tool.model_copy(update={"parameters": schema}) if schema is not None else tool)
        return plan.model_copy(update={"tools": tools})

    async def _server_schema(self, name: str) -> dict[str, JsonValue] | None:
        if name not in self._server_schemas:
            executor = self._executors[name]
            assert isinstance(executor, McpExecutor)
            try:
                schema = await executor.input_schema()
            except ApplicationError as err:
                logger.warning("Tool %s goes to the model without its arguments' schema for now: %s", name, err)
                return None
            if schema is None:
                logger.warning(
                    "Tool %s goes to the model without its arguments' schema: %s lists no tool %r",
                    name,
                    executor.server.name,
                    executor.one_tool,
                )
            self._server_schemas[name] = schema
        return self._server_schemas[name]

    @property
    def limits(self) -> list[StepLimit]:
        """Every limit of ``[limits]``, models first, each once."""
        found = {(limit.kind, limit.name): limit for limits in self._model_limits.values() for limit in limits}
        found.update({("tool", tool.name): tool.limit for tool in self._tools.values() if tool.limit is not None})
        return [found[key] for key in sorted(found)]

    def describe(self) -> dict[str, Any]:
        """The mapping, for one log line at worker start (no settings: headers may hold secrets)."""
        return {
            "source": str(self.source) if self.source else None,
            "default": self._default,
            "actions": dict(self._actions),
            "environment_overrides": dict(self._env_overrides),
            "executors": {name: type(executor).__name__ for name, executor in self._executors.items()},
        }

    async def aclose(self) -> None:
        """Release what executors hold (HTTP connection pools); call at worker shutdown."""
        for executor in self._executors.values():
            close = getattr(executor, "aclose", None)
            if close is not None:
                await close()


def load_executor_registry(
    path: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    *,
    entry_points: Iterable[EntryPoint] | None = None,
) -> ExecutorRegistry:
    """Read and check the configuration and build every executor it defines.

    ``path`` (or ``LIARA_CONFIG``) must exist; the default ``liara.toml`` may be absent (all
    simulated). ``entry_points`` replaces discovery of installed ``liara.executors`` plugins.
    """
    config = load_config(path, environ)
    where = config.where
    executors: dict[str, AgentExecutor] = {SIMULATE: SimulateExecutor()}
    tools: dict[str, ToolSpec] = {}
    schemas_from_servers: list[str] = []
    plugins: dict[str, EntryPoint] | None = None
    for name, table in config.executors.items():
        key = f"executors.{name}"
        if name == SIMULATE:
            raise ConfigError(f"{where} redefines {key}, but {SIMULATE!r} is built in; choose another name.")
        settings = dict(table.model_extra or {})
        asks_server = "parameters" not in settings
        tool = _tool_spec(name, settings, where, key)  # takes description and parameters out
        if tool is not None:
            tools[name] = tool
        if table.type in BUILTIN_TYPES:
            build = partial(_builtin_settings(table.type, settings, where, key).build, config.directory)
        else:
            plugins = plugins if plugins is not None else plugin_entry_points(entry_points)
            build = partial(build_executor, _plugin_factory(table.type, plugins, where, key), settings)
        try:
            executors[name] = build()
        except Exception as err:  # a plugin may raise anything; the worker must say which entry broke
            raise ConfigError(f"{where} has an unusable {key}: {err}.") from err
        built = executors[name]
        if tool is not None and asks_server and isinstance(built, McpExecutor) and built.one_tool:
            schemas_from_servers.append(name)

    def defined(name: str, origin: str) -> str:
        if name not in executors:
            raise ConfigError(f"{where} maps {origin} to executor {name!r}, which is not defined under [executors].")
        return name

    for name, executor in executors.items():
        if isinstance(executor, LlmExecutor):
            for tool in executor.settings.tools:
                _check_tool(tool, executors, tools, where, f"executors.{name}.tools")
    actions = {action: defined(name, f"agents.actions.{action}") for action, name in config.agents.actions.items()}
    default = defined(config.agents.default, "agents.default")
    if environ.get(DEFAULT_EXECUTOR_ENV):
        default = defined(environ[DEFAULT_EXECUTOR_ENV], f"the environment variable {DEFAULT_EXECUTOR_ENV}")
    overrides: dict[str, str] = {}
    for variable, name in sorted(environ.items()):
        if not variable.startswith(ACTION_EXECUTOR_ENV_PREFIX) or not name:
            continue
        if not _ACTION_ENV_KEY.match(variable.removeprefix(ACTION_EXECUTOR_ENV_PREFIX)):
            raise ConfigError(
                f"Environment variable {variable} does not name an action (expected {ACTION_EXECUTOR_ENV_PREFIX}"
                "<ACTION> in upper case with '_' for '-')."
            )
        overrides[variable] = defined(name, f"the environment variable {variable}")
    model_limits = _model_limits(config, executors, where)
    for name, table in config.limits.tools.items():
        tools[name] = tools[_limited_tool(name, executors, tools, where)].model_copy(
            update={"limit": _step_limit("tool", name, table)}
        )
    return ExecutorRegistry(
        executors,
        default,
        actions,
        env_overrides=overrides,
        source=config.path,
        tools=tools,
        model_limits=model_limits,
        schemas_from_servers=schemas_from_servers,
    )


def _step_limit(kind: str, name: str, table: LimitTable) -> StepLimit:
    return StepLimit(kind=kind, name=name, concurrent=table.concurrent, per_minute=table.per_minute)


def _model_limits(
    config: LiaraConfig, executors: Mapping[str, AgentExecutor], where: str
) -> dict[str, list[StepLimit]]:
    """The ``[limits.models]`` of each llm executor: those keyed by its name, its model or its
    ``base_url``'s host (a provider's), in the order a model call takes them.
    """
    found: dict[str, list[StepLimit]] = {}
    for key, table in config.limits.models.items():
        limit = _step_limit("model", key, table)
        matched = False
        for name, executor in executors.items():
            if not isinstance(executor, LlmExecutor):
                continue
            settings = executor.settings
            if key in (name, settings.model, urlsplit(settings.base_url).hostname):
                found.setdefault(name, []).append(limit)
                matched = True
        if not matched:
            raise ConfigError(
                f"{where} sets limits.models.{key}, but no {LLM} executor under [executors] is called {key!r}, "
                f"uses model {key!r} or calls host {key!r}."
            )
    return {name: sorted(limits, key=lambda limit: limit.name) for name, limits in found.items()}


def _limited_tool(name: str, executors: Mapping[str, AgentExecutor], tools: Mapping[str, ToolSpec], where: str) -> str:
    """``name`` of ``[limits.tools.NAME]``, if it is a tool agents may call."""
    key = f"limits.tools.{name}"
    if name not in executors:
        raise ConfigError(f"{where} sets {key}, but executors.{name} is not defined.")
    if isinstance(executors[name], LlmExecutor):
        raise ConfigError(
            f"{where} sets {key}, but executors.{name} is an {LLM} executor: limit its model calls under "
            "[limits.models] instead."
        )
    if name not in tools:
        raise ConfigError(
            f"{where} sets {key}, but executors.{name} has no description, so no agent may call it as a tool."
        )
    return name


def _tool_spec(name: str, settings: dict[str, Any], where: str, key: str) -> ToolSpec | None:
    """How a model sees executor ``name`` as a tool (its ``description`` and ``parameters``, taken
    out of ``settings``); None without a description.
    """
    description = settings.pop("description", None)
    parameters = settings.pop("parameters", None)
    approval = settings.pop("approval", "never")
    approvals = settings.pop("approvals", 1)
    if approval not in ("always", "never"):
        raise ConfigError(f'{where} sets {key}.approval to {approval!r}: write "always" or "never".')
    if isinstance(approvals, bool) or not isinstance(approvals, int) or not 1 <= approvals <= MAX_APPROVALS:
        raise ConfigError(
            f"{where} sets {key}.approvals to {approvals!r}: write a whole number from 1 to {MAX_APPROVALS}."
        )
    if description is not None and (not isinstance(description, str) or not description.strip()):
        raise ConfigError(f"{where} sets {key}.description to something other than a text: write what the tool does.")
    if parameters is not None and (not isinstance(parameters, dict) or parameters.get("type") != "object"):
        raise ConfigError(
            f'{where} sets {key}.parameters to something other than a JSON schema of type "object": '
            'e.g. parameters = { type = "object", properties = { host = { type = "string" } } }.'
        )
    if description is None:
        if parameters is not None or approval != "never":
            raise ConfigError(f"{where} makes executors.{name} a tool without {key}.description: say what it does.")
        return None
    return ToolSpec(
        name=name,
        description=description,
        parameters=parameters or {"type": "object", "properties": {}},
        approval=approval == "always",
        approvals_required=approvals,
    )


def _check_tool(
    tool: str, executors: Mapping[str, AgentExecutor], tools: Mapping[str, ToolSpec], where: str, key: str
) -> None:
    if tool not in executors:
        raise ConfigError(f"{where} lists {tool!r} in {key}, which is not defined under [executors].")
    if isinstance(executors[tool], LlmExecutor):
        raise ConfigError(f"{where} lists {tool!r} in {key}, another {LLM} executor: a tool is any other kind.")
    if tool not in tools:
        raise ConfigError(
            f"{where} lists {tool!r} in {key}, but executors.{tool} has no description: say what the tool does "
            "(and its parameters, a JSON schema), for the model."
        )


def _builtin_settings(kind: str, settings: dict[str, Any], where: str, key: str) -> ExecutorSettings:
    try:
        return BUILTIN_TYPES[kind].model_validate(settings)
    except ValidationError as err:
        raise ConfigError(describe_problem(err, where, prefix=key)) from None


def _plugin_factory(kind: str, plugins: Mapping[str, EntryPoint], where: str, key: str) -> ExecutorFactory:
    if kind not in plugins:
        installed = ", ".join(sorted(plugins)) or "none"
        raise ConfigError(
            f"{where} sets {key}.type to unknown executor type {kind!r} "
            f"(built in: {', '.join(BUILTIN_TYPES)}; installed plugins: {installed})."
        )
    point = plugins[kind]
    try:
        return load_factory(point)
    except Exception as err:  # importing third-party code can fail in any way
        raise ConfigError(
            f"{where} sets {key}.type to plugin {kind!r} ({point.value}), which cannot be loaded: {err}."
        ) from err
