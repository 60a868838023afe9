"""The uvicorn server every Liara HTTP endpoint runs on (the codec server, ``liara serve``).

It prints one ready line with its URL once listening (so ``--port 0`` says which port it got),
and on SIGINT or SIGTERM stops gracefully and returns, so the command exits 0 as the workers do:
plain uvicorn re-raises the signal once it has stopped, which would kill the process.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn


def url_of(sock: socket.socket, scheme: str = "http") -> str:
    """``http://host:port`` of a listening socket (an IPv6 host in brackets); ``https://`` with TLS."""
    host, port = sock.getsockname()[:2]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


class GracefulServer(uvicorn.Server):
    """Prints ``ready_line`` and the URL once listening; ``before_shutdown`` runs first on a stop."""

    def __init__(
        self, config: uvicorn.Config, *, ready_line: str, before_shutdown: Callable[[], None] | None = None
    ) -> None:
        super().__init__(config)
        self._ready_line = ready_line
        self._before_shutdown = before_shutdown

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

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.servers:
            scheme = "https" if self.config.is_ssl else "http"
            print(f"{self._ready_line} {url_of(self.servers[0].sockets[0], scheme)}", flush=True)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._before_shutdown is not None:
            self._before_shutdown()
        await super().shutdown(sockets)
