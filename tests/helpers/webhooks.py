"""A webhook receiver on this machine, the secret its webhooks are signed with, and a
``liara.toml`` naming it.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from scripts.local_postgres import free_port

SECRET = "a-webhook-secret-for-tests-1234"
#: The environment variable the webhooks of ``webhook_config`` read their secret from.
SECRET_ENV = "OPS_SECRET"


class Receiver:
    """A webhook receiver on a port of its own. Down until ``up()`` unless started listening:
    nothing listens, so every connection is refused. Up, it answers 503 to its first
    ``refusals`` requests and ``status`` (204) to the rest, and keeps every request with its
    answer. With ``answer_bytes`` each answer has a body that long, which it writes until the
    client hangs up: each request then says how much of it was ``sent`` once ``answered``.
    """

    def __init__(self, *, refusals: int = 0, listening: bool = True, status: int = 204, answer_bytes: int = 0) -> None:
        self.refusals = refusals
        self.status = status
        self.answer_bytes = answer_bytes
        self.requests: list[dict[str, Any]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.server: ThreadingHTTPServer | None = None
        if listening:
            self.up()

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 503 if len(receiver.requests) < receiver.refusals else receiver.status
                request = {"path": self.path, "headers": dict(self.headers), "body": body, "status": status}
                receiver.requests.append(request)
                self.send_response(status)
                if receiver.answer_bytes:
                    self.send_header("Content-Length", str(receiver.answer_bytes))
                self.end_headers()
                if receiver.answer_bytes:
                    request["sent"] = self.write_answer(receiver.answer_bytes)
                request["answered"] = True

            def write_answer(self, size: int) -> int:
                """Write ``size`` bytes of answer, or as many as the client takes before it hangs up."""
                chunk = b"x" * 65536
                sent = 0
                try:
                    while sent < size:
                        piece = chunk[: size - sent]
                        self.wfile.write(piece)
                        sent += len(piece)
                    self.wfile.flush()
                except OSError:  # the client hung up
                    self.close_connection = True
                return sent

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def accepted(self) -> list[dict[str, Any]]:
        """The deliveries it took (answered 2xx), in the order they came."""
        return [r for r in self.requests if 200 <= r["status"] < 300]

    def accepted_per_event(self) -> Counter[int]:
        """How many times it took each event id."""
        return Counter(json.loads(r["body"])["event_id"] for r in self.accepted())

    def accepted_events(self) -> set[str]:
        return {json.loads(r["body"])["event"] for r in self.accepted()}


#: A receiver that refuses every request (503: "not now"), so its deliveries are retried for ever.
REFUSING = 10**9


def webhook_config(directory: Path, url: str, *names: str) -> Path:
    """A ``liara.toml`` in ``directory`` whose webhooks ``names`` (default: ``ops``) all POST to
    ``url`` + ``/NAME``, signed with ``SECRET`` from ``SECRET_ENV``.
    """
    config = directory / "liara.toml"
    config.write_text(
        "".join(f'[webhooks.{name}]\nurl = "{url}/{name}"\nsecret_env = "{SECRET_ENV}"\n' for name in names or ("ops",))
    )
    return config
