"""Running the app with uvicorn: on a socket bound beforehand, with TLS if given a certificate,
until SIGINT or SIGTERM.

Binding first lets ``liara serve`` refuse a non-loopback address (or one in use) with one
sentence before anything starts; so does loading the certificate and key first (uvicorn would
answer a bad one with a traceback, and ask for the passphrase of an encrypted key on the
terminal). Once listening it prints one line with its URL. On SIGINT or
SIGTERM it stops accepting connections, ends every event stream (clients resume with
``Last-Event-ID``), lets requests in flight finish (a long poll waits at most
``MAX_WAIT_SECONDS``) and returns, so the command exits 0, as the workers do.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from app.temporal.http_serving import GracefulServer
from app.temporal.loopback import is_loopback_host
from cognition.liara.service.config import MAX_WAIT_SECONDS

READY_LINE = "Liara service listening on"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port); raises ``OSError``."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


def is_loopback(sock: socket.socket) -> bool:
    """Whether ``sock`` listens on this machine only."""
    return is_loopback_host(sock.getsockname()[0])


def tls_problem(certfile: Path, keyfile: Path) -> str | None:
    """Why the certificate chain ``certfile`` and its private key ``keyfile`` cannot serve TLS
    (None if they can), in words to end a sentence with.
    """
    try:
        if b"-----BEGIN CERTIFICATE-----" not in certfile.read_bytes():
            return f"{certfile} holds no PEM certificate"
        keyfile.read_bytes()
    except OSError as err:
        return f"{err.filename} cannot be read ({err.strerror or err})"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # An empty passphrase: an encrypted key fails here instead of prompting on the terminal.
        context.load_cert_chain(certfile, keyfile, password=b"")
    except ssl.SSLError as err:
        if err.reason == "KEY_VALUES_MISMATCH":
            return f"{keyfile} is not the private key of {certfile}"
        return f"{certfile} and {keyfile} are not a PEM certificate and its unencrypted PEM private key"
    return None


def serve(app: FastAPI, sock: socket.socket, *, certfile: Path | None = None, keyfile: Path | None = None) -> None:
    """Serve ``app`` on ``sock`` (over TLS with ``certfile`` and ``keyfile``) until SIGINT or
    SIGTERM, then drain and return.
    """
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Past the longest long poll, whatever still runs is cancelled.
        timeout_graceful_shutdown=MAX_WAIT_SECONDS + 10,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    GracefulServer(config, ready_line=READY_LINE, before_shutdown=app.state.streams.drain).run(sockets=[sock])
