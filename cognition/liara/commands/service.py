"""Commands of the HTTP service: ``liara serve`` runs it, ``liara token`` manages who may call it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from app.temporal.errors import LiaraError
from cognition.liara.commands.connection import EXIT_ERROR, Connection
from cognition.liara.commands.options import JsonFlag
from cognition.liara.commands.output import err_console, out, print_json, say, table_of
from cognition.liara.service.config import DEFAULT_HOST, DEFAULT_PORT, ServiceSettings, web_ui_for
from cognition.liara.service.tokens import TokenFile, TokenVerifier

TokensFile = Annotated[Path, typer.Option("--tokens", metavar="FILE", help="The token file")]
logger = logging.getLogger("liara.service")


def _fail(err: LiaraError | str) -> typer.Exit:
    say(f"Error: {err}", err_console)
    return typer.Exit(EXIT_ERROR)


def serve(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(help="Interface to listen on; other than loopback only with --tokens, and TLS or --insecure-http"),
    ] = DEFAULT_HOST,
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
        str | None,
        typer.Option(
            metavar="URL",
            help="The Temporal Web UI the console links crises to (default: the Temporal server's host, its "
            "port + 1000, where `temporal server start-dev` serves it: http://localhost:8233 for localhost:7233)",
            show_default=False,
        ),
    ] = None,
    ssl_certfile: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Serve HTTPS with this PEM certificate (chain); needs --ssl-keyfile"),
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(metavar="FILE", help="The certificate's private key (PEM, unencrypted)")
    ] = None,
    insecure_http: Annotated[
        bool,
        typer.Option(
            "--insecure-http",
            help="Serve plain HTTP beyond loopback, tokens in clear: only behind a proxy that terminates TLS",
        ),
    ] = False,
    max_running_crises: Annotated[
        int,
        typer.Option(min=0, metavar="N", help="Crises one token may have running at once (0: no quota)"),
    ] = ServiceSettings.max_running_crises_per_identity,
    max_starts_per_minute: Annotated[
        int,
        typer.Option(min=0, metavar="N", help="Crises one token may start within a minute (0: no quota)"),
    ] = ServiceSettings.max_starts_per_minute_per_identity,
) -> None:
    """Serve crises over HTTP (JSON, events as SSE, OpenAPI at /docs, the console at /) until
    Ctrl+C or SIGTERM.

    Without --tokens it listens on loopback only and every request acts as `local`, an admin.
    Beyond loopback it needs TLS (--ssl-certfile and --ssl-keyfile), or --insecure-http.
    """
    # Imported here: the other commands need no web framework.
    from app.temporal.codec import configured_codec
    from app.temporal.logs import configure_logging
    from cognition.liara.notifier import configured_webhooks
    from cognition.liara.service.main import create_app
    from cognition.liara.service.server import bind, is_loopback, tls_problem
    from cognition.liara.service.server import serve as run

    connection: Connection = ctx.obj
    if connection.api:
        raise _fail("liara serve talks to Temporal itself, not through another service: leave out --api.")
    if web_ui is not None and not web_ui.startswith(("http://", "https://")):
        raise _fail(f"--web-ui {web_ui!r} is not an http:// or https:// URL.")
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise _fail("--ssl-certfile and --ssl-keyfile go together: give the certificate and its private key.")
    tls = ssl_certfile is not None and ssl_keyfile is not None
    if tls and insecure_http:
        raise _fail("--insecure-http serves plain HTTP: leave it out when serving TLS with --ssl-certfile.")
    if ssl_certfile and ssl_keyfile and (problem := tls_problem(ssl_certfile, ssl_keyfile)):
        raise _fail(f"Cannot serve TLS: {problem}.")
    try:
        verifier = TokenVerifier(TokenFile(tokens)) if tokens else None
        if verifier is not None and not verifier.count:
            raise _fail(f"Token file {tokens} has no tokens: create one with `liara token create NAME --role ROLE`.")
        agency = connection.agency()
        web_ui = web_ui or web_ui_for(agency.settings.address)
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
    beyond_loopback = not is_loopback(sock)
    if beyond_loopback and not tls and not insecure_http:
        sock.close()
        raise _fail(
            f"Serving on {host} without TLS would send every token across the network in clear: pass "
            "--ssl-certfile FILE and --ssl-keyfile FILE, or --insecure-http if a proxy in front of it terminates TLS."
        )
    configure_logging("WARNING")
    if beyond_loopback and insecure_http:
        logger.warning(
            "--insecure-http: serving plain HTTP on %s, so bearer tokens and crises cross the network in clear, "
            "for anyone on the path to read and replay; do so only behind a proxy that terminates TLS.",
            host,
        )
    settings = ServiceSettings(
        heartbeat_seconds=heartbeat,
        web_ui_url=web_ui.rstrip("/"),
        max_running_crises_per_identity=max_running_crises,
        max_starts_per_minute_per_identity=max_starts_per_minute,
    )
    app = create_app(agency, tokens=verifier, settings=settings, local_hosts=[host], webhooks=webhooks)
    run(app, sock, certfile=ssl_certfile, keyfile=ssl_keyfile)


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
