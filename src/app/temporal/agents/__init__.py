"""Agent executors: what performs a mission phase for ``perform_agent_mission``.

``mission`` holds what every executor shares (the mission, the failure rules, the settings base);
``simulate``, ``http``, ``command`` and ``mcp`` each hold one built-in type, its executor and its
settings (``mcp_client`` calls an MCP server's tool, ``mcp_server`` says how to reach one);
``plugins`` lists the built-in types and finds ``liara.executors`` entry points; ``config``
builds an :class:`ExecutorRegistry` from the ``[agents]`` and ``[executors]`` of the
configuration file (app.temporal.config). ``ConfigError`` and ``SIMULATE`` come from there, and
are exported here too: ``load_executor_registry`` raises the one and maps actions to the other.
"""

from app.temporal.agents.command import CommandExecutor
from app.temporal.agents.config import ExecutorRegistry, load_executor_registry
from app.temporal.agents.http import HttpExecutor
from app.temporal.agents.mcp import McpExecutor, McpSettings
from app.temporal.agents.mission import AGENT_FAILURE_ERROR, AgentExecutor, Mission, agent_failure
from app.temporal.agents.processes import INHERITED_ENV
from app.temporal.agents.simulate import SimulateExecutor
from app.temporal.config import SIMULATE, ConfigError

__all__ = [
    "AGENT_FAILURE_ERROR",
    "INHERITED_ENV",
    "SIMULATE",
    "AgentExecutor",
    "CommandExecutor",
    "ConfigError",
    "ExecutorRegistry",
    "HttpExecutor",
    "McpExecutor",
    "McpSettings",
    "Mission",
    "SimulateExecutor",
    "agent_failure",
    "load_executor_registry",
]
