"""The ``mcp`` executor: a phase calls one tool on a Model Context Protocol server.

    [executors.scanner]
    type = "mcp"
    command = ["python3", "scanner_server.py"]   # a stdio server, started for each call
    # or: url = "http://127.0.0.1:9100/mcp"      # a streamable HTTP server
    tool = "scan"                                # used when the phase's params name no tool
    tools = ["scan", "lookup"]                   # the tools a phase may name (default: tool alone)

The phase's ``params.tool`` (else the executor's ``tool``) names the tool and ``params.arguments``
(an object, default ``{}``) are its arguments. A phase gets only the tools the configuration
allows, whatever else the server offers: a request cannot reach a tool its operator did not name.
How the call goes, and how its result becomes the phase's output, is in
app.temporal.agents.mcp_client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from app.temporal.agents.http import display_url, parse_http_url
from app.temporal.agents.mcp_server import McpServer
from app.temporal.agents.mission import ExecutorSettings, Mission, TimeoutSeconds, agent_failure, phase_params
from app.temporal.agents.processes import ProgramArgv

ToolName = Annotated[str, Field(min_length=1)]


class McpParams(BaseModel):
    """``phase.params`` the ``mcp`` executor reads; other keys are left alone."""

    model_config = ConfigDict(extra="ignore", strict=True)

    tool: ToolName | None = None
    arguments: dict[str, JsonValue] = Field(default_factory=dict)


class McpSettings(ExecutorSettings):
    """What ``type = "mcp"`` takes: one server (``command`` or ``url``) and how to reach it."""

    #: A stdio server: the program and its arguments (no shell).
    command: ProgramArgv | None = None
    #: A streamable HTTP server's endpoint.
    url: str | None = None
    #: Bounds the whole call: starting the server (stdio), the handshake and the tool.
    timeout_seconds: TimeoutSeconds = 30.0
    #: The stdio server's working directory, relative to the configuration file.
    cwd: str | None = None
    #: Added to the stdio server's short environment, as for a ``command`` agent.
    env: dict[str, str] = Field(default_factory=dict)
    #: Sent with every request to a ``url`` server (an ``Authorization`` token, say).
    headers: dict[str, str] = Field(default_factory=dict)
    #: The tool of a phase whose params name none.
    tool: ToolName | None = None
    #: The tools a phase's params may name; without it, ``tool`` alone.
    tools: Annotated[list[ToolName], Field(min_length=1)] | None = None

    @field_validator("url")
    @classmethod
    def _absolute_http(cls, url: str | None) -> str | None:
        if url is not None:
            parse_http_url(url)
        return url

    @model_validator(mode="after")
    def _one_server(self) -> McpSettings:
        if (self.command is None) == (self.url is None):
            raise ValueError("set exactly one of command (a stdio server) and url (a streamable HTTP server)")
        if self.url is not None and (self.env or self.cwd is not None):
            raise ValueError("env and cwd apply to a command server, not to a url")
        if self.command is not None and self.headers:
            raise ValueError("headers apply to a url server, not to a command")
        if self.tool is None and self.tools is None:
            raise ValueError("name the tools phases may call: tool (the one they call) or tools (those they may name)")
        return self

    @property
    def allowed_tools(self) -> frozenset[str]:
        return frozenset([*(self.tools or ()), *([self.tool] if self.tool else [])])

    def build(self, config_dir: Path) -> McpExecutor:
        return McpExecutor(self, config_dir)


class McpExecutor:
    """Calls the phase's tool on the configured MCP server; its result is the phase's output.

    Built from checked :class:`McpSettings`, so the rules for a usable server live in one place.
    """

    def __init__(self, settings: McpSettings, config_dir: Path = Path()) -> None:
        self.settings = settings
        if settings.command is not None:
            name = f"MCP server {settings.command[0]}"
        else:
            assert settings.url is not None
            name = f"MCP server at {display_url(parse_http_url(settings.url))}"
        #: The server as a call reaches it: relative paths resolved against the configuration file's folder.
        self.server = McpServer(
            name=name,
            timeout_seconds=settings.timeout_seconds,
            command=settings.command,
            cwd=config_dir / settings.cwd if settings.cwd is not None else None,
            env=settings.env,
            url=settings.url,
            headers=settings.headers,
        )

    @property
    def one_tool(self) -> str | None:
        """The executor's only tool (``tool`` without ``tools``), if it has one."""
        return self.settings.tool if self.settings.tools is None else None

    def tool_params(self, arguments: dict[str, JsonValue]) -> dict[str, JsonValue]:
        """A model's arguments as a call's params, when a language-model agent calls this executor
        as a tool: the MCP tool's own arguments if the executor has one tool; with several, the
        model names it (``{"tool": ..., "arguments": {...}}``).
        """
        return {"arguments": arguments} if self.one_tool else arguments

    async def input_schema(self) -> dict[str, JsonValue] | None:
        """The JSON schema of its only tool's arguments, as the server lists it (None if it lists no such tool)."""
        from app.temporal.agents.mcp_client import input_schema

        assert self.one_tool is not None
        return await input_schema(self.server, self.one_tool)

    async def run(self, mission: Mission) -> JsonValue:
        params = phase_params(McpParams, mission, "mcp")
        tool = params.tool or self.settings.tool
        if tool is None:
            raise agent_failure(
                f"Phase {mission.phase.phase_id} names no tool of {self.server.name}: "
                "set params.tool, or tool in the executor's settings.",
                retryable=False,
            )
        allowed = self.settings.allowed_tools
        if tool not in allowed:
            raise agent_failure(
                f"Phase {mission.phase.phase_id} asks {self.server.name} for tool {tool!r}, which its executor "
                f"does not allow (it allows {', '.join(repr(name) for name in sorted(allowed))}): "
                "add it to tools in the executor's settings to let phases call it.",
                retryable=False,
            )
        # Imported on the first call: the SDK takes a quarter of a second to load, and every
        # `liara` command imports this module.
        from app.temporal.agents.mcp_client import call_tool

        return await call_tool(self.server, tool, params.arguments, mission)
