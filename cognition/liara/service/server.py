"""Running the app with uvicorn: on a socket bound beforehand, until SIGINT or SIGTERM.

Binding first lets ``liara serve`` refuse a non-loopback address (or one in use) with one
sentence before anything starts. Once listening it prints one line with its URL. On SIGINT or
SIGTERM it stops accepting connections, ends every event stream (clients resume with
``Last-Event-ID``), lets requests in flight finish (a long poll waits at most
``MAX_WAIT_SECONDS``) and returns, so the command exits 0, as the workers do.
"""

from __future__ import annotations

import ipaddress
import socket

import uvicorn
from fastapi import FastAPI

from app.temporal.http_serving import GracefulServer
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
    return ipaddress.ip_address(sock.getsockname()[0]).is_loopback


def serve(app: FastAPI, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM, then drain and return."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Past the longest long poll, whatever still runs is cancelled.
        timeout_graceful_shutdown=MAX_WAIT_SECONDS + 10,
    )
    GracefulServer(config, ready_line=READY_LINE, before_shutdown=app.state.streams.drain).run(sockets=[sock])
