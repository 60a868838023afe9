"""A real MCP server for the ``mcp`` executor's tests, built with the same ``mcp`` package.

``python mcp_scanner_server.py stdio`` serves on standard input and output;
``python mcp_scanner_server.py http`` binds a free port on 127.0.0.1, prints it on one line and
serves streamable HTTP at ``/mcp`` there.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn
from mcp import McpError, types
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from starlette.types import Receive, Scope, Send

server = FastMCP("scanner", log_level="WARNING")


@server.tool()
def scan(target: str, depth: int = 1) -> dict[str, Any]:
    """A structured result: the open ports found on the target."""
    return {"target": target, "depth": depth, "open_ports": [22, 443]}


@server.tool(structured_output=False)
def summarize(target: str) -> str:
    """Text content only."""
    return f"{target}: all quiet"


@server.tool(structured_output=False)
def summarize_json(target: str) -> str:
    """Text content only, but the text is JSON."""
    return f'{{"target": "{target}", "quiet": true}}'


@server.tool()
def mission_context(ctx: Context) -> dict[str, Any]:
    """What the client sent besides the arguments: the request's ``_meta``, and its ``Authorization``
    header over HTTP; and the server's environment.
    """
    meta = ctx.request_context.meta
    request = ctx.request_context.request
    return {
        "meta": meta.model_dump(by_alias=True, exclude_none=True) if meta else {},
        "authorization": request.headers.get("authorization") if request is not None else None,
        "environ": dict(os.environ),
    }


@server.tool()
def refuse(reason: str) -> dict[str, Any]:
    """A tool that says no: the result has ``isError: true``."""
    raise ToolError(f"refused: {reason}")


@server.tool()
def die() -> dict[str, Any]:
    """The server process dies in the middle of the call."""
    sys.stderr.write("scanner: reactor offline\n")
    sys.stderr.flush()
    os._exit(1)


@server.tool()
async def slow(marker: str, seconds: float = 60) -> dict[str, Any]:
    """Writes ``marker`` (a file path) once running, then takes ``seconds``; ``marker`` holds the pid."""
    Path(marker + ".tmp").write_text(str(os.getpid()))
    os.replace(marker + ".tmp", marker)
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@server.tool()
def flood(size: int) -> dict[str, Any]:
    """A structured result of about ``size`` bytes."""
    return {"blob": "x" * size}


# FastMCP answers an unknown tool with an error result; the protocol's specification answers it
# with a JSON-RPC error (invalid params), as this server does, so both paths get tested.
_call_tool = server._mcp_server.request_handlers[types.CallToolRequest]


async def _refuse_unknown_tools(request: types.CallToolRequest) -> types.ServerResult:
    if request.params.name not in {tool.name for tool in await server.list_tools()}:
        raise McpError(types.ErrorData(code=types.INVALID_PARAMS, message=f"Unknown tool: {request.params.name}"))
    return await _call_tool(request)


server._mcp_server.request_handlers[types.CallToolRequest] = _refuse_unknown_tools


def http_app() -> Any:
    """The MCP endpoint at ``/mcp``; ``/busy`` answers every request with HTTP 503."""
    mcp_app = server.streamable_http_app()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/busy":
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            await mcp_app(scope, receive, send)

    return app


def serve_http() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # Listening before the port is told: a client that connects while uvicorn still starts waits
    # in the backlog instead of being refused.
    sock.listen()
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(http_app(), log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    if sys.argv[1:] == ["http"]:
        serve_http()
    else:
        server.run("stdio")
