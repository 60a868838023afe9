"""The codec server (``liara codec-server``): lets the Temporal Web UI (and ``temporal`` CLI)
show encrypted payloads in clear text to whoever can reach it.

It speaks Temporal's remote codec protocol: ``POST /encode`` and ``POST /decode`` take and return
``{"payloads": [...]}``, each payload in proto-JSON form (``metadata`` values and ``data`` in
base64). The browser calls it directly, so it answers CORS requests from the Web UI's origin
only. The ``X-Namespace`` header the UI sends is accepted for any namespace: one keyring serves
them all.

Anyone who can reach this server can decrypt with its keys: bind it to localhost (the default)
or put it behind authentication.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator, Sequence

import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads

from app.temporal.codec import EncryptionCodec, PayloadDecryptionError

DEFAULT_PORT = 8081
DEFAULT_UI_ORIGIN = "http://localhost:8233"
#: Largest request body accepted; Temporal's own limit is 2 MiB per payload.
MAX_BODY_BYTES = 8 * 1024 * 1024
READY_LINE = "Codec server listening on"

logger = logging.getLogger("liara.codec_server")


class _BodyTooLarge(Exception):
    pass


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


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(codec: EncryptionCodec, ui_origins: Sequence[str] = (DEFAULT_UI_ORIGIN,)) -> Starlette:
    """The ASGI app: ``/encode``, ``/decode`` and CORS for ``ui_origins``."""

    def endpoint(operation: str):
        async def handle(request: Request) -> Response:
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
            Middleware(
                CORSMiddleware,
                allow_origins=list(ui_origins),
                allow_methods=["POST"],
                allow_headers=["content-type", "x-namespace"],
            )
        ],
    )


class _Server(uvicorn.Server):
    """Says where it listens once the socket is bound (``--port 0`` picks a free port), and
    ends with exit code 0 on Ctrl+C or SIGTERM, as the workers do (uvicorn re-raises the signal).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.should_exit or not self.servers:
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        print(f"{READY_LINE} http://{host}:{port}", flush=True)


def serve(codec: EncryptionCodec, *, host: str, port: int, ui_origins: Sequence[str]) -> None:
    """Run until SIGINT or SIGTERM."""
    config = uvicorn.Config(
        create_app(codec, ui_origins), host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )
    _Server(config).run()
