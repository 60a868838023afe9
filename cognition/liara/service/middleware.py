"""Checks that run before any route: the body size limit, and what keeps a service without
tokens to this machine's own programs; and the security headers every answer carries.

``BodyLimit`` answers 413 (as a problem) for a body over the limit, whether its
``Content-Length`` says so or it streams past the limit; nothing more than the limit is ever
buffered.

``LocalOnly``: binding loopback is not enough for a service without tokens, since a web page in
a browser on this machine can reach loopback too, by a DNS name rebound to 127.0.0.1 (the
``Host`` header then names the page's domain) or by a cross-origin form post (the ``Origin``
header then names the page). Both are refused with 403; a service with ``--tokens`` needs
neither check, since a page has no token to send. A request relayed by a proxy (``Forwarded``,
``X-Forwarded-*``) is refused too: behind a proxy every visitor would reach it from loopback,
and be its admin.

``SecurityHeaders`` gives every answer ``nosniff``, a referrer policy, and a policy that no page
may frame it; the interactive API documents (``/docs``, ``/redoc``) get a content security policy
allowing exactly their own inline script and style (by hash) and the assets they load.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.temporal.codec_server import DEFAULT_ALLOWED_HOSTS, host_name
from cognition.liara.service.problem_types import BODY_TOO_LARGE, FORBIDDEN
from cognition.liara.service.problems import problem_response

#: Headers a proxy adds to the requests it relays.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip")

#: What every answer says of itself.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # JSON and problem documents load nothing; a page that does sets its own policy.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
}

#: What the interactive API documents load (Swagger UI and ReDoc, from their CDN).
_DOCS_SOURCES = {
    "script-src": "https://cdn.jsdelivr.net",
    "style-src": "https://cdn.jsdelivr.net https://fonts.googleapis.com",
}
_DOCS_POLICY = (
    "default-src 'none'; script-src {script-src}; style-src {style-src}; font-src https://fonts.gstatic.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; connect-src 'self'; "
    "worker-src blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_INLINE = {
    "script-src": re.compile(rb"<script>(.*?)</script>", re.S),
    "style-src": re.compile(rb"<style>(.*?)</style>", re.S),
}


def docs_policy(page: bytes) -> str:
    """The content security policy of an API document page: its CDN, and its inline code by hash."""
    sources = {}
    for directive, inline in _INLINE.items():
        hashes = [
            f"'sha256-{base64.b64encode(hashlib.sha256(code).digest()).decode()}'" for code in inline.findall(page)
        ]
        sources[directive] = " ".join([_DOCS_SOURCES[directive], *hashes])
    return _DOCS_POLICY.format(**sources)


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to each answer (a route's own policy stays), and to the pages at
    ``documents`` a policy made for them.
    """

    def __init__(self, app: ASGIApp, documents: Iterable[str] = ()) -> None:
        self.app = app
        self.documents = frozenset(documents)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.documents:
            await self._document(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_defaults(message.get("headers", []), SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, secured)

    async def _document(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A document page is small and whole in memory: its policy needs its inline code."""
        start: Message | None = None
        body = b""

        async def held(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                start = message
                return
            body += message.get("body", b"")
            if message.get("more_body") or start is None:
                return
            headers = {**SECURITY_HEADERS, "Content-Security-Policy": docs_policy(body)}
            start["headers"] = _with_defaults(start.get("headers", []), headers)
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, held)


def _with_defaults(headers: Iterable[tuple[bytes, bytes]], defaults: dict[str, str]) -> list[tuple[bytes, bytes]]:
    raw = list(headers)
    present = {name.lower() for name, _ in raw}
    return raw + [
        (name.lower().encode(), value.encode())
        for name, value in defaults.items()
        if name.lower().encode() not in present
    ]


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
        relayed = sorted(name for name in PROXY_HEADERS if name in headers)
        if relayed:
            return (
                f"This service without tokens answers programs on this machine only, and this request came "
                f"through a proxy ({', '.join(relayed)}): start it with --tokens to serve through a proxy."
            )
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
