"""One configured MCP server, as a tool call reaches it.

The ``mcp`` executor (app.temporal.agents.mcp) builds it from its checked settings; the client
(app.temporal.agents.mcp_client) calls a tool on it. It has a module of its own so that both
depend on it and neither on the other: the executor loads the client, and with it the ``mcp``
SDK, only when a tool is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class McpServer:
    """A stdio server (``command``) or a streamable HTTP server (``url``), exactly one of them."""

    #: Names the server in failure messages (never the URL's credentials or query).
    name: str
    #: Bounds the whole call: starting the server (stdio), the handshake and the tool.
    timeout_seconds: float
    #: A stdio server: the program and its arguments (no shell), started in ``cwd`` with ``env``
    #: added to a ``command`` agent's short environment.
    command: list[str] | None = None
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    #: A streamable HTTP server: its endpoint, and what every request to it carries.
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
