"""Commands of the HTTP service: ``liara serve`` runs it, ``liara token`` manages who may call it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.temporal.errors import LiaraError
from cognition.liara.commands.connection import EXIT_ERROR, Connection
from cognition.liara.commands.options import JsonFlag
from cognition.liara.commands.output import err_console, out, print_json, say, table_of
from cognition.liara.service.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_WEB_UI_URL, ServiceSettings
from cognition.liara.service.tokens import TokenFile, TokenVerifier

TokensFile = Annotated[Path, typer.Option("--tokens", metavar="FILE", help="The token file")]


def _fail(err: LiaraError | str) -> typer.Exit:
    say(f"Error: {err}", err_console)
    return typer.Exit(EXIT_ERROR)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on; other than loopback only with --tokens")] = (
        DEFAULT_HOST
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port)")] = DEFAULT_PORT,
    tokens: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Token file (liara token create): every request then needs a token"),
    ] = None,
    heartbeat: Annotated[
        float, typer.Option(min=0.01, metavar="SECONDS", help="Seconds between keep-alive comments on event streams")
    ] = ServiceSettings.heartbeat_seconds,
    notifications: Annotated[
        bool,
        typer.Option(
            "--notifications/--no-notifications",
            help="Also deliver webhook notifications (as `liara notifier`), with the webhooks table of liara.toml",
        ),
    ] = True,
    web_ui: Annotated[
        str, typer.Option(metavar="URL", help="The Temporal Web UI the console links crises to")
    ] = DEFAULT_WEB_UI_URL,
) -> None:
    """Serve crises over HTTP (JSON, events as SSE, OpenAPI at /docs, the console at /) until
    Ctrl+C or SIGTERM.

    Without --tokens it listens on loopback only and every request acts as `local`, an admin.
    """
    # Imported here: the other commands need no web framework.
    from app.temporal.codec import configured_codec
    from app.temporal.logs import configure_logging
    from cognition.liara.notifier import configured_webhooks
    from cognition.liara.service.main import create_app
    from cognition.liara.service.server import bind, is_loopback
    from cognition.liara.service.server import serve as run

    connection: Connection = ctx.obj
    if connection.api:
        raise _fail("liara serve talks to Temporal itself, not through another service: leave out --api.")
    if not web_ui.startswith(("http://", "https://")):
        raise _fail(f"--web-ui {web_ui!r} is not an http:// or https:// URL.")
    try:
        verifier = TokenVerifier(TokenFile(tokens)) if tokens else None
        if verifier is not None and not verifier.count:
            raise _fail(f"Token file {tokens} has no tokens: create one with `liara token create NAME --role ROLE`.")
        agency = connection.agency()
        configured_codec()  # bad encryption keys stop the service here, in one sentence
        webhooks = configured_webhooks() if notifications else None  # so does a bad [webhooks] table
    except LiaraError as err:
        raise _fail(err) from None
    try:
        sock = bind(host, port)
    except OSError as err:
        raise _fail(f"Cannot listen on {host}:{port}: {err.strerror or err}.") from None
    if verifier is None and not is_loopback(sock):
        sock.close()
        raise _fail(
            f"Without --tokens the service listens on loopback only, not on {host}: "
            "create tokens with `liara token create` and pass --tokens FILE."
        )
    configure_logging("WARNING")
    app = create_app(
        agency,
        tokens=verifier,
        settings=ServiceSettings(heartbeat_seconds=heartbeat, web_ui_url=web_ui.rstrip("/")),
        local_hosts=[host],
        webhooks=webhooks,
    )
    run(app, sock)


tokens_app = typer.Typer(
    no_args_is_help=True, help="Manage the HTTP service's tokens (names, roles; only hashes are stored)."
)


@tokens_app.command("create")
def create_token(
    name: Annotated[str, typer.Argument(help="Who holds it; recorded as who started, cancelled or decided")],
    role: Annotated[str, typer.Option(help="viewer, operator, approver or admin")],
    tokens: TokensFile,
) -> None:
    """Create a token and print it once (the last line); the file keeps only its hash."""
    try:
        token = TokenFile(tokens).create(name, role)
    except LiaraError as err:
        raise _fail(err) from None
    say(f"Token {name!r} ({role}) added to {tokens}. It is shown only now; keep it secret:")
    print(token, flush=True)


@tokens_app.command("list")
def list_tokens(tokens: TokensFile, as_json: JsonFlag = False) -> None:
    """The tokens of the file: names, roles, when created."""
    try:
        listed = TokenFile(tokens).tokens()
    except LiaraError as err:
        raise _fail(err) from None
    if as_json:
        print_json([{"name": t.name, "role": t.role, "created_at": t.created_at.isoformat()} for t in listed])
    else:
        out.print(table_of(("name", "role", "created"), [(t.name, t.role, t.created_at.isoformat()) for t in listed]))


@tokens_app.command("revoke")
def revoke_token(
    name: Annotated[str, typer.Argument(help="The token's name")],
    tokens: TokensFile,
) -> None:
    """Remove a token: a running service refuses it from its next request on."""
    try:
        TokenFile(tokens).revoke(name)
    except LiaraError as err:
        raise _fail(err) from None
    say(f"Token {name!r} revoked in {tokens}.")
