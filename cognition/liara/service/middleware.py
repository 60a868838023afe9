"""Checks that run before any route: the body size limit, and what keeps a service without
tokens to this machine's own programs.

``BodyLimit`` answers 413 (as a problem) for a body over the limit, whether its
``Content-Length`` says so or it streams past the limit; nothing more than the limit is ever
buffered.

``LocalOnly``: binding loopback is not enough for a service without tokens, since a web page in
a browser on this machine can reach loopback too, by a DNS name rebound to 127.0.0.1 (the
``Host`` header then names the page's domain) or by a cross-origin form post (the ``Origin``
header then names the page). Both are refused with 403; a service with ``--tokens`` needs
neither check, since a page has no token to send.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.temporal.codec_server import DEFAULT_ALLOWED_HOSTS, host_name
from cognition.liara.service.problem_types import BODY_TOO_LARGE, FORBIDDEN
from cognition.liara.service.problems import problem_response


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.detail = f"The request body exceeds this service's limit of {max_bytes} bytes."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await problem_response(BODY_TOO_LARGE, self.detail)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # An HTTPException is what the framework lets through from reading a body.
                raise HTTPException(413, self.detail)
            return message

        await self.app(scope, counted, send)


class LocalOnly:
    """Answers 403 to a request whose ``Host`` is not this machine's or whose ``Origin`` is another site."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(host_name(host) for host in (*DEFAULT_ALLOWED_HOSTS, *hosts))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(Headers(scope=scope))
            if refusal is not None:
                await problem_response(FORBIDDEN, refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, headers: Headers) -> str | None:
        host = headers.get("host", "")
        origin = headers.get("origin")
        if host_name(host) not in self.allowed:
            return (
                f"The Host header {host[:100]!r} does not name this machine, and this service without tokens "
                "answers only requests to localhost: start it with --tokens to serve other names."
            )
        if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
            return (
                f"Requests from the web page {origin[:100]!r} are refused: this service without tokens "
                "answers programs on this machine, not other sites."
            )
        return None
