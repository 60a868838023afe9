"""The codec server (``liara codec-server``): lets the Temporal Web UI (and ``temporal`` CLI)
show encrypted payloads in clear text to whoever holds one of its tokens.

It speaks Temporal's remote codec protocol: ``POST /encode`` and ``POST /decode`` take and return
``{"payloads": [...]}``, each payload in proto-JSON form (``metadata`` values and ``data`` in
base64). The ``X-Namespace`` header the UI sends is accepted for any namespace: one keyring
serves them all.

Both endpoints decrypt or encrypt with the keys, so every request needs
``Authorization: Bearer <token>``, one of the tokens configured, once per process, in

- ``LIARA_CODEC_SERVER_TOKENS``: tokens separated by commas, or
- ``LIARA_CODEC_SERVER_TOKEN_FILE``: a file with one token per line (``#`` comments allowed);

a token is at least 16 characters of ``A-Z a-z 0-9 - . _ ~ + /`` (``=`` may end it); the server
does not start without one. A request without a valid token gets 401 with
``WWW-Authenticate: Bearer``. Requests whose ``Host`` header names a host the server was not told
to serve (``localhost``, ``127.0.0.1``, ``[::1]``, the host it binds and each ``--allowed-host``)
get 400, which stops a web page from reaching it through DNS rebinding. The browser calls it
directly, so it answers CORS requests, ``Authorization`` header included, from the Web UI's
origins only. Every error is ``{"error": "<one sentence>"}``.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Iterable, Mapping, Sequence

import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payloads

from app.temporal.codec import EncryptionCodec, PayloadDecryptionError
from app.temporal.errors import LiaraError
from app.temporal.http_serving import GracefulServer
from app.temporal.secret_sources import SecretSource

DEFAULT_PORT = 8081
DEFAULT_UI_ORIGIN = "http://localhost:8233"
TOKENS_ENV = "LIARA_CODEC_SERVER_TOKENS"
TOKEN_FILE_ENV = "LIARA_CODEC_SERVER_TOKEN_FILE"
#: Host names always served, whatever the server binds: this machine under its usual names.
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]")
MIN_TOKEN_CHARS = 16
#: RFC 6750's b64token: what an ``Authorization: Bearer`` header can carry as it is.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_NEW_TOKEN_HINT = """make one with `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"""
_REALM = 'Bearer realm="liara codec server"'
#: Largest request body accepted; Temporal's own limit is 2 MiB per payload.
MAX_BODY_BYTES = 8 * 1024 * 1024
READY_LINE = "Codec server listening on"

logger = logging.getLogger("liara.codec_server")


class CodecServerConfigError(LiaraError, ValueError):
    """The codec server's tokens in the environment or token file cannot be used."""


class _BodyTooLarge(Exception):
    pass


def tokens_from_environment(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The bearer tokens the environment configures; at least one, or CodecServerConfigError."""
    configured = SecretSource(TOKENS_ENV, TOKEN_FILE_ENV, "codec server token", CodecServerConfigError).entries(environ)
    if configured is None or configured == ([], TOKENS_ENV):
        raise CodecServerConfigError(
            f"No codec server token is configured: set {TOKENS_ENV} or {TOKEN_FILE_ENV} ({_NEW_TOKEN_HINT})."
        )
    entries, source = configured
    if not entries:
        raise CodecServerConfigError(f"No tokens found in {source}: {_NEW_TOKEN_HINT} and add it.")
    for number, token in enumerate(entries, start=1):
        if len(token) < MIN_TOKEN_CHARS or not _TOKEN.fullmatch(token):
            raise CodecServerConfigError(
                f"Token {number} of {source} is not at least {MIN_TOKEN_CHARS} letters, digits or '-._~+/' "
                f"characters: {_NEW_TOKEN_HINT}."
            )
    return tuple(dict.fromkeys(entries))


def host_name(host: str) -> str:
    """The host part of a ``Host`` header or host name, lower case, an IPv6 address in brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    if host.count(":") > 1:  # a bare IPv6 address, as --host takes it
        return f"[{host}]"
    name, colon, port = host.rpartition(":")
    return (name if colon and port.isdigit() else host).rstrip(".")


class _HostCheck:
    """Answers 400 to a request whose ``Host`` is not one of ``allowed`` (DNS rebinding)."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(host_name(host) for host in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            host = headers.get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.allowed:
                shown = repr(host[:100]) if host else "(none)"
                response = _error(
                    400,
                    f"The Host header {shown} is not a host this codec server serves: "
                    "start it with --allowed-host for that name.",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _BodyTooLarge
    return bytes(body)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(
    codec: EncryptionCodec,
    ui_origins: Sequence[str] = (DEFAULT_UI_ORIGIN,),
    *,
    tokens: Sequence[str],
    allowed_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS,
) -> Starlette:
    """The ASGI app: ``/encode`` and ``/decode`` for holders of one of ``tokens``, requests whose
    Host is one of ``allowed_hosts`` only, and CORS for ``ui_origins``."""
    if not tokens:
        raise ValueError("the codec server needs at least one token")
    expected = [token.encode("ascii") for token in tokens]

    def unauthorized(request: Request) -> JSONResponse | None:
        scheme, _, presented = request.headers.get("authorization", "").strip().partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            return _error(
                401,
                "This codec server needs an `Authorization: Bearer <token>` header with one of its tokens.",
                {"WWW-Authenticate": _REALM},
            )
        given = presented.encode("latin-1", errors="replace")
        matched = False
        for token in expected:  # every one, so the time taken does not tell which came close
            matched |= hmac.compare_digest(given, token)
        if not matched:
            return _error(
                401,
                "The bearer token is not one of this codec server's tokens.",
                {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
            )
        return None

    def endpoint(operation: str):
        async def handle(request: Request) -> Response:
            refused = unauthorized(request)
            if refused is not None:
                return refused
            try:
                body = await _read_body(request)
            except _BodyTooLarge:
                return _error(413, f"The request body exceeds {MAX_BODY_BYTES} bytes.")
            payloads = Payloads()
            try:
                json_format.Parse(body or b"{}", payloads)
            except json_format.ParseError as err:
                return _error(400, f'The body is not {{"payloads": [...]}} in proto-JSON form ({err}).')
            try:
                if operation == "encode":
                    await codec.encode_wrapper(payloads)
                else:
                    await codec.decode_wrapper(payloads)
            except PayloadDecryptionError as err:
                return _error(400, str(err))
            # Counts and the namespace only: never the payloads.
            logger.debug(
                "%s %d payloads for namespace %s",
                operation,
                len(payloads.payloads),
                request.headers.get("x-namespace", "-"),
            )
            return Response(json_format.MessageToJson(payloads), media_type="application/json")

        return handle

    return Starlette(
        routes=[
            Route("/encode", endpoint("encode"), methods=["POST"]),
            Route("/decode", endpoint("decode"), methods=["POST"]),
        ],
        middleware=[
            Middleware(_HostCheck, allowed=allowed_hosts),
            Middleware(
                CORSMiddleware,
                allow_origins=list(ui_origins),
                allow_methods=["POST"],
                allow_headers=["authorization", "content-type", "x-namespace"],
            ),
        ],
    )


def serve(
    codec: EncryptionCodec,
    *,
    host: str,
    port: int,
    ui_origins: Sequence[str],
    tokens: Sequence[str],
    allowed_hosts: Iterable[str] = (),
) -> None:
    """Run until SIGINT or SIGTERM; ``allowed_hosts`` adds to localhost's names and ``host``."""
    app = create_app(codec, ui_origins, tokens=tokens, allowed_hosts=[*DEFAULT_ALLOWED_HOSTS, host, *allowed_hosts])
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    GracefulServer(config, ready_line=READY_LINE).run()
