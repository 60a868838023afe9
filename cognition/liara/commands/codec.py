"""Commands for encrypted payloads: the codec server for the Web UI, and new keys."""

from __future__ import annotations

from typing import Annotated

import typer

from app.temporal.errors import LiaraError
from cognition.liara.commands.connection import EXIT_ERROR
from cognition.liara.commands.output import err_console


def codec_server(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port)")] = 8081,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0: every interface)")] = "127.0.0.1",
    ui_origin: Annotated[
        list[str] | None,
        typer.Option(help="Web UI origin allowed by CORS (repeatable). Default: http://localhost:8233"),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Host name clients reach the server by, besides localhost, 127.0.0.1, ::1 and --host "
            "(repeatable); requests with any other Host header are refused"
        ),
    ] = None,
) -> None:
    """Serve POST /encode and /decode with the configured encryption keys, for the Web UI's codec endpoint.

    Every request needs `Authorization: Bearer <token>` with a token from LIARA_CODEC_SERVER_TOKENS
    (comma-separated) or LIARA_CODEC_SERVER_TOKEN_FILE (one per line).
    """
    from app.temporal.codec import configured_codec
    from app.temporal.codec_server import DEFAULT_UI_ORIGIN, serve, tokens_from_environment

    try:
        codec = configured_codec()
        tokens = tokens_from_environment() if codec is not None else ()
    except LiaraError as err:
        err_console.print(f"Error: {err}", markup=False, highlight=False)
        raise typer.Exit(EXIT_ERROR) from None
    if codec is None:
        err_console.print(
            "Error: No encryption keys are configured: set LIARA_ENCRYPTION_KEYS or LIARA_ENCRYPTION_KEY_FILE.",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_ERROR)
    serve(
        codec,
        host=host,
        port=port,
        ui_origins=ui_origin or [DEFAULT_UI_ORIGIN],
        tokens=tokens,
        allowed_hosts=allowed_host or [],
    )


def codec_key(
    key_id: Annotated[str | None, typer.Argument(help="Id of the new key. Default: key-<random hex>")] = None,
) -> None:
    """Print a new random encryption key line, `id:<base64 of 32 bytes>`, for LIARA_ENCRYPTION_KEYS or a key file."""
    from app.temporal.codec import new_key_line

    try:
        print(new_key_line(key_id))
    except LiaraError as err:
        err_console.print(f"Error: {err}", markup=False, highlight=False)
        raise typer.Exit(EXIT_ERROR) from None
